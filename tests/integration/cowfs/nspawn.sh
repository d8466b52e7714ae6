#!/bin/bash
# A real container runtime on the mount (#13): systemd-nspawn boots nothing
# but runs programs in a real Debian guest (debootstrap --variant=minbase
# bookworm) served by cowfs, and apt-get installs a package in it.  What
# guest1 changes stays guest1's:
#   - guest2's manifest (path, type, mode, owner, size, mtime, content hash,
#     xattrs) is unchanged,
#   - no pool object changed content, every object keeps its immutable flag
#     and its marker, and `vunify verify` is clean afterwards.
# The debootstrapped tree is cached as a tarball in $COWFS_TEST_CACHE
# (default /var/cache/cowfs-test): the first run builds it (a minute or two),
# later runs extract it in seconds.  The mirror is the host's, read from its
# apt configuration at run time (or $COWFS_TEST_MIRROR).
# Skips (exit 77) when systemd-nspawn or debootstrap is missing or the mirror
# cannot be reached.
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/../vunify/helpers.bash"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is not installed (package systemd-container)"
command -v debootstrap >/dev/null || skip "debootstrap is not installed"

SUITE=bookworm
PKG=hello	# not in minbase; /usr/bin/hello prints "Hello, world!"
CACHE=${COWFS_TEST_CACHE:-/var/cache/cowfs-test}
TARBALL=$CACHE/debian-$SUITE-minbase.tar

# The host's Debian mirror for $SUITE, from its apt configuration.
MIRROR=${COWFS_TEST_MIRROR:-$(apt-get indextargets --format '$(SITE) $(CODENAME)' "Target-Of: deb" 2>/dev/null |
	awk -v s="$SUITE" '$2 == s { print $1; exit }')}
[ -n "$MIRROR" ] || skip "no Debian $SUITE mirror in the host's apt configuration (set COWFS_TEST_MIRROR)"
probe=$(mktemp)
at_exit "rm -f '$probe'"
timeout 60 /usr/lib/apt/apt-helper download-file "$MIRROR/dists/$SUITE/Release" "$probe" >/dev/null 2>&1 ||
	skip "the mirror $MIRROR is unreachable"

# The cached guest tree: built once, under a lock (parallel runs wait for
# it), written to a temporary name and renamed, so a killed build leaves no
# half tarball behind.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [ ! -s "$TARBALL" ]; then
	echo "building $TARBALL with debootstrap (once)" >&2
	build=$(scratch_dir)
	debootstrap --variant=minbase "$SUITE" "$build/root" "$MIRROR" >"$build/debootstrap.log" 2>&1 || {
		tail -30 "$build/debootstrap.log" >&2
		fail "debootstrap --variant=minbase $SUITE failed"
	}
	rm -rf "$build/root/var/cache/apt/archives/"*.deb "$build/root/var/lib/apt/lists/"*_*
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$build/root" -cf "$TARBALL.tmp" . ||
		fail "cannot write $TARBALL.tmp"
	mv "$TARBALL.tmp" "$TARBALL"
	chattr -R -i "$build" 2>/dev/null || true
	rm -rf "$build/root"
fi
exec 9>&-

# The pool: two guests from the same tarball, unified.
base=$(scratch_dir)
chmod 755 "$base"
POOL=$base/pool
MNT=$base/mnt
COWFS_LOG=$base/cowfs.log
mkdir -p "$POOL" "$MNT"
for g in guest1 guest2; do
	mkdir "$POOL/$g"
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$POOL/$g" -xf "$TARBALL" || fail "cannot extract $TARBALL"
	echo "$g" >"$POOL/$g/etc/hostname"
done
"$VUNIFY" unify "$POOL" >"$base/unify.log" 2>&1 || { cat "$base/unify.log" >&2; fail "vunify unify failed"; }
is_cowlink "$POOL/guest1/usr/bin/bash" || fail "guest1's /usr/bin/bash is not a CoW link after unify"
same_inode "$POOL/guest1/usr/bin/bash" "$POOL/guest2/usr/bin/bash" || fail "bash is not shared after unify"
orig2=$(fast_manifest "$POOL/guest2")
objsums() { (cd "$POOL/.hashdb/objects" && find . -type f -print0 | xargs -0 sha256sum | LC_ALL=C sort); }
objs=$(objsums)
[ -n "$objs" ] || fail "unify made no objects"
objects_sound "$POOL"

cowfs_mount
# nspawn: no registration with machined and no scope of its own (PID 1 need
# not be systemd); guest1's root is the cowfs view of it.  --console=pipe:
# with a terminal nspawn would give the command a pty (lines end in \r\n).
nspawn() { systemd-nspawn --register=no --keep-unit -q --console=pipe -D "$MNT/guest1" "$@" </dev/null; }

# (a) a command, its output
out=$(nspawn /bin/sh -c '. /etc/os-release; echo "$ID $VERSION_CODENAME $(cat /etc/hostname) $(id -u)"') ||
	fail "systemd-nspawn /bin/sh failed (cowfs log: $(tail -5 "$COWFS_LOG"))"
assert_eq "debian $SUITE guest1 0" "$out" "a command in the nspawn container"

# (b) apt-get update and install a package not in minbase, then run it
nspawn /usr/bin/test ! -e /usr/bin/$PKG || fail "$PKG is already in the minbase guest"
nspawn --setenv=DEBIAN_FRONTEND=noninteractive /bin/sh -c \
	"apt-get update -q && apt-get install -y -q --no-install-recommends $PKG" >"$base/apt.log" 2>&1 || {
	tail -30 "$base/apt.log" >&2
	fail "apt-get update/install $PKG in the container failed"
}
out=$(nspawn /usr/bin/$PKG) || fail "$PKG does not run in the container"
assert_eq "Hello, world!" "$out" "$PKG in the container"
nspawn /usr/bin/dpkg -s $PKG >/dev/null || fail "dpkg does not know $PKG in the container"
[ -x "$POOL/guest1/usr/bin/$PKG" ] || fail "$PKG is not in guest1's backing tree"
[ ! -e "$POOL/guest2/usr/bin/$PKG" ] || fail "$PKG showed up in guest2"
! is_cowlink "$POOL/guest1/var/lib/dpkg/status" || fail "guest1's dpkg status is still a CoW link"

cowfs_umount

# guest2 and the pool's objects are untouched
assert_same_manifest "$orig2" "$(fast_manifest "$POOL/guest2")" "guest2 after guest1's apt-get install"
changed=$(LC_ALL=C comm -13 <(printf '%s\n' "$objs") <(objsums)) || fail "cannot compare the pool's objects"
[ -z "$changed" ] || fail "pool objects changed or new: $(head -5 <<<"$changed")"
objects_sound "$POOL"
"$VUNIFY" verify "$POOL" >"$base/verify.log" 2>&1 || { cat "$base/verify.log" >&2; fail "vunify verify is not clean"; }
