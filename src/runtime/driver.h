/* The driver and the parkers: what a scheduler thread blocks in when it has
 * no work, and what other threads poke to wake it.
 *
 * One edo__driver per runtime: the I/O reactor (an epoll instance plus an
 * eventfd to interrupt it) and the runtime's clock.  One edo__parker per
 * thread that parks (the current-thread runtime's thread, each multi-thread
 * worker, each thread in edo_block_on of a multi-thread runtime), holding
 * that thread's timer wheel.
 *
 * Parking (Tokio's park.rs): a thread that has nothing to run tries to take
 * the driver.  If it gets it, it blocks in epoll_wait (a "driver turn"),
 * dispatching I/O readiness to wakers; otherwise it sleeps on its own futex.
 * Either way the sleep is bounded by the thread's next timer, and expired
 * timers are fired after it.  Only one thread at a time is in the reactor.
 *
 *   parker state:  EMPTY ──park──▶ PARKED_FUTEX | PARKED_DRIVER
 *                  any ──unpark──▶ NOTIFIED (futex wake, or eventfd write)
 *                  NOTIFIED ──park──▶ EMPTY, returns at once
 *
 * A non-blocking park (timeout 0) is a driver turn that does not wait: the
 * schedulers make one every event_interval ticks so that I/O is polled even
 * while tasks keep every worker busy.
 */
#ifndef EDO_DRIVER_H
#define EDO_DRIVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct edo__reactor edo__reactor;
typedef struct edo__time edo__time;
typedef struct edo__clock edo__clock;

typedef struct edo__driver {
	edo__reactor *io;      /* NULL if the reactor could not be created */
	edo__clock *clock;     /* the runtime's clock (maybe paused, for tests) */
	atomic_bool io_locked; /* a thread is inside a reactor turn */
	atomic_bool shut_down;
} edo__driver;

typedef struct edo__parker {
	atomic_uint state;
	edo__driver *driver;
	edo__time *time; /* this thread's timer wheel, or NULL */
} edo__parker;

/* The driver of a runtime: creates the epoll instance and the clock. */
int edo__driver_init(edo__driver *d, bool start_paused);
/* Every I/O resource is marked shut down (pending I/O fails), waiters woken. */
void edo__driver_shutdown(edo__driver *d);
/* Release the epoll instance and the clock; nothing may use @d after. */
void edo__driver_destroy(edo__driver *d);

/* Wake the thread blocked in a reactor turn, if any.  Thread-safe. */
void edo__driver_wake(edo__driver *d);

/* A parker on @d; it gets a timer wheel on @d's clock (-ENOMEM if that
 * fails).  @d may be NULL: a futex-only parker without timers. */
int edo__parker_init(edo__parker *p, edo__driver *d);
/* Give a parker without a driver (an edo_block_on thread of a multi-thread
 * runtime) a timer wheel on @clock. */
int edo__parker_init_time(edo__parker *p, edo__clock *clock);
/* Fires every pending timer of this parker as cancelled (EDO_ESHUTDOWN);
 * later registrations complete the same way.  The wheel stays allocated
 * for threads that may still cancel timers in it.  Idempotent. */
void edo__parker_shutdown(edo__parker *p);
/* Shuts down (if not done) and frees the wheel. */
void edo__parker_destroy(edo__parker *p);

/* Block until unparked or @timeout_ns passes (-1: no limit, 0: a driver turn
 * that does not wait).  The wait is bounded by this thread's next timer;
 * expired timers fire before it returns.  Only the owning thread calls it. */
void edo__parker_park(edo__parker *p, int64_t timeout_ns);

/* Wake the parker's thread (or make its next park return at once).
 * Thread-safe. */
void edo__parker_unpark(edo__parker *p);

#endif /* EDO_DRIVER_H */
