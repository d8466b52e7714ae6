/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Exclude rules: fnmatch(3) patterns matched against the guest-relative path
 * ("/etc/shadow").  A line "- PATTERN" (or just "PATTERN") excludes, "+
 * PATTERN" includes; the first rule that matches decides.  A pattern that
 * starts with "/" matches the whole path, others match the last component
 * anywhere.  A trailing "/" matches directories only.  An excluded directory
 * is not entered.  '#' starts a comment line.
 */
#ifndef VUNIFY_EXCLUDE_H
#define VUNIFY_EXCLUDE_H

#include <stdbool.h>
#include <stddef.h>

struct exclude_rule {
	char *pattern;
	bool include, anchored, dir_only;
};

struct exclude {
	struct exclude_rule *rules;
	size_t n;
};

/* Parse the rules in @file.  On a bad line, returns -EINVAL and puts
 * "file:line: reason" into @err. */
int exclude_load(struct exclude *x, const char *file, char *err, size_t errlen);
int exclude_add(struct exclude *x, const char *line, char *err, size_t errlen);
bool exclude_match(const struct exclude *x, const char *path, bool is_dir);
void exclude_free(struct exclude *x);

#endif
