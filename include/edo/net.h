/* Edo — networking: TCP, UDP and Unix sockets on the runtime's reactor,
 * and address resolution.
 *
 *     edo_addr a;
 *     edo_addr_parse(&a, "127.0.0.1:8080");
 *     edo_tcp_listener *l;
 *     int rc = edo_tcp_listener_bind(&a, NULL, &l);
 *     ...                                  // in a coroutine:
 *     EDO_AWAIT_POLL(edo_tcp_listener_poll_accept(self->l, cx, &self->s, &self->peer, &self->rc));
 *     EDO_AWAIT_POLL(edo_tcp_stream_poll_read(self->s, cx, self->buf, sizeof self->buf, &self->n));
 *     EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->s), self->buf, self->n));
 *     edo_tcp_stream_close(self->s);
 *
 * Every socket is non-blocking, close-on-exec (a socket taken over by a
 * _from_fd() constructor keeps its own close-on-exec flag), and registered
 * once with the reactor of the runtime it was made in (edge-triggered
 * epoll).  Making
 * one needs a runtime context: a task, or edo_block_on (else
 * EDO_ENORUNTIME; EDO_ESHUTDOWN once the runtime is shutting down).  That
 * is checked first: a bind, connect or listen that fails so does nothing
 * (no socket file is created, no listener sees a connection), and a Unix
 * bind that fails later removes the file it created.  Streams are
 * edo_streams (edo/stream.h), so every stream utility works on them.
 *
 * Errors are negative: -errno from the system call (-ECONNREFUSED,
 * -ECONNRESET, -EPIPE, -EADDRINUSE, ...; writing to a reset connection
 * never raises SIGPIPE), -EBADF for a socket that was closed, EDO_ESHUTDOWN
 * once the runtime shut down, -EINVAL for bad input (which changes nothing):
 * a NULL handle, a NULL buffer with a nonzero length, a NULL iovec array
 * with a nonzero count (or an iovec with a NULL base and a length).  A poll
 * function given a NULL result pointer (@n, @rc) has nowhere to report the
 * error: it returns READY at once and does nothing.
 *
 * Lifetime.  A socket is reference-counted: each handle holds a reference
 * and the descriptor is closed when the last one is released, so a task
 * that still holds a handle never sees its descriptor reused.
 *   _drop()   releases one handle.
 *   _close()  closes the socket for every handle now -- operations pending
 *             on other handles (another task's read, accept or recv) wake
 *             up and fail with -EBADF, as do later ones, the option,
 *             address, connect and _fd() functions included -- and releases
 *             this handle.  The socket is shut down both ways at once (a
 *             stream's peer sees the end; a listener refuses new
 *             connections), except a listener or datagram socket taken
 *             over by a _from_fd() constructor: another process may hold
 *             the same socket (systemd holds an activated listener), so it
 *             is left as it is, and its descriptor closes with the last
 *             handle.  For a socket with a single handle the two are the
 *             same.
 * edo_tcp_stream_into_split() makes two handles of a stream (a read half
 * and a write half) for two tasks; the listener and datagram sockets are
 * shared through _clone() (another reference to the same socket).
 *
 * Waiting.  Poll functions (_poll_read, _poll_accept, _poll_recv_from, ...)
 * keep no state: call again until READY.  Each socket has one waiter slot
 * per direction: one task at a time may wait to read (or accept, or
 * receive) and one to write (or send) through them; a second one waiting in
 * the same direction takes the slot over.  For a listener or a datagram
 * socket that several tasks share, use the operation futures instead
 * (edo_tcp_listener_accept(), edo_unix_listener_accept(), edo_udp_recv_from()
 * and the other edo_dgram_fut functions: Tokio's accept(&self),
 * recv_from(&self)): any number of them may wait on one socket, from any
 * tasks on any threads.  Readiness futures (edo_net_ready) may also wait in
 * any number.  Every operation that finds its socket ready takes a unit of
 * the task's cooperative budget.  A poll that is dropped while pending (its
 * task cancelled, its frame dropped) leaves the socket usable: the next poll
 * from any task works.
 *
 * Thread-safety: one task per direction per socket at a time through the
 * _poll_ functions (above); the operation and readiness futures in any
 * number; _close, _drop, _clone and the option functions may be called from
 * any thread.  Different sockets are independent.
 */
#ifndef EDO_NET_H
#define EDO_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "edo/future.h"
#include "edo/io.h"
#include "edo/stream.h"
#include "edo/task.h"
#include "edo/time.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== addresses ========================================================================== */

/** A socket address (IPv4, IPv6 or Unix) and its length, by value. */
typedef struct edo_addr {
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
		struct sockaddr_un un;
		struct sockaddr_storage ss;
	} u;
	socklen_t len;
} edo_addr;

/** Longest text edo_addr_format() writes, with its NUL ("[v6%scope]:port", a Unix path). */
#define EDO_ADDR_STRLEN 128

/**
 * edo_addr_ip() - @ip ("127.0.0.1", "::1", "fe80::1%lo", "fe80::1%2") and
 * @port.  An IPv6 scope is an interface name or a decimal index (digits
 * only: no sign, no space).  0 or -EINVAL.
 */
int edo_addr_ip(edo_addr *a, const char *ip, uint16_t port);

/**
 * edo_addr_parse() - "1.2.3.4:80" or "[::1]:80" ("[fe80::1%lo]:80").
 * Brackets go around an IPv6 address and only there; the port is decimal
 * digits only (no sign, no space), at most 65535.  0, or -EINVAL (and *@a
 * is untouched).
 */
int edo_addr_parse(edo_addr *a, const char *s);

/**
 * edo_addr_unix() - a Unix socket path; a leading '@' names an address in
 * the abstract namespace (Linux).  sun_path holds 108 bytes: a path of 1 to
 * 107 bytes (and its NUL), or '@' and a name of 1 to 107 bytes (the '@'
 * becomes the leading NUL; no NUL follows the name).  0, or -EINVAL if it
 * is empty or too long.
 */
int edo_addr_unix(edo_addr *a, const char *path);

/** edo_addr_format() - "1.2.3.4:80", "[::1]:80", the path, or "@name"; -ENOSPC if @len is short. */
int edo_addr_format(const edo_addr *a, char *buf, size_t len);

/** edo_addr_port() - the port of an IP address (0 for others). */
uint16_t edo_addr_port(const edo_addr *a);

/** edo_addr_family() - AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC. */
int edo_addr_family(const edo_addr *a);

/** edo_addr_equal() - same family, address and port (or path). */
bool edo_addr_equal(const edo_addr *a, const edo_addr *b);

/* ==== address resolution ================================================================== */

/**
 * edo_lookup_host() - resolve @host (a name or an IP literal) and @port to
 * the addresses to try, in getaddrinfo(3) order.  Names are resolved with
 * getaddrinfo on the runtime's blocking pool; literals at once.  Outputs:
 * rc = 0, -ENOENT (no such host), -EAGAIN (temporary failure), -ENOMEM or
 * -EINVAL; addrs/count = the addresses (free() addrs when done).
 * Cancel-safe: dropping it abandons the lookup (the blocking job finishes
 * on its own and frees what it made).
 */
typedef struct edo_lookup_fut {
	edo_future base;
	int rc;
	edo_addr *addrs;
	size_t count;
	/* private */
	struct edo__lookup_job *job_;
	edo_join *join_;
	char *host_;
	uint16_t port_;
	int type_;
} edo_lookup_fut;
edo_future *edo_lookup_host(edo_lookup_fut *f, const char *host, uint16_t port);

/* ==== readiness of any socket ============================================================== */

/**
 * edo_net_ready - wait until a socket has any of @interest's readiness
 * (EDO_INTEREST_READABLE / _WRITABLE / _PRIORITY, from edo/io.h: priority
 * is a TCP socket's urgent data, EPOLLPRI); any number may wait on one
 * socket.  No interest, or another bit, is -EINVAL.  Outputs: rc = 0 or an
 * error (-EBADF closed, EDO_ESHUTDOWN); ready = EDO_READY_* bits.  Readiness may be spurious: follow it with a
 * try_ operation, which returns -EAGAIN if the socket was not ready after
 * all.  Cancel-safe.  The socket must outlive the future.
 */
typedef struct edo_net_ready_fut {
	edo_future base;
	int rc;
	uint32_t ready;
	/* private */
	struct edo__sock *sock_;
	edo_io_waiter_ waiter_;
} edo_net_ready_fut;

/* ==== operation futures: any number of waiters ================================================ */

/* Private: an operation's wait through its socket's readiness list, and
 * an accept's own back-off. */
typedef struct edo_net_wait_ {
	edo_net_ready_fut ready;
	bool armed;
} edo_net_wait_;

typedef struct edo_net_backoff_ {
	edo_sleep sleep;
	unsigned ms; /* the last back-off; 0 after a successful accept */
	bool active;
} edo_net_backoff_;

/**
 * Operation futures.  An accept, send or receive as a future that waits
 * through its socket's readiness list (as edo_net_ready_fut does), so that
 * any number of them, in any tasks on any threads, may wait on one socket
 * or its clones at once (Tokio's TcpListener::accept(&self),
 * UdpSocket::recv_from(&self)).  When the socket becomes ready every waiter
 * is woken; each tries its syscall, and those that find nothing left (EAGAIN)
 * wait for the next edge.  Cancel-safe: the syscall runs only in the poll
 * that completes, so a future dropped while pending has taken no connection
 * and moved no datagram.  Each readiness it finds takes a unit of the task's
 * cooperative budget.  Closing the socket (any holder's _close) completes
 * every waiting future with -EBADF (an accept future backing off sees it
 * when its timer fires, within 100 ms); a runtime shutting down, with
 * EDO_ESHUTDOWN.  The futures borrow the handle they were made with: that
 * handle, and the buffer, must outlive the future.  Since _close releases
 * its caller's handle too, close through a handle of your own (a clone)
 * rather than through one that other tasks' futures borrow.  Bad input
 * completes at the first poll with -EINVAL, touching nothing.  Outputs
 * other than the result (an accept's stream and peer, a receive's from)
 * are meaningful only on success.
 */

/* ==== TCP ==================================================================================== */

typedef struct edo_tcp_listener edo_tcp_listener;
typedef struct edo_tcp_stream edo_tcp_stream;

/** Options of edo_tcp_listener_bind(); zero them for the defaults. */
typedef struct edo_tcp_bind_opts {
	int backlog;    /**< listen(2) backlog; 0 = 1024 */
	bool reuseport; /**< SO_REUSEPORT: several listeners share the port */
	bool v6only;    /**< IPV6_V6ONLY for an IPv6 address (default: dual stack) */
} edo_tcp_bind_opts;

/**
 * edo_tcp_listener_bind() - listen on @addr (port 0: any free port; read it
 * with edo_tcp_listener_local_addr()), with SO_REUSEADDR.  @opts may be NULL.
 */
int edo_tcp_listener_bind(const edo_addr *addr, const edo_tcp_bind_opts *opts,
			  edo_tcp_listener **out);

/**
 * edo_tcp_listener_from_fd() - a listener over @fd, a listening TCP socket
 * made elsewhere (Tokio's from_std): one inherited across exec, passed by
 * systemd socket activation (fd 3 on), or set up with options Edo does not
 * set.  @fd must be an AF_INET or AF_INET6 TCP socket that listen(2) was
 * called on.  On success the listener owns @fd (its close closes it) and
 * @fd is in non-blocking mode (a file status flag: shared with any
 * duplicate of @fd); its close-on-exec flag is left as it is.  Returns 0,
 * or -EINVAL (a negative @fd, a NULL @out, a socket not listening),
 * EDO_ENORUNTIME, EDO_ESHUTDOWN, -EBADF (@fd is not open), -ENOTSOCK (not
 * a socket), -EPROTOTYPE (a socket of another kind: UDP, Unix, SCTP...;
 * Multipath TCP is TCP), -EEXIST (@fd is registered with this runtime
 * already, as an Edo socket or edo_async_fd), or -ENOMEM; on failure @fd is
 * left as it was (open, its flags unchanged, not registered).  The same
 * holds for every _from_fd() below, each for its own kind of socket.  One
 * descriptor is taken over once: by two runtimes, it would be closed twice
 * (a second runtime cannot see the first's registration).
 */
int edo_tcp_listener_from_fd(int fd, edo_tcp_listener **out);

/**
 * edo_tcp_listener_poll_accept() - accept a connection.  READY: *@rc = 0
 * with *@out the new stream and *@peer its address (@peer may be NULL), or
 * *@rc < 0.  Transient errors (a connection aborted before it was
 * accepted) are skipped.  When the process or system is out of
 * descriptors (EMFILE, ENFILE) or kernel memory (accept(2)'s ENOMEM,
 * ENOBUFS), the listener backs off (a timer of 1 ms, doubling up to
 * 100 ms) and retries by itself until descriptors are freed: the poll stays
 * PENDING meanwhile, and never spins (a close of the listener meanwhile is
 * seen when the back-off timer fires: -EBADF within 100 ms).  If the new stream's own memory
 * cannot be allocated after accept(2), that connection is closed (the
 * client sees a reset) and the poll completes with *@rc = -ENOMEM; the
 * listener stays usable.  Cancel-safe.
 */
edo_poll edo_tcp_listener_poll_accept(edo_tcp_listener *l, edo_cx *cx, edo_tcp_stream **out,
				      edo_addr *peer, int *rc);

/**
 * edo_tcp_listener_accept() - an operation future (above) that accepts one
 * connection from @l; any number may wait on one listener and its clones.
 * Outputs: rc = 0 with stream (yours to drop or close) and peer, or the
 * error with stream NULL, as edo_tcp_listener_poll_accept(): transient
 * errors are skipped,
 * and out of descriptors or memory the future backs off on its own timer
 * (1 ms, doubling up to 100 ms) and retries, staying pending meanwhile.
 * -EINVAL at the first poll for a NULL @l.
 */
typedef struct edo_tcp_accept_fut {
	edo_future base;
	int rc;
	edo_tcp_stream *stream;
	edo_addr peer;
	/* private */
	edo_tcp_listener *l_;
	edo_net_wait_ wait_;
	edo_net_backoff_ backoff_;
} edo_tcp_accept_fut;
edo_future *edo_tcp_listener_accept(edo_tcp_accept_fut *f, edo_tcp_listener *l);

/** edo_tcp_listener_local_addr() - the bound address.  0 or -errno. */
int edo_tcp_listener_local_addr(edo_tcp_listener *l, edo_addr *out);

/** edo_tcp_listener_clone() - another reference to @l (for another task). */
edo_tcp_listener *edo_tcp_listener_clone(edo_tcp_listener *l);

/**
 * edo_tcp_listener_into_fd() - give the descriptor back (Tokio's
 * into_std): @l is deregistered and freed, and its descriptor returned,
 * open, still non-blocking, yours to close.  Only from the last handle:
 * -EBUSY while a clone is alive, -EBADF once closed, -EINVAL for NULL; on
 * failure nothing changes.  No future made from it (an accept, a
 * readiness future) may still be pending: drop them first, as before a
 * close.  Thread-safe, and needs no runtime.  The same for every
 * _into_fd() below (a stream split in halves: the last half left, whose
 * direction the other half's drop may have shut down already).
 */
int edo_tcp_listener_into_fd(edo_tcp_listener *l);

/** edo_tcp_listener_close() - stop listening for every holder (their accepts fail with -EBADF; one
 *  taken over from a descriptor keeps its kernel socket until the last handle goes: "Lifetime",
 *  above); release @l.  NULL: no-op. */
void edo_tcp_listener_close(edo_tcp_listener *l);

/** edo_tcp_listener_drop() - release @l.  NULL: no-op. */
void edo_tcp_listener_drop(edo_tcp_listener *l);

/** edo_tcp_listener_fd() - the descriptor (for options Edo has no function for); -EBADF once closed. */
int edo_tcp_listener_fd(const edo_tcp_listener *l);

/**
 * edo_tcp_connect() - connect to @addr; edo_tcp_connect_addrs() to the
 * first of @count addresses (copied) that accepts, trying each in turn;
 * edo_tcp_connect_host() to @host:@port, resolved on the blocking pool
 * (edo_lookup_host), then each of its addresses in turn.  Outputs: rc = 0
 * with stream the connected stream, or the error (the last address's;
 * -EINVAL at once for a NULL, empty or non-IP address list; EDO_ENORUNTIME
 * or EDO_ESHUTDOWN, before any connection is tried, when polled outside a
 * runtime or in one shutting down).  Cancel-safe:
 * a dropped connect closes its half-made socket.
 */
typedef struct edo_tcp_connect_fut {
	edo_future base;
	int rc;
	edo_tcp_stream *stream;
	/* private */
	edo_lookup_fut lookup_;
	edo_addr addr_;
	edo_tcp_stream *pending_;
	struct edo_tcp_socket *sock_;
	size_t next_;
	int state_;
} edo_tcp_connect_fut;
edo_future *edo_tcp_connect(edo_tcp_connect_fut *f, const edo_addr *addr);
edo_future *edo_tcp_connect_addrs(edo_tcp_connect_fut *f, const edo_addr *addrs, size_t count);
edo_future *edo_tcp_connect_host(edo_tcp_connect_fut *f, const char *host, uint16_t port);

/*
 * A TCP socket set up before it connects or listens (Tokio's TcpSocket):
 * for what must be set first, as a local address to connect from, buffer
 * sizes (the window scale is fixed at the handshake), SO_REUSEPORT.
 *
 *     edo_tcp_socket *s;
 *     edo_tcp_socket_new(AF_INET, &s);
 *     edo_tcp_socket_set_recv_buffer_size(s, 1 << 20);
 *     edo_tcp_socket_bind(s, &local);              // connect from here
 *     EDO_AWAIT(edo_tcp_socket_connect(&self->c, s, &server));
 *     // self->c.rc, self->c.stream as for edo_tcp_connect()
 *
 * Making and setting one up needs no runtime (nor is it registered until
 * it connects or listens); the functions return 0 (or the value asked
 * for) or -errno, and -EINVAL for a NULL @s.
 */
typedef struct edo_tcp_socket edo_tcp_socket;

/** edo_tcp_socket_new() - a TCP socket of @family (AF_INET or AF_INET6; another: -EINVAL),
 *  non-blocking and close-on-exec. */
int edo_tcp_socket_new(int family, edo_tcp_socket **out);
/** edo_tcp_socket_free() - close a socket that was never connected or made a listener.  NULL: no-op. */
void edo_tcp_socket_free(edo_tcp_socket *s);
/** edo_tcp_socket_set_reuseaddr() - SO_REUSEADDR (a listener's port free at once after a restart). */
int edo_tcp_socket_set_reuseaddr(edo_tcp_socket *s, bool on);
/** edo_tcp_socket_set_reuseport() - SO_REUSEPORT (several sockets bound to one port). */
int edo_tcp_socket_set_reuseport(edo_tcp_socket *s, bool on);
/** edo_tcp_socket_set_v6only() - IPV6_V6ONLY on an AF_INET6 socket (before bind). */
int edo_tcp_socket_set_v6only(edo_tcp_socket *s, bool on);
/** edo_tcp_socket_set_nodelay() - TCP_NODELAY, inherited by the stream it connects. */
int edo_tcp_socket_set_nodelay(edo_tcp_socket *s, bool on);
/** edo_tcp_socket_set_keepalive() - SO_KEEPALIVE, inherited by the stream it connects. */
int edo_tcp_socket_set_keepalive(edo_tcp_socket *s, bool on);
/** edo_tcp_socket_set_send_buffer_size() - SO_SNDBUF (the kernel doubles it; over INT_MAX: -EINVAL). */
int edo_tcp_socket_set_send_buffer_size(edo_tcp_socket *s, unsigned size);
/** edo_tcp_socket_set_recv_buffer_size() - SO_RCVBUF, as above; set it before connecting. */
int edo_tcp_socket_set_recv_buffer_size(edo_tcp_socket *s, unsigned size);
/** edo_tcp_socket_send_buffer_size() - SO_SNDBUF as the kernel has it: bytes, or -errno. */
int edo_tcp_socket_send_buffer_size(const edo_tcp_socket *s);
/** edo_tcp_socket_recv_buffer_size() - SO_RCVBUF as the kernel has it: bytes, or -errno. */
int edo_tcp_socket_recv_buffer_size(const edo_tcp_socket *s);
/** edo_tcp_socket_bind() - bind to @addr (an IP address; port 0: any free port). */
int edo_tcp_socket_bind(edo_tcp_socket *s, const edo_addr *addr);
/** edo_tcp_socket_local_addr() - the bound address (0.0.0.0:0, or [::]:0, before a bind). */
int edo_tcp_socket_local_addr(const edo_tcp_socket *s, edo_addr *out);
/** edo_tcp_socket_fd() - the descriptor, for an option this interface lacks. */
int edo_tcp_socket_fd(const edo_tcp_socket *s);
/**
 * edo_tcp_socket_listen() - make @s a listener (@backlog 0 = 1024) on the
 * current runtime.  On success @s is gone: its descriptor is the
 * listener's.  On failure (-EINVAL, EDO_ENORUNTIME, EDO_ESHUTDOWN, -ENOTSUP,
 * checked before it listens; -ENOMEM; listen(2)'s -errno; the reactor's
 * -errno, after which it stops listening again) @s is still the caller's,
 * not listening, to free or use again.
 */
int edo_tcp_socket_listen(edo_tcp_socket *s, int backlog, edo_tcp_listener **out);
/**
 * edo_tcp_socket_connect() - connect @s to @addr, as edo_tcp_connect()
 * (an edo_tcp_connect_fut, the same outputs).  The future takes @s over at
 * once: it becomes the stream, or is closed when the connect fails or the
 * future is dropped (any result but the bad input below means the socket
 * is gone).  Bad input (a NULL @s; a NULL or non-IP @addr, or one of
 * another family than @s's) is not taken: the future completes with
 * -EINVAL and @s is still the caller's.
 */
edo_future *edo_tcp_socket_connect(edo_tcp_connect_fut *f, edo_tcp_socket *s, const edo_addr *addr);

/**
 * edo_tcp_stream_from_fd() - a stream over @fd, a TCP socket made
 * elsewhere (a listening one: -EINVAL), as edo_tcp_listener_from_fd(): the
 * stream owns @fd on success; on failure @fd is left as it was.  @fd is
 * normally connected; one whose non-blocking connect is still in progress
 * works too (the first write waits for the connection, and a connection
 * refused is that write's error), and one never connected fails its reads
 * with -ENOTCONN and its writes with -EPIPE.
 */
int edo_tcp_stream_from_fd(int fd, edo_tcp_stream **out);

/** edo_tcp_stream_io() - @s as an edo_stream (for the utilities of edo/stream.h). */
edo_stream *edo_tcp_stream_io(edo_tcp_stream *s);

/** edo_tcp_stream_poll_read() - read up to @len bytes; *@n: bytes (0: the peer shut down) or error. */
edo_poll edo_tcp_stream_poll_read(edo_tcp_stream *s, edo_cx *cx, void *buf, size_t len, ssize_t *n);

/** edo_tcp_stream_poll_write() - write up to @len bytes; *@n: bytes written or error. */
edo_poll edo_tcp_stream_poll_write(edo_tcp_stream *s, edo_cx *cx, const void *buf, size_t len,
				   ssize_t *n);

/** edo_tcp_stream_poll_write_vectored() - write from @iovcnt buffers (sendmsg). */
edo_poll edo_tcp_stream_poll_write_vectored(edo_tcp_stream *s, edo_cx *cx, const struct iovec *iov,
					    int iovcnt, ssize_t *n);

/**
 * edo_tcp_stream_poll_peek() - as edo_tcp_stream_poll_read(), but the bytes
 * stay in the socket for the next read (recv(2) with MSG_PEEK; Tokio's
 * poll_peek).  READY once at least one byte (or the end, 0) is there: it
 * does not wait for @len bytes (with @len 0 it is READY with 0 whenever
 * data is there, as Tokio's).  It waits in the read direction's waker
 * slot, shared with poll_read: one task at a time (edo_tcp_stream_peek()
 * for several).  A read half may peek; a write half gets -EBADF.
 */
edo_poll edo_tcp_stream_poll_peek(edo_tcp_stream *s, edo_cx *cx, void *buf, size_t len, ssize_t *n);

/**
 * edo_peek_fut - an operation future (above) that peeks at a stream, as
 * poll_peek does, waiting in the readiness list instead of the read
 * waker slot: any number may wait on one stream, beside its reader
 * (Tokio's peek(&self)).  Output: n = the bytes seen (they stay for the
 * next read), 0 at the end, or -errno (-EINVAL for a NULL stream or a
 * NULL @buf with a nonzero @len, -EBADF for a write half or once closed).
 * It holds on to the stream's socket, not to the handle: once made, it
 * needs the socket to live on (some handle of it), not @s itself, so
 * closing the half it was made with, while the other half lives, ends it
 * with -EBADF.  Closing a stream's only handle while peeks borrow it
 * frees what they wait on: end them first, or close through another half.
 */
typedef struct edo_peek_fut {
	edo_future base;
	ssize_t n;
	/* private */
	struct edo__sock *sock_;
	void *buf_;
	size_t len_;
	edo_net_wait_ wait_;
} edo_peek_fut;

/** edo_tcp_stream_peek() - an edo_peek_fut on @s. */
edo_future *edo_tcp_stream_peek(edo_peek_fut *f, edo_tcp_stream *s, void *buf, size_t len);

/** edo_tcp_stream_try_read() - read without waiting: bytes, 0 at EOF, -EAGAIN, or error. */
ssize_t edo_tcp_stream_try_read(edo_tcp_stream *s, void *buf, size_t len);

/** edo_tcp_stream_try_write() - write without waiting: bytes, -EAGAIN, or error. */
ssize_t edo_tcp_stream_try_write(edo_tcp_stream *s, const void *buf, size_t len);

/**
 * edo_net_io_fn - a syscall of your own on a socket's descriptor, for the
 * _try_io() and _poll_io() functions (Tokio's try_io and async_io):
 * sendmsg or recvmsg with ancillary data (SCM_RIGHTS), MSG_ZEROCOPY,
 * recvmmsg...  It returns its result (>= 0) or a negative errno, -EAGAIN
 * when the socket is not ready (the descriptor is non-blocking).
 */
typedef ssize_t (*edo_net_io_fn)(int fd, void *ctx);

/**
 * edo_tcp_stream_try_io() - call @fn(fd, @ctx) once as an operation of
 * @interest (EDO_INTEREST_READABLE or EDO_INTEREST_WRITABLE; another, or a
 * NULL @fn: -EINVAL) and return what it returned, -EINTR included; when
 * that is -EAGAIN, the readiness seen before the call is cleared, so that
 * a readiness future (edo_tcp_stream_ready()) waits for the next edge.
 * -EBADF once closed, or for a half of the other direction (after the
 * -EINVAL checks).  @fn is called whether or not readiness was seen.
 */
ssize_t edo_tcp_stream_try_io(edo_tcp_stream *s, uint32_t interest, edo_net_io_fn fn, void *ctx);

/**
 * edo_tcp_stream_poll_io() - wait until @s is ready for @interest, then
 * call @fn as edo_tcp_stream_try_io() does, waiting again while it says
 * -EAGAIN and calling it again after -EINTR; READY with *@n its result
 * (or -EBADF, EDO_ESHUTDOWN, -EINVAL as above; a result <= 0 on a socket
 * closed meanwhile reads -EBADF).  Only -EAGAIN clears the readiness.  It
 * waits in @interest's waker slot (one task at a time, shared with
 * poll_read or poll_write) and takes a unit of the task's budget per
 * attempt, given back for an -EAGAIN that cleared the readiness, so that a
 * function interrupted or unready again and again still lets the task
 * yield.
 */
edo_poll edo_tcp_stream_poll_io(edo_tcp_stream *s, edo_cx *cx, uint32_t interest, edo_net_io_fn fn,
				void *ctx, ssize_t *n);

/** edo_tcp_stream_ready() - a readiness future for @s (see edo_net_ready_fut). */
edo_future *edo_tcp_stream_ready(edo_net_ready_fut *f, edo_tcp_stream *s, uint32_t interest);

/**
 * edo_tcp_stream_shutdown() - shut down reading (SHUT_RD), writing
 * (SHUT_WR: the peer reads end of stream) or both.  0, -EINVAL (another
 * @how), -EBADF (closed, or a half of edo_tcp_stream_into_split() asked to
 * shut down the other direction: a read half has no writes to end, so the
 * stream interface's poll_shutdown fails on it too), or -errno.
 */
int edo_tcp_stream_shutdown(edo_tcp_stream *s, int how);

/** edo_tcp_stream_set_nodelay() - TCP_NODELAY (no Nagle delay for small writes).  0 or -errno. */
int edo_tcp_stream_set_nodelay(edo_tcp_stream *s, bool on);
/** edo_tcp_stream_nodelay() - whether TCP_NODELAY is on: 1, 0, or -errno. */
int edo_tcp_stream_nodelay(edo_tcp_stream *s);
/**
 * edo_tcp_stream_set_keepalive() - SO_KEEPALIVE; with @on and @idle_s > 0
 * also TCP_KEEPIDLE (seconds; set first: a value the kernel refuses, e.g.
 * over 32767, gives its -errno and changes nothing).  0 or -errno.
 */
int edo_tcp_stream_set_keepalive(edo_tcp_stream *s, bool on, int idle_s);
/** edo_tcp_stream_set_linger() - SO_LINGER: @seconds >= 0 enables it (0: reset on close), < 0 disables. */
int edo_tcp_stream_set_linger(edo_tcp_stream *s, int seconds);
/**
 * edo_tcp_stream_set_ttl() - IP_TTL; on an IPv6 socket IPV6_UNICAST_HOPS,
 * and IP_TTL too for the IPv4 peers of a dual-stack socket.  0 or -errno.
 */
int edo_tcp_stream_set_ttl(edo_tcp_stream *s, int ttl);
/** edo_tcp_stream_local_addr() - this end's address.  0 or -errno. */
int edo_tcp_stream_local_addr(edo_tcp_stream *s, edo_addr *out);
/** edo_tcp_stream_peer_addr() - the peer's address.  0 or -errno (-ENOTCONN). */
int edo_tcp_stream_peer_addr(edo_tcp_stream *s, edo_addr *out);
/** edo_tcp_stream_fd() - the descriptor (for options Edo has no function for); -EBADF once closed. */
int edo_tcp_stream_fd(const edo_tcp_stream *s);

/**
 * edo_tcp_stream_into_split() - turn @s into a read half and a write half,
 * separate handles that two tasks may use at once (reads on the write half
 * and writes on the read half fail with -EBADF).  @s is consumed.
 * Dropping the write half shuts writing down (the peer reads end of
 * stream); the socket closes when both halves are dropped; closing either
 * (edo_tcp_stream_close) closes it for both.  0, -EINVAL (also for @rd
 * and @wr the same pointer) or -ENOMEM (then @s is untouched).
 */
int edo_tcp_stream_into_split(edo_tcp_stream *s, edo_tcp_stream **rd, edo_tcp_stream **wr);

/** edo_tcp_stream_into_fd() - the descriptor back, as edo_tcp_listener_into_fd(). */
int edo_tcp_stream_into_fd(edo_tcp_stream *s);

/**
 * edo_tcp_stream_take_error() - the socket's pending error (SO_ERROR), which
 * the kernel then clears: 0, the error as -errno (-ECONNREFUSED for a
 * connect in progress that failed), -EBADF once closed, -EINVAL for NULL.
 */
int edo_tcp_stream_take_error(edo_tcp_stream *s);

/** edo_tcp_stream_close() - close the connection for every handle; release @s.  NULL: no-op. */
void edo_tcp_stream_close(edo_tcp_stream *s);

/** edo_tcp_stream_drop() - release @s (a write half shuts writing down first).  NULL: no-op. */
void edo_tcp_stream_drop(edo_tcp_stream *s);

/* ==== UDP ===================================================================================== */

typedef struct edo_udp_socket edo_udp_socket;

/** edo_udp_bind() - a UDP socket bound to @addr (port 0: any). */
int edo_udp_bind(const edo_addr *addr, edo_udp_socket **out);

/**
 * edo_udp_from_fd() - a UDP socket over @fd, an AF_INET or AF_INET6 UDP
 * socket made elsewhere (bound or not, connected or not), as
 * edo_tcp_listener_from_fd(): owned on success; left as it was on failure.
 */
int edo_udp_from_fd(int fd, edo_udp_socket **out);

/** edo_udp_connect() - set the default peer (and filter what is received).  0 or -errno. */
int edo_udp_connect(edo_udp_socket *u, const edo_addr *addr);

/** edo_udp_poll_send() - send one datagram to the connected peer; *@n: bytes or error. */
edo_poll edo_udp_poll_send(edo_udp_socket *u, edo_cx *cx, const void *buf, size_t len, ssize_t *n);
/** edo_udp_poll_recv() - receive one datagram (truncated to @len); *@n: its bytes or error. */
edo_poll edo_udp_poll_recv(edo_udp_socket *u, edo_cx *cx, void *buf, size_t len, ssize_t *n);
/** edo_udp_poll_send_to() - send one datagram to @to. */
edo_poll edo_udp_poll_send_to(edo_udp_socket *u, edo_cx *cx, const void *buf, size_t len,
			      const edo_addr *to, ssize_t *n);
/** edo_udp_poll_recv_from() - receive one datagram and its sender (@from may be NULL). */
edo_poll edo_udp_poll_recv_from(edo_udp_socket *u, edo_cx *cx, void *buf, size_t len,
				edo_addr *from, ssize_t *n);
/** edo_udp_try_send_to() - send without waiting (@to NULL: the connected peer): bytes, -EAGAIN, or error. */
ssize_t edo_udp_try_send_to(edo_udp_socket *u, const void *buf, size_t len, const edo_addr *to);
/** edo_udp_try_recv_from() - receive without waiting: the datagram's bytes, -EAGAIN, or error. */
ssize_t edo_udp_try_recv_from(edo_udp_socket *u, void *buf, size_t len, edo_addr *from);
/**
 * edo_udp_poll_peek_from() - as edo_udp_poll_recv_from(), but the datagram
 * stays queued: the next receive (or peek) gets it again (MSG_PEEK;
 * Tokio's poll_peek_from).  With a @len shorter than the datagram, the
 * first @len bytes; with @len 0, just the sender (*@n 0).
 */
edo_poll edo_udp_poll_peek_from(edo_udp_socket *u, edo_cx *cx, void *buf, size_t len,
				edo_addr *from, ssize_t *n);
/** edo_udp_try_peek_from() - peek without waiting: the datagram's bytes (it stays queued), -EAGAIN, or error. */
ssize_t edo_udp_try_peek_from(edo_udp_socket *u, void *buf, size_t len, edo_addr *from);
/** edo_udp_ready() - a readiness future for @u (see edo_net_ready_fut). */
edo_future *edo_udp_ready(edo_net_ready_fut *f, edo_udp_socket *u, uint32_t interest);

/**
 * edo_dgram_fut - an operation future (above) that sends or receives one
 * datagram on a UDP or Unix datagram socket; any number may wait on one
 * socket and its clones.  Outputs: n = the bytes sent, or the received
 * datagram's bytes (truncated to the buffer, as recv(2)), or -errno;
 * from = the sender, for the _recv_from and _peek_from functions.  A NULL
 * buffer with length 0 is an empty datagram.  Made by edo_udp_send(),
 * edo_udp_recv(), edo_udp_send_to(), edo_udp_recv_from(),
 * edo_udp_peek_from() and the edo_unix_datagram_ functions of the same
 * names.
 */
typedef struct edo_dgram_fut {
	edo_future base;
	ssize_t n;
	edo_addr from;
	/* private */
	struct edo__sock *sock_;
	void *buf_;
	size_t len_;
	edo_addr to_;
	unsigned op_;
	edo_net_wait_ wait_;
} edo_dgram_fut;

/** edo_udp_send() - send @buf[0..@len) to the connected peer (edo_dgram_fut). */
edo_future *edo_udp_send(edo_dgram_fut *f, edo_udp_socket *u, const void *buf, size_t len);
/** edo_udp_recv() - receive one datagram into @buf (edo_dgram_fut). */
edo_future *edo_udp_recv(edo_dgram_fut *f, edo_udp_socket *u, void *buf, size_t len);
/** edo_udp_send_to() - send @buf[0..@len) to @to (copied; NULL is -EINVAL) (edo_dgram_fut). */
edo_future *edo_udp_send_to(edo_dgram_fut *f, edo_udp_socket *u, const void *buf, size_t len,
			    const edo_addr *to);
/** edo_udp_recv_from() - receive one datagram into @buf, its sender into `from` (edo_dgram_fut). */
edo_future *edo_udp_recv_from(edo_dgram_fut *f, edo_udp_socket *u, void *buf, size_t len);
/** edo_udp_peek_from() - as edo_udp_recv_from(), but the datagram stays queued (edo_dgram_fut). */
edo_future *edo_udp_peek_from(edo_dgram_fut *f, edo_udp_socket *u, void *buf, size_t len);

/** edo_udp_set_broadcast() - SO_BROADCAST (sending to a broadcast address).  0 or -errno. */
int edo_udp_set_broadcast(edo_udp_socket *u, bool on);
/** edo_udp_broadcast() - whether SO_BROADCAST is on: 1, 0, or -errno. */
int edo_udp_broadcast(edo_udp_socket *u);
/**
 * edo_udp_set_ttl() - IP_TTL; on an IPv6 socket IPV6_UNICAST_HOPS, and
 * IP_TTL too for the IPv4 destinations of a dual-stack socket.  0 or -errno.
 */
int edo_udp_set_ttl(edo_udp_socket *u, int ttl);
/** edo_udp_join_multicast_v4() - join @group ("224.x.y.z") on the interface with address @iface (NULL: any). */
int edo_udp_join_multicast_v4(edo_udp_socket *u, const char *group, const char *iface);
/** edo_udp_leave_multicast_v4() - leave a group joined with edo_udp_join_multicast_v4(). */
int edo_udp_leave_multicast_v4(edo_udp_socket *u, const char *group, const char *iface);
/** edo_udp_set_multicast_loop_v4() - IP_MULTICAST_LOOP: receive our own multicasts.  0 or -errno. */
int edo_udp_set_multicast_loop_v4(edo_udp_socket *u, bool on);
/** edo_udp_set_multicast_ttl_v4() - IP_MULTICAST_TTL.  0 or -errno. */
int edo_udp_set_multicast_ttl_v4(edo_udp_socket *u, int ttl);
/** edo_udp_join_multicast_v6() - join @group ("ff02::...") on interface index @ifindex (0: default). */
int edo_udp_join_multicast_v6(edo_udp_socket *u, const char *group, unsigned ifindex);
/** edo_udp_leave_multicast_v6() - leave a group joined with edo_udp_join_multicast_v6(). */
int edo_udp_leave_multicast_v6(edo_udp_socket *u, const char *group, unsigned ifindex);
/** edo_udp_set_multicast_loop_v6() - IPV6_MULTICAST_LOOP.  0 or -errno. */
int edo_udp_set_multicast_loop_v6(edo_udp_socket *u, bool on);
/** edo_udp_local_addr() - the bound address.  0 or -errno. */
int edo_udp_local_addr(edo_udp_socket *u, edo_addr *out);
/** edo_udp_peer_addr() - the connected peer.  0 or -errno (-ENOTCONN). */
int edo_udp_peer_addr(edo_udp_socket *u, edo_addr *out);
/** edo_udp_fd() - the descriptor (for options Edo has no function for); -EBADF once closed. */
int edo_udp_fd(const edo_udp_socket *u);
/** edo_udp_clone() - another reference to @u (for another task). */
edo_udp_socket *edo_udp_clone(edo_udp_socket *u);
/** edo_udp_try_io() - your own syscall once, as edo_tcp_stream_try_io(). */
ssize_t edo_udp_try_io(edo_udp_socket *u, uint32_t interest, edo_net_io_fn fn, void *ctx);
/** edo_udp_poll_io() - wait, then your own syscall, as edo_tcp_stream_poll_io(). */
edo_poll edo_udp_poll_io(edo_udp_socket *u, edo_cx *cx, uint32_t interest, edo_net_io_fn fn,
			 void *ctx, ssize_t *n);
/** edo_udp_into_fd() - the descriptor back, as edo_tcp_listener_into_fd(). */
int edo_udp_into_fd(edo_udp_socket *u);
/** edo_udp_take_error() - SO_ERROR, taken, as edo_tcp_stream_take_error() (an ICMP error for a
 *  connected socket: -ECONNREFUSED...). */
int edo_udp_take_error(edo_udp_socket *u);
/** edo_udp_close() - close @u for every holder (their pending polls fail with -EBADF); release @u. */
void edo_udp_close(edo_udp_socket *u);
/** edo_udp_drop() - release @u.  NULL: no-op. */
void edo_udp_drop(edo_udp_socket *u);

/* ==== Unix domain sockets ===================================================================== */

typedef struct edo_unix_listener edo_unix_listener;
typedef struct edo_unix_stream edo_unix_stream;
typedef struct edo_unix_datagram edo_unix_datagram;

/**
 * edo_unix_listener_bind() - listen on the Unix socket @path ('@name':
 * abstract namespace).  A file left at @path is not removed: unlink it
 * first if that is wanted.  @backlog 0 = 1024.  A bind that fails leaves
 * no file at @path (EDO_ENORUNTIME and EDO_ESHUTDOWN are found before
 * anything is made; a later failure removes the file the bind created).
 */
int edo_unix_listener_bind(const char *path, int backlog, edo_unix_listener **out);
/** edo_unix_listener_from_fd() - a listener over @fd, a listening AF_UNIX stream socket made
 *  elsewhere, as edo_tcp_listener_from_fd(). */
int edo_unix_listener_from_fd(int fd, edo_unix_listener **out);
/** edo_unix_listener_poll_accept() - as edo_tcp_listener_poll_accept(), EMFILE back-off included. */
edo_poll edo_unix_listener_poll_accept(edo_unix_listener *l, edo_cx *cx, edo_unix_stream **out,
				       int *rc);
/**
 * edo_unix_listener_accept() - an operation future (above) that accepts one
 * connection from @l, as edo_tcp_listener_accept() (back-off included);
 * any number may wait on one listener and its clones.  Outputs: rc = 0 with
 * stream (yours to drop or close), or the error.
 */
typedef struct edo_unix_accept_fut {
	edo_future base;
	int rc;
	edo_unix_stream *stream;
	/* private */
	edo_unix_listener *l_;
	edo_net_wait_ wait_;
	edo_net_backoff_ backoff_;
} edo_unix_accept_fut;
edo_future *edo_unix_listener_accept(edo_unix_accept_fut *f, edo_unix_listener *l);

/** edo_unix_listener_local_addr() - the bound path (or abstract name).  0 or -errno. */
int edo_unix_listener_local_addr(edo_unix_listener *l, edo_addr *out);
/** edo_unix_listener_clone() - another reference to @l (for another task). */
edo_unix_listener *edo_unix_listener_clone(edo_unix_listener *l);
/** edo_unix_listener_into_fd() - the descriptor back, as edo_tcp_listener_into_fd(). */
int edo_unix_listener_into_fd(edo_unix_listener *l);
/** edo_unix_listener_close() - as edo_tcp_listener_close(); release @l.  NULL: no-op. */
void edo_unix_listener_close(edo_unix_listener *l);
/** edo_unix_listener_drop() - release @l.  NULL: no-op. */
void edo_unix_listener_drop(edo_unix_listener *l);

/**
 * edo_unix_stream_connect() - connect to the listener at @path.  A Unix
 * connect completes at once on Linux, so this does not wait: 0, or -errno
 * (-ECONNREFUSED, -ENOENT, -EAGAIN when the listener's backlog is full),
 * or EDO_ENORUNTIME / EDO_ESHUTDOWN (found before connecting: the listener
 * sees nothing).
 */
int edo_unix_stream_connect(const char *path, edo_unix_stream **out);
/** edo_unix_stream_pair() - two connected streams (socketpair(2)). */
int edo_unix_stream_pair(edo_unix_stream **a, edo_unix_stream **b);
/** edo_unix_stream_from_fd() - a stream over @fd, a connected AF_UNIX stream socket made
 *  elsewhere (one end of a socketpair(2) passed to a child...), as edo_tcp_stream_from_fd();
 *  one not connected: -ENOTCONN. */
int edo_unix_stream_from_fd(int fd, edo_unix_stream **out);
/** edo_unix_stream_io() - @s as an edo_stream (for the utilities of edo/stream.h). */
edo_stream *edo_unix_stream_io(edo_unix_stream *s);
/** edo_unix_stream_poll_read() - as edo_tcp_stream_poll_read(). */
edo_poll edo_unix_stream_poll_read(edo_unix_stream *s, edo_cx *cx, void *buf, size_t len,
				   ssize_t *n);
/** edo_unix_stream_peek() - an edo_peek_fut on @s, as edo_tcp_stream_peek(). */
edo_future *edo_unix_stream_peek(edo_peek_fut *f, edo_unix_stream *s, void *buf, size_t len);
/** edo_unix_stream_poll_peek() - as edo_tcp_stream_poll_peek(): the bytes stay for the next read. */
edo_poll edo_unix_stream_poll_peek(edo_unix_stream *s, edo_cx *cx, void *buf, size_t len,
				   ssize_t *n);
/** edo_unix_stream_poll_write() - as edo_tcp_stream_poll_write(). */
edo_poll edo_unix_stream_poll_write(edo_unix_stream *s, edo_cx *cx, const void *buf, size_t len,
				    ssize_t *n);
/** edo_unix_stream_try_read() - as edo_tcp_stream_try_read(). */
ssize_t edo_unix_stream_try_read(edo_unix_stream *s, void *buf, size_t len);
/** edo_unix_stream_try_write() - as edo_tcp_stream_try_write(). */
ssize_t edo_unix_stream_try_write(edo_unix_stream *s, const void *buf, size_t len);
/** edo_unix_stream_ready() - a readiness future for @s (see edo_net_ready_fut). */
edo_future *edo_unix_stream_ready(edo_net_ready_fut *f, edo_unix_stream *s, uint32_t interest);
/** edo_unix_stream_shutdown() - as edo_tcp_stream_shutdown(). */
int edo_unix_stream_shutdown(edo_unix_stream *s, int how);
/** edo_unix_stream_local_addr() - this end's address (unnamed for a client or a pair). */
int edo_unix_stream_local_addr(edo_unix_stream *s, edo_addr *out);
/** edo_unix_stream_peer_addr() - the peer's address.  0 or -errno. */
int edo_unix_stream_peer_addr(edo_unix_stream *s, edo_addr *out);
/** edo_unix_stream_peer_cred() - the peer's pid, uid and gid (SO_PEERCRED); any may be NULL.  0 or -errno. */
int edo_unix_stream_peer_cred(edo_unix_stream *s, pid_t *pid, uid_t *uid, gid_t *gid);
/** edo_unix_stream_into_split() - as edo_tcp_stream_into_split(). */
int edo_unix_stream_into_split(edo_unix_stream *s, edo_unix_stream **rd, edo_unix_stream **wr);
/** edo_unix_stream_try_io() - your own syscall once (sendmsg with SCM_RIGHTS...), as
 *  edo_tcp_stream_try_io(). */
ssize_t edo_unix_stream_try_io(edo_unix_stream *s, uint32_t interest, edo_net_io_fn fn, void *ctx);
/** edo_unix_stream_poll_io() - wait, then your own syscall, as edo_tcp_stream_poll_io(). */
edo_poll edo_unix_stream_poll_io(edo_unix_stream *s, edo_cx *cx, uint32_t interest,
				 edo_net_io_fn fn, void *ctx, ssize_t *n);
/** edo_unix_stream_into_fd() - the descriptor back, as edo_tcp_listener_into_fd(). */
int edo_unix_stream_into_fd(edo_unix_stream *s);
/** edo_unix_stream_take_error() - SO_ERROR, taken, as edo_tcp_stream_take_error(). */
int edo_unix_stream_take_error(edo_unix_stream *s);
/** edo_unix_stream_close() - close the connection for every handle; release @s.  NULL: no-op. */
void edo_unix_stream_close(edo_unix_stream *s);
/** edo_unix_stream_drop() - release @s (a write half shuts writing down first).  NULL: no-op. */
void edo_unix_stream_drop(edo_unix_stream *s);

/**
 * edo_unix_datagram_bind() - a datagram socket bound to @path (NULL:
 * unbound).  A bind that fails leaves no file at @path, as
 * edo_unix_listener_bind().
 */
int edo_unix_datagram_bind(const char *path, edo_unix_datagram **out);
/** edo_unix_datagram_pair() - two connected datagram sockets. */
int edo_unix_datagram_pair(edo_unix_datagram **a, edo_unix_datagram **b);
/** edo_unix_datagram_from_fd() - a datagram socket over @fd, an AF_UNIX datagram socket made
 *  elsewhere, as edo_tcp_listener_from_fd(). */
int edo_unix_datagram_from_fd(int fd, edo_unix_datagram **out);
/** edo_unix_datagram_connect() - set the default peer (and filter what is received).  0 or -errno. */
int edo_unix_datagram_connect(edo_unix_datagram *d, const char *path);
/** edo_unix_datagram_poll_send() - send one datagram to the connected peer; *@n: bytes or error. */
edo_poll edo_unix_datagram_poll_send(edo_unix_datagram *d, edo_cx *cx, const void *buf, size_t len,
				     ssize_t *n);
/** edo_unix_datagram_poll_recv() - receive one datagram (truncated to @len); *@n: its bytes or error. */
edo_poll edo_unix_datagram_poll_recv(edo_unix_datagram *d, edo_cx *cx, void *buf, size_t len,
				     ssize_t *n);
/** edo_unix_datagram_poll_send_to() - send one datagram to the socket bound at @path. */
edo_poll edo_unix_datagram_poll_send_to(edo_unix_datagram *d, edo_cx *cx, const void *buf,
					size_t len, const char *path, ssize_t *n);
/** edo_unix_datagram_poll_recv_from() - receive one datagram; *@from its sender (unnamed: len <= sizeof(sa_family_t)). */
edo_poll edo_unix_datagram_poll_recv_from(edo_unix_datagram *d, edo_cx *cx, void *buf, size_t len,
					  edo_addr *from, ssize_t *n);
/** edo_unix_datagram_try_send_to() - send without waiting (@path NULL: the connected peer; -ENOTCONN if none): bytes, -EAGAIN, or error. */
ssize_t edo_unix_datagram_try_send_to(edo_unix_datagram *d, const void *buf, size_t len,
				      const char *path);
/** edo_unix_datagram_try_recv_from() - receive without waiting (@from may be NULL): the datagram's bytes, -EAGAIN, or error. */
ssize_t edo_unix_datagram_try_recv_from(edo_unix_datagram *d, void *buf, size_t len,
					edo_addr *from);
/** edo_unix_datagram_poll_peek_from() - as edo_udp_poll_peek_from(): the datagram stays queued. */
edo_poll edo_unix_datagram_poll_peek_from(edo_unix_datagram *d, edo_cx *cx, void *buf, size_t len,
					  edo_addr *from, ssize_t *n);
/** edo_unix_datagram_try_peek_from() - as edo_udp_try_peek_from(). */
ssize_t edo_unix_datagram_try_peek_from(edo_unix_datagram *d, void *buf, size_t len,
					edo_addr *from);
/** edo_unix_datagram_ready() - a readiness future for @d (see edo_net_ready_fut). */
edo_future *edo_unix_datagram_ready(edo_net_ready_fut *f, edo_unix_datagram *d, uint32_t interest);
/** edo_unix_datagram_send() - send to the connected peer (edo_dgram_fut). */
edo_future *edo_unix_datagram_send(edo_dgram_fut *f, edo_unix_datagram *d, const void *buf,
				   size_t len);
/** edo_unix_datagram_recv() - receive one datagram into @buf (edo_dgram_fut). */
edo_future *edo_unix_datagram_recv(edo_dgram_fut *f, edo_unix_datagram *d, void *buf, size_t len);
/** edo_unix_datagram_send_to() - send to the socket bound at @path (a NULL, empty or over-long path: -EINVAL) (edo_dgram_fut). */
edo_future *edo_unix_datagram_send_to(edo_dgram_fut *f, edo_unix_datagram *d, const void *buf,
				      size_t len, const char *path);
/** edo_unix_datagram_recv_from() - receive one datagram, its sender into `from` (unnamed: len <= sizeof(sa_family_t)) (edo_dgram_fut). */
edo_future *edo_unix_datagram_recv_from(edo_dgram_fut *f, edo_unix_datagram *d, void *buf,
					size_t len);
/** edo_unix_datagram_peek_from() - as edo_unix_datagram_recv_from(), but the datagram stays queued. */
edo_future *edo_unix_datagram_peek_from(edo_dgram_fut *f, edo_unix_datagram *d, void *buf,
					size_t len);
/** edo_unix_datagram_local_addr() - the bound address.  0 or -errno. */
int edo_unix_datagram_local_addr(edo_unix_datagram *d, edo_addr *out);
/** edo_unix_datagram_peer_addr() - the connected peer.  0 or -errno (-ENOTCONN). */
int edo_unix_datagram_peer_addr(edo_unix_datagram *d, edo_addr *out);
/** edo_unix_datagram_clone() - another reference to @d (for another task). */
edo_unix_datagram *edo_unix_datagram_clone(edo_unix_datagram *d);
/** edo_unix_datagram_try_io() - your own syscall once, as edo_tcp_stream_try_io(). */
ssize_t edo_unix_datagram_try_io(edo_unix_datagram *d, uint32_t interest, edo_net_io_fn fn,
				 void *ctx);
/** edo_unix_datagram_poll_io() - wait, then your own syscall, as edo_tcp_stream_poll_io(). */
edo_poll edo_unix_datagram_poll_io(edo_unix_datagram *d, edo_cx *cx, uint32_t interest,
				   edo_net_io_fn fn, void *ctx, ssize_t *n);
/** edo_unix_datagram_into_fd() - the descriptor back, as edo_tcp_listener_into_fd(). */
int edo_unix_datagram_into_fd(edo_unix_datagram *d);
/** edo_unix_datagram_take_error() - SO_ERROR, taken, as edo_tcp_stream_take_error(). */
int edo_unix_datagram_take_error(edo_unix_datagram *d);
/** edo_unix_datagram_close() - close @d for every holder; release @d.  NULL: no-op. */
void edo_unix_datagram_close(edo_unix_datagram *d);
/** edo_unix_datagram_drop() - release @d.  NULL: no-op. */
void edo_unix_datagram_drop(edo_unix_datagram *d);

#ifdef __cplusplus
}
#endif
#endif /* EDO_NET_H */
