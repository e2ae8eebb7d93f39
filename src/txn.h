/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * txn.h -- one filesystem operation = one pmemobj transaction.
 *
 * txn_begin takes the transaction lock and starts a pmemobj transaction
 * whose failures return errors instead of jumping. Page allocations made
 * for the operation are undone if it aborts; pages it frees become
 * allocatable only once it has committed, so no other operation can
 * reuse a page whose freeing may still be rolled back.
 *
 * All transactions are serialised by one mutex: pmemobj gives atomicity
 * and durability but no isolation, and shared page reference counts make
 * any two transactions potentially overlap. Transactions hold only
 * metadata updates; file data is copied and persisted before txn_begin,
 * except the bytes a truncate, punch or range zeroing zeroes inside a page
 * the file keeps, which are snapshotted (tx_add) so that a failed call changes nothing.
 */
#ifndef KMEMFS_TXN_H
#define KMEMFS_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kmfs_pool;
struct pages;

struct page_run {
	uint64_t start;
	uint64_t count;
};

struct run_list {
	struct page_run *v;
	size_t n, cap;
};

struct txn {
	struct pages *pages;
	struct run_list allocated; /* returned to the allocator on abort */
	struct run_list freed;     /* given to the allocator on commit */
	int64_t shared_delta;      /* pages that became shared, minus those that
				    * stopped being: counted on commit only */
	bool active;
	bool unsharing;            /* counted in pages.unsharing (pages_unref) */
};

int run_list_add(struct run_list *l, uint64_t start, uint64_t count);
void run_list_free(struct run_list *l);

/* txn_init -- prepare T for an operation (allocations may precede begin) */
void txn_init(struct txn *t, struct pages *pages);
/* txn_begin -- lock and begin; returns 0 or -errno */
int txn_begin(struct txn *t);
/* txn_end -- commit if RC is 0, else abort; returns the final result */
int txn_end(struct txn *t, int rc);
/* txn_release -- undo allocations of a txn that never began */
void txn_release(struct txn *t);

/* transactional helpers: 0 or -errno, caller is inside txn_begin/end */
int tx_add(const void *ptr, size_t len);
#define TXADD(p, f) tx_add(&(p)->f, sizeof((p)->f))
uint64_t tx_alloc(size_t size, unsigned type, bool zero); /* 0 on ENOSPC */
int tx_free(uint64_t off);

#endif
