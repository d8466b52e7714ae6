#!/bin/bash
# Helpers shared by the cowfs integration tests (sourced, not a test: the
# test glob only picks up *.sh).  Every test mounts the real cowfs on a pool
# of sample guests on ext4 and unmounts it in a trap, even on failure.
source "$(dirname "$0")/../lib.sh"
need_fuse
command -v fusermount3 >/dev/null || skip "fusermount3 is not installed"

# cowfs_pool [N]: sets POOL (N sample guests, unified) and MNT (empty).
cowfs_pool() {
	local base
	base=$(scratch_dir)
	chmod 755 "$base"	# guest users must reach the mount below it
	POOL=$base/pool
	MNT=$base/mnt
	mkdir -p "$MNT"
	"$SRCDIR/scripts/make-sample-guests" "$POOL" "${1:-2}" >/dev/null
	"$VUNIFY" unify "$POOL" >"$base/unify.log" 2>&1 || { cat "$base/unify.log" >&2; fail "vunify unify failed"; }
	COWFS_LOG=$base/cowfs.log
}

# cowfs_mount [cowfs options...]: mount POOL at MNT in the foreground (in
# the background of this shell) with its stderr in COWFS_LOG.
cowfs_mount() {
	# COWFS_TEST_OPTS: the suite's second pass over these tests
	# (tests/meson.build: cowfs-cached/*) mounts with -o passthrough=off.
	local extra=()
	read -ra extra <<<"${COWFS_TEST_OPTS:-}"
	"$COWFS" -f "${extra[@]}" "$@" "$POOL" "$MNT" 2>>"$COWFS_LOG" &
	COWFS_PID=$!
	at_exit "cowfs_cleanup"
	local i
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$MNT" && return 0
		if ! kill -0 "$COWFS_PID" 2>/dev/null; then
			cat "$COWFS_LOG" >&2
			# FUSE itself unusable here (no device, not permitted in this
			# container): that is a skip, not a cowfs failure.
			grep -qE "fuse: (device not found|failed to open /dev/fuse|failed to exec fusermount)|mount: .*(Operation not permitted|permission denied)" "$COWFS_LOG" &&
				skip "FUSE is not usable here (see the cowfs log above)"
			fail "cowfs exited at mount"
		fi
		sleep 0.1
	done
	fail "cowfs did not mount within 10 s"
}

cowfs_cleanup() {
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
	fi
	[ -n "${COWFS_PID:-}" ] && kill "$COWFS_PID" 2>/dev/null || true
	wait 2>/dev/null || true
}

# cowfs_umount: a clean unmount; the daemon must exit 0 and its log must
# show no sanitizer report.
cowfs_umount() {
	local rc=0
	fusermount3 -u "$MNT" || fail "fusermount3 -u failed"
	wait "$COWFS_PID" || rc=$?
	COWFS_PID=
	if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$COWFS_LOG"; then
		cat "$COWFS_LOG" >&2
		fail "cowfs reported a sanitizer error"
	fi
	[ "$rc" = 0 ] || { cat "$COWFS_LOG" >&2; fail "cowfs exited $rc after unmount"; }
	mountpoint -q "$MNT" && fail "still mounted after unmount"
	return 0
}

# obs PATH: what a guest observes of a file (content hash, type, mode, owner,
# size, mtime, xattrs without the marker).
# A getfattr failure fails the test (an empty xattr field means "none").
obs() {
	local x
	x=$(getfattr -h -d -m - -e hex -- "$1") || fail "obs: getfattr failed on $1"
	printf '%s|%s|%s\n' "$(sha256sum <"$1" | cut -c1-16)" "$(stat -c '%F|%a|%u|%g|%s|%Y' -- "$1")" \
		"$(printf '%s\n' "$x" | grep -v '^#' | grep -v '^$' | sort | tr '\n' ' ')"
}

ino() { stat -c %i -- "$1"; }

# as_user CMD...: run as uid/gid 1000 with no supplementary groups.
as_user() { setpriv --reuid 1000 --regid 1000 --clear-groups -- "$@"; }

# expect_fail ERRTEXT CMD...: CMD must fail and print ERRTEXT on stderr.
expect_fail() {
	local want=$1 out
	shift
	if out=$("$@" 2>&1); then fail "'$*' succeeded, expected failure ($want)"; fi
	case "$out" in *"$want"*) ;; *) fail "'$*': want '$want', got '$out'" ;; esac
}
