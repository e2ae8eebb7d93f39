/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * fs.h -- the filesystem proper: operations on inodes by number, with
 * locking and one transaction per operation. Knows nothing of FUSE.
 *
 * Lock order (top to bottom):
 *   fs.ns_lock      rwlock; write for operations that change the namespace
 *                   or inode metadata, read for lookups and file I/O
 *   vnode.lock      rwlock per inode; protects its size and extent map
 *   pages.tx_lock   one transaction at a time (txn.h)
 *   pages.lock      allocator state
 *   fs.vlock        the vnode table
 *   fs.times_lock[] a stripe of inodes' timestamps (fs_times_lock)
 */
#ifndef KMEMFS_FS_H
#define KMEMFS_FS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "data.h"
#include "format.h"
#include "pages.h"
#include "pool.h"

/* Volatile per-inode state, alive while the kernel or an op refers to it. */
struct vnode {
	uint64_t off;          /* inode offset (the key) */
	uint64_t nlookup;      /* kernel references (lookup/forget) */
	uint32_t nopen;        /* open file handles */
	uint32_t busy;         /* operations in flight */
	bool linkable;         /* an O_TMPFILE inode linkat(2) may still name */
	pthread_rwlock_t lock; /* the inode's data: size, extent map */
	struct vnode *next;    /* hash chain */
};

struct fs_cred {
	uid_t uid;
	gid_t gid;
	mode_t umask;
};

struct fs_opts {
	bool lend;              /* give free units back (default on) */
	uint64_t reserve;       /* bytes of free units kept unlent */
	uint64_t lend_max;      /* at most this many bytes lent (0: no limit) */
	/* a pool file is then mapped copy-on-write: nothing reaches it */
	bool readonly;
	/* a read-only fs_mount of this process checked the pool just now */
	bool checked;
};

#define FS_TIMES_LOCKS 64

/* -o cache=: which opens of a regular file bypass the kernel's page cache
 * (fuse_ops.c, open_direct) */
enum fs_cache {
	FS_CACHE_AUTO,   /* opens for writing; read-only opens keep it */
	FS_CACHE_PAGE,   /* none */
	FS_CACHE_DIRECT, /* all */
};

struct kmfs_fs {
	struct kmfs_pool pool;
	struct pages pages;
	pthread_rwlock_t ns_lock;
	pthread_mutex_t vlock;  /* protects vtab and vnode counts */
	struct vnode **vtab;
	uint64_t vtab_size;
	bool readonly;
	_Atomic uint64_t nr_inodes; /* allocated, orphans included: df -i's IUsed */
	uint64_t unkeyed_dirs;      /* at mount: directories hashed with FNV */
	/* set by the FUSE layer once mounted; opaque below it */
	void *session;
	char mountpoint[4096];  /* absolute path */
	dev_t mount_dev;        /* st_dev of files on this mount (main.c) */
	uint32_t readahead;     /* bytes: the bdi's window and INIT's max_readahead */
	uint32_t max_read;      /* -o max_read: INIT must ask for it too (0: none) */
	enum fs_cache cache;    /* -o cache=: which opens bypass the page cache */
	bool noatime;           /* -o noatime: reads never move the access time */
	bool nodiratime;        /* -o nodiratime: nor do readdirs */
	pthread_mutex_t times_lock[FS_TIMES_LOCKS];
	/* the kernel never looks the root up nor forgets it: pinned for the
	 * mount, so its vnode does not come and go with each GETATTR */
	struct vnode *root_pin;
	/* unlinked inodes that could not be freed (a full pool: the undo log
	 * found no room), tried again each time another inode is freed */
	pthread_mutex_t retry_lock;
	uint64_t *retry_free;
	size_t nretry, retry_cap;
};

/*
 * A timestamp is 16 bytes, too wide to store or load in one instruction.
 * Data writes and reads change a file's times holding only the namespace
 * lock for reading, as do attribute readers: both sides take the inode's
 * stripe so a reader never sees the seconds of one time with the
 * nanoseconds of another. Changes made under the namespace lock for
 * writing need no stripe. Innermost lock: nothing is taken while held.
 */
static inline pthread_mutex_t *fs_times_lock(struct kmfs_fs *fs,
					     const struct kmfs_inode *ino)
{
	return &fs->times_lock[((uintptr_t)ino / sizeof(*ino)) % FS_TIMES_LOCKS];
}

#define FS_ROOT_INO 1

int fs_mount(struct kmfs_fs *fs, const char *path, const struct fs_opts *o);
void fs_unmount(struct kmfs_fs *fs);

uint64_t fs_ino(const struct kmfs_fs *fs, uint64_t off);
void fs_stat(struct kmfs_fs *fs, uint64_t off, struct stat *st);

/* namespace; *out_off receives the inode, which gains one lookup */
int fs_lookup(struct kmfs_fs *fs, uint64_t dir_ino, const char *name,
	      uint64_t *out_off);
/*
 * fs_lookup_handle -- the inode a file handle names (open_by_handle_at,
 * NFS): INO comes from outside, and is taken only if it is a live inode
 * carrying its tag (pool_inode_tag), else -ESTALE. Gains one lookup.
 */
int fs_lookup_handle(struct kmfs_fs *fs, uint64_t ino, uint64_t *out_off);
void fs_forget(struct kmfs_fs *fs, uint64_t ino, uint64_t n);
int fs_getattr(struct kmfs_fs *fs, uint64_t ino, struct stat *st);
/* when the inode was created (statx's STATX_BTIME); it never changes */
struct timespec fs_birth_time(struct kmfs_fs *fs, uint64_t ino);

#define FS_SET_MODE  (1 << 0)
#define FS_SET_UID   (1 << 1)
#define FS_SET_GID   (1 << 2)
#define FS_SET_SIZE  (1 << 3)
#define FS_SET_ATIME (1 << 4)
#define FS_SET_MTIME (1 << 5)
#define FS_SET_ATIME_NOW (1 << 7)
#define FS_SET_MTIME_NOW (1 << 8)
#define FS_SET_CTIME (1 << 10)
/* clear setuid/setgid as a write by a caller without CAP_FSETID does */
#define FS_KILL_SUIDGID (1 << 11)
/* with it: the caller is outside the file's group, so setgid goes even
 * without group-exec (setattr_should_drop_sgid, Linux 6.2+) */
#define FS_KILL_SGID (1 << 12)
int fs_setattr(struct kmfs_fs *fs, uint64_t ino, const struct stat *attr,
	       int to_set, struct stat *out);

/* INO's generation: a number no other inode of the pool had (lsattr -v) */
uint64_t fs_generation(struct kmfs_fs *fs, uint64_t ino);
/* chattr's flags (KMFS_AF_*) of INO */
uint32_t fs_attr_flags(struct kmfs_fs *fs, uint64_t ino);
/* set them, one transaction, the change time too; MAY_LOCK: the caller may
 * set or clear immutable and append-only (CAP_LINUX_IMMUTABLE). EOPNOTSUPP
 * for a flag kmemfs does not keep. */
int fs_set_attr_flags(struct kmfs_fs *fs, uint64_t ino, uint32_t flags,
		      bool may_lock);
/* 0, or -EPERM when INO's flags forbid a write (an immutable file) or, when
 * IN_PLACE, a change of the bytes it holds (append-only too): for the
 * caller to ask before clearing privileges for a change that cannot happen.
 * fs_write, fs_fallocate and fs_clone check it again under their locks. */
int fs_may_change_data(struct kmfs_fs *fs, uint64_t ino, bool in_place);
/* the same for a write at OFF (APPEND: at the end, whatever OFF says) */
int fs_may_write(struct kmfs_fs *fs, uint64_t ino, uint64_t off, bool append);

int fs_mknod(struct kmfs_fs *fs, uint64_t dir_ino, const char *name,
	     mode_t mode, dev_t rdev, const struct fs_cred *cr,
	     uint64_t *out_off);
int fs_mkdir(struct kmfs_fs *fs, uint64_t dir_ino, const char *name,
	     mode_t mode, const struct fs_cred *cr, uint64_t *out_off);
int fs_symlink(struct kmfs_fs *fs, uint64_t dir_ino, const char *name,
	       const char *target, const struct fs_cred *cr,
	       uint64_t *out_off);
/*
 * fs_tmpfile -- open(2) with O_TMPFILE in DIR_INO: a regular inode no
 * directory names, freed when the kernel lets go of it unless fs_link names
 * it first (when LINKABLE: not O_EXCL), and at the next mount after a crash.
 */
int fs_tmpfile(struct kmfs_fs *fs, uint64_t dir_ino, mode_t mode,
	       bool linkable, const struct fs_cred *cr, uint64_t *out_off);
/* fs_link -- name INO in DIR_INO; an unnamed inode only if fs_tmpfile's LINKABLE */
int fs_link(struct kmfs_fs *fs, uint64_t ino, uint64_t dir_ino,
	    const char *name, uint64_t *out_off);
int fs_unlink(struct kmfs_fs *fs, uint64_t dir_ino, const char *name);
int fs_rmdir(struct kmfs_fs *fs, uint64_t dir_ino, const char *name);
#define FS_RENAME_NOREPLACE 1
#define FS_RENAME_EXCHANGE  2
#define FS_RENAME_WHITEOUT  4 /* leave a whiteout (char device 0:0) at the old name */
/* fs_rename -- FS_RENAME_* FLAGS; CR owns the whiteout FS_RENAME_WHITEOUT leaves */
int fs_rename(struct kmfs_fs *fs, uint64_t dir_ino, const char *name,
	      uint64_t newdir_ino, const char *newname, unsigned flags,
	      const struct fs_cred *cr);
int fs_readlink(struct kmfs_fs *fs, uint64_t ino, char *buf, size_t size);

/* open files */
int fs_open(struct kmfs_fs *fs, uint64_t ino, int flags);
void fs_release(struct kmfs_fs *fs, uint64_t ino);
int fs_read(struct kmfs_fs *fs, uint64_t ino, uint64_t off, size_t size,
	    data_reply_fn reply, void *arg);
/* fs_read_atime -- fs_read that moves the access time only if ATIME
 * (O_NOATIME and -o noatime say not to) */
int fs_read_atime(struct kmfs_fs *fs, uint64_t ino, uint64_t off, size_t size,
		  data_reply_fn reply, void *arg, bool atime);
/* fs_setattr(FS_KILL_SUIDGID) when the inode has a bit to clear: 1 if it
 * had, 0 if not, or a negative errno. IN_GROUP(ARG, gid) says whether the
 * caller is in the file's group (or privileged); asked only of a file with
 * setgid and no group-exec, NULL for yes. */
int fs_kill_suidgid(struct kmfs_fs *fs, uint64_t ino,
		    bool (*in_group)(void *arg, gid_t gid), void *arg);
/* clearing setuid/setgid for a caller (OUTSIDER to the file's group) would
 * change INO's mode */
bool fs_suidgid_to_clear(struct kmfs_fs *fs, uint64_t ino, bool outsider);
/* file INO has setuid or setgid (read without a lock: the kernel holds the
 * inode's across the requests that ask) */
bool fs_has_suidgid(struct kmfs_fs *fs, uint64_t ino);
/* the caller is outside file INO's group (IN_GROUP says no), and the file
 * has setgid without group-exec: setgid goes with FS_KILL_SGID */
bool fs_sgid_outsider(struct kmfs_fs *fs, uint64_t ino,
		      bool (*in_group)(void *arg, gid_t gid), void *arg);
/* remove security.capability, as the kernel's file_remove_privs does on any
 * write it sees: 1 if there was one, 0 if not, or a negative errno */
int fs_kill_capability(struct kmfs_fs *fs, uint64_t ino);
ssize_t fs_write(struct kmfs_fs *fs, uint64_t ino, uint64_t off, size_t size,
		 const struct data_src *src, bool append);
int fs_fallocate(struct kmfs_fs *fs, uint64_t ino, int mode, uint64_t off,
		 uint64_t len);
int64_t fs_lseek(struct kmfs_fs *fs, uint64_t ino, int64_t off, int whence);

/* fs_accessed -- move INO's access time as a read would (relatime);
 * whether it moved */
bool fs_accessed(struct kmfs_fs *fs, uint64_t ino);
/* fs_clone -- copy a range, sharing whole pages (see data_clone) */
ssize_t fs_clone(struct kmfs_fs *fs, uint64_t src_ino, uint64_t soff,
		 uint64_t dst_ino, uint64_t doff, uint64_t len, bool must_share);

/* directories: FN gets each entry; returning non-zero stops (buffer full) */
typedef int (*fs_dirent_fn)(void *arg, const char *name, size_t len,
			    uint64_t ino, unsigned type, uint64_t next_off);
int fs_readdir(struct kmfs_fs *fs, uint64_t ino, uint64_t off,
	       fs_dirent_fn fn, void *arg);
/* readdirplus: FN also gets each entry's attributes, and an entry it takes
 * (returns 0) gains one lookup, as from fs_lookup, with LOOKED_UP true.
 * Bare entries (LOOKED_UP false, ST holding only st_ino and the type) gain
 * none: ".", "..", and inodes the kernel holds lookups on already. An
 * error (-ENOMEM) may come after entries were taken: they keep their
 * lookups, so the caller replies with them or forgets them. */
typedef int (*fs_direntplus_fn)(void *arg, const char *name, size_t len,
				const struct stat *st, bool looked_up,
				uint64_t next_off);
int fs_readdirplus(struct kmfs_fs *fs, uint64_t ino, uint64_t off,
		   fs_direntplus_fn fn, void *arg);

int fs_statfs(struct kmfs_fs *fs, struct statvfs *st);

/* extended attributes; FS_XATTR_KILL_SGID (with the XATTR_SET_* flags):
 * setting an access ACL also clears setgid, as the kernel does when the
 * caller is neither in the file's group nor privileged */
#define FS_XATTR_KILL_SGID 0x100
int fs_setxattr(struct kmfs_fs *fs, uint64_t ino, const char *name,
		const void *value, size_t size, int flags);
ssize_t fs_getxattr(struct kmfs_fs *fs, uint64_t ino, const char *name,
		    void *value, size_t size);
/* fs_listxattr -- trusted.* names too if TRUSTED(ARG) says the caller may
 * see them (asked at the first one; NULL: never) */
ssize_t fs_listxattr(struct kmfs_fs *fs, uint64_t ino, char *list,
		     size_t size, bool (*trusted)(void *arg), void *arg);
int fs_removexattr(struct kmfs_fs *fs, uint64_t ino, const char *name);

/* helpers shared by the fs layer files */
struct kmfs_inode *fs_inode(const struct kmfs_fs *fs, uint64_t off);
uint64_t fs_ino_off(const struct kmfs_fs *fs, uint64_t ino);

#endif
