/* SPDX-License-Identifier: GPL-2.0-or-later */
/* node_exporter textfile collector output, written atomically. */
#include "vunify/prometheus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vunify/vunify.h"

char *prom_path(const struct options *o, const char *command, const char *pool, bool *oom)
{
	char *path, *q;
	const char *s = pool;
	size_t len;

	*oom = false;
	if (o->prometheus) {
		path = strdup(o->prometheus);
		*oom = !path;
		return path;
	}
	if (!o->prometheus_dir)
		return NULL;
	while (*s == '/')
		s++;
	len = strlen(o->prometheus_dir) + strlen(command) + strlen(s) + 32;
	path = malloc(len);
	if (!path) {
		*oom = true;
		return NULL;
	}
	snprintf(path, len, "%s/vunify_%s_%s.prom", o->prometheus_dir, command, *s ? s : "root");
	/* Only the part after the directory: slashes of the pool path become
	 * '_', trailing ones dropped. */
	q = path + strlen(o->prometheus_dir) + 1;
	for (; *q; q++)
		if (*q == '/')
			*q = '_';
	len = strlen(path);
	while (len > 5 && !strcmp(path + len - 6, "_.prom")) {
		memmove(path + len - 6, ".prom", 6);
		len--;
	}
	return path;
}

bool prom_begin(struct prom *p, const struct options *o, const char *command, const char *pool)
{
	bool oom = false;
	char *path = prom_path(o, command, pool, &oom);
	int r;

	if (!path) {
		if (oom)
			msg_error("cannot write metrics: %s", strerror(ENOMEM));
		return false;
	}
	r = prom_open(p, path, pool);
	if (r < 0)
		msg_error("%s: cannot write metrics: %s", esc(path, 0), strerror(-r));
	free(path);
	return r == 0;
}

int prom_open(struct prom *p, const char *path, const char *pool)
{
	p->pool = pool;
	return cowlink_prom_open(&p->file, path);
}

void prom_label_value(FILE *f, const char *s)
{
	cowlink_prom_label_value(f, s);
}

void prom_family(struct prom *p, const char *name, const char *type, const char *help)
{
	cowlink_prom_family(p->file.f, name, type, help);
}

void prom_sample(struct prom *p, const char *name, const char *lk, const char *lv, double v)
{
	FILE *f = p->file.f;

	fprintf(f, "%s{pool=\"", name);
	prom_label_value(f, p->pool);
	if (lk) {
		fprintf(f, "\",%s=\"", lk);
		prom_label_value(f, lv);
	}
	/* %.17g keeps every integer up to 2^53 exact. */
	fprintf(f, "\"} %.17g\n", v);
}

void prom_gauge(struct prom *p, const char *name, const char *help, double v)
{
	prom_family(p, name, "gauge", help);
	prom_sample(p, name, NULL, NULL, v);
}

void prom_abort(struct prom *p)
{
	cowlink_prom_abort(&p->file);
}

int prom_commit(struct prom *p)
{
	return cowlink_prom_commit(&p->file);
}

int prom_finish(struct prom *p, const char *command, int exit_code, double seconds)
{
	char name[96], path[4096];
	struct timespec now;
	int r;

	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(name, sizeof(name), "vunify_%s_exit_code", command);
	prom_gauge(p, name, "exit code of the last run (see vunify(8))", exit_code);
	snprintf(name, sizeof(name), "vunify_%s_duration_seconds", command);
	prom_gauge(p, name, "wall-clock time of the last run", seconds);
	snprintf(name, sizeof(name), "vunify_%s_last_run_timestamp_seconds", command);
	prom_gauge(p, name, "when the last run ended (Unix time)",
		   (double)now.tv_sec + now.tv_nsec / 1e9);
	snprintf(path, sizeof(path), "%s", p->file.path);
	r = prom_commit(p);
	if (r < 0) {
		msg_error("%s: cannot write metrics: %s", esc(path, 0), strerror(-r));
		return -1;
	}
	return 0;
}

int prom_drop_label(const char *path, const char *pool, const char *key, const char *value)
{
	char *needle = NULL, *line = NULL;
	size_t nlen = 0, cap = 0;
	FILE *in, *m;
	struct prom p;
	int dropped = 0, r;
	bool opened;

	in = fopen(path, "re");
	if (!in)
		return errno == ENOENT ? 0 : -errno;
	/* The label as prom_sample writes it: the last one of the sample. */
	m = open_memstream(&needle, &nlen);
	if (!m) {
		fclose(in);
		return -ENOMEM;
	}
	fprintf(m, ",%s=\"", key);
	prom_label_value(m, value);
	fputs("\"} ", m);
	fclose(m);
	r = needle ? prom_open(&p, path, pool) : -ENOMEM;
	opened = r == 0;
	while (r == 0 && getline(&line, &cap, in) > 0) {
		if (line[0] != '#' && strstr(line, needle))
			dropped++;
		else
			fputs(line, p.file.f);
	}
	if (r == 0 && ferror(in))
		r = -EIO;
	fclose(in);
	free(line);
	free(needle);
	if (opened && (r < 0 || dropped == 0))
		prom_abort(&p);	/* nothing to change: leave the file alone */
	else if (opened)
		r = prom_commit(&p);
	return r < 0 ? r : dropped;
}
