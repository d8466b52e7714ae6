/* SPDX-License-Identifier: GPL-2.0-or-later */
/* FUSE operations on open files: open and create (a write never reaches a
 * CoW link), the read path, write, release, fsync and the fd-based calls. */
#include "cowfs/ops.h"

#include "cowlink/cowlink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* O_TRUNC, applied only once the open file is known to be private
 * (O_RDONLY|O_TRUNC truncates too). */
static int truncate_opened(int fd, int flags)
{
	return cf_truncate(fd, (flags & O_ACCMODE) != O_RDONLY ? fd : -1, 0);
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
static int open_private(struct cf_fs *fs, struct cf_inode *in, int flags, bool kill,
			int *fdp)
{
	int fd = cf_open_inode(fs, in, backing_flags(flags) & ~O_TRUNC), r;

	if (fd < 0)
		return fd == -EPERM && cf_is_cow_now(fs, in) ? 1 : fd;
	if (cf_is_cow_fd(fs, in, fd)) {
		close(fd);
		return 1;
	}
	if (flags & O_TRUNC) {
		r = truncate_opened(fd, flags);
		if (r == 0 && kill)
			r = cf_kill_suidgid(fd);
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	*fdp = fd;
	return 0;
}

/* A write through a name that vunify has meanwhile replaced (the kernel
 * still caches the old inode, whose last name is gone, not through us):
 * the kernel is to look the path up again, and the re-walk copies up
 * whatever CoW link it finds there. */
static bool stale_name(struct cf_inode *in, int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_nlink == 0 && !atomic_load(&in->unlinked_here);
}

/* Fill in @fi for the open file @fd of @in: passed through where the
 * mount does (passthrough.c), else served by cf_serve_read with the FUSE
 * page cache kept.  0 or -errno. */
static int open_file_info(fuse_req_t req, struct cf_inode *in, int fd,
			  struct fuse_file_info *fi)
{
	int r;

	fi->keep_cache = 1;
	fi->noflush = 1;	/* cf_flush has nothing to do: spare the request */
	r = cf_passthrough_attach(req, in, fd, fi);
	if (r < 0)
		return r;
	fi->fh = (uint64_t)fd | (fi->backing_id ? CF_FH_PASSTHROUGH : 0);
	return 0;
}

/* Close an open file of @in: its fd, and its share of the backing id. */
static void release_file(fuse_req_t req, struct cf_inode *in, struct fuse_file_info *fi)
{
	if (fi->fh & CF_FH_PASSTHROUGH)
		cf_passthrough_detach(req, in);
	close(cf_fh_fd(fi));
}

void cf_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_inode *in = cf_inode(fs, ino);
	bool wr = wants_write(fi->flags);
	int fd = -1, r;

	cf_pending_cancel(&fs->pending, cf_req_tid(req));
	if (wr && atomic_load(&in->cow)) {
		cf_break_later(req, in);
		return;
	}
	if (wr) {
		r = open_private(fs, in, fi->flags, fi->kill_suidgid, &fd);
	} else {
		fd = cf_open_inode(fs, in, backing_flags(fi->flags));
		r = fd < 0 ? fd : 0;
	}
	if (r > 0) {
		cf_break_later(req, in);
		return;
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (wr && stale_name(in, fd)) {
		close(fd);
		cf_pending_add_any(&fs->pending, cf_req_tid(req));
		cf_debug(fs, "pending break tid %d: any CoW link at the path\n",
			 (int)cf_req_tid(req));
		cf_metrics_break(&fs->metrics);
		fuse_reply_err(req, ESTALE);
		return;
	}
	r = open_file_info(req, in, fd, fi);
	if (r < 0) {
		close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	if (fuse_reply_open(req, fi) < 0)
		release_file(req, in, fi);
}

/* Open (or create) @name in @pfd as the caller.  The fd or -errno. */
static int open_as_caller(fuse_req_t req, int pfd, const char *name, int flags, mode_t mode)
{
	int cr = cf_creds_enter(req, true), fd;

	if (cr < 0)
		return cr;
	fd = openat(pfd, name, flags, mode);
	fd = fd < 0 ? -errno : fd;
	cf_creds_leave(cf_req_fs(req), cr);
	return fd;
}

/* O_CREAT on a name that exists as a CoW link (the kernel thought it
 * absent): we know the path, so copy it up here and open the copy.  The fd,
 * or -errno (-EPERM: no CoW link there). */
static int create_over_cow(fuse_req_t req, int pfd, const char *name, int flags)
{
	struct stat st;
	int cfd = cf_open_if_cow(pfd, name), r;

	if (cfd < 0)
		return -EPERM;
	r = fstat(cfd, &st) < 0 ? -errno : 0;
	close(cfd);
	if (r == 0)
		r = cf_copy_up(cf_req_fs(req), pfd, name, &st);
	if (r < 0)
		return r;
	return open_as_caller(req, pfd, name, flags & ~(O_CREAT | O_TRUNC), 0);
}

/* O_TRUNC as the caller: the kernel checked no write permission for a
 * name it thought absent. */
static int truncate_as_caller(fuse_req_t req, int fd, int flags, bool kill)
{
	int cr = cf_creds_enter(req, false), r;

	if (cr < 0)
		return cr;
	r = truncate_opened(fd, flags);
	cf_creds_leave(cf_req_fs(req), cr);
	if (r == 0 && kill)
		r = cf_kill_suidgid(fd);
	return r;
}

/* The file of a FUSE_CREATE: made, or, without O_EXCL, the existing one
 * when it is private (a CoW link is copied up first).  The fd or -errno. */
static int create_open(fuse_req_t req, int pfd, const char *name, int flags, mode_t mode,
		       bool kill)
{
	int fd = open_as_caller(req, pfd, name, flags & ~O_TRUNC, mode), r;

	if (fd >= 0 && !(flags & O_EXCL) && cf_is_cow_fd(cf_req_fs(req), NULL, fd)) {
		/* An existing CoW link whose flag a crash left cleared: it
		 * must not be written; copy it up like one that refused. */
		close(fd);
		fd = -EPERM;
	}
	if (fd == -EPERM && !(flags & O_EXCL))
		fd = create_over_cow(req, pfd, name, flags);
	if (fd < 0 || !(flags & O_TRUNC))
		return fd;
	r = truncate_as_caller(req, fd, flags, kill);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* The entry of the file just created or opened as @fd (counts a lookup). */
static int created_entry(struct cf_fs *fs, int pfd, const char *name, int fd,
			 struct fuse_entry_param *e)
{
	struct cf_inode *in;
	struct stat st;
	bool imm;
	int r;

	r = cf_stat(fd, "", AT_EMPTY_PATH, &st, &imm);
	if (r == 0)
		r = cf_inode_get(fs, pfd, name, &st, fd, &in);
	if (r == 0)
		cf_fill_entry(fs, in, &st, e);
	return r;
}

/* Answer a create or tmpfile: when @r is 0, the entry @e of @in (one lookup
 * counted) goes out with the open file @fd; else the error, and @fd (if
 * any) is closed. */
static void reply_created(fuse_req_t req, int r, int fd, struct cf_inode *in,
			  const struct fuse_entry_param *e, struct fuse_file_info *fi)
{
	if (r == 0) {
		r = open_file_info(req, in, fd, fi);
		if (r < 0)
			cf_inode_forget(cf_req_fs(req), in, 1);
	}
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	if (fuse_reply_create(req, e, fi) < 0)
		release_file(req, in, fi);
}

void cf_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_inode *pin = cf_inode(fs, parent);
	struct fuse_entry_param e;
	int flags = backing_flags(fi->flags) | (fi->flags & O_EXCL) | O_CREAT | O_NOFOLLOW |
		    O_CLOEXEC;
	int pfd, fd, r;

	pfd = cf_new_name_parent(req, parent, name);
	if (pfd < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	fd = create_open(req, pfd, name, flags, mode, fi->kill_suidgid);
	r = fd < 0 ? fd : created_entry(fs, pfd, name, fd, &e);
	cf_fd_put(fs, pin);
	reply_created(req, r, fd, r == 0 ? cf_inode(fs, e.ino) : NULL, &e, fi);
}

/*
 * O_TMPFILE: an unnamed file in the directory @parent, made as the caller
 * (owner, group, umask) in the backing directory.  A guest that later names
 * it with linkat(2) comes through cf_link like any other link.
 */
void cf_tmpfile(fuse_req_t req, fuse_ino_t parent, mode_t mode, struct fuse_file_info *fi)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_inode *pin = cf_inode(fs, parent), *in = NULL;
	struct fuse_entry_param e;
	struct stat st;
	int flags = (backing_flags(fi->flags) & ~O_TRUNC) | (fi->flags & O_EXCL) | O_TMPFILE |
		    O_CLOEXEC;
	int pfd, fd, r;
	bool imm;

	cf_pending_cancel(&fs->pending, cf_req_tid(req));
	pfd = cf_fd_get(fs, pin);
	if (pfd < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	fd = open_as_caller(req, pfd, ".", flags, mode);
	cf_fd_put(fs, pin);
	r = fd < 0 ? fd : cf_stat(fd, "", AT_EMPTY_PATH, &st, &imm);
	if (r == 0)
		r = cf_inode_get(fs, -1, "", &st, fd, &in);
	if (r == 0)
		cf_fill_entry(fs, in, &st, &e);
	reply_created(req, r, fd, in, &e, fi);
}

void cf_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	/* Locks are the kernel's (no getlk/setlk/flock here) and ext4 has no
	 * close-time errors to report: nothing to do. */
	fuse_reply_err(req, 0);
}

void cf_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int fd = cf_fh_fd(fi), r;

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
	return fs->drop_cache == CF_DROP_ALL ||
	       (fs->drop_cache == CF_DROP_COW && atomic_load(&in->cow));
}

static void cf_serve_read(struct cf_fs *fs, fuse_req_t req, struct cf_inode *in, int fd,
			  size_t size, off_t off)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	/* Spliced, but not moved: with SPLICE_F_MOVE the kernel lost part of
	 * what it had just read into the FUSE page cache, so a file read twice
	 * was partly READ again (docs/cowfs.md, "Caching and speed levers"). */
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

void cf_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	struct cf_fs *fs = cf_req_fs(req);

	cf_serve_read(fs, req, cf_inode(fs, ino), cf_fh_fd(fi), size, off);
}

void cf_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_inode *in = cf_inode(fs, ino);

	if (!(fi->fh & CF_FH_PASSTHROUGH) && !wants_write(fi->flags) && drops_cache(fs, in))
		posix_fadvise(cf_fh_fd(fi), 0, 0, POSIX_FADV_DONTNEED);
	release_file(req, in, fi);
	fuse_reply_err(req, 0);
}

void cf_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off,
		  struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in_buf));
	ssize_t n = 0;

	(void)ino;
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = cf_fh_fd(fi);
	out.buf[0].pos = off;
	/* A writer without CAP_FSETID (HANDLE_KILLPRIV_V2): first, as the
	 * VFS does. */
	if (fi->kill_suidgid)
		n = cf_kill_suidgid(cf_fh_fd(fi));
	if (n == 0)
		n = fuse_buf_copy(&out, in_buf, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/*
 * fallocate and copy_file_range come without the kernel's KILL_SUIDGID flag
 * (HANDLE_KILLPRIV_V2 flags writes, truncates and O_TRUNC opens only), yet
 * ext4 removes setuid/setgid on both for a caller without CAP_FSETID.  So
 * both run with the caller's fsuid, fsgid and groups: for a caller other
 * than root, that leaves the daemon's thread without CAP_FSETID and ext4
 * decides as it would for the caller.  The fds are open already, so no
 * permission is checked again.
 */
void cf_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		  struct fuse_file_info *fi)
{
	int cr = cf_creds_enter(req, false), r;

	(void)ino;
	if (cr < 0) {
		fuse_reply_err(req, -cr);
		return;
	}
	r = fallocate(cf_fh_fd(fi), mode, off, len) < 0 ? errno : 0;
	cf_creds_leave(cf_req_fs(req), cr);
	fuse_reply_err(req, r);
}

void cf_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			struct fuse_file_info *fi_out, size_t len, int flags)
{
	loff_t in = off_in, out = off_out;
	int cr = cf_creds_enter(req, false), err;
	ssize_t n;

	(void)ino_in;
	(void)ino_out;
	if (cr < 0) {
		fuse_reply_err(req, -cr);
		return;
	}
	/* As the caller: see cf_fallocate. */
	n = copy_file_range(cf_fh_fd(fi_in), &in, cf_fh_fd(fi_out), &out, len, (unsigned)flags);
	err = errno;
	cf_creds_leave(cf_req_fs(req), cr);
	if (n < 0)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, (size_t)n);
}

void cf_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	      struct fuse_file_info *fi)
{
	off_t r;

	(void)ino;
	r = lseek(cf_fh_fd(fi), off, whence);
	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, r);
}
