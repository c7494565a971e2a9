/* Task workloads: spawn_many, spawn_remote, yield_many, chained_spawn. */
#include "bench.h"

#define SPAWN_MANY 1000000
#define REMOTE_ROUNDS 20
#define REMOTE_PER_THREAD 12800
#define YIELD_TASKS 1000
#define YIELDS 1000
#define CHAIN_DEPTH 1000
#define CHAIN_ITERS 100

/* ---- spawn_many: spawn 1,000,000 empty tasks from a task, join them all ---- */

typedef struct empty_frame {
	EDO_FRAME;
} empty_frame;

EDO_ASYNC(empty_task, empty_frame, NULL)
{
	EDO_BEGIN();
	EDO_END();
}

typedef struct spawn_many_frame {
	EDO_FRAME;
	edo_join **handles;
	long i;
	int rc;
	double t0, cpu0, ns;
} spawn_many_frame;

EDO_ASYNC(spawn_many_task, spawn_many_frame, NULL)
{
	EDO_BEGIN();
	self->handles = malloc(sizeof(edo_join *) * SPAWN_MANY);
	if (!self->handles)
		die("malloc", -ENOMEM);
	self->t0 = now_ns();
	self->cpu0 = bench_cpu_ns();
	for (self->i = 0; self->i < SPAWN_MANY; self->i++) {
		int rc = edo_spawn(&(empty_frame){EDO_FRAME_INIT(empty_task)}.edo_base,
				   sizeof(empty_frame), &self->handles[self->i]);
		if (rc < 0)
			die("spawn", rc);
	}
	for (self->i = 0; self->i < SPAWN_MANY; self->i++) {
		EDO_AWAIT_JOIN(self->handles[self->i], &self->rc);
		edo_join_detach(self->handles[self->i]);
	}
	self->ns = (now_ns() - self->t0) / SPAWN_MANY;
	bench_report_cpu((bench_cpu_ns() - self->cpu0) / SPAWN_MANY);
	free(self->handles);
	EDO_END();
}

static double bench_spawn_many(edo_runtime *rt)
{
	spawn_many_frame f = {EDO_FRAME_INIT(spawn_many_task)};
	run_in_task(rt, &f.edo_base, sizeof f);
	return f.ns;
}

/* ---- spawn_remote: 2 outside threads spawn 12,800 tasks each (20 rounds) ---- */

typedef struct remote_arg {
	edo_handle *h;
	pthread_barrier_t *start;
	double ns;
} remote_arg;

static void *remote_spawner(void *p)
{
	remote_arg *a = p;
	pthread_barrier_wait(a->start);
	double t0 = now_ns();
	for (int i = 0; i < REMOTE_PER_THREAD; i++) {
		int rc = edo_spawn_on(a->h, &(empty_frame){EDO_FRAME_INIT(empty_task)}.edo_base,
				      sizeof(empty_frame), NULL, NULL);
		if (rc < 0)
			die("spawn_on", rc);
	}
	a->ns = now_ns() - t0;
	return NULL;
}

/* Waits (in the runtime) until the remote spawns of a round have all run. */
typedef struct drain_frame {
	EDO_FRAME;
	edo_handle *h;
} drain_frame;

EDO_ASYNC(drain_task, drain_frame, NULL)
{
	EDO_BEGIN();
	/* block_on's future is not a task: wait until every spawned task is gone. */
	while (edo_handle_alive_tasks(self->h) > 0)
		EDO_YIELD();
	EDO_END();
}

static double bench_spawn_remote(edo_runtime *rt)
{
	edo_handle *h = edo_runtime_handle(rt);
	double total = 0;
	for (int r = 0; r < REMOTE_ROUNDS; r++) {
		pthread_barrier_t start;
		pthread_barrier_init(&start, NULL, 3);
		remote_arg a[2] = {{h, &start, 0}, {h, &start, 0}};
		pthread_t th[2];
		for (int i = 0; i < 2; i++)
			pthread_create(&th[i], NULL, remote_spawner, &a[i]);
		pthread_barrier_wait(&start);
		double t0 = now_ns();
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		total += now_ns() - t0;
		pthread_barrier_destroy(&start);
		/* Run the spawned tasks before the next round. */
		drain_frame d = {EDO_FRAME_INIT(drain_task), .h = h};
		run(rt, &d.edo_base);
	}
	edo_handle_drop(h);
	return total / (REMOTE_ROUNDS * 2.0 * REMOTE_PER_THREAD);
}

/* ---- yield_many: 1,000 tasks each yield 1,000 times --------------------------- */

typedef struct yielder_frame {
	EDO_FRAME;
	int i;
} yielder_frame;

EDO_ASYNC(yielder_task, yielder_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < YIELDS; self->i++)
		EDO_YIELD();
	EDO_END();
}

typedef struct yield_many_frame {
	EDO_FRAME;
	edo_join *handles[YIELD_TASKS];
	int i, rc;
	double t0, ns;
} yield_many_frame;

EDO_ASYNC(yield_many_task, yield_many_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = now_ns();
	for (self->i = 0; self->i < YIELD_TASKS; self->i++) {
		int rc = EDO_SPAWN(&self->handles[self->i], yielder_task);
		if (rc < 0)
			die("spawn", rc);
	}
	for (self->i = 0; self->i < YIELD_TASKS; self->i++) {
		EDO_AWAIT_JOIN(self->handles[self->i], &self->rc);
		edo_join_detach(self->handles[self->i]);
	}
	self->ns = (now_ns() - self->t0) / ((double)YIELD_TASKS * YIELDS);
	EDO_END();
}

static double bench_yield_many(edo_runtime *rt)
{
	yield_many_frame *f = calloc(1, sizeof *f);
	f->edo_base.vt = &yield_many_task_vt;
	run_in_task(rt, &f->edo_base, sizeof *f);
	double ns = f->ns;
	free(f);
	return ns;
}

/* ---- chained_spawn: each task spawns the next, depth 1,000, 100 times -------- */

typedef struct chain_frame {
	EDO_FRAME;
	int n;
	done_signal *done;
} chain_frame;

EDO_ASYNC(chain_task, chain_frame, NULL)
{
	EDO_BEGIN();
	if (self->n == 0) {
		done_fire(self->done);
	} else {
		int rc = EDO_SPAWN(NULL, chain_task, .n = self->n - 1, .done = self->done);
		if (rc < 0)
			die("spawn", rc);
	}
	EDO_END();
}

typedef struct chained_frame {
	EDO_FRAME;
	int it;
	done_signal done;
	double t0, ns;
} chained_frame;

EDO_ASYNC(chained_spawn_task, chained_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = now_ns();
	for (self->it = 0; self->it < CHAIN_ITERS; self->it++) {
		done_init(&self->done);
		int rc = EDO_SPAWN(NULL, chain_task, .n = CHAIN_DEPTH, .done = &self->done);
		if (rc < 0)
			die("spawn", rc);
		EDO_AWAIT_POLL(done_poll(&self->done, cx));
	}
	self->ns = (now_ns() - self->t0) / ((double)CHAIN_ITERS * CHAIN_DEPTH);
	EDO_END();
}

static double bench_chained_spawn(edo_runtime *rt)
{
	chained_frame f = {EDO_FRAME_INIT(chained_spawn_task)};
	run_in_task(rt, &f.edo_base, sizeof f);
	return f.ns;
}

BENCH_WORKLOAD(spawn_many, bench_spawn_many, "ns/op")
BENCH_WORKLOAD(spawn_remote, bench_spawn_remote, "ns/op")
BENCH_WORKLOAD(yield_many, bench_yield_many, "ns/op")
BENCH_WORKLOAD(chained_spawn, bench_chained_spawn, "ns/op")

/* ---- idle_tasks: 1,000,000 tasks parked on a oneshot receive; RSS per task ---- */

#define IDLE_TASKS 1000000

static atomic_long idle_parked, idle_finished;

typedef struct idle_frame {
	EDO_FRAME;
	edo_oneshot_rx *rx;
	int rc;
	char unit;
} idle_frame;

static void idle_cleanup(idle_frame *self)
{
	edo_oneshot_rx_drop(self->rx);
}

EDO_ASYNC(idle_task, idle_frame, idle_cleanup)
{
	EDO_BEGIN();
	atomic_fetch_add_explicit(&idle_parked, 1, memory_order_relaxed);
	EDO_AWAIT_POLL(edo_oneshot_poll_recv(self->rx, cx, &self->unit, &self->rc));
	if (self->rc != 0)
		die("oneshot recv", self->rc);
	atomic_fetch_add_explicit(&idle_finished, 1, memory_order_relaxed);
	EDO_END();
}

typedef struct idle_main_frame {
	EDO_FRAME;
	edo_oneshot_tx **senders;
	double base, per_task;
	long i;
} idle_main_frame;

EDO_ASYNC(idle_main, idle_main_frame, NULL)
{
	EDO_BEGIN();
	self->senders = malloc(sizeof(edo_oneshot_tx *) * IDLE_TASKS);
	if (!self->senders)
		die("malloc", -ENOMEM);
	for (self->i = 0; self->i < IDLE_TASKS; self->i++) {
		edo_oneshot_rx *rx;
		int rc = edo_oneshot_new(1, &self->senders[self->i], &rx);
		if (rc < 0)
			die("oneshot", rc);
		rc = EDO_SPAWN(NULL, idle_task, .rx = rx);
		if (rc < 0)
			die("spawn", rc);
	}
	while (atomic_load_explicit(&idle_parked, memory_order_relaxed) < IDLE_TASKS)
		EDO_YIELD();
	self->per_task = (bench_peak_rss_bytes() - self->base) / IDLE_TASKS;
	for (self->i = 0; self->i < IDLE_TASKS; self->i++) {
		char unit = 0;
		int rc = edo_oneshot_send(self->senders[self->i], &unit);
		if (rc < 0)
			die("oneshot send", rc);
	}
	free(self->senders);
	while (atomic_load_explicit(&idle_finished, memory_order_relaxed) < IDLE_TASKS)
		EDO_YIELD();
	EDO_END();
}

static double bench_idle_tasks(edo_runtime *rt)
{
	idle_main_frame f = {EDO_FRAME_INIT(idle_main), .base = bench_rss_bytes()};
	run_in_task(rt, &f.edo_base, sizeof f);
	return f.per_task;
}

BENCH_WORKLOAD(idle_tasks, bench_idle_tasks, "bytes")
