// SPDX-License-Identifier: BSD-3-Clause
/*
 * uring.c -- FUSE over io_uring (see uring.h), below libfuse 3.14, which
 * predates it.
 *
 * Each ring entry has its own thread and its own io_uring: a handler that
 * blocks holds up only its entry, and the kernel hands the queue's next
 * request to another free entry. An entry is a header block (the request's
 * fuse_in_header, its fixed-size argument, the payload size) and a payload
 * buffer of max_write; libfuse wants a request in one piece, so the header
 * and the fixed argument are copied in front of the payload, into room kept
 * there, and the payload itself is never copied. The reply libfuse writes
 * is captured (wire_capture_replies) into the same two buffers and sent back
 * with the fetch of the next request: FUSE_IO_URING_CMD_COMMIT_AND_FETCH.
 *
 * Kernel ABI (include/uapi/linux/fuse.h, protocol 7.42; Debian 12's headers
 * predate it, so it is spelled out here).
 */
#include "uring.h"

#include <errno.h>
#include <linux/fuse.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "fuse_ops.h"
#include "log.h"
#include "wire.h"

#define URING_IN_OUT_HEADER_SZ 128
#define URING_OP_IN_OUT_SZ 128

struct uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct uring_req_header {
	char in_out[URING_IN_OUT_HEADER_SZ]; /* fuse_in_header / fuse_out_header */
	char op_in[URING_OP_IN_OUT_SZ];      /* the request's first argument */
	struct uring_ent_in_out ring_ent_in_out;
};

enum { URING_CMD_REGISTER = 1, URING_CMD_COMMIT_AND_FETCH = 2 };

struct uring_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

_Static_assert(sizeof(struct uring_req_header) == 288, "kernel ABI");
_Static_assert(sizeof(struct uring_cmd_req) == 24, "kernel ABI");

/* room in front of the payload for the in-header and the first argument */
#define PREFIX 4096
/* the payload sits in one transparent huge page (when THP is allowed): the
 * kernel's copies to and from it then walk one TLB entry, not 256 */
#define HUGE (2u << 20)
#define MAP_BYTES (2 * HUGE)
/* the kernel wants room for max_write (and at least 8 KiB) */
#define PAYLOAD_SIZE KMEMFS_MAX_WRITE

enum { UD_CMD = 1, UD_STOP = 2 };

struct ent {
	struct uring *u;
	pthread_t thread;
	bool thread_started;
	struct io_uring ring;
	bool ring_ready;
	unsigned qid;
	struct uring_req_header hdr;
	struct iovec iov[2];
	unsigned char *map;     /* MAP_BYTES, holding: */
	unsigned char *payload; /* 2 MiB-aligned, PREFIX bytes of room before it */
	uint64_t unique;      /* the request being handled */
	bool replied;         /* the handler answered it */
};

struct uring {
	struct fuse_session *se;
	int fd;       /* /dev/fuse */
	int stop_fd;  /* eventfd: every thread polls it */
	unsigned nqueues, nents;
	struct ent *ents;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	enum { WAITING, GO, STOP } state;
	atomic_bool serving; /* some entry got a request: the ring is ready */
};

/* possible CPUs (num_possible_cpus): the kernel makes one queue for each */
static unsigned possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	unsigned lo, hi, n = 0;
	int got;
	char sep = 0;

	if (!f)
		return 0;
	/* "0", "0-3" or a list "0-3,8-11" */
	while ((got = fscanf(f, "%u", &lo)) == 1) {
		hi = lo;
		if (fscanf(f, "%c", &sep) == 1 && sep == '-' &&
		    fscanf(f, "%u%c", &hi, &sep) < 1)
			break;
		n += hi >= lo ? hi - lo + 1 : 0;
		if (sep != ',')
			break;
	}
	fclose(f);
	return n;
}

bool uring_kernel_offers(void)
{
	FILE *f = fopen("/sys/module/fuse/parameters/enable_uring", "r");
	int c = f ? fgetc(f) : EOF;

	if (f)
		fclose(f);
	return c == 'Y' || c == '1';
}

/* queue a FUSE command on E's ring (it has room: one command at a time) */
static void prep_cmd(struct ent *e, uint32_t op, uint64_t commit_id)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
	struct uring_cmd_req *req;

	if (!sqe)
		abort();
	memset(sqe, 0, 2 * sizeof(*sqe)); /* an SQE128 */
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = e->u->fd;
	sqe->cmd_op = op;
	sqe->addr = (uint64_t)(uintptr_t)e->iov;
	sqe->len = 2;
	req = (struct uring_cmd_req *)sqe->cmd;
	req->commit_id = commit_id;
	req->qid = (uint16_t)e->qid;
	io_uring_sqe_set_data64(sqe, UD_CMD);
}

/*
 * The reply of the request in E, from libfuse's iovec: header, then args.
 * Any other reply this thread makes (libfuse answers a stale INTERRUPT from
 * whichever thread handles the next request) goes to /dev/fuse (returns 0).
 */
static ssize_t capture_reply(void *ctx, const struct iovec *iov, int count)
{
	struct ent *e = ctx;
	const struct fuse_out_header *out = iov[0].iov_base;
	unsigned char *payload = e->payload;
	size_t off = 0;

	if (count < 1 || iov[0].iov_len != sizeof(*out)) {
		errno = EINVAL;
		return -1;
	}
	if (out->unique != e->unique || e->replied)
		return 0;
	for (int i = 1; i < count; i++) {
		if (iov[i].iov_len > PAYLOAD_SIZE - off) {
			errno = ERANGE;
			return -1;
		}
		/* a reply may quote the request it answers: memmove */
		memmove(payload + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	memcpy(e->hdr.in_out, iov[0].iov_base, sizeof(struct fuse_out_header));
	e->hdr.ring_ent_in_out.payload_sz = (uint32_t)off;
	e->replied = true;
	return (ssize_t)(sizeof(struct fuse_out_header) + off);
}

/*
 * handle -- rebuild the request in one piece in front of its payload and
 * let libfuse handle it. The first argument's size is what is left of the
 * header's length once the payload is counted.
 */
static void handle(struct ent *e)
{
	struct fuse_in_header *in = (struct fuse_in_header *)e->hdr.in_out;
	uint32_t payload_sz = e->hdr.ring_ent_in_out.payload_sz;
	unsigned char *payload = e->payload;
	size_t first;

	e->replied = false;
	e->unique = in->unique;
	if (in->len < sizeof(*in) + payload_sz ||
	    (first = in->len - sizeof(*in) - payload_sz) > URING_OP_IN_OUT_SZ ||
	    payload_sz > PAYLOAD_SIZE) {
		log_err("io_uring: malformed request (opcode %u, len %u, payload %u)",
			in->opcode, in->len, payload_sz);
	} else {
		unsigned char *start = payload - first - sizeof(*in);
		struct fuse_buf buf = { .mem = start, .size = in->len };

		memcpy(start, in, sizeof(*in));
		memcpy(start + sizeof(*in), e->hdr.op_in, first);
		wire_inspect(start, in->len, true);
		fuse_session_process_buf(e->u->se, &buf);
	}
	if (!e->replied) {
		/* every request on a ring expects an answer: never leave one hanging */
		struct fuse_out_header out = {
			.len = sizeof(out), .error = -EIO, .unique = in->unique,
		};
		memcpy(e->hdr.in_out, &out, sizeof(out));
		e->hdr.ring_ent_in_out.payload_sz = 0;
	}
}

static bool wait_go(struct uring *u)
{
	pthread_mutex_lock(&u->lock);
	while (u->state == WAITING)
		pthread_cond_wait(&u->cv, &u->lock);
	bool go = u->state == GO;
	pthread_mutex_unlock(&u->lock);
	return go;
}

/*
 * give_up -- this entry cannot go on. Before the kernel has every entry it
 * holds all requests until it does, so a REGISTER it must refuse (a queue
 * that does not exist) makes it fall back to /dev/fuse. Once the ring
 * serves, a queue may have lost its last entry and its callers would wait
 * forever: unmount cleanly (SIGTERM to ourselves) instead.
 */
static void give_up(struct ent *e, const char *what, int err)
{
	struct uring *u = e->u;

	log_err("io_uring: ring entry of CPU queue %u: %s: %s", e->qid, what,
		strerror(err));
	if (!atomic_load(&u->serving)) {
		e->qid = UINT16_MAX;
		prep_cmd(e, URING_CMD_REGISTER, 0);
		(void)io_uring_submit(&e->ring);
		log_err("io_uring: back to /dev/fuse");
	} else {
		log_err("io_uring: unmounting rather than leaving requests unanswered");
		kill(getpid(), SIGTERM);
	}
}

static void *ent_main(void *arg)
{
	struct ent *e = arg;
	struct uring *u = e->u;
	struct io_uring_cqe *cqe;
	unsigned busy = 0, refused = 0;

	/*
	 * Not pinned to the queue's CPU (libfuse pins): a caller waiting for
	 * its answer leaves that CPU free, but the calls of one busy caller
	 * then never spread to the other CPUs. Pinned, on 2 CPUs, QD16 reads
	 * fell to 105k IOPS against 196k unpinned (docs/performance.md).
	 */
	if (!wait_go(u))
		return NULL;
	wire_capture_replies(capture_reply, e);
	prep_cmd(e, URING_CMD_REGISTER, 0);
	for (;;) {
		int rc = io_uring_submit_and_wait(&e->ring, 1);
		if (rc == -EAGAIN || rc == -EBUSY || rc == -ENOMEM) {
			/* out of kernel memory for a moment: try again, not forever */
			if (++busy > 1000) {
				give_up(e, "cannot submit", -rc);
				break;
			}
			usleep(1000);
			continue;
		}
		if (rc < 0 && rc != -EINTR) {
			give_up(e, "cannot submit", -rc);
			break;
		}
		busy = 0;
		if (io_uring_peek_cqe(&e->ring, &cqe) != 0)
			continue;
		uint64_t what = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&e->ring, cqe);
		if (what == UD_STOP)
			break;
		if (res == -ENOTCONN || res == -ECONNABORTED)
			break; /* unmounted */
		if (res < 0) {
			/* the kernel dropped this entry (a commit it could not
			 * match, say): a fresh REGISTER replaces it */
			if (++refused > 16) {
				give_up(e, "the kernel refuses this entry", -res);
				break;
			}
			log_err("io_uring: CPU queue %u: %s; registering the entry again",
				e->qid, strerror(-res));
			prep_cmd(e, URING_CMD_REGISTER, 0);
			continue;
		}
		atomic_store(&u->serving, true);
		handle(e);
		prep_cmd(e, URING_CMD_COMMIT_AND_FETCH, e->hdr.ring_ent_in_out.commit_id);
	}
	wire_capture_replies(NULL, NULL);
	return NULL;
}

/* wire.c: INIT is answered; ACCEPTED: the kernel now waits for our rings */
static void init_answered(void *arg, bool accepted)
{
	struct uring *u = arg;

	pthread_mutex_lock(&u->lock);
	if (u->state == WAITING)
		u->state = accepted ? GO : STOP;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->lock);
	if (accepted)
		log_debug("FUSE over io_uring: %u queues x %u entries", u->nqueues,
			  u->nents / u->nqueues);
}

static int ent_setup(struct uring *u, struct ent *e, unsigned qid)
{
	struct io_uring_sqe *sqe;
	int rc;

	e->u = u;
	e->qid = qid;
	rc = io_uring_queue_init(4, &e->ring, IORING_SETUP_SQE128);
	if (rc < 0)
		return rc;
	e->ring_ready = true;
	e->map = mmap(NULL, MAP_BYTES, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (e->map == MAP_FAILED) {
		e->map = NULL;
		return -ENOMEM;
	}
	e->payload = (unsigned char *)(((uintptr_t)e->map + PREFIX + HUGE - 1) &
				       ~(uintptr_t)(HUGE - 1));
	(void)madvise(e->payload, HUGE, MADV_HUGEPAGE);
	e->iov[0] = (struct iovec){ &e->hdr, sizeof(e->hdr) };
	e->iov[1] = (struct iovec){ e->payload, PAYLOAD_SIZE };
	/* the stop signal: a poll on the eventfd, armed once */
	sqe = io_uring_get_sqe(&e->ring);
	io_uring_prep_poll_add(sqe, u->stop_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, UD_STOP);
	rc = io_uring_submit(&e->ring);
	return rc < 0 ? rc : 0;
}

struct uring *uring_new(struct fuse_session *se, unsigned per_queue)
{
	struct uring *u = calloc(1, sizeof(*u));
	int rc = -ENOMEM;

	if (!u)
		return NULL;
	u->se = se;
	u->fd = fuse_session_fd(se);
	u->nqueues = possible_cpus();
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cv, NULL);
	u->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (u->nqueues == 0 || per_queue == 0 || u->stop_fd < 0)
		goto fail;
	u->nents = u->nqueues * per_queue;
	u->ents = calloc(u->nents, sizeof(*u->ents));
	if (!u->ents)
		goto fail;
	for (unsigned i = 0; i < u->nents; i++)
		if ((rc = ent_setup(u, &u->ents[i], i / per_queue)) < 0)
			goto fail;
	for (unsigned i = 0; i < u->nents; i++) {
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rc = -pthread_create(&u->ents[i].thread, NULL, ent_main, &u->ents[i]);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc < 0)
			goto fail;
		u->ents[i].thread_started = true;
	}
	wire_offer_uring(init_answered, u);
	return u;
fail:
	log_err("-o uring: cannot set up the rings (%s); using /dev/fuse", strerror(-rc));
	uring_stop(u);
	return NULL;
}

void uring_stop(struct uring *u)
{
	if (!u)
		return;
	wire_offer_uring(NULL, NULL);
	pthread_mutex_lock(&u->lock);
	if (u->state == WAITING)
		u->state = STOP;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->lock);
	if (u->stop_fd >= 0 && eventfd_write(u->stop_fd, 1) != 0)
		log_err("io_uring: cannot stop the ring threads: %s", strerror(errno));
	for (unsigned i = 0; u->ents && i < u->nents; i++) {
		struct ent *e = &u->ents[i];
		if (e->thread_started)
			pthread_join(e->thread, NULL);
		if (e->ring_ready)
			io_uring_queue_exit(&e->ring);
		if (e->map)
			munmap(e->map, MAP_BYTES);
	}
	free(u->ents);
	if (u->stop_fd >= 0)
		close(u->stop_fd);
	pthread_cond_destroy(&u->cv);
	pthread_mutex_destroy(&u->lock);
	free(u);
}
