// SPDX-License-Identifier: BSD-3-Clause
/*
 * data.c -- file contents in device pages.
 *
 * Every change follows the same three steps:
 *   1. plan: find the device page behind each file page of the range;
 *      allocate new pages for holes and for pages shared with a clone;
 *   2. copy: write the data (and zero or copy the untouched parts of new
 *      pages) straight into the device pages, and persist it;
 *   3. commit: one transaction maps the new pages, drops the references
 *      of the pages they replace and updates size and times.
 * A crash before 3 leaves the old file; new pages are unreferenced and
 * free again at the next mount. A truncate, punch or range zeroing that
 * zeroes part of a page the file keeps does it in step 3, under an undo
 * snapshot, so that
 * failing there leaves the bytes too (when the pool's metadata is too
 * full for the snapshot, the bytes are zeroed before and put back on a
 * failure, but not after a crash: see data_truncate).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "emap.h"
#include "fs.h"
#include "txn.h"

#define PG ((uint64_t)KMFS_PAGE_SIZE)
#define MAX_FPAGE KMFS_FILE_PAGES_MAX
#define MAX_FILE_SIZE KMFS_FILE_SIZE_MAX

/* zeroes for the holes of a read: never written */
static char zero_buf[1u << 20];

struct seg {
	uint64_t fpage;
	uint64_t count;
	uint64_t dpage; /* where the data goes */
	uint64_t old;   /* device page it replaces, EMAP_HOLE for none */
	bool fresh;     /* newly allocated: gets mapped at commit */
	bool unwritten; /* in place in an unwritten extent (KMFS_EXT_UNWRITTEN) */
};

struct plan {
	struct seg *v;
	size_t n, cap;
	uint64_t hint;
};

static int plan_add(struct plan *pl, struct seg s)
{
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : 16;
		struct seg *v = realloc(pl->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		pl->v = v;
		pl->cap = cap;
	}
	pl->v[pl->n++] = s;
	return 0;
}

/* plan_abandon -- drop a plan whose transaction never began; returns RC */
static int plan_abandon(struct txn *t, struct plan *pl, int rc)
{
	txn_release(t);
	free(pl->v);
	return rc;
}

/* Allocate new pages for file pages [fpage, fpage+count). */
static int plan_new(struct txn *t, struct plan *pl, uint64_t fpage,
		    uint64_t count, uint64_t old)
{
	while (count) {
		uint64_t start;
		int64_t got = pages_alloc(t, count, pl->hint, &start);
		int rc;

		if (got < 0)
			return (int)got;
		rc = plan_add(pl, (struct seg){ fpage, (uint64_t)got, start, old,
					       true, false });
		if (rc < 0)
			return rc;
		pl->hint = start + (uint64_t)got;
		fpage += (uint64_t)got;
		count -= (uint64_t)got;
		if (old != EMAP_HOLE)
			old += (uint64_t)got;
	}
	return 0;
}

/*
 * Plan file pages [first, end). Mapped pages owned by this file alone are
 * written in place; holes get new pages when FILL_HOLES; shared pages get
 * new ones when COW.
 */
static int plan_range(struct kmfs_fs *fs, struct txn *t, struct kmfs_inode *ino,
		      uint64_t first, uint64_t end, bool fill_holes, bool cow,
		      struct plan *pl)
{
	const struct kmfs_pool *p = &fs->pool;
	struct kmfs_extent e;
	uint64_t pos = first;
	int rc;

	if (first > 0 && emap_lookup(p, ino, first - 1, &e) == 0)
		pl->hint = e.dpage + (first - 1 - e.fpage) + 1;
	while (pos < end) {
		int r = emap_lookup(p, ino, pos, &e);

		if (r == 0) {
			uint64_t run = (e.fpage + e.count < end ? e.fpage + e.count : end) - pos;
			uint64_t dp = e.dpage + (pos - e.fpage), k = 0;
			bool shared = pages_refcount(&fs->pages, dp) > 1;
			bool unwritten = e.flags & KMFS_EXT_UNWRITTEN;

			while (k < run && (pages_refcount(&fs->pages, dp + k) > 1) == shared)
				k++;
			/* a count of 1 that may roll back is as good as shared */
			if (!shared && !pages_counts_settled(&fs->pages))
				shared = true;
			/* an unwritten page's copy starts as zeroes, as it reads */
			if (shared && cow)
				rc = plan_new(t, pl, pos, k, unwritten ? EMAP_HOLE : dp);
			else
				rc = plan_add(pl, (struct seg){ pos, k, dp, dp, false,
							       unwritten });
			if (rc < 0)
				return rc;
			pl->hint = dp + k;
			pos += k;
			continue;
		}
		uint64_t hole_end = (r == 1 && e.fpage < end) ? e.fpage : end;
		if (fill_holes) {
			rc = plan_new(t, pl, pos, hole_end - pos, EMAP_HOLE);
			if (rc < 0)
				return rc;
		}
		pos = hole_end;
	}
	return 0;
}

/* Give a new page its content outside [from, to): the old page's, or 0. */
static void fill_page(struct kmfs_fs *fs, uint64_t dpage, uint64_t old,
		      size_t from, size_t to)
{
	char *dst = pool_page(&fs->pool, dpage);

	if (old == EMAP_HOLE) {
		memset(dst, 0, from);
		memset(dst + to, 0, PG - to);
	} else {
		const char *src = pool_page(&fs->pool, old);
		memcpy(dst, src, from);
		memcpy(dst + to, src + to, PG - to);
	}
}

static int unref_cb(void *arg, uint64_t dpage, uint64_t count)
{
	return pages_unref(arg, dpage, count);
}

/* Map new segment S with extent FLAGS, inside the transaction. */
static int commit_seg(struct txn *t, struct kmfs_inode *ino,
		      const struct seg *s, uint32_t flags)
{
	int rc = pages_ref_new(t, s->dpage, s->count);

	return rc < 0 ? rc : emap_replace(t, ino, s->fpage, s->count, s->dpage,
					  flags, unref_cb, t);
}

/* Map the plan's new pages with extent flags FRESH_FLAGS; caller is
 * inside the transaction. */
static int plan_commit(struct txn *t, struct kmfs_inode *ino,
		       const struct plan *pl, uint32_t fresh_flags)
{
	for (size_t i = 0; i < pl->n; i++) {
		int rc = pl->v[i].fresh ? commit_seg(t, ino, &pl->v[i], fresh_flags) : 0;

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Zero N whole device pages from DPAGE. */
static int zero_pages(struct kmfs_fs *fs, uint64_t dpage, uint64_t n)
{
	char *at = pool_page(&fs->pool, dpage);

	if (n == 0)
		return 0;
	if (media_writes_by_fd(&fs->pool.media))
		return media_zero(&fs->pool.media, pool_off(&fs->pool, at), n * PG);
	pool_memset_persist(&fs->pool, at, 0, n * PG);
	return 0;
}

/* the most pages of an extent outside a write that the write zeroes to
 * make the whole extent written when metadata is full (4 MiB: ~1 ms, under
 * the transaction lock) */
#define WHOLE_EXTENT_ZERO_MAX 1024

/*
 * Make the unwritten pages a write stored in (PL, in place) written, in its
 * transaction. Each run is cut out of its extent, after making room in its
 * leaf. When the metadata has no room for that, the whole extent becomes
 * written instead, its pages outside the write zeroed first (they read as
 * zeroes until the commit, and may hold a crashed write's bytes), if they
 * are few: so a write into space fallocate reserved fails for want of
 * metadata only when its extent reaches far beyond it.
 */
static int plan_mark_written(struct kmfs_fs *fs, struct txn *t,
			     struct kmfs_inode *ino, const struct plan *pl)
{
	uint64_t first = pl->n ? pl->v[0].fpage : 0;
	uint64_t last = pl->n ? pl->v[pl->n - 1].fpage + pl->v[pl->n - 1].count : 0;

	for (size_t i = 0; i < pl->n; i++) {
		const struct seg *s = &pl->v[i];
		struct kmfs_extent e;
		int rc;

		/* a whole extent made written below may hold later runs too */
		if (!s->unwritten || emap_lookup(&fs->pool, ino, s->fpage, &e) != 0 ||
		    !(e.flags & KMFS_EXT_UNWRITTEN))
			continue;
		rc = emap_make_room(t, ino, s->fpage, 2);
		if (rc == 0) {
			rc = emap_convert(t, ino, s->fpage, s->count, 0);
		} else if (rc == -ENOSPC) {
			uint64_t end = e.fpage + e.count;
			uint64_t before = e.fpage < first ? (end < first ? end : first) - e.fpage : 0;
			uint64_t from = e.fpage > last ? e.fpage : last;
			uint64_t after = end > last ? end - from : 0;

			if (before + after <= WHOLE_EXTENT_ZERO_MAX)
				rc = zero_pages(fs, e.dpage, before);
			if (rc == 0)
				rc = zero_pages(fs, e.dpage + (from - e.fpage), after);
			if (rc == 0)
				rc = emap_set_flags(t, ino, s->fpage, 0, &e);
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * Zero bytes [from, to) of device page DPAGE: what a write that makes an
 * unwritten page written does not cover, which reads as zero until then
 * but may hold what a write cut short by a crash stored.
 */
static int zero_bytes(struct kmfs_fs *fs, uint64_t dpage, size_t from, size_t to)
{
	char *page = pool_page(&fs->pool, dpage);
	int rc = 0;

	if (to <= from)
		return 0;
	if (media_writes_by_fd(&fs->pool.media)) {
		rc = media_pwrite(&fs->pool.media,
				  pool_page_off(&fs->pool, dpage) + from, zero_buf,
				  to - from);
		if (rc == 0)
			pool_persist_written(&fs->pool, page + from, to - from);
	} else {
		pool_memset_persist(&fs->pool, page + from, 0, to - from);
	}
	return rc;
}

/* Zero what segment S, unwritten, has outside [off, end) in its end pages. */
static int zero_unwritten_edges(struct kmfs_fs *fs, const struct seg *s,
				uint64_t off, uint64_t end)
{
	uint64_t a = s->fpage * PG, b = (s->fpage + s->count) * PG;
	int rc = 0;

	if (off > a)
		rc = zero_bytes(fs, s->dpage, 0, off - a);
	if (rc == 0 && end < b) {
		uint64_t lp = s->count - 1;
		size_t from = end - (a + lp * PG);

		rc = zero_bytes(fs, s->dpage + lp, from, PG);
	}
	return rc;
}

/* the caller holds the inode's vnode lock, not the namespace lock for
 * writing: the times go under their stripe (fs_times_lock) */
static int touch(struct kmfs_fs *fs, struct kmfs_inode *ino, bool mtime)
{
	struct kmfs_time now = pool_now();
	int rc = TXADD(ino, ctime);

	if (rc == 0 && mtime)
		rc = TXADD(ino, mtime);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(fs_times_lock(fs, ino));
	ino->ctime = now;
	if (mtime)
		ino->mtime = now;
	pthread_mutex_unlock(fs_times_lock(fs, ino));
	return 0;
}

int data_read(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t off,
	      size_t size, data_reply_fn reply, void *arg)
{
	uint64_t end, pos;
	struct iovec *iov;
	int n = 0, cap, rc;

	if (off >= ino->size || size == 0)
		return reply(arg, NULL, 0);
	end = ino->size - off < size ? ino->size : off + size;
	cap = (int)((end - off) / PG) * 2 + 8;
	iov = malloc((size_t)cap * sizeof(*iov));
	if (!iov)
		return -ENOMEM;
	for (pos = off; pos < end;) {
		struct kmfs_extent e;
		int r = emap_lookup(&fs->pool, ino, pos / PG, &e);
		uint64_t stop;

		if (n + 2 >= cap) {
			struct iovec *v = realloc(iov, (size_t)cap * 2 * sizeof(*iov));
			if (!v) {
				free(iov);
				return -ENOMEM;
			}
			iov = v;
			cap *= 2;
		}
		if (r == 0 && !(e.flags & KMFS_EXT_UNWRITTEN)) {
			stop = (e.fpage + e.count) * PG;
			if (stop > end)
				stop = end;
			iov[n].iov_base = (char *)pool_page(&fs->pool, e.dpage) +
					  (pos - e.fpage * PG);
		} else {
			/* a hole, or pages no write has reached: zeroes */
			uint64_t next = r == 0 ? e.fpage + e.count
					: r == 1 ? e.fpage : UINT64_MAX / PG;

			stop = next * PG < end ? next * PG : end;
			if (stop - pos > sizeof(zero_buf))
				stop = pos + sizeof(zero_buf);
			iov[n].iov_base = zero_buf;
		}
		iov[n].iov_len = stop - pos;
		n++;
		pos = stop;
	}
	if (media_needs_bounce(&fs->pool.media)) {
		/* the kernel cannot pin pages of the module's PFN mapping, so
		 * /dev/fuse would refuse them: hand it a copy */
		char *buf = malloc(end - off);
		struct iovec one = { buf, end - off };
		size_t at = 0;

		if (!buf) {
			free(iov);
			return -ENOMEM;
		}
		for (int i = 0; i < n; i++) {
			memcpy(buf + at, iov[i].iov_base, iov[i].iov_len);
			at += iov[i].iov_len;
		}
		rc = reply(arg, &one, 1);
		free(buf);
		free(iov);
		return rc;
	}
	rc = reply(arg, iov, n);
	free(iov);
	return rc;
}

/* Write segment S's share of [off, end) through the pool mapping. */
static int store_mapped(struct kmfs_fs *fs, const struct seg *s, uint64_t off,
			uint64_t end, const struct data_src *src)
{
	uint64_t a = s->fpage * PG, b = (s->fpage + s->count) * PG;
	char *base = pool_page(&fs->pool, s->dpage);
	int rc;

	if (s->fresh) {
		/* new pages that the write covers only in part */
		if (off > a)
			fill_page(fs, s->dpage, s->old, off - a, PG);
		if (end < b) {
			uint64_t lp = s->count - 1;
			size_t from = a + lp * PG > off ? 0 : off - (a + lp * PG);
			fill_page(fs, s->dpage + lp,
				  s->old == EMAP_HOLE ? EMAP_HOLE : s->old + lp,
				  from, end - (a + lp * PG));
		}
	}
	if (a < off)
		a = off;
	if (b > end)
		b = end;
	rc = src->copy(src->arg, base + (a - s->fpage * PG), b - a);
	if (rc == 0)
		pool_persist(&fs->pool, base, s->count * PG);
	return rc;
}

/* Copy LEN source bytes to pool offset POFF through the pool file. */
static int copy_to_fd(struct kmfs_fs *fs, const struct data_src *src,
		      uint64_t poff, size_t len)
{
	char *bounce;
	int rc;

	if (src->copy_fd) {
		bool locked = media_fd_lock(&fs->pool.media, len);

		rc = src->copy_fd(src->arg, fs->pool.media.fd, poff, len);
		media_fd_unlock(&fs->pool.media, locked);
		return rc;
	}
	bounce = malloc(len);
	if (!bounce)
		return -ENOMEM;
	rc = src->copy(src->arg, bounce, len);
	if (rc == 0)
		rc = media_pwrite(&fs->pool.media, poff, bounce, len);
	free(bounce);
	return rc;
}

/*
 * Write a segment of new pages through the pool file: a tmpfs page is
 * allocated by the write itself, not zeroed first and faulted in, and a
 * full tmpfs answers ENOSPC instead of SIGBUS. Whole pages go straight
 * from the request; a partial page is built in a bounce page first.
 */
static int store_fresh(struct kmfs_fs *fs, const struct seg *s, uint64_t off,
		       uint64_t end, const struct data_src *src)
{
	char page[KMFS_PAGE_SIZE] __attribute__((aligned(64)));
	uint64_t k = 0;
	int rc = 0;

	while (k < s->count && rc == 0) {
		uint64_t fa = (s->fpage + k) * PG;
		uint64_t poff = pool_page_off(&fs->pool, s->dpage + k);

		if (off <= fa && end >= fa + PG) {
			/* a run of whole pages */
			uint64_t n = 1;
			while (k + n < s->count && end >= fa + (n + 1) * PG)
				n++;
			rc = copy_to_fd(fs, src, poff, n * PG);
			k += n;
			continue;
		}
		size_t from = off > fa ? off - fa : 0;
		size_t to = end < fa + PG ? end - fa : PG;
		if (s->old == EMAP_HOLE) {
			memset(page, 0, sizeof(page));
		} else {
			memcpy(page, pool_page(&fs->pool, s->old + k), PG);
		}
		rc = src->copy(src->arg, page + from, to - from);
		if (rc == 0)
			rc = media_pwrite(&fs->pool.media, poff, page, PG);
		k++;
	}
	if (rc == 0)
		pool_persist_written(&fs->pool, pool_page(&fs->pool, s->dpage),
				     s->count * PG);
	return rc;
}

/*
 * Overwrite pages this file owns through the pool file too: pwrite into
 * tmpfs pages costs a copy, where stores through the mapping would first
 * fault in every page this process has not touched yet.
 */
static int store_in_place_fd(struct kmfs_fs *fs, const struct seg *s,
			     uint64_t off, uint64_t end, const struct data_src *src)
{
	uint64_t a = s->fpage * PG, b = (s->fpage + s->count) * PG;
	uint64_t poff = pool_page_off(&fs->pool, s->dpage);
	int rc;

	if (a < off)
		a = off;
	if (b > end)
		b = end;
	rc = copy_to_fd(fs, src, poff + (a - s->fpage * PG), b - a);
	if (rc == 0)
		pool_persist_written(&fs->pool, pool_page(&fs->pool, s->dpage),
				     s->count * PG);
	return rc;
}

/* Store one segment of pages the file already owns alone. */
static int store_in_place(struct kmfs_fs *fs, const struct seg *s, uint64_t off,
			  uint64_t end, const struct data_src *src)
{
	if (media_writes_by_fd(&fs->pool.media))
		return store_in_place_fd(fs, s, off, end, src);
	return store_mapped(fs, s, off, end, src);
}

/*
 * The run of file pages from POS (before LAST) that one extent maps, as a
 * segment to write in place; -EAGAIN at a hole or a page another file shares.
 */
static int owned_run(struct kmfs_fs *fs, const struct kmfs_inode *ino,
		     uint64_t pos, uint64_t last, struct seg *s)
{
	struct kmfs_extent e;
	uint64_t dp, run;

	/* an unwritten page becomes written in a transaction (data_write) */
	if (emap_lookup(&fs->pool, ino, pos, &e) != 0 ||
	    (e.flags & KMFS_EXT_UNWRITTEN))
		return -EAGAIN;
	run = (e.fpage + e.count < last ? e.fpage + e.count : last) - pos;
	dp = e.dpage + (pos - e.fpage);
	for (uint64_t k = 0; k < run; k++)
		if (pages_refcount(&fs->pages, dp + k) != 1)
			return -EAGAIN;
	*s = (struct seg){ pos, run, dp, dp, false, false };
	return 0;
}

ssize_t data_overwrite(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t off,
		       size_t size, const struct data_src *src)
{
	uint64_t end = off + size, first = off / PG, last = (end + PG - 1) / PG;
	struct seg s;
	int rc = 0;

	if (size == 0 || end < off || end > ino->size)
		return -EAGAIN;
	/* all or nothing: every page must be mapped and this file's alone,
	 * for good, before the first byte is stored (the source is a
	 * stream); the second pass finds the same runs */
	for (uint64_t pos = first; pos < last; pos += s.count)
		if ((rc = owned_run(fs, ino, pos, last, &s)) < 0)
			return rc;
	if (!pages_counts_settled(&fs->pages))
		return -EAGAIN;
	uint64_t done = off;
	for (uint64_t pos = first; pos < last; pos += s.count) {
		/* found by the first pass under the same lock: failing here
		 * would leave the stream half consumed, so no retry */
		rc = owned_run(fs, ino, pos, last, &s) < 0 ? -EIO : 0;
		if (rc == 0)
			rc = store_in_place(fs, &s, off, end, src);
		if (rc < 0)
			break;
		done = (pos + s.count) * PG < end ? (pos + s.count) * PG : end;
	}
	/* a store that failed after others is a short write, as a kernel
	 * filesystem reports one: the bytes before the failed run changed
	 * (those of the failed run may have too, as in a failed copy) */
	if (done == off)
		return rc;
	if (rc < 0 && src->short_err)
		*src->short_err = rc;
	/* no metadata changes but the times, which need no transaction: after
	 * a crash either time is valid. Overwriters share the vnode lock, so
	 * the stripe keeps each time whole for them and for readers. */
	struct kmfs_time now = pool_now();
	pthread_mutex_lock(fs_times_lock(fs, ino));
	ino->mtime = now;
	ino->ctime = now;
	pthread_mutex_unlock(fs_times_lock(fs, ino));
	pool_persist(&fs->pool, &ino->mtime, 2 * sizeof(now));
	return (ssize_t)(done - off);
}

/*
 * What a write stores in pages the file owns before its transaction, so that
 * a write that fails after that puts those bytes back (all or nothing): the
 * bytes below the size are copied aside; those past it become zero again,
 * as they were unless a crash left bytes there (zero_past_size).
 */
struct in_place_undo {
	uint64_t poff, len; /* pool offset and length of the range stored */
	uint64_t kept;      /* its first KEPT bytes are in OLD; the rest were zero */
	char *old;
};

static void undo_free(struct in_place_undo *u, size_t n)
{
	for (size_t i = 0; i < n && u; i++)
		free(u[i].old);
	free(u);
}

/* Copy aside what the in-place segments of PL will overwrite; *OUT has one
 * entry per segment (len 0 for new or unwritten pages), or is NULL when none
 * is in place. */
static int undo_save(struct kmfs_fs *fs, const struct kmfs_inode *ino,
		     const struct plan *pl, uint64_t off, uint64_t end,
		     struct in_place_undo **out)
{
	struct in_place_undo *u = NULL;

	*out = NULL;
	for (size_t i = 0; i < pl->n; i++) {
		const struct seg *s = &pl->v[i];
		uint64_t a = s->fpage * PG, b = (s->fpage + s->count) * PG;

		/* new pages, and unwritten ones (zeroes to readers until the
		 * commit), hold nothing a failed write must put back */
		if (s->fresh || s->unwritten)
			continue;
		if (!u && !(u = calloc(pl->n, sizeof(*u))))
			return -ENOMEM;
		if (a < off)
			a = off;
		if (b > end)
			b = end;
		u[i].poff = pool_page_off(&fs->pool, s->dpage) + (a - s->fpage * PG);
		u[i].len = b - a;
		u[i].kept = a >= ino->size ? 0 : (b < ino->size ? b : ino->size) - a;
		if (u[i].kept) {
			u[i].old = malloc(u[i].kept);
			if (!u[i].old) {
				undo_free(u, pl->n);
				return -ENOMEM;
			}
			memcpy(u[i].old, pool_ptr(&fs->pool, u[i].poff), u[i].kept);
		}
	}
	*out = u;
	return 0;
}

/* Put back the first N ranges of U (those already stored). The pages are
 * the file's own and already there, so through the mapping, as
 * zero_planned zeroes such a page. */
static void undo_restore(struct kmfs_fs *fs, const struct in_place_undo *u, size_t n)
{
	for (size_t i = 0; i < n && u; i++) {
		char *at = pool_ptr(&fs->pool, u[i].poff);

		if (!u[i].len)
			continue;
		memcpy(at, u[i].old, u[i].kept);
		memset(at + u[i].kept, 0, u[i].len - u[i].kept);
		pool_persist(&fs->pool, at, u[i].len);
	}
}

/* Set or take off INO's mark that its pages past the size may hold bytes. */
static void mark_past_size(struct kmfs_fs *fs, struct kmfs_inode *ino, bool on)
{
	if (on)
		ino->flags |= KMFS_IF_PAST_SIZE;
	else
		ino->flags &= ~KMFS_IF_PAST_SIZE;
	pool_persist(&fs->pool, &ino->flags, sizeof(ino->flags));
}

/*
 * Before INO's size grows, zero what a write may have left in its pages
 * past the size, which must then read as zeroes. A write stores into pages
 * the file owns before the commit that raises the size: it marks the inode
 * (KMFS_IF_PAST_SIZE) first and its commit takes the mark off, so only a
 * write that a crash or an error cut short leaves it. Then every page the
 * file owns alone past the size is zeroed in place, with no transaction:
 * those bytes mean nothing yet. A page with more than one reference holds
 * zeroes past every sharer's size (data_clone zeroes a last page's tail
 * before sharing it), so it is left alone.
 */
static void zero_past_size(struct kmfs_fs *fs, struct kmfs_inode *ino)
{
	uint64_t from = ino->size, pos = from / PG;
	struct kmfs_extent e;
	int r;

	if (!(ino->flags & KMFS_IF_PAST_SIZE))
		return;
	while ((r = emap_lookup(&fs->pool, ino, pos, &e)) >= 0) {
		if (r == 1) { /* a hole up to the next extent */
			pos = e.fpage;
			continue;
		}
		if (e.flags & KMFS_EXT_UNWRITTEN) { /* reads as zeroes anyway */
			pos = e.fpage + e.count;
			continue;
		}
		for (; pos < e.fpage + e.count; pos++) {
			uint64_t dp = e.dpage + (pos - e.fpage);
			uint64_t a = from > pos * PG ? from - pos * PG : 0;

			if (pages_refcount(&fs->pages, dp) == 1)
				pool_memset_persist(&fs->pool,
						    (char *)pool_page(&fs->pool, dp) + a,
						    0, PG - a);
		}
	}
	mark_past_size(fs, ino, false);
}

/* Put back the first N ranges of U; those past the size are zero again, so
 * the mark the write set (MARKED) comes off too. */
static void undo_restore_unmark(struct kmfs_fs *fs, struct kmfs_inode *ino,
				const struct in_place_undo *u, size_t n, bool marked)
{
	undo_restore(fs, u, n);
	if (marked)
		mark_past_size(fs, ino, false);
}

/* Does the write whose undo is U (N segments) store past the size? */
static bool stores_past_size(const struct in_place_undo *u, size_t n)
{
	for (size_t i = 0; i < n && u; i++)
		if (u[i].len > u[i].kept)
			return true;
	return false;
}

ssize_t data_write(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t off,
		   size_t size, const struct data_src *src, bool take_back)
{
	uint64_t end = off + size, first = off / PG, last = (end + PG - 1) / PG;
	ssize_t done = data_overwrite(fs, ino, off, size, src);
	struct in_place_undo *undo = NULL;
	struct plan pl = {0};
	size_t stored = 0;
	bool marked = false;
	struct txn t;
	int rc;

	if (done != -EAGAIN)
		return done;
	if (size == 0)
		return 0;
	if (end < off || last > MAX_FPAGE)
		return -EFBIG;
	if (end > ino->size)
		zero_past_size(fs, ino);
	txn_init(&t, &fs->pages);
	rc = plan_range(fs, &t, ino, first, last, true, true, &pl);
	if (rc == -PAGES_ERECLAIM && !take_back)
		rc = -ENOSPC;
	if (rc == -ENOSPC && pl.n) {
		/* a full filesystem takes what fits, as a kernel one does: the
		 * pages planned so far cover a prefix, stored as a short write
		 * (the rest of the source is left unread) */
		const struct seg *s = &pl.v[pl.n - 1];
		uint64_t fit = (s->fpage + s->count) * PG;

		if (fit > off) {
			end = fit < end ? fit : end;
			size = end - off;
			rc = 0;
		}
	}
	if (rc < 0)
		goto out_release;
	rc = undo_save(fs, ino, &pl, off, end, &undo);
	if (rc < 0)
		goto out_release;
	/* marked before the first store past the size, unmarked by the commit */
	marked = stores_past_size(undo, pl.n);
	if (marked)
		mark_past_size(fs, ino, true);
	/* 2. copy, segment by segment in file order (the source is a stream) */
	for (; stored < pl.n; stored++) {
		struct seg *s = &pl.v[stored];

		if (s->fresh && media_writes_by_fd(&fs->pool.media)) {
			rc = store_fresh(fs, s, off, end, src);
		} else {
			rc = s->unwritten ? zero_unwritten_edges(fs, s, off, end) : 0;
			if (rc == 0)
				rc = store_in_place(fs, s, off, end, src);
		}
		if (rc < 0) {
			stored++; /* may have stored part of it */
			goto out_undo;
		}
	}
	/* 3. commit (a plan with no new or unwritten pages inside the size
	 * was an overwrite in place: data_overwrite took it above) */
	rc = txn_begin(&t);
	if (rc < 0)
		goto out_undo;
	rc = plan_mark_written(fs, &t, ino, &pl);
	if (rc == 0)
		rc = plan_commit(&t, ino, &pl, 0);
	if (rc == 0 && end > ino->size) {
		rc = TXADD(ino, size);
		if (rc == 0)
			ino->size = end;
	}
	if (rc == 0)
		rc = touch(fs, ino, true);
	if (rc == 0 && marked) {
		rc = TXADD(ino, flags);
		if (rc == 0)
			ino->flags &= ~KMFS_IF_PAST_SIZE;
	}
	rc = txn_end(&t, rc);
	if (rc < 0) /* txn_end has released the plan's new pages */
		undo_restore_unmark(fs, ino, undo, pl.n, marked);
	undo_free(undo, pl.n);
	free(pl.v);
	return rc < 0 ? rc : (ssize_t)size;
out_undo:
	undo_restore_unmark(fs, ino, undo, stored, marked);
	undo_free(undo, pl.n);
out_release:
	return plan_abandon(&t, &pl, rc);
}

/*
 * Plan the zeroing of part of file page FPAGE: nothing when it is a hole
 * or unwritten, the page itself when only this file has it, else a copy
 * that joins the plan. *SEG is its index in the plan, or -1. Changes no
 * data, so a PAGES_ERECLAIM from here leaves nothing to undo.
 */
static int plan_zero(struct kmfs_fs *fs, struct txn *t, struct kmfs_inode *ino,
		     uint64_t fpage, struct plan *pl, ssize_t *seg)
{
	size_t before = pl->n;
	struct kmfs_extent e;

	/* an unwritten page reads as zeroes already, and a write that makes
	 * it written zeroes what it does not store */
	if (emap_lookup(&fs->pool, ino, fpage, &e) == 0 &&
	    (e.flags & KMFS_EXT_UNWRITTEN)) {
		*seg = -1;
		return 0;
	}
	int rc = plan_range(fs, t, ino, fpage, fpage + 1, false, true, pl);

	*seg = rc < 0 || pl->n == before ? -1 : (ssize_t)pl->n - 1;
	return rc;
}

/* the bytes zero_planned zeroed in place before a transaction, kept */
struct pre_zeroed {
	char *page; /* NULL: nothing zeroed in place before the transaction */
	size_t from, to;
	char old[KMFS_PAGE_SIZE];
};

/*
 * Zero bytes [from, to) of the page plan_zero gave (none when SEG < 0), in
 * two steps. Before the transaction (IN_TX false), a new page that replaces
 * a shared one gets the old content around the range, as any new page: it
 * is unreachable until the commit. A page the file owns alone is zeroed
 * inside it (IN_TX true) under an undo snapshot of the range (less than a
 * page), so a call that fails or is cut short by a crash leaves its bytes
 * as they were; the commit persists them. Without SNAPSHOT (no room in the
 * pool's metadata for one) it is zeroed and persisted before, as a new page,
 * its old bytes kept in *PZ for unzero to put back if the call fails
 * (a crash then can leave them zeroed).
 */
static int zero_planned(struct kmfs_fs *fs, const struct plan *pl, ssize_t seg,
			size_t from, size_t to, bool in_tx, bool snapshot,
			struct pre_zeroed *pz)
{
	if (seg < 0)
		return 0;
	const struct seg *s = &pl->v[seg];
	bool in_place = !s->fresh;
	if (in_tx != (in_place && snapshot))
		return 0;
	char *page = pool_page(&fs->pool, s->dpage);
	if (in_place) {
		int rc = in_tx ? tx_add(page + from, to - from) : 0;
		if (rc < 0)
			return rc;
		if (!in_tx) {
			pz->page = page;
			pz->from = from;
			pz->to = to;
			memcpy(pz->old + from, page + from, to - from);
		}
		memset(page + from, 0, to - from);
		if (!in_tx)
			pool_persist(&fs->pool, page + from, to - from);
		return 0;
	}
	if (media_writes_by_fd(&fs->pool.media)) {
		char copy[KMFS_PAGE_SIZE];
		if (s->old == EMAP_HOLE)
			memset(copy, 0, PG);
		else
			memcpy(copy, pool_page(&fs->pool, s->old), PG);
		memset(copy + from, 0, to - from);
		int rc = media_pwrite(&fs->pool.media, pool_off(&fs->pool, page), copy, PG);
		if (rc < 0)
			return rc;
		pool_persist_written(&fs->pool, page, PG);
	} else {
		fill_page(fs, s->dpage, s->old, from, to);
		memset(page + from, 0, to - from);
		pool_persist(&fs->pool, page, PG);
	}
	return 0;
}

/* Put back what zero_planned zeroed before a transaction that failed. */
static void unzero(struct kmfs_fs *fs, const struct pre_zeroed *pz)
{
	if (!pz->page)
		return;
	memcpy(pz->page + pz->from, pz->old + pz->from, pz->to - pz->from);
	pool_persist(&fs->pool, pz->page + pz->from, pz->to - pz->from);
}

/* the partial end pages of a punched or zeroed range [off, end) */
struct edges {
	uint64_t off, end;
	ssize_t first_seg, last_seg; /* plan_zero's segments, or -1 */
	size_t first_to;             /* the range's end in the first page */
	bool first_partial, last_partial;
	struct pre_zeroed pz[2];
};

/*
 * Plan the zeroing of the partial first page of [off, end), and of the
 * partial last page unless it is the same page (a range that starts on a
 * page boundary has no first). Both are planned before either is zeroed: a
 * PAGES_ERECLAIM from the second must not leave the first zeroed while the
 * locks are let go.
 */
static int plan_edges(struct kmfs_fs *fs, struct txn *t, struct kmfs_inode *ino,
		      uint64_t off, uint64_t end, struct plan *pl, struct edges *ed)
{
	int rc = 0;

	ed->off = off;
	ed->end = end;
	ed->first_seg = ed->last_seg = -1;
	ed->first_to = PG;
	ed->first_partial = off % PG != 0;
	ed->last_partial = end % PG && (off % PG == 0 || end / PG != off / PG);
	ed->pz[0].page = ed->pz[1].page = NULL;
	if (ed->first_partial) {
		if (end / PG == off / PG)
			ed->first_to = end % PG;
		rc = plan_zero(fs, t, ino, off / PG, pl, &ed->first_seg);
	}
	if (rc == 0 && ed->last_partial)
		rc = plan_zero(fs, t, ino, end / PG, pl, &ed->last_seg);
	return rc;
}

/* zero_planned for both end pages */
static int zero_edges(struct kmfs_fs *fs, const struct plan *pl,
		      struct edges *ed, bool in_tx, bool snapshot)
{
	int rc = zero_planned(fs, pl, ed->first_seg, ed->off % PG, ed->first_to,
			      in_tx, snapshot, &ed->pz[0]);

	return rc < 0 ? rc : zero_planned(fs, pl, ed->last_seg, 0, ed->end % PG,
					  in_tx, snapshot, &ed->pz[1]);
}

static void unzero_edges(struct kmfs_fs *fs, const struct edges *ed)
{
	unzero(fs, &ed->pz[0]);
	unzero(fs, &ed->pz[1]);
}

static int truncate_once(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t size,
			 data_and_then_fn and_then, void *arg, bool snapshot,
			 bool *no_room)
{
	struct pre_zeroed pz;
	struct plan pl = {0};
	struct txn t;
	int rc = 0;

	*no_room = false;
	pz.page = NULL;
	if (size / PG > MAX_FPAGE)
		return -EFBIG;
	if (size > ino->size)
		zero_past_size(fs, ino);
	txn_init(&t, &fs->pages);
	/* the tail of the new last page must read as zeroes if regrown */
	ssize_t seg = -1;
	if (size < ino->size && size % PG) {
		rc = plan_zero(fs, &t, ino, size / PG, &pl, &seg);
		if (rc == 0)
			rc = zero_planned(fs, &pl, seg, size % PG, PG, false,
					  snapshot, &pz);
	}
	if (rc == 0)
		rc = txn_begin(&t);
	if (rc < 0) {
		unzero(fs, &pz);
		return plan_abandon(&t, &pl, rc);
	}
	rc = zero_planned(fs, &pl, seg, size % PG, PG, true, snapshot, &pz);
	*no_room = rc == -ENOMEM;
	if (rc == 0)
		rc = plan_commit(&t, ino, &pl, 0);
	if (rc == 0 && size < ino->size) {
		uint64_t keep = (size + PG - 1) / PG;
		rc = emap_replace(&t, ino, keep, MAX_FPAGE - keep, EMAP_HOLE, 0,
				  unref_cb, &t);
	}
	if (rc == 0)
		rc = TXADD(ino, size);
	if (rc == 0) {
		ino->size = size;
		rc = touch(fs, ino, true);
	}
	if (rc == 0 && and_then)
		rc = and_then(&t, arg);
	free(pl.v);
	rc = txn_end(&t, rc);
	if (rc < 0) /* the size is as it was: so must the bytes be */
		unzero(fs, &pz);
	return rc;
}

static int punch_once(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t off,
		      uint64_t len, bool snapshot, bool *no_room)
{
	uint64_t end = off + len, full_a, full_b;
	struct edges ed;
	struct plan pl = {0};
	struct txn t;
	int rc;

	*no_room = false;
	if (end < off || end / PG > MAX_FPAGE)
		end = MAX_FPAGE * PG;
	full_a = (off + PG - 1) / PG;
	full_b = end / PG;
	txn_init(&t, &fs->pages);
	rc = plan_edges(fs, &t, ino, off, end, &pl, &ed);
	if (rc == 0)
		rc = zero_edges(fs, &pl, &ed, false, snapshot);
	if (rc == 0)
		rc = txn_begin(&t);
	if (rc < 0) {
		unzero_edges(fs, &ed);
		return plan_abandon(&t, &pl, rc);
	}
	rc = zero_edges(fs, &pl, &ed, true, snapshot);
	*no_room = rc == -ENOMEM;
	if (rc == 0)
		rc = plan_commit(&t, ino, &pl, 0);
	if (rc == 0 && full_b > full_a)
		rc = emap_replace(&t, ino, full_a, full_b - full_a, EMAP_HOLE, 0,
				  unref_cb, &t);
	if (rc == 0)
		rc = touch(fs, ino, true);
	free(pl.v);
	rc = txn_end(&t, rc);
	if (rc < 0)
		unzero_edges(fs, &ed);
	return rc;
}

/*
 * When the undo log has no room for a page's snapshot (-ENOMEM: the pool's
 * metadata cannot extend it), the call is made again with the page zeroed
 * before the transaction, as a new page is, so that truncate and punch,
 * which free space, still work on a full pool.
 */
int data_truncate(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t size,
		  data_and_then_fn and_then, void *arg)
{
	bool no_room;
	int rc = truncate_once(fs, ino, size, and_then, arg, true, &no_room);

	return no_room ? truncate_once(fs, ino, size, and_then, arg, false,
				       &no_room) : rc;
}

int data_punch(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t off,
	       uint64_t len)
{
	bool no_room;
	int rc = punch_once(fs, ino, off, len, true, &no_room);

	return no_room ? punch_once(fs, ino, off, len, false, &no_room) : rc;
}

/* The start of an fallocate of [off, end): the file's pages past its size
 * must read as zeroes once it grows over them. */
static int fallocate_start(struct kmfs_fs *fs, struct kmfs_inode *ino,
			   uint64_t off, uint64_t end, int keep_size, struct txn *t)
{
	if (end < off || (end + PG - 1) / PG > MAX_FPAGE)
		return -EFBIG;
	if (!keep_size && end > ino->size)
		zero_past_size(fs, ino);
	txn_init(t, &fs->pages);
	return 0;
}

/* Zero the new pages of the plan from its segment FROM on. */
static int zero_fresh(struct kmfs_fs *fs, const struct plan *pl, size_t from)
{
	int rc = 0;

	for (size_t i = from; rc == 0 && i < pl->n; i++)
		rc = pl->v[i].fresh ? zero_pages(fs, pl->v[i].dpage, pl->v[i].count) : 0;
	return rc;
}

/* The end of an fallocate, in its transaction: without KEEP_SIZE the file
 * grows to END; the change times move either way. */
static int fallocate_finish(struct kmfs_fs *fs, struct kmfs_inode *ino,
			    uint64_t end, int keep_size)
{
	int rc = 0;

	if (!keep_size && end > ino->size) {
		rc = TXADD(ino, size);
		if (rc == 0)
			ino->size = end;
	}
	return rc < 0 ? rc : touch(fs, ino, true);
}

int data_allocate(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t off,
		  uint64_t len, int keep_size)
{
	uint64_t end = off + len;
	/* zeroed all the same: the flag only says no write has been there */
	uint32_t fresh_flags = pool_has_unwritten(&fs->pool) ? KMFS_EXT_UNWRITTEN : 0;
	struct plan pl = {0};
	struct txn t;
	int rc;

	rc = fallocate_start(fs, ino, off, end, keep_size, &t);
	if (rc < 0)
		return rc;
	rc = plan_range(fs, &t, ino, off / PG, (end + PG - 1) / PG, true, false,
			&pl);
	if (rc < 0)
		return plan_abandon(&t, &pl, rc);
	rc = zero_fresh(fs, &pl, 0);
	if (rc == 0)
		rc = txn_begin(&t);
	if (rc < 0)
		return plan_abandon(&t, &pl, rc);
	rc = plan_commit(&t, ino, &pl, fresh_flags);
	if (rc == 0)
		rc = fallocate_finish(fs, ino, end, keep_size);
	free(pl.v);
	return txn_end(&t, rc);
}

/* Plan a new zeroed page for file page FPAGE when it is a hole. */
static int plan_hole_page(struct kmfs_fs *fs, struct txn *t,
			  const struct kmfs_inode *ino, uint64_t fpage,
			  struct plan *pl)
{
	struct kmfs_extent e;

	if (emap_lookup(&fs->pool, ino, fpage, &e) == 0)
		return 0;
	return plan_new(t, pl, fpage, 1, EMAP_HOLE);
}

/* Make room in the leaf of the extent that holds S's pages for the pieces
 * that cutting S out of it adds: none when S is the whole extent, one when
 * S reaches one of its ends (emap_convert then allocates nothing). */
static int make_room_to_cut(struct txn *t, struct kmfs_fs *fs,
			    struct kmfs_inode *ino, const struct seg *s)
{
	struct kmfs_extent e;
	int rc = emap_lookup(&fs->pool, ino, s->fpage, &e);

	if (rc != 0)
		return rc < 0 ? rc : -EIO;
	uint32_t extra = (e.fpage < s->fpage) + (s->fpage + s->count < e.fpage + e.count);
	return extra ? emap_make_room(t, ino, s->fpage, extra) : 0;
}

/*
 * FALLOC_FL_ZERO_RANGE on a format 3 pool, in one transaction. Whole pages
 * the file owns alone become unwritten where they are: no page is written,
 * moved or allocated for them. Holes and shared pages get new zeroed pages,
 * unwritten. The partial end pages are zeroed inside the range as a punch
 * zeroes them (a hole there gets a new zeroed page). So the call changes
 * everything or nothing: with no room in the metadata to cut an extent, or
 * no free pages for the holes and shared pages, it fails with ENOSPC and
 * the file as it was.
 */
static int zero_range_once(struct kmfs_fs *fs, struct kmfs_inode *ino,
			   uint64_t off, uint64_t len, int keep_size,
			   bool snapshot, bool *no_room)
{
	uint64_t end = off + len;
	uint64_t full_a = (off + PG - 1) / PG, full_b = end / PG;
	struct edges ed;
	struct plan pl = {0};
	struct txn t;
	int rc;

	*no_room = false;
	rc = fallocate_start(fs, ino, off, end, keep_size, &t);
	if (rc < 0)
		return rc;
	/* the end pages' segments come first in the plan, below EDGES */
	rc = plan_edges(fs, &t, ino, off, end, &pl, &ed);
	size_t edges = pl.n;
	if (rc == 0 && full_b > full_a)
		rc = plan_range(fs, &t, ino, full_a, full_b, true, true, &pl);
	if (rc == 0 && ed.first_partial)
		rc = plan_hole_page(fs, &t, ino, off / PG, &pl);
	if (rc == 0 && ed.last_partial)
		rc = plan_hole_page(fs, &t, ino, end / PG, &pl);
	/* every new page past the edges' copies is wholly inside the range
	 * or a hole's: zeroes, whatever page it replaces */
	if (rc == 0)
		rc = zero_fresh(fs, &pl, edges);
	if (rc == 0)
		rc = zero_edges(fs, &pl, &ed, false, snapshot);
	if (rc == 0)
		rc = txn_begin(&t);
	if (rc < 0) {
		unzero_edges(fs, &ed);
		return plan_abandon(&t, &pl, rc);
	}
	rc = zero_edges(fs, &pl, &ed, true, snapshot);
	*no_room = rc == -ENOMEM;
	/* an edge's copy keeps the old page's bytes around the range: written */
	for (size_t i = 0; rc == 0 && i < pl.n; i++) {
		const struct seg *s = &pl.v[i];

		if (s->fresh)
			rc = commit_seg(&t, ino, s, i < edges ? 0 : KMFS_EXT_UNWRITTEN);
	}
	/* whole pages this file owns: unwritten in place (an unwritten one is
	 * already); each run is cut out of its extent in that extent's leaf */
	for (size_t i = edges; rc == 0 && i < pl.n; i++) {
		const struct seg *s = &pl.v[i];

		if (s->fresh || s->unwritten)
			continue;
		rc = make_room_to_cut(&t, fs, ino, s);
		if (rc == 0)
			rc = emap_convert(&t, ino, s->fpage, s->count,
					  KMFS_EXT_UNWRITTEN);
	}
	if (rc == 0)
		rc = fallocate_finish(fs, ino, end, keep_size);
	free(pl.v);
	rc = txn_end(&t, rc);
	if (rc < 0)
		unzero_edges(fs, &ed);
	return rc;
}

/*
 * On a format 2.x pool (no unwritten extents) a punch, then an allocation,
 * not one transaction: a crash or ENOSPC between the two leaves the whole
 * pages a hole, which reads as zeroes too, only not allocated. On format 3,
 * one transaction (zero_range_once); without room in the undo log for an
 * end page's snapshot, made again with that page zeroed first, as a punch.
 */
int data_zero_range(struct kmfs_fs *fs, struct kmfs_inode *ino, uint64_t off,
		    uint64_t len, int keep_size)
{
	bool no_room;
	int rc;

	if (!pool_has_unwritten(&fs->pool)) {
		rc = data_punch(fs, ino, off, len);
		return rc < 0 ? rc : data_allocate(fs, ino, off, len, keep_size);
	}
	rc = zero_range_once(fs, ino, off, len, keep_size, true, &no_room);
	return no_room ? zero_range_once(fs, ino, off, len, keep_size, false,
					 &no_room) : rc;
}

/* emap_lookup for data: unwritten extents count as holes */
static int written_extent(struct kmfs_fs *fs, const struct kmfs_inode *ino,
			  uint64_t pos, struct kmfs_extent *e)
{
	uint64_t at = pos;
	int r;

	while ((r = emap_lookup(&fs->pool, ino, at, e)) >= 0 &&
	       (e->flags & KMFS_EXT_UNWRITTEN))
		at = e->fpage + e->count;
	if (r < 0)
		return r;
	return e->fpage <= pos ? 0 : 1; /* extents past AT start at or after it */
}

int64_t data_seek(struct kmfs_fs *fs, struct kmfs_inode *ino, int64_t off,
		  int whence)
{
	struct kmfs_extent e;
	uint64_t pos;
	int r;

	if (off < 0 || (uint64_t)off >= ino->size)
		return -ENXIO;
	pos = (uint64_t)off / PG;
	if (whence == SEEK_DATA) {
		r = written_extent(fs, ino, pos, &e);
		if (r == 0)
			return off;
		if (r == 1 && e.fpage * PG < ino->size)
			return (int64_t)(e.fpage * PG);
		return -ENXIO;
	}
	for (;;) {
		r = emap_lookup(&fs->pool, ino, pos, &e);
		if (r != 0 || (e.flags & KMFS_EXT_UNWRITTEN))
			break;
		pos = e.fpage + e.count;
	}
	if (pos * PG >= ino->size)
		return (int64_t)ino->size;
	return pos * PG > (uint64_t)off ? (int64_t)(pos * PG) : off;
}

int data_release_all(struct txn *t, struct kmfs_inode *ino)
{
	return emap_destroy(t, ino, unref_cb, t);
}

/* ---- clones ---------------------------------------------------------- */

struct clone_ctx {
	struct txn *t;
	struct kmfs_inode *dst;
	uint64_t src_first, dst_first, count;
	int rc;
};

/*
 * Share file pages [first, first+count) of SRC into DST at DST_FIRST:
 * each mapped run gains a reference and replaces what DST had there
 * (unwritten stays unwritten); holes of SRC punch DST. Caller is inside
 * the transaction and holds both inodes' locks.
 */
static int share_pages(struct kmfs_fs *fs, struct txn *t,
		       struct kmfs_inode *src, uint64_t first, uint64_t count,
		       struct kmfs_inode *dst, uint64_t dst_first)
{
	uint64_t pos = first, end = first + count;
	int rc = emap_replace(t, dst, dst_first, count, EMAP_HOLE, 0, unref_cb, t);

	while (rc == 0 && pos < end) {
		struct kmfs_extent e;
		int r = emap_lookup(&fs->pool, src, pos, &e);
		uint64_t a, b;

		if (r < 0 || (r == 1 && e.fpage >= end))
			break;
		a = e.fpage > pos ? e.fpage : pos;
		b = e.fpage + e.count < end ? e.fpage + e.count : end;
		rc = pages_ref(t, e.dpage + (a - e.fpage), b - a);
		if (rc == 0)
			rc = emap_replace(t, dst, dst_first + (a - first), b - a,
					  e.dpage + (a - e.fpage), e.flags, unref_cb, t);
		pos = b;
	}
	return rc;
}

struct bounce { char *buf; size_t n; };

static int bounce_reply(void *arg, const struct iovec *iov, int n)
{
	struct bounce *b = arg;
	for (int i = 0; i < n; i++) {
		memcpy(b->buf + b->n, iov[i].iov_base, iov[i].iov_len);
		b->n += iov[i].iov_len;
	}
	return 0;
}

static int bounce_copy(void *arg, void *dst, size_t len)
{
	struct bounce *b = arg;
	memcpy(dst, b->buf + b->n, len);
	b->n += len;
	return 0;
}

/*
 * Copy bytes the slow way (unaligned edges), one transaction per 1 MiB.
 * Returns the bytes copied, which is short if a later chunk failed (the
 * earlier ones are in the file: the caller must report them, as a write
 * does), or the error when nothing was copied.
 */
static ssize_t copy_bytes(struct kmfs_fs *fs, struct kmfs_inode *src, uint64_t soff,
			  struct kmfs_inode *dst, uint64_t doff, uint64_t len)
{
	const size_t chunk = 1u << 20;
	uint64_t done = 0;
	ssize_t rc = 0;
	char *buf;

	if (!len)
		return 0;
	buf = malloc(chunk);
	if (!buf)
		return -ENOMEM;
	while (done < len) {
		size_t n = len - done < chunk ? (size_t)(len - done) : chunk;
		struct bounce b = { buf, 0 };
		struct data_src ds = { bounce_copy, &b, NULL, NULL };

		rc = data_read(fs, src, soff + done, n, bounce_reply, &b);
		if (rc < 0)
			break;
		if (b.n < n)
			memset(buf + b.n, 0, n - b.n); /* past the source's end */
		b.n = 0;
		rc = data_write(fs, dst, doff + done, n, &ds, true);
		if (rc < 0)
			break;
		done += (uint64_t)rc;
		if ((size_t)rc < n)
			break; /* the filesystem is full: what fitted is copied */
	}
	free(buf);
	return done ? (ssize_t)done : rc;
}

ssize_t data_clone(struct kmfs_fs *fs, struct kmfs_inode *src, uint64_t soff,
		   struct kmfs_inode *dst, uint64_t doff, uint64_t len,
		   bool must_share)
{
	uint64_t head = 0, mid, tail;
	struct txn t;
	ssize_t n;
	int rc;

	if (soff >= src->size)
		return 0;
	if (len > src->size - soff)
		len = src->size - soff;
	/* the kernel checks no size for the ioctl: stat's off_t bounds it */
	if (doff > MAX_FILE_SIZE || len > MAX_FILE_SIZE - doff)
		return -EFBIG;
	/* overlapping ranges of one file, as they are once cut to its size */
	if (src == dst && soff < doff + len && doff < soff + len)
		return -EINVAL;
	if (soff % PG != doff % PG) {
		if (must_share)
			return -EINVAL; /* pages cannot line up */
		return copy_bytes(fs, src, soff, dst, doff, len);
	}
	if (doff % PG)
		head = PG - doff % PG < len ? PG - doff % PG : len;
	mid = (len - head) / PG;
	tail = len - head - mid * PG;
	/* the last partial page can be shared too when it ends both files; not
	 * within one file, where the head's copy may just have written past
	 * the size into that very page, which must stay zero there */
	if (tail && src != dst && soff + len == src->size && doff + len >= dst->size) {
		mid++;
		tail = 0;
		zero_past_size(fs, src);
	}
	if (must_share && (head || tail))
		return -EINVAL;
	/* head, middle, tail: each step is whole or not at all, except that
	 * copy_bytes may stop short; bytes already in DST are reported, as a
	 * short write would be, so that the caller knows what changed */
	n = copy_bytes(fs, src, soff, dst, doff, head);
	if (n < 0 || (uint64_t)n < head)
		return n;
	if (mid) {
		/* the size covers what is shared now; the tail's copy extends it */
		uint64_t end = doff + len - tail;

		if (end > dst->size)
			zero_past_size(fs, dst);
		txn_init(&t, &fs->pages);
		rc = txn_begin(&t);
		if (rc < 0)
			return head ? (ssize_t)head : rc;
		rc = share_pages(fs, &t, src, (soff + head) / PG, mid, dst,
				 (doff + head) / PG);
		if (rc == 0 && end > dst->size) {
			rc = TXADD(dst, size);
			if (rc == 0)
				dst->size = end;
		}
		if (rc == 0)
			rc = touch(fs, dst, true);
		rc = txn_end(&t, rc);
		if (rc < 0)
			return head ? (ssize_t)head : rc;
	}
	n = copy_bytes(fs, src, soff + len - tail, dst, doff + len - tail, tail);
	if (n < 0)
		return len - tail ? (ssize_t)(len - tail) : n;
	return (ssize_t)(len - tail + (uint64_t)n);
}
