/* Edo's test harness: one program per area, each test case in its own
 * process with a timeout, typed assertions that print both sides.
 *
 *     #include "harness.h"
 *
 *     TEST(spawn_and_join) {
 *         CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
 *         CHECK_STREQ(edo_strerror(-EINVAL), "Invalid argument");
 *     }
 *
 *     TEST_MAIN()
 *
 * Running the program runs every case, each in a forked child with a
 * timeout (EDO_TEST_TIMEOUT seconds, default 120), and prints
 * "N passed, N failed, N skipped".  `prog NAME...` runs only those cases;
 * `prog --no-fork NAME` runs one case in-process (for gdb).  A case calls
 * SKIP("why") to report a skip; a program whose cases all skip exits 77,
 * which ctest reports as skipped.
 */
#ifndef EDO_TEST_HARNESS_H
#define EDO_TEST_HARNESS_H

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct test_case {
	const char *name;
	void (*fn)(void);
} test_case;

#define TEST_MAX 256
extern test_case test_cases[TEST_MAX];
extern int test_count;

#define TEST(name)                                                                                 \
	static void test_##name(void);                                                             \
	__attribute__((constructor)) static void test_register_##name(void)                        \
	{                                                                                          \
		if (test_count < TEST_MAX)                                                         \
			test_cases[test_count++] = (test_case){#name, test_##name};                \
	}                                                                                          \
	static void test_##name(void)

#define TEST_EXIT_SKIP 77

#define SKIP(why)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "  skip: %s\n", (why));                                            \
		fflush(NULL);                                                                      \
		_exit(TEST_EXIT_SKIP);                                                             \
	} while (0)

#define TEST_FAIL_AT(...)                                                                          \
	do {                                                                                       \
		fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                  \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fprintf(stderr, "\n");                                                             \
		fflush(NULL);                                                                      \
		abort();                                                                           \
	} while (0)

/* Typed comparisons: integers print as integers, pointers as pointers. */
/* clang-format 14 breaks _Generic associations apart. */
/* clang-format off */
#define TEST__FMT(x)                                                               \
	_Generic((x), _Bool: "%d", char: "%d", signed char: "%d", unsigned char: "%u", \
		short: "%d", unsigned short: "%u", int: "%d", unsigned: "%u",      \
		long: "%ld", unsigned long: "%lu", long long: "%lld",              \
		unsigned long long: "%llu", default: "%p")
/* clang-format on */

#define TEST__CMP(a, op, b)                                                                        \
	do {                                                                                       \
		__typeof__(a) a_ = (a);                                                            \
		__typeof__(b) b_ = (b);                                                            \
		_Pragma("GCC diagnostic push");                                                    \
		_Pragma("GCC diagnostic ignored \"-Wsign-compare\"");                              \
		bool ok_ = a_ op b_;                                                               \
		_Pragma("GCC diagnostic pop");                                                     \
		if (!ok_) {                                                                        \
			char fa_[64], fb_[64];                                                     \
			snprintf(fa_, sizeof fa_, TEST__FMT(a_), a_);                              \
			snprintf(fb_, sizeof fb_, TEST__FMT(b_), b_);                              \
			TEST_FAIL_AT("CHECK(%s %s %s) failed: %s vs %s", #a, #op, #b, fa_, fb_);   \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b) TEST__CMP(a, ==, b)
#define CHECK_NE(a, b) TEST__CMP(a, !=, b)
#define CHECK_LT(a, b) TEST__CMP(a, <, b)
#define CHECK_LE(a, b) TEST__CMP(a, <=, b)
#define CHECK_GT(a, b) TEST__CMP(a, >, b)
#define CHECK_GE(a, b) TEST__CMP(a, >=, b)
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			TEST_FAIL_AT("CHECK(%s) failed", #cond);                                   \
	} while (0)
#define CHECK_STREQ(a, b)                                                                          \
	do {                                                                                       \
		const char *a_ = (a), *b_ = (b);                                                   \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                                             \
			TEST_FAIL_AT("CHECK_STREQ(%s, %s) failed: \"%s\" vs \"%s\"", #a, #b,       \
				     a_ ? a_ : "(null)", b_ ? b_ : "(null)");                      \
	} while (0)

/* A scale factor for stress loops: sanitizer builds set EDO_STRESS_SCALE to
 * keep the suite inside CI's time while still hammering each race. */
static inline long test_scale(long n)
{
	/* Unset, empty or not a number: full size.  (`make test` exports the
	 * variable empty, and atof("") would scale every loop down to 1.) */
	const char *s = getenv("EDO_STRESS_SCALE");
	double f = 1.0;
	if (s && *s) {
		char *end;
		double v = strtod(s, &end);
		if (end != s)
			f = v;
	}
	long r = (long)((double)n * f);
	return r > 0 ? r : 1;
}

/* ---- time helpers --------------------------------------------------------------------------- */

/* The monotonic clock in nanoseconds and in seconds. */
static inline uint64_t test_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double test_now_s(void)
{
	return (double)test_now_ns() / 1e9;
}

/* Sleep @ms milliseconds (fractions allowed). */
static inline void test_sleep_ms(double ms)
{
	if (ms <= 0)
		return;
	uint64_t ns = (uint64_t)(ms * 1e6);
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
	nanosleep(&ts, NULL);
}

/* Keep the CPU busy for @ms milliseconds: a poll that takes that long. */
static inline void test_spin_ms(double ms)
{
	double end = test_now_s() + ms / 1000;
	while (test_now_s() < end)
		__asm__ volatile("" ::: "memory");
}

/* Wait until @cond holds, sleeping 0.2 ms between looks; fail after @secs
 * (a deadline for a hang, not a speed requirement). */
#define WAIT_UNTIL(cond, secs)                                                                     \
	do {                                                                                       \
		double dl_ = test_now_s() + (secs);                                                \
		while (!(cond)) {                                                                  \
			if (test_now_s() > dl_)                                                    \
				TEST_FAIL_AT("timed out after %g s waiting for %s",                \
					     (double)(secs), #cond);                               \
			test_sleep_ms(0.2);                                                        \
		}                                                                                  \
	} while (0)

int test_main(int argc, char **argv);

/* Two cases, name_current_thread and name_multi_thread, each calling
 * fn(flavor) (a runtime flavour of edo.h). */
#define BOTH(name, fn)                                                                             \
	TEST(name##_current_thread)                                                                \
	{                                                                                          \
		fn(EDO_RT_CURRENT_THREAD);                                                         \
	}                                                                                          \
	TEST(name##_multi_thread)                                                                  \
	{                                                                                          \
		fn(EDO_RT_MULTI_THREAD);                                                           \
	}

#define TEST_MAIN()                                                                                \
	test_case test_cases[TEST_MAX];                                                            \
	int test_count;                                                                            \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		return test_main(argc, argv);                                                      \
	}

static inline int test_run_one(const test_case *tc, bool fork_it, unsigned timeout)
{
	if (!fork_it) {
		tc->fn();
		return 0;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		alarm(timeout);
		tc->fn();
		fflush(NULL);
		/* exit(), not _exit(): the sanitizers judge the case at exit
		 * (LeakSanitizer's leak check, ThreadSanitizer's status 66
		 * after a report), and the case must fail on either. */
		exit(0);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		fprintf(stderr, "  died with signal %d (%s)%s\n", sig, strsignal(sig),
			sig == SIGALRM ? ": timed out" : "");
	}
	return 1;
}

int test_main(int argc, char **argv)
{
	bool fork_it = true;
	int first = 1;
	if (argc > 1 && strcmp(argv[1], "--no-fork") == 0) {
		fork_it = false;
		first = 2;
	}
	const char *t = getenv("EDO_TEST_TIMEOUT");
	unsigned timeout = t ? (unsigned)atoi(t) : 120;
	int passed = 0, failed = 0, skipped = 0;
	for (int i = 0; i < test_count; i++) {
		const test_case *tc = &test_cases[i];
		if (argc > first) {
			bool want = false;
			for (int a = first; a < argc; a++)
				want |= strcmp(argv[a], tc->name) == 0;
			if (!want)
				continue;
		}
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int rc = test_run_one(tc, fork_it, timeout);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		const char *verdict = rc == 0 ? "ok" : rc == TEST_EXIT_SKIP ? "SKIP" : "FAIL";
		printf("%-4s %s (%.0f ms)\n", verdict, tc->name, ms);
		fflush(stdout);
		if (rc == 0)
			passed++;
		else if (rc == TEST_EXIT_SKIP)
			skipped++;
		else
			failed++;
	}
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	if (failed)
		return 1;
	if (passed == 0 && skipped > 0)
		return TEST_EXIT_SKIP;
	return 0;
}

#endif /* EDO_TEST_HARNESS_H */
