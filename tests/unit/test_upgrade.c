// SPDX-License-Identifier: BSD-3-Clause
/* test_upgrade -- a format 1.x pool brought to this format (fsck.kmemfs
 * --upgrade): keyed, every directory rehashed, every name and link kept,
 * fsck clean; a 2.x pool: the version, and fallocate's unwritten extents
 * from then on. */
#include <errno.h>
#include <fcntl.h>

#include "emap.h"

#include "helpers.h"
#include "check.h"
#include "dir.h"
#include "upgrade.h"

/* tx_alloc is linked wrapped (-Wl,--wrap=tx_alloc): the allocation
 * number fail_alloc_at (counted from 1 after fail_alloc_count is reset)
 * fails as a full metadata heap would */
uint64_t __real_tx_alloc(size_t size, unsigned type, bool zero);
static unsigned fail_alloc_at, alloc_count;
uint64_t __wrap_tx_alloc(size_t size, unsigned type, bool zero)
{
	if (fail_alloc_at && ++alloc_count == fail_alloc_at)
		return 0;
	return __real_tx_alloc(size, type, zero);
}

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

/* fsck.kmemfs --upgrade's part, offline: T unmounted, its pool upgraded
 * and checked clean, then mounted again; returns what the check found */
static struct check_result upgrade_offline(struct tpool *t, struct upgrade_result *ur)
{
	struct check_opts co = { .quiet = true };
	struct check_result cr;
	struct kmfs_pool p;

	fs_unmount(&t->fs);
	memset(&t->fs, 0, sizeof(t->fs));
	assert_int_equal(pool_open(t->path, &p), 0);
	assert_int_equal(pool_upgrade(&p, ur), 0);
	assert_int_equal(check_pool(&p, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	pool_close(&p);
	mount_again(t);
	return cr;
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
	assert_int_equal(cr.unkeyed, NDIRS + 1); /* told, not an error */
	objects = cr.objects;
	inodes = cr.inodes;
	assert_int_equal(tpool_remount(t), 0);
	assert_int_equal(fs->unkeyed_dirs, NDIRS + 1); /* said at mount */

	cr = upgrade_offline(t, &ur);
	assert_true(ur.keyed);
	assert_int_equal(ur.rehashed, NDIRS + 1); /* and the root */
	assert_int_equal(ur.failed, 0);
	assert_int_equal(fs->pool.sb->major, KMFS_VERSION_MAJOR);
	assert_int_equal(fs->pool.sb->minor, KMFS_VERSION_MINOR);
	assert_memory_not_equal(fs->pool.sb->dir_key, no_key, sizeof(no_key));
	/* the same objects: the old tables and entries were freed */
	assert_int_equal(cr.objects, objects);
	assert_int_equal(cr.inodes, inodes);
	assert_int_equal(cr.unkeyed, 0);
	assert_int_equal(fs->unkeyed_dirs, 0);
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
	/* and a second run finds nothing to do */
	upgrade_offline(t, &ur);
	assert_false(ur.keyed);
	assert_int_equal(ur.rehashed, 0);
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

	assert_int_equal(cr.unkeyed, 2);
	upgrade_offline(t, &ur);
	assert_false(ur.keyed);
	assert_int_equal(ur.rehashed, 2);
	assert_int_equal(fs_lookup(fs, dir, "f", &off), 0);
	assert_int_equal(table_of(fs, dir)->hash_kind, KMFS_HASH_SIPHASH);
}

static int first_extent(void *arg, const struct kmfs_extent *e)
{
	*(struct kmfs_extent *)arg = *e;
	return 1;
}

/* the flags of the extent fallocate makes for a new file NAME */
static uint32_t fallocated_flags(struct kmfs_fs *fs, const char *name)
{
	struct kmfs_extent e = { 0 };
	uint64_t off;

	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, name, S_IFREG | 0644, 0,
				  &root, &off), 0);
	assert_int_equal(fs_fallocate(fs, fs_ino(fs, off), 0, 0, 8 * 4096), 0);
	assert_int_equal(emap_walk(&fs->pool, fs_inode(fs, off), first_extent, &e), 1);
	assert_int_equal(e.count, 8);
	return e.flags;
}

/* a keyed pool of format 2.x: fallocate stores zeroes as data there (a 2.x
 * kmemfs could not tell unwritten pages), the upgrade changes only the
 * version, and from then on fallocate keeps unwritten extents */
static void test_upgrade_from_format2_changes_the_version(void **state)
{
	struct tpool *t = *state;
	struct kmfs_fs *fs = &t->fs;
	struct upgrade_result ur;
	struct check_result cr;
	uint64_t ino;

	fs->pool.sb->major = 2;
	fs->pool.sb->minor = 0;
	pool_persist(&fs->pool, fs->pool.sb, sizeof(*fs->pool.sb));
	assert_int_equal(tpool_remount(t), 0);
	assert_int_equal(fallocated_flags(fs, "old"), 0);
	assert_int_equal(fs_lookup(fs, FS_ROOT_INO, "old", &ino), 0);
	assert_int_equal(fs_lseek(fs, fs_ino(fs, ino), 0, SEEK_DATA), 0);

	cr = upgrade_offline(t, &ur);
	assert_true(ur.versioned);
	assert_false(ur.keyed);
	assert_int_equal(ur.rehashed, 0);
	assert_int_equal(cr.unkeyed, 0);
	assert_int_equal(fs->pool.sb->major, KMFS_VERSION_MAJOR);
	assert_int_equal(fs->pool.sb->minor, KMFS_VERSION_MINOR);
	/* the old file is as it was; a new one gets an unwritten extent */
	assert_int_equal(fs_lookup(fs, FS_ROOT_INO, "old", &ino), 0);
	assert_int_equal(fs_lseek(fs, fs_ino(fs, ino), 0, SEEK_DATA), 0);
	assert_int_equal(fallocated_flags(fs, "new"), KMFS_EXT_UNWRITTEN);
	assert_int_equal(fs_lookup(fs, FS_ROOT_INO, "new", &ino), 0);
	assert_int_equal(fs_lseek(fs, fs_ino(fs, ino), 0, SEEK_DATA), -ENXIO);
	/* and a second run finds nothing to do */
	upgrade_offline(t, &ur);
	assert_false(ur.versioned);
}

/* a format 1 pool goes to this format in one run: versioned with the key */
static void test_upgrade_from_format1_reaches_this_format(void **state)
{
	struct tpool *t = *state;
	struct kmfs_fs *fs = &t->fs;
	struct upgrade_result ur;

	tpool_make_format1(t);
	assert_int_equal(fallocated_flags(fs, "old"), 0);
	upgrade_offline(t, &ur);
	assert_true(ur.keyed);
	assert_true(ur.versioned);
	assert_int_equal(fs->pool.sb->major, KMFS_VERSION_MAJOR);
	assert_int_equal(fallocated_flags(fs, "new"), KMFS_EXT_UNWRITTEN);
}

/* a directory whose rehash fails (here its 40th allocation: the metadata
 * heap full) is left as it was, hashed with FNV; the pool stays sound and
 * a later run rehashes it */
static void test_upgrade_failed_rehash_changes_nothing(void **state)
{
	struct tpool *t = *state;
	struct kmfs_fs *fs = &t->fs;
	struct check_result cr;
	struct upgrade_result ur;
	uint64_t dir, off;
	char name[32];

	tpool_make_format1(t);
	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "d", 0755, &root, &dir), 0);
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(fs_mknod(fs, dir, name, S_IFREG | 0644, 0, &root, &off), 0);
	}
	/* the root's rehash takes 2 allocations (table, entry); the 40th
	 * falls inside d's */
	alloc_count = 0;
	fail_alloc_at = 40;
	cr = upgrade_offline(t, &ur);
	fail_alloc_at = 0;
	assert_true(ur.keyed);
	assert_int_equal(ur.rehashed, 1);
	assert_int_equal(ur.failed, 1);
	assert_int_equal(cr.unkeyed, 1);
	assert_int_equal(table_of(fs, dir)->hash_kind, KMFS_HASH_FNV);
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(fs_lookup(fs, dir, name, &off), 0);
	}
	cr = upgrade_offline(t, &ur);
	assert_int_equal(ur.rehashed, 1);
	assert_int_equal(ur.failed, 0);
	assert_int_equal(cr.unkeyed, 0);
	assert_int_equal(fs_lookup(fs, dir, "f199", &off), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_upgrade_keys_and_rehashes_every_directory,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_format2_changes_the_version,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_format1_reaches_this_format,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_resumes_after_the_key,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_failed_rehash_changes_nothing,
			tpool_setup_default, tpool_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
