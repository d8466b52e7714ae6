#!/bin/bash
# vunify split: a guest's CoW links become private files with exactly the
# metadata they had before unify (owner, mode incl. setuid, mtime, xattrs,
# ACLs, capabilities); single paths or a subtree can be split; other guests
# keep their links.
source "$(dirname "$0")/../lib.sh"
need_root
d=$(scratch_dir)
pool=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$pool" 3 >/dev/null 2>&1
for g in guest1 guest2 guest3; do manifest "$pool/$g" > "$d/$g.before"; done
"$VUNIFY" unify -q "$pool"
links() { local n=0 f; while IFS= read -r -d '' f; do is_cowlink "$f" && n=$((n + 1)); done < <(find "$1" -type f -print0); echo $n; }
n1=$(links "$pool/guest1")
[ "$n1" -gt 10 ] || fail "unify made only $n1 CoW links in guest1"

# One file and one directory.
"$VUNIFY" split -q "$pool" guest1 /usr/bin/cat usr/share-meta/
! is_cowlink "$pool/guest1/usr/bin/cat" || fail "cat not split"
for f in "$pool"/guest1/usr/share-meta/*; do ! is_cowlink "$f" || fail "$f not split"; done
is_cowlink "$pool/guest1/usr/bin/ls" || fail "ls split although not asked"
is_cowlink "$pool/guest2/usr/bin/cat" || fail "guest2's cat lost its link"

# Dry run changes nothing.
left=$(links "$pool/guest1")
"$VUNIFY" split -n --json "$pool" guest1 > "$d/dry.json"
assert_eq "$left" "$(jq .split "$d/dry.json")" "dry run count"
assert_eq "$left" "$(links "$pool/guest1")" "CoW links after a dry run"

# The rest, then compare everything a guest observes with before unify.
"$VUNIFY" split --json "$pool" guest1 > "$d/all.json"
assert_eq "$left" "$(jq .split "$d/all.json")" "files split"
assert_eq 0 "$(links "$pool/guest1")" "CoW links left in guest1"
assert_eq 0 "$(lsattr -R "$pool/guest1" 2>/dev/null | awk 'NF == 2 && substr($1, 5, 1) == "i"' | wc -l)" "immutable files left"
# Everything a guest observes, directories' mtimes included (unify and
# split both put them back after their renames).  Trailing blanks differ
# where lib.sh's manifest filtered the marker out.
files_only() { sed "s/ *$//" "$1"; }
manifest "$pool/guest1" > "$d/guest1.after"
diff <(files_only "$d/guest1.before") <(files_only "$d/guest1.after") >&2 || fail "guest1 metadata changed by unify + split"
# setuid and capabilities survived (the manifest covers them; say so plainly).
assert_eq 4755 "$(stat -c %a "$pool/guest1/usr/share-meta/mode")" "setuid bit"
capof() { getfattr -h -n security.capability -e hex -- "$1" | grep '^security\.capability='; }
cap=$(capof "$pool/guest2/usr/share-meta/cap") || fail "the sample usr/share-meta/cap has no file capability"
assert_eq "$cap" "$(capof "$pool/guest1/usr/share-meta/cap")" "file capability after split"
# Other guests untouched and still verified.
"$VUNIFY" verify -q "$pool" || fail "verify after split"
[ "$(links "$pool/guest2")" -gt 10 ] || fail "guest2 lost its CoW links"
diff <(files_only "$d/guest2.before") <(manifest "$pool/guest2" | files_only /dev/stdin) >&2 || fail "guest2 changed"

# Symlinks are not followed; paths cannot leave the guest.
ln -s /etc "$pool/guest2/evil"
set +e
"$VUNIFY" split -q "$pool" guest2 /evil/passwd 2>"$d/sym.err"; rc1=$?
"$VUNIFY" split -q "$pool" guest2 ../guest3 2>>"$d/sym.err"; rc2=$?
set -e
assert_eq 1 "$rc1" "split through a symlink"
assert_eq 1 "$rc2" "split outside the guest"
is_cowlink "$pool/guest3/usr/bin/cat" || fail "split left the guest"
