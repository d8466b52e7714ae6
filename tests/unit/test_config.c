/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vunify.conf(5) parser, exclude rule precedence, Prometheus path and
 * label escaping (all from vunify's library). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vunify/config.h"
#include "vunify/prometheus.h"
#include "vunify/vunify.h"

static int parse(struct vconfig *c, const char *text, bool system, char *err, size_t len)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int r;

	cr_assert(f);
	r = config_parse(c, f, "test.conf", system, err, len);
	fclose(f);
	return r;
}

static void bad(const char *text, const char *want)
{
	struct vconfig c;
	char err[1024] = "";

	config_init(&c);
	cr_expect_lt(parse(&c, text, true, err, sizeof(err)), 0, "accepted: %s", text);
	cr_expect_str_eq(err, want, "for %s", text);
	config_free(&c);
}

Test(config, good)
{
	struct vconfig c;
	char err[256] = "";

	config_init(&c);
	cr_assert_eq(parse(&c,
			   "# comment\n\n  ignore-mtime = yes  \ninclude-empty=off\n"
			   "exclude = - /proc/\nexclude = + /etc/keep\nexclude = *.log\n"
			   "prometheus-dir = /var/lib/prometheus\npool = /vservers\npool = /b\n",
			   true, err, sizeof(err)),
		     0, "%s", err);
	cr_expect_eq(c.ignore_mtime, 1);
	cr_expect_eq(c.include_empty, 0);
	cr_assert_eq(c.excludes.n, 3);
	cr_expect_str_eq(c.excludes.rules[0].pattern, "/proc");
	cr_expect(c.excludes.rules[0].dir_only && !c.excludes.rules[0].include);
	cr_expect(c.excludes.rules[1].include);
	cr_expect(!c.excludes.rules[2].anchored);
	cr_expect_str_eq(c.prometheus_dir, "/var/lib/prometheus");
	cr_assert_eq(c.npools, 2);
	cr_expect_str_eq(c.pools[1], "/b");
	cr_expect_eq(c.mtime_rules.n, 0, "exclude rules are not ignore-mtime-path rules");
	config_free(&c);
}

Test(config, ignore_mtime_path)
{
	struct vconfig c;
	char err[256] = "";

	config_init(&c);
	cr_assert_eq(parse(&c,
			   "ignore-mtime-path = /var/lib/apt/lists/\n"
			   "ignore-mtime-path = + /var/cache/apt/*.bin\n"
			   "ignore-mtime-path = - *.deb\n",
			   true, err, sizeof(err)),
		     0, "%s", err);
	cr_expect_eq(c.excludes.n, 0, "ignore-mtime-path rules are not exclude rules");
	cr_assert_eq(c.mtime_rules.n, 3);
	cr_expect_str_eq(c.mtime_rules.rules[0].pattern, "/var/lib/apt/lists");
	cr_expect(c.mtime_rules.rules[0].dir_only && c.mtime_rules.rules[0].anchored);
	cr_expect(!c.mtime_rules.rules[0].include);
	cr_expect(c.mtime_rules.rules[1].include);
	cr_expect(!c.mtime_rules.rules[2].anchored && !c.mtime_rules.rules[2].include);
	cr_expect(exclude_match(&c.mtime_rules, "/var/lib/apt/lists", true));
	cr_expect(!exclude_match(&c.mtime_rules, "/var/cache/apt/srcpkgcache.bin", false));
	cr_expect(exclude_match(&c.mtime_rules, "/var/cache/apt/archives/bash.deb", false));
	cr_expect(!exclude_match(&c.mtime_rules, "/etc/passwd", false));
	config_free(&c);
}

Test(config, unset_stays_unset)
{
	struct vconfig c;
	char err[256];

	config_init(&c);
	cr_assert_eq(parse(&c, "", true, err, sizeof(err)), 0);
	cr_expect_eq(c.ignore_mtime, -1);
	cr_expect_eq(c.include_empty, -1);
	cr_expect_null(c.prometheus_dir);
	config_free(&c);
}

Test(config, errors_name_file_and_line)
{
	bad("colour = blue\n", "test.conf:1: unknown key 'colour'");
	bad("\n# x\nignore-mtime\n", "test.conf:3: expected 'key = value'");
	bad("= yes\n", "test.conf:1: expected 'key = value': no key before '='");
	bad("ignore-mtime = maybe\n", "test.conf:1: ignore-mtime wants yes or no, not 'maybe'");
	bad("include-empty =\n", "test.conf:1: include-empty wants yes or no, not ''");
	bad("exclude =\n", "test.conf:1: exclude: a rule without a pattern");
	bad("exclude = +\n", "test.conf:1: exclude: a rule without a pattern");
	bad("exclude = # x\n", "test.conf:1: exclude: a rule without a pattern");
	bad("ignore-mtime-path =\n", "test.conf:1: ignore-mtime-path: a rule without a pattern");
	bad("\nignore-mtime-path = -\n", "test.conf:2: ignore-mtime-path: a rule without a pattern");
	bad("ignore-mtime-path = + \n", "test.conf:1: ignore-mtime-path: a rule without a pattern");
	bad("prometheus-dir = rel\n", "test.conf:1: prometheus-dir wants an absolute path, not 'rel'");
	bad("pool = vservers\n", "test.conf:1: pool wants an absolute path, not 'vservers'");
	bad("exclude-from = x\n", "test.conf:1: exclude-from wants an absolute path, not 'x'");
	bad("exclude-from = /nonexistent/rules\n",
	    "test.conf:1: exclude-from: /nonexistent/rules: No such file or directory");
}

Test(config, nul_byte)
{
	static const char text[] = "ignore-mtime = yes\nexclude = /a\0b\n";
	struct vconfig c;
	char err[256];
	FILE *f = fmemopen((void *)text, sizeof(text) - 1, "r");

	config_init(&c);
	cr_expect_eq(config_parse(&c, f, "t", true, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "t:2: a NUL byte in the line");
	fclose(f);
	config_free(&c);
}

Test(config, pool_key_only_in_system_file)
{
	struct vconfig c;
	char err[256];

	config_init(&c);
	cr_expect_eq(parse(&c, "pool = /x\n", false, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "test.conf:1: 'pool' belongs in the system configuration, not a pool's");
	config_free(&c);
}

Test(config, merge_precedence)
{
	struct options o = { 0 };
	struct vconfig pool, sys;
	char err[256];

	config_init(&pool);
	config_init(&sys);
	cr_assert_eq(exclude_add(&o.excludes, "+ /etc/shadow", err, sizeof(err)), 0);
	cr_assert_eq(parse(&pool, "include-empty = no\nexclude = - /usr/*\n"
				  "ignore-mtime-path = + /var/cache/apt/x.deb\n",
			   false, err, sizeof(err)),
		     0);
	cr_assert_eq(parse(&sys, "include-empty = yes\nignore-mtime = yes\nexclude = - /etc/shadow\n"
				 "exclude = + /usr/bin\nprometheus-dir = /m\n"
				 "ignore-mtime-path = /var/cache/apt/*.deb\n",
			   true, err, sizeof(err)),
		     0);
	cr_assert_eq(config_merge(&o, &pool, &sys), 0);
	cr_expect(!o.include_empty, "the pool's 'no' beats the system's 'yes'");
	cr_expect(o.ignore_mtime, "the system's setting applies when the pool has none");
	cr_expect_str_eq(o.prometheus_dir, "/m");
	cr_expect(!exclude_match(&o.excludes, "/etc/shadow", false), "command line first");
	cr_expect(exclude_match(&o.excludes, "/usr/bin", true), "pool rule before system rule");
	cr_expect(!exclude_match(&o.excludes, "/var/x", false));
	cr_assert_eq(o.mtime_rules.n, 2);
	cr_expect(!exclude_match(&o.mtime_rules, "/var/cache/apt/x.deb", false),
		  "pool's ignore-mtime-path rule before the system's");
	cr_expect(exclude_match(&o.mtime_rules, "/var/cache/apt/y.deb", false));
	cr_expect_eq(o.excludes.n, 4, "ignore-mtime-path rules did not leak into the excludes");
	options_free(&o);
	config_free(&pool);
	config_free(&sys);
}

Test(config, shipped_default_validates)
{
	const char *src = getenv("SRCDIR");
	char path[4096], err[1024] = "";
	struct vconfig c;

	cr_assert(src, "SRCDIR not set");
	snprintf(path, sizeof(path), "%s/vunify/vunify.conf", src);
	config_init(&c);
	cr_assert_eq(config_load(&c, path, true, false, err, sizeof(err)), 0, "%s", err);
	cr_expect(exclude_match(&c.excludes, "/etc/shadow", false));
	cr_expect(exclude_match(&c.excludes, "/etc/ssh/ssh_host_rsa_key", false));
	cr_expect(exclude_match(&c.excludes, "/proc", true));
	cr_expect(exclude_match(&c.excludes, "/var/log", true));
	cr_expect(!exclude_match(&c.excludes, "/usr/bin/ls", false));
	cr_expect(!exclude_match(&c.excludes, "/etc/ssh/sshd_config", false));
	/* ignore-mtime-path: apt's lists and .debs, debconf's template cache;
	 * not apt's binary caches (apt reads their mtime), nor debconf's
	 * answers, nor anything in /etc or dpkg's database. */
	cr_expect(exclude_match(&c.mtime_rules, "/var/lib/apt/lists", true));
	cr_expect(exclude_match(&c.mtime_rules, "/var/cache/apt/archives", true));
	cr_expect(exclude_match(&c.mtime_rules, "/var/cache/debconf/templates.dat", false));
	cr_expect(exclude_match(&c.mtime_rules, "/var/cache/debconf/templates.dat-old", false));
	cr_expect(!exclude_match(&c.mtime_rules, "/var/cache/debconf/config.dat", false));
	cr_expect(!exclude_match(&c.mtime_rules, "/var/cache/debconf/passwords.dat", false));
	cr_expect(!exclude_match(&c.mtime_rules, "/var/cache/apt", true));
	cr_expect(!exclude_match(&c.mtime_rules, "/var/cache/apt/pkgcache.bin", false));
	cr_expect(!exclude_match(&c.mtime_rules, "/var/lib/dpkg", true));
	cr_expect(!exclude_match(&c.mtime_rules, "/etc", true));
	cr_expect(!exclude_match(&c.mtime_rules, "/etc/apt/sources.list", false));
	config_free(&c);
}

Test(prometheus, path_from_dir)
{
	struct options o = { 0 };
	bool oom;
	char *p;

	cr_expect_null(prom_path(&o, "gc", "/vservers", &oom));
	o.prometheus_dir = "/m";
	p = prom_path(&o, "unify", "/srv/guests/", &oom);
	cr_expect_str_eq(p, "/m/vunify_unify_srv_guests.prom");
	free(p);
	p = prom_path(&o, "gc", "/", &oom);
	cr_expect_str_eq(p, "/m/vunify_gc_root.prom");
	free(p);
	o.prometheus = "/x/y.prom";
	p = prom_path(&o, "gc", "/vservers", &oom);
	cr_expect_str_eq(p, "/x/y.prom", "--prometheus wins");
	free(p);
}

Test(prometheus, label_escaping)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	prom_label_value(f, "a\"b\\c\nd\xff");
	fclose(f);
	cr_expect_str_eq(buf, "a\\\"b\\\\c\\nd\\\\xff");
	free(buf);
}
