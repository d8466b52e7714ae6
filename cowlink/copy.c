/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Copy-up: a private copy of a CoW link with every piece of its metadata. */
#include "cowlink/cowlink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

int cowlink_tmp_name(char *buf, size_t len)
{
	uint64_t rnd;

	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -errno;
	if ((size_t)snprintf(buf, len, COWLINK_TMP_PREFIX "%d~%016llx~tmp", (int)getpid(),
			     (unsigned long long)rnd) >= len)
		return -ENAMETOOLONG;
	return 0;
}

bool cowlink_is_tmp_name(const char *name, pid_t *pid)
{
	const char *p = name + strlen(COWLINK_TMP_PREFIX);
	long v = 0;
	int i;

	if (strncmp(name, COWLINK_TMP_PREFIX, strlen(COWLINK_TMP_PREFIX)))
		return false;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > 1 << 30)
			return false;
	}
	if (*p++ != '~')
		return false;
	for (i = 0; i < 16; i++, p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	if (strcmp(p, "~tmp"))
		return false;
	if (pid)
		*pid = (pid_t)v;
	return true;
}

static int copy_plain(int srcfd, int dstfd, off_t off, off_t size)
{
	enum { CHUNK = 1 << 17 };
	char *buf = malloc(CHUNK);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while (off < size) {
		ssize_t n = pread(srcfd, buf, CHUNK, off), w;

		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		for (ssize_t done = 0; done < n; done += w) {
			w = pwrite(dstfd, buf + done, (size_t)(n - done), off + done);
			if (w < 0) {
				r = -errno;
				goto out;
			}
		}
		off += n;
	}
out:
	free(buf);
	return r;
}

int cowlink_copy_data(int srcfd, int dstfd, off_t size)
{
	off_t off = 0;

	while (off < size) {
		loff_t in = off, outo = off;
		ssize_t n = copy_file_range(srcfd, &in, dstfd, &outo, (size_t)(size - off), 0);

		if (n < 0) {
			if (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			    errno == EOPNOTSUPP)
				return copy_plain(srcfd, dstfd, off, size);
			return -errno;
		}
		if (n == 0)
			break;
		off += n;
	}
	return 0;
}

/* The kernel's limits (XATTR_LIST_MAX, XATTR_SIZE_MAX): buffers this big
 * never see ERANGE. */
#define XATTR_BUF 65536

int cowlink_strip_xattrs(int fd)
{
	char proc[COWLINK_FD_PATH_LEN], *names = malloc(XATTR_BUF);
	ssize_t n;
	int r = 0;

	if (!names)
		return -ENOMEM;
	cowlink_fd_path(proc, sizeof(proc), fd);
	n = listxattr(proc, names, XATTR_BUF);
	if (n < 0)
		r = errno == ENOTSUP ? 0 : -errno;
	for (ssize_t i = 0; i < n && r == 0; i += (ssize_t)strlen(names + i) + 1)
		if (removexattr(proc, names + i) < 0 && errno != ENODATA)
			r = -errno;
	free(names);
	return r;
}

int cowlink_copy_xattrs(int srcfd, int dstfd)
{
	char src[COWLINK_FD_PATH_LEN], dst[COWLINK_FD_PATH_LEN];
	char *names = malloc(XATTR_BUF), *val = malloc(XATTR_BUF);
	ssize_t n = 0, len;
	int r = 0;

	if (!names || !val) {
		r = -ENOMEM;
		goto out;
	}
	cowlink_fd_path(src, sizeof(src), srcfd);
	cowlink_fd_path(dst, sizeof(dst), dstfd);
	n = listxattr(src, names, XATTR_BUF);
	if (n < 0)
		r = errno == ENOTSUP ? 0 : -errno;	/* none to copy */
	for (ssize_t i = 0; i < n && r == 0; i += (ssize_t)strlen(names + i) + 1) {
		const char *name = names + i;

		if (cowlink_xattr_is_private(name))
			continue;
		len = getxattr(src, name, val, XATTR_BUF);
		if (len < 0)
			r = errno == ENODATA ? 0 : -errno;	/* removed meanwhile */
		else if (setxattr(dst, name, val, (size_t)len, 0) < 0)
			r = -errno;
	}
out:
	free(names);
	free(val);
	return r;
}

int cowlink_copy_meta(int srcfd, int dstfd)
{
	struct stat st;
	struct timespec ts[2];
	int r;

	if (fstat(srcfd, &st) < 0)
		return -errno;
	/* chown first: it clears setuid/setgid and security.capability, which
	 * the following steps then restore. */
	if (fchown(dstfd, st.st_uid, st.st_gid) < 0)
		return -errno;
	if (fchmod(dstfd, st.st_mode & 07777) < 0)
		return -errno;
	r = cowlink_copy_xattrs(srcfd, dstfd);
	if (r < 0)
		return r;
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	if (futimens(dstfd, ts) < 0)
		return -errno;
	return 0;
}

struct rename_arg {
	int fromfd, dirfd;
	const char *from, *to;
	const struct stat *src;
};

/* Under the flag lock, every name of a CoW link changes only under that
 * lock (the flag refuses it otherwise), so the check and the rename are
 * one step for every other process: a second copy-up of the same path (a
 * cowfs serving the guest alone beside the pool's cowfs, vunify split)
 * that lost the race must not replace the winner's copy, which may have
 * been written to already. */
static int do_rename(void *p)
{
	struct rename_arg *a = p;
	struct stat st;

	if (fstatat(a->dirfd, a->to, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (st.st_dev != a->src->st_dev || st.st_ino != a->src->st_ino)
		return -ESTALE;
	return renameat(a->fromfd, a->from, a->dirfd, a->to) < 0 ? -errno : 0;
}

/* Give the unnamed O_TMPFILE @fd the name @tmp in @dirfd. */
static int name_tmpfile(int fd, int dirfd, const char *tmp)
{
	char proc[64];

	if (linkat(fd, "", dirfd, tmp, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOENT && errno != EPERM)
		return -errno;
	/* Without CAP_DAC_READ_SEARCH: through procfs. */
	cowlink_fd_path(proc, sizeof(proc), fd);
	return linkat(AT_FDCWD, proc, dirfd, tmp, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
}

int cowlink_copy_up(int lockfd, int stagefd, int srcfd, int dirfd, const char *name, int *newfd)
{
	char tmp[64];
	struct stat st;
	struct rename_arg ra;
	bool named = false;
	int fd = -1, r;

	if (stagefd < 0)
		stagefd = dirfd;
	if (fstat(srcfd, &st) < 0)
		return -errno;
	r = cowlink_tmp_name(tmp, sizeof(tmp));
	if (r < 0)
		return r;
	/* Unnamed until complete: a crash leaves nothing to see or clean. */
	fd = openat(stagefd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
		/* A filesystem without O_TMPFILE: a named temporary. */
		fd = openat(stagefd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		named = fd >= 0;
	}
	if (fd < 0)
		return -errno;
	r = cowlink_copy_data(srcfd, fd, st.st_size);
	r = r ?: cowlink_copy_meta(srcfd, fd);
	if (r == 0 && !named) {
		r = name_tmpfile(fd, stagefd, tmp);
		named = r == 0;
	}
	if (r < 0)
		goto fail;
	/* Renaming over a name of the immutable CoW link needs its flag off;
	 * over an existing file, ext4 also flushes the copy's data first
	 * (auto_da_alloc), so a power cut shows the old file or the copy. */
	ra = (struct rename_arg){ stagefd, dirfd, tmp, name, &st };
	r = cowlink_with_mutable(lockfd, srcfd, do_rename, &ra);
	if (r < 0)
		goto fail;
	if (newfd)
		*newfd = fd;
	else
		close(fd);
	return 0;
fail:
	if (named)
		unlinkat(stagefd, tmp, 0);
	close(fd);
	return r;
}

int cowlink_dir_mtime(int dirfd, struct timespec *mtime)
{
	struct stat st;

	if (fstat(dirfd, &st) < 0)
		return -errno;
	*mtime = st.st_mtim;
	return 0;
}

int cowlink_dir_mtime_restore(int dirfd, const struct timespec *mtime)
{
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, *mtime };
	struct stat st;

	if (fstat(dirfd, &st) < 0)
		return -errno;
	if (st.st_mtim.tv_sec == mtime->tv_sec && st.st_mtim.tv_nsec == mtime->tv_nsec)
		return 0;
	return futimens(dirfd, ts) < 0 ? -errno : 0;
}
