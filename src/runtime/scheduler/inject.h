/* The inject queue: tasks scheduled from outside a scheduler's own threads.
 *
 * An intrusive FIFO through edo__task.next under a mutex, with an atomic
 * length so that the hot path (is there remote work?) is one relaxed load
 * and no lock.  Closing it at shutdown refuses later pushes, which the
 * pusher then drops, so no notification is ever stranded in a dead queue.
 */
#ifndef EDO_INJECT_H
#define EDO_INJECT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/task/task.h"

typedef struct edo__inject {
	pthread_mutex_t lock;
	edo__task *head, *tail;
	atomic_size_t len;
	bool closed;
} edo__inject;

void edo__inject_init(edo__inject *q);
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

/* Pop up to @max tasks as a list linked through ->next (NULL-terminated);
 * returns how many, and the first in *@first (NULL if none). */
uint32_t edo__inject_pop_n(edo__inject *q, uint32_t max, edo__task **first);

/* Append a list of @n tasks (@first..@last linked through ->next) at once;
 * false (nothing queued) if closed. */
bool edo__inject_push_batch(edo__inject *q, edo__task *first, edo__task *last, uint32_t n);

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
bool edo__inject_set_push_batch(edo__inject_set *q, uint32_t i, edo__task *first, edo__task *last,
				uint32_t n);
/* Pop up to @max tasks from the first non-empty shard, starting at @start. */
uint32_t edo__inject_set_pop_n(edo__inject_set *q, uint32_t start, uint32_t max, edo__task **first);
bool edo__inject_set_is_empty(edo__inject_set *q);
size_t edo__inject_set_len(edo__inject_set *q);
/* Close every shard. */
void edo__inject_set_close(edo__inject_set *q);

#endif /* EDO_INJECT_H */
