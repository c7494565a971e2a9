/* The inject queue: tasks scheduled from outside a scheduler's own threads,
 * and the overflow of the multi-thread workers' local queues.
 *
 * A FIFO of task pointers under a mutex, kept in blocks of
 * EDO__INJECT_BLOCK slots, with an atomic length so that the hot path (is
 * there remote work?) is one relaxed load and no lock.  Blocks, not a list
 * through the tasks: a worker whose local queue overflows moves half of it
 * here and takes it back later in batches, and a list would make both moves
 * walk the tasks, one cache miss after another under the lock (with 1,000
 * connections on one worker, that walk was 4% of the server's time).  With
 * blocks, both moves copy pointers and no task is touched until it runs.
 *
 * A block that cannot be allocated never loses a task: while memory is
 * short, pushes go to a spill list linked through edo__task.next, which
 * holds only tasks newer than every block's, so the order stays FIFO.  One
 * drained block is kept for reuse, so a steady trickle allocates nothing.
 * Closing the queue at shutdown refuses later pushes, which the pusher then
 * drops, so no notification is ever stranded in a dead queue.
 */
#ifndef EDO_INJECT_H
#define EDO_INJECT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/task/task.h"

#define EDO__INJECT_BLOCK 254u /* slots per block: the block is 2 KiB */

typedef struct edo__inject_block {
	struct edo__inject_block *next;
	uint32_t head, tail; /* slots [head, tail) hold tasks, oldest first */
	edo__task *slot[EDO__INJECT_BLOCK];
} edo__inject_block;

typedef struct edo__inject {
	pthread_mutex_t lock;
	edo__inject_block *first, *last; /* oldest block first */
	edo__inject_block *spare;        /* a drained block kept for reuse */
	edo__task *spill_head, *spill_tail;
	atomic_size_t len;
	bool closed;
} edo__inject;

/* Tests set this to make block allocation fail, so that the spill list
 * takes over. */
extern bool edo__inject_alloc_fails;

void edo__inject_init(edo__inject *q);
/* Frees the blocks; the queue must have been drained. */
void edo__inject_destroy(edo__inject *q);

/* Append @t; false (nothing queued) if the queue is closed. */
bool edo__inject_push(edo__inject *q, edo__task *t);

/* Pop the oldest task, or NULL. */
edo__task *edo__inject_pop(edo__inject *q);

/* Close; later pushes fail.  Tasks already queued stay for draining. */
void edo__inject_close(edo__inject *q);

static inline bool edo__inject_is_empty(edo__inject *q)
{
	return atomic_load_explicit(&q->len, memory_order_relaxed) == 0;
}

static inline size_t edo__inject_len(edo__inject *q)
{
	return atomic_load_explicit(&q->len, memory_order_relaxed);
}

/* Pop up to @max of the oldest tasks into @out[0..), oldest first; returns
 * how many. */
uint32_t edo__inject_pop_n(edo__inject *q, uint32_t max, edo__task **out);

/* Append @tasks[0..@n) in that order at once; false (nothing queued) if
 * closed. */
bool edo__inject_push_batch(edo__inject *q, edo__task *const *tasks, uint32_t n);

/* ---- a set of shards -------------------------------------------------------------
 *
 * Remote threads each push to "their" shard (chosen once per thread), so
 * spawners on different threads never share a lock; consumers look at the
 * shards from a start index of their own.  Emptiness is one relaxed load per
 * shard. */
typedef struct edo__inject_set {
	edo__inject *shards;
	uint32_t mask;
} edo__inject_set;

/* @n is rounded up to a power of two. */
int edo__inject_set_init(edo__inject_set *q, uint32_t n);
void edo__inject_set_destroy(edo__inject_set *q);
/* Push to the calling thread's shard; false if closed. */
bool edo__inject_set_push(edo__inject_set *q, edo__task *t);
/* Push a batch to shard @i; false if closed. */
bool edo__inject_set_push_batch(edo__inject_set *q, uint32_t i, edo__task *const *tasks,
				uint32_t n);
/* Pop up to @max tasks into @out from the first non-empty shard, starting at
 * @start; returns how many. */
uint32_t edo__inject_set_pop_n(edo__inject_set *q, uint32_t start, uint32_t max, edo__task **out);
bool edo__inject_set_is_empty(edo__inject_set *q);
size_t edo__inject_set_len(edo__inject_set *q);
/* Close every shard. */
void edo__inject_set_close(edo__inject_set *q);

#endif /* EDO_INJECT_H */
