// SPDX-License-Identifier: BSD-3-Clause
/* test_check -- the checker finds (and repairs) each corruption shown. */
#include <errno.h>

#include "helpers.h"
#include "check.h"
#include "dir.h"


/* a small tree: dir/file with data, a hard link, a symlink, an xattr */
static uint64_t populate(struct kmfs_fs *fs)
{
	static char data[50000];
	uint64_t d, f, l;
	struct membuf m = { (const unsigned char *)data };
	struct data_src src = { src_copy, &m, NULL };

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

static void test_check_mount_refuses_corruption(void **state)
{
	struct tpool *t = *state;
	struct kmfs_inode *ino = fs_inode(&t->fs, populate(&t->fs));

	ino->data_off = 12345 * 8; /* the extent map is gone */
	assert_int_not_equal(tpool_remount(t), 0);
	/* put it back together so teardown can unmount */
	memset(&t->fs, 0, sizeof(t->fs));
	struct pool_format_opts po = { .size = 128ull << 20, .force = true };
	assert_int_equal(pool_format(t->path, &po), 0);
	struct fs_opts fo = { .lend = true };
	assert_int_equal(fs_mount(&t->fs, t->path, &fo), 0);
}

static void test_check_newer_format_refused(void **state)
{
	struct tpool *t = *state;
	struct kmfs_super *sb = t->fs.pool.sb;
	struct kmfs_pool p;

	fs_unmount(&t->fs);
	memset(&t->fs, 0, sizeof(t->fs));
	assert_int_equal(pool_open(t->path, &p), 0);
	p.sb->major = KMFS_VERSION_MAJOR + 1;
	pool_persist(&p, &p.sb->major, sizeof(p.sb->major));
	pool_close(&p);
	assert_int_equal(pool_open(t->path, &p), -EPROTONOSUPPORT);
	/* reformat so teardown has a filesystem to unmount */
	struct pool_format_opts po = { .size = 128ull << 20, .force = true };
	assert_int_equal(pool_format(t->path, &po), 0);
	struct fs_opts fo = { .lend = true };
	assert_int_equal(fs_mount(&t->fs, t->path, &fo), 0);
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
