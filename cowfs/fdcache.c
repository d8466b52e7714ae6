/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The bounded cache of O_PATH fds: a list of the inodes that have a cached
 * fd, newest first.  Only fds nobody is borrowing are evicted, oldest
 * first; pinned fds are not in the list.  The caller serialises.
 */
#include "cowfs/tables.h"

#include <errno.h>
#include <unistd.h>

void cf_fdcache_init(struct cf_fdcache *c, unsigned max)
{
	c->lru.lru_next = c->lru.lru_prev = &c->lru;
	c->n = 0;
	c->max = max;
}

static void unlink_entry(struct cf_inode *in)
{
	in->lru_prev->lru_next = in->lru_next;
	in->lru_next->lru_prev = in->lru_prev;
	in->lru_next = in->lru_prev = NULL;
}

static void push_newest(struct cf_fdcache *c, struct cf_inode *in)
{
	in->lru_next = c->lru.lru_next;
	in->lru_prev = &c->lru;
	c->lru.lru_next->lru_prev = in;
	c->lru.lru_next = in;
}

void cf_fdcache_add(struct cf_fdcache *c, struct cf_inode *in, int fd)
{
	if (in->fd >= 0) {	/* another thread opened it meanwhile */
		close(fd);
		return;
	}
	in->fd = fd;
	push_newest(c, in);
	c->n++;
}

void cf_fdcache_pin(struct cf_inode *in, int fd)
{
	in->fd = fd;
	in->pinned = true;
}

void cf_fdcache_keep(struct cf_fdcache *c, struct cf_inode *in, int fd)
{
	if (in->fd < 0) {
		cf_fdcache_pin(in, fd);
		return;
	}
	close(fd);
	if (!in->pinned) {
		unlink_entry(in);
		c->n--;
		in->pinned = true;
	}
}

int cf_fdcache_borrow(struct cf_fdcache *c, struct cf_inode *in)
{
	if (in->fd < 0)
		return -ENOENT;
	in->fd_users++;
	if (!in->pinned && c->lru.lru_next != in) {
		unlink_entry(in);
		push_newest(c, in);
	}
	return in->fd;
}

void cf_fdcache_put(struct cf_inode *in)
{
	in->fd_users--;
}

void cf_fdcache_evict(struct cf_fdcache *c)
{
	struct cf_inode *in = c->lru.lru_prev, *prev;

	for (; c->n > c->max && in != &c->lru; in = prev) {
		prev = in->lru_prev;
		if (in->fd_users)
			continue;
		unlink_entry(in);
		close(in->fd);
		in->fd = -1;
		c->n--;
	}
}

void cf_fdcache_drop(struct cf_fdcache *c, struct cf_inode *in)
{
	if (in->fd < 0)
		return;
	if (!in->pinned) {
		unlink_entry(in);
		c->n--;
	}
	close(in->fd);
	in->fd = -1;
}
