/* The task cell: one allocation per spawn.
 *
 *   +------------------------------+  offset 0
 *   | edo__task  (hot header, 64B) |  state word, queue link, scheduler,
 *   |                              |  id, owned-list links, size class, stage
 *   +------------------------------+  offset 64
 *   | edo__task_cold               |  join waker, task-locals, name, spawn site,
 *   |                              |  when it was last polled (coarse)
 *   +------------------------------+  offset EDO__TASK_FUT_OFFSET (16-aligned)
 *   | the future, inline           |  copied from the spawner's initial frame;
 *   |   ...                        |  completes in place, so its output fields
 *   +------------------------------+  stay readable through the join handle
 *   | edo__task_timing (optional)  |  busy time and last poll, only when the
 *   +------------------------------+  runtime times polls (EDO__TASK_TIMED)
 *
 * The scheduler only touches the hot header; the cold part is read on
 * completion, by join handles and by task dumps.
 */
#ifndef EDO_TASK_INTERNAL_H
#define EDO_TASK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "edo/future.h"
#include "edo/runtime.h"
#include "edo/task.h"
#include "runtime/task/state.h"

typedef struct edo__task edo__task;
typedef struct edo_handle edo__sched; /* a handle is its scheduler */

/* Where the future is in its life, as the join handle sees it. */
enum edo__stage {
	EDO__STAGE_RUNNING = 0,   /* not finished (maybe never polled) */
	EDO__STAGE_FINISHED = 1,  /* the future returned READY */
	EDO__STAGE_CANCELLED = 2, /* the future was dropped before finishing */
};

struct edo__task {
	edo__state state;
	edo__task *next;   /* intrusive link: run queues, inject queue */
	edo__sched *sched; /* the scheduler the task belongs to (a ref) */
	uint64_t id;
	edo__task *owned_prev; /* owned-tasks list, guarded by its shard lock */
	edo__task *owned_next;
	uint32_t alloc_size; /* bytes of the whole cell, for the allocator */
	uint8_t stage;       /* enum edo__stage; written by the RUNNING owner */
	uint8_t owned;       /* 1 while linked in the owned-tasks list */
	uint16_t shard;      /* owned-tasks shard */
	/* Times polled (wraps); written only by the RUNNING owner, with a
	 * relaxed load + store, so that a task dump may read it any time. */
	_Atomic(uint32_t) polls;
	/* 0: any worker may run the task.  Else 1 + the index of the only
	 * worker that may: a started fiber is pinned to the worker that first
	 * resumed it (src/fiber/).  Written once, by the RUNNING owner. */
	uint16_t pin;
	uint8_t flags; /* EDO__TASK_*; written by the RUNNING owner */
	uint8_t spare;
};

/* Cancellation is delivered by polling the future (which sees CANCELLED in
 * the state word and finishes by itself) instead of dropping it; runtime
 * shutdown still drops.  Set by a fiber at its first poll, so that an
 * aborted fiber runs its own cleanup, which may await. */
#define EDO__TASK_POLL_CANCELLED 0x01u
/* The cell ends with an edo__task_timing (the runtime times every poll:
 * edo_runtime_builder.poll_time_histogram).  Set at creation. */
#define EDO__TASK_TIMED 0x02u

typedef struct edo__task_local {
	struct edo__task_local *next;
	const edo_task_local_key *key;
	void *value;
} edo__task_local;

typedef struct edo__task_cold {
	edo_waker join_waker; /* owned as JOIN_WAKER says; see task.c */
	edo__task_local *locals;
	const char *name;
	const char *file;
	int line;
	/* When the last poll started, in the coarse milliseconds of the
	 * polling thread (edo__ctx.now_ms); relaxed, for task dumps.  It fills
	 * what was padding, next to the future's first bytes that every poll
	 * touches anyway. */
	_Atomic(uint32_t) last_poll_ms;
} edo__task_cold;

/* Poll timing of one task, at the end of its cell when EDO__TASK_TIMED is
 * set (src/runtime/trace/).  Written by the RUNNING owner with relaxed
 * stores, read by task dumps. */
typedef struct edo__task_timing {
	_Atomic(uint64_t) busy_ns;      /* time spent in polls */
	_Atomic(uint64_t) last_poll_ns; /* when the last poll started */
} edo__task_timing;

#define EDO__TASK_COLD_OFFSET sizeof(edo__task)
#define EDO__TASK_FUT_OFFSET ((sizeof(edo__task) + sizeof(edo__task_cold) + 15) & ~(size_t)15)
_Static_assert(sizeof(void *) != 8 || EDO__TASK_FUT_OFFSET == 112,
	       "the task cell grew: a trivial coroutine task is 144 bytes");

static inline edo__task_cold *edo__task_cold_of(edo__task *t)
{
	return (edo__task_cold *)((char *)t + EDO__TASK_COLD_OFFSET);
}

/* Ask the cache for the lines of @t's cell that running it touches first
 * (the header, the cold part, the future's first bytes).  Only a hint: @t
 * may be any pointer, even a freed one. */
static inline void edo__task_prefetch(const edo__task *t)
{
	__builtin_prefetch(t, 1);
	__builtin_prefetch((const char *)t + 64, 1);
	__builtin_prefetch((const char *)t + 128, 1);
}

static inline edo_future *edo__task_future(edo__task *t)
{
	return (edo_future *)((char *)t + EDO__TASK_FUT_OFFSET);
}

/* The timing block of a task with EDO__TASK_TIMED: the cell's last bytes. */
static inline edo__task_timing *edo__task_timing_of(edo__task *t)
{
	return (edo__task_timing *)((char *)t + (t->alloc_size & 0x7fffffffu) -
				    sizeof(edo__task_timing));
}

/* A join handle and an abort handle are the task pointer itself. */
static inline edo__task *edo__task_of_join(const edo_join *h)
{
	return (edo__task *)(uintptr_t)h;
}

/* ---- operations the schedulers provide --------------------------------------- */

typedef struct edo__sched_vt {
	/* Queue a task whose notification reference the caller hands over.
	 * @yield: re-queue after a poll that was woken during itself (goes to the
	 * back of the queue, never a LIFO slot). */
	void (*schedule)(edo__sched *s, edo__task *t, bool yield);
	/* Free the scheduler memory (called when the last reference goes). */
	void (*destroy)(edo__sched *s);
} edo__sched_vt;

/* ---- tasks (task.c) ---------------------------------------------------------- */

/* Allocate and initialise a task holding a copy of @init; not yet bound or
 * queued.  Returns NULL on ENOMEM. */
edo__task *edo__task_new(edo__sched *s, const edo_future *init, size_t size,
			 const edo_spawn_opts *opts);

/* Run one notification of @t: poll it, or cancel it, and settle its state.
 * Consumes the notification reference. */
void edo__task_run(edo__task *t);

/* Cancel @t for runtime shutdown; consumes the owned-list reference that the
 * caller popped it with. */
void edo__task_shutdown(edo__task *t);

/* The same in two steps, for a sweep that must cancel a pinned task on its
 * own worker.  _begin() marks @t cancelled.  If @t was idle it returns true
 * and the caller owns it (RUNNING; t->pin, set by the first poll, is
 * visible): cancel it with _finish(), here or on its worker.  Otherwise @t
 * runs elsewhere and its poller cancels it; the reference is dropped. */
bool edo__task_shutdown_begin(edo__task *t);
void edo__task_shutdown_finish(edo__task *t);

/* Cancel @t instead of running it (a scheduler that has shut down);
 * consumes the notification reference. */
void edo__task_cancel_notified(edo__task *t);

/* Drop a notification reference without running the task (queue drains). */
void edo__task_drop_notified(edo__task *t);

/* Free a task cell whose last reference is gone. */
void edo__task_dealloc(edo__task *t);

/* ---- the task allocator (alloc.c) ------------------------------------------ */

/* Memory for a cell of @size bytes from this thread's size-class freelists. */
void *edo__task_alloc(size_t size, uint32_t *alloc_size);
void edo__task_free(void *p, uint32_t alloc_size);

/* ---- task ids ---------------------------------------------------------------- */

uint64_t edo__task_next_id(void);

/* ---- task-locals (local.c) ---------------------------------------------------- */

/* Run the destructors of every task-local of @t and free them. */
void edo__task_locals_drop(edo__task *t);

#endif /* EDO_TASK_INTERNAL_H */
