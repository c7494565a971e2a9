/* The blocking pool (see pool.c). */
#ifndef EDO_BLOCKING_POOL_H
#define EDO_BLOCKING_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "edo/runtime.h"
#include "edo/task.h"
#include "runtime/task/task.h"

/* A pool whose threads run in the context of @runtime (spawns go there). */
int edo__pool_new(const edo_runtime_builder *b, edo__sched *runtime, edo__sched **out);

/* Cancel queued non-mandatory tasks, let the rest finish, wait for the
 * threads (@timeout_ms < 0: forever).  0, or -ETIMEDOUT if threads remain. */
int edo__pool_shutdown(edo__sched *pool, int64_t timeout_ms);

/* edo_spawn_blocking_on(), and @on_cancel(@arg) runs if the job is
 * cancelled before it ran (a non-mandatory job still queued at shutdown),
 * so that whatever @arg holds is released.  @on_cancel may be NULL. */
int edo__spawn_blocking_cleanup(edo_handle *h, void *(*fn)(void *), void *arg, unsigned flags,
				void (*on_cancel)(void *), edo_join **out);

size_t edo__pool_threads(edo__sched *pool);
size_t edo__pool_idle_threads(edo__sched *pool);
size_t edo__pool_queue_depth(edo__sched *pool);

#endif /* EDO_BLOCKING_POOL_H */
