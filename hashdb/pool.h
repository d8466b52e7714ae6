/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pool: POOL/ holds one subdirectory per guest and its own state in
 * POOL/.hashdb/ (mode 0700, never a guest):
 *
 *   objects/xx/HASH[.N]  one hard link per unique identity (xx = first two
 *                        hex digits); .N are further objects of one identity
 *                        started when ext4's link limit (EMLINK) is reached
 *   cache/NAME.sc        per-guest stat cache (hashdb/statcache.h)
 *   lock                 flock held by a whole vunify run (holder pid inside)
 *   flags.lock           flock held around every immutable-flag toggle, and
 *                        the flag journal (cowlink/cowlink.h)
 *   tmp/                 copy-ups in progress: an O_TMPFILE gets its name
 *                        here just before it is renamed into a guest
 *   config               per-pool configuration (optional)
 *
 * Beside the guests, POOL/.removing~GUEST is a guest vunify remove is taking
 * apart (HASHDB_REMOVING_PREFIX) and POOL/.cloning~NEW one vunify clone is
 * building (HASHDB_CLONING_PREFIX): never guests themselves.
 */
#ifndef HASHDB_POOL_H
#define HASHDB_POOL_H

#include <dirent.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cowlink/cowlink.h"

#define HASHDB_DIR ".hashdb"
/* vunify remove renames POOL/GUEST to POOL/.removing~GUEST before taking it
 * apart, so that no command lists it as a guest any more and a rerun after
 * a crash finds what is left of it. */
#define HASHDB_REMOVING_PREFIX ".removing~"
/* vunify clone builds a new guest as POOL/.cloning~NEW and renames it to
 * POOL/NEW once complete: not a guest until then. */
#define HASHDB_CLONING_PREFIX ".cloning~"
/* Is @name, at the pool's top level, one of the above (a guest being
 * removed or being cloned)?  No command lists it, cowfs hides it. */
bool hashdb_is_transient_name(const char *name);
#define HASHDB_MAX_GEN 1000

struct hashdb_pool {
	int dirfd;	/* POOL */
	int statefd;	/* POOL/.hashdb */
	int objfd;	/* POOL/.hashdb/objects */
	int cachefd;	/* POOL/.hashdb/cache */
	int lockfd;	/* POOL/.hashdb/lock, -1 until hashdb_pool_lock */
	int flagfd;	/* POOL/.hashdb/flags.lock */
	dev_t dev;
	int flags_restored;	/* by the recovery at open (hashdb_recover_flags) */
	bool flags_scanned;	/* that recovery checked every object */
};

/* Open POOL (a directory, never through a symlink as its last component);
 * create .hashdb and its parts when @create.  Without @create, a pool whose
 * state does not exist yet opens with statefd (and the other state fds) -1:
 * it has no objects. */
int hashdb_pool_open(const char *path, bool create, struct hashdb_pool *p);
/* A pool that is not open (every fd -1): what hashdb_pool_close leaves,
 * and safe to close. */
void hashdb_pool_init(struct hashdb_pool *p);
void hashdb_pool_close(struct hashdb_pool *p);
/*
 * Restore whatever immutable flags a crash left cleared, under the flag
 * lock: the flag journal's record (cowlink_flags_replay), and, at the first
 * recovery after a reboot, every object in objects/ that carries its marker
 * but not its flag.  @statefd is POOL/.hashdb, @lockfd its flags.lock.
 * hashdb_pool_open calls it; cowfs calls it at mount.  @fn is told each inode
 * restored.  Returns how many (>= 0) or a negative errno; *scanned says
 * whether every object was checked.
 */
int hashdb_recover_flags(int statefd, int lockfd, cowlink_restored_fn fn, void *ctx,
			 bool *scanned);
/* Remove named copy-up temporaries in POOL/.hashdb/tmp whose process is
 * gone (a kill between naming an O_TMPFILE and renaming it into place). */
int hashdb_clean_staging(int statefd);
#define HASHDB_STAGING "tmp"

/* Is @name (a directory of the pool) a guest's name?  Not the state, not
 * lost+found, not a guest being removed or cloned
 * (hashdb_is_transient_name).  vunify's
 * guest list and cowfs's guest mode agree through this. */
bool hashdb_is_guest_name(const char *name);

/* Open the directory @name of @dirfd ("." for @dirfd itself), never
 * through a symlink, for readdir: the pool itself (for its guests) and its
 * state's directories (objects/ and its shards, cache/, tmp/).  0 or a
 * negative errno; dirfd(*d) is the directory's fd, closed by closedir. */
int hashdb_opendir(int dirfd, const char *name, DIR **d);

/* Take the run lock without waiting; -EWOULDBLOCK when another run holds it
 * (its pid in *holder, 0 if unknown). */
int hashdb_pool_lock(struct hashdb_pool *p, pid_t *holder);

/* Remove the temporary files a killed run left in cache/ (a stat cache
 * being written when the run died).  Only while holding the run lock:
 * another run's file in progress looks the same.  Returns how many. */
int hashdb_pool_clean_tmp(struct hashdb_pool *p);

/*
 * Object names: objects/xx/HASH for the first object of an identity,
 * objects/xx/HASH.N (1 <= N < HASHDB_MAX_GEN, no leading zeros) for the
 * next ones; the shard directory xx is the first two hex digits of HASH.
 * The writer and the parsers of that format are these, and no others.
 */
/* "xx/HASH" or "xx/HASH.N" into @buf (at least 48 bytes). */
void hashdb_object_name(const char *hex, unsigned gen, char *buf, size_t len);
/* Parse an object's file name in its shard, "HASH" or "HASH.N", into @hex
 * and *gen.  -EINVAL when @name is no object's name. */
int hashdb_object_parse_name(const char *name, char hex[COWLINK_HEX_LEN + 1], unsigned *gen);
/* Is @name a shard directory's name (two lowercase hex digits)? */
bool hashdb_shard_valid(const char *name);
/* Does the object @hex belong in shard directory @shard? */
bool hashdb_object_in_shard(const char *hex, const char *shard);
/* Open object (hex, gen) O_RDONLY; its stat into *st when not NULL. */
int hashdb_object_open(struct hashdb_pool *p, const char *hex, unsigned gen, struct stat *st);
/* Is inode (dev, ino) one of the objects of @hex?  Returns its gen or
 * -ENOENT. */
int hashdb_object_find_ino(struct hashdb_pool *p, const char *hex, dev_t dev, ino_t ino);
/* Make the open file @fd object (hex, gen): link it into objects/.
 * -EEXIST when that object exists already. */
int hashdb_object_adopt(struct hashdb_pool *p, int fd, const char *hex, unsigned gen);
/* Same mode, owner, group, size and mtime: what a chmod, chown, utimes or
 * write since a check would change (ctime cannot tell: linking, renaming
 * and flagging move it too). */
bool hashdb_same_observed(const struct stat *a, const struct stat *b);
/*
 * Replace @name in @dirfd, which must still be the inode @want, by a link of
 * object @objfd.  The object is linked to the temporary name @tmp beside it
 * and exchanged with @name (RENAME_EXCHANGE), and only then is the old inode
 * checked: if someone replaced @name since it was opened (a guest's
 * "write new, rename over"), or changed its metadata since @want was taken
 * (hashdb_same_observed), the exchange is undone and -ESTALE returned, so
 * no name and no change is ever lost.  Names of an immutable inode can't be renamed
 * either, so this runs with the object's flag cleared under the flag lock.
 * On failure @tmp is gone and @name is as it was.  -EMLINK: object full.
 */
int hashdb_object_link_over(struct hashdb_pool *p, int objfd, int dirfd, const char *tmp,
			    const char *name, const struct stat *want);

#endif
