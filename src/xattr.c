// SPDX-License-Identifier: BSD-3-Clause
/* xattr.c -- packed extended attributes, rewritten whole on change. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "pages.h"
#include "txn.h"
#include "xattr.h"

static size_t ent_size(size_t nlen, size_t vlen)
{
	return (sizeof(struct kmfs_xattr_ent) + nlen + vlen + 7) & ~(size_t)7;
}

int xattr_check_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return -EINVAL;
	if (len > KMFS_XATTR_NAME_MAX)
		return -ERANGE;
	/* a namespace prefix alone names nothing (the kernel's own answer) */
	if (!strcmp(name, "user.") || !strcmp(name, "trusted.") ||
	    !strcmp(name, "security."))
		return -EINVAL;
	if (!strncmp(name, "user.", 5) || !strncmp(name, "trusted.", 8) ||
	    !strncmp(name, "security.", 9) ||
	    !strcmp(name, "system.posix_acl_access") ||
	    !strcmp(name, "system.posix_acl_default"))
		return 0;
	return -EOPNOTSUPP;
}

/* Find NAME; returns its entry or NULL. */
static const struct kmfs_xattr_ent *find(const struct kmfs_xattrs *x,
					 const char *name, size_t nlen)
{
	size_t pos = 0;

	if (!x)
		return NULL;
	for (uint32_t i = 0; i < x->count && pos < x->used; i++) {
		const struct kmfs_xattr_ent *e = (const void *)(x->data + pos);
		if (e->name_len == nlen && !memcmp(e + 1, name, nlen))
			return e;
		pos += ent_size(e->name_len, e->value_len);
	}
	return NULL;
}

ssize_t xattr_get(const struct kmfs_pool *p, const struct kmfs_inode *ino,
		  const char *name, void *value, size_t size)
{
	const struct kmfs_xattrs *x = pool_ptr(p, ino->xattr_off);
	const struct kmfs_xattr_ent *e = find(x, name, strlen(name));

	if (!e)
		return -ENODATA;
	if (size == 0)
		return e->value_len;
	if (size < e->value_len)
		return -ERANGE;
	memcpy(value, (const char *)(e + 1) + e->name_len, e->value_len);
	return e->value_len;
}

ssize_t xattr_list(const struct kmfs_pool *p, const struct kmfs_inode *ino,
		   char *list, size_t size, bool (*trusted)(void *arg), void *arg)
{
	const struct kmfs_xattrs *x = pool_ptr(p, ino->xattr_off);
	size_t pos = 0, total = 0;
	int show_trusted = -1; /* not asked yet */

	for (uint32_t i = 0; x && i < x->count; i++) {
		const struct kmfs_xattr_ent *e = (const void *)(x->data + pos);
		pos += ent_size(e->name_len, e->value_len);
		/* as in kernel filesystems, trusted.* is listed only to the
		 * privileged */
		if (e->name_len >= 8 && !memcmp(e + 1, "trusted.", 8)) {
			if (show_trusted < 0)
				show_trusted = trusted && trusted(arg);
			if (!show_trusted)
				continue;
		}
		if (size) {
			if (total + e->name_len + 1 > size)
				return -ERANGE;
			memcpy(list + total, e + 1, e->name_len);
			list[total + e->name_len] = '\0';
		}
		total += e->name_len + 1u;
	}
	return (ssize_t)total;
}

int xattr_set(struct txn *t, struct kmfs_inode *ino, const char *name,
	      const void *value, size_t size, int flags)
{
	struct kmfs_pool *p = t->pages->pool;
	const struct kmfs_xattrs *x = pool_ptr(p, ino->xattr_off);
	size_t nlen = strlen(name), used = 0, pos = 0;
	const struct kmfs_xattr_ent *old = find(x, name, nlen);
	struct kmfs_xattrs *nx;
	uint32_t count = 0;
	uint64_t off = 0;
	int rc;

	if (size > KMFS_XATTR_SIZE_MAX)
		return -E2BIG;
	if (old && (flags & XATTR_SET_CREATE))
		return -EEXIST;
	if (!old && (!value || (flags & XATTR_SET_REPLACE)))
		return -ENODATA;
	used = x ? x->used : 0;
	if (old)
		used -= ent_size(old->name_len, old->value_len);
	if (value)
		used += ent_size(nlen, size);
	if (used > KMFS_XATTR_LIST_MAX)
		return -ENOSPC;
	if (used) {
		off = tx_alloc(sizeof(*nx) + used, KMFS_T_XATTRS, false);
		if (!off)
			return -ENOSPC;
		nx = pool_ptr(p, off);
		used = 0;
		for (uint32_t i = 0; x && i < x->count; i++) {
			const struct kmfs_xattr_ent *e = (const void *)(x->data + pos);
			size_t es = ent_size(e->name_len, e->value_len);
			if (e != old) {
				memcpy(nx->data + used, e, es);
				used += es;
				count++;
			}
			pos += es;
		}
		if (value) {
			struct kmfs_xattr_ent *e = (void *)(nx->data + used);
			size_t es = ent_size(nlen, size);
			memset(e, 0, es);
			e->name_len = (uint8_t)nlen;
			e->value_len = (uint32_t)size;
			memcpy(e + 1, name, nlen);
			memcpy((char *)(e + 1) + nlen, value, size);
			used += es;
			count++;
		}
		nx->count = count;
		nx->used = (uint32_t)used;
	}
	rc = tx_free(ino->xattr_off);
	if (rc == 0)
		rc = TXADD(ino, xattr_off);
	if (rc == 0)
		ino->xattr_off = off;
	return rc;
}

int xattr_destroy(struct txn *t, struct kmfs_inode *ino)
{
	int rc;

	if (!ino->xattr_off)
		return 0;
	rc = tx_free(ino->xattr_off);
	if (rc == 0)
		rc = TXADD(ino, xattr_off);
	if (rc == 0)
		ino->xattr_off = 0;
	return rc;
}
