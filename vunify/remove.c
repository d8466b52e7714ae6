/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vunify remove: delete guests whole, then collect the objects only they
 * used.
 *
 * A guest's tree holds CoW links, hard links of immutable pool objects that
 * other guests share.  `chattr -R -i GUEST && rm -rf GUEST` would clear the
 * flag of every one of them, for every guest, until something sets it
 * again.  remove instead unlinks each CoW link with the flag dance of
 * cowlink_with_mutable under the pool's flag lock, whose journal restores
 * the flag at the next start if a kill lands in between; no shared inode is
 * unprotected by anything else.
 *
 * A clone that was interrupted (POOL/.cloning~GUEST) is taken apart the
 * same way when its name is given.
 *
 * Order, so that a kill at any instant leaves something a rerun finishes:
 *   1. refuse while the guest is in use (vunify/inuse.c) unless --force;
 *   2. rename POOL/GUEST to POOL/.removing~GUEST: from then on no command
 *      sees a guest (guests_list skips the name, cowfs hides it), and a
 *      rerun of `vunify remove POOL GUEST` finds it and goes on;
 *   3. take the tree apart bottom-up (the walk's leave callback removes a
 *      directory once its entries are gone); the walk never follows a
 *      symlink, never enters a mount point, holds a bounded number of fds;
 *   4. remove the directory itself, the stat cache and the guest's samples
 *      in audit's metrics file;
 *   5. gc_run: the objects whose link count dropped to 1.
 *
 * Files with the immutable or append-only flag that are no CoW links (no
 * marker) are the guest's own: with one link, the flag is cleared and the
 * file removed (said with -v).  With more links the other names may be
 * outside the guest (a host's `cp -al`), so it is left alone and reported:
 * clearing its flag could unprotect someone else's file.  Directories carry
 * such flags only for the guest itself; they are cleared.
 *
 * Holds the pool lock, so no unify links the guest again meanwhile and an
 * object seen with one link stays unused (gc's reasoning).
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cowlink/cowlink.h"
#include "hashdb/statcache.h"
#include "vunify/command.h"
#include "vunify/config.h"
#include "vunify/inuse.h"
#include "vunify/prometheus.h"
#include "vunify/vunify.h"
#include "vunify/walk.h"

#define OWN_FLAGS (FS_IMMUTABLE_FL | FS_APPEND_FL)

struct rm {
	const struct options *o;
	struct hashdb_pool *pool;
	const char *poolpath;
	const char *guest;	/* for messages */
	bool force, no_gc;
	uint64_t files, cowlinks, dirs, cleared, bytes, caches, errors, uses;
	uint64_t *gone;		/* dry run: inodes of the CoW links it would unlink */
	size_t ngone, capgone;
	uint64_t seen, total;
	struct progress prog;
	FILE *json_uses;	/* the "in_use" array of --json, being written */
	char *json_buf;
	size_t json_len;
};


static bool stx_flagged(const struct statx *s)
{
	unsigned want = STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND;

	return (s->stx_attributes & s->stx_attributes_mask & want) != 0;
}

static bool stx_mount_root(const struct statx *s)
{
	return s->stx_attributes & s->stx_attributes_mask & STATX_ATTR_MOUNT_ROOT;
}

/* "GUEST/PATH: WHAT[: WHY]", counted as an error. */
static void fail(struct rm *r, const char *path, const char *what, const char *why)
{
	r->errors++;
	msg_error("%s%s: %s%s%s", esc(r->guest, 0), esc(path, 1), what, why ? ": " : "",
		  why ? why : "");
}

/* Clear the immutable and append-only flags of @fd, an inode of this guest
 * alone (never a CoW link: see the top of the file). */
static int clear_own_flags(int fd)
{
	int f = 0;

	if (ioctl(fd, FS_IOC_GETFLAGS, &f) < 0)
		return -errno;
	if (!(f & OWN_FLAGS))
		return 0;
	f &= ~OWN_FLAGS;
	return ioctl(fd, FS_IOC_SETFLAGS, &f) < 0 ? -errno : 0;
}

/* ---- files ------------------------------------------------------------------ */

/* Unlink @e plainly; its blocks are freed with its last link. */
static void unlink_plain(struct rm *r, const struct walk_entry *e)
{
	const struct statx *s = e->stx;

	if (!r->o->dry_run && unlinkat(e->dirfd, e->name, 0) < 0) {
		if (errno != ENOENT)
			fail(r, e->path, "cannot remove", strerror(errno));
		return;
	}
	r->files++;
	/* A dry run unlinks nothing, so a guest's own hard links never get to
	 * one link: count each name's share. */
	if (s->stx_nlink == 1 || r->o->dry_run)
		r->bytes += s->stx_blocks * 512 / (s->stx_nlink ? s->stx_nlink : 1);
}

static int note_gone(struct rm *r, uint64_t ino)
{
	if (r->ngone == r->capgone) {
		size_t cap = r->capgone ? r->capgone * 2 : 1024;
		uint64_t *v = realloc(r->gone, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		r->gone = v;
		r->capgone = cap;
	}
	r->gone[r->ngone++] = ino;
	return 0;
}

/* A CoW link: its name goes under the flag dance, the shared inode keeps
 * its flag (the journal restores it should we die in between). */
static void unlink_cowlink(struct rm *r, const struct walk_entry *e, int fd, const struct stat *st)
{
	int rc = 0;

	if (r->o->dry_run)
		rc = note_gone(r, (uint64_t)st->st_ino);
	else
		rc = cowlink_unlink(r->pool->flagfd, fd, e->dirfd, e->name);
	if (rc < 0) {
		if (rc != -ENOENT)
			fail(r, e->path, "cannot remove CoW link", strerror(-rc));
		return;
	}
	r->cowlinks++;
	/* One link: a marked file no other path shares (a stray marker). */
	if (st->st_nlink == 1)
		r->bytes += (uint64_t)st->st_blocks * 512;
}

/* Immutable or append-only, but no CoW link: the guest's own file.  The
 * rule that keeps shared inodes safe: a flag is cleared outside the dance
 * only on an inode with one link, and every pool object has two at least
 * (its name in objects/ and the guest's). */
static void unlink_flagged(struct rm *r, const struct walk_entry *e, int fd, const struct stat *st)
{
	int rc;

	if (st->st_nlink != 1) {
		char why[160];

		snprintf(why, sizeof(why), "it has %ju links and other paths may be outside "
			 "this guest; left alone (clear its flag by hand if it is the guest's own)",
			 (uintmax_t)st->st_nlink);
		fail(r, e->path, "immutable or append-only but no CoW link", why);
		return;
	}
	if (!r->o->dry_run) {
		rc = clear_own_flags(fd);
		if (rc < 0) {
			fail(r, e->path, "cannot clear its immutable/append-only flag", strerror(-rc));
			return;
		}
	}
	r->cleared++;
	msg_info(r->o, "%s%s: immutable or append-only, no CoW link, one link: flag %s", esc(r->guest, 0),
		 esc(e->path, 1), r->o->dry_run ? "would be cleared" : "cleared");
	unlink_plain(r, e);
}

static void remove_flagged(struct rm *r, const struct walk_entry *e)
{
	char hex[COWLINK_HEX_LEN + 1];
	struct stat st;
	bool imm = false;
	int fd, rc;

	if (!S_ISREG(e->stx->stx_mode)) {
		fail(r, e->path, "has the immutable or append-only flag and is no regular file; "
			 "left alone", NULL);
		return;
	}
	/* Never opens anything but a regular file, whatever was swapped in. */
	fd = walk_open_regular(e->dirfd, e->name, &st);
	if (fd < 0) {
		if (fd != -ENOENT)
			fail(r, e->path, "cannot open", strerror(-fd));
		return;
	}
	/* What was opened decides, whatever the walk's stat saw. */
	rc = cowlink_marker_get(fd, hex);
	if (rc == 0 && cowlink_is_immutable(fd, &imm) == 0 && imm)
		unlink_cowlink(r, e, fd, &st);
	else if (rc == 0 || rc == -ENODATA || rc == -EINVAL || rc == -ENOTSUP)
		unlink_flagged(r, e, fd, &st);
	else
		fail(r, e->path, "cannot read its marker", strerror(-rc));
	close(fd);
}

/* ---- the walk ----------------------------------------------------------------- */

/* A directory with the immutable or append-only flag: entries cannot be
 * removed from it until the flag is gone.  Directories are never CoW links. */
static void clear_dir_flags(struct rm *r, int dirfd, const char *name, const char *path,
			    const struct statx *s)
{
	struct stat st;
	int fd = -1, rc = 0;

	if (!r->o->dry_run) {
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0)
			rc = -errno;
		else if (st.st_ino != s->stx_ino)
			rc = -ESTALE;	/* swapped since the walk's stat */
		else
			rc = clear_own_flags(fd);
		if (fd >= 0)
			close(fd);
	}
	if (rc < 0) {
		fail(r, path, "cannot clear the directory's immutable/append-only flag",
		     strerror(-rc));
		return;
	}
	r->cleared++;
	msg_info(r->o, "%s%s: directory with the immutable or append-only flag: flag %s",
		 esc(r->guest, 0), esc(path, 1), r->o->dry_run ? "would be cleared" : "cleared");
}

static int on_entry(void *ctx, const struct walk_entry *e)
{
	struct rm *r = ctx;
	const struct statx *s = e->stx;

	r->seen++;
	progress_bar(&r->prog, "remove", r->seen, r->total, r->bytes, 0);
	/* A bind mount inside the guest (same filesystem, so the walk would
	 * enter it): whatever is mounted there is not this guest's. */
	if (stx_mount_root(s)) {
		fail(r, e->path, "a mount point: not entered, not removed (unmount it and run "
			 "vunify remove again)", NULL);
		return WALK_SKIP_DIR;
	}
	if (S_ISDIR(s->stx_mode)) {
		if (stx_flagged(s))
			clear_dir_flags(r, e->dirfd, e->name, e->path, s);
		return WALK_CONTINUE;
	}
	if (stx_flagged(s))
		remove_flagged(r, e);
	else
		unlink_plain(r, e);
	return WALK_CONTINUE;
}

/* A directory whose entries were all visited: remove it.  ENOTEMPTY means
 * something in it was left, and said so already. */
static int on_leave(void *ctx, const struct walk_entry *e)
{
	struct rm *r = ctx;

	if (!r->o->dry_run && unlinkat(e->dirfd, e->name, AT_REMOVEDIR) < 0) {
		if (errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT)
			fail(r, e->path, "cannot remove directory", strerror(errno));
		return WALK_CONTINUE;
	}
	r->dirs++;
	r->bytes += e->stx->stx_blocks * 512;
	return WALK_CONTINUE;
}

static void on_walk_error(void *ctx, const char *path, int err, const char *what)
{
	struct rm *r = ctx;

	if (err == EXDEV)	/* the walk does not enter other filesystems */
		fail(r, path, "a mount point (another filesystem): not entered, not removed "
			 "(unmount it and run vunify remove again)", NULL);
	else
		fail(r, path, what, strerror(err));
}

/* Take the directory @dir of the pool (the guest, or what is left of it)
 * apart and remove it. */
static void take_apart(struct rm *r, const char *dir)
{
	struct walk_ops ops = { .entry = on_entry, .leave = on_leave, .error = on_walk_error,
				.ctx = r, .sort_by_inode = true };
	struct statx stx;
	int fd = guest_open(r->pool, dir), rc;

	if (fd < 0) {
		fail(r, "", "cannot open", strerror(-fd));
		return;
	}
	if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) < 0 || stx_mount_root(&stx)) {
		fail(r, "", "is a mount point; unmount it first", NULL);
		goto out;
	}
	if (r->prog.on) {
		struct guests one = { (char **)&dir, 1 };

		r->seen = 0;
		r->prog.start_ms = r->prog.last_ms = 0;	/* a bar of its own */
		r->total = count_entries(r->pool, &one, NULL);
	}
	rc = walk_tree(fd, &ops);
	progress_done(&r->prog);
	if (rc < 0) {
		fail(r, "", "walk stopped", strerror(-rc));
		goto out;
	}
	if (!r->o->dry_run && unlinkat(r->pool->dirfd, dir, AT_REMOVEDIR) < 0) {
		fail(r, "", errno == ENOTEMPTY ? "not everything could be removed (see above; "
			 "entries added meanwhile?); run vunify remove again" : "cannot remove",
		     errno == ENOTEMPTY ? NULL : strerror(errno));
		goto out;
	}
	r->dirs++;
	r->bytes += stx.stx_blocks * 512;
out:
	close(fd);
}

/* ---- one guest ---------------------------------------------------------------- */

static bool is_dir(struct hashdb_pool *p, const char *name)
{
	struct stat st;

	return name && fstatat(p->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* POOL/.removing~NAME, or NULL when that name would be too long (such a
 * guest is taken apart under its own name). */
static char *removing_name(const char *guest)
{
	char *s;

	if (strlen(HASHDB_REMOVING_PREFIX) + strlen(guest) > NAME_MAX)
		return NULL;
	return asprintf(&s, HASHDB_REMOVING_PREFIX "%s", guest) < 0 ? NULL : s;
}

/* The guest's own root may carry the flags too; a rename or rmdir of an
 * immutable directory fails. */
static void clear_root_flags(struct rm *r, const char *dir)
{
	struct statx stx;

	if (statx(r->pool->dirfd, dir, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) == 0 &&
	    S_ISDIR(stx.stx_mode) && stx_flagged(&stx))
		clear_dir_flags(r, r->pool->dirfd, dir, "", &stx);
}

static void forget_metrics(struct rm *r, const char *guest)
{
	struct options ao = *r->o;
	bool oom;
	char *path;
	int n;

	if (r->o->dry_run)
		return;
	/* audit's file in prometheus-dir, not this run's --prometheus FILE. */
	ao.prometheus = NULL;
	path = prom_path(&ao, "audit", r->poolpath, &oom);
	if (!path)
		return;
	n = prom_drop_label(path, r->poolpath, "guest", guest);
	if (n < 0)
		msg_error("%s: cannot drop the samples of %s: %s", esc(path, 0), esc(guest, 1),
			  strerror(-n));
	else if (n > 0)
		msg_info(r->o, "%s: %d samples of %s dropped", esc(path, 0), n, esc(guest, 1));
	free(path);
}

/* POOL/.cloning~NAME, a clone of that name that was interrupted, or NULL. */
static char *cloning_name(const char *guest)
{
	char *s;

	if (strlen(HASHDB_CLONING_PREFIX) + strlen(guest) > NAME_MAX)
		return NULL;
	return asprintf(&s, HASHDB_CLONING_PREFIX "%s", guest) < 0 ? NULL : s;
}

static void remove_guest(struct rm *r, const char *name)
{
	char *dying = removing_name(name), *unborn = cloning_name(name);
	int rc;

	r->guest = name;
	if (is_dir(r->pool, unborn)) {
		msg_info(r->o, "%s: removing a clone of that name that was interrupted", esc(name, 0));
		clear_root_flags(r, unborn);
		take_apart(r, unborn);
	}
	free(unborn);
	if (is_dir(r->pool, dying)) {
		msg_info(r->o, "%s: finishing a removal that was interrupted", esc(name, 0));
		clear_root_flags(r, dying);
		take_apart(r, dying);
	}
	if (is_dir(r->pool, name)) {
		clear_root_flags(r, name);
		if (r->o->dry_run || !dying) {
			take_apart(r, name);
		} else if (renameat2(r->pool->dirfd, name, r->pool->dirfd, dying,
				     RENAME_NOREPLACE) < 0) {
			fail(r, "", "cannot rename it to " HASHDB_REMOVING_PREFIX "NAME",
			     strerror(errno));
		} else {
			take_apart(r, dying);
		}
	}
	rc = r->pool->cachefd < 0 ? 0 : hashdb_sc_remove(r->pool->cachefd, name, r->o->dry_run);
	if (rc < 0)
		fail(r, "", "cannot remove its stat cache", strerror(-rc));
	r->caches += rc > 0;
	forget_metrics(r, name);
	free(dying);
}

int remove_tree(struct hashdb_pool *p, const struct options *o, const char *poolpath,
		const char *dir)
{
	struct rm r = { .o = o, .pool = p, .poolpath = poolpath, .guest = dir };

	r.prog.on = o->progress;
	clear_root_flags(&r, dir);
	take_apart(&r, dir);
	return r.errors ? -EIO : 0;
}

/* ---- the command ---------------------------------------------------------------- */

static void on_use(void *ctx, const char *what)
{
	struct rm *r = ctx;

	r->uses++;
	if (r->o->verbose >= 0 || !r->force)
		msg_error("%s: in use: %s", esc(r->guest, 0), what);
	if (r->json_uses) {
		fputs(r->uses > 1 ? ",{\"guest\":" : "{\"guest\":", r->json_uses);
		json_string(r->json_uses, r->guest);
		fputs(",\"use\":", r->json_uses);
		json_string(r->json_uses, what);
		fputc('}', r->json_uses);
	}
}

/* Every guest must exist (or be left from an interrupted removal: its
 * .removing~ directory or its stat cache); then none may be in use.  0, or
 * the exit code. */
static int check_guests(struct rm *r, const struct guests *g)
{
	bool busy = false;

	for (size_t i = 0; i < g->n; i++) {
		char *dying = removing_name(g->names[i]), *unborn = cloning_name(g->names[i]);
		/* Only a stat cache left: a run killed after the last rmdir. */
		bool there = is_dir(r->pool, g->names[i]) || is_dir(r->pool, dying) ||
			     is_dir(r->pool, unborn) ||
			     (r->pool->cachefd >= 0 &&
			      hashdb_sc_remove(r->pool->cachefd, g->names[i], true) > 0);

		free(dying);
		free(unborn);
		if (!there) {
			msg_error("%s: no such guest in %s", esc(g->names[i], 0), esc(r->poolpath, 1));
			return EXIT_USAGE;
		}
	}
	for (size_t i = 0; i < g->n; i++) {
		uint64_t before = r->uses;
		int rc;

		r->guest = g->names[i];
		rc = guest_in_use(r->pool, g->names[i], on_use, r);
		if (rc < 0) {
			msg_error("%s: cannot tell whether it is in use: %s%s", esc(g->names[i], 0),
				  strerror(-rc), r->force ? "; removing it anyway (--force)"
							  : " (--force removes it anyway)");
			if (!r->force)
				return EXIT_FATAL;
		}
		if (r->uses == before)
			continue;
		if (r->force)
			msg_info(r->o, "%s: removing it anyway (--force)", esc(g->names[i], 0));
		else
			msg_error("%s: in use; nothing removed (stop what uses it, or --force)",
				  esc(g->names[i], 0));
		busy = true;
	}
	return busy && !r->force ? EXIT_BUSY : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The objects the removed guests leave unused.  0 or the exit code. */
static int collect(struct rm *r, struct gc_stats *gs)
{
	int rc;

	if (r->no_gc || r->pool->objfd < 0)
		return 0;
	if (r->ngone > 1)
		qsort(r->gone, r->ngone, sizeof(*r->gone), cmp_u64);
	rc = gc_run(r->pool, r->o, r->gone, r->ngone, gs);
	if (rc < 0) {
		msg_error("%s: cannot list objects: %s", esc(r->poolpath, 0), strerror(-rc));
		return EXIT_TROUBLE;
	}
	return gs->errors ? EXIT_TROUBLE : 0;
}

static const char help[] =
	"Usage: vunify remove [OPTIONS] POOL GUEST...\n"
	"Delete guests whole: private files plainly, CoW links so that every inode other\n"
	"guests share keeps its immutable flag; then collect the objects only they\n"
	"used.  Refuses while a guest is in use (a mount inside or of it, a process\n"
	"with its root, working directory or an open file in it, directly or through\n"
	"cowfs).  An interrupted removal is finished by running it again.\n\n"
	"  -n, --dry-run          show what would be removed, change nothing\n"
	"  -f, --force            remove guests that are in use\n"
	"      --no-gc            leave unused objects for the next vunify gc\n"
	"      --json             print the run's figures as one JSON object on stdout\n"
	"      --prometheus FILE  write the run's metrics for node_exporter to FILE\n"
	"  -c, --config FILE      system configuration (default " VUNIFY_SYSCONF ")\n"
	"  -v, --verbose          name every flag cleared and object collected\n"
	"  -q, --quiet            no summary, no progress\n"
	"  -h, --help             show this help\n";

static void print_json(struct rm *r, const struct guests *g, const struct gc_stats *gs,
		       uint64_t ms)
{
	printf("{\"dry_run\":%s,\"guests\":[", r->o->dry_run ? "true" : "false");
	for (size_t i = 0; i < g->n; i++) {
		if (i)
			putchar(',');
		json_string(stdout, g->names[i]);
	}
	printf("],\"in_use\":[%s],\"forced\":%s,\"files\":%" PRIu64 ",\"cowlinks\":%" PRIu64
	       ",\"dirs\":%" PRIu64 ",\"flags_cleared\":%" PRIu64 ",\"removed_bytes\":%" PRIu64
	       ",\"objects_collected\":%" PRIu64 ",\"objects_freed_bytes\":%" PRIu64
	       ",\"freed_bytes\":%" PRIu64 ",\"caches_removed\":%" PRIu64 ",\"errors\":%" PRIu64
	       ",\"elapsed_ms\":%" PRIu64 "}\n",
	       r->json_buf ? r->json_buf : "", r->force && r->uses ? "true" : "false", r->files,
	       r->cowlinks, r->dirs, r->cleared, r->bytes, gs->removed, gs->freed,
	       r->bytes + gs->freed, r->caches, r->errors + gs->errors, ms);
}

static void print_summary(struct rm *r, const struct guests *g, const struct gc_stats *gs)
{
	bool dry = r->o->dry_run;

	if (g->n == 1)
		fprintf(stderr, "vunify: remove: %s: ", esc(g->names[0], 0));
	else
		fprintf(stderr, "vunify: remove: %zu guests: ", g->n);
	fprintf(stderr, "%s %" PRIu64 " files, %" PRIu64 " CoW links, %" PRIu64
		" directories (%.1f MiB); ", dry ? "would remove" : "removed", r->files,
		r->cowlinks, r->dirs, r->bytes / 1048576.0);
	if (r->no_gc)
		fputs("unused objects left for vunify gc", stderr);
	else
		fprintf(stderr, "%s %" PRIu64 " unused objects (%.1f MiB)",
			dry ? "would collect" : "collected", gs->removed, gs->freed / 1048576.0);
	fputs(dry ? " (dry run: nothing changed)\n" : "\n", stderr);
}

static void write_metrics(struct rm *r, const struct gc_stats *gs, int rc, uint64_t ms)
{
	struct prom p;

	if (!prom_begin(&p, r->o, "remove", r->poolpath))
		return;
	prom_gauge(&p, "vunify_remove_files", "private files removed", (double)r->files);
	prom_gauge(&p, "vunify_remove_cowlinks", "CoW links removed", (double)r->cowlinks);
	prom_gauge(&p, "vunify_remove_freed_bytes", "bytes freed (files, directories, objects)",
		   (double)(r->bytes + gs->freed));
	prom_gauge(&p, "vunify_remove_collected_objects", "objects left unused and removed",
		   (double)gs->removed);
	prom_gauge(&p, "vunify_remove_errors", "entries that could not be removed",
		   (double)(r->errors + gs->errors));
	prom_finish(&p, "remove", rc, ms / 1000.0);
}

static int run(struct cmd *c)
{
	struct rm *r = c->self;
	struct gc_stats gs = { 0 };
	const struct guests *g = &c->guests;
	int rc;

	r->o = &c->o;
	r->pool = &c->pool;
	r->poolpath = c->poolpath;
	r->prog.on = c->o.progress;
	if (c->o.json)
		r->json_uses = open_memstream(&r->json_buf, &r->json_len);
	rc = check_guests(r, g);
	if (r->json_uses)
		fclose(r->json_uses);
	r->json_uses = NULL;
	if (rc == EXIT_USAGE || rc == EXIT_FATAL)
		goto out;
	for (size_t i = 0; i < g->n && rc == 0; i++)
		remove_guest(r, g->names[i]);
	if (rc == 0)
		rc = collect(r, &gs);
	if (rc == 0 && r->errors)
		rc = EXIT_TROUBLE;
	if (c->o.json)
		print_json(r, g, &gs, now_ms() - c->t0);
	if (c->o.verbose >= 0 && rc != EXIT_BUSY)
		print_summary(r, g, &gs);
	write_metrics(r, &gs, rc, now_ms() - c->t0);
out:
	free(r->gone);
	free(r->json_buf);
	return rc;
}

static const struct option longopts[] = {
	{ "force", no_argument, NULL, 'f' },
	{ "no-gc", no_argument, NULL, 'G' },
	{ 0 }
};

static const struct cmd_flag flags[] = {
	{ 'f', offsetof(struct rm, force) },
	{ 'G', offsetof(struct rm, no_gc) },
	{ 0 }
};

const struct command remove_command = {
	.name = "remove",
	.what = "delete guests whole and collect the objects only they used",
	.help = help,
	.common = CMD_DRY_RUN | CMD_JSON | CMD_PROMETHEUS | CMD_CONFIG | CMD_VERBOSE | CMD_QUIET,
	.shortopts = "f",
	.longopts = longopts,
	.flags = flags,
	.min_args = 2, .max_args = -1,
	.pool = CMD_POOL_LOCKED,
	.guests = CMD_GUESTS_ALL,
	.run = run,
	.self_size = sizeof(struct rm),
};
