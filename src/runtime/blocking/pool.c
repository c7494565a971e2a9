/* The blocking pool: threads for work that blocks (a synchronous syscall, a
 * CPU-heavy computation, a library without an async API), so that it never
 * stalls a worker.
 *
 * A blocking task is an ordinary task (same cell, state word, join handle)
 * whose future calls the user's function once.  The pool is a scheduler of
 * its own: scheduling a blocking task appends it to the pool's queue under
 * one mutex, wakes an idle thread, or starts a new thread if none is idle
 * and fewer than max_blocking_threads (512) exist.  Idle threads exit after
 * blocking_keep_alive_ms (10 s).
 *
 * Idle threads wait in a stack, each on its own condition variable, and a
 * new job wakes the one that went idle last (as Go's idle M list, and
 * ClickHouse's pool since 2026).  A shared condition variable wakes them in
 * turn: under a steady trickle of jobs every thread a burst once started
 * then gets a job before its keep-alive runs out, so the pool never shrinks,
 * and each job runs on the thread whose stack is coldest.  With the stack,
 * the threads a trickle needs stay hot and the rest reach their keep-alive.
 *
 * A job is often scheduled by the task that the previous job's completion
 * woke, while the thread that ran it has not yet got back to the idle
 * stack.  Waking another thread for it, or starting one, would cost more
 * than waiting the microseconds the finishing thread needs: such a thread is
 * counted in `finishing` from the moment its function returns, and a job
 * that finds a finishing thread not yet counted on (`claimed`) is left in
 * the queue for it, before any idle thread is woken.  A returning thread
 * takes the queue's jobs until it is empty, so every claimed job is taken.
 * A thread is not counted while user code may still run on it before it
 * returns (runtime hooks, task-local destructors), since that code could
 * wait for the very job it would be counted on for.
 *
 * Shutdown: queued tasks are cancelled (their join handles report
 * -ECANCELED) except mandatory ones, which still run; tasks already running
 * finish.  The runtime then waits for the pool's threads (forever, or up to
 * the shutdown timeout).  Each thread holds a reference on the pool, so a
 * thread still running when a timed shutdown gives up is never left with
 * freed memory.
 */
#define _GNU_SOURCE
#include "runtime/blocking/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edo/error.h"
#include "runtime/context.h"
#include "runtime/sched.h"
#include "runtime/task/task.h"
#include "runtime/time/time.h"

/* An idle thread, on its own stack while it waits. */
typedef struct pool_idler {
	pthread_cond_t cv;
	bool woken; /* taken off the stack by pool_schedule */
	struct pool_idler *below, *above;
} pool_idler;

typedef struct edo__pool {
	edo__sched base;
	edo__sched *runtime; /* the scheduler blocking code may spawn onto */
	pthread_mutex_t lock;
	pthread_condattr_t cv_attr; /* CLOCK_MONOTONIC, for the idlers' cvs */
	pthread_cond_t exited;      /* shutdown waits here */
	pool_idler *idle_top;       /* the idle threads, the latest on top */
	edo__task *head, *tail;
	size_t queued;
	unsigned threads, idle, max_threads;
	unsigned exiting; /* threads leaving, in their on_thread_stop hook */
	unsigned keep_alive_ms;
	atomic_uint finishing; /* threads whose job's function has returned */
	unsigned claimed;      /* queued jobs left for them (<= finishing) */
	size_t stack_size;
	bool closed;
	char thread_name[16];
} edo__pool;

/* The future inside a blocking task. */
typedef struct blocking_fut {
	edo_future base;
	void *(*fn)(void *);
	void *arg;
	void (*on_cancel)(void *arg); /* if cancelled before it ran */
	edo__clock *inhibits;         /* auto-advance held back until done */
	void *result;
	bool mandatory;
	bool ran;
} blocking_fut;

/* The pool a pool thread belongs to, and whether it is counted in that
 * pool's `finishing`. */
static __thread struct edo__pool *tl_pool;
static __thread bool tl_finishing;
/* The clock whose auto-advance the job that just ran on this thread held
 * back: released once the task has completed (its joiner woken). */
static __thread edo__clock *tl_allow;

static edo_poll blocking_poll(edo_future *f, edo_cx *cx)
{
	(void)cx;
	blocking_fut *b = (blocking_fut *)f;
	b->ran = true;
	b->result = b->fn(b->arg);
	tl_allow = b->inhibits;
	/* What is left (completing the task, waking its joiner) is short,
	 * unless it runs user code that may itself wait: runtime hooks or
	 * task-local destructors (a waker must not block: edo/future.h). */
	edo__task *t = edo__ctx.task;
	if (tl_pool && !tl_finishing && !tl_pool->base.task_hooks && t &&
	    !edo__task_cold_of(t)->locals) {
		atomic_fetch_add_explicit(&tl_pool->finishing, 1, memory_order_relaxed);
		tl_finishing = true;
	}
	return EDO_READY;
}

static void blocking_drop(edo_future *f)
{
	blocking_fut *b = (blocking_fut *)f;
	if (b->ran)
		return;
	if (b->on_cancel)
		b->on_cancel(b->arg);
	if (b->inhibits)
		edo__clock_allow_auto_advance(b->inhibits);
}

static const edo_future_vtable blocking_vt = {.poll = blocking_poll, .drop = blocking_drop};

static edo__pool *pool_of(edo__sched *s)
{
	return (edo__pool *)s;
}

static void *pool_thread(void *arg);
static bool is_mandatory(edo__task *t);

/* Run a job's task (on a pool thread, or at shutdown on the freeing
 * thread).  Auto-advance is allowed again only now that the task has
 * completed: a park of the runtime that sees the count drop also sees the
 * joiner's wake (edo__clock_allow_auto_advance). */
static void run_job(edo__task *t)
{
	/* Saved: a job run inline (no pool thread) may complete into user
	 * code that runs another inline, nested in this one. */
	edo__clock *outer = tl_allow;
	tl_allow = NULL;
	edo__task_run(t);
	if (tl_allow)
		edo__clock_allow_auto_advance(tl_allow);
	tl_allow = outer;
}

static void timespec_after_ms(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Called with the lock held: start one more thread. */
static void spawn_thread_locked(edo__pool *p)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (p->stack_size)
		pthread_attr_setstacksize(&attr, p->stack_size);
	/* A thread keeps the pool and the runtime alive while it runs. */
	edo__sched_ref(&p->base);
	edo__sched_ref(p->runtime);
	pthread_t th;
	if (pthread_create(&th, &attr, pool_thread, p) == 0) {
		p->threads++;
	} else {
		/* Out of threads: the queued task waits for a busy thread. */
		atomic_fetch_sub_explicit(&p->base.refs, 1, memory_order_relaxed);
		atomic_fetch_sub_explicit(&p->runtime->refs, 1, memory_order_relaxed);
	}
	pthread_attr_destroy(&attr);
}

static edo__task *pop_locked(edo__pool *p)
{
	edo__task *t = p->head;
	if (t) {
		p->head = t->next;
		if (!p->head)
			p->tail = NULL;
		t->next = NULL;
		p->queued--;
	}
	return t;
}

static void pool_schedule(edo__sched *s, edo__task *t, bool yield)
{
	(void)yield;
	edo__pool *p = pool_of(s);
	t->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->closed) {
		/* A spawn that got past the shutdown checks and bound its task
		 * before the sweep, but schedules after it: a late spawn,
		 * cancelled (no thread starts after shutdown). */
		pthread_mutex_unlock(&p->lock);
		edo__task_cancel_notified(t);
		return;
	}
	if (p->tail)
		p->tail->next = t;
	else
		p->head = t;
	p->tail = t;
	p->queued++;
	pool_idler *i = p->idle_top;
	if (atomic_load_explicit(&p->finishing, memory_order_relaxed) -
		    (tl_pool == p && tl_finishing) >
	    p->claimed) {
		/* A thread about to come back takes it, with no wake at all
		 * (not the caller: a waker run by a finishing thread may wait
		 * for this job). */
		p->claimed++;
	} else if (i) {
		/* The latest to go idle; signalled under the lock, while its
		 * waiter (whose stack holds it) cannot have left. */
		p->idle_top = i->below;
		if (p->idle_top)
			p->idle_top->above = NULL;
		p->idle--;
		i->woken = true;
		pthread_cond_signal(&i->cv);
	} else if (p->threads - p->exiting < p->max_threads) {
		spawn_thread_locked(p);
	}
	if (p->threads - p->exiting > 0) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	/* No thread could be started and none is left to take the queue
	 * (thread creation failed: RLIMIT_NPROC, memory): the jobs would wait
	 * for ever.  A mandatory one runs here, on the scheduling thread, as
	 * at shutdown; the others are cancelled (their joins report
	 * -ECANCELED). */
	edo__task *q = NULL, **tail = &q;
	while ((t = pop_locked(p))) {
		*tail = t;
		tail = &t->next;
	}
	pthread_mutex_unlock(&p->lock);
	while ((t = q)) {
		q = t->next;
		t->next = NULL;
		if (is_mandatory(t))
			run_job(t);
		else
			edo__task_cancel_notified(t);
	}
}

static void *pool_thread(void *arg)
{
	edo__pool *p = arg;
	char name[16];
	(void)snprintf(name, sizeof name, "%s", p->thread_name); /* truncated to 15 on purpose */
	pthread_setname_np(pthread_self(), name);
	/* Blocking code may spawn onto the runtime (remotely) and has no budget. */
	edo__ctx = (edo__context){.sched = p->runtime, .blocking = true};
	tl_pool = p;
	edo__sched *hs = &p->base; /* the pool has the runtime's hooks */
	if (hs->hooks.on_thread_start)
		hs->hooks.on_thread_start(hs->hooks_ud);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		edo__task *t = pop_locked(p);
		if (t) {
			pthread_mutex_unlock(&p->lock);
			run_job(t);
			pthread_mutex_lock(&p->lock);
			if (tl_finishing) {
				tl_finishing = false;
				unsigned f = atomic_fetch_sub_explicit(&p->finishing, 1,
								       memory_order_relaxed) -
					     1;
				if (p->claimed > f)
					p->claimed = f; /* this thread takes the rest */
			}
			continue;
		}
		if (p->closed)
			break;
		struct timespec deadline;
		timespec_after_ms(&deadline, p->keep_alive_ms);
		pool_idler me = {.woken = false, .below = p->idle_top, .above = NULL};
		pthread_cond_init(&me.cv, &p->cv_attr);
		if (p->idle_top)
			p->idle_top->above = &me;
		p->idle_top = &me;
		p->idle++;
		int rc = 0;
		while (!me.woken && !p->closed && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&me.cv, &p->lock, &deadline);
		if (!me.woken) {
			/* Timed out or closing: still on the stack, anywhere. */
			if (me.above)
				me.above->below = me.below;
			else
				p->idle_top = me.below;
			if (me.below)
				me.below->above = me.above;
			p->idle--;
		}
		pthread_cond_destroy(&me.cv);
		if (rc == ETIMEDOUT && !me.woken && !p->head)
			break; /* idle for keep_alive: exit */
	}
	/* The stop hook runs before this thread stops counting (shutdown waits
	 * for the count, and the hook's data may go once shutdown returns), but
	 * outside the lock (a hook may read metrics); meanwhile `exiting` keeps
	 * it from counting against max_threads. */
	if (hs->hooks.on_thread_stop) {
		p->exiting++;
		pthread_mutex_unlock(&p->lock);
		hs->hooks.on_thread_stop(hs->hooks_ud);
		pthread_mutex_lock(&p->lock);
		p->exiting--;
	}
	p->threads--;
	pthread_cond_broadcast(&p->exited);
	pthread_mutex_unlock(&p->lock);
	edo__ctx = (edo__context){0};
	tl_pool = NULL;
	edo__sched *rt = p->runtime;
	edo__sched_unref(&p->base);
	edo__sched_unref(rt);
	return NULL;
}

static void pool_destroy(edo__sched *s)
{
	edo__pool *p = pool_of(s);
	pthread_mutex_destroy(&p->lock);
	pthread_condattr_destroy(&p->cv_attr);
	pthread_cond_destroy(&p->exited);
	edo__owned_destroy(&s->owned);
	free(p);
}

static const edo__sched_vt pool_vt = {
	.schedule = pool_schedule,
	.destroy = pool_destroy,
};

int edo__pool_new(const edo_runtime_builder *b, edo__sched *runtime, edo__sched **out)
{
	edo__pool *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	int rc = edo__sched_init(&p->base, &pool_vt, b, 8, false);
	if (rc < 0) {
		free(p);
		return rc;
	}
	p->runtime = runtime;
	atomic_init(&p->finishing, 0);
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&p->cv_attr);
	pthread_condattr_setclock(&p->cv_attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->exited, &p->cv_attr);
	p->max_threads = b->max_blocking_threads ? b->max_blocking_threads : 512;
	p->keep_alive_ms = b->blocking_keep_alive_ms ? b->blocking_keep_alive_ms : 10000;
	p->stack_size = b->thread_stack_size;
	(void)snprintf(p->thread_name, sizeof p->thread_name, "%s", "edo-blocking");
	*out = &p->base;
	return 0;
}

static bool is_mandatory(edo__task *t)
{
	blocking_fut *b = (blocking_fut *)edo__task_future(t);
	return b->base.vt == &blocking_vt && b->mandatory;
}

int edo__pool_shutdown(edo__sched *s, int64_t timeout_ms)
{
	edo__pool *p = pool_of(s);
	atomic_store(&s->shutdown, true);
	edo__owned_close(&s->owned);
	/* Cancel queued tasks except mandatory ones; running ones finish. */
	for (uint32_t i = 0; i <= s->owned.mask; i++) {
		edo__task *t;
		while ((t = edo__owned_pop(&s->owned, i))) {
			if (is_mandatory(t))
				edo__task_drop_notified(t); /* the list's ref; it still runs */
			else
				edo__task_shutdown(t);
		}
	}
	pthread_mutex_lock(&p->lock);
	p->closed = true;
	for (pool_idler *i = p->idle_top; i; i = i->below)
		pthread_cond_signal(&i->cv);
	int rc = 0;
	if (timeout_ms < 0) {
		while (p->threads)
			pthread_cond_wait(&p->exited, &p->lock);
	} else {
		struct timespec deadline;
		timespec_after_ms(&deadline, (uint64_t)timeout_ms);
		while (p->threads && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&p->exited, &p->lock, &deadline);
	}
	bool done = p->threads == 0;
	/* No thread left to run what is still queued (the threads could not
	 * be started): a mandatory job runs here, as it would have on a pool
	 * thread; the others were cancelled above, or are cancelled now. */
	edo__task *t;
	while (done && (t = pop_locked(p))) {
		pthread_mutex_unlock(&p->lock);
		if (is_mandatory(t))
			run_job(t);
		else
			edo__task_cancel_notified(t);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	/* The runtime's scheduler keeps its reference until it is destroyed. */
	return done ? 0 : -ETIMEDOUT;
}

size_t edo__pool_threads(edo__sched *s)
{
	edo__pool *p = pool_of(s);
	pthread_mutex_lock(&p->lock);
	size_t n = p->threads;
	pthread_mutex_unlock(&p->lock);
	return n;
}

size_t edo__pool_idle_threads(edo__sched *s)
{
	edo__pool *p = pool_of(s);
	pthread_mutex_lock(&p->lock);
	size_t n = p->idle;
	pthread_mutex_unlock(&p->lock);
	return n;
}

size_t edo__pool_queue_depth(edo__sched *s)
{
	edo__pool *p = pool_of(s);
	pthread_mutex_lock(&p->lock);
	size_t n = p->queued;
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* ---- the public API -------------------------------------------------------------- */

int edo_spawn_blocking_on(edo_handle *h, void *(*fn)(void *), void *arg, unsigned flags,
			  edo_join **out)
{
	return edo__spawn_blocking_cleanup(h, fn, arg, flags, NULL, out);
}

int edo__spawn_blocking_cleanup(edo_handle *h, void *(*fn)(void *), void *arg, unsigned flags,
				void (*on_cancel)(void *), edo_join **out)
{
	edo__sched *s = h ? h : edo__ctx.sched;
	if (!s)
		return EDO_ENORUNTIME;
	if (!fn || (flags & ~(unsigned)EDO_BLOCKING_MANDATORY))
		return -EINVAL;
	if (!s->blocking)
		return -ENOTSUP;
	if (atomic_load_explicit(&s->shutdown, memory_order_relaxed))
		return EDO_ESHUTDOWN;
	/* On a runtime whose paused clock auto-advances, the clock waits for
	 * the job (as Tokio's test-util does): idle does not mean done. */
	edo__clock *c = s->has_driver && s->driver.clock->auto_advance ? s->driver.clock : NULL;
	blocking_fut f = {.base = {&blocking_vt},
			  .fn = fn,
			  .arg = arg,
			  .on_cancel = on_cancel,
			  .inhibits = c,
			  .mandatory = (flags & EDO_BLOCKING_MANDATORY) != 0};
	if (c)
		edo__clock_inhibit_auto_advance(c);
	int rc = edo__sched_spawn(s->blocking, &f.base, sizeof f, NULL, out);
	if (rc < 0 && c)
		edo__clock_allow_auto_advance(c); /* no task: nothing dropped */
	return rc;
}

int edo_spawn_blocking(void *(*fn)(void *), void *arg, edo_join **out)
{
	return edo_spawn_blocking_on(NULL, fn, arg, 0, out);
}

void *edo_join_blocking_result(edo_join *h)
{
	blocking_fut *b = edo_join_output(h);
	return b && b->base.vt == &blocking_vt ? b->result : NULL;
}
