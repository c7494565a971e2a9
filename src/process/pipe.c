/* Pipes as streams (edo/process.h): one end of a pipe registered with the
 * reactor through an edo_async_fd.
 *
 * Writes never raise SIGPIPE.  send(MSG_NOSIGNAL) exists only for sockets,
 * so a write to a pipe runs with SIGPIPE blocked in the calling thread; if
 * it fails with EPIPE, the SIGPIPE it generated (thread-directed, so
 * pending on this thread) is consumed with sigtimedwait before the mask is
 * restored -- unless one was pending already, which is not ours to take.
 * That is two extra system calls per write, paid only on pipes; changing
 * the process's SIGPIPE disposition instead (what Rust's runtime does at
 * start-up) is not a library's decision to make.
 */
#define _GNU_SOURCE
#include "process/pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edo/error.h"
#include "edo/io.h"
#include "edo/process.h"
#include "edo/task.h"

typedef struct pipe_stream {
	edo_stream base;
	edo_async_fd *afd; /* NULL once a write-only end is shut down */
	int fd;
	bool readable, writable; /* the descriptor's access mode */
	bool write_shut;         /* shut down (a readable end stays open) */
} pipe_stream;

static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
	ssize_t r = write(fd, buf, len);
	int e = errno;
	if (r < 0 && e == EPIPE && !was_pending) {
		static const struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return r;
}

static edo_poll pipe_poll_read(edo_stream *s, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	pipe_stream *p = (pipe_stream *)s;
	if (!p->readable) {
		*n = -EBADF;
		return EDO_READY;
	}
	return edo_async_fd_poll_read(p->afd, cx, buf, len, n);
}

static edo_poll pipe_poll_write(edo_stream *s, edo_cx *cx, const void *buf, size_t len, ssize_t *n)
{
	pipe_stream *p = (pipe_stream *)s;
	if (!p->writable || p->write_shut) {
		*n = p->writable ? -EPIPE : -EBADF;
		return EDO_READY;
	}
	for (;;) {
		edo_ready_guard g;
		if (edo_async_fd_poll_write_ready(p->afd, cx, &g) == EDO_PENDING)
			return EDO_PENDING;
		if (edo_async_fd_is_shutdown(p->afd)) {
			*n = EDO_ESHUTDOWN;
			return EDO_READY;
		}
		ssize_t r = write_nosigpipe(p->fd, buf, len);
		if (r >= 0) {
			if ((size_t)r < len)
				edo_async_fd_clear_ready(p->afd, &g);
			*n = r;
			return EDO_READY;
		}
		if (errno != EAGAIN && errno != EINTR) {
			*n = -errno;
			return EDO_READY;
		}
		if (errno == EAGAIN)
			edo_async_fd_clear_ready(p->afd, &g);
		edo_coop_refund();
	}
}

static void pipe_close(pipe_stream *p)
{
	if (p->afd) {
		close(edo_async_fd_free(p->afd));
		p->afd = NULL;
	}
}

/* Shutting a write-only end down closes it: the reader at the other end
 * sees end of file at once (a pipe has no half-close short of that).  A
 * write-only end has no reader task, so nothing else can be using it.  An
 * end that is also readable (a pty, a FIFO opened read-write, a socket)
 * stays open for its reader until it is dropped: writes fail with EPIPE
 * from now on, and a socket is shut down for writing. */
static edo_poll pipe_poll_shutdown(edo_stream *s, edo_cx *cx, int *rc)
{
	(void)cx;
	pipe_stream *p = (pipe_stream *)s;
	*rc = 0;
	if (!p->writable || p->write_shut)
		return EDO_READY;
	p->write_shut = true;
	if (!p->readable)
		pipe_close(p);
	else if (shutdown(p->fd, SHUT_WR) < 0 && errno != ENOTSOCK)
		*rc = -errno;
	return EDO_READY;
}

static void pipe_drop(edo_stream *s)
{
	pipe_stream *p = (pipe_stream *)s;
	pipe_close(p);
	free(p);
}

static const edo_stream_vtable pipe_vt = {
	.poll_read = pipe_poll_read,
	.poll_write = pipe_poll_write,
	.poll_shutdown = pipe_poll_shutdown,
	.drop = pipe_drop,
};

int edo__pipe_wrap(edo_handle *h, int fd, edo_stream **out)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	uint32_t interest =
		(fl & O_ACCMODE) == O_RDONLY ? EDO_INTEREST_READABLE :
		(fl & O_ACCMODE) == O_WRONLY ? EDO_INTEREST_WRITABLE :
					       EDO_INTEREST_READABLE | EDO_INTEREST_WRITABLE;
	pipe_stream *p = malloc(sizeof *p);
	if (!p)
		return -ENOMEM;
	int rc = edo_async_fd_new_on(h, fd, interest, &p->afd);
	if (rc < 0) {
		free(p);
		return rc;
	}
	p->base.vt = &pipe_vt;
	p->fd = fd;
	p->readable = interest & EDO_INTEREST_READABLE;
	p->writable = interest & EDO_INTEREST_WRITABLE;
	p->write_shut = false;
	*out = &p->base;
	return 0;
}

int edo_pipe_from_fd(int fd, edo_stream **out)
{
	if (fd < 0 || !out)
		return -EINVAL;
	return edo__pipe_wrap(NULL, fd, out);
}

int edo_pipe_new(edo_stream **rd, edo_stream **wr)
{
	if (!rd || !wr)
		return -EINVAL;
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	edo_stream *r = NULL, *w = NULL;
	int rc = edo__pipe_wrap(NULL, p[0], &r);
	if (rc < 0) {
		close(p[0]);
		close(p[1]);
		return rc;
	}
	rc = edo__pipe_wrap(NULL, p[1], &w);
	if (rc < 0) {
		edo_stream_drop(r);
		close(p[1]);
		return rc;
	}
	*rd = r;
	*wr = w;
	return 0;
}
