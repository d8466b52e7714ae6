/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Metrics files for node_exporter's textfile collector (prom.h). */
#include "cowlink/prom.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cowlink_prom_open(struct cowlink_prom *p, const char *path)
{
	size_t len = strlen(path) + 32;
	int fd, r;

	memset(p, 0, sizeof(*p));
	p->path = strdup(path);
	p->tmp = malloc(len);
	if (!p->path || !p->tmp) {
		r = -ENOMEM;
		goto fail;
	}
	snprintf(p->tmp, len, "%s.%d.tmp", path, (int)getpid());
	/* O_EXCL: never write through a name someone else planted; a stale
	 * file of a crashed run with this pid is removed and created anew. */
	fd = open(p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EEXIST && unlink(p->tmp) == 0)
		fd = open(p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	p->f = fdopen(fd, "w");
	if (!p->f) {
		r = -errno;
		close(fd);
		unlink(p->tmp);
		goto fail;
	}
	return 0;
fail:
	free(p->path);
	free(p->tmp);
	p->path = p->tmp = NULL;
	return r;
}

void cowlink_prom_abort(struct cowlink_prom *p)
{
	if (p->f) {
		fclose(p->f);
		unlink(p->tmp);
	}
	free(p->path);
	free(p->tmp);
	memset(p, 0, sizeof(*p));
}

int cowlink_prom_commit(struct cowlink_prom *p)
{
	int r = 0;

	if (fflush(p->f) != 0 || ferror(p->f))
		r = -(errno ?: EIO);
	if (r == 0 && fsync(fileno(p->f)) < 0)
		r = -errno;
	if (fclose(p->f) != 0 && r == 0)
		r = -errno;
	p->f = NULL;
	if (r == 0 && rename(p->tmp, p->path) < 0)
		r = -errno;
	if (r < 0)
		unlink(p->tmp);
	free(p->path);
	free(p->tmp);
	p->path = p->tmp = NULL;
	return r;
}

void cowlink_prom_label_value(FILE *f, const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '\\' || *c == '"')
			fprintf(f, "\\%c", *c);
		else if (*c == '\n')
			fputs("\\n", f);
		else if (*c < 0x20 || *c >= 0x7f)
			fprintf(f, "\\\\x%02x", *c);
		else
			fputc(*c, f);
	}
}

void cowlink_prom_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}
