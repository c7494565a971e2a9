/* Notify: Tokio's sync/notify.rs.
 *
 * The state word: bits 1..0 are EMPTY (no permit, no waiter), WAITING (the
 * list is not empty) or NOTIFIED (one stored permit); the bits above count
 * the calls of notify_waiters().  Leaving WAITING needs the lock, so while
 * the lock is held a WAITING state means a non-empty list.
 *
 * A waiter is served under the lock: unlinked, its waker taken, and only
 * then its `notification` stored (release) — its owner may see that without
 * the lock and complete at once, so it is the notifier's last touch.
 *
 * A notified future remembers the notify_waiters() count at creation; a
 * count that moved since means it was notified.  notify_waiters() moves the
 * whole list to a guard list on its own stack and wakes it in batches,
 * dropping the lock in between; a waiter dropped or polled meanwhile
 * unlinks itself from the guard list (circular lists need no list head to
 * unlink).
 */
#include "sync/internal.h"

#define ST_EMPTY ((size_t)0)
#define ST_WAITING ((size_t)1)
#define ST_NOTIFIED ((size_t)2)
#define ST_MASK ((size_t)3)
#define CALLS_ONE ((size_t)4)

enum { N_NONE = 0, N_ONE_FIFO, N_ONE_LIFO, N_ALL };
enum { NF_INIT, NF_WAITING, NF_DONE };

static size_t st(size_t s)
{
	return s & ST_MASK;
}

static size_t with_st(size_t s, size_t v)
{
	return (s & ~ST_MASK) | v;
}

static edo_notified_fut *nf_of(edo__slink *l)
{
	return edo__container_of(l, edo_notified_fut, link_);
}

void edo_notify_init(edo_notify *n)
{
	if (!n)
		return;
	atomic_init(&n->state_, ST_EMPTY);
	atomic_init(&n->lock_.v, 0);
	edo__list_init(&n->waiters_);
}

/* With the lock held and the state @cur: notify one waiter (returning its
 * waker) or store a permit. */
static edo_waker notify_locked(edo_notify *n, size_t cur, uint8_t how)
{
	if (st(cur) != ST_WAITING) {
		/* EMPTY or NOTIFIED: only notify_waiters (under this lock) or a
		 * permit taker changes it now; store the permit either way. */
		while (!atomic_compare_exchange_weak_explicit(&n->state_, &cur,
							      with_st(cur, ST_NOTIFIED),
							      memory_order_seq_cst,
							      memory_order_seq_cst))
			;
		return (edo_waker){0};
	}
	edo__slink *l =
		how == N_ONE_LIFO ? edo__list_back(&n->waiters_) : edo__list_front(&n->waiters_);
	edo_notified_fut *w = nf_of(l);
	edo__list_remove(l);
	edo_waker wk = edo_waker_take(&w->waker_);
	atomic_store_explicit(&w->notification_, how, memory_order_release); /* last touch */
	if (edo__list_empty(&n->waiters_))
		atomic_store_explicit(&n->state_, with_st(cur, ST_EMPTY), memory_order_seq_cst);
	return wk;
}

static void notify_one(edo_notify *n, uint8_t how)
{
	if (!n)
		return;
	size_t cur = atomic_load_explicit(&n->state_, memory_order_seq_cst);
	while (st(cur) != ST_WAITING) {
		/* NOTIFIED -> NOTIFIED on purpose: it orders this call after
		 * whatever the caller wrote before it. */
		if (atomic_compare_exchange_weak_explicit(&n->state_, &cur,
							  with_st(cur, ST_NOTIFIED),
							  memory_order_seq_cst,
							  memory_order_seq_cst))
			return;
	}
	edo__spin_lock(&n->lock_);
	cur = atomic_load_explicit(&n->state_, memory_order_seq_cst);
	edo_waker w = notify_locked(n, cur, how);
	edo__spin_unlock(&n->lock_);
	edo_waker_wake(w);
}

void edo_notify_one(edo_notify *n)
{
	notify_one(n, N_ONE_FIFO);
}

void edo_notify_last(edo_notify *n)
{
	notify_one(n, N_ONE_LIFO);
}

void edo_notify_waiters(edo_notify *n)
{
	if (!n)
		return;
	edo__spin_lock(&n->lock_);
	size_t cur = atomic_load_explicit(&n->state_, memory_order_seq_cst);
	if (st(cur) != ST_WAITING) {
		atomic_fetch_add_explicit(&n->state_, CALLS_ONE, memory_order_seq_cst);
		edo__spin_unlock(&n->lock_);
		return;
	}
	atomic_store_explicit(&n->state_, with_st(cur + CALLS_ONE, ST_EMPTY), memory_order_seq_cst);
	edo__slink guard;
	edo__list_move_all(&n->waiters_, &guard);
	edo__wake_list wl;
	wl.n = 0;
	for (;;) {
		edo__slink *l;
		while (!edo__wake_list_full(&wl) && (l = edo__list_front(&guard))) {
			edo_notified_fut *w = nf_of(l);
			edo__list_remove(l);
			edo__wake_list_push(&wl, edo_waker_take(&w->waker_));
			atomic_store_explicit(&w->notification_, N_ALL, memory_order_release);
		}
		if (edo__list_empty(&guard))
			break;
		edo__spin_unlock(&n->lock_);
		edo__wake_list_wake(&wl);
		edo__spin_lock(&n->lock_);
	}
	edo__spin_unlock(&n->lock_);
	edo__wake_list_wake(&wl);
}

/* ---- the notified future ------------------------------------------------------------ */

static edo_poll nf_done(edo_notified_fut *f)
{
	f->state_ = NF_DONE;
	return EDO_READY;
}

static edo_poll nf_first(edo_notified_fut *f, edo_cx *cx)
{
	edo_notify *n = f->notify_;
	size_t cur = atomic_load_explicit(&n->state_, memory_order_seq_cst);
	if ((cur & ~ST_MASK) != f->calls_)
		return nf_done(f);
	/* Take a stored permit without the lock. */
	while (st(cur) == ST_NOTIFIED) {
		if (atomic_compare_exchange_weak_explicit(&n->state_, &cur, with_st(cur, ST_EMPTY),
							  memory_order_seq_cst,
							  memory_order_seq_cst))
			return nf_done(f);
	}
	edo_waker w = edo_waker_clone(cx->waker);
	edo__spin_lock(&n->lock_);
	cur = atomic_load_explicit(&n->state_, memory_order_seq_cst);
	for (;;) {
		if ((cur & ~ST_MASK) != f->calls_) {
			edo__spin_unlock(&n->lock_);
			edo_waker_drop(w);
			return nf_done(f);
		}
		if (st(cur) == ST_NOTIFIED) {
			if (atomic_compare_exchange_weak_explicit(&n->state_, &cur,
								  with_st(cur, ST_EMPTY),
								  memory_order_seq_cst,
								  memory_order_seq_cst)) {
				edo__spin_unlock(&n->lock_);
				edo_waker_drop(w);
				return nf_done(f);
			}
			continue;
		}
		if (st(cur) == ST_WAITING)
			break;
		if (atomic_compare_exchange_weak_explicit(&n->state_, &cur,
							  with_st(cur, ST_WAITING),
							  memory_order_seq_cst,
							  memory_order_seq_cst))
			break;
	}
	f->waker_ = w;
	edo__list_push_back(&n->waiters_, &f->link_);
	f->state_ = NF_WAITING;
	edo__spin_unlock(&n->lock_);
	return EDO_PENDING;
}

static edo_poll nf_waiting(edo_notified_fut *f, edo_cx *cx)
{
	if (atomic_load_explicit(&f->notification_, memory_order_acquire) != N_NONE)
		return nf_done(f); /* unlinked, waker taken */
	edo_notify *n = f->notify_;
	edo__spin_lock(&n->lock_);
	if (atomic_load_explicit(&f->notification_, memory_order_relaxed) != N_NONE) {
		edo__spin_unlock(&n->lock_);
		return nf_done(f);
	}
	size_t cur = atomic_load_explicit(&n->state_, memory_order_seq_cst);
	if ((cur & ~ST_MASK) != f->calls_) {
		/* A notify_waiters() is waking its guard list, which holds us. */
		edo__list_remove(&f->link_);
		edo_waker w = edo_waker_take(&f->waker_);
		edo__spin_unlock(&n->lock_);
		edo_waker_drop(w);
		return nf_done(f);
	}
	edo_waker old = edo__waker_swap(&f->waker_, cx->waker);
	edo__spin_unlock(&n->lock_);
	edo_waker_drop(old);
	return EDO_PENDING;
}

static edo_poll nf_poll(edo_future *fut, edo_cx *cx)
{
	edo_notified_fut *f = (edo_notified_fut *)fut;
	switch (f->state_) {
	case NF_INIT:
		return nf_first(f, cx);
	case NF_WAITING:
		return nf_waiting(f, cx);
	default:
		return EDO_READY;
	}
}

static void nf_drop(edo_future *fut)
{
	edo_notified_fut *f = (edo_notified_fut *)fut;
	if (f->state_ != NF_WAITING)
		return;
	f->state_ = NF_DONE;
	edo_notify *n = f->notify_;
	edo__spin_lock(&n->lock_);
	uint8_t how = atomic_load_explicit(&f->notification_, memory_order_relaxed);
	if (edo__link_linked(&f->link_))
		edo__list_remove(&f->link_);
	size_t cur = atomic_load_explicit(&n->state_, memory_order_seq_cst);
	if (edo__list_empty(&n->waiters_) && st(cur) == ST_WAITING) {
		cur = with_st(cur, ST_EMPTY);
		atomic_store_explicit(&n->state_, cur, memory_order_seq_cst);
	}
	edo_waker fwd = {0};
	if (how == N_ONE_FIFO || how == N_ONE_LIFO)
		fwd = notify_locked(n, cur, how); /* pass it on */
	edo_waker mine = edo_waker_take(&f->waker_);
	edo__spin_unlock(&n->lock_);
	edo_waker_drop(mine);
	edo_waker_wake(fwd);
}

static const edo_future_vtable nf_vt = {.poll = nf_poll, .drop = nf_drop};

edo_future *edo_notify_notified(edo_notified_fut *f, edo_notify *n)
{
	if (!f)
		return NULL;
	f->base.vt = &nf_vt;
	f->notify_ = n;
	f->state_ = n ? NF_INIT : NF_DONE;
	f->calls_ = n ? atomic_load_explicit(&n->state_, memory_order_seq_cst) & ~ST_MASK : 0;
	atomic_init(&f->notification_, N_NONE);
	f->link_.prev = f->link_.next = NULL;
	f->waker_ = (edo_waker){0};
	return &f->base;
}
