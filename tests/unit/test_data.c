// SPDX-License-Identifier: BSD-3-Clause
/* test_data -- file contents against a byte-exact model: writes, reads,
 * truncate, punch, allocate, seek; no stale data in new pages; and a
 * truncate or punch whose transaction fails leaves every byte as it was. */
#include <errno.h>
#include <fcntl.h>
#include <sys/statvfs.h>

#include "check.h"
#include "emap.h"
#include "helpers.h"

#define MAXF (3u << 20) /* model file size limit */
static unsigned char model[MAXF];
static uint64_t msize;

/* tx_add is linked wrapped (-Wl,--wrap=tx_add): snapshotting the address
 * fail_add_at, or any range of fail_add_len bytes, fails as a full undo log
 * would */
int __real_tx_add(const void *ptr, size_t len);
static const void *fail_add_at;
static size_t fail_add_len;
int __wrap_tx_add(const void *ptr, size_t len)
{
	if ((fail_add_at && ptr == fail_add_at) || (fail_add_len && len == fail_add_len))
		return -ENOMEM;
	return __real_tx_add(ptr, len);
}

/* with no_metadata set, every metadata allocation fails, as in a pool
 * whose metadata space is full */
uint64_t __real_tx_alloc(size_t size, unsigned type, bool zero);
static bool no_metadata;
uint64_t __wrap_tx_alloc(size_t size, unsigned type, bool zero)
{
	return no_metadata ? 0 : __real_tx_alloc(size, type, zero);
}

static void do_write(struct kmfs_fs *fs, uint64_t ino, uint64_t off,
		     const unsigned char *buf, size_t len)
{
	struct membuf m = { buf };
	struct data_src src = { src_copy, &m, NULL, NULL };
	assert_int_equal(fs_write(fs, ino, off, len, &src, false), (ssize_t)len);
	memcpy(model + off, buf, len);
	if (off + len > msize)
		msize = off + len;
}

static void verify(struct kmfs_fs *fs, uint64_t ino)
{
	static unsigned char out[MAXF + 4096];
	struct readbuf r = { out, 0 };
	struct stat st;

	fs_getattr(fs, ino, &st);
	assert_int_equal(st.st_size, msize);
	assert_int_equal(fs_read(fs, ino, 0, MAXF + 4096, reply, &r), 0);
	assert_int_equal(r.n, msize);
	assert_memory_equal(out, model, msize);
}

static uint64_t new_file(struct kmfs_fs *fs, const char *name)
{
	uint64_t off;
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, name, S_IFREG | 0644, 0, &root, &off), 0);
	memset(model, 0, sizeof(model));
	msize = 0;
	return fs_ino(fs, off);
}

static void test_data_random_ops_match_model(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t ino = new_file(fs, "f"), seed = 42;
	static unsigned char buf[1 << 20];

	for (int op = 0; op < 1500; op++) {
		uint64_t off = trand(&seed) % (MAXF - (1 << 20));
		size_t len = 1 + trand(&seed) % (op % 10 == 0 ? (1 << 20) : 9000);
		switch (trand(&seed) % 8) {
		case 0: { /* truncate */
			uint64_t ns = trand(&seed) % MAXF;
			struct stat a = { .st_size = (off_t)ns }, o;
			assert_int_equal(fs_setattr(fs, ino, &a, FS_SET_SIZE, &o), 0);
			if (ns < msize)
				memset(model + ns, 0, msize - ns);
			msize = ns;
			break;
		}
		case 1: /* punch */
			assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE |
						      FALLOC_FL_KEEP_SIZE, off, len), 0);
			if (off < msize)
				memset(model + off, 0, (off + len < msize ? off + len : msize) - off);
			break;
		case 2: /* allocate */
			assert_int_equal(fs_fallocate(fs, ino, 0, off, len), 0);
			if (off + len > msize)
				msize = off + len;
			break;
		case 3: /* zero a range, allocated (past the size: zero already) */
			assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_ZERO_RANGE,
						      off, len), 0);
			memset(model + off, 0, len);
			if (off + len > msize)
				msize = off + len;
			break;
		default:
			for (size_t i = 0; i < len; i++)
				buf[i] = (unsigned char)trand(&seed);
			do_write(fs, ino, off, buf, len);
		}
		if (op % 100 == 0)
			verify(fs, ino);
	}
	verify(fs, ino);
	/* and after a remount */
	assert_int_equal(tpool_remount(*state), 0);
	verify(&((struct tpool *)*state)->fs, ino);
}

static void test_data_new_pages_hold_no_stale_bytes(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[1 << 20];
	uint64_t a = new_file(fs, "secret"), b;

	memset(buf, 0xAB, sizeof(buf));
	do_write(fs, a, 0, buf, sizeof(buf));
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "secret"), 0);
	fs_forget(fs, a, 1); /* last reference: its pages are free again */
	b = new_file(fs, "fresh");
	/* partial pages, a sparse tail and fallocate: all must read zero */
	buf[0] = 1;
	do_write(fs, b, 100, buf, 1);
	do_write(fs, b, 3 * 4096 + 17, buf, 1);
	assert_int_equal(fs_fallocate(fs, b, FALLOC_FL_KEEP_SIZE, 8 * 4096, 65536), 0);
	struct stat at = { .st_size = 20 * 4096 }, o;
	assert_int_equal(fs_setattr(fs, b, &at, FS_SET_SIZE, &o), 0);
	msize = 20 * 4096;
	verify(fs, b);
}

/* every shape of a punch that touches part of a page: the page start, the
 * middle, the end, and pairs of partial pages; each checked byte by byte */
static void test_data_punch_partial_pages_zeroes_exactly(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static const struct { uint64_t off, len; } cases[] = {
		{ 8 * 4096, 6 },            /* a page's start (the fsexercise seed 2 case) */
		{ 9 * 4096 + 100, 50 },     /* its middle */
		{ 10 * 4096 + 4000, 96 },   /* up to its end */
		{ 11 * 4096 + 4000, 200 },  /* the end of one and the start of the next */
		{ 14 * 4096, 4096 + 10 },   /* a whole page and a bit */
		{ 17 * 4096 + 1, 3 * 4096 }, /* partial, whole, whole, partial */
	};
	static unsigned char buf[24 * 4096];
	uint64_t ino = new_file(fs, "punched");

	memset(buf, 0xC3, sizeof(buf));
	do_write(fs, ino, 0, buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					      cases[i].off, cases[i].len), 0);
		memset(model + cases[i].off, 0, cases[i].len);
		verify(fs, ino);
	}
}

static void test_data_seek_data_and_hole(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t ino = new_file(fs, "sparse");
	unsigned char x = 7;
	struct stat at = { .st_size = 10 * 4096 }, o;

	do_write(fs, ino, 4 * 4096 + 5, &x, 1);
	assert_int_equal(fs_setattr(fs, ino, &at, FS_SET_SIZE, &o), 0);
	assert_int_equal(fs_lseek(fs, ino, 0, SEEK_DATA), 4 * 4096);
	assert_int_equal(fs_lseek(fs, ino, 0, SEEK_HOLE), 0);
	assert_int_equal(fs_lseek(fs, ino, 4 * 4096, SEEK_HOLE), 5 * 4096);
	assert_int_equal(fs_lseek(fs, ino, 5 * 4096, SEEK_DATA), -ENXIO);
	assert_int_equal(fs_lseek(fs, ino, 10 * 4096, SEEK_HOLE), -ENXIO);
}

struct ext_list {
	struct kmfs_extent v[16];
	int n;
};

static int collect(void *arg, const struct kmfs_extent *e)
{
	struct ext_list *l = arg;

	if (l->n < 16)
		l->v[l->n] = *e;
	l->n++;
	return 0;
}

static struct ext_list extents_of(struct kmfs_fs *fs, uint64_t ino)
{
	struct ext_list l = { .n = 0 };

	assert_int_equal(emap_walk(&fs->pool, fs_inode(fs, fs_ino_off(fs, ino)),
				   collect, &l), 0);
	return l;
}

/* Bytes a write cut short by a crash may leave in a page it had not made
 * written yet: unseen, as the write never happened. */
static void leave_crash_residue(struct kmfs_fs *fs, uint64_t dpage)
{
	char *at = pool_page(&fs->pool, dpage);

	memset(at, 0xEE, 4096);
	pool_persist(&fs->pool, at, 4096);
}

/*
 * fallocate maps unwritten pages: allocated and counted, but a hole to
 * SEEK_DATA/SEEK_HOLE and zeroes to a read whatever the page holds, as on
 * ext4 and XFS. A write makes the pages it stores in written (the rest of
 * such a page zero), across a remount; once all is written it is one
 * extent again.
 */
static void test_data_fallocated_range_is_unwritten(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t ino = new_file(fs, "prealloc");
	static unsigned char page[4096];
	unsigned char x = 9;
	struct ext_list l;
	struct stat st;

	assert_int_equal(fs_fallocate(fs, ino, 0, 0, 16 * 4096), 0);
	msize = 16 * 4096;
	l = extents_of(fs, ino);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].count, 16);
	assert_int_equal(l.v[0].flags, KMFS_EXT_UNWRITTEN);
	assert_int_equal(fs_getattr(fs, ino, &st), 0);
	assert_int_equal(st.st_blocks, 16 * 8);
	assert_int_equal(fs_lseek(fs, ino, 0, SEEK_DATA), -ENXIO);
	assert_int_equal(fs_lseek(fs, ino, 0, SEEK_HOLE), 0);
	assert_int_equal(fs_lseek(fs, ino, 7 * 4096 + 1, SEEK_HOLE), 7 * 4096 + 1);
	leave_crash_residue(fs, l.v[0].dpage + 5);
	verify(fs, ino);
	/* a write whose commit fails leaves its pages unwritten: unseen */
	memset(page, 0xDD, sizeof(page));
	struct membuf m = { page };
	struct data_src src = { src_copy, &m, NULL, NULL };
	fail_add_at = &fs_inode(fs, fs_ino_off(fs, ino))->ctime;
	assert_int_equal(fs_write(fs, ino, 4096 + 7, 2000, &src, false), -ENOMEM);
	fail_add_at = NULL;
	verify(fs, ino);
	assert_int_equal(extents_of(fs, ino).n, 1);
	assert_int_equal(fs_lseek(fs, ino, 0, SEEK_DATA), -ENXIO);
	/* and a later write there shows none of those bytes */
	do_write(fs, ino, 4096 + 3000, &x, 1);
	verify(fs, ino);
	assert_int_equal(fs_lseek(fs, ino, 0, SEEK_DATA), 4096);

	/* one byte in page 5 makes that page data, zero around the byte */
	do_write(fs, ino, 5 * 4096 + 10, &x, 1);
	verify(fs, ino);
	l = extents_of(fs, ino);
	assert_int_equal(l.n, 5);
	assert_int_equal(l.v[0].flags, KMFS_EXT_UNWRITTEN);
	assert_int_equal(l.v[1].flags, 0);
	assert_int_equal(l.v[1].fpage, 1);
	assert_int_equal(l.v[2].flags, KMFS_EXT_UNWRITTEN);
	assert_int_equal(l.v[3].flags, 0);
	assert_int_equal(l.v[3].fpage, 5);
	assert_int_equal(l.v[3].count, 1);
	assert_int_equal(l.v[4].flags, KMFS_EXT_UNWRITTEN);
	assert_int_equal(fs_lseek(fs, ino, 4096, SEEK_HOLE), 2 * 4096);
	assert_int_equal(fs_lseek(fs, ino, 2 * 4096, SEEK_DATA), 5 * 4096);
	assert_int_equal(fs_lseek(fs, ino, 5 * 4096, SEEK_HOLE), 6 * 4096);
	assert_int_equal(fs_lseek(fs, ino, 6 * 4096, SEEK_DATA), -ENXIO);
	/* the same after a remount */
	assert_int_equal(tpool_remount(*state), 0);
	verify(fs, ino);
	assert_int_equal(fs_lseek(fs, ino, 2 * 4096, SEEK_DATA), 5 * 4096);
	assert_int_equal(fs_lseek(fs, ino, 5 * 4096 + 4095, SEEK_HOLE), 6 * 4096);

	/* page 9 overwritten in its middle, then every page whole */
	leave_crash_residue(fs, l.v[4].dpage + 3);
	do_write(fs, ino, 9 * 4096 + 100, &x, 1);
	verify(fs, ino);
	memset(page, 0x5A, sizeof(page));
	for (uint64_t i = 0; i < 16; i++)
		do_write(fs, ino, i * 4096, page, sizeof(page));
	verify(fs, ino);
	l = extents_of(fs, ino);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].flags, 0);
	assert_int_equal(l.v[0].count, 16);
	assert_int_equal(fs_lseek(fs, ino, 0, SEEK_HOLE), 16 * 4096);
}

/* A clone shares unwritten pages as unwritten; a write to one of them in
 * the clone copies zeroes, not what the page holds. */
static void test_data_clone_keeps_unwritten_pages(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t src = new_file(fs, "src"), dst, off;
	unsigned char x = 3, out[2 * 4096];
	struct readbuf r = { out, 0 };
	struct ext_list l;

	assert_int_equal(fs_fallocate(fs, src, 0, 0, 8 * 4096), 0);
	do_write(fs, src, 2 * 4096, &x, 1);
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "dst", S_IFREG | 0644, 0, &root, &off), 0);
	dst = fs_ino(fs, off);
	assert_int_equal(fs_clone(fs, src, 0, dst, 0, 8 * 4096, true), 8 * 4096);
	l = extents_of(fs, dst);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[0].flags, KMFS_EXT_UNWRITTEN);
	assert_int_equal(l.v[1].flags, 0);
	assert_int_equal(l.v[2].flags, KMFS_EXT_UNWRITTEN);
	assert_int_equal(fs_lseek(fs, dst, 0, SEEK_DATA), 2 * 4096);
	assert_int_equal(fs_lseek(fs, dst, 2 * 4096, SEEK_HOLE), 3 * 4096);

	/* a punch or a truncate inside a shared unwritten page leaves it
	 * as it is: shared, unwritten, reading zeroes */
	uint64_t shared = l.v[2].dpage + 2; /* file page 5 */
	struct stat at = { .st_size = 5 * 4096 + 10 }, o, st;
	assert_int_equal(fs_getattr(fs, dst, &st), 0);
	leave_crash_residue(fs, shared);
	assert_int_equal(fs_fallocate(fs, dst, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      4 * 4096 + 100, 50), 0);
	assert_int_equal(fs_setattr(fs, dst, &at, FS_SET_SIZE, &o), 0);
	l = extents_of(fs, dst);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[2].flags, KMFS_EXT_UNWRITTEN);
	assert_int_equal(l.v[2].dpage + 2, shared);
	assert_int_equal(o.st_blocks, st.st_blocks - 2 * 8);
	assert_int_equal(fs_read(fs, dst, 4 * 4096, 2 * 4096, reply, &r), 0);
	assert_int_equal(r.n, 4096 + 10);
	for (size_t i = 0; i < r.n; i++)
		assert_int_equal(out[i], 0);
	r.n = 0;

	leave_crash_residue(fs, l.v[0].dpage);
	struct membuf m = { &x };
	struct data_src one = { src_copy, &m, NULL, NULL };
	assert_int_equal(fs_write(fs, dst, 100, 1, &one, false), 1);
	assert_int_equal(fs_read(fs, dst, 0, sizeof(out), reply, &r), 0);
	assert_int_equal(r.n, sizeof(out));
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], i == 100 ? 3 : 0);
	/* the source's page is still shared no more, and still unwritten */
	assert_int_equal(fs_lseek(fs, src, 0, SEEK_DATA), 2 * 4096);
	assert_int_equal(fs_lseek(fs, dst, 0, SEEK_DATA), 0);
	r.n = 0;
	assert_int_equal(fs_read(fs, src, 0, 4096, reply, &r), 0);
	for (size_t i = 0; i < 4096; i++)
		assert_int_equal(out[i], 0);
}

/*
 * A write into space fallocate reserved never fails for want of metadata
 * (posix_fallocate's promise): when the extent cannot be split, the whole
 * extent becomes written, its other pages zeroed first. And with room, a
 * leaf that fills up is split before a conversion needs it.
 */
static void test_data_write_into_fallocated_space_needs_no_metadata(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t ino = new_file(fs, "reserved");
	struct check_opts co = { .quiet = true };
	struct check_result cr;
	unsigned char x = 0x42;
	struct ext_list l;

	assert_int_equal(fs_fallocate(fs, ino, 0, 0, 64 * 4096), 0);
	msize = 64 * 4096;
	do_write(fs, ino, 10 * 4096 + 5, &x, 1);
	do_write(fs, ino, 20 * 4096 + 5, &x, 1); /* the leaf grows: 5 extents */
	l = extents_of(fs, ino);
	assert_int_equal(l.n, 5);
	for (uint32_t k = 0; k < l.v[4].count; k++)
		leave_crash_residue(fs, l.v[4].dpage + k);
	for (uint32_t k = 0; k < l.v[2].count; k++)
		leave_crash_residue(fs, l.v[2].dpage + k);

	no_metadata = true;
	/* the leaf (room for 8) takes one split more: [21, 30) stays unwritten */
	do_write(fs, ino, 30 * 4096 + 100, &x, 1);
	/* then none: the whole extent [31, 64) becomes written */
	do_write(fs, ino, 40 * 4096, &x, 1);
	do_write(fs, ino, 50 * 4096, &x, 1); /* written already: in place */
	/* a write across two unwritten extents: both the same way */
	static unsigned char two[12 * 4096];
	memset(two, 0x37, sizeof(two));
	do_write(fs, ino, 4 * 4096 + 7, two, sizeof(two));
	no_metadata = false;
	verify(fs, ino);
	l = extents_of(fs, ino);
	assert_int_equal(l.n, 7);
	for (int i = 0; i < l.n; i++)
		assert_int_equal(l.v[i].flags, i == 4 ? KMFS_EXT_UNWRITTEN : 0);
	assert_int_equal(l.v[4].fpage, 21);
	assert_int_equal(l.v[6].fpage, 31);
	assert_int_equal(l.v[6].count, 33);
	assert_int_equal(fs_lseek(fs, ino, 0, SEEK_DATA), 0);
	assert_int_equal(fs_lseek(fs, ino, 0, SEEK_HOLE), 21 * 4096);
	/* an extent that reaches far beyond the write is not zeroed whole
	 * under the transaction lock: ENOSPC, nothing changed */
	uint64_t big = new_file(fs, "big");
	struct membuf mb = { &x };
	struct data_src one = { src_copy, &mb, NULL, NULL };
	assert_int_equal(fs_fallocate(fs, big, 0, 0, 2000 * 4096), 0);
	mb.p = &x;
	assert_int_equal(fs_write(fs, big, 5 * 4096, 1, &one, false), 1);
	no_metadata = true;
	mb.p = &x;
	assert_int_equal(fs_write(fs, big, 1000 * 4096, 1, &one, false), -ENOSPC);
	no_metadata = false;
	assert_int_equal(fs_lseek(fs, big, 6 * 4096, SEEK_DATA), -ENXIO);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);

	/* 175 conversions in one file: leaves split ahead of them */
	uint64_t many = new_file(fs, "many");
	assert_int_equal(fs_fallocate(fs, many, 0, 0, 700 * 4096), 0);
	msize = 700 * 4096;
	for (uint64_t pg = 1; pg < 700; pg += 4)
		do_write(fs, many, pg * 4096 + 3, &x, 1);
	verify(fs, many);
	assert_int_equal(fs_lseek(fs, many, 0, SEEK_DATA), 4096);
	assert_int_equal(fs_lseek(fs, many, 4096, SEEK_HOLE), 2 * 4096);
	assert_int_equal(fs_lseek(fs, many, 2 * 4096, SEEK_DATA), 5 * 4096);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	assert_int_equal(tpool_remount(*state), 0);
	verify(&((struct tpool *)*state)->fs, many);
}

/* ---- two files against byte models, with clones and crash residue ---- */

#define PAIR_MAX (512u << 10)
static unsigned char pair_model[2][PAIR_MAX + 64 * 1024];
static uint64_t pair_size[2];

/* put crash residue into every unwritten page of INO: nothing may show */
static int soil_unwritten(void *arg, const struct kmfs_extent *e)
{
	struct kmfs_fs *fs = arg;

	for (uint32_t k = 0; k < e->count && (e->flags & KMFS_EXT_UNWRITTEN); k++)
		leave_crash_residue(fs, e->dpage + k);
	return 0;
}

/* the file reads as its model, and a page with a byte that is not zero is
 * data to SEEK_DATA (zero pages may be either) */
static void pair_verify(struct kmfs_fs *fs, uint64_t ino, int f, int op)
{
	static unsigned char out[sizeof(pair_model[0])];
	struct readbuf r = { out, 0 };
	struct stat st;

	assert_int_equal(fs_getattr(fs, ino, &st), 0);
	assert_int_equal(st.st_size, pair_size[f]);
	assert_int_equal(fs_read(fs, ino, 0, sizeof(out), reply, &r), 0);
	assert_int_equal(r.n, pair_size[f]);
	if (memcmp(out, pair_model[f], r.n) != 0)
		fail_msg("op %d: file %d differs from its model", op, f);
	for (uint64_t pg = 0; pg * 4096 < r.n; pg++) {
		uint64_t end = (pg + 1) * 4096 < r.n ? (pg + 1) * 4096 : r.n;
		bool data = false;

		for (uint64_t b = pg * 4096; b < end && !data; b++)
			data = out[b] != 0;
		if (data && fs_lseek(fs, ino, (int64_t)(pg * 4096), SEEK_DATA) !=
			    (int64_t)(pg * 4096))
			fail_msg("op %d: file %d page %llu holds bytes, SEEK_DATA skips it",
				 op, f, (unsigned long long)pg);
	}
}

/*
 * Writes, truncates, punches, fallocate (plain, KEEP_SIZE, ZERO_RANGE) and
 * clones both ways, aligned and not, on two files, with residue put into
 * their unwritten pages now and then: every byte as the models say, and no
 * page with data reported as a hole.
 */
static void test_data_two_files_with_clones_match_models(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[PAIR_MAX / 2];
	uint64_t ino[2], seed = 2026;

	ino[0] = new_file(fs, "left");
	ino[1] = new_file(fs, "right");
	memset(pair_model, 0, sizeof(pair_model));
	pair_size[0] = pair_size[1] = 0;
	for (int op = 0; op < 1200; op++) {
		int f = (int)(trand(&seed) % 2), g = !f;
		uint64_t o = trand(&seed) % (PAIR_MAX / 2);
		size_t len = 1 + trand(&seed) % (op % 7 == 0 ? PAIR_MAX / 4 : 9000);
		unsigned char *m = pair_model[f];

		switch (trand(&seed) % 11) {
		case 0: { /* truncate */
			uint64_t ns = trand(&seed) % (PAIR_MAX / 2 + 9000);
			struct stat a = { .st_size = (off_t)ns }, o2;

			assert_int_equal(fs_setattr(fs, ino[f], &a, FS_SET_SIZE, &o2), 0);
			if (ns < pair_size[f])
				memset(m + ns, 0, pair_size[f] - ns);
			pair_size[f] = ns;
			break;
		}
		case 1: /* punch */
			assert_int_equal(fs_fallocate(fs, ino[f], FALLOC_FL_PUNCH_HOLE |
						      FALLOC_FL_KEEP_SIZE, o, len), 0);
			if (o < pair_size[f])
				memset(m + o, 0, (o + len < pair_size[f] ? o + len
								    : pair_size[f]) - o);
			break;
		case 2: case 3: { /* fallocate, with KEEP_SIZE or not */
			int keep = (int)(trand(&seed) % 2);

			assert_int_equal(fs_fallocate(fs, ino[f], keep ? FALLOC_FL_KEEP_SIZE : 0,
						      o, len), 0);
			if (!keep && o + len > pair_size[f])
				pair_size[f] = o + len;
			break;
		}
		case 4: /* zero a range */
			assert_int_equal(fs_fallocate(fs, ino[f], FALLOC_FL_ZERO_RANGE, o, len), 0);
			memset(m + o, 0, len);
			if (o + len > pair_size[f])
				pair_size[f] = o + len;
			break;
		case 5: { /* clone into the other file: whole pages shared */
			uint64_t so = (trand(&seed) % (PAIR_MAX / 8192)) * 4096;
			uint64_t dof = (trand(&seed) % (PAIR_MAX / 8192)) * 4096;
			ssize_t n;

			if (trand(&seed) % 3 == 0) /* unaligned ends are copied */
				dof += trand(&seed) % 4096;
			n = fs_clone(fs, ino[f], so, ino[g], dof, len, false);
			assert_true(n >= 0);
			memmove(pair_model[g] + dof, m + so, (size_t)n);
			if (n > 0 && dof + (uint64_t)n > pair_size[g])
				pair_size[g] = dof + (uint64_t)n;
			break;
		}
		case 6:
			assert_int_equal(emap_walk(&fs->pool,
						   fs_inode(fs, fs_ino_off(fs, ino[f])),
						   soil_unwritten, fs), 0);
			break;
		default: { /* write */
			struct membuf mb = { buf };
			struct data_src src = { src_copy, &mb, NULL, NULL };

			for (size_t i = 0; i < len; i++)
				buf[i] = (unsigned char)(trand(&seed) | 1);
			assert_int_equal(fs_write(fs, ino[f], o, len, &src, false),
					 (ssize_t)len);
			memcpy(m + o, buf, len);
			if (o + len > pair_size[f])
				pair_size[f] = o + len;
		}
		}
		pair_verify(fs, ino[0], 0, op);
		pair_verify(fs, ino[1], 1, op);
	}
	assert_int_equal(tpool_remount(*state), 0);
	pair_verify(&((struct tpool *)*state)->fs, ino[0], 0, -1);
	pair_verify(&((struct tpool *)*state)->fs, ino[1], 1, -1);
}

/*
 * A write the filesystem has too few pages for stores the whole pages that
 * fit and returns their length, as tmpfs does; then one that gets no page
 * at all fails with ENOSPC and changes nothing.
 */
static void test_data_full_pool_takes_a_short_write(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[1 << 20], back[1 << 20];
	const uint64_t chunk_pages = sizeof(buf) / 4096;
	uint64_t ino, off = 0, free_pages, shorts = 0;
	struct membuf m;
	struct data_src src = { src_copy, &m, NULL, NULL };
	struct statvfs sv;
	struct stat st;
	ssize_t n;

	/* a pool whose free pages are not a whole number of writes */
	assert_int_equal(fs_statfs(fs, &sv), 0);
	if (sv.f_bfree % chunk_pages == 0) {
		uint64_t pad = new_file(fs, "pad");
		m.p = buf;
		assert_int_equal(fs_write(fs, pad, 0, 1, &src, false), 1);
		assert_int_equal(fs_statfs(fs, &sv), 0);
	}
	free_pages = sv.f_bfree;
	ino = new_file(fs, "fill");
	memset(buf, 0x5A, sizeof(buf));
	for (;;) {
		m.p = buf;
		n = fs_write(fs, ino, off, sizeof(buf), &src, false);
		if (n < 0)
			break;
		assert_true(n > 0);
		if ((size_t)n < sizeof(buf)) {
			shorts++;
			assert_int_equal(n, (free_pages % chunk_pages) * 4096);
		}
		off += (uint64_t)n;
	}
	assert_int_equal(n, -ENOSPC);
	assert_int_equal(shorts, 1);
	assert_int_equal(off, free_pages * 4096);
	assert_int_equal(fs_statfs(fs, &sv), 0);
	assert_int_equal(sv.f_bfree, 0);
	fs_getattr(fs, ino, &st);
	assert_int_equal(st.st_size, off); /* the failed write changed nothing */
	/* the short write's bytes are there, up to the new size */
	off -= (free_pages % chunk_pages) * 4096;
	struct readbuf r = { back, 0 };
	assert_int_equal(fs_read(fs, ino, off, sizeof(back), reply, &r), 0);
	assert_int_equal(r.n, (free_pages % chunk_pages) * 4096);
	assert_memory_equal(back, buf, (free_pages % chunk_pages) * 4096);
	/* one byte in a page the file has fits; one in a new page does not */
	m.p = buf;
	assert_int_equal(fs_write(fs, ino, (uint64_t)st.st_size - 1, 1, &src, false), 1);
	m.p = buf;
	assert_int_equal(fs_write(fs, ino, (uint64_t)st.st_size, 1, &src, false), -ENOSPC);
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "fill"), 0);
}

/* fill the pool with file NAME, then free FREE pages of it */
static uint64_t fill_but(struct kmfs_fs *fs, const char *name, uint64_t free)
{
	static unsigned char buf[1 << 20];
	struct membuf m;
	struct data_src src = { src_copy, &m, NULL, NULL };
	uint64_t ino, off = 0;
	ssize_t n;

	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, name, S_IFREG | 0644, 0, &root, &ino), 0);
	ino = fs_ino(fs, ino);
	do {
		m.p = buf;
		n = fs_write(fs, ino, off, sizeof(buf), &src, false);
		off += n > 0 ? (uint64_t)n : 0;
	} while (n > 0);
	assert_int_equal(n, -ENOSPC);
	assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      0, free * 4096), 0);
	return ino;
}

/* the bytes of file INO at [OFF, OFF + LEN) are all BYTE */
static void expect_bytes(struct kmfs_fs *fs, uint64_t ino, uint64_t off, size_t len,
			 unsigned char byte)
{
	static unsigned char out[1 << 20];
	struct readbuf r = { out, 0 };

	assert_true(len <= sizeof(out));
	assert_int_equal(fs_read(fs, ino, off, len, reply, &r), 0);
	assert_int_equal(r.n, len);
	for (size_t i = 0; i < len; i++)
		if (out[i] != byte)
			fail_msg("byte %llu is %#x, want %#x",
				 (unsigned long long)(off + i), out[i], byte);
}

/*
 * FALLOC_FL_ZERO_RANGE: whole pages the file owns become unwritten where
 * they are (no page allocated or moved, the partial end pages zeroed in
 * place); pages a clone shares get new ones, the clone untouched; and when
 * the holes need more pages than are free, ENOSPC changes nothing.
 */
static void test_data_zero_range_in_place_and_all_or_nothing(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[64 * 4096];
	struct check_opts co = { .quiet = true };
	struct check_result cr;
	struct statvfs before, after;
	uint64_t f = new_file(fs, "f"), g, h;
	struct ext_list l;

	memset(buf, 0x11, sizeof(buf));
	do_write(fs, f, 0, buf, sizeof(buf));
	l = extents_of(fs, f);
	assert_int_equal(l.n, 1);
	uint64_t d = l.v[0].dpage;
	assert_int_equal(fs_statfs(fs, &before), 0);
	assert_int_equal(fs_fallocate(fs, f, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				      5 * 4096 + 100, 35 * 4096 - 93), 0);
	memset(model + 5 * 4096 + 100, 0, 35 * 4096 - 93);
	verify(fs, f);
	assert_int_equal(fs_statfs(fs, &after), 0);
	assert_int_equal(after.f_bfree, before.f_bfree);
	l = extents_of(fs, f);
	assert_int_equal(l.n, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(l.v[i].dpage, d + l.v[i].fpage);
	assert_int_equal(l.v[1].fpage, 6);
	assert_int_equal(l.v[1].count, 34);
	assert_int_equal(l.v[0].flags | l.v[2].flags, 0);
	assert_int_equal(l.v[1].flags, KMFS_EXT_UNWRITTEN);
	assert_int_equal(fs_lseek(fs, f, 0, SEEK_HOLE), 6 * 4096);
	assert_int_equal(fs_lseek(fs, f, 6 * 4096, SEEK_DATA), 40 * 4096);
	/* a write into it sees no old byte around it */
	do_write(fs, f, 20 * 4096 + 9, buf, 3);
	verify(fs, f);

	/* a clone's pages are left alone: the zeroed file gets new pages */
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "g", S_IFREG | 0644, 0, &root, &g), 0);
	g = fs_ino(fs, g);
	assert_int_equal(fs_clone(fs, f, 0, g, 0, 64 * 4096, true), 64 * 4096);
	assert_int_equal(fs_fallocate(fs, g, FALLOC_FL_ZERO_RANGE, 0, 70 * 4096), 0);
	expect_bytes(fs, g, 0, 70 * 4096, 0);
	verify(fs, f);
	l = extents_of(fs, g);
	for (int i = 0; i < l.n && i < 16; i++) {
		assert_int_equal(l.v[i].flags, KMFS_EXT_UNWRITTEN);
		assert_true(l.v[i].dpage + l.v[i].count <= d || l.v[i].dpage >= d + 64);
	}

	/* holes that need more pages than are free: ENOSPC, nothing changed
	 * (the owned pages in the range keep their bytes) */
	h = new_file(fs, "h");
	memset(buf, 0x22, 8 * 4096);
	do_write(fs, h, 0, buf, 8 * 4096);
	fill_but(fs, "fill", 4);
	assert_int_equal(fs_fallocate(fs, h, FALLOC_FL_ZERO_RANGE, 100, 20 * 4096),
			 -ENOSPC);
	verify(fs, h);
	l = extents_of(fs, h);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].flags, 0);
	/* two pages of holes fit */
	assert_int_equal(fs_fallocate(fs, h, FALLOC_FL_ZERO_RANGE, 100, 10 * 4096 - 100), 0);
	memset(model + 100, 0, 8 * 4096 - 100);
	msize = 10 * 4096;
	verify(fs, h);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "fill"), 0);
	assert_int_equal(tpool_remount(*state), 0);
	verify(&((struct tpool *)*state)->fs, h);
}

/*
 * On a pool whose metadata is full, zeroing a range needs no room when it
 * cuts no extent (a whole written extent becomes unwritten in place), and
 * one that would cut an extent in a full leaf fails with ENOSPC, nothing
 * changed.
 */
static void test_data_zero_range_with_full_metadata(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t ino = new_file(fs, "z");
	struct check_opts co = { .quiet = true };
	struct check_result cr;
	static unsigned char buf[64 * 4096];

	memset(buf, 0x37, sizeof(buf));
	do_write(fs, ino, 0, buf, sizeof(buf));
	/* punches grow the leaf only as far as they need: 4 extents, room for 4 */
	for (uint64_t pg = 2; pg <= 6; pg += 2) {
		assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE |
					      FALLOC_FL_KEEP_SIZE, pg * 4096, 4096), 0);
		memset(model + pg * 4096, 0, 4096);
	}
	const struct kmfs_inode *ip = fs_inode(fs, fs_ino_off(fs, ino));
	const struct kmfs_emap_index *idx = pool_ptr(&fs->pool, ip->data_off);
	const struct kmfs_emap_leaf *leaf = pool_ptr(&fs->pool, idx->ent[0].leaf_off);
	assert_int_equal(idx->nleaves, 1);
	assert_int_equal(leaf->n, 4);
	assert_int_equal(leaf->cap, 4);
	no_metadata = true;
	/* a cut inside an extent, or at one end of it: no room */
	assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_ZERO_RANGE, 10 * 4096, 4096),
			 -ENOSPC);
	assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_ZERO_RANGE, 7 * 4096, 4096),
			 -ENOSPC);
	verify(fs, ino);
	/* the whole extent [5, 6): no cut, so no room needed */
	assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_ZERO_RANGE, 5 * 4096, 4096), 0);
	memset(model + 5 * 4096, 0, 4096);
	no_metadata = false;
	verify(fs, ino);
	assert_int_equal(fs_lseek(fs, ino, 4 * 4096, SEEK_DATA), 7 * 4096);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
}

/*
 * Short writes that do not start on a page or in a hole: one from inside a
 * page the file owns, past its size, gets 3 new pages; a copy-on-write one
 * into a clone gets 2. Each stores whole pages from its start, keeps the
 * bytes before it, and leaves no page marked as holding bytes past the size.
 */
static void test_data_short_write_from_mid_page_and_into_a_clone(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char a[6000], b[8 * 4096], c[4 * 4096];
	struct kmfs_inode *fi;
	uint64_t f = new_file(fs, "f"), g, fill;
	struct stat st;

	memset(a, 0xaa, sizeof(a));
	memset(b, 0xbb, sizeof(b));
	memset(c, 0xcc, sizeof(c));
	assert_int_equal(write_mem(fs, f, 0, a, sizeof(a), false), sizeof(a));
	fill = fill_but(fs, "fill", 3);
	/* page 1 in place (owned, 5000..6000 inside the size), pages 2-4 new */
	assert_int_equal(write_mem(fs, f, 5000, b, sizeof(b), false), 5 * 4096 - 5000);
	fs_getattr(fs, f, &st);
	assert_int_equal(st.st_size, 5 * 4096);
	expect_bytes(fs, f, 0, 5000, 0xaa);
	expect_bytes(fs, f, 5000, 5 * 4096 - 5000, 0xbb);
	fi = fs_inode(fs, fs_ino_off(fs, f));
	assert_int_equal(fi->flags & KMFS_IF_PAST_SIZE, 0);

	/* g shares f's 5 pages; 2 free pages for its copies */
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "g", S_IFREG | 0644, 0, &root, &g), 0);
	g = fs_ino(fs, g);
	assert_int_equal(fs_clone(fs, f, 0, g, 0, 5 * 4096, true), 5 * 4096);
	assert_int_equal(fs_fallocate(fs, fill, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      3 * 4096, 2 * 4096), 0);
	assert_int_equal(write_mem(fs, g, 100, c, sizeof(c), false), 2 * 4096 - 100);
	expect_bytes(fs, g, 0, 100, 0xaa);
	expect_bytes(fs, g, 100, 2 * 4096 - 100, 0xcc);
	expect_bytes(fs, g, 2 * 4096, 3 * 4096, 0xbb); /* still shared */
	expect_bytes(fs, f, 0, 5000, 0xaa);             /* the source as it was */
	expect_bytes(fs, f, 5000, 5 * 4096 - 5000, 0xbb);
	fs_getattr(fs, g, &st);
	assert_int_equal(st.st_size, 5 * 4096);
}

/* A truncate or punch that fails after zeroing part of a page (here: when
 * it snapshots the ctime, its last change) returns the error and leaves
 * the file's bytes and size as they were. */
/* a write that stores into pages the file owns and then fails (here, its
 * transaction) puts those bytes back: the size and every byte are as before,
 * and the bytes past the size still read as zeroes once the file grows */
static void test_data_failed_write_changes_nothing(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[4096 + 100], next[3 * 4096];
	uint64_t ino = new_file(fs, "kept");
	struct kmfs_inode *ip = pool_ptr(&fs->pool, fs_ino_off(fs, ino));
	struct membuf m = { next };
	struct data_src src = { src_copy, &m, NULL, NULL };
	struct stat at = { .st_size = 3 * 4096 }, o;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 7 + 1);
	memset(next, 0xee, sizeof(next));
	do_write(fs, ino, 0, buf, sizeof(buf));
	/* page 0 and the size's page in place, page 2 new: the commit fails */
	fail_add_at = &ip->ctime;
	assert_int_equal(fs_write(fs, ino, 0, sizeof(next), &src, false), -ENOMEM);
	m.p = next + 4096; /* the same from inside page 1 */
	assert_int_equal(fs_write(fs, ino, 4096 + 50, 2 * 4096, &src, false), -ENOMEM);
	fail_add_at = NULL;
	/* the bytes past the size are zero again: no mark left to cost a
	 * zeroing of every page past the size at the next growth */
	assert_int_equal(ip->flags & KMFS_IF_PAST_SIZE, 0);
	verify(fs, ino);
	assert_int_equal(fs_setattr(fs, ino, &at, FS_SET_SIZE, &o), 0);
	msize = (uint64_t)at.st_size;
	verify(fs, ino);
}

static void test_data_failed_zeroing_changes_nothing(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static const struct { uint64_t off, len; } punches[] = {
		{ 3 * 4096 + 100, 50 },       /* inside one page */
		{ 5 * 4096 + 4000, 4096 + 200 }, /* partial, whole, partial */
	};
	static unsigned char buf[12 * 4096];
	uint64_t ino = new_file(fs, "kept");
	struct kmfs_inode *ip = pool_ptr(&fs->pool, fs_ino_off(fs, ino));
	struct stat at = { .st_size = 7 * 4096 + 123 }, o;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 7 + 1);
	do_write(fs, ino, 0, buf, sizeof(buf));
	fail_add_at = &ip->ctime;
	for (size_t i = 0; i < sizeof(punches) / sizeof(punches[0]); i++)
		assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					      punches[i].off, punches[i].len), -ENOMEM);
	assert_int_equal(fs_setattr(fs, ino, &at, FS_SET_SIZE, &o), -ENOMEM);
	fail_add_at = NULL;
	verify(fs, ino);
	/* a page shared with a clone gets a new copy, which the failed call
	 * gives back: both files keep their bytes */
	uint64_t twin, twin_off;
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "twin", S_IFREG | 0644, 0, &root, &twin_off), 0);
	twin = fs_ino(fs, twin_off);
	assert_int_equal(fs_clone(fs, ino, 0, twin, 0, sizeof(buf), false), (ssize_t)sizeof(buf));
	fail_add_at = &ip->ctime;
	assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      2 * 4096 + 10, 30), -ENOMEM);
	fail_add_at = NULL;
	verify(fs, ino);
	verify(fs, twin);
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "twin"), 0);
	/* and the same calls succeed once the transaction can */
	assert_int_equal(fs_setattr(fs, ino, &at, FS_SET_SIZE, &o), 0);
	memset(model + at.st_size, 0, msize - (uint64_t)at.st_size);
	msize = (uint64_t)at.st_size;
	verify(fs, ino);
}

/* With no room in the undo log for a page's snapshot, a truncate or punch
 * inside a page still works (the page is zeroed before the transaction). */
static void test_data_zeroing_without_undo_room(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[8 * 4096];
	uint64_t ino = new_file(fs, "tight");
	struct stat at = { .st_size = 6 * 4096 + 1000 }, o;

	memset(buf, 0x9E, sizeof(buf));
	do_write(fs, ino, 0, buf, sizeof(buf));
	fail_add_len = 77; /* the punch's range: its snapshot fails */
	assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      4096 + 9, 77), 0);
	memset(model + 4096 + 9, 0, 77);
	fail_add_len = 4096 - 1000; /* the tail after the new size */
	assert_int_equal(fs_setattr(fs, ino, &at, FS_SET_SIZE, &o), 0);
	fail_add_len = 0;
	msize = (uint64_t)at.st_size;
	verify(fs, ino);
	/* regrown, the old tail reads as zeroes */
	at.st_size = sizeof(buf);
	assert_int_equal(fs_setattr(fs, ino, &at, FS_SET_SIZE, &o), 0);
	memset(model + msize, 0, sizeof(buf) - msize);
	msize = sizeof(buf);
	verify(fs, ino);
}

/* A truncate that comes with a mode, owner or times is one transaction: if
 * the attributes cannot be set (here, their snapshot fails), neither the
 * size nor any byte nor the mode has changed. */
static void test_data_failed_setattr_changes_nothing(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[3 * 4096 + 100];
	uint64_t ino = new_file(fs, "attrs");
	struct kmfs_inode *ip = pool_ptr(&fs->pool, fs_ino_off(fs, ino));
	struct stat at = { .st_size = 5000, .st_mode = 0600, .st_uid = 7 }, o;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 13 + 5);
	do_write(fs, ino, 0, buf, sizeof(buf));
	fail_add_at = ip; /* the attributes' snapshot of the whole inode */
	assert_int_equal(fs_setattr(fs, ino, &at, FS_SET_SIZE | FS_SET_MODE, &o), -ENOMEM);
	at.st_size = 9 * 4096;
	assert_int_equal(fs_setattr(fs, ino, &at, FS_SET_SIZE | FS_SET_UID, &o), -ENOMEM);
	fail_add_at = NULL;
	verify(fs, ino);
	assert_int_equal(inode_mode(ip) & 07777, 0644);
	assert_int_equal(ip->uid, 0);
	/* and both go through together once they can */
	at.st_size = 5000;
	assert_int_equal(fs_setattr(fs, ino, &at, FS_SET_SIZE | FS_SET_MODE | FS_SET_UID, &o), 0);
	assert_int_equal(o.st_size, 5000);
	assert_int_equal(o.st_mode & 07777, 0600);
	assert_int_equal(o.st_uid, 7);
	msize = 5000;
	memset(model + msize, 0, sizeof(buf) - msize);
	verify(fs, ino);
	/* with no room for the tail's snapshot either, the tail zeroed before
	 * the transaction is put back when the attributes then fail */
	at.st_size = 2 * 4096 + 1000;
	do_write(fs, ino, 0, buf, sizeof(buf));
	fail_add_len = 4096 - 1000;
	fail_add_at = ip;
	assert_int_equal(fs_setattr(fs, ino, &at, FS_SET_SIZE | FS_SET_MODE, &o), -ENOMEM);
	fail_add_at = NULL;
	fail_add_len = 0;
	verify(fs, ino);
}

/* Fill what file INO's page FPAGE holds from byte FROM on with junk, as a
 * write that a crash cut short before its commit leaves it past the size,
 * with the inode marked as that write marked it. */
static void leave_junk(struct kmfs_fs *fs, uint64_t ino, uint64_t fpage, size_t from)
{
	struct kmfs_inode *ip = pool_ptr(&fs->pool, fs_ino_off(fs, ino));
	struct kmfs_extent e;

	ip->flags |= KMFS_IF_PAST_SIZE;
	assert_int_equal(emap_lookup(&fs->pool, ip, fpage, &e), 0);
	memset((char *)pool_page(&fs->pool, e.dpage + (fpage - e.fpage)) + from,
	       0xA5, 4096 - from);
}

/* Bytes a crash left past the size read as zeroes once the size grows over
 * them: by a truncate, a write further on, a fallocate, a clone. */
static void test_data_growth_hides_bytes_past_the_size(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[5000], x[10] = "0123456789";
	static unsigned char out[8 * 4096];
	uint64_t ino = new_file(fs, "grown"), twin, twin_off;
	struct stat at = { .st_size = 6000 }, o;

	memset(buf, 0x3C, sizeof(buf));
	do_write(fs, ino, 0, buf, sizeof(buf));
	leave_junk(fs, ino, 1, 5000 - 4096);
	assert_int_equal(fs_setattr(fs, ino, &at, FS_SET_SIZE, &o), 0);
	msize = 6000;
	verify(fs, ino);
	leave_junk(fs, ino, 1, 6000 - 4096);
	do_write(fs, ino, 7000, x, sizeof(x));
	verify(fs, ino);
	leave_junk(fs, ino, 1, 7010 - 4096);
	assert_int_equal(fs_fallocate(fs, ino, 0, 8000, 100), 0);
	msize = 8100;
	verify(fs, ino);
	/* pages allocated past the size, written but never committed */
	assert_int_equal(fs_fallocate(fs, ino, FALLOC_FL_KEEP_SIZE, 8192, 2 * 4096), 0);
	leave_junk(fs, ino, 1, 8100 - 4096);
	leave_junk(fs, ino, 3, 0);
	at.st_size = 4 * 4096;
	assert_int_equal(fs_setattr(fs, ino, &at, FS_SET_SIZE, &o), 0);
	msize = 4 * 4096;
	verify(fs, ino);
	/* a clone shares the last page of both files: it must not carry junk
	 * from past the source's size into either */
	at.st_size = 5000;
	assert_int_equal(fs_setattr(fs, ino, &at, FS_SET_SIZE, &o), 0);
	msize = 5000;
	memset(model + msize, 0, 4 * 4096 - msize);
	leave_junk(fs, ino, 1, 5000 - 4096);
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "twin", S_IFREG | 0644, 0, &root, &twin_off), 0);
	twin = fs_ino(fs, twin_off);
	assert_int_equal(fs_clone(fs, ino, 0, twin, 0, 5000, false), 5000);
	at.st_size = 2 * 4096;
	assert_int_equal(fs_setattr(fs, twin, &at, FS_SET_SIZE, &o), 0);
	struct readbuf r = { out, 0 };
	assert_int_equal(fs_read(fs, twin, 0, sizeof(out), reply, &r), 0);
	assert_int_equal(r.n, 2 * 4096);
	assert_memory_equal(out, model, 2 * 4096);
	/* and whole pages cloned beyond the size: the gap before them */
	at.st_size = 5000;
	assert_int_equal(fs_setattr(fs, twin, &at, FS_SET_SIZE, &o), 0);
	leave_junk(fs, twin, 1, 5000 - 4096);
	assert_int_equal(fs_clone(fs, ino, 0, twin, 3 * 4096, 4096, true), 4096);
	r.n = 0;
	assert_int_equal(fs_read(fs, twin, 0, sizeof(out), reply, &r), 0);
	assert_int_equal(r.n, 4 * 4096);
	assert_memory_equal(out, model, 3 * 4096);
	assert_memory_equal(out + 3 * 4096, model, 4096);
}

/* a data_src that notes whether the inode was marked when it was copied */
struct marked_src { const unsigned char *p; const struct kmfs_inode *ip; int marked; };
static int src_note_mark(void *arg, void *dst, size_t len)
{
	struct marked_src *m = arg;
	m->marked += (m->ip->flags & KMFS_IF_PAST_SIZE) != 0;
	memcpy(dst, m->p, len);
	m->p += len;
	return 0;
}

/* A write that stores past the size into a page the file owns marks the
 * inode before it stores and unmarks it in its commit: a crash in between
 * leaves the mark for the next growth, and only then is anything zeroed. */
static void test_data_write_past_the_size_is_marked(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[5000], more[3000];
	uint64_t ino = new_file(fs, "marked");
	struct kmfs_inode *ip = pool_ptr(&fs->pool, fs_ino_off(fs, ino));
	struct marked_src m = { more, ip, 0 };
	struct data_src src = { src_note_mark, &m, NULL, NULL };

	memset(buf, 0x42, sizeof(buf));
	memset(more, 0x24, sizeof(more));
	do_write(fs, ino, 0, buf, sizeof(buf));
	assert_int_equal(ip->flags & KMFS_IF_PAST_SIZE, 0);
	/* into the tail of page 1, which the file owns: marked meanwhile */
	assert_int_equal(fs_write(fs, ino, 5000, sizeof(more), &src, false), sizeof(more));
	assert_int_equal(m.marked, 1);
	assert_int_equal(ip->flags & KMFS_IF_PAST_SIZE, 0);
	memcpy(model + 5000, more, sizeof(more));
	msize = 8000;
	verify(fs, ino);
	/* an overwrite inside the size is not */
	m = (struct marked_src){ more, ip, 0 };
	assert_int_equal(fs_write(fs, ino, 100, sizeof(more), &src, false), sizeof(more));
	assert_int_equal(m.marked, 0);
	memcpy(model + 100, more, sizeof(more));
	verify(fs, ino);
}

/* a data_src that gives BUDGET bytes and then fails, as a request cut short */
struct failing_src { const unsigned char *p; size_t budget; };
static int src_fail_after(void *arg, void *dst, size_t len)
{
	struct failing_src *f = arg;
	if (len > f->budget)
		return -EIO;
	memcpy(dst, f->p, len);
	f->p += len;
	f->budget -= len;
	return 0;
}

/* An overwrite in place whose second run fails reports the bytes of the
 * first as written (a short write), not an error after changing them. */
static void test_data_overwrite_cut_short_is_a_short_write(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[2 * 4096], next[2 * 4096];
	uint64_t ino = new_file(fs, "runs"), other;
	struct kmfs_inode *ip = pool_ptr(&fs->pool, fs_ino_off(fs, ino));
	struct kmfs_extent e;

	memset(buf, 0x11, sizeof(buf));
	memset(next, 0x77, sizeof(next));
	do_write(fs, ino, 0, buf, 4096);
	/* another file's page in between: the file's pages are two runs */
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "between", S_IFREG | 0644, 0, &root, &other), 0);
	assert_int_equal(write_mem(fs, fs_ino(fs, other), 0, buf, 4096, false), 4096);
	do_write(fs, ino, 4096, buf + 4096, 4096);
	assert_int_equal(emap_lookup(&fs->pool, ip, 0, &e), 0);
	assert_int_equal(e.count, 1);

	struct failing_src f = { next, 4096 + 100 };
	int why = 0;
	struct data_src src = { src_fail_after, &f, NULL, &why };
	assert_int_equal(fs_write(fs, ino, 0, sizeof(next), &src, false), 4096);
	assert_int_equal(why, -EIO); /* what a writeback reply must say */
	memcpy(model, next, 4096);
	verify(fs, ino);
	/* nothing stored at all: the error */
	f = (struct failing_src){ next, 10 };
	assert_int_equal(fs_write(fs, ino, 0, sizeof(next), &src, false), -EIO);
	verify(fs, ino);
}

/* atime after a read of FILE whose times were set to A, M and C (seconds) */
static int64_t atime_after_read(struct kmfs_fs *fs, uint64_t ino, int64_t a,
				int64_t m, int64_t c)
{
	struct stat st = { .st_atim = { a, 0 }, .st_mtim = { m, 0 },
			   .st_ctim = { c, 0 } };
	unsigned char buf[16];
	struct readbuf r = { buf, 0 };

	struct stat out;

	assert_int_equal(fs_setattr(fs, ino, &st, FS_SET_ATIME | FS_SET_MTIME |
				    FS_SET_CTIME, &out), 0);
	assert_int_equal(fs_read(fs, ino, 0, sizeof(buf), reply, &r), 0);
	assert_int_equal(fs_getattr(fs, ino, &st), 0);
	return st.st_atim.tv_sec;
}

/* relatime, for any times a pool may hold (utimensat stores what it is
 * given): the access time moves when it is not after the modification and
 * change times, or a day old */
static void test_data_relatime_takes_any_times(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t off, ino;
	int64_t now = time(NULL), day = 24 * 3600;

	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "t", S_IFREG | 0644, 0, &root,
				  &off), 0);
	ino = fs_ino(fs, off);
	assert_int_equal(write_mem(fs, ino, 0, "x", 1, false), 1);
	/* after the other two and an hour old: kept */
	assert_int_equal(atime_after_read(fs, ino, now - 3600, now - 7200,
					  now - 7200), now - 3600);
	/* two days old: moved */
	assert_true(atime_after_read(fs, ino, now - 2 * day, now - 3 * day,
				     now - 3 * day) >= now);
	/* not after the modification time: moved */
	assert_true(atime_after_read(fs, ino, now - 3600, now - 60, now - 7200) >= now);
	/* the far past and far future of int64 (a day's sum would overflow) */
	assert_true(atime_after_read(fs, ino, INT64_MIN + 5, INT64_MIN,
				     INT64_MIN) >= now);
	assert_int_equal(atime_after_read(fs, ino, INT64_MAX, INT64_MAX - 1,
					  INT64_MAX - 1), INT64_MAX);
}

/* an unlinked file whose freeing fails (a full undo log: seen with a
 * full pool) is freed once another file is, not left until a remount */
static void test_data_unlinked_file_freed_after_a_failed_free(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[1 << 20];
	struct statvfs before, held, after;
	uint64_t a, b;

	assert_int_equal(fs_statfs(fs, &before), 0);
	a = new_file(fs, "a");
	b = new_file(fs, "b");
	memset(buf, 0xab, sizeof(buf));
	do_write(fs, a, 0, buf, sizeof(buf));
	do_write(fs, b, 0, buf, 4096);
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "a"), 0);
	fail_add_at = &fs_inode(fs, fs_ino_off(fs, a))->handle_tag;
	fs_forget(fs, a, 1); /* its last reference: the free fails */
	fail_add_at = NULL;
	assert_int_equal(fs_statfs(fs, &held), 0);
	assert_int_equal(before.f_files - before.f_ffree + 2, held.f_files - held.f_ffree);
	assert_true(held.f_bfree + sizeof(buf) / 4096 <= before.f_bfree);
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "b"), 0);
	fs_forget(fs, b, 1); /* b is freed, and a after it */
	assert_int_equal(fs_statfs(fs, &after), 0);
	assert_int_equal(after.f_files - after.f_ffree, before.f_files - before.f_ffree);
	assert_int_equal(after.f_bfree, before.f_bfree);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_data_random_ops_match_model,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_new_pages_hold_no_stale_bytes,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_punch_partial_pages_zeroes_exactly,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_zero_range_in_place_and_all_or_nothing,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_zero_range_with_full_metadata,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_seek_data_and_hole,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_full_pool_takes_a_short_write,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_short_write_from_mid_page_and_into_a_clone,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_failed_write_changes_nothing,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_failed_zeroing_changes_nothing,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_zeroing_without_undo_room,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_failed_setattr_changes_nothing,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_growth_hides_bytes_past_the_size,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_overwrite_cut_short_is_a_short_write,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_write_past_the_size_is_marked,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_fallocated_range_is_unwritten,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_clone_keeps_unwritten_pages,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_write_into_fallocated_space_needs_no_metadata,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_two_files_with_clones_match_models,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_relatime_takes_any_times,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_data_unlinked_file_freed_after_a_failed_free,
			tpool_setup_default, tpool_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
