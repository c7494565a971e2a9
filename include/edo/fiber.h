/* Edo — stackful fibers: tasks that run on a stack of their own and await
 * any future from any call depth, in blocking style.
 *
 *     static void *serve(void *arg)
 *     {
 *         edo_async_fd *conn = arg;
 *         char buf[512];
 *         for (;;) {
 *             ssize_t n = edo_fiber_read(conn, buf, sizeof buf);   // suspends
 *             if (n <= 0)
 *                 break;                  // 0: EOF; -errno; -ECANCELED if aborted
 *             if (edo_fiber_write(conn, buf, (size_t)n) < 0)
 *                 break;
 *         }
 *         return NULL;
 *     }
 *
 *     edo_join *h;
 *     int rc = edo_fiber_spawn(serve, conn, NULL, &h);   // a normal join handle
 *
 * A fiber task is an ordinary task whose future switches into the fiber's
 * stack when polled.  When an awaited future returns PENDING the fiber
 * switches back and the poll returns PENDING; the future's wake queues the
 * task and the next poll switches in again.  So a fiber can await a
 * stackless coroutine (edo_fiber_await(&frame.edo_base)), a coroutine can
 * await a fiber's join handle (EDO_AWAIT_JOIN), and both mix freely with
 * hand-written futures.  The awaited future may live on the fiber's stack:
 * that stack never moves while the fiber is suspended.
 *
 * Costs.  A fiber await round trip through the scheduler costs two context
 * switches more than a stackless await, plus a return the CPU mispredicts:
 * about 18 ns more for edo_fiber_await() on a 2-vCPU AMD EPYC VM
 * (bench/bench_fiber.c, fiber_switch, CPU time), flat in the call depth,
 * where a stackless await grows with its nesting.  The blocking-style
 * wrappers (edo_fiber_read() and the like) mispredict one more return.  An idle fiber costs one page of stack plus its task cell
 * (about 4.3 KiB, fiber_idle_rss).  Prefer stackless coroutines
 * (edo/async.h) for library code and hot paths, fibers for porting
 * blocking-style code and deep call stacks.
 *
 * Pinning.  A fiber that has started runs only on the worker thread that
 * first resumed it: compilers keep `&errno`, `pthread_self()` and the
 * addresses of `__thread` variables in registers across the opaque switch
 * call, so a fiber resumed on another thread would read the first thread's
 * errno.  Fibers that have not started yet may be stolen by any worker.
 * A worker hosting started fibers is never handed to another thread by
 * edo_block_in_place() (the call then blocks the worker instead).  On the
 * current-thread runtime every fiber runs on the thread inside
 * edo_block_on(); if several threads take turns there, a suspended fiber
 * resumes on whichever thread is inside.
 *
 * Migration (opt-in, edo_fiber_opts.migrate).  A migrating fiber may be
 * resumed by any worker after every await, for better load balance.  Its
 * code must then follow these rules across every await:
 *   - read and write errno only through EDO_ERRNO (never `errno` itself:
 *     the compiler may reuse the previous thread's address);
 *   - keep no address of a `__thread` variable and no value of
 *     pthread_self()/gettid(); use edo_worker_id() instead;
 *   - hold no thread-affine lock (a pthread mutex locked on one thread must
 *     not be unlocked on another) and no per-thread state (signal masks,
 *     pthread_getspecific values, per-thread error queues);
 *   - do not build the fiber's code with link-time optimisation together
 *     with code that touches errno (LTO inlines errno accesses into the
 *     suspended function, where the rules above cannot reach).
 * Edo's own code follows these rules; third-party libraries called from a
 * migrating fiber must not span an await with thread-affine state.
 *
 * Cancellation (libdill's rules).  Aborting a fiber task (edo_join_abort)
 * resumes the fiber: the await it is suspended in drops its future and
 * returns -ECANCELED, and every later await fails at once with -ECANCELED,
 * so the fiber's code returns through its normal error paths and its
 * cleanup runs.  Cleanup that must itself wait (a graceful close) raises a
 * shield with edo_fiber_shield(true): while it is up, awaits wait normally.
 * The join handle of a fiber that was cancelled (resumed cancelled, or
 * aborted before it started, which never runs it) reports -ECANCELED.
 * A suspended fiber's stack is never freed without resuming it: when the
 * runtime shuts down, each suspended fiber is resumed cancelled on its
 * worker, and then even a shielded await only polls its future once (the
 * runtime cannot wait any longer) and fails with -ECANCELED if that poll
 * is not ready.
 *
 * errno.  Every suspension saves the fiber's errno and restores it when
 * the fiber resumes, so errno after an await is what it was before (other
 * tasks run on the same thread meanwhile).
 *
 * Stack overflow.  Stacks have guard pages (MADV_GUARD_INSTALL where the
 * kernel has it, else PROT_NONE pages while vm.max_map_count allows, else
 * a canary checked on every switch).  Running into a guard prints
 * "edo: fiber stack overflow in task <id> (<name>) ..." and kills the
 * process with SIGSEGV; a broken canary prints the same and aborts.  Edo
 * installs a SIGSEGV handler (on an alternate signal stack per worker
 * thread) for this, chaining to the previous handler for every other fault.
 *
 * Thread-safety: edo_fiber_spawn*() and edo_join_fiber_result() may be
 * called from any thread; every other function here acts on the calling
 * fiber and returns -EPERM (or false/NULL) outside a fiber.
 */
#ifndef EDO_FIBER_H
#define EDO_FIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "edo/future.h"
#include "edo/io.h"
#include "edo/net.h"
#include "edo/runtime.h"
#include "edo/stream.h"
#include "edo/task.h"
#include "edo/time.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The body of a fiber; its return value is read with edo_join_fiber_result(). */
typedef void *(*edo_fiber_fn)(void *arg);

/** Optional settings of one fiber; zero fields are defaults. */
typedef struct edo_fiber_opts {
	/** Usable stack bytes: 0 = EDO_FIBER_STACK_DEFAULT; rounded up to a
	 *  power of two, at least 16 KiB, at most 256 MiB.  Reserved address
	 *  space: only the pages the fiber touches use memory. */
	size_t stack_size;
	/** Task name for dumps, hooks and overflow reports (a string literal). */
	const char *name;
	/** Opt in to migration between workers after start (see the rules in
	 *  the comment at the top of this header).  Default: pinned. */
	bool migrate;
} edo_fiber_opts;

/** The default stack size (sanitizer builds of Edo use 4x). */
#define EDO_FIBER_STACK_DEFAULT ((size_t)64 << 10)

/**
 * edo_fiber_spawn() - spawn @fn(@arg) as a fiber task on the current runtime.
 * @opts: NULL for the defaults.
 * @out:  receives a normal join handle (await it with edo_join_poll(),
 *        EDO_AWAIT_JOIN or edo_fiber_join()); NULL detaches the fiber.
 *
 * The stack is taken now; the fiber starts when the task is first polled.
 * Returns 0, -EINVAL (NULL @fn, stack size above 256 MiB), -ENOMEM (no stack
 * or task memory), EDO_ENORUNTIME outside a runtime, or EDO_ESHUTDOWN.
 * Thread-safe.
 */
int edo_fiber_spawn(edo_fiber_fn fn, void *arg, const edo_fiber_opts *opts, edo_join **out);

/** edo_fiber_spawn_on() - edo_fiber_spawn() onto the runtime of @h (NULL:
 *  the current one), from any thread. */
int edo_fiber_spawn_on(edo_handle *h, edo_fiber_fn fn, void *arg, const edo_fiber_opts *opts,
		       edo_join **out);

/* Both are also macros that record where they are called (file and line:
 * "spawned at" in task dumps, edo_task_info.spawn_file), as EDO_SPAWN
 * does.  `(edo_fiber_spawn)(...)` and the functions' addresses reach the
 * functions themselves, which record no site. */
#define edo_fiber_spawn(fn, arg, opts, out)                                                        \
	edo__fiber_spawn_at(NULL, (fn), (arg), (opts), (out), __FILE__, __LINE__)
#define edo_fiber_spawn_on(h, fn, arg, opts, out)                                                  \
	edo__fiber_spawn_at((h), (fn), (arg), (opts), (out), __FILE__, __LINE__)

/* Private: edo_fiber_spawn_on() with the spawn site (@file NULL: none). */
int edo__fiber_spawn_at(edo_handle *h, edo_fiber_fn fn, void *arg, const edo_fiber_opts *opts,
			edo_join **out, const char *file, int line);

/**
 * edo_join_fiber_result() - the value @fn returned, once the join handle
 * reported 0; NULL for a task that is not a fiber or did not finish.
 */
void *edo_join_fiber_result(edo_join *h);

/**
 * edo_fiber_block_on() - run @fn(@arg) as a fiber on @rt and wait for it to
 * return, from outside the runtime: edo_block_on() for a fiber.  The usual
 * main() of a program written in fibers:
 *
 *     edo_runtime *rt;
 *     edo_runtime_new_current_thread(&rt);
 *     int rc = edo_fiber_block_on(rt, server, &args, NULL, NULL);
 *     edo_runtime_free(rt);
 *
 * The fiber is a task spawned on @rt (named by @opts, "fiber" by default;
 * its spawn site is the call's, as edo_fiber_spawn()'s); the calling thread
 * drives the runtime meanwhile, as in edo_block_on(): on the
 * current-thread runtime it runs the fiber and every other task.
 * @opts:   NULL for the defaults.
 * @result: receives the value @fn returned (may be NULL).
 *
 * Returns 0 once @fn has returned; -EINVAL (NULL @rt or @fn, stack size
 * too large), -ENOMEM, -EBUSY if the calling thread is inside a runtime (no
 * nesting: from a task, spawn and join instead) or another thread is inside
 * this current-thread runtime, or EDO_ESHUTDOWN (@rt was shut down); with
 * these errors @fn did not run.  The fiber cannot be cancelled under this
 * call: nothing else holds its join handle, and @rt refuses to shut down
 * (-EBUSY) while a thread blocks on it.  (Should its join report
 * -ECANCELED all the same, that is returned.)
 */
int edo_fiber_block_on(edo_runtime *rt, edo_fiber_fn fn, void *arg, const edo_fiber_opts *opts,
		       void **result);

/* Also a macro recording its call site, as edo_fiber_spawn(). */
#define edo_fiber_block_on(rt, fn, arg, opts, result)                                              \
	edo__fiber_block_on_at((rt), (fn), (arg), (opts), (result), __FILE__, __LINE__)

/* Private: edo_fiber_block_on() with the spawn site (@file NULL: none). */
int edo__fiber_block_on_at(edo_runtime *rt, edo_fiber_fn fn, void *arg, const edo_fiber_opts *opts,
			   void **result, const char *file, int line);

/* ---- awaiting, from inside a fiber ----------------------------------------- */

/**
 * edo_fiber_await() - suspend the calling fiber until @fut is READY.
 * @fut: any future (a coroutine frame, an edo_readiness, a hand-written
 *       future); it may live on the fiber's stack.  It is polled in place,
 *       and not dropped when it completes (its outputs are then valid).
 *       An empty slot (vt == NULL) completes at once.
 *
 * Works at any call depth.  Returns 0; -ECANCELED if the fiber's task was
 * aborted (then @fut has been dropped, and every later await fails too
 * unless a shield is up); -EPERM outside a fiber; -EINVAL for NULL.
 *
 * The first poll runs in the fiber; if it is PENDING the fiber parks, and
 * the later polls run in the task's poll, on the worker's stack (so
 * edo_in_fiber() is false inside them), which resumes the fiber only once
 * @fut is READY.
 */
int edo_fiber_await(edo_future *fut);

/**
 * EDO_FIBER_AWAIT_POLL(expr) - suspend until the poll expression @expr
 * returns EDO_READY; evaluates to 0, -ECANCELED or -EPERM as
 * edo_fiber_await().  @expr is evaluated again on every resume and may use
 * `cx`, the poll context of the current resume, which the macro declares:
 *
 *     ssize_t n;
 *     int rc = EDO_FIBER_AWAIT_POLL(edo_async_fd_poll_read(afd, cx, buf, len, &n));
 *
 * On cancellation a leaf that registered a waker keeps it until it is
 * replaced or the leaf's object is freed, as with EDO_AWAIT_POLL.
 */
#define EDO_FIBER_AWAIT_POLL(expr)                                                                 \
	__extension__({                                                                            \
		int edo__frc_;                                                                     \
		edo_cx *cx;                                                                        \
		while ((cx = edo__fiber_poll_begin(&edo__frc_)) != NULL && (expr) == EDO_PENDING)  \
			edo__fiber_poll_suspend_at(#expr, __FILE__, __LINE__);                     \
		edo__frc_;                                                                         \
	})

/** edo_fiber_yield() - let other tasks and the drivers run, then continue
 *  (as EDO_YIELD()).  Returns 0, -ECANCELED or -EPERM. */
int edo_fiber_yield(void);

/**
 * edo_fiber_join() - wait for the task of @h (any task: a fiber, a
 * coroutine, a blocking task) to finish.  Returns 0 if it completed,
 * -ECANCELED if it was cancelled or if this fiber was cancelled while
 * waiting (edo_fiber_is_cancelled() tells which), -EPERM outside a fiber,
 * -EINVAL for a NULL @h.  The handle stays the caller's (edo_join_detach() it).
 */
int edo_fiber_join(edo_join *h);

/**
 * edo_fiber_read() - read(2) from @a once it is readable.  Returns the
 * bytes read (0 at end of file), a negative errno (-EINVAL for a NULL @a),
 * EDO_ESHUTDOWN, or -ECANCELED.
 */
ssize_t edo_fiber_read(edo_async_fd *a, void *buf, size_t len);

/** edo_fiber_write() - write(2) to @a once it is writable; returns as
 *  edo_fiber_read() (a short write is possible, as with write(2)). */
ssize_t edo_fiber_write(edo_async_fd *a, const void *buf, size_t len);

/**
 * edo_fiber_wait_ready() - wait until @a has any of @interest's readiness
 * (an edo_readiness future).  Returns the EDO_READY_* bits (0 if the
 * runtime shut down or @a was freed), -ECANCELED, or -EINVAL (a NULL @a; an
 * @interest that is 0 or has bits other than EDO_INTEREST_*).
 */
int edo_fiber_wait_ready(edo_async_fd *a, uint32_t interest);

/**
 * edo_fiber_stream_read() - read up to @len bytes from the stream @s (TCP,
 * Unix, pipes, duplex, buffered readers: any edo_stream).  Returns the
 * bytes read (0 at end of stream), a negative error (-EINVAL for a NULL @s),
 * or -ECANCELED.
 */
ssize_t edo_fiber_stream_read(edo_stream *s, void *buf, size_t len);

/** edo_fiber_stream_write() - write up to @len bytes to @s (one write:
 *  possibly short); returns as edo_fiber_stream_read(). */
ssize_t edo_fiber_stream_write(edo_stream *s, const void *buf, size_t len);

/**
 * edo_fiber_stream_write_all() - write all @len bytes to @s.  Returns @len,
 * a negative error, or -ECANCELED (some bytes may have been written).
 */
ssize_t edo_fiber_stream_write_all(edo_stream *s, const void *buf, size_t len);

/**
 * edo_fiber_tcp_accept() - accept a connection on @l: 0 with *@out (and
 * *@peer, which may be NULL), a negative error, or -ECANCELED.
 */
int edo_fiber_tcp_accept(edo_tcp_listener *l, edo_tcp_stream **out, edo_addr *peer);

/** edo_fiber_tcp_connect() - connect to @addr: 0 with *@out, a negative
 *  error (-EINVAL for a NULL @addr or @out, before connecting), or
 *  -ECANCELED. */
int edo_fiber_tcp_connect(const edo_addr *addr, edo_tcp_stream **out);

/**
 * edo_fiber_sleep() - suspend the calling fiber for @duration_ns (timers
 * have a resolution of one millisecond and never fire early).  Returns 0,
 * -ECANCELED, EDO_ESHUTDOWN (the runtime shut down first) or -EPERM.
 */
int edo_fiber_sleep(uint64_t duration_ns);

/** edo_fiber_sleep_until() - edo_fiber_sleep() until the instant @deadline. */
int edo_fiber_sleep_until(edo_instant deadline);

/**
 * edo_fiber_await_timeout() - edo_fiber_await(@fut) with a deadline
 * @duration_ns from now.  Returns 0 if @fut completed; -ETIMEDOUT if the
 * deadline passed first, and then @fut has been dropped (cancelled);
 * -ECANCELED (also dropped), EDO_ESHUTDOWN, or -EPERM / -EINVAL as
 * edo_fiber_await().
 */
int edo_fiber_await_timeout(edo_future *fut, uint64_t duration_ns);

/* ---- cancellation ------------------------------------------------------------ */

/**
 * edo_fiber_shield() - raise (@on true) or lower the calling fiber's shield
 * against cancellation; returns the previous setting (false outside a
 * fiber).  While raised, awaits wait normally even after an abort, for
 * cleanup that must itself await; the cancellation is still pending and
 * shows again once the shield is lowered.
 */
bool edo_fiber_shield(bool on);

/** edo_fiber_is_cancelled() - whether the calling fiber's task was aborted. */
bool edo_fiber_is_cancelled(void);

/** edo_in_fiber() - whether the caller runs on a fiber's stack. */
bool edo_in_fiber(void);

/* ---- thread identity that survives an await ------------------------------------ */

/**
 * edo_errno_location() - the address of the calling thread's errno,
 * computed afresh on every call (never cached by the compiler, unlike
 * `errno`).  Use EDO_ERRNO in fibers that opted in to migration.
 */
int *edo_errno_location(void);
#define EDO_ERRNO (*edo_errno_location())

/**
 * edo_worker_id() - the index of the runtime worker the caller runs on:
 * 0..N-1 on a multi-thread runtime's workers, 0 on the thread inside a
 * current-thread runtime's edo_block_on(), -1 anywhere else.  Read afresh
 * on every call; use it instead of pthread_self() in migrating fibers.
 */
int edo_worker_id(void);

/* Private: the steps of EDO_FIBER_AWAIT_POLL.  _at names the wait for task
 * dumps (edo/trace.h): the expression and where it is. */
edo_cx *edo__fiber_poll_begin(int *rc);
void edo__fiber_poll_suspend(void);
void edo__fiber_poll_suspend_at(const char *what, const char *file, int line);

#ifdef __cplusplus
}
#endif
#endif /* EDO_FIBER_H */
