/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cowfs's own data structures (cowfs/tables.h), without FUSE or root: the
 * inode hash table (insert/find/remove, growth, same inode number on two
 * devices), the O_PATH fd cache (eviction order, borrowed and pinned fds
 * never evicted, fds closed on eviction and drop) and the pending-break
 * table (keys, consumption, errors, replacement, cancel, expiry, a full
 * table). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cowfs/tables.h"

static struct cf_inode *entry(dev_t dev, ino_t ino)
{
	struct cf_inode *in = calloc(1, sizeof(*in));

	cr_assert_not_null(in);
	in->dev = dev;
	in->ino = ino;
	in->fd = -1;
	return in;
}

/* ---- inode hash table ------------------------------------------------------ */

Test(itable, insert_find_remove)
{
	struct cf_itable t;
	struct cf_inode *a = entry(1, 100), *b = entry(2, 100), *c = entry(1, 101);

	cr_assert_eq(cf_itable_init(&t, 4), 0);
	cr_assert_null(cf_itable_find(&t, 1, 100));
	cf_itable_insert(&t, a);
	cf_itable_insert(&t, b);
	cf_itable_insert(&t, c);
	cr_assert_eq(t.n, 3);
	cr_assert_eq(cf_itable_find(&t, 1, 100), a);
	cr_assert_eq(cf_itable_find(&t, 2, 100), b, "same inode number, other device");
	cr_assert_eq(cf_itable_find(&t, 1, 101), c);
	cr_assert_null(cf_itable_find(&t, 2, 101));

	cr_assert(cf_itable_remove(&t, a));
	cr_assert_null(cf_itable_find(&t, 1, 100));
	cr_assert_eq(cf_itable_find(&t, 2, 100), b);
	cr_assert_eq(t.n, 2);
	cr_assert_not(cf_itable_remove(&t, a), "removing twice");
	cr_assert_eq(t.n, 2);
	free(a);
	cf_itable_fini(&t, NULL, NULL);
	free(b);
	free(c);
}

Test(itable, grows_and_keeps_every_entry)
{
	enum { N = 5000 };
	static struct cf_inode *e[N];
	struct cf_itable t;

	cr_assert_eq(cf_itable_init(&t, 4), 0);
	for (int i = 0; i < N; i++) {
		e[i] = entry((dev_t)(i % 3), (ino_t)(i * 7919));
		cf_itable_insert(&t, e[i]);
	}
	cr_assert_eq(t.n, N);
	cr_assert_gt(t.nbuckets, 4, "the table did not grow");
	cr_assert_eq(t.nbuckets & (t.nbuckets - 1), 0, "nbuckets %zu is no power of two",
		     t.nbuckets);
	cr_assert_geq(t.nbuckets * 2, N, "chains average over two entries");
	for (int i = 0; i < N; i++)
		cr_assert_eq(cf_itable_find(&t, e[i]->dev, e[i]->ino), e[i], "entry %d", i);
	for (int i = 0; i < N; i += 2)
		cr_assert(cf_itable_remove(&t, e[i]));
	cr_assert_eq(t.n, N / 2);
	for (int i = 0; i < N; i++) {
		struct cf_inode *f = cf_itable_find(&t, e[i]->dev, e[i]->ino);

		cr_assert_eq(f, i % 2 ? e[i] : NULL, "entry %d", i);
	}
	for (int i = 0; i < N; i += 2)
		free(e[i]);
	cf_itable_fini(&t, NULL, NULL);
	for (int i = 1; i < N; i += 2)
		free(e[i]);
}

static void count_and_free(struct cf_inode *in, void *arg)
{
	(*(int *)arg)++;
	free(in);
}

Test(itable, fini_hands_over_every_entry)
{
	struct cf_itable t;
	int n = 0;

	cr_assert_eq(cf_itable_init(&t, 8), 0);
	for (int i = 0; i < 100; i++)
		cf_itable_insert(&t, entry(5, (ino_t)i));
	cf_itable_fini(&t, count_and_free, &n);
	cr_assert_eq(n, 100);
	cr_assert_null(t.buckets);
	cr_assert_eq(t.n, 0);
}

/* ---- fd cache ----------------------------------------------------------------- */

static int new_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open /dev/null: %m");
	return fd;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* What cf_fd_get does with a freshly opened fd: cache, borrow, evict. */
static int cache_and_borrow(struct cf_fdcache *c, struct cf_inode *in)
{
	int fd;

	cf_fdcache_add(c, in, new_fd());
	fd = cf_fdcache_borrow(c, in);
	cf_fdcache_evict(c);
	return fd;
}

Test(fdcache, evicts_least_recently_used)
{
	struct cf_fdcache c;
	struct cf_inode in[5] = { 0 };
	int fd[5];

	cf_fdcache_init(&c, 3);
	for (int i = 0; i < 5; i++)
		in[i].fd = -1;
	for (int i = 0; i < 3; i++) {
		fd[i] = cache_and_borrow(&c, &in[i]);
		cf_fdcache_put(&in[i]);
	}
	cr_assert_eq(c.n, 3);
	/* 0 is used again, so 1 is now the least recently used */
	cr_assert_eq(cf_fdcache_borrow(&c, &in[0]), fd[0]);
	cf_fdcache_put(&in[0]);
	fd[3] = cache_and_borrow(&c, &in[3]);
	cf_fdcache_put(&in[3]);
	cr_assert_eq(c.n, 3);
	cr_assert_eq(in[1].fd, -1, "the least recently used fd stayed");
	cr_assert_not(fd_open(fd[1]), "an evicted fd was not closed");
	cr_assert_eq(in[0].fd, fd[0]);
	cr_assert(fd_open(fd[0]));
	fd[4] = cache_and_borrow(&c, &in[4]);
	cf_fdcache_put(&in[4]);
	cr_assert_eq(in[2].fd, -1, "next in line: 2");
	cr_assert_not(fd_open(fd[2]));
	cr_assert(fd_open(fd[0]) && fd_open(fd[3]) && fd_open(fd[4]));
	cr_assert_eq(cf_fdcache_borrow(&c, &in[1]), -ENOENT, "an evicted entry has no fd");
	for (int i = 0; i < 5; i++)
		cf_fdcache_drop(&c, &in[i]);
	cr_assert_eq(c.n, 0);
	cr_assert_not(fd_open(fd[0]) || fd_open(fd[3]) || fd_open(fd[4]), "drop closes");
}

Test(fdcache, borrowed_fds_are_never_evicted)
{
	struct cf_fdcache c;
	struct cf_inode a = { .fd = -1 }, b = { .fd = -1 }, d = { .fd = -1 };
	int fa, fb, fd;

	cf_fdcache_init(&c, 1);
	fa = cache_and_borrow(&c, &a);
	fb = cache_and_borrow(&c, &b);
	cr_assert_eq(c.n, 2, "both borrowed: the cache may exceed its size");
	cr_assert(fd_open(fa) && fd_open(fb));
	cf_fdcache_put(&a);
	fd = cache_and_borrow(&c, &d);	/* b and d borrowed, a free */
	cr_assert_eq(a.fd, -1, "the one fd given back is the one evicted");
	cr_assert_not(fd_open(fa));
	cr_assert_eq(b.fd, fb);
	cr_assert_eq(d.fd, fd);
	cr_assert_eq(c.n, 2);
	cf_fdcache_put(&b);
	cf_fdcache_put(&d);
	cf_fdcache_evict(&c);
	cr_assert_eq(c.n, 1);
	cr_assert_eq(b.fd, -1, "b is older than d");
	cr_assert_eq(d.fd, fd);
	cf_fdcache_drop(&c, &d);
}

Test(fdcache, pinned_fds_stay_and_do_not_count)
{
	struct cf_fdcache c;
	struct cf_inode p = { .fd = -1 }, a = { .fd = -1 };
	int fp = new_fd(), fa;

	cf_fdcache_init(&c, 0);
	cf_fdcache_pin(&p, fp);
	cr_assert_eq(c.n, 0);
	cr_assert_eq(cf_fdcache_borrow(&c, &p), fp);
	cf_fdcache_put(&p);
	fa = cache_and_borrow(&c, &a);
	cf_fdcache_put(&a);
	cf_fdcache_evict(&c);
	cr_assert_eq(a.fd, -1, "fd_cache=0 keeps no unpinned fd");
	cr_assert_not(fd_open(fa));
	cr_assert_eq(p.fd, fp, "a pinned fd was evicted");
	cr_assert(fd_open(fp));
	cf_fdcache_drop(&c, &p);
	cr_assert_eq(p.fd, -1);
	cr_assert_not(fd_open(fp), "drop closes a pinned fd too");
}

Test(fdcache, second_fd_for_one_inode_is_closed)
{
	struct cf_fdcache c;
	struct cf_inode a = { .fd = -1 };
	int f1 = new_fd(), f2 = new_fd();

	cf_fdcache_init(&c, 4);
	cf_fdcache_add(&c, &a, f1);
	cf_fdcache_add(&c, &a, f2);	/* two threads opened it at once */
	cr_assert_eq(a.fd, f1);
	cr_assert_eq(c.n, 1);
	cr_assert_not(fd_open(f2), "the loser's fd leaked");
	cf_fdcache_drop(&c, &a);
	cr_assert_not(fd_open(f1));
}

/* A removed directory's fd is kept for as long as its entry lives: the
 * cached one is pinned (off the list, never evicted), else the new one. */
Test(fdcache, keep_pins_the_cached_fd_or_the_given_one)
{
	struct cf_fdcache c;
	struct cf_inode a = { .fd = -1 }, b = { .fd = -1 }, x = { .fd = -1 };
	int fa, fb = new_fd(), extra = new_fd(), fx;

	cf_fdcache_init(&c, 0);
	fa = cache_and_borrow(&c, &a);	/* cached, borrowed: not evicted yet */
	cf_fdcache_keep(&c, &a, extra);
	cr_assert_not(fd_open(extra), "the fd not needed was not closed");
	cr_assert_eq(a.fd, fa);
	cr_assert(a.pinned);
	cr_assert_eq(c.n, 0, "a kept fd still counts in the cache");
	cf_fdcache_put(&a);
	fx = cache_and_borrow(&c, &x);
	cf_fdcache_put(&x);
	cf_fdcache_evict(&c);
	cr_assert_not(fd_open(fx), "fd_cache=0 keeps no unpinned fd");
	cr_assert_eq(a.fd, fa, "a kept fd was evicted");
	cf_fdcache_keep(&c, &b, fb);	/* nothing cached: the given fd */
	cr_assert_eq(b.fd, fb);
	cr_assert(b.pinned);
	cf_fdcache_drop(&c, &a);
	cf_fdcache_drop(&c, &b);
	cr_assert_not(fd_open(fa) || fd_open(fb), "drop closes kept fds");
}

/* ---- pending breaks ----------------------------------------------------------- */

/* Each test runs in a process of its own (Criterion), on a fresh table. */
static struct cf_pending_table pend;

static void pending_setup(void)
{
	cf_pending_init(&pend);
}

static void pending_teardown(void)
{
	cf_pending_destroy(&pend);
}

TestSuite(pending, .init = pending_setup, .fini = pending_teardown);

Test(pending, taken_once_by_its_thread_and_inode)
{
	cr_assert_eq(cf_pending_take(&pend, 100, 1, 42), 0, "an empty table");
	cf_pending_add(&pend, 100, 1, 42, 0);
	cr_assert_eq(cf_pending_take(&pend, 101, 1, 42), 0, "another thread");
	cr_assert_eq(cf_pending_take(&pend, 100, 1, 43), 0, "another inode");
	cr_assert_eq(cf_pending_take(&pend, 100, 2, 42), 0, "same number, other device");
	cr_assert_eq(cf_pending_take(&pend, 100, 1, 42), 1);
	cr_assert_eq(cf_pending_take(&pend, 100, 1, 42), 0, "taken twice");
	cr_assert_eq(atomic_load(&pend.n), 0);
}

Test(pending, failed_copy_up_answers_its_error)
{
	cf_pending_add(&pend, 7, 1, 42, -ENOSPC);
	cr_assert_eq(cf_pending_take(&pend, 7, 1, 42), -ENOSPC);
	cr_assert_eq(cf_pending_take(&pend, 7, 1, 42), 0);
}

Test(pending, any_matches_whatever_the_walk_finds)
{
	cf_pending_add_any(&pend, 7);
	cr_assert_eq(cf_pending_take(&pend, 8, 3, 99), 0);
	cr_assert_eq(cf_pending_take(&pend, 7, 3, 99), 1);
	cr_assert_eq(cf_pending_take(&pend, 7, 3, 99), 0);
}

Test(pending, a_new_break_replaces_the_threads_old_one)
{
	cf_pending_add(&pend, 7, 1, 10, 0);
	cf_pending_add(&pend, 8, 1, 10, 0);
	cf_pending_add(&pend, 7, 1, 11, 0);
	cr_assert_eq(atomic_load(&pend.n), 2);
	cr_assert_eq(cf_pending_take(&pend, 7, 1, 10), 0, "the replaced break still counts");
	cr_assert_eq(cf_pending_take(&pend, 7, 1, 11), 1);
	cr_assert_eq(cf_pending_take(&pend, 8, 1, 10), 1, "another thread's break was lost");
}

Test(pending, cancel_drops_only_that_threads_break)
{
	cf_pending_add(&pend, 7, 1, 10, 0);
	cf_pending_add(&pend, 8, 1, 10, 0);
	cf_pending_cancel(&pend, 7);
	cr_assert_eq(cf_pending_take(&pend, 7, 1, 10), 0);
	cr_assert_eq(cf_pending_take(&pend, 8, 1, 10), 1);
}

Test(pending, breaks_expire)
{
	struct timespec pause = { 0, 60 * 1000 * 1000 };

	cr_assert_eq(pend.ttl_ns, CF_PENDING_TTL_NS);
	pend.ttl_ns = 20 * 1000 * 1000;
	cf_pending_add(&pend, 7, 1, 10, 0);
	cf_pending_add(&pend, 8, 1, 10, -EIO);
	nanosleep(&pause, NULL);
	cr_assert_eq(cf_pending_take(&pend, 7, 1, 10), 0, "an expired break was taken");
	cr_assert_eq(cf_pending_take(&pend, 8, 1, 10), 0, "an expired error was answered");
	cr_assert_eq(atomic_load(&pend.n), 0, "expired breaks were not dropped");
	pend.ttl_ns = CF_PENDING_TTL_NS;
	cf_pending_add(&pend, 7, 1, 10, 0);
	cr_assert_eq(cf_pending_take(&pend, 7, 1, 10), 1, "a fresh break expired");
}

Test(pending, live_counts_only_unexpired_breaks)
{
	struct timespec pause = { 0, 60 * 1000 * 1000 };

	cr_assert_eq(cf_pending_live(&pend), 0);
	pend.ttl_ns = 20 * 1000 * 1000;
	cf_pending_add(&pend, 7, 1, 10, -EIO);
	cr_assert_eq(cf_pending_live(&pend), 1);
	nanosleep(&pause, NULL);
	pend.ttl_ns = CF_PENDING_TTL_NS;
	cf_pending_add_any(&pend, 8);
	cr_assert_eq(cf_pending_live(&pend), 1, "an expired break was counted");
}

Test(pending, a_full_table_still_takes_the_newest)
{
	for (pid_t tid = 1; tid <= CF_PENDING_MAX; tid++)
		cf_pending_add(&pend, tid, 1, (ino_t)tid, 0);
	cr_assert_eq(atomic_load(&pend.n), CF_PENDING_MAX);
	cf_pending_add(&pend, 1000, 1, 1000, 0);
	cr_assert_eq(atomic_load(&pend.n), CF_PENDING_MAX);
	cr_assert_eq(cf_pending_take(&pend, 1000, 1, 1000), 1);
	cr_assert_eq(cf_pending_take(&pend, 2, 1, 2), 1, "an unrelated break was overwritten");
}
