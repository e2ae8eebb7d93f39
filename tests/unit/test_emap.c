// SPDX-License-Identifier: BSD-3-Clause
/* test_emap -- extent maps against a flat model, through many random edits. */
#include "helpers.h"
#include "emap.h"
#include "txn.h"

#define NP 20000 /* file pages in the model */
static uint64_t model[NP];
static uint64_t removed_pages;

static int count_removed(void *arg, uint64_t dpage, uint64_t count)
{
	removed_pages += count;
	return 0;
}

static struct kmfs_inode *new_inode(struct tpool *t)
{
	struct txn tx;
	uint64_t off;

	txn_init(&tx, &t->fs.pages);
	assert_int_equal(txn_begin(&tx), 0);
	off = tx_alloc(sizeof(struct kmfs_inode), KMFS_T_INODE, true);
	assert_true(off != 0);
	assert_int_equal(txn_end(&tx, 0), 0);
	return fs_inode(&t->fs, off);
}

static void replace(struct tpool *t, struct kmfs_inode *ino, uint64_t f,
		    uint64_t n, uint64_t d)
{
	struct txn tx;

	txn_init(&tx, &t->fs.pages);
	assert_int_equal(txn_begin(&tx), 0);
	assert_int_equal(emap_replace(&tx, ino, f, n, d, 0, count_removed, NULL), 0);
	assert_int_equal(txn_end(&tx, 0), 0);
	for (uint64_t i = 0; i < n; i++)
		model[f + i] = d == EMAP_HOLE ? EMAP_HOLE : d + i;
}

struct walk { uint64_t pos, blocks; };

static int check_walk(void *arg, const struct kmfs_extent *e)
{
	struct walk *w = arg;

	assert_true(e->fpage >= w->pos);
	for (uint64_t i = w->pos; i < e->fpage; i++)
		assert_true(model[i] == EMAP_HOLE);
	for (uint64_t i = 0; i < e->count; i++)
		assert_true(model[e->fpage + i] == e->dpage + i);
	w->pos = e->fpage + e->count;
	w->blocks += e->count;
	return 0;
}

static void verify(struct tpool *t, struct kmfs_inode *ino, uint64_t *seed)
{
	struct walk w = {0};
	uint64_t mapped = 0;

	emap_walk(&t->fs.pool, ino, check_walk, &w);
	for (uint64_t i = w.pos; i < NP; i++)
		assert_true(model[i] == EMAP_HOLE);
	for (uint64_t i = 0; i < NP; i++)
		mapped += model[i] != EMAP_HOLE;
	assert_int_equal(w.blocks, mapped);
	assert_int_equal(ino->blocks, mapped);
	for (int k = 0; k < 50; k++) {
		uint64_t f = trand(seed) % NP;
		struct kmfs_extent e;
		int r = emap_lookup(&t->fs.pool, ino, f, &e);
		if (model[f] != EMAP_HOLE) {
			assert_int_equal(r, 0);
			assert_true(e.dpage + (f - e.fpage) == model[f]);
		} else {
			assert_true(r != 0);
		}
	}
}

static void test_emap_random_edits_match_model(void **state)
{
	struct tpool *t = *state;
	struct kmfs_inode *ino = new_inode(t);
	uint64_t seed = 0x1234567;
	uint64_t total = t->fs.pool.total_pages;

	for (uint64_t i = 0; i < NP; i++)
		model[i] = EMAP_HOLE;
	for (int op = 0; op < 4000; op++) {
		uint64_t f = trand(&seed) % NP;
		uint64_t n = 1 + trand(&seed) % (op % 7 == 0 ? 300 : 4);
		if (f + n > NP)
			n = NP - f;
		if (trand(&seed) % 4 == 0)
			replace(t, ino, f, n, EMAP_HOLE);
		else
			replace(t, ino, f, n, trand(&seed) % (total - n));
		if (op % 500 == 0)
			verify(t, ino, &seed);
	}
	verify(t, ino, &seed);
	/* every page that left the map was reported exactly once */
	struct txn tx;
	uint64_t before = ino->blocks;
	removed_pages = 0;
	txn_init(&tx, &t->fs.pages);
	assert_int_equal(txn_begin(&tx), 0);
	assert_int_equal(emap_destroy(&tx, ino, count_removed, NULL), 0);
	assert_int_equal(txn_end(&tx, 0), 0);
	assert_int_equal(removed_pages, before);
	assert_int_equal(ino->data_off, 0);
}

static void test_emap_contiguous_writes_make_one_extent(void **state)
{
	struct tpool *t = *state;
	struct kmfs_inode *ino = new_inode(t);
	struct kmfs_extent e;

	for (uint64_t i = 0; i < NP; i++)
		model[i] = EMAP_HOLE;
	for (uint64_t f = 0; f < 1000; f += 10)
		replace(t, ino, f, 10, 5000 + f);
	assert_int_equal(emap_lookup(&t->fs.pool, ino, 500, &e), 0);
	assert_int_equal(e.fpage, 0);
	assert_int_equal(e.count, 1000);
	assert_int_equal(e.dpage, 5000);
}

static void test_emap_abort_leaves_map_unchanged(void **state)
{
	struct tpool *t = *state;
	struct kmfs_inode *ino = new_inode(t);
	uint64_t seed = 99;
	struct txn tx;

	for (uint64_t i = 0; i < NP; i++)
		model[i] = EMAP_HOLE;
	for (int i = 0; i < 300; i++)
		replace(t, ino, i * 3, 2, 1000 + i * 7);
	txn_init(&tx, &t->fs.pages);
	assert_int_equal(txn_begin(&tx), 0);
	assert_int_equal(emap_replace(&tx, ino, 0, 2000, EMAP_HOLE, 0, NULL, NULL), 0);
	assert_int_equal(txn_end(&tx, -EIO), -EIO);
	verify(t, ino, &seed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_emap_random_edits_match_model,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_emap_contiguous_writes_make_one_extent,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_emap_abort_leaves_map_unchanged,
			tpool_setup_default, tpool_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
