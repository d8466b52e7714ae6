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

void cf_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cf_fs *fs = cf_req_fs(req);
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
	struct cf_fs *fs = cf_req_fs(req);
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
		if (cf_hidden(ino, name)) {
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
				r = cf_lookup_entry(fs, req, dirfd(d->dp), name, &e, false);
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
