/* edo-console-demo - a runtime worth looking at with edo-console.
 *
 *   edo-console-demo --console PATH [--threads N] [--seconds S]
 *   edo-console PATH            (in another terminal)
 *
 * It serves its console on PATH (with poll timing, the stall detector and
 * SIGQUIT task dumps on) and runs a few kinds of task: a "cruncher" that
 * spends its polls computing, a "ticker" on a 100 ms timer, twenty
 * "napper"s asleep for an hour, a fiber that sleeps in a loop, and a
 * "blocker" that every 2 s calls usleep(250 ms) inside a task, the mistake
 * the stall detector is for.  --threads 0 runs the current-thread runtime;
 * it stops after S seconds (default: never).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edo.h"

static void spin_us(long us)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

typedef struct cruncher_frame {
	EDO_FRAME;
	edo_sleep nap;
} cruncher_frame;

EDO_ASYNC(cruncher, cruncher_frame, NULL)
{
	EDO_BEGIN();
	for (;;) {
		spin_us(2000);
		EDO_YIELD();
		edo_sleep_init(&self->nap, EDO_MS(5));
		EDO_AWAIT(&self->nap);
	}
	EDO_END();
}

typedef struct ticker_frame {
	EDO_FRAME;
	edo_interval tick;
} ticker_frame;

EDO_ASYNC(ticker, ticker_frame, NULL)
{
	EDO_BEGIN();
	edo_interval_init(&self->tick, EDO_MS(100), EDO_MISSED_TICK_SKIP);
	for (;;) {
		EDO_AWAIT(&self->tick);
		spin_us(200);
	}
	EDO_END();
}

typedef struct napper_frame {
	EDO_FRAME;
	edo_sleep nap;
} napper_frame;

EDO_ASYNC(napper, napper_frame, NULL)
{
	EDO_BEGIN();
	edo_sleep_init(&self->nap, EDO_SEC(3600));
	EDO_AWAIT(&self->nap);
	EDO_END();
}

typedef struct blocker_frame {
	EDO_FRAME;
	edo_sleep nap;
} blocker_frame;

EDO_ASYNC(blocker, blocker_frame, NULL)
{
	EDO_BEGIN();
	for (;;) {
		edo_sleep_init(&self->nap, EDO_SEC(2));
		EDO_AWAIT(&self->nap);
		usleep(250000); /* blocks its worker: the stall detector names this task */
	}
	EDO_END();
}

static void *sleepy(void *arg)
{
	(void)arg;
	while (edo_fiber_sleep(EDO_MS(700)) == 0)
		spin_us(100);
	return NULL;
}

typedef struct main_frame {
	EDO_FRAME;
	long seconds;
	edo_sleep nap;
	int i;
} main_frame;

EDO_ASYNC(demo_main, main_frame, NULL)
{
	EDO_BEGIN();
	EDO_SPAWN(NULL, cruncher);
	EDO_SPAWN(NULL, ticker);
	EDO_SPAWN(NULL, blocker);
	for (self->i = 0; self->i < 20; self->i++)
		EDO_SPAWN(NULL, napper);
	edo_fiber_spawn(sleepy, NULL, &(edo_fiber_opts){.name = "sleepy-fiber"}, NULL);
	printf("edo-console-demo: serving; run edo-console on the socket\n");
	fflush(stdout);
	edo_sleep_init(&self->nap,
		       self->seconds > 0 ? EDO_SEC(self->seconds) : EDO_SEC(86400 * 365));
	EDO_AWAIT(&self->nap);
	EDO_END();
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	long threads = 2, seconds = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--console") == 0)
			path = argv[i + 1];
		else if (strcmp(argv[i], "--threads") == 0)
			threads = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = atol(argv[i + 1]);
	}
	if (!path || threads < 0) {
		fprintf(stderr, "usage: %s --console PATH [--threads N] [--seconds S]\n", argv[0]);
		return 2;
	}
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, threads ? EDO_RT_MULTI_THREAD : EDO_RT_CURRENT_THREAD);
	b.worker_threads = (unsigned)threads;
	b.console_path = path;
	b.poll_time_histogram = true;
	b.stall_detection = true;
	b.dump_signal = SIGQUIT;
	edo_runtime *rt;
	int rc = edo_runtime_build(&b, &rt);
	if (rc < 0) {
		fprintf(stderr, "edo-console-demo: %s: %s\n", path, edo_strerror(rc));
		return 1;
	}
	main_frame m = {EDO_FRAME_INIT(demo_main), .seconds = seconds};
	rc = edo_block_on(rt, &m.edo_base);
	edo_runtime_free(rt);
	return rc < 0;
}
