/* Edo — looking inside a running runtime: task dumps, the stall detector,
 * the poll-time histogram and the live console.
 *
 * Everything here reads the runtime without stopping it.  What costs
 * (almost) nothing is always on: the counters of edo/metrics.h (about 1% of
 * the instructions of a spawn-and-poll benchmark), the runtime hooks
 * (edo_runtime_hooks in edo/runtime.h) and task dumps.  What costs a little
 * is opt-in, with a builder field (edo_runtime_builder in edo/runtime.h).
 * The costs below are instructions of the whole process, measured as
 * bench/README.md says (EDO_BENCH_METRICS=hist, hist16, stall against plain
 * Edo) on spawn_many and ping_pong, current-thread / 2 workers:
 *
 *   poll_time_histogram   two clock reads per task poll: the per-worker
 *                         poll-time histogram (edo_worker_poll_histogram),
 *                         each task's busy time and exact last-poll time
 *                         in dumps, and an exact mean poll time: +8% to
 *                         +11%; with poll_time_sample = N only one poll in
 *                         N is timed (and counted N times): estimates, at
 *                         N = 16 +2% to +3% (a few instructions per poll
 *                         and 16 bytes more per task remain)
 *   stall_detection       a watchdog thread reports a task poll that runs
 *                         longer than stall_threshold_ms (default 100 ms):
 *                         a blocking call inside a task is named at once;
 *                         costs two stores and a load per poll (the
 *                         watchdog's side uses membarrier(2)): +3% to +4%
 *                         on 2 workers; +6% to +7% on a current-thread
 *                         runtime with no other thread, a third to a half
 *                         of it because the watchdog's thread makes the
 *                         process multi-threaded (glibc's malloc then
 *                         takes locks, dearer than their count says, so
 *                         CPU time may grow more); time the
 *                         worker's thread spent queued for a CPU does not
 *                         count, so an overloaded machine is no stall
 *   dump_signal           a signal (e.g. SIGQUIT) that writes a task dump to
 *                         stderr; the handler only writes a byte to a pipe,
 *                         a runtime thread makes the dump
 *   console_path          serve metrics, the task list and the stall log
 *                         on a Unix socket (created 0600) for `edo-console
 *                         PATH` (tools/edo-console/), a live terminal view
 *
 * The last three share one background thread per runtime ("edo-trace"),
 * which keeps working when every worker is stuck.
 *
 * A task dump lists every live task: its id, name, state (idle, scheduled,
 * running), spawn site, poll count, time since its last poll, and where it
 * waits.  For a stackless coroutine that is the line it is parked at
 * (`edo_as.line`), followed into the child coroutine it awaits, and so on:
 *
 *     task 257 "conn" idle, 12 polls, last poll 1.52 s ago
 *         spawned at examples/hello_server.c:141
 *         parked at examples/hello_server.c:82 in conn
 *
 * for a fiber, the operation it awaits (edo_fiber_read, edo_fiber_sleep,
 * ...) and, when it awaits a coroutine, that coroutine's line.  To read a
 * task's frame safely the dump takes the task as a poller would (an idle
 * task is marked RUNNING for the few instructions of the read, so no worker
 * polls or drops it meanwhile; a wake that arrives then is kept and the task
 * is queued afterwards, so no wake-up is lost).  Running and scheduled tasks
 * are listed without their frame.
 *
 * Thread-safety: every function here may be called from any thread,
 * including from inside a task, while the runtime runs; not concurrently
 * with edo_runtime_free() of the same runtime.
 */
#ifndef EDO_TRACE_H
#define EDO_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "edo/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a task is doing, as a dump sees it. */
typedef enum edo_task_state {
	EDO_TASK_IDLE = 0,      /**< waiting for a wake-up */
	EDO_TASK_SCHEDULED = 1, /**< woken, queued to run */
	EDO_TASK_RUNNING = 2,   /**< being polled (or cancelled) now */
} edo_task_state;

/** What kind of future a task runs (known only for idle tasks). */
typedef enum edo_task_kind {
	EDO_TASK_KIND_UNKNOWN = 0, /**< running or scheduled: not looked at */
	EDO_TASK_FUTURE = 1,       /**< a hand-written future */
	EDO_TASK_COROUTINE = 2,    /**< a stackless coroutine (EDO_ASYNC) */
	EDO_TASK_FIBER = 3,        /**< a stackful fiber */
} edo_task_kind;

/** One step of "where it waits", outermost first. */
typedef struct edo_task_frame {
	const char *fn;   /**< the coroutine's name, or the fiber's operation; may be NULL */
	const char *file; /**< source file, or NULL */
	int line;         /**< source line it is parked at, 0 if unknown */
} edo_task_frame;

#define EDO_TASK_FRAMES_MAX 8
#define EDO_TASK_NAME_MAX 48

/** One live task in a dump. */
typedef struct edo_task_info {
	uint64_t id;
	char name[EDO_TASK_NAME_MAX]; /**< copied; "" when the task has none */
	edo_task_state state;
	edo_task_kind kind;
	const char *spawn_file; /**< where it was spawned (EDO_SPAWN records it), or NULL */
	int spawn_line;
	uint32_t polls;   /**< times polled (wraps at 2^32) */
	int64_t idle_ms;  /**< since its last poll started; -1: never polled */
	uint64_t busy_ns; /**< time spent in polls; 0 unless poll_time_histogram */
	unsigned nframes; /**< frames[] filled: 0 when not known (running, scheduled) */
	edo_task_frame frames[EDO_TASK_FRAMES_MAX];
} edo_task_info;

/**
 * edo_runtime_tasks() - a snapshot of every live task of @rt.
 * @out: receives an array of *@n entries, to be released with free();
 *       NULL (and *@n = 0) when there is no task.
 *
 * Strings other than `name` point at spawn sites and coroutine metadata:
 * string literals that live as long as the program.  Returns 0, -EINVAL,
 * -ENOMEM, or EDO_ESHUTDOWN once the runtime began to shut down (a dump
 * called then, from a task or a blocking job, would hold up the shutdown
 * sweep; one in progress when shutdown begins is waited for).
 */
int edo_runtime_tasks(edo_runtime *rt, edo_task_info **out, size_t *n);

/**
 * edo_runtime_dump() - write a task dump of @rt to @out, as text: a
 * header line with the runtime's shape, then each task as in the example
 * above.  Returns the number of tasks listed, -EINVAL, -ENOMEM,
 * EDO_ESHUTDOWN (as edo_runtime_tasks()), or -EIO if writing failed.
 */
int edo_runtime_dump(edo_runtime *rt, FILE *out);

/** edo_task_info_format() - the text of one task of a dump, as
 *  edo_runtime_dump() writes it, into @buf (truncated to @len).  Returns
 *  the length it needed, as snprintf, -EINVAL (NULL @t, NULL @buf with a
 *  @len, nframes above EDO_TASK_FRAMES_MAX) or -ENOMEM. */
int edo_task_info_format(const edo_task_info *t, char *buf, size_t len);

/* ---- the stall detector ------------------------------------------------- */

/**
 * One poll that ran too long, as the stall detector reports it (to
 * edo_runtime_builder.on_stall, or as one line on stderr by default).
 */
typedef struct edo_stall_info {
	uint64_t task_id;
	char name[EDO_TASK_NAME_MAX]; /**< "" when the task has none */
	const char *spawn_file;       /**< or NULL */
	int spawn_line;
	uint32_t worker;     /**< index of the worker (0 on the current-thread runtime) */
	uint64_t elapsed_ms; /**< the poll had run at least this long when seen */
	uint64_t at_ms;      /**< when, in milliseconds since the runtime was built */
} edo_stall_info;

/** The default threshold of the stall detector, in milliseconds. */
#define EDO_STALL_THRESHOLD_DEFAULT_MS 100

/**
 * edo_runtime_stalls() - the most recent stall reports of @rt (up to the
 * last 32), oldest first, into @out (room for @max).  Returns how many were
 * written, or -EINVAL.  Each long poll is reported once.
 */
int edo_runtime_stalls(edo_runtime *rt, edo_stall_info *out, size_t max);

#ifdef __cplusplus
}
#endif
#endif /* EDO_TRACE_H */
