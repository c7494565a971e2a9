/* Shared by Edo's benchmark programs: the workload registry, timing, and
 * small helpers.  Each bench_<area>.c file registers its workloads with
 * BENCH_WORKLOAD; bench_main.c looks them up by name. */
#ifndef EDO_BENCH_H
#define EDO_BENCH_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "edo.h"

typedef struct bench_workload {
	const char *name;
	double (*fn)(edo_runtime *rt);
	const char *unit;
} bench_workload;

void bench_register(const bench_workload *w);

/* BENCH_WORKLOAD(name, fn, unit): fn(rt) runs the workload once on @rt and
 * returns the value reported in @unit.  A workload with unit NULL prints its
 * own result lines with bench_report() (several, e.g. timers), and its
 * return value is ignored. */
#define BENCH_WORKLOAD(name, fn, unit)                                                             \
	__attribute__((constructor)) static void bench_register_##name(void)                       \
	{                                                                                          \
		static const bench_workload w_ = {#name, fn, unit};                                \
		bench_register(&w_);                                                               \
	}

#define EXIT_MISSING 77

/* The runner's <threads> argument: 0 = current-thread, N = N workers. */
extern unsigned bench_threads;

/* Print one result line `bench=<name> impl=edo threads=<n> value=<v> unit=<u>`. */
void bench_report(const char *name, double value, const char *unit);

static inline double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline void die(const char *what, int rc)
{
	fprintf(stderr, "edo_bench: %s: %s\n", what, edo_strerror(rc));
	exit(1);
}

/* A runtime of the flavour the runner asks for (exits 77 if unavailable). */
edo_runtime *make_runtime(unsigned threads);

static inline void run(edo_runtime *rt, edo_future *f)
{
	int rc = edo_block_on(rt, f);
	if (rc < 0)
		die("block_on", rc);
}

/* Runs a workload "from inside a task", as every peer does (Tokio:
 * block_on(spawn(work))): spawns a copy of @work, awaits it, and copies the
 * finished frame back so the caller can read its outputs. */
void run_in_task(edo_runtime *rt, edo_future *work, size_t size);

/* A one-shot "done" signal a task can await and another thread can fire. */
typedef struct done_signal {
	pthread_mutex_t lock;
	bool done;
	edo_waker waker;
} done_signal;

static inline void done_init(done_signal *d)
{
	pthread_mutex_init(&d->lock, NULL);
	d->done = false;
	d->waker = (edo_waker){0};
}

static inline edo_poll done_poll(done_signal *d, edo_cx *cx)
{
	pthread_mutex_lock(&d->lock);
	bool done = d->done;
	if (!done)
		edo_waker_set(&d->waker, cx->waker);
	pthread_mutex_unlock(&d->lock);
	return done ? EDO_READY : EDO_PENDING;
}

static inline void done_fire(done_signal *d)
{
	pthread_mutex_lock(&d->lock);
	d->done = true;
	edo_waker w = edo_waker_take(&d->waker);
	pthread_mutex_unlock(&d->lock);
	edo_waker_wake(w);
}

/* Resident set size now (/proc/self/statm), in bytes; 0 if unreadable. */
static inline double bench_rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *fp = fopen("/proc/self/statm", "r");
	if (!fp)
		return 0;
	if (fscanf(fp, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	fclose(fp);
	return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

/* Peak resident set size of the process (getrusage ru_maxrss), in bytes. */
static inline double bench_peak_rss_bytes(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss * 1024.0;
}

/* CPU time of the whole process so far (every thread; getrusage user +
 * system), in nanoseconds. */
static inline double bench_cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) * 1e9 +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e3;
}

/* Record the CPU time (bench_cpu_ns) the timed region took per operation:
 * after the result line, main prints it as `bench=<name>_cpu ... unit=ns/op`.
 * The workloads of the metrics A/B (bench/README.md, edo-nometrics) do, as
 * CPU time is steadier than wall time on a shared machine. */
void bench_report_cpu(double cpu_ns_per_op);

#endif /* EDO_BENCH_H */
