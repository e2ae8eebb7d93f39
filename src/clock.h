/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * clock.h -- the monotonic clock in nanoseconds, for durations the daemon
 * measures (statistics, poll windows); never for file times.
 */
#ifndef KMEMFS_CLOCK_H
#define KMEMFS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
