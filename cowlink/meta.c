/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a guest can observe of a file, read, compared and serialised.
 * xattrs are read raw (system.posix_acl_* and security.capability included),
 * so two files compare equal only when every xattr name and value is equal.
 */
#include "cowlink/cowlink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

static int cmp_xattr(const void *a, const void *b)
{
	const struct cowlink_xattr *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static int list_names(int fd, char **out, ssize_t *len)
{
	char *buf = NULL;
	ssize_t n;

	for (;;) {
		n = flistxattr(fd, NULL, 0);
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		free(buf);
		buf = malloc((size_t)n);
		if (!buf)
			return -ENOMEM;
		n = flistxattr(fd, buf, (size_t)n);
		if (n >= 0)
			break;
		if (errno != ERANGE) {
			int r = -errno;
			free(buf);
			return r;
		}
	}
	*out = buf;
	*len = n;
	return 0;
}

static int read_value(int fd, const char *name, struct cowlink_xattr *x)
{
	ssize_t n;

	for (;;) {
		n = fgetxattr(fd, name, NULL, 0);
		if (n < 0)
			return -errno;
		x->value = malloc(n ? (size_t)n : 1);
		if (!x->value)
			return -ENOMEM;
		n = fgetxattr(fd, name, x->value, (size_t)n);
		if (n >= 0)
			break;
		free(x->value);
		x->value = NULL;
		if (errno != ERANGE)
			return -errno;
	}
	x->size = (size_t)n;
	return 0;
}

static int read_xattrs(int fd, struct cowlink_meta *m)
{
	char *names = NULL, *p;
	ssize_t len = 0;
	size_t count = 0;
	int r = list_names(fd, &names, &len);

	if (r < 0)
		return r;
	for (p = names; p < names + len; p += strlen(p) + 1)
		count++;
	if (count == 0)
		goto out;
	m->xattrs = calloc(count, sizeof(*m->xattrs));
	if (!m->xattrs) {
		r = -ENOMEM;
		goto out;
	}
	for (p = names; p < names + len; p += strlen(p) + 1) {
		struct cowlink_xattr *x = &m->xattrs[m->nxattrs];

		if (cowlink_xattr_is_private(p))
			continue;
		x->name = strdup(p);
		if (!x->name) {
			r = -ENOMEM;
			goto out;
		}
		m->nxattrs++;
		r = read_value(fd, p, x);
		if (r == -ENODATA) {	/* removed under us: not observable any more */
			free(x->name);
			m->nxattrs--;
			r = 0;
			continue;
		}
		if (r < 0)
			goto out;
	}
	qsort(m->xattrs, m->nxattrs, sizeof(*m->xattrs), cmp_xattr);
out:
	free(names);
	return r;
}

int cowlink_meta_read(int fd, struct cowlink_meta *m)
{
	struct stat st;
	int r;

	memset(m, 0, sizeof(*m));
	if (fstat(fd, &st) < 0)
		return -errno;
	m->mode = st.st_mode;
	m->uid = st.st_uid;
	m->gid = st.st_gid;
	m->size = st.st_size;
	m->mtime = st.st_mtim;
	r = read_xattrs(fd, m);
	if (r < 0)
		cowlink_meta_free(m);
	return r;
}

void cowlink_meta_free(struct cowlink_meta *m)
{
	for (size_t i = 0; i < m->nxattrs; i++) {
		free(m->xattrs[i].name);
		free(m->xattrs[i].value);
	}
	free(m->xattrs);
	m->xattrs = NULL;
	m->nxattrs = 0;
}

bool cowlink_meta_equal(const struct cowlink_meta *a, const struct cowlink_meta *b,
			bool ignore_mtime)
{
	if (a->mode != b->mode || a->uid != b->uid || a->gid != b->gid ||
	    a->size != b->size || a->nxattrs != b->nxattrs)
		return false;
	if (!ignore_mtime && (a->mtime.tv_sec != b->mtime.tv_sec ||
			      a->mtime.tv_nsec != b->mtime.tv_nsec))
		return false;
	for (size_t i = 0; i < a->nxattrs; i++) {
		const struct cowlink_xattr *x = &a->xattrs[i], *y = &b->xattrs[i];

		if (strcmp(x->name, y->name) || x->size != y->size ||
		    memcmp(x->value, y->value, x->size))
			return false;
	}
	return true;
}

/* Append helpers for the canonical record: fixed-width little-endian
 * integers and length-prefixed byte strings, so no two different metadata
 * sets can serialise to the same bytes. */
struct buf {
	unsigned char *p;
	size_t len, cap;
};

static int put(struct buf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		unsigned char *np;

		while (cap < b->len + n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return 0;
}

static int put_u64(struct buf *b, uint64_t v)
{
	unsigned char le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)(v >> (8 * i));
	return put(b, le, sizeof(le));
}

int cowlink_meta_serialize(const struct cowlink_meta *m, bool ignore_mtime,
			   void **out, size_t *len)
{
	static const char tag[] = "cowlink-identity-v1";
	struct buf b = { 0 };
	int r = put(&b, tag, sizeof(tag));

	r = r ?: put_u64(&b, (uint64_t)m->mode);
	r = r ?: put_u64(&b, (uint64_t)m->uid);
	r = r ?: put_u64(&b, (uint64_t)m->gid);
	r = r ?: put_u64(&b, (uint64_t)m->size);
	r = r ?: put_u64(&b, ignore_mtime ? 1 : 0);
	if (!ignore_mtime) {
		r = r ?: put_u64(&b, (uint64_t)m->mtime.tv_sec);
		r = r ?: put_u64(&b, (uint64_t)m->mtime.tv_nsec);
	}
	r = r ?: put_u64(&b, m->nxattrs);
	for (size_t i = 0; i < m->nxattrs && !r; i++) {
		const struct cowlink_xattr *x = &m->xattrs[i];
		size_t nl = strlen(x->name);

		r = put_u64(&b, nl);
		r = r ?: put(&b, x->name, nl);
		r = r ?: put_u64(&b, x->size);
		r = r ?: put(&b, x->value, x->size);
	}
	if (r) {
		free(b.p);
		return r;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

int cowlink_same_content_with(int fda, int fdb, off_t size, void *bufa, void *bufb)
{
	char *a = bufa, *b = bufb;
	off_t off = 0;
	int r = 1;

	while (off < size || size < 0) {
		ssize_t na = pread(fda, a, COWLINK_CMP_CHUNK, off);
		ssize_t nb;

		if (na < 0) {
			r = -errno;
			goto out;
		}
		nb = pread(fdb, b, (size_t)na ? (size_t)na : 1, off);
		if (nb < 0) {
			r = -errno;
			goto out;
		}
		if (na != nb || memcmp(a, b, (size_t)na)) {
			r = 0;
			goto out;
		}
		if (na == 0)
			break;
		off += na;
	}
	/* Both must end here: a file that grew under us is not equal. */
	if (size >= 0 && (pread(fda, a, 1, off) != 0 || pread(fdb, b, 1, off) != 0))
		r = 0;
out:
	return r;
}

int cowlink_same_content(int fda, int fdb, off_t size)
{
	void *a = malloc(COWLINK_CMP_CHUNK), *b = malloc(COWLINK_CMP_CHUNK);
	int r = -ENOMEM;

	if (a && b)
		r = cowlink_same_content_with(fda, fdb, size, a, b);
	free(a);
	free(b);
	return r;
}
