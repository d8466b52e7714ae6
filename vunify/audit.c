/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vunify audit: what each guest costs on disk.
 *
 * Per guest, every inode is counted once (as du(1) counts one tree):
 *   entries    names walked (directories, symlinks, specials included) + root
 *   apparent   st_size of its inodes          (du -sb GUEST)
 *   allocated  st_blocks * 512 of its inodes  (du -sB1 GUEST)
 *   private    allocated of inodes no other guest uses: names only in this
 *              guest, or in this guest and the pool object (a CoW link no
 *              other guest shares yet).  What deleting the guest frees
 *              (after vunify gc for the latter)
 *   shared     allocated of inodes other guests use too (CoW links shared
 *              with another guest, or anything else linked from outside)
 * The pool line counts every inode of POOL once, .hashdb included, and so
 * agrees with du -sB1 POOL.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "vunify/command.h"
#include "vunify/config.h"
#include "vunify/prometheus.h"
#include "vunify/vunify.h"
#include "vunify/walk.h"

/* ino -> (links seen, nlink, blocks), open addressing; only inodes with
 * more than one link go in, the rest are counted on the spot. */
struct inode_slot {
	uint64_t ino;	/* 0 = empty */
	uint32_t seen, nlink;
	uint64_t blocks;
	bool immutable;
};

struct inode_map {
	struct inode_slot *s;
	size_t cap, n;
};

static struct inode_slot *map_get(struct inode_map *m, uint64_t ino, bool *fresh)
{
	size_t i;

	if (m->n * 2 >= m->cap) {
		struct inode_map nm = { .cap = m->cap ? m->cap * 2 : 4096 };

		nm.s = calloc(nm.cap, sizeof(*nm.s));
		if (!nm.s)
			return NULL;
		for (size_t j = 0; j < m->cap; j++) {
			if (m->s[j].ino) {
				bool f;
				*map_get(&nm, m->s[j].ino, &f) = m->s[j];
			}
		}
		free(m->s);
		*m = nm;
	}
	for (i = (ino * 0x9e3779b97f4a7c15ull) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->s[i].ino == ino) {
			*fresh = false;
			return &m->s[i];
		}
		if (m->s[i].ino == 0) {
			m->s[i].ino = ino;
			m->n++;
			*fresh = true;
			return &m->s[i];
		}
	}
}

struct usage {
	uint64_t entries, files, apparent, allocated, private_, shared;
};

struct audit {
	const struct options *o;
	struct inode_map guest, pool;	/* pool: multi-link inodes of the whole pool */
	struct usage u;
	uint64_t pool_apparent, pool_allocated, errors, objects;
	bool in_state;
	bool bytes;		/* -b: exact byte counts */
	const char *label;
	struct progress prog;
};

/* Count one inode for the current guest and for the pool total. */
static int count_inode(struct audit *a, uint64_t ino, uint32_t nlink, uint64_t size,
		       uint64_t blocks, bool is_dir, bool immutable)
{
	bool fresh;

	if (nlink > 1 && !is_dir) {
		struct inode_slot *g = map_get(&a->guest, ino, &fresh), *p;

		if (!g)
			return -ENOMEM;
		g->seen++;
		g->nlink = nlink;
		g->blocks = blocks;
		g->immutable = immutable;
		if (fresh) {
			a->u.apparent += size;
			a->u.allocated += blocks * 512;
		}
		p = map_get(&a->pool, ino, &fresh);
		if (!p)
			return -ENOMEM;
		if (fresh) {
			a->pool_apparent += size;
			a->pool_allocated += blocks * 512;
		}
		return 0;
	}
	a->u.apparent += size;
	a->u.allocated += blocks * 512;
	a->u.private_ += blocks * 512;
	a->pool_apparent += size;
	a->pool_allocated += blocks * 512;
	return 0;
}

static int on_entry(void *ctx, const struct walk_entry *e)
{
	struct audit *a = ctx;
	const struct statx *s = e->stx;

	a->u.entries++;
	if (S_ISREG(s->stx_mode)) {
		a->u.files++;
		if (a->in_state && strncmp(e->path, "/objects/", 9) == 0)
			a->objects++;
	}
	progress_update(&a->prog, "%s: %" PRIu64 " entries", esc(a->label, 0), a->u.entries);
	return count_inode(a, s->stx_ino, s->stx_nlink, s->stx_size, s->stx_blocks,
			   S_ISDIR(s->stx_mode),
			   (s->stx_attributes_mask & STATX_ATTR_IMMUTABLE) &&
				   (s->stx_attributes & STATX_ATTR_IMMUTABLE));
}

static void on_error(void *ctx, const char *path, int err, const char *what)
{
	struct audit *a = ctx;

	a->errors++;
	msg_error("%s%s: %s: %s", esc(a->label, 0), esc(path, 1), what, strerror(err));
}

/* Walk one tree (a guest, or .hashdb) with its root counted too. */
static int audit_tree(struct audit *a, int fd, const char *label)
{
	struct walk_ops ops = { .entry = on_entry, .error = on_error, .ctx = a };
	struct stat st;

	a->label = label;
	memset(&a->u, 0, sizeof(a->u));
	free(a->guest.s);
	memset(&a->guest, 0, sizeof(a->guest));
	if (fstat(fd, &st) < 0)
		return -errno;
	a->u.entries++;
	count_inode(a, st.st_ino, (uint32_t)st.st_nlink, (uint64_t)st.st_size,
		    (uint64_t)st.st_blocks, true, false);
	int r = walk_tree(fd, &ops);
	for (size_t i = 0; i < a->guest.cap; i++) {
		struct inode_slot *g = &a->guest.s[i];
		if (!g->ino)
			continue;
		/* One outside name on an immutable inode is its pool object. */
		if (g->seen >= g->nlink || (g->immutable && g->seen + 1 == g->nlink))
			a->u.private_ += g->blocks * 512;
		else
			a->u.shared += g->blocks * 512;
	}
	return r;
}

static void human(char *buf, size_t len, uint64_t b)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int i = 0;

	while (v >= 1024 && i < 4)
		v /= 1024, i++;
	if (i == 0)
		snprintf(buf, len, "%" PRIu64 " B", b);
	else
		snprintf(buf, len, "%.1f %s", v, unit[i]);
}

static void print_row(const char *name, const struct usage *u, bool bytes)
{
	char c[4][32];
	const uint64_t v[4] = { u->apparent, u->allocated, u->private_, u->shared };

	for (int i = 0; i < 4; i++) {
		if (bytes)
			snprintf(c[i], sizeof(c[i]), "%" PRIu64, v[i]);
		else
			human(c[i], sizeof(c[i]), v[i]);
	}
	printf("%-20s %9" PRIu64 " %9" PRIu64 " %12s %12s %12s %12s\n", esc(name, 0), u->entries,
	       u->files, c[0], c[1], c[2], c[3]);
}

static void json_usage(const struct usage *u)
{
	printf("\"entries\":%" PRIu64 ",\"files\":%" PRIu64 ",\"apparent_bytes\":%" PRIu64
	       ",\"allocated_bytes\":%" PRIu64 ",\"private_bytes\":%" PRIu64
	       ",\"shared_bytes\":%" PRIu64,
	       u->entries, u->files, u->apparent, u->allocated, u->private_, u->shared);
}

/* node_exporter textfile metrics (vunify/prometheus.h). */
static void write_metrics(const struct options *o, const char *poolpath, const struct guests *g,
			  const struct usage *per, const struct usage *state,
			  const struct audit *a, int rc, uint64_t ms)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} cols[] = {
		{ "entries", "names (directories, symlinks, specials included)",
		  offsetof(struct usage, entries) },
		{ "files", "regular files", offsetof(struct usage, files) },
		{ "apparent_bytes", "st_size of every inode once (du -sb)",
		  offsetof(struct usage, apparent) },
		{ "allocated_bytes", "allocated bytes of every inode once (du -sB1)",
		  offsetof(struct usage, allocated) },
		{ "private_bytes", "allocated bytes no other guest shares",
		  offsetof(struct usage, private_) },
		{ "shared_bytes", "allocated bytes shared with other guests",
		  offsetof(struct usage, shared) },
	};
	struct prom p;
	char name[96], help[160];

	if (!prom_begin(&p, o, "audit", poolpath))
		return;
	for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
		snprintf(name, sizeof(name), "vunify_audit_guest_%s", cols[c].name);
		snprintf(help, sizeof(help), "per guest: %s", cols[c].help);
		prom_family(&p, name, "gauge", help);
		for (size_t i = 0; i < g->n; i++)
			prom_sample(&p, name, "guest", g->names[i],
				    (double)*(const uint64_t *)((const char *)&per[i] + cols[c].off));
		prom_sample(&p, name, "guest", HASHDB_DIR,
			    (double)*(const uint64_t *)((const char *)state + cols[c].off));
	}
	prom_gauge(&p, "vunify_audit_pool_guests", "guests in the pool", (double)g->n);
	prom_gauge(&p, "vunify_audit_pool_objects", "objects in the pool", (double)a->objects);
	prom_gauge(&p, "vunify_audit_pool_apparent_bytes", "st_size of every inode of the pool once",
		   (double)a->pool_apparent);
	prom_gauge(&p, "vunify_audit_pool_allocated_bytes",
		   "allocated bytes of every inode of the pool once (du -sB1 POOL)",
		   (double)a->pool_allocated);
	prom_finish(&p, "audit", rc, ms / 1000.0);
}

static const char help[] =
	"Usage: vunify audit [OPTIONS] POOL [GUEST...]\n"
	"Show what each guest of POOL costs on disk, every inode counted once.\n\n"
	"      --json    print one JSON object on stdout\n"
	"  -b, --bytes   exact byte counts instead of KiB/MiB/GiB\n"
	"      --prometheus FILE  write the figures for node_exporter to FILE\n"
	"  -c, --config FILE  system configuration (default " VUNIFY_SYSCONF ")\n"
	"  -q, --quiet   no progress on a terminal\n"
	"  -h, --help    show this help\n";

static void print_json(const struct audit *a, const struct guests *g, const struct usage *per,
		       const struct usage *state)
{
	printf("{\"guests\":[");
	for (size_t i = 0; i < g->n; i++) {
		printf("%s{\"name\":", i ? "," : "");
		json_string(stdout, g->names[i]);
		putchar(',');
		json_usage(&per[i]);
		putchar('}');
	}
	printf("],\"state\":{");
	json_usage(state);
	printf("},\"pool\":{\"guests\":%zu,\"objects\":%" PRIu64 ",\"apparent_bytes\":%" PRIu64
	       ",\"allocated_bytes\":%" PRIu64 "}}\n",
	       g->n, a->objects, a->pool_apparent, a->pool_allocated);
}

static void print_table(const struct audit *a, const struct guests *g, const struct usage *per)
{
	char ap[32], al[32];

	printf("%-20s %9s %9s %12s %12s %12s %12s\n", "GUEST", "ENTRIES", "FILES",
	       "APPARENT", "ALLOCATED", "PRIVATE", "SHARED");
	for (size_t i = 0; i < g->n; i++)
		print_row(g->names[i], &per[i], a->bytes);
	if (a->bytes) {
		snprintf(ap, sizeof(ap), "%" PRIu64, a->pool_apparent);
		snprintf(al, sizeof(al), "%" PRIu64, a->pool_allocated);
	} else {
		human(ap, sizeof(ap), a->pool_apparent);
		human(al, sizeof(al), a->pool_allocated);
	}
	printf("pool: %zu guests, %" PRIu64 " objects, %s apparent, %s allocated "
	       "(every inode once, .hashdb included)\n",
	       g->n, a->objects, ap, al);
}

/* Every guest, then the pool's own state; per[i] is guest i's usage. */
static void audit_pool(struct audit *a, struct hashdb_pool *pool, const struct guests *g,
		       struct usage *per, struct usage *state)
{
	struct stat st;

	/* The pool directory itself, as du counts it. */
	if (fstat(pool->dirfd, &st) == 0) {
		a->pool_apparent += (uint64_t)st.st_size;
		a->pool_allocated += (uint64_t)st.st_blocks * 512;
	}
	for (size_t i = 0; i < g->n; i++) {
		int fd = guest_open(pool, g->names[i]), r;

		if (fd < 0) {
			msg_error("%s: cannot open guest: %s", esc(g->names[i], 0), strerror(-fd));
			a->errors++;
			continue;
		}
		r = audit_tree(a, fd, g->names[i]);
		close(fd);
		if (r < 0) {
			msg_error("%s: %s", esc(g->names[i], 0), strerror(-r));
			a->errors++;
		}
		per[i] = a->u;
	}
	if (pool->statefd >= 0) {
		a->in_state = true;
		audit_tree(a, pool->statefd, HASHDB_DIR);
		*state = a->u;
	}
	progress_done(&a->prog);
}

static int run(struct cmd *c)
{
	struct audit *a = c->self;
	struct usage *per = calloc(c->guests.n + 1, sizeof(*per)), state = { 0 };
	int rc;

	if (!per)
		return EXIT_FATAL;
	a->o = &c->o;
	a->prog.on = c->o.progress;
	audit_pool(a, &c->pool, &c->guests, per, &state);
	if (c->o.json)
		print_json(a, &c->guests, per, &state);
	else
		print_table(a, &c->guests, per);
	rc = a->errors ? EXIT_TROUBLE : EXIT_OK;
	write_metrics(&c->o, c->poolpath, &c->guests, per, &state, a, rc, now_ms() - c->t0);
	free(per);
	free(a->guest.s);
	free(a->pool.s);
	return rc;
}

static const struct option longopts[] = {
	{ "bytes", no_argument, NULL, 'b' },
	{ 0 }
};

static const struct cmd_flag flags[] = {
	{ 'b', offsetof(struct audit, bytes) },
	{ 0 }
};

/* Read-only: no lock (vunify(8)). */
const struct command audit_command = {
	.name = "audit",
	.what = "show what each guest costs on disk",
	.help = help,
	.common = CMD_JSON | CMD_PROMETHEUS | CMD_CONFIG | CMD_QUIET,
	.shortopts = "b",
	.longopts = longopts,
	.flags = flags,
	.min_args = 1, .max_args = -1,
	.pool = CMD_POOL_READ,
	.guests = CMD_GUESTS_ALL,
	.run = run,
	.self_size = sizeof(struct audit),
};
