/* Per-worker counters (DESIGN.md §7): plain integers written only by their
 * worker, with a relaxed load + store (no atomic read-modify-write on the
 * hot path), and read by anyone with relaxed loads. */
#ifndef EDO_STATS_H
#define EDO_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "edo/metrics.h"

typedef struct edo__worker_stats {
	_Atomic(uint64_t) polls;
	_Atomic(uint64_t) steals;
	_Atomic(uint64_t) steal_operations;
	_Atomic(uint64_t) parks;
	_Atomic(uint64_t) unparks;
	_Atomic(uint64_t) local_schedules;
	_Atomic(uint64_t) remote_schedules;
	_Atomic(uint64_t) overflows;
	_Atomic(uint64_t) local_queue_depth;
	_Atomic(uint64_t) busy_ns;
	_Atomic(uint64_t) budget_forced_yields;
} edo__worker_stats;

#define EDO__STAT_SET(st, field, v) atomic_store_explicit(&(st)->field, (v), memory_order_relaxed)
#define EDO__STAT_GET(st, field) atomic_load_explicit(&(st)->field, memory_order_relaxed)
#define EDO__STAT_ADD(st, field, n) EDO__STAT_SET(st, field, EDO__STAT_GET(st, field) + (n))

static inline void edo__stats_read(edo__worker_stats *st, edo_worker_metrics *out)
{
	out->polls = EDO__STAT_GET(st, polls);
	out->steals = EDO__STAT_GET(st, steals);
	out->steal_operations = EDO__STAT_GET(st, steal_operations);
	out->parks = EDO__STAT_GET(st, parks);
	out->unparks = EDO__STAT_GET(st, unparks);
	out->local_schedules = EDO__STAT_GET(st, local_schedules);
	out->remote_schedules = EDO__STAT_GET(st, remote_schedules);
	out->overflows = EDO__STAT_GET(st, overflows);
	out->local_queue_depth = EDO__STAT_GET(st, local_queue_depth);
	out->busy_ns = EDO__STAT_GET(st, busy_ns);
	out->budget_forced_yields = EDO__STAT_GET(st, budget_forced_yields);
}

#endif /* EDO_STATS_H */
