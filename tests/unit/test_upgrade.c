// SPDX-License-Identifier: BSD-3-Clause
/* test_upgrade -- a format 1.x pool brought to 2.0 (fsck.kmemfs --upgrade):
 * keyed, every directory rehashed, every name and link kept, fsck clean. */
#include <errno.h>

#include "helpers.h"
#include "check.h"
#include "dir.h"
#include "upgrade.h"

#define NDIRS 4
#define PER_DIR 3000

static const uint8_t no_key[16];

static struct kmfs_dirtable *table_of(struct kmfs_fs *fs, uint64_t ino)
{
	return pool_ptr(&fs->pool, fs_inode(fs, fs_ino_off(fs, ino))->data_off);
}

/* mount T again after an offline step left it unmounted */
static void mount_again(struct tpool *t)
{
	struct fs_opts fo = { .lend = true };
	assert_int_equal(fs_mount(&t->fs, t->path, &fo), 0);
}

static int count_fn(void *arg, const char *name, size_t len, uint64_t ino,
		    unsigned type, uint64_t next)
{
	(*(uint64_t *)arg)++;
	return 0;
}

static void test_upgrade_keys_and_rehashes_every_directory(void **state)
{
	struct tpool *t = *state;
	struct kmfs_fs *fs = &t->fs;
	struct check_opts co = { .quiet = true };
	struct check_result cr;
	struct upgrade_result ur;
	struct kmfs_pool p;
	uint64_t dirs[NDIRS], off, last = 0, objects, inodes;
	char name[64];

	tpool_make_format1(t);
	for (int d = 0; d < NDIRS; d++) {
		snprintf(name, sizeof(name), "dir%d", d);
		assert_int_equal(fs_mkdir(fs, d ? dirs[d - 1] : FS_ROOT_INO, name, 0755,
					  &root, &dirs[d]), 0);
		assert_int_equal(table_of(fs, dirs[d])->hash_kind, KMFS_HASH_FNV);
		for (int i = 0; i < PER_DIR; i++) {
			snprintf(name, sizeof(name), "entry-%d-%d", d, i);
			assert_int_equal(fs_mknod(fs, dirs[d], name, S_IFREG | 0644, 0,
						  &root, &last), 0);
		}
	}
	/* a second name for the last file, in another directory */
	assert_int_equal(fs_link(fs, last, dirs[0], "hardlink", &off), 0);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	objects = cr.objects;
	inodes = cr.inodes;

	/* offline, as fsck.kmemfs --upgrade */
	fs_unmount(fs);
	memset(fs, 0, sizeof(*fs));
	assert_int_equal(pool_open(t->path, &p), 0);
	assert_int_equal(p.sb->major, 1);
	assert_int_equal(pool_upgrade(&p, &ur), 0);
	assert_true(ur.keyed);
	assert_int_equal(ur.rehashed, NDIRS + 1); /* and the root */
	assert_int_equal(ur.failed, 0);
	assert_int_equal(p.sb->major, KMFS_VERSION_MAJOR);
	assert_int_equal(p.sb->minor, KMFS_VERSION_MINOR);
	assert_memory_not_equal(p.sb->dir_key, no_key, sizeof(no_key));
	/* the same objects: the old tables and entries were freed */
	assert_int_equal(check_pool(&p, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	assert_int_equal(cr.objects, objects);
	assert_int_equal(cr.inodes, inodes);
	/* a second run finds nothing to do */
	assert_int_equal(pool_upgrade(&p, &ur), 0);
	assert_false(ur.keyed);
	assert_int_equal(ur.rehashed, 0);
	pool_close(&p);

	mount_again(t);
	assert_int_equal(table_of(fs, FS_ROOT_INO)->hash_kind, KMFS_HASH_SIPHASH);
	for (int d = 0; d < NDIRS; d++) {
		uint64_t seen = 0;

		assert_int_equal(table_of(fs, dirs[d])->hash_kind, KMFS_HASH_SIPHASH);
		for (int i = 0; i < PER_DIR; i++) {
			snprintf(name, sizeof(name), "entry-%d-%d", d, i);
			assert_int_equal(fs_lookup(fs, dirs[d], name, &off), 0);
		}
		assert_int_equal(fs_readdir(fs, dirs[d], 0, count_fn, &seen), 0);
		assert_int_equal(seen, PER_DIR + 2 + (d == 0) + (d < NDIRS - 1));
	}
	assert_int_equal(fs_lookup(fs, dirs[0], "hardlink", &off), 0);
	assert_int_equal(off, last);
	/* new directories are keyed too */
	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "new", 0755, &root, &off), 0);
	assert_int_equal(table_of(fs, off)->hash_kind, KMFS_HASH_SIPHASH);
}

/* an upgrade cut short after the key (a crash, a directory it could not
 * rebuild) leaves a sound 2.0 pool with FNV tables; a rerun finishes it */
static void test_upgrade_resumes_after_the_key(void **state)
{
	struct tpool *t = *state;
	struct kmfs_fs *fs = &t->fs;
	struct check_opts co = { .quiet = true };
	struct check_result cr;
	struct upgrade_result ur;
	struct kmfs_pool p;
	uint64_t dir, off;

	tpool_make_format1(t);
	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "d", 0755, &root, &dir), 0);
	assert_int_equal(fs_mknod(fs, dir, "f", S_IFREG | 0644, 0, &root, &off), 0);
	/* as if only the key had been written */
	fs->pool.sb->major = KMFS_VERSION_MAJOR;
	fs->pool.sb->minor = KMFS_VERSION_MINOR;
	memset(fs->pool.sb->dir_key, 0x5a, sizeof(fs->pool.sb->dir_key));
	pool_persist(&fs->pool, fs->pool.sb, sizeof(*fs->pool.sb));
	assert_int_equal(tpool_remount(t), 0);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	assert_int_equal(fs_lookup(fs, dir, "f", &off), 0);

	fs_unmount(fs);
	memset(fs, 0, sizeof(*fs));
	assert_int_equal(pool_open(t->path, &p), 0);
	assert_int_equal(pool_upgrade(&p, &ur), 0);
	assert_false(ur.keyed);
	assert_int_equal(ur.rehashed, 2);
	assert_int_equal(check_pool(&p, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	pool_close(&p);
	mount_again(t);
	assert_int_equal(fs_lookup(fs, dir, "f", &off), 0);
	assert_int_equal(table_of(fs, dir)->hash_kind, KMFS_HASH_SIPHASH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_upgrade_keys_and_rehashes_every_directory,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_resumes_after_the_key,
			tpool_setup_default, tpool_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
