/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cowfs [-f] [-d] [-s] [-o OPTIONS] POOL|POOL/GUEST MOUNTPOINT */
#include "cowfs/cowfs.h"
#include "cowfs/ops.h"

#include "hashdb/pool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <signal.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT 10.0
#define DEFAULT_FD_CACHE 4096
#define DEFAULT_METRICS_INTERVAL 15
/* Mount options cowfs always starts from; later -o options override. */
#define DEFAULT_MOUNT_OPTS "allow_other,default_permissions,suid,dev,subtype=cowfs"

struct conf {
	char *pool;
	double timeout, entry_timeout, attr_timeout;
	unsigned fd_cache;
	char *drop_cache;
	char *passthrough;
	char *metrics;
	unsigned metrics_interval;
	int help, version;
	bool io_uring;		/* -o io_uring (libfuse's): also passed on */
};

enum { KEY_HELP, KEY_VERSION, KEY_URING };

#define CONF_OPT(t, p) { t, offsetof(struct conf, p), 1 }
static const struct fuse_opt conf_opts[] = {
	CONF_OPT("timeout=%lf", timeout),
	CONF_OPT("entry_timeout=%lf", entry_timeout),
	CONF_OPT("attr_timeout=%lf", attr_timeout),
	CONF_OPT("fd_cache=%u", fd_cache),
	CONF_OPT("drop_cache=%s", drop_cache),
	CONF_OPT("passthrough=%s", passthrough),
	CONF_OPT("metrics=%s", metrics),
	CONF_OPT("metrics_interval=%u", metrics_interval),
	FUSE_OPT_KEY("io_uring", KEY_URING),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END
};

static int conf_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct conf *c = data;

	(void)outargs;
	switch (key) {
	case KEY_HELP:
		c->help = 1;
		return 0;
	case KEY_VERSION:
		c->version = 1;
		return 0;
	case KEY_URING:
		c->io_uring = true;
		return 1;	/* libfuse's option: it starts the rings */
	case FUSE_OPT_KEY_NONOPT:
		if (!c->pool) {
			c->pool = strdup(arg);
			return 0;
		}
		return 1;	/* the mountpoint, for fuse_parse_cmdline */
	default:
		return 1;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " COWFS_PROG " [-f] [-d] [-s] [-o OPTIONS] POOL|POOL/GUEST MOUNTPOINT\n"
		"Serve the guest roots in POOL at MOUNTPOINT (or one guest of POOL as\n"
		"the mount's root), sharing CoW links and copying them up on write.\n\n"
		"cowfs options:\n"
		"    -o timeout=SECS        entry and attribute timeout (default %g)\n"
		"    -o entry_timeout=SECS  entry timeout only\n"
		"    -o attr_timeout=SECS   attribute timeout only\n"
		"    -o fd_cache=N          backing fds kept open (default %d)\n"
		"    -o passthrough=on|off  FUSE passthrough of file data where the kernel\n"
		"                           offers it (default on)\n"
		"    -o io_uring            FUSE over io_uring (libfuse's option); cowfs turns\n"
		"                           the kernel's fuse.enable_uring on for it\n"
		"    -o drop_cache=cow|all|none  without passthrough: drop backing pages\n"
		"                           after reads of CoW links (default), of all\n"
		"                           files, or never\n"
		"    -o metrics=FILE        write metrics for node_exporter's textfile\n"
		"                           collector to FILE (an absolute path)\n"
		"    -o metrics_interval=SECS  every SECS seconds (default %d) and at exit\n"
		"    default mount options: " DEFAULT_MOUNT_OPTS "\n"
		"                           (nosuid, nodev, ... override them)\n\n",
		DEFAULT_TIMEOUT, DEFAULT_FD_CACHE, DEFAULT_METRICS_INTERVAL);
}

/* Refuse a second cowfs on the same mountpoint or of the same source (pool
 * or guest): two mounts of one tree would not share page cache.  A guest
 * may be served alone beside its pool's mount (docs/cowfs.md). */
static int check_mounted(const char *src, const char *mnt)
{
	struct cowlink_mounts ms;
	int r = 0;

	if (cowlink_mounts_read(&ms) < 0)
		return 0;
	for (size_t i = 0; i < ms.n && r == 0; i++) {
		const struct cowlink_mount *m = &ms.m[i];

		if (strcmp(m->fstype, "fuse.cowfs") != 0)
			continue;
		if (strcmp(m->point, mnt) == 0) {
			fprintf(stderr, COWFS_PROG ": %s is already a cowfs mount (of %s)\n", mnt,
				m->source);
			r = -EBUSY;
		} else if (strcmp(src, m->source) == 0) {
			fprintf(stderr, COWFS_PROG ": %s is already mounted by cowfs at %s\n",
				src, m->point);
			r = -EBUSY;
		}
	}
	cowlink_mounts_free(&ms);
	return r;
}

/* Warn about guests that sit on another filesystem than the pool: their
 * files can never be CoW links (hard links do not cross filesystems). */
static void check_guests(int poolfd, dev_t dev, const char *pool)
{
	int fd = openat(poolfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	struct stat st;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' && (!e->d_name[1] || !strcmp(e->d_name, "..")))
			continue;
		if (fstatat(poolfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
		    st.st_dev != dev)
			fprintf(stderr, COWFS_PROG ": warning: %s/%s is on another filesystem than "
				"the pool; its files cannot be CoW links\n", pool, e->d_name);
	}
	closedir(d);
}

/* Guest mode: the same warning for the one guest served. */
static void check_guest(int fd, dev_t dev, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && st.st_dev != dev)
		fprintf(stderr, COWFS_PROG ": warning: %s is on another filesystem than the "
			"pool; its files cannot be CoW links\n", path);
}

/* Checks of the directory to serve (@fd, @path) and of the pool's state
 * (@poolfd, @pool), which is on the pool's filesystem.  0, or -1 said on
 * stderr. */
static int check_source(struct cf_fs *fs, int fd, const char *path, int poolfd, const char *pool)
{
	struct stat st, hst;
	struct statfs sfs;
	int flags = 0;

	if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0 || fstat(poolfd, &hst) < 0) {
		fprintf(stderr, COWFS_PROG ": %s: %s\n", path, strerror(errno));
		return -1;
	}
	fs->pool_dev = hst.st_dev;
	if (sfs.f_type == FUSE_SUPER_MAGIC) {
		fprintf(stderr, COWFS_PROG ": %s is on a FUSE filesystem (another cowfs "
			"mount?); serve the backing directory instead\n", path);
		return -1;
	}
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
		fprintf(stderr, COWFS_PROG ": %s is on a filesystem without inode flags "
			"(type %#lx): CoW links need the immutable flag (ext4, xfs, btrfs)\n",
			path, (unsigned long)sfs.f_type);
		return -1;
	}
	if (fstatat(poolfd, HASHDB_DIR, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (!S_ISDIR(st.st_mode) || st.st_dev != hst.st_dev)) {
		fprintf(stderr, COWFS_PROG ": %s/" HASHDB_DIR " is %s; it must be a directory on "
			"the pool's own filesystem\n", pool,
			S_ISDIR(st.st_mode) ? "on another filesystem than the pool" :
					      "not a directory");
		return -1;
	}
	if (fs->guest_mode)
		check_guest(fd, hst.st_dev, path);
	else
		check_guests(fd, hst.st_dev, path);
	return 0;
}

/* Open the directory to serve, @path (real, from realpath), never through
 * a symlink.  -1 said on stderr. */
static int open_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOTDIR)
		fprintf(stderr, COWFS_PROG ": %s is not a directory\n", path);
	else if (fd < 0)
		fprintf(stderr, COWFS_PROG ": cannot open %s: %s\n", path, strerror(errno));
	return fd;
}

/*
 * The outermost of @path (real) and its ancestors that holds a pool's state
 * (.hashdb), copied to @pool; false when none does.  Pools do not nest: a
 * .hashdb further down (say a guest's own) is guest content.
 */
static bool outermost_pool(const char *path, char *pool)
{
	size_t n = strlen(path);

	for (size_t i = 1; i <= n; i++) {
		char probe[PATH_MAX + sizeof(HASHDB_DIR) + 1];
		struct stat st;

		if (path[i] != '/' && path[i] != '\0')
			continue;
		/* the prefix [0, i), or "/" for i == 1 */
		snprintf(probe, sizeof(probe), "%.*s/" HASHDB_DIR, i == 1 ? 0 : (int)i, path);
		if (lstat(probe, &st) == 0) {
			snprintf(pool, PATH_MAX, "%.*s", (int)i, path);
			return true;
		}
	}
	return false;
}

/*
 * Pool mode or guest mode (docs/cowfs.md, "Pool or guest").  @src is real.
 * With P the outermost of @src and its ancestors that holds a pool's state
 * (.hashdb): @src is P, or no P exists (a pool vunify has not run on yet):
 * pool mode; @src is a directory of P with a guest's name: guest mode;
 * anything else (inside a guest, in the state): refused.  Sets fs->pool_fd,
 * fs->root_fd, fs->guest_mode and @pool (the pool's real path).  0, or -1
 * said on stderr.
 */
static int open_source(struct cf_fs *fs, const char *src, char *pool)
{
	const char *name = strrchr(src, '/') + 1;
	struct stat st, gst;
	int fd = open_dir(src), pfd = -1;
	size_t n;

	if (fd < 0)
		return -1;
	fs->root_fd = fs->pool_fd = fd;
	if (!outermost_pool(src, pool) || strcmp(pool, src) == 0) {
		snprintf(pool, PATH_MAX, "%s", src);
		return 0;
	}
	n = strlen(pool);
	if (strchr(src + n + 1, '/')) {
		fprintf(stderr, COWFS_PROG ": %s is neither a pool nor a guest: it is inside %s/%.*s "
			"of the pool %s; serve the pool or one guest (POOL/GUEST)\n", src, pool,
			(int)strcspn(src + n + 1, "/"), src + n + 1, pool);
		return -1;
	}
	if (!hashdb_is_guest_name(name)) {
		fprintf(stderr, COWFS_PROG ": %s is neither a pool nor a guest: %s is the pool's "
			"own (its state, lost+found or a guest being removed)\n", src, name);
		return -1;
	}
	/* The name still is the directory opened (not renamed meanwhile). */
	pfd = open(pool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0 || fstat(fd, &st) < 0 || fstatat(pfd, name, &gst, AT_SYMLINK_NOFOLLOW) < 0 ||
	    st.st_dev != gst.st_dev || st.st_ino != gst.st_ino) {
		fprintf(stderr, COWFS_PROG ": %s: cannot open its pool %s: %s\n", src, pool,
			pfd < 0 ? strerror(errno) : "the guest changed while being opened");
		if (pfd >= 0)
			close(pfd);
		return -1;
	}
	fs->pool_fd = pfd;
	fs->guest_mode = true;
	return 0;
}

/* fsname=SOURCE, with fuse_opt's escapes for ',' and '\'. */
static char *fsname_opt(const char *src)
{
	size_t n = strlen(src);
	char *o = malloc(2 * n + 16), *p;

	if (!o)
		return NULL;
	p = o + sprintf(o, "fsname=");
	for (; *src; src++) {
		if (*src == ',' || *src == '\\')
			*p++ = '\\';
		*p++ = *src;
	}
	*p = '\0';
	return o;
}

/* The real path of MOUNTPOINT (a PATH_MAX buffer), refusing one inside the
 * pool (@pool, real) and a second cowfs mount of @src (real).  0, or -1
 * said on stderr. */
static int resolve_mountpoint(const char *pool, const char *src, const char *mnt,
			      char *mnt_real)
{
	size_t n = strlen(pool);

	if (!realpath(mnt, mnt_real)) {
		fprintf(stderr, COWFS_PROG ": %s: %s\n", mnt, strerror(errno));
		return -1;
	}
	if (strcmp(pool, mnt_real) == 0 ||
	    (strncmp(mnt_real, pool, n) == 0 && (mnt_real[n] == '/' || !strcmp(pool, "/")))) {
		fprintf(stderr, COWFS_PROG ": mountpoint %s is inside the pool %s\n", mnt_real,
			pool);
		return -1;
	}
	return check_mounted(src, mnt_real) < 0 ? -1 : 0;
}

/* cowfs's default mount options and fsname=, before the user's -o (which
 * come later and so override them). */
static int add_mount_opts(struct fuse_args *args, const char *fsname)
{
	if (fuse_opt_insert_arg(args, 1, "-o") || fuse_opt_insert_arg(args, 2, DEFAULT_MOUNT_OPTS) ||
	    fuse_opt_insert_arg(args, 3, "-o") || fuse_opt_insert_arg(args, 4, fsname))
		return -1;
	return 0;
}

/* -o drop_cache=cow|all|none (cow when unset).  0 or -EINVAL. */
static int parse_drop_cache(const char *s, enum cf_drop_cache *out)
{
	if (!s || !strcmp(s, "cow"))
		*out = CF_DROP_COW;
	else if (!strcmp(s, "all"))
		*out = CF_DROP_ALL;
	else if (!strcmp(s, "none"))
		*out = CF_DROP_NONE;
	else
		return -EINVAL;
	return 0;
}

/* The daemon's own groups, restored after acting as a caller. */
static int save_root_groups(struct cf_fs *fs)
{
	int n = getgroups(0, NULL);

	fs->root_groups = calloc((size_t)(n > 0 ? n : 1), sizeof(gid_t));
	if (!fs->root_groups)
		return -ENOMEM;
	fs->nroot_groups = n > 0 ? getgroups(n, fs->root_groups) : 0;
	if (fs->nroot_groups < 0)
		fs->nroot_groups = 0;
	return 0;
}

/* -o metrics=FILE, metrics_interval=SECS; the counters exist either way. */
static int metrics_init(struct cf_fs *fs, const struct conf *c, const char *mnt)
{
	char *path = NULL;
	int r;

	if (c->metrics && c->metrics[0] != '/') {
		/* the daemon runs in / once it has detached */
		fprintf(stderr, COWFS_PROG ": metrics=%s: an absolute path is needed\n",
			c->metrics);
		return -1;
	}
	if (c->metrics && !(path = strdup(c->metrics))) {
		fprintf(stderr, COWFS_PROG ": %s\n", strerror(ENOMEM));
		return -1;
	}
	r = cf_metrics_init(&fs->metrics, path, c->metrics_interval ? c->metrics_interval :
			    DEFAULT_METRICS_INTERVAL, mnt);
	if (r < 0) {
		fprintf(stderr, COWFS_PROG ": metrics: %s\n", strerror(-r));
		return -1;
	}
	return 0;
}

static int fs_init(struct cf_fs *fs, const struct conf *c, const char *mnt)
{
	int r;

	fs->entry_timeout = c->entry_timeout >= 0 ? c->entry_timeout : c->timeout;
	fs->attr_timeout = c->attr_timeout >= 0 ? c->attr_timeout : c->timeout;
	if (parse_drop_cache(c->drop_cache, &fs->drop_cache) < 0) {
		fprintf(stderr, COWFS_PROG ": drop_cache must be cow, all or none\n");
		return -1;
	}
	if (!c->passthrough || !strcmp(c->passthrough, "on")) {
		fs->want_passthrough = true;
	} else if (strcmp(c->passthrough, "off") != 0) {
		fprintf(stderr, COWFS_PROG ": passthrough must be on or off\n");
		return -1;
	}
	if (metrics_init(fs, c, mnt) < 0)
		return -1;
	pthread_mutex_init(&fs->state_lock, NULL);
	atomic_init(&fs->stage_fd, -1);
	r = cf_flag_key_init(fs);
	if (r < 0) {
		fprintf(stderr, COWFS_PROG ": cannot create a thread key: %s\n", strerror(-r));
		return -1;
	}
	cf_pending_init(&fs->pending);
	for (int i = 0; i < CF_COPY_LOCKS; i++) {
		pthread_mutex_init(&fs->copy_locks[i], NULL);
		pthread_mutex_init(&fs->backing_locks[i], NULL);
	}
	r = save_root_groups(fs);
	if (r == 0)
		r = cf_table_init(fs, c->fd_cache ? c->fd_cache : DEFAULT_FD_CACHE);
	if (r < 0) {
		fprintf(stderr, COWFS_PROG ": %s: %s\n", fs->pool_path, strerror(-r));
		return -1;
	}
	return 0;
}

/*
 * SIGUSR1 logs one stats line (cf_log_stats).  The signal is blocked in
 * every thread (the mask is set before libfuse starts its workers) and taken
 * here with sigwait, so the line is written outside signal context.
 */
static void *stats_main(void *arg)
{
	struct cf_fs *fs = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	while (!atomic_load(&fs->stats_stop)) {
		if (sigwait(&set, &sig) == 0 && !atomic_load(&fs->stats_stop))
			cf_log_stats(fs);
	}
	return NULL;
}

static void stats_start(struct cf_fs *fs)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return;
	fs->stats_running = pthread_create(&fs->stats_thread, NULL, stats_main, fs) == 0;
}

static void stats_stop(struct cf_fs *fs)
{
	if (!fs->stats_running)
		return;
	atomic_store(&fs->stats_stop, true);
	pthread_kill(fs->stats_thread, SIGUSR1);
	pthread_join(fs->stats_thread, NULL);
	fs->stats_running = false;
}

/*
 * -o io_uring: the kernel offers FUSE over io_uring only while the fuse
 * module's enable_uring parameter is on, and it is off by default.  Turn it
 * on (root may) and say so: it is machine-wide, but it changes nothing for
 * a FUSE server that does not ask for io_uring.  Failing that, libfuse
 * serves /dev/fuse as usual.
 */
#define URING_PARAM "/sys/module/fuse/parameters/enable_uring"
static void enable_uring_param(void)
{
	char v = 0;
	int fd = open(URING_PARAM, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, COWFS_PROG ": -o io_uring: %s: %s; requests go through "
			"/dev/fuse\n", URING_PARAM, strerror(errno));
		return;
	}
	if (read(fd, &v, 1) == 1 && v != 'Y') {
		if (pwrite(fd, "Y", 1, 0) == 1)
			fprintf(stderr, COWFS_PROG ": turned the kernel's fuse.enable_uring on "
				"(for -o io_uring)\n");
		else
			fprintf(stderr, COWFS_PROG ": -o io_uring: cannot turn %s on: %s; requests "
				"go through /dev/fuse\n", URING_PARAM, strerror(errno));
	}
	close(fd);
}

static int serve(struct cf_fs *fs, struct fuse_args *args, struct fuse_cmdline_opts *o)
{
	struct fuse_session *se;
	struct fuse_loop_config *cfg;
	int r = 1;

	fs->conn_opts = fuse_parse_conn_info_opts(args);
	if (!fs->conn_opts)
		return 1;
	/* every request counted (metrics.c) */
	se = fuse_session_new(args, cf_metrics_ops(&fs->metrics, &cf_ops), sizeof(cf_ops), fs);
	if (!se) {
		free(fs->conn_opts);
		return 1;
	}
	fs->se = se;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, o->mountpoint) != 0)
		goto out_signals;
	fuse_daemonize(o->foreground);
	stats_start(fs);	/* after fuse_daemonize: threads do not survive its fork */
	cf_metrics_start(fs);
	if (o->singlethread) {
		r = fuse_session_loop(se);
	} else {
		cfg = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(cfg, (unsigned)o->clone_fd);
		/* unset is UINT_MAX, which libfuse 3.14 would log as invalid */
		if (o->max_idle_threads <= 100000)
			fuse_loop_cfg_set_idle_threads(cfg, o->max_idle_threads);
		if (o->max_threads > 0 && o->max_threads <= 100000)
			fuse_loop_cfg_set_max_threads(cfg, o->max_threads);
		r = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	cf_metrics_stop(fs);	/* the final figures, whatever ended the loop */
	stats_stop(fs);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	free(fs->conn_opts);
	/* libfuse reports the signal that ended the loop: a clean stop. */
	return (r == 0 || r == SIGTERM || r == SIGINT || r == SIGHUP) ? 0 : 1;
}

/* --version: the libfuse this process runs on and what it can do, as far as
 * that is known without mounting (the kernel's answer comes with INIT).
 * libfuse >= 3.18 links liburing exactly when it was built with FUSE over
 * io_uring (HAVE_URING); cowfs itself does not use liburing. */
static int liburing_loaded(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	return info->dlpi_name && strstr(info->dlpi_name, "/liburing.so") != NULL;
}

static void print_version(void)
{
	char v[8] = "";
	FILE *f;

	printf(COWFS_PROG " " COWFS_VERSION " (libfuse %s)\n", fuse_pkgversion());
	printf("FUSE passthrough: %s\n", fuse_version() >= 316 ?
	       "in libfuse; used where the kernel offers it at mount (-o passthrough=off: never)" :
	       "not in libfuse (older than 3.16)");
	if (fuse_version() < 318)
		printf("FUSE over io_uring: not in libfuse (older than 3.18)");
	else if (!dl_iterate_phdr(liburing_loaded, NULL))
		printf("FUSE over io_uring: not in libfuse (built without liburing)");
	else
		printf("FUSE over io_uring: in libfuse");
	f = fopen("/sys/module/fuse/parameters/enable_uring", "re");
	if (f && fgets(v, sizeof(v), f))
		printf("; kernel: %s (/sys/module/fuse/parameters/enable_uring=%c)",
		       v[0] == 'Y' ? "enabled" : "off", v[0]);
	else if (access("/sys/module/fuse", F_OK) == 0)
		printf("; kernel: not built with it (no fuse enable_uring parameter)");
	if (f)
		fclose(f);
	printf("; used with -o io_uring (off by default)\n");
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct conf c = { .timeout = DEFAULT_TIMEOUT, .entry_timeout = -1, .attr_timeout = -1 };
	struct fuse_cmdline_opts o = { 0 };
	struct cf_fs fs = { .pool_fd = -1, .root_fd = -1, .stage_fd = -1 };
	char src_real[PATH_MAX], pool_real[PATH_MAX], mnt_real[PATH_MAX], *fsname = NULL;
	int r = cf_remount(argc, argv);

	if (r != CF_NOT_REMOUNT)
		return r;	/* the running cowfs keeps serving */
	r = 1;
	if (fuse_opt_parse(&args, &c, conf_opts, conf_proc) != 0)
		goto out;
	if (c.help) {
		usage(stdout);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		r = 0;
		goto out;
	}
	if (c.version) {
		print_version();
		r = 0;
		goto out;
	}
	if (fuse_parse_cmdline(&args, &o) != 0)
		goto out;
	if (!c.pool || !o.mountpoint) {
		usage(stderr);
		goto out;
	}
	if (geteuid() != 0) {
		fprintf(stderr, COWFS_PROG ": must run as root (it serves every guest user and "
			"manages immutable CoW links)\n");
		goto out;
	}
	r = cf_drop_resource_cap();
	if (r < 0) {
		fprintf(stderr, COWFS_PROG ": cannot drop CAP_SYS_RESOURCE: %s\n", strerror(-r));
		r = 1;
		goto out;
	}
	r = 1;
	if (!realpath(c.pool, src_real)) {
		fprintf(stderr, COWFS_PROG ": %s %s\n", c.pool,
			errno == ENOENT ? "does not exist" : strerror(errno));
		goto out;
	}
	if (open_source(&fs, src_real, pool_real) < 0 ||
	    check_source(&fs, fs.root_fd, src_real, fs.pool_fd, pool_real) < 0 ||
	    resolve_mountpoint(pool_real, src_real, o.mountpoint, mnt_real) < 0)
		goto out;
	fs.pool_path = pool_real;
	fs.debug = o.debug;
	/* libfuse also starts its rings for FUSE_URING_ENABLE=1 */
	fs.want_io_uring = c.io_uring || (getenv("FUSE_URING_ENABLE") &&
					  atoi(getenv("FUSE_URING_ENABLE")));
	if (fs.want_io_uring)
		enable_uring_param();
	if (fs_init(&fs, &c, mnt_real) < 0)
		goto out;
	/* Before serving: whatever a crash left (cleared flags, named copy-up
	 * temporaries) is repaired now, not at the first copy-up. */
	cf_pool_state(&fs);
	/* A metrics file that cannot be written is a mistake to show now. */
	if (cf_metrics_write(&fs) < 0)
		goto out;
	fsname = fsname_opt(src_real);	/* vunify remove's in-use check reads it */
	if (!fsname || add_mount_opts(&args, fsname) < 0)
		goto out;
	r = serve(&fs, &args, &o);
out:
	cf_table_destroy(&fs);	/* nothing to do if fs_init did not get there */
	free(fsname);
	free(fs.root_groups);
	if (fs.stage_fd >= 0)
		close(fs.stage_fd);
	if (fs.root_fd >= 0 && fs.root_fd != fs.pool_fd)
		close(fs.root_fd);
	if (fs.pool_fd >= 0)
		close(fs.pool_fd);
	free(o.mountpoint);
	free(c.pool);
	free(c.drop_cache);
	free(c.passthrough);
	free(c.metrics);
	cf_metrics_destroy(&fs.metrics);
	fuse_opt_free_args(&args);
	return r;
}
