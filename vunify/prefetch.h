/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prefetch: read-ahead for a guest that vunify sees for the first time.
 * A thread walks the same tree in the same order as the unify walk and asks
 * the kernel to read each file the unify walk will hash (fadvise WILLNEED),
 * staying a bounded distance ahead (PREFETCH_FILES files, PREFETCH_BYTES
 * bytes).  Many reads are then in flight at once instead of one, and the
 * directories and inodes are read before the unify walk needs them.  It
 * only ever reads: the same walk (fd-relative, no symlinks followed, no
 * other filesystem) and the same open (O_PATH first, so no fifo or device
 * is opened) as the unify walk.
 */
#ifndef VUNIFY_PREFETCH_H
#define VUNIFY_PREFETCH_H

#include <stdint.h>

#include "vunify/exclude.h"

#define PREFETCH_FILES 1024
#define PREFETCH_BYTES ((uint64_t)128 << 20)
/* Few fds: the unify walk's own budget must not shrink (deep trees, low
 * ulimit -n). */
#define PREFETCH_DIR_FDS 8

struct prefetch;

/* Start on the guest root @rootfd (duplicated; the caller keeps its own).
 * @ex (may be NULL) must outlive prefetch_stop().  NULL when the thread
 * cannot start: the run is then only slower. */
struct prefetch *prefetch_start(int rootfd, const struct exclude *ex);
/* The unify walk reached one more regular, not excluded file of @size. */
void prefetch_reached(struct prefetch *pf, uint64_t size);
void prefetch_stop(struct prefetch *pf);

#endif
