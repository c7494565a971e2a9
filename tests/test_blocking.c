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
	usleep(5000); /* let the only thread pick up `first` */
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
	(void)arg;
	usleep(300000);
	return NULL;
}

TEST(shutdown_timeout)
{
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	edo_handle *hd = edo_runtime_handle(rt);
	CHECK_EQ(edo_spawn_blocking_on(hd, long_sleep, NULL, 0, NULL), 0);
	usleep(5000);
	CHECK_EQ(edo_runtime_shutdown_timeout(rt, 10), -ETIMEDOUT);
	edo_handle_drop(hd);
	usleep(400000); /* the thread finishes and frees the pool */
}

TEST_MAIN()
