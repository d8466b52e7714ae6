#!/bin/bash
# O_TMPFILE through the mount works as on ext4: an unnamed file owned by
# the caller with its umask applied, named later with linkat(2) through
# /proc/self/fd (the data written before is there), and one opened with
# O_EXCL can never be named (ENOENT).  The other guest sees nothing.
source "$(dirname "$0")/common.bash"
py=/usr/bin/python3
[ -x "$py" ] || skip "python3 is not installed"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
cowfs_pool 2
mkdir "$POOL/guest1/tmp1" && chmod 1777 "$POOL/guest1/tmp1"
cat >"$POOL/../tmpfile.py" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def link_fd(fd, dst):
    if libc.linkat(-100, b"/proc/self/fd/%d" % fd, -100, dst.encode(), 0x400) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
d, name = sys.argv[1], sys.argv[2]
os.umask(0o027)
fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o666)
os.write(fd, b"written while unnamed\n")
st = os.fstat(fd)
assert st.st_nlink == 0, "an O_TMPFILE has %d links" % st.st_nlink
link_fd(fd, os.path.join(d, name))
os.close(fd)
fd = os.open(d, os.O_TMPFILE | os.O_RDWR | os.O_EXCL, 0o600)
try:
    link_fd(fd, os.path.join(d, name + ".excl"))
    sys.exit("an O_EXCL O_TMPFILE was named")
except OSError as e:
    if e.errno != 2:
        raise
PY
cowfs_mount
"$py" "$POOL/../tmpfile.py" "$MNT/guest1/tmp1" byroot || fail "O_TMPFILE as root failed"
setpriv --reuid 1000 --regid 1000 --clear-groups "$py" "$POOL/../tmpfile.py" "$MNT/guest1/tmp1" byuser ||
	fail "O_TMPFILE as uid 1000 failed"
for n in byroot byuser; do
	[ "$(cat "$POOL/guest1/tmp1/$n")" = "written while unnamed" ] || fail "$n: wrong content"
	[ -e "$POOL/guest1/tmp1/$n.excl" ] && fail "$n.excl exists"
done
assert_eq "0:0 640" "$(stat -c '%u:%g %a' "$POOL/guest1/tmp1/byroot")" "root's tmpfile owner and mode"
assert_eq "1000:1000 640" "$(stat -c '%u:%g %a' "$POOL/guest1/tmp1/byuser")" "uid 1000's tmpfile owner and mode"
[ -e "$MNT/guest2/tmp1" ] && fail "guest2 sees guest1's directory"
cowfs_umount
