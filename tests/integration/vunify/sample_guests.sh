#!/bin/bash
# The demo's path as a test: sample guests unify, stay byte-for-byte and
# metadata-identical, share inodes, and a rerun hashes nothing.
source "$(dirname "$0")/../lib.sh"
need_root
d=$(scratch_dir)
"$SRCDIR/scripts/make-sample-guests" "$d/pool" 3 >/dev/null
before=$(manifest "$d/pool/guest1"; manifest "$d/pool/guest3")
# The manifests see the xattrs: the sample's user xattr, ACL and file
# capability are in them (an unread xattr would compare equal, empty on both
# sides).
for want in "./usr/share-meta/xattr .* user.sample=0x31" "./usr/share-meta/acl .* system.posix_acl_access=0x" \
	"./usr/share-meta/cap .* security.capability=0x0100000200200000000000000000000000000000"; do
	grep -q "^$want" <<<"$before" || fail "the manifest lacks '$want'"
done
"$VUNIFY" unify --json "$d/pool" > "$d/run1.json" 2> "$d/run1.err" || fail "unify failed: $(cat "$d/run1.err")"
after=$(manifest "$d/pool/guest1"; manifest "$d/pool/guest3")
[ "$before" = "$after" ] || fail "manifest changed: $(diff <(echo "$before") <(echo "$after") | head)"
same_inode "$d/pool/guest1/usr/bin/sh" "$d/pool/guest2/usr/bin/sh" || fail "sh not shared"
is_cowlink "$d/pool/guest1/usr/bin/sh" || fail "sh not a CoW link"
[ "$(jq .linked "$d/run1.json")" -gt 50 ] || fail "too few links: $(cat "$d/run1.json")"
"$VUNIFY" unify --json "$d/pool" > "$d/run2.json" 2>/dev/null
assert_eq 0 "$(jq .hashed_bytes "$d/run2.json")" "rerun hashed bytes"
assert_eq 0 "$(jq .linked "$d/run2.json")" "rerun links"
