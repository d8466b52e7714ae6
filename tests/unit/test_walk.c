/* SPDX-License-Identifier: GPL-2.0-or-later */
/* walk_tree reads the root directory through an open file description of
 * its own.  vunify unify walks a guest twice at once on a first run (the
 * unify walk and the read-ahead thread, both given the same guest fd): when
 * the two walks shared one directory offset, one could rewind it while the
 * other read, and a walk saw the guest as empty (the whole guest silently
 * left un-unified, and objects in it left without their repair) or saw it
 * twice.  Found by tests/integration/vunify/kill9.sh under CPU load. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vunify/walk.h"

#define NFILES 40
#define NSUB 5
#define NENTRIES (NFILES + 1 + NSUB)	/* files, the subdirectory, its files */

static char dir[128];

static void setup(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char p[300];

	snprintf(dir, sizeof(dir), "%s/cowfs-walk.XXXXXX", base);
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %m");
	for (int i = 0; i < NFILES; i++) {
		snprintf(p, sizeof(p), "%s/file-%02d", dir, i);
		close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	}
	snprintf(p, sizeof(p), "%s/sub", dir);
	cr_assert_eq(mkdir(p, 0755), 0);
	for (int i = 0; i < NSUB; i++) {
		snprintf(p, sizeof(p), "%s/sub/f%d", dir, i);
		close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	}
}

static void teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0) {
		/* a leftover temporary directory is not a test failure */
	}
}

TestSuite(walk, .init = setup, .fini = teardown);

static int count(void *ctx, const struct walk_entry *e)
{
	(void)e;
	++*(int *)ctx;
	return WALK_CONTINUE;
}

static void ignore(void *ctx, const char *path, int err, const char *what)
{
	(void)ctx;
	(void)path;
	(void)err;
	(void)what;
}

static int walk_count(int fd)
{
	int n = 0;
	struct walk_ops ops = { .entry = count, .error = ignore, .ctx = &n,
				.sort_by_inode = true };

	cr_assert_eq(walk_tree(fd, &ops), 0);
	return n;
}

/* Deterministic: a walk must neither move the caller's directory offset nor
 * depend on it (a dup() of the caller's fd would share it). */
Test(walk, root_offset_is_its_own)
{
	char buf[1 << 15];
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	off_t end;

	cr_assert_geq(fd, 0);
	cr_assert_eq(walk_count(fd), NENTRIES);
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 0, "walk_tree moved the caller's directory offset");
	/* The caller at the end of the directory (what another reader of the
	 * same description leaves): the walk still sees everything, and the
	 * caller stays where it was. */
	while (syscall(SYS_getdents64, fd, buf, sizeof(buf)) > 0)
		;
	end = lseek(fd, 0, SEEK_CUR);
	cr_assert_gt(end, 0);
	cr_assert_eq(walk_count(fd), NENTRIES);
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), end, "walk_tree rewound the caller's directory offset");
	close(fd);
}

struct walker_arg {
	int fd, rounds, wrong;
};

static void *walk_many(void *p)
{
	struct walker_arg *a = p;

	for (int i = 0; i < a->rounds; i++)
		if (walk_count(a->fd) != NENTRIES)
			a->wrong++;
	return NULL;
}

/* What vunify unify does on a guest's first run: two walks of one fd at
 * once (the second is vunify/prefetch.c's).  Each must see every entry
 * exactly once, every time. */
Test(walk, two_walks_of_one_fd_at_once)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct walker_arg a = { fd, 2000, 0 }, b = { fd, 2000, 0 };
	pthread_t t;

	cr_assert_geq(fd, 0);
	cr_assert_eq(pthread_create(&t, NULL, walk_many, &b), 0);
	walk_many(&a);
	pthread_join(t, NULL);
	cr_expect_eq(a.wrong + b.wrong, 0, "%d of %d walks saw too few or too many entries",
		     a.wrong + b.wrong, a.rounds + b.rounds);
	close(fd);
}
