/* Edo — runtime metrics, read without stopping the runtime.
 *
 * Workers keep their counters as plain integers and publish them with
 * relaxed stores (no atomic read-modify-write on the hot path), at least
 * every event_interval ticks and whenever they park; a reading is therefore
 * a recent snapshot, not an instant.  Counters only grow, except the depth
 * gauges.  All functions are thread-safe.
 */
#ifndef EDO_METRICS_H
#define EDO_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "edo/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Runtime-wide figures. */
typedef struct edo_runtime_metrics {
	uint32_t workers;            /**< worker threads (1 on the current-thread runtime) */
	size_t alive_tasks;          /**< tasks spawned and not yet completed */
	size_t inject_queue_depth;   /**< tasks waiting in the remote (inject) queue */
	size_t blocking_threads;     /**< threads in the blocking pool */
	size_t blocking_queue_depth; /**< blocking tasks waiting for a thread */
} edo_runtime_metrics;

/** One worker's counters. */
typedef struct edo_worker_metrics {
	uint64_t polls;                /**< task polls */
	uint64_t steals;               /**< tasks stolen from other workers */
	uint64_t steal_operations;     /**< steal attempts */
	uint64_t parks;                /**< times the worker went to sleep */
	uint64_t unparks;              /**< times it woke up */
	uint64_t local_schedules;      /**< wakes/spawns queued locally (LIFO or run queue) */
	uint64_t remote_schedules;     /**< tasks this worker took from the inject queue */
	uint64_t overflows;            /**< times the local queue overflowed to the inject queue */
	uint64_t local_queue_depth;    /**< tasks in its local queue (gauge) */
	uint64_t busy_ns;              /**< time spent not parked */
	uint64_t budget_forced_yields; /**< polls that found the coop budget spent */
} edo_worker_metrics;

/** edo_runtime_metrics_get() - runtime-wide figures; 0 or -EINVAL. */
int edo_runtime_metrics_get(edo_runtime *rt, edo_runtime_metrics *out);

/**
 * edo_worker_metrics_get() - the counters of worker @worker (0-based).
 * Returns 0, or -EINVAL for a NULL argument or a worker that does not exist.
 */
int edo_worker_metrics_get(edo_runtime *rt, uint32_t worker, edo_worker_metrics *out);

#ifdef __cplusplus
}
#endif
#endif /* EDO_METRICS_H */
