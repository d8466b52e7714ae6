/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "hashdb/pool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int open_subdir(int dirfd, const char *name, bool create, mode_t mode)
{
	int fd;

	if (create && mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int open_lockfile(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	return fd < 0 ? -errno : fd;
}

int hashdb_pool_open(const char *path, bool create, struct hashdb_pool *p)
{
	struct stat st;
	int r;

	hashdb_pool_init(p);
	/* The pool path comes from the operator, not from a guest: a symlink
	 * to the real pool directory is fine. */
	p->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0)
		return -errno;
	if (fstat(p->dirfd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	p->dev = st.st_dev;
	r = open_subdir(p->dirfd, HASHDB_DIR, create, 0700);
	if (r == -ENOENT && !create)
		return 0;	/* a pool nobody unified yet: no state */
	if (r < 0)
		goto fail;
	p->statefd = r;
	/* The state directory must be private, whatever the umask was. */
	if (create && fchmod(p->statefd, 0700) < 0) {
		r = -errno;
		goto fail;
	}
	/* A first run killed while making the state leaves some of it: read
	 * as what it is, a pool without objects or without caches. */
	r = open_subdir(p->statefd, "objects", create, 0700);
	if (r < 0 && !(r == -ENOENT && !create))
		goto fail;
	p->objfd = r < 0 ? -1 : r;
	r = open_subdir(p->statefd, "cache", create, 0700);
	if (r < 0 && !(r == -ENOENT && !create))
		goto fail;
	p->cachefd = r < 0 ? -1 : r;
	r = open_lockfile(p->statefd, "flags.lock");
	if (r < 0)
		goto fail;
	p->flagfd = r;
	/* Every start repairs what a crashed toggle left (cowlink/flags.c). */
	r = hashdb_recover_flags(p->statefd, p->flagfd, NULL, NULL, &p->flags_scanned);
	if (r < 0)
		goto fail;
	p->flags_restored = r;
	return 0;
fail:
	hashdb_pool_close(p);
	return r;
}

void hashdb_pool_init(struct hashdb_pool *p)
{
	memset(p, 0, sizeof(*p));
	p->dirfd = p->statefd = p->objfd = p->cachefd = p->lockfd = p->flagfd = -1;
}

void hashdb_pool_close(struct hashdb_pool *p)
{
	int *fds[] = { &p->dirfd, &p->statefd, &p->objfd, &p->cachefd, &p->lockfd, &p->flagfd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

bool hashdb_is_guest_name(const char *n)
{
	return strcmp(n, ".") && strcmp(n, "..") && strcmp(n, HASHDB_DIR) &&
	       strcmp(n, "lost+found") && !hashdb_is_transient_name(n);
}

int hashdb_opendir(int dirfd, const char *name, DIR **d)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	*d = fdopendir(fd);
	if (*d)
		return 0;
	r = -errno;
	close(fd);
	return r;
}

int hashdb_pool_lock(struct hashdb_pool *p, pid_t *holder)
{
	char buf[32];
	int fd = open_lockfile(p->statefd, "lock"), n;

	if (fd < 0)
		return fd;
	*holder = 0;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = -errno;
		ssize_t got = pread(fd, buf, sizeof(buf) - 1, 0);

		if (got > 0) {
			buf[got] = '\0';
			*holder = (pid_t)atoi(buf);
		}
		close(fd);
		return r;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) != n) {
		/* The pid is only for the message another run prints. */
	}
	p->lockfd = fd;
	return 0;
}

int hashdb_pool_clean_tmp(struct hashdb_pool *p)
{
	struct dirent *de;
	DIR *d;
	int n = 0, r;

	if (p->cachefd < 0)
		return 0;
	r = hashdb_opendir(p->cachefd, ".", &d);
	if (r < 0)
		return r;
	while ((de = readdir(d)))
		if (cowlink_is_tmp_name(de->d_name, NULL) && unlinkat(p->cachefd, de->d_name, 0) == 0)
			n++;
	closedir(d);
	return n;
}

/* ---- object names ------------------------------------------------------------ */

void hashdb_object_name(const char *hex, unsigned gen, char *buf, size_t len)
{
	if (gen == 0)
		snprintf(buf, len, "%.2s/%s", hex, hex);
	else
		snprintf(buf, len, "%.2s/%s.%u", hex, hex, gen);
}

int hashdb_object_parse_name(const char *name, char hex[COWLINK_HEX_LEN + 1], unsigned *gen)
{
	const char *g = name + COWLINK_HEX_LEN;
	unsigned long v = 0;

	if (strlen(name) < COWLINK_HEX_LEN)
		return -EINVAL;
	memcpy(hex, name, COWLINK_HEX_LEN);
	hex[COWLINK_HEX_LEN] = '\0';
	if (!cowlink_hex_valid(hex))
		return -EINVAL;
	*gen = 0;
	if (*g == '\0')
		return 0;
	if (*g++ != '.' || *g < '1' || *g > '9')
		return -EINVAL;
	for (; *g; g++) {
		if (*g < '0' || *g > '9' || (v = v * 10 + (unsigned)(*g - '0')) >= HASHDB_MAX_GEN)
			return -EINVAL;
	}
	*gen = (unsigned)v;
	return 0;
}

bool hashdb_shard_valid(const char *name)
{
	static const char hexd[] = "0123456789abcdef";

	return strlen(name) == 2 && strchr(hexd, name[0]) && strchr(hexd, name[1]);
}

bool hashdb_object_in_shard(const char *hex, const char *shard)
{
	return strlen(shard) == 2 && !strncmp(hex, shard, 2);
}

/* ---- objects ------------------------------------------------------------------ */

int hashdb_object_open(struct hashdb_pool *p, const char *hex, unsigned gen, struct stat *st)
{
	char name[64];
	int fd;

	if (p->objfd < 0)
		return -ENOENT;
	hashdb_object_name(hex, gen, name, sizeof(name));
	fd = openat(p->objfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (st && fstat(fd, st) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int hashdb_object_find_ino(struct hashdb_pool *p, const char *hex, dev_t dev, ino_t ino)
{
	char name[64];
	struct stat st;

	if (p->objfd < 0)
		return -ENOENT;
	for (unsigned gen = 0; gen < HASHDB_MAX_GEN; gen++) {
		hashdb_object_name(hex, gen, name, sizeof(name));
		if (fstatat(p->objfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				return -ENOENT;
			return -errno;
		}
		if (st.st_dev == dev && st.st_ino == ino)
			return (int)gen;
	}
	return -ENOENT;
}

int hashdb_object_adopt(struct hashdb_pool *p, int fd, const char *hex, unsigned gen)
{
	char name[64], *slash;
	int r;

	hashdb_object_name(hex, gen, name, sizeof(name));
	if (linkat(fd, "", p->objfd, name, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	/* No shard directory yet: the name's first component. */
	slash = strchr(name, '/');
	*slash = '\0';
	r = mkdirat(p->objfd, name, 0700) < 0 && errno != EEXIST ? -errno : 0;
	*slash = '/';
	if (r < 0)
		return r;
	return linkat(fd, "", p->objfd, name, AT_EMPTY_PATH) < 0 ? -errno : 0;
}

bool hashdb_same_observed(const struct stat *a, const struct stat *b)
{
	return a->st_mode == b->st_mode && a->st_uid == b->st_uid && a->st_gid == b->st_gid &&
	       a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

struct link_arg {
	int objfd, dirfd;
	const char *tmp, *name;
	const struct stat *want;
};

static int do_link_over(void *p)
{
	struct link_arg *a = p;
	struct stat st;
	int r;

	if (linkat(a->objfd, "", a->dirfd, a->tmp, AT_EMPTY_PATH) < 0)
		return -errno;
	if (renameat2(a->dirfd, a->tmp, a->dirfd, a->name, RENAME_EXCHANGE) < 0) {
		r = -errno;
		unlinkat(a->dirfd, a->tmp, 0);
		return r;
	}
	/* @tmp now names what @name was: the very inode, with the metadata
	 * that was compared (a chmod, chown or utimes does not break the
	 * read lease; one that landed since the check must not be lost). */
	if (fstatat(a->dirfd, a->tmp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_dev == a->want->st_dev && st.st_ino == a->want->st_ino &&
	    hashdb_same_observed(&st, a->want))
		return unlinkat(a->dirfd, a->tmp, 0) < 0 ? -errno : 0;
	/* Replaced under us: give the name back to whoever put it there. */
	if (renameat2(a->dirfd, a->tmp, a->dirfd, a->name, RENAME_EXCHANGE) < 0)
		return -errno;
	unlinkat(a->dirfd, a->tmp, 0);
	return -ESTALE;
}

int hashdb_object_link_over(struct hashdb_pool *p, int objfd, int dirfd, const char *tmp,
			    const char *name, const struct stat *want)
{
	struct link_arg a = { objfd, dirfd, tmp, name, want };

	return cowlink_with_mutable(p->flagfd, objfd, do_link_over, &a);
}

/* ---- flag recovery ---------------------------------------------------------- */

/* An object without its flag: give it back if its marker names it. */
static int scan_one(int shardfd, const char *name, cowlink_restored_fn fn, void *ctx)
{
	char hex[COWLINK_HEX_LEN + 1], want[COWLINK_HEX_LEN + 1];
	unsigned gen;
	struct statx x;
	int fd, r;

	if (statx(shardfd, name, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &x) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISREG(x.stx_mode) ||
	    ((x.stx_attributes_mask & STATX_ATTR_IMMUTABLE) &&
	     (x.stx_attributes & STATX_ATTR_IMMUTABLE)))
		return 0;
	fd = openat(shardfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = cowlink_marker_get(fd, hex);
	/* A marker that is not this object's name, or a name that is no
	 * object's, is verify's to report. */
	if (r < 0 || hashdb_object_parse_name(name, want, &gen) < 0 || strcmp(want, hex)) {
		close(fd);
		return 0;
	}
	r = cowlink_set_immutable(fd, true);
	if (r == 0 && fn)
		fn(ctx, fd);
	close(fd);
	return r < 0 ? r : 1;
}

static int scan_objects(int statefd, cowlink_restored_fn fn, void *ctx)
{
	struct dirent *de;
	DIR *d;
	int n = 0, r = hashdb_opendir(statefd, "objects", &d);

	if (r < 0)
		return r == -ENOENT ? 0 : r;
	while (r >= 0 && (de = readdir(d))) {
		struct dirent *oe;
		DIR *sd;

		if (de->d_name[0] == '.')
			continue;
		if (hashdb_opendir(dirfd(d), de->d_name, &sd) < 0)
			continue;	/* not a shard: verify reports it */
		while ((oe = readdir(sd))) {
			int one;

			if (oe->d_name[0] == '.')
				continue;
			one = scan_one(dirfd(sd), oe->d_name, fn, ctx);
			if (one < 0 && r == 0)
				r = one;
			else if (one > 0)
				n++;
		}
		closedir(sd);
	}
	closedir(d);
	return r < 0 ? r : n;
}

int hashdb_recover_flags(int statefd, int lockfd, cowlink_restored_fn fn, void *ctx,
			 bool *scanned)
{
	bool same = true;
	int n, m = 0, r;

	*scanned = false;
	if (flock(lockfd, LOCK_EX) < 0)
		return -errno;
	n = cowlink_flags_replay(lockfd, fn, ctx);
	if (n < 0)
		goto out;
	r = cowlink_flags_same_boot(lockfd, &same);
	if (r == 0 && !same) {
		m = scan_objects(statefd, fn, ctx);
		r = m < 0 ? m : cowlink_flags_mark_boot(lockfd);
		*scanned = r == 0;
	}
	n = r < 0 ? r : n + m;
out:
	r = errno;
	flock(lockfd, LOCK_UN);
	errno = r;
	return n;
}

int hashdb_clean_staging(int statefd)
{
	struct dirent *de;
	DIR *d;
	int n = hashdb_opendir(statefd, HASHDB_STAGING, &d);

	if (n < 0)
		return n == -ENOENT ? 0 : n;
	while ((de = readdir(d))) {
		pid_t pid;

		if (!cowlink_is_tmp_name(de->d_name, &pid))
			continue;
		if (pid != getpid() && kill(pid, 0) < 0 && errno == ESRCH &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}

bool hashdb_is_transient_name(const char *name)
{
	return strncmp(name, HASHDB_REMOVING_PREFIX, strlen(HASHDB_REMOVING_PREFIX)) == 0 ||
	       strncmp(name, HASHDB_CLONING_PREFIX, strlen(HASHDB_CLONING_PREFIX)) == 0;
}
