/* Out of memory and out of threads: the library never crashes, hangs or
 * leaks, and leaves no half-built object, when an allocation, a mapping or
 * a thread creation fails; the call returns -ENOMEM (-EAGAIN for a thread)
 * and changes nothing.
 *
 * The library's own calls are sent here by the linker (--wrap, in
 * tests/CMakeLists.txt: the tests link the static library): __wrap_malloc
 * counts the call as a fallible event and calls __real_malloc, which is the
 * sanitizers' malloc in their builds.  Once armed, the Nth event fails
 * (NULL with ENOMEM, MAP_FAILED, EAGAIN), or with `rest` every event from
 * the Nth on (memory stays short: the error paths must not need any).  The
 * wrappers also record what the library allocates and maps while armed, and
 * the threads it starts.  Allocations inside the C library (posix_spawn,
 * getaddrinfo, stdio) are not failed.
 *
 * Each case is an API sequence that tolerates failures: a call succeeds, or
 * returns -ENOMEM or -EAGAIN with its outputs untouched, and the sequence
 * goes on without what failed.  For N = 1, 2, ... it runs in a child
 * process, on a thread of its own (whose exit gives back the per-thread
 * caches of task cells and fiber stacks), until a run reaches no Nth event;
 * that run must have succeeded in full.  Every run must end (alarm), with
 * every call's result as above, and once its runtime is freed and every
 * thread the library started is gone, nothing the library allocated may be
 * live and no descriptor left open.  With threads the order of events
 * varies between runs: each run is judged on its own, whichever event
 * failed.
 *
 * EDO_OOM_N=7 ./test_oom --no-fork NAME runs only N = 7, in the process (for
 * gdb); EDO_OOM_VERBOSE=1 prints where each injected failure and each leak
 * is (an address in the program: addr2line -f -e test_oom ADDR).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "edo.h"
#include "fiber/stack.h"
#include "harness.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

#ifdef UNDER_TSAN
/* ThreadSanitizer sleeps for a second at exit while threads it knows of are
 * alive, and it counts the context of a fiber, kept with its stack for the
 * life of the process (src/fiber/stack.h), as one: every run that made a
 * fiber would take a second more. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "atexit_sleep_ms=0";
}
#endif

/* ==== the wrappers ============================================================================ */

enum {
	OOM_MEM = 1,    /* malloc, calloc, realloc, aligned_alloc, strdup, asprintf, ... */
	OOM_MAP = 2,    /* mmap */
	OOM_THREAD = 4, /* pthread_create */
	OOM_ALL = 7,
};

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
void __real_free(void *p);
char *__real_strdup(const char *s);
char *__real_realpath(const char *path, char *resolved);
FILE *__real_open_memstream(char **buf, size_t *size);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size);
void __wrap_free(void *p);
char *__wrap_strdup(const char *s);
int __wrap_asprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *__wrap_realpath(const char *path, char *resolved);
FILE *__wrap_open_memstream(char **buf, size_t *size);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

/* What the wrappers do: set before arming (the release store of `armed`
 * publishes it), read by every thread of the library. */
static struct {
	atomic_bool armed;    /* count events, fail the chosen ones */
	atomic_bool tracking; /* record allocations and mappings */
	unsigned kinds;       /* which events count */
	long fail_at;         /* the event that fails (1-based) */
	bool fail_rest;       /* ... and every later one */
	bool verbose;
	atomic_long events;
	atomic_long injected;
} oom;

static void oom_print_site(const char *what, const void *site)
{
	Dl_info di;
	char line[256];
	if (dladdr(site, &di) && di.dli_fname)
		snprintf(line, sizeof line, "  %s at %p (%s+0x%lx)\n", what, site, di.dli_fname,
			 (unsigned long)((const char *)site - (const char *)di.dli_fbase));
	else
		snprintf(line, sizeof line, "  %s at %p\n", what, site);
	(void)!write(2, line, strlen(line));
}

static bool oom_should_fail(unsigned kind, const void *site)
{
	if (!atomic_load_explicit(&oom.armed, memory_order_acquire) || !(oom.kinds & kind))
		return false;
	long n = atomic_fetch_add(&oom.events, 1) + 1;
	if (n < oom.fail_at || (n > oom.fail_at && !oom.fail_rest))
		return false;
	atomic_fetch_add(&oom.injected, 1);
	if (oom.verbose) {
		char what[64];
		snprintf(what, sizeof what, "event %ld (kind %u) failed", n, kind);
		oom_print_site(what, site);
	}
	return true;
}

/* ---- live allocations: an open-addressing set keyed by address ------------------------------- */

#define OOM_SLOTS ((size_t)1 << 14)

typedef struct oom_block {
	void *p;
	const void *site; /* the library's call */
	size_t size;
	unsigned kind;
} oom_block;

static oom_block oom_tab[OOM_SLOTS];
static size_t oom_nlive;
static bool oom_overflow;
static pthread_mutex_t oom_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t oom_slot(const void *p)
{
	return (size_t)((((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - 14));
}

static void oom_track(void *p, size_t size, unsigned kind, const void *site)
{
	if (!p || !atomic_load_explicit(&oom.tracking, memory_order_relaxed))
		return;
	pthread_mutex_lock(&oom_lock);
	if (oom_nlive >= OOM_SLOTS / 2) {
		oom_overflow = true;
	} else {
		size_t i = oom_slot(p);
		while (oom_tab[i].p)
			i = (i + 1) & (OOM_SLOTS - 1);
		oom_tab[i] = (oom_block){p, site, size, kind};
		oom_nlive++;
	}
	pthread_mutex_unlock(&oom_lock);
}

/* Forget @p (before it is freed, so that no other thread can be given the
 * same address meanwhile); true if it was recorded. */
static bool oom_untrack(void *p, oom_block *was)
{
	if (!p || !atomic_load_explicit(&oom.tracking, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&oom_lock);
	size_t i = oom_slot(p);
	while (oom_tab[i].p && oom_tab[i].p != p)
		i = (i + 1) & (OOM_SLOTS - 1);
	bool found = oom_tab[i].p != NULL;
	if (found) {
		if (was)
			*was = oom_tab[i];
		/* Linear probing's deletion: move back each later entry of the
		 * run whose home slot is not in (i, j]. */
		for (size_t j = i;;) {
			j = (j + 1) & (OOM_SLOTS - 1);
			if (!oom_tab[j].p)
				break;
			size_t k = oom_slot(oom_tab[j].p);
			if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
				oom_tab[i] = oom_tab[j];
				i = j;
			}
		}
		oom_tab[i].p = NULL;
		oom_nlive--;
	}
	pthread_mutex_unlock(&oom_lock);
	return found;
}

/* ---- the allocator ------------------------------------------------------------------------- */

void *__wrap_malloc(size_t size)
{
	const void *site = __builtin_return_address(0);
	if (oom_should_fail(OOM_MEM, site)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = __real_malloc(size);
	oom_track(p, size, OOM_MEM, site);
	return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
	const void *site = __builtin_return_address(0);
	if (oom_should_fail(OOM_MEM, site)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = __real_calloc(n, size);
	oom_track(p, n * size, OOM_MEM, site);
	return p;
}

void *__wrap_realloc(void *p, size_t size)
{
	const void *site = __builtin_return_address(0);
	if (oom_should_fail(OOM_MEM, site)) {
		errno = ENOMEM;
		return NULL;
	}
	oom_block was;
	bool had = oom_untrack(p, &was);
	void *q = __real_realloc(p, size);
	if (q)
		oom_track(q, size, OOM_MEM, site);
	else if (had && size)
		oom_track(p, was.size, OOM_MEM, was.site);
	return q;
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
	const void *site = __builtin_return_address(0);
	if (oom_should_fail(OOM_MEM, site)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = __real_aligned_alloc(align, size);
	oom_track(p, size, OOM_MEM, site);
	return p;
}

void __wrap_free(void *p)
{
	/* Memory the C library allocated for the library (asprintf's was
	 * recorded; open_memstream's buffer is not) may come here unrecorded. */
	oom_untrack(p, NULL);
	__real_free(p);
}

char *__wrap_strdup(const char *s)
{
	const void *site = __builtin_return_address(0);
	if (oom_should_fail(OOM_MEM, site)) {
		errno = ENOMEM;
		return NULL;
	}
	char *p = __real_strdup(s);
	oom_track(p, p ? strlen(p) + 1 : 0, OOM_MEM, site);
	return p;
}

int __wrap_asprintf(char **out, const char *fmt, ...)
{
	const void *site = __builtin_return_address(0);
	if (oom_should_fail(OOM_MEM, site)) {
		errno = ENOMEM;
		return -1;
	}
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(out, fmt, ap);
	va_end(ap);
	if (n >= 0)
		oom_track(*out, (size_t)n + 1, OOM_MEM, site);
	return n;
}

char *__wrap_realpath(const char *path, char *resolved)
{
	const void *site = __builtin_return_address(0);
	if (!resolved && oom_should_fail(OOM_MEM, site)) {
		errno = ENOMEM;
		return NULL;
	}
	char *p = __real_realpath(path, resolved);
	if (!resolved)
		oom_track(p, p ? strlen(p) + 1 : 0, OOM_MEM, site);
	return p;
}

FILE *__wrap_open_memstream(char **buf, size_t *size)
{
	if (oom_should_fail(OOM_MEM, __builtin_return_address(0))) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_open_memstream(buf, size);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	const void *site = __builtin_return_address(0);
	if (oom_should_fail(OOM_MAP, site)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	void *p = __real_mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED)
		oom_track(p, len, OOM_MAP, site);
	return p;
}

int __wrap_munmap(void *addr, size_t len)
{
	oom_untrack(addr, NULL);
	return __real_munmap(addr, len);
}

/* ---- threads: each one the library starts records its kernel id, so that a
 * run can wait until all of them are gone (their thread-local destructors
 * done); detached ones may still be on their way out after the runtime is
 * freed. */

#define OOM_MAX_THREADS 256

static atomic_int oom_tids[OOM_MAX_THREADS];
static atomic_int oom_nstarted, oom_nrecorded;

typedef struct oom_start {
	void *(*fn)(void *);
	void *arg;
} oom_start;

static void *oom_thread_main(void *arg)
{
	oom_start st = *(oom_start *)arg;
	__real_free(arg);
	int i = atomic_fetch_add(&oom_nrecorded, 1);
	if (i < OOM_MAX_THREADS)
		atomic_store(&oom_tids[i], (int)syscall(SYS_gettid));
	return st.fn(st.arg);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	if (oom_should_fail(OOM_THREAD, __builtin_return_address(0)))
		return EAGAIN;
	oom_start *st = __real_malloc(sizeof *st);
	if (!st)
		return EAGAIN;
	*st = (oom_start){fn, arg};
	atomic_fetch_add(&oom_nstarted, 1);
	int rc = __real_pthread_create(t, attr, oom_thread_main, st);
	if (rc != 0) {
		atomic_fetch_sub(&oom_nstarted, 1);
		__real_free(st);
	}
	return rc;
}

/* ==== running a sequence under failures ===================================================== */

/* A sequence returns true if every step of it succeeded. */
typedef bool (*oom_seq)(void);

#define OOM_RUN_TIMEOUT_S 20
#define OOM_EXIT_CLEAN 3 /* a run in which nothing failed */

/* A directory of the run's own: files and sockets of the sequences. */
static char oom_dir[64];

static void oom_arm(unsigned kinds, long n, bool rest)
{
	atomic_store(&oom.events, 0);
	atomic_store(&oom.injected, 0);
	atomic_store(&oom_nstarted, 0);
	atomic_store(&oom_nrecorded, 0);
	oom.kinds = kinds;
	oom.fail_at = n;
	oom.fail_rest = rest;
	oom.verbose = getenv("EDO_OOM_VERBOSE") != NULL;
	atomic_store(&oom.tracking, true);
	atomic_store_explicit(&oom.armed, true, memory_order_release);
}

/* Suspend and resume injection (events are not counted meanwhile) around
 * parts of a sequence that set up or check, not under test. */
static void oom_suspend(void)
{
	atomic_store(&oom.armed, false);
}

static void oom_resume(void)
{
	atomic_store_explicit(&oom.armed, true, memory_order_release);
}

static bool oom_any_injected(void)
{
	return atomic_load(&oom.injected) > 0;
}

/* The result of a call that may fail for want of memory or of a thread:
 * 0 or more, or -ENOMEM or -EAGAIN; anything else fails the test. */
#define OOM_RC(call)                                                                               \
	({                                                                                         \
		int rc_ = (call);                                                                  \
		if (rc_ < 0 && rc_ != -ENOMEM && rc_ != -EAGAIN)                                   \
			TEST_FAIL_AT("%s = %d (%s)", #call, rc_, edo_strerror(rc_));               \
		rc_;                                                                               \
	})

/* An output that a failed call must leave as it was. */
#define OOM_UNSET ((void *)&oom_dir)

/* The descriptors open, counted (and listed with @list). */
static int oom_count_fds(bool list)
{
	DIR *d = opendir("/proc/self/fd");
	CHECK(d != NULL);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		n++;
		char path[300], target[256];
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, target, sizeof target - 1);
		if (list && len > 0)
			fprintf(stderr, "  fd %s: %.*s\n", e->d_name, (int)len, target);
	}
	closedir(d);
	return n;
}

/* Wait until every thread the library started has exited. */
static void oom_wait_threads(void)
{
	WAIT_UNTIL(atomic_load(&oom_nrecorded) == atomic_load(&oom_nstarted), 10);
	int n = atomic_load(&oom_nrecorded);
	CHECK_LE(n, OOM_MAX_THREADS);
	for (int i = 0; i < n; i++) {
		int tid = atomic_load(&oom_tids[i]);
		WAIT_UNTIL(syscall(SYS_tgkill, getpid(), tid, 0) != 0 && errno == ESRCH, 10);
	}
}

static size_t oom_report_leaks(void)
{
	pthread_mutex_lock(&oom_lock);
	size_t n = oom_nlive;
	for (size_t i = 0; i < OOM_SLOTS && oom.verbose; i++) {
		if (!oom_tab[i].p)
			continue;
		char what[96];
		snprintf(what, sizeof what, "live %s of %zu bytes from the call",
			 oom_tab[i].kind == OOM_MAP ? "mapping" : "allocation", oom_tab[i].size);
		oom_print_site(what, oom_tab[i].site);
	}
	pthread_mutex_unlock(&oom_lock);
	return n;
}

/* ThreadSanitizer runs a signal handler only when its thread passes an
 * intercepted call, and a runtime thread asleep in a raw futex wait may not
 * for a long time: a child process watched through SIGCHLD (when its pidfd
 * could not be registered) would never be seen to exit.  Under it, the run
 * keeps SIGCHLD blocked in every thread of the library (they inherit the
 * mask) and a catcher thread, asleep in an intercepted usleep, takes each
 * SIGCHLD, as tests/test_process.c does. */
static atomic_bool oom_catching;

static void *oom_sigchld_catcher(void *arg)
{
	(void)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	while (atomic_load(&oom_catching))
		usleep(1000);
	return NULL;
}

static void oom_route_sigchld(bool on, pthread_t *catcher)
{
#ifdef UNDER_TSAN
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	if (on) {
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		atomic_store(&oom_catching, true);
		CHECK_EQ(__real_pthread_create(catcher, NULL, oom_sigchld_catcher, NULL), 0);
	} else {
		atomic_store(&oom_catching, false);
		CHECK_EQ(pthread_join(*catcher, NULL), 0);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	}
#else
	(void)on;
	(void)catcher;
	(void)oom_sigchld_catcher;
#endif
}

static void *oom_seq_thread(void *arg)
{
	oom_seq seq = (oom_seq)(uintptr_t)arg;
	return (void *)(uintptr_t)seq();
}

/* One run with event @n failing (and every later one with @rest), in this
 * process.  Returns whether anything failed. */
static bool oom_run(oom_seq seq, unsigned kinds, long n, bool rest)
{
	int fds = oom_count_fds(false);
	edo__stack_stats st0, st1;
	edo__stack_get_stats(&st0);

	pthread_t catcher;
	oom_route_sigchld(true, &catcher);
	oom_arm(kinds, n, rest);
	/* On a thread of its own: the caches it fills as a task's or a fiber's
	 * thread are given back when it exits. */
	pthread_t th;
	CHECK_EQ(__real_pthread_create(&th, NULL, oom_seq_thread, (void *)(uintptr_t)seq), 0);
	void *ret;
	CHECK_EQ(pthread_join(th, &ret), 0);
	oom_suspend();
	bool injected = oom_any_injected();
	oom_wait_threads();
	oom_route_sigchld(false, &catcher);

	/* A slab of fiber stacks (its descriptor and its mapping) is kept for
	 * the life of the process, by design (src/fiber/stack.h). */
	edo__stack_get_stats(&st1);
	size_t kept = 2 * (st1.slabs - st0.slabs);
	size_t live = oom_report_leaks();
	if (live != kept || oom_overflow)
		TEST_FAIL_AT("N=%ld%s: %zu allocations or mappings still live, %zu expected%s", n,
			     rest ? " and on" : "", live, kept,
			     oom.verbose ? "" : " (EDO_OOM_VERBOSE=1 says where)");
	if (oom_count_fds(false) != fds) {
		oom_count_fds(true);
		TEST_FAIL_AT("N=%ld%s: %d descriptors open, %d before", n, rest ? " and on" : "",
			     oom_count_fds(false), fds);
	}
	if (!injected && !ret)
		TEST_FAIL_AT("no failure was injected, yet the sequence did not succeed");
	return injected;
}

/* A fresh oom_dir for a run, and its removal once the run is over (however
 * it ended). */
static void oom_make_dir(void)
{
	snprintf(oom_dir, sizeof oom_dir, "/tmp/edo-oom-XXXXXX");
	CHECK(mkdtemp(oom_dir) != NULL);
}

static void oom_remove_dir(void)
{
	static const char *const files[] = {"a", "b", "console.sock"};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		char path[96];
		snprintf(path, sizeof path, "%s/%s", oom_dir, files[i]);
		(void)unlink(path);
	}
	CHECK_EQ(rmdir(oom_dir), 0);
}

/* What the library makes once per process and keeps, by design, made
 * before the runs so that each starts with it: the signals' self-pipe
 * (src/signal/signal.c; a child process is watched through SIGCHLD when
 * its pidfd cannot be registered). */
static void oom_prepare(void)
{
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	edo_handle *h = edo_runtime_handle(rt);
	edo_signal *s;
	CHECK_EQ(edo_signal_new_on(h, SIGWINCH, &s), 0);
	edo_signal_drop(s);
	edo_handle_drop(h);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* Run @seq with event N failing for N = 1, 2, ... (each in a child
 * process), until a run meets no failure; with @rest, event N and every
 * later one fail. */
static void oom_drive(const char *name, oom_seq seq, unsigned kinds, bool rest)
{
	oom_prepare();
	const char *only = getenv("EDO_OOM_N");
	if (only) {
		oom_make_dir();
		oom_run(seq, kinds, strtol(only, NULL, 10), rest);
		oom_remove_dir();
		return;
	}
	long n;
	for (n = 1;; n++) {
		oom_make_dir();
		fflush(NULL);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			alarm(OOM_RUN_TIMEOUT_S);
			bool injected = oom_run(seq, kinds, n, rest);
			fflush(NULL);
			/* exit(), not _exit(): the sanitizers judge the run at exit. */
			exit(injected ? 0 : OOM_EXIT_CLEAN);
		}
		int st;
		while (waitpid(pid, &st, 0) < 0)
			;
		oom_remove_dir();
		if (WIFEXITED(st) && WEXITSTATUS(st) == OOM_EXIT_CLEAN)
			break;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			continue;
		if (WIFSIGNALED(st))
			TEST_FAIL_AT(
				"%s: the run with event %ld%s failing died with signal %d (%s)%s",
				name, n, rest ? " and every later one" : "", WTERMSIG(st),
				strsignal(WTERMSIG(st)),
				WTERMSIG(st) == SIGALRM ? ": it hung" : "");
		TEST_FAIL_AT("%s: the run with event %ld%s failing exited with %d", name, n,
			     rest ? " and every later one" : "", WEXITSTATUS(st));
	}
	printf("     %s: %ld injection points%s\n", name, n - 1,
	       rest ? " (failing from N on)" : "");
}

/* ==== the sequences ========================================================================= */

/* A runtime of @flavor, or NULL (the builder's failure was checked). */
static edo_runtime *oom_runtime(edo_rt_flavor flavor, unsigned workers)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, flavor);
	b.worker_threads = workers;
	edo_runtime *rt = OOM_UNSET;
	if (OOM_RC(edo_runtime_build(&b, &rt)) < 0) {
		CHECK(rt == OOM_UNSET);
		return NULL;
	}
	return rt;
}

/* edo_block_on(@rt, @main), then free @rt; true if both succeeded.  A
 * main that did not complete is dropped (its cleanup runs). */
static bool oom_finish(edo_runtime *rt, edo_future *main)
{
	int rc = OOM_RC(edo_block_on(rt, main));
	if (rc < 0)
		edo_future_drop(main);
	CHECK_EQ(edo_runtime_free(rt), 0);
	return rc == 0;
}

/* ---- runtimes of each flavour, and every part a builder can ask for -------------------------- */

static bool oom_build_free(const edo_runtime_builder *b)
{
	edo_runtime *rt = OOM_UNSET;
	if (OOM_RC(edo_runtime_build(b, &rt)) < 0) {
		CHECK(rt == OOM_UNSET);
		return false;
	}
	CHECK_EQ(edo_runtime_free(rt), 0);
	return true;
}

static bool sigusr2_is_default(void)
{
	struct sigaction sa;
	CHECK_EQ(sigaction(SIGUSR2, NULL, &sa), 0);
	return sa.sa_handler == SIG_DFL;
}

static bool seq_runtimes(void)
{
	char sock[96];
	snprintf(sock, sizeof sock, "%s/console.sock", oom_dir);
	bool ok = true;
	for (int flavor = 0; flavor < 2; flavor++) {
		edo_runtime_builder b;
		edo_runtime_builder_init(&b, flavor ? EDO_RT_MULTI_THREAD : EDO_RT_CURRENT_THREAD);
		b.worker_threads = 2;
		ok = oom_build_free(&b) && ok;
		/* The trace thread, the console socket, the dump signal's handler,
		 * the histogram: a failed build leaves none of them behind. */
		b.start_paused = true;
		b.poll_time_histogram = true;
		b.stall_detection = true;
		b.console_path = sock;
		b.dump_signal = SIGUSR2;
		ok = oom_build_free(&b) && ok;
		CHECK(sigusr2_is_default());
		CHECK_NE(access(sock, F_OK), 0);
	}
	return ok;
}

/* ---- tasks: spawn, join, abort, a join set, spawns from outside ---------------------------- */

typedef struct kid_frame {
	EDO_FRAME;
	int n;
	int out;
	edo_sleep nap;
} kid_frame;

EDO_ASYNC(kid, kid_frame, NULL)
{
	EDO_BEGIN();
	EDO_YIELD();
	EDO_AWAIT_SLEEP(&self->nap, EDO_MS(1));
	/* A worker whose timer wheel could not be allocated once completed
	 * every sleep with EDO_ENORUNTIME (the build now fails instead). */
	CHECK_EQ(self->nap.result, 0);
	self->out = 2 * self->n;
	EDO_END();
}

typedef struct idle_frame {
	EDO_FRAME;
	edo_sleep nap;
} idle_frame;

EDO_ASYNC(idle, idle_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_SLEEP(&self->nap, EDO_SEC(3600));
	EDO_END();
}

#define SJ_KIDS 3

typedef struct sj_frame {
	EDO_FRAME;
	edo_join *outside; /* spawned through a handle before block_on */
	edo_join *h[SJ_KIDS];
	edo_join *idle;
	edo_joinset *js;
	edo_join *jh;
	int i, rc;
	bool ok;
} sj_frame;

static void sj_cleanup(sj_frame *self)
{
	edo_join_detach(self->outside);
	for (int i = 0; i < SJ_KIDS; i++)
		edo_join_detach(self->h[i]);
	edo_join_detach(self->idle);
	edo_joinset_free(self->js);
}

EDO_ASYNC(sj_main, sj_frame, sj_cleanup)
{
	EDO_BEGIN();
	self->ok = self->outside != NULL;
	for (self->i = 0; self->i < SJ_KIDS; self->i++) {
		if (OOM_RC(EDO_SPAWN(&self->h[self->i], kid, .n = self->i)) < 0) {
			CHECK(self->h[self->i] == NULL);
			self->ok = false;
		}
	}
	if (OOM_RC(EDO_SPAWN(&self->idle, idle)) < 0)
		self->ok = false;
	else
		edo_join_abort(self->idle);
	for (self->i = 0; self->i < SJ_KIDS; self->i++) {
		if (!self->h[self->i])
			continue;
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		CHECK_EQ(EDO_JOIN_OUTPUT(self->h[self->i], kid)->out, 2 * self->i);
		edo_join_detach(self->h[self->i]);
		self->h[self->i] = NULL;
	}
	if (self->idle) {
		EDO_AWAIT_JOIN(self->idle, &self->rc);
		CHECK_EQ(self->rc, -ECANCELED);
	}
	if (self->outside) {
		EDO_AWAIT_JOIN(self->outside, &self->rc);
		CHECK_EQ(self->rc, 0);
		CHECK_EQ(EDO_JOIN_OUTPUT(self->outside, kid)->out, 14);
	}
	if (OOM_RC(edo_joinset_new(&self->js)) < 0) {
		self->ok = false;
		EDO_RETURN();
	}
	for (self->i = 0; self->i < 2; self->i++)
		if (OOM_RC(EDO_JOINSET_SPAWN(self->js, kid, .n = self->i)) < 0)
			self->ok = false;
	for (;;) {
		EDO_AWAIT_POLL(edo_joinset_poll_join_next(self->js, cx, &self->jh, &self->rc));
		if (!self->jh)
			break;
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->jh);
	}
	EDO_END();
}

static bool seq_spawn(edo_rt_flavor flavor, unsigned workers)
{
	edo_runtime *rt = oom_runtime(flavor, workers);
	if (!rt)
		return false;
	edo_handle *h = edo_runtime_handle(rt);
	sj_frame m = {EDO_FRAME_INIT(sj_main)};
	if (OOM_RC(EDO_SPAWN_ON(h, &m.outside, kid, .n = 7)) < 0)
		CHECK(m.outside == NULL);
	edo_handle_drop(h);
	return oom_finish(rt, &m.edo_base) && m.ok;
}

static bool seq_spawn_ct(void)
{
	return seq_spawn(EDO_RT_CURRENT_THREAD, 1);
}

static bool seq_spawn_mt(void)
{
	return seq_spawn(EDO_RT_MULTI_THREAD, 2);
}

/* Every task on the one worker, whose timer wheel the build may fail to
 * allocate: that build used to succeed, and each sleep then completed with
 * EDO_ENORUNTIME (kid checks). */
static bool seq_spawn_one_worker(void)
{
	return seq_spawn(EDO_RT_MULTI_THREAD, 1);
}

/* ---- the blocking pool ----------------------------------------------------------------------- */

static void *bl_job(void *arg)
{
	return (void *)((uintptr_t)arg + 1);
}

static void bl_in_place(void *arg)
{
	*(int *)arg += 1;
}

/* A task that blocks in place: on a multi-thread worker the worker is
 * handed to a new thread (or, with none to be had, blocks here). */
typedef struct bip_frame {
	EDO_FRAME;
	int calls;
} bip_frame;

EDO_ASYNC(bip, bip_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_block_in_place(bl_in_place, &self->calls), 0);
	EDO_YIELD();
	CHECK_EQ(edo_block_in_place(bl_in_place, &self->calls), 0);
	EDO_END();
}

typedef struct bl_frame {
	EDO_FRAME;
	edo_join *h[3];
	edo_join *bip;
	int i, rc;
	bool mt, ok;
} bl_frame;

static void bl_cleanup(bl_frame *self)
{
	for (int i = 0; i < 3; i++)
		edo_join_detach(self->h[i]);
	edo_join_detach(self->bip);
}

EDO_ASYNC(bl_main, bl_frame, bl_cleanup)
{
	EDO_BEGIN();
	self->ok = true;
	for (self->i = 0; self->i < 3; self->i++) {
		/* The last one mandatory. */
		void *arg = (void *)(uintptr_t)(16 * self->i + 16);
		int rc = self->i < 2 ?
				 edo_spawn_blocking(bl_job, arg, &self->h[self->i]) :
				 edo_spawn_blocking_on(NULL, bl_job, arg, EDO_BLOCKING_MANDATORY,
						       &self->h[self->i]);
		if (OOM_RC(rc) < 0) {
			CHECK(self->h[self->i] == NULL);
			self->ok = false;
		}
	}
	for (self->i = 0; self->i < 3; self->i++) {
		if (!self->h[self->i])
			continue;
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		/* With no pool thread to be had, a job that is not mandatory is
		 * cancelled (edo/task.h); a mandatory one runs all the same. */
		if (self->rc == -ECANCELED && self->i < 2 && oom_any_injected()) {
			self->ok = false;
		} else {
			CHECK_EQ(self->rc, 0);
			CHECK(edo_join_blocking_result(self->h[self->i]) ==
			      (void *)(uintptr_t)(16 * self->i + 17));
		}
		edo_join_detach(self->h[self->i]);
		self->h[self->i] = NULL;
	}
	if (!self->mt)
		EDO_RETURN();
	if (OOM_RC(EDO_SPAWN(&self->bip, bip)) < 0) {
		self->ok = false;
		EDO_RETURN();
	}
	EDO_AWAIT_JOIN(self->bip, &self->rc);
	CHECK_EQ(self->rc, 0);
	CHECK_EQ(EDO_JOIN_OUTPUT(self->bip, bip)->calls, 2);
	EDO_END();
}

static bool seq_blocking(edo_rt_flavor flavor)
{
	edo_runtime *rt = oom_runtime(flavor, 2);
	if (!rt)
		return false;
	bl_frame m = {EDO_FRAME_INIT(bl_main), .mt = flavor == EDO_RT_MULTI_THREAD};
	return oom_finish(rt, &m.edo_base) && m.ok;
}

static bool seq_blocking_ct(void)
{
	return seq_blocking(EDO_RT_CURRENT_THREAD);
}

static bool seq_blocking_mt(void)
{
	return seq_blocking(EDO_RT_MULTI_THREAD);
}

/* ---- channels: oneshot, mpsc, broadcast, watch, between two tasks -------------------------- */

/* Values through the mpsc channel: fewer than one block's 32 slots (and the
 * close marker), so that no send needs a new block.  A send that does, and
 * cannot allocate it, aborts the process, as documented in edo/sync.h: that
 * event is never reached here. */
#define CH_VALUES 8
#define CH_BROADCASTS 3

typedef struct prod_frame {
	EDO_FRAME;
	edo_oneshot_tx *os;
	edo_mpsc_tx *mp;
	edo_broadcast_tx *bc;
	edo_watch_tx *wt;
	edo_mpsc_send_fut send;
	int i;
} prod_frame;

static void prod_cleanup(prod_frame *self)
{
	edo_oneshot_tx_drop(self->os);
	edo_mpsc_tx_drop(self->mp);
	edo_broadcast_tx_drop(self->bc);
	edo_watch_tx_drop(self->wt);
}

EDO_ASYNC(prod, prod_frame, prod_cleanup)
{
	EDO_BEGIN();
	if (self->os) {
		int v = 42;
		CHECK_EQ(edo_oneshot_send(self->os, &v), 0);
		self->os = NULL;
	}
	for (self->i = 0; self->mp && self->i < CH_VALUES; self->i++) {
		EDO_AWAIT(edo_mpsc_send(&self->send, self->mp, &self->i));
		CHECK_EQ(self->send.rc, 0);
	}
	for (self->i = 0; self->bc && self->i < CH_BROADCASTS; self->i++) {
		CHECK_GT(edo_broadcast_send(self->bc, &self->i), 0);
		EDO_YIELD();
	}
	if (self->wt) {
		int v = 5;
		CHECK_EQ(edo_watch_send(self->wt, &v), 0);
	}
	EDO_END();
}

typedef struct ch_frame {
	EDO_FRAME;
	edo_oneshot_rx *os;
	edo_mpsc_rx *mp;
	edo_broadcast_rx *bc[2];
	edo_watch_rx *wt;
	edo_watch_changed_fut changed;
	edo_join *h;
	int v, rc, i, k;
	bool ok;
} ch_frame;

static void ch_cleanup(ch_frame *self)
{
	edo_oneshot_rx_drop(self->os);
	edo_mpsc_rx_drop(self->mp);
	edo_broadcast_rx_drop(self->bc[0]);
	edo_broadcast_rx_drop(self->bc[1]);
	edo_watch_rx_drop(self->wt);
	edo_join_detach(self->h);
}

/* A constructor with two outputs: on failure it must leave both as they
 * were; they are then NULL, and @ok false. */
#define OOM_PAIR(ok, call, a, b)                                                                   \
	do {                                                                                       \
		(a) = OOM_UNSET;                                                                   \
		(b) = OOM_UNSET;                                                                   \
		if (OOM_RC(call) < 0) {                                                            \
			CHECK((a) == OOM_UNSET && (b) == OOM_UNSET);                               \
			(a) = NULL;                                                                \
			(b) = NULL;                                                                \
			(ok) = false;                                                              \
		}                                                                                  \
	} while (0)

EDO_ASYNC(ch_main, ch_frame, ch_cleanup)
{
	EDO_BEGIN();
	self->ok = true;
	{
		edo_oneshot_tx *os;
		edo_mpsc_tx *mp;
		edo_broadcast_tx *bc;
		edo_watch_tx *wt;
		int zero = 0;
		OOM_PAIR(self->ok, edo_oneshot_new(sizeof(int), &os, &self->os), os, self->os);
		OOM_PAIR(self->ok, edo_mpsc_new(4, sizeof(int), &mp, &self->mp), mp, self->mp);
		OOM_PAIR(self->ok, edo_broadcast_new(4, sizeof(int), &bc, &self->bc[0]), bc,
			 self->bc[0]);
		OOM_PAIR(self->ok, edo_watch_new(sizeof(int), &zero, &wt, &self->wt), wt, self->wt);
		if (bc && !(self->bc[1] = edo_broadcast_subscribe(bc)))
			self->ok = false;
		if (OOM_RC(EDO_SPAWN(&self->h, prod, .os = os, .mp = mp, .bc = bc, .wt = wt)) < 0) {
			/* Not spawned: the senders are still ours. */
			edo_oneshot_tx_drop(os);
			edo_mpsc_tx_drop(mp);
			edo_broadcast_tx_drop(bc);
			edo_watch_tx_drop(wt);
			self->ok = false;
		}
	}
	if (self->os) {
		EDO_AWAIT_POLL(edo_oneshot_poll_recv(self->os, cx, &self->v, &self->rc));
		CHECK_EQ(self->rc, self->h ? 0 : EDO_ECLOSED);
		CHECK(!self->h || self->v == 42);
	}
	for (self->i = 0; self->mp; self->i++) {
		EDO_AWAIT_POLL(edo_mpsc_poll_recv(self->mp, cx, &self->v, &self->rc));
		if (self->rc == EDO_ECLOSED)
			break;
		CHECK_EQ(self->rc, 0);
		CHECK_EQ(self->v, self->i);
	}
	CHECK_EQ(self->i, self->mp && self->h ? CH_VALUES : 0);
	for (self->k = 0; self->k < 2; self->k++) {
		for (self->i = 0; self->bc[self->k]; self->i++) {
			EDO_AWAIT_POLL(edo_broadcast_poll_recv(self->bc[self->k], cx, &self->v,
							       &self->rc));
			if (self->rc == EDO_ECLOSED)
				break;
			CHECK_EQ(self->rc, 0);
			CHECK_EQ(self->v, self->i);
		}
		CHECK_EQ(self->i, self->bc[self->k] && self->h ? CH_BROADCASTS : 0);
	}
	if (self->wt) {
		EDO_AWAIT(edo_watch_changed(&self->changed, self->wt));
		CHECK_EQ(self->changed.rc, self->h ? 0 : EDO_ECLOSED);
		edo_watch_borrow(self->wt, &self->v);
		CHECK_EQ(self->v, self->h ? 5 : 0);
	}
	if (self->h) {
		EDO_AWAIT_JOIN(self->h, &self->rc);
		CHECK_EQ(self->rc, 0);
	}
	EDO_END();
}

static bool seq_channels(edo_rt_flavor flavor)
{
	edo_runtime *rt = oom_runtime(flavor, 2);
	if (!rt)
		return false;
	ch_frame m = {EDO_FRAME_INIT(ch_main)};
	return oom_finish(rt, &m.edo_base) && m.ok;
}

static bool seq_channels_ct(void)
{
	return seq_channels(EDO_RT_CURRENT_THREAD);
}

static bool seq_channels_mt(void)
{
	return seq_channels(EDO_RT_MULTI_THREAD);
}

/* ---- fibers ------------------------------------------------------------------------------- */

static void *fib_kid(void *arg)
{
	CHECK_EQ(edo_fiber_yield(), 0);
	CHECK_EQ(edo_fiber_sleep(EDO_MS(1)), 0);
	return (void *)((uintptr_t)arg + 1);
}

static void *fib_main(void *arg)
{
	bool *ok = arg;
	edo_join *h[2];
	for (int i = 0; i < 2; i++) {
		/* The default stack, and one of another size class. */
		edo_fiber_opts o = {.stack_size = i ? (size_t)128 << 10 : 0};
		if (OOM_RC(edo_fiber_spawn(fib_kid, (void *)(uintptr_t)(16 * i + 16), &o, &h[i])) <
		    0) {
			h[i] = NULL;
			*ok = false;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (!h[i])
			continue;
		CHECK_EQ(edo_fiber_join(h[i]), 0);
		CHECK(edo_join_fiber_result(h[i]) == (void *)(uintptr_t)(16 * i + 17));
		edo_join_detach(h[i]);
	}
	return (void *)42;
}

static bool seq_fibers(edo_rt_flavor flavor)
{
	edo_runtime *rt = oom_runtime(flavor, 2);
	if (!rt)
		return false;
	bool ok = true;
	void *res = NULL;
	int rc = OOM_RC(edo_fiber_block_on(rt, fib_main, &ok, NULL, &res));
	CHECK(rc < 0 || res == (void *)42);
	CHECK_EQ(edo_runtime_free(rt), 0);
	return rc == 0 && ok;
}

static bool seq_fibers_ct(void)
{
	return seq_fibers(EDO_RT_CURRENT_THREAD);
}

static bool seq_fibers_mt(void)
{
	return seq_fibers(EDO_RT_MULTI_THREAD);
}

/* ---- TCP on 127.0.0.1: listen, connect, accept, echo; and UDP -------------------------------- */

/* What a peer sees of the other side's failure: a reset, or the end. */
static bool peer_gone(int rc)
{
	return rc == -ECONNRESET || rc == -EPIPE || rc == EDO_EEOF;
}

typedef struct srv_frame {
	EDO_FRAME;
	edo_tcp_listener *l;
	edo_tcp_stream *s;
	char buf[8];
	edo_read_exact_fut rd;
	edo_write_all_fut wa;
	int rc;
	bool ok;
} srv_frame;

static void srv_cleanup(srv_frame *self)
{
	edo_tcp_stream_close(self->s);
	edo_tcp_listener_drop(self->l);
}

EDO_ASYNC(srv, srv_frame, srv_cleanup)
{
	EDO_BEGIN();
	EDO_AWAIT_POLL(edo_tcp_listener_poll_accept(self->l, cx, &self->s, NULL, &self->rc));
	if (OOM_RC(self->rc) < 0) {
		self->s = NULL;
		EDO_RETURN();
	}
	EDO_AWAIT(edo_read_exact(&self->rd, edo_tcp_stream_io(self->s), self->buf, 5));
	if (self->rd.rc < 0) {
		CHECK(peer_gone(self->rd.rc));
		EDO_RETURN();
	}
	EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->s), self->buf, 5));
	CHECK(self->wa.rc == 0 || peer_gone(self->wa.rc));
	self->ok = self->wa.rc == 0;
	EDO_END();
}

typedef struct tcp_frame {
	EDO_FRAME;
	edo_tcp_listener *l;
	edo_addr a, from;
	edo_join *h;
	edo_tcp_connect_fut c;
	edo_read_exact_fut rd;
	edo_write_all_fut wa;
	edo_udp_socket *u;
	char buf[8];
	ssize_t n;
	int rc;
	bool ok, talked, reset;
} tcp_frame;

static void tcp_cleanup(tcp_frame *self)
{
	edo_tcp_listener_close(self->l);
	edo_tcp_stream_close(self->c.stream);
	edo_join_detach(self->h);
	edo_udp_drop(self->u);
}

EDO_ASYNC(tcp_main, tcp_frame, tcp_cleanup)
{
	EDO_BEGIN();
	self->ok = true;
	CHECK_EQ(edo_addr_parse(&self->a, "127.0.0.1:0"), 0);
	self->l = OOM_UNSET;
	if (OOM_RC(edo_tcp_listener_bind(&self->a, NULL, &self->l)) < 0) {
		CHECK(self->l == OOM_UNSET);
		self->l = NULL;
		self->ok = false;
		goto udp;
	}
	CHECK_EQ(edo_tcp_listener_local_addr(self->l, &self->a), 0);
	{
		edo_tcp_listener *l = edo_tcp_listener_clone(self->l);
		if (OOM_RC(EDO_SPAWN(&self->h, srv, .l = l)) < 0) {
			/* Not spawned: its reference to the listener is ours. */
			edo_tcp_listener_drop(l);
			self->ok = false;
			goto udp;
		}
	}
	EDO_AWAIT(edo_tcp_connect(&self->c, &self->a));
	if (self->c.rc == -ECONNRESET) {
		/* The server accepted and reset before the connect completed. */
		self->c.stream = NULL;
		self->ok = false;
		self->reset = true;
		goto join;
	}
	if (OOM_RC(self->c.rc) < 0) {
		self->c.stream = NULL;
		self->ok = false;
		edo_join_abort(self->h);
		goto join;
	}
	EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->c.stream), "hello", 5));
	CHECK(self->wa.rc == 0 || peer_gone(self->wa.rc));
	EDO_AWAIT(edo_read_exact(&self->rd, edo_tcp_stream_io(self->c.stream), self->buf, 5));
	if (self->rd.rc == 0)
		CHECK(memcmp(self->buf, "hello", 5) == 0);
	else
		CHECK(peer_gone(self->rd.rc));
	self->ok = self->ok && self->wa.rc == 0 && self->rd.rc == 0;
	self->reset =
		self->wa.rc == -ECONNRESET || self->wa.rc == -EPIPE || self->rd.rc == -ECONNRESET;
	self->talked = true;
	/* Closed before the join: a server that failed half-way must not wait
	 * for bytes that will not come. */
	edo_tcp_stream_close(self->c.stream);
	self->c.stream = NULL;
join:
	EDO_AWAIT_JOIN(self->h, &self->rc);
	if (self->rc == 0) {
		srv_frame *o = EDO_JOIN_OUTPUT(self->h, srv);
		self->ok = self->ok && o->ok;
		/* A connection accepted and then dropped for want of memory is
		 * reset, not closed: the client sees an error, not an end. */
		if ((self->talked || self->reset) && o->rc == -ENOMEM)
			CHECK(self->reset);
	} else
		CHECK_EQ(self->rc, -ECANCELED);
	edo_join_detach(self->h);
	self->h = NULL;
udp:
	CHECK_EQ(edo_addr_parse(&self->a, "127.0.0.1:0"), 0);
	self->u = OOM_UNSET;
	if (OOM_RC(edo_udp_bind(&self->a, &self->u)) < 0) {
		CHECK(self->u == OOM_UNSET);
		self->u = NULL;
		self->ok = false;
		EDO_RETURN();
	}
	CHECK_EQ(edo_udp_local_addr(self->u, &self->a), 0);
	EDO_AWAIT_POLL(edo_udp_poll_send_to(self->u, cx, "ping", 4, &self->a, &self->n));
	CHECK_EQ(self->n, 4);
	EDO_AWAIT_POLL(edo_udp_poll_recv_from(self->u, cx, self->buf, 8, &self->from, &self->n));
	CHECK_EQ(self->n, 4);
	EDO_END();
}

static bool seq_tcp(edo_rt_flavor flavor)
{
	edo_runtime *rt = oom_runtime(flavor, 2);
	if (!rt)
		return false;
	tcp_frame m = {EDO_FRAME_INIT(tcp_main)};
	return oom_finish(rt, &m.edo_base) && m.ok;
}

static bool seq_tcp_ct(void)
{
	return seq_tcp(EDO_RT_CURRENT_THREAD);
}

static bool seq_tcp_mt(void)
{
	return seq_tcp(EDO_RT_MULTI_THREAD);
}

/* ---- files, through the blocking pool ---------------------------------------------------- */

/* The result of a file-system operation under injection: as OOM_RC, or
 * -ECANCELED once something failed (a job that found no pool thread). */
static bool fs_ok(int rc)
{
	if (rc == -ECANCELED && oom_any_injected())
		return false;
	return OOM_RC(rc) >= 0;
}

typedef struct fs_frame {
	EDO_FRAME;
	char a[96], b[96];
	edo_fs_fut f;
	edo_file_open_fut o;
	edo_read_exact_fut rd;
	edo_write_all_fut wa;
	edo_read_dir_fut d;
	edo_dir_entry e;
	char buf[16];
	int rc, nent;
	bool ok;
} fs_frame;

static void fs_cleanup(fs_frame *self)
{
	edo_fs_fut_clear(&self->f);
	edo_file_close(self->o.file);
	edo_read_dir_close(self->d.dir);
}

EDO_ASYNC(fs_main, fs_frame, fs_cleanup)
{
	EDO_BEGIN();
	self->ok = true;
	EDO_AWAIT(edo_fs_write(&self->f, self->a, "hello world", 11));
	if (!fs_ok(self->f.rc)) {
		/* What follows reads the file. */
		self->ok = false;
		EDO_RETURN();
	}
	edo_fs_fut_clear(&self->f);
	EDO_AWAIT(edo_fs_read(&self->f, self->a));
	if (fs_ok(self->f.rc))
		CHECK_EQ(self->f.data.len, 11u);
	else
		self->ok = false;
	edo_fs_fut_clear(&self->f);
	EDO_AWAIT(edo_fs_metadata(&self->f, self->a));
	self->ok = fs_ok(self->f.rc) && self->ok;
	edo_fs_fut_clear(&self->f);

	EDO_AWAIT(edo_file_open(&self->o, self->a, NULL));
	if (fs_ok(self->o.rc)) {
		EDO_AWAIT(edo_read_exact(&self->rd, edo_file_stream(self->o.file), self->buf, 5));
		self->ok = fs_ok(self->rd.rc) && self->ok;
		edo_file_close(self->o.file);
	} else {
		self->ok = false;
	}
	self->o.file = NULL;

	EDO_AWAIT(edo_file_create(&self->o, self->b));
	if (fs_ok(self->o.rc)) {
		EDO_AWAIT(edo_write_all(&self->wa, edo_file_stream(self->o.file), "abcdef", 6));
		self->ok = fs_ok(self->wa.rc) && self->ok;
		EDO_AWAIT_POLL(edo_stream_poll_flush(edo_file_stream(self->o.file), cx, &self->rc));
		self->ok = fs_ok(self->rc) && self->ok;
		edo_file_close(self->o.file);
	} else {
		self->ok = false;
	}
	self->o.file = NULL;

	EDO_AWAIT(edo_read_dir_open(&self->d, oom_dir));
	if (fs_ok(self->d.rc)) {
		for (;;) {
			EDO_AWAIT_POLL(
				edo_read_dir_poll_next(self->d.dir, cx, &self->e, &self->rc));
			if (self->rc <= 0)
				break;
			self->nent++;
		}
		self->ok = fs_ok(self->rc) && self->ok;
		edo_read_dir_close(self->d.dir);
	} else {
		self->ok = false;
	}
	self->d.dir = NULL;
	EDO_END();
}

static bool seq_fs(edo_rt_flavor flavor)
{
	edo_runtime *rt = oom_runtime(flavor, 2);
	if (!rt)
		return false;
	fs_frame m = {EDO_FRAME_INIT(fs_main)};
	snprintf(m.a, sizeof m.a, "%s/a", oom_dir);
	snprintf(m.b, sizeof m.b, "%s/b", oom_dir);
	return oom_finish(rt, &m.edo_base) && m.ok;
}

static bool seq_fs_ct(void)
{
	return seq_fs(EDO_RT_CURRENT_THREAD);
}

static bool seq_fs_mt(void)
{
	return seq_fs(EDO_RT_MULTI_THREAD);
}

/* ---- child processes ------------------------------------------------------------------------ */

typedef struct proc_frame {
	EDO_FRAME;
	edo_stream *rd, *wr;
	edo_command *c;
	edo_child *ch;
	edo_child_wait_fut w;
	edo_output_fut o;
	bool args_ok, ok;
} proc_frame;

static void proc_cleanup(proc_frame *self)
{
	edo_stream_drop(self->rd);
	edo_stream_drop(self->wr);
	edo_command_free(self->c);
	edo_child_drop(self->ch);
	edo_buf_free(&self->o.out);
	edo_buf_free(&self->o.err);
}

/* A command with the environment cleared (so that the number of events
 * does not depend on the environment's size) and the argument @arg. */
static edo_command *proc_command(proc_frame *self, const char *program, const char *arg)
{
	edo_command *c = OOM_UNSET;
	if (OOM_RC(edo_command_new(program, &c)) < 0) {
		CHECK(c == OOM_UNSET);
		return NULL;
	}
	self->args_ok = OOM_RC(edo_command_env_clear(c)) == 0;
	self->args_ok = OOM_RC(edo_command_env(c, "EDO_OOM", "1")) == 0 && self->args_ok;
	const char *const args[] = {arg, NULL};
	self->args_ok = OOM_RC(edo_command_args(c, args)) == 0 && self->args_ok;
	return c;
}

EDO_ASYNC(proc_main, proc_frame, proc_cleanup)
{
	EDO_BEGIN();
	self->ok = true;
	if (OOM_RC(edo_pipe_new(&self->rd, &self->wr)) < 0) {
		self->rd = self->wr = NULL;
		self->ok = false;
	}
	edo_stream_drop(self->rd);
	edo_stream_drop(self->wr);
	self->rd = self->wr = NULL;

	if (!(self->c = proc_command(self, "/bin/true", "x"))) {
		self->ok = false;
		EDO_RETURN();
	}
	self->ch = OOM_UNSET;
	if (OOM_RC(edo_command_spawn(self->c, &self->ch)) < 0) {
		CHECK(self->ch == OOM_UNSET);
		self->ch = NULL;
		self->ok = false;
	} else {
		EDO_AWAIT(edo_child_wait(&self->w, self->ch));
		CHECK_EQ(self->w.rc, 0);
		CHECK(WIFEXITED(self->w.status) && WEXITSTATUS(self->w.status) == 0);
		edo_child_drop(self->ch);
		self->ch = NULL;
	}
	self->ok = self->ok && self->args_ok;
	edo_command_free(self->c);

	if (!(self->c = proc_command(self, "/bin/echo", "hi"))) {
		self->ok = false;
		EDO_RETURN();
	}
	EDO_AWAIT(edo_command_output(&self->o, self->c));
	if (OOM_RC(self->o.rc) == 0) {
		CHECK(WIFEXITED(self->o.status) && WEXITSTATUS(self->o.status) == 0);
		if (self->args_ok) {
			CHECK_EQ(self->o.out.len, 3u);
			CHECK(memcmp(self->o.out.data, "hi\n", 3) == 0);
		}
	}
	self->ok = self->ok && self->args_ok && self->o.rc == 0;
	EDO_END();
}

static bool seq_process(edo_rt_flavor flavor)
{
	edo_runtime *rt = oom_runtime(flavor, 2);
	if (!rt)
		return false;
	proc_frame m = {EDO_FRAME_INIT(proc_main)};
	return oom_finish(rt, &m.edo_base) && m.ok;
}

static bool seq_process_ct(void)
{
	return seq_process(EDO_RT_CURRENT_THREAD);
}

static bool seq_process_mt(void)
{
	return seq_process(EDO_RT_MULTI_THREAD);
}

/* ---- task dumps --------------------------------------------------------------------------- */

static edo_runtime *dump_rt;

typedef struct dump_frame {
	EDO_FRAME;
	edo_join *h[2];
	FILE *out;
	int i, rc;
	bool ok;
} dump_frame;

static void dump_cleanup(dump_frame *self)
{
	for (int i = 0; i < 2; i++)
		edo_join_detach(self->h[i]);
}

EDO_ASYNC(dump_main, dump_frame, dump_cleanup)
{
	EDO_BEGIN();
	self->ok = true;
	for (self->i = 0; self->i < 2; self->i++) {
		if (OOM_RC(EDO_SPAWN(&self->h[self->i], idle)) < 0)
			self->ok = false;
	}
	EDO_YIELD();
	{
		int n = OOM_RC(edo_runtime_dump(dump_rt, self->out));
		self->ok = n >= 0 && self->ok;
		edo_task_info *v = OOM_UNSET;
		size_t nv = 0;
		if (OOM_RC(edo_runtime_tasks(dump_rt, &v, &nv)) < 0) {
			self->ok = false;
		} else {
			CHECK_GE(nv, (size_t)(self->h[0] != NULL) + (self->h[1] != NULL));
			free(v);
		}
	}
	for (self->i = 0; self->i < 2; self->i++) {
		if (!self->h[self->i])
			continue;
		edo_join_abort(self->h[self->i]);
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, -ECANCELED);
	}
	EDO_END();
}

static bool seq_dump(void)
{
	edo_runtime *rt = oom_runtime(EDO_RT_CURRENT_THREAD, 1);
	if (!rt)
		return false;
	dump_rt = rt;
	dump_frame m = {EDO_FRAME_INIT(dump_main), .out = fopen("/dev/null", "w")};
	CHECK(m.out != NULL);
	bool ok = oom_finish(rt, &m.edo_base) && m.ok;
	fclose(m.out);
	return ok;
}

/* ---- signals ---------------------------------------------------------------------------------- */

typedef struct sig_frame {
	EDO_FRAME;
	edo_signal *s;
	int rc;
	bool ok;
} sig_frame;

static void sig_cleanup(sig_frame *self)
{
	edo_signal_drop(self->s);
}

EDO_ASYNC(sig_main, sig_frame, sig_cleanup)
{
	EDO_BEGIN();
	self->s = OOM_UNSET;
	if (OOM_RC(edo_signal_new(SIGUSR1, &self->s)) < 0) {
		CHECK(self->s == OOM_UNSET);
		self->s = NULL;
		/* A failed call changes nothing: SIGUSR1 keeps its default action. */
		struct sigaction sa;
		CHECK_EQ(sigaction(SIGUSR1, NULL, &sa), 0);
		CHECK(sa.sa_handler == SIG_DFL);
		EDO_RETURN();
	}
	CHECK_EQ(raise(SIGUSR1), 0);
	EDO_AWAIT_POLL(edo_signal_poll_recv(self->s, cx, &self->rc));
	CHECK_EQ(self->rc, 1);
	self->ok = true;
	EDO_END();
}

static bool seq_signal(void)
{
	edo_runtime *rt = oom_runtime(EDO_RT_CURRENT_THREAD, 1);
	if (!rt)
		return false;
	sig_frame m = {EDO_FRAME_INIT(sig_main)};
	return oom_finish(rt, &m.edo_base) && m.ok;
}

/* ---- regression: edo_command_args is all or nothing ---------------------------------------- */

typedef struct echo_frame {
	EDO_FRAME;
	edo_command *c;
	const char *want; /* its output */
	edo_output_fut o;
} echo_frame;

static void echo_cleanup(echo_frame *self)
{
	edo_buf_free(&self->o.out);
	edo_buf_free(&self->o.err);
}

EDO_ASYNC(echo_main, echo_frame, echo_cleanup)
{
	EDO_BEGIN();
	EDO_AWAIT(edo_command_output(&self->o, self->c));
	CHECK_EQ(self->o.rc, 0);
	CHECK_EQ(self->o.out.len, strlen(self->want));
	CHECK(memcmp(self->o.out.data, self->want, self->o.out.len) == 0);
	EDO_END();
}

/* Only edo_command_args() runs under injection: the echo that shows the
 * arguments must not fail. */
static bool seq_command_args(void)
{
	oom_suspend();
	edo_command *c;
	CHECK_EQ(edo_command_new("/bin/echo", &c), 0);
	CHECK_EQ(edo_command_arg(c, "x"), 0);
	static const char *const args[] = {"a", "b", "c", "d", "e", NULL};
	oom_resume();
	int rc = OOM_RC(edo_command_args(c, args));
	oom_suspend();
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	/* Before, a failure left the arguments added until then. */
	echo_frame m = {EDO_FRAME_INIT(echo_main), .c = c,
			.want = rc == 0 ? "x a b c d e\n" : "x\n"};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	edo_command_free(c);
	return rc == 0;
}

TEST(oom_runtimes)
{
	oom_drive("runtimes", seq_runtimes, OOM_ALL, false);
	oom_drive("runtimes", seq_runtimes, OOM_ALL, true);
}

TEST(oom_spawn_current_thread)
{
	oom_drive("spawn_current_thread", seq_spawn_ct, OOM_ALL, false);
	oom_drive("spawn_current_thread", seq_spawn_ct, OOM_ALL, true);
}

TEST(oom_spawn_multi_thread)
{
	oom_drive("spawn_multi_thread", seq_spawn_mt, OOM_ALL, false);
	oom_drive("spawn_multi_thread", seq_spawn_mt, OOM_ALL, true);
}

TEST(oom_blocking_current_thread)
{
	oom_drive("blocking_current_thread", seq_blocking_ct, OOM_ALL, false);
}

TEST(oom_blocking_multi_thread)
{
	oom_drive("blocking_multi_thread", seq_blocking_mt, OOM_ALL, false);
}

TEST(oom_channels_current_thread)
{
	oom_drive("channels_current_thread", seq_channels_ct, OOM_ALL, false);
	oom_drive("channels_current_thread", seq_channels_ct, OOM_ALL, true);
}

TEST(oom_channels_multi_thread)
{
	oom_drive("channels_multi_thread", seq_channels_mt, OOM_ALL, false);
}

TEST(oom_fibers_current_thread)
{
	oom_drive("fibers_current_thread", seq_fibers_ct, OOM_ALL, false);
	oom_drive("fibers_current_thread", seq_fibers_ct, OOM_ALL, true);
}

TEST(oom_fibers_multi_thread)
{
	oom_drive("fibers_multi_thread", seq_fibers_mt, OOM_ALL, false);
}

TEST(oom_tcp_current_thread)
{
	oom_drive("tcp_current_thread", seq_tcp_ct, OOM_ALL, false);
	oom_drive("tcp_current_thread", seq_tcp_ct, OOM_ALL, true);
}

TEST(oom_tcp_multi_thread)
{
	oom_drive("tcp_multi_thread", seq_tcp_mt, OOM_ALL, false);
}

TEST(oom_fs_current_thread)
{
	oom_drive("fs_current_thread", seq_fs_ct, OOM_ALL, false);
	oom_drive("fs_current_thread", seq_fs_ct, OOM_ALL, true);
}

TEST(oom_fs_multi_thread)
{
	oom_drive("fs_multi_thread", seq_fs_mt, OOM_ALL, false);
}

TEST(oom_process_current_thread)
{
	oom_drive("process_current_thread", seq_process_ct, OOM_ALL, false);
	oom_drive("process_current_thread", seq_process_ct, OOM_ALL, true);
}

TEST(oom_process_multi_thread)
{
	oom_drive("process_multi_thread", seq_process_mt, OOM_ALL, false);
}

TEST(oom_dump)
{
	oom_drive("dump", seq_dump, OOM_ALL, false);
	oom_drive("dump", seq_dump, OOM_ALL, true);
}

TEST(oom_signal)
{
	oom_drive("signal", seq_signal, OOM_ALL, false);
	oom_drive("signal", seq_signal, OOM_ALL, true);
}

/* Regression: a blocking job scheduled when no pool thread can be started
 * (every thread creation fails from the Nth on) and none is running waited
 * for ever; a job that is not mandatory is now cancelled, a mandatory one
 * runs on the scheduling thread. */
TEST(oom_regression_blocking_job_without_a_pool_thread)
{
	oom_drive("blocking_without_threads", seq_blocking_ct, OOM_THREAD, true);
}

/* Regression: a multi-thread runtime whose worker's timer wheel could not
 * be allocated was built all the same, and each sleep on that worker
 * completed with EDO_ENORUNTIME; the build now fails with -ENOMEM. */
TEST(oom_regression_worker_timer_wheel)
{
	oom_drive("one_worker", seq_spawn_one_worker, OOM_MEM, false);
}

TEST(oom_regression_command_args_all_or_nothing)
{
	oom_drive("command_args", seq_command_args, OOM_ALL, false);
}

TEST_MAIN()
