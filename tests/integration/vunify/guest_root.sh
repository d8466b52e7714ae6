#!/bin/bash
# How unify reads each guest's top directory, on a guest's first run (no
# stat cache: the read-ahead thread walks the guest at the same time).
#  1. The read-ahead walk reads the guest's top directory while the unify
#     walk is between its rewind (lseek 0) and its getdents64 (strace holds
#     the unify walk's getdents64 1 s and starts every new thread 0.3 s
#     late): the unify walk still sees every entry.  Every guest is walked
#     whole (scanned = entries under the guests), every non-empty file is
#     linked, every stat cache holds entries.  Before the two walks had
#     open file descriptions of their own, they shared the directory offset:
#     the unify walk got 0 entries, and the guest was left un-unified with
#     a 32-byte (empty) stat cache by a run that exited 0 (two guests of the
#     memory bench's pool, docs/benchmarks.md).
#  2. The top directory of one guest cannot be read (getdents64 fails with
#     EIO): the run names the guest and the reason, still unifies the other
#     guests, leaves that guest as it was and writes no stat cache for it,
#     and exits 1 (some files had errors).  It used to stop the whole run
#     with exit 3 ("the pool could not be used at all") after writing the
#     guest an empty stat cache.
# strace counts "when=N" per thread: N is the main thread's getdents64 that
# reads guest1's top directory, counted in a traced run on a copy; each case
# then checks in the strace log that the delay or the error hit that call.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
command -v strace >/dev/null || skip "strace not installed"
command -v jq >/dev/null || skip "jq not installed"
d=$(scratch_dir)
GUESTS=(guest1 guest2 guest3)
"$SRCDIR/scripts/make-sample-guests" "$d/tmpl" 3 >/dev/null
want_scanned=$(cd "$d/tmpl" && find "${GUESTS[@]}" -mindepth 1 | wc -l)
sc_file() { echo "$1/.hashdb/cache/$(printf %s "$2" | od -An -tx1 | tr -d ' \n').sc"; }
unlinked() { find "$1" -type f -size +0 -links 1 | wc -l; }
fresh() { cp -a "$d/tmpl" "$d/$1"; }

# The main thread's getdents64 calls up to its first read of a guest's top
# directory: those of opening the pool, then the first after the thread
# that reads ahead for guest1 was made (the main thread's second clone).
fresh count
traced strace -f -o "$d/count.log" -e trace=getdents64,clone,clone3 \
	"$VUNIFY" unify -q "$d/count" "${GUESTS[@]}" || fail "the counting run failed"
main=$(head -1 "$d/count.log" | cut -d' ' -f1)
k=$(awk -v m="$main" '
	$1 != m { next }
	/ clone3?\(/ { clones++; next }
	/ getdents64\(/ { n++; if (clones >= 2) { print n; exit } }' "$d/count.log")
[ -n "$k" ] || fail "no getdents64 of the main thread after its second clone in the counting run"
# The read-ahead thread of guest1: the child of the main thread's 2nd clone
# (its return value, on the clone line or on its "resumed" line).
child_of_clone2() {
	awk -v m="$1" '
		$1 != m { next }
		/ clone3?\(/ && ++c == 2 { want = 1 }
		want && /= [0-9]+$/ { match($0, /= [0-9]+$/); print substr($0, RSTART + 2); exit }' "$2"
}

# ---- 1: the read-ahead walk reads the top directory inside the window ----
# race_once N: one traced run on a fresh copy; its outcome is checked
# whatever the timing, and RACE_ORDER is "ok" when the interleaving happened
# (on a busy machine the read-ahead thread sometimes reads before the main
# thread reaches its delayed call: then the run proves nothing, and the
# next try goes).
race_once() {
	local r=$d/race$1 log=$d/race$1.log rc=0 main ra order g sz
	fresh "race$1"
	traced strace -f -o "$log" -e trace=getdents64,lseek,clone,clone3 \
		-e inject=set_robust_list:delay_enter=300000:when=1 \
		-e inject=getdents64:delay_enter=1000000:when="$k" \
		"$VUNIFY" unify --json "$r" "${GUESTS[@]}" >"$r.out" 2>"$r.err" || rc=$?
	main=$(head -1 "$log" | cut -d' ' -f1)
	ra=$(child_of_clone2 "$main" "$log")
	[ -n "$ra" ] || fail "race: no read-ahead thread found in the strace log"
	assert_eq 0 "$rc" "race: exit code ($(cat "$r.err"))"
	assert_eq "$want_scanned" "$(json_get "$r.out" scanned)" "race: entries walked"
	for g in "${GUESTS[@]}"; do
		assert_eq 0 "$(unlinked "$r/$g")" "race: $g: non-empty files with one link (not unified)"
		sz=$(stat -c %s "$(sc_file "$r" "$g")")
		[ "$sz" -gt 32 ] || fail "race: $g: stat cache of $sz bytes (no entries)"
	done
	# The interleaving: the main thread's k-th getdents64 was delayed, and
	# the read-ahead thread's rewind and read of the same directory (its
	# first lseek and getdents64) fell between that call's start and end.
	order=$(awk -v m="$main" -v ra="$ra" -v k="$k" '
		$1 == m && / clone3?\(/ { clones++; next }
		$1 == m && / getdents64\(/ && ++n == k { start = NR; c = clones; if (/DELAYED/) end = NR; next }
		$1 == m && start && !end && /<\.\.\. getdents64 resumed>.*DELAYED/ { end = NR; next }
		$1 == ra && / lseek\(/ && !seek { seek = NR }
		$1 == ra && !read && (/<\.\.\. getdents64 resumed>/ || (/ getdents64\(/ && !/unfinished/)) { read = NR }
		END {
			if (start && end && c == 2 && seek > start && read > seek && read < end)
				print "ok"
			else
				printf "main getdents64 #%d at lines %d-%d after clone %d, read-ahead lseek at %d, getdents64 done at %d\n", k, start, end, c, seek, read
		}
		' "$log")
	RACE_ORDER=$order
	[ "$order" = ok ] || echo "race try $1: no interleaving ($order)" >&2
	chattr -R -i "$r" 2>/dev/null || true	# nothing is immutable here; fifos refuse
	rm -rf "$r"
}
# Not in a subshell: a failed check must end the test.
tries=8
for ((t = 1; t <= tries; t++)); do
	race_once $t
	[ "$RACE_ORDER" = ok ] && break
done
[ $t -le $tries ] || fail "race: strace did not produce the interleaving in $tries tries"
echo "race: the interleaving happened at try $t" >&2

# ---- 2: guest1's top directory cannot be read -----------------------------
fresh eio
before=$(guests_fast_manifest "$d/eio")
n1=$(unlinked "$d/eio/guest1")
RC=0
traced strace -f -o "$d/eio.log" -e trace=getdents64,clone,clone3 \
	-e inject=getdents64:error=EIO:when="$k" \
	"$VUNIFY" unify --json "$d/eio" "${GUESTS[@]}" >"$d/eio.out" 2>"$d/eio.err" || RC=$?
main=$(head -1 "$d/eio.log" | cut -d' ' -f1)
# (with threads the call may be logged "unfinished", then "resumed" with
# the outcome on a later line of the same thread)
hit=$(awk -v m="$main" -v k="$k" '
	$1 != m { next }
	wait && /<\.\.\. getdents64 resumed>/ { print /INJECTED/ ? "ok" : $0; exit }
	/ getdents64\(/ && ++n == k { if (/unfinished/) { wait = 1; next } print /INJECTED/ ? "ok" : $0; exit }' \
	"$d/eio.log")
[ "$hit" = ok ] || fail "eio: the main thread's getdents64 #$k was not the failed one: $hit"
assert_eq 1 "$RC" "eio: exit code ($(cat "$d/eio.err"))"
grep -q '^vunify: guest1: cannot walk the guest: Input/output error' "$d/eio.err" ||
	fail "eio: no message naming guest1 and the reason: $(cat "$d/eio.err")"
assert_eq 1 "$(json_get "$d/eio.out" skipped.error)" "eio: errors counted"
assert_eq "$n1" "$(unlinked "$d/eio/guest1")" "eio: guest1's files with one link (left as they were)"
[ ! -e "$(sc_file "$d/eio" guest1)" ] || fail "eio: a stat cache was written for guest1"
for g in guest2 guest3; do
	assert_eq 0 "$(unlinked "$d/eio/$g")" "eio: $g: non-empty files with one link (not unified)"
done
# Nothing a guest sees changed, guest1 included.
assert_same_manifest "$before" "$(guests_fast_manifest "$d/eio")" "eio run"
# The next run unifies guest1 as well.
vrun "$d/eio2" unify --json "$d/eio" "${GUESTS[@]}"
assert_eq 0 "$RC" "eio: the next run ($(cat "$d/eio2.err"))"
assert_eq 0 "$(unlinked "$d/eio/guest1")" "eio: guest1 after the next run: files with one link"
exit 0
