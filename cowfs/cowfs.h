/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cowfs: the FUSE daemon that serves a pool of guest roots, gives every hard
 * link of one backing inode one FUSE nodeid (so a CoW link is cached once for
 * all guests) and copies a CoW link up into the writing guest's tree.
 *
 * Layout:
 *   inode.c  inodes: one entry per (st_dev, st_ino), a file handle each,
 *            O_PATH fds opened on demand into the fd cache, nodeids, forget
 *   itable.c, fdcache.c, pending.c
 *            the data structures under them (tables.h, no FUSE)
 *   cow.c    CoW-link detection, pending breaks (ESTALE + re-lookup),
 *            copy-up, and name operations on immutable inodes
 *   names.c, dirs.c, files.c, attrs.c, creds.c, session.c
 *            the FUSE low-level operations (ops.h)
 *   main.c   command line, pool or guest mode, checks, mount, signals
 */
#ifndef COWFS_COWFS_H
#define COWFS_COWFS_H

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>

#include "cowfs/metrics.h"
#include "cowfs/tables.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#define COWFS_PROG "cowfs"

#define CF_COPY_LOCKS 64

/* A regular file's fi->fh: cowfs's own fd of the open file, and in bit 32
 * whether the kernel passes its data through (cf_passthrough_attach), which
 * its release must know. */
#define CF_FH_PASSTHROUGH ((uint64_t)1 << 32)
static inline int cf_fh_fd(const struct fuse_file_info *fi)
{
	return (int)(fi->fh & 0xffffffffu);
}

/* -o drop_cache: whose backing pages the read path drops once served. */
enum cf_drop_cache {
	CF_DROP_NONE,		/* none */
	CF_DROP_COW,		/* CoW links' (the default) */
	CF_DROP_ALL,		/* every file's */
};

struct cf_fs {
	char *pool_path;
	int pool_fd;		/* O_RDONLY directory fd of POOL: its state */
	dev_t pool_dev;
	/* What the mount's root serves: POOL itself, or in guest mode
	 * (`cowfs POOL/GUEST MNT`, main.c) the guest's directory, so that
	 * nothing at the root is pool state to hide.  root_fd is pool_fd
	 * in pool mode. */
	int root_fd;
	bool guest_mode;
	/* Each worker thread's own fd of POOL/.hashdb/flags.lock (an flock
	 * excludes open file descriptions, not threads). */
	pthread_key_t flag_key;
	pthread_mutex_t state_lock;	/* cf_pool_state runs once */
	atomic_bool state_done;	/* cf_pool_state has run */
	atomic_int stage_fd;	/* POOL/.hashdb/tmp once the state exists, else -1 */

	double entry_timeout, attr_timeout;
	enum cf_drop_cache drop_cache;
	/* FUSE passthrough (passthrough.c): asked for (-o passthrough=on, the
	 * default), in effect (the kernel agreed at init and has not refused a
	 * registration for good), and used by some open already. */
	bool want_passthrough;
	atomic_bool passthrough;
	/* FUSE over io_uring: asked for (-o io_uring), and agreed at init. */
	bool want_io_uring;
	bool io_uring;
	atomic_bool passthrough_used;
	/* Guard each inode's backing id and its count of opens; an inode's
	 * lock is one of these, picked by hashing its address. */
	pthread_mutex_t backing_locks[CF_COPY_LOCKS];
	bool debug;
	bool no_opendir;	/* the kernel lets us refuse OPENDIR */
	struct fuse_session *se;
	struct fuse_conn_info_opts *conn_opts;	/* -o splice_*, readdirplus=... */

	/* inode table (the root is not in it) */
	pthread_mutex_t table_lock;
	struct cf_itable itable;
	size_t trim_peak;	/* most inodes held since the heap was last trimmed */
	struct cf_inode root;

	pthread_mutex_t fd_lock;
	struct cf_fdcache fds;

	struct cf_pending_table pending;

	/* Copy-ups are serialised per file: an inode's lock is one of these,
	 * picked by hashing (st_dev, st_ino) (cf_copy_lock), so two copy-ups
	 * of one inode never overlap; unrelated inodes may share a lock. */
	pthread_mutex_t copy_locks[CF_COPY_LOCKS];

	gid_t *root_groups;	/* the daemon's own groups, restored after
				   acting as a caller */
	int nroot_groups;

	struct cf_metrics metrics;	/* metrics.c */

	/* SIGUSR1 stats thread (main.c) */
	pthread_t stats_thread;
	bool stats_running;
	atomic_bool stats_stop;
};

/* remount.c */
/* `-o remount` (mount(8) via mount.fuse3): change the flags of the running
 * mount at the mountpoint with mount(2) MS_REMOUNT and return the exit code;
 * CF_NOT_REMOUNT when the command line does not ask for a remount. */
#define CF_NOT_REMOUNT (-1)
int cf_remount(int argc, char **argv);

/* inode.c */
/* The inode table, the root inode and an fd cache of @fd_cache fds. */
int cf_table_init(struct cf_fs *fs, unsigned fd_cache);
void cf_table_destroy(struct cf_fs *fs);
struct cf_inode *cf_inode(struct cf_fs *fs, fuse_ino_t ino);
static inline fuse_ino_t cf_nodeid(struct cf_fs *fs, struct cf_inode *in)
{
	return in == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)in;
}
/* Find or add the inode of @name in @dirfd (stat'ed in *st).  Counts one
 * lookup.  @fdhint is an fd of the inode when the caller has one (-1 else). */
int cf_inode_get(struct cf_fs *fs, int dirfd, const char *name, const struct stat *st,
		 int fdhint, struct cf_inode **out);
/* Its last name was removed through the mount (so nlink 0 is expected). */
void cf_inode_mark_unlinked(struct cf_fs *fs, dev_t dev, ino_t ino);
/* A directory removed or replaced through the mount: its handle no longer
 * opens it, but a process may hold it open and fstat it (nlink 0, as on
 * ext4).  Keep @fd (an O_PATH fd of it) on its entry if the kernel knows
 * the inode, for as long as it does; else close @fd. */
void cf_inode_keep_fd(struct cf_fs *fs, dev_t dev, ino_t ino, int fd);
void cf_inode_forget(struct cf_fs *fs, struct cf_inode *in, uint64_t n);
/* Borrow the O_PATH fd of @in (opened on demand); give it back with
 * cf_fd_put.  Negative errno on failure. */
int cf_fd_get(struct cf_fs *fs, struct cf_inode *in);
void cf_fd_put(struct cf_fs *fs, struct cf_inode *in);
/* Open @in afresh with @flags (O_RDONLY, O_RDWR, ...); caller closes. */
int cf_open_inode(struct cf_fs *fs, struct cf_inode *in, int flags);
/* One line on the log: inodes held, fds cached, heap in use (SIGUSR1). */
void cf_log_stats(struct cf_fs *fs);

/* cow.c */
/* Is @in (named @name in @dirfd when known, else dirfd -1) a CoW link?
 * @st, @immutable: what statx said.  Decided by the marker and the link
 * count, never by the flag alone; a marked inode found without its flag gets
 * it back (logged).  Updates in->cow (sticky). */
bool cf_is_cow(struct cf_fs *fs, struct cf_inode *in, int dirfd, const char *name,
	       const struct stat *st, bool immutable);
/* The same, fresh, for an open fd (any mode but O_PATH): a marked regular
 * file that is immutable or has the links of a shared object.  @in: the
 * inode @fd is of (its answer is cached, a missing flag restored), or NULL
 * for a file that has no inode here yet. */
bool cf_is_cow_fd(struct cf_fs *fs, struct cf_inode *in, int fd);
/* Fresh check (statx of the inode now), before changing an inode that was
 * not known as a CoW link: vunify may have made it one since the lookup,
 * and a crash may have left its flag cleared, so EPERM is no test. */
bool cf_is_cow_now(struct cf_fs *fs, struct cf_inode *in);
/* Refuse a change to the CoW link @in with ESTALE and record a pending
 * break, so that the VFS re-walks the path and the walk's lookup copies
 * that path up. */
void cf_break_later(fuse_req_t req, struct cf_inode *in);
/* A request that changes @in by its nodeid (setattr, setxattr,
 * removexattr, link): drop the thread's pending break, then run @op on
 * @in's O_PATH fd unless @in is a CoW link, in which case the request is
 * refused with cf_break_later; also when @op failed EPERM because vunify
 * made it one meanwhile.  @op's result (0 or -errno), or 1 when the
 * request has been answered. */
int cf_change_unless_cow(fuse_req_t req, struct cf_inode *in, int (*op)(int fd, void *arg),
			 void *arg);
/* Open @name in @dirfd for the flag ioctls if it is a CoW link, else -1. */
int cf_open_if_cow(int dirfd, const char *name);
/* An unlink/rmdir (flags: AT_REMOVEDIR) or a rename (flags: RENAME_*). */
struct cf_name_op {
	int dirfd, newdirfd;
	const char *name, *newname;
	unsigned flags;
	bool rename;
};
/* Run a name operation; when it fails EPERM because a CoW link is involved
 * (immutable), run it again with the links' flags cleared under the pool's
 * flag lock, so the shared inode stays for the other guests. */
int cf_name_op(struct cf_fs *fs, struct cf_name_op *a);
/* Log a restored flag (cowlink_restored_fn; @ctx: a path or NULL). */
void cf_log_restored(void *ctx, int fd);
/* Open the pool's state once it exists: recover flags, clean staging.
 * 0, or -errno (-ENOENT: no state yet). */
int cf_pool_state(struct cf_fs *fs);
int cf_flag_key_init(struct cf_fs *fs);
/* Copy up (dirfd, name) if it still is @expect (dev/ino).  0 also when
 * someone else did already. */
int cf_copy_up(struct cf_fs *fs, int dirfd, const char *name, const struct stat *expect);
/* Run @op with the immutable flag of the CoW links among fds[0..n)
 * cleared, under the pool's flag lock. */
int cf_with_mutable(struct cf_fs *fs, const int *fds, int n, int (*op)(void *), void *arg);
/* This worker thread's fd of POOL/.hashdb/flags.lock, opened once; -errno
 * while the pool has no state (then it has no CoW links either). */
int cf_flag_fd(struct cf_fs *fs);
pthread_mutex_t *cf_copy_lock(struct cf_fs *fs, dev_t dev, ino_t ino);

/* passthrough.c */
/* For an open of the regular file @in whose own fd is @fd: give the open
 * @in's backing id (registered on its first open) in fi->backing_id, or 0
 * when the mount does not pass through.  0 or -errno (the open fails). */
int cf_passthrough_attach(fuse_req_t req, struct cf_inode *in, int fd,
			  struct fuse_file_info *fi);
/* The release (or failed reply) of an open that cf_passthrough_attach gave a
 * backing id: the last one closes the id. */
void cf_passthrough_detach(fuse_req_t req, struct cf_inode *in);

/* session.c */
extern const struct fuse_lowlevel_ops cf_ops;

/* attrs.c */
/* statx of @name in @fd (flags: AT_EMPTY_PATH for @fd itself) into @st;
 * *immutable: the inode carries the immutable flag.  0 or -errno. */
int cf_stat(int fd, const char *name, int flags, struct stat *st, bool *immutable);

static inline struct cf_fs *cf_req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The caller's thread id: the VFS's re-walk after ESTALE comes from it. */
static inline pid_t cf_req_tid(fuse_req_t req)
{
	return fuse_req_ctx(req)->pid;
}

#define cf_debug(fs, ...) \
	do { \
		if ((fs)->debug) \
			fuse_log(FUSE_LOG_DEBUG, COWFS_PROG ": " __VA_ARGS__); \
	} while (0)

#endif
