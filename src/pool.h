/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pool.h -- the libpmemobj pool: create, open, close, and typed access.
 *
 * pool.c is the only caller of pmemobj_create/open/close. The pool is
 * untrusted input: pool_open validates the superblock and arenas before
 * anything else reads them.
 */
#ifndef KMEMFS_POOL_H
#define KMEMFS_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <libpmemobj.h>

#include "format.h"
#include "media.h"

/* the allocation classes kmemfs registers with libpmemobj at every open */
#define POOL_NCLASSES 3
#define POOL_CHUNK (256u << 10) /* libpmemobj's heap chunk */
#define POOL_SMALL_MAX 4000     /* the objects of every create: inode, name */
struct pool_class {
	uint64_t flags; /* POBJ_CLASS_ID(id); 0: not registered */
	size_t max;     /* the biggest object it takes */
};

struct kmfs_pool {
	PMEMobjpool *pop;
	char *base;            /* pool mapping; an offset is base + off */
	uint64_t size;         /* pool bytes */
	struct kmfs_super *sb;
	struct media media;
	uint32_t *refs;        /* refcount per data page */
	uint8_t *units;        /* enum kmfs_unit_state per unit */
	uint64_t total_pages;
	uint64_t total_units;
	uint64_t arena_bytes;  /* pmemobj bytes the data arenas take */
	uint64_t heap_bytes;   /* about what libpmemobj's heap spans */
	/* metadata bytes in use when a small object last found no room: runs,
	 * their free blocks of other sizes and libpmemobj's own structures
	 * take the rest, which no counter shows; 0 until then, and again
	 * once more is in use than that */
	_Atomic uint64_t meta_full_at;
	struct pool_class classes[POOL_NCLASSES];
};

struct pool_format_opts {
	uint64_t size;      /* create a file of this size when missing */
	bool force;         /* overwrite an existing kmemfs or non-empty device */
	unsigned meta_pct;  /* share of the pool kept for metadata (percent) */
};

#define POOL_MIN_SIZE (64ull << 20)
#define POOL_DEFAULT_META_PCT 12

/* pool_format -- make PATH a fresh kmemfs; prints the reason on failure */
int pool_format(const char *path, const struct pool_format_opts *o);
/* pool_open -- open and validate; prints the reason on failure */
int pool_open(const char *path, struct kmfs_pool *pool);
/* pool_open_quiet -- as pool_open; QUIET_BUSY: no message when in use */
int pool_open_quiet(const char *path, struct kmfs_pool *pool, bool quiet_busy);
/* pool_open_kmod -- as pool_open; USE_KMOD: a devdax device is attached
 * to kmemfs.ko (when loaded) so its free units can be lent as RAM */
int pool_open_kmod(const char *path, struct kmfs_pool *pool, bool use_kmod);
/*
 * pool_open_private -- as pool_open_quiet, but a pool file is mapped
 * copy-on-write, so nothing this process does reaches it (fsck -n); a
 * devdax device cannot be, and is opened as usual.
 */
int pool_open_private(const char *path, struct kmfs_pool *pool, bool quiet_busy);

#define POOL_OPEN_KMOD       1 /* a devdax device is attached to kmemfs.ko */
#define POOL_OPEN_QUIET_BUSY 2 /* no message when the pool is in use */
#define POOL_OPEN_PRIVATE    4 /* a pool file mapped copy-on-write */
#define POOL_OPEN_PROBED     8 /* heap already probed by this process: skip it */
/* pool_open_how -- the general form of the above, HOW a set of POOL_OPEN_* */
int pool_open_how(const char *path, struct kmfs_pool *pool, int how);
void pool_close(struct kmfs_pool *pool);

/* pool_has_dir_key -- format 2 and later: directory names hashed under the
 * superblock's dir_key (format 1 pools have none, and use FNV) */
static inline bool pool_has_dir_key(const struct kmfs_pool *p)
{
	return p->sb->major >= 2;
}

/* pool_has_unwritten -- format 3 and later: fallocate maps its pages as
 * unwritten extents (a format 2 pool gets them as written zeroes, which
 * a kmemfs of format 2 reads the same way) */
static inline bool pool_has_unwritten(const struct kmfs_pool *p)
{
	return p->sb->major >= 3;
}

/*
 * pool_inode_tag -- the keyed hash of an inode at OFF with generation GEN,
 * kept in its handle_tag. A file handle names an inode by its offset, and
 * a handle can come from anyone (an NFS client): only an inode whose tag
 * matches is used (fs_lookup_handle), and without the pool's key nobody
 * can forge one in bytes a user controls (a name, an xattr). Never 0;
 * 0 when the pool has no key (format 1), where no handle is trusted.
 */
uint64_t pool_inode_tag(const struct kmfs_pool *p, uint64_t off, uint64_t gen);

/* pool_may_hold_inode -- could an inode lie at OFF: inside the pool,
 * aligned, outside every data arena (whose pages may be lent away); only
 * its tag can say whether one does */
bool pool_may_hold_inode(const struct kmfs_pool *p, uint64_t off);

/* pool_new_dir_key -- random bytes for a dir_key, with no fallback: a
 * guessable key would let users collide names. Says why on failure. */
int pool_new_dir_key(uint8_t key[16], const char *path);

/* pool_ptr -- pointer for a pool offset (0 -> NULL) */
static inline void *pool_ptr(const struct kmfs_pool *p, uint64_t off)
{
	return off ? p->base + off : NULL;
}

static inline uint64_t pool_off(const struct kmfs_pool *p, const void *ptr)
{
	return ptr ? (uint64_t)((const char *)ptr - p->base) : 0;
}

/* pool_page_off -- pool offset of global data page number PAGE */
uint64_t pool_page_off(const struct kmfs_pool *p, uint64_t page);

static inline void *pool_page(const struct kmfs_pool *p, uint64_t page)
{
	return p->base + pool_page_off(p, page);
}

/* pool_obj_ok -- OFF is inside the pool and holds an object of TYPE of at
 * least SIZE bytes (pmemobj's own header says so) */
bool pool_obj_ok(const struct kmfs_pool *p, uint64_t off, unsigned type,
		 uint64_t size);

void pool_persist(const struct kmfs_pool *p, const void *addr, size_t len);
/* pool_persist for a range written through the pool file (media_pwrite) */
void pool_persist_written(const struct kmfs_pool *p, const void *addr, size_t len);
void pool_memcpy_persist(const struct kmfs_pool *p, void *dst, const void *src,
			 size_t len);
void pool_memset_persist(const struct kmfs_pool *p, void *dst, int c,
			 size_t len);

void pool_enable_stats(PMEMobjpool *pop);
/* pool_alloc_class -- the pmemobj_tx_xalloc flags for an object of SIZE */
uint64_t pool_alloc_class(const struct kmfs_pool *p, size_t size);
/* pool_meta_free -- about how many bytes of the metadata share are left */
uint64_t pool_meta_free(struct kmfs_pool *p);
/* pool_note_meta_full -- a small metadata object found no room */
void pool_note_meta_full(struct kmfs_pool *p);
/* pool_meta_used -- bytes of metadata objects allocated */
uint64_t pool_meta_used(const struct kmfs_pool *p);

/* pool_now -- current time for timestamps */
struct kmfs_time pool_now(void);

/* An inode's mode word, loaded and stored whole: open, fallocate and the
 * write path read it without the namespace lock that chmod holds. */
static inline uint32_t inode_mode(const struct kmfs_inode *ino)
{
	return __atomic_load_n(&ino->mode, __ATOMIC_RELAXED);
}

static inline void inode_set_mode(struct kmfs_inode *ino, uint32_t mode)
{
	__atomic_store_n(&ino->mode, mode, __ATOMIC_RELAXED);
}

/* parse_size -- "1G", "512M", "4096" -> bytes; -EINVAL on junk */
int parse_size(const char *s, uint64_t *out);

#endif
