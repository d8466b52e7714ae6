#!/bin/bash
# vunify on a mounted pool: nothing is lost, guests see the unified files
# within the entry timeout, and a write through a name vunify has just
# replaced (the kernel still caching the old inode) lands in a private copy
# instead of the replaced inode.
source "$(dirname "$0")/common.bash"
cowfs_pool 3
cowfs_mount -o timeout=1
A=$MNT/guest1
B=$MNT/guest2

# new identical files written through the mount
for g in guest1 guest2 guest3; do
	head -c 300000 /dev/zero | tr '\0' 'v' >"$MNT/$g/etc/newfile"
	touch -d '2024-05-05 05:05:05' "$MNT/$g/etc/newfile"
done
# guest1 keeps a file open for writing during the run: vunify must leave it
exec 7>>"$A/etc/newfile"
cat "$A/etc/newfile" "$B/etc/newfile" >/dev/null   # cache the old inodes
"$VUNIFY" unify "$POOL" >/dev/null 2>&1 || fail "vunify on a mounted pool failed"
is_cowlink "$POOL/guest2/etc/newfile" || fail "vunify did not unify guest2's new file"
is_cowlink "$POOL/guest1/etc/newfile" && fail "vunify replaced a file open for writing"
echo "tail" >&7
exec 7>&-
assert_eq tail "$(tail -c 5 "$POOL/guest1/etc/newfile")" "write on the held-open fd"

# within the entry timeout the guests see the unified inode
sleep 1.5
same_inode "$B/etc/newfile" "$MNT/guest3/etc/newfile" || fail "unified file not shared through the mount after the timeout"
assert_eq 1 "$(stat -c %h "$B/etc/newfile")" "nlink of the newly unified file"

# a stale cached name: guest2 caches its file, vunify replaces it behind the
# kernel's back, guest2 writes right away (within the timeout)
cowfs_umount
cowfs_mount -o timeout=30
for g in guest1 guest2 guest3; do
	printf 'same\n' >"$MNT/$g/etc/stale"
	touch -d '2024-05-05 05:05:05' "$MNT/$g/etc/stale"
done
stat "$B/etc/stale" "$MNT/guest3/etc/stale" >/dev/null        # cached now, for 30 s
"$VUNIFY" unify "$POOL" >/dev/null 2>&1 || fail "second vunify run failed"
is_cowlink "$POOL/guest2/etc/stale" || fail "vunify did not unify etc/stale"
echo more >>"$B/etc/stale"
assert_eq "same
more" "$(cat "$POOL/guest2/etc/stale")" "write through a stale name: guest2's file on disk"
assert_eq "same" "$(cat "$POOL/guest3/etc/stale")" "guest3's file after guest2's stale write"
is_cowlink "$POOL/guest3/etc/stale" || fail "guest3 lost its CoW link"
cowfs_umount
