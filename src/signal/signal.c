/* Signals (edo/signal.h): one process-wide handler per signal, a self-pipe,
 * a pipe reader per runtime, and per-signal listener lists.
 *
 *   signal ──▶ on_signal (any thread)
 *                counts[sig]++            lock-free, async-signal-safe
 *                write(pipe, sig)         wakes every reader's epoll
 *                the previous handler, if any
 *
 *   reader (one per runtime with listeners: a dup of the pipe's read end,
 *   registered with that runtime's reactor; its waker is an edo__cb_waker)
 *     reactor turn ──▶ reader_fire: drain the pipe, dispatch(), re-arm
 *
 *   dispatch (under g.lock): for each installed signal whose counter moved
 *   since the last dispatch, take the waker of every listener that has not
 *   seen the new count; wake them after unlocking.
 *
 * A listener remembers the count it has seen; a receive completes when the
 * counter differs.  The counter is read before and after the listener's
 * waker is stored (under g.lock), and the dispatcher reads it under g.lock
 * after the byte that follows the increment: whichever of the two comes
 * second sees the delivery, so no wake-up is lost.  Dispatch wakes listeners
 * of every runtime, whichever runtime's reader ran it: a byte is read by
 * one reader only, but every runtime's listeners must hear of it.
 *
 * A reader lives while its runtime has listeners: the last listener's drop
 * deregisters it (the deregistration wakes it one last time; it sees the
 * shutdown bit and does not re-arm) and the memory goes with its last
 * reference.  When the runtime shuts down, the reactor wakes the reader with
 * the shutdown bit: it marks itself shut down and wakes its listeners,
 * whose receives then report EDO_ESHUTDOWN.
 */
#define _GNU_SOURCE
#include "edo/signal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "edo/error.h"
#include "edo/task.h"
#include "runtime/context.h"
#include "runtime/io/reactor.h"
#include "runtime/sched.h"
#include "signal/cb_waker.h"
#include "sync/internal.h"

/* Linux numbers signals 1.._NSIG-1 (64 with the real-time ones). */
#define NSIGS _NSIG
#define WAKE_BATCH 32

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the handler needs lock-free 64-bit atomics");

const edo_waker_vtable edo__cb_waker_vt = {edo__cb_waker_clone, edo__cb_waker_wake,
					   edo__cb_waker_wake_by_ref, edo__cb_waker_drop};

typedef struct reader {
	edo__cb_waker w; /* first: the reactor's waker for the pipe */
	edo__sched *sched;
	edo__scheduled_io *io;
	int fd; /* a dup of the pipe's read end */
	atomic_bool shutdown;
	size_t listeners;    /* under g.lock */
	struct reader *next; /* g.readers, under g.lock */
} reader;

struct edo_signal {
	int signum;
	_Atomic uint64_t seen;   /* the count last reported (written by the receiver) */
	edo_waker waker;         /* under g.lock */
	edo_signal *prev, *next; /* the signal's listener list, under g.lock */
	reader *rd;
};

/* What the handler touches: written before the handler can run. */
static _Atomic uint64_t counts[NSIGS];
static atomic_int pipe_wfd = -1;
static struct sigaction old_action[NSIGS];

static struct {
	pthread_mutex_t lock;
	int rfd;            /* the pipe's read end; -1 until first use */
	uint64_t installed; /* bit n-1: handler for signal n */
	reader *readers;
	edo_signal *listeners[NSIGS];
	uint64_t dispatched[NSIGS]; /* count at the last full dispatch */
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .rfd = -1};

/* ---- the handler ------------------------------------------------------------------- */

static void on_signal(int sig, siginfo_t *info, void *uctx)
{
	int saved = errno;
	if (sig > 0 && sig < NSIGS) {
		atomic_fetch_add(&counts[sig], 1);
		int fd = atomic_load_explicit(&pipe_wfd, memory_order_acquire);
		if (fd >= 0) {
			unsigned char b = (unsigned char)sig;
			ssize_t r = write(fd, &b, 1);
			(void)r; /* EAGAIN: the pipe is full, readers are due anyway */
		}
		const struct sigaction *old = &old_action[sig];
		if (old->sa_flags & SA_SIGINFO) {
			if (old->sa_sigaction)
				old->sa_sigaction(sig, info, uctx);
		} else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
			old->sa_handler(sig);
		}
	}
	errno = saved;
}

static bool signum_allowed(int sig)
{
	if (sig <= 0 || sig >= NSIGS)
		return false;
	switch (sig) {
	case SIGKILL:
	case SIGSTOP:
	case SIGSEGV:
	case SIGILL:
	case SIGFPE:
		return false;
	default:
		/* glibc keeps the first real-time signals for itself. */
		return sig < 32 || sig >= SIGRTMIN;
	}
}

/* Under g.lock: the self-pipe, once per process. */
static int ensure_pipe_locked(void)
{
	if (g.rfd >= 0)
		return 0;
	int p[2];
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	g.rfd = p[0];
	atomic_store(&pipe_wfd, p[1]);
	return 0;
}

/* Under g.lock: our handler for @sig, once per process (never removed). */
static int install_locked(int sig)
{
	uint64_t bit = (uint64_t)1 << (sig - 1);
	if (g.installed & bit)
		return 0;
	struct sigaction sa = {0};
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	/* The previous action is saved first: the handler may run as soon as
	 * sigaction returns. */
	if (sigaction(sig, NULL, &old_action[sig]) < 0)
		return -errno;
	if (old_action[sig].sa_sigaction == on_signal)
		old_action[sig] = (struct sigaction){0}; /* a fork of ourselves */
	if (sigaction(sig, &sa, NULL) < 0)
		return -errno;
	g.dispatched[sig] = atomic_load(&counts[sig]);
	g.installed |= bit;
	return 0;
}

/* ---- dispatch ------------------------------------------------------------------------ */

/* Wake every listener whose signal was delivered since it last looked (any
 * runtime), or, with @only set, every listener of that shut-down reader. */
static void dispatch(reader *only)
{
	for (;;) {
		edo_waker batch[WAKE_BATCH];
		size_t n = 0;
		bool more = false;
		pthread_mutex_lock(&g.lock);
		for (uint64_t bits = g.installed; bits && !more; bits &= bits - 1) {
			int sig = __builtin_ctzll(bits) + 1;
			uint64_t c = atomic_load(&counts[sig]);
			if (!only && c == g.dispatched[sig])
				continue;
			for (edo_signal *l = g.listeners[sig]; l; l = l->next) {
				bool due = only ? l->rd == only :
						  atomic_load_explicit(&l->seen,
								       memory_order_relaxed) != c;
				if (!due || !l->waker.vt)
					continue;
				if (n == WAKE_BATCH) {
					more = true;
					break;
				}
				batch[n++] = edo_waker_take(&l->waker);
			}
			if (!more && !only)
				g.dispatched[sig] = c;
		}
		pthread_mutex_unlock(&g.lock);
		for (size_t i = 0; i < n; i++)
			edo_waker_wake(batch[i]);
		if (!more)
			return;
	}
}

/* ---- readers ------------------------------------------------------------------------- */

static reader *reader_of(edo__cb_waker *w)
{
	return (reader *)w;
}

/* Drain the pipe and dispatch until the pipe is empty with the waker armed,
 * or the runtime is gone. */
static void reader_fire(edo__cb_waker *w)
{
	reader *rd = reader_of(w);
	edo_waker self = edo__cb_waker_borrow(w);
	edo_cx cx = {&self};
	for (;;) {
		edo__ready_event ev;
		if (edo__sio_poll_ready(rd->io, &cx, EDO_INTEREST_READABLE, &ev) == EDO_PENDING)
			return;
		if (ev.shutdown) {
			atomic_store(&rd->shutdown, true);
			dispatch(rd);
			return;
		}
		unsigned char buf[128];
		ssize_t r;
		do
			r = read(rd->fd, buf, sizeof buf);
		while (r > 0 || (r < 0 && errno == EINTR));
		edo__sio_clear_readiness(rd->io, ev);
		dispatch(NULL);
	}
}

static void reader_release(edo__cb_waker *w)
{
	reader *rd = reader_of(w);
	close(rd->fd);
	edo__sched_unref(rd->sched);
	free(rd);
}

/* Under g.lock: the reader of @s, made (unarmed) if it has none; *fresh
 * tells the caller to arm it after unlocking. */
static int reader_get_locked(edo__sched *s, reader **out, bool *fresh)
{
	for (reader *rd = g.readers; rd; rd = rd->next) {
		if (rd->sched == s) {
			*out = rd;
			*fresh = false;
			return 0;
		}
	}
	reader *rd = calloc(1, sizeof *rd);
	if (!rd)
		return -ENOMEM;
	rd->fd = fcntl(g.rfd, F_DUPFD_CLOEXEC, 0);
	if (rd->fd < 0) {
		int e = -errno;
		free(rd);
		return e;
	}
	int rc = edo__reactor_register(s->driver.io, rd->fd, EDO_INTEREST_READABLE, &rd->io);
	if (rc < 0) {
		close(rd->fd);
		free(rd);
		return rc;
	}
	edo__cb_waker_init(&rd->w, reader_fire, reader_release);
	edo__sched_ref(s);
	rd->sched = s;
	atomic_init(&rd->shutdown, false);
	rd->next = g.readers;
	g.readers = rd;
	*out = rd;
	*fresh = true;
	return 0;
}

/* Under g.lock: one listener fewer; true if @rd must now be retired. */
static bool reader_put_locked(reader *rd)
{
	if (--rd->listeners)
		return false;
	for (reader **pp = &g.readers; *pp; pp = &(*pp)->next) {
		if (*pp == rd) {
			*pp = rd->next;
			break;
		}
	}
	return true;
}

/* Outside g.lock: take @rd off its reactor and drop the registry's reference. */
static void reader_retire(reader *rd)
{
	edo__reactor_deregister(rd->sched->driver.io, rd->io);
	edo__cb_waker_unref(&rd->w);
}

/* ---- listeners --------------------------------------------------------------------------- */

int edo_signal_new_on(edo_handle *h, int signum, edo_signal **out)
{
	if (!out || !signum_allowed(signum))
		return -EINVAL;
	edo__sched *s = h ? h : edo__ctx.sched;
	if (!s)
		return EDO_ENORUNTIME;
	if (!s->has_driver || !s->driver.io)
		return -ENOTSUP;
	if (atomic_load_explicit(&s->shutdown, memory_order_relaxed))
		return EDO_ESHUTDOWN;
	edo_signal *l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	reader *rd = NULL;
	bool fresh = false;
	pthread_mutex_lock(&g.lock);
	/* The handler goes in last, once nothing else can fail: a failed call
	 * changes nothing, and the signal keeps its action (its default one
	 * terminates the process; a handler, once in, stays in for good). */
	bool new_pipe = g.rfd < 0;
	int rc = ensure_pipe_locked();
	if (rc == 0)
		rc = reader_get_locked(s, &rd, &fresh);
	if (rc == 0)
		rc = install_locked(signum);
	if (rc < 0 || !rd) {
		if (rc == 0)
			rc = -ENOMEM; /* not reached: a reader comes with 0 */
		if (fresh && rd) {
			/* Unmade: never armed, no listener; reader_retire below. */
			g.readers = rd->next;
		} else {
			rd = NULL;
		}
		if (new_pipe && !g.readers && !g.installed) {
			/* Made by this call and used by no one: no handler can write. */
			int wfd = atomic_exchange(&pipe_wfd, -1);
			close(wfd);
			close(g.rfd);
			g.rfd = -1;
		}
		pthread_mutex_unlock(&g.lock);
		if (rd)
			reader_retire(rd);
		free(l);
		return rc;
	}
	rd->listeners++;
	l->signum = signum;
	l->rd = rd;
	atomic_init(&l->seen, atomic_load(&counts[signum]));
	l->next = g.listeners[signum];
	if (l->next)
		l->next->prev = l;
	g.listeners[signum] = l;
	pthread_mutex_unlock(&g.lock);
	if (fresh) {
		/* Arm it: from now on the reactor calls reader_fire. */
		edo__cb_waker_ref(&rd->w);
		edo__cb_waker_wake(&rd->w);
	}
	*out = l;
	return 0;
}

int edo_signal_new(int signum, edo_signal **out)
{
	return edo_signal_new_on(NULL, signum, out);
}

int edo_signal_signum(const edo_signal *s)
{
	return s ? s->signum : -EINVAL;
}

void edo_signal_drop(edo_signal *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&g.lock);
	if (s->prev)
		s->prev->next = s->next;
	else
		g.listeners[s->signum] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	edo_waker w = edo_waker_take(&s->waker);
	bool retire = reader_put_locked(s->rd);
	pthread_mutex_unlock(&g.lock);
	edo_waker_drop(w);
	if (retire)
		reader_retire(s->rd);
	free(s);
}

/* The deliveries not yet reported, marking them reported; 0 if none. */
static int take_count(edo_signal *s)
{
	uint64_t c = atomic_load(&counts[s->signum]);
	uint64_t seen = atomic_load_explicit(&s->seen, memory_order_relaxed);
	if (c == seen)
		return 0;
	uint64_t d = c - seen;
	atomic_store_explicit(&s->seen, c, memory_order_relaxed);
	return d > INT_MAX ? INT_MAX : (int)d;
}

int edo_signal_try_recv(edo_signal *s)
{
	return s ? take_count(s) : -EINVAL;
}

edo_poll edo_signal_poll_recv(edo_signal *s, edo_cx *cx, int *rc)
{
	if (!s) {
		*rc = -EINVAL;
		return EDO_READY;
	}
	if (edo_coop_poll_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	for (int pass = 0; pass < 2; pass++) {
		int d = take_count(s);
		if (d > 0) {
			*rc = d;
			return EDO_READY;
		}
		if (atomic_load(&s->rd->shutdown)) {
			*rc = EDO_ESHUTDOWN;
			return EDO_READY;
		}
		if (pass == 0) {
			pthread_mutex_lock(&g.lock);
			edo_waker old = edo__waker_swap(&s->waker, cx->waker);
			pthread_mutex_unlock(&g.lock);
			edo_waker_drop(old); /* after the lock: a drop may free a task */
		}
	}
	edo_coop_refund();
	return EDO_PENDING;
}

/* ---- futures ------------------------------------------------------------------------------- */

static edo_poll recv_poll(edo_future *base, edo_cx *cx)
{
	edo_signal_recv_fut *f = (edo_signal_recv_fut *)base;
	if (!f->sig_) {
		f->rc = -EINVAL;
		return EDO_READY;
	}
	return edo_signal_poll_recv(f->sig_, cx, &f->rc);
}

static const edo_future_vtable recv_vt = {.poll = recv_poll, .drop = NULL};

edo_future *edo_signal_recv(edo_signal_recv_fut *f, edo_signal *s)
{
	*f = (edo_signal_recv_fut){.base = {&recv_vt}, .sig_ = s};
	return &f->base;
}

static edo_poll ctrl_c_poll(edo_future *base, edo_cx *cx)
{
	edo_ctrl_c_fut *f = (edo_ctrl_c_fut *)base;
	if (!f->sig_) {
		int rc = edo_signal_new(SIGINT, &f->sig_);
		if (rc < 0) {
			f->rc = rc;
			return EDO_READY;
		}
	}
	int rc;
	if (edo_signal_poll_recv(f->sig_, cx, &rc) == EDO_PENDING)
		return EDO_PENDING;
	f->rc = rc < 0 ? rc : 0;
	edo_signal_drop(f->sig_);
	f->sig_ = NULL;
	return EDO_READY;
}

static void ctrl_c_drop(edo_future *base)
{
	edo_ctrl_c_fut *f = (edo_ctrl_c_fut *)base;
	edo_signal_drop(f->sig_);
	f->sig_ = NULL;
}

static const edo_future_vtable ctrl_c_vt = {.poll = ctrl_c_poll, .drop = ctrl_c_drop};

edo_future *edo_ctrl_c(edo_ctrl_c_fut *f)
{
	*f = (edo_ctrl_c_fut){.base = {&ctrl_c_vt}};
	return &f->base;
}
