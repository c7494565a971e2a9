/* Fiber tasks: spawning, the poll that switches into a fiber, awaiting,
 * cancellation, and the blocking-style wrappers.  The picture and the
 * life cycle are in fiber.h; the public contract in include/edo/fiber.h.
 *
 * Rules this file keeps so that a migrating fiber stays correct (see the
 * migration rules in include/edo/fiber.h):
 *   - code on the fiber stack reads edo__fiber_cur once, before it
 *     switches, and afterwards uses only its local copy;
 *   - errno is handed over on the poller's side of the switch
 *     (fiber_resume), never through an address computed on the fiber's
 *     side before a switch.
 *
 * Two ways to wait (switch.h explains the costs):
 *   - park: edo_fiber_await(), edo_fiber_yield() and EDO_FIBER_AWAIT_POLL
 *     in the caller's code end with a tail call to edo__fiber_park(); the
 *     fiber resumes straight into their caller.  An awaited future is
 *     polled by fiber_poll() meanwhile, which resumes the fiber only when
 *     it is ready (or the await is cancelled).
 *   - suspend: the wrappers whose future or poll state lives in their own
 *     frame (sleep, read, ...) switch back and forth inside their loop.
 */
#include "fiber/fiber.h"

#include <errno.h>
#include <stdatomic.h>

#include "edo/error.h"
#include "fiber/switch.h"
#include "runtime/context.h"
#include "runtime/sched.h"

#ifdef EDO__TSAN
/* The instrumentation's function-exit hook: no public header has it, and
 * gcc's built-in declaration of it differs from clang's (none): renamed. */
void edo__tsan_func_exit(void) __asm__("__tsan_func_exit");
#endif

__thread edo__fiber *edo__fiber_cur __attribute__((tls_model("initial-exec")));

/* ---- thread identity ------------------------------------------------------------- */

/* noinline plus the empty asm that "may change" the pointer: no caller can
 * treat the result as a constant and reuse it across a switch. */
__attribute__((noinline)) int *edo_errno_location(void)
{
	int *p = &errno;
	__asm__ volatile("" : "+r"(p));
	return p;
}

__attribute__((noinline)) int edo_worker_id(void)
{
	edo__context *c = &edo__ctx;
	__asm__ volatile("" : "+r"(c));
	if (c->worker)
		return (int)c->worker - 1;
	if (c->sched && c->sched->flavor == EDO_RT_CURRENT_THREAD)
		return 0;
	return -1;
}

/* ---- switching ---------------------------------------------------------------------- */

/* This thread's &errno, looked up once (a PLT call each time otherwise).
 * Read only by the poller side, never across a switch. */
static __thread int *errno_p __attribute__((tls_model("initial-exec")));

static inline int *errno_here(void)
{
	int *p = errno_p;
	if (__builtin_expect(p == NULL, 0))
		p = errno_p = &errno;
	return p;
}

/* Poller side: run @f until it suspends or finishes.  errno is handed over
 * here, on the poller's side of the switch, so that it is always the errno
 * of the thread the fiber runs on now: the fiber's value goes in at every
 * resume and is saved at every suspension (other tasks run on this thread
 * in between). */
static inline void fiber_resume(edo__fiber *f, intptr_t rc)
{
	edo__fiber *outer = edo__fiber_cur;
	edo__fiber_cur = f;
#ifdef EDO__ASAN
	__sanitizer_start_switch_fiber(&f->asan_fake_sched, f->stack->lo, f->stack->size);
#endif
#ifdef EDO__TSAN
	f->tsan_sched = __tsan_get_current_fiber();
	__tsan_switch_to_fiber(f->tsan_fiber, 0);
#endif
	*errno_here() = f->saved_errno;
	edo__fiber_swap(&f->sched_sp, f->sp, (void *)rc);
	f->saved_errno = *errno_here();
#ifdef EDO__ASAN
	__sanitizer_finish_switch_fiber(f->asan_fake_sched, NULL, NULL);
#endif
	edo__fiber_cur = outer;
}

/* The stack has no guard (EDO__GUARD_CANARY): is its canary intact? */
__attribute__((noinline, cold)) static void fiber_check_canary(const edo__fiber *f)
{
	if (!edo__stack_canary_ok(f->stack))
		edo__guard_canary_broken(f);
}

/* Sanitizer bookkeeping around a switch from the fiber to the poller. */
static inline void fiber_san_leave(edo__fiber *f)
{
#ifdef EDO__ASAN
	__sanitizer_start_switch_fiber(&f->asan_fake_self, f->sched_bottom, f->sched_size);
#endif
#ifdef EDO__TSAN
	__tsan_switch_to_fiber(f->tsan_sched, 0);
#endif
	(void)f;
}

static inline void fiber_san_back(edo__fiber *f)
{
#ifdef EDO__ASAN
	/* A migrating fiber may be on another thread now: learn its stack. */
	__sanitizer_finish_switch_fiber(f->asan_fake_self, &f->sched_bottom, &f->sched_size);
#endif
	(void)f;
}

/* Fiber side: go back to the poller (which returns PENDING) until the next
 * poll resumes us.  The fiber's errno survives the other tasks that run on
 * this thread meanwhile: fiber_resume() keeps it. */
static inline void fiber_suspend(edo__fiber *f)
{
	if (__builtin_expect(f->canary, 0))
		fiber_check_canary(f);
	fiber_san_leave(f);
	edo__fiber_swap(&f->sp, f->sched_sp, NULL);
	fiber_san_back(f);
}

static void fiber_entry(void *unused, void *data)
{
	(void)unused;
	edo__fiber *f = data;
#ifdef EDO__ASAN
	__sanitizer_finish_switch_fiber(NULL, &f->sched_bottom, &f->sched_size);
#endif
	f->result = f->fn(f->arg);
	f->status = EDO__FIBER_DONE;
	fiber_check_canary(f);
#ifdef EDO__ASAN
	/* Leaving for good: NULL lets ASan free this fiber's fake stack. */
	__sanitizer_start_switch_fiber(NULL, f->sched_bottom, f->sched_size);
#endif
#ifdef EDO__TSAN
	/* This function never returns: pop its own frame off the sanitizer
	 * context's shadow stack, which the stack's next fiber reuses (else
	 * each fiber leaves a frame there, and 65536 of them overflow it). */
	edo__tsan_func_exit();
	__tsan_switch_to_fiber(f->tsan_sched, 0);
#endif
	edo__fiber_swap(&f->sp, f->sched_sp, NULL);
	__builtin_unreachable();
}

/* ---- the task's future ---------------------------------------------------------------- */

static void fiber_start(edo__fiber *f, edo__task *t)
{
	f->task = t;
	/* From now on an abort is delivered by a poll, so that the fiber runs
	 * its own cleanup (task.c). */
	t->flags |= EDO__TASK_POLL_CANCELLED;
	if (!f->migrate && edo__ctx.worker) {
		t->pin = edo__ctx.worker;
		f->pinned = true;
		edo__ctx.fibers_pinned++;
	}
	edo__guard_thread_init();
	f->sp = edo__fiber_make(f->stack->lo + f->stack->size, fiber_entry, f);
#ifdef EDO__TSAN
	if (!f->stack->tsan_fiber)
		f->stack->tsan_fiber = __tsan_create_fiber(0);
	f->tsan_fiber = f->stack->tsan_fiber;
#endif
	f->status = EDO__FIBER_RUNNING;
}

/* The fiber returned: release what it held, on the thread it ran on. */
static void fiber_finish(edo__fiber *f)
{
	if (f->pinned) {
		f->pinned = false;
		edo__ctx.fibers_pinned--;
	}
	edo__stack_put(f->stack);
	f->stack = NULL;
}

/* A fiber parked in edo_fiber_await(): poll its future here, on the
 * poller's side, as the fiber would after resuming; resume the fiber only
 * once the await is over.  Returns false if the future is still pending
 * (the fiber stays parked), else true with the await's result in *@rc. */
static inline bool fiber_park_poll(edo__fiber *f, edo_future *fut, intptr_t *rc)
{
	/* Cancelled; or pending while shutting down (nothing will wake us
	 * again): the await fails, dropping its future. */
	bool fail = __builtin_expect(f->cancelled, 0) && !f->shielded;
	if (!fail) {
		if (!fut->vt || edo_future_poll(fut, f->cx) == EDO_READY) {
			*rc = 0;
			f->parked = NULL;
			return true;
		}
		if (__builtin_expect(!f->hard, 1))
			return false;
	}
	edo_future_drop(fut);
	*rc = -ECANCELED;
	f->parked = NULL;
	return true;
}

/* The first poll (start the fiber, or end it unstarted if it was aborted)
 * and the last (it returned): the rare cases of fiber_poll(). */
__attribute__((noinline)) static edo_poll fiber_poll_cold(edo__fiber *f)
{
	edo__task *t = edo__ctx.task;
	if (f->status == EDO__FIBER_NEW) {
		if (atomic_load_explicit(&t->state, memory_order_acquire) & EDO__ST_CANCELLED) {
			/* Aborted before it ever ran: it never will. */
			f->cancelled = true;
			edo__stack_put(f->stack);
			f->stack = NULL;
			f->status = EDO__FIBER_DONE;
			t->stage = EDO__STAGE_CANCELLED;
			return EDO_READY;
		}
		fiber_start(f, t);
		fiber_resume(f, 0);
		if (f->status != EDO__FIBER_DONE)
			return EDO_PENDING;
	}
	fiber_finish(f);
	if (f->cancelled)
		t->stage = EDO__STAGE_CANCELLED;
	return EDO_READY;
}

static edo_poll fiber_poll(edo_future *base, edo_cx *cx)
{
	edo__fiber *f = (edo__fiber *)base;
	f->cx = cx;
	if (__builtin_expect(f->status != EDO__FIBER_RUNNING, 0))
		return fiber_poll_cold(f);
	if (atomic_load_explicit(&f->task->state, memory_order_acquire) & EDO__ST_CANCELLED)
		f->cancelled = true;
	intptr_t rc = 0;
	edo_future *fut = f->parked;
	if (fut && !fiber_park_poll(f, fut, &rc))
		return EDO_PENDING;
	/* This thread may resume fibers it never started (a migrating one,
	 * or a worker handed over by edo_block_in_place): it needs the
	 * alternate stack that reports a stack overflow too. */
	edo__guard_thread_init();
	fiber_resume(f, rc);
	if (__builtin_expect(f->status == EDO__FIBER_DONE, 0))
		return fiber_poll_cold(f);
	return EDO_PENDING;
}

/* Drop: runtime shutdown (or an abort that came before the first poll).
 * A suspended fiber is resumed, cancelled, until it returns: futures on its
 * stack may be linked into timer and reactor lists, and its code may hold
 * locks and descriptors, so its stack is never just freed. */
static void fiber_drop(edo_future *base)
{
	edo__fiber *f = (edo__fiber *)base;
	if (f->status == EDO__FIBER_NEW) {
		edo__stack_put(f->stack);
		f->stack = NULL;
		f->status = EDO__FIBER_DONE;
		return;
	}
	if (f->status == EDO__FIBER_DONE)
		return;
	edo__guard_thread_init();
	f->cancelled = true;
	f->hard = true;
	edo_cx cx = {edo_noop_waker()};
	while (f->status != EDO__FIBER_DONE) {
		f->cx = &cx;
		intptr_t rc = 0;
		/* Under `hard` a parked await always ends. */
		if (f->parked)
			(void)fiber_park_poll(f, f->parked, &rc);
		fiber_resume(f, rc);
	}
	fiber_finish(f);
}

/* For task dumps (src/runtime/trace/dump.c), which call it only while they
 * hold the task, so the fiber is suspended or not started. */
static const edo_future *fiber_inspect(const edo_future *base, const char **op, const char **file,
				       int *line)
{
	const edo__fiber *f = (const edo__fiber *)base;
	if (f->status == EDO__FIBER_NEW) {
		*op = "fiber (not started)";
		return NULL;
	}
	*op = f->op;
	*file = f->op_file;
	*line = f->op_line;
	return f->awaiting;
}

static const edo_future_info fiber_info = {
	.name = "fiber",
	.flags = EDO_FUTURE_INFO_FIBER,
	.inspect = fiber_inspect,
};

static const edo_future_vtable fiber_vt = {
	.poll = fiber_poll,
	.drop = fiber_drop,
	.info = &fiber_info,
};

/* ---- spawning ------------------------------------------------------------------------------ */

int edo__fiber_spawn_at(edo_handle *h, edo_fiber_fn fn, void *arg, const edo_fiber_opts *opts,
			edo_join **out, const char *file, int line)
{
	if (!fn)
		return -EINVAL;
	size_t size = edo__stack_round(opts ? opts->stack_size : 0);
	if (!size)
		return -EINVAL;
	if (!h && !edo__ctx.sched)
		return EDO_ENORUNTIME;
	edo__stack *st = edo__stack_get(size);
	if (!st)
		return -ENOMEM;
	edo__fiber init = {
		.base = {&fiber_vt},
		.stack = st,
		.fn = fn,
		.arg = arg,
		.migrate = opts && opts->migrate,
		.canary = st->guard == EDO__GUARD_CANARY,
	};
	edo_spawn_opts so = {
		.name = opts && opts->name ? opts->name : "fiber",
		.file = file,
		.line = file ? line : 0,
	};
	int rc = edo_spawn_on(h, &init.base, sizeof init, &so, out);
	if (rc < 0)
		edo__stack_put(st);
	return rc;
}

/* The functions behind the macros of the same names (include/edo/fiber.h). */
int(edo_fiber_spawn_on)(edo_handle *h, edo_fiber_fn fn, void *arg, const edo_fiber_opts *opts,
			edo_join **out)
{
	return edo__fiber_spawn_at(h, fn, arg, opts, out, NULL, 0);
}

int(edo_fiber_spawn)(edo_fiber_fn fn, void *arg, const edo_fiber_opts *opts, edo_join **out)
{
	return edo__fiber_spawn_at(NULL, fn, arg, opts, out, NULL, 0);
}

void *edo_join_fiber_result(edo_join *h)
{
	edo__fiber *f = edo_join_output(h);
	if (!f || f->base.vt != &fiber_vt)
		return NULL;
	return f->result;
}

/* ---- edo_fiber_block_on ------------------------------------------------------------- */

/* The future edo_fiber_block_on() blocks on: its first poll spawns the
 * fiber (so that nothing is spawned if edo_block_on() refuses), the others
 * poll its join handle. */
typedef struct fiber_main_fut {
	edo_future base;
	edo_handle *h;
	edo_fiber_fn fn;
	void *arg;
	const edo_fiber_opts *opts;
	const char *file;
	int line;
	edo_join *join;
	int rc;
} fiber_main_fut;

static edo_poll fiber_main_poll(edo_future *base, edo_cx *cx)
{
	fiber_main_fut *m = (fiber_main_fut *)base;
	if (!m->join) {
		m->rc = edo__fiber_spawn_at(m->h, m->fn, m->arg, m->opts, &m->join, m->file,
					    m->line);
		if (m->rc < 0)
			return EDO_READY;
	}
	return edo_join_poll(m->join, cx, &m->rc);
}

static const edo_future_vtable fiber_main_vt = {.poll = fiber_main_poll};

int edo__fiber_block_on_at(edo_runtime *rt, edo_fiber_fn fn, void *arg, const edo_fiber_opts *opts,
			   void **result, const char *file, int line)
{
	if (!rt || !fn)
		return -EINVAL;
	fiber_main_fut m = {
		.base = {&fiber_main_vt},
		.h = edo_runtime_handle(rt),
		.fn = fn,
		.arg = arg,
		.opts = opts,
		.file = file,
		.line = line,
	};
	if (!m.h)
		return -ENOMEM;
	int rc = edo_block_on(rt, &m.base);
	if (rc == 0)
		rc = m.rc;
	if (m.join) {
		if (rc == 0 && result)
			*result = edo_join_fiber_result(m.join);
		if (rc < 0)
			edo_join_abort(m.join); /* the runtime shut down under us */
		edo_join_detach(m.join);
	}
	edo_handle_drop(m.h);
	return rc;
}

int(edo_fiber_block_on)(edo_runtime *rt, edo_fiber_fn fn, void *arg, const edo_fiber_opts *opts,
			void **result)
{
	return edo__fiber_block_on_at(rt, fn, arg, opts, result, NULL, 0);
}

/* ---- awaiting --------------------------------------------------------------------------------- */

/* edo_fiber_await, naming the operation for task dumps. */
static inline __attribute__((always_inline)) int fiber_await(edo_future *fut, const char *op)
{
	edo__fiber *f = edo__fiber_cur;
	if (!f)
		return -EPERM;
	if (!fut)
		return -EINVAL;
	f->op = op;
	f->op_file = NULL;
	f->op_line = 0;
	f->awaiting = fut;
	for (;;) {
		if (f->cancelled && !f->shielded) {
			edo_future_drop(fut);
			return -ECANCELED;
		}
		if (!fut->vt || edo_future_poll(fut, f->cx) == EDO_READY)
			return 0;
		if (f->hard) {
			/* Shutting down: nothing will wake us again. */
			edo_future_drop(fut);
			return -ECANCELED;
		}
		fiber_suspend(f);
	}
}

/* Park the fiber on @fut (polled once first): the end of edo_fiber_await()
 * and of the waits built on it.  Must be inlined into a function that ends
 * with `return fiber_park_on(...)`, so that edo__fiber_park() is reached by
 * a tail call: the fiber is then resumed straight into the caller of that
 * function, once fiber_poll() has seen @fut ready (switch.h says what this
 * saves).  @fut must outlive the call: the caller's, or the fiber's own. */
static inline __attribute__((always_inline)) int fiber_park_on(edo__fiber *f, edo_future *fut,
							       const char *op)
{
	f->op = op;
	f->op_file = NULL;
	f->op_line = 0;
	f->awaiting = fut;
	if (__builtin_expect(f->cancelled, 0) && !f->shielded) {
		edo_future_drop(fut);
		return -ECANCELED;
	}
	if (!fut->vt || edo_future_poll(fut, f->cx) == EDO_READY)
		return 0;
	if (__builtin_expect(f->hard, 0)) {
		edo_future_drop(fut);
		return -ECANCELED;
	}
	if (__builtin_expect(f->canary, 0))
		fiber_check_canary(f);
	f->parked = fut;
#if defined(EDO__ASAN) || defined(EDO__TSAN)
	fiber_san_leave(f);
	int rc = edo__fiber_park(&f->sp, f->sched_sp);
	fiber_san_back(f);
	return rc;
#else
	return edo__fiber_park(&f->sp, f->sched_sp);
#endif
}

int edo_fiber_await(edo_future *fut)
{
	edo__fiber *f = edo__fiber_cur;
	if (!f)
		return -EPERM;
	if (!fut)
		return -EINVAL;
	return fiber_park_on(f, fut, "edo_fiber_await");
}

edo_cx *edo__fiber_poll_begin(int *rc)
{
	edo__fiber *f = edo__fiber_cur;
	if (!f) {
		*rc = -EPERM;
		return NULL;
	}
	if (f->hard_fail || (f->cancelled && !f->shielded)) {
		f->hard_fail = false;
		*rc = -ECANCELED;
		return NULL;
	}
	*rc = 0;
	return f->cx;
}

/* The wait of EDO_FIBER_AWAIT_POLL: @what, at @file:@line, for dumps. */
static inline __attribute__((always_inline)) void fiber_poll_wait(edo__fiber *f, const char *what,
								  const char *file, int line)
{
	f->op = what;
	f->op_file = file;
	f->op_line = line;
	f->awaiting = NULL;
}

/* EDO_FIBER_AWAIT_POLL in the caller's code: park, so that the fiber
 * resumes straight into the caller's loop, which polls again. */
void edo__fiber_poll_suspend_at(const char *what, const char *file, int line)
{
	edo__fiber *f = edo__fiber_cur;
	fiber_poll_wait(f, what, file, line);
	if (f->hard) {
		f->hard_fail = true;
		return;
	}
	if (__builtin_expect(f->canary, 0))
		fiber_check_canary(f);
#if defined(EDO__ASAN) || defined(EDO__TSAN)
	fiber_san_leave(f);
	(void)edo__fiber_park(&f->sp, f->sched_sp);
	fiber_san_back(f);
#else
	(void)edo__fiber_park(&f->sp, f->sched_sp);
#endif
}

void edo__fiber_poll_suspend(void)
{
	edo__fiber_poll_suspend_at("EDO_FIBER_AWAIT_POLL", NULL, 0);
}

/* EDO_FIBER_AWAIT_POLL for the wrappers below, whose loop polls again
 * after the switch back (a park would resume the wrapper, which then has
 * one more return to make); the dump names the wrapper. */
static inline void fiber_poll_suspend_here(const char *name)
{
	edo__fiber *f = edo__fiber_cur;
	fiber_poll_wait(f, name, NULL, 0);
	if (f->hard)
		f->hard_fail = true;
	else
		fiber_suspend(f);
}

#define FIBER_AWAIT_POLL_AS(name, expr)                                                            \
	__extension__({                                                                            \
		int rc_;                                                                           \
		edo_cx *cx;                                                                        \
		while ((cx = edo__fiber_poll_begin(&rc_)) != NULL && (expr) == EDO_PENDING)        \
			fiber_poll_suspend_here(name);                                             \
		rc_;                                                                               \
	})

int edo_fiber_yield(void)
{
	edo__fiber *f = edo__fiber_cur;
	if (!f)
		return -EPERM;
	f->yield = (edo_yield_now)EDO_YIELD_NOW_INIT;
	return fiber_park_on(f, &f->yield.base, "edo_fiber_yield");
}

int edo_fiber_join(edo_join *h)
{
	if (!h)
		return -EINVAL;
	int result = 0;
	int rc = FIBER_AWAIT_POLL_AS("edo_fiber_join", edo_join_poll(h, cx, &result));
	return rc < 0 ? rc : result;
}

ssize_t edo_fiber_read(edo_async_fd *a, void *buf, size_t len)
{
	if (!a)
		return -EINVAL;
	ssize_t n = 0;
	int rc = FIBER_AWAIT_POLL_AS("edo_fiber_read", edo_async_fd_poll_read(a, cx, buf, len, &n));
	return rc < 0 ? rc : n;
}

ssize_t edo_fiber_write(edo_async_fd *a, const void *buf, size_t len)
{
	if (!a)
		return -EINVAL;
	ssize_t n = 0;
	int rc = FIBER_AWAIT_POLL_AS("edo_fiber_write",
				     edo_async_fd_poll_write(a, cx, buf, len, &n));
	return rc < 0 ? rc : n;
}

int edo_fiber_wait_ready(edo_async_fd *a, uint32_t interest)
{
	if (!a || !interest ||
	    (interest &
	     ~(uint32_t)(EDO_INTEREST_READABLE | EDO_INTEREST_WRITABLE | EDO_INTEREST_PRIORITY)))
		return -EINVAL;
	edo_readiness r;
	edo_readiness_init(&r, a, interest);
	int rc = fiber_await(&r.base, "edo_fiber_wait_ready");
	return rc < 0 ? rc : (int)r.ready;
}

ssize_t edo_fiber_stream_read(edo_stream *s, void *buf, size_t len)
{
	if (!s)
		return -EINVAL;
	ssize_t n = 0;
	int rc = FIBER_AWAIT_POLL_AS("edo_fiber_stream_read",
				     edo_stream_poll_read(s, cx, buf, len, &n));
	return rc < 0 ? rc : n;
}

ssize_t edo_fiber_stream_write(edo_stream *s, const void *buf, size_t len)
{
	if (!s)
		return -EINVAL;
	ssize_t n = 0;
	int rc = FIBER_AWAIT_POLL_AS("edo_fiber_stream_write",
				     edo_stream_poll_write(s, cx, buf, len, &n));
	return rc < 0 ? rc : n;
}

ssize_t edo_fiber_stream_write_all(edo_stream *s, const void *buf, size_t len)
{
	if (!s || (!buf && len))
		return -EINVAL;
	size_t done = 0;
	while (done < len) {
		ssize_t n = edo_fiber_stream_write(s, (const char *)buf + done, len - done);
		if (n < 0)
			return n;
		done += (size_t)n;
	}
	return (ssize_t)len;
}

int edo_fiber_tcp_accept(edo_tcp_listener *l, edo_tcp_stream **out, edo_addr *peer)
{
	int result = 0;
	int rc = FIBER_AWAIT_POLL_AS("edo_fiber_tcp_accept",
				     edo_tcp_listener_poll_accept(l, cx, out, peer, &result));
	return rc < 0 ? rc : result;
}

int edo_fiber_tcp_connect(const edo_addr *addr, edo_tcp_stream **out)
{
	if (!edo__fiber_cur)
		return -EPERM;
	if (!addr || !out)
		return -EINVAL;
	edo_tcp_connect_fut c;
	int rc = fiber_await(edo_tcp_connect(&c, addr), "edo_fiber_tcp_connect");
	if (rc < 0)
		return rc;
	if (c.rc == 0)
		*out = c.stream;
	return c.rc;
}

int edo_fiber_sleep(uint64_t duration_ns)
{
	if (!edo__fiber_cur)
		return -EPERM;
	edo_sleep sl;
	edo_sleep_init(&sl, duration_ns);
	int rc = fiber_await(&sl.base, "edo_fiber_sleep");
	return rc < 0 ? rc : sl.result;
}

int edo_fiber_sleep_until(edo_instant deadline)
{
	if (!edo__fiber_cur)
		return -EPERM;
	edo_sleep sl;
	edo_sleep_until_init(&sl, deadline);
	int rc = fiber_await(&sl.base, "edo_fiber_sleep_until");
	return rc < 0 ? rc : sl.result;
}

int edo_fiber_await_timeout(edo_future *fut, uint64_t duration_ns)
{
	if (!edo__fiber_cur)
		return -EPERM;
	if (!fut)
		return -EINVAL;
	edo_timeout to;
	edo_timeout_init(&to, fut, duration_ns);
	/* Dropping the timeout (on cancellation) drops @fut too. */
	int rc = fiber_await(&to.base, "edo_fiber_await_timeout");
	return rc < 0 ? rc : to.result;
}

/* ---- cancellation --------------------------------------------------------------------------- */

bool edo_fiber_shield(bool on)
{
	edo__fiber *f = edo__fiber_cur;
	if (!f)
		return false;
	bool was = f->shielded;
	f->shielded = on;
	return was;
}

bool edo_fiber_is_cancelled(void)
{
	edo__fiber *f = edo__fiber_cur;
	if (!f)
		return false;
	return f->cancelled ||
	       (atomic_load_explicit(&f->task->state, memory_order_acquire) & EDO__ST_CANCELLED);
}

bool edo_in_fiber(void)
{
	return edo__fiber_cur != NULL;
}
