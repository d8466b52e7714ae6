#!/bin/bash
# cowfs drops CAP_SYS_RESOURCE from every capability set at start: guests'
# data is written with the daemon's credentials, and root with that
# capability would be exempt from quota limits and could fill ext4's blocks
# reserved for root.  Root on a CI machine may lack the capability already,
# so the daemon is started inside a user namespace, where its parent has
# every capability, and the sets of the running daemon are read from /proc.
source "$(dirname "$0")/common.bash"
command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
unshare -U -r true 2>/dev/null || skip "user namespaces are not available here"
cowfs_pool 1
out=$(timeout 60 unshare -U -r -m --propagation private bash -c '
	"$1" "$2" "$3" || exit 3
	for i in $(seq 50); do mountpoint -q "$3" && break; sleep 0.1; done
	p=$(findmnt -n -o SOURCE "$3" >/dev/null && pgrep -n -f "^$1 $2 $3")
	[ -n "$p" ] || exit 4
	echo "shell $(awk "/^CapBnd|^CapPrm|^CapEff/ {print \$2}" /proc/self/status | tr "\n" " ")"
	echo "cowfs $(awk "/^CapBnd|^CapPrm|^CapEff/ {print \$2}" /proc/$p/status | tr "\n" " ")"
	ls "$3" >/dev/null
	umount "$3"' _ "$COWFS" "$POOL" "$MNT" 2>&1) || {
	rc=$?
	[ "$rc" = 3 ] && skip "cowfs cannot mount inside a user namespace here: $out"
	fail "checking cowfs's capabilities failed ($rc): $out"
}
has_res() { (( (0x$1 >> 24) & 1 )); }	# CAP_SYS_RESOURCE is capability 24
read -r _ sbnd sprm seff <<<"$(grep '^shell' <<<"$out")"
read -r _ cbnd cprm ceff <<<"$(grep '^cowfs' <<<"$out")"
has_res "$seff" || skip "no CAP_SYS_RESOURCE even in a user namespace ($out)"
for v in "bounding $cbnd" "permitted $cprm" "effective $ceff"; do
	set -- $v
	has_res "$2" && fail "cowfs keeps CAP_SYS_RESOURCE in its $1 set ($2)"
done
echo >&2 "capabilities (bounding permitted effective): $out"
