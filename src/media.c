// SPDX-License-Identifier: BSD-3-Clause
/*
 * media.c -- file and devdax backends behind one small interface.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#include <daxctl/libdaxctl.h>

#include "media.h"

/* Read device details of /dev/daxX.Y with libdaxctl. */
static int probe_devdax(const char *path, struct media *m)
{
	struct daxctl_ctx *ctx;
	struct daxctl_region *region;
	struct daxctl_dev *dev;
	const char *base = strrchr(path, '/');
	char real[PATH_MAX];
	int rc = -ENODEV;

	if (realpath(path, real))
		base = strrchr(real, '/');
	base = base ? base + 1 : path;
	if (daxctl_new(&ctx) != 0)
		return -ENOMEM;
	daxctl_region_foreach(ctx, region) {
		daxctl_dev_foreach(region, dev) {
			const char *name = daxctl_dev_get_devname(dev);
			if (!name || strcmp(name, base) != 0)
				continue;
			m->size = daxctl_dev_get_size(dev);
			m->align = daxctl_dev_get_align(dev);
			m->numa_node = daxctl_dev_get_target_node(dev);
			m->phys_start = daxctl_dev_get_resource(dev);
			rc = m->size ? 0 : -ENODEV;
			goto out;
		}
	}
out:
	daxctl_unref(ctx);
	return rc;
}

/* Is the character device a devdax device? Asks sysfs, not the name. */
static bool is_dax_chardev(const struct stat *st)
{
	char link[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/dev/char/%u:%u/subsystem",
		 major(st->st_rdev), minor(st->st_rdev));
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strstr(target, "/dax") != NULL;
}

int media_probe(const char *path, struct media *m)
{
	struct stat st;
	struct statfs sfs;

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->numa_node = -1;
	if (strlen(path) >= sizeof(m->path))
		return -ENAMETOOLONG;
	strcpy(m->path, path);
	if (stat(path, &st) != 0)
		return -errno;
	if (S_ISCHR(st.st_mode)) {
		if (!is_dax_chardev(&st))
			return -ENODEV;
		m->kind = MEDIA_DEVDAX;
		return probe_devdax(path, m);
	}
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	m->kind = MEDIA_FILE;
	m->size = (uint64_t)st.st_size;
	if (statfs(path, &sfs) == 0)
		m->on_tmpfs = sfs.f_type == TMPFS_MAGIC;
	return 0;
}

int media_open(struct media *m)
{
	if (m->kind != MEDIA_FILE)
		return 0;
	m->fd = open(m->path, O_RDWR | O_CLOEXEC);
	return m->fd < 0 ? -errno : 0;
}

void media_close(struct media *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

bool media_can_lend(const struct media *m)
{
	return m->kind == MEDIA_FILE && m->fd >= 0;
}

int media_lend(struct media *m, uint64_t off, uint64_t len)
{
	if (!media_can_lend(m))
		return -EOPNOTSUPP;
	if (fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) != 0)
		return -errno;
	return 0;
}

/*
 * Back the range with storage again before it is written through the
 * mapping: a store into a hole of a full tmpfs would be SIGBUS, this is
 * ENOSPC.
 */
int media_reclaim(struct media *m, uint64_t off, uint64_t len)
{
	if (!media_can_lend(m))
		return 0;
	if (fallocate(m->fd, 0, (off_t)off, (off_t)len) != 0 && errno != EOPNOTSUPP)
		return -errno;
	/* map the unit now: one call instead of a fault per page on first write */
	if (m->map)
		madvise(m->map + off, len, MADV_POPULATE_WRITE);
	return 0;
}

void media_describe(const struct media *m, char *buf, size_t len)
{
	if (m->kind == MEDIA_DEVDAX)
		snprintf(buf, len,
			 "devdax %s: %llu MiB, align %lu KiB, phys 0x%llx, node %d",
			 m->path, (unsigned long long)(m->size >> 20),
			 m->align >> 10, m->phys_start, m->numa_node);
	else
		snprintf(buf, len, "pool file %s: %llu MiB%s", m->path,
			 (unsigned long long)(m->size >> 20),
			 m->on_tmpfs ? " (tmpfs: units given back to the host)" : "");
}
