#include "runtime/driver.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime/io/reactor.h"
#include "runtime/time/time.h"

enum { EMPTY = 0, PARKED_FUTEX = 1, PARKED_DRIVER = 2, NOTIFIED = 3 };

static void futex_wait(atomic_uint *addr, unsigned val, int64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;
	if (timeout_ns >= 0) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000);
		ts.tv_nsec = (long)(timeout_ns % 1000000000);
		tp = &ts;
	}
	(void)syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
}

static void futex_wake(atomic_uint *addr)
{
	(void)syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---- the driver ------------------------------------------------------------------- */

int edo__driver_init(edo__driver *d, bool start_paused)
{
	atomic_init(&d->io_locked, false);
	atomic_init(&d->shut_down, false);
	int rc = edo__clock_new(&d->clock, start_paused);
	if (rc < 0)
		return rc;
	rc = edo__reactor_new(&d->io);
	if (rc < 0) {
		edo__clock_free(d->clock);
		d->clock = NULL;
	}
	return rc;
}

void edo__driver_shutdown(edo__driver *d)
{
	if (atomic_exchange(&d->shut_down, true))
		return;
	if (d->io)
		edo__reactor_shutdown(d->io);
}

void edo__driver_destroy(edo__driver *d)
{
	edo__reactor_free(d->io);
	d->io = NULL;
	edo__clock_free(d->clock);
	d->clock = NULL;
}

void edo__driver_wake(edo__driver *d)
{
	if (d->io)
		edo__reactor_wake(d->io);
}

static bool driver_try_lock(edo__driver *d)
{
	return d->io && !atomic_load_explicit(&d->io_locked, memory_order_relaxed) &&
	       !atomic_exchange_explicit(&d->io_locked, true, memory_order_acquire);
}

static void driver_unlock(edo__driver *d)
{
	atomic_store_explicit(&d->io_locked, false, memory_order_release);
}

/* ---- parkers ------------------------------------------------------------------------ */

int edo__parker_init(edo__parker *p, edo__driver *d)
{
	atomic_init(&p->state, EMPTY);
	p->driver = d;
	p->time = NULL;
	return d && d->clock ? edo__parker_init_time(p, d->clock) : 0;
}

int edo__parker_init_time(edo__parker *p, edo__clock *clock)
{
	return edo__time_new(&p->time, clock, p);
}

void edo__parker_shutdown(edo__parker *p)
{
	if (p->time)
		edo__time_shutdown(p->time);
}

void edo__parker_destroy(edo__parker *p)
{
	edo__parker_shutdown(p);
	edo__time_free(p->time);
	p->time = NULL;
}

/* The parker of this thread while it is in a driver turn.  The turn
 * dispatches readiness to wakers on this thread, and a wake may unpark this
 * very parker (the scheduler notifies a sleeper, and the sleeper is us: a
 * one-worker runtime does it on most turns that found I/O).  The thread is
 * not blocked then and sees NOTIFIED when the turn ends, so that unpark
 * needs no eventfd write, which would also make the next turn return at
 * once with nothing but the wake in it. */
static __thread edo__parker *in_turn __attribute__((tls_model("initial-exec")));

/* Block in the reactor.  The driver lock is held.  Returns whether a
 * notification (an unpark) was consumed. */
static bool park_driver(edo__parker *p, int64_t timeout_ns)
{
	unsigned expect = EMPTY;
	if (timeout_ns != 0 && !atomic_compare_exchange_strong(&p->state, &expect, PARKED_DRIVER)) {
		/* Notified meanwhile: still do a non-blocking turn. */
		timeout_ns = 0;
	}
	in_turn = p;
	edo__reactor_turn(p->driver->io, timeout_ns);
	in_turn = NULL;
	/* Consume a notification, or leave PARKED_DRIVER. */
	expect = PARKED_DRIVER;
	if (!atomic_compare_exchange_strong(&p->state, &expect, EMPTY)) {
		expect = NOTIFIED;
		return atomic_compare_exchange_strong(&p->state, &expect, EMPTY);
	}
	return false;
}

static void park_futex(edo__parker *p, int64_t timeout_ns)
{
	unsigned expect = EMPTY;
	if (!atomic_compare_exchange_strong(&p->state, &expect, PARKED_FUTEX)) {
		atomic_store(&p->state, EMPTY); /* notified in between */
		return;
	}
	for (;;) {
		futex_wait(&p->state, PARKED_FUTEX, timeout_ns);
		expect = NOTIFIED;
		if (atomic_compare_exchange_strong(&p->state, &expect, EMPTY))
			return;
		if (timeout_ns >= 0) {
			/* Timed out (or spurious): leave; an unpark racing with
			 * us is kept for the next park. */
			expect = PARKED_FUTEX;
			atomic_compare_exchange_strong(&p->state, &expect, EMPTY);
			return;
		}
	}
}

void edo__parker_park(edo__parker *p, int64_t timeout_ns)
{
	/* Time: the wait is bounded by this thread's next timer.  With a paused
	 * clock that auto-advances (the current-thread runtime is idle), the
	 * park becomes a non-blocking turn instead, and if nothing unparked
	 * this thread meanwhile, the clock jumps to that timer (Tokio's
	 * test-util auto-advance). */
	bool auto_advance = false;
	if (p->time)
		timeout_ns = edo__time_park_timeout(p->time, timeout_ns, &auto_advance);
	unsigned expect = NOTIFIED;
	bool notified = atomic_compare_exchange_strong(&p->state, &expect, EMPTY);
	if (notified)
		timeout_ns = 0;
	edo__driver *d = p->driver;
	if (d && !atomic_load_explicit(&d->shut_down, memory_order_relaxed) && driver_try_lock(d)) {
		notified |= park_driver(p, timeout_ns);
		driver_unlock(d);
	} else if (timeout_ns != 0) {
		park_futex(p, timeout_ns);
	}
	/* Time: fire this thread's expired timers (wakers outside the lock). */
	if (p->time) {
		if (auto_advance && !notified) {
			expect = NOTIFIED;
			notified = atomic_compare_exchange_strong(&p->state, &expect, EMPTY);
		}
		edo__time_after_park(p->time, auto_advance && !notified);
	}
}

void edo__parker_unpark(edo__parker *p)
{
	switch (atomic_exchange(&p->state, NOTIFIED)) {
	case PARKED_FUTEX:
		futex_wake(&p->state);
		break;
	case PARKED_DRIVER:
		if (p != in_turn) /* not a wake dispatched by this thread's own turn */
			edo__driver_wake(p->driver);
		break;
	default:
		break;
	}
}
