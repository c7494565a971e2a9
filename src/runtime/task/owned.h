/* The owned-tasks list: every live task of a runtime, so that shutdown can
 * cancel them all.
 *
 * Intrusive doubly-linked lists split into shards, each under its own mutex;
 * a task goes to shard (id & mask).  Closing the list is what makes shutdown
 * race-free: a spawn binds its task under the shard lock and checks the
 * closed flag there, so a task is either seen by shutdown's sweep or refused
 * (and cancelled by its spawner), never lost.
 */
#ifndef EDO_TASK_OWNED_H
#define EDO_TASK_OWNED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "runtime/task/task.h"

typedef struct edo__owned_shard {
	pthread_mutex_t lock;
	edo__task *head;
	size_t count;
} __attribute__((aligned(64))) edo__owned_shard;

typedef struct edo__owned {
	edo__owned_shard *shards;
	uint32_t mask;
	atomic_bool closed;
} edo__owned;

/* @nshards is rounded up to a power of two. */
int edo__owned_init(edo__owned *o, unsigned nshards);
void edo__owned_destroy(edo__owned *o);

/* Link @t (which holds an owned reference for the list).  False if the list is
 * closed: @t was not linked. */
bool edo__owned_bind(edo__owned *o, edo__task *t);

/* Unlink @t if linked.  True if it was (the caller drops the list's ref). */
bool edo__owned_remove(edo__owned *o, edo__task *t);

/* Refuse new binds from now on. */
void edo__owned_close(edo__owned *o);

/* Unlink and return some task of shard @i, or NULL if it is empty.  The
 * caller takes over the list's reference. */
edo__task *edo__owned_pop(edo__owned *o, uint32_t i);

/* Tasks linked now (a snapshot). */
size_t edo__owned_count(edo__owned *o);

#endif /* EDO_TASK_OWNED_H */
