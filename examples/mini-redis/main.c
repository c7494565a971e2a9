/* mini-redis — a Redis-compatible server on Edo.
 *
 *   mini-redis [--port N] [--threads N] [--max-clients N]
 *              (defaults: 6379, 0, 10000)
 *   redis-cli -p 6379 set greeting hello
 *
 * It listens on 127.0.0.1 and speaks RESP2 to redis-cli, redis-benchmark and
 * any Redis client: strings (GET, SET with EX/PX/NX/XX, INCR, MGET, ...),
 * expiry (EXPIRE, TTL, PTTL), publish/subscribe, and enough of CONFIG GET and
 * COMMAND for the tools.  --threads 0 runs the current-thread runtime, N a
 * multi-thread runtime with N workers.  Ctrl-C (or SIGTERM) shuts it down
 * gracefully: it stops accepting, lets every connection answer what it has
 * received, and waits for them (5 s at most).
 *
 * The tasks: this file's main task, which owns the listener and the
 * shutdown; an acceptor; one task per connection (conn.c); the expiry task
 * (db.c).  docs/tutorial.md builds it up step by step.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "server.h"

/* ---- the statistics ---------------------------------------------------------------------- */

/* The stripe of server.commands this thread adds to, plus one (0: none yet).
 * Threads take stripes in turn; past COMMAND_STRIPES threads they share. */
static __thread unsigned my_stripe;
static _Atomic(unsigned) stripes_taken;

void server_count_commands(server *srv, uint64_t n)
{
	if (!n)
		return;
	if (!my_stripe) {
		unsigned k = atomic_fetch_add_explicit(&stripes_taken, 1, memory_order_relaxed);
		my_stripe = k % COMMAND_STRIPES + 1;
	}
	atomic_fetch_add_explicit(&srv->commands[my_stripe - 1].n, n, memory_order_relaxed);
}

uint64_t server_total_commands(server *srv)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < COMMAND_STRIPES; i++)
		sum += atomic_load_explicit(&srv->commands[i].n, memory_order_relaxed);
	return sum;
}

/* ---- the acceptor ------------------------------------------------------------------------- */

typedef struct acceptor_frame {
	EDO_FRAME;
	server *srv;
	edo_tcp_listener *l;
	edo_tcp_stream *s;
	int rc;
} acceptor_frame;

static void acceptor_cleanup(acceptor_frame *self)
{
	edo_tcp_listener_close(self->l);
}

/* Redis's answer to one client too many; then the connection is closed. */
static const char TOO_MANY[] = "-ERR max number of clients reached\r\n";

EDO_ASYNC(acceptor, acceptor_frame, acceptor_cleanup)
{
	EDO_BEGIN();
	for (;;) {
		EDO_AWAIT_POLL(
			edo_tcp_listener_poll_accept(self->l, cx, &self->s, NULL, &self->rc));
		if (self->rc < 0) {
			if (self->rc == -EBADF || self->rc == EDO_ESHUTDOWN)
				break;
			fprintf(stderr, "mini-redis: accept: %s\n", edo_strerror(self->rc));
			continue;
		}
		edo_tcp_stream_set_nodelay(self->s, true);
		/* The connection limit: one permit per connection, never waited for. */
		if (edo_semaphore_try_acquire(&self->srv->clients) < 0) {
			edo_tcp_stream_try_write(self->s, TOO_MANY, sizeof TOO_MANY - 1);
			edo_tcp_stream_close(self->s);
			continue;
		}
		atomic_fetch_add(&self->srv->connected, 1);
		atomic_fetch_add(&self->srv->total_connections, 1);
		if (EDO_SPAWN(NULL, conn, .srv = self->srv, .s = self->s, .permit = true) < 0) {
			/* Not spawned: the frame was never the task's, so undo by hand. */
			atomic_fetch_sub(&self->srv->connected, 1);
			edo_semaphore_release(&self->srv->clients, 1);
			edo_tcp_stream_close(self->s);
		}
	}
	EDO_END();
}

/* ---- the main task: listen, serve, shut down --------------------------------------------- */

typedef struct main_frame {
	EDO_FRAME;
	server *srv;
	edo_tcp_listener *l;
	edo_join *acceptor, *purge;
	int rc;
	edo_signal *term;
	edo_ctrl_c_fut ctrl_c;
	edo_signal_recv_fut term_recv;
	edo_future *waits[2];
	edo_select_fut sel;
	edo_acquire_fut drain;
	edo_timeout drain_to;
} main_frame;

static void main_cleanup(main_frame *self)
{
	edo_tcp_listener_close(self->l);
	edo_join_detach(self->acceptor);
	edo_join_detach(self->purge);
	edo_signal_drop(self->term);
}

EDO_ASYNC(main_task, main_frame, main_cleanup)
{
	EDO_BEGIN();
	{
		edo_addr a;
		char txt[EDO_ADDR_STRLEN];
		edo_addr_ip(&a, "127.0.0.1", self->srv->port);
		self->rc =
			edo_tcp_listener_bind(&a, &(edo_tcp_bind_opts){.backlog = 4096}, &self->l);
		if (self->rc < 0) {
			fprintf(stderr, "mini-redis: bind 127.0.0.1:%u: %s\n", self->srv->port,
				edo_strerror(self->rc));
			EDO_RETURN();
		}
		edo_tcp_listener_local_addr(self->l, &a);
		self->srv->port = edo_addr_port(&a);
		edo_addr_format(&a, txt, sizeof txt);
		self->srv->started = edo_instant_now();
		printf("mini-redis: listening on %s (%s runtime, %ld worker%s, max %zu clients)\n",
		       txt, self->srv->threads ? "multi-thread" : "current-thread",
		       self->srv->threads ? self->srv->threads : 1,
		       self->srv->threads > 1 ? "s" : "", self->srv->max_clients);
		fflush(stdout);
	}
	self->rc = EDO_SPAWN(&self->purge, db_purge, .d = self->srv->db);
	if (self->rc == 0) {
		self->rc = EDO_SPAWN(&self->acceptor, acceptor, .srv = self->srv, .l = self->l);
		if (self->rc == 0)
			self->l = NULL; /* the acceptor's now */
	}
	if (self->rc < 0) {
		fprintf(stderr, "mini-redis: spawn: %s\n", edo_strerror(self->rc));
		EDO_RETURN();
	}
	/* Serve until Ctrl-C or SIGTERM. */
	self->rc = edo_signal_new(SIGTERM, &self->term);
	self->waits[0] = edo_ctrl_c(&self->ctrl_c);
	self->waits[1] = self->rc == 0 ? edo_signal_recv(&self->term_recv, self->term) : NULL;
	EDO_AWAIT(edo_select(&self->sel, self->waits, 2, 0));
	printf("mini-redis: shutting down\n");
	fflush(stdout);
	self->rc = 0;
	/* 1. Stop accepting: dropping the acceptor closes the listener. */
	edo_join_abort(self->acceptor);
	EDO_AWAIT_JOIN(self->acceptor, &self->rc);
	/* 2. Tell every connection; each finishes what it has received and
	 *    closes, giving its permit back.  All permits back = all gone. */
	atomic_store(&self->srv->stopping, true);
	edo_notify_waiters(&self->srv->stop);
	EDO_AWAIT_TIMEOUT(&self->drain_to,
			  edo_semaphore_acquire_many(&self->drain, &self->srv->clients,
						     self->srv->max_clients),
			  EDO_SEC(5));
	if (self->drain_to.result != 0)
		fprintf(stderr, "mini-redis: %zu connection(s) still open after 5 s\n",
			atomic_load(&self->srv->connected));
	/* 3. Stop the expiry task. */
	db_purge_stop(self->srv->db);
	EDO_AWAIT_JOIN(self->purge, &self->rc);
	self->rc = 0;
	EDO_END();
}

/* ---- the program ------------------------------------------------------------------------------ */

static int parse_args(int argc, char **argv, long *port, long *threads, long *max_clients)
{
	for (int i = 1; i < argc; i += 2) {
		char *end;
		long *dst = strcmp(argv[i], "--port") == 0        ? port :
			    strcmp(argv[i], "--threads") == 0     ? threads :
			    strcmp(argv[i], "--max-clients") == 0 ? max_clients :
								    NULL;
		if (!dst || i + 1 >= argc)
			return -1;
		*dst = strtol(argv[i + 1], &end, 10);
		if (*end || *dst < 0)
			return -1;
	}
	return *port <= 65535 && *threads <= 1024 && *max_clients >= 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	long port = 6379, threads = 0, max_clients = 10000;
	if (parse_args(argc, argv, &port, &threads, &max_clients) < 0) {
		fprintf(stderr, "usage: %s [--port N] [--threads N] [--max-clients N]\n", argv[0]);
		return 2;
	}
	/* Many connections need many descriptors; leave 32 for everything else. */
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)max_clients + 32 > r.rlim_cur) {
		max_clients = r.rlim_cur > 64 ? (long)r.rlim_cur - 32 : 32;
		fprintf(stderr, "mini-redis: max clients lowered to %ld (open files limit)\n",
			max_clients);
	}

	server srv = {.port = (uint16_t)port,
		      .threads = threads,
		      .max_clients = (size_t)max_clients};
	resp_limits_default(&srv.limits);
	edo_notify_init(&srv.stop);
	if (edo_semaphore_init(&srv.clients, srv.max_clients) < 0 ||
	    db_new(threads > 0, &srv.db) < 0 || pubsub_new(threads > 0, &srv.ps) < 0) {
		fprintf(stderr, "mini-redis: out of memory\n");
		return 1;
	}

	edo_runtime_builder b;
	edo_runtime_builder_init(&b, threads ? EDO_RT_MULTI_THREAD : EDO_RT_CURRENT_THREAD);
	b.worker_threads = (unsigned)threads;
	edo_runtime *rt;
	int rc = edo_runtime_build(&b, &rt);
	if (rc < 0) {
		fprintf(stderr, "mini-redis: runtime: %s\n", edo_strerror(rc));
		return 1;
	}
	main_frame m = {EDO_FRAME_INIT(main_task), .srv = &srv};
	rc = edo_block_on(rt, &m.edo_base);
	edo_runtime_free(rt); /* cancels what is left: connections past the drain */
	pubsub_free(srv.ps);
	db_free(srv.db);
	return rc < 0 || m.rc < 0 ? 1 : 0;
}
