#!/bin/bash
# unlink, rename (either side, NOREPLACE, EXCHANGE) and link(2) of CoW links
# through the mount: they work, and the shared inode stays for the others.
source "$(dirname "$0")/common.bash"
cowfs_pool 3
cowfs_mount
A=$MNT/guest1
B=$MNT/guest2

# renameat2 FROM TO FLAGS (1 = NOREPLACE, 2 = EXCHANGE) via perl's syscall
renameat2() {
	perl -e 'my $r = syscall(316, -100, $ARGV[0], -100, $ARGV[1], $ARGV[2]+0); exit($r == 0 ? 0 : $!+0)' "$@"
}
shared() { # shared FILE: guest2 and guest3 still share an intact CoW link
	is_cowlink "$POOL/guest2/$1" || fail "guest2's $1 is no longer a CoW link"
	same_inode "$B/$1" "$MNT/guest3/$1" || fail "guest2/guest3 $1 no longer shared"
	cmp -s "$B/$1" "$POOL/guest3/$1" || fail "guest2's $1 content changed"
}

# unlink
rm "$A/usr/bin/cat"
[ -e "$A/usr/bin/cat" ] && fail "unlink: still there"
[ -e "$POOL/guest1/usr/bin/cat" ] && fail "unlink: still on disk"
shared usr/bin/cat

# rename of a CoW link (source side)
mv "$A/usr/bin/cp" "$A/usr/bin/cp2"
[ -e "$A/usr/bin/cp" ] && fail "rename: old name remains"
same_inode "$A/usr/bin/cp2" "$B/usr/bin/cp" || fail "rename: renamed name is not the same inode"
is_cowlink "$POOL/guest1/usr/bin/cp2" || fail "rename: renamed CoW link lost its marker/flag"
shared usr/bin/cp

# rename over a CoW link (target side)
echo mine >"$A/tmp/new"
mv "$A/tmp/new" "$A/usr/bin/env"
assert_eq mine "$(cat "$A/usr/bin/env")" "rename over: content"
shared usr/bin/env

# rename a CoW link over another CoW link (both sides immutable)
mv "$A/usr/bin/grep" "$A/usr/bin/ls"
same_inode "$A/usr/bin/ls" "$B/usr/bin/grep" || fail "rename cow over cow"
shared usr/bin/ls
shared usr/bin/grep

# RENAME_NOREPLACE onto an existing CoW link fails EEXIST; onto a free name works
rc=0; renameat2 "$A/usr/bin/id" "$A/usr/bin/sort" 1 || rc=$?
assert_eq 17 "$rc" "RENAME_NOREPLACE onto an existing name (errno)"
renameat2 "$A/usr/bin/id" "$A/usr/bin/id2" 1 || fail "RENAME_NOREPLACE to a free name"
shared usr/bin/id

# RENAME_EXCHANGE between a CoW link and a private file, and between two CoW links
echo private >"$A/tmp/p"
renameat2 "$A/usr/bin/sort" "$A/tmp/p" 2 || fail "RENAME_EXCHANGE cow <-> private failed"
assert_eq private "$(cat "$A/usr/bin/sort")" "exchange: private side"
same_inode "$A/tmp/p" "$B/usr/bin/sort" || fail "exchange: CoW side"
renameat2 "$A/usr/bin/stat" "$A/usr/bin/touch" 2 || fail "RENAME_EXCHANGE cow <-> cow failed"
same_inode "$A/usr/bin/stat" "$B/usr/bin/touch" || fail "exchange cow<->cow"
shared usr/bin/sort; shared usr/bin/stat; shared usr/bin/touch

# link(2) to a CoW link: the source is copied up first, then linked, so the
# guest's two names behave as one private file
ln "$A/usr/bin/head" "$A/usr/bin/head.ln"
same_inode "$A/usr/bin/head" "$A/usr/bin/head.ln" || fail "link: two names, two inodes"
[ "$(ino "$A/usr/bin/head")" != "$(ino "$B/usr/bin/head")" ] || fail "link: source not copied up"
assert_eq 2 "$(stat -c %h "$A/usr/bin/head")" "link: nlink of the guest's file"
is_cowlink "$POOL/guest1/usr/bin/head" && fail "link: source still a CoW link"
echo x >>"$A/usr/bin/head.ln"
cmp -s "$A/usr/bin/head" "$A/usr/bin/head.ln" || fail "link: names differ after a write"
shared usr/bin/head

# a guest's own hard links keep POSIX semantics (nlink seen through the other name)
echo a >"$A/tmp/h1"
ln "$A/tmp/h1" "$A/tmp/h2"
assert_eq 2 "$(stat -c %h "$A/tmp/h1")" "nlink after link seen through the first name"
rm "$A/tmp/h2"
assert_eq 1 "$(stat -c %h "$A/tmp/h1")" "nlink after unlink"

# rmdir/mkdir, and the pool's flags are all restored (no stray mutable object)
mkdir "$A/newdir" && rmdir "$A/newdir"
for o in "$POOL"/.hashdb/objects/*/*; do
	lsattr -d "$o" | cut -c5 | grep -q i || fail "object $o left mutable"
done
cowfs_umount
