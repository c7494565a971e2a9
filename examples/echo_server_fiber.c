/* The TCP echo server of echo_server.c, written with stackful fibers: each
 * connection is plain blocking-style C.
 *
 *   echo_server_fiber [--port N] [--threads N]     (defaults: 7007, 0)
 *
 * It behaves exactly as echo_server: it listens on 127.0.0.1 and sends back
 * every byte a client sends, until the client shuts its side down; then it
 * shuts its own side down too.  Ctrl-C stops it gracefully (graceful.h).
 * --threads 0 runs the current-thread runtime, N a multi-thread runtime
 * with N workers.
 *
 * One fiber per connection (edo/fiber.h): read what is there, write all of
 * it back.  The reads and writes suspend the fiber, not the thread, while
 * the socket is not ready.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "edo.h"
#include "graceful.h"

/* One connection: echo until the client shuts its side down. */
static void *serve(void *arg)
{
	edo_tcp_stream *s = arg;
	edo_stream *io = edo_tcp_stream_io(s);
	graceful_conn g = {0};
	char buf[3072];

	if (graceful_join(&g, s)) {
		for (;;) {
			ssize_t n = edo_fiber_stream_read(io, buf, sizeof buf);
			if (n <= 0)
				break; /* the client shut down (0), an error, or cancelled */
			if (edo_fiber_stream_write_all(io, buf, (size_t)n) < 0)
				break;
			if (graceful_stopping())
				break; /* Ctrl-C: what was read is echoed */
		}
		edo_tcp_stream_shutdown(s, SHUT_WR);
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
		fprintf(stderr, "echo_server_fiber: bind 127.0.0.1:%u: %s\n", args->port,
			edo_strerror(rc));
		args->rc = rc;
		return NULL;
	}
	edo_tcp_listener_local_addr(l, &a);
	edo_addr_format(&a, txt, sizeof txt);
	printf("echo_server_fiber: listening on %s\n", txt);
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
			fprintf(stderr, "echo_server_fiber: accept: %s\n", edo_strerror(rc));
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
	printf("echo_server_fiber: stopped (%zu connections cut off)\n", graceful_live());
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
	long port = 7007, threads = 0;
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
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, threads ? EDO_RT_MULTI_THREAD : EDO_RT_CURRENT_THREAD);
	b.worker_threads = (unsigned)threads;
	edo_runtime *rt;
	int rc = edo_runtime_build(&b, &rt);
	if (rc < 0) {
		fprintf(stderr, "echo_server_fiber: runtime: %s\n", edo_strerror(rc));
		return 1;
	}
	/* The server is a fiber too; main blocks until it returns (what
	 * edo_block_on() does for a future). */
	server_args args = {.port = (uint16_t)port};
	rc = edo_fiber_block_on(rt, server, &args, &(edo_fiber_opts){.name = "server"}, NULL);
	edo_runtime_free(rt);
	return rc < 0 || args.rc < 0 ? 1 : 0;
}
