/* The current-thread scheduler (see current_thread.c). */
#ifndef EDO_CURRENT_THREAD_H
#define EDO_CURRENT_THREAD_H

#include "edo/runtime.h"
#include "runtime/task/task.h"

int edo__ct_new(const edo_runtime_builder *b, edo__sched **out);
int edo__ct_block_on(edo__sched *s, edo_future *fut);
/* Cancel every task and release the runtime's reference. */
int edo__ct_shutdown(edo__sched *s);

#endif /* EDO_CURRENT_THREAD_H */
