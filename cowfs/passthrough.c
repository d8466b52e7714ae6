/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE passthrough: the kernel reads, writes, splices and mmaps a regular
 * file's data straight from the backing ext4 inode, without a request.
 *
 * The kernel's rules (fs/fuse/iomode.c, passthrough.c):
 *  - an inode has at most one backing file at a time: every passthrough
 *    open of it must name the same backing id, or the open fails (EIO);
 *  - an inode is never open cached and passthrough at once: a passthrough
 *    open of an inode open cached fails (EIO), and the other way round;
 *  - each FUSE file gets its own backing file, which the kernel opens
 *    with that file's flags at the path of the registered one, with the
 *    credentials of whoever registered it (the daemon).
 * So cowfs keeps one backing id per inode, counted by the opens that use
 * it and closed on the last release, and registers it from a read-only fd:
 * a write open still gets a writable backing file, and the registered file
 * itself never counts as a writer (vunify's read lease on a file that is
 * only being read stays possible).  It is registered without CAP_FSETID,
 * so that ext4 removes setuid/setgid on passthrough writes (creds.c).  A mount either passes every regular
 * file through or none: a registration refused for good (no
 * CAP_SYS_ADMIN, an older kernel) turns passthrough off for the mount
 * before any inode used it, and a refusal on an inode already in use is an
 * error of that open, never a silent cached open.
 *
 * A CoW link is one FUSE inode for every guest; its backing file is the
 * shared object, and a guest only ever opens it for reading (a write
 * breaks the link first: cf_open).  Its pages are the ext4 inode's, one
 * copy for every guest, every mount and the host.
 */
#include "cowfs/ops.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t *backing_lock(struct cf_fs *fs, struct cf_inode *in)
{
	uintptr_t h = (uintptr_t)in;

	h ^= h >> 17;
	return &fs->backing_locks[(h >> 4) % CF_COPY_LOCKS];
}

/* Register a backing file for @in: @fd when it is read-only, else a
 * read-only fd of its own.  The id (> 0) or -errno. */
static int register_backing(fuse_req_t req, struct cf_fs *fs, struct cf_inode *in, int fd)
{
	struct cf_caps caps;
	int rfd = fd, id, err, dropped;

	if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY) {
		rfd = cf_open_inode(fs, in, O_RDONLY | O_NOFOLLOW);
		if (rfd < 0)
			return rfd;
	}
	/* Without CAP_FSETID: ext4 then removes setuid/setgid on the
	 * passthrough writes the daemon never sees (cf_fsetid_drop). */
	dropped = cf_fsetid_drop(&caps);
	if (dropped < 0) {
		id = 0;
		err = -dropped;
		goto out;
	}
	errno = 0;
	id = fuse_passthrough_open(req, rfd);
	err = errno;
	cf_fsetid_restore(&caps, dropped);
out:
	if (rfd != fd)
		close(rfd);
	if (id > 0)
		return id;
	return -(err ? err : EIO);
}

/* A refusal that every later registration would meet as well. */
static bool refused_for_good(int err)
{
	return err == EPERM || err == ENOTTY || err == EOPNOTSUPP || err == ENOSYS;
}

int cf_passthrough_attach(fuse_req_t req, struct cf_inode *in, int fd,
			  struct fuse_file_info *fi)
{
	struct cf_fs *fs = cf_req_fs(req);
	pthread_mutex_t *lock = backing_lock(fs, in);
	int id, r = 0;

	fi->backing_id = 0;
	if (!atomic_load(&fs->passthrough))
		return 0;
	pthread_mutex_lock(lock);
	if (in->backing_opens == 0) {
		id = register_backing(req, fs, in, fd);
		if (id < 0) {
			r = id;
			goto out;
		}
		in->backing_id = id;
	}
	in->backing_opens++;
	fi->backing_id = in->backing_id;
	/* Passthrough files have no FUSE page cache to keep. */
	fi->keep_cache = 0;
out:
	pthread_mutex_unlock(lock);
	if (r < 0 && refused_for_good(-r) && !atomic_load(&fs->passthrough_used)) {
		/* Nothing passed through yet, so no inode can be open both
		 * ways: this mount goes the cached way from now on. */
		atomic_store(&fs->passthrough, false);
		atomic_store(&fs->metrics.passthrough_active, 0);
		fuse_log(FUSE_LOG_WARNING,
			 COWFS_PROG ": the kernel refuses passthrough (%s): reads and writes go "
			 "through the daemon\n", strerror(-r));
		return 0;
	}
	if (r == 0)
		atomic_store(&fs->passthrough_used, true);
	return r;
}

void cf_passthrough_detach(fuse_req_t req, struct cf_inode *in)
{
	struct cf_fs *fs = cf_req_fs(req);
	pthread_mutex_t *lock = backing_lock(fs, in);
	int id = 0;

	pthread_mutex_lock(lock);
	if (in->backing_opens > 0 && --in->backing_opens == 0) {
		id = in->backing_id;
		in->backing_id = 0;
	}
	pthread_mutex_unlock(lock);
	/* The kernel keeps what open files and the inode still use; this
	 * only takes the id out of its table. */
	if (id > 0)
		fuse_passthrough_close(req, id);
}
