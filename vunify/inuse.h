/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Is a guest in use?  vunify remove asks before it takes a guest apart.
 *
 * The guest's directory can be reached by other paths than POOL/GUEST: bind
 * mounts of it or of a directory above it, a cowfs mount serving the pool
 * (MNT/GUEST) or the guest alone (MNT).  /proc/self/mountinfo names them
 * all.  A use is
 *   - a mount whose root (field 4) is the guest or below, on a filesystem
 *     the guest is on (a bind mount of it; a cowfs mount of it alone);
 *   - a mount whose mountpoint is inside the guest, by any of its paths;
 *   - a process whose root or working directory is inside the guest: by
 *     path, or, when it is on the pool's filesystem, by inode, walking up
 *     through "..", so that a container in its own mount namespace (whose
 *     paths mean nothing here) is found too;
 *   - a process with an open file whose path is inside the guest (cowfs's
 *     own open files are not a use: they serve the processes, which are
 *     checked themselves).
 */
#ifndef VUNIFY_INUSE_H
#define VUNIFY_INUSE_H

#include "hashdb/pool.h"

/* Told each use found, as one line of text (names already escaped). */
typedef void (*inuse_fn)(void *ctx, const char *what);

/* Look for uses of guest @guest of the pool, under its own name and as
 * POOL/.removing~GUEST.  Returns how many were found (each told to @fn),
 * or a negative errno when the check itself could not be made. */
int guest_in_use(struct hashdb_pool *p, const char *guest, inuse_fn fn, void *ctx);

#endif
