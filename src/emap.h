/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * emap.h -- per-file extent maps: file page -> device page runs.
 *
 * A two-level tree (format.h): an index of leaves, each a sorted array of
 * extents. Contiguous data is one extent, however large the file.
 */
#ifndef KMEMFS_EMAP_H
#define KMEMFS_EMAP_H

#include <stdint.h>

#include "format.h"

struct kmfs_pool;
struct txn;

#define EMAP_HOLE UINT64_MAX

/* called for each run of device pages an operation removes from the map */
typedef int (*emap_removed_fn)(void *arg, uint64_t dpage, uint64_t count);
/* called for each extent by emap_walk; non-zero stops the walk */
typedef int (*emap_walk_fn)(void *arg, const struct kmfs_extent *e);

/*
 * emap_lookup -- find the extent holding FPAGE (returns 0), or the first
 * extent after it (returns 1), or none after it (-ENOENT). Caller holds
 * the inode's lock.
 */
int emap_lookup(const struct kmfs_pool *p, const struct kmfs_inode *ino,
		uint64_t fpage, struct kmfs_extent *out);

/*
 * emap_replace -- map file pages [fpage, fpage+count) to device pages
 * starting at DPAGE with extent FLAGS (KMFS_EXT_*), or unmap them when
 * DPAGE is EMAP_HOLE. Each run the old map held there is passed to
 * REMOVED (to drop its references), when not NULL. Keeps ino->blocks
 * right. Caller is inside a transaction.
 */
int emap_replace(struct txn *t, struct kmfs_inode *ino, uint64_t fpage,
		 uint64_t count, uint64_t dpage, uint32_t flags,
		 emap_removed_fn removed, void *arg);

/*
 * emap_make_room -- make the leaf that holds FPAGE able to take EXTRA more
 * extents without an allocation (growing or splitting it now), so that an
 * emap_replace inside one extent of it that adds at most EXTRA cannot fail
 * for metadata space. Returns 0, or -ENOSPC with the map as it was.
 * Caller is inside a transaction.
 */
int emap_make_room(struct txn *t, struct kmfs_inode *ino, uint64_t fpage,
		   uint32_t extra);

/*
 * emap_convert -- give file pages [fpage, fpage+count), which one extent
 * holds, the extent FLAGS: that extent is cut in up to three in its own
 * leaf, and joined with neighbours that match. Allocates only when the
 * leaf lacks the room (emap_make_room with 2 first: then never).
 * Caller is inside a transaction.
 */
int emap_convert(struct txn *t, struct kmfs_inode *ino, uint64_t fpage,
		 uint64_t count, uint32_t flags);

/*
 * emap_set_flags -- give the whole extent holding FPAGE the extent FLAGS,
 * in place (no allocation); *OUT receives it as it now is. -ENOENT when
 * FPAGE is not mapped. Caller is inside a transaction.
 */
int emap_set_flags(struct txn *t, struct kmfs_inode *ino, uint64_t fpage,
		   uint32_t flags, struct kmfs_extent *out);

/* emap_walk -- every extent in file order */
int emap_walk(const struct kmfs_pool *p, const struct kmfs_inode *ino,
	      emap_walk_fn fn, void *arg);

/* emap_destroy -- unmap everything and free the map; caller in a txn */
int emap_destroy(struct txn *t, struct kmfs_inode *ino,
		 emap_removed_fn removed, void *arg);

#endif
