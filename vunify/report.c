/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Messages, escaping, JSON strings and the terminal progress line. */
#include "vunify/vunify.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <inttypes.h>

void msg_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vunify: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void msg_info(const struct options *o, const char *fmt, ...)
{
	va_list ap;

	if (o->verbose < 1)
		return;
	fputs("vunify: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Length of the valid UTF-8 sequence at @s, 0 if none. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned min, cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, min = 0x80, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, min = 0x800, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, min = 0x10000, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

const char *esc(const char *s, int slot)
{
	static _Thread_local char *buf[4];
	static _Thread_local size_t cap[4];
	const unsigned char *p = (const unsigned char *)s;
	size_t need = strlen(s) * 4 + 1, o = 0;

	slot &= 3;
	if (need > cap[slot]) {
		char *n = realloc(buf[slot], need);
		if (!n)
			return "(out of memory)";
		buf[slot] = n;
		cap[slot] = need;
	}
	while (*p) {
		size_t u = utf8_len(p);

		if (*p == '\\') {
			memcpy(buf[slot] + o, "\\\\", 2), o += 2, p++;
		} else if (*p == '\n') {
			memcpy(buf[slot] + o, "\\n", 2), o += 2, p++;
		} else if (*p == '\t') {
			memcpy(buf[slot] + o, "\\t", 2), o += 2, p++;
		} else if (*p < 0x20 || *p == 0x7f || u == 0) {
			o += (size_t)sprintf(buf[slot] + o, "\\x%02x", *p), p++;
		} else {
			memcpy(buf[slot] + o, p, u), o += u, p += u;
		}
	}
	buf[slot][o] = '\0';
	return buf[slot];
}

void json_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		size_t u = utf8_len(p);

		if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p++);
		} else if (u == 0) {
			/* JSON strings are UTF-8: an invalid byte is written
			 * as the four characters \xNN, as in messages. */
			fprintf(f, "\\\\x%02x", *p++);
		} else {
			fwrite(p, 1, u, f);
			p += u;
		}
	}
	fputc('"', f);
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void progress_update(struct progress *p, const char *fmt, ...)
{
	uint64_t t;
	va_list ap;

	if (!p->on)
		return;
	t = now_ms();
	if (t - p->last_ms < 200)
		return;
	p->last_ms = t;
	fputs("\r\033[K", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}

void progress_done(struct progress *p)
{
	if (p->on && p->last_ms)
		fputs("\r\033[K", stderr);
}

void fmt_duration(char *buf, size_t len, uint64_t s)
{
	if (s >= 3600)
		snprintf(buf, len, "%" PRIu64 ":%02u:%02u", s / 3600, (unsigned)(s / 60 % 60),
			 (unsigned)(s % 60));
	else
		snprintf(buf, len, "%u:%02u", (unsigned)(s / 60), (unsigned)(s % 60));
}

static void fmt_mib(char *buf, size_t len, uint64_t b)
{
	if (b >= (10ull << 30))
		snprintf(buf, len, "%.1f GiB", b / 1073741824.0);
	else
		snprintf(buf, len, "%.1f MiB", b / 1048576.0);
}

void progress_bar(struct progress *p, const char *label, uint64_t files, uint64_t files_total,
		  uint64_t bytes, uint64_t bytes_total)
{
	enum { WIDTH = 20 };
	char b[32], bt[32], rate[32], eta[32] = "", bar[WIDTH + 3] = "";
	uint64_t t, el;
	double frac = -1, bps;

	if (!p->on)
		return;
	t = now_ms();
	if (!p->start_ms)
		p->start_ms = t ? t : 1;
	if (t - p->last_ms < 200)
		return;
	el = t - p->start_ms;
	bps = el ? bytes * 1000.0 / el : 0;
	/* Bytes are the better measure of work left when known: hashing time
	 * goes with size, not with the number of files. */
	if (bytes_total)
		frac = (double)bytes / bytes_total;
	else if (files_total)
		frac = (double)files / files_total;
	if (frac > 1)
		frac = 1;
	if (frac >= 0) {
		int full = (int)(frac * WIDTH);

		bar[0] = '[';
		for (int i = 0; i < WIDTH; i++)
			bar[i + 1] = i < full ? '#' : ' ';
		bar[WIDTH + 1] = ']';
		bar[WIDTH + 2] = '\0';
		if (frac > 0.001 && el > 1000) {
			char d[24];

			fmt_duration(d, sizeof(d), (uint64_t)(el / 1000.0 * (1 - frac) / frac));
			snprintf(eta, sizeof(eta), " ETA %s", d);
		}
	}
	fmt_mib(b, sizeof(b), bytes);
	bt[0] = '\0';
	if (bytes_total) {
		bt[0] = '/';
		fmt_mib(bt + 1, sizeof(bt) - 1, bytes_total);
	}
	snprintf(rate, sizeof(rate), "%.1f MiB/s", bps / 1048576.0);
	p->last_ms = t;
	fputs("\r\033[K", stderr);
	if (frac >= 0)
		fprintf(stderr, "%s %s %3d%% %" PRIu64 "/%" PRIu64 " files, %s%s, %s%s",
			label, bar, (int)(frac * 100), files, files_total, b, bt, rate, eta);
	else
		fprintf(stderr, "%s %" PRIu64 " files, %s, %s", label, files, b, rate);
	fflush(stderr);
}
