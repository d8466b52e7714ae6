/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Metrics for node_exporter's textfile collector: a file of
 *   # HELP name text
 *   # TYPE name gauge
 *   name{pool="/vservers",guest="web1"} 123
 * lines, written to "FILE.PID.tmp" (not *.prom, so the collector never
 * reads a half-written file), fsync'ed and renamed over FILE.  The writer,
 * the label escaping and the naming scheme are shared with cowfs
 * (cowlink/prom.h).
 *
 * Where the file goes: --prometheus FILE, or else prometheus-dir from the
 * configuration, as DIR/vunify_COMMAND_POOL.prom with POOL the pool's path
 * with '/' turned into '_' ("/vservers" -> vunify_unify_vservers.prom).
 */
#ifndef VUNIFY_PROMETHEUS_H
#define VUNIFY_PROMETHEUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cowlink/prom.h"

struct options;

struct prom {
	struct cowlink_prom file;	/* file.f: where samples go */
	const char *pool;	/* the pool label on every sample */
};

/* The file for @command's metrics: malloc'd, or NULL when none is wanted
 * (or out of memory: *oom set). */
char *prom_path(const struct options *o, const char *command, const char *pool, bool *oom);
/* Open @command's metrics file for @pool when the options ask for one.
 * Returns true when the caller should write samples and prom_finish();
 * false when no metrics are wanted or the file could not be started (the
 * reason is already on stderr). */
bool prom_begin(struct prom *p, const struct options *o, const char *command, const char *pool);
/* Start writing @path; every sample carries pool="@pool". */
int prom_open(struct prom *p, const char *path, const char *pool);
/* # HELP and # TYPE (gauge or counter) of a metric family. */
void prom_family(struct prom *p, const char *name, const char *type, const char *help);
/* Write a label value to @f (cowlink_prom_label_value). */
void prom_label_value(FILE *f, const char *s);
/* One sample; @lk/@lv: an optional extra label (NULL for none). */
void prom_sample(struct prom *p, const char *name, const char *lk, const char *lv, double v);
/* Family with one pool-labelled sample, for the many single-value metrics. */
void prom_gauge(struct prom *p, const char *name, const char *help, double v);
/* Finish: flush, fsync, rename over the target.  0 or negative errno. */
int prom_commit(struct prom *p);
/* Drop the temporary file (on errors). */
void prom_abort(struct prom *p);

/* Write the metrics every command shares (exit code, duration, time of the
 * run) and commit; prints an error naming the file on failure.  Returns 0
 * or -1.  Used as the last step of a command that opened @p. */
int prom_finish(struct prom *p, const char *command, int exit_code, double seconds);

/* Rewrite the metrics file @path (written for @pool) without the samples
 * whose last label is @key="@value" (vunify remove drops a removed guest's
 * samples from audit's file).  Returns how many, 0 when the file does not
 * exist, or a negative errno. */
int prom_drop_label(const char *path, const char *pool, const char *key, const char *value);

#endif
