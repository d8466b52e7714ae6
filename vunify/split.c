/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vunify split: turn a guest's CoW links back into private files.
 *
 * Each CoW link (a marked path) is replaced by a private copy made with
 * cowlink_copy_up: data, owner, mode (setuid/setgid included), xattrs,
 * ACLs, file capabilities, atime and mtime; the copy is written beside the
 * path and renamed over it, so a crash leaves either the link or the whole
 * copy.  The copy is neither marked nor immutable.  Only ctime and the
 * inode number change.
 *
 * What to split is given as paths inside the guest, resolved without
 * following any symlink and without leaving the guest (openat2 with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS); a directory means everything
 * below it.  Holds the pool lock, so no unify links the guest again while
 * it runs (the next unify will, unless the guest leaves the pool).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cowlink/cowlink.h"
#include "vunify/command.h"
#include "vunify/config.h"
#include "vunify/vunify.h"
#include "vunify/walk.h"

struct split {
	const struct options *o;
	struct hashdb_pool *pool;
	const char *guest, *prefix;
	bool counting, stop;
	uint64_t total_files, total_bytes;	/* from the counting pass */
	uint64_t seen_files, seen_bytes;
	uint64_t split, bytes, notlinks, errors;
	struct progress prog;
};

static int open_beneath(int dirfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
			   RESOLVE_NO_XDEV,
	};
	long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

static bool stx_immutable(const struct statx *s)
{
	return (s->stx_attributes_mask & STATX_ATTR_IMMUTABLE) &&
	       (s->stx_attributes & STATX_ATTR_IMMUTABLE);
}

int split_link(struct hashdb_pool *p, int fd, int dirfd, const char *name)
{
	struct timespec mtime;
	int r = cowlink_dir_mtime(dirfd, &mtime);

	r = r ?: cowlink_copy_up(p->flagfd, -1, fd, dirfd, name, NULL);
	if (r < 0)
		return r;
	/* Guests observe the directory's mtime: as unify does, keep it. */
	cowlink_dir_mtime_restore(dirfd, &mtime);
	return 0;
}

/* Split one regular file @name of @dirfd (@path for messages). */
static void split_file(struct split *s, int dirfd, const char *name, const char *path,
		       const struct statx *stx)
{
	char hex[COWLINK_HEX_LEN + 1];
	struct stat st;
	int fd, r;

	if (s->counting) {
		/* A CoW link is immutable; the marker is checked in the real pass. */
		if (stx_immutable(stx)) {
			s->total_files++;
			s->total_bytes += stx->stx_size;
		}
		return;
	}
	if (stx_immutable(stx)) {
		s->seen_files++;
		s->seen_bytes += stx->stx_size;
	}
	progress_bar(&s->prog, "split", s->seen_files, s->total_files, s->seen_bytes,
		     s->total_bytes);
	/* Never opens anything but a regular file, whatever was swapped in. */
	fd = walk_open_regular(dirfd, name, &st);
	if (fd < 0) {
		s->errors++;
		msg_error("%s%s%s: cannot open: %s", esc(s->guest, 0), esc(s->prefix, 1),
			  esc(path, 2), strerror(-fd));
		return;
	}
	r = cowlink_marker_get(fd, hex);
	if (r == -ENODATA || r == -EINVAL || r == -ENOTSUP) {
		s->notlinks++;
		if (s->o->verbose >= 1 && (stx_immutable(stx) || r == -EINVAL))
			msg_info(s->o, "%s%s%s: skipped: %s", esc(s->guest, 0), esc(s->prefix, 1),
				 esc(path, 2), r == -EINVAL ? "malformed marker, not ours"
							    : "immutable, but not a CoW link");
		goto out;
	}
	if (r < 0)
		goto fail;
	if (!s->o->dry_run) {
		r = split_link(s->pool, fd, dirfd, name);
		if (r < 0)
			goto fail;
	}
	s->split++;
	s->bytes += stx->stx_size;
	msg_info(s->o, "%s%s%s: %s", esc(s->guest, 0), esc(s->prefix, 1), esc(path, 2),
		 s->o->dry_run ? "would be split" : "split into a private file");
	goto out;
fail:
	s->errors++;
	msg_error("%s%s%s: cannot split: %s", esc(s->guest, 0), esc(s->prefix, 1), esc(path, 2),
		  strerror(-r));
	/* Out of space stays out of space: stop instead of failing every file. */
	if (r == -ENOSPC || r == -EDQUOT)
		s->stop = true;
out:
	close(fd);
}

static int on_entry(void *ctx, const struct walk_entry *e)
{
	struct split *s = ctx;

	if (s->stop)
		return -ENOSPC;
	if (S_ISREG(e->stx->stx_mode))
		split_file(s, e->dirfd, e->name, e->path, e->stx);
	return WALK_CONTINUE;
}

static void on_walk_error(void *ctx, const char *path, int err, const char *what)
{
	struct split *s = ctx;

	if (s->counting || err == EXDEV)
		return;
	s->errors++;
	msg_error("%s%s%s: %s: %s", esc(s->guest, 0), esc(s->prefix, 1), esc(path, 2), what,
		  strerror(err));
}

/* Split what @path (inside the guest open as @gfd) names. */
static void split_path(struct split *s, int gfd, const char *path)
{
	struct walk_ops ops = { .entry = on_entry, .error = on_walk_error, .ctx = s, .sort_by_inode = true };
	char *dir = strdup(path), *base, *slash, *pfx = NULL;
	const char *rel;
	struct statx stx;
	int dfd = -1, fd;

	if (!dir) {
		s->errors++;
		return;
	}
	/* "/usr/bin/" -> dir "usr", base "bin"; "/" or "" -> the guest root. */
	rel = dir;
	while (*rel == '/')
		rel++;
	for (size_t n = strlen(rel); n && rel[n - 1] == '/'; n--)
		((char *)rel)[n - 1] = '\0';
	s->prefix = "";
	if (!*rel) {
		walk_tree(gfd, &ops);
		goto out;
	}
	if (asprintf(&pfx, "/%s", rel) < 0) {
		pfx = NULL;
		s->errors++;
		goto out;
	}
	path = pfx;
	slash = strrchr(rel, '/');
	base = slash ? slash + 1 : (char *)rel;
	if (slash)
		*slash = '\0';
	dfd = open_beneath(gfd, slash ? rel : ".", O_RDONLY | O_DIRECTORY);
	if (dfd < 0 || statx(dfd, base, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) < 0) {
		if (!s->counting) {
			s->errors++;
			msg_error("%s%s: %s", esc(s->guest, 0), esc(path, 1),
				  dfd == -ELOOP ? "a symlink on the way; not followed"
						: strerror(dfd < 0 ? -dfd : errno));
		}
		goto out;
	}
	if (S_ISDIR(stx.stx_mode)) {
		fd = open_beneath(dfd, base, O_RDONLY | O_DIRECTORY);
		if (fd < 0) {
			if (!s->counting) {
				s->errors++;
				msg_error("%s%s: %s", esc(s->guest, 0), esc(path, 1),
					  strerror(-fd));
			}
			goto out;
		}
		/* The walk's paths start with "/" below the directory. */
		s->prefix = pfx;
		walk_tree(fd, &ops);
		s->prefix = "";
		close(fd);
	} else if (S_ISREG(stx.stx_mode)) {
		s->prefix = "";
		split_file(s, dfd, base, path, &stx);
	} else if (!s->counting) {
		s->errors++;
		msg_error("%s%s: %s; not followed", esc(s->guest, 0), esc(path, 1),
			  S_ISLNK(stx.stx_mode) ? "a symlink" : "not a regular file or directory");
	}
out:
	if (dfd >= 0)
		close(dfd);
	free(dir);
	free(pfx);
}

static const char help[] =
	"Usage: vunify split [OPTIONS] POOL GUEST [PATH...]\n"
	"Turn the guest's CoW links (all of them, or those at or below each PATH) back\n"
	"into private files with all their metadata; run it before moving a guest to\n"
	"another host or out of the pool.\n\n"
	"  -n, --dry-run          show what would be split, change nothing\n"
	"      --json             print the run's figures as one JSON object on stdout\n"
	"  -c, --config FILE      system configuration (default " VUNIFY_SYSCONF ")\n"
	"  -v, --verbose          name every file split or skipped\n"
	"  -q, --quiet            no summary, no progress\n"
	"  -h, --help             show this help\n";

static void print_json(const struct split *s, uint64_t ms)
{
	printf("{\"dry_run\":%s,\"guest\":", s->o->dry_run ? "true" : "false");
	json_string(stdout, s->guest);
	printf(",\"split\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"errors\":%" PRIu64
	       ",\"elapsed_ms\":%" PRIu64 "}\n", s->split, s->bytes, s->errors, ms);
}

static void print_summary(const struct split *s)
{
	bool dry = s->o->dry_run;

	fprintf(stderr, "vunify: split: %s: %s %" PRIu64 " CoW links (%.1f MiB)%s\n",
		esc(s->guest, 0), dry ? "would split" : "split", s->split, s->bytes / 1048576.0,
		dry ? " (dry run: nothing changed)"
		    : "; the next unify links them again unless the guest leaves the pool");
}

/* The guest's PATHs (c->args), or the whole guest. */
static int run(struct cmd *c)
{
	static char *const whole[] = { "/" };
	struct split *s = c->self;
	char *const *paths = c->nargs ? c->args : whole;
	int npaths = c->nargs ? c->nargs : 1, gfd;

	s->o = &c->o;
	s->pool = &c->pool;
	s->prog.on = c->o.progress;
	s->guest = c->guests.names[0];
	gfd = guest_open(&c->pool, s->guest);
	if (gfd < 0) {
		msg_error("%s: cannot open guest: %s", esc(s->guest, 0), strerror(-gfd));
		return EXIT_FATAL;
	}
	/* A first, stat-only pass gives the progress bar its totals. */
	if (s->prog.on) {
		s->counting = true;
		for (int i = 0; i < npaths; i++)
			split_path(s, gfd, paths[i]);
		s->counting = false;
	}
	for (int i = 0; i < npaths && !s->stop; i++)
		split_path(s, gfd, paths[i]);
	progress_done(&s->prog);
	close(gfd);
	if (c->o.json)
		print_json(s, now_ms() - c->t0);
	if (c->o.verbose >= 0)
		print_summary(s);
	return s->errors ? EXIT_TROUBLE : EXIT_OK;
}

const struct command split_command = {
	.name = "split",
	.what = "turn a guest's CoW links back into private files",
	.help = help,
	.common = CMD_DRY_RUN | CMD_JSON | CMD_CONFIG | CMD_VERBOSE | CMD_QUIET,
	.shortopts = "",
	.min_args = 2, .max_args = -1,
	.pool = CMD_POOL_LOCKED,
	.guests = CMD_GUESTS_FIRST,
	.run = run,
	.self_size = sizeof(struct split),
};
