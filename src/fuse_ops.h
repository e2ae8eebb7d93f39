/* SPDX-License-Identifier: BSD-3-Clause */
/* fuse_ops.h -- the FUSE low-level operations table. */
#ifndef KMEMFS_FUSE_OPS_H
#define KMEMFS_FUSE_OPS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

/* the largest WRITE (and READ) request: 1 MiB, FUSE's default ceiling */
#define KMEMFS_MAX_WRITE (1u << 20)

extern const struct fuse_lowlevel_ops kmemfs_ops;

#endif
