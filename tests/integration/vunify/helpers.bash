# Helpers shared by the vunify integration tests (sourced after lib.sh; the
# .bash suffix keeps meson from running this file as a test).

# vrun PREFIX ARGS...: run vunify ARGS, stdout to PREFIX.out, stderr to
# PREFIX.err, exit code in $RC (never trips set -e).
vrun() {
	local p=$1
	shift
	RC=0
	"$VUNIFY" "$@" >"$p.out" 2>"$p.err" || RC=$?
}

# guests_manifest POOL: the manifest of every guest (the pool's own state
# in .hashdb is not a guest and changes by design).
guests_manifest() {
	local g
	for g in "$1"/*/; do
		g=${g%/}
		echo "== ${g##*/}"
		manifest "$g"
	done
}

# assert_same_manifest WANT GOT WHAT: fail with the first differences.
assert_same_manifest() {
	[ "$1" = "$2" ] || fail "$3: manifest changed:
$(diff <(echo "$1") <(echo "$2") | head -20)"
}

ino() { stat -c %d:%i -- "$1"; }
nlink() { stat -c %h -- "$1"; }
is_immutable() { lsattr -d -- "$1" 2>/dev/null | cut -c5 | grep -q i; }

# no_leftovers POOL: no temporary name of an interrupted CoW operation
# remains anywhere in the pool.
no_leftovers() {
	local left
	left=$(find "$1" -name '.cowlink~*~tmp' | head -5)
	[ -z "$left" ] || fail "temporary leftovers remain: $left"
}

# objects_sound POOL: every pool object is immutable and carries the marker
# naming it (HASH or HASH.N -> HASH).
objects_sound() {
	local o name hex
	while IFS= read -r -d '' o; do
		name=${o##*/}
		hex=${name%%.*}
		is_immutable "$o" || fail "object $name is not immutable"
		[ "$(getfattr --absolute-names --only-values -n trusted.cowlink -- "$o" 2>/dev/null)" = "$hex" ] ||
			fail "object $name has a wrong or no marker"
	done < <(find "$1/.hashdb/objects" -type f -print0)
}
