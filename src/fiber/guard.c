/* Stack overflow reports: a fault in a fiber's guard, or a broken canary.
 *
 * A fiber that runs into its guard faults with its stack pointer in the
 * guard, so the SIGSEGV handler cannot run on that stack: each thread that
 * runs fibers gets an alternate signal stack (unless it has one already,
 * as under ASan), and the handler is installed with SA_ONSTACK.  The
 * handler reports only faults inside the guard of the fiber running on the
 * faulting thread; every other fault goes to the handler that was there
 * before (or the default action).  After a report the default action is
 * restored and the faulting instruction runs again, so the process dies of
 * SIGSEGV as it would have without Edo, with a message naming the task.
 *
 * The message is formatted by hand: only async-signal-safe calls here.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fiber/fiber.h"

#define ALTSTACK_SIZE ((size_t)64 << 10)

static struct sigaction previous;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static pthread_key_t altstack_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
__thread bool edo__guard_ready __attribute__((tls_model("initial-exec")));

/* ---- the message ----------------------------------------------------------------- */

typedef struct msg {
	char buf[512];
	size_t len;
} msg;

static void put_str(msg *m, const char *s)
{
	while (*s && m->len < sizeof m->buf - 1)
		m->buf[m->len++] = *s++;
}

static void put_num(msg *m, unsigned long long v, unsigned base)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && n < sizeof tmp);
	if (base == 16)
		put_str(m, "0x");
	while (n && m->len < sizeof m->buf - 1)
		m->buf[m->len++] = tmp[--n];
}

static void report(const edo__fiber *f, const char *what)
{
	msg m = {.len = 0};
	const edo__task *t = f->task;
	const char *name = t ? edo__task_cold_of((edo__task *)(uintptr_t)t)->name : NULL;
	put_str(&m, "edo: fiber stack overflow in task ");
	put_num(&m, t ? t->id : 0, 10);
	put_str(&m, " (");
	put_str(&m, name ? name : "unnamed");
	put_str(&m, "): ");
	put_str(&m, what);
	if (f->stack) {
		put_str(&m, "; stack of ");
		put_num(&m, f->stack->size, 10);
		put_str(&m, " bytes at ");
		put_num(&m, (uintptr_t)f->stack->lo, 16);
		put_str(&m, " (raise edo_fiber_opts.stack_size)");
	}
	put_str(&m, "\n");
	ssize_t rc = write(STDERR_FILENO, m.buf, m.len);
	(void)rc;
}

_Noreturn void edo__guard_canary_broken(const edo__fiber *f)
{
	report(f, "the canary at the bottom of its unguarded stack was overwritten");
	abort();
}

/* ---- the handler ---------------------------------------------------------------------- */

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	const edo__fiber *f = edo__fiber_cur;
	const char *addr = si->si_addr;
	if (f && f->stack && addr >= f->stack->lo - EDO__STACK_GUARD && addr < f->stack->lo) {
		report(f, "it ran into the guard page below its stack");
		(void)signal(SIGSEGV, SIG_DFL);
		return; /* the fault repeats, now fatal */
	}
	/* Not ours: the action that was there before.  A fault cannot be
	 * ignored (the kernel kills a process that ignores or blocks it), so
	 * SIG_IGN ends as SIG_DFL does: the fault repeats, now fatal. */
	if (previous.sa_flags & SA_SIGINFO)
		previous.sa_sigaction(sig, si, uc);
	else if (previous.sa_handler == SIG_DFL || previous.sa_handler == SIG_IGN)
		(void)signal(SIGSEGV, SIG_DFL);
	else
		previous.sa_handler(sig);
}

static void install_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGSEGV, &sa, &previous);
}

/* ---- per-thread alternate signal stacks ------------------------------------------------ */

static void altstack_free(void *p)
{
	stack_t ss = {.ss_flags = SS_DISABLE};
	(void)sigaltstack(&ss, NULL);
	munmap(p, ALTSTACK_SIZE);
}

static void make_key(void)
{
	(void)pthread_key_create(&altstack_key, altstack_free);
}

void edo__guard_thread_setup(void)
{
	if (edo__guard_ready)
		return;
	edo__guard_ready = true;
	pthread_once(&handler_once, install_handler);
	stack_t old;
	if (sigaltstack(NULL, &old) != 0 || !(old.ss_flags & SS_DISABLE))
		return; /* the thread has one already */
	void *p = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);
	if (p == MAP_FAILED) {
		edo__guard_ready = false; /* out of memory now: try again next resume */
		return;
	}
	stack_t ss = {.ss_sp = p, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
	if (sigaltstack(&ss, NULL) != 0) {
		munmap(p, ALTSTACK_SIZE);
		edo__guard_ready = false;
		return;
	}
	pthread_once(&key_once, make_key);
	(void)pthread_setspecific(altstack_key, p);
}
