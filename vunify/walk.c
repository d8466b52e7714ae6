/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "vunify/walk.h"

#include "cowlink/cowlink.h"

#include <dirent.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

struct dent {
	uint64_t ino;
	size_t off;		/* name offset in the frame's name buffer */
	unsigned char type;	/* d_type */
};

struct frame {
	int fd;			/* -1 while closed to save fds */
	dev_t dev;
	ino_t ino;
	char *names;		/* NUL-separated names */
	struct dent *ents;
	size_t nents, next;
	size_t pathlen;		/* length of this directory's path */
	struct statx stx;	/* as entered, for the leave callback */
};

struct walker {
	const struct walk_ops *ops;
	struct frame *st;
	size_t depth, cap;
	char *path;
	size_t pathcap;
	size_t open_fds;
	dev_t rootdev;
};

static int cmp_dent(const void *a, const void *b)
{
	const struct dent *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Read every entry of @fd into @f (names copied: the walk may close fd). */
static int read_dir(int fd, struct frame *f, bool sort)
{
	enum { BUF = 1 << 15 };
	char *buf = malloc(BUF);
	size_t ncap = 0, nlen = 0, ecap = 0;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	if (lseek(fd, 0, SEEK_SET) < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, BUF);

		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (void *)(buf + off);
			size_t len = strlen(d->d_name) + 1;

			off += d->d_reclen;
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
				continue;
			if (nlen + len > ncap) {
				size_t c = ncap ? ncap * 2 : 4096;
				char *p;
				while (c < nlen + len)
					c *= 2;
				p = realloc(f->names, c);
				if (!p) {
					r = -ENOMEM;
					goto out;
				}
				f->names = p;
				ncap = c;
			}
			if (f->nents == ecap) {
				size_t c = ecap ? ecap * 2 : 64;
				struct dent *p = realloc(f->ents, c * sizeof(*p));
				if (!p) {
					r = -ENOMEM;
					goto out;
				}
				f->ents = p;
				ecap = c;
			}
			memcpy(f->names + nlen, d->d_name, len);
			f->ents[f->nents].ino = d->d_ino;
			f->ents[f->nents].off = nlen;
			f->ents[f->nents].type = d->d_type;
			f->nents++;
			nlen += len;
		}
	}
	if (sort && f->nents > 1)
		qsort(f->ents, f->nents, sizeof(*f->ents), cmp_dent);
out:
	free(buf);
	return r;
}

static int path_set(struct walker *w, size_t base, const char *name)
{
	size_t n = strlen(name);

	if (base + n + 2 > w->pathcap) {
		size_t c = w->pathcap ? w->pathcap : 256;
		char *p;
		while (c < base + n + 2)
			c *= 2;
		p = realloc(w->path, c);
		if (!p)
			return -ENOMEM;
		w->path = p;
		w->pathcap = c;
	}
	w->path[base] = '/';
	memcpy(w->path + base + 1, name, n + 1);
	return 0;
}

static void frame_free(struct frame *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->names);
	free(f->ents);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

/* Keep at most max_fds (WALK_MAX_FDS by default) directory fds: close the
 * one nearest the root that is still open (never the top, which the walk is
 * reading). */
static void shed_fds(struct walker *w)
{
	size_t max = w->ops->max_fds ? w->ops->max_fds : WALK_MAX_FDS;

	for (size_t i = 1; w->open_fds > max && i + 1 < w->depth; i++) {
		if (w->st[i].fd >= 0) {
			close(w->st[i].fd);
			w->st[i].fd = -1;
			w->open_fds--;
		}
	}
}

/* Reopen the closed parent frame @f from its child's fd via "..". */
static int reopen_parent(struct walker *w, struct frame *f, int childfd)
{
	struct stat st;
	int fd = openat(childfd, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_dev != f->dev || st.st_ino != f->ino) {
		close(fd);
		return -ESTALE;	/* the directory was moved during the walk */
	}
	f->fd = fd;
	w->open_fds++;
	return 0;
}

/* Tell the caller which entries the new top directory holds. */
static void announce(struct walker *w, struct frame *f)
{
	struct walk_dir d = { f->fd, w->depth - 1, f->nents, NULL, NULL };
	const char **names;
	unsigned char *types;

	if (!w->ops->dir_loaded || f->nents == 0)
		return;
	names = malloc(f->nents * sizeof(*names));
	types = malloc(f->nents);
	if (names && types) {
		for (size_t i = 0; i < f->nents; i++) {
			names[i] = f->names + f->ents[i].off;
			types[i] = f->ents[i].type;
		}
		d.names = names;
		d.types = types;
		w->ops->dir_loaded(w->ops->ctx, &d);
	}
	free(names);
	free(types);
}

static int push(struct walker *w, int fd, const struct statx *stx, size_t pathlen)
{
	struct frame *f;
	int r;

	if (w->depth == w->cap) {
		size_t c = w->cap ? w->cap * 2 : 64;
		struct frame *p = realloc(w->st, c * sizeof(*p));
		if (!p)
			return -ENOMEM;
		w->st = p;
		w->cap = c;
	}
	f = &w->st[w->depth];
	memset(f, 0, sizeof(*f));
	f->fd = fd;
	f->dev = makedev(stx->stx_dev_major, stx->stx_dev_minor);
	f->ino = stx->stx_ino;
	f->pathlen = pathlen;
	f->stx = *stx;
	r = read_dir(fd, f, w->ops->sort_by_inode);
	if (r < 0) {
		free(f->names);
		free(f->ents);
		return r;
	}
	w->depth++;
	w->open_fds++;
	announce(w, f);
	shed_fds(w);
	return 0;
}

/* Tell the caller that the directory just popped (@stx, at @pathlen of the
 * path buffer) is done, from its parent @p, whose entry @p->next - 1 it is. */
static int leave(struct walker *w, struct frame *p, const struct statx *stx, size_t pathlen)
{
	struct walk_entry e;

	if (!w->ops->leave || p->fd < 0)
		return 0;
	/* Deeper paths written since share this directory's prefix. */
	w->path[pathlen] = '\0';
	e = (struct walk_entry){ p->fd, p->names + p->ents[p->next - 1].off, w->path, stx,
				 w->depth - 1, p->next - 1 };
	return w->ops->leave(w->ops->ctx, &e);
}

static int pop(struct walker *w)
{
	struct frame *f = &w->st[--w->depth];
	struct statx stx = f->stx;
	size_t pathlen = f->pathlen;
	int childfd = f->fd;

	if (w->ops->dir_done)
		w->ops->dir_done(w->ops->ctx, w->depth);

	/* Reopen the parent while the child fd is still open. */
	if (w->depth > 0 && w->st[w->depth - 1].fd < 0) {
		struct frame *p = &w->st[w->depth - 1];
		int r = childfd < 0 ? -EBADF : reopen_parent(w, p, childfd);

		if (childfd < 0) {
			p->next = p->nents;	/* lost with its child, reported there */
		} else if (r < 0) {
			w->path[p->pathlen] = '\0';
			w->ops->error(w->ops->ctx, p->pathlen ? w->path : "/", -r,
				      "cannot return to directory (moved during the walk?); rest of it skipped");
			p->next = p->nents;	/* nothing more from it */
		}
	}
	if (childfd >= 0)
		w->open_fds--;
	frame_free(f);
	return w->depth > 0 ? leave(w, &w->st[w->depth - 1], &stx, pathlen) : 0;
}

static int open_child_dir(struct walker *w, int dirfd, const char *name,
			  const struct statx *stx)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_ino != stx->stx_ino ||
	    st.st_dev != makedev(stx->stx_dev_major, stx->stx_dev_minor) ||
	    st.st_dev != w->rootdev) {
		close(fd);
		return -ESTALE;	/* swapped between stat and open */
	}
	return fd;
}

static int visit(struct walker *w, struct frame *f, const char *name, size_t index)
{
	struct statx stx;
	struct walk_entry e;
	int dirfd = f->fd, r, fd;

	r = path_set(w, f->pathlen, name);
	if (r < 0)
		return r;
	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
		  STATX_BASIC_STATS, &stx) < 0) {
		if (errno != ENOENT)	/* vanished: nothing to do */
			w->ops->error(w->ops->ctx, w->path, errno, "cannot stat");
		return 0;
	}
	if (makedev(stx.stx_dev_major, stx.stx_dev_minor) != w->rootdev) {
		w->ops->error(w->ops->ctx, w->path, EXDEV, "other filesystem, not entered");
		return 0;
	}
	e = (struct walk_entry){ dirfd, name, w->path, &stx, w->depth - 1, index };
	r = w->ops->entry(w->ops->ctx, &e);
	if (r < 0)
		return r;
	if (!S_ISDIR(stx.stx_mode) || r == WALK_SKIP_DIR)
		return 0;
	fd = open_child_dir(w, dirfd, name, &stx);
	if (fd < 0) {
		w->ops->error(w->ops->ctx, w->path, -fd,
			      fd == -ESTALE || fd == -ELOOP || fd == -ENOTDIR
				      ? "replaced during the walk, not entered"
				      : "cannot open directory");
		return 0;
	}
	r = push(w, fd, &stx, strlen(w->path));
	if (r < 0) {
		close(fd);
		w->ops->error(w->ops->ctx, w->path, -r, "cannot read directory");
		return r == -ENOMEM ? r : 0;
	}
	return 0;
}

int walk_tree(int rootfd, const struct walk_ops *ops)
{
	struct walker w = { .ops = ops };
	struct statx stx;
	int fd, r = 0;

	if (statx(rootfd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) < 0)
		return -errno;
	w.rootdev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	/* Reopen, not dup(): a dup shares the directory offset with the
	 * caller's fd, and unify walks one guest fd twice at once (the
	 * read-ahead thread, vunify/prefetch.c).  One walk's lseek(0) between
	 * the other's lseek(0) and getdents64 made that one see the guest as
	 * empty (or walk it twice). */
	fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = path_set(&w, 0, "");
	if (r == 0)
		w.path[0] = '\0';
	r = r ?: push(&w, fd, &stx, 0);
	if (r < 0) {
		close(fd);
		goto out;
	}
	while (w.depth > 0) {
		struct frame *f = &w.st[w.depth - 1];

		if (f->next == f->nents) {
			r = pop(&w);
			if (r < 0)
				break;
			continue;
		}
		size_t i = f->next++;

		r = visit(&w, f, f->names + f->ents[i].off, i);
		if (r < 0)
			break;
	}
	while (w.depth > 0) {
		if (ops->dir_done)
			ops->dir_done(ops->ctx, w.depth - 1);
		frame_free(&w.st[--w.depth]);
	}
out:
	free(w.st);
	free(w.path);
	return r;
}

int walk_open_regular(int dirfd, const char *name, struct stat *st)
{
	char proc[64];
	int pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), fd, r;

	if (pfd < 0)
		return -errno;
	if (fstat(pfd, st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st->st_mode)) {
		r = -ESTALE;
		goto out;
	}
	cowlink_fd_path(proc, sizeof(proc), pfd);
	fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOATIME | O_CLOEXEC);
	if (fd < 0 && errno == EPERM)
		fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	r = fd < 0 ? -errno : fd;
out:
	close(pfd);
	return r;
}
