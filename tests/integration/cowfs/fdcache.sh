#!/bin/bash
# With a tiny fd cache (-o fd_cache=8) everything still works, because
# inodes are reopened from their file handles, and the daemon's open fds
# stay bounded however many inodes the kernel remembers; and a backing inode
# number freed and reused behind the mount is served as the new file.
source "$(dirname "$0")/common.bash"
command -v python3 >/dev/null || skip "python3 is missing (it holds an O_PATH fd)"
# The pool on an ext4 of its own with one block group (4 KiB blocks, less
# than 128 MiB): ext4 gives a new file the lowest free inode number of its
# group, so the inode number reuse below is forced, not hoped for.
COWFS_TEST_DIR=$(fresh_ext4 120M -b 4096 -N 8192)
cowfs_pool 3
echo plain >"$POOL/guest1/tmp/plain"	# not a CoW link (vunify makes even unique files objects)
cowfs_mount -o fd_cache=8,timeout=1
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

# An inode number freed and reused behind the mount while the kernel still
# has the old file's nodeid: the name must serve the new file (cowfs takes
# the new file's handle on the next lookup), not fail with a stale handle.
plain=$POOL/guest1/tmp/plain
assert_eq plain "$(cat "$MNT/guest1/tmp/plain")" "plain file through the mount"
# The kernel keeps that nodeid (and cowfs its entry) while something holds
# the inode: an O_PATH fd, which sends no request, so cowfs opens nothing.
python3 -c 'import os, sys, time
fd = os.open(sys.argv[1], os.O_PATH)
print("held", flush=True)
time.sleep(600)' "$MNT/guest1/tmp/plain" >"$POOL/../hold" &
holder=$!
at_exit "kill $holder 2>/dev/null"
for ((i = 0; i < 100; i++)); do grep -q held "$POOL/../hold" && break; sleep 0.1; done
grep -q held "$POOL/../hold" || fail "could not hold the file open with O_PATH"
# cowfs's cached fd would keep the old inode (and its number) alive: push it
# out of the 8-entry cache with xattr requests on other inodes.
getfattr -h -d "$MNT/guest2/usr/bin/"* >/dev/null
for ((i = 0; i < 50; i++)); do
	[ -z "$(find "/proc/$COWFS_PID/fd" -lname "$plain*")" ] && break
	sleep 0.1
done
[ -z "$(find "/proc/$COWFS_PID/fd" -lname "$plain*")" ] || fail "cowfs still holds an fd of $plain"
old=$(ino "$plain")
rm "$plain"
# Each new file takes the lowest free number: fill the holes below the old
# one (kept as fillers) until the name gets the old number again.
for ((i = 0; ; i++)); do
	echo "a new file, made in round $i" >"$plain"
	n=$(ino "$plain")
	[ "$n" = "$old" ] && break
	[ "$n" -lt "$old" ] || fail "inode $old was not freed (round $i got $n)"
	mv "$plain" "$plain.filler$i"
done
echo >&2 "inode $old reused for a new file after $i fillers"
sleep 1.5	# the entry/attr timeout of this mount
want=$(cat "$plain")
got=$(cat "$MNT/guest1/tmp/plain") || fail "the reused inode number is not served (see cat's error above)"
assert_eq "$want" "$got" "content behind a reused inode number"
assert_eq "$old" "$(ino "$MNT/guest1/tmp/plain")" "inode number through the mount"
kill -0 "$holder" 2>/dev/null || fail "the O_PATH holder ended early: the kernel may have forgotten the old nodeid"
kill "$holder"
wait "$holder" 2>/dev/null || true
cowfs_umount
