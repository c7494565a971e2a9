#define _GNU_SOURCE
/* The I/O reactor through edo_async_fd: pipes between tasks, readiness
 * futures, edge-triggered readiness with the tick protocol, shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"

static edo_runtime *make_rt(edo_rt_flavor flavor)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, flavor);
	b.worker_threads = 2;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	return rt;
}

/* A writer task sends N messages through a pipe; a reader task reads them
 * all back.  Small pipe buffer writes force EAGAIN and readiness waits. */
#define PIPE_BYTES (4 << 20)

typedef struct writer_frame {
	EDO_FRAME;
	int fd;
	edo_async_fd *afd;
	size_t sent;
	ssize_t n;
	char buf[4096];
} writer_frame;

static void writer_cleanup(writer_frame *self)
{
	if (self->afd)
		close(edo_async_fd_free(self->afd));
}

EDO_ASYNC(writer, writer_frame, writer_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_async_fd_new(self->fd, EDO_INTEREST_WRITABLE, &self->afd), 0);
	while (self->sent < PIPE_BYTES) {
		for (size_t i = 0; i < sizeof self->buf; i++)
			self->buf[i] = (char)((self->sent + i) & 0x7f);
		EDO_AWAIT_POLL(edo_async_fd_poll_write(self->afd, cx, self->buf, sizeof self->buf,
						       &self->n));
		CHECK_GT(self->n, 0);
		self->sent += (size_t)self->n;
		/* A partial write: the rest is resent with the right pattern. */
	}
	EDO_END();
}

typedef struct reader_frame {
	EDO_FRAME;
	int fd;
	edo_async_fd *afd;
	size_t got;
	ssize_t n;
	bool bad;
	char buf[8192];
} reader_frame;

static void reader_cleanup(reader_frame *self)
{
	if (self->afd)
		close(edo_async_fd_free(self->afd));
}

EDO_ASYNC(reader, reader_frame, reader_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_async_fd_new(self->fd, EDO_INTEREST_READABLE, &self->afd), 0);
	for (;;) {
		EDO_AWAIT_POLL(edo_async_fd_poll_read(self->afd, cx, self->buf, sizeof self->buf,
						      &self->n));
		CHECK_GE(self->n, 0);
		if (self->n == 0)
			break; /* EOF: the writer closed its end */
		for (ssize_t i = 0; i < self->n; i++)
			if (self->buf[i] != (char)((self->got + (size_t)i) & 0x7f))
				self->bad = true;
		self->got += (size_t)self->n;
	}
	EDO_END();
}

typedef struct pipe_main_frame {
	EDO_FRAME;
	edo_join *w, *r;
	int rc;
	size_t got;
	bool bad;
} pipe_main_frame;

EDO_ASYNC(pipe_main, pipe_main_frame, NULL)
{
	EDO_BEGIN();
	int fds[2];
	CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
	CHECK_EQ(EDO_SPAWN(&self->r, reader, .fd = fds[0]), 0);
	CHECK_EQ(EDO_SPAWN(&self->w, writer, .fd = fds[1]), 0);
	EDO_AWAIT_JOIN(self->w, &self->rc);
	CHECK_EQ(self->rc, 0);
	EDO_AWAIT_JOIN(self->r, &self->rc);
	CHECK_EQ(self->rc, 0);
	self->got = EDO_JOIN_OUTPUT(self->r, reader)->got;
	self->bad = EDO_JOIN_OUTPUT(self->r, reader)->bad;
	edo_join_detach(self->w);
	edo_join_detach(self->r);
	EDO_END();
}

static void pipe_roundtrip(edo_rt_flavor flavor)
{
	edo_runtime *rt = make_rt(flavor);
	pipe_main_frame m = {EDO_FRAME_INIT(pipe_main)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(m.got, (size_t)PIPE_BYTES);
	CHECK(!m.bad);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(pipe_current_thread)
{
	pipe_roundtrip(EDO_RT_CURRENT_THREAD);
}

TEST(pipe_multi_thread)
{
	pipe_roundtrip(EDO_RT_MULTI_THREAD);
}

/* Several readiness futures wait on one fd; one write wakes them all. */
typedef struct waiter_frame {
	EDO_FRAME;
	edo_async_fd *afd;
	edo_readiness r;
	uint32_t ready;
} waiter_frame;

EDO_ASYNC(waiter, waiter_frame, NULL)
{
	EDO_BEGIN();
	edo_readiness_init(&self->r, self->afd, EDO_INTEREST_READABLE);
	EDO_AWAIT(&self->r);
	self->ready = self->r.ready;
	EDO_END();
}

typedef struct many_frame {
	EDO_FRAME;
	int fds[2];
	edo_async_fd *afd;
	edo_join *h[8];
	int i, rc;
	uint32_t all;
	edo_yield_now y;
} many_frame;

EDO_ASYNC(many_waiters, many_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(pipe2(self->fds, O_CLOEXEC), 0);
	CHECK_EQ(edo_async_fd_new(self->fds[0], EDO_INTEREST_READABLE, &self->afd), 0);
	for (self->i = 0; self->i < 8; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], waiter, .afd = self->afd), 0);
	for (self->i = 0; self->i < 4; self->i++)
		EDO_YIELD(); /* let them all register */
	CHECK_EQ(write(self->fds[1], "x", 1), 1);
	self->all = EDO_READY_READABLE;
	for (self->i = 0; self->i < 8; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		self->all &= EDO_JOIN_OUTPUT(self->h[self->i], waiter)->ready;
		edo_join_detach(self->h[self->i]);
	}
	CHECK_EQ(self->all, EDO_READY_READABLE);
	close(edo_async_fd_free(self->afd));
	close(self->fds[1]);
	EDO_END();
}

TEST(readiness_many_waiters)
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD);
	many_frame m = {EDO_FRAME_INIT(many_waiters)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	rt = make_rt(EDO_RT_MULTI_THREAD);
	many_frame m2 = {EDO_FRAME_INIT(many_waiters)};
	CHECK_EQ(edo_block_on(rt, &m2.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* A task parked on a read is cancelled at shutdown; an fd registered outside
 * any task reports EDO_ESHUTDOWN afterwards. */
typedef struct stuck_frame {
	EDO_FRAME;
	edo_async_fd *afd;
	ssize_t n;
	char c;
	atomic_int *cleaned;
} stuck_frame;

static void stuck_cleanup(stuck_frame *self)
{
	atomic_fetch_add(self->cleaned, 1);
}

EDO_ASYNC(stuck_reader, stuck_frame, stuck_cleanup)
{
	EDO_BEGIN();
	EDO_AWAIT_POLL(edo_async_fd_poll_read(self->afd, cx, &self->c, 1, &self->n));
	EDO_END();
}

typedef struct spawn_stuck_frame {
	EDO_FRAME;
	edo_async_fd *afd;
	atomic_int *cleaned;
	int i;
} spawn_stuck_frame;

EDO_ASYNC(spawn_stuck, spawn_stuck_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(NULL, stuck_reader, .afd = self->afd, .cleaned = self->cleaned), 0);
	for (self->i = 0; self->i < 3; self->i++)
		EDO_YIELD();
	EDO_END();
}

static void shutdown_case(edo_rt_flavor flavor)
{
	edo_runtime *rt = make_rt(flavor);
	edo_handle *h = edo_runtime_handle(rt);
	int fds[2];
	CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
	edo_async_fd *afd;
	CHECK_EQ(edo_async_fd_new_on(h, fds[0], EDO_INTEREST_READABLE, &afd), 0);
	atomic_int cleaned = 0;
	spawn_stuck_frame m = {EDO_FRAME_INIT(spawn_stuck), .afd = afd, .cleaned = &cleaned};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(atomic_load(&cleaned), 1);
	CHECK(edo_async_fd_is_shutdown(afd));
	ssize_t n = 0;
	char c;
	edo_cx cx = {edo_noop_waker()};
	CHECK_EQ(edo_async_fd_poll_read(afd, &cx, &c, 1, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)EDO_ESHUTDOWN);
	CHECK_EQ(edo_async_fd_free(afd), fds[0]);
	CHECK_EQ(edo_async_fd_new_on(h, fds[0], EDO_INTEREST_READABLE, &afd), EDO_ESHUTDOWN);
	edo_handle_drop(h);
	close(fds[0]);
	close(fds[1]);
}

TEST(shutdown_current_thread)
{
	shutdown_case(EDO_RT_CURRENT_THREAD);
}

TEST(shutdown_multi_thread)
{
	shutdown_case(EDO_RT_MULTI_THREAD);
}

TEST(bad_input)
{
	edo_async_fd *afd = NULL;
	CHECK_EQ(edo_async_fd_new(0, EDO_INTEREST_READABLE, &afd), EDO_ENORUNTIME);
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD);
	edo_handle *h = edo_runtime_handle(rt);
	CHECK_EQ(edo_async_fd_new_on(h, -1, EDO_INTEREST_READABLE, &afd), -EINVAL);
	CHECK_EQ(edo_async_fd_new_on(h, 0, 0, &afd), -EINVAL);
	CHECK_EQ(edo_async_fd_new_on(h, 0, 0x100, &afd), -EINVAL);
	CHECK_EQ(edo_async_fd_new_on(h, 12345, EDO_INTEREST_READABLE, &afd), -EBADF);
	/* A regular file cannot be polled: epoll says EPERM, the fd is unchanged. */
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	CHECK_GE(fd, 0);
	CHECK_EQ(edo_async_fd_new_on(h, fd, EDO_INTEREST_READABLE, &afd), -EPERM);
	CHECK_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	close(fd);
	CHECK(afd == NULL);
	CHECK_EQ(edo_async_fd_free(NULL), -EINVAL);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* A readiness future whose interest nothing can satisfy (no bit, or a bit
 * that is not an EDO_INTEREST_*), or that has no fd, completes at once
 * with ready == 0 instead of waiting for ever; a valid one on the same
 * readable pipe completes with the readiness. */
typedef struct bad_ready_frame {
	EDO_FRAME;
	int fds[2];
	edo_async_fd *afd;
	edo_readiness r;
	int i;
} bad_ready_frame;

EDO_ASYNC(bad_ready_main, bad_ready_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(pipe2(self->fds, O_CLOEXEC), 0);
	CHECK_EQ(write(self->fds[1], "x", 1), 1);
	CHECK_EQ(edo_async_fd_new(self->fds[0], EDO_INTEREST_READABLE, &self->afd), 0);
	/* Let the reactor see the byte first. */
	edo_readiness_init(&self->r, self->afd, EDO_INTEREST_READABLE);
	EDO_AWAIT(&self->r);
	CHECK_EQ(self->r.ready & EDO_READY_READABLE, EDO_READY_READABLE);
	{
		static const uint32_t bad[] = {0, 0x80, EDO_INTEREST_READABLE | 0x80, 0x100};
		for (self->i = 0; self->i < 4; self->i++) {
			edo_readiness_init(&self->r, self->afd, bad[self->i]);
			CHECK_EQ(edo_future_poll(&self->r.base, cx), EDO_READY);
			CHECK_EQ(self->r.ready, 0u);
			edo_future_drop(&self->r.base);
		}
	}
	/* No fd: the same, and dropping one never polled is fine too. */
	edo_readiness_init(&self->r, NULL, EDO_INTEREST_READABLE);
	CHECK_EQ(edo_future_poll(&self->r.base, cx), EDO_READY);
	CHECK_EQ(self->r.ready, 0u);
	edo_future_drop(&self->r.base);
	edo_readiness_init(&self->r, NULL, EDO_INTEREST_READABLE);
	edo_future_drop(&self->r.base);
	close(edo_async_fd_free(self->afd));
	close(self->fds[1]);
	EDO_END();
}

TEST(readiness_bad_interest)
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD);
	bad_ready_frame m = {EDO_FRAME_INIT(bad_ready_main)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* The poll functions on a NULL handle report bad input instead of crashing. */
TEST(null_async_fd)
{
	edo_cx cx = {edo_noop_waker()};
	edo_ready_guard g = {.ready = 0xff};
	CHECK_EQ(edo_async_fd_poll_read_ready(NULL, &cx, &g), EDO_READY);
	CHECK_EQ(g.ready, 0u);
	g.ready = 0xff;
	CHECK_EQ(edo_async_fd_poll_write_ready(NULL, &cx, &g), EDO_READY);
	CHECK_EQ(g.ready, 0u);
	edo_async_fd_clear_ready(NULL, &g);
	CHECK(!edo_async_fd_is_shutdown(NULL));
	char c;
	ssize_t n = 0;
	CHECK_EQ(edo_async_fd_poll_read(NULL, &cx, &c, 1, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)-EINVAL);
	n = 0;
	CHECK_EQ(edo_async_fd_poll_write(NULL, &cx, "x", 1, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)-EINVAL);
	CHECK_EQ(edo_async_fd_fd(NULL), -EINVAL);
}

/* Wakes from a plain thread through an eventfd-like pipe reach a task on
 * the multi-thread runtime: many rounds, no lost edge. */
typedef struct pingpong_frame {
	EDO_FRAME;
	edo_async_fd *in;
	int out;
	int rounds, i;
	ssize_t n;
	char c;
} pingpong_frame;

EDO_ASYNC(echo_rounds, pingpong_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->rounds; self->i++) {
		EDO_AWAIT_POLL(edo_async_fd_poll_read(self->in, cx, &self->c, 1, &self->n));
		CHECK_EQ(self->n, (ssize_t)1);
		CHECK_EQ(write(self->out, &self->c, 1), 1);
	}
	EDO_END();
}

typedef struct echo_peer {
	int to, from, rounds;
} echo_peer;

static void *echo_thread(void *arg)
{
	echo_peer *p = arg;
	for (int i = 0; i < p->rounds; i++) {
		char c = (char)i;
		CHECK_EQ(write(p->to, &c, 1), 1);
		char back;
		CHECK_EQ(read(p->from, &back, 1), 1);
		CHECK_EQ(back, c);
	}
	return NULL;
}

TEST(cross_thread_edges)
{
	edo_runtime *rt = make_rt(EDO_RT_MULTI_THREAD);
	edo_handle *h = edo_runtime_handle(rt);
	int a[2], b[2];
	CHECK_EQ(pipe2(a, O_CLOEXEC), 0);
	CHECK_EQ(pipe2(b, O_CLOEXEC), 0);
	edo_async_fd *in;
	CHECK_EQ(edo_async_fd_new_on(h, a[0], EDO_INTEREST_READABLE, &in), 0);
	int rounds = (int)test_scale(100000);
	echo_peer peer = {.to = a[1], .from = b[0], .rounds = rounds};
	pthread_t th;
	pthread_create(&th, NULL, echo_thread, &peer);
	pingpong_frame f = {EDO_FRAME_INIT(echo_rounds), .in = in, .out = b[1], .rounds = rounds};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	pthread_join(th, NULL);
	edo_async_fd_free(in);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

/* A read shorter than the buffer does not mean the fd is drained: a
 * datagram or seqpacket socket returns one record per read, a semaphore
 * eventfd one unit, and the next one is already there, with no new edge to
 * come.  Every record must be read; a hang is caught by the timeout. */
typedef struct records_frame {
	EDO_FRAME;
	edo_async_fd *afd;
	int count, i;
	ssize_t n;
	char buf[64];
} records_frame;

EDO_ASYNC(read_records, records_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->count; self->i++) {
		EDO_AWAIT_POLL(edo_async_fd_poll_read(self->afd, cx, self->buf, sizeof self->buf,
						      &self->n));
		CHECK_GT(self->n, 0);
		CHECK_LT(self->n, (ssize_t)sizeof self->buf); /* a short read every time */
	}
	EDO_END();
}

typedef struct records_main_frame {
	EDO_FRAME;
	int kind; /* 0: SOCK_DGRAM, 1: SOCK_SEQPACKET, 2: a semaphore eventfd */
	int fds[2];
	edo_async_fd *afd;
	records_frame rd;
	edo_timeout to;
} records_main_frame;

EDO_ASYNC(records_main, records_main_frame, NULL)
{
	EDO_BEGIN();
	if (self->kind == 2) {
		self->fds[0] = eventfd(2, EFD_SEMAPHORE | EFD_CLOEXEC);
		CHECK_GE(self->fds[0], 0);
		self->fds[1] = -1;
	} else {
		int type = self->kind == 0 ? SOCK_DGRAM : SOCK_SEQPACKET;
		CHECK_EQ(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, self->fds), 0);
		CHECK_EQ(send(self->fds[1], "first", 5, 0), (ssize_t)5);
		CHECK_EQ(send(self->fds[1], "second", 6, 0), (ssize_t)6);
	}
	CHECK_EQ(edo_async_fd_new(self->fds[0], EDO_INTEREST_READABLE, &self->afd), 0);
	self->rd = (records_frame){EDO_FRAME_INIT(read_records), .afd = self->afd, .count = 2};
	EDO_AWAIT_TIMEOUT(&self->to, &self->rd.edo_base, EDO_SEC(10));
	CHECK_EQ(self->to.result, 0); /* -ETIMEDOUT: the second record was never read */
	if (self->kind == 2)
		CHECK_EQ(self->rd.n, (ssize_t)sizeof(uint64_t));
	else
		CHECK(self->rd.n == 6 && memcmp(self->rd.buf, "second", 6) == 0);
	close(edo_async_fd_free(self->afd));
	if (self->fds[1] >= 0)
		close(self->fds[1]);
	EDO_END();
}

TEST(short_read_keeps_readiness)
{
	for (int kind = 0; kind < 3; kind++) {
		edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD);
		records_main_frame m = {EDO_FRAME_INIT(records_main), .kind = kind};
		CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
	}
}

/* The fd is closed before its edo_async_fd is freed, and its number is
 * reused by a new file registered in the same runtime: freeing the old
 * registration must leave the new one's epoll entry alone, so the new
 * reader still hears its data.  A hang is caught by the timeout.  Pipes
 * (the identity differs), then eventfds (all share one anonymous inode). */
typedef struct reuse_frame {
	EDO_FRAME;
	bool eventfds;
	int a[2], b[2];
	edo_async_fd *A, *B;
	records_frame rd;
	edo_timeout to;
} reuse_frame;

/* A pipe, or an eventfd (fds[1] == fds[0]). */
static void open_pair(bool eventfds, int fds[2])
{
	if (eventfds) {
		fds[0] = fds[1] = eventfd(0, EFD_CLOEXEC);
		CHECK_GE(fds[0], 0);
	} else {
		CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
	}
}

EDO_ASYNC(reuse_main, reuse_frame, NULL)
{
	EDO_BEGIN();
	open_pair(self->eventfds, self->a);
	CHECK_EQ(edo_async_fd_new(self->a[0], EDO_INTEREST_READABLE, &self->A), 0);
	CHECK_EQ(close(self->a[0]), 0);
	open_pair(self->eventfds, self->b);
	if (self->b[0] != self->a[0]) { /* give the new file the old number */
		CHECK_EQ(dup3(self->b[0], self->a[0], O_CLOEXEC), self->a[0]);
		if (self->b[1] == self->b[0])
			self->b[1] = self->a[0];
		close(self->b[0]);
		self->b[0] = self->a[0];
	}
	CHECK_EQ(edo_async_fd_new(self->b[0], EDO_INTEREST_READABLE, &self->B), 0);
	CHECK_EQ(edo_async_fd_free(self->A), self->a[0]);
	if (self->eventfds)
		CHECK_EQ(eventfd_write(self->b[1], 1), 0);
	else
		CHECK_EQ(write(self->b[1], "hello", 5), (ssize_t)5);
	self->rd = (records_frame){EDO_FRAME_INIT(read_records), .afd = self->B, .count = 1};
	EDO_AWAIT_TIMEOUT(&self->to, &self->rd.edo_base, EDO_SEC(10));
	CHECK_EQ(self->to.result, 0); /* -ETIMEDOUT: the new file's epoll entry was deleted */
	if (self->eventfds)
		CHECK_EQ(self->rd.n, (ssize_t)sizeof(uint64_t));
	else
		CHECK(self->rd.n == 5 && memcmp(self->rd.buf, "hello", 5) == 0);
	close(edo_async_fd_free(self->B));
	if (!self->eventfds) {
		close(self->a[1]);
		close(self->b[1]);
	}
	EDO_END();
}

TEST(close_before_free_number_reused)
{
	for (int i = 0; i < 2; i++) {
		edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD);
		reuse_frame m = {EDO_FRAME_INIT(reuse_main), .eventfds = i == 1};
		CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
	}
}

/* The fd is closed before its edo_async_fd is freed while the file stays
 * open through a dup: the epoll entry outlives the free and its events
 * still name the registration, which must stay allocated (AddressSanitizer
 * reports a use after free otherwise) until the runtime is freed (and no
 * later: LeakSanitizer).  A plain close before the free is harmless too,
 * and the reactor keeps working for a new registration. */
typedef struct dup_frame {
	EDO_FRAME;
	int p[2], q[2], c[2], d;
	edo_async_fd *A, *Q, *C;
	edo_sleep nap;
	records_frame rd;
	edo_timeout to;
} dup_frame;

EDO_ASYNC(dup_main, dup_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(pipe2(self->p, O_CLOEXEC), 0);
	CHECK_EQ(edo_async_fd_new(self->p[0], EDO_INTEREST_READABLE, &self->A), 0);
	self->d = dup(self->p[0]);
	CHECK_GE(self->d, 0);
	CHECK_EQ(close(self->p[0]), 0);
	CHECK_EQ(edo_async_fd_free(self->A), self->p[0]);
	/* A plain close before the free. */
	CHECK_EQ(pipe2(self->q, O_CLOEXEC), 0);
	CHECK_EQ(edo_async_fd_new(self->q[0], EDO_INTEREST_READABLE, &self->Q), 0);
	CHECK_EQ(close(self->q[0]), 0);
	CHECK_EQ(edo_async_fd_free(self->Q), self->q[0]);
	/* Reactor turns: released registrations are freed; then an event on
	 * the file still open through the dup, dispatched by the next turn. */
	EDO_AWAIT_SLEEP(&self->nap, EDO_MS(1));
	CHECK_EQ(write(self->p[1], "x", 1), (ssize_t)1);
	EDO_AWAIT_SLEEP(&self->nap, EDO_MS(1));
	CHECK_EQ(write(self->p[1], "y", 1), (ssize_t)1);
	/* A new registration works (and its turns see the stale entry too). */
	CHECK_EQ(pipe2(self->c, O_CLOEXEC), 0);
	CHECK_EQ(edo_async_fd_new(self->c[0], EDO_INTEREST_READABLE, &self->C), 0);
	EDO_AWAIT_SLEEP(&self->nap, EDO_MS(1));
	CHECK_EQ(write(self->c[1], "hello", 5), (ssize_t)5);
	self->rd = (records_frame){EDO_FRAME_INIT(read_records), .afd = self->C, .count = 1};
	EDO_AWAIT_TIMEOUT(&self->to, &self->rd.edo_base, EDO_SEC(10));
	CHECK_EQ(self->to.result, 0);
	CHECK(self->rd.n == 5 && memcmp(self->rd.buf, "hello", 5) == 0);
	close(edo_async_fd_free(self->C));
	close(self->c[1]);
	close(self->q[1]);
	close(self->p[1]);
	close(self->d);
	EDO_END();
}

static void close_before_free_dup(edo_rt_flavor flavor)
{
	edo_runtime *rt = make_rt(flavor);
	dup_frame m = {EDO_FRAME_INIT(dup_main)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(close_before_free_file_still_open)
{
	close_before_free_dup(EDO_RT_CURRENT_THREAD);
	close_before_free_dup(EDO_RT_MULTI_THREAD);
}

/* edo_readiness_clear(): after the operation returned EAGAIN, the next
 * readiness future waits for a new edge instead of completing at once (a
 * busy loop); it completes when data arrives.  A clear after a new edge
 * came keeps the readiness. */
typedef struct clear_frame {
	EDO_FRAME;
	bool late_edge; /* current-thread only: a sleep is sure to turn the reactor */
	int p[2];
	edo_async_fd *afd;
	edo_readiness r, r2;
	edo_sleep nap;
	edo_timeout to;
	char c[4];
} clear_frame;

EDO_ASYNC(clear_main, clear_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(pipe2(self->p, O_CLOEXEC), 0);
	CHECK_EQ(write(self->p[1], "x", 1), (ssize_t)1);
	CHECK_EQ(edo_async_fd_new(self->p[0], EDO_INTEREST_READABLE, &self->afd), 0);
	edo_readiness_init(&self->r, self->afd, EDO_INTEREST_READABLE);
	EDO_AWAIT(&self->r);
	CHECK_EQ(self->r.ready & EDO_READY_READABLE, EDO_READY_READABLE);
	CHECK_EQ(read(self->p[0], self->c, sizeof self->c), (ssize_t)1);
	CHECK_EQ(read(self->p[0], self->c, sizeof self->c), (ssize_t)-1);
	CHECK_EQ(errno, EAGAIN);
	edo_readiness_clear(&self->r);
	/* Drained and cleared: a new future waits. */
	edo_readiness_init(&self->r2, self->afd, EDO_INTEREST_READABLE);
	CHECK_EQ(edo_future_poll(&self->r2.base, cx), EDO_PENDING);
	/* New data: it completes. */
	CHECK_EQ(write(self->p[1], "y", 1), (ssize_t)1);
	EDO_AWAIT_TIMEOUT(&self->to, &self->r2.base, EDO_SEC(10));
	CHECK_EQ(self->to.result, 0);
	CHECK_EQ(self->r2.ready & EDO_READY_READABLE, EDO_READY_READABLE);
	CHECK_EQ(read(self->p[0], self->c, sizeof self->c), (ssize_t)1);
	CHECK_EQ(read(self->p[0], self->c, sizeof self->c), (ssize_t)-1);
	CHECK_EQ(errno, EAGAIN);
	/* An edge arrives (and a reactor turn sees it) between the EAGAIN and
	 * the clear: the clear keeps the readiness, the next future is ready. */
	CHECK_EQ(write(self->p[1], "z", 1), (ssize_t)1);
	if (self->late_edge) {
		EDO_AWAIT_SLEEP(&self->nap, EDO_MS(1));
		edo_readiness_clear(&self->r2);
		edo_readiness_init(&self->r, self->afd, EDO_INTEREST_READABLE);
		CHECK_EQ(edo_future_poll(&self->r.base, cx), EDO_READY);
		CHECK_EQ(self->r.ready & EDO_READY_READABLE, EDO_READY_READABLE);
	}
	/* Clearing a future that never completed, or with no fd, does nothing. */
	edo_readiness_init(&self->r2, self->afd, EDO_INTEREST_READABLE);
	edo_readiness_clear(&self->r2);
	edo_readiness_init(&self->r2, NULL, EDO_INTEREST_READABLE);
	edo_readiness_clear(&self->r2);
	edo_readiness_clear(NULL);
	edo_readiness_init(&self->r2, self->afd, EDO_INTEREST_READABLE);
	CHECK_EQ(edo_future_poll(&self->r2.base, cx), EDO_READY);
	close(edo_async_fd_free(self->afd));
	close(self->p[1]);
	EDO_END();
}

TEST(readiness_clear)
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD);
	clear_frame m = {EDO_FRAME_INIT(clear_main), .late_edge = true};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	rt = make_rt(EDO_RT_MULTI_THREAD);
	clear_frame m2 = {EDO_FRAME_INIT(clear_main)};
	CHECK_EQ(edo_block_on(rt, &m2.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST_MAIN()
