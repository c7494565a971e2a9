/* The metrics API (edo/metrics.h): runtime-wide figures gathered from the
 * scheduler, the blocking pool and the I/O driver; per-worker counters
 * (published by the workers with relaxed stores, runtime/stats.h); the
 * poll-time histogram of each worker's observability slot. */
#include <errno.h>

#include "edo/metrics.h"
#include "runtime/blocking/pool.h"
#include "runtime/io/reactor.h"
#include "runtime/sched.h"
#include "runtime/scheduler/current_thread.h"
#include "runtime/scheduler/multi_thread/multi_thread.h"
#include "runtime/trace/trace.h"

void edo__metrics_runtime(edo__sched *s, edo_runtime_metrics *out)
{
	*out = (edo_runtime_metrics){0};
	out->alive_tasks = edo__owned_count(&s->owned);
	if (s->blocking) {
		out->blocking_threads = edo__pool_threads(s->blocking);
		out->blocking_idle_threads = edo__pool_idle_threads(s->blocking);
		out->blocking_queue_depth = edo__pool_queue_depth(s->blocking);
	}
	if (s->flavor == EDO_RT_MULTI_THREAD) {
		out->workers = edo__mt_num_workers(s);
		out->inject_queue_depth = edo__mt_inject_depth(s);
	} else {
		out->workers = 1;
		out->inject_queue_depth = edo__ct_inject_depth(s);
	}
	if (s->has_driver && s->driver.io)
		edo__reactor_counts(s->driver.io, &out->io_registrations, &out->io_deregistrations,
				    &out->io_ready_events);
	if (s->trace)
		out->stalls = atomic_load_explicit(&s->trace->stalls, memory_order_relaxed);
}

int edo__metrics_worker(edo__sched *s, uint32_t worker, edo_worker_metrics *out)
{
	if (s->flavor == EDO_RT_MULTI_THREAD)
		return edo__mt_worker_metrics(s, worker, out);
	return edo__ct_worker_metrics(s, worker, out);
}

int edo_runtime_metrics_get(edo_runtime *rt, edo_runtime_metrics *out)
{
	if (!rt || !out)
		return -EINVAL;
	edo__metrics_runtime(edo__runtime_sched(rt), out);
	return 0;
}

int edo_worker_metrics_get(edo_runtime *rt, uint32_t worker, edo_worker_metrics *out)
{
	if (!rt || !out)
		return -EINVAL;
	return edo__metrics_worker(edo__runtime_sched(rt), worker, out);
}

int edo_worker_poll_histogram(edo_runtime *rt, uint32_t worker,
			      uint64_t out[EDO_POLL_HISTOGRAM_BUCKETS])
{
	if (!rt || !out)
		return -EINVAL;
	edo__sched *s = edo__runtime_sched(rt);
	edo__trace *tr = s->trace;
	uint32_t workers = s->flavor == EDO_RT_MULTI_THREAD ? edo__mt_num_workers(s) : 1;
	if (worker >= workers)
		return -EINVAL;
	if (!tr || !tr->timing)
		return -ENOTSUP;
	for (unsigned i = 0; i < EDO_POLL_HISTOGRAM_BUCKETS; i++)
		out[i] = atomic_load_explicit(&tr->tw[worker].hist[i], memory_order_relaxed);
	return 0;
}

int edo_poll_histogram_bucket_range(unsigned i, uint64_t *lo, uint64_t *hi)
{
	if (i >= EDO_POLL_HISTOGRAM_BUCKETS || !lo || !hi)
		return -EINVAL;
	*lo = i == 0 ? 0 : (uint64_t)1 << (i + 6);
	*hi = i == EDO_POLL_HISTOGRAM_BUCKETS - 1 ? UINT64_MAX : (uint64_t)1 << (i + 7);
	return 0;
}
