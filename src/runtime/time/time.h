/* The time driver: a runtime's clock and the timer wheels of its parkers.
 *
 * clock.c  The runtime's clock: CLOCK_MONOTONIC, or a paused test clock
 *          that moves only when told (edo_time_advance) or, on the
 *          current-thread runtime, by auto-advance.  Ticks are whole
 *          milliseconds since the clock was created.
 * wheel.c  edo__time: one hierarchical timing wheel per parker (thread that
 *          parks), with its own lock.  Registration, cancellation, the park
 *          timeout, and firing expired timers.
 * sleep.c  The public futures: edo_sleep, edo_timeout, edo_interval.
 *
 * Why one wheel per parker: Tokio's single wheel behind one mutex
 * serialises every worker that registers or cancels a timer (its issue
 * #6504; sharding was tried in 1.38 and reverted).  Here a timer goes into
 * the wheel of the thread that first polls it, under that wheel's lock,
 * which nobody else takes in the common case.  A timer registered on worker
 * A and cancelled on worker B (the task was stolen) takes A's lock: correct,
 * and rare.  Each parker bounds its sleep by its own wheel's next expiry.
 */
#ifndef EDO_TIME_INTERNAL_H
#define EDO_TIME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edo/time.h"

typedef struct edo__clock edo__clock;
typedef struct edo__time edo__time;
typedef struct edo__parker edo__parker;

/* ---- clock.c -------------------------------------------------------------------- */

#define EDO__NS_PER_TICK 1000000u

struct edo__clock {
	uint64_t base;          /* CLOCK_MONOTONIC at creation: tick 0 */
	uint64_t coarse_slack;  /* CLOCK_MONOTONIC_COARSE lags by less than this */
	atomic_bool controlled; /* ever paused: read the fields below under lock */
	bool auto_advance;      /* jump to the next timer when idle (current-thread) */
	/* Blocking jobs in flight on an auto-advancing clock's runtime: while
	 * any is, the paused clock does not auto-advance (an idle runtime may
	 * be waiting for a pool thread). */
	atomic_uint inhibit;
	pthread_mutex_t lock; /* guards the fields below */
	bool paused;          /* now() returns `frozen` */
	uint64_t frozen;      /* the paused instant */
	int64_t offset;       /* unpaused: now = CLOCK_MONOTONIC + offset */
	edo__time *wheels;    /* every live wheel, for edo_time_advance's unpark */
};

/* The latest instant a paused clock shows (advances stop here), so that
 * resuming from it stays within the signed offset: about 292 years. */
#define EDO__CLOCK_MAX ((uint64_t)INT64_MAX)

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t edo__mono_ns(void);
/* CLOCK_MONOTONIC_COARSE in nanoseconds: cheaper, and behind the precise
 * clock (by less than coarse_slack, when the kernel's tick runs). */
uint64_t edo__mono_coarse_ns(void);

int edo__clock_new(edo__clock **out, bool start_paused);
void edo__clock_free(edo__clock *c);
/* The clock's current instant. */
uint64_t edo__clock_now(edo__clock *c);
bool edo__clock_is_paused(edo__clock *c);
/* The paused clock jumps forward to @t (no-op if it is already there). */
void edo__clock_advance_to(edo__clock *c, uint64_t t);

/* A blocking job starts / has finished (or was cancelled before it ran):
 * auto-advance waits while any is in flight.  The allow side runs after
 * the job's completion has woken its joiner, and unparks the runtime's
 * threads if the clock is paused, so that an idle park looks again. */
void edo__clock_inhibit_auto_advance(edo__clock *c);
void edo__clock_allow_auto_advance(edo__clock *c);

/* Instant → tick, rounded down (the tick that has elapsed at @t). */
static inline uint64_t edo__clock_tick_floor(const edo__clock *c, uint64_t t)
{
	return t <= c->base ? 0 : (t - c->base) / EDO__NS_PER_TICK;
}

/* ---- wheel.c ---------------------------------------------------------------------- */

#define EDO__WHEEL_LEVELS 6
#define EDO__WHEEL_SLOTS 64

/* State word of a timer entry (edo_sleep.state_): the deadline tick while
 * it is registered, or one of these. */
#define EDO__TIMER_FIRED UINT64_MAX              /* completed: result is valid */
#define EDO__TIMER_PENDING_FIRE (UINT64_MAX - 1) /* expired, on the pending list */
#define EDO__TIMER_UNREGISTERED (UINT64_MAX - 2) /* not in any wheel yet */
#define EDO__TIMER_MAX_TICK ((uint64_t)1 << 62)  /* deadlines are capped here */

typedef struct edo__wheel_level {
	uint64_t occupied; /* bit i: slot i is non-empty */
	edo_sleep *slot[EDO__WHEEL_SLOTS];
} edo__wheel_level;

struct edo__time {
	pthread_mutex_t lock; /* guards everything below but the constants */
	uint64_t elapsed;     /* the wheel's current tick */
	/* The tick by which the owner will look at the wheel again: set when it
	 * parks, 0 while it is awake.  A registration before it unparks the
	 * owner. */
	uint64_t next_wake;
	size_t len;          /* entries in the wheel (levels and pending) */
	bool shutdown;       /* registrations complete at once with EDO_ESHUTDOWN */
	edo_sleep *pending;  /* expired, to be fired */
	uint64_t advance_to; /* auto-advance target of the current park (owner only) */
	bool parked;         /* the owner set next_wake for a blocking park (owner only) */
	/* A lower bound on the next expiry tick (UINT64_MAX: none), written
	 * under the lock, read without it by the owner after a non-blocking
	 * turn, to skip the lock and the clock when nothing can be due. */
	_Atomic(uint64_t) earliest;
	edo__wheel_level levels[EDO__WHEEL_LEVELS];
	/* Constants. */
	edo__clock *clock;
	edo__parker *parker;
	/* The clock's list of wheels; guarded by the clock's lock. */
	edo__time *clock_prev, *clock_next;
};

/* A wheel for the parker @p on @clock. */
int edo__time_new(edo__time **out, edo__clock *clock, edo__parker *p);
/* Fire every entry as cancelled (EDO_ESHUTDOWN); later registrations
 * complete at once the same way.  Idempotent. */
void edo__time_shutdown(edo__time *t);
/* Free a wheel that was shut down (does not touch the clock). */
void edo__time_free(edo__time *t);

/* Before parking: @timeout_ns (-1: none, 0: do not block) bounded by the
 * next expiry.  Sets *@auto_advance when the paused clock should instead
 * jump to that expiry if the park (made non-blocking) is not woken. */
int64_t edo__time_park_timeout(edo__time *t, int64_t timeout_ns, bool *auto_advance);
/* After parking: advance the paused clock if asked, then fire every
 * expired entry (wakers are called outside the lock). */
void edo__time_after_park(edo__time *t, bool advance);

/* Entries in the wheel (for tests). */
size_t edo__time_len(edo__time *t);

/* sleep.c's side of the wheel. */
/* The tick a deadline is due at: rounded up, so a timer never fires early. */
uint64_t edo__time_deadline_tick(const edo__clock *c, edo_instant deadline);
/* Register @s (state UNREGISTERED, deadline_ set) on @t with the waker @w.
 * Returns true if it completed at once instead (its deadline has passed,
 * or the wheel is shut down; s->result says which). */
bool edo__time_register(edo__time *t, edo_sleep *s, const edo_waker *w);
/* Replace the waker of a registered @s; false if it has fired meanwhile. */
bool edo__time_set_waker(edo_sleep *s, const edo_waker *w);
/* Remove a registered @s (it becomes UNREGISTERED); no-op if it fired. */
void edo__time_cancel(edo_sleep *s);
/* Re-file a registered @s at its deadline_ (earlier than its state word,
 * or the entry is pending fire); fires it if that has passed. */
void edo__time_reregister(edo_sleep *s);

#endif /* EDO_TIME_INTERNAL_H */
