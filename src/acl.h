/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * acl.h -- POSIX ACLs in system.posix_acl_{access,default}.
 *
 * The kernel enforces ACLs (FUSE_CAP_POSIX_ACL); the filesystem keeps the
 * mode bits and the access ACL in step and applies a directory's default
 * ACL (or else the umask) to new inodes.
 */
#ifndef KMEMFS_ACL_H
#define KMEMFS_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "format.h"

struct txn;

bool acl_is_acl_name(const char *name);
bool acl_is_access_name(const char *name);
/* acl_set -- store (VALUE NULL: remove) an ACL xattr; caller in txn. An
 * access ACL sets the mode bits it implies, and clears setgid too when
 * KILL_SGID (the caller is outside the file's group: posix_acl_update_mode) */
int acl_set(struct txn *t, struct kmfs_inode *ino, const char *name,
	    const void *value, size_t size, int flags, bool kill_sgid);
/* acl_chmod -- after a mode change, update the access ACL; caller in txn */
int acl_chmod(struct txn *t, struct kmfs_inode *ino);
/* acl_inherit -- default ACL of DIR (or UMASK) applied to new INO */
int acl_inherit(struct txn *t, const struct kmfs_inode *dir,
		struct kmfs_inode *ino, mode_t umask);

#endif
