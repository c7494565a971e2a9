/* Edo — async synchronisation primitives, channels, JoinSet, select and join.
 *
 * Everything here is Tokio's `tokio::sync` (and `JoinSet`, `select!`,
 * `join!`) in C:
 *
 *   oneshot      one value from one sender to one receiver
 *   semaphore    a FIFO batch semaphore (the base of mutex, rwlock, mpsc)
 *   mutex        an async mutex (a semaphore of one permit)
 *   rwlock       a writer-fair readers-writer lock
 *   mpsc         bounded and unbounded multi-producer, single-consumer channels
 *   notify       wake one waiter (storing one permit) or all current waiters
 *   barrier      n tasks wait until all have arrived
 *   once_cell    a value initialised once, asynchronously, under races
 *   broadcast    every receiver sees every value; slow ones lag
 *   watch        receivers see the latest value and wait for changes
 *   joinset      a set of tasks joined in completion order
 *   select/join  await the first of N futures / all of N futures
 *
 * Two ways to wait, as everywhere in Edo:
 *
 *  - Operations that keep no state of their own between polls are poll
 *    functions, called again until READY:
 *        EDO_AWAIT_POLL(edo_mpsc_poll_recv(self->rx, cx, &self->v, &self->rc));
 *  - Operations that need state (a place in a wait queue, a permit) are
 *    small futures the caller stores (in a coroutine frame, or in its own
 *    future).  The function named after the operation initialises the future
 *    in place and returns it, so a coroutine awaits it in one line:
 *        EDO_AWAIT(edo_mutex_lock(&self->lk, self->m));
 *    Outputs are the future's public fields (`rc`, ...), valid once it is
 *    READY.  Dropping a pending one (edo_future_drop(), or dropping the frame
 *    awaiting it) cancels it cleanly.  A future of this header must not move
 *    in memory once polled (a waiter node inside it may be linked into a
 *    queue); it may be re-initialised after it completed or was dropped.
 *    A future refers to its primitive (or channel handle): keep that alive
 *    until the future has completed or been dropped.
 *
 * Values.  Channels carry values of a fixed size in bytes given when the
 * channel is made (`elem_size`); sending copies the value in, receiving
 * copies it out.  Values still in a channel when it is freed are discarded
 * without any call: drain a channel whose values own resources.
 *
 * Budget.  Like Tokio's, these operations take a unit of the task's
 * cooperative budget when they complete: oneshot receive and closed, every
 * semaphore-based acquire (mutex, rwlock, semaphore, bounded mpsc send and
 * reserve), mpsc receive, broadcast receive, watch changed, barrier wait,
 * JoinSet join_next.  Notify and unbounded sends take none; select checks
 * for budget without taking it.  try_* functions never wait and take none.
 *
 * Thread-safety.  Unless a function says otherwise, every function may be
 * called from any thread, inside or outside a runtime, on both runtime
 * flavours; a future is polled and dropped by one thread at a time (its
 * owner).  Errors are negative: -EINVAL for bad input (nothing is changed),
 * EDO_ECLOSED for a closed primitive, EDO_ELAGGED for a lagging broadcast
 * receiver, -EAGAIN / -EBUSY where a try_* would have to wait.  A future
 * made on a NULL primitive completes at its first poll: with f->rc =
 * -EINVAL where it has an `rc`; the futures without an error output
 * (notified, barrier wait, watch closed, JoinSet shutdown) have nowhere to
 * report it, so they complete doing nothing (as net.h's poll functions do
 * when given a NULL result pointer).  A NULL future gives NULL.
 */
#ifndef EDO_SYNC_H
#define EDO_SYNC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edo/future.h"
#include "edo/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- private building blocks (fields of the structs below; never touch) --------------- */

typedef struct edo__lock {
	_Atomic(int) v;
} edo__lock;

typedef struct edo__slink {
	struct edo__slink *prev, *next;
} edo__slink;

/* The batch semaphore: (permits << 2) | WAITERS | CLOSED, a lock, and a FIFO
 * of waiters (oldest first).  See src/sync/semaphore.c. */
typedef struct edo__bsem {
	_Atomic(size_t) permits;
	edo__lock lock;
	edo__slink waiters;
} edo__bsem;

/* A waiter of the batch semaphore, embedded in the acquire future. */
typedef struct edo__bsem_waiter {
	edo__slink link;
	edo_waker waker;
	_Atomic(size_t) remaining; /* permits still needed; 0 = served */
} edo__bsem_waiter;

/* ==== oneshot =========================================================================== */

/*
 * A oneshot channel carries one value of elem_size bytes from one sender to
 * one receiver.  The two ends are independent handles; each is released by
 * exactly one call (the sender by edo_oneshot_send() or
 * edo_oneshot_tx_drop(), the receiver by edo_oneshot_rx_drop()).  Each end
 * is owned by one holder at a time (its functions are not thread-safe on
 * the same handle), but the two ends may be used from different threads.
 *
 *     edo_oneshot_tx *tx; edo_oneshot_rx *rx;
 *     edo_oneshot_new(sizeof(int), &tx, &rx);
 *     ... in the sending task:    int v = 42; edo_oneshot_send(tx, &v);
 *     ... in the receiving task:  EDO_AWAIT_POLL(edo_oneshot_poll_recv(self->rx, cx,
 *                                                                 &self->v, &self->rc));
 */
typedef struct edo_oneshot_tx edo_oneshot_tx;
typedef struct edo_oneshot_rx edo_oneshot_rx;

/**
 * edo_oneshot_new() - make a oneshot channel for values of @elem_size bytes
 * (0 is allowed: a pure signal).  Returns 0, -EINVAL (NULL outputs, absurd
 * size) or -ENOMEM; on failure *@tx and *@rx are untouched.
 */
int edo_oneshot_new(size_t elem_size, edo_oneshot_tx **tx, edo_oneshot_rx **rx);

/**
 * edo_oneshot_send() - send the value at @value (elem_size bytes; may be
 * NULL if elem_size is 0) and release the sender.  Returns 0 if the value
 * was stored for the receiver, EDO_ECLOSED if the receiver had already
 * closed or been dropped (the value was not taken), -EINVAL for a NULL @tx,
 * or a NULL @value with a non-zero elem_size (nothing happens, @tx is still
 * yours).  In every other case @tx is consumed.  Never waits.
 */
int edo_oneshot_send(edo_oneshot_tx *tx, const void *value);

/** edo_oneshot_tx_drop() - release the sender without sending: the receiver
 * gets EDO_ECLOSED.  NULL is a no-op. */
void edo_oneshot_tx_drop(edo_oneshot_tx *tx);

/** edo_oneshot_tx_is_closed() - whether the receiver closed or went away (a
 * send would fail). */
bool edo_oneshot_tx_is_closed(const edo_oneshot_tx *tx);

/**
 * edo_oneshot_poll_closed() - READY once the receiver has closed or been
 * dropped ("the receiver went away"): a sender computing an expensive reply
 * can give up.  Takes a unit of budget when READY.  Cancel-safe (it keeps no
 * state).  Not thread-safe with other calls on @tx.
 */
edo_poll edo_oneshot_poll_closed(edo_oneshot_tx *tx, edo_cx *cx);

/**
 * edo_oneshot_poll_recv() - wait for the value.  When READY, *@rc is 0 and
 * the value was copied to @out (elem_size bytes; may be NULL to discard it),
 * or *@rc is EDO_ECLOSED: the sender was dropped without sending, the
 * receiver closed before a value arrived, or the value was already received.
 * Takes a unit of budget when READY.  Cancel-safe: a value is only taken by
 * the poll that returns it.  Not thread-safe with other calls on @rx.
 */
edo_poll edo_oneshot_poll_recv(edo_oneshot_rx *rx, edo_cx *cx, void *out, int *rc);

/**
 * edo_oneshot_try_recv() - take the value if it is there.  Returns 0 (the
 * value was copied to @out), -EAGAIN (not sent yet), EDO_ECLOSED (the sender
 * is gone without sending, the receiver closed before a value arrived, or
 * the value was already received), -EINVAL (NULL @rx).
 */
int edo_oneshot_try_recv(edo_oneshot_rx *rx, void *out);

/**
 * edo_oneshot_rx_close() - refuse the value: a later send fails.  A value
 * sent before the close can still be received.  The handle stays valid.
 */
void edo_oneshot_rx_close(edo_oneshot_rx *rx);

/** edo_oneshot_rx_drop() - close and release the receiver.  NULL is a no-op. */
void edo_oneshot_rx_drop(edo_oneshot_rx *rx);

/* ==== semaphore, mutex, rwlock ============================================================= */

/*
 * All three are a FIFO batch semaphore.  Waiters are served strictly in the
 * order they first waited: a released permit goes to the oldest waiter,
 * never to a newcomer (no barging), and a large request at the head of the
 * queue collects permits as they come and holds back later small ones
 * (that is what makes the rwlock writer-fair).  Waiter nodes live inside the
 * acquire futures, so waiting allocates nothing.
 *
 * Cancel-safety: dropping a pending acquire gives up its place in the queue
 * and gives back the permits it had collected, to the next waiters.  A
 * completed acquire holds its permits until they are released by hand
 * (dropping a completed acquire future does not release them).
 *
 * The structs are embedded by the user; initialise them before use and do
 * not copy them afterwards.  They own no memory: nothing to destroy, but
 * no future may still be waiting when their memory is reused.
 */

/** The most permits a semaphore can hold. */
#define EDO_SEMAPHORE_MAX_PERMITS (SIZE_MAX >> 3)

/** The future that acquires permits (semaphore acquire, mutex lock, rwlock
 * read and write).  Fields ending in _ are private. */
typedef struct edo_acquire_fut {
	edo_future base;
	edo__bsem *sem_;
	size_t n_;
	uint8_t state_;
	edo__bsem_waiter node_;
	/** Output: 0 once the permits are held, EDO_ECLOSED if the semaphore
	 * was closed (nothing is held then). */
	int rc;
} edo_acquire_fut;

typedef struct edo_semaphore {
	edo__bsem s_;
} edo_semaphore;

/**
 * edo_semaphore_init() - a semaphore with @permits permits.  Returns 0, or
 * -EINVAL (NULL, or more than EDO_SEMAPHORE_MAX_PERMITS).  Not thread-safe
 * (nobody else may use @s yet).
 */
int edo_semaphore_init(edo_semaphore *s, size_t permits);

/**
 * edo_semaphore_acquire() - initialise @f to acquire one permit of @s and
 * return it as a future.  Output f->rc.  Takes a unit of budget when READY.
 */
edo_future *edo_semaphore_acquire(edo_acquire_fut *f, edo_semaphore *s);

/**
 * edo_semaphore_acquire_many() - like edo_semaphore_acquire() for @n
 * permits, acquired all at once (in FIFO order with the other waiters).
 * An @n above EDO_SEMAPHORE_MAX_PERMITS completes at once with f->rc =
 * -EINVAL; @n = 0 completes at once with 0.
 */
edo_future *edo_semaphore_acquire_many(edo_acquire_fut *f, edo_semaphore *s, size_t n);

/**
 * edo_semaphore_try_acquire_many() - take @n permits without waiting.
 * Returns 0, -EAGAIN (not enough permits, or others are waiting: a try
 * never barges past a waiter), EDO_ECLOSED, or -EINVAL.
 */
int edo_semaphore_try_acquire_many(edo_semaphore *s, size_t n);

/** edo_semaphore_try_acquire() - edo_semaphore_try_acquire_many(@s, 1). */
int edo_semaphore_try_acquire(edo_semaphore *s);

/**
 * edo_semaphore_release() - give back @n permits acquired earlier (or add
 * @n new ones: it is the same operation).  They go to the oldest waiters
 * first; what is left becomes available.  Returns 0, -EINVAL (NULL, or @n
 * above the maximum) or -EOVERFLOW (the total would exceed
 * EDO_SEMAPHORE_MAX_PERMITS); on error nothing changes.
 */
int edo_semaphore_release(edo_semaphore *s, size_t n);

/** edo_semaphore_add_permits() - the same as edo_semaphore_release(). */
int edo_semaphore_add_permits(edo_semaphore *s, size_t n);

/**
 * edo_semaphore_forget_permits() - remove up to @n of the available permits
 * for good.  Returns how many were removed (permits held by waiters are
 * not touched).  To "forget" permits you acquired, simply never release
 * them.
 */
size_t edo_semaphore_forget_permits(edo_semaphore *s, size_t n);

/**
 * edo_semaphore_close() - close @s: every pending acquire completes with
 * EDO_ECLOSED (in FIFO order), later acquires and try_acquires fail.
 * Permits held stay held; releasing them is still allowed.
 */
void edo_semaphore_close(edo_semaphore *s);

/** edo_semaphore_is_closed() - whether edo_semaphore_close() was called. */
bool edo_semaphore_is_closed(const edo_semaphore *s);

/** edo_semaphore_available_permits() - permits available now (0 while anyone waits). */
size_t edo_semaphore_available_permits(const edo_semaphore *s);

/*
 * Mutex: unlike pthread's, waiting for it suspends the task, not the
 * thread, so it may be held across an await.  It guards no data of its own
 * (C has no generics): the caller keeps the data beside it.  It is not
 * recursive and has no owner: any thread may unlock it.
 */
typedef struct edo_mutex {
	edo__bsem s_;
} edo_mutex;

/** edo_mutex_init() - an unlocked mutex.  Not thread-safe (first use). */
void edo_mutex_init(edo_mutex *m);

/**
 * edo_mutex_lock() - initialise @f to lock @m and return it as a future;
 * READY with f->rc = 0 once the caller holds the lock.  Waiters get the
 * lock in FIFO order.  Takes a unit of budget when READY.  Dropping it while
 * pending gives up the place in the queue.
 */
edo_future *edo_mutex_lock(edo_acquire_fut *f, edo_mutex *m);

/** edo_mutex_try_lock() - lock if free and nobody waits: 0, or -EBUSY. */
int edo_mutex_try_lock(edo_mutex *m);

/** edo_mutex_unlock() - release the lock (to the oldest waiter, if any).
 * Unlocking a mutex that is not locked is an error the library does not
 * detect (as with a semaphore, it adds a permit). */
void edo_mutex_unlock(edo_mutex *m);

/** edo_mutex_is_locked() - whether the mutex is held (a snapshot). */
bool edo_mutex_is_locked(const edo_mutex *m);

/*
 * RwLock: many readers or one writer, served in FIFO order, so a waiting
 * writer holds back later readers (writer-fair; no starvation).  A read
 * lock is one permit, the write lock all max_readers permits.
 */
typedef struct edo_rwlock {
	edo__bsem s_;
	uint32_t max_readers_;
} edo_rwlock;

/** Default and largest number of concurrent readers. */
#define EDO_RWLOCK_MAX_READERS (UINT32_MAX >> 3)

/**
 * edo_rwlock_init() - an unlocked rwlock admitting at most @max_readers
 * readers at once (0: EDO_RWLOCK_MAX_READERS).  Returns 0, or -EINVAL
 * (NULL, or more than EDO_RWLOCK_MAX_READERS).  Not thread-safe (first use).
 */
int edo_rwlock_init(edo_rwlock *rw, uint32_t max_readers);

/** edo_rwlock_read() - a future taking a read lock (FIFO); output f->rc = 0. */
edo_future *edo_rwlock_read(edo_acquire_fut *f, edo_rwlock *rw);

/** edo_rwlock_write() - a future taking the write lock (FIFO); output f->rc = 0. */
edo_future *edo_rwlock_write(edo_acquire_fut *f, edo_rwlock *rw);

/** edo_rwlock_try_read() - a read lock without waiting: 0 or -EBUSY. */
int edo_rwlock_try_read(edo_rwlock *rw);

/** edo_rwlock_try_write() - the write lock without waiting: 0 or -EBUSY. */
int edo_rwlock_try_write(edo_rwlock *rw);

/** edo_rwlock_read_unlock() - release one read lock. */
void edo_rwlock_read_unlock(edo_rwlock *rw);

/** edo_rwlock_write_unlock() - release the write lock. */
void edo_rwlock_write_unlock(edo_rwlock *rw);

/** edo_rwlock_downgrade() - turn the held write lock into one read lock,
 * letting waiting readers in, atomically (no writer can get in between). */
void edo_rwlock_downgrade(edo_rwlock *rw);

/* ==== mpsc ================================================================================ */

/*
 * A multi-producer, single-consumer channel of values of elem_size bytes,
 * bounded (senders wait while `capacity` values are queued; waiting senders
 * are served in FIFO order) or unbounded (sending never waits).  The queue
 * is Tokio's: a lock-free list of 32-slot blocks, recycled by the receiver.
 *
 * Senders are counted: edo_mpsc_tx_clone() returns the same handle with the
 * count raised, and every clone is released with edo_mpsc_tx_drop().  When
 * the last sender is dropped the receiver gets every value already sent,
 * then EDO_ECLOSED.  The receiver is one handle, owned by one holder at a
 * time (its functions are not thread-safe on the same handle); sender
 * functions are thread-safe.
 *
 *     edo_mpsc_tx *tx; edo_mpsc_rx *rx;
 *     edo_mpsc_new(1024, sizeof(uint64_t), &tx, &rx);
 *     ... producer coroutine:
 *         EDO_AWAIT(edo_mpsc_send(&self->send, self->tx, &self->v));
 *         if (self->send.rc == EDO_ECLOSED) ...     // the receiver is gone
 *     ... consumer coroutine:
 *         EDO_AWAIT_POLL(edo_mpsc_poll_recv(self->rx, cx, &self->v, &self->rc));
 *         if (self->rc == EDO_ECLOSED) ...          // every sender is gone
 */
typedef struct edo_mpsc_tx edo_mpsc_tx;
typedef struct edo_mpsc_rx edo_mpsc_rx;

/**
 * edo_mpsc_new() - a bounded channel holding at most @capacity values of
 * @elem_size bytes.  Returns 0, -EINVAL (capacity 0 or above
 * EDO_SEMAPHORE_MAX_PERMITS, absurd size, NULL outputs) or -ENOMEM.
 *
 * Memory: values live in blocks of 32 slots, allocated as the queue grows
 * and recycled as it drains.  A send (or the last sender's drop, which
 * marks the end in a slot) that needs a new block and cannot allocate one
 * aborts the process, as Rust's allocator does under Tokio: the slot is
 * already claimed by then, and the channel could not stay consistent.
 * Not yet an -ENOMEM return (it would need a spare block kept ahead).
 */
int edo_mpsc_new(size_t capacity, size_t elem_size, edo_mpsc_tx **tx, edo_mpsc_rx **rx);

/** edo_mpsc_unbounded_new() - an unbounded channel; returns as edo_mpsc_new(). */
int edo_mpsc_unbounded_new(size_t elem_size, edo_mpsc_tx **tx, edo_mpsc_rx **rx);

/** edo_mpsc_tx_clone() - count one more sender; returns @tx (NULL for NULL). */
edo_mpsc_tx *edo_mpsc_tx_clone(edo_mpsc_tx *tx);

/**
 * edo_mpsc_tx_drop() - release one sender.  The last one closes the sending
 * side.  Permits (edo_mpsc_permit) taken through @tx must be used or
 * released first.  NULL is a no-op.
 */
void edo_mpsc_tx_drop(edo_mpsc_tx *tx);

/**
 * edo_mpsc_try_send() - send without waiting.  Returns 0, -EAGAIN (bounded
 * and full: the value was not sent), EDO_ECLOSED (the receiver closed or is
 * gone), -EINVAL (NULL @tx, or NULL @value with a non-zero elem_size).  On
 * an unbounded channel this is the send (it never returns -EAGAIN) and
 * takes no budget.
 */
int edo_mpsc_try_send(edo_mpsc_tx *tx, const void *value);

/** The future of a send.  Fields ending in _ are private. */
typedef struct edo_mpsc_send_fut {
	edo_future base;
	edo_mpsc_tx *tx_;
	const void *value_;
	uint8_t state_;
	edo_acquire_fut acq_;
	/** Output: 0 (sent) or EDO_ECLOSED (the receiver closed; not sent). */
	int rc;
} edo_mpsc_send_fut;

/**
 * edo_mpsc_send() - initialise @f to send the value at @value and return it
 * as a future.  @value must stay valid until @f completes or is dropped: the
 * value is copied when a slot is free.  Waits (FIFO among senders) while a
 * bounded channel is full; takes a unit of budget when READY (bounded).
 * Cancel-safety: dropping a pending send sends nothing and gives up its
 * place in the queue of senders.
 */
edo_future *edo_mpsc_send(edo_mpsc_send_fut *f, edo_mpsc_tx *tx, const void *value);

/** A reserved slot: the future of a reserve, then the permit it holds. */
typedef struct edo_mpsc_permit {
	edo_future base;
	edo_mpsc_tx *tx_;
	uint8_t state_;
	edo_acquire_fut acq_;
	/** Output: 0 (a slot is reserved) or EDO_ECLOSED. */
	int rc;
} edo_mpsc_permit;

/**
 * edo_mpsc_reserve() - initialise @p to reserve one slot of @tx's channel
 * and return it as a future; when it is READY with p->rc == 0, @p holds the
 * slot and edo_mpsc_permit_send() sends into it without waiting.  Dropping
 * @p (edo_future_drop()) while pending gives up the place in the queue;
 * dropping it while it holds the slot gives the slot back.  Takes a unit of
 * budget when READY (bounded).  A permit that holds a slot must be sent or
 * dropped before @p is initialised again (by this or edo_mpsc_try_reserve()):
 * initialising it again cannot tell a held slot from fresh memory, and
 * the slot would be lost for good.
 */
edo_future *edo_mpsc_reserve(edo_mpsc_permit *p, edo_mpsc_tx *tx);

/**
 * edo_mpsc_try_reserve() - reserve a slot without waiting; @p then holds it.
 * Returns 0, -EAGAIN (full), EDO_ECLOSED or -EINVAL.
 */
int edo_mpsc_try_reserve(edo_mpsc_permit *p, edo_mpsc_tx *tx);

/**
 * edo_mpsc_permit_send() - send the value at @value into the slot @p holds,
 * releasing it.  Never waits and never fails for a closed receiver (the
 * value is queued; a receiver that closed still drains it).  Returns 0, or
 * -EINVAL if @p holds no slot (or @value is NULL with a non-zero size).
 */
int edo_mpsc_permit_send(edo_mpsc_permit *p, const void *value);

/**
 * edo_mpsc_poll_recv() - receive the next value.  READY with *@rc = 0 and
 * the value copied to @out (may be NULL to discard), or *@rc = EDO_ECLOSED:
 * every sender is gone (or the receiver closed) and every value sent was
 * received.  Takes a unit of budget when READY.  Cancel-safe: no value is
 * lost if the caller stops polling.
 */
edo_poll edo_mpsc_poll_recv(edo_mpsc_rx *rx, edo_cx *cx, void *out, int *rc);

/**
 * edo_mpsc_poll_recv_many() - receive up to @max values at once into @buf
 * (@max * elem_size bytes), waiting for at least one.  READY with *@n the
 * number received, or *@n = 0 when the channel is closed and drained (or
 * @max is 0).  Takes one unit of budget.  Cancel-safe.
 */
edo_poll edo_mpsc_poll_recv_many(edo_mpsc_rx *rx, edo_cx *cx, void *buf, size_t max, size_t *n);

/**
 * edo_mpsc_try_recv() - receive without waiting.  Returns 0 (copied to
 * @out), -EAGAIN (empty, senders still alive), EDO_ECLOSED (closed and
 * drained) or -EINVAL.
 */
int edo_mpsc_try_recv(edo_mpsc_rx *rx, void *out);

/**
 * edo_mpsc_rx_close() - stop accepting values: pending and later sends fail
 * with EDO_ECLOSED (reserved permits can still send); values already queued
 * can still be received, then receive reports EDO_ECLOSED.
 */
void edo_mpsc_rx_close(edo_mpsc_rx *rx);

/** edo_mpsc_rx_drop() - close and release the receiver; queued values are
 * discarded.  NULL is a no-op. */
void edo_mpsc_rx_drop(edo_mpsc_rx *rx);

/** edo_mpsc_is_closed() - whether the receiver closed or is gone. */
bool edo_mpsc_is_closed(const edo_mpsc_tx *tx);

/** edo_mpsc_capacity() - slots free now (bounded; SIZE_MAX when unbounded). */
size_t edo_mpsc_capacity(const edo_mpsc_tx *tx);

/** edo_mpsc_max_capacity() - the bound given at creation (SIZE_MAX when unbounded). */
size_t edo_mpsc_max_capacity(const edo_mpsc_tx *tx);

/* ==== notify ============================================================================== */

/*
 * Notify wakes tasks waiting for an event, with Tokio's semantics:
 *
 *  - edo_notify_one() wakes the oldest waiter; with no waiter it stores a
 *    single permit (permits do not add up), which the next notified future
 *    takes at once.  edo_notify_last() wakes the newest waiter instead.
 *  - edo_notify_waiters() wakes every future that exists when it is called
 *    (created, even if not yet polled) and stores no permit.
 *  - A notified future dropped after edo_notify_one() picked it, before it
 *    was polled to completion, passes the notification on to the next
 *    waiter, so a notification is never lost to cancellation.
 *
 * Notify takes no budget.  The struct is embedded; initialise it before use.
 */
typedef struct edo_notify {
	_Atomic(size_t) state_; /* (notify_waiters calls << 2) | EMPTY/WAITING/NOTIFIED */
	edo__lock lock_;
	edo__slink waiters_; /* oldest first */
} edo_notify;

/** The future of one wait for a notification.  Fields ending in _ are private. */
typedef struct edo_notified_fut {
	edo_future base;
	edo_notify *notify_;
	size_t calls_;
	uint8_t state_;
	_Atomic(uint8_t) notification_;
	edo__slink link_;
	edo_waker waker_;
} edo_notified_fut;

/** edo_notify_init() - a Notify with no permit and no waiter.  NULL is a no-op
 * (so are the edo_notify_one/_last/_waiters of NULL). */
void edo_notify_init(edo_notify *n);

/**
 * edo_notify_notified() - initialise @f to wait for a notification of @n and
 * return it as a future.  It completes on a stored permit (taking it), on an
 * edo_notify_one() / edo_notify_last() that picks it, or on an
 * edo_notify_waiters() called after this call.  Waiters are woken in FIFO
 * order by edo_notify_one().  Dropping it while pending gives up its place
 * (and passes on a notify_one it had received but not yet returned).  A
 * NULL @n is bad input the future has no output to report: it completes at
 * its first poll, doing nothing.  Returns NULL for a NULL @f.
 */
edo_future *edo_notify_notified(edo_notified_fut *f, edo_notify *n);

/** edo_notify_one() - wake the oldest waiter, or store one permit. */
void edo_notify_one(edo_notify *n);

/** edo_notify_last() - wake the newest waiter, or store one permit. */
void edo_notify_last(edo_notify *n);

/** edo_notify_waiters() - wake every current waiter; stores no permit. */
void edo_notify_waiters(edo_notify *n);

/* ==== barrier ============================================================================= */

/*
 * A barrier for n tasks: each waits until n have arrived, then all are
 * released together and the barrier resets for the next round.  Exactly one
 * waiter of each round is told it is the leader.  Cancel-safety: an arrival
 * counts once the wait future was first polled, even if it is dropped later
 * (as in Tokio).
 */
typedef struct edo_barrier {
	edo__lock lock_;
	size_t n_, arrived_;
	uint64_t generation_;
	edo__slink waiters_;
} edo_barrier;

typedef struct edo_barrier_wait_fut {
	edo_future base;
	edo_barrier *barrier_;
	uint8_t state_;
	_Atomic(uint8_t) released_;
	edo__slink link_;
	edo_waker waker_;
	/** Output: true for the one waiter of the round that completed it. */
	bool is_leader;
} edo_barrier_wait_fut;

/** edo_barrier_init() - a barrier for @n tasks (0 is taken as 1).  NULL is a no-op. */
void edo_barrier_init(edo_barrier *b, size_t n);

/**
 * edo_barrier_wait() - initialise @f to arrive at @b and wait; returns it
 * as a future.  Takes a unit of budget when READY.  A NULL @b is bad input
 * the future has no output to report: it completes at its first poll,
 * doing nothing (no arrival, no budget, is_leader false).  Returns NULL
 * for a NULL @f.
 */
edo_future *edo_barrier_wait(edo_barrier_wait_fut *f, edo_barrier *b);

/* ==== once_cell =========================================================================== */

/*
 * A cell set at most once, holding a `void *`.  edo_once_cell_get_or_init()
 * runs an initialising future for the first caller only; callers racing
 * with it wait (FIFO) and get the same value.  If the initialiser fails or
 * is cancelled, the next waiter runs its own.
 */
typedef struct edo_once_cell {
	_Atomic(int) set_;
	edo__bsem sem_;
	void *value_;
} edo_once_cell;

typedef struct edo_once_init_fut {
	edo_future base;
	edo_once_cell *cell_;
	edo_future *init_;
	void *const *result_;
	const int *err_;
	uint8_t state_;
	edo_acquire_fut acq_;
	/** Output: 0 (value is set), or the initialiser's negative error. */
	int rc;
	/** Output: the cell's value when rc is 0. */
	void *value;
} edo_once_init_fut;

/** edo_once_cell_init() - an empty cell. */
void edo_once_cell_init(edo_once_cell *c);

/** edo_once_cell_is_set() - whether the cell holds its value. */
bool edo_once_cell_is_set(const edo_once_cell *c);

/** edo_once_cell_get() - the value, or NULL if not set (see is_set for a NULL value). */
void *edo_once_cell_get(const edo_once_cell *c);

/**
 * edo_once_cell_set() - set the value if nobody has.  Returns 0, -EEXIST
 * (already set), -EBUSY (an initialiser is running) or -EINVAL.
 */
int edo_once_cell_set(edo_once_cell *c, void *value);

/**
 * edo_once_cell_get_or_init() - initialise @f to get the value of @c,
 * running @init first if the cell is empty and no other caller is running
 * one; returns @f as a future.  @init is a future the caller owns and keeps
 * alive until @f is done; when it is READY, *@result is the value to store.
 * If @err is not NULL and *@err < 0 after @init is READY, the init failed:
 * nothing is stored, f->rc = *@err, and the next waiter tries.  Dropping
 * @f while @init runs drops @init (edo_future_drop()) and lets the next
 * waiter try.  Takes a unit of budget when READY.
 */
edo_future *edo_once_cell_get_or_init(edo_once_init_fut *f, edo_once_cell *c, edo_future *init,
				      void *const *result, const int *err);

/* ==== broadcast =========================================================================== */

/*
 * Every receiver sees every value sent after it subscribed, in order.  The
 * channel keeps the last `capacity` (rounded up to a power of two) values;
 * a receiver that falls further behind gets EDO_ELAGGED once, learns how
 * many values it missed (edo_broadcast_rx_missed()) and continues from the
 * oldest value still kept.  Sending never waits.
 *
 * Senders are counted as in mpsc (clone/drop); when the last is gone,
 * receivers get the values still kept for them, then EDO_ECLOSED.  Each
 * receiver is its own handle, owned by one holder at a time.
 */
typedef struct edo_broadcast_tx edo_broadcast_tx;
typedef struct edo_broadcast_rx edo_broadcast_rx;

/**
 * edo_broadcast_new() - a channel keeping @capacity values of @elem_size
 * bytes, with one sender and one receiver.  Returns 0, -EINVAL (capacity 0
 * or above 2^30, absurd size, NULL outputs) or -ENOMEM.
 */
int edo_broadcast_new(size_t capacity, size_t elem_size, edo_broadcast_tx **tx,
		      edo_broadcast_rx **rx);

/** edo_broadcast_tx_clone() - count one more sender; returns @tx. */
edo_broadcast_tx *edo_broadcast_tx_clone(edo_broadcast_tx *tx);

/** edo_broadcast_tx_drop() - release a sender; the last one closes the channel. */
void edo_broadcast_tx_drop(edo_broadcast_tx *tx);

/**
 * edo_broadcast_send() - send a copy of @value to every receiver.  Returns
 * the number of receivers (>= 1), EDO_ECLOSED if there are none (the value
 * is dropped), or -EINVAL.  Never waits; takes no budget.
 */
int edo_broadcast_send(edo_broadcast_tx *tx, const void *value);

/** edo_broadcast_subscribe() - a new receiver that sees values sent from now
 * on; NULL on ENOMEM or bad input. */
edo_broadcast_rx *edo_broadcast_subscribe(edo_broadcast_tx *tx);

/** edo_broadcast_rx_count() - receivers alive now. */
size_t edo_broadcast_rx_count(const edo_broadcast_tx *tx);

/**
 * edo_broadcast_poll_recv() - receive the next value.  READY with *@rc = 0
 * (copied to @out), EDO_ELAGGED (values were skipped; the next receive
 * returns the oldest kept one) or EDO_ECLOSED (all senders gone and
 * nothing left).  Takes a unit of budget when READY.  Cancel-safe.
 */
edo_poll edo_broadcast_poll_recv(edo_broadcast_rx *rx, edo_cx *cx, void *out, int *rc);

/** edo_broadcast_try_recv() - as poll_recv without waiting: 0, EDO_ELAGGED,
 * EDO_ECLOSED, or -EAGAIN (nothing new). */
int edo_broadcast_try_recv(edo_broadcast_rx *rx, void *out);

/** edo_broadcast_rx_missed() - how many values the last EDO_ELAGGED skipped. */
uint64_t edo_broadcast_rx_missed(const edo_broadcast_rx *rx);

/** edo_broadcast_rx_drop() - release a receiver.  NULL is a no-op. */
void edo_broadcast_rx_drop(edo_broadcast_rx *rx);

/* ==== watch =============================================================================== */

/*
 * A single value that senders replace and receivers watch: a receiver sees
 * the latest value (intermediate ones may be skipped) and can wait until it
 * changes.  Each receiver remembers the version it saw last.  Senders and
 * receivers are counted; with no sender left, waiting for a change reports
 * EDO_ECLOSED; with no receiver left, sends report EDO_ECLOSED.
 */
typedef struct edo_watch_tx edo_watch_tx;
typedef struct edo_watch_rx edo_watch_rx;

/**
 * edo_watch_new() - a watch channel of @elem_size bytes holding a copy of
 * @init (may be NULL: zeroes), with one sender and one receiver (which has
 * seen the initial value).  Returns 0, -EINVAL or -ENOMEM.
 */
int edo_watch_new(size_t elem_size, const void *init, edo_watch_tx **tx, edo_watch_rx **rx);

/** edo_watch_tx_clone() - count one more sender; returns @tx. */
edo_watch_tx *edo_watch_tx_clone(edo_watch_tx *tx);

/** edo_watch_tx_drop() - release a sender; the last one closes the channel. */
void edo_watch_tx_drop(edo_watch_tx *tx);

/**
 * edo_watch_send() - replace the value with a copy of @value and wake every
 * receiver waiting for a change.  Returns 0, EDO_ECLOSED if no receiver is
 * left (nothing stored), or -EINVAL.
 */
int edo_watch_send(edo_watch_tx *tx, const void *value);

/**
 * edo_watch_send_replace() - store @value even with no receiver; the old
 * value is copied to @old (may be NULL).  Returns 0 or -EINVAL.
 */
int edo_watch_send_replace(edo_watch_tx *tx, const void *value, void *old);

/**
 * edo_watch_send_modify() - modify the value in place: @fn(value, @ud) runs
 * under the write lock (it must not block or call back into the channel)
 * and returns whether it changed anything; if it did, receivers are told.
 * Works with no receiver.  Returns 1 (modified), 0, or -EINVAL.
 */
int edo_watch_send_modify(edo_watch_tx *tx, bool (*fn)(void *value, void *ud), void *ud);

/** edo_watch_subscribe() - a new receiver that has seen the current value. */
edo_watch_rx *edo_watch_subscribe(edo_watch_tx *tx);

/** edo_watch_rx_clone() - a new receiver that has seen what @rx has seen. */
edo_watch_rx *edo_watch_rx_clone(edo_watch_rx *rx);

/** edo_watch_rx_drop() - release a receiver.  NULL is a no-op. */
void edo_watch_rx_drop(edo_watch_rx *rx);

/** edo_watch_rx_count() - receivers alive now. */
size_t edo_watch_rx_count(const edo_watch_tx *tx);

/** edo_watch_borrow() - copy the current value to @out (does not mark it seen). */
void edo_watch_borrow(edo_watch_rx *rx, void *out);

/** edo_watch_borrow_and_update() - copy the current value and mark it seen. */
void edo_watch_borrow_and_update(edo_watch_rx *rx, void *out);

/** edo_watch_has_changed() - 1 if a value newer than the last seen one was
 * sent, 0 if not, EDO_ECLOSED if every sender is gone and nothing is new. */
int edo_watch_has_changed(const edo_watch_rx *rx);

/** The future of waiting for a change.  Fields ending in _ are private. */
typedef struct edo_watch_changed_fut {
	edo_future base;
	edo_watch_rx *rx_;
	uint8_t armed_;
	edo_notified_fut notified_;
	/** Output: 0 (a newer value is there; now marked seen) or EDO_ECLOSED. */
	int rc;
} edo_watch_changed_fut;

/**
 * edo_watch_changed() - initialise @f to wait until a value newer than the
 * last one @rx saw is sent (then marks it seen), and return it as a future.
 * Takes a unit of budget when READY.  Cancel-safe.
 */
edo_future *edo_watch_changed(edo_watch_changed_fut *f, edo_watch_rx *rx);

/** The future of waiting until every receiver is gone. */
typedef struct edo_watch_closed_fut {
	edo_future base;
	edo_watch_tx *tx_;
	uint8_t armed_;
	edo_notified_fut notified_;
} edo_watch_closed_fut;

/** edo_watch_closed() - a future that completes once no receiver is left. */
edo_future *edo_watch_closed(edo_watch_closed_fut *f, edo_watch_tx *tx);

/** edo_watch_tx_is_closed() - whether no receiver is left. */
bool edo_watch_tx_is_closed(const edo_watch_tx *tx);

/* ==== joinset ============================================================================= */

/*
 * A set of spawned tasks, joined in the order they complete: each task's
 * join waker moves it to a "ready" list, so join_next costs O(1) per ready
 * task whatever the size of the set (Tokio's JoinSet on IdleNotifiedSet).
 * The set is owned by one holder at a time: its functions are not
 * thread-safe on the same set (the tasks themselves run anywhere).
 *
 *     edo_joinset *js;  edo_joinset_new(&js);
 *     for (...) EDO_JOINSET_SPAWN(js, worker, .n = i);
 *     for (;;) {
 *         EDO_AWAIT_POLL(edo_joinset_poll_join_next(self->js, cx, &self->h, &self->rc));
 *         if (!self->h) break;                               // the set is empty
 *         use(EDO_JOIN_OUTPUT(self->h, worker));              // if self->rc == 0
 *         edo_join_detach(self->h);
 *     }
 *     edo_joinset_free(js);
 */
typedef struct edo_joinset edo_joinset;

/** edo_joinset_new() - an empty set.  Returns 0, -EINVAL or -ENOMEM. */
int edo_joinset_new(edo_joinset **out);

/**
 * edo_joinset_spawn_on() - spawn a task (as edo_spawn_on(): @h NULL is the
 * current runtime) into the set.  Returns 0, or edo_spawn_on()'s error
 * (then nothing was spawned or added).
 */
int edo_joinset_spawn_on(edo_joinset *js, edo_handle *h, const edo_future *init, size_t size,
			 const edo_spawn_opts *opts);

/** edo_joinset_spawn() - edo_joinset_spawn_on() on the current runtime. */
int edo_joinset_spawn(edo_joinset *js, const edo_future *init, size_t size);

/** EDO_JOINSET_SPAWN(js, fn, ...) - spawn the coroutine @fn into @js, as EDO_SPAWN. */
#define EDO_JOINSET_SPAWN(js, fn, ...)                                                             \
	edo_joinset_spawn_on(                                                                      \
		(js), NULL, &((fn##_frame){EDO_FRAME_INIT(fn), __VA_ARGS__}).edo_base,             \
		sizeof(fn##_frame),                                                                \
		&(const edo_spawn_opts){.name = #fn, .file = __FILE__, .line = __LINE__})

/** edo_joinset_len() - tasks in the set (running or finished, not yet joined). */
size_t edo_joinset_len(const edo_joinset *js);

/**
 * edo_joinset_poll_join_next() - wait for the next task to finish, in
 * completion order.  READY with *@out its join handle (yours: read the
 * output, then edo_join_detach() it) and *@rc 0 or -ECANCELED (aborted);
 * or READY with *@out NULL and *@rc -ENOENT when the set is empty.  Takes a
 * unit of budget when it returns a task.  Cancel-safe: a finished task
 * stays in the set until a poll returns it.
 */
edo_poll edo_joinset_poll_join_next(edo_joinset *js, edo_cx *cx, edo_join **out, int *rc);

/**
 * edo_joinset_try_join_next() - join a finished task without waiting.
 * Returns 0 (with *@out and *@rc as above), -EAGAIN (none finished yet),
 * -ENOENT (empty) or -EINVAL.
 */
int edo_joinset_try_join_next(edo_joinset *js, edo_join **out, int *rc);

/** edo_joinset_abort_all() - abort every task in the set; they stay in the
 * set, and join_next reports them (most as -ECANCELED). */
void edo_joinset_abort_all(edo_joinset *js);

/** edo_joinset_detach_all() - remove every task from the set and let it
 * run on detached. */
void edo_joinset_detach_all(edo_joinset *js);

/** The future of edo_joinset_shutdown(). */
typedef struct edo_joinset_shutdown_fut {
	edo_future base;
	edo_joinset *js_;
	uint8_t started_;
} edo_joinset_shutdown_fut;

/** edo_joinset_shutdown() - a future that aborts every task and waits until
 * all have finished (joining and detaching them); the set is then empty. */
edo_future *edo_joinset_shutdown(edo_joinset_shutdown_fut *f, edo_joinset *js);

/** edo_joinset_free() - abort every task, detach them and free the set.
 * NULL is a no-op. */
void edo_joinset_free(edo_joinset *js);

/* ==== select and join ======================================================================= */

/** select flag: poll the futures in array order (default: from a random
 * start each poll, so no branch starves). */
#define EDO_SELECT_BIASED 1u
/** select flag: leave the futures that did not complete alone (default:
 * drop them, cancelling them, when one completes or the select is dropped). */
#define EDO_SELECT_KEEP_OTHERS 2u

typedef struct edo_select_fut {
	edo_future base;
	edo_future **futs_;
	size_t n_;
	unsigned flags_;
	uint8_t done_;
	/** Output: index of the future that completed (its outputs are valid;
	 * it is not touched again), -1 if every slot was empty, or -EINVAL if
	 * the flags had unknown bits (then no future was polled or dropped). */
	long index;
} edo_select_fut;

/**
 * edo_select() - initialise @f to wait for the first of the @n futures
 * @futs[] to complete, and return it as a future (Tokio's select!).  NULL
 * and empty slots are skipped ("disabled branches").  Each poll polls every
 * future once, from a random start unless EDO_SELECT_BIASED; when the task's
 * budget is spent it yields without polling any (as Tokio's select!).  The
 * array must stay valid until @f completes or is dropped.
 */
edo_future *edo_select(edo_select_fut *f, edo_future **futs, size_t n, unsigned flags);

/** The most futures one edo_join_all() waits for. */
#define EDO_JOIN_ALL_MAX 64

typedef struct edo_join_all_fut {
	edo_future base;
	edo_future **futs_;
	size_t n_;
	size_t start_;
	uint64_t done_; /* bit i: futs_[i] completed (or was empty) */
	/** Output: 0, or -EINVAL if @n was above EDO_JOIN_ALL_MAX (then no
	 * future was polled or dropped). */
	int rc;
} edo_join_all_fut;

/**
 * edo_join_all() - initialise @f to wait until every one of the @n futures
 * @futs[] (at most EDO_JOIN_ALL_MAX) has completed, and return it as a
 * future (Tokio's join!).  NULL and empty slots count as completed.  @f
 * records which futures completed and never polls or drops those again;
 * each is left as it is: its outputs stay valid, and what it holds (an
 * mpsc permit, say) is the caller's, to use, or to release by dropping it.
 * Dropping @f drops the futures still pending.  Polls them in turn from a
 * rotating start.  The array must stay valid until @f completes or is
 * dropped.
 */
edo_future *edo_join_all(edo_join_all_fut *f, edo_future **futs, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* EDO_SYNC_H */
