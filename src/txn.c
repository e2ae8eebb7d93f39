// SPDX-License-Identifier: BSD-3-Clause
/*
 * txn.c -- begin and end the pmemobj transaction of one operation and
 * apply its volatile side effects (see txn.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <libpmemobj.h>

#include "pages.h"
#include "pool.h"
#include "txn.h"

/* the pool of this thread's open transaction, for tx_alloc/tx_free */
static __thread struct kmfs_pool *tx_pool;

int run_list_add(struct run_list *l, uint64_t start, uint64_t count)
{
	if (l->n && l->v[l->n - 1].start + l->v[l->n - 1].count == start) {
		l->v[l->n - 1].count += count;
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct page_run *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].start = start;
	l->v[l->n].count = count;
	l->n++;
	return 0;
}

void run_list_free(struct run_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

void txn_init(struct txn *t, struct pages *pages)
{
	memset(t, 0, sizeof(*t));
	t->pages = pages;
}

int txn_begin(struct txn *t)
{
	int rc;

	pthread_mutex_lock(&t->pages->tx_lock);
	rc = pmemobj_tx_begin(t->pages->pool->pop, NULL, TX_PARAM_NONE);
	if (rc != 0) {
		/* a failed begin leaves the thread's transaction aborting: only
		 * its end lets the next begin start afresh (as TX_END would) */
		pmemobj_tx_end();
		pthread_mutex_unlock(&t->pages->tx_lock);
		return -rc;
	}
	pmemobj_tx_set_failure_behavior(POBJ_TX_FAILURE_RETURN);
	tx_pool = t->pages->pool;
	t->active = true;
	return 0;
}

int txn_end(struct txn *t, int rc)
{
	int err;

	if (!t->active) {
		txn_release(t);
		return rc;
	}
	if (rc == 0)
		pmemobj_tx_commit();
	else
		pmemobj_tx_abort(rc < 0 ? -rc : rc);
	err = pmemobj_tx_end();
	t->active = false;
	bool committed = err == 0 && rc == 0;
	if (committed)
		pages_commit(t->pages, t);
	else
		pages_abort(t->pages, t);
	/* its counts are final now, committed or rolled back */
	if (t->unsharing)
		atomic_fetch_sub(&t->pages->unsharing, 1);
	t->unsharing = false;
	pthread_mutex_unlock(&t->pages->tx_lock);
	/* the freed pages' hole punch keeps no other transaction waiting */
	if (committed)
		pages_commit_done(t->pages, t);
	run_list_free(&t->allocated);
	run_list_free(&t->freed);
	if (rc == 0 && err != 0)
		rc = -err;
	return rc;
}

void txn_release(struct txn *t)
{
	pages_abort(t->pages, t);
	run_list_free(&t->allocated);
	run_list_free(&t->freed);
}

int tx_add(const void *ptr, size_t len)
{
	int rc = pmemobj_tx_add_range_direct(ptr, len);
	return rc ? -rc : 0;
}

uint64_t tx_alloc(size_t size, unsigned type, bool zero)
{
	PMEMoid oid = pmemobj_tx_xalloc(size, type,
					(zero ? POBJ_XALLOC_ZERO : 0) |
					pool_alloc_class(tx_pool, size) |
					POBJ_XALLOC_NO_ABORT);
	/* so that statfs says there is no room for another inode */
	if (OID_IS_NULL(oid) && size <= POOL_SMALL_MAX)
		pool_note_meta_full(tx_pool);
	return oid.off;
}

int tx_free(uint64_t off)
{
	int rc;

	if (!off)
		return 0;
	rc = pmemobj_tx_xfree(pmemobj_oid(pool_ptr(tx_pool, off)),
			      POBJ_XFREE_NO_ABORT);
	return rc ? -rc : 0;
}
