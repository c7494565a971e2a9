/* What every scheduler flavour shares: the handle.
 *
 * `struct edo_handle` is the part of a scheduler that tasks, wakers and user
 * handles point at.  It is reference-counted: the runtime holds one
 * reference, every task one (released when the task's memory is freed), and
 * every user handle one.  So a waker that fires while its runtime shuts down
 * never touches freed memory, and a handle outlives its runtime safely.
 * Each flavour embeds this struct first in its own scheduler struct.
 */
#ifndef EDO_SCHED_H
#define EDO_SCHED_H

#include <stdatomic.h>
#include <stdbool.h>

#include "edo/runtime.h"
#include "runtime/driver.h"
#include "runtime/task/owned.h"
#include "runtime/task/task.h"

struct edo_handle {
	atomic_size_t refs;
	const edo__sched_vt *vt;
	edo_rt_flavor flavor;
	/* Set once shutdown begins: spawns fail with EDO_ESHUTDOWN. */
	atomic_bool shutdown;
	edo__owned owned;
	edo_runtime_hooks hooks;
	void *hooks_ud;
	bool task_hooks; /* any of the per-task hooks is set */
	/* The blocking pool (its own scheduler); this handle owns one reference
	 * to it, released when this scheduler is destroyed. */
	struct edo_handle *blocking;
	/* The I/O reactor and clock (not set up for the blocking pool). */
	edo__driver driver;
	bool has_driver;
	/* Opt-in observability (src/runtime/trace/): NULL unless the builder
	 * asked for poll timing, stall detection, a dump signal or a console. */
	struct edo__trace *trace;
	/* Set (under dump.c's lock) before shutdown begins: task dumps, which
	 * hold tasks for a moment, must not overlap the shutdown sweep. */
	bool dumps_closed;
};

void edo__trace_free(struct edo__trace *tr);

static inline void edo__sched_ref(edo__sched *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

static inline void edo__sched_unref(edo__sched *s)
{
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
		edo__sched *pool = s->blocking;
		if (s->trace)
			edo__trace_free(s->trace);
		if (s->has_driver)
			edo__driver_destroy(&s->driver);
		s->vt->destroy(s);
		if (pool)
			edo__sched_unref(pool);
	}
}

/* Initialise the shared part; @nshards for the owned-tasks list. */
int edo__sched_init(edo__sched *s, const edo__sched_vt *vt, const edo_runtime_builder *b,
		    unsigned nshards, bool with_driver);

/* Close the owned-tasks list and cancel every task in it (on this thread). */
void edo__sched_cancel_all(edo__sched *s);

/* Bind and queue a freshly created task; the spawn path of every flavour. */
int edo__sched_spawn(edo__sched *s, const edo_future *init, size_t size, const edo_spawn_opts *opts,
		     edo_join **out);

#endif /* EDO_SCHED_H */
