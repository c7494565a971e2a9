/* The blocking pool: spawn_blocking, results, mandatory tasks, shutdown. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"

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

TEST_MAIN()
