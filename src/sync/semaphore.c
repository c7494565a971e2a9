/* The FIFO batch semaphore, and the Semaphore, Mutex and RwLock on it;
 * Tokio's sync/batch_semaphore.rs, with a lock-free release.
 *
 * The permits word:
 *
 *     bits 63..2  available permits (0 whenever anyone waits)
 *     bit 1       WAITERS: the wait queue is not empty
 *     bit 0       CLOSED
 *
 * Waiters queue under the lock, oldest at the front; each waiter node lives
 * in its acquire future and counts the permits it still needs.  Released
 * permits go to the front of the queue first, a waiter at a time, and a
 * waiter that needs more than is there keeps what it got and stays at the
 * front.  Only when the queue is empty do permits go back to the word.  So:
 *
 *   - a newcomer sees no permits while anyone waits (WAITERS set means the
 *     count is 0), and queues behind: no barging, strict FIFO;
 *   - WAITERS is set and cleared only under the lock, together with the
 *     queue, so "WAITERS set <=> queue not empty" holds whenever the lock
 *     is free.  A waiter sets WAITERS in the same CAS that takes the last
 *     permits, so a release can never add permits to the word after a
 *     waiter decided to queue (the CAS of one of them fails);
 *   - release is one CAS when nobody waits (Tokio takes the lock on every
 *     release); with waiters it takes the lock and serves them.
 *
 * Serving a waiter: under the lock, unlink it, take its waker, and only then
 * store remaining = 0 (release).  The owner may see that 0 without the lock
 * and complete (and free the node) at once, so it is the releaser's last
 * touch.  Wakers are woken after the lock is dropped, at most 32 per hold.
 *
 * The acquire future:  INIT ──poll──▶ READY (fast path)
 *                       └──queue──▶ QUEUED ──served / closed──▶ DONE
 * Dropping it while QUEUED unlinks the node and gives back what it had
 * collected (all of it, if it was served but never polled again).
 */
#include <errno.h>

#include "edo/error.h"
#include "sync/internal.h"

#define CLOSED ((size_t)1)
#define WAITERS ((size_t)2)
#define SHIFT 2
#define MAXP EDO_SEMAPHORE_MAX_PERMITS

enum { ACQ_INIT, ACQ_QUEUED, ACQ_DONE };

void edo__bsem_init(edo__bsem *s, size_t permits)
{
	atomic_init(&s->permits, permits << SHIFT);
	atomic_init(&s->lock.v, 0);
	edo__list_init(&s->waiters);
}

static edo__bsem_waiter *waiter_of(edo__slink *l)
{
	return edo__container_of(l, edo__bsem_waiter, link);
}

/* Serve waiters with @rem permits, then put what is left in the word.
 * Called with the lock held; returns with it released. */
static void add_permits_locked(edo__bsem *s, size_t rem)
{
	edo__wake_list wl;
	wl.n = 0;
	for (;;) {
		edo__slink *l;
		while (rem && !edo__wake_list_full(&wl) && (l = edo__list_front(&s->waiters))) {
			edo__bsem_waiter *w = waiter_of(l);
			size_t need = atomic_load_explicit(&w->remaining, memory_order_relaxed);
			if (need > rem) {
				atomic_store_explicit(&w->remaining, need - rem,
						      memory_order_relaxed);
				rem = 0;
				break;
			}
			rem -= need;
			edo__list_remove(l);
			edo__wake_list_push(&wl, edo_waker_take(&w->waker));
			/* Last touch: the owner may complete and free the node now. */
			atomic_store_explicit(&w->remaining, 0, memory_order_release);
		}
		if (edo__list_empty(&s->waiters)) {
			size_t cur = atomic_load_explicit(&s->permits, memory_order_relaxed);
			while (!atomic_compare_exchange_weak_explicit(
				&s->permits, &cur, (cur & ~WAITERS) + (rem << SHIFT),
				memory_order_release, memory_order_relaxed))
				;
			rem = 0;
		}
		edo__spin_unlock(&s->lock);
		edo__wake_list_wake(&wl);
		if (!rem)
			return;
		/* The batch was full and permits are left: serve more. */
		edo__spin_lock(&s->lock);
	}
}

static int bsem_release(edo__bsem *s, size_t n)
{
	if (n == 0)
		return 0;
	if (n > MAXP)
		return -EINVAL;
	size_t cur = atomic_load_explicit(&s->permits, memory_order_relaxed);
	while (!(cur & WAITERS)) {
		if ((cur >> SHIFT) + n > MAXP)
			return -EOVERFLOW;
		if (atomic_compare_exchange_weak_explicit(&s->permits, &cur, cur + (n << SHIFT),
							  memory_order_release,
							  memory_order_relaxed))
			return 0;
	}
	edo__spin_lock(&s->lock);
	/* Waiters hold the count at 0, so n <= MAXP cannot overflow; if the
	 * queue emptied meanwhile, check again. */
	cur = atomic_load_explicit(&s->permits, memory_order_relaxed);
	if ((cur >> SHIFT) + n > MAXP) {
		edo__spin_unlock(&s->lock);
		return -EOVERFLOW;
	}
	add_permits_locked(s, n);
	return 0;
}

void edo__bsem_release(edo__bsem *s, size_t n)
{
	(void)bsem_release(s, n);
}

size_t edo__bsem_available(const edo__bsem *s)
{
	return atomic_load_explicit(&s->permits, memory_order_acquire) >> SHIFT;
}

bool edo__bsem_is_closed(const edo__bsem *s)
{
	return atomic_load_explicit(&s->permits, memory_order_acquire) & CLOSED;
}

int edo__bsem_try_acquire(edo__bsem *s, size_t n)
{
	size_t cur = atomic_load_explicit(&s->permits, memory_order_acquire);
	for (;;) {
		if (cur & CLOSED)
			return EDO_ECLOSED;
		if ((cur & WAITERS) || (cur >> SHIFT) < n)
			return -EAGAIN;
		if (atomic_compare_exchange_weak_explicit(&s->permits, &cur, cur - (n << SHIFT),
							  memory_order_acquire,
							  memory_order_acquire))
			return 0;
	}
}

void edo__bsem_close(edo__bsem *s)
{
	edo__wake_list wl;
	wl.n = 0;
	edo__spin_lock(&s->lock);
	/* Every waiter leaves the queue in this one hold (to a guard list on
	 * this stack, woken in batches with the lock dropped in between, as
	 * broadcast and barrier do): a release meanwhile finds no waiter to
	 * serve, and its permits go to the word.  A waiter polled or dropped
	 * before its turn unlinks itself from the guard list. */
	atomic_fetch_or_explicit(&s->permits, CLOSED, memory_order_release);
	edo__slink guard;
	edo__list_move_all(&s->waiters, &guard);
	atomic_fetch_and_explicit(&s->permits, ~WAITERS, memory_order_relaxed);
	for (;;) {
		edo__slink *l;
		while (!edo__wake_list_full(&wl) && (l = edo__list_front(&guard))) {
			edo__bsem_waiter *w = waiter_of(l);
			edo__list_remove(l);
			edo__wake_list_push(&wl, edo_waker_take(&w->waker));
		}
		if (edo__list_empty(&guard))
			break;
		edo__spin_unlock(&s->lock);
		edo__wake_list_wake(&wl);
		edo__spin_lock(&s->lock);
	}
	edo__spin_unlock(&s->lock);
	edo__wake_list_wake(&wl);
}

/* ---- the acquire future ----------------------------------------------------------- */

static edo_poll acquire_done(edo_acquire_fut *a, int rc)
{
	a->state_ = ACQ_DONE;
	a->rc = rc;
	return EDO_READY;
}

/* First poll: take the permits if they are there, else queue. */
static edo_poll acquire_first(edo_acquire_fut *a, edo_cx *cx)
{
	edo__bsem *s = a->sem_;
	size_t n = a->n_;
	size_t cur = atomic_load_explicit(&s->permits, memory_order_acquire);
	for (;;) {
		if (cur & CLOSED)
			return acquire_done(a, EDO_ECLOSED);
		if ((cur & WAITERS) || (cur >> SHIFT) < n)
			break;
		if (atomic_compare_exchange_weak_explicit(&s->permits, &cur, cur - (n << SHIFT),
							  memory_order_acquire,
							  memory_order_acquire))
			return acquire_done(a, 0);
	}
	/* Probably waiting.  Lock before the CAS that takes the last permits,
	 * so that no release can slip between that CAS and the enqueue. */
	edo_waker w = edo_waker_clone(cx->waker);
	edo__spin_lock(&s->lock);
	cur = atomic_load_explicit(&s->permits, memory_order_acquire);
	size_t take;
	for (;;) {
		if (cur & CLOSED) {
			edo__spin_unlock(&s->lock);
			edo_waker_drop(w);
			return acquire_done(a, EDO_ECLOSED);
		}
		size_t avail = cur >> SHIFT;
		if (!(cur & WAITERS) && avail >= n) {
			if (atomic_compare_exchange_weak_explicit(&s->permits, &cur,
								  cur - (n << SHIFT),
								  memory_order_acquire,
								  memory_order_acquire)) {
				edo__spin_unlock(&s->lock);
				edo_waker_drop(w);
				return acquire_done(a, 0);
			}
			continue;
		}
		take = avail;
		if (atomic_compare_exchange_weak_explicit(&s->permits, &cur, WAITERS,
							  memory_order_acquire,
							  memory_order_acquire))
			break;
	}
	atomic_store_explicit(&a->node_.remaining, n - take, memory_order_relaxed);
	a->node_.waker = w;
	edo__list_push_back(&s->waiters, &a->node_.link);
	edo__spin_unlock(&s->lock);
	a->state_ = ACQ_QUEUED;
	return EDO_PENDING;
}

/* Later polls: served?  closed?  else refresh the waker. */
static edo_poll acquire_queued(edo_acquire_fut *a, edo_cx *cx)
{
	if (atomic_load_explicit(&a->node_.remaining, memory_order_acquire) == 0)
		return acquire_done(a, 0);
	edo__bsem *s = a->sem_;
	edo__spin_lock(&s->lock);
	size_t rem = atomic_load_explicit(&a->node_.remaining, memory_order_relaxed);
	if (rem == 0) {
		edo__spin_unlock(&s->lock);
		return acquire_done(a, 0);
	}
	if (atomic_load_explicit(&s->permits, memory_order_relaxed) & CLOSED) {
		/* close() unlinked us; give back what we had collected. */
		if (edo__link_linked(&a->node_.link))
			edo__list_remove(&a->node_.link);
		edo_waker w = edo_waker_take(&a->node_.waker);
		add_permits_locked(s, a->n_ - rem);
		edo_waker_drop(w);
		return acquire_done(a, EDO_ECLOSED);
	}
	edo_waker old = edo__waker_swap(&a->node_.waker, cx->waker);
	edo__spin_unlock(&s->lock);
	edo_waker_drop(old);
	return EDO_PENDING;
}

edo_poll edo__acquire_poll(edo_acquire_fut *a, edo_cx *cx)
{
	if (a->state_ == ACQ_DONE)
		return EDO_READY;
	if (edo__coop_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	edo_poll r = a->state_ == ACQ_QUEUED ? acquire_queued(a, cx) : acquire_first(a, cx);
	if (r == EDO_PENDING)
		edo__coop_refund();
	return r;
}

static void acquire_drop(edo_future *f)
{
	edo_acquire_fut *a = (edo_acquire_fut *)f;
	if (a->state_ != ACQ_QUEUED)
		return;
	a->state_ = ACQ_DONE;
	edo__bsem *s = a->sem_;
	if (atomic_load_explicit(&a->node_.remaining, memory_order_acquire) == 0) {
		/* Served but never polled again: the permits are ours to return. */
		edo__bsem_release(s, a->n_);
		return;
	}
	edo__spin_lock(&s->lock);
	size_t rem = atomic_load_explicit(&a->node_.remaining, memory_order_relaxed);
	if (edo__link_linked(&a->node_.link))
		edo__list_remove(&a->node_.link);
	edo_waker w = edo_waker_take(&a->node_.waker);
	/* Gives back what we collected and clears WAITERS if we were the last. */
	add_permits_locked(s, a->n_ - rem);
	edo_waker_drop(w);
}

static edo_poll acquire_poll(edo_future *f, edo_cx *cx)
{
	return edo__acquire_poll((edo_acquire_fut *)f, cx);
}

static const edo_future_vtable acquire_vt = {.poll = acquire_poll, .drop = acquire_drop};

void edo__acquire_init(edo_acquire_fut *f, edo__bsem *s, size_t n)
{
	f->base.vt = &acquire_vt;
	f->sem_ = s;
	f->n_ = n;
	f->state_ = ACQ_INIT;
	f->node_.link.prev = f->node_.link.next = NULL;
	f->node_.waker = (edo_waker){0};
	atomic_init(&f->node_.remaining, 0);
	f->rc = 0;
}

static edo_future *acquire_init(edo_acquire_fut *f, edo__bsem *s, size_t n)
{
	edo__acquire_init(f, s, n);
	return &f->base;
}

/* A future that is READY at once with @rc (bad input). */
static edo_future *acquire_fail(edo_acquire_fut *f, int rc)
{
	acquire_init(f, NULL, 0);
	f->state_ = ACQ_DONE;
	f->rc = rc;
	return &f->base;
}

/* ---- Semaphore ------------------------------------------------------------------- */

int edo_semaphore_init(edo_semaphore *s, size_t permits)
{
	if (!s || permits > MAXP)
		return -EINVAL;
	edo__bsem_init(&s->s_, permits);
	return 0;
}

edo_future *edo_semaphore_acquire_many(edo_acquire_fut *f, edo_semaphore *s, size_t n)
{
	if (!f)
		return NULL;
	if (!s || n > MAXP)
		return acquire_fail(f, -EINVAL);
	if (n == 0)
		return acquire_fail(f, 0);
	return acquire_init(f, &s->s_, n);
}

edo_future *edo_semaphore_acquire(edo_acquire_fut *f, edo_semaphore *s)
{
	return edo_semaphore_acquire_many(f, s, 1);
}

int edo_semaphore_try_acquire_many(edo_semaphore *s, size_t n)
{
	if (!s || n > MAXP)
		return -EINVAL;
	if (n == 0)
		return 0;
	return edo__bsem_try_acquire(&s->s_, n);
}

int edo_semaphore_try_acquire(edo_semaphore *s)
{
	return edo_semaphore_try_acquire_many(s, 1);
}

int edo_semaphore_release(edo_semaphore *s, size_t n)
{
	if (!s)
		return -EINVAL;
	return bsem_release(&s->s_, n);
}

int edo_semaphore_add_permits(edo_semaphore *s, size_t n)
{
	return edo_semaphore_release(s, n);
}

size_t edo_semaphore_forget_permits(edo_semaphore *s, size_t n)
{
	if (!s)
		return 0;
	size_t cur = atomic_load_explicit(&s->s_.permits, memory_order_relaxed);
	for (;;) {
		size_t avail = cur >> SHIFT;
		size_t take = avail < n ? avail : n;
		if (!take)
			return 0;
		if (atomic_compare_exchange_weak_explicit(&s->s_.permits, &cur,
							  cur - (take << SHIFT),
							  memory_order_relaxed,
							  memory_order_relaxed))
			return take;
	}
}

void edo_semaphore_close(edo_semaphore *s)
{
	if (s)
		edo__bsem_close(&s->s_);
}

bool edo_semaphore_is_closed(const edo_semaphore *s)
{
	return s && (atomic_load_explicit(&s->s_.permits, memory_order_acquire) & CLOSED);
}

size_t edo_semaphore_available_permits(const edo_semaphore *s)
{
	return s ? edo__bsem_available(&s->s_) : 0;
}

/* ---- Mutex ------------------------------------------------------------------------ */

void edo_mutex_init(edo_mutex *m)
{
	if (m)
		edo__bsem_init(&m->s_, 1);
}

edo_future *edo_mutex_lock(edo_acquire_fut *f, edo_mutex *m)
{
	if (!f)
		return NULL;
	if (!m)
		return acquire_fail(f, -EINVAL);
	return acquire_init(f, &m->s_, 1);
}

int edo_mutex_try_lock(edo_mutex *m)
{
	if (!m)
		return -EINVAL;
	return edo__bsem_try_acquire(&m->s_, 1) == 0 ? 0 : -EBUSY;
}

void edo_mutex_unlock(edo_mutex *m)
{
	if (m)
		edo__bsem_release(&m->s_, 1);
}

bool edo_mutex_is_locked(const edo_mutex *m)
{
	return m && edo__bsem_available(&m->s_) == 0;
}

/* ---- RwLock ----------------------------------------------------------------------- */

int edo_rwlock_init(edo_rwlock *rw, uint32_t max_readers)
{
	if (!rw || max_readers > EDO_RWLOCK_MAX_READERS)
		return -EINVAL;
	if (max_readers == 0)
		max_readers = EDO_RWLOCK_MAX_READERS;
	rw->max_readers_ = max_readers;
	edo__bsem_init(&rw->s_, max_readers);
	return 0;
}

edo_future *edo_rwlock_read(edo_acquire_fut *f, edo_rwlock *rw)
{
	if (!f)
		return NULL;
	if (!rw)
		return acquire_fail(f, -EINVAL);
	return acquire_init(f, &rw->s_, 1);
}

edo_future *edo_rwlock_write(edo_acquire_fut *f, edo_rwlock *rw)
{
	if (!f)
		return NULL;
	if (!rw)
		return acquire_fail(f, -EINVAL);
	return acquire_init(f, &rw->s_, rw->max_readers_);
}

int edo_rwlock_try_read(edo_rwlock *rw)
{
	if (!rw)
		return -EINVAL;
	return edo__bsem_try_acquire(&rw->s_, 1) == 0 ? 0 : -EBUSY;
}

int edo_rwlock_try_write(edo_rwlock *rw)
{
	if (!rw)
		return -EINVAL;
	return edo__bsem_try_acquire(&rw->s_, rw->max_readers_) == 0 ? 0 : -EBUSY;
}

void edo_rwlock_read_unlock(edo_rwlock *rw)
{
	if (rw)
		edo__bsem_release(&rw->s_, 1);
}

void edo_rwlock_write_unlock(edo_rwlock *rw)
{
	if (rw)
		edo__bsem_release(&rw->s_, rw->max_readers_);
}

void edo_rwlock_downgrade(edo_rwlock *rw)
{
	if (rw && rw->max_readers_ > 1)
		edo__bsem_release(&rw->s_, rw->max_readers_ - 1);
}
