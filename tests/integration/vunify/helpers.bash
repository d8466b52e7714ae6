# Helpers shared by the vunify integration tests (sourced after lib.sh; the
# .bash suffix keeps meson from running this file as a test).

# vrun PREFIX ARGS...: run vunify ARGS, stdout to PREFIX.out, stderr to
# PREFIX.err, exit code in $RC (never trips set -e).
vrun() {
	local p=$1
	shift
	RC=0
	"$VUNIFY" "$@" >"$p.out" 2>"$p.err" || RC=$?
}

# guests_manifest POOL: the manifest of every guest (the pool's own state
# in .hashdb is not a guest and changes by design).
guests_manifest() {
	local g
	for g in "$1"/*/; do
		g=${g%/}
		echo "== ${g##*/}"
		manifest "$g"
	done
}

# assert_same_manifest WANT GOT WHAT: fail with the first differences.
assert_same_manifest() {
	[ "$1" = "$2" ] || fail "$3: manifest changed:
$(diff <(echo "$1") <(echo "$2") | head -20)"
}

ino() { stat -c %d:%i -- "$1"; }
nlink() { stat -c %h -- "$1"; }
is_immutable() { lsattr -d -- "$1" 2>/dev/null | cut -c5 | grep -q i; }

# no_leftovers POOL: no temporary name of an interrupted CoW operation
# remains anywhere in the pool.
no_leftovers() {
	local left
	left=$(find "$1" -name '.cowlink~*~tmp' | head -5)
	[ -z "$left" ] || fail "temporary leftovers remain: $left"
}

# objects_sound POOL: every pool object is immutable and carries the marker
# naming it (HASH or HASH.N -> HASH).  Batched: a few processes in all.
objects_sound() {
	local objs=$1/.hashdb/objects bad n marked
	n=$(find "$objs" -type f | wc -l)
	[ "$n" -gt 0 ] || return 0
	bad=$(find "$objs" -type f -exec lsattr {} + | awk 'substr($1, 5, 1) != "i" {print $2}' | head -3)
	[ -z "$bad" ] || fail "objects not immutable: $bad"
	marked=$(getfattr -R --absolute-names -n trusted.cowlink -e text "$objs" 2>/dev/null | awk '
		/^# file: / { n = split($3, parts, "/"); name = parts[n]; sub(/\..*/, "", name); next }
		/^trusted.cowlink=/ { v = $0; sub(/^trusted.cowlink="/, "", v); sub(/"$/, "", v)
			if (v == name) good++; else print "wrong marker on " name > "/dev/stderr" }
		END { print good + 0 }') || true
	assert_eq "$n" "$marked" "objects with the marker that names them"
}

# fast_manifest DIR: the same facts as lib.sh's manifest (type, mode, owner,
# size, mtime, symlink target, content hash, xattrs but the marker) from a
# handful of processes instead of several per path; for tests that compare
# many times.  Names are printed as find/getfattr escape them.  As with
# manifest, a failing getfattr fails the test, and the xattrs shown must be
# as many as llistxattr(2) finds.
fast_manifest() {
	local want x n
	want=$(xattr_count "$1")
	x=$(cd "$1" && getfattr -R -h -d -m - -e hex .) || fail "fast_manifest: getfattr failed under $1"
	n=$(printf '%s\n' "$x" | grep -Evc '^(#|$|trusted\.cowlink=)' || true)
	[ "$n" = "$want" ] || fail "fast_manifest of $1 shows $n xattrs, llistxattr finds $want"
	(
		cd "$1" || exit 1
		find . -printf '%p\t%y|%m|%U|%G|%s|%T@|%l\n' | LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
		printf '%s\n' "$x" | awk '
			/^# file: / { if (a != "") print f "\t" a; f = substr($0, 9); a = ""; next }
			/^trusted\.cowlink=/ || /^$/ { next }
			{ a = a " " $0 }
			END { if (a != "") print f "\t" a }' | LC_ALL=C sort
	) || fail "fast_manifest of $1 failed"
}

# guests_fast_manifest POOL: fast_manifest of every guest.
guests_fast_manifest() {
	local g
	for g in "$1"/*/; do
		g=${g%/}
		echo "== ${g##*/}"
		fast_manifest "$g"
	done
}

# traced CMD...: run CMD (strace ... vunify ...) with LeakSanitizer off:
# it cannot work under ptrace and would abort an ASan build's vunify at exit.
traced() {
	ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0" "$@"
}
