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

passthrough=1
case " ${COWFS_TEST_OPTS:-} " in *passthrough=off*) passthrough=0 ;; esac

# check: what is wrong with the figures of one try, or nothing.
check() {
	if [ "$first" -lt $((size_kib * 3 / 4)) ]; then
		echo "guest1's read grew the cache by only $first KiB (something else dropped caches?)"
	elif [ "$second" -ge $((size_kib / 4)) ]; then
		echo "guest2's read grew the cache by $second KiB: not shared"
	elif [ $((first + second)) -ge $((size_kib * 3 / 2)) ]; then
		echo "two reads cost $((first + second)) KiB of cache for a $size_kib KiB file"
	elif [ "$passthrough" = 0 ] && [ "$fuse_res" -lt $((size_kib * 9 / 10)) ]; then
		echo "the FUSE cache does not hold the file ($fuse_res KiB)"
	elif [ "$passthrough" = 0 ] && [ "$ext4_res" -ge $((size_kib / 4)) ]; then
		echo "backing ext4 keeps $ext4_res KiB of the file cached"
	elif [ "$passthrough" = 1 ] && [ "$ext4_res" -lt $((size_kib * 9 / 10)) ]; then
		# Passthrough: the pages the guests read are the object's own
		# ext4 pages (so the host and any other mount share them too).
		echo "passthrough: the backing ext4 cache does not hold the file ($ext4_res KiB)"
	fi
}

# measure LABEL FILE1 FILE2: with caches dropped, read guest1's FILE1 then
# guest2's FILE2; the growth of Cached after each (first, second), FILE2's
# residency (fuse_res) and the object's ext4 residency (ext4_res), and what
# check finds wrong with them (why, empty when nothing).  Cached is
# machine-wide: another test writing or dropping caches at the same time
# changes it.  Unshared, every try shows a whole copy for guest2's read; so
# the first try whose figures all hold is kept (try), after five bad tries
# the last.
measure() {
	local label=$1 f1=$2 f2=$3 c0 c1 c2
	for try in 1 2 3 4 5; do
		sync
		echo 3 >/proc/sys/vm/drop_caches
		c0=$(cached_kib)
		cat "$f1" >/dev/null
		c1=$(cached_kib)
		cat "$f2" >/dev/null
		c2=$(cached_kib)
		first=$((c1 - c0)) second=$((c2 - c1))
		fuse_res=$(resident_kib "$f2")
		ext4_res=$(resident_kib "$POOL/guest1/big")
		why=$(check)
		[ -z "$why" ] && break
		echo >&2 "${label}try $try: $why"
	done
}

measure "" "$MNT/guest1/big" "$MNT/guest2/big"
echo >&2 "page cache for one ${MB} MiB CoW link read by two guests (try $try):"
echo >&2 "  Cached +$((first / 1024)) MiB after guest1's read, +$((second / 1024)) MiB after guest2's"
echo >&2 "  FUSE cache of the shared nodeid: $((fuse_res / 1024)) MiB; backing ext4 pages: $((ext4_res / 1024)) MiB"
[ -z "$why" ] || fail "$why"
if [ "$passthrough" = 1 ]; then
	grep -q 'opcode: READ' "$COWFS_LOG" && fail "passthrough: READ requests reached the daemon"
fi

# One mount per guest (cowfs POOL/GUEST MNT): with passthrough the two
# mounts' reads are the object's ext4 pages too, one copy for both.
if [ "$passthrough" = 1 ]; then
	cowfs_umount
	m1=$MNT/../m1 m2=$MNT/../m2
	mkdir -p "$m1" "$m2"
	"$COWFS" "$POOL/guest1" "$m1" 2>>"$COWFS_LOG" || fail "cowfs POOL/guest1 failed"
	at_exit "umount -l '$m1' 2>/dev/null"
	"$COWFS" "$POOL/guest2" "$m2" 2>>"$COWFS_LOG" || fail "cowfs POOL/guest2 failed"
	at_exit "umount -l '$m2' 2>/dev/null"
	measure "one mount per guest, " "$m1/big" "$m2/big"
	echo >&2 "  one mount per guest: Cached +$((first / 1024)) MiB after guest1's mount, +$((second / 1024)) MiB after guest2's; backing ext4 pages $((ext4_res / 1024)) MiB"
	[ -z "$why" ] || fail "one mount per guest: $why"
	umount "$m1" && umount "$m2" || fail "unmounting the guest mounts failed"
	cowfs_mount
fi

# For comparison (reported, not asserted; without passthrough only, where
# drop_cache applies): with drop_cache=none the backing pages stay, about
# two copies in all.
cowfs_umount
[ "$passthrough" = 1 ] && exit 0
cowfs_mount -o drop_cache=none
sync
echo 3 >/proc/sys/vm/drop_caches
c0=$(cached_kib)
cat "$MNT/guest1/big" "$MNT/guest2/big" >/dev/null
c1=$(cached_kib)
echo >&2 "  with -o drop_cache=none: Cached +$(((c1 - c0) / 1024)) MiB, backing ext4 pages $(($(resident_kib "$POOL/guest1/big") / 1024)) MiB"
cowfs_umount
