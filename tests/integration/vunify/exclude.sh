#!/bin/bash
# --exclude-from: excluded paths are left alone (not linked, not marked),
# excluded directories are not entered, "+ PATTERN" re-includes, anchored
# and unanchored patterns and trailing-slash directory rules work; a bad
# rules file is a usage error (exit 2) that changes nothing.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
d=$(scratch_dir)
p=$d/pool
for g in g1 g2; do
	mkdir -p "$p/$g"/{etc,var/log,var/spool/keep,usr/bin,home/u/secret}
	for f in etc/shadow etc/hostname etc/passwd etc/secret var/log/syslog var/log/app.log var/spool/a \
		var/spool/keep/b usr/bin/tool usr/bin/tool.log home/u/secret/key home/u/.bashrc; do
		echo "content of $f" > "$p/$g/$f"
	done
	find "$p/$g" -exec touch -d '2024-01-01 00:00:00' {} +
done
cat > "$d/rules" <<'RULES'
# comments and blank lines are fine

/etc/shadow
- *.log
+ /var/spool/keep
+ /var/spool/keep/*
/var/spool/*
secret/
RULES
before=$(guests_manifest "$p")
vrun "$d/run" unify --json --exclude-from "$d/rules" "$p"
assert_eq 0 "$RC" "unify exit code ($(cat "$d/run.err"))"
assert_same_manifest "$before" "$(guests_manifest "$p")" "unify"
for f in etc/shadow var/log/app.log usr/bin/tool.log var/spool/a home/u/secret/key; do
	same_inode "$p/g1/$f" "$p/g2/$f" && fail "excluded $f was linked"
	is_immutable "$p/g1/$f" && fail "excluded $f was made immutable"
	getfattr --absolute-names -n trusted.cowlink "$p/g1/$f" >/dev/null 2>&1 && fail "excluded $f was marked"
done
for f in etc/hostname etc/passwd etc/secret var/log/syslog var/spool/keep/b usr/bin/tool home/u/.bashrc; do
	same_inode "$p/g1/$f" "$p/g2/$f" || fail "$f (not excluded) was not linked"
done
# Per guest: shadow, 2 logs, spool/a (files) and secret/ (a directory, not
# entered, so its key is not even seen; the file etc/secret is no directory).
assert_eq 10 "$(jq .skipped.excluded "$d/run.out")" "excluded entries"

# A bad rules file: usage error, nothing done.
printf '+ \n' > "$d/bad"
vrun "$d/bad" unify --exclude-from "$d/bad" "$p"
assert_eq 2 "$RC" "exit code with a bad rules file"
grep -q "bad:1:" "$d/bad.err" || fail "the bad line is not named: $(cat "$d/bad.err")"
vrun "$d/missing" unify --exclude-from "$d/no-such-file" "$p"
assert_eq 2 "$RC" "exit code with a missing rules file"
exit 0
