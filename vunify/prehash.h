/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prehash: a second thread that hashes the regular files of the directories
 * being walked a little ahead of the main thread.  On a cold cache its reads
 * overlap the main thread's metadata work (and keep the disk busy); on a
 * warm one hashing moves to the second core.  The main thread takes a
 * result only when the file's (ino, size, mtime, ctime) are still those the
 * worker hashed; otherwise, and for anything the worker did not get to, it
 * hashes the file itself.  Results are only a shortcut: every byte is still
 * compared before anything is linked.
 */
#ifndef VUNIFY_PREHASH_H
#define VUNIFY_PREHASH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "hashdb/hash.h"
#include "hashdb/statcache.h"
#include "vunify/walk.h"

struct prehash;

/* @sc is read (never written) by the worker to skip files the stat cache
 * already knows; it must stay valid until prehash_guest_done(). */
int prehash_start(struct prehash **ph);
void prehash_guest(struct prehash *ph, const struct hashdb_statcache *sc, bool ignore_mtime);
void prehash_guest_done(struct prehash *ph);
void prehash_dir_loaded(struct prehash *ph, const struct walk_dir *d);
void prehash_dir_done(struct prehash *ph, size_t depth);
/* The content hash of entry @index of the directory at @depth, if the
 * worker hashed exactly the file described by @st: 1 and *out / *bytes
 * set; 0 when the caller must hash it itself. */
int prehash_take(struct prehash *ph, size_t depth, size_t index, const struct stat *st,
		 struct hashdb_hash *out, uint64_t *bytes);
void prehash_stop(struct prehash *ph);

#endif
