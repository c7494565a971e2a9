/* Child processes (edo/process.h).
 *
 * Spawning is posix_spawn of a path resolved here (execvp's PATH lookup,
 * against the child's PATH when the command sets or removes one), with the
 * stdio pipes' child ends dup2'd onto 0-2 by file actions.  glibc's
 * posix_spawn runs the child with CLONE_VFORK and reports a failed exec (or
 * chdir) as its return value, so a missing program is -ENOENT from spawn
 * and no child is left behind; it also blocks signals in the child until
 * their handlers are reset, so Edo's own signal handler never runs there.
 *
 * Exit notification, per child:
 *
 *   pidfd (Linux 5.3+)  pidfd_open(pid) registered with the reactor:
 *                       readable once the child has exited.
 *   SIGCHLD             where pidfd_open fails (ENOSYS, a seccomp EPERM):
 *                       a SIGCHLD listener (edo/signal.h) made after the
 *                       spawn; each wait first tries waitpid(pid, WNOHANG),
 *                       so an exit before the listener existed is not missed.
 *
 * Dropping a handle whose child has not been reaped turns the handle into
 * its own reaper: its edo__cb_waker is registered where a task's waker
 * would be (the pidfd's reactor slot, or the SIGCHLD listener), and each
 * wake tries waitpid once more.  The reaper's lock serialises those wakes
 * with the final release.  If the runtime shuts down before the child
 * exits, the pid goes to a process-wide list that the next spawn reaps.
 *
 *   handle ──drop──▶ reaped? ──yes──▶ free
 *                       │no
 *                       ▼
 *                   reaper armed ──exit──▶ waitpid, release, free
 *                       │ runtime shut down
 *                       ▼
 *                   pid on the orphan list ──next spawn──▶ waitpid
 */
#define _GNU_SOURCE
#include "edo/process.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "edo/error.h"
#include "edo/signal.h"
#include "edo/task.h"
#include "process/pipe.h"
#include "process/process.h"
#include "runtime/context.h"
#include "runtime/io/reactor.h"
#include "runtime/sched.h"
#include "signal/cb_waker.h"

extern char **environ;

/* ==== commands ================================================================================ */

typedef struct env_op {
	char *key;
	char *value; /* NULL: remove */
} env_op;

struct edo_command {
	char *program;
	char **argv; /* argv[0] = program; NULL-terminated */
	size_t argc, argv_cap;
	env_op *env;
	size_t nenv, env_cap;
	bool env_clear;
	char *cwd;
	edo_stdio stdio[3]; /* 0: not set */
	bool kill_on_drop;
};

int edo_command_new(const char *program, edo_command **out)
{
	if (!program || !*program || !out)
		return -EINVAL;
	edo_command *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->program = strdup(program);
	c->argv = calloc(4, sizeof *c->argv);
	if (!c->program || !c->argv) {
		free(c->program);
		free(c->argv);
		free(c);
		return -ENOMEM;
	}
	c->argv[0] = c->program;
	c->argc = 1;
	c->argv_cap = 4;
	*out = c;
	return 0;
}

void edo_command_free(edo_command *c)
{
	if (!c)
		return;
	for (size_t i = 1; i < c->argc; i++)
		free(c->argv[i]);
	free(c->argv);
	for (size_t i = 0; i < c->nenv; i++) {
		free(c->env[i].key);
		free(c->env[i].value);
	}
	free(c->env);
	free(c->cwd);
	free(c->program);
	free(c);
}

int edo_command_arg(edo_command *c, const char *arg)
{
	if (!c || !arg)
		return -EINVAL;
	if (c->argc + 1 >= c->argv_cap) {
		char **n = realloc(c->argv, c->argv_cap * 2 * sizeof *n);
		if (!n)
			return -ENOMEM;
		c->argv = n;
		c->argv_cap *= 2;
	}
	char *a = strdup(arg);
	if (!a)
		return -ENOMEM;
	c->argv[c->argc++] = a;
	c->argv[c->argc] = NULL;
	return 0;
}

int edo_command_args(edo_command *c, const char *const *args)
{
	if (!c || !args)
		return -EINVAL;
	size_t argc = c->argc;
	for (; *args; args++) {
		int rc = edo_command_arg(c, *args);
		if (rc < 0) {
			/* All or nothing: take back what this call added. */
			while (c->argc > argc)
				free(c->argv[--c->argc]);
			c->argv[c->argc] = NULL;
			return rc;
		}
	}
	return 0;
}

static int env_push(edo_command *c, const char *key, const char *value)
{
	if (!c || !key || !*key || strchr(key, '='))
		return -EINVAL;
	if (c->nenv == c->env_cap) {
		size_t cap = c->env_cap ? c->env_cap * 2 : 8;
		env_op *n = realloc(c->env, cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		c->env = n;
		c->env_cap = cap;
	}
	env_op op = {strdup(key), value ? strdup(value) : NULL};
	if (!op.key || (value && !op.value)) {
		free(op.key);
		free(op.value);
		return -ENOMEM;
	}
	c->env[c->nenv++] = op;
	return 0;
}

int edo_command_env(edo_command *c, const char *key, const char *value)
{
	if (!value)
		return -EINVAL;
	return env_push(c, key, value);
}

int edo_command_env_remove(edo_command *c, const char *key)
{
	return env_push(c, key, NULL);
}

int edo_command_env_clear(edo_command *c)
{
	if (!c)
		return -EINVAL;
	for (size_t i = 0; i < c->nenv; i++) {
		free(c->env[i].key);
		free(c->env[i].value);
	}
	c->nenv = 0;
	c->env_clear = true;
	return 0;
}

int edo_command_cwd(edo_command *c, const char *dir)
{
	if (!c)
		return -EINVAL;
	char *d = NULL;
	if (dir && !(d = strdup(dir)))
		return -ENOMEM;
	free(c->cwd);
	c->cwd = d;
	return 0;
}

static int set_stdio(edo_command *c, int which, edo_stdio how)
{
	if (!c || how < EDO_STDIO_INHERIT || how > EDO_STDIO_NULL)
		return -EINVAL;
	c->stdio[which] = how;
	return 0;
}

int edo_command_stdin(edo_command *c, edo_stdio how)
{
	return set_stdio(c, 0, how);
}

int edo_command_stdout(edo_command *c, edo_stdio how)
{
	return set_stdio(c, 1, how);
}

int edo_command_stderr(edo_command *c, edo_stdio how)
{
	return set_stdio(c, 2, how);
}

void edo_command_kill_on_drop(edo_command *c, bool on)
{
	if (c)
		c->kill_on_drop = on;
}

/* ---- the environment and the program's path ---------------------------------------------- */

typedef struct strvec {
	char **v;
	size_t n, cap;
} strvec;

static void strvec_free(strvec *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static int strvec_push(strvec *s, char *str)
{
	if (!str)
		return -ENOMEM;
	if (s->n + 1 >= s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		char **n = realloc(s->v, cap * sizeof *n);
		if (!n) {
			free(str);
			return -ENOMEM;
		}
		s->v = n;
		s->cap = cap;
	}
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
	return 0;
}

static ssize_t env_find(const strvec *s, const char *key)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i < s->n; i++)
		if (strncmp(s->v[i], key, kl) == 0 && s->v[i][kl] == '=')
			return (ssize_t)i;
	return -1;
}

/* The child's environment: this process's (unless cleared), then the edits. */
static int build_env(const edo_command *c, strvec *out)
{
	int rc;
	*out = (strvec){.v = calloc(32, sizeof(char *)), .cap = 32};
	if (!out->v)
		return -ENOMEM;
	if (!c->env_clear)
		for (char **e = environ; e && *e; e++)
			if ((rc = strvec_push(out, strdup(*e))) < 0)
				return rc;
	for (size_t i = 0; i < c->nenv; i++) {
		ssize_t at = env_find(out, c->env[i].key);
		if (!c->env[i].value) {
			if (at >= 0) {
				free(out->v[at]);
				out->v[at] = out->v[--out->n];
				out->v[out->n] = NULL;
			}
			continue;
		}
		char *kv;
		if (asprintf(&kv, "%s=%s", c->env[i].key, c->env[i].value) < 0)
			return -ENOMEM;
		if (at >= 0) {
			free(out->v[at]);
			out->v[at] = kv;
		} else if ((rc = strvec_push(out, kv)) < 0) {
			return rc;
		}
	}
	return 0;
}

/* The path searched where there is no PATH (execvp's default): the
 * system's, confstr(_CS_PATH), written into @buf. */
static const char *default_path(char *buf, size_t len)
{
	size_t n = confstr(_CS_PATH, buf, len);
	return n > 0 && n <= len ? buf : "/bin:/usr/bin";
}

/* The PATH to search: the child's if the command sets or removes one (none:
 * the default path), else ours (the default path if we have none). */
static const char *search_path(const edo_command *c, char *buf, size_t len)
{
	for (size_t i = c->nenv; i-- > 0;)
		if (strcmp(c->env[i].key, "PATH") == 0)
			return c->env[i].value ? c->env[i].value : default_path(buf, len);
	const char *p = getenv("PATH"); // NOLINT(concurrency-mt-unsafe): as execvp reads it
	return p ? p : default_path(buf, len);
}

/* Resolve the program as execvp would: the first regular file of that name
 * that we may execute, an empty entry of the path meaning the current
 * directory.  -ENOENT, or -EACCES if only files that cannot be executed
 * (or directories) of that name were found. */
static int resolve(const edo_command *c, char **out)
{
	if (strchr(c->program, '/')) {
		*out = strdup(c->program);
		return *out ? 0 : -ENOMEM;
	}
	int err = -ENOENT;
	char buf[256];
	const char *p = search_path(c, buf, sizeof buf);
	for (;;) {
		const char *end = strchr(p, ':');
		size_t dl = end ? (size_t)(end - p) : strlen(p);
		char *cand;
		int n = dl ? asprintf(&cand, "%.*s/%s", (int)dl, p, c->program) :
			     asprintf(&cand, "./%s", c->program);
		if (n < 0)
			return -ENOMEM;
		struct stat st;
		if (access(cand, X_OK) == 0 && stat(cand, &st) == 0) {
			if (S_ISREG(st.st_mode)) {
				*out = cand;
				return 0;
			}
			err = -EACCES; /* a directory, say: execve refuses it */
		} else if (errno == EACCES) {
			err = -EACCES;
		}
		free(cand);
		if (!end)
			return err;
		p = end + 1;
	}
}

/* ==== children ==================================================================================== */

struct edo_child {
	edo__cb_waker w;      /* first: the reaper's waker once dropped */
	pthread_mutex_t lock; /* serialises reaping with kill(), and the
			       * reaper's wakes with its release */
	edo__sched *sched;    /* a reference */
	pid_t pid;
	int pidfd;             /* -1 without one */
	edo__scheduled_io *io; /* the pidfd's registration */
	edo_signal *sigchld;   /* without a pidfd */
	int status;            /* the wait status, once reaped */
	int lost;              /* -ECHILD once someone else reaped it, else 0 */
	atomic_bool reaped;    /* status or lost is final (stored after them) */
	bool kill_on_drop;
	bool done; /* the reaper finished (under lock) */
	edo_stream *stdio[3];
};

/* ---- pidfd availability, and the orphan list ------------------------------------------------ */

static atomic_bool no_pidfd;

void edo__process_force_sigchld(bool on)
{
	atomic_store(&no_pidfd, on);
}

static struct {
	pthread_mutex_t lock;
	pid_t *pids;
	size_t n, cap;
} orphans = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void orphan_push(pid_t pid)
{
	pthread_mutex_lock(&orphans.lock);
	if (orphans.n == orphans.cap) {
		size_t cap = orphans.cap ? orphans.cap * 2 : 16;
		pid_t *n = realloc(orphans.pids, cap * sizeof *n);
		if (!n) {
			/* Nowhere to remember it: it stays a zombie. */
			pthread_mutex_unlock(&orphans.lock);
			return;
		}
		orphans.pids = n;
		orphans.cap = cap;
	}
	orphans.pids[orphans.n++] = pid;
	pthread_mutex_unlock(&orphans.lock);
}

void edo__process_reap_orphans(void)
{
	pthread_mutex_lock(&orphans.lock);
	for (size_t i = 0; i < orphans.n;) {
		int st;
		pid_t r = waitpid(orphans.pids[i], &st, WNOHANG);
		if (r == 0 || (r < 0 && errno == EINTR)) {
			i++;
			continue;
		}
		orphans.pids[i] = orphans.pids[--orphans.n];
	}
	pthread_mutex_unlock(&orphans.lock);
}

/* ---- reaping ---------------------------------------------------------------------------------------- */

/* What a reaped child's wait gives: 1 (its status is c->status), or
 * -ECHILD if someone else reaped it. */
static int reaped_result(const edo_child *c)
{
	return c->lost ? c->lost : 1;
}

/* 1 reaped (now or before), 0 still running, or -errno; -ECHILD (someone
 * else reaped it) is final too: the pid is no longer ours.  Under c->lock. */
static int try_reap_locked(edo_child *c)
{
	if (atomic_load_explicit(&c->reaped, memory_order_acquire))
		return reaped_result(c);
	for (;;) {
		int st;
		pid_t r = waitpid(c->pid, &st, WNOHANG);
		if (r == c->pid) {
			c->status = st;
			atomic_store_explicit(&c->reaped, true, memory_order_release);
			return 1;
		}
		if (r == 0)
			return 0;
		if (errno == ECHILD) {
			c->lost = -ECHILD;
			atomic_store_explicit(&c->reaped, true, memory_order_release);
			return -ECHILD;
		}
		if (errno != EINTR)
			return -errno;
	}
}

/* try_reap_locked() under the lock: the waitpid that frees the pid and the
 * setting of reaped are one step for edo_child_signal(), whose kill(pid)
 * must never reach a process that took the pid over. */
static int try_reap(edo_child *c)
{
	if (atomic_load_explicit(&c->reaped, memory_order_acquire))
		return reaped_result(c);
	pthread_mutex_lock(&c->lock);
	int r = try_reap_locked(c);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Release what watches for the exit (not the memory). */
static void release_watch(edo_child *c)
{
	if (c->io) {
		edo__reactor_deregister(c->sched->driver.io, c->io);
		c->io = NULL;
	}
	if (c->pidfd >= 0) {
		close(c->pidfd);
		c->pidfd = -1;
	}
	edo_signal_drop(c->sigchld);
	c->sigchld = NULL;
	if (c->sched) {
		edo__sched_unref(c->sched);
		c->sched = NULL;
	}
}

static void child_release(edo__cb_waker *w)
{
	edo_child *c = (edo_child *)w;
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* The reaper of a dropped child: wait for the exit with itself as waker. */
static void reaper_fire(edo__cb_waker *w)
{
	edo_child *c = (edo_child *)w;
	edo_waker self = edo__cb_waker_borrow(w);
	edo_cx cx = {&self};
	pthread_mutex_lock(&c->lock);
	if (c->done) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	for (;;) {
		if (try_reap_locked(c) != 0)
			break; /* reaped, or not ours to reap (ECHILD) */
		if (c->io) {
			edo__ready_event ev;
			if (edo__sio_poll_ready(c->io, &cx, EDO_INTEREST_READABLE, &ev) ==
			    EDO_PENDING) {
				pthread_mutex_unlock(&c->lock);
				return;
			}
			if (ev.shutdown) {
				orphan_push(c->pid);
				break;
			}
			if (try_reap_locked(c) == 0)
				edo__sio_clear_readiness(c->io, ev);
		} else {
			int n;
			if (edo_signal_poll_recv(c->sigchld, &cx, &n) == EDO_PENDING) {
				pthread_mutex_unlock(&c->lock);
				return;
			}
			if (n < 0) {
				orphan_push(c->pid);
				break;
			}
		}
	}
	c->done = true;
	pthread_mutex_unlock(&c->lock);
	/* Outside the lock: deregistering wakes the waker slot, which may hold
	 * another clone of us (it finds done set). */
	release_watch(c);
}

/* ---- spawning --------------------------------------------------------------------------------------- */

/* Watch @c's exit: a pidfd on the reactor, else a SIGCHLD listener. */
static int watch_exit(edo_child *c)
{
	if (!atomic_load(&no_pidfd)) {
		int fd = (int)syscall(SYS_pidfd_open, c->pid, 0);
		if (fd >= 0) {
			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
			int rc = edo__reactor_register(c->sched->driver.io, fd,
						       EDO_INTEREST_READABLE, &c->io);
			if (rc == 0) {
				c->pidfd = fd;
				return 0;
			}
			close(fd);
			if (rc == EDO_ESHUTDOWN)
				return rc;
		} else if (errno == ENOSYS || errno == EPERM) {
			atomic_store(&no_pidfd, true); /* never there: stop asking */
		}
	}
	return edo_signal_new_on(c->sched, SIGCHLD, &c->sigchld);
}

typedef struct spawn_plan {
	int child_fd[3];  /* dup2'd onto 0-2 in the child; -1: inherit */
	int parent_fd[3]; /* our ends of pipes, -1: none */
} spawn_plan;

static void plan_close(spawn_plan *p)
{
	for (int i = 0; i < 3; i++) {
		if (p->child_fd[i] >= 0)
			close(p->child_fd[i]);
		if (p->parent_fd[i] >= 0)
			close(p->parent_fd[i]);
		p->child_fd[i] = p->parent_fd[i] = -1;
	}
}

/* A descriptor above 2, so that dup2 onto 0-2 never meets itself.  A
 * failed open's -1 passes through with its errno. */
static int above_stdio(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int e = errno;
	close(fd);
	errno = e;
	return n;
}

static int plan_stdio(spawn_plan *p, const edo_stdio how[3])
{
	for (int i = 0; i < 3; i++)
		p->child_fd[i] = p->parent_fd[i] = -1;
	for (int i = 0; i < 3; i++) {
		if (how[i] == EDO_STDIO_PIPE) {
			int fds[2];
			if (pipe2(fds, O_CLOEXEC) < 0)
				goto fail;
			p->child_fd[i] = above_stdio(i == 0 ? fds[0] : fds[1]);
			p->parent_fd[i] = i == 0 ? fds[1] : fds[0];
		} else if (how[i] == EDO_STDIO_NULL) {
			p->child_fd[i] = above_stdio(
				open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC));
		} else {
			continue;
		}
		if (p->child_fd[i] < 0)
			goto fail;
	}
	return 0;
fail:;
	int e = -errno;
	plan_close(p);
	return e;
}

static int do_spawn(edo_command *cmd, const char *path, char *const envp[], const spawn_plan *plan,
		    pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int rc = posix_spawn_file_actions_init(&fa);
	if (rc)
		return -rc;
	rc = posix_spawnattr_init(&attr);
	if (rc) {
		posix_spawn_file_actions_destroy(&fa);
		return -rc;
	}
	for (int i = 0; i < 3 && !rc; i++)
		if (plan->child_fd[i] >= 0)
			rc = posix_spawn_file_actions_adddup2(&fa, plan->child_fd[i], i);
	if (!rc && cmd->cwd)
		rc = posix_spawn_file_actions_addchdir_np(&fa, cmd->cwd);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	if (!rc)
		rc = posix_spawnattr_setsigmask(&attr, &none);
	if (!rc)
		rc = posix_spawnattr_setsigdefault(&attr, &all);
	if (!rc)
		rc = posix_spawnattr_setflags(&attr,
					      POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (!rc)
		rc = posix_spawn(pid, path, &fa, &attr, cmd->argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return -rc;
}

int edo__command_spawn_with(edo_command *cmd, const edo_stdio stdio[3], edo_child **out)
{
	edo__sched *s = edo__ctx.sched;
	if (!cmd || !out)
		return -EINVAL;
	if (!s)
		return EDO_ENORUNTIME;
	if (!s->has_driver || !s->driver.io)
		return -ENOTSUP;
	if (atomic_load_explicit(&s->shutdown, memory_order_relaxed))
		return EDO_ESHUTDOWN;
	edo__process_reap_orphans();

	char *path = NULL;
	strvec env = {0};
	spawn_plan plan = {{-1, -1, -1}, {-1, -1, -1}};
	edo_child *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->pidfd = -1;
	int rc = resolve(cmd, &path);
	if (rc == 0)
		rc = build_env(cmd, &env);
	if (rc == 0)
		rc = plan_stdio(&plan, stdio);
	if (rc < 0)
		goto out_free;
	/* Our ends become streams before the child exists: nothing to undo
	 * in a child if this fails. */
	for (int i = 0; i < 3 && rc == 0; i++) {
		if (plan.parent_fd[i] < 0)
			continue;
		rc = edo__pipe_wrap(s, plan.parent_fd[i], &c->stdio[i]);
		if (rc == 0)
			plan.parent_fd[i] = -1; /* the stream owns it */
	}
	if (rc == 0)
		rc = do_spawn(cmd, path, env.v, &plan, &c->pid);
	plan_close(&plan);
	if (rc < 0)
		goto out_free;
	edo__sched_ref(s);
	c->sched = s;
	c->kill_on_drop = cmd->kill_on_drop;
	pthread_mutex_init(&c->lock, NULL);
	edo__cb_waker_init(&c->w, reaper_fire, child_release);
	rc = watch_exit(c);
	if (rc < 0) {
		/* No way to hear of its exit: stop it and reap it now. */
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
			;
		atomic_store_explicit(&c->reaped, true, memory_order_release);
		edo_child_drop(c);
		c = NULL;
		goto out;
	}
	*out = c;
	c = NULL;
	goto out;
out_free:
	for (int i = 0; i < 3; i++)
		edo_stream_drop(c->stdio[i]);
	free(c);
out:
	free(path);
	strvec_free(&env);
	return rc;
}

int edo_command_spawn(edo_command *c, edo_child **out)
{
	if (!c)
		return -EINVAL;
	edo_stdio how[3];
	for (int i = 0; i < 3; i++)
		how[i] = c->stdio[i] ? c->stdio[i] : EDO_STDIO_INHERIT;
	return edo__command_spawn_with(c, how, out);
}

/* ---- the handle ---------------------------------------------------------------------------------------- */

pid_t edo_child_id(const edo_child *c)
{
	return c && !atomic_load_explicit(&c->reaped, memory_order_acquire) ? c->pid : 0;
}

static edo_stream *take(edo_child *c, int i)
{
	if (!c)
		return NULL;
	edo_stream *s = c->stdio[i];
	c->stdio[i] = NULL;
	return s;
}

edo_stream *edo_child_take_stdin(edo_child *c)
{
	return take(c, 0);
}

edo_stream *edo_child_take_stdout(edo_child *c)
{
	return take(c, 1);
}

edo_stream *edo_child_take_stderr(edo_child *c)
{
	return take(c, 2);
}

int edo_child_try_wait(edo_child *c, int *status)
{
	if (!c || !status)
		return -EINVAL;
	int r = try_reap(c);
	if (r == 1)
		*status = c->status;
	return r;
}

edo_poll edo_child_poll_wait(edo_child *c, edo_cx *cx, int *status, int *rc)
{
	if (!c || !status) {
		*rc = -EINVAL;
		return EDO_READY;
	}
	if (atomic_load_explicit(&c->reaped, memory_order_acquire)) {
		*rc = c->lost;
		if (*rc == 0)
			*status = c->status;
		return EDO_READY;
	}
	edo_stream_drop(take(c, 0)); /* a child reading stdin must see its end */
	for (;;) {
		if (c->io) {
			if (edo_coop_poll_proceed(cx) == EDO_PENDING)
				return EDO_PENDING;
			edo__ready_event ev;
			if (edo__sio_poll_ready(c->io, cx, EDO_INTEREST_READABLE, &ev) ==
			    EDO_PENDING) {
				edo_coop_refund();
				return EDO_PENDING;
			}
			if (ev.shutdown) {
				*rc = EDO_ESHUTDOWN;
				return EDO_READY;
			}
			int r = try_reap(c);
			if (r == 0) {
				edo__sio_clear_readiness(c->io, ev);
				edo_coop_refund();
				continue;
			}
			*rc = r < 0 ? r : 0;
		} else {
			int r = try_reap(c);
			if (r == 0) {
				int n;
				if (edo_signal_poll_recv(c->sigchld, cx, &n) == EDO_PENDING)
					return EDO_PENDING;
				if (n >= 0)
					continue;
				r = n;
			}
			*rc = r < 0 ? r : 0;
		}
		if (*rc == 0)
			*status = c->status;
		return EDO_READY;
	}
}

int edo_child_signal(edo_child *c, int sig)
{
	if (!c || sig < 0 || sig >= _NSIG)
		return -EINVAL;
	if (c->pidfd >= 0) {
		/* The pidfd names our child even once it is reaped. */
		if (atomic_load_explicit(&c->reaped, memory_order_acquire))
			return -ESRCH;
		return syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0) < 0 ? -errno : 0;
	}
	/* The pid is ours until waitpid frees it: look and kill under the
	 * lock that try_reap() holds from waitpid until reaped is set. */
	int r = -ESRCH;
	pthread_mutex_lock(&c->lock);
	if (!atomic_load_explicit(&c->reaped, memory_order_relaxed))
		r = kill(c->pid, sig) < 0 ? -errno : 0;
	pthread_mutex_unlock(&c->lock);
	return r;
}

int edo_child_kill(edo_child *c)
{
	return edo_child_signal(c, SIGKILL);
}

void edo_child_drop(edo_child *c)
{
	if (!c)
		return;
	for (int i = 0; i < 3; i++)
		edo_stream_drop(take(c, i));
	if (c->kill_on_drop)
		(void)edo_child_signal(c, SIGKILL); /* -ESRCH once reaped */
	if (try_reap(c) != 0) {
		release_watch(c);
		edo__cb_waker_unref(&c->w);
		return;
	}
	/* Still running: the handle becomes its reaper.  The first fire arms
	 * it; the owner's reference goes after that. */
	reaper_fire(&c->w);
	edo__cb_waker_unref(&c->w);
}

/* ==== futures ========================================================================================= */

static edo_poll wait_poll(edo_future *base, edo_cx *cx)
{
	edo_child_wait_fut *f = (edo_child_wait_fut *)base;
	if (!f->child_) {
		f->rc = -EINVAL;
		return EDO_READY;
	}
	return edo_child_poll_wait(f->child_, cx, &f->status, &f->rc);
}

static const edo_future_vtable wait_vt = {.poll = wait_poll, .drop = NULL};

edo_future *edo_child_wait(edo_child_wait_fut *f, edo_child *c)
{
	*f = (edo_child_wait_fut){.base = {&wait_vt}, .child_ = c};
	return &f->base;
}

/* Read @s to its end into @b; READY when done (or failed: *rc). */
static edo_poll drain(edo_stream *s, edo_cx *cx, edo_buf *b, bool *done, int *rc)
{
	while (!*done) {
		if (edo_buf_reserve(b, 8192) < 0) {
			if (*rc == 0)
				*rc = -ENOMEM;
			*done = true;
			break;
		}
		ssize_t n;
		if (edo_stream_poll_read(s, cx, b->data + b->len, b->cap - b->len, &n) ==
		    EDO_PENDING)
			return EDO_PENDING;
		if (n > 0) {
			b->len += (size_t)n;
			continue;
		}
		if (n < 0 && *rc == 0)
			*rc = (int)n;
		*done = true;
	}
	return EDO_READY;
}

static edo_poll output_poll(edo_future *base, edo_cx *cx)
{
	edo_output_fut *f = (edo_output_fut *)base;
	if (f->cmd_) {
		edo_command *cmd = f->cmd_;
		f->cmd_ = NULL;
		edo_stdio how[3] = {
			cmd->stdio[0] ? cmd->stdio[0] : EDO_STDIO_NULL,
			cmd->stdio[1] ? cmd->stdio[1] : EDO_STDIO_PIPE,
			cmd->stdio[2] ? cmd->stdio[2] : EDO_STDIO_PIPE,
		};
		f->rc = edo__command_spawn_with(cmd, how, &f->child_);
		if (f->rc < 0)
			return EDO_READY;
		f->own_child_ = true;
	}
	edo_child *c = f->child_;
	if (!c) {
		if (f->rc == 0)
			f->rc = -EINVAL;
		return EDO_READY;
	}
	/* stdin first, as Tokio's wait_with_output: a child that reads it to
	 * its end (cat) would otherwise never close stdout. */
	edo_stream_drop(take(c, 0));
	edo_poll a =
		c->stdio[1] ? drain(c->stdio[1], cx, &f->out, &f->out_done_, &f->rc) : EDO_READY;
	edo_poll b =
		c->stdio[2] ? drain(c->stdio[2], cx, &f->err, &f->err_done_, &f->rc) : EDO_READY;
	if (a == EDO_PENDING || b == EDO_PENDING)
		return EDO_PENDING;
	int rc;
	if (edo_child_poll_wait(c, cx, &f->status, &rc) == EDO_PENDING)
		return EDO_PENDING;
	if (f->rc == 0)
		f->rc = rc;
	if (f->own_child_) {
		edo_child_drop(c);
		f->child_ = NULL;
	}
	return EDO_READY;
}

static void output_drop(edo_future *base)
{
	edo_output_fut *f = (edo_output_fut *)base;
	if (f->own_child_)
		edo_child_drop(f->child_);
	f->child_ = NULL;
}

static const edo_future_vtable output_vt = {.poll = output_poll, .drop = output_drop};

edo_future *edo_child_wait_with_output(edo_output_fut *f, edo_child *c)
{
	*f = (edo_output_fut){.base = {&output_vt}, .child_ = c};
	return &f->base;
}

edo_future *edo_command_output(edo_output_fut *f, edo_command *c)
{
	*f = (edo_output_fut){.base = {&output_vt}, .cmd_ = c};
	if (!c)
		f->rc = -EINVAL;
	return &f->base;
}

static edo_poll status_poll(edo_future *base, edo_cx *cx)
{
	edo_status_fut *f = (edo_status_fut *)base;
	if (f->cmd_) {
		f->rc = edo_command_spawn(f->cmd_, &f->child_);
		f->cmd_ = NULL;
		if (f->rc < 0)
			return EDO_READY;
		/* As Tokio's status(): no one here reads or writes the pipes,
		 * and a child stuck on a full one would never exit. */
		for (int i = 0; i < 3; i++)
			edo_stream_drop(take(f->child_, i));
	}
	if (!f->child_) {
		if (f->rc == 0)
			f->rc = -EINVAL;
		return EDO_READY;
	}
	if (edo_child_poll_wait(f->child_, cx, &f->status, &f->rc) == EDO_PENDING)
		return EDO_PENDING;
	edo_child_drop(f->child_);
	f->child_ = NULL;
	return EDO_READY;
}

static void status_drop(edo_future *base)
{
	edo_status_fut *f = (edo_status_fut *)base;
	edo_child_drop(f->child_);
	f->child_ = NULL;
}

static const edo_future_vtable status_vt = {.poll = status_poll, .drop = status_drop};

edo_future *edo_command_status(edo_status_fut *f, edo_command *c)
{
	*f = (edo_status_fut){.base = {&status_vt}, .cmd_ = c};
	if (!c)
		f->rc = -EINVAL;
	return &f->base;
}
