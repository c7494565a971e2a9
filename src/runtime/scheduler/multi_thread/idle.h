/* Which workers are parked, and how many are searching for work.
 *
 * state = (unparked workers << 16) | searching workers, one atomic word, so
 * that "should a wake-up go out?" is one load: only if nobody is searching
 * and someone is parked.  The list of sleepers is under a mutex.
 *
 * The rules (Tokio's idle.rs, Go's spinning Ms):
 *  - at most half the workers search (steal) at once;
 *  - a worker woken to take new work starts out searching, so a burst of
 *    wakes brings one thief at a time: when it finds work and stops
 *    searching, it wakes the next if it was the last searcher;
 *  - the last searcher to park re-checks every queue before sleeping, so
 *    work that arrived while everyone was going to sleep is never lost.
 */
#ifndef EDO_MT_IDLE_H
#define EDO_MT_IDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/sanitizer.h"

typedef struct edo__idle {
	_Atomic(uint32_t) state;
	uint32_t num_workers;
	pthread_mutex_t lock;
	uint32_t *sleepers; /* worker indices, most recently parked last */
	uint32_t num_sleepers;
} edo__idle;

int edo__idle_init(edo__idle *idle, uint32_t num_workers);
void edo__idle_destroy(edo__idle *idle);

/* A worker that found no local work may search if fewer than half do. */
bool edo__idle_transition_to_searching(edo__idle *idle);

/* A searcher found work; true if it was the last searcher (it must then
 * wake another worker to keep searching). */
bool edo__idle_transition_from_searching(edo__idle *idle);

/* A worker goes to sleep; true if it was the last searcher. */
bool edo__idle_transition_to_parked(edo__idle *idle, uint32_t worker, bool is_searching);

/* Pick a sleeper to wake (marked unparked and searching), or -1 if no wake
 * is needed (somebody is searching, or nobody sleeps). */
int32_t edo__idle_worker_to_notify(edo__idle *idle);

/* A parked worker woke with work of its own (from a driver): remove it from
 * the sleepers.  True if it was still listed. */
bool edo__idle_unpark_worker_by_id(edo__idle *idle, uint32_t worker);

/* Whether @worker is still listed as a sleeper (a spurious wake). */
bool edo__idle_is_parked(edo__idle *idle, uint32_t worker);

static inline uint32_t edo__idle_searching(uint32_t state)
{
	return state & 0xffff;
}

static inline uint32_t edo__idle_unparked(uint32_t state)
{
	return state >> 16;
}

/* A full fence between publishing work and reading the idle state (or
 * between parking and re-reading the queues).  ThreadSanitizer does not
 * model fences (gcc refuses them under -fsanitize=thread), so there it is a
 * read-modify-write of @word, which TSan understands; that is also what
 * Tokio does everywhere (fetch_add(0)). */
#ifdef EDO__TSAN
#define EDO__FULL_FENCE(word) ((void)atomic_fetch_add_explicit((word), 0, memory_order_seq_cst))
#else
#define EDO__FULL_FENCE(word) atomic_thread_fence(memory_order_seq_cst)
#endif

#endif /* EDO_MT_IDLE_H */
