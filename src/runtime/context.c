/* The per-thread runtime context, deferred wakes, the cooperative budget,
 * yield_now and unconstrained.
 *
 * Budget.  Each task poll starts with EDO_COOP_BUDGET units.  Leaf futures
 * take a unit before doing work that is ready (edo_coop_poll_proceed) and
 * give it back if the work turns out not to be ready (edo_coop_refund).
 * When the units run out, the leaf returns PENDING and the task's wake is
 * deferred until after the next driver turn, so a task looping over an
 * always-ready resource lets every other task, and the I/O and timer
 * drivers, run.  Outside a task there is no budget.
 */
#include <stdlib.h>

#include "edo/task.h"
#include "runtime/context.h"

__thread edo__context edo__ctx __attribute__((tls_model("initial-exec")));

/* ---- deferred wakes ------------------------------------------------------------ */

void edo__defer_push(edo__defer *d, const edo_waker *w)
{
	/* Consecutive yields of one task defer one wake. */
	if (d->len && edo_waker_will_wake(&d->wakers[d->len - 1], w))
		return;
	if (d->len == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		edo_waker *n = realloc(d->wakers, cap * sizeof *n);
		if (!n) {
			/* Out of memory: waking now is correct, just less fair. */
			edo_waker_wake_by_ref(w);
			return;
		}
		d->wakers = n;
		d->cap = cap;
	}
	d->wakers[d->len++] = edo_waker_clone(w);
}

size_t edo__defer_wake_all(edo__defer *d)
{
	size_t n = 0;
	/* Wakes may defer more (a task woken here runs later, not now), so take
	 * the batch first. */
	while (d->len) {
		size_t len = d->len;
		d->len = 0;
		edo_waker *batch = d->wakers;
		d->wakers = NULL;
		d->cap = 0;
		for (size_t i = 0; i < len; i++)
			edo_waker_wake(batch[i]);
		n += len;
		if (!d->wakers) {
			d->wakers = batch;
			d->cap = len > 64 ? len : 64;
		} else {
			free(batch);
		}
	}
	return n;
}

bool edo__defer_is_empty(const edo__defer *d)
{
	return d->len == 0;
}

void edo__defer_free(edo__defer *d)
{
	edo__defer_wake_all(d);
	free(d->wakers);
	d->wakers = NULL;
	d->cap = 0;
}

void edo_defer_wake(edo_cx *cx)
{
	if (edo__ctx.defer)
		edo__defer_push(edo__ctx.defer, cx->waker);
	else
		edo_waker_wake_by_ref(cx->waker);
}

/* ---- budget ---------------------------------------------------------------------- */

edo_poll edo_coop_poll_proceed(edo_cx *cx)
{
	if (!edo__ctx.constrained) {
		edo__ctx.took_unit = false;
		return EDO_READY;
	}
	if (edo__ctx.budget == 0) {
		edo__ctx.took_unit = false;
		edo__ctx.forced_yields++;
		edo_defer_wake(cx);
		return EDO_PENDING;
	}
	edo__ctx.budget--;
	edo__ctx.took_unit = true;
	return EDO_READY;
}

void edo_coop_refund(void)
{
	if (edo__ctx.took_unit) {
		edo__ctx.budget++;
		edo__ctx.took_unit = false;
	}
}

bool edo_coop_has_budget_remaining(void)
{
	return !edo__ctx.constrained || edo__ctx.budget > 0;
}

/* ---- yield_now ------------------------------------------------------------------- */

static edo_poll yield_now_poll(edo_future *f, edo_cx *cx)
{
	edo_yield_now *y = (edo_yield_now *)f;
	if (y->yielded)
		return EDO_READY;
	y->yielded = true;
	edo_defer_wake(cx);
	return EDO_PENDING;
}

const edo_future_vtable edo_yield_now_vt = {.poll = yield_now_poll, .drop = NULL};

/* ---- unconstrained --------------------------------------------------------------- */

static edo_poll unconstrained_poll(edo_future *f, edo_cx *cx)
{
	edo_unconstrained *u = (edo_unconstrained *)f;
	if (!u->inner || !u->inner->vt)
		return EDO_READY;
	bool was = edo__ctx.constrained;
	edo__ctx.constrained = false;
	edo_poll r = edo_future_poll(u->inner, cx);
	edo__ctx.constrained = was;
	return r;
}

static void unconstrained_drop(edo_future *f)
{
	edo_unconstrained *u = (edo_unconstrained *)f;
	if (u->inner)
		edo_future_drop(u->inner);
}

static const edo_future_vtable unconstrained_vt = {
	.poll = unconstrained_poll,
	.drop = unconstrained_drop,
};

void edo_unconstrained_init(edo_unconstrained *u, edo_future *inner)
{
	u->base.vt = &unconstrained_vt;
	u->inner = inner;
}
