/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vunify.conf(5): the system and per-pool configuration, and `vunify config`. */
#include "vunify/config.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hashdb/pool.h"
#include "vunify/command.h"
#include "vunify/vunify.h"

void config_init(struct vconfig *c)
{
	memset(c, 0, sizeof(*c));
	c->ignore_mtime = c->include_empty = -1;
}

void config_free(struct vconfig *c)
{
	exclude_free(&c->excludes);
	exclude_free(&c->secrets);
	exclude_free(&c->secrets_empty);
	exclude_free(&c->mtime_rules);
	free(c->prometheus_dir);
	for (size_t i = 0; i < c->npools; i++)
		free(c->pools[i]);
	free(c->pools);
	config_init(c);
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcmp(v, yes[i]))
			return *out = 1, 0;
		if (!strcmp(v, no[i]))
			return *out = 0, 0;
	}
	return -EINVAL;
}

static int add_pool(struct vconfig *c, const char *v)
{
	char **n = realloc(c->pools, (c->npools + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	c->pools = n;
	c->pools[c->npools] = strdup(v);
	if (!c->pools[c->npools])
		return -ENOMEM;
	c->npools++;
	return 0;
}

/* One rule of @key (exclude, ignore-mtime-path) in the exclude syntax. */
static int add_rule(struct exclude *x, const char *key, const char *val, char *why, size_t len)
{
	char inner[128];
	int r;

	if (!*val || *val == '#' || !strcmp(val, "-") || !strcmp(val, "+")) {
		snprintf(why, len, "%s: a rule without a pattern", key);
		return -EINVAL;
	}
	r = exclude_add(x, val, inner, sizeof(inner));
	if (r == -EINVAL)
		snprintf(why, len, "%s: %s", key, inner);
	return r;
}

/* One "key = value" line; the reason for a bad one goes to @why. */
static int parse_line(struct vconfig *c, char *line, bool system, char *why, size_t len)
{
	char *eq = strchr(line, '='), *key, *val;
	int r;

	if (!eq) {
		snprintf(why, len, "expected 'key = value'");
		return -EINVAL;
	}
	*eq = '\0';
	key = trim(line);
	val = trim(eq + 1);
	if (!*key) {
		snprintf(why, len, "expected 'key = value': no key before '='");
		return -EINVAL;
	}
	if (!strcmp(key, "exclude"))
		return add_rule(&c->excludes, key, val, why, len);
	if (!strcmp(key, "secret"))
		return add_rule(&c->secrets, key, val, why, len);
	if (!strcmp(key, "secret-empty"))
		return add_rule(&c->secrets_empty, key, val, why, len);
	if (!strcmp(key, "ignore-mtime-path"))
		return add_rule(&c->mtime_rules, key, val, why, len);
	if (!strcmp(key, "exclude-from")) {
		char inner[512];

		if (*val != '/') {
			snprintf(why, len, "exclude-from wants an absolute path, not '%s'", val);
			return -EINVAL;
		}
		r = exclude_load(&c->excludes, val, inner, sizeof(inner));
		if (r < 0)
			snprintf(why, len, "exclude-from: %s", inner);
		return r;
	}
	if (!strcmp(key, "ignore-mtime") || !strcmp(key, "include-empty")) {
		int *dst = key[1] == 'g' ? &c->ignore_mtime : &c->include_empty;

		if (parse_bool(val, dst) < 0) {
			snprintf(why, len, "%s wants yes or no, not '%s'", key, val);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(key, "prometheus-dir")) {
		if (*val != '/') {
			snprintf(why, len, "prometheus-dir wants an absolute path, not '%s'", val);
			return -EINVAL;
		}
		free(c->prometheus_dir);
		c->prometheus_dir = strdup(val);
		return c->prometheus_dir ? 0 : -ENOMEM;
	}
	if (!strcmp(key, "pool")) {
		if (!system) {
			snprintf(why, len, "'pool' belongs in the system configuration, not a pool's");
			return -EINVAL;
		}
		if (*val != '/') {
			snprintf(why, len, "pool wants an absolute path, not '%s'", val);
			return -EINVAL;
		}
		return add_pool(c, val);
	}
	snprintf(why, len, "unknown key '%s'", key);
	return -EINVAL;
}

int config_parse(struct vconfig *c, FILE *f, const char *name, bool system, char *err,
		 size_t errlen)
{
	char *line = NULL, why[768];
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int r = 0;

	while ((n = getline(&line, &cap, f)) >= 0) {
		size_t len = (size_t)n;
		char *s;

		lineno++;
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		if (strlen(line) != len) {
			snprintf(err, errlen, "%s:%zu: a NUL byte in the line", name, lineno);
			r = -EINVAL;
			break;
		}
		s = trim(line);
		if (!*s || *s == '#')
			continue;
		r = parse_line(c, s, system, why, sizeof(why));
		if (r < 0) {
			snprintf(err, errlen, "%s:%zu: %s", name, lineno, why);
			break;
		}
	}
	if (r == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: read error", name);
		r = -EIO;
	}
	free(line);
	return r;
}

int config_load(struct vconfig *c, const char *path, bool system, bool missing_ok, char *err,
		size_t errlen)
{
	FILE *f = fopen(path, "re");
	int r;

	if (!f) {
		r = -errno;
		if (r == -ENOENT && missing_ok)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	r = config_parse(c, f, path, system, err, errlen);
	fclose(f);
	return r;
}

const char *config_system_path(const char *given)
{
	const char *env = getenv("VUNIFY_CONFIG");

	if (given)
		return given;
	if (env && *env)
		return env;
	return VUNIFY_SYSCONF;
}

/* The built-in path when nothing names another one: only that one may be
 * missing (a file named by --config or $VUNIFY_CONFIG must exist). */
static const char *default_path(const char *given)
{
	const char *env = getenv("VUNIFY_CONFIG");

	return given || (env && *env) ? NULL : config_system_path(NULL);
}

/* POOL/.hashdb/config, opened through the pool's state fd. */
static int load_pool_config(struct vconfig *c, struct hashdb_pool *p, char *err, size_t len)
{
	FILE *f;
	int fd, r;

	if (p->statefd < 0)
		return 0;
	fd = openat(p->statefd, "config", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, len, "%s/config: %s", HASHDB_DIR, strerror(errno));
		return -errno;
	}
	f = fdopen(fd, "re");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	r = config_parse(c, f, "POOL/" HASHDB_DIR "/config", false, err, len);
	fclose(f);
	return r;
}

static int append_rules(struct exclude *dst, const struct exclude *src)
{
	for (size_t i = 0; i < src->n; i++) {
		struct exclude_rule *n = realloc(dst->rules, (dst->n + 1) * sizeof(*n));

		if (!n)
			return -ENOMEM;
		dst->rules = n;
		dst->rules[dst->n] = src->rules[i];
		dst->rules[dst->n].pattern = strdup(src->rules[i].pattern);
		if (!dst->rules[dst->n].pattern)
			return -ENOMEM;
		dst->n++;
	}
	return 0;
}

int config_merge(struct options *o, const struct vconfig *pool, const struct vconfig *sys)
{
	int r;

	if (!o->ignore_mtime)
		o->ignore_mtime = pool->ignore_mtime >= 0 ? pool->ignore_mtime
							  : sys->ignore_mtime == 1;
	if (!o->include_empty)
		o->include_empty = pool->include_empty >= 0 ? pool->include_empty
							    : sys->include_empty == 1;
	if (!o->prometheus_dir) {
		const char *d = pool->prometheus_dir ? pool->prometheus_dir : sys->prometheus_dir;

		if (d && !(o->prometheus_dir = strdup(d)))
			return -ENOMEM;
	}
	r = append_rules(&o->excludes, &pool->excludes);
	r = r ?: append_rules(&o->excludes, &sys->excludes);
	r = r ?: append_rules(&o->secrets, &pool->secrets);
	r = r ?: append_rules(&o->secrets, &sys->secrets);
	r = r ?: append_rules(&o->secrets_empty, &pool->secrets_empty);
	r = r ?: append_rules(&o->secrets_empty, &sys->secrets_empty);
	r = r ?: append_rules(&o->mtime_rules, &pool->mtime_rules);
	return r ?: append_rules(&o->mtime_rules, &sys->mtime_rules);
}

int config_apply(struct options *o, struct hashdb_pool *p)
{
	struct vconfig sys, pool;
	const char *path = config_system_path(o->config);
	char err[1024];
	int r, rc = 0;

	config_init(&sys);
	config_init(&pool);
	/* The default file may be missing; one named explicitly must exist. */
	r = config_load(&sys, path, true, path == default_path(o->config), err, sizeof(err));
	r = r ?: load_pool_config(&pool, p, err, sizeof(err));
	r = r ?: config_merge(o, &pool, &sys);
	if (r < 0) {
		if (r == -ENOMEM)
			msg_error("out of memory");
		else
			msg_error("%s", err);
		rc = EXIT_USAGE;
	}
	config_free(&sys);
	config_free(&pool);
	return rc;
}

/* ---- vunify config -------------------------------------------------------- */

static const char help[] =
	"Usage: vunify config [OPTIONS] [POOL]\n"
	"Check the configuration and print the settings a run on POOL would use.\n\n"
	"  -c, --config FILE  system configuration (default " VUNIFY_SYSCONF ")\n"
	"      --pools        print only the pools of the system configuration\n"
	"  -h, --help         show this help\n";

static void print_rules(const char *key, const struct exclude *x)
{
	for (size_t i = 0; i < x->n; i++) {
		const struct exclude_rule *r = &x->rules[i];

		printf("%s = %c %s%s\n", key, r->include ? '+' : '-', r->pattern,
		       r->dir_only ? "/" : "");
	}
}

static void print_effective(const struct options *o)
{
	printf("ignore-mtime = %s\n", o->ignore_mtime ? "yes" : "no");
	printf("include-empty = %s\n", o->include_empty ? "yes" : "no");
	if (o->prometheus_dir)
		printf("prometheus-dir = %s\n", o->prometheus_dir);
	print_rules("exclude", &o->excludes);
	print_rules("secret", &o->secrets);
	print_rules("secret-empty", &o->secrets_empty);
	print_rules("ignore-mtime-path", &o->mtime_rules);
}

/* --pools: the pools of the system configuration, for the cron job. */
static int print_pools(const struct options *o)
{
	struct vconfig sys;
	const char *path = config_system_path(o->config);
	char err[1024];
	int r;

	config_init(&sys);
	r = config_load(&sys, path, true, path == default_path(o->config), err, sizeof(err));
	if (r < 0)
		msg_error("%s", err);
	for (size_t i = 0; r == 0 && i < sys.npools; i++)
		printf("%s\n", sys.pools[i]);
	config_free(&sys);
	return r < 0 ? EXIT_USAGE : EXIT_OK;
}

struct config_cmd {
	bool pools;	/* --pools */
};

static int run(struct cmd *c)
{
	struct config_cmd *cc = c->self;
	int rc;

	if (cc->pools)
		return print_pools(&c->o);
	/* Only reads: the pool, if one is given, is not locked. */
	rc = c->poolpath ? pool_open(c->poolpath, false, false, &c->pool) : 0;
	rc = rc ?: config_apply(&c->o, &c->pool);
	if (rc == 0)
		print_effective(&c->o);
	return rc;
}

static const struct option longopts[] = {
	{ "pools", no_argument, NULL, 'P' },
	{ 0 }
};

static const struct cmd_flag flags[] = {
	{ 'P', offsetof(struct config_cmd, pools) },
	{ 0 }
};

const struct command config_command = {
	.name = "config",
	.what = "check the configuration and show the settings in force",
	.help = help,
	.common = CMD_CONFIG,
	.shortopts = "",
	.longopts = longopts,
	.flags = flags,
	.min_args = 0, .max_args = 1,
	.pool = CMD_POOL_NONE,
	.guests = CMD_GUESTS_NONE,
	.run = run,
	.self_size = sizeof(struct config_cmd),
};
