/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cowfs's metrics (-o metrics=FILE): counters kept while serving and a
 * thread that writes them every metrics_interval seconds, and once more at
 * exit, as a node_exporter textfile (cowlink/prom.h has the format and the
 * naming scheme shared with vunify; man/cowfs.8, METRICS, lists them).
 *
 * Requests and errors per FUSE operation are counted by wrapping the
 * operations table (cf_metrics_ops) and libfuse's fuse_reply_err (linked
 * with -Wl,--wrap=fuse_reply_err): no operation has to remember to count.
 */
#ifndef COWFS_METRICS_H
#define COWFS_METRICS_H

#define FUSE_USE_VERSION 317
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct cf_fs;

/* X(member of fuse_lowlevel_ops, op label, parameters, arguments): the
 * request operations that are counted when the table sets them. */
#define CF_METRICS_OPS_BASE(X) \
	X(lookup, "lookup", (fuse_req_t req, fuse_ino_t p, const char *n), (req, p, n)) \
	X(forget, "forget", (fuse_req_t req, fuse_ino_t i, uint64_t n), (req, i, n)) \
	X(forget_multi, "batch_forget", (fuse_req_t req, size_t c, struct fuse_forget_data *f), \
	  (req, c, f)) \
	X(getattr, "getattr", (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi), \
	  (req, i, fi)) \
	X(setattr, "setattr", (fuse_req_t req, fuse_ino_t i, struct stat *a, int s, \
			       struct fuse_file_info *fi), (req, i, a, s, fi)) \
	X(readlink, "readlink", (fuse_req_t req, fuse_ino_t i), (req, i)) \
	X(mknod, "mknod", (fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, dev_t d), \
	  (req, p, n, m, d)) \
	X(mkdir, "mkdir", (fuse_req_t req, fuse_ino_t p, const char *n, mode_t m), (req, p, n, m)) \
	X(unlink, "unlink", (fuse_req_t req, fuse_ino_t p, const char *n), (req, p, n)) \
	X(rmdir, "rmdir", (fuse_req_t req, fuse_ino_t p, const char *n), (req, p, n)) \
	X(symlink, "symlink", (fuse_req_t req, const char *l, fuse_ino_t p, const char *n), \
	  (req, l, p, n)) \
	X(rename, "rename", (fuse_req_t req, fuse_ino_t p, const char *n, fuse_ino_t np, \
			     const char *nn, unsigned int f), (req, p, n, np, nn, f)) \
	X(link, "link", (fuse_req_t req, fuse_ino_t i, fuse_ino_t np, const char *nn), \
	  (req, i, np, nn)) \
	X(open, "open", (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi), (req, i, fi)) \
	X(create, "create", (fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, \
			     struct fuse_file_info *fi), (req, p, n, m, fi)) \
	X(read, "read", (fuse_req_t req, fuse_ino_t i, size_t s, off_t o, \
			 struct fuse_file_info *fi), (req, i, s, o, fi)) \
	X(write, "write", (fuse_req_t req, fuse_ino_t i, const char *b, size_t s, off_t o, \
			   struct fuse_file_info *fi), (req, i, b, s, o, fi)) \
	X(write_buf, "write", (fuse_req_t req, fuse_ino_t i, struct fuse_bufvec *b, off_t o, \
			       struct fuse_file_info *fi), (req, i, b, o, fi)) \
	X(flush, "flush", (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi), (req, i, fi)) \
	X(release, "release", (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi), \
	  (req, i, fi)) \
	X(fsync, "fsync", (fuse_req_t req, fuse_ino_t i, int d, struct fuse_file_info *fi), \
	  (req, i, d, fi)) \
	X(opendir, "opendir", (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi), \
	  (req, i, fi)) \
	X(readdir, "readdir", (fuse_req_t req, fuse_ino_t i, size_t s, off_t o, \
			       struct fuse_file_info *fi), (req, i, s, o, fi)) \
	X(readdirplus, "readdirplus", (fuse_req_t req, fuse_ino_t i, size_t s, off_t o, \
				       struct fuse_file_info *fi), (req, i, s, o, fi)) \
	X(releasedir, "releasedir", (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi), \
	  (req, i, fi)) \
	X(fsyncdir, "fsyncdir", (fuse_req_t req, fuse_ino_t i, int d, struct fuse_file_info *fi), \
	  (req, i, d, fi)) \
	X(statfs, "statfs", (fuse_req_t req, fuse_ino_t i), (req, i)) \
	X(setxattr, "setxattr", (fuse_req_t req, fuse_ino_t i, const char *n, const char *v, \
				 size_t s, int f), (req, i, n, v, s, f)) \
	X(getxattr, "getxattr", (fuse_req_t req, fuse_ino_t i, const char *n, size_t s), \
	  (req, i, n, s)) \
	X(listxattr, "listxattr", (fuse_req_t req, fuse_ino_t i, size_t s), (req, i, s)) \
	X(removexattr, "removexattr", (fuse_req_t req, fuse_ino_t i, const char *n), (req, i, n)) \
	X(access, "access", (fuse_req_t req, fuse_ino_t i, int m), (req, i, m)) \
	X(getlk, "getlk", (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi, \
			   struct flock *l), (req, i, fi, l)) \
	X(setlk, "setlk", (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi, \
			   struct flock *l, int s), (req, i, fi, l, s)) \
	X(flock, "flock", (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi, int o), \
	  (req, i, fi, o)) \
	X(fallocate, "fallocate", (fuse_req_t req, fuse_ino_t i, int m, off_t o, off_t l, \
				   struct fuse_file_info *fi), (req, i, m, o, l, fi)) \
	X(copy_file_range, "copy_file_range", (fuse_req_t req, fuse_ino_t i, off_t o, \
					       struct fuse_file_info *fi, fuse_ino_t io, \
					       off_t oo, struct fuse_file_info *fo, size_t l, \
					       int f), (req, i, o, fi, io, oo, fo, l, f)) \
	X(lseek, "lseek", (fuse_req_t req, fuse_ino_t i, off_t o, int w, \
			   struct fuse_file_info *fi), (req, i, o, w, fi)) \
	X(tmpfile, "tmpfile", (fuse_req_t req, fuse_ino_t p, mode_t m, \
			       struct fuse_file_info *fi), (req, p, m, fi))

/* statx came with libfuse 3.18. */
#if FUSE_VERSION >= FUSE_MAKE_VERSION(3, 18)
#define CF_METRICS_OPS(X) CF_METRICS_OPS_BASE(X) \
	X(statx, "statx", (fuse_req_t req, fuse_ino_t i, int f, int m, \
			   struct fuse_file_info *fi), (req, i, f, m, fi))
#else
#define CF_METRICS_OPS(X) CF_METRICS_OPS_BASE(X)
#endif

#define CF_OP_ENUM(m, label, params, args) CF_OP_##m,
enum cf_op { CF_METRICS_OPS(CF_OP_ENUM) CF_OP_N };
#undef CF_OP_ENUM

/* Upper bounds (seconds) of the copy-up duration histogram's buckets. */
#define CF_COPYUP_BUCKETS 10

struct cf_metrics {
	atomic_uint_fast64_t requests[CF_OP_N], errors[CF_OP_N];
	atomic_uint_fast64_t breaks;		/* changes refused with ESTALE */
	atomic_uint_fast64_t copyups, copyup_bytes, copyup_failures;
	atomic_uint_fast64_t copyup_ns;		/* sum of the durations */
	atomic_uint_fast64_t copyup_le[CF_COPYUP_BUCKETS + 1];	/* per bucket, +Inf last */
	atomic_uint_fast64_t flags_restored;
	/* State gauges, 0 or 1: what cf_init negotiated (the INIT wrapper);
	 * passthrough.c turns passthrough's off if the kernel refuses it. */
	atomic_int passthrough_active, io_uring_active;

	/* the operations libfuse calls (outer) and cowfs's own (inner) */
	struct fuse_lowlevel_ops inner, outer;
	bool counted[CF_OP_N];	/* implemented: written to the file */

	/* -o metrics=FILE: the writer thread (none when path is NULL) */
	char *path;
	const char *mountpoint;
	unsigned interval;		/* seconds */
	struct timespec started;	/* CLOCK_REALTIME */
	pthread_t thread;
	bool running, stop, failing;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

/* Counters at zero; @path (taken over, may be NULL) written every
 * @interval seconds once started, labelled with @mountpoint (kept).  0 or
 * -errno. */
int cf_metrics_init(struct cf_metrics *m, char *path, unsigned interval,
		    const char *mountpoint);
void cf_metrics_destroy(struct cf_metrics *m);
/* The table to hand to libfuse: @ops with every request operation counted. */
const struct fuse_lowlevel_ops *cf_metrics_ops(struct cf_metrics *m,
					       const struct fuse_lowlevel_ops *ops);
/* Write FILE now (at start: said on stderr and -errno if that fails). */
int cf_metrics_write(struct cf_fs *fs);
/* Start the writer thread (after fuse_daemonize; SIGUSR1 stays blocked in
 * it); stop it, writing FILE a last time.  No-ops without -o metrics. */
void cf_metrics_start(struct cf_fs *fs);
void cf_metrics_stop(struct cf_fs *fs);

/* The request being answered on this thread is a refused change of a CoW
 * link (ESTALE, to be re-walked): counted as a break, not as an error. */
void cf_metrics_break(struct cf_metrics *m);
/* A copy-up: @r its result (0 or -errno), @bytes copied, @ns it took. */
void cf_metrics_copyup(struct cf_metrics *m, int r, uint64_t bytes, uint64_t ns);
void cf_metrics_flags_restored(struct cf_metrics *m, unsigned n);

/* fuse_reply_err as cowfs's code calls it (-Wl,--wrap): counts the error
 * for the operation this thread is in, then replies. */
int __real_fuse_reply_err(fuse_req_t req, int err);
int __wrap_fuse_reply_err(fuse_req_t req, int err);

#endif
