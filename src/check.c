// SPDX-License-Identifier: BSD-3-Clause
/*
 * check.c -- the consistency checker.
 *
 * Pass 1 lists every pmemobj object (type, size) so that no reference is
 * followed before it is known to name an object of the right type and
 * size. Pass 2 walks the tree from the root, checking each directory's
 * list and table, each file's extent map and each xattr set, and counts
 * links and page references. Pass 3 compares the counts with what the
 * pool records, and frees objects nothing refers to.
 *
 * Repair (fsck -y) first mends structure, each mend one transaction: a
 * broken extent map or xattr set is dropped, a broken directory is built
 * again from the entries before the damage, and an inode no directory
 * names goes to /lost+found. The check then runs again on the mended
 * pool, and only a pass that mended nothing fixes counts and frees
 * unreferenced objects, so those are computed from the final structure.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libpmemobj.h>

#include "check.h"
#include "dir.h"
#include "log.h"
#include "pages.h"
#include "pool.h"
#include "txn.h"

struct obj {
	uint64_t off;
	uint64_t size;
	uint32_t type;
	uint32_t refs;   /* references found to it */
	uint32_t links;  /* inodes: directory entries naming it */
	uint32_t subdirs;/* dir inodes: child directories */
	uint64_t parent; /* dir inodes: directory that names it */
	bool reached;
	bool cut;        /* dir inodes: top of a subtree the root does not reach */
	uint32_t holders;/* inodes whose data_off names it */
};

/* directories given a new table by repairs, to see their (current)
 * tables in the next pass's list */
struct made {
	uint64_t *off;
	size_t n, cap;
};

struct checker {
	struct kmfs_pool *p;
	const struct check_opts *o;
	struct check_result *r;
	struct obj *objs;
	size_t nobjs;
	uint32_t *counts; /* page references found */
	uint64_t *queue;  /* directories to visit */
	size_t qhead, qtail, qcap;
	struct pages *pg; /* repair: for transactions */
	struct made *made;/* repair: objects allocated by earlier passes */
	bool mended;      /* repair: structure changed in this pass */
	bool unmended;    /* repair: a needed mend could not be made */
	bool dir_damage;  /* a directory failed its check in this pass */
};

static void report(struct checker *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void report(struct checker *c, const char *fmt, ...)
{
	va_list ap;

	c->r->errors++;
	if (c->r->errors == 1) {
		va_start(ap, fmt);
		vsnprintf(c->r->first, sizeof(c->r->first), fmt, ap);
		va_end(ap);
	}
	if (c->o->quiet)
		return;
	if (!c->o->verbose && c->r->errors > c->o->max_print) {
		if (c->r->errors == c->o->max_print + 1) {
			log_progress_clear();
			fprintf(stderr, "  ... (more errors not shown)\n");
		}
		return;
	}
	log_progress_clear();
	fprintf(stderr, "  ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * The array V of *CAP elements of ELEM bytes, with room for element N:
 * V itself, or V doubled (FIRST elements to begin with); NULL when out of
 * memory, V then still valid.
 */
static void *grow(void *v, size_t *cap, size_t n, size_t elem, size_t first)
{
	size_t want = *cap ? *cap * 2 : first;
	void *nv;

	if (n < *cap)
		return v;
	nv = realloc(v, want * elem);
	if (nv)
		*cap = want;
	return nv;
}

/* What a repair did, said after the finding it mends (not counted). */
static void note(struct checker *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note(struct checker *c, const char *fmt, ...)
{
	va_list ap;

	if (c->o->quiet || (!c->o->verbose && c->r->errors > c->o->max_print))
		return;
	log_progress_clear();
	fprintf(stderr, "    -> ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- structural repairs (fsck -y): one transaction each -------------------- */

/*
 * A mend that was needed and not made: what this pass did not reach must
 * not be taken for garbage, so no leak is freed and no count lowered.
 */
static void mend_failed(struct checker *c, int rc)
{
	c->unmended = true;
	note(c, "could not mend it: %s", strerror(-rc));
}

static bool mend_begin(struct checker *c, struct txn *t)
{
	int rc;

	if (!c->o->repair)
		return false;
	txn_init(t, c->pg);
	rc = txn_begin(t);
	if (rc < 0)
		mend_failed(c, rc);
	return rc == 0;
}

static bool mend_end(struct checker *c, struct txn *t, int rc)
{
	rc = txn_end(t, rc);
	if (rc == 0)
		c->mended = true;
	else
		mend_failed(c, rc);
	return rc == 0;
}

/*
 * A file whose extent map is broken keeps its name and attributes, no
 * data. A symlink whose target is lost cannot be mended: it is also
 * UNLINKed (as e2fsck clears it), its names go in the next pass, and the
 * next mount frees it.
 */
static void drop_data(struct checker *c, uint64_t off, struct kmfs_inode *ino,
		      bool unlink)
{
	struct txn t;
	int rc;

	if (!mend_begin(c, &t))
		return;
	rc = tx_add(ino, sizeof(*ino));
	if (rc == 0) {
		ino->data_off = 0;
		ino->size = 0;
		ino->blocks = 0;
		if (unlink)
			ino->nlink = 0;
	}
	if (mend_end(c, &t, rc))
		note(c, unlink ? "inode %#llx: symlink cleared; its names are removed" :
		     S_ISREG(ino->mode) ? "inode %#llx: extent map dropped, the file is now empty" :
		     "inode %#llx: data pointer cleared",
		     (unsigned long long)off);
}

static void drop_xattrs(struct checker *c, uint64_t ioff, struct kmfs_inode *ino)
{
	struct txn t;
	int rc;

	if (!mend_begin(c, &t))
		return;
	rc = TXADD(ino, xattr_off);
	if (rc == 0)
		ino->xattr_off = 0;
	if (mend_end(c, &t, rc))
		note(c, "inode %#llx: extended attributes and ACLs dropped",
		     (unsigned long long)ioff);
}

/* Only fsck leaves a symlink with no target and no links (drop_data). */
static bool symlink_cleared(const struct kmfs_inode *ino)
{
	return S_ISLNK(ino->mode) && !ino->nlink && !ino->data_off;
}

/* an entry of a damaged directory that is fit to keep */
struct kept {
	const char *name; /* in the old entry, which stays until freed */
	uint16_t len;
	uint8_t type;
	uint64_t ino_off;
};

/* A new table for directory DOFF holding the N entries in KEEP. */
static void rebuild_dir(struct checker *c, uint64_t doff, struct kmfs_inode *dir,
			const struct kept *keep, size_t n)
{
	struct txn t;
	int rc;

	if (!mend_begin(c, &t))
		return;
	/* the old table and entries are left to the leak pass */
	rc = TXADD(dir, data_off);
	if (rc == 0)
		rc = dir_init(&t, dir);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = dir_add_kept(&t, dir, keep[i].name, keep[i].len,
				  keep[i].ino_off, keep[i].type);
		if (rc == -EEXIST)
			rc = 0; /* a name listed twice: once is enough */
	}
	if (!mend_end(c, &t, rc))
		return;
	note(c, "directory %#llx: rebuilt with the %zu sound entr%s before the "
	     "damage; inodes named after it go to /lost+found",
	     (unsigned long long)doff, n, n == 1 ? "y" : "ies");
	struct made *m = c->made;
	uint64_t *v = grow(m->off, &m->cap, m->n, sizeof(*v), 16);
	if (!v)
		return; /* only a check the less */
	m->off = v;
	m->off[m->n++] = doff;
}

static bool known_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR: case S_IFBLK:
	case S_IFIFO: case S_IFSOCK:
		return true;
	}
	return false;
}

#define LOST_FOUND "lost+found"

/* /lost+found, made when missing; 0 if the name is taken by a non-directory */
static uint64_t lost_found(struct checker *c, struct txn *t)
{
	struct kmfs_pool *p = c->p;
	struct kmfs_super *sb = p->sb;
	struct kmfs_inode *root = pool_ptr(p, sb->root_off), *lf;
	struct kmfs_time now = pool_now();
	struct dir_entry de;
	uint64_t off;

	char name[32] = LOST_FOUND;

	/* a name taken by something else: lost+found.1, .2, ... */
	for (int i = 1; dir_lookup(p, root, name, strlen(name), &de) == 0; i++) {
		if (de.type == DT_DIR)
			return de.ino_off;
		if (i > 99)
			return 0;
		snprintf(name, sizeof(name), "%s.%d", LOST_FOUND, i);
	}
	off = tx_alloc(sizeof(*lf), KMFS_T_INODE, true);
	if (!off || TXADD(sb, next_generation) < 0 || TXADD(root, nlink) < 0)
		return 0;
	lf = pool_ptr(p, off);
	lf->mode = S_IFDIR | 0700;
	lf->nlink = 2;
	lf->parent_off = sb->root_off;
	lf->atime = lf->mtime = lf->ctime = lf->btime = now;
	lf->generation = sb->next_generation++;
	/* its handle tag comes at the next writable mount (fs.c, tag_inode) */
	if (dir_init(t, lf) < 0 || dir_add(t, root, name, strlen(name), off, DT_DIR) < 0)
		return 0;
	root->nlink++;
	return off;
}

/* Name inode OFF in /lost+found as "#<inode number>", as e2fsck does. */
static void reconnect(struct checker *c, uint64_t off, struct kmfs_inode *ino)
{
	struct txn t;
	char name[64];
	uint64_t lf_off;
	int rc = -ENOSPC;

	/* dir_lookup and dir_add trust the tables they are given; an entry
	 * needs a type */
	if (c->dir_damage || !known_type(ino->mode)) {
		c->unmended = true;
		return;
	}
	if (!mend_begin(c, &t))
		return;
	lf_off = lost_found(c, &t);
	if (lf_off) {
		struct kmfs_inode *lf = pool_ptr(c->p, lf_off);
		snprintf(name, sizeof(name), "#%llu", (unsigned long long)off);
		rc = dir_add_kept(&t, lf, name, strlen(name), off, IFTODT(ino->mode));
		if (rc == 0 && S_ISDIR(ino->mode)) {
			rc = TXADD(ino, parent_off);
			if (rc == 0)
				rc = TXADD(lf, nlink);
			if (rc == 0) {
				ino->parent_off = lf_off;
				lf->nlink++;
			}
		}
	}
	if (mend_end(c, &t, rc))
		note(c, "inode %#llx: named %s in /%s", (unsigned long long)off, name,
		     LOST_FOUND);
}

static int cmp_obj(const void *a, const void *b)
{
	const struct obj *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int collect(struct checker *c)
{
	size_t cap = 0;
	PMEMoid oid;

	for (oid = pmemobj_first(c->p->pop); !OID_IS_NULL(oid);
	     oid = pmemobj_next(oid)) {
		struct obj *v = grow(c->objs, &cap, c->nobjs, sizeof(*v), 1024);
		if (!v)
			return -ENOMEM;
		c->objs = v;
		struct obj *o = &c->objs[c->nobjs++];
		memset(o, 0, sizeof(*o));
		o->off = oid.off;
		o->type = (uint32_t)pmemobj_type_num(oid);
		o->size = pmemobj_alloc_usable_size(oid);
		log_progress("listing objects", c->nobjs, 0);
	}
	qsort(c->objs, c->nobjs, sizeof(*c->objs), cmp_obj);
	c->r->objects = c->nobjs;
	return 0;
}

/* The object at OFF, of whatever type, or NULL. */
static struct obj *obj_find(struct checker *c, uint64_t off)
{
	size_t lo = 0, hi = c->nobjs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->objs[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->nobjs && c->objs[lo].off == off ? &c->objs[lo] : NULL;
}

/* The object at OFF if it has TYPE and at least SIZE bytes, else NULL. */
static struct obj *obj_get(struct checker *c, uint64_t off, uint32_t type,
			   uint64_t size)
{
	struct obj *o = obj_find(c, off);

	return o && o->type == type && o->size >= size ? o : NULL;
}

/*
 * An inode whose file type bits are damaged gets back the type of what it
 * holds: an extent map, a directory table, a symlink target; with nothing,
 * an empty regular file (a device node or FIFO becomes one).
 */
/* The file type that what INO holds says (0: it holds nothing, or nothing
 * that tells, or what another inode names too: a stale pointer, not a
 * flipped type bit). */
static uint32_t held_type(struct checker *c, const struct kmfs_inode *ino)
{
	struct obj *d = ino->data_off ? obj_find(c, ino->data_off) : NULL;

	return !d || d->holders != 1 ? 0 :
	       d->type == KMFS_T_EMAP_INDEX ? S_IFREG :
	       d->type == KMFS_T_DIRTABLE ? S_IFDIR :
	       d->type == KMFS_T_SYMLINK ? S_IFLNK : 0;
}

static void restore_type(struct checker *c, uint64_t off, struct kmfs_inode *ino)
{
	uint32_t fmt = !ino->data_off ? S_IFREG : held_type(c, ino);
	struct txn t;
	int rc;

	if (!fmt) {
		c->unmended = c->o->repair;
		return;
	}
	if (!mend_begin(c, &t))
		return;
	rc = TXADD(ino, mode);
	if (rc == 0)
		ino->mode = fmt | (ino->mode & 07777);
	if (mend_end(c, &t, rc))
		note(c, "inode %#llx: file type restored as %s, from what it holds",
		     (unsigned long long)off, fmt == S_IFREG ? "a regular file" :
		     fmt == S_IFDIR ? "a directory" : "a symlink");
}

/* Claim a reference to an object; a second claim is a shared object. */
static struct obj *obj_ref(struct checker *c, uint64_t off, uint32_t type,
			   uint64_t size, const char *what, uint64_t owner)
{
	struct obj *o = obj_get(c, off, type, size);

	if (!o) {
		report(c, "inode %#llx: %s points to %#llx, not a valid object",
		       (unsigned long long)owner, what, (unsigned long long)off);
		return NULL;
	}
	if (o->refs++ && type != KMFS_T_INODE) {
		report(c, "inode %#llx: %s %#llx is also used elsewhere",
		       (unsigned long long)owner, what, (unsigned long long)off);
		return NULL;
	}
	return o;
}

static bool in_one_arena(const struct kmfs_pool *p, uint64_t a, uint64_t n)
{
	const struct kmfs_super *sb = p->sb;

	for (uint32_t i = 0; i < sb->narenas; i++) {
		uint64_t f = sb->arenas[i].first_page;
		uint64_t e = f + sb->arenas[i].nunits * KMFS_UNIT_PAGES;
		if (a >= f && a < e)
			return n <= e - a;
	}
	return false;
}

/* Is file IOFF's extent map sound? Counts its pages, sets *BLOCKS and
 * *END (the file page after the last mapped one). */
static bool map_ok(struct checker *c, uint64_t ioff, struct kmfs_inode *ino,
		   uint64_t *blocks, uint64_t *end)
{
	const struct kmfs_pool *p = c->p;
	const uint32_t known = pool_has_unwritten(p) ? KMFS_EXT_KNOWN : 0;
	struct kmfs_emap_index *idx;
	uint64_t last_end = 0;

	if (!ino->data_off)
		return true;
	if (!obj_ref(c, ino->data_off, KMFS_T_EMAP_INDEX,
		     sizeof(struct kmfs_emap_index), "extent index", ioff))
		return false;
	idx = pool_ptr(p, ino->data_off);
	if (idx->nleaves == 0 || idx->nleaves > idx->cap ||
	    !obj_get(c, ino->data_off, KMFS_T_EMAP_INDEX,
		     sizeof(*idx) + (uint64_t)idx->cap * sizeof(idx->ent[0]))) {
		report(c, "inode %#llx: extent index has %u leaves of %u",
		       (unsigned long long)ioff, idx->nleaves, idx->cap);
		return false;
	}
	for (uint32_t li = 0; li < idx->nleaves; li++) {
		uint64_t key = idx->ent[li].key;
		uint64_t next = li + 1 < idx->nleaves ? idx->ent[li + 1].key : UINT64_MAX;
		struct kmfs_emap_leaf *l;

		if ((li == 0 && key != 0) || next <= key) {
			report(c, "inode %#llx: extent index keys out of order",
			       (unsigned long long)ioff);
			return false;
		}
		if (!obj_ref(c, idx->ent[li].leaf_off, KMFS_T_EMAP_LEAF,
			     sizeof(*l), "extent leaf", ioff))
			return false;
		l = pool_ptr(p, idx->ent[li].leaf_off);
		if (l->n > l->cap || l->cap == 0 || l->cap > KMFS_LEAF_MAX ||
		    !obj_get(c, idx->ent[li].leaf_off, KMFS_T_EMAP_LEAF,
			     sizeof(*l) + (uint64_t)l->cap * sizeof(l->ext[0]))) {
			report(c, "inode %#llx: extent leaf %u holds %u of %u",
			       (unsigned long long)ioff, li, l->n, l->cap);
			return false;
		}
		for (uint32_t i = 0; i < l->n; i++) {
			const struct kmfs_extent *e = &l->ext[i];
			if (e->count == 0 || e->fpage < key || e->fpage < last_end ||
			    e->fpage + e->count > next || e->fpage + e->count < e->fpage ||
			    e->fpage + e->count > KMFS_FILE_PAGES_MAX) {
				report(c, "inode %#llx: extent at page %llu out of order",
				       (unsigned long long)ioff,
				       (unsigned long long)e->fpage);
				return false;
			}
			if (!in_one_arena(p, e->dpage, e->count)) {
				report(c, "inode %#llx: extent at page %llu points outside the data arenas",
				       (unsigned long long)ioff,
				       (unsigned long long)e->fpage);
				return false;
			}
			if (e->flags & ~known) {
				report(c, "inode %#llx: extent at page %llu has flags %#x, "
				       "which format %u.%u does not define%s",
				       (unsigned long long)ioff,
				       (unsigned long long)e->fpage, e->flags,
				       p->sb->major, p->sb->minor,
				       c->o->repair ? " (cleared: its pages read as they are)" : "");
				if (c->o->repair) {
					l->ext[i].flags &= known;
					pool_persist(c->p, &l->ext[i].flags,
						     sizeof(e->flags));
					c->r->fixed++;
				}
			}
			last_end = e->fpage + e->count;
			*end = last_end;
			for (uint32_t k = 0; k < e->count; k++)
				c->counts[e->dpage + k]++;
			*blocks += e->count;
			c->r->extents++;
		}
	}
	return true;
}

static void fix_u32(struct checker *c, uint32_t *field, uint32_t value);
static void fix_u64(struct checker *c, uint64_t *field, uint64_t value);

static void check_file(struct checker *c, uint64_t ioff, struct kmfs_inode *ino)
{
	uint64_t blocks = 0, end = 0;

	if (!map_ok(c, ioff, ino, &blocks, &end)) {
		drop_data(c, ioff, ino, false);
		return;
	}
	if (ino->size > KMFS_FILE_SIZE_MAX) {
		/* stat would show a negative size; what is mapped stays */
		report(c, "inode %#llx: size %llu is past the largest file%s",
		       (unsigned long long)ioff, (unsigned long long)ino->size,
		       c->o->repair ? " (set to the end of its data)" : "");
		fix_u64(c, &ino->size, end < KMFS_FILE_PAGES_MAX ?
			end * KMFS_PAGE_SIZE : KMFS_FILE_SIZE_MAX);
	}
	if (blocks != ino->blocks) {
		report(c, "inode %#llx: block count %llu, extents map %llu%s",
		       (unsigned long long)ioff, (unsigned long long)ino->blocks,
		       (unsigned long long)blocks, c->o->repair ? " (fixed)" : "");
		fix_u64(c, &ino->blocks, blocks);
	}
}

static void enqueue(struct checker *c, uint64_t off)
{
	uint64_t *q = grow(c->queue, &c->qcap, c->qtail, sizeof(*q), 256);

	if (!q) {
		report(c, "out of memory for the directory walk");
		c->r->fatal = true;
		return;
	}
	c->queue = q;
	c->queue[c->qtail++] = off;
}


/* Does an entry of the run from RUN_HEAD up to E (at OFF) have E's name?
 * Equal names hash alike, so a second one is in the same run. */
static bool named_before(const struct kmfs_pool *p, uint64_t run_head,
			 uint64_t off, const struct kmfs_dirent *e)
{
	for (uint64_t o = run_head; o && o != off;
	     o = ((const struct kmfs_dirent *)pool_ptr(p, o))->next_off) {
		const struct kmfs_dirent *d = pool_ptr(p, o);

		if (d->hash == e->hash && d->namelen == e->namelen &&
		    memcmp(d->name, e->name, e->namelen) == 0)
			return true;
	}
	return false;
}

/* The hash kind the entries of TAB were filed with, judged by its first
 * entry (a flipped hash_kind would otherwise send every name to
 * lost+found): the table's own when it has no entry to tell, or
 * UINT32_MAX when no kind this pool can have fits. */
static uint32_t entries_hash_kind(struct checker *c, const struct kmfs_dirtable *tab)
{
	const struct kmfs_pool *p = c->p;
	uint32_t kind = tab->hash_kind;
	/* a format 1 pool has no key: FNV only */
	uint32_t last = pool_has_dir_key(p) ? KMFS_HASH_SIPHASH : KMFS_HASH_FNV;
	struct kmfs_dirtable other = *tab; /* the header: seed and kind */
	const struct kmfs_dirent *e;
	bool valid = kind <= last;

	if (!tab->head_off ||
	    !obj_get(c, tab->head_off, KMFS_T_DIRENT, sizeof(*e)))
		return valid ? kind : UINT32_MAX;
	e = pool_ptr(p, tab->head_off);
	if (e->namelen == 0 || e->namelen > KMFS_NAME_MAX ||
	    !obj_get(c, tab->head_off, KMFS_T_DIRENT, sizeof(*e) + e->namelen))
		return valid ? kind : UINT32_MAX;
	/* its own kind first: it wins where both fit */
	if (valid && e->hash == dir_hash(p, tab, e->name, e->namelen))
		return kind;
	for (uint32_t k = KMFS_HASH_FNV; k <= last; k++) {
		other.hash_kind = k;
		if (e->hash == dir_hash(p, &other, e->name, e->namelen))
			return k;
	}
	return valid ? kind : UINT32_MAX;
}

/*
 * Check directory DOFF's table and entry list, following the list until
 * the first damage; on repair the directory is built again from the
 * sound entries found before it (KEEP).
 */
static void check_dir(struct checker *c, uint64_t doff, struct kmfs_inode *dir)
{
	const struct kmfs_pool *p = c->p;
	struct kmfs_dirtable *tab;
	uint64_t count = 0, prev = 0, run_start = 0, run_head = 0, dropped = 0, nb;
	struct kept *keep = NULL;
	size_t nkeep = 0, capkeep = 0;
	bool damaged = true, retyped = false, gap = false;

	if (!obj_ref(c, dir->data_off, KMFS_T_DIRTABLE, sizeof(*tab),
		     "directory table", doff))
		goto out;
	tab = pool_ptr(p, dir->data_off);
	if (tab->bits < 1 || tab->bits > 30 ||
	    !obj_get(c, dir->data_off, KMFS_T_DIRTABLE,
		     sizeof(*tab) + (sizeof(uint64_t) << tab->bits))) {
		report(c, "directory %#llx: table of 2^%u buckets does not fit",
		       (unsigned long long)doff, tab->bits);
		goto out;
	}
	uint32_t used = entries_hash_kind(c, tab);
	if (used != tab->hash_kind) {
		/* a format 1 pool has no key to hash with */
		report(c, "directory %#llx: its table says name hash %u, its entries "
		       "use %s", (unsigned long long)doff, tab->hash_kind,
		       used == KMFS_HASH_SIPHASH ? "SipHash" :
		       used == KMFS_HASH_FNV ? "FNV" : "none this pool can have");
		if (used > KMFS_HASH_SIPHASH || !c->o->repair)
			goto out;
		fix_u32(c, &tab->hash_kind, used);
	}
	if (dir_unkeyed(p, dir))
		c->r->unkeyed++;
	nb = 1ull << tab->bits;
	for (uint64_t off = tab->head_off; off; ) {
		struct kmfs_dirent *e;
		struct obj *child;
		uint64_t b;

		if (!obj_ref(c, off, KMFS_T_DIRENT, sizeof(*e), "directory entry", doff))
			goto out;
		e = pool_ptr(p, off);
		if (e->namelen == 0 || e->namelen > KMFS_NAME_MAX ||
		    !obj_get(c, off, KMFS_T_DIRENT, sizeof(*e) + e->namelen) ||
		    memchr(e->name, '/', e->namelen) || memchr(e->name, 0, e->namelen) ||
		    (e->name[0] == '.' && (e->namelen == 1 ||
					   (e->namelen == 2 && e->name[1] == '.')))) {
			report(c, "directory %#llx: entry %#llx has a bad name",
			       (unsigned long long)doff, (unsigned long long)off);
			goto out;
		}
		if (e->cookie <= prev || e->cookie < e->hash ||
		    e->hash != dir_hash(p, tab, e->name, e->namelen) ||
		    e->cookie >= (1ull << KMFS_COOKIE_BITS)) {
			report(c, "directory %#llx: entry '%.*s' is out of order or misfiled",
			       (unsigned long long)doff, e->namelen, e->name);
			goto out;
		}
		/* lookup walks from the hash through consecutive cookies */
		if (e->cookie != prev + 1) {
			run_start = e->cookie;
			run_head = off;
		}
		if (e->hash < run_start) {
			/* the entry is sound: a rebuild puts it back in reach */
			report(c, "directory %#llx: entry '%.*s' cannot be found by name"
			       " (a gap in the cookies after its hash)",
			       (unsigned long long)doff, e->namelen, e->name);
			gap = true;
		}
		b = e->cookie >> (KMFS_COOKIE_BITS - tab->bits);
		if ((prev == 0 || (prev >> (KMFS_COOKIE_BITS - tab->bits)) != b) &&
		    tab->buckets[b] != off) {
			report(c, "directory %#llx: bucket %llu does not start at '%.*s'",
			       (unsigned long long)doff, (unsigned long long)b,
			       e->namelen, e->name);
			goto out;
		}
		prev = e->cookie;
		count++;
		child = obj_get(c, e->ino_off, KMFS_T_INODE, sizeof(struct kmfs_inode));
		bool fit = child != NULL;
		if (named_before(p, run_head, off, e)) {
			/* lookup finds the first; the rebuild keeps that one */
			report(c, "directory %#llx: entry '%.*s' is there twice",
			       (unsigned long long)doff, e->namelen, e->name);
			fit = false;
		} else if (e->ino_off == p->sb->root_off) {
			/* the root has no name: counted, it would be walked twice */
			report(c, "directory %#llx: entry '%.*s' names the root",
			       (unsigned long long)doff, e->namelen, e->name);
			fit = false;
		} else if (!child) {
			report(c, "directory %#llx: entry '%.*s' names no inode",
			       (unsigned long long)doff, e->namelen, e->name);
		} else if (symlink_cleared(pool_ptr(p, e->ino_off))) {
			report(c, "directory %#llx: entry '%.*s' names a cleared symlink",
			       (unsigned long long)doff, e->namelen, e->name);
			fit = false;
		} else {
			struct kmfs_inode *ci = pool_ptr(p, e->ino_off);
			child->links++;
			if (e->type != IFTODT(ci->mode)) {
				report(c, "directory %#llx: entry '%.*s' has the wrong type",
				       (unsigned long long)doff, e->namelen, e->name);
				retyped = true;
			}
			if (S_ISDIR(ci->mode)) {
				/* walked already: the top of a cut-off subtree
				 * (walk_tree) that turns up named after all */
				if (child->links > 1 || child->reached || child->cut) {
					report(c, "directory %#llx is named twice",
					       (unsigned long long)e->ino_off);
					fit = false;
				} else {
					child->parent = doff;
					enqueue(c, e->ino_off);
				}
				obj_get(c, doff, KMFS_T_INODE, 0)->subdirs++;
			}
		}
		if (fit && !known_type(((struct kmfs_inode *)pool_ptr(p, e->ino_off))->mode))
			fit = false; /* restore_type could not tell: not named again */
		if (!fit)
			dropped++;
		if (fit && c->o->repair) {
			struct kept *v = grow(keep, &capkeep, nkeep, sizeof(*v), 64);
			if (!v) {
				report(c, "out of memory for directory %#llx",
				       (unsigned long long)doff);
				c->r->fatal = true;
				goto out;
			}
			keep = v;
			keep[nkeep++] = (struct kept){ e->name, e->namelen,
				IFTODT(((struct kmfs_inode *)pool_ptr(p, e->ino_off))->mode),
				e->ino_off };
		}
		off = e->next_off;
		if (count > c->nobjs) {
			report(c, "directory %#llx: entry list loops",
			       (unsigned long long)doff);
			goto out;
		}
	}
	/* each bucket holds the first entry of this list in it, or nothing
	 * (the list is sound and sorted: walked again beside the buckets) */
	uint64_t cur = tab->head_off;
	for (uint64_t b = 0; b < nb; b++) {
		const struct kmfs_dirent *ce = cur ? pool_ptr(p, cur) : NULL;
		uint64_t want = 0;

		if (ce && ce->cookie >> (KMFS_COOKIE_BITS - tab->bits) == b) {
			want = cur;
			while (ce && ce->cookie >> (KMFS_COOKIE_BITS - tab->bits) == b) {
				cur = ce->next_off;
				ce = cur ? pool_ptr(p, cur) : NULL;
			}
		}
		if (tab->buckets[b] != want) {
			report(c, "directory %#llx: bucket %llu holds a foreign entry",
			       (unsigned long long)doff, (unsigned long long)b);
			goto out;
		}
	}
	if (count != tab->count)
		report(c, "directory %#llx: counts %llu entries, holds %llu",
		       (unsigned long long)doff, (unsigned long long)tab->count,
		       (unsigned long long)count);
	else	/* or an entry to drop or to give its type */
		damaged = retyped || gap || dropped;
out:
	c->dir_damage |= damaged;
	if (damaged && c->o->repair && !c->r->fatal)
		rebuild_dir(c, doff, dir, keep, nkeep);
	free(keep);
}

static void check_xattrs(struct checker *c, uint64_t ioff, struct kmfs_inode *ino)
{
	struct kmfs_xattrs *x;
	size_t pos = 0;

	if (!ino->xattr_off)
		return;
	if (!obj_ref(c, ino->xattr_off, KMFS_T_XATTRS, sizeof(*x), "xattrs", ioff)) {
		drop_xattrs(c, ioff, ino);
		return;
	}
	x = pool_ptr(c->p, ino->xattr_off);
	if (!obj_get(c, ino->xattr_off, KMFS_T_XATTRS, sizeof(*x) + x->used)) {
		report(c, "inode %#llx: xattrs overrun their object",
		       (unsigned long long)ioff);
		drop_xattrs(c, ioff, ino);
		return;
	}
	for (uint32_t i = 0; i < x->count; i++) {
		const struct kmfs_xattr_ent *e = (const void *)(x->data + pos);
		if (pos + sizeof(*e) > x->used || e->name_len == 0 ||
		    e->value_len > KMFS_XATTR_SIZE_MAX ||
		    pos + sizeof(*e) + e->name_len + e->value_len > x->used) {
			report(c, "inode %#llx: xattr %u is malformed",
			       (unsigned long long)ioff, i);
			drop_xattrs(c, ioff, ino);
			return;
		}
		pos += (sizeof(*e) + e->name_len + e->value_len + 7) & ~(size_t)7;
	}
	/* xattr_set adds and takes whole padded entries from USED */
	if (pos != x->used || x->used > KMFS_XATTR_LIST_MAX) {
		report(c, "inode %#llx: xattrs use %u bytes, their entries %zu",
		       (unsigned long long)ioff, x->used, pos);
		drop_xattrs(c, ioff, ino);
	}
}

/* Check one inode's own fields and what it owns. */
static void check_inode(struct checker *c, struct obj *o)
{
	struct kmfs_inode *ino = pool_ptr(c->p, o->off);
	mode_t fmt = ino->mode & S_IFMT;

	c->r->inodes++;
	if (ino->attr_flags & ~KMFS_AF_ALL) {
		report(c, "inode %#llx: attribute flags %#x, of which %#x are unknown",
		       (unsigned long long)o->off, ino->attr_flags,
		       ino->attr_flags & ~KMFS_AF_ALL);
		fix_u32(c, &ino->attr_flags, ino->attr_flags & KMFS_AF_ALL);
	}
	/* 0: made before tags; the next writable mount gives it one */
	uint64_t tag = pool_inode_tag(c->p, o->off, ino->generation);
	if (ino->handle_tag && ino->handle_tag != tag) {
		report(c, "inode %#llx: handle tag %#llx is not its own: file "
		       "handles would not find it", (unsigned long long)o->off,
		       (unsigned long long)ino->handle_tag);
		fix_u64(c, &ino->handle_tag, tag);
	}
	/* a flipped type bit must not have the data dropped as a broken map
	 * of another type: what the inode holds tells its type */
	uint32_t held = held_type(c, ino);
	if (held && held != fmt && known_type(ino->mode)) {
		report(c, "inode %#llx: file type %#o, but it holds a %s",
		       (unsigned long long)o->off, (unsigned)fmt,
		       held == S_IFREG ? "file's extent map" :
		       held == S_IFDIR ? "directory table" : "symlink target");
		restore_type(c, o->off, ino);
		return;
	}
	switch (fmt) {
	case S_IFREG:
		c->r->files++;
		check_file(c, o->off, ino);
		break;
	case S_IFDIR:
		c->r->dirs++;
		break; /* walked from its parent */
	case S_IFLNK:
		if (symlink_cleared(ino))
			break;
		if (ino->size > KMFS_SYMLINK_MAX ||
		    !obj_ref(c, ino->data_off, KMFS_T_SYMLINK, ino->size ? ino->size : 1,
			     "symlink target", o->off)) {
			report(c, "inode %#llx: bad symlink", (unsigned long long)o->off);
			drop_data(c, o->off, ino, true);
		}
		break;
	case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK:
		if (ino->data_off) {
			report(c, "inode %#llx: special file with data",
			       (unsigned long long)o->off);
			drop_data(c, o->off, ino, false);
		}
		break;
	default:
		report(c, "inode %#llx: unknown file type %#o",
		       (unsigned long long)o->off, (unsigned)ino->mode);
		restore_type(c, o->off, ino);
		return;
	}
	check_xattrs(c, o->off, ino);
}

/* Check the directories queued, and those they name, in turn. */
static void drain(struct checker *c)
{
	while (c->qhead < c->qtail && !c->r->fatal) {
		uint64_t d = c->queue[c->qhead++];
		struct kmfs_inode *dir = pool_ptr(c->p, d);
		log_progress("checking directories", c->qhead, c->r->dirs);
		obj_get(c, d, KMFS_T_INODE, 0)->reached = true;
		check_dir(c, d, dir);
	}
}

/* Does directory INO name anything? A removed one (rmdir empties it
 * first) names nothing, and the mount frees its table only. */
static bool names_entries(struct checker *c, const struct kmfs_inode *ino)
{
	const struct kmfs_dirtable *tab;

	if (!obj_get(c, ino->data_off, KMFS_T_DIRTABLE, sizeof(*tab)))
		return false;
	tab = pool_ptr(c->p, ino->data_off);
	return tab->head_off != 0;
}

/* Is O a directory still in use that the walk has not reached: linked, or
 * removed but naming entries all the same? */
static bool cut_off(struct checker *c, const struct obj *o)
{
	const struct kmfs_inode *ino;

	if (!o || o->type != KMFS_T_INODE || o->size < sizeof(*ino) || o->reached ||
	    o->off == c->p->sb->root_off)
		return false;
	ino = pool_ptr(c->p, o->off);
	return S_ISDIR(ino->mode) && (ino->nlink || names_entries(c, ino));
}

/* The top of the cut-off subtree holding directory O, by its ".." links. */
static struct obj *cut_top(struct checker *c, struct obj *o)
{
	for (size_t n = 0; n < c->nobjs; n++) { /* a loop of ".." ends too */
		const struct kmfs_inode *ino = pool_ptr(c->p, o->off);
		struct obj *up = obj_find(c, ino->parent_off);
		if (!cut_off(c, up))
			break;
		o = up;
	}
	return o;
}

static void walk_tree(struct checker *c)
{
	uint64_t root = c->p->sb->root_off;

	struct obj *r = obj_get(c, root, KMFS_T_INODE, 0);

	if (!r) { /* hidden by damage to libpmemobj's heap */
		report(c, "the root inode %#llx is not in the object list",
		       (unsigned long long)root);
		c->r->fatal = true;
		return;
	}
	r->parent = root;
	enqueue(c, root);
	drain(c);
	/* A directory the root does not reach, with links: its subtree is
	 * walked from the top, so what it names is counted where it is, and
	 * only the top goes to /lost+found (check_links). */
	for (size_t i = 0; i < c->nobjs && !c->r->fatal; i++) {
		struct obj *o = &c->objs[i];
		if (!cut_off(c, o))
			continue;
		struct obj *top = cut_top(c, o);
		top->cut = true;
		enqueue(c, top->off);
		drain(c);
		if (!o->reached) { /* its ".." leads to a subtree not naming it */
			o->cut = true;
			enqueue(c, o->off);
			drain(c);
		}
	}
}

static void fix_u32(struct checker *c, uint32_t *field, uint32_t value)
{
	if (!c->o->repair)
		return;
	*field = value;
	pool_persist(c->p, field, sizeof(*field));
	c->r->fixed++;
}

static void fix_u64(struct checker *c, uint64_t *field, uint64_t value)
{
	if (!c->o->repair)
		return;
	*field = value;
	pool_persist(c->p, field, sizeof(*field));
	c->r->fixed++;
}

/* Link counts, reachability, orphans. */
static void check_links(struct checker *c)
{
	for (size_t i = 0; i < c->nobjs; i++) {
		struct obj *o = &c->objs[i];
		struct kmfs_inode *ino;
		uint32_t want;

		log_progress("counting links", i, c->nobjs);
		if (o->type != KMFS_T_INODE)
			continue;
		ino = pool_ptr(c->p, o->off);
		if (S_ISDIR(ino->mode)) {
			bool root = o->off == c->p->sb->root_off;
			if ((!o->reached || o->cut) && !root) {
				if (ino->nlink) {
					report(c, "directory %#llx is not reachable from the root",
					       (unsigned long long)o->off);
					reconnect(c, o->off, ino);
				} else if (o->cut) {
					/* walked as a cut-off subtree: what
					 * it names is counted there */
					report(c, "removed directory %#llx still names entries",
					       (unsigned long long)o->off);
					reconnect(c, o->off, ino);
				} else {
					c->r->orphans++;
					check_dir(c, o->off, ino);
				}
				continue;
			}
			want = 2 + o->subdirs;
			if (ino->parent_off != o->parent) {
				report(c, "directory %#llx: '..' is %#llx, named by %#llx%s",
				       (unsigned long long)o->off,
				       (unsigned long long)ino->parent_off,
				       (unsigned long long)o->parent,
				       c->o->repair ? " (fixed)" : "");
				if (c->o->repair) {
					ino->parent_off = o->parent;
					pool_persist(c->p, &ino->parent_off,
						     sizeof(ino->parent_off));
					c->r->fixed++;
				}
			}
		} else {
			want = o->links;
			if (!o->links && !ino->nlink) {
				c->r->orphans++; /* freed at the next mount */
				continue;
			}
			if (!o->links && c->o->repair) {
				/* named nowhere, but not unlinked: keep it */
				report(c, "inode %#llx: link count %u, but no directory names it",
				       (unsigned long long)o->off, ino->nlink);
				reconnect(c, o->off, ino);
				continue;
			}
		}
		if (ino->nlink != want) {
			/* names in a directory a failed mend left unread count */
			bool fix = c->o->repair && !(c->unmended && want < ino->nlink);
			report(c, "inode %#llx: link count %u, counted %u%s",
			       (unsigned long long)o->off, ino->nlink, want,
			       fix ? " (fixed)" : "");
			if (fix)
				fix_u32(c, &ino->nlink, want);
		}
	}
}

/* Page reference counts and unit states against what the maps say. */
static void check_pages(struct checker *c)
{
	struct kmfs_pool *p = c->p;
	uint64_t bad = 0;

	for (uint64_t pg = 0; pg < p->total_pages; pg++) {
		log_progress("checking page counts", pg, p->total_pages);
		if (c->counts[pg])
			c->r->pages_used++;
		if (p->refs[pg] == c->counts[pg])
			continue;
		if (bad++ < 5 || c->o->verbose)
			report(c, "page %llu: reference count %u, extents map it %u times%s",
			       (unsigned long long)pg, p->refs[pg], c->counts[pg],
			       c->o->repair ? " (fixed)" : "");
		else
			c->r->errors++;
		fix_u32(c, &p->refs[pg], c->counts[pg]);
	}
	for (uint64_t u = 0; u < p->total_units; u++) {
		bool used = false;
		if (p->units[u] > KMFS_UNIT_LENT) {
			report(c, "unit %llu: unknown state %u%s", (unsigned long long)u,
			       p->units[u], c->o->repair ? " (fixed)" : "");
		} else if (p->units[u] == KMFS_UNIT_LENT) {
			for (uint64_t k = 0; k < KMFS_UNIT_PAGES && !used; k++)
				used = c->counts[u * KMFS_UNIT_PAGES + k] != 0;
			if (!used)
				continue;
			report(c, "unit %llu: lent but holds file data%s",
			       (unsigned long long)u, c->o->repair ? " (fixed)" : "");
		} else {
			continue;
		}
		if (c->o->repair) {
			p->units[u] = KMFS_UNIT_PRESENT;
			pool_persist(p, &p->units[u], 1);
			c->r->fixed++;
		}
	}
}

/* Objects nothing refers to: leaked by a bug, freed on repair. */
/* Is O one of the objects the superblock holds by itself: the superblock
 * (the root object), an arena, the reference counts, the unit states? */
static bool held_by_super(const struct checker *c, const struct obj *o)
{
	const struct kmfs_super *sb = c->p->sb;

	if (o->off == pmemobj_oid(sb).off || o->off == sb->refs_off ||
	    o->off == sb->units_off)
		return true;
	for (uint32_t i = 0; i < sb->narenas && i < KMFS_MAX_ARENAS; i++)
		if (o->off == sb->arenas[i].obj_off)
			return true;
	return false;
}

static void check_leaks(struct checker *c)
{
	for (size_t i = 0; i < c->nobjs; i++) {
		struct obj *o = &c->objs[i];
		log_progress("looking for leaks", i, c->nobjs);
		/* any type may be damaged into SUPER or ARENA: only the ones
		 * the superblock names go unnamed */
		if (o->refs || o->type == KMFS_T_INODE || held_by_super(c, o))
			continue;
		/* a damaged type: nothing can name it, it is garbage */
		if (o->type < KMFS_T_SUPER || o->type > KMFS_T_UNITS)
			report(c, "object %#llx has unknown type %u%s",
			       (unsigned long long)o->off, o->type,
			       c->o->repair ? " (freed)" : "");
		else
			report(c, "object %#llx (type %u) is not referenced%s",
			       (unsigned long long)o->off, o->type,
			       c->o->repair ? " (freed)" : "");
		if (c->o->repair) {
			PMEMoid oid = pmemobj_oid(pool_ptr(c->p, o->off));
			/* an inode whose type was damaged may be among them:
			 * freed bytes must hold no handle tag (pool.h) */
			if (o->size >= offsetof(struct kmfs_inode, handle_tag) + 8) {
				struct kmfs_inode *ino = pool_ptr(c->p, o->off);
				ino->handle_tag = 0;
				pool_persist(c->p, &ino->handle_tag, 8);
			}
			pmemobj_free(&oid);
			c->r->fixed++;
		}
	}
}

/* One pass of the check; with PG (repair), *MENDED says structure changed. */
static int check_pass(struct kmfs_pool *p, const struct check_opts *o,
		      struct check_result *r, struct pages *pg, struct made *made,
		      bool *mended)
{
	struct checker c = { .p = p, .o = o, .r = r, .pg = pg, .made = made };
	int rc;

	*mended = false;
	memset(r, 0, sizeof(*r));
	c.counts = calloc(p->total_pages ? p->total_pages : 1, sizeof(uint32_t));
	if (!c.counts)
		return -ENOMEM;
	rc = collect(&c);
	if (rc < 0)
		goto out;
	/* libpmemobj's list must show what it just allocated; a damaged heap
	 * that hides it would take every repair made in it */
	for (size_t i = 0; pg && i < c.made->n; i++) {
		uint64_t tab = ((struct kmfs_inode *)pool_ptr(p, c.made->off[i]))->data_off;
		if (obj_get(&c, tab, KMFS_T_DIRTABLE, 0))
			continue;
		report(&c, "libpmemobj's heap metadata is damaged: the table it "
		       "allocated at %#llx is not in its object list",
		       (unsigned long long)tab);
		r->fatal = true;
		goto out;
	}
	for (size_t i = 0; i < c.nobjs; i++) {
		struct obj *d;
		if (c.objs[i].type != KMFS_T_INODE ||
		    c.objs[i].size < sizeof(struct kmfs_inode))
			continue;
		d = obj_find(&c, ((struct kmfs_inode *)pool_ptr(p, c.objs[i].off))->data_off);
		if (d)
			d->holders++;
	}
	for (size_t i = 0; i < c.nobjs; i++) {
		log_progress("checking inodes", i, c.nobjs);
		if (c.objs[i].type != KMFS_T_INODE)
			continue;
		if (c.objs[i].size < sizeof(struct kmfs_inode)) {
			report(&c, "inode %#llx is too small", (unsigned long long)c.objs[i].off);
			continue;
		}
		check_inode(&c, &c.objs[i]);
	}
	walk_tree(&c);
	/* counts are computed from a structure this pass did not change, and
	 * only one that is whole tells garbage from what it could not reach */
	if (!r->fatal && !c.mended)
		check_links(&c);
	if (!r->fatal && !c.mended && !c.unmended) {
		check_pages(&c);
		if (!r->errors || o->repair)
			check_leaks(&c);
	}
	*mended = c.mended;
out:
	free(c.counts);
	free(c.objs);
	free(c.queue);
	return rc;
}

/*
 * Passes of repair in one open. A structure still changing after them
 * usually sits in a damaged part of libpmemobj's heap, whose view of it
 * only a fresh open rebuilds (fsck.kmemfs opens again).
 */
#define MAX_PASSES 4

int check_pool(struct kmfs_pool *p, const struct check_opts *o,
	       struct check_result *r)
{
	struct check_result pass;
	struct made made = { 0 };
	struct pages pg;
	bool mended = false;
	uint64_t found;
	int rc;

	if (!o->repair)
		return check_pass(p, o, r, NULL, NULL, &mended);
	pages_init_offline(&pg, p);
	rc = check_pass(p, o, r, &pg, &made, &mended);
	found = r->errors;
	for (int n = 2; rc == 0 && mended && n <= MAX_PASSES; n++) {
		if (!o->quiet) {
			log_progress_clear();
			fprintf(stderr, "pass %d, on the mended structure:\n", n);
		}
		rc = check_pass(p, o, &pass, &pg, &made, &mended);
		/* what is left is what the last pass found and did not fix */
		found += pass.errors;
		snprintf(pass.first, sizeof(pass.first), "%s", r->first);
		pass.fixed = found - (pass.errors - pass.fixed);
		pass.errors = found;
		pass.unsettled = mended && n == MAX_PASSES;
		*r = pass;
	}
	pages_fini(&pg);
	free(made.off);
	return rc;
}
