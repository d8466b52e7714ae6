#!/bin/bash
# With a tiny fd cache (-o fd_cache=8) everything still works, because
# inodes are reopened from their file handles, and the daemon's open fds
# stay bounded however many inodes the kernel remembers.
source "$(dirname "$0")/common.bash"
cowfs_pool 3
echo plain >"$POOL/guest1/tmp/plain"	# not a CoW link (vunify makes even unique files objects)
cowfs_mount -o fd_cache=8
for g in guest1 guest2 guest3; do
	manifest "$POOL/$g" | sed 's/ *$//' >"$POOL/../$g.disk"
	manifest "$MNT/$g" | sed 's/ *$//' >"$POOL/../$g.fuse"
	diff -u "$POOL/../$g.disk" "$POOL/../$g.fuse" >&2 || fail "$g differs through the mount"
done
nfd=$(ls "/proc/$COWFS_PID/fd" | wc -l)
echo >&2 "cowfs open fds after walking $(find "$MNT" | wc -l) entries with fd_cache=8: $nfd"
[ "$nfd" -lt 40 ] || fail "the daemon holds $nfd fds with fd_cache=8"

# SIGUSR1: one stats line with what the daemon holds
kill -USR1 "$COWFS_PID"
for i in $(seq 50); do grep -q 'stats: inodes' "$COWFS_LOG" && break; sleep 0.1; done
line=$(grep 'stats: inodes' "$COWFS_LOG" | tail -n1)
[[ $line =~ inodes\ ([0-9]+)\ .*\ fds\ ([0-9]+)\ fd_cache\ 8\  ]] || fail "no stats line on SIGUSR1: '$line'"
[ "${BASH_REMATCH[1]}" -gt 100 ] || fail "stats: ${BASH_REMATCH[1]} inodes after a walk"
[ "${BASH_REMATCH[2]}" -le 8 ] || fail "stats: ${BASH_REMATCH[2]} fds cached with fd_cache=8"

# copy-up and renames work on inodes whose fds were evicted
echo w >>"$MNT/guest1/usr/bin/ls"
[ "$(ino "$MNT/guest1/usr/bin/ls")" != "$(ino "$MNT/guest2/usr/bin/ls")" ] || fail "copy-up"
is_cowlink "$POOL/guest2/usr/bin/ls" || fail "guest2 lost its CoW link"
mv "$MNT/guest2/usr/bin/cat" "$MNT/guest2/usr/bin/cat2" && rm "$MNT/guest3/usr/bin/cat" || fail "rename/unlink"

# an inode number freed and reused behind the mount: the name must serve
# the new file, not fail with a stale handle
stat "$MNT/guest1/tmp/plain" >/dev/null
for i in $(seq 40); do stat "$MNT/guest2/usr/bin/"* >/dev/null; done   # evict its fd
old=$(ino "$POOL/guest1/tmp/plain")
rm "$POOL/guest1/tmp/plain"
for i in $(seq 200); do
	echo "new$i" >"$POOL/guest1/tmp/plain"
	[ "$(ino "$POOL/guest1/tmp/plain")" = "$old" ] && break
	rm "$POOL/guest1/tmp/plain"
done
if [ "$(ino "$POOL/guest1/tmp/plain")" = "$old" ]; then
	sleep 11	# the default entry/attr timeout
	assert_eq "$(cat "$POOL/guest1/tmp/plain")" "$(cat "$MNT/guest1/tmp/plain")" "reused inode number"
else
	echo >&2 "NOTE: ext4 did not reuse the inode number; reuse check not exercised"
fi
cowfs_umount
