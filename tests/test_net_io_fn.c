#define _GNU_SOURCE
/* A syscall of the user's own through the sockets' readiness: the
 * _try_io() and _poll_io() functions of edo/net.h (Tokio's try_io and
 * async_io), on both runtimes.  A descriptor passed over a Unix stream
 * pair with SCM_RIGHTS (recvmsg waiting in poll_io before the sender's
 * try_io sendmsg); a TCP recv waiting in poll_io for a late writer; on UDP,
 * -EAGAIN from try_io clears the readiness (the next readiness future
 * waits) while a successful call leaves it; bad input (a NULL function, an
 * interest that is not one direction, a half of the other direction, a
 * closed socket, NULL handles) refused without calling the function;
 * -EINTR handed back by try_io, and retried by poll_io at the price of a
 * unit of budget (a task interrupted 1,000 times lets another run). */
#include <errno.h>
#include <stdatomic.h>
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

static atomic_int calls; /* of the functions below */

/* ---- the user's operations --------------------------------------------------------------------- */

/* sendmsg of one byte with one descriptor (SCM_RIGHTS). */
typedef struct fd_msg {
	int fd; /* to send, or received */
	char byte;
} fd_msg;

static ssize_t send_fd(int sock, void *ctx)
{
	fd_msg *m = ctx;
	atomic_fetch_add(&calls, 1);
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = &m->byte, .iov_len = 1};
	struct msghdr h = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = cbuf,
			   .msg_controllen = sizeof cbuf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&h);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &m->fd, sizeof(int));
	ssize_t r = sendmsg(sock, &h, MSG_NOSIGNAL);
	return r < 0 ? -errno : r;
}

static ssize_t recv_fd(int sock, void *ctx)
{
	fd_msg *m = ctx;
	atomic_fetch_add(&calls, 1);
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = &m->byte, .iov_len = 1};
	struct msghdr h = {.msg_iov = &iov,
			   .msg_iovlen = 1,
			   .msg_control = cbuf,
			   .msg_controllen = sizeof cbuf};
	ssize_t r = recvmsg(sock, &h, MSG_CMSG_CLOEXEC);
	if (r < 0)
		return -errno;
	m->fd = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&m->fd, CMSG_DATA(c), sizeof(int));
	return r;
}

/* recv(2) into a 16-byte buffer. */
typedef struct buf16 {
	char b[16];
} buf16;

static ssize_t do_recv(int sock, void *ctx)
{
	buf16 *b = ctx;
	atomic_fetch_add(&calls, 1);
	ssize_t r = recv(sock, b->b, sizeof b->b, 0);
	return r < 0 ? -errno : r;
}

/* Two UDP sockets on 127.0.0.1: *u, whose address is *to, and *v. */
static void udp_pair(edo_udp_socket **u, edo_udp_socket **v, edo_addr *to)
{
	edo_addr any;
	CHECK_EQ(edo_addr_ip(&any, "127.0.0.1", 0), 0);
	CHECK_EQ(edo_udp_bind(&any, u), 0);
	CHECK_EQ(edo_udp_local_addr(*u, to), 0);
	CHECK_EQ(edo_udp_bind(&any, v), 0);
}

/* ---- SCM_RIGHTS over a Unix stream ---------------------------------------------------------------- */

typedef struct sender_frame {
	EDO_FRAME;
	edo_unix_stream *s;
	int fd;
	edo_sleep sl;
	fd_msg m;
	ssize_t n;
} sender_frame;

EDO_ASYNC(fd_sender, sender_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_SLEEP(&self->sl, EDO_MS(10)); /* the receiver waits first */
	self->m = (fd_msg){.fd = self->fd, .byte = 'f'};
	self->n = edo_unix_stream_try_io(self->s, EDO_INTEREST_WRITABLE, send_fd, &self->m);
	CHECK_EQ(self->n, 1);
	EDO_END();
}

typedef struct rights_frame {
	EDO_FRAME;
	edo_unix_stream *a, *b;
	int pipefd[2];
	edo_join *j;
	fd_msg m;
	ssize_t n;
	int rc;
} rights_frame;

static void rights_cleanup(rights_frame *self)
{
	edo_unix_stream_close(self->a);
	edo_unix_stream_close(self->b);
}

EDO_ASYNC(rights_main, rights_frame, rights_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_unix_stream_pair(&self->a, &self->b), 0);
	CHECK_EQ(pipe2(self->pipefd, O_CLOEXEC), 0);
	CHECK_EQ(EDO_SPAWN(&self->j, fd_sender, .s = self->a, .fd = self->pipefd[1]), 0);
	EDO_AWAIT_POLL(edo_unix_stream_poll_io(self->b, cx, EDO_INTEREST_READABLE, recv_fd,
					       &self->m, &self->n));
	CHECK_EQ(self->n, 1);
	CHECK_EQ(self->m.byte, 'f');
	CHECK_GE(self->m.fd, 0);
	CHECK_NE(self->m.fd, self->pipefd[1]); /* a new descriptor, same pipe */
	EDO_AWAIT_JOIN(self->j, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->j);
	CHECK_EQ(write(self->m.fd, "hi", 2), 2);
	{
		char got[2];
		CHECK_EQ(read(self->pipefd[0], got, 2), 2);
		CHECK(memcmp(got, "hi", 2) == 0);
	}
	CHECK_EQ(close(self->m.fd), 0);
	CHECK_EQ(close(self->pipefd[0]), 0);
	CHECK_EQ(close(self->pipefd[1]), 0);
	EDO_END();
}

static void rights_case(edo_rt_flavor fl)
{
	int before = count_fds();
	rights_frame m = {EDO_FRAME_INIT(rights_main)};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(scm_rights_over_a_unix_stream, rights_case)

/* ---- TCP: poll_io waits for a late writer ------------------------------------------------------- */

typedef struct late_frame {
	EDO_FRAME;
	edo_tcp_stream *s;
	edo_sleep sl;
	edo_write_all_fut wa;
} late_frame;

EDO_ASYNC(late_writer, late_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_SLEEP(&self->sl, EDO_MS(10));
	EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->s), "late", 4));
	CHECK_EQ(self->wa.rc, 0);
	EDO_END();
}

typedef struct tcpio_frame {
	EDO_FRAME;
	edo_tcp_stream *client, *server, *rd, *wr;
	edo_join *j;
	buf16 b;
	ssize_t n;
	int rc;
} tcpio_frame;

static void tcpio_cleanup(tcpio_frame *self)
{
	edo_tcp_stream_close(self->client);
	edo_tcp_stream_drop(self->rd);
	edo_tcp_stream_drop(self->wr);
}

EDO_ASYNC(tcpio_main, tcpio_frame, tcpio_cleanup)
{
	EDO_BEGIN();
	tcp_pair(&self->client, &self->server);
	CHECK_EQ(edo_tcp_stream_into_split(self->server, &self->rd, &self->wr), 0);
	CHECK_EQ(EDO_SPAWN(&self->j, late_writer, .s = self->client), 0);
	EDO_AWAIT_POLL(edo_tcp_stream_poll_io(self->rd, cx, EDO_INTEREST_READABLE, do_recv,
					      &self->b, &self->n));
	CHECK_EQ(self->n, 4);
	CHECK(memcmp(self->b.b, "late", 4) == 0);
	EDO_AWAIT_JOIN(self->j, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->j);
	/* A half of the other direction, and bad input: the function is not
	 * called. */
	atomic_store(&calls, 0);
	CHECK_EQ(edo_tcp_stream_try_io(self->wr, EDO_INTEREST_READABLE, do_recv, &self->b), -EBADF);
	CHECK_EQ(edo_tcp_stream_poll_io(self->rd, cx, EDO_INTEREST_WRITABLE, do_recv, &self->b,
					&self->n),
		 EDO_READY);
	CHECK_EQ(self->n, -EBADF);
	CHECK_EQ(edo_tcp_stream_try_io(self->rd, EDO_INTEREST_READABLE, NULL, &self->b), -EINVAL);
	CHECK_EQ(edo_tcp_stream_try_io(self->rd, EDO_INTEREST_PRIORITY, do_recv, &self->b),
		 -EINVAL);
	CHECK_EQ(edo_tcp_stream_try_io(self->rd, EDO_INTEREST_READABLE | EDO_INTEREST_WRITABLE,
				       do_recv, &self->b),
		 -EINVAL);
	CHECK_EQ(edo_tcp_stream_try_io(self->rd, 0, do_recv, &self->b), -EINVAL);
	CHECK_EQ(edo_tcp_stream_try_io(NULL, EDO_INTEREST_READABLE, do_recv, &self->b), -EINVAL);
	CHECK_EQ(edo_tcp_stream_poll_io(NULL, cx, EDO_INTEREST_READABLE, do_recv, &self->b,
					&self->n),
		 EDO_READY);
	CHECK_EQ(self->n, -EINVAL);
	CHECK_EQ(edo_tcp_stream_poll_io(self->rd, cx, EDO_INTEREST_READABLE, do_recv, &self->b,
					NULL),
		 EDO_READY);
	CHECK_EQ(edo_unix_stream_try_io(NULL, EDO_INTEREST_READABLE, do_recv, &self->b), -EINVAL);
	CHECK_EQ(edo_udp_try_io(NULL, EDO_INTEREST_READABLE, do_recv, &self->b), -EINVAL);
	CHECK_EQ(edo_unix_datagram_try_io(NULL, EDO_INTEREST_READABLE, do_recv, &self->b), -EINVAL);
	CHECK_EQ(atomic_load(&calls), 0);
	/* Closed. */
	edo_tcp_stream_close(self->client);
	self->client = NULL;
	edo_tcp_stream_close(self->wr);
	self->wr = NULL;
	CHECK_EQ(edo_tcp_stream_try_io(self->rd, EDO_INTEREST_READABLE, do_recv, &self->b), -EBADF);
	CHECK_EQ(atomic_load(&calls), 0);
	EDO_END();
}

static void tcpio_case(edo_rt_flavor fl)
{
	int before = count_fds();
	tcpio_frame m = {EDO_FRAME_INIT(tcpio_main)};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(tcp_poll_io_and_bad_input, tcpio_case)

/* ---- UDP: what try_io does to the readiness ------------------------------------------------------ */

typedef struct clear_frame {
	EDO_FRAME;
	edo_udp_socket *u, *v;
	edo_unix_datagram *d, *e;
	edo_addr to;
	edo_net_ready_fut rf;
	edo_dgram_fut sf;
	buf16 b;
	ssize_t n;
} clear_frame;

static void clear_cleanup(clear_frame *self)
{
	edo_future_drop(&self->rf.base);
	edo_udp_close(self->u);
	edo_udp_close(self->v);
	edo_unix_datagram_close(self->d);
	edo_unix_datagram_close(self->e);
}

EDO_ASYNC(clear_main, clear_frame, clear_cleanup)
{
	EDO_BEGIN();
	udp_pair(&self->u, &self->v, &self->to);
	EDO_AWAIT(edo_udp_send_to(&self->sf, self->v, "one", 3, &self->to));
	EDO_AWAIT(edo_udp_send_to(&self->sf, self->v, "two", 3, &self->to));
	CHECK_EQ(self->sf.n, 3);
	EDO_AWAIT(edo_udp_ready(&self->rf, self->u, EDO_INTEREST_READABLE));
	CHECK_EQ(self->rf.rc, 0);
	/* A call that found something leaves the readiness: the next
	 * readiness future completes at once. */
	CHECK_EQ(edo_udp_try_io(self->u, EDO_INTEREST_READABLE, do_recv, &self->b), 3);
	edo_udp_ready(&self->rf, self->u, EDO_INTEREST_READABLE);
	CHECK_EQ(edo_future_poll(&self->rf.base, cx), EDO_READY);
	CHECK_EQ(edo_udp_try_io(self->u, EDO_INTEREST_READABLE, do_recv, &self->b), 3);
	/* -EAGAIN clears it: the next one waits for a new datagram. */
	CHECK_EQ(edo_udp_try_io(self->u, EDO_INTEREST_READABLE, do_recv, &self->b), -EAGAIN);
	edo_udp_ready(&self->rf, self->u, EDO_INTEREST_READABLE);
	CHECK_EQ(edo_future_poll(&self->rf.base, cx), EDO_PENDING);
	EDO_AWAIT(edo_udp_send_to(&self->sf, self->v, "three", 5, &self->to));
	EDO_AWAIT(&self->rf.base);
	CHECK_EQ(self->rf.rc, 0);
	EDO_AWAIT_POLL(
		edo_udp_poll_io(self->u, cx, EDO_INTEREST_READABLE, do_recv, &self->b, &self->n));
	CHECK_EQ(self->n, 5);
	/* The Unix datagram forms. */
	CHECK_EQ(edo_unix_datagram_pair(&self->d, &self->e), 0);
	CHECK_EQ(edo_unix_datagram_try_io(self->d, EDO_INTEREST_READABLE, do_recv, &self->b),
		 -EAGAIN);
	EDO_AWAIT(edo_unix_datagram_send(&self->sf, self->e, "dg", 2));
	EDO_AWAIT_POLL(edo_unix_datagram_poll_io(self->d, cx, EDO_INTEREST_READABLE, do_recv,
						 &self->b, &self->n));
	CHECK_EQ(self->n, 2);
	CHECK(memcmp(self->b.b, "dg", 2) == 0);
	EDO_END();
}

static void clear_case(edo_rt_flavor fl)
{
	int before = count_fds();
	clear_frame m = {EDO_FRAME_INIT(clear_main)};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(udp_try_io_clears_readiness_only_on_eagain, clear_case)

/* ---- -EINTR: returned by try_io, and no endless poll ------------------------------------------- */

static atomic_int eintr_left;

/* -EINTR while eintr_left lasts, then recv. */
static ssize_t interrupted_recv(int sock, void *ctx)
{
	atomic_fetch_add(&calls, 1);
	if (atomic_fetch_sub(&eintr_left, 1) > 0)
		return -EINTR;
	return do_recv(sock, ctx);
}

typedef struct bump_frame {
	EDO_FRAME;
	atomic_int *ran;
} bump_frame;

EDO_ASYNC(bump, bump_frame, NULL)
{
	EDO_BEGIN();
	atomic_store(self->ran, 1);
	EDO_END();
}

typedef struct eintr_frame {
	EDO_FRAME;
	edo_udp_socket *u, *v;
	edo_addr to;
	edo_net_ready_fut rf;
	edo_dgram_fut sf;
	edo_join *j;
	atomic_int ran;
	buf16 b;
	ssize_t n;
	int rc;
} eintr_frame;

static void eintr_cleanup(eintr_frame *self)
{
	edo_udp_close(self->u);
	edo_udp_close(self->v);
}

EDO_ASYNC(eintr_main, eintr_frame, eintr_cleanup)
{
	EDO_BEGIN();
	udp_pair(&self->u, &self->v, &self->to);
	EDO_AWAIT(edo_udp_send_to(&self->sf, self->v, "x", 1, &self->to));
	EDO_AWAIT(edo_udp_ready(&self->rf, self->u, EDO_INTEREST_READABLE));
	/* try_io hands -EINTR back, after one call. */
	atomic_store(&calls, 0);
	atomic_store(&eintr_left, 1);
	CHECK_EQ(edo_udp_try_io(self->u, EDO_INTEREST_READABLE, interrupted_recv, &self->b),
		 -EINTR);
	CHECK_EQ(atomic_load(&calls), 1);
	/* poll_io retries, but each retry costs budget: the other task runs
	 * before the 1,000th interruption is over. */
	atomic_store(&eintr_left, 1000);
	CHECK_EQ(EDO_SPAWN(&self->j, bump, .ran = &self->ran), 0);
	EDO_AWAIT_POLL(edo_udp_poll_io(self->u, cx, EDO_INTEREST_READABLE, interrupted_recv,
				       &self->b, &self->n));
	CHECK_EQ(self->n, 1);
	CHECK_EQ(atomic_load(&self->ran), 1);
	EDO_AWAIT_JOIN(self->j, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->j);
	EDO_END();
}

TEST(eintr_is_returned_by_try_io_and_yields_in_poll_io)
{
	eintr_frame m = {EDO_FRAME_INIT(eintr_main)};
	run(EDO_RT_CURRENT_THREAD, &m.edo_base);
}

TEST_MAIN()
