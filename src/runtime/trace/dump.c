/* Task dumps: every live task of a runtime, its state, spawn site, polls,
 * time since its last poll, and where it waits.
 *
 * Listing.  Under each owned-tasks shard lock, every task gets a reference
 * (so its cell outlives the lock) and is copied to an array.  The rest
 * happens outside the locks.
 *
 * Reading a frame.  Where a task waits is in its future (a coroutine's
 * `edo_as.line` and child, a fiber's current operation), which the worker
 * that polls the task writes without synchronisation.  So the dump reads it
 * only while it holds the task the way a poller does: a CAS takes an idle
 * task (not RUNNING, NOTIFIED or COMPLETE) to RUNNING, which no worker will
 * poll or drop, and the CAS's acquire pairs with the release of the
 * transition that made the task idle, so the last poll's writes are
 * visible.  Meanwhile, by the state protocol (state.h), a wake sets
 * NOTIFIED without queueing (the "poller" re-queues), an abort sets
 * NOTIFIED | CANCELLED.  Releasing clears RUNNING; if NOTIFIED or CANCELLED
 * came meanwhile, the dump's reference becomes the notification and the
 * task is scheduled, as a poller would, so no wake-up is lost and an abort
 * is still carried out on a worker.  A task that is running or scheduled
 * is listed without its frame (a scheduled task's notification is in a
 * queue: taking RUNNING then would make its worker drop that notification).
 *
 *   idle ──CAS──▶ RUNNING (dump reads the frame) ──CAS──▶ idle
 *                     │ wake/abort meanwhile               │
 *                     └──────── NOTIFIED set ──▶ schedule(task) with the dump's ref
 *
 * Dumps are serialised by one mutex, so two never race for a task.  A dump
 * must not overlap the runtime's shutdown: a task it holds would look
 * running to the shutdown sweep, which leaves such a task to its poller,
 * and the dump's hand-back would queue it where nothing runs any more.  So
 * shutdown closes dumps first (edo__trace_close_dumps, under the mutex):
 * it waits for the one in progress, and later ones fail.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "edo/async.h"
#include "edo/error.h"
#include "edo/trace.h"
#include "runtime/sched.h"
#include "runtime/scheduler/multi_thread/multi_thread.h"
#include "runtime/trace/trace.h"

static pthread_mutex_t dump_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- the list of tasks --------------------------------------------------------------- */

typedef struct task_list {
	edo__task **v;
	size_t n, cap;
} task_list;

static bool list_push(task_list *l, edo__task *t)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		edo__task **v = realloc(l->v, cap * sizeof(edo__task *));
		if (!v)
			return false;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = t;
	return true;
}

/* Every live task, each with a reference the caller drops. */
static int collect(edo__sched *s, task_list *l)
{
	edo__owned *o = &s->owned;
	for (uint32_t i = 0; i <= o->mask; i++) {
		edo__owned_shard *sh = &o->shards[i];
		pthread_mutex_lock(&sh->lock);
		for (edo__task *t = sh->head; t; t = t->owned_next) {
			if (!list_push(l, t)) {
				pthread_mutex_unlock(&sh->lock);
				return -ENOMEM;
			}
			edo__st_ref_inc(&t->state);
		}
		pthread_mutex_unlock(&sh->lock);
	}
	return 0;
}

static void drop_ref(edo__task *t)
{
	if (edo__st_ref_dec(&t->state))
		edo__task_dealloc(t);
}

/* ---- holding a task ---------------------------------------------------------------------- */

enum claim_result { CLAIMED, RUNNING, SCHEDULED, COMPLETE };

/* Take an idle task as a poller would, or say why not. */
static enum claim_result claim(edo__task *t)
{
	uint64_t cur = atomic_load_explicit(&t->state, memory_order_acquire);
	for (;;) {
		if (cur & EDO__ST_COMPLETE)
			return COMPLETE; /* finishing: not listed */
		if (cur & EDO__ST_RUNNING)
			return RUNNING;
		if (cur & EDO__ST_NOTIFIED)
			return SCHEDULED;
		if (atomic_compare_exchange_weak_explicit(&t->state, &cur, cur | EDO__ST_RUNNING,
							  memory_order_acq_rel,
							  memory_order_acquire))
			return CLAIMED;
	}
}

/* Give the task back.  True if the dump's reference became a notification
 * (a wake or an abort came meanwhile), so the caller must not drop it. */
static bool unclaim(edo__task *t)
{
	uint64_t cur = atomic_load_explicit(&t->state, memory_order_acquire);
	for (;;) {
		bool submit = (cur & (EDO__ST_NOTIFIED | EDO__ST_CANCELLED)) != 0;
		uint64_t next = cur & ~EDO__ST_RUNNING;
		if (submit)
			next |= EDO__ST_NOTIFIED;
		if (atomic_compare_exchange_weak_explicit(&t->state, &cur, next,
							  memory_order_acq_rel,
							  memory_order_acquire)) {
			if (submit)
				t->sched->vt->schedule(t->sched, t, false);
			return submit;
		}
	}
}

/* ---- where a task waits ------------------------------------------------------------------- */

/* The layout EDO_FRAME gives every coroutine frame. */
typedef struct frame_head {
	EDO_FRAME;
} frame_head;

static edo_task_kind kind_of(const edo_future *f)
{
	const edo_future_info *in = f->vt ? f->vt->info : NULL;
	if (!in)
		return EDO_TASK_FUTURE;
	if (in->flags & EDO_FUTURE_INFO_COROUTINE)
		return EDO_TASK_COROUTINE;
	if (in->flags & EDO_FUTURE_INFO_FIBER)
		return EDO_TASK_FIBER;
	return EDO_TASK_FUTURE;
}

/* Follow a future and what it awaits while they describe themselves. */
static void walk(const edo_future *f, edo_task_info *ti)
{
	while (f && f->vt && f->vt->info && ti->nframes < EDO_TASK_FRAMES_MAX) {
		const edo_future_info *in = f->vt->info;
		edo_task_frame *fr = &ti->frames[ti->nframes++];
		*fr = (edo_task_frame){.fn = in->name, .file = in->file};
		if (in->flags & EDO_FUTURE_INFO_COROUTINE) {
			const edo_async_state *as = &((const frame_head *)f)->edo_as;
			if (as->finished)
				break;
			fr->line = as->resume ? as->line : 0;
			f = as->child;
		} else if (in->inspect) {
			const char *op = NULL, *file = NULL;
			int line = 0;
			f = in->inspect(f, &op, &file, &line);
			if (op)
				fr->fn = op;
			if (file)
				fr->file = file;
			fr->line = line;
		} else {
			break;
		}
	}
}

/* Fill @ti from @t; false if @t is finishing (not listed).  *@ref_gone: the
 * dump's reference went to a run queue with the task (do not drop it; the
 * task may be gone already). */
static bool inspect(edo__sched *s, edo__task *t, edo_task_info *ti, uint64_t now_ns, bool *ref_gone)
{
	*ref_gone = false;
	edo__task_cold *c = edo__task_cold_of(t);
	memset(ti, 0, sizeof *ti);
	ti->id = t->id;
	edo__trace_copy_name(ti->name, c->name);
	ti->spawn_file = c->file;
	ti->spawn_line = c->line;
	ti->polls = atomic_load_explicit(&t->polls, memory_order_relaxed);
	ti->idle_ms = -1;
	if (ti->polls) {
		uint32_t last = atomic_load_explicit(&c->last_poll_ms, memory_order_relaxed);
		ti->idle_ms = (uint32_t)(edo__coarse_ms(now_ns) - last);
	}
	/* Every task of a runtime that times polls has a timing block. */
	if (s->trace && s->trace->timing) {
		edo__task_timing *tm = edo__task_timing_of(t);
		ti->busy_ns = atomic_load_explicit(&tm->busy_ns, memory_order_relaxed);
		uint64_t last = atomic_load_explicit(&tm->last_poll_ns, memory_order_relaxed);
		/* Exact only when every poll is timed; else the coarse stamp. */
		if (s->trace->sample == 1 && ti->polls && last && last <= now_ns)
			ti->idle_ms = (int64_t)((now_ns - last) / 1000000u);
	}
	ti->kind = EDO_TASK_KIND_UNKNOWN;
	switch (claim(t)) {
	case COMPLETE:
		return false;
	case RUNNING:
		ti->state = EDO_TASK_RUNNING;
		return true;
	case SCHEDULED:
		ti->state = EDO_TASK_SCHEDULED;
		return true;
	case CLAIMED:
		break;
	}
	ti->state = EDO_TASK_IDLE;
	const edo_future *f = edo__task_future(t);
	ti->kind = kind_of(f);
	walk(f, ti);
	*ref_gone = unclaim(t);
	return true;
}

void edo__trace_close_dumps(edo__sched *s)
{
	pthread_mutex_lock(&dump_lock);
	s->dumps_closed = true;
	pthread_mutex_unlock(&dump_lock);
}

static int by_id(const void *a, const void *b)
{
	uint64_t x = ((const edo_task_info *)a)->id, y = ((const edo_task_info *)b)->id;
	return x < y ? -1 : x > y;
}

int edo__trace_tasks(edo__sched *s, edo_task_info **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&dump_lock);
	if (s->dumps_closed) {
		pthread_mutex_unlock(&dump_lock);
		return EDO_ESHUTDOWN;
	}
	task_list l = {0};
	int rc = collect(s, &l);
	edo_task_info *v = NULL;
	if (rc == 0 && l.n) {
		v = malloc(l.n * sizeof *v);
		if (!v)
			rc = -ENOMEM;
	}
	size_t k = 0;
	uint64_t now = edo__mono_ns();
	for (size_t i = 0; i < l.n; i++) {
		edo__task *t = l.v[i];
		bool ref_gone = false;
		if (rc == 0 && inspect(s, t, &v[k], now, &ref_gone))
			k++;
		if (!ref_gone)
			drop_ref(t);
	}
	pthread_mutex_unlock(&dump_lock);
	free(l.v);
	if (rc < 0) {
		free(v);
		return rc;
	}
	if (k == 0) {
		free(v);
		return 0;
	}
	qsort(v, k, sizeof *v, by_id);
	*out = v;
	*n = k;
	return 0;
}

/* ---- text --------------------------------------------------------------------------------- */

static const char *state_text(edo_task_state s)
{
	return s == EDO_TASK_RUNNING ? "running" : s == EDO_TASK_SCHEDULED ? "scheduled" : "idle";
}

/* fprintf into a memory stream, whose errors show at fclose. */
__attribute__((format(printf, 2, 3))) static void put(FILE *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	/* The analyzer loses va_start across the format attribute: a false
	 * positive (clang-tidy 14). */
	(void)vfprintf(f, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
	va_end(ap);
}

int edo_task_info_format(const edo_task_info *t, char *buf, size_t len)
{
	if (!t || (!buf && len) || t->nframes > EDO_TASK_FRAMES_MAX)
		return -EINVAL;
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	if (!f)
		return -ENOMEM;
	put(f, "task %" PRIu64, t->id);
	if (t->name[0])
		put(f, " \"%.*s\"", (int)sizeof t->name, t->name);
	put(f, " %s, %u poll%s", state_text(t->state), t->polls, t->polls == 1 ? "" : "s");
	if (t->idle_ms < 0)
		put(f, ", never polled");
	else if (t->idle_ms < 10000)
		put(f, ", last poll %" PRId64 " ms ago", t->idle_ms);
	else
		put(f, ", last poll %.1f s ago", (double)t->idle_ms / 1000.0);
	if (t->busy_ns)
		put(f, ", busy %.3f ms", (double)t->busy_ns / 1e6);
	put(f, "\n");
	if (t->spawn_file)
		put(f, "    spawned at %s:%d\n", t->spawn_file, t->spawn_line);
	for (unsigned i = 0; i < t->nframes; i++) {
		const edo_task_frame *fr = &t->frames[i];
		const char *fn = fr->fn ? fr->fn : "?";
		const char *what = i == 0 ? "parked" : "  awaiting";
		if (fr->line && fr->file)
			put(f, "    %s at %s:%d in %s\n", what, fr->file, fr->line, fn);
		else if (i == 0 && t->polls == 0)
			put(f, "    not started (%s)\n", fn);
		else
			put(f, "    %s in %s\n", what, fn);
	}
	if (fclose(f) != 0) {
		free(text);
		return -ENOMEM;
	}
	if (len) {
		size_t c = size < len - 1 ? size : len - 1;
		memcpy(buf, text, c);
		buf[c] = 0;
	}
	free(text);
	return (int)size;
}

int edo__trace_dump(edo__sched *s, FILE *out)
{
	edo_task_info *v;
	size_t n;
	int rc = edo__trace_tasks(s, &v, &n);
	if (rc < 0)
		return rc;
	size_t idle = 0, sched = 0, running = 0;
	for (size_t i = 0; i < n; i++) {
		idle += v[i].state == EDO_TASK_IDLE;
		sched += v[i].state == EDO_TASK_SCHEDULED;
		running += v[i].state == EDO_TASK_RUNNING;
	}
	uint32_t workers = s->flavor == EDO_RT_MULTI_THREAD ? edo__mt_num_workers(s) : 1;
	int w = fprintf(out,
			"edo task dump: %s runtime, %u worker%s, %zu task%s (%zu idle, %zu "
			"scheduled, %zu running)\n",
			s->flavor == EDO_RT_MULTI_THREAD ? "multi-thread" : "current-thread",
			workers, workers == 1 ? "" : "s", n, n == 1 ? "" : "s", idle, sched,
			running);
	int err = 0;
	for (size_t i = 0; i < n && w >= 0; i++) {
		char line[2048];
		int len = edo_task_info_format(&v[i], line, sizeof line);
		if (len < 0) {
			err = len; /* -ENOMEM: not a failed write */
			break;
		}
		w = fputs(line, out);
	}
	free(v);
	if (w < 0 || fflush(out) != 0)
		return -EIO;
	return err < 0 ? err : (int)n;
}

int edo_runtime_tasks(edo_runtime *rt, edo_task_info **out, size_t *n)
{
	if (!rt || !out || !n)
		return -EINVAL;
	return edo__trace_tasks(edo__runtime_sched(rt), out, n);
}

int edo_runtime_dump(edo_runtime *rt, FILE *out)
{
	if (!rt || !out)
		return -EINVAL;
	return edo__trace_dump(edo__runtime_sched(rt), out);
}
