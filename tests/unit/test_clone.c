// SPDX-License-Identifier: BSD-3-Clause
/* test_clone -- copy-on-write clones against shadow copies: 100k random
 * writes, truncates, punches, clones and unlinks; then the checker must
 * find every page reference count right. */
#include <errno.h>
#include <fcntl.h>

#include "helpers.h"
#include "check.h"

#define NF 4
#define MAXF (1u << 20)
static unsigned char shadow[NF][MAXF];
static uint64_t ssize[NF];
static uint64_t ino[NF];

static void create(struct kmfs_fs *fs, int i)
{
	char name[16];
	uint64_t off;

	snprintf(name, sizeof(name), "f%d", i);
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, name, S_IFREG | 0644, 0, &root, &off), 0);
	ino[i] = fs_ino(fs, off);
	memset(shadow[i], 0, MAXF);
	ssize[i] = 0;
}

static void verify_all(struct kmfs_fs *fs)
{
	static unsigned char out[MAXF + 8192];

	for (int i = 0; i < NF; i++) {
		struct readbuf r = { out, 0 };
		assert_int_equal(fs_read(fs, ino[i], 0, sizeof(out), reply, &r), 0);
		assert_int_equal(r.n, ssize[i]);
		assert_memory_equal(out, shadow[i], ssize[i]);
	}
}

/* pages with more than one reference, by a scan; the running count must agree */
static uint64_t count_shared(struct kmfs_fs *fs)
{
	struct pages_stats ps;
	uint64_t shared = 0;

	for (uint64_t i = 0; i < fs->pages.nunits * KMFS_UNIT_PAGES; i++)
		shared += fs->pool.refs[i] > 1;
	pages_stats(&fs->pages, &ps);
	assert_int_equal(ps.shared_pages, shared);
	return shared;
}

static void test_clone_random_ops_match_shadow(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[65536];
	uint64_t seed = 7;
	long clones = 0;
	uint64_t max_shared = 0;

	for (int i = 0; i < NF; i++)
		create(fs, i);
	for (long op = 0; op < 100000; op++) {
		int a = (int)(trand(&seed) % NF), b = (int)(trand(&seed) % NF);
		uint64_t off = trand(&seed) % (MAXF - sizeof(buf));
		size_t len = 1 + trand(&seed) % (op % 16 ? 6000 : sizeof(buf));
		unsigned k = (unsigned)(trand(&seed) % 100);

		if (k < 45) { /* write */
			struct membuf m = { buf };
			struct data_src src = { src_copy, &m, NULL, NULL };
			for (size_t j = 0; j < len; j++)
				buf[j] = (unsigned char)(op + j);
			assert_int_equal(fs_write(fs, ino[a], off, len, &src, false), (ssize_t)len);
			memcpy(shadow[a] + off, buf, len);
			if (off + len > ssize[a])
				ssize[a] = off + len;
		} else if (k < 55) { /* truncate */
			uint64_t ns = trand(&seed) % MAXF;
			struct stat at = { .st_size = (off_t)ns }, o;
			assert_int_equal(fs_setattr(fs, ino[a], &at, FS_SET_SIZE, &o), 0);
			if (ns < ssize[a])
				memset(shadow[a] + ns, 0, ssize[a] - ns);
			ssize[a] = ns;
		} else if (k < 65) { /* punch */
			assert_int_equal(fs_fallocate(fs, ino[a], FALLOC_FL_PUNCH_HOLE |
						      FALLOC_FL_KEEP_SIZE, off, len), 0);
			if (off < ssize[a])
				memset(shadow[a] + off, 0,
				       (off + len < ssize[a] ? off + len : ssize[a]) - off);
		} else if (k < 95 && a != b) { /* clone a range, aligned or not */
			uint64_t so = trand(&seed) % MAXF, dof;
			uint64_t n = trand(&seed) % (k < 80 ? MAXF : 20000);
			if (k < 88)
				so &= ~4095ull;
			dof = k < 88 ? so : trand(&seed) % MAXF;
			if (so >= ssize[a])
				continue;
			if (n > ssize[a] - so)
				n = ssize[a] - so;
			if (dof + n > MAXF)
				n = MAXF - dof;
			ssize_t r = fs_clone(fs, ino[a], so, ino[b], dof, n, false);
			assert_int_equal(r, (ssize_t)n);
			memmove(shadow[b] + dof, shadow[a] + so, n);
			if (dof + n > ssize[b])
				ssize[b] = dof + n;
			clones++;
		} else if (k >= 95) { /* unlink and start again */
			char name[16];
			snprintf(name, sizeof(name), "f%d", a);
			assert_int_equal(fs_unlink(fs, FS_ROOT_INO, name), 0);
			fs_forget(fs, ino[a], 1);
			create(fs, a);
		}
		if (op % 10000 == 0) {
			verify_all(fs);
			uint64_t n = count_shared(fs);
			max_shared = n > max_shared ? n : max_shared;
		}
	}
	verify_all(fs);
	assert_true(clones > 10000);
	/* every page's reference count matches the extent maps */
	struct check_opts co = { .quiet = true };
	struct check_result cr;
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	/* the running count of shared pages is what a remount (which counts
	 * them afresh) finds */
	uint64_t shared = count_shared(fs);
	struct pages_stats ps;
	assert_true(max_shared > 0);
	assert_int_equal(tpool_remount(*state), 0);
	fs = &((struct tpool *)*state)->fs;
	pages_stats(&fs->pages, &ps);
	assert_int_equal(ps.shared_pages, shared);
	/* after removing everything no page is in use */
	for (int i = 0; i < NF; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(fs_unlink(fs, FS_ROOT_INO, name), 0);
		fs_forget(fs, ino[i], 1);
	}
	assert_int_equal(fs->pages.used_pages, 0);
	pages_stats(&fs->pages, &ps);
	assert_int_equal(ps.shared_pages, 0);
}

static void test_clone_must_share_refuses_unaligned(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[3 * 4096];
	struct membuf m = { buf };
	struct data_src src = { src_copy, &m, NULL, NULL };

	create(fs, 0);
	create(fs, 1);
	assert_int_equal(fs_write(fs, ino[0], 0, sizeof(buf), &src, false), sizeof(buf));
	assert_int_equal(fs_clone(fs, ino[0], 1, ino[1], 2, 4096, true), -EINVAL);
	assert_int_equal(fs_clone(fs, ino[0], 0, ino[1], 0, 8192, true), 8192);
	assert_int_equal(fs_clone(fs, ino[0], 0, ino[0], 4096, 8192, false), -EINVAL);
}

/* ranges of one file are checked for overlap once cut to its size, and a
 * clone may not take a file past the largest size stat can report */
static void test_clone_checks_ranges_as_cut_to_the_size(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[4 * 4096], out[8 * 4096];
	struct membuf m = { buf };
	struct data_src src = { src_copy, &m, NULL, NULL };
	struct readbuf r = { out, 0 };
	struct stat st;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i / 4096 + 1);
	create(fs, 0);
	create(fs, 1);
	assert_int_equal(fs_write(fs, ino[0], 0, sizeof(buf), &src, false), sizeof(buf));
	/* [8192, 16384) onto [4096, 12288): they overlap, although the
	 * length asked for makes doff + len wrap */
	assert_int_equal(fs_clone(fs, ino[0], 8192, ino[0], 4096, UINT64_MAX, false), -EINVAL);
	assert_int_equal(fs_read(fs, ino[0], 0, sizeof(out), reply, &r), 0);
	assert_int_equal(r.n, sizeof(buf));
	assert_memory_equal(out, buf, sizeof(buf));
	/* "to the end" from 0 onto the end of the same file does not overlap */
	assert_int_equal(fs_clone(fs, ino[0], 0, ino[0], sizeof(buf), UINT64_MAX / 4, false),
			 sizeof(buf));
	r.n = 0;
	assert_int_equal(fs_read(fs, ino[0], 0, sizeof(out), reply, &r), 0);
	assert_int_equal(r.n, 2 * sizeof(buf));
	assert_memory_equal(out, buf, sizeof(buf));
	assert_memory_equal(out + sizeof(buf), buf, sizeof(buf));
	/* past 2^63 - 1: refused, and the file is unchanged */
	assert_int_equal(fs_clone(fs, ino[0], 0, ino[1], (1ull << 63) - 4096, 4096, false),
			 -EFBIG);
	assert_int_equal(fs_clone(fs, ino[0], 0, ino[1], (1ull << 63) - 8192, 8192, true),
			 -EFBIG);
	assert_int_equal(fs_getattr(fs, ino[1], &st), 0);
	assert_int_equal(st.st_size, 0);
	/* within one file, onto its own end from inside its last page: the
	 * bytes past the new size stay zero (a truncate up shows them) */
	struct stat a = { .st_size = 5000 }, o2;
	assert_int_equal(fs_setattr(fs, ino[0], &a, FS_SET_SIZE, &o2), 0);
	assert_int_equal(fs_clone(fs, ino[0], 904, ino[0], 5000, 4096, false), 4096);
	a.st_size = 3 * 4096;
	assert_int_equal(fs_setattr(fs, ino[0], &a, FS_SET_SIZE, &o2), 0);
	r.n = 0;
	assert_int_equal(fs_read(fs, ino[0], 0, sizeof(out), reply, &r), 0);
	assert_int_equal(r.n, 3 * 4096);
	assert_memory_equal(out, buf, 5000);
	assert_memory_equal(out + 5000, buf + 904, 4096);
	for (size_t i = 5000 + 4096; i < 3 * 4096; i++)
		assert_int_equal(out[i], 0);
	/* up to it: fine */
	assert_int_equal(fs_clone(fs, ino[0], 0, ino[1], (1ull << 63) - 8192, 4095, false),
			 4095);
	assert_int_equal(fs_getattr(fs, ino[1], &st), 0);
	assert_true(st.st_size > 0);
	assert_int_equal((uint64_t)st.st_size, (1ull << 63) - 8192 + 4095);
}

/* an unaligned copy (done in 1 MiB transactions) that runs out of space
 * part way fills the free pages and reports the bytes it copied, like a
 * short write, and those are in the file; a copy that can do nothing
 * fails with ENOSPC */
static void test_clone_out_of_space_reports_what_was_copied(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[1 << 20], out[(4 << 20) + 8192];
	const uint64_t len = 4 << 20;
	struct membuf m;
	struct data_src src = { src_copy, &m, NULL, NULL };
	struct readbuf r = { out, 0 };
	uint64_t off = 0;
	ssize_t n;

	for (int i = 0; i < 3; i++)
		create(fs, i);
	for (uint64_t o = 0; o < len; o += sizeof(buf)) {
		for (size_t j = 0; j < sizeof(buf); j++)
			buf[j] = (unsigned char)((o + j) * 7 + 1);
		m.p = buf;
		assert_int_equal(fs_write(fs, ino[0], o, sizeof(buf), &src, false), sizeof(buf));
	}
	do { /* fill the pool with file 2, then free 2.5 MiB of it */
		m.p = buf;
		n = fs_write(fs, ino[2], off, sizeof(buf), &src, false);
		off += n > 0 ? (uint64_t)n : 0;
	} while (n > 0);
	assert_int_equal(n, -ENOSPC);
	assert_int_equal(fs_fallocate(fs, ino[2], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      0, 5u << 19), 0);

	n = fs_clone(fs, ino[0], 0, ino[1], 1, len, false);
	/* the 640 pages freed hold file bytes [1, 2.5 MiB) */
	assert_int_equal(n, (5 << 19) - 1);
	assert_int_equal(fs_read(fs, ino[1], 0, sizeof(out), reply, &r), 0);
	assert_int_equal(r.n, 1 + (uint64_t)n);
	assert_int_equal(out[0], 0);
	for (uint64_t j = 0; j < (uint64_t)n; j++)
		if (out[1 + j] != (unsigned char)(j * 7 + 1))
			fail_msg("byte %llu of the copy is wrong", (unsigned long long)j);
	/* the rest does not fit at all */
	assert_int_equal(fs_clone(fs, ino[0], (uint64_t)n, ino[1], 1 + (uint64_t)n,
				  len - (uint64_t)n, false), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clone_random_ops_match_shadow,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_clone_must_share_refuses_unaligned,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_clone_checks_ranges_as_cut_to_the_size,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_clone_out_of_space_reports_what_was_copied,
			tpool_setup_default, tpool_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
