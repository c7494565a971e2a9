#define _GNU_SOURCE
/* The stream utilities of edo/stream.h over the in-memory duplex pipe:
 * read_exact, write_all (vectored too), read_to_end, the buffered reader
 * and writer, read_until / read_line, lines (next_line), copy and
 * copy_bidirectional, on both runtime flavours. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "edo.h"
#include "harness.h"

static edo_runtime *make_rt(edo_rt_flavor flavor)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, flavor);
	b.worker_threads = 2;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	return rt;
}

static void run(edo_rt_flavor flavor, edo_future *main_fut)
{
	edo_runtime *rt = make_rt(flavor);
	CHECK_EQ(edo_block_on(rt, main_fut), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

static unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 7 + i / 251) & 0xff);
}

/* ---- a writer task sends a pattern with write_all; the reader checks it ------------------ */

#define BIG (1u << 20)

typedef struct send_frame {
	EDO_FRAME;
	edo_stream *s;
	size_t total, chunk;
	unsigned char *buf;
	edo_write_all_fut wa;
	int rc;
	bool shut;
} send_frame;

static void send_cleanup(send_frame *self)
{
	free(self->buf);
}

EDO_ASYNC(sender, send_frame, send_cleanup)
{
	EDO_BEGIN();
	self->buf = malloc(self->total);
	for (size_t i = 0; i < self->total; i++)
		self->buf[i] = pattern(i);
	for (self->chunk = 0; self->chunk < self->total; self->chunk += 100000) {
		EDO_AWAIT(edo_write_all(&self->wa, self->s, self->buf + self->chunk,
					self->total - self->chunk < 100000 ?
						self->total - self->chunk :
						100000));
		CHECK_EQ(self->wa.rc, 0);
	}
	if (self->shut) {
		EDO_AWAIT_POLL(edo_stream_poll_shutdown(self->s, cx, &self->rc));
		CHECK_EQ(self->rc, 0);
	}
	EDO_END();
}

typedef struct exact_frame {
	EDO_FRAME;
	edo_stream *a, *b;
	edo_join *h;
	unsigned char *got;
	edo_read_exact_fut rx;
	char extra;
	int rc;
} exact_frame;

static void exact_cleanup(exact_frame *self)
{
	free(self->got);
	edo_stream_drop(self->a);
	edo_stream_drop(self->b);
}

EDO_ASYNC(exact_main, exact_frame, exact_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_duplex(4096, &self->a, &self->b), 0);
	CHECK_EQ(EDO_SPAWN(&self->h, sender, .s = self->a, .total = BIG, .shut = true), 0);
	self->got = malloc(BIG);
	EDO_AWAIT(edo_read_exact(&self->rx, self->b, self->got, BIG));
	CHECK_EQ(self->rx.rc, 0);
	CHECK_EQ(self->rx.n, (size_t)BIG);
	for (size_t i = 0; i < BIG; i++)
		if (self->got[i] != pattern(i))
			CHECK_EQ(self->got[i], pattern(i));
	/* The writer shut down: one more byte is an unexpected end. */
	EDO_AWAIT(edo_read_exact(&self->rx, self->b, &self->extra, 1));
	CHECK_EQ(self->rx.rc, EDO_EEOF);
	CHECK_EQ(self->rx.n, (size_t)0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->h);
	EDO_END();
}

static void read_exact_case(edo_rt_flavor fl)
{
	exact_frame m = {EDO_FRAME_INIT(exact_main)};
	run(fl, &m.edo_base);
}
BOTH(read_exact_write_all, read_exact_case)

/* ---- read_to_end, and a dropped end --------------------------------------------------------- */

typedef struct rte2_frame {
	EDO_FRAME;
	edo_stream *a, *b;
	edo_join *h;
	edo_buf out;
	edo_read_to_end_fut rte;
	int rc;
} rte2_frame;

typedef struct drop_after_frame {
	EDO_FRAME;
	edo_stream *s;
	size_t total;
	edo_join *h;
	int rc;
} drop_after_frame;

/* Sends, then drops its end: the reader sees the end of the stream. */
EDO_ASYNC(send_then_drop, drop_after_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->h, sender, .s = self->s, .total = self->total), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->h);
	edo_stream_drop(self->s);
	EDO_END();
}

static void rte2_cleanup(rte2_frame *self)
{
	edo_buf_free(&self->out);
	edo_stream_drop(self->b);
}

EDO_ASYNC(rte2_main, rte2_frame, rte2_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_duplex(1000, &self->a, &self->b), 0);
	CHECK_EQ(EDO_SPAWN(&self->h, send_then_drop, .s = self->a, .total = 300000), 0);
	EDO_AWAIT(edo_read_to_end(&self->rte, self->b, &self->out));
	CHECK_EQ(self->rte.rc, 0);
	CHECK_EQ(self->rte.n, (size_t)300000);
	CHECK_EQ(self->out.len, (size_t)300000);
	for (size_t i = 0; i < self->out.len; i++)
		if ((unsigned char)self->out.data[i] != pattern(i))
			CHECK_EQ((unsigned char)self->out.data[i], pattern(i));
	EDO_AWAIT_JOIN(self->h, &self->rc);
	edo_join_detach(self->h);
	EDO_END();
}

static void read_to_end_case(edo_rt_flavor fl)
{
	rte2_frame m = {EDO_FRAME_INIT(rte2_main)};
	run(fl, &m.edo_base);
}
BOTH(read_to_end, read_to_end_case)

/* Writing to an end whose peer was dropped fails with -EPIPE. */
typedef struct epipe_frame {
	EDO_FRAME;
	edo_stream *a, *b;
	ssize_t n;
	char c;
} epipe_frame;

EDO_ASYNC(epipe_main, epipe_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_duplex(16, &self->a, &self->b), 0);
	edo_stream_drop(self->b);
	EDO_AWAIT_POLL(edo_stream_poll_write(self->a, cx, "x", 1, &self->n));
	CHECK_EQ(self->n, (ssize_t)-EPIPE);
	EDO_AWAIT_POLL(edo_stream_poll_read(self->a, cx, &self->c, 1, &self->n));
	CHECK_EQ(self->n, (ssize_t)0);
	edo_stream_drop(self->a);
	EDO_END();
}

TEST(duplex_dropped_peer)
{
	epipe_frame m = {EDO_FRAME_INIT(epipe_main)};
	run(EDO_RT_CURRENT_THREAD, &m.edo_base);
	CHECK_EQ(edo_duplex(16, NULL, NULL), -EINVAL);
}

/* A waker whose last reference drops a stream: what a task's waker does when
 * the task's future owns that stream and nothing else holds the task. */
typedef struct owning_waker {
	int refs;
	edo_stream *owned;
} owning_waker;

static edo_waker ow_clone(const void *d);
static void ow_drop(const void *d)
{
	owning_waker *o = (owning_waker *)(uintptr_t)d;
	if (--o->refs == 0) {
		edo_stream_drop(o->owned);
		o->owned = NULL;
	}
}
static void ow_wake(const void *d)
{
	ow_drop(d);
}
static void ow_wake_by_ref(const void *d)
{
	(void)d;
}
static const edo_waker_vtable ow_vt = {ow_clone, ow_wake, ow_wake_by_ref, ow_drop};
static edo_waker ow_clone(const void *d)
{
	((owning_waker *)(uintptr_t)d)->refs++;
	return (edo_waker){&ow_vt, d};
}

/* A waiting end's waker replaced by another task's: the old one is dropped
 * after the pipe's lock, since its drop may drop the other end of the same
 * pipe (which takes that lock).  Dropped under it, the poll deadlocked. */
TEST(duplex_replaced_waker_dropped_outside_the_lock)
{
	for (int dir = 0; dir < 2; dir++) {
		edo_stream *a, *b;
		CHECK_EQ(edo_duplex(1, &a, &b), 0);
		owning_waker o = {.refs = 1, .owned = b};
		edo_waker w = {&ow_vt, &o};
		edo_cx cx1 = {&w}, cx2 = {edo_noop_waker()};
		ssize_t n = 0;
		char c = 'x';
		if (dir == 0) {
			CHECK_EQ(edo_stream_poll_read(a, &cx1, &c, 1, &n), EDO_PENDING);
		} else {
			CHECK_EQ(edo_stream_poll_write(a, &cx1, &c, 1, &n), EDO_READY);
			CHECK_EQ(n, (ssize_t)1);
			CHECK_EQ(edo_stream_poll_write(a, &cx1, &c, 1, &n), EDO_PENDING);
		}
		CHECK_EQ(o.refs, 2);
		ow_drop(&o); /* the pipe's clone is now the only reference */
		if (dir == 0) {
			CHECK_EQ(edo_stream_poll_read(a, &cx2, &c, 1, &n), EDO_PENDING);
		} else {
			CHECK_EQ(edo_stream_poll_write(a, &cx2, &c, 1, &n), EDO_PENDING);
		}
		CHECK_EQ(o.refs, 0);
		CHECK(o.owned == NULL);
		/* b is gone: a sees the peer closed. */
		if (dir == 0) {
			CHECK_EQ(edo_stream_poll_read(a, &cx2, &c, 1, &n), EDO_READY);
			CHECK_EQ(n, (ssize_t)0);
		} else {
			CHECK_EQ(edo_stream_poll_write(a, &cx2, &c, 1, &n), EDO_READY);
			CHECK_EQ(n, (ssize_t)-EPIPE);
		}
		edo_stream_drop(a);
	}
}

/* ---- buffered reader: lines ------------------------------------------------------------------ */

typedef struct lines_writer_frame {
	EDO_FRAME;
	edo_stream *s;
	int i, nlines;
	char line[64];
	size_t len;
	edo_write_all_fut wa;
} lines_writer_frame;

static size_t make_line(char *buf, size_t cap, int i)
{
	/* Lines of varying length, some longer than the reader's buffer. */
	int reps = i % 13;
	size_t n = (size_t)snprintf(buf, cap, "line %d:", i);
	for (int r = 0; r < reps && n + 4 < cap; r++)
		buf[n++] = (char)('a' + r);
	buf[n++] = '\n';
	return n;
}

EDO_ASYNC(lines_writer, lines_writer_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->nlines; self->i++) {
		self->len = make_line(self->line, sizeof self->line, self->i);
		EDO_AWAIT(edo_write_all(&self->wa, self->s, self->line, self->len));
		CHECK_EQ(self->wa.rc, 0);
	}
	/* A last line without a newline. */
	EDO_AWAIT(edo_write_all(&self->wa, self->s, "tail", 4));
	edo_stream_drop(self->s);
	EDO_END();
}

typedef struct lines_frame {
	EDO_FRAME;
	edo_stream *a, *b;
	edo_buf_reader br;
	edo_read_until_fut ru;
	edo_buf line;
	edo_join *h;
	int i, rc;
	char want[64];
} lines_frame;

static void lines_cleanup(lines_frame *self)
{
	edo_buf_free(&self->line);
	edo_buf_reader_deinit(&self->br);
	edo_stream_drop(self->b);
}

#define NLINES 5000

EDO_ASYNC(lines_main, lines_frame, lines_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_duplex(100, &self->a, &self->b), 0);
	CHECK_EQ(edo_buf_reader_init(&self->br, self->b, 16), 0);
	CHECK_EQ(EDO_SPAWN(&self->h, lines_writer, .s = self->a, .nlines = NLINES), 0);
	for (self->i = 0; self->i < NLINES; self->i++) {
		self->line.len = 0;
		EDO_AWAIT(edo_read_line(&self->ru, &self->br, &self->line));
		CHECK_EQ(self->ru.rc, 0);
		size_t n = make_line(self->want, sizeof self->want, self->i);
		CHECK_EQ(self->line.len, n);
		CHECK(memcmp(self->line.data, self->want, n) == 0);
	}
	self->line.len = 0;
	EDO_AWAIT(edo_read_line(&self->ru, &self->br, &self->line));
	CHECK_EQ(self->ru.n, (size_t)4);
	CHECK(memcmp(self->line.data, "tail", 4) == 0);
	self->line.len = 0;
	EDO_AWAIT(edo_read_until(&self->ru, &self->br, ';', &self->line));
	CHECK_EQ(self->ru.rc, 0);
	CHECK_EQ(self->ru.n, (size_t)0); /* end of stream */
	EDO_AWAIT_JOIN(self->h, &self->rc);
	edo_join_detach(self->h);
	EDO_END();
}

static void lines_case(edo_rt_flavor fl)
{
	lines_frame m = {EDO_FRAME_INIT(lines_main)};
	run(fl, &m.edo_base);
}
BOTH(buf_reader_lines, lines_case)

/* ---- lines: one line at a time, terminators stripped, cancel-safe ---------------------------------- */

typedef struct next_lines_frame {
	EDO_FRAME;
	edo_stream *a, *b;
	edo_buf_reader br;
	edo_lines lines;
	edo_next_line_fut nl;
	edo_join *h;
	ssize_t n;
	int i, rc;
	char want[64];
} next_lines_frame;

static void next_lines_cleanup(next_lines_frame *self)
{
	edo_lines_deinit(&self->lines);
	edo_buf_reader_deinit(&self->br);
	edo_stream_drop(self->a);
	edo_stream_drop(self->b);
}

EDO_ASYNC(next_lines_main, next_lines_frame, next_lines_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_duplex(100, &self->a, &self->b), 0);
	CHECK_EQ(edo_buf_reader_init(&self->br, self->b, 8), 0);
	CHECK_EQ(edo_lines_init(&self->lines, &self->br), 0);
	/* A line arrives in pieces; the call waiting for its end is dropped
	 * halfway, and the next call goes on with what it had read. */
	EDO_AWAIT_POLL(edo_stream_poll_write(self->a, cx, "a line in ", 10, &self->n));
	CHECK_EQ(self->n, (ssize_t)10);
	edo_next_line(&self->nl, &self->lines);
	CHECK_EQ(edo_future_poll(&self->nl.base, cx), EDO_PENDING);
	edo_future_drop(&self->nl.base);
	EDO_AWAIT_POLL(edo_stream_poll_write(self->a, cx, "pieces\r\n\r\nx", 11, &self->n));
	CHECK_EQ(self->n, (ssize_t)11);
	EDO_AWAIT(edo_next_line(&self->nl, &self->lines));
	CHECK_EQ(self->nl.rc, 0);
	CHECK(!self->nl.eof);
	CHECK_STREQ(self->lines.line.data, "a line in pieces");
	EDO_AWAIT(edo_next_line(&self->nl, &self->lines));
	CHECK(!self->nl.eof);
	CHECK_EQ(self->lines.line.len, (size_t)0); /* an empty line is not the end */
	CHECK_STREQ(self->lines.line.data, "");
	/* Many lines, longer and shorter than the reader's buffer. */
	CHECK_EQ(EDO_SPAWN(&self->h, lines_writer, .s = self->a, .nlines = NLINES), 0);
	self->a = NULL; /* the writer drops it */
	for (self->i = 0; self->i < NLINES; self->i++) {
		EDO_AWAIT(edo_next_line(&self->nl, &self->lines));
		CHECK_EQ(self->nl.rc, 0);
		CHECK(!self->nl.eof);
		size_t n = make_line(self->want, sizeof self->want, self->i);
		self->want[n - 1] = 0;
		if (self->i == 0) { /* after the "x" left over above */
			CHECK_EQ(self->lines.line.data[0], 'x');
			CHECK_STREQ(self->lines.line.data + 1, self->want);
		} else {
			CHECK_STREQ(self->lines.line.data, self->want);
		}
	}
	/* The last line has no newline; then the end, for good. */
	EDO_AWAIT(edo_next_line(&self->nl, &self->lines));
	CHECK(!self->nl.eof);
	CHECK_STREQ(self->lines.line.data, "tail");
	EDO_AWAIT(edo_next_line(&self->nl, &self->lines));
	CHECK_EQ(self->nl.rc, 0);
	CHECK(self->nl.eof);
	EDO_AWAIT(edo_next_line(&self->nl, &self->lines));
	CHECK(self->nl.eof);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	edo_join_detach(self->h);
	/* Bad input. */
	EDO_AWAIT(edo_next_line(&self->nl, NULL));
	CHECK_EQ(self->nl.rc, -EINVAL);
	EDO_END();
}

static void next_lines_case(edo_rt_flavor fl)
{
	next_lines_frame m = {EDO_FRAME_INIT(next_lines_main)};
	run(fl, &m.edo_base);
	edo_lines l;
	CHECK_EQ(edo_lines_init(&l, NULL), -EINVAL);
}
BOTH(lines_next_line, next_lines_case)

/* ---- buffered writer and vectored writes ------------------------------------------------------ */

typedef struct bw_frame {
	EDO_FRAME;
	edo_stream *a, *b;
	edo_buf_writer bw;
	edo_write_all_fut wa;
	edo_write_all_vectored_fut wv;
	edo_read_to_end_fut rte;
	edo_buf out;
	edo_join *h;
	int i, rc;
	struct iovec iov[3];
	char small[16];
} bw_frame;

typedef struct collect_frame {
	EDO_FRAME;
	edo_stream *s;
	edo_buf out;
	edo_read_to_end_fut rte;
} collect_frame;

EDO_ASYNC(collect, collect_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT(edo_read_to_end(&self->rte, self->s, &self->out));
	CHECK_EQ(self->rte.rc, 0);
	edo_stream_drop(self->s);
	EDO_END();
}

static void bw_cleanup(bw_frame *self)
{
	edo_buf_writer_deinit(&self->bw);
}

EDO_ASYNC(bw_main, bw_frame, bw_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_duplex(64, &self->a, &self->b), 0);
	CHECK_EQ(EDO_SPAWN(&self->h, collect, .s = self->b), 0);
	CHECK_EQ(edo_buf_writer_init(&self->bw, self->a, 32), 0);
	for (self->i = 0; self->i < 1000; self->i++) {
		snprintf(self->small, sizeof self->small, "%04d", self->i);
		EDO_AWAIT(edo_write_all(&self->wa, &self->bw.base, self->small, 4));
		CHECK_EQ(self->wa.rc, 0);
		CHECK_LE(edo_buf_writer_buffered(&self->bw), (size_t)32);
	}
	/* Vectored: three buffers, through the buffer and around it. */
	self->iov[0] = (struct iovec){"<", 1};
	self->iov[1] = (struct iovec){"0123456789012345678901234567890123456789", 40};
	self->iov[2] = (struct iovec){">", 1};
	EDO_AWAIT(edo_write_all_vectored(&self->wv, &self->bw.base, self->iov, 3));
	CHECK_EQ(self->wv.rc, 0);
	CHECK_EQ(self->wv.n, (size_t)42);
	EDO_AWAIT_POLL(edo_stream_poll_shutdown(&self->bw.base, cx, &self->rc));
	CHECK_EQ(self->rc, 0);
	CHECK_EQ(edo_buf_writer_buffered(&self->bw), (size_t)0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	{
		collect_frame *c = EDO_JOIN_OUTPUT(self->h, collect);
		CHECK_EQ(c->out.len, (size_t)(4000 + 42));
		for (int i = 0; i < 1000; i++) {
			char want[16];
			snprintf(want, sizeof want, "%04d", i);
			CHECK(memcmp(c->out.data + 4 * i, want, 4) == 0);
		}
		CHECK(c->out.data[4000] == '<' && c->out.data[4041] == '>');
		edo_buf_free(&c->out);
	}
	edo_join_detach(self->h);
	edo_stream_drop(self->a);
	EDO_END();
}

static void bw_case(edo_rt_flavor fl)
{
	bw_frame m = {EDO_FRAME_INIT(bw_main)};
	run(fl, &m.edo_base);
}
BOTH(buf_writer, bw_case)

/* ---- copy and copy_bidirectional ----------------------------------------------------------------- */

/* An echo service on a duplex end: copy its reads back to its writes. */
typedef struct echo_frame {
	EDO_FRAME;
	edo_stream *s;
	edo_copy_fut cp;
} echo_frame;

EDO_ASYNC(echo_svc, echo_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT(edo_copy(&self->cp, self->s, self->s));
	CHECK_EQ(self->cp.rc, 0);
	EDO_AWAIT_POLL(edo_stream_poll_shutdown(self->s, cx, &self->cp.rc));
	edo_stream_drop(self->s);
	EDO_END();
}

/*
 *  client ──duplex1── proxy(copy_bidirectional) ──duplex2── echo
 */
typedef struct bidi_frame {
	EDO_FRAME;
	edo_stream *c, *p1, *p2, *e;
	edo_copy_bidi_fut bidi;
	edo_join *echo, *client;
	int rc;
} bidi_frame;

typedef struct client_frame {
	EDO_FRAME;
	edo_stream *s;
	edo_join *snd;
	edo_buf out;
	edo_read_to_end_fut rte;
	int rc;
} client_frame;

EDO_ASYNC(bidi_client, client_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->snd, sender, .s = self->s, .total = 200000, .shut = true), 0);
	EDO_AWAIT(edo_read_to_end(&self->rte, self->s, &self->out));
	CHECK_EQ(self->rte.rc, 0);
	CHECK_EQ(self->out.len, (size_t)200000);
	for (size_t i = 0; i < self->out.len; i++)
		if ((unsigned char)self->out.data[i] != pattern(i))
			CHECK_EQ((unsigned char)self->out.data[i], pattern(i));
	edo_buf_free(&self->out);
	EDO_AWAIT_JOIN(self->snd, &self->rc);
	edo_join_detach(self->snd);
	edo_stream_drop(self->s);
	EDO_END();
}

EDO_ASYNC(bidi_main, bidi_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_duplex(333, &self->c, &self->p1), 0);
	CHECK_EQ(edo_duplex(777, &self->p2, &self->e), 0);
	CHECK_EQ(EDO_SPAWN(&self->echo, echo_svc, .s = self->e), 0);
	CHECK_EQ(EDO_SPAWN(&self->client, bidi_client, .s = self->c), 0);
	EDO_AWAIT(edo_copy_bidirectional(&self->bidi, self->p1, self->p2));
	CHECK_EQ(self->bidi.rc, 0);
	CHECK_EQ(self->bidi.a_to_b, (uint64_t)200000);
	CHECK_EQ(self->bidi.b_to_a, (uint64_t)200000);
	EDO_AWAIT_JOIN(self->echo, &self->rc);
	CHECK_EQ(self->rc, 0);
	EDO_AWAIT_JOIN(self->client, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->echo);
	edo_join_detach(self->client);
	edo_stream_drop(self->p1);
	edo_stream_drop(self->p2);
	EDO_END();
}

static void bidi_case(edo_rt_flavor fl)
{
	bidi_frame m = {EDO_FRAME_INIT(bidi_main)};
	run(fl, &m.edo_base);
}
BOTH(copy_bidirectional, bidi_case)

/* A copy dropped while pending frees its buffer (ASan checks) and leaves
 * the streams usable. */
typedef struct cancel_copy_frame {
	EDO_FRAME;
	edo_stream *a, *b, *c, *d;
	edo_copy_fut cp;
	edo_yield_now y;
	ssize_t n;
	char buf[4];
} cancel_copy_frame;

EDO_ASYNC(cancel_copy_main, cancel_copy_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_duplex(64, &self->a, &self->b), 0);
	CHECK_EQ(edo_duplex(64, &self->c, &self->d), 0);
	edo_copy(&self->cp, self->b, self->c);
	CHECK_EQ(edo_future_poll(&self->cp.base, cx), EDO_PENDING);
	edo_future_drop(&self->cp.base);
	EDO_AWAIT_POLL(edo_stream_poll_write(self->a, cx, "abc", 3, &self->n));
	CHECK_EQ(self->n, (ssize_t)3);
	EDO_AWAIT_POLL(edo_stream_poll_read(self->b, cx, self->buf, sizeof self->buf, &self->n));
	CHECK_EQ(self->n, (ssize_t)3);
	edo_stream_drop(self->a);
	edo_stream_drop(self->b);
	edo_stream_drop(self->c);
	edo_stream_drop(self->d);
	EDO_END();
}

TEST(copy_cancelled)
{
	cancel_copy_frame m = {EDO_FRAME_INIT(cancel_copy_main)};
	run(EDO_RT_CURRENT_THREAD, &m.edo_base);
}

/* A NULL buffer with a nonzero length, a NULL iovec array with a nonzero
 * count or a negative count: -EINVAL from every stream and utility here,
 * with nothing written or consumed.  No runtime is needed for the duplex. */
TEST(null_buffers)
{
	edo_cx cx = {edo_noop_waker()};
	edo_stream *a, *b;
	CHECK_EQ(edo_duplex(64, &a, &b), 0);
	ssize_t n = 0;
	char buf[8];
	CHECK_EQ(edo_stream_poll_write(a, &cx, NULL, 5, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)-EINVAL);
	CHECK_EQ(edo_stream_poll_write(a, &cx, "hello", 5, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)5);
	n = 0;
	CHECK_EQ(edo_stream_poll_read(b, &cx, NULL, 5, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)-EINVAL);
	/* Empty buffers: nothing to do, no memcpy from NULL. */
	CHECK_EQ(edo_stream_poll_write(a, &cx, NULL, 0, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)0);
	/* Vectored, through the default (the duplex has no vectored entry). */
	n = 0;
	CHECK_EQ(edo_stream_poll_write_vectored(a, &cx, NULL, 1, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)-EINVAL);
	n = 0;
	struct iovec iov[2] = {{NULL, 3}, {"xyz", 3}};
	CHECK_EQ(edo_stream_poll_write_vectored(a, &cx, iov + 1, -1, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)-EINVAL);
	n = 0;
	CHECK_EQ(edo_stream_poll_write_vectored(a, &cx, iov, 2, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)-EINVAL);
	n = 1;
	CHECK_EQ(edo_stream_poll_write_vectored(a, &cx, NULL, 0, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)0);
	/* The futures report it at once. */
	edo_write_all_vectored_fut wv;
	edo_write_all_vectored(&wv, a, NULL, 1);
	CHECK_EQ(edo_future_poll(&wv.base, &cx), EDO_READY);
	CHECK_EQ(wv.rc, -EINVAL);
	edo_write_all_vectored(&wv, a, NULL, 0);
	CHECK_EQ(edo_future_poll(&wv.base, &cx), EDO_READY);
	CHECK_EQ(wv.rc, 0);
	CHECK_EQ(wv.n, (size_t)0);
	edo_write_all_fut wa;
	edo_write_all(&wa, a, NULL, 5);
	CHECK_EQ(edo_future_poll(&wa.base, &cx), EDO_READY);
	CHECK_EQ(wa.rc, -EINVAL);
	CHECK_EQ(wa.n, (size_t)0);
	edo_read_exact_fut re;
	edo_read_exact(&re, b, NULL, 5);
	CHECK_EQ(edo_future_poll(&re.base, &cx), EDO_READY);
	CHECK_EQ(re.rc, -EINVAL);
	CHECK_EQ(re.n, (size_t)0);
	/* The buffered reader and writer. */
	edo_buf_reader r;
	CHECK_EQ(edo_buf_reader_init(&r, b, 16), 0);
	n = 0;
	CHECK_EQ(edo_stream_poll_read(&r.base, &cx, NULL, 5, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)-EINVAL);
	edo_buf_writer w;
	CHECK_EQ(edo_buf_writer_init(&w, a, 16), 0);
	n = 0;
	CHECK_EQ(edo_stream_poll_write(&w.base, &cx, NULL, 5, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)-EINVAL);
	n = 0;
	CHECK_EQ(edo_stream_poll_write_vectored(&w.base, &cx, NULL, 1, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)-EINVAL);
	n = 0;
	CHECK_EQ(edo_stream_poll_write_vectored(&w.base, &cx, iov, 2, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)-EINVAL);
	CHECK_EQ(edo_buf_writer_buffered(&w), (size_t)0);
	/* Nothing was written or consumed: only "hello" is there. */
	edo_stream_drop(a);
	CHECK_EQ(edo_stream_poll_read(&r.base, &cx, buf, sizeof buf, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	CHECK_EQ(edo_stream_poll_read(&r.base, &cx, buf, sizeof buf, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)0);
	edo_buf_writer_deinit(&w);
	edo_buf_reader_deinit(&r);
	edo_stream_drop(b);
}

/* A write to a buffered writer so large that "buffered + len" wraps must
 * still write the buffered bytes out first: the bytes stay in order.  (The
 * duplex below takes only what fits, so it reads no further than big[].) */
TEST(buf_writer_huge_len_keeps_order)
{
	edo_cx cx = {edo_noop_waker()};
	edo_stream *a, *b;
	CHECK_EQ(edo_duplex(64, &a, &b), 0);
	edo_buf_writer w;
	CHECK_EQ(edo_buf_writer_init(&w, a, 16), 0);
	static char big[64];
	memset(big, 'Z', sizeof big);
	char got[64];
	ssize_t n = 0;
	for (int vectored = 0; vectored < 2; vectored++) {
		CHECK_EQ(edo_stream_poll_write(&w.base, &cx, "abc", 3, &n), EDO_READY);
		CHECK_EQ(n, (ssize_t)3);
		CHECK_EQ(edo_buf_writer_buffered(&w), (size_t)3);
		if (!vectored) {
			CHECK_EQ(edo_stream_poll_write(&w.base, &cx, big, SIZE_MAX - 1, &n),
				 EDO_READY);
		} else {
			/* The lengths' sum wraps too. */
			struct iovec iov[2] = {{big, SIZE_MAX - 1}, {big, 2}};
			CHECK_EQ(edo_stream_poll_write_vectored(&w.base, &cx, iov, 2, &n),
				 EDO_READY);
		}
		CHECK_EQ(n, (ssize_t)61); /* what fitted after "abc" */
		CHECK_EQ(edo_buf_writer_buffered(&w), (size_t)0);
		CHECK_EQ(edo_stream_poll_read(b, &cx, got, sizeof got, &n), EDO_READY);
		CHECK_EQ(n, (ssize_t)64);
		CHECK(memcmp(got, "abc", 3) == 0);
		CHECK(memcmp(got + 3, big, 61) == 0);
	}
	edo_buf_writer_deinit(&w);
	edo_stream_drop(a);
	edo_stream_drop(b);
}

/* A NULL stream, a stream without a vtable, or one whose vtable lacks a
 * required operation: every poll function gives -EINVAL at once instead
 * of crashing (and does nothing with a NULL result pointer). */
TEST(null_stream_poll_functions)
{
	edo_cx cx = {edo_noop_waker()};
	static const edo_stream_vtable empty_vt = {0};
	edo_stream novt = {NULL}, empty = {&empty_vt};
	edo_stream *bad[] = {NULL, &novt, &empty};
	char buf[4] = "abc";
	struct iovec iov = {buf, 3};
	for (int i = 0; i < 3; i++) {
		ssize_t n = 0;
		int rc = 0;
		CHECK_EQ(edo_stream_poll_read(bad[i], &cx, buf, 3, &n), EDO_READY);
		CHECK_EQ(n, (ssize_t)-EINVAL);
		n = 0;
		CHECK_EQ(edo_stream_poll_write(bad[i], &cx, buf, 3, &n), EDO_READY);
		CHECK_EQ(n, (ssize_t)-EINVAL);
		n = 0;
		CHECK_EQ(edo_stream_poll_write_vectored(bad[i], &cx, &iov, 1, &n), EDO_READY);
		CHECK_EQ(n, (ssize_t)-EINVAL);
		CHECK_EQ(edo_stream_poll_shutdown(bad[i], &cx, &rc), EDO_READY);
		CHECK_EQ(rc, -EINVAL);
		rc = 1;
		CHECK_EQ(edo_stream_poll_flush(bad[i], &cx, &rc), EDO_READY);
		/* A vtable without poll_flush buffers nothing: flushing it is fine. */
		CHECK_EQ(rc, bad[i] == &empty ? 0 : -EINVAL);
		CHECK_EQ(edo_stream_poll_read(bad[i], &cx, buf, 3, NULL), EDO_READY);
		CHECK_EQ(edo_stream_poll_write(bad[i], &cx, buf, 3, NULL), EDO_READY);
		CHECK_EQ(edo_stream_poll_write_vectored(bad[i], &cx, &iov, 1, NULL), EDO_READY);
		CHECK_EQ(edo_stream_poll_flush(bad[i], &cx, NULL), EDO_READY);
		CHECK_EQ(edo_stream_poll_shutdown(bad[i], &cx, NULL), EDO_READY);
		edo_stream_drop(bad[i]);
	}
	CHECK_STREQ(buf, "abc");
}

/* The futures over streams report a NULL stream (or reader, or output
 * buffer) with rc = -EINVAL at once, touching nothing: a copy or
 * copy_bidirectional with one good stream reads nothing from it.  The
 * buffered reader and writer refuse a stream without a vtable, and their
 * helpers treat NULL as empty. */
TEST(null_stream_futures_and_helpers)
{
	edo_cx cx = {edo_noop_waker()};
	edo_stream novt = {NULL};
	edo_stream *a, *b;
	CHECK_EQ(edo_duplex(64, &a, &b), 0);
	ssize_t n = 0;
	CHECK_EQ(edo_stream_poll_write(a, &cx, "hello", 5, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)5);
	char buf[8];
	struct iovec iov = {buf, 1};
	edo_stream *bad[] = {NULL, &novt};
	for (int i = 0; i < 2; i++) {
		edo_read_exact_fut re;
		edo_read_exact(&re, bad[i], buf, 0); /* even with nothing to read */
		CHECK_EQ(edo_future_poll(&re.base, &cx), EDO_READY);
		CHECK_EQ(re.rc, -EINVAL);
		edo_write_all_fut wa;
		edo_write_all(&wa, bad[i], "x", 1);
		CHECK_EQ(edo_future_poll(&wa.base, &cx), EDO_READY);
		CHECK_EQ(wa.rc, -EINVAL);
		CHECK_EQ(wa.n, (size_t)0);
		edo_write_all_vectored_fut wv;
		edo_write_all_vectored(&wv, bad[i], &iov, 1);
		CHECK_EQ(edo_future_poll(&wv.base, &cx), EDO_READY);
		CHECK_EQ(wv.rc, -EINVAL);
		edo_buf out = {0};
		edo_read_to_end_fut rte;
		edo_read_to_end(&rte, bad[i], &out);
		CHECK_EQ(edo_future_poll(&rte.base, &cx), EDO_READY);
		CHECK_EQ(rte.rc, -EINVAL);
		CHECK(out.data == NULL); /* nothing allocated */
		/* A copy from or to a bad stream reads nothing from the good one. */
		edo_copy_fut cp;
		edo_copy(&cp, b, bad[i]);
		CHECK_EQ(edo_future_poll(&cp.base, &cx), EDO_READY);
		CHECK_EQ(cp.rc, -EINVAL);
		CHECK_EQ(cp.n, (uint64_t)0);
		edo_future_drop(&cp.base);
		edo_copy(&cp, bad[i], a);
		CHECK_EQ(edo_future_poll(&cp.base, &cx), EDO_READY);
		CHECK_EQ(cp.rc, -EINVAL);
		edo_future_drop(&cp.base);
		edo_copy_bidi_fut bd;
		edo_copy_bidirectional(&bd, b, bad[i]);
		CHECK_EQ(edo_future_poll(&bd.base, &cx), EDO_READY);
		CHECK_EQ(bd.rc, -EINVAL);
		CHECK_EQ(edo_future_poll(&bd.base, &cx), EDO_READY);
		CHECK_EQ(bd.rc, -EINVAL);
		edo_future_drop(&bd.base);
		edo_copy_bidirectional(&bd, bad[i], b);
		CHECK_EQ(edo_future_poll(&bd.base, &cx), EDO_READY);
		CHECK_EQ(bd.rc, -EINVAL);
		edo_future_drop(&bd.base);
	}
	/* read_to_end into no buffer. */
	edo_read_to_end_fut rte;
	edo_read_to_end(&rte, b, NULL);
	CHECK_EQ(edo_future_poll(&rte.base, &cx), EDO_READY);
	CHECK_EQ(rte.rc, -EINVAL);
	/* The buffered reader and writer. */
	edo_buf_reader r;
	CHECK_EQ(edo_buf_reader_init(&r, &novt, 16), -EINVAL);
	edo_buf_writer w;
	CHECK_EQ(edo_buf_writer_init(&w, &novt, 16), -EINVAL);
	CHECK_EQ(edo_buf_reader_init(NULL, b, 16), -EINVAL);
	CHECK_EQ(edo_buf_writer_init(NULL, a, 16), -EINVAL);
	const char *data = buf;
	size_t len = 1;
	int rc = 0;
	CHECK_EQ(edo_buf_reader_poll_fill_buf(NULL, &cx, &data, &len, &rc), EDO_READY);
	CHECK_EQ(rc, -EINVAL);
	CHECK_EQ(len, (size_t)0);
	CHECK(data == NULL);
	edo_buf_reader_consume(NULL, 1);
	CHECK_EQ(edo_buf_reader_buffered(NULL), (size_t)0);
	edo_buf_reader_deinit(NULL);
	CHECK_EQ(edo_buf_writer_buffered(NULL), (size_t)0);
	edo_buf_writer_deinit(NULL);
	edo_lines_deinit(NULL);
	edo_buf_free(NULL);
	CHECK_EQ(edo_buf_reserve(NULL, 1), -EINVAL);
	edo_read_until_fut ru;
	edo_buf out = {0};
	edo_read_until(&ru, NULL, '\n', &out);
	CHECK_EQ(edo_future_poll(&ru.base, &cx), EDO_READY);
	CHECK_EQ(ru.rc, -EINVAL);
	edo_read_line(&ru, NULL, &out);
	CHECK_EQ(edo_future_poll(&ru.base, &cx), EDO_READY);
	CHECK_EQ(ru.rc, -EINVAL);
	CHECK_EQ(edo_buf_reader_init(&r, b, 16), 0);
	edo_read_until(&ru, &r, '\n', NULL);
	CHECK_EQ(edo_future_poll(&ru.base, &cx), EDO_READY);
	CHECK_EQ(ru.rc, -EINVAL);
	CHECK_EQ(edo_buf_reader_buffered(&r), (size_t)0); /* nothing read */
	/* Nothing was read from b: "hello" is all still there. */
	CHECK_EQ(edo_stream_poll_read(b, &cx, buf, sizeof buf, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	/* ...and nothing was written through b either: a has nothing to read. */
	CHECK_EQ(edo_stream_poll_read(a, &cx, buf, sizeof buf, &n), EDO_PENDING);
	edo_stream_drop(a);
	CHECK_EQ(edo_stream_poll_read(b, &cx, buf, sizeof buf, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)0);
	edo_buf_reader_deinit(&r);
	edo_stream_drop(b);
}

TEST(buf_helpers)
{
	edo_buf b = {0};
	CHECK_EQ(edo_buf_reserve(&b, 10), 0);
	CHECK_GE(b.cap, (size_t)10);
	CHECK_EQ(edo_buf_reserve(&b, SIZE_MAX), -ENOMEM);
	edo_buf_free(&b);
	CHECK(b.data == NULL);
	edo_buf_reader r;
	CHECK_EQ(edo_buf_reader_init(&r, NULL, 0), -EINVAL);
	edo_buf_writer w;
	CHECK_EQ(edo_buf_writer_init(&w, NULL, 0), -EINVAL);
	CHECK_STREQ(edo_strerror(EDO_EEOF), "unexpected end of stream");
}

/* A NULL-base iovec entry with a nonzero length after a good one: -EINVAL
 * at once with nothing written, from the default vectored path (the
 * duplex, the buffered reader over it) and from edo_write_all_vectored
 * (whose first write would otherwise take the good entry). */
TEST(vectored_null_entry_after_good_one)
{
	edo_cx cx = {edo_noop_waker()};
	edo_stream *a, *b;
	CHECK_EQ(edo_duplex(64, &a, &b), 0);
	edo_buf_reader r;
	CHECK_EQ(edo_buf_reader_init(&r, a, 16), 0);
	struct iovec iov[3] = {{"hello", 5}, {"", 0}, {NULL, 5}};
	edo_stream *through[] = {a, &r.base};
	for (int i = 0; i < 2; i++) {
		ssize_t n = 0;
		CHECK_EQ(edo_stream_poll_write_vectored(through[i], &cx, iov, 3, &n), EDO_READY);
		CHECK_EQ(n, (ssize_t)-EINVAL);
		edo_write_all_vectored_fut wv;
		edo_write_all_vectored(&wv, through[i], iov, 3);
		CHECK_EQ(edo_future_poll(&wv.base, &cx), EDO_READY);
		CHECK_EQ(wv.rc, -EINVAL);
		CHECK_EQ(wv.n, (size_t)0);
	}
	/* Nothing reached the peer; the good entries alone go through. */
	char buf[16];
	ssize_t n = 0;
	CHECK_EQ(edo_stream_poll_read(b, &cx, buf, sizeof buf, &n), EDO_PENDING);
	edo_write_all_vectored_fut wv;
	edo_write_all_vectored(&wv, a, iov, 2);
	CHECK_EQ(edo_future_poll(&wv.base, &cx), EDO_READY);
	CHECK_EQ(wv.rc, 0);
	CHECK_EQ(wv.n, (size_t)5);
	CHECK_EQ(edo_stream_poll_read(b, &cx, buf, sizeof buf, &n), EDO_READY);
	CHECK_EQ(n, (ssize_t)5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	edo_buf_reader_deinit(&r);
	edo_stream_drop(a);
	edo_stream_drop(b);
}

/* edo_duplex() with one pointer for both ends would lose one end (and with
 * it the shared buffers, which only the last drop frees): -EINVAL, nothing
 * written, nothing allocated (LeakSanitizer would see it). */
TEST(duplex_same_pointer)
{
	edo_stream *x = NULL;
	CHECK_EQ(edo_duplex(0, &x, &x), -EINVAL);
	CHECK(x == NULL);
	CHECK_EQ(edo_duplex(64, &x, &x), -EINVAL);
	CHECK(x == NULL);
	edo_stream *y = NULL;
	CHECK_EQ(edo_duplex(64, &x, &y), 0);
	CHECK(x != NULL && y != NULL && x != y);
	edo_stream_drop(x);
	edo_stream_drop(y);
}

TEST_MAIN()
