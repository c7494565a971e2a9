/* The HTTP/1.1 hello-world server of the Tokio scheduler article, on Edo.
 *
 *   hello_server [--port N] [--threads N] [--console PATH]   (defaults: 8080, 0)
 *   curl http://127.0.0.1:8080/
 *   edo-console PATH           (with --console: a live view of the runtime)
 *
 * It listens on 127.0.0.1 and answers every request with
 *
 *   HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nHello world!
 *
 * on a keep-alive connection.  A request is everything up to its empty line
 * (the headers are not looked at: no request here has a body); several
 * requests that arrive in one read (pipelining) are all answered, in one
 * write.  --threads 0 runs the current-thread runtime, N a multi-thread
 * runtime with N workers.
 *
 * Ctrl-C stops it gracefully (graceful.h): it stops accepting, lets open
 * connections finish the requests they have received (idle keep-alive
 * connections are closed at once), and exits 0, within 5 seconds.
 *
 * One task per connection, a stackless coroutine whose frame holds the
 * request buffer: reading, answering and going back to sleep on the socket
 * is all that happens per request.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "edo.h"
#include "graceful.h"
#include "http_head.h"

static const char RESPONSE[] =
	"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nHello world!";
#define RESPONSE_LEN (sizeof RESPONSE - 1)

/* Pipelined requests are answered from this: BATCH responses back to back. */
#define BATCH 32
static char responses[BATCH * RESPONSE_LEN];

/* A request head larger than this closes the connection (like the peers). */
#define HEAD_MAX 2048

typedef struct conn_frame {
	EDO_FRAME;
	edo_tcp_stream *s;
	size_t filled;  /* bytes in buf */
	size_t scanned; /* bytes of buf already searched for a head's end */
	size_t pending; /* responses still to write */
	size_t batch;   /* bytes of responses being written */
	size_t off;     /* of which written */
	ssize_t n;
	graceful_conn g;
	char buf[HEAD_MAX];
} conn_frame;

static void conn_cleanup(conn_frame *self)
{
	graceful_leave(&self->g);
	edo_tcp_stream_close(self->s);
}

/* Count the complete request heads in buf, keep the partial one at the front. */
static size_t take_requests(conn_frame *self)
{
	size_t count = 0, start = 0;
	size_t from = self->scanned > 3 ? self->scanned - 3 : 0;
	for (;;) {
		const char *end = http_head_end(self->buf + from, self->filled - from);
		if (!end)
			break;
		count++;
		start = (size_t)(end - self->buf) + 4;
		from = start;
	}
	memmove(self->buf, self->buf + start, self->filled - start);
	self->filled -= start;
	self->scanned = self->filled;
	return count;
}

EDO_ASYNC(conn, conn_frame, conn_cleanup)
{
	EDO_BEGIN();
	if (!graceful_join(&self->g, self->s))
		EDO_RETURN(); /* shutting down */
	for (;;) {
		if (self->filled == sizeof self->buf)
			break; /* a head this large is not for this server */
		EDO_AWAIT_POLL(edo_tcp_stream_poll_read(self->s, cx, self->buf + self->filled,
							sizeof self->buf - self->filled, &self->n));
		if (self->n <= 0)
			break; /* the client closed, or an error */
		self->filled += (size_t)self->n;
		self->pending = take_requests(self);
		while (self->pending) {
			self->batch =
				(self->pending < BATCH ? self->pending : BATCH) * RESPONSE_LEN;
			for (self->off = 0; self->off < self->batch; self->off += (size_t)self->n) {
				EDO_AWAIT_POLL(edo_tcp_stream_poll_write(self->s, cx,
									 responses + self->off,
									 self->batch - self->off,
									 &self->n));
				if (self->n < 0)
					EDO_RETURN(); /* reset by the client */
			}
			self->pending -= self->batch / RESPONSE_LEN;
		}
		if (graceful_stopping())
			break; /* Ctrl-C: what was asked is answered */
	}
	EDO_END();
}

typedef struct server_frame {
	EDO_FRAME;
	uint16_t port;
	edo_tcp_listener *l;
	edo_tcp_stream *s;
	int rc;
	edo_ctrl_c_fut cc;
	bool no_ctrl_c, stop;
	edo_sleep sl;
	int waited;
} server_frame;

static void server_cleanup(server_frame *self)
{
	edo_future_drop(&self->cc.base);
	edo_tcp_listener_close(self->l);
}

/* Accept the next connection, unless Ctrl-C comes first (then stop). */
static edo_poll accept_or_ctrl_c(server_frame *self, edo_cx *cx)
{
	if (!self->no_ctrl_c && edo_future_poll(&self->cc.base, cx) == EDO_READY) {
		if (self->cc.rc == 0) {
			self->stop = true;
			return EDO_READY;
		}
		self->no_ctrl_c = true; /* cannot listen for it: serve on */
	}
	return edo_tcp_listener_poll_accept(self->l, cx, &self->s, NULL, &self->rc);
}

EDO_ASYNC(server, server_frame, server_cleanup)
{
	EDO_BEGIN();
	{
		edo_addr a;
		char txt[EDO_ADDR_STRLEN];
		edo_addr_ip(&a, "127.0.0.1", self->port);
		self->rc =
			edo_tcp_listener_bind(&a, &(edo_tcp_bind_opts){.backlog = 4096}, &self->l);
		if (self->rc < 0) {
			fprintf(stderr, "hello_server: bind 127.0.0.1:%u: %s\n", self->port,
				edo_strerror(self->rc));
			EDO_RETURN();
		}
		edo_tcp_listener_local_addr(self->l, &a);
		edo_addr_format(&a, txt, sizeof txt);
		printf("hello_server: listening on http://%s/\n", txt);
		fflush(stdout);
	}
	edo_ctrl_c(&self->cc);
	for (;;) {
		EDO_AWAIT_POLL(accept_or_ctrl_c(self, cx));
		if (self->stop)
			break;
		if (self->rc < 0) {
			fprintf(stderr, "hello_server: accept: %s\n", edo_strerror(self->rc));
			continue;
		}
		edo_tcp_stream_set_nodelay(self->s, true);
		if (EDO_SPAWN(NULL, conn, .s = self->s) < 0)
			edo_tcp_stream_close(self->s);
	}
	/* Ctrl-C: stop accepting; open connections finish, up to the deadline. */
	edo_tcp_listener_close(self->l);
	self->l = NULL;
	graceful_stop();
	for (self->waited = 0; graceful_live() > 0 && self->waited < GRACEFUL_DEADLINE_MS;
	     self->waited += 10)
		EDO_AWAIT_SLEEP(&self->sl, EDO_MS(10));
	printf("hello_server: stopped (%zu connections cut off)\n", graceful_live());
	EDO_END();
}

static int parse_args(int argc, char **argv, long *port, long *threads, const char **console)
{
	for (int i = 1; i < argc; i += 2) {
		char *end;
		if (strcmp(argv[i], "--console") == 0 && i + 1 < argc) {
			*console = argv[i + 1];
			continue;
		}
		long *dst = strcmp(argv[i], "--port") == 0    ? port :
			    strcmp(argv[i], "--threads") == 0 ? threads :
								NULL;
		if (!dst || i + 1 >= argc)
			return -1;
		*dst = strtol(argv[i + 1], &end, 10);
		if (*end || *dst < 0)
			return -1;
	}
	return *port <= 65535 && *threads <= 1024 ? 0 : -1;
}

int main(int argc, char **argv)
{
	long port = 8080, threads = 0;
	const char *console = NULL;
	if (parse_args(argc, argv, &port, &threads, &console) < 0) {
		fprintf(stderr, "usage: %s [--port N] [--threads N] [--console PATH]\n", argv[0]);
		return 2;
	}
	/* Many connections need many descriptors. */
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
	for (size_t i = 0; i < BATCH; i++)
		memcpy(responses + i * RESPONSE_LEN, RESPONSE, RESPONSE_LEN);

	edo_runtime_builder b;
	edo_runtime_builder_init(&b, threads ? EDO_RT_MULTI_THREAD : EDO_RT_CURRENT_THREAD);
	b.worker_threads = (unsigned)threads;
	if (console) {
		/* Serve the runtime's metrics and tasks to edo-console, timing
		 * polls and watching for stalls (edo/trace.h). */
		b.console_path = console;
		b.poll_time_histogram = true;
		b.stall_detection = true;
	}
	edo_runtime *rt;
	int rc = edo_runtime_build(&b, &rt);
	if (rc < 0) {
		fprintf(stderr, "hello_server: runtime: %s\n", edo_strerror(rc));
		return 1;
	}
	server_frame srv = {EDO_FRAME_INIT(server), .port = (uint16_t)port};
	rc = edo_block_on(rt, &srv.edo_base);
	edo_runtime_free(rt);
	return rc < 0 || srv.rc < 0 ? 1 : 0;
}
