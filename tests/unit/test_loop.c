// SPDX-License-Identifier: BSD-3-Clause
/*
 * test_loop -- the worker pool against a fake request source whose requests
 * either finish at once or block until the test opens a gate.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "loop.h"

enum { REQ_QUICK = 1, REQ_BLOCK, REQ_FAIL, REQ_INTR };

struct source {
	pthread_mutex_t mu;
	pthread_cond_t cv;    /* a request was queued, the source exited, the gate opened */
	int queue[256];
	unsigned head, tail;
	bool gate_open;
	atomic_int exited;    /* lock-free: the signal handler sets it */
	atomic_int blocked;   /* requests waiting at the gate */
	atomic_int quick_done;
	atomic_int slots_freed;
	atomic_int threads_keyed; /* worker threads that served a request */
	atomic_int threads_ended; /* ... whose thread-local destructor ran */
	bool quick_exit;          /* no slow destructor in threads that left */
};

static struct source src;

static void unlock_mu(void *m)
{
	pthread_mutex_unlock(m);
}

static int src_receive(void *arg, void *slot)
{
	struct source *s = arg;
	int rc;

	pthread_mutex_lock(&s->mu);
	pthread_cleanup_push(unlock_mu, &s->mu); /* the loop cancels workers here */
	while (s->head == s->tail && !s->exited)
		pthread_cond_wait(&s->cv, &s->mu);
	if (s->head == s->tail)
		rc = 0;
	else if (s->queue[s->head % 256] == REQ_FAIL)
		rc = (s->head++, -EIO);
	else if (s->queue[s->head % 256] == REQ_INTR)
		rc = (s->head++, -EINTR); /* a read cut short: try again */
	else
		rc = (*(int *)slot = s->queue[s->head++ % 256], 1);
	pthread_cleanup_pop(1);
	return rc;
}

/*
 * Each worker thread holds a thread-local value, as libpmemobj's lane
 * cache is, whose destructor runs at the thread's exit, after loop.c's
 * code. The daemon closes the pool once loop_run returns, so loop_run
 * must not return before those destructors are done; a thread that left
 * the pool makes its destructor slow to show it.
 */
static pthread_key_t exit_key;
static __thread bool left_pool; /* its slot was freed on its own thread */

static void thread_exit_dtor(void *v)
{
	if (left_pool && !src.quick_exit) {
		while (!src.exited)
			usleep(1000);
		usleep(200 * 1000);
	}
	atomic_fetch_add(&src.threads_ended, 1);
}

static void src_process(void *arg, void *slot)
{
	struct source *s = arg;

	if (!pthread_getspecific(exit_key)) {
		pthread_setspecific(exit_key, s);
		atomic_fetch_add(&s->threads_keyed, 1);
	}

	if (*(int *)slot == REQ_BLOCK) {
		pthread_mutex_lock(&s->mu);
		s->blocked++;
		while (!s->gate_open)
			pthread_cond_wait(&s->cv, &s->mu);
		s->blocked--;
		pthread_mutex_unlock(&s->mu);
	} else {
		s->quick_done++;
	}
}

static bool src_exited(void *arg)
{
	return ((struct source *)arg)->exited;
}

static void src_slot_free(void *slot)
{
	/* relaxed: no ordering of its own, so under TSan a worker that left
	 * and still touched the loop after loop_free shows as a race */
	atomic_fetch_add_explicit(&src.slots_freed, 1, memory_order_relaxed);
	if (pthread_getspecific(exit_key))
		left_pool = true; /* a worker frees its slot itself when it leaves */
}

static const struct loop_ops ops = {
	.receive = src_receive,
	.process = src_process,
	.exited = src_exited,
	.slot_free = src_slot_free,
	.slot_size = sizeof(int),
};

static void push(int kind, int n)
{
	pthread_mutex_lock(&src.mu);
	while (n--)
		src.queue[src.tail++ % 256] = kind;
	pthread_cond_broadcast(&src.cv);
	pthread_mutex_unlock(&src.mu);
}

static void open_gate(void)
{
	pthread_mutex_lock(&src.mu);
	src.gate_open = true;
	pthread_cond_broadcast(&src.cv);
	pthread_mutex_unlock(&src.mu);
}

/* wait up to 10 s for COND; false if it never held */
#define WAIT_FOR(cond) ({                                              \
	bool ok_ = false;                                              \
	for (int i_ = 0; i_ < 1000 && !(ok_ = (cond)); i_++)           \
		usleep(10000);                                         \
	ok_;                                                           \
})

struct runner {
	struct loop *loop;
	pthread_t thread;
	int rc;
};

static void *run(void *arg)
{
	struct runner *r = arg;
	sigset_t usr2;

	/* this thread plays kmemfs's main thread: the one that takes signals */
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
	r->rc = loop_run(r->loop);
	return NULL;
}

static struct runner *start(unsigned base, unsigned max)
{
	struct runner *r = calloc(1, sizeof(*r));

	memset(&src, 0, sizeof(src));
	pthread_mutex_init(&src.mu, NULL);
	pthread_cond_init(&src.cv, NULL);
	r->loop = loop_new(&ops, &src, base, max);
	assert_non_null(r->loop);
	assert_int_equal(pthread_create(&r->thread, NULL, run, r), 0);
	assert_true(WAIT_FOR(loop_workers(r->loop) == base));
	return r;
}

/* stop -- end the source, join the loop; returns loop_run's result. Every
 * worker alive at the stop frees its slot then. */
static int stop(struct runner *r)
{
	int freed = src.slots_freed, alive = (int)loop_workers(r->loop), rc;

	pthread_mutex_lock(&src.mu);
	src.exited = 1;
	pthread_cond_broadcast(&src.cv);
	pthread_mutex_unlock(&src.mu);
	pthread_join(r->thread, NULL);
	assert_int_equal(loop_workers(r->loop), 0);
	assert_int_equal(src.slots_freed, freed + alive);
	/* every worker thread is gone, those that left too */
	assert_int_equal(src.threads_ended, src.threads_keyed);
	rc = r->rc;
	loop_free(r->loop);
	free(r);
	return rc;
}

static void test_loop_base_workers_serve_and_stop(void **state)
{
	struct runner *r = start(2, 8);

	push(REQ_INTR, 3);
	push(REQ_QUICK, 200);
	assert_true(WAIT_FOR(src.quick_done == 200));
	assert_int_equal(loop_workers(r->loop), 2);
	assert_int_equal(stop(r), 0);
}

static void test_loop_rescues_blocked_workers_up_to_max(void **state)
{
	struct runner *r = start(2, 4);

	push(REQ_BLOCK, 2);
	assert_true(WAIT_FOR(src.blocked == 2));
	/* both base workers are stuck: these are served by a rescue worker */
	push(REQ_QUICK, 3);
	assert_true(WAIT_FOR(src.quick_done == 3));
	assert_true(loop_workers(r->loop) >= 3);
	/* block everyone, up to the cap of 4 */
	push(REQ_BLOCK, 2);
	assert_true(WAIT_FOR(src.blocked == 4));
	push(REQ_QUICK, 1);
	usleep(300 * 1000); /* 15 ticks: no fifth worker may start */
	assert_int_equal(loop_workers(r->loop), 4);
	assert_int_equal(loop_peak_workers(r->loop), 4);
	assert_int_equal(src.quick_done, 3);
	/* once the block is over, the extra workers leave again */
	open_gate();
	assert_true(WAIT_FOR(src.quick_done == 4 && src.blocked == 0));
	for (int i = 0; i < 50 && loop_workers(r->loop) > 2; i++) {
		push(REQ_QUICK, 4);
		usleep(20000);
	}
	assert_int_equal(loop_workers(r->loop), 2);
	/* the two that left freed theirs (each frees its slot after it has
	 * stopped counting as a worker) */
	assert_true(WAIT_FOR(src.slots_freed >= 2));
	assert_int_equal(stop(r), 0);
}

/* block both base workers, so that the monitor starts a rescue worker */
static void block_base_workers(struct runner *r, int blocked_before)
{
	push(REQ_BLOCK, 2);
	assert_true(WAIT_FOR(src.blocked == blocked_before + 2));
	push(REQ_QUICK, 1);
	assert_true(WAIT_FOR(loop_workers(r->loop) >= 3));
}

/* after a block, the extra workers leave; serve quick requests until they
 * have */
static void let_extra_workers_leave(struct runner *r)
{
	open_gate();
	assert_true(WAIT_FOR(src.blocked == 0));
	for (int i = 0; i < 50 && loop_workers(r->loop) > 2; i++) {
		push(REQ_QUICK, 4);
		usleep(20000);
	}
	assert_int_equal(loop_workers(r->loop), 2);
}

/* a worker that left is joined by the next spawn once its thread is gone,
 * not only at the end of the run: a long-running daemon does not keep a
 * list (and a thread's stack, unjoined) per block it was rescued from */
static void test_loop_spawn_joins_the_workers_that_left(void **state)
{
	struct runner *r = start(2, 4);

	src.quick_exit = true;
	block_base_workers(r, 0);
	let_extra_workers_leave(r);
	unsigned left = loop_left_workers(r->loop);
	assert_true(left >= 1);
	/* their threads end (each that left has freed its slot, and only
	 * they have exited so far): still listed, since nothing has spawned */
	assert_true(WAIT_FOR(src.threads_ended == src.slots_freed));
	usleep(50 * 1000);
	assert_int_equal(loop_left_workers(r->loop), left);

	pthread_mutex_lock(&src.mu);
	src.gate_open = false;
	pthread_mutex_unlock(&src.mu);
	block_base_workers(r, 0);
	assert_int_equal(loop_left_workers(r->loop), 0);
	let_extra_workers_leave(r);
	assert_int_equal(stop(r), 0);
}

static void test_loop_receive_error_ends_the_run(void **state)
{
	struct runner *r = start(2, 4);

	push(REQ_QUICK, 5);
	push(REQ_FAIL, 1);
	pthread_join(r->thread, NULL); /* no stop(): the error ends it alone */
	assert_int_equal(r->rc, -EIO);
	assert_int_equal(src.quick_done, 5);
	assert_int_equal(loop_workers(r->loop), 0);
	loop_free(r->loop);
	free(r);
}

static void on_usr2(int sig)
{
	src.exited = 1; /* as libfuse's handler ends the session */
}

/* a process-directed signal reaches loop_run's thread (the workers block
 * every signal), and its handler ending the source ends the run */
static void test_loop_signal_ends_the_run(void **state)
{
	struct sigaction sa = { .sa_handler = on_usr2 };
	sigset_t usr2;
	struct runner *r;

	sigaction(SIGUSR2, &sa, NULL);
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, NULL); /* this thread is not the target */
	r = start(2, 4);
	push(REQ_QUICK, 10);
	assert_true(WAIT_FOR(src.quick_done == 10));
	kill(getpid(), SIGUSR2);
	pthread_join(r->thread, NULL);
	assert_int_equal(r->rc, 0);
	assert_int_equal(loop_workers(r->loop), 0);
	assert_true(src.slots_freed >= 2);
	loop_free(r->loop);
	free(r);
	pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
}

static void test_loop_new_checks_its_sizes(void **state)
{
	assert_null(loop_new(&ops, &src, 0, 4));
	assert_null(loop_new(&ops, &src, 5, 4));
	assert_true(loop_base_workers(16) >= 2 && loop_base_workers(16) <= 16);
	assert_int_equal(loop_base_workers(1), 1);
}

int main(void)
{
	pthread_key_create(&exit_key, thread_exit_dtor);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop_base_workers_serve_and_stop),
		cmocka_unit_test(test_loop_rescues_blocked_workers_up_to_max),
		cmocka_unit_test(test_loop_spawn_joins_the_workers_that_left),
		cmocka_unit_test(test_loop_receive_error_ends_the_run),
		cmocka_unit_test(test_loop_signal_ends_the_run),
		cmocka_unit_test(test_loop_new_checks_its_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
