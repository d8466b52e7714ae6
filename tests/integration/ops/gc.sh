#!/bin/bash
# vunify gc: removes objects no guest uses, keeps the used ones, closes
# gaps in HASH, HASH.1, ... so every CoW link stays recognisable, refuses
# to run while the pool is locked (exit 4), and is safe racing a unify.
source "$(dirname "$0")/../lib.sh"
need_root
d=$(scratch_dir)
pool=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$pool" 3 >/dev/null 2>&1
"$VUNIFY" unify -q "$pool"
before=$(manifest "$pool/guest1")
nobj() { find "$pool/.hashdb/objects" -type f | wc -l; }
n0=$(nobj)

# Nothing to collect right after a unify.
"$VUNIFY" gc --json "$pool" > "$d/gc0.json"
assert_eq 0 "$(jq .removed "$d/gc0.json")" "objects removed right after unify"
assert_eq "$n0" "$(nobj)" "object count after a no-op gc"

# A guest's private extra file becomes an object only it uses; remove the
# guest (leaving its objects to gc) and gc must remove that object (link
# count 1), nothing else.
uniq_obj=$(getfattr --only-values -n trusted.cowlink "$pool/guest3/opt/extra/xargs" 2>/dev/null || true)
hexname() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
"$VUNIFY" remove -q --no-gc "$pool" guest3
[ ! -e "$pool/.hashdb/cache/$(hexname guest3).sc" ] || fail "remove left guest3's stat cache"
# A stat cache of a guest that went away by other means is gc's to remove.
cp "$pool/.hashdb/cache/$(hexname guest1).sc" "$pool/.hashdb/cache/$(hexname gone).sc"
single=$(find "$pool/.hashdb/objects" -type f -links 1 | wc -l)
[ "$single" -gt 0 ] || fail "expected objects only guest3 used"
"$VUNIFY" gc -n "$pool" 2>"$d/dry.err"
assert_eq "$n0" "$(nobj)" "a dry run removes nothing"
grep -q "would remove $single" "$d/dry.err" || fail "dry run summary: $(cat "$d/dry.err")"
"$VUNIFY" gc --json "$pool" > "$d/gc1.json"
assert_eq "$single" "$(jq .removed "$d/gc1.json")" "objects removed"
assert_eq "$((n0 - single))" "$(nobj)" "objects left"
assert_eq 0 "$(find "$pool/.hashdb/objects" -type f -links 1 | wc -l)" "unused objects left"
[ -z "$uniq_obj" ] || [ ! -e "$pool/.hashdb/objects/${uniq_obj:0:2}/$uniq_obj" ] || fail "guest3's own object survived"
assert_eq 1 "$(jq .caches_removed "$d/gc1.json")" "stale stat cache of a guest that is gone"
assert_eq "$before" "$(manifest "$pool/guest1")" "guest1 unchanged by gc"

# Generation gap: the object of /usr/bin/cat moves to HASH.2 and an unused
# copy sits at HASH (gen 0); gen 1 is missing.  gc removes HASH and renames
# HASH.2 to HASH, so unify recognises every link again.
f=$pool/guest1/usr/bin/cat
h=$(getfattr --only-values -n trusted.cowlink "$f")
o=$pool/.hashdb/objects/${h:0:2}/$h
chattr -i "$o"; mv "$o" "$o.2"; chattr +i "$o.2"
cp -a "$o.2" "$o.tmpcopy"; chattr -i "$o.tmpcopy" 2>/dev/null || true; mv "$o.tmpcopy" "$o"
"$VUNIFY" gc --json "$pool" > "$d/gc2.json"
assert_eq 1 "$(jq .removed "$d/gc2.json")" "unused gen-0 object removed"
assert_eq 1 "$(jq .renamed "$d/gc2.json")" "gen 2 renamed"
[ -e "$o" ] && [ ! -e "$o.2" ] || fail "generations not dense: $(ls "$(dirname "$o")")"
same_inode "$o" "$f" || fail "object HASH is not the inode of $f"
"$VUNIFY" unify --json "$pool" > "$d/u2.json"
assert_eq 0 "$(jq .skipped.flagged "$d/u2.json")" "CoW links not recognised after gc"
assert_eq 0 "$(jq .linked "$d/u2.json")" "rerun links nothing"

# Locked pool: gc exits 4 and changes nothing.
"$VUNIFY" remove -q --no-gc "$pool" guest2
set +e
flock "$pool/.hashdb/lock" "$VUNIFY" gc "$pool" 2>"$d/locked.err"
rc=$?
set -e
assert_eq 4 "$rc" "gc on a locked pool"
grep -q "another vunify run" "$d/locked.err" || fail "no lock message: $(cat "$d/locked.err")"

# Racing: gc in a loop while unify works on guests being added.  Every run
# either works or finds the pool locked (4); afterwards verify is clean and
# no guest lost content.
"$SRCDIR/scripts/make-sample-guests" "$d/more" 6 >/dev/null 2>&1
for i in 1 2 3 4 5 6; do mv "$d/more/guest$i" "$pool/new$i"; done
# Directory mtimes change when unify renames inside them; files must not.
files_only() { grep -v " directory|" | sed "s/ *$//"; }
for i in 1 2 3 4 5 6; do manifest "$pool/new$i" | files_only > "$d/new$i.before"; done
# Whoever takes the pool lock first works; the other exits 4, never
# anything else, and nothing is lost.  Repeat until unify has run.
codes="" done_unify=0
for round in $(seq 1 20); do
	set +e
	"$VUNIFY" unify -q "$pool" & upid=$!
	"$VUNIFY" gc -q "$pool" 2>/dev/null; gc_rc=$?
	wait "$upid"; u_rc=$?
	set -e
	codes+=" unify=$u_rc,gc=$gc_rc"
	[ "$gc_rc" = 0 ] || [ "$gc_rc" = 4 ] || fail "gc racing unify exited $gc_rc"
	[ "$u_rc" = 0 ] || [ "$u_rc" = 4 ] || fail "unify racing gc exited $u_rc"
	[ "$u_rc" = 0 ] && done_unify=$((done_unify + 1))
	[ "$done_unify" -ge 2 ] && break
done
[ "$done_unify" -ge 1 ] || fail "unify never got the lock:$codes"
"$VUNIFY" gc -q "$pool"
"$VUNIFY" verify -q "$pool" || fail "verify after the race"
for i in 1 2 3 4 5 6; do
	manifest "$pool/new$i" | files_only | diff "$d/new$i.before" - >&2 || fail "new$i changed in the race"
done
echo "gc exit codes while unify ran:$codes" >&2
