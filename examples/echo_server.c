/* A TCP echo server on Edo: every byte a client sends comes back.
 *
 *   echo_server [--port N] [--threads N]     (defaults: 7007, 0)
 *
 * It listens on 127.0.0.1.  --threads 0 runs the current-thread runtime, N
 * a multi-thread runtime with N workers.  One task per connection: read
 * what is there, write all of it back, until the client shuts its side
 * down; then shut ours down too.
 *
 * Ctrl-C stops it gracefully (graceful.h): it stops accepting, lets open
 * connections echo what they have read, closes them, and exits 0, within
 * 5 seconds.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "edo.h"
#include "graceful.h"

typedef struct conn_frame {
	EDO_FRAME;
	edo_tcp_stream *s;
	ssize_t n;
	edo_write_all_fut wa;
	graceful_conn g;
	char buf[3072];
} conn_frame;

static void conn_cleanup(conn_frame *self)
{
	graceful_leave(&self->g);
	edo_tcp_stream_close(self->s);
}

EDO_ASYNC(conn, conn_frame, conn_cleanup)
{
	EDO_BEGIN();
	if (!graceful_join(&self->g, self->s))
		EDO_RETURN(); /* shutting down */
	for (;;) {
		EDO_AWAIT_POLL(edo_tcp_stream_poll_read(self->s, cx, self->buf, sizeof self->buf,
							&self->n));
		if (self->n <= 0)
			break; /* the client shut down (0), or an error */
		EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->s), self->buf,
					(size_t)self->n));
		if (self->wa.rc < 0)
			EDO_RETURN();
		if (graceful_stopping())
			break; /* Ctrl-C: what was read is echoed */
	}
	edo_tcp_stream_shutdown(self->s, SHUT_WR);
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
			fprintf(stderr, "echo_server: bind 127.0.0.1:%u: %s\n", self->port,
				edo_strerror(self->rc));
			EDO_RETURN();
		}
		edo_tcp_listener_local_addr(self->l, &a);
		edo_addr_format(&a, txt, sizeof txt);
		printf("echo_server: listening on %s\n", txt);
		fflush(stdout);
	}
	edo_ctrl_c(&self->cc);
	for (;;) {
		EDO_AWAIT_POLL(accept_or_ctrl_c(self, cx));
		if (self->stop)
			break;
		if (self->rc < 0) {
			fprintf(stderr, "echo_server: accept: %s\n", edo_strerror(self->rc));
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
	printf("echo_server: stopped (%zu connections cut off)\n", graceful_live());
	EDO_END();
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
		fprintf(stderr, "echo_server: runtime: %s\n", edo_strerror(rc));
		return 1;
	}
	server_frame srv = {EDO_FRAME_INIT(server), .port = (uint16_t)port};
	rc = edo_block_on(rt, &srv.edo_base);
	edo_runtime_free(rt);
	return rc < 0 || srv.rc < 0 ? 1 : 0;
}
