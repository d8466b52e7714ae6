/* SPDX-License-Identifier: GPL-2.0-or-later */
/* hashdb: hash hex round trip, content hashing, the identity key, the stat
 * cache (save/load, corrupt detection: truncated, flipped byte, bad magic
 * -> HASHDB_SC_CORRUPT, file names) and the pool's object store and
 * object names. */
#include <errno.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "hashdb/hash.h"
#include "hashdb/identity.h"
#include "hashdb/pool.h"
#include "hashdb/statcache.h"
#include "scratch.h"

/* ---- hashes --------------------------------------------------------------- */

Test(hash, hex_round_trip)
{
	struct hashdb_hash h, back;
	char hex[COWLINK_HEX_LEN + 1];

	for (int i = 0; i < COWLINK_HASH_BYTES; i++)
		h.b[i] = (unsigned char)(i * 17 + 3);
	h.b[0] = 0x00;
	h.b[1] = 0xff;
	hashdb_hash_hex(&h, hex);
	cr_assert_eq(strlen(hex), COWLINK_HEX_LEN);
	cr_assert_str_eq(hex, "00ff25364758697a8b9cadbecfe0f102");
	cr_assert(cowlink_hex_valid(hex));
	cr_assert_eq(hashdb_hash_from_hex(hex, &back), 0);
	cr_assert_eq(memcmp(h.b, back.b, sizeof(h.b)), 0);
	cr_assert_eq(hashdb_hash_from_hex("00FF25364758697a8b9cadbecfe0f102", &back), -EINVAL);
	cr_assert_eq(hashdb_hash_from_hex("00ff25364758697a8b9cadbecfe0f10", &back), -EINVAL);
	cr_assert_eq(hashdb_hash_from_hex("00ff25364758697a8b9cadbecfe0f1022", &back), -EINVAL);
	cr_assert_eq(hashdb_hash_from_hex("zzff25364758697a8b9cadbecfe0f102", &back), -EINVAL);
}

Test(hash, buffers)
{
	struct hashdb_hash a, b, c;

	hashdb_hash_buf("hello", 5, &a);
	hashdb_hash_buf("hello", 5, &b);
	hashdb_hash_buf("hellp", 5, &c);
	cr_assert_eq(memcmp(a.b, b.b, 16), 0);
	cr_assert_neq(memcmp(a.b, c.b, 16), 0);
	hashdb_hash_buf("", 0, &c);
	cr_assert_neq(memcmp(a.b, c.b, 16), 0);
}

Test(hash, file_equals_buffer, .init = scratch_make, .fini = scratch_remove)
{
	enum { N = 1 << 20 };	/* several read chunks */
	int fd = scratch_file("big", 'z', N);
	char *buf = malloc(N);
	struct hashdb_hash hf, hb;
	uint64_t bytes = 0;

	memset(buf, 'z', N);
	cr_assert_eq(pwrite(fd, "!", 1, N - 1), 1);
	buf[N - 1] = '!';
	cr_assert_eq(hashdb_hash_fd(fd, &hf, &bytes, 0), 0);
	cr_assert_eq(bytes, N);
	hashdb_hash_buf(buf, N, &hb);
	cr_assert_eq(memcmp(hf.b, hb.b, 16), 0, "streaming and one-shot hashes differ");
	free(buf);
	close(fd);
}

/* ---- identity ------------------------------------------------------------- */

static void meta(struct cowlink_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->mode = S_IFREG | 0644;
	m->size = 5;
	m->mtime.tv_sec = 1704067200;
}

Test(identity, content_and_metadata_both_count)
{
	struct cowlink_meta m1, m2;
	struct hashdb_hash c1, c2, i1, i1b, i2, i3, i4, i5;

	meta(&m1);
	meta(&m2);
	hashdb_hash_buf("hello", 5, &c1);
	hashdb_hash_buf("world", 5, &c2);
	cr_assert_eq(hashdb_identity(&c1, &m1, false, &i1), 0);
	cr_assert_eq(hashdb_identity(&c1, &m2, false, &i1b), 0);
	cr_assert_eq(memcmp(i1.b, i1b.b, 16), 0, "same content + metadata, other identity");
	cr_assert_eq(hashdb_identity(&c2, &m1, false, &i2), 0);
	cr_assert_neq(memcmp(i1.b, i2.b, 16), 0, "content does not count");
	m2.uid = 1;
	cr_assert_eq(hashdb_identity(&c1, &m2, false, &i3), 0);
	cr_assert_neq(memcmp(i1.b, i3.b, 16), 0, "metadata does not count");
	cr_assert_neq(memcmp(i1.b, c1.b, 16), 0, "identity is just the content hash");
	/* mtime: counts, unless ignored; ignoring it gives another name. */
	m2 = m1;
	m2.mtime.tv_sec++;
	cr_assert_eq(hashdb_identity(&c1, &m2, false, &i4), 0);
	cr_assert_neq(memcmp(i1.b, i4.b, 16), 0, "mtime does not count");
	cr_assert_eq(hashdb_identity(&c1, &m1, true, &i4), 0);
	cr_assert_eq(hashdb_identity(&c1, &m2, true, &i5), 0);
	cr_assert_eq(memcmp(i4.b, i5.b, 16), 0, "ignore_mtime still sees mtime");
	cr_assert_neq(memcmp(i1.b, i4.b, 16), 0, "ignore_mtime identity equals the normal one");
}

/* ---- stat cache ----------------------------------------------------------- */

static int cachedir(void)
{
	int fd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	cr_assert_geq(fd, 0);
	return fd;
}

static struct hashdb_sc_entry entry(uint64_t ino)
{
	struct hashdb_sc_entry e = { .dev = 2049, .ino = ino, .size = ino * 10,
				     .mtime_s = 1700000000 + (int64_t)ino, .mtime_ns = 5,
				     .ctime_s = 1700000001, .ctime_ns = 7, .flags = (uint32_t)(ino & 3) };

	for (int i = 0; i < 16; i++)
		e.id[i] = (unsigned char)(ino + (uint64_t)i);
	return e;
}

/* A saved cache of @n entries (put in reverse order) for guest "g". */
static void save_cache(int dfd, size_t n)
{
	struct hashdb_statcache c;

	cr_assert_eq(hashdb_sc_load(dfd, "g", &c), 0);
	for (size_t i = n; i > 0; i--) {
		struct hashdb_sc_entry e = entry(i * 3);
		cr_assert_eq(hashdb_sc_put(&c, &e), 0);
	}
	cr_assert_eq(hashdb_sc_save(&c), 0);
	hashdb_sc_free(&c);
}

static char *cache_path(void)
{
	static char p[256];

	/* "g" is 0x67: the file is named by the hex of the guest name. */
	snprintf(p, sizeof(p), "%s/67.sc", scratch);
	return p;
}

TestSuite(statcache, .init = scratch_make, .fini = scratch_remove);

Test(statcache, missing_is_empty)
{
	struct hashdb_statcache c;
	int dfd = cachedir();

	cr_assert_eq(hashdb_sc_load(dfd, "g", &c), 0);
	cr_assert_eq(c.state, HASHDB_SC_EMPTY);
	cr_assert_null(hashdb_sc_lookup(&c, 2049, 3));
	hashdb_sc_free(&c);
	close(dfd);
}

Test(statcache, save_and_load)
{
	struct hashdb_statcache c;
	int dfd = cachedir();
	struct stat s0, s1;

	save_cache(dfd, 1000);
	cr_assert_eq(stat(cache_path(), &s0), 0, "no %s", cache_path());
	cr_assert_eq(s0.st_size, 32 + 1000 * (off_t)sizeof(struct hashdb_sc_entry));
	cr_assert_eq(hashdb_sc_load(dfd, "g", &c), 0);
	cr_assert_eq(c.state, HASHDB_SC_LOADED);
	for (uint64_t i = 1; i <= 1000; i++) {
		const struct hashdb_sc_entry *e = hashdb_sc_lookup(&c, 2049, i * 3);
		struct hashdb_sc_entry want = entry(i * 3);
		cr_assert_not_null(e, "entry %" PRIu64 " lost", i * 3);
		cr_assert_eq(memcmp(e, &want, sizeof(want)), 0, "entry %" PRIu64 " changed", i * 3);
	}
	cr_assert_null(hashdb_sc_lookup(&c, 2049, 4));
	cr_assert_null(hashdb_sc_lookup(&c, 2050, 3), "other device");
	/* The same entries again: nothing is written. */
	for (uint64_t i = 1; i <= 1000; i++) {
		struct hashdb_sc_entry e = entry(i * 3);
		hashdb_sc_put(&c, &e);
	}
	cr_assert_eq(hashdb_sc_save(&c), 0);
	cr_assert_eq(stat(cache_path(), &s1), 0);
	cr_assert_eq(s0.st_ino, s1.st_ino, "an unchanged cache was rewritten");
	hashdb_sc_free(&c);
	/* Only what was put this run is kept: a run that saw 10 files. */
	cr_assert_eq(hashdb_sc_load(dfd, "g", &c), 0);
	for (uint64_t i = 1; i <= 10; i++) {
		struct hashdb_sc_entry e = entry(i * 3);
		hashdb_sc_put(&c, &e);
	}
	cr_assert_eq(hashdb_sc_save(&c), 0);
	hashdb_sc_free(&c);
	cr_assert_eq(hashdb_sc_load(dfd, "g", &c), 0);
	cr_assert_eq(c.nold, 10);
	cr_assert_null(hashdb_sc_lookup(&c, 2049, 33));
	hashdb_sc_free(&c);
	close(dfd);
}

Test(statcache, duplicate_puts_keep_the_last)
{
	struct hashdb_statcache c;
	struct hashdb_sc_entry e = entry(9);
	int dfd = cachedir();

	cr_assert_eq(hashdb_sc_load(dfd, "g", &c), 0);
	hashdb_sc_put(&c, &e);
	e.size = 77;
	hashdb_sc_put(&c, &e);
	cr_assert_eq(hashdb_sc_save(&c), 0);
	hashdb_sc_free(&c);
	cr_assert_eq(hashdb_sc_load(dfd, "g", &c), 0);
	cr_assert_eq(c.nold, 1);
	cr_assert_eq(hashdb_sc_lookup(&c, 2049, 9)->size, 77);
	hashdb_sc_free(&c);
	close(dfd);
}

static void flip(off_t off)
{
	int fd = open(cache_path(), O_RDWR);
	unsigned char b;

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &b, 1, off), 1);
	b ^= 0x01;	/* one bit */
	cr_assert_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void expect_corrupt(int dfd, const char *how)
{
	struct hashdb_statcache c;

	cr_assert_eq(hashdb_sc_load(dfd, "g", &c), 0, "%s: load failed", how);
	cr_expect_eq(c.state, HASHDB_SC_CORRUPT, "%s: state %d", how, c.state);
	cr_expect_null(hashdb_sc_lookup(&c, 2049, 3), "%s: entries trusted", how);
	cr_expect_eq(c.nold, 0, "%s", how);
	hashdb_sc_free(&c);
}

Test(statcache, corruption_is_detected)
{
	const off_t esz = sizeof(struct hashdb_sc_entry), total = 32 + 50 * esz;
	static const struct {
		const char *how;
		off_t off;	/* byte to flip, or -1 */
		off_t size;	/* truncate to, or -1 */
	} cases[] = {
		{ "magic", 0, -1 }, { "version", 8, -1 }, { "entry size", 12, -1 },
		{ "count", 16, -1 }, { "checksum", 24, -1 }, { "first entry", 32, -1 },
		{ "an identity", 32 + 20 * (off_t)sizeof(struct hashdb_sc_entry) + 60, -1 },
		{ "last byte", 32 + 50 * (off_t)sizeof(struct hashdb_sc_entry) - 1, -1 },
		{ "truncated in an entry", -1, 32 + 49 * (off_t)sizeof(struct hashdb_sc_entry) + 5 },
		{ "truncated by a whole entry", -1, 32 + 49 * (off_t)sizeof(struct hashdb_sc_entry) },
		{ "truncated in the header", -1, 20 },
		{ "empty", -1, 0 },
		{ "a byte too long", -1, 32 + 50 * (off_t)sizeof(struct hashdb_sc_entry) + 1 },
	};
	int dfd = cachedir();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		save_cache(dfd, 50);
		struct stat st;
		cr_assert_eq(stat(cache_path(), &st), 0);
		cr_assert_eq(st.st_size, total);
		if (cases[i].off >= 0)
			flip(cases[i].off);
		if (cases[i].size >= 0)
			cr_assert_eq(truncate(cache_path(), cases[i].size), 0);
		expect_corrupt(dfd, cases[i].how);
		cr_assert_eq(unlink(cache_path()), 0);
	}
	/* A rebuilt cache (saved after a corrupt load) loads again. */
	save_cache(dfd, 50);
	flip(40);
	struct hashdb_statcache c;
	cr_assert_eq(hashdb_sc_load(dfd, "g", &c), 0);
	cr_assert_eq(c.state, HASHDB_SC_CORRUPT);
	struct hashdb_sc_entry e = entry(3);
	hashdb_sc_put(&c, &e);
	cr_assert_eq(hashdb_sc_save(&c), 0);
	hashdb_sc_free(&c);
	cr_assert_eq(hashdb_sc_load(dfd, "g", &c), 0);
	cr_assert_eq(c.state, HASHDB_SC_LOADED);
	cr_assert_not_null(hashdb_sc_lookup(&c, 2049, 3));
	hashdb_sc_free(&c);
	close(dfd);
}

Test(statcache, guest_names_with_any_byte)
{
	struct hashdb_statcache c;
	struct hashdb_sc_entry e = entry(5);
	int dfd = cachedir();
	struct stat st;
	char path[300];

	cr_assert_eq(hashdb_sc_load(dfd, "../a/\n\xff", &c), 0);
	hashdb_sc_put(&c, &e);
	cr_assert_eq(hashdb_sc_save(&c), 0);
	hashdb_sc_free(&c);
	snprintf(path, sizeof(path), "%s/2e2e2f612f0aff.sc", scratch);
	cr_assert_eq(stat(path, &st), 0, "cache of a strange guest name not in the cache dir");
	cr_assert_eq(hashdb_sc_load(dfd, "../a/\n\xff", &c), 0);
	cr_assert_eq(c.state, HASHDB_SC_LOADED);
	hashdb_sc_free(&c);
	close(dfd);
}

Test(statcache, file_names_decode)
{
	char guest[8];

	cr_assert_eq(hashdb_sc_guest_of("610aff.sc", guest, sizeof(guest)), 0);
	cr_expect_str_eq(guest, "a\n\xff");
	cr_expect_eq(hashdb_sc_guest_of("61.sc.tmp", guest, sizeof(guest)), -EINVAL);
	cr_expect_eq(hashdb_sc_guest_of(".cowlink~1~0123456789abcdef~tmp", guest, sizeof(guest)),
		     -EINVAL);
	cr_expect_eq(hashdb_sc_guest_of("6.sc", guest, sizeof(guest)), -EINVAL, "odd length");
	cr_expect_eq(hashdb_sc_guest_of("6A.sc", guest, sizeof(guest)), -EINVAL, "not ours");
	cr_expect_eq(hashdb_sc_guest_of("612f62.sc", guest, sizeof(guest)), -EINVAL, "a '/'");
	cr_expect_eq(hashdb_sc_guest_of("610062.sc", guest, sizeof(guest)), -EINVAL, "a NUL");
	cr_expect_eq(hashdb_sc_guest_of("6161616161616161.sc", guest, sizeof(guest)), -EINVAL,
		     "too long for the buffer");
}

/* ---- pool objects --------------------------------------------------------- */

#define HEX_ID "ab0123456789abcdef0123456789abcd"

TestSuite(pool, .init = scratch_make, .fini = scratch_remove);

Test(pool, open_adopt_find_link)
{
	struct hashdb_pool p;
	char path[300], guest[300];
	struct stat st, ost;
	int fd, ofd, dirfd;

	if (geteuid() != 0)
		cr_skip_test("needs root");
	cr_assert_eq(hashdb_pool_open(scratch, false, &p), 0);
	cr_assert_eq(p.statefd, -1, "a pool without state opened with state");
	hashdb_pool_close(&p);
	cr_assert_eq(hashdb_pool_open(scratch, true, &p), 0);
	snprintf(path, sizeof(path), "%s/.hashdb", scratch);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0700, ".hashdb is not private");

	snprintf(guest, sizeof(guest), "%s/g", scratch);
	cr_assert_eq(mkdir(guest, 0755), 0);
	dirfd = open(guest, O_RDONLY | O_DIRECTORY);
	fd = openat(dirfd, "a", O_RDWR | O_CREAT, 0644);
	cr_assert_eq(write(fd, "data", 4), 4);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(hashdb_object_find_ino(&p, HEX_ID, st.st_dev, st.st_ino), -ENOENT);
	cr_assert_eq(hashdb_object_adopt(&p, fd, HEX_ID, 0), 0);
	cr_assert_eq(hashdb_object_adopt(&p, fd, HEX_ID, 0), -EEXIST);
	cr_assert_eq(hashdb_object_find_ino(&p, HEX_ID, st.st_dev, st.st_ino), 0);
	cr_assert_eq(hashdb_object_adopt(&p, fd, HEX_ID, 1), 0);	/* gen 1 */
	snprintf(path, sizeof(path), "%s/.hashdb/objects/ab/" HEX_ID ".1", scratch);
	cr_assert_eq(stat(path, &ost), 0, "no object HASH.1");
	ofd = hashdb_object_open(&p, HEX_ID, 0, &ost);
	cr_assert_geq(ofd, 0);
	cr_assert_eq(ost.st_ino, st.st_ino);

	/* link_over: "b" becomes a link of the object, atomically. */
	int b = openat(dirfd, "b", O_RDWR | O_CREAT, 0644);
	struct stat bst, now;
	cr_assert_eq(write(b, "data", 4), 4);
	cr_assert_eq(fstat(b, &bst), 0);
	cr_assert_eq(cowlink_set_immutable(ofd, true), 0);
	cr_assert_eq(hashdb_object_link_over(&p, ofd, dirfd, ".cowlink~1~0123456789abcdef~tmp", "b",
					     &bst), 0);
	cr_assert_eq(fstatat(dirfd, "b", &now, 0), 0);
	cr_assert_eq(now.st_ino, st.st_ino, "b is not the object");
	cr_assert_eq(faccessat(dirfd, ".cowlink~1~0123456789abcdef~tmp", F_OK, AT_SYMLINK_NOFOLLOW), -1,
		     "temporary name left behind");
	bool on;
	cr_assert_eq(cowlink_is_immutable(ofd, &on), 0);
	cr_assert(on, "object lost its flag");
	/* A name that is no longer the inode the caller saw is left alone. */
	int c = openat(dirfd, "c", O_RDWR | O_CREAT, 0644);
	struct stat cst;
	cr_assert_eq(fstat(c, &cst), 0);
	cst.st_ino++;
	cr_assert_eq(hashdb_object_link_over(&p, ofd, dirfd, ".cowlink~1~0123456789abcdee~tmp", "c",
					     &cst), -ESTALE);
	cr_assert_eq(fstatat(dirfd, "c", &now, 0), 0);
	cr_assert_eq(now.st_ino, cst.st_ino - 1, "a changed name was replaced");
	close(c);
	close(b);
	close(ofd);
	close(fd);
	close(dirfd);
	hashdb_pool_close(&p);
}

Test(pool, lock_is_exclusive)
{
	struct hashdb_pool a, b;
	pid_t holder = -1;

	cr_assert_eq(hashdb_pool_open(scratch, true, &a), 0);
	cr_assert_eq(hashdb_pool_open(scratch, true, &b), 0);
	cr_assert_eq(hashdb_pool_lock(&a, &holder), 0);
	cr_assert_eq(hashdb_pool_lock(&b, &holder), -EWOULDBLOCK);
	cr_assert_eq(holder, getpid(), "the holder's pid is not reported");
	hashdb_pool_close(&a);
	cr_assert_eq(hashdb_pool_lock(&b, &holder), 0, "lock not released on close");
	hashdb_pool_close(&b);
}

Test(objects, names)
{
	char hex[COWLINK_HEX_LEN + 1];
	unsigned gen;
	const char *h = "0123456789abcdef0123456789abcdef";
	char name[64];

	cr_expect_eq(hashdb_object_parse_name(h, hex, &gen), 0);
	cr_expect_eq(gen, 0);
	snprintf(name, sizeof(name), "%s.12", h);
	cr_expect_eq(hashdb_object_parse_name(name, hex, &gen), 0);
	cr_expect_eq(gen, 12);
	cr_expect_str_eq(hex, h);
	snprintf(name, sizeof(name), "%s.0", h);
	cr_expect_eq(hashdb_object_parse_name(name, hex, &gen), -EINVAL, "gen 0 has no suffix");
	snprintf(name, sizeof(name), "%s.01", h);
	cr_expect_eq(hashdb_object_parse_name(name, hex, &gen), -EINVAL);
	snprintf(name, sizeof(name), "%s.1000", h);
	cr_expect_eq(hashdb_object_parse_name(name, hex, &gen), -EINVAL);
	snprintf(name, sizeof(name), "%s~tmp", h);
	cr_expect_eq(hashdb_object_parse_name(name, hex, &gen), -EINVAL);
	cr_expect_eq(hashdb_object_parse_name("0123456789ABCDEF0123456789ABCDEF", hex, &gen), -EINVAL);
	cr_expect_eq(hashdb_object_parse_name("short", hex, &gen), -EINVAL);
}
