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

/* The pool's state, a guest vunify remove is taking apart or vunify clone
 * is building, and the temporary names of CoW operations in progress (or
 * left by a crash): no guest sees them or makes them.  In guest mode the
 * pool's names are above the root, and a guest's own top-level ".hashdb"
 * is just a name. */
bool cf_hidden(const struct cf_fs *fs, fuse_ino_t parent, const char *name)
{
	return (parent == FUSE_ROOT_ID && !fs->guest_mode &&
		(strcmp(name, HASHDB_DIR) == 0 ||
		 hashdb_is_transient_name(name))) ||
	       cowlink_is_tmp_name(name, NULL);
}

static int check_name(const struct cf_fs *fs, fuse_ino_t parent, const char *name,
		      int hidden_errno)
{
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	/* The VFS resolves them itself; one asked for anyway would lead out
	 * of the served root (the pool, in guest mode). */
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (cf_hidden(fs, parent, name))
		return -hidden_errno;
	return 0;
}

int cf_check_name(const struct cf_fs *fs, fuse_ino_t parent, const char *name)
{
	return check_name(fs, parent, name, ENOENT);
}

int cf_check_new_name(const struct cf_fs *fs, fuse_ino_t parent, const char *name)
{
	return check_name(fs, parent, name, EPERM);
}

int cf_new_name_parent(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cf_fs *fs = cf_req_fs(req);
	int r = cf_check_new_name(fs, parent, name);

	if (r < 0)
		return r;
	cf_pending_cancel(&fs->pending, cf_req_tid(req));
	return cf_fd_get(fs, cf_inode(fs, parent));
}

/* Stat @name in @pfd and find or add its inode, counting one lookup.  The
 * name may change between the two: a few tries. */
static int get_named(struct cf_fs *fs, int pfd, const char *name, struct stat *st, bool *imm,
		     struct cf_inode **out)
{
	int r, tries = 0;

	do {
		r = cf_stat(pfd, name, 0, st, imm);
		if (r < 0)
			return r;
		r = cf_inode_get(fs, pfd, name, st, -1, out);
	} while (r == -EAGAIN && tries++ < 5);
	return r;
}

/* If the calling thread has a pending break of the CoW link @in, found at
 * (@pfd, @name), copy that path up: 1 copied (look the name up again, and
 * @in's lookup is given back), 0 nothing pending, or -errno (which the
 * thread's next lookup of the inode answers too). */
static int break_pending(struct cf_fs *fs, fuse_req_t req, int pfd, const char *name,
			 struct cf_inode *in, const struct stat *st)
{
	pid_t tid = cf_req_tid(req);
	fuse_ino_t old = cf_nodeid(fs, in);
	int r = cf_pending_take(&fs->pending, tid, in->dev, in->ino);

	if (r > 0)
		r = cf_copy_up(fs, pfd, name, st);
	else if (r == 0)
		return 0;
	cf_inode_forget(fs, in, 1);
	if (r < 0) {
		cf_pending_add(&fs->pending, tid, st->st_dev, st->st_ino, r);
		return r;
	}
	/* The shared inode lost a link and its ctime changed. */
	fuse_lowlevel_notify_inval_inode(fs->se, old, -1, 0);
	return 1;
}

void cf_fill_entry(struct cf_fs *fs, struct cf_inode *in, const struct stat *st,
		   struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = cf_nodeid(fs, in);
	e->attr = *st;
	cf_fix_attr(in, &e->attr);
	e->attr_timeout = fs->attr_timeout;
	e->entry_timeout = fs->entry_timeout;
}

int cf_lookup_entry(struct cf_fs *fs, fuse_req_t req, int pfd, const char *name,
		    struct fuse_entry_param *e, bool may_break)
{
	struct cf_inode *in;
	struct stat st;
	bool imm, cow;
	int r;

	for (;;) {
		r = get_named(fs, pfd, name, &st, &imm, &in);
		if (r < 0)
			return r;
		cow = cf_is_cow(fs, in, pfd, name, &st, imm);
		if (!cow || !may_break)
			break;
		r = break_pending(fs, req, pfd, name, in, &st);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		may_break = false;	/* now the copy's lookup */
	}
	cf_fill_entry(fs, in, &st, e);
	return 0;
}

void cf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_inode *pin = cf_inode(fs, parent);
	struct fuse_entry_param e;
	int pfd, r;

	r = cf_check_name(cf_req_fs(req), parent, name);
	if (r < 0) {
		fuse_reply_err(req, -r);
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

	pfd = cf_new_name_parent(req, parent, name);
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

/* An O_PATH fd of the directory @name in @dirfd if it still is @st, else
 * -1: kept for the kernel once the directory is removed (cf_inode_keep_fd). */
static int open_victim_dir(int dirfd, const char *name, const struct stat *st)
{
	struct stat fst;
	int fd;

	if (!S_ISDIR(st->st_mode))
		return -1;
	fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && (fstat(fd, &fst) < 0 || fst.st_dev != st->st_dev || fst.st_ino != st->st_ino)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Run the unlink, rmdir or rename @a in @pin (and @npin for a rename) and
 * mark an inode whose last name it removed or replaced; a directory it
 * removed or replaced keeps an fd for a process that holds it open. */
static int do_name_op(fuse_req_t req, struct cf_inode *pin, struct cf_inode *npin,
		      struct cf_name_op *a)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct stat st;
	bool imm, victim;
	int r, vfd;

	cf_pending_cancel(&fs->pending, cf_req_tid(req));
	a->dirfd = cf_fd_get(fs, pin);
	if (a->dirfd < 0)
		return a->dirfd;
	if (npin) {
		a->newdirfd = cf_fd_get(fs, npin);
		if (a->newdirfd < 0) {
			r = a->newdirfd;
			goto out;
		}
	}
	if (a->rename)
		r = cf_stat(a->newdirfd, a->newname, 0, &st, &imm);
	else
		r = cf_stat(a->dirfd, a->name, 0, &st, &imm);
	victim = r == 0 && !(a->rename && (a->flags & RENAME_EXCHANGE));
	vfd = victim ? open_victim_dir(a->rename ? a->newdirfd : a->dirfd,
				       a->rename ? a->newname : a->name, &st) : -1;
	if (r == 0 || a->rename)	/* renaming onto no name is fine */
		r = cf_name_op(fs, a);
	if (r == 0 && victim && st.st_nlink <= 1)
		cf_inode_mark_unlinked(fs, st.st_dev, st.st_ino);
	if (vfd >= 0 && r == 0)
		cf_inode_keep_fd(fs, st.st_dev, st.st_ino, vfd);
	else if (vfd >= 0)
		close(vfd);
	if (npin)
		cf_fd_put(fs, npin);
out:
	cf_fd_put(fs, pin);
	return r;
}

static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name, int flags)
{
	struct cf_name_op a = { .name = name, .flags = (unsigned)flags };
	int r;

	r = cf_check_name(cf_req_fs(req), parent, name);
	if (r == 0)
		r = do_name_op(req, cf_inode(cf_req_fs(req), parent), NULL, &a);
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
	struct cf_name_op a = { .name = name, .newname = newname, .flags = flags, .rename = true };
	int r;

	r = strlen(newname) > NAME_MAX ? -ENAMETOOLONG : cf_check_name(fs, parent, name);
	if (r == 0)
		r = cf_check_new_name(fs, newparent, newname);
	if (r == 0)
		r = do_name_op(req, cf_inode(fs, parent), cf_inode(fs, newparent), &a);
	fuse_reply_err(req, -r);
}
struct link_args {
	int nfd;
	const char *newname;
};

static int run_link(int fd, void *arg)
{
	struct link_args *a = arg;

	return linkat(fd, "", a->nfd, a->newname, AT_EMPTY_PATH) < 0 ? -errno : 0;
}

void cf_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct link_args a = { .newname = newname };
	struct fuse_entry_param e;
	int r;

	a.nfd = cf_new_name_parent(req, newparent, newname);
	if (a.nfd < 0) {
		fuse_reply_err(req, -a.nfd);
		return;
	}
	/* A guest's own hard link to a CoW link: copy the source up first
	 * (through the re-walk of its path), then link the private copy. */
	r = cf_change_unless_cow(req, cf_inode(fs, ino), run_link, &a);
	if (r == 0)
		r = cf_lookup_entry(fs, req, a.nfd, newname, &e, false);
	cf_fd_put(fs, cf_inode(fs, newparent));
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (r == 0)
		fuse_reply_entry(req, &e);
}