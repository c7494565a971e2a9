/* The time futures: edo_sleep, edo_timeout, edo_interval.
 *
 * A sleep is its own timer entry (wheel.c).  It is registered on its first
 * poll, in the wheel of the polling thread; it consumes a unit of the task's
 * cooperative budget when it completes (a refund when it is not ready), as
 * Tokio's Sleep does.  A re-poll with the same waker takes no lock: the
 * wheel only ever *reads* an entry's waker slot (and publishes FIRED after
 * copying it), so the owner may compare it unlocked.
 */
#include <errno.h>

#include "edo/error.h"
#include "edo/task.h"
#include "runtime/context.h"
#include "runtime/time/time.h"

static inline uint64_t state_load(const edo_sleep *s)
{
	return __atomic_load_n(&s->state_, __ATOMIC_ACQUIRE);
}

/* In a wheel: filed at a tick, or expired and waiting on its pending list
 * (PENDING_FIRE: the wheel fires a tick's timers in batches, and wakes each
 * batch outside its lock). */
static inline bool is_registered(uint64_t state)
{
	return state != EDO__TIMER_UNREGISTERED && state != EDO__TIMER_FIRED;
}

/* ---- sleep ------------------------------------------------------------------------- */

/* The sleep without the budget: READY when fired. */
static edo_poll sleep_poll_timer(edo_sleep *s, edo_cx *cx)
{
	uint64_t st = state_load(s);
	if (st == EDO__TIMER_FIRED)
		return EDO_READY;
	if (st == EDO__TIMER_UNREGISTERED) {
		edo__time *t = edo__ctx.time;
		if (!t) {
			s->result = EDO_ENORUNTIME;
			__atomic_store_n(&s->state_, EDO__TIMER_FIRED, __ATOMIC_RELAXED);
			return EDO_READY;
		}
		return edo__time_register(t, s, cx->waker) ? EDO_READY : EDO_PENDING;
	}
	if (edo_waker_will_wake(&s->waker_, cx->waker))
		return EDO_PENDING;
	return edo__time_set_waker(s, cx->waker) ? EDO_PENDING : EDO_READY;
}

static edo_poll sleep_poll(edo_sleep *s, edo_cx *cx)
{
	if (edo_coop_poll_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	if (sleep_poll_timer(s, cx) == EDO_READY)
		return EDO_READY;
	edo_coop_refund();
	return EDO_PENDING;
}

static void sleep_cancel(edo_sleep *s)
{
	if (is_registered(state_load(s)))
		edo__time_cancel(s);
}

static edo_poll sleep_vt_poll(edo_future *f, edo_cx *cx)
{
	return sleep_poll((edo_sleep *)f, cx);
}

static void sleep_vt_drop(edo_future *f)
{
	sleep_cancel((edo_sleep *)f);
}

const edo_future_vtable edo_sleep_vt = {.poll = sleep_vt_poll, .drop = sleep_vt_drop};

void edo_sleep_until_init(edo_sleep *s, edo_instant deadline)
{
	*s = (edo_sleep){
		.base = {&edo_sleep_vt},
		.deadline_ = deadline,
		.state_ = EDO__TIMER_UNREGISTERED,
	};
}

void edo_sleep_init(edo_sleep *s, uint64_t duration_ns)
{
	edo_sleep_until_init(s, edo_instant_add(edo_instant_now(), duration_ns));
}

edo_instant edo_sleep_deadline(const edo_sleep *s)
{
	return s->deadline_;
}

bool edo_sleep_is_elapsed(const edo_sleep *s)
{
	return state_load(s) == EDO__TIMER_FIRED;
}

void edo_sleep_reset(edo_sleep *s, edo_instant deadline)
{
	s->deadline_ = deadline;
	uint64_t st = state_load(s);
	if (st == EDO__TIMER_UNREGISTERED)
		return; /* registered with the new deadline when polled */
	if (st == EDO__TIMER_FIRED) {
		/* Completed: pending again, registered on the next poll.  The
		 * wheel no longer touches a fired entry. */
		s->result = 0;
		__atomic_store_n(&s->state_, EDO__TIMER_UNREGISTERED, __ATOMIC_RELAXED);
		return;
	}
	/* Later: move the state word forward, no lock; the wheel re-files the
	 * entry when its old slot comes up. */
	uint64_t when = edo__time_deadline_tick(((edo__time *)s->wheel_)->clock, deadline);
	while (st < EDO__TIMER_PENDING_FIRE && when >= st) {
		if (__atomic_compare_exchange_n(&s->state_, &st, when, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return;
	}
	/* Earlier, or already pending fire (or fired meanwhile): under the lock. */
	edo__time_reregister(s);
}

/* ---- timeout ----------------------------------------------------------------------- */

static edo_poll timeout_poll(edo_future *f, edo_cx *cx)
{
	edo_timeout *t = (edo_timeout *)f;
	if (!t->inner_)
		return EDO_READY; /* completed before */
	bool had_budget = edo_coop_has_budget_remaining();
	if (!t->inner_->vt || edo_future_poll(t->inner_, cx) == EDO_READY) {
		t->inner_ = NULL;
		sleep_cancel(&t->sleep_);
		t->result = 0;
		return EDO_READY;
	}
	edo_poll r;
	if (had_budget && !edo_coop_has_budget_remaining()) {
		/* The inner future spent the budget: still look at the deadline,
		 * or a busy inner future would never time out. */
		bool was = edo__ctx.constrained;
		edo__ctx.constrained = false;
		r = sleep_poll(&t->sleep_, cx);
		edo__ctx.constrained = was;
	} else {
		r = sleep_poll(&t->sleep_, cx);
	}
	if (r == EDO_PENDING)
		return EDO_PENDING;
	t->result = t->sleep_.result == 0 ? -ETIMEDOUT : t->sleep_.result;
	edo_future_drop(t->inner_);
	t->inner_ = NULL;
	return EDO_READY;
}

static void timeout_drop(edo_future *f)
{
	edo_timeout *t = (edo_timeout *)f;
	if (t->inner_) {
		edo_future_drop(t->inner_);
		t->inner_ = NULL;
	}
	sleep_cancel(&t->sleep_);
}

static const edo_future_vtable timeout_vt = {.poll = timeout_poll, .drop = timeout_drop};

void edo_timeout_at_init(edo_timeout *t, edo_future *inner, edo_instant deadline)
{
	t->base.vt = &timeout_vt;
	t->result = inner ? 0 : -EINVAL; /* no future: completes at once, so */
	t->inner_ = inner;
	edo_sleep_until_init(&t->sleep_, deadline);
}

void edo_timeout_init(edo_timeout *t, edo_future *inner, uint64_t duration_ns)
{
	edo_timeout_at_init(t, inner, edo_instant_add(edo_instant_now(), duration_ns));
}

/* ---- interval ---------------------------------------------------------------------- */

/* A tick is late ("missed") when it is polled more than this after its time. */
#define MISSED_SLACK_NS EDO_MS(5)

static edo_instant next_tick(const edo_interval *iv, edo_instant scheduled, edo_instant now)
{
	if (now <= edo_instant_add(scheduled, MISSED_SLACK_NS))
		return edo_instant_add(scheduled, iv->period_);
	switch (iv->missed_) {
	case EDO_MISSED_TICK_DELAY:
		return edo_instant_add(now, iv->period_);
	case EDO_MISSED_TICK_SKIP:
		return edo_instant_add(now, iv->period_ - (now - scheduled) % iv->period_);
	case EDO_MISSED_TICK_BURST:
	default:
		return edo_instant_add(scheduled, iv->period_);
	}
}

static edo_poll interval_poll(edo_future *f, edo_cx *cx)
{
	edo_interval *iv = (edo_interval *)f;
	if (iv->result < 0)
		return EDO_READY;
	if (sleep_poll(&iv->sleep_, cx) == EDO_PENDING)
		return EDO_PENDING;
	if (iv->sleep_.result < 0) {
		iv->result = iv->sleep_.result;
		return EDO_READY;
	}
	edo_instant scheduled = iv->sleep_.deadline_;
	iv->tick = scheduled;
	/* Fired, so the reset does not register: the next poll does. */
	edo_sleep_reset(&iv->sleep_, next_tick(iv, scheduled, edo_instant_now()));
	return EDO_READY;
}

static void interval_drop(edo_future *f)
{
	sleep_cancel(&((edo_interval *)f)->sleep_);
}

static const edo_future_vtable interval_vt = {.poll = interval_poll, .drop = interval_drop};

int edo_interval_at_init(edo_interval *iv, edo_instant start, uint64_t period_ns,
			 edo_missed_tick missed)
{
	if (!iv || period_ns == 0 ||
	    (missed != EDO_MISSED_TICK_BURST && missed != EDO_MISSED_TICK_DELAY &&
	     missed != EDO_MISSED_TICK_SKIP))
		return -EINVAL;
	iv->base.vt = &interval_vt;
	iv->result = 0;
	iv->tick = 0;
	iv->period_ = period_ns;
	iv->missed_ = missed;
	edo_sleep_until_init(&iv->sleep_, start);
	return 0;
}

int edo_interval_init(edo_interval *iv, uint64_t period_ns, edo_missed_tick missed)
{
	return edo_interval_at_init(iv, edo_instant_now(), period_ns, missed);
}

void edo_interval_reset(edo_interval *iv)
{
	edo_sleep_reset(&iv->sleep_, edo_instant_add(edo_instant_now(), iv->period_));
}
