// SPDX-License-Identifier: BSD-3-Clause
/*
 * cloneswap SECRET READABLE OUT TRIES -- the clone ioctl's source descriptor
 * swapped while the daemon checks it: one thread keeps pointing descriptor
 * 50 at SECRET opened O_PATH (which a user without read permission can do)
 * and at READABLE, another clones from descriptor 50 into OUT. Prints
 * "leaked" and exits 1 if OUT ever holds SECRET's first bytes; else prints
 * how many clones went through and how many were refused, and exits 0.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kmemfs/ioctl.h"

#define SWAPPED 50

static int opath, readable;
static volatile int stop;

static void *swapper(void *arg)
{
	(void)arg;
	while (!stop) {
		dup2(opath, SWAPPED);
		dup2(readable, SWAPPED);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	char secret[16] = { 0 }, got[16];
	long tries, ok = 0, refused = 0;
	pthread_t t;
	int s, out;

	if (argc != 5) {
		fprintf(stderr, "usage: cloneswap SECRET READABLE OUT TRIES\n");
		return 2;
	}
	/* the test (root) wrote SECRET's first bytes as "TOPSECRET" */
	memcpy(secret, "TOPSECRET", 9);
	opath = open(argv[1], O_PATH);
	readable = open(argv[2], O_RDONLY);
	out = open(argv[3], O_RDWR);
	tries = atol(argv[4]);
	if (opath < 0 || readable < 0 || out < 0) {
		perror("open");
		return 2;
	}
	if ((s = open(argv[1], O_RDONLY)) >= 0) {
		fprintf(stderr, "%s is readable: the test needs it not to be\n", argv[1]);
		return 2;
	}
	pthread_create(&t, NULL, swapper, NULL);
	struct kmemfs_clone_range cr = { SWAPPED, 0, 4096, 0 };
	for (long i = 0; i < tries; i++) {
		if (ioctl(out, KMEMFS_IOC_CLONE_RANGE, &cr) != 0) {
			refused++;
			continue;
		}
		ok++;
		if (pread(out, got, 9, 0) == 9 && memcmp(got, secret, 9) == 0) {
			stop = 1;
			pthread_join(t, NULL);
			printf("leaked after %ld tries\n", i + 1);
			return 1;
		}
	}
	stop = 1;
	pthread_join(t, NULL);
	printf("%ld cloned, %ld refused\n", ok, refused);
	return 0;
}
