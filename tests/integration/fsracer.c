// SPDX-License-Identifier: BSD-3-Clause
/*
 * fsracer -- threads that race random operations on the same few names.
 *
 * Usage: fsracer [-s SEED] [-t SECONDS] [-T THREADS] DIR
 *
 * No model: with every thread changing the same names, any result but a
 * crash or an errno the operation may not give is possible. What it finds
 * is what a model cannot: the daemon's reference counting (lookups racing
 * forgets, files unlinked while open, renamed under a reader), its locking
 * (deadlocks show as the test's timeout), and leaks, which the script looks
 * for afterwards (fsck, and the space a full rm gives back).
 *
 * Each thread holds up to four open files across operations and keeps using
 * them after their names are renamed, replaced or removed. Names also become
 * FIFOs and whiteouts (character devices 0:0, which the nodev FUSE mount
 * refuses to open: EACCES), so opens are non-blocking and I/O on what turns
 * out not to be a regular file may fail as it would anywhere (ESPIPE, EINVAL).
 *
 * Exit status: 0 done, 1 an operation gave an errno it may not give (the
 * operation and errno are printed), 2 usage or setup.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define EXERCISE_NAME "fsracer"
#include "exercise.h"

#define NAMES 12
#define DIRS 4
#define HELD 4

static const char *root;
static double deadline;
static atomic_ulong total_ops;

struct racer {
	pthread_t thread;
	uint64_t rng;
	int held[HELD];
	char buf[65536];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rnd_r(struct racer *r)
{
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	return r->rng;
}

static uint64_t below_r(struct racer *r, uint64_t n)
{
	return rnd_r(r) % n;
}

/* A random path: the top directory or one of its DIRS, then a name (or a directory). */
static void pick_path(struct racer *r, char *out, size_t len, bool dir)
{
	unsigned d = (unsigned)below_r(r, DIRS + 1), n = (unsigned)below_r(r, dir ? DIRS : NAMES);

	if (dir || d == DIRS)
		snprintf(out, len, "%s/%s%u", root, dir ? "d" : "n", n);
	else
		snprintf(out, len, "%s/d%u/n%u", root, d, n);
}

/*
 * Fail on an errno OP may not give. Racing names make ENOENT, EEXIST,
 * ENOTDIR, EISDIR, ENOTEMPTY and friends normal; EIO, ENOMEM, EBADF, EFAULT
 * and the like never are. On a path, any directory in it may have gone,
 * become a file or a symlink (ENOENT, ENOTDIR, ELOOP); "-" is an open file.
 */
static void expect_ok(const char *op, const char *path, int rc, const char *allowed)
{
	char both[32];

	if (strcmp(path, "-") != 0) {
		snprintf(both, sizeof(both), "ndl%s", allowed);
		allowed = both;
	}
	static const struct { int e; char c; } codes[] = {
		{ ENOENT, 'n' }, { EEXIST, 'e' }, { ENOTDIR, 'd' }, { EISDIR, 'i' },
		{ ENOTEMPTY, 'y' }, { EINVAL, 'v' }, { EPERM, 'p' }, { ENODATA, 'a' },
		{ ENOSPC, 's' }, { EMLINK, 'm' }, { ELOOP, 'l' }, { ENXIO, 'x' },
		{ ESPIPE, 'z' }, { EACCES, 'c' },
	};

	if (rc >= 0)
		return;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i].e == errno && strchr(allowed, codes[i].c))
			return;
	fprintf(stderr, "fsracer: %s %s: unexpected %s (%s)\n", op, path,
		strerrorname_np(errno) ? strerrorname_np(errno) : "?", strerror(errno));
	exit(1);
}

/* Keep FD open for later operations, closing the one it replaces. */
static void hold(struct racer *r, int fd)
{
	unsigned slot = (unsigned)below_r(r, HELD);

	if (r->held[slot] >= 0)
		close(r->held[slot]);
	r->held[slot] = fd;
}

/* Something on a held file, whatever has happened to its name since. */
static void use_held(struct racer *r)
{
	int fd = r->held[below_r(r, HELD)];
	off_t off = (off_t)below_r(r, 1 << 20);
	size_t len = 1 + (size_t)below_r(r, sizeof(r->buf));
	struct stat st;

	if (fd < 0)
		return;
	switch (below_r(r, 5)) {
	case 0:
		memset(r->buf, (int)below_r(r, 256), len);
		expect_ok("pwrite (held)", "-", (int)pwrite(fd, r->buf, len, off), "sz");
		break;
	case 1:
		expect_ok("pread (held)", "-", (int)pread(fd, r->buf, len, off), "z");
		break;
	case 2:
		expect_ok("fstat (held)", "-", fstat(fd, &st), "");
		break;
	case 3:
		expect_ok("ftruncate (held)", "-", ftruncate(fd, off), "sv");
		break;
	default:
		expect_ok("fsync (held)", "-", fsync(fd), "v");
	}
}

static void one_op(struct racer *r)
{
	char a[4096], b[4096];
	int fd;

	pick_path(r, a, sizeof(a), false);
	pick_path(r, b, sizeof(b), false);
	switch (below_r(r, 20)) {
	case 0: case 1: /* create or open, write, maybe keep it open */
		fd = open(a, O_RDWR | O_CREAT | O_NONBLOCK, 0644);
		expect_ok("open O_CREAT", a, fd, "isxc");
		if (fd < 0)
			return;
		memset(r->buf, 'w', 8192);
		expect_ok("pwrite", a, (int)pwrite(fd, r->buf, 1 + below_r(r, 8192),
						   (off_t)below_r(r, 1 << 20)), "sz");
		if (below_r(r, 2))
			hold(r, fd);
		else
			close(fd);
		break;
	case 2:
		expect_ok("unlink", a, unlink(a), "i");
		break;
	case 3: case 4: { /* rename, of files and directories alike */
		static const unsigned flags[] = { 0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE,
						  RENAME_WHITEOUT };
		if (below_r(r, 3) == 0)
			pick_path(r, a, sizeof(a), true);
		if (below_r(r, 3) == 0)
			pick_path(r, b, sizeof(b), true);
		expect_ok("rename", a, renameat2(AT_FDCWD, a, AT_FDCWD, b,
						 flags[below_r(r, 5)]), "edivys");
		break;
	}
	case 5:
		expect_ok("link", a, link(a, b), "epms");
		break;
	case 6:
		pick_path(r, a, sizeof(a), true);
		expect_ok("mkdir", a, mkdir(a, 0755), "ems");
		break;
	case 7:
		pick_path(r, a, sizeof(a), true);
		expect_ok("rmdir", a, rmdir(a), "y");
		break;
	case 8:
		expect_ok("symlink", b, symlink(a, b), "es");
		break;
	case 9:
		expect_ok("truncate", a, truncate(a, (off_t)below_r(r, 2 << 20)), "isv");
		break;
	case 10:
		expect_ok("setxattr", a, lsetxattr(a, "user.race", "v", 1 + below_r(r, 100), 0),
			  "ps");
		break;
	case 11:
		expect_ok("removexattr", a, lremovexattr(a, "user.race"), "pa");
		break;
	case 12: { /* O_TMPFILE, named by linkat or dropped */
		char dir[4096], proc[64];
		snprintf(dir, sizeof(dir), "%s", a);
		*strrchr(dir, '/') = '\0';
		fd = open(dir, O_TMPFILE | O_RDWR, 0600);
		expect_ok("open O_TMPFILE", dir, fd, "s");
		if (fd < 0)
			return;
		expect_ok("write (tmpfile)", dir, (int)write(fd, r->buf, 1 + below_r(r, 16384)), "s");
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (below_r(r, 2))
			expect_ok("linkat (tmpfile)", a,
				  linkat(AT_FDCWD, proc, AT_FDCWD, a, AT_SYMLINK_FOLLOW), "es");
		if (below_r(r, 2))
			hold(r, fd);
		else
			close(fd);
		break;
	}
	case 13: { /* copy_file_range: the clone path */
		int in = open(a, O_RDONLY | O_NONBLOCK), out;
		expect_ok("open", a, in, "xc");
		if (in < 0)
			return;
		out = open(b, O_WRONLY | O_CREAT | O_NONBLOCK, 0644);
		expect_ok("open O_CREAT", b, out, "isxc");
		if (out >= 0) {
			loff_t i = (loff_t)below_r(r, 1 << 20), o = (loff_t)below_r(r, 1 << 20);
			expect_ok("copy_file_range", a,
				  (int)copy_file_range(in, &i, out, &o, below_r(r, 1 << 20), 0),
				  "ivs");
			close(out);
		}
		close(in);
		break;
	}
	case 14:
		fd = open(a, O_WRONLY | O_NONBLOCK);
		expect_ok("open", a, fd, "ixc");
		if (fd >= 0) {
			expect_ok("fallocate punch", a,
				  fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					    (off_t)below_r(r, 1 << 20), 1 + (off_t)below_r(r, 1 << 20)),
				  "sz");
			close(fd);
		}
		break;
	case 15: { /* list a directory, stat what is in it */
		char d[4096];
		pick_path(r, d, sizeof(d), true);
		DIR *dp = opendir(below_r(r, 2) ? d : root);
		expect_ok("opendir", d, dp ? 0 : -1, "");
		if (!dp)
			return;
		struct dirent *de;
		struct stat st;
		while ((de = readdir(dp)))
			expect_ok("fstatat", de->d_name,
				  fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW), "");
		closedir(dp);
		break;
	}
	case 16: {
		struct stat st;
		expect_ok("stat", a, stat(a, &st), "");
		break;
	}
	case 17: /* the other kinds of inode, and attribute changes */
		switch (below_r(r, 3)) {
		case 0:
			expect_ok("mkfifo", a, mkfifo(a, 0600), "es");
			break;
		case 1:
			expect_ok("chmod", a, chmod(a, 0600 | (mode_t)below_r(r, 0200)), "");
			break;
		default:
			expect_ok("utimensat", a, utimensat(AT_FDCWD, a, NULL, AT_SYMLINK_NOFOLLOW), "");
		}
		break;
	default:
		use_held(r);
	}
}

static void *race(void *arg)
{
	struct racer *r = arg;
	unsigned long n = 0;

	while (n % 64 || now() < deadline) {
		one_op(r);
		n++;
	}
	for (int i = 0; i < HELD; i++)
		if (r->held[i] >= 0)
			close(r->held[i]);
	atomic_fetch_add(&total_ops, n);
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32), secs = 10, nthreads = 4;
	struct racer *r;
	int c;

	while ((c = getopt(argc, argv, "s:t:T:")) != -1) {
		switch (c) {
		case 's': seed = number(optarg); break;
		case 't': secs = number(optarg); break;
		case 'T': nthreads = number(optarg); break;
		default:
			fprintf(stderr, "usage: fsracer [-s SEED] [-t SECONDS] [-T THREADS] DIR\n");
			return 2;
		}
	}
	if (optind != argc - 1 || nthreads == 0 || nthreads > 64) {
		fprintf(stderr, "usage: fsracer [-s SEED] [-t SECONDS] [-T THREADS (1..64)] DIR\n");
		return 2;
	}
	root = argv[optind];
	r = calloc(nthreads, sizeof(*r));
	if (!r) {
		fprintf(stderr, "fsracer: out of memory\n");
		return 2;
	}
	printf("fsracer: seed %" PRIu64 ", %" PRIu64 " threads for %" PRIu64 " s on %s\n",
	       seed, nthreads, secs, root);
	fflush(stdout);
	deadline = now() + (double)secs;
	for (uint64_t i = 0; i < nthreads; i++) {
		r[i].rng = (seed + i) * 0x9e3779b97f4a7c15ull | 1;
		for (int k = 0; k < HELD; k++)
			r[i].held[k] = -1;
		if (pthread_create(&r[i].thread, NULL, race, &r[i]) != 0) {
			fprintf(stderr, "fsracer: cannot start a thread\n");
			return 2;
		}
	}
	for (uint64_t i = 0; i < nthreads; i++)
		pthread_join(r[i].thread, NULL);
	free(r);
	printf("fsracer: %lu operations, every errno one the operation may give\n",
	       atomic_load(&total_ops));
	return 0;
}
