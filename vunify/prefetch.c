/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "vunify/prefetch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "vunify/walk.h"

struct prefetch {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int rootfd;
	const struct exclude *ex;
	/* Regular files (and their bytes) each walk has reached so far; the
	 * same entries are counted on both sides, so the differences say how
	 * far ahead the prefetch walk is. */
	uint64_t main_files, main_bytes, ahead_files, ahead_bytes;
	bool waiting, stop;
};

static bool too_far_ahead(const struct prefetch *pf)
{
	return pf->ahead_files - pf->main_files >= PREFETCH_FILES ||
	       pf->ahead_bytes - pf->main_bytes >= PREFETCH_BYTES;
}

/* Wait until the unify walk has come close enough; false: stop. */
static bool pace(struct prefetch *pf, uint64_t size)
{
	bool go;

	pthread_mutex_lock(&pf->mu);
	while (!pf->stop && pf->ahead_files > pf->main_files && too_far_ahead(pf)) {
		pf->waiting = true;
		pthread_cond_wait(&pf->cv, &pf->mu);
	}
	pf->waiting = false;
	go = !pf->stop;
	pf->ahead_files++;
	pf->ahead_bytes += size;
	pthread_mutex_unlock(&pf->mu);
	return go;
}

static bool worth_reading(const struct statx *s)
{
	/* What the unify walk hashes: see on_entry() in unify.c. */
	return s->stx_size > 0 && s->stx_nlink == 1 &&
	       !((s->stx_attributes_mask & (STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND)) &&
		 (s->stx_attributes & (STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND)));
}

static int on_entry(void *ctx, const struct walk_entry *e)
{
	struct prefetch *pf = ctx;
	bool is_dir = S_ISDIR(e->stx->stx_mode);
	struct stat st;
	int fd;

	if (pf->ex && pf->ex->n && exclude_match(pf->ex, e->path, is_dir))
		return is_dir ? WALK_SKIP_DIR : WALK_CONTINUE;
	if (!S_ISREG(e->stx->stx_mode))
		return WALK_CONTINUE;
	if (!pace(pf, e->stx->stx_size))
		return -ECANCELED;
	if (!worth_reading(e->stx))
		return WALK_CONTINUE;
	fd = walk_open_regular(e->dirfd, e->name, &st);
	if (fd >= 0) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
		close(fd);
	}
	return WALK_CONTINUE;
}

static void on_error(void *ctx, const char *path, int err, const char *what)
{
	/* The unify walk meets the same problem and reports it. */
	(void)ctx;
	(void)path;
	(void)err;
	(void)what;
}

static void *run(void *arg)
{
	struct prefetch *pf = arg;
	/* The unify walk's order: see unify_guest(). */
	struct walk_ops ops = { .entry = on_entry, .error = on_error, .ctx = pf,
				.sort_by_inode = true, .max_fds = PREFETCH_DIR_FDS };

	walk_tree(pf->rootfd, &ops);
	return NULL;
}

struct prefetch *prefetch_start(int rootfd, const struct exclude *ex)
{
	struct prefetch *pf = calloc(1, sizeof(*pf));

	if (!pf)
		return NULL;
	pf->ex = ex;
	/* Its own open file description: see walk_tree on shared offsets. */
	pf->rootfd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pf->rootfd < 0)
		goto fail;
	pthread_mutex_init(&pf->mu, NULL);
	pthread_cond_init(&pf->cv, NULL);
	if (pthread_create(&pf->thread, NULL, run, pf) != 0) {
		pthread_mutex_destroy(&pf->mu);
		pthread_cond_destroy(&pf->cv);
		close(pf->rootfd);
		goto fail;
	}
	return pf;
fail:
	free(pf);
	return NULL;
}

void prefetch_reached(struct prefetch *pf, uint64_t size)
{
	pthread_mutex_lock(&pf->mu);
	pf->main_files++;
	pf->main_bytes += size;
	/* Wake it only when it is no more than half its reach ahead: waking it
	 * for every file cost two context switches per file. */
	if (pf->waiting && pf->ahead_files - pf->main_files <= PREFETCH_FILES / 2 &&
	    pf->ahead_bytes - pf->main_bytes <= PREFETCH_BYTES / 2)
		pthread_cond_signal(&pf->cv);
	pthread_mutex_unlock(&pf->mu);
}

void prefetch_stop(struct prefetch *pf)
{
	if (!pf)
		return;
	pthread_mutex_lock(&pf->mu);
	pf->stop = true;
	pthread_cond_signal(&pf->cv);
	pthread_mutex_unlock(&pf->mu);
	pthread_join(pf->thread, NULL);
	pthread_mutex_destroy(&pf->mu);
	pthread_cond_destroy(&pf->cv);
	close(pf->rootfd);
	free(pf);
}
