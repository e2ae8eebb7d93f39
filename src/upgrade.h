/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upgrade.h -- bring a pool of an older format to this one, offline
 * (fsck.kmemfs --upgrade).
 */
#ifndef KMEMFS_UPGRADE_H
#define KMEMFS_UPGRADE_H

#include <stdbool.h>
#include <stdint.h>

struct kmfs_pool;

struct upgrade_result {
	bool keyed;           /* the pool got its directory key now */
	bool versioned;       /* the pool moved to this format now */
	uint64_t rehashed;    /* directories moved to the keyed hash */
	uint64_t failed;      /* directories left as they were (said why) */
};

/*
 * pool_upgrade -- to this format. From 1.x: a secret directory key (with
 * the version), then every directory still hashed with FNV rehashed with
 * it, one transaction each. A crash in between leaves a sound pool of this
 * format (FNV tables are valid there); a rerun goes on with the rest. From
 * 2.x: the version only (format 3 adds unwritten extents, which 2.x pools
 * have none of). P must have just been checked clean: the
 * tables and entry lists are followed as they are. Returns 0 or -errno
 * (said).
 */
int pool_upgrade(struct kmfs_pool *p, struct upgrade_result *r);

#endif
