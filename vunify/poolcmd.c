/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Opening and locking a pool the way every changing command does. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cowlink/cowlink.h"
#include "vunify/vunify.h"
#include "vunify/walk.h"

void pool_report_recovery(const char *path, const struct hashdb_pool *p)
{
	if (p->flags_restored > 0)
		msg_error("%s: restored the immutable flag of %d pool object%s left cleared by an "
			  "interrupted run%s", esc(path, 0), p->flags_restored,
			  p->flags_restored == 1 ? "" : "s",
			  p->flags_scanned ? " (every object checked after a reboot)" : "");
}

int pool_open_locked(const char *path, bool create, struct hashdb_pool *p)
{
	pid_t holder = 0;
	int r = hashdb_pool_open(path, create, p);

	if (r < 0) {
		msg_error("%s: cannot open pool: %s", esc(path, 0),
			  r == -ENOTDIR ? "not a directory" : strerror(-r));
		return EXIT_FATAL;
	}
	pool_report_recovery(path, p);
	if (p->statefd < 0)
		return 0;	/* no state yet: nothing to lock, nothing to change */
	r = hashdb_pool_lock(p, &holder);
	if (r == 0)
		return 0;
	if (r == -EWOULDBLOCK && holder)
		msg_error("%s: another vunify run (pid %d) is working on this pool", esc(path, 0),
			  (int)holder);
	else if (r == -EWOULDBLOCK)
		msg_error("%s: another vunify run is working on this pool", esc(path, 0));
	else
		msg_error("%s: cannot lock pool: %s", esc(path, 0), strerror(-r));
	hashdb_pool_close(p);
	return r == -EWOULDBLOCK ? EXIT_LOCKED : EXIT_FATAL;
}

struct count_ctx {
	const struct exclude *x;
	uint64_t n;
};

static int count_entry(void *ctx, const struct walk_entry *e)
{
	struct count_ctx *c = ctx;
	bool dir = S_ISDIR(e->stx->stx_mode);

	c->n++;
	if (dir && c->x && c->x->n && exclude_match(c->x, e->path, true))
		return WALK_SKIP_DIR;
	return WALK_CONTINUE;
}

static void count_error(void *ctx, const char *path, int err, const char *what)
{
	(void)ctx, (void)path, (void)err, (void)what;	/* the real walk reports */
}

uint64_t count_entries(struct hashdb_pool *p, const struct guests *g, const struct exclude *x)
{
	struct count_ctx c = { x, 0 };
	struct walk_ops ops = { .entry = count_entry, .error = count_error, .ctx = &c };

	for (size_t i = 0; i < g->n; i++) {
		int fd = guest_open(p, g->names[i]);

		if (fd < 0)
			continue;
		walk_tree(fd, &ops);
		close(fd);
	}
	return c.n;
}

int split_link(struct hashdb_pool *p, int fd, int dirfd, const char *name)
{
	struct timespec mtime;
	int r = cowlink_dir_mtime(dirfd, &mtime);

	r = r ?: cowlink_copy_up(p->flagfd, -1, fd, dirfd, name, NULL);
	if (r < 0)
		return r;
	/* Guests observe the directory's mtime: as unify does, keep it. */
	cowlink_dir_mtime_restore(dirfd, &mtime);
	return 0;
}
