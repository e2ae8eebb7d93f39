/* SPDX-License-Identifier: BSD-3-Clause */
/* fuse_ops.h -- the FUSE low-level operations table. */
#ifndef KMEMFS_FUSE_OPS_H
#define KMEMFS_FUSE_OPS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

extern const struct fuse_lowlevel_ops kmemfs_ops;

#endif
