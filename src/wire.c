/*
 * wire.c -- the FUSE protocol below libfuse, where libfuse 3.14 falls short.
 *
 * Debian 12's libfuse (3.14) cannot negotiate FUSE_HANDLE_KILLPRIV_V2 (kernel
 * 5.11+, libfuse 3.16+). Without it every WRITE costs the kernel a GETXATTR
 * round trip first (security.capability, file_remove_privs); with it the
 * superblock is SB_NOSEC, the kernel asks once per inode, and the filesystem
 * clears setuid/setgid itself when a request says the caller may not keep
 * them. So the session reads and writes /dev/fuse through these hooks
 * (fuse_session_custom_io): a read remembers the INIT request and, per
 * thread, the kill flag of the request the thread is about to handle (libfuse
 * handles a request on the thread that read it); the INIT reply gets the bit
 * when the kernel offered it.
 *
 * It also cannot ask for FUSE_DIRECT_IO_ALLOW_MMAP (Linux 6.6+), without
 * which a file opened with FOPEN_DIRECT_IO cannot be mapped shared; the INIT
 * reply asks for it when kmemfs opens files for direct I/O (fuse_ops.c) and
 * the kernel offers it, and otherwise files keep the page cache.
 *
 * libfuse 3.14 also predates FUSE_TMPFILE (open(2) with O_TMPFILE, kernel
 * 6.1+) and would answer it ENOSYS. The request is a CREATE in all but its
 * opcode (the same arguments, the name "/", the same reply), so a read turns
 * it into one and marks the thread; the create handler asks wire_tmpfile().
 *
 * Nor does it know FUSE_STATX (Linux 6.6+), the only request that carries a
 * file's birth time: answered ENOSYS, the kernel would never ask again, and
 * statx(2) would have no STATX_BTIME. Its arguments begin as GETATTR's (the
 * flags and the handle), so a read turns it into a GETATTR; the getattr
 * handler adds the birth time (wire_statx_btime), and the reply is rewritten
 * into FUSE_STATX's form on its way out.
 */
#include "wire.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "clock.h"

static _Atomic uint64_t init_unique;   /* the INIT request, until answered */
static atomic_bool kernel_offers_v2;
static atomic_bool killpriv_v2;
static __thread bool req_kills_suidgid;
static __thread bool req_is_tmpfile;
static __thread uint64_t statx_unique; /* the STATX being handled, 0: none */
static __thread struct timespec statx_btime;
static __thread bool statx_btime_set;
static atomic_bool kernel_offers_uring;
static atomic_bool rings_serve; /* INIT took io_uring */
static atomic_bool direct_io_wanted; /* set before the session starts */
static atomic_bool kernel_offers_direct_mmap;
static atomic_bool direct_io_ok; /* INIT took FUSE_DIRECT_IO_ALLOW_MMAP */
static atomic_int init_error; /* errno libfuse answered INIT with, 0: none */
static __thread bool read_forget; /* this thread's last read was a FORGET */
static _Atomic uint64_t requests[2]; /* [0] /dev/fuse, [1] io_uring */
/* busy-polling /dev/fuse before a blocking read (wire_poll_before_read) */
static uint64_t poll_ns;           /* how long; 0: never. Set before start */
static atomic_bool poller_busy;    /* one reader polls at a time */
static atomic_bool poll_pays = true; /* requests come soon after replies */
static _Atomic uint64_t polled;    /* requests a poll found */
/* set before the session starts, read by whichever thread answers INIT */
static void (*uring_started)(void *arg, bool accepted);
static void *uring_started_arg;
static void (*init_answered)(void *arg, int error);
static void *init_answered_arg;
/* a ring thread's replies go to its ring entry, not to /dev/fuse */
static __thread ssize_t (*reply_capture)(void *ctx, const struct iovec *iov,
					 int count);
static __thread void *reply_capture_ctx;

/* FUSE_OVER_IO_URING (bit 41 of the INIT flags, so bit 9 of flags2):
 * Debian 12's linux/fuse.h predates it */
#define FLAGS2_OVER_IO_URING (1u << 9)
/* FUSE_DIRECT_IO_ALLOW_MMAP (bit 36, so bit 4 of flags2): not in Debian 12's
 * header either */
#define FLAGS2_DIRECT_IO_ALLOW_MMAP (1u << 4)

/* FUSE_STATX (protocol 7.39) and its structures, as in the kernel's
 * include/uapi/linux/fuse.h: not in Debian 12's header either */
#define OPCODE_STATX 52
struct statx_time {
	int64_t sec;
	uint32_t nsec;
	int32_t reserved;
};
struct statx_attr {
	uint32_t mask;
	uint32_t blksize;
	uint64_t attributes;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint16_t mode;
	uint16_t spare0;
	uint64_t ino;
	uint64_t size;
	uint64_t blocks;
	uint64_t attributes_mask;
	struct statx_time atime, btime, ctime, mtime;
	uint32_t rdev_major, rdev_minor;
	uint32_t dev_major, dev_minor;
	uint64_t spare2[14];
};
struct statx_out {
	uint64_t attr_valid;
	uint32_t attr_valid_nsec;
	uint32_t flags;
	uint64_t spare[2];
	struct statx_attr stat;
};
_Static_assert(sizeof(struct statx_attr) == 256 &&
	       offsetof(struct statx_attr, ino) == 32 &&
	       offsetof(struct statx_attr, btime) == 80 &&
	       offsetof(struct statx_attr, rdev_major) == 128,
	       "struct fuse_statx as the kernel's");
_Static_assert(sizeof(struct statx_out) == 288 &&
	       offsetof(struct statx_out, stat) == 32,
	       "struct fuse_statx_out as the kernel's");
/* FUSE_STATX's first fields are GETATTR's */
_Static_assert(offsetof(struct fuse_getattr_in, fh) == 8 &&
	       sizeof(struct fuse_getattr_in) == 16, "getattr_in as statx_in");
#ifndef STATX_BASIC_STATS
#define STATX_BASIC_STATS 0x7ffu
#endif
#ifndef STATX_BTIME
#define STATX_BTIME 0x800u
#endif

/* The kill flag a request carries, by opcode; false when it has none. */
static bool request_kill_flag(const struct fuse_in_header *h, const void *arg,
			      size_t arglen)
{
	switch (h->opcode) {
	case FUSE_WRITE:
		return arglen >= sizeof(struct fuse_write_in) &&
		       (((const struct fuse_write_in *)arg)->write_flags &
			FUSE_WRITE_KILL_SUIDGID);
	case FUSE_SETATTR:
		return arglen >= sizeof(struct fuse_setattr_in) &&
		       (((const struct fuse_setattr_in *)arg)->valid &
			FATTR_KILL_SUIDGID);
	case FUSE_OPEN:
		return arglen >= sizeof(struct fuse_open_in) &&
		       (((const struct fuse_open_in *)arg)->open_flags &
			FUSE_OPEN_KILL_SUIDGID);
	case FUSE_CREATE:
		return arglen >= sizeof(struct fuse_create_in) &&
		       (((const struct fuse_create_in *)arg)->open_flags &
			FUSE_OPEN_KILL_SUIDGID);
	default:
		return false;
	}
}

/*
 * Note what the request in BUF (N bytes, header first) needs from wire.c,
 * and rewrite an O_TMPFILE into a CREATE; for both transports.
 */
void wire_inspect(void *buf, size_t n, bool ring)
{
	struct fuse_in_header *h = buf;
	const char *arg = (const char *)buf + sizeof(*h);

	atomic_fetch_add_explicit(&requests[ring], 1, memory_order_relaxed);
	req_kills_suidgid = false;
	req_is_tmpfile = false;
	statx_unique = 0;
	statx_btime_set = false;
	if (n < sizeof(*h))
		return;
	if (h->opcode == FUSE_TMPFILE) {
		h->opcode = FUSE_CREATE;
		req_is_tmpfile = true;
	}
	if (h->opcode == OPCODE_STATX && n >= sizeof(*h) + sizeof(struct fuse_getattr_in)) {
		h->opcode = FUSE_GETATTR;
		statx_unique = h->unique;
	}
	if (h->opcode == FUSE_INIT) {
		const struct fuse_init_in *in = (const void *)arg;
		if (n >= sizeof(*h) + offsetof(struct fuse_init_in, flags2)) {
			bool ext = n >= sizeof(*h) + sizeof(*in) &&
				   (in->flags & FUSE_INIT_EXT);
			atomic_store(&kernel_offers_v2,
				     (in->flags & FUSE_HANDLE_KILLPRIV_V2) != 0);
			atomic_store(&kernel_offers_uring,
				     ext && (in->flags2 & FLAGS2_OVER_IO_URING));
			atomic_store(&kernel_offers_direct_mmap,
				     ext && (in->flags2 & FLAGS2_DIRECT_IO_ALLOW_MMAP));
		}
		atomic_store(&init_unique, h->unique);
		return;
	}
	req_kills_suidgid = request_kill_flag(h, arg, n - sizeof(*h));
}

/* with the rings serving, how long a /dev/fuse reader that just took a
 * FORGET waits before it reads again */
#define FORGET_GATHER_NS (2 * 1000 * 1000)

/*
 * With one request in flight (a program that waits for each answer), most
 * of a request's time is hand-offs: the kernel wakes a reader asleep in
 * read(), and on this kind of VM a wake-up costs more than serving the
 * request. A reader that polls for a short while after its reply takes the
 * next request without sleeping. One reader polls at a time; polling stops
 * once a poll finds nothing in time, and starts again when a sleeping
 * reader is woken within the window (the next request came that soon).
 * Returns whether the poll found a request.
 */
static bool poll_before_read(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	bool found = false;
	uint64_t t0;

	if (!poll_ns || !atomic_load_explicit(&poll_pays, memory_order_relaxed) ||
	    atomic_load_explicit(&rings_serve, memory_order_relaxed) ||
	    atomic_exchange(&poller_busy, true))
		return false;
	/* poll() is a cancellation point; this loop never blocks, so only the
	 * read() after it may be cancelled (loop.c), never with poller_busy set */
	int cancel;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
	t0 = mono_ns();
	do {
		if (poll(&p, 1, 0) > 0) {
			found = true;
			break;
		}
		/* the caller may be waiting for this CPU */
		sched_yield();
	} while (mono_ns() - t0 < poll_ns);
	atomic_store_explicit(&poll_pays, found, memory_order_relaxed);
	atomic_store(&poller_busy, false);
	pthread_setcancelstate(cancel, NULL);
	return found;
}

/* a read after a poll that saw a request and returns within this took
 * that request without sleeping */
#define POLLED_READ_NS 20000

static ssize_t wire_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n;
	bool found;
	uint64_t t0 = 0;

	(void)userdata;
	/*
	 * With the rings serving, /dev/fuse carries little but the FORGETs of
	 * unlinked and evicted inodes, and a reader asleep in read() is woken
	 * for each one: an rm paid a wake-up per file. After a FORGET, pause,
	 * so that the next ones gather into one BATCH_FORGET. Not counted as
	 * busy by loop.c (this is its receive), so no worker is added for it.
	 */
	if (read_forget && atomic_load_explicit(&rings_serve, memory_order_relaxed)) {
		struct timespec gather = { 0, FORGET_GATHER_NS };
		nanosleep(&gather, NULL);
	}
	found = poll_before_read(fd);
	if (poll_ns)
		t0 = mono_ns();
	n = read(fd, buf, len);
	if (t0 && n > 0) {
		uint64_t waited = mono_ns() - t0;
		/* a sleeper the kernel woke may have taken the request the poll
		 * saw: then this read slept like any other */
		if (found && waited < POLLED_READ_NS)
			atomic_fetch_add_explicit(&polled, 1, memory_order_relaxed);
		else if (waited < poll_ns)
			atomic_store_explicit(&poll_pays, true, memory_order_relaxed);
	}
	read_forget = false;
	if (n > 0) {
		const struct fuse_in_header *h = buf;
		wire_inspect(buf, (size_t)n, false);
		read_forget = (size_t)n >= sizeof(*h) &&
			      (h->opcode == FUSE_FORGET || h->opcode == FUSE_BATCH_FORGET);
	}
	return n;
}

/* The INIT reply: say yes to what the kernel offered and libfuse 3.14 does
 * not know. Returns whether io_uring was accepted. */
static bool amend_init_reply(struct iovec *iov, int count)
{
	const struct fuse_out_header *h = iov[0].iov_base;
	struct fuse_init_out *out;

	if (h->error != 0 || count < 2 ||
	    iov[1].iov_len < offsetof(struct fuse_init_out, max_background))
		return false;
	out = iov[1].iov_base;
	if (atomic_load(&kernel_offers_v2)) {
		out->flags |= FUSE_HANDLE_KILLPRIV_V2;
		atomic_store(&killpriv_v2, true);
	}
	if (iov[1].iov_len < offsetof(struct fuse_init_out, flags2) + sizeof(out->flags2))
		return false;
	if (atomic_load(&direct_io_wanted) && atomic_load(&kernel_offers_direct_mmap)) {
		out->flags |= FUSE_INIT_EXT;
		out->flags2 |= FLAGS2_DIRECT_IO_ALLOW_MMAP;
		atomic_store(&direct_io_ok, true);
	}
	if (uring_started && atomic_load(&kernel_offers_uring)) {
		out->flags |= FUSE_INIT_EXT;
		out->flags2 |= FLAGS2_OVER_IO_URING;
		return true;
	}
	return false;
}

static struct statx_time statx_time_of(uint64_t sec, uint32_t nsec)
{
	return (struct statx_time){ .sec = (int64_t)sec, .nsec = nsec };
}

/*
 * The GETATTR reply in IOV that answers a STATX, in FUSE_STATX's form: the
 * same attributes and timeout, and the birth time the handler gave. Fills
 * HDR and OUT and points IOV at them; false (IOV untouched) when it is not
 * such a reply or carries an error.
 */
static bool statx_reply(struct iovec *iov, int count, struct fuse_out_header *hdr,
			struct statx_out *out)
{
	const struct fuse_out_header *h = iov[0].iov_base;
	const struct fuse_attr_out *ao;
	const struct fuse_attr *a;

	if (!statx_unique || iov[0].iov_len < sizeof(*h) || h->unique != statx_unique)
		return false;
	statx_unique = 0;
	if (h->error != 0 || count != 2 || iov[1].iov_len < sizeof(*ao))
		return false;
	ao = iov[1].iov_base;
	a = &ao->attr;
	memset(out, 0, sizeof(*out));
	out->attr_valid = ao->attr_valid;
	out->attr_valid_nsec = ao->attr_valid_nsec;
	out->stat = (struct statx_attr){
		.mask = STATX_BASIC_STATS | (statx_btime_set ? STATX_BTIME : 0),
		.blksize = a->blksize,
		.nlink = a->nlink,
		.uid = a->uid,
		.gid = a->gid,
		.mode = (uint16_t)a->mode,
		.ino = a->ino,
		.size = a->size,
		.blocks = a->blocks,
		.atime = statx_time_of(a->atime, a->atimensec),
		.mtime = statx_time_of(a->mtime, a->mtimensec),
		.ctime = statx_time_of(a->ctime, a->ctimensec),
		.rdev_major = major(a->rdev),
		.rdev_minor = minor(a->rdev),
	};
	if (statx_btime_set)
		out->stat.btime = statx_time_of((uint64_t)statx_btime.tv_sec,
						(uint32_t)statx_btime.tv_nsec);
	*hdr = *h;
	hdr->len = sizeof(*hdr) + sizeof(*out);
	iov[0] = (struct iovec){ hdr, sizeof(*hdr) };
	iov[1] = (struct iovec){ out, sizeof(*out) };
	return true;
}

static ssize_t wire_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	const struct fuse_out_header *h = iov[0].iov_base;
	uint64_t init = atomic_load(&init_unique);
	bool uring_yes = false;
	struct fuse_out_header statx_hdr;
	struct statx_out statx;
	ssize_t n;

	(void)userdata;
	if (statx_reply(iov, count, &statx_hdr, &statx))
		h = iov[0].iov_base;
	if (reply_capture && h->unique != 0 &&
	    (n = reply_capture(reply_capture_ctx, iov, count)) != 0)
		return n;
	bool is_init = init && iov[0].iov_len >= sizeof(*h) && h->unique == init;
	if (is_init) {
		atomic_store(&init_unique, 0);
		atomic_store(&init_error, -h->error);
		uring_yes = amend_init_reply(iov, count);
	}
	n = writev(fd, iov, count);
	if (!is_init)
		return n;
	int write_error = n < 0 ? errno : 0;
	if (write_error && !atomic_load(&init_error))
		atomic_store(&init_error, write_error);
	/* the kernel has taken INIT once the write returns: rings may register */
	if (uring_started) {
		bool rings = uring_yes && n >= 0;
		atomic_store(&rings_serve, rings);
		uring_started(uring_started_arg, rings);
	}
	if (init_answered)
		init_answered(init_answered_arg, atomic_load(&init_error));
	if (write_error)
		errno = write_error;
	return n;
}

void wire_on_init(void (*answered)(void *arg, int error), void *arg)
{
	init_answered_arg = arg;
	init_answered = answered;
}

void wire_offer_uring(void (*started)(void *arg, bool accepted), void *arg)
{
	uring_started_arg = arg;
	uring_started = started;
}

void wire_want_direct_io(bool want)
{
	atomic_store(&direct_io_wanted, want);
}

bool wire_kernel_maps_direct_io(void)
{
	return atomic_load(&kernel_offers_direct_mmap);
}

bool wire_direct_io(void)
{
	return atomic_load(&direct_io_ok);
}

void wire_capture_replies(ssize_t (*capture)(void *ctx, const struct iovec *iov,
					     int count),
			  void *ctx)
{
	reply_capture = capture;
	reply_capture_ctx = ctx;
}

int wire_install(struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
		.read = wire_read,
		.writev = wire_writev,
	};

	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

void wire_poll_before_read(uint64_t ns)
{
	poll_ns = ns;
}

uint64_t wire_requests_polled(void)
{
	return atomic_load_explicit(&polled, memory_order_relaxed);
}

uint64_t wire_requests(bool ring)
{
	return atomic_load_explicit(&requests[ring], memory_order_relaxed);
}

int wire_init_error(void)
{
	return atomic_load(&init_error);
}

bool wire_killpriv_v2(void)
{
	return atomic_load(&killpriv_v2);
}

bool wire_kill_suidgid(void)
{
	return req_kills_suidgid;
}

bool wire_tmpfile(void)
{
	return req_is_tmpfile;
}

bool wire_statx(void)
{
	return statx_unique != 0;
}

void wire_statx_btime(struct timespec btime)
{
	statx_btime = btime;
	statx_btime_set = true;
}
