/* SPDX-License-Identifier: GPL-2.0-or-later */
/* FUSE operations on directories: opendir (or none), readdir and
 * readdirplus with the hidden names left out, releasedir, fsyncdir. */
#include "cowfs/ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cf_dir {
	DIR *dp;
	struct dirent *entry;
	off_t offset;
};

/* Open a directory stream on @ino into *out.  0 or -errno. */
static int dir_open(struct cf_fs *fs, fuse_ino_t ino, struct cf_dir **out)
{
	struct cf_dir *d = calloc(1, sizeof(*d));
	int fd, r;

	if (!d)
		return -ENOMEM;
	fd = cf_open_inode(fs, cf_inode(fs, ino), O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		r = fd;
		goto fail;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		r = -errno;
		close(fd);
		goto fail;
	}
	*out = d;
	return 0;
fail:
	free(d);
	return r;
}

static void dir_close(struct cf_dir *d)
{
	closedir(d->dp);
	free(d);
}

static void dir_seek(struct cf_dir *d, off_t offset)
{
	if (offset == d->offset)
		return;
	seekdir(d->dp, offset);
	d->entry = NULL;
	d->offset = offset;
}

void cf_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_dir *d = NULL;	/* gcc -O3 cannot see dir_open set it */
	int r;

	/* Without OPENDIR/RELEASEDIR (the kernel can do without, and then
	 * caches directories as with keep_cache + cache_readdir), a warm walk
	 * costs two requests per directory less; each uncached READDIR opens
	 * the directory itself. */
	if (fs->no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	r = dir_open(fs, ino, &d);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	if (fuse_reply_open(req, fi) < 0)
		dir_close(d);
}

static bool is_dot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

struct dirbuf {
	char *buf, *p;
	size_t rem;
};

/* The readdirplus entry of d->entry (counts a lookup, except for . and
 * ..).  0 or -errno. */
static int entry_plus(struct cf_fs *fs, fuse_req_t req, struct cf_dir *d,
		      struct fuse_entry_param *e)
{
	if (!is_dot(d->entry->d_name))
		return cf_lookup_entry(fs, req, dirfd(d->dp), d->entry->d_name, e, false);
	memset(e, 0, sizeof(*e));
	e->attr.st_ino = d->entry->d_ino;
	e->attr.st_mode = (mode_t)d->entry->d_type << 12;
	return 0;
}

/* Add d->entry to @b: 0 added (or gone since readdir: skipped), 1 no room
 * left (it waits for the next request), or -errno. */
static int add_entry(fuse_req_t req, struct cf_dir *d, struct dirbuf *b, bool plus)
{
	struct cf_fs *fs = cf_req_fs(req);
	const char *name = d->entry->d_name;
	off_t next = d->entry->d_off;
	size_t sz;

	if (plus) {
		struct fuse_entry_param e;
		int r = entry_plus(fs, req, d, &e);

		if (r < 0)
			return r == -ENOENT ? 0 : r;
		sz = fuse_add_direntry_plus(req, b->p, b->rem, name, &e, next);
		if (sz > b->rem && e.ino)
			cf_inode_forget(fs, cf_inode(fs, e.ino), 1);
	} else {
		struct stat st = { .st_ino = d->entry->d_ino,
				   .st_mode = (mode_t)d->entry->d_type << 12 };

		sz = fuse_add_direntry(req, b->p, b->rem, name, &st, next);
	}
	if (sz > b->rem)
		return 1;
	b->p += sz;
	b->rem -= sz;
	return 0;
}

/* Fill @b from @d's position on, leaving out hidden names.  0 at the end of
 * the directory or of the room, or -errno. */
static int fill_dir(fuse_req_t req, fuse_ino_t ino, struct cf_dir *d, struct dirbuf *b,
		    bool plus)
{
	int r;

	for (;;) {
		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry)
				return -errno;
		}
		r = cf_hidden(ino, d->entry->d_name) ? 0 : add_entry(req, d, b, plus);
		if (r < 0)
			return r;
		if (r > 0)
			return 0;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset,
		       struct fuse_file_info *fi, bool plus)
{
	struct cf_fs *fs = cf_req_fs(req);
	struct cf_dir *d = (struct cf_dir *)(uintptr_t)fi->fh, *own = NULL;
	struct dirbuf b = { .rem = size };
	int r = 0;

	b.buf = b.p = calloc(1, size);
	if (!b.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (!d)		/* no OPENDIR: a stream for this request only */
		r = dir_open(fs, ino, &own);
	if (r == 0) {
		d = d ? d : own;
		dir_seek(d, offset);
		r = fill_dir(req, ino, d, &b, plus);
	}
	/* An error after some entries: send those; the next request starts
	 * at the entry that failed. */
	if (r < 0 && b.rem == size)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, b.buf, size - b.rem);
	free(b.buf);
	if (own)
		dir_close(own);
}

void cf_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

void cf_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

void cf_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cf_dir *d = (struct cf_dir *)(uintptr_t)fi->fh;

	(void)ino;
	if (d)
		dir_close(d);
	fuse_reply_err(req, 0);
}

void cf_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct cf_dir *d = (struct cf_dir *)(uintptr_t)fi->fh;
	int fd, r;

	fd = d ? dirfd(d->dp) : cf_open_inode(cf_req_fs(req), cf_inode(cf_req_fs(req), ino), O_RDONLY | O_DIRECTORY);
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
