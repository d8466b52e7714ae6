#!/bin/bash
# Byte-compare defence: the hash only proposes a match.  A pool object that
# has file A's identity hash and A's metadata but other bytes (what a forged
# XXH3 collision looks like) must not get A linked to it: unify reports the
# clash on stderr, exits 1 and leaves A and the object as they were.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
d=$(scratch_dir)

mkfile() { # mkfile PATH BYTE
	head -c 8192 /dev/zero | tr '\0' "$2" > "$1"
	chmod 755 "$1"
	touch -d '2024-03-03 03:03:03' "$1"
}

# Learn A's identity hash from a throwaway pool.
mkdir -p "$d/probe/g"
mkfile "$d/probe/g/sudo" A
vrun "$d/probe" unify "$d/probe"
assert_eq 0 "$RC" "probe unify"
hex=$(getfattr --absolute-names --only-values -n trusted.cowlink "$d/probe/g/sudo")
[ ${#hex} = 32 ] || fail "no identity hash on the probe file: '$hex'"

# The real pool: guest g has A; the planted object has A's name and
# metadata, same size, other bytes.
p=$d/pool
mkdir -p "$p/g"
vrun "$d/init" unify "$p"	# creates the pool's state
assert_eq 0 "$RC" "unify of an empty guest"
mkdir -m 700 "$p/.hashdb/objects/${hex:0:2}"
mkfile "$p/g/sudo" A
obj=$p/.hashdb/objects/${hex:0:2}/$hex
mkfile "$obj" B
setfattr -n trusted.cowlink -v "$hex" "$obj"
chattr +i "$obj"
cmp -s "$p/g/sudo" "$obj" && fail "test setup: contents should differ"
before=$(guests_manifest "$p")
ino_before=$(ino "$p/g/sudo")

for mode in dry-run real; do
	args=(unify --json)
	[ $mode = dry-run ] && args+=(-n)
	vrun "$d/$mode" "${args[@]}" "$p"
	assert_eq 1 "$RC" "$mode: exit code on an identity clash"
	grep -q '^vunify: g/sudo: identity clash' "$d/$mode.err" ||
		fail "$mode: clash not reported on stderr: $(cat "$d/$mode.err")"
	assert_eq 1 "$(jq .skipped.collision "$d/$mode.out")" "$mode: collisions counted"
	assert_eq 0 "$(jq .linked "$d/$mode.out")" "$mode: links made"
	assert_eq "$ino_before" "$(ino "$p/g/sudo")" "$mode: inode of g/sudo"
	assert_eq 1 "$(nlink "$obj")" "$mode: links of the planted object"
	is_immutable "$p/g/sudo" && fail "$mode: g/sudo was made immutable"
	assert_same_manifest "$before" "$(guests_manifest "$p")" "$mode"
	[ "$(head -c 1 "$obj")" = B ] || fail "$mode: planted object changed"
done
exit 0
