#!/bin/bash
# Two writers racing on one CoW-linked path: copy-ups are serialised, the
# second finds the copy made, both writes land in the one private copy, and
# the other guest keeps the original.  Also writers on different guests'
# paths of one CoW link at the same time.
source "$(dirname "$0")/common.bash"
cowfs_pool 3
cowfs_mount
A=$MNT/guest1
B=$MNT/guest2
files=(cat cp env grep ls mkdir touch chmod stat id sort head)
for f in "${files[@]}"; do
	is_cowlink "$POOL/guest1/usr/bin/$f" || fail "sample usr/bin/$f is not a CoW link"
done
orig=$(sha256sum <"$B/usr/bin/cat")

for f in "${files[@]}"; do
	p=$A/usr/bin/$f
	size=$(stat -c %s "$p")
	( printf 'writer-one\n' >>"$p" ) & w1=$!
	( printf 'writer-two\n' >>"$p" ) & w2=$!
	wait $w1 || fail "writer one on $f failed"
	wait $w2 || fail "writer two on $f failed"
	assert_eq $((size + 22)) "$(stat -c %s "$p")" "$f: size after two appends"
	tail -c 22 "$p" | grep -q writer-one || fail "$f: writer one's data lost"
	tail -c 22 "$p" | grep -q writer-two || fail "$f: writer two's data lost"
	[ "$(ls -a "$POOL/guest1/usr/bin" | grep -c '^\.cowlink~')" = 0 ] || fail "$f: temporary left"
	is_cowlink "$POOL/guest2/usr/bin/$f" || fail "$f: guest2 lost its CoW link"
	same_inode "$B/usr/bin/$f" "$MNT/guest3/usr/bin/$f" || fail "$f: guest2/3 no longer share"
done

# both other guests write the same CoW link at once: each gets its own copy
p=usr/share-meta/equal
size=$(stat -c %s "$B/$p")
( echo two >>"$B/$p" ) & w1=$!
( echo three >>"$MNT/guest3/$p" ) & w2=$!
wait $w1 && wait $w2 || fail "writers in two guests failed"
tail -c 4 "$B/$p" | grep -q two || fail "guest2's copy"
tail -c 6 "$MNT/guest3/$p" | grep -q three || fail "guest3's copy"
assert_eq "$size" "$(stat -c %s "$A/$p")" "guest1's file untouched"
is_cowlink "$POOL/guest1/$p" || fail "guest1 lost the CoW link"
assert_eq "$orig" "$(sha256sum <"$B/usr/bin/cat")" "guest2's cat"
cowfs_umount
