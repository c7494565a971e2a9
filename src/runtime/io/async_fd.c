/* edo_async_fd: the public face of a reactor registration (see reactor.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edo/error.h"
#include "edo/io.h"
#include "edo/task.h"
#include "runtime/context.h"
#include "runtime/io/reactor.h"
#include "runtime/sched.h"

#define INTEREST_ALL (EDO_INTEREST_READABLE | EDO_INTEREST_WRITABLE | EDO_INTEREST_PRIORITY)

/* At least one EDO_INTEREST_* bit and nothing else. */
static bool interest_ok(uint32_t interest)
{
	return (interest & INTEREST_ALL) && !(interest & ~INTEREST_ALL);
}

struct edo_async_fd {
	edo__scheduled_io *io;
	edo__sched *sched; /* a reference: keeps the reactor alive */
	int fd;
	/* The file registered, to tell at free whether @fd still names it
	 * (the user may have closed it, and the number may be reused). */
	edo__file_id id;
};

int edo_async_fd_new_on(edo_handle *h, int fd, uint32_t interest, edo_async_fd **out)
{
	edo__sched *s = h ? h : edo__ctx.sched;
	if (!s)
		return EDO_ENORUNTIME;
	if (!out || fd < 0 || !interest_ok(interest))
		return -EINVAL;
	if (!s->has_driver || !s->driver.io)
		return -ENOTSUP;
	if (atomic_load_explicit(&s->shutdown, memory_order_relaxed))
		return EDO_ESHUTDOWN;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	edo__file_id id;
	int rc = edo__file_id_get(s->driver.io, fd, &id);
	if (rc < 0)
		return rc;
	edo_async_fd *a = malloc(sizeof *a);
	if (!a)
		return -ENOMEM;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int e = -errno;
		free(a);
		return e;
	}
	rc = edo__reactor_register(s->driver.io, fd, interest, &a->io);
	if (rc < 0) {
		if (!(fl & O_NONBLOCK))
			(void)fcntl(fd, F_SETFL, fl); /* bad input changes nothing */
		free(a);
		return rc;
	}
	edo__sched_ref(s);
	a->sched = s;
	a->fd = fd;
	a->id = id;
	*out = a;
	return 0;
}

int edo_async_fd_new(int fd, uint32_t interest, edo_async_fd **out)
{
	return edo_async_fd_new_on(NULL, fd, interest, out);
}

int edo_async_fd_fd(const edo_async_fd *a)
{
	return a ? a->fd : -EINVAL;
}

int edo_async_fd_free(edo_async_fd *a)
{
	if (!a)
		return -EINVAL;
	int fd = a->fd;
	edo__reactor_deregister_fd(a->sched->driver.io, a->io, &a->id);
	edo__sched_unref(a->sched);
	free(a);
	return fd;
}

bool edo_async_fd_is_shutdown(const edo_async_fd *a)
{
	if (!a)
		return false;
	return edo__sio_readiness(a->io, EDO_INTEREST_READABLE).shutdown;
}

static edo_poll poll_ready(edo_async_fd *a, edo_cx *cx, uint32_t direction, edo_ready_guard *g)
{
	if (!a) {
		*g = (edo_ready_guard){0}; /* bad input: nothing is ready, at once */
		return EDO_READY;
	}
	if (edo_coop_poll_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	edo__ready_event ev;
	if (edo__sio_poll_ready(a->io, cx, direction, &ev) == EDO_PENDING) {
		edo_coop_refund();
		return EDO_PENDING;
	}
	g->ready = ev.shutdown ? 0 : ev.ready;
	g->tick_ = ev.tick;
	return EDO_READY;
}

edo_poll edo_async_fd_poll_read_ready(edo_async_fd *a, edo_cx *cx, edo_ready_guard *g)
{
	return poll_ready(a, cx, EDO_INTEREST_READABLE, g);
}

edo_poll edo_async_fd_poll_write_ready(edo_async_fd *a, edo_cx *cx, edo_ready_guard *g)
{
	return poll_ready(a, cx, EDO_INTEREST_WRITABLE, g);
}

void edo_async_fd_clear_ready(edo_async_fd *a, const edo_ready_guard *g)
{
	if (!a || !g)
		return;
	edo__sio_clear_readiness(a->io, (edo__ready_event){.ready = g->ready, .tick = g->tick_});
}

/* The readiness loop around one syscall (Tokio's poll_io).  Readiness is
 * cleared only on EAGAIN: a short read or write does not tell that the fd
 * is drained or full.  A datagram or seqpacket socket, a semaphore
 * eventfd, inotify or a tty returns one record per read, with the next one
 * already queued and no new edge to come; even a pipe's writer can switch
 * it to packet mode (O_DIRECT, with fcntl) at any time.  The cost is one
 * more syscall, the one that says EAGAIN, each time the fd runs dry. */
edo_poll edo_async_fd_poll_read(edo_async_fd *a, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	if (!a) {
		*n = -EINVAL;
		return EDO_READY;
	}
	for (;;) {
		edo_ready_guard g;
		if (poll_ready(a, cx, EDO_INTEREST_READABLE, &g) == EDO_PENDING)
			return EDO_PENDING;
		if (edo_async_fd_is_shutdown(a)) {
			*n = EDO_ESHUTDOWN;
			return EDO_READY;
		}
		ssize_t r = read(a->fd, buf, len);
		if (r >= 0) {
			*n = r;
			return EDO_READY;
		}
		if (errno != EAGAIN && errno != EINTR) {
			*n = -errno;
			return EDO_READY;
		}
		if (errno == EAGAIN)
			edo_async_fd_clear_ready(a, &g);
		edo_coop_refund();
	}
}

edo_poll edo_async_fd_poll_write(edo_async_fd *a, edo_cx *cx, const void *buf, size_t len,
				 ssize_t *n)
{
	if (!a) {
		*n = -EINVAL;
		return EDO_READY;
	}
	for (;;) {
		edo_ready_guard g;
		if (poll_ready(a, cx, EDO_INTEREST_WRITABLE, &g) == EDO_PENDING)
			return EDO_PENDING;
		if (edo_async_fd_is_shutdown(a)) {
			*n = EDO_ESHUTDOWN;
			return EDO_READY;
		}
		ssize_t r = write(a->fd, buf, len);
		if (r >= 0) {
			*n = r;
			return EDO_READY;
		}
		if (errno != EAGAIN && errno != EINTR) {
			*n = -errno;
			return EDO_READY;
		}
		if (errno == EAGAIN)
			edo_async_fd_clear_ready(a, &g);
		edo_coop_refund();
	}
}

/* ---- readiness futures ------------------------------------------------------------------ */

static edo_poll readiness_poll(edo_future *f, edo_cx *cx)
{
	edo_readiness *r = (edo_readiness *)f;
	if (!r->fd_) {
		r->ready = 0; /* bad input (see edo_readiness_init), reported at once */
		return EDO_READY;
	}
	if (edo_coop_poll_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	edo__ready_event ev;
	if (edo__sio_poll_waiter(r->fd_->io, &r->waiter_, cx, &ev) == EDO_PENDING) {
		edo_coop_refund();
		return EDO_PENDING;
	}
	r->ready = ev.shutdown ? 0 : ev.ready;
	r->tick_ = ev.tick;
	return EDO_READY;
}

void edo_readiness_clear(edo_readiness *r)
{
	/* Nothing to clear: not completed, shut down, or bad input. */
	if (!r || !r->fd_ || !r->ready)
		return;
	edo__sio_clear_readiness(r->fd_->io,
				 (edo__ready_event){.ready = r->ready, .tick = r->tick_});
}

static void readiness_drop(edo_future *f)
{
	edo_readiness *r = (edo_readiness *)f;
	/* Under the registration's lock: the reactor may be unlinking it. */
	if (r->fd_)
		edo__sio_remove_waiter(r->fd_->io, &r->waiter_);
}

static const edo_future_vtable readiness_vt = {.poll = readiness_poll, .drop = readiness_drop};

void edo_readiness_init(edo_readiness *r, edo_async_fd *a, uint32_t interest)
{
	*r = (edo_readiness){.base = {&readiness_vt}, .fd_ = a, .interest_ = interest};
	r->waiter_.interest_ = interest;
	/* Nothing could ever satisfy a bad interest: complete at once. */
	if (!interest_ok(interest))
		r->fd_ = NULL;
}
