// SPDX-License-Identifier: BSD-3-Clause
/*
 * pages.c -- data page allocator, reference counts and unit lending.
 *
 * Lock order: pages.tx_lock (held across a transaction) before pages.lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpmemobj.h>

#include "clock.h"
#include "log.h"
#include "pages.h"
#include "pool.h"

/* unit_set_state -- the one place a unit changes state; keeps counts */
static void unit_set_state(struct pages *pg, uint64_t u, enum unit_state s)
{
	pg->count[pg->u[u].state]--;
	pg->u[u].state = (uint8_t)s;
	pg->count[s]++;
}

/* present: its pages are the pool's to hand out (not lent, nor on the way back) */
static bool unit_present(const struct unit_info *ui)
{
	return ui->state != UNIT_LENT && ui->state != UNIT_RECLAIMING;
}

static enum unit_state state_for(const struct unit_info *ui)
{
	if (ui->nused == 0)
		return UNIT_FREE;
	return ui->nused == KMFS_UNIT_PAGES ? UNIT_FULL : UNIT_PARTIAL;
}

static void mark(struct pages *pg, uint64_t start, uint64_t count, bool used)
{
	while (count) {
		uint64_t u = start / KMFS_UNIT_PAGES;
		uint64_t i = start % KMFS_UNIT_PAGES;
		struct unit_info *ui = &pg->u[u];

		for (; i < KMFS_UNIT_PAGES && count; i++, start++, count--) {
			uint64_t bit = 1ull << (i % 64);
			if (used) {
				ui->used[i / 64] |= bit;
				ui->nused++;
			} else {
				ui->used[i / 64] &= ~bit;
				ui->nused--;
			}
		}
		if (unit_present(ui))
			unit_set_state(pg, u, state_for(ui));
	}
}

/* Lend unit U: record it, then give its pages to the host. pg->lock held. */
static int unit_lend(struct pages *pg, uint64_t u)
{
	struct kmfs_pool *p = pg->pool;
	uint8_t *st = &p->units[u];
	int rc;

	uint64_t t0 = mono_ns();

	*st = KMFS_UNIT_LENT;
	pool_persist(p, st, 1);
	rc = media_lend(&p->media, pool_page_off(p, u * KMFS_UNIT_PAGES),
			KMFS_UNIT_SIZE);
	if (rc < 0) {
		*st = KMFS_UNIT_PRESENT;
		pool_persist(p, st, 1);
		return rc;
	}
	unit_set_state(pg, u, UNIT_LENT);
	pg->st.units_lent_total++;
	pg->st.lend_ns += mono_ns() - t0;
	return 0;
}

/*
 * Take unit U back. The host backs it again first; only then is it
 * recorded present, so a crash never leaves a present unit without
 * storage. pg->lock held, and dropped meanwhile: with kmemfs.ko the
 * kernel may have to migrate a page-cache folio it keeps locked until the
 * daemon answers a READ or WRITE, and that answer may need pg->lock (an
 * allocation, a commit). The unit is UNIT_RECLAIMING until then, which no
 * one allocates from or lends. No filesystem lock is held either
 * (pages_take_back).
 */
static int unit_reclaim(struct pages *pg, uint64_t u)
{
	struct kmfs_pool *p = pg->pool;
	uint8_t *st = &p->units[u];
	int rc;

	uint64_t t0 = mono_ns();

	unit_set_state(pg, u, UNIT_RECLAIMING);
	pthread_mutex_unlock(&pg->lock);
	rc = media_reclaim(&p->media, pool_page_off(p, u * KMFS_UNIT_PAGES),
			   KMFS_UNIT_SIZE);
	if (pg->reclaim_hook && rc == 0)
		rc = pg->reclaim_hook(u);
	pthread_mutex_lock(&pg->lock);
	pg->st.reclaim_ns += mono_ns() - t0;
	pthread_cond_broadcast(&pg->reclaimed);
	if (rc < 0) {
		unit_set_state(pg, u, UNIT_LENT);
		pg->st.reclaim_failures++;
		return rc;
	}
	*st = KMFS_UNIT_PRESENT;
	pool_persist(p, st, 1);
	unit_set_state(pg, u, UNIT_FREE);
	pg->st.units_reclaimed_total++;
	return 0;
}

/* Lend unit U if it is wholly free and beyond the reserve. pg->lock held. */
static bool may_lend(struct pages *pg, uint64_t u)
{
	struct kmfs_pool *p = pg->pool;

	return pg->lend && media_can_lend(&p->media) &&
	       pg->u[u].state == UNIT_FREE &&
	       pg->count[UNIT_FREE] > pg->reserve_units &&
	       pg->count[UNIT_LENT] + pg->count[UNIT_RECLAIMING] < pg->lend_max_units &&
	       media_lendable(&p->media, pool_page_off(p, u * KMFS_UNIT_PAGES),
			      KMFS_UNIT_SIZE);
}

static void maybe_lend(struct pages *pg, uint64_t u)
{
	if (pg->takers) {
		/* someone is taking units back to rerun an operation: lending
		 * one now could take it from under them, again and again */
		pg->lend_deferred = true;
		return;
	}
	if (may_lend(pg, u))
		unit_lend(pg, u);
	else if (pg->u[u].state == UNIT_FREE && pg->count[UNIT_FREE] <= pg->reserve_units)
		pg->lend_deferred = true;
}

/* Lend wholly free units beyond the reserve. pg->lock held. */
static void lend_excess(struct pages *pg)
{
	if (!pg->lend || !media_can_lend(&pg->pool->media))
		return;
	for (uint64_t u = pg->nunits; u-- > 0 && pg->count[UNIT_FREE] > pg->reserve_units;) {
		if (may_lend(pg, u) && unit_lend(pg, u) < 0)
			break;
	}
}

/*
 * Lend what was kept back (lend_deferred) once the free units exceed the
 * reserve, unless an operation is still taking units back. pg->lock held.
 */
static void lend_deferred_units(struct pages *pg)
{
	if (pg->lend_deferred && !pg->takers &&
	    pg->count[UNIT_FREE] > pg->reserve_units) {
		lend_excess(pg);
		pg->lend_deferred = pg->count[UNIT_FREE] <= pg->reserve_units;
	}
}

/* are freed pages handed back one by one (free_runs)? */
static bool gives_pages_back(const struct pages *pg)
{
	return pg->lend && media_gives_pages_back(&pg->pool->media);
}

/*
 * Make the freed pages of RUNS allocatable, a unit's share at a time: on a
 * pool file in RAM hand them back to the host first (rather than when their
 * whole unit is free: a file punched every other 64 KiB returns its memory
 * as it would on tmpfs), then mark them free and lend their unit if it
 * became wholly free. While punched they are still marked used, so nothing
 * allocates them, and pages.lock is not held across the system call; a
 * failed punch only leaves the memory with the pool. COUNTED: already
 * taken off used_pages and counted in pg->releasing (pages_defer_release).
 * No transaction lock is needed: these pages are nobody's any more.
 */
static void free_runs(struct pages *pg, const struct run_list *runs, bool counted)
{
	struct kmfs_pool *p = pg->pool;
	bool give_back = gives_pages_back(pg);

	for (size_t i = 0; i < runs->n; i++) {
		uint64_t page = runs->v[i].start, left = runs->v[i].count;
		while (left) {
			/* a unit is contiguous in the file; a run across
			 * arenas need not be */
			uint64_t u = page / KMFS_UNIT_PAGES;
			uint64_t n = KMFS_UNIT_PAGES - page % KMFS_UNIT_PAGES;
			if (n > left)
				n = left;
			if (give_back &&
			    media_release(&p->media, pool_page_off(p, page),
					  n * KMFS_PAGE_SIZE) == 0)
				atomic_fetch_add(&pg->released, n);
			pthread_mutex_lock(&pg->lock);
			mark(pg, page, n, false);
			if (counted)
				pg->releasing -= n;
			else
				pg->used_pages -= n;
			maybe_lend(pg, u);
			/* waiters for space: pages_take_back */
			pthread_cond_broadcast(&pg->reclaimed);
			pthread_mutex_unlock(&pg->lock);
			page += n;
			left -= n;
		}
	}
	/* a lendable unit kept for the reserve, which units the module cannot
	 * lend (the device's unaligned ends) have since filled: lend it now */
	pthread_mutex_lock(&pg->lock);
	lend_deferred_units(pg);
	pthread_mutex_unlock(&pg->lock);
}

/* this thread's freed pages waiting for the reply (pages_defer_release) */
static __thread struct {
	struct pages *pg; /* deferring for this pool; NULL: not deferring */
	struct run_list runs;
} deferred;

void pages_release_deferred(struct pages *pg)
{
	if (deferred.pg != pg || !deferred.runs.n)
		return;
	free_runs(pg, &deferred.runs, true);
	deferred.runs.n = 0;
}

void pages_defer_release(struct pages *pg, bool on)
{
	if (on) {
		deferred.pg = gives_pages_back(pg) ? pg : NULL;
		return;
	}
	pages_release_deferred(pg);
	deferred.pg = NULL;
	run_list_free(&deferred.runs);
}

/* Keep T's freed runs for pages_defer_release: the pages they hold, which
 * the caller moves from used_pages to releasing; 0 if they cannot be kept. */
static uint64_t defer_runs(struct pages *pg, struct txn *t)
{
	struct run_list *l = &deferred.runs;
	uint64_t total = 0;

	if (deferred.pg != pg)
		return 0;
	if (l->n + t->freed.n > l->cap) {
		/* room first: once counted, a run must not fail to be kept */
		struct page_run *v = realloc(l->v, (l->n + t->freed.n) * sizeof(*v));
		if (!v)
			return 0;
		l->v = v;
		l->cap = l->n + t->freed.n;
	}
	for (size_t i = 0; i < t->freed.n; i++) {
		run_list_add(l, t->freed.v[i].start, t->freed.v[i].count);
		total += t->freed.v[i].count;
	}
	return total;
}

/*
 * With kmemfs.ko, the pool's record of lent units and the module's can
 * differ after a crash or a reboot (a fresh attach holds every unit): lend
 * again what the pool records as lent; units the module cannot lend
 * (outside its hot-added blocks, or not on its 4 MiB boundaries: a 1.0
 * pool on a device 2 MiB past one, said once) become present.
 */
static void reconcile_kmod(struct pages *pg)
{
	struct kmfs_pool *p = pg->pool;
	uint64_t *bits = NULL, hot_units = 0;
	int n = 0;

	if (p->media.kind != MEDIA_KMOD)
		return;
	if (p->media.hot_end_off > p->media.hot_off &&
	    (p->sb->arenas[0].data_off - p->media.hot_off) % KMFS_UNIT_SIZE)
		log_err("%s: warning: the pool's 4 MiB units are not the device's "
			"(a pool made before format 1.1, or the device moved), so none is "
			"lent to the kernel; back up the files and "
			"re-format with mkfs.kmemfs --force to lend them",
			p->media.path);
	hot_units = (p->media.hot_end_off - p->media.hot_off) / KMFS_UNIT_SIZE;
	if (p->media.reattached) {
		bits = calloc((hot_units + 63) / 64 + 1, sizeof(uint64_t));
		if (bits)
			n = media_query_lent(&p->media, bits, ((hot_units + 63) / 64) * 64);
	}
	for (uint64_t u = 0; u < pg->nunits; u++) {
		uint64_t off = pool_page_off(p, u * KMFS_UNIT_PAGES);
		uint64_t dev_unit;
		bool lent_now = false;

		if (pg->u[u].state != UNIT_LENT)
			continue;
		if (!media_lendable(&p->media, off, KMFS_UNIT_SIZE)) {
			p->units[u] = KMFS_UNIT_PRESENT;
			pool_persist(p, &p->units[u], 1);
			unit_set_state(pg, u, UNIT_FREE);
			continue;
		}
		dev_unit = (off - p->media.hot_off) / KMFS_UNIT_SIZE;
		if (bits && n > 0 && dev_unit < (uint64_t)n)
			lent_now = bits[dev_unit / 64] >> (dev_unit % 64) & 1;
		/* EALREADY: the kernel has it (a QUERY that failed did not say) */
		int rc = lent_now ? 0 : media_lend(&p->media, off, KMFS_UNIT_SIZE);
		if (rc < 0 && rc != -EALREADY) {
			p->units[u] = KMFS_UNIT_PRESENT;
			pool_persist(p, &p->units[u], 1);
			unit_set_state(pg, u, UNIT_FREE);
		}
	}
	free(bits);
}

/*
 * A crash between recording a unit LENT and punching it (unit_lend) leaves
 * its memory with the pool file: at mount every lent unit of a pool file
 * is punched again, a run of neighbours at a time (cheap where already a
 * hole). Lent units hold no data.
 */
static void repunch_lent(struct pages *pg)
{
	struct kmfs_pool *p = pg->pool;

	if (p->media.kind != MEDIA_FILE || !media_can_lend(&p->media))
		return;
	for (uint64_t u = 0, n; u < pg->nunits; u += n) {
		uint64_t off = pool_page_off(p, u * KMFS_UNIT_PAGES);

		n = 1;
		if (pg->u[u].state != UNIT_LENT)
			continue;
		while (u + n < pg->nunits && pg->u[u + n].state == UNIT_LENT &&
		       pool_page_off(p, (u + n) * KMFS_UNIT_PAGES) ==
		       off + n * KMFS_UNIT_SIZE)
			n++;
		media_lend(&p->media, off, n * KMFS_UNIT_SIZE);
	}
}

int pages_init(struct pages *pg, struct kmfs_pool *pool, bool lend,
	       uint64_t reserve_bytes, uint64_t lend_max_bytes)
{
	memset(pg, 0, sizeof(*pg));
	pg->pool = pool;
	pg->nunits = pool->total_units;
	pg->u = calloc(pg->nunits ? pg->nunits : 1, sizeof(*pg->u));
	if (!pg->u)
		return -ENOMEM;
	pthread_mutex_init(&pg->lock, NULL);
	pthread_cond_init(&pg->reclaimed, NULL);
	pthread_mutex_init(&pg->tx_lock, NULL);
	pg->lend = lend;
	/* rounded up, without wrapping near 2^64 */
	pg->reserve_units = reserve_bytes / KMFS_UNIT_SIZE +
			    (reserve_bytes % KMFS_UNIT_SIZE != 0);
	/* 0: no limit; under a unit: lend none */
	pg->lend_max_units = lend_max_bytes ? lend_max_bytes / KMFS_UNIT_SIZE : UINT64_MAX;
	pg->count[UNIT_FREE] = pg->nunits;
	for (uint64_t u = 0; u < pg->nunits; u++) {
		struct unit_info *ui = &pg->u[u];
		const uint32_t *r = &pool->refs[u * KMFS_UNIT_PAGES];

		for (unsigned i = 0; i < KMFS_UNIT_PAGES; i++) {
			pg->shared_pages += r[i] > 1;
			if (r[i]) {
				ui->used[i / 64] |= 1ull << (i % 64);
				ui->nused++;
			}
		}
		pg->used_pages += ui->nused;
		if (pool->units[u] == KMFS_UNIT_LENT && ui->nused == 0)
			unit_set_state(pg, u, UNIT_LENT);
		else
			unit_set_state(pg, u, state_for(ui));
	}
	repunch_lent(pg);
	pthread_mutex_lock(&pg->lock);
	reconcile_kmod(pg);
	/* lent beyond -o lend_max (lent under another setting, or a new pool
	 * file, made with every unit lent): the excess comes back now */
	for (uint64_t u = pg->nunits; u-- > 0 && lend && pg->count[UNIT_LENT] > pg->lend_max_units;)
		if (pg->u[u].state == UNIT_LENT && unit_reclaim(pg, u) < 0)
			break;
	lend_excess(pg);
	pthread_mutex_unlock(&pg->lock);
	return 0;
}

void pages_init_offline(struct pages *pg, struct kmfs_pool *pool)
{
	memset(pg, 0, sizeof(*pg));
	pg->pool = pool;
	pthread_mutex_init(&pg->lock, NULL);
	pthread_cond_init(&pg->reclaimed, NULL);
	pthread_mutex_init(&pg->tx_lock, NULL);
}

void pages_fini(struct pages *pg)
{
	free(pg->u);
	pg->u = NULL;
	pthread_mutex_destroy(&pg->lock);
	pthread_cond_destroy(&pg->reclaimed);
	pthread_mutex_destroy(&pg->tx_lock);
}

/* First run of free pages in unit U, as long as possible up to WANT. */
static uint64_t find_run(const struct unit_info *ui, uint64_t want,
			 uint64_t *first)
{
	uint64_t best = 0, best_at = 0;

	for (uint64_t i = 0; i < KMFS_UNIT_PAGES;) {
		uint64_t w = ui->used[i / 64];
		if ((i % 64) == 0 && w == ~0ull) {
			i += 64;
			continue;
		}
		if (w & (1ull << (i % 64))) {
			i++;
			continue;
		}
		uint64_t j = i;
		while (j < KMFS_UNIT_PAGES && j - i < want &&
		       !(ui->used[j / 64] & (1ull << (j % 64))))
			j++;
		if (j - i > best) {
			best = j - i;
			best_at = i;
			if (best == want)
				break;
		}
		i = j;
	}
	*first = best_at;
	return best;
}

/* First unit in state S scanning from *HINT (wrapping); updates the hint. */
static int64_t find_state(struct pages *pg, enum unit_state st, uint64_t *hint)
{
	uint64_t n = pg->nunits;

	if (!pg->count[st])
		return -1;
	for (uint64_t k = 0; k < n; k++) {
		uint64_t u = (*hint + k) % n;
		if (pg->u[u].state == st) {
			*hint = u;
			return (int64_t)u;
		}
	}
	return -1;
}

/*
 * Pick a unit to allocate from: a partly used one first (keeps free units
 * whole for lending), then a free one; when only a lent one is left, the
 * caller must let go of its locks and call pages_take_back.
 */
static int64_t pick_unit(struct pages *pg, uint64_t want)
{
	int64_t u = -1;

	if (want < KMFS_UNIT_PAGES)
		u = find_state(pg, UNIT_PARTIAL, &pg->cursor);
	if (u < 0)
		u = find_state(pg, UNIT_FREE, &pg->free_hint);
	if (u < 0)
		u = find_state(pg, UNIT_PARTIAL, &pg->cursor);
	if (u < 0 && (pg->count[UNIT_LENT] || pg->count[UNIT_RECLAIMING] ||
		      pg->releasing))
		return -PAGES_ERECLAIM; /* the caller's locks must go first */
	return u < 0 ? -ENOSPC : u;
}

/* Wait for a unit being taken back, or for pages freed by a request not
 * yet answered, by another thread. pg->lock held. A reclaim that has not
 * ended in 10 s may be waiting on this very request (a folio the kernel
 * keeps locked until it is answered): ENOSPC then. */
static int wait_reclaimed(struct pages *pg)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	while ((pg->count[UNIT_RECLAIMING] || pg->releasing) &&
	       !pg->count[UNIT_FREE] && !pg->count[UNIT_PARTIAL])
		if (pthread_cond_timedwait(&pg->reclaimed, &pg->lock, &until))
			return -ENOSPC;
	return 0;
}

/* lent units a take-back tries after the kernel refused one, before ENOSPC */
#define RECLAIM_REFUSALS 4

int pages_take_back(struct pages *pg, unsigned round)
{
	unsigned want = round < 8 ? 1u << round : 256; /* 256 units: 1 GiB */
	int rc = 0;

	pthread_mutex_lock(&pg->lock);
	if (round == 0)
		pg->takers++; /* before the frees below: nothing is lent meanwhile */
	pthread_mutex_unlock(&pg->lock);
	/* this request's own frees first: no one else will make them free */
	pages_release_deferred(pg);
	pthread_mutex_lock(&pg->lock);
	/* even when some pages are free: the operation gave back what it had
	 * before asking, and may need more than that */
	unsigned got = 0, refused = 0;
	while (got < want) {
		int64_t l = pg->count[UNIT_LENT]
			    ? find_state(pg, UNIT_LENT, &pg->lent_hint) : -1;

		if (l >= 0) {
			if (unit_reclaim(pg, (uint64_t)l) == 0) {
				/* what the rerun leaves is lent again at
				 * pages_take_back_done */
				pg->lend_deferred = true;
				got++;
				continue;
			}
			/* the kernel keeps this one (pinned pages, or a folio
			 * locked until a request is answered, maybe the one
			 * this rerun is for): try the next few */
			pg->lent_hint = (uint64_t)l + 1;
			if (++refused < RECLAIM_REFUSALS &&
			    refused < pg->count[UNIT_LENT])
				continue;
			if (got == 0)
				rc = -ENOSPC; /* the host or kernel keeps them */
			break;
		}
		if (got == 0) {
			if (pg->count[UNIT_RECLAIMING] || pg->releasing)
				rc = wait_reclaimed(pg);
			else if (!pg->count[UNIT_FREE] && !pg->count[UNIT_PARTIAL])
				rc = -ENOSPC;
		}
		break;
	}
	pthread_mutex_unlock(&pg->lock);
	return rc;
}

void pages_take_back_done(struct pages *pg)
{
	pthread_mutex_lock(&pg->lock);
	pg->takers--;
	lend_deferred_units(pg);
	pthread_mutex_unlock(&pg->lock);
}

int64_t pages_alloc(struct txn *t, uint64_t want, uint64_t hint,
		    uint64_t *start)
{
	struct pages *pg = t->pages;
	int64_t u;
	uint64_t first = 0, got;
	int rc;

	if (want == 0)
		return -EINVAL;
	if (want > KMFS_UNIT_PAGES)
		want = KMFS_UNIT_PAGES;
	pthread_mutex_lock(&pg->lock);
	/* continue right after the previous run of this file if free */
	if (hint && hint < pg->nunits * KMFS_UNIT_PAGES) {
		struct unit_info *ui = &pg->u[hint / KMFS_UNIT_PAGES];
		uint64_t i = hint % KMFS_UNIT_PAGES;
		if (unit_present(ui) && !(ui->used[i / 64] & (1ull << (i % 64)))) {
			got = 0;
			while (i + got < KMFS_UNIT_PAGES && got < want &&
			       !(ui->used[(i + got) / 64] & (1ull << ((i + got) % 64))))
				got++;
			if (got == want || i + got == KMFS_UNIT_PAGES) {
				*start = hint;
				goto found;
			}
		}
	}
	u = pick_unit(pg, want);
	if (u == -PAGES_ERECLAIM && deferred.pg == pg && deferred.runs.n) {
		/* this request's own frees, before a rerun: a step of a long
		 * copy may need what the last step freed */
		pthread_mutex_unlock(&pg->lock);
		pages_release_deferred(pg);
		pthread_mutex_lock(&pg->lock);
		u = pick_unit(pg, want);
	}
	if (u < 0) {
		pthread_mutex_unlock(&pg->lock);
		return u;
	}
	got = find_run(&pg->u[u], want, &first);
	*start = (uint64_t)u * KMFS_UNIT_PAGES + first;
found:
	mark(pg, *start, got, true);
	pg->used_pages += got;
	pthread_mutex_unlock(&pg->lock);
	rc = run_list_add(&t->allocated, *start, got);
	if (rc < 0) {
		pthread_mutex_lock(&pg->lock);
		mark(pg, *start, got, false);
		pg->used_pages -= got;
		pthread_mutex_unlock(&pg->lock);
		return rc;
	}
	return (int64_t)got;
}

/* counts change inside transactions while data writes read them outside
 * one (pages_counts_settled): those loads and stores are atomic */
uint32_t pages_refcount(const struct pages *pg, uint64_t page)
{
	return __atomic_load_n(&pg->pool->refs[page], __ATOMIC_ACQUIRE);
}

bool pages_counts_settled(struct pages *pg)
{
	return atomic_load(&pg->unsharing) == 0;
}

bool pages_same_arena(const struct pages *pg, uint64_t a, uint64_t b)
{
	const struct kmfs_super *sb = pg->pool->sb;

	for (uint32_t i = 1; i < sb->narenas; i++) {
		uint64_t f = sb->arenas[i].first_page;
		if ((a < f) != (b < f))
			return false;
	}
	return true;
}

int pages_ref_new(struct txn *t, uint64_t start, uint64_t count)
{
	uint32_t *r = &t->pages->pool->refs[start];
	int rc = tx_add(r, count * sizeof(*r));

	if (rc < 0)
		return rc;
	for (uint64_t i = 0; i < count; i++)
		r[i] = 1;
	return 0;
}

int pages_ref(struct txn *t, uint64_t start, uint64_t count)
{
	uint32_t *r = &t->pages->pool->refs[start];
	int rc = tx_add(r, count * sizeof(*r));

	if (rc < 0)
		return rc;
	for (uint64_t i = 0; i < count; i++) {
		if (r[i] == UINT32_MAX)
			return -EMLINK;
		__atomic_store_n(&r[i], r[i] + 1, __ATOMIC_RELEASE);
		t->shared_delta += r[i] == 2;
	}
	return 0;
}

int pages_unref(struct txn *t, uint64_t start, uint64_t count)
{
	uint32_t *r = &t->pages->pool->refs[start];
	int rc = tx_add(r, count * sizeof(*r));

	if (rc < 0)
		return rc;
	for (uint64_t i = 0; i < count; i++) {
		if (r[i] == 0)
			return -EUCLEAN; /* corrupt: never hand out a page twice */
		if (r[i] == 2 && !t->unsharing) {
			/* before the store: a reader that sees the 1 sees this */
			atomic_fetch_add(&t->pages->unsharing, 1);
			t->unsharing = true;
		}
		t->shared_delta -= r[i] == 2;
		__atomic_store_n(&r[i], r[i] - 1, __ATOMIC_RELEASE);
		if (r[i] == 0) {
			rc = run_list_add(&t->freed, start + i, 1);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

void pages_commit(struct pages *pg, struct txn *t)
{
	uint64_t deferred_pages = t->freed.n ? defer_runs(pg, t) : 0;

	if (deferred_pages)
		t->freed.n = 0;
	pthread_mutex_lock(&pg->lock);
	pg->shared_pages += (uint64_t)t->shared_delta;
	pg->used_pages -= deferred_pages;
	pg->releasing += deferred_pages;
	pthread_mutex_unlock(&pg->lock);
	t->allocated.n = 0;
	t->shared_delta = 0;
}

void pages_commit_done(struct pages *pg, struct txn *t)
{
	if (t->freed.n)
		free_runs(pg, &t->freed, false);
	t->freed.n = 0;
}

/*
 * An aborted operation: its allocations go back, as freed pages do (on a
 * pool file in RAM to the host too: a write that failed part way, say on a
 * full tmpfs, had filled some). Pages that got a reference in it were
 * rolled back to 0 by pmemobj.
 */
void pages_abort(struct pages *pg, struct txn *t)
{
	if (t->allocated.n)
		free_runs(pg, &t->allocated, false);
	t->allocated.n = 0;
	t->freed.n = 0;
	t->shared_delta = 0; /* pmemobj rolled the counts back */
}

void pages_stats(struct pages *pg, struct pages_stats *out)
{
	pthread_mutex_lock(&pg->lock);
	*out = pg->st;
	out->total_pages = pg->nunits * KMFS_UNIT_PAGES;
	out->used_pages = pg->used_pages;
	out->lent_pages = (pg->count[UNIT_LENT] + pg->count[UNIT_RECLAIMING]) *
			  KMFS_UNIT_PAGES;
	out->free_pages = out->total_pages - out->used_pages - out->lent_pages;
	out->shared_pages = pg->shared_pages;
	out->pages_released_total = atomic_load(&pg->released);
	pthread_mutex_unlock(&pg->lock);
}
