#!/bin/bash
# Guest mode (`cowfs POOL/GUEST MNT`, #10): guest1 served alone at M1, guest2
# alone at M2 and the whole pool at MNT, all at once.  A write to a CoW link
# through M1 gives guest1 a private copy (staged in the pool's .hashdb/tmp);
# guest2 (through M2 and MNT) and the object keep the shared file; all three
# mounts read what they should.  Nothing is hidden at a guest mount's root
# (the pool's state is above it), nothing leads out of it, a chroot into it
# runs programs, vunify remove refuses the guest while it is served alone,
# sources that are neither pool nor guest are refused (exit 1, a message
# naming the path and the reason), and mount -t fuse.cowfs POOL/GUEST (the
# fstab line) works through mount.fuse3.
source "$(dirname "$0")/common.bash"
command -v findmnt >/dev/null || skip "findmnt (util-linux) is not installed"
cowfs_pool 2
base=$(dirname "$POOL")
M1=$base/m1
M2=$base/m2
mkdir -p "$M1" "$M2"
F=etc/passwd
is_cowlink "$POOL/guest1/$F" || fail "sample $F is not a CoW link"
same_inode "$POOL/guest1/$F" "$POOL/guest2/$F" || fail "sample $F is not shared by both guests"
# A guest's own top-level names that a pool mount hides.
mkdir "$POOL/guest1/.hashdb" "$POOL/guest1/.removing~x"
obj_ino=$(ino "$POOL/guest2/$F")
obj_sum=$(sha256sum <"$POOL/guest2/$F")
obj_links=$(stat -c %h "$POOL/guest2/$F")
orig=$(cat "$POOL/guest2/$F")

# guest_mount SRC MNT: a guest-mode cowfs in the background; its pid in
# GPIDS[MNT].  The daemon must mount (exit 0 only after unmount).
declare -A GPIDS
guest_mount() {
	"$COWFS" -f "$1" "$2" 2>>"$COWFS_LOG" &
	GPIDS[$2]=$!
	at_exit "fusermount3 -u '$2' 2>/dev/null; kill ${GPIDS[$2]} 2>/dev/null"
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$2" && return 0
		kill -0 "${GPIDS[$2]}" 2>/dev/null || { cat "$COWFS_LOG" >&2; fail "cowfs $1 exited at mount"; }
		sleep 0.1
	done
	fail "cowfs $1 did not mount within 10 s"
}
guest_umount() {
	local rc=0
	fusermount3 -u "$1" || fail "fusermount3 -u $1 failed"
	wait "${GPIDS[$1]}" || rc=$?
	[ "$rc" = 0 ] || { cat "$COWFS_LOG" >&2; fail "cowfs of $1 exited $rc after unmount"; }
	mountpoint -q "$1" && fail "$1 still mounted after unmount"
	return 0
}

cowfs_mount	# first: its cleanup waits for every child, so it must run last
guest_mount "$POOL/guest1" "$M1"
guest_mount "$POOL/guest2" "$M2"
assert_eq "$POOL/guest1" "$(findmnt -n -o SOURCE "$M1")" "mount source of M1"
findmnt -n -o FSTYPE "$M1" | grep -qx fuse.cowfs || fail "M1 is not a fuse.cowfs mount"

# The root is the guest's root: nothing of the pool, nothing hidden.
[ -x "$M1/usr/bin/ls" ] || fail "M1 does not serve guest1's root"
[ -e "$M1/guest1" ] && fail "M1 serves the pool, not the guest"
assert_eq "$(ino "$POOL/guest1")" "$(ino "$M1")" "inode of M1's root"
[ -d "$M1/.hashdb" ] || fail "guest1's own .hashdb is hidden in guest mode"
[ -d "$M1/.removing~x" ] || fail "guest1's own .removing~x is hidden in guest mode"
ls -A "$M1" | grep -qx .hashdb || fail "readdir of M1 leaves out guest1's .hashdb"
mkdir "$M1/.hashdb/own" || fail "mkdir in guest1's own .hashdb through M1"
[ -d "$POOL/guest1/.hashdb/own" ] || fail "guest1's .hashdb/own not on disk"
# (a pool mount hides .hashdb only at its own root)
[ -d "$MNT/guest1/.hashdb/own" ] || fail "the pool mount hides guest1's own .hashdb"
# .. at the root is the mountpoint's parent, not the pool.
same_inode "$M1/.." "$base" || fail "M1/.. is not the mountpoint's parent"
[ -e "$M1/../pool/.hashdb" ] || fail "the test's own path to the pool"
(cd "$M1" && cd .. && [ "$(pwd -P)" = "$base" ]) || fail "cd .. from M1's root left the mount's parent"
# The guest's own cowlink temporaries stay hidden everywhere.
echo t >"$POOL/guest1/etc/.cowlink~1~0123456789abcdef~tmp"
[ -e "$M1/etc/.cowlink~1~0123456789abcdef~tmp" ] && fail "a cowlink temporary is visible through M1"
rm "$POOL/guest1/etc/.cowlink~1~0123456789abcdef~tmp"

# CoW through M1: guest1 gets a private copy, nobody else sees the write.
assert_eq 1 "$(stat -c %h "$M1/$F")" "nlink of a CoW link through M1"
echo "written-through-m1" >>"$M1/$F" || fail "append through M1 failed"
is_cowlink "$POOL/guest1/$F" && fail "guest1's $F is still the CoW link after a write"
same_inode "$POOL/guest1/$F" "$POOL/guest2/$F" && fail "guest1 and guest2 still share $F"
assert_eq "$obj_ino" "$(ino "$POOL/guest2/$F")" "guest2's inode of $F"
assert_eq "$obj_sum" "$(sha256sum <"$POOL/guest2/$F")" "the object's content"
assert_eq $((obj_links - 1)) "$(stat -c %h "$POOL/guest2/$F")" "the object's link count"
is_cowlink "$POOL/guest2/$F" || fail "guest2's $F lost its CoW link"
assert_eq "$orig" "$(cat "$M2/$F")" "guest2's $F through M2"
assert_eq "$orig" "$(cat "$MNT/guest2/$F")" "guest2's $F through the pool mount"
assert_eq "written-through-m1" "$(tail -n1 "$M1/$F")" "guest1's $F through M1"
assert_eq "written-through-m1" "$(tail -n1 "$MNT/guest1/$F")" "guest1's $F through the pool mount"
assert_eq "written-through-m1" "$(tail -n1 "$POOL/guest1/$F")" "guest1's $F on disk"
ls -A "$POOL/.hashdb/tmp" | grep -q . && fail "copy-up left something in .hashdb/tmp"
ls -A "$POOL/guest1/etc" | grep -q '^\.cowlink~' && fail "copy-up left a temporary in guest1/etc"
"$VUNIFY" verify -q "$POOL" || fail "vunify verify after the copy-up through M1"

# Two daemons copying up one path at once (M1 and the pool mount, both for
# guest1): each append must survive; the loser of the race must not put a
# fresh copy of the object over the winner's written copy.
mapfile -t shared < <(cd "$POOL/guest1" && find usr/share-licenses usr/lib -type f 2>/dev/null | head -n 40)
n=0
for f in "${shared[@]}"; do
	is_cowlink "$POOL/guest1/$f" || continue
	same_inode "$POOL/guest1/$f" "$POOL/guest2/$f" || continue
	n=$((n + 1))
	{ echo "via-m1" >>"$M1/$f"; } &
	p1=$!
	{ echo "via-pool" >>"$MNT/guest1/$f"; } &
	wait "$p1" && wait $! || fail "concurrent appends to $f failed"
	grep -qx via-m1 "$POOL/guest1/$f" || fail "$f: the append through M1 was lost"
	grep -qx via-pool "$POOL/guest1/$f" || fail "$f: the append through the pool mount was lost"
	is_cowlink "$POOL/guest2/$f" || fail "$f: guest2's copy lost its CoW link"
	[ "$n" -ge 20 ] && break
done
[ "$n" -ge 5 ] || fail "too few shared files for the race ($n)"
ls -A "$POOL/.hashdb/tmp" | grep -q . && fail "racing copy-ups left something in .hashdb/tmp"

# A chroot into the guest mount runs the guest's programs.
out=$(chroot "$M1" /bin/sh -c 'echo hello from $(cat /etc/hostname)') || fail "chroot into M1 failed"
assert_eq "hello from guest1" "$out" "/bin/sh in a chroot into M1"
chroot "$M1" /bin/sh -c 'echo chroot-write >>/etc/hostname' || fail "write in the chroot failed"
assert_eq guest2 "$(cat "$M2/etc/hostname")" "guest2's hostname after guest1's chroot write"

# vunify remove refuses a guest served alone.
RC=0
"$VUNIFY" remove "$POOL" guest1 2>"$base/busy.err" || RC=$?
assert_eq 6 "$RC" "vunify remove of guest1 while M1 serves it"
grep -q "guest1: in use: cowfs serves it at $(realpath "$M1")" "$base/busy.err" ||
	fail "vunify remove message: $(cat "$base/busy.err")"
[ -d "$POOL/guest1/usr" ] || fail "guest1 damaged by the refused removal"

# Sources that are neither a pool nor a guest; a guest served twice; a
# mountpoint inside the pool.
M4=$base/m4
mkdir -p "$M4"
for src in "$POOL/guest1/etc" "$POOL/.hashdb" "$POOL/.hashdb/tmp"; do
	RC=0
	out=$("$COWFS" "$src" "$M4" 2>&1) || RC=$?
	assert_eq 1 "$RC" "exit status for source $src"
	case $out in *"$src is neither a pool nor a guest"*) ;; *) fail "source $src: $out" ;; esac
done
mkdir "$POOL/lost+found"
expect_fail "neither a pool nor a guest" "$COWFS" "$POOL/lost+found" "$M4"
rmdir "$POOL/lost+found"
expect_fail "already mounted by cowfs at $M1" "$COWFS" "$POOL/guest1" "$M4"
mkdir "$POOL/guest2/mnt-inside"
expect_fail "inside the pool" "$COWFS" "$POOL/guest1" "$POOL/guest2/mnt-inside"
rmdir "$POOL/guest2/mnt-inside"
mountpoint -q "$M4" && fail "a refused start left a mount"

guest_umount "$M1"
guest_umount "$M2"
cowfs_umount
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$COWFS_LOG"; then
	cat "$COWFS_LOG" >&2
	fail "a cowfs reported a sanitizer error"
fi

# mount -t fuse.cowfs POOL/GUEST (what an fstab line does): mount(8) runs
# mount.fuse3, which runs "cowfs POOL/GUEST MNT -o OPTS" from the system
# path.  Link the binary under test as /usr/local/sbin/cowfs when no cowfs
# is there; else run mount.fuse3's step directly with it first in PATH.
command -v mount.fuse3 >/dev/null || [ -x /sbin/mount.fuse3 ] || skip "mount.fuse3 (fuse3) is not installed"
if [ ! -e /usr/local/sbin/cowfs ] && [ ! -e /usr/sbin/cowfs ] && [ ! -e /sbin/cowfs ]; then
	mkdir -p /usr/local/sbin
	ln -s "$COWFS" /usr/local/sbin/cowfs
	at_exit "rm -f /usr/local/sbin/cowfs"
	mount -t fuse.cowfs "$POOL/guest2" "$M1" -o timeout=5 || fail "mount -t fuse.cowfs POOL/guest2 failed"
	at_exit "umount -l '$M1' 2>/dev/null"
	assert_eq "$POOL/guest2" "$(findmnt -n -o SOURCE "$M1")" "mount -t: source"
	assert_eq guest2 "$(cat "$M1/etc/hostname")" "mount -t: guest2's hostname"
	umount "$M1" || fail "umount (mount -t) failed"
	printf '%s %s fuse.cowfs defaults,timeout=5 0 0\n' "$POOL/guest1" "$M1" >"$base/fstab"
	mount -T "$base/fstab" "$M1" || fail "mount from a guest's fstab line failed"
	[ -x "$M1/usr/bin/ls" ] || fail "fstab: guest1's root not served"
	umount "$M1" || fail "umount (fstab) failed"
else
	echo "NOTE: a cowfs is on the system path; testing mount.fuse3 directly" >&2
	bindir=$base/bin
	mkdir -p "$bindir"
	ln -s "$COWFS" "$bindir/cowfs"
	PATH=$bindir:$PATH mount.fuse3 "$POOL/guest2" "$M1" -t cowfs -o timeout=5 ||
		fail "mount.fuse3 POOL/guest2 -t cowfs failed"
	at_exit "umount -l '$M1' 2>/dev/null"
	assert_eq "$POOL/guest2" "$(findmnt -n -o SOURCE "$M1")" "mount.fuse3: source"
	assert_eq guest2 "$(cat "$M1/etc/hostname")" "mount.fuse3: guest2's hostname"
	umount "$M1" || fail "umount (mount.fuse3) failed"
fi
mountpoint -q "$M1" && fail "still mounted after umount"
exit 0
