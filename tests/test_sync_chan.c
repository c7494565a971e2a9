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

/* ==== broadcast =========================================================================== */

TEST(broadcast_every_receiver_sees_every_value)
{
	edo_broadcast_tx *tx;
	edo_broadcast_rx *r1;
	CHECK_EQ(edo_broadcast_new(16, sizeof(int), &tx, &r1), 0);
	edo_broadcast_rx *r2 = edo_broadcast_subscribe(tx);
	CHECK(r2 != NULL);
	CHECK_EQ(edo_broadcast_rx_count(tx), 2u);
	int out;
	CHECK_EQ(edo_broadcast_try_recv(r1, &out), -EAGAIN);
	for (int v = 0; v < 5; v++)
		CHECK_EQ(edo_broadcast_send(tx, &v), 2);
	/* A late subscriber sees only what comes after. */
	edo_broadcast_rx *r3 = edo_broadcast_subscribe(tx);
	int v = 5;
	CHECK_EQ(edo_broadcast_send(tx, &v), 3);
	for (int i = 0; i <= 5; i++) {
		CHECK_EQ(edo_broadcast_try_recv(r1, &out), 0);
		CHECK_EQ(out, i);
		CHECK_EQ(edo_broadcast_try_recv(r2, &out), 0);
		CHECK_EQ(out, i);
	}
	CHECK_EQ(edo_broadcast_try_recv(r3, &out), 0);
	CHECK_EQ(out, 5);
	CHECK_EQ(edo_broadcast_try_recv(r3, &out), -EAGAIN);
	edo_broadcast_rx_drop(r3);
	edo_broadcast_rx_drop(r2);
	edo_broadcast_rx_drop(r1);
	CHECK_EQ(edo_broadcast_send(tx, &v), EDO_ECLOSED); /* nobody listens */
	edo_broadcast_tx_drop(tx);
}

TEST(broadcast_lagged_receiver_skips_to_oldest)
{
	edo_broadcast_tx *tx;
	edo_broadcast_rx *rx;
	CHECK_EQ(edo_broadcast_new(3, sizeof(int), &tx, &rx), 0); /* rounded up to 4 */
	for (int v = 0; v < 10; v++)
		CHECK_EQ(edo_broadcast_send(tx, &v), 1);
	int out;
	CHECK_EQ(edo_broadcast_try_recv(rx, &out), EDO_ELAGGED);
	CHECK_EQ(edo_broadcast_rx_missed(rx), 6u);
	for (int v = 6; v < 10; v++) {
		CHECK_EQ(edo_broadcast_try_recv(rx, &out), 0);
		CHECK_EQ(out, v);
	}
	CHECK_EQ(edo_broadcast_try_recv(rx, &out), -EAGAIN);
	/* Lag again by exactly one. */
	for (int v = 10; v < 15; v++)
		edo_broadcast_send(tx, &v);
	CHECK_EQ(edo_broadcast_try_recv(rx, &out), EDO_ELAGGED);
	CHECK_EQ(edo_broadcast_rx_missed(rx), 1u);
	CHECK_EQ(edo_broadcast_try_recv(rx, &out), 0);
	CHECK_EQ(out, 11);
	edo_broadcast_rx_drop(rx);
	edo_broadcast_tx_drop(tx);
}

TEST(broadcast_wait_wake_and_close)
{
	edo_broadcast_tx *tx;
	edo_broadcast_rx *r1;
	CHECK_EQ(edo_broadcast_new(4, sizeof(long), &tx, &r1), 0);
	edo_broadcast_rx *r2 = edo_broadcast_subscribe(tx);
	test_waker t1, t2;
	tw_init(&t1);
	tw_init(&t2);
	long out;
	int rc;
	CHECK_EQ(edo_broadcast_poll_recv(r1, &t1.cx, &out, &rc), EDO_PENDING);
	CHECK_EQ(edo_broadcast_poll_recv(r2, &t2.cx, &out, &rc), EDO_PENDING);
	CHECK_EQ(edo_broadcast_poll_recv(r2, &t2.cx, &out, &rc), EDO_PENDING);
	long v = 9;
	edo_broadcast_tx *tx2 = edo_broadcast_tx_clone(tx);
	CHECK_EQ(edo_broadcast_send(tx2, &v), 2);
	CHECK_EQ(tw_woken(&t1), 1);
	CHECK_EQ(tw_woken(&t2), 1);
	CHECK_EQ(edo_broadcast_poll_recv(r1, &t1.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, 0);
	CHECK_EQ(out, 9);
	CHECK_EQ(edo_broadcast_poll_recv(r1, &t1.cx, &out, &rc), EDO_PENDING);
	edo_broadcast_tx_drop(tx2);
	CHECK_EQ(tw_woken(&t1), 0); /* one sender left */
	edo_broadcast_tx_drop(tx);
	CHECK_EQ(tw_woken(&t1), 1);
	CHECK_EQ(edo_broadcast_poll_recv(r1, &t1.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, EDO_ECLOSED);
	/* r2 still gets the kept value first. */
	CHECK_EQ(edo_broadcast_poll_recv(r2, &t2.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, 0);
	CHECK_EQ(edo_broadcast_poll_recv(r2, &t2.cx, &out, &rc), EDO_READY);
	CHECK_EQ(rc, EDO_ECLOSED);
	edo_broadcast_rx_drop(r1);
	edo_broadcast_rx_drop(r2);
	CHECK_EQ(atomic_load(&t1.refs), 0);
	CHECK_EQ(atomic_load(&t2.refs), 0);
}

TEST(broadcast_receiver_dropped_while_waiting)
{
	edo_broadcast_tx *tx;
	edo_broadcast_rx *rx;
	CHECK_EQ(edo_broadcast_new(2, 0, &tx, &rx), 0);
	test_waker t;
	tw_init(&t);
	int rc;
	CHECK_EQ(edo_broadcast_poll_recv(rx, &t.cx, NULL, &rc), EDO_PENDING);
	edo_broadcast_rx_drop(rx);
	CHECK_EQ(atomic_load(&t.refs), 0);
	CHECK_EQ(edo_broadcast_send(tx, NULL), EDO_ECLOSED);
	edo_broadcast_tx_drop(tx);
	/* And the other order: the sender goes first. */
	CHECK_EQ(edo_broadcast_new(2, 0, &tx, &rx), 0);
	edo_broadcast_tx_drop(tx);
	CHECK_EQ(edo_broadcast_try_recv(rx, NULL), EDO_ECLOSED);
	edo_broadcast_rx_drop(rx);
}

/* The last sender's drop wakes the waiting receivers in batches of 32,
 * dropping the lock in between.  If the woken tasks drop every receiver
 * meanwhile (here, the first wake does), the channel must outlive the wake
 * (ASan reports a use after free otherwise). */
enum { BD_N = 40 };
static edo_broadcast_rx *bd_rx[BD_N];

static void bd_on_wake(test_waker *t)
{
	if (atomic_load(&t->wakes) == 1)
		for (int i = 0; i < BD_N; i++)
			edo_broadcast_rx_drop(bd_rx[i]);
}

TEST(broadcast_receivers_dropped_while_last_sender_wakes)
{
	edo_broadcast_tx *tx;
	CHECK_EQ(edo_broadcast_new(4, sizeof(int), &tx, &bd_rx[0]), 0);
	for (int i = 1; i < BD_N; i++)
		CHECK(bd_rx[i] = edo_broadcast_subscribe(tx));
	test_waker t;
	tw_init(&t);
	t.on_wake = bd_on_wake;
	int out, rc;
	for (int i = 0; i < BD_N; i++)
		CHECK_EQ(edo_broadcast_poll_recv(bd_rx[i], &t.cx, &out, &rc), EDO_PENDING);
	edo_broadcast_tx_drop(tx);
	/* The first batch was woken; the rest were dropped before their turn. */
	CHECK_GT(atomic_load(&t.wakes), 0);
	CHECK_LT(atomic_load(&t.wakes), BD_N);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

TEST(broadcast_bad_input)
{
	edo_broadcast_tx *tx = NULL;
	edo_broadcast_rx *rx = NULL;
	CHECK_EQ(edo_broadcast_new(0, 4, &tx, &rx), -EINVAL);
	CHECK_EQ(edo_broadcast_new(4, 4, NULL, &rx), -EINVAL);
	CHECK_EQ(edo_broadcast_new((size_t)1 << 31, 4, &tx, &rx), -EINVAL);
	CHECK(tx == NULL && rx == NULL);
	CHECK_EQ(edo_broadcast_send(NULL, NULL), -EINVAL);
	CHECK_EQ(edo_broadcast_try_recv(NULL, NULL), -EINVAL);
	CHECK(edo_broadcast_subscribe(NULL) == NULL);
	CHECK_EQ(edo_broadcast_new(4, 4, &tx, &rx), 0);
	CHECK_EQ(edo_broadcast_send(tx, NULL), -EINVAL);
	CHECK_EQ(edo_broadcast_try_recv(rx, NULL), -EAGAIN);
	edo_broadcast_rx_drop(rx);
	edo_broadcast_tx_drop(tx);
}

/* One sender, fast and slow receivers on the multi-thread runtime.  A
 * receiver checks that values come in order and that, when it lags, the
 * next value is exactly `missed` further on. */
typedef struct brx_frame {
	EDO_FRAME;
	edo_broadcast_rx *rx;
	bool slow;
	uint64_t expect, v, got, lags, n;
	int rc;
} brx_frame;

EDO_ASYNC(brx, brx_frame, NULL)
{
	EDO_BEGIN();
	for (;;) {
		EDO_AWAIT_POLL(edo_broadcast_poll_recv(self->rx, cx, &self->v, &self->rc));
		if (self->rc == EDO_ECLOSED)
			break;
		if (self->rc == EDO_ELAGGED) {
			self->expect += edo_broadcast_rx_missed(self->rx);
			self->lags++;
			continue;
		}
		CHECK_EQ(self->rc, 0);
		CHECK_EQ(self->v, self->expect);
		self->expect++;
		self->got++;
		if (self->slow && (self->got % 4) == 0)
			EDO_YIELD();
	}
	CHECK_EQ(self->expect, self->n);
	edo_broadcast_rx_drop(self->rx);
	EDO_END();
}

typedef struct bmain_frame {
	EDO_FRAME;
	edo_broadcast_tx *tx;
	edo_join *h[8];
	uint64_t n, i;
	int k, rc;
	uint64_t slow_lags, fast_got;
} bmain_frame;

EDO_ASYNC(bcast_main, bmain_frame, NULL)
{
	EDO_BEGIN();
	edo_broadcast_rx *first;
	CHECK_EQ(edo_broadcast_new(16, sizeof(uint64_t), &self->tx, &first), 0);
	for (self->k = 0; self->k < 8; self->k++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->k], brx,
				   .rx = self->k == 0 ? first : edo_broadcast_subscribe(self->tx),
				   .slow = self->k >= 4, .n = self->n),
			 0);
	for (self->i = 0; self->i < self->n; self->i++) {
		CHECK_GT(edo_broadcast_send(self->tx, &self->i), 0);
		if ((self->i & 7) == 0)
			EDO_YIELD();
	}
	edo_broadcast_tx_drop(self->tx);
	for (self->k = 0; self->k < 8; self->k++) {
		EDO_AWAIT_JOIN(self->h[self->k], &self->rc);
		CHECK_EQ(self->rc, 0);
		brx_frame *r = EDO_JOIN_OUTPUT(self->h[self->k], brx);
		if (r->slow)
			self->slow_lags += r->lags;
		edo_join_detach(self->h[self->k]);
	}
	EDO_END();
}

TEST(broadcast_slow_and_fast_receivers_both_flavors)
{
	FLAVORS({
		bmain_frame f = {EDO_FRAME_INIT(bcast_main), .n = (uint64_t)test_scale(200000)};
		test_block_on(flavor_, &f.edo_base);
	});
}

/* ==== watch =============================================================================== */

static bool add_one(void *value, void *ud)
{
	(*(int *)value)++;
	return true;
}

static bool no_change(void *value, void *ud)
{
	return false;
}

TEST(watch_send_borrow_changed)
{
	edo_watch_tx *tx;
	edo_watch_rx *rx;
	int init = 1, out = 0;
	CHECK_EQ(edo_watch_new(sizeof(int), &init, &tx, &rx), 0);
	edo_watch_borrow(rx, &out);
	CHECK_EQ(out, 1);
	CHECK_EQ(edo_watch_has_changed(rx), 0);
	test_waker t;
	tw_init(&t);
	edo_watch_changed_fut c;
	CHECK_EQ(tw_poll(&t, edo_watch_changed(&c, rx)), EDO_PENDING);
	int v = 2;
	CHECK_EQ(edo_watch_send(tx, &v), 0);
	CHECK_EQ(tw_woken(&t), 1);
	CHECK_EQ(edo_watch_has_changed(rx), 1);
	CHECK_EQ(tw_poll(&t, &c.base), EDO_READY);
	CHECK_EQ(c.rc, 0);
	CHECK_EQ(edo_watch_has_changed(rx), 0);
	edo_watch_borrow(rx, &out);
	CHECK_EQ(out, 2);
	/* Two sends before a look: one change, the latest value. */
	v = 3;
	edo_watch_send(tx, &v);
	v = 4;
	edo_watch_send(tx, &v);
	CHECK_EQ(tw_poll(&t, edo_watch_changed(&c, rx)), EDO_READY);
	edo_watch_borrow(rx, &out);
	CHECK_EQ(out, 4);
	CHECK_EQ(tw_poll(&t, edo_watch_changed(&c, rx)), EDO_PENDING);
	/* Modify in place. */
	CHECK_EQ(edo_watch_send_modify(tx, no_change, NULL), 0);
	CHECK_EQ(tw_woken(&t), 0);
	CHECK_EQ(edo_watch_send_modify(tx, add_one, NULL), 1);
	CHECK_EQ(tw_woken(&t), 1);
	CHECK_EQ(tw_poll(&t, &c.base), EDO_READY);
	edo_watch_borrow_and_update(rx, &out);
	CHECK_EQ(out, 5);
	/* Closed: the sender goes. */
	CHECK_EQ(tw_poll(&t, edo_watch_changed(&c, rx)), EDO_PENDING);
	edo_watch_tx_drop(tx);
	CHECK_EQ(tw_woken(&t), 1);
	CHECK_EQ(tw_poll(&t, &c.base), EDO_READY);
	CHECK_EQ(c.rc, EDO_ECLOSED);
	CHECK_EQ(edo_watch_has_changed(rx), EDO_ECLOSED);
	edo_watch_borrow(rx, &out);
	CHECK_EQ(out, 5);
	edo_watch_rx_drop(rx);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

TEST(watch_receivers_and_closed)
{
	edo_watch_tx *tx;
	edo_watch_rx *rx;
	CHECK_EQ(edo_watch_new(sizeof(long), NULL, &tx, &rx), 0);
	long out = -1;
	edo_watch_borrow(rx, &out);
	CHECK_EQ(out, 0);
	long v = 7;
	CHECK_EQ(edo_watch_send(tx, &v), 0);
	edo_watch_rx *late = edo_watch_subscribe(tx); /* has seen 7 */
	edo_watch_rx *copy = edo_watch_rx_clone(rx);  /* has not */
	CHECK_EQ(edo_watch_has_changed(late), 0);
	CHECK_EQ(edo_watch_has_changed(copy), 1);
	CHECK_EQ(edo_watch_rx_count(tx), 3u);
	test_waker t;
	tw_init(&t);
	edo_watch_closed_fut cf;
	CHECK_EQ(tw_poll(&t, edo_watch_closed(&cf, tx)), EDO_PENDING);
	edo_watch_rx_drop(rx);
	edo_watch_rx_drop(copy);
	CHECK_EQ(tw_woken(&t), 0);
	CHECK(!edo_watch_tx_is_closed(tx));
	edo_watch_rx_drop(late);
	CHECK_EQ(tw_woken(&t), 1);
	CHECK(edo_watch_tx_is_closed(tx));
	CHECK_EQ(tw_poll(&t, &cf.base), EDO_READY);
	CHECK_EQ(edo_watch_send(tx, &v), EDO_ECLOSED);
	long old = 0;
	v = 8;
	CHECK_EQ(edo_watch_send_replace(tx, &v, &old), 0);
	CHECK_EQ(old, 7);
	edo_watch_tx_drop(tx);
	CHECK_EQ(atomic_load(&t.refs), 0);
}

/* Many receivers follow a sender counting up; each sees increasing values,
 * ends on the last one, then sees the channel close. */
typedef struct wrx_frame {
	EDO_FRAME;
	edo_watch_rx *rx;
	long last, v, n, changes;
	edo_watch_changed_fut c;
} wrx_frame;

EDO_ASYNC(wrx, wrx_frame, NULL)
{
	EDO_BEGIN();
	for (;;) {
		EDO_AWAIT(edo_watch_changed(&self->c, self->rx));
		if (self->c.rc == EDO_ECLOSED)
			break;
		edo_watch_borrow(self->rx, &self->v);
		CHECK_GE(self->v, self->last);
		self->last = self->v;
		self->changes++;
	}
	edo_watch_borrow(self->rx, &self->v);
	CHECK_EQ(self->v, self->n);
	edo_watch_rx_drop(self->rx);
	EDO_END();
}

typedef struct wmain_frame {
	EDO_FRAME;
	edo_watch_tx *tx;
	edo_join *h[32];
	long n, i;
	int k, rc;
} wmain_frame;

EDO_ASYNC(wmain, wmain_frame, NULL)
{
	EDO_BEGIN();
	edo_watch_rx *first;
	CHECK_EQ(edo_watch_new(sizeof(long), NULL, &self->tx, &first), 0);
	for (self->k = 0; self->k < 32; self->k++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->k], wrx,
				   .rx = self->k == 0 ? first : edo_watch_subscribe(self->tx),
				   .n = self->n),
			 0);
	for (self->i = 1; self->i <= self->n; self->i++) {
		CHECK_EQ(edo_watch_send(self->tx, &self->i), 0);
		if ((self->i & 3) == 0)
			EDO_YIELD();
	}
	edo_watch_tx_drop(self->tx);
	for (self->k = 0; self->k < 32; self->k++) {
		EDO_AWAIT_JOIN(self->h[self->k], &self->rc);
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->h[self->k]);
	}
	EDO_END();
}

TEST(watch_many_receivers_both_flavors)
{
	FLAVORS({
		wmain_frame f = {EDO_FRAME_INIT(wmain), .n = test_scale(50000)};
		test_block_on(flavor_, &f.edo_base);
	});
}

TEST_MAIN()
