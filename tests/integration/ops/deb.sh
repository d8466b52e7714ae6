#!/bin/bash
# The Debian package: `dpkg-buildpackage -us -uc -b` builds a .deb from a
# copy of this tree; `dpkg -i` installs it; the installed vunify runs
# (--version, man page, units, completion, the shipped /etc/vunify.conf
# keeps /etc/shadow private); `dpkg --purge` removes it again.
# Skipped (loudly) when the packaging tools are missing: scripts/deps
# installs them.
source "$(dirname "$0")/../lib.sh"
need_root
for t in dpkg-buildpackage dh fakeroot; do
	command -v "$t" >/dev/null || skip "$t is missing (apt-get install debhelper dpkg-dev fakeroot; scripts/deps does)"
done
if dpkg-query -W -f='${Status}' cowfs 2>/dev/null | grep -q "install ok installed"; then
	skip "a cowfs package is installed on this host already; not replacing it"
fi
d=$(scratch_dir)
mkdir "$d/src"
# The tree as it is (committed or not), without build directories.
tar -C "$SRCDIR" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$d/src" -xf -
(cd "$d/src" && dpkg-buildpackage -us -uc -b) > "$d/build.log" 2>&1 ||
	fail "dpkg-buildpackage failed: $(tail -30 "$d/build.log")"
deb=$(ls "$d"/cowfs_*_*.deb)
[ -f "$deb" ] || fail "no .deb built: $(ls "$d")"
dpkg-deb -c "$deb" | awk '{ print $6 }' > "$d/contents"
for f in ./usr/sbin/vunify ./etc/vunify.conf ./etc/cron.d/vunify ./usr/libexec/vunify-nightly \
	 ./lib/systemd/system/vunify@.service ./lib/systemd/system/vunify@.timer \
	 ./lib/systemd/system/cowfs@.service ./usr/share/man/man8/vunify.8.gz \
	 ./usr/share/man/man5/vunify.conf.5.gz ./usr/share/man/man5/vunify-pool.5.gz \
	 ./usr/share/bash-completion/completions/vunify ./usr/share/bash-completion/completions/cowfs; do
	grep -qxF "$f" "$d/contents" || fail "$f is not in the package"
done
# libfuse built into cowfs from subprojects/fuse3 (a system libfuse older
# than 3.17) is not shipped: no static library, headers or fuse3.pc.
! grep -qE 'libfuse3|/include/fuse3|fuse3\.pc' "$d/contents" ||
	fail "the package carries libfuse files: $(grep -E 'libfuse3|/include/fuse3|fuse3\.pc' "$d/contents" | xargs)"

at_exit "dpkg --purge cowfs >/dev/null 2>&1"
dpkg -i "$deb" > "$d/install.log" 2>&1 || fail "dpkg -i failed: $(cat "$d/install.log")"
ver=$(sed -n '1s/^cowfs (\([^)]*\)).*/\1/p' "$SRCDIR/debian/changelog")
assert_eq "vunify ${ver%%-*}" "$(/usr/sbin/vunify --version)" "installed vunify --version"
if grep -qx ./usr/sbin/cowfs "$d/contents"; then
	/usr/sbin/cowfs --version > "$d/cowfs.version" 2>&1 || fail "installed cowfs --version failed: $(cat "$d/cowfs.version")"
else
	echo "NOTE: cowfs is not built in this tree; the package carries vunify only" >&2
fi
man -w vunify > /dev/null || fail "man vunify does not find the installed page"
man -w 5 vunify-pool > /dev/null || fail "man 5 vunify-pool does not find the installed page"
[ -x /usr/libexec/vunify-nightly ] || fail "vunify-nightly is not executable"
dpkg-query -W -f='${Conffiles}\n' cowfs | grep -q /etc/vunify.conf || fail "/etc/vunify.conf is not a conffile"
if command -v systemd-analyze >/dev/null; then
	(cd "$d" && systemd-analyze verify --man=no /lib/systemd/system/vunify@vservers.service \
		/lib/systemd/system/vunify@vservers.timer) || fail "installed units do not verify"
fi
# The installed tool with the installed configuration.
pool=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$pool" 2 >/dev/null 2>&1
for g in guest1 guest2; do echo same > "$pool/$g/etc/shadow"; echo same > "$pool/$g/etc/other"; done
env -u VUNIFY_CONFIG /usr/sbin/vunify unify -q "$pool" || fail "installed vunify unify failed"
is_cowlink "$pool/guest1/etc/other" || fail "installed vunify did not unify"
! is_cowlink "$pool/guest1/etc/shadow" || fail "installed /etc/vunify.conf did not keep /etc/shadow private"
dpkg --purge cowfs > "$d/purge.log" 2>&1 || fail "dpkg --purge failed: $(cat "$d/purge.log")"
[ ! -e /usr/sbin/vunify ] && [ ! -e /etc/vunify.conf ] || fail "purge left files behind"
