/* Edo — futures, wakers and the poll context.
 *
 * This is the spine every other part of Edo hangs on; it is Rust's
 * core::future / core::task in C.
 *
 *   user code ──spawn──▶ task ──▶ run queue ──poll(future, cx)──▶ leaf future
 *       ▲                                                            │
 *       └──────────────── wake(waker) ◀── driver ◀── registers cx->waker
 *
 * A *future* is a struct whose first member is an `edo_future` (a pointer to a
 * vtable with `poll` and `drop`).  Futures are lazy: nothing happens until
 * something polls them.  `poll(self, cx)` returns EDO_READY when the work is
 * done (outputs are then valid, in the future's own fields or in
 * out-parameters given at construction) or EDO_PENDING, in which case the
 * future has arranged for `cx->waker` to be woken once progress is possible.
 * A future is never polled again after it returned READY.
 *
 * `drop(self)` releases everything the future holds (timer entries, reactor
 * interest, waiter nodes, child futures) and must be safe in every state:
 * never polled, pending, or finished.  Dropping a pending future is how
 * cancellation works.  A future releases its resources when it completes, so
 * dropping a finished future is a no-op.  A zeroed future slot (vt == NULL)
 * is empty, and edo_future_drop() on it does nothing.
 *
 * A *waker* is {vtable, data} with clone / wake / wake_by_ref / drop, like
 * Rust's RawWaker.  Wakers of Edo tasks point at the task: clone is a
 * reference-count increment, wake is one atomic CAS plus an enqueue.
 *
 * Thread-safety: wakers may be cloned, woken and dropped from any thread.  A
 * future is polled and dropped by one thread at a time.  A waker's wake and
 * drop must not block: they run on whatever thread completes the work (a
 * worker, a blocking-pool thread, a timer), which other work may wait for.
 */
#ifndef EDO_FUTURE_H
#define EDO_FUTURE_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The result of a poll. */
typedef enum edo_poll {
	EDO_PENDING = 0, /**< not done; cx->waker will be woken on progress */
	EDO_READY = 1,   /**< done; outputs are valid; never poll again */
} edo_poll;

typedef struct edo_waker edo_waker;

/** How a waker is cloned, woken and dropped; one static table per waker kind. */
typedef struct edo_waker_vtable {
	/** Return a new waker for the same target (takes a reference). */
	edo_waker (*clone)(const void *data);
	/** Wake the target and release this waker's reference. */
	void (*wake)(const void *data);
	/** Wake the target; the waker stays valid. */
	void (*wake_by_ref)(const void *data);
	/** Release this waker's reference without waking. */
	void (*drop)(const void *data);
} edo_waker_vtable;

/** A handle that wakes one task (or other target).  vt == NULL is "no waker". */
struct edo_waker {
	const edo_waker_vtable *vt;
	const void *data;
};

/** The context of one poll: the waker of the task being polled. */
typedef struct edo_cx {
	const edo_waker *waker;
} edo_cx;

typedef struct edo_future edo_future;

/** edo_future_info.flags: the future is a coroutine frame (starts with
 *  EDO_FRAME), so a task dump may read the line it is parked at.  Only
 *  EDO_ASYNC sets it. */
#define EDO_FUTURE_INFO_COROUTINE 0x1u
/** edo_future_info.flags: an Edo fiber task (edo/fiber.h). */
#define EDO_FUTURE_INFO_FIBER 0x2u

/**
 * What a kind of future is, for task dumps (edo/trace.h).  Optional: a
 * vtable without one (info == NULL) shows as an anonymous future.
 */
typedef struct edo_future_info {
	const char *name; /**< a coroutine's function name, or what the future does */
	const char *file; /**< the source file that defines it (a coroutine's body) */
	unsigned flags;   /**< EDO_FUTURE_INFO_* */
	/**
	 * Where the future waits (may be NULL).  Sets *@op to a static string
	 * naming the operation and *@line to a source line (0: none), and
	 * returns the future it awaits in turn, or NULL.  Called only while the
	 * future cannot be polled or dropped (the dump holds its task).
	 */
	const struct edo_future *(*inspect)(const struct edo_future *self, const char **op,
					    const char **file, int *line);
} edo_future_info;

/**
 * The operations of one kind of future.  Initialise it with designated
 * initialisers (`{.poll = my_poll, .drop = my_drop}`): members may be added,
 * as `info` was.
 */
typedef struct edo_future_vtable {
	/** Make progress; see the file comment for the contract. */
	edo_poll (*poll)(edo_future *self, edo_cx *cx);
	/** Release everything; safe in every state; may be NULL if nothing to release. */
	void (*drop)(edo_future *self);
	/** For task dumps; may be NULL (EDO_ASYNC fills it for coroutines). */
	const edo_future_info *info;
} edo_future_vtable;

/** Embed as the first member of every future.  vt == NULL means "empty slot". */
struct edo_future {
	const edo_future_vtable *vt;
};

/* ---- wakers ---------------------------------------------------------------- */

/**
 * edo_waker_clone() - a new reference to the same wake target.
 * The result must eventually be passed to edo_waker_wake() or edo_waker_drop().
 * Cloning an empty waker returns an empty waker.  Thread-safe.
 */
static inline edo_waker edo_waker_clone(const edo_waker *w)
{
	if (!w->vt)
		return (edo_waker){0};
	return w->vt->clone(w->data);
}

/** edo_waker_wake() - wake the target and consume @w.  No-op on an empty waker. */
static inline void edo_waker_wake(edo_waker w)
{
	if (w.vt)
		w.vt->wake(w.data);
}

/** edo_waker_wake_by_ref() - wake the target; @w stays valid. */
static inline void edo_waker_wake_by_ref(const edo_waker *w)
{
	if (w->vt)
		w->vt->wake_by_ref(w->data);
}

/** edo_waker_drop() - release @w without waking.  No-op on an empty waker. */
static inline void edo_waker_drop(edo_waker w)
{
	if (w.vt)
		w.vt->drop(w.data);
}

/**
 * edo_waker_will_wake() - whether @a and @b wake the same target, so that a
 * future storing a waker can skip replacing it with an equivalent one.
 */
static inline bool edo_waker_will_wake(const edo_waker *a, const edo_waker *b)
{
	return a->vt == b->vt && a->data == b->data;
}

/**
 * edo_waker_set() - store a clone of @w in the slot @slot, dropping what was
 * there, unless the slot already wakes the same target (then nothing happens).
 * The common "register interest" step of a leaf future.  Not thread-safe on
 * the slot: guard it as the slot's owner requires.
 */
static inline void edo_waker_set(edo_waker *slot, const edo_waker *w)
{
	if (slot->vt && edo_waker_will_wake(slot, w))
		return;
	edo_waker old = *slot;
	*slot = edo_waker_clone(w);
	edo_waker_drop(old);
}

/** edo_waker_take() - move the waker out of @slot, leaving it empty. */
static inline edo_waker edo_waker_take(edo_waker *slot)
{
	edo_waker w = *slot;
	*slot = (edo_waker){0};
	return w;
}

/**
 * edo_noop_waker() - a waker that does nothing when woken.  For polling a
 * future by hand (tests, a busy loop over try-operations).  Static lifetime.
 */
const edo_waker *edo_noop_waker(void);

/* ---- futures --------------------------------------------------------------- */

/** edo_future_poll() - poll @f once with the context @cx. */
static inline edo_poll edo_future_poll(edo_future *f, edo_cx *cx)
{
	return f->vt->poll(f, cx);
}

/**
 * edo_future_drop() - release @f (cancelling it if pending) and mark the slot
 * empty.  Idempotent; a no-op on an empty slot.
 */
static inline void edo_future_drop(edo_future *f)
{
	const edo_future_vtable *vt = f->vt;
	if (vt) {
		f->vt = NULL;
		if (vt->drop)
			vt->drop(f);
	}
}

/** edo_future_is_empty() - whether the slot @f holds no future. */
static inline bool edo_future_is_empty(const edo_future *f)
{
	return f->vt == NULL;
}

#ifdef __cplusplus
}
#endif
#endif /* EDO_FUTURE_H */
