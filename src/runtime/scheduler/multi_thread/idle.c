#include "runtime/scheduler/multi_thread/idle.h"

#include <errno.h>
#include <stdlib.h>

#define UNPARK_ONE (1u << 16)

int edo__idle_init(edo__idle *idle, uint32_t num_workers)
{
	idle->sleepers = calloc(num_workers, sizeof(uint32_t));
	if (!idle->sleepers)
		return -ENOMEM;
	atomic_init(&idle->state, num_workers * UNPARK_ONE);
	idle->num_workers = num_workers;
	idle->num_sleepers = 0;
	pthread_mutex_init(&idle->lock, NULL);
	return 0;
}

void edo__idle_destroy(edo__idle *idle)
{
	pthread_mutex_destroy(&idle->lock);
	free(idle->sleepers);
}

bool edo__idle_transition_to_searching(edo__idle *idle)
{
	uint32_t st = atomic_load_explicit(&idle->state, memory_order_seq_cst);
	if (2 * edo__idle_searching(st) >= idle->num_workers)
		return false;
	/* Racy by design (as in Tokio): a few extra searchers are harmless. */
	atomic_fetch_add_explicit(&idle->state, 1, memory_order_seq_cst);
	return true;
}

bool edo__idle_transition_from_searching(edo__idle *idle)
{
	uint32_t prev = atomic_fetch_sub_explicit(&idle->state, 1, memory_order_seq_cst);
	return edo__idle_searching(prev) == 1;
}

bool edo__idle_transition_to_parked(edo__idle *idle, uint32_t worker, bool is_searching)
{
	pthread_mutex_lock(&idle->lock);
	uint32_t dec = UNPARK_ONE + (is_searching ? 1u : 0u);
	uint32_t prev = atomic_fetch_sub_explicit(&idle->state, dec, memory_order_seq_cst);
	idle->sleepers[idle->num_sleepers++] = worker;
	pthread_mutex_unlock(&idle->lock);
	return is_searching && edo__idle_searching(prev) == 1;
}

static bool should_wake(edo__idle *idle)
{
	/* Dekker with the parking side: the caller just published work (a
	 * queue store) and now reads the idle state; a worker going to sleep
	 * updates the state (a seq_cst RMW) and then reads the queues.  The
	 * fence keeps our store from passing this load (x86 reorders a store
	 * with a later load too), so one of the two sides sees the other and
	 * no wake-up is lost.  Tokio gets the same with a fetch_add(0). */
	EDO__FULL_FENCE(&idle->state);
	uint32_t st = atomic_load_explicit(&idle->state, memory_order_seq_cst);
	return edo__idle_searching(st) == 0 && edo__idle_unparked(st) < idle->num_workers;
}

int32_t edo__idle_worker_to_notify(edo__idle *idle)
{
	if (!should_wake(idle))
		return -1;
	pthread_mutex_lock(&idle->lock);
	if (!should_wake(idle) || idle->num_sleepers == 0) {
		pthread_mutex_unlock(&idle->lock);
		return -1;
	}
	atomic_fetch_add_explicit(&idle->state, UNPARK_ONE + 1, memory_order_seq_cst);
	uint32_t w = idle->sleepers[--idle->num_sleepers];
	pthread_mutex_unlock(&idle->lock);
	return (int32_t)w;
}

bool edo__idle_unpark_worker_by_id(edo__idle *idle, uint32_t worker)
{
	bool found = false;
	pthread_mutex_lock(&idle->lock);
	for (uint32_t i = 0; i < idle->num_sleepers; i++) {
		if (idle->sleepers[i] == worker) {
			idle->sleepers[i] = idle->sleepers[--idle->num_sleepers];
			atomic_fetch_add_explicit(&idle->state, UNPARK_ONE, memory_order_seq_cst);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&idle->lock);
	return found;
}

bool edo__idle_is_parked(edo__idle *idle, uint32_t worker)
{
	bool found = false;
	pthread_mutex_lock(&idle->lock);
	for (uint32_t i = 0; i < idle->num_sleepers; i++)
		found |= idle->sleepers[i] == worker;
	pthread_mutex_unlock(&idle->lock);
	return found;
}
