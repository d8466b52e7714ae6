/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cowlink's reading of /proc/self/mountinfo, which cowfs (a second mount of
 * a pool or mountpoint) and vunify (is a guest in use?) share: the fields,
 * the optional fields, an empty source, the kernel's octal escapes, and a
 * real mount at a path with every byte the kernel escapes in it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cowlink/cowlink.h"

/* Parse a copy of @text (the parser writes into its line). */
static int parse(const char *text, struct cowlink_mount *m, char **buf)
{
	*buf = strdup(text);
	cr_assert_not_null(*buf);
	return cowlink_mountinfo_parse(*buf, m);
}

static const struct {
	const char *what, *line;
	int id;
	unsigned maj, min;
	const char *root, *point, *fstype, *source;
} good[] = {
	{ "optional fields", "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:2 - ext3 "
	  "/dev/root rw,errors=continue\n", 36, 98, 0, "/mnt1", "/mnt2", "ext3", "/dev/root" },
	{ "no optional fields, no newline", "25 1 0:52 / /var/tmp/mnt rw,relatime - fuse.cowfs "
	  "/var/tmp/pool rw,user_id=0", 25, 0, 52, "/", "/var/tmp/mnt", "fuse.cowfs",
	  "/var/tmp/pool" },
	/* mount("", ...) shows as nothing between two spaces: the source is
	 * "", not the superblock options that follow. */
	{ "empty source", "40 1 0:60 / /x rw - tmpfs  rw,size=10k", 40, 0, 60, "/", "/x", "tmpfs",
	  "" },
	{ "no source", "40 1 0:60 / /x rw - tmpfs", 40, 0, 60, "/", "/x", "tmpfs", "" },
	{ "escapes in every path field", "41 1 8:1 /r\\040t /a\\040b\\011c\\012d\\134e\\377 rw "
	  "- fuse.x\\040y s\\134\\040t\\012 rw\n", 41, 8, 1, "/r t", "/a b\tc\nd\\e\377",
	  "fuse.x y", "s\\ t\n" },
	/* Only \ooo up to \377 is an escape; raw bytes pass as they are. */
	{ "no escapes", "42 1 8:1 / /p\\400\\9\\04\xe4\xff rw - ext4 /dev/x rw", 42, 8, 1, "/",
	  "/p\\400\\9\\04\xe4\xff", "ext4", "/dev/x" },
};

Test(mountinfo, fields)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		struct cowlink_mount m;
		char *b;

		cr_assert_eq(parse(good[i].line, &m, &b), 0, "%s: not parsed", good[i].what);
		cr_expect_eq(m.id, good[i].id, "%s: id", good[i].what);
		cr_expect_eq(m.dev, makedev(good[i].maj, good[i].min), "%s: dev", good[i].what);
		cr_expect_str_eq(m.root, good[i].root, "%s: root", good[i].what);
		cr_expect_str_eq(m.point, good[i].point, "%s: point", good[i].what);
		cr_expect_str_eq(m.fstype, good[i].fstype, "%s: fstype", good[i].what);
		cr_expect_str_eq(m.source, good[i].source, "%s: source", good[i].what);
		free(b);
	}
}

Test(mountinfo, not_a_mountinfo_line)
{
	static const char *bad[] = {
		"",
		"\n",
		"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw",	/* no "-" */
		"36 35 98:0 /mnt1 /mnt2 rw -",		/* no fstype */
		"36 35 98 /mnt1 /mnt2 rw - ext3 /dev/root rw",	/* no maj:min */
		"36 35 98:0 /mnt1",
	};
	struct cowlink_mount m;
	char *b;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cr_expect_eq(parse(bad[i], &m, &b), -EINVAL, "accepted: \"%s\"", bad[i]);
		free(b);
	}
}

/* A real mount (in a mount namespace of this test's own, gone when it
 * exits) at a path with a space, a tab, a newline, a backslash and a
 * non-ASCII byte, from a source with the same bytes; longer than PATH_MAX
 * once escaped. */
Test(mountinfo, a_real_mount_at_a_hostile_path)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char dir[128], *point = NULL, *p;
	const char *src = "src x\t\\y\n\xff";
	struct cowlink_mounts ms;
	struct stat st;
	bool found = false;

	if (geteuid() != 0)
		cr_skip_test("needs root (mount)");
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		cr_skip_test("no mount namespace here: %m");
	snprintf(dir, sizeof(dir), "%s/cowlink-procfs.XXXXXX", base);
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %m");
	cr_assert_gt(asprintf(&point, "%s", dir), 0);
	/* 12 levels of 200 bytes, a third of them escaped: about 4.8 KiB in
	 * mountinfo for a 2.4 KiB path. */
	for (int level = 0; level < 12; level++) {
		char name[201];

		for (int i = 0; i < 200; i++)
			name[i] = " \t\n\\a\xff"[i % 6];
		name[200] = '\0';
		p = point;
		cr_assert_gt(asprintf(&point, "%s/%s", p, name), 0);
		free(p);
		cr_assert_eq(mkdir(point, 0700), 0, "mkdir: %m");
	}
	cr_assert_eq(mount(src, point, "tmpfs", 0, "size=64k"), 0, "mount: %m");
	cr_assert_eq(stat(point, &st), 0);
	cr_assert_eq(cowlink_mounts_read(&ms), 0);
	cr_expect_gt(ms.n, 1);
	for (size_t i = 0; i < ms.n; i++) {
		if (strcmp(ms.m[i].point, point))
			continue;
		found = true;
		cr_expect_str_eq(ms.m[i].source, src);
		cr_expect_str_eq(ms.m[i].fstype, "tmpfs");
		cr_expect_str_eq(ms.m[i].root, "/");
		cr_expect_eq(ms.m[i].dev, st.st_dev);
	}
	cr_expect(found, "the mount at the long odd path is not in what was read");
	cowlink_mounts_free(&ms);
	cr_expect_eq(umount(point), 0);
	for (int level = 0; level <= 12; level++) {
		cr_expect_eq(rmdir(point), 0, "rmdir: %m");
		*strrchr(point, '/') = '\0';
	}
	free(point);
}
