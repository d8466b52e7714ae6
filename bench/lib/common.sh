# bench/lib/common.sh: shared helpers for the bench/ suites (sourced, not run).
# Paths: BENCH_CACHE holds the debootstrap'd guests between runs (outside the
# repo); BENCH_WORK holds scratch pools (must be ext4, never tmpfs).

BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
REPO_DIR=${REPO_DIR:-$(cd "$BENCH_DIR/.." && pwd)}
BENCH_CACHE=${COWFS_BENCH_CACHE:-/var/cache/cowfs-bench}
BENCH_WORK=${COWFS_BENCH_WORK:-$BENCH_CACHE/work}
BENCH_RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}
BENCH_RUNS=${BENCH_RUNS:-3}
VUNIFY=${VUNIFY:-$REPO_DIR/build/vunify/vunify}
COWFS=${COWFS:-$REPO_DIR/build/cowfs/cowfs}
GUESTS_DIR=$BENCH_CACHE/guests

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# The Debian mirror apt already uses on this machine (first "main" source
# that serves the suite's archive, not -security), unless COWFS_BENCH_MIRROR
# says otherwise.  Nothing here names a host.
debian_mirror() {
	if [ -n "${COWFS_BENCH_MIRROR:-}" ]; then
		echo "$COWFS_BENCH_MIRROR"
		return
	fi
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' "$f" |
			grep -v -- '-security' | grep '/debian/*$' | head -n1)
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f" |
			grep -v -- '-security' | grep '/debian/*$' | head -n1)
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	die "no Debian mirror in /etc/apt/sources.list*; set COWFS_BENCH_MIRROR"
}

# rm -rf that also works on CoW links (immutable inodes survive plain rm).
rm_tree() {
	local d
	for d in "$@"; do
		[ -e "$d" ] || continue
		# never recurse into a proc or FUSE mount left behind by a crash
		findmnt -rn -o TARGET | awk -v d="$(realpath "$d")/" 'index($0 "/", d) == 1' |
			sort -r | while read -r m; do umount -l "$m" || true; done
		chattr -R -i "$d" 2>/dev/null || true
		rm -rf "$d"
	done
}

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# kilobytes allocated / apparent under a tree, hard links counted once.
du_kib() { du -s --block-size=1K "$@" | awk '{s += $1} END {print s}'; }
du_apparent_kib() { du -s --apparent-size --block-size=1K "$@" | awk '{s += $1} END {print s}'; }

# timed CMD...: run CMD under /usr/bin/time -v, print one JSON object
# {"wall":s,"user":s,"sys":s,"rss_kib":n,"rc":n}; the command's own output
# goes to $TIMED_OUT (default /dev/null).
timed() {
	local tf rc
	tf=$(mktemp)
	/usr/bin/time -v -o "$tf" "$@" > "${TIMED_OUT:-/dev/null}" 2>&1 && rc=0 || rc=$?
	python3 - "$tf" "$rc" <<'PY'
import sys, json, re
t = open(sys.argv[1]).read()
def g(pat, conv=float):
    m = re.search(pat, t)
    return conv(m.group(1)) if m else None
wall = g(r'Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)', str)
parts = [float(x) for x in wall.split(':')]
secs = 0.0
for p in parts:
    secs = secs * 60 + p
print(json.dumps({"wall": secs, "user": g(r'User time \(seconds\): (\S+)'),
                  "sys": g(r'System time \(seconds\): (\S+)'),
                  "rss_kib": g(r'Maximum resident set size \(kbytes\): (\d+)', int),
                  "rc": int(sys.argv[2])}))
PY
	rm -f "$tf"
}

# Guest names of the corpus, in the order the suites add them to a pool.
CORPUS_GUESTS=(bookworm-min1 bookworm-min2 bookworm-full bullseye-min)
CORPUS_FIFTH=bookworm-extra

# fresh_pool DIR GUEST...: a new pool at DIR holding fresh `cp -a` copies.
fresh_pool() {
	local dir=$1 g
	shift
	rm_tree "$dir"
	mkdir -p "$dir"
	for g in "$@"; do
		cp -a "$GUESTS_DIR/$g" "$dir/$g"
	done
}
