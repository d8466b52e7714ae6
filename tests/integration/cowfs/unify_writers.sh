#!/bin/bash
# vunify on a mounted pool while guests write to the very paths being
# unified, some runs killed (SIGKILL injected at a link, rename or flag
# ioctl): no guest ever sees another guest's write.  Each guest's writer
# tags what it writes with its own name (appends, O_TRUNC rewrites, chmod);
# afterwards every file of every guest holds only the original content and
# that guest's own tags, every pool object has its flag and marker and
# matches its name, and `vunify verify` is clean.
source "$(dirname "$0")/common.bash"
source "$(dirname "$0")/../vunify/helpers.bash"
command -v strace >/dev/null || skip "strace is not installed"
cowfs_pool 3
cowfs_mount -o timeout=0.2
N=40
for g in guest1 guest2 guest3; do
	mkdir "$MNT/$g/etc/w"
	for i in $(seq $N); do
		printf 'original %d\n' "$i" >"$MNT/$g/etc/w/f$i"
		touch -d '2024-05-05 05:05:05' "$MNT/$g/etc/w/f$i"
	done
done

writer() { # writer GUEST SECONDS
	local g=$1 end=$((SECONDS + $2)) i n=0
	while [ "$SECONDS" -lt "$end" ]; do
		i=$((RANDOM % N + 1))
		case $((RANDOM % 3)) in
		0) echo "$g wrote $n" >>"$MNT/$g/etc/w/f$i" ;;
		1) printf 'original %d\n%s rewrote %d\n' "$i" "$g" "$n" >"$MNT/$g/etc/w/f$i" ;;
		2) chmod 0600 "$MNT/$g/etc/w/f$i" ;;
		esac 2>>"$POOL.writer-$g.err" || true
		n=$((n + 1))
		sleep 0.0$((RANDOM % 3))
	done
}
writers=()
for g in guest1 guest2 guest3; do writer "$g" 8 & writers+=($!); done

# meanwhile: unify runs, some killed at a link, a rename, a flag toggle
runs=0 linked=0
for t in linkat:3 renameat2:2 ioctl:6 ioctl:9 "" linkat:8 ""; do
	if [ -n "$t" ]; then
		traced strace -qq -o /dev/null -e trace="${t%:*}" -e inject="${t%:*}":signal=SIGKILL:when="${t#*:}" \
			"$VUNIFY" unify -q "$POOL" >/dev/null 2>>"$POOL.unify.err" || true
	else
		"$VUNIFY" unify -q --json "$POOL" >"$POOL.unify.json" 2>>"$POOL.unify.err" ||
			{ cat "$POOL.unify.err" >&2; fail "a vunify run on the live pool failed"; }
		linked=$((linked + $(jq '.linked + .new_objects' "$POOL.unify.json")))
	fi
	runs=$((runs + 1))
	# each run must find files left to unify: touch some back into shape
	for g in guest1 guest2 guest3; do
		i=$((RANDOM % N + 1))
		printf 'original %d\n' "$i" >"$MNT/$g/etc/w/f$i" 2>/dev/null &&
			touch -d '2024-05-05 05:05:05' "$MNT/$g/etc/w/f$i" 2>/dev/null || true
	done
done
wait "${writers[@]}"
"$VUNIFY" unify -q "$POOL" >/dev/null 2>"$POOL.unify.err" || { cat "$POOL.unify.err" >&2; fail "the final vunify run"; }

for g in guest1 guest2 guest3; do
	for i in $(seq $N); do
		f=$MNT/$g/etc/w/f$i
		bad=$(grep -v -e "^original $i\$" -e "^$g " "$f" || true)
		[ -z "$bad" ] || fail "$g/etc/w/f$i holds another guest's write: $bad"
	done
done
while IFS= read -r -d '' o; do
	is_immutable "$o" || fail "object without its flag: $o"
	getfattr -n trusted.cowlink --only-values "$o" >/dev/null 2>&1 || fail "object without marker: $o"
done < <(find "$POOL/.hashdb/objects" -type f -print0)
"$VUNIFY" verify "$POOL" >"$POOL.verify" 2>&1 || { cat "$POOL.verify" >&2; fail "vunify verify"; }
# the runs did make CoW links of files the writers were using
[ "$linked" -gt 0 ] || fail "no run linked anything while the writers ran: the race was not exercised"
echo "$runs unify runs during the writes; the untraced ones linked $linked files" >&2
cowfs_umount
