/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cowfs: the FUSE daemon that serves a pool of guest roots, gives every hard
 * link of one backing inode one FUSE nodeid (so a CoW link is cached once for
 * all guests) and copies a CoW link up into the writing guest's tree.
 *
 * Layout:
 *   inode.c  the inode table keyed by (st_dev, st_ino), one file handle per
 *            inode and a bounded cache of O_PATH fds opened on demand
 *   cow.c    CoW-link detection, pending breaks (ESTALE + re-lookup),
 *            copy-up, and name operations on immutable inodes
 *   ops.c    the FUSE low-level operations
 *   main.c   command line, pool checks, mount, signals
 */
#ifndef COWFS_COWFS_H
#define COWFS_COWFS_H

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#define COWFS_PROG "cowfs"

struct cf_inode {
	dev_t dev;
	ino_t ino;
	mode_t type;			/* S_IFMT bits, fixed for an inode */
	uint64_t nlookup;		/* protected by the table lock */
	struct cf_inode *hnext;		/* hash chain */

	/* Handle to reopen the inode; NULL for inodes we pin by fd instead
	 * (the pool root, inodes on another filesystem). */
	struct file_handle *fh;

	/* fd cache (protected by the fd cache lock) */
	int fd;				/* O_PATH fd or -1 */
	int fd_users;			/* borrowers of fd right now */
	bool pinned;			/* fd is never evicted */
	struct cf_inode *lru_prev, *lru_next;

	atomic_bool cow;		/* known CoW link (sticky) */
	atomic_bool unlinked_here;	/* its last name went away through us */
};

struct cf_pending {
	pid_t tid;
	/* The inode to break, by (dev, ino) rather than nodeid: the kernel
	 * may forget a nodeid whose lookup failed and look the inode up anew
	 * under another one.  any: whatever CoW link the walk finds. */
	dev_t dev;
	ino_t ino;
	bool any;
	int err;		/* copy-up failed: answer this (negative) */
	struct timespec deadline;
};

#define CF_PENDING_MAX 64
#define CF_COPY_LOCKS 64

struct cf_fs {
	char *pool_path;
	int pool_fd;		/* O_RDONLY directory fd of POOL */
	dev_t pool_dev;
	/* Each worker thread's own fd of POOL/.hashdb/flags.lock (an flock
	 * excludes open file descriptions, not threads). */
	pthread_key_t flag_key;
	pthread_mutex_t state_lock;	/* cf_pool_state runs once */
	atomic_bool state_done;	/* cf_pool_state has run */
	atomic_int stage_fd;	/* POOL/.hashdb/tmp once the state exists, else -1 */

	double entry_timeout, attr_timeout;
	unsigned fd_cache_max;
	int drop_cache;		/* 0 none, 1 CoW links, 2 all files */
	bool debug;
	bool no_opendir;	/* the kernel lets us refuse OPENDIR */
	struct fuse_session *se;
	struct fuse_conn_info_opts *conn_opts;	/* -o splice_*, readdirplus=... */

	/* inode table */
	pthread_mutex_t table_lock;
	struct cf_inode **buckets;
	size_t nbuckets, ninodes;
	size_t trim_peak;	/* most inodes held since the heap was last trimmed */
	struct cf_inode root;

	/* fd cache */
	pthread_mutex_t fd_lock;
	struct cf_inode lru;	/* list head: lru.lru_next is the newest */
	unsigned nfds;

	/* pending CoW breaks */
	pthread_mutex_t pending_lock;
	atomic_int npending;
	struct cf_pending pending[CF_PENDING_MAX];

	/* copy-ups of one inode are serialised (hashed by dev/ino) */
	pthread_mutex_t copy_locks[CF_COPY_LOCKS];

	gid_t *root_groups;	/* the daemon's own groups, restored after
				   acting as a caller */
	int nroot_groups;

	/* SIGUSR1 stats thread (main.c) */
	pthread_t stats_thread;
	bool stats_running;
	atomic_bool stats_stop;
};

/* inode.c */
int cf_table_init(struct cf_fs *fs);
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
/* The same, fresh, for an open fd of @in (any mode but O_PATH). */
bool cf_is_cow_fd(struct cf_fs *fs, struct cf_inode *in, int fd);
/* Log a restored flag (cowlink_restored_fn; @ctx: a path or NULL). */
void cf_log_restored(void *ctx, int fd);
/* Open the pool's state once it exists: recover flags, clean staging. */
int cf_pool_state(struct cf_fs *fs);
int cf_flag_key_init(struct cf_fs *fs);
/* @in NULL: any CoW link the re-walk finds (a stale cached name). */
void cf_pending_add(struct cf_fs *fs, pid_t tid, const struct cf_inode *in);
/* A copy-up for (tid, nodeid) failed with @err: the thread's next lookup
 * of it answers @err too (the kernel retries a failed revalidation with a
 * plain lookup, which must not find the CoW link and let the retried
 * operation fail ESTALE). */
void cf_pending_fail(struct cf_fs *fs, pid_t tid, dev_t dev, ino_t ino, int err);
/* Consume a pending break of @tid matching @in: 1 copy it up, 0 none,
 * negative: a failed copy-up's error to answer. */
int cf_pending_take(struct cf_fs *fs, pid_t tid, struct cf_inode *in, bool cow);
void cf_pending_cancel(struct cf_fs *fs, pid_t tid);
/* Copy up (dirfd, name) if it still is @expect (dev/ino).  0 also when
 * someone else did already. */
int cf_copy_up(struct cf_fs *fs, int dirfd, const char *name, const struct stat *expect);
/* Run @op with the immutable flag of the CoW links among fds[0..n)
 * cleared, under the pool's flag lock. */
int cf_with_mutable(struct cf_fs *fs, const int *fds, int n, int (*op)(void *), void *arg);
int cf_flag_fd(struct cf_fs *fs);
pthread_mutex_t *cf_copy_lock(struct cf_fs *fs, dev_t dev, ino_t ino);

/* ops.c */
extern const struct fuse_lowlevel_ops cf_ops;

#define cf_debug(fs, ...) \
	do { \
		if ((fs)->debug) \
			fuse_log(FUSE_LOG_DEBUG, COWFS_PROG ": " __VA_ARGS__); \
	} while (0)

#endif
