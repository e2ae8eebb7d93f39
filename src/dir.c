// SPDX-License-Identifier: BSD-3-Clause
/*
 * dir.c -- directories as a cookie-sorted list indexed by a bucket table.
 *
 * Growing or shrinking the table builds a new one from the list and never
 * touches an entry, so the undo log of a resize is a single free.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "dir.h"
#include "pool.h"
#include "pages.h"
#include "txn.h"

#define DIR_MIN_BITS 3
#define DIR_MAX_BITS 28

static uint64_t seeded_hash(uint64_t seed, const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull ^ seed;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 0x100000001b3ull;
	}
	/* splitmix64 finaliser: spreads FNV's weak high bits */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	h >>= 64 - KMFS_COOKIE_BITS;
	return h < KMFS_COOKIE_MIN ? h + KMFS_COOKIE_MIN : h;
}

uint64_t (*dir_hash)(uint64_t seed, const char *name, size_t len) = seeded_hash;

static inline uint64_t bucket_of(const struct kmfs_dirtable *tab, uint64_t c)
{
	return c >> (KMFS_COOKIE_BITS - tab->bits);
}

static inline struct kmfs_dirent *ent(const struct kmfs_pool *p, uint64_t off)
{
	return pool_ptr(p, off);
}

static size_t table_size(uint32_t bits)
{
	return sizeof(struct kmfs_dirtable) + (sizeof(uint64_t) << bits);
}

int dir_init(struct txn *t, struct kmfs_inode *dir)
{
	uint64_t off = tx_alloc(table_size(DIR_MIN_BITS), KMFS_T_DIRTABLE, true);
	struct kmfs_dirtable *tab;

	if (!off)
		return -ENOSPC;
	tab = pool_ptr(t->pages->pool, off);
	if (getrandom(&tab->seed, sizeof(tab->seed), GRND_NONBLOCK) !=
	    sizeof(tab->seed))
		tab->seed = (uint64_t)time(NULL) ^ off;
	tab->bits = DIR_MIN_BITS;
	dir->data_off = off; /* caller snapshotted or just allocated dir */
	return 0;
}

int dir_destroy(struct txn *t, struct kmfs_inode *dir)
{
	int rc = tx_free(dir->data_off);

	if (rc < 0)
		return rc;
	rc = TXADD(dir, data_off);
	if (rc == 0)
		dir->data_off = 0;
	return rc;
}

/* Last entry with cookie < C (0: insert at the head). */
static uint64_t find_pred(const struct kmfs_pool *p,
			  const struct kmfs_dirtable *tab, uint64_t c)
{
	uint64_t b = bucket_of(tab, c);
	uint64_t off = tab->buckets[b];

	if (!off || ent(p, off)->cookie >= c) {
		/* the predecessor ends the nearest non-empty bucket below */
		off = 0;
		while (b-- > 0) {
			if (tab->buckets[b]) {
				off = tab->buckets[b];
				break;
			}
		}
		if (!off)
			return 0;
	}
	for (;;) {
		uint64_t next = ent(p, off)->next_off;
		if (!next || ent(p, next)->cookie >= c)
			return off;
		off = next;
	}
}

/* First entry with cookie >= C, or 0. */
static uint64_t find_ge(const struct kmfs_pool *p,
			const struct kmfs_dirtable *tab, uint64_t c)
{
	uint64_t b = bucket_of(tab, c), nb = 1ull << tab->bits;
	uint64_t off = tab->buckets[b];

	if (!off) {
		while (++b < nb && !tab->buckets[b])
			;
		return b < nb ? tab->buckets[b] : 0;
	}
	while (off && ent(p, off)->cookie < c)
		off = ent(p, off)->next_off;
	return off;
}

/*
 * Walk the run of consecutive cookies starting at the name's hash: a name
 * is always at the first free cookie at or after its hash. Returns the
 * entry, or 0 with *free_cookie set to where the name would go.
 */
static uint64_t find_name(const struct kmfs_pool *p,
			  const struct kmfs_dirtable *tab, const char *name,
			  size_t len, uint64_t *free_cookie)
{
	uint64_t h = dir_hash(tab->seed, name, len), want = h;
	uint64_t off = tab->buckets[bucket_of(tab, h)] ? find_ge(p, tab, h) : 0;

	while (off) {
		const struct kmfs_dirent *e = ent(p, off);
		if (e->cookie != want)
			break;
		if (e->hash == h && e->namelen == len &&
		    memcmp(e->name, name, len) == 0)
			return off;
		want++;
		off = e->next_off;
	}
	if (free_cookie)
		*free_cookie = want;
	return 0;
}

int dir_lookup(const struct kmfs_pool *p, const struct kmfs_inode *dir,
	       const char *name, size_t len, struct dir_entry *out)
{
	const struct kmfs_dirtable *tab = pool_ptr(p, dir->data_off);
	uint64_t off = find_name(p, tab, name, len, NULL);
	const struct kmfs_dirent *e;

	if (!off)
		return -ENOENT;
	e = ent(p, off);
	out->name = e->name;
	out->namelen = e->namelen;
	out->type = e->type;
	out->ino_off = e->ino_off;
	out->cookie = e->cookie;
	return 0;
}

/* Rebuild the bucket table at a size that suits COUNT entries. */
static int resize(struct txn *t, struct kmfs_inode *dir, uint32_t bits)
{
	struct kmfs_pool *p = t->pages->pool;
	struct kmfs_dirtable *old = pool_ptr(p, dir->data_off), *tab;
	uint64_t off = tx_alloc(table_size(bits), KMFS_T_DIRTABLE, true);
	int rc;

	if (!off)
		return -ENOSPC;
	tab = pool_ptr(p, off);
	tab->seed = old->seed;
	tab->count = old->count;
	tab->head_off = old->head_off;
	tab->bits = bits;
	for (uint64_t e = old->head_off; e; e = ent(p, e)->next_off) {
		uint64_t b = bucket_of(tab, ent(p, e)->cookie);
		if (!tab->buckets[b])
			tab->buckets[b] = e;
	}
	rc = tx_free(dir->data_off);
	if (rc == 0)
		rc = TXADD(dir, data_off);
	if (rc == 0)
		dir->data_off = off;
	return rc;
}

/* Put entry OFF (its cookie set, not in the list) in its place in the list
 * and the bucket table; caller in txn. FRESH: allocated in this transaction
 * (nothing of it to snapshot). */
static int link_entry(struct kmfs_pool *p, struct kmfs_dirtable *tab, uint64_t off,
		      bool fresh)
{
	struct kmfs_dirent *e = ent(p, off);
	uint64_t pred = find_pred(p, tab, e->cookie), b;
	int rc = fresh ? 0 : TXADD(e, next_off);

	if (rc < 0)
		return rc;
	if (pred) {
		struct kmfs_dirent *pe = ent(p, pred);
		rc = TXADD(pe, next_off);
		if (rc < 0)
			return rc;
		e->next_off = pe->next_off;
		pe->next_off = off;
	} else {
		rc = TXADD(tab, head_off);
		if (rc < 0)
			return rc;
		e->next_off = tab->head_off;
		tab->head_off = off;
	}
	b = bucket_of(tab, e->cookie);
	if (!tab->buckets[b] || ent(p, tab->buckets[b])->cookie > e->cookie) {
		rc = tx_add(&tab->buckets[b], sizeof(uint64_t));
		if (rc < 0)
			return rc;
		tab->buckets[b] = off;
	}
	return 0;
}

/* Take entry OFF out of the list and the bucket table; caller in txn. */
static int unlink_entry(struct kmfs_pool *p, struct kmfs_dirtable *tab, uint64_t off)
{
	struct kmfs_dirent *e = ent(p, off);
	uint64_t next = e->next_off, pred = find_pred(p, tab, e->cookie), b;
	int rc;

	if (pred) {
		rc = TXADD(ent(p, pred), next_off);
		if (rc < 0)
			return rc;
		ent(p, pred)->next_off = next;
	} else {
		rc = TXADD(tab, head_off);
		if (rc < 0)
			return rc;
		tab->head_off = next;
	}
	b = bucket_of(tab, e->cookie);
	if (tab->buckets[b] == off) {
		rc = tx_add(&tab->buckets[b], sizeof(uint64_t));
		if (rc < 0)
			return rc;
		tab->buckets[b] = next && bucket_of(tab, ent(p, next)->cookie) == b
					  ? next : 0;
	}
	return 0;
}

/*
 * The entry at cookie HOLE is gone. A name lives at the first free cookie
 * at or after its hash, and find_name stops at the first free one, so the
 * entries of the run after HOLE whose hash is at or before it move back
 * into it, one by one, as in linear probing: otherwise a name whose run
 * passed through HOLE could no longer be found (and a second entry of that
 * name could be made). Runs need equal or adjacent 63-bit hashes, so this
 * almost never moves anything; a moved entry's readdir offset changes.
 */
static int close_gap(struct kmfs_pool *p, struct kmfs_dirtable *tab, uint64_t hole,
		     uint64_t next)
{
	uint64_t want = hole + 1;
	int rc;

	while (next && ent(p, next)->cookie == want) {
		uint64_t off = next;
		struct kmfs_dirent *e = ent(p, off);

		next = e->next_off;
		want++;
		if (e->hash > hole)
			continue;
		rc = unlink_entry(p, tab, off);
		if (rc == 0)
			rc = TXADD(e, cookie);
		if (rc < 0)
			return rc;
		e->cookie = hole;
		rc = link_entry(p, tab, off, false);
		if (rc < 0)
			return rc;
		hole = want - 1;
	}
	return 0;
}

int dir_add(struct txn *t, struct kmfs_inode *dir, const char *name,
	    size_t len, uint64_t ino_off, uint8_t type)
{
	struct kmfs_pool *p = t->pages->pool;
	struct kmfs_dirtable *tab = pool_ptr(p, dir->data_off);
	uint64_t cookie, off;
	struct kmfs_dirent *e;
	int rc;

	if (len == 0 || len > KMFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (find_name(p, tab, name, len, &cookie))
		return -EEXIST;
	if (cookie >= (1ull << KMFS_COOKIE_BITS))
		return -ENOSPC; /* the top of the cookie space is taken */
	off = tx_alloc(sizeof(*e) + len, KMFS_T_DIRENT, false);
	if (!off)
		return -ENOSPC;
	e = ent(p, off);
	e->ino_off = ino_off;
	e->hash = dir_hash(tab->seed, name, len);
	e->cookie = cookie;
	e->namelen = (uint16_t)len;
	e->type = type;
	memset(e->pad, 0, sizeof(e->pad));
	memcpy(e->name, name, len);

	rc = link_entry(p, tab, off, true);
	if (rc < 0)
		return rc;
	rc = TXADD(tab, count);
	if (rc < 0)
		return rc;
	tab->count++;
	if (tab->count > (2ull << tab->bits) && tab->bits < DIR_MAX_BITS)
		return resize(t, dir, tab->bits + 2);
	return 0;
}

int dir_remove(struct txn *t, struct kmfs_inode *dir, const char *name,
	       size_t len)
{
	struct kmfs_pool *p = t->pages->pool;
	struct kmfs_dirtable *tab = pool_ptr(p, dir->data_off);
	uint64_t off = find_name(p, tab, name, len, NULL);
	int rc;

	if (!off)
		return -ENOENT;
	rc = unlink_entry(p, tab, off);
	if (rc == 0)
		rc = close_gap(p, tab, ent(p, off)->cookie, ent(p, off)->next_off);
	if (rc < 0)
		return rc;
	rc = TXADD(tab, count);
	if (rc < 0)
		return rc;
	tab->count--;
	rc = tx_free(off);
	if (rc < 0)
		return rc;
	if (tab->bits > DIR_MIN_BITS && tab->count * 8 < (1ull << tab->bits))
		return resize(t, dir, tab->bits - 2 < DIR_MIN_BITS ? DIR_MIN_BITS
								   : tab->bits - 2);
	return 0;
}

int dir_retarget(struct txn *t, struct kmfs_inode *dir, const char *name,
		 size_t len, uint64_t ino_off, uint8_t type)
{
	struct kmfs_pool *p = t->pages->pool;
	const struct kmfs_dirtable *tab = pool_ptr(p, dir->data_off);
	uint64_t off = find_name(p, tab, name, len, NULL);
	struct kmfs_dirent *e;
	int rc;

	if (!off)
		return -ENOENT;
	e = ent(p, off);
	rc = TXADD(e, ino_off);
	if (rc == 0)
		rc = TXADD(e, type);
	if (rc < 0)
		return rc;
	e->ino_off = ino_off;
	e->type = type;
	return 0;
}

bool dir_is_empty(const struct kmfs_pool *p, const struct kmfs_inode *dir)
{
	const struct kmfs_dirtable *tab = pool_ptr(p, dir->data_off);
	return tab->count == 0;
}

uint64_t dir_count(const struct kmfs_pool *p, const struct kmfs_inode *dir)
{
	const struct kmfs_dirtable *tab = pool_ptr(p, dir->data_off);
	return tab->count;
}

int dir_iter(const struct kmfs_pool *p, const struct kmfs_inode *dir,
	     uint64_t after, dir_iter_fn fn, void *arg)
{
	const struct kmfs_dirtable *tab = pool_ptr(p, dir->data_off);
	uint64_t off;

	if (after + 1 >= (1ull << KMFS_COOKIE_BITS))
		return 0;
	off = after < KMFS_COOKIE_MIN ? tab->head_off : find_ge(p, tab, after + 1);
	for (; off; off = ent(p, off)->next_off) {
		const struct kmfs_dirent *e = ent(p, off);
		struct dir_entry de = {
			.name = e->name, .namelen = e->namelen, .type = e->type,
			.ino_off = e->ino_off, .cookie = e->cookie,
		};
		int rc = fn(arg, &de);
		if (rc)
			return rc;
	}
	return 0;
}
