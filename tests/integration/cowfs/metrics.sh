#!/bin/bash
# -o metrics=FILE,metrics_interval=SECS: a node_exporter textfile, valid
# (checked below without promtool: HELP and TYPE once per family, every
# sample `name{labels} value` with pool= first), replaced atomically (a
# reader never sees half a file, the inode changes), counting requests and
# errors per operation, copy-ups with their bytes and durations, CoW
# breaks, restored flags and copy-up failures; the last figures written at
# a clean unmount and at SIGTERM.  A failed copy-up and a restored flag are
# logged once each, with the guest path.
source "$(dirname "$0")/common.bash"
cowfs_pool 2
base=$(dirname "$POOL")
mdir=$base/textfile
mkdir -p "$mdir"
prom=$mdir/cowfs.prom
f=usr/bin/cat	# copied up by guest1
g=usr/bin/ls	# flag cleared behind the mount: restored at lookup
h=usr/bin/sed	# copy-up fails for guest2
for x in "$f" "$g" "$h"; do is_cowlink "$POOL/guest1/$x" || fail "$x was not unified"; done
size=$(stat -c %s "$POOL/guest1/$f")

# check_prom FILE: the exposition format as node_exporter's textfile
# collector reads it (no promtool here).
check_prom() {
	awk '
	function bad(why) { printf "%s:%d: %s: %s\n", FILENAME, NR, why, $0; err = 1; exit 1 }
	/^# HELP / { if (help[$3]++) bad("HELP twice"); next }
	/^# TYPE / {
		if (type[$3] != "") bad("TYPE twice")
		if ($4 !~ /^(counter|gauge|histogram|summary|untyped)$/) bad("unknown type")
		type[$3] = $4; next
	}
	/^#/ { next }
	{
		if ($0 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*\{pool="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\} [-+]?([0-9.]+([eE][-+]?[0-9]+)?|Inf|NaN)$/)
			bad("not name{pool=...,...} value")
		name = $0; sub(/\{.*/, "", name)
		fam = name
		if (type[fam] == "") { sub(/_(bucket|sum|count)$/, "", fam); if (type[fam] != "histogram") fam = name }
		if (type[fam] == "") bad("sample before its TYPE")
		if (!help[fam]) bad("sample without HELP")
		series = $0; sub(/ [^ ]*$/, "", series)
		if (seen[series]++) bad("duplicate series")
		n++
	}
	END { if (!err && n == 0) { print FILENAME ": no samples"; exit 1 } }
	' "$1" || fail "$1 is not a valid textfile: $(cat "$1")"
	[ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" = '\n' ] || fail "$1 does not end in a newline"
}
# val NAME [LABELS]: the value of the sample NAME{pool=...,mountpoint=...[,LABELS]}
val() {
	local l=${2:+,$2}
	awk -v want="$1" -v lab="$l" '{ s = $0; sub(/ [^ ]*$/, "", s)
		n = s; sub(/\{.*/, "", n); if (n != want) next
		sub(/^[^{]*\{pool="([^"\\]|\\.)*",mountpoint="([^"\\]|\\.)*"/, "", s)
		if (s == lab "}") { print $NF; found = 1 } }
		END { if (!found) print "none" }' "$prom"
}

# a flag cleared behind the mount (a crash would do that)
chattr -i "$POOL/guest1/$g"
cowfs_mount -o metrics="$prom",metrics_interval=1
[ -f "$prom" ] || fail "no metrics file right after the mount"
check_prom "$prom"
assert_eq 0 "$(val cowfs_copyups_total)" "copy-ups at start"

# A reader, as node_exporter would, all along: every read is a whole file
# (its last family is there and it ends in a newline); it notes the inodes.
(
	while [ ! -e "$base/stop" ]; do
		c=$(cat "$prom"; echo .)
		case "$c" in *'cowfs_io_uring_active{'*' '[01]$'\n.') ;;
		*) printf '%s\n---\n' "$c" >>"$base/partial" ;; esac
		stat -c %i "$prom" >>"$base/inodes"
		sleep 0.05
	done
) &
reader=$!
at_exit "touch '$base/stop'"	# before cowfs_cleanup's wait (cleanups run backwards)

ls -lR "$MNT/guest1" >/dev/null
cat "$MNT/guest2/$f" >/dev/null
echo appended >>"$MNT/guest1/$f" || fail "append to a CoW link"
[ "$(ino "$MNT/guest1/$f")" != "$(ino "$MNT/guest2/$f")" ] || fail "no copy-up"
stat "$MNT/guest1/$g" >/dev/null
rmdir "$MNT/guest1/usr" 2>/dev/null && fail "rmdir of a full directory worked"
# a copy-up that fails: the staging directory refuses new files
chattr +i "$POOL/.hashdb/tmp"
out=$( { echo x >>"$MNT/guest2/$h"; } 2>&1 ) && fail "append worked with staging immutable"
case "$out" in *"Operation not permitted"*) ;; *) fail "failed copy-up: got '$out'" ;; esac
chattr -i "$POOL/.hashdb/tmp"
same_inode "$MNT/guest1/$h" "$MNT/guest2/$h" || fail "the failed copy-up split the inode"
sleep 2.5

check_prom "$prom"
assert_eq 1 "$(val cowfs_copyups_total)" "cowfs_copyups_total"
assert_eq "$size" "$(val cowfs_copyup_bytes_total)" "cowfs_copyup_bytes_total (the file's size)"
assert_eq 1 "$(val cowfs_copyup_duration_seconds_count)" "copy-up histogram count"
assert_eq 1 "$(val cowfs_copyup_duration_seconds_bucket 'le="+Inf"')" "copy-up histogram +Inf"
assert_eq 1 "$(val cowfs_copyup_failures_total)" "cowfs_copyup_failures_total"
assert_eq 1 "$(val cowfs_flags_restored_total)" "cowfs_flags_restored_total"
open=$(val cowfs_requests_total 'op="open"')
[ "$open" != none ] && [ "$open" -gt 0 ] || fail "requests for op=open: $open"
[ "$(val cowfs_requests_total 'op="lookup"')" -gt 0 ] || fail "no lookups counted"
[ "$(val cowfs_request_errors_total 'op="rmdir"')" -ge 1 ] || fail "the rmdir error was not counted"
assert_eq 0 "$(val cowfs_request_errors_total 'op="statfs"')" "statfs errors"
# the writes' ESTALE refusals are breaks, not errors
[ "$(val cowfs_cow_breaks_total)" -ge 2 ] || fail "breaks: $(val cowfs_cow_breaks_total)"
assert_eq 0 "$(val cowfs_request_errors_total 'op="open"')" "open errors (breaks are not errors)"
[ "$(val cowfs_inodes)" -gt 10 ] || fail "inodes held: $(val cowfs_inodes)"
[ "$(val cowfs_cached_fds)" -gt 0 ] || fail "cached fds: $(val cowfs_cached_fds)"
assert_eq 4096 "$(val cowfs_fd_cache_size)" "fd cache size"
assert_eq 0 "$(val cowfs_pending_breaks)" "pending breaks"
# passthrough: on unless turned off (the cowfs-cached pass) or the kernel
# said no (cowfs logs that)
pt=1
case " ${COWFS_TEST_OPTS:-} " in *passthrough=off*) pt=0 ;; esac
grep -q "passthrough: reads and writes go through the daemon\|offers no FUSE passthrough" "$COWFS_LOG" && pt=0
assert_eq "$pt" "$(val cowfs_passthrough_active)" "passthrough gauge"
assert_eq 0 "$(val cowfs_io_uring_active)" "io_uring gauge"
grep -q "^cowfs_info{pool=\"$POOL\",mountpoint=\"$MNT\",version=\"[^\"]*\",libfuse=\"3\.[0-9.]*\"} 1$" "$prom" ||
	fail "cowfs_info: $(grep '^cowfs_info' "$prom")"

# the Prometheus client library's parser too, where it is installed
if /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null; then
	/usr/bin/python3 - "$prom" <<'PY' || fail "prometheus_client does not parse $prom"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
assert fams["cowfs_copyup_duration_seconds"].type == "histogram"
assert all(s.labels["pool"] for f in fams.values() for s in f.samples)
PY
fi

# logged once each, with the guest path
assert_eq 1 "$(grep -c "copy-up" "$COWFS_LOG")" "copy-up failure lines in the log"
grep -q "^cowfs: guest2/$h: copy-up of pool inode [0-9]* failed: Operation not permitted" "$COWFS_LOG" ||
	{ cat "$COWFS_LOG" >&2; fail "the failed copy-up was not logged with the guest path"; }
assert_eq 1 "$(grep -c "restored the immutable flag" "$COWFS_LOG")" "restored-flag lines in the log"
grep -q "^cowfs: guest1/$g: restored the immutable flag" "$COWFS_LOG" ||
	{ cat "$COWFS_LOG" >&2; fail "the restored flag was not logged with the guest path"; }

touch "$base/stop"
wait "$reader"
[ ! -s "$base/partial" ] || fail "a reader saw a partial file: $(head -c 2000 "$base/partial")"
reads=$(wc -l <"$base/inodes")
[ "$reads" -gt 10 ] || fail "the reader ran only $reads times"
[ "$(sort -u "$base/inodes" | wc -l)" -ge 3 ] || fail "the file was not replaced (inodes: $(sort -u "$base/inodes" | tr '\n' ' '))"

cowfs_umount
check_prom "$prom"
ls "$mdir" | grep -v '^cowfs\.prom$' && fail "temporary files left in $mdir"
assert_eq 1 "$(val cowfs_copyup_failures_total)" "failures in the final file"

# The last figures at exit, whatever the interval: at a clean unmount ...
cowfs_mount -o metrics="$prom",metrics_interval=3600
assert_eq 0 "$(val cowfs_copyups_total)" "copy-ups of a new mount"
echo again >>"$MNT/guest2/$f" || fail "append (second mount)"
cowfs_umount
assert_eq 1 "$(val cowfs_copyups_total)" "copy-ups written at unmount"
# ... and at SIGTERM
cowfs_mount -o metrics="$prom",metrics_interval=3600
ls "$MNT/guest1" >/dev/null
kill -TERM "$COWFS_PID"
wait "$COWFS_PID" || fail "cowfs exited $? on SIGTERM"
COWFS_PID=
[ "$(val cowfs_requests_total 'op="readdirplus"')" -ge 1 ] || fail "readdirplus not written at SIGTERM: $(cat "$prom")"

# a metrics file that cannot be written is refused at the start
expect_fail "an absolute path is needed" "$COWFS" -f -o metrics=rel.prom "$POOL" "$MNT"
expect_fail "cannot write metrics" "$COWFS" -f -o metrics=/nonexistent/dir/x.prom "$POOL" "$MNT"
! mountpoint -q "$MNT" || fail "mounted although the metrics file cannot be written"
