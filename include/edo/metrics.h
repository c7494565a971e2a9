/* Edo — runtime metrics, read without stopping the runtime.
 *
 * Workers keep their counters as plain integers and publish them with
 * relaxed stores (no atomic read-modify-write on the hot path), at least
 * every event_interval ticks and whenever they park; a reading is therefore
 * a recent snapshot, not an instant.  Busy time and the mean poll time need
 * the clock, which a busy worker whose driver turns come fast (under 250 µs
 * each) reads at one turn in four: they may lag by about a millisecond more.
 * Counters only grow, except the depth gauges and the mean.  All functions
 * are thread-safe.
 *
 * What they cost: always on, they cannot be turned off.  Per task poll, a
 * few instructions (an add to a counter of the worker's own, the poll count
 * and last-poll stamp that task dumps show), per schedule one add, per
 * driver turn a publication.  Measured with the benchmark suite's metrics
 * A/B (bench/README.md: edo ÷ edo-nometrics, the library built without
 * them), in instructions of the whole process (cachegrind): spawn_many
 * +0.8% and ping_pong +1.0% on the current-thread runtime, with the same
 * cache misses; on 2 workers, where a run varies by ±2%, medians of 5 runs
 * +0.1% and +0.1%.  CPU time agrees within its noise.
 *
 * These are Tokio's RuntimeMetrics: workers, alive tasks, inject queue
 * depth, per-worker polls, steals, parks, unparks, local and remote
 * schedules, overflows, local queue depth, busy time, mean poll time,
 * budget-forced yields; blocking threads and queue depth; I/O driver
 * registrations and events.  A poll-time histogram is opt-in
 * (edo_runtime_builder.poll_time_histogram), as it reads the clock twice
 * per poll.  Task dumps, the stall detector and the console are in
 * edo/trace.h.
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
	uint32_t workers;             /**< worker threads (1 on the current-thread runtime) */
	size_t alive_tasks;           /**< tasks spawned and not yet completed */
	size_t inject_queue_depth;    /**< tasks waiting in the remote (inject) queue */
	size_t blocking_threads;      /**< threads in the blocking pool */
	size_t blocking_idle_threads; /**< of which idle, waiting for a job */
	size_t blocking_queue_depth;  /**< blocking tasks waiting for a thread */
	uint64_t io_registrations;    /**< descriptors ever registered with the I/O driver */
	uint64_t io_deregistrations;  /**< of which deregistered */
	uint64_t io_ready_events;     /**< readiness events the I/O driver dispatched */
	uint64_t stalls;              /**< polls the stall detector reported (edo/trace.h) */
} edo_runtime_metrics;

/** One worker's counters. */
typedef struct edo_worker_metrics {
	uint64_t polls;            /**< task polls */
	uint64_t steals;           /**< tasks stolen from other workers */
	uint64_t steal_operations; /**< steal attempts */
	uint64_t parks;            /**< times the worker went to sleep */
	uint64_t unparks;          /**< times it woke up */
	uint64_t local_schedules;  /**< wakes/spawns queued locally (LIFO or run queue) */
	uint64_t remote_schedules; /**< tasks this worker took from the inject queue */
	uint64_t overflows;        /**< times the local queue overflowed to the inject queue */
	/** Tasks queued on this worker (gauge): its local queue, plus those it
	 *  took from the inject queue in one go that still wait their turn. */
	uint64_t local_queue_depth;
	uint64_t busy_ns;              /**< time spent not parked */
	uint64_t budget_forced_yields; /**< polls that found the coop budget spent */
	/** Mean time of one task poll: an exponentially weighted moving
	 *  average (weight 0.1 per poll, Tokio's worker_mean_poll_time).  With
	 *  poll_time_histogram it averages measured polls; without, the busy
	 *  time between publications divided by the polls in it (so it includes
	 *  the scheduler's own work).  0 before the first poll. */
	uint64_t mean_poll_ns;
	uint64_t poll_time_ns; /**< total time in polls; 0 unless poll_time_histogram */
} edo_worker_metrics;

/**
 * Buckets of the poll-time histogram: bucket 0 counts polls shorter than
 * 128 ns, bucket i (1..30) polls of [2^(i+6), 2^(i+7)) ns, bucket 31 polls
 * of 2^37 ns (about 137 s) or more: a log scale, one bucket per doubling.
 */
#define EDO_POLL_HISTOGRAM_BUCKETS 32

/** edo_runtime_metrics_get() - runtime-wide figures; 0 or -EINVAL. */
int edo_runtime_metrics_get(edo_runtime *rt, edo_runtime_metrics *out);

/**
 * edo_worker_metrics_get() - the counters of worker @worker (0-based).
 * Returns 0, or -EINVAL for a NULL argument or a worker that does not exist.
 */
int edo_worker_metrics_get(edo_runtime *rt, uint32_t worker, edo_worker_metrics *out);

/**
 * edo_worker_poll_histogram() - how many polls of worker @worker fell in
 * each bucket (EDO_POLL_HISTOGRAM_BUCKETS of them, see above) into @out.
 * Needs edo_runtime_builder.poll_time_histogram.  Counts are published as
 * each poll ends.  Returns 0, -EINVAL (NULL, no such worker) or -ENOTSUP
 * (the runtime was built without the histogram).
 */
int edo_worker_poll_histogram(edo_runtime *rt, uint32_t worker,
			      uint64_t out[EDO_POLL_HISTOGRAM_BUCKETS]);

/**
 * edo_poll_histogram_bucket_range() - the bounds of bucket @i in
 * nanoseconds: [*lo, *hi); *hi is UINT64_MAX for the last bucket.
 * Returns 0, or -EINVAL for a bucket that does not exist.
 */
int edo_poll_histogram_bucket_range(unsigned i, uint64_t *lo, uint64_t *hi);

#ifdef __cplusplus
}
#endif
#endif /* EDO_METRICS_H */
