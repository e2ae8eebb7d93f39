/*
 * cachecheck -- read-after-write checks across open files that do and do not
 * use the kernel's page cache (kmemfs's -o cache=), for test_cache.sh.
 *
 *   cachecheck race FILE SECONDS
 *	A writer process rewrites the first page of FILE through an O_RDWR
 *	file, filling it with a generation number, and publishes each number
 *	once its pwrite returned. Two readers, one through pread of an
 *	O_RDONLY file (dropping its cached page first, which sends the read
 *	to the daemon whenever the mapping reader does not hold the page
 *	mapped) and one through a shared read-only mapping,
 *	check that every read after that sees the published number or a
 *	later one.
 *   cachecheck mmap FILE
 *	A shared writable mapping of an O_RDWR file sees a pwrite through
 *	another file, and a pread sees a store through the mapping after
 *	msync.
 *
 * Exit 0 when every check held, 1 on a system call failure or when a
 * process got too little done to mean anything, 2 when a pread (or in the
 * mmap check, anything) saw stale bytes, 3 when only the mapping reader of
 * the race did (stderr says how many and where).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define WORDS (PAGE / sizeof(uint64_t))
/* fewer than this many writes or reads in a race proves nothing */
#define MIN_WORK 20

struct shared {
	_Atomic uint64_t published; /* the last generation whose pwrite returned */
	atomic_bool stop;
	_Atomic uint64_t reads[2], stale[2];
	_Atomic uint64_t worst_seen[2], worst_expected[2];
};

static int die(const char *what, const char *file)
{
	fprintf(stderr, "cachecheck: %s %s: %s\n", what, file, strerror(errno));
	return 1;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* the smallest generation in the page: a page partly rewritten counts as old */
static uint64_t page_generation(const volatile uint64_t *w)
{
	uint64_t lo = w[0];

	for (size_t i = 1; i < WORDS; i++)
		if (w[i] < lo)
			lo = w[i];
	return lo;
}

static void note_read(struct shared *sh, int kind, uint64_t expected, uint64_t seen)
{
	atomic_fetch_add(&sh->reads[kind], 1);
	if (seen < expected) {
		if (atomic_fetch_add(&sh->stale[kind], 1) == 0) {
			atomic_store(&sh->worst_seen[kind], seen);
			atomic_store(&sh->worst_expected[kind], expected);
		}
	}
}

static int writer(struct shared *sh, const char *file)
{
	static uint64_t buf[WORDS];
	int fd = open(file, O_RDWR);

	if (fd < 0)
		return die("open O_RDWR", file);
	for (uint64_t g = 2; !atomic_load(&sh->stop); g++) {
		for (size_t i = 0; i < WORDS; i++)
			buf[i] = g;
		if (pwrite(fd, buf, PAGE, 0) != PAGE)
			return die("pwrite", file);
		atomic_store(&sh->published, g);
	}
	close(fd);
	return 0;
}

static int pread_reader(struct shared *sh, const char *file)
{
	static uint64_t buf[WORDS];
	int fd = open(file, O_RDONLY);

	if (fd < 0)
		return die("open O_RDONLY", file);
	while (!atomic_load(&sh->stop)) {
		uint64_t expected = atomic_load(&sh->published);

		posix_fadvise(fd, 0, PAGE, POSIX_FADV_DONTNEED);
		if (pread(fd, buf, PAGE, 0) != PAGE)
			return die("pread", file);
		note_read(sh, 0, expected, page_generation(buf));
	}
	close(fd);
	return 0;
}

static int map_reader(struct shared *sh, const char *file)
{
	int fd = open(file, O_RDONLY);
	volatile uint64_t *map;

	if (fd < 0)
		return die("open O_RDONLY", file);
	map = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return die("mmap", file);
	while (!atomic_load(&sh->stop)) {
		uint64_t expected = atomic_load(&sh->published);

		note_read(sh, 1, expected, page_generation(map));
	}
	munmap((void *)map, PAGE);
	close(fd);
	return 0;
}

static int race(const char *file, double seconds)
{
	static uint64_t first[WORDS];
	int (*const roles[])(struct shared *, const char *) = {
		writer, pread_reader, map_reader
	};
	const char *names[] = { "pread of an O_RDONLY file", "a shared mapping" };
	pid_t pids[3];
	struct shared *sh;
	int fd, rc = 0;
	double end;

	/* generation 1 is on the file before anyone reads it */
	fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return die("create", file);
	for (size_t i = 0; i < WORDS; i++)
		first[i] = 1;
	if (pwrite(fd, first, PAGE, 0) != PAGE)
		return die("pwrite", file);
	close(fd);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return die("mmap", "shared state");
	atomic_store(&sh->published, 1);
	for (int i = 0; i < 3; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			return die("fork", file);
		if (pids[i] == 0)
			_exit(roles[i](sh, file));
	}
	end = now() + seconds;
	while (now() < end)
		usleep(10000);
	atomic_store(&sh->stop, true);
	for (int i = 0; i < 3; i++) {
		int st;

		if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			rc = 1;
	}
	printf("writes %" PRIu64 "\n", atomic_load(&sh->published) - 1);
	if (atomic_load(&sh->published) - 1 < MIN_WORK) {
		fprintf(stderr, "cachecheck: too few writes to mean anything\n");
		rc = 1;
	}
	for (int k = 0; k < 2; k++) {
		printf("reads through %s: %" PRIu64 ", stale %" PRIu64 "\n", names[k],
		       atomic_load(&sh->reads[k]), atomic_load(&sh->stale[k]));
		if (atomic_load(&sh->reads[k]) < MIN_WORK) {
			fprintf(stderr, "cachecheck: too few reads through %s\n",
				names[k]);
			rc = 1;
		}
		if (atomic_load(&sh->stale[k])) {
			fprintf(stderr,
				"cachecheck: %s saw generation %" PRIu64
				" after %" PRIu64 " was written\n",
				names[k], atomic_load(&sh->worst_seen[k]),
				atomic_load(&sh->worst_expected[k]));
			if (!rc)
				rc = k == 0 ? 2 : 3;
			else if (rc == 3 && k == 0)
				rc = 2;
		}
	}
	return rc;
}

static int check_page(const char *what, const unsigned char *p, int want)
{
	for (size_t i = 0; i < PAGE; i++)
		if (p[i] != want) {
			fprintf(stderr, "cachecheck: %s: byte %zu is %#x, not %#x\n",
				what, i, p[i], want);
			return 2;
		}
	return 0;
}

static int mmap_coherence(const char *file)
{
	static unsigned char buf[PAGE];
	int fd_map, fd_w, fd_r, rc;
	unsigned char *map;

	fd_map = open(file, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd_map < 0 || ftruncate(fd_map, 2 * PAGE) != 0)
		return die("create", file);
	map = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd_map, 0);
	if (map == MAP_FAILED)
		return die("mmap MAP_SHARED of an O_RDWR file", file);
	fd_w = open(file, O_RDWR);
	fd_r = open(file, O_RDONLY);
	if (fd_w < 0 || fd_r < 0)
		return die("open", file);
	/* fault the page in first, so that a stale copy would stay mapped */
	if ((rc = check_page("the mapping of a new file", map, 0)) != 0)
		return rc;
	memset(buf, 0xa5, PAGE);
	if (pwrite(fd_w, buf, PAGE, 0) != PAGE)
		return die("pwrite", file);
	if ((rc = check_page("the mapping after a pwrite through another file",
			     map, 0xa5)) != 0)
		return rc;
	memset(map + PAGE, 0x5a, PAGE);
	if (msync(map, 2 * PAGE, MS_SYNC) != 0)
		return die("msync", file);
	if (pread(fd_r, buf, PAGE, PAGE) != PAGE)
		return die("pread", file);
	if ((rc = check_page("a pread after a store through the mapping and msync",
			     buf, 0x5a)) != 0)
		return rc;
	if (pread(fd_w, buf, PAGE, PAGE) != PAGE)
		return die("pread", file);
	if ((rc = check_page("a pread of the O_RDWR file after msync", buf, 0x5a)) != 0)
		return rc;
	munmap(map, 2 * PAGE);
	close(fd_map);
	close(fd_w);
	close(fd_r);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "race") == 0)
		return race(argv[2], atof(argv[3]));
	if (argc == 3 && strcmp(argv[1], "mmap") == 0)
		return mmap_coherence(argv[2]);
	fprintf(stderr, "usage: cachecheck race FILE SECONDS | cachecheck mmap FILE\n");
	return 1;
}
