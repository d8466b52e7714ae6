#!/bin/bash
# vunify verify: catches a flipped byte in an object and a path whose
# marker no longer matches, names every guest path concerned, exits 5;
# --repair splits the damaged links and restores an intact object's
# marker; afterwards verify is clean.
source "$(dirname "$0")/../lib.sh"
need_root
d=$(scratch_dir)
pool=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$pool" 3 >/dev/null 2>&1
"$VUNIFY" unify -q "$pool"
"$VUNIFY" verify -q "$pool" || fail "verify of a fresh pool exited $?"
# A marked private copy whose marker is its own identity (what a unify
# killed between marking and linking leaves; also `cp -a` of a CoW link by
# root) is no damage: the next unify links it.
cp -a "$pool/guest1/usr/bin/ls" "$pool/guest1/usr/bin/ls-copy"
"$VUNIFY" verify -q --json "$pool" > "$d/l.json" || fail "a leftover counted as damage: $(cat "$d/l.json")"
assert_eq 1 "$(jq .leftovers "$d/l.json")" "leftovers"
"$VUNIFY" unify -q "$pool"
same_inode "$pool/guest1/usr/bin/ls" "$pool/guest1/usr/bin/ls-copy" || fail "unify did not finish the leftover"

# 1. Bit rot: one byte of the object behind /usr/bin/cat changes.
f=$pool/guest2/usr/bin/cat
is_cowlink "$f" || fail "$f is not a CoW link"
h=$(getfattr --only-values -n trusted.cowlink "$f")
chattr -i "$f"
orig=$(dd if="$f" bs=1 skip=200 count=1 2>/dev/null | od -An -tx1 | tr -d ' ')
printf '\x%02x' $(( (0x$orig ^ 0xff) )) | dd of="$f" bs=1 seek=200 conv=notrunc 2>/dev/null
chattr +i "$f"
# 2. Tampered marker on another CoW link (content intact).
g=$pool/guest1/usr/bin/ls
gh=$(getfattr --only-values -n trusted.cowlink "$g")
chattr -i "$g"; setfattr -n trusted.cowlink -v 0123456789abcdef0123456789abcdef "$g"; chattr +i "$g"
# 3. A private file carrying a forged marker (not a pool object).
echo forged > "$pool/guest3/etc/forged"
setfattr -n trusted.cowlink -v "$h" "$pool/guest3/etc/forged"

set +e
"$VUNIFY" verify --json "$pool" > "$d/v.json" 2> "$d/v.err"
rc=$?
set -e
assert_eq 5 "$rc" "verify exit code with damage"
assert_eq 1 "$(jq .damaged_objects "$d/v.json")" "damaged objects"
assert_eq 1 "$(jq .bad_markers "$d/v.json")" "bad markers"
assert_eq 3 "$(jq .damaged_paths "$d/v.json")" "paths sharing the damaged object"
assert_eq 1 "$(jq .stray_markers "$d/v.json")" "forged markers"
for gst in guest1 guest2 guest3; do
	grep -q "^vunify: $gst/usr/bin/cat: shares damaged object ${h:0:2}/$h" "$d/v.err" ||
		fail "no per-path report for $gst/usr/bin/cat: $(cat "$d/v.err")"
	grep -q "^vunify: $gst/usr/bin/ls: .*marker not matching" "$d/v.err" ||
		fail "no per-path report for $gst/usr/bin/ls"
done
grep -q "guest3/etc/forged: marked as CoW link $h, but is not a pool object" "$d/v.err" ||
	fail "forged marker not reported"
jq -e '.problems | map(.path) | index("guest2/usr/bin/cat") != null' "$d/v.json" >/dev/null ||
	fail "JSON problems lack guest2/usr/bin/cat"
# Nothing changed without --repair.
is_cowlink "$f" || fail "verify without --repair changed $f"

set +e
"$VUNIFY" verify --repair -q "$pool" 2> "$d/r.err"
rc=$?
set -e
assert_eq 5 "$rc" "verify --repair still reports what it found"
for gst in guest1 guest2 guest3; do
	p=$pool/$gst/usr/bin/cat
	! is_cowlink "$p" || fail "$p still a CoW link after --repair"
	assert_eq 1 "$(stat -c %h "$p")" "$p link count after split"
	assert_eq "$(getfattr --only-values -n trusted.cowlink "$g")" "$gh" "marker of $g restored"
done
[ ! -e "$pool/.hashdb/objects/${h:0:2}/$h" ] || fail "damaged object still in the pool"
! getfattr -n trusted.cowlink "$pool/guest3/etc/forged" >/dev/null 2>&1 || fail "forged marker kept"
"$VUNIFY" verify -q "$pool" || fail "verify after --repair exited $?"
# The repaired pool unifies again (the intact guests' cat copies are equal
# to each other: they re-form one object).
"$VUNIFY" unify -q "$pool"
"$VUNIFY" gc -q "$pool"
"$VUNIFY" verify -q "$pool" || fail "verify after re-unify exited $?"

# A writable object (immutable flag cleared) is damage too.
w=$pool/guest1/usr/bin/sort
chattr -i "$w"
set +e; "$VUNIFY" verify -q "$pool" 2>"$d/w.err"; rc=$?; set -e
assert_eq 5 "$rc" "verify with a writable object"
grep -q "object is writable" "$d/w.err" || fail "writable object not reported"
"$VUNIFY" verify --repair -q "$pool" 2>/dev/null || true
is_cowlink "$w" || fail "--repair did not restore the immutable flag"
"$VUNIFY" verify -q "$pool" || fail "verify after flag repair"
