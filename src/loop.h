/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * loop.h -- the worker threads that take requests and handle them.
 *
 * As many workers as CPUs take requests; more would only wake one another.
 * When every worker has been inside a request for a whole tick and none has
 * finished one (all blocked, say on a page the kernel keeps locked until a
 * READ in the queue behind them is answered), one more worker starts, up to
 * a cap, so the queue never stalls behind blocked workers. Workers beyond
 * the base number leave again once others are idle.
 */
#ifndef KMEMFS_LOOP_H
#define KMEMFS_LOOP_H

#include <stdbool.h>
#include <stddef.h>

/* Where requests come from; each worker owns one slot of slot_size bytes. */
struct loop_ops {
	/* wait for the next request into SLOT: > 0 got one, 0 the source is
	 * done, < 0 a negative errno (-EINTR and -EAGAIN are retried) */
	int (*receive)(void *arg, void *slot);
	void (*process)(void *arg, void *slot);
	/* has the source been told to stop (a signal, an unmount)? */
	bool (*exited)(void *arg);
	void (*slot_free)(void *slot); /* the slot's buffers, at worker exit */
	size_t slot_size;
};

struct loop;

/* BASE workers normally, at most MAX (MAX >= BASE >= 1) */
struct loop *loop_new(const struct loop_ops *ops, void *arg, unsigned base,
		      unsigned max);
/* loop_run -- serve until the source is done; 0 or the first error */
int loop_run(struct loop *l);
void loop_free(struct loop *l);

/* for tests and stats: workers alive now, and the most there ever were */
unsigned loop_workers(struct loop *l);
unsigned loop_peak_workers(struct loop *l);
/* ... and the workers that left and are not joined yet */
unsigned loop_left_workers(struct loop *l);

/* loop_cpus -- the CPUs this process may run on (0: unknown) */
unsigned loop_cpus(void);
/* loop_base_workers -- the CPUs this process may run on, within [1, max] */
unsigned loop_base_workers(unsigned max);

#endif
