/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kmemfs/ioctl.h -- ioctls a program sends to files on a kmemfs mount.
 * Fixed-width fields only; KMEMFS_IOCTL_VERSION changes with any struct.
 */
#ifndef KMEMFS_IOCTL_H
#define KMEMFS_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define KMEMFS_IOCTL_VERSION 1
#define KMEMFS_IOC_MAGIC 'K'

/* Filesystem figures, in 4 KiB pages unless named otherwise. */
struct kmemfs_stat {
	__u32 version;          /* KMEMFS_IOCTL_VERSION */
	__u32 page_size;
	__u64 total_pages;
	__u64 used_pages;       /* referenced by files (shared counted once) */
	__u64 shared_pages;     /* referenced by more than one file */
	__u64 free_pages;       /* present and free */
	__u64 lent_pages;       /* given to the host or kernel */
	__u64 units_lent;       /* lend events since mount */
	__u64 units_reclaimed;  /* reclaim events since mount */
	__u64 reclaim_failures;
	__u64 meta_bytes_total; /* pool bytes outside the data arenas */
	__u64 meta_bytes_used;
	__u64 lend_ns;          /* time spent lending since mount */
	__u64 reclaim_ns;       /* time spent taking units back */
	__u64 requests_ring;    /* FUSE requests served through io_uring */
	__u64 requests_dev;     /* and through /dev/fuse reads, since mount */
	__u64 opens_direct;     /* file opens that bypassed the page cache */
	__u64 opens_cached;     /* and that kept it, since mount (-o cache=) */
	__u64 pages_released;   /* free pages handed back to the host one by
				 * one (pool file in RAM), since mount */
	__u64 requests_polled;  /* /dev/fuse requests a worker took while
				 * polling, without sleeping (-o poll=) */
};

/*
 * Clone a range of the file SRC_FD names into the file the ioctl is sent
 * to, sharing pages copy-on-write; fails rather than copies when it
 * cannot share (offsets not page-aligned alike, other filesystem). A
 * length of 0 means to the end of the source. SRC_FD must be open for
 * reading and the target for writing. Like a write, a clone takes
 * setuid (and setgid of a group-executable file) off the target unless
 * root sends it, and security.capability always.
 */
struct kmemfs_clone_range {
	__s64 src_fd;
	__u64 src_offset;
	__u64 src_length;
	__u64 dest_offset;
};

#define KMEMFS_IOC_CLONE_RANGE _IOW(KMEMFS_IOC_MAGIC, 0x11, struct kmemfs_clone_range)
#define KMEMFS_IOC_STAT _IOR(KMEMFS_IOC_MAGIC, 0x10, struct kmemfs_stat)

#endif
