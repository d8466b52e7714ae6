#!/bin/bash
# cowfs@.service and the fstab example: systemd-analyze verify, and the
# unit's commands run by hand (mkdir, cowfs -f POOL MOUNTPOINT, stop,
# fusermount) serve the pool; `mount -t fuse.cowfs` as in the fstab example
# mounts it too.
source "$(dirname "$0")/../lib.sh"
need_root
command -v systemd-analyze >/dev/null || skip "systemd-analyze is missing (apt-get install systemd)"
BUILDDIR=${BUILDDIR:-$(cd "$(dirname "$VUNIFY")/.." && pwd)}
built=$BUILDDIR/systemd
d=$(scratch_dir)
pool=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$pool" 2 >/dev/null 2>&1
inst=$(systemd-escape --path "$pool")
u=$d/units; mkdir -p "$u"
sbindir=$(sed -n 's|^ExecStart=\(.*\)/cowfs -f.*|\1|p' "$built/cowfs@.service")
[ -n "$sbindir" ] || fail "no cowfs ExecStart in cowfs@.service"
cowfs_bin=${COWFS:-/bin/true}
sed "s|$sbindir/cowfs|$cowfs_bin|g" "$built/cowfs@.service" > "$u/cowfs@.service"
manopt=()
if [ -f "$SRCDIR/man/cowfs.8" ]; then
	mkdir -p "$d/man/man8"; cp "$SRCDIR/man/cowfs.8" "$d/man/man8/"
else
	echo "NOTE: man/cowfs.8 not in this tree: Documentation= not checked" >&2
	manopt=(--man=no)
fi
(cd "$u" && MANPATH=$d/man systemd-analyze verify "${manopt[@]}" "$u/cowfs@$inst.service") > "$d/v.out" 2>&1 ||
	fail "systemd-analyze verify: $(cat "$d/v.out")"
[ ! -s "$d/v.out" ] || fail "systemd-analyze verify warns: $(cat "$d/v.out")"
grep -q '^[^#].* fuse\.cowfs ' "$SRCDIR/systemd/fstab.example" || fail "fstab example has no fuse.cowfs line"

need_fuse
# The unit's environment and commands, expanded as systemd does.
mnt=$d/mnt
src=$pool
expand() {
	local c=$1
	c=${c//%f/$src}; c=${c//%i/$(systemd-escape --path "$src")}
	c=${c//\$\{MOUNTPOINT\}/$mnt}; c=${c//\$COWFS_OPTS/}
	echo "$c"
}
# serve WHAT PATH: the unit's ExecStart for $src, which must mount $mnt
# and show the pool's guest1/etc/passwd at $mnt/PATH, then stopped as
# systemd stops it (SIGTERM, ExecStopPost), which must unmount it.
serve() {
	local what=$1 path=$2 start post pid
	start=$(expand "$(sed -n 's/^ExecStart=//p' "$u/cowfs@.service")")
	post=$(expand "$(sed -n 's/^ExecStopPost=-//p' "$u/cowfs@.service")")
	# shellcheck disable=SC2086
	$start & pid=$!
	at_exit "kill $pid 2>/dev/null; umount -l '$mnt' 2>/dev/null"
	for _ in $(seq 1 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
	mountpoint -q "$mnt" || fail "$what did not mount $mnt"
	cmp "$pool/guest1/etc/passwd" "$mnt/$path" || fail "$what does not serve guest1 at $mnt/$path"
	kill -TERM "$pid"; wait "$pid" || true
	$post 2>/dev/null || true
	# an if, not `&&`: a false last command would be the function's status
	if mountpoint -q "$mnt"; then fail "$what: still mounted after stop"; fi
}
pre=$(expand "$(sed -n 's/^ExecStartPre=//p' "$u/cowfs@.service")")
$pre
serve "cowfs from the unit's ExecStart" guest1/etc/passwd

# A guest instance (cowfs@$(systemd-escape --path POOL/GUEST)): the same
# commands serve that guest alone at the mount's root (the pool needs its
# state to tell a guest from a pool: unify it once first).
"$VUNIFY" unify "$pool" >/dev/null 2>&1 || fail "vunify unify failed"
src=$pool/guest1
serve "cowfs@ of a guest" etc/passwd

# fstab: `mount -t fuse.cowfs POOL MNT -o OPTS` runs
# `mount.fuse3 POOL MNT -t cowfs -o OPTS`, which starts "cowfs POOL MNT -o
# OPTS" from PATH.  mount(8) resets PATH to the system's, where the built
# cowfs is not, so the test runs that mount.fuse3 step itself.
command -v mount.fuse3 >/dev/null || skip "mount.fuse3 missing (fuse3 package)"
bindir=$d/bin; mkdir -p "$bindir"; ln -s "$COWFS" "$bindir/cowfs"
opts=$(awk '!/^#/ && $3 == "fuse.cowfs" { print $4; exit }' "$SRCDIR/systemd/fstab.example" | sed 's/,x-systemd[^,]*//g; s/,nofail//; s/^defaults,//')  # mount(8) drops these
PATH=$bindir:$PATH mount.fuse3 "$pool" "$mnt" -t cowfs -o "$opts" || fail "mount.fuse3 -t cowfs -o $opts failed"
cmp "$pool/guest2/etc/passwd" "$mnt/guest2/etc/passwd" || fail "fstab-style mount does not serve the pool"
umount "$mnt"
