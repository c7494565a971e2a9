/* The current-thread scheduler (see current_thread.c). */
#ifndef EDO_CURRENT_THREAD_H
#define EDO_CURRENT_THREAD_H

#include "edo/metrics.h"
#include "edo/runtime.h"
#include "runtime/task/task.h"

int edo__ct_new(const edo_runtime_builder *b, edo__sched **out);
int edo__ct_block_on(edo__sched *s, edo_future *fut);
/* Cancel every task and release the runtime's reference. */
int edo__ct_shutdown(edo__sched *s);
size_t edo__ct_inject_depth(edo__sched *s);
int edo__ct_worker_metrics(edo__sched *s, uint32_t i, edo_worker_metrics *out);

#endif /* EDO_CURRENT_THREAD_H */
