// SPDX-License-Identifier: BSD-3-Clause
/*
 * media.c -- file and devdax backends behind one small interface.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>


#include <daxctl/libdaxctl.h>
#include <sys/ioctl.h>

#include "kmemfs/uapi.h"
#include "log.h"

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
	m->kfd = -1;
	m->dev_fd = -1;
	m->numa_node = -1;
	if (strlen(path) >= sizeof(m->path))
		return -ENAMETOOLONG;
	strcpy(m->path, path);
	if (stat(path, &st) != 0) {
		int err = -errno;
		const char *base = strrchr(path, '/');
		/* a devdax device left attached to kmemfs.ko has no /dev node */
		base = base ? base + 1 : path;
		if (err == -ENOENT && !strncmp(path, "/dev/dax", 8) &&
		    probe_devdax(path, m) == 0) {
			m->kind = MEDIA_DEVDAX;
			if (strlen(base) < sizeof(m->dax_name))
				memcpy(m->dax_name, base, strlen(base) + 1);
			return 0;
		}
		return err;
	}
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
	return (m->kind == MEDIA_FILE && m->fd >= 0) || m->kind == MEDIA_KMOD;
}

bool media_lendable(const struct media *m, uint64_t off, uint64_t len)
{
	if (m->kind == MEDIA_KMOD)
		return off >= m->hot_off && off + len <= m->hot_end_off;
	return media_can_lend(m);
}

/* ---- kmemfs.ko: the device as RAM the kernel can borrow ---------------- */

bool media_kmod_available(void)
{
	return access("/dev/" KMEMFS_DEV_NAME, F_OK) == 0;
}

static int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static bool sysfs_has(const char *path, const char *want)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return strstr(buf, want) != NULL;
}

/* Online the hot-added blocks as movable, so the kernel can give them back. */
static void online_blocks(uint64_t first, uint64_t n)
{
	char path[128];

	for (uint64_t b = first; b < first + n; b++) {
		snprintf(path, sizeof(path), "/sys/devices/system/memory/memory%llu/state",
			 (unsigned long long)b);
		if (sysfs_has(path, "online"))
			continue;
		if (sysfs_write(path, "online_movable") < 0)
			log_err("memory block %llu: cannot online: %s (its units stay unlent)",
				(unsigned long long)b, strerror(errno));
	}
}

int media_attach(struct media *m)
{
	struct kmemfs_attach a = {
		.version = KMEMFS_UAPI_VERSION, .phys_start = m->phys_start,
		.size = m->size, .nid = m->numa_node, .unit_size = KMEMFS_UNIT_SIZE,
	};
	char real[PATH_MAX];
	const char *base;
	bool unbound = false;
	int rc;

	if (!m->dax_name[0]) {
		base = strrchr(realpath(m->path, real) ? real : m->path, '/');
		base = base ? base + 1 : m->path;
		if (strlen(base) >= sizeof(m->dax_name))
			return -ENAMETOOLONG;
		memcpy(m->dax_name, base, strlen(base) + 1);
	}
	if (sysfs_write("/sys/bus/dax/drivers/device_dax/unbind", m->dax_name) == 0)
		unbound = true;
	m->kfd = open("/dev/" KMEMFS_DEV_NAME, O_RDWR | O_CLOEXEC);
	if (m->kfd < 0) {
		rc = -errno;
		log_err("/dev/%s: %s", KMEMFS_DEV_NAME, strerror(errno));
		goto out_rebind;
	}
	if (ioctl(m->kfd, KMEMFS_IOC_ATTACH, &a) != 0) {
		bool vmem = false;
		DIR *d;

		rc = -errno;
		/* EEXIST: the online-page callback is held (uapi.h); name
		 * virtio-mem when a probed device of it is the holder */
		if (rc == -EEXIST && (d = opendir("/sys/bus/virtio/drivers/virtio_mem"))) {
			struct dirent *e;
			while ((e = readdir(d)))
				vmem |= !strncmp(e->d_name, "virtio", 6);
			closedir(d);
		}
		if (rc == -EEXIST)
			log_err("%s: kmemfs.ko cannot attach the device: the online-page"
				" callback is taken by %s (only one driver can hold it)",
				m->path, vmem ? "virtio-mem" : "another driver (a balloon?)");
		else
			log_err("%s: kmemfs.ko cannot attach the device: %s%s", m->path,
				strerror(-rc), rc == -EBUSY ?
				" (the range is already System RAM, another driver owns it,"
				" or kmemfs.ko serves another device; see dmesg)" : "");
		close(m->kfd);
		m->kfd = -1;
		goto out_rebind;
	}
	m->dev_fd = a.fd;
	m->hot_off = a.hot_start - m->phys_start;
	m->hot_end_off = a.hot_end - m->phys_start;
	m->reattached = a.reattached;
	m->kind = MEDIA_KMOD;
	online_blocks(a.first_block, a.nr_blocks);
	snprintf(m->open_path, sizeof(m->open_path), "/proc/self/fd/%d", a.fd);
	return 0;
out_rebind:
	if (unbound)
		sysfs_write("/sys/bus/dax/drivers/device_dax/bind", m->dax_name);
	return rc;
}

void media_detach(struct media *m)
{
	struct kmemfs_detach d = { .phys_start = m->phys_start, .size = m->size };

	if (m->kind != MEDIA_KMOD)
		return;
	if (m->dev_fd >= 0)
		close(m->dev_fd);
	m->dev_fd = -1;
	if (ioctl(m->kfd, KMEMFS_IOC_DETACH, &d) != 0) {
		m->left_attached = true;
		log_err("%s: still attached to kmemfs.ko as System RAM: %s: the kernel"
			" could not take the memory offline (pages it uses there cannot"
			" be moved, or a signal stopped the wait; see dmesg). File data is"
			" safe; mount again to use it, unmount again to retry the detach",
			m->path, strerror(errno));
	} else if (sysfs_write("/sys/bus/dax/drivers/device_dax/bind", m->dax_name) < 0) {
		log_err("%s: detached, but binding %s to device_dax failed: %s",
			m->path, m->dax_name, strerror(errno));
	}
	close(m->kfd);
	m->kfd = -1;
	m->kind = MEDIA_DEVDAX;
}

int media_query_lent(struct media *m, uint64_t *bitmap, uint64_t bits)
{
	struct kmemfs_query q = {
		.phys_start = m->phys_start, .bitmap_addr = (uintptr_t)bitmap,
		.bitmap_bits = bits,
	};

	if (m->kind != MEDIA_KMOD)
		return -EOPNOTSUPP;
	if (ioctl(m->kfd, KMEMFS_IOC_QUERY, &q) != 0)
		return -errno;
	return (int)q.nr_units;
}

static int kmod_range(struct media *m, unsigned long cmd, uint64_t off,
		      uint64_t len)
{
	struct kmemfs_range r = {
		.phys_start = m->phys_start, .dev_offset = off, .len = len,
	};

	if (!media_lendable(m, off, len))
		return -EINVAL;
	if (ioctl(m->kfd, cmd, &r) != 0)
		return -errno;
	return r.done == len ? 0 : -EAGAIN;
}

int media_lend(struct media *m, uint64_t off, uint64_t len)
{
	if (m->kind == MEDIA_KMOD)
		return kmod_range(m, KMEMFS_IOC_LEND, off, len);
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
	if (m->kind == MEDIA_KMOD) {
		int rc = kmod_range(m, KMEMFS_IOC_RECLAIM, off, len);
		/* the kernel would not give it back: the write gets ENOSPC */
		return rc < 0 ? -ENOSPC : 0;
	}
	/* the file backend needs nothing: new pages are written with pwrite,
	 * which allocates them (or fails with ENOSPC on a full tmpfs) */
	(void)off;
	(void)len;
	return 0;
}

bool media_writes_by_fd(const struct media *m)
{
	return m->kind == MEDIA_FILE && m->fd >= 0;
}

int media_pwrite(struct media *m, uint64_t off, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(m->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int media_zero(struct media *m, uint64_t off, uint64_t len)
{
	/* drop whatever the pages held, then back them with zeroes */
	if (fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) != 0)
		return -errno;
	if (fallocate(m->fd, 0, (off_t)off, (off_t)len) != 0 && errno != EOPNOTSUPP)
		return -errno;
	/* on a disk the new extents are metadata of the host filesystem */
	if (!m->on_tmpfs && fdatasync(m->fd) != 0)
		return -errno;
	return 0;
}

void media_describe(const struct media *m, char *buf, size_t len)
{
	if (m->kind == MEDIA_KMOD)
		snprintf(buf, len,
			 "devdax %s attached to kmemfs.ko: %llu MiB, phys 0x%llx, node %d, "
			 "lendable 0x%llx-0x%llx%s", m->path,
			 (unsigned long long)(m->size >> 20), m->phys_start, m->numa_node,
			 (unsigned long long)m->hot_off, (unsigned long long)m->hot_end_off,
			 m->reattached ? " (reattached)" : "");
	else if (m->kind == MEDIA_DEVDAX)
		snprintf(buf, len,
			 "devdax %s: %llu MiB, align %lu KiB, phys 0x%llx, node %d",
			 m->path, (unsigned long long)(m->size >> 20),
			 m->align >> 10, m->phys_start, m->numa_node);
	else
		snprintf(buf, len, "pool file %s: %llu MiB%s", m->path,
			 (unsigned long long)(m->size >> 20),
			 m->on_tmpfs ? " (tmpfs: units given back to the host)" : "");
}
