/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The inode table.  One struct cf_inode per backing (st_dev, st_ino), so every
 * hard link of a CoW link is one FUSE nodeid and one kernel page cache.
 *
 * libfuse's passthrough examples pin an O_PATH fd per inode the kernel
 * remembers; on a pool of many guests that exhausts the open-files limit
 * (20,000 here, not raisable).  We keep a file handle per inode instead
 * (name_to_handle_at) and a bounded LRU cache of O_PATH fds, reopened with
 * open_by_handle_at when evicted.  Inodes on another filesystem than the
 * pool (a guest with a mount inside) cannot be reopened through the pool's
 * mount fd, so they keep a pinned fd.
 */
#include "cowfs/cowfs.h"
#include "cowlink/cowlink.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t bucket_of(const struct cf_fs *fs, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev;

	return (size_t)(h ^ (h >> 29)) & (fs->nbuckets - 1);
}

int cf_table_init(struct cf_fs *fs)
{
	struct stat st;

	fs->nbuckets = 1 << 14;
	fs->buckets = calloc(fs->nbuckets, sizeof(*fs->buckets));
	if (!fs->buckets)
		return -ENOMEM;
	if (fstat(fs->pool_fd, &st) < 0)
		return -errno;
	pthread_mutex_init(&fs->table_lock, NULL);
	pthread_mutex_init(&fs->fd_lock, NULL);
	fs->lru.lru_next = fs->lru.lru_prev = &fs->lru;
	fs->root.dev = st.st_dev;
	fs->root.ino = st.st_ino;
	fs->root.type = S_IFDIR;
	fs->root.nlookup = 2;
	fs->root.fd = fs->pool_fd;
	fs->root.pinned = true;
	return 0;
}

static void free_inode(struct cf_fs *fs, struct cf_inode *in)
{
	pthread_mutex_lock(&fs->fd_lock);
	if (in->fd >= 0) {
		if (!in->pinned) {
			in->lru_prev->lru_next = in->lru_next;
			in->lru_next->lru_prev = in->lru_prev;
			fs->nfds--;
		}
		close(in->fd);
	}
	pthread_mutex_unlock(&fs->fd_lock);
	free(in->fh);
	free(in);
}

void cf_table_destroy(struct cf_fs *fs)
{
	for (size_t b = 0; b < fs->nbuckets; b++) {
		struct cf_inode *in = fs->buckets[b], *next;

		for (; in; in = next) {
			next = in->hnext;
			free_inode(fs, in);
		}
	}
	free(fs->buckets);
	fs->buckets = NULL;
}

struct cf_inode *cf_inode(struct cf_fs *fs, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &fs->root;
	return (struct cf_inode *)(uintptr_t)ino;
}

/* Caller holds table_lock. */
static struct cf_inode *find_locked(struct cf_fs *fs, dev_t dev, ino_t ino)
{
	struct cf_inode *in;

	if (dev == fs->root.dev && ino == fs->root.ino)
		return &fs->root;
	for (in = fs->buckets[bucket_of(fs, dev, ino)]; in; in = in->hnext)
		if (in->dev == dev && in->ino == ino)
			return in;
	return NULL;
}

/* Caller holds table_lock.  Doubling keeps chains short; a failed
 * allocation just leaves them longer. */
static void maybe_grow(struct cf_fs *fs)
{
	size_t n = fs->nbuckets * 2;
	struct cf_inode **nb;

	if (fs->ninodes < fs->nbuckets * 2)
		return;
	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;
	for (size_t b = 0; b < fs->nbuckets; b++) {
		struct cf_inode *in = fs->buckets[b], *next;

		for (; in; in = next) {
			size_t nbk;

			next = in->hnext;
			fs->nbuckets = n;
			nbk = bucket_of(fs, in->dev, in->ino);
			fs->nbuckets = n / 2;
			in->hnext = nb[nbk];
			nb[nbk] = in;
		}
	}
	free(fs->buckets);
	fs->buckets = nb;
	fs->nbuckets = n;
}

static struct file_handle *handle_of(int fd)
{
	struct file_handle *fh;
	int mnt;

	fh = malloc(sizeof(*fh) + MAX_HANDLE_SZ);
	if (!fh)
		return NULL;
	fh->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", fh, &mnt, AT_EMPTY_PATH) < 0) {
		free(fh);
		return NULL;
	}
	return fh;
}

/* Caller holds fd_lock: make room in the cache by closing the least
 * recently used fds nobody is borrowing. */
static void evict_locked(struct cf_fs *fs)
{
	struct cf_inode *in = fs->lru.lru_prev, *prev;

	for (; fs->nfds > fs->fd_cache_max && in != &fs->lru; in = prev) {
		prev = in->lru_prev;
		if (in->fd_users)
			continue;
		in->lru_prev->lru_next = in->lru_next;
		in->lru_next->lru_prev = in->lru_prev;
		in->lru_next = in->lru_prev = NULL;
		close(in->fd);
		in->fd = -1;
		fs->nfds--;
	}
}

/* Caller holds fd_lock. */
static void lru_insert_locked(struct cf_fs *fs, struct cf_inode *in)
{
	in->lru_next = fs->lru.lru_next;
	in->lru_prev = &fs->lru;
	fs->lru.lru_next->lru_prev = in;
	fs->lru.lru_next = in;
}

static void lru_touch_locked(struct cf_fs *fs, struct cf_inode *in)
{
	if (in->pinned || fs->lru.lru_next == in)
		return;
	in->lru_prev->lru_next = in->lru_next;
	in->lru_next->lru_prev = in->lru_prev;
	lru_insert_locked(fs, in);
}

/*
 * An entry without a cached fd only has its handle.  If the inode number
 * was freed and reused behind the mount meanwhile (vunify renames over
 * files), that handle is stale while the name now resolves to the new file
 * with the same number: take the new file's handle, so the nodeid serves
 * what the lookup found.  (An entry with a cached fd pins its inode, whose
 * number cannot be reused.)  One name_to_handle_at per repeated lookup.
 */
static void refresh_handle(struct cf_fs *fs, struct cf_inode *in, int dirfd, const char *name)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} u;
	int fd, mnt;

	if (in->pinned || in == &fs->root || !in->fh)
		return;
	pthread_mutex_lock(&fs->fd_lock);
	fd = in->fd;
	pthread_mutex_unlock(&fs->fd_lock);
	if (fd >= 0)
		return;
	u.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(dirfd, name, &u.fh, &mnt, 0) < 0)
		return;
	pthread_mutex_lock(&fs->fd_lock);
	/* In place (every handle buffer has MAX_HANDLE_SZ bytes): a thread
	 * reading it right now gets at worst a failing open. */
	if (u.fh.handle_bytes != in->fh->handle_bytes || u.fh.handle_type != in->fh->handle_type ||
	    memcmp(u.fh.f_handle, in->fh->f_handle, u.fh.handle_bytes) != 0)
		memcpy(in->fh, &u.fh, sizeof(u.fh) + u.fh.handle_bytes);
	pthread_mutex_unlock(&fs->fd_lock);
}

/*
 * The cheap way in for a new inode of the pool's filesystem: its handle by
 * name, and the name stat'ed again to be sure the handle is of the inode
 * that is the key (the name may change under us).  No fd is opened; the
 * first operation that needs one opens it from the handle.  -EAGAIN: the
 * name changed; other errors: use open_new().
 */
static int handle_by_name(struct cf_inode *in, int dirfd, const char *name)
{
	struct stat st;
	int mnt;

	in->fh = malloc(sizeof(*in->fh) + MAX_HANDLE_SZ);
	if (!in->fh)
		return -ENOMEM;
	in->fh->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(dirfd, name, in->fh, &mnt, 0) < 0)
		goto fail;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		goto fail;
	if (st.st_dev != in->dev || st.st_ino != in->ino) {
		free(in->fh);
		in->fh = NULL;
		return -EAGAIN;
	}
	return 0;
fail:
	free(in->fh);
	in->fh = NULL;
	return -1;
}

/* Open a new inode by name (or from @fdhint) and check it is still the one
 * that was stat'ed; take its handle, or pin the fd when there is none. */
static int open_new(struct cf_fs *fs, struct cf_inode *in, int dirfd, const char *name,
		    int fdhint)
{
	struct stat fst;
	int fd, r;

	if (fdhint >= 0) {
		/* Not dup(): a writable fd cached here would make vunify's read
		 * lease fail on the file for as long as it stays cached. */
		char proc[64];

		cowlink_fd_path(proc, sizeof(proc), fdhint);
		fd = open(proc, O_PATH | O_CLOEXEC);
	} else {
		fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	if (fstat(fd, &fst) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (fst.st_dev != in->dev || fst.st_ino != in->ino) {
		close(fd);
		return -EAGAIN;
	}
	in->fd = fd;
	if (in->dev == fs->pool_dev)
		in->fh = handle_of(fd);
	in->pinned = in->fh == NULL;
	return 0;
}

int cf_inode_get(struct cf_fs *fs, int dirfd, const char *name, const struct stat *st,
		 int fdhint, struct cf_inode **out)
{
	struct cf_inode *in, *old;
	int r;

	pthread_mutex_lock(&fs->table_lock);
	in = find_locked(fs, st->st_dev, st->st_ino);
	if (in) {
		in->nlookup++;
		pthread_mutex_unlock(&fs->table_lock);
		*out = in;
		if (fdhint < 0)
			refresh_handle(fs, in, dirfd, name);
		return 0;
	}
	pthread_mutex_unlock(&fs->table_lock);

	in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->dev = st->st_dev;
	in->ino = st->st_ino;
	in->type = st->st_mode & S_IFMT;
	in->nlookup = 1;
	in->fd = -1;
	r = fdhint < 0 && st->st_dev == fs->pool_dev ? handle_by_name(in, dirfd, name) : -1;
	if (r == -EAGAIN) {
		free(in);
		return r;
	}
	if (r < 0) {
		r = open_new(fs, in, dirfd, name, fdhint);
		if (r < 0) {
			free(in);
			return r;
		}
	}
	pthread_mutex_lock(&fs->table_lock);
	old = find_locked(fs, st->st_dev, st->st_ino);
	if (old) {
		old->nlookup++;
		pthread_mutex_unlock(&fs->table_lock);
		if (in->fd >= 0)
			close(in->fd);
		free(in->fh);
		free(in);
		*out = old;
		return 0;
	}
	in->hnext = fs->buckets[bucket_of(fs, in->dev, in->ino)];
	fs->buckets[bucket_of(fs, in->dev, in->ino)] = in;
	fs->ninodes++;
	if (fs->ninodes > fs->trim_peak)
		fs->trim_peak = fs->ninodes;
	maybe_grow(fs);
	pthread_mutex_unlock(&fs->table_lock);

	if (!in->pinned && in->fd >= 0) {
		pthread_mutex_lock(&fs->fd_lock);
		lru_insert_locked(fs, in);
		fs->nfds++;
		evict_locked(fs);
		pthread_mutex_unlock(&fs->fd_lock);
	}
	*out = in;
	return 0;
}

/* Below this many inodes the heap is small: not worth a trim. */
#define TRIM_MIN_PEAK 4096

void cf_inode_forget(struct cf_fs *fs, struct cf_inode *in, uint64_t n)
{
	struct cf_inode **pp;
	bool trim;

	if (in == &fs->root)
		return;
	pthread_mutex_lock(&fs->table_lock);
	in->nlookup = in->nlookup > n ? in->nlookup - n : 0;
	if (in->nlookup) {
		pthread_mutex_unlock(&fs->table_lock);
		return;
	}
	for (pp = &fs->buckets[bucket_of(fs, in->dev, in->ino)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == in) {
			*pp = in->hnext;
			break;
		}
	}
	fs->ninodes--;
	/* glibc keeps freed inodes' memory for reuse: after the kernel forgot
	 * a whole walk (200k inodes: ~50 MiB) RSS stayed at its peak with 7 MiB
	 * in use (bench/ANALYSIS.md, memory suite).  Give it back once the
	 * count has fallen to a quarter of its peak. */
	trim = fs->trim_peak >= TRIM_MIN_PEAK && fs->ninodes <= fs->trim_peak / 4;
	if (trim)
		fs->trim_peak = fs->ninodes;
	pthread_mutex_unlock(&fs->table_lock);
	free_inode(fs, in);
	if (trim)
		malloc_trim(0);
}

int cf_fd_get(struct cf_fs *fs, struct cf_inode *in)
{
	int fd;

	pthread_mutex_lock(&fs->fd_lock);
	if (in->fd >= 0) {
		in->fd_users++;
		lru_touch_locked(fs, in);
		fd = in->fd;
		pthread_mutex_unlock(&fs->fd_lock);
		return fd;
	}
	pthread_mutex_unlock(&fs->fd_lock);

	fd = open_by_handle_at(fs->pool_fd, in->fh, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&fs->fd_lock);
	if (in->fd >= 0) {
		close(fd);
		lru_touch_locked(fs, in);
	} else {
		in->fd = fd;
		lru_insert_locked(fs, in);
		fs->nfds++;
	}
	in->fd_users++;
	fd = in->fd;
	evict_locked(fs);
	pthread_mutex_unlock(&fs->fd_lock);
	return fd;
}

void cf_fd_put(struct cf_fs *fs, struct cf_inode *in)
{
	pthread_mutex_lock(&fs->fd_lock);
	in->fd_users--;
	pthread_mutex_unlock(&fs->fd_lock);
}

int cf_open_inode(struct cf_fs *fs, struct cf_inode *in, int flags)
{
	char proc[64];
	int pfd, fd;

	flags |= O_CLOEXEC;
	if (in == &fs->root)
		fd = openat(fs->pool_fd, ".", flags);
	else if (in->fh)
		fd = open_by_handle_at(fs->pool_fd, in->fh, flags);
	else {
		pfd = cf_fd_get(fs, in);
		if (pfd < 0)
			return pfd;
		cowlink_fd_path(proc, sizeof(proc), pfd);
		fd = open(proc, flags);
		cf_fd_put(fs, in);
	}
	return fd < 0 ? -errno : fd;
}

void cf_inode_mark_unlinked(struct cf_fs *fs, dev_t dev, ino_t ino)
{
	struct cf_inode *in;

	pthread_mutex_lock(&fs->table_lock);
	in = find_locked(fs, dev, ino);
	if (in)
		atomic_store(&in->unlinked_here, true);
	pthread_mutex_unlock(&fs->table_lock);
}

void cf_log_stats(struct cf_fs *fs)
{
	struct mallinfo2 mi = mallinfo2();
	size_t ninodes, nbuckets;
	unsigned nfds;

	pthread_mutex_lock(&fs->table_lock);
	ninodes = fs->ninodes;
	nbuckets = fs->nbuckets;
	pthread_mutex_unlock(&fs->table_lock);
	pthread_mutex_lock(&fs->fd_lock);
	nfds = fs->nfds;
	pthread_mutex_unlock(&fs->fd_lock);
	/* uordblks: bytes malloc has handed out and not had back (every arena);
	 * arena + hblkhd: what malloc holds from the kernel for them. */
	fuse_log(FUSE_LOG_NOTICE,
		 COWFS_PROG ": stats: inodes %zu buckets %zu fds %u fd_cache %u "
		 "heap_in_use_kib %zu heap_held_kib %zu\n",
		 ninodes, nbuckets, nfds, fs->fd_cache_max, (mi.uordblks + mi.hblkhd) / 1024,
		 (mi.arena + mi.hblkhd) / 1024);
}
