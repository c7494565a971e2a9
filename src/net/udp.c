/* UDP sockets and Unix datagram sockets (edo/net.h): both are a socket
 * core plus datagram send and receive, so they share the code here. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edo/error.h"
#include "edo/net.h"
#include "net/socket.h"

struct edo_udp_socket {
	edo__sock sock;
};

struct edo_unix_datagram {
	edo__sock sock;
};

/* ---- datagram operations on a core ------------------------------------------------------------ */

typedef struct dgram_ctx {
	void *buf;
	size_t len;
	const edo_addr *to;
	edo_addr *from;
	int flags; /* of the receive: MSG_PEEK or 0 */
} dgram_ctx;

static ssize_t do_sendto(int fd, void *ctx)
{
	dgram_ctx *c = ctx;
	ssize_t r = sendto(fd, c->buf, c->len, MSG_NOSIGNAL, c->to ? &c->to->u.sa : NULL,
			   c->to ? c->to->len : 0);
	return r < 0 ? -errno : r;
}

static ssize_t do_recvfrom(int fd, void *ctx)
{
	dgram_ctx *c = ctx;
	struct sockaddr *sa = NULL;
	socklen_t *lenp = NULL;
	if (c->from) {
		memset(c->from, 0, sizeof *c->from);
		c->from->len = sizeof c->from->u;
		sa = &c->from->u.sa;
		lenp = &c->from->len;
	}
	ssize_t r = recvfrom(fd, c->buf, c->len, c->flags, sa, lenp);
	if (r < 0)
		return -errno;
	/* An unbound Unix sender has no name: Linux gives just the family,
	 * some kernels (gVisor) nothing at all; make it the former, so that
	 * the address is an unnamed AF_UNIX one either way. */
	if (c->from && c->from->len < sizeof(sa_family_t)) {
		c->from->u.sa.sa_family = AF_UNIX;
		c->from->len = sizeof(sa_family_t);
	}
	return r;
}

static edo_poll poll_send(edo__sock *s, edo_cx *cx, const void *buf, size_t len, const edo_addr *to,
			  ssize_t *n)
{
	if (!n || (!buf && len))
		return edo__poll_einval(n);
	dgram_ctx c = {.buf = (void *)(uintptr_t)buf, .len = len, .to = to};
	return edo__sock_poll_io(s, cx, EDO_INTEREST_WRITABLE, do_sendto, &c, 0, n);
}

static edo_poll poll_recv(edo__sock *s, edo_cx *cx, void *buf, size_t len, edo_addr *from,
			  int flags, ssize_t *n)
{
	if (!n || (!buf && len))
		return edo__poll_einval(n);
	dgram_ctx c = {.buf = buf, .len = len, .from = from, .flags = flags};
	return edo__sock_poll_io(s, cx, EDO_INTEREST_READABLE, do_recvfrom, &c, 0, n);
}

static ssize_t try_recv(edo__sock *s, void *buf, size_t len, edo_addr *from, int flags)
{
	if (!buf && len)
		return -EINVAL;
	dgram_ctx c = {.buf = buf, .len = len, .from = from, .flags = flags};
	return edo__sock_try_io(s, EDO_INTEREST_READABLE, do_recvfrom, &c);
}

/* ---- operation futures ---------------------------------------------------------------------- */

enum {
	OP_SEND = 1u,
	OP_TO = 2u,   /* send to to_ */
	OP_FROM = 4u, /* receive the sender into from */
	OP_PEEK = 8u, /* receive with MSG_PEEK */
};

static edo_poll dgram_fut_poll(edo_future *base, edo_cx *cx)
{
	edo_dgram_fut *f = (edo_dgram_fut *)base;
	if (!f->sock_)
		return EDO_READY; /* bad input: n set at init */
	bool send = f->op_ & OP_SEND;
	dgram_ctx c = {.buf = f->buf_,
		       .len = f->len_,
		       .to = (f->op_ & OP_TO) ? &f->to_ : NULL,
		       .from = (f->op_ & OP_FROM) ? &f->from : NULL,
		       .flags = (f->op_ & OP_PEEK) ? MSG_PEEK : 0};
	return edo__sock_poll_op(f->sock_, &f->wait_, cx,
				 send ? EDO_INTEREST_WRITABLE : EDO_INTEREST_READABLE,
				 send ? do_sendto : do_recvfrom, &c, &f->n);
}

static void dgram_fut_drop(edo_future *base)
{
	edo__net_wait_drop(&((edo_dgram_fut *)base)->wait_);
}

static const edo_future_vtable dgram_fut_vt = {.poll = dgram_fut_poll, .drop = dgram_fut_drop};

/* @ok false: bad input, completing at the first poll with -EINVAL. */
static edo_future *dgram_fut(edo_dgram_fut *f, edo__sock *s, unsigned op, const void *buf,
			     size_t len, const edo_addr *to, bool ok)
{
	*f = (edo_dgram_fut){.base = {&dgram_fut_vt},
			     .sock_ = s,
			     .buf_ = (void *)(uintptr_t)buf,
			     .len_ = len,
			     .op_ = op};
	if (!s || (!buf && len) || ((op & OP_TO) && !to) || !ok) {
		f->sock_ = NULL;
		f->n = -EINVAL;
	} else if (op & OP_TO) {
		f->to_ = *to;
	}
	return &f->base;
}

static int sock_connect(edo__sock *s, const edo_addr *a)
{
	if (!a)
		return -EINVAL;
	if (edo__sock_is_closed(s))
		return -EBADF;
	return connect(s->fd, &a->u.sa, a->len) < 0 ? -errno : 0;
}

/* A datagram socket object of @size bytes whose first member is the core,
 * over a new socket of @domain, bound to @addr if not NULL.  A failure
 * leaves nothing behind: no socket, and no file at a Unix path (nothing
 * is made without a runtime to register it with, and the file a bind
 * created is removed if a later step fails). */
static int dgram_new(int domain, const edo_addr *addr, size_t size, void **out)
{
	int rc = edo__sock_check_runtime();
	if (rc < 0)
		return rc;
	void *obj = calloc(1, size);
	if (!obj)
		return -ENOMEM;
	int fd = edo__sock_socket(domain, SOCK_DGRAM, 0);
	if (fd < 0) {
		free(obj);
		return fd;
	}
	bool bound = false;
	if (addr) {
		if (bind(fd, &addr->u.sa, addr->len) < 0)
			rc = -errno;
		else
			bound = true;
	}
	if (!rc)
		rc = edo__sock_init(obj, fd);
	if (rc < 0) {
		if (bound && edo_addr_family(addr) == AF_UNIX && addr->u.un.sun_path[0])
			(void)unlink(addr->u.un.sun_path);
		free(obj);
		close(fd);
		return rc;
	}
	*out = obj;
	return 0;
}

static void dgram_drop(edo__sock *s)
{
	if (s && edo__sock_release(s))
		free(s);
}

static int dgram_into_fd(edo__sock *s)
{
	int fd = edo__sock_into_fd(s);
	if (fd >= 0)
		free(s);
	return fd;
}

static void dgram_close(edo__sock *s)
{
	if (s) {
		edo__sock_close(s);
		dgram_drop(s);
	}
}

/* ---- UDP -------------------------------------------------------------------------------------- */

int edo_udp_bind(const edo_addr *addr, edo_udp_socket **out)
{
	int f = edo_addr_family(addr);
	if (!out || (f != AF_INET && f != AF_INET6))
		return -EINVAL;
	return dgram_new(f, addr, sizeof(edo_udp_socket), (void **)out);
}

int edo_udp_from_fd(int fd, edo_udp_socket **out)
{
	if (!out)
		return -EINVAL;
	const edo__sock_kind k = {.type = SOCK_DGRAM, .ip = true};
	return edo__sock_adopt(fd, &k, sizeof(edo_udp_socket), (void **)out);
}

int edo_udp_connect(edo_udp_socket *u, const edo_addr *addr)
{
	if (!u)
		return -EINVAL;
	return sock_connect(&u->sock, addr);
}

edo_poll edo_udp_poll_send(edo_udp_socket *u, edo_cx *cx, const void *buf, size_t len, ssize_t *n)
{
	if (!u)
		return edo__poll_einval(n);
	return poll_send(&u->sock, cx, buf, len, NULL, n);
}

edo_poll edo_udp_poll_recv(edo_udp_socket *u, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	if (!u)
		return edo__poll_einval(n);
	return poll_recv(&u->sock, cx, buf, len, NULL, 0, n);
}

edo_poll edo_udp_poll_send_to(edo_udp_socket *u, edo_cx *cx, const void *buf, size_t len,
			      const edo_addr *to, ssize_t *n)
{
	if (!u || !to)
		return edo__poll_einval(n);
	return poll_send(&u->sock, cx, buf, len, to, n);
}

edo_poll edo_udp_poll_recv_from(edo_udp_socket *u, edo_cx *cx, void *buf, size_t len,
				edo_addr *from, ssize_t *n)
{
	if (!u)
		return edo__poll_einval(n);
	return poll_recv(&u->sock, cx, buf, len, from, 0, n);
}

ssize_t edo_udp_try_send_to(edo_udp_socket *u, const void *buf, size_t len, const edo_addr *to)
{
	if (!u || (!buf && len))
		return -EINVAL;
	dgram_ctx c = {.buf = (void *)(uintptr_t)buf, .len = len, .to = to};
	return edo__sock_try_io(&u->sock, EDO_INTEREST_WRITABLE, do_sendto, &c);
}

ssize_t edo_udp_try_recv_from(edo_udp_socket *u, void *buf, size_t len, edo_addr *from)
{
	return u ? try_recv(&u->sock, buf, len, from, 0) : -EINVAL;
}

edo_poll edo_udp_poll_peek_from(edo_udp_socket *u, edo_cx *cx, void *buf, size_t len,
				edo_addr *from, ssize_t *n)
{
	if (!u)
		return edo__poll_einval(n);
	return poll_recv(&u->sock, cx, buf, len, from, MSG_PEEK, n);
}

ssize_t edo_udp_try_peek_from(edo_udp_socket *u, void *buf, size_t len, edo_addr *from)
{
	return u ? try_recv(&u->sock, buf, len, from, MSG_PEEK) : -EINVAL;
}

edo_future *edo_udp_ready(edo_net_ready_fut *f, edo_udp_socket *u, uint32_t interest)
{
	return edo__sock_ready(f, u ? &u->sock : NULL, interest);
}

edo_future *edo_udp_send(edo_dgram_fut *f, edo_udp_socket *u, const void *buf, size_t len)
{
	return dgram_fut(f, u ? &u->sock : NULL, OP_SEND, buf, len, NULL, true);
}

edo_future *edo_udp_recv(edo_dgram_fut *f, edo_udp_socket *u, void *buf, size_t len)
{
	return dgram_fut(f, u ? &u->sock : NULL, 0, buf, len, NULL, true);
}

edo_future *edo_udp_send_to(edo_dgram_fut *f, edo_udp_socket *u, const void *buf, size_t len,
			    const edo_addr *to)
{
	return dgram_fut(f, u ? &u->sock : NULL, OP_SEND | OP_TO, buf, len, to, true);
}

edo_future *edo_udp_recv_from(edo_dgram_fut *f, edo_udp_socket *u, void *buf, size_t len)
{
	return dgram_fut(f, u ? &u->sock : NULL, OP_FROM, buf, len, NULL, true);
}

edo_future *edo_udp_peek_from(edo_dgram_fut *f, edo_udp_socket *u, void *buf, size_t len)
{
	return dgram_fut(f, u ? &u->sock : NULL, OP_FROM | OP_PEEK, buf, len, NULL, true);
}

int edo_udp_set_broadcast(edo_udp_socket *u, bool on)
{
	if (!u)
		return -EINVAL;
	return edo__sock_setopt(&u->sock, SOL_SOCKET, SO_BROADCAST, on);
}

int edo_udp_broadcast(edo_udp_socket *u)
{
	if (!u)
		return -EINVAL;
	int v = edo__sock_getopt(&u->sock, SOL_SOCKET, SO_BROADCAST);
	return v < 0 ? v : v != 0;
}

int edo_udp_set_ttl(edo_udp_socket *u, int ttl)
{
	if (!u)
		return -EINVAL;
	edo_addr a;
	int rc = edo__sock_name(&u->sock, &a, false);
	if (rc < 0)
		return rc;
	return edo__sock_set_ttl(&u->sock, edo_addr_family(&a), ttl);
}

static int mcast_v4(edo_udp_socket *u, const char *group, const char *iface, int opt)
{
	if (!u)
		return -EINVAL;
	struct ip_mreq m = {.imr_interface.s_addr = htonl(INADDR_ANY)};
	if (!group || inet_pton(AF_INET, group, &m.imr_multiaddr) != 1 ||
	    (iface && inet_pton(AF_INET, iface, &m.imr_interface) != 1))
		return -EINVAL;
	return edo__sock_setopt_raw(&u->sock, IPPROTO_IP, opt, &m, sizeof m);
}

int edo_udp_join_multicast_v4(edo_udp_socket *u, const char *group, const char *iface)
{
	return mcast_v4(u, group, iface, IP_ADD_MEMBERSHIP);
}

int edo_udp_leave_multicast_v4(edo_udp_socket *u, const char *group, const char *iface)
{
	return mcast_v4(u, group, iface, IP_DROP_MEMBERSHIP);
}

int edo_udp_set_multicast_loop_v4(edo_udp_socket *u, bool on)
{
	if (!u)
		return -EINVAL;
	return edo__sock_setopt(&u->sock, IPPROTO_IP, IP_MULTICAST_LOOP, on);
}

int edo_udp_set_multicast_ttl_v4(edo_udp_socket *u, int ttl)
{
	if (!u)
		return -EINVAL;
	return edo__sock_setopt(&u->sock, IPPROTO_IP, IP_MULTICAST_TTL, ttl);
}

static int mcast_v6(edo_udp_socket *u, const char *group, unsigned ifindex, int opt)
{
	if (!u)
		return -EINVAL;
	struct ipv6_mreq m = {.ipv6mr_interface = ifindex};
	if (!group || inet_pton(AF_INET6, group, &m.ipv6mr_multiaddr) != 1)
		return -EINVAL;
	return edo__sock_setopt_raw(&u->sock, IPPROTO_IPV6, opt, &m, sizeof m);
}

int edo_udp_join_multicast_v6(edo_udp_socket *u, const char *group, unsigned ifindex)
{
	return mcast_v6(u, group, ifindex, IPV6_ADD_MEMBERSHIP);
}

int edo_udp_leave_multicast_v6(edo_udp_socket *u, const char *group, unsigned ifindex)
{
	return mcast_v6(u, group, ifindex, IPV6_DROP_MEMBERSHIP);
}

int edo_udp_set_multicast_loop_v6(edo_udp_socket *u, bool on)
{
	if (!u)
		return -EINVAL;
	return edo__sock_setopt(&u->sock, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, on);
}

int edo_udp_local_addr(edo_udp_socket *u, edo_addr *out)
{
	if (!u)
		return -EINVAL;
	return edo__sock_name(&u->sock, out, false);
}

int edo_udp_peer_addr(edo_udp_socket *u, edo_addr *out)
{
	if (!u)
		return -EINVAL;
	return edo__sock_name(&u->sock, out, true);
}

int edo_udp_fd(const edo_udp_socket *u)
{
	if (!u)
		return -EINVAL;
	return edo__sock_fd(&u->sock);
}

edo_udp_socket *edo_udp_clone(edo_udp_socket *u)
{
	if (!u)
		return NULL;
	edo__sock_ref(&u->sock);
	return u;
}

ssize_t edo_udp_try_io(edo_udp_socket *u, uint32_t interest, edo_net_io_fn fn, void *ctx)
{
	return u ? edo__sock_user_try_io(&u->sock, interest, fn, ctx) : -EINVAL;
}

edo_poll edo_udp_poll_io(edo_udp_socket *u, edo_cx *cx, uint32_t interest, edo_net_io_fn fn,
			 void *ctx, ssize_t *n)
{
	if (!u)
		return edo__poll_einval(n);
	return edo__sock_user_poll_io(&u->sock, cx, interest, fn, ctx, n);
}

int edo_udp_into_fd(edo_udp_socket *u)
{
	return u ? dgram_into_fd(&u->sock) : -EINVAL;
}

int edo_udp_take_error(edo_udp_socket *u)
{
	return u ? edo__sock_take_error(&u->sock) : -EINVAL;
}

void edo_udp_close(edo_udp_socket *u)
{
	dgram_close(u ? &u->sock : NULL);
}

void edo_udp_drop(edo_udp_socket *u)
{
	dgram_drop(u ? &u->sock : NULL);
}

/* ---- Unix datagram ------------------------------------------------------------------------------ */

int edo_unix_datagram_bind(const char *path, edo_unix_datagram **out)
{
	edo_addr a;
	if (!out || (path && edo_addr_unix(&a, path) < 0))
		return -EINVAL;
	return dgram_new(AF_UNIX, path ? &a : NULL, sizeof(edo_unix_datagram), (void **)out);
}

int edo_unix_datagram_pair(edo_unix_datagram **a, edo_unix_datagram **b)
{
	if (!a || !b)
		return -EINVAL;
	int fds[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
		return -errno;
	edo_unix_datagram *x = calloc(1, sizeof *x), *y = calloc(1, sizeof *y);
	int rc = x && y ? 0 : -ENOMEM;
	if (!rc && (rc = edo__sock_init(&x->sock, fds[0])) == 0) {
		rc = edo__sock_init(&y->sock, fds[1]);
		if (rc < 0) {
			dgram_drop(&x->sock); /* closes fds[0] */
			x = NULL;
			fds[0] = -1;
		}
	}
	if (rc < 0) {
		free(x);
		free(y);
		if (fds[0] >= 0)
			close(fds[0]);
		close(fds[1]);
		return rc;
	}
	*a = x;
	*b = y;
	return 0;
}

int edo_unix_datagram_from_fd(int fd, edo_unix_datagram **out)
{
	if (!out)
		return -EINVAL;
	const edo__sock_kind k = {.type = SOCK_DGRAM, .ip = false};
	return edo__sock_adopt(fd, &k, sizeof(edo_unix_datagram), (void **)out);
}

int edo_unix_datagram_connect(edo_unix_datagram *d, const char *path)
{
	edo_addr a;
	if (!d || !path || edo_addr_unix(&a, path) < 0)
		return -EINVAL;
	return sock_connect(&d->sock, &a);
}

edo_poll edo_unix_datagram_poll_send(edo_unix_datagram *d, edo_cx *cx, const void *buf, size_t len,
				     ssize_t *n)
{
	if (!d)
		return edo__poll_einval(n);
	return poll_send(&d->sock, cx, buf, len, NULL, n);
}

edo_poll edo_unix_datagram_poll_recv(edo_unix_datagram *d, edo_cx *cx, void *buf, size_t len,
				     ssize_t *n)
{
	if (!d)
		return edo__poll_einval(n);
	return poll_recv(&d->sock, cx, buf, len, NULL, 0, n);
}

edo_poll edo_unix_datagram_poll_send_to(edo_unix_datagram *d, edo_cx *cx, const void *buf,
					size_t len, const char *path, ssize_t *n)
{
	edo_addr a;
	if (!d || !path || edo_addr_unix(&a, path) < 0)
		return edo__poll_einval(n);
	return poll_send(&d->sock, cx, buf, len, &a, n);
}

edo_poll edo_unix_datagram_poll_recv_from(edo_unix_datagram *d, edo_cx *cx, void *buf, size_t len,
					  edo_addr *from, ssize_t *n)
{
	if (!d)
		return edo__poll_einval(n);
	return poll_recv(&d->sock, cx, buf, len, from, 0, n);
}

ssize_t edo_unix_datagram_try_send_to(edo_unix_datagram *d, const void *buf, size_t len,
				      const char *path)
{
	edo_addr a;
	if (!d || (!buf && len) || (path && edo_addr_unix(&a, path) < 0))
		return -EINVAL;
	dgram_ctx c = {.buf = (void *)(uintptr_t)buf, .len = len, .to = path ? &a : NULL};
	return edo__sock_try_io(&d->sock, EDO_INTEREST_WRITABLE, do_sendto, &c);
}

ssize_t edo_unix_datagram_try_recv_from(edo_unix_datagram *d, void *buf, size_t len, edo_addr *from)
{
	return d ? try_recv(&d->sock, buf, len, from, 0) : -EINVAL;
}

edo_poll edo_unix_datagram_poll_peek_from(edo_unix_datagram *d, edo_cx *cx, void *buf, size_t len,
					  edo_addr *from, ssize_t *n)
{
	if (!d)
		return edo__poll_einval(n);
	return poll_recv(&d->sock, cx, buf, len, from, MSG_PEEK, n);
}

ssize_t edo_unix_datagram_try_peek_from(edo_unix_datagram *d, void *buf, size_t len, edo_addr *from)
{
	return d ? try_recv(&d->sock, buf, len, from, MSG_PEEK) : -EINVAL;
}

edo_future *edo_unix_datagram_ready(edo_net_ready_fut *f, edo_unix_datagram *d, uint32_t interest)
{
	return edo__sock_ready(f, d ? &d->sock : NULL, interest);
}

edo_future *edo_unix_datagram_send(edo_dgram_fut *f, edo_unix_datagram *d, const void *buf,
				   size_t len)
{
	return dgram_fut(f, d ? &d->sock : NULL, OP_SEND, buf, len, NULL, true);
}

edo_future *edo_unix_datagram_recv(edo_dgram_fut *f, edo_unix_datagram *d, void *buf, size_t len)
{
	return dgram_fut(f, d ? &d->sock : NULL, 0, buf, len, NULL, true);
}

edo_future *edo_unix_datagram_send_to(edo_dgram_fut *f, edo_unix_datagram *d, const void *buf,
				      size_t len, const char *path)
{
	edo_addr a;
	bool ok = path && edo_addr_unix(&a, path) == 0;
	return dgram_fut(f, d ? &d->sock : NULL, OP_SEND | OP_TO, buf, len, ok ? &a : NULL, ok);
}

edo_future *edo_unix_datagram_recv_from(edo_dgram_fut *f, edo_unix_datagram *d, void *buf,
					size_t len)
{
	return dgram_fut(f, d ? &d->sock : NULL, OP_FROM, buf, len, NULL, true);
}

edo_future *edo_unix_datagram_peek_from(edo_dgram_fut *f, edo_unix_datagram *d, void *buf,
					size_t len)
{
	return dgram_fut(f, d ? &d->sock : NULL, OP_FROM | OP_PEEK, buf, len, NULL, true);
}

int edo_unix_datagram_local_addr(edo_unix_datagram *d, edo_addr *out)
{
	if (!d)
		return -EINVAL;
	return edo__sock_name(&d->sock, out, false);
}

int edo_unix_datagram_peer_addr(edo_unix_datagram *d, edo_addr *out)
{
	if (!d)
		return -EINVAL;
	return edo__sock_name(&d->sock, out, true);
}

edo_unix_datagram *edo_unix_datagram_clone(edo_unix_datagram *d)
{
	if (!d)
		return NULL;
	edo__sock_ref(&d->sock);
	return d;
}

ssize_t edo_unix_datagram_try_io(edo_unix_datagram *d, uint32_t interest, edo_net_io_fn fn,
				 void *ctx)
{
	return d ? edo__sock_user_try_io(&d->sock, interest, fn, ctx) : -EINVAL;
}

edo_poll edo_unix_datagram_poll_io(edo_unix_datagram *d, edo_cx *cx, uint32_t interest,
				   edo_net_io_fn fn, void *ctx, ssize_t *n)
{
	if (!d)
		return edo__poll_einval(n);
	return edo__sock_user_poll_io(&d->sock, cx, interest, fn, ctx, n);
}

int edo_unix_datagram_into_fd(edo_unix_datagram *d)
{
	return d ? dgram_into_fd(&d->sock) : -EINVAL;
}

int edo_unix_datagram_take_error(edo_unix_datagram *d)
{
	return d ? edo__sock_take_error(&d->sock) : -EINVAL;
}

void edo_unix_datagram_close(edo_unix_datagram *d)
{
	dgram_close(d ? &d->sock : NULL);
}

void edo_unix_datagram_drop(edo_unix_datagram *d)
{
	dgram_drop(d ? &d->sock : NULL);
}
