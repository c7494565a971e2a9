#include "runtime/task/owned.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

int edo__owned_init(edo__owned *o, unsigned nshards)
{
	unsigned n = 1;
	while (n < nshards && n < 65536)
		n <<= 1;
	o->shards = aligned_alloc(64, n * sizeof(edo__owned_shard));
	if (!o->shards)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		pthread_mutex_init(&o->shards[i].lock, NULL);
		o->shards[i].head = NULL;
		o->shards[i].count = 0;
	}
	o->mask = n - 1;
	atomic_init(&o->closed, false);
	return 0;
}

void edo__owned_destroy(edo__owned *o)
{
	if (!o->shards)
		return;
	for (uint32_t i = 0; i <= o->mask; i++) {
		assert(o->shards[i].head == NULL);
		pthread_mutex_destroy(&o->shards[i].lock);
	}
	free(o->shards);
	o->shards = NULL;
}

bool edo__owned_bind(edo__owned *o, edo__task *t)
{
	/* Ids come in per-thread blocks of 256 (edo__task_next_id), so the
	 * block number picks a shard per spawning thread: threads spawning at
	 * once do not share a lock. */
	uint32_t i = (uint32_t)(t->id >> 8) & o->mask;
	edo__owned_shard *sh = &o->shards[i];
	pthread_mutex_lock(&sh->lock);
	if (atomic_load_explicit(&o->closed, memory_order_relaxed)) {
		pthread_mutex_unlock(&sh->lock);
		return false;
	}
	t->shard = (uint16_t)i;
	t->owned = 1;
	t->owned_prev = NULL;
	t->owned_next = sh->head;
	if (sh->head)
		sh->head->owned_prev = t;
	sh->head = t;
	sh->count++;
	pthread_mutex_unlock(&sh->lock);
	return true;
}

static void unlink_locked(edo__owned_shard *sh, edo__task *t)
{
	if (t->owned_prev)
		t->owned_prev->owned_next = t->owned_next;
	else
		sh->head = t->owned_next;
	if (t->owned_next)
		t->owned_next->owned_prev = t->owned_prev;
	t->owned_prev = t->owned_next = NULL;
	t->owned = 0;
	sh->count--;
}

bool edo__owned_remove(edo__owned *o, edo__task *t)
{
	edo__owned_shard *sh = &o->shards[t->shard];
	bool was = false;
	pthread_mutex_lock(&sh->lock);
	if (t->owned) {
		unlink_locked(sh, t);
		was = true;
	}
	pthread_mutex_unlock(&sh->lock);
	return was;
}

void edo__owned_close(edo__owned *o)
{
	/* Taking each lock orders this store before any later bind's check. */
	atomic_store(&o->closed, true);
	for (uint32_t i = 0; i <= o->mask; i++) {
		pthread_mutex_lock(&o->shards[i].lock);
		pthread_mutex_unlock(&o->shards[i].lock);
	}
}

edo__task *edo__owned_pop(edo__owned *o, uint32_t i)
{
	edo__owned_shard *sh = &o->shards[i & o->mask];
	pthread_mutex_lock(&sh->lock);
	edo__task *t = sh->head;
	if (t)
		unlink_locked(sh, t);
	pthread_mutex_unlock(&sh->lock);
	return t;
}

size_t edo__owned_count(edo__owned *o)
{
	size_t n = 0;
	for (uint32_t i = 0; i <= o->mask; i++) {
		pthread_mutex_lock(&o->shards[i].lock);
		n += o->shards[i].count;
		pthread_mutex_unlock(&o->shards[i].lock);
	}
	return n;
}
