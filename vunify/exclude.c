/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "vunify/exclude.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int exclude_add(struct exclude *x, const char *line, char *err, size_t errlen)
{
	struct exclude_rule r = { 0 };
	struct exclude_rule *n;
	size_t len;

	while (*line == ' ' || *line == '\t')
		line++;
	if (*line == '\0' || *line == '#')
		return 0;
	if ((line[0] == '+' || line[0] == '-') && line[1] == ' ') {
		r.include = line[0] == '+';
		line += 2;
	}
	len = strlen(line);
	while (len && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0) {
		snprintf(err, errlen, "a rule without a pattern");
		return -EINVAL;
	}
	r.pattern = strndup(line, len);
	if (!r.pattern)
		return -ENOMEM;
	if (len > 1 && r.pattern[len - 1] == '/') {
		r.dir_only = true;
		r.pattern[len - 1] = '\0';
	}
	r.anchored = r.pattern[0] == '/';
	n = realloc(x->rules, (x->n + 1) * sizeof(*n));
	if (!n) {
		free(r.pattern);
		return -ENOMEM;
	}
	x->rules = n;
	x->rules[x->n++] = r;
	return 0;
}

int exclude_load(struct exclude *x, const char *file, char *err, size_t errlen)
{
	FILE *f = fopen(file, "re");
	char *line = NULL, why[128];
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int r = 0;

	if (!f) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return -errno;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (n && line[n - 1] == '\n')
			line[n - 1] = '\0';
		r = exclude_add(x, line, why, sizeof(why));
		if (r < 0) {
			snprintf(err, errlen, "%s:%zu: %s", file, lineno, why);
			break;
		}
	}
	free(line);
	fclose(f);
	return r;
}

bool exclude_match(const struct exclude *x, const char *path, bool is_dir)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	for (size_t i = 0; i < x->n; i++) {
		const struct exclude_rule *r = &x->rules[i];

		if (r->dir_only && !is_dir)
			continue;
		if (fnmatch(r->pattern, r->anchored ? path : base,
			    r->anchored ? FNM_PATHNAME : 0) == 0)
			return !r->include;
	}
	return false;
}

void exclude_free(struct exclude *x)
{
	for (size_t i = 0; i < x->n; i++)
		free(x->rules[i].pattern);
	free(x->rules);
	x->rules = NULL;
	x->n = 0;
}

int exclude_scope_enter(struct exclude_scope *s, const struct exclude *x, size_t depth,
			const char *path)
{
	if (depth + 2 > s->cap) {
		size_t cap = (depth + 2) * 2;
		bool *n = realloc(s->in, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		/* in[0], the guest's root, stays false: no rule names it. */
		memset(n + s->cap, 0, (cap - s->cap) * sizeof(*n));
		s->in = n;
		s->cap = cap;
	}
	s->in[depth + 1] = s->in[depth] || exclude_match(x, path, true);
	return 0;
}

bool exclude_scope_match(const struct exclude_scope *s, const struct exclude *x, size_t depth,
			 const char *path, bool is_dir)
{
	if (is_dir && depth + 1 < s->cap)
		return s->in[depth + 1];
	if (depth < s->cap && s->in[depth])
		return true;
	return exclude_match(x, path, is_dir);
}

void exclude_scope_free(struct exclude_scope *s)
{
	free(s->in);
	s->in = NULL;
	s->cap = 0;
}
