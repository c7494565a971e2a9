/* Edo — tasks: spawning, joining, aborting, yielding, the cooperative
 * budget, and task-local storage.
 *
 * A task is a future the runtime owns and polls until it completes.  Spawning
 * copies the future's initial bytes into one allocation (task header + the
 * future inline), so a future must be movable until its first poll — frames
 * built with designated initialisers are.  The spawned future completes in
 * place: its output fields stay readable through the join handle.
 *
 *     edo_join *h;
 *     int rc = edo_spawn(&(work_frame){ EDO_FRAME_INIT(work), .n = 21 }.edo_base,
 *                        sizeof(work_frame), &h);
 *     ...                                  // in a coroutine:
 *     EDO_AWAIT_POLL(edo_join_poll(self->h, cx, &self->rc));
 *     if (self->rc == 0) use(((work_frame *)edo_join_output(self->h))->out);
 *     edo_join_detach(self->h);
 *
 * or, from async.h, `EDO_SPAWN(&self->h, work, .n = 21)`.
 *
 * A join handle is owned by one holder at a time; its functions are not
 * thread-safe on the same handle (like a Rust JoinHandle, which is not
 * Clone).  Abort handles may be used from any thread.
 */
#ifndef EDO_TASK_H
#define EDO_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edo/future.h"
#include "edo/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edo_join edo_join;
typedef struct edo_abort_handle edo_abort_handle;

/** Optional settings of one spawn. */
typedef struct edo_spawn_opts {
	/** A name for task dumps and hooks; must outlive the task (a string literal). */
	const char *name;
	/** Where the spawn is in the source (EDO_SPAWN fills these). */
	const char *file;
	int line;
} edo_spawn_opts;

/**
 * edo_spawn() - spawn a task on the runtime the calling thread is inside.
 * @init: the future's initial state; @size bytes are copied into the task,
 *        and @init itself is not touched afterwards (it may live on the stack).
 * @size: sizeof the future's struct (>= sizeof(edo_future)).
 * @out:  receives the join handle; NULL detaches the task at once.
 *
 * Returns 0, -EINVAL (NULL or empty future, @size too small), -ENOMEM,
 * EDO_ENORUNTIME outside a runtime, or EDO_ESHUTDOWN if the runtime is
 * shutting down.  On failure nothing was spawned and @init was not dropped
 * (it is still the caller's).  Thread-safe.
 */
int edo_spawn(const edo_future *init, size_t size, edo_join **out);

/**
 * edo_spawn_on() - like edo_spawn(), onto the runtime behind @h (NULL: the
 * current runtime), from any thread, with options (a name, a spawn site;
 * @opts may be NULL).  Spawning through the handle of a runtime that was
 * freed returns EDO_ESHUTDOWN.
 */
int edo_spawn_on(edo_handle *h, const edo_future *init, size_t size, const edo_spawn_opts *opts,
		 edo_join **out);

/* ---- join handles ------------------------------------------------------- */

/**
 * edo_join_poll() - wait for the task to finish.
 * @result: set when READY: 0 if the future completed, -ECANCELED if the task
 *          was aborted or its runtime shut down first.
 *
 * Consumes one unit of cooperative budget.  May be polled again after READY
 * (it stays READY).  Not thread-safe on the same handle.
 */
edo_poll edo_join_poll(edo_join *h, edo_cx *cx, int *result);

/**
 * edo_join_output() - the completed future, to read its output fields.
 * Valid only after edo_join_poll() gave result 0, until edo_join_detach().
 * Returns NULL if the task has not completed successfully.
 */
void *edo_join_output(edo_join *h);

/** edo_join_is_finished() - whether the task completed or was cancelled. */
bool edo_join_is_finished(const edo_join *h);

/**
 * edo_join_abort() - request cancellation.  A task that has not completed is
 * dropped (on its runtime's thread) at its next scheduling point; if it is
 * being polled right now, after that poll.  Aborting a finished task does
 * nothing.  The handle stays valid.
 */
void edo_join_abort(edo_join *h);

/** edo_join_id() - the task's id (unique in the process, never 0). */
uint64_t edo_join_id(const edo_join *h);

/**
 * edo_join_detach() - release the handle.  A running task keeps running
 * detached; a finished task's memory (and its output) is freed.  NULL is a
 * no-op.
 */
void edo_join_detach(edo_join *h);

/** edo_join_abort_handle() - a new abort handle for the task of @h. */
edo_abort_handle *edo_join_abort_handle(edo_join *h);

/** edo_abort_handle_abort() - like edo_join_abort().  Thread-safe. */
void edo_abort_handle_abort(edo_abort_handle *a);

/** edo_abort_handle_is_finished() - whether the task is done.  Thread-safe. */
bool edo_abort_handle_is_finished(const edo_abort_handle *a);

/** edo_abort_handle_id() - the task's id.  Thread-safe. */
uint64_t edo_abort_handle_id(const edo_abort_handle *a);

/** edo_abort_handle_drop() - release an abort handle.  NULL is a no-op. */
void edo_abort_handle_drop(edo_abort_handle *a);

/* ---- blocking work ---------------------------------------------------------- */

/** Flag for edo_spawn_blocking_on(): run even if the runtime shuts down first. */
#define EDO_BLOCKING_MANDATORY 1u

/**
 * edo_spawn_blocking() - run @fn(@arg) on the runtime's blocking pool, a set
 * of threads for work that blocks (synchronous syscalls, heavy computation),
 * so that it never stalls a worker.  Returns a normal join handle: await it
 * with edo_join_poll(), then read @fn's return value with
 * edo_join_blocking_result().  Threads are started on demand up to the
 * builder's max_blocking_threads (512) and exit after keep-alive (10 s) idle.
 *
 * A blocking task cannot be interrupted once it runs: abort only cancels it
 * while queued.  At shutdown, queued tasks are cancelled unless mandatory,
 * and running ones finish.  Returns like edo_spawn(), and -EINVAL for a NULL
 * @fn.  Thread-safe.
 *
 * If no pool thread can be started (pthread_create fails: RLIMIT_NPROC,
 * memory) while none is running to take the job, it cannot wait: a
 * mandatory job then runs at once on the calling thread, and any other is
 * cancelled (its join reports -ECANCELED).
 */
int edo_spawn_blocking(void *(*fn)(void *), void *arg, edo_join **out);

/**
 * edo_spawn_blocking_on() - edo_spawn_blocking() on the runtime of @h (NULL:
 * the current one), from any thread.  @flags: 0 or EDO_BLOCKING_MANDATORY.
 */
int edo_spawn_blocking_on(edo_handle *h, void *(*fn)(void *), void *arg, unsigned flags,
			  edo_join **out);

/**
 * edo_join_blocking_result() - the value returned by a blocking task's
 * function, once edo_join_poll() reported 0; NULL for other tasks.
 */
void *edo_join_blocking_result(edo_join *h);

/**
 * edo_block_in_place() - run the blocking @fn(@arg) on the calling worker
 * thread without stalling the runtime: the worker (its run queue, LIFO task,
 * I/O duties) is first handed to a new thread, which carries on running
 * tasks, and this thread runs @fn and then finishes the current poll and
 * exits.  Unlike edo_spawn_blocking() the call is synchronous: the task's
 * poll waits for @fn, with no budget limit.
 *
 * On a multi-thread runtime's worker: as above; freeing or shutting down
 * the runtime waits for such a thread to finish.  On a thread that runs no
 * worker (the thread of a multi-thread runtime's edo_block_on(), a
 * blocking-pool job of either flavour, outside any runtime): @fn just runs.
 * From a task of a current-thread runtime it returns -ENOTSUP without
 * calling @fn (there is no other worker to hand the runtime to).  -EINVAL for a
 * NULL @fn.  Returns 0 once @fn has returned.
 */
int edo_block_in_place(void (*fn)(void *), void *arg);

/* ---- the current task ------------------------------------------------------ */

/** edo_task_id() - the id of the task being polled on this thread, 0 if none. */
uint64_t edo_task_id(void);

/** edo_task_name() - the name of the task being polled, or NULL. */
const char *edo_task_name(void);

/* ---- yielding and the cooperative budget ----------------------------------- */

/**
 * edo_defer_wake() - arrange for cx->waker to be woken after the runtime's
 * next driver turn (so a yielding task lets I/O and timers run first).
 * Outside a runtime the waker is woken at once.
 */
void edo_defer_wake(edo_cx *cx);

/**
 * edo_yield_now - a future that returns PENDING once (deferring its wake as
 * edo_defer_wake() does) and READY on the next poll.  Initialise with
 * EDO_YIELD_NOW_INIT; from a coroutine, EDO_YIELD() is simpler.
 */
typedef struct edo_yield_now {
	edo_future base;
	bool yielded;
} edo_yield_now;

extern const edo_future_vtable edo_yield_now_vt;
/* clang-format 14 lays a braced macro body out as a block. */
/* clang-format off */
#define EDO_YIELD_NOW_INIT {.base = {&edo_yield_now_vt}, .yielded = false}
/* clang-format on */

/** Units of budget a task gets per poll. */
#define EDO_COOP_BUDGET 128

/**
 * edo_coop_poll_proceed() - take one unit of the current task's budget.
 * Returns READY if a unit was taken; PENDING if the budget is spent, in which
 * case the task's wake has been deferred (edo_defer_wake()) and the caller
 * must return PENDING.  Leaf futures call this before doing ready work, and
 * edo_coop_refund() when the work then turns out not to be ready.  Outside a
 * task, or inside edo_unconstrained, it always returns READY.
 */
edo_poll edo_coop_poll_proceed(edo_cx *cx);

/** edo_coop_refund() - give back the unit taken by the last edo_coop_poll_proceed(). */
void edo_coop_refund(void);

/** edo_coop_has_budget_remaining() - whether the current task may do more work. */
bool edo_coop_has_budget_remaining(void);

/**
 * edo_unconstrained - a future that polls @inner with no budget limit (for
 * work that must not be forced to yield).  Init with edo_unconstrained_init().
 * Dropping it drops @inner.
 */
typedef struct edo_unconstrained {
	edo_future base;
	edo_future *inner;
} edo_unconstrained;

/** edo_unconstrained_init() - wrap @inner (not owned beyond drop forwarding). */
void edo_unconstrained_init(edo_unconstrained *u, edo_future *inner);

/* ---- task-local storage ------------------------------------------------------ */

/**
 * A key for a task-local value.  Define one with static storage duration:
 *     static const edo_task_local_key request_id = { .dtor = free };
 * @dtor (may be NULL) runs on the value when the task ends or is cancelled,
 * or when the value is replaced.
 */
typedef struct edo_task_local_key {
	void (*dtor)(void *value);
} edo_task_local_key;

/**
 * edo_task_local_set() - set the current task's value for @key.
 * Returns 0, -EINVAL for a NULL key, EDO_ENORUNTIME outside a task, -ENOMEM.
 */
int edo_task_local_set(const edo_task_local_key *key, void *value);

/** edo_task_local_get() - the current task's value for @key, or NULL. */
void *edo_task_local_get(const edo_task_local_key *key);

#ifdef __cplusplus
}
#endif
#endif /* EDO_TASK_H */
