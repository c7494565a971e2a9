/* Shared by the C peers (raw epoll, libuv) and the echo load client:
 * argv parsing, the fixed HTTP response, and request-head counting. */
#ifndef EDO_BENCH_PEERS_COMMON_H
#define EDO_BENCH_PEERS_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one response every raw hello-world server sends (bench/README.md). */
static const char HTTP_RESPONSE[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nHello world!";
#define HTTP_RESPONSE_LEN (sizeof(HTTP_RESPONSE) - 1)

/* Server argv: --port N --threads N. These peers are single-threaded: they
 * accept threads 0 or 1 (one event loop) and refuse more. */
static inline int peer_parse_server_args(int argc, char **argv, int *port) {
    int threads = -1;
    *port = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) *port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0) threads = atoi(argv[i + 1]);
        else *port = -1, threads = -1, i = argc;
    }
    if (argc != 5 || *port < 0 || *port > 65535 || threads < 0) {
        fprintf(stderr, "usage: %s --port N --threads N\n", argv[0]);
        exit(2);
    }
    if (threads > 1) {
        fprintf(stderr, "%s: single-threaded peer, --threads %d not supported\n", argv[0], threads);
        exit(77);
    }
    return threads;
}

/* Consumes every complete request head (ended by an empty line) at the
 * start of buf[0..*len), moving a partial one to the front; returns how many
 * requests were consumed. */
static inline size_t http_take_requests(char *buf, size_t *len) {
    size_t start = 0, n = 0;
    for (size_t i = 3; i < *len; i++) {
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            n++;
            start = i + 1;
        }
    }
    memmove(buf, buf + start, *len - start);
    *len -= start;
    return n;
}

#endif
