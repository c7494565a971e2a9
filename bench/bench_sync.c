/* Sync and channel workloads (bench/README.md defines each exactly; the
 * Tokio and Go peers do the same work): ping_pong, request_reply,
 * mpsc_uncontended, mpsc_contended, semaphore, rwlock, notify. */
#include "bench.h"

#define PING_PONG_ITERS 100
#define PING_PONG_PAIRS 1000
#define MPSC_MSGS 10000000ull
#define MPSC_CAP 1024
#define MPSC_PRODUCERS 8
#define REQ_REPLY 1000000
#define SYNC_ITERS 100000
#define NOTIFY_WAITERS 10
#define NOTIFY_TARGET 100000

static void check(int rc, const char *what)
{
	if (rc < 0)
		die(what, rc);
}

/* ---- ping_pong: 100 x (1,000 pairs of tasks bouncing a oneshot each way) ---- */

typedef struct pp_partner_frame {
	EDO_FRAME;
	edo_oneshot_rx *rx1;
	edo_oneshot_tx *tx2;
	int rc;
} pp_partner_frame;

EDO_ASYNC(pp_partner, pp_partner_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_POLL(edo_oneshot_poll_recv(self->rx1, cx, NULL, &self->rc));
	check(self->rc, "recv");
	edo_oneshot_rx_drop(self->rx1);
	check(edo_oneshot_send(self->tx2, NULL), "send");
	EDO_END();
}

typedef struct pp_pair_frame {
	EDO_FRAME;
	edo_oneshot_rx *rx2;
	int rc;
} pp_pair_frame;

EDO_ASYNC(pp_pair, pp_pair_frame, NULL)
{
	EDO_BEGIN();
	edo_oneshot_tx *tx1, *tx2;
	edo_oneshot_rx *rx1;
	check(edo_oneshot_new(0, &tx1, &rx1), "oneshot");
	check(edo_oneshot_new(0, &tx2, &self->rx2), "oneshot");
	check(EDO_SPAWN(NULL, pp_partner, .rx1 = rx1, .tx2 = tx2), "spawn");
	check(edo_oneshot_send(tx1, NULL), "send");
	EDO_AWAIT_POLL(edo_oneshot_poll_recv(self->rx2, cx, NULL, &self->rc));
	check(self->rc, "recv");
	edo_oneshot_rx_drop(self->rx2);
	EDO_END();
}

typedef struct ping_pong_frame {
	EDO_FRAME;
	edo_join *h[PING_PONG_PAIRS];
	int it, i, rc;
	double t0, cpu0, ns;
} ping_pong_frame;

EDO_ASYNC(ping_pong_task, ping_pong_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = now_ns();
	self->cpu0 = bench_cpu_ns();
	for (self->it = 0; self->it < PING_PONG_ITERS; self->it++) {
		for (self->i = 0; self->i < PING_PONG_PAIRS; self->i++)
			check(EDO_SPAWN(&self->h[self->i], pp_pair), "spawn");
		for (self->i = 0; self->i < PING_PONG_PAIRS; self->i++) {
			EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
			check(self->rc, "join");
			edo_join_detach(self->h[self->i]);
		}
	}
	self->ns = (now_ns() - self->t0) / ((double)PING_PONG_ITERS * PING_PONG_PAIRS);
	bench_report_cpu((bench_cpu_ns() - self->cpu0) /
			 ((double)PING_PONG_ITERS * PING_PONG_PAIRS));
	EDO_END();
}

static double bench_ping_pong(edo_runtime *rt)
{
	ping_pong_frame *f = calloc(1, sizeof *f);
	f->edo_base.vt = &ping_pong_task_vt;
	run_in_task(rt, &f->edo_base, sizeof *f);
	double ns = f->ns;
	free(f);
	return ns;
}

/* ---- semaphore: 100,000 x (6 tasks acquire and release one of 5 permits) ---- */

typedef struct sem_user_frame {
	EDO_FRAME;
	edo_semaphore *s;
	edo_acquire_fut acq;
} sem_user_frame;

EDO_ASYNC(sem_user, sem_user_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT(edo_semaphore_acquire(&self->acq, self->s));
	check(self->acq.rc, "acquire");
	edo_semaphore_release(self->s, 1);
	EDO_END();
}

typedef struct sem_bench_frame {
	EDO_FRAME;
	edo_semaphore s;
	edo_join *h[6];
	int it, i, rc;
	double t0, ns;
} sem_bench_frame;

EDO_ASYNC(sem_bench_task, sem_bench_frame, NULL)
{
	EDO_BEGIN();
	edo_semaphore_init(&self->s, 5);
	self->t0 = now_ns();
	for (self->it = 0; self->it < SYNC_ITERS; self->it++) {
		for (self->i = 0; self->i < 6; self->i++)
			check(EDO_SPAWN(&self->h[self->i], sem_user, .s = &self->s), "spawn");
		for (self->i = 0; self->i < 6; self->i++) {
			EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
			check(self->rc, "join");
			edo_join_detach(self->h[self->i]);
		}
	}
	self->ns = (now_ns() - self->t0) / SYNC_ITERS;
	EDO_END();
}

static double bench_semaphore(edo_runtime *rt)
{
	sem_bench_frame f = {EDO_FRAME_INIT(sem_bench_task)};
	run_in_task(rt, &f.edo_base, sizeof f);
	return f.ns;
}

/* ---- rwlock: 100,000 x (write lock; 5 readers spawned; unlock; await them) ---- */

typedef struct reader_frame {
	EDO_FRAME;
	edo_rwlock *rw;
	edo_acquire_fut acq;
} reader_frame;

EDO_ASYNC(reader_task, reader_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT(edo_rwlock_read(&self->acq, self->rw));
	edo_rwlock_read_unlock(self->rw);
	EDO_END();
}

typedef struct rwlock_bench_frame {
	EDO_FRAME;
	edo_rwlock rw;
	edo_acquire_fut acq;
	edo_join *h[5];
	int it, i, rc;
	double t0, ns;
} rwlock_bench_frame;

EDO_ASYNC(rwlock_bench_task, rwlock_bench_frame, NULL)
{
	EDO_BEGIN();
	edo_rwlock_init(&self->rw, 0);
	self->t0 = now_ns();
	for (self->it = 0; self->it < SYNC_ITERS; self->it++) {
		EDO_AWAIT(edo_rwlock_write(&self->acq, &self->rw));
		for (self->i = 0; self->i < 5; self->i++)
			check(EDO_SPAWN(&self->h[self->i], reader_task, .rw = &self->rw), "spawn");
		edo_rwlock_write_unlock(&self->rw);
		for (self->i = 0; self->i < 5; self->i++) {
			EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
			check(self->rc, "join");
			edo_join_detach(self->h[self->i]);
		}
	}
	self->ns = (now_ns() - self->t0) / SYNC_ITERS;
	EDO_END();
}

static double bench_rwlock(edo_runtime *rt)
{
	rwlock_bench_frame f = {EDO_FRAME_INIT(rwlock_bench_task)};
	run_in_task(rt, &f.edo_base, sizeof f);
	return f.ns;
}

/* ---- mpsc_uncontended / mpsc_contended: 10,000,000 u64 through capacity 1,024 ---- */

typedef struct mpsc_producer_frame {
	EDO_FRAME;
	edo_mpsc_tx *tx;
	uint64_t per, i;
	edo_mpsc_send_fut send;
} mpsc_producer_frame;

EDO_ASYNC(mpsc_producer, mpsc_producer_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->per; self->i++) {
		EDO_AWAIT(edo_mpsc_send(&self->send, self->tx, &self->i));
		check(self->send.rc, "send");
	}
	edo_mpsc_tx_drop(self->tx);
	EDO_END();
}

typedef struct mpsc_bench_frame {
	EDO_FRAME;
	uint64_t producers;
	edo_mpsc_tx *tx;
	edo_mpsc_rx *rx;
	uint64_t n, sum, v, i;
	int rc;
	double t0, secs;
} mpsc_bench_frame;

EDO_ASYNC(mpsc_bench_task, mpsc_bench_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = now_ns();
	check(edo_mpsc_new(MPSC_CAP, sizeof(uint64_t), &self->tx, &self->rx), "mpsc");
	for (self->i = 0; self->i < self->producers; self->i++)
		check(EDO_SPAWN(NULL, mpsc_producer, .tx = edo_mpsc_tx_clone(self->tx),
				.per = MPSC_MSGS / self->producers),
		      "spawn");
	edo_mpsc_tx_drop(self->tx);
	for (;;) {
		EDO_AWAIT_POLL(edo_mpsc_poll_recv(self->rx, cx, &self->v, &self->rc));
		if (self->rc == EDO_ECLOSED)
			break;
		self->sum += self->v;
		self->n++;
	}
	edo_mpsc_rx_drop(self->rx);
	uint64_t per = MPSC_MSGS / self->producers;
	if (self->n != MPSC_MSGS || self->sum != self->producers * (per * (per - 1) / 2))
		die("mpsc: wrong count or sum", -EIO);
	self->secs = (now_ns() - self->t0) / 1e9;
	EDO_END();
}

static double mpsc_run(edo_runtime *rt, uint64_t producers)
{
	mpsc_bench_frame f = {EDO_FRAME_INIT(mpsc_bench_task), .producers = producers};
	run_in_task(rt, &f.edo_base, sizeof f);
	return (double)MPSC_MSGS / f.secs;
}

static double bench_mpsc_uncontended(edo_runtime *rt)
{
	return mpsc_run(rt, 1);
}

static double bench_mpsc_contended(edo_runtime *rt)
{
	return mpsc_run(rt, MPSC_PRODUCERS);
}

/* ---- request_reply: 1,000,000 round trips to a server task over mpsc + oneshot ---- */

typedef struct rr_server_frame {
	EDO_FRAME;
	edo_mpsc_rx *rx;
	edo_oneshot_tx *reply;
	int rc;
} rr_server_frame;

EDO_ASYNC(rr_server, rr_server_frame, NULL)
{
	EDO_BEGIN();
	for (;;) {
		EDO_AWAIT_POLL(edo_mpsc_poll_recv(self->rx, cx, &self->reply, &self->rc));
		if (self->rc == EDO_ECLOSED)
			break;
		(void)edo_oneshot_send(self->reply, NULL);
	}
	edo_mpsc_rx_drop(self->rx);
	EDO_END();
}

typedef struct rr_frame {
	EDO_FRAME;
	edo_mpsc_tx *tx;
	edo_join *server;
	edo_oneshot_tx *rtx;
	edo_oneshot_rx *rrx;
	edo_mpsc_send_fut send;
	int i, rc;
	double t0, ns;
} rr_frame;

EDO_ASYNC(rr_task, rr_frame, NULL)
{
	EDO_BEGIN();
	edo_mpsc_rx *rx;
	check(edo_mpsc_new(10, sizeof(edo_oneshot_tx *), &self->tx, &rx), "mpsc");
	check(EDO_SPAWN(&self->server, rr_server, .rx = rx), "spawn");
	self->t0 = now_ns();
	for (self->i = 0; self->i < REQ_REPLY; self->i++) {
		check(edo_oneshot_new(0, &self->rtx, &self->rrx), "oneshot");
		EDO_AWAIT(edo_mpsc_send(&self->send, self->tx, &self->rtx));
		check(self->send.rc, "send");
		EDO_AWAIT_POLL(edo_oneshot_poll_recv(self->rrx, cx, NULL, &self->rc));
		check(self->rc, "reply");
		edo_oneshot_rx_drop(self->rrx);
	}
	self->ns = (now_ns() - self->t0) / REQ_REPLY;
	edo_mpsc_tx_drop(self->tx);
	EDO_AWAIT_JOIN(self->server, &self->rc);
	edo_join_detach(self->server);
	EDO_END();
}

static double bench_request_reply(edo_runtime *rt)
{
	rr_frame f = {EDO_FRAME_INIT(rr_task)};
	run_in_task(rt, &f.edo_base, sizeof f);
	return f.ns;
}

/* ---- notify: 10 waiters count wake-ups; notify_one + yield until 100,000 ---- */

typedef struct notify_waiter_frame {
	EDO_FRAME;
	edo_notify *n;
	atomic_long *count;
	atomic_bool *done;
	edo_notified_fut nf;
} notify_waiter_frame;

EDO_ASYNC(notify_waiter, notify_waiter_frame, NULL)
{
	EDO_BEGIN();
	for (;;) {
		EDO_AWAIT(edo_notify_notified(&self->nf, self->n));
		if (atomic_load_explicit(self->done, memory_order_acquire))
			break;
		atomic_fetch_add_explicit(self->count, 1, memory_order_relaxed);
	}
	EDO_END();
}

typedef struct notify_bench_frame {
	EDO_FRAME;
	edo_notify n;
	atomic_long count;
	atomic_bool done;
	edo_join *h[NOTIFY_WAITERS];
	int i, rc;
	bool busy;
	double t0, ns;
} notify_bench_frame;

EDO_ASYNC(notify_bench_task, notify_bench_frame, NULL)
{
	EDO_BEGIN();
	edo_notify_init(&self->n);
	for (self->i = 0; self->i < NOTIFY_WAITERS; self->i++)
		check(EDO_SPAWN(&self->h[self->i], notify_waiter, .n = &self->n,
				.count = &self->count, .done = &self->done),
		      "spawn");
	self->t0 = now_ns();
	while (atomic_load_explicit(&self->count, memory_order_relaxed) < NOTIFY_TARGET) {
		edo_notify_one(&self->n);
		EDO_YIELD();
	}
	self->ns = (now_ns() - self->t0) / NOTIFY_TARGET;
	atomic_store_explicit(&self->done, true, memory_order_release);
	for (;;) {
		self->busy = false;
		for (self->i = 0; self->i < NOTIFY_WAITERS; self->i++)
			self->busy |= !edo_join_is_finished(self->h[self->i]);
		if (!self->busy)
			break;
		edo_notify_one(&self->n);
		EDO_YIELD();
	}
	for (self->i = 0; self->i < NOTIFY_WAITERS; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

static double bench_notify(edo_runtime *rt)
{
	notify_bench_frame f = {EDO_FRAME_INIT(notify_bench_task)};
	run_in_task(rt, &f.edo_base, sizeof f);
	return f.ns;
}

BENCH_WORKLOAD(ping_pong, bench_ping_pong, "ns/op")
BENCH_WORKLOAD(semaphore, bench_semaphore, "ns/op")
BENCH_WORKLOAD(rwlock, bench_rwlock, "ns/op")
BENCH_WORKLOAD(mpsc_uncontended, bench_mpsc_uncontended, "ops/s")
BENCH_WORKLOAD(mpsc_contended, bench_mpsc_contended, "ops/s")
BENCH_WORKLOAD(request_reply, bench_request_reply, "ns/op")
BENCH_WORKLOAD(notify, bench_notify, "ns/op")
