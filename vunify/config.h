/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Configuration: the system file (/etc/vunify.conf, or --config FILE, or
 * $VUNIFY_CONFIG) and the pool's own POOL/.hashdb/config, both in the
 * format of vunify.conf(5):
 *
 *   # comment
 *   key = value
 *
 * Keys: exclude (one rule, "- PAT", "+ PAT" or "PAT"), exclude-from (a file
 * of rules), ignore-mtime-path (one rule in the exclude syntax: what it
 * covers is identified without mtime), ignore-mtime and include-empty
 * (yes/no), prometheus-dir (a
 * node_exporter textfile directory), pool (system file only: the pools the
 * nightly cron job works on), secret and secret-empty (rules in the exclude
 * syntax for the per-guest secrets vunify clone leaves out, or leaves as
 * empty files).
 *
 * Precedence: the command line, then the pool's file, then the system file.
 * Exclude and ignore-mtime-path rules are tried in that order too (first
 * match wins), so a rule given on the command line or in a pool's config
 * overrides the system one.
 * Every error names the file and the line.
 */
#ifndef VUNIFY_CONFIG_H
#define VUNIFY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "vunify/exclude.h"

#ifndef VUNIFY_SYSCONF
#define VUNIFY_SYSCONF "/etc/vunify.conf"
#endif

struct vconfig {
	int ignore_mtime;	/* -1 unset, else 0/1 */
	int include_empty;	/* -1 unset, else 0/1 */
	char *prometheus_dir;	/* NULL unset */
	struct exclude excludes;
	struct exclude secrets;		/* secret: clone leaves these out */
	struct exclude secrets_empty;	/* secret-empty: clone makes them empty */
	struct exclude mtime_rules;	/* ignore-mtime-path */
	char **pools;		/* system file only */
	size_t npools;
};

void config_init(struct vconfig *c);
void config_free(struct vconfig *c);
/* Parse one configuration from @f, named @name in messages.  @system: the
 * system file (where "pool" is allowed).  On a bad line returns -EINVAL with
 * "NAME:LINE: reason" in @err. */
int config_parse(struct vconfig *c, FILE *f, const char *name, bool system, char *err,
		 size_t errlen);
/* Parse the file @path; a missing file is an empty configuration when
 * @missing_ok.  Other errors as config_parse, "PATH: reason" for I/O. */
int config_load(struct vconfig *c, const char *path, bool system, bool missing_ok, char *err,
		size_t errlen);
/* The system configuration's path: @given (a --config argument) if not
 * NULL, else $VUNIFY_CONFIG if set, else VUNIFY_SYSCONF. */
const char *config_system_path(const char *given);

struct options;
struct hashdb_pool;
/* Merge @pool's and @sys's settings into @o under the command line's:
 * what @o has set stays, then the pool's, then the system's; exclude rules
 * and ignore-mtime-path rules are appended in that order.  0 or -ENOMEM. */
int config_merge(struct options *o, const struct vconfig *pool, const struct vconfig *sys);
/* Load the system file and the pool's config and merge them into @o under
 * the command line's settings.  Prints the error and returns EXIT_USAGE on
 * a bad configuration, 0 when fine. */
int config_apply(struct options *o, struct hashdb_pool *p);

#endif
