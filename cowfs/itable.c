/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The inode hash table: chained buckets keyed by (st_dev, st_ino), doubled
 * when the chains average two entries.  The caller serialises.
 */
#include "cowfs/tables.h"

#include <errno.h>
#include <stdlib.h>

static size_t bucket_of(size_t nbuckets, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev;

	return (size_t)(h ^ (h >> 29)) & (nbuckets - 1);
}

int cf_itable_init(struct cf_itable *t, size_t nbuckets)
{
	t->buckets = calloc(nbuckets, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	t->nbuckets = nbuckets;
	t->n = 0;
	return 0;
}

void cf_itable_fini(struct cf_itable *t, void (*free_entry)(struct cf_inode *in, void *arg),
		    void *arg)
{
	for (size_t b = 0; b < t->nbuckets; b++) {
		struct cf_inode *in = t->buckets[b], *next;

		for (; in; in = next) {
			next = in->hnext;
			if (free_entry)
				free_entry(in, arg);
		}
	}
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = 0;
	t->n = 0;
}

struct cf_inode *cf_itable_find(const struct cf_itable *t, dev_t dev, ino_t ino)
{
	struct cf_inode *in;

	for (in = t->buckets[bucket_of(t->nbuckets, dev, ino)]; in; in = in->hnext)
		if (in->dev == dev && in->ino == ino)
			return in;
	return NULL;
}

/* Doubling keeps chains short; a failed allocation just leaves them
 * longer. */
static void maybe_grow(struct cf_itable *t)
{
	size_t n = t->nbuckets * 2;
	struct cf_inode **nb;

	if (t->n < t->nbuckets * 2)
		return;
	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;
	for (size_t b = 0; b < t->nbuckets; b++) {
		struct cf_inode *in = t->buckets[b], *next;

		for (; in; in = next) {
			size_t nbk = bucket_of(n, in->dev, in->ino);

			next = in->hnext;
			in->hnext = nb[nbk];
			nb[nbk] = in;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
}

void cf_itable_insert(struct cf_itable *t, struct cf_inode *in)
{
	size_t b = bucket_of(t->nbuckets, in->dev, in->ino);

	in->hnext = t->buckets[b];
	t->buckets[b] = in;
	t->n++;
	maybe_grow(t);
}

bool cf_itable_remove(struct cf_itable *t, struct cf_inode *in)
{
	struct cf_inode **pp = &t->buckets[bucket_of(t->nbuckets, in->dev, in->ino)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == in) {
			*pp = in->hnext;
			in->hnext = NULL;
			t->n--;
			return true;
		}
	}
	return false;
}
