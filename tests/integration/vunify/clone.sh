#!/bin/bash
# vunify clone POOL TEMPLATE NEW: NEW observes exactly what TEMPLATE observes
# (manifest compare) but the per-guest secrets (left out, or left empty);
# CoW links of the template are links of their objects in NEW, private
# files private copies, the template's hard-linked pair a pair in NEW;
# directories with odd modes, owners, xattrs and ACLs, a symlink pointing
# outside, a fifo, a device node, names with a newline and invalid UTF-8,
# a 200-deep path (with few fds allowed) all come across.  An existing NEW
# is refused with nothing changed; a kill -9 mid-clone leaves no guest NEW
# and a rerun completes; vunify verify is clean; --json parses.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
command -v jq >/dev/null || skip "needs jq"
command -v setfacl >/dev/null || skip "needs setfacl (acl)"
d=$(scratch_dir)
p=$d/pool
t=$p/tmpl
at_exit "chattr -R -i '$p' 2>/dev/null"

cat > "$d/conf" <<'EOF'
exclude = - /var/log/
secret = /etc/ssh/ssh_host_*
secret = /etc/ssl/private/*
secret = /var/lib/systemd/random-seed
secret-empty = /etc/machine-id
EOF
V() { "$VUNIFY" "$1" -c "$d/conf" "${@:2}"; }

# ---- the template ------------------------------------------------------------
mkdir -p "$t"/{etc/ssh,etc/ssl/private,usr/bin,usr/lib,var/log,var/lib/systemd,dev,run,srv/odd,home/u}
head -c 300000 /dev/urandom > "$t/usr/bin/prog"
chmod 4755 "$t/usr/bin/prog"
setfattr -n user.note -v prog "$t/usr/bin/prog"
setfacl -m u:1234:rx "$t/usr/bin/prog"
echo "shared with another guest" > "$t/usr/lib/shared.txt"
echo "log line" > "$t/var/log/syslog"		# excluded: stays private, copied
: > "$t/etc/empty.conf"				# empty: stays private, copied
echo "pair" > "$t/usr/lib/a" && ln "$t/usr/lib/a" "$t/usr/lib/b"	# hard-linked pair
echo "secret key" > "$t/etc/ssh/ssh_host_ed25519_key"
echo "public" > "$t/etc/ssh/ssh_host_ed25519_key.pub"
echo "sshd config" > "$t/etc/ssh/sshd_config"
echo "tls key" > "$t/etc/ssl/private/server.pem"
chmod 0710 "$t/etc/ssl/private"
echo 0123456789abcdef0123456789abcdef > "$t/etc/machine-id"
chmod 0444 "$t/etc/machine-id"
head -c 512 /dev/urandom > "$t/var/lib/systemd/random-seed"
ln -s /etc/passwd "$t/srv/outside"
ln -s ../../../../../../../etc "$t/srv/up"
setfattr -h -n trusted.note -v link "$t/srv/up"
mkfifo "$t/run/initctl"
mknod "$t/dev/null" c 1 3
mknod "$t/dev/loop7" b 7 7
chown 1234:5678 "$t/dev/loop7"
echo newline > "$t/srv/odd/$'new\nline'"
echo newline2 > "$t/srv/odd/"$'new\nline'
echo bad > "$t/srv/odd/"$'bad\xff\xfename'
mkdir "$t/srv/odd/"$'dir\x01\xc3'
echo in-odd-dir > "$t/srv/odd/"$'dir\x01\xc3/f'
chmod 1777 "$t/srv/odd"
chmod 2750 "$t/home/u"
chown 1234:5678 "$t/home/u"
setfattr -n user.dirnote -v home "$t/home/u"
echo "file before the default ACL" > "$t/home/u/plain"
: > "$t/home/u/empty-before"			# copied (empty): must not inherit the ACL
mkdir "$t/home/u/dir-before"
mkfifo "$t/home/u/fifo-before"
setfacl -d -m u:1234:rwx "$t/home/u"		# default ACL, inherited by new children only
echo "file after the default ACL" > "$t/home/u/inherits"
mkdir "$t/srv/locked" && echo locked > "$t/srv/locked/f" && chmod 0000 "$t/srv/locked"
# a deep path
(cd "$t/srv" && for i in $(seq 200); do mkdir d && cd d; done && echo bottom > f) ||
	fail "cannot build the deep path"
find "$t" -mindepth 1 -exec touch -h -d '2024-02-03 04:05:06.123456789' {} +
touch -d '2023-01-01 00:00:00' "$t"
# another guest, so that one template file is shared before the clone
mkdir -p "$p/other/usr/lib"
cp -a "$t/usr/lib/shared.txt" "$p/other/usr/lib/shared.txt"

V unify -q "$p" other || fail "unify of the other guest"
is_cowlink "$p/other/usr/lib/shared.txt" || fail "setup: other's file is no CoW link"

# ---- the clone ---------------------------------------------------------------
secrets_re='^\./etc/(ssh/ssh_host_ed25519_key(\.pub)?|ssl/private/server\.pem|machine-id) |^\./var/lib/systemd/random-seed '
want=$(manifest "$t" | grep -Ev "$secrets_re")
RC=0
( ulimit -n 100; V clone --json "$p" tmpl new >"$d/c.out" 2>"$d/c.err" ) || RC=$?
assert_eq 0 "$RC" "clone exit code ($(cat "$d/c.err"))"
jq -e . "$d/c.out" >/dev/null || fail "--json does not parse: $(cat "$d/c.out")"
assert_eq true "$(jq .created "$d/c.out")" "created"
assert_eq '["/etc/ssh/ssh_host_ed25519_key","/etc/ssh/ssh_host_ed25519_key.pub","/etc/ssl/private/server.pem","/var/lib/systemd/random-seed"]' \
	"$(jq -c '.secrets_left_out | sort' "$d/c.out")" "secrets left out"
assert_eq '["/etc/machine-id"]' "$(jq -c .secrets_left_empty "$d/c.out")" "secrets left empty"
assert_eq 1 "$(jq .hardlinked "$d/c.out")" "hard links made in the clone"
assert_eq 4 "$(jq .specials "$d/c.out")" "specials (2 fifos, 2 devices)"
grep -q "new/etc/ssh/ssh_host_ed25519_key: per-guest secret: left out" "$d/c.err" ||
	fail "the secrets are not listed on stderr: $(cat "$d/c.err")"
[ -d "$p/new" ] && [ ! -e "$p/.cloning~new" ] || fail "no guest new, or a .cloning~ left"

got=$(manifest "$p/new" | grep -Ev "$secrets_re")
assert_same_manifest "$want" "$got" "clone vs template"
# the secrets
for f in etc/ssh/ssh_host_ed25519_key etc/ssh/ssh_host_ed25519_key.pub etc/ssl/private/server.pem \
	var/lib/systemd/random-seed; do
	[ ! -e "$p/new/$f" ] || fail "secret $f was cloned"
done
[ -d "$p/new/etc/ssl/private" ] || fail "the directory of a secret was left out"
assert_eq "0 444 0" "$(stat -c '%s %a %u' "$p/new/etc/machine-id")" "machine-id: empty, mode kept"

# CoW links: the clone's names are links of the objects, like the template's
for f in usr/bin/prog usr/lib/shared.txt etc/ssh/sshd_config "srv/odd/"$'bad\xff\xfename'; do
	is_cowlink "$t/$f" || fail "template $f is no CoW link after the clone's unify"
	same_inode "$t/$f" "$p/new/$f" || fail "clone's $f does not share the object's inode"
done
same_inode "$p/other/usr/lib/shared.txt" "$p/new/usr/lib/shared.txt" || fail "shared.txt not the other guest's object"
# private files are private copies
for f in var/log/syslog etc/empty.conf usr/lib/a; do
	same_inode "$t/$f" "$p/new/$f" && fail "clone's $f shares the template's private inode"
	is_cowlink "$p/new/$f" && fail "clone's $f became a CoW link"
done
same_inode "$p/new/usr/lib/a" "$p/new/usr/lib/b" || fail "the hard-linked pair is not a pair in the clone"
assert_eq 2 "$(nlink "$p/new/usr/lib/a")" "links of the clone's pair"

# verify is clean; a unify of the new guest answers its CoW links from the cache
RC=0
V verify -q "$p" 2>"$d/verify.err" || RC=$?
assert_eq 0 "$RC" "verify after the clone ($(cat "$d/verify.err"))"
objects_sound "$p"
V unify --json "$p" new >"$d/u.out" 2>"$d/u.err" || fail "unify of the clone: $(cat "$d/u.err")"
assert_eq 0 "$(jq .linked "$d/u.out")" "files unify links in a fresh clone"
assert_eq 0 "$(jq .new_objects "$d/u.out")" "objects unify adds for a fresh clone"

# ---- refusals ----------------------------------------------------------------
before=$(guests_fast_manifest "$p")
for args in "tmpl new" "tmpl tmpl" "tmpl .hidden" "tmpl a/b" "absent x"; do
	RC=0
	V clone "$p" $args >/dev/null 2>"$d/r.err" || RC=$?
	assert_eq 2 "$RC" "clone $args ($(cat "$d/r.err"))"
done
grep -q "no such guest" "$d/r.err" || fail "missing template message: $(cat "$d/r.err")"
assert_same_manifest "$before" "$(guests_fast_manifest "$p")" "refused clones"
[ -z "$(find "$p" -maxdepth 1 -name '.cloning~*')" ] || fail "a refused clone left a .cloning~ tree"

# dry run: nothing made
V clone -n --json "$p" tmpl dry >"$d/n.out" 2>"$d/n.err" || fail "dry run: $(cat "$d/n.err")"
[ ! -e "$p/dry" ] && [ ! -e "$p/.cloning~dry" ] || fail "the dry run made something"
[ "$(jq .linked "$d/n.out")" -gt 0 ] || fail "dry run counted no links: $(cat "$d/n.out")"

# ---- kill -9 mid-clone, then a rerun ------------------------------------------
head -c 400M /dev/zero | tr '\0' x > "$t/var/log/big"	# excluded: copied, slowly
RC=0
"$VUNIFY" clone -c "$d/conf" -q "$p" tmpl k1 2>"$d/k.err" &
cpid=$!
for ((i = 0; i < 400; i++)); do
	[ -e "$p/.cloning~k1/var/log/big" ] && [ -n "$(find "$p/.cloning~k1" -type f -links +1 | head -1)" ] && break
	sleep 0.02
done
kill -9 "$cpid" 2>/dev/null || true
wait "$cpid" 2>/dev/null || true
[ -d "$p/.cloning~k1" ] || skip "the clone finished before it could be killed"
[ ! -e "$p/k1" ] || fail "a killed clone left a guest k1"
V unify -n --json "$p" >"$d/g.out" 2>"$d/g.err" || true
assert_eq 3 "$(jq .guests "$d/g.out")" "guests listed beside a .cloning~ tree ($(cat "$d/g.err"))"
RC=0
V clone -v "$p" tmpl k1 >/dev/null 2>"$d/k2.err" || RC=$?
assert_eq 0 "$RC" "rerun after kill -9 ($(cat "$d/k2.err"))"
grep -q "taking apart a clone that was interrupted" "$d/k2.err" || fail "rerun did not say it took the leftover apart"
[ ! -e "$p/.cloning~k1" ] || fail "the leftover is still there"
want=$(manifest "$t" | grep -Ev "$secrets_re")
assert_same_manifest "$want" "$(manifest "$p/k1" | grep -Ev "$secrets_re")" "clone after kill -9"
objects_sound "$p"
RC=0
V verify -q "$p" 2>"$d/verify2.err" || RC=$?
assert_eq 0 "$RC" "verify after kill -9 and rerun ($(cat "$d/verify2.err"))"
exit 0
