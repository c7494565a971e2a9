/* Tutorial step 1 (docs/tutorial.md): a server that answers PONG.
 *
 *   step1_pong [--port N] [--threads N]      then: redis-cli -p N ping
 *
 * The skeleton of every server in the tutorial, taken from
 * examples/hello_server.c: a runtime, a listener, a task that accepts, and
 * one task per connection.  Each connection task reads whatever arrives and
 * answers "+PONG\r\n" to each read: not yet a protocol, but redis-cli's PING
 * gets its PONG.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edo.h"

/* One connection: everything that lives across an await is in the frame. */
typedef struct conn_frame {
	EDO_FRAME;
	edo_tcp_stream *s;
	ssize_t n;
	edo_write_all_fut wa;
	char buf[4096];
} conn_frame;

/* Runs once, however the task ends: finished, failed or cancelled. */
static void conn_cleanup(conn_frame *self)
{
	edo_tcp_stream_close(self->s);
}

EDO_ASYNC(conn, conn_frame, conn_cleanup)
{
	EDO_BEGIN();
	for (;;) {
		EDO_AWAIT_POLL(edo_tcp_stream_poll_read(self->s, cx, self->buf, sizeof self->buf,
							&self->n));
		if (self->n <= 0)
			break; /* the client closed (0), or an error (< 0) */
		EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->s), "+PONG\r\n", 7));
		if (self->wa.rc < 0)
			break;
	}
	EDO_END();
}

/* The server: listen, then accept forever, one task per connection. */
typedef struct server_frame {
	EDO_FRAME;
	uint16_t port;
	edo_tcp_listener *l;
	edo_tcp_stream *s;
	int rc;
} server_frame;

static void server_cleanup(server_frame *self)
{
	edo_tcp_listener_close(self->l);
}

EDO_ASYNC(server, server_frame, server_cleanup)
{
	EDO_BEGIN();
	{
		edo_addr a;
		char txt[EDO_ADDR_STRLEN];
		edo_addr_ip(&a, "127.0.0.1", self->port);
		self->rc = edo_tcp_listener_bind(&a, NULL, &self->l);
		if (self->rc < 0) {
			fprintf(stderr, "bind: %s\n", edo_strerror(self->rc));
			EDO_RETURN();
		}
		edo_tcp_listener_local_addr(self->l, &a);
		edo_addr_format(&a, txt, sizeof txt);
		printf("step1: listening on %s\n", txt);
		fflush(stdout);
	}
	for (;;) {
		EDO_AWAIT_POLL(
			edo_tcp_listener_poll_accept(self->l, cx, &self->s, NULL, &self->rc));
		if (self->rc < 0)
			continue; /* a failed accept; the listener backs off by itself */
		edo_tcp_stream_set_nodelay(self->s, true);
		if (EDO_SPAWN(NULL, conn, .s = self->s) < 0)
			edo_tcp_stream_close(self->s);
	}
	EDO_END();
}

int main(int argc, char **argv)
{
	long port = 6379, threads = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0)
			port = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--threads") == 0)
			threads = strtol(argv[i + 1], NULL, 10);
	}
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, threads ? EDO_RT_MULTI_THREAD : EDO_RT_CURRENT_THREAD);
	b.worker_threads = (unsigned)threads;
	edo_runtime *rt;
	if (edo_runtime_build(&b, &rt) < 0)
		return 1;
	server_frame srv = {EDO_FRAME_INIT(server), .port = (uint16_t)port};
	edo_block_on(rt, &srv.edo_base);
	edo_runtime_free(rt);
	return srv.rc < 0 ? 1 : 0;
}
