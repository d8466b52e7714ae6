/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The inode table.  One struct cf_inode per backing (st_dev, st_ino), so every
 * hard link of a CoW link is one FUSE nodeid and one kernel page cache.
 *
 * libfuse's passthrough examples pin an O_PATH fd per inode the kernel
 * remembers; on a pool of many guests that exhausts the open-files limit
 * (docs/cowfs.md, "Inodes"; docs/benchmarks.md, memory).  We keep a file handle per inode instead
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

int cf_table_init(struct cf_fs *fs, unsigned fd_cache)
{
	struct stat st;
	int r;

	if (fstat(fs->root_fd, &st) < 0)
		return -errno;
	r = cf_itable_init(&fs->itable, 1 << 14);
	if (r < 0)
		return r;
	pthread_mutex_init(&fs->table_lock, NULL);
	pthread_mutex_init(&fs->fd_lock, NULL);
	cf_fdcache_init(&fs->fds, fd_cache);
	fs->root.dev = st.st_dev;
	fs->root.ino = st.st_ino;
	fs->root.type = S_IFDIR;
	fs->root.nlookup = 2;
	cf_fdcache_pin(&fs->root, fs->root_fd);
	return 0;
}
static void free_inode(struct cf_inode *in, void *arg)
{
	struct cf_fs *fs = arg;

	pthread_mutex_lock(&fs->fd_lock);
	cf_fdcache_drop(&fs->fds, in);
	pthread_mutex_unlock(&fs->fd_lock);
	free(in->handle);
	free(in);
}
void cf_table_destroy(struct cf_fs *fs)
{
	cf_itable_fini(&fs->itable, free_inode, fs);
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
	if (dev == fs->root.dev && ino == fs->root.ino)
		return &fs->root;
	return cf_itable_find(&fs->itable, dev, ino);
}

/* The file handle of @name in @dirfd (flags: AT_EMPTY_PATH for @dirfd
 * itself), in a buffer of MAX_HANDLE_SZ bytes; NULL with errno set. */
static struct file_handle *handle_at(int dirfd, const char *name, int flags)
{
	struct file_handle *h;
	int mnt, e;

	h = malloc(sizeof(*h) + MAX_HANDLE_SZ);
	if (!h)
		return NULL;
	h->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(dirfd, name, h, &mnt, flags) < 0) {
		e = errno;
		free(h);
		errno = e;
		return NULL;
	}
	return h;
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
		struct file_handle h;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} u;
	int fd, mnt;

	if (in->pinned || in == &fs->root || !in->handle)
		return;
	pthread_mutex_lock(&fs->fd_lock);
	fd = in->fd;
	pthread_mutex_unlock(&fs->fd_lock);
	if (fd >= 0)
		return;
	u.h.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(dirfd, name, &u.h, &mnt, 0) < 0)
		return;
	pthread_mutex_lock(&fs->fd_lock);
	/* In place (every handle buffer has MAX_HANDLE_SZ bytes): a thread
	 * reading it right now gets at worst a failing open. */
	if (u.h.handle_bytes != in->handle->handle_bytes ||
	    u.h.handle_type != in->handle->handle_type ||
	    memcmp(u.h.f_handle, in->handle->f_handle, u.h.handle_bytes) != 0)
		memcpy(in->handle, &u.h, sizeof(u.h) + u.h.handle_bytes);
	pthread_mutex_unlock(&fs->fd_lock);
}

/*
 * The cheap way in for a new inode of the pool's filesystem: its handle by
 * name, and the name stat'ed again to be sure the handle is of the inode
 * that is the key (the name may change under us).  No fd is opened; the
 * first operation that needs one opens it from the handle.  -EAGAIN: the
 * name changed; another -errno: no handle by name (open_new() then).
 */
static int handle_by_name(struct cf_inode *in, int dirfd, const char *name)
{
	struct stat st;
	int r = 0;

	in->handle = handle_at(dirfd, name, 0);
	if (!in->handle)
		return -errno;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	else if (st.st_dev != in->dev || st.st_ino != in->ino)
		r = -EAGAIN;
	if (r < 0) {
		free(in->handle);
		in->handle = NULL;
	}
	return r;
}

/* Open a new inode by name (or from @fdhint) and check it is still the one
 * that was stat'ed; take its handle, or pin the fd when there is none.
 * *fdp: the O_PATH fd to cache once the inode is in the table, or -1. */
static int open_new(struct cf_fs *fs, struct cf_inode *in, int dirfd, const char *name,
		    int fdhint, int *fdp)
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
	r = fstat(fd, &fst) < 0 ? -errno : 0;
	if (r == 0 && (fst.st_dev != in->dev || fst.st_ino != in->ino))
		r = -EAGAIN;
	if (r < 0) {
		close(fd);
		return r;
	}
	if (in->dev == fs->pool_dev)
		in->handle = handle_at(fd, "", AT_EMPTY_PATH);
	if (in->handle) {
		*fdp = fd;
	} else {
		cf_fdcache_pin(in, fd);
		*fdp = -1;
	}
	return 0;
}

static void free_new(struct cf_inode *in, int fd)
{
	if (fd >= 0)
		close(fd);
	if (in->fd >= 0)
		close(in->fd);
	free(in->handle);
	free(in);
}

/* A new entry for the inode @st, not in the table yet.  *fdp: an fd to
 * cache for it once it is, or -1. */
static int new_inode(struct cf_fs *fs, int dirfd, const char *name, const struct stat *st,
		     int fdhint, struct cf_inode **out, int *fdp)
{
	struct cf_inode *in = calloc(1, sizeof(*in));
	int r;

	*fdp = -1;
	if (!in)
		return -ENOMEM;
	in->dev = st->st_dev;
	in->ino = st->st_ino;
	in->type = st->st_mode & S_IFMT;
	in->nlookup = 1;
	in->fd = -1;
	if (fdhint < 0 && st->st_dev == fs->pool_dev) {
		r = handle_by_name(in, dirfd, name);
		if (r == -EAGAIN)
			goto fail;
	}
	/* Another filesystem, the caller's fd, or no handle by name. */
	if (!in->handle) {
		r = open_new(fs, in, dirfd, name, fdhint, fdp);
		if (r < 0)
			goto fail;
	}
	*out = in;
	return 0;
fail:
	free_new(in, -1);
	return r;
}

/* The entry of (@dev, @ino) with one more lookup counted, or NULL. */
static struct cf_inode *count_lookup(struct cf_fs *fs, dev_t dev, ino_t ino)
{
	struct cf_inode *in;

	pthread_mutex_lock(&fs->table_lock);
	in = find_locked(fs, dev, ino);
	if (in)
		in->nlookup++;
	pthread_mutex_unlock(&fs->table_lock);
	return in;
}

/* Add the new entry @in, unless another thread added one for its inode
 * meanwhile: then that one is counted and returned, and @in freed. */
static struct cf_inode *add_new(struct cf_fs *fs, struct cf_inode *in, int fd)
{
	struct cf_inode *old;

	pthread_mutex_lock(&fs->table_lock);
	old = find_locked(fs, in->dev, in->ino);
	if (old) {
		old->nlookup++;
		pthread_mutex_unlock(&fs->table_lock);
		free_new(in, fd);
		return old;
	}
	cf_itable_insert(&fs->itable, in);
	if (fs->itable.n > fs->trim_peak)
		fs->trim_peak = fs->itable.n;
	pthread_mutex_unlock(&fs->table_lock);
	if (fd >= 0) {
		pthread_mutex_lock(&fs->fd_lock);
		cf_fdcache_add(&fs->fds, in, fd);
		cf_fdcache_evict(&fs->fds);
		pthread_mutex_unlock(&fs->fd_lock);
	}
	return in;
}

int cf_inode_get(struct cf_fs *fs, int dirfd, const char *name, const struct stat *st,
		 int fdhint, struct cf_inode **out)
{
	struct cf_inode *in;
	int fd, r;

	in = count_lookup(fs, st->st_dev, st->st_ino);
	if (in) {
		if (fdhint < 0)
			refresh_handle(fs, in, dirfd, name);
		*out = in;
		return 0;
	}
	r = new_inode(fs, dirfd, name, st, fdhint, &in, &fd);
	if (r < 0)
		return r;
	*out = add_new(fs, in, fd);
	return 0;
}

/* Below this many inodes the heap is small: not worth a trim. */
#define TRIM_MIN_PEAK 4096

void cf_inode_forget(struct cf_fs *fs, struct cf_inode *in, uint64_t n)
{
	bool trim;

	if (in == &fs->root)
		return;
	pthread_mutex_lock(&fs->table_lock);
	in->nlookup = in->nlookup > n ? in->nlookup - n : 0;
	if (in->nlookup) {
		pthread_mutex_unlock(&fs->table_lock);
		return;
	}
	cf_itable_remove(&fs->itable, in);
	/* glibc keeps freed inodes' memory for reuse, so RSS stayed at its
	 * peak after the kernel forgot a whole walk (docs/cowfs.md, memory;
	 * bench/ANALYSIS.md).  Give it back once the count has fallen to a
	 * quarter of its peak. */
	trim = fs->trim_peak >= TRIM_MIN_PEAK && fs->itable.n <= fs->trim_peak / 4;
	if (trim)
		fs->trim_peak = fs->itable.n;
	pthread_mutex_unlock(&fs->table_lock);
	free_inode(in, fs);
	if (trim)
		malloc_trim(0);
}

int cf_fd_get(struct cf_fs *fs, struct cf_inode *in)
{
	int fd;

	pthread_mutex_lock(&fs->fd_lock);
	fd = cf_fdcache_borrow(&fs->fds, in);
	pthread_mutex_unlock(&fs->fd_lock);
	if (fd >= 0)
		return fd;
	fd = open_by_handle_at(fs->pool_fd, in->handle, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	pthread_mutex_lock(&fs->fd_lock);
	cf_fdcache_add(&fs->fds, in, fd);
	fd = cf_fdcache_borrow(&fs->fds, in);
	cf_fdcache_evict(&fs->fds);
	pthread_mutex_unlock(&fs->fd_lock);
	return fd;
}

void cf_fd_put(struct cf_fs *fs, struct cf_inode *in)
{
	pthread_mutex_lock(&fs->fd_lock);
	cf_fdcache_put(in);
	pthread_mutex_unlock(&fs->fd_lock);
}

int cf_open_inode(struct cf_fs *fs, struct cf_inode *in, int flags)
{
	char proc[64];
	int pfd, fd = -1;

	flags |= O_CLOEXEC;
	if (in == &fs->root)
		fd = openat(fs->root_fd, ".", flags);
	else if (in->handle)
		fd = open_by_handle_at(fs->pool_fd, in->handle, flags);
	/* A removed directory's handle is stale; a kept fd still opens it. */
	if (in != &fs->root && (!in->handle || (fd < 0 && errno == ESTALE))) {
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

void cf_inode_keep_fd(struct cf_fs *fs, dev_t dev, ino_t ino, int fd)
{
	struct cf_inode *in;

	pthread_mutex_lock(&fs->table_lock);
	in = find_locked(fs, dev, ino);
	if (in && in != &fs->root) {
		/* Under the table lock: a forget cannot free it meanwhile. */
		pthread_mutex_lock(&fs->fd_lock);
		cf_fdcache_keep(&fs->fds, in, fd);
		pthread_mutex_unlock(&fs->fd_lock);
		fd = -1;
	}
	pthread_mutex_unlock(&fs->table_lock);
	if (fd >= 0)
		close(fd);
}

void cf_log_stats(struct cf_fs *fs)
{
	struct mallinfo2 mi = mallinfo2();
	size_t ninodes, nbuckets;
	unsigned nfds;

	pthread_mutex_lock(&fs->table_lock);
	ninodes = fs->itable.n;
	nbuckets = fs->itable.nbuckets;
	pthread_mutex_unlock(&fs->table_lock);
	pthread_mutex_lock(&fs->fd_lock);
	nfds = fs->fds.n;
	pthread_mutex_unlock(&fs->fd_lock);
	/* uordblks: bytes malloc has handed out and not had back (every arena);
	 * arena + hblkhd: what malloc holds from the kernel for them. */
	fuse_log(FUSE_LOG_NOTICE,
		 COWFS_PROG ": stats: inodes %zu buckets %zu fds %u fd_cache %u "
		 "heap_in_use_kib %zu heap_held_kib %zu\n",
		 ninodes, nbuckets, nfds, fs->fds.max, (mi.uordblks + mi.hblkhd) / 1024,
		 (mi.arena + mi.hblkhd) / 1024);
}
