/* The first Edo program: spawn a few tasks, let them take turns, join them.
 *
 *   make run        (builds everything, then runs build/examples/demo)
 *
 * Each worker is a stackless coroutine: a frame struct holding everything
 * that lives across an await, and a body between EDO_BEGIN() and EDO_END().
 */
#include <stdio.h>

#include "edo.h"

/* A worker sums 1..n, yielding to the other tasks every `step` numbers. */
typedef struct worker_frame {
	EDO_FRAME;
	int id, n, step; /* arguments */
	int i;           /* a "local" that lives across awaits */
	long sum;        /* the output, read through the join handle */
} worker_frame;

EDO_ASYNC(worker, worker_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 1; self->i <= self->n; self->i++) {
		self->sum += self->i;
		if (self->i % self->step == 0) {
			printf("  worker %d (task %llu) at %d, yielding\n", self->id,
			       (unsigned long long)edo_task_id(), self->i);
			EDO_YIELD(); /* let the others run */
		}
	}
	EDO_END();
}

/* A task that would run forever; main aborts it. */
typedef struct spinner_frame {
	EDO_FRAME;
	long turns;
} spinner_frame;

static void spinner_cleanup(spinner_frame *self)
{
	printf("  spinner cancelled after %ld turns (its cleanup ran)\n", self->turns);
}

EDO_ASYNC(spinner, spinner_frame, spinner_cleanup)
{
	EDO_BEGIN();
	for (;;) {
		self->turns++;
		EDO_YIELD();
	}
	EDO_END();
}

#define WORKERS 3

typedef struct main_frame {
	EDO_FRAME;
	edo_join *workers[WORKERS];
	edo_join *spin;
	int i, rc;
} main_frame;

EDO_ASYNC(main_task, main_frame, NULL)
{
	EDO_BEGIN();
	if (EDO_SPAWN(&self->spin, spinner) < 0)
		EDO_RETURN();
	for (self->i = 0; self->i < WORKERS; self->i++)
		EDO_SPAWN(&self->workers[self->i], worker, .id = self->i, .n = 10 * (self->i + 1),
			  .step = 5);

	for (self->i = 0; self->i < WORKERS; self->i++) {
		EDO_AWAIT_JOIN(self->workers[self->i], &self->rc);
		worker_frame *w = EDO_JOIN_OUTPUT(self->workers[self->i], worker);
		printf("worker %d finished: sum = %ld\n", self->i, w->sum);
		edo_join_detach(self->workers[self->i]);
	}

	edo_join_abort(self->spin);
	EDO_AWAIT_JOIN(self->spin, &self->rc);
	printf("spinner joined: %s\n", edo_strerror(self->rc));
	edo_join_detach(self->spin);
	EDO_END();
}

int main(void)
{
	edo_runtime *rt;
	int rc = edo_runtime_new_current_thread(&rt);
	if (rc < 0) {
		fprintf(stderr, "runtime: %s\n", edo_strerror(rc));
		return 1;
	}
	main_frame m = {EDO_FRAME_INIT(main_task)};
	rc = edo_block_on(rt, &m.edo_base);
	edo_runtime_free(rt);
	return rc < 0 ? 1 : 0;
}
