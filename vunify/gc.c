/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vunify gc: remove pool objects no guest uses any more.
 *
 * An object's link count minus one is the number of guest paths sharing it,
 * so an object with one link is garbage.  gc holds the pool's run lock for
 * the whole run: unify is the only thing that adds links to an object and it
 * takes the same lock, so a link count of 1 seen under the lock stays 1
 * (cowfs only ever removes names from a CoW link).
 *
 * Objects of one identity are HASH, HASH.1, HASH.2, ... and lookups stop at
 * the first missing generation.  gc keeps the generations dense: after
 * removing some, the survivors are renamed down (HASH.3 -> HASH.1) so that
 * every object stays reachable.  A crash between the two steps leaves a gap
 * that the next gc closes; until then unify fills the gap with a new object.
 *
 * gc also removes stat caches of guests that no longer exist.
 *
 * gc_run is that work without the command around it: vunify remove calls it
 * after taking guests apart.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hashdb/statcache.h"
#include "vunify/command.h"
#include "vunify/config.h"
#include "vunify/objects.h"
#include "vunify/prometheus.h"
#include "vunify/vunify.h"

enum { GONE = 1 };

struct gc {
	const struct options *o;
	struct hashdb_pool *pool;
	const uint64_t *gone;	/* sorted; see gc_run */
	size_t ngone;
	struct gc_stats *s;
};

struct name_arg {
	int dirfd;
	const char *from, *to;
};

static int rename_op(void *p)
{
	struct name_arg *a = p;

	return renameat2(a->dirfd, a->from, a->dirfd, a->to, RENAME_NOREPLACE) < 0 ? -errno : 0;
}

static void on_stray(void *ctx, const char *name, const char *why)
{
	struct gc *g = ctx;

	g->s->strays++;
	msg_error("%s/objects/%s: %s; left alone", HASHDB_DIR, esc(name, 0), why);
}

/* Remove object @e if it still has one link.  1 removed, 0 kept, <0 error. */
static int collect(struct gc *g, struct objent *e)
{
	char name[64];
	struct stat st;
	int fd, r;

	hashdb_object_name(e->hex, e->gen, name, sizeof(name));
	if (g->o->dry_run)
		return 1;
	fd = openat(g->pool->objfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	r = 0;
	if (st.st_nlink != 1 || st.st_ino != e->ino)
		goto out;	/* changed since listed: not ours to judge */
	r = cowlink_unlink(g->pool->flagfd, fd, g->pool->objfd, name);
	r = r ?: 1;
out:
	close(fd);
	return r;
}

/* Rename object (hex, from) to (hex, to), a free name. */
static int renumber(struct gc *g, const char *hex, unsigned from, unsigned to)
{
	char a[64], b[64];
	struct name_arg arg = { g->pool->objfd, a, b };
	int fd, r;

	hashdb_object_name(hex, from, a, sizeof(a));
	hashdb_object_name(hex, to, b, sizeof(b));
	if (g->o->dry_run)
		return 0;
	fd = openat(g->pool->objfd, a, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = cowlink_with_mutable(g->pool->flagfd, fd, rename_op, &arg);
	close(fd);
	return r;
}

/* Close the gaps in the generations of one identity: v[0..n) sorted by gen. */
static void compact(struct gc *g, struct objent *v, size_t n)
{
	unsigned next = 0;

	for (size_t i = 0; i < n; i++) {
		int r;

		if (v[i].flags & GONE)
			continue;
		if (v[i].gen != next) {
			r = renumber(g, v[i].hex, v[i].gen, next);
			if (r < 0) {
				g->s->errors++;
				char name[64];

				hashdb_object_name(v[i].hex, v[i].gen, name, sizeof(name));
				msg_error("%s/objects/%s: cannot rename to generation %u: %s",
					  HASHDB_DIR, name, next, strerror(-r));
				/* Keep it where it is; the next survivors go after it. */
				next = v[i].gen + 1;
				continue;
			}
			g->s->renamed++;
			msg_info(g->o, "%.2s/%s: generation %u renamed to %u", v[i].hex, v[i].hex,
				 v[i].gen, next);
		}
		next++;
	}
}

/* How many of the names a dry run would have unlinked are of inode @ino. */
static uint64_t gone_links(const struct gc *g, uint64_t ino)
{
	size_t lo = 0, hi = g->ngone, n = 0;

	while (lo < hi) {	/* first entry >= ino */
		size_t mid = lo + (hi - lo) / 2;

		if (g->gone[mid] < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo + n < g->ngone && g->gone[lo + n] == ino)
		n++;
	return n;
}

static void gc_objects(struct gc *g, struct objlist *l)
{
	size_t i = 0;

	while (i < l->n) {
		size_t j = i;

		for (; j < l->n && !strcmp(l->v[j].hex, l->v[i].hex); j++) {
			struct objent *e = &l->v[j];
			int r;

			uint64_t gone = gone_links(g, e->ino);

			if (gone >= e->nlink || e->nlink - gone != 1)
				continue;
			r = collect(g, e);
			if (r < 0) {
				g->s->errors++;
				char name[64];

				hashdb_object_name(e->hex, e->gen, name, sizeof(name));
				msg_error("%s/objects/%s: cannot remove: %s", HASHDB_DIR, name,
					  strerror(-r));
			} else if (r > 0) {
				e->flags |= GONE;
				g->s->removed++;
				g->s->freed += e->blocks * 512;
				char name[64];

				hashdb_object_name(e->hex, e->gen, name, sizeof(name));
				msg_info(g->o, "%s: no guest uses it; removed", name);
			}
		}
		compact(g, l->v + i, j - i);
		i = j;
	}
}

/* cache/<hex of guest name>.sc of a guest that is gone. */
static void gc_caches(struct gc *g)
{
	struct dirent *de;
	DIR *d;

	if (hashdb_opendir(g->pool->cachefd, ".", &d) < 0)
		return;
	while ((de = readdir(d))) {
		char guest[NAME_MAX + 1];
		struct stat st;

		if (hashdb_sc_guest_of(de->d_name, guest, sizeof(guest)) < 0)
			continue;	/* temporary files of a running save, or not ours */
		if (fstatat(g->pool->dirfd, guest, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode))
			continue;
		if (!g->o->dry_run && unlinkat(g->pool->cachefd, de->d_name, 0) < 0)
			continue;
		g->s->caches++;
		msg_info(g->o, "%s: guest is gone; its stat cache removed", esc(guest, 0));
	}
	closedir(d);
}

static const char help[] =
	"Usage: vunify gc [OPTIONS] POOL\n"
	"Remove pool objects no guest uses any more, and stat caches of guests that\n"
	"are gone.  Holds the pool lock, so it is safe while unify may start.\n\n"
	"  -n, --dry-run          show what would be removed, change nothing\n"
	"      --json             print the run's figures as one JSON object on stdout\n"
	"      --prometheus FILE  write the run's metrics for node_exporter to FILE\n"
	"  -c, --config FILE      system configuration (default " VUNIFY_SYSCONF ")\n"
	"  -v, --verbose          name every object removed\n"
	"  -q, --quiet            no summary\n"
	"  -h, --help             show this help\n";

static void write_metrics(const struct options *o, const struct gc_stats *s,
			  const char *poolpath, int rc, uint64_t ms)
{
	struct prom p;

	if (!prom_begin(&p, o, "gc", poolpath))
		return;
	prom_gauge(&p, "vunify_gc_objects", "objects in the pool before the run", (double)s->objects);
	prom_gauge(&p, "vunify_gc_removed_objects", "objects removed by the run", (double)s->removed);
	prom_gauge(&p, "vunify_gc_freed_bytes", "bytes freed by the run", (double)s->freed);
	prom_gauge(&p, "vunify_gc_renamed_objects", "objects renumbered to close a gap",
		   (double)s->renamed);
	prom_gauge(&p, "vunify_gc_errors", "objects that could not be handled", (double)s->errors);
	prom_finish(&p, "gc", rc, ms / 1000.0);
}

int gc_run(struct hashdb_pool *p, const struct options *o, const uint64_t *gone, size_t ngone,
	   struct gc_stats *s)
{
	struct gc g = { .o = o, .pool = p, .gone = gone, .ngone = ngone, .s = s };
	struct objlist l = { 0 };
	int r = objects_list(p, &l, on_stray, &g);

	if (r < 0)
		return r;
	s->objects = l.n;
	gc_objects(&g, &l);
	if (p->cachefd >= 0)
		gc_caches(&g);
	objects_free(&l);
	return 0;
}

/* The command: gc_run, reported. */
static int run(struct cmd *c)
{
	struct gc_stats g = { 0 };
	const struct options *o = &c->o;
	int r = gc_run(&c->pool, o, NULL, 0, &g), rc;

	if (r < 0) {
		msg_error("%s: cannot list objects: %s", esc(c->poolpath, 0), strerror(-r));
		return EXIT_FATAL;
	}
	rc = g.errors ? EXIT_TROUBLE : EXIT_OK;
	if (o->json)
		printf("{\"dry_run\":%s,\"objects\":%" PRIu64 ",\"removed\":%" PRIu64
		       ",\"freed_bytes\":%" PRIu64 ",\"renamed\":%" PRIu64 ",\"caches_removed\":%" PRIu64
		       ",\"strays\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"elapsed_ms\":%" PRIu64 "}\n",
		       o->dry_run ? "true" : "false", g.objects, g.removed, g.freed, g.renamed,
		       g.caches, g.strays, g.errors, now_ms() - c->t0);
	if (o->verbose >= 0)
		fprintf(stderr, "vunify: gc: %" PRIu64 " objects, %s %" PRIu64 " (%.1f MiB), "
			"renumbered %" PRIu64 ", %" PRIu64 " stale stat caches%s\n",
			g.objects, o->dry_run ? "would remove" : "removed", g.removed,
			g.freed / 1048576.0, g.renamed, g.caches,
			o->dry_run ? " (dry run: nothing changed)" : "");
	write_metrics(o, &g, c->poolpath, rc, now_ms() - c->t0);
	return rc;
}

const struct command gc_command = {
	.name = "gc",
	.what = "remove pool objects no guest uses any more",
	.help = help,
	.common = CMD_DRY_RUN | CMD_JSON | CMD_PROMETHEUS | CMD_CONFIG | CMD_VERBOSE | CMD_QUIET,
	.shortopts = "",
	.min_args = 1, .max_args = 1,
	.pool = CMD_POOL_LOCKED,
	.guests = CMD_GUESTS_NONE,
	.run = run,
};
