/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What both sides read from /proc: fd paths and mountinfo. */
#include "cowlink/cowlink.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

const char *cowlink_fd_path(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
	return buf;
}

/* Undo the octal escapes in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

int cowlink_mountinfo_parse(char *line, struct cowlink_mount *m)
{
	char *s = line, *f[6], *t;
	unsigned maj, min;

	/* id parent maj:min root point options [optional...] - fstype source
	 * superoptions; split at single spaces, so that an empty source (the
	 * kernel writes "" as nothing) does not take the next field's place. */
	line[strcspn(line, "\n")] = '\0';
	for (int i = 0; i < 6; i++)
		if (!(f[i] = strsep(&s, " ")))
			return -EINVAL;
	do
		t = strsep(&s, " ");	/* the optional fields end at "-" */
	while (t && strcmp(t, "-"));
	m->fstype = strsep(&s, " ");
	m->source = strsep(&s, " ");
	if (!t || !m->fstype || sscanf(f[2], "%u:%u", &maj, &min) != 2)
		return -EINVAL;
	if (!m->source)
		m->source = f[0] + strlen(f[0]);	/* "", in @line: unescape writes */
	m->id = atoi(f[0]);
	m->dev = makedev(maj, min);
	m->root = f[3];
	m->point = f[4];
	unescape(m->root);
	unescape(m->point);
	unescape(m->fstype);
	unescape(m->source);
	return 0;
}

/* The whole of /proc/self/mountinfo, NUL-terminated, into *text. */
static int read_text(char **text)
{
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC), r = 0;
	size_t len = 0, cap = 1 << 16;
	char *buf = NULL, *nb;
	ssize_t n;

	if (fd < 0)
		return -errno;
	for (;;) {
		if (!buf || cap - len < 2) {
			cap = buf ? cap * 2 : cap;
			nb = realloc(buf, cap);
			if (!nb) {
				r = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*text = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return r;
}

int cowlink_mounts_read(struct cowlink_mounts *ms)
{
	size_t lines = 0;
	char *p, *next;
	int r;

	memset(ms, 0, sizeof(*ms));
	r = read_text(&ms->text);
	if (r < 0)
		return r;
	for (p = ms->text; *p; p++)
		lines += *p == '\n';
	ms->m = calloc(lines + 1, sizeof(*ms->m));
	if (!ms->m) {
		cowlink_mounts_free(ms);
		return -ENOMEM;
	}
	for (p = ms->text; *p; p = next) {
		next = p + strcspn(p, "\n");
		if (*next)
			*next++ = '\0';
		if (cowlink_mountinfo_parse(p, &ms->m[ms->n]) == 0)
			ms->n++;
	}
	return 0;
}

void cowlink_mounts_free(struct cowlink_mounts *ms)
{
	free(ms->m);
	free(ms->text);
	memset(ms, 0, sizeof(*ms));
}
