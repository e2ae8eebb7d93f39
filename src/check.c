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
#include "pool.h"

struct obj {
	uint64_t off;
	uint64_t size;
	uint32_t type;
	uint32_t refs;   /* references found to it */
	uint32_t links;  /* inodes: directory entries naming it */
	uint32_t subdirs;/* dir inodes: child directories */
	uint64_t parent; /* dir inodes: directory that names it */
	bool reached;
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
		if (c->r->errors == c->o->max_print + 1)
			fprintf(stderr, "  ... (more errors not shown)\n");
		return;
	}
	fprintf(stderr, "  ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int cmp_obj(const void *a, const void *b)
{
	const struct obj *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int collect(struct checker *c)
{
	size_t cap = 1024;
	PMEMoid oid;

	c->objs = malloc(cap * sizeof(*c->objs));
	if (!c->objs)
		return -ENOMEM;
	for (oid = pmemobj_first(c->p->pop); !OID_IS_NULL(oid);
	     oid = pmemobj_next(oid)) {
		if (c->nobjs == cap) {
			struct obj *v = realloc(c->objs, cap * 2 * sizeof(*v));
			if (!v)
				return -ENOMEM;
			c->objs = v;
			cap *= 2;
		}
		struct obj *o = &c->objs[c->nobjs++];
		memset(o, 0, sizeof(*o));
		o->off = oid.off;
		o->type = (uint32_t)pmemobj_type_num(oid);
		o->size = pmemobj_alloc_usable_size(oid);
	}
	qsort(c->objs, c->nobjs, sizeof(*c->objs), cmp_obj);
	c->r->objects = c->nobjs;
	return 0;
}

/* The object at OFF if it has TYPE and at least SIZE bytes, else NULL. */
static struct obj *obj_get(struct checker *c, uint64_t off, uint32_t type,
			   uint64_t size)
{
	size_t lo = 0, hi = c->nobjs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->objs[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == c->nobjs || c->objs[lo].off != off || c->objs[lo].type != type ||
	    c->objs[lo].size < size)
		return NULL;
	return &c->objs[lo];
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

static void check_file(struct checker *c, uint64_t ioff, struct kmfs_inode *ino)
{
	const struct kmfs_pool *p = c->p;
	struct kmfs_emap_index *idx;
	uint64_t blocks = 0, last_end = 0;

	if (!ino->data_off)
		goto blocks;
	if (!obj_ref(c, ino->data_off, KMFS_T_EMAP_INDEX,
		     sizeof(struct kmfs_emap_index), "extent index", ioff))
		return;
	idx = pool_ptr(p, ino->data_off);
	if (idx->nleaves == 0 || idx->nleaves > idx->cap ||
	    !obj_get(c, ino->data_off, KMFS_T_EMAP_INDEX,
		     sizeof(*idx) + (uint64_t)idx->cap * sizeof(idx->ent[0]))) {
		report(c, "inode %#llx: extent index has %u leaves of %u",
		       (unsigned long long)ioff, idx->nleaves, idx->cap);
		return;
	}
	for (uint32_t li = 0; li < idx->nleaves; li++) {
		uint64_t key = idx->ent[li].key;
		uint64_t next = li + 1 < idx->nleaves ? idx->ent[li + 1].key : UINT64_MAX;
		struct kmfs_emap_leaf *l;

		if ((li == 0 && key != 0) || next <= key) {
			report(c, "inode %#llx: extent index keys out of order",
			       (unsigned long long)ioff);
			return;
		}
		if (!obj_ref(c, idx->ent[li].leaf_off, KMFS_T_EMAP_LEAF,
			     sizeof(*l), "extent leaf", ioff))
			return;
		l = pool_ptr(p, idx->ent[li].leaf_off);
		if (l->n > l->cap || l->cap > KMFS_LEAF_MAX ||
		    !obj_get(c, idx->ent[li].leaf_off, KMFS_T_EMAP_LEAF,
			     sizeof(*l) + (uint64_t)l->cap * sizeof(l->ext[0]))) {
			report(c, "inode %#llx: extent leaf %u holds %u of %u",
			       (unsigned long long)ioff, li, l->n, l->cap);
			return;
		}
		for (uint32_t i = 0; i < l->n; i++) {
			const struct kmfs_extent *e = &l->ext[i];
			if (e->count == 0 || e->fpage < key || e->fpage < last_end ||
			    e->fpage + e->count > next || e->fpage + e->count < e->fpage) {
				report(c, "inode %#llx: extent at page %llu out of order",
				       (unsigned long long)ioff,
				       (unsigned long long)e->fpage);
				return;
			}
			if (!in_one_arena(p, e->dpage, e->count)) {
				report(c, "inode %#llx: extent at page %llu points outside the data arenas",
				       (unsigned long long)ioff,
				       (unsigned long long)e->fpage);
				return;
			}
			last_end = e->fpage + e->count;
			for (uint32_t k = 0; k < e->count; k++)
				c->counts[e->dpage + k]++;
			blocks += e->count;
			c->r->extents++;
		}
	}
blocks:
	if (blocks != ino->blocks) {
		report(c, "inode %#llx: block count %llu, extents map %llu%s",
		       (unsigned long long)ioff, (unsigned long long)ino->blocks,
		       (unsigned long long)blocks, c->o->repair ? " (fixed)" : "");
		if (c->o->repair) {
			ino->blocks = blocks;
			pool_persist(p, &ino->blocks, sizeof(ino->blocks));
			c->r->fixed++;
		}
	}
}

static void enqueue(struct checker *c, uint64_t off)
{
	if (c->qtail == c->qcap) {
		size_t cap = c->qcap ? c->qcap * 2 : 256;
		uint64_t *q = realloc(c->queue, cap * sizeof(*q));
		if (!q) {
			c->r->fatal = true;
			return;
		}
		c->queue = q;
		c->qcap = cap;
	}
	c->queue[c->qtail++] = off;
}

static void check_dir(struct checker *c, uint64_t doff, struct kmfs_inode *dir)
{
	const struct kmfs_pool *p = c->p;
	struct kmfs_dirtable *tab;
	uint64_t count = 0, prev = 0, nb;

	if (!obj_ref(c, dir->data_off, KMFS_T_DIRTABLE, sizeof(*tab),
		     "directory table", doff))
		return;
	tab = pool_ptr(p, dir->data_off);
	if (tab->bits < 1 || tab->bits > 30 ||
	    !obj_get(c, dir->data_off, KMFS_T_DIRTABLE,
		     sizeof(*tab) + (sizeof(uint64_t) << tab->bits))) {
		report(c, "directory %#llx: table of 2^%u buckets does not fit",
		       (unsigned long long)doff, tab->bits);
		return;
	}
	nb = 1ull << tab->bits;
	for (uint64_t off = tab->head_off; off; ) {
		struct kmfs_dirent *e;
		struct obj *child;
		uint64_t b;

		if (!obj_ref(c, off, KMFS_T_DIRENT, sizeof(*e), "directory entry", doff))
			return;
		e = pool_ptr(p, off);
		if (e->namelen == 0 || e->namelen > KMFS_NAME_MAX ||
		    !obj_get(c, off, KMFS_T_DIRENT, sizeof(*e) + e->namelen) ||
		    memchr(e->name, '/', e->namelen) || memchr(e->name, 0, e->namelen)) {
			report(c, "directory %#llx: entry %#llx has a bad name",
			       (unsigned long long)doff, (unsigned long long)off);
			return;
		}
		if (e->cookie <= prev || e->cookie < e->hash ||
		    e->hash != dir_hash(tab->seed, e->name, e->namelen) ||
		    e->cookie >= (1ull << KMFS_COOKIE_BITS)) {
			report(c, "directory %#llx: entry '%.*s' is out of order or misfiled",
			       (unsigned long long)doff, e->namelen, e->name);
			return;
		}
		b = e->cookie >> (KMFS_COOKIE_BITS - tab->bits);
		if ((prev == 0 || (prev >> (KMFS_COOKIE_BITS - tab->bits)) != b) &&
		    tab->buckets[b] != off) {
			report(c, "directory %#llx: bucket %llu does not start at '%.*s'",
			       (unsigned long long)doff, (unsigned long long)b,
			       e->namelen, e->name);
			return;
		}
		prev = e->cookie;
		count++;
		child = obj_get(c, e->ino_off, KMFS_T_INODE, sizeof(struct kmfs_inode));
		if (!child) {
			report(c, "directory %#llx: entry '%.*s' names no inode",
			       (unsigned long long)doff, e->namelen, e->name);
		} else {
			struct kmfs_inode *ci = pool_ptr(p, e->ino_off);
			child->links++;
			if (e->type != IFTODT(ci->mode))
				report(c, "directory %#llx: entry '%.*s' has the wrong type",
				       (unsigned long long)doff, e->namelen, e->name);
			if (S_ISDIR(ci->mode)) {
				if (child->links > 1) {
					report(c, "directory %#llx is named twice",
					       (unsigned long long)e->ino_off);
				} else {
					child->parent = doff;
					enqueue(c, e->ino_off);
				}
				obj_get(c, doff, KMFS_T_INODE, 0)->subdirs++;
			}
		}
		off = e->next_off;
		if (count > c->nobjs) {
			report(c, "directory %#llx: entry list loops",
			       (unsigned long long)doff);
			return;
		}
	}
	for (uint64_t b = 0; b < nb; b++) {
		uint64_t off = tab->buckets[b];
		if (off && !obj_get(c, off, KMFS_T_DIRENT, sizeof(struct kmfs_dirent))) {
			report(c, "directory %#llx: bucket %llu points nowhere",
			       (unsigned long long)doff, (unsigned long long)b);
			return;
		}
		if (off && ((struct kmfs_dirent *)pool_ptr(p, off))->cookie >>
			   (KMFS_COOKIE_BITS - tab->bits) != b) {
			report(c, "directory %#llx: bucket %llu holds a foreign entry",
			       (unsigned long long)doff, (unsigned long long)b);
			return;
		}
	}
	if (count != tab->count)
		report(c, "directory %#llx: counts %llu entries, holds %llu",
		       (unsigned long long)doff, (unsigned long long)tab->count,
		       (unsigned long long)count);
}

static void check_xattrs(struct checker *c, uint64_t ioff, struct kmfs_inode *ino)
{
	struct kmfs_xattrs *x;
	size_t pos = 0;

	if (!ino->xattr_off)
		return;
	if (!obj_ref(c, ino->xattr_off, KMFS_T_XATTRS, sizeof(*x), "xattrs", ioff))
		return;
	x = pool_ptr(c->p, ino->xattr_off);
	if (!obj_get(c, ino->xattr_off, KMFS_T_XATTRS, sizeof(*x) + x->used)) {
		report(c, "inode %#llx: xattrs overrun their object",
		       (unsigned long long)ioff);
		return;
	}
	for (uint32_t i = 0; i < x->count; i++) {
		const struct kmfs_xattr_ent *e = (const void *)(x->data + pos);
		if (pos + sizeof(*e) > x->used || e->name_len == 0 ||
		    e->value_len > KMFS_XATTR_SIZE_MAX ||
		    pos + sizeof(*e) + e->name_len + e->value_len > x->used) {
			report(c, "inode %#llx: xattr %u is malformed",
			       (unsigned long long)ioff, i);
			return;
		}
		pos += (sizeof(*e) + e->name_len + e->value_len + 7) & ~(size_t)7;
	}
}

/* Check one inode's own fields and what it owns. */
static void check_inode(struct checker *c, struct obj *o)
{
	struct kmfs_inode *ino = pool_ptr(c->p, o->off);
	mode_t fmt = ino->mode & S_IFMT;

	c->r->inodes++;
	switch (fmt) {
	case S_IFREG:
		c->r->files++;
		check_file(c, o->off, ino);
		break;
	case S_IFDIR:
		c->r->dirs++;
		break; /* walked from its parent */
	case S_IFLNK:
		if (ino->size > KMFS_SYMLINK_MAX ||
		    !obj_ref(c, ino->data_off, KMFS_T_SYMLINK, ino->size ? ino->size : 1,
			     "symlink target", o->off))
			report(c, "inode %#llx: bad symlink", (unsigned long long)o->off);
		break;
	case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK:
		if (ino->data_off)
			report(c, "inode %#llx: special file with data",
			       (unsigned long long)o->off);
		break;
	default:
		report(c, "inode %#llx: unknown file type %#o",
		       (unsigned long long)o->off, (unsigned)ino->mode);
		return;
	}
	check_xattrs(c, o->off, ino);
}

static void walk_tree(struct checker *c)
{
	uint64_t root = c->p->sb->root_off;

	obj_get(c, root, KMFS_T_INODE, 0)->parent = root;
	enqueue(c, root);
	while (c->qhead < c->qtail && !c->r->fatal) {
		uint64_t d = c->queue[c->qhead++];
		struct kmfs_inode *dir = pool_ptr(c->p, d);
		obj_get(c, d, KMFS_T_INODE, 0)->reached = true;
		check_dir(c, d, dir);
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

/* Link counts, reachability, orphans. */
static void check_links(struct checker *c)
{
	for (size_t i = 0; i < c->nobjs; i++) {
		struct obj *o = &c->objs[i];
		struct kmfs_inode *ino;
		uint32_t want;

		if (o->type != KMFS_T_INODE)
			continue;
		ino = pool_ptr(c->p, o->off);
		if (S_ISDIR(ino->mode)) {
			bool root = o->off == c->p->sb->root_off;
			if (!o->reached && !root) {
				if (ino->nlink) {
					report(c, "directory %#llx is not reachable from the root",
					       (unsigned long long)o->off);
				} else {
					c->r->orphans++;
					check_dir(c, o->off, ino);
				}
				continue;
			}
			want = 2 + o->subdirs;
			if (!root && ino->parent_off != o->parent)
				report(c, "directory %#llx: '..' is %#llx, named by %#llx",
				       (unsigned long long)o->off,
				       (unsigned long long)ino->parent_off,
				       (unsigned long long)o->parent);
		} else {
			want = o->links;
			if (!o->links && !ino->nlink) {
				c->r->orphans++; /* freed at the next mount */
				continue;
			}
		}
		if (ino->nlink != want) {
			report(c, "inode %#llx: link count %u, counted %u%s",
			       (unsigned long long)o->off, ino->nlink, want,
			       c->o->repair ? " (fixed)" : "");
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
static void check_leaks(struct checker *c)
{
	for (size_t i = 0; i < c->nobjs; i++) {
		struct obj *o = &c->objs[i];
		if (o->refs || o->type == KMFS_T_INODE || o->type == KMFS_T_SUPER ||
		    o->type == KMFS_T_ARENA || o->off == c->p->sb->refs_off ||
		    o->off == c->p->sb->units_off)
			continue;
		if (o->type < KMFS_T_SUPER || o->type > KMFS_T_UNITS) {
			report(c, "object %#llx has unknown type %u",
			       (unsigned long long)o->off, o->type);
			continue;
		}
		report(c, "object %#llx (type %u) is not referenced%s",
		       (unsigned long long)o->off, o->type,
		       c->o->repair ? " (freed)" : "");
		if (c->o->repair) {
			PMEMoid oid = pmemobj_oid(pool_ptr(c->p, o->off));
			pmemobj_free(&oid);
			c->r->fixed++;
		}
	}
}

int check_pool(struct kmfs_pool *p, const struct check_opts *o,
	       struct check_result *r)
{
	struct checker c = { .p = p, .o = o, .r = r };
	int rc;

	memset(r, 0, sizeof(*r));
	c.counts = calloc(p->total_pages ? p->total_pages : 1, sizeof(uint32_t));
	if (!c.counts)
		return -ENOMEM;
	rc = collect(&c);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < c.nobjs; i++) {
		if (c.objs[i].type != KMFS_T_INODE)
			continue;
		if (c.objs[i].size < sizeof(struct kmfs_inode)) {
			report(&c, "inode %#llx is too small", (unsigned long long)c.objs[i].off);
			continue;
		}
		check_inode(&c, &c.objs[i]);
	}
	walk_tree(&c);
	if (!r->fatal) {
		check_links(&c);
		check_pages(&c);
		if (!r->errors || o->repair)
			check_leaks(&c);
	}
out:
	free(c.counts);
	free(c.objs);
	free(c.queue);
	return rc;
}
