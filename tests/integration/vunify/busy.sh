#!/bin/bash
# A file held open for writing is skipped as busy (the read lease is
# refused), stays the writer's own inode, and the writer's later writes land
# in the file the guest sees.  Once the writer is gone, the next run unifies.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
d=$(scratch_dir)
p=$d/pool
for g in g1 g2; do
	mkdir -p "$p/$g/var/log"
	printf 'line 1\n' > "$p/$g/var/log/app.log"
	printf 'other\n' > "$p/$g/var/log/other"
	touch -d '2024-01-01 00:00:00' "$p/$g/var/log/app.log" "$p/$g/var/log/other"
done
ino_before=$(ino "$p/g2/var/log/app.log")
exec 3>>"$p/g2/var/log/app.log"		# a writer in guest g2

vrun "$d/run1" unify -v --json "$p"
assert_eq 0 "$RC" "unify exit code ($(cat "$d/run1.err"))"
assert_eq 1 "$(jq .skipped.busy "$d/run1.out")" "files skipped as busy"
grep -q '^vunify: g2/var/log/app.log: skipped: open for writing$' "$d/run1.err" ||
	fail "-v does not say why g2/var/log/app.log was skipped: $(cat "$d/run1.err")"
assert_eq "$ino_before" "$(ino "$p/g2/var/log/app.log")" "inode of the busy file"
is_immutable "$p/g2/var/log/app.log" && fail "the busy file was made immutable"
same_inode "$p/g1/var/log/other" "$p/g2/var/log/other" || fail "other files were not unified"

printf 'line 2\n' >&3 || fail "the writer's write failed"
exec 3>&-
assert_eq $'line 1\nline 2' "$(cat "$p/g2/var/log/app.log")" "content after the writer's write"
same_inode "$p/g1/var/log/app.log" "$p/g2/var/log/app.log" && fail "busy file got linked"

# The writer gone and the content equal again: the next run links it.
printf 'line 1\n' > "$p/g2/var/log/app.log"
touch -d '2024-01-01 00:00:00' "$p/g2/var/log/app.log"
vrun "$d/run2" unify --json "$p"
assert_eq 0 "$RC" "second unify exit code ($(cat "$d/run2.err"))"
assert_eq 0 "$(jq .skipped.busy "$d/run2.out")" "busy files in the second run"
same_inode "$p/g1/var/log/app.log" "$p/g2/var/log/app.log" || fail "file not linked once the writer was gone"
exit 0
