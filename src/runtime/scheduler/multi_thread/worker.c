/* The multi-thread, work-stealing scheduler.
 *
 * N workers, each an OS thread with:
 *   - a local run queue (queue.c: 256 slots, the owner pushes and pops,
 *     thieves steal half);
 *   - a LIFO slot holding the task most recently woken or spawned by the
 *     task it is running, so a message ping-pong stays on one core, hot in
 *     cache;
 *   - a parker it sleeps on, and a list of deferred wakes.
 * Shared: the inject queue (sharded: spawns and wakes from outside the
 * workers, and local-queue overflow), the idle state (idle.c), the
 * owned-tasks list, and the closing flag.
 *
 * The worker loop:
 *
 *   loop:
 *     tick++; event_interval (61) ticks after the last driver turn (this
 *       worker's park, or its last maintenance): maintenance (a non-blocking
 *       driver turn, deferred wakes, publish metrics, check closing)
 *     task = what is left of a burst taken from the inject queue; every
 *            global_queue_interval ticks (fewer while the inject queue holds
 *            a backlog: inject_interval()) one task from the pinned or the
 *            inject queue first (with a short interval, up to 16 at once:
 *            the burst); else LIFO slot, local queue, then a batch from the
 *            inject queue
 *     none → steal: become a searcher (at most half the workers search),
 *            steal half of a random victim's queue; then the inject queue;
 *            on the last pass take what waits in a victim's burst, else its
 *            LIFO task, if it has sat there through a whole poll
 *     none → park (the last searcher to park re-checks every queue first)
 *     run the task with a budget of 128, then up to 3 LIFO tasks on the same
 *     budget; a task that leaves the searching state while it was the last
 *     searcher wakes another worker to keep searching
 *
 * Differences from Tokio, on purpose:
 *   - The LIFO slot can be stolen (Tokio's open issue #4941: a task woken
 *     into the slot waits behind however long the current poll takes).  As
 *     Go does with runnext, a thief takes it only on its last pass and only
 *     if the victim is still inside the same poll after a short pause, so
 *     ping-pong pairs are not split across cores.  The same holds for the
 *     inject tasks waiting in a burst (below).
 *   - The global queue interval shrinks while the inject queue holds a
 *     backlog, so that the backlog drains within a few times as many ticks
 *     as strict FIFO order would take (inject_wait, the builder's
 *     inject_wait_factor, per look); Tokio takes one task per interval
 *     however long the backlog, which lets a worker overloaded with
 *     connections serve some of them many times as often as others.
 *   - The inject queue is sharded by thread, so remote spawners on several
 *     threads do not serialise on one lock; emptiness is a relaxed load per
 *     shard.  Idle bookkeeping has its own lock, not the inject queue's.
 *
 * Pinned tasks.  A started fiber runs only on the worker that first resumed
 * it (src/fiber/fiber.h says why); its task's `pin` is 1 + that worker's
 * index.  The cost for every other task is one predictable branch in
 * mt_schedule() and one in next_task():
 *   - a wake on the owner goes to the owner's `mine` list, a plain FIFO
 *     that only the owner touches, so no thief ever copies it out of a
 *     queue (and no sleeper is woken for it: nobody else may run it);
 *     next_task() alternates between `mine` and the local queue;
 *   - a wake anywhere else goes to the owner's `pinned` queue (a locked
 *     list, like an inject shard) and unparks the owner, which takes from
 *     it at each look at the inject queue and whenever its own queues are
 *     empty.
 * So pinned tasks never sit in the LIFO slot, the local queue or the
 * inject queue, where other workers could take them.
 * A worker hosting started fibers is never handed to another thread by
 * edo_block_in_place (edo__ctx.fibers_pinned).
 *
 * Shutdown: the freeing thread closes the owned-tasks list (new spawns are
 * refused), sets `closing` and unparks everyone.  Each worker leaves its loop,
 * cancels owned tasks (all workers in parallel, each shard under its lock)
 * except tasks pinned to another worker, which it forwards to that worker,
 * waits at a barrier, cancels what was forwarded to it (a suspended fiber is
 * resumed to wind down, on its own worker), waits at a barrier again until
 * every worker is done cancelling, then drops its queued notifications.  The
 * freeing thread joins the workers and drains the inject queue.  Every future
 * is dropped on a worker thread.
 */
#define _GNU_SOURCE
#include "runtime/scheduler/multi_thread/multi_thread.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edo/error.h"
#include "runtime/context.h"
#include "runtime/driver.h"
#include "runtime/sched.h"
#include "runtime/scheduler/inject.h"
#include "runtime/scheduler/multi_thread/burst.h"
#include "runtime/scheduler/multi_thread/idle.h"
#include "runtime/scheduler/multi_thread/queue.h"
#include "runtime/trace/trace.h"

#define MAX_LIFO_POLLS 3
#define DEFAULT_EVENT_INTERVAL 61
#define MAX_INJECT_BATCH 128
#define DEFAULT_INJECT_WAIT 2

typedef struct edo__worker edo__worker;
typedef struct edo__mt edo__mt;

struct edo__worker {
	edo__local_queue queue;
	_Atomic(edo__task *) lifo;
	/* Bumped (plain store) at every poll; thieves read it to see whether
	 * the worker is stuck in one long poll. */
	_Atomic(uint32_t) poll_seq;
	edo__mt *mt;
	uint32_t index;
	uint32_t tick;
	uint32_t turn_tick; /* tick of this worker's last driver turn */
	uint32_t rand;
	uint32_t gqi;          /* current global queue interval */
	uint32_t inject_tick;  /* the tick of the next look at the inject queue */
	uint32_t inject_round; /* looks so far: which inject shard comes first */
	/* Inject tasks taken in one go when the interval is short: run next,
	 * one per tick, before anything else (burst.h).  A thief takes them
	 * from a worker stuck in one poll (steal_stuck). */
	edo__burst burst;
	bool is_searching;
	bool lifo_enabled;
	bool is_shutdown;
	/* In edo__parker_park (a driver turn, or a sleep, then the timers),
	 * or waking the deferred wakers after it: wakes dispatched there queue
	 * tasks here without notifying anyone, and notify_if_backlog()
	 * notifies once for the whole batch. */
	bool in_park;
	edo__defer defer;
	edo__parker parker;
	/* Wakes, from elsewhere, of tasks pinned to this worker. */
	edo__inject pinned;
	/* Wakes, on this worker, of tasks pinned to it (owner only). */
	edo__task *mine_head, *mine_tail;
	/* Shutdown: tasks pinned here that other workers popped from the
	 * owned-tasks list (linked through owned_next). */
	_Atomic(edo__task *) forwarded;
	/* Adaptive global queue interval: EWMA of the mean poll time. */
	double ewma_poll_ns;
	uint64_t batch_start_ns;
	uint64_t batch_polls;
	edo__worker_counts counts; /* published by publish_stats() */
	uint64_t busy_mark_ns;     /* busy time is accounted up to here */
	edo__clock_cadence clock;  /* which maintenance ticks read the clock */
	edo__mean_poll mean;       /* the mean poll time metric */
	edo__worker_stats stats;
} __attribute__((aligned(64)));

/* block_on_count: set by edo_runtime_free once no thread is in
 * edo_block_on; later calls fail with EDO_ESHUTDOWN. */
#define BLOCK_ON_CLOSED (1u << 31)

struct edo__mt {
	edo__sched base;
	uint32_t num_workers;
	edo__worker *workers;
	edo__inject_set inject;
	edo__idle idle;
	atomic_bool closing;
	atomic_uint block_on_count; /* threads in edo_block_on, | BLOCK_ON_CLOSED */
	pthread_barrier_t shutdown_barrier;
	unsigned event_interval;
	unsigned fixed_gqi;   /* 0 = adaptive */
	unsigned inject_wait; /* builder's inject_wait_factor; 0 = unbounded */
	bool lifo_stealing;
	char thread_name[16];
	size_t stack_size;
	/* Worker threads are detached (edo_block_in_place hands a worker to a
	 * new thread); shutdown waits for `exited` to reach the worker count
	 * and for `handed_off` to drop to 0. */
	pthread_mutex_t exit_lock;
	pthread_cond_t exit_cond;
	unsigned exited;
	/* Threads that handed their worker away in edo_block_in_place and have
	 * not yet left: shutdown waits for them too (they run user code, hooks
	 * and drops). */
	unsigned handed_off;
	/* Shutdown: the worker threads it waits for, and whether it gave up
	 * waiting (edo_runtime_shutdown_timeout): then the last of them to
	 * leave finishes the shutdown (mt_finish_stop) and drops the runtime's
	 * reference.  Both under exit_lock. */
	unsigned stopping;
	bool finish_late;
	/* Set with finish_late when the workers had not all left: the last
	 * worker out shuts the I/O driver down (mt_stop_threads_until). */
	bool late_io;
	atomic_uint threads_started;
};

static edo__mt *mt_of(edo__sched *s)
{
	return (edo__mt *)s;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t fast_rand(edo__worker *w)
{
	/* xorshift32 */
	uint32_t x = w->rand;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	w->rand = x;
	return x;
}

#define STAT_ADD(w, field, n) EDO__STAT_ADD(&(w)->stats, field, n)

/* ---- the inject queue ----------------------------------------------------------- */

static bool inject_is_empty(edo__mt *mt)
{
	return edo__inject_set_is_empty(&mt->inject);
}

static void overflow_to_inject(void *ctx, edo__task *const *tasks, uint32_t n)
{
	edo__worker *w = ctx;
	edo__mt *mt = w->mt;
	if (!edo__inject_set_push_batch(&mt->inject, w->index, tasks, n)) {
		/* Closed (shutdown): the tasks were cancelled; drop the refs. */
		for (uint32_t i = 0; i < n; i++)
			edo__task_drop_notified(tasks[i]);
	}
	STAT_ADD(w, overflows, 1);
}

/* ---- notifying parked workers -------------------------------------------------------- */

static void notify_parked(edo__mt *mt)
{
	int32_t i = edo__idle_worker_to_notify(&mt->idle);
	if (i >= 0)
		edo__parker_unpark(&mt->workers[i].parker);
}

/* Tasks of @w that any worker may run (its local queue, LIFO slot and,
 * unless stealing from a stuck worker is off, its burst: a searcher woken
 * for it could never take it then). */
static bool worker_has_stealable_tasks(edo__worker *w)
{
	return !edo__local_queue_is_empty(&w->queue) ||
	       atomic_load_explicit(&w->lifo, memory_order_acquire) != NULL ||
	       (w->mt->lifo_stealing && edo__burst_waiting(&w->burst) != 0);
}

/* Tasks @w itself may run next (the stealable ones and those pinned to it,
 * woken elsewhere; its own `mine` list is the caller's to check). */
static bool worker_has_tasks(edo__worker *w)
{
	return worker_has_stealable_tasks(w) || !edo__inject_is_empty(&w->pinned);
}

static void notify_if_work_pending(edo__mt *mt)
{
	/* Pairs with the fence in the idle state check (idle.c): our parking
	 * RMW is ordered before these queue loads.  Tasks pinned to a worker
	 * do not count: push_pinned() unparked their owner, and a searcher
	 * woken for them could not run them (it would find nothing, park,
	 * find them still queued and wake a searcher again, spinning for as
	 * long as the owner is busy). */
	EDO__FULL_FENCE(&mt->idle.state);
	for (uint32_t i = 0; i < mt->num_workers; i++) {
		if (worker_has_stealable_tasks(&mt->workers[i])) {
			notify_parked(mt);
			return;
		}
	}
	if (!inject_is_empty(mt))
		notify_parked(mt);
}

/* ---- scheduling ------------------------------------------------------------------------ */

static void push_local(edo__worker *w, edo__task *t)
{
	edo__local_queue_push(&w->queue, t, overflow_to_inject, w);
}

static void push_remote(edo__mt *mt, edo__task *t)
{
	if (!edo__inject_set_push(&mt->inject, t)) {
		edo__task_drop_notified(t);
		return;
	}
	notify_parked(mt);
}

/* Queue a task pinned to this worker, woken on it. */
static void push_mine(edo__worker *w, edo__task *t)
{
	t->next = NULL;
	if (w->mine_tail)
		w->mine_tail->next = t;
	else
		w->mine_head = t;
	w->mine_tail = t;
}

static edo__task *pop_mine(edo__worker *w)
{
	edo__task *t = w->mine_head;
	if (t) {
		w->mine_head = t->next;
		if (!w->mine_head)
			w->mine_tail = NULL;
		t->next = NULL;
	}
	return t;
}

/* Queue a task pinned to another worker (or woken outside the workers) on
 * its owner, and wake the owner: no other worker may run it. */
static void push_pinned(edo__mt *mt, edo__task *t)
{
	edo__worker *owner = &mt->workers[t->pin - 1];
	if (!edo__inject_push(&owner->pinned, t)) {
		edo__task_drop_notified(t); /* shut down */
		return;
	}
	edo__parker_unpark(&owner->parker);
}

static void mt_schedule(edo__sched *s, edo__task *t, bool yield)
{
	edo__mt *mt = mt_of(s);
	edo__worker *w = edo__ctx.sched == s ? edo__ctx.core : NULL;
	if (__builtin_expect(t->pin != 0, 0)) {
		if (w && t->pin == w->index + 1)
			push_mine(w, t);
		else
			push_pinned(mt, t);
		return;
	}
	if (!w) {
		push_remote(mt, t);
		return;
	}
	EDO__COUNT(&w->counts, local_schedules, 1);
	if (yield || !w->lifo_enabled) {
		push_local(w, t);
		if (!w->in_park)
			notify_parked(mt);
		return;
	}
	edo__task *prev = atomic_exchange_explicit(&w->lifo, t, memory_order_acq_rel);
	if (prev)
		push_local(w, prev);
	/* Wake a sleeper even when nothing was displaced (Go's wakep() after
	 * runqput to runnext): if this poll goes on for long, the LIFO task
	 * needs an awake thief to take it (Tokio #4941).  While a worker is
	 * searching already, this is one load.  Not while this worker is in
	 * its driver turn: readiness comes in batches, and notify_if_backlog()
	 * notifies once for the batch (Tokio's schedule_local does the same). */
	if (!w->in_park)
		notify_parked(mt);
}

/* ---- finding work ------------------------------------------------------------------------ */

/* Take a batch from the inject queue: return one, queue the rest locally. */
static edo__task *pop_inject_batch(edo__worker *w)
{
	edo__mt *mt = w->mt;
	if (inject_is_empty(mt))
		return NULL;
	uint32_t room = edo__local_queue_remaining(&w->queue);
	size_t want = edo__inject_set_len(&mt->inject) / mt->num_workers + 1;
	if (want > room)
		want = room;
	if (want > MAX_INJECT_BATCH)
		want = MAX_INJECT_BATCH;
	if (want == 0)
		want = 1;
	edo__task *batch[MAX_INJECT_BATCH];
	uint32_t n = edo__inject_set_pop_n(&mt->inject, w->index, (uint32_t)want, batch);
	if (n) {
		EDO__COUNT(&w->counts, remote_schedules, n);
		for (uint32_t i = 1; i < n; i++)
			push_local(w, batch[i]);
		return batch[0];
	}
	return NULL;
}

static edo__task *take_lifo(edo__worker *w)
{
	if (!atomic_load_explicit(&w->lifo, memory_order_relaxed))
		return NULL;
	return atomic_exchange_explicit(&w->lifo, NULL, memory_order_acq_rel);
}

/* Ticks between looks at the inject queue: the global queue interval,
 * shortened while the inject queue holds a backlog so that this worker's
 * share of it drains within inject_wait times the ticks that strict FIFO
 * order would take (the share and the local queue, once each). */
static uint32_t inject_interval(edo__worker *w)
{
	edo__mt *mt = w->mt;
	uint32_t g = w->gqi;
	if (!mt->inject_wait || inject_is_empty(mt))
		return g;
	uint64_t share = edo__inject_set_len(&mt->inject) / mt->num_workers + 1;
	uint64_t bound = mt->inject_wait * (share + edo__local_queue_len(&w->queue)) / share;
	return bound >= g ? g : bound > 1 ? (uint32_t)bound : 1;
}

/* The interval's look at the pinned and inject queues: one task, as Tokio
 * takes, not a batch, so that tasks woken while their worker is overloaded
 * do not go ahead of the local queue's (docs/architecture.md, "Fairness
 * under overload").  When the interval is short, the tasks of up to one
 * global queue interval are taken under one lock and run one per tick,
 * spending the interval's share at once. */
static edo__task *look_at_inject(edo__worker *w)
{
	edo__mt *mt = w->mt;
	uint32_t every = inject_interval(w);
	w->inject_tick = w->tick + every;
	edo__task *t = edo__inject_pop(&w->pinned);
	if (t)
		return t;
	if (inject_is_empty(mt))
		return NULL;
	uint32_t n = w->gqi / every;
	if (n > EDO__BURST_MAX)
		n = EDO__BURST_MAX;
	if (n == 0)
		n = 1;
	/* Each look starts at the next shard: a worker's own overflow goes to
	 * its own shard, which would otherwise always come first. */
	edo__task *got_tasks[EDO__BURST_MAX];
	uint32_t got =
		edo__inject_set_pop_n(&mt->inject, w->index + w->inject_round++, n, got_tasks);
	if (!got)
		return NULL;
	EDO__COUNT(&w->counts, remote_schedules, got);
	w->inject_tick = w->tick + got * every;
	if (got > 1) {
		edo__task_prefetch(got_tasks[1]); /* it runs next */
		edo__burst_load(&w->burst, got_tasks, got);
		/* As for a LIFO task: only a thief's last pass can reach the
		 * burst, so wake one to look in case this worker gets stuck. */
		notify_parked(mt);
	}
	return got_tasks[0];
}

/* Give the burst's waiting tasks to the local queue, where thieves can take
 * them: this worker is about to block. */
static void release_burst(edo__worker *w)
{
	edo__task *tasks[EDO__BURST_MAX] = {0};
	uint32_t n = edo__burst_take_all(&w->burst, tasks);
	if (!n)
		return;
	for (uint32_t i = 0; i < n; i++)
		push_local(w, tasks[i]);
	notify_parked(w->mt);
}

static edo__task *next_task(edo__worker *w)
{
	edo__task *t;
	if (__builtin_expect(edo__burst_waiting(&w->burst) != 0, 0)) {
		t = edo__burst_pop(&w->burst);
		if (t)
			return t;
	}
	if ((int32_t)(w->tick - w->inject_tick) >= 0) {
		t = look_at_inject(w);
		if (t)
			return t;
	}
	t = take_lifo(w);
	if (t)
		return t;
	/* Fibers pinned here and the local queue take turns. */
	if (__builtin_expect(w->mine_head != NULL, 0) && (w->tick & 1))
		return pop_mine(w);
	t = edo__local_queue_pop(&w->queue);
	if (t)
		return t;
	t = pop_mine(w);
	if (t)
		return t;
	t = edo__inject_pop(&w->pinned);
	if (t)
		return t;
	return pop_inject_batch(w);
}

/* Take work that no thief sees in a queue -- the tasks waiting in a burst,
 * else the LIFO task -- only from a worker stuck in one poll:
 * look, pause briefly (the owner normally gets to them within a
 * microsecond), and take them only if the worker is still in the same poll.
 * The pause is a sleep, as Go's before it steals runnext (usleep(3)):
 * sched_yield() on a loaded machine gives away a whole time slice per call.
 * A burst's tasks go to @w's local queue but the first, which is returned. */
static edo__task *steal_stuck(edo__worker *w, edo__worker *victim)
{
	if (!atomic_load_explicit(&victim->lifo, memory_order_relaxed) &&
	    !edo__burst_waiting(&victim->burst))
		return NULL;
	uint32_t seq = atomic_load_explicit(&victim->poll_seq, memory_order_acquire);
	nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 5000}, NULL);
	if (atomic_load_explicit(&victim->poll_seq, memory_order_acquire) != seq)
		return NULL;
	edo__task *tasks[EDO__BURST_MAX] = {0};
	uint32_t n = edo__burst_take_all(&victim->burst, tasks);
	if (n) {
		EDO__COUNT(&w->counts, steals, n);
		for (uint32_t i = 1; i < n; i++)
			push_local(w, tasks[i]);
		return tasks[0];
	}
	edo__task *t = atomic_load_explicit(&victim->lifo, memory_order_acquire);
	if (t &&
	    atomic_compare_exchange_strong_explicit(&victim->lifo, &t, NULL, memory_order_acq_rel,
						    memory_order_relaxed)) {
		EDO__COUNT(&w->counts, steals, 1);
		return t;
	}
	return NULL;
}

static edo__task *steal_work(edo__worker *w)
{
	edo__mt *mt = w->mt;
	if (!w->is_searching) {
		if (!edo__idle_transition_to_searching(&mt->idle))
			return NULL;
		w->is_searching = true;
	}
	uint32_t n = mt->num_workers;
	uint32_t start = fast_rand(w) % n;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t v = (start + i) % n;
		if (v == w->index)
			continue;
		EDO__COUNT(&w->counts, steal_operations, 1);
		edo__task *t = edo__local_queue_steal_into(&mt->workers[v].queue, &w->queue);
		if (t) {
			EDO__COUNT(&w->counts, steals, 1 + edo__local_queue_len(&w->queue));
			return t;
		}
	}
	edo__task *t = pop_inject_batch(w);
	if (t)
		return t;
	for (uint32_t i = 0; i < n && mt->lifo_stealing; i++) {
		uint32_t v = (start + i) % n;
		if (v == w->index)
			continue;
		t = steal_stuck(w, &mt->workers[v]);
		if (t)
			return t;
	}
	return NULL;
}

/* ---- running ----------------------------------------------------------------------------- */

/* Poll @t; false if this thread gave the worker away during the poll
 * (edo_block_in_place): then it must not touch @w again. */
static bool run_one(edo__worker *w, edo__task *t)
{
	/* Pinned tasks never reach a queue another worker takes from. */
	assert(!t->pin || t->pin == w->index + 1);
	atomic_store_explicit(&w->poll_seq,
			      atomic_load_explicit(&w->poll_seq, memory_order_relaxed) + 1,
			      memory_order_release);
	/* Counted first: a poll that hands the worker away in
	 * edo_block_in_place is a poll of this worker too. */
	w->batch_polls++;
	EDO__COUNT(&w->counts, polls, 1);
	edo__task_run(t);
	return edo__ctx.core == w;
}

/* Run @t and its LIFO successors; false if the worker was handed to another
 * thread meanwhile (edo_block_in_place). */
static bool run_task(edo__worker *w, edo__task *t)
{
	edo__mt *mt = w->mt;
	if (w->is_searching) {
		w->is_searching = false;
		if (edo__idle_transition_from_searching(&mt->idle))
			notify_parked(mt);
	}
	w->lifo_enabled = true;
	edo__ctx.constrained = true;
	edo__ctx.budget = EDO_COOP_BUDGET;
	if (!run_one(w, t))
		return false;
	for (int lifo_polls = 0;;) {
		t = take_lifo(w);
		if (!t)
			break;
		if (!edo_coop_has_budget_remaining() || ++lifo_polls > MAX_LIFO_POLLS) {
			/* Fairness: the chain goes to the back of the queue. */
			w->lifo_enabled = false;
			push_local(w, t);
			notify_parked(mt);
			break;
		}
		if (!run_one(w, t))
			return false;
	}
	edo__ctx.constrained = false;
	return true;
}

/* ---- parking --------------------------------------------------------------------------------- */

/* Busy time up to @now; refreshes the coarse clock that stamps polls. */
static void account_busy(edo__worker *w, uint64_t now)
{
	if (!EDO__METRICS)
		return;
	edo__cadence_read(&w->clock, now);
	STAT_ADD(w, busy_ns, now - w->busy_mark_ns);
	w->busy_mark_ns = now;
	edo__ctx.now_ms = edo__coarse_ms(now);
}

/* Publish the counters; the mean poll time too if @busy_now (busy time was
 * just accounted, as it is whenever the clock is read). */
static void publish_stats(edo__worker *w, bool busy_now)
{
	if (!EDO__METRICS)
		return;
	/* The burst's waiting tasks are this worker's queued work too. */
	EDO__STAT_SET(&w->stats, local_queue_depth,
		      edo__local_queue_len(&w->queue) + edo__burst_waiting(&w->burst));
	/* The thread's count since the last publish (it restarts with each
	 * block_on and on a new thread): the counter only grows. */
	EDO__STAT_ADD(&w->stats, budget_forced_yields, edo__ctx.forced_yields);
	edo__ctx.forced_yields = 0;
	edo__tw *tw = edo__ctx.tw;
	if (tw && tw->timing)
		EDO__STAT_SET(&w->stats, poll_time_ns, tw->poll_ns);
	if (busy_now)
		edo__mean_poll_update(&w->mean, &w->stats, w->counts.polls,
				      tw && tw->timing ? tw->poll_ns :
							 EDO__STAT_GET(&w->stats, busy_ns));
	edo__counts_publish(&w->counts, &w->stats);
}

/* End of a busy period: account busy time, retune the global queue interval. */
static void end_batch(edo__worker *w)
{
	uint64_t now = mono_ns();
	uint64_t busy = now - w->batch_start_ns;
	account_busy(w, now);
	if (w->batch_polls && !w->mt->fixed_gqi) {
		/* Tokio's tuning: target 200 µs between inject checks. */
		double mean = (double)busy / (double)w->batch_polls;
		double alpha = 0.1;
		w->ewma_poll_ns = (1 - alpha) * w->ewma_poll_ns + alpha * mean;
		double gqi = 200000.0 / (w->ewma_poll_ns > 1 ? w->ewma_poll_ns : 1);
		uint32_t g = gqi < 2 ? 2 : gqi > 127 ? 127 : (uint32_t)gqi;
		if (g > w->gqi + 2 || g + 2 < w->gqi)
			w->gqi = g;
	}
	publish_stats(w, true);
	w->batch_polls = 0;
}

static void begin_batch(edo__worker *w)
{
	w->batch_start_ns = w->busy_mark_ns = mono_ns();
	edo__ctx.now_ms = edo__coarse_ms(w->batch_start_ns);
	edo__cadence_read(&w->clock, w->batch_start_ns);
}

/* Park @w's parker (a driver turn, or a futex sleep), holding back the
 * notifications of the wakes it dispatches (mt_schedule); then, as Tokio's
 * park_timeout does, wake one sleeper if this worker now has more tasks than
 * the one it runs next, unless it is searching (a searcher notifies when it
 * finds work).  Without this, every driver turn that found readiness woke a
 * sleeper as it dispatched the first wake: a futex wake, or an eventfd write
 * when the sleeper was this very worker, in the middle of its own turn. */
static void park_parker(edo__worker *w, int64_t timeout_ns)
{
	w->in_park = true;
	edo__parker_park(&w->parker, timeout_ns);
	w->in_park = false;
}

/* Wake the deferred wakers (yield_now, spent budgets), after a park, as a
 * batch like the turn's: the caller's notify_if_backlog() covers them.
 * Notifying for each (Tokio's Defer::wake does not either) read the shared
 * idle word once per yield: 6% of yield_many's time on 2 workers. */
static void wake_deferred(edo__worker *w)
{
	w->in_park = true;
	edo__defer_wake_all(&w->defer);
	w->in_park = false;
}

static void notify_if_backlog(edo__worker *w)
{
	if (w->is_searching)
		return;
	size_t n = edo__local_queue_len(&w->queue) +
		   (atomic_load_explicit(&w->lifo, memory_order_relaxed) ? 1u : 0u);
	if (n > 1)
		notify_parked(w->mt);
}

static bool closing(edo__mt *mt)
{
	return atomic_load_explicit(&mt->closing, memory_order_acquire);
}

static void park(edo__worker *w)
{
	edo__mt *mt = w->mt;
	edo__sched *s = &mt->base;
	if (worker_has_tasks(w) || w->mine_head)
		return;
	end_batch(w);
	if (edo__idle_transition_to_parked(&mt->idle, w->index, w->is_searching))
		notify_if_work_pending(mt);
	w->is_searching = false;
	for (;;) {
		if (closing(mt))
			break;
		if (s->hooks.on_thread_park)
			s->hooks.on_thread_park(s->hooks_ud);
		STAT_ADD(w, parks, 1);
		park_parker(w, -1);
		STAT_ADD(w, unparks, 1);
		if (s->hooks.on_thread_unpark)
			s->hooks.on_thread_unpark(s->hooks_ud);
		wake_deferred(w);
		if (worker_has_tasks(w) || w->mine_head) {
			/* Woken with work of our own (a driver wake).  If a
			 * notifier took us off the sleepers meanwhile, it counted
			 * us as searching: we are, or that count never drops. */
			w->is_searching = !edo__idle_unpark_worker_by_id(&mt->idle, w->index);
			/* Off the sleepers first: the one notified is another. */
			notify_if_backlog(w);
			break;
		}
		/* Still parked: a spurious wake-up. */
		if (edo__idle_is_parked(&mt->idle, w->index))
			continue;
		w->is_searching = true; /* notified: go find the work */
		break;
	}
	/* I/O was just polled: the next maintenance turn is due event_interval
	 * ticks from now, not at the next multiple of it (which, right after a
	 * park, mostly found nothing: an epoll_wait returning 0). */
	w->turn_tick = w->tick;
	begin_batch(w);
}

static void maintenance(edo__worker *w)
{
	/* The non-blocking driver turn (I/O and timers plug in here). */
	w->turn_tick = w->tick;
	park_parker(w, 0);
	wake_deferred(w);
	notify_if_backlog(w);
	if (EDO__METRICS) {
		bool due = edo__cadence_due(&w->clock);
		if (due)
			account_busy(w, mono_ns());
		publish_stats(w, due);
	}
	if (closing(w->mt))
		w->is_shutdown = true;
}

/* ---- the worker thread ---------------------------------------------------------------------- */

/* Shutdown: hand a task pinned to another worker to that worker to cancel.
 * Off the owned list, owned_next is free to link it. */
static void forward_for_shutdown(edo__mt *mt, edo__task *t, uint16_t pin)
{
	edo__worker *owner = &mt->workers[pin - 1];
	edo__task *head = atomic_load_explicit(&owner->forwarded, memory_order_relaxed);
	do
		t->owned_next = head;
	while (!atomic_compare_exchange_weak_explicit(&owner->forwarded, &head, t,
						      memory_order_release, memory_order_relaxed));
}

static void worker_shutdown(edo__worker *w)
{
	edo__mt *mt = w->mt;
	/* Cancel every owned task; all workers sweep in parallel. */
	for (uint32_t k = 0; k <= mt->base.owned.mask; k++) {
		edo__task *t;
		while ((t = edo__owned_pop(&mt->base.owned, w->index + k))) {
			/* Mark it first, read its pin after: a fiber's first
			 * poll (on another worker, now) sets the pin.  A task
			 * found running is cancelled by its poller, on its
			 * worker. */
			if (!edo__task_shutdown_begin(t))
				continue;
			uint16_t pin = t->pin;
			if (pin && pin != w->index + 1)
				forward_for_shutdown(mt, t, pin);
			else
				edo__task_shutdown_finish(t);
		}
	}
	pthread_barrier_wait(&mt->shutdown_barrier);
	/* Pinned tasks the others found: cancelling a suspended fiber resumes
	 * it, so it must happen here. */
	edo__task *t = atomic_exchange_explicit(&w->forwarded, NULL, memory_order_acquire);
	while (t) {
		edo__task *next = t->owned_next;
		t->owned_next = NULL;
		edo__task_shutdown_finish(t);
		t = next;
	}
	pthread_barrier_wait(&mt->shutdown_barrier);
	/* Every task is complete now; what is queued are stale notifications.
	 * A wake from outside that comes later finds `pinned` closed. */
	edo__inject_close(&w->pinned);
	while ((t = edo__burst_pop(&w->burst)))
		edo__task_drop_notified(t);
	while ((t = take_lifo(w)) || (t = edo__local_queue_pop(&w->queue)) || (t = pop_mine(w)) ||
	       (t = edo__inject_pop(&w->pinned)))
		edo__task_drop_notified(t);
	edo__defer_wake_all(&w->defer);
}

static bool last_to_leave(edo__mt *mt);
static void finish_late(edo__mt *mt);

static void *worker_main(void *arg)
{
	edo__worker *w = arg;
	edo__mt *mt = w->mt;
	edo__sched *s = &mt->base;
	char name[16];
	(void)snprintf(name, sizeof name, "%s", mt->thread_name); /* truncated to 15 on purpose */
	pthread_setname_np(pthread_self(), name);
	edo__ctx = (edo__context){.sched = s,
				  .core = w,
				  .defer = &w->defer,
				  .worker = (uint16_t)(w->index + 1)};
	edo__ctx.time = w->parker.time; /* the worker's timer wheel */
	edo__ctx.tw = edo__trace_slot(s, w->index);
	if (s->hooks.on_thread_start)
		s->hooks.on_thread_start(s->hooks_ud);
	begin_batch(w);
	while (!w->is_shutdown) {
		w->tick++;
		if (w->tick - w->turn_tick >= mt->event_interval || closing(mt))
			maintenance(w);
		if (w->is_shutdown)
			break;
		edo__task *t = next_task(w);
		if (!t)
			t = steal_work(w);
		if (t) {
			if (!run_task(w, t))
				goto handed_off;
			continue;
		}
		if (!edo__defer_is_empty(&w->defer)) {
			/* Deferred wakes are pending: a driver turn, then run them. */
			maintenance(w);
			continue;
		}
		park(w);
	}
	worker_shutdown(w);
	end_batch(w);
	if (s->hooks.on_thread_stop)
		s->hooks.on_thread_stop(s->hooks_ud);
	edo__ctx = (edo__context){0};
	/* The last touch of the runtime by this thread, unless it is the last
	 * to leave a shutdown that stopped waiting. */
	pthread_mutex_lock(&mt->exit_lock);
	mt->exited++;
	bool io_down = mt->late_io && mt->exited >= mt->stopping;
	if (io_down) {
		mt->late_io = false;
		edo__sched_ref(s); /* the runtime, while the driver shuts down */
	}
	bool finish = last_to_leave(mt);
	pthread_cond_broadcast(&mt->exit_cond);
	pthread_mutex_unlock(&mt->exit_lock);
	if (io_down) {
		edo__driver_shutdown(&s->driver);
		edo__sched_unref(s);
	}
	if (finish)
		finish_late(mt);
	return NULL;

handed_off:
	/* This thread called edo_block_in_place(): another thread runs the
	 * worker now.  Leave, dropping the reference that kept the runtime
	 * alive while this thread finished its poll. */
	if (s->hooks.on_thread_stop)
		s->hooks.on_thread_stop(s->hooks_ud);
	edo__ctx = (edo__context){0};
	pthread_mutex_lock(&mt->exit_lock);
	mt->handed_off--;
	bool last = last_to_leave(mt);
	pthread_cond_broadcast(&mt->exit_cond);
	pthread_mutex_unlock(&mt->exit_lock);
	if (last)
		finish_late(mt);
	edo__sched_unref(s);
	return NULL;
}

/* ---- block_in_place ------------------------------------------------------------------------- */

static int start_worker_thread(edo__mt *mt, edo__worker *w)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (mt->stack_size)
		pthread_attr_setstacksize(&attr, mt->stack_size);
	pthread_t th;
	int rc = -pthread_create(&th, &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	return rc;
}

int edo__mt_block_in_place(edo__sched *s, void (*fn)(void *), void *arg)
{
	edo__mt *mt = mt_of(s);
	edo__worker *w = edo__ctx.sched == s ? edo__ctx.core : NULL;
	if (!w) {
		/* block_on's thread: nothing to hand over. */
		fn(arg);
		return 0;
	}
	/* The burst must not wait behind the blocking call. */
	release_burst(w);
	if (edo__ctx.fibers_pinned || w->in_park || closing(mt)) {
		/* Fibers pinned to this thread would resume on the new one
		 * (src/fiber/fiber.h): block this worker instead.  So too
		 * inside a park (a waker run by the driver turn or the deferred
		 * wakes), which goes on with this worker when the waker
		 * returns, and once the runtime is shutting down: the shutdown
		 * sweep (a fiber's cleanup runs inside it) holds this worker in
		 * a local, and there is nothing left to keep running. */
		fn(arg);
		return 0;
	}
	/* Nor the LIFO task. */
	edo__task *t = take_lifo(w);
	if (t)
		push_local(w, t);
	publish_stats(w, false);
	/* The worker's observability slot goes with it: this poll is not the
	 * worker's any more (and a blocking call here is no stall). */
	edo__tw *tw = edo__ctx.tw;
	bool timed = false;
	if (tw) {
		edo__tw_unwatch(tw);
		/* Nor is its time the worker's: the worker's next poll must not
		 * be timed from this one's start. */
		timed = tw->timed;
		tw->timed = false;
	}
	/* Hand the worker (queue, LIFO slot, parker, deferred wakes) to a new
	 * thread; this one keeps only a reference to the runtime. */
	edo__sched_ref(s);
	edo__ctx.core = NULL;
	edo__ctx.defer = NULL;
	edo__ctx.worker = 0;
	edo__ctx.tw = NULL;
	/* Counted before the new thread can run the worker (and exit with it
	 * at shutdown): shutdown then also waits for this thread to leave. */
	pthread_mutex_lock(&mt->exit_lock);
	mt->handed_off++;
	pthread_mutex_unlock(&mt->exit_lock);
	if (start_worker_thread(mt, w) < 0) {
		/* No thread to hand over to: block this worker instead. */
		pthread_mutex_lock(&mt->exit_lock);
		mt->handed_off--;
		pthread_mutex_unlock(&mt->exit_lock);
		edo__ctx.core = w;
		edo__ctx.defer = &w->defer;
		edo__ctx.worker = (uint16_t)(w->index + 1);
		edo__ctx.tw = tw;
		if (tw)
			tw->timed = timed;
		edo__sched_unref(s);
		fn(arg);
		return 0;
	}
	bool constrained = edo__ctx.constrained;
	edo__ctx.constrained = false;
	/* No poll of the runtime's is in progress on this thread any more:
	 * @fn may edo_block_on(). */
	bool blocking = edo__ctx.blocking;
	edo__ctx.blocking = true;
	fn(arg);
	edo__ctx.blocking = blocking;
	edo__ctx.constrained = constrained;
	return 0;
}

/* ---- block_on from a thread that is not a worker ---------------------------------------------- */

typedef struct bo_parker {
	atomic_size_t refs;
	atomic_bool woken;
	edo__parker parker;
} bo_parker;

static edo_waker bo_clone(const void *data);
static void bo_wake_by_ref(const void *data)
{
	bo_parker *p = (bo_parker *)(uintptr_t)data;
	atomic_store_explicit(&p->woken, true, memory_order_release);
	edo__parker_unpark(&p->parker);
}
static void bo_drop(const void *data)
{
	bo_parker *p = (bo_parker *)(uintptr_t)data;
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) {
		edo__parker_destroy(&p->parker); /* shut down when block_on returned */
		free(p);
	}
}
static void bo_wake(const void *data)
{
	bo_wake_by_ref(data);
	bo_drop(data);
}
static const edo_waker_vtable bo_waker_vt = {bo_clone, bo_wake, bo_wake_by_ref, bo_drop};
static edo_waker bo_clone(const void *data)
{
	bo_parker *p = (bo_parker *)(uintptr_t)data;
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return (edo_waker){&bo_waker_vt, data};
}

int edo__mt_block_on(edo__sched *s, edo_future *fut)
{
	edo__mt *mt = mt_of(s);
	bool own_blocking = false; /* blocking code of this very runtime (below) */
	if (edo__ctx.sched) {
		if (!edo__ctx.blocking)
			return -EBUSY;
		own_blocking = edo__ctx.sched == s;
	}
	/* Enter unless shutdown has begun, in one step with the shutdown's
	 * check (edo__mt_shutdown): either it sees us, or we see it.  Blocking
	 * code of this very runtime (edo__ctx.blocking) is not counted: the
	 * runtime's free waits for its pool threads and block_in_place threads
	 * anyway, which keeps @s alive, and must not fail with -EBUSY because
	 * one of them is waiting for a future (which shutdown's cancellations
	 * are likely to complete).  Another runtime's blocking code is counted
	 * as any thread: nothing else would keep @s alive for it. */
	bool counted = !own_blocking;
	unsigned cur = atomic_load(&mt->block_on_count);
	if (!counted && (cur & BLOCK_ON_CLOSED))
		return EDO_ESHUTDOWN;
	while (counted) {
		if (cur & BLOCK_ON_CLOSED)
			return EDO_ESHUTDOWN;
		if (atomic_compare_exchange_weak(&mt->block_on_count, &cur, cur + 1))
			break;
	}
	bo_parker *p = malloc(sizeof *p);
	if (!p) {
		if (counted)
			atomic_fetch_sub(&mt->block_on_count, 1);
		return -ENOMEM;
	}
	atomic_init(&p->refs, 1);
	atomic_init(&p->woken, true);
	edo__parker_init(&p->parker, NULL);
	/* This thread's own timer wheel: the block_on future's timers. */
	if (edo__parker_init_time(&p->parker, s->driver.clock) < 0) {
		free(p);
		if (counted)
			atomic_fetch_sub(&mt->block_on_count, 1);
		return -ENOMEM;
	}
	edo__defer defer = {0};
	edo__context saved = edo__ctx;
	edo__ctx = (edo__context){.sched = s, .core = NULL, .defer = &defer};
	edo__ctx.time = p->parker.time;
	edo_waker w = {&bo_waker_vt, p};
	edo_cx cx = {&w};
	for (;;) {
		if (atomic_exchange_explicit(&p->woken, false, memory_order_acq_rel)) {
			edo__ctx.constrained = true;
			edo__ctx.budget = EDO_COOP_BUDGET;
			edo_poll r = fut->vt->poll(fut, &cx);
			edo__ctx.constrained = false;
			if (r == EDO_READY)
				break;
		}
		edo__parker_park(&p->parker, edo__defer_is_empty(&defer) ? -1 : 0);
		edo__defer_wake_all(&defer);
	}
	edo__ctx = saved;
	edo__defer_free(&defer);
	/* Timers still registered on this thread's wheel complete with
	 * EDO_ESHUTDOWN: nobody will drive them any more. */
	edo__parker_shutdown(&p->parker);
	bo_drop(p);
	if (counted)
		atomic_fetch_sub(&mt->block_on_count, 1);
	return 0;
}

/* ---- build and shut down ---------------------------------------------------------------------- */

static void mt_destroy(edo__sched *s)
{
	edo__mt *mt = mt_of(s);
	edo__inject_set_destroy(&mt->inject);
	for (uint32_t i = 0; i < mt->num_workers; i++) {
		edo__defer_free(&mt->workers[i].defer);
		edo__inject_destroy(&mt->workers[i].pinned);
	}
	for (uint32_t i = 0; i < mt->num_workers; i++)
		edo__parker_destroy(&mt->workers[i].parker);
	edo__idle_destroy(&mt->idle);
	edo__owned_destroy(&s->owned);
	pthread_barrier_destroy(&mt->shutdown_barrier);
	pthread_mutex_destroy(&mt->exit_lock);
	pthread_cond_destroy(&mt->exit_cond);
	free(mt->workers);
	free(mt);
}

static const edo__sched_vt mt_vt = {
	.schedule = mt_schedule,
	.destroy = mt_destroy,
};

static uint32_t default_workers(const edo_runtime_builder *b)
{
	if (b->worker_threads)
		return b->worker_threads;
	/* getenv races only with setenv, which nobody calls while building a runtime. */
	const char *env = getenv("EDO_WORKER_THREADS"); /* NOLINT(concurrency-mt-unsafe) */
	if (env) {
		char *end;
		long n = strtol(env, &end, 10);
		if (!*end && n > 0 && n <= 4096)
			return (uint32_t)n;
	}
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (uint32_t)n : 1;
}

static void mt_stop_threads(edo__mt *mt, uint32_t started);

int edo__mt_new(const edo_runtime_builder *b, edo__sched **out)
{
	uint32_t n = default_workers(b);
	edo__mt *mt = calloc(1, sizeof *mt);
	if (!mt)
		return -ENOMEM;
	int rc = edo__sched_init(&mt->base, &mt_vt, b, 4 * n, true);
	if (rc < 0) {
		free(mt);
		return rc;
	}
	mt->num_workers = n;
	mt->workers = aligned_alloc(64, sizeof(edo__worker) * n);
	if (!mt->workers || edo__inject_set_init(&mt->inject, n) < 0 ||
	    edo__idle_init(&mt->idle, n) < 0) {
		free(mt->workers);
		edo__inject_set_destroy(&mt->inject);
		edo__owned_destroy(&mt->base.owned);
		edo__driver_destroy(&mt->base.driver);
		free(mt);
		return -ENOMEM;
	}
	atomic_init(&mt->closing, false);
	atomic_init(&mt->block_on_count, 0);
	atomic_init(&mt->threads_started, 0);
	pthread_barrier_init(&mt->shutdown_barrier, NULL, n);
	pthread_mutex_init(&mt->exit_lock, NULL);
	/* Shutdown waits on it against a CLOCK_MONOTONIC deadline. */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&mt->exit_cond, &ca);
	pthread_condattr_destroy(&ca);
	mt->exited = 0;
	mt->handed_off = 0;
	mt->event_interval = b->event_interval ? b->event_interval : DEFAULT_EVENT_INTERVAL;
	mt->fixed_gqi = b->global_queue_interval;
	if (b->inject_wait_factor == EDO_INJECT_WAIT_UNBOUNDED)
		mt->inject_wait = 0;
	else
		mt->inject_wait =
			b->inject_wait_factor ? b->inject_wait_factor : DEFAULT_INJECT_WAIT;
	mt->lifo_stealing = !b->disable_lifo_stealing;
	(void)snprintf(mt->thread_name, sizeof mt->thread_name, "%s",
		       b->thread_name ? b->thread_name : "edo-worker");
	mt->stack_size = b->thread_stack_size;
	for (uint32_t i = 0; i < n; i++) {
		edo__worker *w = &mt->workers[i];
		memset(w, 0, sizeof *w);
		edo__local_queue_init(&w->queue);
		atomic_init(&w->lifo, NULL);
		atomic_init(&w->poll_seq, 0);
		edo__burst_init(&w->burst);
		edo__inject_init(&w->pinned);
		atomic_init(&w->forwarded, NULL);
		w->mt = mt;
		w->index = i;
		w->rand = 0x9e3779b9u * (i + 1);
		w->gqi = mt->fixed_gqi ? mt->fixed_gqi : DEFAULT_EVENT_INTERVAL;
		w->ewma_poll_ns = 200000.0 / DEFAULT_EVENT_INTERVAL;
		w->lifo_enabled = true;
		/* Every worker is initialised (the destroy path walks them all);
		 * the first failure (a wheel's allocation) fails the build. */
		int prc = edo__parker_init(&w->parker, &mt->base.driver);
		if (prc < 0 && rc == 0)
			rc = prc;
	}
	if (rc == 0)
		rc = edo__trace_new(&mt->base, b, n);
	if (rc < 0) {
		mt_stop_threads(mt, 0);
		edo__sched_unref(&mt->base);
		return rc;
	}
	for (uint32_t i = 0; i < n; i++) {
		rc = start_worker_thread(mt, &mt->workers[i]);
		if (rc < 0) {
			/* The barrier expects n workers: rebuild it for those started. */
			pthread_barrier_destroy(&mt->shutdown_barrier);
			pthread_barrier_init(&mt->shutdown_barrier, NULL, i ? i : 1);
			mt_stop_threads(mt, i);
			edo__sched_unref(&mt->base);
			return rc;
		}
	}
	*out = &mt->base;
	return 0;
}

/* Under exit_lock: every thread shutdown waits for has left. */
static bool all_left(edo__mt *mt)
{
	return mt->exited >= mt->stopping && mt->handed_off == 0;
}

/* Under exit_lock, by a thread that just left: whether it is the last, of a
 * shutdown that stopped waiting, and so must finish it. */
static bool last_to_leave(edo__mt *mt)
{
	if (!mt->finish_late || !all_left(mt))
		return false;
	mt->finish_late = false;
	return true;
}

/* What shutdown does once every worker thread has left. */
static void mt_finish_stop(edo__mt *mt)
{
	/* Wakes from outside the workers may have queued notifications. */
	edo__inject_set_close(&mt->inject);
	edo__task *t;
	while (edo__inject_set_pop_n(&mt->inject, 0, 1, &t))
		edo__task_drop_notified(t);
	/* I/O still registered (outside tasks) fails from now on. */
	edo__driver_shutdown(&mt->base.driver);
	/* Timers still registered (outside tasks) fire as cancelled.  The
	 * wheels stay allocated until mt_destroy. */
	for (uint32_t i = 0; i < mt->num_workers; i++)
		edo__parker_shutdown(&mt->workers[i].parker);
}

/* A shutdown that stopped waiting: the last worker thread out finishes it
 * and drops the runtime's own reference (the shutdown left it). */
static void finish_late(edo__mt *mt)
{
	mt_finish_stop(mt);
	edo__sched_unref(&mt->base);
}

/* Stop the @started worker threads: wait for them until @deadline_ns
 * (mono_ns(); UINT64_MAX: no limit).  true when they have all left and the
 * shutdown is complete; false when the deadline passed first: the last of
 * them finishes it (finish_late). */
static bool mt_stop_threads_until(edo__mt *mt, uint32_t started, uint64_t deadline_ns)
{
	atomic_store(&mt->base.shutdown, true);
	edo__owned_close(&mt->base.owned);
	atomic_store(&mt->closing, true);
	for (uint32_t i = 0; i < started; i++)
		edo__parker_unpark(&mt->workers[i].parker);
	pthread_mutex_lock(&mt->exit_lock);
	mt->stopping = started;
	bool io_down = false;
	while (!all_left(mt)) {
		if (!io_down && mt->exited >= mt->stopping) {
			/* The workers are gone; a thread still inside
			 * edo_block_in_place may be in an edo_block_on whose
			 * I/O no one drives any more: fail it now, or that
			 * thread (and this wait) would never end. */
			io_down = true;
			pthread_mutex_unlock(&mt->exit_lock);
			edo__driver_shutdown(&mt->base.driver);
			pthread_mutex_lock(&mt->exit_lock);
			continue;
		}
		if (deadline_ns == UINT64_MAX) {
			pthread_cond_wait(&mt->exit_cond, &mt->exit_lock);
			continue;
		}
		uint64_t now = mono_ns();
		if (now >= deadline_ns)
			break;
		struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u),
				      .tv_nsec = (long)(deadline_ns % 1000000000u)};
		(void)pthread_cond_timedwait(&mt->exit_cond, &mt->exit_lock, &ts);
	}
	bool done = all_left(mt);
	if (!done) {
		mt->finish_late = true;
		/* Workers still inside (else the loop shut the I/O down
		 * already): the last of them out does it. */
		mt->late_io = !io_down;
	}
	pthread_mutex_unlock(&mt->exit_lock);
	if (done)
		mt_finish_stop(mt);
	return done;
}

static void mt_stop_threads(edo__mt *mt, uint32_t started)
{
	(void)mt_stop_threads_until(mt, started, UINT64_MAX);
}

int edo__mt_shutdown(edo__sched *s, int64_t timeout_ms)
{
	edo__mt *mt = mt_of(s);
	if (edo__ctx.sched)
		return -EBUSY;
	unsigned none = 0;
	if (!atomic_compare_exchange_strong(&mt->block_on_count, &none, BLOCK_ON_CLOSED))
		return -EBUSY; /* a thread is in edo_block_on */
	edo__trace_stop(s);
	uint64_t deadline = UINT64_MAX; /* < 0, or over a year: no limit */
	if (timeout_ms >= 0 && timeout_ms < 365LL * 24 * 3600 * 1000)
		deadline = mono_ns() + (uint64_t)timeout_ms * 1000000u;
	if (!mt_stop_threads_until(mt, mt->num_workers, deadline))
		return -ETIMEDOUT; /* the last thread out drops the reference */
	edo__sched_unref(s);
	return 0;
}

int edo__mt_worker_metrics(edo__sched *s, uint32_t i, edo_worker_metrics *out)
{
	edo__mt *mt = mt_of(s);
	if (i >= mt->num_workers)
		return -EINVAL;
	edo__stats_read(&mt->workers[i].stats, out);
	return 0;
}

uint32_t edo__mt_num_workers(edo__sched *s)
{
	return mt_of(s)->num_workers;
}

size_t edo__mt_inject_depth(edo__sched *s)
{
	return edo__inject_set_len(&mt_of(s)->inject);
}
