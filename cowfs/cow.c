/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Breaking CoW links.
 *
 * FUSE_OPEN and FUSE_SETATTR carry only a nodeid, and a CoW link's nodeid is
 * shared by every guest path that links it, so the request alone does not
 * say which path to copy up.  We answer such a request with ESTALE: the VFS
 * then walks the path once more with LOOKUP_REVAL, and the FUSE_LOOKUPs of
 * that walk come from the same thread id as the refused request.  A pending
 * break (thread id, st_dev, st_ino) recorded when refusing lets the lookup
 * of (parent, name) that resolves to that inode copy exactly that path up
 * and answer the copy, on which the VFS then retries the operation (once).
 * The key is the backing inode, not the nodeid: the kernel may forget a
 * nodeid whose lookup failed and look the inode up anew under another one
 * (pending.c keeps the table).
 *
 * Caveats (docs/cowfs.md): the final name is looked up twice (the
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
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

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

/* The marker of @in, by name when the caller has one (getxattrat, Linux
 * 6.13, needs no procfs walk), else through its O_PATH fd. */
static bool has_marker(struct cf_fs *fs, struct cf_inode *in, int dirfd, const char *name)
{
	char proc[64], val[COWLINK_HEX_LEN + 8];
	struct cf_xattr_args a = { (uintptr_t)val, sizeof(val) - 1, 0 };
	ssize_t n = -1;
	int fd;

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
		cowlink_fd_path(proc, sizeof(proc), fd);
		n = getxattr(proc, COWLINK_XATTR, val, sizeof(val) - 1);
		cf_fd_put(fs, in);
	}
	return marker_valid(val, n);
}

/* @s into @buf (of @len) as a log line may show a guest's name:
 * backslash, newline and other bytes that are not printable ASCII escaped
 * (\\, \n, \xNN, as vunify's messages), so no name can forge a line. */
static void escape_name(char *buf, size_t len, const char *s)
{
	size_t n = 0;

	for (const unsigned char *c = (const unsigned char *)s; *c && n + 5 < len; c++) {
		if (*c == '\\')
			n += (size_t)snprintf(buf + n, len - n, "\\\\");
		else if (*c == '\n')
			n += (size_t)snprintf(buf + n, len - n, "\\n");
		else if (*c < 0x20 || *c == 0x7f)
			n += (size_t)snprintf(buf + n, len - n, "\\x%02x", *c);
		else
			buf[n++] = (char)*c;
	}
	buf[n] = '\0';
}

/*
 * Where a log line names a guest's file: GUEST/PATH, relative to the pool
 * (as vunify's messages), escaped.  The directory's path comes from procfs,
 * so it is where the directory is now; "?" for an unknown one.
 */
static void guest_path(struct cf_fs *fs, int dirfd, const char *name, char *buf, size_t len)
{
	char proc[64], dir[PATH_MAX + NAME_MAX + 2];
	size_t plen = strlen(fs->pool_path);
	const char *rel = dir;
	ssize_t n;

	cowlink_fd_path(proc, sizeof(proc), dirfd);
	n = dirfd >= 0 ? readlink(proc, dir, PATH_MAX) : -1;
	if (n < 0)
		n = snprintf(dir, PATH_MAX, "?");
	dir[n] = '\0';
	if (strncmp(dir, fs->pool_path, plen) == 0 && dir[plen] == '/')
		rel = dir + plen + 1;
	else if (strcmp(dir, fs->pool_path) == 0)
		rel = "";
	snprintf(dir + n, sizeof(dir) - (size_t)n, "%s%s", *rel && name ? "/" : "",
		 name ? name : "");
	escape_name(buf, len, rel);
}

void cf_log_restored(void *ctx, int fd)
{
	char hex[COWLINK_HEX_LEN + 1] = "?";
	const char *where = ctx;
	struct stat st;

	cowlink_marker_get(fd, hex);
	if (fstat(fd, &st) < 0)
		st.st_ino = 0;
	fuse_log(FUSE_LOG_WARNING, COWFS_PROG ": %s%srestored the immutable flag of pool object "
		 "%s (inode %llu): it had been left cleared\n", where ? where : "",
		 where ? ": " : "", hex, (unsigned long long)st.st_ino);
}

/* A marked inode found without its flag: anything outside cowfs could
 * write into every guest's file.  Give the flag back under the pool's flag
 * lock (a toggle in progress finishes first) and say so, once. */
static void restore_flag(struct cf_fs *fs, struct cf_inode *in, int dirfd, const char *name)
{
	char where[4 * (PATH_MAX + NAME_MAX)];
	int fd = cf_open_inode(fs, in, O_RDONLY | O_NONBLOCK | O_NOCTTY), r;

	if (fd < 0)
		return;
	r = cowlink_restore_flag(cf_flag_fd(fs), fd);
	if (r > 0) {
		cf_metrics_flags_restored(&fs->metrics, 1);
		guest_path(fs, dirfd, name, where, sizeof(where));
		cf_log_restored(where, fd);
	} else if (r < 0) {
		fuse_log(FUSE_LOG_ERR, COWFS_PROG ": cannot restore the immutable flag of inode "
			 "%llu: %s\n", (unsigned long long)in->ino, strerror(-r));
	}
	close(fd);
}

bool cf_is_cow(struct cf_fs *fs, struct cf_inode *in, int dirfd, const char *name,
	       const struct stat *st, bool immutable)
{
	if (in->type != S_IFREG)
		return false;
	if (atomic_load(&in->cow))
		return true;
	/* The marker decides, not the flag: a crash may have left the flag
	 * cleared.  An object has its pool name and at least one guest path,
	 * so a single-link file without the flag is no CoW link. */
	if (!immutable && st->st_nlink < 2)
		return false;
	if (!has_marker(fs, in, dirfd, name))
		return false;
	atomic_store(&in->cow, true);
	if (!immutable)
		restore_flag(fs, in, dirfd, name);
	return true;
}

bool cf_is_cow_fd(struct cf_fs *fs, struct cf_inode *in, int fd)
{
	char hex[COWLINK_HEX_LEN + 1];
	struct stat st;
	bool imm = false;

	if (in && in->type != S_IFREG)
		return false;
	if (in && atomic_load(&in->cow))
		return true;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	/* A crash may have left an object's flag cleared, so a marked file
	 * with the links of a shared object is one too. */
	if (st.st_nlink < 2 && (cowlink_is_immutable(fd, &imm) < 0 || !imm))
		return false;
	if (cowlink_marker_get(fd, hex) < 0)
		return false;
	if (!in)
		return true;
	atomic_store(&in->cow, true);
	if (!imm && cowlink_is_immutable(fd, &imm) == 0 && !imm)
		restore_flag(fs, in, -1, NULL);
	return true;
}

bool cf_is_cow_now(struct cf_fs *fs, struct cf_inode *in)
{
	struct stat st;
	bool imm = false;
	int fd, r;

	if (in->type != S_IFREG)
		return false;
	if (atomic_load(&in->cow))
		return true;
	fd = cf_fd_get(fs, in);
	if (fd < 0)
		return false;
	r = cf_stat(fd, "", AT_EMPTY_PATH, &st, &imm);
	cf_fd_put(fs, in);
	return r == 0 && cf_is_cow(fs, in, -1, NULL, &st, imm);
}

void cf_break_later(fuse_req_t req, struct cf_inode *in)
{
	struct cf_fs *fs = cf_req_fs(req);

	cf_pending_add(&fs->pending, cf_req_tid(req), in->dev, in->ino, 0);
	cf_debug(fs, "pending break tid %d inode %llu\n", (int)cf_req_tid(req),
		 (unsigned long long)in->ino);
	cf_metrics_break(&fs->metrics);
	fuse_reply_err(req, ESTALE);
}

int cf_change_unless_cow(fuse_req_t req, struct cf_inode *in, int (*op)(int fd, void *arg),
			 void *arg)
{
	struct cf_fs *fs = cf_req_fs(req);
	int fd, r;

	cf_pending_cancel(&fs->pending, cf_req_tid(req));
	if (cf_is_cow_now(fs, in))
		goto refuse;
	fd = cf_fd_get(fs, in);
	if (fd < 0)
		return fd;
	r = op(fd, arg);
	cf_fd_put(fs, in);
	/* Its flag refused: vunify made it a CoW link since the check. */
	if (r == -EPERM && cf_is_cow_now(fs, in))
		goto refuse;
	return r;
refuse:
	cf_break_later(req, in);
	return 1;
}

/*
 * The flag lock is an flock, which excludes open file descriptions, not
 * threads: every worker thread takes it through its own fd, so two threads'
 * toggles (and their journal records) never interleave.
 */
static void close_flag_fd(void *p)
{
	close((int)(intptr_t)p - 1);
}

int cf_flag_fd(struct cf_fs *fs)
{
	intptr_t v = (intptr_t)pthread_getspecific(fs->flag_key);
	int fd, r;

	if (v)
		return (int)v - 1;
	r = cf_pool_state(fs);
	if (r < 0)
		return r;
	fd = openat(fs->pool_fd, HASHDB_DIR "/flags.lock", O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = pthread_setspecific(fs->flag_key, (void *)(intptr_t)(fd + 1));
	if (r != 0) {
		close(fd);
		return -r;
	}
	return fd;
}

int cf_flag_key_init(struct cf_fs *fs)
{
	return -pthread_key_create(&fs->flag_key, close_flag_fd);
}

/*
 * The pool's state, once it exists (vunify makes it; it may appear after
 * mount): recover the flags a crash left cleared, remove stale copy-up
 * names, open the staging directory.  Runs once; 0, or -errno (-ENOENT:
 * no state yet).
 */
int cf_pool_state(struct cf_fs *fs)
{
	int statefd = -1, lockfd = -1, r, n;
	bool scanned;

	if (atomic_load(&fs->state_done))
		return 0;
	pthread_mutex_lock(&fs->state_lock);
	r = 0;
	if (atomic_load(&fs->state_done))
		goto out;
	statefd = openat(fs->pool_fd, HASHDB_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (statefd < 0) {
		r = -errno;
		goto out;
	}
	lockfd = openat(statefd, "flags.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lockfd < 0) {
		r = -errno;
		goto out;
	}
	n = hashdb_recover_flags(statefd, lockfd, cf_log_restored, NULL, &scanned);
	if (n < 0)
		fuse_log(FUSE_LOG_ERR, COWFS_PROG ": recovering the immutable flags of %s: %s\n",
			 fs->pool_path, strerror(-n));
	if (n > 0)
		cf_metrics_flags_restored(&fs->metrics, (unsigned)n);
	if (n > 0)
		fuse_log(FUSE_LOG_WARNING, COWFS_PROG ": restored %d immutable flag%s left "
			 "cleared by an interrupted operation%s\n", n, n == 1 ? "" : "s",
			 scanned ? " (checked every object after a reboot)" : "");
	n = hashdb_clean_staging(statefd);
	if (n > 0)
		fuse_log(FUSE_LOG_INFO, COWFS_PROG ": removed %d stale copy-up temporar%s\n", n,
			 n == 1 ? "y" : "ies");
	/* Without it, copy-ups stage in the guest's directory (still unnamed
	 * until complete, and such names are hidden from guests). */
	if (mkdirat(statefd, HASHDB_STAGING, 0700) == 0 || errno == EEXIST)
		atomic_store(&fs->stage_fd, openat(statefd, HASHDB_STAGING, O_RDONLY | O_DIRECTORY |
							  O_NOFOLLOW | O_CLOEXEC));
	atomic_store(&fs->state_done, true);
out:
	pthread_mutex_unlock(&fs->state_lock);
	if (lockfd >= 0)
		close(lockfd);
	if (statefd >= 0)
		close(statefd);
	return r;
}

int cf_with_mutable(struct cf_fs *fs, const int *fds, int n, int (*op)(void *), void *arg)
{
	return cowlink_with_mutable_n(cf_flag_fd(fs), fds, n, op, arg);
}

pthread_mutex_t *cf_copy_lock(struct cf_fs *fs, dev_t dev, ino_t ino)
{
	return &fs->copy_locks[((uint64_t)ino ^ (uint64_t)dev) % CF_COPY_LOCKS];
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A failed copy-up, once per attempt (the kernel's second lookup of the
 * path is answered from the pending break, without another attempt). */
static void log_copy_up_failed(struct cf_fs *fs, int dirfd, const char *name, ino_t ino, int r)
{
	char where[4 * (PATH_MAX + NAME_MAX)];

	guest_path(fs, dirfd, name, where, sizeof(where));
	fuse_log(FUSE_LOG_ERR, COWFS_PROG ": %s: copy-up of pool inode %llu failed: %s; the "
		 "writer got the error, the shared file is unchanged\n", where,
		 (unsigned long long)ino, strerror(-r));
}

int cf_copy_up(struct cf_fs *fs, int dirfd, const char *name, const struct stat *expect)
{
	pthread_mutex_t *lk = cf_copy_lock(fs, expect->st_dev, expect->st_ino);
	struct stat st;
	bool tried = false;
	uint64_t t0;
	int src = -1, lockfd, r;

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
	t0 = now_ns();
	tried = true;
	lockfd = cf_flag_fd(fs);	/* first: it opens the staging directory */
	r = cowlink_copy_up(lockfd, atomic_load(&fs->stage_fd), src, dirfd, name, NULL);
	if (r == -ESTALE)
		r = 0;	/* another process copied it up first (guest mode) */
	else
		cf_metrics_copyup(&fs->metrics, r, (uint64_t)st.st_size, now_ns() - t0);
	cf_debug(fs, "copy-up of %s (inode %llu): %s\n", name, (unsigned long long)st.st_ino,
		 strerror(-r));
out:
	if (r < 0) {
		if (!tried)	/* failed before the copy: counted here */
			cf_metrics_copyup(&fs->metrics, r, 0, 0);
		log_copy_up_failed(fs, dirfd, name, expect->st_ino, r);
	}
	if (src >= 0)
		close(src);
	pthread_mutex_unlock(lk);
	return r;
}

int cf_open_if_cow(int dirfd, const char *name)
{
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (!cf_is_cow_fd(NULL, NULL, fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int run_name_op(void *p)
{
	struct cf_name_op *a = p;
	int r;

	if (a->rename)
		r = renameat2(a->dirfd, a->name, a->newdirfd, a->newname, a->flags);
	else
		r = unlinkat(a->dirfd, a->name, (int)a->flags);
	return r < 0 ? -errno : 0;
}

int cf_name_op(struct cf_fs *fs, struct cf_name_op *a)
{
	int fds[2] = { -1, -1 }, r;

	r = run_name_op(a);
	if (r != -EPERM)
		return r;
	fds[0] = cf_open_if_cow(a->dirfd, a->name);
	if (a->rename)
		fds[1] = cf_open_if_cow(a->newdirfd, a->newname);
	if (fds[0] >= 0 || fds[1] >= 0)
		r = cf_with_mutable(fs, fds, 2, run_name_op, a);
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r;
}
