/* The multi-thread, work-stealing scheduler (see worker.c). */
#ifndef EDO_MULTI_THREAD_H
#define EDO_MULTI_THREAD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "edo/metrics.h"
#include "edo/runtime.h"
#include "runtime/stats.h"
#include "runtime/task/task.h"

int edo__mt_new(const edo_runtime_builder *b, edo__sched **out);
int edo__mt_block_on(edo__sched *s, edo_future *fut);
/* Stop the workers and release the runtime's reference: 0, -EBUSY (nothing
 * done), or -ETIMEDOUT when worker threads (or block_in_place threads) were
 * still inside user code after @timeout_ms (< 0: no limit); the last of
 * them finishes the shutdown and releases the reference. */
int edo__mt_shutdown(edo__sched *s, int64_t timeout_ms);
int edo__mt_block_in_place(edo__sched *s, void (*fn)(void *), void *arg);
int edo__mt_worker_metrics(edo__sched *s, uint32_t i, edo_worker_metrics *out);
uint32_t edo__mt_num_workers(edo__sched *s);
size_t edo__mt_inject_depth(edo__sched *s);

#endif /* EDO_MULTI_THREAD_H */
