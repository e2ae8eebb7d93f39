// SPDX-License-Identifier: BSD-3-Clause
/*
 * pool.c -- create, open and validate the pmemobj pool.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "pool.h"
#include "log.h"

struct kmfs_time pool_now(void)
{
	struct timespec ts;
	struct kmfs_time t = {0};

	clock_gettime(CLOCK_REALTIME, &ts);
	t.sec = ts.tv_sec;
	t.nsec = (uint32_t)ts.tv_nsec;
	return t;
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': mul = 1ull << 10; end++; break;
	case 'M': mul = 1ull << 20; end++; break;
	case 'G': mul = 1ull << 30; end++; break;
	case 'T': mul = 1ull << 40; end++; break;
	default: return -EINVAL;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0' || (v && mul > UINT64_MAX / v))
		return -EINVAL;
	*out = v * mul;
	return 0;
}

uint64_t pool_page_off(const struct kmfs_pool *p, uint64_t page)
{
	const struct kmfs_arena *a = p->sb->arenas;
	uint32_t lo = 0, hi = p->sb->narenas;

	/* arenas are few and sorted by first_page */
	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;
		if (a[mid].first_page <= page)
			lo = mid;
		else
			hi = mid;
	}
	return a[lo].data_off + ((page - a[lo].first_page) << KMFS_PAGE_SHIFT);
}

bool pool_obj_ok(const struct kmfs_pool *p, uint64_t off, unsigned type,
		 uint64_t size)
{
	PMEMoid oid;

	if (off < 4096 || off >= p->size || (off & 7) || size > p->size - off)
		return false;
	oid.pool_uuid_lo = pmemobj_oid(p->sb).pool_uuid_lo;
	oid.off = off;
	if (pmemobj_type_num(oid) != type)
		return false;
	return pmemobj_alloc_usable_size(oid) >= size;
}

void pool_persist(const struct kmfs_pool *p, const void *addr, size_t len)
{
	pmemobj_persist(p->pop, addr, len);
}

/*
 * Persist a range the daemon wrote into the pool file with pwrite. On tmpfs
 * it already is where a crash of the daemon leaves it, and flushing it through
 * the mapping would first fault every page in; elsewhere msync it.
 */
void pool_persist_written(const struct kmfs_pool *p, const void *addr, size_t len)
{
	if (p->media.kind == MEDIA_FILE && p->media.on_tmpfs)
		return;
	pmemobj_persist(p->pop, addr, len);
}

void pool_memcpy_persist(const struct kmfs_pool *p, void *dst, const void *src,
			 size_t len)
{
	pmemobj_memcpy_persist(p->pop, dst, src, len);
}

void pool_memset_persist(const struct kmfs_pool *p, void *dst, int c,
			 size_t len)
{
	pmemobj_memset_persist(p->pop, dst, c, len);
}

/*
 * A pool file on tmpfs has no media to flush to: its data survives a
 * daemon crash in the page cache and nothing survives a power cut. Tell
 * libpmem to treat it as memory (cache-line flushes, not msync). libpmem
 * reads PMEM_NO_FLUSH in its constructor, before main, so the flushes of
 * metadata stay; file data written with pwrite is not flushed at all
 * (pool_persist_written).
 */
static void tune_persistence(const struct media *m)
{
	if (m->kind == MEDIA_FILE && m->on_tmpfs)
		setenv("PMEM_IS_PMEM_FORCE", "1", 0);
}

/*
 * The pool offset, mod 4 MiB, of the medium's 4 MiB boundaries. kmemfs.ko
 * lends whole 4 MiB of physical memory, and a devdax device starts 2 MiB
 * past such a boundary when its struct pages or their padding end there.
 */
static uint64_t unit_phase(const struct media *m)
{
	/* a pool file has none: 0 */
	return (KMFS_UNIT_SIZE - m->phys_start % KMFS_UNIT_SIZE) % KMFS_UNIT_SIZE;
}

/* Heap statistics kept in the pool, for statfs's metadata figures. */
void pool_enable_stats(PMEMobjpool *pop)
{
	enum pobj_stats_enabled on = POBJ_STATS_ENABLED_PERSISTENT;

	pmemobj_ctl_set(pop, "stats.enabled", &on);
}

/*
 * libpmemobj's own size classes step by 5%, and every class whose unit is
 * over ~20 KiB gets runs of 16 chunks (4 MiB), which each arena keeps
 * while it is the class's current run, even when empty. Objects that move
 * to a new size at every change (an xattr set, a bucket table, an extent
 * index) each left such a run behind, and a user growing an xattr set
 * could hold the whole metadata share that way: every create failed until
 * a remount. kmemfs's own classes take every object up to 504 KiB in
 * three unit sizes, with runs of one or two chunks (the actual number of
 * units per run is libpmemobj's, read back). Classes are not stored in
 * the pool: they are registered at every open, and runs of classes not
 * registered stay readable.
 */
static const struct {
	size_t unit;
	unsigned per_run;
} class_sizes[POOL_NCLASSES] = {
	{ 64, 4000 },  /* up to 4 KiB: inodes, names, extent leaves */
	{ 1024, 250 }, /* up to 64 KiB */
	{ 8192, 63 },  /* up to 504 KiB: xattr sets (256 KiB at most), tables */
};

#define OBJ_HEADER 16 /* POBJ_HEADER_COMPACT */
#define RUN_UNITS_MAX 64 /* libpmemobj: one object spans 64 units at most */

static void register_classes(struct kmfs_pool *p)
{
	for (int i = 0; i < POOL_NCLASSES; i++) {
		struct pobj_alloc_class_desc d = {
			.unit_size = class_sizes[i].unit,
			.units_per_block = class_sizes[i].per_run,
			.header_type = POBJ_HEADER_COMPACT,
		};
		char q[64];

		p->classes[i].flags = 0;
		if (pmemobj_ctl_set(p->pop, "heap.alloc_class.new.desc", &d) != 0)
			continue; /* its sizes keep libpmemobj's classes */
		snprintf(q, sizeof(q), "heap.alloc_class.%u.desc", d.class_id);
		if (pmemobj_ctl_get(p->pop, q, &d) != 0)
			continue;
		size_t units = d.units_per_block < RUN_UNITS_MAX ? d.units_per_block
								 : RUN_UNITS_MAX;
		p->classes[i].flags = POBJ_CLASS_ID(d.class_id);
		p->classes[i].max = units * d.unit_size - OBJ_HEADER;
	}
}

uint64_t pool_alloc_class(const struct kmfs_pool *p, size_t size)
{
	for (int i = 0; i < POOL_NCLASSES; i++)
		if (p->classes[i].flags && size <= p->classes[i].max)
			return p->classes[i].flags;
	return 0; /* libpmemobj's choice: a huge object takes whole chunks */
}

uint64_t pool_meta_used(const struct kmfs_pool *p)
{
	uint64_t used = 0;

	pmemobj_ctl_get(p->pop, "stats.heap.curr_allocated", &used);
	return used > p->arena_bytes ? used - p->arena_bytes : 0;
}

uint64_t pool_meta_free(struct kmfs_pool *p)
{
	uint64_t total = p->heap_bytes > p->arena_bytes ? p->heap_bytes - p->arena_bytes : 0;
	uint64_t full_at = atomic_load_explicit(&p->meta_full_at, memory_order_relaxed);
	uint64_t used = pool_meta_used(p);

	/* more fitted since: that failure was a shortage of one size */
	if (full_at && used > full_at)
		atomic_compare_exchange_strong(&p->meta_full_at, &full_at, 0);
	else if (full_at && full_at < total)
		total = full_at;
	return total > used ? total - used : 0;
}

void pool_note_meta_full(struct kmfs_pool *p)
{
	atomic_store_explicit(&p->meta_full_at, pool_meta_used(p), memory_order_relaxed);
}

/* Say in one line why media_probe refused PATH. */
static void log_probe_error(const char *path, int rc)
{
	struct stat st;

	if (rc == -ENOENT)
		log_err("%s: does not exist", path);
	else if (rc == -EINVAL && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		log_err("%s: is a directory, not a devdax device or pool file", path);
	else if (rc == -EINVAL || rc == -ENODEV)
		log_err("%s: not a devdax device or pool file", path);
	else
		log_err("%s: %s", path, strerror(-rc));
}

/* pmemobj's last error with the bytes of a foreign file made printable */
static const char *pmem_error(char *buf, size_t len)
{
	snprintf(buf, len, "%s", pmemobj_errormsg());
	for (char *c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	return buf;
}

/* Does any data region of the file at FD hold a byte that is not zero? */
static bool file_has_data(int fd)
{
	const size_t chunk = 1u << 20;
	unsigned char *buf = malloc(chunk);
	off_t pos = 0, hole;
	bool data = true; /* what cannot be read counts as data */
	ssize_t n = 0;

	if (!buf)
		return true;
	while ((pos = lseek(fd, pos, SEEK_DATA)) >= 0) {
		hole = lseek(fd, pos, SEEK_HOLE);
		if (hole < 0)
			goto out;
		for (; pos < hole; pos += n) {
			size_t want = (size_t)(hole - pos) < chunk ? (size_t)(hole - pos) : chunk;
			n = pread(fd, buf, want, pos);
			if (n < 0)
				goto out;
			if (n == 0)
				break;
			for (size_t i = 0; i < (size_t)n; i++)
				if (buf[i] != 0)
					goto out;
		}
	}
	data = errno != ENXIO; /* ENXIO: no data past pos */
out:
	free(buf);
	return data;
}

/*
 * Would formatting destroy anything? A file is read whole (its holes
 * skipped), so data anywhere in it is found; a device, which has no holes
 * and may be terabytes, by its first 2 MiB, where a pool or filesystem
 * keeps its header.
 */
static bool media_has_data(const struct media *m)
{
	size_t len = 2u << 20;
	unsigned char *p;
	bool data = false;
	int fd;

	if (m->kind == MEDIA_FILE && m->size == 0)
		return false;
	fd = open(m->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	if (m->kind == MEDIA_FILE) {
		data = file_has_data(fd);
		close(fd);
		return data;
	}
	if (len > m->size)
		len = m->size;
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return true;
	for (size_t i = 0; i < len && !data; i += 8)
		data = *(const uint64_t *)(p + i) != 0;
	munmap(p, len);
	return data;
}

/* Does a running kmemfs (pmemobj holds an flock) have the pool open? */
static bool media_in_use(const struct media *m)
{
	int fd = open(m->path, O_RDONLY | O_CLOEXEC);
	bool busy;

	if (fd < 0)
		return false;
	busy = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(fd);
	return busy;
}

/* Zero the first 2 MiB so pmemobj_create accepts an old device or file. */
static int media_wipe_header(const struct media *m)
{
	size_t len = 2u << 20;
	void *p;
	int fd;

	if (len > m->size)
		len = m->size;
	fd = open(m->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	memset(p, 0, len);
	msync(p, len, MS_SYNC);
	munmap(p, len);
	close(fd);
	return 0;
}

/*
 * Allocate the data arenas: as few large objects as pmemobj allows, each
 * starting at a pool offset = sb->unit_phase mod 4 MiB.
 */
static int format_arenas(PMEMobjpool *pop, struct kmfs_super *sb,
			 uint64_t data_bytes)
{
	uint64_t phase = sb->unit_phase;
	uint64_t want = data_bytes & ~((uint64_t)KMFS_UNIT_SIZE - 1);
	uint64_t max = PMEMOBJ_MAX_ALLOC_SIZE & ~((uint64_t)KMFS_UNIT_SIZE - 1);
	uint64_t page = 0;

	while (want >= KMFS_UNIT_SIZE && sb->narenas < KMFS_MAX_ARENAS) {
		uint64_t size = want + KMFS_UNIT_SIZE; /* slack for alignment */
		struct kmfs_arena *a = &sb->arenas[sb->narenas];
		PMEMoid oid;

		if (size > max)
			size = max;
		oid = pmemobj_tx_xalloc(size, KMFS_T_ARENA,
					POBJ_XALLOC_NO_FLUSH | POBJ_XALLOC_NO_ABORT);
		while (OID_IS_NULL(oid) && size > 2ull * KMFS_UNIT_SIZE) {
			/* the heap is smaller than we hoped: shrink by 1/16 */
			size -= ((size / 16) + KMFS_UNIT_SIZE - 1) &
				~((uint64_t)KMFS_UNIT_SIZE - 1);
			oid = pmemobj_tx_xalloc(size, KMFS_T_ARENA,
						POBJ_XALLOC_NO_FLUSH |
						POBJ_XALLOC_NO_ABORT);
		}
		if (OID_IS_NULL(oid))
			break;
		a->obj_off = oid.off;
		a->data_off = ((oid.off + KMFS_UNIT_SIZE - 1 - phase) &
			       ~((uint64_t)KMFS_UNIT_SIZE - 1)) + phase;
		a->nunits = (oid.off + size - a->data_off) / KMFS_UNIT_SIZE;
		a->first_page = page;
		page += a->nunits * KMFS_UNIT_PAGES;
		sb->narenas++;
		if (a->nunits * KMFS_UNIT_SIZE >= want)
			break;
		want -= a->nunits * KMFS_UNIT_SIZE;
	}
	sb->total_pages = page;
	return page ? 0 : -ENOSPC;
}

/*
 * The directory names' key serves here too. The message holds NUL bytes
 * past its first 8 (the tail below), where a name's message (dir.c: seed,
 * then the name) never does, so no hash a listing shows is ever a tag.
 */
static uint64_t inode_tag(const uint8_t key[16], uint64_t off, uint64_t gen)
{
	unsigned char msg[20] = { 0 }, out[crypto_shorthash_siphash24_BYTES];
	uint64_t h;

	memcpy(msg, &off, 8);
	memcpy(msg + 8, &gen, 8);
	memcpy(msg + 16, "\0tag", 4);
	crypto_shorthash_siphash24(out, msg, sizeof(msg), key);
	memcpy(&h, out, sizeof(h));
	return h ? h : 1;
}

static int format_root(PMEMobjpool *pop, struct kmfs_super *sb)
{
	PMEMoid ino_oid, tab_oid;
	struct kmfs_inode *ino;
	struct kmfs_dirtable *tab;
	const uint32_t bits = 3;

	ino_oid = pmemobj_tx_xalloc(sizeof(*ino), KMFS_T_INODE,
				    POBJ_XALLOC_ZERO | POBJ_XALLOC_NO_ABORT);
	tab_oid = pmemobj_tx_xalloc(sizeof(*tab) + (sizeof(uint64_t) << bits),
				    KMFS_T_DIRTABLE,
				    POBJ_XALLOC_ZERO | POBJ_XALLOC_NO_ABORT);
	if (OID_IS_NULL(ino_oid) || OID_IS_NULL(tab_oid))
		return -ENOSPC;
	ino = pmemobj_direct(ino_oid);
	tab = pmemobj_direct(tab_oid);
	if (getrandom(&tab->seed, sizeof(tab->seed), 0) != sizeof(tab->seed))
		tab->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
	tab->bits = bits;
	tab->hash_kind = KMFS_HASH_SIPHASH;
	ino->mode = S_IFDIR | 0755;
	ino->nlink = 2;
	ino->uid = getuid();
	ino->gid = getgid();
	ino->atime = ino->mtime = ino->ctime = ino->btime = pool_now();
	ino->generation = 1;
	ino->handle_tag = inode_tag(sb->dir_key, ino_oid.off, ino->generation);
	ino->data_off = tab_oid.off;
	ino->parent_off = ino_oid.off;
	sb->root_off = ino_oid.off;
	sb->next_generation = 2;
	return 0;
}

/* Give every unit of a fresh pool back: a new pool costs no RAM on tmpfs. */
static void format_lend_all(PMEMobjpool *pop, struct kmfs_super *sb,
			    const char *path)
{
	uint8_t *units = (uint8_t *)pop + sb->units_off;
	uint64_t nunits = sb->total_pages / KMFS_UNIT_PAGES;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	for (uint32_t i = 0; i < sb->narenas; i++) {
		const struct kmfs_arena *a = &sb->arenas[i];
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)a->data_off, (off_t)(a->nunits * KMFS_UNIT_SIZE));
	}
	close(fd);
	/* punched first, recorded after: a crash between leaves PRESENT
	 * units that read zeroes, which is safe */
	memset(units, KMFS_UNIT_LENT, nunits);
	pmemobj_persist(pop, units, nunits);
}

/* Bytes free to this user on the filesystem that would hold new file PATH. */
static uint64_t free_space_for(const char *path)
{
	char dir[PATH_MAX];
	struct statvfs sv;

	snprintf(dir, sizeof(dir), "%s", path);
	if (statvfs(dirname(dir), &sv) != 0)
		return UINT64_MAX; /* cannot tell: let the creation say */
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

uint64_t pool_inode_tag(const struct kmfs_pool *p, uint64_t off, uint64_t gen)
{
	return pool_has_dir_key(p) ? inode_tag(p->sb->dir_key, off, gen) : 0;
}

bool pool_may_hold_inode(const struct kmfs_pool *p, uint64_t off)
{
	const struct kmfs_super *sb = p->sb;

	if (off < 4096 || off % 8 ||
	    off > p->size - sizeof(struct kmfs_inode))
		return false;
	for (uint32_t i = 0; i < sb->narenas && i < KMFS_MAX_ARENAS; i++) {
		uint64_t start = sb->arenas[i].data_off;
		uint64_t end = start + sb->arenas[i].nunits * KMFS_UNIT_SIZE;

		if (off + sizeof(struct kmfs_inode) > start && off < end)
			return false;
	}
	/* not pool_obj_ok: libpmemobj follows an object's header to its
	 * chunk's, and wild bytes there send it anywhere; the tag suffices */
	return true;
}

int pool_new_dir_key(uint8_t key[16], const char *path)
{
	if (getrandom(key, 16, 0) == 16)
		return 0;
	log_err("%s: cannot get random bytes for the directory key: %s", path,
		strerror(errno));
	return errno ? -errno : -EIO;
}

int pool_format(const char *path, const struct pool_format_opts *o)
{
	struct media m;
	PMEMobjpool *pop;
	struct kmfs_super *sb;
	uint64_t meta;
	uint8_t dir_key[sizeof(sb->dir_key)];
	int rc;
	bool created = false;

	rc = pool_new_dir_key(dir_key, path);
	if (rc < 0)
		return rc;
	rc = media_probe(path, &m);
	if (rc == -ENOENT && o->size) {
		uint64_t avail = free_space_for(path);
		/* libpmemobj allocates the whole file: say so before it fills
		 * the filesystem and fails */
		if (avail < o->size) {
			log_err("%s: not enough free space for a %llu MiB pool (%llu MiB free "
				"there)", path, (unsigned long long)(o->size >> 20),
				(unsigned long long)(avail >> 20));
			return -ENOSPC;
		}
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			log_err("%s: cannot create: %s", path, strerror(errno));
			return -errno;
		}
		if (ftruncate(fd, (off_t)o->size) != 0) {
			rc = -errno;
			close(fd);
			unlink(path);
			log_err("%s: cannot size to %llu bytes: %s", path,
				(unsigned long long)o->size, strerror(-rc));
			return rc;
		}
		close(fd);
		created = true;
		rc = media_probe(path, &m);
	}
	if (rc == -ENOENT) {
		log_err("%s: does not exist (give --size to create a pool file)", path);
		return rc;
	}
	if (rc < 0) {
		log_probe_error(path, rc);
		return rc;
	}
	if (o->size && !created && o->size != m.size) {
		/* formatting at another size than asked would surprise */
		log_err("%s: exists with %llu bytes, not the --size asked for "
			"(--size only creates a new pool file)",
			path, (unsigned long long)m.size);
		return -EEXIST;
	}
	if (m.size < POOL_MIN_SIZE) {
		log_err("%s: too small (%llu MiB; kmemfs needs at least %llu MiB)",
			path, (unsigned long long)(m.size >> 20),
			(unsigned long long)(POOL_MIN_SIZE >> 20));
		if (created)
			unlink(path);
		return -ENOSPC;
	}
	if (!created && media_in_use(&m)) {
		log_err("%s: in use (mounted by kmemfs or open by another program)", path);
		return -EBUSY;
	}
	if (!created && media_has_data(&m)) {
		if (!o->force) {
			log_err("%s: holds data (an existing pool or filesystem); "
				"use --force to overwrite it", path);
			return -EEXIST;
		}
		rc = media_wipe_header(&m);
		if (rc < 0) {
			log_err("%s: cannot overwrite: %s", path, strerror(-rc));
			return rc;
		}
	}
	tune_persistence(&m);
	/*
	 * No pmemobj shutdown state (SDS): with kmemfs.ko the pool is opened
	 * through the module's file, where pmemobj reads no device id or
	 * unsafe-shutdown count, and on plain devdax otherwise; after any crash
	 * the two disagree and pmemobj would refuse the pool as an "ADR
	 * failure". Consistency comes from the transactions and fsck.kmemfs
	 * (docs/kmod.md, "Pool identity").
	 */
	int sds = 0;
	pmemobj_ctl_set(NULL, "sds.at_create", &sds);
	pop = pmemobj_create(path, KMFS_LAYOUT, 0, 0600);
	if (!pop) {
		char msg[256];

		rc = errno ? -errno : -EIO;
		snprintf(msg, sizeof(msg), "%s", pmemobj_errormsg());
		/* gone before we say so: the message may go to the same place */
		if (created)
			unlink(path);
		if (rc == -ENOSPC)
			log_err("%s: not enough free space for the pool (%s)", path,
				strerror(-rc));
		else
			log_err("%s: cannot create the pool: %s", path, msg);
		return rc;
	}
	pool_enable_stats(pop);
	sb = pmemobj_direct(pmemobj_root(pop, sizeof(*sb)));
	if (!sb) {
		log_err("%s: cannot allocate the superblock", path);
		rc = -ENOSPC;
		goto out_close;
	}
	meta = m.size / 100 * (o->meta_pct ? o->meta_pct : POOL_DEFAULT_META_PCT);
	if (meta < (24ull << 20))
		meta = 24ull << 20;

	if (pmemobj_tx_begin(pop, NULL, TX_PARAM_NONE) != 0) {
		rc = -EIO;
		goto out_close;
	}
	pmemobj_tx_set_failure_behavior(POBJ_TX_FAILURE_RETURN);
	rc = pmemobj_tx_add_range_direct(sb, sizeof(*sb));
	if (rc == 0) {
		memset(sb, 0, sizeof(*sb));
		memcpy(sb->dir_key, dir_key, sizeof(dir_key));
		sb->unit_phase = unit_phase(&m);
		if (m.kind != MEDIA_FILE && !m.phys_start)
			log_err("%s: warning: the device's physical address is "
				"unknown (readable by root), so its 4 MiB units "
				"may not be the memory's, and kmemfs.ko would "
				"lend none of them", path);
		rc = format_arenas(pop, sb, m.size - meta);
	}
	if (rc == 0) {
		uint64_t nunits = sb->total_pages / KMFS_UNIT_PAGES;
		PMEMoid refs = pmemobj_tx_xalloc(sb->total_pages * sizeof(uint32_t),
						 KMFS_T_REFS,
						 POBJ_XALLOC_ZERO | POBJ_XALLOC_NO_ABORT);
		PMEMoid units = pmemobj_tx_xalloc(nunits, KMFS_T_UNITS,
						  POBJ_XALLOC_ZERO | POBJ_XALLOC_NO_ABORT);
		if (OID_IS_NULL(refs) || OID_IS_NULL(units))
			rc = -ENOSPC;
		sb->refs_off = refs.off;
		sb->units_off = units.off;
	}
	if (rc == 0)
		rc = format_root(pop, sb);
	if (rc == 0) {
		if (getrandom(sb->uuid, sizeof(sb->uuid), 0) != sizeof(sb->uuid))
			memset(sb->uuid, 0x5a, sizeof(sb->uuid));
		sb->pool_size = m.size;
		sb->created = pool_now();
		sb->major = KMFS_VERSION_MAJOR;
		sb->minor = KMFS_VERSION_MINOR;
		sb->magic = KMFS_MAGIC;
		pmemobj_tx_commit();
	} else {
		pmemobj_tx_abort(rc > 0 ? rc : -rc);
	}
	if (pmemobj_tx_end() != 0) {
		log_err("%s: too small for the metadata kmemfs needs", path);
		rc = -ENOSPC;
		goto out_close;
	}
	if (m.kind == MEDIA_FILE)
		format_lend_all(pop, sb, path);
	rc = 0;
out_close:
	pmemobj_close(pop);
	if (rc < 0 && created)
		unlink(path);
	return rc;
}

/* Check the superblock and every array it points to before use. */
static int validate_super(struct kmfs_pool *p, const char *path)
{
	struct kmfs_super *sb = p->sb;
	uint64_t page = 0;

	if (sb->magic != KMFS_MAGIC) {
		log_err("%s: not a kmemfs pool (bad magic in superblock)", path);
		return -EINVAL;
	}
	if (sb->major > KMFS_VERSION_MAJOR) {
		log_err("%s: made by a newer kmemfs (format %u.%u, this one reads %u.x)",
			path, sb->major, sb->minor, KMFS_VERSION_MAJOR);
		return -EPROTONOSUPPORT;
	}
	if (sb->major < KMFS_VERSION_MAJOR_OLDEST) {
		log_err("%s: unknown format version %u.%u", path, sb->major, sb->minor);
		return -EPROTONOSUPPORT;
	}
	if (sb->pool_size != p->size && sb->pool_size > p->media.size) {
		log_err("%s: truncated: formatted as %llu bytes, now %llu", path,
			(unsigned long long)sb->pool_size,
			(unsigned long long)p->media.size);
		return -EINVAL;
	}
	if (sb->unit_phase >= KMFS_UNIT_SIZE ||
	    (sb->unit_phase & (KMFS_PAGE_SIZE - 1))) {
		log_err("%s: corrupt superblock: unit phase %llu", path,
			(unsigned long long)sb->unit_phase);
		return -EUCLEAN;
	}
	if (sb->narenas == 0 || sb->narenas > KMFS_MAX_ARENAS) {
		log_err("%s: corrupt superblock: %u arenas", path, sb->narenas);
		return -EUCLEAN;
	}
	for (uint32_t i = 0; i < sb->narenas; i++) {
		const struct kmfs_arena *a = &sb->arenas[i];
		if (a->first_page != page || a->nunits == 0 ||
		    (a->data_off & (KMFS_UNIT_SIZE - 1)) != sb->unit_phase ||
		    a->data_off < a->obj_off ||
		    a->nunits > (p->size - a->data_off) / KMFS_UNIT_SIZE ||
		    !pool_obj_ok(p, a->obj_off, KMFS_T_ARENA,
				 a->data_off - a->obj_off + a->nunits * KMFS_UNIT_SIZE)) {
			log_err("%s: corrupt superblock: arena %u", path, i);
			return -EUCLEAN;
		}
		/* each arena's pages are its own */
		for (uint32_t j = 0; j < i; j++) {
			const struct kmfs_arena *b = &sb->arenas[j];
			if (a->data_off < b->data_off + b->nunits * KMFS_UNIT_SIZE &&
			    b->data_off < a->data_off + a->nunits * KMFS_UNIT_SIZE) {
				log_err("%s: corrupt superblock: arenas %u and %u overlap",
					path, j, i);
				return -EUCLEAN;
			}
		}
		page += a->nunits * KMFS_UNIT_PAGES;
	}
	if (page != sb->total_pages) {
		log_err("%s: corrupt superblock: page count", path);
		return -EUCLEAN;
	}
	p->total_pages = page;
	p->total_units = page / KMFS_UNIT_PAGES;
	if (!pool_obj_ok(p, sb->refs_off, KMFS_T_REFS, page * sizeof(uint32_t)) ||
	    !pool_obj_ok(p, sb->units_off, KMFS_T_UNITS, p->total_units)) {
		log_err("%s: corrupt superblock: page tables", path);
		return -EUCLEAN;
	}
	if (!pool_obj_ok(p, sb->root_off, KMFS_T_INODE, sizeof(struct kmfs_inode))) {
		log_err("%s: corrupt superblock: root inode", path);
		return -EUCLEAN;
	}
	for (uint32_t i = 0; i < sb->narenas; i++) {
		PMEMoid oid = { pmemobj_oid(sb).pool_uuid_lo, sb->arenas[i].obj_off };
		p->arena_bytes += pmemobj_alloc_usable_size(oid);
	}
	p->refs = pool_ptr(p, sb->refs_off);
	p->units = pool_ptr(p, sb->units_off);
	return 0;
}

/*
 * libpmemobj's heap, as PMDK 1.12 lays it out: heap_offset in the pool
 * descriptor, a 1 KiB heap header, then zones of a 64-byte header (magic,
 * chunk count) and chunk headers filling 512 KiB, then 256 KiB chunks.
 */
#define PMDK_HEAP_OFFSET_AT 5136
#define PMDK_HEAP_HEADER    1024
#define PMDK_ZONE_MAGIC     0xC3F0A2D2u
#define PMDK_ZONE_META      (512ull << 10)
#define PMDK_CHUNK          (256ull << 10)
#define PMDK_ZONE_CHUNKS    65528ull

/*
 * A pool file cut short (a copy that ran out of room) is named as such,
 * not as heap damage: every zone its heap records must fit in the file.
 */
static int check_not_truncated(const char *path, uint64_t file_size)
{
	uint64_t heap_off, zone, end;
	uint32_t hdr[2];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return 0; /* pmemobj_open will say why */
	if (pread(fd, &heap_off, sizeof(heap_off), PMDK_HEAP_OFFSET_AT) != sizeof(heap_off))
		goto out;
	zone = heap_off + PMDK_HEAP_HEADER;
	while (zone < file_size && pread(fd, hdr, sizeof(hdr), (off_t)zone) == sizeof(hdr) &&
	       hdr[0] == PMDK_ZONE_MAGIC && hdr[1] <= PMDK_ZONE_CHUNKS) {
		end = zone + PMDK_ZONE_META + hdr[1] * PMDK_CHUNK;
		if (end > file_size) {
			log_err("%s: truncated: its pool needs %llu bytes, the file has %llu",
				path, (unsigned long long)end, (unsigned long long)file_size);
			rc = -EUCLEAN;
			break;
		}
		if (hdr[1] < PMDK_ZONE_CHUNKS)
			break; /* the last zone */
		zone = end;
	}
out:
	close(fd);
	return rc;
}

/*
 * pmemobj_open, mapping a pool file privately when asked: libpmemobj still
 * recovers interrupted transactions and notes the open in its header, but
 * in this process's copy of the pages only. Device DAX cannot be mapped so.
 */
static PMEMobjpool *open_pmemobj(const char *path, bool private)
{
	int on = 1, off = 0;
	PMEMobjpool *pop;

	if (private && pmemobj_ctl_set(NULL, "copy_on_write.at_open", &on) != 0)
		return NULL;
	pop = pmemobj_open(path, KMFS_LAYOUT);
	if (private) {
		int e = errno;
		pmemobj_ctl_set(NULL, "copy_on_write.at_open", &off);
		errno = e;
	}
	return pop;
}

/* exit statuses of the heap probe's child */
enum {
	PROBE_SOUND = 0,
	PROBE_DAMAGED = 1,     /* pmemobj_check found damage */
	PROBE_CANNOT = 2,      /* pmemobj_check could not run */
	PROBE_LOOPS = 3,       /* the object list does not end */
	PROBE_SB_ASTRAY = 4,   /* a superblock pointer names no such object */
};

/* objects walked so far by walk_ends, watched by walk_watchdog */
static _Atomic uint64_t walked;
static clockid_t walker_clock;

static double cpu_seconds(clockid_t clock)
{
	struct timespec ts;

	if (clock_gettime(clock, &ts) != 0)
		return 0;
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Ends the probe as "damaged" when the walk has spent 2 s of its own CPU
 * time without reaching another object (a sound heap's whole walk takes
 * milliseconds); a walker that is stopped or starved spends none.
 */
static void *walk_watchdog(void *arg)
{
	uint64_t last = 0;
	double since = cpu_seconds(walker_clock);

	(void)arg;
	for (;;) {
		sleep(1);
		uint64_t now = atomic_load(&walked);
		double cpu = cpu_seconds(walker_clock);
		if (now != last) {
			last = now;
			since = cpu;
		} else if (cpu - since > 2.0) {
			_exit(PROBE_LOOPS);
		}
	}
	return NULL;
}

/*
 * Does every object the superblock points at exist, with its type? SB
 * may be damaged, and libpmemobj, asked about an offset where no object
 * starts, follows whatever bytes lie there (a crash, or a division by
 * zero): so the walk looks for each pointer among the objects it meets,
 * and only pointers found are ever given to libpmemobj (pool_obj_ok).
 */
struct sb_pointers {
	uint64_t off[3 + KMFS_MAX_ARENAS];
	unsigned type[3 + KMFS_MAX_ARENAS];
	unsigned n, met;
};

static void sb_pointers_init(struct sb_pointers *s, const struct kmfs_super *sb)
{
	s->n = s->met = 0;
	if (!sb)
		return;
	s->off[s->n] = sb->root_off, s->type[s->n++] = KMFS_T_INODE;
	s->off[s->n] = sb->refs_off, s->type[s->n++] = KMFS_T_REFS;
	s->off[s->n] = sb->units_off, s->type[s->n++] = KMFS_T_UNITS;
	for (uint32_t i = 0; i < sb->narenas && i < KMFS_MAX_ARENAS; i++)
		s->off[s->n] = sb->arenas[i].obj_off, s->type[s->n++] = KMFS_T_ARENA;
}

static void sb_pointers_meet(struct sb_pointers *s, PMEMoid oid)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->off[i] == oid.off && s->type[i] != 0) {
			if (pmemobj_type_num(oid) == s->type[i])
				s->met++;
			s->type[i] = 0; /* met (or not its type): done */
		}
}

/*
 * Walk every object as check.c and the mount will, privately mapped.
 * Some damage to a run's bitmap that pmemobj_check lets through makes
 * pmemobj_next loop for ever; here that ends the child. A devdax device
 * cannot be mapped privately: there the child opens it as the caller is
 * about to (libpmemobj notes the open and finishes interrupted
 * transactions). Returns PROBE_SB_ASTRAY if a superblock pointer names
 * no object of its type (a pool that is not kmemfs's is left to the
 * parent's checks, which name it).
 */
static int walk_ends(const char *path)
{
	struct sb_pointers sbp;
	pthread_t t;
	PMEMobjpool *pop = open_pmemobj(path, true);

	/* (not through kmemfs.ko's file: the module serves that one) */
	if (!pop && !strncmp(path, "/dev/dax", 8))
		pop = open_pmemobj(path, false);
	if (!pop || pthread_getcpuclockid(pthread_self(), &walker_clock) != 0 ||
	    pthread_create(&t, NULL, walk_watchdog, NULL) != 0)
		return PROBE_SOUND; /* pmemobj_open in the parent will say why */
	const struct kmfs_super *sb = pmemobj_root_size(pop) >= sizeof(*sb) ?
		pmemobj_direct(pmemobj_root(pop, 0)) : NULL;
	bool ours = sb && sb->magic == KMFS_MAGIC;

	sb_pointers_init(&sbp, ours ? sb : NULL);
	for (PMEMoid oid = pmemobj_first(pop); !OID_IS_NULL(oid); oid = pmemobj_next(oid)) {
		log_progress("reading libpmemobj's heap", atomic_fetch_add(&walked, 1), 0);
		sb_pointers_meet(&sbp, oid);
	}
	return sbp.met == sbp.n ? PROBE_SOUND : PROBE_SB_ASTRAY;
}

/*
 * pmemobj_check itself loops for ever on some damage (found by flipping
 * bytes in a pool's first 8 MiB): bound its CPU time, after which the
 * kernel ends the child with SIGXCPU. The bound is far above what a sound
 * pool needs (0.04 s for 64 GiB): 10 s and one more per 64 GiB of SIZE
 * (media_probe's). The old limit is put back for the walk, which has its
 * own watchdog.
 */
static int check_bounded(const char *path, uint64_t size)
{
	rlim_t budget = 10 + (rlim_t)(size >> 36);
	struct rlimit old, lim;
	bool bounded = getrlimit(RLIMIT_CPU, &old) == 0;

	if (bounded) {
		lim = old;
		if (lim.rlim_max == RLIM_INFINITY || lim.rlim_max > budget)
			lim.rlim_cur = budget;
		bounded = setrlimit(RLIMIT_CPU, &lim) == 0;
	}
	int r = pmemobj_check(path, KMFS_LAYOUT);
	if (bounded)
		setrlimit(RLIMIT_CPU, &old);
	return r;
}

/*
 * libpmemobj trusts its own heap metadata and can crash or hang on a
 * corrupted pool. Let it check the pool and walk its objects in a child
 * process first, so a broken pool is an error message, never a crash or
 * a hang of the daemon or of fsck.
 */
static int probe_heap(const char *path, uint64_t size)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return 0; /* cannot probe: open directly */
	if (pid == 0) {
		/* a crash here is expected of a damaged pool: no core file */
		struct rlimit no_core = { 0, 0 };
		sigset_t xcpu;
		int fd = open("/dev/null", O_WRONLY);
		/* libpmemobj's complaints go, the progress line stays */
		log_progress_to(dup(STDERR_FILENO));
		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		setrlimit(RLIMIT_CORE, &no_core);
		/* the CPU bound works only if SIGXCPU ends the child: whoever
		 * started us may have ignored or blocked it */
		signal(SIGXCPU, SIG_DFL);
		sigemptyset(&xcpu);
		sigaddset(&xcpu, SIGXCPU);
		sigprocmask(SIG_UNBLOCK, &xcpu, NULL);
		int r = check_bounded(path, size);
		int status = r == 1 ? walk_ends(path) : r == 0 ? PROBE_DAMAGED : PROBE_CANNOT;
		log_progress_end();
		_exit(status);
	}
	/* libfuse's signal handlers (a re-check after mounting) do not
	 * restart the wait: a SIGTERM must not leave the child running */
	pid_t w;
	while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (w < 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == PROBE_SB_ASTRAY) {
		log_err("%s: corrupt superblock: it points at objects that are not there",
			path);
		return -EUCLEAN;
	}
	if (WIFSIGNALED(status) || (WIFEXITED(status) &&
				    (WEXITSTATUS(status) == PROBE_DAMAGED ||
				     WEXITSTATUS(status) == PROBE_LOOPS))) {
		bool sig = WIFSIGNALED(status);
		log_err("%s: corrupt pool: libpmemobj's metadata is damaged%s",
			path, sig && WTERMSIG(status) == SIGXCPU ? " (its check does not end)" :
			sig ? " (its check crashed)" :
			WEXITSTATUS(status) == PROBE_LOOPS ? " (its object list loops)" : "");
		return -EUCLEAN;
	}
	return 0; /* consistent, or an error pmemobj_open will name */
}

int pool_open_quiet(const char *path, struct kmfs_pool *p, bool quiet_busy)
{
	return pool_open_how(path, p, quiet_busy ? POOL_OPEN_QUIET_BUSY : 0);
}

int pool_open(const char *path, struct kmfs_pool *p)
{
	return pool_open_how(path, p, 0);
}

int pool_open_kmod(const char *path, struct kmfs_pool *p, bool use_kmod)
{
	return pool_open_how(path, p, use_kmod ? POOL_OPEN_KMOD : 0);
}

int pool_open_private(const char *path, struct kmfs_pool *p, bool quiet_busy)
{
	return pool_open_how(path, p, POOL_OPEN_PRIVATE |
			     (quiet_busy ? POOL_OPEN_QUIET_BUSY : 0));
}

int pool_open_how(const char *path, struct kmfs_pool *p, int how)
{
	const char *open_path = path;
	bool use_kmod = how & POOL_OPEN_KMOD;
	bool private = (how & POOL_OPEN_PRIVATE) != 0;
	PMEMoid root;
	int rc;

	memset(p, 0, sizeof(*p));
	rc = media_probe(path, &p->media);
	if (rc < 0) {
		log_probe_error(path, rc);
		return rc;
	}
	if (p->media.kind == MEDIA_FILE && !(how & POOL_OPEN_PROBED) &&
	    (rc = check_not_truncated(path, p->media.size)) < 0)
		return rc;
	if (p->media.size < POOL_MIN_SIZE) {
		log_err("%s: too small to be a kmemfs pool (%llu bytes)", path,
			(unsigned long long)p->media.size);
		return -EINVAL;
	}
	tune_persistence(&p->media);
	if (use_kmod && p->media.kind == MEDIA_DEVDAX && media_kmod_available()) {
		/* the device becomes RAM the kernel can borrow; the pool is
		 * opened through the module's file spanning it */
		rc = media_attach(&p->media);
		if (rc < 0)
			return rc;
		open_path = p->media.open_path;
	}
	rc = (how & POOL_OPEN_PROBED) ? 0 : probe_heap(open_path, p->media.size);
	if (rc < 0)
		goto out_detach;
	private = private && p->media.kind == MEDIA_FILE;
	p->pop = open_pmemobj(open_path, private);
	if (!p->pop) {
		char msg[256];

		rc = -errno;
		if (rc == -EWOULDBLOCK || rc == -EAGAIN || rc == -EBUSY) {
			if (!(how & POOL_OPEN_QUIET_BUSY))
				log_err("%s: in use by another kmemfs (or program)", path);
		} else if (rc == -EACCES || rc == -EPERM || rc == -EROFS)
			log_err("%s: cannot open for writing: %s", path, strerror(-rc));
		else if (rc == -EINVAL && strstr(pmemobj_errormsg(), "layout"))
			log_err("%s: not a kmemfs pool (%s)", path,
				pmem_error(msg, sizeof(msg)));
		else
			log_err("%s: not a valid kmemfs pool (pmemobj: %s)", path,
				pmem_error(msg, sizeof(msg)));
		if (!rc)
			rc = -EINVAL;
		/* a second daemon must not detach the first one's device */
		if (rc == -EWOULDBLOCK || rc == -EAGAIN)
			p->media.kind = MEDIA_DEVDAX;
		goto out_detach;
	}
	root = pmemobj_root(p->pop, 0);
	p->base = (char *)p->pop;
	p->size = p->media.size;
	if (pmemobj_root_size(p->pop) < sizeof(struct kmfs_super)) {
		log_err("%s: not a kmemfs pool (no superblock)", path);
		rc = -EINVAL;
		goto out_close;
	}
	p->sb = pmemobj_direct(root);
	/* the heap's chunks start before the root's: the first object made */
	p->heap_bytes = p->size - (root.off & ~(uint64_t)(POOL_CHUNK - 1));
	register_classes(p);
	rc = validate_super(p, path);
	if (rc < 0)
		goto out_close;
	/* a private mapping is for reading: no file descriptor to write with */
	rc = private ? 0 : media_open(&p->media);
	if (rc < 0) {
		log_err("%s: %s", path, strerror(-rc));
		goto out_close;
	}
	return 0;
out_close:
	pmemobj_close(p->pop);
	p->pop = NULL;
out_detach:
	if (p->media.kind == MEDIA_KMOD && !p->media.reattached)
		media_detach(&p->media);
	else if (p->media.kind == MEDIA_KMOD) {
		close(p->media.dev_fd);
		close(p->media.kfd);
	}
	return rc;
}

void pool_close(struct kmfs_pool *p)
{
	if (!p->pop)
		return;
	media_close(&p->media);
	pmemobj_close(p->pop);
	p->pop = NULL;
	media_detach(&p->media);
}
