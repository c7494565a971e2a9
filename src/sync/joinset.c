/* JoinSet: tasks joined in completion order; Tokio's task/join_set.rs on
 * util/idle_notified_set.rs.
 *
 * Each task of the set has an entry, which is also a waker: it is the join
 * waker registered with the task (edo_join_poll() with the entry's waker),
 * so when the task completes the runtime wakes the entry, which moves
 * itself from the `idle` list to the back of the `notified` list (under the
 * set's lock) and wakes whoever waits in join_next.  join_next takes the
 * front of `notified`: O(1) per finished task.  No hook in the task code is
 * needed; the join-waker protocol does it.
 *
 * Lists (under the lock):  idle ──wake──▶ notified ──join_next──▶ (removed)
 *                            ▲                │ polled, not finished
 *                            └────────────────┘ (a spurious wake)
 * join_next moves an entry back to idle *before* polling its handle, so a
 * wake during that poll moves it to notified again and is not lost.
 *
 * An entry is referenced by the set (until removed) and by each clone of its
 * waker (the task keeps one until its join handle is detached); the set's
 * memory by itself and every entry, so a wake arriving after
 * edo_joinset_free() still finds the lock.  The `all` list is touched only
 * by the owner, so abort_all() walks it without the lock.
 */
#include <errno.h>
#include <stdlib.h>

#include "edo/error.h"
#include "sync/internal.h"

enum { L_NONE, L_IDLE, L_NOTIFIED };

struct edo_joinset {
	edo__lock lock;
	edo__slink idle, notified;
	edo_waker waker; /* the joiner, under the lock */
	_Atomic(size_t) refs;
	/* owner-only */
	edo__slink all;
	size_t len;
};

typedef struct entry {
	edo__slink link; /* idle or notified, under the lock */
	edo__slink all;  /* owner-only */
	uint8_t list;    /* under the lock */
	edo_joinset *js;
	edo_join *h;
	_Atomic(size_t) refs;
} entry;

static void js_unref(edo_joinset *js)
{
	if (atomic_fetch_sub_explicit(&js->refs, 1, memory_order_acq_rel) == 1) {
		edo_waker_drop(js->waker);
		free(js);
	}
}

static void entry_unref(entry *e)
{
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
		edo_joinset *js = e->js;
		free(e);
		js_unref(js);
	}
}

/* ---- the entry waker ------------------------------------------------------------------ */

static entry *entry_of(const void *d)
{
	return (entry *)(uintptr_t)d;
}

static edo_waker ew_clone(const void *d);

static void ew_wake_by_ref(const void *d)
{
	entry *e = entry_of(d);
	edo_joinset *js = e->js;
	edo_waker w = {0};
	edo__spin_lock(&js->lock);
	if (e->list == L_IDLE) {
		edo__list_remove(&e->link);
		edo__list_push_back(&js->notified, &e->link);
		e->list = L_NOTIFIED;
		w = edo_waker_take(&js->waker);
	}
	edo__spin_unlock(&js->lock);
	edo_waker_wake(w);
}

static void ew_drop(const void *d)
{
	entry_unref(entry_of(d));
}

static void ew_wake(const void *d)
{
	ew_wake_by_ref(d);
	ew_drop(d);
}

static const edo_waker_vtable entry_waker_vt = {ew_clone, ew_wake, ew_wake_by_ref, ew_drop};

static edo_waker ew_clone(const void *d)
{
	atomic_fetch_add_explicit(&entry_of(d)->refs, 1, memory_order_relaxed);
	return (edo_waker){&entry_waker_vt, d};
}

/* Poll @e's join handle with @e's waker, outside the budget (join_next
 * accounts for the budget itself). */
static edo_poll entry_poll(entry *e, int *rc)
{
	edo_waker w = {&entry_waker_vt, e};
	edo_cx cx = {&w};
	bool was = edo__ctx.constrained;
	edo__ctx.constrained = false;
	edo_poll r = edo_join_poll(e->h, &cx, rc);
	edo__ctx.constrained = was;
	return r;
}

/* ---- the set ------------------------------------------------------------------------- */

int edo_joinset_new(edo_joinset **out)
{
	if (!out)
		return -EINVAL;
	edo_joinset *js = malloc(sizeof *js);
	if (!js)
		return -ENOMEM;
	atomic_init(&js->lock.v, 0);
	edo__list_init(&js->idle);
	edo__list_init(&js->notified);
	js->waker = (edo_waker){0};
	atomic_init(&js->refs, 1);
	edo__list_init(&js->all);
	js->len = 0;
	*out = js;
	return 0;
}

int edo_joinset_spawn_on(edo_joinset *js, edo_handle *h, const edo_future *init, size_t size,
			 const edo_spawn_opts *opts)
{
	if (!js)
		return -EINVAL;
	entry *e = malloc(sizeof *e);
	if (!e)
		return -ENOMEM;
	edo_join *jh;
	int rc = edo_spawn_on(h, init, size, opts, &jh);
	if (rc < 0) {
		free(e);
		return rc;
	}
	e->js = js;
	e->h = jh;
	atomic_init(&e->refs, 1);
	atomic_fetch_add_explicit(&js->refs, 1, memory_order_relaxed);
	edo__list_push_back(&js->all, &e->all);
	js->len++;
	edo__spin_lock(&js->lock);
	e->list = L_IDLE;
	edo__list_push_back(&js->idle, &e->link);
	edo__spin_unlock(&js->lock);
	int jrc;
	if (entry_poll(e, &jrc) == EDO_READY)
		ew_wake_by_ref(e); /* finished already: straight to notified */
	return 0;
}

int edo_joinset_spawn(edo_joinset *js, const edo_future *init, size_t size)
{
	return edo_joinset_spawn_on(js, NULL, init, size, NULL);
}

size_t edo_joinset_len(const edo_joinset *js)
{
	return js ? js->len : 0;
}

/* Remove @e from the set (owner); the set's reference goes. */
static void entry_remove(edo_joinset *js, entry *e)
{
	edo__spin_lock(&js->lock);
	if (e->list != L_NONE)
		edo__list_remove(&e->link);
	e->list = L_NONE;
	edo__spin_unlock(&js->lock);
	edo__list_remove(&e->all);
	js->len--;
}

/* Take a finished task, registering @w if none is (w may be NULL).
 * Returns 0, -EAGAIN or -ENOENT. */
static int join_next(edo_joinset *js, const edo_waker *w, edo_join **out, int *rc)
{
	for (;;) {
		if (js->len == 0)
			return -ENOENT;
		edo_waker old = {0};
		edo__spin_lock(&js->lock);
		edo__slink *l = edo__list_front(&js->notified);
		if (!l) {
			if (w)
				old = edo__waker_swap(&js->waker, w);
			edo__spin_unlock(&js->lock);
			edo_waker_drop(old);
			return -EAGAIN;
		}
		entry *e = edo__container_of(l, entry, link);
		/* Back to idle before polling: a wake meanwhile is kept. */
		edo__list_remove(l);
		edo__list_push_back(&js->idle, l);
		e->list = L_IDLE;
		edo__spin_unlock(&js->lock);
		int r;
		if (entry_poll(e, &r) == EDO_PENDING)
			continue; /* a spurious wake; its waker is registered again */
		entry_remove(js, e);
		*out = e->h;
		*rc = r;
		entry_unref(e);
		return 0;
	}
}

edo_poll edo_joinset_poll_join_next(edo_joinset *js, edo_cx *cx, edo_join **out, int *rc)
{
	edo_join *h = NULL;
	int r;
	if (!js || !cx) {
		r = -EINVAL;
	} else {
		if (edo__coop_proceed(cx) == EDO_PENDING)
			return EDO_PENDING;
		r = join_next(js, cx->waker, &h, rc ? rc : &r);
		if (r == -EAGAIN) {
			edo__coop_refund();
			return EDO_PENDING;
		}
		if (r == 0) {
			if (out)
				*out = h;
			else
				edo_join_detach(h);
			return EDO_READY;
		}
	}
	if (out)
		*out = NULL;
	if (rc)
		*rc = r;
	return EDO_READY;
}

int edo_joinset_try_join_next(edo_joinset *js, edo_join **out, int *rc)
{
	if (!js || !out)
		return -EINVAL;
	int r;
	int e = join_next(js, NULL, out, rc ? rc : &r);
	if (e < 0)
		*out = NULL;
	return e;
}

void edo_joinset_abort_all(edo_joinset *js)
{
	if (!js)
		return;
	for (edo__slink *l = js->all.next; l != &js->all; l = l->next)
		edo_join_abort(edo__container_of(l, entry, all)->h);
}

void edo_joinset_detach_all(edo_joinset *js)
{
	if (!js)
		return;
	edo__slink *l;
	while ((l = edo__list_front(&js->all))) {
		entry *e = edo__container_of(l, entry, all);
		entry_remove(js, e);
		edo_join_detach(e->h); /* may drop the task's clone of our waker */
		entry_unref(e);
	}
}

void edo_joinset_free(edo_joinset *js)
{
	if (!js)
		return;
	edo_joinset_abort_all(js);
	edo_joinset_detach_all(js);
	js_unref(js);
}

/* ---- shutdown ------------------------------------------------------------------------ */

static edo_poll shutdown_poll(edo_future *fut, edo_cx *cx)
{
	edo_joinset_shutdown_fut *f = (edo_joinset_shutdown_fut *)fut;
	if (!f->js_)
		return EDO_READY;
	if (!f->started_) {
		edo_joinset_abort_all(f->js_);
		f->started_ = 1;
	}
	for (;;) {
		edo_join *h;
		int rc;
		if (edo_joinset_poll_join_next(f->js_, cx, &h, &rc) == EDO_PENDING)
			return EDO_PENDING;
		if (!h)
			break;
		edo_join_detach(h);
	}
	f->js_ = NULL;
	return EDO_READY;
}

static const edo_future_vtable shutdown_vt = {.poll = shutdown_poll, .drop = NULL};

edo_future *edo_joinset_shutdown(edo_joinset_shutdown_fut *f, edo_joinset *js)
{
	if (!f)
		return NULL;
	f->base.vt = &shutdown_vt;
	f->js_ = js;
	f->started_ = 0;
	return &f->base;
}
