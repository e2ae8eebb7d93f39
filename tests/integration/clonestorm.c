// SPDX-License-Identifier: BSD-3-Clause
/*
 * clonestorm SRC DSTPREFIX THREADS -- THREADS threads open SRC and create
 * DSTPREFIX.N, wait 1.1 s (past the 1 s attribute timeout kmemfs had when
 * this was written; it caches for 60 s now, so test_uring's forcesync.so is
 * what makes the handler ask the kernel), then send KMEMFS_IOC_CLONE_RANGE
 * all at the same moment. Exit 0 when every
 * clone succeeded. test_uring runs it against a daemon on one CPU: a clone
 * handler that sent a request to its own mount from inside the ring hung it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kmemfs/ioctl.h"

static const char *src, *prefix;
static pthread_barrier_t start;

static void *one(void *arg)
{
	long n = (long)arg;
	char dst[4096];
	int s, d, rc = 0;

	snprintf(dst, sizeof(dst), "%s.%ld", prefix, n);
	s = open(src, O_RDONLY);
	d = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0644);
	usleep(1100 * 1000);
	pthread_barrier_wait(&start);
	if (s < 0 || d < 0) {
		rc = errno;
	} else {
		struct kmemfs_clone_range cr = { .src_fd = s };
		if (ioctl(d, KMEMFS_IOC_CLONE_RANGE, &cr) != 0)
			rc = errno;
	}
	if (rc)
		fprintf(stderr, "clonestorm: %s: %s\n", dst, strerror(rc));
	if (s >= 0)
		close(s);
	if (d >= 0)
		close(d);
	return (void *)(long)rc;
}

int main(int argc, char **argv)
{
	pthread_t t[64];
	long n, failed = 0;

	if (argc != 4 || (n = atol(argv[3])) < 1 || n > 64) {
		fprintf(stderr, "usage: clonestorm SRC DSTPREFIX THREADS (1-64)\n");
		return 2;
	}
	src = argv[1];
	prefix = argv[2];
	pthread_barrier_init(&start, NULL, (unsigned)n);
	for (long i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, one, (void *)i) != 0)
			return 2;
	for (long i = 0; i < n; i++) {
		void *rc;
		pthread_join(t[i], &rc);
		failed += rc != NULL;
	}
	return failed ? 1 : 0;
}
