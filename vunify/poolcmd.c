/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Opening and locking a pool the way every changing command does. */
#include <errno.h>
#include <string.h>

#include "vunify/vunify.h"

int pool_open_locked(const char *path, bool create, struct hashdb_pool *p)
{
	pid_t holder = 0;
	int r = hashdb_pool_open(path, create, p);

	if (r < 0) {
		msg_error("%s: cannot open pool: %s", esc(path, 0),
			  r == -ENOTDIR ? "not a directory" : strerror(-r));
		return EXIT_FATAL;
	}
	if (p->statefd < 0)
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
