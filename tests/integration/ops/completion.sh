#!/bin/bash
# bash completion: commands, each command's options (the same as its
# --help), guests of a pool, paths inside a guest for split, and cowfs's
# options and -o values.
source "$(dirname "$0")/../lib.sh"
[ -f /usr/share/bash-completion/bash_completion ] || skip "bash-completion is not installed"
d=$(scratch_dir)
mkdir -p "$d/pool/web1/etc" "$d/pool/web2" "$d/pool/.hashdb"
touch "$d/pool/web1/etc/passwd"
complete_words() { # complete_words WORD... : what completing the last word offers
	bash -c '
		source /usr/share/bash-completion/bash_completion
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		f=$(complete -p "$1" | sed "s/.*-F \([^ ]*\).*/\1/")
		"$f" "$1" "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
		printf "%s\n" "${COMPREPLY[@]}" | sort' _ "$@"
}
V=$SRCDIR/completion/vunify C=$SRCDIR/completion/cowfs
# The completion asks `cowfs --help`: the one built here, not one that
# ops/deb may have installed meanwhile (the tests run in parallel).
[ -n "${COWFS:-}" ] && PATH=$(dirname "$COWFS"):$PATH
got=$(complete_words "$V" vunify "" | tr '\n' ' ')
for c in unify audit gc verify split config; do [[ " $got " == *" $c "* ]] || fail "command $c not completed: $got"; done
for c in $("$VUNIFY" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }'); do
	want=$("$VUNIFY" "$c" --help | grep -oE -- '--[a-z-]+' | sort -u | tr '\n' ' ')
	have=$(PATH=$(dirname "$VUNIFY"):$PATH complete_words "$V" vunify "$c" -- | sort -u | tr '\n' ' ')
	assert_eq "$want" "$have" "options completed for vunify $c"
done
assert_eq "web1 web2" "$(complete_words "$V" vunify verify "$d/pool" "" | tr '\n' ' ' | sed 's/ $//')" "guests of a pool"
assert_eq "--repair" "$(PATH=$(dirname "$VUNIFY"):$PATH complete_words "$V" vunify verify --rep)" "a long option"
assert_eq "/etc" "$(complete_words "$V" vunify split "$d/pool" web1 /e)" "a path inside the guest"
assert_eq "--help --version -V -d -f -h -o -s" "$(complete_words "$C" cowfs - | LC_ALL=C sort | xargs)" "cowfs options"
assert_eq "drop_cache=cow" "$(complete_words "$C" cowfs -o drop_cache=c)" "cowfs -o drop_cache= values"
assert_eq "passthrough=off" "$(complete_words "$C" cowfs -o passthrough=of)" "cowfs -o passthrough= values"
assert_eq "allow_other,default_permissions" "$(complete_words "$C" cowfs -o allow_other,def)" "cowfs -o value after a comma"
