/* SPDX-License-Identifier: GPL-2.0-or-later */
/* FS_IMMUTABLE_FL handling and the flag lock that serialises toggles. */
#include "cowlink/cowlink.h"

#include <errno.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

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

int cowlink_with_mutable(int lockfd, int objfd, int (*op)(void *arg), void *arg)
{
	int f = 0, r, r2;

	if (lockfd >= 0 && flock(lockfd, LOCK_EX) < 0)
		return -errno;
	/* One GETFLAGS and two SETFLAGS: this runs for every link vunify makes. */
	if (ioctl(objfd, FS_IOC_GETFLAGS, &f) < 0) {
		r = -errno;
		goto out;
	}
	if (f & FS_IMMUTABLE_FL) {
		int clear = f & ~FS_IMMUTABLE_FL;

		if (ioctl(objfd, FS_IOC_SETFLAGS, &clear) < 0) {
			r = -errno;
			goto out;
		}
	}
	r = op(arg);
	if ((f & FS_IMMUTABLE_FL) && ioctl(objfd, FS_IOC_SETFLAGS, &f) < 0) {
		r2 = -errno;
		if (r == 0)
			r = r2;
	}
out:
	if (lockfd >= 0) {
		int saved = errno;
		flock(lockfd, LOCK_UN);
		errno = saved;
	}
	return r;
}

int cowlink_with_mutable_n(int lockfd, const int *fds, int n, int (*op)(void *arg), void *arg)
{
	bool was[COWLINK_MUTABLE_MAX] = { false };
	int r = 0, r2, i;

	if (n < 0 || n > COWLINK_MUTABLE_MAX)
		return -EINVAL;
	if (lockfd >= 0 && flock(lockfd, LOCK_EX) < 0)
		return -errno;
	/* The same inode may be passed twice (two names of one object): the
	 * second sees the flag cleared already and leaves restoring to the
	 * first. */
	for (i = 0; i < n && r == 0; i++) {
		if (fds[i] < 0)
			continue;
		r = cowlink_is_immutable(fds[i], &was[i]);
		if (r == 0 && was[i])
			r = cowlink_set_immutable(fds[i], false);
		if (r < 0)
			was[i] = false;
	}
	if (r == 0)
		r = op(arg);
	for (i = n - 1; i >= 0; i--) {
		if (!was[i])
			continue;
		r2 = cowlink_set_immutable(fds[i], true);
		if (r == 0)
			r = r2;
	}
	if (lockfd >= 0) {
		int saved = errno;
		flock(lockfd, LOCK_UN);
		errno = saved;
	}
	return r;
}
