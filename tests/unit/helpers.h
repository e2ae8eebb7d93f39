/* SPDX-License-Identifier: BSD-3-Clause */
/* helpers.h -- a fresh pool file under $TMPDIR for each unit test. */
#ifndef KMEMFS_TEST_HELPERS_H
#define KMEMFS_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs.h"
#include "pool.h"

struct tpool {
	char path[512];
	struct kmfs_fs fs;
};

static inline void tpool_path_in(struct tpool *t, const char *dir)
{
	snprintf(t->path, sizeof(t->path), "%s/kmemfs-unit-%d-%p.img", dir,
		 (int)getpid(), (void *)t);
	unlink(t->path);
}

static inline void tpool_path(struct tpool *t)
{
	tpool_path_in(t, getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
}

/* tpool_setup_in -- format SIZE bytes in DIR (NULL: $TMPDIR) and mount
 * it (no FUSE) */
static inline int tpool_setup_in(void **state, const char *dir, uint64_t size,
				 bool lend)
{
	struct tpool *t = calloc(1, sizeof(*t));
	struct pool_format_opts po = { .size = size, .meta_pct = 20 };
	struct fs_opts fo = { .lend = lend, .reserve = 0 };

	if (dir)
		tpool_path_in(t, dir);
	else
		tpool_path(t);
	if (pool_format(t->path, &po) < 0 || fs_mount(&t->fs, t->path, &fo) < 0) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static inline int tpool_setup(void **state, uint64_t size, bool lend)
{
	return tpool_setup_in(state, NULL, size, lend);
}

static inline int tpool_setup_default(void **state)
{
	return tpool_setup(state, 128ull << 20, true);
}

static inline int tpool_teardown(void **state)
{
	struct tpool *t = *state;
	fs_unmount(&t->fs);
	unlink(t->path);
	free(t);
	return 0;
}

static inline int tpool_remount(struct tpool *t)
{
	struct fs_opts fo = { .lend = true };
	fs_unmount(&t->fs);
	return fs_mount(&t->fs, t->path, &fo);
}

/* tpool_make_format1 -- make T's fresh pool one that format 1.1 made (no
 * directory key, FNV tables; the root's is empty, so no name to rehash)
 * and mount it again */
static inline void tpool_make_format1(struct tpool *t)
{
	struct kmfs_fs *fs = &t->fs;
	struct kmfs_inode *root = fs_inode(fs, fs_ino_off(fs, FS_ROOT_INO));
	struct kmfs_dirtable *tab = pool_ptr(&fs->pool, root->data_off);

	assert_int_equal(tab->count, 0);
	tab->hash_kind = KMFS_HASH_FNV;
	fs->pool.sb->major = 1;
	fs->pool.sb->minor = 1;
	memset(fs->pool.sb->dir_key, 0, sizeof(fs->pool.sb->dir_key));
	root->handle_tag = 0; /* the field was padding then */
	pool_persist(&fs->pool, root, sizeof(*root));
	pool_persist(&fs->pool, tab, sizeof(*tab));
	pool_persist(&fs->pool, fs->pool.sb, sizeof(*fs->pool.sb));
	assert_int_equal(tpool_remount(t), 0);
}

/* a deterministic pseudo-random generator for reproducible tests */
static inline uint64_t trand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- file data from and into memory, for the fs_write/fs_read tests ---- */

static const struct fs_cred root = { 0, 0, 022 };

struct membuf { const unsigned char *p; };

/* a data_src that reads from memory */
static inline int src_copy(void *arg, void *dst, size_t len)
{
	struct membuf *m = arg;
	memcpy(dst, m->p, len);
	m->p += len;
	return 0;
}

/* fs_write of LEN bytes from BUF */
static inline ssize_t write_mem(struct kmfs_fs *fs, uint64_t ino, uint64_t off,
				const void *buf, size_t len, bool append)
{
	struct membuf m = { buf };
	struct data_src src = { src_copy, &m, NULL, NULL };
	return fs_write(fs, ino, off, len, &src, append);
}

struct readbuf { unsigned char *p; size_t n; };

/* a data_reply_fn that gathers the pieces of a read into memory */
static inline int reply(void *arg, const struct iovec *iov, int n)
{
	struct readbuf *r = arg;
	for (int i = 0; i < n; i++) {
		memcpy(r->p + r->n, iov[i].iov_base, iov[i].iov_len);
		r->n += iov[i].iov_len;
	}
	return 0;
}

#endif
