/* The hello-world HTTP server of hello_server.c, written with stackful
 * fibers: each connection is plain blocking-style C.
 *
 *   hello_server_fiber [--port N] [--threads N]     (defaults: 8080, 0)
 *   curl http://127.0.0.1:8080/
 *
 * It behaves exactly as hello_server: it listens on 127.0.0.1, answers every
 * request head (everything up to an empty line) with
 *
 *   HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nHello world!
 *
 * on a keep-alive connection, answers pipelined requests in one write, and
 * stops gracefully on Ctrl-C (graceful.h).  --threads 0 runs the
 * current-thread runtime, N a multi-thread runtime with N workers.
 *
 * One fiber per connection (edo/fiber.h).  A fiber runs on a stack of its
 * own, so its locals are ordinary locals and edo_fiber_stream_read() reads
 * like read(2): when the socket has nothing, the fiber is suspended and the
 * worker thread serves other connections until data arrives.  Compare with
 * hello_server.c, where the same loop is a stackless coroutine whose locals
 * live in a frame struct.
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

/* Count the complete request heads in buf[0, *filled), drop them and keep
 * the partial one at the front.  The bytes before @old were searched by the
 * previous call (a head's end may straddle them: look 3 bytes back). */
static size_t take_requests(char *buf, size_t *filled, size_t old)
{
	size_t count = 0, start = 0;
	size_t from = old > 3 ? old - 3 : 0;
	const char *end;
	while ((end = http_head_end(buf + from, *filled - from)) != NULL) {
		count++;
		start = (size_t)(end - buf) + 4;
		from = start;
	}
	memmove(buf, buf + start, *filled - start);
	*filled -= start;
	return count;
}

/* Answer @count requests: BATCH responses per write at most. */
static int answer(edo_stream *io, size_t count)
{
	while (count > 0) {
		size_t k = count < BATCH ? count : BATCH;
		if (edo_fiber_stream_write_all(io, responses, k * RESPONSE_LEN) < 0)
			return -1; /* reset by the client */
		count -= k;
	}
	return 0;
}

/* One connection: read request heads, answer them, until the client closes. */
static void *serve(void *arg)
{
	edo_tcp_stream *s = arg;
	edo_stream *io = edo_tcp_stream_io(s);
	graceful_conn g = {0};
	char buf[HEAD_MAX];
	size_t filled = 0;

	if (graceful_join(&g, s)) {
		while (filled < sizeof buf) { /* a larger head is not for this server */
			ssize_t n = edo_fiber_stream_read(io, buf + filled, sizeof buf - filled);
			if (n <= 0)
				break; /* the client closed (0), an error, or cancelled */
			size_t old = filled;
			filled += (size_t)n;
			if (answer(io, take_requests(buf, &filled, old)) < 0)
				break;
			if (graceful_stopping())
				break; /* Ctrl-C: what was asked is answered */
		}
	}
	graceful_leave(&g);
	edo_tcp_stream_close(s);
	return NULL;
}

/* Waits for Ctrl-C in a fiber of its own, then closes the listener: the
 * accept loop's edo_fiber_tcp_accept() then fails with -EBADF. */
static void *watch_ctrl_c(void *arg)
{
	edo_tcp_listener *l = arg;
	edo_ctrl_c_fut cc;
	if (edo_fiber_await(edo_ctrl_c(&cc)) == 0 && cc.rc == 0)
		edo_tcp_listener_close(l);
	else
		edo_tcp_listener_drop(l); /* no Ctrl-C to listen for: serve on */
	return NULL;
}

typedef struct server_args {
	uint16_t port;
	int rc; /* set by the server: 0, or why it could not listen */
} server_args;

/* The server: bind, accept connections until Ctrl-C, then let the open
 * ones finish (up to GRACEFUL_DEADLINE_MS). */
static void *server(void *arg)
{
	server_args *args = arg;
	edo_addr a;
	char txt[EDO_ADDR_STRLEN];
	edo_tcp_listener *l;
	edo_addr_ip(&a, "127.0.0.1", args->port);
	int rc = edo_tcp_listener_bind(&a, &(edo_tcp_bind_opts){.backlog = 4096}, &l);
	if (rc < 0) {
		fprintf(stderr, "hello_server_fiber: bind 127.0.0.1:%u: %s\n", args->port,
			edo_strerror(rc));
		args->rc = rc;
		return NULL;
	}
	edo_tcp_listener_local_addr(l, &a);
	edo_addr_format(&a, txt, sizeof txt);
	printf("hello_server_fiber: listening on http://%s/\n", txt);
	fflush(stdout);

	edo_tcp_listener *for_watcher = edo_tcp_listener_clone(l);
	if (edo_fiber_spawn(watch_ctrl_c, for_watcher, NULL, NULL) < 0)
		edo_tcp_listener_drop(for_watcher); /* no Ctrl-C then: serve on */
	for (;;) {
		edo_tcp_stream *s;
		rc = edo_fiber_tcp_accept(l, &s, NULL);
		if (rc == -EBADF || rc == -ECANCELED)
			break; /* Ctrl-C closed the listener (or the runtime stops) */
		if (rc < 0) {
			fprintf(stderr, "hello_server_fiber: accept: %s\n", edo_strerror(rc));
			continue;
		}
		edo_tcp_stream_set_nodelay(s, true);
		if (edo_fiber_spawn(serve, s, &(edo_fiber_opts){.name = "conn"}, NULL) < 0)
			edo_tcp_stream_close(s);
	}
	edo_tcp_listener_drop(l);

	/* Ctrl-C: no more accepting; open connections finish, up to the deadline. */
	graceful_stop();
	for (int waited = 0; graceful_live() > 0 && waited < GRACEFUL_DEADLINE_MS; waited += 10)
		if (edo_fiber_sleep(EDO_MS(10)) < 0)
			break;
	printf("hello_server_fiber: stopped (%zu connections cut off)\n", graceful_live());
	return NULL;
}

static int parse_args(int argc, char **argv, long *port, long *threads)
{
	for (int i = 1; i < argc; i += 2) {
		char *end;
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
	if (parse_args(argc, argv, &port, &threads) < 0) {
		fprintf(stderr, "usage: %s [--port N] [--threads N]\n", argv[0]);
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
	edo_runtime *rt;
	int rc = edo_runtime_build(&b, &rt);
	if (rc < 0) {
		fprintf(stderr, "hello_server_fiber: runtime: %s\n", edo_strerror(rc));
		return 1;
	}
	/* The server is a fiber too; main blocks until it returns (what
	 * edo_block_on() does for a future). */
	server_args args = {.port = (uint16_t)port};
	rc = edo_fiber_block_on(rt, server, &args, &(edo_fiber_opts){.name = "server"}, NULL);
	edo_runtime_free(rt);
	return rc < 0 || args.rc < 0 ? 1 : 0;
}
