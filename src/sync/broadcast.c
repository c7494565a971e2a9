/* broadcast: Tokio's sync/broadcast.rs.
 *
 * A ring of capacity (a power of two) slots; slot i holds the value sent at
 * position pos (pos % capacity == i).  The "tail lock" guards the write
 * position, the counts, the closed flag and the list of waiting receivers.
 * Each slot has its own reader-writer spin lock, so receivers copy values
 * out in parallel.  Lock order: tail, then slot.
 *
 * A receiver keeps the position `next` it reads next.  Reading slot
 * next % capacity:
 *   slot.pos == next            a value: copy it, next++
 *   slot.pos + capacity == next the slot holds the previous lap: nothing new
 *                               (wait, or closed)
 *   otherwise                   the slot was overwritten: the receiver
 *                               lagged; it jumps to the oldest kept position
 *                               (tail - capacity) and reports how many it
 *                               missed
 * Positions are 64-bit and wrap (never in practice).  Slots start one lap
 * behind position 0 (pos = i - capacity), so a new channel reads as empty.
 *
 * A waiting receiver's node lives in its handle (one wait per receiver at
 * a time).  A send wakes all waiting receivers: the list moves to a guard
 * list on the sender's stack and is woken in batches with the tail lock
 * dropped in between.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>

#include "edo/error.h"
#include "sync/internal.h"

#define WRITER 0x80000000u
#define MAX_CAP ((size_t)1 << 30)
#define MAX_ELEM ((size_t)1 << 24)

typedef struct slot {
	_Atomic(uint32_t) lock;
	uint64_t pos;
	alignas(16) unsigned char value[];
} slot;

typedef struct shared {
	edo__lock tail_lock;
	uint64_t tail; /* next position to write */
	size_t rx_cnt, tx_cnt;
	bool closed;
	edo__slink waiters;
	size_t mask, elem_size, stride;
	unsigned char *slots;
} shared;

struct edo_broadcast_rx {
	shared *sh;
	uint64_t next;
	uint64_t missed;
	/* the wait node, under the tail lock */
	edo__slink link;
	edo_waker waker;
};

static shared *of_tx(const edo_broadcast_tx *tx)
{
	return (shared *)(uintptr_t)tx;
}

static slot *slot_at(shared *sh, uint64_t pos)
{
	return (slot *)(void *)(sh->slots + (size_t)(pos & sh->mask) * sh->stride);
}

/* ---- slot locks ------------------------------------------------------------------- */

static void read_lock(slot *s)
{
	uint32_t v = atomic_load_explicit(&s->lock, memory_order_relaxed);
	for (;;) {
		if (v & WRITER) {
			edo__cpu_relax();
			v = atomic_load_explicit(&s->lock, memory_order_relaxed);
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(&s->lock, &v, v + 1, memory_order_acquire,
							  memory_order_relaxed))
			return;
	}
}

static void read_unlock(slot *s)
{
	atomic_fetch_sub_explicit(&s->lock, 1, memory_order_release);
}

static void write_lock(slot *s)
{
	uint32_t v = 0;
	while (!atomic_compare_exchange_weak_explicit(&s->lock, &v, WRITER, memory_order_acquire,
						      memory_order_relaxed)) {
		v = 0;
		sched_yield(); /* readers copy a value out; rare */
	}
}

static void write_unlock(slot *s)
{
	atomic_store_explicit(&s->lock, 0, memory_order_release);
}

/* ---- the channel -------------------------------------------------------------------- */

int edo_broadcast_new(size_t capacity, size_t elem_size, edo_broadcast_tx **tx,
		      edo_broadcast_rx **rx)
{
	if (!tx || !rx || capacity == 0 || capacity > MAX_CAP || elem_size > MAX_ELEM)
		return -EINVAL;
	size_t cap = 1;
	while (cap < capacity)
		cap <<= 1;
	shared *sh = malloc(sizeof *sh);
	edo_broadcast_rx *r = malloc(sizeof *r);
	size_t stride = (sizeof(slot) + elem_size + 15) & ~(size_t)15;
	unsigned char *slots = aligned_alloc(16, cap * stride);
	if (!sh || !r || !slots) {
		free(sh);
		free(r);
		free(slots);
		return -ENOMEM;
	}
	atomic_init(&sh->tail_lock.v, 0);
	sh->tail = 0;
	sh->rx_cnt = 1;
	sh->tx_cnt = 1;
	sh->closed = false;
	edo__list_init(&sh->waiters);
	sh->mask = cap - 1;
	sh->elem_size = elem_size;
	sh->stride = stride;
	sh->slots = slots;
	for (size_t i = 0; i < cap; i++) {
		slot *s = (slot *)(void *)(slots + i * stride);
		atomic_init(&s->lock, 0);
		s->pos = (uint64_t)i - (uint64_t)cap;
		memset(s->value, 0, elem_size);
	}
	*r = (edo_broadcast_rx){.sh = sh};
	*tx = (edo_broadcast_tx *)sh;
	*rx = r;
	return 0;
}

static void shared_free(shared *sh)
{
	free(sh->slots);
	free(sh);
}

edo_broadcast_tx *edo_broadcast_tx_clone(edo_broadcast_tx *tx)
{
	if (tx) {
		shared *sh = of_tx(tx);
		edo__spin_lock(&sh->tail_lock);
		sh->tx_cnt++;
		edo__spin_unlock(&sh->tail_lock);
	}
	return tx;
}

/* Wake every waiting receiver.  Called with the tail lock; releases it. */
static void wake_all_unlock(shared *sh)
{
	edo__slink guard;
	edo__list_move_all(&sh->waiters, &guard);
	edo__wake_list wl;
	wl.n = 0;
	for (;;) {
		edo__slink *l;
		while (!edo__wake_list_full(&wl) && (l = edo__list_front(&guard))) {
			edo_broadcast_rx *r = edo__container_of(l, edo_broadcast_rx, link);
			edo__list_remove(l);
			edo__wake_list_push(&wl, edo_waker_take(&r->waker));
		}
		if (edo__list_empty(&guard))
			break;
		edo__spin_unlock(&sh->tail_lock);
		edo__wake_list_wake(&wl);
		edo__spin_lock(&sh->tail_lock);
	}
	edo__spin_unlock(&sh->tail_lock);
	edo__wake_list_wake(&wl);
}

void edo_broadcast_tx_drop(edo_broadcast_tx *tx)
{
	if (!tx)
		return;
	shared *sh = of_tx(tx);
	edo__spin_lock(&sh->tail_lock);
	if (sh->tx_cnt > 1) {
		sh->tx_cnt--;
		edo__spin_unlock(&sh->tail_lock);
		return;
	}
	/* The last sender closes the channel and wakes the waiting receivers.
	 * It keeps its count until they are all woken: the wake goes out in
	 * batches with the lock dropped in between, and a receiver dropped
	 * meanwhile (by a woken task) must not free the channel under it. */
	sh->closed = true;
	if (sh->rx_cnt > 0) {
		wake_all_unlock(sh);
		edo__spin_lock(&sh->tail_lock);
	}
	bool last = --sh->tx_cnt == 0 && sh->rx_cnt == 0;
	edo__spin_unlock(&sh->tail_lock);
	if (last)
		shared_free(sh);
}

int edo_broadcast_send(edo_broadcast_tx *tx, const void *value)
{
	if (!tx)
		return -EINVAL;
	shared *sh = of_tx(tx);
	if (sh->elem_size && !value)
		return -EINVAL;
	edo__spin_lock(&sh->tail_lock);
	if (sh->rx_cnt == 0) {
		edo__spin_unlock(&sh->tail_lock);
		return EDO_ECLOSED;
	}
	int n = sh->rx_cnt > INT32_MAX ? INT32_MAX : (int)sh->rx_cnt;
	uint64_t pos = sh->tail++;
	slot *s = slot_at(sh, pos);
	write_lock(s);
	s->pos = pos;
	edo__copy(s->value, value, sh->elem_size);
	write_unlock(s);
	wake_all_unlock(sh);
	return n;
}

edo_broadcast_rx *edo_broadcast_subscribe(edo_broadcast_tx *tx)
{
	if (!tx)
		return NULL;
	shared *sh = of_tx(tx);
	edo_broadcast_rx *r = malloc(sizeof *r);
	if (!r)
		return NULL;
	*r = (edo_broadcast_rx){.sh = sh};
	edo__spin_lock(&sh->tail_lock);
	sh->rx_cnt++;
	r->next = sh->tail;
	edo__spin_unlock(&sh->tail_lock);
	return r;
}

size_t edo_broadcast_rx_count(const edo_broadcast_tx *tx)
{
	if (!tx)
		return 0;
	shared *sh = of_tx(tx);
	edo__spin_lock(&sh->tail_lock);
	size_t n = sh->rx_cnt;
	edo__spin_unlock(&sh->tail_lock);
	return n;
}

void edo_broadcast_rx_drop(edo_broadcast_rx *rx)
{
	if (!rx)
		return;
	shared *sh = rx->sh;
	edo__spin_lock(&sh->tail_lock);
	if (edo__link_linked(&rx->link))
		edo__list_remove(&rx->link);
	bool last = --sh->rx_cnt == 0 && sh->tx_cnt == 0;
	edo__spin_unlock(&sh->tail_lock);
	edo_waker_drop(edo_waker_take(&rx->waker));
	free(rx);
	if (last)
		shared_free(sh);
}

uint64_t edo_broadcast_rx_missed(const edo_broadcast_rx *rx)
{
	return rx ? rx->missed : 0;
}

/* Read the next value; @w (may be NULL) is registered if there is none.
 * Returns 0, EDO_ELAGGED, EDO_ECLOSED or -EAGAIN. */
static int recv(edo_broadcast_rx *rx, void *out, const edo_waker *w)
{
	shared *sh = rx->sh;
	for (;;) {
		slot *s = slot_at(sh, rx->next);
		read_lock(s);
		if (s->pos == rx->next) {
			if (out)
				edo__copy(out, s->value, sh->elem_size);
			read_unlock(s);
			rx->next++;
			return 0;
		}
		read_unlock(s);
		/* Nothing new, or lagged: decide under the tail lock. */
		edo__spin_lock(&sh->tail_lock);
		read_lock(s);
		uint64_t pos = s->pos;
		if (pos == rx->next) {
			if (out)
				edo__copy(out, s->value, sh->elem_size);
			read_unlock(s);
			edo__spin_unlock(&sh->tail_lock);
			rx->next++;
			return 0;
		}
		read_unlock(s);
		uint64_t cap = (uint64_t)sh->mask + 1;
		if (pos + cap == rx->next) {
			if (sh->closed) {
				edo__spin_unlock(&sh->tail_lock);
				return EDO_ECLOSED;
			}
			edo_waker old = {0};
			if (w) {
				old = edo__waker_swap(&rx->waker, w);
				if (!edo__link_linked(&rx->link))
					edo__list_push_back(&sh->waiters, &rx->link);
			}
			edo__spin_unlock(&sh->tail_lock);
			edo_waker_drop(old);
			return -EAGAIN;
		}
		uint64_t oldest = sh->tail - cap;
		edo__spin_unlock(&sh->tail_lock);
		uint64_t missed = oldest - rx->next;
		rx->next = oldest;
		if (missed) {
			rx->missed = missed;
			return EDO_ELAGGED;
		}
	}
}

int edo_broadcast_try_recv(edo_broadcast_rx *rx, void *out)
{
	if (!rx)
		return -EINVAL;
	return recv(rx, out, NULL);
}

edo_poll edo_broadcast_poll_recv(edo_broadcast_rx *rx, edo_cx *cx, void *out, int *rc)
{
	if (!rx || !cx) {
		if (rc)
			*rc = -EINVAL;
		return EDO_READY;
	}
	if (edo__coop_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	int r = recv(rx, out, cx->waker);
	if (r == -EAGAIN) {
		edo__coop_refund();
		return EDO_PENDING;
	}
	if (rc)
		*rc = r;
	return EDO_READY;
}
