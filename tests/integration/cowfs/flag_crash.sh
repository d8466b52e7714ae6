#!/bin/bash
# A shared inode whose immutable flag is missing is still a CoW link: the
# marker and the link count decide, never the flag alone.  Three ways to lose
# the flag, each followed by a guest's write that must stay that guest's:
#  1. cowfs killed between clearing and restoring the flag (unlink of a CoW
#     link, SIGKILL injected at the unlink itself): the next start replays
#     the flag journal and the object has its flag before any lookup;
#  2. the flag cleared by hand (no journal record): cowfs finds the marked
#     inode without its flag at lookup, restores it under the flag lock,
#     logs it, and copies the path up on write (open, O_TRUNC, chmod);
#  3. a reboot after a crash (the journal's record need not be on disk):
#     the first start after a reboot checks every object.
source "$(dirname "$0")/common.bash"
command -v strace >/dev/null || skip "strace is not installed"
cowfs_pool 3
f=usr/bin/cat
obj=$(find "$POOL/.hashdb/objects" -samefile "$POOL/guest1/$f" | head -1)
[ -n "$obj" ] || fail "no pool object for $f"
sum=$(sha256sum <"$obj")
has_flag() { lsattr -d -- "$1" | cut -c5 | grep -q i; }
restart() {
	cowfs_cleanup
	COWFS_PID=
	cowfs_mount "$@"
}

# 1. killed between the toggles
cowfs_mount
strace -qq -f -p "$COWFS_PID" -e trace=unlinkat -e inject=unlinkat:signal=SIGKILL:when=2 \
	-o /dev/null & st=$!
sleep 1	# strace attaches to every thread
rm -f "$MNT/guest1/$f" 2>/dev/null || true
wait "$st" 2>/dev/null || true
kill -0 "$COWFS_PID" 2>/dev/null && fail "cowfs survived the injected SIGKILL"
has_flag "$obj" && fail "case 1 did not happen: the kill left the flag set"
[ -e "$POOL/guest1/$f" ] || fail "the unlink ran although it was killed first"
restart
has_flag "$obj" || fail "cowfs start did not restore the flag from the journal"
grep -q "restored 1 immutable flag" "$COWFS_LOG" || { cat "$COWFS_LOG" >&2; fail "restoring not logged"; }
echo changed >"$MNT/guest2/$f" || fail "write through guest2"
assert_eq "$sum" "$(sha256sum <"$MNT/guest3/$f")" "guest3 after guest2's write (case 1)"
assert_eq "$sum" "$(sha256sum <"$obj")" "the object after guest2's write (case 1)"
assert_eq changed "$(cat "$MNT/guest2/$f")" "guest2's own copy"
rm "$MNT/guest1/$f" || fail "unlink after the restart"
has_flag "$obj" || fail "the flag is missing after an unlink"

# 2. cleared by hand, no record: found at lookup
f=usr/bin/ls
obj=$(find "$POOL/.hashdb/objects" -samefile "$POOL/guest1/$f" | head -1)
sum=$(sha256sum <"$obj")
restart
chattr -i "$obj"
: >"$MNT/guest2/$f" || fail "O_TRUNC through guest2"
assert_eq "$sum" "$(sha256sum <"$obj")" "the object after guest2's O_TRUNC (case 2)"
assert_eq "$sum" "$(sha256sum <"$MNT/guest3/$f")" "guest3 after guest2's O_TRUNC (case 2)"
assert_eq 0 "$(stat -c %s "$MNT/guest2/$f")" "guest2's truncated copy"
has_flag "$obj" || fail "the flag was not restored at lookup"
grep -q "guest2/$f: restored the immutable flag of pool object" "$COWFS_LOG" ||
	{ cat "$COWFS_LOG" >&2; fail "the restored flag was not logged with the guest path"; }
# the same for chmod and a guest's own hard link, on a fresh lookup
f=usr/bin/head
obj=$(find "$POOL/.hashdb/objects" -samefile "$POOL/guest1/$f" | head -1)
mode=$(stat -c %a "$obj")
restart
chattr -i "$obj"
chmod 700 "$MNT/guest2/$f" || fail "chmod through guest2"
assert_eq "$mode" "$(stat -c %a "$obj")" "the object's mode after guest2's chmod"
assert_eq 700 "$(stat -c %a "$MNT/guest2/$f")" "guest2's copy's mode"
ln "$MNT/guest3/$f" "$MNT/guest3/head-link" || fail "hard link through guest3"
same_inode "$MNT/guest3/$f" "$obj" && fail "guest3's hard link went to the shared inode"
has_flag "$obj" || fail "the flag was not restored (chmod/link)"

# 3. after a reboot: another boot id in the journal means check every object
cowfs_cleanup
COWFS_PID=
f=usr/bin/wc
obj=$(find "$POOL/.hashdb/objects" -samefile "$POOL/guest1/$f" | head -1)
chattr -i "$obj"
printf 'COWFLGJ1%s' 00000000-0000-0000-0000-000000000000 |
	dd of="$POOL/.hashdb/flags.lock" conv=notrunc status=none
cowfs_mount
has_flag "$obj" || fail "the first start after a reboot did not check every object"
grep -q "checked every object after a reboot" "$COWFS_LOG" || { cat "$COWFS_LOG" >&2; fail "scan not logged"; }
# and vunify does the same at its start
cowfs_umount
chattr -i "$obj"
printf 'COWFLGJ1%s' 00000000-0000-0000-0000-000000000000 |
	dd of="$POOL/.hashdb/flags.lock" conv=notrunc status=none
"$VUNIFY" audit "$POOL" >/dev/null || fail "vunify audit"
has_flag "$obj" || fail "vunify's start did not restore the flag"
"$VUNIFY" verify "$POOL" >/dev/null 2>&1 || fail "vunify verify is not clean"
