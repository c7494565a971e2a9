#define _GNU_SOURCE
/* The I/O reactor through edo_async_fd: pipes between tasks, readiness
 * futures, edge-triggered readiness with the tick protocol, shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
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

TEST_MAIN()
