/* Task dumps, the stall detector, the dump signal and the console socket
 * (edo/trace.h):
 *   - a dump of tasks parked in known places names those places (file:line),
 *     nested coroutines, fibers and their operations, states;
 *   - dumping while tasks are woken and aborted loses no wake-up and no abort
 *     (the dump holds idle tasks as a poller would);
 *   - the stall detector reports a task that calls usleep(200000), once, with
 *     its name and spawn site, and stays quiet for healthy tasks and for
 *     edo_block_in_place;
 *   - the dump signal writes the dump to stderr from a runtime thread;
 *   - the console socket is 0600 and answers "snap".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* A gate one task waits on and any thread opens. */
typedef struct gate {
	pthread_mutex_t lock;
	bool open;
	edo_waker w;
} gate;

static void gate_init(gate *g)
{
	pthread_mutex_init(&g->lock, NULL);
	g->open = false;
	g->w = (edo_waker){0};
}

static edo_poll gate_poll(gate *g, edo_cx *cx)
{
	pthread_mutex_lock(&g->lock);
	bool open = g->open;
	if (!open)
		edo_waker_set(&g->w, cx->waker);
	pthread_mutex_unlock(&g->lock);
	return open ? EDO_READY : EDO_PENDING;
}

static void gate_open(gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	edo_waker w = edo_waker_take(&g->w);
	pthread_mutex_unlock(&g->lock);
	edo_waker_wake(w);
}

static void gate_destroy(gate *g)
{
	edo_waker_drop(edo_waker_take(&g->w));
	pthread_mutex_destroy(&g->lock);
}

/* Park at the line of this macro; records that line in @line_var. */
#define PARK_HERE(line_var, expr)                                                                  \
	do {                                                                                       \
		line_var = __LINE__;                                                               \
		EDO_AWAIT_POLL(expr);                                                              \
	} while (0)

/* Spawn, recording the line of the spawn in @line_var. */
#define SPAWN_AT(line_var, ...) (line_var = __LINE__, EDO_SPAWN(__VA_ARGS__))
#define FIBER_SPAWN_AT(line_var, ...) (line_var = __LINE__, edo_fiber_spawn(__VA_ARGS__))

static const edo_fiber_opts sleeper_opts = {.name = "sleeper-fiber"};

static const edo_task_info *find(const edo_task_info *v, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].id == id)
			return &v[i];
	TEST_FAIL_AT("task %" PRIu64 " is not in the dump", id);
	return NULL;
}

/* Read a whole file (a captured stderr). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return strdup("");
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	fclose(m);
	return buf;
}

/* stderr goes to a file from here on; returns its path (static). */
static const char *capture_stderr(void)
{
	static char path[64];
	(void)snprintf(path, sizeof path, "/tmp/edo-test-dump-%d.err", (int)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	fflush(stderr);
	CHECK(dup2(fd, 2) == 2);
	close(fd);
	return path;
}

static void restore_stderr(int saved)
{
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
}

/* ---- the parked places ---------------------------------------------------------------- */

static int line_a, line_child, line_parent, line_fiber_coro;
static gate g_a, g_child, g_fiber_coro, g_future;

typedef struct park_a_frame {
	EDO_FRAME;
} park_a_frame;

EDO_ASYNC(park_a, park_a_frame, NULL)
{
	EDO_BEGIN();
	PARK_HERE(line_a, gate_poll(&g_a, cx));
	EDO_END();
}

typedef struct child_frame {
	EDO_FRAME;
	gate *g;
	int *line;
} child_frame;

EDO_ASYNC(child, child_frame, NULL)
{
	EDO_BEGIN();
	PARK_HERE(*self->line, gate_poll(self->g, cx));
	EDO_END();
}

typedef struct parent_frame {
	EDO_FRAME;
	child_frame kid;
} parent_frame;

EDO_ASYNC(parent, parent_frame, NULL)
{
	EDO_BEGIN();
	self->kid = (child_frame){EDO_FRAME_INIT(child), .g = &g_child, .line = &line_child};
	line_parent = __LINE__ + 1;
	EDO_AWAIT(&self->kid);
	EDO_END();
}

static void *sleeping_fiber(void *arg)
{
	(void)arg;
	int rc = edo_fiber_sleep(EDO_SEC(3600));
	return (void *)(intptr_t)rc;
}

static void *fiber_awaiting_coroutine(void *arg)
{
	(void)arg;
	child_frame c = {EDO_FRAME_INIT(child), .g = &g_fiber_coro, .line = &line_fiber_coro};
	int rc = edo_fiber_await(&c.edo_base);
	return (void *)(intptr_t)rc;
}

/* A hand-written future without info: an anonymous one in dumps. */
typedef struct plain {
	edo_future base;
} plain;

static edo_poll plain_poll(edo_future *f, edo_cx *cx)
{
	(void)f;
	return gate_poll(&g_future, cx);
}

static const edo_future_vtable plain_vt = {.poll = plain_poll};

typedef struct quick_frame {
	EDO_FRAME;
} quick_frame;

EDO_ASYNC(quick, quick_frame, NULL)
{
	EDO_BEGIN();
	EDO_END();
}

/* Runs inside a task: dumps the runtime, in which it is "running". */
typedef struct inner_dump_frame {
	EDO_FRAME;
	edo_runtime *rt;
	edo_task_info *v;
	size_t n;
} inner_dump_frame;

EDO_ASYNC(inner_dump, inner_dump_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_runtime_tasks(self->rt, &self->v, &self->n), 0);
	EDO_END();
}

typedef struct dump_main_frame {
	EDO_FRAME;
	edo_runtime *rt;
	edo_join *a, *p, *fs, *fc, *pl, *late, *inner;
	int spawn_a_line, spawn_fs_line;
	int i, rc;
	edo_yield_now y;
} dump_main_frame;

static void check_parked(dump_main_frame *self, const edo_task_info *v, size_t n)
{
	const edo_task_info *t = find(v, n, edo_join_id(self->a));
	CHECK_STREQ(t->name, "park_a");
	CHECK_EQ(t->state, EDO_TASK_IDLE);
	CHECK_EQ(t->kind, EDO_TASK_COROUTINE);
	CHECK_STREQ(t->spawn_file, __FILE__);
	CHECK_EQ(t->spawn_line, self->spawn_a_line);
	CHECK_EQ(t->polls, 1u);
	CHECK_GE(t->idle_ms, 0);
	CHECK_EQ(t->nframes, 1u);
	CHECK_STREQ(t->frames[0].fn, "park_a");
	CHECK_STREQ(t->frames[0].file, __FILE__);
	CHECK_EQ(t->frames[0].line, line_a);

	t = find(v, n, edo_join_id(self->p));
	CHECK_EQ(t->kind, EDO_TASK_COROUTINE);
	CHECK_EQ(t->nframes, 2u);
	CHECK_STREQ(t->frames[0].fn, "parent");
	CHECK_EQ(t->frames[0].line, line_parent);
	CHECK_STREQ(t->frames[1].fn, "child");
	CHECK_STREQ(t->frames[1].file, __FILE__);
	CHECK_EQ(t->frames[1].line, line_child);

	t = find(v, n, edo_join_id(self->fs));
	CHECK_STREQ(t->name, "sleeper-fiber");
	CHECK_EQ(t->kind, EDO_TASK_FIBER);
	CHECK_STREQ(t->spawn_file, __FILE__); /* edo_fiber_spawn records its call site */
	CHECK_EQ(t->spawn_line, self->spawn_fs_line);
	CHECK_GE(t->nframes, 1u);
	CHECK_STREQ(t->frames[0].fn, "edo_fiber_sleep");

	t = find(v, n, edo_join_id(self->fc));
	CHECK_EQ(t->kind, EDO_TASK_FIBER);
	CHECK(t->spawn_file == NULL); /* (edo_fiber_spawn)(...), the function: no site */
	CHECK_EQ(t->nframes, 2u);
	CHECK_STREQ(t->frames[0].fn, "edo_fiber_await");
	CHECK_STREQ(t->frames[1].fn, "child");
	CHECK_EQ(t->frames[1].line, line_fiber_coro);

	t = find(v, n, edo_join_id(self->pl));
	CHECK_EQ(t->kind, EDO_TASK_FUTURE);
	CHECK_EQ(t->state, EDO_TASK_IDLE);
	CHECK_EQ(t->nframes, 0u);
	CHECK(t->spawn_file == NULL);
	CHECK_STREQ(t->name, "");
}

EDO_ASYNC(dump_main, dump_main_frame, NULL)
{
	EDO_BEGIN();
	self->rc = SPAWN_AT(self->spawn_a_line, &self->a, park_a);
	CHECK_EQ(self->rc, 0);
	CHECK_EQ(EDO_SPAWN(&self->p, parent), 0);
	self->rc =
		FIBER_SPAWN_AT(self->spawn_fs_line, sleeping_fiber, NULL, &sleeper_opts, &self->fs);
	CHECK_EQ(self->rc, 0);
	CHECK_EQ((edo_fiber_spawn)(fiber_awaiting_coroutine, NULL, NULL, &self->fc), 0);
	{
		plain pl = {.base = {&plain_vt}};
		CHECK_EQ(edo_spawn(&pl.base, sizeof pl, &self->pl), 0);
	}
	/* Let them all run to their parking places. */
	for (self->i = 0; self->i < 4; self->i++) {
		self->y = (edo_yield_now)EDO_YIELD_NOW_INIT;
		EDO_AWAIT(&self->y);
	}
	{
		edo_task_info *v;
		size_t n;
		/* One more, spawned just now: queued, not yet run. */
		CHECK_EQ(EDO_SPAWN(&self->late, quick), 0);
		CHECK_EQ(edo_runtime_tasks(self->rt, &v, &n), 0);
		CHECK_EQ(n, (size_t)6);
		check_parked(self, v, n);
		const edo_task_info *t = find(v, n, edo_join_id(self->late));
		CHECK_EQ(t->state, EDO_TASK_SCHEDULED);
		CHECK_EQ(t->polls, 0u);
		CHECK_EQ(t->idle_ms, -1);
		CHECK_EQ(t->kind, EDO_TASK_KIND_UNKNOWN);
		free(v);

		/* The text form names the same places. */
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		CHECK_EQ(edo_runtime_dump(self->rt, f), 6);
		fclose(f);
		fputs(text, stdout);
		char want[512];
		(void)snprintf(want, sizeof want, "parked at %s:%d in park_a", __FILE__, line_a);
		CHECK(strstr(text, want) != NULL);
		(void)snprintf(want, sizeof want, "spawned at %s:%d", __FILE__, self->spawn_a_line);
		CHECK(strstr(text, want) != NULL);
		(void)snprintf(want, sizeof want, "spawned at %s:%d\n    parked in edo_fiber_sleep",
			       __FILE__, self->spawn_fs_line);
		CHECK(strstr(text, want) != NULL);
		(void)snprintf(want, sizeof want, "  awaiting at %s:%d in child", __FILE__,
			       line_child);
		CHECK(strstr(text, want) != NULL);
		CHECK(strstr(text, "parked in edo_fiber_sleep") != NULL);
		CHECK(strstr(text, "\"sleeper-fiber\" idle") != NULL);
		CHECK(strstr(text,
			     "current-thread runtime, 1 worker, 6 tasks (5 idle, 1 scheduled, "
			     "0 running)") != NULL);
		free(text);
	}
	/* From inside a task, the task itself is running. */
	CHECK_EQ(EDO_SPAWN(&self->inner, inner_dump, .rt = self->rt), 0);
	EDO_AWAIT_JOIN(self->inner, &self->rc);
	{
		inner_dump_frame *d = EDO_JOIN_OUTPUT(self->inner, inner_dump);
		const edo_task_info *t = find(d->v, d->n, edo_join_id(self->inner));
		CHECK_EQ(t->state, EDO_TASK_RUNNING);
		CHECK_EQ(t->nframes, 0u);
		free(d->v);
		edo_join_detach(self->inner);
	}
	/* Wake everything; all finish. */
	gate_open(&g_a);
	gate_open(&g_child);
	gate_open(&g_fiber_coro);
	gate_open(&g_future);
	edo_join_abort(self->fs);
	EDO_AWAIT_JOIN(self->a, &self->rc);
	CHECK_EQ(self->rc, 0);
	EDO_AWAIT_JOIN(self->late, &self->rc);
	CHECK_EQ(self->rc, 0);
	EDO_AWAIT_JOIN(self->p, &self->rc);
	CHECK_EQ(self->rc, 0);
	EDO_AWAIT_JOIN(self->fc, &self->rc);
	CHECK_EQ(self->rc, 0);
	EDO_AWAIT_JOIN(self->pl, &self->rc);
	CHECK_EQ(self->rc, 0);
	EDO_AWAIT_JOIN(self->fs, &self->rc);
	CHECK_EQ(self->rc, -ECANCELED);
	edo_join_detach(self->a);
	edo_join_detach(self->late);
	edo_join_detach(self->p);
	edo_join_detach(self->fc);
	edo_join_detach(self->pl);
	edo_join_detach(self->fs);
	EDO_END();
}

static void run_dump_main(edo_runtime *rt)
{
	gate_init(&g_a);
	gate_init(&g_child);
	gate_init(&g_fiber_coro);
	gate_init(&g_future);
	dump_main_frame f = {EDO_FRAME_INIT(dump_main), .rt = rt};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	edo_task_info *v;
	size_t n;
	CHECK_EQ(edo_runtime_tasks(rt, &v, &n), 0);
	CHECK_EQ(n, (size_t)0);
	CHECK(v == NULL);
	gate_destroy(&g_a);
	gate_destroy(&g_child);
	gate_destroy(&g_fiber_coro);
	gate_destroy(&g_future);
}

TEST(dump_names_parked_places)
{
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	run_dump_main(rt);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* The same on the multi-thread runtime, where the dump runs beside the
 * workers, from the thread in block_on. */
TEST(dump_multi_thread)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_MULTI_THREAD);
	b.worker_threads = 2;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	edo_handle *h = edo_runtime_handle(rt);
	gate_init(&g_a);
	edo_join *j;
	int spawn_line = __LINE__ + 1;
	CHECK_EQ(EDO_SPAWN_ON(h, &j, park_a), 0);
	edo_task_info *v = NULL;
	size_t n = 0;
	/* Wait until it has parked (a scheduled or running task has no frames). */
	double dl = test_now_s() + 30;
	for (;;) {
		CHECK_EQ(edo_runtime_tasks(rt, &v, &n), 0);
		CHECK_EQ(n, (size_t)1);
		if (v[0].state == EDO_TASK_IDLE && v[0].polls == 1)
			break;
		free(v);
		CHECK(test_now_s() < dl);
		test_sleep_ms(1);
	}
	CHECK_EQ(v[0].spawn_line, spawn_line);
	CHECK_EQ(v[0].nframes, 1u);
	CHECK_EQ(v[0].frames[0].line, line_a);
	free(v);
	gate_open(&g_a);
	WAIT_UNTIL(edo_join_is_finished(j), 30);
	edo_join_detach(j);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
	gate_destroy(&g_a);
}

/* ---- dumping while tasks are woken and aborted ----------------------------------------------- */

static atomic_int dumper_stop;

static void *dumper(void *arg)
{
	edo_runtime *rt = arg;
	FILE *null = fopen("/dev/null", "w");
	long dumps = 0;
	while (!atomic_load(&dumper_stop)) {
		edo_task_info *v;
		size_t n;
		CHECK_EQ(edo_runtime_tasks(rt, &v, &n), 0);
		free(v);
		CHECK_GE(edo_runtime_dump(rt, null), 0);
		dumps++;
	}
	fclose(null);
	return (void *)dumps;
}

typedef struct waiter_frame {
	EDO_FRAME;
	gate *g;
	int rounds;
	int i;
} waiter_frame;

EDO_ASYNC(waiter, waiter_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_POLL(gate_poll(self->g, cx));
	for (self->i = 0; self->i < self->rounds; self->i++)
		EDO_YIELD();
	EDO_END();
}

static void dump_stress(edo_runtime *rt)
{
	edo_handle *h = edo_runtime_handle(rt);
	pthread_t th[2];
	atomic_store(&dumper_stop, 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, dumper, rt), 0);
	const int rounds = (int)test_scale(40), n = 64;
	gate *gates = calloc(n, sizeof *gates);
	edo_join **j = calloc(n, sizeof *j);
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < n; i++) {
			gate_init(&gates[i]);
			CHECK_EQ(EDO_SPAWN_ON(h, &j[i], waiter, .g = &gates[i], .rounds = 3), 0);
		}
		test_sleep_ms(1);
		/* Wake most; abort every eighth instead. */
		for (int i = 0; i < n; i++) {
			if (i % 8 == 0)
				edo_join_abort(j[i]);
			else
				gate_open(&gates[i]);
		}
		/* A lost wake-up or abort would hang here. */
		for (int i = 0; i < n; i++) {
			WAIT_UNTIL(edo_join_is_finished(j[i]), 60);
			int rc = 0;
			edo_cx cx = {edo_noop_waker()};
			CHECK_EQ(edo_join_poll(j[i], &cx, &rc), EDO_READY);
			CHECK_EQ(rc, i % 8 == 0 ? -ECANCELED : 0);
			edo_join_detach(j[i]);
			gate_destroy(&gates[i]);
		}
	}
	atomic_store(&dumper_stop, 1);
	long dumps = 0;
	for (int i = 0; i < 2; i++) {
		void *d;
		pthread_join(th[i], &d);
		dumps += (long)d;
	}
	printf("  %d rounds of %d tasks, %ld dumps beside them\n", rounds, n, dumps);
	CHECK_GT(dumps, 0);
	free(gates);
	free(j);
	edo_handle_drop(h);
}

TEST(dump_beside_wakes_and_aborts_multi_thread)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_MULTI_THREAD);
	b.worker_threads = 2;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	dump_stress(rt);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* A current-thread runtime driven by a thread in block_on while others dump. */
static atomic_int drive_stop;

typedef struct drive_frame {
	EDO_FRAME;
	edo_sleep nap;
} drive_frame;

EDO_ASYNC(drive, drive_frame, NULL)
{
	EDO_BEGIN();
	while (!atomic_load(&drive_stop)) {
		edo_sleep_init(&self->nap, EDO_MS(1));
		EDO_AWAIT(&self->nap);
	}
	EDO_END();
}

static void *driver_thread(void *arg)
{
	drive_frame f = {EDO_FRAME_INIT(drive)};
	CHECK_EQ(edo_block_on(arg, &f.edo_base), 0);
	return NULL;
}

TEST(dump_beside_wakes_and_aborts_current_thread)
{
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, driver_thread, rt), 0);
	dump_stress(rt);
	atomic_store(&drive_stop, 1);
	pthread_join(th, NULL);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* ---- timing in dumps ------------------------------------------------------------------------- */

typedef struct busy_park_frame {
	EDO_FRAME;
	int i;
} busy_park_frame;

EDO_ASYNC(busy_park, busy_park_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < 3; self->i++) {
		test_spin_ms(4);
		EDO_YIELD();
	}
	PARK_HERE(line_a, gate_poll(&g_a, cx));
	EDO_END();
}

/* A dump during shutdown (from a task's cleanup, run by the shutdown sweep)
 * is refused: a task the dump held would look running to the sweep, and
 * the dump would then queue it where nothing runs any more. */
static edo_runtime *sd_rt;
static atomic_int sd_rc = 1;

typedef struct sd_frame {
	EDO_FRAME;
	int unused;
} sd_frame;

static void sd_cleanup(sd_frame *self)
{
	(void)self;
	edo_task_info *v = NULL;
	size_t n = 0;
	atomic_store(&sd_rc, edo_runtime_tasks(sd_rt, &v, &n));
	free(v);
}

EDO_ASYNC(sd_forever, sd_frame, sd_cleanup)
{
	EDO_BEGIN();
	EDO_AWAIT_POLL(EDO_PENDING);
	EDO_END();
}

EDO_ASYNC(sd_main, sd_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(NULL, sd_forever), 0);
	EDO_YIELD();
	EDO_END();
}

TEST(dump_refused_once_shutdown_began)
{
	for (int mt = 0; mt < 2; mt++) {
		edo_runtime_builder b;
		edo_runtime_builder_init(&b, mt ? EDO_RT_MULTI_THREAD : EDO_RT_CURRENT_THREAD);
		b.worker_threads = 2;
		CHECK_EQ(edo_runtime_build(&b, &sd_rt), 0);
		sd_frame f = {EDO_FRAME_INIT(sd_main)};
		CHECK_EQ(edo_block_on(sd_rt, &f.edo_base), 0);
		atomic_store(&sd_rc, 1);
		CHECK_EQ(edo_runtime_free(sd_rt), 0);
		CHECK_EQ(atomic_load(&sd_rc), EDO_ESHUTDOWN);
	}
}

TEST(dump_with_poll_timing)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_MULTI_THREAD);
	b.worker_threads = 1;
	b.poll_time_histogram = true;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	edo_handle *h = edo_runtime_handle(rt);
	gate_init(&g_a);
	edo_join *j;
	CHECK_EQ(EDO_SPAWN_ON(h, &j, busy_park), 0);
	edo_task_info *v = NULL;
	size_t n = 0;
	double dl = test_now_s() + 30;
	for (;;) {
		CHECK_EQ(edo_runtime_tasks(rt, &v, &n), 0);
		CHECK_EQ(n, (size_t)1);
		if (v[0].state == EDO_TASK_IDLE && v[0].polls == 4)
			break;
		free(v);
		CHECK(test_now_s() < dl);
		test_sleep_ms(1);
	}
	/* Three polls of 4 ms: the task's busy time says so. */
	CHECK_GE(v[0].busy_ns, 12u * 1000000u);
	CHECK_LT(v[0].busy_ns, 10000u * 1000000u);
	CHECK_EQ(v[0].frames[0].line, line_a);
	free(v);
	test_sleep_ms(50);
	CHECK_EQ(edo_runtime_tasks(rt, &v, &n), 0);
	CHECK_GE(v[0].idle_ms, 40);
	free(v);
	gate_open(&g_a);
	WAIT_UNTIL(edo_join_is_finished(j), 30);
	edo_join_detach(j);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
	gate_destroy(&g_a);
}

/* ---- the stall detector ------------------------------------------------------------------------ */

static pthread_mutex_t stall_lock = PTHREAD_MUTEX_INITIALIZER;
static edo_stall_info stalls[16];
static int nstalls;

static void on_stall(void *ud, const edo_stall_info *st)
{
	CHECK_EQ((uintptr_t)ud, (uintptr_t)0x5ea1);
	pthread_mutex_lock(&stall_lock);
	if (nstalls < 16)
		stalls[nstalls] = *st;
	nstalls++;
	pthread_mutex_unlock(&stall_lock);
}

static int stall_count(void)
{
	pthread_mutex_lock(&stall_lock);
	int n = nstalls;
	pthread_mutex_unlock(&stall_lock);
	return n;
}

typedef struct blocker_frame {
	EDO_FRAME;
	useconds_t us;
} blocker_frame;

EDO_ASYNC(blocker, blocker_frame, NULL)
{
	EDO_BEGIN();
	usleep(self->us); /* a blocking call inside a task */
	EDO_END();
}

/* Healthy: 300 polls of 1 ms, far longer than the threshold in all. */
typedef struct healthy_frame {
	EDO_FRAME;
	int i;
} healthy_frame;

EDO_ASYNC(healthy, healthy_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < 300; self->i++) {
		test_spin_ms(1);
		EDO_YIELD();
	}
	EDO_END();
}

static void blocking_fn(void *arg)
{
	(void)arg;
	usleep(200000);
}

typedef struct in_place_frame {
	EDO_FRAME;
} in_place_frame;

EDO_ASYNC(in_place, in_place_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_block_in_place(blocking_fn, NULL), 0);
	EDO_END();
}

static edo_runtime *stall_runtime(edo_rt_flavor flavor, bool callback)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, flavor);
	b.worker_threads = 2;
	b.stall_detection = true; /* default threshold: 100 ms */
	if (callback) {
		b.on_stall = on_stall;
		b.stall_ud = (void *)0x5ea1;
	}
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	return rt;
}

typedef struct stall_main_frame {
	EDO_FRAME;
	useconds_t us;
	edo_join *h;
	int rc;
	int line;
} stall_main_frame;

EDO_ASYNC(stall_main, stall_main_frame, NULL)
{
	EDO_BEGIN();
	self->rc = SPAWN_AT(self->line, &self->h, blocker, .us = self->us);
	CHECK_EQ(self->rc, 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	edo_join_detach(self->h);
	EDO_END();
}

typedef struct healthy_main_frame {
	EDO_FRAME;
	edo_join *h[2];
	int rc;
} healthy_main_frame;

EDO_ASYNC(healthy_main, healthy_main_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->h[0], healthy), 0);
	CHECK_EQ(EDO_SPAWN(&self->h[1], healthy), 0);
	EDO_AWAIT_JOIN(self->h[0], &self->rc);
	EDO_AWAIT_JOIN(self->h[1], &self->rc);
	edo_join_detach(self->h[0]);
	edo_join_detach(self->h[1]);
	EDO_END();
}

/* Run a task whose poll blocks for @us until the stall detector reports it
 * (exactly once); the line the reported blocker was spawned at.  A stall is
 * seen only if the watchdog's thread gets a CPU while the poll blocks, which
 * an overloaded machine does not promise (this one runs under gVisor, where
 * a thread can wait 200 ms for a CPU): 5 tries. */
static int block_until_reported(edo_runtime *rt, useconds_t us)
{
	int before = stall_count();
	for (int attempt = 1; attempt <= 5; attempt++) {
		stall_main_frame sm = {EDO_FRAME_INIT(stall_main), .us = us};
		CHECK_EQ(edo_block_on(rt, &sm.edo_base), 0);
		/* The report is written just after the worker is let go. */
		test_sleep_ms(100);
		int n = stall_count();
		if (n > before) {
			CHECK_EQ(n, before + 1);
			if (attempt > 1)
				printf("  reported on try %d (the watchdog was kept off a CPU before)\n",
				       attempt);
			return sm.line;
		}
	}
	TEST_FAIL_AT("a poll blocked for %u ms 5 times was never reported", (unsigned)(us / 1000));
	return 0;
}

static void stall_case(edo_rt_flavor flavor)
{
	edo_runtime *rt = stall_runtime(flavor, true);
	double t0 = test_now_s();
	healthy_main_frame hm = {EDO_FRAME_INIT(healthy_main)};
	CHECK_EQ(edo_block_on(rt, &hm.edo_base), 0);
	printf("  healthy tasks ran %.0f ms in 1 ms polls\n", (test_now_s() - t0) * 1e3);
	CHECK_EQ(stall_count(), 0);

	/* Reported while it blocked, once. */
	int line = block_until_reported(rt, 200000);
	CHECK_EQ(stall_count(), 1);
	CHECK_STREQ(stalls[0].name, "blocker");
	CHECK_STREQ(stalls[0].spawn_file, __FILE__);
	CHECK_EQ(stalls[0].spawn_line, line);
	CHECK_GE(stalls[0].elapsed_ms, 100u);
	CHECK_LT(stalls[0].elapsed_ms, 1000u); /* a lower bound of the 200 ms */
	CHECK_NE(stalls[0].task_id, 0u);
	edo_runtime_metrics m;
	CHECK_EQ(edo_runtime_metrics_get(rt, &m), 0);
	CHECK_EQ(m.stalls, 1u);
	edo_stall_info log[4];
	CHECK_EQ(edo_runtime_stalls(rt, log, 4), 1);
	CHECK_EQ(log[0].task_id, stalls[0].task_id);
	/* A poll that blocks for several thresholds is still reported once. */
	(void)block_until_reported(rt, 450000);
	CHECK_EQ(stall_count(), 2);
	CHECK_EQ(edo_runtime_stalls(rt, log, 4), 2);
	CHECK_EQ(log[1].task_id, stalls[1].task_id);
	CHECK_NE(log[1].task_id, log[0].task_id);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(stall_detector_multi_thread)
{
	stall_case(EDO_RT_MULTI_THREAD);
}

TEST(stall_detector_current_thread)
{
	stall_case(EDO_RT_CURRENT_THREAD);
}

/* Where membarrier(2) is missing, the handshake uses seq_cst accesses. */
TEST(stall_detector_without_membarrier)
{
	CHECK_EQ(setenv("EDO_TRACE_NO_MEMBARRIER", "1", 1), 0); /* this child only */
	stall_case(EDO_RT_MULTI_THREAD);
}

TEST(stall_detector_ignores_block_in_place)
{
	edo_runtime *rt = stall_runtime(EDO_RT_MULTI_THREAD, true);
	edo_join *h;
	edo_handle *hd = edo_runtime_handle(rt);
	CHECK_EQ(EDO_SPAWN_ON(hd, &h, in_place), 0);
	WAIT_UNTIL(edo_join_is_finished(h), 30);
	edo_join_detach(h);
	test_sleep_ms(60);
	CHECK_EQ(stall_count(), 0);
	edo_handle_drop(hd);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(stall_detector_default_report_on_stderr)
{
	int saved = dup(2);
	const char *path = capture_stderr();
	edo_runtime *rt = stall_runtime(EDO_RT_MULTI_THREAD, false);
	/* As block_until_reported(), through the metrics (no callback here). */
	int line = 0;
	edo_runtime_metrics m = {0};
	for (int attempt = 1; attempt <= 5 && m.stalls == 0; attempt++) {
		stall_main_frame sm = {EDO_FRAME_INIT(stall_main), .us = 200000};
		CHECK_EQ(edo_block_on(rt, &sm.edo_base), 0);
		test_sleep_ms(100);
		CHECK_EQ(edo_runtime_metrics_get(rt, &m), 0);
		line = sm.line;
	}
	CHECK_EQ(m.stalls, 1u);
	CHECK_EQ(edo_runtime_free(rt), 0);
	restore_stderr(saved);
	char *err = slurp(path);
	unlink(path);
	fputs(err, stdout);
	char want[512];
	(void)snprintf(want, sizeof want, "\"blocker\" (spawned at %s:%d) has been in one poll for",
		       __FILE__, line);
	CHECK(strstr(err, "edo: stall: task") != NULL);
	CHECK(strstr(err, want) != NULL);
	CHECK(strstr(strstr(err, want) + 1, "edo: stall") == NULL); /* once */
	free(err);
}

/* ---- the dump signal ---------------------------------------------------------------------- */

TEST(dump_signal_writes_stderr)
{
	int saved = dup(2);
	const char *path = capture_stderr();
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_MULTI_THREAD);
	b.worker_threads = 2;
	b.dump_signal = SIGQUIT;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	edo_handle *h = edo_runtime_handle(rt);
	gate_init(&g_a);
	edo_join *j;
	CHECK_EQ(EDO_SPAWN_ON(h, &j, park_a), 0);
	/* Parked once a dump finds it idle (and then line_a is ours to read:
	 * the dump took the task after its poll). */
	for (double dl = test_now_s() + 30;; test_sleep_ms(1)) {
		edo_task_info *v;
		size_t n;
		CHECK_EQ(edo_runtime_tasks(rt, &v, &n), 0);
		bool parked = n == 1 && v[0].state == EDO_TASK_IDLE && v[0].polls == 1;
		free(v);
		if (parked)
			break;
		CHECK(test_now_s() < dl);
	}
	char want[512];
	(void)snprintf(want, sizeof want, "parked at %s:%d in park_a", __FILE__, line_a);
	char *err = NULL;
	double dl = test_now_s() + 30;
	for (;;) {
		CHECK_EQ(raise(SIGQUIT), 0); /* the process survives: the runtime handles it */
		test_sleep_ms(50);
		fflush(stderr);
		free(err);
		err = slurp(path);
		if (strstr(err, want))
			break;
		CHECK(test_now_s() < dl);
	}
	gate_open(&g_a);
	WAIT_UNTIL(edo_join_is_finished(j), 30);
	edo_join_detach(j);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
	restore_stderr(saved);
	unlink(path);
	fputs(err, stdout);
	CHECK(strstr(err, "edo task dump: multi-thread runtime, 2 workers") != NULL);
	free(err);
	gate_destroy(&g_a);
	/* The handler is gone with the runtime: SIGQUIT is back to its default. */
	struct sigaction sa;
	CHECK_EQ(sigaction(SIGQUIT, NULL, &sa), 0);
	CHECK(sa.sa_handler == SIG_DFL);
}

/* ---- the console socket --------------------------------------------------------------------- */

static char *console_snap(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	(void)snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	CHECK_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	CHECK_EQ(write(fd, "snap\n", 5), 5);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		CHECK_GT(n, 0);
		len += (size_t)n;
		buf[len] = 0;
		if (len >= 4 && strcmp(buf + len - 4, "end\n") == 0)
			break;
	}
	close(fd);
	return buf;
}

TEST(console_socket)
{
	char dir[] = "/tmp/edo-console-test-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[96];
	(void)snprintf(path, sizeof path, "%s/c.sock", dir);
	/* Something that is not a socket is never replaced. */
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	close(fd);
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.console_path = path;
	b.poll_time_histogram = true;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), -EEXIST);
	unlink(path);
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	struct stat st;
	CHECK_EQ(lstat(path, &st), 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(st.st_mode & 0777, 0600u);

	edo_handle *h = edo_runtime_handle(rt);
	gate_init(&g_a);
	edo_join *j;
	CHECK_EQ(EDO_SPAWN_ON(h, &j, park_a), 0);
	/* Run it to its parking place: block_on a yield. */
	edo_yield_now y = EDO_YIELD_NOW_INIT;
	CHECK_EQ(edo_block_on(rt, &y.base), 0);
	char *snap = console_snap(path);
	fputs(snap, stdout);
	CHECK(strncmp(snap, "edo 1\nrt flavor=current workers=1 ", 34) == 0);
	CHECK(strstr(snap, "\nw i=0 polls=1 ") != NULL);
	char want[512];
	(void)snprintf(want, sizeof want, "state=idle kind=coroutine polls=1 ");
	CHECK(strstr(snap, want) != NULL);
	(void)snprintf(want, sizeof want, " where=%s:%d fn=park_a name=park_a\n", __FILE__, line_a);
	CHECK(strstr(snap, want) != NULL);
	CHECK(strstr(snap, " timing=1 watch=0\n") != NULL);
	free(snap);
	/* Twice on one connection, and a second client: both answered. */
	snap = console_snap(path);
	free(snap);

	/* A stale socket from a runtime that died is replaced. */
	gate_open(&g_a);
	edo_yield_now y3 = EDO_YIELD_NOW_INIT;
	CHECK_EQ(edo_block_on(rt, &y3.base), 0);
	CHECK(edo_join_is_finished(j));
	edo_join_detach(j);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
	/* Gone with the runtime. */
	CHECK_NE(lstat(path, &st), 0);
	gate_destroy(&g_a);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	(void)snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	CHECK_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	close(s);
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	snap = console_snap(path);
	CHECK(strstr(snap, "alive=0 ") != NULL);
	free(snap);
	/* A second runtime on the same path replaces the socket; freeing the
	 * first then leaves the second's socket alone. */
	edo_runtime *rt2;
	CHECK_EQ(edo_runtime_build(&b, &rt2), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(lstat(path, &st), 0);
	snap = console_snap(path);
	CHECK(strstr(snap, "alive=0 ") != NULL);
	free(snap);
	CHECK_EQ(edo_runtime_free(rt2), 0);
	CHECK_NE(lstat(path, &st), 0);
	rmdir(dir);
}

TEST(builder_checks)
{
	edo_runtime_builder b;
	edo_runtime *rt = NULL;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	CHECK_EQ(b.stall_detection, false);
	CHECK_EQ(b.poll_time_histogram, false);
	CHECK(b.console_path == NULL);
	b.dump_signal = SIGKILL;
	CHECK_EQ(edo_runtime_build(&b, &rt), -EINVAL);
	b.dump_signal = SIGSEGV;
	CHECK_EQ(edo_runtime_build(&b, &rt), -EINVAL);
	b.dump_signal = 100000;
	CHECK_EQ(edo_runtime_build(&b, &rt), -EINVAL);
	b.dump_signal = 0;
	b.stall_threshold_ms = 4000000;
	CHECK_EQ(edo_runtime_build(&b, &rt), -EINVAL);
	b.stall_threshold_ms = 0;
	b.console_path = "";
	CHECK_EQ(edo_runtime_build(&b, &rt), -EINVAL);
	char longpath[200];
	memset(longpath, 'x', sizeof longpath - 1);
	longpath[sizeof longpath - 1] = 0;
	b.console_path = longpath;
	CHECK_EQ(edo_runtime_build(&b, &rt), -ENAMETOOLONG);
	b.console_path = "/nonexistent-dir-for-edo/c.sock";
	CHECK_LT(edo_runtime_build(&b, &rt), 0);
	CHECK(rt == NULL);
	CHECK_EQ(edo_runtime_tasks(NULL, NULL, NULL), -EINVAL);
	/* A task info with more frames than it can hold is refused. */
	edo_task_info bad;
	memset(&bad, 0, sizeof bad);
	memset(bad.name, 'n', sizeof bad.name); /* no terminating NUL either */
	bad.nframes = 1000;
	char text[256];
	CHECK_EQ(edo_task_info_format(&bad, text, sizeof text), -EINVAL);
	bad.nframes = 0;
	CHECK_GT(edo_task_info_format(&bad, text, sizeof text), 0);
	CHECK_EQ(edo_runtime_dump(NULL, stdout), -EINVAL);
	CHECK_EQ(edo_runtime_stalls(NULL, NULL, 0), -EINVAL);
}

TEST_MAIN()
