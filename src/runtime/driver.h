/* The driver: what a scheduler thread blocks in when it has no work, and
 * what other threads poke to wake it.
 *
 * Today this is a thread parker (a futex word): park() sleeps until unpark()
 * or the timeout.  It is the one place where the I/O driver (epoll_wait on
 * the reactor, woken through an eventfd) and the time driver (the park
 * timeout computed from the next timer expiry) plug in: schedulers only ever
 * call park / unpark / shutdown, so they will not change when those land.
 *
 * Parker states:  EMPTY ──park──▶ PARKED ──unpark──▶ NOTIFIED ──(woken)──▶ EMPTY
 *                 EMPTY ──unpark─▶ NOTIFIED ──park returns at once──▶ EMPTY
 */
#ifndef EDO_DRIVER_H
#define EDO_DRIVER_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct edo__driver {
	atomic_uint state;
} edo__driver;

void edo__driver_init(edo__driver *d);

/* Block until unparked or @timeout_ns passes (-1: no timeout, 0: do not block,
 * only run a driver turn).  A pending unpark makes it return at once. */
void edo__driver_park(edo__driver *d, int64_t timeout_ns);

/* Wake the thread parked in @d (or make its next park return at once).
 * Thread-safe; async-signal-safe. */
void edo__driver_unpark(edo__driver *d);

/* Release the driver's resources; parked threads must be gone. */
void edo__driver_shutdown(edo__driver *d);

#endif /* EDO_DRIVER_H */
