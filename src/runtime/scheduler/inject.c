#include "runtime/scheduler/inject.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool edo__inject_alloc_fails;

void edo__inject_init(edo__inject *q)
{
	pthread_mutex_init(&q->lock, NULL);
	q->first = q->last = q->spare = NULL;
	q->spill_head = q->spill_tail = NULL;
	atomic_init(&q->len, 0);
	q->closed = false;
}

void edo__inject_destroy(edo__inject *q)
{
	for (edo__inject_block *b = q->first, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(q->spare);
	q->first = q->last = q->spare = NULL;
	pthread_mutex_destroy(&q->lock);
}

static void add_len(edo__inject *q, size_t n)
{
	atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + n,
			      memory_order_release);
}

static void sub_len(edo__inject *q, size_t n)
{
	atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) - n,
			      memory_order_relaxed);
}

/* A block with room at the tail of the queue, or NULL (no memory: spill).
 * Called with the lock held. */
static edo__inject_block *tail_block(edo__inject *q)
{
	edo__inject_block *b = q->last;
	if (b && b->tail < EDO__INJECT_BLOCK)
		return b;
	if (q->spare) {
		b = q->spare;
		q->spare = NULL;
	} else {
		b = edo__inject_alloc_fails ? NULL : malloc(sizeof *b);
		if (!b)
			return NULL;
	}
	b->next = NULL;
	b->head = b->tail = 0;
	if (q->last)
		q->last->next = b;
	else
		q->first = b;
	q->last = b;
	return b;
}

static void spill(edo__inject *q, edo__task *t)
{
	t->next = NULL;
	if (q->spill_tail)
		q->spill_tail->next = t;
	else
		q->spill_head = t;
	q->spill_tail = t;
}

/* Append under the lock.  Once anything is spilled, everything newer is
 * spilled too until the spill list drains, so FIFO order holds. */
static void append(edo__inject *q, edo__task *const *tasks, uint32_t n)
{
	uint32_t i = 0;
	while (i < n && !q->spill_head) {
		edo__inject_block *b = tail_block(q);
		if (!b)
			break;
		uint32_t k = EDO__INJECT_BLOCK - b->tail;
		if (k > n - i)
			k = n - i;
		memcpy(&b->slot[b->tail], &tasks[i], k * sizeof(edo__task *));
		b->tail += k;
		i += k;
	}
	for (; i < n; i++)
		spill(q, tasks[i]);
	add_len(q, n);
}

/* Pop under the lock: the blocks (older) first, then the spill list. */
static uint32_t take(edo__inject *q, uint32_t max, edo__task **out)
{
	uint32_t n = 0;
	while (n < max && q->first) {
		edo__inject_block *b = q->first;
		uint32_t k = b->tail - b->head;
		if (k > max - n)
			k = max - n;
		memcpy(&out[n], &b->slot[b->head], k * sizeof(edo__task *));
		b->head += k;
		n += k;
		if (b->head < b->tail)
			break;
		/* Drained: unlink it; keep one for reuse. */
		q->first = b->next;
		if (!q->first)
			q->last = NULL;
		if (q->spare)
			free(b);
		else
			q->spare = b;
	}
	while (n < max && q->spill_head) {
		edo__task *t = q->spill_head;
		q->spill_head = t->next;
		if (!q->spill_head)
			q->spill_tail = NULL;
		t->next = NULL;
		out[n++] = t;
	}
	if (n)
		sub_len(q, n);
	return n;
}

bool edo__inject_push(edo__inject *q, edo__task *t)
{
	return edo__inject_push_batch(q, &t, 1);
}

bool edo__inject_push_batch(edo__inject *q, edo__task *const *tasks, uint32_t n)
{
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		return false;
	}
	append(q, tasks, n);
	pthread_mutex_unlock(&q->lock);
	return true;
}

edo__task *edo__inject_pop(edo__inject *q)
{
	edo__task *t;
	return edo__inject_pop_n(q, 1, &t) ? t : NULL;
}

uint32_t edo__inject_pop_n(edo__inject *q, uint32_t max, edo__task **out)
{
	if (max == 0 || edo__inject_is_empty(q))
		return 0;
	pthread_mutex_lock(&q->lock);
	uint32_t n = take(q, max, out);
	pthread_mutex_unlock(&q->lock);
	return n;
}

void edo__inject_close(edo__inject *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_mutex_unlock(&q->lock);
}

/* ---- a set of shards ----------------------------------------------------------------- */

static __thread uint32_t shard_hint;
static atomic_uint shard_next;

int edo__inject_set_init(edo__inject_set *q, uint32_t n)
{
	uint32_t shards = 1;
	while (shards < n)
		shards <<= 1;
	q->shards = calloc(shards, sizeof(edo__inject));
	if (!q->shards)
		return -ENOMEM;
	for (uint32_t i = 0; i < shards; i++)
		edo__inject_init(&q->shards[i]);
	q->mask = shards - 1;
	return 0;
}

void edo__inject_set_destroy(edo__inject_set *q)
{
	if (!q->shards)
		return;
	for (uint32_t i = 0; i <= q->mask; i++)
		edo__inject_destroy(&q->shards[i]);
	free(q->shards);
	q->shards = NULL;
}

bool edo__inject_set_push(edo__inject_set *q, edo__task *t)
{
	if (!shard_hint)
		shard_hint = atomic_fetch_add_explicit(&shard_next, 1, memory_order_relaxed) + 1;
	return edo__inject_push(&q->shards[shard_hint & q->mask], t);
}

bool edo__inject_set_push_batch(edo__inject_set *q, uint32_t i, edo__task *const *tasks, uint32_t n)
{
	return edo__inject_push_batch(&q->shards[i & q->mask], tasks, n);
}

uint32_t edo__inject_set_pop_n(edo__inject_set *q, uint32_t start, uint32_t max, edo__task **out)
{
	for (uint32_t k = 0; k <= q->mask; k++) {
		uint32_t n = edo__inject_pop_n(&q->shards[(start + k) & q->mask], max, out);
		if (n)
			return n;
	}
	return 0;
}

bool edo__inject_set_is_empty(edo__inject_set *q)
{
	for (uint32_t i = 0; i <= q->mask; i++)
		if (!edo__inject_is_empty(&q->shards[i]))
			return false;
	return true;
}

size_t edo__inject_set_len(edo__inject_set *q)
{
	size_t n = 0;
	for (uint32_t i = 0; i <= q->mask; i++)
		n += edo__inject_len(&q->shards[i]);
	return n;
}

void edo__inject_set_close(edo__inject_set *q)
{
	for (uint32_t i = 0; i <= q->mask; i++)
		edo__inject_close(&q->shards[i]);
}
