#!/bin/bash
# systemd units: vunify@.service/.timer pass systemd-analyze verify (their
# Documentation= man pages included), the timer is nightly with a random
# delay, the service runs idle, and its ExecStart commands, run by hand with
# the instance's %f, unify, collect and verify a pool; a locked pool (exit
# 4) counts as success.  systemd need not be PID 1 for any of this.
source "$(dirname "$0")/../lib.sh"
need_root
command -v systemd-analyze >/dev/null || skip "systemd-analyze is missing (apt-get install systemd)"
BUILDDIR=${BUILDDIR:-$(cd "$(dirname "$VUNIFY")/.." && pwd)}
built=$BUILDDIR/systemd
[ -f "$built/vunify@.service" ] || fail "no configured vunify@.service in $built"
d=$(scratch_dir)
pool=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$pool" 2 >/dev/null 2>&1
inst=$(systemd-escape --path "$pool")
assert_eq "$pool" "$(systemd-escape --unescape --path "$inst")" "instance name round trip"

# Units as installed, pointed at the binaries of this build.
u=$d/units; mkdir -p "$u"
sbindir=$(sed -n 's|^ExecStart=\(.*\)/vunify unify.*|\1|p' "$built/vunify@.service")
[ -n "$sbindir" ] || fail "no vunify ExecStart in vunify@.service"
sed "s|$sbindir/vunify|$VUNIFY|g" "$built/vunify@.service" > "$u/vunify@.service"
cp "$SRCDIR/systemd/vunify@.timer" "$u/"
# Documentation=man:... must resolve: a man tree with this source's pages.
mkdir -p "$d/man/man5" "$d/man/man8"
cp "$SRCDIR"/man/*.5 "$d/man/man5/"; cp "$SRCDIR"/man/*.8 "$d/man/man8/"
(cd "$u" && MANPATH=$d/man systemd-analyze verify "$u/vunify@$inst.service" "$u/vunify@$inst.timer") \
	> "$d/verify.out" 2>&1 || fail "systemd-analyze verify: $(cat "$d/verify.out")"
[ ! -s "$d/verify.out" ] || fail "systemd-analyze verify warns: $(cat "$d/verify.out")"

# What the units promise.
svc=$u/vunify@.service timer=$u/vunify@.timer
grep -qx 'Type=oneshot' "$svc" || fail "service is not oneshot"
grep -qx 'Nice=19' "$svc" || fail "no Nice=19"
grep -qx 'IOSchedulingClass=idle' "$svc" || fail "no idle I/O scheduling"
grep -qx 'SuccessExitStatus=4' "$svc" || fail "a locked pool (exit 4) would fail the unit"
grep -qE '^RandomizedDelaySec=[1-9]' "$timer" || fail "no randomized delay"
grep -qx 'Persistent=true' "$timer" || fail "missed runs are not caught up"
cal=$(sed -n 's/^OnCalendar=//p' "$timer")
systemd-analyze calendar "$cal" > "$d/cal.out" || fail "OnCalendar=$cal does not parse"
grep -q "Next elapse:.* 0[0-5]:" "$d/cal.out" || fail "timer is not nightly: $(cat "$d/cal.out")"

# Run the ExecStart lines by hand as systemd would: %f = the pool, %i = the
# escaped instance.
run_unit() {
	local line cmd rc
	while IFS= read -r line; do
		cmd=${line#ExecStart=}
		cmd=${cmd//%f/$pool}
		cmd=${cmd//%i/$inst}
		set +e
		# shellcheck disable=SC2086 # systemd splits on blanks too
		$cmd >> "$d/stdout" 2>> "$d/out"
		rc=$?
		set -e
		echo "$rc $cmd"
	done < <(grep '^ExecStart=' "$svc")
}
: > "$d/out"
run_unit > "$d/run1"
cat "$d/run1" >&2
[ "$(wc -l < "$d/run1")" -ge 4 ] || fail "expected unify, gc, audit and verify in the service"
grep -vq '^0 ' "$d/run1" && fail "a unit command failed: $(cat "$d/run1")"
for c in unify gc audit verify; do
	grep -q " $c " "$d/run1" || fail "unit does not run $c"
done
is_cowlink "$pool/guest1/usr/bin/cat" || fail "the unit's commands did not unify the pool"
[ ! -s "$d/out" ] || fail "the unit's commands are not quiet on success: $(cat "$d/out")"
grep -q "^pool: 2 guests" "$d/stdout" || fail "no audit table for the journal: $(cat "$d/stdout")"
# Overlapping run: every changing command exits 4, which the unit counts as
# success; audit only reads and runs anyway.
flock "$pool/.hashdb/lock" bash -c "$(declare -f run_unit); svc='$svc' pool='$pool' inst='$inst' d='$d' run_unit" > "$d/run2"
cat "$d/run2" >&2
grep -v ' audit ' "$d/run2" | grep -vq '^4 ' && fail "commands on a locked pool: $(cat "$d/run2")"
grep -q '^0 .* audit ' "$d/run2" || fail "audit on a locked pool: $(cat "$d/run2")"
true
