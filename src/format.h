/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * format.h -- the kmemfs on-media format.
 *
 * Everything here is persistent: fixed-width fields only, no pointers.
 * A reference to another object is a pool offset (PMEMoid.off); 0 means
 * none. The layout is drawn in docs/on-media-format.md and pinned by
 * tests/unit/test_format.c. Changing a struct means a new major version.
 *
 *   pmemobj pool (one file or one devdax device)
 *   +-----------+------------------------------------------+-----------+
 *   | pmemobj   | metadata heap: super (root), inodes,     | data      |
 *   | headers   | dirents, dir tables, extent maps, xattrs,| arenas:   |
 *   |           | page refcounts, unit states              | 4 KiB     |
 *   |           |                                          | pages     |
 *   +-----------+------------------------------------------+-----------+
 *
 * Data arenas are large pmemobj objects allocated once by mkfs. Their
 * usable part starts on a 4 MiB boundary of the medium: of the pool file,
 * or of physical memory for a devdax device (a device may start 2 MiB past
 * one; the pool offset of the boundary is the superblock's unit_phase). So
 * a 4 MiB "unit" of pages is a whole range that can be hole-punched, or
 * lent to the kernel as whole 4 MiB of RAM. pmemobj never writes inside an
 * arena after mkfs: its object header sits in the alignment slack.
 */
#ifndef KMEMFS_FORMAT_H
#define KMEMFS_FORMAT_H

#include <stdint.h>

#define KMFS_LAYOUT "kmemfs"
#define KMFS_MAGIC 0x31534646454d4d4bULL /* "KMMEFFS1" little-endian */
/*
 * 2.0: keyed directory hashes (dir_key, kmfs_dirtable.hash_kind): a 1.x
 * kmemfs would look names up with the wrong hash, so it must refuse.
 * 3.0: unwritten extents (KMFS_EXT_UNWRITTEN): a 2.x kmemfs would overwrite
 * them in place without clearing the flag, and the data would read as
 * zeroes here, so it must refuse too.
 * Pools of format 1.x (1.1: unit_phase) and 2.x are still read and written
 * as they are; fsck.kmemfs --upgrade brings them to this one.
 */
#define KMFS_VERSION_MAJOR 3
#define KMFS_VERSION_MINOR 0
#define KMFS_VERSION_MAJOR_OLDEST 1

#define KMFS_PAGE_SHIFT 12
#define KMFS_PAGE_SIZE (1u << KMFS_PAGE_SHIFT)
#define KMFS_UNIT_SHIFT 22 /* 4 MiB: a MAX_ORDER chunk, whole pageblocks */
#define KMFS_UNIT_SIZE (1u << KMFS_UNIT_SHIFT)
#define KMFS_UNIT_PAGES (KMFS_UNIT_SIZE / KMFS_PAGE_SIZE)
#define KMFS_MAX_ARENAS 256
#define KMFS_NAME_MAX 255
#define KMFS_SYMLINK_MAX 4095
#define KMFS_XATTR_NAME_MAX 255
#define KMFS_XATTR_SIZE_MAX 65536
#define KMFS_XATTR_LIST_MAX (256 * 1024) /* all xattrs of one inode */
/* a file's pages: 2^63 bytes, every offset Linux allows (MAX_LFS_FILESIZE) */
#define KMFS_FILE_PAGES_MAX (1ull << 51)
/* the largest size stat can report (off_t), as the kernel's s_maxbytes */
#define KMFS_FILE_SIZE_MAX ((uint64_t)INT64_MAX)

/* pmemobj type numbers: fsck walks the pool by type. */
enum kmfs_type {
	KMFS_T_SUPER = 1,     /* root object */
	KMFS_T_INODE = 2,     /* struct kmfs_inode */
	KMFS_T_DIRENT = 3,    /* struct kmfs_dirent + name */
	KMFS_T_DIRTABLE = 4,  /* struct kmfs_dirtable + buckets */
	KMFS_T_EMAP_INDEX = 5, /* struct kmfs_emap_index + entries */
	KMFS_T_EMAP_LEAF = 6, /* struct kmfs_emap_leaf + extents */
	KMFS_T_XATTRS = 7,    /* struct kmfs_xattrs + packed entries */
	KMFS_T_SYMLINK = 8,   /* raw target bytes, length = inode size */
	KMFS_T_ARENA = 9,     /* data arena (page-aligned data inside) */
	KMFS_T_REFS = 10,     /* uint32_t refcount per data page */
	KMFS_T_UNITS = 11,    /* uint8_t enum kmfs_unit_state per unit */
};

/* Persistent state of a 4 MiB unit. */
enum kmfs_unit_state {
	KMFS_UNIT_PRESENT = 0, /* pages belong to the filesystem (used or free) */
	KMFS_UNIT_LENT = 1,    /* whole unit given away: hole-punched in the pool
				  file or lent to the kernel as RAM; holds no file
				  data and is zeroed/refaulted before reuse */
};

struct kmfs_time {
	int64_t sec;
	uint32_t nsec;
	uint32_t pad;
};

/* One data arena: pages [first_page, first_page + nunits * UNIT_PAGES). */
struct kmfs_arena {
	uint64_t obj_off;    /* the pmemobj object holding the arena */
	uint64_t data_off;   /* pool offset of its first page, = unit_phase mod 4 MiB */
	uint64_t first_page; /* global number of its first page */
	uint64_t nunits;     /* 4 MiB units in this arena */
};

/* Superblock: the pool's root object. */
struct kmfs_super {
	uint64_t magic;
	uint16_t major;
	uint16_t minor;
	uint32_t flags;         /* KMFS_SF_* */
	uint8_t uuid[16];
	uint64_t pool_size;     /* bytes, as formatted */
	struct kmfs_time created;
	uint64_t root_off;      /* root directory inode */
	uint64_t next_generation; /* inode generation counter */
	uint64_t total_pages;   /* sum over arenas */
	uint64_t refs_off;      /* uint32_t[total_pages] */
	uint64_t units_off;     /* uint8_t[total_pages / UNIT_PAGES] */
	uint32_t narenas;
	uint32_t mount_count;
	uint64_t mounted_pid;   /* pid of the daemon while mounted, else 0 */
	uint64_t unit_phase;    /* every arena's data_off mod 4 MiB (1.1) */
	uint8_t dir_key[16];    /* secret key of the directory hash (2.0) */
	uint64_t reserved[13];
	struct kmfs_arena arenas[KMFS_MAX_ARENAS];
};

#define KMFS_SF_DIRTY 0x1u /* mounted and not cleanly unmounted */

/* Inode. The inode number is the pool offset of this struct (root: 1). */
struct kmfs_inode {
	uint32_t mode;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint64_t size;
	uint64_t blocks;      /* data pages mapped by this inode */
	uint64_t rdev;
	uint64_t generation;
	struct kmfs_time atime;
	struct kmfs_time mtime;
	struct kmfs_time ctime;
	struct kmfs_time btime;
	uint64_t data_off;    /* dir: kmfs_dirtable; reg: kmfs_emap_index;
				 symlink: target bytes; others: 0 */
	uint64_t xattr_off;   /* kmfs_xattrs or 0 */
	uint64_t parent_off;  /* dir: parent directory inode (for "..") */
	uint32_t flags;       /* KMFS_IF_* */
	uint32_t attr_flags;  /* KMFS_AF_*: what chattr set */
	/* keyed hash of this inode's offset and generation (pool_inode_tag):
	 * a file handle's inode number is trusted only if it matches. 0 in
	 * inodes made before it, until the next writable mount sets it */
	uint64_t handle_tag;
	uint64_t reserved;
};

/* pages of the file past its size may hold bytes of a write that did not
 * commit (data.c, zero_past_size) */
#define KMFS_IF_PAST_SIZE 1u

/*
 * Attribute flags (chattr, FS_IOC_GETFLAGS), kept as the kernel's FS_*_FL
 * values (fuse_ops.c asserts they are): the set tmpfs keeps. Zero in pools
 * made before them, where the field was padding, so any pool takes them;
 * a kmemfs older than them ignores the field.
 */
#define KMFS_AF_IMMUTABLE 0x10u /* no change at all, no new name */
#define KMFS_AF_APPEND    0x20u /* data only appended; no rename, unlink */
#define KMFS_AF_NODUMP    0x40u /* dump(8) skips it: stored only */
#define KMFS_AF_NOATIME   0x80u /* reads leave the access time */
#define KMFS_AF_ALL (KMFS_AF_IMMUTABLE | KMFS_AF_APPEND | KMFS_AF_NODUMP | \
		     KMFS_AF_NOATIME)
/* what a new inode takes from its directory, as on tmpfs and ext4 */
#define KMFS_AF_INHERITED (KMFS_AF_NODUMP | KMFS_AF_NOATIME)

/*
 * Directory entry. All entries of a directory form one singly linked list
 * sorted by cookie; the bucket table indexes it by the cookie's top bits,
 * so growing the table never touches an entry.
 */
struct kmfs_dirent {
	uint64_t next_off;  /* next entry in cookie order, 0 at the end */
	uint64_t ino_off;   /* the inode */
	uint64_t hash;      /* 63-bit hash of the name (dirtable.hash_kind) */
	uint64_t cookie;    /* readdir offset: hash, or the next free value
			       after it when another name took it */
	uint16_t namelen;
	uint8_t type;       /* DT_* */
	uint8_t pad[5];
	char name[];        /* namelen bytes, no NUL */
};

struct kmfs_dirtable {
	uint64_t seed;      /* per-directory hash seed */
	uint64_t count;     /* entries, without "." and ".." */
	uint64_t head_off;  /* entry with the smallest cookie */
	uint32_t bits;      /* 1 << bits buckets */
	uint32_t hash_kind; /* KMFS_HASH_* (was padding, 0, in format 1) */
	uint64_t buckets[]; /* first entry whose cookie has these top bits */
};

/*
 * How a table hashes names. readdir hands out cookies, so anyone who can
 * list a directory sees hashes: FNV's seed can be computed back from two of
 * them, and then names that collide made at will. SipHash is a keyed PRF:
 * its outputs tell nothing of the pool's secret key.
 */
enum kmfs_hash_kind {
	KMFS_HASH_FNV = 0,     /* FNV-1a ^ seed, splitmix64 (format 1 pools) */
	KMFS_HASH_SIPHASH = 1, /* SipHash-2-4, key dir_key, of seed || name */
};
/* the longest run of consecutive cookies a name may join (dir.c) */
#define KMFS_DIR_RUN_MAX 32

#define KMFS_COOKIE_BITS 63
#define KMFS_COOKIE_MIN 3 /* 0: start, 1: ".", 2: ".." */

/* A run of data pages: file pages [fpage, fpage+count) -> device pages. */
struct kmfs_extent {
	uint64_t fpage;
	uint64_t dpage;
	uint32_t count;
	uint32_t flags; /* KMFS_EXT_* */
};

/*
 * Allocated by fallocate, never written since (format 3): reads as zeroes
 * whatever the pages hold, and SEEK_DATA/SEEK_HOLE see a hole, as for an
 * unwritten extent of ext4 or XFS. The pages are zeroed all the same, so
 * nothing foreign is in them. A write takes the flag off the pages it
 * stores in, in its transaction: a crash before it leaves them unwritten.
 */
#define KMFS_EXT_UNWRITTEN 0x1u
#define KMFS_EXT_KNOWN KMFS_EXT_UNWRITTEN

/*
 * Extent map: a two-level tree. Leaf i holds the extents whose file pages
 * lie in [key_i, key_{i+1}); key_0 = 0 and no extent crosses a key.
 */
struct kmfs_emap_ent {
	uint64_t key;
	uint64_t leaf_off;
};

struct kmfs_emap_index {
	uint32_t nleaves;
	uint32_t cap;
	uint64_t pad;
	struct kmfs_emap_ent ent[];
};

#define KMFS_LEAF_MAX 128 /* extents per leaf: a leaf is ~3 KiB at most */

struct kmfs_emap_leaf {
	uint32_t n;
	uint32_t cap;
	uint64_t pad;
	struct kmfs_extent ext[];
};

/*
 * Extended attributes of one inode, packed: each entry is
 * struct kmfs_xattr_ent, name, value, padded to 8 bytes.
 */
struct kmfs_xattrs {
	uint32_t count;
	uint32_t used; /* bytes of entries */
	uint8_t data[];
};

struct kmfs_xattr_ent {
	uint32_t value_len;
	uint8_t name_len;
	uint8_t pad[3];
	/* char name[name_len]; uint8_t value[value_len]; */
};

#endif /* KMEMFS_FORMAT_H */
