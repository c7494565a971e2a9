/* The sync primitives' spin lock (slow path) and per-thread random numbers. */
#include <time.h>

#include "sync/internal.h"

void edo__spin_lock_slow(edo__lock *l)
{
	for (unsigned spins = 0;; spins++) {
		while (atomic_load_explicit(&l->v, memory_order_relaxed)) {
			if (spins < 64) {
				edo__cpu_relax();
				spins++;
			} else {
				/* The holder may have been preempted: let it run. */
				sched_yield();
			}
		}
		if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
			return;
	}
}

/* xorshift32, seeded per thread from the clock and the thread's address. */
uint32_t edo__sync_rand(void)
{
	static __thread uint32_t x;
	if (!x) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = (uint32_t)ts.tv_nsec ^ (uint32_t)(uintptr_t)&x ^ 0x9e3779b9u;
		if (!x)
			x = 1;
	}
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

/* ---- the atomic waker (internal.h) -------------------------------------------------------- */

enum { AW_EMPTY = 0, AW_REGISTERING = 1, AW_ARMED = 2, AW_WAKING = 3 };

void edo__aw_init(edo__atomic_waker *aw)
{
	atomic_init(&aw->state, AW_EMPTY);
	aw->waker = (edo_waker){0};
}

void edo__aw_register(edo__atomic_waker *aw, const edo_waker *w)
{
	uint32_t s = atomic_load_explicit(&aw->state, memory_order_acquire);
	for (;;) {
		if (s == AW_WAKING) {
			/* A wake is in flight and reads the field, so leave it.  That
			 * wake may have been consumed already (the poll running now may
			 * be its result), so it cannot stand for a registration: wake
			 * ourselves, to be polled again (Tokio does the same). */
			edo_waker_wake_by_ref(w);
			return;
		}
		if (s == AW_ARMED && edo_waker_will_wake(&aw->waker, w))
			return;
		if (atomic_compare_exchange_weak_explicit(&aw->state, &s, AW_REGISTERING,
							  memory_order_acquire,
							  memory_order_acquire))
			break;
	}
	edo_waker old = edo__waker_swap(&aw->waker, w);
	atomic_store_explicit(&aw->state, AW_ARMED, memory_order_seq_cst);
	edo_waker_drop(old);
}

void edo__aw_wake(edo__atomic_waker *aw)
{
	uint32_t s = atomic_load_explicit(&aw->state, memory_order_seq_cst);
	if (s != AW_ARMED)
		return;
	if (!atomic_compare_exchange_strong_explicit(&aw->state, &s, AW_WAKING,
						     memory_order_acquire, memory_order_relaxed))
		return;
	edo_waker_wake_by_ref(&aw->waker);
	atomic_store_explicit(&aw->state, AW_EMPTY, memory_order_release);
}

void edo__aw_disarm(edo__atomic_waker *aw)
{
	uint32_t s = AW_ARMED;
	if (atomic_load_explicit(&aw->state, memory_order_relaxed) == AW_ARMED)
		atomic_compare_exchange_strong_explicit(&aw->state, &s, AW_EMPTY,
							memory_order_relaxed, memory_order_relaxed);
}

void edo__aw_free(edo__atomic_waker *aw)
{
	edo_waker_drop(edo_waker_take(&aw->waker));
}
