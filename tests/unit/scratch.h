/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A scratch directory on real ext4 (/var/tmp, or $COWFS_TEST_DIR) for unit
 * tests that need xattrs, ACLs, the immutable flag: header-only, shared by
 * the test_*.c files. */
#ifndef TESTS_UNIT_SCRATCH_H
#define TESTS_UNIT_SCRATCH_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define EXT4_MAGIC 0xEF53

static char scratch[128];

static inline void scratch_make(void)
{
	const char *base = getenv("COWFS_TEST_DIR") ? getenv("COWFS_TEST_DIR") : "/var/tmp";
	struct statfs sf;

	if (statfs(base, &sf) < 0 || sf.f_type != EXT4_MAGIC)
		cr_skip_test("%s is not ext4; set COWFS_TEST_DIR to an ext4 directory", base);
	snprintf(scratch, sizeof(scratch), "%s/cowfs-unit.XXXXXX", base);
	cr_assert_not_null(mkdtemp(scratch), "mkdtemp: %m");
}

static inline void scratch_remove(void)
{
	char cmd[600];

	if (!scratch[0])
		return;
	snprintf(cmd, sizeof(cmd), "chattr -R -i '%s' 2>/dev/null; rm -rf '%s'", scratch, scratch);
	if (system(cmd) != 0) {
		/* nothing more to do: a leftover scratch dir is not a test failure */
	}
	scratch[0] = '\0';
}

/* A file in the scratch dir with @len bytes of @c, mode 0644; its fd
 * (O_RDWR). */
static inline int scratch_file(const char *name, char c, size_t len)
{
	char path[512], *buf = malloc(len ? len : 1);
	int fd;

	cr_assert_not_null(buf);
	memset(buf, c, len);
	snprintf(path, sizeof(path), "%s/%s", scratch, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "open %s: %m", path);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	fchmod(fd, 0644);
	free(buf);
	return fd;
}

static inline int run(const char *fmt, const char *arg)
{
	char cmd[800];

	snprintf(cmd, sizeof(cmd), fmt, arg, arg, arg);
	return system(cmd);
}

#endif
