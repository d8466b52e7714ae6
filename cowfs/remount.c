/* cowfs/remount.c: `mount -o remount,ro MOUNTPOINT` of a cowfs mount.
 *
 * mount(8) hands a remount of a fuse.cowfs mount to mount.fuse3, which
 * starts cowfs again with every option of the mount plus "remount".  That
 * second cowfs must not serve anything: the running daemon keeps serving,
 * and this one only asks the kernel to change the mount's flags (ro/rw,
 * nosuid, nodev, noexec, atime, sync) with mount(2) MS_REMOUNT, then exits.
 * mount(8) passes the whole option set, so flags the user did not name keep
 * their current value.
 */
#include "cowfs/cowfs.h"

#include <errno.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/vfs.h>

struct flag_word {
	const char *name;
	unsigned long set, clear;
};

static const struct flag_word words[] = {
	{ "ro", MS_RDONLY, 0 },		{ "rw", 0, MS_RDONLY },
	{ "nosuid", MS_NOSUID, 0 },	{ "suid", 0, MS_NOSUID },
	{ "nodev", MS_NODEV, 0 },	{ "dev", 0, MS_NODEV },
	{ "noexec", MS_NOEXEC, 0 },	{ "exec", 0, MS_NOEXEC },
	{ "sync", MS_SYNCHRONOUS, 0 },	{ "async", 0, MS_SYNCHRONOUS },
	{ "dirsync", MS_DIRSYNC, 0 },
	{ "nodiratime", MS_NODIRATIME, 0 }, { "diratime", 0, MS_NODIRATIME },
	{ "lazytime", MS_LAZYTIME, 0 },	{ "nolazytime", 0, MS_LAZYTIME },
	{ "noatime", MS_NOATIME, MS_RELATIME | MS_STRICTATIME },
	{ "relatime", MS_RELATIME, MS_NOATIME | MS_STRICTATIME },
	{ "strictatime", MS_STRICTATIME, MS_NOATIME | MS_RELATIME },
	{ "atime", 0, MS_NOATIME },
};

/* Apply one comma-separated -o value to *flags; true if it says "remount". */
static bool apply_opts(const char *opts, unsigned long *flags)
{
	char *copy = strdup(opts), *save = NULL, *w;
	bool remount = false;

	if (!copy)
		return false;
	for (w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		if (strcmp(w, "remount") == 0)
			remount = true;
		for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
			if (strcmp(w, words[i].name) == 0) {
				*flags = (*flags & ~words[i].clear) | words[i].set;
				break;
			}
		}
	}
	free(copy);
	return remount;
}

/* Walk argv the way cowfs's command line reads it: "-o X" or "-oX" carry
 * options, the second operand is the mountpoint. */
static bool scan_args(int argc, char **argv, unsigned long *flags, const char **mnt)
{
	bool remount = false;
	int operands = 0;

	for (int i = 1; i < argc; i++) {
		const char *opts = NULL;

		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			opts = argv[++i];
		else if (strncmp(argv[i], "-o", 2) == 0)
			opts = argv[i] + 2;
		else if (argv[i][0] != '-' && ++operands == 2)
			*mnt = argv[i];
		if (opts && apply_opts(opts, flags))
			remount = true;
	}
	return remount;
}

int cf_remount(int argc, char **argv)
{
	unsigned long flags = 0;
	const char *mnt = NULL;
	struct statfs sfs;

	if (!scan_args(argc, argv, &flags, &mnt))
		return CF_NOT_REMOUNT;
	if (!mnt) {
		fprintf(stderr, COWFS_PROG ": remount: no mountpoint given\n");
		return 1;
	}
	if (statfs(mnt, &sfs) < 0) {
		fprintf(stderr, COWFS_PROG ": remount: %s: %s\n", mnt, strerror(errno));
		return 1;
	}
	if (sfs.f_type != FUSE_SUPER_MAGIC) {
		fprintf(stderr, COWFS_PROG ": remount: %s is not a cowfs mount\n", mnt);
		return 1;
	}
	if (mount(NULL, mnt, NULL, MS_REMOUNT | flags, NULL) < 0) {
		fprintf(stderr, COWFS_PROG ": remount: %s: %s\n", mnt, strerror(errno));
		return 1;
	}
	return 0;
}
