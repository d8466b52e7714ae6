/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A walk of one untrusted guest tree.  Every step is relative to an open
 * directory fd and refuses symlinks (O_NOFOLLOW, and a directory that is
 * swapped for anything else between stat and open is caught by comparing
 * dev/ino).  The walk never enters another filesystem, accepts any byte in
 * a name and any depth: directories are walked with an explicit stack, and
 * at most WALK_MAX_FDS directory fds are open at once; deeper ancestors are
 * closed and reopened through ".." on the way back, their dev/ino checked.
 */
#ifndef VUNIFY_WALK_H
#define VUNIFY_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#define WALK_MAX_FDS 64

struct walk_entry {
	int dirfd;		/* open directory holding @name */
	const char *name;	/* entry name (any bytes but '/' and NUL) */
	const char *path;	/* guest-relative path, "/" first; for messages */
	const struct statx *stx;/* lstat of the entry */
	size_t depth;		/* of the directory holding it; root = 0 */
	size_t index;		/* position in that directory's visiting order */
};

/* A directory's entries, in visiting order, as the walk loaded them. */
struct walk_dir {
	int dirfd;
	size_t depth, n;
	const char *const *names;
	const unsigned char *types;	/* d_type (DT_REG, DT_DIR, ... or DT_UNKNOWN) */
};

enum walk_action { WALK_CONTINUE = 0, WALK_SKIP_DIR = 1 };

/* Called for every entry (directories before their contents).  Return
 * WALK_CONTINUE, WALK_SKIP_DIR (for directories: do not descend), or a
 * negative errno to stop the walk. */
typedef int (*walk_fn)(void *ctx, const struct walk_entry *e);
/* Called for problems the walk itself hits (path, reason as errno). */
typedef void (*walk_err_fn)(void *ctx, const char *path, int err, const char *what);

struct walk_ops {
	walk_fn entry;
	walk_err_fn error;
	void *ctx;
	bool sort_by_inode;	/* visit a directory's entries in inode order */
	size_t max_fds;		/* directory fds held at most; 0: WALK_MAX_FDS */
	/* Optional: a directory was loaded (before its entries are visited) /
	 * is done.  Lets a caller work ahead of the walk (vunify/prehash.c).
	 * The name strings of a walk_dir stay valid until its dir_done. */
	void (*dir_loaded)(void *ctx, const struct walk_dir *d);
	void (*dir_done)(void *ctx, size_t depth);
	/* Optional: called for a directory once all of its entries were
	 * visited (post-order, so a caller can remove a tree bottom-up), with
	 * dirfd its parent (reopened if the walk had closed it), its name, its
	 * path and the lstat the walk entered it with.  Not called for the
	 * root, nor for a directory whose parent could not be reopened.  A
	 * negative errno stops the walk. */
	walk_fn leave;
};

/* Walk the tree below the open directory @rootfd (which is not reported
 * itself).  The walk reads @rootfd's directory through an open file
 * description of its own: it neither uses nor moves @rootfd's offset, so
 * several walks of one fd may run at once (unify and its read-ahead).
 * Returns 0, or the negative errno an entry callback returned. */
int walk_tree(int rootfd, const struct walk_ops *ops);

/*
 * Open the regular file @name in @dirfd for reading without ever opening
 * anything else: O_PATH|O_NOFOLLOW first (which opens nothing: no device
 * driver's open, no fifo wait), check that it is a regular file, then reopen
 * that very inode through /proc/self/fd.  Its stat goes to *st.  -ESTALE:
 * not a regular file (any more); other negative errno on failure.
 */
int walk_open_regular(int dirfd, const char *name, struct stat *st);

#endif
