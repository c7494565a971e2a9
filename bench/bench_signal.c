/* Signal workloads (bench/README.md defines each exactly; the Tokio peer
 * does the same work): signal_latency, Tokio's signal.rs many_signals
 * repeated, with SIGUSR1 and SIGUSR2. */
#include <signal.h>
#include <unistd.h>

#include "bench.h"

#define SIG_ITERS 10000
#define SIG_LISTENERS 10 /* per signal */

static atomic_int sig_ready;

static void check(int rc, const char *what)
{
	if (rc < 0)
		die(what, rc);
}

/* A listener: SIG_ITERS times, await the signal, then send () on its channel. */
typedef struct sig_listener_frame {
	EDO_FRAME;
	int signum;
	edo_mpsc_tx *tx;
	edo_signal *sig;
	edo_mpsc_send_fut send;
	int i, rc;
	char unit;
} sig_listener_frame;

static void sig_listener_cleanup(sig_listener_frame *self)
{
	edo_signal_drop(self->sig);
	edo_mpsc_tx_drop(self->tx);
}

EDO_ASYNC(sig_listener, sig_listener_frame, sig_listener_cleanup)
{
	EDO_BEGIN();
	check(edo_signal_new(self->signum, &self->sig), "signal");
	atomic_fetch_add(&sig_ready, 1);
	for (self->i = 0; self->i < SIG_ITERS; self->i++) {
		EDO_AWAIT_POLL(edo_signal_poll_recv(self->sig, cx, &self->rc));
		check(self->rc, "recv signal");
		EDO_AWAIT(edo_mpsc_send(&self->send, self->tx, &self->unit));
		check(self->send.rc, "send");
	}
	EDO_END();
}

typedef struct sig_bench_frame {
	EDO_FRAME;
	edo_mpsc_rx *rx[2];
	edo_join *h[2 * SIG_LISTENERS];
	int it, s, i, rc;
	char unit;
	double t0, ns;
} sig_bench_frame;

static const int sig_nums[2] = {SIGUSR1, SIGUSR2};

EDO_ASYNC(sig_bench_task, sig_bench_frame, NULL)
{
	EDO_BEGIN();
	for (self->s = 0; self->s < 2; self->s++) {
		edo_mpsc_tx *tx;
		check(edo_mpsc_new(SIG_LISTENERS, 1, &tx, &self->rx[self->s]), "mpsc");
		for (self->i = 0; self->i < SIG_LISTENERS; self->i++)
			check(EDO_SPAWN(&self->h[self->s * SIG_LISTENERS + self->i], sig_listener,
					.signum = sig_nums[self->s], .tx = edo_mpsc_tx_clone(tx)),
			      "spawn");
		edo_mpsc_tx_drop(tx);
	}
	while (atomic_load(&sig_ready) < 2 * SIG_LISTENERS)
		EDO_YIELD();
	self->t0 = now_ns();
	for (self->it = 0; self->it < SIG_ITERS; self->it++) {
		for (self->s = 0; self->s < 2; self->s++) {
			kill(getpid(), sig_nums[self->s]);
			for (self->i = 0; self->i < SIG_LISTENERS; self->i++) {
				EDO_AWAIT_POLL(edo_mpsc_poll_recv(self->rx[self->s], cx,
								  &self->unit, &self->rc));
				check(self->rc, "recv");
			}
		}
	}
	self->ns = (now_ns() - self->t0) / (2.0 * SIG_ITERS);
	for (self->i = 0; self->i < 2 * SIG_LISTENERS; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		check(self->rc, "join");
		edo_join_detach(self->h[self->i]);
	}
	edo_mpsc_rx_drop(self->rx[0]);
	edo_mpsc_rx_drop(self->rx[1]);
	EDO_END();
}

static double bench_signal_latency(edo_runtime *rt)
{
	sig_bench_frame *f = calloc(1, sizeof *f);
	f->edo_base.vt = &sig_bench_task_vt;
	run_in_task(rt, &f->edo_base, sizeof *f);
	double ns = f->ns;
	free(f);
	return ns;
}

BENCH_WORKLOAD(signal_latency, bench_signal_latency, "ns/op")
