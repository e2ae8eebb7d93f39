// SPDX-License-Identifier: BSD-3-Clause
/*
 * fs.c -- filesystem operations: locking, inode life cycle, namespace,
 * attributes. The lock order is in fs.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <libpmemobj.h>

#include "acl.h"
#include "check.h"
#include "dir.h"
#include "fs.h"
#include "log.h"
#include "txn.h"
#include "xattr.h"

#define VTAB_SIZE (1u << 16)
#define LINK_MAX_COUNT 65000u

/* ---- inode numbers and pointers ------------------------------------- */

uint64_t fs_ino(const struct kmfs_fs *fs, uint64_t off)
{
	return off == fs->pool.sb->root_off ? FS_ROOT_INO : off;
}

uint64_t fs_ino_off(const struct kmfs_fs *fs, uint64_t ino)
{
	return ino == FS_ROOT_INO ? fs->pool.sb->root_off : ino;
}

struct kmfs_inode *fs_inode(const struct kmfs_fs *fs, uint64_t off)
{
	return pool_ptr(&fs->pool, off);
}

static struct kmfs_inode *ino_ptr(const struct kmfs_fs *fs, uint64_t ino)
{
	return fs_inode(fs, fs_ino_off(fs, ino));
}

static uint8_t dtype(mode_t mode)
{
	return (uint8_t)IFTODT(mode);
}

/* ---- attribute flags: the refusals the kernel leaves to us ---------------
 * FUSE keeps no S_IMMUTABLE or S_APPEND on its inodes, so every check the
 * VFS makes on them for a local filesystem is made here, with its errno. */

static bool immutable(const struct kmfs_inode *ino)
{
	return ino->attr_flags & KMFS_AF_IMMUTABLE;
}

static bool append_only(const struct kmfs_inode *ino)
{
	return ino->attr_flags & KMFS_AF_APPEND;
}

/* IS_IMMUTABLE || IS_APPEND: no attribute, xattr, link or name of INO changes */
static int attrs_locked(const struct kmfs_inode *ino)
{
	return immutable(ino) || append_only(ino) ? -EPERM : 0;
}

/* may_delete: a name leaves no immutable or append-only directory, and none
 * that names an immutable or append-only inode goes */
static int may_remove(const struct kmfs_inode *dir, const struct kmfs_inode *victim)
{
	int rc = attrs_locked(dir);

	return rc < 0 ? rc : attrs_locked(victim);
}

/* may_create: an immutable directory takes no new name; a name it has
 * already is EEXIST first, as the lookup before the check finds it */
static int may_add(struct kmfs_fs *fs, const struct kmfs_inode *dir,
		   const char *name)
{
	struct dir_entry de;

	if (!immutable(dir))
		return 0;
	return dir_lookup(&fs->pool, dir, name, strlen(name), &de) == 0 ? -EEXIST
									: -EPERM;
}

/* may a write, allocation or clone change INO's data? IN_PLACE: bytes it
 * holds, or its size down (vfs_fallocate's and the remap's rules) */
static int may_change_data(const struct kmfs_inode *ino, bool in_place)
{
	return immutable(ino) || (in_place && append_only(ino)) ? -EPERM : 0;
}

/* notify_change: owner, mode and times set to a value need an inode that
 * is neither immutable nor append-only, a touch to now one that is not
 * immutable; a truncate needs both flags off (vfs_truncate, may_open). The
 * setuid/setgid clearing of a write is refused on an immutable file, whose
 * write the kernel refuses first, and done on an append-only one. */
static int may_setattr(const struct kmfs_inode *ino, int to_set)
{
	int times = to_set & (FS_SET_ATIME | FS_SET_MTIME | FS_SET_ATIME_NOW | FS_SET_MTIME_NOW);
	/* only both times to now is utimensat's touch (ATTR_TOUCH); a lone
	 * now, as touch -a or -m sends, sets a time (ATTR_TIMES_SET) */
	bool touch = (to_set & FS_SET_ATIME_NOW) && (to_set & FS_SET_MTIME_NOW);
	bool time_set = times && !touch;

	if ((to_set & (FS_SET_MODE | FS_SET_UID | FS_SET_GID | FS_SET_SIZE)) || time_set)
		return attrs_locked(ino);
	if ((to_set & (FS_SET_ATIME_NOW | FS_SET_MTIME_NOW | FS_KILL_SUIDGID)) &&
	    immutable(ino))
		return -EPERM;
	return 0;
}

/* ---- vnodes: volatile per-inode state -------------------------------- */

static struct vnode **vslot(struct kmfs_fs *fs, uint64_t off)
{
	uint64_t h = (off >> 4) * 0x9e3779b97f4a7c15ull;
	return &fs->vtab[h >> 48 & (VTAB_SIZE - 1)];
}

/* vget -- find or make the vnode of OFF and pin it; vlock not held */
static struct vnode *vget(struct kmfs_fs *fs, uint64_t off)
{
	struct vnode **slot, *v;

	pthread_mutex_lock(&fs->vlock);
	slot = vslot(fs, off);
	for (v = *slot; v; v = v->next)
		if (v->off == off)
			break;
	if (!v) {
		v = calloc(1, sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&fs->vlock);
			return NULL;
		}
		v->off = off;
		pthread_rwlock_init(&v->lock, NULL);
		v->next = *slot;
		*slot = v;
	}
	v->busy++;
	pthread_mutex_unlock(&fs->vlock);
	return v;
}

/*
 * Give inode OFF its handle tag (pool_inode_tag): after the transaction
 * that made it committed, never inside it, because the bytes of an
 * allocation that aborts, or that a crash undoes, stay in free space, and
 * a handle must never find them. One aligned 8-byte store: after a crash
 * it is there or 0, and a 0 gets its tag at the next writable mount. A
 * pool with no key (format 1) keeps 0.
 */
static void tag_inode(struct kmfs_fs *fs, uint64_t off)
{
	struct kmfs_inode *ino = fs_inode(fs, off);
	uint64_t tag = pool_inode_tag(&fs->pool, off, ino->generation);

	if (tag && ino->handle_tag != tag) {
		ino->handle_tag = tag;
		pool_persist(&fs->pool, &ino->handle_tag, sizeof(ino->handle_tag));
	}
}

/* Free an unlinked inode and everything it owns. */
static int inode_destroy(struct kmfs_fs *fs, uint64_t off)
{
	struct kmfs_inode *ino = fs_inode(fs, off);
	struct txn t;
	int rc;

	txn_init(&t, &fs->pages);
	rc = txn_begin(&t);
	if (rc < 0)
		return rc;
	if (S_ISREG(ino->mode))
		rc = data_release_all(&t, ino);
	else if (S_ISDIR(ino->mode) && ino->data_off)
		rc = dir_destroy(&t, ino);
	else if (S_ISLNK(ino->mode))
		rc = tx_free(ino->data_off);
	if (rc == 0)
		rc = xattr_destroy(&t, ino);
	/* freed bytes keep what they held: no handle may find them */
	if (rc == 0)
		rc = TXADD(ino, handle_tag);
	if (rc == 0) {
		ino->handle_tag = 0;
		rc = tx_free(off);
	}
	rc = txn_end(&t, rc);
	if (rc == 0)
		atomic_fetch_sub(&fs->nr_inodes, 1);
	return rc;
}

/* Keep OFF, an unlinked inode that could not be freed, for retry_frees.
 * Without memory for it, the next mount frees it (scan_inodes). */
static void retry_later(struct kmfs_fs *fs, uint64_t off)
{
	pthread_mutex_lock(&fs->retry_lock);
	if (fs->nretry == fs->retry_cap) {
		size_t cap = fs->retry_cap ? 2 * fs->retry_cap : 16;
		uint64_t *v = realloc(fs->retry_free, cap * sizeof(*v));
		if (v) {
			fs->retry_free = v;
			fs->retry_cap = cap;
		}
	}
	if (fs->nretry < fs->retry_cap)
		fs->retry_free[fs->nretry++] = off;
	pthread_mutex_unlock(&fs->retry_lock);
}

/* Free the inodes retry_later kept: a freed inode has made room. */
static void retry_frees(struct kmfs_fs *fs)
{
	uint64_t *v;
	size_t n;

	pthread_mutex_lock(&fs->retry_lock);
	v = fs->retry_free;
	n = fs->nretry;
	fs->retry_free = NULL;
	fs->nretry = fs->retry_cap = 0;
	pthread_mutex_unlock(&fs->retry_lock);
	for (size_t i = 0; i < n; i++)
		if (inode_destroy(fs, v[i]) < 0)
			retry_later(fs, v[i]);
	free(v);
}

/* Free unlinked inode OFF, which nothing refers to any more; if the pool
 * has no room for that now, after the next inode that frees. */
static void free_unlinked(struct kmfs_fs *fs, uint64_t off)
{
	int rc = inode_destroy(fs, off);

	if (rc < 0) {
		log_err("cannot free inode %llu yet (%s): trying again after "
			"the next file freed", (unsigned long long)off, strerror(-rc));
		retry_later(fs, off);
	} else {
		retry_frees(fs);
	}
}

/*
 * Drop counts on V; when nothing refers to it any more the vnode goes,
 * and so does the inode if no directory entry names it.
 */
static void vput_counts(struct kmfs_fs *fs, struct vnode *v, uint64_t nlookup,
			uint32_t nopen, uint32_t busy)
{
	struct vnode **pp;
	bool gone, unlinked = false;
	uint64_t off = v->off;

	pthread_mutex_lock(&fs->vlock);
	v->nlookup -= nlookup < v->nlookup ? nlookup : v->nlookup;
	v->nopen -= nopen;
	v->busy -= busy;
	gone = !v->nlookup && !v->nopen && !v->busy;
	if (gone) {
		for (pp = vslot(fs, off); *pp != v; pp = &(*pp)->next)
			;
		*pp = v->next;
		/* read with the vnode leaving: an unlink pins the inode
		 * (vget) before it drops the link, so either it is done and
		 * this sees no link, or its own vput comes later */
		unlinked = fs_inode(fs, off)->nlink == 0;
	}
	pthread_mutex_unlock(&fs->vlock);
	if (!gone)
		return;
	pthread_rwlock_destroy(&v->lock);
	free(v);
	if (unlinked && !fs->readonly)
		free_unlinked(fs, off);
}

static void vput(struct kmfs_fs *fs, struct vnode *v)
{
	vput_counts(fs, v, 0, 0, 1);
}

/* Count one kernel lookup of OFF (an entry reply); LINKABLE: fs_tmpfile's. */
static int vlookup_linkable(struct kmfs_fs *fs, uint64_t off, bool linkable)
{
	struct vnode *v = vget(fs, off);

	if (!v)
		return -ENOMEM;
	pthread_mutex_lock(&fs->vlock);
	v->nlookup++;
	v->busy--;
	if (linkable)
		v->linkable = true;
	pthread_mutex_unlock(&fs->vlock);
	return 0;
}

static int vlookup(struct kmfs_fs *fs, uint64_t off)
{
	return vlookup_linkable(fs, off, false);
}

/* ---- mount ----------------------------------------------------------- */

/*
 * Count the inodes (df -i) and the directories not keyed (format 1) and,
 * on a writable mount, free those that were unlinked while open when the
 * daemon stopped, and tag those made before handle tags or left untagged
 * by a crash (tag_inode).
 */
static void scan_inodes(struct kmfs_fs *fs)
{
	PMEMoid oid = pmemobj_first(fs->pool.pop);
	uint64_t freed = 0;

	atomic_store(&fs->nr_inodes, 0);
	fs->unkeyed_dirs = 0;
	while (!OID_IS_NULL(oid)) {
		PMEMoid next = pmemobj_next(oid);
		log_progress("counting inodes", atomic_load(&fs->nr_inodes), 0);
		if (pmemobj_type_num(oid) == KMFS_T_INODE) {
			const struct kmfs_inode *ino = pmemobj_direct(oid);
			bool orphan = ino->nlink == 0 && oid.off != fs->pool.sb->root_off;

			if (dir_unkeyed(&fs->pool, ino))
				fs->unkeyed_dirs++;
			/* the mount's check refused any other tag than 0 or
			 * the inode's own */
			if (!fs->readonly && !ino->handle_tag)
				tag_inode(fs, oid.off);
			/* counted, so that inode_destroy's uncount balances */
			atomic_fetch_add(&fs->nr_inodes, 1);
			if (orphan && !fs->readonly) {
				int rc = inode_destroy(fs, oid.off);
				if (rc == 0)
					freed++;
				else
					log_err("cannot free inode %llu: %s",
						(unsigned long long)oid.off, strerror(-rc));
			}
		}
		oid = next;
	}
	if (freed)
		log_info("freed %llu inodes unlinked before the last unmount",
			 (unsigned long long)freed);
}

static void set_mounted(struct kmfs_fs *fs, bool on)
{
	struct kmfs_super *sb = fs->pool.sb;
	struct txn t;
	int rc;

	txn_init(&t, &fs->pages);
	if (txn_begin(&t) < 0)
		return;
	rc = tx_add(sb, offsetof(struct kmfs_super, reserved));
	if (rc == 0) {
		sb->mounted_pid = on ? (uint64_t)getpid() : 0;
		if (on) {
			sb->flags |= KMFS_SF_DIRTY;
			sb->mount_count++;
		} else {
			sb->flags &= ~KMFS_SF_DIRTY;
		}
	}
	txn_end(&t, rc);
}

static void locks_destroy(struct kmfs_fs *fs)
{
	pthread_rwlock_destroy(&fs->ns_lock);
	pthread_mutex_destroy(&fs->vlock);
	pthread_mutex_destroy(&fs->retry_lock);
	for (int i = 0; i < FS_TIMES_LOCKS; i++)
		pthread_mutex_destroy(&fs->times_lock[i]);
}

int fs_mount(struct kmfs_fs *fs, const char *path, const struct fs_opts *o)
{
	int rc;

	memset(fs, 0, sizeof(*fs));
	rc = pool_open_how(path, &fs->pool,
			   (o->lend && !o->readonly ? POOL_OPEN_KMOD : 0) |
			   (o->readonly ? POOL_OPEN_PRIVATE : 0) |
			   (o->checked ? POOL_OPEN_PROBED : 0));
	if (rc < 0)
		return rc;
	pool_enable_stats(fs->pool.pop);
	/* the pool is untrusted: check every reference before serving it */
	struct check_opts co = { .quiet = true };
	struct check_result cr = { 0 };
	if (!o->checked)
		rc = check_pool(&fs->pool, &co, &cr);
	if (rc == 0 && cr.errors) {
		log_err("%s: corrupt metadata: %s (%llu problem%s; run fsck.kmemfs)",
			path, cr.first, (unsigned long long)cr.errors,
			cr.errors == 1 ? "" : "s");
		rc = -EUCLEAN;
	}
	if (rc < 0)
		goto out_close;
	rc = pages_init(&fs->pages, &fs->pool, o->lend && !o->readonly,
			o->reserve, o->lend_max);
	if (rc < 0)
		goto out_close;
	fs->vtab = calloc(VTAB_SIZE, sizeof(*fs->vtab));
	if (!fs->vtab) {
		rc = -ENOMEM;
		goto out_pages;
	}
	fs->vtab_size = VTAB_SIZE;
	pthread_rwlock_init(&fs->ns_lock, NULL);
	pthread_mutex_init(&fs->vlock, NULL);
	pthread_mutex_init(&fs->retry_lock, NULL);
	for (int i = 0; i < FS_TIMES_LOCKS; i++)
		pthread_mutex_init(&fs->times_lock[i], NULL);
	fs->readonly = o->readonly;
	scan_inodes(fs);
	fs->root_pin = vget(fs, fs_ino_off(fs, FS_ROOT_INO));
	if (!fs->root_pin) {
		rc = -ENOMEM;
		goto out_vtab;
	}
	if (!fs->readonly)
		set_mounted(fs, true);
	return 0;
out_vtab:
	locks_destroy(fs);
	free(fs->vtab);
out_pages:
	pages_fini(&fs->pages);
out_close:
	pool_close(&fs->pool);
	return rc;
}

void fs_unmount(struct kmfs_fs *fs)
{
	vput(fs, fs->root_pin);
	/* inodes the kernel still held: free the unlinked ones now */
	for (uint64_t i = 0; i < fs->vtab_size; i++) {
		while (fs->vtab[i]) {
			struct vnode *v = fs->vtab[i];
			v->busy++;
			vput_counts(fs, v, v->nlookup, v->nopen, 1);
		}
	}
	/* what still finds no room is freed by the next mount */
	retry_frees(fs);
	free(fs->retry_free);
	fs->retry_free = NULL;
	fs->nretry = fs->retry_cap = 0;
	if (!fs->readonly)
		set_mounted(fs, false);
	free(fs->vtab);
	pages_fini(&fs->pages);
	pool_close(&fs->pool);
	locks_destroy(fs);
}

/* ---- attributes -------------------------------------------------------- */

void fs_stat(struct kmfs_fs *fs, uint64_t off, struct stat *st)
{
	const struct kmfs_inode *ino = fs_inode(fs, off);

	memset(st, 0, sizeof(*st));
	st->st_ino = fs_ino(fs, off);
	st->st_mode = ino->mode;
	st->st_nlink = ino->nlink;
	st->st_uid = ino->uid;
	st->st_gid = ino->gid;
	st->st_rdev = ino->rdev;
	st->st_size = (off_t)ino->size;
	/* a directory's size grows with its entries, 20 bytes each as on tmpfs;
	 * a removed one has no table left */
	if (S_ISDIR(ino->mode) && ino->data_off)
		st->st_size = (off_t)((dir_count(&fs->pool, ino) + 2) * 20);
	st->st_blocks = (blkcnt_t)(ino->blocks * (KMFS_PAGE_SIZE / 512));
	st->st_blksize = KMFS_PAGE_SIZE;
	pthread_mutex_lock(fs_times_lock(fs, ino));
	st->st_atim.tv_sec = ino->atime.sec;
	st->st_atim.tv_nsec = ino->atime.nsec;
	st->st_mtim.tv_sec = ino->mtime.sec;
	st->st_mtim.tv_nsec = ino->mtime.nsec;
	st->st_ctim.tv_sec = ino->ctime.sec;
	st->st_ctim.tv_nsec = ino->ctime.nsec;
	pthread_mutex_unlock(fs_times_lock(fs, ino));
}

int fs_getattr(struct kmfs_fs *fs, uint64_t ino, struct stat *st)
{
	uint64_t off = fs_ino_off(fs, ino);
	/* data writes change size and blocks holding the namespace lock only
	 * for reading, and the vnode lock for writing: its read side gives a
	 * size and block count of one moment */
	struct vnode *v = vget(fs, off);

	if (!v)
		return -ENOMEM;
	pthread_rwlock_rdlock(&fs->ns_lock);
	pthread_rwlock_rdlock(&v->lock);
	fs_stat(fs, off, st);
	pthread_rwlock_unlock(&v->lock);
	pthread_rwlock_unlock(&fs->ns_lock);
	vput(fs, v);
	return 0;
}

struct timespec fs_birth_time(struct kmfs_fs *fs, uint64_t ino)
{
	const struct kmfs_inode *i = ino_ptr(fs, ino);

	return (struct timespec){ .tv_sec = (time_t)i->btime.sec,
				  .tv_nsec = (long)i->btime.nsec };
}

static struct kmfs_time ts_to_kt(struct timespec ts)
{
	struct kmfs_time t = { .sec = ts.tv_sec, .nsec = (uint32_t)ts.tv_nsec };
	return t;
}

/* MODE without setuid, and without setgid when the group may execute or
 * the caller is an OUTSIDER to the file's group. */
static mode_t suidgid_killed(mode_t mode, bool outsider)
{
	if (S_ISDIR(mode))
		return mode;
	mode &= ~(mode_t)S_ISUID;
	if ((mode & S_IXGRP) || outsider)
		mode &= ~(mode_t)S_ISGID;
	return mode;
}

/*
 * An allocation that only a lent unit could serve fails with
 * -PAGES_ERECLAIM before the operation has done anything it cannot do
 * again (the data source is not read yet). The unit is taken back with
 * none of our locks held (see pages_take_back), then the operation runs
 * again; ENOSPC if the host or kernel keeps its units.
 */
static bool again_after_reclaim(struct kmfs_fs *fs, ssize_t *rc,
				unsigned *round)
{
	if (*rc == -PAGES_ERECLAIM) {
		if (pages_take_back(&fs->pages, (*round)++) == 0)
			return true;
		*rc = -ENOSPC;
	}
	if (*round)
		pages_take_back_done(&fs->pages);
	return false;
}

struct attr_change {
	struct kmfs_inode *ino;
	const struct stat *attr;
	int to_set;
	struct kmfs_time now;
};

/* The mode, owner and times of a setattr; inside its transaction (that of
 * the truncate when there is one). */
static int set_attrs(struct txn *t, void *arg)
{
	const struct attr_change *c = arg;
	struct kmfs_inode *ino = c->ino;
	const struct stat *attr = c->attr;
	int to_set = c->to_set;
	int rc = tx_add(ino, sizeof(*ino));

	if (rc == 0 && (to_set & FS_SET_MODE)) {
		inode_set_mode(ino, (ino->mode & S_IFMT) | (attr->st_mode & 07777));
		rc = acl_chmod(t, ino);
	}
	if (rc < 0)
		return rc;
	if (to_set & FS_KILL_SUIDGID)
		inode_set_mode(ino, suidgid_killed(ino->mode, to_set & FS_KILL_SGID));
	if (to_set & FS_SET_UID)
		ino->uid = attr->st_uid;
	if (to_set & FS_SET_GID)
		ino->gid = attr->st_gid;
	if (to_set & FS_SET_ATIME_NOW)
		ino->atime = c->now;
	else if (to_set & FS_SET_ATIME)
		ino->atime = ts_to_kt(attr->st_atim);
	/* a truncate, even to the same size, is a change of the data
	 * (ftruncate's rule; the request does not say which call it was) */
	if ((to_set & FS_SET_MTIME_NOW) ||
	    ((to_set & FS_SET_SIZE) && !(to_set & FS_SET_MTIME)))
		ino->mtime = c->now;
	else if (to_set & FS_SET_MTIME)
		ino->mtime = ts_to_kt(attr->st_mtim);
	if (to_set & FS_SET_CTIME)
		ino->ctime = ts_to_kt(attr->st_ctim);
	else
		ino->ctime = c->now;
	return 0;
}

static int setattr_once(struct kmfs_fs *fs, uint64_t ino_nr,
			const struct stat *attr, int to_set, struct stat *out)
{
	uint64_t off = fs_ino_off(fs, ino_nr);
	struct kmfs_inode *ino = fs_inode(fs, off);
	struct attr_change c = { ino, attr, to_set, pool_now() };
	struct txn t;
	int rc = 0;

	if (fs->readonly)
		return -EROFS;
	pthread_rwlock_wrlock(&fs->ns_lock);
	rc = may_setattr(ino, to_set);
	if (rc < 0)
		goto out;
	if (to_set & FS_SET_SIZE) {
		if (S_ISDIR(ino->mode))
			rc = -EISDIR;
		else if (!S_ISREG(ino->mode))
			rc = -EINVAL;
		else if (attr->st_size < 0)
			rc = -EINVAL;
		if (rc < 0)
			goto out;
	}
	if ((to_set & FS_SET_SIZE) && (uint64_t)attr->st_size != ino->size) {
		/* one transaction: a failure changes neither size nor attributes */
		rc = data_truncate(fs, ino, (uint64_t)attr->st_size, set_attrs, &c);
	} else {
		txn_init(&t, &fs->pages);
		rc = txn_begin(&t);
		if (rc == 0)
			rc = txn_end(&t, set_attrs(&t, &c));
	}
out:
	if (rc == 0)
		fs_stat(fs, off, out);
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

int fs_setattr(struct kmfs_fs *fs, uint64_t ino_nr, const struct stat *attr,
	       int to_set, struct stat *out)
{
	unsigned round = 0;
	ssize_t rc;

	do
		rc = setattr_once(fs, ino_nr, attr, to_set, out);
	while (again_after_reclaim(fs, &rc, &round));
	return (int)rc;
}

uint64_t fs_generation(struct kmfs_fs *fs, uint64_t ino_nr)
{
	return ino_ptr(fs, ino_nr)->generation; /* set at creation, never changed */
}

uint32_t fs_attr_flags(struct kmfs_fs *fs, uint64_t ino_nr)
{
	uint32_t flags;

	pthread_rwlock_rdlock(&fs->ns_lock);
	flags = ino_ptr(fs, ino_nr)->attr_flags;
	pthread_rwlock_unlock(&fs->ns_lock);
	return flags;
}

int fs_set_attr_flags(struct kmfs_fs *fs, uint64_t ino_nr, uint32_t flags,
		      bool may_lock)
{
	struct kmfs_inode *ino = ino_ptr(fs, ino_nr);
	struct txn t;
	int rc;

	if (fs->readonly)
		return -EROFS;
	if (flags & ~KMFS_AF_ALL)
		return -EOPNOTSUPP;
	pthread_rwlock_wrlock(&fs->ns_lock);
	/* fileattr_set_prepare: CAP_LINUX_IMMUTABLE for either lock */
	if (((flags ^ ino->attr_flags) & (KMFS_AF_IMMUTABLE | KMFS_AF_APPEND)) &&
	    !may_lock) {
		rc = -EPERM;
		goto out;
	}
	txn_init(&t, &fs->pages);
	rc = txn_begin(&t);
	if (rc < 0)
		goto out;
	rc = TXADD(ino, attr_flags);
	if (rc == 0)
		rc = TXADD(ino, ctime);
	if (rc == 0) {
		ino->attr_flags = flags;
		ino->ctime = pool_now();
	}
	rc = txn_end(&t, rc);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

int fs_may_write(struct kmfs_fs *fs, uint64_t ino_nr, uint64_t off, bool append)
{
	struct kmfs_inode *ino = ino_ptr(fs, ino_nr);
	int rc;

	pthread_rwlock_rdlock(&fs->ns_lock);
	rc = may_change_data(ino, !append && off < ino->size);
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

int fs_may_change_data(struct kmfs_fs *fs, uint64_t ino_nr, bool in_place)
{
	int rc;

	pthread_rwlock_rdlock(&fs->ns_lock);
	rc = may_change_data(ino_ptr(fs, ino_nr), in_place);
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

bool fs_sgid_outsider(struct kmfs_fs *fs, uint64_t ino_nr,
		      bool (*in_group)(void *arg, gid_t gid), void *arg)
{
	const struct kmfs_inode *ino = ino_ptr(fs, ino_nr);
	mode_t mode = inode_mode(ino);

	/* the kernel holds the inode's lock: no chgrp or chmod meanwhile */
	return (mode & (S_ISGID | S_IXGRP)) == S_ISGID && !S_ISDIR(mode) &&
	       in_group && !in_group(arg, ino->gid);
}

bool fs_suidgid_to_clear(struct kmfs_fs *fs, uint64_t ino_nr, bool outsider)
{
	mode_t mode = inode_mode(ino_ptr(fs, ino_nr));

	return suidgid_killed(mode, outsider) != mode;
}

bool fs_has_suidgid(struct kmfs_fs *fs, uint64_t ino_nr)
{
	return inode_mode(ino_ptr(fs, ino_nr)) & (S_ISUID | S_ISGID);
}

int fs_kill_suidgid(struct kmfs_fs *fs, uint64_t ino_nr,
		    bool (*in_group)(void *arg, gid_t gid), void *arg)
{
	bool outsider = fs_sgid_outsider(fs, ino_nr, in_group, arg);
	struct stat a = { 0 }, out;
	int rc;

	/* the common case, no bits to clear, costs no transaction */
	if (!fs_suidgid_to_clear(fs, ino_nr, outsider))
		return 0;
	rc = fs_setattr(fs, ino_nr, &a, FS_KILL_SUIDGID | (outsider ? FS_KILL_SGID : 0),
			&out);
	return rc < 0 ? rc : 1;
}

int fs_kill_capability(struct kmfs_fs *fs, uint64_t ino_nr)
{
	int rc;

	/* the common case, no such attribute, costs no transaction and no
	 * exclusive lock */
	if (fs_getxattr(fs, ino_nr, "security.capability", NULL, 0) == -ENODATA)
		return 0;
	rc = fs_removexattr(fs, ino_nr, "security.capability");
	if (rc == -ENODATA)
		return 0;
	return rc < 0 ? rc : 1;
}

/* ---- namespace ----------------------------------------------------------- */

static int check_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return -ENOENT;
	if (len > KMFS_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* A directory inode for DIR_INO, or an errno. ns_lock held. */
static int get_dir(struct kmfs_fs *fs, uint64_t dir_ino, struct kmfs_inode **out)
{
	struct kmfs_inode *d = ino_ptr(fs, dir_ino);

	if (!S_ISDIR(d->mode))
		return -ENOTDIR;
	if (d->nlink == 0)
		return -ENOENT; /* removed while we were looking */
	*out = d;
	return 0;
}

/*
 * The start of a change to directory DIR_INO's entry NAME: a writable
 * filesystem, a valid name, ns_lock held for writing and the directory in
 * *DIR. On success the lock is held; on an error it is not.
 */
static int ns_enter(struct kmfs_fs *fs, uint64_t dir_ino, const char *name,
		    struct kmfs_inode **dir)
{
	int rc;

	if (fs->readonly)
		return -EROFS;
	rc = check_name(name);
	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&fs->ns_lock);
	rc = get_dir(fs, dir_ino, dir);
	if (rc < 0)
		pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

int fs_lookup(struct kmfs_fs *fs, uint64_t dir_ino, const char *name,
	      uint64_t *out_off)
{
	struct kmfs_inode *dir;
	struct dir_entry de;
	int rc;

	rc = check_name(name);
	if (rc < 0)
		return rc;
	pthread_rwlock_rdlock(&fs->ns_lock);
	rc = get_dir(fs, dir_ino, &dir);
	if (rc == 0) {
		if (!strcmp(name, "."))
			de.ino_off = fs_ino_off(fs, dir_ino);
		else if (!strcmp(name, ".."))
			de.ino_off = dir->parent_off;
		else
			rc = dir_lookup(&fs->pool, dir, name, strlen(name), &de);
	}
	if (rc == 0)
		rc = vlookup(fs, de.ino_off);
	if (rc == 0)
		*out_off = de.ino_off;
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

int fs_lookup_handle(struct kmfs_fs *fs, uint64_t ino_nr, uint64_t *out_off)
{
	uint64_t off = fs_ino_off(fs, ino_nr);
	const struct kmfs_inode *ino;
	int rc = -ESTALE;

	if (!pool_may_hold_inode(&fs->pool, off))
		return rc;
	pthread_rwlock_rdlock(&fs->ns_lock);
	ino = fs_inode(fs, off);
	/* a removed inode is stale, even while it waits for its last close */
	if (ino->nlink && ino->handle_tag &&
	    ino->handle_tag == pool_inode_tag(&fs->pool, off, ino->generation))
		rc = vlookup(fs, off);
	if (rc == 0)
		*out_off = off;
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

void fs_forget(struct kmfs_fs *fs, uint64_t ino, uint64_t n)
{
	struct vnode *v = vget(fs, fs_ino_off(fs, ino));

	if (v)
		vput_counts(fs, v, n, 0, 1);
}

/* Bump a directory's times (caller in txn). */
static int dir_touch(struct kmfs_inode *dir, struct kmfs_time now)
{
	int rc = TXADD(dir, mtime);

	if (rc == 0)
		rc = TXADD(dir, ctime);
	if (rc == 0)
		dir->mtime = dir->ctime = now;
	return rc;
}

/*
 * A new inode of MODE for directory DIR, owned by CR (or DIR's group when
 * DIR is set-group-ID), with DIR's default ACL; not yet named anywhere.
 * Caller is inside transaction T. Returns 0 and its offset in *OFF.
 */
static int new_inode(struct kmfs_fs *fs, struct txn *t, struct kmfs_inode *dir,
		     mode_t mode, dev_t rdev, const struct fs_cred *cr,
		     struct kmfs_time now, uint64_t *off)
{
	struct kmfs_super *sb = fs->pool.sb;
	struct kmfs_inode *ino;
	int rc;

	*off = tx_alloc(sizeof(*ino), KMFS_T_INODE, true);
	if (!*off)
		return -ENOSPC;
	ino = fs_inode(fs, *off);
	ino->mode = mode;
	ino->uid = cr->uid;
	ino->gid = cr->gid;
	if (dir->mode & S_ISGID) {
		ino->gid = dir->gid;
		if (S_ISDIR(mode))
			ino->mode |= S_ISGID;
	}
	ino->rdev = (S_ISCHR(mode) || S_ISBLK(mode)) ? rdev : 0;
	ino->nlink = S_ISDIR(mode) ? 2 : 1;
	ino->atime = ino->mtime = ino->ctime = ino->btime = now;
	ino->attr_flags = dir->attr_flags & KMFS_AF_INHERITED;
	rc = TXADD(sb, next_generation);
	if (rc < 0)
		return rc;
	ino->generation = sb->next_generation++;
	/* no handle_tag yet: tag_inode gives it once the transaction has
	 * committed, since an aborted one leaves these bytes in free space */
	return acl_inherit(t, dir, ino, cr->umask);
}

/*
 * Create an inode named NAME in DIR_INO: regular, device, FIFO, socket,
 * directory or symlink (TARGET). One transaction.
 */
static int create_node(struct kmfs_fs *fs, uint64_t dir_ino, const char *name,
		       mode_t mode, dev_t rdev, const char *target,
		       const struct fs_cred *cr, uint64_t *out_off)
{
	struct kmfs_inode *dir, *ino;
	struct kmfs_time now = pool_now();
	struct txn t;
	uint64_t off;
	int rc;

	rc = ns_enter(fs, dir_ino, name, &dir);
	if (rc < 0)
		return rc;
	rc = may_add(fs, dir, name);
	if (rc < 0)
		goto out;
	if (S_ISDIR(mode) && dir->nlink >= LINK_MAX_COUNT) {
		rc = -EMLINK;
		goto out;
	}
	txn_init(&t, &fs->pages);
	rc = txn_begin(&t);
	if (rc < 0)
		goto out;
	rc = new_inode(fs, &t, dir, mode, rdev, cr, now, &off);
	if (rc < 0)
		goto out_end;
	ino = fs_inode(fs, off);
	if (S_ISDIR(mode)) {
		ino->parent_off = fs_ino_off(fs, dir_ino);
		rc = dir_init(&t, ino);
		if (rc == 0)
			rc = TXADD(dir, nlink);
		if (rc == 0)
			dir->nlink++;
	} else if (S_ISLNK(mode) && target) {
		size_t len = strlen(target);
		ino->size = len;
		ino->data_off = tx_alloc(len ? len : 1, KMFS_T_SYMLINK, false);
		if (!ino->data_off)
			rc = -ENOSPC;
		else
			memcpy(pool_ptr(&fs->pool, ino->data_off), target, len);
	}
	if (rc == 0)
		rc = dir_add(&t, dir, name, strlen(name), off, dtype(mode));
	if (rc == 0)
		rc = dir_touch(dir, now);
out_end:
	rc = txn_end(&t, rc);
	if (rc == 0) {
		atomic_fetch_add(&fs->nr_inodes, 1);
		tag_inode(fs, off);
	}
	if (rc == 0)
		rc = vlookup(fs, off);
	if (rc == 0)
		*out_off = off;
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

int fs_mknod(struct kmfs_fs *fs, uint64_t dir_ino, const char *name,
	     mode_t mode, dev_t rdev, const struct fs_cred *cr,
	     uint64_t *out_off)
{
	if (!S_ISREG(mode) && !S_ISCHR(mode) && !S_ISBLK(mode) &&
	    !S_ISFIFO(mode) && !S_ISSOCK(mode))
		return -EINVAL;
	return create_node(fs, dir_ino, name, mode, rdev, NULL, cr, out_off);
}

int fs_mkdir(struct kmfs_fs *fs, uint64_t dir_ino, const char *name,
	     mode_t mode, const struct fs_cred *cr, uint64_t *out_off)
{
	return create_node(fs, dir_ino, name, S_IFDIR | (mode & 07777), 0,
			   NULL, cr, out_off);
}

int fs_symlink(struct kmfs_fs *fs, uint64_t dir_ino, const char *name,
	       const char *target, const struct fs_cred *cr, uint64_t *out_off)
{
	if (strlen(target) > KMFS_SYMLINK_MAX)
		return -ENAMETOOLONG;
	struct fs_cred c = *cr;
	c.umask = 0; /* symlinks are always 0777 */
	return create_node(fs, dir_ino, name, S_IFLNK | 0777, 0, target, &c,
			   out_off);
}

int fs_tmpfile(struct kmfs_fs *fs, uint64_t dir_ino, mode_t mode,
	       bool linkable, const struct fs_cred *cr, uint64_t *out_off)
{
	struct kmfs_inode *dir;
	struct txn t;
	uint64_t off;
	int rc;

	if (fs->readonly)
		return -EROFS;
	pthread_rwlock_wrlock(&fs->ns_lock);
	/* a directory, even one already removed: Linux allows that too */
	dir = ino_ptr(fs, dir_ino);
	if (!S_ISDIR(dir->mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	if (immutable(dir)) {
		rc = -EPERM;
		goto out;
	}
	txn_init(&t, &fs->pages);
	rc = txn_begin(&t);
	if (rc < 0)
		goto out;
	/* a new object: written without snapshots, like new_inode's fields */
	rc = new_inode(fs, &t, dir, S_IFREG | (mode & 07777), 0, cr, pool_now(), &off);
	if (rc == 0)
		fs_inode(fs, off)->nlink = 0;
	rc = txn_end(&t, rc);
	if (rc < 0)
		goto out;
	atomic_fetch_add(&fs->nr_inodes, 1);
	tag_inode(fs, off);
	rc = vlookup_linkable(fs, off, linkable);
	if (rc < 0)
		free_unlinked(fs, off); /* no reference can be kept: never used */
	else
		*out_off = off;
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

/* Whether OFF is an fs_tmpfile inode that may still be named; CLEAR: no more. */
static bool vlinkable(struct kmfs_fs *fs, uint64_t off, bool clear)
{
	struct vnode *v;
	bool linkable = false;

	pthread_mutex_lock(&fs->vlock);
	for (v = *vslot(fs, off); v; v = v->next)
		if (v->off == off) {
			linkable = v->linkable;
			if (clear)
				v->linkable = false;
		}
	pthread_mutex_unlock(&fs->vlock);
	return linkable;
}

int fs_link(struct kmfs_fs *fs, uint64_t ino_nr, uint64_t dir_ino,
	    const char *name, uint64_t *out_off)
{
	uint64_t off = fs_ino_off(fs, ino_nr);
	struct kmfs_inode *dir, *ino = fs_inode(fs, off);
	struct kmfs_time now = pool_now();
	struct txn t;
	int rc;

	rc = ns_enter(fs, dir_ino, name, &dir);
	if (rc < 0)
		return rc;
	rc = may_add(fs, dir, name);
	if (rc == 0)
		rc = attrs_locked(ino); /* vfs_link */
	if (rc < 0)
		goto out;
	if (S_ISDIR(ino->mode)) {
		rc = -EPERM;
		goto out;
	}
	if (ino->nlink >= LINK_MAX_COUNT) {
		rc = -EMLINK;
		goto out;
	}
	/* an unlinked inode comes back only as the kernel's I_LINKABLE allows */
	if (ino->nlink == 0 && !vlinkable(fs, off, false)) {
		rc = -ENOENT;
		goto out;
	}
	txn_init(&t, &fs->pages);
	rc = txn_begin(&t);
	if (rc < 0)
		goto out;
	rc = dir_add(&t, dir, name, strlen(name), off, dtype(ino->mode));
	if (rc == 0)
		rc = TXADD(ino, nlink);
	if (rc == 0)
		rc = TXADD(ino, ctime);
	if (rc == 0) {
		ino->nlink++;
		ino->ctime = now;
		rc = dir_touch(dir, now);
	}
	rc = txn_end(&t, rc);
	if (rc == 0)
		vlinkable(fs, off, true); /* as vfs_link clears I_LINKABLE */
	if (rc == 0)
		rc = vlookup(fs, off);
	if (rc == 0)
		*out_off = off;
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

/*
 * One link of VICTIM goes away (caller in txn). A directory loses "." too
 * and its parent loses "..".
 */
static int drop_link(struct kmfs_inode *parent, struct kmfs_inode *victim,
		     struct kmfs_time now)
{
	int rc = tx_add(victim, sizeof(*victim));

	if (rc < 0)
		return rc;
	victim->ctime = now;
	if (S_ISDIR(victim->mode)) {
		victim->nlink = 0;
		rc = TXADD(parent, nlink);
		if (rc < 0)
			return rc;
		parent->nlink--;
	} else {
		victim->nlink--;
	}
	return 0;
}

/*
 * The inode an unlink or a replacing rename may take the last link of is
 * pinned across the transaction: whichever of that operation's vput and the
 * kernel's last FORGET comes last sees no link and no reference, and frees
 * it, once. (Checking for a vnode after the commit let a FORGET that
 * dropped the vnode in between free it too.)
 */
static int remove_entry(struct kmfs_fs *fs, uint64_t dir_ino, const char *name,
			bool want_dir)
{
	struct kmfs_inode *dir, *victim;
	struct kmfs_time now = pool_now();
	struct dir_entry de;
	struct vnode *pin = NULL;
	struct txn t;
	int rc;

	if (want_dir && (!strcmp(name, ".") || !strcmp(name, "..")))
		return fs->readonly ? -EROFS : !strcmp(name, ".") ? -EINVAL : -ENOTEMPTY;
	rc = ns_enter(fs, dir_ino, name, &dir);
	if (rc < 0)
		return rc;
	rc = dir_lookup(&fs->pool, dir, name, strlen(name), &de);
	if (rc < 0)
		goto out;
	victim = fs_inode(fs, de.ino_off);
	rc = may_remove(dir, victim);
	if (rc < 0)
		goto out;
	if (want_dir && !S_ISDIR(victim->mode))
		rc = -ENOTDIR;
	else if (!want_dir && S_ISDIR(victim->mode))
		rc = -EISDIR;
	else if (want_dir && !dir_is_empty(&fs->pool, victim))
		rc = -ENOTEMPTY;
	if (rc < 0)
		goto out;
	pin = vget(fs, de.ino_off);
	if (!pin) {
		rc = -ENOMEM;
		goto out;
	}
	txn_init(&t, &fs->pages);
	rc = txn_begin(&t);
	if (rc < 0)
		goto out;
	rc = dir_remove(&t, dir, name, strlen(name));
	if (rc == 0)
		rc = drop_link(dir, victim, now);
	if (rc == 0)
		rc = dir_touch(dir, now);
	rc = txn_end(&t, rc);
out:
	if (pin)
		vput(fs, pin); /* frees the inode if this was all that held it */
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

int fs_unlink(struct kmfs_fs *fs, uint64_t dir_ino, const char *name)
{
	return remove_entry(fs, dir_ino, name, false);
}

int fs_rmdir(struct kmfs_fs *fs, uint64_t dir_ino, const char *name)
{
	return remove_entry(fs, dir_ino, name, true);
}

/* Is directory ANCESTOR on the path from DIR up to the root? */
static bool is_ancestor(struct kmfs_fs *fs, uint64_t ancestor, uint64_t dir)
{
	uint64_t root = fs->pool.sb->root_off;

	for (unsigned depth = 0; depth < 1u << 20; depth++) {
		if (dir == ancestor)
			return true;
		if (dir == root)
			return false;
		dir = fs_inode(fs, dir)->parent_off;
	}
	return true; /* a loop: refuse */
}

/* Re-parent a moved directory (caller in txn). */
static int move_dir(struct kmfs_inode *d, struct kmfs_inode *from,
		    struct kmfs_inode *to, uint64_t to_off)
{
	int rc;

	if (from == to)
		return 0;
	rc = TXADD(d, parent_off);
	if (rc == 0)
		rc = TXADD(from, nlink);
	if (rc == 0)
		rc = TXADD(to, nlink);
	if (rc < 0)
		return rc;
	d->parent_off = to_off;
	from->nlink--;
	to->nlink++;
	return 0;
}

int fs_rename(struct kmfs_fs *fs, uint64_t dir_ino, const char *name,
	      uint64_t newdir_ino, const char *newname, unsigned flags,
	      const struct fs_cred *cr)
{
	struct kmfs_inode *dir, *ndir, *src, *dst = NULL;
	uint64_t dir_off = fs_ino_off(fs, dir_ino), ndir_off = fs_ino_off(fs, newdir_ino);
	struct kmfs_time now = pool_now();
	struct dir_entry se, de;
	struct vnode *pin = NULL;
	uint64_t wo_off;
	struct txn t;
	int rc;

	if (fs->readonly)
		return -EROFS;
	if (flags & ~(FS_RENAME_NOREPLACE | FS_RENAME_EXCHANGE | FS_RENAME_WHITEOUT))
		return -EINVAL;
	if ((flags & FS_RENAME_EXCHANGE) &&
	    (flags & (FS_RENAME_NOREPLACE | FS_RENAME_WHITEOUT)))
		return -EINVAL;
	rc = check_name(name);
	if (rc == 0)
		rc = check_name(newname);
	if (rc < 0)
		return rc;
	if (!strcmp(name, ".") || !strcmp(name, "..") ||
	    !strcmp(newname, ".") || !strcmp(newname, ".."))
		return -EINVAL;
	pthread_rwlock_wrlock(&fs->ns_lock);
	rc = get_dir(fs, dir_ino, &dir);
	if (rc == 0)
		rc = get_dir(fs, newdir_ino, &ndir);
	if (rc == 0)
		rc = dir_lookup(&fs->pool, dir, name, strlen(name), &se);
	if (rc < 0)
		goto out;
	src = fs_inode(fs, se.ino_off);
	rc = dir_lookup(&fs->pool, ndir, newname, strlen(newname), &de);
	if (rc == 0)
		dst = fs_inode(fs, de.ino_off);
	else if (rc != -ENOENT)
		goto out;
	rc = 0;
	if (flags & FS_RENAME_EXCHANGE) {
		if (!dst) {
			rc = -ENOENT;
			goto out;
		}
		if ((S_ISDIR(src->mode) && is_ancestor(fs, se.ino_off, ndir_off)) ||
		    (S_ISDIR(dst->mode) && is_ancestor(fs, de.ino_off, dir_off))) {
			rc = -EINVAL;
			goto out;
		}
	} else if (dst && (flags & FS_RENAME_NOREPLACE)) {
		rc = -EEXIST;
		goto out;
	}
	if (!(flags & FS_RENAME_EXCHANGE) && S_ISDIR(src->mode) &&
	    is_ancestor(fs, se.ino_off, ndir_off)) {
		rc = -EINVAL;
		goto out;
	}
	if (dst && !(flags & FS_RENAME_EXCHANGE) && se.ino_off == de.ino_off)
		goto out; /* both names link one inode: nothing to do */
	/* vfs_rename's may_delete and may_create, before the types: the name
	 * leaves DIR; a name it replaces leaves NDIR, else NDIR gains one */
	rc = may_remove(dir, src);
	if (rc == 0)
		rc = dst ? may_remove(ndir, dst) : may_add(fs, ndir, newname);
	if (rc < 0)
		goto out;
	if (dst && !(flags & FS_RENAME_EXCHANGE)) {
		if (S_ISDIR(src->mode) && !S_ISDIR(dst->mode))
			rc = -ENOTDIR;
		else if (!S_ISDIR(src->mode) && S_ISDIR(dst->mode))
			rc = -EISDIR;
		else if (S_ISDIR(dst->mode) && !dir_is_empty(&fs->pool, dst))
			rc = -ENOTEMPTY;
		if (rc < 0)
			goto out;
	}
	/* a directory that changes parent adds a link to its new one, as a
	 * mkdir there would, unless it replaces or is swapped for a directory */
	if (dir != ndir) {
		bool src_dir = S_ISDIR(src->mode), dst_dir = dst && S_ISDIR(dst->mode);
		if ((src_dir && !dst_dir && ndir->nlink >= LINK_MAX_COUNT) ||
		    ((flags & FS_RENAME_EXCHANGE) && dst_dir && !src_dir &&
		     dir->nlink >= LINK_MAX_COUNT)) {
			rc = -EMLINK;
			goto out;
		}
	}
	if (dst && !(flags & FS_RENAME_EXCHANGE)) {
		pin = vget(fs, de.ino_off); /* the replaced inode: see remove_entry */
		if (!pin) {
			rc = -ENOMEM;
			goto out;
		}
	}
	txn_init(&t, &fs->pages);
	rc = txn_begin(&t);
	if (rc < 0)
		goto out;
	if (flags & FS_RENAME_EXCHANGE) {
		rc = dir_retarget(&t, dir, name, strlen(name), de.ino_off, de.type);
		if (rc == 0)
			rc = dir_retarget(&t, ndir, newname, strlen(newname),
					  se.ino_off, se.type);
		if (rc == 0 && S_ISDIR(src->mode))
			rc = move_dir(src, dir, ndir, ndir_off);
		if (rc == 0 && S_ISDIR(dst->mode))
			rc = move_dir(dst, ndir, dir, dir_off);
		if (rc == 0)
			rc = TXADD(dst, ctime);
		if (rc == 0)
			dst->ctime = now;
	} else {
		if (dst) {
			rc = dir_retarget(&t, ndir, newname, strlen(newname),
					  se.ino_off, se.type);
			if (rc == 0)
				rc = drop_link(ndir, dst, now);
		} else {
			rc = dir_add(&t, ndir, newname, strlen(newname),
				     se.ino_off, se.type);
		}
		/* the old name goes, or names a whiteout (for overlayfs) */
		if (rc == 0 && (flags & FS_RENAME_WHITEOUT)) {
			rc = new_inode(fs, &t, dir, S_IFCHR, makedev(0, 0), cr, now, &wo_off);
			if (rc == 0)
				rc = dir_retarget(&t, dir, name, strlen(name), wo_off,
						  dtype(S_IFCHR));
		} else if (rc == 0) {
			rc = dir_remove(&t, dir, name, strlen(name));
		}
		if (rc == 0 && S_ISDIR(src->mode))
			rc = move_dir(src, dir, ndir, ndir_off);
	}
	if (rc == 0)
		rc = TXADD(src, ctime);
	if (rc == 0) {
		src->ctime = now;
		rc = dir_touch(dir, now);
	}
	if (rc == 0 && ndir != dir)
		rc = dir_touch(ndir, now);
	rc = txn_end(&t, rc);
	if (rc == 0 && (flags & FS_RENAME_WHITEOUT)) {
		atomic_fetch_add(&fs->nr_inodes, 1);
		tag_inode(fs, wo_off);
	}
out:
	if (pin)
		vput(fs, pin);
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

/*
 * relatime, as Linux mounts by default: the access time moves when it is
 * older than the last change or a day old, so reads rarely write. Reads of
 * files, directories and symlinks move it, as the kernel leaves it to us.
 */
static bool time_after(struct kmfs_time a, struct kmfs_time b)
{
	return a.sec > b.sec || (a.sec == b.sec && a.nsec > b.nsec);
}

/* Returns whether it moved the time. */
static bool touch_atime(struct kmfs_fs *fs, struct kmfs_inode *ino)
{
	struct kmfs_time now = pool_now();
	struct txn t;
	bool fresh;
	int rc;

	if (fs->readonly || (ino->attr_flags & KMFS_AF_NOATIME))
		return false;
	/* readers of one file share its vnode lock, and overwrites store the
	 * other times under it: the stripe orders all of them */
	pthread_mutex_lock(fs_times_lock(fs, ino));
	/* no subtraction from a time read from the pool, which may be any
	 * int64 (utimensat sets what the caller asks) */
	fresh = time_after(ino->atime, ino->mtime) &&
		time_after(ino->atime, ino->ctime) &&
		ino->atime.sec > now.sec - 24 * 3600;
	pthread_mutex_unlock(fs_times_lock(fs, ino));
	if (fresh)
		return false;
	txn_init(&t, &fs->pages);
	if (txn_begin(&t) < 0)
		return false;
	rc = TXADD(ino, atime);
	if (rc == 0) {
		pthread_mutex_lock(fs_times_lock(fs, ino));
		ino->atime = now;
		pthread_mutex_unlock(fs_times_lock(fs, ino));
	}
	return txn_end(&t, rc) == 0;
}

bool fs_accessed(struct kmfs_fs *fs, uint64_t ino_nr)
{
	bool moved;

	if (fs->noatime)
		return false;
	pthread_rwlock_rdlock(&fs->ns_lock);
	moved = touch_atime(fs, ino_ptr(fs, ino_nr));
	pthread_rwlock_unlock(&fs->ns_lock);
	return moved;
}

int fs_readlink(struct kmfs_fs *fs, uint64_t ino_nr, char *buf, size_t size)
{
	struct kmfs_inode *ino = ino_ptr(fs, ino_nr);
	size_t len;

	pthread_rwlock_rdlock(&fs->ns_lock);
	if (!S_ISLNK(ino->mode)) {
		pthread_rwlock_unlock(&fs->ns_lock);
		return -EINVAL;
	}
	len = ino->size < size - 1 ? ino->size : size - 1;
	memcpy(buf, pool_ptr(&fs->pool, ino->data_off), len);
	buf[len] = '\0';
	if (!fs->noatime)
		touch_atime(fs, ino);
	pthread_rwlock_unlock(&fs->ns_lock);
	return 0;
}

/* ---- open files and data ------------------------------------------------- */

int fs_open(struct kmfs_fs *fs, uint64_t ino, int flags)
{
	struct kmfs_inode *node = ino_ptr(fs, ino);
	struct vnode *v;

	bool writes = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);

	if (fs->readonly && writes)
		return -EROFS;
	/* may_open: append-only takes writers with O_APPEND, and no O_TRUNC */
	pthread_rwlock_rdlock(&fs->ns_lock);
	int locked = (immutable(node) && writes) ||
		     (append_only(node) && writes &&
		      (!(flags & O_APPEND) || (flags & O_TRUNC)));
	pthread_rwlock_unlock(&fs->ns_lock);
	if (locked)
		return -EPERM;
	/* the kernel hands O_TRUNC to open (atomic_o_trunc); an empty file is
	 * truncated too, as POSIX updates mtime and ctime either way */
	if ((flags & O_TRUNC) && S_ISREG(inode_mode(node))) {
		struct stat a = { .st_size = 0 }, out;
		int rc = fs_setattr(fs, ino, &a, FS_SET_SIZE | FS_SET_MTIME_NOW, &out);
		if (rc < 0)
			return rc;
	}
	v = vget(fs, fs_ino_off(fs, ino));
	if (!v)
		return -ENOMEM;
	pthread_mutex_lock(&fs->vlock);
	v->nopen++;
	v->busy--;
	pthread_mutex_unlock(&fs->vlock);
	return 0;
}

void fs_release(struct kmfs_fs *fs, uint64_t ino)
{
	struct vnode *v = vget(fs, fs_ino_off(fs, ino));

	if (v)
		vput_counts(fs, v, 0, 1, 1);
}

int fs_read_atime(struct kmfs_fs *fs, uint64_t ino_nr, uint64_t off, size_t size,
		  data_reply_fn reply, void *arg, bool atime)
{
	uint64_t ioff = fs_ino_off(fs, ino_nr);
	struct vnode *v = vget(fs, ioff);
	int rc;

	if (!v)
		return -ENOMEM;
	pthread_rwlock_rdlock(&fs->ns_lock);
	pthread_rwlock_rdlock(&v->lock);
	/* before the reply: the kernel drops its cached atime when the read
	 * returns, and a GETATTR then must find the new one */
	if (atime && !fs->noatime)
		touch_atime(fs, fs_inode(fs, ioff));
	rc = data_read(fs, fs_inode(fs, ioff), off, size, reply, arg);
	pthread_rwlock_unlock(&v->lock);
	pthread_rwlock_unlock(&fs->ns_lock);
	vput(fs, v);
	return rc;
}

int fs_read(struct kmfs_fs *fs, uint64_t ino_nr, uint64_t off, size_t size,
	    data_reply_fn reply, void *arg)
{
	return fs_read_atime(fs, ino_nr, off, size, reply, arg, true);
}

static ssize_t write_once(struct kmfs_fs *fs, uint64_t ino_nr, uint64_t off,
			  size_t size, const struct data_src *src, bool append,
			  bool take_back)
{
	uint64_t ioff = fs_ino_off(fs, ino_nr);
	bool append_only_file;
	struct vnode *v;
	ssize_t rc;

	if (fs->readonly)
		return -EROFS;
	v = vget(fs, ioff);
	if (!v)
		return -ENOMEM;
	pthread_rwlock_rdlock(&fs->ns_lock);
	struct kmfs_inode *ino = fs_inode(fs, ioff);
	/* an append-only file's size is read under the exclusive lock, where
	 * no other write moves it */
	append_only_file = append_only(ino);
	/* overwrites in place share the inode lock with each other and reads */
	rc = may_change_data(ino, false);
	if (rc == 0)
		rc = -EAGAIN;
	if (rc == -EAGAIN && !append && !append_only_file) {
		pthread_rwlock_rdlock(&v->lock);
		rc = data_overwrite(fs, ino, off, size, src);
		pthread_rwlock_unlock(&v->lock);
	}
	if (rc == -EAGAIN) {
		pthread_rwlock_wrlock(&v->lock);
		if (append)
			off = ino->size;
		/* no byte an append-only file holds changes, even through a
		 * descriptor whose O_APPEND was taken off */
		rc = append_only_file && off < ino->size ? -EPERM
			: data_write(fs, ino, off, size, src, take_back);
		pthread_rwlock_unlock(&v->lock);
	}
	pthread_rwlock_unlock(&fs->ns_lock);
	vput(fs, v);
	return rc;
}

ssize_t fs_write(struct kmfs_fs *fs, uint64_t ino_nr, uint64_t off, size_t size,
		 const struct data_src *src, bool append)
{
	unsigned round = 0;
	bool take_back = true;
	ssize_t rc;

	/* as again_after_reclaim, but when the kernel or host keeps its
	 * units, the last run stores what the free pages hold (a short write,
	 * as on a full filesystem) instead of failing whole */
	while ((rc = write_once(fs, ino_nr, off, size, src, append,
				take_back)) == -PAGES_ERECLAIM)
		if (pages_take_back(&fs->pages, round++) < 0)
			take_back = false;
	if (round)
		pages_take_back_done(&fs->pages);
	return rc;
}

static int fallocate_once(struct kmfs_fs *fs, uint64_t ino_nr, int mode,
			  uint64_t off, uint64_t len)
{
	uint64_t ioff = fs_ino_off(fs, ino_nr);
	struct kmfs_inode *ino = fs_inode(fs, ioff);
	struct vnode *v;
	int rc;

	if (fs->readonly)
		return -EROFS;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;
	if (len == 0) /* as the VFS, which sends none */
		return -EINVAL;
	/* as the VFS: a punch keeps the size, and is no zeroing */
	if ((mode & FALLOC_FL_PUNCH_HOLE) &&
	    (mode & ~FALLOC_FL_PUNCH_HOLE) != FALLOC_FL_KEEP_SIZE)
		return -EOPNOTSUPP;
	mode_t type = inode_mode(ino) & S_IFMT;
	if (type != S_IFREG)
		return type == S_IFDIR ? -EISDIR : -ENODEV;
	v = vget(fs, ioff);
	if (!v)
		return -ENOMEM;
	pthread_rwlock_rdlock(&fs->ns_lock);
	pthread_rwlock_wrlock(&v->lock);
	/* append-only files take only an allocation */
	rc = may_change_data(ino, mode & ~FALLOC_FL_KEEP_SIZE);
	if (rc == 0) {
		if (mode & FALLOC_FL_PUNCH_HOLE)
			rc = data_punch(fs, ino, off, len);
		else if (mode & FALLOC_FL_ZERO_RANGE)
			rc = data_zero_range(fs, ino, off, len,
					     mode & FALLOC_FL_KEEP_SIZE);
		else
			rc = data_allocate(fs, ino, off, len,
					   mode & FALLOC_FL_KEEP_SIZE);
	}
	pthread_rwlock_unlock(&v->lock);
	pthread_rwlock_unlock(&fs->ns_lock);
	vput(fs, v);
	return rc;
}

int fs_fallocate(struct kmfs_fs *fs, uint64_t ino_nr, int mode, uint64_t off,
		 uint64_t len)
{
	unsigned round = 0;
	ssize_t rc;

	do
		rc = fallocate_once(fs, ino_nr, mode, off, len);
	while (again_after_reclaim(fs, &rc, &round));
	return (int)rc;
}

int64_t fs_lseek(struct kmfs_fs *fs, uint64_t ino_nr, int64_t off, int whence)
{
	uint64_t ioff = fs_ino_off(fs, ino_nr);
	struct vnode *v = vget(fs, ioff);
	int64_t rc;

	if (!v)
		return -ENOMEM;
	pthread_rwlock_rdlock(&fs->ns_lock);
	pthread_rwlock_rdlock(&v->lock);
	rc = data_seek(fs, fs_inode(fs, ioff), off, whence);
	pthread_rwlock_unlock(&v->lock);
	pthread_rwlock_unlock(&fs->ns_lock);
	vput(fs, v);
	return rc;
}

/* ---- directories ---------------------------------------------------------- */

struct readdir_ctx {
	struct kmfs_fs *fs;
	fs_dirent_fn fn;         /* readdir */
	fs_direntplus_fn plus;   /* readdirplus */
	void *arg;
	int error;               /* readdirplus: why the walk stopped early */
};

static int readdir_one(void *arg, const struct dir_entry *e)
{
	struct readdir_ctx *c = arg;
	return c->fn(c->arg, e->name, e->namelen, fs_ino(c->fs, e->ino_off),
		     e->type, e->cookie);
}

/*
 * An entry with its attributes, read under the inode's lock as GETATTR
 * reads them; it gains a lookup only if the callback took it. An inode
 * the kernel knows already (it holds lookups) goes as a bare entry: sent
 * whole, the kernel would drop its cached ACLs and ask for them again,
 * which makes a second `ls -l` twice the requests.
 */
static int readdirplus_one(void *arg, const struct dir_entry *e)
{
	struct readdir_ctx *c = arg;
	struct vnode *v = vget(c->fs, e->ino_off);
	struct stat st = { .st_ino = fs_ino(c->fs, e->ino_off),
			   .st_mode = DTTOIF(e->type) };
	bool known;
	int full;

	if (!v) {
		c->error = -ENOMEM;
		return 1;
	}
	pthread_mutex_lock(&c->fs->vlock);
	known = v->nlookup > 0;
	pthread_mutex_unlock(&c->fs->vlock);
	if (!known) {
		pthread_rwlock_rdlock(&v->lock);
		fs_stat(c->fs, e->ino_off, &st);
		pthread_rwlock_unlock(&v->lock);
	}
	full = c->plus(c->arg, e->name, e->namelen, &st, !known, e->cookie);
	if (!full && !known) {
		pthread_mutex_lock(&c->fs->vlock);
		v->nlookup++;
		pthread_mutex_unlock(&c->fs->vlock);
	}
	vput(c->fs, v);
	return full;
}

/* "." and "..": no lookup (the kernel takes none for them), so bare */
static int readdir_dot(struct readdir_ctx *c, const char *name, uint64_t off,
		       uint64_t next)
{
	struct stat st = { .st_ino = fs_ino(c->fs, off), .st_mode = S_IFDIR };

	if (c->plus)
		return c->plus(c->arg, name, strlen(name), &st, false, next);
	return c->fn(c->arg, name, strlen(name), st.st_ino, DT_DIR, next);
}

static int readdir_walk(struct kmfs_fs *fs, uint64_t ino, uint64_t off,
			struct readdir_ctx *c)
{
	struct kmfs_inode *dir;
	int rc;

	pthread_rwlock_rdlock(&fs->ns_lock);
	rc = get_dir(fs, ino, &dir);
	if (rc < 0)
		goto out;
	if (off < 1 && readdir_dot(c, ".", fs_ino_off(fs, ino), 1))
		goto out;
	if (off < 2 && readdir_dot(c, "..", dir->parent_off, 2))
		goto out;
	dir_iter(&fs->pool, dir, off < 2 ? 2 : off,
		 c->plus ? readdirplus_one : readdir_one, c);
	if (!fs->noatime && !fs->nodiratime)
		touch_atime(fs, dir);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc < 0 ? rc : c->error;
}

int fs_readdir(struct kmfs_fs *fs, uint64_t ino, uint64_t off,
	       fs_dirent_fn fn, void *arg)
{
	struct readdir_ctx c = { .fs = fs, .fn = fn, .arg = arg };

	return readdir_walk(fs, ino, off, &c);
}

int fs_readdirplus(struct kmfs_fs *fs, uint64_t ino, uint64_t off,
		   fs_direntplus_fn fn, void *arg)
{
	struct readdir_ctx c = { .fs = fs, .plus = fn, .arg = arg };

	return readdir_walk(fs, ino, off, &c);
}

int fs_statfs(struct kmfs_fs *fs, struct statvfs *st)
{
	struct pages_stats ps;
	uint64_t meta_free = pool_meta_free(&fs->pool);

	pages_stats(&fs->pages, &ps);
	memset(st, 0, sizeof(*st));
	st->f_bsize = KMFS_PAGE_SIZE;
	st->f_frsize = KMFS_PAGE_SIZE;
	st->f_blocks = ps.total_pages;
	st->f_bfree = ps.free_pages + ps.lent_pages;
	st->f_bavail = st->f_bfree;
	/* used: the inodes there are; free: what the metadata left would
	 * hold at about 512 bytes an inode with its entry and maps (empty
	 * files take about 300, large directories and extent maps more);
	 * none once a create found no room */
	st->f_ffree = meta_free / 512;
	st->f_files = atomic_load(&fs->nr_inodes) + st->f_ffree;
	st->f_favail = st->f_ffree;
	st->f_namemax = KMFS_NAME_MAX;
	return 0;
}

/* ---- extended attributes ---------------------------------------------------- */

int fs_setxattr(struct kmfs_fs *fs, uint64_t ino_nr, const char *name,
		const void *value, size_t size, int flags)
{
	struct kmfs_inode *ino = ino_ptr(fs, ino_nr);
	bool kill_sgid = flags & FS_XATTR_KILL_SGID;
	struct txn t;
	int rc = xattr_check_name(name);

	if (rc < 0)
		return rc;
	if (fs->readonly)
		return -EROFS;
	flags &= ~FS_XATTR_KILL_SGID;
	pthread_rwlock_wrlock(&fs->ns_lock);
	txn_init(&t, &fs->pages);
	/* xattr_permission's refusal, but for the removal of
	 * security.capability from an append-only file: the kernel removes it
	 * before any write (cap_inode_killpriv), and that reaches us as the
	 * same REMOVEXATTR a caller sends, which only a privileged one may */
	rc = !value && !strcmp(name, "security.capability")
		? may_change_data(ino, false) : attrs_locked(ino);
	if (rc == 0)
		rc = txn_begin(&t);
	if (rc == 0) {
		if (acl_is_acl_name(name))
			rc = acl_set(&t, ino, name, value, size, flags, kill_sgid);
		else
			rc = xattr_set(&t, ino, name, value, size, flags);
		if (rc == 0)
			rc = TXADD(ino, ctime);
		if (rc == 0)
			ino->ctime = pool_now();
		rc = txn_end(&t, rc);
	}
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

ssize_t fs_getxattr(struct kmfs_fs *fs, uint64_t ino, const char *name,
		    void *value, size_t size)
{
	/* a name no namespace takes is refused as the kernel's handlers do */
	ssize_t rc = xattr_check_name(name);

	if (rc < 0)
		return rc;
	pthread_rwlock_rdlock(&fs->ns_lock);
	rc = xattr_get(&fs->pool, ino_ptr(fs, ino), name, value, size);
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

ssize_t fs_listxattr(struct kmfs_fs *fs, uint64_t ino, char *list, size_t size,
		     bool (*trusted)(void *arg), void *arg)
{
	ssize_t rc;

	pthread_rwlock_rdlock(&fs->ns_lock);
	rc = xattr_list(&fs->pool, ino_ptr(fs, ino), list, size, trusted, arg);
	pthread_rwlock_unlock(&fs->ns_lock);
	return rc;
}

int fs_removexattr(struct kmfs_fs *fs, uint64_t ino_nr, const char *name)
{
	int rc = xattr_check_name(name);

	if (rc < 0)
		return rc;
	return fs_setxattr(fs, ino_nr, name, NULL, 0, 0);
}

/* ---- clones ------------------------------------------------------------ */

static ssize_t clone_once(struct kmfs_fs *fs, uint64_t src_ino, uint64_t soff,
			  uint64_t dst_ino, uint64_t doff, uint64_t len,
			  bool must_share)
{
	uint64_t so = fs_ino_off(fs, src_ino), dof = fs_ino_off(fs, dst_ino);
	struct kmfs_inode *src = fs_inode(fs, so), *dst = fs_inode(fs, dof);
	struct vnode *vs, *vd;
	ssize_t rc;

	if (fs->readonly)
		return -EROFS;
	vs = vget(fs, so);
	vd = vget(fs, dof);
	if (!vs || !vd) {
		if (vs)
			vput(fs, vs);
		if (vd)
			vput(fs, vd);
		return -ENOMEM;
	}
	pthread_rwlock_rdlock(&fs->ns_lock);
	/* two inode locks, lower offset first; the source's exclusive too, or
	 * an overwrite in place (data_overwrite) could change a page the clone
	 * has just come to share */
	if (so == dof) {
		pthread_rwlock_wrlock(&vd->lock);
	} else if (so < dof) {
		pthread_rwlock_wrlock(&vs->lock);
		pthread_rwlock_wrlock(&vd->lock);
	} else {
		pthread_rwlock_wrlock(&vd->lock);
		pthread_rwlock_wrlock(&vs->lock);
	}
	/* the modes only under the namespace lock: chmod rewrites the word */
	if (S_ISDIR(src->mode) || S_ISDIR(dst->mode))
		rc = -EISDIR;
	else if (!S_ISREG(src->mode) || !S_ISREG(dst->mode))
		rc = -EINVAL;
	else
		rc = may_change_data(dst, true); /* its bytes would change in place */
	if (rc == 0)
		rc = data_clone(fs, src, soff, dst, doff, len, must_share);
	pthread_rwlock_unlock(&vd->lock);
	if (so != dof)
		pthread_rwlock_unlock(&vs->lock);
	pthread_rwlock_unlock(&fs->ns_lock);
	vput(fs, vs);
	vput(fs, vd);
	return rc;
}

/* a clone that stops short for a lent unit reports what it did; one that
 * did nothing runs again */
ssize_t fs_clone(struct kmfs_fs *fs, uint64_t src_ino, uint64_t soff,
		 uint64_t dst_ino, uint64_t doff, uint64_t len, bool must_share)
{
	unsigned round = 0;
	ssize_t rc;

	do
		rc = clone_once(fs, src_ino, soff, dst_ino, doff, len, must_share);
	while (again_after_reclaim(fs, &rc, &round));
	return rc;
}
