/* The batch semaphore and what is built on it: Semaphore, Mutex, RwLock.
 * Behaviour tests poll futures by hand with counting wakers (exact FIFO and
 * wake order); runtime tests cover coroutines on both flavours, the budget,
 * and contention stress under TSan. */
#include <errno.h>

#include "test_sync_util.h"

/* ---- semaphore: behaviour ---------------------------------------------------------- */

TEST(semaphore_try_acquire_release)
{
	edo_semaphore s;
	CHECK_EQ(edo_semaphore_init(&s, 2), 0);
	CHECK_EQ(edo_semaphore_available_permits(&s), 2u);
	CHECK_EQ(edo_semaphore_try_acquire(&s), 0);
	CHECK_EQ(edo_semaphore_try_acquire_many(&s, 2), -EAGAIN);
	CHECK_EQ(edo_semaphore_try_acquire(&s), 0);
	CHECK_EQ(edo_semaphore_try_acquire(&s), -EAGAIN);
	CHECK_EQ(edo_semaphore_release(&s, 2), 0);
	CHECK_EQ(edo_semaphore_available_permits(&s), 2u);
	CHECK_EQ(edo_semaphore_try_acquire_many(&s, 0), 0);
	CHECK_EQ(edo_semaphore_add_permits(&s, 3), 0);
	CHECK_EQ(edo_semaphore_available_permits(&s), 5u);
	CHECK_EQ(edo_semaphore_forget_permits(&s, 2), 2u);
	CHECK_EQ(edo_semaphore_available_permits(&s), 3u);
	CHECK_EQ(edo_semaphore_forget_permits(&s, 10), 3u);
	CHECK_EQ(edo_semaphore_available_permits(&s), 0u);
}

TEST(semaphore_bad_input)
{
	edo_semaphore s;
	CHECK_EQ(edo_semaphore_init(NULL, 1), -EINVAL);
	CHECK_EQ(edo_semaphore_init(&s, EDO_SEMAPHORE_MAX_PERMITS + 1), -EINVAL);
	CHECK_EQ(edo_semaphore_init(&s, EDO_SEMAPHORE_MAX_PERMITS), 0);
	CHECK_EQ(edo_semaphore_release(&s, 1), -EOVERFLOW);
	CHECK_EQ(edo_semaphore_available_permits(&s), EDO_SEMAPHORE_MAX_PERMITS);
	CHECK_EQ(edo_semaphore_init(&s, 1), 0);
	CHECK_EQ(edo_semaphore_release(&s, EDO_SEMAPHORE_MAX_PERMITS + 1), -EINVAL);
	CHECK_EQ(edo_semaphore_try_acquire_many(&s, EDO_SEMAPHORE_MAX_PERMITS + 1), -EINVAL);
	CHECK_EQ(edo_semaphore_release(NULL, 1), -EINVAL);
	CHECK_EQ(edo_semaphore_available_permits(&s), 1u);
	edo_acquire_fut a;
	test_waker t;
	tw_init(&t);
	CHECK_EQ(tw_poll(&t, edo_semaphore_acquire_many(&a, &s, EDO_SEMAPHORE_MAX_PERMITS + 1)),
		 EDO_READY);
	CHECK_EQ(a.rc, -EINVAL);
	CHECK_EQ(tw_poll(&t, edo_semaphore_acquire(&a, NULL)), EDO_READY);
	CHECK_EQ(a.rc, -EINVAL);
	CHECK_EQ(tw_poll(&t, edo_semaphore_acquire_many(&a, &s, 0)), EDO_READY);
	CHECK_EQ(a.rc, 0);
	CHECK(edo_semaphore_acquire(NULL, &s) == NULL);
	CHECK_EQ(edo_semaphore_available_permits(&s), 1u);
}

TEST(semaphore_acquire_ready_and_pending)
{
	edo_semaphore s;
	edo_semaphore_init(&s, 1);
	test_waker t;
	tw_init(&t);
	edo_acquire_fut a, b;
	CHECK_EQ(tw_poll(&t, edo_semaphore_acquire(&a, &s)), EDO_READY);
	CHECK_EQ(a.rc, 0);
	CHECK_EQ(tw_poll(&t, edo_semaphore_acquire(&b, &s)), EDO_PENDING);
	CHECK_EQ(tw_poll(&t, &b.base), EDO_PENDING); /* a spurious poll stays pending */
	CHECK_EQ(tw_woken(&t), 0);
	edo_semaphore_release(&s, 1);
	CHECK_EQ(tw_woken(&t), 1);
	CHECK_EQ(tw_poll(&t, &b.base), EDO_READY);
	CHECK_EQ(b.rc, 0);
	CHECK_EQ(tw_poll(&t, &b.base), EDO_READY); /* stays ready */
	CHECK_EQ(edo_semaphore_available_permits(&s), 0u);
	edo_future_drop(&a.base);
	edo_future_drop(&b.base);
	CHECK_EQ(edo_semaphore_available_permits(&s), 0u); /* completed: still held */
	edo_semaphore_release(&s, 1);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

TEST(semaphore_fifo_order)
{
	edo_semaphore s;
	edo_semaphore_init(&s, 0);
	enum { N = 5 };
	test_waker t[N];
	edo_acquire_fut a[N];
	for (int i = 0; i < N; i++) {
		tw_init(&t[i]);
		CHECK_EQ(tw_poll(&t[i], edo_semaphore_acquire(&a[i], &s)), EDO_PENDING);
	}
	for (int i = 0; i < N; i++) {
		edo_semaphore_release(&s, 1);
		for (int j = 0; j < N; j++)
			CHECK_EQ(tw_woken(&t[j]), j == i ? 1 : 0);
		CHECK_EQ(tw_poll(&t[i], &a[i].base), EDO_READY);
		for (int j = i + 1; j < N; j++)
			CHECK_EQ(tw_poll(&t[j], &a[j].base), EDO_PENDING);
	}
	CHECK_EQ(edo_semaphore_available_permits(&s), 0u);
}

TEST(semaphore_no_barging_past_waiters)
{
	edo_semaphore s;
	edo_semaphore_init(&s, 1);
	test_waker t1, t2;
	tw_init(&t1);
	tw_init(&t2);
	edo_acquire_fut big, small;
	/* The head needs 3: it takes the 1 available and waits for 2 more. */
	CHECK_EQ(tw_poll(&t1, edo_semaphore_acquire_many(&big, &s, 3)), EDO_PENDING);
	CHECK_EQ(edo_semaphore_available_permits(&s), 0u);
	edo_semaphore_release(&s, 1);
	/* Held by the head, not available to a newcomer. */
	CHECK_EQ(edo_semaphore_available_permits(&s), 0u);
	CHECK_EQ(edo_semaphore_try_acquire(&s), -EAGAIN);
	CHECK_EQ(tw_poll(&t2, edo_semaphore_acquire(&small, &s)), EDO_PENDING);
	CHECK_EQ(tw_woken(&t1), 0);
	edo_semaphore_release(&s, 2);
	/* 1 goes to big (now complete), 1 to small. */
	CHECK_EQ(tw_woken(&t1), 1);
	CHECK_EQ(tw_woken(&t2), 1);
	CHECK_EQ(tw_poll(&t1, &big.base), EDO_READY);
	CHECK_EQ(tw_poll(&t2, &small.base), EDO_READY);
	CHECK_EQ(edo_semaphore_available_permits(&s), 0u);
	edo_semaphore_release(&s, 4);
	CHECK_EQ(edo_semaphore_available_permits(&s), 4u);
}

TEST(semaphore_big_waiter_holds_back_small_ones)
{
	edo_semaphore s;
	edo_semaphore_init(&s, 0);
	test_waker t1, t2;
	tw_init(&t1);
	tw_init(&t2);
	edo_acquire_fut big, small;
	CHECK_EQ(tw_poll(&t1, edo_semaphore_acquire_many(&big, &s, 4)), EDO_PENDING);
	CHECK_EQ(tw_poll(&t2, edo_semaphore_acquire(&small, &s)), EDO_PENDING);
	for (int i = 0; i < 3; i++) {
		edo_semaphore_release(&s, 1);
		CHECK_EQ(tw_woken(&t1), 0);
		CHECK_EQ(tw_woken(&t2), 0);
	}
	edo_semaphore_release(&s, 1);
	CHECK_EQ(tw_woken(&t1), 1);
	CHECK_EQ(tw_woken(&t2), 0);
	CHECK_EQ(tw_poll(&t1, &big.base), EDO_READY);
	edo_semaphore_release(&s, 4);
	CHECK_EQ(tw_woken(&t2), 1);
	CHECK_EQ(tw_poll(&t2, &small.base), EDO_READY);
	CHECK_EQ(edo_semaphore_available_permits(&s), 3u);
}

TEST(semaphore_drop_pending_gives_back_partial_permits)
{
	edo_semaphore s;
	edo_semaphore_init(&s, 2);
	test_waker t1, t2, t3;
	tw_init(&t1);
	tw_init(&t2);
	tw_init(&t3);
	edo_acquire_fut a1, a2, a3;
	CHECK_EQ(tw_poll(&t1, edo_semaphore_acquire_many(&a1, &s, 3)), EDO_PENDING); /* holds 2 */
	CHECK_EQ(tw_poll(&t2, edo_semaphore_acquire(&a2, &s)), EDO_PENDING);
	CHECK_EQ(tw_poll(&t3, edo_semaphore_acquire(&a3, &s)), EDO_PENDING);
	/* Dropping the head passes its 2 permits to the next two, in order. */
	edo_future_drop(&a1.base);
	CHECK_EQ(tw_woken(&t1), 0);
	CHECK_EQ(tw_woken(&t2), 1);
	CHECK_EQ(tw_woken(&t3), 1);
	CHECK_EQ(tw_poll(&t2, &a2.base), EDO_READY);
	CHECK_EQ(tw_poll(&t3, &a3.base), EDO_READY);
	CHECK_EQ(edo_semaphore_available_permits(&s), 0u);
	CHECK_EQ(atomic_load(&t1.refs), 0);
	/* Dropping a waiter in the middle keeps the others' order. */
	edo_acquire_fut b[3];
	test_waker tb[3];
	for (int i = 0; i < 3; i++) {
		tw_init(&tb[i]);
		CHECK_EQ(tw_poll(&tb[i], edo_semaphore_acquire(&b[i], &s)), EDO_PENDING);
	}
	edo_future_drop(&b[1].base);
	edo_semaphore_release(&s, 1);
	CHECK_EQ(tw_woken(&tb[0]), 1);
	CHECK_EQ(tw_woken(&tb[2]), 0);
	edo_semaphore_release(&s, 1);
	CHECK_EQ(tw_woken(&tb[2]), 1);
	CHECK_EQ(tw_poll(&tb[0], &b[0].base), EDO_READY);
	CHECK_EQ(tw_poll(&tb[2], &b[2].base), EDO_READY);
	/* Dropping the last waiter with nothing collected restores the fast path. */
	edo_acquire_fut c;
	CHECK_EQ(tw_poll(&t1, edo_semaphore_acquire(&c, &s)), EDO_PENDING);
	edo_future_drop(&c.base);
	CHECK_EQ(edo_semaphore_release(&s, 2), 0);
	CHECK_EQ(edo_semaphore_available_permits(&s), 2u);
	CHECK_EQ(atomic_load(&t1.refs), 0);
}

TEST(semaphore_drop_served_but_unpolled_returns_permits)
{
	edo_semaphore s;
	edo_semaphore_init(&s, 0);
	test_waker t1, t2;
	tw_init(&t1);
	tw_init(&t2);
	edo_acquire_fut a1, a2;
	CHECK_EQ(tw_poll(&t1, edo_semaphore_acquire_many(&a1, &s, 2)), EDO_PENDING);
	CHECK_EQ(tw_poll(&t2, edo_semaphore_acquire(&a2, &s)), EDO_PENDING);
	edo_semaphore_release(&s, 2);
	CHECK_EQ(tw_woken(&t1), 1);
	edo_future_drop(&a1.base); /* woken, never polled: the 2 permits go on */
	CHECK_EQ(tw_woken(&t2), 1);
	CHECK_EQ(tw_poll(&t2, &a2.base), EDO_READY);
	CHECK_EQ(edo_semaphore_available_permits(&s), 1u);
}

TEST(semaphore_close)
{
	edo_semaphore s;
	edo_semaphore_init(&s, 1);
	test_waker t[3];
	edo_acquire_fut a[3];
	for (int i = 0; i < 3; i++)
		tw_init(&t[i]);
	CHECK_EQ(tw_poll(&t[0], edo_semaphore_acquire_many(&a[0], &s, 2)), EDO_PENDING);
	CHECK_EQ(tw_poll(&t[1], edo_semaphore_acquire(&a[1], &s)), EDO_PENDING);
	CHECK(!edo_semaphore_is_closed(&s));
	edo_semaphore_close(&s);
	CHECK(edo_semaphore_is_closed(&s));
	CHECK_EQ(tw_woken(&t[0]), 1);
	CHECK_EQ(tw_woken(&t[1]), 1);
	CHECK_EQ(tw_poll(&t[0], &a[0].base), EDO_READY);
	CHECK_EQ(a[0].rc, EDO_ECLOSED);
	CHECK_EQ(tw_poll(&t[1], &a[1].base), EDO_READY);
	CHECK_EQ(a[1].rc, EDO_ECLOSED);
	CHECK_EQ(tw_poll(&t[2], edo_semaphore_acquire(&a[2], &s)), EDO_READY);
	CHECK_EQ(a[2].rc, EDO_ECLOSED);
	CHECK_EQ(edo_semaphore_try_acquire(&s), EDO_ECLOSED);
	CHECK_EQ(edo_semaphore_release(&s, 1), 0); /* still allowed */
	for (int i = 0; i < 3; i++)
		CHECK_EQ(atomic_load(&t[i].refs), 0);
}

TEST(semaphore_close_with_many_waiters)
{
	edo_semaphore s;
	edo_semaphore_init(&s, 0);
	enum { N = 100 }; /* more than one wake batch */
	static test_waker t[N];
	static edo_acquire_fut a[N];
	for (int i = 0; i < N; i++) {
		tw_init(&t[i]);
		CHECK_EQ(tw_poll(&t[i], edo_semaphore_acquire(&a[i], &s)), EDO_PENDING);
	}
	edo_semaphore_close(&s);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(tw_woken(&t[i]), 1);
		CHECK_EQ(tw_poll(&t[i], &a[i].base), EDO_READY);
		CHECK_EQ(a[i].rc, EDO_ECLOSED);
	}
}

/* close() wakes its waiters in batches of 32, dropping the lock in between.
 * A release in that window (here, from the first wake) must not serve a
 * waiter close() has not reached yet: every pending acquire fails. */
static edo_semaphore cr_sem;

static void cr_on_wake(test_waker *t)
{
	if (atomic_load(&t->wakes) == 1)
		CHECK_EQ(edo_semaphore_release(&cr_sem, 3), 0);
}

TEST(semaphore_release_while_close_wakes)
{
	edo_semaphore_init(&cr_sem, 0);
	enum { N = 40 };
	static edo_acquire_fut a[N];
	test_waker t;
	tw_init(&t);
	t.on_wake = cr_on_wake;
	for (int i = 0; i < N; i++)
		CHECK_EQ(tw_poll(&t, edo_semaphore_acquire(&a[i], &cr_sem)), EDO_PENDING);
	edo_semaphore_close(&cr_sem);
	CHECK_EQ(atomic_load(&t.wakes), N);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(tw_poll(&t, &a[i].base), EDO_READY);
		CHECK_EQ(a[i].rc, EDO_ECLOSED);
	}
	CHECK_EQ(atomic_load(&t.refs), 0);
	/* The released permits are not lost: they are there, though closed. */
	CHECK_EQ(edo_semaphore_available_permits(&cr_sem), 3u);
	CHECK_EQ(edo_semaphore_try_acquire(&cr_sem), EDO_ECLOSED);
}

TEST(semaphore_release_serves_many_waiters_in_batches)
{
	edo_semaphore s;
	edo_semaphore_init(&s, 0);
	enum { N = 100 };
	static test_waker t[N];
	static edo_acquire_fut a[N];
	for (int i = 0; i < N; i++) {
		tw_init(&t[i]);
		CHECK_EQ(tw_poll(&t[i], edo_semaphore_acquire(&a[i], &s)), EDO_PENDING);
	}
	edo_semaphore_release(&s, N + 3);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(tw_woken(&t[i]), 1);
		CHECK_EQ(tw_poll(&t[i], &a[i].base), EDO_READY);
		CHECK_EQ(a[i].rc, 0);
	}
	CHECK_EQ(edo_semaphore_available_permits(&s), 3u);
}

TEST(semaphore_waker_is_replaced)
{
	edo_semaphore s;
	edo_semaphore_init(&s, 0);
	test_waker t1, t2;
	tw_init(&t1);
	tw_init(&t2);
	edo_acquire_fut a;
	CHECK_EQ(tw_poll(&t1, edo_semaphore_acquire(&a, &s)), EDO_PENDING);
	CHECK_EQ(tw_poll(&t2, &a.base), EDO_PENDING); /* moved to another task */
	CHECK_EQ(atomic_load(&t1.refs), 0);
	edo_semaphore_release(&s, 1);
	CHECK_EQ(tw_woken(&t1), 0);
	CHECK_EQ(tw_woken(&t2), 1);
	CHECK_EQ(tw_poll(&t2, &a.base), EDO_READY);
}

/* ---- mutex and rwlock: behaviour -------------------------------------------------------- */

TEST(mutex_lock_try_lock_unlock)
{
	edo_mutex m;
	edo_mutex_init(&m);
	CHECK(!edo_mutex_is_locked(&m));
	CHECK_EQ(edo_mutex_try_lock(&m), 0);
	CHECK(edo_mutex_is_locked(&m));
	CHECK_EQ(edo_mutex_try_lock(&m), -EBUSY);
	test_waker t[3];
	edo_acquire_fut a[3];
	for (int i = 0; i < 3; i++) {
		tw_init(&t[i]);
		CHECK_EQ(tw_poll(&t[i], edo_mutex_lock(&a[i], &m)), EDO_PENDING);
	}
	for (int i = 0; i < 3; i++) {
		edo_mutex_unlock(&m);
		CHECK_EQ(tw_woken(&t[i]), 1);
		CHECK_EQ(tw_poll(&t[i], &a[i].base), EDO_READY);
		CHECK_EQ(edo_mutex_try_lock(&m), -EBUSY);
	}
	edo_mutex_unlock(&m);
	CHECK(!edo_mutex_is_locked(&m));
	CHECK_EQ(edo_mutex_try_lock(NULL), -EINVAL);
}

TEST(rwlock_readers_share_writer_excludes)
{
	edo_rwlock rw;
	CHECK_EQ(edo_rwlock_init(&rw, 0), 0);
	CHECK_EQ(edo_rwlock_try_read(&rw), 0);
	CHECK_EQ(edo_rwlock_try_read(&rw), 0);
	CHECK_EQ(edo_rwlock_try_write(&rw), -EBUSY);
	test_waker tw, tr;
	tw_init(&tw);
	tw_init(&tr);
	edo_acquire_fut w, r;
	CHECK_EQ(tw_poll(&tw, edo_rwlock_write(&w, &rw)), EDO_PENDING);
	/* Writer-fair: a reader arriving after a waiting writer waits too. */
	CHECK_EQ(edo_rwlock_try_read(&rw), -EBUSY);
	CHECK_EQ(tw_poll(&tr, edo_rwlock_read(&r, &rw)), EDO_PENDING);
	edo_rwlock_read_unlock(&rw);
	CHECK_EQ(tw_woken(&tw), 0);
	edo_rwlock_read_unlock(&rw);
	CHECK_EQ(tw_woken(&tw), 1);
	CHECK_EQ(tw_woken(&tr), 0);
	CHECK_EQ(tw_poll(&tw, &w.base), EDO_READY);
	CHECK_EQ(tw_poll(&tr, &r.base), EDO_PENDING);
	edo_rwlock_write_unlock(&rw);
	CHECK_EQ(tw_woken(&tr), 1);
	CHECK_EQ(tw_poll(&tr, &r.base), EDO_READY);
	CHECK_EQ(edo_rwlock_try_read(&rw), 0);
	edo_rwlock_read_unlock(&rw);
	edo_rwlock_read_unlock(&rw);
	CHECK_EQ(edo_rwlock_try_write(&rw), 0);
	edo_rwlock_write_unlock(&rw);
}

TEST(rwlock_max_readers_and_downgrade)
{
	edo_rwlock rw;
	CHECK_EQ(edo_rwlock_init(&rw, EDO_RWLOCK_MAX_READERS + 1), -EINVAL);
	CHECK_EQ(edo_rwlock_init(&rw, 2), 0);
	CHECK_EQ(edo_rwlock_try_read(&rw), 0);
	CHECK_EQ(edo_rwlock_try_read(&rw), 0);
	CHECK_EQ(edo_rwlock_try_read(&rw), -EBUSY);
	edo_rwlock_read_unlock(&rw);
	edo_rwlock_read_unlock(&rw);
	CHECK_EQ(edo_rwlock_try_write(&rw), 0);
	test_waker t[2];
	edo_acquire_fut r[2];
	for (int i = 0; i < 2; i++) {
		tw_init(&t[i]);
		CHECK_EQ(tw_poll(&t[i], edo_rwlock_read(&r[i], &rw)), EDO_PENDING);
	}
	edo_rwlock_downgrade(&rw); /* one read lock stays ours; one reader gets in */
	CHECK_EQ(tw_woken(&t[0]), 1);
	CHECK_EQ(tw_woken(&t[1]), 0);
	CHECK_EQ(tw_poll(&t[0], &r[0].base), EDO_READY);
	edo_rwlock_read_unlock(&rw);
	CHECK_EQ(tw_woken(&t[1]), 1);
	CHECK_EQ(tw_poll(&t[1], &r[1].base), EDO_READY);
}

/* ---- on a runtime ----------------------------------------------------------------------- */

typedef struct locker_frame {
	EDO_FRAME;
	edo_mutex *m;
	long *counter;
	atomic_int *inside;
	long iters, i, v;
	edo_acquire_fut lk;
} locker_frame;

EDO_ASYNC(locker, locker_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->iters; self->i++) {
		EDO_AWAIT(edo_mutex_lock(&self->lk, self->m));
		CHECK_EQ(self->lk.rc, 0);
		CHECK_EQ(atomic_fetch_add(self->inside, 1), 0);
		self->v = *self->counter;
		if ((self->i & 7) == 0)
			EDO_YIELD(); /* hold the lock across a suspension */
		*self->counter = self->v + 1;
		atomic_fetch_sub(self->inside, 1);
		edo_mutex_unlock(self->m);
	}
	EDO_END();
}

typedef struct counter_main_frame {
	EDO_FRAME;
	edo_mutex m;
	long counter;
	atomic_int inside;
	int ntasks;
	long iters;
	edo_join *h[64];
	int i, rc;
} counter_main_frame;

EDO_ASYNC(counter_main, counter_main_frame, NULL)
{
	EDO_BEGIN();
	edo_mutex_init(&self->m);
	for (self->i = 0; self->i < self->ntasks; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], locker, .m = &self->m,
				   .counter = &self->counter, .inside = &self->inside,
				   .iters = self->iters),
			 0);
	for (self->i = 0; self->i < self->ntasks; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

static void run_counter(edo_rt_flavor flavor, int ntasks, long iters)
{
	counter_main_frame f = {EDO_FRAME_INIT(counter_main), .ntasks = ntasks, .iters = iters};
	test_block_on(flavor, &f.edo_base);
	CHECK_EQ(f.counter, (long)ntasks * iters);
	CHECK(!edo_mutex_is_locked(&f.m));
}

TEST(mutex_counter_current_thread)
{
	run_counter(EDO_RT_CURRENT_THREAD, 16, test_scale(20000));
}

TEST(mutex_counter_contended_multi_thread)
{
	run_counter(EDO_RT_MULTI_THREAD, 32, test_scale(50000));
}

/* Readers and writers check each other: a writer is alone, readers never
 * see a writer, and at most max_readers readers are inside at once. */
typedef struct rw_shared {
	edo_rwlock rw;
	atomic_int readers, writers;
	long value;
} rw_shared;

typedef struct rw_worker_frame {
	EDO_FRAME;
	rw_shared *sh;
	int writer;
	long iters, i, seen;
	edo_acquire_fut lk;
} rw_worker_frame;

EDO_ASYNC(rw_worker, rw_worker_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->iters; self->i++) {
		if (self->writer) {
			EDO_AWAIT(edo_rwlock_write(&self->lk, &self->sh->rw));
			CHECK_EQ(atomic_fetch_add(&self->sh->writers, 1), 0);
			CHECK_EQ(atomic_load(&self->sh->readers), 0);
			self->sh->value++;
			if ((self->i & 3) == 0)
				EDO_YIELD();
			atomic_fetch_sub(&self->sh->writers, 1);
			edo_rwlock_write_unlock(&self->sh->rw);
		} else {
			EDO_AWAIT(edo_rwlock_read(&self->lk, &self->sh->rw));
			CHECK_LE(atomic_fetch_add(&self->sh->readers, 1), 2);
			CHECK_EQ(atomic_load(&self->sh->writers), 0);
			self->seen = self->sh->value;
			if ((self->i & 3) == 0)
				EDO_YIELD();
			CHECK_EQ(self->sh->value, self->seen);
			atomic_fetch_sub(&self->sh->readers, 1);
			edo_rwlock_read_unlock(&self->sh->rw);
		}
	}
	EDO_END();
}

typedef struct rw_main_frame {
	EDO_FRAME;
	rw_shared sh;
	long iters;
	edo_join *h[12];
	int i, rc;
} rw_main_frame;

EDO_ASYNC(rw_main, rw_main_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_rwlock_init(&self->sh.rw, 3), 0);
	for (self->i = 0; self->i < 12; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], rw_worker, .sh = &self->sh,
				   .writer = self->i % 4 == 0, .iters = self->iters),
			 0);
	for (self->i = 0; self->i < 12; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

TEST(rwlock_stress_both_flavors)
{
	FLAVORS({
		rw_main_frame f = {EDO_FRAME_INIT(rw_main), .iters = test_scale(20000)};
		test_block_on(flavor_, &f.edo_base);
		CHECK_EQ(f.sh.value, 3 * f.iters);
	});
}

/* At most `permits` holders at once, under contention. */
typedef struct sem_worker_frame {
	EDO_FRAME;
	edo_semaphore *s;
	atomic_int *inside;
	int permits, n;
	long iters, i;
	edo_acquire_fut acq;
} sem_worker_frame;

EDO_ASYNC(sem_worker, sem_worker_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->iters; self->i++) {
		self->n = 1 + (int)(self->i % 2);
		EDO_AWAIT(edo_semaphore_acquire_many(&self->acq, self->s, (size_t)self->n));
		CHECK_EQ(self->acq.rc, 0);
		CHECK_LE(atomic_fetch_add(self->inside, self->n) + self->n, self->permits);
		if ((self->i & 3) == 0)
			EDO_YIELD();
		atomic_fetch_sub(self->inside, self->n);
		edo_semaphore_release(self->s, (size_t)self->n);
	}
	EDO_END();
}

typedef struct sem_main_frame {
	EDO_FRAME;
	edo_semaphore s;
	atomic_int inside;
	long iters;
	edo_join *h[16];
	int i, rc;
} sem_main_frame;

EDO_ASYNC(sem_main, sem_main_frame, NULL)
{
	EDO_BEGIN();
	edo_semaphore_init(&self->s, 3);
	for (self->i = 0; self->i < 16; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], sem_worker, .s = &self->s,
				   .inside = &self->inside, .permits = 3, .iters = self->iters),
			 0);
	for (self->i = 0; self->i < 16; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

TEST(semaphore_stress_both_flavors)
{
	FLAVORS({
		sem_main_frame f = {EDO_FRAME_INIT(sem_main), .iters = test_scale(20000)};
		test_block_on(flavor_, &f.edo_base);
		CHECK_EQ(edo_semaphore_available_permits(&f.s), 3u);
	});
}

/* Cancelling waiters at random while others acquire: no permit is lost. */
typedef struct cancel_frame {
	EDO_FRAME;
	edo_semaphore *s;
	long iters, i;
	edo_acquire_fut acq;
	edo_yield_now y;
} cancel_frame;

EDO_ASYNC(canceller, cancel_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->iters; self->i++) {
		edo_semaphore_acquire_many(&self->acq, self->s, 2);
		if (edo_future_poll(&self->acq.base, cx) == EDO_READY) {
			EDO_YIELD(); /* hold the permits a while: others queue */
			edo_semaphore_release(self->s, 2);
			continue;
		}
		EDO_YIELD();
		/* Ready or not, drop it: a served-unpolled drop returns the permits. */
		if (edo_future_poll(&self->acq.base, cx) == EDO_READY)
			edo_semaphore_release(self->s, 2);
		else
			edo_future_drop(&self->acq.base);
	}
	EDO_END();
}

typedef struct cancel_main_frame {
	EDO_FRAME;
	edo_semaphore s;
	long iters;
	edo_join *h[8];
	int i, rc;
} cancel_main_frame;

EDO_ASYNC(cancel_main, cancel_main_frame, NULL)
{
	EDO_BEGIN();
	edo_semaphore_init(&self->s, 3);
	for (self->i = 0; self->i < 8; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], canceller, .s = &self->s,
				   .iters = self->iters),
			 0);
	for (self->i = 0; self->i < 8; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

TEST(semaphore_cancel_stress_multi_thread)
{
	cancel_main_frame f = {EDO_FRAME_INIT(cancel_main), .iters = test_scale(30000)};
	test_block_on(EDO_RT_MULTI_THREAD, &f.edo_base);
	CHECK_EQ(edo_semaphore_available_permits(&f.s), 3u);
}

/* Acquires take budget: 128 uncontended locks use up a task's poll. */
typedef struct budget_frame {
	EDO_FRAME;
	edo_mutex m;
	int i;
	bool had_budget_at_127, had_budget_at_128;
	edo_acquire_fut lk;
} budget_frame;

EDO_ASYNC(budget_task, budget_frame, NULL)
{
	EDO_BEGIN();
	EDO_YIELD(); /* start from a fresh poll */
	edo_mutex_init(&self->m);
	for (self->i = 0; self->i < EDO_COOP_BUDGET; self->i++) {
		EDO_AWAIT(edo_mutex_lock(&self->lk, &self->m));
		edo_mutex_unlock(&self->m);
		if (self->i == EDO_COOP_BUDGET - 2)
			self->had_budget_at_127 = edo_coop_has_budget_remaining();
	}
	self->had_budget_at_128 = edo_coop_has_budget_remaining();
	/* The next lock is forced to yield, then completes. */
	EDO_AWAIT(edo_mutex_lock(&self->lk, &self->m));
	edo_mutex_unlock(&self->m);
	EDO_END();
}

typedef struct spawn1_frame {
	EDO_FRAME;
	edo_join *h;
	int rc;
	bool a, b;
} spawn1_frame;

EDO_ASYNC(budget_main, spawn1_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->h, budget_task), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	budget_frame *bf = EDO_JOIN_OUTPUT(self->h, budget_task);
	self->a = bf->had_budget_at_127;
	self->b = bf->had_budget_at_128;
	edo_join_detach(self->h);
	EDO_END();
}

TEST(acquire_consumes_budget)
{
	FLAVORS({
		spawn1_frame f = {EDO_FRAME_INIT(budget_main)};
		test_block_on(flavor_, &f.edo_base);
		CHECK(f.a);
		CHECK(!f.b);
	});
}

TEST_MAIN()
