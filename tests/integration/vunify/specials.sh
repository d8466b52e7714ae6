#!/bin/bash
# fifo, character and block devices and sockets are left alone (not opened,
# not linked, counted as "special"), and a fifo nobody writes to cannot hang
# the run (it runs under timeout: a hang is a failure, not a stuck suite).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
d=$(scratch_dir)
p=$d/pool

mksock() { # a listening unix socket's name stays after its owner exits
	if command -v python3 >/dev/null; then
		python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$1"
	else
		perl -MSocket -e 'socket(S, PF_UNIX, SOCK_STREAM, 0) or die; bind(S, pack_sockaddr_un($ARGV[0])) or die' "$1"
	fi
}
for g in g1 g2; do
	mkdir -p "$p/$g/dev" "$p/$g/run"
	mkfifo "$p/$g/run/initctl"
	mknod "$p/$g/dev/null" c 1 3
	mknod "$p/$g/dev/loop7" b 7 7
	mksock "$p/$g/run/sock"
	echo data > "$p/$g/run/file"	# a plain file beside them, to show the run works
	touch -d '2024-01-01 00:00:00' "$p/$g/run/file" "$p/$g/dev" "$p/$g/run"
done
[ -S "$p/g1/run/sock" ] || skip "cannot make a unix socket here"
before=$(guests_manifest "$p")
inos=$(find "$p" -path "$p/.hashdb" -prune -o ! -type f ! -type d -printf '%p %i %h\n' | sort)

RC=0
timeout 60 "$VUNIFY" unify --json "$p" >"$d/run.out" 2>"$d/run.err" || RC=$?
[ "$RC" != 124 ] || fail "unify hung (killed by timeout after 60 s)"
assert_eq 0 "$RC" "unify exit code ($(cat "$d/run.err"))"
assert_eq 8 "$(jq .skipped.special "$d/run.out")" "entries counted as special"
assert_eq 1 "$(jq .linked "$d/run.out")" "links (only the plain file)"
same_inode "$p/g1/run/file" "$p/g2/run/file" || fail "the plain file was not unified"
assert_same_manifest "$before" "$(guests_manifest "$p")" "unify"
assert_eq "$inos" "$(find "$p" -path "$p/.hashdb" -prune -o ! -type f ! -type d -printf '%p %i %h\n' | sort)" \
	"special entries' inodes and link counts"
for f in run/initctl dev/null dev/loop7 run/sock; do
	getfattr --absolute-names -n trusted.cowlink "$p/g1/$f" >/dev/null 2>&1 && fail "$f got a marker"
done
assert_eq 0 "$(find "$p/.hashdb/objects" ! -type f ! -type d | wc -l)" "special objects in the pool"

# A fifo that a racing process puts where a regular file was seen must not
# hang the run either: swap the plain file for a fifo in a loop meanwhile.
mkdir -p "$p/g3/run"
(
	for k in $(seq 1000); do
		# Temporary names of its own per k: unify may make one immutable
		# (an object) before the racer's mv, which then fails.
		echo "f$k" > "$p/g3/run/.new$k" && mv -f "$p/g3/run/.new$k" "$p/g3/run/f$k" || true
		mkfifo "$p/g3/run/.fifo$k" && mv -f "$p/g3/run/.fifo$k" "$p/g3/run/f$k" || true
	done
) 2>/dev/null &
racer=$!
at_exit "kill $racer 2>/dev/null"
for i in 1 2 3 4 5; do
	RC=0
	timeout 60 "$VUNIFY" unify "$p" >/dev/null 2>"$d/race.err" || RC=$?
	[ "$RC" != 124 ] || fail "unify hung on a fifo swapped in during the run"
	[ "$RC" = 0 ] || [ "$RC" = 1 ] || fail "unify exit code with a racing fifo: $RC ($(cat "$d/race.err"))"
done
wait $racer || true
for k in $(seq 1000); do	# each name: the racer's fifo, or its file intact
	f=$p/g3/run/f$k
	[ -p "$f" ] || [ "$(cat "$f")" = "f$k" ] ||
		fail "g3/run/f$k is neither the fifo nor its content: $(stat -c %F "$f" 2>&1) \"$(head -c 40 "$f" 2>&1)\""
done
exit 0
