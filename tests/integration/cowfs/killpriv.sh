#!/bin/bash
# setuid, setgid and file capabilities after a write, truncate, O_TRUNC
# open, fallocate, copy_file_range or chown through the mount are what
# plain ext4 leaves after the same step by the same user (#10: cowfs
# negotiates FUSE_HANDLE_KILLPRIV_V2, so the daemon, not the kernel,
# removes them where the caller lacks CAP_FSETID).  Each case is run on a
# plain ext4 directory and through the mount, and the modes and
# capabilities compared.  One documented difference: with FUSE passthrough
# a write by root removes setuid/setgid too (the backing file writes
# without CAP_FSETID, docs/cowfs.md "FUSE passthrough"); without it, root
# keeps them as on ext4; and a write by a user in the file's group removes
# a setgid that is not group-executable (ext4 keeps it for a group member:
# the backing file writes as root without CAP_FSETID, in no group; the bit
# without group-execute marked mandatory locking, gone since Linux 5.15).
source "$(dirname "$0")/common.bash"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
# /usr/bin/python3: the user of the steps may not reach a python3 on root's PATH.
PY=/usr/bin/python3
[ -x $PY ] || skip "$PY is not installed"
command -v setcap >/dev/null || skip "setcap (libcap2-bin) is not installed"
cowfs_pool 1
cowfs_mount -d
passthrough=no
grep -q 'max_stack_depth' "$COWFS_LOG" && passthrough=yes
case " ${COWFS_TEST_OPTS:-} " in *passthrough=off*)
	[ $passthrough = no ] || fail "passthrough=off, but the kernel was asked for passthrough" ;;
*)
	[ $passthrough = yes ] || skip "the kernel did not agree to FUSE passthrough" ;;
esac
plain=$(dirname "$POOL")/plain
mkdir -p "$plain" "$POOL/guest1/kp"
chmod 1777 "$plain" "$POOL/guest1/kp"

# step WHO OP FILE: run OP on FILE as WHO (user: uid/gid 1000, no groups).
step() {
	local run=()
	[ "$1" = user ] && run=(setpriv --reuid 1000 --regid 1000 --clear-groups --)
	case $2 in
	write) "${run[@]}" sh -c 'echo x >>"$1"' _ "$3" ;;
	truncate) "${run[@]}" truncate -s 1 "$3" ;;
	ftruncate) "${run[@]}" $PY -c 'import os,sys
fd = os.open(sys.argv[1], os.O_WRONLY); os.ftruncate(fd, 1)' "$3" ;;
	otrunc) "${run[@]}" sh -c ': >"$1"' _ "$3" ;;
	fallocate) "${run[@]}" fallocate -l 65536 "$3" ;;
	copyrange) "${run[@]}" $PY -c 'import os,sys
s = os.open(sys.argv[1] + ".src", os.O_RDONLY); d = os.open(sys.argv[1], os.O_WRONLY)
os.copy_file_range(s, d, 4, 0, 0)' "$3" ;;
	chown) "${run[@]}" chown 1000:1000 "$3" ;;
	esac
}

# result SETUP_DIR STEP_DIR WHO OP MODE [cap]: make a file of uid/gid 1000
# with MODE (and a file capability) in SETUP_DIR, run the step on its name in
# STEP_DIR, print "mode caps" as seen in SETUP_DIR (the backing file).
result() {
	local name=kp-$3-$4-$5${6:+-cap} f
	f=$1/$name
	rm -f "$f" "$f.src"
	printf 'data' >"$f"
	printf 'more' >"$f.src"
	chmod 644 "$f.src"
	chown 1000:1000 "$f" "$f.src"
	chmod "$5" "$f"
	[ -n "${6:-}" ] && { setcap cap_net_raw+ep "$f" || fail "setcap on $f"; }
	step "$3" "$4" "$2/$name" || fail "$3 $4 on $2/$name failed"
	printf '%s %s\n' "$(stat -c %a "$f")" "$(getcap "$f" | awk '{print $2}')"
}

n=0
for who in user root; do
	for op in write truncate ftruncate otrunc fallocate copyrange; do
		for mode in 4755 2755 2745 6775; do
			want=$(result "$plain" "$plain" $who $op $mode)
			got=$(result "$POOL/guest1/kp" "$MNT/guest1/kp" $who $op $mode)
			if [ $op = write ] && [ $passthrough = yes ]; then
				want="$(printf '%o' $((8#$mode & ~8#6000))) "
			fi
			assert_eq "$want" "$got" "mode after $op by $who of a $mode file"
			n=$((n + 1))
		done
	done
	# chown as root; and file capabilities, which any write, truncate or
	# chown removes (root included).
	[ $who = root ] || continue
	for mode in 4755 2755 2745; do
		assert_eq "$(result "$plain" "$plain" root chown $mode)" \
			"$(result "$POOL/guest1/kp" "$MNT/guest1/kp" root chown $mode)" "chown by root of a $mode file"
	done
	for op in write truncate otrunc chown; do
		want=$(result "$plain" "$plain" root $op 755 cap)
		assert_eq "755 " "$want" "plain ext4: $op by root keeps the file capability"
		assert_eq "$want" "$(result "$POOL/guest1/kp" "$MNT/guest1/kp" root $op 755 cap)" \
			"file capability after $op by root"
	done
done
# The plain-ext4 side really removes setuid for a user's write (else the
# comparison above proves nothing).
assert_eq "755 " "$(result "$plain" "$plain" user write 4755)" "plain ext4: a user's write removes setuid"
assert_eq "4755 " "$(result "$plain" "$plain" root write 4755)" "plain ext4: root's write keeps setuid"
echo "killpriv: $n cases equal to ext4 (passthrough=$passthrough)"
cowfs_umount
