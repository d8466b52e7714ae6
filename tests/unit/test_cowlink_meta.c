/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cowlink_meta_equal / cowlink_meta_serialize: every single difference a
 * guest can observe makes two records unequal (and their canonical records,
 * hence identities, different); equal metadata is equal; --ignore-mtime
 * ignores exactly mtime.  Pure: no filesystem needed. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cowlink/cowlink.h"

static const unsigned char cap_raw[] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00,
					 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					 0x00, 0x00, 0x00, 0x00 };
static const unsigned char acl_raw[] = { 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00,
					 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x04, 0x00,
					 0xe8, 0x03, 0x00, 0x00 };

static void add_xattr(struct cowlink_meta *m, const char *name, const void *v, size_t n)
{
	struct cowlink_xattr *x;

	m->xattrs = realloc(m->xattrs, (m->nxattrs + 1) * sizeof(*m->xattrs));
	cr_assert_not_null(m->xattrs);
	x = &m->xattrs[m->nxattrs++];
	x->name = strdup(name);
	x->value = malloc(n ? n : 1);
	memcpy(x->value, v, n);
	x->size = n;
}

/* The reference: a root-owned 0755 binary with a user xattr. */
static void base(struct cowlink_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->mode = S_IFREG | 0755;
	m->uid = 0;
	m->gid = 0;
	m->size = 4096;
	m->mtime.tv_sec = 1704067200;
	m->mtime.tv_nsec = 123456789;
	add_xattr(m, "user.origin", "debian", 6);
}

enum variant {
	V_MODE, V_SETUID, V_SETGID, V_STICKY, V_TYPE, V_UID, V_GID, V_SIZE, V_MTIME_S, V_MTIME_NS,
	V_XATTR_VALUE, V_XATTR_NAME, V_XATTR_EXTRA, V_XATTR_EMPTY_VALUE, V_CAP, V_ACL, NVARIANT
};
static const char *const vname[NVARIANT] = {
	"mode", "setuid", "setgid", "sticky", "type", "uid", "gid", "size", "mtime sec",
	"mtime nsec", "xattr value", "xattr name", "extra xattr", "extra empty xattr",
	"capability", "ACL",
};

static void make_variant(struct cowlink_meta *m, enum variant v)
{
	base(m);
	switch (v) {
	case V_MODE: m->mode = S_IFREG | 0750; break;
	case V_SETUID: m->mode |= S_ISUID; break;
	case V_SETGID: m->mode |= S_ISGID; break;
	case V_STICKY: m->mode |= S_ISVTX; break;
	case V_TYPE: m->mode = S_IFLNK | 0755; break;
	case V_UID: m->uid = 1000; break;
	case V_GID: m->gid = 1000; break;
	case V_SIZE: m->size = 4097; break;
	case V_MTIME_S: m->mtime.tv_sec++; break;
	case V_MTIME_NS: m->mtime.tv_nsec++; break;
	case V_XATTR_VALUE: ((char *)m->xattrs[0].value)[0] = 'D'; break;
	case V_XATTR_NAME: m->xattrs[0].name[5] = 'O'; break;
	case V_XATTR_EXTRA: add_xattr(m, "user.zz", "1", 1); break;
	case V_XATTR_EMPTY_VALUE: add_xattr(m, "user.zz", "", 0); break;
	case V_CAP: add_xattr(m, "security.capability", cap_raw, sizeof(cap_raw)); break;
	case V_ACL: add_xattr(m, "system.posix_acl_access", acl_raw, sizeof(acl_raw)); break;
	default: break;
	}
}

static bool same_record(const struct cowlink_meta *a, const struct cowlink_meta *b, bool im)
{
	void *ra, *rb;
	size_t la, lb;
	bool same;

	cr_assert_eq(cowlink_meta_serialize(a, im, &ra, &la), 0);
	cr_assert_eq(cowlink_meta_serialize(b, im, &rb, &lb), 0);
	same = la == lb && memcmp(ra, rb, la) == 0;
	free(ra);
	free(rb);
	return same;
}

Test(meta, equal_copies_are_equal)
{
	struct cowlink_meta a, b;

	base(&a);
	base(&b);
	cr_assert(cowlink_meta_equal(&a, &b, false));
	cr_assert(cowlink_meta_equal(&a, &b, true));
	cr_assert(same_record(&a, &b, false));
	cr_assert(same_record(&a, &b, true));
	cowlink_meta_free(&a);
	cowlink_meta_free(&b);
}

Test(meta, each_single_difference_is_seen)
{
	for (int v = 0; v < NVARIANT; v++) {
		struct cowlink_meta a, b;
		bool mtime = v == V_MTIME_S || v == V_MTIME_NS;

		base(&a);
		make_variant(&b, (enum variant)v);
		cr_expect_not(cowlink_meta_equal(&a, &b, false), "%s difference not seen", vname[v]);
		cr_expect_not(cowlink_meta_equal(&b, &a, false), "%s difference not seen (b, a)",
			      vname[v]);
		cr_expect_not(same_record(&a, &b, false), "%s: same identity record", vname[v]);
		/* --ignore-mtime ignores mtime and nothing else. */
		cr_expect_eq(cowlink_meta_equal(&a, &b, true), mtime,
			     "%s with ignore_mtime: equal=%d", vname[v], !mtime);
		cr_expect_eq(same_record(&a, &b, true), mtime, "%s: record with ignore_mtime",
			     vname[v]);
		cowlink_meta_free(&a);
		cowlink_meta_free(&b);
	}
}

Test(meta, ignore_mtime_is_part_of_the_record)
{
	struct cowlink_meta a;

	base(&a);
	/* An object made with --ignore-mtime must not be found by a run
	 * without it (and vice versa): the records differ. */
	void *r1, *r2;
	size_t l1, l2;
	cr_assert_eq(cowlink_meta_serialize(&a, false, &r1, &l1), 0);
	cr_assert_eq(cowlink_meta_serialize(&a, true, &r2, &l2), 0);
	cr_assert(l1 != l2 || memcmp(r1, r2, l1));
	free(r1);
	free(r2);
	cowlink_meta_free(&a);
}

Test(meta, records_are_unambiguous)
{
	/* Length prefixes: moving a byte from an xattr name into its value
	 * must not give the same record. */
	struct cowlink_meta a = { .mode = S_IFREG | 0644 }, b = { .mode = S_IFREG | 0644 };

	add_xattr(&a, "user.ab", "c", 1);
	add_xattr(&b, "user.a", "bc", 2);
	cr_assert_not(cowlink_meta_equal(&a, &b, false));
	cr_assert_not(same_record(&a, &b, false));
	cowlink_meta_free(&a);
	cowlink_meta_free(&b);
}

Test(meta, free_leaves_it_reusable)
{
	struct cowlink_meta a;

	base(&a);
	cowlink_meta_free(&a);
	cr_assert_eq(a.nxattrs, 0);
	cr_assert_null(a.xattrs);
	cowlink_meta_free(&a);	/* twice is harmless */
}
