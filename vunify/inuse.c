/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Is a guest in use (vunify/inuse.h)?  Mounts first, then processes. */
#include "vunify/inuse.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vunify/vunify.h"

/* Deeper than any sane tree; the walk up stops at the top anyway. */
#define MAX_UP 4096

/* The guest's path inside one filesystem it is on. */
struct view {
	dev_t dev;
	char *rel;
};

struct uses {
	struct hashdb_pool *p;
	char *poolpath;
	const char *names[2];	/* GUEST, .removing~GUEST */
	size_t nnames;
	struct stat dirs[2];	/* those that exist */
	size_t ndirs;
	struct cowlink_mounts ms;
	bool *reported;		/* a use already told, per mount */
	struct view *v;
	size_t nv;
	char **alias;		/* absolute paths of the guest here */
	size_t nalias;
	inuse_fn fn;
	void *ctx;
	int found;
};

static void report(struct uses *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(struct uses *u, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	u->found++;
	u->fn(u->ctx, buf);
}

/* @p is @dir or below it: what follows @dir ("" or "/..."), else NULL. */
static const char *below(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	if (!strcmp(dir, "/"))
		return p[0] != '/' ? NULL : strcmp(p, "/") ? p : "";
	if (strncmp(p, dir, n) || (p[n] != '\0' && p[n] != '/'))
		return NULL;
	return p + n;
}

/* @dir followed by @rest ("" or "/..."), malloc'd. */
static char *join(const char *dir, const char *rest)
{
	char *s;

	if (!strcmp(dir, "/") && *rest)
		dir = "";
	return asprintf(&s, "%s%s", dir, rest) < 0 ? NULL : s;
}

static int read_mounts(struct uses *u)
{
	int r = cowlink_mounts_read(&u->ms);

	if (r < 0)
		return r;
	u->reported = calloc(u->ms.n + 1, sizeof(*u->reported));
	return u->reported ? 0 : -ENOMEM;
}

static int add_view(struct uses *u, dev_t dev, char *rel)
{
	struct view *v;

	if (!rel)
		return -ENOMEM;
	v = realloc(u->v, (u->nv + 1) * sizeof(*v));
	if (!v) {
		free(rel);
		return -ENOMEM;
	}
	u->v = v;
	u->v[u->nv++] = (struct view){ dev, rel };
	return 0;
}

static int add_alias(struct uses *u, char *path)
{
	char **a;

	if (!path)
		return -ENOMEM;
	for (size_t i = 0; i < u->nalias; i++) {
		if (!strcmp(u->alias[i], path)) {
			free(path);
			return 0;
		}
	}
	a = realloc(u->alias, (u->nalias + 1) * sizeof(*a));
	if (!a) {
		free(path);
		return -ENOMEM;
	}
	u->alias = a;
	u->alias[u->nalias++] = path;
	return 0;
}

static char *child(const char *dir, const char *name)
{
	char *s;

	return asprintf(&s, "%s/%s", strcmp(dir, "/") ? dir : "", name) < 0 ? NULL : s;
}

/* The guest's names inside the pool's filesystem, from the mount the pool
 * directory is on (its root field + the pool's path below its mountpoint). */
static int pool_views(struct uses *u)
{
	struct statx stx;
	int r = 0;

	if (statx(u->p->dirfd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0)
		return -errno;
	for (size_t i = 0; i < u->ms.n && r == 0; i++) {
		const struct cowlink_mount *m = &u->ms.m[i];
		const char *rest;
		char *fsrel;

		if (!(stx.stx_mask & STATX_MNT_ID) || (uint64_t)m->id != stx.stx_mnt_id)
			continue;
		rest = below(u->poolpath, m->point);
		if (!rest)
			break;	/* not reachable by our paths: the aliases do without */
		fsrel = join(m->root, rest);
		if (!fsrel)
			return -ENOMEM;
		for (size_t n = 0; n < u->nnames && r == 0; n++)
			r = add_view(u, m->dev, child(fsrel, u->names[n]));
		free(fsrel);
	}
	return r;
}

/* cowfs serves the pool (source POOL: the guest is /GUEST there) or one
 * guest (source POOL/GUEST: in use, and the guest is its root). */
static int cowfs_views(struct uses *u)
{
	int r = 0;

	for (size_t i = 0; i < u->ms.n && r == 0; i++) {
		const struct cowlink_mount *m = &u->ms.m[i];

		if (strcmp(m->fstype, "fuse.cowfs"))
			continue;
		for (size_t n = 0; n < u->nnames && r == 0 && !u->reported[i]; n++) {
			char *g = child(u->poolpath, u->names[n]);

			if (!g)
				return -ENOMEM;
			if (!strcmp(m->source, u->poolpath)) {
				r = add_view(u, m->dev, child("/", u->names[n]));
			} else if (below(m->source, g)) {
				/* The guest (or a part of it) alone. */
				report(u, "cowfs serves it at %s", esc(m->point, 1));
				u->reported[i] = true;
				/* Its processes and binds are found through it. */
				r = add_alias(u, strdup(m->point));
				r = r ?: add_view(u, m->dev, strdup("/"));
			}
			free(g);
		}
	}
	return r;
}

/* Every mount on a filesystem the guest is on: a bind mount of the guest
 * (or of something in it) is a use; one of a directory above it is one
 * more path to it. */
static int bind_mounts(struct uses *u)
{
	int r = 0;

	for (size_t i = 0; i < u->ms.n && r == 0; i++) {
		const struct cowlink_mount *m = &u->ms.m[i];

		for (size_t k = 0; k < u->nv && !u->reported[i] && r == 0; k++) {
			const char *rest, *in;

			if (m->dev != u->v[k].dev)
				continue;
			if ((in = below(m->root, u->v[k].rel))) {
				report(u, "mounted at %s (%s, a bind mount of the guest's %s)",
				       esc(m->point, 1), esc(m->fstype, 2), esc(*in ? in : "/", 3));
				u->reported[i] = true;
			} else if ((rest = below(u->v[k].rel, m->root))) {
				r = add_alias(u, join(m->point, rest));
			}
		}
	}
	return r;
}

static void mounts_inside(struct uses *u)
{
	for (size_t i = 0; i < u->ms.n; i++) {
		const struct cowlink_mount *m = &u->ms.m[i];

		for (size_t k = 0; k < u->nalias && !u->reported[i]; k++) {
			if (below(m->point, u->alias[k])) {
				report(u, "a mount at %s (%s from %s)", esc(m->point, 1),
				       esc(m->fstype, 2), esc(m->source, 3));
				u->reported[i] = true;
			}
		}
	}
}

/* ---- processes ------------------------------------------------------------ */

static bool inside(const struct uses *u, const char *path)
{
	for (size_t k = 0; k < u->nalias; k++)
		if (below(path, u->alias[k]))
			return true;
	return false;
}

static bool is_guest_dir(const struct uses *u, const struct stat *st)
{
	for (size_t i = 0; i < u->ndirs; i++)
		if (st->st_dev == u->dirs[i].st_dev && st->st_ino == u->dirs[i].st_ino)
			return true;
	return false;
}

/* Is the guest directory @start itself or one of its ancestors?  By inode,
 * through "..", so it works whatever namespace @start's owner lives in. */
static bool under_guest(const struct uses *u, const char *start)
{
	struct stat st, prev = { 0 };
	int fd = open(start, O_PATH | O_DIRECTORY | O_CLOEXEC), up;
	bool hit = false;

	for (int i = 0; fd >= 0 && i < MAX_UP && !hit; i++) {
		if (fstat(fd, &st) < 0)
			break;
		hit = is_guest_dir(u, &st);
		if (i && st.st_dev == prev.st_dev && st.st_ino == prev.st_ino)
			break;	/* ".." of the top is itself */
		prev = st;
		up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		fd = up;
	}
	if (fd >= 0)
		close(fd);
	return hit;
}

static bool read_link(const char *path, char *buf, size_t len)
{
	ssize_t n = readlink(path, buf, len - 1);

	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* The root or working directory (@what) of process @pid. */
static bool dir_use(struct uses *u, int pid, const char *comm, const char *what)
{
	char proc[64], path[PATH_MAX];
	const char *how = !strcmp(what, "cwd") ? "working directory" : "root";
	struct stat st;

	snprintf(proc, sizeof(proc), "/proc/%d/%s", pid, what);
	if (!read_link(proc, path, sizeof(path)))
		return false;	/* gone, or a kernel thread */
	if (inside(u, path)) {
		report(u, "process %d (%s) has its %s at %s", pid, esc(comm, 1), how, esc(path, 2));
		return true;
	}
	if (stat(proc, &st) < 0 || st.st_dev != u->p->dev || !under_guest(u, proc))
		return false;
	report(u, "process %d (%s) has its %s in it (%s, as the process sees it)", pid,
	       esc(comm, 1), how, esc(path, 2));
	return true;
}

static bool fd_use(struct uses *u, int pid, const char *comm)
{
	char proc[64], path[PATH_MAX];
	struct dirent *de;
	bool hit = false;
	DIR *d;

	snprintf(proc, sizeof(proc), "/proc/%d/fd", pid);
	d = opendir(proc);
	while (d && !hit && (de = readdir(d))) {
		char link[96];

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(link, sizeof(link), "%s/%d", proc, atoi(de->d_name));
		if (read_link(link, path, sizeof(path)) && path[0] == '/' && inside(u, path)) {
			report(u, "process %d (%s) has %s open", pid, esc(comm, 1), esc(path, 2));
			hit = true;
		}
	}
	if (d)
		closedir(d);
	return hit;
}

static void read_comm(int pid, char *comm, size_t len)
{
	char proc[64];
	FILE *f;

	snprintf(proc, sizeof(proc), "/proc/%d/comm", pid);
	comm[0] = '\0';
	f = fopen(proc, "re");
	if (f) {
		if (fgets(comm, (int)len, f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
}

static int processes(struct uses *u)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int pid = atoi(de->d_name);
		char comm[64];

		if (!isdigit((unsigned char)de->d_name[0]) || pid == (int)getpid())
			continue;
		read_comm(pid, comm, sizeof(comm));
		/* One use per process is enough to name it. */
		if (dir_use(u, pid, comm, "root") || dir_use(u, pid, comm, "cwd"))
			continue;
		if (strcmp(comm, "cowfs"))
			fd_use(u, pid, comm);
	}
	closedir(d);
	return 0;
}

/* ---- the check -------------------------------------------------------------- */

static void uses_free(struct uses *u)
{
	for (size_t i = 0; i < u->nv; i++)
		free(u->v[i].rel);
	for (size_t i = 0; i < u->nalias; i++)
		free(u->alias[i]);
	cowlink_mounts_free(&u->ms);
	free(u->reported);
	free(u->v);
	free(u->alias);
	free(u->poolpath);
	free((char *)u->names[1]);
}

/* The pool's path as the kernel names it, and the guest's two names. */
static int uses_init(struct uses *u, const char *guest)
{
	char proc[64], path[PATH_MAX];
	int r = 0;

	cowlink_fd_path(proc, sizeof(proc), u->p->dirfd);
	if (!read_link(proc, path, sizeof(path)) || path[0] != '/')
		return -errno ?: -ENOENT;
	u->poolpath = strdup(path);
	u->names[0] = guest;
	if (asprintf((char **)&u->names[1], HASHDB_REMOVING_PREFIX "%s", guest) < 0)
		u->names[1] = NULL;
	if (!u->poolpath || !u->names[1])
		return -ENOMEM;
	u->nnames = 2;
	for (size_t n = 0; n < u->nnames && r == 0; n++) {
		struct stat st;

		if (fstatat(u->p->dirfd, u->names[n], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode))
			u->dirs[u->ndirs++] = st;
		r = add_alias(u, child(u->poolpath, u->names[n]));
	}
	return r;
}

int guest_in_use(struct hashdb_pool *p, const char *guest, inuse_fn fn, void *ctx)
{
	struct uses u = { .p = p, .fn = fn, .ctx = ctx };
	int r = uses_init(&u, guest);

	r = r ?: read_mounts(&u);
	r = r ?: pool_views(&u);
	r = r ?: cowfs_views(&u);
	r = r ?: bind_mounts(&u);
	if (r == 0)
		mounts_inside(&u);
	r = r ?: processes(&u);
	uses_free(&u);
	return r < 0 ? r : u.found;
}
