/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The FUSE session: what cowfs asks of the kernel at init, statfs, and
 * the operations table. */
#include "cowfs/ops.h"

#include <errno.h>
#include <sys/statvfs.h>

static void cf_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	if (fstatvfs(cf_req_fs(req)->root_fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

static void cf_init(void *userdata, struct fuse_conn_info *conn)
{
	struct cf_fs *fs = userdata;
	/* libfuse >= 3.17 does not turn PARALLEL_DIROPS on by itself any more
	 * (and 3.14 never sent it to the kernel). want_ext and the feature-flag
	 * helpers: the 32-bit want/capable are deprecated. */
	uint64_t want = FUSE_CAP_SPLICE_WRITE | FUSE_CAP_READDIRPLUS |
			FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_POSIX_ACL |
			FUSE_CAP_DONT_MASK | FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_ASYNC_READ |
			FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_CACHE_SYMLINKS |
			FUSE_CAP_HANDLE_KILLPRIV_V2;

	fuse_set_feature_flag(conn, want & conn->capable_ext);
	/* KILLPRIV v2, not v1: with v2 the kernel flags the writes, truncates
	 * and O_TRUNC opens whose caller lacks CAP_FSETID and the daemon
	 * removes setuid/setgid (cf_kill_suidgid); passthrough writes do it
	 * in ext4, the backing file being registered without CAP_FSETID.  It
	 * also lets the kernel mark an inode without security.capability
	 * (SB_NOSEC), so a write no longer costs a GETXATTR.  v1 would remove
	 * setuid on root's writes too. */
	fuse_unset_feature_flag(conn, FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_WRITEBACK_CACHE);
	/* Always readdirplus: "auto" sends it only for a directory's first
	 * buffer (a page, some 25 entries), and every later entry then costs a
	 * LOOKUP of its own when stat'ed (docs/cowfs.md, "Caching and speed
	 * levers"). */
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
	/* Passthrough last: it excludes the writeback cache, which stays off.
	 * (fuse_get_feature_flag tells what the kernel offers, not what we
	 * asked for: want_ext is read directly.) */
	if (fs->want_passthrough && !(conn->want_ext & FUSE_CAP_WRITEBACK_CACHE))
		fuse_set_feature_flag(conn, FUSE_CAP_PASSTHROUGH);
	atomic_store(&fs->passthrough, (conn->want_ext & FUSE_CAP_PASSTHROUGH) != 0);
	if (fs->want_passthrough && !atomic_load(&fs->passthrough))
		fuse_log(FUSE_LOG_WARNING, COWFS_PROG ": the kernel offers no FUSE passthrough: "
			 "reads and writes go through the daemon\n");
	/* libfuse starts its rings when -o io_uring was given and this flag is
	 * wanted (its default) and offered (the kernel's enable_uring). */
	fs->io_uring = fs->want_io_uring && (conn->want_ext & FUSE_CAP_OVER_IO_URING);
	if (fs->want_io_uring && !fs->io_uring)
		fuse_log(FUSE_LOG_WARNING, COWFS_PROG ": the kernel offers no FUSE over io_uring: "
			 "requests go through /dev/fuse\n");
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
	.tmpfile = cf_tmpfile,
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
