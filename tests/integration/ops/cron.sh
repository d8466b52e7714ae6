#!/bin/bash
# The cron job for hosts without systemd: /etc/cron.d/vunify is a valid
# cron.d line that stands aside when systemd runs; vunify-nightly works on
# the configured pools, prints nothing on success, prints the failing
# command's output (mail-worthy) and exits 1 on failure, and exits 0
# quietly when the previous run still holds the pool.
source "$(dirname "$0")/../lib.sh"
need_root
BUILDDIR=${BUILDDIR:-$(cd "$(dirname "$VUNIFY")/.." && pwd)}
cronfile=$BUILDDIR/cron/vunify nightly=$BUILDDIR/cron/vunify-nightly
[ -f "$cronfile" ] && [ -f "$nightly" ] || fail "cron files not built in $BUILDDIR/cron"
# cron.d: five time fields, a user, a command; no dots in the file name.
line=$(grep -vE '^\s*(#|$|[A-Z]+=)' "$cronfile")
assert_eq 1 "$(wc -l <<<"$line")" "job lines in cron.d/vunify"
read -r m h dom mon dow user cmd <<<"$line"
[[ $m =~ ^[0-9]+$ && $h =~ ^[0-6]$ && $dom$mon$dow == '***' ]] || fail "not a nightly cron line: $line"
assert_eq root "$user" "cron user"
[[ $cmd == "test -d /run/systemd/system || "*vunify-nightly ]] || fail "cron job does not stand aside for systemd: $cmd"

d=$(scratch_dir)
for p in p1 p2; do "$SRCDIR/scripts/make-sample-guests" "$d/$p" 2 >/dev/null 2>&1; done
printf 'pool = %s\npool = %s\n' "$d/p1" "$d/p2" > "$d/vunify.conf"
export VUNIFY_CONFIG=$d/vunify.conf
run() { set +e; VUNIFY=$VUNIFY sh "$nightly" > "$d/out" 2>&1; rc=$?; set -e; }

run
assert_eq 0 "$rc" "nightly exit code"
[ ! -s "$d/out" ] || fail "nightly run not silent on success: $(cat "$d/out")"
is_cowlink "$d/p1/guest1/usr/bin/cat" && is_cowlink "$d/p2/guest2/usr/bin/cat" ||
	fail "nightly run did not unify both pools"

# Overlap: the previous run still holds p1's lock.  Quiet, exit 0, p2 done.
echo new > "$d/p2/guest1/etc/new-file"; echo new > "$d/p2/guest2/etc/new-file"
flock "$d/p1/.hashdb/lock" bash -c "VUNIFY=$VUNIFY VUNIFY_CONFIG=$VUNIFY_CONFIG sh '$nightly'" > "$d/out" 2>&1 || fail "overlapping run failed: $(cat "$d/out")"
[ ! -s "$d/out" ] || fail "overlapping run not silent: $(cat "$d/out")"
is_cowlink "$d/p2/guest1/etc/new-file" || fail "p2 not unified while p1 was locked"

# Failure: damage found by verify is reported with the command and code.
f=$d/p2/guest1/usr/bin/cat
chattr -i "$f"; printf 'Q' | dd of="$f" bs=1 seek=99 conv=notrunc 2>/dev/null; chattr +i "$f"
run
assert_eq 1 "$rc" "nightly exit code with damage"
grep -q "^vunify verify $d/p2 failed with exit code 5:" "$d/out" || fail "no failure report: $(cat "$d/out")"
grep -q "shares damaged object" "$d/out" || fail "failure report lacks the details"
# A broken configuration is reported too.
echo 'bogus' > "$d/vunify.conf"
run
[ "$rc" != 0 ] && grep -q "vunify.conf:1: expected 'key = value'" "$d/out" || fail "bad config not reported: $rc $(cat "$d/out")"
