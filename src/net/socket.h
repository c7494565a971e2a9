/* The socket core shared by every socket type of edo/net.h: a descriptor
 * registered once with the reactor, reference-counted, with a closed flag.
 *
 *   edo__sock   fd + registration (edo__scheduled_io) + the runtime it
 *               belongs to (a reference, so the reactor outlives it)
 *
 * Lifetime and closing.  Each handle holds one reference.  The descriptor
 * is closed, and the registration released, only when the last reference
 * goes, so no task that holds a handle can ever see its descriptor number
 * reused by another socket.  Closing "for everyone" (edo__sock_close) sets
 * `closed` and, if other handles exist, marks the registration shut down
 * and wakes every task waiting on it (edo__sio_close): each sees `closed`
 * and fails with -EBADF.  The socket is also shut down both ways (a
 * listener refuses connections at once), unless it is a listener or
 * datagram socket taken over from a descriptor (`adopted`): another
 * process may hold the same socket.
 *
 * I/O follows Tokio's PollEvented: take a unit of budget, read the
 * readiness (registering the waker if not ready), try the syscall, and on
 * EAGAIN clear the readiness -- only if no new edge came since (the tick) --
 * and go round again.  A stream read or write that moved fewer bytes than
 * asked also clears it, which saves the syscall that would say EAGAIN.
 */
#ifndef EDO_NET_SOCKET_H
#define EDO_NET_SOCKET_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "edo/error.h"
#include "edo/net.h"
#include "edo/task.h"
#include "edo/time.h"
#include "runtime/context.h"
#include "runtime/io/reactor.h"
#include "runtime/sched.h"

typedef struct edo__sock {
	edo__scheduled_io *io;
	edo__sched *sched;
	int fd;
	atomic_uint refs;
	atomic_bool closed;
	bool adopted; /* taken over by a _from_fd() constructor */
} edo__sock;

/* socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC; -errno on failure. */
int edo__sock_socket(int domain, int type, int protocol);

/* Whether a socket could be registered now: 0, or the error
 * edo__sock_init() would return (EDO_ENORUNTIME, -ENOTSUP, EDO_ESHUTDOWN).
 * Constructors call it before socket(2), so that a call that must fail does
 * nothing visible first (a bind that creates a file, a connect that reaches
 * a listener). */
int edo__sock_check_runtime(void);

/* Register the non-blocking @fd with the current runtime's reactor; one
 * reference.  On failure the fd is left to the caller (not closed). */
int edo__sock_init(edo__sock *s, int fd);

/* What a descriptor made elsewhere must be to be adopted: its SO_TYPE;
 * AF_INET or AF_INET6 with TCP (a stream) or UDP (datagrams) if @ip, else
 * AF_UNIX; and for a stream, whether it listens. */
typedef struct edo__sock_kind {
	int type;
	bool ip, listening;
} edo__sock_kind;

/* Whether @fd can be adopted as @k now: 0, or -EINVAL (a negative fd; a
 * stream that does (not) listen), EDO_ENORUNTIME / -ENOTSUP / EDO_ESHUTDOWN
 * (as edo__sock_check_runtime), -EBADF, -ENOTSOCK, or -EPROTOTYPE (another
 * kind of socket). */
int edo__sock_check_kind(int fd, const edo__sock_kind *k);

/* The _from_fd() constructors: check @fd as above, allocate @size zeroed
 * bytes that begin with the edo__sock, switch @fd to non-blocking mode and
 * register it (edo__sock_init).  0 and *out, or the check's error or
 * -ENOMEM, and then @fd is left as it was: open, its flags restored, not
 * registered. */
int edo__sock_adopt(int fd, const edo__sock_kind *k, size_t size, void **out);

/* Take another reference. */
void edo__sock_ref(edo__sock *s);

/* Close for every holder now (see the top); idempotent. */
void edo__sock_close(edo__sock *s);

/* Release one reference; true if it was the last: the descriptor is closed
 * and the caller frees the memory that holds @s. */
bool edo__sock_release(edo__sock *s);

static inline bool edo__sock_is_closed(const edo__sock *s)
{
	return atomic_load_explicit((atomic_bool *)(uintptr_t)&s->closed, memory_order_acquire);
}

/* The descriptor, for the _fd() functions: -EBADF once closed. */
static inline int edo__sock_fd(const edo__sock *s)
{
	return edo__sock_is_closed(s) ? -EBADF : s->fd;
}

/* Bad input to a poll function: READY at once with *n = -EINVAL, or with
 * nothing written when @n itself is NULL. */
static inline edo_poll edo__poll_einval(ssize_t *n)
{
	if (n)
		*n = -EINVAL;
	return EDO_READY;
}

/* Wait for @dir readiness: 0 ready (*ev filled, one budget unit taken), 1
 * pending (waker registered), or a negative error (-EBADF closed,
 * EDO_ESHUTDOWN). */
static inline int edo__sock_wait(edo__sock *s, edo_cx *cx, uint32_t dir, edo__ready_event *ev)
{
	if (edo__sock_is_closed(s))
		return -EBADF;
	if (edo__coop_proceed(cx) == EDO_PENDING)
		return 1;
	if (edo__sio_poll_ready(s->io, cx, dir, ev) == EDO_PENDING) {
		edo__coop_refund();
		return 1;
	}
	if (ev->shutdown) {
		edo__coop_refund();
		return edo__sock_is_closed(s) ? -EBADF : EDO_ESHUTDOWN;
	}
	return 0;
}

/* One syscall attempt: >= 0 or -errno. */
typedef ssize_t (*edo__sock_op)(int fd, void *ctx);

/*
 * The readiness loop around one syscall (Tokio's poll_io).  @want: for
 * stream reads and writes, the length asked for (a shorter result clears
 * the readiness); 0 for anything else.  Inlined, so that @op is a direct
 * call.
 */
static inline __attribute__((always_inline)) edo_poll edo__sock_poll_io(edo__sock *s, edo_cx *cx,
									uint32_t dir,
									edo__sock_op op, void *ctx,
									size_t want, ssize_t *n)
{
	for (;;) {
		edo__ready_event ev;
		int w = edo__sock_wait(s, cx, dir, &ev);
		if (w > 0)
			return EDO_PENDING;
		if (w < 0) {
			*n = w;
			return EDO_READY;
		}
		ssize_t r = op(s->fd, ctx);
		if (r == -EAGAIN || r == -EINTR) {
			if (r == -EAGAIN)
				edo__sio_clear_readiness(s->io, ev);
			/* The unit bought nothing, unless the readiness stays
			 * (a new edge, or a closed state that is never cleared
			 * on a socket that still says EAGAIN): then only the
			 * budget ends this loop.  An -EINTR keeps its unit
			 * too, so that an operation interrupted again and
			 * again (a user's _poll_io function) still yields. */
			if (r == -EAGAIN && !edo__sio_readiness(s->io, dir).ready)
				edo__coop_refund();
			continue;
		}
		if (r > 0 && (size_t)r < want)
			edo__sio_clear_readiness(s->io, ev);
		if (r <= 0 && edo__sock_is_closed(s))
			r = -EBADF;
		*n = r;
		return EDO_READY;
	}
}

/* One attempt of a try_ operation (Tokio's try_io): the syscall once, no
 * waiting; on EAGAIN the readiness seen before it is cleared, so that a
 * readiness future waits for the next edge. */
static inline ssize_t edo__sock_try_once(edo__sock *s, uint32_t dir, edo__sock_op op, void *ctx)
{
	if (edo__sock_is_closed(s))
		return -EBADF;
	edo__ready_event ev = edo__sio_readiness(s->io, dir);
	ssize_t r = op(s->fd, ctx);
	if (r == -EAGAIN)
		edo__sio_clear_readiness(s->io, ev);
	return r;
}

/* Edo's own try_ operations: edo__sock_try_once(), again after -EINTR. */
static inline ssize_t edo__sock_try_io(edo__sock *s, uint32_t dir, edo__sock_op op, void *ctx)
{
	ssize_t r;
	do
		r = edo__sock_try_once(s, dir, op, ctx);
	while (r == -EINTR);
	return r;
}

/* Readiness futures over a socket. */
edo_future *edo__sock_ready(edo_net_ready_fut *f, edo__sock *s, uint32_t interest);

/*
 * One operation of an operation future (edo/net.h): wait through the
 * readiness list with @w's readiness future (any number may wait), then
 * try the syscall once (edo__sock_try_io: on EAGAIN the readiness seen
 * before it is cleared) and wait again if it found nothing.  READY with *n
 * the syscall's result, or the wait's error (-EBADF closed, EDO_ESHUTDOWN).
 */
edo_poll edo__sock_poll_op(edo__sock *s, edo_net_wait_ *w, edo_cx *cx, uint32_t dir,
			   edo__sock_op op, void *ctx, ssize_t *n);

/* Drop @w's readiness future if it is waiting (a pending future's drop). */
void edo__net_wait_drop(edo_net_wait_ *w);

/* The _into_fd() functions: with @s's only reference, deregister it and
 * return its descriptor (not closed; the caller frees the memory), or
 * -EBADF (closed) or -EBUSY (other references), changing nothing. */
int edo__sock_into_fd(edo__sock *s);

/* The public _try_io and _poll_io (edo/net.h): -EINVAL for a NULL @fn or
 * an @interest other than READABLE or WRITABLE; the sstream forms also
 * -EBADF for the other direction's half. */
ssize_t edo__sock_user_try_io(edo__sock *s, uint32_t interest, edo_net_io_fn fn, void *ctx);
edo_poll edo__sock_user_poll_io(edo__sock *s, edo_cx *cx, uint32_t interest, edo_net_io_fn fn,
				void *ctx, ssize_t *n);
struct edo__sstream;
ssize_t edo__sstream_try_io(struct edo__sstream *h, uint32_t interest, edo_net_io_fn fn, void *ctx);
edo_poll edo__sstream_poll_io(struct edo__sstream *h, edo_cx *cx, uint32_t interest,
			      edo_net_io_fn fn, void *ctx, ssize_t *n);

/* SO_ERROR, taken (the kernel clears it): 0, the pending error as -errno,
 * or -EBADF once closed. */
int edo__sock_take_error(edo__sock *s);

/* getsockname / getpeername into an edo_addr.  -EBADF once closed. */
int edo__sock_name(edo__sock *s, edo_addr *out, bool peer);
/* setsockopt of @len bytes at @val.  -EBADF once closed. */
int edo__sock_setopt_raw(edo__sock *s, int level, int name, const void *val, socklen_t len);
/* setsockopt / getsockopt of an int.  -EBADF once closed. */
int edo__sock_setopt(edo__sock *s, int level, int name, int value);
int edo__sock_getopt(edo__sock *s, int level, int name);
/* The unicast hop limit of a socket of @family: IP_TTL, or for AF_INET6
 * IPV6_UNICAST_HOPS and IP_TTL (IPv4 traffic of a dual-stack socket). */
int edo__sock_set_ttl(edo__sock *s, int family, int ttl);

/* ---- listeners -------------------------------------------------------------------------- */

struct edo__sstream; /* below */

/* A listening socket with the back-off of its _poll_accept; each accept
 * future (edo__listener_accept) has a back-off of its own. */
typedef struct edo__listener {
	edo__sock sock;
	edo_net_backoff_ backoff;
	/* Accepts that failed for want of descriptors or memory, each followed
	 * by a back-off (tests read it: no retry without the timer). */
	_Atomic(unsigned long) exhausted;
} edo__listener;

/* Accept one connection as a stream handle: READY with *rc = 0, *out and
 * *peer (may be NULL), or *rc < 0 (a connection whose handle cannot be made
 * is closed with a reset).  Backs off on EMFILE / ENFILE / ENOBUFS /
 * ENOMEM.  @w NULL (_poll_accept): waits in the waker slot and backs off
 * on the listener's own back-off; else (an accept future) waits through
 * @w, as any number may, and backs off on @b. */
edo_poll edo__listener_accept(edo__listener *l, edo_net_wait_ *w, edo_net_backoff_ *b, edo_cx *cx,
			      edo_addr *peer, struct edo__sstream **out, int *rc);

/* Cancel a back-off in progress (a pending accept future's drop). */
void edo__net_backoff_drop(edo_net_backoff_ *b);

/* Release the listener's back-off state (before freeing it). */
void edo__listener_fini(edo__listener *l);

/* ---- stream handles (TCP and Unix) -------------------------------------------------------- */

#define EDO__SS_READ 1u
#define EDO__SS_WRITE 2u

/* One handle to a stream socket: the whole stream, or a half. */
typedef struct edo__sstream {
	edo_stream base;
	edo__sock *sock;
	unsigned mode; /* EDO__SS_READ | EDO__SS_WRITE */
} edo__sstream;

/* A new stream over the non-blocking connected @fd (registered here); on
 * failure @fd is closed.
 *
 * The poll and try functions below check their arguments: a NULL @buf
 * with a nonzero @len, a NULL @iov with a nonzero @iovcnt (or an iovec with
 * a NULL base and a length) is -EINVAL, and a NULL @n makes a poll return
 * READY at once, doing nothing. */
int edo__sstream_new(int fd, edo__sstream **out);

/* A stream over @fd, a connected stream socket made elsewhere (TCP if
 * @ip, else Unix): edo__sock_adopt(); on failure @fd is left as it was. */
int edo__sstream_adopt(int fd, bool ip, edo__sstream **out);

edo_poll edo__sstream_poll_read(edo__sstream *h, edo_cx *cx, void *buf, size_t len, ssize_t *n);
/* The peek future over a handle (NULL: -EINVAL at the first poll). */
edo_future *edo__sstream_peek(edo_peek_fut *f, edo__sstream *h, void *buf, size_t len);
/* recv(MSG_PEEK): the data stays for the next read. */
edo_poll edo__sstream_poll_peek(edo__sstream *h, edo_cx *cx, void *buf, size_t len, ssize_t *n);
edo_poll edo__sstream_poll_write(edo__sstream *h, edo_cx *cx, const void *buf, size_t len,
				 ssize_t *n);
edo_poll edo__sstream_poll_writev(edo__sstream *h, edo_cx *cx, const struct iovec *iov, int iovcnt,
				  ssize_t *n);
ssize_t edo__sstream_try_read(edo__sstream *h, void *buf, size_t len);
ssize_t edo__sstream_try_write(edo__sstream *h, const void *buf, size_t len);
int edo__sstream_shutdown(edo__sstream *h, int how);
int edo__sstream_split(edo__sstream *h, edo__sstream **rd, edo__sstream **wr);
/* edo__sock_into_fd() for a stream handle; on success the handle is freed. */
int edo__sstream_into_fd(edo__sstream *h);
void edo__sstream_close(edo__sstream *h);
void edo__sstream_drop(edo__sstream *h);

#endif /* EDO_NET_SOCKET_H */
