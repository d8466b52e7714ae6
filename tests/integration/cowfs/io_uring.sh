#!/bin/bash
# -o io_uring: cowfs turns the kernel's fuse.enable_uring parameter on
# (off by default), says so, and serves requests over io_uring rings
# (libfuse logs each such request as "cqe" with -d); a copy-up and the
# other guest's view work as over /dev/fuse.  The parameter is put back
# as it was found.
source "$(dirname "$0")/common.bash"
param=/sys/module/fuse/parameters/enable_uring
[ -w "$param" ] || skip "this kernel has no writable $param (FUSE over io_uring not built in)"
old=$(cat "$param")
at_exit "echo $old >$param"
echo N >"$param"
# --version tells what libfuse can do and what the kernel offers now.
v=$("$COWFS" --version) || fail "cowfs --version failed"
case $v in *"FUSE over io_uring: in libfuse; kernel: off (${param}=N); used with -o io_uring"*) ;;
*) fail "--version with enable_uring off: $v" ;; esac
cowfs_pool 2
f=usr/bin/cat
is_cowlink "$POOL/guest1/$f" || fail "$f is not a CoW link"
before=$(obs "$POOL/guest2/$f")
cowfs_mount -d -o io_uring
grep -q "turned the kernel's fuse.enable_uring on" "$COWFS_LOG" || fail "cowfs did not say it turned enable_uring on"
[ "$(cat "$param")" = Y ] || fail "enable_uring is still $(cat "$param")"
case $("$COWFS" --version) in *"FUSE over io_uring: in libfuse; kernel: enabled"*) ;;
*) fail "--version with enable_uring on: $("$COWFS" --version)" ;; esac
seen=$(obs "$MNT/guest2/$f")	# through the mount: without the marker
echo appended >>"$MNT/guest1/$f" || fail "write to a CoW link over io_uring failed"
tail -n1 "$MNT/guest1/$f" | grep -q appended || fail "guest1 does not see its write"
[ "$(obs "$POOL/guest2/$f")" = "$before" ] || fail "guest2's $f changed"
[ "$(obs "$MNT/guest2/$f")" = "$seen" ] || fail "guest2 sees guest1's write"
n=$(grep -c '^cqe unique' "$COWFS_LOG" || true)
[ "$n" -gt 0 ] || fail "no request came over io_uring"
cowfs_umount
echo >&2 "io_uring: $n requests served from the rings"
