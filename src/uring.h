/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uring.h -- FUSE over io_uring (Linux 6.14+, fuse.enable_uring=1).
 *
 * The kernel hands each request to a ring entry of the queue of the CPU
 * the caller runs on, and the daemon answers it and asks for the next one
 * in one io_uring_enter: one system call per request instead of a read and
 * a writev, and the request is served on the caller's CPU. FORGETs and
 * INTERRUPTs still come through /dev/fuse, so loop.c's workers stay.
 */
#ifndef KMEMFS_URING_H
#define KMEMFS_URING_H

#include <stdbool.h>

struct fuse_session;
struct uring;

/*
 * uring_new -- set up the rings (before INIT is answered: the kernel holds
 * every request once we have said yes, until all queues are registered) for
 * PER_QUEUE entries per CPU queue, each served by its own thread. NULL when
 * the machine cannot (no io_uring, no memory); the reason is logged at
 * debug level and the session keeps /dev/fuse.
 */
struct uring *uring_new(struct fuse_session *se, unsigned per_queue);

/*
 * uring_stop -- stop the ring threads (each finishes the request it is
 * in) and free the rings. After the loop ended and before the filesystem
 * is torn down.
 */
void uring_stop(struct uring *u);

#endif
