/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The skeleton every command (unify, audit, gc, verify, split, remove,
 * clone, config) runs in, so that a command file holds its own logic and nothing
 * else:
 *
 *   1. the options: the shared ones the command takes (-n, --json,
 *      --prometheus, -c, -v, -q; -h always) and its own, parsed in one pass
 *      against one merged table;
 *   2. the operands: POOL, then guests and whatever else the command takes;
 *   3. the pool opened, and locked unless the command only reads, with the
 *      messages and exit codes of vunify(8); the configuration applied
 *      (config does both itself: it may run without a pool);
 *   4. the guests listed (those named, or every guest of the pool);
 *   5. the command's run(), which returns the exit code;
 *   6. one cleanup of all of the above.
 */
#ifndef VUNIFY_COMMAND_H
#define VUNIFY_COMMAND_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hashdb/pool.h"
#include "vunify/vunify.h"

/* The shared options; a command names those it takes. */
enum {
	CMD_DRY_RUN = 1 << 0,	/* -n, --dry-run */
	CMD_JSON = 1 << 1,	/* --json */
	CMD_PROMETHEUS = 1 << 2,	/* --prometheus FILE */
	CMD_CONFIG = 1 << 3,	/* -c, --config FILE */
	CMD_VERBOSE = 1 << 4,	/* -v, --verbose */
	CMD_QUIET = 1 << 5,	/* -q, --quiet */
};

/* The getopt values of the shared long-only options; a command's own
 * options use characters (below 0x100). */
enum { CMD_OPT_JSON = 0x100, CMD_OPT_PROMETHEUS };

enum cmd_pool {
	CMD_POOL_NONE,		/* not opened: the command opens what it needs (config) */
	CMD_POOL_READ,		/* opened, not locked (audit only reads) */
	CMD_POOL_LOCKED,	/* opened and locked; no state is created */
	CMD_POOL_CREATE,	/* locked, its state created unless --dry-run */
};

enum cmd_guests {
	CMD_GUESTS_NONE,	/* no guest operands (gc) */
	CMD_GUESTS_ALL,		/* the guests named, or every guest of the pool */
	CMD_GUESTS_FIRST,	/* the first operand after POOL; the rest are args */
};

struct cmd;

/* An option of a command's own that sets a bool in its state. */
struct cmd_flag {
	int opt;		/* its getopt value */
	size_t offset;		/* offsetof(the command's state, the bool) */
};

struct command {
	const char *name;		/* on the command line: vunify NAME ... */
	const char *what;		/* one line for vunify --help */
	const char *help;		/* the --help text */
	unsigned common;		/* CMD_* options it takes */
	const char *shortopts;		/* its own short options ("" for none) */
	const struct option *longopts;	/* its own long options, { 0 }-ended, or NULL */
	const struct cmd_flag *flags;	/* own options that set a bool, { 0 }-ended */
	/* Any other own option: 0, or the exit code (the message printed). */
	int (*option)(struct cmd *c, int opt, const char *arg);
	int min_args, max_args;		/* operands, POOL included; max -1: no limit */
	enum cmd_pool pool;
	enum cmd_guests guests;
	int (*run)(struct cmd *c);	/* the command's logic: the exit code */
	size_t self_size;		/* its own state (zeroed): struct cmd's self */
};

/* What the skeleton hands to the command's option() and run(). */
struct cmd {
	void *self;			/* the command's own state */
	struct options o;
	const char *poolpath;		/* POOL as given, for messages and metrics */
	struct hashdb_pool pool;
	struct guests guests;
	char **args;			/* operands after the guests (split's PATHs) */
	int nargs;
	uint64_t t0;			/* when the command started (now_ms) */
};

/* Run the command @spec on its command line (argv[0] is the command's
 * name).  Returns the exit code. */
int command_main(const struct command *spec, int argc, char **argv);

/* The commands, each in the file of its name. */
extern const struct command unify_command, audit_command, gc_command, verify_command,
	split_command, remove_command, clone_command, config_command;

/* Open POOL with the messages and exit codes of vunify(8) (what the
 * opening repaired said on stderr): 0, or EXIT_FATAL / EXIT_LOCKED after
 * printing why.  @create: make the pool's state if there is none; @lock:
 * take the run lock (a pool without state has nothing to lock). */
int pool_open(const char *path, bool create, bool lock, struct hashdb_pool *p);

#endif
