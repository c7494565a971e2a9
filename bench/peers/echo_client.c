/* Load client for tcp_echo: N connections to 127.0.0.1:PORT, each sending
 * a SIZE-byte message and waiting for all of it to come back before sending
 * the next, for SECONDS; one thread, epoll. Prints
 *   msgs=<round trips> seconds=<elapsed> rate=<round trips per second>
 *   spread=<max/min> min=<m> median=<m> max=<m>
 *   p50_us=<l> p99_us=<l> p999_us=<l> max_us=<l>
 * where min, median and max are the round trips of one connection: the least
 * served, the median and the most served; spread is max / min (min taken as
 * at least 1), 1 when the server serves its connections evenly.  The p*_us
 * figures are round-trip latencies in microseconds (send to the last byte of
 * the reply), timed with one clock read per epoll_wait batch and kept in a
 * histogram of 1/16-octave buckets (within 6%).
 * Exits non-zero if it cannot connect or if the server closes a connection.
 *
 * usage: echo_client --port P --conns N --seconds S [--size 64] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

struct conn {
    int fd;
    size_t got;     /* bytes of the current reply received */
    uint64_t trips; /* round trips completed on this connection */
    double sent;    /* when the current message was sent */
};

/* Latency histogram: bucket (octave, 1/16 of it) of a latency in us. */
#define SUB 16
static uint64_t hist[64 * SUB];

static void record(double seconds) {
    uint64_t us = seconds > 0 ? (uint64_t)(seconds * 1e6) : 0;
    if (us < SUB) {
        hist[us]++;
        return;
    }
    int oct = 63 - __builtin_clzll(us); /* us in [2^oct, 2^(oct+1)) */
    int sub = (int)((us >> (oct - 4)) & (SUB - 1));
    hist[(oct - 3) * SUB + sub]++;
}

static uint64_t bucket_floor(int b) { /* smallest latency (us) of bucket b */
    if (b < SUB) return (uint64_t)b;
    int oct = b / SUB + 3, sub = b % SUB;
    return ((uint64_t)SUB + (uint64_t)sub) << (oct - 4);
}

static uint64_t quantile(uint64_t total, double q) {
    uint64_t want = (uint64_t)(q * (double)total), seen = 0;
    for (int b = 0; b < 64 * SUB; b++) {
        seen += hist[b];
        if (seen > want) return bucket_floor(b);
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static char msg[4096];
static size_t size = 64;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int send_msg(struct conn *c, double t) {
    /* SIZE <= 4 KiB always fits an empty socket buffer in one write. */
    c->sent = t;
    ssize_t w;
    do w = write(c->fd, msg, size);
    while (w < 0 && errno == EINTR);
    return w == (ssize_t)size ? 0 : -1;
}

int main(int argc, char **argv) {
    int port = -1, conns = -1;
    double seconds = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--conns")) conns = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) size = (size_t)atoi(argv[i + 1]);
        else port = -1, i = argc;
    }
    if (port <= 0 || conns <= 0 || seconds <= 0 || seconds > 600 || size == 0 || size > sizeof msg) {
        fprintf(stderr, "usage: %s --port P --conns N --seconds S [--size 64]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    memset(msg, 'x', sizeof msg);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* only ever 127.0.0.1 */
    int ep = epoll_create1(0);
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    for (int i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
            fprintf(stderr, "echo_client: connection %d: %s\n", i, strerror(errno));
            return 1;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        cs[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    uint64_t done = 0;
    double t0 = now(), end = t0 + seconds, t = t0;
    for (int i = 0; i < conns; i++)
        if (send_msg(&cs[i], now())) {
            fprintf(stderr, "echo_client: first write failed\n");
            return 1;
        }
    struct epoll_event evs[256];
    char buf[4096];
    while (t < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        t = now();
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, buf, sizeof buf);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r <= 0) {
                fprintf(stderr, "echo_client: server closed a connection\n");
                return 1;
            }
            c->got += (size_t)r;
            if (c->got > size) {
                fprintf(stderr, "echo_client: got more bytes than were sent\n");
                return 1;
            }
            if (c->got == size) {
                c->got = 0;
                c->trips++;
                done++;
                record(t - c->sent);
                if (send_msg(c, t)) {
                    fprintf(stderr, "echo_client: write failed\n");
                    return 1;
                }
            }
        }
    }
    double el = t - t0;
    printf("msgs=%llu seconds=%.3f rate=%.1f\n", (unsigned long long)done, el, done / el);
    uint64_t *trips = malloc((size_t)conns * sizeof *trips);
    if (trips) {
        for (int i = 0; i < conns; i++) trips[i] = cs[i].trips;
        qsort(trips, (size_t)conns, sizeof *trips, cmp_u64);
        uint64_t lo = trips[0], mid = trips[conns / 2], hi = trips[conns - 1];
        printf("spread=%.3f min=%llu median=%llu max=%llu\n", (double)hi / (double)(lo ? lo : 1),
               (unsigned long long)lo, (unsigned long long)mid, (unsigned long long)hi);
        free(trips);
    }
    uint64_t maxb = 0;
    for (int b = 0; b < 64 * SUB; b++)
        if (hist[b]) maxb = bucket_floor(b);
    printf("p50_us=%llu p99_us=%llu p999_us=%llu max_us=%llu\n", (unsigned long long)quantile(done, 0.5),
           (unsigned long long)quantile(done, 0.99), (unsigned long long)quantile(done, 0.999),
           (unsigned long long)maxb);
    for (int i = 0; i < conns; i++) close(cs[i].fd);
    return 0;
}
