#!/bin/bash
# The identity matrix: a file that differs from another in exactly one thing
# a guest can observe (mode, setuid, uid, gid, mtime, user xattr, file
# capability, ACL) is never linked to it; copies equal in everything are.
# --ignore-mtime links the mtime variant, and only that one.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/helpers.bash"
need_root
command -v setcap >/dev/null || skip "setcap (libcap2-bin) not installed"
command -v setfacl >/dev/null || skip "setfacl (acl) not installed"
d=$(scratch_dir)
VARIANTS=(mode setuid uid gid mtime xattr cap acl)

# POOL/a/base is the reference; POOL/b and POOL/c hold one copy of it per
# variant, each changed in one way (b and c alike, so variants do link to
# each other: what keeps them from the base is only their difference).
make_pool() {
	local p=$1 g v
	mkdir -p "$p/a" "$p/b" "$p/c"
	head -c 20000 /usr/bin/ls > "$p/a/base"
	chmod 644 "$p/a/base"
	chown 0:0 "$p/a/base"
	touch -d '2024-01-01 00:00:00' "$p/a/base"
	for g in b c; do
		for v in equal "${VARIANTS[@]}"; do cp -p "$p/a/base" "$p/$g/$v"; done
		chmod 600 "$p/$g/mode"
		chmod 4644 "$p/$g/setuid"
		chown 1000 "$p/$g/uid"
		chown :1000 "$p/$g/gid"
		touch -d '2020-02-02 02:02:02' "$p/$g/mtime"
		setfattr -n user.note -v hello "$p/$g/xattr"
		setcap cap_net_raw+ep "$p/$g/cap"
		setfacl -m u:1000:r "$p/$g/acl"
		# Restore the mtime the metadata changes may not touch, but be sure.
		for v in equal "${VARIANTS[@]}"; do
			[ "$v" = mtime ] || touch -d '2024-01-01 00:00:00' "$p/$g/$v"
		done
	done
	getfattr -n security.capability "$p/b/cap" >/dev/null 2>&1 || skip "file capabilities not supported here"
	getfattr -n system.posix_acl_access "$p/b/acl" >/dev/null 2>&1 || skip "ACLs not supported here"
}

# Default: every variant stays apart from the base.
p=$d/pool
make_pool "$p"
before=$(guests_manifest "$p")
vrun "$d/run" unify --json "$p"
assert_eq 0 "$RC" "unify exit code ($(cat "$d/run.err"))"
assert_same_manifest "$before" "$(guests_manifest "$p")" "unify"
same_inode "$p/a/base" "$p/b/equal" || fail "all-equal copy b/equal not linked to a/base"
same_inode "$p/a/base" "$p/c/equal" || fail "all-equal copy c/equal not linked to a/base"
is_cowlink "$p/a/base" || fail "a/base is not a CoW link"
for v in "${VARIANTS[@]}"; do
	same_inode "$p/a/base" "$p/b/$v" && fail "the $v variant was linked to the base"
	same_inode "$p/b/$v" "$p/c/$v" || fail "two identical $v variants were not linked to each other"
	is_cowlink "$p/b/$v" || fail "b/$v is not a CoW link"
	for w in "${VARIANTS[@]}"; do
		[ "$v" = "$w" ] || ! same_inode "$p/b/$v" "$p/b/$w" || fail "variants $v and $w share an inode"
	done
done

# --ignore-mtime: the mtime variant joins the base, nothing else does.
q=$d/pool-im
make_pool "$q"
vrun "$d/run-im" unify --ignore-mtime --json "$q"
assert_eq 0 "$RC" "unify --ignore-mtime exit code ($(cat "$d/run-im.err"))"
same_inode "$q/a/base" "$q/b/mtime" || fail "--ignore-mtime did not link the mtime variant"
same_inode "$q/a/base" "$q/b/equal" || fail "--ignore-mtime did not link the equal copy"
for v in "${VARIANTS[@]}"; do
	[ "$v" = mtime ] && continue
	same_inode "$q/a/base" "$q/b/$v" && fail "--ignore-mtime linked the $v variant"
done
# Content and everything but the mtime of the mtime variant are unchanged.
cmp "$q/a/base" "$q/b/mtime" || fail "content changed"
exit 0
