/* Hand-written single-threaded epoll server, no runtime: the "zero
 * overhead" bound for tcp_echo and http_hello. Built twice: with
 * -DPEER_HTTP as epoll_http (fixed hello-world response per request head),
 * without as epoll_echo (writes back what it reads).
 *
 * usage: epoll_{echo,http} --port N --threads 0|1
 *
 * Level-triggered; one read per readiness event; output that the socket
 * does not take at once is kept and flushed on EPOLLOUT. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common.h"

#define BUF 4096

struct conn {
    int fd;
    size_t in_len;           /* HTTP: bytes of a partial request head */
    size_t out_len, out_off; /* pending output not yet taken by the socket */
    char in[BUF];
    char *out;
    size_t out_cap;
};

static int ep;

static void conn_close(struct conn *c) {
    close(c->fd); /* also removes it from the epoll set */
    free(c->out);
    free(c);
}

static int append_out(struct conn *c, const char *p, size_t n) {
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap * 2 : BUF;
        while (cap < c->out_len + n) cap *= 2;
        char *o = realloc(c->out, cap);
        if (!o) return -1;
        c->out = o;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

/* Writes pending output; arms EPOLLOUT while some remains. */
static int flush(struct conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return -1;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
        c->out_off += (size_t)w;
    }
    int was_waiting = c->out_len > 0;
    c->out_len = c->out_off = 0;
    if (was_waiting) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return 0;
}

/* Sends p[0..n) now if nothing is pending, keeping what the socket refuses. */
static int send_or_keep(struct conn *c, const char *p, size_t n) {
    if (c->out_len == 0) {
        ssize_t w;
        do w = write(c->fd, p, n);
        while (w < 0 && errno == EINTR);
        if (w == (ssize_t)n) return 0;
        if (w < 0 && errno != EAGAIN) return -1;
        if (w > 0) p += w, n -= (size_t)w;
        if (append_out(c, p, n)) return -1;
        return flush(c);
    }
    return append_out(c, p, n); /* EPOLLOUT is armed already */
}

static int on_readable(struct conn *c) {
#ifdef PEER_HTTP
    ssize_t r = read(c->fd, c->in + c->in_len, BUF - c->in_len);
    if (r <= 0) return r < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    c->in_len += (size_t)r;
    size_t n = http_take_requests(c->in, &c->in_len);
    if (c->in_len == BUF) return -1; /* head over 4 KiB: not this benchmark */
    if (n == 1) return send_or_keep(c, HTTP_RESPONSE, HTTP_RESPONSE_LEN);
    for (size_t i = 0; i < n; i++)
        if (send_or_keep(c, HTTP_RESPONSE, HTTP_RESPONSE_LEN)) return -1;
    return 0;
#else
    ssize_t r = read(c->fd, c->in, BUF);
    if (r <= 0) return r < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    return send_or_keep(c, c->in, (size_t)r);
#endif
}

static void on_accept(int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; /* EAGAIN, or out of fds: retry on the next event */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) conn_close(c);
    }
}

int main(int argc, char **argv) {
    int port;
    peer_parse_server_args(argc, argv, &port);
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 4096)) {
        perror("bind/listen");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    static struct conn listener; /* data.ptr == &listener marks the listener */
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listener};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == &listener) {
                on_accept(lfd);
                continue;
            }
            int bad = 0;
            if (evs[i].events & EPOLLOUT) bad = flush(c) != 0;
            if (!bad && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) bad = on_readable(c) != 0;
            if (bad) conn_close(c);
        }
    }
}
