/* A worker's burst: the inject tasks it took under one lock when its look at
 * the inject queue came early (worker.c, look_at_inject), to run next, one per
 * tick, before anything else.
 *
 *   pos (64 bits) = generation (high 32) | next (16) | len (16)
 *   tasks[next..len) wait; tasks[0] is the one the owner ran at once
 *
 * The owner takes the next task with one CAS on pos.  Another thread -- a
 * thief whose victim is stuck in one poll, or the owner before it blocks in
 * place -- takes every task that waits with one CAS that sets next to len,
 * after reading the entries.  Only the owner loads a new burst, and only when
 * none waits (next == len), which nobody else changes; it writes the entries,
 * then stores pos with the generation bumped.  So a thief whose CAS succeeds
 * read the entries of the generation it expected, and no task is taken twice.
 */
#ifndef EDO_MT_BURST_H
#define EDO_MT_BURST_H

#include <stdatomic.h>
#include <stdint.h>

#include "runtime/task/task.h"

#define EDO__BURST_MAX 16u

/* Run by edo__burst_take_all between reading the slots and its CAS: a test
 * widens that window with it (tests/test_queue.c). */
#ifndef EDO__BURST_TAKE_HOOK
#define EDO__BURST_TAKE_HOOK() ((void)0)
#endif

typedef struct edo__burst {
	_Atomic(uint64_t) pos;
	_Atomic(edo__task *) tasks[EDO__BURST_MAX];
} edo__burst;

static inline void edo__burst_init(edo__burst *b)
{
	atomic_init(&b->pos, 0);
	for (uint32_t i = 0; i < EDO__BURST_MAX; i++)
		atomic_init(&b->tasks[i], NULL);
}

static inline uint32_t edo__burst_next_of(uint64_t pos)
{
	return (uint32_t)(pos >> 16) & 0xffffu;
}

static inline uint32_t edo__burst_len_of(uint64_t pos)
{
	return (uint32_t)pos & 0xffffu;
}

/* Any thread: tasks waiting (approximate when racing). */
static inline uint32_t edo__burst_waiting(edo__burst *b)
{
	uint64_t pos = atomic_load_explicit(&b->pos, memory_order_relaxed);
	return edo__burst_len_of(pos) - edo__burst_next_of(pos);
}

/* Owner: the next task, or NULL. */
static inline edo__task *edo__burst_pop(edo__burst *b)
{
	uint64_t pos = atomic_load_explicit(&b->pos, memory_order_relaxed);
	for (;;) {
		uint32_t next = edo__burst_next_of(pos);
		if (next >= edo__burst_len_of(pos))
			return NULL;
		edo__task *t = atomic_load_explicit(&b->tasks[next], memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&b->pos, &pos, pos + (1u << 16),
							  memory_order_acq_rel,
							  memory_order_relaxed)) {
			/* The next one runs after this one: ask for its cell now,
			 * as the local queue does (a thief may take it; a
			 * prefetch is only a hint). */
			if (next + 1 < edo__burst_len_of(pos))
				edo__task_prefetch(atomic_load_explicit(&b->tasks[next + 1],
									memory_order_relaxed));
			return t;
		}
	}
}

/* Any thread: take every waiting task into @out (room for EDO__BURST_MAX),
 * oldest first; returns how many. */
static inline uint32_t edo__burst_take_all(edo__burst *b, edo__task **out)
{
	uint64_t pos = atomic_load_explicit(&b->pos, memory_order_acquire);
	for (;;) {
		uint32_t next = edo__burst_next_of(pos), len = edo__burst_len_of(pos);
		if (next >= len)
			return 0;
		for (uint32_t i = next; i < len; i++)
			out[i - next] = atomic_load_explicit(&b->tasks[i], memory_order_relaxed);
		EDO__BURST_TAKE_HOOK();
		uint64_t taken = (pos & ~(uint64_t)0xffff0000u) | ((uint64_t)len << 16);
		if (atomic_compare_exchange_weak_explicit(&b->pos, &pos, taken,
							  memory_order_acq_rel,
							  memory_order_acquire))
			return len - next;
	}
}

/* Owner, when no task waits: a new burst of @n (2..EDO__BURST_MAX) tasks,
 * of which the caller runs @tasks[0] now and the rest wait. */
static inline void edo__burst_load(edo__burst *b, edo__task *const *tasks, uint32_t n)
{
	/* Acquire: the CAS of the thief that emptied the last burst comes
	 * before these writes to its slots. */
	uint64_t gen = (atomic_load_explicit(&b->pos, memory_order_acquire) >> 32) + 1;
	for (uint32_t i = 1; i < n; i++)
		atomic_store_explicit(&b->tasks[i], tasks[i], memory_order_relaxed);
	atomic_store_explicit(&b->pos, (gen << 32) | (1u << 16) | n, memory_order_release);
}

#endif /* EDO_MT_BURST_H */
