/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Metrics files for node_exporter's textfile collector: the one writer and
 * the one naming scheme of vunify's (--prometheus, prometheus-dir) and
 * cowfs's (-o metrics=FILE) metrics, so that the two read as one set
 * (man/vunify.8 and man/cowfs.8, METRICS):
 *
 *   - names start with the program: vunify_COMMAND_WHAT for the result of
 *     a vunify run (gauges, replaced by the next run), cowfs_WHAT for the
 *     running daemon; counters end in _total, units are spelled out last
 *     (_bytes, _seconds, _timestamp_seconds);
 *   - every sample's first label is pool="POOL" (the pool's path), so a
 *     pool's vunify and cowfs series join on it; then cowfs's
 *     mountpoint="MOUNTPOINT" and op="OPERATION", vunify's guest= and
 *     reason=;
 *   - label values escaped by cowlink_prom_label_value;
 *   - the file is written as "FILE.PID.tmp" (not *.prom, so the collector
 *     never reads it half-written), fsync'ed and renamed over FILE.
 *
 * Like the rest of cowlink it never prints: 0 or a negative errno.
 */
#ifndef COWLINK_PROM_H
#define COWLINK_PROM_H

#include <stdio.h>

struct cowlink_prom {
	FILE *f;		/* write the metrics here */
	char *path, *tmp;
};

/* Start writing @path: @p->f is the temporary file.  0 or -errno. */
int cowlink_prom_open(struct cowlink_prom *p, const char *path);
/* Flush, fsync, rename the temporary over the target.  0 or -errno (the
 * temporary is removed then). */
int cowlink_prom_commit(struct cowlink_prom *p);
/* Drop the temporary file. */
void cowlink_prom_abort(struct cowlink_prom *p);
/* A label value: backslash, double quote and newline escaped as the
 * exposition format wants; bytes that are not printable ASCII as \\xNN
 * text, so the file stays valid UTF-8 whatever a path holds. */
void cowlink_prom_label_value(FILE *f, const char *s);
/* # HELP and # TYPE (gauge, counter, histogram, untyped) of a family. */
void cowlink_prom_family(FILE *f, const char *name, const char *type, const char *help);

#endif
