#define _GNU_SOURCE
/* edo_tcp_socket (Tokio's TcpSocket), on both runtimes: a listener made
 * from one (SO_REUSEADDR, a bind, listen); a client set up before it
 * connects (a receive buffer, TCP_NODELAY, a bind to another loopback
 * address), whose accepted peer address is the one it bound and whose
 * stream kept the options; two sockets sharing a port with SO_REUSEPORT
 * (and -EADDRINUSE without); IPv6 with IPV6_V6ONLY; a connect refused (the
 * socket closed with the future); and the ownership rules: a listen that
 * fails (no runtime, bad backlog) leaves the socket usable, bad input to
 * a connect (an address of the other family included) is not taken, a
 * connect future dropped before its first poll closes the socket, a
 * listen whose registration fails stops listening again.  No descriptor is left open after any case. */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"
#include "net_helpers.h"

#define RCVBUF (256 * 1024)

static int fd_opt(int fd, int level, int name)
{
	int v = 0;
	socklen_t len = sizeof v;
	CHECK_EQ(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

/* ---- a listener and a client, both set up first ------------------------------------------------- */

typedef struct setup_frame {
	EDO_FRAME;
	edo_tcp_socket *ls, *cs;
	edo_tcp_listener *l;
	edo_addr laddr, caddr;
	edo_tcp_connect_fut c;
	edo_tcp_accept_fut af;
	edo_tcp_stream *client, *server;
	edo_write_all_fut wa;
	edo_read_exact_fut rx;
	char buf[8];
} setup_frame;

static void setup_cleanup(setup_frame *self)
{
	edo_tcp_socket_free(self->ls);
	edo_tcp_socket_free(self->cs);
	edo_tcp_stream_close(self->client);
	edo_tcp_stream_close(self->server);
	edo_tcp_listener_close(self->l);
}

EDO_ASYNC(setup_main, setup_frame, setup_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_tcp_socket_new(AF_INET, &self->ls), 0);
	CHECK_EQ(edo_tcp_socket_set_reuseaddr(self->ls, true), 0);
	CHECK_EQ(fd_opt(edo_tcp_socket_fd(self->ls), SOL_SOCKET, SO_REUSEADDR), 1);
	CHECK_EQ(edo_addr_ip(&self->laddr, "127.0.0.1", 0), 0);
	CHECK_EQ(edo_tcp_socket_bind(self->ls, &self->laddr), 0);
	CHECK_EQ(edo_tcp_socket_local_addr(self->ls, &self->laddr), 0);
	CHECK_NE(edo_addr_port(&self->laddr), 0);
	CHECK_EQ(edo_tcp_socket_listen(self->ls, 16, &self->l), 0);
	self->ls = NULL; /* the listener's now */

	CHECK_EQ(edo_tcp_socket_new(AF_INET, &self->cs), 0);
	CHECK_EQ(edo_tcp_socket_set_recv_buffer_size(self->cs, RCVBUF), 0);
	CHECK_GE(edo_tcp_socket_recv_buffer_size(self->cs), RCVBUF);
	CHECK_EQ(edo_tcp_socket_set_send_buffer_size(self->cs, RCVBUF), 0);
	CHECK_GE(edo_tcp_socket_send_buffer_size(self->cs), RCVBUF);
	CHECK_EQ(edo_tcp_socket_set_nodelay(self->cs, true), 0);
	CHECK_EQ(edo_tcp_socket_set_keepalive(self->cs, true), 0);
	/* Connect from another loopback address than the listener's. */
	CHECK_EQ(edo_addr_ip(&self->caddr, "127.0.0.2", 0), 0);
	CHECK_EQ(edo_tcp_socket_bind(self->cs, &self->caddr), 0);
	CHECK_EQ(edo_tcp_socket_local_addr(self->cs, &self->caddr), 0);
	EDO_AWAIT(edo_tcp_socket_connect(&self->c, self->cs, &self->laddr));
	self->cs = NULL; /* the future's, then the stream's */
	CHECK_EQ(self->c.rc, 0);
	self->client = self->c.stream;
	EDO_AWAIT(edo_tcp_listener_accept(&self->af, self->l));
	CHECK_EQ(self->af.rc, 0);
	self->server = self->af.stream;
	CHECK(edo_addr_equal(&self->af.peer, &self->caddr));
	{
		int fd = edo_tcp_stream_fd(self->client);
		CHECK_EQ(edo_tcp_stream_nodelay(self->client), 1);
		CHECK_EQ(fd_opt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
		CHECK_GE(fd_opt(fd, SOL_SOCKET, SO_RCVBUF), RCVBUF);
	}
	EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->client), "ping", 4));
	CHECK_EQ(self->wa.rc, 0);
	EDO_AWAIT(edo_read_exact(&self->rx, edo_tcp_stream_io(self->server), self->buf, 4));
	CHECK_EQ(self->rx.rc, 0);
	CHECK(memcmp(self->buf, "ping", 4) == 0);
	EDO_END();
}

static void setup_case(edo_rt_flavor fl)
{
	int before = count_fds();
	setup_frame m = {EDO_FRAME_INIT(setup_main)};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(set_up_then_listen_and_connect, setup_case)

/* ---- SO_REUSEPORT, IPv6, a refused connect ---------------------------------------------------- */

typedef struct port_frame {
	EDO_FRAME;
	edo_tcp_socket *a, *b;
	edo_tcp_listener *la, *lb;
	edo_addr addr;
	edo_tcp_connect_fut c;
	edo_tcp_stream *s;
} port_frame;

static void port_cleanup(port_frame *self)
{
	edo_tcp_socket_free(self->a);
	edo_tcp_socket_free(self->b);
	edo_tcp_listener_close(self->la);
	edo_tcp_listener_close(self->lb);
	edo_tcp_stream_close(self->s);
}

EDO_ASYNC(port_main, port_frame, port_cleanup)
{
	EDO_BEGIN();
	/* Two listeners on one port with SO_REUSEPORT. */
	CHECK_EQ(edo_tcp_socket_new(AF_INET, &self->a), 0);
	CHECK_EQ(edo_tcp_socket_set_reuseport(self->a, true), 0);
	CHECK_EQ(edo_addr_ip(&self->addr, "127.0.0.1", 0), 0);
	CHECK_EQ(edo_tcp_socket_bind(self->a, &self->addr), 0);
	CHECK_EQ(edo_tcp_socket_local_addr(self->a, &self->addr), 0);
	CHECK_EQ(edo_tcp_socket_new(AF_INET, &self->b), 0);
	CHECK_EQ(edo_tcp_socket_bind(self->b, &self->addr), -EADDRINUSE); /* not without */
	CHECK_EQ(edo_tcp_socket_set_reuseport(self->b, true), 0);
	CHECK_EQ(edo_tcp_socket_bind(self->b, &self->addr), 0);
	CHECK_EQ(edo_tcp_socket_listen(self->a, 0, &self->la), 0);
	self->a = NULL;
	CHECK_EQ(edo_tcp_socket_listen(self->b, 0, &self->lb), 0);
	self->b = NULL;
	edo_tcp_listener_close(self->la);
	edo_tcp_listener_close(self->lb);
	self->la = self->lb = NULL;

	/* Nothing listens there any more: refused, and the socket closed. */
	CHECK_EQ(edo_tcp_socket_new(AF_INET, &self->a), 0);
	EDO_AWAIT(edo_tcp_socket_connect(&self->c, self->a, &self->addr));
	self->a = NULL;
	CHECK_EQ(self->c.rc, -ECONNREFUSED);
	CHECK(self->c.stream == NULL);

	/* IPv6 only, on ::1 (where the kernel has IPv6). */
	CHECK_EQ(edo_tcp_socket_new(AF_INET6, &self->a), 0);
	CHECK_EQ(edo_tcp_socket_set_v6only(self->a, true), 0);
	CHECK_EQ(fd_opt(edo_tcp_socket_fd(self->a), IPPROTO_IPV6, IPV6_V6ONLY), 1);
	CHECK_EQ(edo_addr_ip(&self->addr, "::1", 0), 0);
	if (edo_tcp_socket_bind(self->a, &self->addr) == 0) {
		CHECK_EQ(edo_tcp_socket_local_addr(self->a, &self->addr), 0);
		CHECK_EQ(edo_addr_family(&self->addr), AF_INET6);
		CHECK_EQ(edo_tcp_socket_listen(self->a, 0, &self->la), 0);
		self->a = NULL;
		CHECK_EQ(edo_tcp_socket_new(AF_INET6, &self->b), 0);
		EDO_AWAIT(edo_tcp_socket_connect(&self->c, self->b, &self->addr));
		self->b = NULL;
		CHECK_EQ(self->c.rc, 0);
		self->s = self->c.stream;
	}
	EDO_END();
}

static void port_case(edo_rt_flavor fl)
{
	int before = count_fds();
	port_frame m = {EDO_FRAME_INIT(port_main)};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(reuseport_ipv6_and_refused, port_case)

/* ---- bad input and ownership ------------------------------------------------------------------- */

typedef struct own_frame {
	EDO_FRAME;
	edo_tcp_socket *s, *spare;
	edo_tcp_listener *l;
	edo_addr addr;
	edo_tcp_connect_fut c;
	edo_tcp_stream *client;
} own_frame;

static void own_cleanup(own_frame *self)
{
	edo_tcp_socket_free(self->s);
	edo_tcp_socket_free(self->spare);
	edo_tcp_listener_close(self->l);
	edo_tcp_stream_close(self->client);
}

EDO_ASYNC(own_main, own_frame, own_cleanup)
{
	EDO_BEGIN();
	/* Made outside the runtime (by the test), listening inside it. */
	CHECK_EQ(edo_tcp_socket_listen(self->s, -1, &self->l), -EINVAL);
	CHECK_EQ(edo_tcp_socket_listen(self->s, 4, NULL), -EINVAL);
	CHECK_EQ(edo_tcp_socket_listen(self->s, 4, &self->l), 0);
	self->s = NULL;
	CHECK_EQ(edo_tcp_listener_local_addr(self->l, &self->addr), 0);
	/* Bad input to a connect is not taken: the socket is still ours. */
	EDO_AWAIT(edo_tcp_socket_connect(&self->c, self->spare, NULL));
	CHECK_EQ(self->c.rc, -EINVAL);
	{
		edo_addr un;
		CHECK_EQ(edo_addr_unix(&un, "/tmp/x"), 0);
		EDO_AWAIT(edo_tcp_socket_connect(&self->c, self->spare, &un));
		CHECK_EQ(self->c.rc, -EINVAL);
	}
	EDO_AWAIT(edo_tcp_socket_connect(&self->c, NULL, &self->addr));
	CHECK_EQ(self->c.rc, -EINVAL);
	{
		/* An address of the other family: bad input too, not taken. */
		edo_addr v6;
		CHECK_EQ(edo_addr_ip(&v6, "::1", edo_addr_port(&self->addr)), 0);
		EDO_AWAIT(edo_tcp_socket_connect(&self->c, self->spare, &v6));
		CHECK_EQ(self->c.rc, -EINVAL);
	}
	CHECK_EQ(edo_tcp_socket_set_nodelay(self->spare, true), 0); /* still usable */
	{
		edo_tcp_socket *s6;
		CHECK_EQ(edo_tcp_socket_new(AF_INET6, &s6), 0);
		EDO_AWAIT(edo_tcp_socket_connect(&self->c, s6, &self->addr));
		CHECK_EQ(self->c.rc, -EINVAL);
		CHECK_EQ(edo_tcp_socket_set_nodelay(s6, true), 0);
		edo_tcp_socket_free(s6);
	}
	{
		/* A listen whose registration fails (the descriptor is
		 * registered already, as an edo_async_fd) stops listening
		 * again: no client's connect completes, and it can listen
		 * later. */
		edo_tcp_socket *s;
		edo_addr a;
		edo_async_fd *afd;
		edo_tcp_listener *l;
		CHECK_EQ(edo_tcp_socket_new(AF_INET, &s), 0);
		CHECK_EQ(edo_addr_ip(&a, "127.0.0.1", 0), 0);
		CHECK_EQ(edo_tcp_socket_bind(s, &a), 0);
		CHECK_EQ(edo_tcp_socket_local_addr(s, &a), 0);
		CHECK_EQ(edo_async_fd_new(edo_tcp_socket_fd(s), EDO_INTEREST_READABLE, &afd), 0);
		CHECK_EQ(edo_tcp_socket_listen(s, 4, &l), -EEXIST);
		CHECK_EQ(fd_opt(edo_tcp_socket_fd(s), SOL_SOCKET, SO_ACCEPTCONN), 0);
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK_EQ(connect(c, &a.u.sa, a.len), -1);
		CHECK_EQ(errno, ECONNREFUSED);
		CHECK_EQ(close(c), 0);
		CHECK_EQ(edo_async_fd_free(afd), edo_tcp_socket_fd(s));
		CHECK_EQ(edo_tcp_socket_listen(s, 4, &l), 0);
		edo_addr b;
		CHECK_EQ(edo_tcp_listener_local_addr(l, &b), 0);
		CHECK_EQ(edo_addr_family(&b), AF_INET);
		edo_tcp_listener_close(l);
	}
	/* A connect future dropped before its first poll closes its socket. */
	edo_tcp_socket_connect(&self->c, self->spare, &self->addr);
	self->spare = NULL;
	edo_future_drop(&self->c.base);
	/* And one that runs, from a socket made before the runtime. */
	CHECK_EQ(edo_tcp_socket_new(AF_INET, &self->spare), 0);
	EDO_AWAIT(edo_tcp_socket_connect(&self->c, self->spare, &self->addr));
	self->spare = NULL;
	CHECK_EQ(self->c.rc, 0);
	self->client = self->c.stream;
	EDO_END();
}

static void own_case(edo_rt_flavor fl)
{
	int before = count_fds();
	edo_tcp_socket *s = NULL;
	edo_addr a, un;
	CHECK_EQ(edo_tcp_socket_new(AF_UNIX, &s), -EINVAL);
	CHECK_EQ(edo_tcp_socket_new(AF_INET, NULL), -EINVAL);
	CHECK(s == NULL);
	CHECK_EQ(edo_tcp_socket_set_reuseaddr(NULL, true), -EINVAL);
	CHECK_EQ(edo_tcp_socket_set_recv_buffer_size(NULL, 1), -EINVAL);
	CHECK_EQ(edo_tcp_socket_recv_buffer_size(NULL), -EINVAL);
	CHECK_EQ(edo_tcp_socket_bind(NULL, &a), -EINVAL);
	CHECK_EQ(edo_tcp_socket_local_addr(NULL, &a), -EINVAL);
	CHECK_EQ(edo_tcp_socket_fd(NULL), -EINVAL);
	edo_tcp_socket_free(NULL);

	CHECK_EQ(edo_tcp_socket_new(AF_INET, &s), 0);
	CHECK_EQ(edo_tcp_socket_set_send_buffer_size(s, (unsigned)INT_MAX + 1u), -EINVAL);
	CHECK_EQ(edo_tcp_socket_bind(s, NULL), -EINVAL);
	CHECK_EQ(edo_addr_unix(&un, "/tmp/x"), 0);
	CHECK_EQ(edo_tcp_socket_bind(s, &un), -EINVAL);
	CHECK_EQ(edo_tcp_socket_local_addr(s, NULL), -EINVAL);
	CHECK_EQ(edo_addr_ip(&a, "127.0.0.1", 0), 0);
	CHECK_EQ(edo_tcp_socket_bind(s, &a), 0);
	/* No runtime: refused before it listens; the socket stays ours. */
	edo_tcp_listener *l = NULL;
	CHECK_EQ(edo_tcp_socket_listen(s, 4, &l), EDO_ENORUNTIME);
	CHECK(l == NULL);
	CHECK_EQ(fd_opt(edo_tcp_socket_fd(s), SOL_SOCKET, SO_ACCEPTCONN), 0);

	own_frame m = {EDO_FRAME_INIT(own_main), .s = s};
	CHECK_EQ(edo_tcp_socket_new(AF_INET, &m.spare), 0);
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(bad_input_and_ownership, own_case)

TEST_MAIN()
