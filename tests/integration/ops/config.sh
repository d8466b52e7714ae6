#!/bin/bash
# Configuration: /etc/vunify.conf (here via --config and $VUNIFY_CONFIG) and
# POOL/.hashdb/config; errors name file and line and exit 2; exclude rules
# with +/- prefixes, first match wins; the shipped default keeps per-guest
# secrets and runtime trees private.
source "$(dirname "$0")/../lib.sh"
need_root
d=$(scratch_dir)
pool=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$pool" 2 >/dev/null 2>&1

bad() { # bad WANT-MESSAGE CONFIG-TEXT
	printf '%s\n' "$2" > "$d/bad.conf"
	set +e
	"$VUNIFY" unify -n -c "$d/bad.conf" "$pool" > /dev/null 2> "$d/bad.err"
	local rc=$?
	set -e
	assert_eq 2 "$rc" "exit code for a bad config ($2)"
	grep -qF "vunify: $d/bad.conf:$1" "$d/bad.err" || fail "want '$d/bad.conf:$1', got: $(cat "$d/bad.err")"
}
bad "2: unknown key 'colour'" $'# ok\ncolour = blue'
bad "1: expected 'key = value'" 'ignore-mtime'
bad "3: ignore-mtime wants yes or no, not 'maybe'" $'\n\nignore-mtime = maybe'
bad "1: exclude: a rule without a pattern" 'exclude = -'
bad "1: prometheus-dir wants an absolute path" 'prometheus-dir = metrics'
bad "1: exclude-from: /nonexistent: No such file or directory" 'exclude-from = /nonexistent'
printf 'ok\n- \n' > "$d/rules"
bad "1: exclude-from: $d/rules:2: a rule without a pattern" "exclude-from = $d/rules"
# A named config that does not exist is an error; the default may be absent.
set +e; "$VUNIFY" unify -n -c "$d/missing.conf" "$pool" 2>"$d/m.err" >/dev/null; rc=$?; set -e
assert_eq 2 "$rc" "missing --config file"
VUNIFY_CONFIG=$d/absent-default.conf "$VUNIFY" config >/dev/null 2>&1 && fail "VUNIFY_CONFIG naming a missing file accepted" || true

# The pool's config: errors name it, "pool" is refused there.
mkdir -p "$pool/.hashdb/objects" "$pool/.hashdb/cache"
printf 'pool = /vservers\n' > "$pool/.hashdb/config"
set +e; "$VUNIFY" unify -n "$pool" 2>"$d/p.err" >/dev/null; rc=$?; set -e
assert_eq 2 "$rc" "'pool' in a pool's config"
grep -q "POOL/.hashdb/config:1: 'pool' belongs in the system configuration" "$d/p.err" || fail "$(cat "$d/p.err")"

# Excludes: the system file excludes /etc/hostname and /usr/bin/*; the
# pool's file re-includes /usr/bin/cat, which wins (pool rules come first).
printf 'exclude = - /etc/hostname\nexclude = - /usr/bin/*\nignore-mtime = no\n' > "$d/sys.conf"
printf '# pool settings\nexclude = + /usr/bin/cat\n' > "$pool/.hashdb/config"
"$VUNIFY" config -c "$d/sys.conf" "$pool" > "$d/eff.txt"
head -n 3 "$d/eff.txt" | grep -q "ignore-mtime = no" || fail "config output: $(cat "$d/eff.txt")"
grep -n "exclude" "$d/eff.txt" | head -1 | grep -q "+ /usr/bin/cat" || fail "pool rule not first: $(cat "$d/eff.txt")"
"$VUNIFY" unify -q -c "$d/sys.conf" "$pool"
is_cowlink "$pool/guest1/usr/bin/cat" || fail "/usr/bin/cat excluded although re-included"
! is_cowlink "$pool/guest1/usr/bin/ls" || fail "/usr/bin/ls unified although excluded"
# The same rules through $VUNIFY_CONFIG, with -v explaining the skips.
VUNIFY_CONFIG=$d/sys.conf "$VUNIFY" unify -n -v "$pool" 2> "$d/v.err"
grep -q "^vunify: guest1/usr/bin/ls: skipped: excluded" "$d/v.err" || fail "-v does not explain the skip"
grep -q "^vunify: guest2/dev/null: skipped: not a regular file" "$d/v.err" || fail "-v does not explain special files"

# The shipped default configuration.
conf=$SRCDIR/vunify/vunify.conf
rm -f "$pool/.hashdb/config"
g=$pool/guest1
mkdir -p "$g/etc/ssh" "$pool/guest2/etc/ssh" "$g/proc" "$pool/guest2/proc"
for x in guest1 guest2; do
	echo same-key > "$pool/$x/etc/ssh/ssh_host_ed25519_key"
	echo same-shadow > "$pool/$x/etc/shadow"
	echo same-proc > "$pool/$x/proc/fake"
	echo same-tmp > "$pool/$x/tmp/fake"
	echo same-log > "$pool/$x/var/log/fake.log"
	echo same-config > "$pool/$x/etc/config-shared"
done
"$VUNIFY" unify -q -c "$conf" "$pool"
for p in /etc/ssh/ssh_host_ed25519_key /etc/shadow /proc/fake /tmp/fake /var/log/fake.log; do
	! is_cowlink "$g$p" || fail "the default config let $p be unified"
done
is_cowlink "$g/etc/config-shared" || fail "the default config excluded an ordinary file"
"$VUNIFY" config -c "$conf" > /dev/null || fail "the shipped config does not validate"
