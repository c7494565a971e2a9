/* Edo's side of the benchmark suite (see ../shared/BENCHMARKS.md and
 * bench/README.md for the exact workloads; the peers in bench/peers/ do the
 * same work).
 *
 * usage: edo_bench <workload> <threads>
 *   threads 0 = the current-thread runtime, N = multi-thread with N workers.
 *
 * Prints `bench=<name> impl=edo threads=<n> value=<v> unit=<u>`; exits 77
 * for a workload (or flavour) that Edo does not provide yet, so the runner
 * lists it as missing.  With EDO_BENCH_METRICS=1 the runtime also collects
 * the optional observability (edo/trace.h: the stall detector and the
 * poll-time histogram, timing one poll in 16) and the lines say
 * impl=edo-metrics: the runner lists that beside plain Edo, so the ratio is
 * the cost of the collection, measured in the same run.  The same sources
 * linked with the library built with EDO_NO_METRICS (the always-on counters
 * compiled out) make edo_bench_nometrics, whose lines say impl=edo-nometrics:
 * edo/edo-nometrics is what the always-on counters cost.  Workloads live in
 * the bench_<area>.c files, registered with BENCH_WORKLOAD.
 */
#include "bench.h"

#define MAX_WORKLOADS 64
static const bench_workload *registry[MAX_WORKLOADS];
static int nregistered;

unsigned bench_threads;

/* "edo", or "edo-metrics" with EDO_BENCH_METRICS=1 (make_runtime);
 * "edo-nometrics" in edo_bench_nometrics. */
#ifdef EDO_BENCH_NOMETRICS
static const char *bench_impl = "edo-nometrics";
#else
static const char *bench_impl = "edo";
#endif

/* Set by bench_report_cpu(); < 0: not reported. */
static double bench_cpu_per_op = -1;

void bench_report(const char *name, double value, const char *unit)
{
	printf("bench=%s impl=%s threads=%u value=%.2f unit=%s\n", name, bench_impl, bench_threads,
	       value, unit);
}

void bench_report_cpu(double cpu_ns_per_op)
{
	bench_cpu_per_op = cpu_ns_per_op;
}

void bench_register(const bench_workload *w)
{
	if (nregistered < MAX_WORKLOADS)
		registry[nregistered++] = w;
}

edo_runtime *make_runtime(unsigned threads)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, threads == 0 ? EDO_RT_CURRENT_THREAD : EDO_RT_MULTI_THREAD);
	b.worker_threads = threads;
	/* For the LIFO-stealing comparison (issue #4941 in Tokio's tracker). */
	const char *nosteal = getenv("EDO_BENCH_DISABLE_LIFO_STEAL");
	b.disable_lifo_stealing = nosteal && *nosteal == '1';
	/* The optional collection, for its cost (bench/README.md, edo-metrics):
	 * "1" the stall detector and the poll-time histogram timing one poll in
	 * 16; "hist" (every poll timed) or "stall" alone, to tell costs apart. */
	const char *metrics = getenv("EDO_BENCH_METRICS");
	if (metrics && strcmp(metrics, "1") == 0) {
		b.poll_time_histogram = true;
		b.poll_time_sample = 16;
		b.stall_detection = true;
		bench_impl = "edo-metrics";
	} else if (metrics && strcmp(metrics, "hist") == 0) {
		b.poll_time_histogram = true;
		bench_impl = "edo-hist";
	} else if (metrics && strcmp(metrics, "hist16") == 0) {
		b.poll_time_histogram = true;
		b.poll_time_sample = 16;
		bench_impl = "edo-hist16";
	} else if (metrics && strcmp(metrics, "stall") == 0) {
		b.stall_detection = true;
		bench_impl = "edo-stall";
	}
	edo_runtime *rt;
	int rc = edo_runtime_build(&b, &rt);
	if (rc == -ENOTSUP) {
		fprintf(stderr, "edo_bench: this runtime flavour is not available yet\n");
		exit(EXIT_MISSING);
	}
	if (rc < 0)
		die("runtime", rc);
	return rt;
}

/* Runs a workload "from inside a task", as every peer does (Tokio:
 * block_on(spawn(work))): spawns a copy of @frame, awaits it, and copies the
 * finished frame back so the caller can read its outputs. */
typedef struct in_task_frame {
	EDO_FRAME;
	edo_future *work;
	size_t size;
	edo_join *h;
	int rc;
} in_task_frame;

EDO_ASYNC(in_task, in_task_frame, NULL)
{
	EDO_BEGIN();
	int rc = edo_spawn(self->work, self->size, &self->h);
	if (rc < 0)
		die("spawn", rc);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	if (self->rc < 0)
		die("join", self->rc);
	memcpy(self->work, edo_join_output(self->h), self->size);
	edo_join_detach(self->h);
	EDO_END();
}

void run_in_task(edo_runtime *rt, edo_future *work, size_t size)
{
	in_task_frame f = {EDO_FRAME_INIT(in_task), .work = work, .size = size};
	run(rt, &f.edo_base);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s <workload> <threads>\n", argv[0]);
		return 2;
	}
	char *end;
	long threads = strtol(argv[2], &end, 10);
	if (*end || threads < 0 || threads > 1024) {
		fprintf(stderr, "threads: a number >= 0\n");
		return 2;
	}
	for (int i = 0; i < nregistered; i++) {
		const bench_workload *w = registry[i];
		if (strcmp(w->name, argv[1]) != 0)
			continue;
		bench_threads = (unsigned)threads;
		edo_runtime *rt = make_runtime((unsigned)threads);
		double v = w->fn(rt);
		edo_runtime_free(rt);
		if (!w->unit)
			return 0; /* it printed its own result lines */
		printf("bench=%s impl=%s threads=%ld value=%.2f unit=%s\n", argv[1], bench_impl,
		       threads, v, w->unit);
		if (bench_cpu_per_op >= 0)
			printf("bench=%s_cpu impl=%s threads=%ld value=%.2f unit=ns/op\n", argv[1],
			       bench_impl, threads, bench_cpu_per_op);
		return 0;
	}
	fprintf(stderr, "edo_bench: workload %s not implemented\n", argv[1]);
	return EXIT_MISSING;
}
