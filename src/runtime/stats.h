/* Per-worker counters (DESIGN.md §7).  A worker counts its hot events
 * (polls, schedules, steals) in plain integers of its own (edo__worker_counts:
 * one add to memory each, no atomic, nothing another thread reads), and
 * publishes them into its edo__worker_stats with relaxed stores at every
 * driver turn (at most event_interval ticks apart) and when it parks (busy
 * time and the mean poll time as edo__clock_cadence reads the clock); polls
 * goes last, with release, so that a reader that loads it first (acquire)
 * sees the other counters at least as new.  Rare events (parks, unparks,
 * overflows) are stored as they happen, with a relaxed load + store (no
 * atomic read-modify-write).  Anyone reads with relaxed loads.
 *
 * EDO_NO_METRICS builds the library without the always-on bookkeeping (these
 * counters, busy time, the per-task poll count and last-poll stamp of task
 * dumps): every EDO__METRICS branch folds away and the counters read 0.  It
 * exists only to measure what that bookkeeping costs (bench/: the
 * edo-nometrics column, built as edo_bench_nometrics); no supported build
 * uses it. */
#ifndef EDO_STATS_H
#define EDO_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
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

#ifdef EDO_NO_METRICS
#define EDO__METRICS 0
#else
#define EDO__METRICS 1
#endif

#define EDO__STAT_SET(st, field, v)                                                                \
	do {                                                                                       \
		if (EDO__METRICS)                                                                  \
			atomic_store_explicit(&(st)->field, (v), memory_order_relaxed);            \
	} while (0)
#define EDO__STAT_GET(st, field)                                                                   \
	(EDO__METRICS ? atomic_load_explicit(&(st)->field, memory_order_relaxed) : 0)
#define EDO__STAT_ADD(st, field, n) EDO__STAT_SET(st, field, EDO__STAT_GET(st, field) + (n))

/* The owner's running counts of its hot events, published by
 * edo__counts_publish(). */
typedef struct edo__worker_counts {
	uint64_t polls;
	uint64_t local_schedules;
	uint64_t remote_schedules;
	uint64_t steals;
	uint64_t steal_operations;
} edo__worker_counts;

#define EDO__COUNT(c, field, n)                                                                    \
	do {                                                                                       \
		if (EDO__METRICS)                                                                  \
			(c)->field += (n);                                                         \
	} while (0)

static inline void edo__counts_publish(const edo__worker_counts *c, edo__worker_stats *st)
{
	if (!EDO__METRICS)
		return;
	EDO__STAT_SET(st, local_schedules, c->local_schedules);
	EDO__STAT_SET(st, remote_schedules, c->remote_schedules);
	EDO__STAT_SET(st, steals, c->steals);
	EDO__STAT_SET(st, steal_operations, c->steal_operations);
	atomic_store_explicit(&st->polls, c->polls, memory_order_release);
}

static inline void edo__stats_read(edo__worker_stats *st, edo_worker_metrics *out)
{
	out->polls = EDO__METRICS ? atomic_load_explicit(&st->polls, memory_order_acquire) : 0;
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

/* When a publication reads the clock.  Busy time, the mean poll time and the
 * coarse clock that stamps polls for task dumps need it, and one read costs
 * tens of nanoseconds (some 50 in a VM), more than the rest of a
 * publication: a worker whose driver turns come fast (those since its last
 * read took under EDO__CLOCK_FAST_NS each) reads it at one turn in
 * 1 + EDO__CLOCK_SKIP only, which leaves those figures at most about a
 * millisecond behind.  A worker about to sleep always reads it.  Owner only. */
#define EDO__CLOCK_SKIP 3
#define EDO__CLOCK_FAST_NS 250000u

typedef struct edo__clock_cadence {
	uint64_t last_ns; /* the last read */
	uint32_t turns;   /* driver turns since */
	uint32_t skip;    /* turns to go without a read */
} edo__clock_cadence;

/* A driver turn: whether it reads the clock. */
static inline bool edo__cadence_due(edo__clock_cadence *c)
{
	c->turns++;
	if (c->skip) {
		c->skip--;
		return false;
	}
	return true;
}

/* The worker read the clock: @now (at a turn, or around a sleep). */
static inline void edo__cadence_read(edo__clock_cadence *c, uint64_t now)
{
	bool fast = c->turns && now - c->last_ns < (uint64_t)c->turns * EDO__CLOCK_FAST_NS;
	c->skip = fast ? EDO__CLOCK_SKIP : 0;
	c->turns = 0;
	c->last_ns = now;
}

/* The mean poll time (Tokio's worker_mean_poll_time): an EWMA with weight
 * 0.1 per poll, fed at every publication with the mean of the polls since
 * the previous one: n polls at once weigh 1 - 0.9^n.  Owner only. */
typedef struct edo__mean_poll {
	uint64_t polls; /* at the last update */
	uint64_t ns;
	double ewma;
	uint64_t keep_n; /* 0.9^keep_n = keep: a busy worker publishes every */
	double keep;     /* event_interval polls, the same n again and again */
} edo__mean_poll;

/* @polls: polls so far; @ns: time they took so far (measured, or busy time). */
static inline void edo__mean_poll_update(edo__mean_poll *m, edo__worker_stats *st, uint64_t polls,
					 uint64_t ns)
{
	if (!EDO__METRICS)
		return;
	uint64_t dp = polls - m->polls;
	if (dp == 0)
		return;
	double sample = (double)(ns - m->ns) / (double)dp;
	m->polls = polls;
	m->ns = ns;
	if (dp != m->keep_n) {
		double keep = 1.0; /* 0.9^dp by squaring */
		double f = 0.9;
		uint64_t n = dp;
		while (n && keep > 1e-12) {
			if (n & 1)
				keep *= f;
			f *= f;
			n >>= 1;
		}
		m->keep_n = dp;
		m->keep = keep;
	}
	double keep = m->keep;
	m->ewma = m->ewma > 0 ? keep * m->ewma + (1 - keep) * sample : sample;
	EDO__STAT_SET(st, mean_poll_ns, (uint64_t)m->ewma);
}

#endif /* EDO_STATS_H */
