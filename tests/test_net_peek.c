#define _GNU_SOURCE
/* Peeking (MSG_PEEK), on both runtimes: edo_tcp_stream_poll_peek() and
 * edo_unix_stream_poll_peek() wait for data that comes later, give it
 * again and again (a short peek leaves the readiness set: the next peek
 * and the read complete at once), then the read takes it and the next peek
 * waits again; the end of the stream peeks as 0; a write half or bad input
 * is refused.  edo_tcp_stream_peek() futures: eight waiting on one stream
 * all complete with the same bytes, which the read then takes; a dropped
 * pending one, a write half, bad input, a close while waiting.  The
 * datagram side: edo_udp_peek_from() and
 * edo_unix_datagram_peek_from() futures (eight at once on one socket, all
 * completing with the same datagram, which then is still there for one
 * receive), the poll and try_ forms, a short peek, and -EAGAIN once the
 * receive took it. */
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

/* ---- streams ----------------------------------------------------------------------------------- */

/* Writes @msg on @io after a pause (so that the peek before it waits), then
 * shuts writing down if @fin. */
typedef struct later_frame {
	EDO_FRAME;
	edo_stream *io;
	const char *msg;
	bool fin;
	edo_sleep sl;
	edo_write_all_fut wa;
	int rc;
} later_frame;

EDO_ASYNC(write_later, later_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_SLEEP(&self->sl, EDO_MS(10));
	EDO_AWAIT(edo_write_all(&self->wa, self->io, self->msg, strlen(self->msg)));
	CHECK_EQ(self->wa.rc, 0);
	if (self->fin) {
		EDO_AWAIT_POLL(edo_stream_poll_shutdown(self->io, cx, &self->rc));
		CHECK_EQ(self->rc, 0);
	}
	EDO_END();
}

/* The peeks of one stream type, through these two functions. */
typedef edo_poll (*peek_fn)(void *s, edo_cx *cx, void *buf, size_t len, ssize_t *n);
typedef edo_poll (*read_fn)(void *s, edo_cx *cx, void *buf, size_t len, ssize_t *n);

typedef struct speek_frame {
	EDO_FRAME;
	void *rd;         /* the stream peeked at and read */
	edo_stream *wr;   /* its peer, written by write_later */
	void *write_half; /* a write half of a stream, which may not peek */
	peek_fn peek;
	read_fn read;
	edo_join *j;
	int rc, i;
	ssize_t n;
	char buf[16];
} speek_frame;

EDO_ASYNC(stream_peeks, speek_frame, NULL)
{
	EDO_BEGIN();
	/* Nothing there yet: the peek waits for the writer. */
	CHECK_EQ(EDO_SPAWN(&self->j, write_later, .io = self->wr, .msg = "hello"), 0);
	EDO_AWAIT_POLL(self->peek(self->rd, cx, self->buf, sizeof self->buf, &self->n));
	CHECK_EQ(self->n, 5);
	CHECK(memcmp(self->buf, "hello", 5) == 0);
	EDO_AWAIT_JOIN(self->j, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->j);
	/* Shorter, then longer again: still there, and no wait. */
	for (self->i = 0; self->i < 3; self->i++) {
		memset(self->buf, 0, sizeof self->buf);
		CHECK_EQ(self->peek(self->rd, cx, self->buf, 2, &self->n), EDO_READY);
		CHECK_EQ(self->n, 2);
		CHECK(memcmp(self->buf, "he", 2) == 0);
		CHECK_EQ(self->peek(self->rd, cx, self->buf, sizeof self->buf, &self->n),
			 EDO_READY);
		CHECK_EQ(self->n, 5);
	}
	/* The read takes what the peeks saw. */
	memset(self->buf, 0, sizeof self->buf);
	CHECK_EQ(self->read(self->rd, cx, self->buf, sizeof self->buf, &self->n), EDO_READY);
	CHECK_EQ(self->n, 5);
	CHECK(memcmp(self->buf, "hello", 5) == 0);
	/* Drained: the next peek waits for new data, then the end. */
	CHECK_EQ(EDO_SPAWN(&self->j, write_later, .io = self->wr, .msg = "more", .fin = true), 0);
	EDO_AWAIT_POLL(self->peek(self->rd, cx, self->buf, sizeof self->buf, &self->n));
	CHECK_EQ(self->n, 4);
	CHECK(memcmp(self->buf, "more", 4) == 0);
	EDO_AWAIT_JOIN(self->j, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->j);
	CHECK_EQ(self->read(self->rd, cx, self->buf, sizeof self->buf, &self->n), EDO_READY);
	CHECK_EQ(self->n, 4);
	EDO_AWAIT_POLL(self->peek(self->rd, cx, self->buf, sizeof self->buf, &self->n));
	CHECK_EQ(self->n, 0); /* the peer shut down */
	/* Refused: a write half, and bad input. */
	CHECK_EQ(self->peek(self->write_half, cx, self->buf, 1, &self->n), EDO_READY);
	CHECK_EQ(self->n, -EBADF);
	CHECK_EQ(self->peek(self->rd, cx, NULL, 1, &self->n), EDO_READY);
	CHECK_EQ(self->n, -EINVAL);
	CHECK_EQ(self->peek(NULL, cx, self->buf, 1, &self->n), EDO_READY);
	CHECK_EQ(self->n, -EINVAL);
	EDO_END();
}

static edo_poll tcp_peek(void *s, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	return edo_tcp_stream_poll_peek(s, cx, buf, len, n);
}

static edo_poll tcp_read(void *s, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	return edo_tcp_stream_poll_read(s, cx, buf, len, n);
}

static edo_poll unix_peek(void *s, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	return edo_unix_stream_poll_peek(s, cx, buf, len, n);
}

static edo_poll unix_read(void *s, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	return edo_unix_stream_poll_read(s, cx, buf, len, n);
}

typedef struct tcp_peek_frame {
	EDO_FRAME;
	edo_tcp_stream *client, *server, *rd, *wr;
	speek_frame p;
} tcp_peek_frame;

static void tcp_peek_cleanup(tcp_peek_frame *self)
{
	edo_tcp_stream_close(self->client);
	edo_tcp_stream_drop(self->rd);
	edo_tcp_stream_drop(self->wr);
}

EDO_ASYNC(tcp_peek_main, tcp_peek_frame, tcp_peek_cleanup)
{
	EDO_BEGIN();
	tcp_pair(&self->client, &self->server);
	/* Peek at the read half of the server's side. */
	CHECK_EQ(edo_tcp_stream_into_split(self->server, &self->rd, &self->wr), 0);
	self->p = (speek_frame){EDO_FRAME_INIT(stream_peeks),
				.rd = self->rd,
				.wr = edo_tcp_stream_io(self->client),
				.write_half = self->wr,
				.peek = tcp_peek,
				.read = tcp_read};
	EDO_AWAIT(&self->p.edo_base);
	EDO_END();
}

static void tcp_peek_case(edo_rt_flavor fl)
{
	int before = count_fds();
	tcp_peek_frame m = {EDO_FRAME_INIT(tcp_peek_main)};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(tcp_stream_peek, tcp_peek_case)

typedef struct unix_peek_frame {
	EDO_FRAME;
	edo_unix_stream *a, *b, *rd, *wr;
	speek_frame p;
} unix_peek_frame;

static void unix_peek_cleanup(unix_peek_frame *self)
{
	edo_unix_stream_close(self->a);
	edo_unix_stream_drop(self->rd);
	edo_unix_stream_drop(self->wr);
}

EDO_ASYNC(unix_peek_main, unix_peek_frame, unix_peek_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_unix_stream_pair(&self->a, &self->b), 0);
	CHECK_EQ(edo_unix_stream_into_split(self->b, &self->rd, &self->wr), 0);
	self->p = (speek_frame){
		EDO_FRAME_INIT(stream_peeks), .rd = self->rd,    .wr = edo_unix_stream_io(self->a),
		.write_half = self->wr,       .peek = unix_peek, .read = unix_read};
	EDO_AWAIT(&self->p.edo_base);
	EDO_END();
}

static void unix_peek_case(edo_rt_flavor fl)
{
	int before = count_fds();
	unix_peek_frame m = {EDO_FRAME_INIT(unix_peek_main)};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(unix_stream_peek, unix_peek_case)

/* ---- peek futures: many waiters on one stream ---------------------------------------------------- */

#define NSPEEKERS 8

typedef struct fpeeker_frame {
	EDO_FRAME;
	edo_tcp_stream *s;
	atomic_int *waiting;
	edo_peek_fut f;
	char buf[16];
	ssize_t n;
} fpeeker_frame;

EDO_ASYNC(fpeeker, fpeeker_frame, NULL)
{
	EDO_BEGIN();
	edo_tcp_stream_peek(&self->f, self->s, self->buf, sizeof self->buf);
	atomic_fetch_add(self->waiting, 1);
	EDO_AWAIT(&self->f.base);
	self->n = self->f.n;
	EDO_END();
}

typedef struct fpeek_frame {
	EDO_FRAME;
	edo_tcp_stream *client, *server, *rd, *wr;
	edo_join *j[NSPEEKERS];
	atomic_int waiting;
	edo_sleep sl;
	edo_write_all_fut wa;
	edo_peek_fut f;
	int i, rc;
	ssize_t n;
	char buf[16];
} fpeek_frame;

static void fpeek_cleanup(fpeek_frame *self)
{
	edo_tcp_stream_close(self->client);
	edo_tcp_stream_drop(self->rd);
	edo_tcp_stream_drop(self->wr);
}

EDO_ASYNC(fpeek_main, fpeek_frame, fpeek_cleanup)
{
	EDO_BEGIN();
	tcp_pair(&self->client, &self->server);
	CHECK_EQ(edo_tcp_stream_into_split(self->server, &self->rd, &self->wr), 0);
	/* A peek dropped while pending takes nothing with it. */
	edo_tcp_stream_peek(&self->f, self->rd, self->buf, sizeof self->buf);
	CHECK_EQ(edo_future_poll(&self->f.base, cx), EDO_PENDING);
	edo_future_drop(&self->f.base);
	/* Eight wait at once; one write completes every one. */
	for (self->i = 0; self->i < NSPEEKERS; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->j[self->i], fpeeker, .s = self->rd,
				   .waiting = &self->waiting),
			 0);
	while (atomic_load(&self->waiting) < NSPEEKERS)
		EDO_AWAIT_SLEEP(&self->sl, EDO_MS(1));
	EDO_AWAIT_SLEEP(&self->sl, EDO_MS(5));
	EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->client), "hello", 5));
	CHECK_EQ(self->wa.rc, 0);
	for (self->i = 0; self->i < NSPEEKERS; self->i++) {
		EDO_AWAIT_JOIN(self->j[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		fpeeker_frame *p = EDO_JOIN_OUTPUT(self->j[self->i], fpeeker);
		CHECK_EQ(p->n, 5);
		CHECK(memcmp(p->buf, "hello", 5) == 0);
		edo_join_detach(self->j[self->i]);
	}
	/* Still there for the read. */
	EDO_AWAIT_POLL(
		edo_tcp_stream_poll_read(self->rd, cx, self->buf, sizeof self->buf, &self->n));
	CHECK_EQ(self->n, 5);
	/* Refused: a write half, bad input. */
	EDO_AWAIT(edo_tcp_stream_peek(&self->f, self->wr, self->buf, 1));
	CHECK_EQ(self->f.n, -EBADF);
	EDO_AWAIT(edo_tcp_stream_peek(&self->f, NULL, self->buf, 1));
	CHECK_EQ(self->f.n, -EINVAL);
	EDO_AWAIT(edo_tcp_stream_peek(&self->f, self->rd, NULL, 1));
	CHECK_EQ(self->f.n, -EINVAL);
	/* A close ends a waiting peek with -EBADF. */
	atomic_store(&self->waiting, 0);
	CHECK_EQ(EDO_SPAWN(&self->j[0], fpeeker, .s = self->rd, .waiting = &self->waiting), 0);
	while (atomic_load(&self->waiting) < 1)
		EDO_AWAIT_SLEEP(&self->sl, EDO_MS(1));
	edo_tcp_stream_close(self->wr);
	self->wr = NULL;
	EDO_AWAIT_JOIN(self->j[0], &self->rc);
	CHECK_EQ(self->rc, 0);
	CHECK_EQ(EDO_JOIN_OUTPUT(self->j[0], fpeeker)->n, -EBADF);
	edo_join_detach(self->j[0]);
	EDO_END();
}

static void fpeek_case(edo_rt_flavor fl)
{
	int before = count_fds();
	fpeek_frame m = {EDO_FRAME_INIT(fpeek_main)};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(stream_peek_futures_share_a_stream, fpeek_case)

/* A close of the half a waiting peek was made with, while the other half
 * lives, ends the peek with -EBADF: it holds the socket, not the handle
 * the close frees. */
typedef struct halfclose_frame {
	EDO_FRAME;
	edo_tcp_stream *client, *server, *rd, *wr;
	edo_join *j[1];
	atomic_int waiting;
	edo_sleep sl;
	int rc;
} halfclose_frame;

static void halfclose_cleanup(halfclose_frame *self)
{
	edo_tcp_stream_close(self->client);
	edo_tcp_stream_drop(self->rd);
	edo_tcp_stream_drop(self->wr);
}

EDO_ASYNC(halfclose_main, halfclose_frame, halfclose_cleanup)
{
	EDO_BEGIN();
	tcp_pair(&self->client, &self->server);
	CHECK_EQ(edo_tcp_stream_into_split(self->server, &self->rd, &self->wr), 0);
	atomic_store(&self->waiting, 0);
	CHECK_EQ(EDO_SPAWN(&self->j[0], fpeeker, .s = self->rd, .waiting = &self->waiting), 0);
	while (atomic_load(&self->waiting) < 1)
		EDO_AWAIT_SLEEP(&self->sl, EDO_MS(1));
	edo_tcp_stream_close(self->rd);
	self->rd = NULL;
	EDO_AWAIT_JOIN(self->j[0], &self->rc);
	CHECK_EQ(self->rc, 0);
	CHECK_EQ(EDO_JOIN_OUTPUT(self->j[0], fpeeker)->n, -EBADF);
	edo_join_detach(self->j[0]);
	EDO_END();
}

static void halfclose_case(edo_rt_flavor fl)
{
	int before = count_fds();
	halfclose_frame m = {EDO_FRAME_INIT(halfclose_main)};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(peek_future_survives_closing_its_half, halfclose_case)

/* ---- datagrams --------------------------------------------------------------------------------- */

#define NPEEKERS 8

/* One peek_from future, in its own task. */
typedef struct peeker_frame {
	EDO_FRAME;
	edo_udp_socket *u;
	edo_unix_datagram *d;
	atomic_int *waiting;
	edo_dgram_fut f;
	char buf[16];
	ssize_t n;
	edo_addr from;
} peeker_frame;

static void peeker_cleanup(peeker_frame *self)
{
	edo_udp_drop(self->u);
	edo_unix_datagram_drop(self->d);
}

EDO_ASYNC(peeker, peeker_frame, peeker_cleanup)
{
	EDO_BEGIN();
	if (self->u)
		edo_udp_peek_from(&self->f, self->u, self->buf, sizeof self->buf);
	else
		edo_unix_datagram_peek_from(&self->f, self->d, self->buf, sizeof self->buf);
	atomic_fetch_add(self->waiting, 1);
	EDO_AWAIT(&self->f.base);
	self->n = self->f.n;
	self->from = self->f.from;
	EDO_END();
}

typedef struct dpeek_frame {
	EDO_FRAME;
	bool unix_;
	edo_udp_socket *u, *v;
	edo_unix_datagram *d, *e;
	edo_addr to, v_addr;
	edo_join *j[NPEEKERS];
	atomic_int waiting;
	edo_sleep sl;
	edo_dgram_fut f;
	int i, rc;
	ssize_t n;
	char buf[16];
	edo_addr from;
} dpeek_frame;

static void dpeek_cleanup(dpeek_frame *self)
{
	edo_udp_close(self->u);
	edo_udp_close(self->v);
	edo_unix_datagram_close(self->d);
	edo_unix_datagram_close(self->e);
}

static ssize_t try_peek(dpeek_frame *self, size_t len)
{
	memset(&self->from, 0, sizeof self->from);
	return self->unix_ ? edo_unix_datagram_try_peek_from(self->d, self->buf, len, &self->from) :
			     edo_udp_try_peek_from(self->u, self->buf, len, &self->from);
}

EDO_ASYNC(dgram_peeks, dpeek_frame, dpeek_cleanup)
{
	EDO_BEGIN();
	if (self->unix_) {
		CHECK_EQ(edo_unix_datagram_pair(&self->d, &self->e), 0);
	} else {
		CHECK_EQ(edo_addr_ip(&self->to, "127.0.0.1", 0), 0);
		CHECK_EQ(edo_udp_bind(&self->to, &self->u), 0);
		CHECK_EQ(edo_udp_local_addr(self->u, &self->to), 0);
		CHECK_EQ(edo_addr_ip(&self->v_addr, "127.0.0.1", 0), 0);
		CHECK_EQ(edo_udp_bind(&self->v_addr, &self->v), 0);
		CHECK_EQ(edo_udp_local_addr(self->v, &self->v_addr), 0);
	}
	CHECK_EQ(try_peek(self, sizeof self->buf), -EAGAIN);
	/* Eight peekers wait; one datagram completes them all. */
	for (self->i = 0; self->i < NPEEKERS; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->j[self->i], peeker,
				   .u = self->u ? edo_udp_clone(self->u) : NULL,
				   .d = self->d ? edo_unix_datagram_clone(self->d) : NULL,
				   .waiting = &self->waiting),
			 0);
	while (atomic_load(&self->waiting) < NPEEKERS)
		EDO_AWAIT_SLEEP(&self->sl, EDO_MS(1));
	EDO_AWAIT_SLEEP(&self->sl, EDO_MS(10)); /* each in its wait */
	if (self->unix_)
		EDO_AWAIT(edo_unix_datagram_send(&self->f, self->e, "hello", 5));
	else
		EDO_AWAIT(edo_udp_send_to(&self->f, self->v, "hello", 5, &self->to));
	CHECK_EQ(self->f.n, 5);
	for (self->i = 0; self->i < NPEEKERS; self->i++) {
		EDO_AWAIT_JOIN(self->j[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		peeker_frame *p = EDO_JOIN_OUTPUT(self->j[self->i], peeker);
		CHECK_EQ(p->n, 5);
		CHECK(memcmp(p->buf, "hello", 5) == 0);
		if (!self->unix_)
			CHECK(edo_addr_equal(&p->from, &self->v_addr));
		edo_join_detach(self->j[self->i]);
	}
	/* Still queued: try_ and poll forms, a short peek. */
	CHECK_EQ(try_peek(self, sizeof self->buf), 5);
	if (!self->unix_)
		CHECK(edo_addr_equal(&self->from, &self->v_addr));
	CHECK_EQ(try_peek(self, 2), 2);
	CHECK(memcmp(self->buf, "he", 2) == 0);
	if (self->unix_)
		CHECK_EQ(edo_unix_datagram_poll_peek_from(self->d, cx, self->buf, 3, NULL,
							  &self->n),
			 EDO_READY);
	else
		CHECK_EQ(edo_udp_poll_peek_from(self->u, cx, self->buf, 3, NULL, &self->n),
			 EDO_READY);
	CHECK_EQ(self->n, 3);
	/* One receive takes it; then there is nothing to peek at. */
	if (self->unix_)
		EDO_AWAIT(edo_unix_datagram_recv(&self->f, self->d, self->buf, sizeof self->buf));
	else
		EDO_AWAIT(edo_udp_recv(&self->f, self->u, self->buf, sizeof self->buf));
	CHECK_EQ(self->f.n, 5);
	CHECK(memcmp(self->buf, "hello", 5) == 0);
	CHECK_EQ(try_peek(self, sizeof self->buf), -EAGAIN);
	/* Bad input. */
	CHECK_EQ(edo_udp_try_peek_from(NULL, self->buf, 1, NULL), -EINVAL);
	CHECK_EQ(edo_unix_datagram_try_peek_from(NULL, self->buf, 1, NULL), -EINVAL);
	CHECK_EQ(self->unix_ ? edo_unix_datagram_try_peek_from(self->d, NULL, 1, NULL) :
			       edo_udp_try_peek_from(self->u, NULL, 1, NULL),
		 -EINVAL);
	EDO_AWAIT(edo_udp_peek_from(&self->f, NULL, self->buf, 1));
	CHECK_EQ(self->f.n, -EINVAL);
	EDO_END();
}

static void dgram_peek_case(edo_rt_flavor fl, bool unix_)
{
	int before = count_fds();
	dpeek_frame m = {EDO_FRAME_INIT(dgram_peeks), .unix_ = unix_};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}

static void udp_peek_case(edo_rt_flavor fl)
{
	dgram_peek_case(fl, false);
}
BOTH(udp_peek_from, udp_peek_case)

static void unix_dgram_peek_case(edo_rt_flavor fl)
{
	dgram_peek_case(fl, true);
}
BOTH(unix_datagram_peek_from, unix_dgram_peek_case)

TEST_MAIN()
