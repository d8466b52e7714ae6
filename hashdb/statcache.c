/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "hashdb/statcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "cowlink/cowlink.h"
#include "hashdb/hash.h"

#define SC_MAGIC "VUSCACH1"
#define SC_VERSION 1u

struct sc_header {
	char magic[8];
	uint32_t version, entry_size;
	uint64_t count, checksum;
};

/* <hex of the guest's name>.sc: any byte of a name is safe in a file name. */
static char *cache_file_name(const char *guest)
{
	size_t n = strlen(guest);
	char *s = malloc(2 * n + 4);

	if (!s)
		return NULL;
	hashdb_hex_encode(guest, n, s);
	strcpy(s + 2 * n, ".sc");
	return s;
}

int hashdb_sc_guest_of(const char *file, char *guest, size_t len)
{
	size_t n = strlen(file), g = (n - 3) / 2;

	if (n <= 3 || strcmp(file + n - 3, ".sc") || (n - 3) % 2 || g >= len ||
	    hashdb_hex_decode(file, g, guest) < 0)
		return -EINVAL;
	guest[g] = '\0';
	/* A NUL or '/' is in no guest's name: not a file of ours. */
	return strlen(guest) != g || strchr(guest, '/') ? -EINVAL : 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct hashdb_sc_entry *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static bool sorted(const struct hashdb_sc_entry *e, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (cmp_entry(&e[i - 1], &e[i]) >= 0)
			return false;
	return true;
}

int hashdb_sc_load(int dirfd, const char *guest, struct hashdb_statcache *c)
{
	struct sc_header h;
	struct stat st;
	int fd, r = 0;

	memset(c, 0, sizeof(*c));
	c->dirfd = dirfd;
	c->file = cache_file_name(guest);
	if (!c->file)
		return -ENOMEM;
	if (dirfd < 0)
		return 0;
	fd = openat(dirfd, c->file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	c->state = HASHDB_SC_CORRUPT;
	if ((size_t)st.st_size < sizeof(h) || read_all(fd, &h, sizeof(h)) < 0)
		goto out;
	if (memcmp(h.magic, SC_MAGIC, 8) || h.version != SC_VERSION ||
	    h.entry_size != sizeof(struct hashdb_sc_entry) ||
	    h.count > ((uint64_t)st.st_size - sizeof(h)) / sizeof(struct hashdb_sc_entry) ||
	    sizeof(h) + h.count * sizeof(struct hashdb_sc_entry) != (uint64_t)st.st_size)
		goto out;
	c->old = malloc(h.count ? h.count * sizeof(*c->old) : 1);
	if (!c->old) {
		r = -ENOMEM;
		goto out;
	}
	if (read_all(fd, c->old, h.count * sizeof(*c->old)) < 0 ||
	    XXH3_64bits(c->old, h.count * sizeof(*c->old)) != h.checksum ||
	    !sorted(c->old, h.count)) {
		free(c->old);
		c->old = NULL;
		goto out;
	}
	c->nold = h.count;
	c->state = HASHDB_SC_LOADED;
out:
	close(fd);
	return r;
}

const struct hashdb_sc_entry *hashdb_sc_lookup(const struct hashdb_statcache *c,
					       uint64_t dev, uint64_t ino)
{
	struct hashdb_sc_entry key = { .dev = dev, .ino = ino };

	if (!c->nold)
		return NULL;
	return bsearch(&key, c->old, c->nold, sizeof(key), cmp_entry);
}

int hashdb_sc_put(struct hashdb_statcache *c, const struct hashdb_sc_entry *e)
{
	if (c->ncur == c->capcur) {
		size_t cap = c->capcur ? c->capcur * 2 : 1024;
		struct hashdb_sc_entry *n = realloc(c->cur, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		c->cur = n;
		c->capcur = cap;
	}
	c->cur[c->ncur++] = *e;
	return 0;
}

static size_t dedup(struct hashdb_sc_entry *e, size_t n)
{
	size_t out = 0;

	for (size_t i = 0; i < n; i++) {
		if (out && cmp_entry(&e[out - 1], &e[i]) == 0) {
			e[out - 1] = e[i];	/* the later observation wins */
			continue;
		}
		e[out++] = e[i];
	}
	return out;
}

static int write_all(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

int hashdb_sc_save(struct hashdb_statcache *c)
{
	struct sc_header h = { .version = SC_VERSION,
			       .entry_size = sizeof(struct hashdb_sc_entry) };
	char tmp[64];
	int fd, r;

	if (c->ncur) {
		qsort(c->cur, c->ncur, sizeof(*c->cur), cmp_entry);
		c->ncur = dedup(c->cur, c->ncur);
	}
	if (c->state == HASHDB_SC_LOADED && c->ncur == c->nold &&
	    (c->ncur == 0 || memcmp(c->cur, c->old, c->ncur * sizeof(*c->cur)) == 0))
		return 0;
	memcpy(h.magic, SC_MAGIC, 8);
	h.count = c->ncur;
	h.checksum = XXH3_64bits(c->cur ? (const void *)c->cur : "", c->ncur * sizeof(*c->cur));
	r = cowlink_tmp_name(tmp, sizeof(tmp));
	if (r < 0)
		return r;
	fd = openat(c->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = write_all(fd, &h, sizeof(h));
	r = r ?: write_all(fd, c->cur, c->ncur * sizeof(*c->cur));
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r && renameat(c->dirfd, tmp, c->dirfd, c->file) < 0)
		r = -errno;
	if (r) {
		unlinkat(c->dirfd, tmp, 0);
		return r;
	}
	if (fsync(c->dirfd) < 0)
		return -errno;
	return 0;
}

void hashdb_sc_free(struct hashdb_statcache *c)
{
	free(c->old);
	free(c->cur);
	free(c->file);
	memset(c, 0, sizeof(*c));
}

int hashdb_sc_remove(int dirfd, const char *guest, bool dry_run)
{
	char *file = cache_file_name(guest);
	struct stat st;
	int r;

	if (!file)
		return -ENOMEM;
	if (dry_run)
		r = fstatat(dirfd, file, &st, AT_SYMLINK_NOFOLLOW);
	else
		r = unlinkat(dirfd, file, 0);
	r = r == 0 ? 1 : errno == ENOENT ? 0 : -errno;
	free(file);
	return r;
}
