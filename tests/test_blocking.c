/* The blocking pool: spawn_blocking, results, mandatory tasks, shutdown. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"
#include "runtime/sched.h" /* the runtime's reference count */

static void *square(void *arg)
{
	long v = (long)arg;
	return (void *)(v * v);
}

static void *sleepy(void *arg)
{
	usleep(20000);
	atomic_fetch_add((atomic_int *)arg, 1);
	return NULL;
}

typedef struct bmain_frame {
	EDO_FRAME;
	edo_join *h[16];
	int i, rc;
	long sum;
} bmain_frame;

EDO_ASYNC(bmain, bmain_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < 16; self->i++)
		CHECK_EQ(edo_spawn_blocking(square, (void *)(long)self->i, &self->h[self->i]), 0);
	for (self->i = 0; self->i < 16; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		self->sum += (long)edo_join_blocking_result(self->h[self->i]);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

static void run_results(edo_rt_flavor flavor)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, flavor);
	b.worker_threads = 2;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	bmain_frame m = {EDO_FRAME_INIT(bmain)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	long want = 0;
	for (long i = 0; i < 16; i++)
		want += i * i;
	CHECK_EQ(m.sum, want);
	edo_runtime_metrics met;
	CHECK_EQ(edo_runtime_metrics_get(rt, &met), 0);
	CHECK_GE(met.blocking_threads, 1u);
	CHECK_LE(met.blocking_threads, 16u);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(results_current_thread)
{
	run_results(EDO_RT_CURRENT_THREAD);
}

TEST(results_multi_thread)
{
	run_results(EDO_RT_MULTI_THREAD);
}

TEST(bad_input)
{
	edo_join *h = NULL;
	CHECK_EQ(edo_spawn_blocking(square, NULL, &h), EDO_ENORUNTIME);
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	edo_handle *hd = edo_runtime_handle(rt);
	CHECK_EQ(edo_spawn_blocking_on(hd, NULL, NULL, 0, &h), -EINVAL);
	CHECK_EQ(edo_spawn_blocking_on(hd, square, NULL, 0x80, &h), -EINVAL);
	CHECK(h == NULL);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(edo_spawn_blocking_on(hd, square, NULL, 0, &h), EDO_ESHUTDOWN);
	edo_handle_drop(hd);
}

/* With one blocking thread busy, queued tasks are cancelled at shutdown,
 * except the mandatory one, which still runs. */
TEST(shutdown_cancels_queued_runs_mandatory)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.max_blocking_threads = 1;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	edo_handle *hd = edo_runtime_handle(rt);
	atomic_int ran = 0;
	edo_join *first, *queued, *mandatory;
	CHECK_EQ(edo_spawn_blocking_on(hd, sleepy, &ran, 0, &first), 0);
	CHECK_EQ(edo_spawn_blocking_on(hd, sleepy, &ran, 0, &queued), 0);
	CHECK_EQ(edo_spawn_blocking_on(hd, sleepy, &ran, EDO_BLOCKING_MANDATORY, &mandatory), 0);
	/* Wait until the only thread has picked up `first` (two left queued). */
	edo_runtime_metrics met;
	for (int i = 0; i < 10000; i++) {
		CHECK_EQ(edo_runtime_metrics_get(rt, &met), 0);
		if (met.blocking_queue_depth == 2)
			break;
		usleep(1000);
	}
	CHECK_EQ(met.blocking_queue_depth, (size_t)2);
	CHECK_EQ(edo_runtime_free(rt), 0);
	int rc;
	edo_cx cx = {edo_noop_waker()};
	CHECK_EQ(edo_join_poll(first, &cx, &rc), EDO_READY);
	CHECK_EQ(rc, 0);
	CHECK_EQ(edo_join_poll(queued, &cx, &rc), EDO_READY);
	CHECK_EQ(rc, -ECANCELED);
	CHECK_EQ(edo_join_poll(mandatory, &cx, &rc), EDO_READY);
	CHECK_EQ(rc, 0);
	CHECK_EQ(atomic_load(&ran), 2);
	edo_join_detach(first);
	edo_join_detach(queued);
	edo_join_detach(mandatory);
	edo_handle_drop(hd);
}

static void *long_sleep(void *arg)
{
	atomic_store((atomic_int *)arg, 1);
	usleep(300000);
	return NULL;
}

TEST(shutdown_timeout)
{
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	edo_handle *hd = edo_runtime_handle(rt);
	atomic_int started = 0;
	CHECK_EQ(edo_spawn_blocking_on(hd, long_sleep, &started, 0, NULL), 0);
	/* Wait until the job runs: one still queued at shutdown is dropped,
	 * and the shutdown would not time out (a loaded machine can take far
	 * more than a few milliseconds to start the thread). */
	while (!atomic_load(&started))
		usleep(1000);
	CHECK_EQ(edo_runtime_shutdown_timeout(rt, 10), -ETIMEDOUT);
	edo_handle_drop(hd);
	usleep(400000); /* the thread finishes and frees the pool */
}

/* Idle pool threads exit after blocking_keep_alive_ms, and a trickle of jobs
 * keeps only the thread it needs: a burst of 4 concurrent jobs starts 4
 * threads; then jobs run one at a time, each awaited before the next.  Each
 * goes to the thread that ran the one before (still finishing, or the last
 * to go idle), so the others wait untouched until their keep-alive ends.
 * (Woken in turn, every thread got a job every few hundred microseconds and
 * the pool stayed at 4.) */
#define KA_BURST 4

static size_t pool_threads(edo_runtime *rt);

typedef struct ka_burst {
	edo_runtime *rt;
	atomic_int started;
	atomic_size_t peak; /* pool threads while all 4 jobs ran */
} ka_burst;

static void *ka_burst_job(void *arg)
{
	ka_burst *kb = arg;
	atomic_fetch_add(&kb->started, 1);
	for (int i = 0; i < 20000 && atomic_load(&kb->started) < KA_BURST; i++)
		usleep(500);
	size_t n = pool_threads(kb->rt);
	if (n > atomic_load(&kb->peak))
		atomic_store(&kb->peak, n);
	return (void *)(long)atomic_load(&kb->started);
}

static size_t pool_threads(edo_runtime *rt)
{
	edo_runtime_metrics met;
	CHECK_EQ(edo_runtime_metrics_get(rt, &met), 0);
	return met.blocking_threads;
}

typedef struct ka_frame {
	EDO_FRAME;
	edo_runtime *rt;
	ka_burst kb;
	edo_join *h[KA_BURST];
	int i, rc;
	long jobs;
	size_t peak, fewest;
	double deadline;
} ka_frame;

EDO_ASYNC(ka_main, ka_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < KA_BURST; self->i++)
		CHECK_EQ(edo_spawn_blocking(ka_burst_job, &self->kb, &self->h[self->i]), 0);
	for (self->i = 0; self->i < KA_BURST; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		CHECK_EQ((long)edo_join_blocking_result(self->h[self->i]), KA_BURST);
		edo_join_detach(self->h[self->i]);
	}
	self->peak = atomic_load(&self->kb.peak);
	CHECK_EQ(self->peak, (size_t)KA_BURST);
	/* The trickle, until the one thread that serves it is all that is
	 * left. */
	self->fewest = self->peak;
	self->deadline = test_now_s() + 20;
	while (self->fewest > 1 && test_now_s() < self->deadline) {
		CHECK_EQ(edo_spawn_blocking(square, (void *)3L, &self->h[0]), 0);
		EDO_AWAIT_JOIN(self->h[0], &self->rc);
		CHECK_EQ(self->rc, 0);
		CHECK_EQ((long)edo_join_blocking_result(self->h[0]), 9);
		edo_join_detach(self->h[0]);
		self->jobs++;
		size_t n = pool_threads(self->rt);
		if (n < self->fewest)
			self->fewest = n;
	}
	EDO_END();
}

TEST(idle_threads_exit_after_keep_alive)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.blocking_keep_alive_ms = 100;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	ka_frame *m = calloc(1, sizeof *m);
	CHECK(m != NULL);
	*m = (ka_frame){EDO_FRAME_INIT(ka_main), .rt = rt, .kb = {.rt = rt}};
	CHECK_EQ(edo_block_on(rt, &m->edo_base), 0);
	printf("  %zu threads after the burst, %zu after %ld trickled jobs\n", m->peak, m->fewest,
	       m->jobs);
	CHECK_LE(m->fewest, 1u);
	/* With no jobs at all, every thread leaves. */
	WAIT_UNTIL(pool_threads(rt) == 0, 20);
	free(m);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* Threads outside the runtime spawn bursts of blocking jobs and wait for
 * them, while a 1 ms keep-alive makes idle threads time out (leave the idle
 * stack from anywhere in it) as jobs arrive and threads finish (and are
 * counted on to take the next job).  Every job runs exactly once. */
#define SP_SUBMITTERS 4

typedef struct sp_submitter {
	edo_runtime *rt;
	edo_handle *h;
	long jobs;
	atomic_long done;
	pthread_t th;
} sp_submitter;

static void *sp_job(void *arg)
{
	sp_submitter *s = arg;
	long n = atomic_fetch_add(&s->done, 1);
	if (n % 16 == 0)
		usleep((useconds_t)(n % 50));
	return NULL;
}

static void *sp_submit(void *arg)
{
	sp_submitter *s = arg;
	long sent = 0;
	while (sent < s->jobs) {
		long batch = 1 + sent % 8;
		if (batch > s->jobs - sent)
			batch = s->jobs - sent;
		for (long i = 0; i < batch; i++)
			CHECK_EQ(edo_spawn_blocking_on(s->h, sp_job, s, 0, NULL), 0);
		sent += batch;
		double deadline = test_now_s() + 60;
		while (atomic_load(&s->done) < sent) {
			if (test_now_s() > deadline) {
				edo_runtime_metrics met = {0};
				(void)edo_runtime_metrics_get(s->rt, &met);
				TEST_FAIL_AT("jobs lost: %ld of %ld done; pool: %zu threads, %zu "
					     "idle, %zu queued",
					     atomic_load(&s->done), sent, met.blocking_threads,
					     met.blocking_idle_threads, met.blocking_queue_depth);
			}
			usleep(20);
		}
	}
	return NULL;
}

TEST(pool_spawn_stress)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.blocking_keep_alive_ms = 1;
	b.max_blocking_threads = 6;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	sp_submitter subs[SP_SUBMITTERS];
	for (int i = 0; i < SP_SUBMITTERS; i++) {
		subs[i] = (sp_submitter){.rt = rt,
					 .h = edo_runtime_handle(rt),
					 .jobs = test_scale(20000)};
		atomic_init(&subs[i].done, 0);
		CHECK_EQ(pthread_create(&subs[i].th, NULL, sp_submit, &subs[i]), 0);
	}
	for (int i = 0; i < SP_SUBMITTERS; i++) {
		CHECK_EQ(pthread_join(subs[i].th, NULL), 0);
		CHECK_EQ(atomic_load(&subs[i].done), subs[i].jobs);
		edo_handle_drop(subs[i].h);
	}
	CHECK_LE(pool_threads(rt), 6u);
	printf("  %d x %ld jobs\n", SP_SUBMITTERS, subs[0].jobs);
	CHECK_EQ(edo_runtime_free(rt), 0);
	for (int i = 0; i < SP_SUBMITTERS; i++)
		CHECK_EQ(atomic_load(&subs[i].done), subs[i].jobs);
}

/* Shutdown while jobs are claimed.  Chains of blocking jobs, each spawned by
 * the task the previous one's completion woke: the new job mostly finds the
 * thread that ran the previous one still finishing and is left queued for
 * it (claimed).  The runtime is shut down at a random moment of that, many
 * times over.  Every mandatory job spawned runs exactly once, no job runs
 * twice, shutdown returns, and nothing leaks (ASan). */
#define SC_CHAINS 4

typedef struct sc_shared {
	atomic_long mand_spawned, mand_ran, plain_spawned, plain_ran;
} sc_shared;

static void *sc_mand_job(void *arg)
{
	atomic_fetch_add(&((sc_shared *)arg)->mand_ran, 1);
	return NULL;
}

static void *sc_plain_job(void *arg)
{
	atomic_fetch_add(&((sc_shared *)arg)->plain_ran, 1);
	return NULL;
}

typedef struct sc_chain_frame {
	EDO_FRAME;
	sc_shared *sh;
	edo_join *h;
	long i;
	int rc;
} sc_chain_frame;

static void sc_chain_cleanup(sc_chain_frame *self)
{
	if (self->h)
		edo_join_detach(self->h);
}

EDO_ASYNC(sc_chain, sc_chain_frame, sc_chain_cleanup)
{
	EDO_BEGIN();
	for (;; self->i++) {
		bool mand = self->i % 2 == 1;
		self->rc = edo_spawn_blocking_on(NULL, mand ? sc_mand_job : sc_plain_job, self->sh,
						 mand ? EDO_BLOCKING_MANDATORY : 0, &self->h);
		if (self->rc < 0) {
			CHECK_EQ(self->rc, EDO_ESHUTDOWN);
			EDO_RETURN();
		}
		atomic_fetch_add(mand ? &self->sh->mand_spawned : &self->sh->plain_spawned, 1);
		EDO_AWAIT_JOIN(self->h, &self->rc);
		CHECK_EQ(self->rc, 0); /* a task that is waiting is not cancelled */
		edo_join_detach(self->h);
		self->h = NULL;
	}
	EDO_END();
}

TEST(shutdown_while_jobs_are_claimed)
{
	long rounds = test_scale(300), mand_total = 0;
	unsigned seed = 12345;
	for (long r = 0; r < rounds; r++) {
		edo_runtime_builder b;
		edo_runtime_builder_init(&b, EDO_RT_MULTI_THREAD);
		b.worker_threads = 2;
		b.max_blocking_threads = 2; /* fewer threads than chains: jobs queue */
		edo_runtime *rt;
		CHECK_EQ(edo_runtime_build(&b, &rt), 0);
		edo_handle *hd = edo_runtime_handle(rt);
		sc_shared sh = {0};
		for (int c = 0; c < SC_CHAINS; c++)
			CHECK_EQ(EDO_SPAWN_ON(hd, NULL, sc_chain, .sh = &sh), 0);
		/* Let the chains run for 0-2 ms, then shut down in the middle. */
		WAIT_UNTIL(atomic_load(&sh.mand_ran) > 0, 60);
		test_sleep_ms((double)(rand_r(&seed) % 2000) / 1000);
		CHECK_EQ(edo_runtime_free(rt), 0);
		edo_handle_drop(hd);
		CHECK_EQ(atomic_load(&sh.mand_ran), atomic_load(&sh.mand_spawned));
		CHECK_LE(atomic_load(&sh.plain_ran), atomic_load(&sh.plain_spawned));
		CHECK_GE(atomic_load(&sh.plain_ran), atomic_load(&sh.plain_spawned) - SC_CHAINS);
		mand_total += atomic_load(&sh.mand_ran);
	}
	printf("  %ld rounds, %ld mandatory jobs\n", rounds, mand_total);
}

/* edo_block_in_place on a one-worker runtime: while the blocking function
 * waits for a flag, another task must still run (on the new worker thread)
 * and set it. */
typedef struct bip_ctx {
	atomic_int flag;
	atomic_int seen;
} bip_ctx;

static void wait_for_flag(void *arg)
{
	bip_ctx *c = arg;
	for (int i = 0; i < 5000 && !atomic_load(&c->flag); i++)
		usleep(1000);
	atomic_store(&c->seen, atomic_load(&c->flag));
}

typedef struct setter_frame {
	EDO_FRAME;
	bip_ctx *c;
} setter_frame;

EDO_ASYNC(setter, setter_frame, NULL)
{
	EDO_BEGIN();
	atomic_store(&self->c->flag, 1);
	EDO_END();
}

typedef struct bip_frame {
	EDO_FRAME;
	bip_ctx *c;
	edo_join *h;
	int rc;
} bip_frame;

EDO_ASYNC(bip_task, bip_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->h, setter, .c = self->c), 0);
	CHECK_EQ(edo_block_in_place(wait_for_flag, self->c), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->h);
	EDO_END();
}

typedef struct bip_main_frame {
	EDO_FRAME;
	bip_ctx *c;
	edo_join *h;
	int rc, i;
} bip_main_frame;

EDO_ASYNC(bip_main, bip_main_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < 20; self->i++) {
		atomic_store(&self->c->flag, 0);
		atomic_store(&self->c->seen, 0);
		CHECK_EQ(EDO_SPAWN(&self->h, bip_task, .c = self->c), 0);
		EDO_AWAIT_JOIN(self->h, &self->rc);
		CHECK_EQ(self->rc, 0);
		CHECK_EQ(atomic_load(&self->c->seen), 1);
		edo_join_detach(self->h);
	}
	EDO_END();
}

TEST(block_in_place_hands_off_the_worker)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_MULTI_THREAD);
	b.worker_threads = 1;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	bip_ctx c = {0};
	bip_main_frame m = {EDO_FRAME_INIT(bip_main), .c = &c};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* A cancelled task's cleanup that blocks in place: the worker moves to a
 * new thread during the drop, and the old thread must stop being that
 * worker when the drop returns.  Before, task_cancel put the whole thread
 * context back, so two threads ran the one worker (and its queues stopped
 * being served). */
static atomic_int cd_polled, cd_dropped;

static void cd_block(void *arg)
{
	(void)arg;
	usleep(10000);
}

static edo_poll cd_poll(edo_future *f, edo_cx *cx)
{
	(void)f;
	(void)cx;
	atomic_store(&cd_polled, 1);
	return EDO_PENDING;
}

static void cd_drop(edo_future *f)
{
	(void)f;
	CHECK_EQ(edo_block_in_place(cd_block, NULL), 0); /* a cleanup that blocks */
	atomic_store(&cd_dropped, 1);
}

static const edo_future_vtable cd_vt = {.poll = cd_poll, .drop = cd_drop};

enum { CD_PROBES = 200 };
static pid_t cd_tid[CD_PROBES];

typedef struct cd_probe_frame {
	EDO_FRAME;
	int i;
} cd_probe_frame;

EDO_ASYNC(cd_probe, cd_probe_frame, NULL)
{
	EDO_BEGIN();
	cd_tid[self->i] = gettid();
	EDO_END();
}

typedef struct cd_main_frame {
	EDO_FRAME;
	edo_join *h[CD_PROBES];
	int i, rc;
} cd_main_frame;

EDO_ASYNC(cd_main, cd_main_frame, NULL)
{
	EDO_BEGIN();
	{
		edo_future f = {&cd_vt};
		CHECK_EQ(edo_spawn(&f, sizeof f, &self->h[0]), 0);
	}
	while (!atomic_load(&cd_polled))
		EDO_YIELD();
	edo_join_abort(self->h[0]);
	EDO_AWAIT_JOIN(self->h[0], &self->rc);
	CHECK_EQ(self->rc, -ECANCELED);
	CHECK_EQ(atomic_load(&cd_dropped), 1);
	edo_join_detach(self->h[0]);
	for (self->i = 0; self->i < CD_PROBES; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], cd_probe, .i = self->i), 0);
	for (self->i = 0; self->i < CD_PROBES; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

TEST(block_in_place_in_a_cancelled_tasks_cleanup)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_MULTI_THREAD);
	b.worker_threads = 1;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	cd_main_frame m = {EDO_FRAME_INIT(cd_main)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	/* One worker: every probe ran on the one thread that runs it now. */
	for (int i = 1; i < CD_PROBES; i++)
		CHECK_EQ(cd_tid[i], cd_tid[0]);
}

/* A blocking spawn through a handle that binds its task before the pool's
 * shutdown and schedules it after edo_runtime_free returned: a late spawn,
 * so it is cancelled.  Before, it started a pool thread after free had
 * returned (thread hooks and a mandatory job ran after the runtime was
 * gone). */
static atomic_bool ls_freed, ls_in_hook;
static atomic_int ls_starts_after, ls_jobs_after;
static __thread bool ls_is_spawner;

static void ls_on_spawn(void *ud, uint64_t id)
{
	(void)ud;
	(void)id;
	if (!ls_is_spawner)
		return;
	atomic_store(&ls_in_hook, true);
	while (!atomic_load(&ls_freed)) /* bound, not yet scheduled */
		usleep(1000);
}

static void ls_on_start(void *ud)
{
	(void)ud;
	if (atomic_load(&ls_freed))
		atomic_fetch_add(&ls_starts_after, 1);
}

static void *ls_job(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ls_jobs_after, 1);
	return NULL;
}

static void *ls_spawn(void *h)
{
	ls_is_spawner = true;
	CHECK_EQ(edo_spawn_blocking_on(h, ls_job, NULL, EDO_BLOCKING_MANDATORY, NULL), 0);
	return NULL;
}

TEST(spawn_blocking_racing_free_is_cancelled)
{
	for (int mt = 0; mt < 2; mt++) {
		atomic_store(&ls_freed, false);
		atomic_store(&ls_in_hook, false);
		atomic_store(&ls_starts_after, 0);
		atomic_store(&ls_jobs_after, 0);
		edo_runtime_builder b;
		edo_runtime_builder_init(&b, mt ? EDO_RT_MULTI_THREAD : EDO_RT_CURRENT_THREAD);
		b.worker_threads = 1;
		b.hooks.on_task_spawn = ls_on_spawn;
		b.hooks.on_thread_start = ls_on_start;
		edo_runtime *rt;
		CHECK_EQ(edo_runtime_build(&b, &rt), 0);
		edo_handle *h = edo_runtime_handle(rt);
		pthread_t spawner;
		CHECK_EQ(pthread_create(&spawner, NULL, ls_spawn, h), 0);
		while (!atomic_load(&ls_in_hook))
			usleep(1000);
		CHECK_EQ(edo_runtime_free(rt), 0);
		atomic_store(&ls_freed, true);
		CHECK_EQ(pthread_join(spawner, NULL), 0);
		edo_handle_drop(h);
		CHECK_EQ(atomic_load(&ls_starts_after), 0);
		CHECK_EQ(atomic_load(&ls_jobs_after), 0);
	}
}

/* Jobs scheduled while no pool thread can be started and none is running
 * (here: a 4 GiB stack under an address-space limit, in a child process)
 * would wait for ever.  A mandatory one runs on the scheduling thread at
 * once; another is cancelled, its join reporting -ECANCELED.  (Before, both
 * waited: the join of a plain job never finished, and a mandatory one ran
 * only at shutdown.) */
static atomic_int nt_ran;

static void *nt_job(void *arg)
{
	(void)arg;
	atomic_fetch_add(&nt_ran, 1);
	return NULL;
}

/* Run @body in a child process (its address-space limit stays there, also
 * under --no-fork) and expect it to exit 0. */
static void in_child_ok(void (*body)(void))
{
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		body();
		_exit(0);
	}
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
}

/* What is mapped now, and 1 GiB more: room for everything but a pool
 * thread's 4 GiB stack. */
static void limit_address_space(void)
{
	struct rlimit rl;
	CHECK_EQ(getrlimit(RLIMIT_AS, &rl), 0);
	FILE *f = fopen("/proc/self/statm", "r");
	CHECK(f != NULL);
	unsigned long pages = 0;
	CHECK_EQ(fscanf(f, "%lu", &pages), 1);
	fclose(f);
	rl.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
	CHECK_EQ(setrlimit(RLIMIT_AS, &rl), 0);
}

static void nt_child(void)
{
	limit_address_space();
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.thread_stack_size = (size_t)1 << 32;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	edo_handle *h = edo_runtime_handle(rt);
	edo_join *j, *k;
	CHECK_EQ(edo_spawn_blocking_on(h, nt_job, NULL, EDO_BLOCKING_MANDATORY, &j), 0);
	CHECK_EQ(atomic_load(&nt_ran), 1); /* ran here, before the spawn returned */
	CHECK(edo_join_is_finished(j));
	CHECK_EQ(edo_spawn_blocking_on(h, nt_job, NULL, 0, &k), 0);
	CHECK(edo_join_is_finished(k));
	edo_cx cx = {edo_noop_waker()};
	int rc = 0;
	CHECK_EQ(edo_join_poll(j, &cx, &rc), EDO_READY);
	CHECK_EQ(rc, 0);
	CHECK_EQ(edo_join_poll(k, &cx, &rc), EDO_READY);
	CHECK_EQ(rc, -ECANCELED);
	CHECK_EQ(atomic_load(&nt_ran), 1);
	CHECK_EQ(edo_runtime_free(rt), 0);
	edo_join_detach(j);
	edo_join_detach(k);
	edo_handle_drop(h);
}

TEST(jobs_without_a_pool_thread_do_not_wait_for_ever)
{
	in_child_ok(nt_child);
}

/* A job run inline (no pool thread) whose completion runs user code that
 * runs another job inline: each gives back its hold on the paused clock's
 * auto-advance (the nested run used to clear the outer one's). */
static edo_handle *nest_h;
static atomic_int nest_depth;

static void nest_on_terminate(void *ud, uint64_t id)
{
	(void)ud;
	(void)id;
	if (atomic_fetch_add(&nest_depth, 1) == 0)
		CHECK_EQ(edo_spawn_blocking_on(nest_h, nt_job, NULL, EDO_BLOCKING_MANDATORY, NULL),
			 0);
}

static void nest_child(void)
{
	limit_address_space();
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.thread_stack_size = (size_t)1 << 32;
	b.start_paused = true;
	b.hooks.on_task_terminate = nest_on_terminate;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	nest_h = edo_runtime_handle(rt);
	CHECK_EQ(edo_spawn_blocking_on(nest_h, nt_job, NULL, EDO_BLOCKING_MANDATORY, NULL), 0);
	CHECK_EQ(atomic_load(&nt_ran), 2); /* both ran, one inside the other */
	alarm(20);                         /* a clock held back for good would wait for ever */
	edo_sleep sl;
	edo_sleep_init(&sl, EDO_SEC(1000));
	CHECK_EQ(edo_block_on(rt, &sl.base), 0);
	CHECK_EQ(sl.result, 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	edo_handle_drop(nest_h);
}

TEST(nested_inline_jobs_release_the_paused_clock)
{
	in_child_ok(nest_child);
}

static void set_int(void *arg)
{
	*(int *)arg = 7;
}

TEST(block_in_place_elsewhere)
{
	int v = 0;
	CHECK_EQ(edo_block_in_place(set_int, &v), 0); /* outside a runtime: just runs */
	CHECK_EQ(v, 7);
	CHECK_EQ(edo_block_in_place(NULL, NULL), -EINVAL);
}

typedef struct bip_ct_frame {
	EDO_FRAME;
	int v, rc;
} bip_ct_frame;

EDO_ASYNC(bip_ct, bip_ct_frame, NULL)
{
	EDO_BEGIN();
	self->rc = edo_block_in_place(set_int, &self->v);
	EDO_END();
}

TEST(block_in_place_current_thread_refused)
{
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	bip_ct_frame f = {EDO_FRAME_INIT(bip_ct)};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(f.rc, -ENOTSUP);
	CHECK_EQ(f.v, 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* From a blocking-pool job edo_block_in_place just runs @fn, on either
 * flavour: that thread runs no worker to hand over. */
static void *bip_in_job(void *arg)
{
	int *v = arg;
	v[1] = edo_block_in_place(set_int, &v[0]);
	return NULL;
}

typedef struct bip_job_frame {
	EDO_FRAME;
	edo_join *h;
	int v[2], rc;
} bip_job_frame;

EDO_ASYNC(bip_job, bip_job_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_spawn_blocking(bip_in_job, self->v, &self->h), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	edo_join_detach(self->h);
	EDO_END();
}

TEST(block_in_place_in_a_blocking_job_runs)
{
	for (int mt = 0; mt <= 1; mt++) {
		edo_runtime_builder b;
		edo_runtime_builder_init(&b, mt ? EDO_RT_MULTI_THREAD : EDO_RT_CURRENT_THREAD);
		b.worker_threads = 1;
		edo_runtime *rt;
		CHECK_EQ(edo_runtime_build(&b, &rt), 0);
		bip_job_frame f = {EDO_FRAME_INIT(bip_job), .v = {0, -1}};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		CHECK_EQ(f.rc, 0);
		CHECK_EQ(f.v[1], 0);
		CHECK_EQ(f.v[0], 7);
		CHECK_EQ(edo_runtime_free(rt), 0);
	}
}

/* A paused clock on the current-thread runtime does not auto-advance while a
 * blocking job is in flight (Tokio's test-util inhibits it the same way):
 * the runtime being idle says nothing about the pool thread, whose result
 * may be what the timers were set to wait for.  Once the job has finished
 * (or was cancelled before it ran), auto-advance goes on. */
typedef struct paused_sleeper_frame {
	EDO_FRAME;
	edo_sleep s;
	atomic_bool *fired;
} paused_sleeper_frame;

EDO_ASYNC(paused_sleeper, paused_sleeper_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_SLEEP(&self->s, EDO_SEC(10));
	atomic_store(self->fired, true);
	EDO_END();
}

static void *slow_job(void *arg)
{
	usleep(30000);
	return arg;
}

typedef struct paused_blocking_frame {
	EDO_FRAME;
	edo_join *sleeper, *job, *queued;
	atomic_bool fired;
	edo_instant t0;
	int rc, round;
	bool abort_queued; /* also spawn a job that is aborted before it runs */
} paused_blocking_frame;

EDO_ASYNC(paused_blocking_main, paused_blocking_frame, NULL)
{
	EDO_BEGIN();
	CHECK(edo_time_is_paused());
	for (self->round = 0; self->round < 3; self->round++) {
		atomic_store(&self->fired, false);
		self->t0 = edo_instant_now();
		CHECK_EQ(EDO_SPAWN(&self->sleeper, paused_sleeper, .fired = &self->fired), 0);
		CHECK_EQ(edo_spawn_blocking(slow_job, (void *)7L, &self->job), 0);
		if (self->abort_queued) {
			/* One pool thread: this one waits behind slow_job and is
			 * cancelled before it runs. */
			CHECK_EQ(edo_spawn_blocking(slow_job, NULL, &self->queued), 0);
			edo_join_abort(self->queued);
		}
		EDO_AWAIT_JOIN(self->job, &self->rc);
		CHECK_EQ(self->rc, 0);
		CHECK_EQ((long)edo_join_blocking_result(self->job), 7L);
		edo_join_detach(self->job);
		/* The runtime idled for 30 ms of real time, with a timer due in
		 * 10 virtual seconds: the clock waited for the job. */
		CHECK_EQ(edo_instant_now(), self->t0);
		CHECK(!atomic_load(&self->fired));
		if (self->abort_queued) {
			EDO_AWAIT_JOIN(self->queued, &self->rc);
			CHECK_EQ(self->rc, -ECANCELED);
			edo_join_detach(self->queued);
		}
		/* Nothing in flight any more: the sleeper's timer is reached by
		 * auto-advance (a job that kept inhibiting it would hang here). */
		EDO_AWAIT_JOIN(self->sleeper, &self->rc);
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->sleeper);
		CHECK(atomic_load(&self->fired));
		CHECK_EQ(edo_instant_now() - self->t0, EDO_SEC(10));
	}
	EDO_END();
}

static void run_paused_blocking(bool abort_queued)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.start_paused = true;
	b.max_blocking_threads = 1;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	paused_blocking_frame f = {EDO_FRAME_INIT(paused_blocking_main),
				   .abort_queued = abort_queued};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(paused_clock_waits_for_blocking_jobs)
{
	run_paused_blocking(false);
}

TEST(paused_clock_goes_on_after_a_job_cancelled_before_it_ran)
{
	run_paused_blocking(true);
}

/* A blocking job is inside its runtime: it reads the runtime's clock,
 * paused and advanced, as a task does. */
typedef struct clock_seen {
	edo_instant now;
	bool paused;
} clock_seen;

static void *read_clock(void *arg)
{
	clock_seen *c = arg;
	c->now = edo_instant_now();
	c->paused = edo_time_is_paused();
	return NULL;
}

typedef struct job_clock_frame {
	EDO_FRAME;
	edo_join *h;
	clock_seen seen;
	int rc;
} job_clock_frame;

EDO_ASYNC(job_clock_main, job_clock_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_time_advance(EDO_SEC(3600)), 0);
	CHECK_EQ(edo_spawn_blocking(read_clock, &self->seen, &self->h), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->h);
	CHECK(self->seen.paused);
	CHECK_EQ(self->seen.now, edo_instant_now());
	EDO_END();
}

TEST(blocking_job_reads_the_runtime_clock)
{
	edo_rt_flavor flavors[] = {EDO_RT_CURRENT_THREAD, EDO_RT_MULTI_THREAD};
	for (int i = 0; i < 2; i++) {
		edo_runtime_builder b;
		edo_runtime_builder_init(&b, flavors[i]);
		b.worker_threads = 2;
		b.start_paused = true;
		edo_runtime *rt;
		CHECK_EQ(edo_runtime_build(&b, &rt), 0);
		job_clock_frame f = {EDO_FRAME_INIT(job_clock_main)};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
	}
}

/* ---- edo_block_on from blocking code (Tokio's Handle::block_on in
 * spawn_blocking and block_in_place) ------------------------------------------------------- */

typedef struct twice_frame {
	EDO_FRAME;
	long v;
} twice_frame;

EDO_ASYNC(twice, twice_frame, NULL)
{
	EDO_BEGIN();
	self->v *= 2;
	EDO_END();
}

/* The future a blocking thread blocks on: a timer, a task spawned onto the
 * runtime and joined, and a nested edo_block_on, which stays -EBUSY. */
typedef struct inner_frame {
	EDO_FRAME;
	edo_runtime *rt;
	edo_sleep s;
	edo_join *j;
	int rc, nested_rc;
	long out;
} inner_frame;

EDO_ASYNC(inner, inner_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_SLEEP(&self->s, EDO_MS(1));
	CHECK_EQ(EDO_SPAWN(&self->j, twice, .v = 21), 0);
	EDO_AWAIT_JOIN(self->j, &self->rc);
	CHECK_EQ(self->rc, 0);
	self->out = EDO_JOIN_OUTPUT(self->j, twice)->v;
	edo_join_detach(self->j);
	{
		twice_frame t = {EDO_FRAME_INIT(twice), .v = 1};
		self->nested_rc = edo_block_on(self->rt, &t.edo_base);
	}
	EDO_END();
}

typedef struct bo_job_arg {
	edo_runtime *rt;
	bool through_handle;
	int rc;
	inner_frame f;
} bo_job_arg;

static void *block_on_job(void *arg)
{
	bo_job_arg *a = arg;
	a->f = (inner_frame){EDO_FRAME_INIT(inner), .rt = a->rt};
	if (a->through_handle) {
		edo_handle *h = edo_handle_current();
		CHECK(h != NULL);
		a->rc = edo_handle_block_on(h, &a->f.edo_base);
		edo_handle_drop(h);
	} else {
		a->rc = edo_block_on(a->rt, &a->f.edo_base);
	}
	return NULL;
}

typedef struct bo_main_frame {
	EDO_FRAME;
	bo_job_arg *a;
	edo_join *h;
	int rc;
} bo_main_frame;

EDO_ASYNC(bo_main, bo_main_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_spawn_blocking(block_on_job, self->a, &self->h), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->h);
	EDO_END();
}

/* A multi-thread runtime of two workers (the block_on and shutdown cases below). */
static edo_runtime *mt_runtime(void)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_MULTI_THREAD);
	b.worker_threads = 2;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	return rt;
}

TEST(block_on_in_a_blocking_job)
{
	for (int handle = 0; handle <= 1; handle++) {
		edo_runtime *rt = mt_runtime();
		bo_job_arg a = {.rt = rt, .through_handle = handle};
		bo_main_frame m = {EDO_FRAME_INIT(bo_main), .a = &a};
		CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
		CHECK_EQ(a.rc, 0);
		CHECK_EQ(a.f.out, 42);
		CHECK_EQ(a.f.nested_rc, -EBUSY);
		CHECK_EQ(edo_runtime_free(rt), 0);
	}
}

/* On the current-thread runtime the thread in edo_block_on runs every task;
 * while it waits for the job, the job's block_on is the second: -EBUSY
 * (edo_block_on's contract), with nothing run. */
TEST(block_on_in_a_blocking_job_current_thread_is_busy_while_main_blocks)
{
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	bo_job_arg a = {.rt = rt};
	bo_main_frame m = {EDO_FRAME_INIT(bo_main), .a = &a};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(a.rc, -EBUSY);
	CHECK_EQ(a.f.out, 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* A job of a current-thread runtime may block on it once no other thread
 * does: the job's thread then runs the runtime's tasks. */
TEST(block_on_in_a_detached_job_current_thread)
{
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	edo_handle *h = edo_runtime_handle(rt);
	bo_job_arg a = {.rt = rt};
	edo_join *j;
	CHECK_EQ(edo_spawn_blocking_on(h, block_on_job, &a, 0, &j), 0);
	/* Wait for the job from outside the runtime (no one blocks on it). */
	for (int i = 0; i < 100000 && !edo_join_is_finished(j); i++)
		usleep(100);
	CHECK(edo_join_is_finished(j));
	edo_join_detach(j);
	CHECK_EQ(a.rc, 0);
	CHECK_EQ(a.f.out, 42);
	CHECK_EQ(a.f.nested_rc, -EBUSY);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

typedef struct bip_bo_frame {
	EDO_FRAME;
	bo_job_arg *a;
	int rc;
} bip_bo_frame;

static void bip_block_on(void *arg)
{
	(void)block_on_job(arg);
}

EDO_ASYNC(bip_bo, bip_bo_frame, NULL)
{
	EDO_BEGIN();
	self->rc = edo_block_in_place(bip_block_on, self->a);
	EDO_END();
}

/* edo_block_in_place on a multi-thread worker hands the worker over; its
 * function may then block on the runtime. */
TEST(block_on_in_block_in_place)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_MULTI_THREAD);
	b.worker_threads = 1;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	edo_handle *h = edo_runtime_handle(rt);
	bo_job_arg a = {.rt = rt, .through_handle = true};
	edo_join *j;
	CHECK_EQ(EDO_SPAWN_ON(h, &j, bip_bo, .a = &a), 0);
	for (int i = 0; i < 100000 && !edo_join_is_finished(j); i++)
		usleep(100);
	CHECK(edo_join_is_finished(j));
	CHECK_EQ(EDO_JOIN_OUTPUT(j, bip_bo)->rc, 0);
	edo_join_detach(j);
	CHECK_EQ(a.rc, 0);
	CHECK_EQ(a.f.out, 42);
	CHECK_EQ(a.f.nested_rc, -EBUSY);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* A job in edo_block_on does not keep the runtime's free from shutting it
 * down: the task holding the sender the job's future waits on is
 * cancelled, the receive completes with EDO_ECLOSED, and free waits for the
 * job and returns 0. */
typedef struct holder_frame {
	EDO_FRAME;
	edo_oneshot_tx *tx;
	edo_sleep s;
} holder_frame;

static void holder_cleanup(holder_frame *self)
{
	edo_oneshot_tx_drop(self->tx);
}

EDO_ASYNC(holder, holder_frame, holder_cleanup)
{
	EDO_BEGIN();
	EDO_AWAIT_SLEEP(&self->s, EDO_SEC(3600));
	EDO_END();
}

typedef struct wait_rx_frame {
	EDO_FRAME;
	edo_oneshot_rx *rx;
	atomic_bool *waiting;
	int rc;
} wait_rx_frame;

static void wait_rx_cleanup(wait_rx_frame *self)
{
	edo_oneshot_rx_drop(self->rx);
}

EDO_ASYNC(wait_rx, wait_rx_frame, wait_rx_cleanup)
{
	EDO_BEGIN();
	atomic_store(self->waiting, true);
	EDO_AWAIT_POLL(edo_oneshot_poll_recv(self->rx, cx, NULL, &self->rc));
	EDO_END();
}

typedef struct shut_job_arg {
	edo_runtime *rt;
	wait_rx_frame f;
	int rc;
} shut_job_arg;

static void *shut_job(void *arg)
{
	shut_job_arg *a = arg;
	a->rc = edo_block_on(a->rt, &a->f.edo_base);
	return NULL;
}

TEST(free_while_a_blocking_job_blocks_on)
{
	edo_runtime *rt = mt_runtime();
	edo_handle *h = edo_runtime_handle(rt);
	edo_oneshot_tx *tx;
	edo_oneshot_rx *rx;
	CHECK_EQ(edo_oneshot_new(0, &tx, &rx), 0);
	edo_join *hj, *jj;
	CHECK_EQ(EDO_SPAWN_ON(h, &hj, holder, .tx = tx), 0);
	edo_join_detach(hj);
	atomic_bool waiting = false;
	shut_job_arg a = {.rt = rt, .f = {EDO_FRAME_INIT(wait_rx), .rx = rx, .waiting = &waiting}};
	CHECK_EQ(edo_spawn_blocking_on(h, shut_job, &a, 0, &jj), 0);
	edo_join_detach(jj);
	while (!atomic_load(&waiting))
		usleep(100);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
	/* free waited for the job, whose future saw the sender dropped. */
	CHECK_EQ(a.rc, 0);
	CHECK_EQ(a.f.rc, EDO_ECLOSED);
}

/* A freed runtime's handle: EDO_ESHUTDOWN, on either flavour. */
TEST(handle_block_on_after_free)
{
	for (int mt = 0; mt <= 1; mt++) {
		edo_runtime_builder b;
		edo_runtime_builder_init(&b, mt ? EDO_RT_MULTI_THREAD : EDO_RT_CURRENT_THREAD);
		b.worker_threads = 1;
		edo_runtime *rt;
		CHECK_EQ(edo_runtime_build(&b, &rt), 0);
		edo_handle *h = edo_runtime_handle(rt);
		twice_frame t = {EDO_FRAME_INIT(twice), .v = 1};
		CHECK_EQ(edo_handle_block_on(h, &t.edo_base), 0);
		CHECK_EQ(t.v, 2);
		CHECK_EQ(edo_runtime_free(rt), 0);
		twice_frame u = {EDO_FRAME_INIT(twice), .v = 1};
		CHECK_EQ(edo_handle_block_on(h, &u.edo_base), EDO_ESHUTDOWN);
		CHECK_EQ(u.v, 1);
		CHECK_EQ(edo_handle_block_on(NULL, &u.edo_base), -EINVAL);
		edo_handle_drop(h);
	}
}

/* Blocking code in edo_block_on, waiting on I/O, when the runtime is freed:
 * once the workers are gone nothing drives the reactor, so shutdown fails
 * the I/O (EDO_ESHUTDOWN) before it waits for such threads; before that, a
 * block_in_place thread waited for ever, and so did the free. */
typedef struct io_wait_frame {
	EDO_FRAME;
	edo_udp_socket *sock;
	atomic_bool *waiting;
	edo_net_ready_fut f;
	int rc;
} io_wait_frame;

EDO_ASYNC(io_wait, io_wait_frame, NULL)
{
	EDO_BEGIN();
	edo_udp_ready(&self->f, self->sock, EDO_INTEREST_READABLE);
	atomic_store(self->waiting, true);
	EDO_AWAIT(&self->f.base);
	self->rc = self->f.rc;
	EDO_END();
}

typedef struct io_block_arg {
	edo_udp_socket *sock;
	atomic_bool waiting, done;
	int bo_rc, io_rc;
} io_block_arg;

static void io_block(void *arg)
{
	io_block_arg *a = arg;
	edo_handle *h = edo_handle_current();
	io_wait_frame w = {EDO_FRAME_INIT(io_wait), .sock = a->sock, .waiting = &a->waiting};
	a->bo_rc = edo_handle_block_on(h, &w.edo_base);
	a->io_rc = w.rc;
	edo_handle_drop(h);
	atomic_store(&a->done, true);
}

static void *io_block_job(void *arg)
{
	io_block(arg);
	return NULL;
}

typedef struct io_bip_frame {
	EDO_FRAME;
	io_block_arg *a;
} io_bip_frame;

EDO_ASYNC(io_bip, io_bip_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_block_in_place(io_block, self->a), 0);
	EDO_END();
}

typedef struct io_setup_frame {
	EDO_FRAME;
	io_block_arg *a;
	bool pool;
} io_setup_frame;

EDO_ASYNC(io_setup, io_setup_frame, NULL)
{
	EDO_BEGIN();
	{
		edo_addr addr;
		CHECK_EQ(edo_addr_ip(&addr, "127.0.0.1", 0), 0);
		CHECK_EQ(edo_udp_bind(&addr, &self->a->sock), 0);
		edo_join *j;
		if (self->pool)
			CHECK_EQ(edo_spawn_blocking(io_block_job, self->a, &j), 0);
		else
			CHECK_EQ(EDO_SPAWN(&j, io_bip, .a = self->a), 0);
		edo_join_detach(j);
	}
	EDO_END();
}

TEST(free_while_blocking_code_blocks_on_io)
{
	for (int mode = 0; mode < 4; mode++) {
		bool pool = mode & 1, timed = mode & 2;
		edo_runtime *rt = mt_runtime();
		edo_handle *h = edo_runtime_handle(rt);
		io_block_arg a = {.bo_rc = 1, .io_rc = 1};
		io_setup_frame s = {EDO_FRAME_INIT(io_setup), .a = &a, .pool = pool};
		CHECK_EQ(edo_block_on(rt, &s.edo_base), 0);
		while (!atomic_load(&a.waiting))
			usleep(100);
		if (timed) {
			/* Within a minute the I/O has failed and the thread left. */
			CHECK_EQ(edo_runtime_shutdown_timeout(rt, 60000), 0);
		} else {
			CHECK_EQ(edo_runtime_free(rt), 0);
		}
		CHECK_EQ(a.bo_rc, 0);
		CHECK_EQ(a.io_rc, EDO_ESHUTDOWN);
		/* Freed after the runtime, as the last handle goes. */
		edo_udp_drop(a.sock);
		edo_handle_drop(h);
	}
}

/* The same after a shutdown_timeout that gave up on a worker stuck in a
 * poll: the last worker out fails the I/O, the block_in_place thread
 * leaves, and the shutdown completes (the runtime's reference dropped). */
typedef struct stuck_poll_frame {
	EDO_FRAME;
	atomic_bool *entered, *release;
} stuck_poll_frame;

EDO_ASYNC(stuck_poll, stuck_poll_frame, NULL)
{
	EDO_BEGIN();
	atomic_store(self->entered, true);
	while (!atomic_load(self->release))
		usleep(1000);
	EDO_END();
}

TEST(shutdown_timeout_gives_up_then_fails_the_io_of_blocking_code)
{
	for (int pool = 0; pool <= 1; pool++) {
		edo_runtime *rt = mt_runtime();
		edo_handle *h = edo_runtime_handle(rt);
		io_block_arg a = {.bo_rc = 1, .io_rc = 1};
		io_setup_frame s = {EDO_FRAME_INIT(io_setup), .a = &a, .pool = pool};
		CHECK_EQ(edo_block_on(rt, &s.edo_base), 0);
		atomic_bool entered = false, release = false;
		edo_join *j;
		CHECK_EQ(EDO_SPAWN_ON(h, &j, stuck_poll, .entered = &entered, .release = &release),
			 0);
		edo_join_detach(j);
		while (!atomic_load(&a.waiting) || !atomic_load(&entered))
			usleep(100);
		CHECK_EQ(edo_runtime_shutdown_timeout(rt, 10), -ETIMEDOUT);
		atomic_store(&release, true);
		while (!atomic_load(&a.done))
			usleep(1000);
		CHECK_EQ(a.bo_rc, 0);
		CHECK_EQ(a.io_rc, EDO_ESHUTDOWN);
		/* The shutdown completes: the socket and our handle hold the
		 * last references. */
		while (atomic_load(&h->refs) != 2)
			usleep(1000);
		edo_udp_drop(a.sock);
		edo_handle_drop(h);
	}
}

TEST_MAIN()
