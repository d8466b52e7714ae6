/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Files, directories, nodes and symlinks a guest creates are created with
 * the caller's fsuid/fsgid and supplementary groups set on the worker thread
 * (setfsuid/setfsgid and the raw setgroups syscall are per thread), and the
 * caller's umask (each worker thread unshares its fs_struct once), so the
 * backing filesystem applies the setgid-directory rule, default ACLs and
 * the umask exactly as it would natively.
 */
#include "cowfs/ops.h"

#include <errno.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CF_MAX_GROUPS 256

/* Umask is per fs_struct, shared by all threads unless unshared; a worker
 * thread unshares its own once, the first time it creates something. */
static _Thread_local bool thread_fs_unshared;

int cf_creds_enter(fuse_req_t req, bool with_umask)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	gid_t groups[CF_MAX_GROUPS];
	int n;

	if (with_umask) {
		if (!thread_fs_unshared) {
			if (unshare(CLONE_FS) < 0)
				return -errno;
			thread_fs_unshared = true;
		}
		umask(c->umask);
	}
	if (c->uid == 0 && c->gid == 0)
		return 0;
	n = fuse_req_getgroups(req, CF_MAX_GROUPS, groups);
	if (n < 0)
		n = 0;
	if (n > CF_MAX_GROUPS)
		n = CF_MAX_GROUPS;
	/* The raw syscall: glibc's setgroups() changes every thread. */
	if (syscall(SYS_setgroups, (size_t)n, groups) < 0)
		return -errno;
	setfsgid(c->gid);
	setfsuid(c->uid);
	return 1;
}

void cf_creds_leave(struct cf_fs *fs, int entered)
{
	int saved = errno;

	if (entered > 0) {
		setfsuid(0);
		setfsgid(0);
		syscall(SYS_setgroups, (size_t)fs->nroot_groups, fs->root_groups);
	}
	errno = saved;
}
