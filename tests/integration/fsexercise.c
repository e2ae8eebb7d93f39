/*
 * fsexercise -- random operations on two files, each checked against a copy
 * kept in memory (the "shadow"): the file data tests that no fixed script
 * would think of. Every read, every size, every SEEK_DATA/SEEK_HOLE answer
 * is compared with the shadow, and the whole of both files every so often.
 *
 * Usage: fsexercise [-s SEED] [-n OPS] [-S MAXSIZE] [-c EVERY] [-F FROM] [-E] [-o PREFIX] DIR
 *        fsexercise -T THREADS [-s SEED] [-n OPS] [-S MAXSIZE] DIR
 *
 * Works on DIR/fx.<seed>.a and DIR/fx.<seed>.b (created empty). Operations:
 * buffered and O_DIRECT writes and reads, writes through a shared mmap,
 * truncate up and down, fallocate (default, KEEP_SIZE, PUNCH_HOLE),
 * copy_file_range within and between the files (kmemfs clones page-aligned
 * ranges, so this is where copy-on-write sharing gets stressed), fsync and
 * fdatasync, reopen, SEEK_DATA/SEEK_HOLE. Offsets lean towards 4 KiB pages
 * and 4 MiB units, whose edges are where the allocator changes its mind.
 *
 * Both files are read back whole every EVERY operations (500), or after
 * every one from operation FROM on: the way to find the operation that went
 * wrong when a replay of a failing seed is needed.
 *
 * -E is for a filesystem too small for the files: an operation may then fail
 * with ENOSPC, and must then have changed nothing (a write that stopped
 * short must have written what it counted). Writes through mmap are left
 * out there, since msync cannot say which pages did not make it.
 *
 * -T runs THREADS threads on one file instead, each owning stripes of
 * bytes that interleave inside pages (stripe sizes 1000 to 9000 bytes), so
 * that writes, punches and reads of different threads meet in the same
 * pages at the same time: each thread checks its own bytes.
 *
 * With -o, the final shadows are written to PREFIX.a and PREFIX.b, so that
 * a script can compare the files after a remount.
 *
 * Exit: 0 all checks passed; 1 a check failed (the last operations and the
 * seed are printed, so "-s SEED" replays it); 2 usage or setup error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXERCISE_NAME "fsexercise"
#include "exercise.h"

#define PAGE 4096u
#define UNIT (4u << 20)
#define MAX_IO (256u << 10) /* longest single read or write */

struct xfile {
	char path[4096];
	int fd;          /* buffered, O_RDWR */
	int dfd;         /* O_DIRECT, O_RDWR */
	uint8_t *shadow; /* what the file must hold; zero beyond size */
	uint64_t size;
};

static struct xfile files[2];
static uint64_t max_size = 24u << 20;
static bool enospc_ok;     /* -E */
static uint64_t n_enospc;  /* operations refused for want of space */
static uint8_t *iobuf; /* page-aligned, for O_DIRECT */
static uint8_t *readbuf;

/* an operation refused for want of space (-E): say so in its log line */
static void refused(void)
{
	logop_append(" -> ENOSPC");
	n_enospc++;
}

/* an offset in [0, limit), often on a page or a unit edge */
static uint64_t pick_offset(uint64_t limit)
{
	uint64_t off;

	if (limit == 0)
		return 0;
	switch (below(8)) {
	case 0:
	case 1: /* page-aligned */
		off = below(limit / PAGE + 1) * PAGE;
		break;
	case 2: /* a few bytes around a unit edge */
		off = below(limit / UNIT + 1) * UNIT;
		off = off + below(2 * PAGE + 1) - PAGE;
		break;
	default:
		off = below(limit);
	}
	return off >= limit ? limit - 1 : off;
}

static uint64_t pick_length(uint64_t max)
{
	uint64_t len;

	switch (below(6)) {
	case 0: /* whole pages */
		len = (below(max / PAGE) + 1) * PAGE;
		break;
	case 1: /* tiny */
		len = below(16) + 1;
		break;
	default:
		len = below(max) + 1;
	}
	return len > max ? max : len;
}

static void fill_random(uint8_t *p, size_t len)
{
	uint64_t v = 0;

	for (size_t i = 0; i < len; i++) {
		if ((i & 7) == 0)
			v = rnd();
		p[i] = (uint8_t)(v >> ((i & 7) * 8));
	}
}

/* compare LEN bytes just read at OFF with the shadow; report the first difference */
static void compare(const struct xfile *f, const uint8_t *got, uint64_t off, uint64_t len,
		    const char *how)
{
	if (memcmp(got, f->shadow + off, len) == 0)
		return;
	for (uint64_t i = 0; i < len; i++)
		if (got[i] != f->shadow[off + i])
			die("%s of %s: byte at %" PRIu64 " is 0x%02x, expected 0x%02x "
			    "(read %" PRIu64 "+%" PRIu64 ", size %" PRIu64 ")",
			    how, f->path, off + i, got[i], f->shadow[off + i], off, len, f->size);
}

static void check_size(const struct xfile *f)
{
	struct stat st;

	if (fstat(f->fd, &st) != 0)
		die("fstat %s: %s", f->path, strerror(errno));
	if ((uint64_t)st.st_size != f->size)
		die("%s: st_size %" PRIu64 ", expected %" PRIu64, f->path,
		    (uint64_t)st.st_size, f->size);
}

static void set_size(struct xfile *f, uint64_t size)
{
	if (size < f->size) /* keep the shadow zero beyond the end */
		memset(f->shadow + size, 0, f->size - size);
	f->size = size;
}

static void do_write(struct xfile *f, bool direct)
{
	uint64_t off, len;
	ssize_t n;

	if (direct) {
		off = pick_offset(max_size - PAGE) & ~(uint64_t)(PAGE - 1);
		len = (below(MAX_IO / PAGE) + 1) * PAGE;
	} else {
		off = pick_offset(max_size - 1);
		len = pick_length(MAX_IO);
	}
	if (off + len > max_size)
		len = max_size - off;
	logop("%s write %s %" PRIu64 "+%" PRIu64, direct ? "direct" : "buffered", f->path,
	      off, len);
	fill_random(iobuf, len);
	n = pwrite(direct ? f->dfd : f->fd, iobuf, len, (off_t)off);
	if (n < 0 && errno == ENOSPC && enospc_ok) {
		refused();
		return;
	}
	if (n < 0 || (n < (ssize_t)len && !enospc_ok))
		die("pwrite returned %zd: %s", n, n < 0 ? strerror(errno) : "short");
	memcpy(f->shadow + off, iobuf, (size_t)n);
	if (off + (uint64_t)n > f->size)
		f->size = off + (uint64_t)n;
}

static void do_read(struct xfile *f, bool direct)
{
	uint64_t off, len, expect;
	ssize_t n;

	if (direct) {
		off = pick_offset(f->size + PAGE) & ~(uint64_t)(PAGE - 1);
		len = (below(MAX_IO / PAGE) + 1) * PAGE;
	} else {
		off = pick_offset(f->size + PAGE);
		len = pick_length(MAX_IO);
	}
	expect = off >= f->size ? 0 : (f->size - off < len ? f->size - off : len);
	logop("%s read %s %" PRIu64 "+%" PRIu64, direct ? "direct" : "buffered", f->path,
	      off, len);
	n = pread(direct ? f->dfd : f->fd, direct ? iobuf : readbuf, len, (off_t)off);
	if (n != (ssize_t)expect)
		die("pread %" PRIu64 "+%" PRIu64 " of %s (size %" PRIu64 ") returned %zd, "
		    "expected %" PRIu64 "%s%s", off, len, f->path, f->size, n, expect,
		    n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
	compare(f, direct ? iobuf : readbuf, off, expect, direct ? "direct read" : "read");
}

/* write through a shared mapping inside the current size; msync sends it */
static void do_mmap_write(struct xfile *f)
{
	uint64_t off, len, map_off;
	uint8_t *map;

	if (f->size == 0 || enospc_ok)
		return;
	off = pick_offset(f->size);
	len = pick_length(f->size - off < MAX_IO ? f->size - off : MAX_IO);
	map_off = off & ~(uint64_t)(PAGE - 1);
	logop("mmap write %s %" PRIu64 "+%" PRIu64, f->path, off, len);
	map = mmap(NULL, off + len - map_off, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd,
		   (off_t)map_off);
	if (map == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	fill_random(iobuf, len);
	memcpy(map + (off - map_off), iobuf, len);
	if (msync(map, off + len - map_off, MS_SYNC) != 0)
		die("msync: %s", strerror(errno));
	compare(f, map, map_off, off - map_off, "mmap read before the write");
	munmap(map, off + len - map_off);
	memcpy(f->shadow + off, iobuf, len);
}

static void do_truncate(struct xfile *f)
{
	uint64_t size = below(4) == 0 ? 0 : pick_offset(max_size + 1);

	logop("truncate %s %" PRIu64 " -> %" PRIu64, f->path, f->size, size);
	if (ftruncate(f->fd, (off_t)size) != 0) {
		/* a shorter size zeroes the tail of a shared page: a copy */
		if (errno == ENOSPC && enospc_ok) {
			refused();
			return;
		}
		die("ftruncate: %s", strerror(errno));
	}
	set_size(f, size);
}

static void do_fallocate(struct xfile *f)
{
	static const int modes[] = { 0, FALLOC_FL_KEEP_SIZE,
				     FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE };
	static const char *const names[] = { "allocate", "allocate keep-size", "punch" };
	int m = (int)below(4);
	uint64_t off = pick_offset(max_size - 1);
	uint64_t len = below(2) ? pick_length(MAX_IO) : pick_length(2 * UNIT);

	m = m == 3 ? 2 : m; /* punching is the interesting one: twice as often */
	if (off + len > max_size)
		len = max_size - off;
	logop("fallocate %s %s %" PRIu64 "+%" PRIu64, names[m], f->path, off, len);
	if (fallocate(f->fd, modes[m], (off_t)off, (off_t)len) != 0) {
		if (errno == ENOSPC && enospc_ok) {
			refused();
			return;
		}
		die("fallocate %s: %s", names[m], strerror(errno));
	}
	if (modes[m] & FALLOC_FL_PUNCH_HOLE) {
		if (off < f->size)
			memset(f->shadow + off, 0,
			       (off + len > f->size ? f->size : off + len) - off);
	} else if (m == 0 && off + len > f->size) {
		f->size = off + len;
	}
}

/* copy_file_range, often whole pages so that kmemfs shares them */
static void do_copy(void)
{
	struct xfile *src = &files[below(2)], *dst = &files[below(2)];
	uint64_t soff, doff, len, done = 0;

	if (src->size == 0)
		return;
	soff = pick_offset(src->size);
	len = below(3) ? pick_length(2 * UNIT) : pick_length(MAX_IO);
	doff = pick_offset(max_size - 1);
	if (below(2)) { /* the same place in the page: the clone path */
		soff &= ~(uint64_t)(PAGE - 1);
		doff = (doff & ~(uint64_t)(PAGE - 1)) | (soff & (PAGE - 1));
		len = (len + PAGE - 1) & ~(uint64_t)(PAGE - 1);
	}
	if (doff + len > max_size)
		len = max_size - doff;
	if (src == dst && soff < doff + len && doff < soff + len)
		return; /* overlapping ranges of one file: EINVAL by definition */
	logop("copy %s %" PRIu64 " -> %s %" PRIu64 " +%" PRIu64, src->path, soff, dst->path,
	      doff, len);
	/* the kernel stops at the source's end as it was at the call, and may
	 * copy less than asked: go on from where it stopped */
	uint64_t expect = src->size - soff < len ? src->size - soff : len;
	while (done < expect) {
		loff_t so = (loff_t)(soff + done), dof = (loff_t)(doff + done);
		ssize_t n = copy_file_range(src->fd, &so, dst->fd, &dof, expect - done, 0);

		if (n < 0 && errno == ENOSPC && enospc_ok) {
			refused();
			break; /* what was copied so far stays copied */
		}
		if (n < 0)
			die("copy_file_range: %s", strerror(errno));
		if (n == 0)
			die("copy_file_range stopped after %" PRIu64 " of %" PRIu64 " bytes",
			    done, expect);
		done += (uint64_t)n;
	}
	memmove(dst->shadow + doff, src->shadow + soff, done);
	if (done && doff + done > dst->size)
		dst->size = doff + done;
}

/* SEEK_DATA/SEEK_HOLE: nothing but zeros may be skipped, answers stay in the file */
static void do_seek(struct xfile *f)
{
	uint64_t off = pick_offset(f->size + PAGE);
	off_t data = lseek(f->fd, (off_t)off, SEEK_DATA);
	off_t hole = lseek(f->fd, (off_t)off, SEEK_HOLE);

	logop("seek %s %" PRIu64 ": data %jd hole %jd", f->path, off, (intmax_t)data,
	      (intmax_t)hole);
	if (off >= f->size) {
		if (data != -1 || hole != -1)
			die("SEEK_DATA/SEEK_HOLE at or past EOF must fail with ENXIO");
		return;
	}
	if (hole < 0 || (uint64_t)hole < off || (uint64_t)hole > f->size)
		die("SEEK_HOLE from %" PRIu64 " gave %jd (size %" PRIu64 ")", off,
		    (intmax_t)hole, f->size);
	uint64_t end = data < 0 ? f->size : (uint64_t)data;
	if (data < 0 && errno != ENXIO)
		die("SEEK_DATA: %s", strerror(errno));
	if (data >= 0 && ((uint64_t)data < off || (uint64_t)data >= f->size))
		die("SEEK_DATA from %" PRIu64 " gave %jd (size %" PRIu64 ")", off,
		    (intmax_t)data, f->size);
	for (uint64_t i = off; i < end; i++)
		if (f->shadow[i])
			die("SEEK_DATA from %" PRIu64 " skipped data at %" PRIu64, off, i);
}

static void open_file(struct xfile *f, int extra_flags)
{
	f->fd = open(f->path, O_RDWR | O_CREAT | extra_flags, 0644);
	f->dfd = open(f->path, O_RDWR | O_DIRECT);
	if (f->fd < 0 || f->dfd < 0)
		die("open %s: %s", f->path, strerror(errno));
}

static void do_sync_or_reopen(struct xfile *f)
{
	switch (below(3)) {
	case 0:
		logop("fsync %s", f->path);
		if (fsync(f->fd) != 0)
			die("fsync: %s", strerror(errno));
		break;
	case 1:
		logop("fdatasync %s", f->path);
		if (fdatasync(f->dfd) != 0)
			die("fdatasync: %s", strerror(errno));
		break;
	default:
		logop("reopen %s", f->path);
		if (close(f->fd) != 0 || close(f->dfd) != 0)
			die("close: %s", strerror(errno));
		open_file(f, 0);
	}
}

/* the whole of F, and its size, against its shadow */
static void verify_file(const struct xfile *f, const char *when)
{
	check_size(f);
	for (uint64_t off = 0; off < f->size; off += MAX_IO) {
		uint64_t len = f->size - off < MAX_IO ? f->size - off : MAX_IO;
		ssize_t n = pread(f->fd, readbuf, len, (off_t)off);

		if (n != (ssize_t)len)
			die("verify read at %" PRIu64 ": %zd", off, n);
		compare(f, readbuf, off, len, when);
	}
}

static void verify_all(const char *when)
{
	for (int i = 0; i < 2; i++)
		verify_file(&files[i], when);
}

static int save_shadow(const struct xfile *f, const char *path)
{
	FILE *out = fopen(path, "w");

	if (!out || fwrite(f->shadow, 1, f->size, out) != f->size || fclose(out) != 0) {
		fprintf(stderr, "fsexercise: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- -T: threads sharing one file ---------------------------------------- */

struct striped {
	int fd;
	uint64_t size, stripe;
	unsigned nthreads;
	uint64_t nops;
	uint8_t *shadow; /* each byte written only by the thread owning its stripe */
};

struct worker {
	struct striped *sf;
	unsigned id;
	uint64_t rng;
	pthread_t thread;
};

static uint64_t rnd_r(uint64_t *st)
{
	*st ^= *st >> 12;
	*st ^= *st << 25;
	*st ^= *st >> 27;
	return *st * 2685821657736338717ull;
}

static void __attribute__((noreturn)) thread_die(const struct worker *w, const char *what,
						 uint64_t off, uint64_t len, const char *why)
{
	fprintf(stderr, "fsexercise: FAILED: thread %u, %s %" PRIu64 "+%" PRIu64
		" (stripes of %" PRIu64 " bytes): %s\n", w->id, what, off, len, w->sf->stripe, why);
	exit(1);
}

static void *striped_worker(void *arg)
{
	struct worker *w = arg;
	struct striped *sf = w->sf;
	uint64_t nstripes = sf->size / sf->stripe;
	uint8_t *buf = malloc(sf->stripe);

	if (!buf)
		thread_die(w, "malloc", 0, 0, "out of memory");
	for (uint64_t i = 0; i < sf->nops; i++) {
		/* one of this thread's stripes, then a piece of it */
		uint64_t k = rnd_r(&w->rng) % (nstripes / sf->nthreads) * sf->nthreads + w->id;
		uint64_t base = k * sf->stripe;
		uint64_t off = base + rnd_r(&w->rng) % sf->stripe;
		uint64_t len = 1 + rnd_r(&w->rng) % (base + sf->stripe - off);
		unsigned what = (unsigned)(rnd_r(&w->rng) % 10);
		char why[128];
		ssize_t n;

		if (what < 5) {
			for (uint64_t j = 0; j < len; j++)
				buf[j] = (uint8_t)rnd_r(&w->rng);
			n = pwrite(sf->fd, buf, len, (off_t)off);
			if (n != (ssize_t)len)
				thread_die(w, "pwrite", off, len, n < 0 ? strerror(errno) : "short");
			memcpy(sf->shadow + off, buf, len);
		} else if (what < 8) {
			n = pread(sf->fd, buf, len, (off_t)off);
			if (n != (ssize_t)len)
				thread_die(w, "pread", off, len, n < 0 ? strerror(errno) : "short");
			for (uint64_t j = 0; j < len; j++) {
				if (buf[j] == sf->shadow[off + j])
					continue;
				snprintf(why, sizeof(why), "byte at %" PRIu64 " is 0x%02x, "
					 "expected 0x%02x", off + j, buf[j], sf->shadow[off + j]);
				thread_die(w, "pread", off, len, why);
			}
		} else if (what < 9) {
			if (fallocate(sf->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      (off_t)off, (off_t)len) != 0)
				thread_die(w, "punch", off, len, strerror(errno));
			memset(sf->shadow + off, 0, len);
		} else if (fdatasync(sf->fd) != 0) {
			thread_die(w, "fdatasync", 0, 0, strerror(errno));
		}
	}
	free(buf);
	return NULL;
}

static int run_striped(const char *dir, uint64_t seed, uint64_t nops, unsigned nthreads)
{
	static const uint64_t stripes[] = { 1000, 3000, 5000, 9000 };
	struct striped sf = { .nthreads = nthreads, .nops = nops };
	struct worker *w = calloc(nthreads, sizeof(*w));
	char path[4096];

	rng_state = seed ? seed : 1;
	sf.stripe = stripes[below(4)];
	sf.size = max_size / (sf.stripe * nthreads) * (sf.stripe * nthreads);
	snprintf(path, sizeof(path), "%s/fx.%" PRIu64 ".striped", dir, seed);
	sf.fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	sf.shadow = calloc(1, sf.size);
	readbuf = malloc(MAX_IO);
	if (!w || !sf.shadow || !readbuf || sf.fd < 0 || ftruncate(sf.fd, (off_t)sf.size) != 0) {
		fprintf(stderr, "fsexercise: cannot set up %s: %s\n", path, strerror(errno));
		return 2;
	}
	printf("fsexercise: seed %" PRIu64 ", %u threads x %" PRIu64 " operations on one file "
	       "of %" PRIu64 " bytes in stripes of %" PRIu64 "\n", seed, nthreads, nops, sf.size,
	       sf.stripe);
	fflush(stdout);
	for (unsigned i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ &sf, i, rnd() | 1, 0 };
		if (pthread_create(&w[i].thread, NULL, striped_worker, &w[i]) != 0) {
			fprintf(stderr, "fsexercise: cannot start a thread\n");
			return 2;
		}
	}
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(w[i].thread, NULL);
	/* all threads done: the whole file against the whole shadow */
	struct xfile whole = { .fd = sf.fd, .shadow = sf.shadow, .size = sf.size };
	snprintf(whole.path, sizeof(whole.path), "%s", path);
	free(w);
	verify_file(&whole, "final check");
	close(sf.fd);
	free(sf.shadow);
	printf("fsexercise: %u x %" PRIu64 " operations passed\n", nthreads, nops);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32), nops = 20000;
	uint64_t every = 500, from = UINT64_MAX;
	const char *prefix = NULL;
	unsigned nthreads = 0;
	int c;

	while ((c = getopt(argc, argv, "s:n:S:c:F:ET:o:")) != -1) {
		switch (c) {
		case 's': seed = number(optarg); break;
		case 'n': nops = number(optarg); break;
		case 'S': max_size = number(optarg); break;
		case 'c': every = number(optarg); break;
		case 'F': from = number(optarg); break;
		case 'E': enospc_ok = true; break;
		case 'T': nthreads = (unsigned)number(optarg); break;
		case 'o': prefix = optarg; break;
		default:
			fprintf(stderr, "usage: fsexercise [-s SEED] [-n OPS] [-S MAXSIZE] "
					"[-E] [-o PREFIX] DIR\n");
			return 2;
		}
	}
	if (optind != argc - 1 || max_size < 2 * MAX_IO || max_size > (1ull << 32) ||
	    every == 0) {
		fprintf(stderr, "usage: fsexercise [-s SEED] [-n OPS] [-S MAXSIZE "
				"(512K..4G)] [-E] [-o PREFIX] DIR\n");
		return 2;
	}
	if (nthreads)
		return nthreads > 64 ? 2 : run_striped(argv[optind], seed, nops, nthreads);
	rng_state = seed ? seed : 1;
	printf("fsexercise: seed %" PRIu64 ", %" PRIu64 " operations, files up to %" PRIu64
	       " bytes\n", seed, nops, max_size);
	fflush(stdout);
	if (posix_memalign((void **)&iobuf, PAGE, MAX_IO) || !(readbuf = malloc(MAX_IO))) {
		fprintf(stderr, "fsexercise: out of memory\n");
		return 2;
	}
	for (int i = 0; i < 2; i++) {
		snprintf(files[i].path, sizeof(files[i].path), "%s/fx.%" PRIu64 ".%c",
			 argv[optind], seed, 'a' + i);
		files[i].shadow = calloc(1, max_size);
		if (!files[i].shadow) {
			fprintf(stderr, "fsexercise: out of memory\n");
			return 2;
		}
		open_file(&files[i], O_TRUNC);
	}
	for (op_no = 0; op_no < nops; op_no++) {
		struct xfile *f = &files[below(2)];
		unsigned what = (unsigned)below(100);

		if (what < 22)
			do_write(f, false);
		else if (what < 30)
			do_write(f, true);
		else if (what < 46)
			do_read(f, false);
		else if (what < 54)
			do_read(f, true);
		else if (what < 58)
			do_mmap_write(f);
		else if (what < 63)
			do_truncate(f);
		else if (what < 73)
			do_fallocate(f);
		else if (what < 85)
			do_copy();
		else if (what < 92)
			do_seek(f);
		else if (what < 95)
			do_sync_or_reopen(f);
		else
			check_size(f);
		if (op_no % every == every - 1 || op_no >= from)
			verify_all("periodic check");
	}
	verify_all("final check");
	if (prefix) {
		char path[4096];

		for (int i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "%s.%c", prefix, 'a' + i);
			if (save_shadow(&files[i], path) < 0)
				return 2;
		}
	}
	printf("fsexercise: %" PRIu64 " operations passed; sizes %" PRIu64 " and %" PRIu64,
	       nops, files[0].size, files[1].size);
	if (enospc_ok)
		printf("; %" PRIu64 " refused with ENOSPC", n_enospc);
	printf("\n");
	return 0;
}
