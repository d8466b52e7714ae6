/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cowlink on a real ext4 file: the marker (get/set/validation), the
 * immutable flag and the flag lock, cowlink_meta_read, cowlink_same_content,
 * temporary names, and copy-up keeping data, owner, mode (setuid included),
 * xattrs, ACL and file capability.  Needs root (trusted.*, chattr, chown). */
#include <dirent.h>
#include <errno.h>
#include <sys/xattr.h>

#include "cowlink/cowlink.h"
#include "scratch.h"

static void setup(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root (trusted xattrs, immutable flag, chown)");
	scratch_make();
}

TestSuite(cowlink_fs, .init = setup, .fini = scratch_remove);

#define HEX "0123456789abcdef0123456789abcdef"

Test(cowlink_fs, marker_roundtrip)
{
	int fd = scratch_file("m", 'x', 10);
	char hex[COWLINK_HEX_LEN + 1];

	cr_assert_eq(cowlink_marker_get(fd, hex), -ENODATA, "unmarked file");
	cr_assert_eq(cowlink_marker_set(fd, HEX), 0);
	cr_assert_eq(cowlink_marker_get(fd, hex), 0);
	cr_assert_str_eq(hex, HEX);
	cr_assert_eq(cowlink_marker_remove(fd), 0);
	cr_assert_eq(cowlink_marker_get(fd, hex), -ENODATA);
	cr_assert_eq(cowlink_marker_remove(fd), 0, "removing an absent marker is fine");
	close(fd);
}

Test(cowlink_fs, marker_validation)
{
	static const char *const bad[] = {
		"0123456789ABCDEF0123456789abcdef",	/* upper case */
		"0123456789abcdef0123456789abcde",	/* short */
		"0123456789abcdef0123456789abcdef0",	/* long */
		"0123456789abcdef0123456789abcdeg",	/* not hex */
		"",
	};
	int fd = scratch_file("v", 'x', 10);
	char hex[COWLINK_HEX_LEN + 1];

	cr_assert(cowlink_hex_valid(HEX));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_not(cowlink_hex_valid(bad[i]), "'%s' accepted", bad[i]);
		cr_expect_eq(cowlink_marker_set(fd, bad[i]), -EINVAL, "set '%s'", bad[i]);
		/* Written by someone else: read back as malformed, never as a hash. */
		cr_assert_eq(fsetxattr(fd, COWLINK_XATTR, bad[i], strlen(bad[i]), 0), 0);
		cr_expect_eq(cowlink_marker_get(fd, hex), -EINVAL, "get of '%s'", bad[i]);
	}
	/* A huge value is malformed too, not an error of the read. */
	char big[200];
	memset(big, 'a', sizeof(big));
	cr_assert_eq(fsetxattr(fd, COWLINK_XATTR, big, sizeof(big), 0), 0);
	cr_expect_eq(cowlink_marker_get(fd, hex), -EINVAL);
	cr_assert(cowlink_xattr_is_private(COWLINK_XATTR));
	cr_assert_not(cowlink_xattr_is_private("trusted.other"));
	cr_assert_not(cowlink_xattr_is_private("user.cowlink"));
	close(fd);
}

Test(cowlink_fs, immutable_flag_and_flag_lock)
{
	int fd = scratch_file("i", 'x', 10), lockfd = scratch_file("lock", 0, 0);
	bool on = true;

	cr_assert_eq(cowlink_is_immutable(fd, &on), 0);
	cr_assert_not(on);
	cr_assert_eq(cowlink_set_immutable(fd, true), 0);
	cr_assert_eq(cowlink_is_immutable(fd, &on), 0);
	cr_assert(on);
	cr_assert_eq(pwrite(fd, "y", 1, 0), -1, "write to an immutable file succeeded");
	cr_assert_eq(errno, EPERM);
	cr_assert_eq(cowlink_set_immutable(fd, true), 0, "setting it twice is fine");
	cr_assert_eq(cowlink_set_immutable(fd, false), 0);
	cr_assert_eq(cowlink_is_immutable(fd, &on), 0);
	cr_assert_not(on);
	close(fd);
	close(lockfd);
}

static int op_fails(void *arg)
{
	bool *was_mutable = arg;
	int fd = open(".", O_RDONLY);	/* unused, just an op */

	close(fd);
	*was_mutable = true;
	return -EXDEV;
}

static int op_link(void *arg)
{
	char *paths = arg;

	return link(paths, paths + 256) < 0 ? -errno : 0;
}

Test(cowlink_fs, with_mutable_restores_the_flag)
{
	int fd = scratch_file("w", 'x', 10), lockfd = scratch_file("lock", 0, 0);
	char paths[512];
	bool called = false, on;

	cr_assert_eq(cowlink_set_immutable(fd, true), 0);
	/* Linking an immutable inode fails; inside with_mutable it works. */
	snprintf(paths, 256, "%s/w", scratch);
	snprintf(paths + 256, 256, "%s/w2", scratch);
	cr_assert_eq(link(paths, paths + 256), -1);
	cr_assert_eq(cowlink_with_mutable(lockfd, fd, op_link, paths), 0);
	cr_assert_eq(cowlink_is_immutable(fd, &on), 0);
	cr_assert(on, "flag not restored after a successful op");
	/* op's error comes back, and the flag is restored anyway. */
	cr_assert_eq(cowlink_with_mutable(lockfd, fd, op_fails, &called), -EXDEV);
	cr_assert(called);
	cr_assert_eq(cowlink_is_immutable(fd, &on), 0);
	cr_assert(on, "flag not restored after a failed op");
	/* A mutable file stays mutable. */
	cr_assert_eq(cowlink_set_immutable(fd, false), 0);
	cr_assert_eq(cowlink_with_mutable(lockfd, fd, op_fails, &called), -EXDEV);
	cr_assert_eq(cowlink_is_immutable(fd, &on), 0);
	cr_assert_not(on);
	close(fd);
	close(lockfd);
}

/* What a crash between clearing and restoring would leave: the journal's
 * record, copied out while the flag was cleared. */
struct crash_copy {
	int lockfd;
	char rec[4096];
	ssize_t n;
};

static int op_copy_journal(void *arg)
{
	struct crash_copy *c = arg;

	c->n = pread(c->lockfd, c->rec, sizeof(c->rec), 0);
	return 0;
}

Test(cowlink_fs, flag_journal_replays_a_crashed_toggle)
{
	int fd = scratch_file("j", 'x', 10), lockfd = scratch_file("flags.lock", 0, 0);
	int plain = scratch_file("p", 'y', 10);
	struct crash_copy c = { .lockfd = -1 };
	char after[4096];
	bool on, same;

	c.lockfd = lockfd;
	cr_assert_eq(cowlink_flags_mark_boot(lockfd), 0);
	cr_assert_eq(cowlink_flags_same_boot(lockfd, &same), 0);
	cr_assert(same, "the boot id just written is not this boot's");
	cr_assert_eq(cowlink_marker_set(fd, HEX), 0);
	cr_assert_eq(cowlink_set_immutable(fd, true), 0);
	cr_assert_eq(cowlink_with_mutable(lockfd, fd, op_copy_journal, &c), 0);
	/* While the flag was off, the record named the inode. */
	cr_assert_gt(c.n, 72);
	cr_assert_eq(*(uint32_t *)(c.rec + 64), 1, "no record while the flag was cleared");
	/* Afterwards the record is empty, and replaying it does nothing. */
	cr_assert_eq(pread(lockfd, after, sizeof(after), 0), c.n);
	cr_assert_eq(*(uint32_t *)(after + 64), 0, "record left after the flag came back");
	cr_assert_eq(cowlink_flags_replay(lockfd, NULL, NULL), 0);
	/* The crash: flag still cleared, record still there. */
	cr_assert_eq(cowlink_set_immutable(fd, false), 0);
	cr_assert_eq(pwrite(lockfd, c.rec, (size_t)c.n, 0), c.n);
	cr_assert_eq(cowlink_flags_replay(lockfd, NULL, NULL), 1);
	cr_assert_eq(cowlink_is_immutable(fd, &on), 0);
	cr_assert(on, "replay did not restore the flag");
	cr_assert_eq(pread(lockfd, after, sizeof(after), 0), c.n);
	cr_assert_eq(*(uint32_t *)(after + 64), 0, "record kept after a successful replay");
	/* An unmarked file is never given the flag by a replay. */
	cr_assert_eq(cowlink_set_immutable(plain, true), 0);
	c.n = 0;
	cr_assert_eq(cowlink_with_mutable(lockfd, plain, op_copy_journal, &c), 0);
	cr_assert_eq(cowlink_set_immutable(plain, false), 0);
	cr_assert_eq(pwrite(lockfd, c.rec, (size_t)c.n, 0), c.n);
	cr_assert_eq(cowlink_flags_replay(lockfd, NULL, NULL), 0);
	cr_assert_eq(cowlink_is_immutable(plain, &on), 0);
	cr_assert_not(on, "replay flagged a file without marker");
	/* restore_flag: marked and unflagged gets it, once. */
	cr_assert_eq(cowlink_set_immutable(fd, false), 0);
	cr_assert_eq(cowlink_restore_flag(lockfd, fd), 1);
	cr_assert_eq(cowlink_restore_flag(lockfd, fd), 0);
	cr_assert_eq(cowlink_restore_flag(lockfd, plain), 0);
	close(fd);
	close(plain);
	close(lockfd);
}

Test(cowlink_fs, same_content)
{
	int a = scratch_file("a", 'x', 300000), b = scratch_file("b", 'x', 300000);
	int c = scratch_file("c", 'x', 300001), e = scratch_file("e", 'x', 0);
	int f = scratch_file("f", 0, 0);

	cr_assert_eq(cowlink_same_content(a, b, 300000), 1);
	cr_assert_eq(cowlink_same_content(a, c, 300000), 0, "a longer file is not the same");
	cr_assert_eq(cowlink_same_content(c, a, 300001), 0);
	cr_assert_eq(cowlink_same_content(e, f, 0), 1, "two empty files");
	/* One differing byte, late in the file (beyond the first chunk). */
	cr_assert_eq(pwrite(b, "y", 1, 299999), 1);
	cr_assert_eq(cowlink_same_content(a, b, 300000), 0);
	cr_assert_eq(pwrite(b, "x", 1, 299999), 1);
	cr_assert_eq(pwrite(b, "y", 1, 0), 1);
	cr_assert_eq(cowlink_same_content(a, b, 300000), 0, "first byte differs");
	close(a);
	close(b);
	close(c);
	close(e);
	close(f);
}

Test(cowlink_fs, meta_read_sees_everything_but_the_marker)
{
	int fd = scratch_file("r", 'x', 123);
	struct cowlink_meta m;
	bool acl = false, cap = false, user = false;
	char path[512];

	snprintf(path, sizeof(path), "%s/r", scratch);
	cr_assert_eq(fchown(fd, 1000, 1001), 0);
	cr_assert_eq(fchmod(fd, 04750), 0);
	cr_assert_eq(fsetxattr(fd, "user.x", "1", 1, 0), 0);
	cr_assert_eq(cowlink_marker_set(fd, HEX), 0);
	if (run("setfacl -m u:1000:r '%s'", path) != 0)
		cr_skip_test("setfacl failed");
	if (run("setcap cap_net_raw+ep '%s'", path) != 0)
		cr_skip_test("setcap failed");
	cr_assert_eq(fchmod(fd, 04750), 0, "setcap may clear setuid; set it again");
	cr_assert_eq(cowlink_meta_read(fd, &m), 0);
	cr_expect_eq(m.mode, S_IFREG | 04750);
	cr_expect_eq(m.uid, 1000);
	cr_expect_eq(m.gid, 1001);
	cr_expect_eq(m.size, 123);
	for (size_t i = 0; i < m.nxattrs; i++) {
		cr_expect_str_neq(m.xattrs[i].name, COWLINK_XATTR, "the marker is in the record");
		acl |= !strcmp(m.xattrs[i].name, "system.posix_acl_access");
		cap |= !strcmp(m.xattrs[i].name, "security.capability");
		user |= !strcmp(m.xattrs[i].name, "user.x");
		if (i)
			cr_expect_lt(strcmp(m.xattrs[i - 1].name, m.xattrs[i].name), 0, "not sorted");
	}
	cr_expect(acl && cap && user, "acl %d cap %d user %d", acl, cap, user);
	cowlink_meta_free(&m);
	close(fd);
}

Test(cowlink_fs, tmp_names)
{
	char a[64], b[64];
	pid_t pid = 0;

	cr_assert_eq(cowlink_tmp_name(a, sizeof(a)), 0);
	cr_assert_eq(cowlink_tmp_name(b, sizeof(b)), 0);
	cr_assert_str_neq(a, b, "two temporary names are the same");
	cr_assert(cowlink_is_tmp_name(a, &pid), "'%s' not recognised", a);
	cr_assert_eq(pid, getpid());
	cr_assert_eq(cowlink_tmp_name(a, 10), -ENAMETOOLONG);
	cr_assert(cowlink_is_tmp_name(".cowlink~12~0123456789abcdef~tmp", NULL));
	cr_assert_not(cowlink_is_tmp_name(".cowlink~12~0123456789abcdef~tmp~", NULL));
	cr_assert_not(cowlink_is_tmp_name(".cowlink~~0123456789abcdef~tmp", NULL));
	cr_assert_not(cowlink_is_tmp_name(".cowlink~12~0123456789abcde~tmp", NULL));
	cr_assert_not(cowlink_is_tmp_name("cowlink~12~0123456789abcdef~tmp", NULL));
	cr_assert_not(cowlink_is_tmp_name(".cowlink~", NULL));
	cr_assert_not(cowlink_is_tmp_name("libc.so.6", NULL));
}

/* copy-up: the private copy has everything a guest sees, and the shared
 * inode is untouched. */
Test(cowlink_fs, copy_up_keeps_everything)
{
	int src = scratch_file("obj", 'q', 200000), dirfd, lockfd = scratch_file("lock", 0, 0);
	int newfd = -1;
	struct cowlink_meta a, b;
	struct stat s0, s1, s2;
	char path[512], link2[512], hex[COWLINK_HEX_LEN + 1];
	bool on;

	snprintf(path, sizeof(path), "%s/obj", scratch);
	snprintf(link2, sizeof(link2), "%s/guest-name", scratch);
	cr_assert_eq(pwrite(src, "head", 4, 0), 4);
	cr_assert_eq(fchown(src, 1000, 1000), 0);
	cr_assert_eq(fsetxattr(src, "user.x", "val", 3, 0), 0);
	if (run("setfacl -m u:1001:rw '%s'", path) != 0 || run("setcap cap_net_raw+ep '%s'", path) != 0)
		cr_skip_test("setfacl/setcap failed");
	cr_assert_eq(fchmod(src, 04755), 0);	/* setuid after setcap */
	struct timespec ts[2] = { { 1000, 0 }, { 1600000000, 42 } };
	cr_assert_eq(futimens(src, ts), 0);
	cr_assert_eq(cowlink_marker_set(src, HEX), 0);
	cr_assert_eq(link(path, link2), 0);	/* the guest's name of the CoW link */
	cr_assert_eq(cowlink_set_immutable(src, true), 0);
	cr_assert_eq(fstat(src, &s0), 0);

	dirfd = open(scratch, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dirfd, 0);
	cr_assert_eq(cowlink_copy_up(lockfd, -1, src, dirfd, "guest-name", &newfd), 0);
	cr_assert_geq(newfd, 0);
	cr_assert_eq(fstat(newfd, &s1), 0);
	cr_assert_eq(stat(link2, &s2), 0);
	cr_assert_eq(s1.st_ino, s2.st_ino, "the name is not the new copy");
	cr_assert_neq(s1.st_ino, s0.st_ino, "no new inode");
	cr_expect_eq(s1.st_uid, 1000);
	cr_expect_eq(s1.st_gid, 1000);
	cr_expect_eq(s1.st_mode, S_IFREG | 04755, "mode %o", s1.st_mode);
	cr_expect_eq(s1.st_mtim.tv_sec, 1600000000);
	cr_expect_eq(s1.st_mtim.tv_nsec, 42);
	cr_expect_eq(s1.st_nlink, 1);
	cr_expect_eq(cowlink_same_content(src, newfd, s0.st_size), 1, "data differs");
	cr_assert_eq(cowlink_meta_read(src, &a), 0);
	cr_assert_eq(cowlink_meta_read(newfd, &b), 0);
	cr_expect(cowlink_meta_equal(&a, &b, false), "metadata differs (xattrs: %zu vs %zu)",
		  a.nxattrs, b.nxattrs);
	cr_expect_eq(b.nxattrs, 3, "user.x, ACL, capability");
	cowlink_meta_free(&a);
	cowlink_meta_free(&b);
	cr_expect_eq(cowlink_marker_get(newfd, hex), -ENODATA, "the copy carries the marker");
	cr_expect_eq(cowlink_is_immutable(newfd, &on), 0);
	cr_expect_not(on, "the copy is immutable");
	/* The copy is writable and the shared inode did not change. */
	cr_expect_eq(pwrite(newfd, "priv", 4, 0), 4);
	char buf[4];
	cr_expect_eq(pread(src, buf, 4, 0), 4);
	cr_expect_eq(memcmp(buf, "head", 4), 0, "the shared inode changed");
	cr_expect_eq(cowlink_is_immutable(src, &on), 0);
	cr_expect(on, "the shared inode lost its flag");
	cr_expect_eq(cowlink_marker_get(src, hex), 0);
	struct stat s3;
	cr_assert_eq(fstat(src, &s3), 0);
	cr_expect_eq(s3.st_nlink, 1, "the guest name still links the object");
	close(newfd);
	close(dirfd);
	close(src);
	close(lockfd);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of @path's xattrs (not following a symlink), sorted, one line
 * each, into @out. */
static void xattr_names(const char *path, char *out, size_t len)
{
	char names[4096], *v[64];
	ssize_t n = llistxattr(path, names, sizeof(names));
	size_t k = 0;

	cr_assert_geq(n, 0, "llistxattr %s: %m", path);
	for (ssize_t i = 0; i < n && k < 64; i += (ssize_t)strlen(names + i) + 1)
		v[k++] = names + i;
	qsort(v, k, sizeof(*v), cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < k; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s\n", v[i]);
}

static int opath(const char *name)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", scratch, name);
	fd = open(p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %m", p);
	return fd;
}

/* cowlink_copy_xattrs and cowlink_strip_xattrs on O_PATH fds of symlinks
 * (the xattrs of the links themselves, not of their targets), the marker
 * left behind; and a new file's inherited default ACL stripped. */
Test(cowlink_fs, xattrs_copied_and_stripped_through_o_path)
{
	char a[512], b[512], t[512], dir[512], f[512], got[1024];
	int fa, fb, fd;

	snprintf(a, sizeof(a), "%s/la", scratch);
	snprintf(b, sizeof(b), "%s/lb", scratch);
	snprintf(t, sizeof(t), "%s/target", scratch);
	close(scratch_file("target", 't', 1));
	cr_assert_eq(symlink("target", a), 0);
	cr_assert_eq(symlink("target", b), 0);
	cr_assert_eq(lsetxattr(a, "trusted.a", "1", 1, 0), 0);
	cr_assert_eq(lsetxattr(a, "trusted.empty", "", 0, 0), 0);
	cr_assert_eq(lsetxattr(a, COWLINK_XATTR, HEX, COWLINK_HEX_LEN, 0), 0);
	cr_assert_eq(lsetxattr(b, "trusted.old", "x", 1, 0), 0);
	fa = opath("la");
	fb = opath("lb");
	cr_assert_eq(cowlink_strip_xattrs(fb), 0);
	cr_assert_eq(cowlink_copy_xattrs(fa, fb), 0);
	xattr_names(b, got, sizeof(got));
	cr_expect_str_eq(got, "trusted.a\ntrusted.empty\n", "the copy's symlink has:\n%s", got);
	xattr_names(t, got, sizeof(got));
	cr_expect_str_eq(got, "", "the symlinks' target got xattrs:\n%s", got);
	close(fa);
	close(fb);

	snprintf(dir, sizeof(dir), "%s/d", scratch);
	snprintf(f, sizeof(f), "%s/d/new", scratch);
	cr_assert_eq(mkdir(dir, 0755), 0);
	if (run("setfacl -d -m u:1234:rwx '%s'", dir) != 0)
		cr_skip_test("setfacl failed");
	fd = open(f, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	xattr_names(f, got, sizeof(got));
	cr_assert_str_eq(got, "system.posix_acl_access\n", "not inherited:\n%s", got);
	cr_expect_eq(cowlink_strip_xattrs(fd), 0);
	xattr_names(f, got, sizeof(got));
	cr_expect_str_eq(got, "", "left after the strip:\n%s", got);
	close(fd);
}

/* A copy-up that lost the race for the name (another process copied the
 * path up, or replaced it, before this one's rename) changes nothing: the
 * winner's file keeps the name, no temporary is left. */
Test(cowlink_fs, copy_up_of_a_name_replaced_meanwhile_is_stale)
{
	int src = scratch_file("obj2", 'q', 1000), lockfd = scratch_file("lock2", 0, 0);
	int winner = scratch_file("winner", 'w', 10), dirfd, n = 0;
	char path[512], name[512];
	struct stat sw, sn;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/winner", scratch);
	snprintf(name, sizeof(name), "%s/guest-name2", scratch);
	cr_assert_eq(rename(path, name), 0);	/* the name is someone else's copy */
	cr_assert_eq(fstat(winner, &sw), 0);
	dirfd = open(scratch, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dirfd, 0);
	cr_assert_eq(cowlink_copy_up(lockfd, -1, src, dirfd, "guest-name2", NULL), -ESTALE);
	cr_assert_eq(stat(name, &sn), 0);
	cr_expect_eq(sn.st_ino, sw.st_ino, "the winner's copy was replaced");
	d = opendir(scratch);
	cr_assert_not_null(d);
	while ((e = readdir(d)))
		n += cowlink_is_tmp_name(e->d_name, NULL);
	closedir(d);
	cr_expect_eq(n, 0, "a temporary was left");
	close(dirfd);
	close(winner);
	close(src);
	close(lockfd);
}
