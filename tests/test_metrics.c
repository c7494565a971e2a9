/* Runtime metrics (edo/metrics.h) read after known workloads: exact counts
 * where the schedule is deterministic (the current-thread runtime, one
 * worker), bounds where it is not (stealing between two workers), and the
 * poll-time histogram, busy time, mean poll time, budget-forced yields,
 * I/O driver and blocking-pool figures, hooks, and reading it all while a
 * runtime runs (for ThreadSanitizer).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"

/* ---- helpers ------------------------------------------------------------------------ */

static edo_runtime *build(edo_rt_flavor flavor, unsigned workers, bool histogram)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, flavor);
	b.worker_threads = workers;
	b.poll_time_histogram = histogram;
	edo_runtime *rt = NULL;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	return rt;
}

static edo_worker_metrics worker(edo_runtime *rt, uint32_t i)
{
	edo_worker_metrics w;
	CHECK_EQ(edo_worker_metrics_get(rt, i, &w), 0);
	return w;
}

static edo_runtime_metrics runtime(edo_runtime *rt)
{
	edo_runtime_metrics m;
	CHECK_EQ(edo_runtime_metrics_get(rt, &m), 0);
	return m;
}

static uint64_t sum_polls(edo_runtime *rt)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < runtime(rt).workers; i++)
		n += worker(rt, i).polls;
	return n;
}

/* A task that yields @yields times, spinning @spin_ms before each poll returns. */
typedef struct yielder_frame {
	EDO_FRAME;
	int yields;
	double spin_ms;
	int i;
} yielder_frame;

EDO_ASYNC(yielder, yielder_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->yields; self->i++) {
		if (self->spin_ms > 0)
			test_spin_ms(self->spin_ms);
		EDO_YIELD();
	}
	if (self->spin_ms > 0)
		test_spin_ms(self->spin_ms);
	EDO_END();
}

/* Spawns @n yielders and joins them all (block_on's future: not a task). */
typedef struct fan_frame {
	EDO_FRAME;
	int n, yields;
	double spin_ms;
	edo_join **h;
	int i, rc;
} fan_frame;

EDO_ASYNC(fan, fan_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], yielder, .yields = self->yields,
				   .spin_ms = self->spin_ms),
			 0);
	for (self->i = 0; self->i < self->n; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

static void run_fan(edo_runtime *rt, int n, int yields, double spin)
{
	edo_join **h = calloc((size_t)n, sizeof *h);
	fan_frame f = {EDO_FRAME_INIT(fan), .n = n, .yields = yields, .spin_ms = spin, .h = h};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	free(h);
}

typedef struct park_counts {
	atomic_int start, stop, park, unpark;
} park_counts;

static void pc_start(void *ud)
{
	atomic_fetch_add(&((park_counts *)ud)->start, 1);
}
static void pc_stop(void *ud)
{
	atomic_fetch_add(&((park_counts *)ud)->stop, 1);
}
static void pc_park(void *ud)
{
	atomic_fetch_add(&((park_counts *)ud)->park, 1);
}
static void pc_unpark(void *ud)
{
	atomic_fetch_add(&((park_counts *)ud)->unpark, 1);
}

/* ---- the current-thread runtime: exact counts ---------------------------------------- */

TEST(current_thread_exact_counts)
{
	park_counts pc = {0};
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.hooks = (edo_runtime_hooks){.on_thread_park = pc_park, .on_thread_unpark = pc_unpark};
	b.hooks_ud = &pc;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	const int n = 50, k = 3;
	run_fan(rt, n, k, 0);

	edo_runtime_metrics m = runtime(rt);
	CHECK_EQ(m.workers, 1u);
	CHECK_EQ(m.alive_tasks, (size_t)0);
	CHECK_EQ(m.inject_queue_depth, (size_t)0);
	edo_worker_metrics w = worker(rt, 0);
	/* Each task is polled once per yield and once more to finish; the
	 * block_on future is not a task. */
	CHECK_EQ(w.polls, (uint64_t)(n * (k + 1)));
	/* Spawns and re-queued yields, all on the runtime's own thread. */
	CHECK_EQ(w.local_schedules, (uint64_t)(n * (k + 1)));
	CHECK_EQ(w.remote_schedules, 0u);
	CHECK_EQ(w.steals, 0u);
	CHECK_EQ(w.steal_operations, 0u);
	CHECK_EQ(w.overflows, 0u);
	CHECK_EQ(w.local_queue_depth, 0u);
	CHECK_EQ(w.budget_forced_yields, 0u);
	CHECK_EQ(w.parks, (uint64_t)atomic_load(&pc.park));
	CHECK_EQ(w.unparks, (uint64_t)atomic_load(&pc.unpark));
	CHECK_GT(w.busy_ns, 0u);
	CHECK_GT(w.mean_poll_ns, 0u);
	CHECK_EQ(w.poll_time_ns, 0u); /* no histogram: polls are not timed */
	CHECK_EQ(edo_worker_metrics_get(rt, 1, &w), -EINVAL);

	/* A second run adds exactly as much. */
	run_fan(rt, n, k, 0);
	CHECK_EQ(worker(rt, 0).polls, (uint64_t)(2 * n * (k + 1)));
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* Remote spawns: from another thread, through the inject queue. */
typedef struct noop_frame {
	EDO_FRAME;
} noop_frame;

EDO_ASYNC(noop, noop_frame, NULL)
{
	EDO_BEGIN();
	EDO_END();
}

typedef struct wait_alive_frame {
	EDO_FRAME;
	edo_runtime *rt;
	edo_yield_now y;
} wait_alive_frame;

EDO_ASYNC(wait_alive, wait_alive_frame, NULL)
{
	EDO_BEGIN();
	while (runtime(self->rt).alive_tasks) {
		self->y = (edo_yield_now)EDO_YIELD_NOW_INIT;
		EDO_AWAIT(&self->y);
	}
	EDO_END();
}

TEST(current_thread_remote_schedules)
{
	edo_runtime *rt = build(EDO_RT_CURRENT_THREAD, 0, false);
	edo_handle *h = edo_runtime_handle(rt);
	const int n = 40;
	for (int i = 0; i < n; i++)
		CHECK_EQ(EDO_SPAWN_ON(h, NULL, noop), 0);
	/* Nobody is in block_on: they wait in the inject queue. */
	edo_runtime_metrics m = runtime(rt);
	CHECK_EQ(m.inject_queue_depth, (size_t)n);
	CHECK_EQ(m.alive_tasks, (size_t)n);
	wait_alive_frame f = {EDO_FRAME_INIT(wait_alive), .rt = rt};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	edo_worker_metrics w = worker(rt, 0);
	CHECK_EQ(w.remote_schedules, (uint64_t)n);
	CHECK_EQ(w.local_schedules, 0u);
	CHECK_EQ(w.polls, (uint64_t)n);
	m = runtime(rt);
	CHECK_EQ(m.inject_queue_depth, (size_t)0);
	CHECK_EQ(m.alive_tasks, (size_t)0);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* A task that spends its whole budget in one poll: one forced yield. */
typedef struct greedy {
	edo_future base;
	int polls;
	int units;
} greedy;

static edo_poll greedy_poll(edo_future *f, edo_cx *cx)
{
	greedy *g = (greedy *)f;
	g->polls++;
	if (g->polls > 1)
		return EDO_READY;
	while (edo_coop_poll_proceed(cx) == EDO_READY)
		g->units++;
	return EDO_PENDING; /* the leaf deferred our wake */
}

static const edo_future_vtable greedy_vt = {.poll = greedy_poll};

TEST(budget_forced_yields)
{
	edo_runtime *rt = build(EDO_RT_CURRENT_THREAD, 0, false);
	edo_handle *h = edo_runtime_handle(rt);
	edo_join *j[3];
	for (int i = 0; i < 3; i++) {
		greedy g = {.base = {&greedy_vt}};
		CHECK_EQ(edo_spawn_on(h, &g.base, sizeof g, NULL, &j[i]), 0);
	}
	wait_alive_frame f = {EDO_FRAME_INIT(wait_alive), .rt = rt};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	for (int i = 0; i < 3; i++) {
		greedy *g = edo_join_output(j[i]);
		CHECK(g != NULL);
		CHECK_EQ(g->units, EDO_COOP_BUDGET);
		CHECK_EQ(g->polls, 2);
		edo_join_detach(j[i]);
	}
	edo_worker_metrics w = worker(rt, 0);
	CHECK_EQ(w.budget_forced_yields, 3u);
	CHECK_EQ(w.polls, 6u);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* budget_forced_yields only grows: not reset by the next block_on on the
 * current-thread runtime, nor by a worker's hand-off in edo_block_in_place. */
typedef struct greedy_main_frame {
	EDO_FRAME;
	edo_join *h;
	int i, rc;
	bool bip;
} greedy_main_frame;

static void bip_nothing(void *arg)
{
	(void)arg;
}

typedef struct bip_task_frame {
	EDO_FRAME;
} bip_task_frame;

EDO_ASYNC(bip_task, bip_task_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_block_in_place(bip_nothing, NULL), 0);
	EDO_END();
}

EDO_ASYNC(greedy_main, greedy_main_frame, NULL)
{
	EDO_BEGIN();
	if (self->bip) {
		CHECK_EQ(EDO_SPAWN(&self->h, bip_task), 0);
		EDO_AWAIT_JOIN(self->h, &self->rc);
		edo_join_detach(self->h);
		CHECK_EQ(EDO_SPAWN(&self->h, noop), 0);
		EDO_AWAIT_JOIN(self->h, &self->rc);
		edo_join_detach(self->h);
		EDO_RETURN();
	}
	for (self->i = 0; self->i < 3; self->i++) {
		{
			greedy g = {.base = {&greedy_vt}};
			CHECK_EQ(edo_spawn(&g.base, sizeof g, &self->h), 0);
		}
		EDO_AWAIT_JOIN(self->h, &self->rc);
		edo_join_detach(self->h);
	}
	EDO_END();
}

static edo_poll ready_poll(edo_future *f, edo_cx *cx)
{
	(void)f;
	(void)cx;
	return EDO_READY;
}

static const edo_future_vtable ready_vt = {.poll = ready_poll};

TEST(budget_forced_yields_never_go_back)
{
	edo_runtime *rt = build(EDO_RT_CURRENT_THREAD, 0, false);
	greedy_main_frame m = {EDO_FRAME_INIT(greedy_main)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(worker(rt, 0).budget_forced_yields, 3u);
	edo_future ready = {&ready_vt};
	CHECK_EQ(edo_block_on(rt, &ready), 0);
	CHECK_EQ(worker(rt, 0).budget_forced_yields, 3u);
	CHECK_EQ(edo_runtime_free(rt), 0);

	rt = build(EDO_RT_MULTI_THREAD, 1, false);
	greedy_main_frame m2 = {EDO_FRAME_INIT(greedy_main)};
	CHECK_EQ(edo_block_on(rt, &m2.edo_base), 0);
	/* Published when the worker parks. */
	WAIT_UNTIL(worker(rt, 0).polls >= 6u, 30);
	uint64_t before = worker(rt, 0).budget_forced_yields;
	CHECK_GE(before, 1u);
	greedy_main_frame m3 = {EDO_FRAME_INIT(greedy_main), .bip = true};
	CHECK_EQ(edo_block_on(rt, &m3.edo_base), 0);
	/* The greedy polls, the block_in_place one and the noop one after it,
	 * run by the worker's new thread. */
	WAIT_UNTIL(worker(rt, 0).polls >= 8u, 30);
	CHECK_GE(worker(rt, 0).budget_forced_yields, before);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* ---- busy time, mean poll time, the histogram ---------------------------------------------- */

TEST(busy_and_mean_poll_time)
{
	edo_runtime *rt = build(EDO_RT_CURRENT_THREAD, 0, false);
	/* One task, 20 polls of 2 ms each. */
	run_fan(rt, 1, 19, 2.0);
	edo_worker_metrics w = worker(rt, 0);
	CHECK_EQ(w.polls, 20u);
	CHECK_GE(w.busy_ns, 40u * 1000000u);
	/* Without the histogram the mean is busy time per poll: at least the
	 * 2 ms spin, and not absurdly more. */
	CHECK_GE(w.mean_poll_ns, 1900000u);
	CHECK_LT(w.mean_poll_ns, 1000000000u);
	CHECK_EQ(edo_runtime_free(rt), 0);

	/* The multi-thread runtime publishes busy time while it stays busy. */
	rt = build(EDO_RT_MULTI_THREAD, 1, false);
	run_fan(rt, 1, 19, 2.0);
	WAIT_UNTIL(sum_polls(rt) == 20, 30);
	WAIT_UNTIL(worker(rt, 0).busy_ns >= 40u * 1000000u, 30);
	CHECK_GE(worker(rt, 0).mean_poll_ns, 1000000u);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

static uint64_t polls_at_least(const uint64_t *hist, uint64_t ns)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < EDO_POLL_HISTOGRAM_BUCKETS; i++) {
		uint64_t lo, hi;
		CHECK_EQ(edo_poll_histogram_bucket_range(i, &lo, &hi), 0);
		if (lo >= ns)
			n += hist[i];
	}
	return n;
}

static uint64_t hist_total(const uint64_t *hist)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < EDO_POLL_HISTOGRAM_BUCKETS; i++)
		n += hist[i];
	return n;
}

TEST(poll_time_histogram)
{
	/* Buckets: 0 below 128 ns, then one per doubling, the last open. */
	uint64_t lo, hi;
	CHECK_EQ(edo_poll_histogram_bucket_range(0, &lo, &hi), 0);
	CHECK_EQ(lo, 0u);
	CHECK_EQ(hi, 128u);
	CHECK_EQ(edo_poll_histogram_bucket_range(1, &lo, &hi), 0);
	CHECK_EQ(lo, 128u);
	CHECK_EQ(hi, 256u);
	CHECK_EQ(edo_poll_histogram_bucket_range(15, &lo, &hi), 0);
	CHECK_EQ(lo, (uint64_t)1 << 21); /* 2.1 ms */
	CHECK_EQ(hi, (uint64_t)1 << 22);
	CHECK_EQ(edo_poll_histogram_bucket_range(EDO_POLL_HISTOGRAM_BUCKETS - 1, &lo, &hi), 0);
	CHECK_EQ(hi, UINT64_MAX);
	CHECK_EQ(edo_poll_histogram_bucket_range(EDO_POLL_HISTOGRAM_BUCKETS, &lo, &hi), -EINVAL);

	uint64_t hist[EDO_POLL_HISTOGRAM_BUCKETS];
	edo_runtime *rt = build(EDO_RT_CURRENT_THREAD, 0, false);
	CHECK_EQ(edo_worker_poll_histogram(rt, 0, hist), -ENOTSUP);
	CHECK_EQ(edo_runtime_free(rt), 0);

	rt = build(EDO_RT_CURRENT_THREAD, 0, true);
	CHECK_EQ(edo_worker_poll_histogram(rt, 1, hist), -EINVAL);
	CHECK_EQ(edo_worker_poll_histogram(NULL, 0, hist), -EINVAL);
	/* 10 polls of 3 ms (one task), then 100 trivial polls. */
	run_fan(rt, 1, 9, 3.0);
	run_fan(rt, 100, 0, 0);
	CHECK_EQ(edo_worker_poll_histogram(rt, 0, hist), 0);
	CHECK_EQ(hist_total(hist), 110u);
	CHECK_EQ(worker(rt, 0).polls, 110u);
	/* The long polls land at 2.1 ms or above; a trivial poll only if the
	 * machine took the CPU away in the middle of it. */
	uint64_t slow = polls_at_least(hist, (uint64_t)1 << 21);
	CHECK_GE(slow, 10u);
	CHECK_LE(slow, 20u);
	CHECK_GE(hist_total(hist) - polls_at_least(hist, (uint64_t)1 << 20), 90u);
	edo_worker_metrics w = worker(rt, 0);
	CHECK_GE(w.poll_time_ns, 30u * 1000000u);
	CHECK_GT(w.mean_poll_ns, 0u);
	CHECK_EQ(edo_runtime_free(rt), 0);

	/* Multi-thread: every worker's polls add up. */
	rt = build(EDO_RT_MULTI_THREAD, 2, true);
	run_fan(rt, 200, 4, 0);
	WAIT_UNTIL(sum_polls(rt) == 1000, 30);
	uint64_t total = 0;
	for (uint32_t i = 0; i < 2; i++) {
		CHECK_EQ(edo_worker_poll_histogram(rt, i, hist), 0);
		total += hist_total(hist);
	}
	CHECK_EQ(total, 1000u);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(poll_time_histogram_sampled)
{
	/* One poll in 16 is timed and counts 16 times: the totals still match
	 * (on one worker the countdown is exact), at a sixteenth of the cost. */
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.poll_time_histogram = true;
	b.poll_time_sample = 10; /* rounded up to 16 */
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	run_fan(rt, 160, 9, 0); /* 1,600 polls */
	uint64_t hist[EDO_POLL_HISTOGRAM_BUCKETS];
	CHECK_EQ(edo_worker_poll_histogram(rt, 0, hist), 0);
	CHECK_EQ(hist_total(hist), 1600u);
	for (unsigned i = 0; i < EDO_POLL_HISTOGRAM_BUCKETS; i++)
		CHECK_EQ(hist[i] % 16, 0u);
	CHECK_GT(worker(rt, 0).poll_time_ns, 0u);
	CHECK_EQ(edo_runtime_free(rt), 0);
	b.poll_time_sample = 65537;
	CHECK_EQ(edo_runtime_build(&b, &rt), -EINVAL);
}

/* A poll that hands its worker to another thread (edo_block_in_place) is
 * not the worker's any more: its time is not counted, and the worker's next
 * poll on the new thread must not be timed from that poll's start.  One
 * poll in 2 is timed, so in each round the handing-off poll is the timed
 * one about half the time; it first spins for 150 ms, which a stale start
 * would add to the next poll. */
static atomic_bool handoff_done;

static void handoff_nothing(void *arg)
{
	(void)arg;
}

typedef struct handoff_frame {
	EDO_FRAME;
	int round;
} handoff_frame;

EDO_ASYNC(handoff_spinner, handoff_frame, NULL)
{
	EDO_BEGIN();
	for (self->round = 0; self->round < 8; self->round++) {
		uint64_t t0 = test_now_ns();
		while (test_now_ns() - t0 < 150 * 1000000ull)
			;
		CHECK_EQ(edo_block_in_place(handoff_nothing, NULL), 0);
		EDO_YIELD();
	}
	atomic_store(&handoff_done, true);
	EDO_END();
}

EDO_ASYNC(handoff_ticker, handoff_frame, NULL)
{
	EDO_BEGIN();
	while (!atomic_load(&handoff_done))
		EDO_YIELD();
	EDO_END();
}

typedef struct handoff_main_frame {
	EDO_FRAME;
	edo_join *spinner, *ticker;
	int rc;
} handoff_main_frame;

EDO_ASYNC(handoff_main, handoff_main_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->ticker, handoff_ticker), 0);
	CHECK_EQ(EDO_SPAWN(&self->spinner, handoff_spinner), 0);
	EDO_AWAIT_JOIN(self->spinner, &self->rc);
	CHECK_EQ(self->rc, 0);
	EDO_AWAIT_JOIN(self->ticker, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->spinner);
	edo_join_detach(self->ticker);
	EDO_END();
}

TEST(poll_time_after_block_in_place_hand_off)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_MULTI_THREAD);
	b.worker_threads = 1;
	b.poll_time_histogram = true;
	b.poll_time_sample = 2;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	handoff_main_frame m = {EDO_FRAME_INIT(handoff_main)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	uint64_t hist[EDO_POLL_HISTOGRAM_BUCKETS];
	CHECK_EQ(edo_worker_poll_histogram(rt, 0, hist), 0);
	/* No poll but the spinner's (not counted) took anywhere near 150 ms. */
	CHECK_EQ(polls_at_least(hist, 100 * 1000000ull), 0u);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* ---- the multi-thread runtime ---------------------------------------------------------------- */

/* Spawns @n tasks in one poll, tells the test, and holds the worker until
 * it is released (so nobody takes from the inject queue meanwhile). */
static atomic_int burst_spawned, burst_release;

typedef struct burst_frame {
	EDO_FRAME;
	int n;
} burst_frame;

EDO_ASYNC(burst, burst_frame, NULL)
{
	EDO_BEGIN();
	for (int i = 0; i < self->n; i++)
		CHECK_EQ(EDO_SPAWN(NULL, noop), 0);
	atomic_store(&burst_spawned, 1);
	while (!atomic_load(&burst_release))
		test_sleep_ms(0.2);
	EDO_END();
}

TEST(multi_thread_overflow_and_inject)
{
	edo_runtime *rt = build(EDO_RT_MULTI_THREAD, 1, false);
	edo_handle *h = edo_runtime_handle(rt);
	const int n = 600;
	CHECK_EQ(EDO_SPAWN_ON(h, NULL, burst, .n = n), 0);
	WAIT_UNTIL(atomic_load(&burst_spawned), 30);
	/* One worker, its local queue holds 256 and its LIFO slot one: the
	 * rest overflowed to the inject queue, in batches of half a queue. */
	edo_runtime_metrics m = runtime(rt);
	CHECK_EQ(m.alive_tasks, (size_t)n + 1);
	CHECK_GE(m.inject_queue_depth, (size_t)(n - 257));
	CHECK_LE(m.inject_queue_depth, (size_t)(n - 1));
	atomic_store(&burst_release, 1);
	WAIT_UNTIL(runtime(rt).alive_tasks == 0, 30);
	WAIT_UNTIL(sum_polls(rt) == (uint64_t)n + 1, 30);
	edo_worker_metrics w = worker(rt, 0);
	CHECK_GE(w.overflows, 2u);
	/* The burst task came from outside; the overflowed ones came back. */
	CHECK_GE(w.remote_schedules, m.inject_queue_depth + 1);
	CHECK_EQ(w.local_schedules, (uint64_t)n);
	CHECK_EQ(w.steals, 0u);
	CHECK_EQ(runtime(rt).inject_queue_depth, (size_t)0);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* Spawns @n tasks then keeps its worker busy: the other worker steals. */
typedef struct hog_frame {
	EDO_FRAME;
	int n;
} hog_frame;

EDO_ASYNC(hog, hog_frame, NULL)
{
	EDO_BEGIN();
	for (int i = 0; i < self->n; i++)
		CHECK_EQ(EDO_SPAWN(NULL, yielder, .yields = 1, .spin_ms = 0.05), 0);
	test_spin_ms(100);
	EDO_END();
}

TEST(multi_thread_steals_parks_hooks)
{
	park_counts pc = {0};
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_MULTI_THREAD);
	b.worker_threads = 2;
	b.hooks = (edo_runtime_hooks){.on_thread_start = pc_start,
				      .on_thread_stop = pc_stop,
				      .on_thread_park = pc_park,
				      .on_thread_unpark = pc_unpark};
	b.hooks_ud = &pc;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	WAIT_UNTIL(atomic_load(&pc.start) == 2, 30);
	WAIT_UNTIL(atomic_load(&pc.park) >= 2, 30);
	edo_handle *h = edo_runtime_handle(rt);
	const int n = 200;
	CHECK_EQ(EDO_SPAWN_ON(h, NULL, hog, .n = n), 0);
	WAIT_UNTIL(runtime(rt).alive_tasks == 0, 60);
	WAIT_UNTIL(sum_polls(rt) == (uint64_t)(1 + 2 * n), 60);
	uint64_t steals = 0, ops = 0, parks = 0, unparks = 0;
	/* Quiescent once both workers park again: then every park and unpark
	 * the hooks saw is counted. */
	double deadline = test_now_s() + 30;
	for (;;) {
		steals = ops = parks = unparks = 0;
		for (uint32_t i = 0; i < 2; i++) {
			edo_worker_metrics w = worker(rt, i);
			steals += w.steals;
			ops += w.steal_operations;
			parks += w.parks;
			unparks += w.unparks;
		}
		if (parks == (uint64_t)atomic_load(&pc.park) &&
		    unparks == (uint64_t)atomic_load(&pc.unpark))
			break;
		CHECK(test_now_s() < deadline);
		test_sleep_ms(1);
	}
	/* The hog kept its worker for 100 ms with 200 tasks queued behind it. */
	CHECK_GT(steals, 0u);
	CHECK_GE(ops, 1u);
	CHECK_GE(parks, 2u);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(atomic_load(&pc.stop), 2);
	CHECK_EQ(atomic_load(&pc.park), atomic_load(&pc.unpark));
}

/* ---- I/O driver, blocking pool ----------------------------------------------------------------- */

typedef struct reader_frame {
	EDO_FRAME;
	edo_async_fd *a;
	char buf[8];
	ssize_t n;
} reader_frame;

EDO_ASYNC(reader, reader_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_POLL(edo_async_fd_poll_read(self->a, cx, self->buf, sizeof self->buf, &self->n));
	EDO_END();
}

typedef struct io_main_frame {
	EDO_FRAME;
	int wfd;
	edo_async_fd *a;
	edo_join *h;
	int rc;
	edo_yield_now y;
} io_main_frame;

EDO_ASYNC(io_main, io_main_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->h, reader, .a = self->a), 0);
	self->y = (edo_yield_now)EDO_YIELD_NOW_INIT;
	EDO_AWAIT(&self->y); /* let the reader park on the fd */
	CHECK_EQ(write(self->wfd, "x", 1), 1);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	CHECK_EQ(EDO_JOIN_OUTPUT(self->h, reader)->n, 1);
	edo_join_detach(self->h);
	EDO_END();
}

TEST(io_driver_counts)
{
	edo_runtime *rt = build(EDO_RT_CURRENT_THREAD, 0, false);
	edo_runtime_metrics before = runtime(rt);
	int p[2];
	CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	edo_handle *h = edo_runtime_handle(rt);
	edo_async_fd *a;
	CHECK_EQ(edo_async_fd_new_on(h, p[0], EDO_INTEREST_READABLE, &a), 0);
	edo_runtime_metrics m = runtime(rt);
	CHECK_EQ(m.io_registrations, before.io_registrations + 1);
	CHECK_EQ(m.io_deregistrations, before.io_deregistrations);
	io_main_frame f = {EDO_FRAME_INIT(io_main), .wfd = p[1], .a = a};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	m = runtime(rt);
	/* The write made the read end readable: one event woke the reader. */
	CHECK_GE(m.io_ready_events, before.io_ready_events + 1);
	CHECK_EQ(edo_async_fd_free(a), p[0]); /* the fd stays ours */
	m = runtime(rt);
	CHECK_EQ(m.io_deregistrations, before.io_deregistrations + 1);
	close(p[0]);
	close(p[1]);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

static atomic_int gate_open_flag;

static void *blocked_job(void *arg)
{
	while (!atomic_load(&gate_open_flag))
		test_sleep_ms(0.5);
	return arg;
}

TEST(blocking_pool_and_thread_hooks)
{
	park_counts pc = {0};
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.max_blocking_threads = 2;
	b.hooks = (edo_runtime_hooks){.on_thread_start = pc_start, .on_thread_stop = pc_stop};
	b.hooks_ud = &pc;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	edo_handle *h = edo_runtime_handle(rt);
	edo_join *j[3];
	for (int i = 0; i < 3; i++)
		CHECK_EQ(edo_spawn_blocking_on(h, blocked_job, NULL, 0, &j[i]), 0);
	/* Two threads busy, the third job queued. */
	WAIT_UNTIL(runtime(rt).blocking_threads == 2 && runtime(rt).blocking_queue_depth == 1, 30);
	CHECK_EQ(runtime(rt).blocking_idle_threads, (size_t)0);
	/* Blocking threads are runtime threads: their start hook ran. */
	WAIT_UNTIL(atomic_load(&pc.start) == 2, 30);
	atomic_store(&gate_open_flag, 1);
	WAIT_UNTIL(runtime(rt).blocking_queue_depth == 0 && runtime(rt).blocking_idle_threads == 2,
		   30);
	for (int i = 0; i < 3; i++) {
		CHECK(edo_join_is_finished(j[i]));
		edo_join_detach(j[i]);
	}
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(atomic_load(&pc.stop), 2);
}

/* ---- reading while it runs ------------------------------------------------------------------- */

static atomic_int reader_stop;

static void *metrics_reader(void *arg)
{
	edo_runtime *rt = arg;
	uint64_t hist[EDO_POLL_HISTOGRAM_BUCKETS];
	long reads = 0;
	while (!atomic_load(&reader_stop)) {
		edo_runtime_metrics m;
		CHECK_EQ(edo_runtime_metrics_get(rt, &m), 0);
		for (uint32_t i = 0; i < m.workers; i++) {
			edo_worker_metrics w;
			CHECK_EQ(edo_worker_metrics_get(rt, i, &w), 0);
			CHECK_EQ(edo_worker_poll_histogram(rt, i, hist), 0);
		}
		reads++;
	}
	return (void *)reads;
}

TEST(read_while_running)
{
	edo_runtime *rt = build(EDO_RT_MULTI_THREAD, 2, true);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, metrics_reader, rt), 0);
	for (int round = 0; round < 5; round++)
		run_fan(rt, (int)test_scale(2000), 3, 0);
	atomic_store(&reader_stop, 1);
	void *reads;
	pthread_join(th, &reads);
	CHECK_GT((long)reads, 0);
	WAIT_UNTIL(sum_polls(rt) == (uint64_t)(5 * test_scale(2000) * 4), 30);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(bad_arguments)
{
	edo_runtime_metrics m;
	edo_worker_metrics w;
	CHECK_EQ(edo_runtime_metrics_get(NULL, &m), -EINVAL);
	CHECK_EQ(edo_worker_metrics_get(NULL, 0, &w), -EINVAL);
	edo_runtime *rt = build(EDO_RT_CURRENT_THREAD, 0, false);
	CHECK_EQ(edo_runtime_metrics_get(rt, NULL), -EINVAL);
	CHECK_EQ(edo_worker_metrics_get(rt, 0, NULL), -EINVAL);
	CHECK_EQ(edo_worker_poll_histogram(rt, 0, NULL), -EINVAL);
	CHECK_EQ(edo_poll_histogram_bucket_range(0, NULL, NULL), -EINVAL);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST_MAIN()
