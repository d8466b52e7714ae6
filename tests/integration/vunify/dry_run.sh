#!/bin/bash
# -n / --dry-run changes nothing -- no file, no .hashdb -- but reports what
# a real run would link; the real run then does what the dry run said.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
d=$(scratch_dir)
p=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$p" 2 >/dev/null
before=$(guests_manifest "$p")
fbefore=$(guests_fast_manifest "$p")
inodes=$(find "$p" -printf '%p %i %n %C@\n' | sort)

for opt in -n --dry-run; do
	vrun "$d/dry$opt" unify "$opt" --json "$p"
	assert_eq 0 "$RC" "$opt exit code ($(cat "$d/dry$opt.err"))"
	[ ! -e "$p/.hashdb" ] || fail "$opt created $p/.hashdb"
	if [ "$opt" = -n ]; then
		assert_same_manifest "$before" "$(guests_manifest "$p")" "$opt"
	else	# the same facts from fewer processes
		assert_same_manifest "$fbefore" "$(guests_fast_manifest "$p")" "$opt"
	fi
	assert_same_manifest "$inodes" "$(find "$p" -printf '%p %i %n %C@\n' | sort)" "$opt: inodes, links, ctimes"
	assert_eq true "$(jq .dry_run "$d/dry$opt.out")" "$opt: dry_run in --json"
	grep -q 'dry run: nothing changed' "$d/dry$opt.err" || fail "$opt summary does not say it is a dry run"
done
would_link=$(jq .linked "$d/dry-n.out")
would_new=$(jq .new_objects "$d/dry-n.out")
[ "$would_link" -gt 50 ] || fail "dry run reports only $would_link links"

vrun "$d/real" unify --json "$p"
assert_eq 0 "$RC" "real run exit code"
assert_eq "$would_link" "$(jq .linked "$d/real.out")" "links: dry run vs real run"
assert_eq "$would_new" "$(jq .new_objects "$d/real.out")" "new objects: dry run vs real run"

# On a unified pool with a new guest, a dry run still changes nothing.
"$SRCDIR/scripts/make-sample-guests" "$d/fresh" 1 >/dev/null
mv "$d/fresh/guest1" "$p/guest4"
before=$(guests_fast_manifest "$p")
# (The run lock's file gets the dry run's pid: that is all it may change.)
objects=$(find "$p/.hashdb" ! -name lock -printf '%p %i %n %C@\n' | sort)
vrun "$d/dry2" unify -n --json "$p"
assert_eq 0 "$RC" "second dry run exit code"
assert_same_manifest "$before" "$(guests_fast_manifest "$p")" "dry run with guest4"
assert_same_manifest "$objects" "$(find "$p/.hashdb" ! -name lock -printf '%p %i %n %C@\n' | sort)" \
	"pool state after a dry run"
[ "$(jq .linked "$d/dry2.out")" -gt 0 ] || fail "dry run reports no links for guest4"
exit 0
