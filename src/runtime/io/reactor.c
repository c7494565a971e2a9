#include "runtime/io/reactor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edo/error.h"
#include "sync/internal.h"
#include "util/sanitizer.h"

#define MAX_EVENTS 1024
#define WAKE_BATCH 32

struct edo__reactor {
	int epfd;
	int evfd;
	pthread_mutex_t lock; /* guards the registration set and release list */
	edo__scheduled_io *all;
	edo__scheduled_io *release;
	/* Deregistered, but a stale epoll entry may still name them: freed
	 * with the reactor, after epfd is closed (linked by release_next). */
	edo__scheduled_io *abandoned;
	dev_t ev_dev; /* the eventfd's identity: the shared anonymous inode */
	ino_t ev_ino;
	/* The release list is not empty (written under `lock`; read without it
	 * by a turn that skips epoll_wait). */
	atomic_bool has_release;
	bool shutdown;
	/* Metrics: relaxed load + store by a single writer at a time (the
	 * registration counters under `lock`, the event counter by the thread
	 * in the turn). */
	_Atomic(uint64_t) n_registered, n_deregistered, n_events;
	struct epoll_event events[MAX_EVENTS]; /* used by the turning thread only */
};

static void count(_Atomic(uint64_t) *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

void edo__reactor_counts(edo__reactor *r, uint64_t *registered, uint64_t *deregistered,
			 uint64_t *events)
{
	*registered = atomic_load_explicit(&r->n_registered, memory_order_relaxed);
	*deregistered = atomic_load_explicit(&r->n_deregistered, memory_order_relaxed);
	*events = atomic_load_explicit(&r->n_events, memory_order_relaxed);
}

/* ---- readiness word ----------------------------------------------------------------- */

static uint32_t to_ready(uint32_t epev)
{
	uint32_t r = 0;
	if (epev & (EPOLLIN | EPOLLPRI))
		r |= EDO_READY_READABLE;
	if (epev & EPOLLOUT)
		r |= EDO_READY_WRITABLE;
	if (epev & EPOLLRDHUP)
		r |= EDO_READY_READ_CLOSED;
	if (epev & EPOLLHUP)
		r |= EDO_READY_READ_CLOSED | EDO_READY_WRITE_CLOSED;
	if (epev & EPOLLERR)
		r |= EDO_READY_ERROR;
	if (epev & EPOLLPRI)
		r |= EDO_READY_PRIORITY;
	return r;
}

/* Add @ready and bump the tick (an event delivery). */
static void set_readiness(edo__scheduled_io *io, uint32_t ready)
{
	uint64_t cur = atomic_load_explicit(&io->readiness, memory_order_acquire);
	for (;;) {
		uint64_t tick = ((cur & EDO__IO_TICK_MASK) >> EDO__IO_TICK_SHIFT) + 1;
		uint64_t next = (cur & ~(EDO__IO_TICK_MASK)) | ready |
				((tick << EDO__IO_TICK_SHIFT) & EDO__IO_TICK_MASK);
		if (atomic_compare_exchange_weak_explicit(&io->readiness, &cur, next,
							  memory_order_acq_rel,
							  memory_order_acquire))
			return;
	}
}

void edo__sio_clear_readiness(edo__scheduled_io *io, edo__ready_event ev)
{
	/* Closed states stay: a closed peer stays closed. */
	uint64_t clear = ev.ready & ~(EDO_READY_READ_CLOSED | EDO_READY_WRITE_CLOSED);
	uint64_t cur = atomic_load_explicit(&io->readiness, memory_order_acquire);
	for (;;) {
		uint32_t tick = (uint32_t)((cur & EDO__IO_TICK_MASK) >> EDO__IO_TICK_SHIFT);
		if (tick != ev.tick)
			return; /* a new edge arrived: keep it */
		uint64_t next = cur & ~clear;
		if (atomic_compare_exchange_weak_explicit(&io->readiness, &cur, next,
							  memory_order_acq_rel,
							  memory_order_acquire))
			return;
	}
}

/* ---- waking ------------------------------------------------------------------------ */

/* Wake everyone interested in @ready (all of them if @all), calling the wakers
 * outside the lock, WAKE_BATCH at a time. */
static void wake(edo__scheduled_io *io, uint32_t ready, bool all)
{
	edo_waker batch[WAKE_BATCH];
	for (;;) {
		size_t n = 0;
		bool more = false;
		edo__spin_lock(&io->lock);
		if ((all || (ready & edo__sio_mask_for(EDO_INTEREST_READABLE))) && io->reader.vt)
			batch[n++] = edo_waker_take(&io->reader);
		if ((all || (ready & edo__sio_mask_for(EDO_INTEREST_WRITABLE))) && io->writer.vt)
			batch[n++] = edo_waker_take(&io->writer);
		edo__io_waiter *w = io->waiters;
		while (w) {
			edo__io_waiter *next = w->next_;
			if (all || (ready & edo__sio_mask_for(w->interest_))) {
				if (n == WAKE_BATCH) {
					more = true;
					break;
				}
				/* Unlink: the waiter is done. */
				if (w->prev_)
					w->prev_->next_ = w->next_;
				else
					io->waiters = w->next_;
				if (w->next_)
					w->next_->prev_ = w->prev_;
				w->prev_ = w->next_ = NULL;
				w->linked_ = false;
				w->ready_ = true;
				batch[n++] = edo_waker_take(&w->waker_);
			}
			w = next;
		}
		edo__spin_unlock(&io->lock);
		for (size_t i = 0; i < n; i++)
			edo_waker_wake(batch[i]);
		if (!more)
			return;
	}
}

/* ---- polling -------------------------------------------------------------------------- */

edo_poll edo__sio_poll_ready_slow(edo__scheduled_io *io, edo_cx *cx, uint32_t direction,
				  edo__ready_event *ev)
{
	edo__spin_lock(&io->lock);
	/* Re-check under the lock: the turn sets readiness before taking it. */
	*ev = edo__sio_readiness(io, direction);
	if (ev->ready || ev->shutdown) {
		edo__spin_unlock(&io->lock);
		return EDO_READY;
	}
	edo_waker old =
		edo__waker_swap(direction & EDO_INTEREST_WRITABLE ? &io->writer : &io->reader,
				cx->waker);
	edo__spin_unlock(&io->lock);
	edo_waker_drop(old);
	return EDO_PENDING;
}

edo_poll edo__sio_poll_waiter(edo__scheduled_io *io, edo__io_waiter *w, edo_cx *cx,
			      edo__ready_event *ev)
{
	edo__spin_lock(&io->lock);
	*ev = edo__sio_readiness(io, w->interest_);
	if (ev->ready || ev->shutdown || w->ready_) {
		if (w->linked_) {
			if (w->prev_)
				w->prev_->next_ = w->next_;
			else
				io->waiters = w->next_;
			if (w->next_)
				w->next_->prev_ = w->prev_;
			w->prev_ = w->next_ = NULL;
			w->linked_ = false;
		}
		edo_waker old = edo_waker_take(&w->waker_);
		edo__spin_unlock(&io->lock);
		edo_waker_drop(old);
		if (!ev->ready && !ev->shutdown) {
			/* Woken for readiness that someone else consumed: wait again. */
			w->ready_ = false;
			return edo__sio_poll_waiter(io, w, cx, ev);
		}
		return EDO_READY;
	}
	edo_waker old = edo__waker_swap(&w->waker_, cx->waker);
	if (!w->linked_) {
		w->prev_ = NULL;
		w->next_ = io->waiters;
		if (io->waiters)
			io->waiters->prev_ = w;
		io->waiters = w;
		w->linked_ = true;
	}
	edo__spin_unlock(&io->lock);
	edo_waker_drop(old);
	return EDO_PENDING;
}

void edo__sio_remove_waiter(edo__scheduled_io *io, edo__io_waiter *w)
{
	edo__spin_lock(&io->lock);
	if (w->linked_) {
		if (w->prev_)
			w->prev_->next_ = w->next_;
		else
			io->waiters = w->next_;
		if (w->next_)
			w->next_->prev_ = w->prev_;
		w->prev_ = w->next_ = NULL;
		w->linked_ = false;
	}
	edo_waker old = edo_waker_take(&w->waker_);
	edo__spin_unlock(&io->lock);
	edo_waker_drop(old);
}

/* ---- the reactor ------------------------------------------------------------------------ */

int edo__reactor_new(edo__reactor **out)
{
	edo__reactor *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		int e = -errno;
		free(r);
		return e;
	}
	r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->evfd < 0) {
		int e = -errno;
		close(r->epfd);
		free(r);
		return e;
	}
	/* The eventfd's token is NULL: registrations are never NULL. */
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, &ev) < 0) {
		int e = -errno;
		close(r->evfd);
		close(r->epfd);
		free(r);
		return e;
	}
	struct stat st;
	if (fstat(r->evfd, &st) == 0) {
		r->ev_dev = st.st_dev;
		r->ev_ino = st.st_ino;
	}
	pthread_mutex_init(&r->lock, NULL);
	*out = r;
	return 0;
}

static void free_sio(edo__scheduled_io *io)
{
	free(io);
}

static void release_pending(edo__reactor *r)
{
	pthread_mutex_lock(&r->lock);
	edo__scheduled_io *list = r->release;
	r->release = NULL;
	atomic_store_explicit(&r->has_release, false, memory_order_relaxed);
	pthread_mutex_unlock(&r->lock);
	while (list) {
		edo__scheduled_io *next = list->release_next;
		free_sio(list);
		list = next;
	}
}

void edo__reactor_free(edo__reactor *r)
{
	if (!r)
		return;
	release_pending(r);
	/* Registrations still alive belong to edo_async_fds not yet freed;
	 * they were marked shut down, and edo_async_fd_free() releases them. */
	close(r->evfd);
	close(r->epfd);
	/* No event can name an abandoned registration any more. */
	while (r->abandoned) {
		edo__scheduled_io *next = r->abandoned->release_next;
		free_sio(r->abandoned);
		r->abandoned = next;
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* The eventfd is registered edge-triggered and never read in a turn: every
 * write is a new edge, which is all a wake needs (mio's waker does the
 * same).  The counter only grows; in the unlikely case that it saturates,
 * a read resets it and the write is tried again. */
void edo__reactor_wake(edo__reactor *r)
{
	uint64_t one = 1, v;
	for (int i = 0; i < 2; i++) {
		if (write(r->evfd, &one, sizeof one) >= 0 || errno != EAGAIN)
			return;
		ssize_t n = read(r->evfd, &v, sizeof v);
		(void)n;
	}
}

/* A turn over many sockets misses the cache twice per event: on the
 * registration (its readiness word and wakers) and on the woken task's
 * header.  The loop asks for both ahead of time: the registration
 * PREFETCH_SIO events ahead, and, once that has arrived, the task its reader
 * (else writer) waker points at PREFETCH_WAKER events ahead.  Reading the
 * waker without the registration's lock races with a task setting it; that
 * is harmless here (a stale or NULL pointer only makes a useless prefetch,
 * which never faults), so the read is kept out of ThreadSanitizer's view.
 * The registration itself is valid: events name only registrations that
 * are live or on the release list, which is emptied before epoll_wait. */
#define PREFETCH_SIO 8
#define PREFETCH_WAKER 4

EDO__NO_TSAN static void prefetch_waker_target(const edo__scheduled_io *io)
{
	if (!io)
		return;
	const void *data = io->reader.vt ? io->reader.data : io->writer.data;
	__builtin_prefetch(data, 1);
}

void edo__reactor_turn(edo__reactor *r, int64_t timeout_ns)
{
	/* A non-blocking turn with no fd registered would only drain the
	 * eventfd: skip the syscall (a runtime used for timers and channels
	 * pays nothing for the reactor).  Released registrations are freed
	 * all the same: a busy current-thread runtime that opens and closes
	 * sockets may never make a real turn. */
	if (timeout_ns == 0 &&
	    atomic_load_explicit(&r->n_registered, memory_order_relaxed) ==
		    atomic_load_explicit(&r->n_deregistered, memory_order_relaxed)) {
		if (atomic_load_explicit(&r->has_release, memory_order_relaxed))
			release_pending(r);
		return;
	}
	release_pending(r);
	int timeout_ms;
	if (timeout_ns < 0)
		timeout_ms = -1;
	else if (timeout_ns == 0)
		timeout_ms = 0;
	else
		timeout_ms = (int)((timeout_ns + 999999) / 1000000 > 0x7fffffff ?
					   0x7fffffff :
					   (timeout_ns + 999999) / 1000000);
	int n = epoll_wait(r->epfd, r->events, MAX_EVENTS, timeout_ms);
	uint64_t events = 0;
	for (int i = 0; i < n; i++) {
		edo__scheduled_io *io = r->events[i].data.ptr;
		if (i + PREFETCH_SIO < n)
			__builtin_prefetch(r->events[i + PREFETCH_SIO].data.ptr, 1);
		if (i + PREFETCH_WAKER < n)
			prefetch_waker_target(r->events[i + PREFETCH_WAKER].data.ptr);
		if (!io)
			continue; /* a wake (edo__reactor_wake): nothing to read */
		uint32_t ready = to_ready(r->events[i].events);
		set_readiness(io, ready);
		wake(io, ready, false);
		events++;
	}
	if (events)
		count(&r->n_events, events);
}

void edo__reactor_shutdown(edo__reactor *r)
{
	pthread_mutex_lock(&r->lock);
	r->shutdown = true;
	pthread_mutex_unlock(&r->lock);
	/* Mark one registration at a time under the lock, wake it outside.  A
	 * registration deregistered meanwhile stays allocated until the next
	 * reactor turn, and no turn runs once the runtime is shutting down. */
	for (;;) {
		pthread_mutex_lock(&r->lock);
		edo__scheduled_io *io = r->all;
		bool found = false;
		for (; io; io = io->all_next) {
			uint64_t w = atomic_load(&io->readiness);
			if (!(w & EDO__IO_SHUTDOWN)) {
				atomic_fetch_or(&io->readiness, EDO__IO_SHUTDOWN);
				found = true;
				break;
			}
		}
		if (!found) {
			pthread_mutex_unlock(&r->lock);
			return;
		}
		pthread_mutex_unlock(&r->lock);
		wake(io, 0, true);
	}
}

int edo__reactor_register(edo__reactor *r, int fd, uint32_t interest, edo__scheduled_io **out)
{
	edo__scheduled_io *io = calloc(1, sizeof *io);
	if (!io)
		return -ENOMEM;
	atomic_init(&io->readiness, 0);
	io->fd = fd;
	io->interest = interest;
	io->reactor = r; /* calloc: io->lock is unlocked */
	uint32_t ev = EPOLLET;
	if (interest & EDO_INTEREST_READABLE)
		ev |= EPOLLIN | EPOLLRDHUP;
	if (interest & EDO_INTEREST_WRITABLE)
		ev |= EPOLLOUT;
	if (interest & EDO_INTEREST_PRIORITY)
		ev |= EPOLLPRI;
	pthread_mutex_lock(&r->lock);
	if (r->shutdown) {
		pthread_mutex_unlock(&r->lock);
		free_sio(io);
		return EDO_ESHUTDOWN;
	}
	struct epoll_event e = {.events = ev, .data.ptr = io};
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		int err = -errno;
		pthread_mutex_unlock(&r->lock);
		free_sio(io);
		return err;
	}
	io->all_next = r->all;
	if (r->all)
		r->all->all_prev = io;
	r->all = io;
	count(&r->n_registered, 1);
	pthread_mutex_unlock(&r->lock);
	*out = io;
	return 0;
}

/* Take @io out of the registration set.  Under r->lock. */
static void unlink_sio(edo__reactor *r, edo__scheduled_io *io)
{
	if (io->all_prev)
		io->all_prev->all_next = io->all_next;
	else
		r->all = io->all_next;
	if (io->all_next)
		io->all_next->all_prev = io->all_prev;
	count(&r->n_deregistered, 1);
}

void edo__reactor_deregister(edo__reactor *r, edo__scheduled_io *io)
{
	/* Wake the waiters first: once @io is on the release list, a turn on
	 * another thread may free it at any moment. */
	atomic_fetch_or(&io->readiness, EDO__IO_SHUTDOWN);
	wake(io, 0, true);
	pthread_mutex_lock(&r->lock);
	(void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	unlink_sio(r, io);
	io->release_next = r->release;
	r->release = io;
	atomic_store_explicit(&r->has_release, true, memory_order_relaxed);
	pthread_mutex_unlock(&r->lock);
}

void edo__sio_close(edo__scheduled_io *io)
{
	atomic_fetch_or(&io->readiness, EDO__IO_SHUTDOWN);
	wake(io, 0, true);
}

int edo__file_id_get(edo__reactor *r, int fd, edo__file_id *id)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* Anonymous inodes have no file type; the reactor's own eventfd has
	 * the one they share. */
	*id = (edo__file_id){
		.dev = st.st_dev,
		.ino = st.st_ino,
		.shared = (st.st_mode & S_IFMT) == 0 ||
			  (st.st_dev == r->ev_dev && st.st_ino == r->ev_ino),
	};
	return 0;
}

/* Whether io->fd still names the file of @id.  Under r->lock, so that no
 * registration comes or goes meanwhile. */
static bool same_file(edo__reactor *r, edo__scheduled_io *io, const edo__file_id *id)
{
	struct stat st;
	if (fstat(io->fd, &st) < 0 || st.st_dev != id->dev || st.st_ino != id->ino)
		return false;
	if (!id->shared)
		return true;
	/* Another live registration with the same number: ours was closed
	 * and the number reused (epoll refuses the same file twice). */
	for (edo__scheduled_io *o = r->all; o; o = o->all_next)
		if (o != io && o->fd == io->fd)
			return false;
	return true;
}

void edo__reactor_deregister_fd(edo__reactor *r, edo__scheduled_io *io, const edo__file_id *id)
{
	atomic_fetch_or(&io->readiness, EDO__IO_SHUTDOWN);
	wake(io, 0, true);
	pthread_mutex_lock(&r->lock);
	bool deleted = same_file(r, io, id) && epoll_ctl(r->epfd, EPOLL_CTL_DEL, io->fd, NULL) == 0;
	unlink_sio(r, io);
	if (deleted) {
		io->release_next = r->release;
		r->release = io;
		atomic_store_explicit(&r->has_release, true, memory_order_relaxed);
	} else {
		/* Shut down: a stale event only sets readiness nobody reads. */
		io->release_next = r->abandoned;
		r->abandoned = io;
	}
	pthread_mutex_unlock(&r->lock);
}
