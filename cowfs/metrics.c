/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cowfs's metrics (metrics.h): counting and the textfile writer thread.
 *
 * Why count by wrapping rather than in each operation: every operation
 * answers through one of a dozen fuse_reply_* calls from many places
 * (some 45 fuse_reply_err calls today), and a counter missed in one of
 * them would go unnoticed.  Wrapping the operations table counts every
 * request the kernel sends, whoever adds an operation later; the one
 * reply that says "failed", fuse_reply_err, is wrapped at link time
 * (-Wl,--wrap=fuse_reply_err: cowfs's own calls go through
 * __wrap_fuse_reply_err) and charged to the operation this worker thread
 * is running, which it records in a thread-local.  That is sound because
 * cowfs answers every request on the thread that runs the operation, before
 * the operation returns; a reply outside a wrapped operation counts nowhere.
 * The cost per request: two relaxed atomic increments at most.
 */
#include "cowfs/cowfs.h"

#include "cowlink/prom.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000ull

static const char *const op_label[CF_OP_N] = {
#define CF_OP_LABEL(m, label, params, args) [CF_OP_##m] = label,
	CF_METRICS_OPS(CF_OP_LABEL)
#undef CF_OP_LABEL
};

/* Upper bounds of the copy-up histogram, in seconds (CF_COPYUP_BUCKETS). */
static const double copyup_bounds[CF_COPYUP_BUCKETS] = {
	0.001, 0.0025, 0.01, 0.025, 0.1, 0.25, 1, 2.5, 10, 60,
};

/* The operation this worker thread is answering (see the top). */
static _Thread_local struct {
	struct cf_metrics *m;	/* NULL: not inside a wrapped operation */
	enum cf_op op;
	bool brk;		/* the ESTALE about to be sent is a break */
} now;

static void op_begin(fuse_req_t req, enum cf_op op)
{
	struct cf_metrics *m = &cf_req_fs(req)->metrics;

	atomic_fetch_add_explicit(&m->requests[op], 1, memory_order_relaxed);
	now.m = m;
	now.op = op;
	now.brk = false;
}

static void op_end(void)
{
	now.m = NULL;
}

int __wrap_fuse_reply_err(fuse_req_t req, int err)
{
	if (now.m && err != 0 && !now.brk)
		atomic_fetch_add_explicit(&now.m->errors[now.op], 1, memory_order_relaxed);
	now.brk = false;
	return __real_fuse_reply_err(req, err);
}

void cf_metrics_break(struct cf_metrics *m)
{
	atomic_fetch_add_explicit(&m->breaks, 1, memory_order_relaxed);
	now.brk = true;
}

/* One wrapper per operation: count, then run cowfs's own. */
#define CF_OP_WRAP(m, label, params, args) \
	static void w_##m params \
	{ \
		op_begin(req, CF_OP_##m); \
		cf_req_fs(req)->metrics.inner.m args; \
		op_end(); \
	}
CF_METRICS_OPS(CF_OP_WRAP)
#undef CF_OP_WRAP

/* INIT: cowfs's own, then what was negotiated. */
static void w_init(void *userdata, struct fuse_conn_info *conn)
{
	struct cf_fs *fs = userdata;
	struct cf_metrics *m = &fs->metrics;

	m->inner.init(userdata, conn);
	/* What cf_init made of it: passthrough and io_uring asked for and
	 * agreed (passthrough.c turns the gauge off again if the kernel then
	 * refuses it).  libfuse does not say whether starting the rings then
	 * worked (it logs it when not). */
	atomic_store(&m->passthrough_active, atomic_load(&fs->passthrough));
	atomic_store(&m->io_uring_active, fs->io_uring);
}

const struct fuse_lowlevel_ops *cf_metrics_ops(struct cf_metrics *m,
					       const struct fuse_lowlevel_ops *ops)
{
	m->inner = *ops;
	m->outer = *ops;
	/* Only what cowfs implements: a NULL stays NULL, so libfuse's own
	 * answer to an unimplemented request (ENOSYS) is unchanged. */
#define CF_OP_SET(m_, label, params, args) \
	if (ops->m_) { \
		m->outer.m_ = w_##m_; \
		m->counted[CF_OP_##m_] = true; \
	}
	CF_METRICS_OPS(CF_OP_SET)
#undef CF_OP_SET
	/* libfuse calls write_buf when both are set: one "write" series. */
	if (ops->write_buf)
		m->counted[CF_OP_write] = false;
	if (ops->init)
		m->outer.init = w_init;
	return &m->outer;
}

void cf_metrics_copyup(struct cf_metrics *m, int r, uint64_t bytes, uint64_t ns)
{
	int b = 0;

	if (r < 0) {
		atomic_fetch_add_explicit(&m->copyup_failures, 1, memory_order_relaxed);
		return;
	}
	while (b < CF_COPYUP_BUCKETS && (double)ns / NS_PER_S > copyup_bounds[b])
		b++;
	atomic_fetch_add_explicit(&m->copyup_le[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->copyup_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->copyup_bytes, bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->copyups, 1, memory_order_relaxed);
}

void cf_metrics_flags_restored(struct cf_metrics *m, unsigned n)
{
	atomic_fetch_add_explicit(&m->flags_restored, n, memory_order_relaxed);
}

int cf_metrics_init(struct cf_metrics *m, char *path, unsigned interval,
		    const char *mountpoint)
{
	pthread_condattr_t ca;
	int r;

	memset(m, 0, sizeof(*m));	/* every counter 0 (atomics of static layout) */
	m->path = path;
	m->interval = interval ? interval : 1;
	m->mountpoint = mountpoint;
	clock_gettime(CLOCK_REALTIME, &m->started);
	pthread_mutex_init(&m->lock, NULL);
	/* The writer sleeps on CLOCK_MONOTONIC: a clock step must not stall it. */
	r = pthread_condattr_init(&ca);
	if (r == 0)
		r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (r == 0)
		r = pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);
	return -r;
}

void cf_metrics_destroy(struct cf_metrics *m)
{
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m->path);
	m->path = NULL;
}

/* ---- the file ----------------------------------------------------------- */

struct out {
	FILE *f;
	const struct cf_fs *fs;
	const char *mountpoint;
};

/* name{pool="...",mountpoint="..."[,k="v"]} value */
static void sample(struct out *o, const char *name, const char *k, const char *v, double val)
{
	fprintf(o->f, "%s{pool=\"", name);
	cowlink_prom_label_value(o->f, o->fs->pool_path);
	fputs("\",mountpoint=\"", o->f);
	cowlink_prom_label_value(o->f, o->mountpoint);
	if (k) {
		fprintf(o->f, "\",%s=\"", k);
		cowlink_prom_label_value(o->f, v);
	}
	/* %.17g keeps every integer up to 2^53 exact. */
	fprintf(o->f, "\"} %.17g\n", val);
}

static void one(struct out *o, const char *name, const char *type, const char *help, double v)
{
	cowlink_prom_family(o->f, name, type, help);
	sample(o, name, NULL, NULL, v);
}

static double load(atomic_uint_fast64_t *c)
{
	return (double)atomic_load_explicit(c, memory_order_relaxed);
}

static void write_ops(struct out *o, struct cf_metrics *m)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} fam[] = {
		{ "cowfs_requests_total", "FUSE requests served, per operation",
		  offsetof(struct cf_metrics, requests) },
		{ "cowfs_request_errors_total", "FUSE requests answered with an error, per "
		  "operation (not the ESTALE of a CoW break)", offsetof(struct cf_metrics, errors) },
	};

	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		atomic_uint_fast64_t *c = (atomic_uint_fast64_t *)((char *)m + fam[f].off);

		cowlink_prom_family(o->f, fam[f].name, "counter", fam[f].help);
		for (int op = 0; op < CF_OP_N; op++)
			if (m->counted[op])
				sample(o, fam[f].name, "op", op_label[op], load(&c[op]));
	}
}

static void write_copyups(struct out *o, struct cf_metrics *m)
{
	const char *h = "cowfs_copyup_duration_seconds";
	char le[32];
	uint64_t n = 0;

	one(o, "cowfs_copyups_total", "counter", "CoW links copied up into a guest",
	    load(&m->copyups));
	one(o, "cowfs_copyup_bytes_total", "counter", "bytes copied by copy-ups",
	    load(&m->copyup_bytes));
	one(o, "cowfs_copyup_failures_total", "counter", "copy-ups that failed (the writer got "
	    "the error; logged with the guest path)", load(&m->copyup_failures));
	cowlink_prom_family(o->f, h, "histogram", "how long copy-ups took");
	for (int b = 0; b <= CF_COPYUP_BUCKETS; b++) {
		n += atomic_load_explicit(&m->copyup_le[b], memory_order_relaxed);
		if (b < CF_COPYUP_BUCKETS)
			snprintf(le, sizeof(le), "%g", copyup_bounds[b]);
		else
			snprintf(le, sizeof(le), "+Inf");
		sample(o, "cowfs_copyup_duration_seconds_bucket", "le", le, (double)n);
	}
	sample(o, "cowfs_copyup_duration_seconds_sum", NULL, NULL,
	       load(&m->copyup_ns) / NS_PER_S);
	/* _count is the +Inf bucket by definition: the same sum, not a
	 * separate counter that a concurrent copy-up could put out of step. */
	sample(o, "cowfs_copyup_duration_seconds_count", NULL, NULL, (double)n);
}

static void write_state(struct out *o, struct cf_fs *fs)
{
	struct cf_metrics *m = &fs->metrics;
	size_t inodes;
	unsigned fds;

	pthread_mutex_lock(&fs->table_lock);
	inodes = fs->itable.n;
	pthread_mutex_unlock(&fs->table_lock);
	pthread_mutex_lock(&fs->fd_lock);
	fds = fs->fds.n;
	pthread_mutex_unlock(&fs->fd_lock);
	one(o, "cowfs_cow_breaks_total", "counter", "changes to a CoW link refused with ESTALE "
	    "so that the guest's re-walk copies its path up", load(&m->breaks));
	one(o, "cowfs_pending_breaks", "gauge", "CoW breaks waiting for their re-walk now",
	    cf_pending_live(&fs->pending));
	one(o, "cowfs_flags_restored_total", "counter", "immutable flags of pool objects "
	    "found cleared and restored (logged)", load(&m->flags_restored));
	one(o, "cowfs_inodes", "gauge", "inodes held (the nodeids the kernel remembers)",
	    (double)inodes);
	one(o, "cowfs_cached_fds", "gauge", "backing O_PATH fds held in the fd cache",
	    (double)fds);
	one(o, "cowfs_fd_cache_size", "gauge", "most fds the fd cache keeps (-o fd_cache)",
	    (double)fs->fds.max);
	one(o, "cowfs_passthrough_active", "gauge", "1 when FUSE passthrough is in use",
	    atomic_load(&m->passthrough_active) ? 1 : 0);
	one(o, "cowfs_io_uring_active", "gauge", "1 when FUSE over io_uring was negotiated",
	    atomic_load(&m->io_uring_active) ? 1 : 0);
}

static void write_info(struct out *o, struct cf_metrics *m)
{
	cowlink_prom_family(o->f, "cowfs_info", "gauge", "cowfs and libfuse versions (always 1)");
	fprintf(o->f, "cowfs_info{pool=\"");
	cowlink_prom_label_value(o->f, o->fs->pool_path);
	fputs("\",mountpoint=\"", o->f);
	cowlink_prom_label_value(o->f, o->mountpoint);
	fputs("\",version=\"", o->f);
	cowlink_prom_label_value(o->f, COWFS_VERSION);
	fputs("\",libfuse=\"", o->f);
	cowlink_prom_label_value(o->f, fuse_pkgversion());
	fputs("\"} 1\n", o->f);
	one(o, "cowfs_start_time_seconds", "gauge", "when the daemon started (Unix time)",
	    (double)m->started.tv_sec + m->started.tv_nsec / 1e9);
}

int cf_metrics_write(struct cf_fs *fs)
{
	struct cf_metrics *m = &fs->metrics;
	struct cowlink_prom p;
	struct out o = { .fs = fs, .mountpoint = m->mountpoint ? m->mountpoint : "" };
	int r;

	if (!m->path)
		return 0;
	r = cowlink_prom_open(&p, m->path);
	if (r == 0) {
		o.f = p.f;
		write_info(&o, m);
		write_ops(&o, m);
		write_copyups(&o, m);
		write_state(&o, fs);
		r = cowlink_prom_commit(&p);
	}
	/* Said once, and once more when it works again: a full disk must not
	 * fill the journal every interval. */
	if (r < 0 && !m->failing)
		fuse_log(FUSE_LOG_ERR, COWFS_PROG ": %s: cannot write metrics: %s\n", m->path,
			 strerror(-r));
	else if (r == 0 && m->failing)
		fuse_log(FUSE_LOG_NOTICE, COWFS_PROG ": %s: metrics written again\n", m->path);
	m->failing = r < 0;
	return r;
}

/* ---- the writer thread ---------------------------------------------------- */

static void *writer_main(void *arg)
{
	struct cf_fs *fs = arg;
	struct cf_metrics *m = &fs->metrics;
	struct timespec next;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		next.tv_sec += m->interval;
		pthread_mutex_lock(&m->lock);
		while (!m->stop && pthread_cond_timedwait(&m->cond, &m->lock, &next) != ETIMEDOUT)
			;
		stop = m->stop;
		pthread_mutex_unlock(&m->lock);
		cf_metrics_write(fs);	/* the last one after the stop */
		if (stop)
			return NULL;
	}
}

void cf_metrics_start(struct cf_fs *fs)
{
	struct cf_metrics *m = &fs->metrics;
	sigset_t set, old;

	if (!m->path)
		return;
	/* SIGUSR1 is the stats thread's (sigwait); libfuse's signals
	 * (SIGTERM, SIGINT, SIGHUP) may land anywhere. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	m->running = pthread_create(&m->thread, NULL, writer_main, fs) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!m->running)
		fuse_log(FUSE_LOG_ERR, COWFS_PROG ": cannot start the metrics thread; %s is "
			 "written at exit only\n", m->path);
}

void cf_metrics_stop(struct cf_fs *fs)
{
	struct cf_metrics *m = &fs->metrics;

	if (!m->running) {
		cf_metrics_write(fs);
		return;
	}
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_signal(&m->cond);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->thread, NULL);
	m->running = false;
}
