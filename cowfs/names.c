/* SPDX-License-Identifier: GPL-2.0-or-later */
/* FUSE operations on names: lookup and forget, making, linking, removing
 * and renaming names, reading symlinks.  The CoW policy (breaking on
 * lookup, flags around unlink/rename) is cow.c's. */
#include "cowfs/ops.h"

#include "cowlink/cowlink.h"
#include "hashdb/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The pool's state, a guest vunify remove is taking apart, and the
 * temporary names of CoW operations in progress (or left by a crash): no
 * guest sees them or makes them. */
bool cf_hidden(fuse_ino_t parent, const char *name)
{
	return (parent == FUSE_ROOT_ID &&
		(strcmp(name, HASHDB_DIR) == 0 ||
		 strncmp(name, HASHDB_REMOVING_PREFIX, strlen(HASHDB_REMOVING_PREFIX)) == 0)) ||
	       cowlink_is_tmp_name(name, NULL);
}

/* 0, or the errno a name is refused with when creating it. */
int cf_check_new_name(fuse_ino_t parent, const char *name)
{
	if (strlen(name) > NAME_MAX)
		return ENAMETOOLONG;
	if (cf_hidden(parent, name))
		return EPERM;
	return 0;
}

/*
 * Look @name up in the directory @pfd.  When @may_break and the calling
 * thread has a pending break for the inode found, copy the path up first
 * and answer the copy.
 */
int cf_lookup_entry(struct cf_fs *fs, fuse_req_t req, int pfd, const char *name,
		     struct fuse_entry_param *e, bool may_break)
{
	struct cf_inode *in;
	struct stat st;
	bool imm, cow;
	int r, tries = 0;

retry:
	r = cf_stat(pfd, name, 0, &st, &imm);
	if (r < 0)
		return r;
	r = cf_inode_get(fs, pfd, name, &st, -1, &in);
	if (r == -EAGAIN && tries++ < 5)
		goto retry;
	if (r < 0)
		return r;
	cow = cf_is_cow(fs, in, pfd, name, &st, imm);
	r = may_break && cow ? cf_pending_take(&fs->pending, cf_req_tid(req), in->dev, in->ino) : 0;
	if (r < 0) {		/* this thread's copy-up of it just failed */
		cf_inode_forget(fs, in, 1);
		return r;
	}
	if (r > 0) {
		fuse_ino_t old = cf_nodeid(fs, in);

		r = cf_copy_up(fs, pfd, name, &st);
		cf_inode_forget(fs, in, 1);
		if (r < 0) {
			cf_pending_add(&fs->pending, cf_req_tid(req), st.st_dev, st.st_ino, r);
			return r;
		}
		/* The shared inode lost a link and its ctime changed. */
		fuse_lowlevel_notify_inval_inode(fs->se, old, -1, 0);
		may_break = false;
		goto retry;
	}
	cf_fix_attr(in, &st);
	memset(e, 0, sizeof(*e));
	e->ino = cf_nodeid(fs, in);
	e->attr = st;
	e->attr_timeout = fs->attr_timeout;
	e->entry_timeout = fs->entry_timeout;
	return 0;
}

void cf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_inode *pin = cf_inode(fs, parent);
	struct fuse_entry_param e;
	int pfd, r;

	if (strlen(name) > NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	if (cf_hidden(parent, name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	pfd = cf_fd_get(fs, pin);
	if (pfd < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	r = cf_lookup_entry(fs, req, pfd, name, &e, true);
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

void cf_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct cf_fs *fs = cf_req_fs(req);

	cf_inode_forget(fs, cf_inode(fs, ino), nlookup);
	fuse_reply_none(req);
}

void cf_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct cf_fs *fs = cf_req_fs(req);

	for (size_t i = 0; i < count; i++)
		cf_inode_forget(fs, cf_inode(fs, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

/* ---- making names -------------------------------------------------------- */

static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      dev_t rdev, const char *link)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_inode *pin = cf_inode(fs, parent);
	struct fuse_entry_param e;
	int pfd, r, cr;

	r = cf_check_new_name(parent, name);
	if (r) {
		fuse_reply_err(req, r);
		return;
	}
	cf_pending_cancel(&fs->pending, cf_req_tid(req));
	pfd = cf_fd_get(fs, pin);
	if (pfd < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	cr = cf_creds_enter(req, !link);
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
	cf_creds_leave(fs, cr);
	if (r == 0)
		r = cf_lookup_entry(fs, req, pfd, name, &e, false);
out:
	cf_fd_put(fs, pin);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

void cf_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	make_node(req, parent, name, mode, rdev, NULL);
}

void cf_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_node(req, parent, name, S_IFDIR | mode, 0, NULL);
}

void cf_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	make_node(req, parent, name, S_IFLNK, 0, link);
}

void cf_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct cf_fs *fs = cf_req_fs(req);
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

static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name, int flags)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_inode *pin = cf_inode(fs, parent);
	struct cf_name_op a = { .name = name, .flags = (unsigned)flags };
	struct stat st;
	bool imm;
	int r;

	if (strlen(name) > NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	if (cf_hidden(parent, name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	cf_pending_cancel(&fs->pending, cf_req_tid(req));
	a.dirfd = cf_fd_get(fs, pin);
	if (a.dirfd < 0) {
		fuse_reply_err(req, -a.dirfd);
		return;
	}
	r = cf_stat(a.dirfd, name, 0, &st, &imm);
	if (r == 0)
		r = cf_name_op(fs, &a);
	cf_fd_put(fs, pin);
	if (r == 0 && st.st_nlink <= 1)
		cf_inode_mark_unlinked(fs, st.st_dev, st.st_ino);
	fuse_reply_err(req, -r);
}

void cf_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, 0);
}

void cf_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, AT_REMOVEDIR);
}

void cf_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_inode *pin = cf_inode(fs, parent), *npin = cf_inode(fs, newparent);
	struct cf_name_op a = { .name = name, .newname = newname, .flags = flags, .rename = true };
	struct stat st;
	bool imm, had_target;
	int r;

	if (strlen(name) > NAME_MAX || strlen(newname) > NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	if (cf_hidden(parent, name) || cf_hidden(newparent, newname)) {
		fuse_reply_err(req, cf_hidden(parent, name) ? ENOENT : EPERM);
		return;
	}
	cf_pending_cancel(&fs->pending, cf_req_tid(req));
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
	had_target = cf_stat(a.newdirfd, newname, 0, &st, &imm) == 0;
	r = cf_name_op(fs, &a);
	cf_fd_put(fs, npin);
	cf_fd_put(fs, pin);
	if (r == 0 && had_target && !(flags & RENAME_EXCHANGE) && st.st_nlink <= 1)
		cf_inode_mark_unlinked(fs, st.st_dev, st.st_ino);
	fuse_reply_err(req, -r);
}

void cf_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_inode *in = cf_inode(fs, ino), *npin = cf_inode(fs, newparent);
	struct fuse_entry_param e;
	int fd, nfd, r;

	r = cf_check_new_name(newparent, newname);
	if (r) {
		fuse_reply_err(req, r);
		return;
	}
	cf_pending_cancel(&fs->pending, cf_req_tid(req));
	/* A guest's own hard link to a CoW link: copy the source up first
	 * (through the re-walk of its path), then link the private copy. */
	if (cf_is_cow_now(fs, in)) {
		cf_break_later(req, in);
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
	if (r == -EPERM && cf_is_cow_now(fs, in)) {
		cf_fd_put(fs, npin);
		cf_break_later(req, in);
		return;
	}
	if (r == 0)
		r = cf_lookup_entry(fs, req, nfd, newname, &e, false);
	cf_fd_put(fs, npin);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}
