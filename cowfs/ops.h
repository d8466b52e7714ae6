/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE low-level operations, one file per concern:
 *   names.c    lookup, forget, mknod/mkdir/symlink, readlink, link, unlink,
 *              rmdir, rename
 *   dirs.c     opendir, readdir(plus), releasedir, fsyncdir
 *   files.c    open, create, tmpfile, read (cf_serve_read), write, release, flush,
 *              fsync, fallocate, copy_file_range, lseek
 *   attrs.c    getattr, setattr and the xattr operations
 *   creds.c    acting as the caller for creation
 *   session.c  init, statfs and the operations table
 *
 * Everything works from per-inode fds (never a prefixed backing path, so
 * paths near PATH_MAX work), never follows a guest symlink, and checks
 * names for NAME_MAX itself.
 */
#ifndef COWFS_OPS_H
#define COWFS_OPS_H

#include "cowfs/cowfs.h"

#include <linux/capability.h>

/* names.c */
/* The pool's state, a guest vunify remove is taking apart, and the
 * temporary names of CoW operations in progress: no guest sees them. */
bool cf_hidden(const struct cf_fs *fs, fuse_ino_t parent, const char *name);
/* 0, or the -errno a name is refused with when looking it up (or
 * removing or renaming it): too long, or hidden (-ENOENT). */
int cf_check_name(const struct cf_fs *fs, fuse_ino_t parent, const char *name);
/* 0, or the -errno a name is refused with when creating it: too long, or
 * hidden (-EPERM). */
int cf_check_new_name(const struct cf_fs *fs, fuse_ino_t parent, const char *name);
/* For a request that makes @name in @parent: check the name, drop the
 * thread's pending break, and borrow @parent's fd (give it back with
 * cf_fd_put).  The fd or -errno. */
int cf_new_name_parent(fuse_req_t req, fuse_ino_t parent, const char *name);
/* The entry of @in, stat'ed in @st, with cowfs's timeouts. */
void cf_fill_entry(struct cf_fs *fs, struct cf_inode *in, const struct stat *st,
		   struct fuse_entry_param *e);
/* Look @name up in the directory @pfd into @e (counts one lookup).  When
 * @may_break and the calling thread has a pending break for the inode
 * found, copy the path up first and answer the copy.  0 or -errno. */
int cf_lookup_entry(struct cf_fs *fs, fuse_req_t req, int pfd, const char *name,
		    struct fuse_entry_param *e, bool may_break);
void cf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void cf_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void cf_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void cf_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void cf_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void cf_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void cf_readlink(fuse_req_t req, fuse_ino_t ino);
void cf_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void cf_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void cf_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags);
void cf_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);

/* dirs.c */
void cf_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void cf_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void cf_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void cf_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void cf_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* files.c */
void cf_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void cf_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void cf_tmpfile(fuse_req_t req, fuse_ino_t parent, mode_t mode, struct fuse_file_info *fi);
void cf_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void cf_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off,
		  struct fuse_file_info *fi);
void cf_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void cf_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void cf_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void cf_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		  struct fuse_file_info *fi);
void cf_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			struct fuse_file_info *fi_out, size_t len, int flags);
void cf_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);

/* attrs.c */
/* Each path of a CoW link is logically a private file. */
void cf_fix_attr(struct cf_inode *in, struct stat *st);
/* Set the size of @fd's inode: through @wfd when it is open for writing,
 * else through @fd's /proc/self/fd path.  0 or -errno. */
int cf_truncate(int fd, int wfd, off_t size);
/* Remove setuid, and setgid where group-executable, from @fd's regular
 * file, as the VFS does on a write by a caller without CAP_FSETID (the
 * kernel's KILL_SUIDGID flags).  0 or -errno. */
int cf_kill_suidgid(int fd);
void cf_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void cf_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);
void cf_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void cf_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void cf_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags);
void cf_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* creds.c */
/* Act as the request's caller on this worker thread: fsuid, fsgid and
 * supplementary groups, and with @with_umask its umask.  1 entered, 0
 * nothing to do (root), -errno; undo with cf_creds_leave. */
int cf_creds_enter(fuse_req_t req, bool with_umask);
void cf_creds_leave(struct cf_fs *fs, int entered);
/* Drop CAP_SYS_RESOURCE from every capability set of the daemon (guests'
 * writes are its writes: no quota exemption, no reserved blocks).  0 or
 * -errno. */
int cf_drop_resource_cap(void);

/* This thread's capability sets, as cf_fsetid_drop found them. */
struct cf_caps {
	struct __user_cap_data_struct data[2];
};

/* Drop CAP_FSETID from this thread's effective set (1: dropped, 0: it was
 * not there, -errno); cf_fsetid_restore puts it back. */
int cf_fsetid_drop(struct cf_caps *saved);
void cf_fsetid_restore(struct cf_caps *saved, int dropped);

#endif
