/* What every scheduler flavour shares: handle set-up, the spawn path, and
 * cancelling every owned task at shutdown. */
#include "runtime/sched.h"

#include <errno.h>
#include <string.h>

#include "edo/error.h"
#include "runtime/context.h"
#include "runtime/time/time.h"

/* Futures larger than this are refused: the cell size must fit the allocator's
 * 31-bit size field, and a 1 GiB future is a bug, not a design. */
#define EDO__MAX_FUTURE_SIZE ((size_t)1 << 30)

int edo__sched_init(edo__sched *s, const edo__sched_vt *vt, const edo_runtime_builder *b,
		    unsigned nshards, bool with_driver)
{
	atomic_init(&s->refs, 1);
	s->vt = vt;
	s->flavor = b->flavor;
	atomic_init(&s->shutdown, false);
	s->hooks = b->hooks;
	s->hooks_ud = b->hooks_ud;
	s->task_hooks = b->hooks.on_task_spawn || b->hooks.on_task_terminate ||
			b->hooks.before_task_poll || b->hooks.after_task_poll;
	s->blocking = NULL;
	s->has_driver = false;
	s->trace = NULL;
	s->dumps_closed = false;
	int rc = edo__owned_init(&s->owned, nshards);
	if (rc < 0 || !with_driver)
		return rc;
	rc = edo__driver_init(&s->driver, b->start_paused);
	if (rc < 0) {
		edo__owned_destroy(&s->owned);
		return rc;
	}
	/* A paused clock jumps to the next timer when the runtime is idle: only
	 * the current-thread runtime can know that cheaply (edo/time.h). */
	s->driver.clock->auto_advance = b->flavor == EDO_RT_CURRENT_THREAD;
	s->has_driver = true;
	return 0;
}

void edo__sched_cancel_all(edo__sched *s)
{
	atomic_store(&s->shutdown, true);
	edo__owned_close(&s->owned);
	for (uint32_t i = 0; i <= s->owned.mask; i++) {
		edo__task *t;
		while ((t = edo__owned_pop(&s->owned, i)))
			edo__task_shutdown(t);
	}
}

int edo__sched_spawn(edo__sched *s, const edo_future *init, size_t size, const edo_spawn_opts *opts,
		     edo_join **out)
{
	if (!init || !init->vt || !init->vt->poll || size < sizeof(edo_future) ||
	    size > EDO__MAX_FUTURE_SIZE)
		return -EINVAL;
	if (atomic_load_explicit(&s->shutdown, memory_order_relaxed))
		return EDO_ESHUTDOWN;
	edo__task *t = edo__task_new(s, init, size, opts);
	if (!t)
		return -ENOMEM;
	if (!edo__owned_bind(&s->owned, t)) {
		/* Shutdown won the race: nobody else knows this task. */
		edo__task_dealloc(t);
		return EDO_ESHUTDOWN;
	}
	if (s->task_hooks && s->hooks.on_task_spawn)
		s->hooks.on_task_spawn(s->hooks_ud, t->id);
	s->vt->schedule(s, t, false);
	if (out)
		*out = (edo_join *)t;
	else
		edo_join_detach((edo_join *)t);
	return 0;
}

int edo_spawn(const edo_future *init, size_t size, edo_join **out)
{
	edo__sched *s = edo__ctx.sched;
	if (!s)
		return EDO_ENORUNTIME;
	return edo__sched_spawn(s, init, size, NULL, out);
}

int edo_spawn_on(edo_handle *h, const edo_future *init, size_t size, const edo_spawn_opts *opts,
		 edo_join **out)
{
	edo__sched *s = h ? h : edo__ctx.sched;
	if (!s)
		return EDO_ENORUNTIME;
	return edo__sched_spawn(s, init, size, opts, out);
}
