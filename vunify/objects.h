/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A listing of the pool's object store, for gc and verify. */
#ifndef VUNIFY_OBJECTS_H
#define VUNIFY_OBJECTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "hashdb/pool.h"

struct objent {
	char hex[COWLINK_HEX_LEN + 1];
	unsigned gen;
	uint64_t ino, size, blocks, nlink;
	int flags;		/* the command's own use */
};

struct objlist {
	struct objent *v;
	size_t n, cap;
	uint64_t bytes;		/* sum of sizes */
};

/* Called for names in objects/ that are not objects ("xx/NAME"). */
typedef void (*objects_stray_fn)(void *ctx, const char *name, const char *why);

/* Every object of the pool (lstat'ed), sorted by (hex, gen).  Names that
 * are not objects (wrong shape, wrong shard, not a regular file) go to
 * @stray and are left out. */
int objects_list(struct hashdb_pool *p, struct objlist *l, objects_stray_fn stray, void *ctx);
void objects_free(struct objlist *l);

#endif
