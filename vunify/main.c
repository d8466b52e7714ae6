/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vunify: unify guest trees into CoW links; command dispatch. */
#include <stdio.h>
#include <string.h>

#include "vunify/command.h"
#include "vunify/vunify.h"

/* In the order vunify --help lists them. */
static const struct command *const commands[] = {
	&unify_command, &audit_command, &gc_command, &verify_command, &split_command,
	&remove_command, &clone_command, &config_command,
};

static void usage(FILE *f)
{
	fputs("Usage: vunify COMMAND [OPTIONS] POOL [GUEST...]\n\n"
	      "POOL is a directory whose subdirectories are guest roots; the pool's\n"
	      "state lives in POOL/.hashdb.\n\nCommands:\n", f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->what);
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
		if (!strcmp(argv[1], commands[i]->name))
			return command_main(commands[i], argc - 1, argv + 1);
	msg_error("unknown command '%s'", esc(argv[1], 0));
	usage(stderr);
	return EXIT_USAGE;
}
