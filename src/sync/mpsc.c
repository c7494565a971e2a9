/* mpsc: Tokio's sync/mpsc/{chan,list,block}.rs.
 *
 * The queue is a linked list of blocks of 32 slots.  Senders claim a slot
 * index with one fetch_add on tail_position, find (or grow) the block that
 * holds it, copy the value in and set the slot's bit in the block's
 * ready_slots word.  The receiver reads slots in index order and never
 * clears bits; it recycles blocks it has passed.
 *
 *   free_head ─▶ [blk 0..31] ─▶ [blk 32..63] ─▶ [blk 64..95] ─▶ NULL
 *                 (reclaim)       ▲ head (rx)      ▲ block_tail (tx hint)
 *
 * block_tail is only a hint where senders start looking.  A sender whose
 * slot lies well past a block whose 32 slots are all written moves
 * block_tail past it, records the tail_position it saw after the move
 * (observed_tail_position) and marks the block RELEASED.  Every sender that
 * could still hold a pointer to that block loaded block_tail before the
 * move, so its slot index is below observed_tail_position; the receiver
 * recycles a released block only once it has read past that position, so
 * after every such sender wrote its value and let go.  Recycled blocks are
 * appended at the end of the list (three tries, else freed).
 *
 * The last sender to go claims one more slot and sets TX_CLOSED on its
 * block: a reader at that (never written) slot sees the channel closed, after
 * every earlier value.
 *
 * Bounded channels take a permit of the batch semaphore to send (FIFO among
 * waiting senders) and the receiver gives one back per value.  Unbounded
 * channels count values in flight in a word whose bit 0 is "closed", so
 * that a receiver that closed knows when it has drained everything.
 *
 * Waking the receiver is an edo__atomic_waker: a sender pays one load when
 * the receiver is busy.  For that, setting a ready bit is seq_cst, and so
 * are the receiver's loads of ready_slots (see internal.h).
 */
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>

#include "edo/error.h"
#include "sync/internal.h"

#define BLOCK_CAP 32u
#define SLOT_MASK ((size_t)BLOCK_CAP - 1)
#define READY_MASK (((uint64_t)1 << BLOCK_CAP) - 1)
#define RELEASED ((uint64_t)1 << 32)
#define TX_CLOSED ((uint64_t)1 << 33)
#define MAX_ELEM ((size_t)1 << 24)

typedef struct block {
	size_t start_index;
	_Atomic(struct block *) next;
	_Atomic(uint64_t) ready_slots;
	size_t observed_tail_position;
	alignas(16) unsigned char values[];
} block;

/* Padded on purpose: senders, the receiver's waker, the flow control and
 * the receiver each get their own cache lines. */
typedef struct chan { // NOLINT(clang-analyzer-optin.performance.Padding)
	/* senders */
	alignas(64) _Atomic(block *) block_tail;
	_Atomic(size_t) tail_position;
	_Atomic(size_t) tx_count;
	/* waking the receiver */
	alignas(64) edo__atomic_waker rx_waker;
	/* flow control */
	alignas(64) edo__bsem sem; /* bounded */
	_Atomic(size_t) inflight;  /* unbounded: (values << 1) | closed */
	_Atomic(size_t) refs;      /* the receiver + the senders as one */
	size_t capacity;           /* 0: unbounded */
	size_t elem_size;
	size_t block_size;
	/* the receiver */
	alignas(64) block *head;
	size_t index;
	block *free_head;
	bool rx_closed;
} chan;

enum { OP_INIT, OP_HELD, OP_DONE };

static chan *of_tx(const edo_mpsc_tx *tx)
{
	return (chan *)(uintptr_t)tx;
}

static chan *of_rx(const edo_mpsc_rx *rx)
{
	return (chan *)(uintptr_t)rx;
}

/* ---- blocks ------------------------------------------------------------------------ */

static block *block_new(chan *c, size_t start)
{
	block *b = malloc(c->block_size);
	if (!b)
		abort(); /* a send cannot report ENOMEM after taking a slot */
	b->start_index = start;
	atomic_init(&b->next, NULL);
	atomic_init(&b->ready_slots, 0);
	b->observed_tail_position = 0;
	return b;
}

static unsigned char *slot_ptr(chan *c, block *b, size_t index)
{
	return b->values + (index & SLOT_MASK) * c->elem_size;
}

/* Link a new block after @b (we found b->next NULL); returns b's next.  A
 * loser of the race appends its block further down instead of freeing it. */
static block *block_grow(chan *c, block *b)
{
	block *nb = block_new(c, b->start_index + BLOCK_CAP);
	block *next = NULL;
	/* seq_cst, as the ready bits: a receiver's re-check must find the block. */
	if (atomic_compare_exchange_strong_explicit(&b->next, &next, nb, memory_order_seq_cst,
						    memory_order_acquire))
		return nb;
	block *cur = next;
	for (;;) {
		nb->start_index = cur->start_index + BLOCK_CAP;
		block *n = NULL;
		if (atomic_compare_exchange_strong_explicit(&cur->next, &n, nb,
							    memory_order_seq_cst,
							    memory_order_acquire))
			return next;
		cur = n;
		edo__cpu_relax();
	}
}

/* The block holding @slot, moving block_tail forward on the way. */
static block *find_block(chan *c, size_t slot)
{
	size_t start = slot & ~SLOT_MASK;
	block *b = atomic_load_explicit(&c->block_tail, memory_order_acquire);
	if (b->start_index == start)
		return b;
	/* Only a sender well past the tail block tries to move the tail, so
	 * that senders do not all contend on it. */
	bool try_tail = (start - b->start_index) / BLOCK_CAP > (slot & SLOT_MASK);
	for (;;) {
		if (b->start_index == start)
			return b;
		block *next = atomic_load_explicit(&b->next, memory_order_acquire);
		if (!next)
			next = block_grow(c, b);
		if (try_tail && (atomic_load_explicit(&b->ready_slots, memory_order_acquire) &
				 READY_MASK) == READY_MASK) {
			block *expected = b;
			if (atomic_compare_exchange_strong_explicit(&c->block_tail, &expected, next,
								    memory_order_release,
								    memory_order_relaxed)) {
				/* A read-modify-write, not a load (Tokio's
				 * fetch_add(0, Release)): a sender whose fetch_add
				 * took a slot in b and that then read the old
				 * block_tail is either seen here, or its fetch_add
				 * comes after this one and it then sees the new
				 * tail.  A plain load could miss it (store
				 * buffering), and the receiver would recycle b
				 * under its write. */
				b->observed_tail_position =
					atomic_fetch_add_explicit(&c->tail_position, 0,
								  memory_order_release);
				atomic_fetch_or_explicit(&b->ready_slots, RELEASED,
							 memory_order_release);
			} else {
				try_tail = false;
			}
		}
		b = next;
	}
}

static void list_push(chan *c, const void *value)
{
	size_t slot = atomic_fetch_add_explicit(&c->tail_position, 1, memory_order_acquire);
	block *b = find_block(c, slot);
	edo__copy(slot_ptr(c, b, slot), value, c->elem_size);
	atomic_fetch_or_explicit(&b->ready_slots, (uint64_t)1 << (slot & SLOT_MASK),
				 memory_order_seq_cst);
}

static void list_close(chan *c)
{
	size_t slot = atomic_fetch_add_explicit(&c->tail_position, 1, memory_order_release);
	block *b = find_block(c, slot);
	atomic_fetch_or_explicit(&b->ready_slots, TX_CLOSED, memory_order_seq_cst);
}

/* Put a block the receiver is done with at the end of the list. */
static void reclaim_block(chan *c, block *b)
{
	b->start_index = 0;
	atomic_store_explicit(&b->next, NULL, memory_order_relaxed);
	atomic_store_explicit(&b->ready_slots, 0, memory_order_relaxed);
	block *cur = atomic_load_explicit(&c->block_tail, memory_order_acquire);
	for (int i = 0; i < 3; i++) {
		b->start_index = cur->start_index + BLOCK_CAP;
		block *n = NULL;
		if (atomic_compare_exchange_strong_explicit(&cur->next, &n, b, memory_order_seq_cst,
							    memory_order_acquire))
			return;
		cur = n;
	}
	free(b);
}

enum { POP_EMPTY = 0, POP_VALUE = 1, POP_CLOSED = -1 };

static int list_pop(chan *c, void *out)
{
	size_t start = c->index & ~SLOT_MASK;
	while (c->head->start_index != start) {
		/* seq_cst: part of the receiver's re-check after arming its waker. */
		block *next = atomic_load_explicit(&c->head->next, memory_order_seq_cst);
		if (!next)
			return POP_EMPTY;
		c->head = next;
	}
	while (c->free_head != c->head) {
		block *b = c->free_head;
		uint64_t bits = atomic_load_explicit(&b->ready_slots, memory_order_acquire);
		if (!(bits & RELEASED) || b->observed_tail_position > c->index)
			break;
		c->free_head = atomic_load_explicit(&b->next, memory_order_relaxed);
		reclaim_block(c, b);
	}
	block *b = c->head;
	uint64_t bits = atomic_load_explicit(&b->ready_slots, memory_order_seq_cst);
	if (!(bits & ((uint64_t)1 << (c->index & SLOT_MASK))))
		return (bits & TX_CLOSED) ? POP_CLOSED : POP_EMPTY;
	if (out)
		edo__copy(out, slot_ptr(c, b, c->index), c->elem_size);
	c->index++;
	return POP_VALUE;
}

/* ---- the channel ------------------------------------------------------------------- */

static int chan_new(size_t capacity, size_t elem_size, edo_mpsc_tx **tx, edo_mpsc_rx **rx)
{
	if (!tx || !rx || elem_size > MAX_ELEM || capacity > EDO_SEMAPHORE_MAX_PERMITS)
		return -EINVAL;
	size_t size = (sizeof(chan) + 63) & ~(size_t)63;
	chan *c = aligned_alloc(64, size);
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof *c);
	c->elem_size = elem_size;
	c->block_size = sizeof(block) + BLOCK_CAP * elem_size;
	block *b = malloc(c->block_size);
	if (!b) {
		free(c);
		return -ENOMEM;
	}
	b->start_index = 0;
	atomic_init(&b->next, NULL);
	atomic_init(&b->ready_slots, 0);
	b->observed_tail_position = 0;
	atomic_init(&c->block_tail, b);
	atomic_init(&c->tail_position, 0);
	atomic_init(&c->tx_count, 1);
	edo__aw_init(&c->rx_waker);
	edo__bsem_init(&c->sem, capacity);
	atomic_init(&c->inflight, 0);
	atomic_init(&c->refs, 2);
	c->capacity = capacity;
	c->head = c->free_head = b;
	*tx = (edo_mpsc_tx *)c;
	*rx = (edo_mpsc_rx *)c;
	return 0;
}

int edo_mpsc_new(size_t capacity, size_t elem_size, edo_mpsc_tx **tx, edo_mpsc_rx **rx)
{
	if (capacity == 0)
		return -EINVAL;
	return chan_new(capacity, elem_size, tx, rx);
}

int edo_mpsc_unbounded_new(size_t elem_size, edo_mpsc_tx **tx, edo_mpsc_rx **rx)
{
	return chan_new(0, elem_size, tx, rx);
}

static void chan_unref(chan *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	block *b = c->free_head;
	while (b) {
		block *next = atomic_load_explicit(&b->next, memory_order_relaxed);
		free(b);
		b = next;
	}
	edo__aw_free(&c->rx_waker);
	free(c);
}

edo_mpsc_tx *edo_mpsc_tx_clone(edo_mpsc_tx *tx)
{
	if (tx)
		atomic_fetch_add_explicit(&of_tx(tx)->tx_count, 1, memory_order_relaxed);
	return tx;
}

void edo_mpsc_tx_drop(edo_mpsc_tx *tx)
{
	if (!tx)
		return;
	chan *c = of_tx(tx);
	if (atomic_fetch_sub_explicit(&c->tx_count, 1, memory_order_acq_rel) != 1)
		return;
	list_close(c);
	edo__aw_wake(&c->rx_waker);
	chan_unref(c);
}

/* Idle: no value in flight and no permit out.  Receiver side; seq_cst, as
 * part of the receiver's re-check after arming (see rx_wake_idle()). */
static bool chan_idle(chan *c)
{
	if (c->capacity)
		return (atomic_load_explicit(&c->sem.permits, memory_order_seq_cst) >> 2) ==
		       c->capacity;
	return (atomic_load_explicit(&c->inflight, memory_order_seq_cst) >> 1) == 0;
}

/* A permit or an in-flight count went back after the receiver closed: a
 * receiver waiting for the channel to go idle must hear of it.  The seq_cst
 * no-op RMW orders that return before the waker check (the store-buffering
 * pattern of internal.h, without a fence, which TSan does not model). */
static void rx_wake_idle(chan *c)
{
	if (c->capacity)
		atomic_fetch_add_explicit(&c->sem.permits, 0, memory_order_seq_cst);
	else
		atomic_fetch_add_explicit(&c->inflight, 0, memory_order_seq_cst);
	edo__aw_wake(&c->rx_waker);
}

static bool chan_is_closed(chan *c)
{
	if (c->capacity)
		return edo__bsem_is_closed(&c->sem);
	return atomic_load_explicit(&c->inflight, memory_order_acquire) & 1;
}

/* Unbounded: count a value in flight unless the receiver closed. */
static int unbounded_take(chan *c)
{
	size_t cur = atomic_load_explicit(&c->inflight, memory_order_relaxed);
	for (;;) {
		if (cur & 1)
			return EDO_ECLOSED;
		if (atomic_compare_exchange_weak_explicit(&c->inflight, &cur, cur + 2,
							  memory_order_acquire,
							  memory_order_relaxed))
			return 0;
	}
}

/* A value was received (or @n of them): return the permits. */
static void chan_consumed(chan *c, size_t n)
{
	if (c->capacity)
		edo__bsem_release(&c->sem, n);
	else
		atomic_fetch_sub_explicit(&c->inflight, n << 1, memory_order_release);
}

static void send_value(chan *c, const void *value)
{
	list_push(c, value);
	edo__aw_wake(&c->rx_waker);
}

/* A permit was given back without sending; a closed receiver waiting for
 * the channel to go idle must hear about it. */
static void permit_returned(chan *c)
{
	edo__bsem_release(&c->sem, 1);
	if (edo__bsem_is_closed(&c->sem))
		rx_wake_idle(c);
}

int edo_mpsc_try_send(edo_mpsc_tx *tx, const void *value)
{
	if (!tx)
		return -EINVAL;
	chan *c = of_tx(tx);
	if (c->elem_size && !value)
		return -EINVAL;
	int rc = c->capacity ? edo__bsem_try_acquire(&c->sem, 1) : unbounded_take(c);
	if (rc < 0)
		return rc;
	send_value(c, value);
	return 0;
}

bool edo_mpsc_is_closed(const edo_mpsc_tx *tx)
{
	return tx && chan_is_closed(of_tx(tx));
}

size_t edo_mpsc_capacity(const edo_mpsc_tx *tx)
{
	if (!tx)
		return 0;
	chan *c = of_tx(tx);
	return c->capacity ? edo__bsem_available(&c->sem) : SIZE_MAX;
}

size_t edo_mpsc_max_capacity(const edo_mpsc_tx *tx)
{
	if (!tx)
		return 0;
	chan *c = of_tx(tx);
	return c->capacity ? c->capacity : SIZE_MAX;
}

/* ---- send and reserve futures ----------------------------------------------------- */

/* Take a slot for a send: READY with 0 or EDO_ECLOSED in *rc. */
static edo_poll slot_poll(chan *c, edo_acquire_fut *acq, edo_cx *cx, int *rc)
{
	if (!c->capacity) {
		*rc = unbounded_take(c);
		return EDO_READY;
	}
	if (edo__acquire_poll(acq, cx) == EDO_PENDING)
		return EDO_PENDING;
	*rc = acq->rc < 0 ? EDO_ECLOSED : 0;
	return EDO_READY;
}

static edo_poll send_poll(edo_future *f, edo_cx *cx)
{
	edo_mpsc_send_fut *s = (edo_mpsc_send_fut *)f;
	if (s->state_ == OP_DONE)
		return EDO_READY;
	chan *c = of_tx(s->tx_);
	if (slot_poll(c, &s->acq_, cx, &s->rc) == EDO_PENDING)
		return EDO_PENDING;
	s->state_ = OP_DONE;
	if (s->rc == 0)
		send_value(c, s->value_);
	return EDO_READY;
}

static void send_drop(edo_future *f)
{
	edo_mpsc_send_fut *s = (edo_mpsc_send_fut *)f;
	if (s->state_ == OP_DONE)
		return;
	s->state_ = OP_DONE;
	edo_future_drop(&s->acq_.base);
	chan *c = of_tx(s->tx_);
	if (c->capacity && edo__bsem_is_closed(&c->sem))
		rx_wake_idle(c);
}

static const edo_future_vtable send_vt = {.poll = send_poll, .drop = send_drop};

static edo_poll done_poll(edo_future *f, edo_cx *cx)
{
	return EDO_READY;
}

static const edo_future_vtable done_vt = {.poll = done_poll, .drop = NULL};

edo_future *edo_mpsc_send(edo_mpsc_send_fut *f, edo_mpsc_tx *tx, const void *value)
{
	if (!f)
		return NULL;
	/* Field by field: a memset of the whole future costs more than a send. */
	f->rc = 0;
	f->acq_.base.vt = NULL;
	if (!tx || (of_tx(tx)->elem_size && !value)) {
		f->base.vt = &done_vt;
		f->state_ = OP_DONE;
		f->rc = -EINVAL;
		return &f->base;
	}
	chan *c = of_tx(tx);
	f->base.vt = &send_vt;
	f->tx_ = tx;
	f->value_ = value;
	f->state_ = OP_INIT;
	if (c->capacity)
		edo__acquire_init(&f->acq_, &c->sem, 1);
	return &f->base;
}

static edo_poll reserve_poll(edo_future *f, edo_cx *cx)
{
	edo_mpsc_permit *p = (edo_mpsc_permit *)f;
	if (p->state_ != OP_INIT)
		return EDO_READY;
	chan *c = of_tx(p->tx_);
	if (slot_poll(c, &p->acq_, cx, &p->rc) == EDO_PENDING)
		return EDO_PENDING;
	p->state_ = p->rc == 0 ? OP_HELD : OP_DONE;
	return EDO_READY;
}

static void reserve_drop(edo_future *f)
{
	edo_mpsc_permit *p = (edo_mpsc_permit *)f;
	chan *c = of_tx(p->tx_);
	if (p->state_ == OP_HELD) {
		if (c->capacity) {
			permit_returned(c);
		} else {
			atomic_fetch_sub_explicit(&c->inflight, 2, memory_order_release);
			rx_wake_idle(c);
		}
	} else if (p->state_ == OP_INIT) {
		edo_future_drop(&p->acq_.base);
		if (c->capacity && edo__bsem_is_closed(&c->sem))
			rx_wake_idle(c);
	}
	p->state_ = OP_DONE;
}

static const edo_future_vtable reserve_vt = {.poll = reserve_poll, .drop = reserve_drop};

static void permit_init(edo_mpsc_permit *p, edo_mpsc_tx *tx)
{
	p->rc = 0;
	p->state_ = OP_INIT;
	p->acq_.base.vt = NULL;
	p->base.vt = &reserve_vt;
	p->tx_ = tx;
	chan *c = of_tx(tx);
	if (c->capacity)
		edo__acquire_init(&p->acq_, &c->sem, 1);
}

edo_future *edo_mpsc_reserve(edo_mpsc_permit *p, edo_mpsc_tx *tx)
{
	if (!p)
		return NULL;
	if (!tx) {
		p->tx_ = NULL;
		p->acq_.base.vt = NULL;
		p->base.vt = &done_vt;
		p->state_ = OP_DONE;
		p->rc = -EINVAL;
		return &p->base;
	}
	permit_init(p, tx);
	return &p->base;
}

int edo_mpsc_try_reserve(edo_mpsc_permit *p, edo_mpsc_tx *tx)
{
	if (!p || !tx)
		return -EINVAL;
	chan *c = of_tx(tx);
	int rc = c->capacity ? edo__bsem_try_acquire(&c->sem, 1) : unbounded_take(c);
	if (rc < 0)
		return rc;
	permit_init(p, tx);
	p->state_ = OP_HELD;
	return 0;
}

int edo_mpsc_permit_send(edo_mpsc_permit *p, const void *value)
{
	if (!p || p->state_ != OP_HELD || p->base.vt != &reserve_vt)
		return -EINVAL;
	chan *c = of_tx(p->tx_);
	if (c->elem_size && !value)
		return -EINVAL;
	p->state_ = OP_DONE;
	send_value(c, value);
	return 0;
}

/* ---- receiving -------------------------------------------------------------------- */

/* Pop up to @max values into @buf; returns how many, or -1 if closed and
 * drained.  Gives their permits back. */
static long recv_batch(chan *c, unsigned char *buf, size_t max)
{
	size_t n = 0;
	int r = POP_EMPTY;
	while (n < max && (r = list_pop(c, buf ? buf + n * c->elem_size : NULL)) == POP_VALUE)
		n++;
	if (n) {
		chan_consumed(c, n);
		return (long)n;
	}
	if (r == POP_CLOSED || (c->rx_closed && chan_idle(c)))
		return -1;
	return 0;
}

static edo_poll recv_many(chan *c, edo_cx *cx, void *buf, size_t max, long *got)
{
	if (edo__coop_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	long n = recv_batch(c, buf, max);
	if (n == 0) {
		edo__aw_register(&c->rx_waker, cx->waker);
		n = recv_batch(c, buf, max);
		if (n == 0) {
			edo__coop_refund();
			return EDO_PENDING;
		}
		edo__aw_disarm(&c->rx_waker);
	}
	*got = n;
	return EDO_READY;
}

edo_poll edo_mpsc_poll_recv(edo_mpsc_rx *rx, edo_cx *cx, void *out, int *rc)
{
	if (!rx || !cx) {
		if (rc)
			*rc = -EINVAL;
		return EDO_READY;
	}
	long n;
	if (recv_many(of_rx(rx), cx, out, 1, &n) == EDO_PENDING)
		return EDO_PENDING;
	if (rc)
		*rc = n > 0 ? 0 : EDO_ECLOSED;
	return EDO_READY;
}

edo_poll edo_mpsc_poll_recv_many(edo_mpsc_rx *rx, edo_cx *cx, void *buf, size_t max, size_t *n)
{
	if (!rx || !cx || (!buf && max && of_rx(rx)->elem_size)) {
		if (n)
			*n = 0;
		return EDO_READY;
	}
	long got = 0;
	if (max == 0) {
		got = 0;
	} else if (recv_many(of_rx(rx), cx, buf, max, &got) == EDO_PENDING) {
		return EDO_PENDING;
	}
	if (n)
		*n = got > 0 ? (size_t)got : 0;
	return EDO_READY;
}

int edo_mpsc_try_recv(edo_mpsc_rx *rx, void *out)
{
	if (!rx)
		return -EINVAL;
	long n = recv_batch(of_rx(rx), out, 1);
	return n > 0 ? 0 : n < 0 ? EDO_ECLOSED : -EAGAIN;
}

void edo_mpsc_rx_close(edo_mpsc_rx *rx)
{
	if (!rx)
		return;
	chan *c = of_rx(rx);
	if (c->rx_closed)
		return;
	c->rx_closed = true;
	if (c->capacity)
		edo__bsem_close(&c->sem);
	else
		atomic_fetch_or_explicit(&c->inflight, 1, memory_order_acq_rel);
}

void edo_mpsc_rx_drop(edo_mpsc_rx *rx)
{
	if (!rx)
		return;
	edo_mpsc_rx_close(rx);
	chan_unref(of_rx(rx));
}
