/* watch: Tokio's sync/watch.rs.
 *
 * One value under a reader-writer spin lock, and a version word:
 * (version << 1) | CLOSED.  A send replaces the value under the write lock,
 * bumps the version and calls notify_waiters() on notify_rx.  changed()
 * creates its notified future *before* comparing versions, so a send that
 * lands between the comparison and the wait still wakes it (notify_waiters
 * wakes every future created before the call).  Receivers going to zero
 * wake notify_tx, for the senders' closed().
 *
 * Every handle (each sender clone, each receiver) holds a reference; the
 * last one frees the channel.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>

#include "edo/error.h"
#include "sync/internal.h"

#define CLOSED ((uint64_t)1)
#define VERSION_ONE ((uint64_t)2)
#define WRITER 0x80000000u
#define MAX_ELEM ((size_t)1 << 30)

typedef struct shared {
	_Atomic(uint32_t) lock;
	_Atomic(uint64_t) version;
	_Atomic(size_t) refs, rx_cnt, tx_cnt;
	edo_notify notify_rx, notify_tx;
	size_t elem_size;
	alignas(16) unsigned char value[];
} shared;

struct edo_watch_rx {
	shared *sh;
	uint64_t seen; /* version << 1 */
};

static shared *of_tx(const edo_watch_tx *tx)
{
	return (shared *)(uintptr_t)tx;
}

static void read_lock(shared *sh)
{
	uint32_t v = atomic_load_explicit(&sh->lock, memory_order_relaxed);
	for (;;) {
		if (v & WRITER) {
			edo__cpu_relax();
			v = atomic_load_explicit(&sh->lock, memory_order_relaxed);
			continue;
		}
		if (atomic_compare_exchange_weak_explicit(&sh->lock, &v, v + 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return;
	}
}

static void read_unlock(shared *sh)
{
	atomic_fetch_sub_explicit(&sh->lock, 1, memory_order_release);
}

static void write_lock(shared *sh)
{
	uint32_t v = 0;
	unsigned spins = 0;
	while (!atomic_compare_exchange_weak_explicit(&sh->lock, &v, WRITER, memory_order_acquire,
						      memory_order_relaxed)) {
		v = 0;
		if (++spins < 64)
			edo__cpu_relax();
		else
			sched_yield();
	}
}

static void write_unlock(shared *sh)
{
	atomic_store_explicit(&sh->lock, 0, memory_order_release);
}

static void unref(shared *sh)
{
	if (atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) == 1)
		free(sh);
}

int edo_watch_new(size_t elem_size, const void *init, edo_watch_tx **tx, edo_watch_rx **rx)
{
	if (!tx || !rx || elem_size > MAX_ELEM)
		return -EINVAL;
	shared *sh = aligned_alloc(16, (sizeof(shared) + elem_size + 15) & ~(size_t)15);
	edo_watch_rx *r = malloc(sizeof *r);
	if (!sh || !r) {
		free(sh);
		free(r);
		return -ENOMEM;
	}
	atomic_init(&sh->lock, 0);
	atomic_init(&sh->version, 0);
	atomic_init(&sh->refs, 2);
	atomic_init(&sh->rx_cnt, 1);
	atomic_init(&sh->tx_cnt, 1);
	edo_notify_init(&sh->notify_rx);
	edo_notify_init(&sh->notify_tx);
	sh->elem_size = elem_size;
	if (init)
		edo__copy(sh->value, init, elem_size);
	else
		memset(sh->value, 0, elem_size);
	r->sh = sh;
	r->seen = 0;
	*tx = (edo_watch_tx *)sh;
	*rx = r;
	return 0;
}

edo_watch_tx *edo_watch_tx_clone(edo_watch_tx *tx)
{
	if (tx) {
		shared *sh = of_tx(tx);
		atomic_fetch_add_explicit(&sh->refs, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&sh->tx_cnt, 1, memory_order_relaxed);
	}
	return tx;
}

void edo_watch_tx_drop(edo_watch_tx *tx)
{
	if (!tx)
		return;
	shared *sh = of_tx(tx);
	if (atomic_fetch_sub_explicit(&sh->tx_cnt, 1, memory_order_acq_rel) == 1) {
		atomic_fetch_or_explicit(&sh->version, CLOSED, memory_order_release);
		edo_notify_waiters(&sh->notify_rx);
	}
	unref(sh);
}

/* Store: the caller copies or modifies under the write lock. */
static void publish(shared *sh)
{
	atomic_fetch_add_explicit(&sh->version, VERSION_ONE, memory_order_release);
	write_unlock(sh);
	edo_notify_waiters(&sh->notify_rx);
}

int edo_watch_send(edo_watch_tx *tx, const void *value)
{
	if (!tx)
		return -EINVAL;
	shared *sh = of_tx(tx);
	if (sh->elem_size && !value)
		return -EINVAL;
	if (atomic_load_explicit(&sh->rx_cnt, memory_order_acquire) == 0)
		return EDO_ECLOSED;
	write_lock(sh);
	edo__copy(sh->value, value, sh->elem_size);
	publish(sh);
	return 0;
}

int edo_watch_send_replace(edo_watch_tx *tx, const void *value, void *old)
{
	if (!tx)
		return -EINVAL;
	shared *sh = of_tx(tx);
	if (sh->elem_size && !value)
		return -EINVAL;
	write_lock(sh);
	if (old)
		edo__copy(old, sh->value, sh->elem_size);
	edo__copy(sh->value, value, sh->elem_size);
	publish(sh);
	return 0;
}

int edo_watch_send_modify(edo_watch_tx *tx, bool (*fn)(void *value, void *ud), void *ud)
{
	if (!tx || !fn)
		return -EINVAL;
	shared *sh = of_tx(tx);
	write_lock(sh);
	if (!fn(sh->value, ud)) {
		write_unlock(sh);
		return 0;
	}
	publish(sh);
	return 1;
}

static edo_watch_rx *rx_new(shared *sh, uint64_t seen)
{
	edo_watch_rx *r = malloc(sizeof *r);
	if (!r)
		return NULL;
	r->sh = sh;
	r->seen = seen;
	atomic_fetch_add_explicit(&sh->refs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh->rx_cnt, 1, memory_order_relaxed);
	return r;
}

edo_watch_rx *edo_watch_subscribe(edo_watch_tx *tx)
{
	if (!tx)
		return NULL;
	shared *sh = of_tx(tx);
	return rx_new(sh, atomic_load_explicit(&sh->version, memory_order_acquire) & ~CLOSED);
}

edo_watch_rx *edo_watch_rx_clone(edo_watch_rx *rx)
{
	return rx ? rx_new(rx->sh, rx->seen) : NULL;
}

void edo_watch_rx_drop(edo_watch_rx *rx)
{
	if (!rx)
		return;
	shared *sh = rx->sh;
	free(rx);
	if (atomic_fetch_sub_explicit(&sh->rx_cnt, 1, memory_order_acq_rel) == 1)
		edo_notify_waiters(&sh->notify_tx);
	unref(sh);
}

size_t edo_watch_rx_count(const edo_watch_tx *tx)
{
	return tx ? atomic_load_explicit(&of_tx(tx)->rx_cnt, memory_order_acquire) : 0;
}

static void borrow(edo_watch_rx *rx, void *out, bool update)
{
	shared *sh = rx->sh;
	read_lock(sh);
	/* Read the version under the lock: it matches the value copied. */
	uint64_t v = atomic_load_explicit(&sh->version, memory_order_acquire) & ~CLOSED;
	if (out)
		edo__copy(out, sh->value, sh->elem_size);
	read_unlock(sh);
	if (update)
		rx->seen = v;
}

void edo_watch_borrow(edo_watch_rx *rx, void *out)
{
	if (rx)
		borrow(rx, out, false);
}

void edo_watch_borrow_and_update(edo_watch_rx *rx, void *out)
{
	if (rx)
		borrow(rx, out, true);
}

int edo_watch_has_changed(const edo_watch_rx *rx)
{
	if (!rx)
		return -EINVAL;
	uint64_t v = atomic_load_explicit(&rx->sh->version, memory_order_acquire);
	if ((v & ~CLOSED) != rx->seen)
		return 1;
	return (v & CLOSED) ? EDO_ECLOSED : 0;
}

bool edo_watch_tx_is_closed(const edo_watch_tx *tx)
{
	return tx && atomic_load_explicit(&of_tx(tx)->rx_cnt, memory_order_acquire) == 0;
}

/* ---- changed() and closed() ----------------------------------------------------------- */

static edo_poll changed_poll(edo_future *fut, edo_cx *cx)
{
	edo_watch_changed_fut *f = (edo_watch_changed_fut *)fut;
	if (!f->rx_)
		return EDO_READY;
	shared *sh = f->rx_->sh;
	if (edo__coop_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	for (;;) {
		if (!f->armed_) {
			edo_notify_notified(&f->notified_, &sh->notify_rx);
			f->armed_ = 1;
		}
		uint64_t v = atomic_load_explicit(&sh->version, memory_order_acquire);
		if ((v & ~CLOSED) != f->rx_->seen) {
			f->rx_->seen = v & ~CLOSED;
			f->rc = 0;
			break;
		}
		if (v & CLOSED) {
			f->rc = EDO_ECLOSED;
			break;
		}
		if (edo_future_poll(&f->notified_.base, cx) == EDO_PENDING) {
			edo__coop_refund();
			return EDO_PENDING;
		}
		f->armed_ = 0;
	}
	edo_future_drop(&f->notified_.base);
	f->armed_ = 0;
	f->rx_ = NULL;
	return EDO_READY;
}

static void changed_drop(edo_future *fut)
{
	edo_watch_changed_fut *f = (edo_watch_changed_fut *)fut;
	if (f->armed_)
		edo_future_drop(&f->notified_.base);
	f->armed_ = 0;
	f->rx_ = NULL;
}

static const edo_future_vtable changed_vt = {.poll = changed_poll, .drop = changed_drop};

edo_future *edo_watch_changed(edo_watch_changed_fut *f, edo_watch_rx *rx)
{
	if (!f)
		return NULL;
	f->base.vt = &changed_vt;
	f->rx_ = rx;
	f->armed_ = 0;
	f->notified_.base.vt = NULL;
	f->rc = rx ? 0 : -EINVAL;
	return &f->base;
}

static edo_poll closed_poll(edo_future *fut, edo_cx *cx)
{
	edo_watch_closed_fut *f = (edo_watch_closed_fut *)fut;
	if (!f->tx_)
		return EDO_READY;
	shared *sh = of_tx(f->tx_);
	for (;;) {
		if (!f->armed_) {
			edo_notify_notified(&f->notified_, &sh->notify_tx);
			f->armed_ = 1;
		}
		if (atomic_load_explicit(&sh->rx_cnt, memory_order_acquire) == 0)
			break;
		if (edo_future_poll(&f->notified_.base, cx) == EDO_PENDING)
			return EDO_PENDING;
		f->armed_ = 0;
	}
	edo_future_drop(&f->notified_.base);
	f->armed_ = 0;
	f->tx_ = NULL;
	return EDO_READY;
}

static void closed_drop(edo_future *fut)
{
	edo_watch_closed_fut *f = (edo_watch_closed_fut *)fut;
	if (f->armed_)
		edo_future_drop(&f->notified_.base);
	f->armed_ = 0;
	f->tx_ = NULL;
}

static const edo_future_vtable closed_vt = {.poll = closed_poll, .drop = closed_drop};

edo_future *edo_watch_closed(edo_watch_closed_fut *f, edo_watch_tx *tx)
{
	if (!f)
		return NULL;
	f->base.vt = &closed_vt;
	f->tx_ = tx;
	f->armed_ = 0;
	f->notified_.base.vt = NULL;
	return &f->base;
}
