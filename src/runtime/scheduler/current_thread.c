/* The current-thread scheduler.
 *
 * Every task runs on the thread inside edo_block_on().  That thread owns the
 * run queue (a plain intrusive FIFO, no atomics); wakes and spawns from other
 * threads go through the inject queue and unpark the driver.
 *
 * The loop of edo_block_on(), as in Tokio:
 *
 *   forever:
 *     if the block_on future was woken: poll it (own budget); READY → return
 *     run up to event_interval (61) tasks, each with a fresh budget;
 *       every global_queue_interval (31) ticks take the inject queue first,
 *       otherwise the local queue first;
 *       stop early if the block_on future is woken
 *     no task found → park in the driver (blocking, unless wakes are deferred)
 *     else          → a non-blocking driver turn
 *     after either: wake the deferred wakers (yield_now, spent budgets)
 *
 * Deferred wakes run after the driver turn, so a task that yields lets I/O
 * and timers make progress before it runs again.
 *
 * Only one thread may be inside edo_block_on() at a time (a second gets
 * -EBUSY); different threads may take turns.
 */
#include "runtime/scheduler/current_thread.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "edo/error.h"
#include "runtime/context.h"
#include "runtime/driver.h"
#include "runtime/scheduler/inject.h"
#include "runtime/sched.h"
#include "runtime/stats.h"
#include "runtime/trace/trace.h"

typedef struct edo__ct {
	edo__sched base;
	/* Owned by the thread inside block_on (or doing shutdown). */
	edo__task *run_head, *run_tail;
	size_t run_len;
	uint32_t tick;
	edo__defer defer;
	/* Shared with other threads. */
	edo__inject_set inject; /* sharded by pushing thread */
	edo__parker parker;
	atomic_bool woken;   /* the block_on future was woken */
	atomic_bool entered; /* a thread is inside block_on */
	unsigned event_interval;
	unsigned global_queue_interval;
	edo__worker_counts counts; /* published into stats at every driver turn */
	uint64_t busy_mark_ns;     /* busy time is accounted up to here */
	edo__clock_cadence clock;  /* which driver turns read the clock */
	edo__mean_poll mean;       /* the mean poll time metric */
	edo__worker_stats stats;
} edo__ct;

static edo__ct *ct_of(edo__sched *s)
{
	return (edo__ct *)s;
}

static bool on_runtime_thread(edo__ct *ct)
{
	return edo__ctx.core == ct;
}

static void run_push(edo__ct *ct, edo__task *t)
{
	t->next = NULL;
	if (ct->run_tail)
		ct->run_tail->next = t;
	else
		ct->run_head = t;
	ct->run_tail = t;
	ct->run_len++;
}

static edo__task *run_pop(edo__ct *ct)
{
	edo__task *t = ct->run_head;
	if (t) {
		ct->run_head = t->next;
		if (!ct->run_head)
			ct->run_tail = NULL;
		ct->run_len--;
		t->next = NULL;
	}
	return t;
}

static void ct_schedule(edo__sched *s, edo__task *t, bool yield)
{
	(void)yield; /* the current-thread scheduler has no LIFO slot */
	edo__ct *ct = ct_of(s);
	if (on_runtime_thread(ct)) {
		run_push(ct, t);
		EDO__COUNT(&ct->counts, local_schedules, 1);
		return;
	}
	if (edo__inject_set_push(&ct->inject, t))
		edo__parker_unpark(&ct->parker);
	else
		edo__task_drop_notified(t); /* shut down: the task was cancelled */
}

static void ct_destroy(edo__sched *s)
{
	edo__ct *ct = ct_of(s);
	edo__owned_destroy(&s->owned);
	edo__inject_set_destroy(&ct->inject);
	edo__defer_free(&ct->defer);
	free(ct);
}

static const edo__sched_vt ct_vt = {
	.schedule = ct_schedule,
	.destroy = ct_destroy,
};

/* ---- the block_on waker: sets `woken` and unparks ------------------------------- */

static edo_waker bo_clone(const void *data);
static void bo_wake_by_ref(const void *data)
{
	edo__ct *ct = (edo__ct *)(uintptr_t)data;
	atomic_store_explicit(&ct->woken, true, memory_order_release);
	if (!on_runtime_thread(ct))
		edo__parker_unpark(&ct->parker);
}
static void bo_drop(const void *data)
{
	edo__sched_unref((edo__sched *)(uintptr_t)data);
}
static void bo_wake(const void *data)
{
	bo_wake_by_ref(data);
	bo_drop(data);
}
static const edo_waker_vtable bo_waker_vt = {bo_clone, bo_wake, bo_wake_by_ref, bo_drop};
static edo_waker bo_clone(const void *data)
{
	edo__sched_ref((edo__sched *)(uintptr_t)data);
	return (edo_waker){&bo_waker_vt, data};
}

/* ---- the loop ---------------------------------------------------------------------- */

static edo__task *inject_pop(edo__ct *ct)
{
	edo__task *t;
	return edo__inject_set_pop_n(&ct->inject, 0, 1, &t) ? t : NULL;
}

static edo__task *next_task(edo__ct *ct)
{
	edo__task *t;
	if (++ct->tick % ct->global_queue_interval == 0) {
		t = inject_pop(ct);
		if (t) {
			EDO__COUNT(&ct->counts, remote_schedules, 1);
			return t;
		}
		return run_pop(ct);
	}
	t = run_pop(ct);
	if (t)
		return t;
	t = inject_pop(ct);
	if (t)
		EDO__COUNT(&ct->counts, remote_schedules, 1);
	return t;
}

static void run_task(edo__ct *ct, edo__task *t)
{
	EDO__COUNT(&ct->counts, polls, 1);
	edo__ctx.constrained = true;
	edo__ctx.budget = EDO_COOP_BUDGET;
	edo__task_run(t);
	edo__ctx.constrained = false;
}

/* Busy time up to @now, the mean poll time, and the coarse clock that stamps
 * polls. */
static void account_busy(edo__ct *ct, uint64_t now)
{
	edo__cadence_read(&ct->clock, now);
	EDO__STAT_ADD(&ct->stats, busy_ns, now - ct->busy_mark_ns);
	ct->busy_mark_ns = now;
	edo__ctx.now_ms = edo__coarse_ms(now);
	edo__tw *tw = edo__ctx.tw;
	if (tw && tw->timing) {
		EDO__STAT_SET(&ct->stats, poll_time_ns, tw->poll_ns);
		edo__mean_poll_update(&ct->mean, &ct->stats, ct->counts.polls, tw->poll_ns);
	} else {
		edo__mean_poll_update(&ct->mean, &ct->stats, ct->counts.polls,
				      EDO__STAT_GET(&ct->stats, busy_ns));
	}
}

/* Publish the counters; at every driver turn (after at most event_interval
 * tasks) and when block_on returns.  Busy time too when the clock is read:
 * if @exact (the thread is about to sleep or leave), else as ct->clock says. */
static void publish(edo__ct *ct, bool exact)
{
	if (!EDO__METRICS)
		return;
	EDO__STAT_SET(&ct->stats, local_queue_depth, ct->run_len);
	/* The thread's count since the last publish (it restarts with each
	 * block_on and on a new thread): the counter only grows. */
	EDO__STAT_ADD(&ct->stats, budget_forced_yields, edo__ctx.forced_yields);
	edo__ctx.forced_yields = 0;
	if (edo__cadence_due(&ct->clock) || exact)
		account_busy(ct, edo__mono_ns());
	edo__counts_publish(&ct->counts, &ct->stats);
}

/* One driver turn; blocking only if nothing at all is ready. */
static void park(edo__ct *ct, bool may_block)
{
	edo__sched *s = &ct->base;
	bool block = may_block && ct->run_len == 0 && edo__defer_is_empty(&ct->defer) &&
		     edo__inject_set_is_empty(&ct->inject) &&
		     !atomic_load_explicit(&ct->woken, memory_order_acquire);
	publish(ct, block);
	if (block) {
		EDO__STAT_ADD(&ct->stats, parks, 1);
		if (s->hooks.on_thread_park)
			s->hooks.on_thread_park(s->hooks_ud);
	}
	edo__parker_park(&ct->parker, block ? -1 : 0);
	if (block) {
		if (EDO__METRICS) {
			ct->busy_mark_ns = edo__mono_ns(); /* parked time is not busy */
			edo__ctx.now_ms = edo__coarse_ms(ct->busy_mark_ns);
			edo__cadence_read(&ct->clock, ct->busy_mark_ns);
		}
		EDO__STAT_ADD(&ct->stats, unparks, 1);
		if (s->hooks.on_thread_unpark)
			s->hooks.on_thread_unpark(s->hooks_ud);
	}
	edo__defer_wake_all(&ct->defer);
}

int edo__ct_block_on(edo__sched *s, edo_future *fut)
{
	edo__ct *ct = ct_of(s);
	if (edo__ctx.sched && !edo__ctx.blocking)
		return -EBUSY; /* already inside a runtime on this thread */
	if (atomic_load(&s->shutdown))
		return EDO_ESHUTDOWN; /* (a freed runtime's handle: entered stays set) */
	if (atomic_exchange(&ct->entered, true))
		return -EBUSY;
	if (atomic_load(&s->shutdown)) {
		atomic_store(&ct->entered, false);
		return EDO_ESHUTDOWN;
	}
	edo__context saved = edo__ctx;
	edo__ctx = (edo__context){.sched = s, .core = ct, .defer = &ct->defer};
	edo__ctx.time = ct->parker.time; /* the runtime's timer wheel */
	edo__ctx.tw = edo__trace_slot(s, 0);
	ct->busy_mark_ns = edo__mono_ns();
	edo__ctx.now_ms = edo__coarse_ms(ct->busy_mark_ns);
	edo__cadence_read(&ct->clock, ct->busy_mark_ns);

	edo_waker w = {&bo_waker_vt, ct};
	edo_cx cx = {&w};
	atomic_store(&ct->woken, true);
	for (;;) {
		if (atomic_exchange_explicit(&ct->woken, false, memory_order_acq_rel)) {
			edo__ctx.constrained = true;
			edo__ctx.budget = EDO_COOP_BUDGET;
			edo_poll r = fut->vt->poll(fut, &cx);
			edo__ctx.constrained = false;
			if (r == EDO_READY)
				break;
		}
		bool idle = false;
		for (unsigned i = 0; i < ct->event_interval; i++) {
			if (atomic_load_explicit(&ct->woken, memory_order_relaxed))
				break;
			edo__task *t = next_task(ct);
			if (!t) {
				idle = true;
				break;
			}
			run_task(ct, t);
		}
		park(ct, idle);
	}

	publish(ct, true);
	edo__ctx = saved;
	atomic_store(&ct->entered, false);
	return 0;
}

/* ---- build and shut down ---------------------------------------------------------- */

int edo__ct_new(const edo_runtime_builder *b, edo__sched **out)
{
	edo__ct *ct = calloc(1, sizeof *ct);
	if (!ct)
		return -ENOMEM;
	int rc = edo__sched_init(&ct->base, &ct_vt, b, 4, true);
	if (rc < 0) {
		free(ct);
		return rc;
	}
	rc = edo__inject_set_init(&ct->inject, 4);
	if (rc < 0) {
		edo__owned_destroy(&ct->base.owned);
		edo__driver_destroy(&ct->base.driver);
		free(ct);
		return rc;
	}
	rc = edo__trace_new(&ct->base, b, 1);
	if (rc >= 0)
		rc = edo__parker_init(&ct->parker, &ct->base.driver);
	if (rc < 0) {
		edo__sched_unref(&ct->base);
		return rc;
	}
	atomic_init(&ct->woken, false);
	atomic_init(&ct->entered, false);
	ct->event_interval = b->event_interval ? b->event_interval : 61;
	ct->global_queue_interval = b->global_queue_interval ? b->global_queue_interval : 31;
	*out = &ct->base;
	return 0;
}

/* Drop every queued notification; returns whether any was found. */
static bool drain_queues(edo__ct *ct)
{
	bool any = false;
	edo__task *t;
	while ((t = run_pop(ct)) || (t = inject_pop(ct))) {
		edo__task_drop_notified(t);
		any = true;
	}
	if (!edo__defer_is_empty(&ct->defer)) {
		edo__defer_wake_all(&ct->defer);
		any = true;
	}
	return any;
}

int edo__ct_shutdown(edo__sched *s)
{
	edo__ct *ct = ct_of(s);
	if (edo__ctx.sched)
		return -EBUSY; /* called from inside a runtime */
	if (atomic_exchange(&ct->entered, true))
		return -EBUSY; /* another thread is in block_on */
	edo__trace_stop(s);
	edo__context saved = edo__ctx;
	/* Wakes caused by cancellation (a dropped sender waking its receiver)
	 * land in the local queue, which is drained below. */
	edo__ctx = (edo__context){.sched = s, .core = ct, .defer = &ct->defer};
	/* A timer awaited in a cleanup (a shielded await) needs the wheel: it
	 * stays until edo__parker_destroy() below. */
	edo__ctx.time = ct->parker.time;
	edo__sched_cancel_all(s);
	edo__inject_set_close(&ct->inject);
	while (drain_queues(ct))
		;
	edo__driver_shutdown(&s->driver);
	edo__parker_destroy(&ct->parker);
	edo__ctx = saved;
	edo__sched_unref(s);
	return 0;
}

size_t edo__ct_inject_depth(edo__sched *s)
{
	return edo__inject_set_len(&ct_of(s)->inject);
}

int edo__ct_worker_metrics(edo__sched *s, uint32_t i, edo_worker_metrics *out)
{
	if (i != 0)
		return -EINVAL;
	edo__stats_read(&ct_of(s)->stats, out);
	return 0;
}
