#!/bin/bash
# cowfs killed (SIGKILL, injected by strace at the entry of a syscall) in the
# middle of every mutating step of a copy-up, an unlink, a rename and a hard
# link of a CoW link; after each kill cowfs is restarted and:
#   - no other guest sees anything of guest1's operation (manifests of
#     guest2 and guest3 unchanged, every pool object unchanged),
#   - guest1's path holds its old content or the complete new one (no
#     partial file), and no temporary name is visible through the mount or
#     left in the staging directory,
#   - every pool object carries its immutable flag and its marker,
#   - `vunify verify` is clean, and the operation then works.
# Every step must be reached: a syscall an operation never makes cannot kill
# it, but each operation must die at least at the steps listed for it.
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/../vunify/helpers.bash"
command -v strace >/dev/null || skip "strace is not installed"
base=$(scratch_dir)
chmod 755 "$base"
POOL=$base/pool MNT=$base/mnt COWFS_LOG=$base/cowfs.log
mkdir -p "$MNT"
"$SRCDIR/scripts/make-sample-guests" "$POOL" 3 >/dev/null
# an xattr on every program, so that a copy-up copies one (fsetxattr)
for g in "$POOL"/guest*; do
	find "$g/usr/bin" -type f -exec setfattr -n user.origin -v sample {} +
done
"$VUNIFY" unify "$POOL" >"$base/unify.log" 2>&1 || { cat "$base/unify.log" >&2; fail "vunify unify failed"; }
orig2=$(fast_manifest "$POOL/guest2")
orig3=$(fast_manifest "$POOL/guest3")
objsums() { (cd "$POOL/.hashdb/objects" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
objs=$(objsums)

# Wait until strace has attached to every thread of cowfs.
attached() {
	local t
	for t in /proc/"$COWFS_PID"/task/*; do
		grep -q '^TracerPid:[[:space:]]*0$' "$t/status" 2>/dev/null && return 1
	done
	return 0
}

check_sound() { # check_sound WHAT PATH SUM...: guest1's PATH has one of SUMs
	local what=$1 path=$2 s
	shift 2
	assert_same_manifest "$orig2" "$(fast_manifest "$POOL/guest2")" "$what: guest2"
	assert_same_manifest "$orig3" "$(fast_manifest "$POOL/guest3")" "$what: guest3"
	[ "$(objsums | grep -c .)" -gt 0 ] || fail "$what: no objects"
	# objects may only have gone (none do here); none may have changed
	while read -r line; do
		grep -qxF -- "$line" <<<"$objs" || fail "$what: object changed or new: $line"
	done < <(objsums)
	while IFS= read -r -d '' o; do
		is_immutable "$o" || fail "$what: object without its flag: $o"
		getfattr -n trusted.cowlink --only-values "$o" >/dev/null 2>&1 || fail "$what: object without marker: $o"
	done < <(find "$POOL/.hashdb/objects" -type f -print0)
	if [ -e "$MNT/guest1/$path" ]; then
		s=$(sha256sum <"$MNT/guest1/$path" | cut -c1-64)
		case " $* " in
		*" $s "*) ;;
		*) fail "$what: guest1/$path is neither the old nor the new content" ;;
		esac
	fi
	[ -z "$(find "$MNT/guest1" -name '.cowlink~*' | head -1)" ] || fail "$what: a temporary name is visible"
	[ -z "$(find "$POOL/.hashdb/tmp" -mindepth 1 | head -1)" ] || fail "$what: staging not cleaned at mount"
	[ -n "${VERIFY:-}" ] || return 0
	"$VUNIFY" verify "$POOL" >"$POOL.verify" 2>&1 || { cat "$POOL.verify" >&2; fail "$what: vunify verify"; }
}

kills=0
declare -A died=()
# run_killed OP SYSCALL WHEN: run OP on the next file with cowfs killed at
# the WHEN-th SYSCALL of any of its threads.
files=($(cd "$POOL/guest1" && find usr -type f | while read -r f; do
	same_inode "$f" "$POOL/guest2/$f" && echo "$f"; done))
next=0
run_killed() {
	local op=$1 sc=$2 when=$3 f g old new= st
	f=${files[$next]}
	g=${files[$((next + 1))]}
	next=$((next + 2))
	[ "$next" -lt "${#files[@]}" ] || fail "ran out of shared files"
	old=$(sha256sum <"$POOL/guest1/$f" | cut -c1-64)
	# LeakSanitizer cannot work in a process that was traced (ASan build)
	traced cowfs_mount
	traced strace -qq -f -p "$COWFS_PID" -o /dev/null -e trace="$sc" \
		-e inject="$sc":signal=SIGKILL:when="$when" & st=$!
	for _ in $(seq 100); do attached && break; sleep 0.05; done
	attached || fail "strace did not attach"
	case $op in
	copyup) new=$( (cat "$POOL/guest1/$f"; echo appended) | sha256sum | cut -c1-64)
		echo appended >>"$MNT/guest1/$f" ;;
	unlink) rm -f "$MNT/guest1/$f" ;;
	rename) python3 -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' \
		"$MNT/guest1/$f" "$MNT/guest1/$g" ;;	# rename(2): mv tries RENAME_NOREPLACE first
	link) ln "$MNT/guest1/$f" "$MNT/guest1/$f.link" ;;
	esac 2>/dev/null || true
	# strace ends with cowfs; if the operation never made that call, it
	# would wait forever: detach it.
	for _ in $(seq 20); do kill -0 "$COWFS_PID" 2>/dev/null || break; sleep 0.05; done
	kill "$st" 2>/dev/null || true
	wait "$st" 2>/dev/null || true
	if kill -0 "$COWFS_PID" 2>/dev/null; then
		cowfs_umount	# the operation made no such call
	else
		kills=$((kills + 1))
		died[$op:$sc]=1
		cowfs_cleanup
		COWFS_PID=
	fi
	cowfs_mount
	VERIFY=1 check_sound "$op killed at $sc:$when" "$f" "$old" $new
	# and the operation works after the restart
	case $op in
	copyup) echo again >>"$MNT/guest1/$f" || fail "append after restart" ;;
	unlink) rm -f "$MNT/guest1/$f" || fail "unlink after restart" ;;
	rename) [ -e "$MNT/guest1/$f" ] && { mv -f "$MNT/guest1/$f" "$MNT/guest1/$g" || fail "rename after restart"; } ;;
	link) rm -f "$MNT/guest1/$f.link"; ln "$MNT/guest1/$f" "$MNT/guest1/$f.link" || fail "link after restart" ;;
	esac
	[ "$op" = copyup ] && new="$( (cat "$POOL/guest2/$f"; echo again) | sha256sum | cut -c1-64) $( (cat "$POOL/guest2/$f"; echo appended; echo again) | sha256sum | cut -c1-64)"
	check_sound "$op after restart ($sc:$when)" "$f" "$old" $new
	cowfs_umount
}

# The copy-up: O_TMPFILE (openat), data, owner, mode, xattrs, times, naming
# (linkat), the journal record (pwrite64), the flag (ioctl), the rename.
# ioctl N counts GETFLAGS and SETFLAGS: for one inode the dance is get (1),
# clear (2), the operation, get (3), set (4).  glibc's renameat2 with no
# flags is the renameat syscall.
for sc in openat:1 copy_file_range:1 fsetxattr:1 utimensat:1 linkat:1 pwrite64:1 ioctl:2 \
	ioctl:3 renameat:1 pwrite64:2; do
	run_killed copyup "${sc%:*}" "${sc#*:}"
done
for sc in ioctl:3 unlinkat:2 pwrite64:2; do run_killed unlink "${sc%:*}" "${sc#*:}"; done
for sc in ioctl:4 ioctl:6 renameat:2; do run_killed rename "${sc%:*}" "${sc#*:}"; done
for sc in copy_file_range:1 linkat:2; do run_killed link "${sc%:*}" "${sc#*:}"; done

cowfs_mount
VERIFY=1 check_sound "at the end" no/such/path
cowfs_umount
for need in copyup:copy_file_range copyup:linkat copyup:renameat copyup:ioctl copyup:pwrite64 \
	unlink:ioctl unlink:unlinkat rename:renameat rename:ioctl link:copy_file_range; do
	[ -n "${died[$need]:-}" ] || fail "cowfs was never killed at $need: the step did not run"
done
echo "cowfs killed $kills times; every restart sound" >&2
