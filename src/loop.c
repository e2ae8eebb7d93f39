// SPDX-License-Identifier: BSD-3-Clause
/*
 * loop.c -- worker threads sized to the CPUs, with rescue workers when all
 * of them block (see loop.h).
 *
 * Why not libfuse's loop: it keeps max_threads workers all asleep on
 * /dev/fuse, and each request wakes one of them, often on the other CPU;
 * with as many workers as CPUs a worker that finishes a request finds the
 * next one queued and takes it without sleeping. On the 2-CPU VM this made
 * 4 KiB QD16 I/O 20-25% faster at a fifth less CPU per request
 * (docs/performance.md). Blocked workers are the risk of a small pool, so a
 * monitor watches for a tick with every worker busy and none finishing.
 *
 * Locking: l->lock protects the worker list, the list of workers that
 * left, peak, stopping, ended and error, and is the monitor's condition
 * mutex; nworkers changes only under
 * it but is read without it. nidle, finished and monitor_asleep are
 * atomics, read and changed without it on the request path.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

#define TICK_NS (20 * 1000 * 1000) /* no request finished for this long: stuck */

struct worker {
	struct loop *l;
	pthread_t thread;
	struct worker *prev, *next;
	_Alignas(max_align_t) unsigned char slot[]; /* ops->slot_size bytes */
};

struct loop {
	const struct loop_ops *ops;
	void *arg;
	unsigned base, max;
	pthread_mutex_t lock;
	pthread_cond_t cv;        /* wakes the monitor: all busy, or stopping */
	int ended_fd;             /* eventfd: a worker saw the source end or fail */
	struct worker *workers;   /* every live worker but those leaving */
	struct worker *left;      /* workers that left, to be joined: their
				   * thread's exit (libpmemobj's thread-local
				   * destructors) must end before the pool closes */
	_Atomic unsigned nworkers; /* changed under lock; read without it */
	unsigned peak;
	bool stopping;            /* loop_run is tearing down: no spawns, no leaving */
	bool ended;               /* a worker saw the source end or fail */
	int error;                /* the first receive error */
	pthread_t monitor;
	_Atomic unsigned nidle;      /* workers in (or about to be in) receive */
	_Atomic uint64_t finished;   /* requests handled, the monitor's progress mark */
	_Atomic bool monitor_asleep; /* waiting untimed: wake it when nidle hits 0 */
};

static void *worker_main(void *arg);

/*
 * reap_left -- join and free the workers that left. WAIT: block for those
 * still exiting (loop_run's end, when none can leave any more); else only
 * those already gone, so that a spawn under l->lock never waits on a
 * thread's exit. l->lock held, or none can leave.
 */
static void reap_left(struct loop *l, bool wait)
{
	struct worker **pw = &l->left, *w;

	while ((w = *pw)) {
		if ((wait ? pthread_join(w->thread, NULL)
			  : pthread_tryjoin_np(w->thread, NULL)) == 0) {
			*pw = w->next;
			free(w);
		} else {
			pw = &w->next;
		}
	}
}

/*
 * spawn_worker -- start one more worker, with every signal blocked: the
 * thread that called loop_run alone takes them (it checks ops->exited).
 * l->lock held.
 */
static int spawn_worker(struct loop *l)
{
	struct worker *w;
	sigset_t all, old;
	int rc;

	reap_left(l, false); /* those gone by now: keeps the list short */
	w = calloc(1, sizeof(*w) + l->ops->slot_size);
	if (!w)
		return -ENOMEM;
	w->l = l;
	w->next = l->workers;
	if (w->next)
		w->next->prev = w;
	l->workers = w;
	l->nworkers++;
	if (l->nworkers > l->peak)
		l->peak = l->nworkers;
	atomic_fetch_add(&l->nidle, 1);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		atomic_fetch_sub(&l->nidle, 1);
		l->nworkers--;
		l->workers = w->next;
		if (w->next)
			w->next->prev = NULL;
		free(w);
		return -rc;
	}
	return 0;
}

/* unlink W from the worker list; l->lock held */
static void unlist(struct loop *l, struct worker *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		l->workers = w->next;
	if (w->next)
		w->next->prev = w->prev;
	l->nworkers--;
}

/*
 * worker_leaves -- a worker beyond the base number goes once another worker
 * is idle (the block it was started for is over). Returns true if W left
 * the list for l->left; the caller then frees its slot and returns, and
 * reap_left joins it and frees W.
 */
static bool worker_leaves(struct loop *l, struct worker *w)
{
	bool leave;

	/* the common case, without the lock: no extra worker, or none idle
	 * besides itself */
	if (atomic_load(&l->nworkers) <= l->base || atomic_load(&l->nidle) < 2)
		return false;
	pthread_mutex_lock(&l->lock);
	leave = !l->stopping && l->nworkers > l->base && atomic_load(&l->nidle) >= 2;
	if (leave) {
		unlist(l, w);
		atomic_fetch_sub(&l->nidle, 1);
		w->prev = NULL;
		w->next = l->left;
		l->left = w;
	}
	pthread_mutex_unlock(&l->lock);
	return leave;
}

/* the last idle worker took a request: start the monitor's clock */
static void all_busy(struct loop *l)
{
	pthread_mutex_lock(&l->lock);
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->lock);
}

/* the source ended (RC 0) or failed: wake loop_run; l->lock not held */
static void source_ended(struct loop *l, int rc)
{
	pthread_mutex_lock(&l->lock);
	if (rc < 0 && !l->error)
		l->error = rc;
	l->ended = true;
	pthread_mutex_unlock(&l->lock);
	if (eventfd_write(l->ended_fd, 1) != 0)
		log_err("cannot wake the main thread: %s", strerror(errno));
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct loop *l = w->l;
	int rc;

	for (;;) {
		/* cancelled only while waiting for a request, never inside one */
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		rc = l->ops->receive(l->arg, w->slot);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if ((rc == -EINTR || rc == -EAGAIN) && !l->ops->exited(l->arg))
			continue;
		if (rc <= 0) {
			rc = rc == -EINTR || rc == -EAGAIN ? 0 : rc;
			break;
		}
		/* seq_cst, paired with the monitor: see monitor_main */
		if (atomic_fetch_sub(&l->nidle, 1) == 1 && atomic_load(&l->monitor_asleep))
			all_busy(l);
		l->ops->process(l->arg, w->slot);
		atomic_fetch_add(&l->finished, 1);
		atomic_fetch_add(&l->nidle, 1);
		if (l->ops->exited(l->arg)) {
			rc = 0;
			break;
		}
		if (worker_leaves(l, w)) {
			/* joined by the next spawn or by loop_run, which frees W */
			if (l->ops->slot_free)
				l->ops->slot_free(w->slot);
			return NULL;
		}
	}
	source_ended(l, rc);
	return NULL; /* loop_run joins it */
}

/* wait on l->cv until DEADLINE or stopping; l->lock held */
static void wait_tick(struct loop *l)
{
	struct timespec deadline;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_nsec += TICK_NS;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	while (!l->stopping &&
	       pthread_cond_timedwait(&l->cv, &l->lock, &deadline) != ETIMEDOUT)
		;
}

/*
 * The monitor sleeps without a timer while some worker is idle, and ticks
 * while all are busy. It says it is asleep before it reads nidle, and a
 * worker takes nidle to 0 before it reads monitor_asleep (both seq_cst), so
 * one of them sees the other: either the monitor sees no idle worker and
 * ticks, or the worker sees it asleep and signals (under l->lock, which the
 * monitor holds until it waits).
 */
static void *monitor_main(void *arg)
{
	struct loop *l = arg;

	pthread_mutex_lock(&l->lock);
	while (!l->stopping) {
		atomic_store(&l->monitor_asleep, true);
		if (atomic_load(&l->nidle) > 0) {
			pthread_cond_wait(&l->cv, &l->lock);
			continue;
		}
		atomic_store(&l->monitor_asleep, false);
		uint64_t mark = atomic_load(&l->finished);
		wait_tick(l);
		if (l->stopping || atomic_load(&l->nidle) > 0 ||
		    atomic_load(&l->finished) != mark || l->nworkers >= l->max)
			continue;
		int rc = spawn_worker(l);
		if (rc < 0)
			log_err("all %u workers are blocked and no other can start: %s",
				l->nworkers, strerror(-rc));
		else
			log_debug("all workers blocked for a tick: started worker %u",
				  l->nworkers);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

struct loop *loop_new(const struct loop_ops *ops, void *arg, unsigned base,
		      unsigned max)
{
	struct loop *l;
	pthread_condattr_t ca;

	if (base < 1 || max < base)
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->ops = ops;
	l->arg = arg;
	l->base = base;
	l->max = max;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	l->ended_fd = eventfd(0, EFD_CLOEXEC);
	if (l->ended_fd < 0) {
		loop_free(l);
		return NULL;
	}
	return l;
}

int loop_run(struct loop *l)
{
	struct worker *w;
	int rc = 0;

	pthread_mutex_lock(&l->lock);
	for (unsigned i = 0; i < l->base && rc == 0; i++)
		rc = spawn_worker(l);
	if (rc == 0) {
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rc = -pthread_create(&l->monitor, NULL, monitor_main, l);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	pthread_mutex_unlock(&l->lock);
	if (rc < 0) {
		log_err("cannot start the worker threads: %s", strerror(-rc));
		pthread_mutex_lock(&l->lock);
		if (!l->error)
			l->error = rc;
		pthread_mutex_unlock(&l->lock);
	}
	/*
	 * Signals land here (the workers block them). They stay blocked but
	 * inside ppoll, so one whose handler ends the source either came
	 * before the check or interrupts the wait: never lost in between.
	 */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	while (rc == 0) {
		struct pollfd pfd = { .fd = l->ended_fd, .events = POLLIN };
		pthread_mutex_lock(&l->lock);
		bool ended = l->ended;
		pthread_mutex_unlock(&l->lock);
		if (ended || l->ops->exited(l->arg))
			break;
		if (ppoll(&pfd, 1, NULL, &old) < 0 && errno != EINTR) {
			log_err("waiting for the workers: %s", strerror(errno));
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	pthread_mutex_lock(&l->lock);
	l->stopping = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->lock);
	if (rc == 0)
		pthread_join(l->monitor, NULL);
	/* no worker joins or leaves the list now */
	for (w = l->workers; w; w = w->next)
		pthread_cancel(w->thread);
	while ((w = l->workers)) {
		pthread_join(w->thread, NULL);
		unlist(l, w);
		if (l->ops->slot_free)
			l->ops->slot_free(w->slot);
		free(w);
	}
	reap_left(l, true); /* none leaves once stopping is set */
	return l->error;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	if (l->ended_fd >= 0)
		close(l->ended_fd);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

unsigned loop_workers(struct loop *l)
{
	pthread_mutex_lock(&l->lock);
	unsigned n = l->nworkers;
	pthread_mutex_unlock(&l->lock);
	return n;
}

unsigned loop_peak_workers(struct loop *l)
{
	pthread_mutex_lock(&l->lock);
	unsigned n = l->peak;
	pthread_mutex_unlock(&l->lock);
	return n;
}

unsigned loop_left_workers(struct loop *l)
{
	unsigned n = 0;

	pthread_mutex_lock(&l->lock);
	for (struct worker *w = l->left; w; w = w->next)
		n++;
	pthread_mutex_unlock(&l->lock);
	return n;
}

unsigned loop_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 0;
	return (unsigned)CPU_COUNT(&set);
}

unsigned loop_base_workers(unsigned max)
{
	unsigned n = loop_cpus();

	if (n < 2)
		n = 2; /* one worker would queue every request behind a slow one */
	return n < max ? n : max;
}
