#!/bin/bash
# cowfs serves the pool: guests are subdirectories, .hashdb is invisible,
# every guest sees exactly what is on disk, each CoW link is one inode
# shared by all guests with st_nlink 1, and unmount is clean.
source "$(dirname "$0")/common.bash"
cowfs_pool 3
cowfs_mount

[ "$(ls -A "$MNT" | sort | tr '\n' ' ')" = "guest1 guest2 guest3 " ] ||
	fail "mount root lists: $(ls -A "$MNT" | tr '\n' ' ')"
[ -e "$MNT/.hashdb" ] && fail ".hashdb is visible through the mount"
expect_fail "Operation not permitted" mkdir "$MNT/.hashdb"
[ -d "$POOL/.hashdb/objects" ] || fail "pool state missing"

# Everything a guest observes is what is on disk.
for g in guest1 guest2 guest3; do
	# (trailing blanks: getfattr prints an empty record for a file whose
	# only xattr, the marker, manifest filters out)
	manifest "$POOL/$g" | sed 's/ *$//' >"$POOL/../$g.disk"
	manifest "$MNT/$g" | sed 's/ *$//' >"$POOL/../$g.fuse"
	diff -u "$POOL/../$g.disk" "$POOL/../$g.fuse" >&2 || fail "$g differs through the mount"
done

# A CoW link: one inode for every guest, nlink 1, the marker hidden.
f=usr/bin/ls
is_cowlink "$POOL/guest1/$f" || fail "sample $f was not unified"
assert_eq "$(ino "$POOL/guest1/$f")" "$(ino "$MNT/guest1/$f")" "inode number through the mount"
same_inode "$MNT/guest1/$f" "$MNT/guest2/$f" || fail "CoW link has two inodes through the mount"
same_inode "$MNT/guest1/$f" "$MNT/guest3/$f" || fail "CoW link has two inodes through the mount"
assert_eq 1 "$(stat -c %h "$MNT/guest2/$f")" "st_nlink of a CoW link"
[ "$(stat -c %h "$POOL/guest2/$f")" -ge 3 ] || fail "backing link count too low"
getfattr -h -d -m - "$MNT/guest1/$f" 2>/dev/null | grep -q cowlink && fail "marker listed"
expect_fail "No such attribute" getfattr -n trusted.cowlink "$MNT/guest1/$f"
expect_fail "Operation not permitted" setfattr -n trusted.cowlink -v 0 "$MNT/guest1/$f"
expect_fail "Operation not permitted" setfattr -x trusted.cowlink "$MNT/guest1/$f"
# even on a file that is not a CoW link: a guest cannot forge a marker
expect_fail "Operation not permitted" setfattr -n trusted.cowlink -v 0 "$MNT/guest1/etc/hostname"
is_cowlink "$POOL/guest1/$f" || fail "marker changed through the mount"

# Reads, exec and mmap of the shared inode.
cmp "$MNT/guest1/$f" "$POOL/guest1/$f" || fail "content differs"
"$MNT/guest1/usr/bin/true" 2>/dev/null || true   # (libraries are the guest's; exec via chroot in chroot.sh)
perl -e 'use strict; open(my $fh, "<", $ARGV[0]) or die; my $d; sysread($fh, $d, 4) == 4 or die; exit($d eq "\x7fELF" ? 0 : 1)' \
	"$MNT/guest2/$f" || fail "read of a CoW link"
# The shared inode was not touched by any of this.
is_cowlink "$POOL/guest1/$f" && is_cowlink "$POOL/guest2/$f" || fail "CoW link broken by reads"

# Plain files are private and writable as usual.
echo changed >"$MNT/guest1/etc/hostname"
assert_eq changed "$(cat "$POOL/guest1/etc/hostname")" "write through the mount"
assert_eq guest2 "$(cat "$MNT/guest2/etc/hostname")" "other guest's hostname"

df "$MNT" >/dev/null || fail "statfs failed"
cowfs_umount
