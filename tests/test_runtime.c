/* Runtimes: the builder's validation, edo_block_on's contract (bad input,
 * nesting, two threads, taking turns, remote wakes), edo_runtime_free's,
 * handles, and edo_strerror. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"

/* ---- helpers ------------------------------------------------------------------ */

static edo_runtime *rt_new(void)
{
	edo_runtime *rt = NULL;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	CHECK(rt != NULL);
	return rt;
}

/* A future whose waker is kept in a mutex-guarded slot; READY once released.
 * Counts its polls and drops. */
typedef struct slot {
	pthread_mutex_t lock;
	edo_waker w;
	int released;
	atomic_int polls;
	atomic_int drops;
	atomic_int entered;
} slot;

#define SLOT_INIT                                                                                  \
	{                                                                                          \
		.lock = PTHREAD_MUTEX_INITIALIZER                                                  \
	}

typedef struct slot_fut {
	edo_future base;
	slot *s;
} slot_fut;

static edo_poll slot_poll(edo_future *f, edo_cx *cx)
{
	slot *s = ((slot_fut *)f)->s;
	atomic_fetch_add(&s->polls, 1);
	pthread_mutex_lock(&s->lock);
	int done = s->released;
	if (!done)
		edo_waker_set(&s->w, cx->waker);
	pthread_mutex_unlock(&s->lock);
	atomic_store(&s->entered, 1);
	return done ? EDO_READY : EDO_PENDING;
}

static void slot_drop(edo_future *f)
{
	atomic_fetch_add(&((slot_fut *)f)->s->drops, 1);
}

static const edo_future_vtable slot_vt = {.poll = slot_poll, .drop = slot_drop};

/* Release the slot and wake whoever waits on it (by value or by reference). */
static void slot_release(slot *s, bool by_value)
{
	pthread_mutex_lock(&s->lock);
	s->released = 1;
	edo_waker w = edo_waker_take(&s->w);
	pthread_mutex_unlock(&s->lock);
	if (by_value) {
		edo_waker_wake(w);
	} else {
		edo_waker_wake_by_ref(&w);
		edo_waker_drop(w);
	}
}

/* Wake the slot's waker without releasing it (a spurious wake). */
static void slot_poke(slot *s)
{
	pthread_mutex_lock(&s->lock);
	edo_waker w = edo_waker_clone(&s->w);
	pthread_mutex_unlock(&s->lock);
	edo_waker_wake(w);
}

static void wait_flag(atomic_int *f)
{
	while (!atomic_load(f))
		sched_yield();
}

/* ==== the builder ================================================================ */

static int build(edo_runtime_builder *b)
{
	edo_runtime *rt = (edo_runtime *)(uintptr_t)0x1234;
	int rc = edo_runtime_build(b, &rt);
	if (rc < 0) {
		/* @out is untouched on failure. */
		CHECK(rt == (edo_runtime *)(uintptr_t)0x1234);
		return rc;
	}
	CHECK(rt != NULL);
	edo_handle *h = edo_runtime_handle(rt);
	CHECK_EQ(edo_handle_flavor(h), b->flavor);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
	return rc;
}

TEST(builder_validation)
{
	edo_runtime_builder b;
	/* Init resets every field, whatever was there. */
	memset(&b, 0xa5, sizeof b);
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	CHECK_EQ(b.flavor, EDO_RT_CURRENT_THREAD);
	CHECK_EQ(b.worker_threads, 0);
	CHECK(b.thread_name == NULL);
	CHECK_EQ(b.thread_stack_size, 0);
	CHECK_EQ(b.event_interval, 0);
	CHECK_EQ(b.global_queue_interval, 0);
	CHECK_EQ(b.inject_wait_factor, 0);
	CHECK(b.hooks.on_task_spawn == NULL);
	CHECK(b.hooks_ud == NULL);
	CHECK_EQ(build(&b), 0);

	/* Unknown flavours. */
	edo_runtime_builder_init(&b, (edo_rt_flavor)0);
	CHECK_EQ(build(&b), -EINVAL);
	edo_runtime_builder_init(&b, (edo_rt_flavor)3);
	CHECK_EQ(build(&b), -EINVAL);
	edo_runtime_builder_init(&b, (edo_rt_flavor)-1);
	CHECK_EQ(build(&b), -EINVAL);

	/* Absurd sizes. */
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.thread_stack_size = 1;
	CHECK_EQ(build(&b), -EINVAL);
	b.thread_stack_size = (size_t)1 << 40;
	CHECK_EQ(build(&b), -EINVAL);
	b.thread_stack_size = SIZE_MAX;
	CHECK_EQ(build(&b), -EINVAL);
	b.thread_stack_size = (size_t)PTHREAD_STACK_MIN; /* the smallest sane one */
	CHECK_EQ(build(&b), 0);
	b.thread_stack_size = 0;
	b.worker_threads = 1000000;
	CHECK_EQ(build(&b), -EINVAL);
	b.worker_threads = 0;
	b.event_interval = UINT_MAX;
	CHECK_EQ(build(&b), -EINVAL);
	b.event_interval = 0;
	b.global_queue_interval = UINT_MAX;
	CHECK_EQ(build(&b), -EINVAL);
	b.global_queue_interval = 0;
	b.inject_wait_factor = (1u << 16) + 1;
	CHECK_EQ(build(&b), -EINVAL);
	b.inject_wait_factor = UINT_MAX - 1;
	CHECK_EQ(build(&b), -EINVAL);
	b.inject_wait_factor = EDO_INJECT_WAIT_UNBOUNDED;
	CHECK_EQ(build(&b), 0);
	b.inject_wait_factor = 1u << 16;
	CHECK_EQ(build(&b), 0);
	b.inject_wait_factor = 0;
	b.max_blocking_threads = UINT_MAX;
	CHECK_EQ(build(&b), -EINVAL);
	b.max_blocking_threads = 0;
	/* Small but valid intervals. */
	b.event_interval = 1;
	b.global_queue_interval = 1;
	b.thread_name = "a-name-longer-than-fifteen-bytes";
	CHECK_EQ(build(&b), 0);

	/* The multi-thread flavour: -ENOTSUP in a build without it. */
	edo_runtime_builder_init(&b, EDO_RT_MULTI_THREAD);
	b.worker_threads = 2;
	int rc = build(&b);
	CHECK(rc == 0 || rc == -ENOTSUP);
	b.thread_stack_size = 1;
	CHECK_EQ(build(&b), -EINVAL); /* validation comes first */

	/* NULL arguments. */
	edo_runtime *rt = NULL;
	CHECK_EQ(edo_runtime_build(NULL, &rt), -EINVAL);
	CHECK(rt == NULL);
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	CHECK_EQ(edo_runtime_build(&b, NULL), -EINVAL);
	CHECK_EQ(edo_runtime_free(NULL), 0);
	/* Nothing leaked on any failure: LeakSanitizer checks at exit. */
}

/* Configured intervals still run everything (1: check the remote queue and
 * the driver on every tick). */
typedef struct count_frame {
	EDO_FRAME;
	atomic_long *count;
	long target;
} count_frame;

EDO_ASYNC(count_task, count_frame, NULL)
{
	EDO_BEGIN();
	atomic_fetch_add(self->count, 1);
	EDO_END();
}

typedef struct spawn_n_frame {
	EDO_FRAME;
	atomic_long *count;
	long n, i;
} spawn_n_frame;

EDO_ASYNC(spawn_n_main, spawn_n_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++)
		CHECK_EQ(EDO_SPAWN(NULL, count_task, .count = self->count), 0);
	while (atomic_load(self->count) < self->n)
		EDO_YIELD();
	EDO_END();
}

TEST(builder_intervals_of_one)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.event_interval = 1;
	b.global_queue_interval = 1;
	edo_runtime *rt = NULL;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	atomic_long count = 0;
	spawn_n_frame m = {EDO_FRAME_INIT(spawn_n_main), .count = &count, .n = 1000};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(atomic_load(&count), 1000);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* ==== edo_block_on ================================================================ */

static const edo_future_vtable no_poll_vt = {.poll = NULL, .drop = NULL};

TEST(block_on_rejects_bad_input)
{
	edo_runtime *rt = rt_new();
	slot s = SLOT_INIT;
	slot_fut f = {{&slot_vt}, &s};
	edo_future empty = {NULL};
	edo_future nopoll = {&no_poll_vt};
	CHECK_EQ(edo_block_on(NULL, &f.base), -EINVAL);
	CHECK_EQ(edo_block_on(rt, NULL), -EINVAL);
	CHECK_EQ(edo_block_on(rt, &empty), -EINVAL);
	CHECK_EQ(edo_block_on(rt, &nopoll), -EINVAL);
	CHECK_EQ(atomic_load(&s.polls), 0);
	/* The runtime is unharmed; the future is polled in place, not dropped. */
	s.released = 1;
	CHECK_EQ(edo_block_on(rt, &f.base), 0);
	CHECK_EQ(atomic_load(&s.polls), 1);
	CHECK_EQ(edo_block_on(rt, &f.base), 0); /* again: a second block_on */
	CHECK_EQ(atomic_load(&s.polls), 2);
	CHECK_EQ(atomic_load(&s.drops), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(atomic_load(&s.drops), 0);
}

/* From inside a runtime: no nested block_on, no free. */
typedef struct nest_frame {
	EDO_FRAME;
	edo_runtime *rt, *rt2;
	int in_task;
	int checked;
} nest_frame;

static void check_nesting(edo_runtime *rt, edo_runtime *rt2)
{
	slot s = SLOT_INIT;
	s.released = 1;
	slot_fut f = {{&slot_vt}, &s};
	CHECK_EQ(edo_block_on(rt, &f.base), -EBUSY);
	CHECK_EQ(edo_block_on(rt2, &f.base), -EBUSY); /* another runtime: still nested */
	CHECK_EQ(edo_runtime_free(rt), -EBUSY);
	CHECK_EQ(edo_runtime_free(rt2), -EBUSY);
	CHECK_EQ(atomic_load(&s.polls), 0);
}

EDO_ASYNC(nest_task, nest_frame, NULL)
{
	EDO_BEGIN();
	CHECK_NE(edo_task_id(), 0);
	check_nesting(self->rt, self->rt2);
	EDO_YIELD();
	check_nesting(self->rt, self->rt2); /* on a later poll too */
	self->checked = 1;
	EDO_END();
}

typedef struct nest_main_frame {
	EDO_FRAME;
	edo_runtime *rt, *rt2;
	edo_join *h;
	int rc;
	nest_frame out;
} nest_main_frame;

EDO_ASYNC(nest_main, nest_main_frame, NULL)
{
	EDO_BEGIN();
	check_nesting(self->rt, self->rt2); /* the block_on future itself */
	CHECK_EQ(EDO_SPAWN(&self->h, nest_task, .rt = self->rt, .rt2 = self->rt2), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	self->out = *EDO_JOIN_OUTPUT(self->h, nest_task);
	edo_join_detach(self->h);
	EDO_END();
}

TEST(nested_block_on_and_free_inside_runtime_are_busy)
{
	edo_runtime *rt = rt_new(), *rt2 = rt_new();
	nest_main_frame m = {EDO_FRAME_INIT(nest_main), .rt = rt, .rt2 = rt2};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(m.out.checked, 1);
	/* Both runtimes still work after the refusals. */
	atomic_long count = 0;
	spawn_n_frame s = {EDO_FRAME_INIT(spawn_n_main), .count = &count, .n = 10};
	CHECK_EQ(edo_block_on(rt2, &s.edo_base), 0);
	CHECK_EQ(atomic_load(&count), 10);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(edo_runtime_free(rt2), 0);
}

/* Two threads block_on one runtime: the second is refused. */
typedef struct bo_thread {
	edo_runtime *rt;
	edo_future *f;
	int rc;
	pthread_t th;
	pthread_t self;
} bo_thread;

static void *bo_thread_main(void *arg)
{
	bo_thread *b = arg;
	b->self = pthread_self();
	b->rc = edo_block_on(b->rt, b->f);
	return NULL;
}

TEST(concurrent_block_on_is_busy)
{
	edo_runtime *rt = rt_new();
	slot s = SLOT_INIT;
	slot_fut f = {{&slot_vt}, &s};
	bo_thread a = {rt, &f.base, 1, 0, 0};
	CHECK_EQ(pthread_create(&a.th, NULL, bo_thread_main, &a), 0);
	wait_flag(&s.entered); /* a is inside block_on now */
	slot s2 = SLOT_INIT;
	s2.released = 1;
	slot_fut f2 = {{&slot_vt}, &s2};
	CHECK_EQ(edo_block_on(rt, &f2.base), -EBUSY);
	CHECK_EQ(edo_runtime_free(rt), -EBUSY); /* and changes nothing */
	CHECK_EQ(atomic_load(&s2.polls), 0);
	/* A spurious wake from here: polled again, still pending. */
	slot_poke(&s);
	while (atomic_load(&s.polls) < 2)
		sched_yield();
	slot_release(&s, true);
	CHECK_EQ(pthread_join(a.th, NULL), 0);
	CHECK_EQ(a.rc, 0);
	CHECK_EQ(atomic_load(&s.polls), 3);
	/* Once it is out, this thread may block_on. */
	CHECK_EQ(edo_block_on(rt, &f2.base), 0);
	CHECK_EQ(atomic_load(&s2.polls), 1);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(atomic_load(&s.drops) + atomic_load(&s2.drops), 0);
}

/* Threads take turns: a task started under one block_on continues under
 * another thread's. */
typedef struct turn_task_frame {
	EDO_FRAME;
	slot *s;
	slot_fut f;
	pthread_t first, second;
} turn_task_frame;

EDO_ASYNC(turn_task, turn_task_frame, NULL)
{
	EDO_BEGIN();
	self->first = pthread_self();
	self->f = (slot_fut){{&slot_vt}, self->s};
	EDO_AWAIT(&self->f);
	self->second = pthread_self();
	EDO_END();
}

typedef struct turn1_frame {
	EDO_FRAME;
	slot *s;
	edo_join **h;
} turn1_frame;

EDO_ASYNC(turn1, turn1_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(self->h, turn_task, .s = self->s), 0);
	while (!atomic_load(&self->s->entered))
		EDO_YIELD();
	EDO_END();
}

typedef struct turn2_frame {
	EDO_FRAME;
	slot *s;
	edo_join *h;
	int rc;
	turn_task_frame out;
} turn2_frame;

EDO_ASYNC(turn2, turn2_frame, NULL)
{
	EDO_BEGIN();
	slot_release(self->s, false);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	self->out = *EDO_JOIN_OUTPUT(self->h, turn_task);
	edo_join_detach(self->h);
	EDO_END();
}

TEST(block_on_from_another_thread_after_the_first)
{
	edo_runtime *rt = rt_new();
	slot s = SLOT_INIT;
	edo_join *h = NULL;
	turn1_frame m1 = {EDO_FRAME_INIT(turn1), .s = &s, .h = &h};
	CHECK_EQ(edo_block_on(rt, &m1.edo_base), 0);
	CHECK(h != NULL);
	CHECK(!edo_join_is_finished(h));
	turn2_frame m2 = {EDO_FRAME_INIT(turn2), .s = &s, .h = h};
	bo_thread b = {rt, &m2.edo_base, 1, 0, 0};
	CHECK_EQ(pthread_create(&b.th, NULL, bo_thread_main, &b), 0);
	CHECK_EQ(pthread_join(b.th, NULL), 0);
	CHECK_EQ(b.rc, 0);
	CHECK(pthread_equal(m2.out.first, pthread_self()));
	CHECK(pthread_equal(m2.out.second, b.self));
	CHECK_EQ(atomic_load(&s.polls), 2);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* Wakes of the block_on future from another thread unpark the runtime. */
typedef struct parks {
	atomic_int park, unpark;
} parks;

static void on_park(void *ud)
{
	atomic_fetch_add(&((parks *)ud)->park, 1);
}

static void on_unpark(void *ud)
{
	atomic_fetch_add(&((parks *)ud)->unpark, 1);
}

typedef struct remote_waker {
	slot *s;
	parks *p;
	int rounds;
	pthread_t th;
} remote_waker;

static void *remote_waker_main(void *arg)
{
	remote_waker *rw = arg;
	for (int r = 0; r < rw->rounds; r++) {
		/* Wait until the runtime thread sleeps, then wake it. */
		while (atomic_load(&rw->p->park) <= r)
			test_sleep_ms(1);
		if (r + 1 == rw->rounds) {
			slot_release(rw->s, r & 1);
		} else {
			int before = atomic_load(&rw->s->polls);
			slot_poke(rw->s);
			while (atomic_load(&rw->s->polls) == before)
				sched_yield();
		}
	}
	return NULL;
}

TEST(remote_wake_unparks_block_on)
{
	parks p = {0};
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.hooks.on_thread_park = on_park;
	b.hooks.on_thread_unpark = on_unpark;
	b.hooks_ud = &p;
	edo_runtime *rt = NULL;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	slot s = SLOT_INIT;
	slot_fut f = {{&slot_vt}, &s};
	remote_waker rw = {&s, &p, 20, 0};
	CHECK_EQ(pthread_create(&rw.th, NULL, remote_waker_main, &rw), 0);
	CHECK_EQ(edo_block_on(rt, &f.base), 0);
	CHECK_EQ(pthread_join(rw.th, NULL), 0);
	/* One poll per wake, plus the first. */
	CHECK_EQ(atomic_load(&s.polls), 21);
	CHECK_EQ(atomic_load(&p.park), 20);
	CHECK_EQ(atomic_load(&p.unpark), 20);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* The same without waiting for the park: wakes race with parking. */
static void *racing_waker_main(void *arg)
{
	remote_waker *rw = arg;
	for (int r = 0; r < rw->rounds; r++) {
		while (!atomic_load(&rw->s->entered))
			sched_yield();
		if (r + 1 == rw->rounds) {
			slot_release(rw->s, r & 1);
			break;
		}
		atomic_store(&rw->s->entered, 0);
		slot_poke(rw->s);
	}
	return NULL;
}

TEST(remote_wake_races_park)
{
	edo_runtime *rt = rt_new();
	slot s = SLOT_INIT;
	slot_fut f = {{&slot_vt}, &s};
	remote_waker rw = {&s, NULL, (int)test_scale(20000), 0};
	CHECK_EQ(pthread_create(&rw.th, NULL, racing_waker_main, &rw), 0);
	CHECK_EQ(edo_block_on(rt, &f.base), 0);
	CHECK_EQ(pthread_join(rw.th, NULL), 0);
	/* The helper waits for the poll that each poke causes before the next
	 * one: a lost wake hangs, a spurious poll shows here. */
	CHECK_EQ(atomic_load(&s.polls), rw.rounds + 1);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* A task wakes the block_on future (same thread: no unpark needed). */
typedef struct waker_task_frame {
	EDO_FRAME;
	slot *s;
} waker_task_frame;

EDO_ASYNC(waker_task, waker_task_frame, NULL)
{
	EDO_BEGIN();
	while (!atomic_load(&self->s->entered))
		EDO_YIELD();
	slot_release(self->s, true);
	EDO_END();
}

typedef struct local_wake_frame {
	EDO_FRAME;
	slot *s;
	slot_fut f;
} local_wake_frame;

EDO_ASYNC(local_wake_main, local_wake_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(NULL, waker_task, .s = self->s), 0);
	self->f = (slot_fut){{&slot_vt}, self->s};
	EDO_AWAIT(&self->f);
	EDO_END();
}

TEST(task_wakes_block_on_future)
{
	edo_runtime *rt = rt_new();
	slot s = SLOT_INIT;
	local_wake_frame m = {EDO_FRAME_INIT(local_wake_main), .s = &s};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(atomic_load(&s.polls), 2);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* A clone of the block_on future's waker outlives the runtime. */
static edo_waker kept_waker;

typedef struct keep_frame {
	EDO_FRAME;
} keep_frame;

EDO_ASYNC(keep_main, keep_frame, NULL)
{
	EDO_BEGIN();
	kept_waker = edo_waker_clone(cx->waker);
	EDO_END();
}

TEST(block_on_waker_outlives_runtime)
{
	edo_runtime *rt = rt_new();
	keep_frame m = {EDO_FRAME_INIT(keep_main)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK(kept_waker.vt != NULL);
	edo_waker_wake_by_ref(&kept_waker); /* after block_on returned */
	CHECK_EQ(edo_runtime_free(rt), 0);
	edo_waker_wake_by_ref(&kept_waker); /* after the runtime was freed */
	edo_waker c = edo_waker_clone(&kept_waker);
	edo_waker_drop(edo_waker_take(&kept_waker));
	edo_waker_wake(c); /* the last reference */
}

/* Spawns from other threads, through handles, while block_on runs parked:
 * each spawn unparks the runtime; the last task releases the block_on
 * future. */
typedef struct signal_frame {
	EDO_FRAME;
	slot *s;
	atomic_long *count;
	long target;
} signal_frame;

EDO_ASYNC(signal_task, signal_frame, NULL)
{
	EDO_BEGIN();
	if (atomic_fetch_add(self->count, 1) + 1 == self->target)
		slot_release(self->s, true);
	EDO_END();
}

typedef struct remote_spawner {
	edo_handle *h;
	slot *s;
	atomic_long *count;
	long n, target;
	pthread_t th;
} remote_spawner;

static void *remote_spawner_main(void *arg)
{
	remote_spawner *rs = arg;
	CHECK(edo_handle_current() == NULL);
	for (long i = 0; i < rs->n; i++) {
		CHECK_EQ(EDO_SPAWN_ON(rs->h, NULL, signal_task, .s = rs->s, .count = rs->count,
				      .target = rs->target),
			 0);
		if (i % 64 == 0)
			sched_yield();
	}
	return NULL;
}

TEST(spawn_from_other_threads_while_block_on_runs)
{
	enum { NTH = 2 };
	edo_runtime *rt = rt_new();
	atomic_long count = 0;
	long per = test_scale(20000);
	slot s = SLOT_INIT;
	remote_spawner rs[NTH];
	for (int i = 0; i < NTH; i++) {
		rs[i] = (remote_spawner){edo_runtime_handle(rt), &s, &count, per, NTH * per, 0};
		CHECK_EQ(pthread_create(&rs[i].th, NULL, remote_spawner_main, &rs[i]), 0);
	}
	slot_fut f = {{&slot_vt}, &s};
	CHECK_EQ(edo_block_on(rt, &f.base), 0);
	CHECK_EQ(atomic_load(&count), NTH * per);
	for (int i = 0; i < NTH; i++) {
		CHECK_EQ(pthread_join(rs[i].th, NULL), 0);
		edo_handle_drop(rs[i].h);
	}
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* Two runtimes on two threads: tasks of runtime A spawn onto runtime B
 * through its handle and join there; B's thread completes them and wakes
 * A's tasks (and A's block_on future) from outside A. */
typedef struct b_work_frame {
	EDO_FRAME;
	long in, out;
	pthread_t ran_on;
	int yields;
} b_work_frame;

EDO_ASYNC(b_work, b_work_frame, NULL)
{
	EDO_BEGIN();
	self->ran_on = pthread_self();
	while (self->yields-- > 0)
		EDO_YIELD();
	self->out = self->in * 3;
	EDO_END();
}

typedef struct a_caller_frame {
	EDO_FRAME;
	edo_handle *hb;
	pthread_t b_thread;
	long n, i;
	edo_join *h;
	int rc;
	long done;
} a_caller_frame;

EDO_ASYNC(a_caller, a_caller_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++) {
		CHECK_EQ(EDO_SPAWN_ON(self->hb, &self->h, b_work, .in = self->i,
				      .yields = (int)(self->i % 3)),
			 0);
		EDO_AWAIT_JOIN(self->h, &self->rc);
		CHECK_EQ(self->rc, 0);
		b_work_frame *o = EDO_JOIN_OUTPUT(self->h, b_work);
		CHECK_EQ(o->out, 3 * self->i);
		CHECK(pthread_equal(o->ran_on, self->b_thread));
		edo_join_detach(self->h);
		self->done++;
	}
	EDO_END();
}

typedef struct a_main_frame {
	EDO_FRAME;
	edo_handle *hb;
	pthread_t b_thread;
	long n;
	edo_join *h;
	int rc;
	a_caller_frame direct; /* the block_on future's own calls */
	long task_done;
} a_main_frame;

EDO_ASYNC(a_main, a_main_frame, NULL)
{
	EDO_BEGIN();
	/* A task of A calls B (its waker is woken from B's thread)... */
	CHECK_EQ(EDO_SPAWN(&self->h, a_caller, .hb = self->hb, .b_thread = self->b_thread,
			   .n = self->n),
		 0);
	/* ...and so does the block_on future itself, meanwhile. */
	self->direct = (a_caller_frame){EDO_FRAME_INIT(a_caller), .hb = self->hb,
					.b_thread = self->b_thread, .n = self->n};
	EDO_AWAIT(&self->direct);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	self->task_done = EDO_JOIN_OUTPUT(self->h, a_caller)->done;
	edo_join_detach(self->h);
	EDO_END();
}

TEST(cross_runtime_spawn_and_join)
{
	edo_runtime *a = rt_new(), *b = rt_new();
	slot stop = SLOT_INIT;
	slot_fut bf = {{&slot_vt}, &stop};
	bo_thread bt = {b, &bf.base, 1, 0, 0};
	CHECK_EQ(pthread_create(&bt.th, NULL, bo_thread_main, &bt), 0);
	wait_flag(&stop.entered); /* B's thread is inside block_on: bt.self is set */
	edo_handle *hb = edo_runtime_handle(b);
	a_main_frame m = {EDO_FRAME_INIT(a_main), .hb = hb, .b_thread = bt.self,
			  .n = test_scale(2000)};
	CHECK_EQ(edo_block_on(a, &m.edo_base), 0);
	CHECK_EQ(m.direct.done, m.n);
	CHECK_EQ(m.task_done, m.n);
	slot_release(&stop, true);
	CHECK_EQ(pthread_join(bt.th, NULL), 0);
	CHECK_EQ(bt.rc, 0);
	CHECK_EQ(edo_handle_alive_tasks(hb), 0);
	edo_handle_drop(hb);
	CHECK_EQ(edo_runtime_free(a), 0);
	CHECK_EQ(edo_runtime_free(b), 0);
}

/* ==== handles ==================================================================== */

typedef struct handle_main_frame {
	EDO_FRAME;
	edo_handle *outer;
	slot *forever;
	atomic_long *count;
	size_t alive_seen;
	int same;
	int done;
} handle_main_frame;

EDO_ASYNC(handle_main, handle_main_frame, NULL)
{
	EDO_BEGIN();
	{
		edo_handle *cur = edo_handle_current();
		CHECK(cur != NULL);
		CHECK_EQ(edo_handle_flavor(cur), EDO_RT_CURRENT_THREAD);
		/* The current handle reaches the same runtime. */
		CHECK_EQ(EDO_SPAWN_ON(cur, NULL, count_task, .count = self->count), 0);
		edo_handle_drop(cur);
	}
	while (atomic_load(self->count) < 3)
		EDO_YIELD();
	{
		edo_handle *cur = edo_handle_current();
		self->alive_seen = edo_handle_alive_tasks(cur);
		CHECK_EQ(edo_handle_alive_tasks(self->outer), self->alive_seen);
		edo_handle_drop(cur);
	}
	self->done = 1;
	EDO_END();
}

TEST(handles)
{
	CHECK(edo_handle_current() == NULL);
	CHECK(edo_runtime_handle(NULL) == NULL);
	edo_handle_drop(NULL);
	edo_runtime *rt = rt_new();
	edo_handle *h = edo_runtime_handle(rt);
	CHECK(h != NULL);
	edo_handle *h2 = edo_handle_clone(h);
	CHECK(h2 != NULL);
	CHECK_EQ(edo_handle_flavor(h), EDO_RT_CURRENT_THREAD);
	CHECK_EQ(edo_handle_flavor(h2), EDO_RT_CURRENT_THREAD);
	CHECK_EQ(edo_handle_alive_tasks(h), 0);
	CHECK(edo_handle_current() == NULL); /* having a handle is not being inside */

	/* Spawn from outside any runtime, through the handle: queued until a
	 * block_on runs the runtime. */
	atomic_long count = 0;
	slot forever = SLOT_INIT;
	for (int i = 0; i < 2; i++)
		CHECK_EQ(EDO_SPAWN_ON(h, NULL, count_task, .count = &count), 0);
	edo_join *fj[3];
	for (int i = 0; i < 3; i++) {
		slot_fut f = {{&slot_vt}, &forever};
		CHECK_EQ(edo_spawn_on(h2, &f.base, sizeof f, NULL, &fj[i]), 0);
	}
	CHECK_EQ(edo_handle_alive_tasks(h), 5);
	CHECK_EQ(atomic_load(&count), 0);

	handle_main_frame m = {EDO_FRAME_INIT(handle_main), .outer = h, .forever = &forever,
			       .count = &count};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(m.done, 1);
	CHECK_EQ(atomic_load(&count), 3);
	CHECK_EQ(m.alive_seen, 3); /* the three pending ones */
	CHECK_EQ(edo_handle_alive_tasks(h), 3);
	CHECK_EQ(atomic_load(&forever.polls), 3);

	CHECK_EQ(edo_runtime_free(rt), 0);
	/* Handles outlive the runtime. */
	CHECK_EQ(edo_handle_alive_tasks(h), 0);
	CHECK_EQ(edo_handle_flavor(h2), EDO_RT_CURRENT_THREAD);
	CHECK_EQ(EDO_SPAWN_ON(h, NULL, count_task, .count = &count), EDO_ESHUTDOWN);
	CHECK_EQ(atomic_load(&forever.drops), 3);
	for (int i = 0; i < 3; i++) {
		edo_cx cx = {edo_noop_waker()};
		int rc = 0;
		CHECK_EQ(edo_join_poll(fj[i], &cx, &rc), EDO_READY);
		CHECK_EQ(rc, -ECANCELED);
		edo_join_detach(fj[i]);
	}
	edo_handle_drop(h);
	CHECK_EQ(edo_handle_alive_tasks(h2), 0);
	edo_handle_drop(h2);
	/* The waker the pending tasks left in the slot is still safe to drop. */
	edo_waker_drop(edo_waker_take(&forever.w));
}

/* ==== edo_strerror ================================================================ */

TEST(strerror_of_every_code)
{
	CHECK_STREQ(edo_strerror(0), "success");
	/* Edo's own codes. */
	CHECK_STREQ(edo_strerror(EDO_ECLOSED), "closed");
	CHECK_STREQ(edo_strerror(EDO_ELAGGED), "receiver lagged behind; values were skipped");
	CHECK_STREQ(edo_strerror(EDO_ENORUNTIME),
		    "no runtime: must be called from a task or edo_block_on");
	CHECK_STREQ(edo_strerror(EDO_ESHUTDOWN), "the runtime is shut down");
	CHECK_STREQ(edo_strerror(EDO_EEOF), "unexpected end of stream");
	for (int e = EDO_ERR_LAST; e < EDO_ERR_BASE; e++) {
		const char *s = edo_strerror(e);
		CHECK(s != NULL);
		CHECK(strcmp(s, "unknown error") != 0);
	}
	/* The range is disjoint from every errno value. */
	CHECK_LT(EDO_ERR_BASE, -4096);
	CHECK_LT(EDO_ERR_LAST, EDO_ERR_BASE);
	/* errno values, negated (as Edo returns them) or not. */
	CHECK_STREQ(edo_strerror(-EINVAL), "Invalid argument");
	CHECK_STREQ(edo_strerror(EINVAL), "Invalid argument");
	CHECK_STREQ(edo_strerror(-ECANCELED), "Operation canceled");
	CHECK_STREQ(edo_strerror(-ETIMEDOUT), "Connection timed out");
	CHECK_STREQ(edo_strerror(-ENOMEM), "Cannot allocate memory");
	CHECK_STREQ(edo_strerror(-EBUSY), "Device or resource busy");
	CHECK_STREQ(edo_strerror(-ENOTSUP), "Operation not supported");
	for (int e = 1; e < 4096; e++) {
		const char *want = strerrordesc_np(e);
		const char *neg = edo_strerror(-e), *pos = edo_strerror(e);
		CHECK(neg != NULL);
		CHECK(pos != NULL);
		CHECK_STREQ(neg, pos);
		CHECK_STREQ(neg, want ? want : "unknown error");
	}
	/* Anything else. */
	CHECK_STREQ(edo_strerror(-4096), "unknown error");
	CHECK_STREQ(edo_strerror(4096), "unknown error");
	CHECK_STREQ(edo_strerror(EDO_ERR_BASE), "unknown error");
	CHECK_STREQ(edo_strerror(EDO_ERR_LAST - 1), "unknown error");
	CHECK_STREQ(edo_strerror(-100000), "unknown error");
	CHECK_STREQ(edo_strerror(INT_MAX), "unknown error");
	CHECK_STREQ(edo_strerror(INT_MIN), "unknown error");
	CHECK_STREQ(edo_strerror(INT_MIN + 1), "unknown error");
}

/* Builder input refused after threads started would have run hooks: these
 * are all refused before any thread starts. */
static atomic_int bld_started;

static void bld_on_start(void *ud)
{
	(void)ud;
	atomic_fetch_add(&bld_started, 1);
}

TEST(failed_build_runs_no_hook)
{
	char file[] = "/tmp/edo-bld-XXXXXX";
	int fd = mkstemp(file);
	CHECK_GE(fd, 0);
	close(fd);
	char missing[64];
	(void)snprintf(missing, sizeof missing, "%s.missing/console", file);
	struct {
		int sig;
		const char *path;
	} bad[] = {{32, NULL}, {33, NULL}, {0, file}, {0, missing}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		for (int mt = 0; mt <= 1; mt++) {
			edo_runtime_builder b;
			edo_runtime_builder_init(&b,
						 mt ? EDO_RT_MULTI_THREAD : EDO_RT_CURRENT_THREAD);
			b.worker_threads = 2;
			b.hooks.on_thread_start = bld_on_start;
			b.dump_signal = bad[i].sig;
			b.console_path = bad[i].path;
			static char sentinel;
			edo_runtime *rt = (edo_runtime *)(void *)&sentinel;
			CHECK_LT(edo_runtime_build(&b, &rt), 0);
			CHECK(rt == (edo_runtime *)(void *)&sentinel);
			CHECK_EQ(atomic_load(&bld_started), 0);
		}
	}
	unlink(file);
}

TEST_MAIN()
