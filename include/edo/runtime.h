/* Edo — runtimes: building one, entering it with edo_block_on, handles.
 *
 * A runtime owns a scheduler (which runs tasks) and its drivers (which wake
 * tasks when I/O, timers or signals are ready).  Two flavours:
 *
 *   EDO_RT_CURRENT_THREAD  every task runs on the thread that calls
 *                          edo_block_on(); wakes from other threads go through
 *                          a remote (inject) queue and unpark that thread.
 *   EDO_RT_MULTI_THREAD    a pool of worker threads with work stealing.
 *
 * Build one with a builder:
 *
 *     edo_runtime_builder b;
 *     edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
 *     b.thread_name = "my-worker";
 *     edo_runtime *rt;
 *     int rc = edo_runtime_build(&b, &rt);      // 0 or -errno
 *     ...
 *     rc = edo_block_on(rt, &main_frame.edo_base);
 *     edo_runtime_free(rt);                    // cancels every task, frees all
 *
 * An `edo_handle` is a reference-counted way to reach a runtime from anywhere
 * (another thread, a library that was handed one): spawn through it.  A handle
 * stays valid after its runtime is freed; spawning through it then fails with
 * EDO_ESHUTDOWN.
 */
#ifndef EDO_RUNTIME_H
#define EDO_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "edo/future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edo_runtime edo_runtime;
typedef struct edo_handle edo_handle;
struct edo_stall_info; /* edo/trace.h */

/** Which scheduler a runtime uses. */
typedef enum edo_rt_flavor {
	EDO_RT_CURRENT_THREAD = 1,
	EDO_RT_MULTI_THREAD = 2,
} edo_rt_flavor;

/**
 * Callbacks a runtime makes at points of its life.  Every member may be NULL.
 * They run on the thread concerned, must not block, and must not call back
 * into the runtime except to read metrics.  @ud is the builder's hooks_ud.
 *
 * Thread hooks: on_thread_start/stop run on every thread the runtime starts
 * to run tasks or blocking jobs (multi-thread workers, including a thread
 * that takes a worker over in edo_block_in_place, and blocking-pool
 * threads), not on a thread that calls edo_block_on() (the current-thread
 * runtime's only thread is the caller's) nor on the "edo-trace" thread.
 * on_thread_park/unpark run around each time a worker (or the
 * current-thread runtime in edo_block_on) sleeps with nothing to do.
 *
 * Task hooks: on_task_spawn runs on the spawning thread once the task is
 * bound (before it can run); before/after_task_poll around every poll, on
 * the polling thread; on_task_terminate once, when the task completes or is
 * cancelled, on the thread that finished it.  Blocking-pool jobs are tasks
 * too.  Setting any task hook costs a predictable branch per poll.
 */
typedef struct edo_runtime_hooks {
	void (*on_thread_start)(void *ud);  /**< a runtime thread starts */
	void (*on_thread_stop)(void *ud);   /**< a runtime thread is about to exit */
	void (*on_thread_park)(void *ud);   /**< a runtime thread is about to sleep */
	void (*on_thread_unpark)(void *ud); /**< a runtime thread woke up */
	void (*on_task_spawn)(void *ud, uint64_t task_id);     /**< a task was spawned */
	void (*on_task_terminate)(void *ud, uint64_t task_id); /**< a task completed or cancelled */
	void (*before_task_poll)(void *ud, uint64_t task_id);
	void (*after_task_poll)(void *ud, uint64_t task_id);
} edo_runtime_hooks;

/** edo_runtime_builder.inject_wait_factor: no bound (Tokio's policy). */
#define EDO_INJECT_WAIT_UNBOUNDED 0xffffffffu

/**
 * How to build a runtime.  Initialise with edo_runtime_builder_init(), then
 * set fields; a zero field means "the default".
 */
typedef struct edo_runtime_builder {
	edo_rt_flavor flavor;
	/** Worker threads (multi-thread flavour): 0 = $EDO_WORKER_THREADS or the
	 *  number of CPUs. */
	unsigned worker_threads;
	/** Name given to the runtime's threads (truncated to 15 bytes); default "edo-worker". */
	const char *thread_name;
	/** Stack size of the runtime's threads in bytes; 0 = 2 MiB. */
	size_t thread_stack_size;
	/** Scheduler ticks between non-blocking driver polls; 0 = 61. */
	unsigned event_interval;
	/** Scheduler ticks between checks of the remote queue first; 0 = 31 on the
	 *  current-thread runtime, adaptive on the multi-thread one. */
	unsigned global_queue_interval;
	/** Multi-thread: fairness while a worker is overloaded.  Tasks woken
	 *  from outside the workers, and those moved out when a worker's local
	 *  queue of 256 is full, wait in the inject queue; the worker takes one of
	 *  them every global_queue_interval ticks, and more often while they pile
	 *  up: each look sets the next one so that the backlog seen would drain
	 *  within this many times the ticks of strict FIFO order (the last of a
	 *  backlog waits a few times longer, as the interval grows back while it
	 *  drains).  0 = 2; at most 65536; EDO_INJECT_WAIT_UNBOUNDED = one every
	 *  interval however long the backlog (Tokio's policy: with 1,000 busy
	 *  connections on one worker, a few connections are served many times as
	 *  often as others, with round trips up to 0.9 s against Edo's 57 ms, for
	 *  up to 10% more round trips per second; docs/architecture.md, "Fairness
	 *  under overload"). */
	unsigned inject_wait_factor;
	/** Maximum threads in the blocking pool; 0 = 512. */
	unsigned max_blocking_threads;
	/** Idle blocking threads exit after this many milliseconds; 0 = 10000. */
	unsigned blocking_keep_alive_ms;
	/** Multi-thread: never let idle workers take a busy worker's LIFO task,
	 *  nor the inject tasks it took in one go to run next (Tokio's
	 *  behaviour, which has no such batch; for comparison).  Default: they
	 *  may, on their last pass, when the owner is stuck in one poll. */
	bool disable_lifo_stealing;
	/** Start with the clock paused (a test clock, see edo/time.h): time moves
	 *  only by edo_time_advance() or, on the current-thread runtime, by
	 *  auto-advance to the next timer whenever no task can run. */
	bool start_paused;
	edo_runtime_hooks hooks;
	void *hooks_ud;

	/* ---- observability, all off by default (edo/trace.h) ---------------- */
	/** Time every task poll (two clock reads per poll): the poll-time
	 *  histogram, per-task busy time, an exact mean poll time. */
	bool poll_time_histogram;
	/** With poll_time_histogram: time one poll in this many (rounded up to
	 *  a power of two, at most 65536), counting it that many times, so the
	 *  histogram and busy times are estimates at a fraction of the cost;
	 *  0 or 1 = every poll, exact. */
	unsigned poll_time_sample;
	/** Report any task poll that runs longer than stall_threshold_ms, once
	 *  per poll, from a watchdog thread (a store at the start and the end of
	 *  each poll; an atomic exchange where membarrier(2) is missing).  Time
	 *  the poll's thread spent waiting for a CPU does not count. */
	bool stall_detection;
	/** The stall threshold; 0 = EDO_STALL_THRESHOLD_DEFAULT_MS (100). */
	unsigned stall_threshold_ms;
	/** Where stall reports go (on the watchdog thread; must not block);
	 *  NULL = one line on stderr. */
	void (*on_stall)(void *ud, const struct edo_stall_info *stall);
	void *stall_ud;
	/** A signal (e.g. SIGQUIT) that makes the runtime write a task dump to
	 *  stderr; 0 = none.  The handler is process-wide, chains to the one it
	 *  replaced, and is removed when the runtime is freed.  Fault signals,
	 *  SIGKILL, SIGSTOP and the C library's own (32 to SIGRTMIN - 1) are
	 *  refused: -EINVAL. */
	int dump_signal;
	/** Serve metrics, tasks and stalls for `edo-console PATH` on a Unix
	 *  socket created at this path with mode 0600 (an existing socket there
	 *  is replaced; any other file is an error, -EEXIST, as is a parent
	 *  that is missing or not a writable directory, with its errno, all
	 *  found before any thread starts); NULL = off.
	 *  Freeing the runtime removes the socket file, unless another one has
	 *  replaced it there since. */
	const char *console_path;
} edo_runtime_builder;

/**
 * edo_runtime_builder_init() - fill @b with the defaults for @flavor.
 * Always succeeds; an invalid flavour is reported by edo_runtime_build().
 */
void edo_runtime_builder_init(edo_runtime_builder *b, edo_rt_flavor flavor);

/**
 * edo_runtime_build() - create a runtime as @b describes.
 * @b:   the configuration (not kept; strings are copied).
 * @out: receives the runtime on success; untouched on failure.
 *
 * Returns 0, -EINVAL for an invalid configuration (unknown flavour, absurd
 * sizes), -ENOTSUP for a flavour this build does not provide, -ENOMEM, or the
 * -errno of a failed system call.  Thread-safe.
 */
int edo_runtime_build(const edo_runtime_builder *b, edo_runtime **out);

/** edo_runtime_new_current_thread() - a current-thread runtime with defaults. */
int edo_runtime_new_current_thread(edo_runtime **out);

/**
 * edo_block_on() - run @fut to completion on the calling thread, driving the
 * runtime meanwhile.
 *
 * On the current-thread runtime the calling thread runs every task while it
 * waits.  @fut is polled in place (it is not moved) and is not dropped: when
 * this returns 0 it has completed and its outputs are valid.
 *
 * Returns 0, -EINVAL if @fut is NULL or empty, -EBUSY if the calling thread is
 * already inside a runtime (no nesting: from a task's poll, or from the
 * future of another edo_block_on()), or EDO_ESHUTDOWN if @rt was shut
 * down.  Only one thread may block on a current-thread runtime at a time;
 * a second gets -EBUSY.
 *
 * Blocking code is not inside a runtime, and may call it (Tokio's
 * Handle::block_on from spawn_blocking or block_in_place): a job of
 * edo_spawn_blocking(), and the function of an edo_block_in_place() that
 * handed its worker over (on a multi-thread worker; elsewhere the function
 * runs inside the caller's poll, and this is -EBUSY).  There, on a
 * multi-thread runtime, the call does not make edo_runtime_free() fail: the
 * shutdown cancels the runtime's tasks (their join handles report
 * -ECANCELED) and fails its I/O with EDO_ESHUTDOWN, and the free waits for
 * the job as for any other, so for the future to complete (its timers run
 * on the calling thread's own wheel and fire when due; with a paused clock
 * on a current-thread runtime they never do, since the job in flight holds
 * back auto-advance).
 */
int edo_block_on(edo_runtime *rt, edo_future *fut);

/**
 * edo_handle_block_on() - edo_block_on() on the runtime of @h; for blocking
 * code that holds a handle (edo_handle_current() in an edo_spawn_blocking()
 * job) rather than the runtime.  -EINVAL for a NULL @h.
 */
int edo_handle_block_on(edo_handle *h, edo_future *fut);

/**
 * edo_runtime_free() - shut down and free @rt.
 *
 * Every task still alive is cancelled: its future is dropped (coroutine
 * cleanups run), join handles report -ECANCELED.  On the current-thread
 * runtime that happens on this thread; on the multi-thread runtime on the
 * worker threads, which this call waits for (as it waits for a thread still
 * inside edo_block_in_place(), with its hooks and drops).  Spawns and
 * wakes that race with shutdown from other threads are safe: late spawns are
 * cancelled, never leaked.  Handles stay valid (spawning through them fails).
 * Returns 0, or -EBUSY (and changes nothing) when called from inside a
 * runtime or while another thread is in edo_block_on() on @rt.  NULL is a
 * no-op returning 0.
 */
int edo_runtime_free(edo_runtime *rt);

/**
 * edo_runtime_shutdown_timeout() - edo_runtime_free(), but wait at most
 * @timeout_ms in all for the threads still running user code: a
 * multi-thread worker inside a long poll (or cancelling tasks after one), a
 * thread inside edo_block_in_place(), blocking-pool threads
 * (edo_runtime_free() waits for them without limit).  Tasks are cancelled
 * as in edo_runtime_free().  Returns 0, -ETIMEDOUT if such threads were
 * still running at the deadline, or -EBUSY (nothing done) as
 * edo_runtime_free().  After -ETIMEDOUT the runtime is shut down all the
 * same (@rt is gone, spawns through handles fail) and those threads finish
 * in the background: a worker cancels the tasks left to it when its poll
 * returns, the last one out completes the shutdown and releases the
 * runtime's memory; until then hooks (on_thread_stop) and task cleanups may
 * still run on them, so what they use must outlive them (and what they
 * spawn, blocking jobs included, fails with EDO_ESHUTDOWN).
 */
int edo_runtime_shutdown_timeout(edo_runtime *rt, int64_t timeout_ms);

/** edo_runtime_shutdown_background() - edo_runtime_shutdown_timeout() that waits for nothing
 *  (timeout 0; returns 0 where that returns -ETIMEDOUT). */
int edo_runtime_shutdown_background(edo_runtime *rt);

/**
 * edo_runtime_handle() - a new reference to a handle for @rt.  Release with
 * edo_handle_drop().  Thread-safe.
 */
edo_handle *edo_runtime_handle(edo_runtime *rt);

/**
 * edo_handle_current() - a new reference to the handle of the runtime the
 * calling thread is inside (a task, or edo_block_on), or NULL when outside.
 */
edo_handle *edo_handle_current(void);

/** edo_handle_clone() - another reference to @h.  Thread-safe. */
edo_handle *edo_handle_clone(edo_handle *h);

/** edo_handle_drop() - release a reference.  NULL is a no-op.  Thread-safe. */
void edo_handle_drop(edo_handle *h);

/** edo_handle_flavor() - the flavour of the runtime behind @h. */
edo_rt_flavor edo_handle_flavor(const edo_handle *h);

/** edo_handle_alive_tasks() - how many tasks of @h's runtime are alive now. */
size_t edo_handle_alive_tasks(edo_handle *h);

#ifdef __cplusplus
}
#endif
#endif /* EDO_RUNTIME_H */
