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
	_Atomic(uint64_t) mean_poll_ns;
	_Atomic(uint64_t) poll_time_ns;
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
	out->mean_poll_ns = EDO__STAT_GET(st, mean_poll_ns);
	out->poll_time_ns = EDO__STAT_GET(st, poll_time_ns);
}

/* The mean poll time (Tokio's worker_mean_poll_time): an EWMA with weight
 * 0.1 per poll, fed at every publication with the mean of the polls since
 * the previous one: n polls at once weigh 1 - 0.9^n.  Owner only. */
typedef struct edo__mean_poll {
	uint64_t polls; /* at the last update */
	uint64_t ns;
	double ewma;
} edo__mean_poll;

/* @polls: polls so far; @ns: time they took so far (measured, or busy time). */
static inline void edo__mean_poll_update(edo__mean_poll *m, edo__worker_stats *st, uint64_t polls,
					 uint64_t ns)
{
	uint64_t dp = polls - m->polls;
	if (dp == 0)
		return;
	double sample = (double)(ns - m->ns) / (double)dp;
	m->polls = polls;
	m->ns = ns;
	double keep = 1.0; /* 0.9^dp by squaring */
	double f = 0.9;
	uint64_t n = dp;
	while (n && keep > 1e-12) {
		if (n & 1)
			keep *= f;
		f *= f;
		n >>= 1;
	}
	m->ewma = m->ewma > 0 ? keep * m->ewma + (1 - keep) * sample : sample;
	EDO__STAT_SET(st, mean_poll_ns, (uint64_t)m->ewma);
}

#endif /* EDO_STATS_H */
