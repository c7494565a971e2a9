/* Observability internals: the per-worker slot that poll timing and the
 * stall watch write, the runtime's trace state, and the "edo-trace" thread
 * (stall watchdog, dump signal, console server).  The public side is
 * include/edo/trace.h and include/edo/metrics.h.
 *
 * The hot path.  A runtime that opted in to nothing pays, per task poll, a
 * relaxed store of the task's poll count and of the coarse last-poll stamp
 * (task.c) and a predictable branch on edo__ctx.tw == NULL.  With poll_time_histogram, a slot adds two
 * clock reads and a few relaxed stores (on one poll in poll_time_sample);
 * with stall_detection, two release stores and a load.
 *
 * The stall watch.  A worker publishes the poll it is in: `poll` holds
 * (seq << 1) | IN_POLL while it polls task `task`, seq << 1 between polls.
 * The watchdog samples `poll`; when it sees the same in-poll word for longer
 * than the threshold, it must read the task's name and spawn site while the
 * task cannot be freed, i.e. while the worker has not ended that poll.  A
 * Dekker-style handshake, made asymmetric so that the worker pays only a
 * store and a load (the watchdog pays a membarrier(2) system call, once per
 * suspected stall):
 *
 *   worker:   poll = s|IN (release) ... poll ...  poll = s (release)
 *             if inspect == s|IN: wait until ack == s|IN
 *   watchdog: inspect = v;  membarrier() (a full barrier on every thread);
 *             if poll == v: read *task (the worker will wait); ack = v
 *             else: ack = v (the worker ended the poll; it may be waiting)
 *
 * The barrier orders the worker's end-of-poll store against its load of
 * `inspect`: either the watchdog sees the poll ended, or the worker sees
 * `inspect` and waits.  Without membarrier (an old kernel, seccomp), both
 * sides use seq_cst accesses instead (an exchange per poll on x86).
 *
 * The in-poll word also carries the watchdog's epoch as the worker read it
 * when the poll began (the watchdog bumps `epoch` at every sample and keeps
 * when it did), so a poll seen for the first time late — the watchdog's
 * thread was itself kept off a CPU — is known to have begun before the
 * epoch after it: a stall blocked in the kernel is caught by one sample
 * after the threshold instead of two samples a threshold apart.
 */
#ifndef EDO_TRACE_INTERNAL_H
#define EDO_TRACE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "edo/metrics.h"
#include "edo/runtime.h"
#include "edo/trace.h"
#include "runtime/context.h"
#include "runtime/task/task.h"

#define EDO__TW_IN_POLL ((uint64_t)1)
/* The in-poll word: epoch << EDO__TW_EPOCH_SHIFT | (seq << 1 & EDO__TW_SEQ_MASK) | IN_POLL. */
#define EDO__TW_EPOCH_SHIFT 44
#define EDO__TW_EPOCH_MASK ((1u << (64 - EDO__TW_EPOCH_SHIFT)) - 1u)
#define EDO__TW_SEQ_MASK ((((uint64_t)1) << EDO__TW_EPOCH_SHIFT) - 2u)
#define EDO__TW_EPOCHS 256 /* epochs the watchdog remembers (a power of two) */

/* One worker's observability slot (the current-thread runtime has one). */
typedef struct edo__tw {
	/* ---- the stall watch (see above) --------------------------------------- */
	_Atomic(uint64_t) poll;    /* written by the worker */
	_Atomic(edo__task *) task; /* written by the worker */
	_Atomic(uint64_t) inspect; /* written by the watchdog */
	_Atomic(uint64_t) ack;     /* written by the watchdog */
	_Atomic(uint32_t) epoch;   /* written by the watchdog */
	/* ---- the worker's own ---------------------------------------------------- */
	uint64_t seq;         /* polls started */
	uint64_t cur;         /* the in-poll word of the current poll */
	uint64_t t0;          /* start of the current timed poll */
	uint64_t poll_ns;     /* time in polls (sampled polls scaled) */
	uint32_t sample;      /* time one poll in `sample` (1: every poll) */
	uint32_t sample_left; /* polls until the next timed one */
	bool timing;          /* poll_time_histogram */
	bool watch;           /* stall_detection */
	bool fenced;          /* membarrier(2) registered: the cheap stall watch */
	bool timed;           /* the current poll is being timed */
	_Atomic(int) tid;     /* the thread that runs this worker (for schedstat) */
	_Atomic(uint64_t) hist[EDO_POLL_HISTOGRAM_BUCKETS];
	/* ---- the watchdog's own ---------------------------------------------------- */
	uint64_t w_seen;     /* the in-poll word last sampled */
	uint64_t w_since_ns; /* when the poll began at the latest */
	bool w_times;        /* the thread's times then are known: */
	int64_t w_run0_ns;   /* its time on a CPU */
	int64_t w_wait0_ns;  /* its time queued for a CPU */
	uint64_t w_reported; /* the word last reported */
} __attribute__((aligned(64))) edo__tw;

#define EDO__STALL_LOG 32

typedef struct edo__trace {
	struct edo_handle *sched;
	uint32_t nworkers;
	edo__tw *tw; /* nworkers slots */
	bool timing, watch;
	uint32_t sample; /* poll_time_sample, a power of two */
	uint64_t stall_ns;
	void (*on_stall)(void *ud, const edo_stall_info *stall);
	void *stall_ud;
	int dump_signal;
	char *console_path;
	uint64_t start_ns;
	uint32_t epoch;                    /* the watchdog's sample count */
	uint64_t epoch_ns[EDO__TW_EPOCHS]; /* when each recent epoch began */
	_Atomic(uint64_t) stalls;
	/* The stall log, a ring. */
	pthread_mutex_t log_lock;
	edo_stall_info log[EDO__STALL_LOG];
	uint64_t log_count;
	/* The edo-trace thread. */
	pthread_t thread;
	bool thread_started;
	bool stopped;
	int pipe_rd, pipe_wr; /* self-pipe: 'D' dump (signal), 'Q' quit */
	int listen_fd;
	bool console_bound; /* console_path is ours to unlink, while it is */
	dev_t console_dev;  /* the socket file we put there */
	ino_t console_ino;
} edo__trace;

static inline uint64_t edo__mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The coarse clock of task stamps: CLOCK_MONOTONIC in ms, wrapping at 2^32. */
static inline uint32_t edo__coarse_ms(uint64_t mono_ns)
{
	return (uint32_t)(mono_ns / 1000000u);
}

/* ---- the poll path (task.c) -------------------------------------------------- */

static inline unsigned edo__hist_bucket(uint64_t ns)
{
	if (ns < 128)
		return 0;
	unsigned b = (unsigned)(63 - __builtin_clzll(ns)) - 6;
	return b < EDO_POLL_HISTOGRAM_BUCKETS ? b : EDO_POLL_HISTOGRAM_BUCKETS - 1;
}

static inline void edo__tw_poll_begin(edo__tw *tw, edo__task *t)
{
	if (tw->timing && --tw->sample_left == 0) {
		tw->sample_left = tw->sample;
		tw->timed = true;
		tw->t0 = edo__mono_ns();
		if (t->flags & EDO__TASK_TIMED)
			atomic_store_explicit(&edo__task_timing_of(t)->last_poll_ns, tw->t0,
					      memory_order_relaxed);
	}
	if (tw->watch) {
		tw->seq++;
		tw->cur = (uint64_t)atomic_load_explicit(&tw->epoch, memory_order_relaxed)
				  << EDO__TW_EPOCH_SHIFT |
			  ((tw->seq << 1) & EDO__TW_SEQ_MASK) | EDO__TW_IN_POLL;
		atomic_store_explicit(&tw->task, t, memory_order_relaxed);
		/* Constant orders: a variable one compiles to seq_cst. */
		if (tw->fenced)
			atomic_store_explicit(&tw->poll, tw->cur, memory_order_release);
		else
			atomic_store_explicit(&tw->poll, tw->cur, memory_order_seq_cst);
	}
}

/* The watchdog is reading the task of the poll that just ended: wait. */
void edo__tw_wait_inspector(edo__tw *tw, uint64_t poll);

/* End the stall watch's view of the current poll (also at a hand-off in
 * edo_block_in_place, where the poll goes on without the worker). */
static inline void edo__tw_unwatch(edo__tw *tw)
{
	if (tw->watch) {
		uint64_t cur = tw->cur, between = cur & EDO__TW_SEQ_MASK;
		uint64_t seen;
		if (tw->fenced) {
			atomic_store_explicit(&tw->poll, between, memory_order_release);
			seen = atomic_load_explicit(&tw->inspect, memory_order_relaxed);
		} else {
			atomic_store_explicit(&tw->poll, between, memory_order_seq_cst);
			seen = atomic_load_explicit(&tw->inspect, memory_order_seq_cst);
		}
		if (__builtin_expect(seen == cur, 0))
			edo__tw_wait_inspector(tw, cur);
	}
}

static inline void edo__tw_poll_end(edo__tw *tw, edo__task *t)
{
	edo__tw_unwatch(tw);
	if (tw->timed) {
		tw->timed = false;
		uint64_t d = edo__mono_ns() - tw->t0;
		_Atomic(uint64_t) *h = &tw->hist[edo__hist_bucket(d)];
		/* A sampled poll stands for `sample` polls. */
		atomic_store_explicit(h, atomic_load_explicit(h, memory_order_relaxed) + tw->sample,
				      memory_order_relaxed);
		d *= tw->sample;
		tw->poll_ns += d;
		if (t->flags & EDO__TASK_TIMED) {
			_Atomic(uint64_t) *b = &edo__task_timing_of(t)->busy_ns;
			atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + d,
					      memory_order_relaxed);
		}
	}
}

/* ---- set-up (the schedulers, runtime.c) ------------------------------------------ */

/* Create the trace state of @s for @nworkers workers, if @b asks for any
 * observability; s->trace stays NULL otherwise.  0 or -ENOMEM. */
int edo__trace_new(struct edo_handle *s, const edo_runtime_builder *b, uint32_t nworkers);

/* Validate the observability fields of a builder: 0 or -EINVAL/-ENAMETOOLONG. */
int edo__trace_validate(const edo_runtime_builder *b);

/* The slot a worker thread puts in edo__ctx.tw: NULL unless it times polls
 * or watches stalls.  Records the calling thread as the worker's. */
edo__tw *edo__trace_slot(struct edo_handle *s, uint32_t worker);

/* Start the edo-trace thread (console socket, dump signal, watchdog) if the
 * runtime wants one.  0 or -errno (the console socket could not be made). */
int edo__trace_start(struct edo_handle *s);

/* Stop the edo-trace thread, remove the socket and the signal handler;
 * called at the start of shutdown, before tasks are cancelled.  Idempotent. */
void edo__trace_stop(struct edo_handle *s);

/* Free the trace state (the scheduler's memory goes). */
void edo__trace_free(edo__trace *tr);

/* ---- reading (dump.c, metrics.c) ------------------------------------------------ */

/* The scheduler of a runtime (runtime.c). */
struct edo_handle *edo__runtime_sched(edo_runtime *rt);

/* Runtime-wide metrics of the scheduler @s. */
void edo__metrics_runtime(struct edo_handle *s, edo_runtime_metrics *out);
int edo__metrics_worker(struct edo_handle *s, uint32_t worker, edo_worker_metrics *out);

/* The task snapshot of edo_runtime_tasks(), on a scheduler. */
int edo__trace_tasks(struct edo_handle *s, edo_task_info **out, size_t *n);

/* No more task dumps of @s: waits for one in progress, later ones fail
 * with EDO_ESHUTDOWN (edo__trace_stop, before the shutdown sweep). */
void edo__trace_close_dumps(struct edo_handle *s);

/* The text dump of edo_runtime_dump(). */
int edo__trace_dump(struct edo_handle *s, FILE *out);

/* Copy @src into @dst (EDO_TASK_NAME_MAX), "" for NULL. */
void edo__trace_copy_name(char *dst, const char *src);

/* Milliseconds since the runtime was built (0 without trace state). */
uint64_t edo__trace_uptime_ms(struct edo_handle *s);

#endif /* EDO_TRACE_INTERNAL_H */
