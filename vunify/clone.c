/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vunify clone: a new guest made from a template guest as CoW links.
 *
 *   1. refuse a NEW that is no plain guest name, that exists, or that is
 *      the template; a leftover POOL/.cloning~NEW of a killed run is taken
 *      apart first (remove's code: CoW links unlinked under the flag dance);
 *   2. unify the template alone, exactly as `vunify unify POOL TEMPLATE`
 *      (same pool lock), so that its private files become CoW links where
 *      they qualify;
 *   3. build POOL/.cloning~NEW (no guest for any command, hidden by cowfs)
 *      from one walk of the template: every CoW link becomes one more link
 *      of its object (under the flag lock: an immutable inode cannot be
 *      linked), every other regular file a private copy with all its
 *      metadata, hard-linked groups of the template hard-linked groups of
 *      the clone, directories, symlinks, devices, fifos and sockets
 *      recreated with owner, mode, xattrs and times; per-guest secrets
 *      (configuration: secret, secret-empty) are left out or left empty,
 *      and listed;
 *   4. rename it to POOL/NEW with RENAME_NOREPLACE, write NEW's stat cache.
 *
 * A kill -9 at any instant leaves no guest NEW, or the complete one.  A run
 * that hit errors takes its unfinished tree apart and creates nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cowlink/cowlink.h"
#include "hashdb/hash.h"
#include "hashdb/pool.h"
#include "hashdb/statcache.h"
#include "vunify/command.h"
#include "vunify/config.h"
#include "vunify/vunify.h"
#include "vunify/walk.h"

/* New directories held open at once (deeper ones are reopened via ".."). */
#define CLONE_MAX_FDS 48

/* One level of the clone being built: the directory made for a template
 * directory, and the times to give it once its entries are in. */
struct level {
	int fd;			/* -1 while closed to save fds */
	struct timespec times[2];
	bool open_pending;	/* made, times not set yet */
};

/* A hard-linked group of the template: its inode, and a handle of the
 * clone's first copy, to link the other names to. */
struct group {
	uint64_t dev, ino;
	struct file_handle *fh;
};

struct clone {
	const struct options *o;
	struct hashdb_pool *pool;
	const char *poolpath, *tmpl, *newname;
	char *building;		/* .cloning~NEW */
	struct level *lv;
	size_t nlv, caplv, openfds;
	struct group *groups;
	size_t ngroups, capgroups;
	struct hashdb_statcache sc;
	bool have_sc;
	struct progress prog;
	uint64_t seen, total;
	uint64_t linked, copied, hardlinked, dirs, symlinks, specials, bytes_copied;
	uint64_t busy, full, errors;
	uint64_t nsecrets, nemptied;
	FILE *secrets, *emptied;	/* --json arrays being written */
	char *secrets_buf, *emptied_buf;
	size_t secrets_len, emptied_len;
};

static void fail(struct clone *c, const char *path, const char *what, int err)
{
	c->errors++;
	msg_error("%s%s: %s%s%s", esc(c->tmpl, 0), esc(path, 1), what, err ? ": " : "",
		  err ? strerror(err) : "");
}

/* ---- metadata ------------------------------------------------------------- */

/* Owner, mode, xattrs and times of the template's @name in @sdir onto the
 * clone's @name in @ddir, for entries that cannot be opened (symlinks,
 * devices, fifos, sockets).  @stx is what the walk saw. */
static int meta_by_name(int sdir, int ddir, const char *name, const struct statx *stx)
{
	struct timespec ts[2] = {
		{ stx->stx_atime.tv_sec, stx->stx_atime.tv_nsec },
		{ stx->stx_mtime.tv_sec, stx->stx_mtime.tv_nsec },
	};
	struct stat st;
	int sfd = -1, dfd = -1, r = 0;

	sfd = openat(sdir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	dfd = openat(ddir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0 || dfd < 0 || fstat(sfd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (st.st_ino != stx->stx_ino || (st.st_mode & S_IFMT) != (stx->stx_mode & S_IFMT)) {
		r = -ESTALE;
		goto out;
	}
	if (fchownat(ddir, name, stx->stx_uid, stx->stx_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (!S_ISLNK(stx->stx_mode) && fchmodat(ddir, name, stx->stx_mode & 07777, 0) < 0)) {
		r = -errno;
		goto out;
	}
	/* O_PATH fds: cowlink reaches them through /proc/self/fd. */
	r = cowlink_strip_xattrs(dfd);
	r = r ?: cowlink_copy_xattrs(sfd, dfd);
	if (r == 0 && utimensat(ddir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
out:
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0)
		close(dfd);
	return r;
}

/* Owner, mode, xattrs (no more, no fewer) and times of @src onto @dst. */
static int meta_by_fd(int src, int dst)
{
	int r = cowlink_strip_xattrs(dst);

	return r ?: cowlink_copy_meta(src, dst);
}

/* ---- the clone's directories ---------------------------------------------- */

/* The directory of the clone at @depth, reopened through ".." from the
 * deeper one if it was closed to save fds (the tree is ours: nothing else
 * renames in .cloning~NEW). */
static int level_fd(struct clone *c, size_t depth)
{
	for (size_t d = c->nlv; d-- > depth + 1;)
		if (c->lv[d].fd >= 0 && c->lv[d - 1].fd < 0) {
			c->lv[d - 1].fd = openat(c->lv[d].fd, "..",
						 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (c->lv[d - 1].fd < 0)
				return -errno;
			c->openfds++;
		}
	return c->lv[depth].fd >= 0 ? c->lv[depth].fd : -EBADF;
}

/* The directory at @depth is complete: its times, and its fd closed. */
static int level_done(struct clone *c, size_t depth)
{
	struct level *l = &c->lv[depth];
	int fd = level_fd(c, depth), r = 0;

	if (fd < 0)
		return fd;
	if (l->open_pending && futimens(fd, l->times) < 0)
		r = -errno;
	l->open_pending = false;
	if (depth > 0) {
		/* its parent is needed next: make sure it is open */
		int p = level_fd(c, depth - 1);
		if (p < 0 && r == 0)
			r = p;
		close(l->fd);
		l->fd = -1;
		c->openfds--;
		c->nlv = depth;
	}
	return r;
}

/* Close the directories deeper than @depth: they are complete (a
 * directory the walk could not enter gets no leave call). */
static int levels_above(struct clone *c, size_t depth)
{
	int r = 0;

	while (c->nlv > depth + 1) {
		int x = level_done(c, c->nlv - 1);
		r = r ?: x;
	}
	return r;
}

static int level_push(struct clone *c, int fd, const struct statx *stx)
{
	struct level *l;

	if (c->nlv == c->caplv) {
		size_t cap = c->caplv ? c->caplv * 2 : 64;
		struct level *n = realloc(c->lv, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		c->lv = n;
		c->caplv = cap;
	}
	l = &c->lv[c->nlv++];
	l->fd = fd;
	l->times[0] = (struct timespec){ stx->stx_atime.tv_sec, stx->stx_atime.tv_nsec };
	l->times[1] = (struct timespec){ stx->stx_mtime.tv_sec, stx->stx_mtime.tv_nsec };
	l->open_pending = true;
	c->openfds++;
	/* Shed the fds nearest the root (never the root's, never the top). */
	for (size_t d = 1; c->openfds > CLONE_MAX_FDS && d + 1 < c->nlv; d++)
		if (c->lv[d].fd >= 0) {
			close(c->lv[d].fd);
			c->lv[d].fd = -1;
			c->openfds--;
		}
	return 0;
}

/* A directory of the template: made in the clone with owner, mode and
 * xattrs now, its times once its entries are in (they move its mtime). */
static int clone_dir(struct clone *c, const struct walk_entry *e, int ddir)
{
	struct stat st;
	int sfd = -1, dfd = -1, r;

	sfd = openat(e->dirfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (sfd < 0)
		return -errno;
	if (fstat(sfd, &st) < 0 || st.st_ino != e->stx->stx_ino) {
		r = fstat(sfd, &st) < 0 ? -errno : -ESTALE;
		goto out;
	}
	if (c->o->dry_run) {
		c->dirs++;
		r = WALK_CONTINUE;
		goto out;
	}
	if (mkdirat(ddir, e->name, 0700) < 0) {
		r = -errno;
		goto out;
	}
	dfd = openat(ddir, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		goto out;
	}
	r = meta_by_fd(sfd, dfd);
	r = r ?: level_push(c, dfd, e->stx);
	if (r < 0)
		goto out;
	dfd = -1;
	c->dirs++;
out:
	if (dfd >= 0)
		close(dfd);
	close(sfd);
	return r;
}

/* ---- regular files -------------------------------------------------------- */

struct link_arg {
	int fd, dirfd;
	const char *name;
};

/* Give the inode @fd the name @name in @dirfd. */
static int do_link(void *p)
{
	struct link_arg *a = p;
	char proc[COWLINK_FD_PATH_LEN];

	if (linkat(a->fd, "", a->dirfd, a->name, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOENT && errno != EPERM)
		return -errno;
	cowlink_fd_path(proc, sizeof(proc), a->fd);
	return linkat(AT_FDCWD, proc, a->dirfd, a->name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
}

/* Is the open template file a CoW link of this pool?  Its marker to @hex. */
static bool is_cowlink(struct clone *c, int fd, const struct stat *st, char *hex)
{
	bool imm = false;

	return cowlink_marker_get(fd, hex) == 0 && cowlink_is_immutable(fd, &imm) == 0 && imm &&
	       hashdb_object_find_ino(c->pool, hex, st->st_dev, st->st_ino) >= 0;
}

/* The clone's name is one more link of the object (flag cleared and set
 * again around the link, under the flag lock). */
static int link_cowlink(struct clone *c, int fd, int ddir, const char *name, const char *hex)
{
	struct link_arg a = { fd, ddir, name };
	struct hashdb_sc_entry e = { 0 };
	struct hashdb_hash h;
	struct stat st;
	int r;

	if (c->o->dry_run)
		return 0;
	r = cowlink_with_mutable(c->pool->flagfd, fd, do_link, &a);
	if (r < 0)
		return r;
	/* The next unify of NEW recognises it without opening it. */
	if (c->have_sc && fstat(fd, &st) == 0 && hashdb_hash_from_hex(hex, &h) == 0) {
		e.dev = st.st_dev;
		e.ino = st.st_ino;
		e.size = (uint64_t)st.st_size;
		e.mtime_s = st.st_mtim.tv_sec;
		e.mtime_ns = (uint32_t)st.st_mtim.tv_nsec;
		e.ctime_s = st.st_ctim.tv_sec;
		e.ctime_ns = (uint32_t)st.st_ctim.tv_nsec;
		e.flags = HASHDB_SC_OBJECT;
		memcpy(e.id, h.b, sizeof(e.id));
		hashdb_sc_put(&c->sc, &e);
	}
	return 0;
}

/* A private copy with data, owner, mode, xattrs, times.  Under a read
 * lease when one can be had, so no writer changes it while it is read; a
 * file open for writing is copied as it is (busy).  @empty: no data (a
 * secret-empty file).  The new file's fd to *out. */
static int copy_file(struct clone *c, int fd, const struct stat *st, int ddir, const char *name,
		     bool empty, const char *path, int *out)
{
	bool leased = fcntl(fd, F_SETLEASE, F_RDLCK) == 0;
	int nfd, r;

	if (!leased && !empty) {
		c->busy++;
		msg_info(c->o, "%s%s: open for writing in the template; copied as it is now",
			 esc(c->tmpl, 0), esc(path, 1));
	}
	nfd = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (nfd < 0) {
		r = -errno;
		goto out;
	}
	r = empty ? 0 : cowlink_copy_data(fd, nfd, st->st_size);
	r = r ?: meta_by_fd(fd, nfd);
	if (r == 0 && !empty)
		c->bytes_copied += (uint64_t)st->st_size;
	if (r == 0 && out)
		*out = nfd;
	else
		close(nfd);
out:
	if (leased)
		fcntl(fd, F_SETLEASE, F_UNLCK);
	return r;
}

static struct group *group_find(struct clone *c, uint64_t dev, uint64_t ino)
{
	for (size_t i = c->ngroups; i-- > 0;)	/* a group's names are usually close */
		if (c->groups[i].ino == ino && c->groups[i].dev == dev)
			return &c->groups[i];
	return NULL;
}

/* Remember the clone's copy @nfd of the template's hard-linked inode. */
static int group_add(struct clone *c, const struct stat *st, int nfd)
{
	struct file_handle *fh = malloc(sizeof(*fh) + MAX_HANDLE_SZ);
	int mount_id;

	if (!fh)
		return -ENOMEM;
	fh->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(nfd, "", fh, &mount_id, AT_EMPTY_PATH) < 0) {
		int r = -errno;
		free(fh);
		return r;
	}
	if (c->ngroups == c->capgroups) {
		size_t cap = c->capgroups ? c->capgroups * 2 : 64;
		struct group *n = realloc(c->groups, cap * sizeof(*n));

		if (!n) {
			free(fh);
			return -ENOMEM;
		}
		c->groups = n;
		c->capgroups = cap;
	}
	c->groups[c->ngroups++] = (struct group){ st->st_dev, st->st_ino, fh };
	return 0;
}

/* One more name of a group the clone has a copy of already. */
static int group_link(struct clone *c, const struct group *g, int ddir, const char *name)
{
	struct link_arg a = { -1, ddir, name };
	int r;

	if (c->o->dry_run)
		return 0;
	a.fd = open_by_handle_at(c->pool->dirfd, g->fh, O_PATH | O_CLOEXEC);
	if (a.fd < 0)
		return -errno;
	r = do_link(&a);
	close(a.fd);
	return r;
}

static int clone_file(struct clone *c, const struct walk_entry *e, int ddir, bool empty)
{
	char hex[COWLINK_HEX_LEN + 1];
	struct stat st;
	struct group *g;
	int fd = walk_open_regular(e->dirfd, e->name, &st), nfd = -1, r = 0;

	if (fd < 0)
		return fd;
	if (st.st_ino != e->stx->stx_ino) {
		r = -ESTALE;
		goto out;
	}
	if (!empty && is_cowlink(c, fd, &st, hex)) {
		r = link_cowlink(c, fd, ddir, e->name, hex);
		if (r == 0) {
			c->linked++;
			goto out;
		}
		if (r != -EMLINK)
			goto out;
		c->full++;	/* the object has ext4's most links: a private copy */
		msg_info(c->o, "%s%s: its object has the most links the filesystem allows; copied",
			 esc(c->tmpl, 0), esc(e->path, 1));
	}
	g = !empty && st.st_nlink > 1 ? group_find(c, st.st_dev, st.st_ino) : NULL;
	if (g) {
		r = group_link(c, g, ddir, e->name);
		c->hardlinked += r == 0;
		goto out;
	}
	if (c->o->dry_run) {
		c->copied++;
		c->bytes_copied += empty ? 0 : (uint64_t)st.st_size;
		goto out;
	}
	r = copy_file(c, fd, &st, ddir, e->name, empty, e->path, &nfd);
	if (r == 0 && !empty && st.st_nlink > 1)
		r = group_add(c, &st, nfd);
	c->copied += r == 0;
out:
	if (nfd >= 0)
		close(nfd);
	close(fd);
	return r;
}

/* ---- other entries -------------------------------------------------------- */

static int clone_symlink(struct clone *c, const struct walk_entry *e, int ddir)
{
	size_t cap = (size_t)e->stx->stx_size + 2;
	char *target = malloc(cap);
	ssize_t n;
	int r = 0;

	if (!target)
		return -ENOMEM;
	n = readlinkat(e->dirfd, e->name, target, cap);
	if (n < 0 || (size_t)n >= cap) {
		r = n < 0 ? -errno : -ESTALE;	/* longer than stat said: changed */
		goto out;
	}
	target[n] = '\0';
	if (!c->o->dry_run) {
		if (symlinkat(target, ddir, e->name) < 0) {
			r = -errno;
			goto out;
		}
		r = meta_by_name(e->dirfd, ddir, e->name, e->stx);
	}
	c->symlinks += r == 0;
out:
	free(target);
	return r;
}

/* Devices, fifos, sockets: made with mknod, never opened. */
static int clone_special(struct clone *c, const struct walk_entry *e, int ddir)
{
	const struct statx *s = e->stx;
	int r = 0;

	if (!c->o->dry_run) {
		if (mknodat(ddir, e->name, (s->stx_mode & S_IFMT) | 0600,
			    makedev(s->stx_rdev_major, s->stx_rdev_minor)) < 0)
			return -errno;
		r = meta_by_name(e->dirfd, ddir, e->name, s);
	}
	c->specials += r == 0;
	return r;
}

/* ---- secrets -------------------------------------------------------------- */

static void note_secret(struct clone *c, const char *path, bool emptied)
{
	FILE *f = emptied ? c->emptied : c->secrets;
	uint64_t *n = emptied ? &c->nemptied : &c->nsecrets;

	if (f) {
		if (*n)
			fputc(',', f);
		json_string(f, path);
	}
	(*n)++;
	if (c->o->verbose >= 0)
		msg_error("%s%s: per-guest secret: %s; regenerate it in the clone", esc(c->newname, 0),
			  esc(path, 1), emptied ? "left empty" : "left out");
}

/* 1: a secret, left out; 2: a secret-empty regular file; 0: neither. */
static int secret_kind(struct clone *c, const struct walk_entry *e)
{
	bool dir = S_ISDIR(e->stx->stx_mode);

	if (S_ISREG(e->stx->stx_mode) && c->o->secrets_empty.n &&
	    exclude_match(&c->o->secrets_empty, e->path, false))
		return 2;
	if ((c->o->secrets.n && exclude_match(&c->o->secrets, e->path, dir)) ||
	    (c->o->secrets_empty.n && exclude_match(&c->o->secrets_empty, e->path, dir)))
		return 1;
	return 0;
}

/* ---- the walk ------------------------------------------------------------- */

static int on_entry(void *ctx, const struct walk_entry *e)
{
	struct clone *c = ctx;
	const struct statx *s = e->stx;
	int ddir = -1, kind, r;

	c->seen++;
	progress_bar(&c->prog, "clone", c->seen, c->total, c->bytes_copied, 0);
	/* cowfs hides these from the guest: not part of what it observes. */
	if (cowlink_is_tmp_name(e->name, NULL))
		return WALK_CONTINUE;
	if (s->stx_attributes & s->stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) {
		fail(c, e->path, "a mount point: stop the template (or unmount it) and clone again", 0);
		return WALK_SKIP_DIR;
	}
	kind = secret_kind(c, e);
	if (kind == 1) {
		note_secret(c, e->path, false);
		return WALK_SKIP_DIR;
	}
	if (!c->o->dry_run) {
		r = levels_above(c, e->depth);
		ddir = r ?: level_fd(c, e->depth);
		if (r < 0 || ddir < 0) {
			fail(c, e->path, "cannot reach its directory in the clone", -(r ?: ddir));
			return -EIO;	/* the rest would land in the wrong place */
		}
	}
	if (S_ISDIR(s->stx_mode))
		r = clone_dir(c, e, ddir);
	else if (S_ISREG(s->stx_mode))
		r = clone_file(c, e, ddir, kind == 2);
	else if (S_ISLNK(s->stx_mode))
		r = clone_symlink(c, e, ddir);
	else
		r = clone_special(c, e, ddir);
	if (r < 0) {
		fail(c, e->path, "cannot clone", -r);
		return S_ISDIR(s->stx_mode) ? WALK_SKIP_DIR : WALK_CONTINUE;
	}
	if (kind == 2)
		note_secret(c, e->path, true);
	return WALK_CONTINUE;
}

static int on_leave(void *ctx, const struct walk_entry *e)
{
	struct clone *c = ctx;
	int r;

	if (c->o->dry_run || c->nlv <= e->depth + 1)
		return WALK_CONTINUE;
	r = levels_above(c, e->depth);
	if (r < 0) {
		fail(c, e->path, "cannot set the times of its copy", -r);
		return -EIO;
	}
	return WALK_CONTINUE;
}

static void on_walk_error(void *ctx, const char *path, int err, const char *what)
{
	struct clone *c = ctx;

	if (err == EXDEV)
		fail(c, path, "a mount point (another filesystem): stop the template (or unmount "
			      "it) and clone again", 0);
	else
		fail(c, path, what, err);
}

/* ---- the run -------------------------------------------------------------- */

static const char help[] =
	"Usage: vunify clone [OPTIONS] POOL TEMPLATE NEW\n"
	"Make the guest NEW from the guest TEMPLATE as CoW links: the template is unified\n"
	"first (as vunify unify POOL TEMPLATE), then every CoW link of it becomes one more\n"
	"link of its object, every other file a private copy with all its metadata.\n"
	"Per-guest secrets (secret and secret-empty in vunify.conf(5)) are left out or\n"
	"left empty, and listed.  Built as POOL/.cloning~NEW and renamed into place when\n"
	"complete; a clone that was interrupted is started over by running it again.\n\n"
	"  -n, --dry-run          show what would be done, change nothing\n"
	"      --json             print the run's figures as one JSON object on stdout\n"
	"  -c, --config FILE      system configuration (default " VUNIFY_SYSCONF ")\n"
	"  -v, --verbose          say more (the template's unify summary, busy files)\n"
	"  -q, --quiet            no summary, no progress, no list of secrets\n"
	"  -h, --help             show this help\n";

static bool is_dir(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* NEW: a plain name that is not taken, not the template's.  0 or the exit
 * code (said). */
static int check_new(struct clone *c)
{
	const char *n = c->newname;
	struct stat st;

	if (!*n || strchr(n, '/') || n[0] == '.' || !strcmp(n, "lost+found") ||
	    strlen(HASHDB_CLONING_PREFIX) + strlen(n) > NAME_MAX) {
		msg_error("%s: not a name for a new guest (a plain name, not starting with '.', "
			  "at most %zu bytes)", esc(n, 0), NAME_MAX - strlen(HASHDB_CLONING_PREFIX));
		return EXIT_USAGE;
	}
	if (!strcmp(n, c->tmpl)) {
		msg_error("%s: the new guest cannot be its own template", esc(n, 0));
		return EXIT_USAGE;
	}
	if (!is_dir(c->pool->dirfd, c->tmpl)) {
		msg_error("%s: no such guest in %s", esc(c->tmpl, 0), esc(c->poolpath, 1));
		return EXIT_USAGE;
	}
	if (fstatat(c->pool->dirfd, n, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) {
		msg_error("%s: exists in %s already; nothing done", esc(n, 0), esc(c->poolpath, 1));
		return EXIT_USAGE;
	}
	return 0;
}

/* `vunify unify POOL TEMPLATE`, under the lock this run holds, without its
 * output (its summary with -v).  Its exit code. */
static int unify_template(struct cmd *parent, struct clone *c)
{
	char *names[] = { (char *)c->tmpl };
	struct cmd sub = *parent;
	int rc;

	sub.self = calloc(1, unify_command.self_size);
	if (!sub.self) {
		msg_error("out of memory");
		return EXIT_FATAL;
	}
	sub.o.json = false;
	sub.o.prometheus = NULL;
	sub.o.prometheus_dir = NULL;
	sub.o.verbose = parent->o.verbose >= 1 ? 0 : -1;
	sub.o.progress = parent->o.progress;
	sub.guests = (struct guests){ names, 1 };
	rc = unify_command.run(&sub);
	free(sub.self);
	return rc;
}

/* The root of the clone: made with the template root's owner, mode and
 * xattrs; its times when everything is in. */
static int make_root(struct clone *c, int troot)
{
	struct statx stx;
	int fd, r;

	if (statx(troot, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) < 0)
		return -errno;
	if (c->o->dry_run)
		return 0;
	if (mkdirat(c->pool->dirfd, c->building, 0700) < 0)
		return -errno;
	fd = openat(c->pool->dirfd, c->building, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = meta_by_fd(troot, fd);
	r = r ?: level_push(c, fd, &stx);
	if (r < 0)
		close(fd);
	return r;
}

/* A tree of .cloning~NEW: taken apart like a removed guest's. */
static int discard(struct clone *c, const char *why)
{
	if (!is_dir(c->pool->dirfd, c->building))
		return 0;
	msg_info(c->o, "%s: %s", esc(c->newname, 0), why);
	return remove_tree(c->pool, c->o, c->poolpath, c->building) < 0 ? -EIO : 0;
}

/* Walk the template into .cloning~NEW.  0 or a negative errno (said). */
static int build(struct clone *c)
{
	struct walk_ops ops = { .entry = on_entry, .leave = on_leave, .error = on_walk_error,
				.ctx = c, .sort_by_inode = true, .max_fds = 16 };
	int troot = guest_open(c->pool, c->tmpl), r;

	if (troot < 0) {
		fail(c, "", "cannot open the template", -troot);
		return troot;
	}
	r = make_root(c, troot);
	if (r < 0) {
		fail(c, "", "cannot make " HASHDB_CLONING_PREFIX "NEW", -r);
		goto out;
	}
	if (c->prog.on) {
		struct guests one = { (char **)&c->tmpl, 1 };
		c->total = count_entries(c->pool, &one, NULL);
	}
	r = walk_tree(troot, &ops);
	progress_done(&c->prog);
	if (r < 0 && c->errors == 0)
		fail(c, "", "walk stopped", -r);
	if (!c->o->dry_run && c->nlv > 0) {
		int x = levels_above(c, 0);
		x = x ?: level_done(c, 0);
		if (x < 0)
			fail(c, "", "cannot set the times of the clone's root", -x);
		close(c->lv[0].fd);
		c->nlv = 0;
	}
out:
	close(troot);
	return c->errors ? -EIO : r;
}

/* The clone is complete: give it its name, refusing a NEW that appeared
 * meanwhile. */
static int finish(struct clone *c)
{
	int r;

	if (renameat2(c->pool->dirfd, c->building, c->pool->dirfd, c->newname,
		      RENAME_NOREPLACE) < 0) {
		r = errno;
		msg_error("%s: cannot rename " HASHDB_CLONING_PREFIX "%s into place: %s",
			  esc(c->poolpath, 0), esc(c->newname, 1), strerror(r));
		return -r;
	}
	if (c->have_sc) {
		r = hashdb_sc_save(&c->sc);
		if (r < 0)
			msg_error("%s: cannot write stat cache: %s", esc(c->newname, 0), strerror(-r));
	}
	return 0;
}

static void print_json(struct clone *c, int unify_rc, bool done, uint64_t ms)
{
	printf("{\"dry_run\":%s,\"template\":", c->o->dry_run ? "true" : "false");
	json_string(stdout, c->tmpl);
	fputs(",\"new\":", stdout);
	json_string(stdout, c->newname);
	printf(",\"created\":%s,\"template_unify_exit\":%d,\"linked\":%" PRIu64
	       ",\"copied\":%" PRIu64 ",\"hardlinked\":%" PRIu64 ",\"dirs\":%" PRIu64
	       ",\"symlinks\":%" PRIu64 ",\"specials\":%" PRIu64 ",\"bytes_copied\":%" PRIu64
	       ",\"busy\":%" PRIu64 ",\"object_full\":%" PRIu64 ",\"errors\":%" PRIu64
	       ",\"secrets_left_out\":[%s],\"secrets_left_empty\":[%s],\"seconds\":%.3f"
	       ",\"elapsed_ms\":%" PRIu64 "}\n",
	       done ? "true" : "false", unify_rc, c->linked, c->copied, c->hardlinked, c->dirs,
	       c->symlinks, c->specials, c->bytes_copied, c->busy, c->full, c->errors,
	       c->secrets_buf ? c->secrets_buf : "", c->emptied_buf ? c->emptied_buf : "",
	       ms / 1000.0, ms);
}

static void print_summary(struct clone *c, bool done, uint64_t ms)
{
	const char *dry = c->o->dry_run ? " (dry run: nothing changed)" : "";

	fprintf(stderr, "vunify: clone: %s from %s: %s%s\n", esc(c->newname, 0), esc(c->tmpl, 1),
		done ? (c->o->dry_run ? "would be made" : "made")
		     : "not made (see above; the unfinished tree was removed)", dry);
	fprintf(stderr, "vunify: clone: %" PRIu64 " CoW links, %" PRIu64 " files copied (%.1f MiB), %"
		PRIu64 " hard links, %" PRIu64 " directories, %" PRIu64 " symlinks, %" PRIu64
		" special files; %" PRIu64 " secrets left out, %" PRIu64 " left empty; %.2f s\n",
		c->linked, c->copied, c->bytes_copied / 1048576.0, c->hardlinked, c->dirs,
		c->symlinks, c->specials, c->nsecrets, c->nemptied, ms / 1000.0);
}

static int run(struct cmd *cmd)
{
	struct clone *c = cmd->self;
	int rc, urc, r;
	bool done = false;

	c->o = &cmd->o;
	c->pool = &cmd->pool;
	c->poolpath = cmd->poolpath;
	c->tmpl = cmd->guests.names[0];
	c->newname = cmd->args[0];
	c->prog.on = cmd->o.progress;
	signal(SIGIO, SIG_IGN);	/* lease breaks: held for one file's copy */
	rc = check_new(c);
	if (rc)
		return rc;
	if (asprintf(&c->building, HASHDB_CLONING_PREFIX "%s", c->newname) < 0) {
		c->building = NULL;
		msg_error("out of memory");
		return EXIT_FATAL;
	}
	if (!c->o->dry_run && discard(c, "taking apart a clone that was interrupted") < 0) {
		rc = EXIT_TROUBLE;
		goto out;
	}
	urc = unify_template(cmd, c);
	if (urc != EXIT_OK && urc != EXIT_TROUBLE) {
		rc = urc;
		goto out;
	}
	if (cmd->o.json) {
		c->secrets = open_memstream(&c->secrets_buf, &c->secrets_len);
		c->emptied = open_memstream(&c->emptied_buf, &c->emptied_len);
	}
	if (!c->o->dry_run && c->pool->cachefd >= 0)
		c->have_sc = hashdb_sc_load(c->pool->cachefd, c->newname, &c->sc) == 0;
	r = build(c);
	if (r == 0 && !c->o->dry_run)
		r = finish(c);
	done = r == 0;
	if (!done && !c->o->dry_run)
		discard(c, "taking the unfinished clone apart");
	if (c->secrets)
		fclose(c->secrets);
	if (c->emptied)
		fclose(c->emptied);
	c->secrets = c->emptied = NULL;
	if (cmd->o.json)
		print_json(c, urc, done, now_ms() - cmd->t0);
	if (cmd->o.verbose >= 0)
		print_summary(c, done, now_ms() - cmd->t0);
	rc = done ? EXIT_OK : EXIT_TROUBLE;
out:
	if (c->have_sc)
		hashdb_sc_free(&c->sc);
	for (size_t i = 0; i < c->ngroups; i++)
		free(c->groups[i].fh);
	free(c->groups);
	free(c->lv);
	free(c->secrets_buf);
	free(c->emptied_buf);
	free(c->building);
	return rc;
}

/* Locked like unify (whose logic runs first on the template), the pool's
 * state created unless --dry-run. */
const struct command clone_command = {
	.name = "clone",
	.what = "make a new guest from a template guest as CoW links",
	.help = help,
	.common = CMD_DRY_RUN | CMD_JSON | CMD_CONFIG | CMD_VERBOSE | CMD_QUIET,
	.shortopts = "",
	.min_args = 3, .max_args = 3,
	.pool = CMD_POOL_CREATE,
	.guests = CMD_GUESTS_FIRST,
	.run = run,
	.self_size = sizeof(struct clone),
};
