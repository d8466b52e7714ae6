/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vunify unify: turn identical files of guest trees into CoW links.
 *
 * Per regular file (see docs/design.md, "unify, step by step"):
 *   1. already a CoW link (immutable, marked, inode is its object's)?  done;
 *      a stat-cache hit for an unchanged object inode answers without I/O.
 *   2. identity from the stat cache, or hash content + metadata.
 *   3. take a read lease (a file open for writing is skipped: its writer
 *      loses nothing) and check it is still the file that was hashed.
 *   4. object exists: compare metadata and bytes (the hash only proposes),
 *      link the object to a temporary name beside the file, rename it over.
 *      No object: the file itself becomes the object (marker, link into the
 *      pool, immutable flag).
 * A kill -9 anywhere leaves each path with its old inode or the identical
 * object; leftovers (temporary names, objects not yet immutable) are
 * cleaned by the next run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "cowlink/cowlink.h"
#include "hashdb/hash.h"
#include "hashdb/identity.h"
#include "hashdb/pool.h"
#include "hashdb/statcache.h"
#include "vunify/command.h"
#include "vunify/config.h"
#include "vunify/prefetch.h"
#include "vunify/prehash.h"
#include "vunify/prometheus.h"
#include "vunify/vunify.h"
#include "vunify/walk.h"

enum skip {
	SK_EMPTY, SK_EXCLUDED, SK_SPECIAL, SK_HARDLINKED, SK_BUSY, SK_CHANGED,
	SK_FLAGGED, SK_COLLISION, SK_ERROR, SK_OTHERFS, NSKIP
};

static const char *const skip_names[NSKIP] = {
	"empty", "excluded", "special", "hardlinked", "busy", "changed",
	"flagged", "collision", "error", "other_fs",
};

static const char *const skip_why[NSKIP] = {
	"empty file", "excluded", "not a regular file", "hard-linked inside the guest",
	"open for writing", "changed while being read", "immutable or append-only, not ours",
	"identity clash: same hash, different bytes", "error", "on another filesystem",
};

struct stats {
	uint64_t scanned, regular, hashed_files, hashed_bytes, hashed_ahead, cache_hits;
	uint64_t already, linked, new_objects, freed_bytes, repaired, cleaned;
	uint64_t mtime_changed;	/* linked paths that took their object's other mtime */
	uint64_t skipped[NSKIP];
};

/* Identity hashes seen in a dry run, so the run can tell what it would
 * link although it creates no objects. */
struct idset {
	struct hashdb_hash *slots;
	size_t cap, n;
};

struct unify {
	const struct options *o;
	struct hashdb_pool *pool;
	struct stats st;
	struct hashdb_statcache sc;
	struct progress prog;
	struct idset dry;
	struct prehash *ph;	/* NULL: hash everything in the main thread */
	struct prefetch *pf;	/* read-ahead for a guest's first run, or NULL */
	struct exclude_scope mscope;	/* directories ignore-mtime-path rules cover */
	void *io[2];		/* read buffers for hashing and comparing, reused */
	const char *guest;
	unsigned long tmpseq;
	uint64_t total;		/* entries to walk, for the progress bar */
};

/* ---- small helpers -------------------------------------------------------- */

static bool stx_immutable(const struct statx *s)
{
	return (s->stx_attributes_mask & STATX_ATTR_IMMUTABLE) &&
	       (s->stx_attributes & STATX_ATTR_IMMUTABLE);
}

static bool stx_append(const struct statx *s)
{
	return (s->stx_attributes_mask & STATX_ATTR_APPEND) &&
	       (s->stx_attributes & STATX_ATTR_APPEND);
}

static void entry_from_stat(struct hashdb_sc_entry *e, const struct stat *s)
{
	memset(e, 0, sizeof(*e));
	e->dev = s->st_dev;
	e->ino = s->st_ino;
	e->size = (uint64_t)s->st_size;
	e->mtime_s = s->st_mtim.tv_sec;
	e->mtime_ns = (uint32_t)s->st_mtim.tv_nsec;
	e->ctime_s = s->st_ctim.tv_sec;
	e->ctime_ns = (uint32_t)s->st_ctim.tv_nsec;
}

static bool entry_matches_stx(const struct hashdb_sc_entry *e, const struct statx *s)
{
	return e->dev == makedev(s->stx_dev_major, s->stx_dev_minor) && e->ino == s->stx_ino &&
	       e->size == s->stx_size && e->mtime_s == s->stx_mtime.tv_sec &&
	       e->mtime_ns == s->stx_mtime.tv_nsec && e->ctime_s == s->stx_ctime.tv_sec &&
	       e->ctime_ns == s->stx_ctime.tv_nsec;
}

/*
 * A CoW link this run need not look at: its cache entry says it was an
 * object's inode, and dev, ino, size and mtime still match with the flag set
 * and a second link (the pool's name) present.  The ctime is left out on
 * purpose: the inode is shared, and its ctime moves whenever any guest's
 * path is linked to it or drops its link, which sent every guest of a
 * growing pool back to opening each CoW link and reading its marker (a
 * whole-pool rerun at 100 guests took 3.9x a stat walk).  Nothing is
 * linked on the strength of this; the content cannot change while the flag
 * is set; and what the ctime would still have caught (the object's pool
 * name removed by hand while other guests keep the inode) is what
 * `vunify verify` checks.
 */
static bool cowlink_unchanged(const struct hashdb_sc_entry *e, const struct statx *s)
{
	return (e->flags & HASHDB_SC_OBJECT) && stx_immutable(s) && s->stx_nlink >= 2 &&
	       e->dev == makedev(s->stx_dev_major, s->stx_dev_minor) && e->ino == s->stx_ino &&
	       e->size == s->stx_size && e->mtime_s == s->stx_mtime.tv_sec &&
	       e->mtime_ns == s->stx_mtime.tv_nsec;
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_nlink == b->st_nlink &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void skip(struct unify *u, const char *path, enum skip why, int err)
{
	u->st.skipped[why]++;
	if (why == SK_ERROR || why == SK_COLLISION)
		msg_error("%s%s: %s%s%s", esc(u->guest, 0), esc(path, 1), skip_why[why],
			  err ? ": " : "", err ? strerror(err) : "");
	else if (u->o->verbose >= 1)
		msg_info(u->o, "%s%s: skipped: %s", esc(u->guest, 0), esc(path, 1),
			 skip_why[why]);
}

/* Open @name and make sure it is the regular file the walk saw. */
static int open_checked(int dirfd, const char *name, const struct statx *stx, struct stat *st)
{
	int fd = walk_open_regular(dirfd, name, st);

	if (fd < 0)
		return fd;
	if (st->st_ino != stx->stx_ino ||
	    st->st_dev != makedev(stx->stx_dev_major, stx->stx_dev_minor)) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* ---- dry-run identity set ------------------------------------------------- */

static bool idset_add(struct idset *s, const struct hashdb_hash *h)
{
	size_t i;

	if (s->n * 2 >= s->cap) {
		struct idset n = { .cap = s->cap ? s->cap * 2 : 1024 };

		n.slots = calloc(n.cap, sizeof(*n.slots));
		if (!n.slots)
			return false;
		for (size_t j = 0; j < s->cap; j++) {
			static const struct hashdb_hash zero;
			if (memcmp(&s->slots[j], &zero, sizeof(zero)))
				idset_add(&n, &s->slots[j]);
		}
		free(s->slots);
		*s = n;
	}
	memcpy(&i, h->b, sizeof(i));
	for (i &= s->cap - 1;; i = (i + 1) & (s->cap - 1)) {
		static const struct hashdb_hash zero;
		if (!memcmp(&s->slots[i], h, sizeof(*h)))
			return false;	/* present */
		if (!memcmp(&s->slots[i], &zero, sizeof(zero))) {
			s->slots[i] = *h;
			s->n++;
			return true;	/* added */
		}
	}
}


/* ---- CoW links that exist already ----------------------------------------- */

/* Is the open file a CoW link of this pool?  Returns the object's gen, or a
 * negative errno (-ENODATA: not marked, -ENOENT: marked, but not an object's
 * inode).  The marker goes to @hex. */
static int recognise(struct unify *u, int fd, const struct stat *st, char *hex)
{
	int r = cowlink_marker_get(fd, hex);

	if (r < 0)
		return r == -EINVAL ? -ENODATA : r;
	return hashdb_object_find_ino(u->pool, hex, st->st_dev, st->st_ino);
}

static void cache_object(struct unify *u, int fd, const char *hex)
{
	struct hashdb_sc_entry e;
	struct hashdb_hash h;
	struct stat st;

	if (fstat(fd, &st) < 0 || hashdb_hash_from_hex(hex, &h) < 0)
		return;
	entry_from_stat(&e, &st);
	e.flags = HASHDB_SC_OBJECT;
	memcpy(e.id, h.b, sizeof(e.id));
	hashdb_sc_put(&u->sc, &e);
}

/*
 * A marked object inode without the immutable flag: a run was killed between
 * linking it into the pool and setting the flag, or someone cleared the flag.
 * Its content may have changed since, so it is re-hashed: still matching, it
 * gets its flag back; changed, it leaves the pool (object name and marker
 * removed) and stays an ordinary file of the guest.
 */
static int repair_object(struct unify *u, int fd, const char *hex, int gen, const char *path)
{
	uint64_t bytes = 0;
	char name[64];
	int r;

	if (u->o->dry_run)
		return 0;
	r = hashdb_identity_matches(fd, hex, 0, &bytes);
	if (r < 0)
		return r;
	u->st.hashed_files++;
	u->st.hashed_bytes += bytes;
	if (r == 1) {
		r = cowlink_set_immutable(fd, true);
		if (r == 0) {
			u->st.repaired++;
			msg_info(u->o, "%s%s: object %s had lost its immutable flag; restored",
				 esc(u->guest, 0), esc(path, 1), hex);
		}
		return r;
	}
	hashdb_object_name(hex, (unsigned)gen, name, sizeof(name));
	if (unlinkat(u->pool->objfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	r = cowlink_marker_remove(fd);
	if (r == 0)
		msg_error("%s%s: object %s was modified outside cowfs; removed from the pool, file kept as it is",
			  esc(u->guest, 0), esc(path, 1), hex);
	u->st.repaired++;
	return r;
}

/*
 * A temporary name of a vunify or cowfs process that is gone (killed in the
 * middle of an operation).  Whatever it holds is redundant: a link of a pool
 * object, the old inode of a path that was already exchanged for its
 * byte-identical object, or a half-made copy-up whose original is still in
 * place.  Names of processes that still run are in use and left alone.
 */
static bool clean_leftover(struct unify *u, const struct walk_entry *e, pid_t pid)
{
	struct stat st;
	int fd, r = 0;

	if (pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH)
		return false;
	fd = open_checked(e->dirfd, e->name, e->stx, &st);
	if (fd < 0)
		return false;
	if (!u->o->dry_run)
		r = cowlink_unlink(u->pool->flagfd, fd, e->dirfd, e->name);
	if (r < 0)
		msg_error("%s%s: cannot remove leftover of an interrupted run: %s",
			  esc(u->guest, 0), esc(e->path, 1), strerror(-r));
	else
		u->st.cleaned++;
	close(fd);
	return r == 0;
}

/* ---- making CoW links ----------------------------------------------------- */

struct candidate {
	const struct walk_entry *e;
	int fd;
	struct stat st;
	struct cowlink_meta meta;
	bool have_meta;
	bool ignore_mtime;	/* --ignore-mtime, or an ignore-mtime-path rule covers it */
	struct hashdb_hash id;
	char hex[COWLINK_HEX_LEN + 1];
};

static int identify(struct unify *u, struct candidate *c)
{
	const struct hashdb_sc_entry *ce = hashdb_sc_lookup(&u->sc, c->st.st_dev, c->st.st_ino);
	struct hashdb_sc_entry ne;
	struct hashdb_hash content;
	uint64_t bytes = 0;
	uint32_t mode = c->ignore_mtime ? HASHDB_SC_IGNORE_MTIME : 0;
	int r;

	if (ce && entry_matches_stx(ce, c->e->stx) && !(ce->flags & HASHDB_SC_OBJECT) &&
	    (ce->flags & HASHDB_SC_IGNORE_MTIME) == mode) {
		memcpy(c->id.b, ce->id, sizeof(c->id.b));
		u->st.cache_hits++;
		hashdb_sc_put(&u->sc, ce);
		goto out;
	}
	if (u->ph && prehash_take(u->ph, c->e->depth, c->e->index, &c->st, &content, &bytes)) {
		u->st.hashed_ahead++;
	} else {
		r = hashdb_hash_fd_with(c->fd, u->io[0], &content, &bytes, 0);
		if (r < 0)
			return r;
	}
	u->st.hashed_files++;
	u->st.hashed_bytes += bytes;
	r = cowlink_meta_read(c->fd, &c->meta);
	if (r < 0)
		return r;
	c->have_meta = true;
	r = hashdb_identity(&content, &c->meta, c->ignore_mtime, &c->id);
	if (r < 0)
		return r;
	entry_from_stat(&ne, &c->st);
	ne.flags = mode;
	memcpy(ne.id, c->id.b, sizeof(ne.id));
	hashdb_sc_put(&u->sc, &ne);
out:
	hashdb_hash_hex(&c->id, c->hex);
	return 0;
}

/* Does the open object @ofd hold exactly what @c holds? 1 yes, 0 no. */
static int same_as_object(struct unify *u, struct candidate *c, int ofd)
{
	struct cowlink_meta om;
	int r;

	if (!c->have_meta) {
		r = cowlink_meta_read(c->fd, &c->meta);
		if (r < 0)
			return r;
		c->have_meta = true;
	}
	r = cowlink_meta_read(ofd, &om);
	if (r < 0)
		return r;
	r = cowlink_meta_equal(&c->meta, &om, c->ignore_mtime);
	cowlink_meta_free(&om);
	if (r)
		r = cowlink_same_content_with(c->fd, ofd, c->st.st_size, u->io[0], u->io[1]);
	return r;
}

/* Replace the path by a link of the object: link to a temporary name in the
 * same directory, then rename it over the path. */
static int link_object(struct unify *u, struct candidate *c, int ofd)
{
	const struct walk_entry *e = c->e;
	struct timespec mtime;
	char tmp[64];
	int r = cowlink_tmp_name(tmp, sizeof(tmp));

	r = r ?: cowlink_dir_mtime(e->dirfd, &mtime);
	r = r ?: hashdb_object_link_over(u->pool, ofd, e->dirfd, tmp, e->name, &c->st);
	if (r < 0)
		return r;
	/* Guests observe the directory's mtime (docs/design.md, step 7). */
	cowlink_dir_mtime_restore(e->dirfd, &mtime);
	return 0;
}

struct unadopt_arg {
	int objfd, fd;
	const char *name;
};

static int unadopt_op(void *p)
{
	struct unadopt_arg *a = p;

	if (unlinkat(a->objfd, a->name, 0) < 0 && errno != ENOENT)
		return -errno;
	return cowlink_marker_remove(a->fd);
}

/*
 * The file becomes object (hex, gen): marker, link into the pool, flag.
 * The read lease keeps writers out, but not a chmod, chown, utimes or
 * setxattr: one that landed after the last check would leave an object
 * whose metadata is not its name's.  So once the flag freezes it, the
 * metadata is compared again; changed, the file leaves the pool at once
 * (-ESTALE: "changed") and stays the guest's own file, with its change.
 */
static int adopt(struct unify *u, struct candidate *c, unsigned gen)
{
	struct unadopt_arg a = { u->pool->objfd, c->fd, NULL };
	struct cowlink_meta now;
	struct stat st;
	char name[64];
	bool same;
	int r = cowlink_marker_set(c->fd, c->hex);

	r = r ?: hashdb_object_adopt(u->pool, c->fd, c->hex, gen);
	if (r < 0)
		return r;
	r = cowlink_set_immutable(c->fd, true);
	if (r < 0)
		return r;
	if (fstat(c->fd, &st) < 0)
		return -errno;
	same = hashdb_same_observed(&st, &c->st);
	if (same && c->have_meta) {
		r = cowlink_meta_read(c->fd, &now);
		if (r < 0)
			return r;
		same = cowlink_meta_equal(&now, &c->meta, c->ignore_mtime);
		cowlink_meta_free(&now);
	}
	if (same)
		return 0;
	hashdb_object_name(c->hex, gen, name, sizeof(name));
	a.name = name;
	r = cowlink_with_mutable(u->pool->flagfd, c->fd, unadopt_op, &a);
	/* One link again and unmarked: the guest's own file, as it was. */
	r = r ?: cowlink_set_immutable(c->fd, false);
	return r ?: -ESTALE;
}

/*
 * A path identified without mtime was (or in a dry run would be) linked to
 * an object whose mtime is another: the guest now sees the object's.
 * Counted, and named with -v, so an operator can see what the rules did.
 */
static void note_mtime(struct unify *u, const struct candidate *c, const struct stat *ost)
{
	char was[32], now[32];
	struct tm tm;

	if (c->st.st_mtim.tv_sec == ost->st_mtim.tv_sec &&
	    c->st.st_mtim.tv_nsec == ost->st_mtim.tv_nsec)
		return;
	u->st.mtime_changed++;
	if (u->o->verbose < 1)
		return;
	strftime(was, sizeof(was), "%Y-%m-%d %H:%M:%S", gmtime_r(&c->st.st_mtim.tv_sec, &tm));
	strftime(now, sizeof(now), "%Y-%m-%d %H:%M:%S", gmtime_r(&ost->st_mtim.tv_sec, &tm));
	msg_info(u->o, "%s%s: %s the object's mtime %s.%09ld UTC (was %s.%09ld): %s",
		 esc(u->guest, 0), esc(c->e->path, 1), u->o->dry_run ? "would take" : "took", now,
		 ost->st_mtim.tv_nsec, was, c->st.st_mtim.tv_nsec,
		 u->o->ignore_mtime ? "ignore-mtime" : "ignore-mtime-path rule");
}

/* Under the lease: find the object for c's identity and link or adopt. */
static int place(struct unify *u, struct candidate *c)
{
	for (unsigned gen = 0; gen < HASHDB_MAX_GEN; gen++) {
		struct stat ost;
		int ofd = hashdb_object_open(u->pool, c->hex, gen, &ost), r;

		if (ofd == -ENOENT) {
			r = adopt(u, c, gen);
			if (r == -EEXIST)
				continue;	/* -ESTALE: changed while adopted */
			if (r == 0)
				u->st.new_objects++;
			if (r == 0)
				cache_object(u, c->fd, c->hex);
			return r;
		}
		if (ofd < 0)
			return ofd;
		r = same_as_object(u, c, ofd);
		if (r == 0) {
			close(ofd);
			return -EILSEQ;	/* identity clash */
		}
		if (r > 0)
			r = link_object(u, c, ofd);
		if (r == 0) {
			u->st.linked++;
			note_mtime(u, c, &ost);
			if (c->st.st_nlink == 1)
				u->st.freed_bytes += (uint64_t)c->st.st_blocks * 512;
			cache_object(u, ofd, c->hex);
		}
		close(ofd);
		if (r != -EMLINK)
			return r;
	}
	return -EMLINK;
}

static void dry_place(struct unify *u, struct candidate *c)
{
	struct stat ost;
	int ofd = hashdb_object_open(u->pool, c->hex, 0, &ost);

	if (ofd >= 0) {
		int r = same_as_object(u, c, ofd);
		close(ofd);
		if (r == 0) {
			skip(u, c->e->path, SK_COLLISION, 0);
			return;
		}
		if (r > 0)
			note_mtime(u, c, &ost);
	}
	if (ofd >= 0 || !idset_add(&u->dry, &c->id)) {
		u->st.linked++;
		u->st.freed_bytes += (uint64_t)c->st.st_blocks * 512;
	} else {
		u->st.new_objects++;
	}
}

static void unify_file(struct unify *u, const struct walk_entry *e)
{
	struct candidate c = { .e = e, .fd = -1 };

	c.ignore_mtime = u->o->ignore_mtime ||
			 (u->o->mtime_rules.n &&
			  exclude_scope_match(&u->mscope, &u->o->mtime_rules, e->depth, e->path, false));
	struct stat again;
	int r;

	c.fd = open_checked(e->dirfd, e->name, e->stx, &c.st);
	if (c.fd < 0) {
		if (c.fd == -ESTALE || c.fd == -ELOOP || c.fd == -ENOENT)
			skip(u, e->path, SK_CHANGED, 0);
		else
			skip(u, e->path, SK_ERROR, -c.fd);
		return;
	}
	r = identify(u, &c);
	if (r < 0) {
		skip(u, e->path, SK_ERROR, -r);
		goto out;
	}
	if (u->o->dry_run) {
		dry_place(u, &c);
		goto out;
	}
	if (fcntl(c.fd, F_SETLEASE, F_RDLCK) < 0) {
		if (errno == EAGAIN || errno == EBUSY)
			skip(u, e->path, SK_BUSY, 0);
		else
			skip(u, e->path, SK_ERROR, errno);
		goto out;
	}
	if (fstat(c.fd, &again) < 0 || !same_stat(&c.st, &again)) {
		skip(u, e->path, SK_CHANGED, 0);
		goto unlease;
	}
	r = place(u, &c);
	if (r == -EILSEQ)
		skip(u, e->path, SK_COLLISION, 0);
	else if (r == -ESTALE)
		skip(u, e->path, SK_CHANGED, 0);
	else if (r < 0)
		skip(u, e->path, SK_ERROR, -r);
unlease:
	fcntl(c.fd, F_SETLEASE, F_UNLCK);
out:
	if (c.have_meta)
		cowlink_meta_free(&c.meta);
	close(c.fd);
}

/* A file with the immutable flag or several links: ours already, ours to
 * repair, or somebody else's to leave alone.  Returns true for a guest's own
 * hard link that --hardlinks asks to unify like any file. */
static bool handle_linked(struct unify *u, const struct walk_entry *e, bool immutable)
{
	bool unify_it = false;
	char hex[COWLINK_HEX_LEN + 1];
	struct stat st;
	int fd = open_checked(e->dirfd, e->name, e->stx, &st), gen;

	if (fd < 0) {
		skip(u, e->path, fd == -ESTALE || fd == -ENOENT ? SK_CHANGED : SK_ERROR, -fd);
		return false;
	}
	gen = recognise(u, fd, &st, hex);
	if (gen >= 0 && immutable) {
		u->st.already++;
		cache_object(u, fd, hex);
	} else if (gen >= 0) {
		int r = repair_object(u, fd, hex, gen, e->path);
		if (r < 0)
			skip(u, e->path, SK_ERROR, -r);
		else
			u->st.already++;
	} else if (gen != -ENODATA && gen != -ENOENT) {
		skip(u, e->path, SK_ERROR, -gen);
	} else if (!immutable && u->o->hardlinks) {
		unify_it = true;
	} else {
		skip(u, e->path, immutable ? SK_FLAGGED : SK_HARDLINKED, 0);
	}
	close(fd);
	return unify_it;
}

static int on_entry(void *ctx, const struct walk_entry *e)
{
	struct unify *u = ctx;
	const struct statx *s = e->stx;
	const struct hashdb_sc_entry *ce;
	bool is_dir = S_ISDIR(s->stx_mode);
	pid_t pid;

	u->st.scanned++;
	progress_bar(&u->prog, u->guest, u->st.scanned, u->total, u->st.hashed_bytes, 0);
	if (u->o->excludes.n && exclude_match(&u->o->excludes, e->path, is_dir)) {
		skip(u, e->path, SK_EXCLUDED, 0);
		return is_dir ? WALK_SKIP_DIR : WALK_CONTINUE;
	}
	if (is_dir && u->o->mtime_rules.n &&
	    exclude_scope_enter(&u->mscope, &u->o->mtime_rules, e->depth, e->path) < 0)
		return -ENOMEM;
	if (is_dir || S_ISLNK(s->stx_mode))
		return WALK_CONTINUE;
	if (!S_ISREG(s->stx_mode)) {
		skip(u, e->path, SK_SPECIAL, 0);
		return WALK_CONTINUE;
	}
	u->st.regular++;
	if (u->pf)
		prefetch_reached(u->pf, s->stx_size);
	if (cowlink_is_tmp_name(e->name, &pid) && clean_leftover(u, e, pid))
		return WALK_CONTINUE;
	ce = hashdb_sc_lookup(&u->sc, makedev(s->stx_dev_major, s->stx_dev_minor), s->stx_ino);
	if (ce && cowlink_unchanged(ce, s)) {
		u->st.already++;	/* unchanged CoW link: no I/O at all */
		u->st.cache_hits++;
		hashdb_sc_put(&u->sc, ce);
		return WALK_CONTINUE;
	}
	if ((stx_immutable(s) || s->stx_nlink > 1) && !handle_linked(u, e, stx_immutable(s)))
		return WALK_CONTINUE;
	if (stx_append(s)) {
		skip(u, e->path, SK_FLAGGED, 0);
		return WALK_CONTINUE;
	}
	if (s->stx_size == 0 && !u->o->include_empty) {
		skip(u, e->path, SK_EMPTY, 0);
		return WALK_CONTINUE;
	}
	unify_file(u, e);
	return WALK_CONTINUE;
}

static void on_walk_error(void *ctx, const char *path, int err, const char *what)
{
	struct unify *u = ctx;

	if (err == EXDEV) {
		u->st.skipped[SK_OTHERFS]++;
		msg_info(u->o, "%s%s: %s", esc(u->guest, 0), esc(path, 1), what);
		return;
	}
	u->st.skipped[SK_ERROR]++;
	msg_error("%s%s: %s: %s", esc(u->guest, 0), esc(path, 1), what, strerror(err));
}

static void on_dir_loaded(void *ctx, const struct walk_dir *d)
{
	struct unify *u = ctx;

	if (u->ph)
		prehash_dir_loaded(u->ph, d);
}

static void on_dir_done(void *ctx, size_t depth)
{
	struct unify *u = ctx;

	if (u->ph)
		prehash_dir_done(u->ph, depth);
}

/*
 * The walk of guest @name stopped with @err: its top directory could not be
 * read (the walk reports a deeper directory itself and goes on), or memory
 * ran out.  The guest's error, as for a guest that cannot be opened, and the
 * other guests are still unified (exit 1); only running out of memory stops
 * the run.  Its stat cache is not written: from an incomplete walk it would
 * drop the entries of the part not walked, and from a top directory that
 * could not be read it would be empty.
 */
static int walk_failed(struct unify *u, const char *name, int err)
{
	u->st.skipped[SK_ERROR]++;
	if (err == -ENOMEM) {
		msg_error("%s: walk stopped: %s", esc(name, 0), strerror(-err));
		return err;
	}
	msg_error("%s: cannot walk the guest: %s; not unified", esc(name, 0), strerror(-err));
	return 0;
}

static int unify_guest(struct unify *u, const char *name)
{
	struct walk_ops ops = { .entry = on_entry, .error = on_walk_error, .ctx = u,
				.sort_by_inode = true, .dir_loaded = on_dir_loaded,
				.dir_done = on_dir_done };
	int fd = guest_open(u->pool, name), r;

	u->guest = name;
	if (fd < 0) {
		msg_error("%s: cannot open guest: %s", esc(name, 0),
			  fd == -EXDEV ? "on another filesystem than the pool" : strerror(-fd));
		u->st.skipped[SK_ERROR]++;
		return 0;
	}
	r = hashdb_sc_load(u->pool->cachefd, name, &u->sc);
	if (r < 0) {
		msg_error("%s: cannot read stat cache: %s", esc(name, 0), strerror(-r));
		goto out;
	}
	if (u->sc.state == HASHDB_SC_CORRUPT)
		msg_error("%s: stat cache is damaged; ignored and rebuilt", esc(name, 0));
	if (u->ph)
		prehash_guest(u->ph, &u->sc, u->o->ignore_mtime);
	/* Without a stat cache every file will be read: read ahead. */
	u->pf = u->sc.nold == 0 ? prefetch_start(fd, &u->o->excludes) : NULL;
	r = walk_tree(fd, &ops);
	prefetch_stop(u->pf);
	u->pf = NULL;
	if (u->ph)
		prehash_guest_done(u->ph);
	if (r < 0)
		r = walk_failed(u, name, r);
	else if (!u->o->dry_run) {
		int s = hashdb_sc_save(&u->sc);
		if (s < 0)
			msg_error("%s: cannot write stat cache: %s", esc(name, 0), strerror(-s));
	}
out:
	hashdb_sc_free(&u->sc);
	exclude_scope_free(&u->mscope);
	close(fd);
	return r;
}

/* ---- output --------------------------------------------------------------- */

static void print_json(const struct unify *u, size_t nguests, uint64_t ms)
{
	const struct stats *s = &u->st;

	printf("{\"dry_run\":%s,\"guests\":%zu,\"scanned\":%" PRIu64 ",\"regular\":%" PRIu64
	       ",\"hashed_files\":%" PRIu64 ",\"hashed_bytes\":%" PRIu64 ",\"hashed_ahead\":%" PRIu64
	       ",\"cache_hits\":%" PRIu64
	       ",\"already\":%" PRIu64 ",\"linked\":%" PRIu64 ",\"new_objects\":%" PRIu64
	       ",\"freed_bytes\":%" PRIu64 ",\"mtime_changed\":%" PRIu64 ",\"repaired\":%" PRIu64
	       ",\"cleaned\":%" PRIu64 ",\"skipped\":{",
	       u->o->dry_run ? "true" : "false", nguests, s->scanned, s->regular, s->hashed_files,
	       s->hashed_bytes, s->hashed_ahead, s->cache_hits, s->already, s->linked, s->new_objects,
	       s->freed_bytes, s->mtime_changed, s->repaired, s->cleaned);
	for (int i = 0; i < NSKIP; i++)
		printf("%s\"%s\":%" PRIu64, i ? "," : "", skip_names[i], s->skipped[i]);
	printf("},\"elapsed_ms\":%" PRIu64 "}\n", ms);
}

static void print_summary(const struct unify *u, size_t nguests, uint64_t ms)
{
	const struct stats *s = &u->st;
	const char *would = u->o->dry_run ? " (dry run: nothing changed)" : "";

	fprintf(stderr,
		"vunify: %zu guest%s, %" PRIu64 " entries, %" PRIu64 " regular files, %" PRIu64
		" already unified%s\n",
		nguests, nguests == 1 ? "" : "s", s->scanned, s->regular, s->already, would);
	fprintf(stderr,
		"vunify: hashed %" PRIu64 " files (%.1f MiB), linked %" PRIu64 ", new objects %" PRIu64
		", freed %.1f MiB in %.2f s\n",
		s->hashed_files, s->hashed_bytes / 1048576.0, s->linked, s->new_objects,
		s->freed_bytes / 1048576.0, ms / 1000.0);
	if (s->mtime_changed)
		fprintf(stderr, "vunify: %" PRIu64 " linked file%s took %s object's mtime (mtime not"
			" part of %s identity; -v names them)\n", s->mtime_changed,
			s->mtime_changed == 1 ? "" : "s", s->mtime_changed == 1 ? "its" : "their",
			s->mtime_changed == 1 ? "its" : "their");
	if (s->repaired || s->cleaned)
		fprintf(stderr, "vunify: repaired %" PRIu64 " objects, removed %" PRIu64
			" leftovers of an interrupted run\n", s->repaired, s->cleaned);
	for (int i = 0; i < NSKIP; i++)
		if (s->skipped[i])
			fprintf(stderr, "vunify: skipped %" PRIu64 " %s (%s)\n", s->skipped[i],
				skip_names[i], skip_why[i]);
}

/* node_exporter textfile metrics (vunify/prometheus.h). */
static void write_metrics(const struct unify *u, const char *poolpath, size_t nguests, int rc,
			  uint64_t ms)
{
	const struct stats *s = &u->st;
	struct prom p;

	if (!prom_begin(&p, u->o, "unify", poolpath))
		return;
	prom_gauge(&p, "vunify_unify_guests", "guests walked", (double)nguests);
	prom_gauge(&p, "vunify_unify_scanned_entries", "entries walked", (double)s->scanned);
	prom_gauge(&p, "vunify_unify_regular_files", "regular files seen", (double)s->regular);
	prom_gauge(&p, "vunify_unify_hashed_files", "files hashed", (double)s->hashed_files);
	prom_gauge(&p, "vunify_unify_hashed_bytes", "bytes hashed", (double)s->hashed_bytes);
	prom_gauge(&p, "vunify_unify_cache_hits", "stat cache hits", (double)s->cache_hits);
	prom_gauge(&p, "vunify_unify_already_linked_files", "files that were CoW links already",
		   (double)s->already);
	prom_gauge(&p, "vunify_unify_linked_files", "files turned into CoW links", (double)s->linked);
	prom_gauge(&p, "vunify_unify_new_objects", "objects added to the pool",
		   (double)s->new_objects);
	prom_gauge(&p, "vunify_unify_freed_bytes", "bytes freed", (double)s->freed_bytes);
	prom_gauge(&p, "vunify_unify_mtime_changed_files",
		   "linked files that took their object's mtime (identified without mtime)",
		   (double)s->mtime_changed);
	prom_family(&p, "vunify_unify_skipped_files", "gauge", "files left alone, by reason");
	for (int i = 0; i < NSKIP; i++)
		prom_sample(&p, "vunify_unify_skipped_files", "reason", skip_names[i],
			    (double)s->skipped[i]);
	prom_finish(&p, "unify", rc, ms / 1000.0);
}

/* ---- command line --------------------------------------------------------- */

static const char help[] =
	"Usage: vunify unify [OPTIONS] POOL [GUEST...]\n"
	"Turn identical files of the guests under POOL into CoW links.\n\n"
	"  -n, --dry-run          show what would be done, change nothing\n"
	"      --json             print the run's figures as one JSON object on stdout\n"
	"      --ignore-mtime     unify files that differ only in mtime\n"
	"      --include-empty    unify empty files too\n"
	"      --hardlinks        unify files the guest hard-linked itself too (see vunify(8))\n"
	"      --exclude-from FILE  read exclude rules from FILE (see vunify(8))\n"
	"      --prometheus FILE  write the run's metrics for node_exporter to FILE\n"
	"  -c, --config FILE      system configuration (default " VUNIFY_SYSCONF ")\n"
	"  -v, --verbose          explain every skipped file and every mtime taken\n"
	"  -q, --quiet            no summary, no progress\n"
	"  -h, --help             show this help\n";

/* Every guest in turn; the summary and the exit code. */
static int unify_all(struct unify *u, struct cmd *c)
{
	int r = 0, rc = EXIT_OK;

	for (size_t i = 0; i < c->guests.n; i++) {
		r = unify_guest(u, c->guests.names[i]);
		if (r < 0)
			break;
	}
	progress_done(&u->prog);
	if (c->o.json)
		print_json(u, c->guests.n, now_ms() - c->t0);
	if (c->o.verbose >= 0)
		print_summary(u, c->guests.n, now_ms() - c->t0);
	if (r < 0)
		rc = EXIT_FATAL;
	else if (u->st.skipped[SK_ERROR] || u->st.skipped[SK_COLLISION])
		rc = EXIT_TROUBLE;
	write_metrics(u, c->poolpath, c->guests.n, rc, now_ms() - c->t0);
	return rc;
}

static int run(struct cmd *c)
{
	struct unify *u = c->self;
	int rc;

	u->o = &c->o;
	u->pool = &c->pool;
	u->prog.on = c->o.progress;
	/* A lease break is signalled with SIGIO, whose default action would
	 * kill us; the lease is held for microseconds, so ignore it. */
	signal(SIGIO, SIG_IGN);
	if (!c->o.dry_run) {
		/* A stat cache a killed run was writing. */
		int n = hashdb_pool_clean_tmp(&c->pool);
		if (n > 0)
			u->st.cleaned += (uint64_t)n;
	}
	if (u->prog.on)
		u->total = count_entries(&c->pool, &c->guests, &c->o.excludes);
	if (prehash_start(&u->ph) < 0)
		u->ph = NULL;	/* only slower */
	u->io[0] = malloc(HASHDB_IO_CHUNK > COWLINK_CMP_CHUNK ? HASHDB_IO_CHUNK : COWLINK_CMP_CHUNK);
	u->io[1] = malloc(COWLINK_CMP_CHUNK);
	if (u->io[0] && u->io[1]) {
		rc = unify_all(u, c);
	} else {
		msg_error("out of memory");
		rc = EXIT_FATAL;
	}
	prehash_stop(u->ph);
	free(u->io[0]);
	free(u->io[1]);
	free(u->dry.slots);
	return rc;
}

/* Its own options: what to unify, and where exclude rules come from (they
 * go into the shared options, where the configuration is merged). */
static int option(struct cmd *c, int opt, const char *arg)
{
	char err[512];

	switch (opt) {
	case 'M': c->o.ignore_mtime = true; break;
	case 'E': c->o.include_empty = true; break;
	case 'H': c->o.hardlinks = true; break;
	case 'X':
		if (exclude_load(&c->o.excludes, arg, err, sizeof(err)) < 0) {
			msg_error("%s", err);
			return EXIT_USAGE;
		}
		break;
	}
	return 0;
}

static const struct option longopts[] = {
	{ "ignore-mtime", no_argument, NULL, 'M' },
	{ "include-empty", no_argument, NULL, 'E' },
	{ "hardlinks", no_argument, NULL, 'H' },
	{ "exclude-from", required_argument, NULL, 'X' },
	{ 0 }
};

/* A dry run changes nothing, not even by creating the pool's state. */
const struct command unify_command = {
	.name = "unify",
	.what = "turn identical files of the guests into CoW links",
	.help = help,
	.common = CMD_DRY_RUN | CMD_JSON | CMD_PROMETHEUS | CMD_CONFIG | CMD_VERBOSE | CMD_QUIET,
	.shortopts = "",
	.longopts = longopts,
	.option = option,
	.min_args = 1, .max_args = -1,
	.pool = CMD_POOL_CREATE,
	.guests = CMD_GUESTS_ALL,
	.run = run,
	.self_size = sizeof(struct unify),
};
