/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uring.h -- FUSE over io_uring (Linux 6.14+, fuse.enable_uring=1).
 *
 * The kernel hands each request to a ring entry of the queue of the CPU
 * the caller runs on, and the daemon answers it and asks for the next one
 * in one io_uring_enter: one system call per request instead of a read and
 * a writev. FORGETs and INTERRUPTs still come through /dev/fuse, so loop.c's
 * workers stay.
 *
 * A handler may wait on the kernel while the kernel waits on a request
 * queued behind it on the same CPU (the clone ioctl's page-cache
 * invalidation, waiting on a page locked for a READ queued there). loop.c
 * starts another worker when all are blocked; a ring entry registered
 * later takes only requests that arrive after it, so when every entry of a
 * queue has been busy for a tick with none finishing, a monitor registers a
 * spare entry and sends a request from that CPU: answering it, the spare
 * fetches the oldest request queued behind the blocked ones.
 */
#ifndef KMEMFS_URING_H
#define KMEMFS_URING_H

#include <stdbool.h>

struct fuse_session;
struct uring;

/* Does the kernel offer FUSE over io_uring to new mounts? */
bool uring_kernel_offers(void);

/*
 * May this daemon run on every online CPU? A blocked queue is freed by a
 * request sent from its CPU, so a cpuset that keeps the daemon off a CPU
 * its callers use would leave that queue without rescue. Says so when not.
 */
bool uring_cpus_reachable(void);

/*
 * uring_new -- set up the rings (before INIT is answered: the kernel holds
 * every request once we have said yes, until all queues are registered) for
 * PER_QUEUE entries per CPU queue, each served by its own thread, and up to
 * MAX_PER_QUEUE with spares; MOUNTPOINT is where the rescue's request
 * goes. Call it only when uring_kernel_offers(). NULL when the machine
 * cannot (no io_uring, no memory); the reason is logged and the session
 * keeps /dev/fuse.
 */
struct uring *uring_new(struct fuse_session *se, const char *mountpoint,
			unsigned per_queue, unsigned max_per_queue);

/*
 * uring_stop -- stop the ring threads (each finishes the request it is
 * in) and free the rings. After the loop ended and before the filesystem
 * is torn down.
 */
void uring_stop(struct uring *u);

#endif
