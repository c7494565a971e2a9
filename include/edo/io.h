/* Edo — driving file descriptors through the runtime's I/O reactor.
 *
 * `edo_async_fd` registers any non-blocking file descriptor (a pipe, an
 * eventfd, a socket, a third-party library's fd) with the runtime's epoll
 * reactor, edge-triggered, and lets tasks wait for it to become readable or
 * writable.  The pattern of every I/O leaf future:
 *
 *     edo_ready_guard g;
 *     for (;;) {
 *         if (edo_async_fd_poll_read_ready(afd, cx, &g) == EDO_PENDING)
 *             return EDO_PENDING;                 // woken when readable
 *         ssize_t n = read(edo_async_fd_fd(afd), buf, len);
 *         if (n >= 0) { ...; return EDO_READY; }
 *         if (errno != EAGAIN) { ...error...; return EDO_READY; }
 *         edo_async_fd_clear_ready(afd, &g);      // only if no new edge came
 *     }
 *
 * edo_async_fd_poll_read() / _poll_write() do exactly this for read(2) and
 * write(2).  One task may wait to read and one to write at a time through the
 * poll_*_ready functions; any number may wait through edo_readiness futures
 * (edo_readiness_clear() is their edo_async_fd_clear_ready()).
 *
 * Clear only after EAGAIN: a read or write shorter than asked does not say
 * the fd is drained or full (a datagram socket returns one datagram per
 * read, with the next one already queued), and the edge that made it ready
 * will not come again, so a task that waits after clearing too early may
 * wait for ever.
 *
 * The fd must stay open until edo_async_fd_free(): see there.
 *
 * When the runtime shuts down, pending and later polls complete with
 * EDO_ESHUTDOWN.
 */
#ifndef EDO_IO_H
#define EDO_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "edo/future.h"
#include "edo/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Interest: what to register for (combine with |). */
#define EDO_INTEREST_READABLE 0x01u
#define EDO_INTEREST_WRITABLE 0x02u
#define EDO_INTEREST_PRIORITY 0x10u

/* Readiness bits reported by the reactor. */
#define EDO_READY_READABLE 0x01u
#define EDO_READY_WRITABLE 0x02u
#define EDO_READY_READ_CLOSED 0x04u  /**< the peer will send no more (EPOLLRDHUP/HUP) */
#define EDO_READY_WRITE_CLOSED 0x08u /**< writing is no longer possible (HUP) */
#define EDO_READY_PRIORITY 0x10u
#define EDO_READY_ERROR 0x20u

typedef struct edo_async_fd edo_async_fd;

/** Readiness observed by a poll, to clear after EAGAIN.  Treat as opaque
 *  except `ready`. */
typedef struct edo_ready_guard {
	uint32_t ready; /**< EDO_READY_* bits that were set */
	uint32_t tick_; /* private */
} edo_ready_guard;

/**
 * edo_async_fd_new() - register @fd with the current runtime's reactor.
 * @fd:       an open descriptor; it is switched to non-blocking mode.  It
 *            stays owned by the caller (edo_async_fd_free() does not close it).
 * @interest: EDO_INTEREST_* bits (at least one, and no other bit).
 * Returns 0, -EINVAL (a negative fd, a bad interest or a NULL @out),
 * -EBADF (@fd is not open), EDO_ENORUNTIME, EDO_ESHUTDOWN, -ENOMEM, or the
 * -errno of fcntl or epoll_ctl (-EPERM for a regular file).  On failure
 * @fd is left as it was.
 */
int edo_async_fd_new(int fd, uint32_t interest, edo_async_fd **out);

/** edo_async_fd_new_on() - edo_async_fd_new() on the runtime of @h, from any thread. */
int edo_async_fd_new_on(edo_handle *h, int fd, uint32_t interest, edo_async_fd **out);

/** edo_async_fd_fd() - the registered descriptor (-EINVAL for NULL). */
int edo_async_fd_fd(const edo_async_fd *a);

/**
 * edo_async_fd_free() - deregister and free; returns the descriptor, which
 * is not closed.  NULL returns -EINVAL.  The memory is gone when it
 * returns, so free it only when no task will poll it again and no
 * edo_readiness on it is alive: as with sockets, @a must outlive every poll
 * and future on it.  To stop a task that waits on it, abort that task (or
 * tell it through a channel) and free after it is done.  Tasks still
 * waiting are woken, but their next poll would read freed memory.
 *
 * Close the descriptor only after this (as `close(edo_async_fd_free(a))`
 * does): the registration is removed from the reactor by descriptor number.
 * If the descriptor was closed before, this function checks (fstat) whether
 * its number still names the file registered; if it does not (closed, or
 * reused for another file), it leaves the reactor's entry for that number
 * alone, so other registrations are not disturbed, and the registration's
 * few bytes of memory are kept, inert, until the runtime is freed, since
 * the file may still be open through a dup and keep reporting events.  No
 * crash, no leak past the runtime.  (The check compares device and inode
 * numbers, and for eventfd-like descriptors, which all share one, looks
 * for another registration with the same number; it cannot tell apart
 * a new open of the same FIFO or tty under the same number, registered
 * again: that one would lose its registration.)
 */
int edo_async_fd_free(edo_async_fd *a);

/**
 * edo_async_fd_poll_read_ready() - READY when the fd is readable (or read-
 * closed, or in error): *g tells which.  PENDING: the task is woken when
 * that changes.  On runtime shutdown, READY with g->ready == 0 and the
 * function returns READY; check edo_async_fd_is_shutdown().  Consumes one
 * unit of coop budget when ready.  A NULL @a gives READY with g->ready == 0
 * at once.
 */
edo_poll edo_async_fd_poll_read_ready(edo_async_fd *a, edo_cx *cx, edo_ready_guard *g);

/** edo_async_fd_poll_write_ready() - as above, for writability. */
edo_poll edo_async_fd_poll_write_ready(edo_async_fd *a, edo_cx *cx, edo_ready_guard *g);

/** edo_async_fd_clear_ready() - forget the readiness in @g (after EAGAIN, and only then:
 *  see above), unless a new event arrived since @g was taken.  A NULL @a or @g: no-op. */
void edo_async_fd_clear_ready(edo_async_fd *a, const edo_ready_guard *g);

/** edo_async_fd_is_shutdown() - whether the runtime behind @a has shut down (false for NULL). */
bool edo_async_fd_is_shutdown(const edo_async_fd *a);

/**
 * edo_async_fd_poll_read() - read(2) up to @len bytes once the fd is
 * readable.  *@n: bytes read (0 at end of file), or a negative errno
 * (EDO_ESHUTDOWN if the runtime shut down; -EINVAL at once for a NULL @a).
 * Works for any kind of fd (datagrams, eventfds, ttys...): the readiness
 * is cleared only when read(2) says EAGAIN, so after a short read the next
 * call reads again (one more syscall when the fd has run dry).
 */
edo_poll edo_async_fd_poll_read(edo_async_fd *a, edo_cx *cx, void *buf, size_t len, ssize_t *n);

/** edo_async_fd_poll_write() - write(2) up to @len bytes once writable; *@n as above.
 *  Readiness is cleared only on EAGAIN, as for reads. */
edo_poll edo_async_fd_poll_write(edo_async_fd *a, edo_cx *cx, const void *buf, size_t len,
				 ssize_t *n);

/* Private: the waiter node a readiness future embeds. */
typedef struct edo_io_waiter_ {
	struct edo_io_waiter_ *prev_, *next_;
	edo_waker waker_;
	uint32_t interest_;
	bool linked_, ready_;
} edo_io_waiter_;

/**
 * edo_readiness - a future that completes when @fd has any of @interest's
 * readiness; any number of them may wait on one fd.  Its output `ready` holds
 * the EDO_READY_* bits, or 0 if the runtime shut down or the input was bad:
 * a NULL @fd, or an @interest with no EDO_INTEREST_* bit or with any other
 * bit (as edo_async_fd_new() refuses), completes at the first poll with
 * ready == 0 (nothing could ever satisfy it).  So ready == 0 with
 * edo_async_fd_is_shutdown() false means bad input.  Initialise with
 * edo_readiness_init(); dropping it while pending removes it from the fd's
 * waiter list (cancel-safe).  The fd must outlive it.
 *
 * Readiness stays set until cleared: after the operation it announced
 * returns EAGAIN, call edo_readiness_clear(), or the next readiness future
 * completes at once again (a busy loop):
 *
 *     for (;;) {
 *         edo_readiness_init(&self->r, afd, EDO_INTEREST_READABLE);
 *         EDO_AWAIT(&self->r);
 *         while ((n = read(fd, buf, len)) > 0) ...;
 *         if (n == 0 || errno != EAGAIN)
 *             break;                          // end of file, or an error
 *         edo_readiness_clear(&self->r);      // drained: wait for a new edge
 *     }
 */
typedef struct edo_readiness {
	edo_future base;
	uint32_t ready; /**< output */
	edo_async_fd *fd_;
	uint32_t interest_;
	uint32_t tick_; /* the readiness's event count when it completed */
	edo_io_waiter_ waiter_;
} edo_readiness;

/** edo_readiness_init() - prepare a readiness future for @a and @interest. */
void edo_readiness_init(edo_readiness *r, edo_async_fd *a, uint32_t interest);

/**
 * edo_readiness_clear() - forget the readiness @r reported (its `ready`
 * bits, except the closed ones, which stay), so that the next readiness
 * future waits for a new event.  Call it after the operation returned
 * EAGAIN (only then: a short read or write does not mean drained or full).
 * It clears only if no new event arrived since @r completed, so an edge
 * that came meanwhile is not lost.  Shared: it clears for every waiter on
 * the fd, as edo_async_fd_clear_ready() does.  No-op for NULL, a future
 * that has not completed, or one that completed with ready == 0 (shutdown
 * or bad input).  The fd must still be alive.
 */
void edo_readiness_clear(edo_readiness *r);

#ifdef __cplusplus
}
#endif
#endif /* EDO_IO_H */
