/* The context switch itself, per architecture: callee-saved integer and
 * floating-point registers survive a switch in both directions, the
 * floating-point control state (MXCSR and x87 CW, or FPCR) is per
 * context, and a fresh context starts with an ABI-aligned stack (printf of
 * a double, which uses aligned SSE spills on x86-64, works in it).  All of
 * it three times: with the plain function edo__fiber_switch(), with the
 * inline edo__fiber_swap() the runtime uses (src/fiber/switch.h), and with
 * the fiber side parking (edo__fiber_park(), reached by a tail call, handed
 * the resuming switch's arg).
 *
 * The same driver runs natively and, for aarch64, cross-compiled with
 * aarch64-linux-gnu-gcc and run under qemu-aarch64 when both are installed
 * (.ci/install-deps.sh installs them); otherwise that case is skipped. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* ---- the driver, compiled natively here and as a program for qemu -------------- */

static const char driver_source[] =
	"#include <stdint.h>\n"
	"#include <stdio.h>\n"
	"#include <stdlib.h>\n"
	"#include <string.h>\n"
	"#include \"fiber/switch.h\"\n"
	"static void *main_sp, *fib_sp;\n"
	"static volatile long sink;\n"
	"static int mode; /* 0: edo__fiber_switch, 1: edo__fiber_swap, 2: park + swap */\n"
	"#if defined(__x86_64__)\n"
	"#define HAVE_X87 1\n"
	"static unsigned get_round(void) { unsigned m; __asm__ volatile(\"stmxcsr %0\" : \"=m\"(m)); "
	"return (m >> 13) & 3; }\n"
	"static void set_round(unsigned r) { unsigned m; __asm__ volatile(\"stmxcsr %0\" : "
	"\"=m\"(m)); m = (m & ~(3u << 13)) | (r << 13); __asm__ volatile(\"ldmxcsr %0\" :: "
	"\"m\"(m)); }\n"
	"static unsigned get_x87(void) { unsigned short c; __asm__ volatile(\"fnstcw %0\" : "
	"\"=m\"(c)); return (c >> 10) & 3; }\n"
	"static void set_x87(unsigned r) { unsigned short c; __asm__ volatile(\"fnstcw %0\" : "
	"\"=m\"(c)); c = (unsigned short)((c & ~(3u << 10)) | (r << 10)); __asm__ "
	"volatile(\"fldcw %0\" :: \"m\"(c)); }\n"
	"#elif defined(__aarch64__)\n"
	"#define HAVE_X87 0\n"
	"static unsigned get_round(void) { uint64_t f; __asm__ volatile(\"mrs %0, fpcr\" : "
	"\"=r\"(f)); return (unsigned)(f >> 22) & 3; }\n"
	"static void set_round(unsigned r) { uint64_t f; __asm__ volatile(\"mrs %0, fpcr\" : "
	"\"=r\"(f)); f = (f & ~(3ull << 22)) | ((uint64_t)r << 22); __asm__ volatile(\"msr fpcr, "
	"%0\" :: \"r\"(f)); }\n"
	"static unsigned get_x87(void) { return 0; }\n"
	"static void set_x87(unsigned r) { (void)r; }\n"
	"#endif\n"
	"static int fails;\n"
	"#define EXPECT(c) do { if (!(c)) { printf(\"FAIL mode %d line %d: %s\\n\", mode, __LINE__, "
	"#c); fails++; } } while (0)\n"
	"/* The fiber parks through a function that tail-calls edo__fiber_park(), as\n"
	" * edo_fiber_await() does; it resumes in this function's caller. */\n"
	"__attribute__((noinline)) static int park(void) { return edo__fiber_park(&fib_sp, main_sp); }\n"
	"/* One switch of @side (1: the fiber) in the current mode; @k is what the\n"
	" * main side hands a parked fiber, which checks it. */\n"
	"static void *to_other(int side, long k) {\n"
	"  if (mode == 0)\n"
	"    return side ? edo__fiber_switch(&fib_sp, main_sp, NULL) : edo__fiber_switch(&main_sp, fib_sp, NULL);\n"
	"  if (side && mode == 2) { int got = park(); EXPECT(got == (int)k); return NULL; }\n"
	"  return side ? edo__fiber_swap(&fib_sp, main_sp, NULL)\n"
	"              : edo__fiber_swap(&main_sp, fib_sp, (void *)(intptr_t)k);\n"
	"}\n"
	"/* Many values live across every switch: at -O2 they sit in callee-saved\n"
	" * integer and floating-point registers (or, around the inline switch, in\n"
	" * the caller's frame). */\n"
	"__attribute__((noinline)) static long work(int rounds, long seed, int side) {\n"
	"  long a = seed, b = seed * 3, c = seed * 5, d = seed * 7, e = seed * 11, f = seed * 13,\n"
	"       g = seed * 17, h = seed * 19, i = seed * 23, j = seed * 29;\n"
	"  double p = (double)seed, q = p * 1.5, r = p * 2.5, s = p * 3.5, t = p * 4.5,\n"
	"         u = p * 5.5, v = p * 6.5, w = p * 7.5;\n"
	"  for (int k = 0; k < rounds; k++) {\n"
	"    to_other(side, k);\n"
	"    a += 1; b += 2; c += 3; d += 4; e += 5; f += 6; g += 7; h += 8; i += 9; j += 10;\n"
	"    p += 1; q += 2; r += 3; s += 4; t += 5; u += 6; v += 7; w += 8;\n"
	"  }\n"
	"  long n = rounds;\n"
	"  EXPECT(a == seed + n && b == seed * 3 + 2 * n && c == seed * 5 + 3 * n);\n"
	"  EXPECT(d == seed * 7 + 4 * n && e == seed * 11 + 5 * n && f == seed * 13 + 6 * n);\n"
	"  EXPECT(g == seed * 17 + 7 * n && h == seed * 19 + 8 * n && i == seed * 23 + 9 * n);\n"
	"  EXPECT(j == seed * 29 + 10 * n);\n"
	"  EXPECT(p == (double)seed + n && q == seed * 1.5 + 2 * n && r == seed * 2.5 + 3 * n);\n"
	"  EXPECT(s == seed * 3.5 + 4 * n && t == seed * 4.5 + 5 * n && u == seed * 5.5 + 6 * n);\n"
	"  EXPECT(v == seed * 6.5 + 7 * n && w == seed * 7.5 + 8 * n);\n"
	"  return a + j;\n"
	"}\n"
	"static void entry(void *arg, void *data) {\n"
	"  char buf[64];\n"
	"  EXPECT((long)arg == 42 && (long)data == 7);\n"
	"  EXPECT(get_round() == 0 && get_x87() == 0);\n"
	"  snprintf(buf, sizeof buf, \"%.3f\", 3.14159);\n"
	"  EXPECT(strcmp(buf, \"3.142\") == 0);\n"
	"  set_round(2); set_x87(3);\n"
	"  sink = work(1000, 1000, 1);\n"
	"  EXPECT(get_round() == 2 && (!HAVE_X87 || get_x87() == 3));\n"
	"  edo__fiber_switch(&fib_sp, main_sp, (void *)99);\n"
	"  abort();\n"
	"}\n"
	"int main(void) {\n"
	"  size_t size = 256 * 1024;\n"
	"  for (mode = 0; mode < 3; mode++) {\n"
	"    char *stack = malloc(size);\n"
	"    fib_sp = edo__fiber_make(stack + size, entry, (void *)7);\n"
	"    set_round(1); set_x87(1);\n"
	"    void *r = edo__fiber_switch(&main_sp, fib_sp, (void *)42);\n"
	"    EXPECT(r == NULL);\n"
	"    sink = work(999, 7, 0);\n"
	"    r = mode ? edo__fiber_swap(&main_sp, fib_sp, (void *)999) : edo__fiber_switch(&main_sp, fib_sp, NULL);\n"
	"    EXPECT(r == (void *)99);\n"
	"    EXPECT(get_round() == 1 && (!HAVE_X87 || get_x87() == 1));\n"
	"    set_round(0); set_x87(0);\n"
	"    free(stack);\n"
	"  }\n"
	"  printf(fails ? \"driver: %d failures\\n\" : \"driver: ok\\n\", fails);\n"
	"  return fails != 0;\n"
	"}\n";

/* Where this source file is: the repository is one level up. */
static void repo_root(char *out, size_t len)
{
	snprintf(out, len, "%s", __FILE__);
	char *slash = strrchr(out, '/');
	if (slash)
		*slash = 0;
	slash = strrchr(out, '/');
	if (slash)
		*slash = 0;
	else
		snprintf(out, len, "..");
}

static bool have(const char *tool)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* Build the driver with @cc and the switch for @arch, run it (through
 * @runner, or directly), and check it printed "driver: ok". */
static void build_and_run(const char *cc, const char *cflags, const char *arch, const char *runner)
{
	char dir[] = "/tmp/edo-fiber-arch-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char root[512], path[600], cmd[2048];
	repo_root(root, sizeof root);
	snprintf(path, sizeof path, "%s/driver.c", dir);
	FILE *fp = fopen(path, "w");
	CHECK(fp != NULL);
	fputs(driver_source, fp);
	fclose(fp);
	snprintf(
		cmd, sizeof cmd,
		"%s %s -O2 -I %s/src -o %s/driver %s/driver.c %s/src/fiber/switch_%s.S > %s/build.log "
		"2>&1",
		cc, cflags, root, dir, dir, root, arch, dir);
	if (system(cmd) != 0) {
		snprintf(cmd, sizeof cmd, "cat %s/build.log >&2", dir);
		(void)system(cmd);
		TEST_FAIL_AT("building the %s driver failed", arch);
	}
	snprintf(cmd, sizeof cmd, "%s %s/driver > %s/run.log 2>&1", runner, dir, dir);
	int rc = system(cmd);
	snprintf(path, sizeof path, "%s/run.log", dir);
	char out[4096] = {0};
	fp = fopen(path, "r");
	CHECK(fp != NULL);
	size_t n = fread(out, 1, sizeof out - 1, fp);
	out[n] = 0;
	fclose(fp);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	(void)system(cmd);
	if (rc != 0 || !strstr(out, "driver: ok"))
		TEST_FAIL_AT("the %s driver failed (status %d): %s", arch, rc, out);
}

TEST(native_switch_keeps_registers_and_fp_state)
{
#if defined(__x86_64__)
	if (!have("cc"))
		SKIP("no cc to build the driver");
	build_and_run("cc", "", "x86_64", "");
#elif defined(__aarch64__)
	if (!have("cc"))
		SKIP("no cc to build the driver");
	build_and_run("cc", "", "aarch64", "");
#else
	SKIP("no context switch for this architecture");
#endif
}

TEST(aarch64_switch_under_qemu)
{
	if (!have("aarch64-linux-gnu-gcc") || !have("qemu-aarch64"))
		SKIP("aarch64-linux-gnu-gcc or qemu-aarch64 missing (.ci/install-deps.sh installs them)");
	build_and_run("aarch64-linux-gnu-gcc", "-static", "aarch64", "qemu-aarch64");
}

/* The fiber tests under valgrind (memcheck): stacks are registered with
 * valgrind, so switching stacks is not mistaken for stack corruption. */
TEST(fiber_tests_under_valgrind)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	SKIP("a sanitizer build cannot run under valgrind");
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
	SKIP("a sanitizer build cannot run under valgrind");
#endif
#endif
#if defined(__clang__)
	SKIP("valgrind 3.19 cannot read the DWARF 5 debug info of clang 14");
#endif
	if (!have("valgrind"))
		SKIP("valgrind missing (.ci/install-deps.sh installs it)");
	char self[512];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	CHECK_GT(n, 0);
	self[n] = 0;
	char *slash = strrchr(self, '/');
	CHECK(slash != NULL);
	*slash = 0;
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
		 "EDO_STRESS_SCALE=0.01 EDO_TEST_TIMEOUT=300 valgrind --quiet --error-exitcode=9 "
		 "%s/test_fiber spawn_join_current_thread spawn_join_multi_thread "
		 "await_every_kind_current_thread await_io_multi_thread await_at_depth "
		 "errno_and_worker_kept_multi_thread cancel_each_kind_of_await_current_thread "
		 "shield_lets_cleanup_await shutdown_resumes_suspended_fibers_multi_thread "
		 "sleep_and_timeout overflow_breaks_the_canary > /dev/null",
		 self);
	int rc = system(cmd);
	CHECK(WIFEXITED(rc));
	CHECK_EQ(WEXITSTATUS(rc), 0);
}

TEST_MAIN()
