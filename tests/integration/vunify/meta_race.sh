#!/bin/bash
# A chmod (or chown, utimes, setxattr) does not break vunify's read lease,
# so one can land between vunify's last check of a file and the moment the
# file is frozen or replaced.  It must never be lost, and no object may end
# with metadata that is not its name's:
#   1. adopting a new object: the chmod lands while the marker is being set
#      (strace holds that fsetxattr); the file leaves the pool again, keeps
#      the chmod, and is reported "changed";
#   2. linking to an existing object: the chmod lands while the exchange is
#      held (renameat2); the exchange is undone, the file keeps the chmod.
# Either way `vunify verify` is clean, and the next run unifies the file.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
command -v strace >/dev/null || skip "strace not installed"
d=$(scratch_dir)
p=$d/pool
mkdir -p "$p/g1/etc" "$p/g2/etc"
echo same >"$p/g1/etc/f"
cp -p "$p/g1/etc/f" "$p/g2/etc/f"

held_run() { # held_run SYSCALL: a unify run with SYSCALL's first call held 1.5 s
	traced strace -f -o /dev/null -e trace="$1" -e inject="$1":delay_enter=1500000:when=1 \
		"$VUNIFY" unify --json "$p" >"$d/run.json" 2>"$d/run.err" &
	sleep 0.7	# inside the held call
	chmod 600 "$p/g1/etc/f"
	wait $! || fail "the run failed: $(cat "$d/run.err")"
}
check() { # check WHAT
	assert_eq 600 "$(stat -c %a "$p/g1/etc/f")" "$1: g1's chmod"
	assert_eq 1 "$(jq .skipped.changed "$d/run.json")" "$1: files reported changed"
	"$VUNIFY" verify "$p" >"$d/verify.out" 2>&1 || fail "$1: verify: $(cat "$d/verify.out")"
}

held_run fsetxattr
check "adopt"
assert_eq 1 "$(nlink "$p/g1/etc/f")" "adopt: g1's file left the pool"
is_immutable "$p/g1/etc/f" && fail "adopt: g1's file kept the flag"

# 2: g1's file back to g2's mode; g2's object exists now
chmod 644 "$p/g1/etc/f"
touch -r "$p/g2/etc/f" "$p/g1/etc/f"
held_run renameat2
check "link"
same_inode "$p/g1/etc/f" "$p/g2/etc/f" && fail "link: g1's changed file was linked"
vrun "$d/again" unify "$p"
assert_eq 0 "$RC" "the next run ($(cat "$d/again.err"))"
is_cowlink "$p/g1/etc/f" || fail "the next run did not unify g1's file"
assert_eq 600 "$(stat -c %a "$p/g1/etc/f")" "g1's mode after the next run"
