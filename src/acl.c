// SPDX-License-Identifier: BSD-3-Clause
/* acl.c -- POSIX ACL xattrs kept in step with the mode bits. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "acl.h"
#include "pool.h"
#include "pages.h"
#include "txn.h"
#include "xattr.h"

#define ACL_ACCESS "system.posix_acl_access"
#define ACL_DEFAULT "system.posix_acl_default"
#define ACL_VERSION 2
#define TAG_USER_OBJ 0x01
#define TAG_USER 0x02
#define TAG_GROUP_OBJ 0x04
#define TAG_GROUP 0x08
#define TAG_MASK 0x10
#define TAG_OTHER 0x20
#define ACL_MAX_ENTRIES 1024

struct acl_ent {
	uint16_t tag;
	uint16_t perm;
	uint32_t id;
};

bool acl_is_acl_name(const char *name)
{
	return !strcmp(name, ACL_ACCESS) || !strcmp(name, ACL_DEFAULT);
}

bool acl_is_access_name(const char *name)
{
	return !strcmp(name, ACL_ACCESS);
}

/* Check an xattr-format ACL; returns its entry count or -EINVAL. */
static int acl_parse(const void *value, size_t size, struct acl_ent **ents)
{
	const uint32_t *ver = value;
	unsigned seen = 0;
	size_t n;

	if (size < 4 || (size - 4) % sizeof(struct acl_ent) || *ver != ACL_VERSION)
		return -EINVAL;
	n = (size - 4) / sizeof(struct acl_ent);
	if (n > ACL_MAX_ENTRIES)
		return -EINVAL;
	*ents = (struct acl_ent *)((char *)value + 4);
	for (size_t i = 0; i < n; i++) {
		uint16_t tag = (*ents)[i].tag;
		if ((*ents)[i].perm & ~7u)
			return -EINVAL;
		switch (tag) {
		case TAG_USER_OBJ: case TAG_GROUP_OBJ: case TAG_MASK: case TAG_OTHER:
			if (seen & tag)
				return -EINVAL;
			seen |= tag;
			break;
		case TAG_USER: case TAG_GROUP:
			seen |= tag;
			break;
		default:
			return -EINVAL;
		}
	}
	if ((seen & (TAG_USER_OBJ | TAG_GROUP_OBJ | TAG_OTHER)) !=
	    (TAG_USER_OBJ | TAG_GROUP_OBJ | TAG_OTHER))
		return -EINVAL;
	if ((seen & (TAG_USER | TAG_GROUP)) && !(seen & TAG_MASK))
		return -EINVAL;
	return (int)n;
}

/* Mode bits an ACL implies; true when the ACL says no more than them. */
static bool acl_mode(const struct acl_ent *e, int n, mode_t *mode)
{
	mode_t m = *mode & ~(mode_t)0777;
	bool equiv = true;
	int group = 0, mask = -1;

	for (int i = 0; i < n; i++) {
		switch (e[i].tag) {
		case TAG_USER_OBJ: m |= (mode_t)e[i].perm << 6; break;
		case TAG_GROUP_OBJ: group = e[i].perm; break;
		case TAG_MASK: mask = e[i].perm; equiv = false; break;
		case TAG_OTHER: m |= e[i].perm; break;
		default: equiv = false;
		}
	}
	m |= (mode_t)(mask >= 0 ? mask : group) << 3;
	*mode = m;
	return equiv;
}

int acl_set(struct txn *t, struct kmfs_inode *ino, const char *name,
	    const void *value, size_t size, int flags, bool kill_sgid)
{
	/* the value arrives unaligned from the request: parse an aligned copy */
	uint32_t aligned[1 + ACL_MAX_ENTRIES * 2];
	struct acl_ent *e;
	int n, rc;

	if (!strcmp(name, ACL_DEFAULT) && !S_ISDIR(ino->mode))
		return value ? -EACCES : 0;
	if (!value) {
		/* removing an ACL there is none of succeeds, as on any kernel fs
		 * (a minimal ACL is kept in the mode alone) */
		int rc = xattr_set(t, ino, name, NULL, 0, flags);
		return rc == -ENODATA ? 0 : rc;
	}
	if (size > sizeof(aligned))
		return -EINVAL;
	memcpy(aligned, value, size);
	n = acl_parse(aligned, size, &e);
	if (n < 0)
		return n;
	if (!strcmp(name, ACL_ACCESS)) {
		mode_t mode = ino->mode;
		bool equiv = acl_mode(e, n, &mode);
		if (kill_sgid)
			mode &= ~(mode_t)S_ISGID;
		rc = TXADD(ino, mode);
		if (rc < 0)
			return rc;
		inode_set_mode(ino, (uint32_t)mode);
		if (equiv) {
			/* the mode says it all: keep no ACL */
			rc = xattr_set(t, ino, name, NULL, 0, 0);
			return rc == -ENODATA ? 0 : rc;
		}
	}
	return xattr_set(t, ino, name, aligned, size, flags);
}

int acl_chmod(struct txn *t, struct kmfs_inode *ino)
{
	struct kmfs_pool *p = t->pages->pool;
	uint32_t buf[1 + ACL_MAX_ENTRIES * 2];
	ssize_t len = xattr_get(p, ino, ACL_ACCESS, buf, sizeof(buf));
	struct acl_ent *e;
	bool has_mask = false;
	int n;

	if (len < 0)
		return 0; /* no ACL: the mode is all there is */
	n = acl_parse(buf, (size_t)len, &e);
	if (n < 0)
		return 0;
	for (int i = 0; i < n; i++)
		has_mask |= e[i].tag == TAG_MASK;
	for (int i = 0; i < n; i++) {
		if (e[i].tag == TAG_USER_OBJ)
			e[i].perm = (ino->mode >> 6) & 7;
		else if (e[i].tag == TAG_MASK ||
			 (e[i].tag == TAG_GROUP_OBJ && !has_mask))
			e[i].perm = (ino->mode >> 3) & 7;
		else if (e[i].tag == TAG_OTHER)
			e[i].perm = ino->mode & 7;
	}
	return xattr_set(t, ino, ACL_ACCESS, buf, (size_t)len, 0);
}

int acl_inherit(struct txn *t, const struct kmfs_inode *dir,
		struct kmfs_inode *ino, mode_t umask)
{
	struct kmfs_pool *p = t->pages->pool;
	uint32_t buf[1 + ACL_MAX_ENTRIES * 2];
	ssize_t len = xattr_get(p, dir, ACL_DEFAULT, buf, sizeof(buf));
	struct acl_ent *e;
	mode_t mode = ino->mode;
	bool has_mask = false;
	int n, rc;

	if (S_ISLNK(ino->mode))
		return 0;
	if (len < 0 || (n = acl_parse(buf, (size_t)len, &e)) < 0) {
		ino->mode &= ~(uint32_t)(umask & 0777);
		return 0;
	}
	if (S_ISDIR(ino->mode)) {
		rc = xattr_set(t, ino, ACL_DEFAULT, buf, (size_t)len, 0);
		if (rc < 0)
			return rc;
	}
	/* the new access ACL is the default one cut down by the mode */
	for (int i = 0; i < n; i++)
		has_mask |= e[i].tag == TAG_MASK;
	for (int i = 0; i < n; i++) {
		switch (e[i].tag) {
		case TAG_USER_OBJ: e[i].perm &= (mode >> 6) & 7; break;
		case TAG_OTHER: e[i].perm &= mode & 7; break;
		case TAG_MASK: e[i].perm &= (mode >> 3) & 7; break;
		case TAG_GROUP_OBJ:
			if (!has_mask)
				e[i].perm &= (mode >> 3) & 7;
			break;
		}
	}
	bool equiv = acl_mode(e, n, &mode);
	ino->mode = (uint32_t)mode;
	if (equiv)
		return 0;
	return xattr_set(t, ino, ACL_ACCESS, buf, (size_t)len, 0);
}
