/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vunify: unify guest trees into CoW links; command dispatch. */
#include <stdio.h>
#include <string.h>

#include "vunify/config.h"
#include "vunify/vunify.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *what;
} commands[] = {
	{ "unify", cmd_unify, "turn identical files of the guests into CoW links" },
	{ "audit", cmd_audit, "show what each guest costs on disk" },
	{ "gc", cmd_gc, "remove pool objects no guest uses any more" },
	{ "verify", cmd_verify, "check every object and CoW link for bit rot or tampering" },
	{ "split", cmd_split, "turn a guest's CoW links back into private files" },
	{ "remove", cmd_remove, "delete guests whole and collect the objects only they used" },
	{ "config", cmd_config, "check the configuration and show the settings in force" },
};

static void usage(FILE *f)
{
	fputs("Usage: vunify COMMAND [OPTIONS] POOL [GUEST...]\n\n"
	      "POOL is a directory whose subdirectories are guest roots; the pool's\n"
	      "state lives in POOL/.hashdb.\n\nCommands:\n", f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].what);
	fputs("\n'vunify COMMAND --help' shows a command's options; vunify(8) has the rest.\n"
	      "  -h, --help      show this help\n"
	      "  -V, --version   show the version\n", f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("vunify %s\n", COWFS_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	msg_error("unknown command '%s'", esc(argv[1], 0));
	usage(stderr);
	return EXIT_USAGE;
}
