#!/bin/bash
# ignore-mtime-path (vunify.conf(5)): two guests hold the same files with
# other mtimes.  Those the rules cover (a directory rule's whole subtree, a
# basename rule, not a "+" exception before it) are linked and take the
# object's mtime; -v names each, --json counts them in mtime_changed; the
# others keep their own inode and mtime.  A second run is a no-op: the stat
# cache knows the paths that took another mtime (and the covered files it
# could not link) and hashes nothing.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
d=$(scratch_dir)
p=$d/pool
covered=(var/lib/apt/lists/Packages var/lib/apt/lists/deep/er/InRelease
	var/cache/apt/archives/bash.deb usr/lib/x/cache.pkg)
kept=(var/cache/apt/pkgcache.bin etc/apt/sources.list opt/keep.pkg var/lib/apt/listsX)
for g in g1 g2; do
	for f in "${covered[@]}" "${kept[@]}"; do
		mkdir -p "$(dirname "$p/$g/$f")"
		echo "content of $f" > "$p/$g/$f"
	done
	echo "only in $g" > "$p/$g/var/lib/apt/lists/own"
done
# Other mtimes, down to the nanosecond part.
find "$p/g1" -type f -exec touch -d '2024-01-01 10:00:00.111111111' {} +
find "$p/g2" -type f -exec touch -d '2025-06-01 20:00:00.222222222' {} +
cat > "$d/conf" <<'CONF'
ignore-mtime-path = /var/lib/apt/lists/
ignore-mtime-path = - /var/cache/apt/archives/
ignore-mtime-path = + /opt/keep.pkg
ignore-mtime-path = *.pkg
CONF
"$VUNIFY" config -c "$d/conf" > "$d/eff"
grep -qx 'ignore-mtime-path = - /var/lib/apt/lists/' "$d/eff" || fail "vunify config: $(cat "$d/eff")"
grep -qx 'ignore-mtime-path = + /opt/keep.pkg' "$d/eff" || fail "vunify config: $(cat "$d/eff")"
g1_before=$(manifest "$p/g1")

vrun "$d/run" unify -v --json -c "$d/conf" "$p"
assert_eq 0 "$RC" "unify exit code ($(cat "$d/run.err"))"
for f in "${covered[@]}"; do
	same_inode "$p/g1/$f" "$p/g2/$f" || fail "$f (covered by a rule) was not linked"
	assert_eq "2024-01-01 10:00:00.111111111" "$(TZ=UTC stat -c %y "$p/g2/$f" | cut -c1-29)" \
		"mtime g2/$f took (the object's)"
	grep -qF "vunify: g2/$f: took the object's mtime 2024-01-01 10:00:00.111111111 UTC (was 2025-06-01 20:00:00.222222222)" "$d/run.err" ||
		fail "-v does not name g2/$f: $(grep mtime "$d/run.err")"
done
for f in "${kept[@]}"; do
	same_inode "$p/g1/$f" "$p/g2/$f" && fail "$f (no rule, or a '+' rule) was linked"
	assert_eq "2025-06-01 20:00:00.222222222" "$(TZ=UTC stat -c %y "$p/g2/$f" | cut -c1-29)" \
		"mtime of g2/$f"
	grep -qF "g2/$f: took" "$d/run.err" && fail "-v names g2/$f, which kept its mtime"
done
assert_eq "${#covered[@]}" "$(jq .mtime_changed "$d/run.out")" "mtime_changed"
grep -q "^vunify: ${#covered[@]} linked files took their object's mtime" "$d/run.err" ||
	fail "the summary does not count them: $(cat "$d/run.err")"
assert_same_manifest "$g1_before" "$(manifest "$p/g1")" "g1 (whose files became the objects)"
objects_sound "$p"

# Rerun: nothing hashed, nothing linked, no mtime taken.
vrun "$d/again" unify --json -c "$d/conf" "$p"
assert_eq 0 "$RC" "second unify exit code ($(cat "$d/again.err"))"
assert_eq 0 "$(jq .hashed_files "$d/again.out")" "files hashed by the second run"
assert_eq 0 "$(jq .linked "$d/again.out")" "files linked by the second run"
assert_eq 0 "$(jq .mtime_changed "$d/again.out")" "mtime_changed of the second run"

# Without the rules (the old default identity) the covered files' other
# mtimes keep them apart: a third guest is not linked to the objects.
mkdir -p "$(dirname "$p/g3/${covered[0]}")"
echo "content of ${covered[0]}" > "$p/g3/${covered[0]}"
touch -d '2026-01-01 00:00:00.333333333' "$p/g3/${covered[0]}"
vrun "$d/plain" unify --json -c /dev/null "$p" g3
assert_eq 0 "$RC" "unify without rules ($(cat "$d/plain.err"))"
same_inode "$p/g1/${covered[0]}" "$p/g3/${covered[0]}" && fail "linked without the rule"
assert_eq 0 "$(jq .mtime_changed "$d/plain.out")" "mtime_changed without rules"
exit 0
