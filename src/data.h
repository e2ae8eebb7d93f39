/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * data.h -- file contents: read, write, truncate, punch, allocate, seek.
 *
 * Data goes straight into device pages and is persisted before the
 * transaction that makes it reachable commits. New pages are never
 * readable before every byte of them is written or zeroed. Shared pages
 * (clones) are copied on write. Callers hold the inode's lock.
 */
#ifndef KMEMFS_DATA_H
#define KMEMFS_DATA_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "format.h"

struct kmfs_fs;
struct txn;

/*
 * A source of bytes for a write: COPY fills DST with the next LEN bytes;
 * COPY_FD, if set, writes them to file FD at offset OFF instead (splice or
 * pwrite, without a bounce buffer). SHORT_ERR, if set, receives why a write
 * stored fewer bytes than asked when a store failed (-errno); it is left
 * alone for the usual reason, a full filesystem (ENOSPC).
 */
struct data_src {
	int (*copy)(void *arg, void *dst, size_t len);
	void *arg;
	int (*copy_fd)(void *arg, int fd, uint64_t off, size_t len);
	int *short_err;
};

/* receives the pieces of a read; called with the inode still locked */
typedef int (*data_reply_fn)(void *arg, const struct iovec *iov, int n);

int data_read(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t off,
	      size_t size, data_reply_fn reply, void *arg);
/*
 * data_overwrite -- write in place when every page of the range is mapped,
 * owned by this file alone and inside its size: no allocation, no
 * transaction, so the inode's lock may be shared with other overwrites and
 * readers (not with anything that maps, shares or frees its pages). Returns
 * bytes written (fewer when a store failed after earlier runs had been
 * stored), -EAGAIN when the range needs data_write, or -errno.
 */
ssize_t data_overwrite(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t off,
		       size_t size, const struct data_src *src);
/*
 * data_write, data_truncate, data_punch, data_allocate and data_clone may
 * also return -PAGES_ERECLAIM (pages.h) when only a lent unit could give
 * them pages: they have then changed nothing a rerun would not redo the
 * same way, and the caller retries after pages_take_back, unlocked.
 */
/* data_write -- returns bytes written or -errno. Fewer bytes only when the
 * filesystem is full: the whole pages that fit, as a kernel filesystem
 * writes them; -ENOSPC when not one page does. Otherwise all or nothing.
 * Without TAKE_BACK, pages only a lent unit could give count as missing
 * (no -PAGES_ERECLAIM): for the run after the kernel kept its units. */
ssize_t data_write(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t off,
		   size_t size, const struct data_src *src, bool take_back);
/* data_truncate -- set the size; AND_THEN (when not NULL) makes the rest of
 * the caller's change (a setattr's mode, owner, times) in the same
 * transaction, so that the call changes everything or nothing */
typedef int (*data_and_then_fn)(struct txn *t, void *arg);
int data_truncate(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t size,
		  data_and_then_fn and_then, void *arg);
int data_punch(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t off,
	       uint64_t len);
int data_allocate(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t off,
		  uint64_t len, int keep_size);
/* data_zero_range -- fallocate(FALLOC_FL_ZERO_RANGE): the range reads as
 * zeroes and is allocated, all or nothing on a format 3 pool (pages the file
 * owns become unwritten in place); on 2.x a punch, then an allocation */
int data_zero_range(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t off,
		    uint64_t len, int keep_size);
/* data_seek -- SEEK_DATA / SEEK_HOLE */
int64_t data_seek(struct kmfs_fs *fs, struct kmfs_inode *ino, int64_t off,
		  int whence);
/*
 * data_clone -- make DST's bytes [doff, doff+len) those of SRC at soff:
 * whole pages are shared copy-on-write, unaligned edges copied (or, with
 * MUST_SHARE, -EINVAL). Returns bytes done (short at SRC's end).
 */
ssize_t data_clone(struct kmfs_fs *fs, struct kmfs_inode *src, uint64_t soff,
		   struct kmfs_inode *dst, uint64_t doff, uint64_t len,
		   bool must_share);
/* data_release_all -- drop every page of an inode; caller in txn */
int data_release_all(struct txn *t, struct kmfs_inode *ino);

#endif
