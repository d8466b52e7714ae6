/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE low-level operations.  Everything works from per-inode fds
 * (never a prefixed backing path, so paths near PATH_MAX work), never
 * follows a guest symlink, and checks names for NAME_MAX itself.
 *
 * Files, directories, nodes and symlinks a guest creates are created with
 * the caller's fsuid/fsgid and supplementary groups set on the worker thread
 * (setfsuid/setfsgid and the raw setgroups syscall are per thread), and the
 * caller's umask (each worker thread unshares its fs_struct once), so the
 * backing filesystem applies the setgid-directory rule, default ACLs and
 * the umask exactly as it would natively.
 */
#include "cowfs/cowfs.h"

#include "cowlink/cowlink.h"
#include "hashdb/pool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

static struct cf_fs *FS(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static pid_t TID(fuse_req_t req)
{
	return fuse_req_ctx(req)->pid;
}

static void proc_path(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/* The pool's state, a guest vunify remove is taking apart, and the
 * temporary names of CoW operations in progress (or left by a crash): no
 * guest sees them or makes them. */
static bool hidden(fuse_ino_t parent, const char *name)
{
	return (parent == FUSE_ROOT_ID &&
		(strcmp(name, HASHDB_DIR) == 0 ||
		 strncmp(name, HASHDB_REMOVING_PREFIX, strlen(HASHDB_REMOVING_PREFIX)) == 0)) ||
	       cowlink_is_tmp_name(name, NULL);
}

/* 0, or the errno a name is refused with when creating it. */
static int check_new_name(fuse_ino_t parent, const char *name)
{
	if (strlen(name) > NAME_MAX)
		return ENAMETOOLONG;
	if (hidden(parent, name))
		return EPERM;
	return 0;
}

/* ---- stat ---------------------------------------------------------------- */

static int do_stat(int fd, const char *name, int flags, struct stat *st, bool *immutable)
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

/* Is @in a CoW link?  Known ones answer at once; a regular file that is
 * immutable or has several links is checked for the marker. */
static bool check_cow(struct cf_fs *fs, struct cf_inode *in, int dirfd, const char *name,
		      const struct stat *st, bool immutable)
{
	return cf_is_cow(fs, in, dirfd, name, st, immutable);
}

/* Fresh check (statx of the inode now), before changing an inode that was
 * not known as a CoW link: vunify may have made it one since the lookup,
 * and a crash may have left its flag cleared, so EPERM is no test. */
static bool is_cow_now(struct cf_fs *fs, struct cf_inode *in)
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
	r = do_stat(fd, "", AT_EMPTY_PATH, &st, &imm);
	cf_fd_put(fs, in);
	return r == 0 && check_cow(fs, in, -1, NULL, &st, imm);
}

/* Each path of a CoW link is logically a private file. */
static void fix_attr(struct cf_inode *in, struct stat *st)
{
	if (atomic_load(&in->cow))
		st->st_nlink = 1;
}

/* Refuse a change to a CoW link so that the VFS re-walks the path; the
 * walk's lookup of the path copies it up (cow.c). */
static void break_later(fuse_req_t req, struct cf_inode *in)
{
	struct cf_fs *fs = FS(req);

	cf_pending_add(fs, TID(req), in);
	fuse_reply_err(req, ESTALE);
}

/*
 * Look @name up in the directory @pfd.  When @may_break and the calling
 * thread has a pending break for the inode found, copy the path up first
 * and answer the copy.
 */
static int do_lookup(struct cf_fs *fs, fuse_req_t req, int pfd, const char *name,
		     struct fuse_entry_param *e, bool may_break)
{
	struct cf_inode *in;
	struct stat st;
	bool imm, cow;
	int r, tries = 0;

retry:
	r = do_stat(pfd, name, 0, &st, &imm);
	if (r < 0)
		return r;
	r = cf_inode_get(fs, pfd, name, &st, -1, &in);
	if (r == -EAGAIN && tries++ < 5)
		goto retry;
	if (r < 0)
		return r;
	cow = check_cow(fs, in, pfd, name, &st, imm);
	r = may_break ? cf_pending_take(fs, TID(req), in, cow) : 0;
	if (r < 0) {		/* this thread's copy-up of it just failed */
		cf_inode_forget(fs, in, 1);
		return r;
	}
	if (r > 0) {
		fuse_ino_t old = cf_nodeid(fs, in);

		r = cf_copy_up(fs, pfd, name, &st);
		cf_inode_forget(fs, in, 1);
		if (r < 0) {
			cf_pending_fail(fs, TID(req), st.st_dev, st.st_ino, r);
			return r;
		}
		/* The shared inode lost a link and its ctime changed. */
		fuse_lowlevel_notify_inval_inode(fs->se, old, -1, 0);
		may_break = false;
		goto retry;
	}
	fix_attr(in, &st);
	memset(e, 0, sizeof(*e));
	e->ino = cf_nodeid(fs, in);
	e->attr = st;
	e->attr_timeout = fs->attr_timeout;
	e->entry_timeout = fs->entry_timeout;
	return 0;
}

static void cf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cf_fs *fs = FS(req);
	struct cf_inode *pin = cf_inode(fs, parent);
	struct fuse_entry_param e;
	int pfd, r;

	if (strlen(name) > NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	if (hidden(parent, name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	pfd = cf_fd_get(fs, pin);
	if (pfd < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	r = do_lookup(fs, req, pfd, name, &e, true);
	cf_fd_put(fs, pin);
	if (r == -ENOENT) {
		/* A negative entry, cached like a positive one. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->entry_timeout;
		fuse_reply_entry(req, &e);
	} else if (r < 0) {
		fuse_reply_err(req, -r);
	} else {
		fuse_reply_entry(req, &e);
	}
}

static void cf_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct cf_fs *fs = FS(req);

	cf_inode_forget(fs, cf_inode(fs, ino), nlookup);
	fuse_reply_none(req);
}

static void cf_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct cf_fs *fs = FS(req);

	for (size_t i = 0; i < count; i++)
		cf_inode_forget(fs, cf_inode(fs, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void cf_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cf_fs *fs = FS(req);
	struct cf_inode *in = cf_inode(fs, ino);
	struct stat st;
	bool imm;
	int fd, r;

	if (fi) {
		r = do_stat((int)fi->fh, "", AT_EMPTY_PATH, &st, &imm);
	} else {
		fd = cf_fd_get(fs, in);
		if (fd < 0) {
			fuse_reply_err(req, -fd);
			return;
		}
		r = do_stat(fd, "", AT_EMPTY_PATH, &st, &imm);
		cf_fd_put(fs, in);
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	check_cow(fs, in, -1, NULL, &st, imm);
	fix_attr(in, &st);
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
	proc_path(proc, sizeof(proc), fd);
	return chmod(proc, mode) < 0 ? -errno : 0;
}

static int apply_setattr(int fd, int ofd, const struct stat *attr, int to_set)
{
	char proc[64];

	if (to_set & FUSE_SET_ATTR_MODE) {
		int r = ofd >= 0 ? (fchmod(ofd, attr->st_mode) < 0 ? -errno : 0)
				 : chmod_fd(fd, attr->st_mode);
		if (r < 0)
			return r;
	}
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t u = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t g = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		if (fchownat(fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		int r;

		if (ofd >= 0) {
			r = ftruncate(ofd, attr->st_size);
		} else {
			proc_path(proc, sizeof(proc), fd);
			r = truncate(proc, attr->st_size);
		}
		if (r < 0)
			return -errno;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };

		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		if (utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	return 0;
}

static void cf_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct cf_fs *fs = FS(req);
	struct cf_inode *in = cf_inode(fs, ino);
	int fd, r;

	cf_pending_cancel(fs, TID(req));
	if (is_cow_now(fs, in)) {
		/* Through an fd (fchmod, ftruncate on a read-only fd) there is
		 * no path to copy up: refused, as the flag would refuse it. */
		if (fi)
			fuse_reply_err(req, EPERM);
		else
			break_later(req, in);
		return;
	}
	fd = cf_fd_get(fs, in);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	r = apply_setattr(fd, fi ? (int)fi->fh : -1, attr, to_set);
	cf_fd_put(fs, in);
	if (r == -EPERM && !fi && is_cow_now(fs, in)) {
		break_later(req, in);
		return;
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	cf_getattr(req, ino, fi);
}

/* ---- acting as the caller ------------------------------------------------ */

#define CF_MAX_GROUPS 256

/* Umask is per fs_struct, shared by all threads unless unshared; a worker
 * thread unshares its own once, the first time it creates something. */
static _Thread_local bool thread_fs_unshared;

static int creds_enter(fuse_req_t req, bool with_umask)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	gid_t groups[CF_MAX_GROUPS];
	int n;

	if (with_umask) {
		if (!thread_fs_unshared) {
			if (unshare(CLONE_FS) < 0)
				return -errno;
			thread_fs_unshared = true;
		}
		umask(c->umask);
	}
	if (c->uid == 0 && c->gid == 0)
		return 0;
	n = fuse_req_getgroups(req, CF_MAX_GROUPS, groups);
	if (n < 0)
		n = 0;
	if (n > CF_MAX_GROUPS)
		n = CF_MAX_GROUPS;
	/* The raw syscall: glibc's setgroups() changes every thread. */
	if (syscall(SYS_setgroups, (size_t)n, groups) < 0)
		return -errno;
	setfsgid(c->gid);
	setfsuid(c->uid);
	return 1;
}

static void creds_leave(struct cf_fs *fs, int entered)
{
	int saved = errno;

	if (entered > 0) {
		setfsuid(0);
		setfsgid(0);
		syscall(SYS_setgroups, (size_t)fs->nroot_groups, fs->root_groups);
	}
	errno = saved;
}

/* ---- making names -------------------------------------------------------- */

static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      dev_t rdev, const char *link)
{
	struct cf_fs *fs = FS(req);
	struct cf_inode *pin = cf_inode(fs, parent);
	struct fuse_entry_param e;
	int pfd, r, cr;

	r = check_new_name(parent, name);
	if (r) {
		fuse_reply_err(req, r);
		return;
	}
	cf_pending_cancel(fs, TID(req));
	pfd = cf_fd_get(fs, pin);
	if (pfd < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	cr = creds_enter(req, !link);
	if (cr < 0) {
		r = cr;
		goto out;
	}
	if (link)
		r = symlinkat(link, pfd, name);
	else if (S_ISDIR(mode))
		r = mkdirat(pfd, name, mode);
	else
		r = mknodat(pfd, name, mode, rdev);
	r = r < 0 ? -errno : 0;
	creds_leave(fs, cr);
	if (r == 0)
		r = do_lookup(fs, req, pfd, name, &e, false);
out:
	cf_fd_put(fs, pin);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

static void cf_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	make_node(req, parent, name, mode, rdev, NULL);
}

static void cf_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_node(req, parent, name, S_IFDIR | mode, 0, NULL);
}

static void cf_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	make_node(req, parent, name, S_IFLNK, 0, link);
}

static void cf_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct cf_fs *fs = FS(req);
	struct cf_inode *in = cf_inode(fs, ino);
	char buf[PATH_MAX + 1];
	ssize_t n;
	int fd = cf_fd_get(fs, in);

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	n = readlinkat(fd, "", buf, sizeof(buf));
	n = n < 0 ? -errno : n;
	cf_fd_put(fs, in);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (n >= (ssize_t)sizeof(buf))
		fuse_reply_err(req, ENAMETOOLONG);
	else {
		buf[n] = '\0';
		fuse_reply_readlink(req, buf);
	}
}

/* ---- removing and renaming names ----------------------------------------- */

/* Is the open regular file @fd a CoW link: marked, and immutable or with
 * the links of a shared object (a crash may have left its flag cleared)? */
static bool fd_is_cow(int fd)
{
	char hex[COWLINK_HEX_LEN + 1];
	struct stat st;
	bool imm = false;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	if (st.st_nlink < 2 && (cowlink_is_immutable(fd, &imm) < 0 || !imm))
		return false;
	return cowlink_marker_get(fd, hex) == 0;
}

/* Open @name in @dirfd for the flag ioctls if it is a CoW link, else -1. */
static int open_if_cow(int dirfd, const char *name)
{
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (!fd_is_cow(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

struct name_op {
	int dirfd, newdirfd;
	const char *name, *newname;
	unsigned flags;
	bool rename;
};

static int run_name_op(void *p)
{
	struct name_op *a = p;
	int r;

	if (a->rename)
		r = renameat2(a->dirfd, a->name, a->newdirfd, a->newname, a->flags);
	else
		r = unlinkat(a->dirfd, a->name, (int)a->flags);
	return r < 0 ? -errno : 0;
}

/* Run a name operation; when it fails EPERM because a CoW link is involved
 * (immutable), run it again with the links' flags cleared under the pool's
 * flag lock, so the shared inode stays for the other guests. */
static int name_op(struct cf_fs *fs, struct name_op *a)
{
	int fds[2] = { -1, -1 }, r;

	r = run_name_op(a);
	if (r != -EPERM)
		return r;
	fds[0] = open_if_cow(a->dirfd, a->name);
	if (a->rename)
		fds[1] = open_if_cow(a->newdirfd, a->newname);
	if (fds[0] >= 0 || fds[1] >= 0)
		r = cf_with_mutable(fs, fds, 2, run_name_op, a);
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r;
}

static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name, int flags)
{
	struct cf_fs *fs = FS(req);
	struct cf_inode *pin = cf_inode(fs, parent);
	struct name_op a = { .name = name, .flags = (unsigned)flags };
	struct stat st;
	bool imm;
	int r;

	if (strlen(name) > NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	if (hidden(parent, name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	cf_pending_cancel(fs, TID(req));
	a.dirfd = cf_fd_get(fs, pin);
	if (a.dirfd < 0) {
		fuse_reply_err(req, -a.dirfd);
		return;
	}
	r = do_stat(a.dirfd, name, 0, &st, &imm);
	if (r == 0)
		r = name_op(fs, &a);
	cf_fd_put(fs, pin);
	if (r == 0 && st.st_nlink <= 1)
		cf_inode_mark_unlinked(fs, st.st_dev, st.st_ino);
	fuse_reply_err(req, -r);
}

static void cf_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, 0);
}

static void cf_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, AT_REMOVEDIR);
}

static void cf_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct cf_fs *fs = FS(req);
	struct cf_inode *pin = cf_inode(fs, parent), *npin = cf_inode(fs, newparent);
	struct name_op a = { .name = name, .newname = newname, .flags = flags, .rename = true };
	struct stat st;
	bool imm, had_target;
	int r;

	if (strlen(name) > NAME_MAX || strlen(newname) > NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	if (hidden(parent, name) || hidden(newparent, newname)) {
		fuse_reply_err(req, hidden(parent, name) ? ENOENT : EPERM);
		return;
	}
	cf_pending_cancel(fs, TID(req));
	a.dirfd = cf_fd_get(fs, pin);
	if (a.dirfd < 0) {
		fuse_reply_err(req, -a.dirfd);
		return;
	}
	a.newdirfd = cf_fd_get(fs, npin);
	if (a.newdirfd < 0) {
		cf_fd_put(fs, pin);
		fuse_reply_err(req, -a.newdirfd);
		return;
	}
	had_target = do_stat(a.newdirfd, newname, 0, &st, &imm) == 0;
	r = name_op(fs, &a);
	cf_fd_put(fs, npin);
	cf_fd_put(fs, pin);
	if (r == 0 && had_target && !(flags & RENAME_EXCHANGE) && st.st_nlink <= 1)
		cf_inode_mark_unlinked(fs, st.st_dev, st.st_ino);
	fuse_reply_err(req, -r);
}

static void cf_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct cf_fs *fs = FS(req);
	struct cf_inode *in = cf_inode(fs, ino), *npin = cf_inode(fs, newparent);
	struct fuse_entry_param e;
	int fd, nfd, r;

	r = check_new_name(newparent, newname);
	if (r) {
		fuse_reply_err(req, r);
		return;
	}
	cf_pending_cancel(fs, TID(req));
	/* A guest's own hard link to a CoW link: copy the source up first
	 * (through the re-walk of its path), then link the private copy. */
	if (is_cow_now(fs, in)) {
		break_later(req, in);
		return;
	}
	fd = cf_fd_get(fs, in);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	nfd = cf_fd_get(fs, npin);
	if (nfd < 0) {
		cf_fd_put(fs, in);
		fuse_reply_err(req, -nfd);
		return;
	}
	r = linkat(fd, "", nfd, newname, AT_EMPTY_PATH) < 0 ? -errno : 0;
	cf_fd_put(fs, in);
	if (r == -EPERM && is_cow_now(fs, in)) {
		cf_fd_put(fs, npin);
		break_later(req, in);
		return;
	}
	if (r == 0)
		r = do_lookup(fs, req, nfd, newname, &e, false);
	cf_fd_put(fs, npin);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

/* ---- files ----------------------------------------------------------------- */

static bool wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

/* Flags for the backing open: creation was handled already, and O_DIRECT
 * is the kernel's business on the FUSE side. */
static int backing_flags(int flags)
{
	return flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT);
}

/* O_TRUNC, applied only once the open file is known to be private. */
static int truncate_opened(int fd, int flags)
{
	char proc[64];

	if ((flags & O_ACCMODE) != O_RDONLY)
		return ftruncate(fd, 0) < 0 ? -errno : 0;
	proc_path(proc, sizeof(proc), fd);	/* O_RDONLY|O_TRUNC truncates too */
	return truncate(proc, 0) < 0 ? -errno : 0;
}

/*
 * An open for writing of an inode not known as a CoW link: open it without
 * O_TRUNC, then look at what was opened.  Marked with two links or more, it
 * is a CoW link after all (vunify made it one since the lookup, or a crash
 * left its flag cleared so the open was not refused): refuse and break.
 * Once we hold it open for writing, vunify's read lease on it is refused,
 * so it cannot become shared until we close it; only then is O_TRUNC done.
 * 0 and *fdp on success, 1 when the caller must break, negative errno.
 */
static int open_private(struct cf_fs *fs, struct cf_inode *in, int flags, int *fdp)
{
	int fd = cf_open_inode(fs, in, backing_flags(flags) & ~O_TRUNC), r;

	if (fd < 0)
		return fd == -EPERM && is_cow_now(fs, in) ? 1 : fd;
	if (cf_is_cow_fd(fs, in, fd)) {
		close(fd);
		return 1;
	}
	if (flags & O_TRUNC) {
		r = truncate_opened(fd, flags);
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	*fdp = fd;
	return 0;
}

static void cf_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cf_fs *fs = FS(req);
	struct cf_inode *in = cf_inode(fs, ino);
	bool wr = wants_write(fi->flags);
	struct stat st;
	int fd = -1, r;

	cf_pending_cancel(fs, TID(req));
	if (wr && atomic_load(&in->cow)) {
		break_later(req, in);
		return;
	}
	if (wr) {
		r = open_private(fs, in, fi->flags, &fd);
	} else {
		fd = cf_open_inode(fs, in, backing_flags(fi->flags));
		r = fd < 0 ? fd : 0;
	}
	if (r > 0) {
		break_later(req, in);
		return;
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	/* A write through a name that vunify has meanwhile replaced (the
	 * kernel still caches the old inode): make the kernel look the path
	 * up again, and copy up whatever CoW link it finds there. */
	if (wr && fstat(fd, &st) == 0 && st.st_nlink == 0 && !atomic_load(&in->unlinked_here)) {
		close(fd);
		cf_pending_add(fs, TID(req), NULL);
		fuse_reply_err(req, ESTALE);
		return;
	}
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1;
	fi->noflush = 1;	/* cf_flush has nothing to do: spare the request */
	if (fuse_reply_open(req, fi) < 0)
		close(fd);
}

static void cf_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct cf_fs *fs = FS(req);
	struct cf_inode *pin = cf_inode(fs, parent);
	struct fuse_entry_param e;
	int flags = backing_flags(fi->flags) | O_CREAT | O_NOFOLLOW | O_CLOEXEC;
	int pfd, fd = -1, r, cr;

	r = check_new_name(parent, name);
	if (r) {
		fuse_reply_err(req, r);
		return;
	}
	if (fi->flags & O_EXCL)
		flags |= O_EXCL;
	cf_pending_cancel(fs, TID(req));
	pfd = cf_fd_get(fs, pin);
	if (pfd < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	cr = creds_enter(req, true);
	if (cr < 0) {
		r = cr;
		goto out;
	}
	fd = openat(pfd, name, flags & ~O_TRUNC, mode);
	r = fd < 0 ? -errno : 0;
	creds_leave(fs, cr);
	if (r == 0 && !(fi->flags & O_EXCL) && fd_is_cow(fd)) {
		/* An existing CoW link whose flag a crash left cleared: it
		 * must not be written; copy it up like one that refused. */
		close(fd);
		fd = -1;
		r = -EPERM;
	}
	if (r == -EPERM && !(fi->flags & O_EXCL)) {
		/* O_CREAT on a name that exists as a CoW link (the kernel
		 * thought it absent): we know the path, so copy it up here. */
		struct stat st;
		int cfd = open_if_cow(pfd, name);

		if (cfd >= 0) {
			r = fstat(cfd, &st) < 0 ? -errno : 0;
			close(cfd);
			if (r == 0)
				r = cf_copy_up(fs, pfd, name, &st);
			if (r == 0)
				r = cr = creds_enter(req, true);
			if (r >= 0) {
				fd = openat(pfd, name, flags & ~(O_CREAT | O_TRUNC));
				r = fd < 0 ? -errno : 0;
				creds_leave(fs, cr);
			}
		}
	}
	if (r == 0 && (flags & O_TRUNC)) {
		/* As the caller: the kernel checked no write permission for a
		 * name it thought absent. */
		r = cr = creds_enter(req, false);
		if (r >= 0) {
			r = truncate_opened(fd, flags);
			creds_leave(fs, cr);
		}
	}
	if (r == 0) {
		struct stat st;
		bool imm;
		struct cf_inode *in;

		r = do_stat(fd, "", AT_EMPTY_PATH, &st, &imm);
		if (r == 0)
			r = cf_inode_get(fs, pfd, name, &st, fd, &in);
		if (r == 0) {
			memset(&e, 0, sizeof(e));
			e.ino = cf_nodeid(fs, in);
			e.attr = st;
			e.attr_timeout = fs->attr_timeout;
			e.entry_timeout = fs->entry_timeout;
		}
	}
out:
	cf_fd_put(fs, pin);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1;
	fi->noflush = 1;
	if (fuse_reply_create(req, &e, fi) < 0)
		close(fd);
}

static bool drops_cache(struct cf_fs *fs, struct cf_inode *in);

static void cf_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cf_fs *fs = FS(req);

	if (!wants_write(fi->flags) && drops_cache(fs, cf_inode(fs, ino)))
		posix_fadvise((int)fi->fh, 0, 0, POSIX_FADV_DONTNEED);
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void cf_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	/* Locks are the kernel's (no getlk/setlk/flock here) and ext4 has no
	 * close-time errors to report: nothing to do. */
	fuse_reply_err(req, 0);
}

static void cf_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int fd = (int)fi->fh, r;

	(void)ino;
	r = datasync ? fdatasync(fd) : fsync(fd);
	fuse_reply_err(req, r < 0 ? errno : 0);
}

/*
 * The read path, in one place so that FUSE passthrough can take over here
 * with a libfuse that has it.  Data goes to the kernel by splice.  For a
 * CoW link (or every file, -o drop_cache=all) the backing pages are dropped
 * once served: the FUSE page cache of the shared nodeid already holds them,
 * and keeping the ext4 copy too would cost a second copy per file.
 */
#define DROP_CHUNK ((off_t)2 << 20)

static bool drops_cache(struct cf_fs *fs, struct cf_inode *in)
{
	return fs->drop_cache == 2 || (fs->drop_cache == 1 && atomic_load(&in->cow));
}

static void cf_serve_read(struct cf_fs *fs, fuse_req_t req, struct cf_inode *in, int fd,
			  size_t size, off_t off)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	/* Spliced, but not moved: with SPLICE_F_MOVE the kernel lost part of
	 * what it had just read into the FUSE page cache (a 2 GiB CoW link
	 * read once, then again: 811 of its 2048 MiB were READ a second time;
	 * with copying, none). */
	fuse_reply_data(req, &buf, 0);
	if (drops_cache(fs, in)) {
		/* ext4 caches in large folios (up to 2 MiB) and DONTNEED drops
		 * only folios wholly inside the range, so drop whole 2 MiB
		 * chunks behind the read instead of exactly what was served;
		 * release() drops the tail. */
		off_t lo = (off & ~(DROP_CHUNK - 1)) - DROP_CHUNK;
		off_t hi = (off + (off_t)size) & ~(DROP_CHUNK - 1);

		if (lo < 0)
			lo = 0;
		if (hi > lo)
			posix_fadvise(fd, lo, hi - lo, POSIX_FADV_DONTNEED);
	}
}

static void cf_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct cf_fs *fs = FS(req);

	cf_serve_read(fs, req, cf_inode(fs, ino), (int)fi->fh, size, off);
}

static void cf_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off,
			 struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in_buf));
	ssize_t n;

	(void)ino;
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = (int)fi->fh;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in_buf, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void cf_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, fallocate((int)fi->fh, mode, off, len) < 0 ? errno : 0);
}

static void cf_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	loff_t in = off_in, out = off_out;
	ssize_t n;

	(void)ino_in;
	(void)ino_out;
	n = copy_file_range((int)fi_in->fh, &in, (int)fi_out->fh, &out, len, (unsigned)flags);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, (size_t)n);
}

static void cf_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	off_t r;

	(void)ino;
	r = lseek((int)fi->fh, off, whence);
	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, r);
}

static void cf_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	if (fstatvfs(FS(req)->pool_fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

/* ---- directories ----------------------------------------------------------- */

struct cf_dir {
	DIR *dp;
	struct dirent *entry;
	off_t offset;
};

/* Open a directory stream on @ino. */
static struct cf_dir *dir_open(struct cf_fs *fs, fuse_ino_t ino, int *err)
{
	struct cf_dir *d = calloc(1, sizeof(*d));
	int fd;

	if (!d) {
		*err = ENOMEM;
		return NULL;
	}
	fd = cf_open_inode(fs, cf_inode(fs, ino), O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		*err = -fd;
		free(d);
		return NULL;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		*err = errno;
		close(fd);
		free(d);
		return NULL;
	}
	return d;
}

static void dir_close(struct cf_dir *d)
{
	closedir(d->dp);
	free(d);
}

static void cf_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cf_fs *fs = FS(req);
	struct cf_dir *d;
	int fd;

	/* Without OPENDIR/RELEASEDIR (the kernel can do without, and then
	 * caches directories as with keep_cache + cache_readdir), a warm walk
	 * costs two requests per directory less; each uncached READDIR opens
	 * the directory itself. */
	if (fs->no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = cf_open_inode(fs, cf_inode(fs, ino), O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		free(d);
		fuse_reply_err(req, -fd);
		return;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		int e = errno;

		close(fd);
		free(d);
		fuse_reply_err(req, e);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) < 0) {
		closedir(d->dp);
		free(d);
	}
}

static bool is_dot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		       struct fuse_file_info *fi, bool plus)
{
	struct cf_fs *fs = FS(req);
	struct cf_dir *d = (struct cf_dir *)(uintptr_t)fi->fh, *own = NULL;
	char *buf = calloc(1, size), *p = buf;
	size_t rem = size;
	int err = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (!d) {	/* no OPENDIR: a stream for this request only */
		own = d = dir_open(fs, ino, &err);
		if (!d) {
			free(buf);
			fuse_reply_err(req, err);
			return;
		}
		if (offset)
			seekdir(d->dp, offset);
		d->offset = offset;
	}
	if (offset != d->offset) {
		seekdir(d->dp, offset);
		d->entry = NULL;
		d->offset = offset;
	}
	for (;;) {
		const char *name;
		off_t next;
		size_t sz;

		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				err = errno;
				break;
			}
		}
		name = d->entry->d_name;
		next = d->entry->d_off;
		if (hidden(ino, name)) {
			d->entry = NULL;
			d->offset = next;
			continue;
		}
		if (plus) {
			struct fuse_entry_param e;
			int r = 0;

			memset(&e, 0, sizeof(e));
			if (is_dot(name)) {
				e.attr.st_ino = d->entry->d_ino;
				e.attr.st_mode = (mode_t)d->entry->d_type << 12;
			} else {
				r = do_lookup(fs, req, dirfd(d->dp), name, &e, false);
			}
			if (r == -ENOENT) {	/* gone since readdir: skip it */
				d->entry = NULL;
				d->offset = next;
				continue;
			}
			if (r < 0) {
				err = -r;
				break;
			}
			sz = fuse_add_direntry_plus(req, p, rem, name, &e, next);
			if (sz > rem) {
				if (e.ino)
					cf_inode_forget(fs, cf_inode(fs, e.ino), 1);
				break;
			}
		} else {
			struct stat st = { .st_ino = d->entry->d_ino,
					   .st_mode = (mode_t)d->entry->d_type << 12 };

			sz = fuse_add_direntry(req, p, rem, name, &st, next);
			if (sz > rem)
				break;
		}
		p += sz;
		rem -= sz;
		d->entry = NULL;
		d->offset = next;
	}
	if (err && rem == size)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, size - rem);
	free(buf);
	if (own)
		dir_close(own);
}

static void cf_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void cf_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void cf_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cf_dir *d = (struct cf_dir *)(uintptr_t)fi->fh;

	(void)ino;
	if (d)
		dir_close(d);
	fuse_reply_err(req, 0);
}

static void cf_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct cf_dir *d = (struct cf_dir *)(uintptr_t)fi->fh;
	int fd, r;

	fd = d ? dirfd(d->dp) : cf_open_inode(FS(req), cf_inode(FS(req), ino), O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	r = datasync ? fdatasync(fd) : fsync(fd);
	r = r < 0 ? errno : 0;
	if (!d)
		close(fd);
	fuse_reply_err(req, r);
}

/* ---- xattrs -------------------------------------------------------------- */

static void cf_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct cf_fs *fs = FS(req);
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
	proc_path(proc, sizeof(proc), fd);
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

static void cf_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct cf_fs *fs = FS(req);
	struct cf_inode *in = cf_inode(fs, ino);
	char proc[64], *buf = NULL, *out = NULL;
	ssize_t n;
	size_t len = 0;
	int fd = cf_fd_get(fs, in);

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	proc_path(proc, sizeof(proc), fd);
	/* Always fetch the whole list: the marker is filtered out, so the
	 * size the guest sees is not the backing size. */
	for (;;) {
		n = listxattr(proc, NULL, 0);
		if (n <= 0)
			break;
		free(buf);
		buf = malloc((size_t)n);
		if (!buf) {
			n = -1;
			errno = ENOMEM;
			break;
		}
		n = listxattr(proc, buf, (size_t)n);
		if (n >= 0 || errno != ERANGE)
			break;
	}
	n = n < 0 ? -errno : n;
	cf_fd_put(fs, in);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		goto out;
	}
	out = malloc((size_t)n + 1);
	if (!out) {
		fuse_reply_err(req, ENOMEM);
		goto out;
	}
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1) {
		size_t l = strlen(buf + i) + 1;

		if (cowlink_xattr_is_private(buf + i))
			continue;
		memcpy(out + len, buf + i, l);
		len += l;
	}
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

static void change_xattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			 size_t size, int flags, bool remove)
{
	struct cf_fs *fs = FS(req);
	struct cf_inode *in = cf_inode(fs, ino);
	char proc[64];
	int fd, r;

	if (cowlink_xattr_is_private(name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	cf_pending_cancel(fs, TID(req));
	if (is_cow_now(fs, in)) {
		break_later(req, in);
		return;
	}
	fd = cf_fd_get(fs, in);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	proc_path(proc, sizeof(proc), fd);
	if (remove)
		r = removexattr(proc, name);
	else
		r = setxattr(proc, name, value, size, flags);
	r = r < 0 ? -errno : 0;
	cf_fd_put(fs, in);
	if (r == -EPERM && is_cow_now(fs, in)) {
		break_later(req, in);
		return;
	}
	fuse_reply_err(req, -r);
}

static void cf_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	change_xattr(req, ino, name, value, size, flags, false);
}

static void cf_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	change_xattr(req, ino, name, NULL, 0, 0, true);
}

/* ---- session ----------------------------------------------------------------- */

static void cf_init(void *userdata, struct fuse_conn_info *conn)
{
	struct cf_fs *fs = userdata;
	/* libfuse >= 3.17 does not turn PARALLEL_DIROPS on by itself any more
	 * (and 3.14 never sent it to the kernel). want_ext and the feature-flag
	 * helpers: the 32-bit want/capable are deprecated. */
	uint64_t want = FUSE_CAP_SPLICE_WRITE | FUSE_CAP_READDIRPLUS |
			FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_POSIX_ACL |
			FUSE_CAP_DONT_MASK | FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_ASYNC_READ |
			FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_CACHE_SYMLINKS;

	fuse_set_feature_flag(conn, want & conn->capable_ext);
	/* The kernel removes setuid/setgid on write and chown itself. */
	fuse_unset_feature_flag(conn, FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_WRITEBACK_CACHE);
	/* Always readdirplus: "auto" sends it only for a directory's first
	 * buffer (a page, some 25 entries), and every later entry then costs a
	 * LOOKUP of its own when stat'ed (measured: 27k lookups walking 60k
	 * entries). */
	fuse_unset_feature_flag(conn, FUSE_CAP_READDIRPLUS_AUTO);
	fuse_unset_feature_flag(conn, FUSE_CAP_SPLICE_READ);
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	fs->no_opendir = (conn->capable_ext & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
	/* The user's -o [no_]splice_*, readdirplus=, ... have the last word. */
	if (fs->conn_opts)
		fuse_apply_conn_info_opts(fs->conn_opts, conn);
	if (!(conn->capable_ext & FUSE_CAP_POSIX_ACL))
		fuse_log(FUSE_LOG_WARNING, COWFS_PROG ": kernel without FUSE POSIX ACL support: "
			 "ACLs are not enforced\n");
}

const struct fuse_lowlevel_ops cf_ops = {
	.init = cf_init,
	.lookup = cf_lookup,
	.forget = cf_forget,
	.forget_multi = cf_forget_multi,
	.getattr = cf_getattr,
	.setattr = cf_setattr,
	.readlink = cf_readlink,
	.mknod = cf_mknod,
	.mkdir = cf_mkdir,
	.symlink = cf_symlink,
	.unlink = cf_unlink,
	.rmdir = cf_rmdir,
	.rename = cf_rename,
	.link = cf_link,
	.open = cf_open,
	.create = cf_create,
	.read = cf_read,
	.write_buf = cf_write_buf,
	.flush = cf_flush,
	.release = cf_release,
	.fsync = cf_fsync,
	.opendir = cf_opendir,
	.readdir = cf_readdir,
	.readdirplus = cf_readdirplus,
	.releasedir = cf_releasedir,
	.fsyncdir = cf_fsyncdir,
	.statfs = cf_statfs,
	.setxattr = cf_setxattr,
	.getxattr = cf_getxattr,
	.listxattr = cf_listxattr,
	.removexattr = cf_removexattr,
	.fallocate = cf_fallocate,
	.copy_file_range = cf_copy_file_range,
	.lseek = cf_lseek,
};
