#!/bin/bash
# A copy-up that fails (here ENOSPC on a full filesystem) reaches the writer
# as that error, not as ESTALE; the shared file and every other guest are
# unchanged, no temporary file is left, and the mount keeps working.
source "$(dirname "$0")/common.bash"
command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 is not installed"
base=$(scratch_dir)
chmod 755 "$base"
img=$base/small.img
truncate -s 48M "$img"
mkfs.ext4 -q -F "$img"
mkdir -p "$base/fs"
mount -o loop "$img" "$base/fs" || skip "cannot loop-mount an ext4 image here"
at_exit "umount -l '$base/fs'"
POOL=$base/fs/pool
MNT=$base/mnt
COWFS_LOG=$base/cowfs.log
mkdir -p "$MNT"
"$SRCDIR/scripts/make-sample-guests" "$POOL" 2 >/dev/null
head -c 4M /dev/urandom >"$POOL/guest1/big"
cp -p "$POOL/guest1/big" "$POOL/guest2/big"
"$VUNIFY" unify "$POOL" >/dev/null 2>&1 || fail "vunify failed"
is_cowlink "$POOL/guest1/big" || fail "big was not unified"
sum=$(sha256sum <"$POOL/guest1/big")
# fill the filesystem (as root: reserved blocks too)
dd if=/dev/zero of="$base/fs/filler" bs=1M status=none 2>/dev/null || true
sync
cowfs_mount

# several times: the kernel forgets the inode after a failed lookup and
# looks it up again, which must keep answering the copy-up's error
for i in 1 2 3 4 5; do
	out=$( { echo x >>"$MNT/guest1/big"; } 2>&1 ) && fail "append to a CoW link on a full filesystem succeeded"
	case "$out" in
	*"No space left on device"*) ;;
	*) fail "copy-up error (try $i): want 'No space left on device', got '$out'" ;;
	esac
	out=$(chmod 600 "$MNT/guest1/big" 2>&1) && fail "chmod on a full filesystem succeeded"
	case "$out" in *"No space left on device"*) ;; *) fail "chmod copy-up error (try $i): got '$out'" ;; esac
done
is_cowlink "$POOL/guest1/big" || fail "guest1's big is no longer a CoW link"
same_inode "$MNT/guest1/big" "$MNT/guest2/big" || fail "the failed copy-up split the inode"
assert_eq "$sum" "$(sha256sum <"$MNT/guest1/big")" "content after the failed copy-up"
[ "$(ls -a "$POOL/guest1" | grep -c '^\.cowlink~')" = 0 ] || fail "temporary file left behind"

# with space again the same write works
rm -f "$base/fs/filler"
sync
echo x >>"$MNT/guest1/big" || fail "append after freeing space"
[ "$(ino "$MNT/guest1/big")" != "$(ino "$MNT/guest2/big")" ] || fail "no copy-up after freeing space"
assert_eq "$sum" "$(sha256sum <"$MNT/guest2/big")" "guest2's big"
cowfs_umount
