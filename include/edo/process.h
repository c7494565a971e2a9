/* Edo — child processes with async pipes, and pipes as streams.
 *
 *     edo_command *c;
 *     edo_command_new("cat", &c);
 *     edo_command_stdin(c, EDO_STDIO_PIPE);
 *     edo_command_stdout(c, EDO_STDIO_PIPE);
 *     edo_child *ch;
 *     int rc = edo_command_spawn(c, &ch);       // in a task: -ENOENT if no "cat"
 *     edo_command_free(c);
 *     self->in = edo_child_take_stdin(ch);      // edo_streams (edo/stream.h)
 *     self->out = edo_child_take_stdout(ch);
 *     EDO_AWAIT(edo_write_all(&self->wa, self->in, "hi\n", 3));
 *     edo_stream_drop(self->in);                // cat sees end of file
 *     EDO_AWAIT(edo_read_to_end(&self->rd, self->out, &self->buf));
 *     EDO_AWAIT(edo_child_wait(&self->w, ch));  // self->w.status: a wait status
 *     if (WIFEXITED(self->w.status)) ... WEXITSTATUS(self->w.status) ...
 *     edo_child_drop(ch);
 *
 * or in one step: EDO_AWAIT(edo_command_output(&self->out, c)).
 *
 * Spawning.  Unless its name has a '/', the program is looked up as
 * execvp does: in the child's PATH if the command sets or removes PATH,
 * else in this process's (also after edo_command_env_clear()); with no
 * PATH, in the system's default path (confstr(_CS_PATH), "/bin:/usr/bin").
 * The first regular file there that may be executed is run; an empty
 * entry in PATH is the current directory.  It is started with
 * posix_spawn, which reports a failed exec as the spawn's own error: a
 * missing program is -ENOENT (-EACCES if only files that cannot be
 * executed, or directories, have its name) from edo_command_spawn(),
 * never a child that dies.  The child starts with an empty signal mask
 * and every signal at its default action.  Pipes are made close-on-exec,
 * so no other child inherits them (a cat whose stdin another child also
 * holds would never see end of file).
 *
 * Waiting.  On Linux 5.3+ the child's exit is awaited through a pidfd
 * registered with the runtime's reactor.  Where pidfd_open is unavailable
 * (old kernels, seccomp filters) the runtime listens for SIGCHLD (edo/
 * signal.h) and tries waitpid(pid, WNOHANG) on each.  Only the child's own
 * pid is ever waited for: Edo never calls waitpid(-1).
 *
 * Dropping.  edo_child_drop() never leaves a zombie: a child that has not
 * been waited for is reaped in the background when it exits (its pidfd or
 * SIGCHLD wakes a reaper on the runtime it was spawned on; if that runtime
 * shut down first, by the next spawn in the process).  With kill_on_drop
 * the child is sent SIGKILL first.  Without it, a dropped child keeps
 * running (as in Tokio).
 *
 * Thread-safety: a command is used by one thread at a time.  A child handle
 * is used by one task at a time; edo_child_kill, edo_child_signal and
 * edo_child_id may be called from any thread while no one drops it.  A
 * signal never reaches another process that reused the child's pid: with
 * a pidfd it is sent through the pidfd, and without one under the lock
 * that Edo's waitpid holds until the child is marked reaped (nothing can
 * protect a pid that the application reaps itself, with waitpid(-1) or
 * SIGCHLD set to SIG_IGN).
 */
#ifndef EDO_PROCESS_H
#define EDO_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "edo/future.h"
#include "edo/runtime.h"
#include "edo/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== pipes ================================================================================ */

/**
 * edo_pipe_new() - an anonymous pipe whose ends are streams on the current
 * runtime's reactor: what is written to *@wr is read from *@rd.  Dropping
 * (or shutting down) the write end makes reads end; writes after the read
 * end is gone fail with -EPIPE (never SIGPIPE).  Returns 0, EDO_ENORUNTIME,
 * EDO_ESHUTDOWN, -ENOMEM, -EMFILE, ...
 */
int edo_pipe_new(edo_stream **rd, edo_stream **wr);

/**
 * edo_pipe_from_fd() - a stream over the pipe (or FIFO, or character
 * device that epoll accepts) @fd, which the stream then owns: dropping it
 * closes @fd.  @fd is made non-blocking.  On failure @fd is left open.
 * Its access mode decides the directions: reading a write-only end, or
 * writing a read-only one, fails with -EBADF.  Shutting down a write-only
 * end closes it (the other end reads end of file); a read-write end (a
 * pty master, say) stays open for its reader until dropped, and only
 * writes fail (-EPIPE) after the shutdown.
 */
int edo_pipe_from_fd(int fd, edo_stream **out);

/* ==== commands ============================================================================== */

/** What a child's stdin, stdout or stderr is connected to. */
typedef enum edo_stdio {
	EDO_STDIO_INHERIT = 1, /**< this process's own (the default for spawn) */
	EDO_STDIO_PIPE = 2,    /**< a pipe; the parent's end is a stream (take it) */
	EDO_STDIO_NULL = 3,    /**< /dev/null */
} edo_stdio;

typedef struct edo_command edo_command;
typedef struct edo_child edo_child;

/** edo_command_new() - a command to run @program (a copy is kept).  0, -EINVAL, -ENOMEM. */
int edo_command_new(const char *program, edo_command **out);

/** edo_command_free() - free @c (children spawned from it are unaffected).  NULL: no-op. */
void edo_command_free(edo_command *c);

/** edo_command_arg() - append one argument (argv[0] is the program as given).  0 or -ENOMEM. */
int edo_command_arg(edo_command *c, const char *arg);

/** edo_command_args() - append the NULL-terminated @args: all of them, 0, or
 *  none (-ENOMEM, -EINVAL). */
int edo_command_args(edo_command *c, const char *const *args);

/** edo_command_env() - set @key=@value in the child's environment.  0, -EINVAL, -ENOMEM. */
int edo_command_env(edo_command *c, const char *key, const char *value);

/** edo_command_env_remove() - remove @key from the child's environment. */
int edo_command_env_remove(edo_command *c, const char *key);

/**
 * edo_command_env_clear() - start the child's environment empty instead of
 * from this process's; later edo_command_env() calls still apply.
 */
int edo_command_env_clear(edo_command *c);

/** edo_command_cwd() - run the child in @dir (a copy is kept; NULL: this process's). */
int edo_command_cwd(edo_command *c, const char *dir);

/** edo_command_stdin() / _stdout() / _stderr() - how to connect each stream.  0 or -EINVAL. */
int edo_command_stdin(edo_command *c, edo_stdio how);
int edo_command_stdout(edo_command *c, edo_stdio how);
int edo_command_stderr(edo_command *c, edo_stdio how);

/** edo_command_kill_on_drop() - send SIGKILL to children still running when their handle is dropped. */
void edo_command_kill_on_drop(edo_command *c, bool on);

/**
 * edo_command_spawn() - start the program.  Needs a runtime context (the
 * pipes and the exit notification are registered with its reactor).
 * Returns 0 with *@out, -ENOENT (no such program, or no such cwd), -EACCES,
 * -ENOEXEC, -EINVAL, EDO_ENORUNTIME, EDO_ESHUTDOWN, -ENOMEM, -EMFILE, ...
 * Nothing is left behind on failure.
 */
int edo_command_spawn(edo_command *c, edo_child **out);

/* ==== children ============================================================================== */

/** edo_child_id() - the child's pid, or 0 once it has been waited for (or
 *  was found reaped by someone else: -ECHILD). */
pid_t edo_child_id(const edo_child *c);

/**
 * edo_child_take_stdin() / _stdout() / _stderr() - the parent's end of a
 * piped stream, now owned by the caller (release it with
 * edo_stream_drop(), which closes it), or NULL if it was not piped or was
 * taken already.  Streams not taken are closed by edo_child_drop().
 */
edo_stream *edo_child_take_stdin(edo_child *c);
edo_stream *edo_child_take_stdout(edo_child *c);
edo_stream *edo_child_take_stderr(edo_child *c);

/**
 * edo_child_poll_wait() - wait for the child to exit and reap it.  READY
 * with *@rc = 0 and *@status its wait status (WIFEXITED, WEXITSTATUS,
 * WIFSIGNALED, WTERMSIG from <sys/wait.h>), or *@rc < 0 (EDO_ESHUTDOWN,
 * -ECHILD if someone else reaped it, -EINVAL at once for a NULL @c or
 * @status).  -ECHILD is final, as a status is: the status is lost, the
 * pid is no longer ours, and the child counts as waited for (edo_child_id()
 * gives 0, signals -ESRCH).  The child's stdin, if the handle still holds
 * it, is closed first, so a child reading it is not left waiting for
 * input.  Polling again after READY gives the same status (or -ECHILD).
 * Cancel-safe.
 */
edo_poll edo_child_poll_wait(edo_child *c, edo_cx *cx, int *status, int *rc);

/**
 * edo_child_try_wait() - reap the child if it has exited, without waiting.
 * Returns 1 with *@status set, 0 if it is still running, or -errno
 * (-ECHILD, for good, if someone else reaped it: see edo_child_poll_wait).
 */
int edo_child_try_wait(edo_child *c, int *status);

/**
 * edo_child_kill() - send SIGKILL (Tokio's start_kill); await the exit with
 * edo_child_poll_wait().  Returns 0, or -ESRCH once the child was waited for
 * (or found reaped by someone else).
 */
int edo_child_kill(edo_child *c);

/** edo_child_signal() - send @sig (0: only check); 0, -EINVAL, -ESRCH once
 *  waited for (or found reaped by someone else), -EPERM. */
int edo_child_signal(edo_child *c, int sig);

/**
 * edo_child_drop() - release the handle and the streams it still holds.
 * A child not yet waited for is reaped in the background (see the top of
 * this file), after SIGKILL if kill_on_drop was set.  NULL: no-op.
 */
void edo_child_drop(edo_child *c);

/** edo_child_wait() - edo_child_poll_wait() as a future: outputs rc, status. */
typedef struct edo_child_wait_fut {
	edo_future base;
	int rc;
	int status;
	/* private */
	edo_child *child_;
} edo_child_wait_fut;
edo_future *edo_child_wait(edo_child_wait_fut *f, edo_child *c);

/**
 * edo_child_wait_with_output() - close the child's stdin if the handle
 * still holds it (as Tokio does; first, so that a child reading its stdin
 * to the end, such as cat, can finish), read its piped stdout and stderr
 * to their ends (both at once, so neither pipe fills up and stalls the
 * child), then wait for it.  Outputs: rc = 0 or the first error; status;
 * out, err = what was read (empty if not piped; free with edo_buf_free(),
 * also after an error).  Not cancel-safe: bytes read before a drop are in
 * out and err.  Streams already taken are not read.
 */
typedef struct edo_output_fut {
	edo_future base;
	int rc;
	int status;
	edo_buf out, err;
	/* private */
	edo_child *child_;
	edo_command *cmd_;
	bool own_child_, out_done_, err_done_;
} edo_output_fut;
edo_future *edo_child_wait_with_output(edo_output_fut *f, edo_child *c);

/**
 * edo_command_output() - run @c to completion and collect its output, like
 * Tokio's Command::output: stdout and stderr are piped and stdin is
 * /dev/null unless the command set them.  The command is read at the first
 * poll (it must live until then; it is not changed).  Outputs as
 * edo_child_wait_with_output, and rc is also spawn's error.  Dropping it
 * drops the child (reaped in the background; killed if kill_on_drop).
 */
edo_future *edo_command_output(edo_output_fut *f, edo_command *c);

/**
 * edo_command_status() - run @c to completion (stdio as the command says,
 * inherited by default) and give its wait status.  Outputs as
 * edo_child_wait; the command is read at the first poll.  As in Tokio,
 * the parent's ends of piped streams are closed as soon as the child is
 * spawned, before the wait: the child reads end of file from a piped
 * stdin, and a write to a piped stdout or stderr fails (SIGPIPE, or
 * EPIPE if the child ignores it) instead of blocking on a pipe that no
 * one reads.
 */
typedef struct edo_status_fut {
	edo_future base;
	int rc;
	int status;
	/* private */
	edo_command *cmd_;
	edo_child *child_;
} edo_status_fut;
edo_future *edo_command_status(edo_status_fut *f, edo_command *c);

#ifdef __cplusplus
}
#endif
#endif /* EDO_PROCESS_H */
