/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared pieces of the vunify command: options, counters, messages. */
#ifndef VUNIFY_VUNIFY_H
#define VUNIFY_VUNIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hashdb/pool.h"
#include "vunify/exclude.h"

/* Exit codes (documented in vunify(8)). */
enum {
	EXIT_OK = 0,
	EXIT_TROUBLE = 1,	/* the run finished but some files had errors */
	EXIT_USAGE = 2,		/* bad command line or configuration */
	EXIT_FATAL = 3,		/* the pool could not be used at all */
	EXIT_LOCKED = 4,	/* another run holds the pool lock */
	EXIT_DAMAGE = 5,	/* verify found damage */
	EXIT_BUSY = 6,		/* remove: the guest is in use; nothing was done */
};

struct options {
	bool dry_run, json, ignore_mtime, include_empty, hardlinks;
	int verbose;		/* -1 quiet, 0 normal, 1+ verbose */
	bool progress;		/* stderr is a terminal and not quiet */
	struct exclude excludes;
	struct exclude secrets;		/* clone leaves these out (config: secret) */
	struct exclude secrets_empty;	/* clone makes these empty (secret-empty) */
	/* ignore-mtime-path rules (exclude syntax): files they cover are
	 * identified without mtime, as if by --ignore-mtime. */
	struct exclude mtime_rules;
	const char *config;	/* --config FILE (system configuration) */
	const char *prometheus;	/* --prometheus FILE */
	char *prometheus_dir;	/* prometheus-dir from the configuration */
};
/* Free what the options own (rules, prometheus_dir); command.c. */
void options_free(struct options *o);

/* Messages: "vunify: ..." on stderr.  Paths are printed escaped so a name
 * with newlines or invalid UTF-8 can neither forge lines nor break JSON. */
void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_info(const struct options *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Escape @s for a message line (C-style \n, \xNN for bytes that are not
 * printable ASCII or valid UTF-8).  Returns a static thread-local buffer
 * valid until the next call with the same slot (0..3). */
const char *esc(const char *s, int slot);
/* Write @s as a JSON string literal (with quotes). */
void json_string(FILE *f, const char *s);

/* Progress line on a terminal, at most every 200 ms. */
struct progress {
	bool on;
	uint64_t last_ms, start_ms;
};
void progress_update(struct progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A progress bar: "LABEL [####    ] 42% 1234/5000 files 120/400 MiB
 * 45 MiB/s ETA 0:07".  A total of 0 means unknown (no bar, no ETA). */
void progress_bar(struct progress *p, const char *label, uint64_t files, uint64_t files_total,
		  uint64_t bytes, uint64_t bytes_total);
/* Format a duration in seconds as H:MM:SS or M:SS. */
void fmt_duration(char *buf, size_t len, uint64_t s);
void progress_done(struct progress *p);
uint64_t now_ms(void);

/* Guests of a pool: the subdirectories of POOL except .hashdb and
 * lost+found, or the names given. */
struct guests {
	char **names;
	size_t n;
};
/* 0; -EINVAL when a given name is no guest's (said on stderr); another
 * negative errno when the pool cannot be read (not said). */
int guests_list(struct hashdb_pool *p, char **given, int ngiven, struct guests *g);
void guests_free(struct guests *g);
/* Open guest @name of the pool (a directory on the pool's filesystem,
 * never through a symlink).  Negative errno on failure. */
int guest_open(struct hashdb_pool *p, const char *name);

/* Entries of the guests a walk would visit (excluded directories are not
 * entered): the total for a progress bar.  A stat-only walk (guests.c). */
uint64_t count_entries(struct hashdb_pool *p, const struct guests *g, const struct exclude *x);
/* Replace the CoW link @name in @dirfd (open as @fd) by a private copy
 * with all its metadata (cowlink_copy_up), keeping the directory's mtime
 * (split.c; verify --repair uses it too). */
int split_link(struct hashdb_pool *p, int fd, int dirfd, const char *name);

/* Take the directory @dir of the pool apart and remove it as vunify remove
 * does (CoW links unlinked under the flag dance, the guest's own flags
 * cleared); errors are said on stderr.  0, or -EIO when something was left
 * (remove.c; clone uses it for an unfinished clone). */
int remove_tree(struct hashdb_pool *p, const struct options *o, const char *poolpath,
		const char *dir);

/* What gc did (vunify/gc.c). */
struct gc_stats {
	uint64_t objects, removed, freed, renamed, caches, errors, strays;
};
/*
 * gc's work, for gc and remove: remove the objects no guest uses (link
 * count 1), renumber the survivors, remove the stat caches of guests that
 * are gone; every change under the flag dance.  Errors on single objects
 * are printed and counted in @s.  With o->dry_run nothing changes, and
 * @gone (sorted inode numbers, one per guest name a dry run would have
 * unlinked; NULL for none) is taken off the link counts, so that a dry
 * remove can say which objects it would leave unused.  0, or a negative
 * errno when the objects cannot be listed (not printed).
 */
int gc_run(struct hashdb_pool *p, const struct options *o, const uint64_t *gone, size_t ngone,
	   struct gc_stats *s);

#endif
