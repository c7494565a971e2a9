/* The fiber task: a future whose poll switches into a stack of its own.
 *
 *   worker stack                              fiber stack
 *   ────────────                              ───────────
 *   edo__task_run
 *     fiber_poll(f, cx) ── switch ──▶        fiber_entry → fn(arg) → ...
 *       (f->cx = cx)                               edo_fiber_await(fut)
 *                                                    poll fut with f->cx
 *                        ◀── switch ──               PENDING: park on fut
 *     return PENDING
 *   ... fut's wake queues the task; the next poll polls fut (f->parked):
 *   still PENDING, the poll returns PENDING without a switch; READY, it
 *   switches in, and edo_fiber_await returns 0 to its caller ...
 *
 * Life of a fiber (status):
 *
 *   NEW ──first poll──▶ RUNNING ──fn returns──▶ DONE
 *    │                    │  (suspended between polls)
 *    │ abort/drop         │ abort: polled with `cancelled` set: awaits fail
 *    ▼                    │ shutdown (drop): resumed with `hard` set until DONE
 *   stack released        ▼
 *                       stack released at DONE, on the same thread
 *
 * The first poll pins the task to the worker it runs on (edo__task.pin)
 * unless it opted in to migration, and asks the task harness to deliver
 * cancellation by polling (EDO__TASK_POLL_CANCELLED) rather than by
 * dropping, so that a shielded cleanup can await.
 */
#ifndef EDO_FIBER_INTERNAL_H
#define EDO_FIBER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "edo/fiber.h"
#include "fiber/san.h"
#include "fiber/stack.h"
#include "runtime/task/task.h"

enum edo__fiber_status {
	EDO__FIBER_NEW = 0,
	EDO__FIBER_RUNNING = 1,
	EDO__FIBER_DONE = 2,
};

typedef struct edo__fiber {
	edo_future base;
	void *sp;       /* the fiber's context while it is suspended */
	void *sched_sp; /* the poller's context while the fiber runs */
	edo_cx *cx;     /* the poll context of the current resume */
	edo__stack *stack;
	edo__task *task; /* set at the first poll */
	int saved_errno; /* the fiber's errno while it is suspended */
	edo_fiber_fn fn;
	void *arg;
	void *result;
	uint8_t status; /* enum edo__fiber_status */
	bool cancelled; /* the task was aborted (seen at a resume) */
	bool hard;      /* runtime shutdown: no await may suspend */
	bool hard_fail; /* a leaf poll was PENDING under `hard` */
	bool shielded;  /* edo_fiber_shield(true) */
	bool migrate;   /* opted in to migration */
	bool pinned;    /* counted in edo__ctx.fibers_pinned of its thread */
	bool canary;    /* the stack has no guard: check its canary */
	/* What the fiber waits for while suspended, for task dumps: an
	 * operation (a static string), the source line of an
	 * EDO_FIBER_AWAIT_POLL, and the future of an edo_fiber_await. */
	const char *op;
	const char *op_file;
	int op_line;
	const edo_future *awaiting;
	/* edo_fiber_await() parked the fiber on this future: fiber_poll()
	 * polls it, and resumes the fiber once it is ready. */
	edo_future *parked;
	edo_yield_now yield; /* the future of edo_fiber_yield() */
#ifdef EDO__ASAN
	void *asan_fake_sched; /* the poller's fake stack while the fiber runs */
	void *asan_fake_self;  /* the fiber's fake stack while it is suspended */
	const void *sched_bottom;
	size_t sched_size;
#endif
#ifdef EDO__TSAN
	void *tsan_fiber;
	void *tsan_sched;
#endif
} edo__fiber;

/* The fiber running on this thread, or NULL. */
extern __thread edo__fiber *edo__fiber_cur __attribute__((tls_model("initial-exec")));

/* guard.c: overflow reports. */

/* Set up what overflow reports need on this thread (an alternate signal
 * stack; the process-wide SIGSEGV handler once).  After the first call,
 * a thread-local test (fiber_poll calls it at every resume). */
extern __thread bool edo__guard_ready __attribute__((tls_model("initial-exec")));
void edo__guard_thread_setup(void);
static inline void edo__guard_thread_init(void)
{
	if (__builtin_expect(!edo__guard_ready, 0))
		edo__guard_thread_setup();
}

/* The canary of @f's unguarded stack is broken: report and abort. */
_Noreturn void edo__guard_canary_broken(const edo__fiber *f);

#endif /* EDO_FIBER_INTERNAL_H */
