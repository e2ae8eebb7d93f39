/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dir.h -- directories: name -> inode, constant time for any size.
 *
 * Entries form one list sorted by a 63-bit keyed hash of their name (the
 * "cookie", which is also the readdir offset, stable across inserts,
 * removes and table growth, except for the entries a remove moves back
 * into a run of colliding hashes); a bucket table indexes the list by the
 * cookie's top bits.
 */
#ifndef KMEMFS_DIR_H
#define KMEMFS_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

struct kmfs_pool;
struct txn;

struct dir_entry {
	const char *name;
	uint16_t namelen;
	uint8_t type;       /* DT_* */
	uint64_t ino_off;
	uint64_t cookie;
};

/* called per entry by dir_iter; non-zero stops */
typedef int (*dir_iter_fn)(void *arg, const struct dir_entry *e);

/* dir_init -- give a new directory inode an empty table; caller in txn */
int dir_init(struct txn *t, struct kmfs_inode *dir);
/* dir_destroy -- free the (empty) table; caller in txn */
int dir_destroy(struct txn *t, struct kmfs_inode *dir);
int dir_lookup(const struct kmfs_pool *p, const struct kmfs_inode *dir,
	       const char *name, size_t len, struct dir_entry *out);
/* dir_add -- -EEXIST when the name is taken, -ENOSPC when its hash run is
 * full (KMFS_DIR_RUN_MAX); caller in txn */
int dir_add(struct txn *t, struct kmfs_inode *dir, const char *name,
	    size_t len, uint64_t ino_off, uint8_t type);
/* dir_add_kept -- dir_add without the run limit, for fsck's rebuild and
 * reconnect and for dir_rehash: the limit is for the names users make, not
 * a rule of the format, and a pool of format 1 may hold longer runs */
int dir_add_kept(struct txn *t, struct kmfs_inode *dir, const char *name,
		 size_t len, uint64_t ino_off, uint8_t type);
/* dir_rehash -- the same entries in a new table hashed as dir_init makes
 * them (SipHash in a format 2 pool); their readdir offsets change. Caller
 * in txn, which holds every entry twice until it commits. */
int dir_rehash(struct txn *t, struct kmfs_inode *dir);
/* dir_remove -- -ENOENT when missing; caller in txn */
int dir_remove(struct txn *t, struct kmfs_inode *dir, const char *name,
	       size_t len);
/* dir_retarget -- point an existing entry at another inode; caller in txn */
int dir_retarget(struct txn *t, struct kmfs_inode *dir, const char *name,
		 size_t len, uint64_t ino_off, uint8_t type);
bool dir_is_empty(const struct kmfs_pool *p, const struct kmfs_inode *dir);
/* dir_unkeyed -- DIR (an inode of any type) is a directory whose table
 * hashes names with FNV, without the pool's key: format 1, or an upgrade
 * cut short */
bool dir_unkeyed(const struct kmfs_pool *p, const struct kmfs_inode *dir);
/* dir_iter -- entries with cookie > AFTER in cookie order */
int dir_iter(const struct kmfs_pool *p, const struct kmfs_inode *dir,
	     uint64_t after, dir_iter_fn fn, void *arg);
uint64_t dir_count(const struct kmfs_pool *p, const struct kmfs_inode *dir);

/* dir_hash -- the hash of a name in table TAB, as its hash_kind says;
 * exposed for fsck, and a pointer so that tests can make names collide */
extern uint64_t (*dir_hash)(const struct kmfs_pool *p,
			    const struct kmfs_dirtable *tab, const char *name,
			    size_t len);

#endif
