/* Channels: oneshot, mpsc (bounded and unbounded), broadcast, watch.
 * Behaviour tests poll by hand with counting wakers; stress tests run on
 * the multi-thread runtime (and under TSan with EDO_STRESS_SCALE). */
#include <errno.h>
#include <pthread.h>

#include "test_sync_util.h"

/* ==== oneshot ============================================================================= */

TEST(oneshot_send_then_recv)
{
	edo_oneshot_tx *tx;
	edo_oneshot_rx *rx;
	CHECK_EQ(edo_oneshot_new(sizeof(int), &tx, &rx), 0);
	CHECK(!edo_oneshot_tx_is_closed(tx));
	int v = 42, out = 0, rc = 1;
	CHECK_EQ(edo_oneshot_send(tx, &v), 0);
	test_waker t;
	tw_init(&t);
	CHECK_EQ(edo_oneshot_poll_recv(rx, &t.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, 0);
	CHECK_EQ(out, 42);
	/* Received once: a second receive reports closed. */
	CHECK_EQ(edo_oneshot_poll_recv(rx, &t.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, EDO_ECLOSED);
	CHECK_EQ(edo_oneshot_try_recv(rx, &out), EDO_ECLOSED);
	edo_oneshot_rx_drop(rx);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

TEST(oneshot_recv_pending_then_send_wakes)
{
	edo_oneshot_tx *tx;
	edo_oneshot_rx *rx;
	CHECK_EQ(edo_oneshot_new(sizeof(long), &tx, &rx), 0);
	test_waker t;
	tw_init(&t);
	long out = 0;
	int rc = 1;
	CHECK_EQ(edo_oneshot_poll_recv(rx, &t.cx, &out, &rc), EDO_PENDING);
	CHECK_EQ(edo_oneshot_poll_recv(rx, &t.cx, &out, &rc), EDO_PENDING);
	CHECK_EQ(edo_oneshot_try_recv(rx, &out), -EAGAIN);
	CHECK_EQ(tw_woken(&t), 0);
	long v = -7;
	CHECK_EQ(edo_oneshot_send(tx, &v), 0);
	CHECK_EQ(tw_woken(&t), 1);
	CHECK_EQ(edo_oneshot_poll_recv(rx, &t.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, 0);
	CHECK_EQ(out, -7);
	edo_oneshot_rx_drop(rx);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

TEST(oneshot_waker_is_replaced)
{
	edo_oneshot_tx *tx;
	edo_oneshot_rx *rx;
	CHECK_EQ(edo_oneshot_new(0, &tx, &rx), 0);
	test_waker t1, t2;
	tw_init(&t1);
	tw_init(&t2);
	int rc;
	CHECK_EQ(edo_oneshot_poll_recv(rx, &t1.cx, NULL, &rc), EDO_PENDING);
	CHECK_EQ(edo_oneshot_poll_recv(rx, &t2.cx, NULL, &rc), EDO_PENDING);
	CHECK_EQ(atomic_load(&t1.refs), 0);
	CHECK_EQ(edo_oneshot_send(tx, NULL), 0);
	CHECK_EQ(tw_woken(&t1), 0);
	CHECK_EQ(tw_woken(&t2), 1);
	CHECK_EQ(edo_oneshot_poll_recv(rx, &t2.cx, NULL, &rc), EDO_READY);
	CHECK_EQ(rc, 0);
	edo_oneshot_rx_drop(rx);
	CHECK_EQ(atomic_load(&t2.refs), 0);
}

TEST(oneshot_sender_dropped)
{
	edo_oneshot_tx *tx;
	edo_oneshot_rx *rx;
	CHECK_EQ(edo_oneshot_new(sizeof(int), &tx, &rx), 0);
	test_waker t;
	tw_init(&t);
	int out = 5, rc = 1;
	CHECK_EQ(edo_oneshot_poll_recv(rx, &t.cx, &out, &rc), EDO_PENDING);
	edo_oneshot_tx_drop(tx);
	CHECK_EQ(tw_woken(&t), 1);
	CHECK_EQ(edo_oneshot_poll_recv(rx, &t.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, EDO_ECLOSED);
	CHECK_EQ(out, 5);
	CHECK_EQ(edo_oneshot_try_recv(rx, &out), EDO_ECLOSED);
	edo_oneshot_rx_drop(rx);
	/* And the other order: the sender goes first, nobody waiting. */
	CHECK_EQ(edo_oneshot_new(sizeof(int), &tx, &rx), 0);
	edo_oneshot_tx_drop(tx);
	CHECK_EQ(edo_oneshot_try_recv(rx, &out), EDO_ECLOSED);
	edo_oneshot_rx_drop(rx);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

TEST(oneshot_receiver_close_and_drop)
{
	edo_oneshot_tx *tx;
	edo_oneshot_rx *rx;
	int v = 1, out = 0, rc;
	/* Close first: send fails, the sender sees closed. */
	CHECK_EQ(edo_oneshot_new(sizeof(int), &tx, &rx), 0);
	test_waker ts;
	tw_init(&ts);
	CHECK_EQ(edo_oneshot_poll_closed(tx, &ts.cx), EDO_PENDING);
	edo_oneshot_rx_close(rx);
	CHECK_EQ(tw_woken(&ts), 1);
	CHECK(edo_oneshot_tx_is_closed(tx));
	CHECK_EQ(edo_oneshot_poll_closed(tx, &ts.cx), EDO_READY);
	CHECK_EQ(edo_oneshot_send(tx, &v), EDO_ECLOSED);
	CHECK_EQ(edo_oneshot_try_recv(rx, &out), EDO_ECLOSED);
	test_waker t;
	tw_init(&t);
	CHECK_EQ(edo_oneshot_poll_recv(rx, &t.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, EDO_ECLOSED);
	edo_oneshot_rx_drop(rx);
	/* A value sent before the close can still be received. */
	CHECK_EQ(edo_oneshot_new(sizeof(int), &tx, &rx), 0);
	v = 99;
	CHECK_EQ(edo_oneshot_send(tx, &v), 0);
	edo_oneshot_rx_close(rx);
	CHECK_EQ(edo_oneshot_try_recv(rx, &out), 0);
	CHECK_EQ(out, 99);
	edo_oneshot_rx_drop(rx);
	/* The receiver is dropped while the sender waits in poll_closed. */
	CHECK_EQ(edo_oneshot_new(sizeof(int), &tx, &rx), 0);
	CHECK_EQ(edo_oneshot_poll_closed(tx, &ts.cx), EDO_PENDING);
	edo_oneshot_rx_drop(rx);
	CHECK_EQ(tw_woken(&ts), 1);
	CHECK_EQ(edo_oneshot_poll_closed(tx, &ts.cx), EDO_READY);
	edo_oneshot_tx_drop(tx);
	/* Dropped with an unreceived value: freed, nothing leaks (ASan). */
	CHECK_EQ(edo_oneshot_new(sizeof(int), &tx, &rx), 0);
	CHECK_EQ(edo_oneshot_send(tx, &v), 0);
	edo_oneshot_rx_drop(rx);
	CHECK_EQ(atomic_load(&ts.refs), 0);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

TEST(oneshot_bad_input)
{
	edo_oneshot_tx *tx = NULL;
	edo_oneshot_rx *rx = NULL;
	CHECK_EQ(edo_oneshot_new(4, NULL, &rx), -EINVAL);
	CHECK_EQ(edo_oneshot_new(4, &tx, NULL), -EINVAL);
	CHECK_EQ(edo_oneshot_new((size_t)1 << 40, &tx, &rx), -EINVAL);
	CHECK(tx == NULL && rx == NULL);
	CHECK_EQ(edo_oneshot_send(NULL, NULL), -EINVAL);
	CHECK_EQ(edo_oneshot_try_recv(NULL, NULL), -EINVAL);
	int rc = 0;
	CHECK_EQ(edo_oneshot_poll_recv(NULL, NULL, NULL, &rc), EDO_READY);
	CHECK_EQ(rc, -EINVAL);
	edo_oneshot_tx_drop(NULL);
	edo_oneshot_rx_drop(NULL);
	edo_oneshot_rx_close(NULL);
	CHECK_EQ(edo_oneshot_new(4, &tx, &rx), 0);
	CHECK_EQ(edo_oneshot_send(tx, NULL), -EINVAL); /* nothing happened */
	int v = 3, out = 0;
	CHECK_EQ(edo_oneshot_send(tx, &v), 0);
	CHECK_EQ(edo_oneshot_try_recv(rx, &out), 0);
	CHECK_EQ(out, 3);
	edo_oneshot_rx_drop(rx);
}

TEST(oneshot_large_value)
{
	edo_oneshot_tx *tx;
	edo_oneshot_rx *rx;
	char in[1000], out[1000];
	for (int i = 0; i < 1000; i++)
		in[i] = (char)i;
	CHECK_EQ(edo_oneshot_new(sizeof in, &tx, &rx), 0);
	CHECK_EQ(edo_oneshot_send(tx, in), 0);
	CHECK_EQ(edo_oneshot_try_recv(rx, out), 0);
	CHECK(memcmp(in, out, sizeof in) == 0);
	edo_oneshot_rx_drop(rx);
}

/* Ping-pong through oneshots, the way the benchmark does it. */
typedef struct partner_frame {
	EDO_FRAME;
	edo_oneshot_rx *rx1;
	edo_oneshot_tx *tx2;
	int v, rc;
} partner_frame;

EDO_ASYNC(partner, partner_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_POLL(edo_oneshot_poll_recv(self->rx1, cx, &self->v, &self->rc));
	CHECK_EQ(self->rc, 0);
	edo_oneshot_rx_drop(self->rx1);
	self->v++;
	CHECK_EQ(edo_oneshot_send(self->tx2, &self->v), 0);
	EDO_END();
}

typedef struct pinger_frame {
	EDO_FRAME;
	int v, rc;
	edo_oneshot_tx *tx1;
	edo_oneshot_rx *rx2;
} pinger_frame;

EDO_ASYNC(pinger, pinger_frame, NULL)
{
	EDO_BEGIN();
	edo_oneshot_rx *rx1;
	edo_oneshot_tx *tx2;
	CHECK_EQ(edo_oneshot_new(sizeof(int), &self->tx1, &rx1), 0);
	CHECK_EQ(edo_oneshot_new(sizeof(int), &tx2, &self->rx2), 0);
	CHECK_EQ(EDO_SPAWN(NULL, partner, .rx1 = rx1, .tx2 = tx2), 0);
	CHECK_EQ(edo_oneshot_send(self->tx1, &self->v), 0);
	EDO_AWAIT_POLL(edo_oneshot_poll_recv(self->rx2, cx, &self->v, &self->rc));
	CHECK_EQ(self->rc, 0);
	edo_oneshot_rx_drop(self->rx2);
	EDO_END();
}

typedef struct pingpong_main_frame {
	EDO_FRAME;
	int rounds, pairs, r, i, rc;
	edo_join *h[256];
	long sum;
} pingpong_main_frame;

EDO_ASYNC(pingpong_main, pingpong_main_frame, NULL)
{
	EDO_BEGIN();
	for (self->r = 0; self->r < self->rounds; self->r++) {
		for (self->i = 0; self->i < self->pairs; self->i++)
			CHECK_EQ(EDO_SPAWN(&self->h[self->i], pinger, .v = self->i), 0);
		for (self->i = 0; self->i < self->pairs; self->i++) {
			EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
			CHECK_EQ(self->rc, 0);
			self->sum += EDO_JOIN_OUTPUT(self->h[self->i], pinger)->v;
			edo_join_detach(self->h[self->i]);
		}
	}
	EDO_END();
}

TEST(oneshot_ping_pong_both_flavors)
{
	FLAVORS({
		pingpong_main_frame f = {EDO_FRAME_INIT(pingpong_main),
					 .rounds = (int)test_scale(200), .pairs = 256};
		test_block_on(flavor_, &f.edo_base);
		CHECK_EQ(f.sum, (long)f.rounds * (256 * 255 / 2 + 256));
	});
}

/* Threads racing: send against receive, send against receiver drop, drop
 * against drop.  ASan and TSan check the frees and the hand-offs. */
typedef struct race_arg {
	edo_oneshot_tx *tx;
	edo_oneshot_rx *rx;
	pthread_barrier_t *bar;
	int mode;
} race_arg;

static void *race_sender(void *p)
{
	race_arg *a = p;
	pthread_barrier_wait(a->bar);
	int v = 7;
	if (a->mode == 2)
		edo_oneshot_tx_drop(a->tx);
	else
		(void)edo_oneshot_send(a->tx, &v);
	return NULL;
}

TEST(oneshot_thread_races)
{
	long n = test_scale(20000);
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 2);
	for (long i = 0; i < n; i++) {
		race_arg a = {.bar = &bar, .mode = (int)(i % 3)};
		CHECK_EQ(edo_oneshot_new(sizeof(int), &a.tx, &a.rx), 0);
		pthread_t th;
		pthread_create(&th, NULL, race_sender, &a);
		test_waker t;
		tw_init(&t);
		pthread_barrier_wait(&bar);
		if (a.mode == 1) {
			edo_oneshot_rx_drop(a.rx); /* against the send */
		} else {
			int out = 0, rc = 1;
			while (edo_oneshot_poll_recv(a.rx, &t.cx, &out, &rc) == EDO_PENDING)
				while (!tw_woken(&t))
					sched_yield();
			CHECK_EQ(rc, a.mode == 0 ? 0 : EDO_ECLOSED);
			if (a.mode == 0)
				CHECK_EQ(out, 7);
			edo_oneshot_rx_drop(a.rx);
		}
		pthread_join(th, NULL);
		CHECK_EQ(atomic_load(&t.refs), 0);
	}
	pthread_barrier_destroy(&bar);
}

/* ==== mpsc ================================================================================ */

TEST(mpsc_bounded_try_send_try_recv)
{
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	CHECK_EQ(edo_mpsc_new(3, sizeof(int), &tx, &rx), 0);
	CHECK_EQ(edo_mpsc_max_capacity(tx), 3u);
	int v, out = -1;
	CHECK_EQ(edo_mpsc_try_recv(rx, &out), -EAGAIN);
	for (v = 0; v < 3; v++)
		CHECK_EQ(edo_mpsc_try_send(tx, &v), 0);
	CHECK_EQ(edo_mpsc_capacity(tx), 0u);
	CHECK_EQ(edo_mpsc_try_send(tx, &v), -EAGAIN);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(edo_mpsc_try_recv(rx, &out), 0);
		CHECK_EQ(out, i);
	}
	CHECK_EQ(edo_mpsc_capacity(tx), 3u);
	CHECK_EQ(edo_mpsc_try_recv(rx, &out), -EAGAIN);
	edo_mpsc_tx_drop(tx);
	CHECK_EQ(edo_mpsc_try_recv(rx, &out), EDO_ECLOSED);
	edo_mpsc_rx_drop(rx);
}

TEST(mpsc_bad_input)
{
	edo_mpsc_tx *tx = NULL;
	edo_mpsc_rx *rx = NULL;
	CHECK_EQ(edo_mpsc_new(0, 8, &tx, &rx), -EINVAL);
	CHECK_EQ(edo_mpsc_new(1, 8, NULL, &rx), -EINVAL);
	CHECK_EQ(edo_mpsc_new(EDO_SEMAPHORE_MAX_PERMITS + 1, 8, &tx, &rx), -EINVAL);
	CHECK_EQ(edo_mpsc_unbounded_new((size_t)1 << 40, &tx, &rx), -EINVAL);
	CHECK(tx == NULL && rx == NULL);
	CHECK_EQ(edo_mpsc_try_send(NULL, NULL), -EINVAL);
	CHECK_EQ(edo_mpsc_try_recv(NULL, NULL), -EINVAL);
	CHECK_EQ(edo_mpsc_new(2, 8, &tx, &rx), 0);
	CHECK_EQ(edo_mpsc_try_send(tx, NULL), -EINVAL);
	CHECK_EQ(edo_mpsc_capacity(tx), 2u); /* nothing changed */
	edo_mpsc_send_fut sf;
	test_waker t;
	tw_init(&t);
	CHECK_EQ(tw_poll(&t, edo_mpsc_send(&sf, tx, NULL)), EDO_READY);
	CHECK_EQ(sf.rc, -EINVAL);
	edo_mpsc_permit p;
	CHECK_EQ(edo_mpsc_permit_send(&p, NULL), -EINVAL);
	edo_mpsc_tx_drop(tx);
	edo_mpsc_rx_drop(rx);
	edo_mpsc_tx_drop(NULL);
	edo_mpsc_rx_drop(NULL);
}

TEST(mpsc_recv_waits_for_send)
{
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	CHECK_EQ(edo_mpsc_new(4, sizeof(long), &tx, &rx), 0);
	test_waker t;
	tw_init(&t);
	long out = 0;
	int rc = 1;
	CHECK_EQ(edo_mpsc_poll_recv(rx, &t.cx, &out, &rc), EDO_PENDING);
	CHECK_EQ(edo_mpsc_poll_recv(rx, &t.cx, &out, &rc), EDO_PENDING);
	long v = 5;
	CHECK_EQ(edo_mpsc_try_send(tx, &v), 0);
	CHECK_EQ(tw_woken(&t), 1);
	v = 6;
	CHECK_EQ(edo_mpsc_try_send(tx, &v), 0);
	CHECK_EQ(tw_woken(&t), 0); /* already woken once: no second wake */
	CHECK_EQ(edo_mpsc_poll_recv(rx, &t.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, 0);
	CHECK_EQ(out, 5);
	CHECK_EQ(edo_mpsc_poll_recv(rx, &t.cx, &out, &rc), EDO_READY);
	CHECK_EQ(out, 6);
	CHECK_EQ(edo_mpsc_poll_recv(rx, &t.cx, &out, &rc), EDO_PENDING);
	edo_mpsc_tx_drop(tx); /* the last sender: the receiver hears of it */
	CHECK_EQ(tw_woken(&t), 1);
	CHECK_EQ(edo_mpsc_poll_recv(rx, &t.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, EDO_ECLOSED);
	edo_mpsc_rx_drop(rx);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

TEST(mpsc_senders_wait_in_fifo_order)
{
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	CHECK_EQ(edo_mpsc_new(1, sizeof(int), &tx, &rx), 0);
	int vals[4] = {10, 11, 12, 13};
	CHECK_EQ(edo_mpsc_try_send(tx, &vals[0]), 0);
	test_waker t[3];
	edo_mpsc_send_fut sf[3];
	for (int i = 0; i < 3; i++) {
		tw_init(&t[i]);
		CHECK_EQ(tw_poll(&t[i], edo_mpsc_send(&sf[i], tx, &vals[i + 1])), EDO_PENDING);
	}
	/* No barging: try_send fails while senders wait, even after a recv. */
	int out;
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(edo_mpsc_try_recv(rx, &out), 0);
		CHECK_EQ(out, vals[i]);
		CHECK_EQ(edo_mpsc_try_send(tx, &vals[0]), -EAGAIN);
		for (int j = 0; j < 3; j++)
			CHECK_EQ(tw_woken(&t[j]), j == i ? 1 : 0);
		CHECK_EQ(tw_poll(&t[i], &sf[i].base), EDO_READY);
		CHECK_EQ(sf[i].rc, 0);
	}
	CHECK_EQ(edo_mpsc_try_recv(rx, &out), 0);
	CHECK_EQ(out, 13);
	edo_mpsc_tx_drop(tx);
	edo_mpsc_rx_drop(rx);
}

TEST(mpsc_close_semantics)
{
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	CHECK_EQ(edo_mpsc_new(2, sizeof(int), &tx, &rx), 0);
	int v = 1, out;
	CHECK_EQ(edo_mpsc_try_send(tx, &v), 0);
	edo_mpsc_permit p;
	CHECK_EQ(edo_mpsc_try_reserve(&p, tx), 0);
	test_waker ts, tr;
	tw_init(&ts);
	tw_init(&tr);
	edo_mpsc_send_fut sf;
	CHECK_EQ(tw_poll(&ts, edo_mpsc_send(&sf, tx, &v)), EDO_PENDING);
	CHECK(!edo_mpsc_is_closed(tx));
	edo_mpsc_rx_close(rx);
	CHECK(edo_mpsc_is_closed(tx));
	CHECK_EQ(tw_woken(&ts), 1);
	CHECK_EQ(tw_poll(&ts, &sf.base), EDO_READY);
	CHECK_EQ(sf.rc, EDO_ECLOSED);
	CHECK_EQ(edo_mpsc_try_send(tx, &v), EDO_ECLOSED);
	/* The queued value is still there. */
	int rc;
	CHECK_EQ(edo_mpsc_poll_recv(rx, &tr.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, 0);
	CHECK_EQ(out, 1);
	/* A permit taken before the close can still send; recv waits for it. */
	CHECK_EQ(edo_mpsc_poll_recv(rx, &tr.cx, &out, &rc), EDO_PENDING);
	v = 2;
	CHECK_EQ(edo_mpsc_permit_send(&p, &v), 0);
	CHECK_EQ(tw_woken(&tr), 1);
	CHECK_EQ(edo_mpsc_poll_recv(rx, &tr.cx, &out, &rc), EDO_READY);
	CHECK_EQ(out, 2);
	CHECK_EQ(edo_mpsc_poll_recv(rx, &tr.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, EDO_ECLOSED);
	edo_mpsc_tx_drop(tx);
	edo_mpsc_rx_drop(rx);
	CHECK_EQ(atomic_load(&tr.refs), 0);
	CHECK_EQ(atomic_load(&ts.refs), 0);
}

TEST(mpsc_permit_dropped_after_close_wakes_receiver)
{
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	CHECK_EQ(edo_mpsc_new(2, sizeof(int), &tx, &rx), 0);
	test_waker tp, tr;
	tw_init(&tp);
	tw_init(&tr);
	edo_mpsc_permit p;
	CHECK_EQ(tw_poll(&tp, edo_mpsc_reserve(&p, tx)), EDO_READY);
	CHECK_EQ(p.rc, 0);
	CHECK_EQ(edo_mpsc_capacity(tx), 1u);
	edo_mpsc_rx_close(rx);
	int out, rc;
	CHECK_EQ(edo_mpsc_poll_recv(rx, &tr.cx, &out, &rc), EDO_PENDING);
	edo_future_drop(&p.base);
	CHECK_EQ(tw_woken(&tr), 1);
	CHECK_EQ(edo_mpsc_poll_recv(rx, &tr.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, EDO_ECLOSED);
	edo_mpsc_tx_drop(tx);
	edo_mpsc_rx_drop(rx);
}

TEST(mpsc_reserve_and_permits)
{
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	CHECK_EQ(edo_mpsc_new(2, sizeof(int), &tx, &rx), 0);
	test_waker t;
	tw_init(&t);
	edo_mpsc_permit p1, p2, p3;
	CHECK_EQ(tw_poll(&t, edo_mpsc_reserve(&p1, tx)), EDO_READY);
	CHECK_EQ(tw_poll(&t, edo_mpsc_reserve(&p2, tx)), EDO_READY);
	CHECK_EQ(edo_mpsc_capacity(tx), 0u);
	CHECK_EQ(tw_poll(&t, edo_mpsc_reserve(&p3, tx)), EDO_PENDING);
	CHECK_EQ(edo_mpsc_try_reserve(&p3, tx), -EAGAIN);
	edo_future_drop(&p1.base); /* gives the slot to the waiting reserve */
	CHECK_EQ(tw_woken(&t), 1);
	CHECK_EQ(tw_poll(&t, &p3.base), EDO_READY);
	int v = 7, out;
	CHECK_EQ(edo_mpsc_permit_send(&p3, &v), 0);
	CHECK_EQ(edo_mpsc_permit_send(&p3, &v), -EINVAL); /* used */
	v = 8;
	CHECK_EQ(edo_mpsc_permit_send(&p2, &v), 0);
	edo_future_drop(&p2.base); /* used: nothing to give back */
	CHECK_EQ(edo_mpsc_try_recv(rx, &out), 0);
	CHECK_EQ(out, 7);
	CHECK_EQ(edo_mpsc_try_recv(rx, &out), 0);
	CHECK_EQ(out, 8);
	CHECK_EQ(edo_mpsc_capacity(tx), 2u);
	edo_mpsc_tx_drop(tx);
	edo_mpsc_rx_drop(rx);
}

TEST(mpsc_recv_many_batches)
{
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	CHECK_EQ(edo_mpsc_new(16, sizeof(int), &tx, &rx), 0);
	for (int v = 0; v < 10; v++)
		CHECK_EQ(edo_mpsc_try_send(tx, &v), 0);
	test_waker t;
	tw_init(&t);
	int buf[4];
	size_t n = 99;
	int next = 0;
	size_t want[3] = {4, 4, 2};
	for (int b = 0; b < 3; b++) {
		CHECK_EQ(edo_mpsc_poll_recv_many(rx, &t.cx, buf, 4, &n), EDO_READY);
		CHECK_EQ(n, want[b]);
		for (size_t i = 0; i < n; i++)
			CHECK_EQ(buf[i], next++);
	}
	CHECK_EQ(edo_mpsc_capacity(tx), 16u);
	CHECK_EQ(edo_mpsc_poll_recv_many(rx, &t.cx, buf, 0, &n), EDO_READY);
	CHECK_EQ(n, 0u);
	CHECK_EQ(edo_mpsc_poll_recv_many(rx, &t.cx, buf, 4, &n), EDO_PENDING);
	int v = 100;
	CHECK_EQ(edo_mpsc_try_send(tx, &v), 0);
	CHECK_EQ(tw_woken(&t), 1);
	CHECK_EQ(edo_mpsc_poll_recv_many(rx, &t.cx, buf, 4, &n), EDO_READY);
	CHECK_EQ(n, 1u);
	CHECK_EQ(buf[0], 100);
	edo_mpsc_tx_drop(tx);
	CHECK_EQ(edo_mpsc_poll_recv_many(rx, &t.cx, buf, 4, &n), EDO_READY);
	CHECK_EQ(n, 0u); /* closed */
	edo_mpsc_rx_drop(rx);
}

TEST(mpsc_unbounded)
{
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	CHECK_EQ(edo_mpsc_unbounded_new(sizeof(long), &tx, &rx), 0);
	CHECK_EQ(edo_mpsc_capacity(tx), SIZE_MAX);
	edo_mpsc_tx *tx2 = edo_mpsc_tx_clone(tx);
	CHECK(tx2 == tx);
	for (long v = 0; v < 10000; v++)
		CHECK_EQ(edo_mpsc_try_send(v & 1 ? tx : tx2, &v), 0);
	long out;
	for (long v = 0; v < 10000; v++) {
		CHECK_EQ(edo_mpsc_try_recv(rx, &out), 0);
		CHECK_EQ(out, v);
	}
	edo_mpsc_tx_drop(tx2);
	CHECK_EQ(edo_mpsc_try_recv(rx, &out), -EAGAIN); /* one sender left */
	long v = 1;
	CHECK_EQ(edo_mpsc_try_send(tx, &v), 0);
	edo_mpsc_rx_close(rx);
	CHECK_EQ(edo_mpsc_try_send(tx, &v), EDO_ECLOSED);
	CHECK_EQ(edo_mpsc_try_recv(rx, &out), 0);
	CHECK_EQ(edo_mpsc_try_recv(rx, &out), EDO_ECLOSED);
	edo_mpsc_tx_drop(tx);
	edo_mpsc_rx_drop(rx);
}

TEST(mpsc_value_sizes_and_drop_with_values)
{
	size_t sizes[] = {0, 1, 3, 16, 100};
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		size_t sz = sizes[s];
		edo_mpsc_tx *tx;
		edo_mpsc_rx *rx;
		CHECK_EQ(edo_mpsc_new(100, sz, &tx, &rx), 0);
		unsigned char in[100], out[100];
		for (int i = 0; i < 70; i++) {
			memset(in, i, sizeof in);
			CHECK_EQ(edo_mpsc_try_send(tx, in), 0);
		}
		for (int i = 0; i < 40; i++) {
			memset(out, 0xff, sizeof out);
			CHECK_EQ(edo_mpsc_try_recv(rx, out), 0);
			for (size_t k = 0; k < sz; k++)
				CHECK_EQ(out[k], (unsigned char)i);
		}
		/* 30 values and two blocks left: freed with the channel (ASan). */
		edo_mpsc_rx_drop(rx);
		CHECK_EQ(edo_mpsc_try_send(tx, in), EDO_ECLOSED);
		edo_mpsc_tx_drop(tx);
	}
}

TEST(mpsc_blocks_are_recycled_through_a_long_run)
{
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	CHECK_EQ(edo_mpsc_new(70, sizeof(long), &tx, &rx), 0);
	long next_in = 0, next_out = 0, out;
	for (int round = 0; round < 5000; round++) {
		int k = round % 70;
		for (int i = 0; i < k; i++, next_in++)
			CHECK_EQ(edo_mpsc_try_send(tx, &next_in), 0);
		while (edo_mpsc_try_recv(rx, &out) == 0)
			CHECK_EQ(out, next_out++);
	}
	CHECK_EQ(next_out, next_in);
	edo_mpsc_tx_drop(tx);
	edo_mpsc_rx_drop(rx);
}

/* The stress test: P producers x N messages on the multi-thread runtime;
 * nothing lost, nothing duplicated, each producer's order kept. */
typedef struct producer_frame {
	EDO_FRAME;
	edo_mpsc_tx *tx;
	uint64_t id, n, i, v;
	bool unbounded;
	edo_mpsc_send_fut send;
} producer_frame;

EDO_ASYNC(producer, producer_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++) {
		self->v = (self->id << 40) | self->i;
		if (self->unbounded) {
			CHECK_EQ(edo_mpsc_try_send(self->tx, &self->v), 0);
			if ((self->i & 255) == 0)
				EDO_YIELD();
		} else {
			EDO_AWAIT(edo_mpsc_send(&self->send, self->tx, &self->v));
			CHECK_EQ(self->send.rc, 0);
		}
	}
	edo_mpsc_tx_drop(self->tx);
	EDO_END();
}

#define MAXP 16

typedef struct consumer_main_frame {
	EDO_FRAME;
	int producers;
	uint64_t n;
	bool unbounded, many;
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	uint64_t next[MAXP];
	uint64_t buf[64];
	size_t got;
	uint64_t total, v;
	int i, rc;
} consumer_main_frame;

static void consume(consumer_main_frame *self, uint64_t v)
{
	uint64_t id = v >> 40, seq = v & ((1ull << 40) - 1);
	CHECK_LT(id, (uint64_t)self->producers);
	CHECK_EQ(seq, self->next[id]);
	self->next[id]++;
	self->total++;
}

EDO_ASYNC(consumer_main, consumer_main_frame, NULL)
{
	EDO_BEGIN();
	if (self->unbounded)
		CHECK_EQ(edo_mpsc_unbounded_new(sizeof(uint64_t), &self->tx, &self->rx), 0);
	else
		CHECK_EQ(edo_mpsc_new(128, sizeof(uint64_t), &self->tx, &self->rx), 0);
	for (self->i = 0; self->i < self->producers; self->i++)
		CHECK_EQ(EDO_SPAWN(NULL, producer, .tx = edo_mpsc_tx_clone(self->tx),
				   .id = (uint64_t)self->i, .n = self->n,
				   .unbounded = self->unbounded),
			 0);
	edo_mpsc_tx_drop(self->tx);
	for (;;) {
		if (self->many) {
			EDO_AWAIT_POLL(
				edo_mpsc_poll_recv_many(self->rx, cx, self->buf, 64, &self->got));
			if (self->got == 0)
				break;
			for (size_t k = 0; k < self->got; k++)
				consume(self, self->buf[k]);
		} else {
			EDO_AWAIT_POLL(edo_mpsc_poll_recv(self->rx, cx, &self->v, &self->rc));
			if (self->rc == EDO_ECLOSED)
				break;
			CHECK_EQ(self->rc, 0);
			consume(self, self->v);
		}
	}
	edo_mpsc_rx_drop(self->rx);
	EDO_END();
}

static void run_mpsc_stress(edo_rt_flavor flavor, int producers, long n, bool unbounded, bool many)
{
	consumer_main_frame *f = calloc(1, sizeof *f);
	f->edo_base.vt = &consumer_main_vt;
	f->producers = producers;
	f->n = (uint64_t)n;
	f->unbounded = unbounded;
	f->many = many;
	test_block_on(flavor, &f->edo_base);
	CHECK_EQ(f->total, (uint64_t)producers * (uint64_t)n);
	for (int i = 0; i < producers; i++)
		CHECK_EQ(f->next[i], (uint64_t)n);
	free(f);
}

TEST(mpsc_stress_8x1m_bounded_multi_thread)
{
	run_mpsc_stress(EDO_RT_MULTI_THREAD, 8, test_scale(1000000), false, false);
}

TEST(mpsc_stress_8x1m_bounded_recv_many_multi_thread)
{
	run_mpsc_stress(EDO_RT_MULTI_THREAD, 8, test_scale(1000000), false, true);
}

TEST(mpsc_stress_8x1m_unbounded_multi_thread)
{
	run_mpsc_stress(EDO_RT_MULTI_THREAD, 8, test_scale(1000000), true, false);
}

TEST(mpsc_stress_current_thread)
{
	run_mpsc_stress(EDO_RT_CURRENT_THREAD, 4, test_scale(200000), false, false);
	run_mpsc_stress(EDO_RT_CURRENT_THREAD, 4, test_scale(200000), true, true);
}

/* Plain threads sending on an unbounded channel while a thread receives
 * with a counting waker: exercises the atomic waker's lost-wake races. */
typedef struct thread_producer_arg {
	edo_mpsc_tx *tx;
	uint64_t id, n;
} thread_producer_arg;

static void *thread_producer(void *p)
{
	thread_producer_arg *a = p;
	for (uint64_t i = 0; i < a->n; i++) {
		uint64_t v = (a->id << 40) | i;
		CHECK_EQ(edo_mpsc_try_send(a->tx, &v), 0);
	}
	edo_mpsc_tx_drop(a->tx);
	return NULL;
}

TEST(mpsc_threads_and_wakes)
{
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	CHECK_EQ(edo_mpsc_unbounded_new(sizeof(uint64_t), &tx, &rx), 0);
	enum { P = 4 };
	uint64_t n = (uint64_t)test_scale(200000);
	thread_producer_arg a[P];
	pthread_t th[P];
	for (int i = 0; i < P; i++) {
		a[i] = (thread_producer_arg){edo_mpsc_tx_clone(tx), (uint64_t)i, n};
		pthread_create(&th[i], NULL, thread_producer, &a[i]);
	}
	edo_mpsc_tx_drop(tx);
	test_waker t;
	tw_init(&t);
	uint64_t next[P] = {0}, total = 0, v;
	int rc;
	for (;;) {
		if (edo_mpsc_poll_recv(rx, &t.cx, &v, &rc) == EDO_PENDING) {
			while (!tw_woken(&t))
				sched_yield();
			continue;
		}
		if (rc == EDO_ECLOSED)
			break;
		CHECK_EQ(v & ((1ull << 40) - 1), next[v >> 40]);
		next[v >> 40]++;
		total++;
	}
	CHECK_EQ(total, P * n);
	for (int i = 0; i < P; i++)
		pthread_join(th[i], NULL);
	edo_mpsc_rx_drop(rx);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

/* recv takes budget: a receiver draining a full channel yields after 128. */
typedef struct recv_budget_frame {
	EDO_FRAME;
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	int i, rc, v;
	bool at_127, at_128;
} recv_budget_frame;

EDO_ASYNC(recv_budget, recv_budget_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_mpsc_new(512, sizeof(int), &self->tx, &self->rx), 0);
	for (self->i = 0; self->i < 300; self->i++)
		CHECK_EQ(edo_mpsc_try_send(self->tx, &self->i), 0);
	EDO_YIELD();
	for (self->i = 0; self->i < EDO_COOP_BUDGET; self->i++) {
		EDO_AWAIT_POLL(edo_mpsc_poll_recv(self->rx, cx, &self->v, &self->rc));
		if (self->i == EDO_COOP_BUDGET - 2)
			self->at_127 = edo_coop_has_budget_remaining();
	}
	self->at_128 = edo_coop_has_budget_remaining();
	EDO_AWAIT_POLL(edo_mpsc_poll_recv(self->rx, cx, &self->v, &self->rc));
	CHECK_EQ(self->v, EDO_COOP_BUDGET);
	edo_mpsc_tx_drop(self->tx);
	edo_mpsc_rx_drop(self->rx);
	EDO_END();
}

typedef struct spawn_one_frame {
	EDO_FRAME;
	edo_join *h;
	int rc;
	bool a, b;
} spawn_one_frame;

EDO_ASYNC(recv_budget_main, spawn_one_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->h, recv_budget), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	self->a = EDO_JOIN_OUTPUT(self->h, recv_budget)->at_127;
	self->b = EDO_JOIN_OUTPUT(self->h, recv_budget)->at_128;
	edo_join_detach(self->h);
	EDO_END();
}

TEST(mpsc_recv_consumes_budget)
{
	FLAVORS({
		spawn_one_frame f = {EDO_FRAME_INIT(recv_budget_main)};
		test_block_on(flavor_, &f.edo_base);
		CHECK(f.a);
		CHECK(!f.b);
	});
}

TEST_MAIN()
