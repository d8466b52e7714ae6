/* SPDX-License-Identifier: GPL-2.0-or-later */
/* FUSE operations on attributes: getattr, setattr (a CoW link is broken
 * first) and the xattrs, with the trusted.cowlink marker hidden. */
#include "cowfs/ops.h"

#include "cowlink/cowlink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

int cf_stat(int fd, const char *name, int flags, struct stat *st, bool *immutable)
{
	struct statx x;

	if (statx(fd, name, flags | AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT,
		  STATX_BASIC_STATS, &x) < 0)
		return -errno;
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(x.stx_dev_major, x.stx_dev_minor);
	st->st_ino = x.stx_ino;
	st->st_mode = x.stx_mode;
	st->st_nlink = x.stx_nlink;
	st->st_uid = x.stx_uid;
	st->st_gid = x.stx_gid;
	st->st_rdev = makedev(x.stx_rdev_major, x.stx_rdev_minor);
	st->st_size = (off_t)x.stx_size;
	st->st_blksize = x.stx_blksize;
	st->st_blocks = (blkcnt_t)x.stx_blocks;
	st->st_atim = (struct timespec){ x.stx_atime.tv_sec, x.stx_atime.tv_nsec };
	st->st_mtim = (struct timespec){ x.stx_mtime.tv_sec, x.stx_mtime.tv_nsec };
	st->st_ctim = (struct timespec){ x.stx_ctime.tv_sec, x.stx_ctime.tv_nsec };
	*immutable = (x.stx_attributes_mask & STATX_ATTR_IMMUTABLE) &&
		     (x.stx_attributes & STATX_ATTR_IMMUTABLE);
	return 0;
}

/* Each path of a CoW link is logically a private file. */
void cf_fix_attr(struct cf_inode *in, struct stat *st)
{
	if (atomic_load(&in->cow))
		st->st_nlink = 1;
}

void cf_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_inode *in = cf_inode(fs, ino);
	struct stat st;
	bool imm;
	int fd, r;

	if (fi) {
		r = cf_stat(cf_fh_fd(fi), "", AT_EMPTY_PATH, &st, &imm);
	} else {
		fd = cf_fd_get(fs, in);
		if (fd < 0) {
			fuse_reply_err(req, -fd);
			return;
		}
		r = cf_stat(fd, "", AT_EMPTY_PATH, &st, &imm);
		cf_fd_put(fs, in);
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	cf_is_cow(fs, in, -1, NULL, &st, imm);
	cf_fix_attr(in, &st);
	fuse_reply_attr(req, &st, fs->attr_timeout);
}

/* ---- setattr ------------------------------------------------------------- */

static int chmod_fd(int fd, mode_t mode)
{
	char proc[64];

	if (syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOSYS)
		return -errno;
	cowlink_fd_path(proc, sizeof(proc), fd);
	return chmod(proc, mode) < 0 ? -errno : 0;
}

/*
 * HANDLE_KILLPRIV_V2 (session.c) leaves to the filesystem what the VFS does
 * for ext4 when a caller without CAP_FSETID writes or truncates: setuid
 * goes, and setgid where the group may execute.  The daemon holds
 * CAP_FSETID, so ext4 would keep both on the daemon's write: the kernel
 * flags such a request and this removes them.  (File capabilities ext4
 * removes on any write, truncate or chown, the daemon's included.)
 */
int cf_kill_suidgid(int fd)
{
	mode_t kill = S_ISUID;
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return 0;
	if (st.st_mode & S_IXGRP)
		kill |= S_ISGID;
	if (!(st.st_mode & kill))
		return 0;
	return chmod_fd(fd, st.st_mode & 07777 & ~kill);
}

static int set_mode(int fd, int ofd, mode_t mode)
{
	if (ofd >= 0)
		return fchmod(ofd, mode) < 0 ? -errno : 0;
	return chmod_fd(fd, mode);
}

static int set_owner(int fd, const struct stat *attr, int to_set)
{
	uid_t u = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
	gid_t g = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

	return fchownat(fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

int cf_truncate(int fd, int wfd, off_t size)
{
	char proc[64];

	if (wfd >= 0)
		return ftruncate(wfd, size) < 0 ? -errno : 0;
	cowlink_fd_path(proc, sizeof(proc), fd);
	return truncate(proc, size) < 0 ? -errno : 0;
}

static int set_times(int fd, const struct stat *attr, int to_set)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };

	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		ts[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		ts[1] = attr->st_mtim;
	return utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* @fd: the inode's O_PATH fd; @ofd: the open file of an fd-based setattr,
 * or -1. */
static int apply_setattr(int fd, int ofd, const struct stat *attr, int to_set)
{
	int r = 0;

	if (to_set & FUSE_SET_ATTR_MODE)
		r = set_mode(fd, ofd, attr->st_mode);
	if (r == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		r = set_owner(fd, attr, to_set);
	if (r == 0 && (to_set & FUSE_SET_ATTR_SIZE))
		r = cf_truncate(fd, ofd, attr->st_size);
	/* The kernel's FATTR_KILL_SUIDGID (libfuse passes it in this bit):
	 * a truncate by a caller without CAP_FSETID, or a chown (which ext4
	 * has done already). */
	if (r == 0 && (to_set & FUSE_SET_ATTR_KILL_SUID))
		r = cf_kill_suidgid(ofd >= 0 ? ofd : fd);
	if (r == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)))
		r = set_times(fd, attr, to_set);
	return r;
}

struct setattr_args {
	const struct stat *attr;
	int to_set;
	int ofd;		/* the open file of an fd-based setattr, or -1 */
};

static int run_setattr(int fd, void *arg)
{
	struct setattr_args *a = arg;

	return apply_setattr(fd, a->ofd, a->attr, a->to_set);
}

void cf_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct setattr_args a = { attr, to_set, fi ? cf_fh_fd(fi) : -1 };
	int r;

	/* @fi is set only for ftruncate (and a failed extending direct write):
	 * the kernel sends the file only with ATTR_FILE, fchmod, fchown and
	 * futimens come without it, and O_TRUNC is done by the open
	 * (FUSE_CAP_ATOMIC_O_TRUNC).  Such an fd was opened for writing here,
	 * which open/create refuse on a CoW link, and while it is open vunify
	 * cannot make the file one (its read lease is refused).  So an fi
	 * never reaches a CoW link; an fd-based change through a read-only fd
	 * comes without fi and gets ESTALE like any other. */
	r = cf_change_unless_cow(req, cf_inode(fs, ino), run_setattr, &a);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (r == 0)
		cf_getattr(req, ino, fi);
}
/* ---- xattrs -------------------------------------------------------------- */

void cf_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_inode *in = cf_inode(fs, ino);
	char proc[64], *buf = NULL;
	ssize_t n;
	int fd;

	if (cowlink_xattr_is_private(name)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = cf_fd_get(fs, in);
	if (fd < 0) {
		free(buf);
		fuse_reply_err(req, -fd);
		return;
	}
	cowlink_fd_path(proc, sizeof(proc), fd);
	n = getxattr(proc, name, buf, size);
	n = n < 0 ? -errno : n;
	cf_fd_put(fs, in);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* The whole list of xattr names of @proc into *bufp (malloc'd): its length,
 * or -errno. */
static ssize_t list_all(const char *proc, char **bufp)
{
	char *buf = NULL;
	ssize_t n;

	*bufp = NULL;
	do {
		n = listxattr(proc, NULL, 0);
		if (n <= 0)
			break;
		free(buf);
		buf = malloc((size_t)n);
		if (!buf)
			return -ENOMEM;
		n = listxattr(proc, buf, (size_t)n);
	} while (n < 0 && errno == ERANGE);	/* it grew meanwhile */
	if (n < 0) {
		n = -errno;
		free(buf);
		return n;
	}
	*bufp = buf;
	return n;
}

/* Copy the names in @list (@n bytes) to @out, but the private ones: the
 * length copied. */
static size_t public_names(const char *list, ssize_t n, char *out)
{
	size_t len = 0;

	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1) {
		size_t l = strlen(list + i) + 1;

		if (cowlink_xattr_is_private(list + i))
			continue;
		memcpy(out + len, list + i, l);
		len += l;
	}
	return len;
}

void cf_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_inode *in = cf_inode(fs, ino);
	char proc[64], *buf = NULL, *out = NULL;
	ssize_t n;
	size_t len;
	int fd = cf_fd_get(fs, in);

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	cowlink_fd_path(proc, sizeof(proc), fd);
	/* Always fetch the whole list: the marker is filtered out, so the
	 * size the guest sees is not the backing size. */
	n = list_all(proc, &buf);
	cf_fd_put(fs, in);
	if (n >= 0 && !(out = malloc((size_t)n + 1)))
		n = -ENOMEM;
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		goto out;
	}
	len = public_names(buf, n, out);
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, out, len);
out:
	free(buf);
	free(out);
}

struct xattr_args {
	const char *name, *value;
	size_t size;
	int flags;
	bool remove;
	fuse_req_t req;
};

/*
 * Setting an access ACL sets the mode too, and ext4 then clears setgid
 * unless the caller is in the file's group or has CAP_FSETID
 * (posix_acl_update_mode).  The kernel tells a FUSE daemon so with
 * FUSE_SETXATTR_ACL_KILL_SGID, which libfuse's setxattr does not pass on;
 * the daemon itself has CAP_FSETID.  So the access ACL is changed as the
 * caller (fsuid, fsgid and groups; a non-root fsuid drops CAP_FSETID), and
 * the backing filesystem decides as it would natively.
 */
static int run_change_xattr(int fd, void *arg)
{
	struct xattr_args *a = arg;
	char proc[64];
	int r, cr = 0;

	if (!strcmp(a->name, "system.posix_acl_access")) {
		cr = cf_creds_enter(a->req, false);
		if (cr < 0)
			return cr;
	}
	cowlink_fd_path(proc, sizeof(proc), fd);
	if (a->remove)
		r = removexattr(proc, a->name);
	else
		r = setxattr(proc, a->name, a->value, a->size, a->flags);
	r = r < 0 ? -errno : 0;
	cf_creds_leave(cf_req_fs(a->req), cr);
	return r;
}

static void change_xattr(fuse_req_t req, fuse_ino_t ino, struct xattr_args *a)
{
	int r;

	if (cowlink_xattr_is_private(a->name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	r = cf_change_unless_cow(req, cf_inode(cf_req_fs(req), ino), run_change_xattr, a);
	if (r <= 0)
		fuse_reply_err(req, -r);
}
void cf_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags)
{
	struct xattr_args a = { name, value, size, flags, false, req };

	change_xattr(req, ino, &a);
}

void cf_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct xattr_args a = { .name = name, .remove = true, .req = req };

	change_xattr(req, ino, &a);
}
