/* Timer workloads: timers (1,000,000 sleeps) and timeout_polled (timeouts
 * whose timer is really registered), as bench/README.md defines them. */
#include "bench.h"

#define TIMERS 1000000
#define TIMEOUTS 1000000

/* ---- timers: 1,000,000 tasks each sleep 0..1000 ms, await all ---------------------- */

typedef struct timer_task_frame {
	EDO_FRAME;
	uint64_t ms;
	edo_sleep s;
} timer_task_frame;

EDO_ASYNC(timer_task, timer_task_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_SLEEP(&self->s, EDO_MS(self->ms));
	EDO_END();
}

typedef struct timers_frame {
	EDO_FRAME;
	edo_join **handles;
	long i;
	int rc;
	uint64_t x;
	double t0, wall_ms;
} timers_frame;

EDO_ASYNC(timers_main, timers_frame, NULL)
{
	EDO_BEGIN();
	self->handles = malloc(sizeof(edo_join *) * TIMERS);
	if (!self->handles)
		die("malloc", -ENOMEM);
	self->t0 = now_ns();
	self->x = 1;
	for (self->i = 0; self->i < TIMERS; self->i++) {
		self->x = self->x * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t ms = (self->x >> 33) % 1001;
		int rc = edo_spawn(
			&(timer_task_frame){EDO_FRAME_INIT(timer_task), .ms = ms}.edo_base,
			sizeof(timer_task_frame), &self->handles[self->i]);
		if (rc < 0)
			die("spawn", rc);
	}
	for (self->i = 0; self->i < TIMERS; self->i++) {
		EDO_AWAIT_JOIN(self->handles[self->i], &self->rc);
		if (self->rc < 0)
			die("join", self->rc);
		edo_join_detach(self->handles[self->i]);
	}
	self->wall_ms = (now_ns() - self->t0) / 1e6;
	free(self->handles);
	EDO_END();
}

static double bench_timers(edo_runtime *rt)
{
	double cpu0 = bench_cpu_ns();
	timers_frame f = {EDO_FRAME_INIT(timers_main)};
	run_in_task(rt, &f.edo_base, sizeof f);
	double cpu = bench_cpu_ns() - cpu0;
	bench_report("timers", cpu / TIMERS, "ns/op");
	bench_report("timers_wall", f.wall_ms, "ms");
	bench_report("timers_rss", bench_peak_rss_bytes(), "bytes");
	return 0;
}

BENCH_WORKLOAD(timers, bench_timers, NULL)

/* ---- timeout_polled: max(1, threads) tasks share 1,000,000 timeouts ----------------- */

/* timeout(1 s, yield): the yield is pending on its first poll (its wake
 * deferred), ready on its second, so the timer really is registered, and
 * cancelled when the yield completes. */
typedef struct timeout_task_frame {
	EDO_FRAME;
	long n, i;
	edo_yield_now y;
	edo_timeout to;
} timeout_task_frame;

EDO_ASYNC(timeout_task, timeout_task_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++) {
		self->y = (edo_yield_now)EDO_YIELD_NOW_INIT;
		EDO_AWAIT_TIMEOUT(&self->to, &self->y.base, EDO_SEC(1));
		if (self->to.result != 0)
			die("timeout", self->to.result);
	}
	EDO_END();
}

typedef struct timeout_polled_frame {
	EDO_FRAME;
	unsigned tasks, i;
	edo_join **handles;
	int rc;
	double t0, ns;
} timeout_polled_frame;

EDO_ASYNC(timeout_polled_main, timeout_polled_frame, NULL)
{
	EDO_BEGIN();
	self->handles = malloc(sizeof(edo_join *) * self->tasks);
	if (!self->handles)
		die("malloc", -ENOMEM);
	self->t0 = now_ns();
	for (self->i = 0; self->i < self->tasks; self->i++) {
		int rc = EDO_SPAWN(&self->handles[self->i], timeout_task,
				   .n = TIMEOUTS / (long)self->tasks);
		if (rc < 0)
			die("spawn", rc);
	}
	for (self->i = 0; self->i < self->tasks; self->i++) {
		EDO_AWAIT_JOIN(self->handles[self->i], &self->rc);
		if (self->rc < 0)
			die("join", self->rc);
		edo_join_detach(self->handles[self->i]);
	}
	self->ns = (now_ns() - self->t0) / TIMEOUTS;
	free(self->handles);
	EDO_END();
}

static double bench_timeout_polled(edo_runtime *rt)
{
	timeout_polled_frame f = {EDO_FRAME_INIT(timeout_polled_main),
				  .tasks = bench_threads ? bench_threads : 1};
	run_in_task(rt, &f.edo_base, sizeof f);
	return f.ns;
}

BENCH_WORKLOAD(timeout_polled, bench_timeout_polled, "ns/op")
