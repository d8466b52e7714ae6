/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cowlink: the one contract that vunify (which makes CoW links) and cowfs
 * (which breaks them) share.
 *
 * A CoW link is a regular file whose inode
 *   - carries FS_IMMUTABLE_FL, so nothing outside cowfs can change the shared
 *     data, and
 *   - carries the xattr trusted.cowlink whose value is the hex identity hash
 *     of the pool object it is a hard link of (POOL/.hashdb/objects/xx/HASH).
 *
 * Two files may share one inode only when everything a guest can observe is
 * equal: content, type, mode (incl. setuid/setgid/sticky), uid, gid, every
 * xattr (ACLs and security.capability included) and, unless told otherwise,
 * mtime.  struct cowlink_meta captures exactly that set.
 *
 * All functions return 0 or a negative errno and never print.
 */
#ifndef COWLINK_COWLINK_H
#define COWLINK_COWLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define COWLINK_XATTR "trusted.cowlink"
#define COWLINK_HASH_BYTES 16
#define COWLINK_HEX_LEN (2 * COWLINK_HASH_BYTES)

/* ---- marker.c: the trusted.cowlink marker --------------------------------- */

/* Read the marker of @fd into @hex (NUL-terminated).  -ENODATA: not marked;
 * -EINVAL: a marker that is not a well-formed hash (treated as unmarked by
 * callers, reported by verify). */
int cowlink_marker_get(int fd, char hex[COWLINK_HEX_LEN + 1]);
int cowlink_marker_set(int fd, const char *hex);
int cowlink_marker_remove(int fd);
/* True for the xattr names cowfs hides from guests and refuses to change. */
bool cowlink_xattr_is_private(const char *name);
bool cowlink_hex_valid(const char *hex);

/* ---- flags.c: FS_IMMUTABLE_FL, the flag lock and the flag journal ---------- */

int cowlink_get_flags(int fd, unsigned *flags);
int cowlink_set_immutable(int fd, bool on);
int cowlink_is_immutable(int fd, bool *on);

/*
 * Links to an immutable inode, and unlink/rename of one, fail with EPERM.
 * Whoever needs to add or remove a name of a CoW link clears the flag, does
 * the operation and sets the flag again, holding the pool's flag lock
 * (POOL/.hashdb/flags.lock, an flock) so that two such sequences on one
 * object never interleave.  @lockfd is that lock file, open O_RDWR; it is
 * also the flag journal: the inodes whose flag is cleared are recorded in it
 * before, and the record is dropped once every flag is back, so that a crash
 * in between is repaired by cowlink_flags_replay at the next start.  The
 * flag is restored even when @op fails; op's result is returned.
 *
 * The lock is an flock, held per open file description: threads sharing
 * one @lockfd must serialise among themselves (cowfs holds a mutex).
 */
int cowlink_with_mutable(int lockfd, int objfd, int (*op)(void *arg), void *arg);
/* The same for an operation that touches up to COWLINK_MUTABLE_MAX inodes
 * at once (a rename between two CoW links): the flag of each fds[i] that
 * has it is cleared, and restored afterwards; fds[i] < 0 are skipped. */
#define COWLINK_MUTABLE_MAX 4
int cowlink_with_mutable_n(int lockfd, const int *fds, int n, int (*op)(void *arg), void *arg);

/*
 * Recovery, called with the flag lock held (LOCK_EX) by every start of
 * vunify and cowfs (hashdb_pool_recover_flags does all of it):
 *  - cowlink_flags_replay restores the flag of every inode a crashed toggle
 *    had recorded, if it still carries a marker; @fn (may be NULL) is told
 *    each one restored.  Returns how many, or a negative errno (the record
 *    is then kept).
 *  - cowlink_flags_same_boot: was the last recovery in this boot?  The
 *    record is not fsync'ed, so after a reboot the caller checks every
 *    object instead, then calls cowlink_flags_mark_boot (durable).
 */
typedef void (*cowlink_restored_fn)(void *ctx, int fd);
int cowlink_flags_replay(int lockfd, cowlink_restored_fn fn, void *ctx);
#define COWLINK_BOOT_ID_LEN 36
int cowlink_flags_boot_id(char id[COWLINK_BOOT_ID_LEN + 1]);
int cowlink_flags_same_boot(int lockfd, bool *same);
int cowlink_flags_mark_boot(int lockfd);
/* Remove the name @name in @dirfd of the open inode @fd: plainly, or, when
 * the inode is immutable, with its flag cleared and restored around the
 * unlink (cowlink_with_mutable).  Negative errno on failure. */
int cowlink_unlink(int lockfd, int fd, int dirfd, const char *name);
/* Give the marked inode @fd (O_RDONLY) its flag back if it lacks it, under
 * the flag lock (so a toggle in progress is not mistaken for damage).
 * 1 restored, 0 nothing to do (has it, or not marked), negative errno. */
int cowlink_restore_flag(int lockfd, int fd);

/* ---- meta.c: what a guest can observe ------------------------------------- */

struct cowlink_xattr {
	char *name;
	void *value;
	size_t size;
};

struct cowlink_meta {
	mode_t mode;		/* type and permission bits */
	uid_t uid;
	gid_t gid;
	off_t size;
	struct timespec mtime;
	size_t nxattrs;		/* sorted by name, marker excluded */
	struct cowlink_xattr *xattrs;
};

/* Fill @m from the open file @fd (any open mode, not O_PATH). */
int cowlink_meta_read(int fd, struct cowlink_meta *m);
void cowlink_meta_free(struct cowlink_meta *m);
/* Equal in everything a guest observes; mtime only when !ignore_mtime. */
bool cowlink_meta_equal(const struct cowlink_meta *a, const struct cowlink_meta *b,
			bool ignore_mtime);
/*
 * Serialise @m canonically (the identity record that hashdb hashes together
 * with the content).  Returns a malloc'd buffer in *out and its size.
 */
int cowlink_meta_serialize(const struct cowlink_meta *m, bool ignore_mtime,
			   void **out, size_t *len);

/* Byte-compare two open files from offset 0; 1 equal, 0 different, <0 error. */
int cowlink_same_content(int fda, int fdb, off_t size);
/* The same with two caller buffers of COWLINK_CMP_CHUNK bytes each, reused
 * from file to file (fresh ones cost page faults and a heap trim per file). */
#define COWLINK_CMP_CHUNK ((size_t)1 << 18)
int cowlink_same_content_with(int fda, int fdb, off_t size, void *bufa, void *bufb);

/* ---- copy.c: copy-up ------------------------------------------------------- */

/*
 * Make a private copy of the open file @srcfd named @name in directory
 * @dirfd, with all its metadata: data (copy_file_range, so reflink-capable
 * filesystems clone), owner, mode, xattrs (ACLs and capabilities included,
 * marker excluded), atime/mtime.  The copy is made in an unnamed O_TMPFILE
 * in @stagefd (a directory on the same filesystem; -1: @dirfd), named there
 * with a temporary name only once complete, and renamed over @name, so a
 * crash never shows a half-copied file anywhere.  cowfs stages in
 * POOL/.hashdb/tmp, where no guest looks and where stale names are removed
 * at mount (hashdb_clean_staging).  The rename replaces a name of an
 * immutable inode, so it runs under cowlink_with_mutable(@lockfd, @srcfd).
 * On success the new file's fd is returned in *newfd (O_RDWR) when @newfd
 * is not NULL.  -ESTALE: @name was no longer @srcfd's inode under the flag
 * lock (someone else copied it up or replaced it first); nothing changed.
 */
int cowlink_copy_up(int lockfd, int stagefd, int srcfd, int dirfd, const char *name, int *newfd);

/* Copy data only (used by copy_up and by vunify split). */
int cowlink_copy_data(int srcfd, int dstfd, off_t size);
/* Copy owner, mode, xattrs, times from @srcfd to @dstfd (in that order, so
 * that chown does not clear setuid bits or capabilities set afterwards). */
int cowlink_copy_meta(int srcfd, int dstfd);
/* Copy every xattr of @srcfd but the marker onto @dstfd (ACLs and
 * security.capability included, raw), the one copier of xattrs.  Through
 * /proc/self/fd paths, so the fds may be O_PATH: symlinks and device nodes
 * are reached without opening them.  A filesystem without xattrs has none
 * to copy. */
int cowlink_copy_xattrs(int srcfd, int dstfd);
/* Remove every xattr of @fd (O_PATH allowed): a new file inherits a default
 * ACL of its directory that the file it copies may not have, so a copy
 * with exactly the source's xattrs strips them first. */
int cowlink_strip_xattrs(int fd);

/* A rename beside a guest's file moves the directory's mtime, which guests
 * observe (make, fontconfig and ldconfig caches key on it).  vunify takes
 * the mtime before the rename (cowlink_dir_mtime) and puts it back after
 * (cowlink_dir_mtime_restore, which leaves an unmoved mtime alone).  A
 * guest that changes the directory in between has its mtime set back too. */
int cowlink_dir_mtime(int dirfd, struct timespec *mtime);
int cowlink_dir_mtime_restore(int dirfd, const struct timespec *mtime);

/* Temporary names a CoW operation leaves beside a target while it works;
 * a later run removes leftovers that match. */
#define COWLINK_TMP_PREFIX ".cowlink~"
/* ".cowlink~PID~16 hex digits~tmp" */
int cowlink_tmp_name(char *buf, size_t len);
/* Is @name such a temporary name?  Its creator's pid goes to *pid. */
bool cowlink_is_tmp_name(const char *name, pid_t *pid);

/* ---- procfs.c: what both sides read from /proc ------------------------------ */

/*
 * "/proc/self/fd/FD" into @buf (COWLINK_FD_PATH_LEN bytes are enough);
 * returns @buf.  Opening it reopens the very inode behind @fd (an O_PATH fd
 * gets a real open without a second lookup by name), and it names an
 * unnamed O_TMPFILE for linkat without CAP_DAC_READ_SEARCH.
 */
#define COWLINK_FD_PATH_LEN 32
const char *cowlink_fd_path(char *buf, size_t len, int fd);
/* One line of /proc/self/mountinfo, its fields unescaped (the kernel
 * writes space, tab, newline and backslash as \ooo): any byte but NUL may
 * be in them. */
struct cowlink_mount {
	int id;			/* statx's stx_mnt_id */
	dev_t dev;		/* st_dev of the files in it */
	char *root;		/* the directory of its filesystem mounted here */
	char *point;		/* where, as this process sees it */
	char *fstype;		/* "ext4", "fuse.cowfs" */
	char *source;		/* "" when the line has none */
};
/* Parse one line in place (a trailing newline is dropped); @m's strings
 * point into @line.  -EINVAL: not a mountinfo line. */
int cowlink_mountinfo_parse(char *line, struct cowlink_mount *m);

/* Every mount in /proc/self/mountinfo, in its order (lines that do not
 * parse are left out).  @text owns the strings. */
struct cowlink_mounts {
	struct cowlink_mount *m;
	size_t n;
	char *text;
};
int cowlink_mounts_read(struct cowlink_mounts *ms);
void cowlink_mounts_free(struct cowlink_mounts *ms);

#endif
