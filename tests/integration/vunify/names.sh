#!/bin/bash
# Names with any byte: newlines, invalid UTF-8, escapes, backslashes, quotes,
# leading dashes.  Such files are unified like any other; every message
# stays one line starting with "vunify: " (a name cannot forge a line), and
# --json output (unify and audit, with such a guest name too) is valid JSON
# on one line.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
d=$(scratch_dir)
p=$d/pool
NAMES=($'line\nvunify: forged' $'bad\xff\xfeutf8' $'esc\e[31mred' 'back\slash' '"quoted"' '-n' \
	$'tab\tname' 'sp ace' $'\xc3\xa9t\xc3\xa9' $'over\xc0\xaflong' $'cr\rname')
GUESTS=(g1 $'g\nnew' $'g\xff')
D=$'dir\nx'
for g in "${GUESTS[@]}"; do
	mkdir -p "$p/$g/$D"
	for n in "${NAMES[@]}"; do
		printf 'content of a file\n' > "$p/$g/$n"
		printf 'deep\n' > "$p/$g/$D/$n"
		# Things -v reports per path: a guest hard link, a fifo.
		printf 'linked\n' > "$p/$g/$D/h1-$n"
		ln "$p/$g/$D/h1-$n" "$p/$g/$D/h2-$n"
		mkfifo "$p/$g/$D/fifo-$n"
	done
	printf 'x\n' > "$p/$g/"$'only\n'
done
find "$p" -exec touch -h -d '2024-01-01 00:00:00' {} +
before=$(guests_manifest "$p")
nn=${#NAMES[@]}

vrun "$d/run" unify -v --json "$p"
assert_eq 0 "$RC" "unify exit code ($(cat "$d/run.err"))"
jq -e . "$d/run.out" >/dev/null || fail "--json output is not valid JSON: $(cat "$d/run.out")"
assert_eq 1 "$(wc -l < "$d/run.out")" "lines of --json output"
bad=$(grep -av '^vunify: ' "$d/run.err" || true)
[ -z "$bad" ] || fail "stderr lines not starting with 'vunify: ': $bad"
# -v explains every hard-linked (two names) and fifo path: 3 per name per
# guest.  A name that broke a line would show up as more lines.
assert_eq $((3 * nn * ${#GUESTS[@]})) "$(grep -ac 'skipped: ' "$d/run.err")" \
	"per-path messages ($(grep -a 'skipped: ' "$d/run.err" | grep -av 'hard-linked\|not a regular' | head -3))"
grep -aqF 'vunify: g\nnew/dir\nx/fifo-line\nvunify: forged: skipped: not a regular file' "$d/run.err" ||
	fail "escaped message not found: $(head -5 "$d/run.err")"
grep -aqF 'vunify: g\xff/dir\nx/fifo-bad\xff\xfeutf8: skipped' "$d/run.err" || fail "invalid UTF-8 not escaped as \\xNN"
assert_same_manifest "$before" "$(guests_manifest "$p")" "unify"

# Each name's file is one inode in all three guests, and a CoW link.
for n in "${NAMES[@]}" "${NAMES[@]/#/$D/}"; do
	for g in "${GUESTS[@]}"; do
		same_inode "$p/g1/$n" "$p/$g/$n" || fail "$(printf %q "$g/$n") not unified"
		is_cowlink "$p/$g/$n" || fail "$(printf %q "$g/$n") is not a CoW link"
	done
done
same_inode "$p/g1/"$'only\n' "$p/"$'g\xff/only\n' || fail "name ending in a newline not unified"

# A collision message for such a name is one line too.
hex=$(getfattr --absolute-names --only-values -n trusted.cowlink "$p/g1/"$'only\n')
obj=$p/.hashdb/objects/${hex:0:2}/$hex
mkdir -p "$p/g4"
printf 'x\n' > "$p/g4/"$'clash\nvunify: ok'
touch -d '2024-01-01 00:00:00' "$p/g4/"$'clash\nvunify: ok'
chattr -i "$obj"; printf 'y\n' > "$obj"; touch -d '2024-01-01 00:00:00' "$obj"; chattr +i "$obj"
vrun "$d/clash" unify --json "$p" g4
assert_eq 1 "$RC" "unify exit code on a clash"
assert_eq 1 "$(grep -ac "^vunify: g4/.*: identity clash" "$d/clash.err")" "clash messages"
grep -aqF 'vunify: g4/clash\nvunify: ok: identity clash' "$d/clash.err" || fail "clash message: $(cat "$d/clash.err")"
bad=$(grep -av '^vunify: ' "$d/clash.err" || true)
[ -z "$bad" ] || fail "stderr lines not starting with 'vunify: ': $bad"

# audit --json with these guest names is valid JSON and names them right.
vrun "$d/audit" audit --json "$p"
assert_eq 0 "$RC" "audit exit code ($(cat "$d/audit.err"))"
jq -e . "$d/audit.out" >/dev/null || fail "audit --json is not valid JSON: $(cat "$d/audit.out")"
assert_eq 1 "$(wc -l < "$d/audit.out")" "lines of audit --json output"
assert_eq '["g\nnew","g1","g4","g\\xff"]' "$(jq -c '[.guests[].name] | sort' "$d/audit.out")" \
	"guest names in audit --json"
exit 0
