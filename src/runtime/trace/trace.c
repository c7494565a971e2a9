/* The trace state of a runtime and its "edo-trace" thread: the stall
 * watchdog, the dump signal and the console server.
 *
 * One thread per runtime that wants any of the three (poll timing alone
 * needs none).  It sleeps in poll(2) on a self-pipe, the console's
 * listening socket and its clients, waking every sampling period when it
 * watches for stalls.  Being a plain thread, not a task, it keeps answering
 * when every worker is stuck, which is when a console is needed most.
 *
 *   self-pipe 'D'  the dump signal arrived: write a task dump to stderr
 *   self-pipe 'Q'  the runtime shuts down: leave
 *   listen fd      a console connects (same user only: SO_PEERCRED)
 *   client fd      "snap" → a snapshot (protocol below); EOF → close
 *
 * Console protocol, version 1: the client sends the line "snap"; the server
 * answers with lines of space-separated key=value fields, ending "end":
 *
 *   edo 1
 *   rt flavor=multi|current workers=N uptime_ms=.. alive=.. inject=..
 *      bthreads=.. bidle=.. bqueue=.. ioreg=.. iodereg=.. ioev=.. stalls=..
 *      timing=0|1 watch=0|1
 *   w i=N polls=.. steals=.. stealops=.. parks=.. unparks=.. local=..
 *      remote=.. overflows=.. depth=.. busy_ns=.. mean_ns=.. forced=..
 *   t id=.. state=idle|scheduled|running kind=.. polls=.. idle_ms=..
 *      busy_ns=.. site=FILE:LINE where=FILE:LINE fn=.. name=..
 *   s at_ms=.. worker=.. id=.. ms=.. site=FILE:LINE name=..
 *   end
 *
 * (each record on one line; values never contain spaces: they are replaced
 * by '_'; "-" is an unknown value; `name` comes last).
 *
 * The stall watchdog samples each worker's poll word (protocol in
 * trace.h) every threshold/4 (1 to 50 ms) and reports a poll seen for
 * longer than the threshold once.  The reported time is a lower bound: the
 * poll began before the first sample that saw it, and before the epoch
 * (sample) after the one its word names; and time the worker's
 * thread spent queued for a CPU is left out (from schedstat: a thread
 * blocked in the kernel counts wall time less its run-queue waits, a
 * running or runnable one only its CPU time, as a wait in progress is not
 * in the counters yet), so an overloaded machine reports no stall.
 */
#define _GNU_SOURCE
#include "runtime/trace/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "runtime/sched.h"

#define MAX_CLIENTS 8
#define SNAP_MAX_TASKS 100000

/* ---- builder checks, creation ------------------------------------------------------- */

static bool fault_signal(int sig)
{
	return sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV || sig == SIGBUS ||
	       sig == SIGFPE || sig == SIGILL;
}

int edo__trace_validate(const edo_runtime_builder *b)
{
	if (b->stall_threshold_ms > 3600u * 1000u || b->poll_time_sample > 65536)
		return -EINVAL;
	/* Signals between the classic ones and SIGRTMIN are the C library's
	 * own (glibc's thread cancellation and setxid): sigaction refuses them. */
	if (b->dump_signal &&
	    (b->dump_signal < 1 || b->dump_signal >= _NSIG || fault_signal(b->dump_signal) ||
	     (b->dump_signal >= 32 && b->dump_signal < SIGRTMIN)))
		return -EINVAL;
	if (b->console_path) {
		const char *path = b->console_path;
		if (!path[0])
			return -EINVAL;
		if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path) - 16)
			return -ENAMETOOLONG;
		/* What console_listen() would refuse, refused before any thread
		 * starts: a file in the way, a parent that is not a usable
		 * directory. */
		struct stat st;
		if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
			return -EEXIST;
		char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
		const char *slash = strrchr(path, '/');
		if (!slash)
			(void)snprintf(dir, sizeof dir, ".");
		else if (slash == path)
			(void)snprintf(dir, sizeof dir, "/");
		else
			(void)snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
		if (stat(dir, &st) < 0)
			return -errno;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
		if (access(dir, W_OK | X_OK) < 0)
			return -errno;
	}
	return 0;
}

/* membarrier(2), registered once per process: the watchdog's side of the
 * stall watch's handshake (trace.h).  False where the kernel lacks it. */
static int membarrier_state; /* 0 unknown, 1 ready, -1 unavailable */
static pthread_mutex_t membarrier_lock = PTHREAD_MUTEX_INITIALIZER;

static bool membarrier_ready(void)
{
	pthread_mutex_lock(&membarrier_lock);
	/* The fallback is tested by setting EDO_TRACE_NO_MEMBARRIER=1 before
	 * the first runtime with stall detection is built. */
	const char *off = getenv("EDO_TRACE_NO_MEMBARRIER"); /* NOLINT(concurrency-mt-unsafe) */
	if (membarrier_state == 0 && off && *off == '1')
		membarrier_state = -1;
	if (membarrier_state == 0) {
		long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
		membarrier_state =
			cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
					syscall(__NR_membarrier,
						MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
						0) == 0 ?
				1 :
				-1;
	}
	bool ok = membarrier_state == 1;
	pthread_mutex_unlock(&membarrier_lock);
	return ok;
}

static void membarrier_all(void)
{
	(void)syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
}

/* Thread @tid's time on a CPU and time waiting for one (run queue), from
 * /proc/self/task/TID/schedstat; false if unknown (no CONFIG_SCHED_INFO). */
static bool thread_times(int tid, int64_t *run_ns, int64_t *wait_ns)
{
	char path[64];
	(void)snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[96];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	char *end;
	long long run = strtoll(buf, &end, 10);
	if (end == buf)
		return false;
	char *end2;
	long long wait = strtoll(end, &end2, 10);
	if (end2 == end)
		return false;
	*run_ns = run;
	*wait_ns = wait;
	return true;
}

/* Whether thread @tid is running or waiting for a CPU ('R'), rather than
 * blocked in the kernel. */
static bool thread_runnable(int tid)
{
	char path[64];
	(void)snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	char buf[256];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = 0;
	const char *p = strrchr(buf, ')'); /* the name may hold spaces and parens */
	return !p || p[1] != ' ' || p[2] == 'R';
}

int edo__trace_new(edo__sched *s, const edo_runtime_builder *b, uint32_t nworkers)
{
	if (!b->poll_time_histogram && !b->stall_detection && !b->dump_signal && !b->console_path)
		return 0;
	edo__trace *tr = calloc(1, sizeof *tr);
	if (!tr)
		return -ENOMEM;
	tr->tw = aligned_alloc(64, sizeof(edo__tw) * nworkers);
	tr->console_path = b->console_path ? strdup(b->console_path) : NULL;
	if (!tr->tw || (b->console_path && !tr->console_path)) {
		free(tr->tw);
		free(tr->console_path);
		free(tr);
		return -ENOMEM;
	}
	memset(tr->tw, 0, sizeof(edo__tw) * nworkers);
	tr->sched = s;
	tr->nworkers = nworkers;
	tr->timing = b->poll_time_histogram;
	tr->watch = b->stall_detection;
	tr->sample = 1;
	while (tr->sample < b->poll_time_sample)
		tr->sample <<= 1;
	bool fenced = tr->watch && membarrier_ready();
	for (uint32_t i = 0; i < nworkers; i++) {
		edo__tw *tw = &tr->tw[i];
		tw->timing = tr->timing;
		tw->watch = tr->watch;
		tw->fenced = fenced;
		tw->sample = tw->sample_left = tr->sample;
		atomic_init(&tw->tid, 0);
	}
	unsigned ms =
		b->stall_threshold_ms ? b->stall_threshold_ms : EDO_STALL_THRESHOLD_DEFAULT_MS;
	tr->stall_ns = (uint64_t)ms * 1000000u;
	tr->on_stall = b->on_stall;
	tr->stall_ud = b->stall_ud;
	tr->dump_signal = b->dump_signal;
	tr->start_ns = edo__mono_ns();
	pthread_mutex_init(&tr->log_lock, NULL);
	tr->pipe_rd = tr->pipe_wr = tr->listen_fd = -1;
	s->trace = tr;
	return 0;
}

edo__tw *edo__trace_slot(edo__sched *s, uint32_t worker)
{
	edo__trace *tr = s->trace;
	if (!tr || (!tr->timing && !tr->watch) || worker >= tr->nworkers)
		return NULL;
	edo__tw *tw = &tr->tw[worker];
	atomic_store_explicit(&tw->tid, (int)gettid(), memory_order_relaxed);
	return tw;
}

uint64_t edo__trace_uptime_ms(edo__sched *s)
{
	return s->trace ? (edo__mono_ns() - s->trace->start_ns) / 1000000u : 0;
}

void edo__trace_copy_name(char *dst, const char *src)
{
	(void)snprintf(dst, EDO_TASK_NAME_MAX, "%s", src ? src : "");
}

void edo__tw_wait_inspector(edo__tw *tw, uint64_t poll)
{
	/* The watchdog holds us for the few loads of one report. */
	while (atomic_load_explicit(&tw->ack, memory_order_acquire) != poll)
		sched_yield();
}

/* ---- the dump signal ------------------------------------------------------------------- */

/* Process-wide: one handler for every dump signal, writing 'D' to the pipe
 * of each runtime that asked for that signal.  Unregistering waits until no
 * handler is running, so a handler never writes to a closed (and maybe
 * reused) descriptor. */
#define SIG_SLOTS 32
static struct {
	_Atomic(int) sig;
	_Atomic(int) fd;
} sig_slots[SIG_SLOTS];
static _Atomic(int) sig_in_handler;
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction sig_old[_NSIG];
static int sig_users[_NSIG];

static void on_dump_signal(int sig, siginfo_t *info, void *uctx)
{
	int saved = errno;
	atomic_fetch_add(&sig_in_handler, 1);
	for (int i = 0; i < SIG_SLOTS; i++) {
		if (atomic_load(&sig_slots[i].sig) != sig)
			continue;
		int fd = atomic_load(&sig_slots[i].fd);
		if (fd >= 0) {
			ssize_t n = write(fd, "D", 1);
			(void)n; /* a full pipe has a dump pending already */
		}
	}
	atomic_fetch_sub(&sig_in_handler, 1);
	/* Chain to the handler we replaced, if it was a function. */
	const struct sigaction *old = &sig_old[sig];
	if (old->sa_flags & SA_SIGINFO) {
		if (old->sa_sigaction)
			old->sa_sigaction(sig, info, uctx);
	} else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
	}
	errno = saved;
}

static int sig_register(int sig, int fd)
{
	pthread_mutex_lock(&sig_lock);
	int slot = -1;
	for (int i = 0; i < SIG_SLOTS && slot < 0; i++)
		if (atomic_load(&sig_slots[i].sig) == 0)
			slot = i;
	if (slot < 0) {
		pthread_mutex_unlock(&sig_lock);
		return -EBUSY;
	}
	if (sig_users[sig] == 0) {
		struct sigaction sa = {0};
		sa.sa_sigaction = on_dump_signal;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		sigemptyset(&sa.sa_mask);
		/* The action to chain to is in place before our handler is,
		 * which may run at once. */
		struct sigaction old;
		if (sigaction(sig, NULL, &old) < 0) {
			int e = -errno;
			pthread_mutex_unlock(&sig_lock);
			return e;
		}
		sig_old[sig] = old.sa_sigaction == on_dump_signal ? (struct sigaction){0} : old;
		if (sigaction(sig, &sa, NULL) < 0) {
			int e = -errno;
			sig_old[sig] = (struct sigaction){0};
			pthread_mutex_unlock(&sig_lock);
			return e;
		}
	}
	sig_users[sig]++;
	atomic_store(&sig_slots[slot].fd, fd);
	atomic_store(&sig_slots[slot].sig, sig);
	pthread_mutex_unlock(&sig_lock);
	return 0;
}

static void sig_unregister(int sig, int fd)
{
	pthread_mutex_lock(&sig_lock);
	for (int i = 0; i < SIG_SLOTS; i++) {
		if (atomic_load(&sig_slots[i].sig) == sig && atomic_load(&sig_slots[i].fd) == fd) {
			atomic_store(&sig_slots[i].fd, -1);
			atomic_store(&sig_slots[i].sig, 0);
			if (--sig_users[sig] == 0) {
				/* Put back what we replaced, unless someone replaced us. */
				struct sigaction cur;
				if (sigaction(sig, NULL, &cur) == 0 &&
				    cur.sa_sigaction == on_dump_signal) {
					struct sigaction old = sig_old[sig];
					if (!(old.sa_flags & SA_SIGINFO) && !old.sa_handler)
						old.sa_handler = SIG_DFL;
					(void)sigaction(sig, &old, NULL);
				}
			}
			break;
		}
	}
	pthread_mutex_unlock(&sig_lock);
	/* A handler that loaded the old fd may still be writing to it. */
	while (atomic_load(&sig_in_handler) != 0)
		sched_yield();
}

/* ---- the stall watchdog -------------------------------------------------------------- */

static void stall_default(const edo_stall_info *st)
{
	char site[PATH_MAX + 32] = "";
	if (st->spawn_file)
		(void)snprintf(site, sizeof site, " (spawned at %s:%d)", st->spawn_file,
			       st->spawn_line);
	(void)fprintf(stderr,
		      "edo: stall: task %" PRIu64 " \"%s\"%s has been in one poll for %" PRIu64
		      " ms on worker %u: a blocking call inside a task?\n",
		      st->task_id, st->name, site, st->elapsed_ms, st->worker);
}

static void stall_report(edo__trace *tr, const edo_stall_info *st)
{
	atomic_fetch_add_explicit(&tr->stalls, 1, memory_order_relaxed);
	pthread_mutex_lock(&tr->log_lock);
	tr->log[tr->log_count % EDO__STALL_LOG] = *st;
	tr->log_count++;
	pthread_mutex_unlock(&tr->log_lock);
	if (tr->on_stall)
		tr->on_stall(tr->stall_ud, st);
	else
		stall_default(st);
}

/* Sample every worker's poll word; report polls seen longer than the
 * threshold (once each).  The time a poll's thread spent waiting for a CPU
 * (an overloaded machine) does not count: a stall is the poll's own doing,
 * running or blocked. */
/* The latest instant a poll whose word names epoch @e began at: when the
 * epoch after it began (or now, if @e is the current one). */
static uint64_t poll_began_by(const edo__trace *tr, uint32_t e, uint64_t now)
{
	uint32_t behind = (tr->epoch - e) & EDO__TW_EPOCH_MASK;
	if (behind == 0)
		return now;
	if (behind >= EDO__TW_EPOCHS)
		behind = EDO__TW_EPOCHS - 1; /* older than we remember: the oldest we do */
	return tr->epoch_ns[(tr->epoch - behind + 1) & (EDO__TW_EPOCHS - 1)];
}

static void watch_sample(edo__trace *tr, uint64_t now)
{
	/* A new epoch: polls that begin from now on name it. */
	tr->epoch = (tr->epoch + 1) & EDO__TW_EPOCH_MASK;
	tr->epoch_ns[tr->epoch & (EDO__TW_EPOCHS - 1)] = now;
	for (uint32_t i = 0; i < tr->nworkers; i++)
		atomic_store_explicit(&tr->tw[i].epoch, tr->epoch, memory_order_relaxed);
	for (uint32_t i = 0; i < tr->nworkers; i++) {
		edo__tw *tw = &tr->tw[i];
		uint64_t v = atomic_load_explicit(&tw->poll, memory_order_acquire);
		int tid = atomic_load_explicit(&tw->tid, memory_order_relaxed);
		if (!(v & EDO__TW_IN_POLL) || v != tw->w_seen) {
			tw->w_seen = v;
			tw->w_since_ns =
				poll_began_by(tr, (uint32_t)(v >> EDO__TW_EPOCH_SHIFT), now);
			tw->w_times = (v & EDO__TW_IN_POLL) && tid &&
				      thread_times(tid, &tw->w_run0_ns, &tw->w_wait0_ns);
			if (!(v & EDO__TW_IN_POLL))
				continue;
		}
		if (tw->w_reported == v || now - tw->w_since_ns < tr->stall_ns)
			continue;
		uint64_t elapsed = now - tw->w_since_ns;
		int64_t run, wait;
		if (tw->w_times && thread_times(tid, &run, &wait)) {
			/* Blocked in the kernel: the wall time, less what it spent
			 * queued for a CPU since the first sample that saw the
			 * poll (before it, the thread is taken to have been on a
			 * CPU or blocked).  Running or runnable: only its CPU time
			 * since that sample (a wait in progress is not in the
			 * counters yet), as a preempted thread's poll is not
			 * stalled. */
			int64_t own = thread_runnable(tid) ?
					      run - tw->w_run0_ns :
					      (int64_t)elapsed - (wait - tw->w_wait0_ns);
			elapsed = own > 0 ? (uint64_t)own : 0;
			if (elapsed < tr->stall_ns)
				continue; /* preempted, not stalled (yet) */
		}
		/* Pin the poll (the handshake in trace.h): then read its task. */
		bool pinned;
		if (tw->fenced) {
			atomic_store_explicit(&tw->inspect, v, memory_order_relaxed);
			membarrier_all();
			pinned = atomic_load_explicit(&tw->poll, memory_order_acquire) == v;
		} else {
			atomic_store_explicit(&tw->inspect, v, memory_order_seq_cst);
			pinned = atomic_load_explicit(&tw->poll, memory_order_seq_cst) == v;
		}
		edo_stall_info st = {0};
		if (pinned) {
			edo__task *t = atomic_load_explicit(&tw->task, memory_order_relaxed);
			edo__task_cold *c = edo__task_cold_of(t);
			st = (edo_stall_info){
				.task_id = t->id,
				.spawn_file = c->file,
				.spawn_line = c->line,
				.worker = i,
				.elapsed_ms = elapsed / 1000000u,
				.at_ms = (now - tr->start_ns) / 1000000u,
			};
			edo__trace_copy_name(st.name, c->name);
		}
		/* Let the worker go, whether we read or it had ended the poll. */
		atomic_store_explicit(&tw->ack, v, memory_order_release);
		if (!pinned)
			continue;
		tw->w_reported = v;
		stall_report(tr, &st);
	}
}

int edo_runtime_stalls(edo_runtime *rt, edo_stall_info *out, size_t max)
{
	if (!rt || (!out && max))
		return -EINVAL;
	edo__trace *tr = edo__runtime_sched(rt)->trace;
	if (!tr)
		return 0;
	pthread_mutex_lock(&tr->log_lock);
	uint64_t have = tr->log_count < EDO__STALL_LOG ? tr->log_count : EDO__STALL_LOG;
	if (have > max)
		have = max;
	for (uint64_t k = 0; k < have; k++)
		out[k] = tr->log[(tr->log_count - have + k) % EDO__STALL_LOG];
	pthread_mutex_unlock(&tr->log_lock);
	return (int)have;
}

/* ---- the console server -------------------------------------------------------------- */

/* Bind the socket where only we can reach it, then move it into place: a
 * socket file takes the process's umask at bind(2), and chmod after it
 * leaves a window; a 0700 directory closes the window. */
/* Remove the console's socket file, if the path still names the one this
 * runtime put there: another runtime given the same path has replaced it,
 * and its socket is not ours to remove. */
static void console_unlink(edo__trace *tr)
{
	if (!tr->console_bound || !tr->console_path)
		return;
	tr->console_bound = false;
	struct stat st;
	if (lstat(tr->console_path, &st) == 0 && st.st_dev == tr->console_dev &&
	    st.st_ino == tr->console_ino)
		unlink(tr->console_path);
}

static int console_listen(edo__trace *tr)
{
	const char *path = tr->console_path;
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return -EEXIST;
	/* The parent directory of @path: "." for a bare name, "" for "/x". */
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(path, '/');
	if (!slash)
		(void)snprintf(dir, sizeof dir, "./.edo-console-XXXXXX");
	else
		(void)snprintf(dir, sizeof dir, "%.*s/.edo-console-XXXXXX", (int)(slash - path),
			       path);
	if (!mkdtemp(dir))
		return -errno;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int rc = 0;
	if ((size_t)snprintf(a.sun_path, sizeof a.sun_path, "%s/s", dir) >= sizeof a.sun_path) {
		rmdir(dir);
		return -ENAMETOOLONG;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		rmdir(dir);
		return rc;
	}
	/* The file's identity is taken before it moves into place (a rename
	 * keeps it): only that file is removed when the runtime goes. */
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || chmod(a.sun_path, 0600) < 0 ||
	    listen(fd, 16) < 0 || lstat(a.sun_path, &st) < 0 || rename(a.sun_path, path) < 0) {
		rc = -errno;
		close(fd);
		unlink(a.sun_path);
		rmdir(dir);
		return rc;
	}
	rmdir(dir);
	tr->console_dev = st.st_dev;
	tr->console_ino = st.st_ino;
	tr->listen_fd = fd;
	tr->console_bound = true;
	return 0;
}

static bool peer_is_us(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof cr;
	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.uid == geteuid();
}

/* fprintf into the snapshot's memory stream, whose errors show at fclose. */
__attribute__((format(printf, 2, 3))) static void put(FILE *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	(void)vfprintf(f, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
	va_end(ap);
}

/* Replace what would break a space-separated field. */
static void field(FILE *f, const char *key, const char *v)
{
	put(f, " %s=", key);
	if (!v || !*v) {
		put(f, "-");
		return;
	}
	for (; *v; v++)
		put(f, "%c", (unsigned char)*v <= ' ' || *v == 0x7f ? '_' : *v);
}

static void field_site(FILE *f, const char *key, const char *file, int line)
{
	if (!file) {
		put(f, " %s=-", key);
		return;
	}
	field(f, key, file);
	put(f, ":%d", line);
}

static const char *state_name(edo_task_state s)
{
	return s == EDO_TASK_RUNNING ? "running" : s == EDO_TASK_SCHEDULED ? "scheduled" : "idle";
}

static const char *kind_name(edo_task_kind k)
{
	return k == EDO_TASK_COROUTINE ? "coroutine" :
	       k == EDO_TASK_FIBER     ? "fiber" :
	       k == EDO_TASK_FUTURE    ? "future" :
					 "-";
}

static void snapshot(edo__trace *tr, FILE *f)
{
	edo__sched *s = tr->sched;
	edo_runtime_metrics m;
	edo__metrics_runtime(s, &m);
	put(f, "edo 1\n");
	put(f,
	    "rt flavor=%s workers=%u uptime_ms=%" PRIu64 " alive=%zu inject=%zu bthreads=%zu "
	    "bidle=%zu bqueue=%zu ioreg=%" PRIu64 " iodereg=%" PRIu64 " ioev=%" PRIu64
	    " stalls=%" PRIu64 " timing=%d watch=%d\n",
	    s->flavor == EDO_RT_MULTI_THREAD ? "multi" : "current", m.workers,
	    edo__trace_uptime_ms(s), m.alive_tasks, m.inject_queue_depth, m.blocking_threads,
	    m.blocking_idle_threads, m.blocking_queue_depth, m.io_registrations,
	    m.io_deregistrations, m.io_ready_events, m.stalls, tr->timing, tr->watch);
	for (uint32_t i = 0; i < m.workers; i++) {
		edo_worker_metrics w;
		if (edo__metrics_worker(s, i, &w) < 0)
			break;
		put(f,
		    "w i=%u polls=%" PRIu64 " steals=%" PRIu64 " stealops=%" PRIu64
		    " parks=%" PRIu64 " unparks=%" PRIu64 " local=%" PRIu64 " remote=%" PRIu64
		    " overflows=%" PRIu64 " depth=%" PRIu64 " busy_ns=%" PRIu64 " mean_ns=%" PRIu64
		    " forced=%" PRIu64 "\n",
		    i, w.polls, w.steals, w.steal_operations, w.parks, w.unparks, w.local_schedules,
		    w.remote_schedules, w.overflows, w.local_queue_depth, w.busy_ns, w.mean_poll_ns,
		    w.budget_forced_yields);
	}
	edo_task_info *tasks = NULL;
	size_t n = 0;
	if (edo__trace_tasks(s, &tasks, &n) == 0) {
		for (size_t k = 0; k < n && k < SNAP_MAX_TASKS; k++) {
			const edo_task_info *t = &tasks[k];
			put(f, "t id=%" PRIu64 " state=%s kind=%s polls=%u", t->id,
			    state_name(t->state), kind_name(t->kind), t->polls);
			if (t->idle_ms < 0)
				put(f, " idle_ms=-");
			else
				put(f, " idle_ms=%" PRId64, t->idle_ms);
			put(f, " busy_ns=%" PRIu64, t->busy_ns);
			field_site(f, "site", t->spawn_file, t->spawn_line);
			const edo_task_frame *fr = t->nframes ? &t->frames[t->nframes - 1] : NULL;
			field_site(f, "where", fr && fr->line ? fr->file : NULL, fr ? fr->line : 0);
			field(f, "fn", fr ? fr->fn : NULL);
			field(f, "name", t->name);
			put(f, "\n");
		}
		free(tasks);
	}
	edo_stall_info log[EDO__STALL_LOG];
	pthread_mutex_lock(&tr->log_lock);
	uint64_t have = tr->log_count < EDO__STALL_LOG ? tr->log_count : EDO__STALL_LOG;
	for (uint64_t k = 0; k < have; k++)
		log[k] = tr->log[(tr->log_count - have + k) % EDO__STALL_LOG];
	pthread_mutex_unlock(&tr->log_lock);
	for (uint64_t k = 0; k < have; k++) {
		put(f, "s at_ms=%" PRIu64 " worker=%u id=%" PRIu64 " ms=%" PRIu64, log[k].at_ms,
		    log[k].worker, log[k].task_id, log[k].elapsed_ms);
		field_site(f, "site", log[k].spawn_file, log[k].spawn_line);
		field(f, "name", log[k].name);
		put(f, "\n");
	}
	put(f, "end\n");
}

static bool write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* A client sent something: answer each "snap" line.  False: drop it. */
static bool serve_client(edo__trace *tr, int fd)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0)
		return false;
	buf[n] = 0;
	for (char *line = buf, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = 0;
		if (strcmp(line, "snap") != 0)
			continue;
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		if (!f)
			return false;
		snapshot(tr, f);
		bool ok = fclose(f) == 0 && write_all(fd, text, len);
		free(text);
		if (!ok)
			return false;
	}
	return true;
}

/* ---- the thread ------------------------------------------------------------------------- */

static void *trace_main(void *arg)
{
	edo__trace *tr = arg;
	pthread_setname_np(pthread_self(), "edo-trace");
	int clients[MAX_CLIENTS];
	int nclients = 0;
	uint64_t period = tr->stall_ns / 4;
	if (period < 1000000u)
		period = 1000000u;
	if (period > 50000000u)
		period = 50000000u;
	uint64_t next = edo__mono_ns() + period;
	for (;;) {
		struct pollfd p[2 + MAX_CLIENTS];
		int np = 0;
		p[np++] = (struct pollfd){.fd = tr->pipe_rd, .events = POLLIN};
		if (tr->listen_fd >= 0)
			p[np++] = (struct pollfd){.fd = tr->listen_fd, .events = POLLIN};
		int first_client = np;
		for (int i = 0; i < nclients; i++)
			p[np++] = (struct pollfd){.fd = clients[i], .events = POLLIN};
		int timeout = -1;
		if (tr->watch) {
			uint64_t now = edo__mono_ns();
			timeout = now >= next ? 0 : (int)((next - now + 999999u) / 1000000u);
		}
		int r = poll(p, (nfds_t)np, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (tr->watch) {
			uint64_t now = edo__mono_ns();
			if (now >= next) {
				watch_sample(tr, now);
				next = now + period;
			}
		}
		if (r <= 0)
			continue;
		if (p[0].revents) {
			char cmd[64];
			ssize_t n = read(tr->pipe_rd, cmd, sizeof cmd);
			bool quit = false, dump = false;
			for (ssize_t i = 0; i < n; i++) {
				quit |= cmd[i] == 'Q';
				dump |= cmd[i] == 'D';
			}
			if (dump) {
				(void)edo__trace_dump(tr->sched, stderr);
				(void)fflush(stderr);
			}
			if (quit)
				break;
		}
		if (tr->listen_fd >= 0 && p[1].revents) {
			int c = accept4(tr->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0) {
				struct timeval tv = {.tv_sec = 2};
				(void)setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
				if (nclients < MAX_CLIENTS && peer_is_us(c))
					clients[nclients++] = c;
				else
					close(c);
			}
		}
		for (int i = np - 1; i >= first_client; i--) {
			if (!p[i].revents)
				continue;
			int k = i - first_client;
			if (!serve_client(tr, clients[k])) {
				close(clients[k]);
				clients[k] = clients[--nclients];
			}
		}
	}
	for (int i = 0; i < nclients; i++)
		close(clients[i]);
	return NULL;
}

int edo__trace_start(edo__sched *s)
{
	edo__trace *tr = s->trace;
	if (!tr || (!tr->watch && !tr->dump_signal && !tr->console_path))
		return 0;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	tr->pipe_rd = fds[0];
	tr->pipe_wr = fds[1];
	int rc = 0;
	if (tr->console_path)
		rc = console_listen(tr);
	if (rc == 0 && tr->dump_signal)
		rc = sig_register(tr->dump_signal, tr->pipe_wr);
	if (rc < 0)
		goto fail;
	/* The thread takes no signals: they go to the program's threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&tr->thread, NULL, trace_main, tr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		if (tr->dump_signal)
			sig_unregister(tr->dump_signal, tr->pipe_wr);
		goto fail;
	}
	tr->thread_started = true;
	return 0;
fail:
	if (tr->listen_fd >= 0) {
		close(tr->listen_fd);
		tr->listen_fd = -1;
	}
	console_unlink(tr);
	close(tr->pipe_rd);
	close(tr->pipe_wr);
	tr->pipe_rd = tr->pipe_wr = -1;
	return rc;
}

void edo__trace_stop(edo__sched *s)
{
	edo__trace_close_dumps(s);
	edo__trace *tr = s->trace;
	if (!tr || tr->stopped)
		return;
	tr->stopped = true;
	if (!tr->thread_started)
		return;
	if (tr->dump_signal)
		sig_unregister(tr->dump_signal, tr->pipe_wr);
	ssize_t n = write(tr->pipe_wr, "Q", 1);
	(void)n;
	pthread_join(tr->thread, NULL);
	tr->thread_started = false;
	if (tr->listen_fd >= 0)
		close(tr->listen_fd);
	tr->listen_fd = -1;
	console_unlink(tr);
	close(tr->pipe_rd);
	close(tr->pipe_wr);
	tr->pipe_rd = tr->pipe_wr = -1;
}

void edo__trace_free(edo__trace *tr)
{
	if (!tr)
		return;
	pthread_mutex_destroy(&tr->log_lock);
	free(tr->tw);
	free(tr->console_path);
	free(tr);
}
