#!/bin/bash
# FUSE passthrough (the default where the kernel has it): file data goes
# between the kernel and the backing ext4 inode without a request, and
# everything cowfs promises still holds:
#  - no READ or WRITE request reaches the daemon (counted with -d);
#  - a write to a CoW link still gives that guest a private copy first, and
#    the other guest and the object keep the old data;
#  - one inode open for reading and for writing at once, and hundreds of
#    opens and closes of one inode at once, all work (one backing id per
#    inode, counted by its opens);
#  - a write by a user who is not root still clears setuid (the kernel's
#    passthrough writes run with the daemon's credentials);
#  - a file open for reading through the mount can still be unified
#    (the registered backing file is read-only: no writer for the lease);
#  - -o passthrough=off really sends the data through the daemon.
source "$(dirname "$0")/common.bash"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
cowfs_pool 2
head -c 3M /dev/urandom >"$POOL/guest1/data"
cp -p "$POOL/guest1/data" "$POOL/guest2/data"
"$VUNIFY" unify "$POOL" >/dev/null 2>&1 || fail "vunify failed"
is_cowlink "$POOL/guest1/data" || fail "data was not unified"
obj_sum=$(sha256sum <"$POOL/guest2/data")

cowfs_mount -d
grep -q 'max_stack_depth' "$COWFS_LOG" ||
	skip "the kernel did not agree to FUSE passthrough (no max_stack_depth in INIT)"
requests() { grep -c "opcode: $1 " "$COWFS_LOG" || true; }

# Reads of the shared inode from both guests, a mapped read, a private write.
cmp "$MNT/guest1/data" "$MNT/guest2/data" || fail "the guests read different data"
python3 -c 'import mmap,sys
f=open(sys.argv[1],"rb"); m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ); m[-1]' "$MNT/guest2/data" ||
	fail "mmap of a CoW link failed"
echo private >"$MNT/guest1/new"
[ "$(cat "$POOL/guest1/new")" = private ] || fail "the write did not reach the backing file"
[ "$(requests READ)" = 0 ] || fail "passthrough: $(requests READ) READ requests reached the daemon"
[ "$(requests WRITE)" = 0 ] || fail "passthrough: $(requests WRITE) WRITE requests reached the daemon"

# A write to the CoW link: guest1 gets a copy, nobody else sees the change.
printf 'guest1 was here' | dd of="$MNT/guest1/data" bs=1 seek=100 conv=notrunc status=none ||
	fail "writing into a CoW link failed"
is_cowlink "$POOL/guest1/data" && fail "guest1's data is still the shared inode after its write"
[ "$(sha256sum <"$POOL/guest2/data")" = "$obj_sum" ] || fail "guest2's data changed"
[ "$(sha256sum <"$MNT/guest2/data")" = "$obj_sum" ] || fail "guest2 sees guest1's write"
grep -q 'guest1 was here' "$MNT/guest1/data" || fail "guest1 does not see its own write"

# One inode open for reading and for writing at once: the reader sees the
# writer's data (the same backing inode), and both close cleanly.
f=$MNT/guest1/both
echo one >"$f"
exec 3<"$f"
echo two >>"$f"
[ "$(cat <&3)" = "$(printf 'one\ntwo')" ] || fail "a reader open before a write does not see it"
exec 3<&-
# Many opens and closes of one inode at once: every open works.
pids=()
for i in $(seq 64); do
	(for j in 1 2 3 4; do cat "$MNT/guest2/data" >/dev/null || exit 1; done) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent read of one inode failed"; done
[ "$(sha256sum <"$MNT/guest2/data")" = "$obj_sum" ] || fail "guest2's data reads wrong after the opens"

# setuid is cleared by a write of its owner who is not root (as on ext4).
touch "$POOL/guest1/suid"
chown 1000:1000 "$POOL/guest1/suid"
chmod 4755 "$POOL/guest1/suid"
as_user sh -c "echo x >>'$MNT/guest1/suid'" || fail "the owner could not write its file"
[ "$(stat -c %a "$POOL/guest1/suid")" = 755 ] ||
	fail "setuid survived a write by uid 1000 (mode $(stat -c %a "$POOL/guest1/suid"))"

# A file open for reading through the mount is unified all the same.
head -c 100k /dev/urandom >"$POOL/guest1/later"
cp -p "$POOL/guest1/later" "$POOL/guest2/later"
exec 3<"$MNT/guest1/later"
head -c 10 <&3 >/dev/null
"$VUNIFY" unify "$POOL" >/dev/null 2>&1 || fail "vunify failed with a file open through the mount"
same_inode "$POOL/guest1/later" "$POOL/guest2/later" ||
	fail "a file open for reading through the mount was not unified"
exec 3<&-
[ "$(requests READ)" = 0 ] || fail "passthrough: READ requests reached the daemon"
cowfs_umount

# -o passthrough=off: the same reads are requests again.
: >"$COWFS_LOG"
cowfs_mount -d -o passthrough=off
grep -q 'max_stack_depth' "$COWFS_LOG" && fail "passthrough=off still negotiated passthrough"
cat "$MNT/guest2/data" >/dev/null
[ "$(requests READ)" -gt 0 ] || fail "passthrough=off: no READ request reached the daemon"
cowfs_umount
echo >&2 "passthrough: 0 READ and 0 WRITE requests; passthrough=off: $(requests READ) READ requests for one 3 MiB read"
