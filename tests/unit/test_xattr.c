// SPDX-License-Identifier: BSD-3-Clause
/* test_xattr -- extended attributes, and the metadata space they take. */
#include <errno.h>
#include <stdio.h>
#include <sys/statvfs.h>

#include "helpers.h"
#include "xattr.h"

/*
 * An xattr set is one object that moves to a new size at every change. A
 * user who grows one through every size must not use up the metadata
 * share: libpmemobj's own size classes gave each size a run of its own (up
 * to 4 MiB, kept by its arena even when empty), so about 50 steps of 4000
 * bytes filled 25 MiB and every create after failed, until a remount.
 */
static void test_xattr_growth_leaves_room(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static char val[4000];
	char name[32];
	uint64_t off;

	/* the biggest set fits kmemfs's own classes */
	assert_int_not_equal(pool_alloc_class(&fs->pool, 8 + KMFS_XATTR_LIST_MAX), 0);
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "grown", S_IFREG | 0644, 0,
				  &root, &off), 0);
	uint64_t ino = fs_ino(fs, off);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 64; i++) { /* 64 x ~4 KiB: the 256 KiB limit */
			snprintf(name, sizeof(name), "user.h%d", i);
			memset(val, 'a' + i % 26, sizeof(val));
			assert_int_equal(fs_setxattr(fs, ino, name, val, sizeof(val), 0), 0);
		}
		for (int i = 0; i < 64; i++) { /* and down through every size */
			snprintf(name, sizeof(name), "user.h%d", i);
			assert_int_equal(fs_removexattr(fs, ino, name), 0);
		}
	}
	/* the 25 MiB of metadata still hold a few thousand files */
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(fs_mknod(fs, FS_ROOT_INO, name, S_IFREG | 0644, 0,
					  &root, &off), 0);
	}
}

/*
 * An ENOSPC that was a shortage of one size (say, no run of that class
 * while the share had room) must not leave statfs saying no inode is free
 * once creates go on fitting.
 */
static void test_meta_full_clears_when_more_fits(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct statvfs sv;
	char name[32];
	uint64_t off;

	assert_int_equal(fs_statfs(fs, &sv), 0);
	assert_true(sv.f_ffree > 1000);
	pool_note_meta_full(&fs->pool); /* a failure at today's level */
	assert_int_equal(fs_statfs(fs, &sv), 0);
	assert_int_equal(sv.f_ffree, 0);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(fs_mknod(fs, FS_ROOT_INO, name, S_IFREG | 0644, 0,
					  &root, &off), 0);
	}
	assert_int_equal(fs_statfs(fs, &sv), 0);
	assert_true(sv.f_ffree > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_xattr_growth_leaves_room,
						tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_meta_full_clears_when_more_fits,
						tpool_setup_default, tpool_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
