/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The skeleton of every command (see vunify/command.h). */
#include "vunify/command.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vunify/config.h"

/* Returned by the steps below when the command goes on. */
#define GO_ON (-1)
/* Room for the shared options, a command's own and the terminator. */
#define MAX_LONGOPTS 32

static const struct {
	unsigned bit;
	const char *shortopt;	/* NULL: long only */
	struct option longopt;
} shared[] = {
	{ CMD_DRY_RUN, "n", { "dry-run", no_argument, NULL, 'n' } },
	{ CMD_JSON, NULL, { "json", no_argument, NULL, CMD_OPT_JSON } },
	{ CMD_PROMETHEUS, NULL, { "prometheus", required_argument, NULL, CMD_OPT_PROMETHEUS } },
	{ CMD_CONFIG, "c:", { "config", required_argument, NULL, 'c' } },
	{ CMD_VERBOSE, "v", { "verbose", no_argument, NULL, 'v' } },
	{ CMD_QUIET, "q", { "quiet", no_argument, NULL, 'q' } },
};

void options_free(struct options *o)
{
	exclude_free(&o->excludes);
	exclude_free(&o->secrets);
	exclude_free(&o->secrets_empty);
	exclude_free(&o->mtime_rules);
	free(o->prometheus_dir);
	o->prometheus_dir = NULL;
}

/* The shared options @spec takes, then its own, then -h: one getopt table
 * (@longs, @shorts) for one pass over the command line. */
static void merge_options(const struct command *spec, struct option *longs, char *shorts,
			  size_t shortlen)
{
	size_t n = 0;

	snprintf(shorts, shortlen, "+");
	for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++) {
		if (!(spec->common & shared[i].bit))
			continue;
		longs[n++] = shared[i].longopt;
		if (shared[i].shortopt)
			strncat(shorts, shared[i].shortopt, shortlen - strlen(shorts) - 1);
	}
	for (const struct option *o = spec->longopts; o && o->name; o++) {
		assert(n < MAX_LONGOPTS - 2);
		longs[n++] = *o;
	}
	longs[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	longs[n] = (struct option){ 0 };
	strncat(shorts, spec->shortopts, shortlen - strlen(shorts) - 1);
	strncat(shorts, "h", shortlen - strlen(shorts) - 1);
}

/* A shared option: true when it was one. */
static bool shared_option(struct options *o, int opt, const char *arg)
{
	switch (opt) {
	case 'n': o->dry_run = true; return true;
	case CMD_OPT_JSON: o->json = true; return true;
	case CMD_OPT_PROMETHEUS: o->prometheus = arg; return true;
	case 'c': o->config = arg; return true;
	case 'v': o->verbose++; return true;
	case 'q': o->verbose = -1; return true;
	default: return false;
	}
}

/* An option of the command's own that sets a bool: true when it was one. */
static bool own_flag(const struct command *spec, void *self, int opt)
{
	for (const struct cmd_flag *f = spec->flags; f && f->opt; f++) {
		if (f->opt == opt) {
			*(bool *)((char *)self + f->offset) = true;
			return true;
		}
	}
	return false;
}

/* Options and operands.  GO_ON, or the exit code (-h, a bad command line). */
static int parse(const struct command *spec, struct cmd *c, int argc, char **argv)
{
	struct option longs[MAX_LONGOPTS];
	char shorts[64];
	int opt, r, n;

	merge_options(spec, longs, shorts, sizeof(shorts));
	while ((opt = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		if (opt == 'h') {
			fputs(spec->help, stdout);
			return EXIT_OK;
		}
		if (opt == '?') {	/* getopt said what was wrong */
			fputs(spec->help, stderr);
			return EXIT_USAGE;
		}
		if (shared_option(&c->o, opt, optarg) || own_flag(spec, c->self, opt))
			continue;
		/* Only the command's own are left: getopt knows no others. */
		r = spec->option ? spec->option(c, opt, optarg) : EXIT_USAGE;
		if (r)
			return r;
	}
	n = argc - optind;
	if (n < spec->min_args || (spec->max_args >= 0 && n > spec->max_args)) {
		fputs(spec->help, stderr);
		return EXIT_USAGE;
	}
	c->o.progress = c->o.verbose >= 0 && isatty(STDERR_FILENO);
	if (n > 0) {	/* config may go without a POOL */
		c->poolpath = argv[optind];
		c->args = argv + optind + 1;
		c->nargs = n - 1;
	}
	return GO_ON;
}

/* Say what the pool's opening repaired (flags a crash left cleared). */
static void report_recovery(const char *path, const struct hashdb_pool *p)
{
	if (p->flags_restored > 0)
		msg_error("%s: restored the immutable flag of %d pool object%s left cleared by an "
			  "interrupted run%s", esc(path, 0), p->flags_restored,
			  p->flags_restored == 1 ? "" : "s",
			  p->flags_scanned ? " (every object checked after a reboot)" : "");
}

int pool_open(const char *path, bool create, bool lock, struct hashdb_pool *p)
{
	pid_t holder = 0;
	int r = hashdb_pool_open(path, create, p);

	if (r < 0) {
		msg_error("%s: cannot open pool: %s", esc(path, 0),
			  r == -ENOTDIR ? "not a directory" : strerror(-r));
		return EXIT_FATAL;
	}
	report_recovery(path, p);
	if (!lock || p->statefd < 0)
		return 0;	/* no state yet: nothing to lock, nothing to change */
	r = hashdb_pool_lock(p, &holder);
	if (r == 0)
		return 0;
	if (r == -EWOULDBLOCK && holder)
		msg_error("%s: another vunify run (pid %d) is working on this pool", esc(path, 0),
			  (int)holder);
	else if (r == -EWOULDBLOCK)
		msg_error("%s: another vunify run is working on this pool", esc(path, 0));
	else
		msg_error("%s: cannot lock pool: %s", esc(path, 0), strerror(-r));
	hashdb_pool_close(p);
	return r == -EWOULDBLOCK ? EXIT_LOCKED : EXIT_FATAL;
}

/* The guest operands, or every guest.  GO_ON, or the exit code. */
static int list_guests(const struct command *spec, struct cmd *c)
{
	int given = spec->guests == CMD_GUESTS_FIRST ? 1 : c->nargs, r;

	if (spec->guests == CMD_GUESTS_NONE)
		return GO_ON;
	r = guests_list(&c->pool, c->args, given, &c->guests);
	if (r == -EINVAL)
		return EXIT_USAGE;	/* a name that is no guest's: said already */
	if (r < 0) {
		msg_error("%s: cannot list the guests: %s", esc(c->poolpath, 0), strerror(-r));
		return EXIT_FATAL;
	}
	c->args += given;
	c->nargs -= given;
	return GO_ON;
}

/* The pool and the configuration.  0, or the exit code. */
static int open_pool(const struct command *spec, struct cmd *c)
{
	int rc;

	if (spec->pool == CMD_POOL_NONE)
		return 0;
	rc = pool_open(c->poolpath, spec->pool == CMD_POOL_CREATE && !c->o.dry_run,
		       spec->pool != CMD_POOL_READ, &c->pool);
	return rc ?: config_apply(&c->o, &c->pool);
}

int command_main(const struct command *spec, int argc, char **argv)
{
	struct cmd c = { .t0 = now_ms() };
	int rc;

	hashdb_pool_init(&c.pool);
	c.self = calloc(1, spec->self_size ? spec->self_size : 1);
	if (!c.self) {
		msg_error("out of memory");
		return EXIT_FATAL;
	}
	rc = parse(spec, &c, argc, argv);
	if (rc != GO_ON)
		goto out;
	rc = open_pool(spec, &c);
	if (rc)
		goto out;
	rc = list_guests(spec, &c);
	if (rc != GO_ON)
		goto out;
	rc = spec->run(&c);
out:
	guests_free(&c.guests);
	hashdb_pool_close(&c.pool);
	options_free(&c.o);
	free(c.self);
	return rc;
}
