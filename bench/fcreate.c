/*
 * fcreate -- metadata rate benchmark: create, stat and unlink N empty files.
 *
 *   fcreate [-n FILES] [-p PHASES] DIR
 *
 * PHASES is a comma list of create,stat,unlink (default: all three, in that
 * order). Files are named DIR/f0000000... in one directory, so the directory
 * itself grows to FILES entries: that is the case the target (>= 10k creates/s
 * at 100k files) is about. Output is one line per phase,
 *
 *   <phase> <files> <seconds> <ops_per_second>
 *
 * and the exit status is non-zero on the first failing system call (the
 * harness must never report a rate for a phase that did not complete).
 * "-p create" leaves the files behind, e.g. for the mount-time job.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 10000000L

enum phase { PH_CREATE, PH_STAT, PH_UNLINK, PH_COUNT };

static const char *const phase_names[PH_COUNT] = { "create", "stat", "unlink" };

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* one_op -- do PHASE on file I; 0 or -errno */
static int one_op(enum phase ph, int dirfd, long i)
{
	char name[32];
	struct stat st;
	int fd;

	snprintf(name, sizeof(name), "f%07ld", i);
	switch (ph) {
	case PH_CREATE:
		fd = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		/* a failing close would hide a lost file: count it */
		return close(fd) == 0 ? 0 : -errno;
	case PH_STAT:
		return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
	case PH_UNLINK:
		return unlinkat(dirfd, name, 0) == 0 ? 0 : -errno;
	default:
		return -EINVAL;
	}
}

/* parse_phases -- comma list into a flag per phase; false on an unknown word */
static bool parse_phases(const char *list, bool want[PH_COUNT])
{
	char buf[64];
	char *save = NULL;

	if (strlen(list) >= sizeof(buf))
		return false;
	strcpy(buf, list);
	for (char *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		int p;

		for (p = 0; p < PH_COUNT; p++)
			if (strcmp(w, phase_names[p]) == 0)
				break;
		if (p == PH_COUNT)
			return false;
		want[p] = true;
	}
	return true;
}

static void usage(void)
{
	fprintf(stderr, "usage: fcreate [-n FILES] [-p create,stat,unlink] DIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	bool want[PH_COUNT] = { false };
	long files = 100000;
	const char *phases = "create,stat,unlink";
	int opt, dirfd;

	while ((opt = getopt(argc, argv, "n:p:")) != -1) {
		switch (opt) {
		case 'n':
			files = strtol(optarg, NULL, 10);
			break;
		case 'p':
			phases = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || files <= 0 || files > MAX_FILES ||
	    !parse_phases(phases, want))
		usage();

	dirfd = open(argv[optind], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, "fcreate: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	/* phases always run in create, stat, unlink order whatever the list says */
	for (int p = 0; p < PH_COUNT; p++) {
		double t0, dt;

		if (!want[p])
			continue;
		t0 = now_seconds();
		for (long i = 0; i < files; i++) {
			int rc = one_op(p, dirfd, i);

			if (rc < 0) {
				fprintf(stderr, "fcreate: %s of file %ld: %s\n",
					phase_names[p], i, strerror(-rc));
				return 1;
			}
		}
		dt = now_seconds() - t0;
		printf("%s %ld %.6f %.1f\n", phase_names[p], files, dt,
		       dt > 0 ? (double)files / dt : 0.0);
		fflush(stdout);
	}
	close(dirfd);
	return 0;
}
