/* Notify, Barrier, OnceCell; JoinSet, select and join. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>

#include "test_sync_util.h"

/* ==== notify ============================================================================== */

TEST(notify_permit_stored_before_wait)
{
	edo_notify n;
	edo_notify_init(&n);
	edo_notify_one(&n);
	test_waker t;
	tw_init(&t);
	edo_notified_fut f;
	CHECK_EQ(tw_poll(&t, edo_notify_notified(&f, &n)), EDO_READY);
	/* The permit was taken: the next waits. */
	CHECK_EQ(tw_poll(&t, edo_notify_notified(&f, &n)), EDO_PENDING);
	edo_future_drop(&f.base);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

TEST(notify_permits_do_not_accumulate)
{
	edo_notify n;
	edo_notify_init(&n);
	edo_notify_one(&n);
	edo_notify_one(&n);
	edo_notify_one(&n);
	test_waker t;
	tw_init(&t);
	edo_notified_fut a, b;
	CHECK_EQ(tw_poll(&t, edo_notify_notified(&a, &n)), EDO_READY);
	CHECK_EQ(tw_poll(&t, edo_notify_notified(&b, &n)), EDO_PENDING);
	edo_future_drop(&b.base);
}

TEST(notify_one_wakes_waiters_in_fifo_order)
{
	edo_notify n;
	edo_notify_init(&n);
	enum { N = 4 };
	test_waker t[N];
	edo_notified_fut f[N];
	for (int i = 0; i < N; i++) {
		tw_init(&t[i]);
		CHECK_EQ(tw_poll(&t[i], edo_notify_notified(&f[i], &n)), EDO_PENDING);
	}
	for (int i = 0; i < N; i++) {
		edo_notify_one(&n);
		for (int j = 0; j < N; j++)
			CHECK_EQ(tw_woken(&t[j]), j == i ? 1 : 0);
		CHECK_EQ(tw_poll(&t[i], &f[i].base), EDO_READY);
	}
	/* All served: the next notify_one stores a permit. */
	edo_notify_one(&n);
	CHECK_EQ(tw_poll(&t[0], edo_notify_notified(&f[0], &n)), EDO_READY);
}

TEST(notify_last_wakes_newest)
{
	edo_notify n;
	edo_notify_init(&n);
	test_waker t[3];
	edo_notified_fut f[3];
	for (int i = 0; i < 3; i++) {
		tw_init(&t[i]);
		CHECK_EQ(tw_poll(&t[i], edo_notify_notified(&f[i], &n)), EDO_PENDING);
	}
	edo_notify_last(&n);
	CHECK_EQ(tw_woken(&t[2]), 1);
	CHECK_EQ(tw_woken(&t[0]) + tw_woken(&t[1]), 0);
	CHECK_EQ(tw_poll(&t[2], &f[2].base), EDO_READY);
	edo_notify_one(&n);
	CHECK_EQ(tw_woken(&t[0]), 1);
	CHECK_EQ(tw_poll(&t[0], &f[0].base), EDO_READY);
	edo_future_drop(&f[1].base);
}

TEST(notify_dropped_waiter_forwards_notify_one)
{
	edo_notify n;
	edo_notify_init(&n);
	test_waker t1, t2;
	tw_init(&t1);
	tw_init(&t2);
	edo_notified_fut a, b;
	CHECK_EQ(tw_poll(&t1, edo_notify_notified(&a, &n)), EDO_PENDING);
	CHECK_EQ(tw_poll(&t2, edo_notify_notified(&b, &n)), EDO_PENDING);
	edo_notify_one(&n); /* picks a */
	CHECK_EQ(tw_woken(&t1), 1);
	CHECK_EQ(tw_woken(&t2), 0);
	edo_future_drop(&a.base); /* a never took it: b gets it */
	CHECK_EQ(tw_woken(&t2), 1);
	CHECK_EQ(tw_poll(&t2, &b.base), EDO_READY);
	/* With nobody else waiting, the forwarded notification becomes the permit. */
	CHECK_EQ(tw_poll(&t1, edo_notify_notified(&a, &n)), EDO_PENDING);
	edo_notify_one(&n);
	edo_future_drop(&a.base);
	CHECK_EQ(tw_poll(&t1, edo_notify_notified(&a, &n)), EDO_READY);
	/* A pending waiter that was not notified forwards nothing. */
	CHECK_EQ(tw_poll(&t1, edo_notify_notified(&a, &n)), EDO_PENDING);
	CHECK_EQ(tw_poll(&t2, edo_notify_notified(&b, &n)), EDO_PENDING);
	edo_future_drop(&a.base);
	CHECK_EQ(tw_woken(&t2), 0);
	edo_future_drop(&b.base);
	CHECK_EQ(tw_poll(&t1, edo_notify_notified(&a, &n)), EDO_PENDING);
	edo_future_drop(&a.base);
	CHECK_EQ(atomic_load(&t1.refs), 0);
	CHECK_EQ(atomic_load(&t2.refs), 0);
}

TEST(notify_waiters_wakes_current_waiters_only)
{
	edo_notify n;
	edo_notify_init(&n);
	enum { N = 70 }; /* more than one wake batch */
	static test_waker t[N];
	static edo_notified_fut f[N];
	for (int i = 0; i < N; i++) {
		tw_init(&t[i]);
		CHECK_EQ(tw_poll(&t[i], edo_notify_notified(&f[i], &n)), EDO_PENDING);
	}
	/* Created before the call but never polled: also notified. */
	edo_notified_fut early, late;
	test_waker te;
	tw_init(&te);
	edo_notify_notified(&early, &n);
	edo_notify_waiters(&n);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(tw_woken(&t[i]), 1);
		CHECK_EQ(tw_poll(&t[i], &f[i].base), EDO_READY);
	}
	CHECK_EQ(tw_poll(&te, &early.base), EDO_READY);
	/* No permit stored. */
	CHECK_EQ(tw_poll(&te, edo_notify_notified(&late, &n)), EDO_PENDING);
	edo_future_drop(&late.base);
	/* notify_waiters with nobody waiting leaves a stored permit alone. */
	edo_notify_one(&n);
	edo_notify_waiters(&n);
	CHECK_EQ(tw_poll(&te, edo_notify_notified(&late, &n)), EDO_READY);
	CHECK_EQ(atomic_load(&te.refs), 0);
}

TEST(notify_waker_replaced)
{
	edo_notify n;
	edo_notify_init(&n);
	test_waker t1, t2;
	tw_init(&t1);
	tw_init(&t2);
	edo_notified_fut a;
	CHECK_EQ(tw_poll(&t1, edo_notify_notified(&a, &n)), EDO_PENDING);
	CHECK_EQ(tw_poll(&t2, &a.base), EDO_PENDING);
	CHECK_EQ(atomic_load(&t1.refs), 0);
	edo_notify_one(&n);
	CHECK_EQ(tw_woken(&t2), 1);
	CHECK_EQ(tw_poll(&t2, &a.base), EDO_READY);
}

/* Ping-pong over two Notify, the second side sometimes dropping a future
 * that was already picked: the notification must be forwarded (here, into
 * the permit), or the pair deadlocks. */
typedef struct nping_frame {
	EDO_FRAME;
	edo_notify *mine, *theirs;
	long rounds, i;
	bool dropper, got;
	edo_notified_fut nf;
} nping_frame;

EDO_ASYNC(nping, nping_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->rounds; self->i++) {
		if (!self->dropper)
			edo_notify_one(self->theirs);
		self->got = false;
		if (self->dropper && (self->i % 3) == 0) {
			edo_notify_notified(&self->nf, self->mine);
			if (edo_future_poll(&self->nf.base, cx) == EDO_READY) {
				self->got = true;
			} else {
				EDO_YIELD();
				edo_future_drop(&self->nf.base); /* forwards if picked */
			}
		}
		if (!self->got)
			EDO_AWAIT(edo_notify_notified(&self->nf, self->mine));
		if (self->dropper)
			edo_notify_one(self->theirs);
	}
	EDO_END();
}

typedef struct npair_frame {
	EDO_FRAME;
	edo_notify a, b;
	long rounds;
	edo_join *h[2];
	int i, rc;
} npair_frame;

EDO_ASYNC(npair, npair_frame, NULL)
{
	EDO_BEGIN();
	edo_notify_init(&self->a);
	edo_notify_init(&self->b);
	CHECK_EQ(EDO_SPAWN(&self->h[0], nping, .mine = &self->a, .theirs = &self->b,
			   .rounds = self->rounds),
		 0);
	CHECK_EQ(EDO_SPAWN(&self->h[1], nping, .mine = &self->b, .theirs = &self->a,
			   .rounds = self->rounds, .dropper = true),
		 0);
	for (self->i = 0; self->i < 2; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

TEST(notify_ping_pong_with_drops_both_flavors)
{
	FLAVORS({
		npair_frame f = {EDO_FRAME_INIT(npair), .rounds = test_scale(100000)};
		test_block_on(flavor_, &f.edo_base);
	});
}

/* The notify benchmark's shape: 10 waiters counting wake-ups. */
typedef struct ncount_frame {
	EDO_FRAME;
	edo_notify *n;
	atomic_long *count;
	atomic_bool *stop;
	edo_notified_fut nf;
} ncount_frame;

EDO_ASYNC(ncount, ncount_frame, NULL)
{
	EDO_BEGIN();
	for (;;) {
		EDO_AWAIT(edo_notify_notified(&self->nf, self->n));
		if (atomic_load(self->stop))
			break;
		atomic_fetch_add(self->count, 1);
	}
	EDO_END();
}

typedef struct nmain_frame {
	EDO_FRAME;
	edo_notify n;
	atomic_long count;
	atomic_bool stop;
	long target;
	edo_join *h[10];
	int i, rc;
} nmain_frame;

EDO_ASYNC(nmain, nmain_frame, NULL)
{
	EDO_BEGIN();
	edo_notify_init(&self->n);
	for (self->i = 0; self->i < 10; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], ncount, .n = &self->n, .count = &self->count,
				   .stop = &self->stop),
			 0);
	while (atomic_load(&self->count) < self->target) {
		edo_notify_one(&self->n);
		EDO_YIELD();
	}
	atomic_store(&self->stop, true);
	for (self->i = 0; self->i < 10; self->i++) {
		while (!edo_join_is_finished(self->h[self->i])) {
			edo_notify_waiters(&self->n);
			EDO_YIELD();
		}
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

TEST(notify_many_waiters_both_flavors)
{
	FLAVORS({
		nmain_frame f = {EDO_FRAME_INIT(nmain), .target = test_scale(100000)};
		test_block_on(flavor_, &f.edo_base);
		CHECK_GE(atomic_load(&f.count), f.target);
	});
}

/* Threads racing notify_one / notify_waiters against a waiter that polls
 * and drops: every notified future completes or is dropped cleanly. */
typedef struct nthread_arg {
	edo_notify *n;
	atomic_bool *stop;
	atomic_int *started;
} nthread_arg;

static void *notifier_thread(void *p)
{
	nthread_arg *a = p;
	atomic_fetch_add(a->started, 1);
	for (unsigned i = 0; !atomic_load(a->stop); i++) {
		if (i % 7 == 0)
			edo_notify_waiters(a->n);
		else if (i % 2)
			edo_notify_one(a->n);
		else
			edo_notify_last(a->n);
	}
	return NULL;
}

TEST(notify_thread_races)
{
	edo_notify n;
	edo_notify_init(&n);
	atomic_bool stop = false;
	atomic_int started = 0;
	nthread_arg a = {&n, &stop, &started};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, notifier_thread, &a);
	/* Race against running notifiers: on a loaded machine they may not
	 * have run yet, or may lose the CPU for the whole loop, so wait for them
	 * and go on past `iters` until a notification got through. */
	while (atomic_load(&started) < 2)
		sched_yield();
	long iters = test_scale(200000);
	test_waker t;
	tw_init(&t);
	long done = 0;
	for (long i = 0; i < iters || (done == 0 && i < 100 * iters); i++) {
		edo_notified_fut f[3];
		for (int k = 0; k < 3; k++)
			edo_notify_notified(&f[k], &n);
		for (int k = 0; k < 3; k++)
			done += tw_poll(&t, &f[k].base) == EDO_READY;
		if (i % 2)
			done += tw_poll(&t, &f[1].base) == EDO_READY;
		for (int k = 0; k < 3; k++)
			edo_future_drop(&f[k].base);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_GT(done, 0);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

/* ==== barrier ============================================================================= */

TEST(barrier_releases_all_with_one_leader)
{
	edo_barrier b;
	edo_barrier_init(&b, 3);
	test_waker t[3];
	edo_barrier_wait_fut w[3];
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 2; i++) {
			tw_init(&t[i]);
			CHECK_EQ(tw_poll(&t[i], edo_barrier_wait(&w[i], &b)), EDO_PENDING);
		}
		tw_init(&t[2]);
		CHECK_EQ(tw_poll(&t[2], edo_barrier_wait(&w[2], &b)), EDO_READY);
		CHECK(w[2].is_leader);
		for (int i = 0; i < 2; i++) {
			CHECK_EQ(tw_woken(&t[i]), 1);
			CHECK_EQ(tw_poll(&t[i], &w[i].base), EDO_READY);
			CHECK(!w[i].is_leader);
		}
	}
	edo_barrier_init(&b, 0); /* 0 is 1: never waits */
	CHECK_EQ(tw_poll(&t[0], edo_barrier_wait(&w[0], &b)), EDO_READY);
	CHECK(w[0].is_leader);
}

TEST(barrier_dropped_waiter_still_counts)
{
	edo_barrier b;
	edo_barrier_init(&b, 2);
	test_waker t1, t2;
	tw_init(&t1);
	tw_init(&t2);
	edo_barrier_wait_fut a, c;
	CHECK_EQ(tw_poll(&t1, edo_barrier_wait(&a, &b)), EDO_PENDING);
	edo_future_drop(&a.base);
	CHECK_EQ(atomic_load(&t1.refs), 0);
	CHECK_EQ(tw_poll(&t2, edo_barrier_wait(&c, &b)), EDO_READY);
	CHECK(c.is_leader);
}

/* A future with no error output, made on a NULL primitive, has nowhere to
 * report it: it completes at its first poll and does nothing (no waker
 * kept, no wake, no leader); polling it again and dropping it, polled or
 * not, are no-ops.  A NULL future pointer gives NULL. */
TEST(null_primitive_futures_complete_at_once)
{
	test_waker t;
	tw_init(&t);
	edo_notified_fut nf;
	CHECK_EQ(tw_poll(&t, edo_notify_notified(&nf, NULL)), EDO_READY);
	CHECK_EQ(tw_poll(&t, &nf.base), EDO_READY);
	edo_future_drop(&nf.base);
	edo_notify_notified(&nf, NULL);
	edo_future_drop(&nf.base);
	edo_barrier_wait_fut bf;
	CHECK_EQ(tw_poll(&t, edo_barrier_wait(&bf, NULL)), EDO_READY);
	CHECK(!bf.is_leader);
	CHECK_EQ(tw_poll(&t, &bf.base), EDO_READY);
	edo_future_drop(&bf.base);
	edo_barrier_wait(&bf, NULL);
	edo_future_drop(&bf.base);
	/* The same rule as the other such futures of sync.h. */
	edo_watch_closed_fut wc;
	CHECK_EQ(tw_poll(&t, edo_watch_closed(&wc, NULL)), EDO_READY);
	edo_future_drop(&wc.base);
	edo_joinset_shutdown_fut js;
	CHECK_EQ(tw_poll(&t, edo_joinset_shutdown(&js, NULL)), EDO_READY);
	edo_future_drop(&js.base);
	CHECK_EQ(tw_woken(&t), 0);
	CHECK_EQ(atomic_load(&t.refs), 0);
	/* The notify and barrier functions on NULL are no-ops. */
	edo_notify_init(NULL);
	edo_notify_one(NULL);
	edo_notify_last(NULL);
	edo_notify_waiters(NULL);
	edo_barrier_init(NULL, 2);
	edo_notify n;
	edo_notify_init(&n);
	edo_barrier b;
	edo_barrier_init(&b, 1);
	CHECK(edo_notify_notified(NULL, &n) == NULL);
	CHECK(edo_barrier_wait(NULL, &b) == NULL);
}

typedef struct bparty_frame {
	EDO_FRAME;
	edo_barrier *b;
	atomic_long *arrived;
	atomic_long *leaders;
	long n, rounds, r;
	edo_barrier_wait_fut w;
} bparty_frame;

EDO_ASYNC(bparty, bparty_frame, NULL)
{
	EDO_BEGIN();
	for (self->r = 0; self->r < self->rounds; self->r++) {
		atomic_fetch_add(self->arrived, 1);
		EDO_AWAIT(edo_barrier_wait(&self->w, self->b));
		/* Everyone of this round arrived before anyone left. */
		CHECK_GE(atomic_load(self->arrived), (self->r + 1) * self->n);
		if (self->w.is_leader)
			atomic_fetch_add(self->leaders, 1);
	}
	EDO_END();
}

typedef struct bmain_frame {
	EDO_FRAME;
	edo_barrier b;
	atomic_long arrived, leaders;
	long rounds;
	edo_join *h[8];
	int i, rc;
} bmain_frame;

EDO_ASYNC(bmain, bmain_frame, NULL)
{
	EDO_BEGIN();
	edo_barrier_init(&self->b, 8);
	for (self->i = 0; self->i < 8; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], bparty, .b = &self->b,
				   .arrived = &self->arrived, .leaders = &self->leaders, .n = 8,
				   .rounds = self->rounds),
			 0);
	for (self->i = 0; self->i < 8; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

TEST(barrier_rounds_both_flavors)
{
	FLAVORS({
		bmain_frame f = {EDO_FRAME_INIT(bmain), .rounds = test_scale(5000)};
		test_block_on(flavor_, &f.edo_base);
		CHECK_EQ(atomic_load(&f.leaders), f.rounds);
	});
}

/* ==== once_cell =========================================================================== */

TEST(once_cell_set_and_get)
{
	edo_once_cell c;
	edo_once_cell_init(&c);
	CHECK(!edo_once_cell_is_set(&c));
	CHECK(edo_once_cell_get(&c) == NULL);
	int x;
	CHECK_EQ(edo_once_cell_set(&c, &x), 0);
	CHECK(edo_once_cell_is_set(&c));
	CHECK(edo_once_cell_get(&c) == &x);
	CHECK_EQ(edo_once_cell_set(&c, NULL), -EEXIST);
	CHECK(edo_once_cell_get(&c) == &x);
	CHECK_EQ(edo_once_cell_set(NULL, NULL), -EINVAL);
}

/* The value the initialisers store. */
static int once_token;

/* An initialiser that yields a few times, counts its runs, may fail. */
typedef struct initer_frame {
	EDO_FRAME;
	atomic_int *runs;
	int fail;
	int k;
	void *result;
	int err;
} initer_frame;

EDO_ASYNC(initer, initer_frame, NULL)
{
	EDO_BEGIN();
	atomic_fetch_add(self->runs, 1);
	for (self->k = 0; self->k < 3; self->k++)
		EDO_YIELD();
	if (self->fail) {
		self->err = -EIO;
	} else {
		self->result = &once_token;
	}
	EDO_END();
}

typedef struct getter_frame {
	EDO_FRAME;
	edo_once_cell *c;
	atomic_int *runs;
	int fail;
	initer_frame init;
	edo_once_init_fut f;
	void *got;
	int rc;
} getter_frame;

static void getter_cleanup(getter_frame *self)
{
	edo_future_drop(&self->f.base);
}

EDO_ASYNC(getter, getter_frame, getter_cleanup)
{
	EDO_BEGIN();
	self->init = (initer_frame){EDO_FRAME_INIT(initer), .runs = self->runs, .fail = self->fail};
	EDO_AWAIT(edo_once_cell_get_or_init(&self->f, self->c, &self->init.edo_base,
					    &self->init.result, &self->init.err));
	self->rc = self->f.rc;
	self->got = self->f.value;
	EDO_END();
}

typedef struct once_main_frame {
	EDO_FRAME;
	edo_once_cell c;
	atomic_int runs;
	edo_join *h[10];
	int i, rc, ok, failed;
} once_main_frame;

EDO_ASYNC(once_main, once_main_frame, NULL)
{
	EDO_BEGIN();
	edo_once_cell_init(&self->c);
	/* The first to run fails; the next one's init stores the value. */
	for (self->i = 0; self->i < 10; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], getter, .c = &self->c, .runs = &self->runs,
				   .fail = self->i == 0),
			 0);
	/* Abort one waiter: cancelling a waiter (or a running init) is clean. */
	edo_join_abort(self->h[5]);
	for (self->i = 0; self->i < 10; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		if (self->rc == 0) {
			getter_frame *g = EDO_JOIN_OUTPUT(self->h[self->i], getter);
			if (g->rc == 0) {
				CHECK(g->got == &once_token);
				self->ok++;
			} else {
				CHECK_EQ(g->rc, -EIO);
				self->failed++;
			}
		}
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

TEST(once_cell_init_runs_once_under_races)
{
	FLAVORS({
		for (int rep = 0; rep < 20; rep++) {
			once_main_frame f = {EDO_FRAME_INIT(once_main)};
			test_block_on(flavor_, &f.edo_base);
			CHECK(edo_once_cell_is_set(&f.c));
			CHECK(edo_once_cell_get(&f.c) == &once_token);
			CHECK_LE(f.failed, 1);
			CHECK_GE(f.ok, 8);
			/* At most: the failing init, one aborted mid-init, the winner. */
			CHECK_LE(atomic_load(&f.runs), 3);
		}
	});
}

TEST(once_cell_bad_input)
{
	edo_once_init_fut f;
	test_waker t;
	tw_init(&t);
	CHECK_EQ(tw_poll(&t, edo_once_cell_get_or_init(&f, NULL, NULL, NULL, NULL)), EDO_READY);
	CHECK_EQ(f.rc, -EINVAL);
}

/* A waiter that finds the value already set leaves the semaphore's queue.
 * The initialiser stores the value and closes the semaphore, which moves
 * every waiter to a guard list and wakes them in batches of 32.  Here the
 * first wake polls the last waiter, still on that list: it completes, and
 * its owner drops and frees it at once.  Before the fix its node stayed on
 * the list, holding a clone of its waker, and close() then took the waker
 * out of the freed node (ASan: heap-use-after-free). */
typedef struct two_step {
	edo_future base;
	int polls;
} two_step;

/* An init future: PENDING on its first poll, READY on the next. */
static edo_poll two_step_poll(edo_future *f, edo_cx *cx)
{
	(void)cx;
	return ((two_step *)f)->polls++ ? EDO_READY : EDO_PENDING;
}

static const edo_future_vtable two_step_vt = {.poll = two_step_poll};

#define OCW_N 40 /* more waiters than close() wakes in one batch */

static struct {
	edo_once_init_fut *f[OCW_N];
	test_waker w[OCW_N];
	two_step init[OCW_N];
} ocw;

static void *const ocw_value = &once_token;

static void ocw_poll_last(test_waker *t)
{
	t->on_wake = NULL;
	int last = OCW_N - 1;
	CHECK_EQ(tw_woken(&ocw.w[last]), 0); /* not its batch yet */
	CHECK_EQ(tw_poll(&ocw.w[last], &ocw.f[last]->base), EDO_READY);
	CHECK_EQ(ocw.f[last]->rc, 0);
	CHECK(ocw.f[last]->value == &once_token);
	CHECK_EQ(atomic_load(&ocw.w[last].refs), 0); /* left the guard list */
	edo_future_drop(&ocw.f[last]->base);
	free(ocw.f[last]);
	ocw.f[last] = NULL;
}

TEST(once_cell_waiter_done_during_close_leaves_the_queue)
{
	edo_once_cell c;
	edo_once_cell_init(&c);
	two_step init = {{&two_step_vt}, 0};
	edo_once_init_fut first;
	test_waker w;
	tw_init(&w);
	CHECK_EQ(tw_poll(&w, edo_once_cell_get_or_init(&first, &c, &init.base, &ocw_value, NULL)),
		 EDO_PENDING); /* holds the permit, its init pending */
	for (int i = 0; i < OCW_N; i++) {
		tw_init(&ocw.w[i]);
		ocw.init[i] = (two_step){{&two_step_vt}, 0};
		ocw.f[i] = malloc(sizeof *ocw.f[i]);
		CHECK(ocw.f[i]);
		edo_once_cell_get_or_init(ocw.f[i], &c, &ocw.init[i].base, &ocw_value, NULL);
		CHECK_EQ(tw_poll(&ocw.w[i], &ocw.f[i]->base), EDO_PENDING);
	}
	ocw.w[0].on_wake = ocw_poll_last;
	CHECK_EQ(tw_poll(&w, &first.base), EDO_READY); /* stores, closes */
	CHECK(ocw.f[OCW_N - 1] == NULL);               /* the hook ran */
	for (int i = 0; i < OCW_N - 1; i++) {
		CHECK_EQ(tw_woken(&ocw.w[i]), 1);
		CHECK_EQ(tw_poll(&ocw.w[i], &ocw.f[i]->base), EDO_READY);
		CHECK(ocw.f[i]->value == &once_token);
		CHECK_EQ(ocw.init[i].polls, 0); /* no second init ran */
		edo_future_drop(&ocw.f[i]->base);
		free(ocw.f[i]);
		CHECK_EQ(atomic_load(&ocw.w[i].refs), 0);
	}
	CHECK_EQ(atomic_load(&w.refs), 0);
}

/* ==== joinset ============================================================================= */

/* A task that waits for its go signal, then returns its id. */
typedef struct gated_frame {
	EDO_FRAME;
	edo_oneshot_rx *go;
	atomic_int *done;
	int id, rc;
} gated_frame;

static void gated_cleanup(gated_frame *self)
{
	edo_oneshot_rx_drop(self->go);
}

EDO_ASYNC(gated, gated_frame, gated_cleanup)
{
	EDO_BEGIN();
	EDO_AWAIT_POLL(edo_oneshot_poll_recv(self->go, cx, NULL, &self->rc));
	if (self->done)
		atomic_fetch_add(self->done, 1);
	EDO_END();
}

typedef struct js_order_frame {
	EDO_FRAME;
	edo_joinset *js;
	edo_oneshot_tx *go[5];
	edo_join *h;
	int order[5], i, rc;
	int got[5];
} js_order_frame;

EDO_ASYNC(js_order, js_order_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_joinset_new(&self->js), 0);
	for (self->i = 0; self->i < 5; self->i++) {
		edo_oneshot_rx *rx;
		CHECK_EQ(edo_oneshot_new(0, &self->go[self->i], &rx), 0);
		CHECK_EQ(EDO_JOINSET_SPAWN(self->js, gated, .go = rx, .id = self->i), 0);
	}
	CHECK_EQ(edo_joinset_len(self->js), 5u);
	CHECK_EQ(edo_joinset_try_join_next(self->js, &self->h, &self->rc), -EAGAIN);
	for (self->i = 0; self->i < 5; self->i++) {
		CHECK_EQ(edo_oneshot_send(self->go[self->order[self->i]], NULL), 0);
		EDO_AWAIT_POLL(edo_joinset_poll_join_next(self->js, cx, &self->h, &self->rc));
		CHECK(self->h != NULL);
		CHECK_EQ(self->rc, 0);
		self->got[self->i] = EDO_JOIN_OUTPUT(self->h, gated)->id;
		edo_join_detach(self->h);
		CHECK_EQ(edo_joinset_len(self->js), (size_t)(4 - self->i));
	}
	EDO_AWAIT_POLL(edo_joinset_poll_join_next(self->js, cx, &self->h, &self->rc));
	CHECK(self->h == NULL);
	CHECK_EQ(self->rc, -ENOENT);
	edo_joinset_free(self->js);
	EDO_END();
}

TEST(joinset_joins_in_completion_order)
{
	FLAVORS({
		js_order_frame f = {EDO_FRAME_INIT(js_order), .order = {3, 1, 4, 0, 2}};
		test_block_on(flavor_, &f.edo_base);
		for (int i = 0; i < 5; i++)
			CHECK_EQ(f.got[i], f.order[i]);
	});
}

typedef struct js_abort_frame {
	EDO_FRAME;
	edo_joinset *js;
	edo_oneshot_tx *go[6];
	atomic_int done;
	edo_join *h;
	int i, rc, ok, cancelled;
	edo_joinset_shutdown_fut sd;
} js_abort_frame;

EDO_ASYNC(js_abort, js_abort_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_joinset_new(&self->js), 0);
	for (self->i = 0; self->i < 6; self->i++) {
		edo_oneshot_rx *rx;
		CHECK_EQ(edo_oneshot_new(0, &self->go[self->i], &rx), 0);
		CHECK_EQ(EDO_JOINSET_SPAWN(self->js, gated, .go = rx, .id = self->i,
					   .done = &self->done),
			 0);
	}
	/* Two finish; the rest are aborted. */
	edo_oneshot_send(self->go[0], NULL);
	edo_oneshot_send(self->go[1], NULL);
	while (atomic_load(&self->done) < 2)
		EDO_YIELD();
	edo_joinset_abort_all(self->js);
	for (;;) {
		EDO_AWAIT_POLL(edo_joinset_poll_join_next(self->js, cx, &self->h, &self->rc));
		if (!self->h)
			break;
		if (self->rc == 0)
			self->ok++;
		else if (self->rc == -ECANCELED)
			self->cancelled++;
		edo_join_detach(self->h);
	}
	CHECK_EQ(self->ok, 2);
	CHECK_EQ(self->cancelled, 4);
	/* shutdown: aborts and drains; the set is empty after. */
	for (self->i = 0; self->i < 3; self->i++) {
		edo_oneshot_rx *rx;
		edo_oneshot_tx *tx;
		CHECK_EQ(edo_oneshot_new(0, &tx, &rx), 0);
		CHECK_EQ(EDO_JOINSET_SPAWN(self->js, gated, .go = rx), 0);
		edo_oneshot_tx_drop(tx);
	}
	for (self->i = 0; self->i < 6; self->i++)
		if (self->i >= 2)
			edo_oneshot_tx_drop(self->go[self->i]);
	CHECK_EQ(edo_joinset_len(self->js), 3u);
	EDO_AWAIT(edo_joinset_shutdown(&self->sd, self->js));
	CHECK_EQ(edo_joinset_len(self->js), 0u);
	edo_joinset_free(self->js);
	EDO_END();
}

TEST(joinset_abort_all_and_shutdown)
{
	FLAVORS({
		js_abort_frame f = {EDO_FRAME_INIT(js_abort)};
		test_block_on(flavor_, &f.edo_base);
	});
}

typedef struct js_detach_frame {
	EDO_FRAME;
	edo_joinset *js;
	edo_oneshot_tx *go[4];
	atomic_int done;
	int i;
	bool direct_free;
} js_detach_frame;

EDO_ASYNC(js_detach, js_detach_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_joinset_new(&self->js), 0);
	for (self->i = 0; self->i < 4; self->i++) {
		edo_oneshot_rx *rx;
		CHECK_EQ(edo_oneshot_new(0, &self->go[self->i], &rx), 0);
		CHECK_EQ(EDO_JOINSET_SPAWN(self->js, gated, .go = rx, .done = &self->done), 0);
	}
	if (self->direct_free) {
		/* Freed with its tasks waiting: they are aborted and detached. */
		edo_joinset_free(self->js);
		for (self->i = 0; self->i < 4; self->i++)
			edo_oneshot_send(self->go[self->i], NULL);
		for (self->i = 0; self->i < 10; self->i++)
			EDO_YIELD();
		CHECK_EQ(atomic_load(&self->done), 0);
		EDO_RETURN();
	}
	edo_joinset_detach_all(self->js);
	CHECK_EQ(edo_joinset_len(self->js), 0u);
	edo_joinset_free(self->js);
	/* Detached tasks keep running to completion. */
	for (self->i = 0; self->i < 4; self->i++)
		edo_oneshot_send(self->go[self->i], NULL);
	while (atomic_load(&self->done) < 4)
		EDO_YIELD();
	EDO_END();
}

TEST(joinset_detach_all_and_free)
{
	FLAVORS({
		js_detach_frame f = {EDO_FRAME_INIT(js_detach)};
		test_block_on(flavor_, &f.edo_base);
	});
}

typedef struct square_frame {
	EDO_FRAME;
	long x, y;
} square_frame;

EDO_ASYNC(square, square_frame, NULL)
{
	EDO_BEGIN();
	if (self->x % 3 == 0)
		EDO_YIELD();
	self->y = self->x * self->x;
	EDO_END();
}

typedef struct js_many_frame {
	EDO_FRAME;
	edo_joinset *js;
	long n, i, sum, joined;
	edo_join *h;
	int rc;
} js_many_frame;

EDO_ASYNC(js_many, js_many_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_joinset_new(&self->js), 0);
	for (self->i = 0; self->i < self->n; self->i++)
		CHECK_EQ(EDO_JOINSET_SPAWN(self->js, square, .x = self->i), 0);
	for (;;) {
		EDO_AWAIT_POLL(edo_joinset_poll_join_next(self->js, cx, &self->h, &self->rc));
		if (!self->h)
			break;
		CHECK_EQ(self->rc, 0);
		self->sum += EDO_JOIN_OUTPUT(self->h, square)->y;
		self->joined++;
		edo_join_detach(self->h);
	}
	edo_joinset_free(self->js);
	EDO_END();
}

TEST(joinset_many_tasks_both_flavors)
{
	FLAVORS({
		js_many_frame f = {EDO_FRAME_INIT(js_many), .n = test_scale(100000)};
		test_block_on(flavor_, &f.edo_base);
		long want = 0;
		for (long i = 0; i < f.n; i++)
			want += i * i;
		CHECK_EQ(f.joined, f.n);
		CHECK_EQ(f.sum, want);
	});
}

TEST(joinset_free_with_running_tasks)
{
	/* Freed from inside the runtime with tasks still waiting: aborted,
	 * detached, nothing leaks (ASan). */
	FLAVORS({
		js_detach_frame f = {EDO_FRAME_INIT(js_detach), .direct_free = true};
		test_block_on(flavor_, &f.edo_base);
	});
	CHECK_EQ(edo_joinset_new(NULL), -EINVAL);
	edo_joinset_free(NULL);
	CHECK_EQ(edo_joinset_len(NULL), 0u);
}

/* ==== select and join ====================================================================== */

TEST(select_first_ready_wins_and_others_are_dropped)
{
	edo_notify n[3];
	edo_notified_fut nf[3];
	edo_future *futs[3];
	for (int i = 0; i < 3; i++) {
		edo_notify_init(&n[i]);
		futs[i] = edo_notify_notified(&nf[i], &n[i]);
	}
	test_waker t;
	tw_init(&t);
	edo_select_fut s;
	CHECK_EQ(tw_poll(&t, edo_select(&s, futs, 3, 0)), EDO_PENDING);
	edo_notify_one(&n[2]);
	CHECK_EQ(tw_woken(&t), 1);
	CHECK_EQ(tw_poll(&t, &s.base), EDO_READY);
	CHECK_EQ(s.index, 2L);
	/* The losers were dropped: their waiters are gone, so a notify_one on
	 * them stores a permit instead of waking anyone. */
	CHECK(edo_future_is_empty(&nf[0].base));
	CHECK(edo_future_is_empty(&nf[1].base));
	edo_notify_one(&n[0]);
	CHECK_EQ(tw_woken(&t), 0);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

TEST(select_biased_and_random_start)
{
	edo_notify n[2];
	edo_notified_fut nf[2];
	edo_future *futs[2] = {&nf[0].base, &nf[1].base};
	test_waker t;
	tw_init(&t);
	edo_select_fut s;
	int wins[2] = {0, 0};
	for (int rep = 0; rep < 200; rep++) {
		for (int i = 0; i < 2; i++) {
			edo_notify_init(&n[i]);
			edo_notify_one(&n[i]); /* both ready */
			edo_notify_notified(&nf[i], &n[i]);
		}
		CHECK_EQ(tw_poll(&t, edo_select(&s, futs, 2, rep < 100 ? EDO_SELECT_BIASED : 0)),
			 EDO_READY);
		if (rep < 100)
			CHECK_EQ(s.index, 0L);
		else
			wins[s.index]++;
	}
	CHECK_GT(wins[0], 10);
	CHECK_GT(wins[1], 10);
}

TEST(select_skips_empty_slots_and_keeps_others)
{
	edo_select_fut s;
	test_waker t;
	tw_init(&t);
	edo_future *none[3] = {NULL, NULL, NULL};
	CHECK_EQ(tw_poll(&t, edo_select(&s, none, 3, 0)), EDO_READY);
	CHECK_EQ(s.index, -1L);
	/* Unknown flags: refused at once, the futures untouched. */
	edo_notify bad;
	edo_notify_init(&bad);
	edo_notified_fut badf;
	edo_future *one[1] = {edo_notify_notified(&badf, &bad)};
	CHECK_EQ(tw_poll(&t, edo_select(&s, one, 1, 0xff00u)), EDO_READY);
	CHECK_EQ(s.index, (long)-EINVAL);
	edo_future_drop(&s.base);
	CHECK(one[0]->vt != NULL); /* neither polled to completion nor dropped */
	edo_future_drop(one[0]);
	edo_notify n[2];
	edo_notified_fut nf[2];
	edo_future *futs[3];
	for (int i = 0; i < 2; i++) {
		edo_notify_init(&n[i]);
		futs[i] = edo_notify_notified(&nf[i], &n[i]);
	}
	futs[2] = NULL;
	CHECK_EQ(tw_poll(&t, edo_select(&s, futs, 3, EDO_SELECT_KEEP_OTHERS)), EDO_PENDING);
	edo_notify_one(&n[0]);
	CHECK_EQ(tw_poll(&t, &s.base), EDO_READY);
	CHECK_EQ(s.index, 0L);
	/* Kept: the other is still waiting; select again without the winner. */
	futs[0] = NULL;
	CHECK_EQ(tw_poll(&t, edo_select(&s, futs, 3, EDO_SELECT_KEEP_OTHERS)), EDO_PENDING);
	edo_notify_one(&n[1]);
	CHECK_EQ(tw_poll(&t, &s.base), EDO_READY);
	CHECK_EQ(s.index, 1L);
	/* Dropping a pending select drops its futures. */
	for (int i = 0; i < 2; i++)
		futs[i] = edo_notify_notified(&nf[i], &n[i]);
	CHECK_EQ(tw_poll(&t, edo_select(&s, futs, 2, 0)), EDO_PENDING);
	edo_future_drop(&s.base);
	CHECK(edo_future_is_empty(&nf[0].base) && edo_future_is_empty(&nf[1].base));
	CHECK_EQ(atomic_load(&t.refs), 0);
}

TEST(join_all_waits_for_every_future)
{
	edo_semaphore sem;
	edo_semaphore_init(&sem, 0);
	edo_acquire_fut a[3];
	edo_future *futs[3];
	for (int i = 0; i < 3; i++)
		futs[i] = edo_semaphore_acquire_many(&a[i], &sem, (size_t)i + 1);
	test_waker t;
	tw_init(&t);
	edo_join_all_fut j;
	CHECK_EQ(tw_poll(&t, edo_join_all(&j, futs, 3)), EDO_PENDING);
	edo_semaphore_release(&sem, 1);
	CHECK_EQ(tw_poll(&t, &j.base), EDO_PENDING);
	/* Done: never polled again, but left as it is (not marked empty). */
	CHECK(!edo_future_is_empty(&a[0].base));
	CHECK_EQ(a[0].rc, 0);
	edo_semaphore_release(&sem, 2);
	CHECK_EQ(tw_poll(&t, &j.base), EDO_PENDING);
	edo_semaphore_release(&sem, 3);
	CHECK_EQ(tw_poll(&t, &j.base), EDO_READY);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(a[i].rc, 0);
	/* Dropping a pending join cancels what is left. */
	for (int i = 0; i < 3; i++)
		futs[i] = edo_semaphore_acquire(&a[i], &sem);
	CHECK_EQ(tw_poll(&t, edo_join_all(&j, futs, 3)), EDO_PENDING);
	edo_future_drop(&j.base);
	CHECK_EQ(edo_semaphore_release(&sem, 1), 0);
	CHECK_EQ(edo_semaphore_available_permits(&sem), 1u);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

/* join_all over mpsc reserves: the permits the completed reserves hold stay
 * usable.  Before the fix join_all set their vt to NULL: a permit could be
 * neither sent (-EINVAL) nor given back by dropping it (a no-op), and its
 * channel slot was lost for good. */
TEST(join_all_keeps_completed_permits_usable)
{
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	CHECK_EQ(edo_mpsc_new(2, sizeof(int), &tx, &rx), 0);
	edo_mpsc_permit p[3];
	edo_future *futs[3] = {edo_mpsc_reserve(&p[0], tx), edo_mpsc_reserve(&p[1], tx)};
	test_waker t;
	tw_init(&t);
	edo_join_all_fut j;
	CHECK_EQ(tw_poll(&t, edo_join_all(&j, futs, 2)), EDO_READY);
	CHECK_EQ(j.rc, 0);
	CHECK_EQ(p[0].rc, 0);
	CHECK_EQ(p[1].rc, 0);
	CHECK_EQ(edo_mpsc_capacity(tx), 0u);
	int v = 7, got = 0;
	CHECK_EQ(edo_mpsc_permit_send(&p[0], &v), 0);
	edo_future_drop(&p[1].base); /* gives its slot back */
	CHECK_EQ(edo_mpsc_capacity(tx), 1u);
	CHECK_EQ(edo_mpsc_try_recv(rx, &got), 0);
	CHECK_EQ(got, 7);
	CHECK_EQ(edo_mpsc_capacity(tx), 2u);
	/* Dropped while one reserve still waits: that one is cancelled, the
	 * completed ones are left to their owner. */
	for (int i = 0; i < 3; i++)
		futs[i] = edo_mpsc_reserve(&p[i], tx);
	CHECK_EQ(tw_poll(&t, edo_join_all(&j, futs, 3)), EDO_PENDING);
	CHECK_EQ(edo_mpsc_capacity(tx), 0u);
	edo_future_drop(&j.base);
	int held = 0;
	for (int i = 0; i < 3; i++) {
		if (p[i].base.vt) { /* completed: holds a slot */
			CHECK_EQ(p[i].rc, 0);
			held++;
		}
	}
	CHECK_EQ(held, 2);
	for (int i = 0; i < 3; i++)
		edo_future_drop(&p[i].base);
	CHECK_EQ(edo_mpsc_capacity(tx), 2u);
	CHECK_EQ(atomic_load(&t.refs), 0);
	edo_mpsc_tx_drop(tx);
	edo_mpsc_rx_drop(rx);
}

TEST(join_all_bounds)
{
	/* EDO_JOIN_ALL_MAX futures: the last one's completion counts. */
	edo_semaphore sem;
	edo_semaphore_init(&sem, 0);
	static edo_acquire_fut a[EDO_JOIN_ALL_MAX + 1];
	static edo_future *futs[EDO_JOIN_ALL_MAX + 1];
	for (int i = 0; i <= EDO_JOIN_ALL_MAX; i++)
		futs[i] = edo_semaphore_acquire(&a[i], &sem);
	test_waker t;
	tw_init(&t);
	edo_join_all_fut j;
	CHECK_EQ(tw_poll(&t, edo_join_all(&j, futs, EDO_JOIN_ALL_MAX)), EDO_PENDING);
	CHECK_EQ(edo_semaphore_release(&sem, EDO_JOIN_ALL_MAX - 1), 0);
	CHECK_EQ(tw_poll(&t, &j.base), EDO_PENDING);
	CHECK_EQ(edo_semaphore_release(&sem, 1), 0);
	CHECK_EQ(tw_poll(&t, &j.base), EDO_READY);
	CHECK_EQ(j.rc, 0);
	for (int i = 0; i < EDO_JOIN_ALL_MAX; i++)
		CHECK_EQ(a[i].rc, 0);
	/* More: refused at once, no future polled or dropped. */
	edo_semaphore_init(&sem, 0);
	for (int i = 0; i <= EDO_JOIN_ALL_MAX; i++)
		futs[i] = edo_semaphore_acquire(&a[i], &sem);
	CHECK_EQ(tw_poll(&t, edo_join_all(&j, futs, EDO_JOIN_ALL_MAX + 1)), EDO_READY);
	CHECK_EQ(j.rc, -EINVAL);
	edo_future_drop(&j.base);
	CHECK_EQ(edo_semaphore_release(&sem, 1), 0);
	CHECK_EQ(edo_semaphore_available_permits(&sem), 1u); /* nobody queued */
	for (int i = 0; i <= EDO_JOIN_ALL_MAX; i++) {
		CHECK(!edo_future_is_empty(futs[i]));
		edo_future_drop(futs[i]);
	}
	CHECK_EQ(atomic_load(&t.refs), 0);
}

/* select in a coroutine over an always-ready, budget-consuming branch: the
 * task still yields (the budget), so another task gets to run meanwhile. */
typedef struct sel_task_frame {
	EDO_FRAME;
	atomic_long *ticks;
	edo_notify stop;
	edo_notified_fut nf;
	edo_acquire_fut lk;
	edo_mutex m;
	edo_select_fut sel;
	edo_future *futs[2];
	long rounds, ticks_seen;
	int i;
} sel_task_frame;

EDO_ASYNC(sel_task, sel_task_frame, NULL)
{
	EDO_BEGIN();
	edo_notify_init(&self->stop);
	edo_mutex_init(&self->m);
	for (self->i = 0; self->i < 1000; self->i++) {
		self->futs[0] = edo_mutex_lock(&self->lk, &self->m);
		self->futs[1] = edo_notify_notified(&self->nf, &self->stop);
		EDO_AWAIT(edo_select(&self->sel, self->futs, 2, EDO_SELECT_BIASED));
		CHECK_EQ(self->sel.index, 0L);
		edo_mutex_unlock(&self->m);
		self->rounds++;
	}
	self->ticks_seen = atomic_load(self->ticks);
	EDO_END();
}

typedef struct ticker_frame {
	EDO_FRAME;
	atomic_long *ticks;
	atomic_bool *stop;
} ticker_frame;

EDO_ASYNC(ticker, ticker_frame, NULL)
{
	EDO_BEGIN();
	while (!atomic_load(self->stop)) {
		atomic_fetch_add(self->ticks, 1);
		EDO_YIELD();
	}
	EDO_END();
}

typedef struct sel_main_frame {
	EDO_FRAME;
	edo_join *h, *t;
	atomic_long ticks;
	atomic_bool stop;
	int rc;
	long rounds, ticks_seen;
} sel_main_frame;

EDO_ASYNC(sel_main, sel_main_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->h, sel_task, .ticks = &self->ticks), 0);
	CHECK_EQ(EDO_SPAWN(&self->t, ticker, .ticks = &self->ticks, .stop = &self->stop), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	self->rounds = EDO_JOIN_OUTPUT(self->h, sel_task)->rounds;
	self->ticks_seen = EDO_JOIN_OUTPUT(self->h, sel_task)->ticks_seen;
	edo_join_detach(self->h);
	atomic_store(&self->stop, true);
	EDO_AWAIT_JOIN(self->t, &self->rc);
	edo_join_detach(self->t);
	EDO_END();
}

TEST(select_in_coroutine_respects_budget)
{
	sel_main_frame f = {EDO_FRAME_INIT(sel_main)};
	test_block_on(EDO_RT_CURRENT_THREAD, &f.edo_base);
	CHECK_EQ(f.rounds, 1000L);
	CHECK_GT(f.ticks_seen, 0L); /* the ticker ran while sel_task looped */
}

TEST_MAIN()
