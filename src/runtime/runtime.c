/* Runtimes: the builder, edo_block_on, handles.  Flavour-specific work is
 * dispatched to the schedulers. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edo/error.h"
#include "edo/runtime.h"
#include "runtime/blocking/pool.h"
#include "runtime/context.h"
#include "runtime/sched.h"
#include "runtime/scheduler/current_thread.h"
#include "runtime/scheduler/multi_thread/multi_thread.h"
#include "runtime/trace/trace.h"

struct edo_runtime {
	edo__sched *sched;
};

edo__sched *edo__runtime_sched(edo_runtime *rt)
{
	return rt->sched;
}

void edo_runtime_builder_init(edo_runtime_builder *b, edo_rt_flavor flavor)
{
	memset(b, 0, sizeof *b);
	b->flavor = flavor;
}

static int validate(const edo_runtime_builder *b)
{
	if (b->flavor != EDO_RT_CURRENT_THREAD && b->flavor != EDO_RT_MULTI_THREAD)
		return -EINVAL;
	if (b->worker_threads > 4096)
		return -EINVAL;
	if (b->thread_stack_size &&
	    (b->thread_stack_size < PTHREAD_STACK_MIN || b->thread_stack_size > ((size_t)1 << 32)))
		return -EINVAL;
	if (b->event_interval > (1u << 20) || b->global_queue_interval > (1u << 20))
		return -EINVAL;
	if (b->inject_wait_factor > (1u << 16) &&
	    b->inject_wait_factor != EDO_INJECT_WAIT_UNBOUNDED)
		return -EINVAL;
	if (b->max_blocking_threads > 1000000)
		return -EINVAL;
	return edo__trace_validate(b);
}

int edo_runtime_build(const edo_runtime_builder *b, edo_runtime **out)
{
	if (!b || !out)
		return -EINVAL;
	int rc = validate(b);
	if (rc < 0)
		return rc;
	edo_runtime *rt = calloc(1, sizeof *rt);
	if (!rt)
		return -ENOMEM;
	if (b->flavor == EDO_RT_MULTI_THREAD)
		rc = edo__mt_new(b, &rt->sched);
	else
		rc = edo__ct_new(b, &rt->sched);
	if (rc < 0) {
		free(rt);
		return rc;
	}
	rc = edo__pool_new(b, rt->sched, &rt->sched->blocking);
	if (rc >= 0)
		rc = edo__trace_start(rt->sched);
	if (rc < 0) {
		edo_runtime_free(rt);
		return rc;
	}
	*out = rt;
	return 0;
}

int edo_runtime_new_current_thread(edo_runtime **out)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	return edo_runtime_build(&b, out);
}

int edo_handle_block_on(edo_handle *h, edo_future *fut)
{
	if (!h || !fut || !fut->vt || !fut->vt->poll)
		return -EINVAL;
	if (h->flavor == EDO_RT_MULTI_THREAD)
		return edo__mt_block_on(h, fut);
	return edo__ct_block_on(h, fut);
}

int edo_block_on(edo_runtime *rt, edo_future *fut)
{
	return edo_handle_block_on(rt ? rt->sched : NULL, fut);
}

int edo_runtime_shutdown_timeout(edo_runtime *rt, int64_t timeout_ms)
{
	if (!rt)
		return 0;
	edo__sched *s = rt->sched;
	/* Keep the scheduler (and through it the pool) alive until we are done. */
	edo__sched_ref(s);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = s->flavor == EDO_RT_MULTI_THREAD ? edo__mt_shutdown(s, timeout_ms) :
						    edo__ct_shutdown(s);
	if (rc < 0 && rc != -ETIMEDOUT) {
		edo__sched_unref(s);
		return rc;
	}
	if (s->blocking) {
		/* The pool gets what is left of the timeout. */
		int64_t left = timeout_ms;
		if (left > 0) {
			struct timespec t1;
			clock_gettime(CLOCK_MONOTONIC, &t1);
			int64_t spent = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 +
					(t1.tv_nsec - t0.tv_nsec) / 1000000;
			left = spent >= left ? 0 : left - spent;
		}
		int prc = edo__pool_shutdown(s->blocking, left);
		if (rc == 0)
			rc = prc;
	}
	edo__sched_unref(s);
	free(rt);
	return rc;
}

int edo_runtime_free(edo_runtime *rt)
{
	return edo_runtime_shutdown_timeout(rt, -1);
}

int edo_runtime_shutdown_background(edo_runtime *rt)
{
	int rc = edo_runtime_shutdown_timeout(rt, 0);
	return rc == -ETIMEDOUT ? 0 : rc;
}

edo_handle *edo_runtime_handle(edo_runtime *rt)
{
	if (!rt)
		return NULL;
	edo__sched_ref(rt->sched);
	return rt->sched;
}

edo_handle *edo_handle_current(void)
{
	edo__sched *s = edo__ctx.sched;
	if (s)
		edo__sched_ref(s);
	return s;
}

edo_handle *edo_handle_clone(edo_handle *h)
{
	if (h)
		edo__sched_ref(h);
	return h;
}

void edo_handle_drop(edo_handle *h)
{
	if (h)
		edo__sched_unref(h);
}

edo_rt_flavor edo_handle_flavor(const edo_handle *h)
{
	return h ? h->flavor : 0;
}

size_t edo_handle_alive_tasks(edo_handle *h)
{
	return h ? edo__owned_count(&h->owned) : 0;
}

int edo_block_in_place(void (*fn)(void *), void *arg)
{
	if (!fn)
		return -EINVAL;
	edo__sched *s = edo__ctx.sched;
	/* Not running a scheduler here (outside any runtime, or a blocking-pool
	 * thread): nothing to hand over, @fn just runs, whatever the flavour. */
	if (!s || !edo__ctx.core) {
		fn(arg);
		return 0;
	}
	if (s->flavor != EDO_RT_MULTI_THREAD)
		return -ENOTSUP;
	return edo__mt_block_in_place(s, fn, arg);
}
