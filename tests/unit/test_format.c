// SPDX-License-Identifier: BSD-3-Clause
/* test_format -- pin the on-media layout: sizes and offsets never drift. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "format.h"
#include "pool.h"

/* media_probe is wrapped (CMakeLists.txt): a pool file that claims to
 * start at physical address fake_phys, as a devdax device does */
static unsigned long long fake_phys;
int __real_media_probe(const char *path, struct media *m);
int __wrap_media_probe(const char *path, struct media *m)
{
	int rc = __real_media_probe(path, m);

	if (rc == 0)
		m->phys_start = fake_phys;
	return rc;
}

#define PIN_SIZE(t, n) assert_int_equal(sizeof(t), n)
#define PIN_OFF(t, f, n) assert_int_equal(offsetof(t, f), n)

static void test_format_struct_sizes(void **state)
{
	PIN_SIZE(struct kmfs_time, 16);
	PIN_SIZE(struct kmfs_arena, 32);
	PIN_SIZE(struct kmfs_inode, 160);
	PIN_SIZE(struct kmfs_dirent, 40);
	PIN_SIZE(struct kmfs_dirtable, 32);
	PIN_SIZE(struct kmfs_extent, 24);
	PIN_SIZE(struct kmfs_emap_ent, 16);
	PIN_SIZE(struct kmfs_emap_index, 16);
	PIN_SIZE(struct kmfs_emap_leaf, 16);
	PIN_SIZE(struct kmfs_xattrs, 8);
	PIN_SIZE(struct kmfs_xattr_ent, 8);
	PIN_SIZE(struct kmfs_super, 240 + KMFS_MAX_ARENAS * 32);
}

static void test_format_field_offsets(void **state)
{
	PIN_OFF(struct kmfs_super, magic, 0);
	PIN_OFF(struct kmfs_super, major, 8);
	PIN_OFF(struct kmfs_super, minor, 10);
	PIN_OFF(struct kmfs_super, uuid, 16);
	PIN_OFF(struct kmfs_super, pool_size, 32);
	PIN_OFF(struct kmfs_super, root_off, 56);
	PIN_OFF(struct kmfs_super, total_pages, 72);
	PIN_OFF(struct kmfs_super, refs_off, 80);
	PIN_OFF(struct kmfs_super, units_off, 88);
	PIN_OFF(struct kmfs_super, narenas, 96);
	PIN_OFF(struct kmfs_super, mounted_pid, 104);
	PIN_OFF(struct kmfs_super, unit_phase, 112);
	PIN_OFF(struct kmfs_super, dir_key, 120);
	PIN_OFF(struct kmfs_super, reserved, 136);
	PIN_OFF(struct kmfs_super, arenas, 240);
	PIN_OFF(struct kmfs_inode, mode, 0);
	PIN_OFF(struct kmfs_inode, size, 16);
	PIN_OFF(struct kmfs_inode, blocks, 24);
	PIN_OFF(struct kmfs_inode, atime, 48);
	PIN_OFF(struct kmfs_inode, btime, 96);
	PIN_OFF(struct kmfs_inode, data_off, 112);
	PIN_OFF(struct kmfs_inode, xattr_off, 120);
	PIN_OFF(struct kmfs_inode, parent_off, 128);
	PIN_OFF(struct kmfs_inode, flags, 136);
	PIN_OFF(struct kmfs_inode, attr_flags, 140);
	PIN_OFF(struct kmfs_inode, handle_tag, 144);
	PIN_OFF(struct kmfs_dirent, next_off, 0);
	PIN_OFF(struct kmfs_dirent, cookie, 24);
	PIN_OFF(struct kmfs_dirent, namelen, 32);
	PIN_OFF(struct kmfs_dirent, name, 40);
	PIN_OFF(struct kmfs_dirtable, hash_kind, 28);
	PIN_OFF(struct kmfs_dirtable, buckets, 32);
	PIN_OFF(struct kmfs_extent, count, 16);
	PIN_OFF(struct kmfs_emap_index, ent, 16);
	PIN_OFF(struct kmfs_emap_leaf, ext, 16);
}

static void test_format_constants(void **state)
{
	assert_int_equal(KMFS_PAGE_SIZE, 4096);
	assert_int_equal(KMFS_UNIT_SIZE, 4u << 20);
	assert_int_equal(KMFS_UNIT_PAGES, 1024);
	assert_int_equal(KMFS_VERSION_MAJOR, 3);
	assert_int_equal(KMFS_EXT_UNWRITTEN, 1);
	assert_int_equal(KMFS_VERSION_MAJOR_OLDEST, 1);
	assert_int_equal(KMFS_HASH_SIPHASH, 1);
	assert_true(KMFS_MAGIC == 0x31534646454d4d4bULL);
	assert_int_equal(KMFS_T_UNITS, 11);
	assert_int_equal(KMFS_UNIT_LENT, 1);
}

/* mkfs starts every arena's units on the medium's 4 MiB boundaries */
static void test_format_units_on_physical_boundaries(void **state)
{
	const struct { unsigned long long phys; uint64_t phase; } cases[] = {
		{ 0, 0 },
		{ 0x100200000ull, 2u << 20 }, /* 2 MiB past: --map=mem */
		{ 0x100100000ull, 3u << 20 }, /* 1 MiB past: the next is 3 MiB on */
		{ 0x100003000ull, (4u << 20) - 0x3000 },
	};
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[4096];

	(void)state;
	snprintf(path, sizeof(path), "%s/kmemfs-format-%d.img", dir, (int)getpid());
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pool_format_opts o = { .size = 128ull << 20, .force = true };
		struct kmfs_pool p;

		fake_phys = cases[i].phys;
		assert_int_equal(pool_format(path, &o), 0);
		assert_int_equal(pool_open(path, &p), 0);
		assert_int_equal(p.sb->unit_phase, cases[i].phase);
		assert_int_equal(p.sb->minor, KMFS_VERSION_MINOR);
		for (uint32_t a = 0; a < p.sb->narenas; a++) {
			uint64_t off = p.sb->arenas[a].data_off;
			assert_int_equal((cases[i].phys + off) % KMFS_UNIT_SIZE, 0);
			assert_true(off >= p.sb->arenas[a].obj_off);
			assert_true(p.sb->arenas[a].nunits > 0);
		}
		assert_int_equal(pool_page_off(&p, 0), p.sb->arenas[0].data_off);
		pool_close(&p);
	}
	fake_phys = 0;
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_struct_sizes),
		cmocka_unit_test(test_format_field_offsets),
		cmocka_unit_test(test_format_constants),
		cmocka_unit_test(test_format_units_on_physical_boundaries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
