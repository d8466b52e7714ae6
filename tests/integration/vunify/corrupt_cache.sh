#!/bin/bash
# A damaged stat cache (truncated, a flipped byte anywhere, bad magic,
# empty, trailing garbage) is reported on stderr, never trusted, and
# rebuilt: the run's results are still right (new files link to the right
# objects, nothing changes that should not) and the run after it hashes
# nothing and reports no damage.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
d=$(scratch_dir)
p=$d/pool
for g in g1 g2; do
	mkdir -p "$p/$g/etc" "$p/$g/bin"
	for i in $(seq 12); do echo "file $i" > "$p/$g/bin/f$i"; done
	echo "$g" > "$p/$g/etc/hostname"
	find "$p/$g" -exec touch -d '2024-01-01 00:00:00' {} +
done
vrun "$d/init" unify --json "$p"
assert_eq 0 "$RC" "first unify ($(cat "$d/init.err"))"
ls "$p"/.hashdb/cache/*.sc >/dev/null || fail "no stat cache files after a run"

flip() { # flip FILE OFFSET: invert one byte in place
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\x$(printf %02x $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
corrupt() { # corrupt HOW FILE
	local size
	size=$(stat -c %s "$2")
	case $1 in
	truncate-entry) truncate -s $((size - 1)) "$2" ;;
	truncate-header) truncate -s 16 "$2" ;;
	empty) : > "$2" ;;
	flip-entry) flip "$2" $((32 + 3 * 64 + 56)) ;;	# a byte inside entry 3
	flip-last) flip "$2" $((size - 1)) ;;
	flip-checksum) flip "$2" 24 ;;
	flip-count) flip "$2" 16 ;;
	bad-magic) flip "$2" 0 ;;
	bad-version) flip "$2" 8 ;;
	garbage) printf 'x' >> "$2" ;;
	esac
}

round=0
for how in truncate-entry truncate-header empty flip-entry flip-last flip-checksum flip-count \
	bad-magic bad-version garbage; do
	round=$((round + 1))
	for sc in "$p"/.hashdb/cache/*.sc; do corrupt "$how" "$sc"; done
	# Something new to do: g2 gets a copy of one of g1's files.
	cp -a "$p/g1/bin/f$round" "$p/g2/bin/new$round"
	chattr -i "$p/g2/bin/new$round"
	setfattr -x trusted.cowlink "$p/g2/bin/new$round"
	before=$(guests_fast_manifest "$p")
	vrun "$d/$how" unify --json "$p"
	assert_eq 0 "$RC" "$how: exit code ($(cat "$d/$how.err"))"
	for g in g1 g2; do
		grep -qx "vunify: $g: stat cache is damaged; ignored and rebuilt" "$d/$how.err" ||
			fail "$how: damage of $g's cache not reported: $(cat "$d/$how.err")"
	done
	assert_same_manifest "$before" "$(guests_fast_manifest "$p")" "$how"
	assert_eq 1 "$(jq .linked "$d/$how.out")" "$how: links made"
	assert_eq 0 "$(jq .new_objects "$d/$how.out")" "$how: new objects"
	same_inode "$p/g1/bin/f$round" "$p/g2/bin/new$round" || fail "$how: new file not linked to its object"
	same_inode "$p/g1/bin/f$round" "$p/g2/bin/f$round" || fail "$how: old link lost"
	# Rebuilt: the next run trusts it, hashes nothing and reports no damage.
	vrun "$d/$how-after" unify --json "$p"
	assert_eq 0 "$RC" "$how: run after the rebuild"
	grep -q damaged "$d/$how-after.err" && fail "$how: the rebuilt cache is reported damaged"
	assert_eq 0 "$(jq .hashed_bytes "$d/$how-after.out")" "$how: bytes hashed after the rebuild"
done
objects_sound "$p"
no_leftovers "$p"
exit 0
