/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The trusted.cowlink marker: which pool object an inode belongs to. */
#include "cowlink/cowlink.h"

#include <errno.h>
#include <string.h>
#include <sys/xattr.h>

bool cowlink_hex_valid(const char *hex)
{
	size_t i;

	for (i = 0; i < COWLINK_HEX_LEN; i++) {
		char c = hex[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return hex[i] == '\0';
}

int cowlink_marker_get(int fd, char hex[COWLINK_HEX_LEN + 1])
{
	char buf[COWLINK_HEX_LEN + 8];
	ssize_t n = fgetxattr(fd, COWLINK_XATTR, buf, sizeof(buf));

	if (n < 0)
		return errno == ERANGE ? -EINVAL : -errno;
	if (n != COWLINK_HEX_LEN)
		return -EINVAL;
	memcpy(hex, buf, COWLINK_HEX_LEN);
	hex[COWLINK_HEX_LEN] = '\0';
	return cowlink_hex_valid(hex) ? 0 : -EINVAL;
}

int cowlink_marker_set(int fd, const char *hex)
{
	if (!cowlink_hex_valid(hex))
		return -EINVAL;
	if (fsetxattr(fd, COWLINK_XATTR, hex, COWLINK_HEX_LEN, 0) < 0)
		return -errno;
	return 0;
}

int cowlink_marker_remove(int fd)
{
	if (fremovexattr(fd, COWLINK_XATTR) < 0 && errno != ENODATA)
		return -errno;
	return 0;
}

bool cowlink_xattr_is_private(const char *name)
{
	return strcmp(name, COWLINK_XATTR) == 0;
}
