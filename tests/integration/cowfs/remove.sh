#!/bin/bash
# vunify remove and cowfs: a process working in MNT/guest3 of a pool mount
# keeps guest3 from being removed (the message names it and its path
# through the mount), and so does a cowfs mount serving guest2 alone; once
# the process is gone the removal works under the live mount, and the
# removed guest's transitional name is never visible through it (nor a
# guest vunify clone is building).
source "$(dirname "$0")/common.bash"
cowfs_pool 3
cowfs_mount
[ -d "$MNT/guest3/usr" ] || fail "guest3 not served"

(cd "$MNT/guest3/usr" && exec sleep 60) &
spid=$!
sleep 0.2
RC=0
"$VUNIFY" remove "$POOL" guest3 2>"$POOL/../busy.err" || RC=$?
assert_eq 6 "$RC" "remove while a process works in MNT/guest3"
grep -q "process $spid (sleep) has its working directory at $MNT/guest3/usr" "$POOL/../busy.err" ||
	fail "message: $(cat "$POOL/../busy.err")"
kill "$spid"; wait "$spid" 2>/dev/null || true

# cowfs serving one guest alone.
MNT2=$POOL/../mnt2
mkdir -p "$MNT2"
"$COWFS" -f "$POOL/guest2" "$MNT2" 2>>"$COWFS_LOG" &
pid2=$!
at_exit "fusermount3 -u '$MNT2' 2>/dev/null; kill $pid2 2>/dev/null"
for ((i = 0; i < 100; i++)); do mountpoint -q "$MNT2" && break; sleep 0.1; done
mountpoint -q "$MNT2" || fail "cowfs did not mount guest2 alone"
RC=0
"$VUNIFY" remove "$POOL" guest2 2>"$POOL/../busy2.err" || RC=$?
assert_eq 6 "$RC" "remove while cowfs serves the guest alone"
grep -q "guest2: in use: cowfs serves it at $(realpath "$MNT2")" "$POOL/../busy2.err" ||
	fail "message: $(cat "$POOL/../busy2.err")"
fusermount3 -u "$MNT2"
wait "$pid2" 2>/dev/null || true

RC=0
"$VUNIFY" remove -q "$POOL" guest3 2>"$POOL/../rm.err" || RC=$?
assert_eq 0 "$RC" "remove once nothing uses guest3 ($(cat "$POOL/../rm.err"))"
[ ! -e "$POOL/guest3" ] || fail "guest3 still on disk"
ls -A "$MNT" | grep -q removing && fail "a .removing~ name is visible through the mount"
# A guest vunify clone is building is hidden the same way, and cannot be made.
mkdir -p "$POOL/.cloning~guest9/etc"
ls -A "$MNT" | grep -q cloning && fail "a .cloning~ name is visible through the mount"
[ ! -e "$MNT/.cloning~guest9" ] || fail "MNT/.cloning~guest9 can be looked up"
mkdir "$MNT/.cloning~guest8" 2>/dev/null && fail "a .cloning~ name can be made through the mount"
rmdir "$POOL/.cloning~guest9/etc" "$POOL/.cloning~guest9"
[ -x "$MNT/guest1/usr/bin/ls" ] && "$MNT/guest1/usr/bin/ls" / >/dev/null || fail "guest1 unusable after the removal"
"$VUNIFY" verify -q "$POOL" || fail "verify after the removal"
cowfs_umount
