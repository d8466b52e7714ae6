#!/bin/bash
# vunify remove: a guest goes whole (odd names, a tree deeper than PATH_MAX
# under a low ulimit -n, its own immutable/append-only files and
# directories), the other guests are untouched, every object still in use
# stays immutable and marked, the objects only it used are collected, its
# stat cache and audit samples go; it refuses (exit 6, naming the use)
# while a process has its working directory in the guest, while a bind
# mount of it exists or something is mounted inside it, and goes ahead
# with --force; a kill -9 at many points leaves every shared object
# protected and a rerun finishes the job.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../vunify/helpers.bash"
need_root
d=$(scratch_dir)
pool=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$pool" 3 >/dev/null 2>&1
cp -a "$pool/guest1" "$pool/guest4"
echo "only guest4 has this" > "$pool/guest4/etc/only4"
g3=$pool/guest3
# Odd names, as CoW links and as a directory.
cp -p "$g3/usr/bin/ls" "$g3/usr/bin/"$'new\nline'
cp -p "$g3/usr/bin/ls" "$g3/usr/bin/"$'bad\xff\xfebyte'
mkdir "$g3/"$'dir\nwith\xffodd' && cp -p "$g3/usr/bin/cat" "$g3/"$'dir\nwith\xffodd/cat'
# Deeper than PATH_MAX, with a file shared with guest1 at the bottom.
DEPTH=2100
perl -e 'my ($root, $n) = @ARGV; chdir $root or die;
	for (1 .. $n) { mkdir "d" or die; chdir "d" or die }
	system("cp", "-p", "$root/usr/bin/sh", "bottom") == 0 or die;' "$g3" "$DEPTH"
# The guest's own flagged files and directory (unify leaves them alone).
echo own > "$g3/etc/own-immutable"; chattr +i "$g3/etc/own-immutable"
echo log > "$g3/var/log/append.log"; chattr +a "$g3/var/log/append.log"
mkdir "$g3/home/user/locked" && echo x > "$g3/home/user/locked/f" && chattr +i "$g3/home/user/locked"
# Audit's samples go to prometheus-dir, so remove can drop guest3's.
mkdir -p "$d/prom"
echo "prometheus-dir = $d/prom" > "$d/vunify.conf"
export VUNIFY_CONFIG=$d/vunify.conf
"$VUNIFY" unify -q "$pool"
"$VUNIFY" audit -q "$pool" > /dev/null
prom=$d/prom/vunify_audit_$(echo "${pool#/}" | tr / _).prom
grep -q 'guest="guest3"' "$prom" || fail "no audit samples of guest3 in $prom"

for g in guest1 guest2 guest4; do manifest "$pool/$g" > "$d/$g.before"; done
nobj() { find "$pool/.hashdb/objects" -type f | wc -l; }
n0=$(nobj)
# Objects no other guest links: their inodes do not occur outside guest3.
find "$pool/guest1" "$pool/guest2" "$pool/guest4" -type f -printf '%i\n' | sort -u > "$d/others.ino"
only3=$(find "$pool/.hashdb/objects" -type f -printf '%i %p\n' | sort |
	join -v1 - "$d/others.ino" | cut -d' ' -f2-)
n3=$(echo "$only3" | grep -c . || true)
[ "$n3" -ge 3 ] || fail "test setup: want objects only guest3 uses, have $n3"
# (counted with -printf: some names hold newlines; every file with more
# than one link is a CoW link here)
links3=$(find "$g3" -type f -links +1 -printf x | wc -c)
entries3=$(find "$g3" -printf x | wc -c)
cache3=$pool/.hashdb/cache/$(printf guest3 | od -An -tx1 | tr -d ' \n').sc
[ -f "$cache3" ] || fail "test setup: no stat cache $cache3"

# Dry run: says what it would do, changes nothing.
vrun "$d/dry" remove -n --json "$pool" guest3
assert_eq 0 "$RC" "dry run exit code ($(cat "$d/dry.err"))"
assert_eq "$n3" "$(jq .objects_collected "$d/dry.out")" "objects a dry run would collect"
assert_eq "$links3" "$(jq .cowlinks "$d/dry.out")" "CoW links a dry run would unlink"
assert_eq "$entries3" "$(jq '.files + .cowlinks + .dirs' "$d/dry.out")" "entries a dry run would remove"
assert_eq "$entries3" "$(find "$g3" -printf x | wc -c)" "entries of guest3 after a dry run"
assert_eq "$n0" "$(nobj)" "objects after a dry run"

# In use: a process with its working directory inside.
(cd "$g3/usr" && exec sleep 60) &
spid=$!
sleep 0.2
vrun "$d/busy" remove --json "$pool" guest3
assert_eq 6 "$RC" "remove while a process works in the guest"
grep -q "process $spid (sleep) has its working directory at $g3/usr" "$d/busy.err" ||
	fail "busy message: $(cat "$d/busy.err")"
assert_eq 1 "$(jq '.in_use | length' "$d/busy.out")" "--json in_use entries"
kill "$spid"; wait "$spid" 2>/dev/null || true
# A bind mount of a part of it, elsewhere.
mkdir "$d/bind"
mount --bind "$g3/etc" "$d/bind"
at_exit "umount '$d/bind' 2>/dev/null"
vrun "$d/busy" remove "$pool" guest3
assert_eq 6 "$RC" "remove while a bind mount of the guest exists"
grep -q "in use: mounted at $d/bind (.*bind mount of the guest's /etc)" "$d/busy.err" ||
	fail "bind mount message: $(cat "$d/busy.err")"
umount "$d/bind"
# Something mounted inside it.
mount -t tmpfs none "$g3/tmp"
at_exit "umount '$g3/tmp' 2>/dev/null"
vrun "$d/busy" remove "$pool" guest3
assert_eq 6 "$RC" "remove while something is mounted inside the guest"
grep -q "in use: a mount at $g3/tmp (tmpfs" "$d/busy.err" || fail "mount message: $(cat "$d/busy.err")"
umount "$g3/tmp"
assert_eq "$entries3" "$(find "$g3" -printf x | wc -c)" "entries of guest3 after the refusals"

# The removal itself, the deep tree under a low fd limit.
RC=0
(ulimit -n 100 && exec "$VUNIFY" remove -v --json "$pool" guest3) >"$d/rm.out" 2>"$d/rm.err" || RC=$?
assert_eq 0 "$RC" "remove exit code ($(head -5 "$d/rm.err"))"
[ ! -e "$g3" ] && [ ! -e "$pool/.removing~guest3" ] || fail "guest3 is still there: $(ls -a "$pool")"
assert_eq "$entries3" "$(jq '.files + .cowlinks + .dirs' "$d/rm.out")" "entries removed"
assert_eq "$links3" "$(jq .cowlinks "$d/rm.out")" "CoW links removed"
assert_eq 3 "$(jq .flags_cleared "$d/rm.out")" "own flags cleared"
grep -q "own-immutable: immutable or append-only, no CoW link, one link: flag cleared" "$d/rm.err" ||
	fail "-v does not name the flag it cleared: $(cat "$d/rm.err")"
assert_eq "$n3" "$(jq .objects_collected "$d/rm.out")" "objects collected"
assert_eq $((n0 - n3)) "$(nobj)" "objects left"
while IFS= read -r o; do [ ! -e "$o" ] || fail "object only guest3 used survived: $o"; done <<<"$only3"
assert_eq 0 "$(find "$pool/.hashdb/objects" -type f -links 1 | wc -l)" "unused objects left"
objects_sound "$pool"
[ ! -e "$cache3" ] || fail "guest3's stat cache survived"
grep -q 'guest="guest3"' "$prom" && fail "guest3's audit samples survived"
grep -q 'guest="guest1"' "$prom" || fail "guest1's audit samples are gone"
for g in guest1 guest2 guest4; do
	manifest "$pool/$g" | diff "$d/$g.before" - >&2 || fail "$g changed"
done
"$VUNIFY" verify -q "$pool" || fail "verify after remove"
vrun "$d/again" remove "$pool" guest3
assert_eq 2 "$RC" "removing a guest that is gone"
grep -q "guest3: no such guest" "$d/again.err" || fail "message for a missing guest: $(cat "$d/again.err")"

# --force: a process inside and a mount inside.  The mount is never
# entered; what is left stays as .removing~NAME (no guest for any command)
# until a rerun, once it is unmounted, finishes.
(cd "$pool/guest4/usr/bin" && exec sleep 60) &
spid=$!
mount -t tmpfs none "$pool/guest4/tmp"
at_exit "umount '$pool/guest4/tmp' '$pool/.removing~guest4/tmp' 2>/dev/null"
echo "tmpfs file" > "$pool/guest4/tmp/keep"
vrun "$d/force" remove --force "$pool" guest4
assert_eq 1 "$RC" "--force with a mount inside (exit code)"
grep -q "guest4/tmp: a mount point" "$d/force.err" || fail "mount inside not named: $(cat "$d/force.err")"
[ -f "$pool/.removing~guest4/tmp/keep" ] || fail "the mount inside was entered"
"$VUNIFY" audit --json "$pool" > "$d/audit.json"
assert_eq "guest1 guest2" "$(jq -r '[.guests[].name] | join(" ")' "$d/audit.json")" "guests audit sees"
umount "$pool/.removing~guest4/tmp"
kill "$spid"; wait "$spid" 2>/dev/null || true
vrun "$d/force2" remove "$pool" guest4
assert_eq 0 "$RC" "rerun after unmounting ($(cat "$d/force2.err"))"
[ ! -e "$pool/.removing~guest4" ] || fail "guest4 left behind"
objects_sound "$pool"
"$VUNIFY" verify -q "$pool" || fail "verify after the forced remove"

# An immutable file with two links that is no CoW link: its other name
# might be another guest's, so it is left alone, flag and all.
mkdir -p "$pool/g5/etc"
echo shared > "$pool/g5/etc/a"; ln "$pool/g5/etc/a" "$pool/g5/etc/b"; chattr +i "$pool/g5/etc/a"
vrun "$d/hl" remove "$pool" g5
assert_eq 1 "$RC" "immutable file with two links"
grep -q "has 2 links" "$d/hl.err" || fail "message: $(cat "$d/hl.err")"
is_immutable "$pool/.removing~g5/etc/a" || fail "its flag was cleared"
chattr -i "$pool/.removing~g5/etc/a"
vrun "$d/hl2" remove "$pool" g5
assert_eq 0 "$RC" "rerun once the flag is cleared by hand"
[ ! -e "$pool/.removing~g5" ] || fail "g5 left behind"

# kill -9 at many points (strace injects SIGKILL at the Nth call): every
# shared object has its flag again at the next start (the flag journal),
# and a rerun finishes the removal.
command -v strace >/dev/null || { echo "remove: strace not installed; kill -9 part skipped" >&2; exit 0; }
tmpl=$d/template
"$SRCDIR/scripts/make-sample-guests" "$tmpl" 3 >/dev/null 2>&1
# ioctl: each CoW link is get, clear, (unlinkat), get, set: :3 lands after
# an unlink with the shared flag cleared.
TARGETS=(renameat2:1 unlinkat:1 unlinkat:7 unlinkat:30 unlinkat:60 unlinkat:85
	ioctl:2 ioctl:3 ioctl:4 ioctl:43 ioctl:150 ioctl:235)
killed=0 in_dance=0
for t in "${TARGETS[@]}"; do
	sc=${t%:*} n=${t#*:}
	p=$d/k
	if [ -d "$p" ]; then chattr -R -i "$p" 2>/dev/null || true; rm -rf "$p"; fi
	cp -a "$tmpl" "$p"
	"$VUNIFY" unify -q "$p"
	for g in guest1 guest2; do fast_manifest "$p/$g" > "$d/k.$g"; done
	RC=0
	traced strace -f -o /dev/null -e trace="$sc" -e inject="$sc:signal=SIGKILL:when=$n" \
		"$VUNIFY" remove -q "$p" guest3 >/dev/null 2>"$d/k.err" || RC=$?
	[ "$RC" = 137 ] && killed=$((killed + 1))
	[ "$RC" = 137 ] || [ "$RC" = 0 ] || fail "$t: remove under strace exited $RC ($(head -3 "$d/k.err"))"
	# Killed inside the flag dance, an object lacks its flag until then.
	find "$p/.hashdb/objects" -type f -exec lsattr {} + | awk 'substr($1, 5, 1) != "i"' | grep -q . &&
		in_dance=$((in_dance + 1))
	# The next start of anything (here a verify) replays the flag journal.
	vrun "$d/kv" verify -q "$p"
	assert_eq 0 "$RC" "$t: verify right after the kill ($(head -3 "$d/kv.err"))"
	objects_sound "$p"
	vrun "$d/kr" remove -q "$p" guest3
	[ "$RC" = 0 ] || { [ "$RC" = 2 ] && grep -q "no such guest" "$d/kr.err"; } ||
		fail "$t: rerun exited $RC ($(head -3 "$d/kr.err"))"
	[ ! -e "$p/guest3" ] && [ ! -e "$p/.removing~guest3" ] || fail "$t: guest3 left after the rerun"
	"$VUNIFY" gc -q "$p"	# a kill after the last rmdir leaves collecting to gc
	objects_sound "$p"
	assert_eq 0 "$(find "$p/.hashdb/objects" -type f -links 1 | wc -l)" "$t: unused objects left"
	for g in guest1 guest2; do fast_manifest "$p/$g" | diff "$d/k.$g" - >&2 || fail "$t: $g changed"; done
	"$VUNIFY" verify -q "$p" || fail "$t: verify after the rerun"
done
[ "$killed" -ge $((${#TARGETS[@]} * 2 / 3)) ] || fail "only $killed of ${#TARGETS[@]} kills hit the run"
[ "$in_dance" -ge 1 ] || fail "no kill landed inside a flag dance: the journal was not exercised"
echo "remove: $killed of ${#TARGETS[@]} targeted kills hit the run, $in_dance inside a flag dance" >&2
exit 0
