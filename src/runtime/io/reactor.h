/* The I/O reactor: one epoll instance per runtime, edge-triggered, one
 * registration (edo__scheduled_io) per file descriptor.
 *
 * Readiness word of a registration (Tokio's ScheduledIo):
 *
 *   bit 63     SHUTDOWN   the runtime shut down, or the socket was closed for
 *                         every handle (edo__sio_close): every poll fails
 *   bits 16-47 tick       bumped by every event delivery
 *   bits 0-15  readiness  READABLE, WRITABLE, READ_CLOSED, WRITE_CLOSED,
 *                         PRIORITY, ERROR
 *
 * An operation reads the readiness (with its tick), tries the syscall, and on
 * EAGAIN clears the bits it used -- but only if the tick has not changed, so
 * an edge that arrived between the syscall and the clear is never lost.
 * READ_CLOSED and WRITE_CLOSED are never cleared.
 *
 * Waiters: one waker slot per direction for stream reads and writes (at most
 * one task reads and one writes a stream at a time), plus an intrusive list
 * of readiness waiters with their own interest.  Wakers are collected under
 * the registration's lock and called after it is released.
 *
 * Lifetime: epoll's event data points at the registration, so a
 * deregistered one is not freed at once but put on a release list that the
 * next reactor turn frees, after which no stale event can name it.  That
 * holds only if its epoll entry was deleted.  An edo_async_fd's user may
 * have closed the fd first: then the entry is left alone (the number may
 * name another file now) or cannot be deleted, and may live on (the file
 * may still be open through a dup), so the registration goes, shut down,
 * on an abandoned list instead, freed with the reactor after its epoll
 * instance is closed.
 */
#ifndef EDO_REACTOR_H
#define EDO_REACTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "edo/future.h"
#include "edo/io.h"
#include "edo/sync.h"

typedef struct edo__scheduled_io edo__scheduled_io;

/* A task waiting for some readiness: the node embedded in edo_readiness. */
typedef edo_io_waiter_ edo__io_waiter;

struct edo__scheduled_io {
	_Atomic(uint64_t) readiness;
	int fd;
	uint32_t interest;
	/* Guards the wakers and the waiter list: a few pointer writes, so a
	 * spin lock (sync/internal.h), not a mutex; wakers are called after it
	 * is released. */
	edo__lock lock;
	edo_waker reader, writer;
	edo__io_waiter *waiters;
	edo__scheduled_io *all_prev, *all_next; /* the reactor's registration set */
	edo__scheduled_io *release_next;
	struct edo__reactor *reactor;
};

#define EDO__IO_SHUTDOWN ((uint64_t)1 << 63)
#define EDO__IO_READY_MASK ((uint64_t)0xffff)
#define EDO__IO_TICK_SHIFT 16
#define EDO__IO_TICK_MASK ((uint64_t)0xffffffff << EDO__IO_TICK_SHIFT)

/* A readiness snapshot: the bits and the tick they were read at. */
typedef struct edo__ready_event {
	uint32_t ready;
	uint32_t tick;
	bool shutdown;
} edo__ready_event;

typedef struct edo__reactor edo__reactor;

int edo__reactor_new(edo__reactor **out);
void edo__reactor_free(edo__reactor *r);

/* One turn: free released registrations, wait up to @timeout_ns for events
 * (-1: no limit), dispatch readiness to wakers.  One thread at a time. */
void edo__reactor_turn(edo__reactor *r, int64_t timeout_ns);

/* Interrupt a turn in progress (eventfd write).  Thread-safe. */
void edo__reactor_wake(edo__reactor *r);

/* Mark every registration shut down and wake all its waiters. */
void edo__reactor_shutdown(edo__reactor *r);

/* Register @fd (non-blocking, owned by the caller) for @interest
 * (EDO_INTEREST_*).  Thread-safe.  -errno on failure. */
int edo__reactor_register(edo__reactor *r, int fd, uint32_t interest, edo__scheduled_io **out);

/* Remove from epoll; the memory is freed after the next turn.  Wakes
 * waiters (they see the registration gone).  Thread-safe.  The fd must
 * still be open (sockets and the runtime's own registrations deregister
 * before they close). */
void edo__reactor_deregister(edo__reactor *r, edo__scheduled_io *io);

/* Mark @io shut down and wake all its waiters, leaving it registered: a
 * socket closed for every handle while other handles still hold it (they
 * see it closed when they wake; the last one deregisters).  Thread-safe. */
void edo__sio_close(edo__scheduled_io *io);

/* The identity of a registered file, for edo__reactor_deregister_fd. */
typedef struct edo__file_id {
	dev_t dev;
	ino_t ino;
	/* Not unique: an anonymous inode (eventfd, timerfd, signalfd,
	 * inotify... share one), so the identity alone cannot tell whether
	 * the fd number still names the registered file. */
	bool shared;
} edo__file_id;

/* fstat @fd into *@id.  0 or -errno. */
int edo__file_id_get(edo__reactor *r, int fd, edo__file_id *id);

/* edo__reactor_deregister() for an edo_async_fd, whose user may have
 * closed the fd already (and its number may name another file now).  The
 * epoll entry is deleted only if io->fd still names the file of @id (and,
 * for a shared identity, no other registration of this reactor has that
 * fd number); if it is not, or the delete fails, a stale entry may still
 * name @io, which is then kept, shut down, until edo__reactor_free().
 * Thread-safe. */
void edo__reactor_deregister_fd(edo__reactor *r, edo__scheduled_io *io, const edo__file_id *id);

/* The readiness bits that satisfy an interest: closed and error states
 * count as ready, so the operation runs and reports them. */
static inline uint32_t edo__sio_mask_for(uint32_t interest)
{
	uint32_t m = EDO_READY_ERROR;
	if (interest & EDO_INTEREST_READABLE)
		m |= EDO_READY_READABLE | EDO_READY_READ_CLOSED;
	if (interest & EDO_INTEREST_WRITABLE)
		m |= EDO_READY_WRITABLE | EDO_READY_WRITE_CLOSED;
	if (interest & EDO_INTEREST_PRIORITY)
		m |= EDO_READY_PRIORITY | EDO_READY_READ_CLOSED;
	return m;
}

/* Snapshot without registering anything. */
static inline edo__ready_event edo__sio_readiness(edo__scheduled_io *io, uint32_t interest)
{
	uint64_t word = atomic_load_explicit(&io->readiness, memory_order_acquire);
	return (edo__ready_event){
		.ready = (uint32_t)(word & EDO__IO_READY_MASK) & edo__sio_mask_for(interest),
		.tick = (uint32_t)((word & EDO__IO_TICK_MASK) >> EDO__IO_TICK_SHIFT),
		.shutdown = (word & EDO__IO_SHUTDOWN) != 0,
	};
}

/* edo__sio_poll_ready's path when the snapshot is not ready: under the
 * lock, look again, then store the waker. */
edo_poll edo__sio_poll_ready_slow(edo__scheduled_io *io, edo_cx *cx, uint32_t direction,
				  edo__ready_event *ev);

/* Current readiness for a direction (EDO_INTEREST_READABLE or _WRITABLE);
 * stores cx's waker in the direction's slot when not ready.  PENDING or
 * READY with *ev filled (ev->shutdown: the runtime is gone, or the socket
 * was closed, which the socket's own flag tells).  Inline:
 * the ready case is a load on every socket read and write. */
static inline edo_poll edo__sio_poll_ready(edo__scheduled_io *io, edo_cx *cx, uint32_t direction,
					   edo__ready_event *ev)
{
	*ev = edo__sio_readiness(io, direction);
	if (ev->ready || ev->shutdown)
		return EDO_READY;
	return edo__sio_poll_ready_slow(io, cx, direction, ev);
}

/* Clear @ev's bits if the tick is unchanged (after an EAGAIN). */
void edo__sio_clear_readiness(edo__scheduled_io *io, edo__ready_event ev);

/* Readiness futures' waiter list. */
edo_poll edo__sio_poll_waiter(edo__scheduled_io *io, edo__io_waiter *w, edo_cx *cx,
			      edo__ready_event *ev);
void edo__sio_remove_waiter(edo__scheduled_io *io, edo__io_waiter *w);

/* Metrics: descriptors registered and deregistered so far, readiness
 * events dispatched.  Thread-safe (relaxed reads). */
void edo__reactor_counts(edo__reactor *r, uint64_t *registered, uint64_t *deregistered,
			 uint64_t *events);

#endif /* EDO_REACTOR_H */
