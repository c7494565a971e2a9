/* Fiber workloads (Edo only, no peer):
 *
 *   fiber_switch    one await round trip through the executor: a leaf future
 *                   wakes its task and returns PENDING, the task is queued,
 *                   polled again, and the leaf returns READY.  Measured for a
 *                   stackless coroutine (printed first, as
 *                   `fiber_switch_stackless`) and for a fiber awaiting the same
 *                   leaf with edo_fiber_await (`fiber_switch`); the difference
 *                   is the cost of the two context switches.  ns per await.
 *   fiber_idle_rss  RSS per idle fiber: from inside a task, spawn 100,000
 *                   fibers that each suspend on a future of their own; once
 *                   all wait, (peak RSS - RSS before) / 100,000, in bytes.
 */
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"

#define SWITCH_AWAITS 4000000
#define IDLE_FIBERS 100000

/* ---- the leaf: wakes itself and is PENDING once, then READY ---------------------- */

typedef struct bounce {
	edo_future base;
	bool polled;
} bounce;

static edo_poll bounce_poll(edo_future *f, edo_cx *cx)
{
	bounce *b = (bounce *)f;
	if (b->polled)
		return EDO_READY;
	b->polled = true;
	edo_waker_wake_by_ref(cx->waker);
	return EDO_PENDING;
}

static const edo_future_vtable bounce_vt = {.poll = bounce_poll, .drop = NULL};

/* ---- fiber_switch -------------------------------------------------------------------- */

typedef struct stackless_frame {
	EDO_FRAME;
	long i;
	bounce b;
	double t0, ns;
} stackless_frame;

EDO_ASYNC(stackless_loop, stackless_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = now_ns();
	for (self->i = 0; self->i < SWITCH_AWAITS; self->i++) {
		self->b = (bounce){{&bounce_vt}, false};
		EDO_AWAIT(&self->b);
	}
	self->ns = (now_ns() - self->t0) / SWITCH_AWAITS;
	EDO_END();
}

static void *fiber_loop(void *arg)
{
	double *ns = arg;
	double t0 = now_ns();
	for (long i = 0; i < SWITCH_AWAITS; i++) {
		bounce b = {{&bounce_vt}, false};
		if (edo_fiber_await(&b.base) < 0)
			die("fiber await", -ECANCELED);
	}
	*ns = (now_ns() - t0) / SWITCH_AWAITS;
	return NULL;
}

typedef struct fiber_switch_frame {
	EDO_FRAME;
	edo_join *h;
	int rc;
	double ns;
} fiber_switch_frame;

EDO_ASYNC(fiber_switch_task, fiber_switch_frame, NULL)
{
	EDO_BEGIN();
	int rc = edo_fiber_spawn(fiber_loop, &self->ns, NULL, &self->h);
	if (rc < 0)
		die("fiber spawn", rc);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	edo_join_detach(self->h);
	EDO_END();
}

static unsigned threads_of(edo_runtime *rt)
{
	edo_handle *h = edo_runtime_handle(rt);
	edo_rt_flavor fl = edo_handle_flavor(h);
	edo_handle_drop(h);
	if (fl == EDO_RT_CURRENT_THREAD)
		return 0;
	edo_runtime_metrics m;
	edo_runtime_metrics_get(rt, &m);
	return m.workers;
}

static double bench_fiber_switch(edo_runtime *rt)
{
	stackless_frame s = {EDO_FRAME_INIT(stackless_loop)};
	run_in_task(rt, &s.edo_base, sizeof s);
	printf("bench=fiber_switch_stackless impl=edo threads=%u value=%.2f unit=ns/op\n",
	       threads_of(rt), s.ns);
	fiber_switch_frame f = {EDO_FRAME_INIT(fiber_switch_task)};
	run(rt, &f.edo_base);
	return f.ns;
}

BENCH_WORKLOAD(fiber_switch, bench_fiber_switch, "ns/op")

/* ---- fiber_idle_rss ---------------------------------------------------------------------- */

/* One waker slot per fiber; released all at once. */
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static edo_waker *idle_wakers;
static bool idle_open;
static atomic_long idle_waiting;

typedef struct idle_fut {
	edo_future base;
	long slot;
	bool counted;
} idle_fut;

static edo_poll idle_poll(edo_future *f, edo_cx *cx)
{
	idle_fut *i = (idle_fut *)f;
	pthread_mutex_lock(&idle_lock);
	bool open = idle_open;
	if (!open)
		edo_waker_set(&idle_wakers[i->slot], cx->waker);
	pthread_mutex_unlock(&idle_lock);
	if (!open && !i->counted) {
		i->counted = true;
		atomic_fetch_add(&idle_waiting, 1);
	}
	return open ? EDO_READY : EDO_PENDING;
}

static const edo_future_vtable idle_vt = {.poll = idle_poll, .drop = NULL};

static void *idle_fiber(void *arg)
{
	idle_fut f = {{&idle_vt}, (long)(intptr_t)arg, false};
	if (edo_fiber_await(&f.base) < 0)
		die("idle await", -ECANCELED);
	return NULL;
}

typedef struct idle_frame {
	EDO_FRAME;
	edo_join **h;
	long i, before;
	int rc;
	double bytes;
} idle_frame;

EDO_ASYNC(idle_task, idle_frame, NULL)
{
	EDO_BEGIN();
	self->h = malloc(sizeof(edo_join *) * IDLE_FIBERS);
	idle_wakers = calloc(IDLE_FIBERS, sizeof(edo_waker));
	if (!self->h || !idle_wakers)
		die("malloc", -ENOMEM);
	self->before = (long)bench_rss_bytes();
	for (self->i = 0; self->i < IDLE_FIBERS; self->i++) {
		int rc = edo_fiber_spawn(idle_fiber, (void *)(intptr_t)self->i, NULL,
					 &self->h[self->i]);
		if (rc < 0)
			die("fiber spawn", rc);
	}
	while (atomic_load(&idle_waiting) < IDLE_FIBERS)
		EDO_YIELD();
	self->bytes = (bench_peak_rss_bytes() - (double)self->before) / IDLE_FIBERS;
	pthread_mutex_lock(&idle_lock);
	idle_open = true;
	pthread_mutex_unlock(&idle_lock);
	for (long k = 0; k < IDLE_FIBERS; k++)
		edo_waker_wake(edo_waker_take(&idle_wakers[k]));
	for (self->i = 0; self->i < IDLE_FIBERS; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		edo_join_detach(self->h[self->i]);
	}
	free(self->h);
	free(idle_wakers);
	EDO_END();
}

static double bench_fiber_idle_rss(edo_runtime *rt)
{
	idle_frame f = {EDO_FRAME_INIT(idle_task)};
	run_in_task(rt, &f.edo_base, sizeof f);
	return f.bytes;
}

BENCH_WORKLOAD(fiber_idle_rss, bench_fiber_idle_rss, "bytes")
