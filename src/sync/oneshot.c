/* oneshot: one value, one sender, one receiver; Tokio's sync/oneshot.rs.
 *
 * One allocation holds the state word, both wakers and the value; both
 * handles point at it.  The state word:
 *
 *   RX_TASK_SET  the receiver's waker is published: the sender may wake it
 *   VALUE_SENT   the sender is done (sent, or dropped without sending)
 *   CLOSED       the receiver is done (closed or dropped)
 *   TX_TASK_SET  the sender's waker is published (poll_closed)
 *   HAS_VALUE    with VALUE_SENT: a value was sent (else the sender dropped)
 *   TX_ALIVE, RX_ALIVE   the handles; whoever clears the last one frees
 *
 * Waker hand-off (as the join handle's JOIN_WAKER): a side writes its own
 * waker field only while its TASK_SET bit is clear, and the other side reads
 * it only if it saw the bit set in the same atomic operation that published
 * its own completion (VALUE_SENT or CLOSED).  To replace a published waker,
 * a side first clears its bit; if that shows the other side completed, the
 * other side may be reading the field, so it is left alone.  The freeing
 * side drops both fields.
 *
 * Send is one CAS when the receiver is not waiting: publish the value and
 * drop the sender in the same step.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>

#include "edo/error.h"
#include "sync/internal.h"

#define RX_TASK_SET 0x01u
#define VALUE_SENT 0x02u
#define CLOSED 0x04u
#define TX_TASK_SET 0x08u
#define HAS_VALUE 0x10u
#define TX_ALIVE 0x20u
#define RX_ALIVE 0x40u

#define MAX_ELEM ((size_t)1 << 30)

typedef struct oneshot {
	_Atomic(uint32_t) state;
	uint32_t size;
	bool taken; /* the receiver took the value (receiver-owned) */
	edo_waker rx_waker;
	edo_waker tx_waker;
	alignas(16) unsigned char value[];
} oneshot;

static oneshot *of_tx(const edo_oneshot_tx *tx)
{
	return (oneshot *)(uintptr_t)tx;
}

static oneshot *of_rx(const edo_oneshot_rx *rx)
{
	return (oneshot *)(uintptr_t)rx;
}

int edo_oneshot_new(size_t elem_size, edo_oneshot_tx **tx, edo_oneshot_rx **rx)
{
	if (!tx || !rx || elem_size > MAX_ELEM)
		return -EINVAL;
	oneshot *o = malloc(sizeof *o + elem_size);
	if (!o)
		return -ENOMEM;
	atomic_init(&o->state, TX_ALIVE | RX_ALIVE);
	o->size = (uint32_t)elem_size;
	o->taken = false;
	o->rx_waker = (edo_waker){0};
	o->tx_waker = (edo_waker){0};
	*tx = (edo_oneshot_tx *)o;
	*rx = (edo_oneshot_rx *)o;
	return 0;
}

static void oneshot_free(oneshot *o)
{
	edo_waker_drop(o->rx_waker);
	edo_waker_drop(o->tx_waker);
	free(o);
}

/* Clear @alive; free if the other handle is gone too. */
static void release(oneshot *o, uint32_t alive)
{
	uint32_t prev = atomic_fetch_and_explicit(&o->state, ~alive, memory_order_acq_rel);
	if (!(prev & (TX_ALIVE | RX_ALIVE) & ~alive))
		oneshot_free(o);
}

/* The sender is done: publish VALUE_SENT (with @has_value), wake a waiting
 * receiver, release the sender.  Returns EDO_ECLOSED (and only releases) if
 * the receiver is closed and @has_value. */
static int tx_complete(oneshot *o, uint32_t has_value)
{
	uint32_t cur = atomic_load_explicit(&o->state, memory_order_relaxed);
	for (;;) {
		if ((cur & CLOSED) && has_value) {
			release(o, TX_ALIVE);
			return EDO_ECLOSED;
		}
		bool wake = (cur & RX_TASK_SET) && !(cur & CLOSED);
		uint32_t next = cur | VALUE_SENT | has_value;
		if (!wake)
			next &= ~TX_ALIVE;
		if (atomic_compare_exchange_weak_explicit(&o->state, &cur, next,
							  memory_order_acq_rel,
							  memory_order_relaxed)) {
			if (wake) {
				edo_waker_wake_by_ref(&o->rx_waker);
				release(o, TX_ALIVE);
			} else if (!(next & RX_ALIVE)) {
				oneshot_free(o);
			}
			return 0;
		}
	}
}

int edo_oneshot_send(edo_oneshot_tx *tx, const void *value)
{
	if (!tx)
		return -EINVAL;
	oneshot *o = of_tx(tx);
	if (o->size && !value)
		return -EINVAL;
	edo__copy(o->value, value, o->size);
	return tx_complete(o, HAS_VALUE);
}

void edo_oneshot_tx_drop(edo_oneshot_tx *tx)
{
	if (tx)
		tx_complete(of_tx(tx), 0);
}

bool edo_oneshot_tx_is_closed(const edo_oneshot_tx *tx)
{
	return tx && (atomic_load_explicit(&of_tx(tx)->state, memory_order_acquire) & CLOSED);
}

/* Publish @w in @slot under the @bit protocol (file comment).  Returns the
 * state seen last; if it has @done, the other side completed and the
 * caller is READY. */
static uint32_t publish_waker(oneshot *o, edo_waker *slot, uint32_t bit, uint32_t done,
			      const edo_waker *w)
{
	uint32_t s = atomic_load_explicit(&o->state, memory_order_acquire);
	if (s & done)
		return s;
	if (s & bit) {
		if (edo_waker_will_wake(slot, w))
			return s;
		s = atomic_fetch_and_explicit(&o->state, ~bit, memory_order_acq_rel);
		if (s & done)
			return s;
		edo_waker_drop(edo_waker_take(slot));
	}
	*slot = edo_waker_clone(w);
	return atomic_fetch_or_explicit(&o->state, bit, memory_order_acq_rel);
}

edo_poll edo_oneshot_poll_closed(edo_oneshot_tx *tx, edo_cx *cx)
{
	if (!tx || !cx)
		return EDO_READY;
	oneshot *o = of_tx(tx);
	if (edo__coop_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	uint32_t s = publish_waker(o, &o->tx_waker, TX_TASK_SET, CLOSED, cx->waker);
	if (s & CLOSED)
		return EDO_READY;
	edo__coop_refund();
	return EDO_PENDING;
}

/* Take the value of a completed channel (VALUE_SENT seen in @s). */
static int take_value(oneshot *o, uint32_t s, void *out)
{
	if (!(s & HAS_VALUE) || o->taken)
		return EDO_ECLOSED;
	o->taken = true;
	if (out)
		edo__copy(out, o->value, o->size);
	return 0;
}

edo_poll edo_oneshot_poll_recv(edo_oneshot_rx *rx, edo_cx *cx, void *out, int *rc)
{
	if (!rx || !cx) {
		if (rc)
			*rc = -EINVAL;
		return EDO_READY;
	}
	oneshot *o = of_rx(rx);
	int r;
	if (o->taken) {
		r = EDO_ECLOSED;
		goto ready;
	}
	if (edo__coop_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	uint32_t s = publish_waker(o, &o->rx_waker, RX_TASK_SET, VALUE_SENT | CLOSED, cx->waker);
	if (s & VALUE_SENT) {
		r = take_value(o, s, out);
	} else if (s & CLOSED) {
		r = EDO_ECLOSED;
	} else {
		edo__coop_refund();
		return EDO_PENDING;
	}
ready:
	if (rc)
		*rc = r;
	return EDO_READY;
}

int edo_oneshot_try_recv(edo_oneshot_rx *rx, void *out)
{
	if (!rx)
		return -EINVAL;
	oneshot *o = of_rx(rx);
	uint32_t s = atomic_load_explicit(&o->state, memory_order_acquire);
	if (s & VALUE_SENT)
		return take_value(o, s, out);
	return (s & CLOSED) ? EDO_ECLOSED : -EAGAIN;
}

/* Set CLOSED (and clear RX_ALIVE if @drop); wake a sender in poll_closed. */
static void rx_close(oneshot *o, bool drop)
{
	uint32_t cur = atomic_load_explicit(&o->state, memory_order_relaxed);
	for (;;) {
		bool wake = (cur & TX_TASK_SET) && !(cur & VALUE_SENT) && !(cur & CLOSED);
		uint32_t next = cur | CLOSED;
		if (drop && !wake)
			next &= ~RX_ALIVE;
		if (atomic_compare_exchange_weak_explicit(&o->state, &cur, next,
							  memory_order_acq_rel,
							  memory_order_relaxed)) {
			if (wake) {
				edo_waker_wake_by_ref(&o->tx_waker);
				if (drop)
					release(o, RX_ALIVE);
			} else if (drop && !(next & TX_ALIVE)) {
				oneshot_free(o);
			}
			return;
		}
	}
}

void edo_oneshot_rx_close(edo_oneshot_rx *rx)
{
	if (rx)
		rx_close(of_rx(rx), false);
}

void edo_oneshot_rx_drop(edo_oneshot_rx *rx)
{
	if (rx)
		rx_close(of_rx(rx), true);
}
