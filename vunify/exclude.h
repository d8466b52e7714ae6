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

/*
 * Rules that cover a subtree during a walk, as exclude rules do: a path is
 * covered when the first rule that matches it, or one of its directories,
 * excludes ("-").  For rules that do not stop the walk (ignore-mtime-path),
 * so each directory's answer is kept on a stack by depth as the walk enters
 * it, and a path costs one exclude_match, not one per ancestor.
 */
struct exclude_scope {
	bool *in;		/* in[d]: the directory at depth d is covered */
	size_t cap;
};

/* The directory @path, held at depth @depth (the root's entries are at 0),
 * is entered: decide whether it and everything below it is covered.
 * 0 or -ENOMEM. */
int exclude_scope_enter(struct exclude_scope *s, const struct exclude *x, size_t depth,
			const char *path);
/* Is @path (held at @depth) covered?  For a directory, call
 * exclude_scope_enter first; this then answers for the directory itself. */
bool exclude_scope_match(const struct exclude_scope *s, const struct exclude *x, size_t depth,
			 const char *path, bool is_dir);
void exclude_scope_free(struct exclude_scope *s);

#endif
