/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * check.h -- verify (and repair) a pool offline: every object reference,
 * the directory tree, link counts, extents against the allocator, page
 * reference counts and lent units. Used by fsck.kmemfs and, read-only,
 * by every mount.
 */
#ifndef KMEMFS_CHECK_H
#define KMEMFS_CHECK_H

#include <stdbool.h>
#include <stdint.h>

struct kmfs_pool;

struct check_opts {
	bool repair;   /* fix what can be fixed safely */
	bool verbose;  /* print every finding (else the first few) */
	unsigned max_print;
	bool quiet;    /* print nothing; the first finding is in result.first */
};

struct check_result {
	uint64_t inodes, dirs, files, extents, pages_used, objects;
	uint64_t errors;     /* found */
	uint64_t fixed;      /* of which repaired */
	uint64_t orphans;    /* unlinked inodes awaiting free (not errors) */
	uint64_t unkeyed;    /* directories hashed with FNV, format 1 (not errors) */
	bool fatal;          /* structure too broken to go on */
	bool unsettled;      /* repair: still changing; check again after a reopen */
	char first[256];     /* the first finding */
};

/* check_pool -- returns 0 when it ran (see result), -errno if it could not */
int check_pool(struct kmfs_pool *p, const struct check_opts *o,
	       struct check_result *r);

#endif
