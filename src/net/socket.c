/* The socket core (see socket.h): registration, references, closing,
 * readiness futures, accept with back-off, and the stream handles that TCP
 * and Unix streams share. */
#define _GNU_SOURCE
#include "net/socket.h"

#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "edo/error.h"
#include "runtime/context.h"
#include "util/sanitizer.h"

int edo__sock_socket(int domain, int type, int protocol)
{
	int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
	return fd < 0 ? -errno : fd;
}

int edo__sock_check_runtime(void)
{
	edo__sched *sched = edo__ctx.sched;
	if (!sched)
		return EDO_ENORUNTIME;
	if (!sched->has_driver || !sched->driver.io)
		return -ENOTSUP;
	if (atomic_load_explicit(&sched->shutdown, memory_order_relaxed))
		return EDO_ESHUTDOWN;
	return 0;
}

int edo__sock_init(edo__sock *s, int fd)
{
	int rc = edo__sock_check_runtime();
	if (rc < 0)
		return rc;
	edo__sched *sched = edo__ctx.sched;
	/* Priority too (EPOLLPRI: TCP urgent data), for edo_net_ready; it costs
	 * nothing on sockets that never have any. */
	rc = edo__reactor_register(sched->driver.io, fd,
				   EDO_INTEREST_READABLE | EDO_INTEREST_WRITABLE |
					   EDO_INTEREST_PRIORITY,
				   &s->io);
	if (rc < 0)
		return rc;
	edo__sched_ref(sched);
	s->sched = sched;
	s->fd = fd;
	atomic_init(&s->refs, 1);
	atomic_init(&s->closed, false);
	s->adopted = false;
	return 0;
}

/* Multipath TCP (Linux 5.6): a TCP socket to its user; older headers lack it. */
#define EDO__IPPROTO_MPTCP 262

/* getsockopt of an int at SOL_SOCKET: the value, or -errno. */
static int sol_socket_int(int fd, int name)
{
	int v = 0;
	socklen_t len = sizeof v;
	return getsockopt(fd, SOL_SOCKET, name, &v, &len) < 0 ? -errno : v;
}

int edo__sock_check_kind(int fd, const edo__sock_kind *k)
{
	if (fd < 0)
		return -EINVAL;
	int rc = edo__sock_check_runtime();
	if (rc < 0)
		return rc;
	int type = sol_socket_int(fd, SO_TYPE); /* -EBADF, -ENOTSOCK */
	if (type < 0)
		return type;
	int domain = sol_socket_int(fd, SO_DOMAIN);
	if (domain < 0)
		return domain;
	if (type != k->type ||
	    (k->ip ? domain != AF_INET && domain != AF_INET6 : domain != AF_UNIX))
		return -EPROTOTYPE;
	if (k->ip) {
		int proto = sol_socket_int(fd, SO_PROTOCOL);
		if (proto < 0)
			return proto;
		bool ok = type == SOCK_STREAM ?
				  proto == IPPROTO_TCP || proto == EDO__IPPROTO_MPTCP :
				  proto == IPPROTO_UDP;
		if (!ok)
			return -EPROTOTYPE; /* SCTP, a raw socket... */
	}
	if (type == SOCK_STREAM) {
		int listening = sol_socket_int(fd, SO_ACCEPTCONN);
		if (listening < 0)
			return listening;
		if ((listening != 0) != k->listening)
			return -EINVAL;
		/* A Unix stream is connected, or never will be (its connect
		 * does not wait); its reads would say -EINVAL. */
		if (!k->ip && !k->listening) {
			struct sockaddr_storage peer;
			socklen_t len = sizeof peer;
			if (getpeername(fd, (struct sockaddr *)&peer, &len) < 0)
				return -errno; /* -ENOTCONN */
		}
	}
	return 0;
}

/* Register @fd, checked, then switch it to non-blocking mode.  In that
 * order: a call refused because @fd is registered already (-EEXIST) never
 * touches its flags, which a call that succeeded at the same moment may
 * have just set.  On failure @fd is left as it was. */
static int sock_adopt(edo__sock *s, int fd)
{
	int rc = edo__sock_init(s, fd);
	if (rc < 0)
		return rc;
	s->adopted = true;
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		return 0;
	if (fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0)
		return 0;
	rc = -errno;
	edo__reactor_deregister(s->sched->driver.io, s->io);
	edo__sched_unref(s->sched);
	return rc;
}

int edo__sock_adopt(int fd, const edo__sock_kind *k, size_t size, void **out)
{
	int rc = edo__sock_check_kind(fd, k); /* bad input before the allocation */
	if (rc < 0)
		return rc;
	void *obj = calloc(1, size);
	if (!obj)
		return -ENOMEM;
	rc = sock_adopt(obj, fd);
	if (rc < 0) {
		free(obj);
		return rc;
	}
	*out = obj;
	return 0;
}

void edo__sock_ref(edo__sock *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

/* @end_connection: a stream's, which ends the connection now, for the
 * peer too, though other handles keep the descriptor open a while. */
static void sock_close(edo__sock *s, bool end_connection)
{
	if (atomic_exchange_explicit(&s->closed, true, memory_order_acq_rel))
		return;
	if (atomic_load_explicit(&s->refs, memory_order_acquire) == 1)
		return; /* the caller's release closes the descriptor */
	/* Shut down now, for everyone: a listener refuses new connections at
	 * once rather than queueing them until the last handle goes.  Not a
	 * listener or datagram socket taken over from elsewhere: shutdown(2)
	 * acts on the socket itself, which another process may hold too
	 * (systemd's copy of an activated listener would stop listening). */
	if (end_connection || !s->adopted)
		(void)shutdown(s->fd, SHUT_RDWR);
	/* Others may be waiting on it: wake them all; each sees `closed`. */
	edo__sio_close(s->io);
}

void edo__sock_close(edo__sock *s)
{
	sock_close(s, false);
}

bool edo__sock_release(edo__sock *s)
{
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return false;
	/* Off epoll first, so that no event names a closed descriptor. */
	edo__reactor_deregister(s->sched->driver.io, s->io);
	close(s->fd);
	edo__sched_unref(s->sched);
	return true;
}

int edo__sock_into_fd(edo__sock *s)
{
	/* References first: a handle closed on another thread set `closed`
	 * before it released its reference, so once only ours is left, a
	 * close is seen. */
	if (atomic_load_explicit(&s->refs, memory_order_acquire) != 1)
		return edo__sock_is_closed(s) ? -EBADF : -EBUSY;
	if (edo__sock_is_closed(s))
		return -EBADF;
	edo__reactor_deregister(s->sched->driver.io, s->io);
	edo__sched_unref(s->sched);
	return s->fd;
}

/* The user's operation for the _try_io and _poll_io functions: one
 * direction, a function. */
static bool user_io_ok(uint32_t interest, edo_net_io_fn fn)
{
	return fn && (interest == EDO_INTEREST_READABLE || interest == EDO_INTEREST_WRITABLE);
}

ssize_t edo__sock_user_try_io(edo__sock *s, uint32_t interest, edo_net_io_fn fn, void *ctx)
{
	if (!user_io_ok(interest, fn))
		return -EINVAL;
	return edo__sock_try_once(s, interest, fn, ctx); /* -EINTR is the user's */
}

edo_poll edo__sock_user_poll_io(edo__sock *s, edo_cx *cx, uint32_t interest, edo_net_io_fn fn,
				void *ctx, ssize_t *n)
{
	if (!n || !user_io_ok(interest, fn))
		return edo__poll_einval(n);
	/* @want 0: only -EAGAIN clears the readiness. */
	return edo__sock_poll_io(s, cx, interest, fn, ctx, 0, n);
}

/* A stream handle may run only an operation of its own direction. */
static bool handle_may(const edo__sstream *h, uint32_t interest)
{
	return interest == EDO_INTEREST_READABLE ? (h->mode & EDO__SS_READ) :
	       interest == EDO_INTEREST_WRITABLE ? (h->mode & EDO__SS_WRITE) :
						   true; /* refused as bad input */
}

ssize_t edo__sstream_try_io(edo__sstream *h, uint32_t interest, edo_net_io_fn fn, void *ctx)
{
	if (user_io_ok(interest, fn) && !handle_may(h, interest))
		return -EBADF;
	return edo__sock_user_try_io(h->sock, interest, fn, ctx);
}

edo_poll edo__sstream_poll_io(edo__sstream *h, edo_cx *cx, uint32_t interest, edo_net_io_fn fn,
			      void *ctx, ssize_t *n)
{
	if (n && user_io_ok(interest, fn) && !handle_may(h, interest)) {
		*n = -EBADF;
		return EDO_READY;
	}
	return edo__sock_user_poll_io(h->sock, cx, interest, fn, ctx, n);
}

int edo__sock_take_error(edo__sock *s)
{
	int v = edo__sock_getopt(s, SOL_SOCKET, SO_ERROR);
	return v > 0 ? -v : v;
}

int edo__sock_name(edo__sock *s, edo_addr *out, bool peer)
{
	if (!out)
		return -EINVAL;
	if (edo__sock_is_closed(s))
		return -EBADF;
	memset(out, 0, sizeof *out);
	out->len = sizeof out->u;
	int r = peer ? getpeername(s->fd, &out->u.sa, &out->len) :
		       getsockname(s->fd, &out->u.sa, &out->len);
	return r < 0 ? -errno : 0;
}

int edo__sock_setopt_raw(edo__sock *s, int level, int name, const void *val, socklen_t len)
{
	if (edo__sock_is_closed(s))
		return -EBADF;
	return setsockopt(s->fd, level, name, val, len) < 0 ? -errno : 0;
}

int edo__sock_setopt(edo__sock *s, int level, int name, int value)
{
	return edo__sock_setopt_raw(s, level, name, &value, sizeof value);
}

int edo__sock_set_ttl(edo__sock *s, int family, int ttl)
{
	if (family != AF_INET6)
		return edo__sock_setopt(s, IPPROTO_IP, IP_TTL, ttl);
	int rc = edo__sock_setopt(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl);
	/* A dual-stack socket sends IPv4 packets to IPv4-mapped peers: those
	 * take IP_TTL (refused on an IPv6-only socket, which has none). */
	if (rc == 0)
		(void)edo__sock_setopt(s, IPPROTO_IP, IP_TTL, ttl);
	return rc;
}

int edo__sock_getopt(edo__sock *s, int level, int name)
{
	if (edo__sock_is_closed(s))
		return -EBADF;
	int v = 0;
	socklen_t len = sizeof v;
	if (getsockopt(s->fd, level, name, &v, &len) < 0)
		return -errno;
	return v;
}

/* ---- readiness futures ------------------------------------------------------------------- */

static edo_poll ready_poll(edo_future *base, edo_cx *cx)
{
	edo_net_ready_fut *f = (edo_net_ready_fut *)base;
	edo__sock *s = f->sock_;
	if (f->rc < 0)
		return EDO_READY; /* bad input, reported at once */
	if (edo__sock_is_closed(s)) {
		edo__sio_remove_waiter(s->io, &f->waiter_);
		f->rc = -EBADF;
		return EDO_READY;
	}
	if (edo_coop_poll_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	edo__ready_event ev;
	if (edo__sio_poll_waiter(s->io, &f->waiter_, cx, &ev) == EDO_PENDING) {
		edo_coop_refund();
		return EDO_PENDING;
	}
	if (ev.shutdown)
		f->rc = edo__sock_is_closed(s) ? -EBADF : EDO_ESHUTDOWN;
	else if (edo__sock_is_closed(s))
		f->rc = -EBADF;
	else
		f->ready = ev.ready;
	return EDO_READY;
}

static void ready_drop(edo_future *base)
{
	edo_net_ready_fut *f = (edo_net_ready_fut *)base;
	if (f->sock_)
		edo__sio_remove_waiter(f->sock_->io, &f->waiter_);
}

static const edo_future_vtable ready_vt = {.poll = ready_poll, .drop = ready_drop};

edo_future *edo__sock_ready(edo_net_ready_fut *f, edo__sock *s, uint32_t interest)
{
	*f = (edo_net_ready_fut){.base = {&ready_vt}, .sock_ = s};
	f->waiter_.interest_ = interest;
	/* Nothing could ever satisfy a bad interest: complete at once with the error. */
	if (!s || !interest ||
	    (interest & ~(EDO_INTEREST_READABLE | EDO_INTEREST_WRITABLE | EDO_INTEREST_PRIORITY))) {
		f->sock_ = NULL;
		f->rc = -EINVAL;
	}
	return &f->base;
}

/* ---- operations through the readiness list --------------------------------------------------- */

edo_poll edo__sock_poll_op(edo__sock *s, edo_net_wait_ *w, edo_cx *cx, uint32_t dir,
			   edo__sock_op op, void *ctx, ssize_t *n)
{
	for (;;) {
		if (!w->armed) {
			edo__sock_ready(&w->ready, s, dir);
			w->armed = true;
		}
		if (edo_future_poll(&w->ready.base, cx) == EDO_PENDING)
			return EDO_PENDING;
		/* Completed: unlinked from the waiter list, nothing to drop. */
		w->armed = false;
		if (w->ready.rc < 0) {
			*n = w->ready.rc;
			return EDO_READY;
		}
		ssize_t r = edo__sock_try_io(s, dir, op, ctx);
		if (r == -EAGAIN) {
			/* Another waiter took what woke us (or the readiness
			 * was spurious): the unit of budget bought nothing --
			 * unless the readiness could not be cleared (a closed
			 * state stays set: a socket shut down for reading that
			 * still says EAGAIN), when only the budget ends the loop. */
			if (!edo__sio_readiness(s->io, dir).ready)
				edo__coop_refund();
			continue;
		}
		if (r <= 0 && edo__sock_is_closed(s))
			r = -EBADF;
		*n = r;
		return EDO_READY;
	}
}

void edo__net_wait_drop(edo_net_wait_ *w)
{
	if (w->armed) {
		edo_future_drop(&w->ready.base);
		w->armed = false;
	}
}

/* ---- accept with back-off -------------------------------------------------------------------- */

#define BACKOFF_MAX_MS 100

typedef struct accept_ctx {
	edo_addr *peer;
} accept_ctx;

static ssize_t do_accept(int fd, void *ctx)
{
	accept_ctx *a = ctx;
	struct sockaddr *sa = NULL;
	socklen_t *lenp = NULL;
	if (a->peer) {
		memset(a->peer, 0, sizeof *a->peer);
		a->peer->len = sizeof a->peer->u;
		sa = &a->peer->u.sa;
		lenp = &a->peer->len;
	}
	int r = accept4(fd, sa, lenp, SOCK_NONBLOCK | SOCK_CLOEXEC);
	return r < 0 ? -errno : r;
}

/* Errors accept(2) reports about one connection, not about the listener:
 * skip that connection and take the next. */
static bool accept_transient(ssize_t e)
{
	switch (-e) {
	case ECONNABORTED:
	case EPROTO:
	case EPERM: /* a firewall refused it */
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
		return true;
	default:
		return false;
	}
}

static bool accept_exhausted(ssize_t e)
{
	return e == -EMFILE || e == -ENFILE || e == -ENOBUFS || e == -ENOMEM;
}

/* Accept through the socket's waiter slot (@w NULL: _poll_accept) or
 * through @w's readiness future, backing off on @b. */
static edo_poll accept_poll(edo__listener *l, edo_net_wait_ *w, edo_net_backoff_ *b, edo_cx *cx,
			    int *fd, edo_addr *peer, int *rc)
{
	for (;;) {
		if (b->active) {
			if (edo_future_poll(&b->sleep.base, cx) == EDO_PENDING)
				return EDO_PENDING;
			b->active = false;
		}
		accept_ctx a = {.peer = peer};
		ssize_t r;
		edo_poll p = w ? edo__sock_poll_op(&l->sock, w, cx, EDO_INTEREST_READABLE,
						   do_accept, &a, &r) :
				 edo__sock_poll_io(&l->sock, cx, EDO_INTEREST_READABLE, do_accept,
						   &a, 0, &r);
		if (p == EDO_PENDING)
			return EDO_PENDING;
		if (r >= 0) {
			b->ms = 0;
			*fd = (int)r;
			*rc = 0;
			return EDO_READY;
		}
		if (accept_transient(r))
			continue;
		if (!accept_exhausted(r)) {
			*rc = (int)r;
			return EDO_READY;
		}
		/* Out of descriptors or memory: the connection stays queued
		 * and the socket stays readable, so retrying at once would
		 * spin.  Sleep, doubling, and try again. */
		atomic_fetch_add_explicit(&l->exhausted, 1, memory_order_relaxed);
		b->ms = b->ms ? b->ms * 2 : 1;
		if (b->ms > BACKOFF_MAX_MS)
			b->ms = BACKOFF_MAX_MS;
		edo_sleep_init(&b->sleep, EDO_MS(b->ms));
		b->active = true;
	}
}

edo_poll edo__listener_accept(edo__listener *l, edo_net_wait_ *w, edo_net_backoff_ *b, edo_cx *cx,
			      edo_addr *peer, edo__sstream **out, int *rc)
{
	int fd = -1;
	if (accept_poll(l, w, w ? b : &l->backoff, cx, &fd, peer, rc) == EDO_PENDING)
		return EDO_PENDING;
	if (*rc == 0)
		*rc = edo__sstream_new(fd, out);
	return EDO_READY;
}

void edo__net_backoff_drop(edo_net_backoff_ *b)
{
	if (b->active) {
		edo_future_drop(&b->sleep.base);
		b->active = false;
	}
}

void edo__listener_fini(edo__listener *l)
{
	edo__net_backoff_drop(&l->backoff);
}

/* ---- stream handles ------------------------------------------------------------------------- */

/* The socket and its first handle in one allocation; halves made by a
 * split are allocated on their own.  The block is freed with the socket. */
typedef struct sstream_block {
	edo__sock sock;
	edo__sstream first;
} sstream_block;

static bool is_first(edo__sstream *h)
{
	return h == &((sstream_block *)(void *)h->sock)->first;
}

static void handle_release(edo__sstream *h)
{
	edo__sock *s = h->sock;
	if (!is_first(h))
		free(h);
	if (edo__sock_release(s))
		free(s); /* the block: the socket is its first member */
}

static edo_poll vt_read(edo_stream *s, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	return edo__sstream_poll_read((edo__sstream *)s, cx, buf, len, n);
}

static edo_poll vt_write(edo_stream *s, edo_cx *cx, const void *buf, size_t len, ssize_t *n)
{
	return edo__sstream_poll_write((edo__sstream *)s, cx, buf, len, n);
}

static edo_poll vt_writev(edo_stream *s, edo_cx *cx, const struct iovec *iov, int cnt, ssize_t *n)
{
	return edo__sstream_poll_writev((edo__sstream *)s, cx, iov, cnt, n);
}

static edo_poll vt_shutdown(edo_stream *s, edo_cx *cx, int *rc)
{
	*rc = edo__sstream_shutdown((edo__sstream *)s, SHUT_WR);
	return EDO_READY;
}

static void vt_drop(edo_stream *s)
{
	edo__sstream_drop((edo__sstream *)s);
}

static const edo_stream_vtable sstream_vt = {
	.poll_read = vt_read,
	.poll_write = vt_write,
	.poll_write_vectored = vt_writev,
	.poll_shutdown = vt_shutdown,
	.drop = vt_drop,
};

/* Close a connection we could not take on: with a reset, so that the peer
 * sees an error rather than an orderly end of stream (a no-op linger on
 * sockets that are not TCP). */
static void close_reset(int fd)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	close(fd);
}

/* The block's first handle: the whole stream. */
static edo__sstream *block_first(sstream_block *b)
{
	b->first = (edo__sstream){.base = {&sstream_vt},
				  .sock = &b->sock,
				  .mode = EDO__SS_READ | EDO__SS_WRITE};
	return &b->first;
}

int edo__sstream_new(int fd, edo__sstream **out)
{
	sstream_block *b = malloc(sizeof *b);
	if (!b) {
		close_reset(fd);
		return -ENOMEM;
	}
	int rc = edo__sock_init(&b->sock, fd);
	if (rc < 0) {
		close_reset(fd);
		free(b);
		return rc;
	}
	*out = block_first(b);
	return 0;
}

int edo__sstream_adopt(int fd, bool ip, edo__sstream **out)
{
	const edo__sock_kind k = {.type = SOCK_STREAM, .ip = ip, .listening = false};
	int rc = edo__sock_check_kind(fd, &k); /* bad input before the allocation */
	if (rc < 0)
		return rc;
	sstream_block *b = malloc(sizeof *b);
	if (!b)
		return -ENOMEM;
	rc = sock_adopt(&b->sock, fd);
	if (rc < 0) {
		free(b);
		return rc;
	}
	*out = block_first(b);
	return 0;
}

typedef struct rw_ctx {
	void *buf;
	size_t len;
} rw_ctx;

/* A stream's reads and writes are made with syscall(2), not libc's recv,
 * send and sendmsg: those are cancellation points, and entering and leaving
 * one costs two atomic compare-and-swaps per call, for a pthread_cancel()
 * that cannot be used on a runtime's threads.  Under a sanitizer, libc's
 * calls all the same: their interceptors check the buffer (ASan) and see a
 * send and its receive as the synchronisation they are (TSan). */
#if defined(EDO__ASAN) || defined(EDO__TSAN)
#define SOCK_RECV(fd, buf, len) recv(fd, buf, len, 0)
#define SOCK_SEND(fd, buf, len) send(fd, buf, len, MSG_NOSIGNAL)
#define SOCK_SENDMSG(fd, msg) sendmsg(fd, msg, MSG_NOSIGNAL)
#else
#define SOCK_RECV(fd, buf, len) syscall(SYS_recvfrom, fd, buf, len, 0, NULL, NULL)
#define SOCK_SEND(fd, buf, len) syscall(SYS_sendto, fd, buf, len, MSG_NOSIGNAL, NULL, 0)
#define SOCK_SENDMSG(fd, msg) syscall(SYS_sendmsg, fd, msg, MSG_NOSIGNAL)
#endif

static ssize_t do_read(int fd, void *ctx)
{
	rw_ctx *c = ctx;
	/* recv, not read: the socket call skips the VFS layer (about 110 ns
	 * less per read of a loopback TCP message here). */
	ssize_t r = SOCK_RECV(fd, c->buf, c->len);
	return r < 0 ? -errno : r;
}

/* A peek is no hot path: libc's recv. */
static ssize_t do_peek(int fd, void *ctx)
{
	rw_ctx *c = ctx;
	ssize_t r = recv(fd, c->buf, c->len, MSG_PEEK);
	return r < 0 ? -errno : r;
}

static ssize_t do_send(int fd, void *ctx)
{
	rw_ctx *c = ctx;
	/* MSG_NOSIGNAL: a reset peer is -EPIPE, never SIGPIPE. */
	ssize_t r = SOCK_SEND(fd, c->buf, c->len);
	return r < 0 ? -errno : r;
}

static ssize_t do_sendmsg(int fd, void *ctx)
{
	const struct msghdr *m = ctx;
	ssize_t r = SOCK_SENDMSG(fd, m);
	return r < 0 ? -errno : r;
}

/* A read or a peek: @want as for edo__sock_poll_io().  Inlined, so that
 * @op is a direct call on the read path. */
static inline __attribute__((always_inline)) edo_poll sstream_poll_in(edo__sstream *h, edo_cx *cx,
								      void *buf, size_t len,
								      ssize_t *n, edo__sock_op op,
								      size_t want)
{
	if (!n || (!buf && len))
		return edo__poll_einval(n);
	if (!(h->mode & EDO__SS_READ)) {
		*n = -EBADF;
		return EDO_READY;
	}
	rw_ctx c = {buf, len};
	return edo__sock_poll_io(h->sock, cx, EDO_INTEREST_READABLE, op, &c, want, n);
}

edo_poll edo__sstream_poll_read(edo__sstream *h, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	return sstream_poll_in(h, cx, buf, len, n, do_read, len);
}

edo_poll edo__sstream_poll_peek(edo__sstream *h, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	/* @want 0: a peek shorter than @len leaves the data, and so the
	 * readiness, where they were (only EAGAIN clears it). */
	return sstream_poll_in(h, cx, buf, len, n, do_peek, 0);
}

static edo_poll peek_fut_poll(edo_future *base, edo_cx *cx)
{
	edo_peek_fut *f = (edo_peek_fut *)base;
	if (!f->sock_)
		return EDO_READY; /* refused at init: n says why */
	rw_ctx c = {f->buf_, f->len_};
	return edo__sock_poll_op(f->sock_, &f->wait_, cx, EDO_INTEREST_READABLE, do_peek, &c,
				 &f->n);
}

static void peek_fut_drop(edo_future *base)
{
	edo__net_wait_drop(&((edo_peek_fut *)base)->wait_);
}

static const edo_future_vtable peek_fut_vt = {.poll = peek_fut_poll, .drop = peek_fut_drop};

edo_future *edo__sstream_peek(edo_peek_fut *f, edo__sstream *h, void *buf, size_t len)
{
	*f = (edo_peek_fut){.base = {&peek_fut_vt}, .buf_ = buf, .len_ = len};
	if (!h || (!buf && len))
		f->n = -EINVAL;
	else if (!(h->mode & EDO__SS_READ))
		f->n = -EBADF;
	else
		f->sock_ = h->sock; /* not the handle: a close of it may free it */
	return &f->base;
}

edo_poll edo__sstream_poll_write(edo__sstream *h, edo_cx *cx, const void *buf, size_t len,
				 ssize_t *n)
{
	if (!n || (!buf && len))
		return edo__poll_einval(n);
	if (!(h->mode & EDO__SS_WRITE)) {
		*n = -EBADF;
		return EDO_READY;
	}
	rw_ctx c = {(void *)(uintptr_t)buf, len};
	return edo__sock_poll_io(h->sock, cx, EDO_INTEREST_WRITABLE, do_send, &c, len, n);
}

edo_poll edo__sstream_poll_writev(edo__sstream *h, edo_cx *cx, const struct iovec *iov, int iovcnt,
				  ssize_t *n)
{
	if (!n || iovcnt < 0 || (!iov && iovcnt))
		return edo__poll_einval(n);
	if (!(h->mode & EDO__SS_WRITE)) {
		*n = -EBADF;
		return EDO_READY;
	}
	if (iovcnt > IOV_MAX)
		iovcnt = IOV_MAX; /* a short write; the caller continues */
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (!iov[i].iov_base && iov[i].iov_len)
			return edo__poll_einval(n);
		total += iov[i].iov_len;
	}
	struct msghdr m = {.msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)iovcnt};
	return edo__sock_poll_io(h->sock, cx, EDO_INTEREST_WRITABLE, do_sendmsg, &m, total, n);
}

ssize_t edo__sstream_try_read(edo__sstream *h, void *buf, size_t len)
{
	if (!buf && len)
		return -EINVAL;
	if (!(h->mode & EDO__SS_READ))
		return -EBADF;
	rw_ctx c = {buf, len};
	return edo__sock_try_io(h->sock, EDO_INTEREST_READABLE, do_read, &c);
}

ssize_t edo__sstream_try_write(edo__sstream *h, const void *buf, size_t len)
{
	if (!buf && len)
		return -EINVAL;
	if (!(h->mode & EDO__SS_WRITE))
		return -EBADF;
	rw_ctx c = {(void *)(uintptr_t)buf, len};
	return edo__sock_try_io(h->sock, EDO_INTEREST_WRITABLE, do_send, &c);
}

int edo__sstream_shutdown(edo__sstream *h, int how)
{
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return -EINVAL;
	/* A half shuts down only its own direction (a read half's stream
	 * interface has no writes to end). */
	unsigned need = how == SHUT_RD ? EDO__SS_READ :
			how == SHUT_WR ? EDO__SS_WRITE :
					 EDO__SS_READ | EDO__SS_WRITE;
	if ((h->mode & need) != need || edo__sock_is_closed(h->sock))
		return -EBADF;
	return shutdown(h->sock->fd, how) < 0 ? -errno : 0;
}

int edo__sstream_split(edo__sstream *h, edo__sstream **rd, edo__sstream **wr)
{
	if (!rd || !wr || rd == wr || h->mode != (EDO__SS_READ | EDO__SS_WRITE))
		return -EINVAL;
	edo__sstream *r = malloc(sizeof *r), *w = malloc(sizeof *w);
	if (!r || !w) {
		free(r);
		free(w);
		return -ENOMEM;
	}
	*r = (edo__sstream){.base = {&sstream_vt}, .sock = h->sock, .mode = EDO__SS_READ};
	*w = (edo__sstream){.base = {&sstream_vt}, .sock = h->sock, .mode = EDO__SS_WRITE};
	edo__sock_ref(h->sock);
	edo__sock_ref(h->sock);
	handle_release(h); /* the whole-stream handle is consumed */
	*rd = r;
	*wr = w;
	return 0;
}

int edo__sstream_into_fd(edo__sstream *h)
{
	edo__sock *s = h->sock;
	int fd = edo__sock_into_fd(s);
	if (fd < 0)
		return fd;
	if (!is_first(h))
		free(h);
	free(s); /* the block */
	return fd;
}

void edo__sstream_close(edo__sstream *h)
{
	sock_close(h->sock, true);
	handle_release(h);
}

void edo__sstream_drop(edo__sstream *h)
{
	/* A write half going away ends the writes (Tokio's OwnedWriteHalf);
	 * a whole stream is about to close anyway if it was the last. */
	if (h->mode == EDO__SS_WRITE && !edo__sock_is_closed(h->sock))
		(void)shutdown(h->sock->fd, SHUT_WR);
	handle_release(h);
}
