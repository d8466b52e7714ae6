/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pending CoW breaks (see tables.h and cow.c): a small array, one entry
 * per refused thread, each expiring after ttl_ns.  A thread's new break
 * replaces its old one; a full table overwrites a slot.
 */
#include "cowfs/tables.h"

#include <string.h>

#define NS_PER_S 1000000000L

void cf_pending_init(struct cf_pending_table *t)
{
	memset(t->slot, 0, sizeof(t->slot));
	pthread_mutex_init(&t->lock, NULL);
	atomic_init(&t->n, 0);
	t->ttl_ns = CF_PENDING_TTL_NS;
}

void cf_pending_destroy(struct cf_pending_table *t)
{
	pthread_mutex_destroy(&t->lock);
}

static bool expired(const struct timespec *now, const struct timespec *dl)
{
	return now->tv_sec > dl->tv_sec || (now->tv_sec == dl->tv_sec && now->tv_nsec > dl->tv_nsec);
}

static struct timespec deadline_after(struct timespec now, long ns)
{
	now.tv_sec += ns / NS_PER_S;
	now.tv_nsec += ns % NS_PER_S;
	now.tv_sec += now.tv_nsec / NS_PER_S;
	now.tv_nsec %= NS_PER_S;
	return now;
}

/* Caller holds the lock. */
static void drop_locked(struct cf_pending_table *t, int i)
{
	t->slot[i].tid = 0;
	atomic_fetch_sub(&t->n, 1);
}

/* Caller holds the lock: drop @tid's break and the expired ones, and
 * return a slot for @tid. */
static struct cf_pending *slot_for_locked(struct cf_pending_table *t, pid_t tid,
					  const struct timespec *now)
{
	int free_slot = -1;

	for (int i = 0; i < CF_PENDING_MAX; i++) {
		struct cf_pending *p = &t->slot[i];

		if (p->tid && (p->tid == tid || expired(now, &p->deadline)))
			drop_locked(t, i);
		if (!p->tid && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)	/* full: overwrite one */
		return &t->slot[(unsigned)tid % CF_PENDING_MAX];
	atomic_fetch_add(&t->n, 1);
	return &t->slot[free_slot];
}

static void set(struct cf_pending_table *t, pid_t tid, dev_t dev, ino_t ino, bool any, int err)
{
	struct cf_pending *p;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&t->lock);
	p = slot_for_locked(t, tid, &now);
	*p = (struct cf_pending){ .tid = tid, .dev = dev, .ino = ino, .any = any, .err = err,
				  .deadline = deadline_after(now, t->ttl_ns) };
	pthread_mutex_unlock(&t->lock);
}

void cf_pending_add(struct cf_pending_table *t, pid_t tid, dev_t dev, ino_t ino, int err)
{
	set(t, tid, dev, ino, false, err);
}

void cf_pending_add_any(struct cf_pending_table *t, pid_t tid)
{
	set(t, tid, 0, 0, true, 0);
}

int cf_pending_take(struct cf_pending_table *t, pid_t tid, dev_t dev, ino_t ino)
{
	struct timespec now;
	int found = 0;

	if (atomic_load(&t->n) == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < CF_PENDING_MAX; i++) {
		struct cf_pending *p = &t->slot[i];

		if (!p->tid)
			continue;
		if (expired(&now, &p->deadline)) {
			drop_locked(t, i);
			continue;
		}
		if (p->tid == tid && (p->any || (p->dev == dev && p->ino == ino))) {
			found = p->err ? p->err : 1;
			drop_locked(t, i);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return found;
}

void cf_pending_cancel(struct cf_pending_table *t, pid_t tid)
{
	if (atomic_load(&t->n) == 0)
		return;
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < CF_PENDING_MAX; i++)
		if (t->slot[i].tid == tid)
			drop_locked(t, i);
	pthread_mutex_unlock(&t->lock);
}

unsigned cf_pending_live(struct cf_pending_table *t)
{
	struct timespec now;
	unsigned n = 0;

	if (atomic_load(&t->n) == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < CF_PENDING_MAX; i++)
		if (t->slot[i].tid && !expired(&now, &t->slot[i].deadline))
			n++;
	pthread_mutex_unlock(&t->lock);
	return n;
}
