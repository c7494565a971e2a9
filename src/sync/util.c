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
