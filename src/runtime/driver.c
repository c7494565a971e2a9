#include "runtime/driver.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { EMPTY = 0, PARKED = 1, NOTIFIED = 2 };

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

void edo__driver_init(edo__driver *d)
{
	atomic_init(&d->state, EMPTY);
}

void edo__driver_park(edo__driver *d, int64_t timeout_ns)
{
	unsigned expect = NOTIFIED;
	if (atomic_compare_exchange_strong(&d->state, &expect, EMPTY) || timeout_ns == 0)
		return;
	expect = EMPTY;
	if (!atomic_compare_exchange_strong(&d->state, &expect, PARKED)) {
		/* An unpark landed in between. */
		atomic_store(&d->state, EMPTY);
		return;
	}
	for (;;) {
		futex_wait(&d->state, PARKED, timeout_ns);
		expect = NOTIFIED;
		if (atomic_compare_exchange_strong(&d->state, &expect, EMPTY))
			return;
		if (timeout_ns >= 0) {
			/* Timed out (or spurious): leave; an unpark racing with us
			 * is kept for the next park. */
			expect = PARKED;
			atomic_compare_exchange_strong(&d->state, &expect, EMPTY);
			return;
		}
	}
}

void edo__driver_unpark(edo__driver *d)
{
	if (atomic_exchange(&d->state, NOTIFIED) == PARKED)
		futex_wake(&d->state);
}

void edo__driver_shutdown(edo__driver *d)
{
	atomic_store(&d->state, EMPTY);
}
