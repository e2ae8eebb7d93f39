// SPDX-License-Identifier: BSD-3-Clause
/* test_dir -- directories: lookup, create, unlink, rename, readdir cookies. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>

#include "helpers.h"
#include "check.h"
#include "dir.h"
#include "txn.h"


/* tx_alloc is linked wrapped (-Wl,--wrap=tx_alloc): with no_tables set,
 * a bucket table cannot be had, as when libpmemobj has no run for its size;
 * with no_targets, nor can a symlink's target; last_inode is the inode
 * most recently allocated */
uint64_t __real_tx_alloc(size_t size, unsigned type, bool zero);
static bool no_tables, no_targets;
static uint64_t last_inode;
uint64_t __wrap_tx_alloc(size_t size, unsigned type, bool zero)
{
	if ((no_tables && type == KMFS_T_DIRTABLE) ||
	    (no_targets && type == KMFS_T_SYMLINK))
		return 0;
	uint64_t off = __real_tx_alloc(size, type, zero);
	if (type == KMFS_T_INODE)
		last_inode = off;
	return off;
}

static uint64_t mk(struct kmfs_fs *fs, uint64_t dir, const char *name)
{
	uint64_t off;
	assert_int_equal(fs_mknod(fs, dir, name, S_IFREG | 0644, 0, &root, &off), 0);
	return off;
}

struct collect { char (*names)[32]; size_t n, cap; uint64_t last; };

static int collect_fn(void *arg, const char *name, size_t len, uint64_t ino,
		      unsigned type, uint64_t next)
{
	struct collect *c = arg;
	if (c->n == c->cap)
		return 1;
	memcpy(c->names[c->n], name, len);
	c->names[c->n][len] = 0;
	c->n++;
	c->last = next;
	return 0;
}

static void test_dir_many_entries(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	const int N = 20000;
	char name[32];
	uint64_t off;

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "file-%d", i);
		mk(fs, FS_ROOT_INO, name);
	}
	assert_int_equal(dir_count(&fs->pool, fs_inode(fs, fs_ino_off(fs, 1))), N);
	for (int i = 0; i < N; i += 7) {
		snprintf(name, sizeof(name), "file-%d", i);
		assert_int_equal(fs_lookup(fs, FS_ROOT_INO, name, &off), 0);
	}
	assert_int_equal(fs_lookup(fs, FS_ROOT_INO, "file-x", &off), -ENOENT);
	/* readdir in small batches sees every name once */
	struct collect c = { calloc(N + 2, 32), 0, 100, 0 };
	uint64_t pos = 0;
	size_t total = 0;
	for (;;) {
		c.n = 0;
		fs_readdir(fs, FS_ROOT_INO, pos, collect_fn, &c);
		if (c.n == 0)
			break;
		total += c.n;
		pos = c.last;
	}
	assert_int_equal(total, N + 2);
	free(c.names);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "file-%d", i);
		assert_int_equal(fs_unlink(fs, FS_ROOT_INO, name), 0);
	}
	assert_true(dir_is_empty(&fs->pool, fs_inode(fs, fs_ino_off(fs, 1))));
}

/* the shape that keeps a lookup, create or remove constant-time: at most 2
 * entries per bucket on average, few in any one, no long stretch of empty
 * buckets (find_pred walks back over them) and no run of colliding cookies */
struct shape { uint64_t buckets, max_in_bucket, max_empty_stretch, max_run; };

static struct shape table_shape(struct kmfs_fs *fs, uint64_t dir)
{
	const struct kmfs_pool *p = &fs->pool;
	const struct kmfs_dirtable *tab =
		pool_ptr(p, fs_inode(fs, fs_ino_off(fs, dir))->data_off);
	uint64_t nb = 1ull << tab->bits, *in = calloc(nb, sizeof(*in));
	uint64_t prev = 0, run = 0, empty = 0;
	struct shape sh = { .buckets = nb };

	assert_non_null(in);
	for (uint64_t off = tab->head_off; off; ) {
		const struct kmfs_dirent *e = pool_ptr(p, off);
		uint64_t b = e->cookie >> (KMFS_COOKIE_BITS - tab->bits);

		if (++in[b] > sh.max_in_bucket)
			sh.max_in_bucket = in[b];
		run = e->cookie == prev + 1 ? run + 1 : 1;
		if (run > sh.max_run)
			sh.max_run = run;
		prev = e->cookie;
		off = e->next_off;
	}
	for (uint64_t b = 0; b < nb; b++) {
		empty = in[b] ? 0 : empty + 1;
		if (empty > sh.max_empty_stretch)
			sh.max_empty_stretch = empty;
	}
	free(in);
	return sh;
}

/*
 * A million entries (the "directories with a million entries stay
 * fast"): the table grows with them and the keyed hash spreads them, so no
 * operation walks more than a few entries; every name is found, readdir
 * sees each once, and removing them all shrinks the table back.
 */
static void test_dir_million_entries_stay_indexed(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	const uint64_t N = 1000000;
	char name[32];
	uint64_t dir, off, pos = 0, seen = 0;
	struct shape sh;

	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "big", 0755, &root, &dir), 0);
	dir = fs_ino(fs, dir);
	for (uint64_t i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "entry-%llu", (unsigned long long)i);
		mk(fs, dir, name);
	}
	assert_int_equal(dir_count(&fs->pool, fs_inode(fs, fs_ino_off(fs, dir))), N);
	sh = table_shape(fs, dir);
	print_message("%llu entries: %llu buckets, at most %llu in one, %llu empty "
		      "side by side, runs of %llu\n", (unsigned long long)N,
		      (unsigned long long)sh.buckets, (unsigned long long)sh.max_in_bucket,
		      (unsigned long long)sh.max_empty_stretch,
		      (unsigned long long)sh.max_run);
	/* grown at 2 per bucket, by 4: between 1/2 and 2 per bucket */
	assert_true(sh.buckets * 2 >= N && sh.buckets <= N * 2);
	/* Poisson(<= 2) over 2^19 buckets: > 20 in one, or 30 empty ones
	 * side by side, is below 1e-9; runs need two equal or adjacent 63-bit
	 * hashes among a million (about 1e-7) */
	assert_true(sh.max_in_bucket <= 20);
	assert_true(sh.max_empty_stretch <= 30);
	assert_true(sh.max_run <= 2);
	for (uint64_t i = 0; i < N; i += 3) {
		snprintf(name, sizeof(name), "entry-%llu", (unsigned long long)i);
		assert_int_equal(fs_lookup(fs, dir, name, &off), 0);
	}
	struct collect c = { calloc(1000, 32), 0, 1000, 0 };
	for (;;) {
		c.n = 0;
		fs_readdir(fs, dir, pos, collect_fn, &c);
		if (c.n == 0)
			break;
		seen += c.n;
		pos = c.last;
	}
	free(c.names);
	assert_int_equal(seen, N + 2);
	for (uint64_t i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "entry-%llu", (unsigned long long)i);
		assert_int_equal(fs_unlink(fs, dir, name), 0);
	}
	sh = table_shape(fs, dir);
	assert_int_equal(sh.buckets, 8); /* DIR_MIN_BITS again */
	assert_int_equal(fs_rmdir(fs, FS_ROOT_INO, "big"), 0);
}

/* A file handle's inode number is used only when it names a live inode
 * with its tag: not another object, not the data, not an inode whose tag
 * was made for another place; inodes from before tags get one at the next
 * writable mount; a format-1 pool (no key) trusts no handle */
static void test_dir_handles_name_live_inodes_only(void **state)
{
	struct tpool *t = *state;
	struct kmfs_fs *fs = &t->fs;
	struct fs_opts ro = { .readonly = true }, rw = { .lend = true };
	uint64_t f = mk(fs, FS_ROOT_INO, "f"), g = mk(fs, FS_ROOT_INO, "g");
	uint64_t u = mk(fs, FS_ROOT_INO, "u"), off = 0;
	struct kmfs_inode *gi = fs_inode(fs, g);
	uint64_t bad[] = {
		0, 3, 4096, f + 8, f - 16, fs->pool.size - 8, UINT64_MAX - 7,
		fs_inode(fs, fs_ino_off(fs, FS_ROOT_INO))->data_off, /* its table */
		fs->pool.sb->arenas[0].data_off + 8192,               /* file data */
		fs->pool.sb->arenas[0].data_off + 16,
	};

	assert_int_equal(fs_lookup_handle(fs, f, &off), 0);
	assert_int_equal(off, f);
	fs_forget(fs, f, 1);
	assert_int_equal(fs_lookup_handle(fs, FS_ROOT_INO, &off), 0);
	assert_int_equal(off, fs_ino_off(fs, FS_ROOT_INO));
	fs_forget(fs, FS_ROOT_INO, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(fs_lookup_handle(fs, bad[i], &off), -ESTALE);

	/* a tag made for another place, as a copy of an inode's bytes has */
	uint64_t tag = gi->handle_tag;
	gi->handle_tag = pool_inode_tag(&fs->pool, f, gi->generation);
	assert_int_equal(fs_lookup_handle(fs, g, &off), -ESTALE);
	gi->handle_tag = tag;
	assert_int_equal(fs_lookup_handle(fs, g, &off), 0);
	fs_forget(fs, g, 1);

	/* removed, though still open; then freed, and its first bytes taken
	 * by an object that leaves the rest (as a short symlink target does) */
	assert_int_equal(fs_open(fs, u, O_RDONLY), 0);
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "u"), 0);
	assert_int_equal(fs_lookup_handle(fs, u, &off), -ESTALE);
	fs_release(fs, u);
	fs_forget(fs, u, 1);
	fs_inode(fs, u)->nlink = 1;
	assert_int_equal(fs_lookup_handle(fs, u, &off), -ESTALE);

	/* a create that aborts leaves its inode's bytes in free space */
	no_targets = true;
	assert_int_equal(fs_symlink(fs, FS_ROOT_INO, "s", "target", &root, &off), -ENOSPC);
	no_targets = false;
	assert_int_equal(fs_inode(fs, last_inode)->nlink, 1);
	assert_int_equal(fs_lookup_handle(fs, last_inode, &off), -ESTALE);
	fs_forget(fs, f, 1);
	fs_forget(fs, g, 1);

	/* an inode from before tags: none until a writable mount gives it */
	gi = fs_inode(fs, g);
	gi->handle_tag = 0;
	pool_persist(&fs->pool, &gi->handle_tag, sizeof(gi->handle_tag));
	assert_int_equal(fs_lookup_handle(fs, g, &off), -ESTALE);
	fs_unmount(fs);
	assert_int_equal(fs_mount(fs, t->path, &ro), 0);
	assert_int_equal(fs_lookup_handle(fs, g, &off), -ESTALE);
	fs_unmount(fs);
	assert_int_equal(fs_mount(fs, t->path, &rw), 0);
	assert_int_equal(fs_lookup_handle(fs, g, &off), 0);
	assert_int_equal(fs_inode(fs, g)->handle_tag,
			 pool_inode_tag(&fs->pool, g, fs_inode(fs, g)->generation));
	fs_forget(fs, g, 1);
	assert_int_equal(fs_lookup_handle(fs, f, &off), 0);
	fs_forget(fs, f, 1);

	/* no key, no trust */
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "f"), 0);
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "g"), 0);
	tpool_make_format1(t);
	f = mk(fs, FS_ROOT_INO, "f1");
	assert_int_equal(fs_inode(fs, f)->handle_tag, 0);
	assert_int_equal(fs_lookup_handle(fs, f, &off), -ESTALE);
	fs_forget(fs, f, 1);
}

static int setup_3g(void **state)
{
	return tpool_setup(state, 3ull << 30, true);
}

static void test_dir_readdir_stable_under_churn(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct collect c = { calloc(5000, 32), 0, 10, 0 };
	char name[32];
	int seen[2000] = {0};
	uint64_t pos = 0;

	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		mk(fs, FS_ROOT_INO, name);
	}
	/* while reading, add new names and remove ones not yet named k<even> */
	for (int round = 0;; round++) {
		c.n = 0;
		fs_readdir(fs, FS_ROOT_INO, pos, collect_fn, &c);
		if (c.n == 0)
			break;
		for (size_t i = 0; i < c.n; i++) {
			int k;
			if (sscanf(c.names[i], "k%d", &k) == 1 && k < 2000)
				seen[k]++;
		}
		pos = c.last;
		snprintf(name, sizeof(name), "new%d", round);
		mk(fs, FS_ROOT_INO, name);
		snprintf(name, sizeof(name), "k%d", 1 + 2 * (round % 1000));
		fs_unlink(fs, FS_ROOT_INO, name);
	}
	/* entries present throughout are returned exactly once; none twice */
	for (int k = 0; k < 2000; k++) {
		assert_true(seen[k] <= 1);
		if (k % 2 == 0)
			assert_int_equal(seen[k], 1);
	}
	free(c.names);
}

static void test_dir_names_and_errors(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	char longname[300];
	uint64_t off, d;

	memset(longname, 'a', 255);
	longname[255] = 0;
	mk(fs, FS_ROOT_INO, longname);
	assert_int_equal(fs_lookup(fs, FS_ROOT_INO, longname, &off), 0);
	longname[255] = 'a';
	longname[256] = 0;
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, longname, S_IFREG | 0644, 0,
				  &root, &off), -ENAMETOOLONG);
	mk(fs, FS_ROOT_INO, "\x01\xff weird\n name");
	assert_int_equal(fs_lookup(fs, FS_ROOT_INO, "\x01\xff weird\n name", &off), 0);
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "\x01\xff weird\n name",
				  S_IFREG | 0644, 0, &root, &off), -EEXIST);
	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "d", 0755, &root, &d), 0);
	mk(fs, d, "inner");
	assert_int_equal(fs_rmdir(fs, FS_ROOT_INO, "d"), -ENOTEMPTY);
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "d"), -EISDIR);
	assert_int_equal(fs_rename(fs, FS_ROOT_INO, "d", d, "sub", 0, &root), -EINVAL);
	assert_int_equal(fs_unlink(fs, d, "inner"), 0);
	assert_int_equal(fs_rmdir(fs, FS_ROOT_INO, "d"), 0);
	assert_int_equal(fs_lookup(fs, FS_ROOT_INO, "d", &off), -ENOENT);
}

/* chattr's immutable and append-only refuse, with EPERM, every change the
 * kernel refuses on a local filesystem; new inodes inherit nodump and
 * noatime; setting the locks takes MAY_LOCK */
static void test_dir_attr_flags_refuse_changes(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct stat a = { .st_mode = 0600 }, out;
	uint64_t f, g, d, off;

	f = mk(fs, FS_ROOT_INO, "f");
	g = mk(fs, FS_ROOT_INO, "g");
	assert_int_equal(write_mem(fs, f, 0, "abcd", 4, false), 4);
	assert_int_equal(fs_set_attr_flags(fs, f, KMFS_AF_IMMUTABLE, false), -EPERM);
	assert_int_equal(fs_set_attr_flags(fs, f, 0x4, true), -EOPNOTSUPP);
	assert_int_equal(fs_attr_flags(fs, f), 0);

	/* immutable */
	assert_int_equal(fs_set_attr_flags(fs, f, KMFS_AF_IMMUTABLE, true), 0);
	assert_int_equal(fs_attr_flags(fs, f), KMFS_AF_IMMUTABLE);
	assert_int_equal(write_mem(fs, f, 4, "e", 1, false), -EPERM);
	assert_int_equal(write_mem(fs, f, 0, "e", 1, true), -EPERM);
	assert_int_equal(fs_fallocate(fs, f, 0, 0, 8192), -EPERM);
	assert_int_equal(fs_clone(fs, g, 0, f, 0, 4096, false), -EPERM);
	assert_int_equal(fs_open(fs, f, O_WRONLY), -EPERM);
	assert_int_equal(fs_open(fs, f, O_RDONLY | O_TRUNC), -EPERM);
	assert_int_equal(fs_open(fs, f, O_RDONLY), 0);
	fs_release(fs, f);
	assert_int_equal(fs_setattr(fs, f, &a, FS_SET_MODE, &out), -EPERM);
	assert_int_equal(fs_setattr(fs, f, &a, FS_SET_SIZE, &out), -EPERM);
	assert_int_equal(fs_setattr(fs, f, &a, FS_SET_MTIME | FS_SET_MTIME_NOW, &out), -EPERM);
	assert_int_equal(fs_setxattr(fs, f, "user.k", "v", 1, 0), -EPERM);
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "f"), -EPERM);
	assert_int_equal(fs_rename(fs, FS_ROOT_INO, "f", FS_ROOT_INO, "h", 0, &root), -EPERM);
	assert_int_equal(fs_rename(fs, FS_ROOT_INO, "g", FS_ROOT_INO, "f", 0, &root), -EPERM);
	assert_int_equal(fs_link(fs, f, FS_ROOT_INO, "h", &off), -EPERM);
	assert_int_equal(fs_inode(fs, f)->size, 4);
	assert_int_equal(fs_inode(fs, f)->mode & 07777, 0644);

	/* append-only: bytes are added, never changed */
	assert_int_equal(fs_set_attr_flags(fs, f, KMFS_AF_APPEND, true), 0);
	assert_int_equal(write_mem(fs, f, 0, "X", 1, false), -EPERM);
	assert_int_equal(write_mem(fs, f, 4, "e", 1, false), 1);
	assert_int_equal(write_mem(fs, f, 0, "f", 1, true), 1);
	assert_int_equal(fs_inode(fs, f)->size, 6);
	assert_int_equal(fs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      0, 4096), -EPERM);
	assert_int_equal(fs_fallocate(fs, f, FALLOC_FL_KEEP_SIZE, 0, 8192), 0);
	assert_int_equal(fs_clone(fs, g, 0, f, 6, 1, false), -EPERM);
	assert_int_equal(fs_open(fs, f, O_WRONLY), -EPERM);
	assert_int_equal(fs_open(fs, f, O_WRONLY | O_APPEND | O_TRUNC), -EPERM);
	assert_int_equal(fs_open(fs, f, O_WRONLY | O_APPEND), 0);
	fs_release(fs, f);
	assert_int_equal(fs_setattr(fs, f, &a, FS_SET_ATIME | FS_SET_ATIME_NOW |
				    FS_SET_MTIME | FS_SET_MTIME_NOW, &out), 0);
	assert_int_equal(fs_setattr(fs, f, &a, FS_SET_MTIME | FS_SET_MTIME_NOW, &out), -EPERM);
	assert_int_equal(fs_setattr(fs, f, &a, FS_SET_MTIME, &out), -EPERM);
	assert_int_equal(fs_may_write(fs, f, 0, false), -EPERM);
	assert_int_equal(fs_may_write(fs, f, 0, true), 0);
	assert_int_equal(fs_may_write(fs, f, 6, false), 0);
	/* the kernel's own removal of security.capability before a write
	 * goes through; any other xattr change does not */
	assert_int_equal(fs_set_attr_flags(fs, f, 0, true), 0);
	assert_int_equal(fs_setxattr(fs, f, "security.capability", "c", 1, 0), 0);
	assert_int_equal(fs_setxattr(fs, f, "user.k", "v", 1, 0), 0);
	assert_int_equal(fs_set_attr_flags(fs, f, KMFS_AF_APPEND, true), 0);
	assert_int_equal(fs_removexattr(fs, f, "user.k"), -EPERM);
	assert_int_equal(fs_kill_capability(fs, f), 1);
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "f"), -EPERM);
	assert_int_equal(fs_set_attr_flags(fs, f, 0, false), -EPERM);
	assert_int_equal(fs_set_attr_flags(fs, f, 0, true), 0);
	assert_int_equal(write_mem(fs, f, 0, "A", 1, false), 1);

	/* directories: immutable takes no name and loses none; append-only
	 * takes names and loses none */
	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "d", 0755, &root, &d), 0);
	mk(fs, d, "old");
	assert_int_equal(fs_set_attr_flags(fs, d, KMFS_AF_IMMUTABLE, true), 0);
	assert_int_equal(fs_mknod(fs, d, "new", S_IFREG | 0644, 0, &root, &off), -EPERM);
	assert_int_equal(fs_mknod(fs, d, "old", S_IFREG | 0644, 0, &root, &off), -EEXIST);
	assert_int_equal(fs_tmpfile(fs, d, 0644, true, &root, &off), -EPERM);
	assert_int_equal(fs_unlink(fs, d, "old"), -EPERM);
	assert_int_equal(fs_rename(fs, FS_ROOT_INO, "g", d, "g", 0, &root), -EPERM);
	assert_int_equal(fs_set_attr_flags(fs, d, KMFS_AF_APPEND, true), 0);
	assert_int_equal(fs_rename(fs, FS_ROOT_INO, "g", d, "g", 0, &root), 0);
	assert_int_equal(fs_unlink(fs, d, "g"), -EPERM);
	assert_int_equal(fs_rename(fs, d, "old", d, "g", 0, &root), -EPERM);
	assert_int_equal(fs_rename(fs, d, "old", d, "g", FS_RENAME_EXCHANGE, &root), -EPERM);

	/* a rename onto a full directory in it: EPERM before ENOTEMPTY */
	assert_int_equal(fs_mkdir(fs, d, "full", 0755, &root, &off), 0);
	mk(fs, off, "inside");
	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "e", 0755, &root, &off), 0);
	assert_int_equal(fs_rename(fs, FS_ROOT_INO, "e", d, "full", 0, &root), -EPERM);

	/* nodump and noatime pass to new inodes; append-only does not */
	assert_int_equal(fs_set_attr_flags(fs, d, KMFS_AF_ALL & ~KMFS_AF_IMMUTABLE, true), 0);
	off = mk(fs, d, "child");
	assert_int_equal(fs_attr_flags(fs, off), KMFS_AF_NODUMP | KMFS_AF_NOATIME);
	assert_int_equal(fs_set_attr_flags(fs, d, 0, true), 0);
	assert_int_equal(fs_unlink(fs, d, "child"), 0);
}

/* a directory full of subdirectories takes no more, by mkdir or by rename */
static void test_dir_rename_respects_the_link_limit(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t p, q, x, y, off;
	struct kmfs_inode *pi;
	uint32_t real;

	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "p", 0755, &root, &p), 0);
	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "q", 0755, &root, &q), 0);
	assert_int_equal(fs_mkdir(fs, q, "x", 0755, &root, &x), 0);
	assert_int_equal(fs_mkdir(fs, p, "y", 0755, &root, &y), 0);
	mk(fs, p, "f");
	mk(fs, q, "g");
	/* as if p held 64998 subdirectories (set outside a transaction: a test) */
	pi = fs_inode(fs, fs_ino_off(fs, p));
	real = pi->nlink;
	pi->nlink = 65000;
	assert_int_equal(fs_mkdir(fs, p, "z", 0755, &root, &off), -EMLINK);
	assert_int_equal(fs_rename(fs, q, "x", p, "x", 0, &root), -EMLINK);
	assert_int_equal(fs_rename(fs, q, "x", p, "f", FS_RENAME_EXCHANGE, &root), -EMLINK);
	assert_int_equal(fs_rename(fs, p, "f", q, "x", FS_RENAME_EXCHANGE, &root), -EMLINK);
	assert_int_equal(fs_lookup(fs, q, "x", &off), 0);
	assert_int_equal(fs_lookup(fs, p, "x", &off), -ENOENT);
	/* what adds no link to p still works */
	assert_int_equal(fs_rename(fs, p, "y", p, "y2", 0, &root), 0);
	assert_int_equal(fs_rename(fs, q, "x", p, "y2", FS_RENAME_EXCHANGE, &root), 0);
	assert_int_equal(fs_rename(fs, p, "y2", q, "x", FS_RENAME_EXCHANGE, &root), 0);
	assert_int_equal(fs_rename(fs, q, "g", p, "g", 0, &root), 0);
	assert_int_equal(fs_rename(fs, p, "y2", q, "y", 0, &root), 0); /* p gives one */
	assert_int_equal(pi->nlink, 64999);
	assert_int_equal(fs_rename(fs, q, "x", p, "x", 0, &root), 0);
	assert_int_equal(pi->nlink, 65000);
	pi->nlink = real;
}

static void test_dir_rename_flags(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	uint64_t a = mk(fs, FS_ROOT_INO, "a"), b = mk(fs, FS_ROOT_INO, "b"), off;

	assert_int_equal(fs_rename(fs, 1, "a", 1, "b", FS_RENAME_NOREPLACE, &root), -EEXIST);
	assert_int_equal(fs_rename(fs, 1, "a", 1, "b", FS_RENAME_EXCHANGE, &root), 0);
	assert_int_equal(fs_lookup(fs, 1, "a", &off), 0);
	assert_true(off == b);
	assert_int_equal(fs_lookup(fs, 1, "b", &off), 0);
	assert_true(off == a);
	assert_int_equal(fs_rename(fs, 1, "a", 1, "c", FS_RENAME_EXCHANGE, &root), -ENOENT);
	assert_int_equal(fs_rename(fs, 1, "a", 1, "b", 0, &root), 0);
	assert_int_equal(fs_lookup(fs, 1, "a", &off), -ENOENT);
	assert_int_equal(fs_lookup(fs, 1, "b", &off), 0);
	assert_true(off == b);
	assert_int_equal(fs_inode(fs, a)->nlink, 0); /* replaced: unlinked */

	/* RENAME_WHITEOUT (overlayfs): the old name now names a char device 0:0
	 * owned by the caller, in the same transaction; a directory moves too */
	struct fs_cred user = { 1000, 1000, 022 };
	uint64_t d, w;
	assert_int_equal(fs_rename(fs, 1, "b", 1, "c", FS_RENAME_WHITEOUT, &user), 0);
	assert_int_equal(fs_lookup(fs, 1, "c", &off), 0);
	assert_true(off == b);
	assert_int_equal(fs_lookup(fs, 1, "b", &w), 0);
	assert_true(w != b);
	assert_true(S_ISCHR(fs_inode(fs, w)->mode));
	assert_int_equal(fs_inode(fs, w)->mode & 07777, 0);
	assert_int_equal(fs_inode(fs, w)->rdev, 0);
	assert_int_equal(fs_inode(fs, w)->uid, 1000);
	assert_int_equal(fs_mkdir(fs, 1, "dir", 0755, &root, &d), 0);
	uint32_t nlink = fs_inode(fs, fs_ino_off(fs, 1))->nlink;
	assert_int_equal(fs_rename(fs, 1, "dir", 1, "dir2", FS_RENAME_WHITEOUT, &root), 0);
	assert_int_equal(fs_inode(fs, fs_ino_off(fs, 1))->nlink, nlink);
	assert_int_equal(fs_lookup(fs, 1, "dir", &w), 0);
	assert_true(S_ISCHR(fs_inode(fs, w)->mode));
	/* over an existing name, and never with EXCHANGE */
	assert_int_equal(fs_rename(fs, 1, "c", 1, "dir2", FS_RENAME_WHITEOUT, &root), -EISDIR);
	assert_int_equal(fs_rename(fs, 1, "c", 1, "b", FS_RENAME_WHITEOUT | FS_RENAME_NOREPLACE,
				   &root), -EEXIST);
	assert_int_equal(fs_rename(fs, 1, "c", 1, "b", FS_RENAME_WHITEOUT | FS_RENAME_EXCHANGE,
				   &root), -EINVAL);
	assert_int_equal(fs_rename(fs, 1, "c", 1, "b", FS_RENAME_WHITEOUT, &root), 0);
	assert_int_equal(fs_lookup(fs, 1, "b", &off), 0);
	assert_true(off == b);
	assert_int_equal(fs_lookup(fs, 1, "c", &w), 0);
	assert_true(S_ISCHR(fs_inode(fs, w)->mode));
	/* and the checker agrees with all of it */
	struct check_opts co = { .quiet = true };
	struct check_result cr;
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
}

static uint64_t (*real_hash)(const struct kmfs_pool *, const struct kmfs_dirtable *,
			     const char *, size_t);

/* names starting with 'c' all hash to one cookie, 'd' to the next one */
static uint64_t colliding_hash(const struct kmfs_pool *p,
			       const struct kmfs_dirtable *tab, const char *name,
			       size_t len)
{
	if (len && name[0] == 'c')
		return 1000;
	if (len && name[0] == 'd')
		return 1001;
	return real_hash(p, tab, name, len);
}

static int count_entries(struct kmfs_fs *fs, uint64_t dir, char names[][32])
{
	struct collect c = { names, 0, 8, 0 };
	assert_int_equal(fs_readdir(fs, dir, 0, collect_fn, &c), 0);
	return (int)c.n;
}

/* names whose hashes collide stay reachable when one before them in their
 * run goes, and the checker finds no gap */
static void test_dir_collisions_stay_reachable(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct check_opts co = { .quiet = true };
	struct check_result cr;
	char names[8][32];
	uint64_t sub, off;

	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "sub", 0755, &root, &sub), 0);
	real_hash = dir_hash;
	dir_hash = colliding_hash;
	/* cookies 1000, 1001, 1002 for c1..c3, then d1 (hash 1001) at 1003 */
	mk(fs, sub, "c1");
	mk(fs, sub, "c2");
	mk(fs, sub, "c3");
	mk(fs, sub, "d1");
	assert_int_equal(fs_unlink(fs, sub, "c1"), 0);
	assert_int_equal(fs_lookup(fs, sub, "c2", &off), 0);
	assert_int_equal(fs_lookup(fs, sub, "c3", &off), 0);
	assert_int_equal(fs_lookup(fs, sub, "d1", &off), 0);
	assert_int_equal(fs_mknod(fs, sub, "c2", S_IFREG | 0644, 0, &root, &off), -EEXIST);
	assert_int_equal(fs_unlink(fs, sub, "c3"), 0);
	assert_int_equal(fs_lookup(fs, sub, "d1", &off), 0);
	assert_int_equal(fs_mknod(fs, sub, "d1", S_IFREG | 0644, 0, &root, &off), -EEXIST);
	assert_int_equal(count_entries(fs, sub, names), 4); /* with "." and ".." */
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	/* and with the run refilled and emptied from its end */
	mk(fs, sub, "c4");
	assert_int_equal(fs_unlink(fs, sub, "d1"), 0);
	assert_int_equal(fs_unlink(fs, sub, "c2"), 0);
	assert_int_equal(fs_lookup(fs, sub, "c4", &off), 0);
	assert_int_equal(count_entries(fs, sub, names), 3);
	assert_string_equal(names[2], "c4");
	assert_int_equal(fs_unlink(fs, sub, "c4"), 0);
	dir_hash = real_hash;
	assert_int_equal(fs_rmdir(fs, FS_ROOT_INO, "sub"), 0);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
}

/* a directory that an older kmemfs left with a gap in a run (as its
 * dir_remove did): fsck finds the entry out of reach and a repair brings
 * it back */
static void test_dir_fsck_repairs_a_gap(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct check_opts co = { .quiet = true }, fix = { .quiet = true, .repair = true };
	struct check_result cr;
	struct kmfs_dirtable *tab;
	struct kmfs_dirent *c1;
	uint64_t sub, off;

	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "sub", 0755, &root, &sub), 0);
	real_hash = dir_hash;
	dir_hash = colliding_hash;
	mk(fs, sub, "c1"); /* cookie 1000 */
	mk(fs, sub, "c2"); /* 1001 */
	/* take c1 out of the list as the old dir_remove did (raw: a test) */
	tab = pool_ptr(&fs->pool, fs_inode(fs, fs_ino_off(fs, sub))->data_off);
	c1 = pool_ptr(&fs->pool, tab->head_off);
	assert_int_equal(c1->cookie, 1000);
	tab->buckets[1000ull >> (KMFS_COOKIE_BITS - tab->bits)] = c1->next_off;
	tab->head_off = c1->next_off;
	tab->count--;
	pool_persist(&fs->pool, tab, sizeof(*tab) + (sizeof(uint64_t) << tab->bits));
	assert_int_equal(fs_lookup(fs, sub, "c2", &off), -ENOENT);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_true(cr.errors >= 1);
	assert_int_equal(check_pool(&fs->pool, &fix, &cr), 0);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	assert_int_equal(fs_lookup(fs, sub, "c2", &off), 0);
	dir_hash = real_hash;
}

/*
 * A new pool hashes names with SipHash-2-4 under its secret key, of the
 * directory's seed (little-endian) then the name, top 63 bits. Checked
 * against the reference vectors of the SipHash paper (key 00..0f, message
 * 00 01 .. n-1), not against our own output.
 */
static void test_dir_siphash_reference_vectors(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct kmfs_super sb = { .major = KMFS_VERSION_MAJOR };
	struct kmfs_pool p = { .sb = &sb };
	struct kmfs_dirtable tab = { .seed = 0x0706050403020100ull,
				     .hash_kind = KMFS_HASH_SIPHASH };
	const char name[] = "\x08\x09\x0a\x0b\x0c\x0d\x0e";
	struct kmfs_dirtable *root_tab;
	const uint8_t zero[16] = { 0 };

	for (int i = 0; i < 16; i++)
		sb.dir_key[i] = (uint8_t)i;
	/* paper, appendix A: 15 bytes -> a129ca6149be45e5 */
	assert_int_equal(dir_hash(&p, &tab, name, 7), 0xa129ca6149be45e5ull >> 1);
	/* reference vectors (vectors.h), 8 bytes -> 93f5f5799a932462 */
	assert_int_equal(dir_hash(&p, &tab, name, 0), 0x93f5f5799a932462ull >> 1);
	/* the key matters; the same table read as FNV hashes otherwise */
	sb.dir_key[0] ^= 1;
	assert_int_not_equal(dir_hash(&p, &tab, name, 7), 0xa129ca6149be45e5ull >> 1);
	tab.hash_kind = KMFS_HASH_FNV;
	/* FNV as format 1 defined it (values from a separate model of it):
	 * changed, it would lose every name of a format 1 directory */
	assert_int_equal(dir_hash(&p, &(struct kmfs_dirtable){ .seed = 0x0123456789abcdefull },
				  "kmemfs", 6), 0x50bcfded2d47490dull);
	assert_int_equal(dir_hash(&p, &(struct kmfs_dirtable){ .seed = 0 }, "a", 1),
			 0x1605edfa40a107cull);
	assert_int_not_equal(dir_hash(&p, &tab, name, 7),
			     dir_hash(&p, &(struct kmfs_dirtable){ .seed = tab.seed,
				     .hash_kind = KMFS_HASH_SIPHASH }, name, 7));

	/* mkfs gave this pool a key, and its directories use it */
	assert_int_equal(fs->pool.sb->major, KMFS_VERSION_MAJOR);
	assert_memory_not_equal(fs->pool.sb->dir_key, zero, sizeof(zero));
	root_tab = pool_ptr(&fs->pool, fs_inode(fs, fs_ino_off(fs, FS_ROOT_INO))->data_off);
	assert_int_equal(root_tab->hash_kind, KMFS_HASH_SIPHASH);
}

/* no more than KMFS_DIR_RUN_MAX names in one run of colliding hashes: each
 * lookup walks the run and each remove moves the rest of it */
static void test_dir_colliding_run_is_capped(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct check_opts co = { .quiet = true };
	struct check_result cr;
	char name[32];
	uint64_t sub, off;

	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "sub", 0755, &root, &sub), 0);
	real_hash = dir_hash;
	dir_hash = colliding_hash;
	for (int i = 0; i < KMFS_DIR_RUN_MAX; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		mk(fs, sub, name);
	}
	assert_int_equal(fs_mknod(fs, sub, "c-one-more", S_IFREG | 0644, 0, &root, &off),
			 -ENOSPC);
	/* d* hash one past c*: one more fits at the run's end, in reach */
	mk(fs, sub, "d0");
	assert_int_equal(fs_mknod(fs, sub, "d1", S_IFREG | 0644, 0, &root, &off),
			 -ENOSPC);
	assert_int_equal(fs_mkdir(fs, sub, "c-dir", 0755, &root, &off), -ENOSPC);
	mk(fs, sub, "other"); /* any other hash */
	/* the run's head goes: the rest move back, and a name fits again */
	assert_int_equal(fs_unlink(fs, sub, "c0"), 0);
	for (int i = 1; i < KMFS_DIR_RUN_MAX; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		assert_int_equal(fs_lookup(fs, sub, name, &off), 0);
	}
	assert_int_equal(fs_lookup(fs, sub, "d0", &off), 0);
	/* d0 moved back into the run too: a c* name still would not reach */
	assert_int_equal(fs_mknod(fs, sub, "c-one-more", S_IFREG | 0644, 0, &root, &off),
			 -ENOSPC);
	assert_int_equal(fs_unlink(fs, sub, "d0"), 0);
	mk(fs, sub, "c-one-more");
	/* fsck hashes through dir_hash too */
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	dir_hash = real_hash;
	assert_int_equal(cr.errors, 0);
}

/*
 * A format 1 pool (no key; FNV tables) mounts, keeps its tables and makes
 * new directories with FNV too, so that an older kmemfs still reads it.
 * fsck refuses a SipHash table there and a hash kind it does not know.
 */
static void test_dir_format1_pool_keeps_fnv(void **state)
{
	struct tpool *t = *state;
	struct kmfs_fs *fs = &t->fs;
	struct check_opts co = { .quiet = true };
	struct check_result cr;
	struct kmfs_dirtable *tab;
	char name[32];
	uint64_t sub, off;

	tpool_make_format1(t);

	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "sub", 0755, &root, &sub), 0);
	tab = pool_ptr(&fs->pool, fs_inode(fs, fs_ino_off(fs, sub))->data_off);
	assert_int_equal(tab->hash_kind, KMFS_HASH_FNV);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		mk(fs, sub, name);
	}
	for (int i = 0; i < 100; i += 2) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(fs_unlink(fs, sub, name), 0);
	}
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(fs_lookup(fs, sub, name, &off), i % 2 ? 0 : -ENOENT);
	}
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	assert_int_equal(fs->pool.sb->major, 1);

	/* a SipHash table in a pool with no key, then an unknown kind */
	tab = pool_ptr(&fs->pool, fs_inode(fs, fs_ino_off(fs, sub))->data_off);
	tab->hash_kind = KMFS_HASH_SIPHASH;
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_true(cr.errors >= 1);
	tab->hash_kind = 7;
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_true(cr.errors >= 1);
	tab->hash_kind = KMFS_HASH_FNV;
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
}

/* a format 1 directory may hold a run longer than the limit (made before
 * it); fsck's rebuild of such a directory keeps every name */
static void test_dir_fsck_rebuilds_a_run_past_the_limit(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct check_opts co = { .quiet = true }, fix = { .quiet = true, .repair = true };
	struct check_result cr;
	struct kmfs_inode *dir, *target;
	struct dir_entry de;
	struct txn tx;
	char name[32];
	uint64_t sub, off, toff;
	const int extra = 8;

	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "sub", 0755, &root, &sub), 0);
	real_hash = dir_hash;
	dir_hash = colliding_hash;
	for (int i = 0; i < KMFS_DIR_RUN_MAX; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		toff = mk(fs, sub, name);
	}
	/* names past the limit, as an older kmemfs made them: links to c31 */
	dir = fs_inode(fs, sub);
	target = fs_inode(fs, toff);
	txn_init(&tx, &fs->pages);
	assert_int_equal(txn_begin(&tx), 0);
	for (int i = 0; i < extra; i++) {
		snprintf(name, sizeof(name), "c%d", KMFS_DIR_RUN_MAX + i);
		assert_int_equal(dir_add_kept(&tx, dir, name, strlen(name), toff, DT_REG), 0);
	}
	assert_int_equal(TXADD(target, nlink), 0);
	target->nlink += extra;
	assert_int_equal(txn_end(&tx, 0), 0);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	/* damage that makes fsck rebuild the table with every entry kept */
	assert_int_equal(dir_lookup(&fs->pool, dir, "c3", 2, &de), 0);
	for (uint64_t e = ((struct kmfs_dirtable *)pool_ptr(&fs->pool, dir->data_off))->head_off;
	     e; e = ((struct kmfs_dirent *)pool_ptr(&fs->pool, e))->next_off) {
		struct kmfs_dirent *d = pool_ptr(&fs->pool, e);
		if (d->cookie == de.cookie) {
			d->type = DT_FIFO;
			pool_persist(&fs->pool, &d->type, 1);
		}
	}
	assert_int_equal(check_pool(&fs->pool, &fix, &cr), 0);
	assert_true(cr.errors >= 1);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	for (int i = 0; i < KMFS_DIR_RUN_MAX + extra; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		assert_int_equal(fs_lookup(fs, sub, name, &off), 0);
	}
	dir_hash = real_hash;
}

/* a flipped hash_kind is put back from what the entries were hashed
 * with, not taken for every entry misfiled (all names to lost+found) */
static void test_dir_fsck_mends_a_flipped_hash_kind(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct check_opts co = { .quiet = true }, fix = { .quiet = true, .repair = true };
	struct check_result cr;
	struct kmfs_dirtable *tab;
	const uint32_t flips[] = { KMFS_HASH_FNV, 7 };
	char name[32];
	uint64_t sub, off;

	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "sub", 0755, &root, &sub), 0);
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		mk(fs, sub, name);
	}
	for (size_t f = 0; f < sizeof(flips) / sizeof(flips[0]); f++) {
		tab = pool_ptr(&fs->pool, fs_inode(fs, fs_ino_off(fs, sub))->data_off);
		tab->hash_kind = flips[f];
		pool_persist(&fs->pool, &tab->hash_kind, sizeof(tab->hash_kind));
		assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
		assert_true(cr.errors >= 1);
		assert_int_equal(check_pool(&fs->pool, &fix, &cr), 0);
		assert_int_equal(cr.errors, 1);
		assert_int_equal(cr.fixed, 1);
		assert_int_equal(tab->hash_kind, KMFS_HASH_SIPHASH);
		assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
		assert_int_equal(cr.errors, 0);
		for (int i = 0; i < 50; i++) {
			snprintf(name, sizeof(name), "f%d", i);
			assert_int_equal(fs_lookup(fs, sub, name, &off), 0);
		}
		assert_int_equal(fs_lookup(fs, FS_ROOT_INO, "lost+found", &off), -ENOENT);
	}
}

/* two entries of one name (lookup finds only the first): fsck finds the
 * second, and its repair keeps the first */
static void test_dir_fsck_finds_a_name_there_twice(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct check_opts co = { .quiet = true }, fix = { .quiet = true, .repair = true };
	struct check_result cr;
	struct kmfs_dirtable *tab;
	struct kmfs_dirent *second;
	uint64_t sub, off, c1;

	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "sub", 0755, &root, &sub), 0);
	real_hash = dir_hash;
	dir_hash = colliding_hash;
	c1 = mk(fs, sub, "c1"); /* cookie 1000 */
	mk(fs, sub, "c2");      /* 1001, the same hash */
	tab = pool_ptr(&fs->pool, fs_inode(fs, sub)->data_off);
	second = pool_ptr(&fs->pool, ((struct kmfs_dirent *)pool_ptr(&fs->pool,
							tab->head_off))->next_off);
	assert_int_equal(second->cookie, 1001);
	second->name[1] = '1'; /* now "c1" too */
	pool_persist(&fs->pool, second->name, 2);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_true(cr.errors >= 1);
	assert_non_null(strstr(cr.first, "'c1' is there twice"));
	assert_int_equal(check_pool(&fs->pool, &fix, &cr), 0);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	assert_int_equal(dir_count(&fs->pool, fs_inode(fs, sub)), 1);
	assert_int_equal(fs_lookup(fs, sub, "c1", &off), 0);
	dir_hash = real_hash;
	assert_int_equal(off, c1);
}

/* O_TMPFILE: an inode no directory names, that fs_link may name once */
static void test_dir_tmpfile(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct fs_cred user = { 1000, 1000, 022 };
	uint64_t inodes = atomic_load(&fs->nr_inodes), t, u, off, f = mk(fs, 1, "file");
	struct check_opts co = { .quiet = true };
	struct check_result cr;

	assert_int_equal(fs_tmpfile(fs, fs_ino(fs, f), 0600, true, &user, &t), -ENOTDIR);
	/* in a directory already removed, as Linux allows; freed at the forget */
	uint64_t gone;
	assert_int_equal(fs_mkdir(fs, 1, "gone", 0755, &root, &gone), 0);
	assert_int_equal(fs_rmdir(fs, 1, "gone"), 0);
	assert_int_equal(fs_tmpfile(fs, fs_ino(fs, gone), 0600, true, &user, &t), 0);
	assert_int_equal(fs_link(fs, fs_ino(fs, t), fs_ino(fs, gone), "x", &off), -ENOENT);
	fs_forget(fs, fs_ino(fs, t), 1);
	fs_forget(fs, fs_ino(fs, gone), 1);
	assert_int_equal(fs_tmpfile(fs, 1, 0640, true, &user, &t), 0);
	assert_int_equal(fs_inode(fs, t)->nlink, 0);
	assert_int_equal(fs_inode(fs, t)->mode, S_IFREG | 0640);
	assert_int_equal(fs_inode(fs, t)->uid, 1000);
	assert_int_equal(atomic_load(&fs->nr_inodes), inodes + 2);
	/* an unlinked inode held open is what the checker expects of it */
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	assert_int_equal(cr.orphans, 1);
	/* a name that is taken leaves it unnamed and linkable */
	assert_int_equal(fs_link(fs, fs_ino(fs, t), 1, "file", &off), -EEXIST);
	assert_int_equal(fs_inode(fs, t)->nlink, 0);
	/* named: one link, and the kernel's reference from the link reply */
	assert_int_equal(fs_link(fs, fs_ino(fs, t), 1, "named", &off), 0);
	assert_true(off == t);
	assert_int_equal(fs_inode(fs, t)->nlink, 1);
	fs_forget(fs, fs_ino(fs, t), 1);
	assert_int_equal(fs_lookup(fs, 1, "named", &off), 0);
	assert_true(off == t);
	fs_forget(fs, fs_ino(fs, t), 1);
	/* named once only, as vfs_link clears I_LINKABLE; still open, then freed */
	assert_int_equal(fs_unlink(fs, 1, "named"), 0);
	assert_int_equal(fs_link(fs, fs_ino(fs, t), 1, "again", &off), -ENOENT);
	assert_int_equal(atomic_load(&fs->nr_inodes), inodes + 2);
	fs_forget(fs, fs_ino(fs, t), 1);
	assert_int_equal(atomic_load(&fs->nr_inodes), inodes + 1);
	/* O_EXCL: never named; the last reference frees it */
	assert_int_equal(fs_tmpfile(fs, 1, 0600, false, &user, &u), 0);
	assert_int_equal(fs_link(fs, fs_ino(fs, u), 1, "never", &off), -ENOENT);
	assert_int_equal(atomic_load(&fs->nr_inodes), inodes + 2);
	fs_forget(fs, fs_ino(fs, u), 1);
	assert_int_equal(atomic_load(&fs->nr_inodes), inodes + 1);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	assert_int_equal(cr.orphans, 0);
}

/* a directory whose bucket table cannot grow (or shrink) keeps the one it
 * has: creates and unlinks go on, every name is found, and the table
 * takes its size at the next add or remove that can have one */
static void test_dir_table_without_room_to_resize(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	const int N = 600;
	uint64_t d, off;
	char name[32];

	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "d", 0755, &root, &d), 0);
	struct kmfs_inode *dir = fs_inode(fs, fs_ino_off(fs, d));
	uint32_t bits0 = ((struct kmfs_dirtable *)pool_ptr(&fs->pool, dir->data_off))->bits;

	no_tables = true;
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "name-%d", i);
		mk(fs, d, name);
	}
	const struct kmfs_dirtable *tab = pool_ptr(&fs->pool, dir->data_off);
	assert_int_equal(tab->bits, bits0);
	assert_int_equal(tab->count, N);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "name-%d", i);
		assert_int_equal(fs_lookup(fs, d, name, &off), 0);
	}
	struct check_opts co = { .quiet = true };
	struct check_result cr;
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);

	/* room again: the next create grows the table */
	no_tables = false;
	mk(fs, d, "one-more");
	tab = pool_ptr(&fs->pool, dir->data_off);
	assert_true(tab->bits > bits0);
	uint32_t grown = tab->bits;

	/* no room to shrink: unlinks go on all the same */
	no_tables = true;
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "name-%d", i);
		assert_int_equal(fs_unlink(fs, d, name), 0);
	}
	tab = pool_ptr(&fs->pool, dir->data_off);
	assert_int_equal(tab->bits, grown);
	assert_int_equal(tab->count, 1);
	assert_int_equal(fs_lookup(fs, d, "one-more", &off), 0);
	no_tables = false;
	assert_int_equal(fs_unlink(fs, d, "one-more"), 0);
	tab = pool_ptr(&fs->pool, dir->data_off);
	assert_true(tab->bits < grown);
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
}

struct plus_seen {
	char name[8][16];
	bool looked_up[8];
	struct stat st[8];
	uint64_t next[8];
	size_t n, cap;
};

static int plus_fn(void *arg, const char *name, size_t len,
		   const struct stat *st, bool looked_up, uint64_t next)
{
	struct plus_seen *s = arg;

	if (s->n == s->cap)
		return 1;
	memcpy(s->name[s->n], name, len);
	s->name[s->n][len] = 0;
	s->looked_up[s->n] = looked_up;
	s->st[s->n] = *st;
	s->next[s->n] = next;
	s->n++;
	return 0;
}

static size_t seen_at(const struct plus_seen *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->name[i], name))
			return i;
	fail_msg("%s not listed", name);
	return 0;
}

/* readdirplus: each entry it hands over whole counts one lookup, as a
 * LOOKUP would; names the kernel knows, ".", ".." and entries that did not
 * fit count none */
static void test_dir_readdirplus_counts_lookups(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static const char data[5000];
	uint64_t a = mk(fs, FS_ROOT_INO, "a"), b = mk(fs, FS_ROOT_INO, "b");
	uint64_t c = mk(fs, FS_ROOT_INO, "c");
	struct plus_seen s = { .cap = 8 };
	uint64_t inodes;

	assert_int_equal(write_mem(fs, fs_ino(fs, a), 0, data, sizeof(data), false),
			 sizeof(data));
	/* the kernel forgets the creates' entries */
	fs_forget(fs, fs_ino(fs, a), 1);
	fs_forget(fs, fs_ino(fs, b), 1);
	fs_forget(fs, fs_ino(fs, c), 1);
	inodes = atomic_load(&fs->nr_inodes);

	assert_int_equal(fs_readdirplus(fs, FS_ROOT_INO, 0, plus_fn, &s), 0);
	assert_int_equal(s.n, 5);
	assert_false(s.looked_up[seen_at(&s, ".")]);
	assert_false(s.looked_up[seen_at(&s, "..")]);
	assert_int_equal(s.st[seen_at(&s, ".")].st_ino, FS_ROOT_INO);
	size_t ia = seen_at(&s, "a");
	assert_true(s.looked_up[ia]);
	assert_true(s.looked_up[seen_at(&s, "b")]);
	assert_true(s.looked_up[seen_at(&s, "c")]);
	assert_int_equal(s.st[ia].st_ino, fs_ino(fs, a));
	assert_int_equal(s.st[ia].st_size, sizeof(data));
	assert_int_equal(s.st[ia].st_mode, S_IFREG | 0644);
	assert_int_equal(s.st[ia].st_nlink, 1);
	assert_int_equal(s.st[ia].st_blocks, 16);

	/* known to the kernel now: bare entries, no more lookups */
	s.n = 0;
	assert_int_equal(fs_readdirplus(fs, FS_ROOT_INO, 0, plus_fn, &s), 0);
	assert_int_equal(s.n, 5);
	for (size_t i = 0; i < s.n; i++)
		assert_false(s.looked_up[i]);
	assert_int_equal(s.st[seen_at(&s, "a")].st_ino, fs_ino(fs, a));
	assert_int_equal(s.st[seen_at(&s, "a")].st_mode & S_IFMT, S_IFREG);

	/* the lookup is real: unlinked, "a" stays until it is forgotten */
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "a"), 0);
	assert_int_equal(atomic_load(&fs->nr_inodes), inodes);
	fs_forget(fs, fs_ino(fs, a), 1);
	assert_int_equal(atomic_load(&fs->nr_inodes), inodes - 1);

	/* a full buffer: the entry that did not fit gains nothing */
	fs_forget(fs, fs_ino(fs, b), 1);
	fs_forget(fs, fs_ino(fs, c), 1);
	s = (struct plus_seen){ .cap = 3 };
	assert_int_equal(fs_readdirplus(fs, FS_ROOT_INO, 0, plus_fn, &s), 0);
	assert_int_equal(s.n, 3);
	assert_true(s.looked_up[2]);
	char first[16];
	strcpy(first, s.name[2]);
	uint64_t from = s.next[2];
	s = (struct plus_seen){ .cap = 8 };
	assert_int_equal(fs_readdirplus(fs, FS_ROOT_INO, from, plus_fn, &s), 0);
	assert_int_equal(s.n, 1);
	assert_true(s.looked_up[0]);
	assert_string_not_equal(s.name[0], first);
	/* one lookup each, so one forget each frees both once unlinked */
	fs_forget(fs, fs_ino(fs, b), 1);
	fs_forget(fs, fs_ino(fs, c), 1);
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "b"), 0);
	assert_int_equal(fs_unlink(fs, FS_ROOT_INO, "c"), 0);
	assert_int_equal(atomic_load(&fs->nr_inodes), inodes - 3);
	struct check_opts co = { .quiet = true };
	struct check_result cr;
	assert_int_equal(check_pool(&fs->pool, &co, &cr), 0);
	assert_int_equal(cr.errors, 0);
	assert_int_equal(cr.orphans, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dir_many_entries,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_readdir_stable_under_churn,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_names_and_errors,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_rename_respects_the_link_limit,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_rename_flags,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_collisions_stay_reachable,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_fsck_repairs_a_gap,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_tmpfile,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_siphash_reference_vectors,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_colliding_run_is_capped,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_format1_pool_keeps_fnv,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_fsck_rebuilds_a_run_past_the_limit,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_fsck_mends_a_flipped_hash_kind,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_fsck_finds_a_name_there_twice,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_table_without_room_to_resize,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_readdirplus_counts_lookups,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_attr_flags_refuse_changes,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_handles_name_live_inodes_only,
			tpool_setup_default, tpool_teardown),
		cmocka_unit_test_setup_teardown(test_dir_million_entries_stay_indexed,
			setup_3g, tpool_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
