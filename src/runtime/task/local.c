/* Task-local storage: a short list of (key, value) pairs per task, made on
 * the first set and freed (destructors run) when the task finishes or is
 * cancelled.  Tasks rarely hold more than a handful of locals, so a list
 * beats a table here. */
#include <errno.h>
#include <stdlib.h>

#include "edo/error.h"
#include "edo/task.h"
#include "runtime/context.h"
#include "runtime/task/task.h"

int edo_task_local_set(const edo_task_local_key *key, void *value)
{
	if (!key)
		return -EINVAL;
	edo__task *t = edo__ctx.task;
	if (!t)
		return EDO_ENORUNTIME;
	edo__task_cold *c = edo__task_cold_of(t);
	for (edo__task_local *l = c->locals; l; l = l->next) {
		if (l->key == key) {
			void *old = l->value;
			l->value = value;
			if (old && old != value && key->dtor)
				key->dtor(old);
			return 0;
		}
	}
	edo__task_local *l = malloc(sizeof *l);
	if (!l)
		return -ENOMEM;
	l->key = key;
	l->value = value;
	l->next = c->locals;
	c->locals = l;
	return 0;
}

void *edo_task_local_get(const edo_task_local_key *key)
{
	edo__task *t = edo__ctx.task;
	if (!t || !key)
		return NULL;
	for (edo__task_local *l = edo__task_cold_of(t)->locals; l; l = l->next)
		if (l->key == key)
			return l->value;
	return NULL;
}

void edo__task_locals_drop(edo__task *t)
{
	edo__task_cold *c = edo__task_cold_of(t);
	/* A destructor may set new locals; loop until none are left. */
	while (c->locals) {
		edo__task_local *l = c->locals;
		c->locals = NULL;
		while (l) {
			edo__task_local *next = l->next;
			if (l->value && l->key->dtor)
				l->key->dtor(l->value);
			free(l);
			l = next;
		}
	}
}
