// SPDX-License-Identifier: BSD-3-Clause
/* test_pages -- allocator, reference counts, unit lending. */
#include "helpers.h"
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "txn.h"

static struct pages *PG(void **state)
{
	return &((struct tpool *)*state)->fs.pages;
}

/* allocate COUNT pages and give them a reference in one transaction */
static uint64_t alloc_ref(struct pages *pg, uint64_t count, int64_t *got)
{
	struct txn t;
	uint64_t start = 0;

	txn_init(&t, pg);
	/* a lent unit comes back through pages_take_back, as fs.c does it */
	unsigned round = 0;
	while ((*got = pages_alloc(&t, count, 0, &start)) == -PAGES_ERECLAIM)
		assert_int_equal(pages_take_back(pg, round++), 0);
	if (round)
		pages_take_back_done(pg);
	assert_true(*got > 0);
	assert_int_equal(txn_begin(&t), 0);
	assert_int_equal(pages_ref_new(&t, start, (uint64_t)*got), 0);
	assert_int_equal(txn_end(&t, 0), 0);
	return start;
}

static void unref(struct pages *pg, uint64_t start, uint64_t count)
{
	struct txn t;

	txn_init(&t, pg);
	assert_int_equal(txn_begin(&t), 0);
	assert_int_equal(pages_unref(&t, start, count), 0);
	assert_int_equal(txn_end(&t, 0), 0);
}

static void test_pages_alloc_contiguous_and_free(void **state)
{
	struct pages *pg = PG(state);
	struct pages_stats a, b;
	int64_t got;
	uint64_t s;

	pages_stats(pg, &a);
	s = alloc_ref(pg, 100, &got);
	assert_int_equal(got, 100);
	for (uint64_t i = 0; i < 100; i++)
		assert_int_equal(pages_refcount(pg, s + i), 1);
	pages_stats(pg, &b);
	assert_int_equal(b.used_pages, a.used_pages + 100);
	unref(pg, s, 100);
	pages_stats(pg, &b);
	assert_int_equal(b.used_pages, a.used_pages);
	assert_int_equal(pages_refcount(pg, s), 0);
}

static void test_pages_abort_returns_allocation(void **state)
{
	struct pages *pg = PG(state);
	struct pages_stats a, b;
	struct txn t;
	uint64_t s;

	pages_stats(pg, &a);
	txn_init(&t, pg);
	unsigned round = 0;
	while (pages_alloc(&t, 10, 0, &s) == -PAGES_ERECLAIM)
		assert_int_equal(pages_take_back(pg, round++), 0);
	if (round)
		pages_take_back_done(pg);
	assert_int_equal(pg->used_pages, a.used_pages + 10);
	assert_int_equal(txn_begin(&t), 0);
	assert_int_equal(pages_ref_new(&t, s, 10), 0);
	assert_int_equal(txn_end(&t, -EIO), -EIO);
	pages_stats(pg, &b);
	assert_int_equal(b.used_pages, a.used_pages);
	assert_int_equal(pages_refcount(pg, s), 0); /* rolled back */
}

static void test_pages_shared_freed_on_last_ref(void **state)
{
	struct pages *pg = PG(state);
	struct txn t;
	int64_t got;
	uint64_t s = alloc_ref(pg, 4, &got);

	txn_init(&t, pg);
	assert_int_equal(txn_begin(&t), 0);
	assert_int_equal(pages_ref(&t, s, 4), 0);
	assert_int_equal(txn_end(&t, 0), 0);
	assert_int_equal(pages_refcount(pg, s), 2);
	unref(pg, s, 4);
	assert_int_equal(pages_refcount(pg, s), 1);
	unref(pg, s, 4);
	assert_int_equal(pages_refcount(pg, s), 0);
}

static void test_pages_unref_of_free_page_is_corruption(void **state)
{
	struct pages *pg = PG(state);
	struct txn t;
	int64_t got;
	uint64_t s = alloc_ref(pg, 1, &got);

	unref(pg, s, 1);
	txn_init(&t, pg);
	assert_int_equal(txn_begin(&t), 0);
	assert_int_equal(pages_unref(&t, s, 1), -EUCLEAN);
	assert_int_equal(txn_end(&t, -EUCLEAN), -EUCLEAN);
}

static void test_pages_whole_units_are_lent(void **state)
{
	struct pages *pg = PG(state);
	struct pages_stats a, b, c;
	int64_t got;
	uint64_t s;

	pages_stats(pg, &a);
	/* a fresh pool lends everything beyond the (zero) reserve */
	assert_int_equal(a.free_pages, 0);
	s = alloc_ref(pg, KMFS_UNIT_PAGES, &got);
	assert_int_equal(got, KMFS_UNIT_PAGES);
	pages_stats(pg, &b);
	assert_int_equal(b.lent_pages, a.lent_pages - KMFS_UNIT_PAGES);
	assert_true(b.units_reclaimed_total >= 1);
	unref(pg, s, KMFS_UNIT_PAGES);
	pages_stats(pg, &c);
	assert_int_equal(c.lent_pages, a.lent_pages);
	assert_int_equal(c.units_lent_total, b.units_lent_total + 1);
}

/* -o reserve= as large as it goes keeps a freed unit, and does not wrap to
 * no reserve at all */
static void test_pages_huge_reserve_lends_nothing(void **state)
{
	struct tpool *t = *state;
	struct fs_opts fo = { .lend = true, .reserve = UINT64_MAX };
	struct pages_stats a, b;
	int64_t got;
	uint64_t s;

	fs_unmount(&t->fs);
	memset(&t->fs, 0, sizeof(t->fs));
	assert_int_equal(fs_mount(&t->fs, t->path, &fo), 0);
	pages_stats(&t->fs.pages, &a);
	s = alloc_ref(&t->fs.pages, KMFS_UNIT_PAGES, &got);
	assert_int_equal(got, KMFS_UNIT_PAGES);
	unref(&t->fs.pages, s, KMFS_UNIT_PAGES);
	pages_stats(&t->fs.pages, &b);
	assert_int_equal(b.lent_pages, a.lent_pages - KMFS_UNIT_PAGES);
	assert_int_equal(b.free_pages, a.free_pages + KMFS_UNIT_PAGES);
}

/* Allocate every page into T, taking lent units back as fs.c does, until
 * ENOSPC; *FIRST: the first run. Returns the pages got; *ROUND counts the
 * take-backs, and the caller calls pages_take_back_done. */
static uint64_t alloc_all(struct pages *pg, struct txn *t, uint64_t *first,
			  unsigned *round)
{
	uint64_t s, total = 0;
	int64_t got;

	*first = UINT64_MAX;
	*round = 0;
	for (;;) {
		got = pages_alloc(t, 4096, 0, &s);
		if (got == -PAGES_ERECLAIM) {
			/* done only after the last rerun, as fs.c does */
			if (pages_take_back(pg, (*round)++) < 0)
				break;
			continue;
		}
		if (got <= 0)
			break;
		if (*first == UINT64_MAX)
			*first = s;
		total += (uint64_t)got;
	}
	assert_int_equal(got, -ENOSPC);
	return total;
}

static void test_pages_enospc_when_full(void **state)
{
	struct pages *pg = PG(state);
	struct txn t;
	uint64_t first, total;
	unsigned round;

	txn_init(&t, pg);
	total = alloc_all(pg, &t, &first, &round);
	assert_int_equal(pages_take_back(pg, round), -ENOSPC);
	pages_take_back_done(pg);
	assert_int_equal(total, pg->nunits * KMFS_UNIT_PAGES);
	txn_release(&t);
	assert_int_equal(pg->used_pages, 0);
}

/* ---- freed pages handed back one by one: a pool file in RAM ------------ */

static int shm_setup(void **state)
{
	return tpool_setup_in(state, "/dev/shm", 64ull << 20, true);
}

/* KiB the pool file really holds (holes excluded) */
static uint64_t pool_kib(void **state)
{
	struct stat st;

	assert_int_equal(stat(((struct tpool *)*state)->path, &st), 0);
	return (uint64_t)st.st_blocks / 2;
}

/* COUNT pages at START get a reference and data, so the file backs them */
static uint64_t alloc_written(void **state, uint64_t count)
{
	struct pages *pg = PG(state);
	static char buf[KMFS_PAGE_SIZE];
	int64_t got;
	uint64_t s = alloc_ref(pg, count, &got);

	assert_int_equal(got, (int64_t)count);
	memset(buf, 0xa5, sizeof(buf));
	for (uint64_t i = 0; i < count; i++)
		assert_int_equal(media_pwrite(&pg->pool->media,
					      pool_page_off(pg->pool, s + i),
					      buf, sizeof(buf)), 0);
	return s;
}

static bool page_marked(struct pages *pg, uint64_t page)
{
	const struct unit_info *ui = &pg->u[page / KMFS_UNIT_PAGES];
	uint64_t i = page % KMFS_UNIT_PAGES;

	return ui->used[i / 64] & (1ull << (i % 64));
}

static void test_pages_freed_pages_go_back_to_host(void **state)
{
	struct pages *pg = PG(state);
	struct pages_stats a, b;
	uint64_t s = alloc_written(state, 100), k0 = pool_kib(state);

	pages_stats(pg, &a);
	/* half of the run: its unit keeps the other half, so it is not lent */
	unref(pg, s, 50);
	pages_stats(pg, &b);
	assert_int_equal(b.pages_released_total, a.pages_released_total + 50);
	assert_int_equal(b.lent_pages, a.lent_pages);
	assert_true(pool_kib(state) <= k0 - 50 * 4);
	assert_false(page_marked(pg, s));
	assert_true(page_marked(pg, s + 50));
}

static void test_pages_deferred_release_waits_for_reply(void **state)
{
	struct pages *pg = PG(state);
	struct pages_stats a, b;
	uint64_t s = alloc_written(state, 100), k0 = pool_kib(state);

	pages_stats(pg, &a);
	pages_defer_release(pg, true);
	unref(pg, s, 50);
	pages_stats(pg, &b);
	/* counted free at once (df), but neither allocatable nor punched */
	assert_int_equal(b.used_pages, a.used_pages - 50);
	assert_int_equal(b.free_pages, a.free_pages + 50);
	assert_int_equal(b.pages_released_total, a.pages_released_total);
	assert_true(page_marked(pg, s));
	assert_true(pool_kib(state) >= k0);
	pages_defer_release(pg, false); /* the reply went out */
	pages_stats(pg, &b);
	assert_int_equal(b.pages_released_total, a.pages_released_total + 50);
	assert_false(page_marked(pg, s));
	assert_true(pool_kib(state) <= k0 - 50 * 4);
	assert_int_equal(pg->releasing, 0);
}

/* take every page of the pool, with a reference; returns the first run */
static uint64_t fill_pool(struct pages *pg)
{
	struct txn t;
	uint64_t first;
	unsigned round;

	txn_init(&t, pg);
	alloc_all(pg, &t, &first, &round);
	pages_take_back_done(pg);
	assert_int_equal(txn_begin(&t), 0);
	for (size_t i = 0; i < t.allocated.n; i++)
		assert_int_equal(pages_ref_new(&t, t.allocated.v[i].start,
					       t.allocated.v[i].count), 0);
	assert_int_equal(txn_end(&t, 0), 0);
	return first;
}

/* With nothing else free, a request's own deferred frees serve its next
 * allocation at once (a long copy frees, then allocates, step by step). */
static void test_pages_deferred_release_own_frees(void **state)
{
	struct pages *pg = PG(state);
	uint64_t s, first = fill_pool(pg);
	struct txn t;

	pages_defer_release(pg, true);
	unref(pg, first, 10);
	assert_int_equal(pg->releasing, 10);
	txn_init(&t, pg);
	assert_int_equal(pages_alloc(&t, 10, 0, &s), 10);
	assert_int_equal(s, first);
	txn_release(&t);
	pages_defer_release(pg, false);
	assert_int_equal(pg->releasing, 0);
}

/* a request on another thread: frees COUNT pages at START, deferred or not,
 * and answers HOLD_MS later */
struct other_req {
	struct pages *pg;
	uint64_t start, count;
	bool defer;
	unsigned hold_ms;
};

static void *other_req_main(void *arg)
{
	struct other_req *o = arg;

	pages_defer_release(o->pg, o->defer);
	unref(o->pg, o->start, o->count);
	usleep(o->hold_ms * 1000);
	if (o->defer)
		pages_defer_release(o->pg, false);
	return NULL;
}

static uint64_t ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)((t.tv_sec - t0->tv_sec) * 1000 +
			  (t.tv_nsec - t0->tv_nsec) / 1000000);
}

/* Pages another request freed but has not answered yet: the allocation
 * reruns once they are free, rather than failing with ENOSPC. A free that
 * is not deferred wakes the waiter too, without waiting for the other. */
static void test_pages_deferred_release_other_thread(void **state)
{
	struct pages *pg = PG(state);
	uint64_t s, first = fill_pool(pg);
	struct other_req slow = { pg, first, 10, true, 3000 };
	struct other_req quick = { pg, first + 10, 10, false, 0 };
	pthread_t a, b;
	struct timespec t0;
	struct txn t;

	assert_int_equal(pthread_create(&a, NULL, other_req_main, &slow), 0);
	while (__atomic_load_n(&pg->releasing, __ATOMIC_ACQUIRE) == 0)
		usleep(1000);
	txn_init(&t, pg);
	assert_int_equal(pages_alloc(&t, 10, 0, &s), -PAGES_ERECLAIM);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(pthread_create(&b, NULL, other_req_main, &quick), 0);
	assert_int_equal(pages_take_back(pg, 0), 0);
	/* woken by the quick free, not after the slow request's 3 s */
	assert_true(ms_since(&t0) < 2000);
	assert_int_equal(pages_alloc(&t, 10, 0, &s), 10);
	assert_int_equal(s, first + 10);
	pages_take_back_done(pg);
	txn_release(&t);
	pthread_join(b, NULL);
	pthread_join(a, NULL);
	assert_int_equal(pg->releasing, 0);
	assert_false(page_marked(pg, first));
}

/* -o lend_max: at most that much is lent, from the mount on (a new pool
 * file has every unit lent), and a cap under one unit lends none */
static void test_pages_lend_max_is_a_cap(void **state)
{
	struct tpool *t = *state;
	struct pages_stats st;
	static const struct { uint64_t bytes, units; } caps[] = {
		{ 8u << 20, 2 }, { 1u << 20, 0 },
	};

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		struct fs_opts fo = { .lend = true, .lend_max = caps[i].bytes };
		int64_t got;

		fs_unmount(&t->fs);
		struct pool_format_opts po = { .size = 128ull << 20, .force = true };
		assert_int_equal(pool_format(t->path, &po), 0);
		assert_int_equal(fs_mount(&t->fs, t->path, &fo), 0);
		pages_stats(&t->fs.pages, &st);
		assert_int_equal(st.lent_pages, caps[i].units * KMFS_UNIT_PAGES);
		/* and freeing a whole unit lends no more */
		uint64_t start = alloc_ref(&t->fs.pages, KMFS_UNIT_PAGES * 3, &got);
		unref(&t->fs.pages, start, (uint64_t)got);
		pages_stats(&t->fs.pages, &st);
		assert_true(st.lent_pages <= caps[i].units * KMFS_UNIT_PAGES);
	}
}

/* a unit recorded lent whose punch a crash cut short gives its memory back
 * at the next mount */
static void test_pages_lent_unit_punched_at_mount(void **state)
{
	struct tpool *t = *state;
	struct kmfs_pool *p = &t->fs.pool;
	uint64_t u = p->total_units - 1, off, before, after;
	static char junk[KMFS_UNIT_SIZE];
	struct stat st;
	int fd;

	assert_int_equal(p->units[u], KMFS_UNIT_LENT);
	off = pool_page_off(p, u * KMFS_UNIT_PAGES);
	fs_unmount(&t->fs);
	memset(junk, 0xAA, sizeof(junk));
	fd = open(t->path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, junk, sizeof(junk), (off_t)off), (ssize_t)sizeof(junk));
	assert_int_equal(fstat(fd, &st), 0);
	before = (uint64_t)st.st_blocks * 512;
	struct fs_opts fo = { .lend = true };
	assert_int_equal(fs_mount(&t->fs, t->path, &fo), 0);
	assert_int_equal(fstat(fd, &st), 0);
	after = (uint64_t)st.st_blocks * 512;
	close(fd);
	assert_true(before >= after + KMFS_UNIT_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pages_alloc_contiguous_and_free,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_pages_abort_returns_allocation,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_pages_shared_freed_on_last_ref,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_pages_unref_of_free_page_is_corruption,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_pages_whole_units_are_lent,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_pages_huge_reserve_lends_nothing,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_pages_enospc_when_full,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_pages_freed_pages_go_back_to_host,
			shm_setup, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_pages_deferred_release_waits_for_reply,
			shm_setup, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_pages_deferred_release_own_frees,
			shm_setup, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_pages_lent_unit_punched_at_mount,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_pages_lend_max_is_a_cap,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_pages_deferred_release_other_thread,
			shm_setup, tpool_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
