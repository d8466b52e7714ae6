#!/bin/bash
# A racing process swaps a guest directory and a guest file for symlinks that
# point out of the guest (to a canary tree beside the pool, on the same
# filesystem, holding files identical to the guest's) while unify runs.
# Nothing outside the guests is touched: the canary's manifest is unchanged,
# no canary file gets a marker, the immutable flag or another link.
#
# The windows (the walk's statx of a name, then its open) are microseconds
# wide; strace widens them, and the test requires proof that swaps landed in
# them: the walk reporting a directory "replaced during the walk", and the
# walk's O_PATH open of a name its statx saw as a regular file returning a
# symlink (traced).  Rounds go on until both were seen, or the test fails.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
command -v strace >/dev/null || skip "strace not installed"
d=$(scratch_dir)
p=$d/pool
canary=$d/canary
RUNS=${RUNS:-6}		# rounds at least
MAX_RUNS=${MAX_RUNS:-40}	# rounds at most, for the proof that swaps hit the windows

mkdir -p "$canary/sub"
for i in $(seq 60); do echo "conf $i" > "$canary/c$i"; done
for i in $(seq 10); do echo "sub $i" > "$canary/sub/s$i"; done
find "$canary" -exec touch -d '2024-01-01 00:00:00' {} +
cp -a "$canary" "$d/template"
for g in g1 g2 g3; do
	mkdir -p "$p/$g/etc"
	cp -a "$d/template" "$p/$g/etc/conf"
	cp -a "$d/template/c1" "$p/$g/etc/passwd"
	ln -s "$canary" "$p/$g/etc/abs-link"		# static escapes too
	ln -s ../../../canary "$p/$g/etc/rel-link"
done
# g1's swappable names: etc/conf (a directory) and etc/passwd (a file), each
# with a symlink out of the guest beside it.
ln -s "$canary" "$p/g1/etc/conf.lnk"
ln -s "$canary/c1" "$p/g1/etc/passwd.lnk"
canary_before=$(manifest "$canary")
canary_inodes=$(find "$canary" -printf '%p %i %n\n' | sort)

# The racer: exchange (renameat2 RENAME_EXCHANGE, atomic: each name always
# exists) etc/conf with etc/conf.lnk and etc/passwd with etc/passwd.lnk, as
# fast as it can, until told to stop.  Each name flips between the real
# thing and a symlink to the canary.
stop=$d/stop
perl -e '
	require "syscall.ph";
	my ($g, $stop) = @ARGV;
	my ($c, $cl, $f, $fl) = ("$g/etc/conf", "$g/etc/conf.lnk", "$g/etc/passwd", "$g/etc/passwd.lnk");
	until (-e $stop) {
		syscall(&SYS_renameat2, -100, $c, -100, $cl, 2);	# AT_FDCWD, RENAME_EXCHANGE
		syscall(&SYS_renameat2, -100, $f, -100, $fl, 2);
	}
' "$p/g1" "$stop" &
racer=$!
at_exit "touch '$stop'; wait $racer 2>/dev/null"

# Each round: a run on g1 under strace, then one on the whole pool without.
# strace traces only vunify's main thread (no -f), and only calls on names
# in g1/etc (-P): each of its opens there waits 50 ms first, so the racer
# swaps names between the walk's statx and its open.  The trace shows the
# fstat of what the O_PATH open of a file returned.  -P resolves symlinks
# when strace starts: of passwd and passwd.lnk, whichever is the file then
# is traced by name.
dir_hits=0 file_hits=0
for ((i = 1; ; i++)); do
	RC=0
	traced timeout 120 strace -o "$d/trace" -P "$p/g1/etc" -P "$p/g1/etc/passwd" -P "$p/g1/etc/passwd.lnk" \
		-e trace=openat,fstat,newfstatat -e inject=openat:delay_enter=50000 \
		"$VUNIFY" unify "$p" g1 >/dev/null 2>"$d/run$i.err" || RC=$?
	[ "$RC" = 0 ] || [ "$RC" = 1 ] || fail "run $i under strace: exit code $RC ($(head -5 "$d/run$i.err"))"
	grep -qE '^vunify: g1/etc/conf(\.lnk)?: replaced during the walk, not entered' "$d/run$i.err" &&
		dir_hits=$((dir_hits + 1))
	grep -qE 'fstat.*S_IFLNK' "$d/trace" && file_hits=$((file_hits + 1))
	timeout 120 "$VUNIFY" unify "$p" >/dev/null 2>"$d/run$i.err" || RC=$?
	[ "$RC" = 0 ] || [ "$RC" = 1 ] || fail "run $i: exit code $RC ($(head -5 "$d/run$i.err"))"
	[ "$i" -ge "$RUNS" ] && [ "$dir_hits" -gt 0 ] && [ "$file_hits" -gt 0 ] && break
	[ "$i" -lt "$MAX_RUNS" ] || break
	# Leave the guests un-unified for the next round so every run has work.
	chattr -R -i "$p/.hashdb/objects" 2>/dev/null || true
	rm -rf "$p/.hashdb"
	for g in g2 g3; do rm -rf "$p/$g/etc/conf"; cp -a "$d/template" "$p/$g/etc/conf"; done
done
touch "$stop"
wait $racer
echo >&2 "$i rounds; swaps caught in the window: directory in $dir_hits, file in $file_hits"

assert_same_manifest "$canary_before" "$(manifest "$canary")" "canary outside the pool"
assert_eq "$canary_inodes" "$(find "$canary" -printf '%p %i %n\n' | sort)" "canary inodes and link counts"
marked=$(getfattr -R --absolute-names -n trusted.cowlink "$canary" 2>/dev/null | grep -c '^trusted' || true)
assert_eq 0 "$marked" "canary files carrying the marker"
imm=$(lsattr -R "$canary" 2>/dev/null | awk '{print $1}' | cut -c5 | grep -c i || true)
assert_eq 0 "$imm" "immutable canary files"
# The guests themselves still got unified (the race did not stop the work).
same_inode "$p/g2/etc/conf/c7" "$p/g3/etc/conf/c7" || fail "g2 and g3 were not unified"
# ...and the race was run: swaps landed between statx and open.
[ "$dir_hits" -gt 0 ] || fail "in $i rounds no directory swap was caught between the walk's statx and its open"
[ "$file_hits" -gt 0 ] || fail "in $i rounds no file swap was caught between the walk's statx and its open"
exit 0
