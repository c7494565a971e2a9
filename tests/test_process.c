#define _GNU_SOURCE
/* Child processes: spawn errors, a cat round trip through pipes, exit codes
 * and signals, kill, output collection, environment and working directory,
 * many children exiting at once, dropped children reaped in the background
 * (checked in /proc), the SIGCHLD path used where pidfd is missing, status()
 * and output() with piped stdio, execvp's PATH lookup, EMFILE, a child
 * reaped by someone else, signals from another thread, and pipes as
 * streams. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"
#include "process/process.h"

static edo_runtime *make_rt(edo_rt_flavor flavor)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, flavor);
	b.worker_threads = 2;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	return rt;
}

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

/* ThreadSanitizer runs a signal handler only when its thread passes an
 * intercepted call, and a runtime thread asleep in a raw futex wait may not
 * for a long time.  Under it, the SIGCHLD path's tests keep SIGCHLD blocked
 * in every runtime thread (they inherit the mask) and let a catcher thread,
 * asleep in an intercepted nanosleep, take every SIGCHLD. */
static atomic_bool catching;

static void *sigchld_catcher(void *arg)
{
	(void)arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGCHLD);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	while (atomic_load(&catching))
		usleep(1000);
	return NULL;
}

static pthread_t catcher;

static void sigchld_route(bool on)
{
#ifdef UNDER_TSAN
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGCHLD);
	if (on) {
		pthread_sigmask(SIG_BLOCK, &s, NULL);
		atomic_store(&catching, true);
		CHECK_EQ(pthread_create(&catcher, NULL, sigchld_catcher, NULL), 0);
	} else {
		atomic_store(&catching, false);
		CHECK_EQ(pthread_join(catcher, NULL), 0);
		pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	}
#else
	(void)on;
	(void)catcher;
	(void)sigchld_catcher;
#endif
}

/* Run the coroutine frame @f on a fresh runtime of each flavour, with and
 * without pidfd. */
#define RUN_ALL_WAYS(fn, ...)                                                                      \
	do {                                                                                       \
		for (int sigchld_ = 0; sigchld_ < 2; sigchld_++) {                                 \
			edo__process_force_sigchld(sigchld_);                                      \
			if (sigchld_)                                                              \
				sigchld_route(true);                                               \
			for (int fl_ = EDO_RT_CURRENT_THREAD; fl_ <= EDO_RT_MULTI_THREAD; fl_++) { \
				edo_runtime *rt_ = make_rt((edo_rt_flavor)fl_);                    \
				fn##_frame f_ = {EDO_FRAME_INIT(fn), __VA_ARGS__};                 \
				CHECK_EQ(edo_block_on(rt_, &f_.edo_base), 0);                      \
				CHECK_EQ(edo_runtime_free(rt_), 0);                                \
			}                                                                          \
			if (sigchld_)                                                              \
				sigchld_route(false);                                              \
		}                                                                                  \
		edo__process_force_sigchld(false);                                                 \
	} while (0)

/* Our children per /proc: how many, and how many of them zombies. */
static int count_children(int *zombies)
{
	int n = 0, z = 0;
	DIR *d = opendir("/proc");
	CHECK(d != NULL);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char path[300], buf[512];
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = 0;
		const char *p = strrchr(buf, ')');
		char state;
		int ppid;
		if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2 || ppid != getpid())
			continue;
		n++;
		if (state == 'Z')
			z++;
	}
	closedir(d);
	if (zombies)
		*zombies = z;
	return n;
}

/* ---- spawn errors --------------------------------------------------------------------------- */

static int spawn_simple(const char *prog, const char *cwd, edo_child **out)
{
	edo_command *c;
	CHECK_EQ(edo_command_new(prog, &c), 0);
	if (cwd)
		CHECK_EQ(edo_command_cwd(c, cwd), 0);
	int rc = edo_command_spawn(c, out);
	edo_command_free(c);
	return rc;
}

typedef struct errors_frame {
	EDO_FRAME;
} errors_frame;

EDO_ASYNC(errors, errors_frame, NULL)
{
	EDO_BEGIN();
	{
		edo_child *ch = NULL;
		CHECK_EQ(spawn_simple("edo-no-such-program-xyz", NULL, &ch), -ENOENT);
		CHECK_EQ(spawn_simple("/nonexistent/dir/prog", NULL, &ch), -ENOENT);
		CHECK(ch == NULL);
		/* A file that is not executable. */
		char path[] = "/tmp/edo-noexec-XXXXXX";
		int fd = mkstemp(path);
		CHECK_GE(fd, 0);
		CHECK_EQ(write(fd, "#!/bin/sh\n", 10), 10);
		close(fd);
		CHECK_EQ(spawn_simple(path, NULL, &ch), -EACCES);
		/* Executable, but not a program the kernel can run. */
		CHECK_EQ(chmod(path, 0700), 0);
		fd = open(path, O_WRONLY | O_TRUNC);
		CHECK_EQ(write(fd,
			       "\x7f"
			       "ELF garbage",
			       12),
			 12);
		close(fd);
		CHECK_EQ(spawn_simple(path, NULL, &ch), -ENOEXEC);
		unlink(path);
		/* A working directory that does not exist. */
		CHECK_EQ(spawn_simple("true", "/nonexistent-edo-dir", &ch), -ENOENT);
		CHECK(ch == NULL);
		/* Bad input. */
		edo_command *c;
		CHECK_EQ(edo_command_new("", &c), -EINVAL);
		CHECK_EQ(edo_command_new(NULL, &c), -EINVAL);
		CHECK_EQ(edo_command_new("true", &c), 0);
		CHECK_EQ(edo_command_env(c, "A=B", "x"), -EINVAL);
		CHECK_EQ(edo_command_env(c, "", "x"), -EINVAL);
		CHECK_EQ(edo_command_stdin(c, (edo_stdio)9), -EINVAL);
		CHECK_EQ(edo_command_spawn(c, NULL), -EINVAL);
		edo_command_free(c);
		/* No descriptor leaked by the failures. */
		CHECK_EQ(count_children(NULL), 0);
	}
	EDO_END();
}

TEST(spawn_errors)
{
	edo_command *c;
	edo_child *ch;
	CHECK_EQ(edo_command_new("true", &c), 0);
	CHECK_EQ(edo_command_spawn(c, &ch), EDO_ENORUNTIME);
	edo_command_free(c);
	int before = 0;
	for (int fd = 0; fd < 1024; fd++)
		before += fcntl(fd, F_GETFD) >= 0;
	RUN_ALL_WAYS(errors, );
	int after = 0;
	for (int fd = 0; fd < 1024; fd++)
		after += fcntl(fd, F_GETFD) >= 0;
	CHECK_EQ(after, before);
}

/* A NULL child: the handle's functions report -EINVAL instead of crashing. */
TEST(null_child)
{
	edo_cx cx = {edo_noop_waker()};
	int status = 12345, rc = 0;
	CHECK_EQ(edo_child_poll_wait(NULL, &cx, &status, &rc), EDO_READY);
	CHECK_EQ(rc, -EINVAL);
	CHECK_EQ(status, 12345);
	CHECK_EQ(edo_child_try_wait(NULL, &status), -EINVAL);
	CHECK_EQ(edo_child_kill(NULL), -EINVAL);
	CHECK_EQ(edo_child_id(NULL), 0);
	CHECK(edo_child_take_stdout(NULL) == NULL);
	edo_child_wait_fut w;
	edo_child_wait(&w, NULL);
	CHECK_EQ(edo_future_poll(&w.base, &cx), EDO_READY);
	CHECK_EQ(w.rc, -EINVAL);
	edo_child_drop(NULL);
}

/* ---- cat round trip --------------------------------------------------------------------------- */

#define CAT_BYTES (1 << 20)

typedef struct feed_frame {
	EDO_FRAME;
	edo_stream *in;
	const char *data;
	edo_write_all_fut wa;
} feed_frame;

static void feed_cleanup(feed_frame *self)
{
	edo_stream_drop(self->in); /* cat sees end of file */
}

EDO_ASYNC(feed, feed_frame, feed_cleanup)
{
	EDO_BEGIN();
	EDO_AWAIT(edo_write_all(&self->wa, self->in, self->data, CAT_BYTES));
	CHECK_EQ(self->wa.rc, 0);
	CHECK_EQ(self->wa.n, (size_t)CAT_BYTES);
	EDO_END();
}

typedef struct cat_frame {
	EDO_FRAME;
	char *data;
	edo_child *ch;
	edo_join *w;
	edo_buf out;
	edo_read_to_end_fut rd;
	edo_stream *stdout_;
	edo_child_wait_fut wait;
	int rc;
} cat_frame;

static void cat_cleanup(cat_frame *self)
{
	free(self->data);
	edo_buf_free(&self->out);
	edo_stream_drop(self->stdout_);
	edo_child_drop(self->ch);
}

EDO_ASYNC(cat, cat_frame, cat_cleanup)
{
	EDO_BEGIN();
	self->data = malloc(CAT_BYTES);
	for (size_t i = 0; i < CAT_BYTES; i++)
		self->data[i] = (char)(i * 7 + (i >> 11));
	{
		edo_command *c;
		CHECK_EQ(edo_command_new("cat", &c), 0);
		CHECK_EQ(edo_command_stdin(c, EDO_STDIO_PIPE), 0);
		CHECK_EQ(edo_command_stdout(c, EDO_STDIO_PIPE), 0);
		CHECK_EQ(edo_command_spawn(c, &self->ch), 0);
		edo_command_free(c);
	}
	CHECK_GT(edo_child_id(self->ch), 0);
	CHECK(edo_child_take_stderr(self->ch) == NULL); /* not piped */
	self->stdout_ = edo_child_take_stdout(self->ch);
	CHECK(self->stdout_ != NULL);
	CHECK(edo_child_take_stdout(self->ch) == NULL); /* taken */
	CHECK_EQ(EDO_SPAWN(&self->w, feed, .in = edo_child_take_stdin(self->ch),
			   .data = self->data),
		 0);
	EDO_AWAIT(edo_read_to_end(&self->rd, self->stdout_, &self->out));
	CHECK_EQ(self->rd.rc, 0);
	CHECK_EQ(self->out.len, (size_t)CAT_BYTES);
	CHECK(memcmp(self->out.data, self->data, CAT_BYTES) == 0);
	EDO_AWAIT_JOIN(self->w, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->w);
	EDO_AWAIT(edo_child_wait(&self->wait, self->ch));
	CHECK_EQ(self->wait.rc, 0);
	CHECK(WIFEXITED(self->wait.status));
	CHECK_EQ(WEXITSTATUS(self->wait.status), 0);
	CHECK_EQ(edo_child_id(self->ch), 0);
	EDO_END();
}

TEST(cat_round_trip)
{
	RUN_ALL_WAYS(cat, );
}

/* ---- exit codes, signals, kill, try_wait -------------------------------------------------------- */

typedef struct codes_frame {
	EDO_FRAME;
	edo_child *ch;
	edo_child_wait_fut wait;
	edo_status_fut st;
	edo_command *cmd;
	int i, status;
} codes_frame;

static void codes_cleanup(codes_frame *self)
{
	edo_child_drop(self->ch);
	edo_command_free(self->cmd);
}

EDO_ASYNC(codes, codes_frame, codes_cleanup)
{
	EDO_BEGIN();
	/* Exit codes. */
	for (self->i = 0; self->i < 3; self->i++) {
		{
			static const char *const scripts[] = {"exit 0", "exit 7", "exit 255"};
			const char *args[] = {"-c", scripts[self->i], NULL};
			CHECK_EQ(edo_command_new("sh", &self->cmd), 0);
			CHECK_EQ(edo_command_args(self->cmd, args), 0);
		}
		EDO_AWAIT(edo_command_status(&self->st, self->cmd));
		CHECK_EQ(self->st.rc, 0);
		CHECK(WIFEXITED(self->st.status));
		CHECK_EQ(WEXITSTATUS(self->st.status), self->i == 0 ? 0 : self->i == 1 ? 7 : 255);
		edo_command_free(self->cmd);
		self->cmd = NULL;
	}
	/* A signal ends it: kill, then wait. */
	CHECK_EQ(edo_command_new("sleep", &self->cmd), 0);
	CHECK_EQ(edo_command_arg(self->cmd, "100"), 0);
	CHECK_EQ(edo_command_spawn(self->cmd, &self->ch), 0);
	CHECK_EQ(edo_child_try_wait(self->ch, &self->status), 0);
	CHECK_EQ(edo_child_kill(self->ch), 0);
	EDO_AWAIT(edo_child_wait(&self->wait, self->ch));
	CHECK_EQ(self->wait.rc, 0);
	CHECK(WIFSIGNALED(self->wait.status));
	CHECK_EQ(WTERMSIG(self->wait.status), SIGKILL);
	CHECK_EQ(edo_child_try_wait(self->ch, &self->status), 1);
	CHECK_EQ(self->status, self->wait.status);
	CHECK_EQ(edo_child_kill(self->ch), -ESRCH);
	CHECK_EQ(edo_child_signal(self->ch, -1), -EINVAL);
	edo_child_drop(self->ch);
	self->ch = NULL;
	/* SIGTERM through edo_child_signal, and try_wait once it is over. */
	CHECK_EQ(edo_command_spawn(self->cmd, &self->ch), 0);
	CHECK_EQ(edo_child_signal(self->ch, SIGTERM), 0);
	while (edo_child_try_wait(self->ch, &self->status) == 0)
		usleep(1000);
	CHECK(WIFSIGNALED(self->status));
	CHECK_EQ(WTERMSIG(self->status), SIGTERM);
	/* Waiting after try_wait reaped it gives the same status. */
	EDO_AWAIT(edo_child_wait(&self->wait, self->ch));
	CHECK_EQ(self->wait.rc, 0);
	CHECK_EQ(self->wait.status, self->status);
	EDO_END();
}

TEST(exit_codes_and_kill)
{
	RUN_ALL_WAYS(codes, );
}

/* ---- output, environment, working directory, null ------------------------------------------------ */

typedef struct output_frame {
	EDO_FRAME;
	edo_command *cmd;
	edo_output_fut out;
} output_frame;

static void output_cleanup(output_frame *self)
{
	edo_command_free(self->cmd);
	edo_buf_free(&self->out.out);
	edo_buf_free(&self->out.err);
}

static void check_buf(const edo_buf *b, const char *want)
{
	CHECK_EQ(b->len, strlen(want));
	CHECK(memcmp(b->data, want, b->len) == 0);
}

#define NEW_SH(script)                                                                             \
	do {                                                                                       \
		edo_command_free(self->cmd);                                                       \
		edo_buf_free(&self->out.out);                                                      \
		edo_buf_free(&self->out.err);                                                      \
		CHECK_EQ(edo_command_new("sh", &self->cmd), 0);                                    \
		CHECK_EQ(edo_command_args(self->cmd, (const char *const[]){"-c", script, NULL}),   \
			 0);                                                                       \
	} while (0)

EDO_ASYNC(output, output_frame, output_cleanup)
{
	EDO_BEGIN();
	NEW_SH("echo out; echo err >&2; exit 3");
	EDO_AWAIT(edo_command_output(&self->out, self->cmd));
	CHECK_EQ(self->out.rc, 0);
	CHECK_EQ(WEXITSTATUS(self->out.status), 3);
	check_buf(&self->out.out, "out\n");
	check_buf(&self->out.err, "err\n");

	/* More output than a pipe holds, on both streams at once. */
	NEW_SH("i=0; while [ $i -lt 3000 ]; do echo 0123456789012345678901234567890123456789; "
	       "echo abcdefghijabcdefghijabcdefghijabcdefghij >&2; i=$((i+1)); done");
	EDO_AWAIT(edo_command_output(&self->out, self->cmd));
	CHECK_EQ(self->out.rc, 0);
	CHECK_EQ(self->out.status, 0);
	CHECK_EQ(self->out.out.len, (size_t)3000 * 41);
	CHECK_EQ(self->out.err.len, (size_t)3000 * 41);

	/* The environment: cleared, then set; inherited, with one removed. */
	NEW_SH("echo \"$EDO_A|$EDO_B|$HOME\"");
	CHECK_EQ(edo_command_env_clear(self->cmd), 0);
	CHECK_EQ(edo_command_env(self->cmd, "EDO_A", "1"), 0);
	CHECK_EQ(edo_command_env(self->cmd, "EDO_B", "x"), 0);
	CHECK_EQ(edo_command_env(self->cmd, "EDO_B", "2"), 0); /* the last one wins */
	EDO_AWAIT(edo_command_output(&self->out, self->cmd));
	CHECK_EQ(self->out.rc, 0);
	check_buf(&self->out.out, "1|2|\n");
	setenv("EDO_A", "inherited", 1);
	setenv("EDO_B", "removed", 1);
	NEW_SH("echo \"$EDO_A|$EDO_B\"");
	CHECK_EQ(edo_command_env_remove(self->cmd, "EDO_B"), 0);
	EDO_AWAIT(edo_command_output(&self->out, self->cmd));
	check_buf(&self->out.out, "inherited|\n");
	/* PATH set for the child is where the program is looked up. */
	edo_command_free(self->cmd);
	edo_buf_free(&self->out.out);
	edo_buf_free(&self->out.err);
	CHECK_EQ(edo_command_new("sh", &self->cmd), 0);
	CHECK_EQ(edo_command_env(self->cmd, "PATH", "/nonexistent-edo"), 0);
	EDO_AWAIT(edo_command_output(&self->out, self->cmd));
	CHECK_EQ(self->out.rc, -ENOENT);

	/* The working directory. */
	NEW_SH("pwd");
	CHECK_EQ(edo_command_cwd(self->cmd, "/"), 0);
	EDO_AWAIT(edo_command_output(&self->out, self->cmd));
	check_buf(&self->out.out, "/\n");

	/* stdin is /dev/null for output(); stdout can be made null too. */
	NEW_SH("cat; echo done");
	EDO_AWAIT(edo_command_output(&self->out, self->cmd));
	check_buf(&self->out.out, "done\n");
	NEW_SH("echo gone; echo kept >&2");
	CHECK_EQ(edo_command_stdout(self->cmd, EDO_STDIO_NULL), 0);
	EDO_AWAIT(edo_command_output(&self->out, self->cmd));
	CHECK_EQ(self->out.out.len, 0u);
	check_buf(&self->out.err, "kept\n");
	EDO_END();
}

TEST(output_env_cwd)
{
	RUN_ALL_WAYS(output, );
}

/* ---- many children at once; none left as a zombie -------------------------------------------------- */

typedef struct one_frame {
	EDO_FRAME;
	int code;
	edo_command *cmd;
	edo_status_fut st;
} one_frame;

static void one_cleanup(one_frame *self)
{
	edo_command_free(self->cmd);
}

EDO_ASYNC(one, one_frame, one_cleanup)
{
	EDO_BEGIN();
	{
		char script[32];
		snprintf(script, sizeof script, "exit %d", self->code);
		CHECK_EQ(edo_command_new("sh", &self->cmd), 0);
		CHECK_EQ(edo_command_args(self->cmd, (const char *const[]){"-c", script, NULL}), 0);
	}
	EDO_AWAIT(edo_command_status(&self->st, self->cmd));
	CHECK_EQ(self->st.rc, 0);
	CHECK(WIFEXITED(self->st.status));
	CHECK_EQ(WEXITSTATUS(self->st.status), self->code);
	EDO_END();
}

#define MANY 200

typedef struct many_frame {
	EDO_FRAME;
	int n;
	edo_join *h[MANY];
	int i, rc, zombies;
} many_frame;

EDO_ASYNC(many, many_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], one, .code = self->i % 256), 0);
	for (self->i = 0; self->i < self->n; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->h[self->i]);
	}
	CHECK_EQ(count_children(&self->zombies), 0);
	EDO_END();
}

TEST(many_children_no_zombie)
{
	int n = (int)test_scale(MANY);
	RUN_ALL_WAYS(many, .n = n);
}

/* ---- dropped children are reaped in the background ---------------------------------------------- */

typedef struct drop_frame {
	EDO_FRAME;
	edo_command *cmd, *sleeper;
	int i, zombies, left;
	edo_sleep sl;
} drop_frame;

static void drop_cleanup(drop_frame *self)
{
	edo_command_free(self->cmd);
	edo_command_free(self->sleeper);
}

EDO_ASYNC(dropper, drop_frame, drop_cleanup)
{
	EDO_BEGIN();
	/* Children that exit on their own after their handles are gone, with
	 * their pipes dropped unread too. */
	CHECK_EQ(edo_command_new("sh", &self->cmd), 0);
	CHECK_EQ(edo_command_args(self->cmd, (const char *const[]){"-c", "sleep 0.05", NULL}), 0);
	CHECK_EQ(edo_command_stdout(self->cmd, EDO_STDIO_PIPE), 0);
	/* Long sleepers, killed when dropped. */
	CHECK_EQ(edo_command_new("sleep", &self->sleeper), 0);
	CHECK_EQ(edo_command_arg(self->sleeper, "100"), 0);
	edo_command_kill_on_drop(self->sleeper, true);
	for (self->i = 0; self->i < 40; self->i++) {
		edo_child *ch;
		CHECK_EQ(edo_command_spawn(self->i % 2 ? self->cmd : self->sleeper, &ch), 0);
		edo_child_drop(ch);
	}
	/* Also one that has exited before its handle is dropped. */
	{
		edo_child *ch;
		CHECK_EQ(spawn_simple("true", NULL, &ch), 0);
		usleep(20000);
		edo_child_drop(ch);
	}
	/* The runtime keeps running; the reapers do their work. */
	for (self->i = 0; self->i < 500; self->i++) {
		self->left = count_children(&self->zombies);
		if (self->left == 0)
			break;
		EDO_AWAIT_SLEEP(&self->sl, EDO_MS(10));
	}
	CHECK_EQ(self->left, 0);
	EDO_END();
}

TEST(dropped_children_reaped)
{
	RUN_ALL_WAYS(dropper, );
}

/* A child dropped on a runtime that then shuts down is reaped by the next spawn. */
typedef struct orphan_frame {
	EDO_FRAME;
	int phase;
	edo_child *ch;
} orphan_frame;

EDO_ASYNC(orphan, orphan_frame, NULL)
{
	EDO_BEGIN();
	if (self->phase == 0) {
		edo_command *c;
		CHECK_EQ(edo_command_new("sleep", &c), 0);
		CHECK_EQ(edo_command_arg(c, "0.2"), 0);
		CHECK_EQ(edo_command_spawn(c, &self->ch), 0);
		edo_command_free(c);
		/* Held: dropped after the runtime is gone, still running. */
	} else {
		edo_child *ch;
		int st;
		CHECK_EQ(spawn_simple("true", NULL, &ch), 0);
		while (edo_child_try_wait(ch, &st) == 0)
			usleep(1000);
		edo_child_drop(ch);
	}
	EDO_END();
}

TEST(orphan_after_shutdown)
{
	for (int sigchld = 0; sigchld < 2; sigchld++) {
		edo__process_force_sigchld(sigchld);
		if (sigchld)
			sigchld_route(true);
		edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD);
		orphan_frame f = {EDO_FRAME_INIT(orphan)};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
		edo_child_drop(f.ch);
		usleep(400000);
		int z;
		CHECK_EQ(count_children(&z), 1);
		CHECK_EQ(z, 1);
		rt = make_rt(EDO_RT_CURRENT_THREAD);
		orphan_frame g = {EDO_FRAME_INIT(orphan), .phase = 1};
		CHECK_EQ(edo_block_on(rt, &g.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
		CHECK_EQ(count_children(&z), 0);
		if (sigchld)
			sigchld_route(false);
	}
}

/* ---- status() and output() do not deadlock on the child's stdio ------------------------------------- */

/* A child writing more than a pipe holds to a piped stdout or stderr: status()
 * closes our ends at the spawn, as Tokio does, so the writes fail instead
 * of blocking for ever on pipes that no one reads. */
typedef struct status_pipes_frame {
	EDO_FRAME;
	edo_command *cmd;
	edo_status_fut st;
	edo_timeout to;
} status_pipes_frame;

static void status_pipes_cleanup(status_pipes_frame *self)
{
	edo_command_free(self->cmd);
}

EDO_ASYNC(status_pipes, status_pipes_frame, status_pipes_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_command_new("sh", &self->cmd), 0);
	CHECK_EQ(edo_command_args(self->cmd,
				  (const char *const[]){"-c",
							"head -c 1000000 /dev/zero; "
							"head -c 1000000 /dev/zero >&2; exit 5",
							NULL}),
		 0);
	CHECK_EQ(edo_command_stdin(self->cmd, EDO_STDIO_PIPE), 0);
	CHECK_EQ(edo_command_stdout(self->cmd, EDO_STDIO_PIPE), 0);
	CHECK_EQ(edo_command_stderr(self->cmd, EDO_STDIO_PIPE), 0);
	edo_command_kill_on_drop(self->cmd, true);
	/* The timeout only catches the hang (before: -ETIMEDOUT). */
	edo_command_status(&self->st, self->cmd);
	EDO_AWAIT_TIMEOUT(&self->to, &self->st.base, EDO_SEC(10));
	CHECK_EQ(self->to.result, 0);
	CHECK_EQ(self->st.rc, 0);
	CHECK(WIFEXITED(self->st.status));
	CHECK_EQ(WEXITSTATUS(self->st.status), 5);
	EDO_END();
}

TEST(status_closes_pipes)
{
	RUN_ALL_WAYS(status_pipes, );
}

/* A child that reads its piped stdin to the end before it exits (cat):
 * output() and wait_with_output() close stdin before they read stdout,
 * as Tokio does. */
typedef struct output_stdin_frame {
	EDO_FRAME;
	edo_command *cmd;
	edo_child *ch;
	edo_output_fut out;
	edo_timeout to;
} output_stdin_frame;

static void output_stdin_cleanup(output_stdin_frame *self)
{
	edo_command_free(self->cmd);
	edo_child_drop(self->ch);
	edo_buf_free(&self->out.out);
	edo_buf_free(&self->out.err);
}

EDO_ASYNC(output_stdin, output_stdin_frame, output_stdin_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_command_new("cat", &self->cmd), 0);
	CHECK_EQ(edo_command_stdin(self->cmd, EDO_STDIO_PIPE), 0);
	edo_command_kill_on_drop(self->cmd, true);
	/* The timeouts only catch the hang (before: -ETIMEDOUT). */
	edo_command_output(&self->out, self->cmd);
	EDO_AWAIT_TIMEOUT(&self->to, &self->out.base, EDO_SEC(10));
	CHECK_EQ(self->to.result, 0);
	CHECK_EQ(self->out.rc, 0);
	CHECK_EQ(self->out.status, 0);
	CHECK_EQ(self->out.out.len, 0u);
	edo_buf_free(&self->out.out);
	edo_buf_free(&self->out.err);
	/* The same through a handle whose stdin and stdout are piped. */
	CHECK_EQ(edo_command_stdout(self->cmd, EDO_STDIO_PIPE), 0);
	CHECK_EQ(edo_command_spawn(self->cmd, &self->ch), 0);
	edo_child_wait_with_output(&self->out, self->ch);
	EDO_AWAIT_TIMEOUT(&self->to, &self->out.base, EDO_SEC(10));
	CHECK_EQ(self->to.result, 0);
	CHECK_EQ(self->out.rc, 0);
	CHECK_EQ(self->out.status, 0);
	CHECK_EQ(self->out.out.len, 0u);
	CHECK(edo_child_take_stdin(self->ch) == NULL); /* closed */
	EDO_END();
}

TEST(output_closes_stdin)
{
	RUN_ALL_WAYS(output_stdin, );
}

/* ---- the PATH lookup is execvp's ------------------------------------------------------------------- */

/* In a temporary directory @dir: a/edo_prog a directory, b/edo_prog and
 * c/edo_prog scripts that print "b" and "c"; the test runs in c. */
typedef struct lookup_frame {
	EDO_FRAME;
	const char *dir;
	edo_command *cmd;
	edo_output_fut out;
	int i;
	char path[512];
} lookup_frame;

static void lookup_cleanup(lookup_frame *self)
{
	edo_command_free(self->cmd);
	edo_buf_free(&self->out.out);
	edo_buf_free(&self->out.err);
}

/* Run edo_prog with PATH set to @fmt, in which each %1$s is the directory. */
#define LOOKUP(fmt)                                                                                \
	do {                                                                                       \
		edo_command_free(self->cmd);                                                       \
		edo_buf_free(&self->out.out);                                                      \
		edo_buf_free(&self->out.err);                                                      \
		snprintf(self->path, sizeof self->path, fmt, self->dir);                           \
		CHECK_EQ(edo_command_new("edo_prog", &self->cmd), 0);                              \
		CHECK_EQ(edo_command_env(self->cmd, "PATH", self->path), 0);                       \
		EDO_AWAIT(edo_command_output(&self->out, self->cmd));                              \
	} while (0)

EDO_ASYNC(lookup, lookup_frame, lookup_cleanup)
{
	EDO_BEGIN();
	/* An empty entry, first, last or between two, is the current
	 * directory (before: "/edo_prog", -ENOENT). */
	LOOKUP(":%1$s/none");
	CHECK_EQ(self->out.rc, 0);
	check_buf(&self->out.out, "c\n");
	LOOKUP("%1$s/none:");
	CHECK_EQ(self->out.rc, 0);
	check_buf(&self->out.out, "c\n");
	LOOKUP("%1$s/none::%1$s/b");
	CHECK_EQ(self->out.rc, 0);
	check_buf(&self->out.out, "c\n");
	/* A directory of the program's name is passed over for the program
	 * after it (before: -EACCES); alone, it is -EACCES as for execvp. */
	LOOKUP("%1$s/a:%1$s/b");
	CHECK_EQ(self->out.rc, 0);
	check_buf(&self->out.out, "b\n");
	LOOKUP("%1$s/a:%1$s/none");
	CHECK_EQ(self->out.rc, -EACCES);
	/* PATH removed: the default path, where sh is (before: "/sh",
	 * -ENOENT). */
	edo_command_free(self->cmd);
	edo_buf_free(&self->out.out);
	edo_buf_free(&self->out.err);
	CHECK_EQ(edo_command_new("sh", &self->cmd), 0);
	CHECK_EQ(edo_command_args(self->cmd, (const char *const[]){"-c", "echo ok", NULL}), 0);
	CHECK_EQ(edo_command_env_remove(self->cmd, "PATH"), 0);
	EDO_AWAIT(edo_command_output(&self->out, self->cmd));
	CHECK_EQ(self->out.rc, 0);
	check_buf(&self->out.out, "ok\n");
	EDO_END();
}

static void lookup_file(const char *dir, const char *sub, const char *text)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, sub);
	CHECK_EQ(mkdir(p, 0700), 0);
	snprintf(p, sizeof p, "%s/%s/edo_prog", dir, sub);
	if (!text) {
		CHECK_EQ(mkdir(p, 0700), 0);
		return;
	}
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
	CHECK_GE(fd, 0);
	CHECK_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void lookup_rm(const char *dir, const char *sub, bool is_dir)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s/edo_prog", dir, sub);
	CHECK_EQ(is_dir ? rmdir(p) : unlink(p), 0);
	snprintf(p, sizeof p, "%s/%s", dir, sub);
	CHECK_EQ(rmdir(p), 0);
}

TEST(path_lookup)
{
	char dir[] = "/tmp/edo-path-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	lookup_file(dir, "a", NULL);
	lookup_file(dir, "b", "#!/bin/sh\necho b\n");
	lookup_file(dir, "c", "#!/bin/sh\necho c\n");
	int home = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK_GE(home, 0);
	{
		char c[512];
		snprintf(c, sizeof c, "%s/c", dir);
		CHECK_EQ(chdir(c), 0);
	}
	RUN_ALL_WAYS(lookup, .dir = dir);
	CHECK_EQ(fchdir(home), 0);
	close(home);
	lookup_rm(dir, "a", true);
	lookup_rm(dir, "b", false);
	lookup_rm(dir, "c", false);
	CHECK_EQ(rmdir(dir), 0);
}

/* ---- spawn's errors when descriptors run out ------------------------------------------------------- */

#define EMFILE_LIMIT 1024

/* With every descriptor in use, /dev/null for a stdio stream cannot be
 * opened: -EMFILE (before: -EBADF, from the failed open's -1). */
typedef struct emfile_frame {
	EDO_FRAME;
} emfile_frame;

EDO_ASYNC(emfile, emfile_frame, NULL)
{
	EDO_BEGIN();
	for (int i = 0; i < 3; i++) {
		edo_command *c;
		CHECK_EQ(edo_command_new("true", &c), 0);
		edo_stdio how[3] = {EDO_STDIO_INHERIT, EDO_STDIO_INHERIT, EDO_STDIO_INHERIT};
		how[i] = EDO_STDIO_NULL;
		CHECK_EQ(edo_command_stdin(c, how[0]), 0);
		CHECK_EQ(edo_command_stdout(c, how[1]), 0);
		CHECK_EQ(edo_command_stderr(c, how[2]), 0);
		struct rlimit old, lim;
		CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
		lim = old;
		if (lim.rlim_cur > EMFILE_LIMIT)
			lim.rlim_cur = EMFILE_LIMIT;
		CHECK_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
		static int fds[EMFILE_LIMIT];
		int n = 0;
		while (n < EMFILE_LIMIT && (fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
			n++;
		int e = errno;
		edo_child *ch = NULL;
		int rc = edo_command_spawn(c, &ch);
		while (n > 0)
			close(fds[--n]);
		CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
		CHECK_EQ(e, EMFILE);
		CHECK_EQ(rc, -EMFILE);
		CHECK(ch == NULL);
		edo_command_free(c);
	}
	EDO_END();
}

TEST(spawn_emfile)
{
	int before = 0;
	for (int fd = 0; fd < EMFILE_LIMIT; fd++)
		before += fcntl(fd, F_GETFD) >= 0;
	RUN_ALL_WAYS(emfile, );
	int after = 0;
	for (int fd = 0; fd < EMFILE_LIMIT; fd++)
		after += fcntl(fd, F_GETFD) >= 0;
	CHECK_EQ(after, before);
}

/* ---- a child reaped behind Edo's back; signals from other threads -------------------------------- */

/* waitpid by someone else: the wait reports -ECHILD, for good, and the pid,
 * no longer ours, is neither given out nor signalled (before: the pid). */
typedef struct elsewhere_frame {
	EDO_FRAME;
	edo_child *ch;
	edo_child_wait_fut wait;
	int status;
} elsewhere_frame;

static void elsewhere_cleanup(elsewhere_frame *self)
{
	edo_child_drop(self->ch);
}

EDO_ASYNC(elsewhere, elsewhere_frame, elsewhere_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(spawn_simple("true", NULL, &self->ch), 0);
	{
		pid_t pid = edo_child_id(self->ch);
		CHECK_GT(pid, 0);
		int st;
		while (waitpid(pid, &st, 0) < 0)
			CHECK_EQ(errno, EINTR);
	}
	self->status = 12345;
	CHECK_EQ(edo_child_try_wait(self->ch, &self->status), -ECHILD);
	CHECK_EQ(self->status, 12345);
	CHECK_EQ(edo_child_id(self->ch), 0);
	CHECK_EQ(edo_child_signal(self->ch, 0), -ESRCH);
	CHECK_EQ(edo_child_kill(self->ch), -ESRCH);
	EDO_AWAIT(edo_child_wait(&self->wait, self->ch));
	CHECK_EQ(self->wait.rc, -ECHILD);
	EDO_AWAIT(edo_child_wait(&self->wait, self->ch));
	CHECK_EQ(self->wait.rc, -ECHILD);
	CHECK_EQ(edo_child_try_wait(self->ch, &self->status), -ECHILD);
	EDO_END();
}

TEST(child_reaped_elsewhere)
{
	RUN_ALL_WAYS(elsewhere, );
}

/* edo_child_id and edo_child_signal from another thread while a task waits
 * for the child: no data race (ThreadSanitizer found one on reaped), and
 * once the id reads 0 a signal is -ESRCH, never a kill of a reused pid. */
static edo_child *_Atomic signalled;
static atomic_bool signaller_stop;
static atomic_int signaller_busy;

static void *signaller(void *arg)
{
	(void)arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &s, NULL); /* SIGCHLD is the runtime's */
	while (!atomic_load(&signaller_stop)) {
		atomic_store(&signaller_busy, 1);
		edo_child *c = atomic_load(&signalled);
		if (c) {
			pid_t id = edo_child_id(c);
			int r = edo_child_signal(c, 0);
			CHECK(r == 0 || r == -ESRCH);
			if (id == 0)
				CHECK_EQ(r, -ESRCH);
		}
		atomic_store(&signaller_busy, 0);
	}
	return NULL;
}

typedef struct signal_thread_frame {
	EDO_FRAME;
	edo_child *ch;
	edo_child_wait_fut wait;
	int i;
} signal_thread_frame;

static void signal_thread_cleanup(signal_thread_frame *self)
{
	atomic_store(&signalled, NULL);
	while (atomic_load(&signaller_busy))
		;
	edo_child_drop(self->ch);
}

EDO_ASYNC(signal_thread, signal_thread_frame, signal_thread_cleanup)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < 20; self->i++) {
		CHECK_EQ(spawn_simple("true", NULL, &self->ch), 0);
		atomic_store(&signalled, self->ch);
		EDO_AWAIT(edo_child_wait(&self->wait, self->ch));
		CHECK_EQ(self->wait.rc, 0);
		CHECK_EQ(self->wait.status, 0);
		atomic_store(&signalled, NULL);
		while (atomic_load(&signaller_busy))
			; /* the signaller let go of it */
		edo_child_drop(self->ch);
		self->ch = NULL;
	}
	EDO_END();
}

TEST(child_signal_any_thread)
{
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, signaller, NULL), 0);
	RUN_ALL_WAYS(signal_thread, );
	atomic_store(&signaller_stop, true);
	CHECK_EQ(pthread_join(th, NULL), 0);
}

/* ---- pipes as streams ----------------------------------------------------------------------------- */

typedef struct pipes_frame {
	EDO_FRAME;
	edo_stream *r, *w;
	char buf[16];
	ssize_t n;
	int rc;
	int sv[2];
} pipes_frame;

static void pipes_cleanup(pipes_frame *self)
{
	edo_stream_drop(self->r);
	edo_stream_drop(self->w);
}

EDO_ASYNC(pipes, pipes_frame, pipes_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_pipe_new(&self->r, &self->w), 0);
	EDO_AWAIT_POLL(edo_stream_poll_write(self->w, cx, "hello", 5, &self->n));
	CHECK_EQ(self->n, 5);
	EDO_AWAIT_POLL(edo_stream_poll_read(self->r, cx, self->buf, sizeof self->buf, &self->n));
	CHECK_EQ(self->n, 5);
	CHECK(memcmp(self->buf, "hello", 5) == 0);
	/* Shutting the write end down is end of file for the reader. */
	EDO_AWAIT_POLL(edo_stream_poll_shutdown(self->w, cx, &self->rc));
	CHECK_EQ(self->rc, 0);
	EDO_AWAIT_POLL(edo_stream_poll_write(self->w, cx, "x", 1, &self->n));
	CHECK_EQ(self->n, -EPIPE);
	EDO_AWAIT_POLL(edo_stream_poll_read(self->r, cx, self->buf, sizeof self->buf, &self->n));
	CHECK_EQ(self->n, 0);
	edo_stream_drop(self->w);
	self->w = NULL;
	/* A write whose reader is gone is -EPIPE, and SIGPIPE does not kill us. */
	edo_stream_drop(self->r);
	CHECK_EQ(edo_pipe_new(&self->r, &self->w), 0);
	edo_stream_drop(self->r);
	self->r = NULL;
	EDO_AWAIT_POLL(edo_stream_poll_write(self->w, cx, "x", 1, &self->n));
	CHECK_EQ(self->n, -EPIPE);
	{
		sigset_t pend;
		CHECK_EQ(sigpending(&pend), 0);
		CHECK(!sigismember(&pend, SIGPIPE));
	}
	CHECK_EQ(edo_pipe_from_fd(-1, &self->r), -EINVAL);
	edo_stream_drop(self->w);
	self->w = NULL;
	/* A read-write end (a socket here; a pty master is another): shutting
	 * it down ends what the other side reads, but its own reading goes on
	 * (copy_bidirectional shuts one direction down while the other still
	 * flows).  Before, the shutdown closed the descriptor under it. */
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, self->sv), 0);
	CHECK_EQ(edo_pipe_from_fd(self->sv[0], &self->r), 0);
	EDO_AWAIT_POLL(edo_stream_poll_write(self->r, cx, "ping", 4, &self->n));
	CHECK_EQ(self->n, 4);
	EDO_AWAIT_POLL(edo_stream_poll_shutdown(self->r, cx, &self->rc));
	CHECK_EQ(self->rc, 0);
	EDO_AWAIT_POLL(edo_stream_poll_write(self->r, cx, "x", 1, &self->n));
	CHECK_EQ(self->n, -EPIPE);
	CHECK_EQ(read(self->sv[1], self->buf, sizeof self->buf), 4);
	CHECK_EQ(read(self->sv[1], self->buf, sizeof self->buf), 0); /* end of file */
	CHECK_EQ(write(self->sv[1], "pong", 4), 4);
	close(self->sv[1]);
	EDO_AWAIT_POLL(edo_stream_poll_read(self->r, cx, self->buf, sizeof self->buf, &self->n));
	CHECK_EQ(self->n, 4);
	CHECK(memcmp(self->buf, "pong", 4) == 0);
	EDO_AWAIT_POLL(edo_stream_poll_read(self->r, cx, self->buf, sizeof self->buf, &self->n));
	CHECK_EQ(self->n, 0);
	/* One-way ends refuse the other direction. */
	edo_stream_drop(self->r);
	CHECK_EQ(edo_pipe_new(&self->r, &self->w), 0);
	EDO_AWAIT_POLL(edo_stream_poll_read(self->w, cx, self->buf, sizeof self->buf, &self->n));
	CHECK_EQ(self->n, -EBADF);
	EDO_AWAIT_POLL(edo_stream_poll_write(self->r, cx, "x", 1, &self->n));
	CHECK_EQ(self->n, -EBADF);
	EDO_END();
}

TEST(pipe_streams)
{
	edo_stream *r, *w;
	CHECK_EQ(edo_pipe_new(&r, &w), EDO_ENORUNTIME);
	RUN_ALL_WAYS(pipes, );
}

TEST_MAIN()
