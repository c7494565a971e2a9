/* The task harness: polling, completing and cancelling a task, its wakers,
 * and its join and abort handles.
 *
 * References.  A task is freed when its reference count (in the state word,
 * see state.h) drops to zero.  References are held by: the owned-tasks list
 * (until the task completes), each notification (a queued task), the join
 * handle, each abort handle, and each waker clone.
 *
 * The join waker field (cold.join_waker) is owned by exactly one side at a
 * time, and the JOIN_WAKER bit says which:
 *   JOIN_WAKER clear: the join handle may read and write the field;
 *   JOIN_WAKER set:   the runtime owns it, and wakes it on completion.
 * To register, the handle writes the field, then sets the bit (failing if the
 * task completed meanwhile: then it clears the field itself and reads the
 * output).  To replace a waker it first clears the bit (failing if the task
 * completed).  On completion the runtime wakes the waker, then clears the
 * bit; if the join handle is gone by then, the runtime drops the waker.
 */
#include "runtime/task/task.h"

#include <errno.h>
#include <string.h>

#include "edo/error.h"
#include "runtime/context.h"
#include "runtime/sched.h"
#include "runtime/stats.h"
#include "runtime/trace/trace.h"

/* ---- wakers ------------------------------------------------------------------ */

static edo_waker task_waker_clone(const void *data);
static void task_waker_wake(const void *data);
static void task_waker_wake_by_ref(const void *data);
static void task_waker_drop(const void *data);

static const edo_waker_vtable task_waker_vt = {
	.clone = task_waker_clone,
	.wake = task_waker_wake,
	.wake_by_ref = task_waker_wake_by_ref,
	.drop = task_waker_drop,
};

static edo__task *task_of(const void *data)
{
	return (edo__task *)(uintptr_t)data;
}

static void task_drop_ref(edo__task *t)
{
	if (edo__st_ref_dec(&t->state))
		edo__task_dealloc(t);
}

static edo_waker task_waker_clone(const void *data)
{
	edo__st_ref_inc(&task_of(data)->state);
	return (edo_waker){&task_waker_vt, data};
}

static void task_waker_wake(const void *data)
{
	edo__task *t = task_of(data);
	switch (edo__st_transition_to_notified_by_val(&t->state)) {
	case EDO__NOTIFY_SUBMIT:
		t->sched->vt->schedule(t->sched, t, false);
		/* Only now: our ref kept the task, and so its scheduler, alive
		 * through schedule(). */
		task_drop_ref(t);
		break;
	case EDO__NOTIFY_DEALLOC:
		edo__task_dealloc(t);
		break;
	case EDO__NOTIFY_DO_NOTHING:
		break;
	}
}

static void task_waker_wake_by_ref(const void *data)
{
	edo__task *t = task_of(data);
	if (edo__st_transition_to_notified_by_ref(&t->state) == EDO__NOTIFY_SUBMIT)
		t->sched->vt->schedule(t->sched, t, false);
}

static void task_waker_drop(const void *data)
{
	task_drop_ref(task_of(data));
}

/* ---- creation and destruction ------------------------------------------------- */

edo__task *edo__task_new(edo__sched *s, const edo_future *init, size_t size,
			 const edo_spawn_opts *opts)
{
	uint32_t alloc_size;
	/* A runtime that times polls gives each task a timing block at the
	 * end of its cell (task.h). */
	bool timed = s->trace && s->trace->timing;
	size_t cell = EDO__TASK_FUT_OFFSET + size;
	if (timed)
		cell = ((cell + 7) & ~(size_t)7) + sizeof(edo__task_timing);
	edo__task *t = edo__task_alloc(cell, &alloc_size);
	if (!t)
		return NULL;
	atomic_init(&t->state, EDO__ST_INITIAL);
	t->next = NULL;
	t->sched = s;
	edo__sched_ref(s);
	t->id = edo__task_next_id();
	t->owned_prev = t->owned_next = NULL;
	t->alloc_size = alloc_size;
	t->stage = EDO__STAGE_RUNNING;
	t->owned = 0;
	t->shard = 0;
	atomic_init(&t->polls, 0);
	t->pin = 0;
	t->flags = timed ? EDO__TASK_TIMED : 0;
	t->spare = 0;
	edo__task_cold *c = edo__task_cold_of(t);
	c->join_waker = (edo_waker){0};
	c->locals = NULL;
	c->name = opts ? opts->name : NULL;
	c->file = opts ? opts->file : NULL;
	c->line = opts ? opts->line : 0;
	atomic_init(&c->last_poll_ms, 0);
	memcpy(edo__task_future(t), init, size);
	if (timed) {
		edo__task_timing *tm = edo__task_timing_of(t);
		atomic_init(&tm->busy_ns, 0);
		atomic_init(&tm->last_poll_ns, 0);
	}
	return t;
}

void edo__task_dealloc(edo__task *t)
{
	edo__sched *s = t->sched;
	/* The future was finished or dropped on completion; a task refused at
	 * spawn never owned its future (the spawner keeps it). */
	edo__task_locals_drop(t);
	edo__task_free(t, t->alloc_size);
	edo__sched_unref(s);
}

/* ---- the poll path ------------------------------------------------------------- */

/* The future is done (READY or dropped): publish, wake the joiner, unlink.
 * @refs: references the caller gives up besides the owned-list one. */
static void task_complete(edo__task *t, uint64_t refs)
{
	edo__sched *s = t->sched;
	/* Task-locals go first: their destructors may still want the runtime. */
	edo__task_locals_drop(t);
	uint64_t prev = edo__st_transition_to_complete(&t->state);
	if ((prev & EDO__ST_JOIN_INTEREST) && (prev & EDO__ST_JOIN_WAKER)) {
		edo__task_cold *c = edo__task_cold_of(t);
		edo_waker_wake_by_ref(&c->join_waker);
		uint64_t after = atomic_fetch_and_explicit(&t->state, ~EDO__ST_JOIN_WAKER,
							   memory_order_acq_rel);
		if (!(after & EDO__ST_JOIN_INTEREST))
			edo_waker_drop(edo_waker_take(&c->join_waker));
	}
	if (s->task_hooks && s->hooks.on_task_terminate)
		s->hooks.on_task_terminate(s->hooks_ud, t->id);
	if (edo__owned_remove(&s->owned, t))
		refs++;
	if (refs && edo__st_ref_dec_n(&t->state, refs))
		edo__task_dealloc(t);
}

/* Drop the future of a task we hold RUNNING on, then complete it. */
static void task_cancel(edo__task *t, uint64_t refs)
{
	/* Restore only what is the caller's: the drop may hand this thread's
	 * worker to another thread (edo_block_in_place in a cleanup), or
	 * finish a pinned fiber, and those changes stand. */
	edo__task *outer = edo__ctx.task;
	bool constrained = edo__ctx.constrained, took_unit = edo__ctx.took_unit;
	uint16_t budget = edo__ctx.budget;
	edo__ctx.task = t;
	edo_future_drop(edo__task_future(t));
	edo__ctx.task = outer;
	edo__ctx.constrained = constrained;
	edo__ctx.took_unit = took_unit;
	edo__ctx.budget = budget;
	t->stage = EDO__STAGE_CANCELLED;
	task_complete(t, refs);
}

void edo__task_run(edo__task *t)
{
	switch (edo__st_transition_to_running(&t->state)) {
	case EDO__RUN_SUCCESS:
		break;
	case EDO__RUN_CANCELLED:
		if (t->flags & EDO__TASK_POLL_CANCELLED)
			break; /* the poll sees CANCELLED and winds down */
		task_cancel(t, 1);
		return;
	case EDO__RUN_FAILED:
		return;
	case EDO__RUN_DEALLOC:
		edo__task_dealloc(t);
		return;
	}

	edo__sched *s = t->sched;
	/* The waker of this poll borrows the notification reference. */
	edo_waker w = {&task_waker_vt, t};
	edo_cx cx = {&w};
	edo__task *outer = edo__ctx.task;
	edo__ctx.task = t;
	/* For task dumps: relaxed stores, no read-modify-write (trace/). */
	if (EDO__METRICS) {
		atomic_store_explicit(&t->polls,
				      atomic_load_explicit(&t->polls, memory_order_relaxed) + 1,
				      memory_order_relaxed);
		atomic_store_explicit(&edo__task_cold_of(t)->last_poll_ms, edo__ctx.now_ms,
				      memory_order_relaxed);
	}
	edo__tw *tw = edo__ctx.tw;
	if (__builtin_expect(tw != NULL, 0))
		edo__tw_poll_begin(tw, t);
	if (s->task_hooks && s->hooks.before_task_poll)
		s->hooks.before_task_poll(s->hooks_ud, t->id);
	edo_future *f = edo__task_future(t);
	edo_poll r = f->vt->poll(f, &cx);
	if (s->task_hooks && s->hooks.after_task_poll)
		s->hooks.after_task_poll(s->hooks_ud, t->id);
	/* Read again: edo_block_in_place may have handed the worker (and its
	 * slot) to another thread during the poll. */
	tw = edo__ctx.tw;
	if (__builtin_expect(tw != NULL, 0))
		edo__tw_poll_end(tw, t);
	edo__ctx.task = outer;

	if (r == EDO_READY) {
		/* A future that handles its own cancellation may have said
		 * it ended cancelled. */
		if (t->stage == EDO__STAGE_RUNNING)
			t->stage = EDO__STAGE_FINISHED;
		task_complete(t, 1);
		return;
	}
	switch (edo__st_transition_to_idle(&t->state, !(t->flags & EDO__TASK_POLL_CANCELLED))) {
	case EDO__IDLE_OK:
		break;
	case EDO__IDLE_OK_NOTIFIED:
		s->vt->schedule(s, t, true);
		break;
	case EDO__IDLE_OK_DEALLOC:
		edo__task_dealloc(t);
		break;
	case EDO__IDLE_CANCELLED:
		task_cancel(t, 1);
		break;
	}
}

bool edo__task_shutdown_begin(edo__task *t)
{
	switch (edo__st_transition_to_shutdown(&t->state)) {
	case EDO__SHUTDOWN_OWN:
		return true;
	case EDO__SHUTDOWN_DROPPED:
		/* Running elsewhere: its poller cancels it
		 * (edo__st_transition_to_idle); or complete. */
		return false;
	case EDO__SHUTDOWN_DEALLOC:
		edo__task_dealloc(t);
		return false;
	}
	return false;
}

void edo__task_shutdown_finish(edo__task *t)
{
	task_cancel(t, 1); /* the owned ref we were handed */
}

void edo__task_shutdown(edo__task *t)
{
	if (edo__task_shutdown_begin(t))
		edo__task_shutdown_finish(t);
}

void edo__task_cancel_notified(edo__task *t)
{
	switch (edo__st_transition_to_running(&t->state)) {
	case EDO__RUN_SUCCESS:
	case EDO__RUN_CANCELLED:
		task_cancel(t, 1);
		return;
	case EDO__RUN_FAILED:
		return;
	case EDO__RUN_DEALLOC:
		edo__task_dealloc(t);
		return;
	}
}

void edo__task_drop_notified(edo__task *t)
{
	task_drop_ref(t);
}

/* ---- join handles ---------------------------------------------------------------- */

static int join_result(edo__task *t)
{
	return t->stage == EDO__STAGE_FINISHED ? 0 : -ECANCELED;
}

edo_poll edo_join_poll(edo_join *h, edo_cx *cx, int *result)
{
	if (!h || !cx) {
		if (result)
			*result = -EINVAL;
		return EDO_READY;
	}
	edo__task *t = edo__task_of_join(h);
	edo__task_cold *c = edo__task_cold_of(t);
	/* The unit is taken first, also for a task that has finished: a loop
	 * over many finished joins yields like any other ready work (Tokio's
	 * JoinHandle does the same). */
	if (edo__coop_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
	if (s & EDO__ST_COMPLETE)
		goto ready;
	if (s & EDO__ST_JOIN_WAKER) {
		/* The runtime holds our waker; done if it is the same one. */
		if (edo_waker_will_wake(&c->join_waker, cx->waker)) {
			edo__coop_refund();
			return EDO_PENDING;
		}
		if (!edo__st_unset_waker(&t->state))
			goto ready;
	}
	edo_waker_drop(edo_waker_take(&c->join_waker));
	c->join_waker = edo_waker_clone(cx->waker);
	if (!edo__st_set_join_waker(&t->state)) {
		edo_waker_drop(edo_waker_take(&c->join_waker));
		goto ready;
	}
	edo__coop_refund();
	return EDO_PENDING;
ready:
	atomic_thread_fence(memory_order_acquire);
	if (result)
		*result = join_result(t);
	return EDO_READY;
}

void *edo_join_output(edo_join *h)
{
	if (!h)
		return NULL;
	edo__task *t = edo__task_of_join(h);
	uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
	if (!(s & EDO__ST_COMPLETE) || t->stage != EDO__STAGE_FINISHED)
		return NULL;
	return edo__task_future(t);
}

bool edo_join_is_finished(const edo_join *h)
{
	if (!h)
		return false;
	edo__task *t = edo__task_of_join(h);
	return atomic_load_explicit(&t->state, memory_order_acquire) & EDO__ST_COMPLETE;
}

static void task_abort(edo__task *t)
{
	if (edo__st_transition_to_notified_and_cancel(&t->state))
		t->sched->vt->schedule(t->sched, t, false);
}

void edo_join_abort(edo_join *h)
{
	if (h)
		task_abort(edo__task_of_join(h));
}

uint64_t edo_join_id(const edo_join *h)
{
	return h ? edo__task_of_join(h)->id : 0;
}

void edo_join_detach(edo_join *h)
{
	if (!h)
		return;
	edo__task *t = edo__task_of_join(h);
	uint64_t next = edo__st_drop_join_interest(&t->state);
	if (!(next & EDO__ST_JOIN_WAKER))
		edo_waker_drop(edo_waker_take(&edo__task_cold_of(t)->join_waker));
	task_drop_ref(t);
}

edo_abort_handle *edo_join_abort_handle(edo_join *h)
{
	if (!h)
		return NULL;
	edo__task *t = edo__task_of_join(h);
	edo__st_ref_inc(&t->state);
	return (edo_abort_handle *)t;
}

void edo_abort_handle_abort(edo_abort_handle *a)
{
	if (a)
		task_abort((edo__task *)a);
}

bool edo_abort_handle_is_finished(const edo_abort_handle *a)
{
	return edo_join_is_finished((const edo_join *)a);
}

uint64_t edo_abort_handle_id(const edo_abort_handle *a)
{
	return edo_join_id((const edo_join *)a);
}

void edo_abort_handle_drop(edo_abort_handle *a)
{
	if (a)
		task_drop_ref((edo__task *)a);
}

/* ---- the current task ------------------------------------------------------------ */

uint64_t edo_task_id(void)
{
	return edo__ctx.task ? edo__ctx.task->id : 0;
}

const char *edo_task_name(void)
{
	return edo__ctx.task ? edo__task_cold_of(edo__ctx.task)->name : NULL;
}

/* Ids come from a global counter in blocks of 256, so spawning threads do not
 * share a cache line per spawn.  Ids are unique, not dense. */
uint64_t edo__task_next_id(void)
{
	static atomic_uint_least64_t next_block = 1;
	static __thread uint64_t cur, end;
	if (cur == end) {
		cur = atomic_fetch_add_explicit(&next_block, 256, memory_order_relaxed);
		end = cur + 256;
	}
	return cur++;
}
