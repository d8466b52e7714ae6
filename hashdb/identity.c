/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "hashdb/identity.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int hashdb_identity(const struct hashdb_hash *content, const struct cowlink_meta *m,
		    bool ignore_mtime, struct hashdb_hash *id)
{
	void *rec = NULL, *all;
	size_t len = 0;
	int r = cowlink_meta_serialize(m, ignore_mtime, &rec, &len);

	if (r < 0)
		return r;
	all = malloc(sizeof(content->b) + len);
	if (!all) {
		free(rec);
		return -ENOMEM;
	}
	memcpy(all, content->b, sizeof(content->b));
	memcpy((char *)all + sizeof(content->b), rec, len);
	hashdb_hash_buf(all, sizeof(content->b) + len, id);
	free(all);
	free(rec);
	return 0;
}

int hashdb_identity_matches(int fd, const char *hex, int drop_cache, uint64_t *bytes)
{
	struct hashdb_hash content, id, want;
	struct cowlink_meta m;
	int r = hashdb_hash_from_hex(hex, &want);

	r = r ?: hashdb_hash_fd(fd, &content, bytes, drop_cache);
	r = r ?: cowlink_meta_read(fd, &m);
	if (r < 0)
		return r;
	r = hashdb_identity(&content, &m, false, &id);
	if (r == 0 && memcmp(id.b, want.b, sizeof(id.b)))
		r = hashdb_identity(&content, &m, true, &id);
	cowlink_meta_free(&m);
	if (r < 0)
		return r;
	return memcmp(id.b, want.b, sizeof(id.b)) == 0;
}
