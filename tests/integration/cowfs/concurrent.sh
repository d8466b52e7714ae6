#!/bin/bash
# Two writers racing on one CoW-linked path: copy-ups are serialised, the
# second finds the copy made, both writes land in the one private copy, and
# the other guest keeps the original.  Also writers on different guests'
# paths of one CoW link at the same time.
#
# The race is forced: strace holds every copy_file_range of the daemon (one
# per copy-up) for a second, and the second writer starts while the first
# one's copy-up is under way (a cowfs thread sits in copy_file_range: the
# copy is an unnamed O_TMPFILE, so there is no name to watch); the test
# fails unless the second writer was seen waiting in cowfs during that
# copy-up.
source "$(dirname "$0")/common.bash"
command -v strace >/dev/null || skip "strace not installed"
cowfs_pool 3
cowfs_mount
A=$MNT/guest1
B=$MNT/guest2
files=(cat cp env grep ls mkdir)
for f in "${files[@]}"; do
	is_cowlink "$POOL/guest1/usr/bin/$f" || fail "sample usr/bin/$f is not a CoW link"
done
orig=$(sha256sum <"$B/usr/bin/cat")

log=$POOL/../strace.log
strace -f -p "$COWFS_PID" -o /dev/null -e trace=copy_file_range \
	-e inject=copy_file_range:delay_enter=1000000 2>"$log" &
tracer=$!
at_exit "kill $tracer 2>/dev/null; wait $tracer 2>/dev/null"
for ((i = 0; i < 100; i++)); do grep -q attached "$log" && break; sleep 0.1; done
grep -q attached "$log" || { cat "$log" >&2; skip "strace cannot attach to cowfs here"; }

# A copy-up under way: a cowfs thread held (by strace) in copy_file_range,
# syscall 326 on x86_64, as /proc/TID/syscall shows it.
[ "$(uname -m)" = x86_64 ] || skip "the copy_file_range number used here is x86_64's"
copying() { grep -qs '^326 ' /proc/"$COWFS_PID"/task/*/syscall; }
# race P1 DIR1 P2: append "writer-one" to P1, wait until its copy-up is under
# way, then append "writer-two" to P2; fail unless writer two was inside a
# FUSE request while that copy-up still ran.  (DIR1, the backing directory,
# is where no temporary may be left.)
race() {
	local p1=$1 d1=$2 p2=$3 w1 w2 i seen=
	( printf 'writer-one\n' >>"$p1" ) & w1=$!
	for ((i = 0; i < 500; i++)); do copying && break; sleep 0.01; done
	copying || fail "$p1: writer one started no copy-up"
	( printf 'writer-two\n' >>"$p2" ) & w2=$!
	while copying; do
		if [[ $(cat "/proc/$w2/wchan" 2>/dev/null) == *request_wait_answer* ]] && copying; then
			seen=1
			break
		fi
		sleep 0.005
	done
	wait $w1 || fail "writer one on $p1 failed"
	wait $w2 || fail "writer two on $p2 failed"
	[ -z "$(compgen -G "$d1/.cowlink~*")" ] || fail "$p1: a temporary name is left in $d1"
	[ -n "$seen" ] || fail "$p2: writer two did not wait in cowfs while writer one's copy-up ran (no race)"
}

for f in "${files[@]}"; do
	p=$A/usr/bin/$f
	size=$(stat -c %s "$p")
	race "$p" "$POOL/guest1/usr/bin" "$p"
	assert_eq $((size + 22)) "$(stat -c %s "$p")" "$f: size after two appends"
	tail -c 22 "$p" | grep -q writer-one || fail "$f: writer one's data lost"
	tail -c 22 "$p" | grep -q writer-two || fail "$f: writer two's data lost"
	[ "$(ls -a "$POOL/guest1/usr/bin" | grep -c '^\.cowlink~')" = 0 ] || fail "$f: temporary left"
	is_cowlink "$POOL/guest2/usr/bin/$f" || fail "$f: guest2 lost its CoW link"
	same_inode "$B/usr/bin/$f" "$MNT/guest3/usr/bin/$f" || fail "$f: guest2/3 no longer share"
done

# both other guests write the same CoW link at once (guest3's writer starts
# while guest2's copy-up runs): each gets its own copy
p=usr/share-meta/equal
size=$(stat -c %s "$B/$p")
race "$B/$p" "$POOL/guest2/usr/share-meta" "$MNT/guest3/$p"
tail -c 11 "$B/$p" | grep -q writer-one || fail "guest2's copy"
tail -c 11 "$MNT/guest3/$p" | grep -q writer-two || fail "guest3's copy"
assert_eq $((size + 11)) "$(stat -c %s "$B/$p")" "guest2's copy: size"
assert_eq $((size + 11)) "$(stat -c %s "$MNT/guest3/$p")" "guest3's copy: size"
assert_eq "$size" "$(stat -c %s "$A/$p")" "guest1's file untouched"
is_cowlink "$POOL/guest1/$p" || fail "guest1 lost the CoW link"
assert_eq "$orig" "$(sha256sum <"$B/usr/bin/cat")" "guest2's cat"
kill "$tracer"
wait "$tracer" 2>/dev/null || true
cowfs_umount
