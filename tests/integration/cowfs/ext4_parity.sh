#!/bin/bash
# Two findings of an external filesystem test suite run through the mount
# (#10), each checked against the same steps on plain ext4:
# 1. fstat() of an open directory that another process replaced with
#    rename() (or removed with rmdir) succeeds with nlink 0, and reading it
#    gives no entries (was: ESTALE, the daemon reopened it by its handle).
# 2. setfacl by the owner who is not in the file's group clears setgid (was:
#    kept, the daemon set the ACL with its own CAP_FSETID); by root it stays.
source "$(dirname "$0")/common.bash"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v setfacl >/dev/null || skip "setfacl (acl) is not installed"
cowfs_pool 1
cowfs_mount
plain=$(dirname "$POOL")/plain
mkdir -p "$plain"
chmod 1777 "$plain"
through=$MNT/guest1/tmp

# removed_dir DIR HOW: DIR/victim is open in this program while another
# process replaces it (HOW=rename: mv -T DIR/other DIR/victim) or removes it
# (HOW=rmdir); prints "nlink=N entries=M" or the error of fstat/listdir.
removed_dir() {
	mkdir -p "$1/victim" "$1/other"
	python3 - "$1" "$2" <<'EOF'
import os, subprocess, sys
d, how = sys.argv[1], sys.argv[2]
fd = os.open(os.path.join(d, "victim"), os.O_RDONLY | os.O_DIRECTORY)
if how == "rename":
    subprocess.run(["mv", "-T", os.path.join(d, "other"), os.path.join(d, "victim")], check=True)
else:
    subprocess.run(["rmdir", os.path.join(d, "victim")], check=True)
try:
    st = os.fstat(fd)
    n = len(os.listdir(fd))
    print("nlink=%d entries=%d" % (st.st_nlink, n))
except OSError as e:
    print("error: %s" % e.strerror)
EOF
	rm -rf "$1/victim" "$1/other"
}
for how in rename rmdir; do
	want=$(removed_dir "$plain" $how)
	assert_eq "nlink=0 entries=0" "$want" "plain ext4, $how"
	assert_eq "$want" "$(removed_dir "$through" $how)" "through the mount, $how"
done

# setfacl and setgid.  The file belongs to uid 1000 and a group uid 1000 is
# not in; setgid is set by root.  as_user runs as 1000:1000, no groups.
acl_mode() { # DIR WHO: the mode after WHO (user|root) sets an access ACL
	local f=$1/sgid-$2
	rm -f "$f"
	touch "$f"
	chown 1000:100 "$f"
	chmod 2775 "$f"
	if [ "$2" = user ]; then
		as_user setfacl -m u:0:r "$f" || fail "setfacl by the owner on $f"
	else
		setfacl -m u:0:r "$f" || fail "setfacl by root on $f"
	fi
	stat -c %a "$f"
	rm -f "$f"
}
for who in user root; do
	want=$(acl_mode "$plain" $who)
	assert_eq "$want" "$(acl_mode "$through" $who)" "mode after setfacl by $who"
done
assert_eq 775 "$(acl_mode "$plain" user)" "plain ext4: setfacl by a non-member owner"
assert_eq 2775 "$(acl_mode "$plain" root)" "plain ext4: setfacl by root"
# A member of the group keeps it (as_user has no groups: give it 100).
f=$through/sgid-member
touch "$f"; chown 1000:100 "$f"; chmod 2775 "$f"
setpriv --reuid 1000 --regid 1000 --groups 100 -- setfacl -m u:0:r "$f" || fail "setfacl by a member"
assert_eq 2775 "$(stat -c %a "$f")" "mode after setfacl by an owner in the group"
cowfs_umount
exit 0
