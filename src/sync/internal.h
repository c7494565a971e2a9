/* What the sync primitives share: a small spin lock, the intrusive waiter
 * list, value copies, a per-thread random number, and the budget helpers.
 *
 * The lock.  Every critical section in src/sync/ is a handful of pointer
 * writes (link or unlink a waiter, take its waker); wakers are always woken
 * after the lock is dropped.  A test-and-test-and-set lock is cheaper than a
 * pthread mutex for such sections, and falls back to sched_yield() so a
 * holder that was preempted gets the CPU back.
 *
 * The list.  Circular and doubly linked with a sentinel (struct edo__slink),
 * so a node can unlink itself without knowing which list holds it: that is
 * what lets notify_waiters() move the waiters to a list on its own stack and
 * drop the lock between batches while a waiter being dropped still unlinks
 * itself (Tokio's GuardedLinkedList).  An unlinked node has next == NULL
 * (never linked) or next == itself (removed).
 */
#ifndef EDO_SYNC_INTERNAL_H
#define EDO_SYNC_INTERNAL_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "edo/sync.h"
#include "edo/task.h"
#include "runtime/context.h"

/* ---- the lock ------------------------------------------------------------------ */

static inline void edo__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

void edo__spin_lock_slow(edo__lock *l);

static inline void edo__spin_lock(edo__lock *l)
{
	if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
		return;
	edo__spin_lock_slow(l);
}

static inline bool edo__spin_trylock(edo__lock *l)
{
	return !atomic_load_explicit(&l->v, memory_order_relaxed) &&
	       !atomic_exchange_explicit(&l->v, 1, memory_order_acquire);
}

static inline void edo__spin_unlock(edo__lock *l)
{
	atomic_store_explicit(&l->v, 0, memory_order_release);
}

/* ---- wakers ---------------------------------------------------------------------- */

/* Store a clone of @w in @slot unless the slot already wakes the same
 * target, under the caller's lock; returns the waker it replaced (empty if
 * none) for the caller to drop once the lock is released: a drop may free a
 * task, and with it a scheduler. */
static inline edo_waker edo__waker_swap(edo_waker *slot, const edo_waker *w)
{
	if (edo_waker_will_wake(slot, w))
		return (edo_waker){0};
	edo_waker old = *slot;
	*slot = edo_waker_clone(w);
	return old;
}

/* ---- the intrusive list --------------------------------------------------------- */

static inline void edo__list_init(edo__slink *head)
{
	head->prev = head->next = head;
}

static inline bool edo__list_empty(const edo__slink *head)
{
	return head->next == head;
}

static inline bool edo__link_linked(const edo__slink *n)
{
	return n->next != NULL && n->next != n;
}

/* Append @n at the back (the newest end). */
static inline void edo__list_push_back(edo__slink *head, edo__slink *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

/* Insert @n at the front (the oldest end). */
static inline void edo__list_push_front(edo__slink *head, edo__slink *n)
{
	n->next = head->next;
	n->prev = head;
	head->next->prev = n;
	head->next = n;
}

/* Unlink @n from whatever list holds it; marks it unlinked (pointing at
 * itself, so that a stray second unlink is harmless). */
static inline void edo__list_remove(edo__slink *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/* The oldest node, or NULL. */
static inline edo__slink *edo__list_front(const edo__slink *head)
{
	return head->next == head ? NULL : head->next;
}

/* The newest node, or NULL. */
static inline edo__slink *edo__list_back(const edo__slink *head)
{
	return head->prev == head ? NULL : head->prev;
}

/* Move every node of @from to the empty list @to; @from becomes empty. */
static inline void edo__list_move_all(edo__slink *from, edo__slink *to)
{
	if (edo__list_empty(from)) {
		edo__list_init(to);
		return;
	}
	to->next = from->next;
	to->prev = from->prev;
	to->next->prev = to;
	to->prev->next = to;
	edo__list_init(from);
}

#define edo__container_of(ptr, type, member)                                                       \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- waking outside the lock ------------------------------------------------------ */

/* Wakers collected under a lock and woken after it is dropped, at most
 * EDO__WAKE_BATCH per lock hold (Tokio's WakeList). */
#define EDO__WAKE_BATCH 32

typedef struct edo__wake_list {
	edo_waker w[EDO__WAKE_BATCH];
	unsigned n;
} edo__wake_list;

static inline bool edo__wake_list_full(const edo__wake_list *l)
{
	return l->n == EDO__WAKE_BATCH;
}

static inline void edo__wake_list_push(edo__wake_list *l, edo_waker w)
{
	if (w.vt)
		l->w[l->n++] = w;
}

static inline void edo__wake_list_wake(edo__wake_list *l)
{
	for (unsigned i = 0; i < l->n; i++)
		edo_waker_wake(l->w[i]);
	l->n = 0;
}

/* ---- values ------------------------------------------------------------------------ */

/* Channels carry values of a size fixed at creation; the common sizes copy
 * without a call. */
static inline void edo__copy(void *dst, const void *src, size_t n)
{
	switch (n) {
	case 0:
		return;
	case 4:
		memcpy(dst, src, 4);
		return;
	case 8:
		memcpy(dst, src, 8);
		return;
	case 16:
		memcpy(dst, src, 16);
		return;
	default:
		memcpy(dst, src, n);
	}
}

/* ---- random numbers (select's random start, watch's notify shard) -------------------- */

uint32_t edo__sync_rand(void);

/* ---- the batch semaphore (semaphore.c), used by mpsc and OnceCell ------------------------ */

void edo__bsem_init(edo__bsem *s, size_t permits);
/* 0, -EAGAIN or EDO_ECLOSED; never barges past waiters. */
int edo__bsem_try_acquire(edo__bsem *s, size_t n);
/* Give @n permits back (or add them): to the oldest waiters first. */
void edo__bsem_release(edo__bsem *s, size_t n);
/* Close: pending and future acquires fail with EDO_ECLOSED. */
void edo__bsem_close(edo__bsem *s);
/* Permits available now. */
size_t edo__bsem_available(const edo__bsem *s);
bool edo__bsem_is_closed(const edo__bsem *s);

/* The acquire future, for futures that embed one and poll it directly. */
void edo__acquire_init(edo_acquire_fut *f, edo__bsem *s, size_t n);
edo_poll edo__acquire_poll(edo_acquire_fut *a, edo_cx *cx);

/* ---- a single waiter's waker, woken from many threads ------------------------------------- *
 *
 * Tokio's AtomicWaker, with one more state so that a wake costs one load
 * when nobody waits.  The owner (one task) registers its waker, which
 * ARMs it; then it must check its condition again.  A waker makes the
 * condition true with a seq_cst operation, then calls edo__aw_wake(), whose
 * seq_cst load of the state sees ARMED or else the owner's re-check sees the
 * condition (the store-buffering pattern, forbidden under seq_cst).
 *
 *   EMPTY ──register──▶ REGISTERING ──▶ ARMED ──wake──▶ WAKING ──▶ EMPTY
 *
 * The waker field is written only by the owner in REGISTERING; a wake reads
 * it in WAKING and leaves it there (wake_by_ref), so registering the same
 * task again needs no clone.  The field is dropped by edo__aw_free(). */
typedef struct edo__atomic_waker {
	_Atomic(uint32_t) state;
	edo_waker waker;
} edo__atomic_waker;

void edo__aw_init(edo__atomic_waker *aw);
void edo__aw_register(edo__atomic_waker *aw, const edo_waker *w);
void edo__aw_wake(edo__atomic_waker *aw);
/* The owner found its condition true after registering: stop wakes. */
void edo__aw_disarm(edo__atomic_waker *aw);
void edo__aw_free(edo__atomic_waker *aw);

#endif /* EDO_SYNC_INTERNAL_H */
