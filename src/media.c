// SPDX-License-Identifier: BSD-3-Clause
/*
 * media.c -- file and devdax backends behind one small interface.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <time.h>
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

/*
 * Below this, a write holds the inode lock for a few microseconds, and the
 * host's spinning is cheaper than going to sleep: only long ones queue here.
 */
#define FD_LOCK_MIN (64u << 10)

/*
 * The host's inode lock makes a second writer spin for as long as the first
 * copies (a third of the daemon's CPU with two sequential writers): waiting
 * here spins briefly, then sleeps and leaves the CPU to the copy.
 */
static void init_fd_lock(struct media *m)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&m->fd_lock, &a);
	pthread_mutexattr_destroy(&a);
}

bool media_fd_lock(struct media *m, uint64_t len)
{
	if (len < FD_LOCK_MIN)
		return false;
	pthread_mutex_lock(&m->fd_lock);
	return true;
}

void media_fd_unlock(struct media *m, bool locked)
{
	if (locked)
		pthread_mutex_unlock(&m->fd_lock);
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
	init_fd_lock(m);
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
	/* kmemfs.ko lends whole 4 MiB of its hot-added memory blocks */
	if (m->kind == MEDIA_KMOD)
		return off >= m->hot_off && off + len <= m->hot_end_off &&
		       (off - m->hot_off) % KMEMFS_UNIT_SIZE == 0;
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
	m->first_block = a.first_block;
	m->nr_blocks = a.nr_blocks;
	m->kind = MEDIA_KMOD;
	online_blocks(a.first_block, a.nr_blocks);
	snprintf(m->open_path, sizeof(m->open_path), "/proc/self/fd/%d", a.fd);
	return 0;
out_rebind:
	if (unbound)
		sysfs_write("/sys/bus/dax/drivers/device_dax/bind", m->dax_name);
	return rc;
}

/*
 * The detach watcher: a thread that exists only while the DETACH ioctl runs
 * (offline_and_remove_memory() on 6.1 retries migration until a signal is
 * pending). Every DETACH_REPORT_S it says how many of the device's memory
 * blocks are still online; once m->detach_timeout passes it sends
 * DETACH_SIGNAL to the thread in the ioctl, whose handler only notes it, so
 * the kernel stops offlining and the ioctl fails (EBUSY). It resends once a
 * second until the ioctl returns, so a signal that arrived just before the
 * thread entered the kernel cannot be lost. Every signal is blocked in the
 * watcher: SIGINT/SIGTERM/SIGHUP reach the detaching thread, as before.
 */
#define DETACH_REPORT_S 10
#define DETACH_SIGNAL SIGUSR1

struct detach_watch {
	const struct media *m;
	pthread_t target;       /* the thread in the DETACH ioctl */
	struct timespec start;  /* CLOCK_MONOTONIC, just before the ioctl */
	pthread_mutex_t lock;   /* protects done */
	pthread_cond_t cond;    /* signalled when done is set */
	bool done;              /* the ioctl returned */
	bool gave_up;           /* watcher only; read after pthread_join */
};

static volatile sig_atomic_t detach_interrupted;

static void note_detach_signal(int sig)
{
	(void)sig;
	detach_interrupted = 1; /* the signal's only job: end the ioctl */
}

/* blocks_online -- how many of the device's memory blocks are not offline */
static uint64_t blocks_online(const struct media *m)
{
	char path[128], buf[32];
	uint64_t b, n = 0;

	for (b = m->first_block; b < m->first_block + m->nr_blocks; b++) {
		ssize_t len;
		int fd;

		snprintf(path, sizeof(path), "/sys/devices/system/memory/memory%llu/state",
			 (unsigned long long)b);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* removed: not online */
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[len > 0 ? len : 0] = 0;
		/* "online", or "going-offline" for the block being offlined */
		n += len > 0 && strncmp(buf, "offline", 7) != 0;
	}
	return n;
}

static struct timespec ts_add(struct timespec t, unsigned int s)
{
	t.tv_sec += s;
	return t;
}

/* detach_watcher -- the watcher thread; see above */
static void *detach_watcher(void *arg)
{
	struct detach_watch *w = arg;
	unsigned int limit = w->m->detach_timeout, report = DETACH_REPORT_S, at;

	pthread_mutex_lock(&w->lock);
	for (at = limit && limit < report ? limit : report; !w->done;) {
		struct timespec deadline = ts_add(w->start, at);

		if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) != ETIMEDOUT)
			continue; /* done, or a spurious wakeup */
		if (limit && at >= limit) {
			w->gave_up = true;
			pthread_kill(w->target, DETACH_SIGNAL);
			at++; /* again in a second if the ioctl is still there */
			continue;
		}
		log_info("%s: waiting for the kernel to move its pages off the device"
			 " (%u s): %llu of %llu memory blocks still online; SIGTERM or"
			 " Ctrl-C stops the wait and leaves the device attached as System"
			 " RAM", w->m->path, at, (unsigned long long)blocks_online(w->m),
			 (unsigned long long)w->m->nr_blocks);
		report += DETACH_REPORT_S;
		at = limit && limit < report ? limit : report;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/*
 * detach_watched -- the DETACH ioctl with a watcher thread beside it; 0 or
 * -errno. *gave_up: the watcher interrupted it (detach_timeout).
 */
static int detach_watched(struct media *m, struct kmemfs_detach *d, bool *gave_up)
{
	struct detach_watch w = { .m = m, .target = pthread_self() };
	struct sigaction sa = { .sa_handler = note_detach_signal };
	pthread_condattr_t ca;
	sigset_t all, old;
	pthread_t tid;
	int rc, err;

	*gave_up = false;
	/* no SA_RESTART; left installed: a resent signal may still be pending */
	sigemptyset(&sa.sa_mask);
	sigaction(DETACH_SIGNAL, &sa, NULL);
	pthread_mutex_init(&w.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cond, &ca);
	pthread_condattr_destroy(&ca);
	clock_gettime(CLOCK_MONOTONIC, &w.start);

	/* the watcher inherits a mask with every signal blocked */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&tid, NULL, detach_watcher, &w);
	sigdelset(&old, DETACH_SIGNAL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		log_err("%s: no detach watcher (%s): no progress reports, no time limit",
			m->path, strerror(err));

	rc = ioctl(m->kfd, KMEMFS_IOC_DETACH, d) != 0 ? -errno : 0;

	if (!err) {
		pthread_mutex_lock(&w.lock);
		w.done = true;
		pthread_cond_signal(&w.cond);
		pthread_mutex_unlock(&w.lock);
		pthread_join(tid, NULL);
		*gave_up = w.gave_up;
	}
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return rc;
}

void media_detach(struct media *m)
{
	struct kmemfs_detach d = { .phys_start = m->phys_start, .size = m->size };
	bool gave_up;
	int rc;

	if (m->kind != MEDIA_KMOD)
		return;
	if (m->dev_fd >= 0)
		close(m->dev_fd);
	m->dev_fd = -1;
	rc = detach_watched(m, &d, &gave_up);
	if (rc) {
		m->left_attached = true;
		if (gave_up)
			log_err("%s: gave up after %u s (-o detach_timeout=%u): the kernel"
				" did not take the device's memory offline in time",
				m->path, m->detach_timeout, m->detach_timeout);
		log_err("%s: still attached to kmemfs.ko as System RAM: %s: the kernel"
			" could not take the memory offline (pages it uses there cannot"
			" be moved, or a signal stopped the wait; see dmesg). File data is"
			" safe; mount again to use it, unmount again to retry the detach",
			m->path, strerror(-rc));
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

/* fd_fallocate -- fallocate(MODE) of the pool file, queued as writes are */
static int fd_fallocate(struct media *m, int mode, uint64_t off, uint64_t len)
{
	bool locked = media_fd_lock(m, len);
	int rc;

	/* tmpfs's fallocate stops with EINTR at a signal (the daemon's own
	 * at shutdown): what it did is kept, and doing it again is the same */
	do
		rc = fallocate(m->fd, mode, (off_t)off, (off_t)len) == 0 ? 0 : -errno;
	while (rc == -EINTR);
	media_fd_unlock(m, locked);
	return rc;
}

/* punch_hole -- free [off, off+len) of the pool file; it reads as zeroes */
static int punch_hole(struct media *m, uint64_t off, uint64_t len)
{
	return fd_fallocate(m, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
}

int media_lend(struct media *m, uint64_t off, uint64_t len)
{
	if (m->kind == MEDIA_KMOD)
		return kmod_range(m, KMEMFS_IOC_LEND, off, len);
	if (!media_can_lend(m))
		return -EOPNOTSUPP;
	return punch_hole(m, off, len);
}

bool media_gives_pages_back(const struct media *m)
{
	return m->kind == MEDIA_FILE && m->fd >= 0 && m->on_tmpfs;
}

int media_release(struct media *m, uint64_t off, uint64_t len)
{
	if (!media_gives_pages_back(m))
		return -EOPNOTSUPP;
	return punch_hole(m, off, len);
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
	size_t left = len;
	bool locked = media_fd_lock(m, len);
	int rc = 0;

	while (left) {
		ssize_t n = pwrite(m->fd, p, left, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		p += n;
		off += (uint64_t)n;
		left -= (size_t)n;
	}
	media_fd_unlock(m, locked);
	return rc;
}

int media_zero(struct media *m, uint64_t off, uint64_t len)
{
	/* drop whatever the pages held, then back them with zeroes */
	int rc = punch_hole(m, off, len);

	if (rc < 0)
		return rc;
	rc = fd_fallocate(m, 0, off, len);
	if (rc < 0 && rc != -EOPNOTSUPP)
		return rc;
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
