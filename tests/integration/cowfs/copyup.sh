#!/bin/bash
# Every change to a CoW link through the mount gives the writing guest a
# private copy at exactly the path it used, then applies the change to the
# copy; the other guest still sees the old content and metadata, and the
# shared inode stays a CoW link.  Copies keep every piece of metadata the
# change did not touch (owner, mode, times, xattrs, ACLs, capabilities).
source "$(dirname "$0")/common.bash"
cowfs_pool 3
cowfs_mount
A=$MNT/guest1
B=$MNT/guest2

# check_break FILE WHAT: after WHAT changed guest1's FILE, guest1 has a
# private copy (a new inode, not a CoW link on disk), guest2 and guest3
# still share the untouched CoW link.
check_break() {
	local f=$1 what=$2
	[ "$(ino "$A/$f")" != "$(ino "$B/$f")" ] || fail "$what: guest1 still shares the inode"
	is_cowlink "$POOL/guest1/$f" && fail "$what: guest1's copy is still a CoW link"
	is_cowlink "$POOL/guest2/$f" || fail "$what: guest2 lost its CoW link"
	same_inode "$B/$f" "$MNT/guest3/$f" || fail "$what: guest2 and guest3 no longer share"
	assert_eq "${before[$f]}" "$(obs "$B/$f")" "$what: guest2's view"
	assert_eq 1 "$(stat -c %h "$A/$f")" "$what: nlink of the copy"
	[ "$(ls "$POOL/guest1/$(dirname "$f")" | grep -c '^\.cowlink~')" = 0 ] ||
		fail "$what: temporary file left behind"
}

declare -A before
files=(usr/bin/cat usr/bin/cp usr/bin/env usr/bin/grep usr/bin/ls usr/bin/mkdir usr/bin/touch
       usr/bin/chmod usr/bin/stat usr/bin/id usr/bin/sort usr/share-meta/acl usr/share-meta/cap usr/share-meta/mode
       )
for f in "${files[@]}"; do
	is_cowlink "$POOL/guest1/$f" || fail "sample $f is not a CoW link"
	same_inode "$A/$f" "$B/$f" || fail "$f not shared before the test"
	before[$f]=$(obs "$B/$f")
done

# open for write (append)
echo appended >>"$A/usr/bin/cat"
check_break usr/bin/cat "append"
assert_eq appended "$(tail -c 9 "$A/usr/bin/cat")" "appended data"
cmp -s <(head -c "$(stat -c %s "$B/usr/bin/cat")" "$A/usr/bin/cat") "$B/usr/bin/cat" ||
	fail "append: old data not kept in the copy"
assert_eq "$(stat -c %a.%u.%g "$B/usr/bin/cat")" "$(stat -c %a.%u.%g "$A/usr/bin/cat")" "append: copy's mode/owner"

# open O_WRONLY without truncation, overwrite in place
printf 'XY' | dd of="$A/usr/bin/cp" bs=1 seek=10 conv=notrunc status=none
check_break usr/bin/cp "pwrite"
assert_eq XY "$(dd if="$A/usr/bin/cp" bs=1 skip=10 count=2 status=none)" "pwrite data"

# O_TRUNC
: >"$A/usr/bin/env"
check_break usr/bin/env "O_TRUNC"
assert_eq 0 "$(stat -c %s "$A/usr/bin/env")" "O_TRUNC size"

# truncate(2)
truncate -s 100 "$A/usr/bin/grep"
check_break usr/bin/grep "truncate"
assert_eq 100 "$(stat -c %s "$A/usr/bin/grep")" "truncate size"

# chmod: the copy keeps content, owner, mtime
chmod 700 "$A/usr/bin/ls"
check_break usr/bin/ls "chmod"
assert_eq 700 "$(stat -c %a "$A/usr/bin/ls")" "chmod mode"
cmp "$A/usr/bin/ls" "$B/usr/bin/ls" || fail "chmod: content differs"
assert_eq "$(stat -c %Y "$B/usr/bin/ls")" "$(stat -c %Y "$A/usr/bin/ls")" "chmod: mtime kept"

# chown
chown 1000:1000 "$A/usr/bin/mkdir"
check_break usr/bin/mkdir "chown"
assert_eq 1000:1000 "$(stat -c %u:%g "$A/usr/bin/mkdir")" "chown owner"

# utimes (the shared inode's atime right before: reads elsewhere may move it)
atime=$(stat -c %X "$A/usr/bin/touch")
touch -m -d '2001-02-03 04:05:06' "$A/usr/bin/touch"
check_break usr/bin/touch "utimes"
assert_eq "$(date -d '2001-02-03 04:05:06' +%s)" "$(stat -c %Y "$A/usr/bin/touch")" "utimes mtime"
assert_eq "$atime" "$(stat -c %X "$A/usr/bin/touch")" "utimes: atime kept (UTIME_OMIT)"

# setxattr / removexattr
setfattr -n user.test -v 42 "$A/usr/bin/chmod"
check_break usr/bin/chmod "setxattr"
assert_eq 42 "$(getfattr --only-values -n user.test "$A/usr/bin/chmod")" "setxattr value"

getfattr -n user.sample "$A/usr/share-meta/acl" >/dev/null 2>&1 && fail "unexpected xattr"
# ACL change
setfacl -m u:1234:rwx "$A/usr/bin/stat"
check_break usr/bin/stat "setfacl"
getfacl -pn "$A/usr/bin/stat" | grep -q '^user:1234:rwx' || fail "setfacl: ACL not on the copy"
getfacl -pn "$B/usr/bin/stat" | grep -q '^user:1234' && fail "setfacl: ACL leaked to guest2"

# the copy of a file with an ACL keeps the ACL; with a capability keeps it
echo >>"$A/usr/share-meta/acl"
check_break usr/share-meta/acl "append to ACL file"
assert_eq "$(getfacl -pn "$B/usr/share-meta/acl" | grep -v '^#')" \
	"$(getfacl -pn "$A/usr/share-meta/acl" | grep -v '^#')" "ACL kept by copy-up"
# (a write clears capabilities natively too, so change an xattr instead)
capof() { # capof PATH: its security.capability, hex, or nothing
	local x
	x=$(getfattr -h -d -m '^security\.capability$' -e hex -- "$1") || fail "getfattr failed on $1"
	printf '%s\n' "$x" | grep '^security\.capability=' || true
}
cap=$(capof "$B/usr/share-meta/cap")
[ -n "$cap" ] || fail "the sample usr/share-meta/cap has no file capability"
setfattr -n user.t -v 1 "$A/usr/share-meta/cap"
check_break usr/share-meta/cap "setxattr on a file with a capability"
assert_eq "$cap" "$(capof "$A/usr/share-meta/cap")" "file capability of the copy (through the mount)"
assert_eq "$cap" "$(capof "$POOL/guest1/usr/share-meta/cap")" "file capability of the copy (on disk)"
# setuid bit kept
setfattr -n user.t -v 1 "$A/usr/share-meta/mode"
check_break usr/share-meta/mode "setxattr on a setuid file"
assert_eq 4755 "$(stat -c %a "$A/usr/share-meta/mode")" "setuid bit kept by copy-up"

# removexattr of an existing xattr on a CoW link (file with a user xattr)
f=usr/share-meta/xattr
if is_cowlink "$POOL/guest1/$f"; then
	before[$f]=$(obs "$B/$f")
	setfattr -x user.sample "$A/$f"
	check_break "$f" "removexattr"
	getfattr -n user.sample "$A/$f" >/dev/null 2>&1 && fail "removexattr: still there"
fi

# O_CREAT without O_EXCL on an existing CoW link whose dentry the kernel does
# not have cached (FUSE_CREATE path): drop the dentry cache first.
sync; echo 2 >/proc/sys/vm/drop_caches
perl -e 'use Fcntl; sysopen(my $fh, $ARGV[0], O_WRONLY|O_CREAT|O_APPEND, 0644) or die "$!"; print $fh "c\n"; close $fh or die' "$A/usr/bin/id"
check_break usr/bin/id "O_CREAT open"
assert_eq c "$(tail -c 2 "$A/usr/bin/id")" "O_CREAT data"

# the second change to the same path works on the copy without copying again
i=$(ino "$A/usr/bin/cat")
echo again >>"$A/usr/bin/cat"
assert_eq "$i" "$(ino "$A/usr/bin/cat")" "second write made another copy"

# read-only opens never copy
cat "$A/usr/bin/sort" >/dev/null
same_inode "$A/usr/bin/sort" "$B/usr/bin/sort" || fail "a read copied up"

# a guest's other path to the same CoW link is untouched by the copy-up
# (two CoW-linked paths in one guest are one inode, like under VServer)
cowfs_umount
