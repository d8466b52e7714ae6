#!/bin/bash
# vunify audit agrees with du: the pool's allocated bytes equal
# `du -sB1 POOL` (every inode once, .hashdb included), and per guest
# allocated equals `du -sB1 POOL/GUEST` and apparent equals `du -sb
# POOL/GUEST` -- before unify and after.  Sharing shows up as shared bytes.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
d=$(scratch_dir)
p=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$p" 3 >/dev/null
# Several names of one inode inside a guest: two identical files (unify
# links them to one object) and a hard link the guest made itself.
cp -a "$p/guest1/usr/bin/ls" "$p/guest1/usr/bin/ls.copy"
ln "$p/guest2/etc/passwd" "$p/guest2/etc/passwd.hl"

check_du() { # check_du WHEN
	local g i n
	vrun "$d/audit-$1" audit --json "$p"
	assert_eq 0 "$RC" "$1: audit exit code ($(cat "$d/audit-$1.err"))"
	assert_eq "$(du -sB1 "$p" | cut -f1)" "$(jq .pool.allocated_bytes "$d/audit-$1.out")" \
		"$1: pool allocated bytes vs du -sB1 POOL"
	assert_eq "$(du -sb "$p" | cut -f1)" "$(jq .pool.apparent_bytes "$d/audit-$1.out")" \
		"$1: pool apparent bytes vs du -sb POOL"
	n=$(jq '.guests | length' "$d/audit-$1.out")
	assert_eq 3 "$n" "$1: guests in audit"
	for ((i = 0; i < n; i++)); do
		g=$(jq -r ".guests[$i].name" "$d/audit-$1.out")
		assert_eq "$(du -sB1 "$p/$g" | cut -f1)" "$(jq ".guests[$i].allocated_bytes" "$d/audit-$1.out")" \
			"$1: $g allocated bytes vs du -sB1"
		assert_eq "$(du -sb "$p/$g" | cut -f1)" "$(jq ".guests[$i].apparent_bytes" "$d/audit-$1.out")" \
			"$1: $g apparent bytes vs du -sb"
		assert_eq "$(find "$p/$g" | wc -l)" "$(jq ".guests[$i].entries" "$d/audit-$1.out")" \
			"$1: $g entries vs find"
		assert_eq "$(jq ".guests[$i].allocated_bytes" "$d/audit-$1.out")" \
			"$(jq ".guests[$i].private_bytes + .guests[$i].shared_bytes" "$d/audit-$1.out")" \
			"$1: $g private + shared = allocated"
	done
}
check_du before
assert_eq 0 "$(jq '[.guests[].shared_bytes] | add' "$d/audit-before.out")" "shared bytes before unify"
vrun "$d/unify" unify "$p"
assert_eq 0 "$RC" "unify exit code ($(cat "$d/unify.err"))"
check_du after
# After unify, most of each guest is shared, and the pool shrank.
shared=$(jq '.guests[0].shared_bytes' "$d/audit-after.out")
alloc=$(jq '.guests[0].allocated_bytes' "$d/audit-after.out")
[ $((shared * 2)) -gt "$alloc" ] || fail "guest1 shares only $shared of $alloc bytes after unify"
[ "$(jq .pool.allocated_bytes "$d/audit-after.out")" -lt "$(jq .pool.allocated_bytes "$d/audit-before.out")" ] ||
	fail "the pool did not shrink"
# A guest given by name is audited alone, with the same figures.
vrun "$d/audit-one" audit --json "$p" guest2
assert_eq 0 "$RC" "audit of one guest"
assert_eq "$(jq -c '.guests[1]' "$d/audit-after.out")" "$(jq -c '.guests[0]' "$d/audit-one.out")" "guest2 alone"
exit 0
