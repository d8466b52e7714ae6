#!/bin/bash
# One shared 100 MB CoW link read from two guests costs about one copy of
# page cache.  With FUSE passthrough (the default) the data is the backing
# ext4 inode's pages, shared with the host itself; without it
# (COWFS_TEST_OPTS=-o passthrough=off, the cowfs-cached pass) both guests'
# paths are one FUSE nodeid (one kernel cache), and cowfs drops the backing
# ext4 pages once it has served them.
# Prints the figures (Cached growth, FUSE and ext4 residency) to stderr.
source "$(dirname "$0")/common.bash"
command -v fincore >/dev/null || skip "fincore (util-linux) is not installed"
cowfs_pool 2
MB=100
head -c ${MB}M /dev/urandom >"$POOL/guest1/big"
cp -p "$POOL/guest1/big" "$POOL/guest2/big"
"$VUNIFY" unify "$POOL" >/dev/null 2>&1 || fail "vunify failed"
is_cowlink "$POOL/guest1/big" && same_inode "$POOL/guest1/big" "$POOL/guest2/big" ||
	fail "the big file was not unified"
cowfs_mount -d	# -d: every request is logged, so READs can be counted

cached_kib() { awk '/^Cached:/ {print $2}' /proc/meminfo; }
resident_kib() { fincore -b -n -o RES "$1" | awk '{print int($1 / 1024)}'; }
size_kib=$((MB * 1024))

# Cached is machine-wide: another test writing at the same time adds to it.
# Unshared, every try shows a whole copy for guest2's read; so the least of
# three tries is the figure.
first= second=
for try in 1 2 3; do
	sync
	echo 3 >/proc/sys/vm/drop_caches
	c0=$(cached_kib)
	cat "$MNT/guest1/big" >/dev/null
	c1=$(cached_kib)
	cat "$MNT/guest2/big" >/dev/null
	c2=$(cached_kib)
	[ -z "$first" ] || [ $((c1 - c0)) -lt "$first" ] && first=$((c1 - c0))
	[ -z "$second" ] || [ $((c2 - c1)) -lt "$second" ] && second=$((c2 - c1))
	[ "$second" -lt $((size_kib / 4)) ] && [ $((first + second)) -lt $((size_kib * 3 / 2)) ] && break
done
fuse_res=$(resident_kib "$MNT/guest2/big")
ext4_res=$(resident_kib "$POOL/guest1/big")
echo >&2 "page cache for one ${MB} MiB CoW link read by two guests:"
echo >&2 "  Cached +$((first / 1024)) MiB after guest1's read, +$((second / 1024)) MiB after guest2's (least of $try tries)"
echo >&2 "  FUSE cache of the shared nodeid: $((fuse_res / 1024)) MiB; backing ext4 pages: $((ext4_res / 1024)) MiB"

[ "$second" -lt $((size_kib / 4)) ] || fail "guest2's read grew the cache by $second KiB: not shared"
[ $((first + second)) -lt $((size_kib * 3 / 2)) ] ||
	fail "two reads cost $((first + second)) KiB of cache for a $size_kib KiB file"
case " ${COWFS_TEST_OPTS:-} " in
*passthrough=off*)
	[ "$fuse_res" -ge $((size_kib * 9 / 10)) ] || fail "the FUSE cache does not hold the file ($fuse_res KiB)"
	[ "$ext4_res" -lt $((size_kib / 4)) ] || fail "backing ext4 keeps $ext4_res KiB of the file cached"
	;;
*)
	# Passthrough: the pages the guests read are the object's own ext4
	# pages (so the host and any other mount share them too).
	[ "$ext4_res" -ge $((size_kib * 9 / 10)) ] ||
		fail "passthrough: the backing ext4 cache does not hold the file ($ext4_res KiB)"
	grep -q 'opcode: READ' "$COWFS_LOG" && fail "passthrough: READ requests reached the daemon"
	;;
esac

# For comparison (reported, not asserted): with drop_cache=none the backing
# pages stay, about two copies in all.
cowfs_umount
cowfs_mount -o drop_cache=none
sync
echo 3 >/proc/sys/vm/drop_caches
c0=$(cached_kib)
cat "$MNT/guest1/big" "$MNT/guest2/big" >/dev/null
c1=$(cached_kib)
echo >&2 "  with -o drop_cache=none: Cached +$(((c1 - c0) / 1024)) MiB, backing ext4 pages $(($(resident_kib "$POOL/guest1/big") / 1024)) MiB"
cowfs_umount
