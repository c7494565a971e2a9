/* The per-worker local run queue: a fixed ring of 256 task pointers with one
 * producer (the owning worker) and many consumers (the owner popping, thieves
 * stealing half).
 *
 *   head (64 bits) = steal head (high 32) | real head (low 32)
 *   tail (32 bits) = written only by the owner
 *
 *        steal      real                 tail
 *          │          │                    │
 *   ... [ being copied ][ queued tasks ... ] [ free ... ]
 *
 * The owner pops at the real head (the queue is FIFO) with one CAS.  A thief
 * claims half of [real, tail) by moving only the real head forward, copies
 * the claimed slots into its own ring, then moves the steal head up to the
 * real head.  While steal != real another thief gives up, and the owner
 * never overwrites a slot in [steal, real).  Indices are 32-bit and wrap;
 * only their difference matters, so full and empty are distinguishable.
 *
 * A full ring moves half of itself (128 tasks) plus the new one to the
 * inject queue in one batch.  This is Tokio's queue (queue.rs).
 */
#ifndef EDO_MT_QUEUE_H
#define EDO_MT_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/task/task.h"

#define EDO__LOCAL_QUEUE_CAPACITY 256u
#define EDO__LOCAL_QUEUE_MASK (EDO__LOCAL_QUEUE_CAPACITY - 1)

typedef struct edo__local_queue {
	_Atomic(uint64_t) head;
	_Atomic(uint32_t) tail;
	_Atomic(edo__task *) buf[EDO__LOCAL_QUEUE_CAPACITY];
} edo__local_queue;

/* Where overflow goes: called with @n tasks in @tasks, oldest first (the
 * tasks themselves are not touched: no link is written into them). */
typedef void (*edo__overflow_fn)(void *ctx, edo__task *const *tasks, uint32_t n);

void edo__local_queue_init(edo__local_queue *q);

/* Owner only.  Push @t at the tail; when full, move half the queue and @t to
 * the overflow sink. Returns true if it overflowed. */
bool edo__local_queue_push(edo__local_queue *q, edo__task *t, edo__overflow_fn overflow, void *ctx);

/* Owner only.  Pop the oldest task, or NULL. */
edo__task *edo__local_queue_pop(edo__local_queue *q);

/* Any thread.  Steal half of @src into @dst (owned by the caller) and return
 * one of the stolen tasks (the rest are queued in @dst), or NULL. */
edo__task *edo__local_queue_steal_into(edo__local_queue *src, edo__local_queue *dst);

/* Any thread: tasks queued (approximate when racing). */
uint32_t edo__local_queue_len(edo__local_queue *q);

static inline bool edo__local_queue_is_empty(edo__local_queue *q)
{
	return edo__local_queue_len(q) == 0;
}

/* Owner only: free slots. */
uint32_t edo__local_queue_remaining(edo__local_queue *q);

#endif /* EDO_MT_QUEUE_H */
