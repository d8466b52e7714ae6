#!/bin/bash
# Progress on a terminal for unify, verify, split and remove (a bar, percentage,
# files, bytes, rate; an ETA once a run takes more than a second); nothing of it when
# stderr is not a terminal (cron) or with -q.
source "$(dirname "$0")/../lib.sh"
need_root
command -v script >/dev/null || skip "script(1) is missing (bsdutils)"
d=$(scratch_dir)
pool=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$pool" 2 >/dev/null 2>&1
tty_run() { # tty_run OUTFILE CMD...: run with stdout/stderr on a pseudo-terminal
	local out=$1; shift
	script -qefc "$(printf '%q ' "$@")" /dev/null > "$out" 2>&1 < /dev/null
}
tty_run "$d/unify.tty" "$VUNIFY" unify "$pool"
grep -q $'\r' "$d/unify.tty" || fail "unify shows no progress on a terminal"
grep -aqE 'guest[12] \[[# ]{20}\] +[0-9]+% [0-9]+/[0-9]+ files, [0-9.]+ MiB, [0-9.]+ MiB/s' "$d/unify.tty" ||
	fail "unify progress lacks bar/files/bytes/rate: $(cat -v "$d/unify.tty")"
tty_run "$d/verify.tty" "$VUNIFY" verify "$pool"
grep -aqE 'verify objects \[[# ]{20}\] +[0-9]+% [0-9]+/[0-9]+ files, [0-9.]+ MiB/[0-9.]+ MiB, [0-9.]+ MiB/s' "$d/verify.tty" ||
	fail "verify progress lacks a bar: $(cat -v "$d/verify.tty")"
tty_run "$d/split.tty" "$VUNIFY" split "$pool" guest1
grep -aqE 'split \[[# ]{20}\] +[0-9]+% [0-9]+/[0-9]+ files' "$d/split.tty" || fail "split progress lacks a bar: $(cat -v "$d/split.tty")"
# Quiet: no progress, no summary on a terminal.
tty_run "$d/q.tty" "$VUNIFY" unify -q "$pool"
[ ! -s "$d/q.tty" ] || fail "unify -q printed on a terminal: $(cat -v "$d/q.tty")"
# Not a terminal (as under cron): a summary, no progress line.
"$VUNIFY" unify "$pool" 2> "$d/unify.err"
grep -q $'\r' "$d/unify.err" && fail "progress written to a non-terminal"
grep -q "^vunify: 2 guests" "$d/unify.err" || fail "no summary: $(cat "$d/unify.err")"
"$VUNIFY" verify "$pool" 2> "$d/verify.err"
grep -q $'\r' "$d/verify.err" && fail "verify progress written to a non-terminal"
tty_run "$d/remove.tty" "$VUNIFY" remove "$pool" guest2
grep -aqE 'remove \[[# ]{20}\] +[0-9]+% [0-9]+/[0-9]+ files' "$d/remove.tty" ||
	fail "remove progress lacks a bar: $(cat -v "$d/remove.tty")"
true
