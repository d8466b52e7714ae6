#!/bin/bash
# Files a guest user creates belong to that user (uid/gid of the caller,
# setgid-directory rule, umask, default ACLs), and the kernel denies what
# the user may not do (default_permissions, ACLs, sticky bit), as on ext4.
source "$(dirname "$0")/common.bash"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
cowfs_pool 2
cowfs_mount
A=$MNT/guest1
H=$A/home/user		# owned by 1000:1000

# ownership of everything a user creates
as_user sh -c "umask 022; echo x >'$H/file'; mkdir '$H/dir'; mkfifo '$H/fifo'; ln -s file '$H/sym'"
for n in file dir fifo sym; do
	assert_eq 1000:1000 "$(stat -c %u:%g "$POOL/guest1/home/user/$n")" "owner of a new $n on disk"
	assert_eq 1000:1000 "$(stat -c %u:%g "$H/$n")" "owner of a new $n through the mount"
done
assert_eq 644 "$(stat -c %a "$H/file")" "mode of a new file (umask 022)"
assert_eq 755 "$(stat -c %a "$H/dir")" "mode of a new dir (umask 022)"
as_user sh -c "umask 077; echo y >'$H/private'; mkdir '$H/pdir'"
assert_eq 600 "$(stat -c %a "$H/private")" "umask 077 on a file"
assert_eq 700 "$(stat -c %a "$H/pdir")" "umask 077 on a dir"

# setgid directory: new entries get the directory's group, subdirs inherit g+s
mkdir "$A/shared"; chown 0:4242 "$A/shared"; chmod 2777 "$A/shared"
as_user sh -c "umask 022; echo z >'$A/shared/f'; mkdir '$A/shared/d'"
assert_eq 1000:4242 "$(stat -c %u:%g "$POOL/guest1/shared/f")" "setgid dir: file group"
assert_eq 1000:4242 "$(stat -c %u:%g "$POOL/guest1/shared/d")" "setgid dir: subdir group"
assert_eq 2755 "$(stat -c %a "$A/shared/d")" "setgid dir: subdir inherits g+s"

# default ACL: inherited, and the umask does not apply (as on ext4)
mkdir "$A/acl"; chmod 777 "$A/acl"; setfacl -d -m u::rwx,g::rwx,o::rwx,u:1000:rwx "$A/acl"
as_user sh -c "umask 077; mkdir '$A/acl/d'"
getfacl -pn "$A/acl/d" 2>/dev/null | grep -q '^default:user:1000:rwx' || fail "default ACL not inherited"
assert_eq 777 "$(stat -c %a "$POOL/guest1/acl/d")" "umask must not apply under a default ACL"

# supplementary groups count
mkdir "$A/grp"; chown 0:4343 "$A/grp"; chmod 770 "$A/grp"
setpriv --reuid 1000 --regid 1000 --groups 4343 -- sh -c "echo g >'$A/grp/f'" ||
	fail "a supplementary group member cannot create in a group-writable dir"
assert_eq 1000:1000 "$(stat -c %u:%g "$POOL/guest1/grp/f")" "owner with supplementary groups"

# denials
expect_fail "Permission denied" as_user sh -c "echo x >'$A/etc/hostname'"
expect_fail "Permission denied" as_user sh -c "echo x >'$A/usr/bin/newfile'"
expect_fail "Permission denied" as_user rm "$A/usr/bin/ls"
expect_fail "Operation not permitted" as_user chmod 777 "$A/usr/bin/ls"
expect_fail "Operation not permitted" as_user chown 1000 "$A/etc/hostname"
expect_fail "Permission denied" as_user sh -c "echo x >>'$A/usr/bin/cat'"   # a CoW link, not the user's
echo secret >"$A/root/secret"; chmod 600 "$A/root/secret"
chmod 755 "$A/root"
expect_fail "Permission denied" as_user cat "$A/root/secret"
expect_fail "Permission denied" as_user ls "$A/grp"
# ACL grants and denies
echo acl >"$A/root/aclfile"; chmod 600 "$A/root/aclfile"; setfacl -m u:1000:r "$A/root/aclfile"
assert_eq acl "$(as_user cat "$A/root/aclfile")" "ACL grants read"
expect_fail "Permission denied" as_user sh -c "echo x >>'$A/root/aclfile'"
# sticky /tmp: cannot remove another user's file
echo r >"$A/tmp/rootfile"
expect_fail "Operation not permitted" as_user rm -f "$A/tmp/rootfile"
# nothing the denied user tried broke a CoW link
same_inode "$A/usr/bin/cat" "$MNT/guest2/usr/bin/cat" || fail "a denied write copied up"
same_inode "$A/usr/bin/ls" "$MNT/guest2/usr/bin/ls" || fail "a denied chmod copied up"

# a user writing its own CoW-linked file gets a copy it still owns
cp -a "$POOL/guest1/usr/share-meta/uid" "$POOL/guest1/home/user/mine" 2>/dev/null || true
f=usr/share-meta/uid	# owned by 1000 in every guest: a CoW link the user may write
if is_cowlink "$POOL/guest1/$f"; then
	as_user sh -c "echo u >>'$A/$f'" || fail "owner cannot write its CoW-linked file"
	assert_eq 1000 "$(stat -c %u "$POOL/guest1/$f")" "copy-up keeps the owner"
	is_cowlink "$POOL/guest2/$f" || fail "guest2's copy changed"
fi
cowfs_umount
