#!/bin/bash
# A chroot into a sample guest on the mount runs real programs (the dynamic
# loader maps the shared libraries through cowfs), and what they change is
# private to that guest.
source "$(dirname "$0")/common.bash"
cowfs_pool 2
cowfs_mount
G=$MNT/guest1
is_cowlink "$POOL/guest1/etc/passwd" || fail "sample /etc/passwd is not a CoW link"
before=$(obs "$MNT/guest2/etc/passwd")

out=$(chroot "$G" /bin/sh -c 'echo hello from $(cat /etc/hostname)') || fail "chroot /bin/sh failed"
assert_eq "hello from guest1" "$out" "/bin/sh -c in the chroot"
chroot "$G" /bin/ls -l /usr/bin >/dev/null || fail "ls in the chroot failed"
chroot "$G" /bin/sh -c 'sed -i "s/^user:/guest:/" /etc/passwd' || fail "sed -i in the chroot failed"
grep -q '^guest:' "$POOL/guest1/etc/passwd" || fail "sed -i: change missing"
assert_eq "$before" "$(obs "$MNT/guest2/etc/passwd")" "guest2's /etc/passwd after guest1's sed -i"
is_cowlink "$POOL/guest2/etc/passwd" || fail "guest2's passwd lost its CoW link"
chroot "$G" /bin/cp /usr/bin/ls /tmp/ls.copy || fail "cp in the chroot failed"
cmp "$G/usr/bin/ls" "$G/tmp/ls.copy" || fail "cp: copy differs"
chroot "$G" /tmp/ls.copy / >/dev/null || fail "running the copied binary failed"
chroot "$G" /bin/sh -c 'cp /etc/os-release /etc/os-release.new && mv /etc/os-release.new /etc/os-release' ||
	fail "replace a CoW link with cp + mv"
is_cowlink "$POOL/guest2/etc/os-release" || fail "guest2's os-release changed"
assert_eq 1 "$(chroot "$G" /usr/bin/stat -c %h /usr/bin/bash)" "nlink of a CoW link inside the chroot"
# a user inside the chroot
chroot --userspec=1000:1000 "$G" /bin/sh -c 'echo hi >/home/user/note; id -u' >/dev/null ||
	fail "a user shell in the chroot failed"
assert_eq 1000 "$(stat -c %u "$POOL/guest1/home/user/note")" "owner of the user's file"
cowfs_umount
