#!/bin/bash
# Mounting: clear errors for a missing pool, a pool that is not a directory,
# on the wrong filesystem or already mounted; mount -t fuse.cowfs and an
# fstab line work through fuse3's mount helper with suid,dev by default;
# mount -o remount,ro and back work; SIGTERM unmounts cleanly.
source "$(dirname "$0")/common.bash"
command -v findmnt >/dev/null || skip "findmnt (util-linux) is not installed"
cowfs_pool 2
base=$(dirname "$POOL")
M2=$base/mnt2
mkdir -p "$M2"
at_exit "umount -l '$M2' 2>/dev/null"

expect_fail "does not exist" "$COWFS" "$base/nope" "$MNT"
touch "$base/afile"
expect_fail "not a directory" "$COWFS" "$base/afile" "$MNT"
expect_fail "inside the pool" "$COWFS" "$POOL" "$POOL/guest1"
mountpoint -q "$MNT" && fail "a failed start left a mount"

# .hashdb on another filesystem than the pool
mkdir -p "$base/pool2/g/etc" "$base/pool2/.hashdb"
mount -t tmpfs tmpfs "$base/pool2/.hashdb" || skip "cannot mount tmpfs"
at_exit "umount -l '$base/pool2/.hashdb' 2>/dev/null"
expect_fail "on another filesystem" "$COWFS" "$base/pool2" "$M2"
umount "$base/pool2/.hashdb"

cowfs_mount
findmnt -n -o FSTYPE "$MNT" | grep -qx fuse.cowfs || fail "not a fuse.cowfs mount"
assert_eq "$POOL" "$(findmnt -n -o SOURCE "$MNT")" "mount source"
opts=$(findmnt -n -o OPTIONS "$MNT")
case ",$opts," in *,nosuid,*|*,nodev,*) fail "mounted with nosuid/nodev by default: $opts" ;; esac
case ",$opts," in *allow_other*) ;; *) fail "no allow_other: $opts" ;; esac

# already mounted: same pool elsewhere, or the same mountpoint again
expect_fail "already mounted" "$COWFS" "$POOL" "$M2"
expect_fail "already a cowfs mount" "$COWFS" "$base/pool2" "$MNT"
# a pool on a FUSE filesystem (the cowfs mount itself)
expect_fail "FUSE filesystem" "$COWFS" "$MNT" "$M2"
cowfs_umount

# the same at a mountpoint with the bytes mountinfo escapes (space, tab,
# newline, backslash) and others, 2.4 KiB long: 4.8 KiB once escaped, more
# than PATH_MAX
odd=$base
for _ in $(seq 12); do odd+=/$(printf ' \t\n\\\xff%.0s' $(seq 40)); done
mkdir -p "$odd"
at_exit 'umount -l "$odd" 2>/dev/null; umount -l "$odd" 2>/dev/null'
saved=$MNT MNT=$odd
cowfs_mount
expect_fail "already a cowfs mount" "$COWFS" "$base/pool2" "$odd"
expect_fail "already mounted by cowfs at $odd" "$COWFS" "$POOL" "$M2"
cowfs_umount
MNT=$saved

# -o nosuid,nodev override the defaults
cowfs_mount -o nosuid,nodev
opts=$(findmnt -n -o OPTIONS "$MNT")
case ",$opts," in *,nosuid,*) ;; *) fail "-o nosuid ignored: $opts" ;; esac
cowfs_umount

# SIGTERM: the daemon unmounts and exits 0
cowfs_mount
kill -TERM "$COWFS_PID"
rc=0; wait "$COWFS_PID" || rc=$?
COWFS_PID=
assert_eq 0 "$rc" "exit status after SIGTERM"
for i in $(seq 50); do mountpoint -q "$MNT" || break; sleep 0.1; done
mountpoint -q "$MNT" && fail "still mounted after SIGTERM"

# mount -t fuse.cowfs (fuse3's mount.fuse3 runs "cowfs POOL MNT -o ...")
command -v mount.fuse3 >/dev/null || [ -x /sbin/mount.fuse3 ] || skip "mount.fuse3 (fuse3) is not installed"
# mount(8) runs helpers with a fixed PATH, so the binary under test must be
# found there: link it as /usr/local/sbin/cowfs for the test unless a
# cowfs is installed (then that one would run: skip rather than test it).
if [ -e /usr/local/sbin/cowfs ] || [ -e /usr/sbin/cowfs ] || [ -e /sbin/cowfs ]; then
	skip "a cowfs is installed system-wide; mount -t would not run the one under test"
fi
mkdir -p /usr/local/sbin
ln -s "$COWFS" /usr/local/sbin/cowfs
at_exit "rm -f /usr/local/sbin/cowfs"
mount -t fuse.cowfs "$POOL" "$MNT" -o timeout=5 || fail "mount -t fuse.cowfs failed"
at_exit "umount -l '$MNT' 2>/dev/null"
findmnt -n -o FSTYPE "$MNT" | grep -qx fuse.cowfs || fail "mount -t: not a fuse.cowfs mount"
[ -x "$MNT/guest1/usr/bin/ls" ] || fail "mount -t: guest not visible"
opts=$(findmnt -n -o OPTIONS "$MNT")
case ",$opts," in *,nosuid,*|*,nodev,*) fail "mount -t: nosuid/nodev: $opts" ;; esac

# mount -o remount,ro and back: mount.fuse3 starts "cowfs POOL MNT -o
# <every option>,remount", which changes the flags of the running mount and
# exits; the daemon keeps serving, and the flags not named are kept.
echo before > "$MNT/guest1/remount-file" || fail "write before the remount failed"
mount -o remount,ro "$MNT" || fail "mount -o remount,ro failed"
opts=$(findmnt -n -o OPTIONS "$MNT")
case ",$opts," in *,ro,*) ;; *) fail "remount,ro: not read-only: $opts" ;; esac
case ",$opts," in *,nosuid,*|*,nodev,*) fail "remount,ro: nosuid/nodev appeared: $opts" ;; esac
assert_eq before "$(cat "$MNT/guest1/remount-file")" "read after remount,ro"
err=$( (echo after > "$MNT/guest1/remount-file") 2>&1) && fail "a write succeeded on a read-only remount"
case $err in *"Read-only file system"*) ;; *) fail "write on a read-only remount: want EROFS, got: $err" ;; esac
mount -o remount,rw "$MNT" || fail "mount -o remount,rw failed"
case ",$(findmnt -n -o OPTIONS "$MNT")," in *,rw,*) ;; *) fail "remount,rw: still read-only" ;; esac
echo after > "$MNT/guest1/remount-file" || fail "write after remount,rw failed"
assert_eq after "$(cat "$MNT/guest1/remount-file")" "content after remount,rw"
expect_fail "not a cowfs mount" "$COWFS" "$POOL" "$base" -o remount,ro
umount "$MNT" || fail "umount failed"
mountpoint -q "$MNT" && fail "still mounted after umount"

# an fstab line
printf '%s %s fuse.cowfs defaults,timeout=5 0 0\n' "$POOL" "$MNT" >"$base/fstab"
mount -T "$base/fstab" "$MNT" || fail "mount from an fstab line failed"
[ -x "$MNT/guest2/usr/bin/ls" ] || fail "fstab: guest not visible"
umount "$MNT" || fail "umount (fstab) failed"
exit 0
