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
#include <fcntl.h>
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
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
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

/* every entry of a queue busy, none finishing, for this long: rescue it */
#define STALL_NS (50 * 1000 * 1000)
/* entries per queue, spares included, at most (each a thread and 4 MiB of
 * address space, of which the payload's pages are touched when used) */
#define MAX_PER_QUEUE 16
/* kicks for one spare, one a tick, before the monitor stops trying (a
 * mount point covered by another mount sends them elsewhere) */
#define MAX_KICKS 100

enum { UD_CMD = 1, UD_STOP = 2 };

/* a CPU queue as the monitor sees it; its own cache line, as every
 * request of the queue updates the counters */
struct queue {
	_Alignas(64) _Atomic unsigned nidle; /* entries waiting in the kernel for a request */
	_Atomic uint64_t finished;  /* requests answered: the monitor's progress mark */
	/* the rest under u->lock */
	unsigned nents;             /* entries set up, spares included */
	struct ent *owed;           /* a spare whose kick is not answered yet */
	uint64_t owed_mark;         /* finished when that spare was added */
	unsigned kicks_sent;        /* for that spare */
	bool said_full, said_no_spare, said_no_kick; /* logged once a streak */
};

/*
 * What kick threads share with the monitor, freed by the last of them: a
 * kick that is never answered (the mount hung anyway) must not keep
 * struct uring alive or point into it.
 */
struct kicks {
	_Atomic unsigned refs;
	char *mountpoint;
	_Atomic unsigned inflight[]; /* per queue: one kick at a time */
};

struct kick {
	struct kicks *k;
	unsigned qid;
};

struct ent {
	struct uring *u;
	pthread_t thread;
	bool thread_started;
	struct io_uring ring;
	bool ring_ready;
	unsigned qid;
	bool spare;           /* added by the monitor to a blocked queue */
	bool counted;         /* registered: counted in its queue's nidle */
	bool holds_request;   /* the kernel waits for this entry's commit */
	bool registered;      /* the REGISTER went in (u->lock) */
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
	struct kicks *kicks;
	unsigned nqueues, per_queue, max_per_queue;
	struct queue *queues;
	struct ent *ents;  /* max_per_queue slots per queue, queue by queue */
	pthread_mutex_t lock;
	pthread_cond_t cv;         /* state changes */
	pthread_cond_t monitor_cv; /* wakes the monitor: a queue all busy, or stop */
	enum { WAITING, GO, STOP } state;
	atomic_bool serving; /* some entry got a request: the ring is ready */
	pthread_t monitor;
	bool monitor_started;
	atomic_bool monitor_asleep; /* waiting untimed: wake it when a queue's nidle hits 0 */
};

static struct queue *queue_of(struct ent *e)
{
	return &e->u->queues[e->qid];
}

/* start a thread with every signal blocked (the main thread takes them);
 * ATTR may be NULL. Returns 0 or -errno. */
static int start_thread(pthread_t *t, const pthread_attr_t *attr,
			void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(t, attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -rc;
}

/*
 * for_each_cpu -- the CPUs of a list like "0", "0-3" or "0-3,8-11" in the
 * sysfs file PATH, each given to EACH (when not NULL) until it returns
 * false. Returns how many were read; 0 when PATH cannot be read.
 */
static unsigned for_each_cpu(const char *path, bool (*each)(unsigned cpu, void *arg),
			     void *arg)
{
	FILE *f = fopen(path, "r");
	unsigned lo, hi, n = 0;
	char sep = ',';

	if (!f)
		return 0;
	while (sep == ',' && fscanf(f, "%u", &lo) == 1) {
		hi = lo;
		sep = 0;
		if (fscanf(f, "%c", &sep) == 1 && sep == '-' &&
		    fscanf(f, "%u%c", &hi, &sep) < 1)
			break;
		for (unsigned c = lo; c <= hi; c++, n++)
			if (each && !each(c, arg)) {
				fclose(f);
				return n + 1;
			}
	}
	fclose(f);
	return n;
}

/* possible CPUs (num_possible_cpus): the kernel makes one queue for each */
static unsigned possible_cpus(void)
{
	return for_each_cpu("/sys/devices/system/cpu/possible", NULL, NULL);
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
 * forever: unmount cleanly (SIGTERM to ourselves) instead. A spare is not
 * the last entry of its queue: unless the kernel waits for its commit, it
 * may simply end.
 */
static void give_up(struct ent *e, const char *what, int err)
{
	struct uring *u = e->u;

	log_err("io_uring: ring entry of CPU queue %u: %s: %s", e->qid, what,
		strerror(err));
	if (e->counted)
		atomic_fetch_sub(&queue_of(e)->nidle, 1);
	e->counted = false;
	if (e->spare && !e->holds_request) {
		log_err("io_uring: spare entry of CPU queue %u ends", e->qid);
	} else if (!atomic_load(&u->serving)) {
		e->qid = UINT16_MAX;
		prep_cmd(e, URING_CMD_REGISTER, 0);
		(void)io_uring_submit(&e->ring);
		log_err("io_uring: back to /dev/fuse");
	} else {
		log_err("io_uring: unmounting rather than leaving requests unanswered");
		kill(getpid(), SIGTERM);
	}
}

/* E's REGISTER went in: it waits for requests, and may be kicked */
static void registered(struct ent *e)
{
	struct uring *u = e->u;

	if (!e->counted)
		atomic_fetch_add(&queue_of(e)->nidle, 1);
	e->counted = true;
	pthread_mutex_lock(&u->lock);
	e->registered = true;
	pthread_mutex_unlock(&u->lock);
}

/* the last idle entry of a queue took a request: start the monitor's clock */
static void queue_busy(struct uring *u)
{
	pthread_mutex_lock(&u->lock);
	pthread_cond_signal(&u->monitor_cv);
	pthread_mutex_unlock(&u->lock);
}

static void *ent_main(void *arg)
{
	struct ent *e = arg;
	struct uring *u = e->u;
	struct queue *q = queue_of(e);
	struct io_uring_cqe *cqe;
	unsigned busy = 0, refused = 0;
	bool registering = true;

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
		/* the first REGISTER alone: the kernel takes it within the
		 * submit, and then the entry counts as waiting */
		int rc = registering ? io_uring_submit(&e->ring)
				     : io_uring_submit_and_wait(&e->ring, 1);
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
		e->holds_request = false; /* the commit, if any, went in */
		if (registering && rc > 0) {
			registering = false;
			registered(e);
		}
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
		e->holds_request = true;
		if (!atomic_load_explicit(&u->serving, memory_order_relaxed))
			atomic_store(&u->serving, true);
		/* seq_cst, paired with the monitor: see monitor_main */
		if (atomic_fetch_sub(&q->nidle, 1) == 1 && atomic_load(&u->monitor_asleep))
			queue_busy(u);
		handle(e);
		atomic_fetch_add(&q->finished, 1);
		atomic_fetch_add(&q->nidle, 1);
		prep_cmd(e, URING_CMD_COMMIT_AND_FETCH, e->hdr.ring_ent_in_out.commit_id);
	}
	wire_capture_replies(NULL, NULL);
	return NULL;
}

static void kicks_put(struct kicks *k)
{
	if (k && atomic_fetch_sub(&k->refs, 1) == 1) {
		free(k->mountpoint);
		free(k);
	}
}

/*
 * kick_main -- a request from the blocked queue's CPU (this thread is
 * pinned there): the kernel hands it to the spare, whose commit then
 * fetches the oldest request queued behind the blocked entries. A GETATTR
 * of the root, forced past the attribute cache.
 */
static void *kick_main(void *arg)
{
	struct kick *kk = arg;
	struct statx stx;

	(void)statx(AT_FDCWD, kk->k->mountpoint, AT_STATX_FORCE_SYNC, STATX_MODE, &stx);
	atomic_fetch_sub(&kk->k->inflight[kk->qid], 1);
	kicks_put(kk->k);
	free(kk);
	return NULL;
}

/* send a kick from CPU QID (none is on its way); u->lock held */
static void kick(struct uring *u, unsigned qid)
{
	struct queue *q = &u->queues[qid];
	struct kick *kk;
	pthread_attr_t attr;
	pthread_t t;
	cpu_set_t cpu;
	int rc = -ENOMEM;

	kk = malloc(sizeof(*kk));
	if (kk) {
		kk->k = u->kicks;
		kk->qid = qid;
		atomic_fetch_add(&u->kicks->refs, 1);
		atomic_fetch_add(&u->kicks->inflight[qid], 1);
		CPU_ZERO(&cpu);
		CPU_SET(qid, &cpu);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setaffinity_np(&attr, sizeof(cpu), &cpu);
		rc = start_thread(&t, &attr, kick_main, kk);
		pthread_attr_destroy(&attr);
		if (rc != 0) {
			atomic_fetch_sub(&u->kicks->inflight[qid], 1);
			kicks_put(u->kicks);
			free(kk);
		}
	}
	if (rc != 0 && !q->said_no_kick)
		log_err("io_uring: cannot send a request from CPU %u to free its blocked "
			"queue: %s; trying again", qid, strerror(-rc));
	q->said_no_kick = rc != 0;
}

static int ent_setup(struct uring *u, struct ent *e, unsigned qid);
static int ent_start(struct ent *e);
static void ent_cleanup(struct ent *e);

/*
 * rescue -- every entry of queue QID has been busy for a tick with none
 * finishing: they may all wait, in the kernel, for a request queued behind
 * them (a page the kernel keeps locked until a READ is answered, say). A
 * new entry takes only requests that arrive after it, so register a spare;
 * the monitor then kicks it (see monitor_main). Spares stay: the kernel has
 * no way to take an entry back. u->lock held.
 */
static void rescue(struct uring *u, unsigned qid)
{
	struct queue *q = &u->queues[qid];
	struct ent *e;
	int rc;

	if (q->nents >= u->max_per_queue) {
		if (!q->said_full)
			log_err("io_uring: all %u entries of CPU queue %u are blocked and "
				"no other can be added", q->nents, qid);
		q->said_full = true;
		return;
	}
	e = &u->ents[qid * u->max_per_queue + q->nents];
	rc = ent_setup(u, e, qid);
	if (rc == 0) {
		e->spare = true;
		rc = ent_start(e);
	}
	if (rc < 0) {
		if (!q->said_no_spare)
			log_err("io_uring: all %u entries of CPU queue %u are blocked and "
				"no other can start: %s; trying again", q->nents, qid,
				strerror(-rc));
		q->said_no_spare = true;
		ent_cleanup(e);
		return;
	}
	q->said_no_spare = false;
	q->nents++;
	q->owed = e;
	q->owed_mark = atomic_load(&q->finished);
	q->kicks_sent = 0;
	log_info("io_uring: all entries of CPU queue %u busy for %d ms: added "
		 "entry %u", qid, STALL_NS / 1000000, q->nents);
}

/* a queue with no idle entry, or a spare still owed its kick */
static bool any_queue_to_watch(struct uring *u)
{
	if (!atomic_load(&u->serving))
		return false; /* queues fill up with entries before the ring serves */
	for (unsigned i = 0; i < u->nqueues; i++)
		if ((atomic_load(&u->queues[i].nidle) == 0 && u->queues[i].nents > 0) ||
		    u->queues[i].owed)
			return true;
	return false;
}

/*
 * The monitor sleeps without a timer while every queue has an idle entry
 * and no spare is owed a kick, and ticks otherwise (loop.c's monitor, per
 * queue). It says it is asleep before it reads nidle, and an entry takes
 * its queue's nidle to 0 before it reads monitor_asleep (both seq_cst), so
 * one of them sees the other.
 *
 * A spare is kicked once its REGISTER is in (earlier, the kick would take
 * a blocked entry's place in the queue), and kicked again each tick until
 * the queue moves: a kick can be lost (the request answered by a blocked
 * entry freed meanwhile, no thread allowed on that CPU for a moment).
 */
static void *monitor_main(void *arg)
{
	struct uring *u = arg;
	uint64_t *mark = calloc(u->nqueues, sizeof(*mark));
	bool *was_busy = calloc(u->nqueues, sizeof(*was_busy));

	pthread_mutex_lock(&u->lock);
	while (mark && was_busy && u->state != STOP) {
		atomic_store(&u->monitor_asleep, true);
		if (u->state == WAITING || !any_queue_to_watch(u)) {
			pthread_cond_wait(&u->monitor_cv, &u->lock);
			continue;
		}
		atomic_store(&u->monitor_asleep, false);
		for (unsigned i = 0; i < u->nqueues; i++) {
			was_busy[i] = atomic_load(&u->queues[i].nidle) == 0;
			mark[i] = atomic_load(&u->queues[i].finished);
		}
		struct timespec deadline;
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_nsec += STALL_NS;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		while (u->state != STOP &&
		       pthread_cond_timedwait(&u->monitor_cv, &u->lock, &deadline) != ETIMEDOUT)
			;
		for (unsigned i = 0; i < u->nqueues && u->state == GO; i++) {
			struct queue *q = &u->queues[i];
			uint64_t finished = atomic_load(&q->finished);

			if (q->owed && finished != q->owed_mark)
				q->owed = NULL; /* the queue moves again */
			if (q->owed && q->kicks_sent >= MAX_KICKS) {
				log_err("io_uring: %u requests sent from CPU %u did not free its "
					"queue; the next request of a caller there may", MAX_KICKS, i);
				q->owed = NULL;
			} else if (q->owed) {
				if (q->owed->registered && atomic_load(&u->kicks->inflight[i]) == 0) {
					q->kicks_sent++;
					kick(u, i);
				}
			} else if (was_busy[i] && atomic_load(&q->nidle) == 0 &&
				   finished == mark[i]) {
				rescue(u, i);
			}
		}
	}
	pthread_mutex_unlock(&u->lock);
	free(mark);
	free(was_busy);
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
	pthread_cond_signal(&u->monitor_cv);
	pthread_mutex_unlock(&u->lock);
	if (accepted)
		log_debug("FUSE over io_uring: %u queues x %u entries", u->nqueues,
			  u->per_queue);
}

static void ent_cleanup(struct ent *e)
{
	if (e->thread_started)
		pthread_join(e->thread, NULL);
	if (e->ring_ready)
		io_uring_queue_exit(&e->ring);
	if (e->map)
		munmap(e->map, MAP_BYTES);
	memset(e, 0, sizeof(*e));
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

static int ent_start(struct ent *e)
{
	int rc = start_thread(&e->thread, NULL, ent_main, e);

	e->thread_started = rc == 0;
	return rc;
}

/* may this thread run on CPU (below *ARG, the queue count)? */
static bool cpu_reachable(unsigned cpu, void *arg)
{
	cpu_set_t one;

	if (cpu >= *(unsigned *)arg || cpu >= CPU_SETSIZE)
		return true;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one) == 0 || errno != EINVAL)
		return true;
	log_err("-o uring: this daemon may not run on CPU %u (a cpuset), so a "
		"blocked ring queue of that CPU could not be freed; using /dev/fuse", cpu);
	*(unsigned *)arg = 0;
	return false;
}

bool uring_cpus_reachable(void)
{
	unsigned nqueues = possible_cpus();
	cpu_set_t saved;

	/* tried on this thread, then put back */
	if (sched_getaffinity(0, sizeof(saved), &saved) != 0)
		return true; /* cannot tell: the kick says so if it fails */
	(void)for_each_cpu("/sys/devices/system/cpu/online", cpu_reachable, &nqueues);
	(void)sched_setaffinity(0, sizeof(saved), &saved);
	return nqueues != 0;
}

struct uring *uring_new(struct fuse_session *se, const char *mountpoint,
			unsigned per_queue, unsigned max_per_queue)
{
	struct uring *u = calloc(1, sizeof(*u));
	pthread_condattr_t ca;
	int rc = -ENOMEM;

	if (!u)
		return NULL;
	u->se = se;
	u->fd = fuse_session_fd(se);
	u->nqueues = possible_cpus();
	u->per_queue = per_queue;
	u->max_per_queue = max_per_queue > MAX_PER_QUEUE ? MAX_PER_QUEUE : max_per_queue;
	if (u->max_per_queue < per_queue)
		u->max_per_queue = per_queue;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cv, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&u->monitor_cv, &ca);
	pthread_condattr_destroy(&ca);
	u->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (u->nqueues == 0 || per_queue == 0 || u->stop_fd < 0 || !mountpoint)
		goto fail;
	u->kicks = calloc(1, sizeof(*u->kicks) + u->nqueues * sizeof(u->kicks->inflight[0]));
	if (!u->kicks || !(u->kicks->mountpoint = strdup(mountpoint)))
		goto fail;
	atomic_store(&u->kicks->refs, 1);
	u->queues = calloc(u->nqueues, sizeof(*u->queues));
	u->ents = calloc((size_t)u->nqueues * u->max_per_queue, sizeof(*u->ents));
	if (!u->queues || !u->ents)
		goto fail;
	for (unsigned q = 0; q < u->nqueues; q++)
		for (unsigned i = 0; i < per_queue; i++, u->queues[q].nents++)
			if ((rc = ent_setup(u, &u->ents[q * u->max_per_queue + i], q)) < 0)
				goto fail;
	for (unsigned q = 0; q < u->nqueues; q++)
		for (unsigned i = 0; i < per_queue; i++)
			if ((rc = ent_start(&u->ents[q * u->max_per_queue + i])) < 0)
				goto fail;
	if ((rc = start_thread(&u->monitor, NULL, monitor_main, u)) < 0)
		goto fail;
	u->monitor_started = true;
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
	u->state = STOP;
	pthread_cond_broadcast(&u->cv);
	pthread_cond_signal(&u->monitor_cv);
	pthread_mutex_unlock(&u->lock);
	if (u->monitor_started)
		pthread_join(u->monitor, NULL);
	if (u->stop_fd >= 0 && eventfd_write(u->stop_fd, 1) != 0)
		log_err("io_uring: cannot stop the ring threads: %s", strerror(errno));
	for (size_t i = 0; u->ents && i < (size_t)u->nqueues * u->max_per_queue; i++)
		ent_cleanup(&u->ents[i]);
	free(u->ents);
	free(u->queues);
	if (u->kicks && !u->kicks->mountpoint) {
		free(u->kicks);
		u->kicks = NULL;
	}
	kicks_put(u->kicks);
	if (u->stop_fd >= 0)
		close(u->stop_fd);
	pthread_cond_destroy(&u->monitor_cv);
	pthread_cond_destroy(&u->cv);
	pthread_mutex_destroy(&u->lock);
	free(u);
}
