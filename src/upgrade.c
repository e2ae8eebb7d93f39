// SPDX-License-Identifier: BSD-3-Clause
/*
 * upgrade.c -- an older pool to this format: key the directory hash of a
 * format 1 pool (2.0), and let fallocate keep unwritten extents (3.0).
 *
 * The key goes in first, with the version, so that every table made from
 * then on is keyed; the old tables are then rebuilt one directory at a
 * time, since a single transaction for a whole tree could outgrow the
 * metadata space that holds its logs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <libpmemobj.h>

#include "dir.h"
#include "log.h"
#include "pages.h"
#include "pool.h"
#include "txn.h"
#include "upgrade.h"

/* this format's version, with directory key KEY when not NULL, in one
 * transaction */
static int set_version(struct kmfs_pool *p, struct pages *pg, const uint8_t *key)
{
	struct kmfs_super *sb = p->sb;
	struct txn t;
	int rc;

	txn_init(&t, pg);
	rc = txn_begin(&t);
	if (rc < 0)
		return rc;
	rc = tx_add(sb, sizeof(*sb));
	if (rc == 0) {
		if (key)
			memcpy(sb->dir_key, key, sizeof(sb->dir_key));
		sb->major = KMFS_VERSION_MAJOR;
		sb->minor = KMFS_VERSION_MINOR;
	}
	return txn_end(&t, rc);
}

static int set_key(struct kmfs_pool *p, struct pages *pg)
{
	uint8_t key[sizeof(p->sb->dir_key)];
	int rc = pool_new_dir_key(key, p->media.path);

	return rc < 0 ? rc : set_version(p, pg, key);
}

/* the directories whose table is not keyed; the heap is walked before any
 * of them changes it */
static int unkeyed_dirs(struct kmfs_pool *p, uint64_t **out, size_t *n)
{
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	for (PMEMoid oid = pmemobj_first(p->pop); !OID_IS_NULL(oid);
	     oid = pmemobj_next(oid)) {
		if (pmemobj_type_num(oid) != KMFS_T_INODE ||
		    !dir_unkeyed(p, pool_ptr(p, oid.off)))
			continue;
		if (*n == cap) {
			size_t c = cap ? cap * 2 : 64;
			uint64_t *v = realloc(*out, c * sizeof(*v));
			if (!v) {
				free(*out);
				return -ENOMEM;
			}
			*out = v;
			cap = c;
		}
		(*out)[(*n)++] = oid.off;
	}
	return 0;
}

int pool_upgrade(struct kmfs_pool *p, struct upgrade_result *r)
{
	struct pages pg;
	uint64_t *dirs;
	size_t n;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	pages_init_offline(&pg, p);
	if (!pool_has_dir_key(p)) {
		rc = set_key(p, &pg);
		if (rc < 0) {
			log_err("cannot write the directory key: %s", strerror(-rc));
			goto out;
		}
		r->keyed = true;
		r->versioned = true; /* the key came with this format's version */
	} else if (p->sb->major < KMFS_VERSION_MAJOR) {
		rc = set_version(p, &pg, NULL);
		if (rc < 0) {
			log_err("cannot write the format version: %s", strerror(-rc));
			goto out;
		}
		r->versioned = true;
	}
	rc = unkeyed_dirs(p, &dirs, &n);
	if (rc < 0) {
		log_err("out of memory listing the directories");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct kmfs_inode *dir = pool_ptr(p, dirs[i]);
		struct txn t;

		txn_init(&t, &pg);
		rc = txn_begin(&t);
		if (rc == 0)
			rc = txn_end(&t, dir_rehash(&t, dir));
		if (rc < 0) {
			/* the table is as it was: valid, only not keyed */
			log_err("directory %#llx (%llu entries) stays unkeyed: %s%s",
				(unsigned long long)dirs[i],
				(unsigned long long)dir_count(p, dir), strerror(-rc),
				rc == -ENOSPC ? " (the rehash holds every entry twice "
						"until it commits)" : "");
			r->failed++;
			continue;
		}
		r->rehashed++;
	}
	free(dirs);
	rc = 0;
out:
	pages_fini(&pg);
	return rc;
}
