#!/bin/bash
# The passthrough behaves like ext4 where FUSE allows it: name and path
# limits, UTIME_OMIT, stable inode numbers, nlink through another hard link,
# locks, fallocate, special files, fsync, statfs; and the documented
# FUSE-inherent differences (fd-based changes of a CoW link, O_TMPFILE).
source "$(dirname "$0")/common.bash"
cowfs_pool 2
cowfs_mount
A=$MNT/guest1
D=$A/tmp

# names over 255 bytes: ENAMETOOLONG, not ENOENT
long=$(printf 'n%.0s' $(seq 256))
expect_fail "File name too long" stat "$D/$long"
expect_fail "File name too long" touch "$D/$long"
expect_fail "File name too long" mkdir "$D/$long"
ok=$(printf 'n%.0s' $(seq 255))
touch "$D/$ok" || fail "a 255-byte name"

# a path near PATH_MAX (the daemon works from per-inode fds)
seg=$(printf 'd%.0s' $(seq 200))
(
	cd "$D"
	for i in $(seq 19); do mkdir "$seg" && cd "$seg"; done
	echo deep >file || exit 1
	[ "$(cat file)" = deep ] || exit 1
	[ ${#PWD} -gt 3800 ] || exit 2
) || fail "deep path (over 3800 bytes)"

# UTIME_OMIT: changing mtime leaves atime alone and vice versa
echo t >"$D/times"
touch -a -d '2011-01-01' "$D/times"
touch -m -d '2012-02-02' "$D/times"
assert_eq "$(date -d 2011-01-01 +%s)" "$(stat -c %X "$D/times")" "atime kept when setting mtime"
assert_eq "$(date -d 2012-02-02 +%s)" "$(stat -c %Y "$D/times")" "mtime"

# inode numbers stable across rename; nlink seen through the other name
i=$(ino "$D/times"); mv "$D/times" "$D/times2"
assert_eq "$i" "$(ino "$D/times2")" "inode number after rename"
ln "$D/times2" "$D/times3"
assert_eq 2 "$(stat -c %h "$D/times2")" "nlink via the first name after link"
chmod 600 "$D/times3"
assert_eq 600 "$(stat -c %a "$D/times2")" "mode via the other name after chmod"

# locks: flock and POSIX locks conflict between processes
echo l >"$D/lock"
flock -x "$D/lock" sleep 2 & lp=$!
sleep 0.5
flock -n -x "$D/lock" true && fail "flock: a second exclusive lock was granted"
wait $lp
flock -n -x "$D/lock" true || fail "flock: lock not released"
perl -e 'use Fcntl; open(my $f, "+<", $ARGV[0]) or die; my $l = pack("s s l l i", F_WRLCK, 0, 0, 0, 0);
	fcntl($f, F_SETLK, $l) or die "setlk: $!"; sleep 2' "$D/lock" & lp=$!
sleep 0.5
perl -e 'use Fcntl; open(my $f, "+<", $ARGV[0]) or die; my $l = pack("s s l l i", F_WRLCK, 0, 0, 0, 0);
	exit(fcntl($f, F_SETLK, $l) ? 1 : 0)' "$D/lock" || fail "POSIX lock: conflicting lock granted"
wait $lp

# fallocate, sparse files, copy_file_range (cp --reflink=auto uses it)
fallocate -l 1M "$D/falloc" || fail "fallocate"
assert_eq 1048576 "$(stat -c %s "$D/falloc")" "fallocate size"
truncate -s 10M "$D/sparse"
cp --sparse=always "$D/sparse" "$D/sparse2" || fail "cp of a sparse file"
cp "$D/falloc" "$D/falloc2" && cmp "$D/falloc" "$D/falloc2" || fail "cp (copy_file_range)"

# special files
mkfifo "$D/fifo" && [ -p "$D/fifo" ] || fail "mkfifo"
mknod "$D/null" c 1 3 && [ -c "$D/null" ] || fail "mknod"
echo x >"$D/null" || fail "write to a device node (dev mount option)"
ln -s /etc/passwd "$D/sym"
assert_eq /etc/passwd "$(readlink "$D/sym")" "readlink"
[ "$(stat -c %F "$POOL/guest1/tmp/sym")" = "symbolic link" ] || fail "symlink on disk"
# a guest symlink is never followed on the host side: creating through it
# stays inside the mount's view (the kernel resolves it on the FUSE side)
ln -s ../etc/hostname "$D/rel"
assert_eq guest1 "$(cat "$D/rel")" "relative symlink inside the guest"

# a guest symlink pointing at a host path: xattr requests on it act on the
# symlink itself, never on the host file it names
host=$(dirname "$POOL")/hostfile
echo host >"$host"
setfattr -n trusted.secret -v HOST "$host"
ln -s "$host" "$D/evil"
getfattr -h -m - -d "$D/evil" 2>/dev/null | grep -q secret && fail "host file's xattrs read through a guest symlink"
setfattr -h -n trusted.pwn -v 1 "$D/evil" || true
getfattr -m - -d "$host" 2>/dev/null | grep -q pwn && fail "xattr set on a host file through a guest symlink"
assert_eq host "$(cat "$host")" "host file untouched"

# fsync, sync, statfs
dd if=/dev/zero of="$D/sync" bs=4k count=4 conv=fsync status=none || fail "fsync"
df -P "$A" >/dev/null || fail "statfs"
[ "$(stat -f -c %b "$A")" = "$(stat -f -c %b "$POOL")" ] || fail "statfs differs from the pool's"

# documented: an fd-based change to a CoW link through a read-only fd
# cannot be redirected to a copy; it fails with ESTALE, and leaves nothing
# behind (a later read elsewhere does not copy anything up)
f=$A/usr/bin/cat
msg=$(perl -e 'open(my $f, "<", $ARGV[0]) or die; chmod(0700, $f) ? print "ok" : print "$!"' "$f")
assert_eq "Stale file handle" "$msg" "fchmod on a read-only fd of a CoW link"
cat "$MNT/guest2/usr/bin/cat" "$f" >/dev/null
same_inode "$f" "$MNT/guest2/usr/bin/cat" || fail "a stale pending break copied something up"
is_cowlink "$POOL/guest1/usr/bin/cat" || fail "fchmod changed the CoW link"
# reopening it for writing through /proc/self/fd: same documented error
msg=$(perl -e 'open(my $f, "<", $ARGV[0]) or die; open(my $g, ">>", "/proc/self/fd/".fileno($f)) ? print "ok" : print "$!"' "$f")
assert_eq "Stale file handle" "$msg" "reopen for write via /proc/self/fd"
is_cowlink "$POOL/guest1/usr/bin/cat" || fail "reopen changed the CoW link"

# documented: O_TMPFILE is not supported by libfuse 3.14 (EOPNOTSUPP)
msg=$(perl -e 'use Fcntl; my $r = sysopen(my $f, $ARGV[0], 0x410000|O_RDWR, 0600); print $r ? "ok" : "$!"' "$D")
case "$msg" in ok|"Operation not supported") ;; *) fail "O_TMPFILE: unexpected '$msg'" ;; esac
echo >&2 "O_TMPFILE through cowfs: $msg"
cowfs_umount
