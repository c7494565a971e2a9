/* TCP listeners, connects and streams (edo/net.h), over the socket core. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edo/error.h"
#include "edo/net.h"
#include "net/socket.h"

struct edo_tcp_listener {
	edo__listener l;
};

struct edo_tcp_stream {
	edo__sstream h;
};

/* Not registered until it listens or connects: an unconnected TCP socket
 * reports hang-up, which the reactor would keep as a sticky "closed". */
struct edo_tcp_socket {
	int fd;
	int family;
};

static edo__sstream *H(edo_tcp_stream *s)
{
	return &s->h;
}

static bool is_ip(const edo_addr *a)
{
	int f = edo_addr_family(a);
	return f == AF_INET || f == AF_INET6;
}

/* ---- listener ------------------------------------------------------------------------------- */

int edo_tcp_listener_bind(const edo_addr *addr, const edo_tcp_bind_opts *opts,
			  edo_tcp_listener **out)
{
	if (!addr || !out || !is_ip(addr))
		return -EINVAL;
	edo_tcp_bind_opts o = opts ? *opts : (edo_tcp_bind_opts){0};
	if (o.backlog < 0)
		return -EINVAL;
	int rc = edo__sock_check_runtime(); /* before anything is bound */
	if (rc < 0)
		return rc;
	edo_tcp_listener *l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	int fd = edo__sock_socket(addr->u.sa.sa_family, SOCK_STREAM, 0);
	if (fd < 0) {
		free(l);
		return fd;
	}
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (o.reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0))
		rc = -errno;
	int v6only = o.v6only;
	if (!rc && addr->u.sa.sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
		rc = -errno;
	if (!rc &&
	    (bind(fd, &addr->u.sa, addr->len) < 0 || listen(fd, o.backlog ? o.backlog : 1024) < 0))
		rc = -errno;
	if (!rc)
		rc = edo__sock_init(&l->l.sock, fd);
	if (rc < 0) {
		free(l);
		close(fd);
		return rc;
	}
	*out = l;
	return 0;
}

int edo_tcp_listener_from_fd(int fd, edo_tcp_listener **out)
{
	if (!out)
		return -EINVAL;
	const edo__sock_kind k = {.type = SOCK_STREAM, .ip = true, .listening = true};
	return edo__sock_adopt(fd, &k, sizeof(edo_tcp_listener), (void **)out);
}

edo_poll edo_tcp_listener_poll_accept(edo_tcp_listener *l, edo_cx *cx, edo_tcp_stream **out,
				      edo_addr *peer, int *rc)
{
	if (!l || !out || !rc) {
		if (rc)
			*rc = -EINVAL;
		return EDO_READY;
	}
	edo__sstream *h;
	if (edo__listener_accept(&l->l, NULL, NULL, cx, peer, &h, rc) == EDO_PENDING)
		return EDO_PENDING;
	if (*rc == 0)
		*out = (edo_tcp_stream *)h;
	return EDO_READY;
}

static edo_poll accept_fut_poll(edo_future *base, edo_cx *cx)
{
	edo_tcp_accept_fut *f = (edo_tcp_accept_fut *)base;
	if (!f->l_)
		return EDO_READY; /* bad input: rc set at init */
	edo__sstream *h;
	if (edo__listener_accept(&f->l_->l, &f->wait_, &f->backoff_, cx, &f->peer, &h, &f->rc) ==
	    EDO_PENDING)
		return EDO_PENDING;
	if (f->rc == 0)
		f->stream = (edo_tcp_stream *)h;
	return EDO_READY;
}

static void accept_fut_drop(edo_future *base)
{
	edo_tcp_accept_fut *f = (edo_tcp_accept_fut *)base;
	edo__net_wait_drop(&f->wait_);
	edo__net_backoff_drop(&f->backoff_);
}

static const edo_future_vtable accept_fut_vt = {.poll = accept_fut_poll, .drop = accept_fut_drop};

edo_future *edo_tcp_listener_accept(edo_tcp_accept_fut *f, edo_tcp_listener *l)
{
	*f = (edo_tcp_accept_fut){.base = {&accept_fut_vt}, .l_ = l, .rc = l ? 0 : -EINVAL};
	return &f->base;
}

int edo_tcp_listener_local_addr(edo_tcp_listener *l, edo_addr *out)
{
	if (!l)
		return -EINVAL;
	return edo__sock_name(&l->l.sock, out, false);
}

int edo_tcp_listener_fd(const edo_tcp_listener *l)
{
	if (!l)
		return -EINVAL;
	return edo__sock_fd(&l->l.sock);
}

edo_tcp_listener *edo_tcp_listener_clone(edo_tcp_listener *l)
{
	if (!l)
		return NULL;
	edo__sock_ref(&l->l.sock);
	return l;
}

void edo_tcp_listener_drop(edo_tcp_listener *l)
{
	if (!l)
		return;
	if (edo__sock_release(&l->l.sock)) {
		edo__listener_fini(&l->l);
		free(l);
	}
}

int edo_tcp_listener_into_fd(edo_tcp_listener *l)
{
	if (!l)
		return -EINVAL;
	int fd = edo__sock_into_fd(&l->l.sock);
	if (fd >= 0) {
		edo__listener_fini(&l->l);
		free(l);
	}
	return fd;
}

void edo_tcp_listener_close(edo_tcp_listener *l)
{
	if (!l)
		return;
	edo__sock_close(&l->l.sock);
	edo_tcp_listener_drop(l);
}

/* ---- sockets configured before they listen or connect ------------------------------------------ */

int edo_tcp_socket_new(int family, edo_tcp_socket **out)
{
	if (!out || (family != AF_INET && family != AF_INET6))
		return -EINVAL;
	edo_tcp_socket *s = malloc(sizeof *s);
	if (!s)
		return -ENOMEM;
	s->family = family;
	s->fd = edo__sock_socket(family, SOCK_STREAM, 0);
	if (s->fd < 0) {
		int rc = s->fd;
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void edo_tcp_socket_free(edo_tcp_socket *s)
{
	if (!s)
		return;
	close(s->fd);
	free(s);
}

static int sock_opt(edo_tcp_socket *s, int level, int name, int v)
{
	if (!s)
		return -EINVAL;
	return setsockopt(s->fd, level, name, &v, sizeof v) < 0 ? -errno : 0;
}

static int sock_getopt(const edo_tcp_socket *s, int level, int name)
{
	if (!s)
		return -EINVAL;
	int v = 0;
	socklen_t len = sizeof v;
	return getsockopt(s->fd, level, name, &v, &len) < 0 ? -errno : v;
}

int edo_tcp_socket_set_reuseaddr(edo_tcp_socket *s, bool on)
{
	return sock_opt(s, SOL_SOCKET, SO_REUSEADDR, on);
}

int edo_tcp_socket_set_reuseport(edo_tcp_socket *s, bool on)
{
	return sock_opt(s, SOL_SOCKET, SO_REUSEPORT, on);
}

int edo_tcp_socket_set_v6only(edo_tcp_socket *s, bool on)
{
	return sock_opt(s, IPPROTO_IPV6, IPV6_V6ONLY, on);
}

int edo_tcp_socket_set_nodelay(edo_tcp_socket *s, bool on)
{
	return sock_opt(s, IPPROTO_TCP, TCP_NODELAY, on);
}

int edo_tcp_socket_set_keepalive(edo_tcp_socket *s, bool on)
{
	return sock_opt(s, SOL_SOCKET, SO_KEEPALIVE, on);
}

int edo_tcp_socket_set_send_buffer_size(edo_tcp_socket *s, unsigned size)
{
	if (size > INT_MAX)
		return -EINVAL;
	return sock_opt(s, SOL_SOCKET, SO_SNDBUF, (int)size);
}

int edo_tcp_socket_set_recv_buffer_size(edo_tcp_socket *s, unsigned size)
{
	if (size > INT_MAX)
		return -EINVAL;
	return sock_opt(s, SOL_SOCKET, SO_RCVBUF, (int)size);
}

int edo_tcp_socket_send_buffer_size(const edo_tcp_socket *s)
{
	return sock_getopt(s, SOL_SOCKET, SO_SNDBUF);
}

int edo_tcp_socket_recv_buffer_size(const edo_tcp_socket *s)
{
	return sock_getopt(s, SOL_SOCKET, SO_RCVBUF);
}

int edo_tcp_socket_bind(edo_tcp_socket *s, const edo_addr *addr)
{
	if (!s || !addr || !is_ip(addr))
		return -EINVAL;
	return bind(s->fd, &addr->u.sa, addr->len) < 0 ? -errno : 0;
}

int edo_tcp_socket_local_addr(const edo_tcp_socket *s, edo_addr *out)
{
	if (!s || !out)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	out->len = sizeof out->u;
	return getsockname(s->fd, &out->u.sa, &out->len) < 0 ? -errno : 0;
}

int edo_tcp_socket_fd(const edo_tcp_socket *s)
{
	return s ? s->fd : -EINVAL;
}

int edo_tcp_socket_listen(edo_tcp_socket *s, int backlog, edo_tcp_listener **out)
{
	if (!s || !out || backlog < 0)
		return -EINVAL;
	int rc = edo__sock_check_runtime(); /* before it listens */
	if (rc < 0)
		return rc;
	edo_tcp_listener *l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	if (listen(s->fd, backlog ? backlog : 1024) < 0) {
		rc = -errno;
	} else {
		rc = edo__sock_init(&l->l.sock, s->fd);
		/* Not registered: stop listening again (on Linux a listener
		 * shut down goes back to a closed socket; a port it was
		 * given stays bound), so that no client's connect completes
		 * into a queue nobody accepts from. */
		if (rc < 0)
			(void)shutdown(s->fd, SHUT_RD);
	}
	if (rc < 0) {
		free(l);
		return rc;
	}
	free(s); /* its descriptor is the listener's now */
	*out = l;
	return 0;
}

/* ---- connect ---------------------------------------------------------------------------------- */

enum { C_LOOKUP, C_NEXT, C_CONNECTING, C_DONE };

static const edo_addr *addr_at(edo_tcp_connect_fut *f, size_t i)
{
	if (f->lookup_.base.vt == NULL && f->lookup_.addrs == NULL)
		return i == 0 ? &f->addr_ : NULL;
	return i < f->lookup_.count ? &f->lookup_.addrs[i] : NULL;
}

/* Start connecting to @a: 0 connected, 1 in progress (f->pending_), or -errno. */
static int connect_start(edo_tcp_connect_fut *f, const edo_addr *a)
{
	if (!is_ip(a))
		return -EINVAL;
	/* Checked before connecting: a connect that must fail reaches no
	 * listener (which would accept a client that is already gone). */
	int rc = edo__sock_check_runtime();
	if (rc < 0)
		return rc;
	int fd;
	if (f->sock_) { /* edo_tcp_socket_connect(): its socket, once */
		fd = f->sock_->fd;
		free(f->sock_);
		f->sock_ = NULL;
	} else {
		fd = edo__sock_socket(a->u.sa.sa_family, SOCK_STREAM, 0);
		if (fd < 0)
			return fd;
	}
	int r;
	do
		r = connect(fd, &a->u.sa, a->len);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno != EINPROGRESS) {
		int e = -errno;
		close(fd);
		return e;
	}
	/* Registered only now: an unconnected TCP socket reports hang-up,
	 * which the reactor would keep as a sticky "closed". */
	edo__sstream *h;
	rc = edo__sstream_new(fd, &h);
	if (rc < 0)
		return rc;
	f->pending_ = (edo_tcp_stream *)h;
	return r == 0 ? 0 : 1;
}

static void connect_drop(edo_future *base)
{
	edo_tcp_connect_fut *f = (edo_tcp_connect_fut *)base;
	edo_future_drop(&f->lookup_.base);
	free(f->lookup_.addrs);
	f->lookup_.addrs = NULL;
	edo_tcp_socket_free(f->sock_); /* never connected */
	f->sock_ = NULL;
	if (f->pending_) {
		edo_tcp_stream_close(f->pending_);
		f->pending_ = NULL;
	}
}

static edo_poll connect_poll(edo_future *base, edo_cx *cx)
{
	edo_tcp_connect_fut *f = (edo_tcp_connect_fut *)base;
	for (;;) {
		switch (f->state_) {
		case C_LOOKUP:
			if (edo_future_poll(&f->lookup_.base, cx) == EDO_PENDING)
				return EDO_PENDING;
			f->lookup_.base.vt = NULL; /* finished: its addresses are ours now */
			if (f->lookup_.rc < 0) {
				f->rc = f->lookup_.rc;
				f->state_ = C_DONE;
				break;
			}
			f->rc = -ENOENT;
			f->state_ = C_NEXT;
			break;
		case C_NEXT: {
			const edo_addr *a = addr_at(f, f->next_++);
			if (!a) {
				f->state_ = C_DONE; /* rc: the last address's error */
				break;
			}
			int r = connect_start(f, a);
			if (r == EDO_ENORUNTIME || r == EDO_ESHUTDOWN || r == -ENOTSUP) {
				f->rc = r; /* no other address would do better */
				f->state_ = C_DONE;
			} else if (r < 0) {
				f->rc = r;
			} else if (r == 0) {
				f->rc = 0;
				f->state_ = C_DONE;
			} else {
				f->state_ = C_CONNECTING;
			}
			break;
		}
		case C_CONNECTING: {
			edo__sock *s = H(f->pending_)->sock;
			edo__ready_event ev;
			int w = edo__sock_wait(s, cx, EDO_INTEREST_WRITABLE, &ev);
			if (w > 0)
				return EDO_PENDING;
			int err = w < 0 ? w : edo__sock_getopt(s, SOL_SOCKET, SO_ERROR);
			if (err > 0)
				err = -err;
			if (err == 0) {
				f->rc = 0;
				f->state_ = C_DONE;
				break;
			}
			f->rc = err;
			edo_tcp_stream_close(f->pending_);
			f->pending_ = NULL;
			f->state_ = err == EDO_ESHUTDOWN ? C_DONE : C_NEXT;
			break;
		}
		default:
			if (f->rc == 0) {
				f->stream = f->pending_;
				f->pending_ = NULL;
			}
			connect_drop(base);
			return EDO_READY;
		}
	}
}

static const edo_future_vtable connect_vt = {.poll = connect_poll, .drop = connect_drop};

edo_future *edo_tcp_connect(edo_tcp_connect_fut *f, const edo_addr *addr)
{
	*f = (edo_tcp_connect_fut){.base = {&connect_vt}, .state_ = C_NEXT, .rc = -EINVAL};
	if (!addr || !is_ip(addr))
		f->state_ = C_DONE;
	else
		f->addr_ = *addr;
	return &f->base;
}

edo_future *edo_tcp_connect_addrs(edo_tcp_connect_fut *f, const edo_addr *addrs, size_t count)
{
	*f = (edo_tcp_connect_fut){.base = {&connect_vt}, .state_ = C_DONE, .rc = -EINVAL};
	if (!addrs || !count || count > SIZE_MAX / sizeof *addrs)
		return &f->base;
	for (size_t i = 0; i < count; i++)
		if (!is_ip(&addrs[i]))
			return &f->base;
	/* The list is kept where a lookup would leave its addresses. */
	f->lookup_.addrs = malloc(count * sizeof *addrs);
	if (!f->lookup_.addrs) {
		f->rc = -ENOMEM;
		return &f->base;
	}
	memcpy(f->lookup_.addrs, addrs, count * sizeof *addrs);
	f->lookup_.count = count;
	f->state_ = C_NEXT;
	return &f->base;
}

edo_future *edo_tcp_socket_connect(edo_tcp_connect_fut *f, edo_tcp_socket *s, const edo_addr *addr)
{
	edo_tcp_connect(f, addr);
	if (!s || (addr && edo_addr_family(addr) != s->family))
		f->state_ = C_DONE; /* rc -EINVAL */
	else if (f->state_ != C_DONE)
		f->sock_ = s; /* good input: the future's from now on */
	return &f->base;
}

edo_future *edo_tcp_connect_host(edo_tcp_connect_fut *f, const char *host, uint16_t port)
{
	*f = (edo_tcp_connect_fut){.base = {&connect_vt}, .state_ = C_LOOKUP};
	edo_lookup_host(&f->lookup_, host, port);
	return &f->base;
}

/* ---- stream ---------------------------------------------------------------------------------- */

int edo_tcp_stream_from_fd(int fd, edo_tcp_stream **out)
{
	if (!out)
		return -EINVAL;
	edo__sstream *h;
	int rc = edo__sstream_adopt(fd, true, &h);
	if (rc == 0)
		*out = (edo_tcp_stream *)h;
	return rc;
}

edo_stream *edo_tcp_stream_io(edo_tcp_stream *s)
{
	if (!s)
		return NULL;
	return &s->h.base;
}

edo_poll edo_tcp_stream_poll_read(edo_tcp_stream *s, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	if (!s)
		return edo__poll_einval(n);
	return edo__sstream_poll_read(H(s), cx, buf, len, n);
}

edo_poll edo_tcp_stream_poll_peek(edo_tcp_stream *s, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	if (!s)
		return edo__poll_einval(n);
	return edo__sstream_poll_peek(H(s), cx, buf, len, n);
}

edo_future *edo_tcp_stream_peek(edo_peek_fut *f, edo_tcp_stream *s, void *buf, size_t len)
{
	return edo__sstream_peek(f, s ? H(s) : NULL, buf, len);
}

edo_poll edo_tcp_stream_poll_write(edo_tcp_stream *s, edo_cx *cx, const void *buf, size_t len,
				   ssize_t *n)
{
	if (!s)
		return edo__poll_einval(n);
	return edo__sstream_poll_write(H(s), cx, buf, len, n);
}

edo_poll edo_tcp_stream_poll_write_vectored(edo_tcp_stream *s, edo_cx *cx, const struct iovec *iov,
					    int iovcnt, ssize_t *n)
{
	if (!s)
		return edo__poll_einval(n);
	return edo__sstream_poll_writev(H(s), cx, iov, iovcnt, n);
}

ssize_t edo_tcp_stream_try_read(edo_tcp_stream *s, void *buf, size_t len)
{
	if (!s)
		return -EINVAL;
	return edo__sstream_try_read(H(s), buf, len);
}

ssize_t edo_tcp_stream_try_write(edo_tcp_stream *s, const void *buf, size_t len)
{
	if (!s)
		return -EINVAL;
	return edo__sstream_try_write(H(s), buf, len);
}

edo_future *edo_tcp_stream_ready(edo_net_ready_fut *f, edo_tcp_stream *s, uint32_t interest)
{
	return edo__sock_ready(f, s ? H(s)->sock : NULL, interest);
}

int edo_tcp_stream_shutdown(edo_tcp_stream *s, int how)
{
	if (!s)
		return -EINVAL;
	return edo__sstream_shutdown(H(s), how);
}

int edo_tcp_stream_set_nodelay(edo_tcp_stream *s, bool on)
{
	if (!s)
		return -EINVAL;
	return edo__sock_setopt(H(s)->sock, IPPROTO_TCP, TCP_NODELAY, on);
}

int edo_tcp_stream_nodelay(edo_tcp_stream *s)
{
	if (!s)
		return -EINVAL;
	int v = edo__sock_getopt(H(s)->sock, IPPROTO_TCP, TCP_NODELAY);
	return v < 0 ? v : v != 0;
}

int edo_tcp_stream_set_keepalive(edo_tcp_stream *s, bool on, int idle_s)
{
	if (!s)
		return -EINVAL;
	/* The idle time first: a value the kernel refuses changes nothing. */
	if (on && idle_s > 0) {
		int rc = edo__sock_setopt(H(s)->sock, IPPROTO_TCP, TCP_KEEPIDLE, idle_s);
		if (rc < 0)
			return rc;
	}
	return edo__sock_setopt(H(s)->sock, SOL_SOCKET, SO_KEEPALIVE, on);
}

int edo_tcp_stream_set_linger(edo_tcp_stream *s, int seconds)
{
	if (!s)
		return -EINVAL;
	struct linger l = {.l_onoff = seconds >= 0, .l_linger = seconds >= 0 ? seconds : 0};
	return edo__sock_setopt_raw(H(s)->sock, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

int edo_tcp_stream_set_ttl(edo_tcp_stream *s, int ttl)
{
	if (!s)
		return -EINVAL;
	edo_addr a;
	int rc = edo__sock_name(H(s)->sock, &a, false);
	if (rc < 0)
		return rc;
	return edo__sock_set_ttl(H(s)->sock, edo_addr_family(&a), ttl);
}

int edo_tcp_stream_local_addr(edo_tcp_stream *s, edo_addr *out)
{
	if (!s)
		return -EINVAL;
	return edo__sock_name(H(s)->sock, out, false);
}

int edo_tcp_stream_peer_addr(edo_tcp_stream *s, edo_addr *out)
{
	if (!s)
		return -EINVAL;
	return edo__sock_name(H(s)->sock, out, true);
}

int edo_tcp_stream_fd(const edo_tcp_stream *s)
{
	if (!s)
		return -EINVAL;
	return edo__sock_fd(s->h.sock);
}

int edo_tcp_stream_into_split(edo_tcp_stream *s, edo_tcp_stream **rd, edo_tcp_stream **wr)
{
	if (!s)
		return -EINVAL;
	return edo__sstream_split(H(s), (edo__sstream **)rd, (edo__sstream **)wr);
}

ssize_t edo_tcp_stream_try_io(edo_tcp_stream *s, uint32_t interest, edo_net_io_fn fn, void *ctx)
{
	return s ? edo__sstream_try_io(H(s), interest, fn, ctx) : -EINVAL;
}

edo_poll edo_tcp_stream_poll_io(edo_tcp_stream *s, edo_cx *cx, uint32_t interest, edo_net_io_fn fn,
				void *ctx, ssize_t *n)
{
	if (!s)
		return edo__poll_einval(n);
	return edo__sstream_poll_io(H(s), cx, interest, fn, ctx, n);
}

int edo_tcp_stream_into_fd(edo_tcp_stream *s)
{
	return s ? edo__sstream_into_fd(H(s)) : -EINVAL;
}

int edo_tcp_stream_take_error(edo_tcp_stream *s)
{
	return s ? edo__sock_take_error(H(s)->sock) : -EINVAL;
}

void edo_tcp_stream_close(edo_tcp_stream *s)
{
	if (s)
		edo__sstream_close(H(s));
}

void edo_tcp_stream_drop(edo_tcp_stream *s)
{
	if (s)
		edo__sstream_drop(H(s));
}
