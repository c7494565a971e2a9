/* The task state word: one atomic 64-bit integer per task.
 *
 * This is Tokio's proven protocol (tokio/src/runtime/task/state.rs), kept bit
 * for bit so that its reasoning carries over, plus one bit (SHUTDOWN) for
 * the tasks Tokio does not have, whose poll handles cancellation (fibers):
 *
 *   bit 0  RUNNING        a thread owns the future (polling or cancelling it)
 *   bit 1  COMPLETE       the future is finished or dropped; never cleared
 *   bit 2  NOTIFIED       a "notified" reference exists: the task is queued
 *                         or about to be
 *   bit 3  JOIN_INTEREST  a join handle exists
 *   bit 4  JOIN_WAKER     the runtime (not the join handle) owns the join
 *                         waker field; see the protocol in task.c
 *   bit 5  CANCELLED      abort was requested
 *   bit 6  SHUTDOWN       the runtime's shutdown sweep reached the task
 *                         (with CANCELLED); never cleared
 *   bits 7..  reference count (REF_ONE = 1 << 7)
 *
 * A new task starts with three references (the owned-tasks list, the first
 * notification, the join handle) plus JOIN_INTEREST and NOTIFIED.  Wakers
 * each hold one reference.  The thread that drops the last reference frees
 * the task.
 *
 *            spawn                      wake (idle)
 *   ──▶ [NOTIFIED] ──run──▶ [RUNNING] ──PENDING──▶ [idle] ──▶ [NOTIFIED] ...
 *                              │   ▲ wake while running: set NOTIFIED,
 *                              │   └ the poller re-queues the task
 *                              └─READY / cancelled──▶ [COMPLETE] ──last ref──▶ freed
 *
 * Every transition except ref_inc / ref_dec is a CAS loop; ref_inc is a
 * relaxed add, ref_dec an acq_rel subtract.
 */
#ifndef EDO_TASK_STATE_H
#define EDO_TASK_STATE_H

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define EDO__ST_RUNNING ((uint64_t)1 << 0)
#define EDO__ST_COMPLETE ((uint64_t)1 << 1)
#define EDO__ST_NOTIFIED ((uint64_t)1 << 2)
#define EDO__ST_JOIN_INTEREST ((uint64_t)1 << 3)
#define EDO__ST_JOIN_WAKER ((uint64_t)1 << 4)
#define EDO__ST_CANCELLED ((uint64_t)1 << 5)
#define EDO__ST_SHUTDOWN ((uint64_t)1 << 6)
#define EDO__ST_LIFECYCLE (EDO__ST_RUNNING | EDO__ST_COMPLETE)
#define EDO__ST_REF_ONE ((uint64_t)1 << 7)
#define EDO__ST_REF_MASK (~(EDO__ST_REF_ONE - 1))

/* Initial state: 3 refs (owned list, first notification, join handle). */
#define EDO__ST_INITIAL (3 * EDO__ST_REF_ONE | EDO__ST_JOIN_INTEREST | EDO__ST_NOTIFIED)

typedef _Atomic(uint64_t) edo__state;

static inline uint64_t edo__st_refs(uint64_t s)
{
	return s >> 7;
}

static inline bool edo__st_idle(uint64_t s)
{
	return (s & EDO__ST_LIFECYCLE) == 0;
}

/* Add a reference.  Relaxed: a new reference is made from an existing one. */
static inline void edo__st_ref_inc(edo__state *st)
{
	uint64_t prev = atomic_fetch_add_explicit(st, EDO__ST_REF_ONE, memory_order_relaxed);
	if (prev > (UINT64_MAX >> 1))
		abort(); /* reference count overflow: a leak of 2^57 wakers */
}

/* Drop a reference; true if it was the last (the caller frees the task). */
static inline bool edo__st_ref_dec(edo__state *st)
{
	uint64_t prev = atomic_fetch_sub_explicit(st, EDO__ST_REF_ONE, memory_order_acq_rel);
	assert(edo__st_refs(prev) >= 1);
	return edo__st_refs(prev) == 1;
}

/* Drop two references at once (run path: the notification + the owned list). */
static inline bool edo__st_ref_dec_n(edo__state *st, uint64_t n)
{
	uint64_t prev = atomic_fetch_sub_explicit(st, n * EDO__ST_REF_ONE, memory_order_acq_rel);
	assert(edo__st_refs(prev) >= n);
	return edo__st_refs(prev) == n;
}

typedef enum edo__to_running {
	EDO__RUN_SUCCESS,   /* RUNNING set, NOTIFIED cleared: poll the future */
	EDO__RUN_CANCELLED, /* as SUCCESS, but CANCELLED is set: cancel instead */
	EDO__RUN_FAILED,    /* not idle: the notification ref was dropped */
	EDO__RUN_DEALLOC,   /* as FAILED, and that was the last ref */
} edo__to_running;

/* Called with the notification reference (the task came off a run queue). */
static inline edo__to_running edo__st_transition_to_running(edo__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	for (;;) {
		uint64_t next;
		edo__to_running r;
		assert(cur & EDO__ST_NOTIFIED);
		if (!edo__st_idle(cur)) {
			assert(edo__st_refs(cur) >= 1);
			next = cur - EDO__ST_REF_ONE;
			r = edo__st_refs(next) == 0 ? EDO__RUN_DEALLOC : EDO__RUN_FAILED;
		} else {
			next = (cur | EDO__ST_RUNNING) & ~EDO__ST_NOTIFIED;
			r = (cur & EDO__ST_CANCELLED) ? EDO__RUN_CANCELLED : EDO__RUN_SUCCESS;
		}
		if (atomic_compare_exchange_weak_explicit(st, &cur, next, memory_order_acq_rel,
							  memory_order_acquire))
			return r;
	}
}

typedef enum edo__to_idle {
	EDO__IDLE_OK,          /* the notification ref was dropped */
	EDO__IDLE_OK_NOTIFIED, /* woken during the poll: a new notification ref was
				  made; the caller re-queues the task */
	EDO__IDLE_OK_DEALLOC,  /* the dropped ref was the last */
	EDO__IDLE_CANCELLED,   /* aborted during the poll: still RUNNING; cancel */
} edo__to_idle;

/* After a poll returned PENDING; the caller holds the notification ref.
 * @stop_if_cancelled is false for a task whose poll handles cancellation
 * itself (EDO__TASK_POLL_CANCELLED): it goes idle as usual, and is polled
 * again when woken (an abort also notifies).  Except once SHUTDOWN is set:
 * the shutdown sweep marks a task it finds running SHUTDOWN | CANCELLED
 * without notifying it and leaves it to its poller, so the poller cancels
 * it here whatever its kind.  The bit is in the word the CAS below
 * compares, and nothing clears it, so a poller cannot go idle past the
 * sweep's mark (a flag read beside the word could be read just before the
 * mark, and the CAS succeed just after). */
static inline edo__to_idle edo__st_transition_to_idle(edo__state *st, bool stop_if_cancelled)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	for (;;) {
		assert(cur & EDO__ST_RUNNING);
		if ((cur & EDO__ST_CANCELLED) && (stop_if_cancelled || (cur & EDO__ST_SHUTDOWN)))
			return EDO__IDLE_CANCELLED;
		uint64_t next = cur & ~EDO__ST_RUNNING;
		edo__to_idle r;
		if (next & EDO__ST_NOTIFIED) {
			/* Keep the ref: it becomes the new notification. */
			r = EDO__IDLE_OK_NOTIFIED;
		} else {
			next -= EDO__ST_REF_ONE;
			r = edo__st_refs(next) == 0 ? EDO__IDLE_OK_DEALLOC : EDO__IDLE_OK;
		}
		if (atomic_compare_exchange_weak_explicit(st, &cur, next, memory_order_acq_rel,
							  memory_order_acquire))
			return r;
	}
}

typedef enum edo__to_notified {
	EDO__NOTIFY_DO_NOTHING, /* running, complete or already notified */
	EDO__NOTIFY_SUBMIT,     /* a notification ref was made: enqueue it (by value:
				   then drop the waker's ref) */
	EDO__NOTIFY_DEALLOC,    /* (by value only) the waker's ref was the last */
} edo__to_notified;

/* A wake that consumes the waker's reference. */
static inline edo__to_notified edo__st_transition_to_notified_by_val(edo__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	for (;;) {
		uint64_t next;
		edo__to_notified r;
		if (cur & EDO__ST_RUNNING) {
			/* The poller sees NOTIFIED in transition_to_idle and re-queues. */
			next = (cur | EDO__ST_NOTIFIED) - EDO__ST_REF_ONE;
			assert(edo__st_refs(next) >= 1);
			r = EDO__NOTIFY_DO_NOTHING;
		} else if ((cur & EDO__ST_COMPLETE) || (cur & EDO__ST_NOTIFIED)) {
			next = cur - EDO__ST_REF_ONE;
			r = edo__st_refs(next) == 0 ? EDO__NOTIFY_DEALLOC : EDO__NOTIFY_DO_NOTHING;
		} else {
			/* Idle: add a ref for the notification.  The caller keeps
			 * the waker's ref until schedule() has returned and drops
			 * it then (as Tokio does): the notification may be run,
			 * and the task freed, before schedule() is done with the
			 * scheduler, and the task's ref is what keeps that alive. */
			next = (cur | EDO__ST_NOTIFIED) + EDO__ST_REF_ONE;
			r = EDO__NOTIFY_SUBMIT;
		}
		if (atomic_compare_exchange_weak_explicit(st, &cur, next, memory_order_acq_rel,
							  memory_order_acquire))
			return r;
	}
}

/* A wake through a borrowed waker: adds a reference when it submits. */
static inline edo__to_notified edo__st_transition_to_notified_by_ref(edo__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	for (;;) {
		uint64_t next;
		if (cur & EDO__ST_COMPLETE)
			return EDO__NOTIFY_DO_NOTHING;
		if (cur & EDO__ST_NOTIFIED) {
			/* Already queued, but write all the same (the same value,
			 * acq_rel): what the waker published before waking must
			 * be seen by the poll after transition_to_running, whose
			 * acquire only pairs with a write.  With a mere load here
			 * a store-buffering interleaving loses the wake: the
			 * runner clears NOTIFIED, polls, and misses the data
			 * (Tokio fixed the same, tokio-rs/tokio#7622). */
			if (atomic_compare_exchange_weak_explicit(st, &cur, cur,
								  memory_order_acq_rel,
								  memory_order_acquire))
				return EDO__NOTIFY_DO_NOTHING;
			continue;
		}
		if (cur & EDO__ST_RUNNING) {
			next = cur | EDO__ST_NOTIFIED;
			if (atomic_compare_exchange_weak_explicit(st, &cur, next,
								  memory_order_acq_rel,
								  memory_order_acquire))
				return EDO__NOTIFY_DO_NOTHING;
			continue;
		}
		next = (cur | EDO__ST_NOTIFIED) + EDO__ST_REF_ONE;
		if (atomic_compare_exchange_weak_explicit(st, &cur, next, memory_order_acq_rel,
							  memory_order_acquire))
			return EDO__NOTIFY_SUBMIT;
	}
}

/* Abort from any thread.  True if the caller must submit a notification
 * (a reference was added for it) so that a runtime thread cancels the task. */
static inline bool edo__st_transition_to_notified_and_cancel(edo__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	for (;;) {
		uint64_t next;
		bool submit = false;
		if (cur & (EDO__ST_CANCELLED | EDO__ST_COMPLETE))
			return false;
		if (cur & EDO__ST_RUNNING) {
			next = cur | EDO__ST_NOTIFIED | EDO__ST_CANCELLED;
		} else if (cur & EDO__ST_NOTIFIED) {
			next = cur | EDO__ST_CANCELLED;
		} else {
			next = (cur | EDO__ST_NOTIFIED | EDO__ST_CANCELLED) + EDO__ST_REF_ONE;
			submit = true;
		}
		if (atomic_compare_exchange_weak_explicit(st, &cur, next, memory_order_acq_rel,
							  memory_order_acquire))
			return submit;
	}
}

typedef enum edo__to_shutdown {
	EDO__SHUTDOWN_OWN,     /* was idle: the caller holds RUNNING and cancels it */
	EDO__SHUTDOWN_DROPPED, /* running or complete: the caller's ref was dropped */
	EDO__SHUTDOWN_DEALLOC, /* ... and it was the last: the caller frees the task */
} edo__to_shutdown;

/* Runtime shutdown, with the caller's (owned-list) reference: set
 * SHUTDOWN | CANCELLED; if idle, also take RUNNING (the reference stays the
 * caller's); else drop the reference in the same write (Tokio drops it in
 * a second one).  A running task is left to its poller, which sees
 * SHUTDOWN in transition_to_idle and cancels it, a fiber too. */
static inline edo__to_shutdown edo__st_transition_to_shutdown(edo__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	for (;;) {
		uint64_t next;
		edo__to_shutdown r;
		if (edo__st_idle(cur)) {
			next = cur | EDO__ST_SHUTDOWN | EDO__ST_CANCELLED | EDO__ST_RUNNING;
			r = EDO__SHUTDOWN_OWN;
		} else {
			assert(edo__st_refs(cur) >= 1);
			next = (cur | EDO__ST_SHUTDOWN | EDO__ST_CANCELLED) - EDO__ST_REF_ONE;
			r = edo__st_refs(next) == 0 ? EDO__SHUTDOWN_DEALLOC : EDO__SHUTDOWN_DROPPED;
		}
		if (atomic_compare_exchange_weak_explicit(st, &cur, next, memory_order_acq_rel,
							  memory_order_acquire))
			return r;
	}
}

/* RUNNING -> COMPLETE.  Returns the state before. */
static inline uint64_t edo__st_transition_to_complete(edo__state *st)
{
	uint64_t prev = atomic_fetch_xor_explicit(st, EDO__ST_RUNNING | EDO__ST_COMPLETE,
						  memory_order_acq_rel);
	assert(prev & EDO__ST_RUNNING);
	assert(!(prev & EDO__ST_COMPLETE));
	return prev;
}

/* The join handle sets JOIN_WAKER after writing the waker.  Fails (false) if
 * the task completed meanwhile. */
static inline bool edo__st_set_join_waker(edo__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	for (;;) {
		assert(cur & EDO__ST_JOIN_INTEREST);
		assert(!(cur & EDO__ST_JOIN_WAKER));
		if (cur & EDO__ST_COMPLETE)
			return false;
		if (atomic_compare_exchange_weak_explicit(st, &cur, cur | EDO__ST_JOIN_WAKER,
							  memory_order_acq_rel,
							  memory_order_acquire))
			return true;
	}
}

/* The join handle takes the waker field back to replace it.  Fails (false)
 * if the task completed (the runtime owns the field then).  COMPLETE is
 * looked at first: the handle saw JOIN_WAKER set, but a completion since
 * may have woken the waker and cleared the bit already (Tokio's order). */
static inline bool edo__st_unset_waker(edo__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	for (;;) {
		assert(cur & EDO__ST_JOIN_INTEREST);
		if (cur & EDO__ST_COMPLETE)
			return false;
		assert(cur & EDO__ST_JOIN_WAKER);
		if (atomic_compare_exchange_weak_explicit(st, &cur, cur & ~EDO__ST_JOIN_WAKER,
							  memory_order_acq_rel,
							  memory_order_acquire))
			return true;
	}
}

/* The join handle goes away.  Returns the new state; if JOIN_WAKER is clear
 * in it, the handle owns (and must drop) the waker field. */
static inline uint64_t edo__st_drop_join_interest(edo__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	for (;;) {
		assert(cur & EDO__ST_JOIN_INTEREST);
		uint64_t next = cur & ~EDO__ST_JOIN_INTEREST;
		if (!(cur & EDO__ST_COMPLETE))
			next &= ~EDO__ST_JOIN_WAKER;
		if (atomic_compare_exchange_weak_explicit(st, &cur, next, memory_order_acq_rel,
							  memory_order_acquire))
			return next;
	}
}

#endif /* EDO_TASK_STATE_H */
