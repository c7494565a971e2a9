/* Tutorial step 2 (docs/tutorial.md): speak RESP; PING and ECHO; pipelining.
 *
 *   step2_resp [--port N] [--threads N]      then: redis-cli -p N echo hello
 *
 * Step 1's skeleton with a protocol.  A request is an array of bulk strings:
 *
 *     *2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n       ->   $5\r\nhello\r\n
 *
 * The connection keeps what it has read in a buffer, runs every complete
 * request at its front (a client may send many before reading any answer:
 * pipelining), writes all the answers in one write, and keeps the start of a
 * request that has not fully arrived for the next read.  Everything is
 * bounded: a request that does not fit the buffer, or breaks the grammar,
 * gets an error and the connection is closed.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "edo.h"

#define MAX_ARGS 16
#define BUF_SIZE 16384 /* the largest request, and the reply buffer */

typedef struct arg {
	const char *p;
	size_t n;
} arg;

/* The number after the type byte at *pos, up to "\r\n".  1: read (and *pos
 * moved past it), 0: not all here yet, -1: malformed. */
static int read_number(const char *buf, size_t len, size_t *pos, long *out)
{
	size_t i = *pos + 1;
	long v = 0;
	for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
		if (v > BUF_SIZE)
			return -1; /* larger than anything that fits */
		v = v * 10 + (buf[i] - '0');
	}
	if (i + 1 >= len)
		return i < len && buf[i] != '\r' ? -1 : 0;
	if (i == *pos + 1 || buf[i] != '\r' || buf[i + 1] != '\n')
		return -1;
	*pos = i + 2;
	*out = v;
	return 1;
}

/* Parses the request at the front of buf[0..len).  Returns its size in
 * bytes, 0 if it has not fully arrived, -1 if it is malformed. */
static long parse_request(const char *buf, size_t len, arg *argv, int *argc)
{
	size_t pos = 0;
	long n, blen;
	int r;
	if (len == 0)
		return 0;
	if (buf[0] != '*')
		return -1;
	if ((r = read_number(buf, len, &pos, &n)) <= 0)
		return r;
	if (n < 1 || n > MAX_ARGS)
		return -1;
	for (int i = 0; i < n; i++) {
		if (pos >= len)
			return 0;
		if (buf[pos] != '$')
			return -1;
		if ((r = read_number(buf, len, &pos, &blen)) <= 0)
			return r;
		if (len - pos < (size_t)blen + 2)
			return 0;
		if (buf[pos + blen] != '\r' || buf[pos + blen + 1] != '\n')
			return -1;
		argv[i] = (arg){buf + pos, (size_t)blen};
		pos += (size_t)blen + 2;
	}
	*argc = (int)n;
	return (long)pos;
}

typedef struct conn_frame {
	EDO_FRAME;
	edo_tcp_stream *s;
	size_t filled, start; /* bytes in `in`; where the next request starts */
	long used;            /* size of the request being run */
	arg argv[MAX_ARGS];
	int argc;
	size_t out_len;
	ssize_t n;
	edo_write_all_fut wa;
	char in[BUF_SIZE];
	char out[BUF_SIZE + 64];
} conn_frame;

static void conn_cleanup(conn_frame *self)
{
	edo_tcp_stream_close(self->s);
}

static void reply(conn_frame *self, const char *p, size_t n)
{
	memcpy(self->out + self->out_len, p, n);
	self->out_len += n;
}

static void reply_bulk(conn_frame *self, const arg *a)
{
	self->out_len += (size_t)sprintf(self->out + self->out_len, "$%zu\r\n", a->n);
	reply(self, a->p, a->n);
	reply(self, "\r\n", 2);
}

/* Runs one request; its reply is never longer than the request plus 64 bytes. */
static void execute(conn_frame *self)
{
	const arg *cmd = &self->argv[0];
	if (cmd->n == 4 && strncasecmp(cmd->p, "ping", 4) == 0 && self->argc == 1)
		reply(self, "+PONG\r\n", 7);
	else if (cmd->n == 4 && strncasecmp(cmd->p, "echo", 4) == 0 && self->argc == 2)
		reply_bulk(self, &self->argv[1]);
	else
		self->out_len += (size_t)sprintf(self->out + self->out_len,
						 "-ERR unknown command '%.*s'\r\n",
						 (int)(cmd->n < 32 ? cmd->n : 32), cmd->p);
}

EDO_ASYNC(conn, conn_frame, conn_cleanup)
{
	EDO_BEGIN();
	for (;;) {
		if (self->filled == sizeof self->in)
			break; /* a request larger than the buffer: not for this server */
		EDO_AWAIT_POLL(edo_tcp_stream_poll_read(self->s, cx, self->in + self->filled,
							sizeof self->in - self->filled, &self->n));
		if (self->n <= 0)
			break;
		self->filled += (size_t)self->n;
		/* Run every complete request; flush when the replies could overflow. */
		for (self->start = 0;; self->start += (size_t)self->used) {
			self->used =
				parse_request(self->in + self->start, self->filled - self->start,
					      self->argv, &self->argc);
			if (self->used == 0)
				break;
			if (self->used < 0) {
				reply(self, "-ERR Protocol error\r\n", 21);
				EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->s),
							self->out, self->out_len));
				EDO_RETURN();
			}
			if (self->out_len + (size_t)self->used + 64 > sizeof self->out) {
				EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->s),
							self->out, self->out_len));
				if (self->wa.rc < 0)
					EDO_RETURN();
				self->out_len = 0;
			}
			execute(self);
		}
		/* One write for the whole batch of replies. */
		EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->s), self->out,
					self->out_len));
		if (self->wa.rc < 0)
			break;
		self->out_len = 0;
		/* Keep the start of a request still arriving. */
		memmove(self->in, self->in + self->start, self->filled - self->start);
		self->filled -= self->start;
	}
	EDO_END();
}

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
		printf("step2: listening on %s\n", txt);
		fflush(stdout);
	}
	for (;;) {
		EDO_AWAIT_POLL(
			edo_tcp_listener_poll_accept(self->l, cx, &self->s, NULL, &self->rc));
		if (self->rc < 0)
			continue;
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
