/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_threads.c -- the fs layer under concurrent callers, as the daemon's
 * workers call it: in-place overwrites, appends, truncates, reads, attribute
 * reads and renames on one file at once; clones, copy-on-write, punches and
 * extended attributes across two files at once. The plain build checks the end
 * state; the ThreadSanitizer build (unit_threads_tsan) fails on any data
 * race between them, such as an attribute read tearing a timestamp that a
 * write stores.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <sys/statvfs.h>

#include "check.h"
#include "emap.h"
#include "txn.h"
#include "helpers.h"

#define BASE    (256u << 10) /* bytes the file keeps: overwrites land here */
#define BLOCK   4096u
#define ROUNDS  8000

struct shared {
	struct kmfs_fs *fs;
	uint64_t ino;
	uint64_t ino_b;      /* the clone target, in the second test */
	uint64_t final_size; /* the appender's model of the size it left */
	int failures;        /* calls that returned an error */
};

static void note_failure(struct shared *sh, const char *what, long rc)
{
	fprintf(stderr, "%s failed: %ld\n", what, rc);
	__atomic_add_fetch(&sh->failures, 1, __ATOMIC_RELAXED);
}

static ssize_t write_block(struct shared *sh, uint64_t off, unsigned char fill,
			   bool append)
{
	unsigned char buf[BLOCK];

	memset(buf, fill, sizeof(buf));
	return write_mem(sh->fs, sh->ino, off, buf, sizeof(buf), append);
}

/* start one thread per FN on SH, wait for all: none may have failed */
static void race(void *(*const fn[])(void *), size_t n, struct shared *sh)
{
	pthread_t th[8];

	assert_true(n <= sizeof(th) / sizeof(th[0]));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pthread_create(&th[i], NULL, fn[i], sh), 0);
	for (size_t i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(sh->failures, 0);
}

/* fsck's checks on the mounted pool: no error */
static struct check_result check_clean(struct kmfs_fs *fs)
{
	struct check_opts o = { .quiet = true };
	struct check_result r;

	assert_int_equal(check_pool(&fs->pool, &o, &r), 0);
	if (r.errors)
		fprintf(stderr, "check: %s\n", r.first);
	assert_int_equal(r.errors, 0);
	return r;
}

/* NBLOCKS blocks at a random block offset below BASE, read back whole */
static void read_randomly(struct shared *sh, uint64_t ino, size_t nblocks,
			  uint64_t seed)
{
	unsigned char out[4 * BLOCK];
	size_t len = nblocks * BLOCK;

	for (int i = 0; i < ROUNDS; i++) {
		struct readbuf r = { out, 0 };
		uint64_t off = trand(&seed) % (BASE / BLOCK - nblocks) * BLOCK;
		int rc = fs_read(sh->fs, ino, off, len, reply, &r);
		if (rc < 0 || r.n != len)
			note_failure(sh, "read", rc < 0 ? rc : (long)r.n);
	}
}

/* in place, inside BASE: the shared-lock path that stores only the times */
static void *overwriter(void *arg)
{
	struct shared *sh = arg;
	uint64_t seed = 7;

	for (int i = 0; i < ROUNDS; i++) {
		uint64_t off = trand(&seed) % (BASE / BLOCK) * BLOCK;
		ssize_t n = write_block(sh, off, (unsigned char)i, false);
		if (n != BLOCK)
			note_failure(sh, "overwrite", (long)n);
	}
	return NULL;
}

/* grows the file past BASE and cuts it back: size and blocks change */
static void *appender(void *arg)
{
	struct shared *sh = arg;
	uint64_t size = BASE;

	for (int i = 0; i < ROUNDS; i++) {
		if (i % 32 == 31) {
			struct stat a = { .st_size = BASE }, out;
			int rc = fs_setattr(sh->fs, sh->ino, &a, FS_SET_SIZE, &out);
			if (rc < 0)
				note_failure(sh, "truncate", rc);
			size = BASE;
			continue;
		}
		ssize_t n = write_block(sh, 0, 0xa5, true);
		if (n != BLOCK)
			note_failure(sh, "append", (long)n);
		size += BLOCK;
	}
	sh->final_size = size;
	return NULL;
}

/* reads move the access time (relatime: it trails the modification time) */
static void *reader(void *arg)
{
	struct shared *sh = arg;

	read_randomly(sh, sh->ino, 2, 11);
	return NULL;
}

static void *stater(void *arg)
{
	struct shared *sh = arg;

	for (int i = 0; i < 4 * ROUNDS; i++) {
		struct stat st;
		int rc = fs_getattr(sh->fs, sh->ino, &st);
		/* every change keeps the size a whole number of blocks */
		if (rc < 0 || st.st_size < (off_t)BASE || st.st_size % BLOCK)
			note_failure(sh, "getattr", rc < 0 ? rc : (long)st.st_size);
		if (st.st_mtim.tv_nsec < 0 || st.st_mtim.tv_nsec >= 1000000000)
			note_failure(sh, "getattr mtime", st.st_mtim.tv_nsec);
	}
	return NULL;
}

/* renames change the file's ctime under the namespace lock */
static void *renamer(void *arg)
{
	struct shared *sh = arg;

	for (int i = 0; i < ROUNDS / 4; i++) {
		const char *from = i % 2 ? "b" : "a", *to = i % 2 ? "a" : "b";
		int rc = fs_rename(sh->fs, FS_ROOT_INO, from, FS_ROOT_INO, to, 0,
				   &root);
		if (rc < 0)
			note_failure(sh, "rename", rc);
	}
	return NULL;
}

static void test_threads_one_file(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	void *(*fn[])(void *) = { overwriter, appender, reader, stater, renamer };
	struct shared sh = { .fs = fs };
	uint64_t off;
	struct stat st;

	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "a", S_IFREG | 0644, 0,
				  &root, &off), 0);
	sh.ino = fs_ino(fs, off);
	for (uint64_t pos = 0; pos < BASE; pos += BLOCK)
		assert_int_equal(write_block(&sh, pos, 1, false), BLOCK);

	race(fn, sizeof(fn) / sizeof(fn[0]), &sh);
	assert_int_equal(fs_getattr(fs, sh.ino, &st), 0);
	assert_int_equal(st.st_size, sh.final_size);
	assert_int_equal(st.st_blocks * 512, sh.final_size);

	check_clean(fs);
}

/* ---- two files: clones sharing pages while both sides change ---------- */

static void *cloner(void *arg)
{
	struct shared *sh = arg;
	uint64_t seed = 13, len = 16 * BLOCK;

	for (int i = 0; i < ROUNDS / 4; i++) {
		uint64_t off = trand(&seed) % (BASE / len) * len;
		ssize_t n = fs_clone(sh->fs, sh->ino, off, sh->ino_b, off, len, true);
		if (n != (ssize_t)len)
			note_failure(sh, "clone", (long)n);
	}
	return NULL;
}

static void *puncher(void *arg)
{
	struct shared *sh = arg;
	uint64_t seed = 19;

	for (int i = 0; i < ROUNDS / 2; i++) {
		uint64_t off = trand(&seed) % (BASE / BLOCK - 4) * BLOCK;
		int rc = fs_fallocate(sh->fs, sh->ino_b,
				      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      off, 4 * BLOCK);
		if (rc < 0)
			note_failure(sh, "punch", rc);
	}
	return NULL;
}

static void *b_reader(void *arg)
{
	struct shared *sh = arg;

	read_randomly(sh, sh->ino_b, 4, 23);
	return NULL;
}

static void *attr_changer(void *arg)
{
	struct shared *sh = arg;

	for (int i = 0; i < ROUNDS; i++) {
		char val[32], got[32];
		struct stat st;
		struct statvfs sv;
		int len = snprintf(val, sizeof(val), "v%d", i), rc;

		rc = fs_setxattr(sh->fs, sh->ino, "user.x", val, (size_t)len, 0);
		if (rc < 0)
			note_failure(sh, "setxattr", rc);
		if (fs_getxattr(sh->fs, sh->ino, "user.x", got, sizeof(got)) != len)
			note_failure(sh, "getxattr", len);
		if (fs_getattr(sh->fs, sh->ino_b, &st) < 0 ||
		    st.st_size != (off_t)BASE)
			note_failure(sh, "getattr", (long)st.st_size);
		if (fs_statfs(sh->fs, &sv) < 0)
			note_failure(sh, "statfs", 0);
	}
	return NULL;
}

static void test_threads_clones(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	/* the overwriter's pages are shared with B: each write copies first */
	void *(*fn[])(void *) = { cloner, overwriter, puncher, b_reader,
				  attr_changer };
	struct shared sh = { .fs = fs };
	uint64_t off;

	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "a", S_IFREG | 0644, 0,
				  &root, &off), 0);
	sh.ino = fs_ino(fs, off);
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "b", S_IFREG | 0644, 0,
				  &root, &off), 0);
	sh.ino_b = fs_ino(fs, off);
	for (uint64_t pos = 0; pos < BASE; pos += BLOCK)
		assert_int_equal(write_block(&sh, pos, 1, false), BLOCK);
	assert_int_equal(fs_clone(fs, sh.ino, 0, sh.ino_b, 0, BASE, true), BASE);

	race(fn, sizeof(fn) / sizeof(fn[0]), &sh);

	/* the last clone of each range left B equal to A there, except where
	 * a later write or punch changed one side: no page may be lost or
	 * counted twice, which the check sees */
	assert_true(check_clean(fs).pages_used > 0);
}

/* ---- one directory: names made, linked, renamed and removed at once ---- */

#define NAMES 12

/* errors the namespace races may give; anything else fails the test */
static bool expected(int rc)
{
	return rc >= 0 || rc == -ENOENT || rc == -EEXIST || rc == -ENOTEMPTY ||
	       rc == -ENOTDIR || rc == -EISDIR || rc == -EINVAL ||
	       rc == -EPERM; /* a hard link to a directory */
}

static void pick(uint64_t *seed, char *name, const char *prefix)
{
	snprintf(name, 16, "%s%u", prefix, (unsigned)(trand(seed) % NAMES));
}

static int count_fn(void *arg, const char *name, size_t len, uint64_t ino,
		    unsigned type, uint64_t next_off)
{
	(void)name, (void)len, (void)ino, (void)type, (void)next_off;
	(*(int *)arg)++;
	return 0;
}

static void *ns_worker(void *arg)
{
	struct shared *sh = arg;
	struct kmfs_fs *fs = sh->fs;
	uint64_t seed = 29 + __atomic_fetch_add(&sh->ino_b, 1, __ATOMIC_RELAXED);

	for (int i = 0; i < ROUNDS / 2; i++) {
		char a[16], b[16];
		uint64_t off;
		int rc = 0, n = 0;
		struct stat st;

		pick(&seed, a, trand(&seed) % 4 ? "f" : "d");
		pick(&seed, b, trand(&seed) % 4 ? "f" : "d");
		int op = (int)(trand(&seed) % 9);
		switch (op) {
		case 0:
			rc = fs_mknod(fs, FS_ROOT_INO, a, S_IFREG | 0600, 0,
				      &root, &off);
			if (rc == 0)
				fs_forget(fs, fs_ino(fs, off), 1);
			break;
		case 1:
			rc = fs_mkdir(fs, FS_ROOT_INO, b, 0700, &root, &off);
			if (rc == 0)
				fs_forget(fs, fs_ino(fs, off), 1);
			break;
		case 2:
			rc = fs_unlink(fs, FS_ROOT_INO, a);
			break;
		case 3:
			rc = fs_rmdir(fs, FS_ROOT_INO, b);
			break;
		case 4:
			rc = fs_rename(fs, FS_ROOT_INO, a, FS_ROOT_INO, b,
				       (unsigned)(trand(&seed) % 3), &root);
			break;
		case 5: /* hard link, then write through the new name */
			rc = fs_lookup(fs, FS_ROOT_INO, a, &off);
			if (rc < 0)
				break;
			uint64_t ino = fs_ino(fs, off), loff;
			rc = fs_link(fs, ino, FS_ROOT_INO, b, &loff);
			if (rc == 0)
				fs_forget(fs, ino, 1);
			if (rc == 0 && S_ISREG(fs_inode(fs, off)->mode) &&
			    write_block(&(struct shared){ .fs = fs, .ino = ino },
					0, 2, true) != BLOCK)
				rc = -EIO;
			fs_forget(fs, ino, 1);
			break;
		case 6: /* an unnamed file, named or dropped */
			rc = fs_tmpfile(fs, FS_ROOT_INO, 0600, true, &root, &off);
			if (rc < 0)
				break;
			if (trand(&seed) % 2) {
				uint64_t loff;
				rc = fs_link(fs, fs_ino(fs, off), FS_ROOT_INO, a, &loff);
				if (rc == 0)
					fs_forget(fs, fs_ino(fs, off), 1);
			}
			fs_forget(fs, fs_ino(fs, off), 1);
			break;
		case 7:
			rc = fs_readdir(fs, FS_ROOT_INO, 0, count_fn, &n);
			if (rc == 0 && n < 2)
				rc = -EIO;
			break;
		default:
			rc = fs_lookup(fs, FS_ROOT_INO, a, &off);
			if (rc == 0) {
				rc = fs_getattr(fs, fs_ino(fs, off), &st);
				fs_forget(fs, fs_ino(fs, off), 1);
			}
			break;
		}
		if (!expected(rc)) {
			fprintf(stderr, "op %d on %s, %s: ", op, a, b);
			note_failure(sh, "namespace op", rc);
		}
	}
	return NULL;
}

static void test_threads_namespace(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	void *(*fn[])(void *) = { ns_worker, ns_worker, ns_worker, ns_worker };
	struct shared sh = { .fs = fs };
	struct statvfs sv;

	race(fn, sizeof(fn) / sizeof(fn[0]), &sh);

	/* every reference was dropped: what no name holds is gone */
	struct check_result r = check_clean(fs);
	assert_int_equal(r.orphans, 0);
	assert_int_equal(fs_statfs(fs, &sv), 0);
	assert_int_equal(sv.f_files - sv.f_ffree, r.inodes);
}

/* ---- attributes: modes, owners, ACLs and xattrs changed while read ---- */

/* system.posix_acl_* values as the kernel passes them (version 2) */
struct acl_entry_x { uint16_t tag, perm; uint32_t id; };
struct acl_x { uint32_t version; struct acl_entry_x e[5]; };

static const struct acl_x acl_value = { 2, {
	{ 0x01, 6, ~0u },  /* user:: rw */
	{ 0x02, 4, 1000 }, /* user:1000: r */
	{ 0x04, 4, ~0u },  /* group:: r */
	{ 0x10, 4, ~0u },  /* mask:: r */
	{ 0x20, 0, ~0u },  /* other:: - */
} };

static void *chmodder(void *arg)
{
	struct shared *sh = arg;

	for (int i = 0; i < ROUNDS; i++) {
		struct stat a = { .st_mode = S_IFREG | (i % 2 ? 0640 : 0604),
				  .st_uid = (uid_t)(i % 3), .st_gid = 7 }, out;
		int rc = fs_setattr(sh->fs, sh->ino, &a,
				    FS_SET_MODE | FS_SET_UID | FS_SET_GID, &out);
		if (rc < 0)
			note_failure(sh, "chmod", rc);
	}
	return NULL;
}

static void *acl_setter(void *arg)
{
	struct shared *sh = arg;

	for (int i = 0; i < ROUNDS; i++) {
		int rc = i % 4 == 3
			 ? fs_removexattr(sh->fs, sh->ino, "system.posix_acl_access")
			 : fs_setxattr(sh->fs, sh->ino, "system.posix_acl_access",
				       &acl_value, sizeof(acl_value), 0);
		if (rc < 0 && rc != -ENODATA)
			note_failure(sh, "acl", rc);
		rc = fs_setxattr(sh->fs, sh->ino_b, "system.posix_acl_default",
				 &acl_value, sizeof(acl_value), 0);
		if (rc < 0)
			note_failure(sh, "default acl", rc);
	}
	return NULL;
}

/* files made in a directory with a default ACL inherit it */
static void *inheritor(void *arg)
{
	struct shared *sh = arg;

	for (int i = 0; i < ROUNDS / 2; i++) {
		uint64_t off;
		int rc = fs_mknod(sh->fs, sh->ino_b, "child", S_IFREG | 0666, 0,
				  &root, &off);
		if (rc == 0)
			fs_forget(sh->fs, fs_ino(sh->fs, off), 1);
		if (rc == 0)
			rc = fs_unlink(sh->fs, sh->ino_b, "child");
		if (rc < 0)
			note_failure(sh, "create in dir", rc);
	}
	return NULL;
}

static void *attr_reader(void *arg)
{
	struct shared *sh = arg;

	for (int i = 0; i < 2 * ROUNDS; i++) {
		char buf[256];
		struct stat st;
		ssize_t n = fs_getxattr(sh->fs, sh->ino, "system.posix_acl_access",
					buf, sizeof(buf));
		if (n < 0 && n != -ENODATA)
			note_failure(sh, "get acl", (long)n);
		n = fs_listxattr(sh->fs, sh->ino, buf, sizeof(buf), NULL, NULL);
		if (n < 0)
			note_failure(sh, "listxattr", (long)n);
		if (fs_getattr(sh->fs, sh->ino, &st) < 0 || !S_ISREG(st.st_mode) ||
		    st.st_gid != 7)
			note_failure(sh, "getattr", (long)st.st_mode);
	}
	return NULL;
}

static void test_threads_attributes(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	void *(*fn[])(void *) = { chmodder, acl_setter, inheritor, attr_reader,
				  appender };
	struct shared sh = { .fs = fs };
	struct stat a = { .st_gid = 7 }, out;
	uint64_t off;

	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "a", S_IFREG | 0644, 0,
				  &root, &off), 0);
	sh.ino = fs_ino(fs, off);
	assert_int_equal(fs_setattr(fs, sh.ino, &a, FS_SET_GID, &out), 0);
	for (uint64_t pos = 0; pos < BASE; pos += BLOCK)
		assert_int_equal(write_block(&sh, pos, 1, false), BLOCK);
	assert_int_equal(fs_mkdir(fs, FS_ROOT_INO, "d", 0755, &root, &off), 0);
	sh.ino_b = fs_ino(fs, off);

	race(fn, sizeof(fn) / sizeof(fn[0]), &sh);

	check_clean(fs);
}

/* ---- whole units freed and taken back while others allocate ---------- */

#define CHURN_BYTES (6u << 20) /* more than a 4 MiB unit */

static void *churner(void *arg)
{
	struct shared *sh = arg;
	unsigned me = __atomic_fetch_add(&sh->final_size, 1, __ATOMIC_RELAXED);
	static __thread unsigned char buf[1 << 20];
	char name[16];
	uint64_t off;

	snprintf(name, sizeof(name), "c%u", me);
	if (fs_mknod(sh->fs, FS_ROOT_INO, name, S_IFREG | 0644, 0, &root, &off)) {
		note_failure(sh, "create", 0);
		return NULL;
	}
	uint64_t ino = fs_ino(sh->fs, off);
	memset(buf, (int)me + 1, sizeof(buf));
	for (int i = 0; i < 12; i++) {
		for (uint64_t pos = 0; pos < CHURN_BYTES; pos += sizeof(buf))
			if (write_mem(sh->fs, ino, pos, buf, sizeof(buf), false) !=
			    (ssize_t)sizeof(buf))
				note_failure(sh, "write", (long)pos);
		/* the others' long writes into the pool file ran meanwhile:
		 * every page holds this thread's bytes */
		for (uint64_t pos = 0; pos < CHURN_BYTES; pos += 257 * BLOCK) {
			unsigned char got[BLOCK];
			struct readbuf r = { got, 0 };

			if (fs_read(sh->fs, ino, pos, BLOCK, reply, &r) != 0 ||
			    r.n != BLOCK || memcmp(got, buf, BLOCK) != 0)
				note_failure(sh, "read back", (long)pos);
		}
		struct stat a = { .st_size = 0 }, out;
		if (i % 2)
			fs_fallocate(sh->fs, ino, FALLOC_FL_PUNCH_HOLE |
				     FALLOC_FL_KEEP_SIZE, 0, CHURN_BYTES);
		else if (fs_setattr(sh->fs, ino, &a, FS_SET_SIZE, &out) < 0)
			note_failure(sh, "truncate", 0);
	}
	return NULL;
}

static void *space_watcher(void *arg)
{
	struct shared *sh = arg;

	for (int i = 0; i < ROUNDS / 4; i++) {
		struct statvfs sv;
		if (fs_statfs(sh->fs, &sv) < 0 || sv.f_bfree > sv.f_blocks ||
		    sv.f_bavail > sv.f_bfree)
			note_failure(sh, "statfs", (long)sv.f_bfree);
	}
	return NULL;
}

static void test_threads_units(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	void *(*fn[])(void *) = { churner, churner, churner, space_watcher };
	struct shared sh = { .fs = fs };
	struct statvfs before, after;
	struct pages_stats ps0, ps1;

	assert_int_equal(fs_statfs(fs, &before), 0);
	pages_stats(&fs->pages, &ps0);
	race(fn, sizeof(fn) / sizeof(fn[0]), &sh);

	/* every file ends empty: all the space is free again, and whole
	 * units went back and forth on the way */
	assert_int_equal(fs_statfs(fs, &after), 0);
	assert_int_equal(after.f_bfree, before.f_bfree);
	pages_stats(&fs->pages, &ps1);
	assert_true(ps1.units_lent_total > ps0.units_lent_total);
	assert_true(ps1.units_reclaimed_total > ps0.units_reclaimed_total);
	check_clean(fs);
}

/* ---- a count of 1 that rolls back is not this file's alone ------------ */

struct overwrite_job {
	struct shared *sh;
	_Atomic bool done;
};

static void *overwrite_first_page(void *arg)
{
	struct overwrite_job *j = arg;

	if (write_block(j->sh, 0, 0xee, false) != BLOCK)
		note_failure(j->sh, "write", 0);
	atomic_store(&j->done, true);
	return NULL;
}

/*
 * B shares its first page with A. Another operation's transaction drops
 * that page to one reference and then aborts; a write to A meanwhile must
 * copy, not store in place, or B would read A's new data after the abort.
 */
static void test_threads_unshare_rollback(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct shared sh = { .fs = fs };
	struct overwrite_job job = { &sh, false };
	unsigned char out[BLOCK], want[BLOCK];
	struct readbuf r = { out, 0 };
	struct kmfs_extent e;
	struct txn t;
	pthread_t th;
	uint64_t off;

	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "a", S_IFREG | 0644, 0,
				  &root, &off), 0);
	sh.ino = fs_ino(fs, off);
	assert_int_equal(write_block(&sh, 0, 1, false), BLOCK);
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "b", S_IFREG | 0644, 0,
				  &root, &off), 0);
	sh.ino_b = fs_ino(fs, off);
	assert_int_equal(fs_clone(fs, sh.ino, 0, sh.ino_b, 0, BLOCK, true), BLOCK);
	assert_int_equal(emap_lookup(&fs->pool, fs_inode(fs, off), 0, &e), 0);
	assert_int_equal(pages_refcount(&fs->pages, e.dpage), 2);

	txn_init(&t, &fs->pages);
	assert_int_equal(txn_begin(&t), 0);
	assert_int_equal(pages_unref(&t, e.dpage, 1), 0);
	assert_int_equal(pages_refcount(&fs->pages, e.dpage), 1);
	assert_int_equal(pthread_create(&th, NULL, overwrite_first_page, &job), 0);
	/* the write must wait for this transaction (it copies, and commits
	 * its copy after this ends); give a wrong one time to store */
	for (int i = 0; i < 50 && !atomic_load(&job.done); i++)
		usleep(10000);
	assert_int_equal(txn_end(&t, -ECANCELED), -ECANCELED);
	pthread_join(th, NULL);
	assert_int_equal(sh.failures, 0);

	memset(want, 1, sizeof(want));
	assert_int_equal(fs_read(fs, sh.ino_b, 0, BLOCK, reply, &r), 0);
	assert_memory_equal(out, want, BLOCK);
	memset(want, 0xee, sizeof(want));
	r.n = 0;
	assert_int_equal(fs_read(fs, sh.ino, 0, BLOCK, reply, &r), 0);
	assert_memory_equal(out, want, BLOCK);
	assert_int_equal(pages_refcount(&fs->pages, e.dpage), 1);
}

/* ---- two writers want the one unit still lent ------------------------- */

struct last_unit {
	struct shared *sh;
	pthread_barrier_t go;
	int id;
};

static void *last_unit_writer(void *arg)
{
	struct last_unit *lu = arg;
	struct shared *sh = lu->sh;
	int id = __atomic_fetch_add(&lu->id, 1, __ATOMIC_RELAXED);
	char name[16];

	snprintf(name, sizeof(name), "w%d", id);
	for (int i = 0; i < 200; i++) {
		uint64_t off;
		unsigned char buf[BLOCK];

		memset(buf, id, sizeof(buf));
		if (fs_mknod(sh->fs, FS_ROOT_INO, name, S_IFREG | 0644, 0, &root,
			     &off) < 0) {
			note_failure(sh, "create", 0);
			break;
		}
		pthread_barrier_wait(&lu->go); /* both write at once */
		ssize_t n = write_mem(sh->fs, fs_ino(sh->fs, off), 0, buf, BLOCK,
				      false);
		if (n != BLOCK)
			note_failure(sh, "write into the last unit", (long)n);
		fs_forget(sh->fs, fs_ino(sh->fs, off), 1);
		pthread_barrier_wait(&lu->go);
		if (fs_unlink(sh->fs, FS_ROOT_INO, name) < 0)
			note_failure(sh, "unlink", 0);
	}
	return NULL;
}

/* fill every unit but N, which are lent (reserve 0) */
static void fill_but_units(struct kmfs_fs *fs, uint64_t n)
{
	static unsigned char big[1 << 20];
	struct pages_stats ps;
	uint64_t off, ino, fill;

	pages_stats(&fs->pages, &ps);
	fill = (ps.free_pages + ps.lent_pages) * KMFS_PAGE_SIZE - n * KMFS_UNIT_SIZE;
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "fill", S_IFREG | 0644, 0,
				  &root, &off), 0);
	ino = fs_ino(fs, off);
	memset(big, 7, sizeof(big));
	for (uint64_t pos = 0; pos < fill; pos += sizeof(big)) {
		size_t len = fill - pos < sizeof(big) ? fill - pos : sizeof(big);
		assert_int_equal(write_mem(fs, ino, pos, big, len, false), len);
	}
	pages_stats(&fs->pages, &ps);
	assert_int_equal(ps.lent_pages, n * KMFS_UNIT_PAGES);
	assert_int_equal(ps.free_pages, 0);
}

static void fill_but_one_unit(struct kmfs_fs *fs)
{
	fill_but_units(fs, 1);
}

/* a reclaim through kmemfs.ko takes milliseconds; a pool file's, nothing */
static int slow_reclaim(uint64_t u)
{
	usleep(2000);
	(void)u;
	return 0;
}

/*
 * Every unit but one is full and that one is lent: while one writer takes
 * it back (without the allocator's lock), the other must wait for it, not
 * fail with ENOSPC.
 */
static void test_threads_last_unit(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct shared sh = { .fs = fs };
	struct last_unit lu = { .sh = &sh };
	struct pages_stats ps;
	pthread_t th[2];

	fill_but_one_unit(fs);

	fs->pages.reclaim_hook = slow_reclaim;
	pthread_barrier_init(&lu.go, NULL, 2);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, last_unit_writer, &lu), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&lu.go);
	assert_int_equal(sh.failures, 0);
	pages_stats(&fs->pages, &ps);
	assert_true(ps.units_reclaimed_total >= 200);
}

/* ---- taking a unit back may wait for a READ of the file being written -- */

static struct {
	struct kmfs_fs *fs;
	uint64_t ino;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool read_done, blocked;
	pthread_t reader;
} rr = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *read_during_reclaim(void *arg)
{
	unsigned char out[BLOCK];
	struct readbuf r = { out, 0 };

	(void)arg;
	fs_read(rr.fs, rr.ino, 0, BLOCK, reply, &r);
	pthread_mutex_lock(&rr.lock);
	rr.read_done = true;
	pthread_cond_signal(&rr.cond);
	pthread_mutex_unlock(&rr.lock);
	return NULL;
}

/* as the kernel migrating a folio locked for a READ: the reclaim goes on
 * only once the daemon has answered that READ */
static int reclaim_waits_for_read(uint64_t u)
{
	struct timespec until;

	rr.read_done = false;
	pthread_create(&rr.reader, NULL, read_during_reclaim, NULL);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	pthread_mutex_lock(&rr.lock);
	while (!rr.read_done)
		if (pthread_cond_timedwait(&rr.cond, &rr.lock, &until)) {
			rr.blocked = true; /* a deadlock, were this the kernel */
			break;
		}
	pthread_mutex_unlock(&rr.lock);
	(void)u;
	return 0;
}

static void test_threads_reclaim_not_under_locks(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct shared sh = { .fs = fs };
	uint64_t off;

	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "f", S_IFREG | 0644, 0,
				  &root, &off), 0);
	sh.ino = fs_ino(fs, off);
	assert_int_equal(write_block(&sh, 0, 3, false), BLOCK);
	fill_but_one_unit(fs);
	rr.fs = fs;
	rr.ino = sh.ino;
	fs->pages.reclaim_hook = reclaim_waits_for_read;
	/* a new page of f: only the lent unit can serve it */
	assert_int_equal(write_block(&sh, 16 * BLOCK, 4, false), BLOCK);
	fs->pages.reclaim_hook = NULL;
	pthread_join(rr.reader, NULL);
	assert_false(rr.blocked);
}

/* ---- units taken back for a rerun are not lent again under it --------- */

static struct {
	struct kmfs_fs *fs;
	int next, files;
} churn;

/* another operation frees a whole unit while the units are taken back */
static int reclaim_meets_a_free(uint64_t u)
{
	char name[16];

	if (churn.next >= churn.files)
		return 0;
	snprintf(name, sizeof(name), "u%d", churn.next++);
	fs_unlink(churn.fs, FS_ROOT_INO, name);
	(void)u;
	return 0;
}

static void test_threads_taken_back_stays(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct shared sh = { .fs = fs };
	struct pages_stats a, b;
	uint64_t off, want = 40ull << 20;
	int rc;

	/* whole-unit files to delete during the reclaims */
	churn.fs = fs;
	churn.files = 6;
	for (int i = 0; i < churn.files; i++) {
		char name[16];
		snprintf(name, sizeof(name), "u%d", i);
		assert_int_equal(fs_mknod(fs, FS_ROOT_INO, name, S_IFREG | 0644, 0,
					  &root, &off), 0);
		assert_int_equal(fs_fallocate(fs, fs_ino(fs, off), 0, 0,
					      KMFS_UNIT_SIZE), 0);
		fs_forget(fs, fs_ino(fs, off), 1);
	}
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "big", S_IFREG | 0644, 0,
				  &root, &off), 0);
	sh.ino = fs_ino(fs, off);
	pages_stats(&fs->pages, &a);
	fs->pages.reclaim_hook = reclaim_meets_a_free;
	rc = fs_fallocate(fs, sh.ino, 0, 0, want);
	fs->pages.reclaim_hook = NULL;
	assert_int_equal(rc, 0);
	pages_stats(&fs->pages, &b);
	/* 10 units needed, some of them free: none taken back is lent again
	 * under the reruns (with that, 15 taken back and 9 lent), only what
	 * the doubling took too many, at the end */
	assert_true(b.units_reclaimed_total - a.units_reclaimed_total <= 10);
	assert_true(b.units_lent_total - a.units_lent_total <= 2);
}

/* ---- a punch changes nothing before it has the pages it needs -------- */

static struct {
	struct kmfs_fs *fs;
	uint64_t ino;
	bool seen, intact;
} pz;

/* while the punch waits for its unit, its first page must still be whole */
static int reclaim_reads_first_page(uint64_t u)
{
	unsigned char out[BLOCK];
	struct readbuf r = { out, 0 };
	bool whole = fs_read(pz.fs, pz.ino, 0, BLOCK, reply, &r) == 0 &&
		     r.n == BLOCK;

	for (size_t i = 0; whole && i < BLOCK; i++)
		whole = out[i] == 5;
	if (!pz.seen)
		pz.intact = whole;
	pz.seen = true;
	(void)u;
	return 0;
}

/*
 * A punch of [100, 4196) zeroes the end of page 0 (this file's alone, in
 * place) and the start of page 1 (shared with a clone, so on a copy). Only
 * the lent unit can give the copy a page: the punch lets its locks go to
 * take it back, and page 0 must not be zeroed yet, or a write landing there
 * meanwhile would be wiped by the rerun.
 */
static void test_threads_punch_plans_first(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct shared sh = { .fs = fs };
	unsigned char out[2 * BLOCK];
	struct readbuf r = { out, 0 };
	uint64_t off, g;

	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "f", S_IFREG | 0644, 0,
				  &root, &off), 0);
	sh.ino = fs_ino(fs, off);
	assert_int_equal(write_block(&sh, 0, 5, false), BLOCK);
	assert_int_equal(write_block(&sh, BLOCK, 6, false), BLOCK);
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "g", S_IFREG | 0644, 0,
				  &root, &off), 0);
	g = fs_ino(fs, off);
	assert_int_equal(fs_clone(fs, sh.ino, BLOCK, g, 0, BLOCK, false), BLOCK);
	fill_but_one_unit(fs);

	pz.fs = fs;
	pz.ino = sh.ino;
	fs->pages.reclaim_hook = reclaim_reads_first_page;
	assert_int_equal(fs_fallocate(fs, sh.ino, FALLOC_FL_PUNCH_HOLE |
				      FALLOC_FL_KEEP_SIZE, 100, BLOCK), 0);
	fs->pages.reclaim_hook = NULL;
	assert_true(pz.seen);
	assert_true(pz.intact);

	assert_int_equal(fs_read(fs, sh.ino, 0, 2 * BLOCK, reply, &r), 0);
	assert_int_equal(r.n, 2 * BLOCK);
	for (size_t i = 0; i < 2 * BLOCK; i++)
		assert_int_equal(out[i], i < 100 ? 5 : i < BLOCK + 100 ? 0 : 6);
	r.n = 0;
	assert_int_equal(fs_read(fs, g, 0, BLOCK, reply, &r), 0);
	for (size_t i = 0; i < BLOCK; i++)
		assert_int_equal(out[i], 6);
	check_clean(fs);
}

/* ---- a unit the kernel keeps is passed over ---------------------------- */

static struct {
	int calls, refuse; /* refuse the first REFUSE reclaims */
	int64_t first;
} keep;

/* as kmemfs.ko with a folio on the unit locked for the very write that
 * needs it: EBUSY at once, the unit stays the kernel's */
static int reclaim_kernel_keeps(uint64_t u)
{
	if (keep.calls++ == 0)
		keep.first = (int64_t)u;
	return keep.calls <= keep.refuse ? -EBUSY : 0;
}

static void test_threads_kept_unit_passed_over(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	struct shared sh = { .fs = fs };
	struct pages_stats a, b;
	uint64_t off;

	fill_but_units(fs, 3);
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "f", S_IFREG | 0644, 0,
				  &root, &off), 0);
	sh.ino = fs_ino(fs, off);

	/* the first unit tried is refused: the write takes the next one */
	keep.refuse = 1;
	pages_stats(&fs->pages, &a);
	fs->pages.reclaim_hook = reclaim_kernel_keeps;
	assert_int_equal(write_block(&sh, 0, 9, false), BLOCK);
	fs->pages.reclaim_hook = NULL;
	pages_stats(&fs->pages, &b);
	assert_int_equal(keep.calls, 2);
	assert_int_equal(b.reclaim_failures - a.reclaim_failures, 1);
	assert_int_equal(b.units_reclaimed_total - a.units_reclaimed_total, 1);
	assert_int_equal(b.lent_pages, 2 * KMFS_UNIT_PAGES);
	assert_int_equal(fs->pages.u[keep.first].state, UNIT_LENT);
	assert_int_equal(fs->pool.units[keep.first], KMFS_UNIT_LENT);

	/* every unit refused: ENOSPC after trying each once, no hang */
	memset(&keep, 0, sizeof(keep));
	keep.refuse = 1000;
	uint64_t big = b.free_pages * KMFS_PAGE_SIZE + BLOCK;
	fs->pages.reclaim_hook = reclaim_kernel_keeps;
	int rc = fs_fallocate(fs, sh.ino, 0, BLOCK, big);
	fs->pages.reclaim_hook = NULL;
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(keep.calls, 2);
	pages_stats(&fs->pages, &a);
	assert_int_equal(a.lent_pages, 2 * KMFS_UNIT_PAGES);
	check_clean(fs);
}

/* a write larger than the free pages, when the kernel keeps every lent
 * unit: the free pages are written, as on a full filesystem (a short
 * write), not nothing */
static void test_threads_kept_units_short_write(void **state)
{
	struct kmfs_fs *fs = &((struct tpool *)*state)->fs;
	static unsigned char buf[64 * BLOCK];
	struct pages_stats ps;
	uint64_t off, fill, ino;

	fill_but_units(fs, 3);
	assert_int_equal(fs_lookup(fs, FS_ROOT_INO, "fill", &off), 0);
	fill = fs_ino(fs, off);
	/* ten pages free in a unit in use */
	assert_int_equal(fs_fallocate(fs, fill, FALLOC_FL_PUNCH_HOLE |
				      FALLOC_FL_KEEP_SIZE, 40 * BLOCK,
				      10 * BLOCK), 0);
	pages_stats(&fs->pages, &ps);
	assert_int_equal(ps.free_pages, 10);
	assert_int_equal(fs_mknod(fs, FS_ROOT_INO, "f", S_IFREG | 0644, 0,
				  &root, &off), 0);
	ino = fs_ino(fs, off);

	memset(&keep, 0, sizeof(keep));
	keep.refuse = 1000;
	memset(buf, 0x5a, sizeof(buf));
	fs->pages.reclaim_hook = reclaim_kernel_keeps;
	assert_int_equal(write_mem(fs, ino, 0, buf, sizeof(buf), false),
			 10 * BLOCK);
	/* nothing left: the next write gets ENOSPC, and changes nothing */
	assert_int_equal(write_mem(fs, ino, 10 * BLOCK, buf, BLOCK, false),
			 -ENOSPC);
	fs->pages.reclaim_hook = NULL;
	assert_true(keep.calls >= 2);

	struct stat st;
	assert_int_equal(fs_getattr(fs, ino, &st), 0);
	assert_int_equal(st.st_size, 10 * BLOCK);
	memset(buf, 0, sizeof(buf));
	struct readbuf r = { buf, 0 };
	assert_int_equal(fs_read(fs, ino, 0, sizeof(buf), reply, &r), 0);
	assert_int_equal(r.n, 10 * BLOCK);
	for (size_t i = 0; i < 10 * BLOCK; i++)
		assert_int_equal(buf[i], 0x5a);
	pages_stats(&fs->pages, &ps);
	assert_int_equal(ps.free_pages, 0);
	assert_int_equal(ps.lent_pages, 3 * KMFS_UNIT_PAGES);
	check_clean(fs);
}

static int tpool_setup_reserve(void **state)
{
	struct tpool *t = calloc(1, sizeof(*t));
	struct pool_format_opts po = { .size = 96ull << 20, .meta_pct = 20 };
	struct fs_opts fo = { .lend = true, .reserve = 2 * KMFS_UNIT_SIZE };

	tpool_path(t);
	if (pool_format(t->path, &po) < 0 || fs_mount(&t->fs, t->path, &fo) < 0) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int tpool_setup_small(void **state)
{
	return tpool_setup(state, 64ull << 20, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_threads_one_file,
						tpool_setup_default,
						tpool_teardown),
		cmocka_unit_test_setup_teardown(test_threads_clones,
						tpool_setup_default,
						tpool_teardown),
		cmocka_unit_test_setup_teardown(test_threads_namespace,
						tpool_setup_default,
						tpool_teardown),
		cmocka_unit_test_setup_teardown(test_threads_attributes,
						tpool_setup_default,
						tpool_teardown),
		cmocka_unit_test_setup_teardown(test_threads_units,
						tpool_setup_default,
						tpool_teardown),
		cmocka_unit_test_setup_teardown(test_threads_unshare_rollback,
						tpool_setup_default,
						tpool_teardown),
		cmocka_unit_test_setup_teardown(test_threads_last_unit,
						tpool_setup_small,
						tpool_teardown),
		cmocka_unit_test_setup_teardown(test_threads_reclaim_not_under_locks,
						tpool_setup_small,
						tpool_teardown),
		cmocka_unit_test_setup_teardown(test_threads_punch_plans_first,
						tpool_setup_small,
						tpool_teardown),
		cmocka_unit_test_setup_teardown(test_threads_kept_unit_passed_over,
						tpool_setup_small,
						tpool_teardown),
		cmocka_unit_test_setup_teardown(test_threads_kept_units_short_write,
						tpool_setup_small,
						tpool_teardown),
		cmocka_unit_test_setup_teardown(test_threads_taken_back_stays,
						tpool_setup_reserve,
						tpool_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
