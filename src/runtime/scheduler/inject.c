#include "runtime/scheduler/inject.h"

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
