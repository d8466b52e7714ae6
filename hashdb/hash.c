/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "hashdb/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

static void canonical(XXH128_hash_t h, struct hashdb_hash *out)
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, h);
	memcpy(out->b, c.digest, sizeof(out->b));
}

void hashdb_hash_buf(const void *buf, size_t len, struct hashdb_hash *out)
{
	canonical(XXH3_128bits(buf, len), out);
}

int hashdb_hash_fd_with(int fd, void *buf, struct hashdb_hash *out, uint64_t *bytes,
			int drop_cache)
{
	XXH3_state_t *st = XXH3_createState();
	uint64_t total = 0;
	off_t off = 0;
	int r = 0;

	if (!st) {
		r = -ENOMEM;
		goto out;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	XXH3_128bits_reset(st);
	for (;;) {
		ssize_t n = pread(fd, buf, HASHDB_IO_CHUNK, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		XXH3_128bits_update(st, buf, (size_t)n);
		off += n;
		total += (uint64_t)n;
	}
	if (drop_cache)
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	canonical(XXH3_128bits_digest(st), out);
	if (bytes)
		*bytes = total;
out:
	XXH3_freeState(st);
	return r;
}

int hashdb_hash_fd(int fd, struct hashdb_hash *out, uint64_t *bytes, int drop_cache)
{
	void *buf = malloc(HASHDB_IO_CHUNK);
	int r;

	if (!buf)
		return -ENOMEM;
	r = hashdb_hash_fd_with(fd, buf, out, bytes, drop_cache);
	free(buf);
	return r;
}

void hashdb_hex_encode(const void *buf, size_t n, char *hex)
{
	static const char d[] = "0123456789abcdef";
	const unsigned char *b = buf;

	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = d[b[i] >> 4];
		hex[2 * i + 1] = d[b[i] & 15];
	}
	hex[2 * n] = '\0';
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int hashdb_hex_decode(const char *hex, size_t n, void *buf)
{
	unsigned char *b = buf;

	for (size_t i = 0; i < n; i++) {
		int hi = nibble(hex[2 * i]), lo = hi < 0 ? -1 : nibble(hex[2 * i + 1]);

		if (lo < 0)
			return -EINVAL;
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

void hashdb_hash_hex(const struct hashdb_hash *h, char hex[COWLINK_HEX_LEN + 1])
{
	hashdb_hex_encode(h->b, COWLINK_HASH_BYTES, hex);
}

int hashdb_hash_from_hex(const char *hex, struct hashdb_hash *h)
{
	if (!cowlink_hex_valid(hex))
		return -EINVAL;
	return hashdb_hex_decode(hex, COWLINK_HASH_BYTES, h->b);
}
