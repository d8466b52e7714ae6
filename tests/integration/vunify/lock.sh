#!/bin/bash
# Two runs never overlap: while one run holds the pool (here: stopped right
# after taking the lock), a second run on the same pool exits at once with
# code 4 and names the holder's pid; it changes nothing.  After the first
# run ends, the next run works.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
command -v strace >/dev/null || skip "strace not installed"
d=$(scratch_dir)
p=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$p" 2 >/dev/null
# A first run makes the pool's state; the first run of a boot also checks
# every object's flag (a getdents64 before the lock), later ones do not.
vrun "$d/run0" unify "$p"
assert_eq 0 "$RC" "the first run ($(cat "$d/run0.err"))"
touch "$p/guest1/new-file"

# Run 1 stops (SIGSTOP, delivered by strace) at its first getdents64, which
# comes after it took the lock and wrote its pid: listing the guests.  Only
# the main thread is traced (no -f): strace counts "when=1" per thread, and
# the read-ahead thread's first getdents64 would stop the run a second time.
traced strace -o /dev/null -e trace=getdents64 -e inject=getdents64:signal=SIGSTOP:when=1 \
	"$VUNIFY" unify "$p" >"$d/run1.out" 2>"$d/run1.err" &
tracer=$!
at_exit "kill -9 $tracer 2>/dev/null"
stopped() { ps -o stat= -p "$1" 2>/dev/null | cut -c1 | grep -q '[tT]'; }	# t: stopped under strace
holder=
for i in $(seq 200); do
	holder=$(cat "$p/.hashdb/lock" 2>/dev/null || true)
	[ -n "$holder" ] && stopped "$holder" && break
	sleep 0.05
done
[ -n "$holder" ] || fail "run 1 never took the lock ($(cat "$d/run1.err"))"
stopped "$holder" || fail "run 1 (pid $holder) did not stop"
at_exit "kill -9 $holder 2>/dev/null"
before=$(guests_manifest "$p")

RC=0
timeout 60 "$VUNIFY" unify --json "$p" >"$d/run2.out" 2>"$d/run2.err" || RC=$?
[ "$RC" != 124 ] || fail "the second run waited for the lock instead of exiting"
assert_eq 4 "$RC" "exit code of a second run"
grep -q "^vunify: .*another vunify run (pid $holder) is working on this pool" "$d/run2.err" ||
	fail "no clear message naming the holder: $(cat "$d/run2.err")"
assert_same_manifest "$before" "$(guests_manifest "$p")" "second run"
# A dry run on a busy pool says so too.
RC=0
timeout 60 "$VUNIFY" unify -n "$p" >/dev/null 2>"$d/run2n.err" || RC=$?
assert_eq 4 "$RC" "exit code of a dry run while locked"

kill -CONT "$holder"
RC=0
wait $tracer || RC=$?
assert_eq 0 "$RC" "run 1 exit code after it continued ($(cat "$d/run1.err"))"
vrun "$d/run3" unify --json "$p"
assert_eq 0 "$RC" "a run after the first ended ($(cat "$d/run3.err"))"
exit 0
