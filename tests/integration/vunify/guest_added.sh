#!/bin/bash
# Adding guest N+1 to a unified pool: the next run hashes only that guest
# (--json hashed_files equals its count of non-empty regular files; the
# others come from the stat cache, even though guest N+1's links moved the
# ctime of the inodes they share), and a second identical guest
# costs about its directory blocks (audit private bytes).  A rerun with
# nothing new hashes 0 bytes.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
d=$(scratch_dir)
p=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$p" 2 >/dev/null
cp -a "$p/guest1" "$d/spare"	# guest3 will be this: an exact copy of guest1
vrun "$d/run1" unify --json "$p"
assert_eq 0 "$RC" "first unify ($(cat "$d/run1.err"))"
vrun "$d/run2" unify --json "$p"
assert_eq 0 "$RC" "rerun"
assert_eq 0 "$(jq .hashed_bytes "$d/run2.out")" "rerun hashed bytes"
assert_eq 0 "$(jq .hashed_files "$d/run2.out")" "rerun hashed files"
assert_eq 0 "$(jq .linked "$d/run2.out")" "rerun links"
# The stat cache answers for every file: no file is even opened.
assert_eq "$(find "$p"/guest* -type f -size +0 | wc -l)" "$(jq .cache_hits "$d/run2.out")" \
	"rerun: files answered from the stat cache"

# guest3 arrives: a copy of guest1 as it was before unify (new inodes).
mv "$d/spare" "$p/guest3"
files=$(find "$p/guest3" -type f -size +0 | wc -l)
before=$(guests_manifest "$p")
vrun "$d/run3" unify --json "$p"
assert_eq 0 "$RC" "unify with guest3 added ($(cat "$d/run3.err"))"
assert_eq "$files" "$(jq .hashed_files "$d/run3.out")" "files hashed when guest3 was added"
assert_eq "$files" "$(jq .linked "$d/run3.out")" "guest3 files linked"
assert_eq 0 "$(jq .new_objects "$d/run3.out")" "new objects for a copy of guest1"
assert_same_manifest "$before" "$(guests_manifest "$p")" "unify of guest3"

# guest3's links moved the ctime of the inodes guest1 and guest2 share with
# it; their CoW links must still be answered from the stat cache (a growing
# pool would otherwise reopen every CoW link of every guest each night).
vrun "$d/run4" unify --json "$p"
assert_eq 0 "$RC" "run after guest3 was added"
assert_eq 0 "$(jq .hashed_files "$d/run4.out")" "run after guest3: hashed files"
assert_eq "$(find "$p"/guest* -type f -size +0 | wc -l)" "$(jq .cache_hits "$d/run4.out")" \
	"run after guest3: files answered from the stat cache"

# guest3's marginal cost: its private bytes are its directories (and
# nothing else: every non-empty file is shared with guest1).
vrun "$d/audit" audit --json "$p"
assert_eq 0 "$RC" "audit"
dirs=$(find "$p/guest3" -type d -printf '%b\n' | awk '{s += $1 * 512} END {print s}')
priv=$(jq '.guests[] | select(.name == "guest3") | .private_bytes' "$d/audit.out")
alloc=$(jq '.guests[] | select(.name == "guest3") | .allocated_bytes' "$d/audit.out")
assert_eq "$dirs" "$priv" "guest3 private bytes vs its directory blocks"
[ $((priv * 10)) -lt "$alloc" ] || fail "guest3 costs $priv of $alloc bytes: not mostly shared"
exit 0
