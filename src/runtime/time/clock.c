/* The runtime's clock: CLOCK_MONOTONIC, or a paused test clock.
 *
 * Unpaused and never paused (every production runtime), now() is one
 * clock_gettime through the vDSO and a relaxed load.  Once paused, the
 * clock is "controlled" for the rest of its life and now() reads its state
 * under a mutex: tests pay that, nobody else does.
 *
 *   paused:    now = frozen                 (moves by advance only)
 *   resumed:   now = CLOCK_MONOTONIC + offset, offset chosen at resume so
 *              that time continues from the frozen instant (never jumps back)
 *
 * Ticks (timer wheel units) are whole milliseconds since `base`, the real
 * time of creation; a paused clock starts frozen at `base`.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "edo/error.h"
#include "runtime/context.h"
#include "runtime/driver.h"
#include "runtime/sched.h"
#include "runtime/time/time.h"

uint64_t edo__mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t edo__mono_coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int edo__clock_new(edo__clock **out, bool start_paused)
{
	edo__clock *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->base = edo__mono_ns();
	/* Two ticks of the coarse clock, and never less than 10 ms: a skipped
	 * check only delays a timer to the next one, never fires it early. */
	struct timespec res;
	uint64_t r = clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 ?
			     (uint64_t)res.tv_sec * 1000000000u + (uint64_t)res.tv_nsec :
			     0;
	c->coarse_slack = 2 * r > EDO_MS(10) ? 2 * r : EDO_MS(10);
	pthread_mutex_init(&c->lock, NULL);
	c->paused = start_paused;
	c->frozen = c->base;
	atomic_init(&c->controlled, start_paused);
	atomic_init(&c->inhibit, 0);
	*out = c;
	return 0;
}

void edo__clock_free(edo__clock *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c);
}

uint64_t edo__clock_now(edo__clock *c)
{
	if (!atomic_load_explicit(&c->controlled, memory_order_acquire))
		return edo__mono_ns();
	pthread_mutex_lock(&c->lock);
	uint64_t now = c->paused ? c->frozen : edo__mono_ns() + (uint64_t)c->offset;
	pthread_mutex_unlock(&c->lock);
	return now;
}

bool edo__clock_is_paused(edo__clock *c)
{
	if (!atomic_load_explicit(&c->controlled, memory_order_acquire))
		return false;
	pthread_mutex_lock(&c->lock);
	bool paused = c->paused;
	pthread_mutex_unlock(&c->lock);
	return paused;
}

void edo__clock_advance_to(edo__clock *c, uint64_t t)
{
	if (t > EDO__CLOCK_MAX)
		t = EDO__CLOCK_MAX;
	pthread_mutex_lock(&c->lock);
	if (c->paused && t > c->frozen)
		c->frozen = t;
	pthread_mutex_unlock(&c->lock);
}

void edo__clock_inhibit_auto_advance(edo__clock *c)
{
	atomic_fetch_add_explicit(&c->inhibit, 1, memory_order_relaxed);
}

void edo__clock_allow_auto_advance(edo__clock *c)
{
	/* Under the lock: a park that saw the clock paused (under this lock)
	 * before this either sees the count drop or is unparked here. */
	pthread_mutex_lock(&c->lock);
	atomic_fetch_sub_explicit(&c->inhibit, 1, memory_order_release);
	if (c->paused)
		for (edo__time *t = c->wheels; t; t = t->clock_next)
			edo__parker_unpark(t->parker);
	pthread_mutex_unlock(&c->lock);
}

/* ---- the public API ---------------------------------------------------------------- */

static edo__clock *current_clock(void)
{
	if (edo__ctx.time)
		return edo__ctx.time->clock;
	/* A thread inside the runtime without a wheel of its own (a blocking
	 * pool thread) reads the runtime's clock. */
	edo__sched *s = edo__ctx.sched;
	return s && s->has_driver ? s->driver.clock : NULL;
}

edo_instant edo_instant_now(void)
{
	edo__clock *c = current_clock();
	return c ? edo__clock_now(c) : edo__mono_ns();
}

int edo_time_pause(void)
{
	edo__clock *c = current_clock();
	if (!c)
		return EDO_ENORUNTIME;
	pthread_mutex_lock(&c->lock);
	int rc = 0;
	if (c->paused) {
		rc = -EALREADY;
	} else {
		c->frozen = edo__mono_ns() + (uint64_t)c->offset;
		c->paused = true;
		atomic_store_explicit(&c->controlled, true, memory_order_release);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int edo_time_advance(uint64_t duration_ns)
{
	edo__clock *c = current_clock();
	if (!c)
		return EDO_ENORUNTIME;
	pthread_mutex_lock(&c->lock);
	if (!c->paused) {
		pthread_mutex_unlock(&c->lock);
		return -EINVAL;
	}
	if (duration_ns > EDO__CLOCK_MAX - c->frozen) {
		pthread_mutex_unlock(&c->lock);
		return -EOVERFLOW;
	}
	c->frozen += duration_ns;
	/* Every parker recomputes its wait: a parked worker of a multi-thread
	 * runtime sleeps without a timer bound while the clock is paused. */
	for (edo__time *t = c->wheels; t; t = t->clock_next)
		edo__parker_unpark(t->parker);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int edo_time_resume(void)
{
	edo__clock *c = current_clock();
	if (!c)
		return EDO_ENORUNTIME;
	pthread_mutex_lock(&c->lock);
	int rc = 0;
	if (!c->paused) {
		rc = -EINVAL;
	} else {
		c->offset = (int64_t)c->frozen - (int64_t)edo__mono_ns();
		c->paused = false;
		for (edo__time *t = c->wheels; t; t = t->clock_next)
			edo__parker_unpark(t->parker);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

bool edo_time_is_paused(void)
{
	edo__clock *c = current_clock();
	return c && edo__clock_is_paused(c);
}
