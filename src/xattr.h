/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * xattr.h -- extended attributes of one inode, kept as one packed object
 * that is rewritten whole on change (attributes are small and rare).
 */
#ifndef KMEMFS_XATTR_H
#define KMEMFS_XATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "format.h"

struct kmfs_pool;
struct txn;

#define XATTR_SET_CREATE 1
#define XATTR_SET_REPLACE 2

/* xattr_set -- VALUE NULL removes; caller in txn */
int xattr_set(struct txn *t, struct kmfs_inode *ino, const char *name,
	      const void *value, size_t size, int flags);
/* xattr_get -- length, or -ENODATA/-ERANGE; size 0 asks for the length */
ssize_t xattr_get(const struct kmfs_pool *p, const struct kmfs_inode *ino,
		  const char *name, void *value, size_t size);
/* xattr_list -- the names, trusted.* only if TRUSTED(ARG) (see fs_listxattr) */
ssize_t xattr_list(const struct kmfs_pool *p, const struct kmfs_inode *ino,
		   char *list, size_t size, bool (*trusted)(void *arg), void *arg);
/* xattr_destroy -- free all; caller in txn */
int xattr_destroy(struct txn *t, struct kmfs_inode *ino);
/* xattr_valid_name -- namespaces kmemfs stores */
int xattr_check_name(const char *name);

#endif
