/* mini-redis — one task per connection.
 *
 * The connection is a stackless coroutine whose frame holds the client's
 * buffers.  Its loop:
 *
 *   ┌─▶ run every complete request in `in` (pipelining: as many as arrived),
 *   │   their replies appended to `out`; stop early once `out` holds
 *   │   OUT_FLUSH_AT bytes, so a long pipeline never buffers without bound
 *   │   write `out` (one write for the whole batch, usually)
 *   └── wait for more bytes (and, while subscribed, for published messages)
 *
 * A protocol error is answered, then the connection is closed; so is a
 * subscriber that fell too far behind its channels.  Shutdown: the server
 * sets `stopping` and wakes every connection through an edo_notify; a
 * connection sees it the next time it would wait for input, so a request
 * that has arrived is always answered first.
 */
#include <stdlib.h>

#include "server.h"

/* What run_requests() asks for next. */
enum { RUN_INPUT, RUN_FLUSH, RUN_YIELD, RUN_CLOSE };
/* What wait_input() saw. */
enum { GOT_INPUT, GOT_EOF, GOT_LAGGED, GOT_STOP };

#define READ_MIN 2048           /* read at least this much at once */
#define LINGER_BYTES (1u << 20) /* what a closing connection reads and drops, at most */
#define KEEP_IDLE (64u * 1024u) /* an idle connection keeps buffers up to this size */

static void conn_cleanup(conn_frame *self)
{
	server *srv = self->srv;
	edo_future_drop(&self->stop.base);
	edo_future_drop(&self->linger.base);
	edo_future_drop(&self->nap.base);
	client_unsubscribe_all(&self->c);
	rbuf_free(&self->c.out);
	rbuf_free(&self->in);
	resp_parser_free(&self->p);
	edo_tcp_stream_close(self->s);
	atomic_fetch_sub(&srv->connected, 1);
	if (self->permit)
		edo_semaphore_release(&srv->clients, 1);
}

/* Executes the complete requests at the front of `in`. */
static int run_requests(conn_frame *self)
{
	client *c = &self->c;
	while (!c->quit && self->parsed < self->in.len) {
		if (c->out.len >= OUT_FLUSH_AT || c->published >= PUBLISH_YIELD)
			break;
		size_t used;
		char *req = self->in.data + self->parsed;
		resp_status st = resp_parse(&self->p, req, self->in.len - self->parsed, &used);
		if (st == RESP_MORE)
			break;
		if (st == RESP_ERROR) {
			resp_errorf(&c->out, "ERR %s", self->p.error);
			c->quit = true;
			break;
		}
		c->base = req;
		c->args = self->p.args;
		c->argc = self->p.argc;
		cmd_execute(c);
		self->parsed += used;
	}
	client_release(c); /* before any await */
	/* One counter update per batch, not per command. */
	server_count_commands(c->srv, c->commands);
	c->commands = 0;
	if (!c->quit && self->parsed < self->in.len) {
		/* More to run once this is written, or once the subscribers of a
		 * burst of PUBLISH had a turn. */
		if (c->published >= PUBLISH_YIELD)
			return RUN_YIELD;
		if (c->out.len >= OUT_FLUSH_AT)
			return RUN_FLUSH;
	}
	c->published = 0; /* the connection will wait for input: that yields */
	/* Keep only the start of the request still arriving, at the front. */
	rbuf_consume(&self->in, self->parsed);
	self->parsed = 0;
	return c->quit ? RUN_CLOSE : RUN_INPUT;
}

/* READY once the client sent bytes (appended to `in`) or, while subscribed,
 * messages were appended to `out`; or at end of stream, lag or shutdown.
 * self->state says which. */
static edo_poll wait_input(conn_frame *self, edo_cx *cx)
{
	client *c = &self->c;
	bool got = false;
	if (atomic_load_explicit(&self->srv->stopping, memory_order_relaxed)) {
		self->state = GOT_STOP;
		return EDO_READY;
	}
	/* Every subscription in turn, from a rotating start: a busy channel
	 * must not starve the others. */
	for (size_t k = 0; k < c->nsubs && c->out.len < OUT_FLUSH_AT; k++) {
		int rc;
		ps_sub *sub = &c->subs[(self->next_sub + k) % c->nsubs];
		if (pubsub_poll(self->srv->ps, sub, cx, &c->out, OUT_FLUSH_AT, &rc) == EDO_READY) {
			if (rc == EDO_ELAGGED) {
				self->state = GOT_LAGGED;
				return EDO_READY;
			}
			got = true;
		}
	}
	self->next_sub++;
	if (edo_tcp_stream_poll_read(self->s, cx, self->in.data + self->in.len,
				     self->in.cap - self->in.len, &self->n) == EDO_READY) {
		if (self->n <= 0) {
			self->state = GOT_EOF; /* the client closed, or an error */
			return EDO_READY;
		}
		self->in.len += (size_t)self->n;
		got = true;
	}
	self->state = GOT_INPUT;
	return got ? EDO_READY : EDO_PENDING;
}

/* Reads and drops what the client still sends, until it closes, 1 s passes
 * or LINGER_BYTES came.  Closing a socket with unread bytes resets the
 * connection, and a reset can destroy the last reply before the client has
 * read it: this is nginx's "lingering close". */
static edo_poll linger(conn_frame *self, edo_cx *cx)
{
	for (;;) {
		if (edo_future_poll(&self->linger.base, cx) == EDO_READY)
			return EDO_READY;
		if (edo_tcp_stream_poll_read(self->s, cx, self->in.data, self->in.cap, &self->n) ==
		    EDO_PENDING)
			return EDO_PENDING;
		if (self->n <= 0 || (self->parsed += (size_t)self->n) >= LINGER_BYTES)
			return EDO_READY;
	}
}

EDO_ASYNC_PUBLIC(conn, conn_frame, conn_cleanup)
{
	EDO_BEGIN();
	self->c.srv = self->srv;
	self->c.out.limit = OUT_LIMIT;
	/* The parser never needs more than a whole request (or line), plus a read. */
	self->in.limit =
		self->srv->limits.max_request + self->srv->limits.max_inline + 2 * READ_MIN;
	resp_parser_init(&self->p, &self->srv->limits);
	/* Register for the shutdown notification once: the future keeps this
	 * task's waker, and the loop reads the flag. */
	edo_notify_notified(&self->stop, &self->srv->stop);
	if (edo_future_poll(&self->stop.base, cx) == EDO_READY)
		EDO_RETURN();
	for (;;) {
		self->state = run_requests(self);
		if (self->c.out.len) {
			EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->s),
						self->c.out.data, self->c.out.len));
			if (self->wa.rc < 0)
				EDO_RETURN(); /* the client went away */
			self->c.out.len = 0;
			rbuf_shrink(&self->c.out, KEEP_IDLE);
		}
		if (self->state == RUN_CLOSE) {
			/* QUIT or a protocol error: the reply is out; end our side
			 * and let the client read it before the socket closes. */
			edo_tcp_stream_shutdown(self->s, SHUT_WR);
			self->in.len = self->parsed = 0;
			if (rbuf_reserve(&self->in, READ_MIN)) {
				edo_sleep_init(&self->linger, EDO_SEC(1));
				EDO_AWAIT_POLL(linger(self, cx));
			}
			break;
		}
		if (self->state == RUN_FLUSH)
			continue;
		if (self->state == RUN_YIELD) {
			self->c.published = 0;
			if (!self->c.behind_len) {
				EDO_YIELD();
				continue;
			}
			/* A channel's slowest subscriber is half a ring behind: give
			 * it up to PUBLISH_WAIT_MS to catch up (pubsub.h). */
			for (self->napped = 0;
			     self->napped < PUBLISH_WAIT_MS &&
			     pubsub_behind(self->srv->ps, self->c.behind, self->c.behind_len);
			     self->napped++)
				EDO_AWAIT_SLEEP(&self->nap, EDO_MS(1));
			self->c.behind_len = 0;
			continue;
		}
		rbuf_shrink(&self->in, KEEP_IDLE);
		/* Room for the rest of a large request, or at least one read. */
		if (!rbuf_reserve(&self->in, self->p.need > self->in.len + READ_MIN ?
						     self->p.need - self->in.len :
						     READ_MIN))
			break; /* out of memory */
		EDO_AWAIT_POLL(wait_input(self, cx));
		if (self->state != GOT_INPUT)
			break;
	}
	EDO_END();
}
