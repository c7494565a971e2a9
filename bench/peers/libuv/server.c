/* libuv servers, written as libuv's own examples write them. Built twice:
 * with -DPEER_HTTP as libuv_http (fixed hello-world response per request
 * head), without as libuv_echo (writes back what it reads).
 *
 * usage: libuv_{echo,http} --port N --threads 0|1   (one uv loop) */
#include <signal.h>
#include <uv.h>

#include "../common.h"

#define BUF 4096

struct conn {
    uv_tcp_t tcp;
    size_t in_len; /* HTTP: bytes of a partial request head */
    char in[BUF];
};

/* A write request together with the bytes it writes (echo). */
struct echo_write {
    uv_write_t req;
    char data[BUF];
};

static uv_loop_t *loop;

static void on_close(uv_handle_t *h) { free(h->data); }

static void conn_close(struct conn *c) {
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_write(uv_write_t *req, int status) {
    (void)status;
    free(req->data); /* the request itself, or the echo_write around it */
}

#ifdef PEER_HTTP
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    struct conn *c = h->data;
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(BUF - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    struct conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->in_len += (size_t)nread;
    size_t n = http_take_requests(c->in, &c->in_len);
    if (c->in_len == BUF) {
        conn_close(c); /* head over 4 KiB: not this benchmark */
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uv_write_t *req = malloc(sizeof *req);
        req->data = req;
        uv_buf_t out = uv_buf_init((char *)HTTP_RESPONSE, HTTP_RESPONSE_LEN);
        if (uv_write(req, s, &out, 1, on_write)) {
            free(req);
            conn_close(c);
            return;
        }
    }
}
#else
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h, (void)suggested;
    struct echo_write *w = malloc(sizeof *w);
    *buf = w ? uv_buf_init(w->data, BUF) : uv_buf_init(NULL, 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    struct echo_write *w = buf->base ? (struct echo_write *)(buf->base - offsetof(struct echo_write, data)) : NULL;
    if (nread <= 0) {
        free(w);
        if (nread < 0) conn_close(s->data);
        return;
    }
    w->req.data = w;
    uv_buf_t out = uv_buf_init(w->data, (unsigned)nread);
    if (uv_write(&w->req, s, &out, 1, on_write)) {
        free(w);
        conn_close(s->data);
    }
}
#endif

static void on_connection(uv_stream_t *server, int status) {
    if (status < 0) return;
    struct conn *c = calloc(1, sizeof *c);
    if (!c) return;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv) {
    int port;
    peer_parse_server_args(argc, argv, &port);
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    int r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (!r) r = uv_listen((uv_stream_t *)&server, 4096, on_connection);
    if (r) {
        fprintf(stderr, "%s: %s\n", argv[0], uv_strerror(r));
        return 1;
    }
    return uv_run(loop, UV_RUN_DEFAULT);
}
