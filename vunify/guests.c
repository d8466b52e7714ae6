/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Which directories of a pool are guests, opening one safely, and how many
 * entries they have (for a progress bar). */
#include "vunify/vunify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vunify/walk.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add(struct guests *g, const char *name)
{
	char **n = realloc(g->names, (g->n + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	g->names = n;
	g->names[g->n] = strdup(name);
	if (!g->names[g->n])
		return -ENOMEM;
	g->n++;
	return 0;
}

int guests_list(struct hashdb_pool *p, char **given, int ngiven, struct guests *g)
{
	DIR *d;
	struct dirent *de;
	int r = 0;

	memset(g, 0, sizeof(*g));
	if (ngiven > 0) {
		for (int i = 0; i < ngiven && !r; i++) {
			if (strchr(given[i], '/') || !hashdb_is_guest_name(given[i])) {
				msg_error("%s: not a guest name (a plain subdirectory name of the pool)",
					  esc(given[i], 0));
				r = -EINVAL;
				break;
			}
			r = add(g, given[i]);
		}
		return r;
	}
	r = hashdb_opendir(p->dirfd, ".", &d);
	if (r < 0)
		return r;
	for (;;) {
		struct stat st;

		errno = 0;	/* readdir says an error only by errno */
		de = readdir(d);
		if (!de) {
			r = -errno;
			break;
		}
		if (!hashdb_is_guest_name(de->d_name))
			continue;
		if (fstatat(p->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		r = add(g, de->d_name);
		if (r < 0)
			break;
	}
	closedir(d);
	if (g->n > 1)
		qsort(g->names, g->n, sizeof(*g->names), cmp_str);
	return r;
}

void guests_free(struct guests *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->names[i]);
	free(g->names);
	memset(g, 0, sizeof(*g));
}

int guest_open(struct hashdb_pool *p, const char *name)
{
	struct stat st;
	int fd = openat(p->dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	if (st.st_dev != p->dev) {
		close(fd);
		return -EXDEV;
	}
	return fd;
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
