/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Breaking CoW links.
 *
 * FUSE_OPEN and FUSE_SETATTR carry only a nodeid, and a CoW link's nodeid is
 * shared by every guest path that links it, so the request alone does not
 * say which path to copy up.  We answer such a request with ESTALE: the VFS
 * then walks the path once more with LOOKUP_REVAL, and the FUSE_LOOKUPs of
 * that walk come from the same thread id as the refused request.  A pending
 * break (thread id, nodeid) recorded when refusing lets the lookup of
 * (parent, name) that resolves to the nodeid copy exactly that path up and
 * answer the copy, on which the VFS then retries the operation (once).
 *
 * Measured caveats (docs/cowfs.md): the final name is looked up twice (the
 * second lookup finds the copy, so copy-up happens once); a refusal that is
 * never retried (fchmod on a read-only fd, reopen via /proc/self/fd) must
 * not leave a pending break behind, so they expire quickly and are dropped
 * by the thread's next non-lookup request; copy-up errors are the lookup's
 * answer, so the writer sees ENOSPC/EIO as themselves.
 */
#include "cowfs/cowfs.h"

#include "cowlink/cowlink.h"
#include "hashdb/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

/* The VFS retries within microseconds (15-400 us measured); a second is
 * generous even under a sanitizer build, short enough to not linger. */
#define PENDING_TTL_NS 1000000000L

#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif

struct cf_xattr_args {
	uint64_t value;
	uint32_t size;
	uint32_t flags;
};

static int marker_valid(char *val, ssize_t n)
{
	if (n != COWLINK_HEX_LEN)
		return 0;
	val[n] = '\0';
	return cowlink_hex_valid(val);
}

bool cf_is_cow(struct cf_fs *fs, struct cf_inode *in, int dirfd, const char *name, bool immutable)
{
	char proc[64], val[COWLINK_HEX_LEN + 8];
	struct cf_xattr_args a = { (uintptr_t)val, sizeof(val) - 1, 0 };
	ssize_t n = -1;
	int fd;

	if (in->type != S_IFREG)
		return false;
	if (atomic_load(&in->cow))
		return true;
	if (!immutable)
		return false;
	/* getxattrat (Linux 6.13) reads it by name, without the procfs walk
	 * that an O_PATH fd needs. */
	if (dirfd >= 0 && name) {
		n = syscall(SYS_getxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, COWLINK_XATTR, &a,
			    sizeof(a));
		if (n < 0 && errno != ENOSYS)
			return false;
	}
	if (n < 0) {
		fd = cf_fd_get(fs, in);
		if (fd < 0)
			return false;
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		n = getxattr(proc, COWLINK_XATTR, val, sizeof(val) - 1);
		cf_fd_put(fs, in);
	}
	if (!marker_valid(val, n))
		return false;
	atomic_store(&in->cow, true);
	return true;
}

static bool expired(const struct timespec *now, const struct timespec *dl)
{
	return now->tv_sec > dl->tv_sec || (now->tv_sec == dl->tv_sec && now->tv_nsec > dl->tv_nsec);
}

/* Caller holds pending_lock. */
static void drop_locked(struct cf_fs *fs, int i)
{
	fs->pending[i].tid = 0;
	atomic_fetch_sub(&fs->npending, 1);
}

static void pending_set(struct cf_fs *fs, pid_t tid, dev_t dev, ino_t ino, bool any, int err);

void cf_pending_add(struct cf_fs *fs, pid_t tid, const struct cf_inode *in)
{
	pending_set(fs, tid, in ? in->dev : 0, in ? in->ino : 0, !in, 0);
	cf_debug(fs, "pending break tid %d inode %llu\n", (int)tid,
		 in ? (unsigned long long)in->ino : 0ull);
}

void cf_pending_fail(struct cf_fs *fs, pid_t tid, dev_t dev, ino_t ino, int err)
{
	pending_set(fs, tid, dev, ino, false, err);
}

static void pending_set(struct cf_fs *fs, pid_t tid, dev_t dev, ino_t ino, bool any, int err)
{
	struct timespec now;
	int i, slot = -1;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&fs->pending_lock);
	for (i = 0; i < CF_PENDING_MAX; i++) {
		struct cf_pending *p = &fs->pending[i];

		if (p->tid && (p->tid == tid || expired(&now, &p->deadline)))
			drop_locked(fs, i);
		if (!p->tid && slot < 0)
			slot = i;
	}
	if (slot < 0)
		slot = (int)((unsigned)tid % CF_PENDING_MAX);	/* full: overwrite one */
	else
		atomic_fetch_add(&fs->npending, 1);
	fs->pending[slot].tid = tid;
	fs->pending[slot].dev = dev;
	fs->pending[slot].ino = ino;
	fs->pending[slot].any = any;
	fs->pending[slot].err = err;
	now.tv_nsec += PENDING_TTL_NS;
	now.tv_sec += now.tv_nsec / 1000000000L;
	now.tv_nsec %= 1000000000L;
	fs->pending[slot].deadline = now;
	pthread_mutex_unlock(&fs->pending_lock);
}

int cf_pending_take(struct cf_fs *fs, pid_t tid, struct cf_inode *in, bool cow)
{
	struct timespec now;
	int found = 0;

	if (!cow || atomic_load(&fs->npending) == 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&fs->pending_lock);
	for (int i = 0; i < CF_PENDING_MAX; i++) {
		struct cf_pending *p = &fs->pending[i];

		if (!p->tid)
			continue;
		if (expired(&now, &p->deadline)) {
			drop_locked(fs, i);
			continue;
		}
		if (p->tid == tid && (p->any || (p->dev == in->dev && p->ino == in->ino))) {
			found = p->err ? p->err : 1;
			drop_locked(fs, i);
		}
	}
	pthread_mutex_unlock(&fs->pending_lock);
	return found;
}

void cf_pending_cancel(struct cf_fs *fs, pid_t tid)
{
	if (atomic_load(&fs->npending) == 0)
		return;
	pthread_mutex_lock(&fs->pending_lock);
	for (int i = 0; i < CF_PENDING_MAX; i++)
		if (fs->pending[i].tid == tid)
			drop_locked(fs, i);
	pthread_mutex_unlock(&fs->pending_lock);
}

int cf_flag_fd(struct cf_fs *fs)
{
	int fd;

	pthread_mutex_lock(&fs->flag_fd_lock);
	if (fs->flag_fd < 0) {
		/* vunify creates the pool state; it may appear after mount. */
		fd = openat(fs->pool_fd, HASHDB_DIR "/flags.lock",
			    O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			fs->flag_fd = fd;
	}
	fd = fs->flag_fd;
	pthread_mutex_unlock(&fs->flag_fd_lock);
	return fd;
}

int cf_with_mutable(struct cf_fs *fs, const int *fds, int n, int (*op)(void *), void *arg)
{
	return cowlink_with_mutable_n(cf_flag_fd(fs), fds, n, op, arg);
}

pthread_mutex_t *cf_copy_lock(struct cf_fs *fs, dev_t dev, ino_t ino)
{
	return &fs->copy_locks[((uint64_t)ino ^ (uint64_t)dev) % CF_COPY_LOCKS];
}

int cf_copy_up(struct cf_fs *fs, int dirfd, const char *name, const struct stat *expect)
{
	pthread_mutex_t *lk = cf_copy_lock(fs, expect->st_dev, expect->st_ino);
	struct stat st;
	int src = -1, r;

	pthread_mutex_lock(lk);
	/* Another writer of this path may have copied it up meanwhile. */
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		goto out;
	}
	r = 0;
	if (st.st_dev != expect->st_dev || st.st_ino != expect->st_ino)
		goto out;
	src = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (src < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(src, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (st.st_dev != expect->st_dev || st.st_ino != expect->st_ino)
		goto out;
	r = cowlink_copy_up(cf_flag_fd(fs), src, dirfd, name, NULL);
	cf_debug(fs, "copy-up of %s (inode %llu): %s\n", name, (unsigned long long)st.st_ino,
		 strerror(-r));
out:
	if (src >= 0)
		close(src);
	pthread_mutex_unlock(lk);
	return r;
}
