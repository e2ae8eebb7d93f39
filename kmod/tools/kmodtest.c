// SPDX-License-Identifier: BSD-3-Clause
/*
 * kmodtest -- drive kmemfs.ko from user space for the VM tests (plain C).
 *
 *   kmodtest attach             unbind dax0.0 from device_dax, ATTACH, online blocks
 *   kmodtest info               (re)attach and print geometry and QUERY counters
 *   kmodtest lend U N           lend hot units U..U+N-1   (N = "all": every unit)
 *   kmodtest reclaim U N        reclaim them
 *   kmodtest write U N SEED     fill units through the fd mapping (MAP_SYNC)
 *   kmodtest check U N SEED     verify the fill
 *   kmodtest zero U N           verify all zeroes
 *   kmodtest scan U N WORD      count 8-byte words equal to WORD (hex)
 *   kmodtest sigbus U           a child touching unit U must die of SIGBUS
 *   kmodtest headrw             write()/read() and mmap of the head (offset 0)
 *   kmodtest fill MIB WORD [FLAG RELEASE]
 *                               allocate MIB on node 1 (MPOL_BIND), fill; with
 *                               FLAG: create it, wait for RELEASE, verify, free
 *   kmodtest pin [--last] FLAG  fill node 1 (MPOL_BIND), keep one page in each of
 *                               node 1's memory blocks and pin it with vmsplice()
 *                               into a pipe never read (the kernel cannot migrate
 *                               it, so offlining the block cannot finish); free
 *                               the rest, create FLAG, wait to be killed. With
 *                               --last only node 1's highest block is pinned: a
 *                               detach offlines the others first, then fails
 *   kmodtest detach             DETACH and bind dax0.0 to device_dax again
 *   kmodtest daxcheck U N SEED  verify the fill through /dev/dax0.0 (after detach)
 *   kmodtest attach-busy        ATTACH while device_dax owns dax0.0 must be EBUSY
 *   kmodtest bad                every malformed or foreign request fails cleanly
 *   kmodtest memfree [NODE]     node's MemFree in kB (default 1)
 *   kmodtest bench U N          time lend and reclaim of N units, 3 rounds
 *   kmodtest node1 CMD ARGS...  run CMD with its memory, page cache included,
 *                               bound to node 1 (set_mempolicy MPOL_BIND)
 *   kmodtest mapread FILE GO OUT  mmap FILE, wait for the file GO to exist, then
 *                               copy the mapping to OUT (page faults, no read(),
 *                               so no attribute check can wait before them)
 *   kmodtest lockedunit         the first lent unit holding a locked page
 *                               (/proc/kpageflags): "lockedunit=U locked=N"
 *
 * Every command but attach/detach/daxcheck/memfree/fill/node1/mapread re-attaches (the
 * module answers reattached=1 with a new fd): the attachment outlives us.
 * Exit status 0 on success, 1 on a failed check, 2 on a usage/system error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../include/kmemfs/uapi.h"

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif
#define MPOL_BIND 2

#define DAX "dax0.0"
#define DAXSYS "/sys/bus/dax/devices/" DAX
#define UNIT KMEMFS_UNIT_SIZE

static struct kmemfs_attach geo;
/* QUERY bitmap size for print_query: 64 blocks of 128 MiB */
#define QUERY_BITS (64 * 32)
static int ctl = -1;

static void die(const char *what)
{
	fprintf(stderr, "kmodtest: %s: %s\n", what, strerror(errno));
	exit(2);
}

static unsigned long long read_num(const char *path)
{
	char buf[64] = "";
	FILE *f = fopen(path, "r");

	if (!f || !fgets(buf, sizeof(buf), f))
		die(path);
	fclose(f);
	return strtoull(buf, NULL, 0);
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	int rc;

	if (fd < 0)
		return -1;
	rc = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return rc;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* memfree_kb -- MemFree of NODE in kB, -1 if it has no memory */
static long memfree_kb(int node)
{
	char path[96], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/meminfo", node);
	f = fopen(path, "r");
	if (!f)
		return -1; /* the node has no memory (any more) */
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "MemFree:"))
			kb = strtol(strstr(line, "MemFree:") + 8, NULL, 10);
	fclose(f);
	return kb;
}

static void open_ctl(void)
{
	ctl = open("/dev/" KMEMFS_DEV_NAME, O_RDWR);
	if (ctl < 0)
		die("/dev/kmemfs");
}

static int do_attach(void)
{
	memset(&geo, 0, sizeof(geo));
	geo.version = KMEMFS_UAPI_VERSION;
	geo.phys_start = read_num(DAXSYS "/resource");
	geo.size = read_num(DAXSYS "/size");
	geo.nid = (int)read_num(DAXSYS "/target_node");
	geo.unit_size = UNIT;
	return ioctl(ctl, KMEMFS_IOC_ATTACH, &geo);
}

static void print_geo(void)
{
	printf("phys_start=%#llx size=%llu nid=%d hot_start=%#llx hot_end=%#llx "
	       "first_block=%llu nr_blocks=%llu block_size=%llu units=%llu reattached=%u fd=%d\n",
	       (unsigned long long)geo.phys_start, (unsigned long long)geo.size, geo.nid,
	       (unsigned long long)geo.hot_start, (unsigned long long)geo.hot_end,
	       (unsigned long long)geo.first_block, (unsigned long long)geo.nr_blocks,
	       (unsigned long long)geo.block_size,
	       (unsigned long long)((geo.hot_end - geo.hot_start) / UNIT), geo.reattached, geo.fd);
}

static unsigned long long nr_units(void)
{
	return (geo.hot_end - geo.hot_start) / UNIT;
}

static unsigned long long unit_off(unsigned long long u)
{
	return geo.hot_start - geo.phys_start + u * UNIT;
}

/* reattach -- get the fd of an attached device (the module must say reattached) */
static void reattach(void)
{
	open_ctl();
	if (do_attach())
		die("ATTACH (reattach)");
	if (!geo.reattached) {
		fprintf(stderr, "kmodtest: device was not attached before\n");
		exit(1);
	}
}

static char *map_dev(void)
{
	char *p = mmap(NULL, geo.size, PROT_READ | PROT_WRITE,
		       MAP_SHARED_VALIDATE | MAP_SYNC, geo.fd, 0);

	if (p == MAP_FAILED)
		die("mmap MAP_SYNC of the device file");
	return p;
}

static int online_blocks(void)
{
	char path[128], st[32];
	unsigned long long b;
	int bad = 0;

	for (b = geo.first_block; b < geo.first_block + geo.nr_blocks; b++) {
		FILE *f;

		snprintf(path, sizeof(path), "/sys/devices/system/memory/memory%llu/state", b);
		f = fopen(path, "r");
		if (!f || !fgets(st, sizeof(st), f))
			die(path);
		fclose(f);
		if (!strncmp(st, "online", 6))
			continue;
		if (write_str(path, "online_movable")) {
			fprintf(stderr, "kmodtest: online_movable > %s: %s\n", path, strerror(errno));
			bad = 1;
		}
	}
	return bad;
}

static int query(struct kmemfs_query *q, uint64_t *bits, unsigned long long nbits)
{
	memset(q, 0, sizeof(*q));
	q->phys_start = geo.phys_start;
	q->bitmap_addr = (uintptr_t)bits;
	q->bitmap_bits = nbits;
	return ioctl(ctl, KMEMFS_IOC_QUERY, q);
}

/*
 * print_query -- QUERY's counters, then per memory block how many of its
 * units are lent ("lent units per block: memory33:20/32 ...")
 */
static void print_query(void)
{
	unsigned long long per = geo.block_size / UNIT, nb = geo.nr_blocks, b, u;
	static uint64_t bits[QUERY_BITS / 64];
	struct kmemfs_query q;

	if (query(&q, NULL, 0))
		die("QUERY");
	printf("units=%llu lent=%llu held=%llu offline=%llu lend_events=%llu "
	       "reclaim_events=%llu reclaim_failures=%llu lend_ms=%.1f reclaim_ms=%.1f\n",
	       (unsigned long long)q.nr_units, (unsigned long long)q.units_lent,
	       (unsigned long long)q.units_held, (unsigned long long)q.units_offline,
	       (unsigned long long)q.lend_events, (unsigned long long)q.reclaim_events,
	       (unsigned long long)q.reclaim_failures, q.lend_ns / 1e6, q.reclaim_ns / 1e6);
	if (!per || q.nr_units > QUERY_BITS || query(&q, bits, QUERY_BITS))
		return;
	printf("lent units per block:");
	for (b = 0; b < nb; b++) {
		unsigned long long lent = 0;

		for (u = b * per; u < (b + 1) * per && u < q.nr_units; u++)
			lent += bits[u / 64] >> (u % 64) & 1;
		printf(" memory%llu:%llu/%llu", geo.first_block + b, lent, per);
	}
	printf("\n");
}

static int range_op(unsigned long cmd, unsigned long long u, unsigned long long n,
		    unsigned long long *done)
{
	struct kmemfs_range r = { .phys_start = geo.phys_start };
	int rc;

	r.dev_offset = unit_off(u);
	r.len = n * UNIT;
	rc = ioctl(ctl, cmd, &r);
	if (done)
		*done = r.done;
	return rc;
}

static void parse_units(char **argv, unsigned long long *u, unsigned long long *n)
{
	*u = strtoull(argv[0], NULL, 0);
	*n = !strcmp(argv[1], "all") ? nr_units() - *u : strtoull(argv[1], NULL, 0);
	if (*u + *n > nr_units()) {
		fprintf(stderr, "kmodtest: units %llu+%llu beyond %llu\n", *u, *n, nr_units());
		exit(2);
	}
}

static uint64_t word_at(uint64_t seed, unsigned long long off)
{
	return (seed * 0x9e3779b97f4a7c15ULL) ^ off;
}

/* fill or check units through a mapping whose offset 0 is device offset base */
static long long pattern(char *map, unsigned long long base_off, unsigned long long u,
			 unsigned long long n, uint64_t seed, int write)
{
	unsigned long long off, end = unit_off(u + n);
	long long bad = 0;

	for (off = unit_off(u); off < end; off += 8) {
		uint64_t *w = (uint64_t *)(map + off - base_off);

		if (write)
			*w = word_at(seed, off);
		else if (*w != word_at(seed, off) && bad++ < 3)
			fprintf(stderr, "kmodtest: offset %#llx: %#llx, want %#llx\n", off,
				(unsigned long long)*w, (unsigned long long)word_at(seed, off));
	}
	return bad;
}

static int cmd_sigbus(unsigned long long u)
{
	char *map = map_dev();
	int status;
	pid_t pid = fork();

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		volatile char c = map[unit_off(u) + 4096 + 7];

		(void)c;
		_exit(0);
	}
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) {
		printf("unit %llu: touch is SIGBUS\n", u);
		return 0;
	}
	printf("unit %llu: touch was NOT SIGBUS (status %#x)\n", u, status);
	return 1;
}

static int cmd_headrw(void)
{
	char buf[64] = "KMEMFS-HEAD-WRITE", got[64] = "";
	char *map = map_dev();
	off_t off = 8192;

	if (pwrite(geo.fd, buf, sizeof(buf), off) != sizeof(buf))
		die("pwrite head");
	if (memcmp(map + off, buf, sizeof(buf))) {
		printf("head: mmap does not see write()\n");
		return 1;
	}
	memcpy(map + off + 100, "MAPPED", 6);
	if (pread(geo.fd, got, 6, off + 100) != 6 || memcmp(got, "MAPPED", 6)) {
		printf("head: read() does not see the mapping\n");
		return 1;
	}
	if (posix_fallocate(geo.fd, 0, geo.size)) {
		printf("head: posix_fallocate over the device failed\n");
		return 1;
	}
	printf("head: write/read/mmap/fallocate agree\n");
	return 0;
}

/*
 * cmd_fill -- bind to node 1, fill MIB with WORD. With FLAG and RELEASE: then
 * create FLAG, wait for RELEASE to exist, and verify the fill (the pages may
 * have been migrated meanwhile) before freeing it.
 */
static int cmd_fill(unsigned long long mib, uint64_t word, const char *flag,
		    const char *release)
{
	unsigned long mask = 1UL << 1;
	size_t len = mib << 20, i, bad = 0;
	long before = memfree_kb(1), during;
	uint64_t *p;

	if (syscall(SYS_set_mempolicy, MPOL_BIND, &mask, 8 * sizeof(mask)))
		die("set_mempolicy MPOL_BIND node 1");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap anon");
	for (i = 0; i < len / 8; i++)
		p[i] = word;
	during = memfree_kb(1);
	printf("fill: %llu MiB with %#llx on node 1: MemFree %ld -> %ld kB\n", mib,
	       (unsigned long long)word, before, during);
	if (before - during < (long)(mib << 10) * 9 / 10) {
		printf("fill: the memory did not come from node 1\n");
		return 1;
	}
	if (flag) {
		close(open(flag, O_WRONLY | O_CREAT, 0644));
		while (access(release, F_OK))
			usleep(100000);
		for (i = 0; i < len / 8; i++)
			bad += p[i] != word;
		printf("fill: on release %zu of %zu words had changed; node 1 MemFree %ld kB\n",
		       bad, len / 8, memfree_kb(1));
	}
	munmap(p, len);
	return bad != 0;
}

#define PIN_MAX 64 /* memory blocks of node 1 we can pin (128 MiB each) */

/* on_node1 -- move_pages() query: are all N pages at ADDR[] on node 1? */
static int on_node1(void **addr, int n)
{
	int status[PIN_MAX], i, bad = 0;

	if (syscall(SYS_move_pages, 0, (unsigned long)n, addr, NULL, status, 0))
		die("move_pages query");
	for (i = 0; i < n; i++)
		if (status[i] != 1) {
			printf("pin: page %p is on node %d, not 1\n", addr[i], status[i]);
			bad = 1;
		}
	return bad;
}

/* last_block -- the highest memory block of node 1, -1 if none */
static long long last_block(void)
{
	DIR *d = opendir("/sys/devices/system/node/node1");
	struct dirent *e;
	long long last = -1;
	unsigned long long b;

	if (!d)
		die("/sys/devices/system/node/node1");
	while ((e = readdir(d)))
		if (sscanf(e->d_name, "memory%llu", &b) == 1 && (long long)b > last)
			last = (long long)b;
	closedir(d);
	return last;
}

/*
 * cmd_pin -- bind to node 1 and fill all but 32 MiB of its free memory, find
 * through /proc/self/pagemap one page in each of node 1's memory blocks (with
 * LAST: only in its highest block), vmsplice() those pages into a pipe nobody
 * reads (the pipe holds a reference from get_user_pages, so migrating them
 * fails with EAGAIN and offline_pages retries until a signal), free
 * everything else, create FLAG, and sleep until killed. Prints the blocks
 * pinned and the blocks of node 1 it left unpinned.
 */
static int cmd_pin(const char *flag, int last)
{
	unsigned long mask = 1UL << 1, bsize, nr, i;
	unsigned long long blocks[PIN_MAX];
	void *addr[PIN_MAX];
	struct iovec iov[PIN_MAX];
	char buf[64] = "";
	long before = memfree_kb(1);
	int npin = 0, pfd[2], pm, j, missed = 0;
	size_t len;
	char *p;
	FILE *f;
	DIR *d;
	struct dirent *e;
	long long only = last ? last_block() : -1;

	if (last && only < 0) {
		printf("pin: node 1 has no memory blocks\n");
		return 1;
	}
	f = fopen("/sys/devices/system/memory/block_size_bytes", "r");
	if (!f || !fgets(buf, sizeof(buf), f))
		die("block_size_bytes");
	fclose(f);
	bsize = strtoul(buf, NULL, 16) / 4096; /* pages per block */
	if (before < 64 * 1024) {
		printf("pin: node 1 has only %ld kB free\n", before);
		return 1;
	}
	len = (size_t)(before - 32 * 1024) << 10;
	nr = len / 4096;
	if (syscall(SYS_set_mempolicy, MPOL_BIND, &mask, 8 * sizeof(mask)))
		die("set_mempolicy MPOL_BIND node 1");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap anon");
	for (i = 0; i < nr; i++)
		p[i * 4096] = (char)(i | 1);
	pm = open("/proc/self/pagemap", O_RDONLY);
	if (pm < 0)
		die("/proc/self/pagemap");
	for (i = 0; i < nr; i++) {
		static uint64_t ents[512];
		uint64_t ent;
		unsigned long long blk;

		if (i % 512 == 0) {
			size_t want = (nr - i < 512 ? nr - i : 512) * 8;

			if (pread(pm, ents, want, (off_t)(((uintptr_t)p / 4096 + i) * 8)) !=
			    (ssize_t)want)
				die("pagemap read");
		}
		ent = ents[i % 512];
		if (!(ent >> 63) || !(ent & ((1ULL << 55) - 1)))
			continue; /* not present, or no PFN (not root) */
		blk = (ent & ((1ULL << 55) - 1)) / bsize;
		if (last && blk != (unsigned long long)only)
			continue;
		for (j = 0; j < npin && blocks[j] != blk; j++)
			;
		if (j < npin || npin == PIN_MAX)
			continue;
		blocks[npin] = blk;
		addr[npin] = p + i * 4096;
		npin++;
	}
	close(pm);
	if (!npin && last) {
		printf("pin: no page of the fill is in memory%lld, node 1's last block\n", only);
		return 1;
	}
	if (!npin) {
		printf("pin: no page of the fill has a PFN (pagemap needs CAP_SYS_ADMIN)\n");
		return 1;
	}
	if (on_node1(addr, npin))
		return 1;

	if (pipe(pfd))
		die("pipe");
	if (fcntl(pfd[1], F_SETPIPE_SZ, 1 << 20) < 0)
		die("F_SETPIPE_SZ");
	for (j = 0; j < npin; j++) {
		iov[j].iov_base = addr[j];
		iov[j].iov_len = 4096;
	}
	/* no SPLICE_F_GIFT: the pipe takes page references, the pages stay ours */
	if (vmsplice(pfd[1], iov, (unsigned long)npin, 0) != (ssize_t)npin * 4096)
		die("vmsplice");
	/* free the fill around the pinned pages (which stay mapped) */
	for (i = 0; i < nr;) {
		unsigned long run = 0;

		while (i + run < nr) {
			for (j = 0; j < npin && addr[j] != p + (i + run) * 4096; j++)
				;
			if (j < npin)
				break;
			run++;
		}
		if (run && madvise(p + i * 4096, run * 4096, MADV_DONTNEED))
			die("madvise DONTNEED");
		i += run + 1;
	}
	if (on_node1(addr, npin))
		return 1;

	printf("pin: fill mapping at %lx\n", (unsigned long)(uintptr_t)p);
	printf("pin: %d pages on node 1 pinned by vmsplice, in blocks:", npin);
	for (j = 0; j < npin; j++)
		printf(" memory%llu", blocks[j]);
	printf("\n");
	/* node 1's blocks we have no page in (a block of held file pages only) */
	d = opendir("/sys/devices/system/node/node1");
	if (!d)
		die("/sys/devices/system/node/node1");
	while ((e = readdir(d))) {
		unsigned long long b;

		if (sscanf(e->d_name, "memory%llu", &b) != 1)
			continue;
		for (j = 0; j < npin && blocks[j] != b; j++)
			;
		if (j == npin) {
			printf("pin: no page pinned in %s of node 1%s\n", e->d_name,
			       last ? " (--last)" : "");
			missed++;
		}
	}
	closedir(d);
	printf("pin: node 1 MemFree %ld kB before the fill, %ld kB now; %s %d blocks\n",
	       before, memfree_kb(1), last ? "left unpinned" : "missed", missed);
	close(open(flag, O_WRONLY | O_CREAT, 0644));
	for (;;)
		pause();
}

static int expect(const char *what, int rc, int want_errno)
{
	int e = errno;

	if (rc == 0 || e != want_errno) {
		printf("BAD %s: rc=%d errno=%s, want %s\n", what, rc, rc ? strerror(e) : "-",
		       strerror(want_errno));
		return 1;
	}
	printf("ok  %s: %s\n", what, strerror(e));
	return 0;
}

/* cmd_bad -- needs unit 0 held and unit 4 lent on entry */
static int cmd_bad(void)
{
	struct kmemfs_attach a = geo, keep = geo;
	struct kmemfs_range r = { .phys_start = geo.phys_start };
	struct kmemfs_detach d = { .phys_start = geo.phys_start + 4096, .size = geo.size };
	struct kmemfs_query q;
	int bad = 0;

	r.dev_offset = unit_off(0) + 4096, r.len = UNIT;
	bad |= expect("lend unaligned offset", ioctl(ctl, KMEMFS_IOC_LEND, &r), EINVAL);
	r.dev_offset = unit_off(0), r.len = UNIT / 2;
	bad |= expect("lend unaligned length", ioctl(ctl, KMEMFS_IOC_LEND, &r), EINVAL);
	r.dev_offset = unit_off(nr_units()), r.len = UNIT;
	bad |= expect("lend beyond the hot part", ioctl(ctl, KMEMFS_IOC_LEND, &r), EINVAL);
	r.dev_offset = geo.size - UNIT / 2, r.len = UNIT;
	bad |= expect("reclaim beyond the device", ioctl(ctl, KMEMFS_IOC_RECLAIM, &r), EINVAL);
	r.dev_offset = unit_off(0), r.len = 0;
	bad |= expect("lend of length 0", ioctl(ctl, KMEMFS_IOC_LEND, &r), EINVAL);
	r.dev_offset = unit_off(0), r.len = (unsigned long long)-UNIT;
	bad |= expect("lend wrapping around", ioctl(ctl, KMEMFS_IOC_LEND, &r), EINVAL);
	if (geo.hot_start > geo.phys_start) {
		r.dev_offset = 0, r.len = UNIT;
		bad |= expect("lend of the head", ioctl(ctl, KMEMFS_IOC_LEND, &r), EINVAL);
	}
	r.dev_offset = unit_off(0), r.len = UNIT;
	bad |= expect("reclaim of a held unit", ioctl(ctl, KMEMFS_IOC_RECLAIM, &r), EALREADY);
	r.dev_offset = unit_off(4);
	bad |= expect("lend of a lent unit", ioctl(ctl, KMEMFS_IOC_LEND, &r), EALREADY);
	r.phys_start = geo.phys_start + UNIT;
	bad |= expect("lend on a device not attached", ioctl(ctl, KMEMFS_IOC_LEND, &r), ENODEV);
	r.phys_start = geo.phys_start, r.reserved[0] = 1;
	bad |= expect("lend with reserved bits", ioctl(ctl, KMEMFS_IOC_LEND, &r), EINVAL);

	a.version = 99;
	bad |= expect("attach with a wrong version", ioctl(ctl, KMEMFS_IOC_ATTACH, &a), EINVAL);
	a = keep, a.phys_start += 512;
	bad |= expect("attach unaligned", ioctl(ctl, KMEMFS_IOC_ATTACH, &a), EINVAL);
	a = keep, a.unit_size = 2 << 20;
	bad |= expect("attach with 2 MiB units", ioctl(ctl, KMEMFS_IOC_ATTACH, &a), EINVAL);
	a = keep, a.nid = 4000;
	bad |= expect("attach on a bad node", ioctl(ctl, KMEMFS_IOC_ATTACH, &a), EINVAL);
	a = keep, a.phys_start += UNIT, a.size -= UNIT;
	bad |= expect("attach of another range while attached",
		      ioctl(ctl, KMEMFS_IOC_ATTACH, &a), EBUSY);
	bad |= expect("detach of a device not attached", ioctl(ctl, KMEMFS_IOC_DETACH, &d),
		      ENODEV);
	memset(&q, 0, sizeof(q));
	q.phys_start = geo.phys_start, q.bitmap_bits = 64;
	bad |= expect("query with bits but no buffer", ioctl(ctl, KMEMFS_IOC_QUERY, &q), EINVAL);
	q.bitmap_addr = 8, q.bitmap_bits = 64;
	bad |= expect("query to a bad address", ioctl(ctl, KMEMFS_IOC_QUERY, &q), EFAULT);
	bad |= expect("unknown ioctl", ioctl(ctl, _IO('k', 0x7f)), ENOTTY);
	return bad;
}

static int cmd_bench(unsigned long long u, unsigned long long n)
{
	long before, mid, after;
	unsigned long long done;
	double t0, t1, t2;
	int round;

	for (round = 0; round < 3; round++) {
		before = memfree_kb(1);
		t0 = now();
		if (range_op(KMEMFS_IOC_LEND, u, n, NULL))
			die("LEND");
		t1 = now();
		mid = memfree_kb(1);
		if (range_op(KMEMFS_IOC_RECLAIM, u, n, &done))
			die("RECLAIM");
		t2 = now();
		after = memfree_kb(1);
		printf("bench: %llu MiB: lend %.3f s (MemFree %ld -> %ld kB), reclaim+zero %.3f s "
		       "(-> %ld kB)\n", n * 4, t1 - t0, before, mid, t2 - t1, after);
	}
	return 0;
}

static int cmd_mapread(const char *file, const char *go, const char *out)
{
	int fd = open(file, O_RDONLY), ofd;
	off_t size = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);
	char *map;

	if (size <= 0)
		die(file);
	map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		die("mmap");
	while (access(go, F_OK))
		usleep(100000);
	ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (ofd < 0 || write(ofd, map, (size_t)size) != size)
		die(out);
	close(ofd);
	return 0;
}

/* cmd_lockedunit -- the first lent unit with a page whose folio is locked */
static int cmd_lockedunit(void)
{
	static uint64_t bits[QUERY_BITS / 64];
	unsigned long long u, i, locked = 0, first = ~0ULL, first_n = 0;
	struct kmemfs_query q;
	int fd = open("/proc/kpageflags", O_RDONLY);

	if (fd < 0)
		die("/proc/kpageflags");
	if (nr_units() > QUERY_BITS || query(&q, bits, QUERY_BITS))
		die("QUERY");
	for (u = 0; u < nr_units(); u++) {
		static uint64_t flags[UNIT / 4096];
		unsigned long long pfn = (geo.hot_start + u * UNIT) / 4096, n = 0;

		if (!(bits[u / 64] >> (u % 64) & 1))
			continue;
		if (pread(fd, flags, sizeof(flags), (off_t)(pfn * 8)) != (ssize_t)sizeof(flags))
			die("pread /proc/kpageflags");
		for (i = 0; i < UNIT / 4096; i++)
			n += flags[i] & 1; /* KPF_LOCKED */
		locked += n;
		if (n && first == ~0ULL)
			first = u, first_n = n;
	}
	close(fd);
	if (first == ~0ULL) {
		printf("no locked page on a lent unit\n");
		return 1;
	}
	printf("lockedunit=%llu locked=%llu (on all lent units: %llu)\n", first,
	       first_n, locked);
	return 0;
}

static int cmd_daxcheck(unsigned long long u, unsigned long long n, uint64_t seed)
{
	long long bad;
	char *map;
	int fd;

	/* geometry as the module reported it when attached */
	open_ctl();
	fd = open("/dev/" DAX, O_RDWR);
	if (fd < 0)
		die("/dev/" DAX);
	map = mmap(NULL, geo.size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		die("mmap /dev/" DAX);
	bad = pattern(map, 0, u, n, seed, 0);
	printf("daxcheck: units %llu+%llu through /dev/%s: %lld bad words\n", u, n, DAX, bad);
	return bad != 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	unsigned long long u = 0, n = 0, done = 0;
	long long bad;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "memfree")) {
		printf("%ld\n", memfree_kb(argc > 2 ? atoi(argv[2]) : 1));
		return 0;
	}
	if (!strcmp(cmd, "fill") && (argc == 4 || argc == 6))
		return cmd_fill(strtoull(argv[2], NULL, 0), strtoull(argv[3], NULL, 16),
				argc == 6 ? argv[4] : NULL, argc == 6 ? argv[5] : NULL);
	if (!strcmp(cmd, "pin") && argc == 3)
		return cmd_pin(argv[2], 0);
	if (!strcmp(cmd, "pin") && argc == 4 && !strcmp(argv[2], "--last"))
		return cmd_pin(argv[3], 1);
	if (!strcmp(cmd, "node1") && argc > 2) {
		unsigned long mask = 1UL << 1;

		if (syscall(SYS_set_mempolicy, MPOL_BIND, &mask, sizeof(mask) * 8))
			die("set_mempolicy MPOL_BIND node 1");
		execvp(argv[2], argv + 2);
		die(argv[2]);
	}
	if (!strcmp(cmd, "mapread") && argc == 5)
		return cmd_mapread(argv[2], argv[3], argv[4]);
	if (!strcmp(cmd, "attach-busy")) {
		/* dax0.0 still bound to device_dax: its range is someone else's */
		struct kmemfs_attach a;
		int bad;

		open_ctl();
		bad = expect("attach of a range device_dax owns", do_attach(), EBUSY);
		a = geo, a.phys_start = 0x100000, a.size = 1 << 20;
		bad |= expect("attach of System RAM", ioctl(ctl, KMEMFS_IOC_ATTACH, &a), EBUSY);
		return bad;
	}
	if (!strcmp(cmd, "attach")) {
		if (write_str("/sys/bus/dax/drivers/device_dax/unbind", DAX) && errno != ENODEV)
			fprintf(stderr, "kmodtest: unbind %s: %s (continuing)\n", DAX,
				strerror(errno));
		open_ctl();
		if (do_attach())
			die("ATTACH");
		print_geo();
		rc = online_blocks();
		print_query();
		return rc;
	}
	if (!strcmp(cmd, "daxcheck") && argc == 5) {
		geo.phys_start = read_num(DAXSYS "/resource");
		geo.size = read_num(DAXSYS "/size");
		geo.hot_start = strtoull(getenv("KMT_HOT_START") ? getenv("KMT_HOT_START") : "0",
					 NULL, 0);
		if (!geo.hot_start) {
			fprintf(stderr, "kmodtest: daxcheck needs KMT_HOT_START\n");
			return 2;
		}
		return cmd_daxcheck(strtoull(argv[2], NULL, 0), strtoull(argv[3], NULL, 0),
				    strtoull(argv[4], NULL, 0));
	}

	reattach();
	if (!strcmp(cmd, "info")) {
		print_geo();
		print_query();
		return 0;
	}
	if (!strcmp(cmd, "detach")) {
		struct kmemfs_detach d = { .phys_start = geo.phys_start, .size = geo.size };

		close(geo.fd);
		if (ioctl(ctl, KMEMFS_IOC_DETACH, &d)) {
			printf("DETACH failed: %s\n", strerror(errno));
			return 1;
		}
		if (write_str("/sys/bus/dax/drivers/device_dax/bind", DAX)) {
			printf("bind %s to device_dax failed: %s\n", DAX, strerror(errno));
			return 1;
		}
		printf("detached; %s bound to device_dax\n", DAX);
		return 0;
	}
	if ((!strcmp(cmd, "lend") || !strcmp(cmd, "reclaim")) && argc == 4) {
		int lend = cmd[0] == 'l';
		double t0 = now();

		parse_units(argv + 2, &u, &n);
		rc = range_op(lend ? KMEMFS_IOC_LEND : KMEMFS_IOC_RECLAIM, u, n, &done);
		printf("%s units %llu+%llu: %s, %llu MiB done in %.3f s\n", cmd, u, n,
		       rc ? strerror(errno) : "ok", done >> 20, now() - t0);
		return rc ? 1 : 0;
	}
	if ((!strcmp(cmd, "write") || !strcmp(cmd, "check")) && argc == 5) {
		parse_units(argv + 2, &u, &n);
		bad = pattern(map_dev(), 0, u, n, strtoull(argv[4], NULL, 0), cmd[0] == 'w');
		if (cmd[0] == 'c')
			printf("check units %llu+%llu: %lld bad words\n", u, n, bad);
		return bad != 0;
	}
	if ((!strcmp(cmd, "zero") || !strcmp(cmd, "scan")) && argc >= 4) {
		uint64_t want = argc > 4 ? strtoull(argv[4], NULL, 16) : 0;
		unsigned long long off, end, hits = 0, nonzero = 0;
		char *map = map_dev();

		parse_units(argv + 2, &u, &n);
		end = unit_off(u + n);
		for (off = unit_off(u); off < end; off += 8) {
			uint64_t w = *(uint64_t *)(map + off);

			hits += w == want;
			nonzero += w != 0;
		}
		if (cmd[0] == 'z') {
			printf("zero units %llu+%llu: %llu non-zero words\n", u, n, nonzero);
			return nonzero != 0;
		}
		printf("scan units %llu+%llu for %#llx: %llu hits\n", u, n,
		       (unsigned long long)want, hits);
		return hits != 0;
	}
	if (!strcmp(cmd, "sigbus") && argc == 3)
		return cmd_sigbus(strtoull(argv[2], NULL, 0));
	if (!strcmp(cmd, "headrw"))
		return cmd_headrw();
	if (!strcmp(cmd, "bad"))
		return cmd_bad();
	if (!strcmp(cmd, "lockedunit"))
		return cmd_lockedunit();
	if (!strcmp(cmd, "bench") && argc == 4) {
		parse_units(argv + 2, &u, &n);
		return cmd_bench(u, n);
	}
	fprintf(stderr, "usage: see the comment at the top of kmod/tools/kmodtest.c\n");
	return 2;
}
