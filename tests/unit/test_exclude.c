/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vunify exclude rules: anchored and unanchored patterns, directory-only
 * rules, "+" re-includes, first match wins, comments, and errors that name
 * the file and line. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vunify/exclude.h"

static struct exclude rules(const char *const *lines)
{
	struct exclude x = { 0 };
	char err[200];

	for (; *lines; lines++)
		cr_assert_eq(exclude_add(&x, *lines, err, sizeof(err)), 0, "'%s': %s", *lines, err);
	return x;
}

Test(exclude, empty_list_excludes_nothing)
{
	struct exclude x = { 0 };

	cr_assert_not(exclude_match(&x, "/etc/shadow", false));
	cr_assert_not(exclude_match(&x, "/", true));
}

Test(exclude, anchored_matches_the_whole_path)
{
	static const char *const l[] = { "/etc/shadow", "/var/*", NULL };
	struct exclude x = rules(l);

	cr_expect(exclude_match(&x, "/etc/shadow", false));
	cr_expect_not(exclude_match(&x, "/x/etc/shadow", false), "anchored matched deeper");
	cr_expect_not(exclude_match(&x, "/etc/shadow-", false));
	cr_expect(exclude_match(&x, "/var/log", true));
	cr_expect_not(exclude_match(&x, "/var/log/syslog", false), "* crossed a /");
	exclude_free(&x);
}

Test(exclude, unanchored_matches_the_last_component_anywhere)
{
	static const char *const l[] = { "*.log", "core", NULL };
	struct exclude x = rules(l);

	cr_expect(exclude_match(&x, "/var/log/syslog.log", false));
	cr_expect(exclude_match(&x, "/a.log", false));
	cr_expect(exclude_match(&x, "/deep/er/core", false));
	cr_expect_not(exclude_match(&x, "/core/file", false), "matched a parent component");
	cr_expect_not(exclude_match(&x, "/var/log/syslog", false));
	cr_expect_not(exclude_match(&x, "/corex", false));
	exclude_free(&x);
}

Test(exclude, trailing_slash_is_for_directories)
{
	static const char *const l[] = { "cache/", "/tmp/", NULL };
	struct exclude x = rules(l);

	cr_expect(exclude_match(&x, "/var/cache", true));
	cr_expect_not(exclude_match(&x, "/var/cache", false), "dir rule matched a file");
	cr_expect(exclude_match(&x, "/tmp", true));
	cr_expect_not(exclude_match(&x, "/tmp", false));
	exclude_free(&x);
}

Test(exclude, first_match_wins_and_plus_includes)
{
	static const char *const l[] = { "+ /etc/keep.conf", "- /etc/*.conf", "+ *.conf", NULL };
	struct exclude x = rules(l);

	cr_expect_not(exclude_match(&x, "/etc/keep.conf", false), "include before exclude lost");
	cr_expect(exclude_match(&x, "/etc/other.conf", false));
	cr_expect_not(exclude_match(&x, "/usr/a.conf", false));
	exclude_free(&x);
}

Test(exclude, comments_blanks_and_spaces)
{
	static const char *const l[] = { "# a comment", "", "   ", "\t# indented comment",
					 "  /etc/shadow  ", NULL };
	struct exclude x = rules(l);

	cr_assert_eq(x.n, 1, "comments or blank lines became rules");
	cr_expect(exclude_match(&x, "/etc/shadow", false), "surrounding blanks not trimmed");
	exclude_free(&x);
}

Test(exclude, names_with_any_byte)
{
	static const char *const l[] = { "bad\n*", "*\xff", NULL };
	struct exclude x = rules(l);

	cr_expect(exclude_match(&x, "/d/bad\nname", false));
	cr_expect(exclude_match(&x, "/d/x\xff", false));
	cr_expect_not(exclude_match(&x, "/d/plain", false));
	exclude_free(&x);
}

Test(exclude, bad_rules_are_errors)
{
	struct exclude x = { 0 };
	char err[200] = "";

	cr_expect_eq(exclude_add(&x, "+ ", err, sizeof(err)), -EINVAL);
	cr_expect_neq(err[0], '\0', "no reason given");
	cr_expect_eq(exclude_add(&x, "-   ", err, sizeof(err)), -EINVAL);
	cr_expect_eq(x.n, 0);
	exclude_free(&x);
}

Test(exclude, load_names_file_and_line)
{
	char path[] = "/tmp/exclude-test.XXXXXX", err[300] = "";
	struct exclude x = { 0 };
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	cr_assert_not_null(f);
	fputs("# rules\n/etc/shadow\n*.log\n", f);
	fclose(f);
	cr_assert_eq(exclude_load(&x, path, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(x.n, 2);
	cr_expect(exclude_match(&x, "/var/x.log", false));
	exclude_free(&x);

	f = fopen(path, "w");
	fputs("/etc/shadow\n\n+ \n", f);
	fclose(f);
	cr_assert_eq(exclude_load(&x, path, err, sizeof(err)), -EINVAL);
	char want[100];
	snprintf(want, sizeof(want), "%s:3:", path);
	cr_expect_eq(strncmp(err, want, strlen(want)), 0, "error '%s' does not start with '%s'", err,
		     want);
	exclude_free(&x);
	unlink(path);
	cr_expect_lt(exclude_load(&x, path, err, sizeof(err)), 0, "a missing file loaded");
	exclude_free(&x);
}

/* exclude_scope: the rules as a walk applies them to a subtree, without
 * stopping there (ignore-mtime-path).  A walk of
 *   /var/lib/apt/lists/{Packages,partial/x}, /var/lib/apt/extended_states,
 *   /var/cache/apt/archives/a.deb, /var/cache/apt/pkgcache.bin, /etc/keep.deb
 * entering each directory before its entries, as vunify/walk.c does. */
Test(exclude, scope_covers_subtrees_of_matched_directories)
{
	static const char *const l[] = { "/var/lib/apt/lists/", "- /var/cache/apt/archives/",
					 "+ /etc/keep.deb", "*.deb", NULL };
	struct exclude x = rules(l);
	struct exclude_scope s = { 0 };

	cr_assert_eq(exclude_scope_enter(&s, &x, 0, "/var"), 0);
	cr_expect_not(exclude_scope_match(&s, &x, 0, "/var", true));
	cr_assert_eq(exclude_scope_enter(&s, &x, 1, "/var/lib"), 0);
	cr_assert_eq(exclude_scope_enter(&s, &x, 2, "/var/lib/apt"), 0);
	cr_expect_not(exclude_scope_match(&s, &x, 3, "/var/lib/apt/extended_states", false));
	cr_assert_eq(exclude_scope_enter(&s, &x, 3, "/var/lib/apt/lists"), 0);
	cr_expect(exclude_scope_match(&s, &x, 3, "/var/lib/apt/lists", true));
	cr_expect(exclude_scope_match(&s, &x, 4, "/var/lib/apt/lists/Packages", false));
	cr_assert_eq(exclude_scope_enter(&s, &x, 4, "/var/lib/apt/lists/partial"), 0);
	cr_expect(exclude_scope_match(&s, &x, 5, "/var/lib/apt/lists/partial/x", false),
		  "a directory rule covers every depth below");
	/* Back up: a sibling subtree is not covered. */
	cr_assert_eq(exclude_scope_enter(&s, &x, 1, "/var/cache"), 0);
	cr_assert_eq(exclude_scope_enter(&s, &x, 2, "/var/cache/apt"), 0);
	cr_expect_not(exclude_scope_match(&s, &x, 3, "/var/cache/apt/pkgcache.bin", false));
	cr_assert_eq(exclude_scope_enter(&s, &x, 3, "/var/cache/apt/archives"), 0);
	cr_expect(exclude_scope_match(&s, &x, 4, "/var/cache/apt/archives/a.deb", false));
	/* A file rule, and a "+" rule before it (first match wins). */
	cr_assert_eq(exclude_scope_enter(&s, &x, 0, "/etc"), 0);
	cr_expect_not(exclude_scope_match(&s, &x, 1, "/etc/keep.deb", false));
	cr_expect(exclude_scope_match(&s, &x, 1, "/etc/other.deb", false));
	cr_expect_not(exclude_scope_match(&s, &x, 1, "/etc/passwd", false));
	exclude_scope_free(&s);
	exclude_free(&x);
}

Test(exclude, scope_with_no_directory_entered)
{
	static const char *const l[] = { "/top", NULL };
	struct exclude x = rules(l);
	struct exclude_scope s = { 0 };

	cr_expect(exclude_scope_match(&s, &x, 0, "/top", false));
	cr_expect_not(exclude_scope_match(&s, &x, 0, "/other", false));
	cr_assert_eq(exclude_scope_enter(&s, &x, 0, "/top"), 0);
	cr_expect(exclude_scope_match(&s, &x, 1, "/top/f", false));
	exclude_scope_free(&s);
	exclude_free(&x);
}
