/* Fibers: awaiting every kind of future from a fiber (hand-written, yield,
 * coroutine, join handles of coroutines, fibers and blocking tasks, I/O
 * leaves and readiness futures), coroutines awaiting fibers, deep call
 * stacks, errno and pinning on the multi-thread runtime, migration,
 * cancellation at each kind of await, shields, runtime shutdown with
 * suspended fibers, 100,000 concurrent fibers, floating-point state,
 * stack overflow detection (guard page, mprotect guard, canary), parking
 * (later polls of an awaited future outside the fiber), and
 * edo_fiber_block_on. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "edo.h"
#include "fiber/san.h"
#include "fiber/stack.h"
#include "harness.h"

/* ---- running fibers under a runtime ----------------------------------------------- */

static edo_runtime *rt_build(unsigned workers)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, workers ? EDO_RT_MULTI_THREAD : EDO_RT_CURRENT_THREAD);
	b.worker_threads = workers;
	edo_runtime *rt = NULL;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	return rt;
}

/* Spawn n fibers fn(args[i]) and join them all; results in rcs/results. */
typedef struct many_frame {
	EDO_FRAME;
	edo_fiber_fn fn;
	void **args;
	int n, i, rc;
	edo_fiber_opts opts;
	edo_join **h;
	int *rcs;
	void **results;
} many_frame;

EDO_ASYNC(spawn_many_fibers, many_frame, NULL)
{
	EDO_BEGIN();
	self->h = calloc((size_t)self->n, sizeof *self->h);
	for (self->i = 0; self->i < self->n; self->i++)
		CHECK_EQ(edo_fiber_spawn(self->fn, self->args ? self->args[self->i] : NULL,
					 &self->opts, &self->h[self->i]),
			 0);
	for (self->i = 0; self->i < self->n; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		if (self->rcs)
			self->rcs[self->i] = self->rc;
		else
			CHECK_EQ(self->rc, 0);
		if (self->results)
			self->results[self->i] = edo_join_fiber_result(self->h[self->i]);
		edo_join_detach(self->h[self->i]);
	}
	free(self->h);
	EDO_END();
}

static void run_many(unsigned workers, edo_fiber_fn fn, void **args, int n,
		     const edo_fiber_opts *opts, void **results)
{
	edo_runtime *rt = rt_build(workers);
	many_frame f = {EDO_FRAME_INIT(spawn_many_fibers), .fn = fn, .args = args, .n = n,
			.results = results};
	if (opts)
		f.opts = *opts;
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

static void *run_fiber(unsigned workers, edo_fiber_fn fn, void *arg)
{
	void *result = NULL;
	run_many(workers, fn, &arg, 1, NULL, &result);
	return result;
}

/* ---- a gate: a hand-written future, PENDING until opened ---------------------------- */

typedef struct gate {
	pthread_mutex_t lock;
	bool open;
	int waiting;
	edo_waker *slots; /* one per waiter */
	int nslots;
	atomic_int next_slot;
	atomic_int drops;
} gate;

typedef struct gate_fut {
	edo_future base;
	gate *g;
	int slot;
	bool registered;
} gate_fut;

static edo_poll gate_poll(edo_future *f, edo_cx *cx)
{
	gate_fut *gf = (gate_fut *)f;
	gate *g = gf->g;
	pthread_mutex_lock(&g->lock);
	bool open = g->open;
	if (!open) {
		if (!gf->registered)
			g->waiting++;
		gf->registered = true;
		edo_waker_set(&g->slots[gf->slot], cx->waker);
	} else if (gf->registered) {
		gf->registered = false;
		g->waiting--;
	}
	pthread_mutex_unlock(&g->lock);
	return open ? EDO_READY : EDO_PENDING;
}

static void gate_drop(edo_future *f)
{
	gate_fut *gf = (gate_fut *)f;
	gate *g = gf->g;
	atomic_fetch_add(&g->drops, 1);
	pthread_mutex_lock(&g->lock);
	edo_waker w = edo_waker_take(&g->slots[gf->slot]);
	if (gf->registered)
		g->waiting--;
	gf->registered = false;
	pthread_mutex_unlock(&g->lock);
	edo_waker_drop(w);
}

static const edo_future_vtable gate_vt = {.poll = gate_poll, .drop = gate_drop};

static void gate_init(gate *g, int nslots)
{
	pthread_mutex_init(&g->lock, NULL);
	g->open = false;
	g->waiting = 0;
	g->slots = calloc((size_t)nslots, sizeof(edo_waker));
	g->nslots = nslots;
	atomic_init(&g->next_slot, 0);
	atomic_init(&g->drops, 0);
}

static void gate_destroy(gate *g)
{
	for (int i = 0; i < g->nslots; i++)
		edo_waker_drop(edo_waker_take(&g->slots[i]));
	free(g->slots);
	pthread_mutex_destroy(&g->lock);
}

static int gate_waiting(gate *g)
{
	pthread_mutex_lock(&g->lock);
	int n = g->waiting;
	pthread_mutex_unlock(&g->lock);
	return n;
}

static void gate_open(gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_mutex_unlock(&g->lock);
	for (int i = 0; i < g->nslots; i++) {
		pthread_mutex_lock(&g->lock);
		edo_waker w = edo_waker_take(&g->slots[i]);
		pthread_mutex_unlock(&g->lock);
		edo_waker_wake(w);
	}
}

/* Await the gate from a fiber, in a fresh slot. */
static int gate_await(gate *g)
{
	gate_fut gf = {.base = {&gate_vt},
		       .g = g,
		       .slot = atomic_fetch_add(&g->next_slot, 1) % g->nslots};
	return edo_fiber_await(&gf.base);
}

/* Opens @g from another thread once @n awaits are pending. */
typedef struct opener_arg {
	gate *g;
	int n;
} opener_arg;

static void *opener_main(void *arg)
{
	opener_arg *o = arg;
	while (gate_waiting(o->g) < o->n)
		usleep(200);
	gate_open(o->g);
	return NULL;
}

/* ---- basics ------------------------------------------------------------------------ */

static void *yield_three(void *arg)
{
	CHECK(edo_in_fiber());
	for (int i = 0; i < 3; i++)
		CHECK_EQ(edo_fiber_yield(), 0);
	return (char *)arg + 1;
}

TEST(spawn_join_current_thread)
{
	char x[2];
	CHECK(!edo_in_fiber());
	CHECK_EQ(run_fiber(0, yield_three, x), (void *)(x + 1));
}

TEST(spawn_join_multi_thread)
{
	char x[2];
	CHECK_EQ(run_fiber(2, yield_three, x), (void *)(x + 1));
}

TEST(outside_a_fiber)
{
	edo_yield_now y = EDO_YIELD_NOW_INIT;
	CHECK_EQ(edo_fiber_await(&y.base), -EPERM);
	CHECK_EQ(edo_fiber_yield(), -EPERM);
	int rc = EDO_FIBER_AWAIT_POLL(EDO_READY);
	CHECK_EQ(rc, -EPERM);
	CHECK(!edo_fiber_shield(true));
	CHECK(!edo_fiber_is_cancelled());
	CHECK_EQ(edo_worker_id(), -1);
	CHECK_EQ(edo_fiber_spawn(yield_three, NULL, NULL, NULL), EDO_ENORUNTIME);
	CHECK_EQ(edo_fiber_spawn(NULL, NULL, NULL, NULL), -EINVAL);
	edo_fiber_opts big = {.stack_size = (size_t)1 << 30};
	CHECK_EQ(edo_fiber_spawn(yield_three, NULL, &big, NULL), -EINVAL);
	CHECK(edo_join_fiber_result(NULL) == NULL);
}

/* Inside a fiber, the blocking-style wrappers refuse NULL handles (and a
 * connect with nowhere to put its stream connects nothing). */
static void *null_handles_fiber(void *arg)
{
	(void)arg;
	char b[4];
	CHECK_EQ(edo_fiber_join(NULL), -EINVAL);
	CHECK_EQ(edo_fiber_read(NULL, b, sizeof b), -EINVAL);
	CHECK_EQ(edo_fiber_write(NULL, b, sizeof b), -EINVAL);
	CHECK_EQ(edo_fiber_wait_ready(NULL, EDO_INTEREST_READABLE), -EINVAL);
	CHECK_EQ(edo_fiber_stream_read(NULL, b, sizeof b), -EINVAL);
	CHECK_EQ(edo_fiber_stream_write(NULL, b, sizeof b), -EINVAL);
	CHECK_EQ(edo_fiber_stream_write_all(NULL, b, sizeof b), -EINVAL);
	edo_addr a;
	CHECK_EQ(edo_addr_parse(&a, "127.0.0.1:9"), 0);
	CHECK_EQ(edo_fiber_tcp_connect(&a, NULL), -EINVAL);
	edo_tcp_stream *st;
	CHECK_EQ(edo_fiber_tcp_connect(NULL, &st), -EINVAL);
	int p[2];
	CHECK_EQ(pipe(p), 0);
	edo_async_fd *afd;
	CHECK_EQ(edo_async_fd_new(p[0], EDO_INTEREST_READABLE, &afd), 0);
	CHECK_EQ(edo_fiber_wait_ready(afd, 0), -EINVAL);
	CHECK_EQ(edo_fiber_wait_ready(afd, 0x80), -EINVAL);
	CHECK_EQ(edo_async_fd_free(afd), p[0]); /* gives the fd back */
	close(p[0]);
	close(p[1]);
	return NULL;
}

TEST(null_handles_refused)
{
	run_fiber(0, null_handles_fiber, NULL);
}

/* ---- edo_fiber_block_on ----------------------------------------------------------------- */

static atomic_int block_on_runs;
static int block_on_line;

/* edo_fiber_block_on(), recording the line of the call in @line_var. */
#define BLOCK_ON_AT(line_var, ...) (line_var = __LINE__, edo_fiber_block_on(__VA_ARGS__))

/* Runs as the block_on fiber: awaits, checks its own spawn site. */
static void *block_on_main(void *arg)
{
	atomic_fetch_add(&block_on_runs, 1);
	CHECK(edo_in_fiber());
	CHECK_EQ(edo_fiber_yield(), 0);
	CHECK_EQ(edo_fiber_sleep(EDO_MS(1)), 0);
	return (char *)arg + 1;
}

static void *block_on_where(void *arg)
{
	edo_runtime *rt = arg;
	edo_task_info *v;
	size_t n;
	CHECK_EQ(edo_runtime_tasks(rt, &v, &n), 0);
	bool found = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].name, "where") != 0)
			continue;
		found = true;
		CHECK_STREQ(v[i].spawn_file, __FILE__);
		CHECK_EQ(v[i].spawn_line, block_on_line);
	}
	CHECK(found);
	free(v);
	return NULL;
}

/* No nesting: inside a runtime the call fails and spawns nothing. */
static void *block_on_nested(void *arg)
{
	CHECK_EQ(edo_fiber_block_on(arg, block_on_main, NULL, NULL, NULL), -EBUSY);
	return NULL;
}

typedef struct block_on_busy {
	edo_runtime *rt;
	gate *g;
	int rc;
} block_on_busy;

/* Another thread, while the test's thread is inside the current-thread
 * runtime: -EBUSY, and nothing spawned. */
static void *block_on_other_thread(void *arg)
{
	block_on_busy *b = arg;
	while (gate_waiting(b->g) == 0)
		sched_yield();
	b->rc = edo_fiber_block_on(b->rt, block_on_main, NULL, NULL, NULL);
	gate_open(b->g);
	return NULL;
}

static void *block_on_gate(void *arg)
{
	return (void *)(intptr_t)gate_await(arg);
}

TEST(fiber_block_on)
{
	char x[2];
	for (unsigned workers = 0; workers <= 2; workers += 2) {
		edo_runtime *rt = rt_build(workers);
		void *res = NULL;
		atomic_store(&block_on_runs, 0);
		CHECK_EQ(edo_fiber_block_on(rt, block_on_main, x, &(edo_fiber_opts){.name = "main"},
					    &res),
			 0);
		CHECK_EQ(res, (void *)(x + 1));
		CHECK_EQ((edo_fiber_block_on)(rt, block_on_main, x, NULL, NULL), 0);
		CHECK_EQ(atomic_load(&block_on_runs), 2);
		static const edo_fiber_opts where = {.name = "where"};
		int rc = BLOCK_ON_AT(block_on_line, rt, block_on_where, rt, &where, NULL);
		CHECK_EQ(rc, 0);
		CHECK_EQ(edo_fiber_block_on(rt, block_on_nested, rt, NULL, NULL), 0);
		CHECK_EQ(edo_fiber_block_on(rt, NULL, NULL, NULL, NULL), -EINVAL);
		CHECK_EQ(edo_fiber_block_on(NULL, block_on_main, NULL, NULL, NULL), -EINVAL);
		edo_fiber_opts big = {.stack_size = (size_t)1 << 30};
		CHECK_EQ(edo_fiber_block_on(rt, block_on_main, NULL, &big, NULL), -EINVAL);
		if (!workers) {
			gate g;
			gate_init(&g, 1);
			block_on_busy b = {.rt = rt, .g = &g};
			pthread_t th;
			CHECK_EQ(pthread_create(&th, NULL, block_on_other_thread, &b), 0);
			CHECK_EQ(edo_fiber_block_on(rt, block_on_gate, &g, NULL, &res), 0);
			CHECK_EQ(res, NULL);
			pthread_join(th, NULL);
			CHECK_EQ(b.rc, -EBUSY);
			gate_destroy(&g);
		}
		CHECK_EQ(atomic_load(&block_on_runs), 2);
		edo_runtime_free(rt);
	}
	CHECK_EQ(edo_fiber_block_on(NULL, NULL, NULL, NULL, NULL), -EINVAL);
}

/* edo_fiber_await() parks: the first poll runs in the fiber, the later ones
 * in the task's poll (not in the fiber), and wakes that find the future
 * still pending do not resume the fiber. */
typedef struct slow_fut {
	edo_future base;
	int polls, in_fiber;
} slow_fut;

static edo_poll slow_poll(edo_future *f, edo_cx *cx)
{
	slow_fut *s = (slow_fut *)f;
	s->in_fiber += edo_in_fiber();
	if (++s->polls == 5)
		return EDO_READY;
	edo_waker_wake_by_ref(cx->waker); /* woken, yet still pending */
	return EDO_PENDING;
}

static const edo_future_vtable slow_vt = {.poll = slow_poll};

static void *await_parks(void *arg)
{
	slow_fut s = {.base = {&slow_vt}};
	errno = 4321;
	CHECK_EQ(edo_fiber_await(&s.base), 0);
	CHECK_EQ(errno, 4321);
	CHECK_EQ(s.polls, 5);
	CHECK_EQ(s.in_fiber, 1);
	/* EDO_FIBER_AWAIT_POLL in the fiber's own code parks too, and polls
	 * in the fiber every time. */
	s = (slow_fut){.base = {&slow_vt}};
	CHECK_EQ(EDO_FIBER_AWAIT_POLL(slow_poll(&s.base, cx)), 0);
	CHECK_EQ(s.polls, 5);
	CHECK_EQ(s.in_fiber, 5);
	return arg;
}

TEST(await_parks_until_ready)
{
	char x;
	CHECK_EQ(run_fiber(0, await_parks, &x), (void *)&x);
	CHECK_EQ(run_fiber(2, await_parks, &x), (void *)&x);
}

/* ---- awaiting every kind of future -------------------------------------------------- */

typedef struct empty_frame {
	EDO_FRAME;
	int out;
} empty_frame;

EDO_ASYNC(empty_co, empty_frame, NULL)
{
	EDO_BEGIN();
	self->out = 7;
	EDO_END();
}

typedef struct count_frame {
	EDO_FRAME;
	int i, n, sum;
	edo_yield_now y;
} count_frame;

EDO_ASYNC(count_co, count_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++) {
		self->y = (edo_yield_now)EDO_YIELD_NOW_INIT;
		EDO_AWAIT(&self->y);
		self->sum += self->i;
	}
	EDO_END();
}

static void *blocking_job(void *arg)
{
	usleep(1000);
	return arg;
}

static void *child_fiber(void *arg)
{
	CHECK_EQ(edo_fiber_yield(), 0);
	return arg;
}

static void *gate_opener_fiber(void *arg)
{
	CHECK_EQ(edo_fiber_yield(), 0);
	gate_open(arg);
	return NULL;
}

static void *await_everything(void *arg)
{
	(void)arg;
	/* A coroutine frame on the fiber's stack. */
	count_frame c = {EDO_FRAME_INIT(count_co), .n = 5};
	CHECK_EQ(edo_fiber_await(&c.edo_base), 0);
	CHECK_EQ(c.sum, 0 + 1 + 2 + 3 + 4);
	/* An empty slot completes at once; NULL is refused. */
	edo_future empty = {0};
	CHECK_EQ(edo_fiber_await(&empty), 0);
	CHECK_EQ(edo_fiber_await(NULL), -EINVAL);
	/* The join handle of a coroutine task. */
	edo_join *h;
	CHECK_EQ(EDO_SPAWN(&h, empty_co), 0);
	CHECK_EQ(edo_fiber_join(h), 0);
	CHECK_EQ(EDO_JOIN_OUTPUT(h, empty_co)->out, 7);
	CHECK(edo_join_fiber_result(h) == NULL);
	edo_join_detach(h);
	/* ... of a fiber. */
	int token;
	CHECK_EQ(edo_fiber_spawn(child_fiber, &token, NULL, &h), 0);
	CHECK_EQ(edo_fiber_join(h), 0);
	CHECK_EQ(edo_join_fiber_result(h), (void *)&token);
	edo_join_detach(h);
	/* ... of a blocking task. */
	CHECK_EQ(edo_spawn_blocking(blocking_job, &token, &h), 0);
	CHECK_EQ(edo_fiber_join(h), 0);
	CHECK_EQ(edo_join_blocking_result(h), (void *)&token);
	edo_join_detach(h);
	/* A leaf poll expression. */
	CHECK_EQ(edo_spawn_blocking(blocking_job, NULL, &h), 0);
	int result = -1;
	int rc = EDO_FIBER_AWAIT_POLL(edo_join_poll(h, cx, &result));
	CHECK_EQ(rc, 0);
	CHECK_EQ(result, 0);
	edo_join_detach(h);
	/* edo_unconstrained around a coroutine. */
	count_frame c2 = {EDO_FRAME_INIT(count_co), .n = 3};
	edo_unconstrained u;
	edo_unconstrained_init(&u, &c2.edo_base);
	CHECK_EQ(edo_fiber_await(&u.base), 0);
	CHECK_EQ(c2.sum, 3);
	/* A hand-written future, opened by another fiber. */
	gate g;
	gate_init(&g, 1);
	CHECK_EQ(edo_fiber_spawn(gate_opener_fiber, &g, NULL, &h), 0);
	CHECK_EQ(gate_await(&g), 0);
	CHECK_EQ(edo_fiber_join(h), 0);
	edo_join_detach(h);
	gate_destroy(&g);
	return (void *)1;
}

TEST(await_every_kind_current_thread)
{
	CHECK_EQ(run_fiber(0, await_everything, NULL), (void *)1);
}

TEST(await_every_kind_multi_thread)
{
	CHECK_EQ(run_fiber(3, await_everything, NULL), (void *)1);
}

/* I/O: two fibers talk over a pipe through edo_async_fd. */
typedef struct pipe_pair {
	edo_async_fd *r, *w;
	int n;
} pipe_pair;

static void *pipe_writer(void *arg)
{
	pipe_pair *p = arg;
	for (int i = 0; i < p->n; i++) {
		char b[64];
		memset(b, (char)i, sizeof b);
		CHECK_EQ(edo_fiber_write(p->w, b, sizeof b), (ssize_t)sizeof b);
		if (i % 7 == 0)
			CHECK_EQ(edo_fiber_yield(), 0);
	}
	return NULL;
}

static void *pipe_io(void *arg)
{
	(void)arg;
	int fds[2];
	CHECK_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	pipe_pair p = {.n = 200};
	CHECK_EQ(edo_async_fd_new(fds[0], EDO_INTEREST_READABLE, &p.r), 0);
	CHECK_EQ(edo_async_fd_new(fds[1], EDO_INTEREST_WRITABLE, &p.w), 0);
	/* Nothing to read yet: the readiness future suspends until the
	 * writer's first bytes. */
	edo_join *h;
	CHECK_EQ(edo_fiber_spawn(pipe_writer, &p, NULL, &h), 0);
	int ready = edo_fiber_wait_ready(p.r, EDO_INTEREST_READABLE);
	CHECK(ready > 0 && (ready & (int)EDO_READY_READABLE));
	size_t total = 0;
	char buf[100];
	while (total < (size_t)p.n * 64) {
		ssize_t n = edo_fiber_read(p.r, buf, sizeof buf);
		CHECK_GT(n, 0);
		for (ssize_t k = 0; k < n; k++)
			CHECK_EQ(buf[k], (char)((total + (size_t)k) / 64));
		total += (size_t)n;
	}
	CHECK_EQ(edo_fiber_join(h), 0);
	edo_join_detach(h);
	edo_async_fd_free(p.w);
	close(fds[1]);
	CHECK_EQ(edo_fiber_read(p.r, buf, sizeof buf), 0); /* EOF */
	edo_async_fd_free(p.r);
	close(fds[0]);
	return (void *)2;
}

TEST(await_io_current_thread)
{
	CHECK_EQ(run_fiber(0, pipe_io, NULL), (void *)2);
}

TEST(await_io_multi_thread)
{
	CHECK_EQ(run_fiber(2, pipe_io, NULL), (void *)2);
}

/* Awaiting deep down a call stack. */
static __attribute__((noinline)) int deep(int depth)
{
	volatile char pad[64];
	pad[0] = (char)depth;
	if (depth == 0)
		return edo_fiber_yield() + pad[0];
	int r = deep(depth - 1);
	return r + (pad[0] == (char)depth ? 0 : 1000);
}

static void *deep_fiber(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10; i++)
		CHECK_EQ(deep(100), 0);
	return (void *)3;
}

TEST(await_at_depth)
{
	CHECK_EQ(run_fiber(0, deep_fiber, NULL), (void *)3);
	CHECK_EQ(run_fiber(2, deep_fiber, NULL), (void *)3);
}

/* ---- a coroutine awaits fibers --------------------------------------------------------- */

static void *square(void *arg)
{
	intptr_t v = (intptr_t)arg;
	CHECK_EQ(edo_fiber_yield(), 0);
	return (void *)(v * v);
}

typedef struct co_frame {
	EDO_FRAME;
	edo_join *h[8];
	int i, rc;
	intptr_t sum;
} co_frame;

EDO_ASYNC(co_awaits_fibers, co_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < 8; self->i++)
		CHECK_EQ(edo_fiber_spawn(square, (void *)(intptr_t)self->i, NULL,
					 &self->h[self->i]),
			 0);
	for (self->i = 0; self->i < 8; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		self->sum += (intptr_t)edo_join_fiber_result(self->h[self->i]);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

TEST(coroutine_awaits_fibers)
{
	for (unsigned w = 0; w <= 2; w += 2) {
		edo_runtime *rt = rt_build(w);
		co_frame f = {EDO_FRAME_INIT(co_awaits_fibers)};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		CHECK_EQ(f.sum, (intptr_t)(0 + 1 + 4 + 9 + 16 + 25 + 36 + 49));
		CHECK_EQ(edo_runtime_free(rt), 0);
	}
}

/* ---- errno, pinning, migration ------------------------------------------------------------ */

static atomic_int bad;

static void *errno_keeper(void *arg)
{
	int id = (int)(intptr_t)arg;
	int wid = edo_worker_id();
	pthread_t me = pthread_self();
	CHECK_GE(wid, 0);
	for (int i = 0; i < 200; i++) {
		errno = 1000 + id + i;
		CHECK_EQ(edo_fiber_yield(), 0);
		if (errno != 1000 + id + i)
			atomic_fetch_add(&bad, 1);
		if (edo_worker_id() != wid || !pthread_equal(pthread_self(), me))
			atomic_fetch_add(&bad, 1000000);
		/* Other tasks clobber errno on this thread meanwhile. */
		errno = 0;
	}
	return NULL;
}

TEST(errno_and_worker_kept_multi_thread)
{
	enum { N = 64 };
	void *args[N];
	for (int i = 0; i < N; i++)
		args[i] = (void *)(intptr_t)(i * 1000);
	run_many(4, errno_keeper, args, N, NULL, NULL);
	CHECK_EQ(atomic_load(&bad), 0);
}

static void *migrant(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (int i = 0; i < 200; i++) {
		EDO_ERRNO = 1000 + id + i;
		CHECK_EQ(edo_fiber_yield(), 0);
		if (EDO_ERRNO != 1000 + id + i)
			atomic_fetch_add(&bad, 1);
		CHECK_GE(edo_worker_id(), 0);
		EDO_ERRNO = 0;
	}
	return NULL;
}

TEST(migrating_fibers_keep_errno)
{
	enum { N = 64 };
	void *args[N];
	for (int i = 0; i < N; i++)
		args[i] = (void *)(intptr_t)(i * 1000);
	edo_fiber_opts o = {.migrate = true};
	run_many(4, migrant, args, N, &o, NULL);
	CHECK_EQ(atomic_load(&bad), 0);
}

/* Wakes from a thread outside the runtime reach a pinned fiber's worker. */
static void *gate_waiter(void *arg)
{
	int wid = edo_worker_id();
	CHECK_EQ(gate_await(arg), 0);
	if (edo_worker_id() != wid)
		atomic_fetch_add(&bad, 1);
	return NULL;
}

TEST(remote_wakes_reach_pinned_worker)
{
	enum { N = 200 };
	gate g;
	gate_init(&g, N);
	void *args[N];
	for (int i = 0; i < N; i++)
		args[i] = &g;
	opener_arg o = {&g, N};
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, opener_main, &o), 0);
	run_many(3, gate_waiter, args, N, NULL, NULL);
	pthread_join(th, NULL);
	CHECK_EQ(atomic_load(&bad), 0);
	gate_destroy(&g);
}

/* A fiber's rounding mode is its own (read and set without libm). */
#if defined(__x86_64__)
#include <xmmintrin.h>
static unsigned get_round(void)
{
	return (_mm_getcsr() >> 13) & 3u;
}
static void set_round(unsigned m)
{
	_mm_setcsr((_mm_getcsr() & ~(3u << 13)) | (m << 13));
}
#elif defined(__aarch64__)
static unsigned get_round(void)
{
	return (unsigned)(__builtin_aarch64_get_fpcr() >> 22) & 3u;
}
static void set_round(unsigned m)
{
	__builtin_aarch64_set_fpcr((__builtin_aarch64_get_fpcr() & ~(3u << 22)) | (m << 22));
}
#endif

static void *rounding(void *arg)
{
	unsigned mode = (unsigned)(uintptr_t)arg;
	set_round(mode);
	for (int i = 0; i < 50; i++) {
		CHECK_EQ(edo_fiber_yield(), 0);
		CHECK_EQ(get_round(), mode);
	}
	return NULL;
}

TEST(floating_point_mode_is_per_fiber)
{
	void *args[4] = {(void *)0, (void *)1, (void *)2, (void *)3};
	run_many(0, rounding, args, 4, NULL, NULL);
	CHECK_EQ(get_round(), 0u);
}

/* ---- cancellation ------------------------------------------------------------------------- */

enum victim_kind {
	V_GATE,      /* a hand-written future */
	V_YIELD,     /* yields in a loop */
	V_JOIN,      /* the join handle of a task that never finishes */
	V_READ,      /* an I/O leaf (EDO_FIBER_AWAIT_POLL) on an empty pipe */
	V_READY,     /* an edo_readiness future */
	V_COROUTINE, /* a coroutine frame awaiting a gate */
	V_BLOCKING,  /* the join handle of a slow blocking task */
	V_SLEEP,     /* a timer */
	V_TIMEOUT,   /* a hand-written future under a timeout */
	V_NKINDS,
};

typedef struct victim_arg {
	int kind;
	gate g, never;
	int fds[2];
	edo_async_fd *afd;
	atomic_int suspended, cleanup, co_cleanup;
	int first_rc, second_rc;
	bool saw_cancel;
	pthread_t thread_at_start, thread_at_cleanup;
} victim_arg;

typedef struct gate_co_frame {
	EDO_FRAME;
	gate_fut gf;
	atomic_int *cleaned;
} gate_co_frame;

static void gate_co_cleanup(gate_co_frame *self)
{
	atomic_fetch_add(self->cleaned, 1);
}

EDO_ASYNC(gate_co, gate_co_frame, gate_co_cleanup)
{
	EDO_BEGIN();
	EDO_AWAIT(&self->gf);
	EDO_END();
}

static void *never_ends(void *arg)
{
	return (void *)(intptr_t)gate_await(arg);
}

static void *slow_job(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
	return NULL;
}

static int victim_await(victim_arg *v)
{
	edo_join *h = NULL;
	int rc;
	char buf[16];
	switch (v->kind) {
	case V_GATE:
		return gate_await(&v->g);
	case V_YIELD:
		while ((rc = edo_fiber_yield()) == 0)
			;
		return rc;
	case V_JOIN:
		CHECK_EQ(edo_fiber_spawn(never_ends, &v->never, NULL, &h), 0);
		rc = edo_fiber_join(h);
		edo_join_abort(h);
		edo_join_detach(h);
		return rc;
	case V_READ:
		return (int)edo_fiber_read(v->afd, buf, sizeof buf);
	case V_READY:
		return edo_fiber_wait_ready(v->afd, EDO_INTEREST_READABLE);
	case V_COROUTINE: {
		gate_co_frame f = {EDO_FRAME_INIT(gate_co), .gf = {.base = {&gate_vt}, .g = &v->g},
				   .cleaned = &v->co_cleanup};
		return edo_fiber_await(&f.edo_base);
	}
	case V_BLOCKING:
		CHECK_EQ(edo_spawn_blocking(slow_job, NULL, &h), 0);
		rc = edo_fiber_join(h);
		edo_join_detach(h);
		return rc;
	case V_SLEEP:
		return edo_fiber_sleep(EDO_SEC(60));
	case V_TIMEOUT: {
		gate_fut gf = {.base = {&gate_vt}, .g = &v->g};
		return edo_fiber_await_timeout(&gf.base, EDO_SEC(60));
	}
	}
	return -1;
}

static void *victim(void *arg)
{
	victim_arg *v = arg;
	v->thread_at_start = pthread_self();
	atomic_store(&v->suspended, 1);
	v->first_rc = victim_await(v);
	/* Every later await fails at once. */
	edo_yield_now y = EDO_YIELD_NOW_INIT;
	v->second_rc = edo_fiber_await(&y.base);
	v->saw_cancel = edo_fiber_is_cancelled();
	v->thread_at_cleanup = pthread_self();
	atomic_store(&v->cleanup, 1);
	return NULL;
}

static void victim_setup(victim_arg *v, int kind)
{
	memset(v, 0, sizeof *v);
	v->kind = kind;
	gate_init(&v->g, 1);
	gate_init(&v->never, 1);
	CHECK_EQ(pipe2(v->fds, O_NONBLOCK | O_CLOEXEC), 0);
}

static void victim_teardown(victim_arg *v)
{
	gate_destroy(&v->g);
	gate_destroy(&v->never);
	close(v->fds[0]);
	close(v->fds[1]);
}

static void *canceller(void *arg)
{
	victim_arg *v = arg;
	CHECK_EQ(edo_async_fd_new(v->fds[0], EDO_INTEREST_READABLE, &v->afd), 0);
	edo_join *h;
	CHECK_EQ(edo_fiber_spawn(victim, v, &(edo_fiber_opts){.name = "victim"}, &h), 0);
	while (!atomic_load(&v->suspended))
		CHECK_EQ(edo_fiber_yield(), 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(edo_fiber_yield(), 0);
	CHECK(!atomic_load(&v->cleanup));
	edo_join_abort(h);
	CHECK_EQ(edo_fiber_join(h), -ECANCELED);
	CHECK(edo_join_fiber_result(h) == NULL);
	edo_join_detach(h);
	edo_async_fd_free(v->afd);
	return NULL;
}

static void cancel_each_kind(unsigned workers)
{
	for (int k = 0; k < V_NKINDS; k++) {
		victim_arg v;
		victim_setup(&v, k);
		run_fiber(workers, canceller, &v);
		CHECK_EQ(atomic_load(&v.cleanup), 1);
		CHECK_EQ(v.first_rc, -ECANCELED);
		CHECK_EQ(v.second_rc, -ECANCELED);
		CHECK(v.saw_cancel);
		CHECK(pthread_equal(v.thread_at_start, v.thread_at_cleanup));
		if (k == V_GATE || k == V_COROUTINE || k == V_TIMEOUT)
			CHECK_EQ(atomic_load(&v.g.drops), 1);
		if (k == V_COROUTINE)
			CHECK_EQ(atomic_load(&v.co_cleanup), 1);
		victim_teardown(&v);
	}
}

TEST(cancel_each_kind_of_await_current_thread)
{
	cancel_each_kind(0);
}

TEST(cancel_each_kind_of_await_multi_thread)
{
	cancel_each_kind(3);
}

/* Aborted before its first poll, a fiber never runs. */
static void *must_not_run(void *arg)
{
	atomic_store((atomic_int *)arg, 1);
	return NULL;
}

typedef struct abort_early_frame {
	EDO_FRAME;
	atomic_int *ran;
	edo_join *h;
	int rc;
} abort_early_frame;

EDO_ASYNC(abort_early, abort_early_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_fiber_spawn(must_not_run, self->ran, NULL, &self->h), 0);
	edo_join_abort(self->h);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	edo_join_detach(self->h);
	EDO_END();
}

TEST(abort_before_start_never_runs)
{
	for (unsigned w = 0; w <= 2; w += 2) {
		atomic_int ran = 0;
		edo_runtime *rt = rt_build(w);
		abort_early_frame f = {EDO_FRAME_INIT(abort_early), .ran = &ran};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
		if (w == 0) {
			CHECK_EQ(f.rc, -ECANCELED);
			CHECK_EQ(atomic_load(&ran), 0);
		} else {
			/* Another worker may have started it before the abort:
			 * then it ran to completion (it never awaits). */
			CHECK_EQ(f.rc, atomic_load(&ran) ? 0 : -ECANCELED);
		}
	}
}

/* A shield lets cleanup await after an abort; lowering it shows the abort. */
typedef struct shield_arg {
	gate first, cleanup_gate;
	atomic_int stage;
	int rc1, rc2, rc3;
} shield_arg;

static void *shielded_victim(void *arg)
{
	shield_arg *s = arg;
	atomic_store(&s->stage, 1);
	s->rc1 = gate_await(&s->first);
	CHECK(!edo_fiber_shield(true));
	atomic_store(&s->stage, 2);
	s->rc2 = gate_await(&s->cleanup_gate); /* waits until opened */
	CHECK(edo_fiber_shield(false));
	s->rc3 = edo_fiber_yield();
	return NULL;
}

static void *shield_canceller(void *arg)
{
	shield_arg *s = arg;
	edo_join *h;
	CHECK_EQ(edo_fiber_spawn(shielded_victim, s, NULL, &h), 0);
	while (atomic_load(&s->stage) < 1)
		CHECK_EQ(edo_fiber_yield(), 0);
	edo_join_abort(h);
	while (atomic_load(&s->stage) < 2)
		CHECK_EQ(edo_fiber_yield(), 0);
	for (int i = 0; i < 20; i++)
		CHECK_EQ(edo_fiber_yield(), 0);
	CHECK(!edo_join_is_finished(h)); /* still waiting, shielded */
	gate_open(&s->cleanup_gate);
	CHECK_EQ(edo_fiber_join(h), -ECANCELED);
	edo_join_detach(h);
	return NULL;
}

TEST(shield_lets_cleanup_await)
{
	for (unsigned w = 0; w <= 2; w += 2) {
		shield_arg s;
		gate_init(&s.first, 1);
		gate_init(&s.cleanup_gate, 1);
		atomic_init(&s.stage, 0);
		run_fiber(w, shield_canceller, &s);
		CHECK_EQ(s.rc1, -ECANCELED);
		CHECK_EQ(s.rc2, 0);
		CHECK_EQ(s.rc3, -ECANCELED);
		gate_destroy(&s.first);
		gate_destroy(&s.cleanup_gate);
	}
}

/* A shielded sleep in a fiber's cleanup at shutdown fails with -ECANCELED
 * (not for want of a timer wheel) on either flavour. */
static atomic_int sdsl_started, sdsl_first, sdsl_shielded;

static void *sdsl_fiber(void *arg)
{
	(void)arg;
	atomic_store(&sdsl_started, 1);
	atomic_store(&sdsl_first, edo_fiber_sleep(3600ull * 1000000000ull));
	edo_fiber_shield(true);
	atomic_store(&sdsl_shielded, edo_fiber_sleep(3600ull * 1000000000ull));
	edo_fiber_shield(false);
	return NULL;
}

typedef struct sdsl_frame {
	EDO_FRAME;
} sdsl_frame;

EDO_ASYNC(sdsl_main, sdsl_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_fiber_spawn(sdsl_fiber, NULL, NULL, NULL), 0);
	while (!atomic_load(&sdsl_started))
		EDO_YIELD();
	EDO_END();
}

TEST(shutdown_fails_a_shielded_sleep)
{
	for (unsigned w = 0; w <= 2; w += 2) {
		atomic_store(&sdsl_started, 0);
		atomic_store(&sdsl_first, 1);
		atomic_store(&sdsl_shielded, 1);
		edo_runtime *rt = rt_build(w);
		sdsl_frame f = {EDO_FRAME_INIT(sdsl_main)};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
		CHECK_EQ(atomic_load(&sdsl_first), -ECANCELED);
		CHECK_EQ(atomic_load(&sdsl_shielded), -ECANCELED);
	}
}

/* ---- runtime shutdown resumes every suspended fiber ---------------------------------------- */

typedef struct sd_shared {
	gate g;
	atomic_int started, cleaned, shielded_failed, wrong_thread;
} sd_shared;

static void *sd_fiber(void *arg)
{
	sd_shared *s = arg;
	pthread_t me = pthread_self();
	atomic_fetch_add(&s->started, 1);
	int rc = gate_await(&s->g);
	CHECK_EQ(rc, -ECANCELED);
	/* A shielded await at shutdown polls once, then fails. */
	edo_fiber_shield(true);
	if (gate_await(&s->g) == -ECANCELED)
		atomic_fetch_add(&s->shielded_failed, 1);
	if (!pthread_equal(me, pthread_self()))
		atomic_fetch_add(&s->wrong_thread, 1);
	atomic_fetch_add(&s->cleaned, 1);
	return NULL;
}

typedef struct sd_frame {
	EDO_FRAME;
	sd_shared *s;
	int n, i;
} sd_frame;

EDO_ASYNC(sd_main, sd_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++)
		CHECK_EQ(edo_fiber_spawn(sd_fiber, self->s, NULL, NULL), 0);
	while (gate_waiting(&self->s->g) < self->n)
		EDO_YIELD();
	EDO_END();
}

static void shutdown_with_suspended(unsigned workers, int n)
{
	sd_shared s;
	memset(&s, 0, sizeof s);
	gate_init(&s.g, n);
	edo_runtime *rt = rt_build(workers);
	sd_frame f = {EDO_FRAME_INIT(sd_main), .s = &s, .n = n};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(atomic_load(&s.cleaned), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(atomic_load(&s.started), n);
	CHECK_EQ(atomic_load(&s.cleaned), n);
	CHECK_EQ(atomic_load(&s.shielded_failed), n);
	CHECK_EQ(atomic_load(&s.wrong_thread), 0);
	CHECK_EQ(atomic_load(&s.g.drops), 2 * n);
	gate_destroy(&s.g);
}

TEST(shutdown_resumes_suspended_fibers_current_thread)
{
	shutdown_with_suspended(0, 100);
}

TEST(shutdown_resumes_suspended_fibers_multi_thread)
{
	shutdown_with_suspended(4, 400);
}

/* ---- abort racing with polls, wakes and steals ------------------------------------------------------ */

typedef struct race_arg {
	gate *g;
	atomic_int *started, *cleaned;
	int kind;
} race_arg;

static void *racer(void *arg)
{
	race_arg *r = arg;
	int rc = 0;
	atomic_fetch_add(r->started, 1);
	if (r->kind % 3 == 0)
		while ((rc = edo_fiber_yield()) == 0)
			;
	else if (r->kind % 3 == 1)
		rc = gate_await(r->g);
	else
		while ((rc = edo_fiber_sleep(EDO_MS(1))) == 0)
			;
	CHECK_EQ(rc, -ECANCELED);
	CHECK_EQ(edo_fiber_yield(), -ECANCELED);
	atomic_fetch_add(r->cleaned, 1);
	return NULL;
}

typedef struct race_frame {
	EDO_FRAME;
	int n, i, j, rc;
	race_arg *args;
	edo_join **h;
} race_frame;

EDO_ASYNC(race_main, race_frame, NULL)
{
	EDO_BEGIN();
	self->h = calloc((size_t)self->n, sizeof *self->h);
	for (self->i = 0; self->i < self->n; self->i++) {
		CHECK_EQ(edo_fiber_spawn(racer, &self->args[self->i], NULL, &self->h[self->i]), 0);
		/* Abort some at once, some after a few turns of the scheduler. */
		if (self->i % 4 == 0)
			edo_join_abort(self->h[self->i]);
		for (self->j = 0; self->j < self->i % 3; self->j++)
			EDO_YIELD();
	}
	for (self->i = 0; self->i < self->n; self->i++)
		edo_join_abort(self->h[self->i]);
	for (self->i = 0; self->i < self->n; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, -ECANCELED);
		edo_join_detach(self->h[self->i]);
	}
	free(self->h);
	EDO_END();
}

TEST(abort_races_multi_thread)
{
	int n = (int)test_scale(3000);
#ifdef EDO__TSAN
	if (n > 1000)
		n = 1000;
#endif
	gate g;
	gate_init(&g, n);
	atomic_int started = 0, cleaned = 0;
	race_arg *args = calloc((size_t)n, sizeof *args);
	for (int i = 0; i < n; i++)
		args[i] = (race_arg){.g = &g, .started = &started, .cleaned = &cleaned, .kind = i};
	edo_runtime *rt = rt_build(3);
	race_frame f = {EDO_FRAME_INIT(race_main), .n = n, .args = args};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	/* Every fiber that started wound down; those aborted before they
	 * started never ran. */
	CHECK_EQ(atomic_load(&cleaned), atomic_load(&started));
	CHECK_LE(atomic_load(&started), n);
	free(args);
	gate_destroy(&g);
}

/* Shutdown while fibers are busy yielding (queued, pinned) and sleeping. */
static atomic_int busy_started;

static void *busy_until_shutdown(void *arg)
{
	atomic_int *cleaned = arg;
	int rc;
	atomic_fetch_add(&busy_started, 1);
	while ((rc = edo_fiber_yield()) == 0)
		;
	CHECK_EQ(rc, -ECANCELED);
	while ((rc = edo_fiber_sleep(EDO_MS(1))) == 0)
		;
	atomic_fetch_add(cleaned, 1);
	return NULL;
}

typedef struct busy_frame {
	EDO_FRAME;
	atomic_int *cleaned;
	int n, i;
} busy_frame;

EDO_ASYNC(busy_main, busy_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++)
		CHECK_EQ(edo_fiber_spawn(busy_until_shutdown, self->cleaned, NULL, NULL), 0);
	while (atomic_load(&busy_started) < self->n)
		EDO_YIELD();
	for (self->i = 0; self->i < 20; self->i++)
		EDO_YIELD();
	EDO_END();
}

TEST(shutdown_with_busy_fibers)
{
	for (unsigned w = 0; w <= 4; w += 2) {
		atomic_int cleaned = 0;
		atomic_store(&busy_started, 0);
		edo_runtime *rt = rt_build(w);
		busy_frame f = {EDO_FRAME_INIT(busy_main), .cleaned = &cleaned, .n = 200};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
		if (atomic_load(&cleaned) != 200)
			TEST_FAIL_AT("%u workers: %d of 200 fibers cleaned up", w,
				     atomic_load(&cleaned));
	}
}

/* Shutdown while a fiber is running (not suspended) on one worker: another
 * worker's sweep marks its task cancelled and leaves it to its poller.  A
 * fiber handles its own cancellation, so the poller must still cancel it
 * once shutdown began: here the fiber runs until it is marked, then
 * suspends (shielded), and must be resumed cancelled before the runtime is
 * freed.  Before, it went idle, was never resumed, and its join handle
 * never finished. */
static atomic_int rs_started, rs_cleaned, rs_rc;

static void *running_at_shutdown(void *arg)
{
	(void)arg;
	atomic_store(&rs_started, 1);
	while (!edo_fiber_is_cancelled()) /* the sweep marks it while it runs */
		sched_yield();
	edo_fiber_shield(true);
	atomic_store(&rs_rc, edo_fiber_sleep(EDO_SEC(3600)));
	atomic_fetch_add(&rs_cleaned, 1);
	return NULL;
}

typedef struct rs_frame {
	EDO_FRAME;
	bool migrate;
	edo_join *h;
} rs_frame;

EDO_ASYNC(rs_main, rs_frame, NULL)
{
	EDO_BEGIN();
	edo_fiber_opts o = {.migrate = self->migrate};
	CHECK_EQ(edo_fiber_spawn(running_at_shutdown, NULL, &o, &self->h), 0);
	while (!atomic_load(&rs_started))
		EDO_YIELD();
	EDO_END();
}

TEST(shutdown_cancels_a_fiber_running_elsewhere)
{
	for (int migrate = 0; migrate <= 1; migrate++) {
		atomic_store(&rs_started, 0);
		atomic_store(&rs_cleaned, 0);
		atomic_store(&rs_rc, 1);
		edo_runtime *rt = rt_build(2);
		rs_frame f = {EDO_FRAME_INIT(rs_main), .migrate = migrate};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
		CHECK_EQ(atomic_load(&rs_cleaned), 1);
		CHECK_EQ(atomic_load(&rs_rc), -ECANCELED);
		CHECK(edo_join_is_finished(f.h));
		int rc = 1;
		edo_cx cx = {edo_noop_waker()};
		CHECK_EQ(edo_join_poll(f.h, &cx, &rc), EDO_READY);
		CHECK_EQ(rc, -ECANCELED);
		edo_join_detach(f.h);
	}
}

/* ---- 100,000 concurrent fibers ----------------------------------------------------------- */

static void *gate_then_return(void *arg)
{
	CHECK_EQ(gate_await(arg), 0);
	return arg;
}

typedef struct crowd_frame {
	EDO_FRAME;
	gate *g;
	int n, i, rc;
	edo_join **h;
} crowd_frame;

EDO_ASYNC(crowd, crowd_frame, NULL)
{
	EDO_BEGIN();
	self->h = malloc(sizeof(edo_join *) * (size_t)self->n);
	CHECK(self->h != NULL);
	for (self->i = 0; self->i < self->n; self->i++)
		CHECK_EQ(edo_fiber_spawn(gate_then_return, self->g, NULL, &self->h[self->i]), 0);
	/* Every fiber is alive and suspended at once. */
	while (gate_waiting(self->g) < self->n)
		EDO_YIELD();
	gate_open(self->g);
	for (self->i = 0; self->i < self->n; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		CHECK_EQ(edo_join_fiber_result(self->h[self->i]), (void *)self->g);
		edo_join_detach(self->h[self->i]);
	}
	free(self->h);
	EDO_END();
}

TEST(hundred_thousand_fibers)
{
	int n = (int)test_scale(100000);
#ifdef EDO__TSAN
	/* ThreadSanitizer counts each fiber as a thread (at most 8128), and
	 * makes each slowly. */
	if (n > 1000)
		n = 1000;
#endif
	gate g;
	gate_init(&g, n);
	edo_runtime *rt = rt_build(2);
	crowd_frame f = {EDO_FRAME_INIT(crowd), .g = &g, .n = n};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	gate_destroy(&g);
	edo__stack_stats st;
	edo__stack_get_stats(&st);
	CHECK_GE(st.carved, (size_t)n);
	if (st.madvise_guard == 1)
		CHECK_EQ(st.mprotect_guards, 0u);
	/* The idle pool keeps a few hundred stacks warm and trims the rest. */
	if (n >= 1000)
		CHECK_GT(st.trimmed, 0u);
	CHECK_GT(st.depot, 0u);
}

/* ---- the stack pool ------------------------------------------------------------------------- */

static void *noop_fiber(void *arg)
{
	return arg;
}

typedef struct seq_frame {
	EDO_FRAME;
	int i, n, rc;
	edo_join *h;
} seq_frame;

EDO_ASYNC(sequential, seq_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++) {
		CHECK_EQ(edo_fiber_spawn(noop_fiber, NULL, NULL, &self->h), 0);
		EDO_AWAIT_JOIN(self->h, &self->rc);
		edo_join_detach(self->h);
	}
	EDO_END();
}

TEST(stacks_are_reused)
{
	edo_runtime *rt = rt_build(0);
	seq_frame f = {EDO_FRAME_INIT(sequential), .n = 10000};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	edo__stack_stats st;
	edo__stack_get_stats(&st);
	CHECK_LE(st.carved, 2u);
	CHECK_EQ(st.slabs, 1u);
}

/* More fibers one after another than ThreadSanitizer's per-fiber shadow stack
 * holds frames (65536): each finished fiber must leave nothing on the
 * reused sanitizer context.  Not scaled: the count is the point. */
TEST(seventy_thousand_sequential_fibers)
{
	edo_runtime *rt = rt_build(0);
	seq_frame f = {EDO_FRAME_INIT(sequential), .n = 70000};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(f.i, 70000);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* ---- edo_block_in_place from a fiber keeps it on its thread ----------------------------------- */

static void sleep_a_bit(void *arg)
{
	(void)arg;
	usleep(2000);
}

static void *blocks_in_place(void *arg)
{
	(void)arg;
	pthread_t me = pthread_self();
	int wid = edo_worker_id();
	CHECK_EQ(edo_block_in_place(sleep_a_bit, NULL), 0);
	CHECK_EQ(edo_fiber_yield(), 0);
	CHECK(pthread_equal(me, pthread_self()));
	CHECK_EQ(edo_worker_id(), wid);
	return NULL;
}

TEST(block_in_place_in_a_fiber_stays_put)
{
	run_fiber(2, blocks_in_place, NULL);
}

/* ---- TCP and streams: an echo server and its clients, all fibers -------------------------------- */

static void *echo_conn_fiber(void *arg)
{
	edo_tcp_stream *s = arg;
	char buf[256];
	for (;;) {
		ssize_t n = edo_fiber_stream_read(edo_tcp_stream_io(s), buf, sizeof buf);
		if (n <= 0)
			break;
		CHECK_EQ(edo_fiber_stream_write_all(edo_tcp_stream_io(s), buf, (size_t)n), n);
	}
	edo_tcp_stream_close(s);
	return NULL;
}

typedef struct echo_setup {
	edo_tcp_listener *l;
	edo_addr addr;
	int clients;
} echo_setup;

static void *echo_server_fiber(void *arg)
{
	echo_setup *e = arg;
	for (int i = 0; i < e->clients; i++) {
		edo_tcp_stream *s;
		edo_addr peer;
		CHECK_EQ(edo_fiber_tcp_accept(e->l, &s, &peer), 0);
		CHECK_EQ(edo_fiber_spawn(echo_conn_fiber, s, NULL, NULL), 0);
	}
	return NULL;
}

static void *echo_client_fiber(void *arg)
{
	echo_setup *e = arg;
	edo_tcp_stream *s;
	CHECK_EQ(edo_fiber_tcp_connect(&e->addr, &s), 0);
	for (int round = 0; round < 20; round++) {
		char out[300], in[300];
		size_t len = 1 + (size_t)(round * 13 % 300);
		for (size_t i = 0; i < len; i++)
			out[i] = (char)(round + (int)i);
		CHECK_EQ(edo_fiber_stream_write_all(edo_tcp_stream_io(s), out, len), (ssize_t)len);
		size_t got = 0;
		while (got < len) {
			ssize_t n =
				edo_fiber_stream_read(edo_tcp_stream_io(s), in + got, len - got);
			CHECK_GT(n, 0);
			got += (size_t)n;
		}
		CHECK_EQ(memcmp(in, out, len), 0);
	}
	edo_tcp_stream_close(s);
	return NULL;
}

static void *echo_main(void *arg)
{
	(void)arg;
	echo_setup e = {.clients = 20};
	edo_addr a;
	CHECK_EQ(edo_addr_ip(&a, "127.0.0.1", 0), 0);
	CHECK_EQ(edo_tcp_listener_bind(&a, NULL, &e.l), 0);
	CHECK_EQ(edo_tcp_listener_local_addr(e.l, &e.addr), 0);
	edo_join *server, *clients[20];
	CHECK_EQ(edo_fiber_spawn(echo_server_fiber, &e, NULL, &server), 0);
	for (int i = 0; i < e.clients; i++)
		CHECK_EQ(edo_fiber_spawn(echo_client_fiber, &e, NULL, &clients[i]), 0);
	for (int i = 0; i < e.clients; i++) {
		CHECK_EQ(edo_fiber_join(clients[i]), 0);
		edo_join_detach(clients[i]);
	}
	CHECK_EQ(edo_fiber_join(server), 0);
	edo_join_detach(server);
	edo_tcp_listener_drop(e.l);
	return (void *)5;
}

TEST(tcp_echo_with_fibers)
{
	CHECK_EQ(run_fiber(0, echo_main, NULL), (void *)5);
	CHECK_EQ(run_fiber(3, echo_main, NULL), (void *)5);
}

/* ---- time ------------------------------------------------------------------------------------ */

static void *sleeper(void *arg)
{
	(void)arg;
	uint64_t t0 = test_now_ns();
	CHECK_EQ(edo_fiber_sleep(EDO_MS(20)), 0);
	CHECK_GE(test_now_ns() - t0, (uint64_t)EDO_MS(20));
	/* A timeout around a future that never completes. */
	gate g;
	gate_init(&g, 1);
	gate_fut gf = {.base = {&gate_vt}, .g = &g};
	t0 = test_now_ns();
	CHECK_EQ(edo_fiber_await_timeout(&gf.base, EDO_MS(15)), -ETIMEDOUT);
	CHECK_GE(test_now_ns() - t0, (uint64_t)EDO_MS(15));
	CHECK_EQ(atomic_load(&g.drops), 1);
	/* ... and around one that completes first. */
	count_frame c = {EDO_FRAME_INIT(count_co), .n = 3};
	CHECK_EQ(edo_fiber_await_timeout(&c.edo_base, EDO_SEC(10)), 0);
	CHECK_EQ(c.sum, 3);
	gate_destroy(&g);
	CHECK_EQ(edo_fiber_sleep_until(edo_instant_add(edo_instant_now(), EDO_MS(5))), 0);
	return (void *)4;
}

TEST(sleep_and_timeout)
{
	CHECK_EQ(run_fiber(0, sleeper, NULL), (void *)4);
	CHECK_EQ(run_fiber(2, sleeper, NULL), (void *)4);
	CHECK_EQ(edo_fiber_sleep(1), -EPERM);
}

/* ---- stack overflow is caught, with a message naming the task ------------------------------- */

static __attribute__((noinline)) int recurse(int depth, int limit)
{
	volatile char frame[1024];
	for (size_t i = 0; i < sizeof frame; i++) /* every byte: a canary sees only writes */
		frame[i] = (char)depth;
	if (depth == limit)
		return frame[0];
	return recurse(depth + 1, limit) + frame[sizeof frame - 1];
}

static void *overflow_fiber(void *arg)
{
	int limit = (int)(intptr_t)arg;
	int r = recurse(0, limit);
	/* The canary is checked when the fiber suspends. */
	CHECK_EQ(edo_fiber_yield(), 0);
	return (void *)(intptr_t)r;
}

/* Run @body(@arg) in a child process whose stderr goes to @err; returns
 * the child's wait status.  The child exits 0 if @body returns. */
static int in_child(void (*body)(void *), void *arg, char *err, size_t errlen)
{
	int p[2];
	CHECK_EQ(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	CHECK_GE(pid, 0);
	if (pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		body(arg);
		_exit(0);
	}
	close(p[1]);
	size_t len = 0;
	ssize_t n;
	while (len < errlen - 1 && (n = read(p[0], err + len, errlen - 1 - len)) > 0)
		len += (size_t)n;
	err[len] = 0;
	close(p[0]);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	return st;
}

typedef struct overflow_args {
	int guard;
	size_t stack;
	int limit;
} overflow_args;

static void overflow_body(void *arg)
{
	overflow_args *a = arg;
	edo__stack_force_guard(a->guard);
	edo_fiber_opts o = {.stack_size = a->stack, .name = "deep-recursion"};
	void *farg = (void *)(intptr_t)a->limit;
	run_many(0, overflow_fiber, &farg, 1, &o, NULL);
}

/* Run an overflowing fiber in a child process with @guard forced; returns
 * the child's wait status and its stderr in @err. */
static int overflow_child(int guard, size_t stack, int limit, char *err, size_t errlen)
{
	overflow_args a = {guard, stack, limit};
	return in_child(overflow_body, &a, err, errlen);
}

static void expect_overflow_report(int st, const char *err, int sig)
{
#if defined(EDO__ASAN)
	/* AddressSanitizer may catch the overflow first, with its own report. */
	if (strstr(err, "AddressSanitizer")) {
		CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) == 0));
		return;
	}
#endif
	if (!strstr(err, "edo: fiber stack overflow in task ") || !strstr(err, "(deep-recursion)"))
		TEST_FAIL_AT("no overflow report; stderr was: %s", err);
	CHECK(WIFSIGNALED(st));
	CHECK_EQ(WTERMSIG(st), sig);
}

TEST(overflow_hits_the_guard)
{
	if (EDO__RUNNING_ON_VALGRIND())
		SKIP("valgrind reports the overflow itself");
	char err[4096];
	int st = overflow_child(0, 0, 1 << 20, err, sizeof err);
	expect_overflow_report(st, err, SIGSEGV);
	CHECK(strstr(err, "guard page") != NULL || strstr(err, "AddressSanitizer") != NULL);
}

TEST(overflow_hits_an_mprotect_guard)
{
	if (EDO__RUNNING_ON_VALGRIND())
		SKIP("valgrind reports the overflow itself");
	char err[4096];
	int st = overflow_child(EDO__GUARD_MPROTECT, 0, 1 << 20, err, sizeof err);
	expect_overflow_report(st, err, SIGSEGV);
}

TEST(overflow_breaks_the_canary)
{
#if defined(EDO__ASAN)
	SKIP("AddressSanitizer reports the write below the stack itself");
#endif
	char err[4096];
	/* 16 KiB of stack, frames of about 1 KiB: about 2 KiB too deep, into
	 * the unprotected gap below the stack (the canary's stack has no guard). */
	int st = overflow_child(EDO__GUARD_CANARY, 16 << 10, 17, err, sizeof err);
	expect_overflow_report(st, err, SIGABRT);
	CHECK(strstr(err, "canary") != NULL);
}

/* A fault that is not an overflow goes to the action that was there before
 * the guard's handler.  SIG_IGN cannot ignore a fault (the kernel would kill
 * the process): it must end the same way, not return into the fault again
 * and again. */
static void *faulting_fiber(void *arg)
{
	/* An address no mapping has (the caller passes 8), written to. */
	*(volatile int *)arg = 1;
	return NULL;
}

/* A migrating fiber that overflows on a worker thread that never started a
 * fiber is reported too: that thread gets its alternate signal stack when it
 * first resumes one.  The fiber starts on one worker, spawns a task that
 * keeps that worker busy, and waits for a gate opened from outside: the
 * other worker resumes it.  If the same worker resumed it after all, the
 * round says so (exit 2) and runs again. */
typedef struct spin_frame {
	EDO_FRAME;
} spin_frame;

EDO_ASYNC(spin_300ms, spin_frame, NULL)
{
	EDO_BEGIN();
	uint64_t t0 = test_now_ns();
	while (test_now_ns() - t0 < 300 * 1000000ull)
		;
	EDO_END();
}

static void *migrating_overflow_fiber(void *arg)
{
	gate *g = arg;
	pid_t started = gettid();
	spin_frame sp = {EDO_FRAME_INIT(spin_300ms)};
	CHECK_EQ(edo_spawn(&sp.edo_base, sizeof sp, NULL), 0); /* next on this worker */
	CHECK_EQ(gate_await(g), 0);
	if (gettid() == started)
		_exit(2);
	return (void *)(intptr_t)recurse(0, 1 << 20);
}

static void *open_gate_later(void *arg)
{
	gate *g = arg;
	while (gate_waiting(g) < 1)
		usleep(200);
	usleep(50000); /* the spinner holds the fiber's first worker */
	gate_open(g);
	return NULL;
}

static void migrating_overflow_body(void *unused)
{
	(void)unused;
	gate g;
	gate_init(&g, 1);
	pthread_t opener;
	CHECK_EQ(pthread_create(&opener, NULL, open_gate_later, &g), 0);
	edo_fiber_opts o = {.name = "deep-recursion", .migrate = true};
	void *arg = &g;
	run_many(2, migrating_overflow_fiber, &arg, 1, &o, NULL);
}

TEST(overflow_after_migrating_to_a_fresh_thread)
{
	if (EDO__RUNNING_ON_VALGRIND())
		SKIP("valgrind reports the overflow itself");
	char err[4096];
	for (int round = 0; round < 10; round++) {
		int st = in_child(migrating_overflow_body, NULL, err, sizeof err);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 2)
			continue; /* resumed where it started: try again */
		expect_overflow_report(st, err, SIGSEGV);
		printf("  reported after migrating (round %d)\n", round + 1);
		return;
	}
	SKIP("the fiber was resumed on its first worker in every round");
}

static void fault_ignored_body(void *unused)
{
	(void)unused;
	(void)signal(SIGSEGV, SIG_IGN);
	alarm(5); /* a handler that loops is killed by SIGALRM instead */
	void *arg = (void *)(uintptr_t)8;
	run_many(0, faulting_fiber, &arg, 1, NULL, NULL);
}

TEST(fault_with_sigsegv_ignored_is_fatal)
{
	if (EDO__RUNNING_ON_VALGRIND())
		SKIP("valgrind reports the fault itself");
#if defined(EDO__ASAN)
	SKIP("AddressSanitizer reports the fault itself");
#endif
	char err[4096];
	int st = in_child(fault_ignored_body, NULL, err, sizeof err);
	CHECK(WIFSIGNALED(st));
	CHECK_EQ(WTERMSIG(st), SIGSEGV);
}

TEST_MAIN()
