/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * media.h -- where the pool lives: a regular file or a devdax device.
 *
 * One small interface so the layers above never ask which: probe the path,
 * give a unit back to the host or kernel ("lend"), take it back ("reclaim").
 */
#ifndef KMEMFS_MEDIA_H
#define KMEMFS_MEDIA_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

enum media_kind {
	MEDIA_FILE = 0,   /* regular pool file; lending = hole punch */
	MEDIA_DEVDAX = 1, /* /dev/daxX.Y owned whole; no lending */
};

struct media {
	enum media_kind kind;
	char path[4096];
	uint64_t size;       /* bytes usable by the pool */
	int fd;              /* file: kept open to punch holes; else -1 */
	char *map;           /* the pool's mapping, once open */
	bool on_tmpfs;       /* file lives in RAM (tmpfs, /dev/shm) */
	/* devdax details, read with libdaxctl */
	unsigned long align;
	int numa_node;
	unsigned long long phys_start;
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
/* media_reclaim -- make [off, off+len) backed again before it is written */
int media_reclaim(struct media *m, uint64_t off, uint64_t len);
/* media_describe -- one line for -d output */
void media_describe(const struct media *m, char *buf, size_t len);

#endif
