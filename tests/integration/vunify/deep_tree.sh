#!/bin/bash
# A 3000-deep tree: unify walks it without recursion and with a bounded
# number of open fds (it runs with at most 100 fds allowed), unifies the
# files at the bottom and beside the chain at several depths (so the walk
# must find its way back up after closing ancestors), and exits cleanly.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
d=$(scratch_dir)
p=$d/pool
DEPTH=3000
LEVELS=(1 2 50 63 64 65 100 1000 2999 3000)	# where files sit beside the chain
at_exit "chattr -i '$p'/.hashdb/objects/*/* 2>/dev/null"

# Paths this long are beyond PATH_MAX and bash's cd is quadratic on them:
# perl does the deep work with relative chdir.
# deep GUEST MODE: build | state (what a guest observes) | inodes | cowlink
deep() {
	perl -e '
		use strict; use warnings;
		my ($root, $mode, $depth, @levels) = @ARGV;
		my %lv = map { $_ => 1 } @levels;
		my $ts = 1704067200;	# 2024-01-01 00:00:00 UTC
		chdir $root or die "chdir $root: $!";
		sub sfile { my @s = lstat($_[0]) or die "$_[0]: $!"; return @s; }
		for my $i (1 .. $depth) {
			if ($mode eq "build") { mkdir "d" or die "mkdir at $i: $!"; }
			chdir "d" or die "chdir at $i: $!";
		}
		if ($mode eq "build") {
			open(my $f, ">", "bottom.txt") or die; print $f "bottom\n"; close $f;
			system("head -c 10000 /usr/bin/ls > bottom.bin") == 0 or die;
			utime $ts, $ts, "bottom.txt", "bottom.bin" or die;
			# Side files last, so their inodes are newer than the chain
			# below them: inode order visits them after coming back up.
			for (my $i = $depth; $i >= 1; $i--) {
				if ($lv{$i}) {
					open(my $g, ">", "side$i") or die; print $g "level $i\n"; close $g;
					utime $ts, $ts, "side$i" or die;
				}
				chdir ".." or die;
			}
			exit 0;
		}
		if ($mode eq "cowlink") {
			exec "sh", "-c", "lsattr -d bottom.bin | cut -c5 | grep -q i && getfattr --only-values -n trusted.cowlink bottom.bin >/dev/null";
		}
		my @out;
		for my $name ("bottom.txt", "bottom.bin") {
			my @s = sfile($name);
			if ($mode eq "inodes") { push @out, $s[1]; next; }
			open(my $f, "<", $name) or die; local $/; my $c = <$f>;
			push @out, sprintf("%s %o %d %d %d %d %s", $name, $s[2], $s[4], $s[5], $s[7], $s[9], unpack("H*", substr($c, 0, 64)) . length($c));
		}
		if ($mode eq "state") { my @s = sfile("."); push @out, "dir mtime $s[9]"; }
		for (my $i = $depth; $i >= 1; $i--) {
			if ($lv{$i}) {
				my @s = sfile("side$i");
				if ($mode eq "inodes") { push @out, $s[1]; }
				else {
					open(my $f, "<", "side$i") or die; my $c = <$f>; chomp $c;
					push @out, sprintf("side%d %o %d %d %d %d %s", $i, $s[2], $s[4], $s[5], $s[7], $s[9], $c);
				}
			}
			chdir ".." or die;
		}
		print join("\n", @out), "\n";
	' "$p/$1" "$2" "$DEPTH" "${LEVELS[@]}"
}
mkdir -p "$p/g1" "$p/g2"
deep g1 build
deep g2 build
bottom_state() { deep "$1" state; }
bottom_inodes() { deep "$1" inodes | tr '\n' ' '; }
before1=$(bottom_state g1)
before2=$(bottom_state g2)
# Alike but for the bottom directory's mtime (made a moment apart).
assert_eq "$(echo "$before1" | grep -v '^dir mtime')" "$(echo "$before2" | grep -v '^dir mtime')" \
	"test setup: both guests alike"

RC=0
(ulimit -n 100 && exec "$VUNIFY" unify --json "$p") >"$d/run.out" 2>"$d/run.err" || RC=$?
assert_eq 0 "$RC" "unify exit code ($(head -5 "$d/run.err"))"
assert_eq 0 "$(jq .skipped.error "$d/run.out")" "errors"
assert_eq $((DEPTH * 2 + 2 * (2 + ${#LEVELS[@]}))) "$(jq .scanned "$d/run.out")" "entries scanned"
assert_eq $((2 + ${#LEVELS[@]})) "$(jq .linked "$d/run.out")" "files linked"
assert_eq "$(bottom_inodes g1)" "$(bottom_inodes g2)" "inodes of g1 and g2 files"
assert_eq "$before1" "$(bottom_state g1)" "what g1 observes"
assert_eq "$before2" "$(bottom_state g2)" "what g2 observes"
deep g2 cowlink || fail "bottom.bin is not a CoW link"

# A rerun (stat cache) agrees and changes nothing.
RC=0
(ulimit -n 100 && exec "$VUNIFY" unify --json "$p") >"$d/run2.out" 2>"$d/run2.err" || RC=$?
assert_eq 0 "$RC" "rerun exit code ($(head -5 "$d/run2.err"))"
assert_eq 0 "$(jq .hashed_bytes "$d/run2.out")" "rerun hashed bytes"
assert_eq $((2 * (2 + ${#LEVELS[@]}))) "$(jq .already "$d/run2.out")" "rerun: already unified"

# audit walks it too.
RC=0
(ulimit -n 100 && exec "$VUNIFY" audit --json "$p") >"$d/audit.out" 2>"$d/audit.err" || RC=$?
assert_eq 0 "$RC" "audit exit code ($(head -5 "$d/audit.err"))"
assert_eq $((DEPTH + 1 + 2 + ${#LEVELS[@]})) "$(jq '.guests[0].entries' "$d/audit.out")" "audit entries of g1"
exit 0
