/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "vunify/objects.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_obj(const void *a, const void *b)
{
	const struct objent *x = a, *y = b;
	int c = strcmp(x->hex, y->hex);

	if (c)
		return c;
	return x->gen < y->gen ? -1 : x->gen > y->gen;
}

static int push(struct objlist *l, const struct objent *e)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct objent *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *e;
	l->bytes += e->size;
	return 0;
}

/* The objects in shard directory @shard, open for listing as @d. */
static int list_shard(DIR *d, const char *shard, struct objlist *l, objects_stray_fn stray,
		      void *ctx)
{
	int shardfd = dirfd(d), r = 0;
	struct dirent *de;
	char where[COWLINK_HEX_LEN + 300];

	while ((de = readdir(d))) {
		struct objent e = { 0 };
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(where, sizeof(where), "%s/%s", shard, de->d_name);
		if (hashdb_object_parse_name(de->d_name, e.hex, &e.gen) < 0) {
			stray(ctx, where, "not an object name");
			continue;
		}
		if (!hashdb_object_in_shard(e.hex, shard)) {
			stray(ctx, where, "object in the wrong shard directory");
			continue;
		}
		if (fstatat(shardfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			r = -errno;
			break;
		}
		if (!S_ISREG(st.st_mode)) {
			stray(ctx, where, "not a regular file");
			continue;
		}
		e.ino = st.st_ino;
		e.size = (uint64_t)st.st_size;
		e.blocks = (uint64_t)st.st_blocks;
		e.nlink = st.st_nlink;
		r = push(l, &e);
		if (r < 0)
			break;
	}
	return r;
}

int objects_list(struct hashdb_pool *p, struct objlist *l, objects_stray_fn stray, void *ctx)
{
	DIR *d;
	struct dirent *de;
	int r = 0;

	memset(l, 0, sizeof(*l));
	if (p->objfd < 0)
		return 0;
	r = hashdb_opendir(p->objfd, ".", &d);
	if (r < 0)
		return r;
	while (r == 0 && (de = readdir(d))) {
		DIR *sd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!hashdb_shard_valid(de->d_name) || hashdb_opendir(p->objfd, de->d_name, &sd) < 0) {
			stray(ctx, de->d_name, "not a shard directory");
			continue;
		}
		r = list_shard(sd, de->d_name, l, stray, ctx);
		closedir(sd);
	}
	closedir(d);
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), cmp_obj);
	return r;
}

void objects_free(struct objlist *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}
