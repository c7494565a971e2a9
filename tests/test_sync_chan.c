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

TEST_MAIN()
