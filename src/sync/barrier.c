/* Barrier: n tasks wait until all n have arrived.
 *
 * Arrivals are counted under the lock.  The n-th arrival is the leader: it
 * starts a new generation and releases the waiters of the round.  They are
 * moved to a guard list on the leader's stack and released in batches, the
 * lock dropped between batches; a waiter is unlinked, its waker taken, and
 * only then `released` stored (its owner may complete without the lock as
 * soon as it sees it).  Waiters dropped meanwhile unlink themselves.
 */
#include "sync/internal.h"

enum { BW_INIT, BW_WAITING, BW_DONE };

static edo_barrier_wait_fut *bw_of(edo__slink *l)
{
	return edo__container_of(l, edo_barrier_wait_fut, link_);
}

void edo_barrier_init(edo_barrier *b, size_t n)
{
	if (!b)
		return;
	atomic_init(&b->lock_.v, 0);
	b->n_ = n ? n : 1;
	b->arrived_ = 0;
	b->generation_ = 0;
	edo__list_init(&b->waiters_);
}

/* The leader releases the round.  Called with the lock; releases it. */
static void release_round(edo_barrier *b)
{
	b->arrived_ = 0;
	b->generation_++;
	edo__slink guard;
	edo__list_move_all(&b->waiters_, &guard);
	edo__wake_list wl;
	wl.n = 0;
	for (;;) {
		edo__slink *l;
		while (!edo__wake_list_full(&wl) && (l = edo__list_front(&guard))) {
			edo_barrier_wait_fut *w = bw_of(l);
			edo__list_remove(l);
			edo__wake_list_push(&wl, edo_waker_take(&w->waker_));
			atomic_store_explicit(&w->released_, 1, memory_order_release);
		}
		if (edo__list_empty(&guard))
			break;
		edo__spin_unlock(&b->lock_);
		edo__wake_list_wake(&wl);
		edo__spin_lock(&b->lock_);
	}
	edo__spin_unlock(&b->lock_);
	edo__wake_list_wake(&wl);
}

static edo_poll bw_poll(edo_future *fut, edo_cx *cx)
{
	edo_barrier_wait_fut *f = (edo_barrier_wait_fut *)fut;
	if (f->state_ == BW_DONE)
		return EDO_READY;
	if (f->state_ == BW_WAITING && atomic_load_explicit(&f->released_, memory_order_acquire)) {
		if (edo__coop_proceed(cx) == EDO_PENDING)
			return EDO_PENDING;
		f->state_ = BW_DONE;
		return EDO_READY;
	}
	if (edo__coop_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	edo_barrier *b = f->barrier_;
	edo__spin_lock(&b->lock_);
	if (f->state_ == BW_INIT) {
		if (++b->arrived_ == b->n_) {
			f->is_leader = true;
			f->state_ = BW_DONE;
			release_round(b);
			return EDO_READY;
		}
		f->waker_ = edo_waker_clone(cx->waker);
		edo__list_push_back(&b->waiters_, &f->link_);
		f->state_ = BW_WAITING;
		edo__spin_unlock(&b->lock_);
		edo__coop_refund();
		return EDO_PENDING;
	}
	if (atomic_load_explicit(&f->released_, memory_order_relaxed)) {
		edo__spin_unlock(&b->lock_);
		f->state_ = BW_DONE;
		return EDO_READY;
	}
	edo_waker old = edo__waker_swap(&f->waker_, cx->waker);
	edo__spin_unlock(&b->lock_);
	edo_waker_drop(old);
	edo__coop_refund();
	return EDO_PENDING;
}

static void bw_drop(edo_future *fut)
{
	edo_barrier_wait_fut *f = (edo_barrier_wait_fut *)fut;
	if (f->state_ != BW_WAITING)
		return;
	f->state_ = BW_DONE;
	if (atomic_load_explicit(&f->released_, memory_order_acquire))
		return;
	edo_barrier *b = f->barrier_;
	edo__spin_lock(&b->lock_);
	if (edo__link_linked(&f->link_))
		edo__list_remove(&f->link_);
	edo_waker w = edo_waker_take(&f->waker_);
	edo__spin_unlock(&b->lock_);
	edo_waker_drop(w);
}

static const edo_future_vtable bw_vt = {.poll = bw_poll, .drop = bw_drop};

edo_future *edo_barrier_wait(edo_barrier_wait_fut *f, edo_barrier *b)
{
	if (!f)
		return NULL;
	f->base.vt = &bw_vt;
	f->barrier_ = b;
	f->state_ = b ? BW_INIT : BW_DONE;
	atomic_init(&f->released_, 0);
	f->link_.prev = f->link_.next = NULL;
	f->waker_ = (edo_waker){0};
	f->is_leader = false;
	return &f->base;
}
