#!/bin/bash
# EMLINK: ext4 allows 65,000 links per inode.  More identical files than
# that end up on two objects of one identity, HASH and HASH.1, every path a
# CoW link of one of them, every byte intact, and a rerun changes nothing.
# (Making 65,010 files is most of this test's time, ~5-40 s depending on
# the host's load; unify itself takes a few seconds.)
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
d=$(scratch_dir)
p=$d/pool
N1=40000 N2=25010	# 65,010 identical files in two guests
TOTAL=$((N1 + N2))

fill() { # fill DIR COUNT: COUNT identical small files in subdirectories of 5000
	local dir=$1 n=$2 i
	for ((i = 0; i < n; i++)); do
		((i % 5000)) || mkdir -p "$dir/d$((i / 5000))"
		printf 'licence text\n' > "$dir/d$((i / 5000))/f$i"
	done
	find "$dir" -type f -exec touch -d '2024-01-01 00:00:00' {} +
}
fill "$p/g1" $N1
fill "$p/g2" $N2
touch -d '2024-01-01 00:00:00' "$p"/g*/d*

vrun "$d/run1" unify --json "$p"
assert_eq 0 "$RC" "unify exit code ($(head -5 "$d/run1.err"))"
objs=$(find "$p/.hashdb/objects" -type f | sort)
assert_eq 2 "$(echo "$objs" | wc -l)" "objects made ($objs)"
o0=$(echo "$objs" | grep -v '\.1$' || true)
o1=$(echo "$objs" | grep '\.1$' || true)
[ -n "$o0" ] && [ "$o1" = "$o0.1" ] || fail "want objects HASH and HASH.1, got: $objs"
assert_eq 65000 "$(nlink "$o0")" "links of the full object"
assert_eq $((TOTAL - 65000 + 2)) "$(nlink "$o1")" "links of the second object"
assert_eq $((TOTAL - 2)) "$(jq .linked "$d/run1.out")" "files linked"
assert_eq 2 "$(jq .new_objects "$d/run1.out")" "new objects"
objects_sound "$p"

# Every path is a link of one of the two objects and holds its bytes.
i0=$(stat -c %i "$o0") i1=$(stat -c %i "$o1")
bad=$(find "$p/g1" "$p/g2" -type f -printf '%i\n' | grep -cvx -e "$i0" -e "$i1" || true)
assert_eq 0 "$bad" "paths that are not links of the objects"
assert_eq "$TOTAL licence text" "$(find "$p/g1" "$p/g2" -type f -exec cat {} + | uniq -c | sed 's/^ *//')" \
	"contents"
assert_eq "$TOTAL" "$(find "$p/g1" "$p/g2" -type f -size 13c -user 0 -perm 644 -newermt '2023-12-31 23:59:59' ! -newermt '2024-01-01 00:00:00' | wc -l)" \
	"files of 13 bytes, root's, 0644, with their mtime"
assert_eq "$TOTAL" "$(find "$p/g1" "$p/g2" -type f | wc -l)" "number of paths"
is_cowlink "$p/g2/d5/f$((N2 - 1))" || fail "last file is not a CoW link"

# A rerun finds everything in place.
vrun "$d/run2" unify --json "$p"
assert_eq 0 "$RC" "rerun exit code ($(head -5 "$d/run2.err"))"
assert_eq 0 "$(jq .linked "$d/run2.out")" "rerun links"
assert_eq 0 "$(jq .hashed_bytes "$d/run2.out")" "rerun hashed bytes"
assert_eq "$TOTAL" "$(jq .already "$d/run2.out")" "rerun: already unified"
assert_eq 65000 "$(nlink "$o0")" "links of the full object after the rerun"
no_leftovers "$p"
exit 0
