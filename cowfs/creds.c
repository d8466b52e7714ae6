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
#include <string.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/prctl.h>
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

/*
 * Guests' data is written with the daemon's credentials: by the daemon in
 * the cached path, and by the kernel with the credentials cowfs registered
 * a passthrough backing file with.  Root with CAP_SYS_RESOURCE is exempt
 * from quota limits and may fill ext4's reserved blocks, so one guest could
 * take the space kept for root and every other guest.  cowfs needs none of
 * what the capability allows: drop it from every set, before any thread or
 * backing file exists, so that the daemon's writes are held to the same
 * limits as an unprivileged writer's.
 */
int cf_drop_resource_cap(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	const unsigned idx = CAP_SYS_RESOURCE / 32, bit = 1u << (CAP_SYS_RESOURCE % 32);

	if (prctl(PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	d[idx].effective &= ~bit;
	d[idx].permitted &= ~bit;
	d[idx].inheritable &= ~bit;
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	return 0;
}

/*
 * A passthrough backing file writes with the credentials it was registered
 * with (the kernel takes them at FUSE_DEV_IOC_BACKING_OPEN), and ext4 keeps
 * setuid/setgid on a write whose credentials hold CAP_FSETID.  With
 * HANDLE_KILLPRIV_V2 the kernel leaves that removal to the filesystem, and
 * passthrough writes never reach the daemon: so the backing file is
 * registered without CAP_FSETID, and ext4 removes setuid (and setgid where
 * group-executable) on every passthrough write, as for a writer without
 * the capability.  Only this thread's effective set changes, and only
 * around the registration: the sets found are kept in @saved and put back
 * whole by cf_fsetid_restore.
 */
int cf_fsetid_drop(struct cf_caps *saved)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	const unsigned idx = CAP_FSETID / 32, bit = 1u << (CAP_FSETID % 32);

	if (syscall(SYS_capget, &h, saved->data) < 0)
		return -errno;
	if (!(saved->data[idx].effective & bit))
		return 0;
	memcpy(d, saved->data, sizeof(d));
	d[idx].effective &= ~bit;
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	return 1;
}

void cf_fsetid_restore(struct cf_caps *saved, int dropped)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	int err = errno;

	if (dropped > 0)
		syscall(SYS_capset, &h, saved->data);
	errno = err;
}
