#!/bin/bash
# A racing process swaps guest directories and files for symlinks that point
# out of the guest (to a canary tree beside the pool, on the same
# filesystem, holding files identical to the guest's) while unify runs.
# Nothing outside the guests is touched: the canary's manifest is unchanged,
# no canary file gets a marker, the immutable flag or another link.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
d=$(scratch_dir)
p=$d/pool
canary=$d/canary
RUNS=${RUNS:-12}

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
canary_before=$(manifest "$canary")
canary_inodes=$(find "$canary" -printf '%p %i %n\n' | sort)

# The racer: swap g1's directory etc/conf (and file etc/passwd) for symlinks
# to the canary and back, as fast as it can, until told to stop.
stop=$d/stop
perl -e '
	my ($g, $canary, $stop) = @ARGV;
	until (-e $stop) {
		rename "$g/etc/conf", "$g/etc/conf.real";
		symlink $canary, "$g/etc/conf";
		rename "$g/etc/passwd", "$g/etc/passwd.real";
		symlink "$canary/c1", "$g/etc/passwd";
		unlink "$g/etc/conf";
		rename "$g/etc/conf.real", "$g/etc/conf";
		unlink "$g/etc/passwd";
		rename "$g/etc/passwd.real", "$g/etc/passwd";
	}
' "$p/g1" "$canary" "$stop" &
racer=$!
at_exit "touch '$stop'; wait $racer 2>/dev/null"

# The window between the walk's stat of a directory and its open is
# microseconds; strace widens it: every open of the run on g1 waits 2 ms
# first, so the racer's swaps land inside it.
for i in $(seq "$RUNS"); do
	RC=0
	if command -v strace >/dev/null; then
		traced timeout 120 strace -f -o /dev/null -e trace=openat -e inject=openat:delay_enter=2000 \
			"$VUNIFY" unify "$p" g1 >/dev/null 2>"$d/run$i.err" || RC=$?
	fi
	[ "$RC" = 0 ] || [ "$RC" = 1 ] || fail "run $i under strace: exit code $RC ($(head -5 "$d/run$i.err"))"
	timeout 120 "$VUNIFY" unify "$p" >/dev/null 2>"$d/run$i.err" || RC=$?
	[ "$RC" = 0 ] || [ "$RC" = 1 ] || fail "run $i: exit code $RC ($(head -5 "$d/run$i.err"))"
	# Leave the guests un-unified for the next round so every run has work.
	if [ "$i" -lt "$RUNS" ]; then
		chattr -R -i "$p/.hashdb/objects" 2>/dev/null || true
		rm -rf "$p/.hashdb"
		for g in g2 g3; do rm -rf "$p/$g/etc/conf"; cp -a "$d/template" "$p/$g/etc/conf"; done
	fi
done
touch "$stop"
wait $racer

assert_same_manifest "$canary_before" "$(manifest "$canary")" "canary outside the pool"
assert_eq "$canary_inodes" "$(find "$canary" -printf '%p %i %n\n' | sort)" "canary inodes and link counts"
marked=$(getfattr -R --absolute-names -n trusted.cowlink "$canary" 2>/dev/null | grep -c '^trusted' || true)
assert_eq 0 "$marked" "canary files carrying the marker"
imm=$(lsattr -R "$canary" 2>/dev/null | awk '{print $1}' | cut -c5 | grep -c i || true)
assert_eq 0 "$imm" "immutable canary files"
# The guests themselves still got unified (the race did not stop the work).
same_inode "$p/g2/etc/conf/c7" "$p/g3/etc/conf/c7" || fail "g2 and g3 were not unified"
exit 0
