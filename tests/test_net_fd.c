#define _GNU_SOURCE
/* Sockets made elsewhere, taken over by the _from_fd() constructors of
 * edo/net.h (Tokio's from_std): a blocking TCP listener and a connected
 * client socket made with plain syscalls, a UDP socket, the two ends of
 * Unix stream and datagram socketpairs and a Unix listener, each adopted
 * and then used through the runtime (a receive that waits before the data
 * comes, an accept, both directions of a stream), on both runtimes; each
 * left in non-blocking mode and closed with its handle.  Bad input: a
 * negative or closed descriptor, a pipe, every wrong kind of socket
 * (type, family, protocol, listening or not), a descriptor registered
 * already (made blocking again, it is left blocking), and no runtime;
 * an unconnected Unix stream (-ENOTCONN); Multipath TCP taken as TCP.
 * Closing a taken-over listener or UDP socket while a clone waits on it
 * wakes the waiter with -EBADF and leaves the kernel's socket alone (a dup
 * of it still listens and receives), while a listener Edo made refuses
 * connections at once.  Two threads taking one descriptor
 * over at once, 20,000 times: one wins, the other gets -EEXIST and leaves
 * the winner's descriptor non-blocking.  The _into_fd() functions give
 * each kind of descriptor back (open, deregistered: taking it over again
 * works), only from the last handle (one racing a close on another thread,
 * 20,000 times, says -EBADF); take_error reports a refused connect
 * of a stream taken over while connecting, once; each fails with its error and leaves the
 * descriptor as it was (open, blocking, not registered: it can be adopted
 * afterwards).  No descriptor is left open after any case. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"
#include "net_helpers.h"

/* ---- plain sockets ----------------------------------------------------------------------------- */

/* A blocking TCP listener on 127.0.0.1 with a free port: its fd, *port. */
static int raw_tcp_listener(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_GE(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	CHECK_EQ(listen(fd, 16), 0);
	socklen_t len = sizeof a;
	CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A blocking TCP socket connected to 127.0.0.1:@port (the connect
 * completes in the listener's backlog, before any accept). */
static int raw_tcp_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_GE(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

/* A blocking UDP socket bound to 127.0.0.1 with a free port. */
static int raw_udp(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK_GE(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t len = sizeof a;
	CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static bool is_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	CHECK_GE(fl, 0);
	return (fl & O_NONBLOCK) != 0;
}

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* ---- TCP: an adopted listener accepts from an adopted client ---------------------------------- */

/* The writer of "ping", spawned once the connection is accepted, so that
 * the server's read waits first. */
typedef struct ping_frame {
	EDO_FRAME;
	edo_tcp_stream *c;
	edo_sleep sl;
	edo_write_all_fut wa;
} ping_frame;

EDO_ASYNC(ping_main, ping_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_SLEEP(&self->sl, EDO_MS(10));
	EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->c), "ping", 4));
	CHECK_EQ(self->wa.rc, 0);
	EDO_END();
}

typedef struct tcp_frame {
	EDO_FRAME;
	int lfd, cfd;
	uint16_t port;
	edo_tcp_listener *l;
	edo_tcp_stream *c, *s;
	edo_tcp_accept_fut af;
	edo_write_all_fut wa;
	edo_read_exact_fut rx;
	edo_join *j;
	int rc;
	char buf[8];
} tcp_frame;

static void tcp_cleanup(tcp_frame *self)
{
	edo_tcp_stream_close(self->c);
	edo_tcp_stream_close(self->s);
	edo_tcp_listener_close(self->l);
}

EDO_ASYNC(tcp_main, tcp_frame, tcp_cleanup)
{
	EDO_BEGIN();
	CHECK(!is_nonblocking(self->lfd));
	CHECK_EQ(edo_tcp_listener_from_fd(self->lfd, &self->l), 0);
	CHECK(is_nonblocking(self->lfd));
	CHECK_EQ(edo_tcp_listener_fd(self->l), self->lfd);
	{
		edo_addr a;
		CHECK_EQ(edo_tcp_listener_local_addr(self->l, &a), 0);
		CHECK_EQ(edo_addr_port(&a), self->port);
	}
	self->cfd = raw_tcp_connect(self->port);
	CHECK_EQ(edo_tcp_stream_from_fd(self->cfd, &self->c), 0);
	CHECK(is_nonblocking(self->cfd));
	CHECK_EQ(edo_tcp_stream_fd(self->c), self->cfd);
	EDO_AWAIT(edo_tcp_listener_accept(&self->af, self->l));
	CHECK_EQ(self->af.rc, 0);
	self->s = self->af.stream;
	{
		edo_addr peer, local;
		CHECK_EQ(edo_tcp_stream_peer_addr(self->c, &peer), 0);
		CHECK_EQ(edo_addr_port(&peer), self->port);
		CHECK_EQ(edo_tcp_stream_local_addr(self->c, &local), 0);
		CHECK_EQ(edo_tcp_stream_peer_addr(self->s, &peer), 0);
		CHECK(edo_addr_equal(&local, &peer));
	}
	/* The server side reads before the client writes: it waits. */
	CHECK_EQ(EDO_SPAWN(&self->j, ping_main, .c = self->c), 0);
	EDO_AWAIT(edo_read_exact(&self->rx, edo_tcp_stream_io(self->s), self->buf, 4));
	CHECK_EQ(self->rx.rc, 0);
	CHECK(memcmp(self->buf, "ping", 4) == 0);
	EDO_AWAIT_JOIN(self->j, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->j);
	EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->s), "pong", 4));
	CHECK_EQ(self->wa.rc, 0);
	EDO_AWAIT(edo_read_exact(&self->rx, edo_tcp_stream_io(self->c), self->buf, 4));
	CHECK_EQ(self->rx.rc, 0);
	CHECK(memcmp(self->buf, "pong", 4) == 0);
	/* A half-close of the adopted stream is seen by its peer. */
	CHECK_EQ(edo_tcp_stream_shutdown(self->c, SHUT_WR), 0);
	EDO_AWAIT(edo_read_exact(&self->rx, edo_tcp_stream_io(self->s), self->buf, 1));
	CHECK_EQ(self->rx.rc, EDO_EEOF);
	edo_tcp_stream_close(self->c);
	self->c = NULL;
	CHECK(!is_open(self->cfd)); /* the stream owned it */
	edo_tcp_listener_close(self->l);
	self->l = NULL;
	CHECK(!is_open(self->lfd));
	EDO_END();
}

static void tcp_from_fd(edo_rt_flavor fl)
{
	int before = count_fds();
	tcp_frame m = {EDO_FRAME_INIT(tcp_main)};
	m.lfd = raw_tcp_listener(&m.port);
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(tcp_from_fd, tcp_from_fd)

/* ---- UDP: a receive on an adopted socket waits for the datagram --------------------------------- */

typedef struct udp_frame {
	EDO_FRAME;
	int fd;
	uint16_t port;
	edo_udp_socket *u, *v;
	edo_dgram_fut rf, sf;
	edo_sleep sl;
	edo_addr to;
	edo_join *j;
	int rc;
	char buf[16];
} udp_frame;

static void udp_cleanup(udp_frame *self)
{
	edo_udp_close(self->u);
	edo_udp_close(self->v);
}

typedef struct send_later_frame {
	EDO_FRAME;
	edo_udp_socket *v;
	edo_addr to;
	edo_sleep sl;
	edo_dgram_fut sf;
} send_later_frame;

EDO_ASYNC(send_later, send_later_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_SLEEP(&self->sl, EDO_MS(20));
	EDO_AWAIT(edo_udp_send_to(&self->sf, self->v, "hello", 5, &self->to));
	CHECK_EQ(self->sf.n, 5);
	EDO_END();
}

EDO_ASYNC(udp_main, udp_frame, udp_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_udp_from_fd(self->fd, &self->u), 0);
	CHECK(is_nonblocking(self->fd));
	CHECK_EQ(edo_udp_fd(self->u), self->fd);
	CHECK_EQ(edo_addr_ip(&self->to, "127.0.0.1", 0), 0);
	CHECK_EQ(edo_udp_bind(&self->to, &self->v), 0);
	CHECK_EQ(edo_addr_ip(&self->to, "127.0.0.1", self->port), 0);
	CHECK_EQ(EDO_SPAWN(&self->j, send_later, .v = self->v, .to = self->to), 0);
	EDO_AWAIT(edo_udp_recv_from(&self->rf, self->u, self->buf, sizeof self->buf));
	CHECK_EQ(self->rf.n, 5);
	CHECK(memcmp(self->buf, "hello", 5) == 0);
	{
		edo_addr va;
		CHECK_EQ(edo_udp_local_addr(self->v, &va), 0);
		CHECK(edo_addr_equal(&va, &self->rf.from));
	}
	EDO_AWAIT_JOIN(self->j, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->j);
	/* And back, from the adopted socket. */
	CHECK_EQ(edo_udp_local_addr(self->v, &self->to), 0);
	EDO_AWAIT(edo_udp_send_to(&self->sf, self->u, "again", 5, &self->to));
	CHECK_EQ(self->sf.n, 5);
	EDO_AWAIT(edo_udp_recv(&self->rf, self->v, self->buf, sizeof self->buf));
	CHECK_EQ(self->rf.n, 5);
	CHECK(memcmp(self->buf, "again", 5) == 0);
	edo_udp_close(self->u);
	self->u = NULL;
	CHECK(!is_open(self->fd));
	EDO_END();
}

static void udp_from_fd(edo_rt_flavor fl)
{
	int before = count_fds();
	udp_frame m = {EDO_FRAME_INIT(udp_main)};
	m.fd = raw_udp(&m.port);
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(udp_from_fd, udp_from_fd)

/* ---- Unix: socketpairs and a listener ---------------------------------------------------------- */

typedef struct unix_frame {
	EDO_FRAME;
	int sp[2], dp[2], lfd;
	char path[64];
	edo_unix_stream *a, *b, *c, *s;
	edo_unix_datagram *da, *db;
	edo_unix_listener *l;
	edo_unix_accept_fut af;
	edo_dgram_fut df;
	edo_write_all_fut wa;
	edo_read_exact_fut rx;
	char buf[16];
} unix_frame;

static void unix_cleanup(unix_frame *self)
{
	edo_unix_stream_close(self->a);
	edo_unix_stream_close(self->b);
	edo_unix_stream_close(self->c);
	edo_unix_stream_close(self->s);
	edo_unix_datagram_close(self->da);
	edo_unix_datagram_close(self->db);
	edo_unix_listener_close(self->l);
}

EDO_ASYNC(unix_main, unix_frame, unix_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_unix_stream_from_fd(self->sp[0], &self->a), 0);
	CHECK_EQ(edo_unix_stream_from_fd(self->sp[1], &self->b), 0);
	CHECK(is_nonblocking(self->sp[0]) && is_nonblocking(self->sp[1]));
	EDO_AWAIT(edo_write_all(&self->wa, edo_unix_stream_io(self->a), "abc", 3));
	CHECK_EQ(self->wa.rc, 0);
	EDO_AWAIT(edo_read_exact(&self->rx, edo_unix_stream_io(self->b), self->buf, 3));
	CHECK_EQ(self->rx.rc, 0);
	CHECK(memcmp(self->buf, "abc", 3) == 0);

	CHECK_EQ(edo_unix_datagram_from_fd(self->dp[0], &self->da), 0);
	CHECK_EQ(edo_unix_datagram_from_fd(self->dp[1], &self->db), 0);
	EDO_AWAIT(edo_unix_datagram_send(&self->df, self->da, "dgram", 5));
	CHECK_EQ(self->df.n, 5);
	EDO_AWAIT(edo_unix_datagram_recv(&self->df, self->db, self->buf, sizeof self->buf));
	CHECK_EQ(self->df.n, 5);
	CHECK(memcmp(self->buf, "dgram", 5) == 0);

	CHECK_EQ(edo_unix_listener_from_fd(self->lfd, &self->l), 0);
	CHECK(is_nonblocking(self->lfd));
	CHECK_EQ(edo_unix_stream_connect(self->path, &self->c), 0);
	EDO_AWAIT(edo_unix_listener_accept(&self->af, self->l));
	CHECK_EQ(self->af.rc, 0);
	self->s = self->af.stream;
	EDO_AWAIT(edo_write_all(&self->wa, edo_unix_stream_io(self->s), "xyz", 3));
	CHECK_EQ(self->wa.rc, 0);
	EDO_AWAIT(edo_read_exact(&self->rx, edo_unix_stream_io(self->c), self->buf, 3));
	CHECK_EQ(self->rx.rc, 0);
	CHECK(memcmp(self->buf, "xyz", 3) == 0);

	unix_cleanup(self);
	self->a = self->b = self->c = self->s = NULL;
	self->da = self->db = NULL;
	self->l = NULL;
	CHECK(!is_open(self->sp[0]) && !is_open(self->sp[1]));
	CHECK(!is_open(self->dp[0]) && !is_open(self->dp[1]));
	CHECK(!is_open(self->lfd));
	EDO_END();
}

static void unix_from_fd(edo_rt_flavor fl)
{
	int before = count_fds();
	unix_frame m = {EDO_FRAME_INIT(unix_main)};
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m.sp), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, m.dp), 0);
	char dir[] = "/tmp/edo-fd-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	snprintf(m.path, sizeof m.path, "%s/l.sock", dir);
	m.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_GE(m.lfd, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", m.path);
	CHECK_EQ(bind(m.lfd, (struct sockaddr *)&a, sizeof a), 0);
	CHECK_EQ(listen(m.lfd, 4), 0);
	run(fl, &m.edo_base);
	CHECK_EQ(unlink(m.path), 0);
	CHECK_EQ(rmdir(dir), 0);
	CHECK_EQ(count_fds(), before);
}
BOTH(unix_from_fd, unix_from_fd)

/* ---- bad input --------------------------------------------------------------------------------- */

/* The six constructors, by index, on @fd; *@out receives the handle. */
#define NKINDS 6
static const char *const kind_name[NKINDS] = {"tcp_listener",  "tcp_stream",  "udp",
					      "unix_listener", "unix_stream", "unix_datagram"};

static int adopt(int kind, int fd, void **out)
{
	switch (kind) {
	case 0:
		return edo_tcp_listener_from_fd(fd, (edo_tcp_listener **)out);
	case 1:
		return edo_tcp_stream_from_fd(fd, (edo_tcp_stream **)out);
	case 2:
		return edo_udp_from_fd(fd, (edo_udp_socket **)out);
	case 3:
		return edo_unix_listener_from_fd(fd, (edo_unix_listener **)out);
	case 4:
		return edo_unix_stream_from_fd(fd, (edo_unix_stream **)out);
	default:
		return edo_unix_datagram_from_fd(fd, (edo_unix_datagram **)out);
	}
}

static void release(int kind, void *h)
{
	switch (kind) {
	case 0:
		edo_tcp_listener_close(h);
		break;
	case 1:
		edo_tcp_stream_close(h);
		break;
	case 2:
		edo_udp_close(h);
		break;
	case 3:
		edo_unix_listener_close(h);
		break;
	case 4:
		edo_unix_stream_close(h);
		break;
	default:
		edo_unix_datagram_close(h);
	}
}

/* One blocking socket of each kind the constructors take (fd[k] is right
 * for constructor k), and kinds that none of them takes. */
typedef struct sock_set {
	int fd[NKINDS];
	int seqpacket, tcp_unconnected, unix_peer, udp6;
	uint16_t port;
	char dir[32], path[64];
} sock_set;

static void make_set(sock_set *z)
{
	z->fd[0] = raw_tcp_listener(&z->port);
	z->fd[1] = raw_tcp_connect(z->port);
	uint16_t p;
	z->fd[2] = raw_udp(&p);
	memcpy(z->dir, "/tmp/edo-fd-XXXXXX", sizeof "/tmp/edo-fd-XXXXXX");
	CHECK(mkdtemp(z->dir) != NULL);
	snprintf(z->path, sizeof z->path, "%s/l.sock", z->dir);
	z->fd[3] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", z->path);
	CHECK_EQ(bind(z->fd[3], (struct sockaddr *)&a, sizeof a), 0);
	CHECK_EQ(listen(z->fd[3], 4), 0);
	int sp[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	z->fd[4] = sp[0];
	z->unix_peer = sp[1];
	z->fd[5] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK_GE(z->fd[5], 0);
	z->seqpacket = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK_GE(z->seqpacket, 0);
	z->tcp_unconnected = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_GE(z->tcp_unconnected, 0);
	z->udp6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK_GE(z->udp6, 0);
}

static void close_set(sock_set *z)
{
	for (int k = 0; k < NKINDS; k++)
		if (z->fd[k] >= 0)
			CHECK_EQ(close(z->fd[k]), 0);
	CHECK_EQ(close(z->seqpacket), 0);
	CHECK_EQ(close(z->tcp_unconnected), 0);
	CHECK_EQ(close(z->udp6), 0);
	CHECK_EQ(close(z->unix_peer), 0);
	CHECK_EQ(unlink(z->path), 0);
	CHECK_EQ(rmdir(z->dir), 0);
}

/* @fd failed to be adopted: it is as it was (open, blocking). */
static void check_untouched(int fd)
{
	CHECK(is_open(fd));
	CHECK(!is_nonblocking(fd));
}

typedef struct bad_frame {
	EDO_FRAME;
	sock_set *z;
} bad_frame;

EDO_ASYNC(bad_main, bad_frame, NULL)
{
	EDO_BEGIN();
	sock_set *z = self->z;
	void *h = NULL;
	int pipefd[2];
	CHECK_EQ(pipe2(pipefd, O_CLOEXEC), 0);
	int gone = dup(pipefd[0]);
	CHECK_GE(gone, 0);
	CHECK_EQ(close(gone), 0);
	for (int k = 0; k < NKINDS; k++) {
		fprintf(stderr, "  %s\n", kind_name[k]);
		CHECK_EQ(adopt(k, -1, &h), -EINVAL);
		CHECK_EQ(adopt(k, z->fd[k], NULL), -EINVAL);
		check_untouched(z->fd[k]);
		CHECK_EQ(adopt(k, gone, &h), -EBADF);
		CHECK_EQ(adopt(k, pipefd[0], &h), -ENOTSOCK);
		check_untouched(pipefd[0]);
		/* Every other kind's socket is refused, and left as it was. */
		for (int o = 0; o < NKINDS; o++) {
			if (o == k)
				continue;
			bool listening_mismatch = (k == 0 && o == 1) || (k == 1 && o == 0) ||
						  (k == 3 && o == 4) || (k == 4 && o == 3);
			CHECK_EQ(adopt(k, z->fd[o], &h),
				 listening_mismatch ? -EINVAL : -EPROTOTYPE);
			check_untouched(z->fd[o]);
		}
		CHECK_EQ(adopt(k, z->seqpacket, &h), -EPROTOTYPE);
		check_untouched(z->seqpacket);
		CHECK(h == NULL);
	}
	/* An unconnected IPv6 TCP socket is a stream, not a listener. */
	CHECK_EQ(edo_tcp_listener_from_fd(z->tcp_unconnected, (edo_tcp_listener **)&h), -EINVAL);
	check_untouched(z->tcp_unconnected);
	/* A Unix stream that is not connected never will be (its reads would
	 * say -EINVAL): refused. */
	{
		int u = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK_GE(u, 0);
		CHECK_EQ(edo_unix_stream_from_fd(u, (edo_unix_stream **)&h), -ENOTCONN);
		check_untouched(u);
		CHECK_EQ(close(u), 0);
	}
	/* Multipath TCP is TCP (where the kernel has it). */
	{
		int m = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 262 /* IPPROTO_MPTCP */);
		if (m >= 0) {
			struct sockaddr_in a = {.sin_family = AF_INET,
						.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
			CHECK_EQ(bind(m, (struct sockaddr *)&a, sizeof a), 0);
			CHECK_EQ(listen(m, 4), 0);
			CHECK_EQ(edo_udp_from_fd(m, (edo_udp_socket **)&h), -EPROTOTYPE);
			CHECK_EQ(edo_tcp_listener_from_fd(m, (edo_tcp_listener **)&h), 0);
			edo_tcp_listener_close(h);
			CHECK(!is_open(m));
			h = NULL;
		}
	}
	/* Each kind taken twice: the second is refused and the first works. */
	for (int k = 0; k < NKINDS; k++) {
		void *first = NULL, *again = NULL;
		CHECK_EQ(adopt(k, z->fd[k], &first), 0);
		CHECK(is_nonblocking(z->fd[k]));
		CHECK_EQ(adopt(k, z->fd[k], &again), -EEXIST);
		CHECK(again == NULL);
		CHECK(is_open(z->fd[k]));
		/* Made blocking again by its owner: the refusal restores that. */
		int fl = fcntl(z->fd[k], F_GETFL);
		CHECK_EQ(fcntl(z->fd[k], F_SETFL, fl & ~O_NONBLOCK), 0);
		CHECK_EQ(adopt(k, z->fd[k], &again), -EEXIST);
		check_untouched(z->fd[k]);
		CHECK_EQ(fcntl(z->fd[k], F_SETFL, fl), 0);
		release(k, first);
		CHECK(!is_open(z->fd[k])); /* the handle owned it */
		z->fd[k] = -1;
	}
	/* IPv6 UDP too; then the close. */
	CHECK_EQ(edo_udp_from_fd(z->udp6, (edo_udp_socket **)&h), 0);
	edo_udp_close(h);
	z->udp6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0); /* close_set() closes one */
	CHECK_GE(z->udp6, 0);
	CHECK_EQ(close(pipefd[0]), 0);
	CHECK_EQ(close(pipefd[1]), 0);
	EDO_END();
}

static void from_fd_bad_input(edo_rt_flavor fl)
{
	int before = count_fds();
	sock_set z;
	make_set(&z);
	/* No runtime: refused before anything is looked at or changed. */
	for (int k = 0; k < NKINDS; k++) {
		void *h = NULL;
		CHECK_EQ(adopt(k, z.fd[k], &h), EDO_ENORUNTIME);
		CHECK(h == NULL);
		check_untouched(z.fd[k]);
	}
	bad_frame m = {EDO_FRAME_INIT(bad_main), .z = &z};
	run(fl, &m.edo_base);
	close_set(&z);
	CHECK_EQ(count_fds(), before);
}
BOTH(from_fd_bad_input, from_fd_bad_input)

/* ---- closing a shared socket leaves the kernel's socket alone --------------------------------- */

/* Closing a listener or a UDP socket while another handle (a clone, in a
 * task waiting on it) is alive wakes that task with -EBADF, and does not
 * shut the socket down: another descriptor for it (systemd's copy of an
 * activated listener; here a dup) still listens, and still receives. */
typedef struct shared_frame {
	EDO_FRAME;
	int ldup, udup;
	uint16_t lport, uport;
	edo_tcp_listener *l;
	edo_udp_socket *u;
	edo_join *ja, *jr;
	atomic_int waiting;
	edo_sleep sl;
	int rc;
} shared_frame;

typedef struct sh_accept_frame {
	EDO_FRAME;
	edo_tcp_listener *l;
	atomic_int *waiting;
	edo_tcp_accept_fut af;
	int rc;
} sh_accept_frame;

static void sh_accept_cleanup(sh_accept_frame *self)
{
	edo_tcp_listener_drop(self->l);
}

EDO_ASYNC(sh_accept, sh_accept_frame, sh_accept_cleanup)
{
	EDO_BEGIN();
	edo_tcp_listener_accept(&self->af, self->l);
	atomic_fetch_add(self->waiting, 1);
	EDO_AWAIT(&self->af.base);
	self->rc = self->af.rc;
	EDO_END();
}

typedef struct sh_recv_frame {
	EDO_FRAME;
	edo_udp_socket *u;
	atomic_int *waiting;
	edo_dgram_fut f;
	char buf[8];
	ssize_t n;
} sh_recv_frame;

static void sh_recv_cleanup(sh_recv_frame *self)
{
	edo_udp_drop(self->u);
}

EDO_ASYNC(sh_recv, sh_recv_frame, sh_recv_cleanup)
{
	EDO_BEGIN();
	edo_udp_recv(&self->f, self->u, self->buf, sizeof self->buf);
	atomic_fetch_add(self->waiting, 1);
	EDO_AWAIT(&self->f.base);
	self->n = self->f.n;
	EDO_END();
}

EDO_ASYNC(shared_main, shared_frame, NULL)
{
	EDO_BEGIN();
	{
		int lfd = raw_tcp_listener(&self->lport);
		self->ldup = dup(lfd);
		CHECK_GE(self->ldup, 0);
		CHECK_EQ(edo_tcp_listener_from_fd(lfd, &self->l), 0);
		int ufd = raw_udp(&self->uport);
		self->udup = dup(ufd);
		CHECK_GE(self->udup, 0);
		CHECK_EQ(edo_udp_from_fd(ufd, &self->u), 0);
	}
	CHECK_EQ(EDO_SPAWN(&self->ja, sh_accept, .l = edo_tcp_listener_clone(self->l),
			   .waiting = &self->waiting),
		 0);
	CHECK_EQ(EDO_SPAWN(&self->jr, sh_recv, .u = edo_udp_clone(self->u),
			   .waiting = &self->waiting),
		 0);
	while (atomic_load(&self->waiting) < 2)
		EDO_AWAIT_SLEEP(&self->sl, EDO_MS(1));
	EDO_AWAIT_SLEEP(&self->sl, EDO_MS(5));
	edo_tcp_listener_close(self->l);
	self->l = NULL;
	edo_udp_close(self->u);
	self->u = NULL;
	EDO_AWAIT_JOIN(self->ja, &self->rc);
	CHECK_EQ(self->rc, 0);
	CHECK_EQ(EDO_JOIN_OUTPUT(self->ja, sh_accept)->rc, -EBADF);
	edo_join_detach(self->ja);
	EDO_AWAIT_JOIN(self->jr, &self->rc);
	CHECK_EQ(self->rc, 0);
	CHECK_EQ(EDO_JOIN_OUTPUT(self->jr, sh_recv)->n, -EBADF);
	edo_join_detach(self->jr);
	EDO_END();
}

static void close_shared(edo_rt_flavor fl)
{
	int before = count_fds();
	shared_frame m = {EDO_FRAME_INIT(shared_main)};
	run(fl, &m.edo_base);
	/* The dups: still listening, still receiving. */
	int listening = 0;
	socklen_t len = sizeof listening;
	CHECK_EQ(getsockopt(m.ldup, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len), 0);
	CHECK_EQ(listening, 1);
	int c = raw_tcp_connect(m.lport);
	int a = accept(m.ldup, NULL, NULL);
	CHECK_GE(a, 0);
	CHECK_EQ(close(a), 0);
	CHECK_EQ(close(c), 0);
	int snd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_port = htons(m.uport),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	CHECK_EQ(sendto(snd, "u", 1, 0, (struct sockaddr *)&to, sizeof to), 1);
	char b;
	CHECK_EQ(recv(m.udup, &b, 1, 0), 1);
	CHECK_EQ(close(snd), 0);
	CHECK_EQ(close(m.ldup), 0);
	CHECK_EQ(close(m.udup), 0);
	CHECK_EQ(count_fds(), before);
}

/* A listener Edo made, closed while a clone lives: shut down at once, so
 * a client's connect is refused rather than queued for nobody. */
typedef struct own_close_frame {
	EDO_FRAME;
	edo_addr addr;
	int refused;
} own_close_frame;

EDO_ASYNC(own_close_main, own_close_frame, NULL)
{
	EDO_BEGIN();
	{
		edo_tcp_listener *l = listen_local(&self->addr);
		edo_tcp_listener *c = edo_tcp_listener_clone(l);
		edo_tcp_listener_close(l);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK_GE(fd, 0);
		self->refused =
			connect(fd, &self->addr.u.sa, self->addr.len) < 0 && errno == ECONNREFUSED;
		CHECK_EQ(close(fd), 0);
		edo_tcp_listener_drop(c);
	}
	EDO_END();
}

static void close_own(edo_rt_flavor fl)
{
	own_close_frame m = {EDO_FRAME_INIT(own_close_main)};
	run(fl, &m.edo_base);
	CHECK(m.refused);
}
BOTH(close_shared_leaves_socket_alone, close_shared)
BOTH(close_own_listener_refuses_at_once, close_own)

/* ---- two threads taking one descriptor over at once ------------------------------------------- */

/* The loser (-EEXIST) must not touch the descriptor's flags, which the
 * winner may have just set: a winner left blocking would block a worker. */
typedef struct race_arg {
	edo_runtime *rt;
	pthread_barrier_t *bar;
	atomic_int *fd;
	long rounds;
	int rc[2];
	edo_udp_socket *u;
} race_arg;

typedef struct adopt_frame {
	EDO_FRAME;
	int fd;
	int rc;
	edo_udp_socket *u;
} adopt_frame;

EDO_ASYNC(adopt_once, adopt_frame, NULL)
{
	EDO_BEGIN();
	self->rc = edo_udp_from_fd(self->fd, &self->u);
	EDO_END();
}

typedef struct racer {
	race_arg *a;
	int id;
} racer;

static void *race_thread(void *p)
{
	racer *r = p;
	race_arg *a = r->a;
	for (long i = 0; i < a->rounds; i++) {
		pthread_barrier_wait(a->bar);
		adopt_frame f = {EDO_FRAME_INIT(adopt_once), .fd = atomic_load(a->fd)};
		CHECK_EQ(edo_block_on(a->rt, &f.edo_base), 0);
		a->rc[r->id] = f.rc;
		if (f.rc == 0)
			a->u = f.u;
		pthread_barrier_wait(a->bar);
	}
	return NULL;
}

TEST(racing_takeovers_leave_the_winner_nonblocking)
{
	pthread_barrier_t bar;
	CHECK_EQ(pthread_barrier_init(&bar, NULL, 3), 0);
	atomic_int fd = -1;
	race_arg a = {.rt = make_rt(EDO_RT_MULTI_THREAD, 2),
		      .bar = &bar,
		      .fd = &fd,
		      .rounds = test_scale(20000)};
	racer r[2] = {{&a, 0}, {&a, 1}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
	for (long i = 0; i < a.rounds; i++) {
		int f = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		CHECK_GE(f, 0);
		atomic_store(&fd, f);
		a.u = NULL;
		pthread_barrier_wait(&bar); /* go */
		pthread_barrier_wait(&bar); /* both done */
		CHECK((a.rc[0] == 0 && a.rc[1] == -EEXIST) || (a.rc[1] == 0 && a.rc[0] == -EEXIST));
		CHECK(is_nonblocking(f));
		edo_udp_close(a.u); /* from this thread: closing needs no runtime */
		CHECK(!is_open(f));
	}
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	CHECK_EQ(edo_runtime_free(a.rt), 0);
	pthread_barrier_destroy(&bar);
}

/* ---- giving the descriptor back, and SO_ERROR --------------------------------------------------- */

/* Taken over, then given back: the same descriptor, open, non-blocking,
 * and no longer registered (taking it over again works).  Refused while
 * another handle is alive (-EBUSY) or once closed (-EBADF). */
typedef struct back_frame {
	EDO_FRAME;
	int lfd, cfd, afd;
	uint16_t port;
	int sp[2], dp[2];
	char path[64];
} back_frame;

EDO_ASYNC(back_main, back_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_tcp_listener_into_fd(NULL), -EINVAL);
	CHECK_EQ(edo_tcp_stream_into_fd(NULL), -EINVAL);
	CHECK_EQ(edo_udp_into_fd(NULL), -EINVAL);
	CHECK_EQ(edo_unix_listener_into_fd(NULL), -EINVAL);
	CHECK_EQ(edo_unix_stream_into_fd(NULL), -EINVAL);
	CHECK_EQ(edo_unix_datagram_into_fd(NULL), -EINVAL);
	{
		/* A listener, with a clone for a while. */
		edo_tcp_listener *l, *c;
		CHECK_EQ(edo_tcp_listener_from_fd(self->lfd, &l), 0);
		c = edo_tcp_listener_clone(l);
		CHECK_EQ(edo_tcp_listener_into_fd(l), -EBUSY);
		edo_tcp_listener_drop(c);
		CHECK_EQ(edo_tcp_listener_into_fd(l), self->lfd);
		CHECK(is_open(self->lfd) && is_nonblocking(self->lfd));
		CHECK_EQ(edo_tcp_listener_from_fd(self->lfd, &l), 0); /* not registered */
		CHECK_EQ(edo_tcp_listener_into_fd(l), self->lfd);
	}
	{
		/* A stream split in halves: the last half left gives it back. */
		edo_tcp_stream *s, *rd, *wr;
		self->cfd = raw_tcp_connect(self->port);
		self->afd = accept(self->lfd, NULL, NULL);
		CHECK_GE(self->afd, 0);
		CHECK_EQ(edo_tcp_stream_from_fd(self->cfd, &s), 0);
		CHECK_EQ(edo_tcp_stream_into_split(s, &rd, &wr), 0);
		CHECK_EQ(edo_tcp_stream_into_fd(rd), -EBUSY);
		edo_tcp_stream_drop(wr);
		CHECK_EQ(edo_tcp_stream_into_fd(rd), self->cfd);
		CHECK_EQ(write(self->afd, "z", 1), 1); /* still connected */
		char c;
		CHECK_EQ(read(self->cfd, &c, 1), 1);
		CHECK_EQ(c, 'z');
		CHECK_EQ(edo_tcp_stream_from_fd(self->cfd, &s), 0);
		CHECK_EQ(edo_tcp_stream_into_fd(s), self->cfd);
		CHECK_EQ(close(self->cfd), 0);
		CHECK_EQ(close(self->afd), 0);
	}
	{
		/* UDP: closed by one handle, the other cannot take it back. */
		uint16_t p;
		int fd = raw_udp(&p);
		edo_udp_socket *u, *c;
		CHECK_EQ(edo_udp_from_fd(fd, &u), 0);
		c = edo_udp_clone(u);
		edo_udp_close(u);
		CHECK_EQ(edo_udp_into_fd(c), -EBADF);
		edo_udp_drop(c);
		CHECK(!is_open(fd));
		fd = raw_udp(&p);
		CHECK_EQ(edo_udp_from_fd(fd, &u), 0);
		CHECK_EQ(edo_udp_into_fd(u), fd);
		CHECK_EQ(close(fd), 0);
	}
	{
		/* Unix: both kinds of pair, and a listener. */
		edo_unix_stream *a;
		edo_unix_datagram *d;
		edo_unix_listener *l;
		CHECK_EQ(edo_unix_stream_from_fd(self->sp[0], &a), 0);
		CHECK_EQ(edo_unix_stream_into_fd(a), self->sp[0]);
		CHECK_EQ(edo_unix_datagram_from_fd(self->dp[0], &d), 0);
		CHECK_EQ(edo_unix_datagram_into_fd(d), self->dp[0]);
		int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un ua = {.sun_family = AF_UNIX};
		snprintf(ua.sun_path, sizeof ua.sun_path, "%s", self->path);
		CHECK_EQ(bind(lfd, (struct sockaddr *)&ua, sizeof ua), 0);
		CHECK_EQ(listen(lfd, 4), 0);
		CHECK_EQ(edo_unix_listener_from_fd(lfd, &l), 0);
		CHECK_EQ(edo_unix_listener_into_fd(l), lfd);
		CHECK(is_open(lfd));
		CHECK_EQ(close(lfd), 0);
		CHECK_EQ(unlink(self->path), 0);
	}
	EDO_END();
}

static void give_back(edo_rt_flavor fl)
{
	back_frame m = {EDO_FRAME_INIT(back_main)};
	m.lfd = raw_tcp_listener(&m.port);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m.sp), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, m.dp), 0);
	char dir[] = "/tmp/edo-fd-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	snprintf(m.path, sizeof m.path, "%s/l.sock", dir);
	int before = count_fds();
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before); /* every one given back, none closed */
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(close(m.sp[i]), 0);
		CHECK_EQ(close(m.dp[i]), 0);
	}
	CHECK_EQ(close(m.lfd), 0);
	CHECK_EQ(rmdir(dir), 0);
}
BOTH(into_fd_gives_the_descriptor_back, give_back)

/* _into_fd on a read half racing a close of its write half on another
 * thread: the into_fd can see one reference left only after the close
 * released its own, so it must say -EBADF, never hand the (shut down)
 * descriptor back. */
typedef struct pair_frame {
	EDO_FRAME;
	edo_unix_stream *a, *b, *rd, *wr;
} pair_frame;

EDO_ASYNC(make_pair, pair_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_unix_stream_pair(&self->a, &self->b), 0);
	CHECK_EQ(edo_unix_stream_into_split(self->a, &self->rd, &self->wr), 0);
	EDO_END();
}

typedef struct close_race {
	pthread_barrier_t bar;
	pair_frame p;
	long rounds;
	int rc;
} close_race;

static void *closer_thread(void *arg)
{
	close_race *c = arg;
	for (long i = 0; i < c->rounds; i++) {
		pthread_barrier_wait(&c->bar);
		edo_unix_stream_close(c->p.wr);
		pthread_barrier_wait(&c->bar);
	}
	return NULL;
}

TEST(into_fd_racing_a_close_says_ebadf)
{
	int before = count_fds();
	close_race c = {.rounds = test_scale(20000)};
	CHECK_EQ(pthread_barrier_init(&c.bar, NULL, 2), 0);
	edo_runtime *rt = make_rt(EDO_RT_MULTI_THREAD, 2);
	pthread_t t;
	CHECK_EQ(pthread_create(&t, NULL, closer_thread, &c), 0);
	for (long i = 0; i < c.rounds; i++) {
		c.p = (pair_frame){EDO_FRAME_INIT(make_pair)};
		CHECK_EQ(edo_block_on(rt, &c.p.edo_base), 0);
		pthread_barrier_wait(&c.bar); /* go */
		int rc;
		while ((rc = edo_unix_stream_into_fd(c.p.rd)) == -EBUSY)
			;
		CHECK_EQ(rc, -EBADF);
		pthread_barrier_wait(&c.bar); /* the close returned */
		edo_unix_stream_drop(c.p.rd);
		edo_unix_stream_close(c.p.b);
	}
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	pthread_barrier_destroy(&c.bar);
	CHECK_EQ(count_fds(), before);
}

/* A connect in progress that is refused: the stream taken over while
 * connecting reports it through take_error, once. */
typedef struct err_frame {
	EDO_FRAME;
	int fd;
	edo_tcp_stream *s;
	edo_net_ready_fut rf;
} err_frame;

static void err_cleanup(err_frame *self)
{
	edo_tcp_stream_close(self->s);
}

EDO_ASYNC(err_main, err_frame, err_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_tcp_stream_from_fd(self->fd, &self->s), 0);
	EDO_AWAIT(edo_tcp_stream_ready(&self->rf, self->s, EDO_INTEREST_WRITABLE));
	CHECK_EQ(self->rf.rc, 0);
	CHECK_EQ(edo_tcp_stream_take_error(self->s), -ECONNREFUSED);
	CHECK_EQ(edo_tcp_stream_take_error(self->s), 0); /* taken */
	CHECK_EQ(edo_tcp_stream_take_error(NULL), -EINVAL);
	CHECK_EQ(edo_udp_take_error(NULL), -EINVAL);
	CHECK_EQ(edo_unix_stream_take_error(NULL), -EINVAL);
	CHECK_EQ(edo_unix_datagram_take_error(NULL), -EINVAL);
	{
		edo_tcp_stream *c = NULL;
		CHECK_EQ(edo_tcp_stream_into_split(self->s, &self->s, &c), 0);
		edo_tcp_stream_close(c);
		CHECK_EQ(edo_tcp_stream_take_error(self->s), -EBADF); /* closed */
	}
	EDO_END();
}

static void take_error_case(edo_rt_flavor fl)
{
	int before = count_fds();
	uint16_t port;
	int l = raw_tcp_listener(&port);
	CHECK_EQ(close(l), 0); /* nothing listens there now */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK_GE(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int r = connect(fd, (struct sockaddr *)&a, sizeof a);
	if (r == 0 || errno != EINPROGRESS) {
		CHECK_EQ(close(fd), 0);
		SKIP("this kernel refuses a loopback connect at once");
	}
	err_frame m = {EDO_FRAME_INIT(err_main), .fd = fd};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(take_error_reports_a_refused_connect, take_error_case)

/* ---- a runtime freed under an adopted socket's waiting task ----------------------------------- */

typedef struct wait_frame {
	EDO_FRAME;
	int fd;
	edo_tcp_listener *l;
	edo_tcp_accept_fut af;
	atomic_bool *started;
} wait_frame;

static void wait_cleanup(wait_frame *self)
{
	edo_tcp_listener_close(self->l);
}

EDO_ASYNC(wait_main, wait_frame, wait_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_tcp_listener_from_fd(self->fd, &self->l), 0);
	atomic_store(self->started, true);
	EDO_AWAIT(edo_tcp_listener_accept(&self->af, self->l));
	CHECK(false); /* nobody connects */
	EDO_END();
}

static void freed_while_waiting(edo_rt_flavor fl)
{
	int before = count_fds();
	uint16_t port;
	int fd = raw_tcp_listener(&port);
	atomic_bool started = false;
	edo_runtime *rt = make_rt(fl, 2);
	wait_frame w = {EDO_FRAME_INIT(wait_main), .fd = fd, .started = &started};
	edo_handle *h = edo_runtime_handle(rt);
	CHECK_EQ(edo_spawn_on(h, &w.edo_base, sizeof w, NULL, NULL), 0);
	edo_handle_drop(h);
	/* Drive it (a current-thread runtime runs only inside block_on). */
	while (!atomic_load(&started)) {
		edo_sleep sl;
		edo_sleep_init(&sl, EDO_MS(1));
		CHECK_EQ(edo_block_on(rt, &sl.base), 0);
	}
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK(!is_open(fd)); /* the cancelled task's cleanup closed it */
	CHECK_EQ(count_fds(), before);
}
BOTH(freed_while_waiting, freed_while_waiting)

TEST_MAIN()
