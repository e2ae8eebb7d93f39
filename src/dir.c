// SPDX-License-Identifier: BSD-3-Clause
/*
 * dir.c -- directories as a cookie-sorted list indexed by a bucket table.
 *
 * Growing or shrinking the table builds a new one from the list and never
 * touches an entry, so the undo log of a resize is a single free.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "dir.h"
#include "log.h"
#include "pool.h"
#include "pages.h"
#include "txn.h"

#define DIR_MIN_BITS 3
#define DIR_MAX_BITS 28

/* a hash in [KMFS_COOKIE_MIN, 2^63): below are readdir's "start", ".", ".." */
static uint64_t to_cookie_space(uint64_t h)
{
	h >>= 64 - KMFS_COOKIE_BITS;
	return h < KMFS_COOKIE_MIN ? h + KMFS_COOKIE_MIN : h;
}

/* format 1 directories: unkeyed, so only for pools that have no key */
static uint64_t fnv_hash(uint64_t seed, const char *name, size_t len)
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
	return to_cookie_space(h);
}

/* libsodium asks for sodium_init before any use (its SipHash needs none
 * today, and does not depend on it) */
static void sodium_once(void)
{
	if (sodium_init() < 0)
		log_err("libsodium failed to initialise (its SipHash does not need it)");
}

/* the directory's seed is part of the message, not of the key: one key,
 * and distinct inputs for every (directory, name) */
static uint64_t siphash(const uint8_t key[16], uint64_t seed, const char *name,
			size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	unsigned char msg[sizeof(seed) + KMFS_NAME_MAX];
	unsigned char out[crypto_shorthash_siphash24_BYTES];
	uint64_t h = 0;

	pthread_once(&once, sodium_once);
	for (size_t i = 0; i < sizeof(seed); i++)
		msg[i] = (unsigned char)(seed >> (8 * i)); /* little-endian */
	memcpy(msg + sizeof(seed), name, len);
	crypto_shorthash_siphash24(out, msg, sizeof(seed) + len, key);
	for (int i = 7; i >= 0; i--)
		h = h << 8 | out[i];
	return to_cookie_space(h);
}

static uint64_t table_hash(const struct kmfs_pool *p, const struct kmfs_dirtable *tab,
			   const char *name, size_t len)
{
	if (len > KMFS_NAME_MAX)
		return 0; /* no such entry; dir_add refuses the name first */
	if (tab->hash_kind == KMFS_HASH_SIPHASH)
		return siphash(p->sb->dir_key, tab->seed, name, len);
	return fnv_hash(tab->seed, name, len);
}

uint64_t (*dir_hash)(const struct kmfs_pool *p, const struct kmfs_dirtable *tab,
		     const char *name, size_t len) = table_hash;

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
	/* a format 1 pool has no key, and its older readers know only FNV */
	tab->hash_kind = pool_has_dir_key(t->pages->pool) ? KMFS_HASH_SIPHASH
							  : KMFS_HASH_FNV;
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
static uint64_t find_hashed(const struct kmfs_pool *p,
			    const struct kmfs_dirtable *tab, uint64_t h,
			    const char *name, size_t len, uint64_t *free_cookie)
{
	uint64_t want = h;
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

static uint64_t find_name(const struct kmfs_pool *p,
			  const struct kmfs_dirtable *tab, const char *name,
			  size_t len)
{
	return find_hashed(p, tab, dir_hash(p, tab, name, len), name, len, NULL);
}

/* said once per daemon: the client only sees ENOSPC */
static void run_refused(const struct kmfs_dirtable *tab)
{
	static atomic_flag said = ATOMIC_FLAG_INIT;

	if (atomic_flag_test_and_set(&said))
		return;
	log_err("refused a new name (ENOSPC): its directory hash joins a run "
		"of %d colliding ones%s", KMFS_DIR_RUN_MAX,
		tab->hash_kind == KMFS_HASH_FNV
			? "; this directory's hash has no secret key (format 1):"
			  " fsck.kmemfs --upgrade gives it one"
			: "");
}

int dir_lookup(const struct kmfs_pool *p, const struct kmfs_inode *dir,
	       const char *name, size_t len, struct dir_entry *out)
{
	const struct kmfs_dirtable *tab = pool_ptr(p, dir->data_off);
	uint64_t off = find_name(p, tab, name, len);
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

/*
 * Rebuild the bucket table at a size that suits COUNT entries. Without
 * room for the new table the old one stays: it finds every entry all the
 * same, with more of them a bucket, and the next add or remove tries
 * again. So a create or unlink never fails for it: libpmemobj may have no
 * run for the table's size while much of the metadata is free (its free
 * blocks sit in runs of other sizes, until a remount).
 */
static int resize(struct txn *t, struct kmfs_inode *dir, uint32_t bits)
{
	struct kmfs_pool *p = t->pages->pool;
	struct kmfs_dirtable *old = pool_ptr(p, dir->data_off), *tab;
	uint64_t off = tx_alloc(table_size(bits), KMFS_T_DIRTABLE, true);
	int rc;

	if (!off)
		return 0;
	tab = pool_ptr(p, off);
	tab->seed = old->seed;
	tab->hash_kind = old->hash_kind;
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

static int add_entry(struct txn *t, struct kmfs_inode *dir, const char *name,
		     size_t len, uint64_t ino_off, uint8_t type, bool capped)
{
	struct kmfs_pool *p = t->pages->pool;
	struct kmfs_dirtable *tab = pool_ptr(p, dir->data_off);
	uint64_t h, cookie, off;
	struct kmfs_dirent *e;
	int rc;

	if (len == 0 || len > KMFS_NAME_MAX)
		return -ENAMETOOLONG;
	h = dir_hash(p, tab, name, len);
	if (find_hashed(p, tab, h, name, len, &cookie))
		return -EEXIST;
	if (cookie >= (1ull << KMFS_COOKIE_BITS))
		return -ENOSPC; /* the top of the cookie space is taken */
	/*
	 * Keyed hashes make a run longer than 2 all but impossible; a long
	 * one is names made to collide (FNV, format 1), and every lookup in
	 * it and every remove before it (close_gap) walks it.
	 */
	if (capped && cookie - h >= KMFS_DIR_RUN_MAX) {
		run_refused(tab);
		return -ENOSPC;
	}
	off = tx_alloc(sizeof(*e) + len, KMFS_T_DIRENT, false);
	if (!off)
		return -ENOSPC;
	e = ent(p, off);
	e->ino_off = ino_off;
	e->hash = h;
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

int dir_add(struct txn *t, struct kmfs_inode *dir, const char *name,
	    size_t len, uint64_t ino_off, uint8_t type)
{
	return add_entry(t, dir, name, len, ino_off, type, true);
}

int dir_add_kept(struct txn *t, struct kmfs_inode *dir, const char *name,
		 size_t len, uint64_t ino_off, uint8_t type)
{
	return add_entry(t, dir, name, len, ino_off, type, false);
}

int dir_rehash(struct txn *t, struct kmfs_inode *dir)
{
	struct kmfs_pool *p = t->pages->pool;
	uint64_t old = dir->data_off, e, next;
	int rc = TXADD(dir, data_off);

	if (rc == 0)
		rc = dir_init(t, dir);
	/* freed objects stay readable until the commit */
	for (e = ((const struct kmfs_dirtable *)pool_ptr(p, old))->head_off;
	     e && rc == 0; e = next) {
		const struct kmfs_dirent *d = ent(p, e);

		next = d->next_off;
		rc = add_entry(t, dir, d->name, d->namelen, d->ino_off, d->type, false);
		if (rc == 0)
			rc = tx_free(e);
	}
	if (rc == 0)
		rc = tx_free(old);
	return rc;
}

int dir_remove(struct txn *t, struct kmfs_inode *dir, const char *name,
	       size_t len)
{
	struct kmfs_pool *p = t->pages->pool;
	struct kmfs_dirtable *tab = pool_ptr(p, dir->data_off);
	uint64_t off = find_name(p, tab, name, len);
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
	uint64_t off = find_name(p, tab, name, len);
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

bool dir_unkeyed(const struct kmfs_pool *p, const struct kmfs_inode *dir)
{
	return S_ISDIR(dir->mode) && dir->data_off &&
	       ((const struct kmfs_dirtable *)pool_ptr(p, dir->data_off))->hash_kind !=
		       KMFS_HASH_SIPHASH;
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
