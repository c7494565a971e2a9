/* libuv side of the suite's timers workload (bench/README.md): 1,000,000
 * timers, each a separately allocated uv_timer_t started with a
 * pseudo-random 0..1000 ms timeout from the suite's fixed LCG, closed and
 * freed when it fires (libuv's analogue of a task that sleeps then exits).
 *
 * usage: libuv_bench timers 0     (one uv loop; other workloads exit 77) */
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#include "../common.h"

#define TIMERS 1000000

static uint64_t lcg = 1;
static uint64_t next_ms(void) {
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (lcg >> 33) % 1001;
}

static void on_close(uv_handle_t *h) { free(h); }
static void on_timer(uv_timer_t *t) { uv_close((uv_handle_t *)t, on_close); }

static double cpu_ns(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

static double wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s <workload> <threads>\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "timers") != 0 || atoi(argv[2]) != 0) {
        fprintf(stderr, "libuv_bench: %s with threads %s not implemented\n", argv[1], argv[2]);
        return 77;
    }
    uv_loop_t *loop = uv_default_loop();
    double c0 = cpu_ns(), w0 = wall_ns();
    for (int i = 0; i < TIMERS; i++) {
        uv_timer_t *t = malloc(sizeof *t);
        uv_timer_init(loop, t);
        uv_timer_start(t, on_timer, next_ms(), 0);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    double wall = wall_ns() - w0, cpu = cpu_ns() - c0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("bench=timers impl=libuv threads=0 value=%.2f unit=ns/op\n", cpu / TIMERS);
    printf("bench=timers_wall impl=libuv threads=0 value=%.2f unit=ms\n", wall / 1e6);
    printf("bench=timers_rss impl=libuv threads=0 value=%.2f unit=bytes\n", ru.ru_maxrss * 1024.0);
    return 0;
}
