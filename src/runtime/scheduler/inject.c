#include "runtime/scheduler/inject.h"

#include <errno.h>
#include <stdlib.h>

void edo__inject_init(edo__inject *q)
{
	pthread_mutex_init(&q->lock, NULL);
	q->head = q->tail = NULL;
	atomic_init(&q->len, 0);
	q->closed = false;
}

void edo__inject_destroy(edo__inject *q)
{
	pthread_mutex_destroy(&q->lock);
}

bool edo__inject_push(edo__inject *q, edo__task *t)
{
	t->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		return false;
	}
	if (q->tail)
		q->tail->next = t;
	else
		q->head = t;
	q->tail = t;
	atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + 1,
			      memory_order_release);
	pthread_mutex_unlock(&q->lock);
	return true;
}

edo__task *edo__inject_pop(edo__inject *q)
{
	if (edo__inject_is_empty(q))
		return NULL;
	pthread_mutex_lock(&q->lock);
	edo__task *t = q->head;
	if (t) {
		q->head = t->next;
		if (!q->head)
			q->tail = NULL;
		t->next = NULL;
		atomic_store_explicit(&q->len,
				      atomic_load_explicit(&q->len, memory_order_relaxed) - 1,
				      memory_order_relaxed);
	}
	pthread_mutex_unlock(&q->lock);
	return t;
}

void edo__inject_close(edo__inject *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_mutex_unlock(&q->lock);
}

uint32_t edo__inject_pop_n(edo__inject *q, uint32_t max, edo__task **first)
{
	*first = NULL;
	if (max == 0 || edo__inject_is_empty(q))
		return 0;
	pthread_mutex_lock(&q->lock);
	uint32_t n = 0;
	edo__task *head = q->head, *last = NULL;
	for (edo__task *t = head; t && n < max; t = t->next) {
		last = t;
		n++;
	}
	if (n) {
		q->head = last->next;
		if (!q->head)
			q->tail = NULL;
		last->next = NULL;
		atomic_store_explicit(&q->len,
				      atomic_load_explicit(&q->len, memory_order_relaxed) - n,
				      memory_order_relaxed);
		*first = head;
	}
	pthread_mutex_unlock(&q->lock);
	return n;
}

bool edo__inject_push_batch(edo__inject *q, edo__task *first, edo__task *last, uint32_t n)
{
	last->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		pthread_mutex_unlock(&q->lock);
		return false;
	}
	if (q->tail)
		q->tail->next = first;
	else
		q->head = first;
	q->tail = last;
	atomic_store_explicit(&q->len, atomic_load_explicit(&q->len, memory_order_relaxed) + n,
			      memory_order_release);
	pthread_mutex_unlock(&q->lock);
	return true;
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

bool edo__inject_set_push_batch(edo__inject_set *q, uint32_t i, edo__task *first, edo__task *last,
				uint32_t n)
{
	return edo__inject_push_batch(&q->shards[i & q->mask], first, last, n);
}

uint32_t edo__inject_set_pop_n(edo__inject_set *q, uint32_t start, uint32_t max, edo__task **first)
{
	*first = NULL;
	for (uint32_t k = 0; k <= q->mask; k++) {
		uint32_t n = edo__inject_pop_n(&q->shards[(start + k) & q->mask], max, first);
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
