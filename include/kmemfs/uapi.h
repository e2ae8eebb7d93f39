/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR BSD-3-Clause */
/*
 * kmemfs/uapi.h -- the ABI between the kmemfs daemon and kmod/kmemfs.ko.
 *
 * The module is a misc device, /dev/kmemfs (root only: CAP_SYS_ADMIN on open
 * and on every ioctl). It turns one persistent-memory range (a devdax device
 * unbound from device_dax) into System RAM that the filesystem can lend to
 * the kernel's buddy allocator and take back, 4 MiB unit by 4 MiB unit.
 *
 * Geometry (all physical addresses, all in bytes):
 *
 *   phys_start                                             phys_start + size
 *   |-- head --|======== hot part: memory blocks ========|-- tail --|
 *              hot_start                                 hot_end
 *
 * The hot part is the memory-block-aligned part of the device; it is
 * hot-added as System RAM (ZONE_MOVABLE once the daemon onlines its blocks)
 * and only it can be lent. Head and tail are reached through the kernel's
 * memremap() and are always the filesystem's.
 *
 * Unit i of the hot part is the physical range
 *   [hot_start + i * unit_size, hot_start + (i + 1) * unit_size)
 * i.e. the device offset  dev_offset = hot_start - phys_start + i * unit_size.
 * LEND and RECLAIM take device offsets and lengths that are whole units of
 * the hot part; QUERY's bitmap has bit i for unit i.
 *
 * Sequence (mount):   ATTACH -> write "online_movable" to
 *                     /sys/devices/system/memory/memory<first_block + k>/state
 *                     for k < nr_blocks -> open the pool on /proc/self/fd/<fd>
 *                     -> LEND the units the pool records as lent -> run.
 * Sequence (unmount): close the pool, close fd -> DETACH -> bind the device
 *                     to device_dax again.
 * After a daemon crash, ATTACH of the same range answers reattached = 1 with
 * a new fd; the module's unit states (QUERY) are what they were: nothing is
 * lent or reclaimed implicitly.
 *
 * ATTACH fails with EBUSY when the range is already System RAM, is owned by
 * another driver (still bound to device_dax?) or another device is attached
 * (one at a time), and with EEXIST when the kernel's online-page callback is
 * held by another driver (virtio-mem, a Hyper-V or Xen balloon): only one
 * driver can hold it. dmesg names the case.
 *
 * Structs hold fixed-width fields only; the one user pointer is a __u64.
 * KMEMFS_UAPI_VERSION changes with any struct or ioctl.
 */
#ifndef KMEMFS_UAPI_H
#define KMEMFS_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define KMEMFS_UAPI_VERSION 1
#define KMEMFS_DEV_NAME "kmemfs"        /* /dev/kmemfs */
#define KMEMFS_UNIT_SIZE (4ULL << 20)   /* the only unit size supported */

/* KMEMFS_IOC_ATTACH */
struct kmemfs_attach {
	__u32 version;          /* in: KMEMFS_UAPI_VERSION */
	__u32 flags;            /* in: 0 */
	__u64 phys_start;       /* in: device's physical start, page-aligned */
	__u64 size;             /* in: device's size, page-aligned */
	__s32 nid;              /* in: NUMA node for the memory (dax target_node) */
	__u32 unit_size;        /* in: KMEMFS_UNIT_SIZE */
	__u64 hot_start;        /* out: first byte of the hot part (physical) */
	__u64 hot_end;          /* out: end of the hot part; == hot_start: none */
	__u64 first_block;      /* out: memory block number of hot_start */
	__u64 nr_blocks;        /* out: memory blocks in the hot part */
	__u64 block_size;       /* out: memory block size */
	__s32 fd;               /* out: O_RDWR|O_CLOEXEC fd of the device file */
	__u32 reattached;       /* out: 1 if the range was already attached */
	__u64 reserved[4];      /* must be 0 */
};

/* KMEMFS_IOC_LEND, KMEMFS_IOC_RECLAIM */
struct kmemfs_range {
	__u64 phys_start;       /* in: the attached device (its phys_start) */
	__u64 dev_offset;       /* in: whole units of the hot part */
	__u64 len;              /* in: > 0, whole units */
	__u64 done;             /* out: bytes lent/reclaimed from dev_offset on */
	__u64 reserved[2];      /* must be 0 */
};

/*
 * KMEMFS_IOC_QUERY. bitmap_addr (0: none) points to bitmap_bits bits, stored
 * as __u64 words: unit i is bit (i % 64) of word i / 64; 1 = lent. The
 * module writes min(bitmap_bits, nr_units) bits, rounded up to whole words.
 */
struct kmemfs_query {
	__u64 phys_start;       /* in: the attached device */
	__u64 bitmap_addr;      /* in: user address of the bitmap, or 0 */
	__u64 bitmap_bits;      /* in: its length in bits (a multiple of 64) */
	__u64 nr_units;         /* out: units in the hot part */
	__u64 units_lent;       /* out: units in the kernel's hands now */
	__u64 units_held;       /* out: units the filesystem holds, blocks online */
	__u64 units_offline;    /* out: units whose memory block is offline */
	__u64 lend_events;      /* out: units lent since attach */
	__u64 reclaim_events;   /* out: units reclaimed since attach */
	__u64 reclaim_failures; /* out: units the kernel would not give back */
	__u64 lend_ns;          /* out: time spent lending */
	__u64 reclaim_ns;       /* out: time spent reclaiming (incl. failures) */
	__u64 reserved[4];
};

/* KMEMFS_IOC_DETACH */
struct kmemfs_detach {
	__u64 phys_start;       /* in: the attached device */
	__u64 size;             /* in: its size, as attached */
	__u64 reserved[2];      /* must be 0 */
};

#define KMEMFS_IOC_MAGIC 'k'
#define KMEMFS_IOC_ATTACH _IOWR(KMEMFS_IOC_MAGIC, 0x40, struct kmemfs_attach)
#define KMEMFS_IOC_LEND _IOWR(KMEMFS_IOC_MAGIC, 0x41, struct kmemfs_range)
#define KMEMFS_IOC_RECLAIM _IOWR(KMEMFS_IOC_MAGIC, 0x42, struct kmemfs_range)
#define KMEMFS_IOC_QUERY _IOWR(KMEMFS_IOC_MAGIC, 0x43, struct kmemfs_query)
#define KMEMFS_IOC_DETACH _IOW(KMEMFS_IOC_MAGIC, 0x44, struct kmemfs_detach)

#endif
