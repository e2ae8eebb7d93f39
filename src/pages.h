/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pages.h -- the data page allocator, page reference counts, and the
 * 4 MiB units that are lent away when wholly free.
 *
 * Persistent state: one uint32_t reference count per page and one state
 * per unit (format.h). Volatile state, rebuilt at mount: a used-page
 * bitmap per unit and the unit lists the allocator searches.
 *
 * Allocation fills partly used units first so that frees leave whole
 * units free; a wholly free unit beyond the reserve is lent (on the file
 * backend: hole-punched, so tmpfs gives the RAM back to the host). On a
 * pool file in RAM every freed page is also hole-punched at once.
 */
#ifndef KMEMFS_PAGES_H
#define KMEMFS_PAGES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "format.h"
#include "txn.h"

struct kmfs_pool;

/* Volatile state of a unit; changed only by unit_set_state(). */
enum unit_state {
	UNIT_FREE,    /* present, every page free */
	UNIT_PARTIAL, /* present, some pages used */
	UNIT_FULL,    /* present, every page used */
	UNIT_LENT,    /* given away; holds no file data */
	UNIT_RECLAIMING, /* lent, being taken back without pages.lock held */
	UNIT_NSTATES
};

struct unit_info {
	uint64_t used[KMFS_UNIT_PAGES / 64]; /* 1 = referenced or reserved */
	uint16_t nused;
	uint8_t state;                       /* enum unit_state */
	uint8_t pad[5];
};

struct pages_stats {
	uint64_t total_pages;
	uint64_t used_pages;    /* pages with a reference */
	uint64_t shared_pages;  /* pages with more than one reference */
	uint64_t free_pages;    /* present and free */
	uint64_t lent_pages;    /* in lent units */
	uint64_t units_lent_total;     /* lend events since mount */
	uint64_t units_reclaimed_total;
	uint64_t reclaim_failures;
	uint64_t lend_ns;       /* time spent lending */
	uint64_t reclaim_ns;    /* time spent reclaiming */
	uint64_t pages_released_total; /* free pages handed back one by one */
};

struct pages {
	struct kmfs_pool *pool;
	pthread_mutex_t lock;    /* protects everything below */
	struct unit_info *u;
	uint64_t nunits;
	uint64_t count[UNIT_NSTATES]; /* units per enum unit_state */
	pthread_cond_t reclaimed; /* a UNIT_RECLAIMING unit came back or not */
	uint32_t takers;         /* operations between pages_take_back and
				  * pages_take_back_done: lending waits */
	/* tests: runs while unit U is taken back; an errno fails the reclaim */
	int (*reclaim_hook)(uint64_t u);
	uint64_t used_pages;
	uint64_t shared_pages;   /* pages with more than one reference: statfs and
				  * kmemfsctl read it, so no scan of every page */
	uint64_t cursor;         /* partial unit tried first */
	uint64_t free_hint;      /* where the last free unit was found */
	uint64_t lent_hint;      /* where the last lent unit was found */
	uint64_t reserve_units;  /* free units kept present for growth */
	uint64_t lend_max_units; /* lend no more than this (UINT64_MAX: no limit) */
	bool lend;               /* lend wholly free units beyond the reserve */
	bool lend_deferred;      /* a unit freed while the reserve was short may
				  * be lendable: look again once it is whole */
	struct pages_stats st;
	pthread_mutex_t tx_lock; /* serialises transactions, see txn.h */
	/* transactions in flight that took a page from shared to one
	 * reference: that count of 1 may still roll back (pages_counts_settled) */
	_Atomic uint64_t unsharing;
	_Atomic uint64_t released; /* pages handed back by free_runs */
	uint64_t releasing;      /* freed, not yet allocatable: kept by a
				  * request until its reply (pages_defer_release) */
};

/* pages_init -- rebuild the volatile state from the pool; may lend */
int pages_init(struct pages *pg, struct kmfs_pool *pool, bool lend,
	       uint64_t reserve_bytes, uint64_t lend_max_bytes);
/* pages_init_offline -- just enough for an offline tool's metadata
 * transactions (fsck): no page state is read, nothing is ever lent */
void pages_init_offline(struct pages *pg, struct kmfs_pool *pool);
void pages_fini(struct pages *pg);

/* pages_alloc -- reserve up to WANT contiguous pages (at least 1) near
 * HINT; records them in T. Returns the count, -ENOSPC, or -PAGES_ERECLAIM
 * when only a lent unit could serve: the caller lets go of every lock it
 * holds, calls pages_take_back and starts over. */
int64_t pages_alloc(struct txn *t, uint64_t want, uint64_t hint,
		    uint64_t *start);

/* reference counts; caller is inside a transaction */
int pages_ref_new(struct txn *t, uint64_t start, uint64_t count);
int pages_ref(struct txn *t, uint64_t start, uint64_t count);
int pages_unref(struct txn *t, uint64_t start, uint64_t count);
uint32_t pages_refcount(const struct pages *pg, uint64_t page);

/* pages_same_arena -- may an extent run from page A to page B? */
bool pages_same_arena(const struct pages *pg, uint64_t a, uint64_t b);

/*
 * pages_defer_release -- between ON and OFF on this thread, pages freed by
 * committed transactions become allocatable (and, on a pool file in RAM,
 * go back to the host) only at OFF. The request loop turns it off after the
 * reply is sent, so the client does not wait for the hole punch. Meanwhile
 * they count as free, but an allocation that finds nothing else gets
 * -PAGES_ERECLAIM, and pages_take_back waits for them. Only where freed
 * pages are handed back one by one; elsewhere ON changes nothing.
 */
void pages_defer_release(struct pages *pg, bool on);
/* pages_release_deferred -- this thread's deferred frees now (before the
 * request waits on the kernel, which may wait on another request that
 * needs them); it goes on deferring */
void pages_release_deferred(struct pages *pg);

/* hooks called by txn_end: commit under the transaction lock, then
 * commit_done after it, which makes the freed pages allocatable */
void pages_commit(struct pages *pg, struct txn *t);
void pages_commit_done(struct pages *pg, struct txn *t);
void pages_abort(struct pages *pg, struct txn *t);

void pages_stats(struct pages *pg, struct pages_stats *out);

/* not an errno: fs.c turns it into a retry, or ENOSPC */
#define PAGES_ERECLAIM 1024

/*
 * pages_take_back -- after -PAGES_ERECLAIM: take lent units back (or wait
 * for one being taken back), with no filesystem lock held, since through
 * kmemfs.ko that can wait for the daemon to answer a READ or WRITE on any
 * file. ROUND counts the operation's earlier calls: each takes back twice
 * as many units as the last (a large allocation needs few reruns). From
 * the first call until pages_take_back_done no unit is lent, so what was
 * taken back stays for the rerun. 0: allocate again; -ENOSPC: the host or
 * kernel keeps its units.
 */
int pages_take_back(struct pages *pg, unsigned round);
void pages_take_back_done(struct pages *pg);

/*
 * pages_counts_settled -- may the counts of 1 just read with pages_refcount
 * be trusted outside a transaction? Not while a transaction that dropped a
 * shared page to one reference is in flight: it may roll back (or be lost
 * in a crash), and the other file would then see a store made in place.
 * Such a count, once committed, stays 1 while the caller holds its file's
 * vnode lock: only a clone of that file could raise it. Read the counts
 * first, then ask; when false, treat the pages as shared (copy on write).
 */
bool pages_counts_settled(struct pages *pg);

#endif
