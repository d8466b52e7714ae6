/* SPDX-License-Identifier: GPL-2.0-or-later */
/* XXH3-128 content hashing and the hex form used for object names. */
#ifndef HASHDB_HASH_H
#define HASHDB_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cowlink/cowlink.h"

struct hashdb_hash {
	unsigned char b[COWLINK_HASH_BYTES];
};

/* Hash the whole content of @fd (read from offset 0 to EOF); the number of
 * bytes read goes to *bytes.  @drop_cache asks the kernel to drop the pages
 * after reading (cold bulk runs should not evict the guests' working set). */
int hashdb_hash_fd(int fd, struct hashdb_hash *out, uint64_t *bytes, int drop_cache);
/* The same with the caller's read buffer of HASHDB_IO_CHUNK bytes, for
 * callers that hash file after file: a fresh 256 KiB buffer per file costs
 * page faults and a heap trim every time. */
#define HASHDB_IO_CHUNK ((size_t)1 << 18)
int hashdb_hash_fd_with(int fd, void *buf, struct hashdb_hash *out, uint64_t *bytes,
			int drop_cache);
void hashdb_hash_buf(const void *buf, size_t len, struct hashdb_hash *out);
void hashdb_hash_hex(const struct hashdb_hash *h, char hex[COWLINK_HEX_LEN + 1]);
/* Lower-case hex, the one form the pool's names use (objects, stat
 * caches): @n bytes of @buf as 2n digits and a NUL at @hex. */
void hashdb_hex_encode(const void *buf, size_t n, char *hex);
/* The first 2n characters of @hex into @n bytes at @buf; -EINVAL when one
 * is no lower-case hex digit. */
int hashdb_hex_decode(const char *hex, size_t n, void *buf);
int hashdb_hash_from_hex(const char *hex, struct hashdb_hash *h);

#endif
