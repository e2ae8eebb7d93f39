// SPDX-License-Identifier: BSD-3-Clause
/* test_check -- the checker finds (and repairs) each corruption shown. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>

#include "helpers.h"
#include "check.h"
#include "dir.h"
#include "txn.h"


/* a small tree: dir/file with data, a hard link, a symlink, an xattr */
static uint64_t populate(struct kmfs_fs *fs)
{
	static char data[50000];
	uint64_t d, f, l;
	struct membuf m = { (const unsigned char *)data };
	struct data_src src = { src_copy, &m, NULL, NULL };

	memset(data, 'x', sizeof(data));
	assert_int_equal(fs_mkdir(fs, 1, "dir", 0755, &root, &d), 0);
	assert_int_equal(fs_mknod(fs, d, "file", S_IFREG | 0644, 0, &root, &f), 0);
	assert_int_equal(fs_write(fs, f, 0, sizeof(data), &src, false), sizeof(data));
	assert_int_equal(fs_link(fs, f, 1, "hard", &l), 0);
	assert_int_equal(fs_symlink(fs, 1, "sym", "dir/file", &root, &l), 0);
	assert_int_equal(fs_setxattr(fs, f, "user.k", "v", 1, 0), 0);
	return f;
}

static struct check_result run(struct kmfs_pool *p, bool repair)
{
	struct check_opts o = { .repair = repair, .quiet = true };
	struct check_result r;
	assert_int_equal(check_pool(p, &o, &r), 0);
	return r;
}

static void test_check_clean_pool(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	populate(fs);
	struct check_result r = run(&fs->pool, false);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.files, 1);
	assert_int_equal(r.dirs, 2);
}

static void test_check_link_count(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct kmfs_inode *ino = fs_inode(fs, populate(fs));

	ino->nlink = 5;
	struct check_result r = run(&fs->pool, false);
	assert_int_equal(r.errors, 1);
	r = run(&fs->pool, true);
	assert_int_equal(r.fixed, 1);
	assert_int_equal(ino->nlink, 2);
	assert_int_equal(run(&fs->pool, false).errors, 0);
}

static void test_check_page_refcount(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	populate(fs);
	fs->pool.refs[fs->pool.total_pages - 1] = 3; /* a page no file maps */
	struct check_result r = run(&fs->pool, true);
	assert_true(r.errors >= 1);
	assert_int_equal(r.fixed, r.errors);
	assert_int_equal(run(&fs->pool, false).errors, 0);
}

static void test_check_blocks_and_bad_pointer(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct kmfs_inode *ino = fs_inode(fs, populate(fs));

	ino->blocks += 1;
	assert_int_equal(run(&fs->pool, false).errors, 1);
	ino->blocks -= 1;
	ino->xattr_off += 8; /* no longer an object */
	assert_true(run(&fs->pool, false).errors >= 1);
}

static void test_check_lent_unit_with_data(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct kmfs_inode *ino = fs_inode(fs, populate(fs));
	struct kmfs_extent e;
	extern int emap_lookup(const struct kmfs_pool *, const struct kmfs_inode *,
			       uint64_t, struct kmfs_extent *);

	assert_int_equal(emap_lookup(&fs->pool, ino, 0, &e), 0);
	fs->pool.units[e.dpage / KMFS_UNIT_PAGES] = KMFS_UNIT_LENT;
	assert_int_equal(run(&fs->pool, false).errors, 1);
}

/* a new filesystem in T's pool file, mounted, so that teardown has one to
 * unmount after a test that damaged the pool beyond mounting */
static void mount_fresh(struct tpool *t)
{
	struct pool_format_opts po = { .size = 128ull << 20, .force = true };
	struct fs_opts fo = { .lend = true };

	assert_int_equal(pool_format(t->path, &po), 0);
	assert_int_equal(fs_mount(&t->fs, t->path, &fo), 0);
}

static void test_check_mount_refuses_corruption(void **state)
{
	struct tpool *t = *state;
	struct kmfs_inode *ino = fs_inode(&t->fs, populate(&t->fs));

	ino->data_off = 12345 * 8; /* the extent map is gone */
	assert_int_not_equal(tpool_remount(t), 0);
	/* put it back together so teardown can unmount */
	memset(&t->fs, 0, sizeof(t->fs));
	mount_fresh(t);
}

/* pool_open with what it printed on stderr in SAID */
static int open_saying(const char *path, struct kmfs_pool *p, char *said, size_t len)
{
	FILE *f = tmpfile();
	int saved = dup(2), rc;
	size_t n;

	assert_non_null(f);
	fflush(stderr);
	dup2(fileno(f), 2);
	rc = pool_open(path, p);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(f);
	n = fread(said, 1, len - 1, f);
	said[n] = 0;
	fclose(f);
	return rc;
}

/* past pool_open, which refuses the pool */
static void set_major(const char *path, uint16_t major)
{
	PMEMobjpool *pop = pmemobj_open(path, KMFS_LAYOUT);
	struct kmfs_super *sb;

	assert_non_null(pop);
	sb = pmemobj_direct(pmemobj_root(pop, sizeof(*sb)));
	sb->major = major;
	pmemobj_persist(pop, &sb->major, sizeof(sb->major));
	pmemobj_close(pop);
}

static void test_check_newer_format_refused(void **state)
{
	struct tpool *t = *state;
	struct kmfs_super *sb = t->fs.pool.sb;
	struct kmfs_pool p;
	char said[1024], want[PATH_MAX + 128];

	fs_unmount(&t->fs);
	memset(&t->fs, 0, sizeof(t->fs));
	assert_int_equal(pool_open(t->path, &p), 0);
	p.sb->major = KMFS_VERSION_MAJOR + 1;
	pool_persist(&p, &p.sb->major, sizeof(p.sb->major));
	pool_close(&p);
	assert_int_equal(open_saying(t->path, &p, said, sizeof(said)), -EPROTONOSUPPORT);
	snprintf(want, sizeof(want), "%s: made by a newer kmemfs (format %d.%d, "
		 "this one reads %d.x)\n", t->path, KMFS_VERSION_MAJOR + 1,
		 KMFS_VERSION_MINOR, KMFS_VERSION_MAJOR);
	assert_non_null(strstr(said, want));
	/* and one older than any this kmemfs reads */
	set_major(t->path, KMFS_VERSION_MAJOR_OLDEST - 1);
	assert_int_equal(open_saying(t->path, &p, said, sizeof(said)), -EPROTONOSUPPORT);
	assert_non_null(strstr(said, "unknown format version"));
	/* reformat so teardown has a filesystem to unmount */
	mount_fresh(t);
	(void)sb;
}

/* the directory entry NAME of DIR_INO, to damage */
static struct kmfs_dirent *entry_of(struct kmfs_fs *fs, uint64_t dir_ino,
				    const char *name)
{
	struct kmfs_inode *dir = fs_inode(fs, fs_ino_off(fs, dir_ino));
	struct dir_entry de;

	assert_int_equal(dir_lookup(&fs->pool, dir, name, strlen(name), &de), 0);
	return (struct kmfs_dirent *)(de.name - offsetof(struct kmfs_dirent, name));
}

/* repair is a fixed point: one more check finds nothing */
static void assert_repaired(struct kmfs_fs *fs)
{
	struct check_result r = run(&fs->pool, true);
	assert_true(r.errors >= 1);
	assert_false(r.fatal);
	assert_int_equal(r.fixed, r.errors);
	assert_int_equal(run(&fs->pool, false).errors, 0);
}

/* /lost+found/#<inode> of inode OFF, or 0 */
static uint64_t in_lost_found(struct kmfs_fs *fs, uint64_t off)
{
	uint64_t lf, found;
	char name[64];

	if (fs_lookup(fs, 1, "lost+found", &lf) != 0)
		return 0;
	snprintf(name, sizeof(name), "#%llu", (unsigned long long)off);
	return fs_lookup(fs, fs_ino(fs, lf), name, &found) == 0 ? found : 0;
}

static void test_check_repair_broken_extent_map(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t f = populate(fs), sym;
	struct kmfs_inode *ino = fs_inode(fs, f);

	ino->data_off += 8; /* no longer an object */
	assert_true(run(&fs->pool, false).errors >= 1);
	assert_repaired(fs);
	/* the file stays, empty; the rest of the tree is untouched */
	assert_int_equal(ino->data_off, 0);
	assert_int_equal(ino->size, 0);
	assert_int_equal(ino->blocks, 0);
	assert_int_equal(fs_lookup(fs, 1, "sym", &sym), 0);
	assert_int_equal(fs_lookup(fs, 1, "hard", &sym), 0);
}

static void test_check_repair_broken_xattrs(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct kmfs_inode *ino = fs_inode(fs, populate(fs));
	struct kmfs_xattrs *x = pool_ptr(&fs->pool, ino->xattr_off);

	x->used = 1u << 30; /* overruns its object */
	assert_true(run(&fs->pool, false).errors >= 1);
	assert_repaired(fs);
	assert_int_equal(ino->xattr_off, 0);
	assert_int_equal(ino->size, 50000); /* the data stays */
}

/* a damaged entry: the inodes that directory named go to /lost+found */
static void test_check_repair_to_lost_found(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static const char text[] = "only copy of this file";
	unsigned char out[sizeof(text)];
	struct readbuf rb = { out, 0 };
	uint64_t d, f, sub, leaf, got;

	populate(fs);
	assert_int_equal(fs_mkdir(fs, 1, "lonely", 0755, &root, &d), 0);
	assert_int_equal(fs_mknod(fs, d, "only", S_IFREG | 0600, 0, &root, &f), 0);
	assert_int_equal(write_mem(fs, f, 0, text, sizeof(text), false), sizeof(text));
	assert_int_equal(fs_mkdir(fs, d, "sub", 0755, &root, &sub), 0);
	assert_int_equal(fs_mknod(fs, sub, "leaf", S_IFREG | 0600, 0, &root, &leaf), 0);
	entry_of(fs, d, "only")->name[0] = '/';
	entry_of(fs, d, "sub")->name[0] = '/';
	assert_true(run(&fs->pool, false).errors >= 1);
	assert_repaired(fs);
	/* both are kept: the file with its data, the directory with its tree */
	assert_int_equal(in_lost_found(fs, fs_ino_off(fs, f)), f);
	assert_int_equal(in_lost_found(fs, fs_ino_off(fs, sub)), sub);
	assert_int_equal(fs_lookup(fs, sub, "leaf", &got), 0);
	assert_int_equal(got, leaf);
	assert_int_equal(in_lost_found(fs, fs_ino_off(fs, leaf)), 0);
	assert_int_equal(fs_lookup(fs, 1, "lost+found", &got), 0);
	assert_int_equal(fs_inode(fs, sub)->parent_off, fs_ino_off(fs, got));
	assert_int_equal(fs_inode(fs, fs_ino_off(fs, got))->nlink, 3);
	assert_int_equal(fs_inode(fs, f)->nlink, 1);
	assert_int_equal(fs_read(fs, f, 0, sizeof(out), reply, &rb), 0);
	assert_memory_equal(out, text, sizeof(text));
}

/* /lost+found taken by a file: the lost go to lost+found.1, none freed */
static void test_check_repair_lost_found_name_taken(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t taken, d, sub, leaf, lf, got;

	assert_int_equal(fs_mknod(fs, 1, "lost+found", S_IFREG | 0600, 0, &root, &taken), 0);
	assert_int_equal(fs_mkdir(fs, 1, "d", 0755, &root, &d), 0);
	assert_int_equal(fs_mkdir(fs, d, "sub", 0755, &root, &sub), 0);
	assert_int_equal(fs_mknod(fs, sub, "leaf", S_IFREG | 0600, 0, &root, &leaf), 0);
	entry_of(fs, d, "sub")->name[0] = '/';
	assert_repaired(fs);
	assert_int_equal(fs_lookup(fs, 1, "lost+found", &got), 0);
	assert_int_equal(got, taken);
	assert_int_equal(fs_lookup(fs, 1, "lost+found.1", &lf), 0);
	char name[64];
	snprintf(name, sizeof(name), "#%llu", (unsigned long long)fs_ino_off(fs, sub));
	assert_int_equal(fs_lookup(fs, lf, name, &got), 0);
	assert_int_equal(fs_lookup(fs, sub, "leaf", &got), 0);
	assert_int_equal(got, leaf);
}

/* a rebuilt directory that then grows (its table moves) is not heap damage */
static void test_check_repair_rebuilt_dir_grows(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t lf, f, d, g;
	char name[32];

	assert_int_equal(fs_mkdir(fs, 1, "lost+found", 0700, &root, &lf), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(fs_mknod(fs, lf, name, S_IFREG | 0600, 0, &root, &f), 0);
	}
	/* and more to reconnect into it than its table holds */
	assert_int_equal(fs_mkdir(fs, 1, "d", 0755, &root, &d), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "g%d", i);
		assert_int_equal(fs_mknod(fs, d, name, S_IFREG | 0600, 0, &root, &g), 0);
	}
	struct kmfs_inode *li = fs_inode(fs, fs_ino_off(fs, lf));
	struct kmfs_dirtable *t = pool_ptr(&fs->pool, li->data_off);
	struct kmfs_dirent *e = pool_ptr(&fs->pool, t->head_off);
	e = pool_ptr(&fs->pool, ((struct kmfs_dirent *)pool_ptr(&fs->pool, e->next_off))->next_off);
	e->name[0] = '/';
	t = pool_ptr(&fs->pool, fs_inode(fs, fs_ino_off(fs, d))->data_off);
	((struct kmfs_dirent *)pool_ptr(&fs->pool, t->head_off))->name[0] = '/';
	assert_repaired(fs);
	assert_int_equal(fs_lookup(fs, 1, "lost+found", &g), 0);
	assert_int_equal(g, lf);
}

/* damaged file type bits come back from what the inode holds */
static void test_check_repair_file_type(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t f = populate(fs), sym, d;
	struct kmfs_inode *fi = fs_inode(fs, f);
	unsigned char out[16];
	struct readbuf rb = { out, 0 };

	assert_int_equal(fs_lookup(fs, 1, "sym", &sym), 0);
	assert_int_equal(fs_lookup(fs, 1, "dir", &d), 0);
	fi->mode = 0644;                        /* no type at all */
	fs_inode(fs, sym)->mode = 0170777;      /* no such type */
	fs_inode(fs, d)->mode = 0130755;
	assert_true(run(&fs->pool, false).errors >= 3);
	assert_repaired(fs);
	assert_int_equal(fi->mode, S_IFREG | 0644);
	assert_int_equal(fs_inode(fs, sym)->mode, S_IFLNK | 0777);
	assert_int_equal(fs_inode(fs, d)->mode, S_IFDIR | 0755);
	assert_int_equal(fs_read(fs, f, 0, sizeof(out), reply, &rb), 0);
	assert_int_equal(out[0], 'x');
}

/* a file type bit flipped to another valid type: the type comes back
 * from what the inode holds, and nothing is dropped */
static void test_check_type_flip_keeps_data(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t f = populate(fs), d, got;
	struct kmfs_inode *fi = fs_inode(fs, f);
	static const uint32_t wrong[] = { S_IFLNK, S_IFDIR, S_IFCHR };
	unsigned char out[16];

	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		struct readbuf rb = { out, 0 };
		fi->mode = wrong[i] | 0644;
		assert_true(run(&fs->pool, false).errors >= 1);
		assert_repaired(fs);
		assert_int_equal(fi->mode, S_IFREG | 0644);
		assert_int_equal(fi->size, 50000);
		assert_int_equal(fs_read(fs, f, 0, sizeof(out), reply, &rb), 0);
		assert_int_equal(out[0], 'x');
	}
	/* a directory that looks like a file keeps its entries */
	assert_int_equal(fs_lookup(fs, 1, "dir", &d), 0);
	fs_inode(fs, d)->mode = S_IFREG | 0755;
	assert_repaired(fs);
	assert_int_equal(fs_inode(fs, d)->mode, S_IFDIR | 0755);
	assert_int_equal(fs_lookup(fs, d, "file", &got), 0);
	assert_int_equal(got, f);
}

/* the root's type, its "..", and an entry naming it */
static void test_check_root_damage(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t f = populate(fs), d, x, got;
	uint64_t root_off = fs->pool.sb->root_off;
	struct kmfs_inode *ri = pool_ptr(&fs->pool, root_off);

	ri->mode = S_IFREG | 0755;
	assert_true(run(&fs->pool, false).errors >= 1);
	assert_repaired(fs);
	assert_int_equal(ri->mode, S_IFDIR | 0755);
	assert_int_equal(fs_lookup(fs, 1, "dir", &d), 0);
	assert_int_equal(fs_lookup(fs, d, "file", &got), 0);
	assert_int_equal(got, f);

	ri->parent_off = 12345 * 8;
	assert_int_equal(run(&fs->pool, false).errors, 1);
	assert_repaired(fs);
	assert_int_equal(ri->parent_off, root_off);

	/* one entry naming the root goes; the rest of the tree stays */
	assert_int_equal(fs_mknod(fs, d, "x", S_IFREG | 0644, 0, &root, &x), 0);
	entry_of(fs, d, "x")->ino_off = root_off;
	assert_true(run(&fs->pool, false).errors >= 1);
	assert_repaired(fs);
	assert_int_equal(fs_lookup(fs, 1, "dir", &got), 0);
	assert_int_equal(got, d);
	assert_int_equal(fs_lookup(fs, d, "file", &got), 0);
	assert_int_equal(got, f);
	assert_int_equal(fs_lookup(fs, d, "x", &got), -ENOENT);
	assert_int_equal(in_lost_found(fs, fs_ino_off(fs, x)), x);
	assert_int_equal(in_lost_found(fs, fs_ino_off(fs, d)), 0);
	assert_int_equal(fs_inode(fs, d)->parent_off, root_off);
}

/* a directory cut off from the root goes to /lost+found whole: what it
 * names stays in it, and -n counts those names */
static void test_check_cut_off_subtree_stays_whole(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t d, f, s, g, got;

	assert_int_equal(fs_mkdir(fs, 1, "d", 0755, &root, &d), 0);
	assert_int_equal(fs_mknod(fs, d, "f", S_IFREG | 0644, 0, &root, &f), 0);
	assert_int_equal(fs_mkdir(fs, d, "s", 0755, &root, &s), 0);
	assert_int_equal(fs_mknod(fs, s, "g", S_IFREG | 0644, 0, &root, &g), 0);
	entry_of(fs, 1, "d")->name[0] = '/';
	struct check_result r = run(&fs->pool, false);
	assert_true(r.errors >= 1);
	assert_repaired(fs);
	assert_int_equal(in_lost_found(fs, fs_ino_off(fs, d)), d);
	assert_int_equal(fs_lookup(fs, d, "f", &got), 0);
	assert_int_equal(got, f);
	assert_int_equal(fs_lookup(fs, d, "s", &got), 0);
	assert_int_equal(got, s);
	assert_int_equal(fs_lookup(fs, s, "g", &got), 0);
	assert_int_equal(got, g);
	assert_int_equal(in_lost_found(fs, fs_ino_off(fs, f)), 0);
	assert_int_equal(in_lost_found(fs, fs_ino_off(fs, s)), 0);
	assert_int_equal(in_lost_found(fs, fs_ino_off(fs, g)), 0);
	assert_int_equal(fs_inode(fs, f)->nlink, 1);
	assert_int_equal(fs_inode(fs, g)->nlink, 1);
}

/* A removed directory (no name, no link) that still names entries: rmdir
 * empties a directory first, and a mount would free its table only,
 * leaving the entries behind. Found, and put in /lost+found whole. */
static void test_check_removed_dir_naming_entries(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t d, f1, f2, got;
	struct kmfs_inode *rootino = fs_inode(fs, fs_ino_off(fs, 1));
	struct txn t;

	assert_int_equal(fs_mkdir(fs, 1, "d", 0755, &root, &d), 0);
	assert_int_equal(fs_mknod(fs, d, "f1", S_IFREG | 0644, 0, &root, &f1), 0);
	assert_int_equal(fs_mknod(fs, d, "f2", S_IFREG | 0644, 0, &root, &f2), 0);
	txn_init(&t, &fs->pages);
	assert_int_equal(txn_begin(&t), 0);
	assert_int_equal(dir_remove(&t, rootino, "d", 1), 0);
	assert_int_equal(TXADD(rootino, nlink), 0);
	rootino->nlink--;
	assert_int_equal(TXADD(fs_inode(fs, d), nlink), 0);
	fs_inode(fs, d)->nlink = 0;
	assert_int_equal(txn_end(&t, 0), 0);

	struct check_result r = run(&fs->pool, false);
	assert_true(r.errors >= 1);
	assert_int_equal(r.orphans, 0);
	assert_non_null(strstr(r.first, "still names entries"));
	assert_repaired(fs);
	assert_int_equal(in_lost_found(fs, fs_ino_off(fs, d)), d);
	assert_int_equal(fs_lookup(fs, d, "f1", &got), 0);
	assert_int_equal(got, f1);
	assert_int_equal(fs_lookup(fs, d, "f2", &got), 0);
	assert_int_equal(got, f2);
	assert_int_equal(fs_inode(fs, d)->nlink, 2);
	assert_int_equal(fs_inode(fs, f1)->nlink, 1);
}

/* An object no one names is garbage whatever its type says, also when
 * damage made it look like the superblock or an arena */
static void test_check_stray_super_and_arena_objects(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint32_t types[] = { KMFS_T_SUPER, KMFS_T_ARENA };
	PMEMoid oid;

	for (size_t i = 0; i < 2; i++) {
		uint64_t objects = run(&fs->pool, false).objects;

		assert_int_equal(pmemobj_alloc(fs->pool.pop, &oid, 64, types[i],
					       NULL, NULL), 0);
		struct check_result r = run(&fs->pool, false);
		assert_int_equal(r.errors, 1);
		assert_non_null(strstr(r.first, "is not referenced"));
		assert_repaired(fs);
		assert_int_equal(run(&fs->pool, false).objects, objects);
	}
}

/* fields the daemon relies on, out of their range, are found */
static void test_check_ranges(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t f = populate(fs), e_ino;
	struct kmfs_inode *fi = fs_inode(fs, f);
	struct stat at = { .st_size = 0 }, o;

	/* a size stat would show negative */
	fi->size = 1ull << 63;
	assert_int_equal(run(&fs->pool, false).errors, 1);
	assert_repaired(fs);
	assert_int_equal(fi->size, 13 * 4096);
	/* an extent past the largest file */
	struct kmfs_emap_index *idx = pool_ptr(&fs->pool, fi->data_off);
	struct kmfs_emap_leaf *l = pool_ptr(&fs->pool, idx->ent[0].leaf_off);
	l->ext[l->n - 1].fpage = KMFS_FILE_PAGES_MAX - 1;
	assert_true(run(&fs->pool, false).errors >= 1);
	assert_repaired(fs);
	/* a leaf with room for none: growing it would never end */
	assert_int_equal(fs_mknod(fs, 1, "e", S_IFREG | 0644, 0, &root, &e_ino), 0);
	assert_int_equal(write_mem(fs, e_ino, 0, "data", 4, false), 4);
	assert_int_equal(fs_setattr(fs, e_ino, &at, FS_SET_SIZE, &o), 0);
	struct kmfs_inode *ei = fs_inode(fs, e_ino);
	assert_int_not_equal(ei->data_off, 0);
	idx = pool_ptr(&fs->pool, ei->data_off);
	l = pool_ptr(&fs->pool, idx->ent[0].leaf_off);
	assert_int_equal(l->n, 0);
	l->cap = 0;
	assert_int_equal(run(&fs->pool, false).errors, 1);
	assert_repaired(fs);
	assert_int_equal(write_mem(fs, e_ino, 0, "data", 4, false), 4);
	/* xattrs whose used bytes are not their entries' */
	struct kmfs_xattrs *x = pool_ptr(&fs->pool, fi->xattr_off);
	x->used -= 1;
	assert_int_equal(run(&fs->pool, false).errors, 1);
	assert_repaired(fs);
	assert_int_equal(fi->xattr_off, 0);
}

/* extent flags the pool's format does not define are cleared, the pages
 * kept (they read as they are); in a format 2 pool that includes
 * KMFS_EXT_UNWRITTEN, which only format 3 has */
static void test_check_extent_flags(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct kmfs_inode *fi = fs_inode(fs, populate(fs));
	struct kmfs_emap_index *idx = pool_ptr(&fs->pool, fi->data_off);
	struct kmfs_emap_leaf *l = pool_ptr(&fs->pool, idx->ent[0].leaf_off);
	uint64_t blocks = fi->blocks;
	struct check_result r;

	l->ext[0].flags = 0x80 | KMFS_EXT_UNWRITTEN;
	assert_int_equal(run(&fs->pool, false).errors, 1);
	r = run(&fs->pool, true);
	assert_int_equal(r.errors, 1);
	assert_int_equal(r.fixed, 1);
	assert_int_equal(l->ext[0].flags, KMFS_EXT_UNWRITTEN);
	assert_int_equal(run(&fs->pool, false).errors, 0);

	fs->pool.sb->major = 2;
	assert_int_equal(run(&fs->pool, false).errors, 1);
	assert_int_equal(run(&fs->pool, true).fixed, 1);
	assert_int_equal(l->ext[0].flags, 0);
	assert_int_equal(run(&fs->pool, false).errors, 0);
	fs->pool.sb->major = KMFS_VERSION_MAJOR;
	assert_int_equal(fi->blocks, blocks);
}

/* an attribute flag no kmemfs defines: reported, and only it cleared */
static void test_check_attr_flags(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct kmfs_inode *fi = fs_inode(fs, populate(fs));
	struct check_result r;

	fi->attr_flags = KMFS_AF_IMMUTABLE | KMFS_AF_NODUMP;
	assert_int_equal(run(&fs->pool, false).errors, 0);
	fi->attr_flags |= 0x4000;
	assert_int_equal(run(&fs->pool, false).errors, 1);
	assert_int_equal(fi->attr_flags, KMFS_AF_IMMUTABLE | KMFS_AF_NODUMP | 0x4000);
	r = run(&fs->pool, true);
	assert_int_equal(r.fixed, 1);
	assert_int_equal(fi->attr_flags, KMFS_AF_IMMUTABLE | KMFS_AF_NODUMP);
	assert_int_equal(run(&fs->pool, false).errors, 0);
}

/* an inode's handle tag that is not its own is mended; 0 (an inode from
 * before tags) is not an error */
static void test_check_handle_tag(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t off = populate(fs);
	struct kmfs_inode *fi = fs_inode(fs, off);
	uint64_t tag = fi->handle_tag;
	struct check_result r;

	assert_int_not_equal(tag, 0);
	assert_int_equal(tag, pool_inode_tag(&fs->pool, off, fi->generation));
	fi->handle_tag = 0;
	assert_int_equal(run(&fs->pool, false).errors, 0);
	fi->handle_tag = tag ^ 0x100;
	assert_int_equal(run(&fs->pool, false).errors, 1);
	assert_int_equal(fi->handle_tag, tag ^ 0x100);
	r = run(&fs->pool, true);
	assert_int_equal(r.fixed, 1);
	assert_int_equal(fi->handle_tag, tag);
	assert_int_equal(run(&fs->pool, false).errors, 0);
}

/* a bucket of one directory that points into another's list */
static void test_check_foreign_bucket(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t a, b, f;
	char name[16];

	assert_int_equal(fs_mkdir(fs, 1, "a", 0755, &root, &a), 0);
	assert_int_equal(fs_mkdir(fs, 1, "b", 0755, &root, &b), 0);
	assert_int_equal(fs_mknod(fs, a, "only", S_IFREG | 0644, 0, &root, &f), 0);
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		assert_int_equal(fs_mknod(fs, b, name, S_IFREG | 0644, 0, &root, &f), 0);
	}
	struct kmfs_dirtable *ta = pool_ptr(&fs->pool, fs_inode(fs, a)->data_off);
	struct kmfs_dirtable *tb = pool_ptr(&fs->pool, fs_inode(fs, b)->data_off);
	bool done = false;
	for (uint64_t off = tb->head_off; off && !done;) {
		struct kmfs_dirent *e = pool_ptr(&fs->pool, off);
		uint64_t bk = e->cookie >> (KMFS_COOKIE_BITS - ta->bits);
		if (!ta->buckets[bk]) {
			ta->buckets[bk] = off;
			done = true;
		}
		off = e->next_off;
	}
	assert_true(done);
	assert_true(run(&fs->pool, false).errors >= 1);
	assert_repaired(fs);
	assert_int_equal(fs_lookup(fs, a, "only", &f), 0);
}

/* two arenas over the same pages: the pool is refused */
static void test_check_overlapping_arenas_refused(void **state)
{
	struct tpool *t = *state;
	struct kmfs_pool p;

	fs_unmount(&t->fs);
	memset(&t->fs, 0, sizeof(t->fs));
	assert_int_equal(pool_open(t->path, &p), 0);
	struct kmfs_super *sb = p.sb;
	assert_int_equal(sb->narenas, 1);
	uint64_t n = sb->arenas[0].nunits, half = n / 2;
	sb->arenas[1] = sb->arenas[0]; /* its second half on the first's pages */
	sb->arenas[0].nunits = half;
	sb->arenas[1].first_page = half * KMFS_UNIT_PAGES;
	sb->arenas[1].nunits = n - half;
	sb->narenas = 2;
	pool_persist(&p, sb, sizeof(*sb));
	pool_close(&p);
	assert_int_equal(pool_open(t->path, &p), -EUCLEAN);
	mount_fresh(t);
}

/* an arena off the unit phase, or a phase that is no page offset: refused */
static void test_check_unit_phase_refused(void **state)
{
	struct tpool *t = *state;
	struct kmfs_pool p;
	const uint64_t bad[] = { 2u << 20, KMFS_UNIT_SIZE, 4096 + 512, 0 };
	off_t at;
	int fd;

	fs_unmount(&t->fs);
	memset(&t->fs, 0, sizeof(t->fs));
	assert_int_equal(pool_open(t->path, &p), 0);
	assert_int_equal(p.sb->unit_phase, 0); /* a pool file's */
	assert_int_equal(p.sb->arenas[0].data_off % KMFS_UNIT_SIZE, 0);
	assert_int_equal(p.sb->minor, KMFS_VERSION_MINOR);
	at = (char *)&p.sb->unit_phase - p.base; /* file offset = pool offset */
	pool_close(&p);
	fd = open(t->path, O_RDWR);
	assert_true(fd >= 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(pwrite(fd, &bad[i], sizeof(bad[i]), at), sizeof(bad[i]));
		assert_int_equal(pool_open(t->path, &p), bad[i] ? -EUCLEAN : 0);
		if (!bad[i])
			pool_close(&p); /* the last, the right one, opens again */
	}
	close(fd);
	mount_fresh(t);
}

/* a superblock pointer moved off its object (into the data, the heap,
 * libpmemobj's own header, onto another object) is refused with a
 * message: asked about such an offset, libpmemobj crashes or divides by
 * zero (both seen with the root inode 1 MiB further on) */
static void test_check_superblock_pointers_astray_refused(void **state)
{
	struct tpool *t = *state;
	struct kmfs_pool p;
	off_t at[4];
	uint64_t good[4];
	int fd;

	fs_unmount(&t->fs);
	memset(&t->fs, 0, sizeof(t->fs));
	assert_int_equal(pool_open(t->path, &p), 0);
	uint64_t *ptr[4] = { &p.sb->root_off, &p.sb->refs_off, &p.sb->units_off,
			     &p.sb->arenas[0].obj_off };
	for (int i = 0; i < 4; i++) {
		at[i] = (char *)ptr[i] - p.base; /* file offset = pool offset */
		good[i] = *ptr[i];
	}
	const uint64_t bad[] = {
		4096, 8192, good[0] + (1u << 20), good[0] - (1u << 20), good[0] + 16,
		good[0] - 64, p.sb->arenas[0].data_off + (64u << 20),
		p.sb->arenas[0].data_off, good[1], good[0], good[3] + 4096,
	};
	pool_close(&p);
	fd = open(t->path, O_RDWR);
	assert_true(fd >= 0);
	for (int i = 0; i < 4; i++) {
		for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			if (bad[j] == good[i])
				continue;
			assert_int_equal(pwrite(fd, &bad[j], 8, at[i]), 8);
			assert_int_equal(pool_open(t->path, &p), -EUCLEAN);
		}
		assert_int_equal(pwrite(fd, &good[i], 8, at[i]), 8);
		assert_int_equal(pool_open(t->path, &p), 0);
		pool_close(&p);
	}
	close(fd);
	mount_fresh(t);
}

/* a data pointer naming another inode's live object is stale, not a
 * flipped type bit: the other inode keeps its data or entries */
static void test_check_crosslinked_data_is_not_a_type(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t d, f, c1, got;
	unsigned char out[16];
	struct readbuf rb = { out, 0 };

	assert_int_equal(fs_mkdir(fs, 1, "d", 0755, &root, &d), 0);
	assert_int_equal(fs_mknod(fs, 1, "f", S_IFREG | 0644, 0, &root, &f), 0);
	assert_int_equal(write_mem(fs, f, 0, "xxxxxxxx", 8, false), 8);
	assert_true(fs_ino_off(fs, d) < fs_ino_off(fs, f)); /* checked first */
	fs_inode(fs, d)->data_off = fs_inode(fs, f)->data_off;
	for (int i = 0; i < 3; i++)
		run(&fs->pool, true);
	assert_int_equal(run(&fs->pool, false).errors, 0);
	assert_int_equal(fs_inode(fs, f)->size, 8);
	assert_int_equal(fs_read(fs, f, 0, 8, reply, &rb), 0);
	assert_memory_equal(out, "xxxxxxxx", 8);
	/* and a file naming a directory's table */
	assert_int_equal(fs_mknod(fs, 1, "g", S_IFREG | 0644, 0, &root, &f), 0);
	assert_int_equal(fs_mkdir(fs, 1, "e", 0755, &root, &d), 0);
	assert_int_equal(fs_mknod(fs, d, "child", S_IFREG | 0644, 0, &root, &c1), 0);
	fs_inode(fs, f)->data_off = fs_inode(fs, d)->data_off;
	for (int i = 0; i < 3; i++)
		run(&fs->pool, true);
	assert_int_equal(run(&fs->pool, false).errors, 0);
	assert_int_equal(fs_lookup(fs, d, "child", &got), 0);
	assert_int_equal(got, c1);
	assert_int_equal(fs_inode(fs, f)->mode & S_IFMT, S_IFREG);
}

/* a cut-off directory that a later cut-off subtree names is walked once:
 * the repair ends, with its entries */
static void test_check_cut_off_top_walked_once(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t x, y, g, got;

	assert_int_equal(fs_mkdir(fs, 1, "y", 0755, &root, &y), 0);
	assert_int_equal(fs_mknod(fs, y, "g", S_IFREG | 0644, 0, &root, &g), 0);
	assert_int_equal(fs_mkdir(fs, 1, "x", 0755, &root, &x), 0);
	assert_int_equal(fs_rename(fs, 1, "y", x, "y", 0, &root), 0);
	assert_true(fs_ino_off(fs, y) < fs_ino_off(fs, x));
	entry_of(fs, 1, "x")->name[0] = '/';
	fs_inode(fs, y)->parent_off = fs->pool.sb->root_off; /* a wrong ".." */
	assert_repaired(fs);
	assert_int_equal(fs_lookup(fs, y, "g", &got), 0);
	assert_int_equal(got, g);
}

/* a size past the largest file on a file that maps the last page */
static void test_check_size_fix_stays_in_range(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t f;

	assert_int_equal(fs_mknod(fs, 1, "big", S_IFREG | 0644, 0, &root, &f), 0);
	assert_int_equal(fs_fallocate(fs, f, FALLOC_FL_KEEP_SIZE,
				      (1ull << 63) - 4096, 4096), 0);
	assert_int_equal(run(&fs->pool, false).errors, 0);
	fs_inode(fs, f)->size = UINT64_MAX;
	assert_repaired(fs);
	assert_int_equal(fs_inode(fs, f)->size, KMFS_FILE_SIZE_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_check_clean_pool,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_link_count,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_page_refcount,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_blocks_and_bad_pointer,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_lent_unit_with_data,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_mount_refuses_corruption,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_newer_format_refused,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_repair_broken_extent_map,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_repair_broken_xattrs,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_repair_to_lost_found,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_repair_lost_found_name_taken,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_repair_rebuilt_dir_grows,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_repair_file_type,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_type_flip_keeps_data,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_root_damage,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_cut_off_subtree_stays_whole,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_removed_dir_naming_entries,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_stray_super_and_arena_objects,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_ranges,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_extent_flags,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_foreign_bucket,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_unit_phase_refused,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_overlapping_arenas_refused,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_crosslinked_data_is_not_a_type,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_cut_off_top_walked_once,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_attr_flags,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_handle_tag,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_superblock_pointers_astray_refused,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_check_size_fix_stays_in_range,
			tpool_setup_default, tpool_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
