/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cowfs's own data structures, free of FUSE so that tests/unit can drive
 * them without root or /dev/fuse (built as the static library cowfs_tables):
 *   itable.c   the inode hash table, keyed by (st_dev, st_ino)
 *   fdcache.c  the bounded LRU cache of O_PATH fds of inodes
 *   pending.c  the pending CoW breaks, keyed by (thread id, st_dev, st_ino)
 * None of them prints.  The inode table and the fd cache leave locking to
 * their user (cowfs: table_lock, fd_lock); the pending-break table locks
 * itself.
 */
#ifndef COWFS_TABLES_H
#define COWFS_TABLES_H

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct cf_inode {
	dev_t dev;
	ino_t ino;
	mode_t type;			/* S_IFMT bits, fixed for an inode */
	uint64_t nlookup;		/* protected by the table lock */
	struct cf_inode *hnext;		/* hash chain */

	/* File handle (name_to_handle_at) to reopen the inode; NULL for
	 * inodes we pin by fd instead (the pool root, inodes on another
	 * filesystem).  Not to be confused with a FUSE file's fi->fh, which
	 * is cowfs's open fd. */
	struct file_handle *handle;

	/* fd cache (protected by the fd cache lock) */
	int fd;				/* O_PATH fd or -1 */
	int fd_users;			/* borrowers of fd right now */
	bool pinned;			/* fd is never evicted */
	struct cf_inode *lru_prev, *lru_next;

	/* FUSE passthrough (cowfs/passthrough.c; under its backing lock) */
	int backing_id;			/* registered backing file, 0 if none */
	unsigned backing_opens;		/* open files using it */

	atomic_bool cow;		/* known CoW link (sticky) */
	atomic_bool unlinked_here;	/* its last name went away through us */
};

/* ---- itable.c: the inode hash table ------------------------------------- */

struct cf_itable {
	struct cf_inode **buckets;
	size_t nbuckets;		/* a power of two */
	size_t n;			/* entries */
};

/* @nbuckets: a power of two; the table doubles it as it fills.  0 or
 * -ENOMEM. */
int cf_itable_init(struct cf_itable *t, size_t nbuckets);
/* Hand every entry to @free_entry (may be NULL) and free the buckets. */
void cf_itable_fini(struct cf_itable *t, void (*free_entry)(struct cf_inode *in, void *arg),
		    void *arg);
struct cf_inode *cf_itable_find(const struct cf_itable *t, dev_t dev, ino_t ino);
/* Add @in (its dev and ino set, not in the table yet). */
void cf_itable_insert(struct cf_itable *t, struct cf_inode *in);
/* Take @in out of the table; false if it was not in it. */
bool cf_itable_remove(struct cf_itable *t, struct cf_inode *in);

/* ---- fdcache.c: the O_PATH fd cache -------------------------------------- */

struct cf_fdcache {
	struct cf_inode lru;		/* list head: lru.lru_next is the newest */
	unsigned n;			/* cached fds (pinned ones not counted) */
	unsigned max;			/* evict beyond this many */
};

void cf_fdcache_init(struct cf_fdcache *c, unsigned max);
/* Cache @fd as @in's fd, the newest; if @in has one already, @fd is closed
 * instead.  Does not evict (borrow first, then cf_fdcache_evict). */
void cf_fdcache_add(struct cf_fdcache *c, struct cf_inode *in, int fd);
/* Give @in the fd @fd for good: never evicted, not counted. */
void cf_fdcache_pin(struct cf_inode *in, int fd);
/* Keep an fd of @in for as long as the entry lives: pin the cached one
 * (taking it off the LRU list), or else @fd; @fd is closed when not used. */
void cf_fdcache_keep(struct cf_fdcache *c, struct cf_inode *in, int fd);
/* Borrow @in's fd (it becomes the newest and is not evicted until given
 * back with cf_fdcache_put): the fd, or -ENOENT when none is cached. */
int cf_fdcache_borrow(struct cf_fdcache *c, struct cf_inode *in);
void cf_fdcache_put(struct cf_inode *in);
/* Close the least recently used fds nobody is borrowing until at most
 * @max are cached (or every one left is borrowed). */
void cf_fdcache_evict(struct cf_fdcache *c);
/* @in goes away: close its fd, cached or pinned. */
void cf_fdcache_drop(struct cf_fdcache *c, struct cf_inode *in);

/* ---- pending.c: pending CoW breaks -------------------------------------- */

/*
 * A refused change to a CoW link (ESTALE) leaves a pending break for the
 * refused thread and the inode; the thread's re-walk looks the path up and
 * the lookup that finds the inode copies it up.  Keyed by (st_dev, st_ino),
 * not by nodeid: the kernel may forget a nodeid whose lookup failed and look
 * the inode up anew under another one.
 */
struct cf_pending {
	pid_t tid;		/* 0: a free slot */
	dev_t dev;
	ino_t ino;
	bool any;		/* whatever CoW link the walk finds */
	int err;		/* copy-up failed: answer this (negative) */
	struct timespec deadline;
};

#define CF_PENDING_MAX 64
/* The VFS retries within microseconds (docs/cowfs.md, "Breaking a CoW
 * link"); a second is generous even under a sanitizer build, short enough
 * to not linger. */
#define CF_PENDING_TTL_NS 1000000000L

struct cf_pending_table {
	pthread_mutex_t lock;
	atomic_int n;		/* slots in use: lets the common case skip the lock */
	long ttl_ns;		/* CF_PENDING_TTL_NS */
	struct cf_pending slot[CF_PENDING_MAX];
};

void cf_pending_init(struct cf_pending_table *t);
void cf_pending_destroy(struct cf_pending_table *t);
/* Record a break of (@dev, @ino) for @tid, replacing any @tid had.  @err 0:
 * copy it up; negative: a copy-up of it failed, answer that again (the
 * kernel retries a failed revalidation with a plain lookup, which must not
 * find the CoW link and let the retried operation fail ESTALE). */
void cf_pending_add(struct cf_pending_table *t, pid_t tid, dev_t dev, ino_t ino, int err);
/* Record a break of whatever CoW link @tid's re-walk finds. */
void cf_pending_add_any(struct cf_pending_table *t, pid_t tid);
/* Consume @tid's unexpired break matching (@dev, @ino): 1 copy it up, 0
 * none, negative: the error to answer. */
int cf_pending_take(struct cf_pending_table *t, pid_t tid, dev_t dev, ino_t ino);
/* @tid does something else: drop its break. */
void cf_pending_cancel(struct cf_pending_table *t, pid_t tid);
/* Breaks waiting now (not expired; n also counts expired slots nobody
 * has dropped yet). */
unsigned cf_pending_live(struct cf_pending_table *t);

#endif
