/* Tasks: the state machine (wake before/during/after a poll, from this and
 * other threads), abort in every state, join handles, spawning during and
 * after shutdown, a million tasks, the cooperative budget, yielding,
 * task-local storage, ids and names, and the runtime hooks. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"
#include "runtime/task/state.h"

/* ---- shared helpers ---------------------------------------------------------- */

static edo_runtime *rt_new(void)
{
	edo_runtime *rt = NULL;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	CHECK(rt != NULL);
	return rt;
}

static void backoff(unsigned *spins)
{
	if (++*spins < 64)
		__asm__ volatile("" ::: "memory");
	else
		sched_yield();
}

/* A word one thread sleeps on until another changes it: a short spin, then
 * a futex sleep.  On a loaded machine a thread that sleeps in the kernel is
 * run again promptly when woken, while one that spins in sched_yield() is
 * pushed back behind every other runnable process. */
typedef struct event {
	atomic_int word;
	atomic_int sleepers;
} event;

static void event_wait_spin(event *e, int val, int spins)
{
	for (int i = 0; i < spins; i++) {
		if (atomic_load(&e->word) != val)
			return;
		__asm__ volatile("" ::: "memory");
	}
	atomic_fetch_add(&e->sleepers, 1);
	while (atomic_load(&e->word) == val)
		syscall(SYS_futex, &e->word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
	atomic_fetch_sub(&e->sleepers, 1);
}

static void event_wait_while(event *e, int val)
{
	event_wait_spin(e, val, 256);
}

/* Set the word (seq_cst, as the sleepers check below: either the sleeper
 * sees the new value or we see the sleeper) and wake any sleeper. */
static void event_set(event *e, int val)
{
	atomic_store(&e->word, val);
	if (atomic_load(&e->sleepers))
		syscall(SYS_futex, &e->word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static void event_bump(event *e)
{
	atomic_fetch_add(&e->word, 1);
	if (atomic_load(&e->sleepers))
		syscall(SYS_futex, &e->word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

/* A waker that counts its wakes (data points at an atomic_int). */
static edo_waker cw_clone(const void *d);
static void cw_wake(const void *d)
{
	atomic_fetch_add((atomic_int *)(uintptr_t)d, 1);
}
static void cw_drop(const void *d)
{
	(void)d;
}
static const edo_waker_vtable cw_vt = {cw_clone, cw_wake, cw_wake, cw_drop};
static edo_waker cw_clone(const void *d)
{
	return (edo_waker){&cw_vt, d};
}

/* ---- a probe: a hand-written future whose behaviour the test picks ------------- */

enum probe_mode {
	P_READY,            /* READY at once */
	P_WAKE_REF,         /* wake_by_ref itself and return PENDING, n times */
	P_WAKE_VAL,         /* clone + wake by value, n times */
	P_WAKE_MANY,        /* three wakes in one poll (ref, value, ref), n times */
	P_STASH,            /* stash a waker clone; PENDING until st->release */
	P_STASH_READY,      /* stash a waker clone and complete */
	P_FOREVER,          /* PENDING forever, keeping no waker */
	P_SELF_ABORT,       /* abort itself through st->ah; PENDING */
	P_SELF_ABORT_READY, /* abort itself; READY */
	P_SELF_ABORT_WAKE,  /* abort itself, wake itself; PENDING */
	P_SPIN_FLAG,        /* announce in_poll, spin until st->flag; PENDING */
};

typedef struct probe_state {
	atomic_int polls, drops, readies;
	atomic_int release; /* P_STASH: complete at the next poll */
	atomic_int in_poll; /* P_SPIN_FLAG: the poll has started */
	atomic_int flag;    /* P_SPIN_FLAG: leave the poll */
	int n;              /* P_WAKE_*: self-wakes before READY */
	edo_waker stash;    /* P_STASH*: the stashed waker */
	edo_abort_handle *ah;
} probe_state;

typedef struct probe {
	edo_future base;
	probe_state *st;
	int mode;
} probe;

static edo_poll probe_poll(edo_future *f, edo_cx *cx)
{
	probe *p = (probe *)f;
	probe_state *st = p->st;
	int k = atomic_fetch_add(&st->polls, 1);
	switch (p->mode) {
	case P_READY:
		break;
	case P_WAKE_REF:
		if (k < st->n) {
			edo_waker_wake_by_ref(cx->waker);
			return EDO_PENDING;
		}
		break;
	case P_WAKE_VAL:
		if (k < st->n) {
			edo_waker_wake(edo_waker_clone(cx->waker));
			return EDO_PENDING;
		}
		break;
	case P_WAKE_MANY:
		if (k < st->n) {
			edo_waker_wake_by_ref(cx->waker);
			edo_waker_wake(edo_waker_clone(cx->waker));
			edo_waker_wake_by_ref(cx->waker);
			return EDO_PENDING;
		}
		break;
	case P_STASH:
		if (!atomic_load(&st->release)) {
			edo_waker_set(&st->stash, cx->waker);
			return EDO_PENDING;
		}
		break;
	case P_STASH_READY:
		edo_waker_set(&st->stash, cx->waker);
		break;
	case P_FOREVER:
		return EDO_PENDING;
	case P_SELF_ABORT:
		edo_abort_handle_abort(st->ah);
		return EDO_PENDING;
	case P_SELF_ABORT_READY:
		edo_abort_handle_abort(st->ah);
		break;
	case P_SELF_ABORT_WAKE:
		edo_abort_handle_abort(st->ah);
		edo_waker_wake_by_ref(cx->waker);
		return EDO_PENDING;
	case P_SPIN_FLAG: {
		atomic_store(&st->in_poll, 1);
		unsigned spins = 0;
		while (!atomic_load(&st->flag))
			backoff(&spins);
		return EDO_PENDING;
	}
	}
	atomic_fetch_add(&st->readies, 1);
	return EDO_READY;
}

static void probe_drop(edo_future *f)
{
	atomic_fetch_add(&((probe *)f)->st->drops, 1);
}

static const edo_future_vtable probe_vt = {.poll = probe_poll, .drop = probe_drop};

#define PROBE(st_, mode_) ((probe){.base = {&probe_vt}, .st = (st_), .mode = (mode_)})

/* ---- run1: spawn one future, await it, detach ------------------------------------ */

typedef struct run1_frame {
	EDO_FRAME;
	const edo_future *init;
	size_t size;
	edo_join *h;
	int rc;
} run1_frame;

EDO_ASYNC(run1, run1_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_spawn(self->init, self->size, &self->h), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK(edo_join_is_finished(self->h));
	edo_join_detach(self->h);
	EDO_END();
}

/* Spawn @p on a fresh runtime, join it; returns the join result. */
static int spawn_and_join(probe p)
{
	edo_runtime *rt = rt_new();
	run1_frame m = {EDO_FRAME_INIT(run1), .init = &p.base, .size = sizeof p, .rc = 12345};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	return m.rc;
}

/* ==== wakes before, during and after a poll ======================================== */

TEST(wake_by_ref_during_poll)
{
	probe_state st = {.n = 5};
	CHECK_EQ(spawn_and_join(PROBE(&st, P_WAKE_REF)), 0);
	CHECK_EQ(atomic_load(&st.polls), 6); /* each wake: exactly one more poll */
	CHECK_EQ(atomic_load(&st.readies), 1);
	CHECK_EQ(atomic_load(&st.drops), 0);
}

TEST(wake_by_value_during_poll)
{
	probe_state st = {.n = 7};
	CHECK_EQ(spawn_and_join(PROBE(&st, P_WAKE_VAL)), 0);
	CHECK_EQ(atomic_load(&st.polls), 8);
	CHECK_EQ(atomic_load(&st.readies), 1);
	CHECK_EQ(atomic_load(&st.drops), 0);
}

TEST(several_wakes_in_one_poll_coalesce)
{
	probe_state st = {.n = 4};
	CHECK_EQ(spawn_and_join(PROBE(&st, P_WAKE_MANY)), 0);
	/* Three wakes during one poll still mean one re-poll. */
	CHECK_EQ(atomic_load(&st.polls), 5);
	CHECK_EQ(atomic_load(&st.readies), 1);
}

/* The main coroutine of the stash tests. */
typedef struct stash_main_frame {
	EDO_FRAME;
	probe_state *st;
	probe p;
	edo_join *h;
	int rc;
	int i;
} stash_main_frame;

EDO_ASYNC(wake_after_idle_main, stash_main_frame, NULL)
{
	EDO_BEGIN();
	self->p = PROBE(self->st, P_STASH);
	CHECK_EQ(edo_spawn(&self->p.base, sizeof self->p, &self->h), 0);
	while (atomic_load(&self->st->polls) < 1)
		EDO_YIELD();
	/* Idle now: no wake, no poll, however long we wait. */
	for (self->i = 0; self->i < 10; self->i++)
		EDO_YIELD();
	CHECK_EQ(atomic_load(&self->st->polls), 1);
	CHECK(!edo_join_is_finished(self->h));
	CHECK(self->st->stash.vt != NULL);
	/* A wake by reference of an idle task: exactly one more poll. */
	edo_waker_wake_by_ref(&self->st->stash);
	while (atomic_load(&self->st->polls) < 2)
		EDO_YIELD();
	for (self->i = 0; self->i < 5; self->i++)
		EDO_YIELD();
	CHECK_EQ(atomic_load(&self->st->polls), 2);
	/* Two wakes while idle (by reference, then by value): one poll. */
	atomic_store(&self->st->release, 1);
	edo_waker_wake_by_ref(&self->st->stash);
	edo_waker_wake(edo_waker_take(&self->st->stash));
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	CHECK_EQ(atomic_load(&self->st->polls), 3);
	edo_join_detach(self->h);
	EDO_END();
}

TEST(wake_after_poll_when_idle)
{
	probe_state st = {0};
	edo_runtime *rt = rt_new();
	stash_main_frame m = {EDO_FRAME_INIT(wake_after_idle_main), .st = &st};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(atomic_load(&st.readies), 1);
	CHECK_EQ(atomic_load(&st.drops), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

EDO_ASYNC(wake_after_complete_main, stash_main_frame, NULL)
{
	EDO_BEGIN();
	self->p = PROBE(self->st, P_STASH_READY);
	CHECK_EQ(edo_spawn(&self->p.base, sizeof self->p, &self->h), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	CHECK_EQ(atomic_load(&self->st->polls), 1);
	/* Wakes of a completed task are no-ops. */
	edo_waker_wake_by_ref(&self->st->stash);
	edo_waker_wake(edo_waker_clone(&self->st->stash));
	for (self->i = 0; self->i < 5; self->i++)
		EDO_YIELD();
	CHECK_EQ(atomic_load(&self->st->polls), 1);
	/* The waker keeps the task's memory alive after the handle goes. */
	edo_join_detach(self->h);
	edo_waker_wake_by_ref(&self->st->stash);
	edo_waker w2 = edo_waker_clone(&self->st->stash);
	edo_waker_drop(edo_waker_take(&self->st->stash));
	edo_waker_wake(w2); /* the last reference: frees the task */
	for (self->i = 0; self->i < 3; self->i++)
		EDO_YIELD();
	CHECK_EQ(atomic_load(&self->st->polls), 1);
	EDO_END();
}

TEST(wake_after_completion_is_noop)
{
	probe_state st = {0};
	edo_runtime *rt = rt_new();
	stash_main_frame m = {EDO_FRAME_INIT(wake_after_complete_main), .st = &st};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(atomic_load(&st.readies), 1);
	CHECK_EQ(atomic_load(&st.drops), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* Spawn the probes given, detached, and wait until each was polled once. */
typedef struct spawn_all_frame {
	EDO_FRAME;
	probe *p;
	int n;
	int i;
} spawn_all_frame;

EDO_ASYNC(spawn_all_main, spawn_all_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++)
		CHECK_EQ(edo_spawn(&self->p[self->i].base, sizeof(probe), NULL), 0);
	for (self->i = 0; self->i < self->n; self->i++)
		while (atomic_load(&self->p[self->i].st->polls) < 1)
			EDO_YIELD();
	EDO_END();
}

TEST(waker_outlives_task_and_runtime)
{
	for (int order = 0; order < 2; order++) {
		probe_state a = {0}, b = {0};
		probe ps[2] = {PROBE(&a, P_STASH), PROBE(&b, P_STASH_READY)};
		edo_runtime *rt = rt_new();
		edo_handle *h = edo_runtime_handle(rt);
		CHECK(h != NULL);
		spawn_all_frame m = {EDO_FRAME_INIT(spawn_all_main), .p = ps, .n = 2};
		CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
		CHECK_EQ(atomic_load(&b.readies), 1);
		CHECK_EQ(edo_handle_alive_tasks(h), 1);
		CHECK_EQ(edo_runtime_free(rt), 0);
		/* The pending task was cancelled; the finished one was not. */
		CHECK_EQ(atomic_load(&a.drops), 1);
		CHECK_EQ(atomic_load(&b.drops), 0);
		CHECK_EQ(edo_handle_alive_tasks(h), 0);
		if (order == 0)
			edo_handle_drop(h);
		/* Every waker operation is still safe, and does nothing. */
		edo_waker_wake_by_ref(&a.stash);
		edo_waker_wake_by_ref(&b.stash);
		edo_waker ac = edo_waker_clone(&a.stash);
		edo_waker bc = edo_waker_clone(&b.stash);
		edo_waker_wake(edo_waker_take(&a.stash));
		edo_waker_drop(edo_waker_take(&b.stash));
		edo_waker_drop(ac);
		edo_waker_wake(bc);
		if (order == 1)
			edo_handle_drop(h);
		CHECK_EQ(atomic_load(&a.polls), 1);
		CHECK_EQ(atomic_load(&b.polls), 1);
		CHECK_EQ(atomic_load(&a.drops), 1);
	}
}

/* ---- wake from another thread during a poll, a million times ----------------------- */

typedef struct xw_shared {
	atomic_long signals; /* sent by the helper before each wake */
	atomic_int have;     /* box holds a waker */
	event woke;          /* wakes the helper has completed */
	event *handed;       /* bumped whenever a task fills its box */
	edo_waker box;
	long n;
	long polls;  /* runtime thread only */
	long inside; /* wakes known to have landed inside a poll */
} xw_shared;

typedef struct xw_fut {
	edo_future base;
	xw_shared *sh;
} xw_fut;

static edo_poll xw_poll(edo_future *f, edo_cx *cx)
{
	xw_shared *sh = ((xw_fut *)f)->sh;
	long k = sh->polls++;
	long s = atomic_load_explicit(&sh->signals, memory_order_acquire);
	/* Poll k runs because of wake k, and signal k+1 needs the waker that
	 * this poll hands out: exactly k signals were sent.  A lost wake hangs
	 * the test; a spurious or duplicated poll fails here. */
	CHECK_EQ(s, k);
	if (s == sh->n)
		return EDO_READY;
	sh->box = edo_waker_clone(cx->waker);
	atomic_store_explicit(&sh->have, 1, memory_order_release);
	event_bump(sh->handed);
	switch (k % 3) {
	case 0:
		/* Stay inside the poll until the helper's wake has returned:
		 * this wake certainly found the task RUNNING. */
		for (int v; (v = atomic_load(&sh->woke.word)) != (int)k + 1;)
			event_wait_while(&sh->woke, v);
		sh->inside++;
		break;
	case 1:
		break; /* return at once: the wake lands during or after */
	default:
		for (unsigned i = 0; i < (unsigned)(k & 63); i++)
			__asm__ volatile("" ::: "memory");
		break;
	}
	return EDO_PENDING;
}

static const edo_future_vtable xw_vt = {.poll = xw_poll, .drop = NULL};

/* Serves the mailboxes of several tasks round-robin, so that the runtime
 * thread usually has another task to run while one waits for its wake. */
typedef struct xw_helper_arg {
	xw_shared *sh;
	int n;
	event handed;
} xw_helper_arg;

static void *xw_helper(void *arg)
{
	xw_helper_arg *a = arg;
	long left = 0;
	for (int t = 0; t < a->n; t++)
		left += a->sh[t].n;
	while (left > 0) {
		int seen = atomic_load(&a->handed.word);
		bool any = false;
		for (int t = 0; t < a->n; t++) {
			xw_shared *sh = &a->sh[t];
			if (!atomic_load_explicit(&sh->have, memory_order_acquire))
				continue;
			any = true;
			edo_waker w = sh->box;
			atomic_store_explicit(&sh->have, 0, memory_order_relaxed);
			long i = atomic_load_explicit(&sh->signals, memory_order_relaxed);
			atomic_store_explicit(&sh->signals, i + 1, memory_order_release);
			if (i & 1) {
				edo_waker_wake(w);
			} else {
				edo_waker_wake_by_ref(&w);
				edo_waker_drop(w);
			}
			event_set(&sh->woke, (int)(i + 1));
			left--;
		}
		if (!any)
			event_wait_while(&a->handed, seen);
	}
	return NULL;
}

typedef struct xw_main_frame {
	EDO_FRAME;
	xw_shared *sh;
	int n, i;
	edo_join *h[8];
	int rc;
} xw_main_frame;

EDO_ASYNC(xw_main, xw_main_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++) {
		xw_fut f = {{&xw_vt}, &self->sh[self->i]};
		CHECK_EQ(edo_spawn(&f.base, sizeof f, &self->h[self->i]), 0);
	}
	for (self->i = 0; self->i < self->n; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

TEST(wake_from_other_thread_during_poll_stress)
{
	enum { NT = 4 };
	long total = test_scale(1000000);
	xw_shared sh[NT];
	memset(sh, 0, sizeof sh);
	for (int t = 0; t < NT; t++)
		sh[t].n = total / NT + (t < total % NT);
	edo_runtime *rt = rt_new();
	pthread_t th;
	xw_helper_arg ha = {sh, NT, {0}};
	for (int t = 0; t < NT; t++)
		sh[t].handed = &ha.handed;
	CHECK_EQ(pthread_create(&th, NULL, xw_helper, &ha), 0);
	xw_main_frame m = {EDO_FRAME_INIT(xw_main), .sh = sh, .n = NT};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(pthread_join(th, NULL), 0);
	long wakes = 0;
	for (int t = 0; t < NT; t++) {
		/* Exactly one poll per wake, plus the first. */
		CHECK_EQ(sh[t].polls, sh[t].n + 1);
		CHECK_EQ(atomic_load(&sh[t].signals), sh[t].n);
		CHECK_EQ(atomic_load(&sh[t].woke.word), sh[t].n);
		CHECK_EQ(sh[t].inside, (sh[t].n + 2) / 3);
		wakes += sh[t].n;
	}
	CHECK_EQ(wakes, total);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* ==== abort ==================================================================== */

typedef struct abort_main_frame {
	EDO_FRAME;
	probe_state *st;
	probe p;
	int mode;
	int when; /* 0: before the first poll, 1: while pending, 2: after completion */
	edo_join *h;
	int rc;
	int i;
} abort_main_frame;

EDO_ASYNC(abort_main, abort_main_frame, NULL)
{
	EDO_BEGIN();
	self->p = PROBE(self->st, self->mode);
	CHECK_EQ(edo_spawn(&self->p.base, sizeof self->p, &self->h), 0);
	if (self->when == 0) {
		edo_join_abort(self->h);
		edo_join_abort(self->h); /* twice is fine */
	} else if (self->when == 1) {
		while (atomic_load(&self->st->polls) < 1)
			EDO_YIELD();
		CHECK(!edo_join_is_finished(self->h));
		edo_abort_handle *ah = edo_join_abort_handle(self->h);
		CHECK(ah != NULL);
		CHECK_EQ(edo_abort_handle_id(ah), edo_join_id(self->h));
		CHECK(!edo_abort_handle_is_finished(ah));
		edo_abort_handle_abort(ah);
		edo_abort_handle_drop(ah);
	}
	EDO_AWAIT_JOIN(self->h, &self->rc);
	if (self->when == 2) {
		CHECK_EQ(self->rc, 0);
		edo_join_abort(self->h);
		CHECK(edo_join_is_finished(self->h));
		EDO_AWAIT_JOIN(self->h, &self->rc); /* stays READY, still 0 */
		CHECK_EQ(self->rc, 0);
		CHECK(edo_join_output(self->h) != NULL);
	} else {
		CHECK_EQ(self->rc, -ECANCELED);
		CHECK(edo_join_output(self->h) == NULL);
	}
	CHECK(edo_join_is_finished(self->h));
	/* A stashed waker of the cancelled task: wakes do nothing. */
	edo_waker_wake_by_ref(&self->st->stash);
	for (self->i = 0; self->i < 3; self->i++)
		EDO_YIELD();
	edo_waker_drop(edo_waker_take(&self->st->stash));
	edo_join_detach(self->h);
	EDO_END();
}

static void run_abort(probe_state *st, int mode, int when)
{
	edo_runtime *rt = rt_new();
	abort_main_frame m = {EDO_FRAME_INIT(abort_main), .st = st, .mode = mode, .when = when};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(abort_before_first_poll)
{
	probe_state st = {0};
	run_abort(&st, P_READY, 0);
	CHECK_EQ(atomic_load(&st.polls), 0);
	CHECK_EQ(atomic_load(&st.drops), 1);
	CHECK_EQ(atomic_load(&st.readies), 0);
}

TEST(abort_while_pending)
{
	probe_state st = {0};
	run_abort(&st, P_STASH, 1);
	CHECK_EQ(atomic_load(&st.polls), 1);
	CHECK_EQ(atomic_load(&st.drops), 1);
	CHECK_EQ(atomic_load(&st.readies), 0);
}

TEST(abort_after_completion)
{
	probe_state st = {0};
	run_abort(&st, P_READY, 2);
	CHECK_EQ(atomic_load(&st.polls), 1);
	CHECK_EQ(atomic_load(&st.drops), 0);
	CHECK_EQ(atomic_load(&st.readies), 1);
}

/* The task aborts itself through an abort handle from inside its own poll. */
typedef struct self_abort_frame {
	EDO_FRAME;
	probe_state *st;
	probe p;
	int mode;
	edo_join *h;
	int rc;
} self_abort_frame;

EDO_ASYNC(self_abort_main, self_abort_frame, NULL)
{
	EDO_BEGIN();
	self->p = PROBE(self->st, self->mode);
	CHECK_EQ(edo_spawn(&self->p.base, sizeof self->p, &self->h), 0);
	self->st->ah = edo_join_abort_handle(self->h);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK(edo_abort_handle_is_finished(self->st->ah));
	edo_abort_handle_drop(self->st->ah);
	edo_join_detach(self->h);
	EDO_END();
}

static int run_self_abort(probe_state *st, int mode)
{
	edo_runtime *rt = rt_new();
	self_abort_frame m = {EDO_FRAME_INIT(self_abort_main), .st = st, .mode = mode, .rc = 1};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	return m.rc;
}

TEST(abort_self_during_poll)
{
	probe_state st = {0};
	CHECK_EQ(run_self_abort(&st, P_SELF_ABORT), -ECANCELED);
	CHECK_EQ(atomic_load(&st.polls), 1);
	CHECK_EQ(atomic_load(&st.drops), 1);

	/* Aborted and woken during the same poll: cancelled, not re-polled. */
	probe_state st2 = {0};
	CHECK_EQ(run_self_abort(&st2, P_SELF_ABORT_WAKE), -ECANCELED);
	CHECK_EQ(atomic_load(&st2.polls), 1);
	CHECK_EQ(atomic_load(&st2.drops), 1);

	/* Aborted during a poll that then completes: completion wins (as in
	 * Tokio), the output is kept and nothing is dropped. */
	probe_state st3 = {0};
	CHECK_EQ(run_self_abort(&st3, P_SELF_ABORT_READY), 0);
	CHECK_EQ(atomic_load(&st3.polls), 1);
	CHECK_EQ(atomic_load(&st3.readies), 1);
	CHECK_EQ(atomic_load(&st3.drops), 0);
}

/* Another thread aborts the task while it is inside its poll. */
typedef struct remote_abort {
	probe_state *st;
	edo_abort_handle *ah;
} remote_abort;

static void *remote_abort_thread(void *arg)
{
	remote_abort *ra = arg;
	unsigned spins = 0;
	while (!atomic_load(&ra->st->in_poll))
		backoff(&spins);
	edo_abort_handle_abort(ra->ah);
	edo_abort_handle_abort(ra->ah);
	CHECK(!edo_abort_handle_is_finished(ra->ah)); /* still inside its poll */
	edo_abort_handle_drop(ra->ah);
	atomic_store(&ra->st->flag, 1);
	return NULL;
}

typedef struct remote_abort_frame {
	EDO_FRAME;
	probe_state *st;
	probe p;
	edo_join *h;
	remote_abort ra;
	pthread_t th;
	int rc;
} remote_abort_frame;

EDO_ASYNC(remote_abort_main, remote_abort_frame, NULL)
{
	EDO_BEGIN();
	self->p = PROBE(self->st, P_SPIN_FLAG);
	CHECK_EQ(edo_spawn(&self->p.base, sizeof self->p, &self->h), 0);
	self->ra = (remote_abort){self->st, edo_join_abort_handle(self->h)};
	CHECK_EQ(pthread_create(&self->th, NULL, remote_abort_thread, &self->ra), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(pthread_join(self->th, NULL), 0);
	edo_join_detach(self->h);
	EDO_END();
}

TEST(abort_from_other_thread_during_poll)
{
	probe_state st = {0};
	edo_runtime *rt = rt_new();
	remote_abort_frame m = {EDO_FRAME_INIT(remote_abort_main), .st = &st};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(m.rc, -ECANCELED);
	CHECK_EQ(atomic_load(&st.polls), 1);
	CHECK_EQ(atomic_load(&st.drops), 1);
	CHECK_EQ(atomic_load(&st.readies), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* Stress: abort from another thread at a random moment of a task that wakes
 * itself a few times and then completes.  Every outcome is consistent: either
 * it completed (join 0, no drop) or it was cancelled (join -ECANCELED, one
 * drop, never completed). */
typedef struct abort_race {
	event have; /* 1: a handle to take; 0: taken; -1: stop */
	edo_abort_handle *ah;
	unsigned delay;
} abort_race;

/* The hand-offs spin (so that the helper catches the next handle within a
 * microsecond, while the task still runs) and then sleep on a futex, not in
 * sched_yield(): with more runnable threads than cores each yield could give
 * away a whole time slice, and 100,000 of them ran past the test's timeout. */
static void *abort_race_thread(void *arg)
{
	abort_race *ar = arg;
	for (;;) {
		event_wait_spin(&ar->have, 0, 1 << 16);
		if (atomic_load(&ar->have.word) < 0)
			return NULL;
		edo_abort_handle *ah = ar->ah;
		unsigned d = ar->delay;
		event_set(&ar->have, 0);
		for (unsigned i = 0; i < d; i++)
			__asm__ volatile("" ::: "memory");
		edo_abort_handle_abort(ah);
		edo_abort_handle_drop(ah);
	}
}

typedef struct abort_stress_frame {
	EDO_FRAME;
	abort_race *ar;
	long iters, i;
	probe_state st;
	probe p;
	edo_join *h;
	int rc;
	long cancelled, completed;
} abort_stress_frame;

EDO_ASYNC(abort_stress_main, abort_stress_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->iters; self->i++) {
		memset(&self->st, 0, sizeof self->st);
		self->st.n = (int)(self->i % 4);
		self->p = PROBE(&self->st, (self->i & 4) ? P_WAKE_REF : P_WAKE_VAL);
		CHECK_EQ(edo_spawn(&self->p.base, sizeof self->p, &self->h), 0);
		self->ar->ah = edo_join_abort_handle(self->h);
		self->ar->delay = (unsigned)((self->i * 7919) % 2048);
		event_set(&self->ar->have, 1);
		EDO_AWAIT_JOIN(self->h, &self->rc);
		if (self->rc == 0) {
			CHECK_EQ(atomic_load(&self->st.readies), 1);
			CHECK_EQ(atomic_load(&self->st.drops), 0);
			CHECK_EQ(atomic_load(&self->st.polls), self->st.n + 1);
			self->completed++;
		} else {
			CHECK_EQ(self->rc, -ECANCELED);
			CHECK_EQ(atomic_load(&self->st.readies), 0);
			CHECK_EQ(atomic_load(&self->st.drops), 1);
			CHECK_LE(atomic_load(&self->st.polls), self->st.n);
			self->cancelled++;
		}
		edo_join_detach(self->h);
		/* Wait until the helper took the handle before reusing the slot. */
		event_wait_while(&self->ar->have, 1);
	}
	EDO_END();
}

TEST(abort_from_other_thread_stress)
{
	abort_race ar = {0};
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, abort_race_thread, &ar), 0);
	edo_runtime *rt = rt_new();
	abort_stress_frame m = {EDO_FRAME_INIT(abort_stress_main), .ar = &ar,
				.iters = test_scale(100000)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	event_set(&ar.have, -1);
	CHECK_EQ(pthread_join(th, NULL), 0);
	CHECK_EQ(m.cancelled + m.completed, m.iters);
	printf("  %ld aborted in flight, %ld completed first\n", m.cancelled, m.completed);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* ==== join handles ================================================================ */

typedef struct detach_frame {
	EDO_FRAME;
	probe_state *a, *b, *c, *d;
	probe pa, pb, pc, pd;
	edo_join *h;
	int rc;
} detach_frame;

EDO_ASYNC(detach_main, detach_frame, NULL)
{
	EDO_BEGIN();
	/* Detached before its first poll; completes later on its own. */
	self->pa = PROBE(self->a, P_STASH);
	CHECK_EQ(edo_spawn(&self->pa.base, sizeof self->pa, &self->h), 0);
	edo_join_detach(self->h);
	while (atomic_load(&self->a->polls) < 1)
		EDO_YIELD();
	atomic_store(&self->a->release, 1);
	edo_waker_wake(edo_waker_take(&self->a->stash));
	while (atomic_load(&self->a->readies) < 1)
		EDO_YIELD();
	/* Spawned detached (no handle at all). */
	self->pb = PROBE(self->b, P_WAKE_VAL);
	self->b->n = 3;
	CHECK_EQ(edo_spawn(&self->pb.base, sizeof self->pb, NULL), 0);
	while (atomic_load(&self->b->readies) < 1)
		EDO_YIELD();
	/* Detached after completion (output freed with the handle). */
	self->pc = PROBE(self->c, P_READY);
	CHECK_EQ(edo_spawn(&self->pc.base, sizeof self->pc, &self->h), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->h);
	/* Detached while pending; the runtime's shutdown cancels it. */
	self->pd = PROBE(self->d, P_FOREVER);
	CHECK_EQ(edo_spawn(&self->pd.base, sizeof self->pd, &self->h), 0);
	while (atomic_load(&self->d->polls) < 1)
		EDO_YIELD();
	edo_join_detach(self->h);
	EDO_END();
}

TEST(join_detached_before_and_after_completion)
{
	probe_state a = {0}, b = {0}, c = {0}, d = {0};
	edo_runtime *rt = rt_new();
	detach_frame m = {EDO_FRAME_INIT(detach_main), .a = &a, .b = &b, .c = &c, .d = &d};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(atomic_load(&a.polls), 2);
	CHECK_EQ(atomic_load(&b.polls), 4);
	CHECK_EQ(atomic_load(&c.polls), 1);
	CHECK_EQ(atomic_load(&d.drops), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(atomic_load(&d.drops), 1);
	CHECK_EQ(atomic_load(&a.drops) + atomic_load(&b.drops) + atomic_load(&c.drops), 0);
}

/* A task registers its waker on a join handle (by polling it by hand), then
 * replaces it, or detaches with it registered: the join-waker protocol must
 * neither leak nor lose the waker. */
typedef struct joiner_frame {
	EDO_FRAME;
	probe_state *child;
	probe cp;
	edo_join *h;
	int rc;
	int detach_registered;
	atomic_int *noop_wakes;
	int polls;
} joiner_frame;

EDO_ASYNC(joiner_task, joiner_frame, NULL)
{
	EDO_BEGIN();
	self->polls++;
	self->cp = PROBE(self->child, P_STASH);
	CHECK_EQ(edo_spawn(&self->cp.base, sizeof self->cp, &self->h), 0);
	{
		/* Register a foreign waker first... */
		edo_waker cw = {&cw_vt, self->noop_wakes};
		edo_cx other = {&cw};
		CHECK_EQ(edo_join_poll(self->h, &other, &self->rc), EDO_PENDING);
		CHECK_EQ(edo_join_poll(self->h, &other, &self->rc), EDO_PENDING);
		/* ...then our own, which replaces it. */
		CHECK_EQ(edo_join_poll(self->h, cx, &self->rc), EDO_PENDING);
	}
	if (self->detach_registered) {
		edo_join_detach(self->h);
		EDO_RETURN();
	}
	self->rc = 99;
	EDO_AWAIT_POLL((self->polls++, edo_join_poll(self->h, cx, &self->rc)));
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->h);
	EDO_END();
}

typedef struct joiner_main_frame {
	EDO_FRAME;
	joiner_frame *out;
	probe_state *child;
	int detach_registered;
	atomic_int *noop_wakes;
	edo_join *h;
	int rc;
} joiner_main_frame;

EDO_ASYNC(joiner_main, joiner_main_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->h, joiner_task, .child = self->child,
			   .detach_registered = self->detach_registered,
			   .noop_wakes = self->noop_wakes),
		 0);
	while (atomic_load(&self->child->polls) < 1)
		EDO_YIELD();
	atomic_store(&self->child->release, 1);
	edo_waker_wake(edo_waker_take(&self->child->stash));
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	*self->out = *EDO_JOIN_OUTPUT(self->h, joiner_task);
	edo_join_detach(self->h);
	while (atomic_load(&self->child->readies) < 1)
		EDO_YIELD();
	EDO_END();
}

TEST(join_waker_replace_and_detach_registered)
{
	for (int detach = 0; detach < 2; detach++) {
		probe_state child = {0};
		atomic_int noop_wakes = 0;
		joiner_frame out = {0};
		edo_runtime *rt = rt_new();
		joiner_main_frame m = {EDO_FRAME_INIT(joiner_main), .out = &out, .child = &child,
				       .detach_registered = detach, .noop_wakes = &noop_wakes};
		CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
		/* The replaced waker is never woken. */
		CHECK_EQ(atomic_load(&noop_wakes), 0);
		CHECK_EQ(atomic_load(&child.readies), 1);
		/* Registered: one wake on completion, exactly one more poll. */
		CHECK_EQ(out.polls, detach ? 1 : 3);
	}
}

/* Join handles polled from a thread outside the runtime while the runtime
 * runs on another: registration, replacement, detach and abort race with
 * completion on the runtime thread; the join-waker handoff must neither lose
 * a wake (the joiner would hang) nor leak or double-drop a waker. */
typedef struct rj_runner {
	edo_runtime *rt;
	probe_state stop; /* the block_on future: P_STASH until released */
	pthread_t th;
	int rc;
} rj_runner;

static void *rj_runner_main(void *arg)
{
	rj_runner *r = arg;
	probe p = PROBE(&r->stop, P_STASH);
	r->rc = edo_block_on(r->rt, &p.base);
	return NULL;
}

static void wait_count(atomic_int *c)
{
	unsigned spins = 0;
	while (atomic_load(c) == 0)
		backoff(&spins);
}

/* The race join_from_another_thread_stress hits about once in a million
 * polls, made deterministic: the join handle saw JOIN_WAKER set and goes to
 * take the waker back, but the task completed meanwhile, woke the waker and
 * cleared the bit.  Taking it back must fail (the task is done), not trip
 * over the missing bit. */
TEST(unset_join_waker_after_completion_cleared_it)
{
	edo__state st = EDO__ST_REF_ONE | EDO__ST_JOIN_INTEREST | EDO__ST_COMPLETE;
	CHECK(!edo__st_unset_waker(&st));
	CHECK_EQ(atomic_load(&st), EDO__ST_REF_ONE | EDO__ST_JOIN_INTEREST | EDO__ST_COMPLETE);
	/* Completed with the bit still set: fails too, the bit stays. */
	atomic_store(&st, EDO__ST_REF_ONE | EDO__ST_JOIN_INTEREST | EDO__ST_COMPLETE |
				  EDO__ST_JOIN_WAKER);
	CHECK(!edo__st_unset_waker(&st));
	CHECK(atomic_load(&st) & EDO__ST_JOIN_WAKER);
	/* Not complete: the handle gets the field back. */
	atomic_store(&st, EDO__ST_REF_ONE | EDO__ST_JOIN_INTEREST | EDO__ST_JOIN_WAKER);
	CHECK(edo__st_unset_waker(&st));
	CHECK_EQ(atomic_load(&st), EDO__ST_REF_ONE | EDO__ST_JOIN_INTEREST);
}

/* Two threads in lockstep over the state word alone: round i starts when
 * `go` reaches i, the other thread reports with `done`. */
typedef struct lockstep {
	edo__state st;
	atomic_long go, done;
	atomic_int data;
	long rounds;
	int seen;
	edo__to_shutdown swept;
} lockstep;

static void lockstep_wait(atomic_long *w, long i)
{
	unsigned spins = 0;
	while (atomic_load_explicit(w, memory_order_acquire) != i)
		backoff(&spins);
}

static void *sb_runner(void *arg)
{
	lockstep *ls = arg;
	for (long i = 1; i <= ls->rounds; i++) {
		lockstep_wait(&ls->go, i);
		CHECK_EQ(edo__st_transition_to_running(&ls->st), EDO__RUN_SUCCESS);
		ls->seen = atomic_load_explicit(&ls->data, memory_order_acquire); /* the poll */
		atomic_store_explicit(&ls->done, i, memory_order_release);
	}
	return NULL;
}

/* A wake by reference of a task already queued must still write the state
 * word: the runner's acquire in transition_to_running pairs with that
 * write, so its poll sees what the waker published before waking.  With a
 * mere load (Tokio before tokio-rs/tokio#7622) the runner cleared NOTIFIED
 * and polled without the data in about a quarter of the rounds here: a
 * lost wake-up. */
TEST(wake_by_ref_of_a_queued_task_publishes_to_its_poll)
{
	lockstep ls = {.rounds = test_scale(200000)};
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, sb_runner, &ls), 0);
	long lost = 0;
	for (long i = 1; i <= ls.rounds; i++) {
		atomic_store(&ls.st, 2 * EDO__ST_REF_ONE | EDO__ST_NOTIFIED); /* queued */
		atomic_store(&ls.data, 0);
		atomic_store_explicit(&ls.go, i, memory_order_release);
		for (volatile int k = 0; k < (int)(i % 32); k++)
			;
		atomic_store_explicit(&ls.data, 1, memory_order_release);
		CHECK_EQ(edo__st_transition_to_notified_by_ref(&ls.st), EDO__NOTIFY_DO_NOTHING);
		lockstep_wait(&ls.done, i);
		/* Either the poll saw the data or the task is notified again. */
		if (!(atomic_load(&ls.st) & EDO__ST_NOTIFIED) && ls.seen == 0)
			lost++;
	}
	CHECK_EQ(pthread_join(th, NULL), 0);
	CHECK_EQ(lost, 0);
}

static void *sweeper(void *arg)
{
	lockstep *ls = arg;
	for (long i = 1; i <= ls->rounds; i++) {
		lockstep_wait(&ls->go, i);
		ls->swept = edo__st_transition_to_shutdown(&ls->st);
		atomic_store_explicit(&ls->done, i, memory_order_release);
	}
	return NULL;
}

/* A fiber (a task whose poll handles cancellation) that an abort marked
 * CANCELLED is in a poll on one worker while the shutdown sweep reaches it
 * on another.  The sweep leaves a running task to its poller, and the
 * poller cancels it if it sees the shutdown.  It used to look at a flag
 * beside the state word, which the sweep set before its mark, and the mark
 * wrote the same word back: a poller that read the flag just before went
 * idle just after, CANCELLED, off the owned list, never cancelled (a leaked
 * fiber, a join that never finished), in about 6% of the rounds here.  Now
 * the mark is a SHUTDOWN bit in the word: exactly one of the two cancels
 * it, every round. */
TEST(shutdown_sweep_racing_a_cancelled_fibers_poll)
{
	lockstep ls = {.rounds = test_scale(200000)};
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, sweeper, &ls), 0);
	long nobody = 0;
	for (long i = 1; i <= ls.rounds; i++) {
		/* The poller's notification ref, the owned list's (the sweep's). */
		atomic_store(&ls.st, 2 * EDO__ST_REF_ONE | EDO__ST_RUNNING | EDO__ST_CANCELLED);
		atomic_store_explicit(&ls.go, i, memory_order_release);
		for (volatile int k = 0; k < (int)(i % 64); k++)
			;
		edo__to_idle r = edo__st_transition_to_idle(&ls.st, false);
		lockstep_wait(&ls.done, i);
		CHECK(ls.swept != EDO__SHUTDOWN_DEALLOC);
		if (r != EDO__IDLE_CANCELLED && ls.swept != EDO__SHUTDOWN_OWN)
			nobody++;
	}
	CHECK_EQ(pthread_join(th, NULL), 0);
	CHECK_EQ(nobody, 0);
}

/* The interleaving the SHUTDOWN bit closes, one step at a time: the poller
 * of a cancelled fiber has read the word; the sweep marks it (and drops
 * its reference); a waker is cloned on a third thread (adding one back).
 * Without a bit of its own the word would be what the poller read, and its
 * CAS to idle would succeed past the mark. */
TEST(shutdown_mark_survives_a_reference_coming_back)
{
	edo__state st = 2 * EDO__ST_REF_ONE | EDO__ST_RUNNING | EDO__ST_CANCELLED;
	uint64_t seen = atomic_load(&st);
	CHECK_EQ(edo__st_transition_to_shutdown(&st), EDO__SHUTDOWN_DROPPED);
	edo__st_ref_inc(&st);
	CHECK(atomic_load(&st) != seen);
	CHECK(!atomic_compare_exchange_strong(&st, &seen, seen & ~EDO__ST_RUNNING));
	CHECK_EQ(edo__st_transition_to_idle(&st, false), EDO__IDLE_CANCELLED);
	/* An aborted fiber without the shutdown goes idle, to be polled again. */
	atomic_store(&st, 2 * EDO__ST_REF_ONE | EDO__ST_RUNNING | EDO__ST_CANCELLED);
	CHECK_EQ(edo__st_transition_to_idle(&st, false), EDO__IDLE_OK);
	/* The sweep finds it idle: it is the sweep's to cancel. */
	CHECK_EQ(edo__st_transition_to_shutdown(&st), EDO__SHUTDOWN_OWN);
	CHECK(atomic_load(&st) & EDO__ST_RUNNING);
}

TEST(join_from_another_thread_stress)
{
	rj_runner r = {.rt = rt_new()};
	CHECK_EQ(pthread_create(&r.th, NULL, rj_runner_main, &r), 0);
	edo_handle *h = edo_runtime_handle(r.rt);
	long n = test_scale(20000);
	long completed = 0, cancelled = 0, detached = 0;
	atomic_int stray = 0; /* wakes of wakers registered and then detached */
	edo_waker ws = {&cw_vt, &stray};
	edo_cx cxs = {&ws};
	for (long i = 0; i < n; i++) {
		probe_state st = {.n = (int)(i % 4)};
		probe p = PROBE(&st, (i & 1) ? P_WAKE_VAL : P_WAKE_REF);
		edo_join *j = NULL;
		CHECK_EQ(edo_spawn_on(h, &p.base, sizeof p, NULL, &j), 0);
		atomic_int c1 = 0, c2 = 0;
		edo_waker w1 = {&cw_vt, &c1}, w2 = {&cw_vt, &c2};
		edo_cx cx1 = {&w1}, cx2 = {&w2};
		int rc = 1, mode = (int)(i % 4);
		if (mode == 3) {
			/* Register, then detach: the task runs on, detached. */
			if (edo_join_poll(j, &cxs, &rc) == EDO_PENDING) {
				edo_join_detach(j);
				unsigned spins = 0;
				while (atomic_load(&st.readies) == 0)
					backoff(&spins);
				detached++;
				continue;
			}
		} else if (edo_join_poll(j, &cx1, &rc) == EDO_PENDING) {
			edo_cx *last = &cx1;
			if (mode == 1) {
				edo_join_abort(j); /* races with completion */
			} else if (mode == 2) {
				/* Replace the registered waker (or find it done). */
				if (edo_join_poll(j, &cx2, &rc) == EDO_PENDING)
					last = &cx2;
			}
			if (rc == 1) {
				/* The registered waker must be woken: a lost wake hangs. */
				wait_count(last == &cx1 ? &c1 : &c2);
				CHECK_EQ(edo_join_poll(j, last, &rc), EDO_READY);
			}
		}
		CHECK(edo_join_is_finished(j));
		if (rc == 0) {
			CHECK_EQ(atomic_load(&st.readies), 1);
			CHECK_EQ(atomic_load(&st.drops), 0);
			CHECK_EQ(atomic_load(&st.polls), st.n + 1);
			CHECK(edo_join_output(j) != NULL);
			completed++;
		} else {
			CHECK_EQ(mode, 1);
			CHECK_EQ(rc, -ECANCELED);
			CHECK_EQ(atomic_load(&st.drops), 1);
			CHECK_EQ(atomic_load(&st.readies), 0);
			CHECK(edo_join_output(j) == NULL);
			cancelled++;
		}
		edo_join_detach(j);
	}
	CHECK_EQ(completed + cancelled + detached, n);
	/* Stop the runner. */
	while (atomic_load(&r.stop.polls) < 1)
		sched_yield();
	atomic_store(&r.stop.release, 1);
	edo_waker_wake(edo_waker_take(&r.stop.stash));
	CHECK_EQ(pthread_join(r.th, NULL), 0);
	CHECK_EQ(r.rc, 0);
	CHECK_EQ(edo_handle_alive_tasks(h), 0);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(r.rt), 0);
}

TEST(join_and_abort_null_safety)
{
	int rc = 0;
	edo_cx cx = {edo_noop_waker()};
	CHECK_EQ(edo_join_poll(NULL, &cx, &rc), EDO_READY);
	CHECK_EQ(rc, -EINVAL);
	CHECK(edo_join_output(NULL) == NULL);
	CHECK(!edo_join_is_finished(NULL));
	CHECK_EQ(edo_join_id(NULL), (uint64_t)0);
	CHECK(edo_join_abort_handle(NULL) == NULL);
	edo_join_abort(NULL);
	edo_join_detach(NULL);
	edo_abort_handle_abort(NULL);
	edo_abort_handle_drop(NULL);
	CHECK(!edo_abort_handle_is_finished(NULL));
	CHECK_EQ(edo_abort_handle_id(NULL), (uint64_t)0);
}

/* ==== spawning: bad input, during and after shutdown ============================= */

typedef struct spawn_bad_frame {
	EDO_FRAME;
	int done;
} spawn_bad_frame;

static const edo_future_vtable no_poll_vt = {.poll = NULL, .drop = NULL};

EDO_ASYNC(spawn_bad_main, spawn_bad_frame, NULL)
{
	EDO_BEGIN();
	{
		probe_state st = {0};
		probe p = PROBE(&st, P_READY);
		edo_future empty = {NULL};
		edo_future nopoll = {&no_poll_vt};
		edo_join *h = NULL;
		CHECK_EQ(edo_spawn(NULL, sizeof p, &h), -EINVAL);
		CHECK_EQ(edo_spawn(&empty, sizeof empty, &h), -EINVAL);
		CHECK_EQ(edo_spawn(&nopoll, sizeof nopoll, &h), -EINVAL);
		CHECK_EQ(edo_spawn(&p.base, sizeof(edo_future) - 1, &h), -EINVAL);
		CHECK_EQ(edo_spawn(&p.base, (size_t)1 << 40, &h), -EINVAL);
		CHECK_EQ(edo_spawn_on(NULL, NULL, sizeof p, NULL, &h), -EINVAL);
		CHECK(h == NULL);
		edo_handle *cur = edo_handle_current();
		CHECK(cur != NULL);
		CHECK_EQ(edo_handle_alive_tasks(cur), 0);
		edo_handle_drop(cur);
		CHECK_EQ(atomic_load(&st.drops), 0); /* refused: never dropped */
	}
	self->done = 1;
	EDO_END();
}

TEST(spawn_rejects_bad_input_and_no_runtime)
{
	probe_state st = {0};
	probe p = PROBE(&st, P_READY);
	edo_join *h = NULL;
	CHECK_EQ(edo_spawn(&p.base, sizeof p, &h), EDO_ENORUNTIME);
	CHECK_EQ(edo_spawn_on(NULL, &p.base, sizeof p, NULL, &h), EDO_ENORUNTIME);
	CHECK(h == NULL);
	edo_runtime *rt = rt_new();
	spawn_bad_frame m = {EDO_FRAME_INIT(spawn_bad_main)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(m.done, 1);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(atomic_load(&st.polls) + atomic_load(&st.drops), 0);
}

TEST(spawn_through_handle_after_free)
{
	probe_state st = {0};
	probe p = PROBE(&st, P_READY);
	edo_runtime *rt = rt_new();
	edo_handle *h = edo_runtime_handle(rt);
	edo_handle *h2 = edo_handle_clone(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
	edo_join *j = NULL;
	CHECK_EQ(edo_spawn_on(h, &p.base, sizeof p, NULL, &j), EDO_ESHUTDOWN);
	CHECK_EQ(edo_spawn_on(h2, &p.base, sizeof p, NULL, NULL), EDO_ESHUTDOWN);
	CHECK(j == NULL);
	CHECK_EQ(edo_handle_alive_tasks(h), 0);
	CHECK_EQ(edo_handle_flavor(h), EDO_RT_CURRENT_THREAD);
	edo_handle_drop(h);
	edo_handle_drop(h2);
	/* The refused future is still the caller's: never polled or dropped. */
	CHECK_EQ(atomic_load(&st.polls) + atomic_load(&st.drops), 0);
}

/* Threads spawn through a handle while the runtime is being freed. */
typedef struct sd_shared {
	edo_handle *h;
	atomic_long ok;
	atomic_long forever_ok;
	atomic_long readies, drops_ready, drops_forever;
} sd_shared;

typedef struct sd_fut {
	edo_future base;
	sd_shared *sh;
	int forever;
} sd_fut;

static edo_poll sd_poll(edo_future *f, edo_cx *cx)
{
	(void)cx;
	sd_fut *s = (sd_fut *)f;
	if (s->forever)
		return EDO_PENDING;
	atomic_fetch_add(&s->sh->readies, 1);
	return EDO_READY;
}

static void sd_drop(edo_future *f)
{
	sd_fut *s = (sd_fut *)f;
	atomic_fetch_add(s->forever ? &s->sh->drops_forever : &s->sh->drops_ready, 1);
}

static const edo_future_vtable sd_vt = {.poll = sd_poll, .drop = sd_drop};

#define SD_MAXH 512
typedef struct sd_spawner {
	sd_shared *sh;
	pthread_t th;
	edo_join *h[SD_MAXH];
	int nh;
	long ok;
} sd_spawner;

static void *sd_spawner_thread(void *arg)
{
	sd_spawner *sp = arg;
	for (;;) {
		sd_fut f = {{&sd_vt}, sp->sh, (int)(sp->ok & 1)};
		edo_join *j = NULL;
		bool keep = sp->ok % 3 == 0 && sp->nh < SD_MAXH;
		int rc = edo_spawn_on(sp->sh->h, &f.base, sizeof f, NULL, keep ? &j : NULL);
		if (rc == EDO_ESHUTDOWN)
			break;
		CHECK_EQ(rc, 0);
		if (keep) {
			CHECK(j != NULL);
			sp->h[sp->nh++] = j;
		}
		if (f.forever)
			atomic_fetch_add(&sp->sh->forever_ok, 1);
		sp->ok++;
		atomic_fetch_add(&sp->sh->ok, 1);
	}
	/* Once refused, always refused. */
	sd_fut f = {{&sd_vt}, sp->sh, 0};
	CHECK_EQ(edo_spawn_on(sp->sh->h, &f.base, sizeof f, NULL, NULL), EDO_ESHUTDOWN);
	return NULL;
}

typedef struct wait_count_frame {
	EDO_FRAME;
	atomic_long *count;
	long target;
} wait_count_frame;

EDO_ASYNC(wait_count_main, wait_count_frame, NULL)
{
	EDO_BEGIN();
	while (atomic_load(self->count) < self->target)
		EDO_YIELD();
	EDO_END();
}

TEST(spawn_during_shutdown)
{
	enum { NSP = 3 };
	long rounds = test_scale(20);
	for (long r = 0; r < rounds; r++) {
		sd_shared sh = {0};
		edo_runtime *rt = rt_new();
		sh.h = edo_runtime_handle(rt);
		sd_spawner *sp = calloc(NSP, sizeof *sp);
		CHECK(sp != NULL);
		for (int i = 0; i < NSP; i++) {
			sp[i].sh = &sh;
			CHECK_EQ(pthread_create(&sp[i].th, NULL, sd_spawner_thread, &sp[i]), 0);
		}
		/* Run the spawned tasks for a while, then free while spawns go on. */
		wait_count_frame m = {EDO_FRAME_INIT(wait_count_main), .count = &sh.ok,
				      .target = 500 + 100 * r};
		CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
		long total = 0;
		for (int i = 0; i < NSP; i++) {
			CHECK_EQ(pthread_join(sp[i].th, NULL), 0);
			total += sp[i].ok;
		}
		CHECK_EQ(total, atomic_load(&sh.ok));
		/* Every accepted spawn ran to completion or was cancelled, once. */
		CHECK_EQ(atomic_load(&sh.drops_forever), atomic_load(&sh.forever_ok));
		CHECK_EQ(atomic_load(&sh.readies) + atomic_load(&sh.drops_ready),
			 total - atomic_load(&sh.forever_ok));
		for (int i = 0; i < NSP; i++) {
			for (int k = 0; k < sp[i].nh; k++) {
				int rc = 1;
				edo_cx cx = {edo_noop_waker()};
				CHECK(edo_join_is_finished(sp[i].h[k]));
				CHECK_EQ(edo_join_poll(sp[i].h[k], &cx, &rc), EDO_READY);
				CHECK(rc == 0 || rc == -ECANCELED);
				edo_join_detach(sp[i].h[k]);
			}
		}
		CHECK_EQ(edo_handle_alive_tasks(sh.h), 0);
		edo_handle_drop(sh.h);
		free(sp);
	}
}

/* Threads wake (by value) idle tasks while the runtime is being freed. */
typedef struct wr_waker_set {
	edo_waker *w;
	int n;
	atomic_int *go;
	pthread_t th;
} wr_waker_set;

static void *wr_thread(void *arg)
{
	wr_waker_set *ws = arg;
	unsigned spins = 0;
	while (!atomic_load(ws->go))
		backoff(&spins);
	for (int i = 0; i < ws->n; i++) {
		if (i % 4 == 0)
			edo_waker_wake_by_ref(&ws->w[i]);
		if (i % 8 == 1)
			edo_waker_drop(ws->w[i]);
		else
			edo_waker_wake(ws->w[i]);
	}
	return NULL;
}

TEST(wake_races_shutdown)
{
	enum { NT = 64 };
	long rounds = test_scale(200);
	for (long r = 0; r < rounds; r++) {
		probe_state *st = calloc(NT, sizeof *st);
		probe *ps = calloc(NT, sizeof *ps);
		edo_waker *ws = calloc(NT, sizeof *ws);
		CHECK(st && ps && ws);
		for (int i = 0; i < NT; i++)
			ps[i] = PROBE(&st[i], P_STASH);
		edo_runtime *rt = rt_new();
		spawn_all_frame m = {EDO_FRAME_INIT(spawn_all_main), .p = ps, .n = NT};
		CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
		for (int i = 0; i < NT; i++)
			ws[i] = edo_waker_take(&st[i].stash);
		atomic_int go = 0;
		wr_waker_set set[2] = {{ws, NT / 2, &go, 0}, {ws + NT / 2, NT / 2, &go, 0}};
		for (int i = 0; i < 2; i++)
			CHECK_EQ(pthread_create(&set[i].th, NULL, wr_thread, &set[i]), 0);
		atomic_store(&go, 1);
		if (r & 1)
			sched_yield();
		CHECK_EQ(edo_runtime_free(rt), 0);
		for (int i = 0; i < 2; i++)
			CHECK_EQ(pthread_join(set[i].th, NULL), 0);
		for (int i = 0; i < NT; i++) {
			CHECK_EQ(atomic_load(&st[i].drops), 1);
			CHECK_EQ(atomic_load(&st[i].polls), 1); /* nobody polled after block_on */
		}
		free(st);
		free(ps);
		free(ws);
	}
}

/* ==== a million tasks ================================================================ */

typedef struct dbl_frame {
	EDO_FRAME;
	long in, out;
} dbl_frame;

EDO_ASYNC(dbl_task, dbl_frame, NULL)
{
	EDO_BEGIN();
	self->out = self->in * 2;
	EDO_END();
}

#define MANY_BATCH 1024
typedef struct many_frame {
	EDO_FRAME;
	long n, done, batch, i;
	int rc;
	edo_join *h[MANY_BATCH];
	size_t alive_after;
} many_frame;

EDO_ASYNC(many_main, many_frame, NULL)
{
	EDO_BEGIN();
	while (self->done < self->n) {
		self->batch = self->n - self->done < MANY_BATCH ? self->n - self->done : MANY_BATCH;
		for (self->i = 0; self->i < self->batch; self->i++)
			CHECK_EQ(EDO_SPAWN(&self->h[self->i], dbl_task, .in = self->done + self->i),
				 0);
		for (self->i = 0; self->i < self->batch; self->i++) {
			EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
			CHECK_EQ(self->rc, 0);
			CHECK_EQ(EDO_JOIN_OUTPUT(self->h[self->i], dbl_task)->out,
				 2 * (self->done + self->i));
			edo_join_detach(self->h[self->i]);
		}
		self->done += self->batch;
	}
	{
		edo_handle *cur = edo_handle_current();
		self->alive_after = edo_handle_alive_tasks(cur);
		edo_handle_drop(cur);
	}
	EDO_END();
}

TEST(million_tasks)
{
	edo_runtime *rt = rt_new();
	many_frame *m = calloc(1, sizeof *m);
	CHECK(m != NULL);
	*m = (many_frame){EDO_FRAME_INIT(many_main), .n = test_scale(1000000)};
	CHECK_EQ(edo_block_on(rt, &m->edo_base), 0);
	CHECK_EQ(m->done, m->n);
	CHECK_EQ(m->alive_after, 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	free(m);
}

/* ==== the cooperative budget ========================================================= */

typedef struct budget_log {
	long a_ops; /* operations the looping task has done */
	long target;
	long pend_at[64]; /* a_ops each time the leaf said PENDING */
	int npend;
	long b_saw[64]; /* a_ops each time the other task ran */
	int nb;
	int a_polls;
} budget_log;

/* An always-ready resource: ready whenever the budget allows. */
static edo_poll ready_leaf(edo_cx *cx, budget_log *bl)
{
	edo_poll r = edo_coop_poll_proceed(cx);
	if (r == EDO_PENDING) {
		CHECK(!edo_coop_has_budget_remaining());
		CHECK_LT(bl->npend, 64);
		bl->pend_at[bl->npend++] = bl->a_ops;
	}
	return r;
}

typedef struct looper_frame {
	EDO_FRAME;
	budget_log *bl;
} looper_frame;

EDO_ASYNC(looper_task, looper_frame, NULL)
{
	EDO_BEGIN();
	while (self->bl->a_ops < self->bl->target) {
		EDO_AWAIT_POLL((self->bl->a_polls++, ready_leaf(cx, self->bl)));
		self->bl->a_ops++;
	}
	EDO_END();
}

typedef struct observer_frame {
	EDO_FRAME;
	budget_log *bl;
} observer_frame;

EDO_ASYNC(observer_task, observer_frame, NULL)
{
	EDO_BEGIN();
	for (;;) {
		CHECK_LT(self->bl->nb, 64);
		self->bl->b_saw[self->bl->nb++] = self->bl->a_ops;
		if (self->bl->a_ops >= self->bl->target)
			break;
		EDO_YIELD();
	}
	EDO_END();
}

typedef struct budget_main_frame {
	EDO_FRAME;
	budget_log *bl;
	edo_join *a, *b;
	int rc;
} budget_main_frame;

EDO_ASYNC(budget_main, budget_main_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->a, looper_task, .bl = self->bl), 0);
	CHECK_EQ(EDO_SPAWN(&self->b, observer_task, .bl = self->bl), 0);
	EDO_AWAIT_JOIN(self->a, &self->rc);
	CHECK_EQ(self->rc, 0);
	EDO_AWAIT_JOIN(self->b, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->a);
	edo_join_detach(self->b);
	EDO_END();
}

TEST(budget_forces_yield_after_128)
{
	budget_log bl = {.target = 1000};
	edo_runtime *rt = rt_new();
	budget_main_frame m = {EDO_FRAME_INIT(budget_main), .bl = &bl};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(bl.a_ops, 1000);
	/* The leaf said PENDING exactly when 128 operations were done in a poll. */
	CHECK_EQ(bl.npend, 7);
	for (int i = 0; i < bl.npend; i++)
		CHECK_EQ(bl.pend_at[i], (long)EDO_COOP_BUDGET * (i + 1));
	/* The other task ran after every 128 operations of the looping one. */
	CHECK_EQ(bl.nb, 8);
	for (int i = 0; i < 7; i++)
		CHECK_EQ(bl.b_saw[i], (long)EDO_COOP_BUDGET * (i + 1));
	CHECK_EQ(bl.b_saw[7], 1000);
	/* The leaf was asked once per operation plus once per refusal. */
	CHECK_EQ(bl.a_polls, 1000 + 7);
}

/* The block_on future has a budget too; refunds give units back. */
typedef struct bo_budget_frame {
	EDO_FRAME;
	budget_log *bl;
	int first_polls;
} bo_budget_frame;

EDO_ASYNC(bo_budget_main, bo_budget_frame, NULL)
{
	EDO_BEGIN();
	/* Refunded units are not spent. */
	for (int i = 0; i < 1000; i++) {
		CHECK_EQ(edo_coop_poll_proceed(cx), EDO_READY);
		edo_coop_refund();
	}
	edo_coop_refund(); /* a refund with nothing taken gives nothing */
	CHECK(edo_coop_has_budget_remaining());
	while (self->bl->a_ops < self->bl->target) {
		EDO_AWAIT_POLL(ready_leaf(cx, self->bl));
		self->bl->a_ops++;
	}
	EDO_END();
}

TEST(budget_applies_to_block_on_and_refund_works)
{
	budget_log bl = {.target = 300};
	edo_runtime *rt = rt_new();
	bo_budget_frame m = {EDO_FRAME_INIT(bo_budget_main), .bl = &bl};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(bl.npend, 2);
	CHECK_EQ(bl.pend_at[0], 128);
	CHECK_EQ(bl.pend_at[1], 256);
	/* Outside a runtime there is no budget. */
	edo_cx cx = {edo_noop_waker()};
	for (int i = 0; i < 1000; i++)
		CHECK_EQ(edo_coop_poll_proceed(&cx), EDO_READY);
	CHECK(edo_coop_has_budget_remaining());
}

/* Polling a finished task's join handle spends budget, as any ready
 * operation does: a loop over finished joins yields. */
typedef struct join_budget_frame {
	EDO_FRAME;
	edo_join *child;
	int rc, ready_polls;
	bool refused, budget_left;
} join_budget_frame;

EDO_ASYNC(join_budget_child, looper_frame, NULL)
{
	EDO_BEGIN();
	EDO_END();
}

EDO_ASYNC(join_budget_main, join_budget_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->child, join_budget_child), 0);
	EDO_AWAIT_JOIN(self->child, &self->rc);
	CHECK_EQ(self->rc, 0);
	EDO_YIELD(); /* a fresh budget */
	for (int i = 0; i < 1000; i++) {
		int r = -1;
		if (edo_join_poll(self->child, cx, &r) == EDO_PENDING) {
			self->refused = true;
			self->budget_left = edo_coop_has_budget_remaining();
			break;
		}
		CHECK_EQ(r, 0);
		self->ready_polls++;
	}
	edo_join_detach(self->child);
	EDO_END();
}

TEST(join_of_a_finished_task_spends_budget)
{
	edo_runtime *rt = rt_new();
	join_budget_frame m = {EDO_FRAME_INIT(join_budget_main)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK(m.refused);
	CHECK(!m.budget_left);
	CHECK_EQ(m.ready_polls, EDO_COOP_BUDGET);
}

/* A future that does @n always-ready operations in one poll. */
typedef struct many_ops {
	edo_future base;
	long n, done;
	int polls;
} many_ops;

static edo_poll many_ops_poll(edo_future *f, edo_cx *cx)
{
	many_ops *m = (many_ops *)f;
	m->polls++;
	while (m->done < m->n) {
		if (edo_coop_poll_proceed(cx) == EDO_PENDING)
			return EDO_PENDING;
		m->done++;
	}
	return EDO_READY;
}

static const edo_future_vtable many_ops_vt = {.poll = many_ops_poll, .drop = NULL};

typedef struct unc_frame {
	EDO_FRAME;
	edo_unconstrained u;
	many_ops inner;
	many_ops plain;
	edo_future empty;
} unc_frame;

EDO_ASYNC(unc_task, unc_frame, NULL)
{
	EDO_BEGIN();
	/* 10 units spent, then 1000 operations unconstrained, in one poll. */
	for (int i = 0; i < 10; i++)
		CHECK_EQ(edo_coop_poll_proceed(cx), EDO_READY);
	self->inner = (many_ops){.base = {&many_ops_vt}, .n = 1000};
	edo_unconstrained_init(&self->u, &self->inner.base);
	EDO_AWAIT(&self->u);
	CHECK_EQ(self->inner.done, 1000);
	CHECK_EQ(self->inner.polls, 1);
	/* An unconstrained wrapper around nothing completes at once. */
	edo_unconstrained_init(&self->u, NULL);
	EDO_AWAIT(&self->u);
	self->empty = (edo_future){NULL};
	edo_unconstrained_init(&self->u, &self->empty);
	EDO_AWAIT(&self->u);
	/* The budget applies again afterwards: 118 units were left. */
	self->plain = (many_ops){.base = {&many_ops_vt}, .n = 100000};
	EDO_AWAIT(&self->plain);
	EDO_END();
}

typedef struct unc_main_frame {
	EDO_FRAME;
	edo_join *h;
	int rc;
	unc_frame out;
} unc_main_frame;

EDO_ASYNC(unc_main, unc_main_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->h, unc_task, .empty = {NULL}), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	self->out = *EDO_JOIN_OUTPUT(self->h, unc_task);
	edo_join_detach(self->h);
	EDO_END();
}

TEST(unconstrained_goes_past_budget)
{
	edo_runtime *rt = rt_new();
	unc_main_frame m = {EDO_FRAME_INIT(unc_main)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(m.out.inner.done, 1000);
	/* The constrained loop after it: 118 units in the first poll, then
	 * 128 per poll. */
	CHECK_EQ(m.out.plain.done, 100000);
	CHECK_EQ(m.out.plain.polls, 1 + (100000 - 118 + 127) / 128);
}

/* ==== yielding ================================================================== */

typedef struct yield_log {
	char log[256];
	int len;
} yield_log;

typedef struct yielder_frame {
	EDO_FRAME;
	yield_log *yl;
	char tag;
	int n, i;
	int use_future;
	edo_yield_now y;
} yielder_frame;

EDO_ASYNC(yielder, yielder_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++) {
		CHECK_LT(self->yl->len, 255);
		self->yl->log[self->yl->len++] = self->tag;
		if (self->use_future) {
			self->y = (edo_yield_now)EDO_YIELD_NOW_INIT;
			EDO_AWAIT(&self->y);
		} else {
			EDO_YIELD();
		}
	}
	EDO_END();
}

typedef struct yield_main_frame {
	EDO_FRAME;
	yield_log *yl;
	int use_future;
	edo_join *a, *b;
	int rc;
} yield_main_frame;

EDO_ASYNC(yield_main, yield_main_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->a, yielder, .yl = self->yl, .tag = 'A', .n = 20,
			   .use_future = self->use_future),
		 0);
	CHECK_EQ(EDO_SPAWN(&self->b, yielder, .yl = self->yl, .tag = 'B', .n = 20,
			   .use_future = self->use_future),
		 0);
	EDO_AWAIT_JOIN(self->a, &self->rc);
	EDO_AWAIT_JOIN(self->b, &self->rc);
	edo_join_detach(self->a);
	edo_join_detach(self->b);
	EDO_END();
}

TEST(yield_interleaves_two_tasks)
{
	for (int use_future = 0; use_future < 2; use_future++) {
		yield_log yl = {0};
		edo_runtime *rt = rt_new();
		yield_main_frame m = {EDO_FRAME_INIT(yield_main), .yl = &yl,
				      .use_future = use_future};
		CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
		CHECK_EQ(yl.len, 40);
		for (int i = 0; i < 40; i++)
			CHECK_EQ(yl.log[i], (i & 1) ? 'B' : 'A');
	}
}

TEST(yield_now_by_hand)
{
	/* Outside a runtime the deferred wake happens at once. */
	atomic_int wakes = 0;
	edo_waker w = {&cw_vt, &wakes};
	edo_cx cx = {&w};
	edo_yield_now y = EDO_YIELD_NOW_INIT;
	CHECK_EQ(edo_future_poll(&y.base, &cx), EDO_PENDING);
	CHECK_EQ(atomic_load(&wakes), 1);
	CHECK_EQ(edo_future_poll(&y.base, &cx), EDO_READY);
	CHECK_EQ(atomic_load(&wakes), 1);
	edo_future_drop(&y.base);
	CHECK(edo_future_is_empty(&y.base));
}

/* ==== task-local storage ============================================================ */

static atomic_long dtor_sum;
static atomic_int dtor_calls;

static void int_dtor(void *v)
{
	atomic_fetch_add(&dtor_sum, *(int *)v);
	atomic_fetch_add(&dtor_calls, 1);
	free(v);
}

static int *new_int(int v)
{
	int *p = malloc(sizeof *p);
	CHECK(p != NULL);
	*p = v;
	return p;
}

static const edo_task_local_key key_a = {.dtor = int_dtor};
static const edo_task_local_key key_b = {.dtor = NULL};

typedef struct tl_frame {
	EDO_FRAME;
	int *v2;
	int mode; /* 0: run to completion, 1: set then wait forever */
	int *out_seen_other;
} tl_frame;

EDO_ASYNC(tl_task, tl_frame, NULL)
{
	EDO_BEGIN();
	if (self->mode == 2) {
		/* Another task: it sees none of the first task's values. */
		*self->out_seen_other = edo_task_local_get(&key_a) != NULL;
		EDO_RETURN();
	}
	CHECK(edo_task_local_get(&key_a) == NULL);
	CHECK_EQ(edo_task_local_set(NULL, NULL), -EINVAL);
	CHECK(edo_task_local_get(NULL) == NULL);
	CHECK_EQ(edo_task_local_set(&key_a, new_int(1)), 0);
	CHECK_EQ(*(int *)edo_task_local_get(&key_a), 1);
	/* Replacing runs the destructor on the old value. */
	self->v2 = new_int(10);
	CHECK_EQ(edo_task_local_set(&key_a, self->v2), 0);
	CHECK_EQ(atomic_load(&dtor_calls), 1);
	CHECK_EQ(atomic_load(&dtor_sum), 1);
	/* Setting the same value again does not. */
	CHECK_EQ(edo_task_local_set(&key_a, self->v2), 0);
	CHECK_EQ(atomic_load(&dtor_calls), 1);
	static int plain = 5;
	CHECK_EQ(edo_task_local_set(&key_b, &plain), 0);
	EDO_YIELD();
	/* Values live across suspensions. */
	CHECK(edo_task_local_get(&key_a) == self->v2);
	CHECK(edo_task_local_get(&key_b) == &plain);
	if (self->mode == 1) {
		for (;;)
			EDO_AWAIT_POLL(EDO_PENDING);
	}
	EDO_END();
}

typedef struct tl_main_frame {
	EDO_FRAME;
	edo_join *h;
	int rc;
	int seen_other;
	int after_completion_calls;
	long after_completion_sum;
} tl_main_frame;

EDO_ASYNC(tl_main, tl_main_frame, NULL)
{
	EDO_BEGIN();
	/* The block_on future is not a task. */
	CHECK_EQ(edo_task_local_set(&key_a, NULL), EDO_ENORUNTIME);
	CHECK(edo_task_local_get(&key_a) == NULL);
	/* Destructor on completion: ran before the joiner hears of it. */
	CHECK_EQ(EDO_SPAWN(&self->h, tl_task, .mode = 0), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	CHECK_EQ(atomic_load(&dtor_calls), 2);
	CHECK_EQ(atomic_load(&dtor_sum), 11);
	edo_join_detach(self->h);
	/* Destructor on cancellation. */
	atomic_store(&dtor_calls, 0);
	atomic_store(&dtor_sum, 0);
	CHECK_EQ(EDO_SPAWN(&self->h, tl_task, .mode = 1), 0);
	while (atomic_load(&dtor_calls) < 1)
		EDO_YIELD();
	{
		edo_join *other;
		CHECK_EQ(EDO_SPAWN(&other, tl_task, .mode = 2, .out_seen_other = &self->seen_other),
			 0);
		self->seen_other = -1;
		/* other is detached at once; wait for it below */
		edo_join_detach(other);
	}
	while (self->seen_other < 0)
		EDO_YIELD();
	CHECK_EQ(self->seen_other, 0);
	CHECK_EQ(atomic_load(&dtor_calls), 1);
	edo_join_abort(self->h);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, -ECANCELED);
	CHECK_EQ(atomic_load(&dtor_calls), 2);
	CHECK_EQ(atomic_load(&dtor_sum), 11);
	edo_join_detach(self->h);
	/* Left pending: the runtime's shutdown cancels it. */
	atomic_store(&dtor_calls, 0);
	atomic_store(&dtor_sum, 0);
	CHECK_EQ(EDO_SPAWN(NULL, tl_task, .mode = 1), 0);
	while (atomic_load(&dtor_calls) < 1)
		EDO_YIELD();
	EDO_END();
}

TEST(task_local_storage)
{
	/* Outside any runtime. */
	CHECK_EQ(edo_task_local_set(&key_a, NULL), EDO_ENORUNTIME);
	CHECK(edo_task_local_get(&key_a) == NULL);
	edo_runtime *rt = rt_new();
	tl_main_frame m = {EDO_FRAME_INIT(tl_main)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(atomic_load(&dtor_calls), 1);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(atomic_load(&dtor_calls), 2);
	CHECK_EQ(atomic_load(&dtor_sum), 11);
}

/* ==== ids and names ================================================================ */

typedef struct id_frame {
	EDO_FRAME;
	uint64_t id, id_after_yield;
	const char *name;
} id_frame;

EDO_ASYNC(id_task, id_frame, NULL)
{
	EDO_BEGIN();
	self->id = edo_task_id();
	self->name = edo_task_name();
	EDO_YIELD();
	self->id_after_yield = edo_task_id();
	EDO_END();
}

#define NID 200
typedef struct id_main_frame {
	EDO_FRAME;
	edo_join *h[NID];
	uint64_t ids[NID];
	int i, rc;
	uint64_t bo_id;
	id_frame plain, custom;
} id_main_frame;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

EDO_ASYNC(id_main, id_main_frame, NULL)
{
	EDO_BEGIN();
	self->bo_id = edo_task_id();
	CHECK(edo_task_name() == NULL);
	for (self->i = 0; self->i < NID; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], id_task, .id = 0), 0);
	for (self->i = 0; self->i < NID; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		id_frame *o = EDO_JOIN_OUTPUT(self->h[self->i], id_task);
		CHECK_NE(o->id, (uint64_t)0);
		CHECK_EQ(o->id, edo_join_id(self->h[self->i]));
		CHECK_EQ(o->id_after_yield, o->id);
		CHECK_STREQ(o->name, "id_task");
		self->ids[self->i] = o->id;
		edo_abort_handle *ah = edo_join_abort_handle(self->h[self->i]);
		CHECK_EQ(edo_abort_handle_id(ah), o->id);
		edo_abort_handle_drop(ah);
		edo_join_detach(self->h[self->i]);
	}
	/* Spawned without options: no name. */
	{
		id_frame f = {EDO_FRAME_INIT(id_task)};
		CHECK_EQ(edo_spawn(&f.edo_base, sizeof f, &self->h[0]), 0);
	}
	EDO_AWAIT_JOIN(self->h[0], &self->rc);
	self->plain = *EDO_JOIN_OUTPUT(self->h[0], id_task);
	edo_join_detach(self->h[0]);
	/* Spawned through a handle with a custom name. */
	{
		id_frame f = {EDO_FRAME_INIT(id_task)};
		edo_handle *cur = edo_handle_current();
		edo_spawn_opts o = {.name = "custom", .file = __FILE__, .line = __LINE__};
		CHECK_EQ(edo_spawn_on(cur, &f.edo_base, sizeof f, &o, &self->h[0]), 0);
		edo_handle_drop(cur);
	}
	EDO_AWAIT_JOIN(self->h[0], &self->rc);
	self->custom = *EDO_JOIN_OUTPUT(self->h[0], id_task);
	edo_join_detach(self->h[0]);
	EDO_END();
}

TEST(task_ids_and_names)
{
	CHECK_EQ(edo_task_id(), (uint64_t)0);
	CHECK(edo_task_name() == NULL);
	edo_runtime *rt = rt_new();
	id_main_frame *m = calloc(1, sizeof *m);
	CHECK(m != NULL);
	*m = (id_main_frame){EDO_FRAME_INIT(id_main)};
	CHECK_EQ(edo_block_on(rt, &m->edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(m->bo_id, (uint64_t)0); /* the block_on future is not a task */
	qsort(m->ids, NID, sizeof m->ids[0], cmp_u64);
	for (int i = 1; i < NID; i++)
		CHECK_NE(m->ids[i], m->ids[i - 1]);
	CHECK(m->plain.name == NULL);
	CHECK_NE(m->plain.id, (uint64_t)0);
	CHECK_STREQ(m->custom.name, "custom");
	CHECK_NE(m->custom.id, m->plain.id);
	CHECK_EQ(edo_task_id(), (uint64_t)0);
	free(m);
}

/* ==== hooks ========================================================================= */

#define HOOK_MAX 64
typedef struct hook_rec {
	atomic_int spawn, term, before, after, park, unpark;
	uint64_t spawned[HOOK_MAX], terminated[HOOK_MAX];
	uint64_t polling; /* id between before and after, 0 outside */
	int nested;
} hook_rec;

static void h_spawn(void *ud, uint64_t id)
{
	hook_rec *h = ud;
	int i = atomic_fetch_add(&h->spawn, 1);
	if (i < HOOK_MAX)
		h->spawned[i] = id;
}
static void h_term(void *ud, uint64_t id)
{
	hook_rec *h = ud;
	int i = atomic_fetch_add(&h->term, 1);
	if (i < HOOK_MAX)
		h->terminated[i] = id;
}
static void h_before(void *ud, uint64_t id)
{
	hook_rec *h = ud;
	if (h->polling)
		h->nested++;
	h->polling = id;
	CHECK_EQ(edo_task_id(), id);
	atomic_fetch_add(&h->before, 1);
}
static void h_after(void *ud, uint64_t id)
{
	hook_rec *h = ud;
	if (h->polling != id)
		h->nested++;
	h->polling = 0;
	atomic_fetch_add(&h->after, 1);
}
static void h_park(void *ud)
{
	atomic_fetch_add(&((hook_rec *)ud)->park, 1);
}
static void h_unpark(void *ud)
{
	atomic_fetch_add(&((hook_rec *)ud)->unpark, 1);
}

/* Wakes @w once the runtime has parked (so the park is certain). */
typedef struct late_waker {
	edo_waker w;
	atomic_int *flag;
	atomic_int *parks;
} late_waker;

static void *late_wake_thread(void *arg)
{
	late_waker *lw = arg;
	while (atomic_load(lw->parks) < 1)
		test_sleep_ms(1);
	atomic_store(lw->flag, 1);
	edo_waker_wake(lw->w);
	return NULL;
}

typedef struct yl_frame {
	EDO_FRAME;
	int i;
} yl_frame;

EDO_ASYNC(three_yields, yl_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < 3; self->i++)
		EDO_YIELD();
	EDO_END();
}

typedef struct hooks_main_frame {
	EDO_FRAME;
	hook_rec *hr;
	edo_join *h[10];
	uint64_t ids[12];
	edo_join *j;
	int i, rc;
	atomic_int flag;
	late_waker lw;
	pthread_t th;
} hooks_main_frame;

EDO_ASYNC(hooks_main, hooks_main_frame, NULL)
{
	EDO_BEGIN();
	/* 10 tasks of 3 yields: 4 polls each. */
	for (self->i = 0; self->i < 10; self->i++) {
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], three_yields, .i = 0), 0);
		self->ids[self->i] = edo_join_id(self->h[self->i]);
	}
	for (self->i = 0; self->i < 10; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->h[self->i]);
	}
	CHECK_EQ(atomic_load(&self->hr->before), 40);
	/* One aborted before it was polled: spawn + terminate, no poll. */
	CHECK_EQ(EDO_SPAWN(&self->j, three_yields, .i = 0), 0);
	self->ids[10] = edo_join_id(self->j);
	edo_join_abort(self->j);
	EDO_AWAIT_JOIN(self->j, &self->rc);
	CHECK_EQ(self->rc, -ECANCELED);
	edo_join_detach(self->j);
	/* Park: nothing to do until another thread wakes us. */
	self->lw = (late_waker){edo_waker_clone(cx->waker), &self->flag, &self->hr->park};
	CHECK_EQ(pthread_create(&self->th, NULL, late_wake_thread, &self->lw), 0);
	EDO_AWAIT_POLL(atomic_load(&self->flag) ? EDO_READY : EDO_PENDING);
	CHECK_EQ(pthread_join(self->th, NULL), 0);
	/* One left pending, never polled: terminated by the runtime's shutdown. */
	CHECK_EQ(EDO_SPAWN(&self->j, three_yields, .i = 0), 0);
	self->ids[11] = edo_join_id(self->j);
	edo_join_detach(self->j);
	EDO_END();
}

TEST(runtime_hooks)
{
	hook_rec hr = {0};
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.hooks = (edo_runtime_hooks){.on_task_spawn = h_spawn,
				      .on_task_terminate = h_term,
				      .before_task_poll = h_before,
				      .after_task_poll = h_after,
				      .on_thread_park = h_park,
				      .on_thread_unpark = h_unpark};
	b.hooks_ud = &hr;
	edo_runtime *rt = NULL;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	hooks_main_frame *m = calloc(1, sizeof *m);
	CHECK(m != NULL);
	*m = (hooks_main_frame){EDO_FRAME_INIT(hooks_main), .hr = &hr};
	CHECK_EQ(edo_block_on(rt, &m->edo_base), 0);
	CHECK_EQ(hr.nested, 0);
	CHECK_EQ(atomic_load(&hr.spawn), 12);
	CHECK_EQ(atomic_load(&hr.term), 11);
	/* The aborted task and the last one were never polled. */
	CHECK_EQ(atomic_load(&hr.before), 40);
	CHECK_EQ(atomic_load(&hr.after), 40);
	CHECK_GE(atomic_load(&hr.park), 1);
	CHECK_EQ(atomic_load(&hr.park), atomic_load(&hr.unpark));
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(atomic_load(&hr.term), 12);
	CHECK_EQ(atomic_load(&hr.before), 40);
	for (int i = 0; i < 12; i++) {
		CHECK_EQ(hr.spawned[i], m->ids[i]);
		bool found = false;
		for (int k = 0; k < 12; k++)
			found |= hr.terminated[k] == m->ids[i];
		CHECK(found);
	}
	/* The last task terminated last (at shutdown). */
	CHECK_EQ(hr.terminated[11], m->ids[11]);
	free(m);
}

TEST_MAIN()
