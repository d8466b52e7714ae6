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

#include "cowlink/cowlink.h"
#include "hashdb/hash.h"

int hashdb_identity(const struct hashdb_hash *content, const struct cowlink_meta *m,
		    bool ignore_mtime, struct hashdb_hash *id);

#endif
