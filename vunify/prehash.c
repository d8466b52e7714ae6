/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "vunify/prehash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* How many files the worker may run ahead of the main thread in one
 * directory: enough to keep a disk busy, little enough to stay in cache. */
#define AHEAD 64

enum job_state { J_PENDING, J_RUNNING, J_DONE, J_GONE };

struct job {
	enum job_state state;
	struct stat st;
	struct hashdb_hash h;
	uint64_t bytes;
};

/* The entries of one directory of the walk's stack.  The worker starts on
 * it only once the main thread had to hash a file there itself: a rerun
 * over unchanged guests never wakes it. */
struct batch {
	bool live, armed;
	int dirfd;		/* our own dup: the walk may close its fd */
	const char **names;	/* the walk's strings, valid until dir_done */
	struct job *jobs;
	size_t n, scan, main_pos;
};

struct prehash {
	pthread_t thread;	/* one worker: more were measured no faster */
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	struct batch *b;	/* indexed by depth */
	size_t nb, capb;
	const struct hashdb_statcache *sc;
	bool eager;		/* guest without a stat cache: arm every batch */
	bool idle;		/* the worker waits for work */
	bool stop;
};

static void batch_free(struct batch *b)
{
	free(b->names);
	free(b->jobs);
	if (b->dirfd >= 0)
		close(b->dirfd);
	memset(b, 0, sizeof(*b));
	b->dirfd = -1;
}

/* Wait until no job of @b is being hashed, then drop it.  Lock held. */
static void batch_retire(struct prehash *ph, struct batch *b)
{
	for (;;) {
		bool running = false;

		for (size_t i = 0; i < b->n && !running; i++)
			running = b->jobs[i].state == J_RUNNING;
		if (!running)
			break;
		pthread_cond_wait(&ph->done, &ph->mu);
	}
	batch_free(b);
}

/* The deepest directory with a pending job within reach.  Lock held. */
static bool pick(struct prehash *ph, size_t *bi, size_t *ji)
{
	for (size_t d = ph->nb; d-- > 0;) {
		struct batch *b = &ph->b[d];

		if (!b->live || !b->armed)
			continue;
		if (b->scan < b->main_pos)
			b->scan = b->main_pos;	/* the main thread is past those */
		while (b->scan < b->n && b->jobs[b->scan].state != J_PENDING)
			b->scan++;
		if (b->scan < b->n && b->scan < b->main_pos + AHEAD) {
			*bi = d;
			*ji = b->scan++;
			return true;
		}
	}
	return false;
}

/* Decide from a statx of the name, before opening anything, whether the
 * main thread will want this file's hash. */
static bool worth_hashing(const struct prehash *ph, int dirfd, const char *name,
			  struct statx *stx)
{
	const struct hashdb_sc_entry *ce;

	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS, stx) < 0)
		return false;
	if (!S_ISREG(stx->stx_mode) || stx->stx_size == 0 || stx->stx_nlink > 1)
		return false;	/* the main thread skips or recognises these */
	if ((stx->stx_attributes_mask & STATX_ATTR_IMMUTABLE) &&
	    (stx->stx_attributes & STATX_ATTR_IMMUTABLE))
		return false;
	ce = ph->sc ? hashdb_sc_lookup(ph->sc, makedev(stx->stx_dev_major, stx->stx_dev_minor),
				       stx->stx_ino) : NULL;
	return !(ce && ce->size == stx->stx_size &&
		 ce->mtime_s == stx->stx_mtime.tv_sec && ce->mtime_ns == stx->stx_mtime.tv_nsec &&
		 ce->ctime_s == stx->stx_ctime.tv_sec && ce->ctime_ns == stx->stx_ctime.tv_nsec);
}

static void *worker(void *arg)
{
	struct prehash *ph = arg;
	void *buf = malloc(HASHDB_IO_CHUNK);
	size_t bi, ji;

	if (!buf)
		return NULL;	/* pending jobs stay pending: the main thread hashes */
	pthread_mutex_lock(&ph->mu);
	while (!ph->stop) {
		struct job res = { .state = J_GONE };
		struct statx stx;
		const char *name;
		int dirfd, fd;

		if (!pick(ph, &bi, &ji)) {
			ph->idle = true;
			pthread_cond_wait(&ph->work, &ph->mu);
			ph->idle = false;
			continue;
		}
		ph->b[bi].jobs[ji].state = J_RUNNING;
		dirfd = ph->b[bi].dirfd;
		name = ph->b[bi].names[ji];
		pthread_mutex_unlock(&ph->mu);

		/* dirfd and name stay valid: a batch is only retired when
		 * none of its jobs is running. */
		fd = worth_hashing(ph, dirfd, name, &stx) ? walk_open_regular(dirfd, name, &res.st)
							   : -1;
		if (fd >= 0) {
			if (res.st.st_ino == stx.stx_ino &&
			    hashdb_hash_fd_with(fd, buf, &res.h, &res.bytes, 0) == 0)
				res.state = J_DONE;
			close(fd);
		}

		pthread_mutex_lock(&ph->mu);
		ph->b[bi].jobs[ji] = res;
		pthread_cond_broadcast(&ph->done);
	}
	pthread_mutex_unlock(&ph->mu);
	free(buf);
	return NULL;
}

int prehash_start(struct prehash **out)
{
	struct prehash *ph = calloc(1, sizeof(*ph));
	int r;

	if (!ph)
		return -ENOMEM;
	pthread_mutex_init(&ph->mu, NULL);
	pthread_cond_init(&ph->work, NULL);
	pthread_cond_init(&ph->done, NULL);
	r = pthread_create(&ph->thread, NULL, worker, ph);
	if (r) {
		free(ph);
		return -r;
	}
	*out = ph;
	return 0;
}

void prehash_guest(struct prehash *ph, const struct hashdb_statcache *sc, bool ignore_mtime)
{
	(void)ignore_mtime;	/* the content hash does not depend on it */
	pthread_mutex_lock(&ph->mu);
	ph->sc = sc;
	/* A guest seen for the first time will have every file hashed: no
	 * reason to wait until the main thread hashes one in each directory
	 * (most directories hold a handful of files, and the first one's
	 * cold read would go unoverlapped). */
	ph->eager = sc && sc->nold == 0;
	pthread_mutex_unlock(&ph->mu);
}

void prehash_guest_done(struct prehash *ph)
{
	pthread_mutex_lock(&ph->mu);
	for (size_t d = 0; d < ph->nb; d++)
		if (ph->b[d].live)
			batch_retire(ph, &ph->b[d]);
	ph->nb = 0;
	ph->sc = NULL;
	pthread_mutex_unlock(&ph->mu);
}

void prehash_dir_loaded(struct prehash *ph, const struct walk_dir *d)
{
	struct batch nb = { .live = true, .dirfd = -1, .n = d->n };
	size_t regular = 0;

	for (size_t i = 0; i < d->n; i++)
		regular += d->types[i] == DT_REG || d->types[i] == DT_UNKNOWN;
	if (regular == 0)
		return;
	nb.names = calloc(d->n, sizeof(*nb.names));
	nb.jobs = calloc(d->n, sizeof(*nb.jobs));
	nb.dirfd = fcntl(d->dirfd, F_DUPFD_CLOEXEC, 0);
	if (!nb.names || !nb.jobs || nb.dirfd < 0)
		goto fail;
	for (size_t i = 0; i < d->n; i++) {
		bool want = d->types[i] == DT_REG || d->types[i] == DT_UNKNOWN;

		nb.jobs[i].state = want ? J_PENDING : J_GONE;
		nb.names[i] = d->names[i];
	}
	pthread_mutex_lock(&ph->mu);
	if (d->depth >= ph->capb) {
		size_t cap = ph->capb ? ph->capb * 2 : 64;
		struct batch *b;

		while (cap <= d->depth)
			cap *= 2;
		b = realloc(ph->b, cap * sizeof(*b));
		if (!b) {
			pthread_mutex_unlock(&ph->mu);
			goto fail;
		}
		for (size_t i = ph->capb; i < cap; i++)
			b[i] = (struct batch){ .dirfd = -1 };
		ph->b = b;
		ph->capb = cap;
	}
	if (ph->b[d->depth].live)
		batch_retire(ph, &ph->b[d->depth]);
	nb.armed = ph->eager;
	ph->b[d->depth] = nb;
	if (d->depth + 1 > ph->nb)
		ph->nb = d->depth + 1;
	if (nb.armed)
		pthread_cond_signal(&ph->work);
	pthread_mutex_unlock(&ph->mu);
	return;
fail:
	batch_free(&nb);	/* no prehashing for this directory: only slower */
}

void prehash_dir_done(struct prehash *ph, size_t depth)
{
	pthread_mutex_lock(&ph->mu);
	if (depth < ph->nb && ph->b[depth].live)
		batch_retire(ph, &ph->b[depth]);
	while (ph->nb > 0 && !ph->b[ph->nb - 1].live)
		ph->nb--;
	pthread_mutex_unlock(&ph->mu);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int prehash_take(struct prehash *ph, size_t depth, size_t index, const struct stat *st,
		 struct hashdb_hash *out, uint64_t *bytes)
{
	struct batch *b;
	struct job *j;
	int r = 0;

	pthread_mutex_lock(&ph->mu);
	if (depth >= ph->nb || !ph->b[depth].live || index >= ph->b[depth].n)
		goto out;
	b = &ph->b[depth];
	if (!b->armed) {
		/* The first file here the main thread must hash: from now on
		 * the worker hashes the rest of the directory ahead of it. */
		b->armed = true;
		b->main_pos = index + 1;
		b->jobs[index].state = J_GONE;
		pthread_cond_signal(&ph->work);
		goto out;
	}
	if (index + 1 > b->main_pos) {
		b->main_pos = index + 1;
		/* A worker that ran AHEAD files ahead waits until half of that
		 * room is free again: waking it for every file the main thread
		 * takes cost two context switches per file. */
		if (ph->idle && b->scan < b->n && b->scan <= b->main_pos + AHEAD / 2)
			pthread_cond_signal(&ph->work);
	}
	while (b->jobs[index].state == J_RUNNING)
		pthread_cond_wait(&ph->done, &ph->mu);
	j = &b->jobs[index];
	if (j->state == J_DONE && same_file(&j->st, st)) {
		*out = j->h;
		*bytes = j->bytes;
		r = 1;
	}
	j->state = J_GONE;
out:
	pthread_mutex_unlock(&ph->mu);
	return r;
}

void prehash_stop(struct prehash *ph)
{
	if (!ph)
		return;
	prehash_guest_done(ph);
	pthread_mutex_lock(&ph->mu);
	ph->stop = true;
	pthread_cond_broadcast(&ph->work);
	pthread_mutex_unlock(&ph->mu);
	pthread_join(ph->thread, NULL);
	free(ph->b);
	pthread_mutex_destroy(&ph->mu);
	pthread_cond_destroy(&ph->work);
	pthread_cond_destroy(&ph->done);
	free(ph);
}
