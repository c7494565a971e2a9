/* Edo — time: instants, sleeps, timeouts, intervals, and the test clock.
 *
 * Every runtime has a clock and a hierarchical timer wheel per parking thread
 * (each worker of a multi-thread runtime, the current-thread runtime's
 * thread, each thread in edo_block_on() of a multi-thread runtime).  Timers
 * have a resolution of one millisecond; a deadline is rounded *up* to the
 * next millisecond, so a timer never fires before its deadline, and on an
 * idle runtime it fires within about a millisecond after it.
 *
 * The futures here are leaf futures that a coroutine stores in its frame and
 * awaits in one line:
 *
 *     typedef struct job_frame {
 *         EDO_FRAME;
 *         edo_sleep nap;
 *         read_frame rd;                  // some other future
 *         edo_timeout to;
 *         edo_interval tick;
 *     } job_frame;
 *
 *     EDO_ASYNC(job, job_frame, NULL)
 *     {
 *         EDO_BEGIN();
 *         EDO_AWAIT_SLEEP(&self->nap, EDO_MS(10));       // sleep 10 ms
 *         self->rd = (read_frame){EDO_FRAME_INIT(read_fn), ...};
 *         EDO_AWAIT_TIMEOUT(&self->to, &self->rd.edo_base, EDO_SEC(1));
 *         if (self->to.result == -ETIMEDOUT) ...         // rd was dropped
 *         edo_interval_init(&self->tick, EDO_MS(100), EDO_MISSED_TICK_BURST);
 *         for (;;)
 *             EDO_AWAIT(&self->tick);                    // every 100 ms
 *         EDO_END();
 *     }
 *
 * Costs.  A timer is put in the wheel only when it is first polled and
 * found not elapsed: a timeout whose inner future completes on its first
 * poll never touches the wheel.  Registration, cancellation and moving a
 * deadline earlier take the lock of the wheel the timer is in (the wheel of
 * the thread that first polled it, normally uncontended); moving a deadline
 * *later* takes no lock at all.  No timer allocates.  A sleep consumes one
 * unit of the task's cooperative budget when it completes.
 *
 * Shutdown.  The runtime cancels (drops) every task first, which cancels
 * the timers those tasks own.  A timer still registered after that (one
 * owned by a future outside any task) completes with EDO_ESHUTDOWN, and so
 * does a timer first polled on a runtime thread that is shutting down.  A
 * timer registered by an edo_block_on() of a multi-thread runtime belongs
 * to that call's thread: if it is still pending when edo_block_on() returns,
 * it completes with EDO_ESHUTDOWN too.
 *
 * The test clock.  A runtime built with `start_paused`, or one on which a
 * task called edo_time_pause(), has a frozen clock that moves only when
 * told to (edo_time_advance()) or, on the current-thread runtime, by
 * itself: when no task can run, the paused clock jumps to the next timer's
 * deadline (auto-advance), so a test of a one-hour timeout runs instantly and
 * deterministically.  Auto-advance waits while a blocking job of that runtime
 * is in flight (edo_spawn_blocking(), and the file-system and name-lookup
 * jobs built on it): an idle runtime may be idle because it waits for the
 * job, so the clock stays put until the job has finished and its joiner has
 * been woken (Tokio's test-util does the same).  On the multi-thread
 * runtime a paused clock does not auto-advance (whether *every* worker is idle is not knowable without
 * serialising them); it moves by edo_time_advance() only.
 *
 * Thread-safety.  A sleep, timeout or interval is polled, reset and
 * dropped by one thread at a time (whoever owns the future), as every
 * future is.  edo_instant_now() is thread-safe.
 */
#ifndef EDO_TIME_H
#define EDO_TIME_H

#include <stdbool.h>
#include <stdint.h>

#include "edo/async.h"
#include "edo/future.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A point in monotonic time, in nanoseconds (the scale of CLOCK_MONOTONIC).
 * Durations are plain uint64_t nanoseconds; build them with EDO_MS() and
 * friends.
 */
typedef uint64_t edo_instant;

/** Durations in nanoseconds. */
#define EDO_NS(n) ((uint64_t)(n))
#define EDO_US(n) ((uint64_t)(n)*1000u)
#define EDO_MS(n) ((uint64_t)(n)*1000000u)
#define EDO_SEC(n) ((uint64_t)(n)*1000000000u)

/**
 * edo_instant_now() - the current time of the runtime the calling thread is
 * inside (a task, edo_block_on(), or a job on its blocking pool; which may be
 * a paused test clock), or CLOCK_MONOTONIC outside a runtime.  Thread-safe.
 */
edo_instant edo_instant_now(void);

/**
 * edo_instant_add() - @t + @duration_ns, saturating instead of wrapping (a
 * deadline "never" is the far future, not the past).
 */
static inline edo_instant edo_instant_add(edo_instant t, uint64_t duration_ns)
{
	return t + duration_ns < t ? UINT64_MAX : t + duration_ns;
}

/* ---- sleep -------------------------------------------------------------------- */

/**
 * edo_sleep - a future that completes at its deadline.
 *
 * Initialise with edo_sleep_init() (a duration from now) or
 * edo_sleep_until_init() (an instant), then await it.  When READY, `result`
 * is 0 (the deadline passed), EDO_ESHUTDOWN (the runtime shut down first),
 * or EDO_ENORUNTIME (polled outside a runtime).  Dropping it while pending
 * cancels the timer.  After READY it stays READY until reset.  The fields
 * ending in `_` are private.  Once polled, a sleep must not move in memory
 * until it completes or is dropped (it is linked into the timer wheel), and
 * must not be initialised again while pending: reset it, or drop it first.
 */
typedef struct edo_sleep {
	edo_future base;
	int result; /**< output: 0, EDO_ESHUTDOWN or EDO_ENORUNTIME */
	unsigned flags_;
	edo_instant deadline_;
	/* The timer entry: wheel links, the state word (the deadline tick while
	 * registered, or a sentinel), the tick of the slot it is filed in, the
	 * wheel it is registered with, and the waker to wake. */
	struct edo_sleep *prev_, *next_;
	uint64_t state_;
	uint64_t when_;
	void *wheel_;
	edo_waker waker_;
} edo_sleep;

/**
 * edo_sleep_init() - a sleep of @duration_ns from now.  A sleep whose
 * deadline has passed when it is first polled completes at once, without
 * touching the wheel.
 */
void edo_sleep_init(edo_sleep *s, uint64_t duration_ns);

/** edo_sleep_until_init() - a sleep until the instant @deadline. */
void edo_sleep_until_init(edo_sleep *s, edo_instant deadline);

/** edo_sleep_deadline() - the instant @s completes at. */
edo_instant edo_sleep_deadline(const edo_sleep *s);

/** edo_sleep_is_elapsed() - whether @s has completed (its timer fired). */
bool edo_sleep_is_elapsed(const edo_sleep *s);

/**
 * edo_sleep_reset() - move the deadline of @s to @deadline, earlier or
 * later, whatever its state: pending, never polled, or completed (a
 * completed sleep becomes pending again, and may be awaited again).
 * Moving a registered timer later takes no lock (the wheel re-files it when
 * its old slot comes up); moving it earlier re-files it at once, and wakes
 * the thread that owns the wheel if it must now wake sooner.  The waker of
 * the last poll is kept.
 */
void edo_sleep_reset(edo_sleep *s, edo_instant deadline);

/** The poll and drop of edo_sleep (for futures that embed one). */
extern const edo_future_vtable edo_sleep_vt;

/**
 * EDO_AWAIT_SLEEP(s, duration_ns) - in a coroutine: initialise the edo_sleep
 * @s (in the frame) and await it.
 */
#define EDO_AWAIT_SLEEP(s, duration_ns)                                                            \
	do {                                                                                       \
		edo_sleep_init((s), (duration_ns));                                                \
		EDO_AWAIT(s);                                                                      \
	} while (0)

/** EDO_AWAIT_SLEEP_UNTIL(s, deadline) - as EDO_AWAIT_SLEEP, until an instant. */
#define EDO_AWAIT_SLEEP_UNTIL(s, deadline)                                                         \
	do {                                                                                       \
		edo_sleep_until_init((s), (deadline));                                             \
		EDO_AWAIT(s);                                                                      \
	} while (0)

/* ---- timeout ------------------------------------------------------------------ */

/**
 * edo_timeout - run a future with a deadline.
 *
 * Polls @inner first, then the deadline.  When READY, `result` is 0 if the
 * inner future completed (its outputs are valid, in its own fields), or
 * -ETIMEDOUT if the deadline passed first, in which case the inner future
 * has been dropped (cancelled).  If the timer could not run (EDO_ESHUTDOWN,
 * EDO_ENORUNTIME) `result` says so and the inner future is dropped too.
 * The timer is registered only if @inner returns PENDING, so a timeout
 * around a future that is ready at once costs a clock read and nothing
 * else.  If the inner future spends the task's budget, the deadline is
 * still checked (as Tokio does), so a busy inner future still times out.
 * Dropping the timeout drops @inner.
 */
typedef struct edo_timeout {
	edo_future base;
	int result; /**< output: 0, -ETIMEDOUT, EDO_ESHUTDOWN, EDO_ENORUNTIME, or
		     *   -EINVAL (a NULL inner future: completes at once) */
	edo_future *inner_;
	edo_sleep sleep_;
} edo_timeout;

/** edo_timeout_init() - @inner (stored elsewhere, e.g. in the frame) with a deadline
 *  @duration_ns from now. */
void edo_timeout_init(edo_timeout *t, edo_future *inner, uint64_t duration_ns);

/** edo_timeout_at_init() - @inner with the deadline @deadline. */
void edo_timeout_at_init(edo_timeout *t, edo_future *inner, edo_instant deadline);

/**
 * EDO_AWAIT_TIMEOUT(t, inner, duration_ns) - in a coroutine: initialise the
 * edo_timeout @t around the future @inner (both in the frame) and await it;
 * then read t->result.
 */
#define EDO_AWAIT_TIMEOUT(t, inner, duration_ns)                                                   \
	do {                                                                                       \
		edo_timeout_init((t), (inner), (duration_ns));                                     \
		EDO_AWAIT(t);                                                                      \
	} while (0)

/* ---- interval ----------------------------------------------------------------- */

/** What an interval does about ticks it missed (the task ran late). */
typedef enum edo_missed_tick {
	/** Fire the missed ticks as fast as possible, then keep the original
	 *  schedule (start + k * period).  Tokio's default. */
	EDO_MISSED_TICK_BURST = 0,
	/** Tick now, then one period after each (late) tick: the schedule shifts. */
	EDO_MISSED_TICK_DELAY = 1,
	/** Tick now, then at the next instant of the original schedule. */
	EDO_MISSED_TICK_SKIP = 2,
} edo_missed_tick;

/**
 * edo_interval - a future that completes once per period.  Unlike other
 * futures it may be awaited again after READY: each completion is one tick,
 * and `tick` is the instant the tick was *scheduled* for.  The first tick
 * completes at once (edo_interval_init) or at @start (edo_interval_at_init).
 * A tick is "missed" when the task polls it more than 5 ms late; then
 * @missed decides the next deadline.  Drop it with edo_future_drop() (a
 * coroutine awaiting it drops it when it is dropped itself).
 */
typedef struct edo_interval {
	edo_future base;
	int result;       /**< output: 0, or EDO_ESHUTDOWN / EDO_ENORUNTIME (then stays READY) */
	edo_instant tick; /**< output: the scheduled instant of the tick just completed */
	uint64_t period_;
	edo_missed_tick missed_;
	edo_sleep sleep_;
} edo_interval;

/**
 * edo_interval_init() - ticks every @period_ns, the first at once.
 * Returns 0, or -EINVAL (nothing done) for a NULL @iv, a zero period or
 * unknown @missed.
 */
int edo_interval_init(edo_interval *iv, uint64_t period_ns, edo_missed_tick missed);

/** edo_interval_at_init() - as edo_interval_init(), the first tick at @start. */
int edo_interval_at_init(edo_interval *iv, edo_instant start, uint64_t period_ns,
			 edo_missed_tick missed);

/** edo_interval_reset() - the next tick comes one period from now. */
void edo_interval_reset(edo_interval *iv);

/* ---- the test clock ------------------------------------------------------------ */

/**
 * edo_time_pause() - freeze the clock of the current runtime (call it from
 * inside the runtime: a task or edo_block_on()).  Time then moves only by
 * edo_time_advance() or, on the current-thread runtime, by auto-advance to
 * the next timer whenever no task can run.  Returns 0, -EALREADY if already
 * paused, or EDO_ENORUNTIME outside a runtime.
 */
int edo_time_pause(void);

/**
 * edo_time_advance() - move the paused clock of the current runtime forward
 * by @duration_ns.  Timers that expire fire at the runtime's next driver
 * turn (yield, or await something, to let them run).  Returns 0, -EINVAL if
 * the clock is not paused, -EOVERFLOW if the clock would pass INT64_MAX
 * nanoseconds (about 292 years of uptime; the clock does not move), or
 * EDO_ENORUNTIME outside a runtime.  A timer whose deadline lies beyond
 * that ("never", e.g. edo_sleep_init(s, UINT64_MAX)) is never reached by
 * auto-advance either: a runtime that waits only for it parks.
 */
int edo_time_advance(uint64_t duration_ns);

/**
 * edo_time_resume() - let the paused clock of the current runtime run again
 * in real time, from the instant it shows now (it never jumps back).
 * Returns 0, -EINVAL if it is not paused, or EDO_ENORUNTIME.
 */
int edo_time_resume(void);

/** edo_time_is_paused() - whether the current runtime's clock is paused. */
bool edo_time_is_paused(void);

#ifdef __cplusplus
}
#endif
#endif /* EDO_TIME_H */
