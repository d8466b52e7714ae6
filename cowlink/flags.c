/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FS_IMMUTABLE_FL, the flag lock that serialises toggles, and the flag
 * journal that makes a toggle survive a crash.
 *
 * The journal lives in the flag lock file itself (POOL/.hashdb/flags.lock),
 * so whoever holds the lock owns the journal and no second file can
 * disagree with it:
 *
 *   0     header: magic, version, the boot id of the last recovery
 *   64    record: count, then count file handles (struct jentry)
 *
 * Before a toggle clears any flag, the handles of the inodes it will clear
 * are written as the record (one pwrite, so a kill leaves the old record or
 * the new one); when every flag is back, count is set to 0.  A process
 * killed in between (kill -9, OOM, a crash) leaves the record in the page
 * cache, and the next start of cowfs or vunify replays it under the lock:
 * every recorded inode that still carries a well-formed marker gets its flag
 * back.  The record is not fsync'ed (that would cost a disk flush for every
 * link vunify makes); a power cut is covered by the boot id instead: the
 * first recovery after a reboot finds another boot's id in the header and
 * the caller (hashdb_pool_recover_flags) checks every object of the pool,
 * then stores this boot's id durably.  The header's region is written whole
 * once, so the record's later overwrites never allocate blocks (no ENOSPC
 * or EDQUOT in the middle of a toggle).
 */
#include "cowlink/cowlink.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define JOURNAL_MAGIC "COWFLGJ1"
#define JOURNAL_HDR 64
#define JOURNAL_SIZE 4096
#define BOOT_ID_LEN 36
#define HANDLE_MAX 128

struct jhdr {
	char magic[8];
	char boot_id[BOOT_ID_LEN + 4];
	char pad[JOURNAL_HDR - 8 - BOOT_ID_LEN - 4];
};

struct jentry {
	uint32_t bytes;
	int32_t type;
	unsigned char handle[HANDLE_MAX];
};

struct jrecord {
	uint32_t count;
	uint32_t pad;
	struct jentry e[COWLINK_MUTABLE_MAX];
};

_Static_assert(sizeof(struct jhdr) == JOURNAL_HDR, "journal header size");
_Static_assert(JOURNAL_HDR + sizeof(struct jrecord) <= JOURNAL_SIZE, "journal size");

int cowlink_get_flags(int fd, unsigned *flags)
{
	int f = 0;

	if (ioctl(fd, FS_IOC_GETFLAGS, &f) < 0)
		return -errno;
	*flags = (unsigned)f;
	return 0;
}

int cowlink_is_immutable(int fd, bool *on)
{
	unsigned f;
	int r = cowlink_get_flags(fd, &f);

	if (r == 0)
		*on = (f & FS_IMMUTABLE_FL) != 0;
	return r;
}

int cowlink_set_immutable(int fd, bool on)
{
	int f = 0;

	if (ioctl(fd, FS_IOC_GETFLAGS, &f) < 0)
		return -errno;
	if (!!(f & FS_IMMUTABLE_FL) == on)
		return 0;
	if (on)
		f |= FS_IMMUTABLE_FL;
	else
		f &= ~FS_IMMUTABLE_FL;
	if (ioctl(fd, FS_IOC_SETFLAGS, &f) < 0)
		return -errno;
	return 0;
}

/* ---- the journal ---------------------------------------------------------- */

static int record_write(int lockfd, const struct jrecord *rec)
{
	size_t len = offsetof(struct jrecord, e) + rec->count * sizeof(rec->e[0]);
	ssize_t n = pwrite(lockfd, rec, len, JOURNAL_HDR);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int record_clear(int lockfd)
{
	static const uint32_t zero;

	return pwrite(lockfd, &zero, sizeof(zero), JOURNAL_HDR) == sizeof(zero) ? 0 : -errno;
}

static int handle_of(int fd, struct jentry *e)
{
	struct {
		struct file_handle fh;
		unsigned char buf[HANDLE_MAX];
	} h;
	int mount_id;

	h.fh.handle_bytes = HANDLE_MAX;
	if (name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) < 0)
		return -errno;
	e->bytes = h.fh.handle_bytes;
	e->type = h.fh.handle_type;
	memcpy(e->handle, h.fh.f_handle, h.fh.handle_bytes);
	return 0;
}

int cowlink_flags_boot_id(char id[COWLINK_BOOT_ID_LEN + 1])
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, id, COWLINK_BOOT_ID_LEN);
	close(fd);
	if (n != COWLINK_BOOT_ID_LEN)
		return n < 0 ? -errno : -EIO;
	id[COWLINK_BOOT_ID_LEN] = '\0';
	return 0;
}

int cowlink_flags_same_boot(int lockfd, bool *same)
{
	char now[COWLINK_BOOT_ID_LEN + 1];
	struct jhdr h;
	ssize_t n;
	int r = cowlink_flags_boot_id(now);

	if (r < 0)
		return r;
	n = pread(lockfd, &h, sizeof(h), 0);
	if (n < 0)
		return -errno;
	*same = n == (ssize_t)sizeof(h) && !memcmp(h.magic, JOURNAL_MAGIC, 8) &&
		!memcmp(h.boot_id, now, COWLINK_BOOT_ID_LEN);
	return 0;
}

int cowlink_flags_mark_boot(int lockfd)
{
	static const char zeros[JOURNAL_SIZE];
	struct jhdr h;
	int r;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, JOURNAL_MAGIC, 8);
	r = cowlink_flags_boot_id(h.boot_id);
	if (r < 0)
		return r;
	/* The whole region, so the record's overwrites never allocate. */
	if (pwrite(lockfd, zeros, sizeof(zeros), 0) != (ssize_t)sizeof(zeros) ||
	    pwrite(lockfd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return errno ? -errno : -EIO;
	return fdatasync(lockfd) < 0 ? -errno : 0;
}

/* Give @fd its flag back if it still is a marked CoW inode without it.
 * 1 restored, 0 nothing to do, negative errno. */
static int restore_one(int fd)
{
	char hex[COWLINK_HEX_LEN + 1];
	struct stat st;
	bool imm;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_nlink == 0)
		return 0;
	if (cowlink_marker_get(fd, hex) < 0)
		return 0;
	r = cowlink_is_immutable(fd, &imm);
	if (r < 0 || imm)
		return r;
	r = cowlink_set_immutable(fd, true);
	return r < 0 ? r : 1;
}

int cowlink_flags_replay(int lockfd, cowlink_restored_fn fn, void *ctx)
{
	struct jrecord rec;
	ssize_t n;
	int restored = 0, r = 0;

	n = pread(lockfd, &rec, sizeof(rec), JOURNAL_HDR);
	if (n < 0)
		return -errno;
	if (n < (ssize_t)offsetof(struct jrecord, e) || rec.count == 0)
		return 0;
	if (rec.count > COWLINK_MUTABLE_MAX ||
	    n < (ssize_t)(offsetof(struct jrecord, e) + rec.count * sizeof(rec.e[0])))
		return record_clear(lockfd);	/* torn by a power cut: the boot scan covers it */
	for (uint32_t i = 0; i < rec.count; i++) {
		struct {
			struct file_handle fh;
			unsigned char buf[HANDLE_MAX];
		} h;
		int fd, one;

		if (rec.e[i].bytes > HANDLE_MAX)
			continue;
		h.fh.handle_bytes = rec.e[i].bytes;
		h.fh.handle_type = rec.e[i].type;
		memcpy(h.fh.f_handle, rec.e[i].handle, rec.e[i].bytes);
		fd = open_by_handle_at(lockfd, &h.fh, O_RDONLY | O_NONBLOCK | O_NOFOLLOW |
					      O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			/* ESTALE: the inode is gone, nothing to protect. */
			if (errno != ESTALE && errno != ENOENT && r == 0)
				r = -errno;
			continue;
		}
		one = restore_one(fd);
		if (one > 0) {
			restored++;
			if (fn)
				fn(ctx, fd);
		} else if (one < 0 && r == 0) {
			r = one;
		}
		close(fd);
	}
	if (r < 0)
		return r;	/* keep the record for the next start */
	r = record_clear(lockfd);
	return r < 0 ? r : restored;
}

int cowlink_restore_flag(int lockfd, int fd)
{
	int r;

	if (lockfd >= 0 && flock(lockfd, LOCK_EX) < 0)
		return -errno;
	/* Under the lock, a toggle in progress has finished: what is still
	 * missing now was left by a crash or cleared by hand. */
	r = restore_one(fd);
	if (lockfd >= 0) {
		int saved = errno;
		flock(lockfd, LOCK_UN);
		errno = saved;
	}
	return r;
}

/* ---- toggles ---------------------------------------------------------------- */

struct unlink_arg {
	int dirfd;
	const char *name;
};

static int unlink_op(void *p)
{
	struct unlink_arg *a = p;

	return unlinkat(a->dirfd, a->name, 0) < 0 ? -errno : 0;
}

int cowlink_unlink(int lockfd, int fd, int dirfd, const char *name)
{
	struct unlink_arg a = { dirfd, name };
	bool imm = false;
	int r = cowlink_is_immutable(fd, &imm);

	if (r < 0)
		return r;
	return imm ? cowlink_with_mutable(lockfd, fd, unlink_op, &a) : unlink_op(&a);
}

int cowlink_with_mutable(int lockfd, int objfd, int (*op)(void *arg), void *arg)
{
	return cowlink_with_mutable_n(lockfd, &objfd, 1, op, arg);
}

int cowlink_with_mutable_n(int lockfd, const int *fds, int n, int (*op)(void *arg), void *arg)
{
	unsigned flags[COWLINK_MUTABLE_MAX] = { 0 };
	bool was[COWLINK_MUTABLE_MAX] = { false };
	struct jrecord rec = { 0 };
	bool all_back = true;
	int r = 0, r2, i, j;

	if (n < 0 || n > COWLINK_MUTABLE_MAX)
		return -EINVAL;
	if (lockfd >= 0 && flock(lockfd, LOCK_EX) < 0)
		return -errno;
	/* Which flags will be cleared.  The same inode may be passed twice
	 * (two names of one object): it is cleared and restored once. */
	for (i = 0; i < n && r == 0; i++) {
		if (fds[i] < 0)
			continue;
		r = cowlink_get_flags(fds[i], &flags[i]);
		was[i] = r == 0 && (flags[i] & FS_IMMUTABLE_FL);
		for (j = 0; j < i && was[i]; j++) {
			struct stat a, b;

			if (was[j] && fstat(fds[i], &a) == 0 && fstat(fds[j], &b) == 0 &&
			    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
				was[i] = false;
		}
		if (was[i] && lockfd >= 0)
			r = handle_of(fds[i], &rec.e[rec.count++]);
	}
	/* Recorded before the first flag is cleared. */
	if (r == 0 && rec.count)
		r = record_write(lockfd, &rec);
	for (i = 0; i < n && r == 0; i++) {
		unsigned clear = flags[i] & ~(unsigned)FS_IMMUTABLE_FL;

		if (was[i] && ioctl(fds[i], FS_IOC_SETFLAGS, &clear) < 0) {
			r = -errno;
			was[i] = false;
		}
	}
	if (r == 0)
		r = op(arg);
	for (i = n - 1; i >= 0; i--) {
		if (!was[i])
			continue;
		r2 = cowlink_set_immutable(fds[i], true);
		if (r2 < 0)
			all_back = false;
		if (r == 0)
			r = r2;
	}
	/* Only once every flag is back; a failure leaves the record for the
	 * next start to replay. */
	if (rec.count && all_back)
		record_clear(lockfd);
	if (lockfd >= 0) {
		int saved = errno;
		flock(lockfd, LOCK_UN);
		errno = saved;
	}
	return r;
}
