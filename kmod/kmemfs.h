/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kmemfs.h -- shared state of kmemfs.ko.
 *
 *   kmemfs_main.c  module init/exit, /dev/kmemfs, ioctl dispatch, attach/detach
 *   kmemfs_mem.c   the memory side: claim, hot-add, online callback, notifier,
 *                  lend/reclaim, unit states
 *   kmemfs_dev.c   the device file handed to the daemon (mmap/fault/read/write)
 *
 * Lock order (outermost first):
 *   kmemfs_lock (main.c) -> kdev->ops_lock -> [mem_hotplug_lock, taken by
 *   the core] -> map_lock
 *   mmap_lock -> kdev->map_lock
 * kmemfs_lock serialises attach, query and detach, and finding the device.
 * LEND and RECLAIM hold only ops_lock for read (detach marks the device
 * detach_pending, lets go of kmemfs_lock, and takes ops_lock for write to
 * wait for those in flight): a RECLAIM can wait in alloc_contig_range for a
 * folio the kernel keeps locked until the daemon answers a request, and
 * answering it may need a LEND of other units to finish first. Units in
 * flight are marked KMEMFS_UNIT_LENDING or KMEMFS_UNIT_RECLAIMING under
 * map_lock, so two requests never work on one unit. The online-page
 * callback and the memory notifier run under mem_hotplug_lock and take only
 * map_lock. Nothing is copied from or to
 * user space while map_lock is held (a fault on our own mapping would take
 * it again).
 */
#ifndef KMEMFS_KMOD_H
#define KMEMFS_KMOD_H

#include <linux/atomic.h>
#include <linux/kref.h>
#include <linux/rwsem.h>
#include <linux/types.h>
#include <linux/version.h>
#include <linux/mmzone.h>

#include "../include/kmemfs/uapi.h"

#define KMEMFS_UNIT_PAGES (KMEMFS_UNIT_SIZE >> PAGE_SHIFT)

/*
 * Largest buddy order handed to generic_online_page(). The meaning of
 * MAX_ORDER changed in 6.4 (exclusive -> inclusive) and it was renamed
 * MAX_PAGE_ORDER in 6.8.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
#define KMEMFS_MAX_ORDER MAX_PAGE_ORDER
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define KMEMFS_MAX_ORDER MAX_ORDER
#else
#define KMEMFS_MAX_ORDER (MAX_ORDER - 1)
#endif

/*
 * State of one 4 MiB unit of the hot part. Changed only through
 * unit_set_state() in kmemfs_mem.c, which keeps the counters right.
 */
enum kmemfs_unit_state {
	/* its memory block is offline: no memmap; the filesystem's, unmappable */
	KMEMFS_UNIT_OFFLINE = 0,
	/* online, never given to the buddy: PageOffline + PageDirty, ref 1 */
	KMEMFS_UNIT_HELD_FRESH,
	/* taken back by alloc_contig_range: PageOffline, ref 1, not managed */
	KMEMFS_UNIT_HELD,
	/* given to the buddy allocator: the kernel's, never mapped for us */
	KMEMFS_UNIT_LENT,
	/* lent, and its block went offline (a detach that then rolled back) */
	KMEMFS_UNIT_LENT_OFFLINE,
	/* a LEND is handing it to the buddy (counts as lent) */
	KMEMFS_UNIT_LENDING,
	/* lent, and a RECLAIM is taking it back (counts as lent until done) */
	KMEMFS_UNIT_RECLAIMING,
	KMEMFS_UNIT_NR_STATES
};

struct kmemfs_dev {
	struct kref ref;                /* attach + device-file inode */

	/* geometry, fixed at attach */
	phys_addr_t start, size;        /* the whole device */
	phys_addr_t hot_start, hot_end; /* hot-added, memory-block aligned */
	int nid;
	unsigned long nr_units;         /* units in the hot part */

	/* set up by kmemfs_mem_attach(), undone by kmemfs_mem_detach() */
	struct resource *res;           /* whole device, not busy (kmem.c) */
	struct resource *head_res, *tail_res; /* busy claims outside hot part */
	void *head_va, *tail_va;        /* memremap(MEMREMAP_WB) of head/tail */
	int mgid;                       /* static memory group */

	/*
	 * Protects unit_state[] and gone against the fault handler: a fault
	 * maps a page only while holding it for read, state changes that take
	 * units away from the filesystem hold it for write.
	 */
	struct rw_semaphore map_lock;
	u8 *unit_state;                 /* enum kmemfs_unit_state per unit */
	bool detaching;                 /* detach in progress: faults SIGBUS */
	bool gone;                      /* detached: no access at all */

	/* LEND and RECLAIM hold it for read, detach for write */
	struct rw_semaphore ops_lock;
	bool detach_pending;            /* under kmemfs_lock: find_dev skips it */

	/* nr_state under map_lock; the others are updated by concurrent ioctls */
	unsigned long nr_state[KMEMFS_UNIT_NR_STATES];
	atomic64_t lend_events, reclaim_events, reclaim_failures;
	atomic64_t lend_ns, reclaim_ns;

	struct inode *inode;            /* the device file's inode */
};

/* kmemfs_main.c */
void kmemfs_dev_put(struct kmemfs_dev *kdev);

/* kmemfs_mem.c */
int kmemfs_mem_attach(struct kmemfs_dev *kdev);
int kmemfs_mem_detach(struct kmemfs_dev *kdev);
int kmemfs_mem_lend(struct kmemfs_dev *kdev, u64 off, u64 len, u64 *done);
int kmemfs_mem_reclaim(struct kmemfs_dev *kdev, u64 off, u64 len, u64 *done);
bool kmemfs_mem_page_held(struct kmemfs_dev *kdev, pgoff_t pgoff);
void *kmemfs_mem_kaddr(struct kmemfs_dev *kdev, pgoff_t pgoff);

/* kmemfs_dev.c */
int kmemfs_file_init(void);
void kmemfs_file_exit(void);
int kmemfs_file_create(struct kmemfs_dev *kdev);
struct file *kmemfs_file_open(struct kmemfs_dev *kdev);
void kmemfs_file_revoke(struct kmemfs_dev *kdev, u64 off, u64 len);
void kmemfs_file_destroy(struct kmemfs_dev *kdev);

#endif
