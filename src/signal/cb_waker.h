/* A waker that runs a function instead of scheduling a task.
 *
 * The reactor and the signal dispatcher wake whatever edo_waker they were
 * given.  Parts of the runtime that are not tasks but must react to an event
 * -- the signal module's pipe reader, a dropped child that still has to be
 * reaped -- hand them one of these: its wake calls @fire on the thread that
 * woke it (a reactor turn, usually), which does the work and re-arms.
 *
 * The object is reference-counted: the owner holds one reference and every
 * waker made from it (a clone stored in a reactor slot, in a listener) holds
 * one, so it outlives a wake that runs while its owner lets go.  @release
 * runs when the last reference goes.  @fire must not block.
 */
#ifndef EDO_CB_WAKER_H
#define EDO_CB_WAKER_H

#include <stdatomic.h>
#include <stdint.h>

#include "edo/future.h"

typedef struct edo__cb_waker edo__cb_waker;

/* Defined in signal.c: clone, wake, wake_by_ref, drop over edo__cb_waker. */
extern const edo_waker_vtable edo__cb_waker_vt;

struct edo__cb_waker {
	atomic_uint refs;
	void (*fire)(edo__cb_waker *w);
	void (*release)(edo__cb_waker *w);
};

/* Start with one reference (the owner's). */
static inline void edo__cb_waker_init(edo__cb_waker *w, void (*fire)(edo__cb_waker *),
				      void (*release)(edo__cb_waker *))
{
	atomic_init(&w->refs, 1);
	w->fire = fire;
	w->release = release;
}

static inline void edo__cb_waker_ref(edo__cb_waker *w)
{
	atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
}

static inline void edo__cb_waker_unref(edo__cb_waker *w)
{
	if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) == 1)
		w->release(w);
}

/* The data of a waker is const; the object behind it is not. */
static inline edo__cb_waker *edo__cb_waker_of(const void *data)
{
	return (edo__cb_waker *)(uintptr_t)data;
}

static inline edo_waker edo__cb_waker_clone(const void *data)
{
	edo__cb_waker *w = edo__cb_waker_of(data);
	edo__cb_waker_ref(w);
	return (edo_waker){&edo__cb_waker_vt, data};
}

static inline void edo__cb_waker_wake_by_ref(const void *data)
{
	edo__cb_waker *w = edo__cb_waker_of(data);
	w->fire(w);
}

static inline void edo__cb_waker_wake(const void *data)
{
	edo__cb_waker *w = edo__cb_waker_of(data);
	w->fire(w);
	edo__cb_waker_unref(w);
}

static inline void edo__cb_waker_drop(const void *data)
{
	edo__cb_waker_unref(edo__cb_waker_of(data));
}

/* A borrowed waker for polling with @w as the context's waker (stored
 * wakers are clones, each with its reference). */
static inline edo_waker edo__cb_waker_borrow(edo__cb_waker *w)
{
	return (edo_waker){&edo__cb_waker_vt, w};
}

#endif /* EDO_CB_WAKER_H */
