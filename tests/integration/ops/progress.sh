#!/bin/bash
# Progress on a terminal for unify, verify, split and remove (a bar, percentage,
# files, bytes, rate; an ETA once a run takes more than a second); nothing of it when
# stderr is not a terminal (cron) or with -q.  The ETA is checked on a run
# made slow on purpose (strace holds each file's link into the pool): it
# appears after a second and predicts the end of the run.
source "$(dirname "$0")/../lib.sh"
need_root
command -v script >/dev/null || skip "script(1) is missing (bsdutils)"
command -v strace >/dev/null || skip "strace not installed"
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

# The ETA.  50 new files in one guest, each becoming a pool object with one
# linkat that strace holds for 60 ms (only linkat stops: --seccomp-bpf): a
# run of 3 to 6 s at an even pace.  Every progress line is stamped with its
# arrival time; each ETA shown at time t must put the end of the run (the
# summary's arrival) at t + ETA, give or take a fifth of the run (this
# machine is shared) and 1 s, plus another second early (the ETA is whole
# seconds, rounded down); none may come before the run is a second old.
# The guest has a stat cache already (one file, unified before the others
# were added), so no read-ahead thread runs: on a first run it shares the
# guest root's directory offset with the walk, and the walk, slowed by
# strace, can then find the root empty (a vunify bug, reported apart).
mkdir -p "$d/eta/a"
echo seed >"$d/eta/a/seed"
"$VUNIFY" unify -q "$d/eta" || fail "unify of the seed file failed"
for i in $(seq 50); do head -c 4096 /dev/urandom >"$d/eta/a/f$i"; done
cmd=$(printf '%q ' env "ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0" \
	strace -f --seccomp-bpf -o /dev/null -e trace=linkat -e inject=linkat:delay_enter=60000 "$VUNIFY" unify "$d/eta")
script -qefc "$cmd" /dev/null </dev/null | perl -MTime::HiRes=time -e '
	my $buf;
	while (sysread(STDIN, $buf, 65536)) {
		(my $s = $buf) =~ s/[\r\n]+/|/g;
		printf "%.3f\t%s\n", time, $s;
	}' >"$d/eta.log"
grep -q "vunify: 1 guest, 51 entries, 51 regular files, 1 already unified" "$d/eta.log" ||
	fail "the slow run did not run: $(cat -v "$d/eta.log")"
perl -e '
	my ($first, $end, @eta);
	while (<STDIN>) {
		my ($t, $s) = /^([0-9.]+)\t(.*)$/ or next;
		$first //= $t if $s =~ /a \[/;
		$end //= $t if $s =~ /vunify: 1 guest/;
		push @eta, [$t, $1 * 60 + $2, $&] while $s =~ /ETA (?:[0-9]+:)?([0-9]+):([0-9]{2})/g;
	}
	die "no progress line or no summary\n" unless defined $first && defined $end;
	my $run = $end - $first;
	die sprintf("%d ETAs in a run of %.1f s (want 3 or more)\n", scalar @eta, $run) if @eta < 3;
	my ($lo, $hi, $worst) = (-2 - $run / 5, 1 + $run / 5, 0);
	for (@eta) {
		my ($t, $left, $text) = @$_;
		my $off = $t + $left - $end;
		die sprintf("\"%s\" shown %.2f s into the run (before a second)\n", $text, $t - $first)
			if $t - $first < 0.9;
		die sprintf("\"%s\" shown %.1f s into a run of %.1f s: predicts the end %+.1f s off (allowed %+.1f..%+.1f s)\n",
			$text, $t - $first, $run, $off, $lo, $hi) if $off < $lo || $off > $hi;
		$worst = $off if abs($off) > abs($worst);
	}
	printf STDERR "ETA: %d values in a run of %.1f s, the end predicted at worst %+.1f s off (allowed %+.1f..%+.1f s)\n",
		scalar @eta, $run, $worst, $lo, $hi;
' <"$d/eta.log" 2>"$d/eta.check" || fail "ETA: $(cat "$d/eta.check")"
cat "$d/eta.check" >&2
