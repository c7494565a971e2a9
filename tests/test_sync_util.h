/* Helpers shared by the test_sync_*.c programs: a counting waker for polling
 * futures by hand (Tokio's tokio_test::task), and runtime builders. */
#ifndef EDO_TEST_SYNC_UTIL_H
#define EDO_TEST_SYNC_UTIL_H

#include <stdatomic.h>

#include "edo.h"
#include "harness.h"

/* A waker that counts its wakes; polling a future with it by hand shows
 * exactly who was woken, and when. */
typedef struct test_waker {
	atomic_int wakes;
	atomic_int refs; /* clones alive (must be 0 when the test ends) */
	edo_waker w;
	edo_cx cx;
	/* Optional: run at each wake, after counting it, to do what races
	 * with the waker's caller (which may be in the middle of a batch). */
	void (*on_wake)(struct test_waker *t);
} test_waker;

static edo_waker tw_clone(const void *d)
{
	test_waker *t = (test_waker *)(uintptr_t)d;
	atomic_fetch_add(&t->refs, 1);
	return t->w;
}

static void tw_wake_by_ref(const void *d)
{
	test_waker *t = (test_waker *)(uintptr_t)d;
	atomic_fetch_add(&t->wakes, 1);
	if (t->on_wake)
		t->on_wake(t);
}

static void tw_drop(const void *d)
{
	atomic_fetch_sub(&((test_waker *)(uintptr_t)d)->refs, 1);
}

static void tw_wake(const void *d)
{
	tw_wake_by_ref(d);
	tw_drop(d);
}

static const edo_waker_vtable test_waker_vt = {tw_clone, tw_wake, tw_wake_by_ref, tw_drop};

static inline void tw_init(test_waker *t)
{
	atomic_init(&t->wakes, 0);
	atomic_init(&t->refs, 0);
	t->w = (edo_waker){&test_waker_vt, t};
	t->cx.waker = &t->w;
	t->on_wake = NULL;
}

/* Woken since the last call? (resets the count) */
static inline int tw_woken(test_waker *t)
{
	return atomic_exchange(&t->wakes, 0);
}

static inline edo_poll tw_poll(test_waker *t, edo_future *f)
{
	return edo_future_poll(f, &t->cx);
}

static inline edo_runtime *test_rt(edo_rt_flavor flavor, unsigned workers)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, flavor);
	b.worker_threads = workers;
	edo_runtime *rt = NULL;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	return rt;
}

/* Run @f (a frame) on a fresh runtime of @flavor (4 workers if multi). */
static inline void test_block_on(edo_rt_flavor flavor, edo_future *f)
{
	edo_runtime *rt = test_rt(flavor, flavor == EDO_RT_MULTI_THREAD ? 4 : 0);
	CHECK_EQ(edo_block_on(rt, f), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* FLAVORS({ ... flavor_ ... }): run the block once per runtime flavour. */
#define FLAVORS(...)                                                                               \
	do {                                                                                       \
		for (int fl_ = 0; fl_ < 2; fl_++) {                                                \
			edo_rt_flavor flavor_ =                                                    \
				fl_ == 0 ? EDO_RT_CURRENT_THREAD : EDO_RT_MULTI_THREAD;            \
			__VA_ARGS__;                                                               \
		}                                                                                  \
	} while (0)

#endif /* EDO_TEST_SYNC_UTIL_H */
