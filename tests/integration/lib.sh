#!/bin/bash
# Shared helpers for integration tests.  Each test is a bash script run by
# meson with VUNIFY, COWFS (when built) and SRCDIR in the environment.
# Exit 0 = pass, 77 = skipped (meson reports it as SKIP; we also say why,
# loudly), anything else = fail.
set -euo pipefail

VUNIFY=${VUNIFY:?VUNIFY must point to the vunify binary}
SRCDIR=${SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TEST_NAME=$(basename "$0" .sh)

skip() {
	echo "SKIPPED: $TEST_NAME: $*" >&2
	exit 77
}

# fail MESSAGE: the test fails, also when called in a subshell ($(...), a
# pipeline, a background job), whose exit status the caller may not look at
# (an argument's $(...), the left side of a pipe): the test's own shell is
# told with SIGUSR1 and exits 1 as soon as it gets control back.
fail() {
	echo "FAIL: $TEST_NAME: $*" >&2
	[ "$BASHPID" = "$$" ] || kill -USR1 $$ 2>/dev/null || true
	exit 1
}
trap 'exit 1' USR1

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root"
}

need_fuse() {
	need_root
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	[ -n "${COWFS:-}" ] && [ -x "$COWFS" ] || skip "cowfs was not built"
}

# Cleanups go to a log file, not an array: helpers such as scratch_dir run in
# $(...), a subshell whose array changes the main shell never sees (and whose
# exit runs no EXIT trap), so their cleanups were lost.  The log keeps the
# order of registration across subshells; it runs backwards at exit.
_cleanup_log=$(mktemp "${TMPDIR:-/tmp}/cowfs-test-cleanup.XXXXXX")
at_exit() { printf '%s\0' "$*" >> "$_cleanup_log"; }
_run_cleanups() {
	local rc=$?
	local i
	local -a c=()
	mapfile -d '' c < "$_cleanup_log"
	for ((i = ${#c[@]} - 1; i >= 0; i--)); do
		eval "${c[$i]}" || true
	done
	rm -f "$_cleanup_log"
	exit $rc
}
trap _run_cleanups EXIT

# scratch_dir: a fresh directory on real ext4 (immutable flag, trusted
# xattrs, leases and ACLs need it; tmpfs will not do).  Uses
# $COWFS_TEST_DIR, else /var/tmp when that is ext4, else a loop-mounted
# ext4 image.  Cleaned up (immutable flags first) when the test exits.
scratch_dir() {
	local base=${COWFS_TEST_DIR:-/var/tmp}
	local d
	mkdir -p "$base"
	if [ "$(stat -f -c %T "$base")" != ext2/ext3 ]; then
		base=$(fresh_ext4 1G) || exit $?
	fi
	d=$(mktemp -d "$base/cowfs-test.$TEST_NAME.XXXXXX")
	at_exit "chattr -R -i '$d' 2>/dev/null; rm -rf '$d'"
	echo "$d"
}

# fresh_ext4 SIZE [mkfs.ext4 options...]: loop-mount a new ext4 image of
# SIZE and print its mount point; unmounted and removed when the test exits.
# For tests that need a filesystem nobody else allocates on.
fresh_ext4() {
	need_root
	local img mnt size=$1
	shift
	img=$(mktemp /var/tmp/cowfs-test-img.XXXXXX 2>/dev/null || mktemp)
	truncate -s "$size" "$img"
	mkfs.ext4 -q -F "$@" "$img" >/dev/null || fail "mkfs.ext4 $* failed"
	mnt=$(mktemp -d)
	if ! mount -o loop "$img" "$mnt"; then
		rm -f "$img"
		rmdir "$mnt"
		skip "no ext4 available (cannot loop-mount an image)"
	fi
	at_exit "umount -l '$mnt'; rm -f '$img'; rmdir '$mnt'"
	echo "$mnt"
}

# xattr_count DIR: how many xattrs DIR and everything below it carry (the
# marker trusted.cowlink left out), counted with llistxattr(2) directly, so
# the manifests can check that getfattr showed them all.
xattr_count() {
	perl -e '
		use strict;
		use File::Find;
		require "syscall.ph";
		my $n = 0;
		find({ no_chdir => 1, wanted => sub {
			my ($p, $buf) = ($_, "\0" x 65536);
			my $r = syscall(&SYS_llistxattr, $p, $buf, length $buf);
			die "llistxattr $p: $!\n" if $r < 0;
			$n += grep { $_ ne "trusted.cowlink" } split /\0/, substr($buf, 0, $r);
		} }, $ARGV[0]);
		print "$n\n";' -- "$1" || fail "cannot count the xattrs under $1"
}

# manifest DIR: one line per path with everything a guest observes
# (type, mode, uid, gid, size, mtime, symlink target, content hash, xattrs
# including ACLs and capabilities).  The trusted.cowlink marker, ctime,
# inode numbers and link counts are left out: unify changes exactly those.
# A getfattr failure fails the test, and so does a manifest that shows fewer
# or more xattrs than llistxattr(2) finds under DIR: an empty xattr column on
# both sides of a comparison must mean "no xattrs", never "not read".
manifest() {
	local want
	want=$(xattr_count "$1")
	(cd "$1" && find . -printf '%p\0' | sort -z | {
		n=0
		while IFS= read -r -d '' p; do
			t=$(stat -c '%F|%a|%u|%g|%s|%Y.%y' -- "$p")
			h=-
			if [ -f "$p" ] && [ ! -L "$p" ]; then h=$(sha256sum -- "$p") && h=${h%% *}; fi
			if [ -L "$p" ]; then h="-> $(readlink -- "$p")"; fi
			x=$(getfattr -h -d -m - -e hex -- "$p") || fail "manifest: getfattr failed on $1/$p"
			a=()
			while IFS= read -r l; do
				case $l in '#'* | '' | trusted.cowlink=*) ;; *) a+=("$l") ;; esac
			done <<<"$x"
			n=$((n + ${#a[@]}))
			[ ${#a[@]} -lt 2 ] || mapfile -t a < <(printf '%s\n' "${a[@]}" | LC_ALL=C sort)
			printf '%q %s %s %s\n' "$p" "$t" "$h" "${a[*]}"
		done
		[ "$n" = "$want" ] || fail "manifest of $1 shows $n xattrs, llistxattr finds $want"
	})
}

# is_cowlink PATH: immutable and marked
is_cowlink() {
	lsattr -d -- "$1" 2>/dev/null | cut -c5 | grep -q i &&
		getfattr -h --only-values -n trusted.cowlink -- "$1" >/dev/null 2>&1
}

same_inode() { [ "$(stat -c %d:%i -- "$1")" = "$(stat -c %d:%i -- "$2")" ]; }

json_get() { # json_get FILE KEY  (top-level or skipped.KEY)
	jq -r ".$2" "$1"
}

assert_eq() { # assert_eq WANT GOT WHAT
	[ "$1" = "$2" ] || fail "$3: want '$1', got '$2'"
}
