#define _GNU_SOURCE
/* Signals: listeners, several per signal and per process, deliveries that
 * arrive while no one waits, coalescing, two runtimes, shutdown, Ctrl-C,
 * refused signals, chaining to a handler installed before. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"

static edo_runtime *make_rt(edo_rt_flavor flavor)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, flavor);
	b.worker_threads = 2;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	return rt;
}

/* ---- refused signals, bad input ------------------------------------------------------- */

typedef struct refuse_frame {
	EDO_FRAME;
} refuse_frame;

EDO_ASYNC(refuse, refuse_frame, NULL)
{
	EDO_BEGIN();
	{
		static const int bad[] = {SIGKILL, SIGSTOP, SIGSEGV, SIGILL, SIGFPE, 0,
					  -1,      65,      1000,    32,     33};
		edo_signal *s = NULL;
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			CHECK_EQ(edo_signal_new(bad[i], &s), -EINVAL);
			CHECK(s == NULL);
		}
		CHECK_EQ(edo_signal_new(SIGUSR1, NULL), -EINVAL);
		CHECK_EQ(edo_signal_new(SIGRTMIN + 1, &s), 0);
		CHECK_EQ(edo_signal_signum(s), SIGRTMIN + 1);
		edo_signal_drop(s);
		edo_signal_drop(NULL);
	}
	EDO_END();
}

TEST(refused_signals)
{
	edo_signal *s;
	CHECK_EQ(edo_signal_new(SIGUSR1, &s), EDO_ENORUNTIME);
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD);
	refuse_frame f = {EDO_FRAME_INIT(refuse)};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	edo_runtime_free(rt);
}

/* ---- several listeners, several runtimes ---------------------------------------------------- */

static atomic_int listening;

typedef struct listener_frame {
	EDO_FRAME;
	int sig;
	edo_signal *s;
	int rc;
} listener_frame;

static void listener_cleanup(listener_frame *self)
{
	edo_signal_drop(self->s);
}

EDO_ASYNC(listener, listener_frame, listener_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_signal_new(self->sig, &self->s), 0);
	atomic_fetch_add(&listening, 1);
	EDO_AWAIT_POLL(edo_signal_poll_recv(self->s, cx, &self->rc));
	EDO_END();
}

#define PER_RT 4

typedef struct group_frame {
	EDO_FRAME;
	int sig;
	edo_join *h[PER_RT];
	int i, rc, got;
} group_frame;

EDO_ASYNC(group, group_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < PER_RT; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], listener, .sig = self->sig), 0);
	for (self->i = 0; self->i < PER_RT; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		CHECK_GE(EDO_JOIN_OUTPUT(self->h[self->i], listener)->rc, 1);
		self->got++;
		edo_join_detach(self->h[self->i]);
	}
	EDO_END();
}

typedef struct rt_thread {
	pthread_t th;
	edo_rt_flavor flavor;
	int got;
} rt_thread;

static void *rt_thread_main(void *arg)
{
	rt_thread *t = arg;
	edo_runtime *rt = make_rt(t->flavor);
	group_frame f = {EDO_FRAME_INIT(group), .sig = SIGUSR1};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	t->got = f.got;
	edo_runtime_free(rt);
	return NULL;
}

/* One delivery reaches every listener of two runtimes (each on its own thread),
 * from a thread outside both. */
TEST(listeners_in_two_runtimes)
{
	rt_thread t[2] = {{.flavor = EDO_RT_CURRENT_THREAD}, {.flavor = EDO_RT_MULTI_THREAD}};
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&t[i].th, NULL, rt_thread_main, &t[i]), 0);
	while (atomic_load(&listening) < 2 * PER_RT)
		usleep(1000);
	/* Let every listener park in its receive, so the wake path is tested. */
	usleep(20000);
	CHECK_EQ(raise(SIGUSR1), 0); /* not kill(): see send_sigint */
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(pthread_join(t[i].th, NULL), 0);
		CHECK_EQ(t[i].got, PER_RT);
	}
}

/* ---- not lost, coalesced, try_recv ------------------------------------------------------------ */

typedef struct early_frame {
	EDO_FRAME;
	edo_signal *s;
	int rc;
} early_frame;

static void early_cleanup(early_frame *self)
{
	edo_signal_drop(self->s);
}

EDO_ASYNC(early, early_frame, early_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_signal_new(SIGUSR2, &self->s), 0);
	CHECK_EQ(edo_signal_try_recv(self->s), 0);
	/* Delivered while no one waits: raise() returns after the handler ran. */
	CHECK_EQ(raise(SIGUSR2), 0);
	CHECK_EQ(raise(SIGUSR2), 0);
	CHECK_EQ(raise(SIGUSR2), 0);
	EDO_AWAIT_POLL(edo_signal_poll_recv(self->s, cx, &self->rc));
	CHECK_EQ(self->rc, 3); /* coalesced into one receive */
	CHECK_EQ(edo_signal_try_recv(self->s), 0);
	CHECK_EQ(raise(SIGUSR2), 0);
	CHECK_EQ(edo_signal_try_recv(self->s), 1);
	CHECK_EQ(edo_signal_try_recv(self->s), 0);
	EDO_END();
}

TEST(delivery_while_nobody_waits)
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD);
	early_frame f = {EDO_FRAME_INIT(early)};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	edo_runtime_free(rt);
}

/* ---- a listener made on one runtime and received on after it shut down ---------------------- */

typedef struct make_frame {
	EDO_FRAME;
	edo_signal *s;
} make_frame;

EDO_ASYNC(make_listener, make_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_signal_new(SIGUSR1, &self->s), 0);
	EDO_END();
}

TEST(shutdown_reports_eshutdown)
{
	edo_runtime *rt = make_rt(EDO_RT_MULTI_THREAD);
	make_frame f = {EDO_FRAME_INIT(make_listener)};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	/* A second runtime keeps listening through all this. */
	edo_runtime *rt2 = make_rt(EDO_RT_CURRENT_THREAD);
	make_frame f2 = {EDO_FRAME_INIT(make_listener)};
	CHECK_EQ(edo_block_on(rt2, &f2.edo_base), 0);
	edo_runtime_free(rt);
	int rc = 0;
	edo_cx cx = {edo_noop_waker()};
	CHECK_EQ(edo_signal_poll_recv(f.s, &cx, &rc), EDO_READY);
	CHECK_EQ(rc, EDO_ESHUTDOWN);
	edo_signal_drop(f.s);
	CHECK_EQ(raise(SIGUSR1), 0);
	CHECK_EQ(edo_signal_try_recv(f2.s), 1);
	edo_signal_drop(f2.s);
	edo_runtime_free(rt2);
}

/* ---- ctrl_c ------------------------------------------------------------------------------------ */

static atomic_bool cc_armed;

typedef struct cc_frame {
	EDO_FRAME;
	edo_ctrl_c_fut cc;
} cc_frame;

EDO_ASYNC(cc_wait, cc_frame, NULL)
{
	EDO_BEGIN();
	edo_ctrl_c(&self->cc);
	/* The listener is made by the first poll, inside this same poll. */
	atomic_store(&cc_armed, true);
	EDO_AWAIT(&self->cc.base);
	CHECK_EQ(self->cc.rc, 0);
	EDO_END();
}

static void *send_sigint(void *arg)
{
	(void)arg;
	while (!atomic_load(&cc_armed))
		usleep(1000);
	usleep(10000);
	/* raise(), not kill(): ThreadSanitizer defers a handler until its
	 * thread passes an intercepted call, and a worker asleep in a raw
	 * futex wait never does; raise() runs it on this thread. */
	raise(SIGINT);
	return NULL;
}

TEST(ctrl_c)
{
	for (int flavor = EDO_RT_CURRENT_THREAD; flavor <= EDO_RT_MULTI_THREAD; flavor++) {
		atomic_store(&cc_armed, false);
		edo_runtime *rt = make_rt((edo_rt_flavor)flavor);
		pthread_t th;
		CHECK_EQ(pthread_create(&th, NULL, send_sigint, NULL), 0);
		cc_frame f = {EDO_FRAME_INIT(cc_wait)};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		CHECK_EQ(pthread_join(th, NULL), 0);
		edo_runtime_free(rt);
	}
}

/* ---- a handler installed before keeps being called ----------------------------------------- */

static volatile sig_atomic_t old_calls;

static void old_handler(int sig)
{
	(void)sig;
	old_calls++;
}

TEST(chains_previous_handler)
{
	struct sigaction sa = {0};
	sa.sa_handler = old_handler;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR2, &sa, NULL), 0);
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD);
	early_frame f = {EDO_FRAME_INIT(early)};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	edo_runtime_free(rt);
	CHECK_EQ(old_calls, 4);
}

/* ---- stress: every delivery is counted, none is lost -------------------------------------- */

typedef struct count_frame {
	EDO_FRAME;
	edo_signal *s;
	long want, got;
	int rc;
} count_frame;

static void count_cleanup(count_frame *self)
{
	edo_signal_drop(self->s);
}

EDO_ASYNC(count_all, count_frame, count_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_signal_new(SIGUSR1, &self->s), 0);
	atomic_fetch_add(&listening, 1);
	while (self->got < self->want) {
		EDO_AWAIT_POLL(edo_signal_poll_recv(self->s, cx, &self->rc));
		CHECK_GE(self->rc, 1);
		self->got += self->rc;
	}
	CHECK_EQ(self->got, self->want);
	EDO_END();
}

typedef struct raiser {
	long n;
} raiser;

static void *raise_many(void *arg)
{
	raiser *r = arg;
	while (atomic_load(&listening) < 1)
		usleep(1000);
	for (long i = 0; i < r->n; i++) {
		/* raise() runs the handler in this thread before returning: no
		 * two deliveries merge in the kernel, so every one is counted. */
		raise(SIGUSR1);
		if (i % 64 == 0)
			usleep(50);
	}
	return NULL;
}

TEST(stress_every_delivery_counted)
{
	long n = test_scale(20000);
	for (int flavor = EDO_RT_CURRENT_THREAD; flavor <= EDO_RT_MULTI_THREAD; flavor++) {
		atomic_store(&listening, 0);
		edo_runtime *rt = make_rt((edo_rt_flavor)flavor);
		raiser r[2] = {{n / 2}, {n - n / 2}};
		pthread_t th[2];
		for (int i = 0; i < 2; i++)
			CHECK_EQ(pthread_create(&th[i], NULL, raise_many, &r[i]), 0);
		count_frame f = {EDO_FRAME_INIT(count_all), .want = n};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		for (int i = 0; i < 2; i++)
			CHECK_EQ(pthread_join(th[i], NULL), 0);
		edo_runtime_free(rt);
	}
}

/* Listeners come and go on several runtimes while signals fly: readers are
 * made and retired over and over, racing with dispatches. */
typedef struct churn_frame {
	EDO_FRAME;
	edo_signal *s;
	long i, n;
	int rc;
} churn_frame;

static void churn_cleanup(churn_frame *self)
{
	edo_signal_drop(self->s);
}

EDO_ASYNC(churn, churn_frame, churn_cleanup)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->n; self->i++) {
		CHECK_EQ(edo_signal_new(SIGUSR2, &self->s), 0);
		CHECK_EQ(raise(SIGUSR2), 0);
		EDO_AWAIT_POLL(edo_signal_poll_recv(self->s, cx, &self->rc));
		CHECK_GE(self->rc, 1);
		edo_signal_drop(self->s);
		self->s = NULL;
		EDO_YIELD();
	}
	EDO_END();
}

static atomic_bool churning;

static void *churn_thread(void *arg)
{
	edo_runtime *rt = make_rt(*(edo_rt_flavor *)arg);
	churn_frame f = {EDO_FRAME_INIT(churn), .n = test_scale(2000)};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	edo_runtime_free(rt);
	return NULL;
}

static void *kill_loop(void *arg)
{
	(void)arg;
	while (atomic_load(&churning)) {
		kill(getpid(), SIGUSR2);
		usleep(100);
	}
	return NULL;
}

TEST(stress_listener_churn)
{
	edo_rt_flavor fl[3] = {EDO_RT_CURRENT_THREAD, EDO_RT_MULTI_THREAD, EDO_RT_CURRENT_THREAD};
	pthread_t th[3], k;
	/* Ignored until the first listener installs the handler. */
	signal(SIGUSR2, SIG_IGN);
	atomic_store(&churning, true);
	CHECK_EQ(pthread_create(&k, NULL, kill_loop, NULL), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, churn_thread, &fl[i]), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(pthread_join(th[i], NULL), 0);
	atomic_store(&churning, false);
	CHECK_EQ(pthread_join(k, NULL), 0);
}

TEST_MAIN()
