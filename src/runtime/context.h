/* The per-thread runtime context.
 *
 * What a poll needs besides its waker lives here rather than in every call
 * signature: the scheduler this thread is running, the scheduler's per-thread
 * state (the current-thread core or a multi-thread worker), the task being
 * polled, its cooperative budget, and the list of deferred wakes.
 */
#ifndef EDO_CONTEXT_H
#define EDO_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edo/future.h"
#include "edo/task.h"
#include "runtime/task/task.h"

/* Wakes deferred until after the next driver turn (yield_now, spent budget). */
typedef struct edo__defer {
	edo_waker *wakers;
	size_t len, cap;
} edo__defer;

typedef struct edo__context {
	edo__sched *sched;      /* the runtime this thread is inside, or NULL */
	void *core;             /* the flavour's per-thread state */
	edo__task *task;        /* the task being polled, or NULL */
	edo__defer *defer;      /* where deferred wakes go, or NULL */
	struct edo__time *time; /* this thread's timer wheel (its parker's), or NULL */
	bool constrained;       /* a budget applies (false outside tasks: zeroed TLS) */
	bool took_unit;         /* the last poll_proceed took a unit (for refund) */
	bool blocking;          /* blocking code of the runtime (a pool thread, or a
				   block_in_place function after its hand-off):
				   inside no poll, so edo_block_on may run here */
	uint16_t budget;        /* units left when constrained */
	uint16_t worker;        /* 1 + index of the multi-thread worker this
				   thread runs (pinning, edo_worker_id); 0 elsewhere */
	uint32_t fibers_pinned; /* started fibers pinned to this thread (src/fiber/):
				   while non-zero its worker stays on this thread */
	uint32_t now_ms;        /* coarse clock (CLOCK_MONOTONIC ms, wrapping) the
				   scheduler refreshes at every maintenance and
				   park: stamps each task's last poll for dumps */
	uint64_t forced_yields; /* polls that found the budget spent */
	/* This worker's observability slot (src/runtime/trace/): poll timing
	 * and the stall watch.  NULL unless the runtime opted in. */
	struct edo__tw *tw;
} edo__context;

extern __thread edo__context edo__ctx __attribute__((tls_model("initial-exec")));

void edo__defer_push(edo__defer *d, const edo_waker *w);
/* Wake everything deferred; returns how many. */
size_t edo__defer_wake_all(edo__defer *d);
bool edo__defer_is_empty(const edo__defer *d);
void edo__defer_free(edo__defer *d);

/* edo_coop_poll_proceed() and edo_coop_refund(), inlined for the library's
 * own leaves (sockets, sync primitives, join handles): the slow path (budget
 * spent: defer the wake, count the yield) stays out of line. */
static inline edo_poll edo__coop_proceed(edo_cx *cx)
{
	if (!edo__ctx.constrained) {
		edo__ctx.took_unit = false;
		return EDO_READY;
	}
	if (edo__ctx.budget == 0)
		return edo_coop_poll_proceed(cx); /* defers the wake, counts the yield */
	edo__ctx.budget--;
	edo__ctx.took_unit = true;
	return EDO_READY;
}

static inline void edo__coop_refund(void)
{
	if (edo__ctx.took_unit) {
		edo__ctx.budget++;
		edo__ctx.took_unit = false;
	}
}

#endif /* EDO_CONTEXT_H */
