/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The identity key of a file: XXH3-128 over (content hash || the canonical
 * metadata record of cowlink_meta_serialize).  Two files with one identity
 * are *proposed* for unification; the bytes and metadata are still compared
 * before anything is linked, because XXH3 is not collision-resistant.
 */
#ifndef HASHDB_IDENTITY_H
#define HASHDB_IDENTITY_H

#include <stdbool.h>
#include <stdint.h>

#include "cowlink/cowlink.h"
#include "hashdb/hash.h"

int hashdb_identity(const struct hashdb_hash *content, const struct cowlink_meta *m,
		    bool ignore_mtime, struct hashdb_hash *id);
/*
 * Is the identity of the open file @fd (content and metadata) still @hex,
 * the name of the object it is?  An object made with --ignore-mtime is
 * named by the identity without mtime, and one pool holds both kinds, so
 * both are tried.  1 yes, 0 no, negative errno.  The bytes read go to
 * *bytes; @drop_cache as for hashdb_hash_fd.
 */
int hashdb_identity_matches(int fd, const char *hex, int drop_cache, uint64_t *bytes);

#endif
