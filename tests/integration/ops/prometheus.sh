#!/bin/bash
# --prometheus FILE and prometheus-dir: files in node_exporter's textfile
# collector format (parsed with the Prometheus client library's parser,
# checked for HELP/TYPE and unique series), written atomically; --json
# output of every command parses.
source "$(dirname "$0")/../lib.sh"
need_root
d=$(scratch_dir)
pool=$d/pool
"$SRCDIR/scripts/make-sample-guests" "$pool" 3 >/dev/null 2>&1
# A guest name that needs escaping in a label value.
mv "$pool/guest3" "$pool/gu\"est\\3"

"$VUNIFY" unify -q --prometheus "$d/unify.prom" --json "$pool" > "$d/unify.json"
"$VUNIFY" gc -q --prometheus "$d/gc.prom" --json "$pool" > "$d/gc.json"
"$VUNIFY" verify -q --prometheus "$d/verify.prom" --json "$pool" > "$d/verify.json"
"$VUNIFY" audit -q --prometheus "$d/audit.prom" --json "$pool" > "$d/audit.json"
"$VUNIFY" split -q --json "$pool" guest1 /usr/bin/cat > "$d/split.json"
for j in unify gc verify audit split; do jq -e . "$d/$j.json" > /dev/null || fail "$j --json does not parse"; done
assert_eq 3 "$(jq '.guests | length' "$d/audit.json")" "audit --json guests"
[ "$(jq .linked "$d/unify.json")" -gt 0 ] || fail "unify --json: nothing linked"
ls "$d" | grep -q '\.tmp$' && fail "temporary metrics files left: $(ls "$d")"

check_prom() { # check_prom FILE: the textfile collector's rules
	/usr/bin/python3 - "$1" <<'PY' || fail "$1 is not a valid textfile: $(cat "$1")"
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
assert text.endswith("\n"), "no final newline"
from prometheus_client.parser import text_string_to_metric_families
seen, typed = set(), set()
for line in text.splitlines():
    if line.startswith("# TYPE "):
        name = line.split()[2]
        assert name not in typed, "family typed twice: " + name
        typed.add(name)
    elif line.startswith("#"):
        continue
    else:
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        assert name in typed, "sample before its TYPE: " + line
fams = list(text_string_to_metric_families(text))
assert fams, "no metrics"
for f in fams:
    assert f.documentation, "no HELP for " + f.name
    for s in f.samples:
        key = (s.name, tuple(sorted(s.labels.items())))
        assert key not in seen, "duplicate series %r" % (key,)
        seen.add(key)
        assert "pool" in s.labels, "no pool label: %r" % (s,)
print(len(seen))
PY
}
command -v /usr/bin/python3 >/dev/null && /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null ||
	skip "python3-prometheus-client is missing (scripts/deps installs it)"
for m in unify gc verify audit; do check_prom "$d/$m.prom" > /dev/null; done
grep -q "^vunify_unify_exit_code{pool=\"$pool\"} 0$" "$d/unify.prom" || fail "unify exit code metric"
grep -q "^vunify_unify_skipped_files{pool=\".*\",reason=\"special\"} $(jq .skipped.special "$d/unify.json")$" "$d/unify.prom" || fail "skipped by reason: $(grep skipped_files "$d/unify.prom")"
grep -q '^vunify_audit_guest_files{pool=".*",guest="gu\\"est\\\\3"} ' "$d/audit.prom" ||
	fail "escaped guest label: $(grep guest_files "$d/audit.prom")"
/usr/bin/python3 - "$d/audit.prom" "$d/audit.json" <<'PY' || fail "audit metrics differ from audit --json"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
j = json.load(open(sys.argv[2]))
m = {}
for f in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in f.samples:
        m[(s.name, s.labels.get("guest"))] = s.value
for g in j["guests"]:
    assert m[("vunify_audit_guest_allocated_bytes", g["name"])] == g["allocated_bytes"], g
assert m[("vunify_audit_pool_allocated_bytes", None)] == j["pool"]["allocated_bytes"]
PY
# verify writes exit code 5 when damaged.
f=$pool/guest2/usr/bin/cat
chattr -i "$f"; printf 'Z' | dd of="$f" bs=1 seek=64 conv=notrunc 2>/dev/null; chattr +i "$f"
"$VUNIFY" verify -q --prometheus "$d/verify.prom" "$pool" 2>/dev/null && fail "verify missed damage"
check_prom "$d/verify.prom" > /dev/null
grep -q '^vunify_verify_exit_code{pool=".*"} 5$' "$d/verify.prom" || fail "verify exit code metric"
grep -q '^vunify_verify_damaged_objects{pool=".*"} 1$' "$d/verify.prom" || fail "damaged objects metric"

# prometheus-dir from the configuration: one file per command and pool.
mkdir -p "$d/textfile"
printf 'prometheus-dir = %s\n' "$d/textfile" > "$d/sys.conf"
"$VUNIFY" gc -q -c "$d/sys.conf" "$pool"
name=vunify_gc_$(echo "${pool#/}" | tr / _).prom
[ -f "$d/textfile/$name" ] || fail "no $name in prometheus-dir: $(ls "$d/textfile")"
check_prom "$d/textfile/$name" > /dev/null
# An unwritable target is an error, the run's own result stands.
set +e; "$VUNIFY" gc -q --prometheus /nonexistent/dir/x.prom "$pool" 2>"$d/e.err"; rc=$?; set -e
assert_eq 0 "$rc" "gc exit code with an unwritable metrics file"
grep -q "/nonexistent/dir/x.prom: cannot write metrics" "$d/e.err" || fail "no error for unwritable metrics"
