/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vunify verify: is every CoW link still what its name says?
 *
 * 1. Every object is re-hashed: its identity (content hash + metadata,
 *    with or without mtime, since --ignore-mtime names objects without it)
 *    must equal its name, its marker must equal its name and its immutable
 *    flag must be set.  Anything else is bit rot or tampering.
 * 2. Every guest is walked: a path whose inode is an object shares that
 *    object's state (a damaged object is reported once per path using it);
 *    a marked path whose inode is no object has a stale or forged marker.
 *
 * --repair: an object whose content still matches gets its marker and flag
 * back; the paths of a damaged object are split (each gets a private copy,
 * so no guest keeps reading a damaged shared file) and the object leaves
 * the pool; a stale marker is removed (and the flag it came with).
 *
 * Exit: 5 when anything was wrong (repaired or not), 1 on other errors.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cowlink/cowlink.h"
#include "hashdb/hash.h"
#include "hashdb/identity.h"
#include "vunify/command.h"
#include "vunify/config.h"
#include "vunify/objects.h"
#include "vunify/prometheus.h"
#include "vunify/vunify.h"
#include "vunify/walk.h"

enum {
	BAD_CONTENT = 1,	/* identity no longer matches the name */
	BAD_MARKER = 2,		/* marker missing or not the name */
	WRITABLE = 4,		/* immutable flag cleared */
	UNREADABLE = 8,		/* could not be checked */
};

struct counts {
	uint64_t objects, bytes, damaged, bad_markers, writable, damaged_paths, stray_markers;
	uint64_t repaired, errors, files, leftovers;
};

struct inoidx {
	uint64_t ino;
	size_t i;
};

struct problem {
	char *where, *what;
};

struct verify {
	const struct options *o;
	bool repair;
	struct hashdb_pool *pool;
	struct objlist objs;
	struct inoidx *by_ino;	/* objs by inode */
	struct counts c;
	struct problem *probs;
	size_t nprobs;
	struct progress prog;
	const char *guest;
};

static void problem(struct verify *v, const char *guest, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Print and remember one finding: "GUEST/PATH: what". */
static void problem(struct verify *v, const char *guest, const char *where, const char *fmt, ...)
{
	char what[512], *w = NULL;
	struct problem *n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	msg_error("%s%s: %s", esc(guest, 0), esc(where, 1), what);
	if (asprintf(&w, "%s%s", guest, where) < 0)
		return;
	n = realloc(v->probs, (v->nprobs + 1) * sizeof(*n));
	if (!n) {
		free(w);
		return;
	}
	v->probs = n;
	v->probs[v->nprobs].where = w;
	v->probs[v->nprobs].what = strdup(what);
	v->nprobs++;
}

/* ---- objects -------------------------------------------------------------- */

static void on_stray(void *ctx, const char *name, const char *why)
{
	struct verify *v = ctx;

	v->c.errors++;
	msg_error("%s/objects/%s: %s", HASHDB_DIR, esc(name, 0), why);
}

struct marker_arg {
	int fd;
	const char *hex;
};

static int marker_op(void *p)
{
	struct marker_arg *a = p;

	return cowlink_marker_set(a->fd, a->hex);
}

/* An object whose content still matches its name: marker and flag back. */
static int fix_object(struct verify *v, int fd, struct objent *e)
{
	struct marker_arg a = { fd, e->hex };
	int r = 0;

	if (e->flags & BAD_MARKER)
		r = cowlink_with_mutable(v->pool->flagfd, fd, marker_op, &a);
	if (r == 0 && (e->flags & WRITABLE))
		r = cowlink_set_immutable(fd, true);
	return r;
}

static void check_object(struct verify *v, struct objent *e, char *name)
{
	char marker[COWLINK_HEX_LEN + 1], where[128];
	uint64_t bytes = 0;
	bool imm = false;
	int fd = openat(v->pool->objfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), r;

	snprintf(where, sizeof(where), "/objects/%s", name);
	if (fd < 0) {
		e->flags |= UNREADABLE;
		v->c.errors++;
		msg_error("%s%s: cannot open: %s", HASHDB_DIR, where, strerror(errno));
		return;
	}
	r = cowlink_is_immutable(fd, &imm);
	if (r == 0 && !imm) {
		e->flags |= WRITABLE;
		v->c.writable++;
		problem(v, HASHDB_DIR, where, "object is writable: its immutable flag was cleared");
	}
	r = cowlink_marker_get(fd, marker);
	if (r == -ENODATA || r == -EINVAL || (r == 0 && strcmp(marker, e->hex))) {
		e->flags |= BAD_MARKER;
		v->c.bad_markers++;
		problem(v, HASHDB_DIR, where, "marker %s does not match the object's name",
			r == 0 ? marker : r == -ENODATA ? "(none)" : "(malformed)");
	}
	r = hashdb_identity_matches(fd, e->hex, 1, &bytes);
	v->c.bytes += bytes;
	if (r < 0) {
		e->flags |= UNREADABLE;
		v->c.errors++;
		msg_error("%s%s: cannot read: %s", HASHDB_DIR, where, strerror(-r));
	} else if (r == 0) {
		e->flags |= BAD_CONTENT;
		v->c.damaged++;
		problem(v, HASHDB_DIR, where,
			"content or metadata no longer matches the object's name (bit rot or tampering)");
	} else if (v->repair && (e->flags & (BAD_MARKER | WRITABLE))) {
		r = fix_object(v, fd, e);
		if (r < 0) {
			v->c.errors++;
			msg_error("%s%s: cannot repair: %s", HASHDB_DIR, where, strerror(-r));
		} else {
			v->c.repaired++;
			msg_info(v->o, "%s%s: content intact; marker and immutable flag restored",
				 HASHDB_DIR, where);
		}
	}
	close(fd);
}

static int cmp_ino(const void *a, const void *b)
{
	uint64_t x = ((const struct inoidx *)a)->ino, y = ((const struct inoidx *)b)->ino;

	return x < y ? -1 : x > y;
}

static struct objent *find_ino(struct verify *v, uint64_t ino)
{
	size_t lo = 0, hi = v->objs.n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct objent *e = &v->objs.v[v->by_ino[mid].i];

		if (e->ino == ino)
			return e;
		if (e->ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int verify_objects(struct verify *v)
{
	uint64_t done = 0;
	int r = objects_list(v->pool, &v->objs, on_stray, v);

	if (r < 0)
		return r;
	v->c.objects = v->objs.n;
	for (size_t i = 0; i < v->objs.n; i++) {
		char name[64];

		hashdb_object_name(v->objs.v[i].hex, v->objs.v[i].gen, name, sizeof(name));
		progress_bar(&v->prog, "verify objects", i, v->objs.n, done, v->objs.bytes);
		check_object(v, &v->objs.v[i], name);
		done += v->objs.v[i].size;
	}
	progress_done(&v->prog);
	v->by_ino = malloc((v->objs.n + 1) * sizeof(*v->by_ino));
	if (!v->by_ino)
		return -ENOMEM;
	for (size_t i = 0; i < v->objs.n; i++)
		v->by_ino[i] = (struct inoidx){ v->objs.v[i].ino, i };
	qsort(v->by_ino, v->objs.n, sizeof(*v->by_ino), cmp_ino);
	return 0;
}

/* ---- guests --------------------------------------------------------------- */

struct unmark_arg {
	int fd;
};

static int unmark_op(void *p)
{
	struct unmark_arg *a = p;

	return cowlink_marker_remove(a->fd);
}

/* A marked path that is no object: the marker goes, and the flag that came
 * with it, so the path is an ordinary private file again. */
static int unmark(struct verify *v, int fd)
{
	struct unmark_arg a = { fd };
	int r = cowlink_with_mutable(v->pool->flagfd, fd, unmark_op, &a);

	return r ?: cowlink_set_immutable(fd, false);
}

/*
 * unify marks a file before it links it into the pool and sets its flag; a
 * kill in between leaves a marked, private, writable file whose marker is
 * its own identity.  Harmless: the next unify adopts it.  Anything else
 * marked that is no object is a stray marker.
 */
static bool is_leftover(int fd, const struct stat *st, const char *marker)
{
	bool imm = true;
	uint64_t bytes;

	if (st->st_nlink != 1 || cowlink_is_immutable(fd, &imm) < 0 || imm)
		return false;
	return hashdb_identity_matches(fd, marker, 1, &bytes) == 1;
}

/* A repair of @e done (@r 0), or why it failed ("WHAT: reason"). */
static void count_repair(struct verify *v, const struct walk_entry *e, int r, const char *what)
{
	if (r < 0) {
		v->c.errors++;
		msg_error("%s%s: %s: %s", esc(v->guest, 0), esc(e->path, 1), what, strerror(-r));
	} else {
		v->c.repaired++;
	}
}

/* A path whose inode is the object @obj: it shares the object's state. */
static void check_shared(struct verify *v, const struct walk_entry *e, struct objent *obj)
{
	struct stat st;
	int fd, r;

	if (!(obj->flags & BAD_CONTENT)) {
		if (obj->flags & (BAD_MARKER | WRITABLE))
			problem(v, v->guest, e->path, "shares object %.2s/%s, which %s%s%s", obj->hex,
				obj->hex, obj->flags & WRITABLE ? "is writable" : "",
				(obj->flags & (BAD_MARKER | WRITABLE)) == (BAD_MARKER | WRITABLE) ?
					" and " : "",
				obj->flags & BAD_MARKER ? "has a marker not matching its name" : "");
		return;
	}
	v->c.damaged_paths++;
	problem(v, v->guest, e->path, "shares damaged object %.2s/%s%s", obj->hex, obj->hex,
		v->repair ? "; split into a private copy (holding the damaged content)" : "");
	if (!v->repair)
		return;
	fd = walk_open_regular(e->dirfd, e->name, &st);
	r = fd < 0 ? fd : split_link(v->pool, fd, e->dirfd, e->name);
	if (fd >= 0)
		close(fd);
	count_repair(v, e, r, "cannot split");
}

/* A marked path (open as @fd) whose inode is no object. */
static void check_stray(struct verify *v, const struct walk_entry *e, int fd,
			const struct stat *st, const char *marker)
{
	if (marker && is_leftover(fd, st, marker)) {
		v->c.leftovers++;
		msg_info(v->o, "%s%s: marked by a unify that was interrupted; the next unify finishes it",
			 esc(v->guest, 0), esc(e->path, 1));
		return;
	}
	v->c.stray_markers++;
	problem(v, v->guest, e->path, "marked as CoW link %s, but is not a pool object%s",
		marker ? marker : "(malformed marker)",
		v->repair ? "; marker removed, now a private file" : "");
	if (v->repair)
		count_repair(v, e, unmark(v, fd), "cannot remove marker");
}

static void check_path(struct verify *v, const struct walk_entry *e)
{
	const struct statx *s = e->stx;
	struct objent *obj = NULL;
	char marker[COWLINK_HEX_LEN + 1];
	struct stat st;
	int fd, r;

	if (makedev(s->stx_dev_major, s->stx_dev_minor) == v->pool->dev)
		obj = find_ino(v, s->stx_ino);
	if (obj) {
		check_shared(v, e, obj);
		return;
	}
	/* Never opens anything but a regular file, whatever was swapped in. */
	fd = walk_open_regular(e->dirfd, e->name, &st);
	if (fd < 0) {
		if (fd != -ENOENT && fd != -ESTALE) {
			v->c.errors++;
			msg_error("%s%s: cannot open: %s", esc(v->guest, 0), esc(e->path, 1),
				  strerror(-fd));
		}
		return;
	}
	r = cowlink_marker_get(fd, marker);
	if (r == 0 || r == -EINVAL) {
		check_stray(v, e, fd, &st, r == 0 ? marker : NULL);
	} else if (r != -ENODATA && r != -ENOTSUP) {
		v->c.errors++;
		msg_error("%s%s: cannot read marker: %s", esc(v->guest, 0), esc(e->path, 1),
			  strerror(-r));
	}
	close(fd);
}

static int on_entry(void *ctx, const struct walk_entry *e)
{
	struct verify *v = ctx;

	if (!S_ISREG(e->stx->stx_mode))
		return WALK_CONTINUE;
	v->c.files++;
	progress_bar(&v->prog, v->guest, v->c.files, 0, 0, 0);
	check_path(v, e);
	return WALK_CONTINUE;
}

static void on_walk_error(void *ctx, const char *path, int err, const char *what)
{
	struct verify *v = ctx;

	if (err == EXDEV)
		return;
	v->c.errors++;
	msg_error("%s%s: %s: %s", esc(v->guest, 0), esc(path, 1), what, strerror(err));
}

static void verify_guest(struct verify *v, const char *name)
{
	struct walk_ops ops = { .entry = on_entry, .error = on_walk_error, .ctx = v, .sort_by_inode = true };
	int fd = guest_open(v->pool, name), r;

	v->guest = name;
	if (fd < 0) {
		v->c.errors++;
		msg_error("%s: cannot open guest: %s", esc(name, 0), strerror(-fd));
		return;
	}
	r = walk_tree(fd, &ops);
	if (r < 0) {
		v->c.errors++;
		msg_error("%s: walk stopped: %s", esc(name, 0), strerror(-r));
	}
	close(fd);
	progress_done(&v->prog);
}

struct retire_arg {
	int fd, objfd;
	const char *name;
};

/* Marker and pool name go while the flag is off. */
static int retire_op(void *p)
{
	struct retire_arg *a = p;
	int r = cowlink_marker_remove(a->fd);

	if (r == 0 && unlinkat(a->objfd, a->name, 0) < 0)
		r = -errno;
	return r;
}

/* With --repair, a damaged object leaves the pool once its paths are split
 * (paths in guests not verified this run then carry a stale marker, which
 * the next verify of those guests reports and repairs). */
static void retire_damaged(struct verify *v)
{
	for (size_t i = 0; i < v->objs.n; i++) {
		struct objent *e = &v->objs.v[i];
		char name[64];

		if (!(e->flags & BAD_CONTENT))
			continue;
		hashdb_object_name(e->hex, e->gen, name, sizeof(name));
		int fd = openat(v->pool->objfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct retire_arg a = { fd, v->pool->objfd, name };
		int r = cowlink_with_mutable(v->pool->flagfd, fd, retire_op, &a);
		if (r < 0) {
			v->c.errors++;
			msg_error("%s/objects/%s: cannot remove damaged object: %s", HASHDB_DIR, name,
				  strerror(-r));
		} else {
			/* Its marker is gone too, so it is no CoW link any more. */
			cowlink_set_immutable(fd, false);
			msg_info(v->o, "%s/objects/%s: damaged object removed from the pool",
				 HASHDB_DIR, name);
		}
		close(fd);
	}
}

/* ---- output --------------------------------------------------------------- */

static void print_json(const struct verify *v, int rc)
{
	const struct counts *c = &v->c;

	printf("{\"repair\":%s,\"objects\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"files\":%" PRIu64
	       ",\"damaged_objects\":%" PRIu64 ",\"bad_markers\":%" PRIu64
	       ",\"writable_objects\":%" PRIu64 ",\"damaged_paths\":%" PRIu64
	       ",\"stray_markers\":%" PRIu64 ",\"leftovers\":%" PRIu64 ",\"repaired\":%" PRIu64
	       ",\"errors\":%" PRIu64
	       ",\"exit_code\":%d,\"problems\":[",
	       v->repair ? "true" : "false", c->objects, c->bytes, c->files, c->damaged,
	       c->bad_markers, c->writable, c->damaged_paths, c->stray_markers, c->leftovers,
	       c->repaired,
	       c->errors, rc);
	for (size_t i = 0; i < v->nprobs; i++) {
		printf("%s{\"path\":", i ? "," : "");
		json_string(stdout, v->probs[i].where);
		printf(",\"problem\":");
		json_string(stdout, v->probs[i].what ? v->probs[i].what : "");
		putchar('}');
	}
	printf("]}\n");
}

static void write_metrics(const struct verify *v, const char *poolpath, int rc, uint64_t ms)
{
	const struct counts *c = &v->c;
	struct prom p;

	if (!prom_begin(&p, v->o, "verify", poolpath))
		return;
	prom_gauge(&p, "vunify_verify_objects", "objects checked", (double)c->objects);
	prom_gauge(&p, "vunify_verify_bytes", "bytes re-hashed", (double)c->bytes);
	prom_gauge(&p, "vunify_verify_damaged_objects",
		   "objects whose content or metadata no longer matches their name",
		   (double)c->damaged);
	prom_gauge(&p, "vunify_verify_bad_markers", "objects whose marker is not their name",
		   (double)c->bad_markers);
	prom_gauge(&p, "vunify_verify_writable_objects", "objects without the immutable flag",
		   (double)c->writable);
	prom_gauge(&p, "vunify_verify_damaged_paths", "guest paths sharing a damaged object",
		   (double)c->damaged_paths);
	prom_gauge(&p, "vunify_verify_stray_markers", "marked guest paths that are no object",
		   (double)c->stray_markers);
	prom_gauge(&p, "vunify_verify_repaired", "problems repaired (--repair)",
		   (double)c->repaired);
	prom_gauge(&p, "vunify_verify_errors", "paths that could not be checked",
		   (double)c->errors);
	prom_finish(&p, "verify", rc, ms / 1000.0);
}

static const char help[] =
	"Usage: vunify verify [OPTIONS] POOL [GUEST...]\n"
	"Re-hash every pool object and check it against its name, its marker and its\n"
	"immutable flag; check every marked path of the guests.  Exit code 5 when\n"
	"anything is wrong.\n\n"
	"      --repair           restore intact objects' markers and flags, split the\n"
	"                         paths of damaged objects into private copies, remove\n"
	"                         stale markers\n"
	"      --json             print the findings as one JSON object on stdout\n"
	"      --prometheus FILE  write the run's metrics for node_exporter to FILE\n"
	"  -c, --config FILE      system configuration (default " VUNIFY_SYSCONF ")\n"
	"  -v, --verbose          report repairs too\n"
	"  -q, --quiet            no summary, no progress\n"
	"  -h, --help             show this help\n";

static void print_summary(const struct verify *v)
{
	fprintf(stderr, "vunify: verify: %" PRIu64 " objects (%.1f MiB), %" PRIu64
		" guest files: %" PRIu64 " damaged objects, %" PRIu64 " bad markers, %" PRIu64
		" writable objects, %" PRIu64 " damaged paths, %" PRIu64 " stray markers%s\n",
		v->c.objects, v->c.bytes / 1048576.0, v->c.files, v->c.damaged, v->c.bad_markers,
		v->c.writable, v->c.damaged_paths, v->c.stray_markers,
		v->repair ? "" : v->nprobs ? " (run with --repair to fix)" : "");
	if (v->repair && v->nprobs)
		fprintf(stderr, "vunify: verify: repaired %" PRIu64 "%s\n", v->c.repaired,
			v->c.damaged ? "; run vunify gc to renumber the pool's objects" : "");
}

static void verify_free(struct verify *v)
{
	for (size_t i = 0; i < v->nprobs; i++) {
		free(v->probs[i].where);
		free(v->probs[i].what);
	}
	free(v->probs);
	free(v->by_ino);
	objects_free(&v->objs);
}

static int run(struct cmd *c)
{
	struct verify *v = c->self;
	int r, rc = EXIT_OK;

	v->o = &c->o;
	v->pool = &c->pool;
	v->prog.on = c->o.progress;
	r = verify_objects(v);
	if (r < 0) {
		msg_error("%s: cannot list objects: %s", esc(c->poolpath, 0), strerror(-r));
		rc = EXIT_FATAL;
		goto out;
	}
	for (size_t i = 0; i < c->guests.n; i++)
		verify_guest(v, c->guests.names[i]);
	if (v->repair)
		retire_damaged(v);
	if (v->nprobs)
		rc = EXIT_DAMAGE;
	else if (v->c.errors)
		rc = EXIT_TROUBLE;
	if (c->o.json)
		print_json(v, rc);
	if (c->o.verbose >= 0)
		print_summary(v);
	write_metrics(v, c->poolpath, rc, now_ms() - c->t0);
out:
	verify_free(v);
	return rc;
}

static const struct option longopts[] = {
	{ "repair", no_argument, NULL, 'R' },
	{ 0 }
};

static const struct cmd_flag flags[] = {
	{ 'R', offsetof(struct verify, repair) },
	{ 0 }
};

const struct command verify_command = {
	.name = "verify",
	.what = "check every object and CoW link for bit rot or tampering",
	.help = help,
	.common = CMD_JSON | CMD_PROMETHEUS | CMD_CONFIG | CMD_VERBOSE | CMD_QUIET,
	.shortopts = "",
	.longopts = longopts,
	.flags = flags,
	.min_args = 1, .max_args = -1,
	.pool = CMD_POOL_LOCKED,
	.guests = CMD_GUESTS_ALL,
	.run = run,
	.self_size = sizeof(struct verify),
};
