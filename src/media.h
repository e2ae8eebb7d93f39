/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * media.h -- where the pool lives: a regular file or a devdax device.
 *
 * One small interface so the layers above never ask which: probe the path,
 * give a unit back to the host or kernel ("lend"), take it back ("reclaim").
 */
#ifndef KMEMFS_MEDIA_H
#define KMEMFS_MEDIA_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

enum media_kind {
	MEDIA_FILE = 0,   /* regular pool file; lending = hole punch */
	MEDIA_DEVDAX = 1, /* /dev/daxX.Y owned whole; no lending */
	MEDIA_KMOD = 2,   /* devdax attached to kmemfs.ko: lending = RAM for
			     the kernel (include/kmemfs/uapi.h) */
};

struct media {
	enum media_kind kind;
	char path[4096];
	uint64_t size;       /* bytes usable by the pool */
	int fd;              /* file: kept open to punch holes; else -1 */
	/* long writes and punches of the pool file queue here, one at a
	 * time: the host serialises them on the file's inode lock anyway,
	 * and its waiters spin (media.c) */
	pthread_mutex_t fd_lock;
	bool on_tmpfs;       /* file lives in RAM (tmpfs, /dev/shm) */
	/* devdax details, read with libdaxctl */
	unsigned long align;
	int numa_node;
	unsigned long long phys_start;
	/* kmod: the attached device */
	int kfd;                 /* /dev/kmemfs */
	int dev_fd;              /* the module's file spanning the device */
	uint64_t hot_off, hot_end_off; /* lendable part, device offsets */
	bool reattached;
	uint64_t first_block, nr_blocks; /* its memory blocks (sysfs memoryN) */
	unsigned int detach_timeout; /* s the detach may wait for offlining; 0: no limit */
	bool left_attached;      /* detach failed: still System RAM of kmemfs.ko */
	char open_path[64];      /* what pmemobj opens: /proc/self/fd/N */
	char dax_name[64];       /* daxX.Y, to unbind and bind again */
};

/* media_probe -- find what PATH is; ENOENT if missing */
int media_probe(const char *path, struct media *m);
/* media_open -- open the file descriptor used for lending */
int media_open(struct media *m);
void media_close(struct media *m);
/* media_can_lend -- does this backend give units away? */
bool media_can_lend(const struct media *m);
/* media_lend -- give [off, off+len) of the pool away (hole punch) */
int media_lend(struct media *m, uint64_t off, uint64_t len);
/* media_gives_pages_back -- is a single free page worth handing back? Only
 * on a pool file in RAM, where a hole is memory the host gets back */
bool media_gives_pages_back(const struct media *m);
/* media_release -- hand free pages [off, off+len) back (pool file in RAM) */
int media_release(struct media *m, uint64_t off, uint64_t len);
/* media_reclaim -- make [off, off+len) backed again before it is written */
int media_reclaim(struct media *m, uint64_t off, uint64_t len);
/* media_kmod_available -- is kmemfs.ko loaded? */
bool media_kmod_available(void);
/* media_attach -- unbind devdax, attach it to the module, online its
 * memory; afterwards the pool is opened at m->open_path */
int media_attach(struct media *m);
/* media_detach -- after the pool is closed: give the device back. While the
 * kernel offlines the memory, a line every 10 s says how far it got; after
 * m->detach_timeout s (0: never) the wait is interrupted. SIGINT, SIGTERM and
 * SIGHUP, if the caller catches them, stop it too (left_attached) */
void media_detach(struct media *m);
/* media_lendable -- may the unit at pool offset OFF be lent? */
bool media_lendable(const struct media *m, uint64_t off, uint64_t len);
/* media_lent_by_kernel -- after a reattach: is the unit at OFF lent? */
int media_query_lent(struct media *m, uint64_t *bitmap, uint64_t bits);

/* media_writes_by_fd -- are new pages written with pwrite (pool file)? */
bool media_writes_by_fd(const struct media *m);
/* media_fd_lock / media_fd_unlock -- around a write of LEN bytes into m->fd
 * made by the caller (a splice) rather than by media_pwrite; pass what
 * media_fd_lock returned (did it lock?) to media_fd_unlock */
bool media_fd_lock(struct media *m, uint64_t len);
void media_fd_unlock(struct media *m, bool locked);
/* media_pwrite -- write LEN bytes at pool offset OFF through the file */
int media_pwrite(struct media *m, uint64_t off, const void *buf, size_t len);
/* media_zero -- make [off, off+len) of the file zeroes, backed */
int media_zero(struct media *m, uint64_t off, uint64_t len);

/* media_needs_bounce -- must data leave the mapping by a copy (the kernel
 * cannot pin the module's PFN-mapped pages for /dev/fuse)? */
static inline bool media_needs_bounce(const struct media *m)
{
	return m->kind == MEDIA_KMOD;
}

/* media_describe -- one line for -d output */
void media_describe(const struct media *m, char *buf, size_t len);

#endif
