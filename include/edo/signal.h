/* Edo — Unix signals as events a task awaits, and Ctrl-C.
 *
 *     edo_signal *sig;
 *     int rc = edo_signal_new(SIGHUP, &sig);            // in a task or edo_block_on
 *     ...                                              // in a coroutine:
 *     for (;;) {
 *         EDO_AWAIT_POLL(edo_signal_poll_recv(self->sig, cx, &self->rc));
 *         if (self->rc < 0) break;                     // the runtime shut down
 *         reload_config();                             // rc >= 1 deliveries
 *     }
 *     edo_signal_drop(self->sig);
 *
 *     EDO_AWAIT(edo_ctrl_c(&self->cc));                // the next SIGINT
 *
 * A listener counts deliveries from the moment it is made: a signal that
 * arrives while no task is waiting is not lost, the next receive completes
 * at once.  Several deliveries before a receive are reported by one receive
 * (the count says how many), as in Tokio and as the kernel itself coalesces
 * pending signals.  Any number of listeners may exist for one signal, in any
 * number of runtimes: every listener sees every delivery.
 *
 * How it works (Tokio's design).  The first listener for a signal installs
 * one process-wide handler (sigaction, SA_RESTART | SA_SIGINFO).  The handler
 * does only async-signal-safe things: it increments that signal's delivery
 * counter (a lock-free atomic) and writes one byte to a non-blocking
 * self-pipe, then calls the handler that was installed before, if it was a
 * function.  Each runtime that has listeners registers a duplicate of the
 * pipe's read end with its reactor; the reactor's wake-up drains the pipe and
 * wakes every listener (in every runtime) whose signal's counter moved past
 * what it has seen.  The counters, not the bytes, carry the deliveries, so a
 * full pipe loses nothing.
 *
 * Why not signalfd: a signalfd only receives a signal that is blocked in
 * every thread of the process, and Edo does not own every thread (the
 * application's, a library's, the blocking pool's, each made with the mask
 * of its creator).  One unblocked thread and the signal goes to the handler
 * (or kills the process), never to the signalfd.  The self-pipe works with
 * whatever the threads' masks are.
 *
 * Caveats, as in Tokio: once a handler is installed for a signal it stays
 * installed for the life of the process, so the signal's default action
 * (terminating, for SIGINT or SIGTERM) no longer happens even after every
 * listener is gone.  SIGKILL and SIGSTOP cannot be caught; SIGSEGV, SIGILL
 * and SIGFPE are refused because resuming after them is undefined.
 *
 * Thread-safety: a listener is received from by one task at a time;
 * edo_signal_new and edo_signal_drop may be called from any thread.
 */
#ifndef EDO_SIGNAL_H
#define EDO_SIGNAL_H

#include "edo/future.h"
#include "edo/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edo_signal edo_signal;

/**
 * edo_signal_new() - listen for @signum (SIGHUP, SIGTERM, SIGUSR1, SIGRTMIN+n,
 * ...) on the current runtime.  Deliveries are counted from now on.
 * Returns 0, -EINVAL for SIGKILL, SIGSTOP, SIGSEGV, SIGILL, SIGFPE, a
 * number out of range or one reserved by the C library, EDO_ENORUNTIME
 * outside a runtime, EDO_ESHUTDOWN, -ENOMEM, or the -errno of a failed
 * system call (-EMFILE out of descriptors).  A failed call changes nothing:
 * the handler is installed only by a call that succeeds, so the signal
 * keeps its action (the default one, say) after any error.
 */
int edo_signal_new(int signum, edo_signal **out);

/** edo_signal_new_on() - edo_signal_new() on the runtime of @h (NULL: the current one). */
int edo_signal_new_on(edo_handle *h, int signum, edo_signal **out);

/**
 * edo_signal_poll_recv() - wait for the next delivery.  READY with *@rc >= 1,
 * the number of deliveries since the last receive (or since the listener
 * was made), or *@rc = EDO_ESHUTDOWN once the runtime shut down (after any
 * deliveries still unreported).  PENDING: the task is woken on delivery.
 * Cancel-safe: a dropped wait loses nothing.  One task at a time.  A NULL
 * @s gives READY with *@rc = -EINVAL.
 */
edo_poll edo_signal_poll_recv(edo_signal *s, edo_cx *cx, int *rc);

/**
 * edo_signal_try_recv() - the deliveries not yet received (>= 1), marking
 * them received, or 0 if there are none (-EINVAL for NULL).  Never waits.
 */
int edo_signal_try_recv(edo_signal *s);

/** edo_signal_signum() - the signal @s listens for. */
int edo_signal_signum(const edo_signal *s);

/** edo_signal_drop() - stop listening and free @s.  NULL is a no-op.  Thread-safe. */
void edo_signal_drop(edo_signal *s);

/**
 * edo_signal_recv() - edo_signal_poll_recv() as a future, for combinators.
 * Output: rc as *@rc above.  Cancel-safe.  @s must outlive it.
 */
typedef struct edo_signal_recv_fut {
	edo_future base;
	int rc;
	/* private */
	edo_signal *sig_;
} edo_signal_recv_fut;
edo_future *edo_signal_recv(edo_signal_recv_fut *f, edo_signal *s);

/**
 * edo_ctrl_c() - a future that completes at the next SIGINT (Ctrl-C in a
 * terminal) delivered after its first poll.  Output: rc = 0, or an error of
 * edo_signal_new() or EDO_ESHUTDOWN.  Dropping it stops listening.  Like
 * every listener, the first poll takes over SIGINT for the rest of the
 * process's life: a later Ctrl-C with no one listening does nothing.
 */
typedef struct edo_ctrl_c_fut {
	edo_future base;
	int rc;
	/* private */
	edo_signal *sig_;
} edo_ctrl_c_fut;
edo_future *edo_ctrl_c(edo_ctrl_c_fut *f);

#ifdef __cplusplus
}
#endif
#endif /* EDO_SIGNAL_H */
