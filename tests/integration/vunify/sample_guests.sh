#!/bin/bash
# The demo's path as a test: sample guests unify, stay byte-for-byte and
# metadata-identical, share inodes, and a rerun hashes nothing.
source "$(dirname "$0")/../lib.sh"
need_root
d=$(scratch_dir)
"$SRCDIR/scripts/make-sample-guests" "$d/pool" 3 >/dev/null
before=$(manifest "$d/pool/guest1"; manifest "$d/pool/guest3")
"$VUNIFY" unify --json "$d/pool" > "$d/run1.json" 2> "$d/run1.err" || fail "unify failed: $(cat "$d/run1.err")"
after=$(manifest "$d/pool/guest1"; manifest "$d/pool/guest3")
[ "$before" = "$after" ] || fail "manifest changed: $(diff <(echo "$before") <(echo "$after") | head)"
same_inode "$d/pool/guest1/usr/bin/sh" "$d/pool/guest2/usr/bin/sh" || fail "sh not shared"
is_cowlink "$d/pool/guest1/usr/bin/sh" || fail "sh not a CoW link"
[ "$(jq .linked "$d/run1.json")" -gt 50 ] || fail "too few links: $(cat "$d/run1.json")"
"$VUNIFY" unify --json "$d/pool" > "$d/run2.json" 2>/dev/null
assert_eq 0 "$(jq .hashed_bytes "$d/run2.json")" "rerun hashed bytes"
assert_eq 0 "$(jq .linked "$d/run2.json")" "rerun links"
