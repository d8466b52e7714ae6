/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The stat cache: (dev, ino, size, mtime, ctime) -> identity, one file per
 * guest (POOL/.hashdb/cache/<hex of guest name>.sc), so a run holds only the
 * cache of the guest it is walking.  A nightly rerun over unchanged files
 * hashes nothing.
 *
 * File format (all little-endian, see man/vunify-pool.5):
 *   header  "VUSCACH1" u32 version=1, u32 entry size, u64 count, u64 XXH3-64
 *           of the entries
 *   entries sorted by (dev, ino)
 * Written to a new file, fsync'ed and renamed over the old one.  A cache
 * whose size, header or checksum is wrong is reported and rebuilt, never
 * trusted.
 */
#ifndef HASHDB_STATCACHE_H
#define HASHDB_STATCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HASHDB_SC_IGNORE_MTIME 1u /* identity computed with --ignore-mtime */
#define HASHDB_SC_OBJECT 2u	  /* inode was a verified, marked pool object */

struct hashdb_sc_entry {
	uint64_t dev, ino, size;
	int64_t mtime_s, ctime_s;
	uint32_t mtime_ns, ctime_ns;
	uint32_t flags, reserved;
	unsigned char id[16];
};

enum hashdb_sc_state { HASHDB_SC_EMPTY, HASHDB_SC_LOADED, HASHDB_SC_CORRUPT };

struct hashdb_statcache {
	int dirfd;
	char *file;
	struct hashdb_sc_entry *old, *cur;
	size_t nold, ncur, capcur;
	enum hashdb_sc_state state;
};

/* Load the cache @name from @dirfd.  A missing cache is EMPTY, a damaged one
 * CORRUPT (and empty); both return 0.  Negative errno on I/O errors. */
int hashdb_sc_load(int dirfd, const char *guest, struct hashdb_statcache *c);
const struct hashdb_sc_entry *hashdb_sc_lookup(const struct hashdb_statcache *c,
					       uint64_t dev, uint64_t ino);
int hashdb_sc_put(struct hashdb_statcache *c, const struct hashdb_sc_entry *e);
/* Write the entries put this run (skipped when identical to the old ones). */
int hashdb_sc_save(struct hashdb_statcache *c);
void hashdb_sc_free(struct hashdb_statcache *c);
/* The guest whose cache is the file @file of the cache directory, into
 * @guest (@len bytes, NUL included).  -EINVAL when @file is no cache's name
 * (a temporary file of a save in progress, or not ours). */
int hashdb_sc_guest_of(const char *file, char *guest, size_t len);
/* Remove the cache of @guest (vunify remove).  1 removed (with @dry_run:
 * exists), 0 there was none, negative errno. */
int hashdb_sc_remove(int dirfd, const char *guest, bool dry_run);

#endif
