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
	double t0, ns;
} ping_pong_frame;

EDO_ASYNC(ping_pong_task, ping_pong_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = now_ns();
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

BENCH_WORKLOAD(ping_pong, bench_ping_pong, "ns/op")
BENCH_WORKLOAD(semaphore, bench_semaphore, "ns/op")
BENCH_WORKLOAD(rwlock, bench_rwlock, "ns/op")
