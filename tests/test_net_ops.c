#define _GNU_SOURCE
/* The operation futures of edo/net.h: edo_tcp_listener_accept(),
 * edo_unix_listener_accept() and the edo_dgram_fut of edo_udp_* and
 * edo_unix_datagram_*, which any number of tasks may await on one socket
 * and its clones at once (the _poll_ functions keep one waiter per
 * direction).  Covered: eight acceptors sharing a TCP and a Unix listener
 * (every connection accepted once, then a close from another task ends
 * every pending accept with -EBADF); sixteen receivers waiting on one UDP
 * and one Unix datagram socket, every one woken by its datagram, with the
 * sender's address (bound and unnamed); send and receive on connected
 * sockets, send_to a Unix path, the Unix datagram try_ functions and
 * readiness future; cancel safety (a receive or accept dropped while
 * pending, by hand, by a timeout or by aborting its task, takes nothing:
 * the next one gets the datagram or the connection); a close completing
 * every kind of waiting operation with -EBADF, racing with the waits on
 * the multi-thread runtime; futures still waiting when the runtime is
 * freed (dropped with their tasks, nothing left open); bad input (-EINVAL
 * at the first poll, nothing sent or received) and dropping futures never
 * polled or completed; the
 * EMFILE back-off of accept futures (TCP and Unix) and their recovery; and
 * a stress of senders and receivers sharing a Unix datagram pair and a UDP
 * socket pair through clones (exact counts, scaled by EDO_STRESS_SCALE). */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"
#include "net_helpers.h"

/* ---- helpers --------------------------------------------------------------------------------- */

/* A UDP socket on 127.0.0.1 with a free port; *addr is its address. */
static edo_udp_socket *udp_local(edo_addr *addr)
{
	edo_udp_socket *u;
	CHECK_EQ(edo_addr_ip(addr, "127.0.0.1", 0), 0);
	CHECK_EQ(edo_udp_bind(addr, &u), 0);
	CHECK_EQ(edo_udp_local_addr(u, addr), 0);
	CHECK_NE(edo_addr_port(addr), 0);
	return u;
}

/* A new directory for socket files; @dir holds at least 32 bytes. */
static void make_tmpdir(char *dir, size_t len)
{
	CHECK_GE(len, sizeof "/tmp/edo-ops-XXXXXX");
	memcpy(dir, "/tmp/edo-ops-XXXXXX", sizeof "/tmp/edo-ops-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
}

/* Whether @a is the Unix path @path, or an unnamed Unix address. */
static bool addr_is_path(const edo_addr *a, const char *path)
{
	char txt[EDO_ADDR_STRLEN];
	return edo_addr_format(a, txt, sizeof txt) == 0 && strcmp(txt, path) == 0;
}

static bool addr_is_unnamed(const edo_addr *a)
{
	return edo_addr_family(a) == AF_UNIX && a->len <= sizeof(sa_family_t);
}

/* A one-character tag as a 2-byte datagram ("t" and its NUL). */
static void tag_msg(char *msg, char tag)
{
	msg[0] = tag;
	msg[1] = 0;
}

/* ---- a future that counts itself while the one inside is pending ----------------------------- */

/* Wraps another future: *waiting counts the wrappers whose inner future
 * has returned PENDING (a wait is registered) and has not completed or been
 * dropped since.  A test waits for the count before it makes the event the
 * waits are for, so that every one of them really was waiting. */
typedef struct noting_fut {
	edo_future base;
	edo_future *inner;
	atomic_int *waiting;
	bool counted;
} noting_fut;

static edo_poll noting_poll(edo_future *f, edo_cx *cx)
{
	noting_fut *n = (noting_fut *)f;
	edo_poll p = edo_future_poll(n->inner, cx);
	if (p == EDO_PENDING && !n->counted) {
		n->counted = true;
		atomic_fetch_add(n->waiting, 1);
	} else if (p == EDO_READY && n->counted) {
		n->counted = false;
		atomic_fetch_sub(n->waiting, 1);
	}
	return p;
}

static void noting_drop(edo_future *f)
{
	noting_fut *n = (noting_fut *)f;
	if (n->counted) {
		n->counted = false;
		atomic_fetch_sub(n->waiting, 1);
	}
	edo_future_drop(n->inner);
}

static const edo_future_vtable noting_vt = {.poll = noting_poll, .drop = noting_drop};

static edo_future *noting(noting_fut *n, edo_future *inner, atomic_int *waiting)
{
	*n = (noting_fut){.base = {&noting_vt}, .inner = inner, .waiting = waiting};
	return &n->base;
}

/* ---- a task that closes sockets -------------------------------------------------------------- */

typedef struct closer_frame {
	EDO_FRAME;
	edo_tcp_listener *tl;
	edo_unix_listener *ul;
	edo_udp_socket *u;
	edo_unix_datagram *d;
} closer_frame;

/* Closes, for every holder, each socket it was given a handle to (and
 * releases that handle). */
EDO_ASYNC(closer, closer_frame, NULL)
{
	EDO_BEGIN();
	if (self->tl)
		edo_tcp_listener_close(self->tl);
	if (self->ul)
		edo_unix_listener_close(self->ul);
	if (self->u)
		edo_udp_close(self->u);
	if (self->d)
		edo_unix_datagram_close(self->d);
	EDO_END();
}

/* ---- many acceptors on one listener ---------------------------------------------------------- */

/* Eight tasks accept in a loop from one listener (half through the
 * listener's first handle, half through clones) while a driver task makes
 * the connections; each client sends its number and waits for an answer.
 * Every connection is accepted exactly once; when all are served every
 * acceptor waits again, and a close from another task ends each of those
 * accepts with -EBADF. */

#define ACCEPTORS 8
#define TCP_CONNS 200
#define UNIX_CONNS 64

typedef struct acc_shared {
	int conns;
	atomic_int waiting; /* accept futures pending now */
	atomic_int accepted;
	atomic_int seen[TCP_CONNS]; /* acceptances of each client */
} acc_shared;

typedef struct acc_client_frame {
	EDO_FRAME;
	edo_addr addr;
	const char *path; /* a Unix listener's path, or NULL: TCP to addr */
	uint16_t id;
	edo_tcp_connect_fut c;
	edo_stream *io;
	edo_write_all_fut wa;
	edo_read_exact_fut rx;
	char ack[2];
} acc_client_frame;

static void acc_client_cleanup(acc_client_frame *self)
{
	edo_stream_drop(self->io);
}

EDO_ASYNC(acc_client, acc_client_frame, acc_client_cleanup)
{
	EDO_BEGIN();
	if (self->path) {
		edo_unix_stream *s;
		CHECK_EQ(edo_unix_stream_connect(self->path, &s), 0);
		self->io = edo_unix_stream_io(s);
	} else {
		EDO_AWAIT(edo_tcp_connect(&self->c, &self->addr));
		CHECK_EQ(self->c.rc, 0);
		self->io = edo_tcp_stream_io(self->c.stream);
	}
	EDO_AWAIT(edo_write_all(&self->wa, self->io, &self->id, sizeof self->id));
	CHECK_EQ(self->wa.rc, 0);
	/* The acceptor answers 'k' and closes: one byte, then the end. */
	EDO_AWAIT(edo_read_exact(&self->rx, self->io, self->ack, 2));
	CHECK_EQ(self->rx.rc, EDO_EEOF);
	CHECK_EQ(self->rx.n, (size_t)1);
	CHECK_EQ(self->ack[0], 'k');
	EDO_END();
}

typedef struct acc_driver_frame {
	EDO_FRAME;
	edo_addr addr;
	const char *path;
	int n, i, rc;
	edo_join **h;
} acc_driver_frame;

static void acc_driver_cleanup(acc_driver_frame *self)
{
	free(self->h);
}

/* Makes @n connections at once, each from a task of its own. */
EDO_ASYNC(acc_driver, acc_driver_frame, acc_driver_cleanup)
{
	EDO_BEGIN();
	self->h = calloc((size_t)self->n, sizeof *self->h);
	CHECK(self->h != NULL);
	for (self->i = 0; self->i < self->n; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], acc_client, .addr = self->addr,
				   .path = self->path, .id = (uint16_t)self->i),
			 0);
	for (self->i = 0; self->i < self->n; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

typedef struct acceptor_frame {
	EDO_FRAME;
	edo_tcp_listener *tl; /* accepts from tl, or else from ul */
	edo_unix_listener *ul;
	bool own; /* the handle is a clone of its own: dropped at the end */
	acc_shared *sh;
	noting_fut nf;
	edo_tcp_accept_fut ta;
	edo_unix_accept_fut ua;
	edo_stream *io;
	edo_read_exact_fut rx;
	edo_write_all_fut wa;
	uint16_t id;
	int rc, count;
} acceptor_frame;

static void acceptor_cleanup(acceptor_frame *self)
{
	edo_stream_drop(self->io);
	if (self->own) {
		edo_tcp_listener_drop(self->tl);
		edo_unix_listener_drop(self->ul);
	}
}

/* Accepts until the accept fails; output: rc (the failure), count. */
EDO_ASYNC(acceptor, acceptor_frame, acceptor_cleanup)
{
	EDO_BEGIN();
	for (;;) {
		if (self->tl) {
			EDO_AWAIT(noting(&self->nf, edo_tcp_listener_accept(&self->ta, self->tl),
					 &self->sh->waiting));
			self->rc = self->ta.rc;
			if (self->rc == 0) {
				edo_addr p;
				CHECK(self->ta.stream != NULL);
				CHECK_EQ(edo_tcp_stream_peer_addr(self->ta.stream, &p), 0);
				CHECK(edo_addr_equal(&p, &self->ta.peer));
				self->io = edo_tcp_stream_io(self->ta.stream);
			}
		} else {
			EDO_AWAIT(noting(&self->nf, edo_unix_listener_accept(&self->ua, self->ul),
					 &self->sh->waiting));
			self->rc = self->ua.rc;
			if (self->rc == 0) {
				CHECK(self->ua.stream != NULL);
				self->io = edo_unix_stream_io(self->ua.stream);
			}
		}
		if (self->rc == -EBADF)
			break;
		CHECK_EQ(self->rc, 0);
		EDO_AWAIT(edo_read_exact(&self->rx, self->io, &self->id, sizeof self->id));
		CHECK_EQ(self->rx.rc, 0);
		CHECK_LT(self->id, self->sh->conns);
		CHECK_EQ(atomic_fetch_add(&self->sh->seen[self->id], 1), 0);
		atomic_fetch_add(&self->sh->accepted, 1);
		self->count++;
		EDO_AWAIT(edo_write_all(&self->wa, self->io, "k", 1));
		CHECK_EQ(self->wa.rc, 0);
		edo_stream_drop(self->io);
		self->io = NULL;
	}
	EDO_END();
}

typedef struct many_acc_frame {
	EDO_FRAME;
	const char *path; /* Unix: the listener's path; NULL: TCP */
	int conns;
	edo_addr addr;
	edo_tcp_listener *tl;
	edo_unix_listener *ul;
	acc_shared sh;
	edo_join *acc[ACCEPTORS], *drv, *cl;
	int i, rc, total;
} many_acc_frame;

EDO_ASYNC(many_acc_main, many_acc_frame, NULL)
{
	EDO_BEGIN();
	self->sh.conns = self->conns;
	if (self->path)
		CHECK_EQ(edo_unix_listener_bind(self->path, 0, &self->ul), 0);
	else
		self->tl = listen_local(&self->addr);
	for (self->i = 0; self->i < ACCEPTORS; self->i++) {
		bool own = self->i % 2;
		edo_tcp_listener *tl = self->tl;
		edo_unix_listener *ul = self->ul;
		if (own) {
			tl = self->tl ? edo_tcp_listener_clone(self->tl) : NULL;
			ul = self->ul ? edo_unix_listener_clone(self->ul) : NULL;
		}
		CHECK_EQ(EDO_SPAWN(&self->acc[self->i], acceptor, .tl = tl, .ul = ul, .own = own,
				   .sh = &self->sh),
			 0);
	}
	CHECK_EQ(EDO_SPAWN(&self->drv, acc_driver, .addr = self->addr, .path = self->path,
			   .n = self->conns),
		 0);
	EDO_AWAIT_JOIN(self->drv, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->drv);
	/* Every client was answered; once every acceptor waits again, all the
	 * connections have been counted: each exactly once. */
	while (atomic_load(&self->sh.waiting) < ACCEPTORS)
		EDO_YIELD();
	CHECK_EQ(atomic_load(&self->sh.accepted), self->conns);
	for (int k = 0; k < self->conns; k++)
		CHECK_EQ(atomic_load(&self->sh.seen[k]), 1);
	/* Another task closes the listener: every pending accept ends. */
	CHECK_EQ(EDO_SPAWN(&self->cl, closer,
			   .tl = self->tl ? edo_tcp_listener_clone(self->tl) : NULL,
			   .ul = self->ul ? edo_unix_listener_clone(self->ul) : NULL),
		 0);
	EDO_AWAIT_JOIN(self->cl, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->cl);
	for (self->i = 0; self->i < ACCEPTORS; self->i++) {
		EDO_AWAIT_JOIN(self->acc[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		CHECK_EQ(EDO_JOIN_OUTPUT(self->acc[self->i], acceptor)->rc, -EBADF);
		self->total += EDO_JOIN_OUTPUT(self->acc[self->i], acceptor)->count;
		edo_join_detach(self->acc[self->i]);
	}
	CHECK_EQ(self->total, self->conns);
	CHECK_EQ(atomic_load(&self->sh.waiting), 0);
	edo_tcp_listener_drop(self->tl);
	edo_unix_listener_drop(self->ul);
	EDO_END();
}

static void many_acceptors_tcp(edo_rt_flavor fl)
{
	raise_nofile(2 * TCP_CONNS + 200);
	int before = count_fds();
	many_acc_frame m = {EDO_FRAME_INIT(many_acc_main), .conns = TCP_CONNS};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(many_acceptors_tcp, many_acceptors_tcp)

static void many_acceptors_unix(edo_rt_flavor fl)
{
	char dir[64], path[128];
	make_tmpdir(dir, sizeof dir);
	snprintf(path, sizeof path, "%s/listener.sock", dir);
	int before = count_fds();
	many_acc_frame m = {EDO_FRAME_INIT(many_acc_main), .path = path, .conns = UNIX_CONNS};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
	CHECK_EQ(unlink(path), 0);
	CHECK_EQ(rmdir(dir), 0);
}
BOTH(many_acceptors_unix, many_acceptors_unix)

/* ---- every waiting receiver is woken --------------------------------------------------------- */

/* Sixteen tasks each wait in one recv_from on the same socket before
 * anything is sent; then sixteen datagrams come.  Every receiver gets one
 * (a waiter slot per direction would wake only the last one to wait, and
 * the others would never finish). */

#define WAITERS 16

typedef struct recv_one_frame {
	EDO_FRAME;
	edo_udp_socket *u; /* its own clone; or else d */
	edo_unix_datagram *d;
	atomic_int *waiting;
	noting_fut nf;
	edo_dgram_fut f;
	char buf[64];
} recv_one_frame;

static void recv_one_cleanup(recv_one_frame *self)
{
	edo_udp_drop(self->u);
	edo_unix_datagram_drop(self->d);
}

/* Receives one datagram; output f.n, f.from, buf. */
EDO_ASYNC(recv_one, recv_one_frame, recv_one_cleanup)
{
	EDO_BEGIN();
	if (self->u)
		EDO_AWAIT(noting(&self->nf,
				 edo_udp_recv_from(&self->f, self->u, self->buf, sizeof self->buf),
				 self->waiting));
	else
		EDO_AWAIT(noting(&self->nf,
				 edo_unix_datagram_recv_from(&self->f, self->d, self->buf,
							     sizeof self->buf),
				 self->waiting));
	EDO_END();
}

typedef struct woken_frame {
	EDO_FRAME;
	const char *path[2]; /* Unix: the receiver's and the bound sender's paths */
	edo_udp_socket *r, *s;
	edo_unix_datagram *dr, *db, *du; /* receiver, bound sender, unnamed sender */
	edo_addr ra, sa;
	atomic_int waiting;
	edo_join *h[WAITERS];
	edo_dgram_fut f;
	unsigned seen;
	char msg[4];
	int i, rc;
} woken_frame;

EDO_ASYNC(woken_main, woken_frame, NULL)
{
	EDO_BEGIN();
	if (!self->path[0]) {
		self->r = udp_local(&self->ra);
		self->s = udp_local(&self->sa);
	} else {
		CHECK_EQ(edo_unix_datagram_bind(self->path[0], &self->dr), 0);
		CHECK_EQ(edo_unix_datagram_bind(self->path[1], &self->db), 0);
		CHECK_EQ(edo_unix_datagram_bind(NULL, &self->du), 0);
	}
	for (self->i = 0; self->i < WAITERS; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], recv_one,
				   .u = self->r ? edo_udp_clone(self->r) : NULL,
				   .d = self->dr ? edo_unix_datagram_clone(self->dr) : NULL,
				   .waiting = &self->waiting),
			 0);
	/* All of them wait before anything is sent. */
	while (atomic_load(&self->waiting) < WAITERS)
		EDO_YIELD();
	for (self->i = 0; self->i < WAITERS; self->i++) {
		self->msg[0] = 'm';
		self->msg[1] = (char)('a' + self->i);
		self->msg[2] = 0;
		if (self->r)
			EDO_AWAIT(edo_udp_send_to(&self->f, self->s, self->msg, 3, &self->ra));
		else
			EDO_AWAIT(edo_unix_datagram_send_to(&self->f,
							    self->i % 2 ? self->du : self->db,
							    self->msg, 3, self->path[0]));
		CHECK_EQ(self->f.n, (ssize_t)3);
	}
	for (self->i = 0; self->i < WAITERS; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		recv_one_frame *o = EDO_JOIN_OUTPUT(self->h[self->i], recv_one);
		CHECK_EQ(o->f.n, (ssize_t)3);
		CHECK_EQ(o->buf[0], 'm');
		int k = o->buf[1] - 'a';
		CHECK_GE(k, 0);
		CHECK_LT(k, WAITERS);
		CHECK_EQ(self->seen & (1u << k), 0u);
		self->seen |= 1u << k;
		if (self->r)
			CHECK(edo_addr_equal(&o->f.from, &self->sa));
		else if (k % 2)
			CHECK(addr_is_unnamed(&o->f.from));
		else
			CHECK(addr_is_path(&o->f.from, self->path[1]));
		edo_join_detach(self->h[self->i]);
	}
	CHECK_EQ(self->seen, (1u << WAITERS) - 1);
	CHECK_EQ(atomic_load(&self->waiting), 0);
	edo_udp_close(self->r);
	edo_udp_close(self->s);
	edo_unix_datagram_close(self->dr);
	edo_unix_datagram_close(self->db);
	edo_unix_datagram_close(self->du);
	EDO_END();
}

static void woken_udp(edo_rt_flavor fl)
{
	int before = count_fds();
	woken_frame m = {EDO_FRAME_INIT(woken_main)};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(all_udp_receivers_woken, woken_udp)

static void woken_unix(edo_rt_flavor fl)
{
	char dir[64], p0[128], p1[128];
	make_tmpdir(dir, sizeof dir);
	snprintf(p0, sizeof p0, "%s/recv.sock", dir);
	snprintf(p1, sizeof p1, "%s/send.sock", dir);
	int before = count_fds();
	woken_frame m = {EDO_FRAME_INIT(woken_main), .path = {p0, p1}};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
	CHECK_EQ(unlink(p0), 0);
	CHECK_EQ(unlink(p1), 0);
	CHECK_EQ(rmdir(dir), 0);
}
BOTH(all_unix_receivers_woken, woken_unix)

/* ---- connected sockets, send_to a path, try_ and readiness of Unix datagrams ----------------- */

typedef struct ops_frame {
	EDO_FRAME;
	const char *path[2];
	edo_udp_socket *a, *b;
	edo_addr aa, ba;
	edo_unix_datagram *p, *q, *d1, *d2;
	edo_dgram_fut f;
	edo_net_ready_fut rf;
	edo_addr from;
	char buf[64];
} ops_frame;

EDO_ASYNC(ops_main, ops_frame, NULL)
{
	EDO_BEGIN();
	/* UDP, connected both ways: send / recv. */
	self->a = udp_local(&self->aa);
	self->b = udp_local(&self->ba);
	CHECK_EQ(edo_udp_connect(self->a, &self->ba), 0);
	CHECK_EQ(edo_udp_connect(self->b, &self->aa), 0);
	CHECK(edo_udp_send(&self->f, self->a, "hello", 5) == &self->f.base);
	EDO_AWAIT(&self->f.base);
	CHECK_EQ(self->f.n, (ssize_t)5);
	EDO_AWAIT(edo_udp_recv(&self->f, self->b, self->buf, sizeof self->buf));
	CHECK_EQ(self->f.n, (ssize_t)5);
	CHECK(memcmp(self->buf, "hello", 5) == 0);
	/* A datagram longer than the buffer is truncated, as recv(2); the
	 * rest of it is gone, not the start of the next one. */
	EDO_AWAIT(edo_udp_send(&self->f, self->b, "0123456789", 10));
	CHECK_EQ(self->f.n, (ssize_t)10);
	EDO_AWAIT(edo_udp_send(&self->f, self->b, "next", 4));
	CHECK_EQ(self->f.n, (ssize_t)4);
	EDO_AWAIT(edo_udp_recv(&self->f, self->a, self->buf, 4));
	CHECK_EQ(self->f.n, (ssize_t)4);
	CHECK(memcmp(self->buf, "0123", 4) == 0);
	EDO_AWAIT(edo_udp_recv_from(&self->f, self->a, self->buf, sizeof self->buf));
	CHECK_EQ(self->f.n, (ssize_t)4);
	CHECK(memcmp(self->buf, "next", 4) == 0);
	CHECK(edo_addr_equal(&self->f.from, &self->ba));
	/* An empty datagram (a NULL buffer with length 0 is no error). */
	EDO_AWAIT(edo_udp_send(&self->f, self->a, NULL, 0));
	CHECK_EQ(self->f.n, (ssize_t)0);
	EDO_AWAIT(edo_udp_recv_from(&self->f, self->b, self->buf, sizeof self->buf));
	CHECK_EQ(self->f.n, (ssize_t)0);
	CHECK(edo_addr_equal(&self->f.from, &self->aa));
	/* send_to with an address on a connected socket. */
	EDO_AWAIT(edo_udp_send_to(&self->f, self->a, "to", 2, &self->ba));
	CHECK_EQ(self->f.n, (ssize_t)2);
	EDO_AWAIT(edo_udp_recv(&self->f, self->b, self->buf, sizeof self->buf));
	CHECK_EQ(self->f.n, (ssize_t)2);
	CHECK(memcmp(self->buf, "to", 2) == 0);
	edo_udp_close(self->a);
	edo_udp_close(self->b);

	/* A Unix datagram pair: send / recv both ways; its senders are unnamed. */
	CHECK_EQ(edo_unix_datagram_pair(&self->p, &self->q), 0);
	EDO_AWAIT(edo_unix_datagram_send(&self->f, self->p, "ping", 4));
	CHECK_EQ(self->f.n, (ssize_t)4);
	EDO_AWAIT(edo_unix_datagram_send(&self->f, self->p, "12345", 5));
	CHECK_EQ(self->f.n, (ssize_t)5);
	EDO_AWAIT(edo_unix_datagram_recv(&self->f, self->q, self->buf, sizeof self->buf));
	CHECK_EQ(self->f.n, (ssize_t)4);
	CHECK(memcmp(self->buf, "ping", 4) == 0);
	EDO_AWAIT(edo_unix_datagram_recv(&self->f, self->q, self->buf, 2));
	CHECK_EQ(self->f.n, (ssize_t)2); /* truncated */
	CHECK(memcmp(self->buf, "12", 2) == 0);
	EDO_AWAIT(edo_unix_datagram_send(&self->f, self->q, "pong", 4));
	CHECK_EQ(self->f.n, (ssize_t)4);
	EDO_AWAIT(edo_unix_datagram_recv_from(&self->f, self->p, self->buf, sizeof self->buf));
	CHECK_EQ(self->f.n, (ssize_t)4);
	CHECK(memcmp(self->buf, "pong", 4) == 0);
	CHECK(addr_is_unnamed(&self->f.from));
	CHECK_EQ(edo_unix_datagram_try_recv_from(self->q, self->buf, sizeof self->buf, NULL),
		 (ssize_t)-EAGAIN);
	edo_unix_datagram_close(self->p);
	edo_unix_datagram_close(self->q);

	/* Bound Unix datagram sockets: send_to a path, recv_from its sender. */
	CHECK_EQ(edo_unix_datagram_bind(self->path[0], &self->d1), 0);
	CHECK_EQ(edo_unix_datagram_bind(self->path[1], &self->d2), 0);
	EDO_AWAIT(edo_unix_datagram_send_to(&self->f, self->d1, "to-d2", 5, self->path[1]));
	CHECK_EQ(self->f.n, (ssize_t)5);
	EDO_AWAIT(edo_unix_datagram_recv_from(&self->f, self->d2, self->buf, sizeof self->buf));
	CHECK_EQ(self->f.n, (ssize_t)5);
	CHECK(memcmp(self->buf, "to-d2", 5) == 0);
	CHECK(addr_is_path(&self->f.from, self->path[0]));
	/* try_: -EAGAIN on empty, then what was sent, with its sender. */
	CHECK_EQ(edo_unix_datagram_try_recv_from(self->d2, self->buf, sizeof self->buf,
						 &self->from),
		 (ssize_t)-EAGAIN);
	CHECK_EQ(edo_unix_datagram_try_send_to(self->d1, "abc", 3, self->path[1]), (ssize_t)3);
	CHECK_EQ(edo_unix_datagram_try_send_to(self->d1, "de", 2, self->path[1]), (ssize_t)2);
	memset(&self->from, 0, sizeof self->from);
	CHECK_EQ(edo_unix_datagram_try_recv_from(self->d2, self->buf, sizeof self->buf,
						 &self->from),
		 (ssize_t)3);
	CHECK(memcmp(self->buf, "abc", 3) == 0);
	CHECK(addr_is_path(&self->from, self->path[0]));
	CHECK_EQ(edo_unix_datagram_try_recv_from(self->d2, self->buf, sizeof self->buf, NULL),
		 (ssize_t)2);
	CHECK(memcmp(self->buf, "de", 2) == 0);
	CHECK_EQ(edo_unix_datagram_try_recv_from(self->d2, self->buf, sizeof self->buf, NULL),
		 (ssize_t)-EAGAIN);
	/* A NULL path is the connected peer: none yet, then d2's connect. */
	CHECK_EQ(edo_unix_datagram_try_send_to(self->d2, "c", 1, NULL), (ssize_t)-ENOTCONN);
	CHECK_EQ(edo_unix_datagram_connect(self->d2, self->path[0]), 0);
	CHECK_EQ(edo_unix_datagram_try_send_to(self->d2, "c", 1, NULL), (ssize_t)1);
	CHECK_EQ(edo_unix_datagram_try_recv_from(self->d1, self->buf, sizeof self->buf,
						 &self->from),
		 (ssize_t)1);
	CHECK_EQ(self->buf[0], 'c');
	CHECK(addr_is_path(&self->from, self->path[1]));
	EDO_AWAIT(edo_unix_datagram_send(&self->f, self->d2, "s", 1));
	CHECK_EQ(self->f.n, (ssize_t)1);
	EDO_AWAIT(edo_unix_datagram_recv(&self->f, self->d1, self->buf, sizeof self->buf));
	CHECK_EQ(self->f.n, (ssize_t)1);
	CHECK_EQ(self->buf[0], 's');

	/* Readiness: writable at once; readable once something is queued. */
	EDO_AWAIT(edo_unix_datagram_ready(&self->rf, self->d1, EDO_INTEREST_WRITABLE));
	CHECK_EQ(self->rf.rc, 0);
	CHECK(self->rf.ready & EDO_READY_WRITABLE);
	/* Empty (a try_ that says -EAGAIN clears the readiness): a readable
	 * wait is pending until a datagram comes.  (Readiness may be
	 * spurious: an edge of the datagrams above that the reactor reports
	 * late; then try again.) */
	for (;;) {
		CHECK_EQ(edo_unix_datagram_try_recv_from(self->d2, self->buf, sizeof self->buf,
							 NULL),
			 (ssize_t)-EAGAIN);
		edo_unix_datagram_ready(&self->rf, self->d2, EDO_INTEREST_READABLE);
		if (edo_future_poll(&self->rf.base, cx) == EDO_PENDING)
			break;
		CHECK_EQ(self->rf.rc, 0);
	}
	CHECK_EQ(edo_unix_datagram_try_send_to(self->d1, "r", 1, self->path[1]), (ssize_t)1);
	EDO_AWAIT(&self->rf.base);
	CHECK_EQ(self->rf.rc, 0);
	CHECK(self->rf.ready & EDO_READY_READABLE);
	CHECK_EQ(edo_unix_datagram_try_recv_from(self->d2, self->buf, sizeof self->buf, NULL),
		 (ssize_t)1);
	CHECK_EQ(self->buf[0], 'r');
	EDO_AWAIT(edo_unix_datagram_ready(&self->rf, self->d2, 0x100));
	CHECK_EQ(self->rf.rc, -EINVAL);
	EDO_AWAIT(edo_unix_datagram_ready(&self->rf, NULL, EDO_INTEREST_READABLE));
	CHECK_EQ(self->rf.rc, -EINVAL);
	/* Bad input to the try_ functions. */
	CHECK_EQ(edo_unix_datagram_try_send_to(NULL, "x", 1, self->path[1]), (ssize_t)-EINVAL);
	CHECK_EQ(edo_unix_datagram_try_send_to(self->d1, NULL, 1, self->path[1]), (ssize_t)-EINVAL);
	CHECK_EQ(edo_unix_datagram_try_send_to(self->d1, "x", 1, ""), (ssize_t)-EINVAL);
	CHECK_EQ(edo_unix_datagram_try_recv_from(NULL, self->buf, 1, NULL), (ssize_t)-EINVAL);
	CHECK_EQ(edo_unix_datagram_try_recv_from(self->d2, NULL, 1, NULL), (ssize_t)-EINVAL);
	/* The closed socket: -EBADF. */
	edo_unix_datagram_close(self->d1);
	CHECK_EQ(edo_unix_datagram_try_recv_from(self->d2, self->buf, sizeof self->buf, NULL),
		 (ssize_t)-EAGAIN);
	{
		edo_unix_datagram *c = edo_unix_datagram_clone(self->d2);
		edo_unix_datagram_close(self->d2);
		CHECK_EQ(edo_unix_datagram_try_recv_from(c, self->buf, sizeof self->buf, NULL),
			 (ssize_t)-EBADF);
		CHECK_EQ(edo_unix_datagram_try_send_to(c, "x", 1, self->path[0]), (ssize_t)-EBADF);
		self->d2 = c;
	}
	EDO_AWAIT(edo_unix_datagram_ready(&self->rf, self->d2, EDO_INTEREST_READABLE));
	CHECK_EQ(self->rf.rc, -EBADF);
	edo_unix_datagram_drop(self->d2);
	EDO_END();
}

static void ops_case(edo_rt_flavor fl)
{
	char dir[64], p0[128], p1[128];
	make_tmpdir(dir, sizeof dir);
	snprintf(p0, sizeof p0, "%s/d1.sock", dir);
	snprintf(p1, sizeof p1, "%s/d2.sock", dir);
	int before = count_fds();
	ops_frame m = {EDO_FRAME_INIT(ops_main), .path = {p0, p1}};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
	CHECK_EQ(unlink(p0), 0);
	CHECK_EQ(unlink(p1), 0);
	CHECK_EQ(rmdir(dir), 0);
}
BOTH(send_recv_and_unix_datagram_ops, ops_case)

/* ---- cancel safety --------------------------------------------------------------------------- */

/* A receive or an accept dropped while pending -- by hand, by a timeout,
 * or with its task aborted -- takes nothing: the next one, in this task or
 * another, gets the datagram or the connection, whether it came before
 * the drop or after.  With two waiting and the one the event woke aborted,
 * the other still gets it. */

typedef struct accept_one_frame {
	EDO_FRAME;
	edo_tcp_listener *l; /* its own clone */
	atomic_int *waiting;
	noting_fut nf;
	edo_tcp_accept_fut ta;
} accept_one_frame;

static void accept_one_cleanup(accept_one_frame *self)
{
	edo_tcp_listener_drop(self->l);
}

/* Accepts one connection; output ta (the stream is the joiner's). */
EDO_ASYNC(accept_one, accept_one_frame, accept_one_cleanup)
{
	EDO_BEGIN();
	EDO_AWAIT(noting(&self->nf, edo_tcp_listener_accept(&self->ta, self->l), self->waiting));
	EDO_END();
}

typedef struct cancel_frame {
	EDO_FRAME;
	const char *upath;
	edo_udp_socket *r, *s;
	edo_addr ra, sa, la;
	edo_tcp_listener *l;
	edo_unix_listener *ul;
	edo_unix_stream *uc;
	edo_dgram_fut f;
	edo_tcp_accept_fut ta;
	edo_unix_accept_fut ua;
	edo_tcp_connect_fut c;
	edo_tcp_stream *cs[2];
	edo_timeout to;
	edo_join *ha, *hb;
	atomic_int waiting;
	char buf[16], msg[2], want;
	int i, rc, rc_a;
} cancel_frame;

static void cancel_cleanup(cancel_frame *self)
{
	edo_udp_close(self->r);
	edo_udp_close(self->s);
	edo_tcp_listener_close(self->l);
	edo_unix_listener_close(self->ul);
}

/* Send the tag @t from s to r (loopback: never -EAGAIN for so little). */
static void send_tag(cancel_frame *self, char t)
{
	tag_msg(self->msg, t);
	CHECK_EQ(edo_udp_try_send_to(self->s, self->msg, 2, &self->ra), (ssize_t)2);
}

#define CANCEL_ROUNDS 20

EDO_ASYNC(cancel_main, cancel_frame, cancel_cleanup)
{
	EDO_BEGIN();
	self->r = udp_local(&self->ra);
	self->s = udp_local(&self->sa);
	self->l = listen_local(&self->la);
	CHECK_EQ(edo_unix_listener_bind(self->upath, 0, &self->ul), 0);
	for (self->i = 0; self->i < CANCEL_ROUNDS; self->i++) {
		/* By hand: polled until pending, dropped; the datagram comes
		 * before the drop (odd rounds) or after. */
		edo_udp_recv_from(&self->f, self->r, self->buf, sizeof self->buf);
		CHECK_EQ(edo_future_poll(&self->f.base, cx), EDO_PENDING);
		if (self->i % 2)
			send_tag(self, 'a');
		edo_future_drop(&self->f.base);
		CHECK(edo_future_is_empty(&self->f.base));
		if (self->i % 2 == 0)
			send_tag(self, 'a');
		EDO_AWAIT(edo_udp_recv_from(&self->f, self->r, self->buf, sizeof self->buf));
		CHECK_EQ(self->f.n, (ssize_t)2);
		CHECK_EQ(self->buf[0], 'a');
		CHECK(edo_addr_equal(&self->f.from, &self->sa));

		/* Dropped by a timeout. */
		EDO_AWAIT_TIMEOUT(&self->to,
				  edo_udp_recv_from(&self->f, self->r, self->buf, sizeof self->buf),
				  EDO_MS(1));
		CHECK_EQ(self->to.result, -ETIMEDOUT);
		send_tag(self, 'b');
		EDO_AWAIT(edo_udp_recv(&self->f, self->r, self->buf, sizeof self->buf));
		CHECK_EQ(self->f.n, (ssize_t)2);
		CHECK_EQ(self->buf[0], 'b');

		/* Its task aborted while it waits. */
		atomic_store(&self->waiting, 0);
		CHECK_EQ(EDO_SPAWN(&self->ha, recv_one, .u = edo_udp_clone(self->r),
				   .waiting = &self->waiting),
			 0);
		while (atomic_load(&self->waiting) < 1)
			EDO_YIELD();
		edo_join_abort(self->ha);
		EDO_AWAIT_JOIN(self->ha, &self->rc);
		CHECK_EQ(self->rc, -ECANCELED); /* nothing was sent yet */
		edo_join_detach(self->ha);
		send_tag(self, 'c');
		EDO_AWAIT(edo_udp_recv_from(&self->f, self->r, self->buf, sizeof self->buf));
		CHECK_EQ(self->f.n, (ssize_t)2);
		CHECK_EQ(self->buf[0], 'c');

		/* Two wait; the datagram comes and one of them is aborted: if it
		 * had not taken the datagram yet, the other one gets it. */
		atomic_store(&self->waiting, 0);
		CHECK_EQ(EDO_SPAWN(&self->ha, recv_one, .u = edo_udp_clone(self->r),
				   .waiting = &self->waiting),
			 0);
		CHECK_EQ(EDO_SPAWN(&self->hb, recv_one, .u = edo_udp_clone(self->r),
				   .waiting = &self->waiting),
			 0);
		while (atomic_load(&self->waiting) < 2)
			EDO_YIELD();
		send_tag(self, 'd');
		edo_join_abort(self->i % 2 ? self->ha : self->hb);
		if (self->i % 2 == 0) {
			edo_join *t = self->ha;
			self->ha = self->hb;
			self->hb = t;
		}
		EDO_AWAIT_JOIN(self->ha, &self->rc_a);
		self->want = 'd';
		if (self->rc_a == 0) {
			/* It completed before the abort came: it has the datagram. */
			CHECK_EQ(EDO_JOIN_OUTPUT(self->ha, recv_one)->f.n, (ssize_t)2);
			CHECK_EQ(EDO_JOIN_OUTPUT(self->ha, recv_one)->buf[0], 'd');
			send_tag(self, 'e');
			self->want = 'e';
		} else {
			CHECK_EQ(self->rc_a, -ECANCELED);
		}
		edo_join_detach(self->ha);
		EDO_AWAIT_JOIN(self->hb, &self->rc);
		CHECK_EQ(self->rc, 0);
		CHECK_EQ(EDO_JOIN_OUTPUT(self->hb, recv_one)->f.n, (ssize_t)2);
		CHECK_EQ(EDO_JOIN_OUTPUT(self->hb, recv_one)->buf[0], self->want);
		edo_join_detach(self->hb);
		/* Nothing left over, nothing received twice. */
		CHECK_EQ(edo_udp_try_recv_from(self->r, self->buf, sizeof self->buf, NULL),
			 (ssize_t)-EAGAIN);

		/* An accept by hand: pending, dropped; the connection comes before
		 * the drop (odd rounds) or after; the next accept gets it. */
		edo_tcp_listener_accept(&self->ta, self->l);
		CHECK_EQ(edo_future_poll(&self->ta.base, cx), EDO_PENDING);
		if (self->i % 2 == 0)
			edo_future_drop(&self->ta.base);
		EDO_AWAIT(edo_tcp_connect(&self->c, &self->la));
		CHECK_EQ(self->c.rc, 0);
		self->cs[0] = self->c.stream;
		edo_future_drop(&self->ta.base);
		EDO_AWAIT(edo_tcp_listener_accept(&self->ta, self->l));
		CHECK_EQ(self->ta.rc, 0);
		{
			edo_addr mine;
			CHECK_EQ(edo_tcp_stream_local_addr(self->cs[0], &mine), 0);
			CHECK(edo_addr_equal(&mine, &self->ta.peer));
		}
		edo_tcp_stream_close(self->ta.stream);
		edo_tcp_stream_close(self->cs[0]);

		/* An accept dropped by a timeout. */
		EDO_AWAIT_TIMEOUT(&self->to, edo_tcp_listener_accept(&self->ta, self->l),
				  EDO_MS(1));
		CHECK_EQ(self->to.result, -ETIMEDOUT);
		EDO_AWAIT(edo_tcp_connect(&self->c, &self->la));
		CHECK_EQ(self->c.rc, 0);
		self->cs[0] = self->c.stream;
		EDO_AWAIT(edo_tcp_listener_accept(&self->ta, self->l));
		CHECK_EQ(self->ta.rc, 0);
		edo_tcp_stream_close(self->ta.stream);
		edo_tcp_stream_close(self->cs[0]);

		/* Two acceptor tasks; a connection comes and one is aborted. */
		atomic_store(&self->waiting, 0);
		CHECK_EQ(EDO_SPAWN(&self->ha, accept_one, .l = edo_tcp_listener_clone(self->l),
				   .waiting = &self->waiting),
			 0);
		CHECK_EQ(EDO_SPAWN(&self->hb, accept_one, .l = edo_tcp_listener_clone(self->l),
				   .waiting = &self->waiting),
			 0);
		while (atomic_load(&self->waiting) < 2)
			EDO_YIELD();
		EDO_AWAIT(edo_tcp_connect(&self->c, &self->la));
		CHECK_EQ(self->c.rc, 0);
		self->cs[0] = self->c.stream;
		self->cs[1] = NULL;
		edo_join_abort(self->ha);
		EDO_AWAIT_JOIN(self->ha, &self->rc_a);
		if (self->rc_a == 0) {
			CHECK_EQ(EDO_JOIN_OUTPUT(self->ha, accept_one)->ta.rc, 0);
			edo_tcp_stream_close(EDO_JOIN_OUTPUT(self->ha, accept_one)->ta.stream);
			EDO_AWAIT(edo_tcp_connect(&self->c, &self->la));
			CHECK_EQ(self->c.rc, 0);
			self->cs[1] = self->c.stream;
		} else {
			CHECK_EQ(self->rc_a, -ECANCELED);
		}
		edo_join_detach(self->ha);
		EDO_AWAIT_JOIN(self->hb, &self->rc);
		CHECK_EQ(self->rc, 0);
		CHECK_EQ(EDO_JOIN_OUTPUT(self->hb, accept_one)->ta.rc, 0);
		{
			edo_addr mine;
			CHECK_EQ(edo_tcp_stream_local_addr(self->cs[self->cs[1] ? 1 : 0], &mine),
				 0);
			CHECK(edo_addr_equal(&mine,
					     &EDO_JOIN_OUTPUT(self->hb, accept_one)->ta.peer));
		}
		edo_tcp_stream_close(EDO_JOIN_OUTPUT(self->hb, accept_one)->ta.stream);
		edo_join_detach(self->hb);
		edo_tcp_stream_close(self->cs[0]);
		edo_tcp_stream_close(self->cs[1]);

		/* A Unix accept by hand, the same way. */
		edo_unix_listener_accept(&self->ua, self->ul);
		CHECK_EQ(edo_future_poll(&self->ua.base, cx), EDO_PENDING);
		if (self->i % 2 == 0)
			edo_future_drop(&self->ua.base);
		CHECK_EQ(edo_unix_stream_connect(self->upath, &self->uc), 0);
		edo_future_drop(&self->ua.base);
		EDO_AWAIT(edo_unix_listener_accept(&self->ua, self->ul));
		CHECK_EQ(self->ua.rc, 0);
		CHECK_EQ(edo_unix_stream_try_write(self->uc, "u", 1), (ssize_t)1);
		CHECK_EQ(edo_unix_stream_try_read(self->ua.stream, self->buf, sizeof self->buf),
			 (ssize_t)1);
		CHECK_EQ(self->buf[0], 'u');
		edo_unix_stream_close(self->ua.stream);
		edo_unix_stream_close(self->uc);
	}
	EDO_END();
}

static void cancel_case(edo_rt_flavor fl)
{
	char dir[64], path[128];
	make_tmpdir(dir, sizeof dir);
	snprintf(path, sizeof path, "%s/l.sock", dir);
	int before = count_fds();
	cancel_frame m = {EDO_FRAME_INIT(cancel_main), .upath = path};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
	CHECK_EQ(unlink(path), 0);
	CHECK_EQ(rmdir(dir), 0);
}
BOTH(dropped_while_pending_takes_nothing, cancel_case)

/* ---- a close completes every waiting operation with -EBADF ----------------------------------- */

/* In each round, three tasks each wait in a UDP recv_from, a TCP accept, a
 * Unix accept and a Unix datagram recv, on clones of one socket of each
 * kind; another task closes the four sockets.  Every wait completes with
 * -EBADF, and so does a new operation on the closed handle.  Odd rounds
 * close once all twelve wait; even rounds at once, so that on the
 * multi-thread runtime the close races with the waits being registered. */

#define CW_KINDS 4
#define CW_EACH 3

typedef struct cw_waiter_frame {
	EDO_FRAME;
	int kind;
	edo_udp_socket *u; /* the one of its kind, its own clone */
	edo_tcp_listener *tl;
	edo_unix_listener *ul;
	edo_unix_datagram *d;
	atomic_int *waiting;
	noting_fut nf;
	edo_dgram_fut f;
	edo_tcp_accept_fut ta;
	edo_unix_accept_fut ua;
	edo_addr to;
	long first, again, send; /* the waiting operation's result; a new one's; a send's */
	char buf[16];
} cw_waiter_frame;

static void cw_waiter_cleanup(cw_waiter_frame *self)
{
	edo_udp_drop(self->u);
	edo_tcp_listener_drop(self->tl);
	edo_unix_listener_drop(self->ul);
	edo_unix_datagram_drop(self->d);
}

EDO_ASYNC(cw_waiter, cw_waiter_frame, cw_waiter_cleanup)
{
	EDO_BEGIN();
	if (self->kind == 0) {
		EDO_AWAIT(noting(&self->nf,
				 edo_udp_recv_from(&self->f, self->u, self->buf, sizeof self->buf),
				 self->waiting));
		self->first = self->f.n;
		EDO_AWAIT(edo_udp_recv_from(&self->f, self->u, self->buf, sizeof self->buf));
		self->again = self->f.n;
		CHECK_EQ(edo_addr_ip(&self->to, "127.0.0.1", 9), 0);
		EDO_AWAIT(edo_udp_send_to(&self->f, self->u, "x", 1, &self->to));
		self->send = self->f.n;
	} else if (self->kind == 1) {
		EDO_AWAIT(noting(&self->nf, edo_tcp_listener_accept(&self->ta, self->tl),
				 self->waiting));
		self->first = self->ta.rc;
		EDO_AWAIT(edo_tcp_listener_accept(&self->ta, self->tl));
		self->again = self->ta.rc;
		self->send = -EBADF;
	} else if (self->kind == 2) {
		EDO_AWAIT(noting(&self->nf, edo_unix_listener_accept(&self->ua, self->ul),
				 self->waiting));
		self->first = self->ua.rc;
		EDO_AWAIT(edo_unix_listener_accept(&self->ua, self->ul));
		self->again = self->ua.rc;
		self->send = -EBADF;
	} else {
		EDO_AWAIT(noting(&self->nf,
				 edo_unix_datagram_recv(&self->f, self->d, self->buf,
							sizeof self->buf),
				 self->waiting));
		self->first = self->f.n;
		EDO_AWAIT(edo_unix_datagram_recv_from(&self->f, self->d, self->buf,
						      sizeof self->buf));
		self->again = self->f.n;
		EDO_AWAIT(edo_unix_datagram_send(&self->f, self->d, "x", 1));
		self->send = self->f.n;
	}
	EDO_END();
}

typedef struct cw_frame {
	EDO_FRAME;
	long rounds, round;
	edo_udp_socket *u;
	edo_tcp_listener *tl;
	edo_unix_listener *ul;
	edo_unix_datagram *d, *peer;
	edo_addr a;
	edo_join *h[CW_KINDS * CW_EACH], *cl;
	atomic_int waiting;
	char name[64];
	int i, rc;
} cw_frame;

EDO_ASYNC(cw_main, cw_frame, NULL)
{
	EDO_BEGIN();
	for (self->round = 0; self->round < self->rounds; self->round++) {
		atomic_store(&self->waiting, 0);
		self->u = udp_local(&self->a);
		self->tl = listen_local(&self->a);
		snprintf(self->name, sizeof self->name, "@edo-test-ops-%d-%ld", (int)getpid(),
			 self->round);
		CHECK_EQ(edo_unix_listener_bind(self->name, 0, &self->ul), 0);
		CHECK_EQ(edo_unix_datagram_pair(&self->d, &self->peer), 0);
		for (self->i = 0; self->i < CW_KINDS * CW_EACH; self->i++) {
			int kind = self->i % CW_KINDS;
			CHECK_EQ(EDO_SPAWN(&self->h[self->i], cw_waiter, .kind = kind,
					   .u = kind == 0 ? edo_udp_clone(self->u) : NULL,
					   .tl = kind == 1 ? edo_tcp_listener_clone(self->tl) :
							     NULL,
					   .ul = kind == 2 ? edo_unix_listener_clone(self->ul) :
							     NULL,
					   .d = kind == 3 ? edo_unix_datagram_clone(self->d) : NULL,
					   .waiting = &self->waiting),
				 0);
		}
		if (self->round % 2)
			while (atomic_load(&self->waiting) < CW_KINDS * CW_EACH)
				EDO_YIELD();
		/* The closer gets this task's handles. */
		CHECK_EQ(EDO_SPAWN(&self->cl, closer, .u = self->u, .tl = self->tl, .ul = self->ul,
				   .d = self->d),
			 0);
		EDO_AWAIT_JOIN(self->cl, &self->rc);
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->cl);
		for (self->i = 0; self->i < CW_KINDS * CW_EACH; self->i++) {
			EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
			CHECK_EQ(self->rc, 0);
			cw_waiter_frame *o = EDO_JOIN_OUTPUT(self->h[self->i], cw_waiter);
			if (o->first != -EBADF || o->again != -EBADF || o->send != -EBADF)
				fprintf(stderr, "round %ld kind %d: %ld %ld %ld\n", self->round,
					o->kind, o->first, o->again, o->send);
			CHECK_EQ(o->first, (long)-EBADF);
			CHECK_EQ(o->again, (long)-EBADF);
			CHECK_EQ(o->send, (long)-EBADF);
			edo_join_detach(self->h[self->i]);
		}
		CHECK_EQ(atomic_load(&self->waiting), 0);
		edo_unix_datagram_drop(self->peer);
	}
	EDO_END();
}

static void close_case(edo_rt_flavor fl)
{
	int before = count_fds();
	cw_frame m = {EDO_FRAME_INIT(cw_main), .rounds = test_scale(300)};
	run(fl, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(close_ends_waiting_operations, close_case)

/* Futures still waiting when the runtime is freed: their tasks are
 * cancelled, and dropping the pending futures releases everything (no
 * descriptor left open; ASan's leak check at exit). */
typedef struct parked_frame {
	EDO_FRAME;
	edo_udp_socket *u;
	edo_tcp_listener *tl;
	edo_unix_listener *ul;
	edo_unix_datagram *d, *peer;
	edo_addr a;
	atomic_int waiting;
	char name[64];
	int i;
} parked_frame;

EDO_ASYNC(parked_main, parked_frame, NULL)
{
	EDO_BEGIN();
	self->u = udp_local(&self->a);
	self->tl = listen_local(&self->a);
	snprintf(self->name, sizeof self->name, "@edo-test-ops-parked-%d", (int)getpid());
	CHECK_EQ(edo_unix_listener_bind(self->name, 0, &self->ul), 0);
	CHECK_EQ(edo_unix_datagram_pair(&self->d, &self->peer), 0);
	for (self->i = 0; self->i < CW_KINDS * CW_EACH; self->i++) {
		int kind = self->i % CW_KINDS;
		CHECK_EQ(EDO_SPAWN(NULL, cw_waiter, .kind = kind,
				   .u = kind == 0 ? edo_udp_clone(self->u) : NULL,
				   .tl = kind == 1 ? edo_tcp_listener_clone(self->tl) : NULL,
				   .ul = kind == 2 ? edo_unix_listener_clone(self->ul) : NULL,
				   .d = kind == 3 ? edo_unix_datagram_clone(self->d) : NULL,
				   .waiting = &self->waiting),
			 0);
	}
	while (atomic_load(&self->waiting) < CW_KINDS * CW_EACH)
		EDO_YIELD();
	/* Only the waiting tasks hold the sockets now. */
	edo_udp_drop(self->u);
	edo_tcp_listener_drop(self->tl);
	edo_unix_listener_drop(self->ul);
	edo_unix_datagram_drop(self->d);
	edo_unix_datagram_drop(self->peer);
	EDO_END();
}

static void parked_case(edo_rt_flavor fl)
{
	int before = count_fds();
	parked_frame m = {EDO_FRAME_INIT(parked_main)};
	run(fl, &m.edo_base);
	/* The frame's counter outlived the tasks: every pending future was
	 * dropped, and each wrapper counted itself out. */
	CHECK_EQ(atomic_load(&m.waiting), 0);
	CHECK_EQ(count_fds(), before);
}
BOTH(pending_operations_dropped_at_shutdown, parked_case)

/* ---- bad input ------------------------------------------------------------------------------- */

typedef struct bad_frame {
	EDO_FRAME;
	const char *path[2];
	edo_udp_socket *u, *v;
	edo_addr ua, va;
	edo_unix_datagram *d, *e;
	edo_tcp_listener *l;
	edo_unix_listener *ul;
	edo_dgram_fut f;
	edo_tcp_accept_fut ta;
	edo_unix_accept_fut ua_;
	char buf[16];
	char longpath[200];
} bad_frame;

/* @fut completes at its first poll with *@out == -EINVAL. */
#define FIRST_POLL_EINVAL(fut, out)                                                                \
	do {                                                                                       \
		CHECK_EQ(edo_future_poll((fut), cx), EDO_READY);                                   \
		CHECK_EQ((long)(out), (long)-EINVAL);                                              \
	} while (0)

EDO_ASYNC(bad_main, bad_frame, NULL)
{
	EDO_BEGIN();
	self->u = udp_local(&self->ua);
	self->v = udp_local(&self->va);
	CHECK_EQ(edo_udp_connect(self->u, &self->va), 0);
	CHECK_EQ(edo_unix_datagram_bind(self->path[0], &self->d), 0);
	CHECK_EQ(edo_unix_datagram_bind(self->path[1], &self->e), 0);
	{
		edo_addr la;
		self->l = listen_local(&la);
	}
	{
		char name[64];
		snprintf(name, sizeof name, "@edo-test-ops-bad-%d", (int)getpid());
		CHECK_EQ(edo_unix_listener_bind(name, 0, &self->ul), 0);
	}
	memset(self->longpath, 'p', sizeof self->longpath - 1);
	self->longpath[0] = '/';
	self->longpath[sizeof self->longpath - 1] = 0;
	/* A datagram waits at u: the bad receives below must leave it there. */
	CHECK_EQ(edo_udp_try_send_to(self->v, "keep", 4, &self->ua), (ssize_t)4);

	/* NULL sockets. */
	FIRST_POLL_EINVAL(edo_udp_recv_from(&self->f, NULL, self->buf, 8), self->f.n);
	FIRST_POLL_EINVAL(edo_udp_recv(&self->f, NULL, self->buf, 8), self->f.n);
	FIRST_POLL_EINVAL(edo_udp_send(&self->f, NULL, "x", 1), self->f.n);
	FIRST_POLL_EINVAL(edo_udp_send_to(&self->f, NULL, "x", 1, &self->va), self->f.n);
	FIRST_POLL_EINVAL(edo_unix_datagram_recv_from(&self->f, NULL, self->buf, 8), self->f.n);
	FIRST_POLL_EINVAL(edo_unix_datagram_recv(&self->f, NULL, self->buf, 8), self->f.n);
	FIRST_POLL_EINVAL(edo_unix_datagram_send(&self->f, NULL, "x", 1), self->f.n);
	FIRST_POLL_EINVAL(edo_unix_datagram_send_to(&self->f, NULL, "x", 1, self->path[1]),
			  self->f.n);
	FIRST_POLL_EINVAL(edo_tcp_listener_accept(&self->ta, NULL), self->ta.rc);
	FIRST_POLL_EINVAL(edo_unix_listener_accept(&self->ua_, NULL), self->ua_.rc);
	/* NULL buffers with a length. */
	FIRST_POLL_EINVAL(edo_udp_recv_from(&self->f, self->u, NULL, 8), self->f.n);
	FIRST_POLL_EINVAL(edo_udp_recv(&self->f, self->u, NULL, 8), self->f.n);
	FIRST_POLL_EINVAL(edo_udp_send(&self->f, self->u, NULL, 3), self->f.n);
	FIRST_POLL_EINVAL(edo_udp_send_to(&self->f, self->u, NULL, 3, &self->va), self->f.n);
	FIRST_POLL_EINVAL(edo_unix_datagram_recv_from(&self->f, self->e, NULL, 8), self->f.n);
	FIRST_POLL_EINVAL(edo_unix_datagram_recv(&self->f, self->e, NULL, 8), self->f.n);
	FIRST_POLL_EINVAL(edo_unix_datagram_send_to(&self->f, self->d, NULL, 3, self->path[1]),
			  self->f.n);
	/* No address, or a bad path. */
	FIRST_POLL_EINVAL(edo_udp_send_to(&self->f, self->u, "x", 1, NULL), self->f.n);
	FIRST_POLL_EINVAL(edo_unix_datagram_send_to(&self->f, self->d, "x", 1, NULL), self->f.n);
	FIRST_POLL_EINVAL(edo_unix_datagram_send_to(&self->f, self->d, "x", 1, ""), self->f.n);
	FIRST_POLL_EINVAL(edo_unix_datagram_send_to(&self->f, self->d, "x", 1, self->longpath),
			  self->f.n);
	/* Bad input completed: dropping it is a no-op, twice too. */
	edo_future_drop(&self->f.base);
	edo_future_drop(&self->f.base);

	/* Nothing was received: the waiting datagram is the next one... */
	EDO_AWAIT(edo_udp_recv_from(&self->f, self->u, self->buf, sizeof self->buf));
	CHECK_EQ(self->f.n, (ssize_t)4);
	CHECK(memcmp(self->buf, "keep", 4) == 0);
	CHECK(edo_addr_equal(&self->f.from, &self->va));
	/* ...and nothing was sent: the first datagram to arrive is the marker. */
	CHECK_EQ(edo_udp_try_send_to(self->u, "mark", 4, NULL), (ssize_t)4);
	EDO_AWAIT(edo_udp_recv_from(&self->f, self->v, self->buf, sizeof self->buf));
	CHECK_EQ(self->f.n, (ssize_t)4);
	CHECK(memcmp(self->buf, "mark", 4) == 0);
	CHECK_EQ(edo_unix_datagram_try_send_to(self->d, "mark", 4, self->path[1]), (ssize_t)4);
	CHECK_EQ(edo_unix_datagram_try_recv_from(self->e, self->buf, sizeof self->buf, NULL),
		 (ssize_t)4);
	CHECK(memcmp(self->buf, "mark", 4) == 0);
	CHECK_EQ(edo_unix_datagram_try_recv_from(self->e, self->buf, sizeof self->buf, NULL),
		 (ssize_t)-EAGAIN);

	/* Futures dropped without a poll, and completed ones: fine, twice. */
	edo_udp_recv_from(&self->f, self->u, self->buf, sizeof self->buf);
	edo_future_drop(&self->f.base);
	CHECK(edo_future_is_empty(&self->f.base));
	edo_future_drop(&self->f.base);
	edo_udp_send_to(&self->f, self->u, "x", 1, &self->va);
	edo_future_drop(&self->f.base);
	edo_unix_datagram_recv(&self->f, self->e, self->buf, sizeof self->buf);
	edo_future_drop(&self->f.base);
	edo_unix_datagram_send_to(&self->f, self->d, "x", 1, self->path[1]);
	edo_future_drop(&self->f.base);
	edo_tcp_listener_accept(&self->ta, self->l);
	edo_future_drop(&self->ta.base);
	edo_future_drop(&self->ta.base);
	edo_unix_listener_accept(&self->ua_, self->ul);
	edo_future_drop(&self->ua_.base);
	EDO_AWAIT(edo_udp_send(&self->f, self->u, "done", 4));
	CHECK_EQ(self->f.n, (ssize_t)4);
	edo_future_drop(&self->f.base);
	edo_future_drop(&self->f.base);
	/* What the never-polled send_tos above would have sent never came. */
	EDO_AWAIT(edo_udp_recv(&self->f, self->v, self->buf, sizeof self->buf));
	CHECK_EQ(self->f.n, (ssize_t)4);
	CHECK(memcmp(self->buf, "done", 4) == 0);
	CHECK_EQ(edo_unix_datagram_try_recv_from(self->e, self->buf, sizeof self->buf, NULL),
		 (ssize_t)-EAGAIN);

	edo_udp_close(self->u);
	edo_udp_close(self->v);
	edo_unix_datagram_close(self->d);
	edo_unix_datagram_close(self->e);
	edo_tcp_listener_close(self->l);
	edo_unix_listener_close(self->ul);
	EDO_END();
}

TEST(bad_input_einval_at_first_poll)
{
	char dir[64], p0[128], p1[128];
	make_tmpdir(dir, sizeof dir);
	snprintf(p0, sizeof p0, "%s/d.sock", dir);
	snprintf(p1, sizeof p1, "%s/e.sock", dir);
	int before = count_fds();
	bad_frame m = {EDO_FRAME_INIT(bad_main), .path = {p0, p1}};
	run(EDO_RT_CURRENT_THREAD, &m.edo_base);
	CHECK_EQ(count_fds(), before);
	CHECK_EQ(unlink(p0), 0);
	CHECK_EQ(unlink(p1), 0);
	CHECK_EQ(rmdir(dir), 0);
}

/* ---- EMFILE: accept futures back off and recover --------------------------------------------- */

/* Two tasks accept with futures (one through the listener's handle, one
 * through a clone) while a client process connects 40 times; only 6 more
 * descriptors fit, and the first 6 connections are held open, so the
 * accepts meet EMFILE, back off on their timers (no retry while the clock
 * is frozen) and accept the rest once the 6 are closed. */

#define EMF_CONNS 40
#define EMF_HEADROOM 6

static edo_tcp_stream *held[EMF_CONNS];
static atomic_int nslot, nheld, nserved;

typedef struct emf_conn_frame {
	EDO_FRAME;
	edo_tcp_stream *s;
	edo_read_exact_fut rx;
	edo_write_all_fut wa;
	char c;
	bool hold;
} emf_conn_frame;

EDO_ASYNC(emf_conn, emf_conn_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT(edo_read_exact(&self->rx, edo_tcp_stream_io(self->s), &self->c, 1));
	CHECK_EQ(self->rx.rc, 0);
	EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->s), "y", 1));
	CHECK_EQ(self->wa.rc, 0);
	if (self->hold) {
		held[atomic_fetch_add(&nslot, 1)] = self->s;
		atomic_fetch_add(&nheld, 1);
	} else {
		edo_tcp_stream_close(self->s);
	}
	atomic_fetch_add(&nserved, 1);
	EDO_END();
}

typedef struct emf_acceptor_frame {
	EDO_FRAME;
	edo_tcp_listener *l;
	bool own;
	atomic_int *accepted;
	edo_tcp_accept_fut ta;
	int rc, count;
} emf_acceptor_frame;

static void emf_acceptor_cleanup(emf_acceptor_frame *self)
{
	if (self->own)
		edo_tcp_listener_drop(self->l);
}

EDO_ASYNC(emf_acceptor, emf_acceptor_frame, emf_acceptor_cleanup)
{
	EDO_BEGIN();
	for (;;) {
		EDO_AWAIT(edo_tcp_listener_accept(&self->ta, self->l));
		self->rc = self->ta.rc;
		if (self->rc == -EBADF)
			break;
		CHECK_EQ(self->rc, 0);
		self->count++;
		{
			int k = atomic_fetch_add(self->accepted, 1);
			CHECK_EQ(EDO_SPAWN(NULL, emf_conn, .s = self->ta.stream,
					   .hold = k < EMF_HEADROOM),
				 0);
		}
	}
	EDO_END();
}

typedef struct emf_frame {
	EDO_FRAME;
	int port_fd;
	edo_addr addr;
	edo_tcp_listener *l;
	edo_join *acc[2];
	edo_sleep nap;
	atomic_int accepted;
	unsigned long tries;
	int rc, i, total;
} emf_frame;

EDO_ASYNC(emf_main, emf_frame, NULL)
{
	EDO_BEGIN();
	self->l = listen_local(&self->addr);
	send_port(self->port_fd, &self->addr);
	leave_fd_headroom(EMF_HEADROOM);
	CHECK_EQ(EDO_SPAWN(&self->acc[0], emf_acceptor, .l = self->l, .accepted = &self->accepted),
		 0);
	CHECK_EQ(EDO_SPAWN(&self->acc[1], emf_acceptor, .l = edo_tcp_listener_clone(self->l),
			   .own = true, .accepted = &self->accepted),
		 0);
	/* Wait until the held connections use up every descriptor and the
	 * accepts have met EMFILE a few times. */
	while (atomic_load(&nheld) < EMF_HEADROOM || exhausted_accepts(self->l) < 3)
		EDO_AWAIT_SLEEP(&self->nap, EDO_MS(1));
	CHECK_EQ(atomic_load(&self->accepted), EMF_HEADROOM);
	/* No busy retry: with the clock frozen, however much the runtime
	 * turns, no more tries but the one each acceptor may have under way. */
	CHECK_EQ(edo_time_pause(), 0);
	self->tries = exhausted_accepts(self->l);
	for (self->i = 0; self->i < 2000; self->i++)
		EDO_YIELD();
	CHECK_LE(exhausted_accepts(self->l) - self->tries, 2ul);
	/* Past the longest back-off (100 ms), one more try each: EMFILE again. */
	self->tries = exhausted_accepts(self->l);
	CHECK_EQ(edo_time_advance(EDO_MS(250)), 0);
	while (exhausted_accepts(self->l) == self->tries)
		EDO_YIELD();
	for (self->i = 0; self->i < 2000; self->i++)
		EDO_YIELD();
	CHECK_LE(exhausted_accepts(self->l) - self->tries, 4ul);
	CHECK_EQ(atomic_load(&self->accepted), EMF_HEADROOM);
	CHECK_EQ(edo_time_resume(), 0);
	/* Free the descriptors: the accepts recover and take the rest. */
	for (self->i = 0; self->i < EMF_HEADROOM; self->i++)
		edo_tcp_stream_close(held[self->i]);
	while (atomic_load(&nserved) < EMF_CONNS)
		EDO_AWAIT_SLEEP(&self->nap, EDO_MS(1));
	CHECK_EQ(atomic_load(&self->accepted), EMF_CONNS);
	/* Closed through a clone: acc[0] borrows this task's handle, which
	 * must outlive its accept future. */
	edo_tcp_listener_close(edo_tcp_listener_clone(self->l));
	for (self->i = 0; self->i < 2; self->i++) {
		EDO_AWAIT_JOIN(self->acc[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		CHECK_EQ(EDO_JOIN_OUTPUT(self->acc[self->i], emf_acceptor)->rc, -EBADF);
		self->total += EDO_JOIN_OUTPUT(self->acc[self->i], emf_acceptor)->count;
		edo_join_detach(self->acc[self->i]);
	}
	CHECK_EQ(self->total, EMF_CONNS);
	edo_tcp_listener_drop(self->l);
	EDO_END();
}

static void emfile_case(edo_rt_flavor fl)
{
	int port_fd;
	pid_t child = fork_tcp_client(EMF_CONNS, &port_fd);
	emf_frame m = {EDO_FRAME_INIT(emf_main), .port_fd = port_fd};
	run(fl, &m.edo_base);
	wait_child_ok(child);
}
BOTH(accept_futures_emfile_backoff_and_recovery, emfile_case)

/* The Unix listener's accept futures too: with no descriptor left, two
 * accept futures meet EMFILE and retry on their timers; a task frees the
 * descriptors after a few, and every client (in a child process) is
 * served. */
#define UEMF_CONNS 3
#define UEMF_FILL 4200

typedef struct uemf_frame {
	EDO_FRAME;
	const char *name;
	edo_unix_listener *l;
	int fill[UEMF_FILL], nfill, i, rc, total;
	edo_join *acc[2];
	edo_sleep nap;
	atomic_int served;
} uemf_frame;

typedef struct uemf_filler_frame {
	EDO_FRAME;
	uemf_frame *m;
	edo_sleep nap;
} uemf_filler_frame;

/* Frees the filler descriptors once the accepts have backed off a few times. */
EDO_ASYNC(uemf_filler, uemf_filler_frame, NULL)
{
	EDO_BEGIN();
	while (exhausted_accepts(self->m->l) < 3)
		EDO_AWAIT_SLEEP(&self->nap, EDO_MS(1));
	for (int k = 0; k < self->m->nfill; k++)
		close(self->m->fill[k]);
	EDO_END();
}

typedef struct uemf_acceptor_frame {
	EDO_FRAME;
	edo_unix_listener *l; /* its own clone */
	atomic_int *served;
	edo_unix_accept_fut ua;
	edo_stream *io;
	edo_read_exact_fut rx;
	edo_write_all_fut wa;
	char c;
	int rc, count;
} uemf_acceptor_frame;

static void uemf_acceptor_cleanup(uemf_acceptor_frame *self)
{
	edo_stream_drop(self->io);
	edo_unix_listener_drop(self->l);
}

EDO_ASYNC(uemf_acceptor, uemf_acceptor_frame, uemf_acceptor_cleanup)
{
	EDO_BEGIN();
	for (;;) {
		EDO_AWAIT(edo_unix_listener_accept(&self->ua, self->l));
		self->rc = self->ua.rc;
		if (self->rc == -EBADF)
			break;
		CHECK_EQ(self->rc, 0);
		self->count++;
		self->io = edo_unix_stream_io(self->ua.stream);
		EDO_AWAIT(edo_read_exact(&self->rx, self->io, &self->c, 1));
		CHECK_EQ(self->rx.rc, 0);
		EDO_AWAIT(edo_write_all(&self->wa, self->io, "y", 1));
		CHECK_EQ(self->wa.rc, 0);
		edo_stream_drop(self->io);
		self->io = NULL;
		atomic_fetch_add(self->served, 1);
	}
	EDO_END();
}

EDO_ASYNC(uemf_main, uemf_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_unix_listener_bind(self->name, 0, &self->l), 0);
	self->nfill = use_up_fds(self->fill, UEMF_FILL);
	for (self->i = 0; self->i < 2; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->acc[self->i], uemf_acceptor,
				   .l = edo_unix_listener_clone(self->l), .served = &self->served),
			 0);
	CHECK_EQ(EDO_SPAWN(NULL, uemf_filler, .m = self), 0);
	while (atomic_load(&self->served) < UEMF_CONNS)
		EDO_AWAIT_SLEEP(&self->nap, EDO_MS(1));
	CHECK_GE(exhausted_accepts(self->l), 3ul);
	edo_unix_listener_close(self->l);
	for (self->i = 0; self->i < 2; self->i++) {
		EDO_AWAIT_JOIN(self->acc[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		CHECK_EQ(EDO_JOIN_OUTPUT(self->acc[self->i], uemf_acceptor)->rc, -EBADF);
		self->total += EDO_JOIN_OUTPUT(self->acc[self->i], uemf_acceptor)->count;
		edo_join_detach(self->acc[self->i]);
	}
	CHECK_EQ(self->total, UEMF_CONNS);
	EDO_END();
}

static void unix_emfile_case(edo_rt_flavor fl)
{
	char name[64];
	snprintf(name, sizeof name, "@edo-test-ops-emfile-%d", (int)getpid());
	uemf_frame m = {EDO_FRAME_INIT(uemf_main), .name = name};
	pid_t child = fork_unix_client(name, UEMF_CONNS);
	run(fl, &m.edo_base);
	wait_child_ok(child);
}
BOTH(unix_accept_futures_emfile_backoff_and_recovery, unix_emfile_case)

/* ---- stress: senders and receivers sharing sockets through clones ---------------------------- */

/* Four sender tasks and four receiver tasks on four workers share a pair
 * of sockets through clones, each task looping on operation futures.  A
 * Unix datagram pair never drops (a full queue blocks the senders), so
 * every datagram arrives exactly once, and each receiver sees each
 * sender's numbers in increasing order (one queue, taken from in order).
 * UDP on loopback drops when the receive buffer is full, so there a
 * semaphore keeps at most 32 datagrams in flight (the receivers give the
 * permits back); every datagram arrives exactly once (the order is not
 * checked: loopback may reorder across CPUs). */

#define ST_SENDERS 4
#define ST_RECEIVERS 4
#define ST_WINDOW 32

typedef struct st_msg {
	uint32_t sender, seq;
} st_msg;

typedef struct st_shared {
	long count; /* datagrams per sender */
	atomic_long received;
	atomic_uchar *seen;   /* [sender * count + seq] */
	edo_semaphore window; /* UDP: datagrams in flight */
	edo_addr to, from;    /* UDP: the receivers' and the senders' addresses */
} st_shared;

typedef struct st_sender_frame {
	EDO_FRAME;
	st_shared *sh;
	edo_udp_socket *u; /* its own clone; or else d */
	edo_unix_datagram *d;
	uint32_t id;
	long i;
	st_msg m;
	edo_acquire_fut acq;
	edo_dgram_fut f;
} st_sender_frame;

static void st_sender_cleanup(st_sender_frame *self)
{
	edo_udp_drop(self->u);
	edo_unix_datagram_drop(self->d);
}

EDO_ASYNC(st_sender, st_sender_frame, st_sender_cleanup)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->sh->count; self->i++) {
		self->m = (st_msg){self->id, (uint32_t)self->i};
		if (self->u) {
			EDO_AWAIT(edo_semaphore_acquire(&self->acq, &self->sh->window));
			CHECK_EQ(self->acq.rc, 0);
			EDO_AWAIT(edo_udp_send_to(&self->f, self->u, &self->m, sizeof self->m,
						  &self->sh->to));
		} else {
			EDO_AWAIT(edo_unix_datagram_send(&self->f, self->d, &self->m,
							 sizeof self->m));
		}
		CHECK_EQ(self->f.n, (ssize_t)sizeof self->m);
	}
	EDO_END();
}

typedef struct st_receiver_frame {
	EDO_FRAME;
	st_shared *sh;
	edo_udp_socket *u; /* its own clone; or else d */
	edo_unix_datagram *d;
	bool from; /* the _recv_from form */
	long last[ST_SENDERS];
	long got;
	st_msg m;
	edo_dgram_fut f;
} st_receiver_frame;

static void st_receiver_cleanup(st_receiver_frame *self)
{
	edo_udp_drop(self->u);
	edo_unix_datagram_drop(self->d);
}

/* Receives until the socket is closed; output got. */
EDO_ASYNC(st_receiver, st_receiver_frame, st_receiver_cleanup)
{
	EDO_BEGIN();
	for (int k = 0; k < ST_SENDERS; k++)
		self->last[k] = -1;
	for (;;) {
		if (self->u && self->from)
			EDO_AWAIT(edo_udp_recv_from(&self->f, self->u, &self->m, sizeof self->m));
		else if (self->u)
			EDO_AWAIT(edo_udp_recv(&self->f, self->u, &self->m, sizeof self->m));
		else if (self->from)
			EDO_AWAIT(edo_unix_datagram_recv_from(&self->f, self->d, &self->m,
							      sizeof self->m));
		else
			EDO_AWAIT(edo_unix_datagram_recv(&self->f, self->d, &self->m,
							 sizeof self->m));
		if (self->f.n == -EBADF)
			break;
		CHECK_EQ(self->f.n, (ssize_t)sizeof self->m);
		CHECK_LT(self->m.sender, (uint32_t)ST_SENDERS);
		CHECK_LT((long)self->m.seq, self->sh->count);
		if (self->u) {
			if (self->from)
				CHECK(edo_addr_equal(&self->f.from, &self->sh->from));
			CHECK_EQ(edo_semaphore_release(&self->sh->window, 1), 0);
		} else {
			CHECK_GT((long)self->m.seq, self->last[self->m.sender]);
			self->last[self->m.sender] = (long)self->m.seq;
			if (self->from)
				CHECK(addr_is_unnamed(&self->f.from));
		}
		CHECK_EQ(atomic_exchange(&self->sh->seen[(long)self->m.sender * self->sh->count +
							 (long)self->m.seq],
					 1),
			 0);
		self->got++;
		atomic_fetch_add(&self->sh->received, 1);
	}
	EDO_END();
}

typedef struct stress_frame {
	EDO_FRAME;
	bool udp;
	st_shared sh;
	edo_udp_socket *r, *s;
	edo_unix_datagram *a, *b;
	edo_join *snd[ST_SENDERS], *rcv[ST_RECEIVERS];
	edo_sleep nap;
	long total, got;
	int i, rc;
} stress_frame;

static void stress_cleanup(stress_frame *self)
{
	free(self->sh.seen);
}

EDO_ASYNC(stress_main, stress_frame, stress_cleanup)
{
	EDO_BEGIN();
	self->total = ST_SENDERS * self->sh.count;
	self->sh.seen = calloc((size_t)self->total, 1);
	CHECK(self->sh.seen != NULL);
	if (self->udp) {
		self->r = udp_local(&self->sh.to);
		self->s = udp_local(&self->sh.from);
		CHECK_EQ(edo_semaphore_init(&self->sh.window, ST_WINDOW), 0);
	} else {
		CHECK_EQ(edo_unix_datagram_pair(&self->a, &self->b), 0);
	}
	for (self->i = 0; self->i < ST_RECEIVERS; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->rcv[self->i], st_receiver, .sh = &self->sh,
				   .u = self->r ? edo_udp_clone(self->r) : NULL,
				   .d = self->b ? edo_unix_datagram_clone(self->b) : NULL,
				   .from = self->i % 2),
			 0);
	for (self->i = 0; self->i < ST_SENDERS; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->snd[self->i], st_sender, .sh = &self->sh,
				   .u = self->s ? edo_udp_clone(self->s) : NULL,
				   .d = self->a ? edo_unix_datagram_clone(self->a) : NULL,
				   .id = (uint32_t)self->i),
			 0);
	for (self->i = 0; self->i < ST_SENDERS; self->i++) {
		EDO_AWAIT_JOIN(self->snd[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->snd[self->i]);
	}
	/* Everything sent; once everything has arrived, closing the
	 * receivers' socket ends their pending receives. */
	while (atomic_load(&self->sh.received) < self->total)
		EDO_AWAIT_SLEEP(&self->nap, EDO_MS(1));
	edo_udp_close(self->r);
	edo_unix_datagram_close(self->b);
	for (self->i = 0; self->i < ST_RECEIVERS; self->i++) {
		EDO_AWAIT_JOIN(self->rcv[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		self->got += EDO_JOIN_OUTPUT(self->rcv[self->i], st_receiver)->got;
		edo_join_detach(self->rcv[self->i]);
	}
	CHECK_EQ(self->got, self->total);
	CHECK_EQ(atomic_load(&self->sh.received), self->total);
	for (long k = 0; k < self->total; k++)
		CHECK_EQ(atomic_load(&self->sh.seen[k]), 1);
	if (self->udp)
		CHECK_EQ(edo_semaphore_available_permits(&self->sh.window), (size_t)ST_WINDOW);
	edo_udp_close(self->s);
	edo_unix_datagram_close(self->a);
	EDO_END();
}

static void stress_unix(edo_rt_flavor fl)
{
	int before = count_fds();
	stress_frame m = {EDO_FRAME_INIT(stress_main), .sh.count = test_scale(10000)};
	run_with(fl, 4, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(stress_unix_datagram_shared, stress_unix)

static void stress_udp(edo_rt_flavor fl)
{
	int before = count_fds();
	stress_frame m = {EDO_FRAME_INIT(stress_main), .udp = true, .sh.count = test_scale(5000)};
	run_with(fl, 4, &m.edo_base);
	CHECK_EQ(count_fds(), before);
}
BOTH(stress_udp_shared_window, stress_udp)

/* A readiness that can never be cleared: a UDP socket shut down for
 * reading reports EPOLLIN | EPOLLRDHUP for ever (READ_CLOSED stays) while a
 * non-blocking recv still says EAGAIN.  The receive loops, but each turn
 * spends a unit of budget, so the task yields and a timer on the same
 * current-thread runtime fires; it used to refund the unit and never yield
 * (both the operation future and the _poll_ function). */
typedef struct spin_recv_frame {
	EDO_FRAME;
	edo_udp_socket *u;
	edo_dgram_fut d;
	bool op;
	char buf[8];
	ssize_t n;
} spin_recv_frame;

EDO_ASYNC(spin_recv, spin_recv_frame, NULL)
{
	EDO_BEGIN();
	if (self->op) {
		edo_udp_recv(&self->d, self->u, self->buf, sizeof self->buf);
		EDO_AWAIT(&self->d.base);
		self->n = self->d.n;
	} else {
		EDO_AWAIT_POLL(
			edo_udp_poll_recv(self->u, cx, self->buf, sizeof self->buf, &self->n));
	}
	EDO_END();
}

typedef struct spin_main_frame {
	EDO_FRAME;
	edo_udp_socket *u;
	edo_join *j;
	edo_sleep s;
	bool op;
	int rc;
} spin_main_frame;

EDO_ASYNC(spin_main, spin_main_frame, NULL)
{
	EDO_BEGIN();
	{
		edo_addr a;
		CHECK_EQ(edo_addr_ip(&a, "127.0.0.1", 0), 0);
		CHECK_EQ(edo_udp_bind(&a, &self->u), 0);
		/* Linux says ENOTCONN (not connected) but shuts reading down. */
		(void)shutdown(edo_udp_fd(self->u), SHUT_RD);
		CHECK_EQ(EDO_SPAWN(&self->j, spin_recv, .u = self->u, .op = self->op), 0);
	}
	EDO_AWAIT_SLEEP(&self->s, EDO_MS(20));
	/* Reached: the receiving task yielded. */
	edo_join_abort(self->j);
	EDO_AWAIT_JOIN(self->j, &self->rc);
	edo_join_detach(self->j);
	edo_udp_drop(self->u);
	EDO_END();
}

TEST(unclearable_readiness_still_yields)
{
	for (int op = 0; op <= 1; op++) {
		spin_main_frame m = {EDO_FRAME_INIT(spin_main), .op = op};
		run(EDO_RT_CURRENT_THREAD, &m.edo_base);
	}
}

TEST_MAIN()
