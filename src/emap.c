// SPDX-License-Identifier: BSD-3-Clause
/*
 * emap.c -- extent maps as a two-level tree of sorted extent arrays.
 *
 * Updates rewrite one leaf at a time from a volatile copy: a leaf is at
 * most ~3 KiB, so the undo log stays small whatever the file size.
 */
#include <errno.h>
#include <string.h>

#include "emap.h"
#include "pages.h"
#include "pool.h"
#include "txn.h"

struct emap_ctx {
	struct txn *t;
	struct kmfs_pool *p;
	struct kmfs_inode *ino;
	struct kmfs_emap_index *idx;
};

static struct kmfs_emap_leaf *leaf_at(const struct kmfs_pool *p,
				      const struct kmfs_emap_index *idx,
				      uint32_t i)
{
	return pool_ptr(p, idx->ent[i].leaf_off);
}

/* Largest leaf index whose key <= fpage. */
static uint32_t leaf_for(const struct kmfs_emap_index *idx, uint64_t fpage)
{
	uint32_t lo = 0, hi = idx->nleaves;

	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;
		if (idx->ent[mid].key <= fpage)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the last extent with fpage <= pos in the leaf, or -1. */
static int ext_for(const struct kmfs_emap_leaf *l, uint64_t pos)
{
	int lo = -1, hi = (int)l->n;

	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (l->ext[mid].fpage <= pos)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

int emap_lookup(const struct kmfs_pool *p, const struct kmfs_inode *ino,
		uint64_t fpage, struct kmfs_extent *out)
{
	const struct kmfs_emap_index *idx = pool_ptr(p, ino->data_off);

	if (!idx)
		return -ENOENT;
	for (uint32_t li = leaf_for(idx, fpage); li < idx->nleaves; li++) {
		const struct kmfs_emap_leaf *l = leaf_at(p, idx, li);
		int i = ext_for(l, fpage);

		if (i >= 0 && l->ext[i].fpage + l->ext[i].count > fpage) {
			*out = l->ext[i];
			return 0;
		}
		if ((uint32_t)(i + 1) < l->n) {
			*out = l->ext[i + 1];
			return 1;
		}
	}
	return -ENOENT;
}

int emap_walk(const struct kmfs_pool *p, const struct kmfs_inode *ino,
	      emap_walk_fn fn, void *arg)
{
	const struct kmfs_emap_index *idx = pool_ptr(p, ino->data_off);

	if (!idx)
		return 0;
	for (uint32_t li = 0; li < idx->nleaves; li++) {
		const struct kmfs_emap_leaf *l = leaf_at(p, idx, li);
		for (uint32_t i = 0; i < l->n; i++) {
			int rc = fn(arg, &l->ext[i]);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static size_t leaf_size(uint32_t cap)
{
	return sizeof(struct kmfs_emap_leaf) + cap * sizeof(struct kmfs_extent);
}

static size_t index_size(uint32_t cap)
{
	return sizeof(struct kmfs_emap_index) + cap * sizeof(struct kmfs_emap_ent);
}

/*
 * Move the index to an object with twice the room. Only a failed
 * allocation says ENOSPC (the map is then as it was), for emap_make_room's
 * caller goes on with the transaction after one.
 */
static int index_grow(struct emap_ctx *c)
{
	uint64_t off = tx_alloc(index_size(c->idx->cap * 2), KMFS_T_EMAP_INDEX, true);
	struct kmfs_emap_index *nidx;
	int rc;

	if (!off)
		return -ENOSPC;
	nidx = pool_ptr(c->p, off);
	memcpy(nidx, c->idx, index_size(c->idx->nleaves));
	nidx->cap = c->idx->cap * 2;
	rc = tx_free(c->ino->data_off);
	if (rc == 0)
		rc = TXADD(c->ino, data_off);
	if (rc < 0)
		return rc == -ENOSPC ? -EIO : rc;
	c->ino->data_off = off;
	c->idx = nidx;
	return 0;
}

/* Make room for one more index entry at position AT. */
static int index_insert(struct emap_ctx *c, uint32_t at, uint64_t key,
			uint64_t leaf_off)
{
	struct kmfs_emap_index *idx;
	int rc;

	if (c->idx->nleaves == c->idx->cap) {
		rc = index_grow(c);
		if (rc < 0)
			return rc;
		idx = c->idx;
	} else {
		idx = c->idx;
		rc = tx_add(idx, index_size(idx->nleaves + 1));
		if (rc < 0)
			return rc;
	}
	memmove(&idx->ent[at + 1], &idx->ent[at],
		(idx->nleaves - at) * sizeof(idx->ent[0]));
	idx->ent[at].key = key;
	idx->ent[at].leaf_off = leaf_off;
	idx->nleaves++;
	return 0;
}

static int index_remove(struct emap_ctx *c, uint32_t at)
{
	struct kmfs_emap_index *idx = c->idx;
	int rc = tx_add(idx, index_size(idx->nleaves));

	if (rc < 0)
		return rc;
	memmove(&idx->ent[at], &idx->ent[at + 1],
		(idx->nleaves - at - 1) * sizeof(idx->ent[0]));
	idx->nleaves--;
	if (at == 0)
		idx->ent[0].key = 0; /* leaf 0 always covers from page 0 */
	return 0;
}

/*
 * Move leaf LI, as it is, into a new object with room for N extents (its
 * capacity doubled as often as that takes, at most KMFS_LEAF_MAX). Only a
 * failed allocation says ENOSPC, with the map as it was.
 */
static int leaf_grow(struct emap_ctx *c, uint32_t li, uint32_t n,
		     struct kmfs_emap_leaf **out)
{
	const struct kmfs_emap_leaf *l = leaf_at(c->p, c->idx, li);
	uint32_t cap = l->cap ? l->cap : 1;
	struct kmfs_emap_leaf *nl;
	uint64_t off;
	int rc;

	while (cap < n)
		cap *= 2;
	if (cap > KMFS_LEAF_MAX)
		cap = KMFS_LEAF_MAX;
	off = tx_alloc(leaf_size(cap), KMFS_T_EMAP_LEAF, false);
	if (!off)
		return -ENOSPC;
	nl = pool_ptr(c->p, off);
	nl->cap = cap;
	nl->pad = 0;
	nl->n = l->n;
	memcpy(nl->ext, l->ext, l->n * sizeof(l->ext[0]));
	rc = tx_free(c->idx->ent[li].leaf_off);
	if (rc == 0)
		rc = tx_add(&c->idx->ent[li], sizeof(c->idx->ent[li]));
	if (rc < 0)
		return rc == -ENOSPC ? -EIO : rc;
	c->idx->ent[li].leaf_off = off;
	if (out)
		*out = nl;
	return 0;
}

/* Write N extents into a leaf object at index position LI, growing it. */
static int leaf_write(struct emap_ctx *c, uint32_t li,
		      const struct kmfs_extent *v, uint32_t n)
{
	struct kmfs_emap_leaf *l = leaf_at(c->p, c->idx, li);
	int rc;

	if (n > l->cap) {
		/* a new object: nothing in it to snapshot */
		rc = leaf_grow(c, li, n, &l);
		if (rc < 0)
			return rc;
	} else {
		uint32_t span = n > l->n ? n : l->n;
		rc = tx_add(l, leaf_size(span));
		if (rc < 0)
			return rc;
	}
	memcpy(l->ext, v, n * sizeof(*v));
	l->n = n;
	return 0;
}

/*
 * Store N extents (KMFS_LEAF_MAX < N <= 2 * KMFS_LEAF_MAX) as leaf LI and a
 * new leaf after it, keyed by its first page, each with half. The new leaf
 * is allocated first: when that fails, ENOSPC with the map as it was.
 */
static int leaf_split(struct emap_ctx *c, uint32_t li,
		      const struct kmfs_extent *v, uint32_t n)
{
	uint32_t half = n / 2;
	uint64_t off = tx_alloc(leaf_size(KMFS_LEAF_MAX), KMFS_T_EMAP_LEAF, false);
	struct kmfs_emap_leaf *nl;
	int rc;

	if (!off)
		return -ENOSPC;
	nl = pool_ptr(c->p, off);
	nl->cap = KMFS_LEAF_MAX;
	nl->pad = 0;
	nl->n = n - half;
	memcpy(nl->ext, v + half, (n - half) * sizeof(*v));
	rc = leaf_write(c, li, v, half);
	if (rc == 0)
		rc = index_insert(c, li + 1, v[half].fpage, off);
	return rc;
}

/*
 * Store the new content of leaf LI: remove it when empty, split it when
 * over KMFS_LEAF_MAX. Returns how many leaves now hold the content (0-2)
 * or -errno.
 */
static int leaf_store(struct emap_ctx *c, uint32_t li,
		      const struct kmfs_extent *v, uint32_t n)
{
	int rc;

	if (n == 0 && c->idx->nleaves > 1) {
		rc = tx_free(c->idx->ent[li].leaf_off);
		if (rc == 0)
			rc = index_remove(c, li);
		return rc < 0 ? rc : 0;
	}
	if (n <= KMFS_LEAF_MAX) {
		rc = leaf_write(c, li, v, n);
		return rc < 0 ? rc : 1;
	}
	rc = leaf_split(c, li, v, n);
	return rc < 0 ? rc : 2;
}

static int map_create(struct emap_ctx *c)
{
	uint64_t ioff = tx_alloc(index_size(4), KMFS_T_EMAP_INDEX, true);
	uint64_t loff = tx_alloc(leaf_size(4), KMFS_T_EMAP_LEAF, true);
	int rc;

	if (!ioff || !loff)
		return -ENOSPC;
	rc = TXADD(c->ino, data_off);
	if (rc < 0)
		return rc;
	c->idx = pool_ptr(c->p, ioff);
	c->idx->cap = 4;
	c->idx->nleaves = 1;
	c->idx->ent[0].key = 0;
	c->idx->ent[0].leaf_off = loff;
	((struct kmfs_emap_leaf *)pool_ptr(c->p, loff))->cap = 4;
	c->ino->data_off = ioff;
	return 0;
}

/* Remove [fpage, end) from every leaf that may hold part of it. */
static int unmap_range(struct emap_ctx *c, uint64_t fpage, uint64_t end,
		       emap_removed_fn removed, void *arg, uint64_t *nremoved)
{
	struct kmfs_extent v[KMFS_LEAF_MAX + 2];
	uint32_t li = leaf_for(c->idx, fpage);

	while (li < c->idx->nleaves && c->idx->ent[li].key < end) {
		const struct kmfs_emap_leaf *l = leaf_at(c->p, c->idx, li);
		uint32_t n = 0;
		bool changed = false;
		int rc;

		for (uint32_t i = 0; i < l->n; i++) {
			struct kmfs_extent e = l->ext[i];
			uint64_t eend = e.fpage + e.count;
			uint64_t a, b;

			if (eend <= fpage || e.fpage >= end) {
				v[n++] = e;
				continue;
			}
			changed = true;
			a = e.fpage > fpage ? e.fpage : fpage;
			b = eend < end ? eend : end;
			if (removed) {
				rc = removed(arg, e.dpage + (a - e.fpage), b - a);
				if (rc < 0)
					return rc;
			}
			*nremoved += b - a;
			if (e.fpage < fpage) {
				struct kmfs_extent left = e;
				left.count = (uint32_t)(fpage - e.fpage);
				v[n++] = left;
			}
			if (eend > end) {
				struct kmfs_extent right = e;
				right.fpage = end;
				right.dpage = e.dpage + (end - e.fpage);
				right.count = (uint32_t)(eend - end);
				v[n++] = right;
			}
		}
		if (!changed) {
			li++;
			continue;
		}
		rc = leaf_store(c, li, v, n);
		if (rc < 0)
			return rc;
		li += (uint32_t)rc;
	}
	return 0;
}

/* Can extent B be appended to A as one extent? Contiguous on both sides,
 * in one arena, with the same flags. */
static bool joins(const struct pages *pg, const struct kmfs_extent *a,
		  const struct kmfs_extent *b)
{
	return a->fpage + a->count == b->fpage &&
	       a->dpage + a->count == b->dpage && a->flags == b->flags &&
	       (uint64_t)a->count + b->count <= UINT32_MAX &&
	       pages_same_arena(pg, a->dpage, b->dpage);
}

/* Insert one extent that lies within leaf LI's key range (already a hole). */
static int insert_in_leaf(struct emap_ctx *c, uint32_t li, struct kmfs_extent e)
{
	struct kmfs_extent v[KMFS_LEAF_MAX + 2];
	const struct kmfs_emap_leaf *l = leaf_at(c->p, c->idx, li);
	const struct pages *pg = c->t->pages;
	int at = ext_for(l, e.fpage) + 1;
	uint32_t n = 0;
	int rc;

	memcpy(v, l->ext, (size_t)at * sizeof(*v));
	n = (uint32_t)at;
	/* merge with the previous extent when contiguous on both sides */
	if (n > 0) {
		struct kmfs_extent *pv = &v[n - 1];
		if (joins(pg, pv, &e)) {
			pv->count += e.count;
			goto tail;
		}
	}
	v[n++] = e;
tail:
	for (uint32_t i = (uint32_t)at; i < l->n; i++) {
		struct kmfs_extent *pv = &v[n - 1];
		const struct kmfs_extent *x = &l->ext[i];
		if (i == (uint32_t)at && joins(pg, pv, x)) {
			pv->count += x->count;
			continue;
		}
		v[n++] = *x;
	}
	rc = leaf_store(c, li, v, n);
	return rc < 0 ? rc : 0;
}

int emap_make_room(struct txn *t, struct kmfs_inode *ino, uint64_t fpage,
		   uint32_t extra)
{
	struct emap_ctx c = { .t = t, .p = t->pages->pool, .ino = ino };
	struct kmfs_extent v[KMFS_LEAF_MAX];
	const struct kmfs_emap_leaf *l;
	uint32_t li;
	int rc;

	c.idx = pool_ptr(c.p, ino->data_off);
	if (!c.idx)
		return 0;
	li = leaf_for(c.idx, fpage);
	l = leaf_at(c.p, c.idx, li);
	if (l->n + extra <= l->cap)
		return 0;
	if (l->n + extra <= KMFS_LEAF_MAX)
		return leaf_grow(&c, li, l->n + extra, NULL);
	/* split in halves, each with room; the index first, so that the
	 * split's insert cannot fail for room (its growth changes nothing
	 * it holds) */
	if (c.idx->nleaves == c.idx->cap && (rc = index_grow(&c)) < 0)
		return rc;
	l = leaf_at(c.p, c.idx, li);
	memcpy(v, l->ext, l->n * sizeof(v[0]));
	return leaf_split(&c, li, v, l->n);
}

int emap_convert(struct txn *t, struct kmfs_inode *ino, uint64_t fpage,
		 uint64_t count, uint32_t flags)
{
	struct emap_ctx c = { .t = t, .p = t->pages->pool, .ino = ino };
	struct kmfs_extent v[KMFS_LEAF_MAX + 2];
	const struct kmfs_emap_leaf *l;
	uint32_t li, n = 0;
	int i;

	c.idx = pool_ptr(c.p, ino->data_off);
	if (!c.idx)
		return -ENOENT;
	li = leaf_for(c.idx, fpage);
	l = leaf_at(c.p, c.idx, li);
	i = ext_for(l, fpage);
	if (i < 0 || l->ext[i].fpage + l->ext[i].count < fpage + count)
		return -ENOENT;
	for (uint32_t k = 0; k < l->n; k++) {
		struct kmfs_extent e = l->ext[k], piece = e;

		if (k != (uint32_t)i) {
			v[n++] = e;
			continue;
		}
		/* E cut in up to three: before, the run (with FLAGS), after */
		if (fpage > e.fpage) {
			piece.count = (uint32_t)(fpage - e.fpage);
			v[n++] = piece;
		}
		piece.fpage = fpage;
		piece.dpage = e.dpage + (fpage - e.fpage);
		piece.count = (uint32_t)count;
		piece.flags = flags;
		v[n++] = piece;
		if (e.fpage + e.count > fpage + count) {
			piece.fpage = fpage + count;
			piece.dpage = e.dpage + (fpage + count - e.fpage);
			piece.count = (uint32_t)(e.fpage + e.count - (fpage + count));
			piece.flags = e.flags;
			v[n++] = piece;
		}
	}
	/* and joined with any neighbour it now matches */
	uint32_t m = 0;
	for (uint32_t k = 0; k < n; k++) {
		if (m > 0 && joins(t->pages, &v[m - 1], &v[k]))
			v[m - 1].count += v[k].count;
		else
			v[m++] = v[k];
	}
	int rc = leaf_store(&c, li, v, m);
	return rc < 0 ? rc : 0;
}

int emap_set_flags(struct txn *t, struct kmfs_inode *ino, uint64_t fpage,
		   uint32_t flags, struct kmfs_extent *out)
{
	const struct kmfs_pool *p = t->pages->pool;
	struct kmfs_emap_index *idx = pool_ptr(p, ino->data_off);
	struct kmfs_emap_leaf *l;
	int i, rc;

	if (!idx)
		return -ENOENT;
	l = leaf_at(p, idx, leaf_for(idx, fpage));
	i = ext_for(l, fpage);
	if (i < 0 || l->ext[i].fpage + l->ext[i].count <= fpage)
		return -ENOENT;
	rc = tx_add(&l->ext[i].flags, sizeof(l->ext[i].flags));
	if (rc < 0)
		return rc;
	l->ext[i].flags = flags;
	*out = l->ext[i];
	return 0;
}

int emap_replace(struct txn *t, struct kmfs_inode *ino, uint64_t fpage,
		 uint64_t count, uint64_t dpage, uint32_t flags,
		 emap_removed_fn removed, void *arg)
{
	struct emap_ctx c = { .t = t, .p = t->pages->pool, .ino = ino };
	uint64_t end = fpage + count, nremoved = 0, pos;
	int rc;

	if (count == 0)
		return 0;
	c.idx = pool_ptr(c.p, ino->data_off);
	if (!c.idx) {
		if (dpage == EMAP_HOLE)
			return 0;
		rc = map_create(&c);
		if (rc < 0)
			return rc;
	}
	rc = unmap_range(&c, fpage, end, removed, arg, &nremoved);
	if (rc < 0)
		return rc;
	for (pos = fpage; dpage != EMAP_HOLE && pos < end;) {
		uint32_t li = leaf_for(c.idx, pos);
		uint64_t limit = li + 1 < c.idx->nleaves ? c.idx->ent[li + 1].key
							 : UINT64_MAX;
		uint64_t piece = (end < limit ? end : limit) - pos;
		struct kmfs_extent e = {
			.fpage = pos, .dpage = dpage + (pos - fpage),
			.flags = flags,
		};

		if (piece > UINT32_MAX)
			piece = UINT32_MAX;
		e.count = (uint32_t)piece;
		rc = insert_in_leaf(&c, li, e);
		if (rc < 0)
			return rc;
		pos += piece;
	}
	if (nremoved || dpage != EMAP_HOLE) {
		rc = TXADD(ino, blocks);
		if (rc < 0)
			return rc;
		ino->blocks -= nremoved;
		if (dpage != EMAP_HOLE)
			ino->blocks += count;
	}
	return 0;
}

int emap_destroy(struct txn *t, struct kmfs_inode *ino,
		 emap_removed_fn removed, void *arg)
{
	struct kmfs_pool *p = t->pages->pool;
	struct kmfs_emap_index *idx = pool_ptr(p, ino->data_off);
	int rc;

	if (!idx)
		return 0;
	for (uint32_t li = 0; li < idx->nleaves; li++) {
		struct kmfs_emap_leaf *l = leaf_at(p, idx, li);
		for (uint32_t i = 0; i < l->n && removed; i++) {
			rc = removed(arg, l->ext[i].dpage, l->ext[i].count);
			if (rc < 0)
				return rc;
		}
		rc = tx_free(idx->ent[li].leaf_off);
		if (rc < 0)
			return rc;
	}
	rc = tx_free(ino->data_off);
	if (rc == 0)
		rc = TXADD(ino, data_off);
	if (rc == 0)
		rc = TXADD(ino, blocks);
	if (rc < 0)
		return rc;
	ino->data_off = 0;
	ino->blocks = 0;
	return 0;
}
