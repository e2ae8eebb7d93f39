// SPDX-License-Identifier: GPL-2.0
/*
 * kmemfs_mem.c -- the memory side of kmemfs.ko: claim the device's range,
 * hot-add its memory-block-aligned part as System RAM with every page held
 * by the filesystem, lend 4 MiB units to the buddy allocator and take them
 * back, and offline/remove it all at detach.
 *
 * The technique is virtio-mem's "fake offline": a held page is PageOffline
 * with one reference, so the buddy allocator never sees it, and a memory
 * notifier drops those references when we offline our own blocks.
 *
 * A unit's page flags while online (see enum kmemfs_unit_state):
 *   HELD_FRESH  PageOffline, PageDirty, ref 1   (never in the buddy)
 *   HELD        PageOffline, ref 1              (from alloc_contig_range)
 *   LENT        whatever the kernel does with it
 * Neither held kind counts in the zone's managed pages.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/ktime.h>
#include <linux/memory.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/module.h>
#include <linux/page-flags.h>
#include <linux/page_ref.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uio.h>

#include "kmemfs.h"

static unsigned int reclaim_retries = 5;
module_param(reclaim_retries, uint, 0644);
MODULE_PARM_DESC(reclaim_retries,
		 "alloc_contig_range attempts per unit before a reclaim fails with EBUSY (default 5)");

/*
 * Test hook (tests/vm/guest/kmod-reclaim-fail.sh): while set, every RECLAIM
 * fails at its first unit with EBUSY, as if the kernel would not give it
 * back; no unit changes state, reclaim_failures counts it as a failure.
 */
static bool fail_reclaim;
module_param(fail_reclaim, bool, 0644);
MODULE_PARM_DESC(fail_reclaim,
		 "test hook: fail every reclaim with EBUSY, nothing taken back (default 0)");

/*
 * Test hook (tests/vm/guest/kmod-concurrent.sh): a RECLAIM sleeps this long
 * once its units are marked, so a test can run other ioctls meanwhile.
 */
static unsigned int reclaim_delay_ms;
module_param(reclaim_delay_ms, uint, 0644);
MODULE_PARM_DESC(reclaim_delay_ms,
		 "test hook: sleep this long at the start of every reclaim (default 0)");

/*
 * The attached device the online-page callback and the memory notifier look
 * at. Written under kmemfs_lock before the callback is installed and cleared
 * after it is restored (restore_online_page_callback() and
 * unregister_memory_notifier() wait for callers in flight).
 */
static struct kmemfs_dev *kmemfs_active;

static bool hot_has_pfn(struct kmemfs_dev *kdev, unsigned long pfn)
{
	phys_addr_t pa = PFN_PHYS(pfn);

	return pa >= kdev->hot_start && pa < kdev->hot_end;
}

static unsigned long unit_of_pfn(struct kmemfs_dev *kdev, unsigned long pfn)
{
	return (PFN_PHYS(pfn) - kdev->hot_start) / KMEMFS_UNIT_SIZE;
}

static unsigned long unit_pfn(struct kmemfs_dev *kdev, unsigned long unit)
{
	return PHYS_PFN(kdev->hot_start) + unit * KMEMFS_UNIT_PAGES;
}

/* unit_set_state -- the one place a unit changes state; caller holds map_lock (write) */
static void unit_set_state(struct kmemfs_dev *kdev, unsigned long unit,
			   enum kmemfs_unit_state state)
{
	lockdep_assert_held_write(&kdev->map_lock);
	kdev->nr_state[kdev->unit_state[unit]]--;
	kdev->nr_state[state]++;
	kdev->unit_state[unit] = state;
}

static bool state_is_held(u8 s)
{
	return s == KMEMFS_UNIT_HELD_FRESH || s == KMEMFS_UNIT_HELD;
}

/* set_fake_offline -- hold pages: fresh ones were just onlined, others came from alloc_contig_range */
static void set_fake_offline(unsigned long pfn, unsigned long nr, bool fresh)
{
	page_offline_begin();
	for (; nr--; pfn++) {
		struct page *page = pfn_to_page(pfn);

		__SetPageOffline(page);
		if (fresh) {
			/* marks "never onlined"; Reserved would block offlining */
			SetPageDirty(page);
			ClearPageReserved(page);
		}
	}
	page_offline_end();
}

static void clear_fake_offline(unsigned long pfn, unsigned long nr, bool fresh)
{
	page_offline_begin();
	for (; nr--; pfn++) {
		struct page *page = pfn_to_page(pfn);

		__ClearPageOffline(page);
		if (fresh)
			ClearPageDirty(page);
	}
	page_offline_end();
}

/* online_to_buddy -- first-time onlining of pages in the largest orders allowed */
static void online_to_buddy(unsigned long pfn, unsigned long nr)
{
	while (nr) {
		unsigned int order = min_t(unsigned int, KMEMFS_MAX_ORDER,
					   min(__ffs(pfn), __fls(nr)));

		generic_online_page(pfn_to_page(pfn), order);
		pfn += 1UL << order;
		nr -= 1UL << order;
	}
}

/* give_unit -- hand one held unit's pages to the buddy; caller revoked all mappings */
static void give_unit(unsigned long pfn)
{
	struct page *page = pfn_to_page(pfn);

	/* all pages of a unit are alike: the first says how it was held */
	if (PageDirty(page)) {
		clear_fake_offline(pfn, KMEMFS_UNIT_PAGES, true);
		online_to_buddy(pfn, KMEMFS_UNIT_PAGES);
	} else {
		clear_fake_offline(pfn, KMEMFS_UNIT_PAGES, false);
		free_contig_range(pfn, KMEMFS_UNIT_PAGES);
		adjust_managed_page_count(page, KMEMFS_UNIT_PAGES);
	}
}

/* zero_unit -- clear a unit taken back from the kernel, through to the media */
static void zero_unit(unsigned long pfn)
{
	unsigned long i;

	for (i = 0; i < KMEMFS_UNIT_PAGES; i++) {
		void *addr = page_address(pfn_to_page(pfn + i));

#ifdef CONFIG_ARCH_HAS_UACCESS_FLUSHCACHE
		memcpy_flushcache(addr, page_address(ZERO_PAGE(0)), PAGE_SIZE);
#else
		clear_page(addr);
#endif
		if (!(i % 256))
			cond_resched();
	}
	wmb(); /* order the non-temporal stores before the unit is handed out */
}

/* page_locked -- PG_locked of the page's folio, read racily: the page may
 * be freed or its folio split meanwhile (no folio helper, whose debug
 * checks assert a stable head) */
static bool page_locked(unsigned long pfn)
{
	struct page *head = compound_head(pfn_to_page(pfn));

	return test_bit(PG_locked, &head->flags);
}

/*
 * unit_locked_pages -- the unit's pages whose folio is locked, or of those
 * already in @locked the ones still locked. The kernel keeps a FUSE file's
 * page-cache folio locked until the daemon answers the READ or WRITE that
 * needs it, and alloc_contig_range waits for folio locks without a time
 * limit: when the daemon's own request holds it (a write that needs this
 * very unit back), that wait never ends. Returns how many.
 */
static unsigned long unit_locked_pages(unsigned long pfn, unsigned long *locked,
				       bool first)
{
	unsigned long i, n = 0;

	for (i = 0; i < KMEMFS_UNIT_PAGES; i++) {
		if (!first && !test_bit(i, locked))
			continue;
		if (page_locked(pfn + i)) {
			__set_bit(i, locked);
			n++;
		} else {
			__clear_bit(i, locked);
		}
	}
	return n;
}

/*
 * take_unit -- alloc_contig_range one lent unit back, retrying like
 * virtio-mem. A folio locked at the start that stays locked through the
 * retries may be locked for the caller's own request: EBUSY, and the daemon
 * tries another unit. Folios locked briefly (I/O in flight, or locked after
 * the first look: requests other daemon threads answer) only delay it.
 */
static int take_unit(unsigned long pfn)
{
	DECLARE_BITMAP(locked, KMEMFS_UNIT_PAGES);
	unsigned long nlocked = unit_locked_pages(pfn, locked, true);
	unsigned int i;
	int rc = -EBUSY;

	for (i = 0; i < max(reclaim_retries, 1U); i++) {
		if (i)
			msleep(20);
		if (nlocked && i)
			nlocked = unit_locked_pages(pfn, locked, false);
		if (nlocked) {
			rc = -EBUSY;
			continue;
		}
		rc = alloc_contig_range(pfn, pfn + KMEMFS_UNIT_PAGES,
					MIGRATE_MOVABLE, GFP_KERNEL);
		if (!rc || rc == -ENOMEM || fatal_signal_pending(current))
			break;
		/* -EBUSY: pages pinned or in flight (PCP, LRU batches); retry */
	}
	if (rc == -EINTR)
		rc = -EBUSY;
	return rc;
}

/*
 * kmemfs_online_page -- the online-page callback. Our pages come here when
 * the daemon onlines a block: held units become fake-offline, units that
 * were lent before their block went offline go to the buddy again.
 * Runs under mem_hotplug_lock; takes map_lock only.
 */
static void kmemfs_online_page(struct page *page, unsigned int order)
{
	struct kmemfs_dev *kdev = READ_ONCE(kmemfs_active);
	unsigned long pfn = page_to_pfn(page);
	unsigned long end = pfn + (1UL << order);

	if (!kdev || !hot_has_pfn(kdev, pfn)) {
		generic_online_page(page, order);
		return;
	}
	WARN_ON_ONCE(!hot_has_pfn(kdev, end - 1));

	down_write(&kdev->map_lock);
	while (pfn < end) {
		unsigned long unit = unit_of_pfn(kdev, pfn);
		unsigned long uend = min(end, unit_pfn(kdev, unit + 1));

		switch (kdev->unit_state[unit]) {
		case KMEMFS_UNIT_LENDING:
		case KMEMFS_UNIT_RECLAIMING:
			/* only on online blocks; going offline needs a detach,
			 * which waits for LEND and RECLAIM (ops_lock) */
			WARN_ON_ONCE(1);
			fallthrough;
		case KMEMFS_UNIT_LENT_OFFLINE:
		case KMEMFS_UNIT_LENT:
			online_to_buddy(pfn, uend - pfn);
			unit_set_state(kdev, unit, KMEMFS_UNIT_LENT);
			break;
		default:
			set_fake_offline(pfn, uend - pfn, true);
			unit_set_state(kdev, unit, KMEMFS_UNIT_HELD_FRESH);
			break;
		}
		pfn = uend;
	}
	up_write(&kdev->map_lock);
}

/* drop (going offline) or retake (offline cancelled) the held pages' references */
static void held_refs(struct kmemfs_dev *kdev, unsigned long first,
		      unsigned long last, bool drop)
{
	unsigned long unit, pfn, i;

	for (unit = first; unit <= last; unit++) {
		if (!state_is_held(kdev->unit_state[unit]))
			continue;
		pfn = unit_pfn(kdev, unit);
		/* offlining subtracts every page of the block from managed pages */
		adjust_managed_page_count(pfn_to_page(pfn),
					  drop ? KMEMFS_UNIT_PAGES : -KMEMFS_UNIT_PAGES);
		for (i = 0; i < KMEMFS_UNIT_PAGES; i++) {
			struct page *page = pfn_to_page(pfn + i);

			if (!drop)
				page_ref_inc(page);
			else if (WARN_ON_ONCE(!page_ref_dec_and_test(page)))
				dump_page(page, "kmemfs: held page still referenced");
		}
	}
}

/*
 * kmemfs_memory_notify -- memory notifier: refuse to offline our blocks
 * unless we are detaching; when we are, let the core skip held pages.
 */
static int kmemfs_memory_notify(struct notifier_block *nb, unsigned long action,
				void *arg)
{
	struct kmemfs_dev *kdev = READ_ONCE(kmemfs_active);
	struct memory_notify *mn = arg;
	unsigned long pfn = mn->start_pfn, last = pfn + mn->nr_pages - 1;
	unsigned long first_unit, last_unit, unit;

	if (!kdev || !hot_has_pfn(kdev, pfn) || !mn->nr_pages)
		return NOTIFY_OK;
	first_unit = unit_of_pfn(kdev, pfn);
	last_unit = unit_of_pfn(kdev, last);

	switch (action) {
	case MEM_GOING_OFFLINE:
		if (!READ_ONCE(kdev->detaching)) {
			pr_warn_ratelimited("refusing to offline %#llx-%#llx: it holds filesystem pages (unmount kmemfs instead)\n",
					    (u64)PFN_PHYS(pfn), (u64)PFN_PHYS(last + 1) - 1);
			return notifier_from_errno(-EBUSY);
		}
		held_refs(kdev, first_unit, last_unit, true);
		break;
	case MEM_CANCEL_OFFLINE:
		if (READ_ONCE(kdev->detaching))
			held_refs(kdev, first_unit, last_unit, false);
		break;
	case MEM_OFFLINE:
		down_write(&kdev->map_lock);
		for (unit = first_unit; unit <= last_unit; unit++) {
			u8 st = kdev->unit_state[unit];

			/* detaching: no LEND or RECLAIM in flight (ops_lock) */
			WARN_ON_ONCE(st == KMEMFS_UNIT_LENDING ||
				     st == KMEMFS_UNIT_RECLAIMING);
			if (st == KMEMFS_UNIT_LENT)
				unit_set_state(kdev, unit, KMEMFS_UNIT_LENT_OFFLINE);
			else if (state_is_held(st))
				unit_set_state(kdev, unit, KMEMFS_UNIT_OFFLINE);
		}
		up_write(&kdev->map_lock);
		break;
	}
	return NOTIFY_OK;
}

static struct notifier_block kmemfs_memory_nb = {
	.notifier_call = kmemfs_memory_notify,
};

/*
 * range_units -- check that [off, off + len) is whole units of the hot part;
 * gives the first unit and the count
 */
static int range_units(struct kmemfs_dev *kdev, u64 off, u64 len,
		       unsigned long *first, unsigned long *nr)
{
	u64 hot_off = kdev->hot_start - kdev->start;

	if (!len || off < hot_off || off > kdev->size || len > kdev->size - off)
		return -EINVAL;
	if (off + len > kdev->hot_end - kdev->start)
		return -EINVAL;
	if ((off - hot_off) % KMEMFS_UNIT_SIZE || len % KMEMFS_UNIT_SIZE)
		return -EINVAL;
	*first = (off - hot_off) / KMEMFS_UNIT_SIZE;
	*nr = len / KMEMFS_UNIT_SIZE;
	return 0;
}

/*
 * kmemfs_mem_lend -- give whole held units to the buddy allocator. All or
 * nothing: every unit must be held and online. Caller holds ops_lock.
 */
int kmemfs_mem_lend(struct kmemfs_dev *kdev, u64 off, u64 len, u64 *done)
{
	unsigned long first, nr, unit;
	u64 t0 = ktime_get_ns();
	int rc;

	*done = 0;
	rc = range_units(kdev, off, len, &first, &nr);
	if (rc)
		return rc;

	down_write(&kdev->map_lock);
	for (unit = first; unit < first + nr; unit++) {
		u8 s = kdev->unit_state[unit];

		if (s == KMEMFS_UNIT_OFFLINE) {
			rc = -EAGAIN; /* online the block first */
			break;
		}
		if (!state_is_held(s)) {
			rc = -EALREADY;
			break;
		}
	}
	if (rc) {
		up_write(&kdev->map_lock);
		return rc;
	}
	/* from here on no fault maps these pages, and no RECLAIM takes them
	 * before they are in the buddy */
	for (unit = first; unit < first + nr; unit++)
		unit_set_state(kdev, unit, KMEMFS_UNIT_LENDING);
	up_write(&kdev->map_lock);

	kmemfs_file_revoke(kdev, off, len);
	for (unit = first; unit < first + nr; unit++) {
		give_unit(unit_pfn(kdev, unit));
		down_write(&kdev->map_lock);
		unit_set_state(kdev, unit, KMEMFS_UNIT_LENT);
		up_write(&kdev->map_lock);
		cond_resched();
	}

	*done = len;
	atomic64_add(nr, &kdev->lend_events);
	atomic64_add(ktime_get_ns() - t0, &kdev->lend_ns);
	return 0;
}

/*
 * kmemfs_mem_reclaim -- take whole lent units back from the kernel, zeroed.
 * Stops at the first unit the kernel will not give back (-EBUSY, -ENOMEM);
 * *done tells how far it got. Caller holds ops_lock for read: other LENDs
 * and RECLAIMs go on meanwhile, on other units.
 */
int kmemfs_mem_reclaim(struct kmemfs_dev *kdev, u64 off, u64 len, u64 *done)
{
	unsigned long first, nr, unit, pfn;
	u64 t0 = ktime_get_ns();
	int rc;

	*done = 0;
	rc = range_units(kdev, off, len, &first, &nr);
	if (rc)
		return rc;

	down_write(&kdev->map_lock);
	for (unit = first; unit < first + nr; unit++) {
		u8 s = kdev->unit_state[unit];

		if (s == KMEMFS_UNIT_LENT_OFFLINE) {
			rc = -EAGAIN;
			break;
		}
		if (s != KMEMFS_UNIT_LENT) {
			rc = -EALREADY; /* held, or another RECLAIM has it */
			break;
		}
	}
	if (!rc)
		for (unit = first; unit < first + nr; unit++)
			unit_set_state(kdev, unit, KMEMFS_UNIT_RECLAIMING);
	up_write(&kdev->map_lock);
	if (rc)
		return rc;
	if (READ_ONCE(reclaim_delay_ms))
		msleep(READ_ONCE(reclaim_delay_ms));

	for (unit = first; unit < first + nr; unit++) {
		pfn = unit_pfn(kdev, unit);
		rc = READ_ONCE(fail_reclaim) ? -EBUSY : take_unit(pfn);
		if (rc) {
			atomic64_inc(&kdev->reclaim_failures);
			pr_debug("reclaim of unit %lu failed: %d\n", unit, rc);
			break;
		}
		zero_unit(pfn);
		set_fake_offline(pfn, KMEMFS_UNIT_PAGES, false);
		adjust_managed_page_count(pfn_to_page(pfn), -KMEMFS_UNIT_PAGES);

		down_write(&kdev->map_lock);
		unit_set_state(kdev, unit, KMEMFS_UNIT_HELD);
		up_write(&kdev->map_lock);
		*done += KMEMFS_UNIT_SIZE;
		atomic64_inc(&kdev->reclaim_events);
	}
	if (rc) {
		/* the rest stays the kernel's */
		down_write(&kdev->map_lock);
		for (; unit < first + nr; unit++)
			unit_set_state(kdev, unit, KMEMFS_UNIT_LENT);
		up_write(&kdev->map_lock);
	}
	atomic64_add(ktime_get_ns() - t0, &kdev->reclaim_ns);
	return rc;
}

/* kmemfs_mem_page_held -- may the daemon touch this page? caller holds map_lock */
bool kmemfs_mem_page_held(struct kmemfs_dev *kdev, pgoff_t pgoff)
{
	phys_addr_t pa = kdev->start + ((phys_addr_t)pgoff << PAGE_SHIFT);

	if (kdev->gone || kdev->detaching || pa >= kdev->start + kdev->size)
		return false;
	if (pa < kdev->hot_start || pa >= kdev->hot_end)
		return true;
	return state_is_held(kdev->unit_state[(pa - kdev->hot_start) / KMEMFS_UNIT_SIZE]);
}

/* kmemfs_mem_kaddr -- kernel address of a page kmemfs_mem_page_held() allowed */
void *kmemfs_mem_kaddr(struct kmemfs_dev *kdev, pgoff_t pgoff)
{
	phys_addr_t pa = kdev->start + ((phys_addr_t)pgoff << PAGE_SHIFT);

	if (pa < kdev->hot_start)
		return kdev->head_va + (pa - kdev->start);
	if (pa >= kdev->hot_end)
		return kdev->tail_va + (pa - kdev->hot_end);
	return page_address(pfn_to_page(PHYS_PFN(pa)));
}

/* claim_part -- a busy claim plus a write-back mapping of a part outside the hot range */
static int claim_part(struct kmemfs_dev *kdev, phys_addr_t start, phys_addr_t end,
		      struct resource **res, void **va)
{
	if (start == end)
		return 0;
	*res = __request_region(kdev->res, start, end - start, "kmemfs", 0);
	if (!*res)
		return -EBUSY;
	*va = memremap(start, end - start, MEMREMAP_WB);
	if (!*va) {
		__release_region(kdev->res, start, end - start);
		*res = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void release_part(struct kmemfs_dev *kdev, struct resource **res, void **va)
{
	if (!*res)
		return;
	memunmap(*va);
	__release_region(kdev->res, (*res)->start, resource_size(*res));
	*res = NULL;
	*va = NULL;
}

/*
 * kmemfs_mem_attach -- claim the device, map head and tail, hot-add the
 * hot part with every page held. kdev->start/size/nid are set; caller holds
 * kmemfs_lock and no other device is attached.
 */
int kmemfs_mem_attach(struct kmemfs_dev *kdev)
{
	const u64 block = memory_block_size_bytes();
	phys_addr_t end = kdev->start + kdev->size;
	u64 hot_size;
	int rc;

	kdev->hot_start = ALIGN(kdev->start, block);
	kdev->hot_end = ALIGN_DOWN(end, block);
	if (kdev->hot_end <= kdev->hot_start)
		kdev->hot_start = kdev->hot_end = end; /* too small: all tail */
	hot_size = kdev->hot_end - kdev->hot_start;
	kdev->nr_units = hot_size / KMEMFS_UNIT_SIZE;
	kdev->unit_state = kvcalloc(max(kdev->nr_units, 1UL), 1, GFP_KERNEL);
	if (!kdev->unit_state)
		return -ENOMEM;
	kdev->nr_state[KMEMFS_UNIT_OFFLINE] = kdev->nr_units;

	if (region_intersects(kdev->start, kdev->size, IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT) {
		pr_err("%#llx-%#llx is already System RAM\n",
		       (u64)kdev->start, (u64)end - 1);
		return -EBUSY;
	}
	kdev->res = __request_region(&iomem_resource, kdev->start, kdev->size,
				     "kmemfs", 0);
	if (!kdev->res) {
		pr_info("%#llx-%#llx is owned by another driver (still bound to device_dax?)\n",
			(u64)kdev->start, (u64)end - 1);
		return -EBUSY;
	}
	/* not busy, so the hot-add nests its System RAM resource inside (kmem.c) */
	kdev->res->flags = IORESOURCE_MEM;

	rc = claim_part(kdev, kdev->start, kdev->hot_start, &kdev->head_res,
			&kdev->head_va);
	if (rc)
		goto out_release_res;
	rc = claim_part(kdev, kdev->hot_end, end, &kdev->tail_res, &kdev->tail_va);
	if (rc)
		goto out_release_head;
	if (!hot_size)
		return 0;

	WRITE_ONCE(kmemfs_active, kdev);
	rc = set_online_page_callback(kmemfs_online_page);
	if (rc) {
		pr_err("the online-page callback is taken by another driver (virtio-mem, a Hyper-V or Xen balloon): cannot hot-add %#llx-%#llx\n",
		       (u64)kdev->hot_start, (u64)kdev->hot_end - 1);
		rc = -EEXIST;	/* uapi.h: not -EBUSY, so the daemon can say which */
		goto out_clear_active;
	}
	rc = register_memory_notifier(&kmemfs_memory_nb);
	if (rc)
		goto out_restore_callback;
	rc = memory_group_register_static(kdev->nid, PHYS_PFN(hot_size));
	if (rc < 0)
		goto out_unregister_notifier;
	kdev->mgid = rc;
	/* no MHP_MEMMAP_ON_MEMORY: the memmap must not overwrite file data */
	rc = add_memory_driver_managed(kdev->mgid, kdev->hot_start, hot_size,
				       "System RAM (kmemfs)", MHP_NID_IS_MGID);
	if (rc) {
		pr_err("hot-adding %#llx-%#llx failed: %d\n",
		       (u64)kdev->hot_start, (u64)kdev->hot_end - 1, rc);
		goto out_unregister_group;
	}
	return 0;

out_unregister_group:
	memory_group_unregister(kdev->mgid);
out_unregister_notifier:
	unregister_memory_notifier(&kmemfs_memory_nb);
out_restore_callback:
	restore_online_page_callback(kmemfs_online_page);
out_clear_active:
	WRITE_ONCE(kmemfs_active, NULL);
	release_part(kdev, &kdev->tail_res, &kdev->tail_va);
out_release_head:
	release_part(kdev, &kdev->head_res, &kdev->head_va);
out_release_res:
	release_resource(kdev->res);
	kfree(kdev->res);
	kdev->res = NULL;
	return rc;
}

/*
 * kmemfs_mem_detach -- offline and remove the hot part, give the range
 * back. On failure (-EBUSY) everything stays attached and working. Caller
 * holds kmemfs_lock and ops_lock (write) and has revoked nothing; mappings
 * are revoked here.
 */
int kmemfs_mem_detach(struct kmemfs_dev *kdev)
{
	u64 hot_size = kdev->hot_end - kdev->hot_start;
	int rc;

	down_write(&kdev->map_lock);
	kdev->detaching = true;
	up_write(&kdev->map_lock);
	kmemfs_file_revoke(kdev, 0, kdev->size);

	if (hot_size) {
		rc = offline_and_remove_memory(kdev->hot_start, hot_size);
		if (rc) {
			pr_warn("cannot offline %#llx-%#llx (%d): %s; still attached\n",
				(u64)kdev->hot_start, (u64)kdev->hot_end - 1, rc,
				signal_pending(current) ?
				"interrupted by a signal while migrating the kernel's pages off lent units" :
				"the kernel could not migrate its pages off lent units");
			down_write(&kdev->map_lock);
			kdev->detaching = false;
			up_write(&kdev->map_lock);
			return -EBUSY;
		}
		memory_group_unregister(kdev->mgid);
		unregister_memory_notifier(&kmemfs_memory_nb);
		restore_online_page_callback(kmemfs_online_page);
		WRITE_ONCE(kmemfs_active, NULL);
	}

	down_write(&kdev->map_lock);
	kdev->gone = true;
	up_write(&kdev->map_lock);
	kmemfs_file_revoke(kdev, 0, kdev->size);

	release_part(kdev, &kdev->tail_res, &kdev->tail_va);
	release_part(kdev, &kdev->head_res, &kdev->head_va);
	release_resource(kdev->res);
	kfree(kdev->res);
	kdev->res = NULL;
	return 0;
}
