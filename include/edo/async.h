/* Edo — stackless coroutines: write a future as straight-line C.
 *
 * The macros below turn a function plus a frame struct into a state machine,
 * which is what the Rust compiler does for an `async fn`.  The frame *is* the
 * future (it starts with EDO_FRAME), so a coroutine can be spawned as a task,
 * awaited by another coroutine, awaited by a fiber, or polled by hand.
 *
 *     typedef struct fetch_frame {
 *         EDO_FRAME;
 *         int fd;                 // argument, set by the initialiser
 *         char buf[512];          // "locals" that live across awaits
 *         size_t n;
 *         edo_yield_now step;     // a child future stored inline
 *         char *scratch;          // a resource the cleanup releases
 *         int err;                // output
 *     } fetch_frame;
 *
 *     static void fetch_cleanup(fetch_frame *self) { free(self->scratch); }
 *
 *     EDO_ASYNC(fetch, fetch_frame, fetch_cleanup)
 *     {
 *         EDO_BEGIN();
 *         self->scratch = malloc(64);
 *         EDO_AWAIT_POLL(some_poll_read(self->fd, cx, self->buf, sizeof self->buf, &self->n));
 *         if (self->n == 0) { self->err = -EIO; EDO_RETURN(); }
 *         self->step = (edo_yield_now)EDO_YIELD_NOW_INIT;
 *         EDO_AWAIT(&self->step);
 *         EDO_END();
 *     }
 *
 *     fetch_frame f = { EDO_FRAME_INIT(fetch), .fd = fd };   // or EDO_SPAWN(&h, fetch, .fd = fd)
 *
 * The rules:
 *  1. Everything that lives across an await lives in `self->`.  C locals are
 *     gone after each suspension (the compiler may warn, it may not).
 *  2. EDO_BEGIN() is the first statement of the body (a CI lint checks it,
 *     and EDO_END() fails to compile without it).
 *  3. Initialise frames with designated initialisers (EDO_FRAME_INIT first),
 *     so that every other field starts at zero.
 *  4. The cleanup (may be NULL) runs exactly once: when the body completes,
 *     at EDO_RETURN(), or when the frame is dropped while pending.  It is
 *     synchronous, like Rust's Drop: it must not await.
 *  5. Dropping a pending frame first drops the child it is awaiting, then
 *     runs the cleanup — so dropping a parent drops the whole tree.  Children
 *     that are stored in the frame but not being awaited are the cleanup's to
 *     drop (edo_future_drop() is idempotent, so dropping twice is safe).
 *  6. Awaits may sit anywhere in the body, including inside `switch`, loops
 *     and nested blocks (this is the computed-goto backend; Edo never ships
 *     a switch(__LINE__) backend), but not inside a nested function or a
 *     statement expression that the body does not own.
 *
 * The frame records the source line it is parked at (`edo_as.line`), for
 * debuggers and task dumps; the vtable's `info` names the coroutine and its
 * file and marks it as a coroutine (EDO_FUTURE_INFO_COROUTINE), so a task
 * dump (edo/trace.h) prints "parked at file.c:123 in fn", and follows
 * EDO_AWAIT into child coroutines.
 *
 * Requires GNU C (labels as values): gcc and clang both provide it.
 */
#ifndef EDO_ASYNC_H
#define EDO_ASYNC_H

#include <stddef.h>

#include "edo/future.h"
#include "edo/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The coroutine bookkeeping inside every frame.  Private: use the macros. */
typedef struct edo_async_state {
	void *resume;           /* label to resume at; NULL = not started */
	edo_future *child;      /* the child being awaited, or NULL */
	int line;               /* source line of the current suspension point */
	unsigned char finished; /* completed or dropped; cleanup has run */
} edo_async_state;

/** First member of every coroutine frame: the frame is a future. */
#define EDO_FRAME                                                                                  \
	edo_future edo_base;                                                                       \
	edo_async_state edo_as

/** Designated initialiser of a frame for the coroutine @fn. */
#define EDO_FRAME_INIT(fn) .edo_base = {&fn##_vt}

#if defined(__clang__)
#define EDO__ASYNC_ATTR __attribute__((noinline))
#else
/* gcc may clone a function for IPA; a label address stored by one clone must
 * never be resumed by another. */
#define EDO__ASYNC_ATTR __attribute__((noinline, noclone))
#endif

#define EDO__CAT_(a, b) a##b
#define EDO__CAT(a, b) EDO__CAT_(a, b)
#define EDO__LABEL EDO__CAT(edo__l_, __COUNTER__)

/* Runs the drop protocol of a coroutine frame: child first, then cleanup. */
static inline void edo__async_finish(edo_async_state *as, void (*cleanup)(void *), void *frame)
{
	if (as->finished)
		return;
	as->finished = 1;
	if (as->child) {
		edo_future_drop(as->child);
		as->child = NULL;
	}
	if (cleanup)
		cleanup(frame);
}

/**
 * EDO_ASYNC_DECL(fn, frame_t) - declare a coroutine defined with
 * EDO_ASYNC_PUBLIC in another file (put it in a header).
 */
#define EDO_ASYNC_DECL(fn, frame_t)                                                                \
	typedef frame_t fn##_frame;                                                                \
	extern const edo_future_vtable fn##_vt;                                                    \
	edo_poll fn(frame_t *self, edo_cx *cx)

#define EDO__ASYNC_DEFINE(linkage, fn, frame_t, cleanup)                                           \
	typedef frame_t fn##_frame;                                                                \
	linkage edo_poll fn(frame_t *self, edo_cx *cx);                                            \
	static edo_poll fn##__poll(edo_future *f, edo_cx *cx)                                      \
	{                                                                                          \
		return fn((frame_t *)f, cx);                                                       \
	}                                                                                          \
	static void fn##__drop(edo_future *f)                                                      \
	{                                                                                          \
		frame_t *s_ = (frame_t *)f;                                                        \
		void (*c_)(frame_t *) = cleanup;                                                   \
		edo__async_finish(&s_->edo_as, (void (*)(void *))c_, s_);                          \
	}                                                                                          \
	static const edo_future_info fn##__info = {#fn, __FILE__, EDO_FUTURE_INFO_COROUTINE,       \
						   NULL};                                          \
	linkage const edo_future_vtable fn##_vt = {fn##__poll, fn##__drop, &fn##__info};           \
	EDO__ASYNC_ATTR linkage edo_poll fn(frame_t *self, edo_cx *cx)

/**
 * EDO_ASYNC(fn, frame_t, cleanup) { EDO_BEGIN(); ... EDO_END(); }
 *
 * Defines the coroutine @fn over the frame type @frame_t, with internal
 * linkage: `edo_poll fn(frame_t *self, edo_cx *cx)`, its vtable `fn##_vt`
 * and the typedef `fn##_frame`.  @cleanup is `void cleanup(frame_t *)` or
 * NULL.  Inside the body, `self` is the frame and `cx` the poll context.
 */
#define EDO_ASYNC(fn, frame_t, cleanup) EDO__ASYNC_DEFINE(static, fn, frame_t, cleanup)

/** EDO_ASYNC_PUBLIC - EDO_ASYNC with external linkage (see EDO_ASYNC_DECL). */
#define EDO_ASYNC_PUBLIC(fn, frame_t, cleanup) EDO__ASYNC_DEFINE(, fn, frame_t, cleanup)

/** EDO_BEGIN() - the first statement of every coroutine body. */
/* clang-format 14 spaces out the computed `goto *`. */
/* clang-format off */
#define EDO_BEGIN()                                                                                \
	do {                                                                                       \
		(void)cx; /* a body with no await may not use cx */                                \
		(void)&&edo__begin; /* clang: an indirect goto needs a label address */            \
		if (self->edo_as.finished)                                                         \
			return EDO_READY;                                                          \
		if (self->edo_as.resume)                                                           \
			goto *self->edo_as.resume;                                                 \
	} while (0);                                                                               \
	edo__begin:
/* clang-format on */

/**
 * EDO_AWAIT_POLL(expr) - suspend until the poll expression @expr returns
 * EDO_READY.  @expr is evaluated again on every resume, so it must be a
 * stateless poll function such as edo_join_poll(self->h, cx, &self->rc);
 * its out-parameters must point into `self`.
 */
#define EDO_AWAIT_POLL(expr) EDO__AWAIT_POLL(expr, EDO__LABEL)
#define EDO__AWAIT_POLL(expr, L)                                                                   \
	do {                                                                                       \
		self->edo_as.resume = &&L;                                                         \
		self->edo_as.line = __LINE__;                                                      \
	L:                                                                                         \
		if ((expr) == EDO_PENDING)                                                         \
			return EDO_PENDING;                                                        \
	} while (0)

/**
 * EDO_AWAIT(fut) - suspend until the child future @fut (a pointer to a
 * future stored in the frame: a coroutine frame, an edo_yield_now, ...) is
 * READY.  If the parent is dropped meanwhile, the child is dropped first.
 * Awaiting an empty slot completes at once.
 */
#define EDO_AWAIT(fut) EDO__AWAIT(fut, EDO__LABEL)
#define EDO__AWAIT(fut, L)                                                                         \
	do {                                                                                       \
		self->edo_as.child = (edo_future *)(fut);                                          \
		self->edo_as.resume = &&L;                                                         \
		self->edo_as.line = __LINE__;                                                      \
	L:                                                                                         \
		if (self->edo_as.child->vt &&                                                      \
		    edo_future_poll(self->edo_as.child, cx) == EDO_PENDING)                        \
			return EDO_PENDING;                                                        \
		self->edo_as.child = NULL;                                                         \
	} while (0)

/**
 * EDO_YIELD() - let other tasks (and the I/O and timer drivers) run, then
 * continue.  The wake is deferred until after the next driver turn.
 */
#define EDO_YIELD() EDO__YIELD(EDO__LABEL)
#define EDO__YIELD(L)                                                                              \
	do {                                                                                       \
		self->edo_as.resume = &&L;                                                         \
		self->edo_as.line = __LINE__;                                                      \
		edo_defer_wake(cx);                                                                \
		return EDO_PENDING;                                                                \
	L:;                                                                                        \
	} while (0)

/** EDO_RETURN() - finish now: run the cleanup and return EDO_READY. */
#define EDO_RETURN() goto edo__done

/** EDO_END() - the last statement of every coroutine body. */
#define EDO_END()                                                                                  \
	goto edo__done;                                                                            \
	goto edo__begin; /* compile error here: EDO_BEGIN() is missing */                          \
	edo__done:                                                                                 \
	self->edo_as.line = __LINE__;                                                              \
	edo__async_finish_frame(&self->edo_base);                                                  \
	return EDO_READY

/* EDO_END's completion step: the generated drop runs the cleanup once. */
static inline void edo__async_finish_frame(edo_future *base)
{
	base->vt->drop(base);
}

/* ---- tasks ----------------------------------------------------------------- */

/**
 * EDO_SPAWN(out, fn, ...) - spawn the coroutine @fn as a task on the current
 * runtime, initialising its frame with the designated initialisers that
 * follow; evaluates to edo_spawn()'s result.  @out is an `edo_join **` or
 * NULL to detach.  The task is named after @fn and records this spawn site.
 *     int rc = EDO_SPAWN(&self->h, worker, .id = i, .queue = self->q);
 */
#define EDO_SPAWN(out, fn, ...) EDO_SPAWN_ON(NULL, out, fn, __VA_ARGS__)

/** EDO_SPAWN_ON(handle, out, fn, ...) - EDO_SPAWN onto the runtime of @handle. */
#define EDO_SPAWN_ON(handle, out, fn, ...)                                                         \
	edo_spawn_on((handle), &((fn##_frame){EDO_FRAME_INIT(fn), __VA_ARGS__}).edo_base,          \
		     sizeof(fn##_frame),                                                           \
		     &(const edo_spawn_opts){.name = #fn, .file = __FILE__, .line = __LINE__},     \
		     (out))

/**
 * EDO_AWAIT_JOIN(h, result) - wait for the task of join handle @h; *@result
 * (an int in the frame) becomes 0 or -ECANCELED.
 */
#define EDO_AWAIT_JOIN(h, result) EDO_AWAIT_POLL(edo_join_poll((h), cx, (result)))

/** EDO_JOIN_OUTPUT(h, fn) - the finished frame of coroutine task @fn, typed. */
#define EDO_JOIN_OUTPUT(h, fn) ((fn##_frame *)edo_join_output(h))

#ifdef __cplusplus
}
#endif
#endif /* EDO_ASYNC_H */
