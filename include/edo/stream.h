/* Edo — byte streams: the stream interface and the utilities built on it.
 *
 * An `edo_stream` is Tokio's AsyncRead + AsyncWrite in C: a struct whose
 * first member points at a vtable of poll functions.  TCP and Unix streams
 * (edo/net.h), the in-memory duplex pipe and the buffered reader and writer
 * below all implement it, so every utility here works on each of them:
 *
 *     poll_read            read up to len bytes; *n = 0 at end of stream
 *     poll_write           write up to len bytes; *n = bytes taken
 *     poll_write_vectored  write from several buffers at once
 *     poll_flush           push out anything buffered
 *     poll_shutdown        flush, then end the write direction (the peer
 *                          reads end of stream)
 *     drop                 release the stream (close it if this was the
 *                          last reference)
 *
 * Results: *n (ssize_t) is a byte count, or a negative error: -errno (for
 * sockets: -ECONNRESET, -EPIPE, ...), -EBADF when the stream was closed,
 * EDO_ESHUTDOWN when the runtime shut down.
 *
 * Bad buffers: a NULL buffer with a nonzero length, a NULL iovec array with
 * a nonzero count, or a negative count give -EINVAL at once, with nothing
 * read or written, from edo_stream_poll_write_vectored(), the sockets, the
 * duplex, the buffered reader and writer, and the futures below (rc).
 * Process pipes hand a NULL buffer to the kernel, which reports -EFAULT.
 *
 * Bad streams: a NULL stream, one without a vtable, or one whose vtable
 * lacks poll_read, poll_write or poll_shutdown gives -EINVAL at once from
 * the edo_stream_poll_*() functions below (edo_stream_drop() does nothing);
 * the futures below report a NULL stream or one without a vtable (or a
 * NULL reader, or output buffer) in rc, -EINVAL at once, before touching
 * any stream.  A poll function given a NULL result pointer (@n, @rc) with
 * a bad stream has nowhere to report it: it returns READY and does nothing.
 *
 * Two ways to use them, as everywhere in Edo:
 *
 *  - Single operations are poll functions, called again until READY:
 *        EDO_AWAIT_POLL(edo_stream_poll_read(self->s, cx, self->buf, sizeof self->buf,
 *                                            &self->n));
 *  - Operations that keep progress between polls are small futures the
 *    caller stores in its frame; the function named after the operation
 *    initialises one in place and returns it, so it is awaited in one line:
 *        EDO_AWAIT(edo_write_all(&self->wa, self->s, self->out, self->out_len));
 *        if (self->wa.rc < 0) ...
 *    Outputs are the future's public fields (`rc`: 0 or a negative error,
 *    `n`: bytes transferred, valid even on error), set when it is READY.
 *    Dropping a pending one cancels it; bytes already transferred stay
 *    transferred (see each one's cancel-safety below).
 *
 * Thread-safety: a stream is used by one task per direction at a time (one
 * reader and one writer may run concurrently on a socket or a duplex end);
 * a future is polled by one thread at a time.
 */
#ifndef EDO_STREAM_H
#define EDO_STREAM_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "edo/future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edo_stream edo_stream;

/** The operations of one kind of stream. */
typedef struct edo_stream_vtable {
	edo_poll (*poll_read)(edo_stream *s, edo_cx *cx, void *buf, size_t len, ssize_t *n);
	edo_poll (*poll_write)(edo_stream *s, edo_cx *cx, const void *buf, size_t len, ssize_t *n);
	/** May be NULL: then the first non-empty buffer is written with poll_write. */
	edo_poll (*poll_write_vectored)(edo_stream *s, edo_cx *cx, const struct iovec *iov,
					int iovcnt, ssize_t *n);
	/** May be NULL: nothing is ever buffered.  *rc: 0 or a negative error. */
	edo_poll (*poll_flush)(edo_stream *s, edo_cx *cx, int *rc);
	/** End the write direction.  *rc: 0 or a negative error. */
	edo_poll (*poll_shutdown)(edo_stream *s, edo_cx *cx, int *rc);
	/** Release the stream.  May be NULL (the stream is owned elsewhere). */
	void (*drop)(edo_stream *s);
} edo_stream_vtable;

/** First member of every stream. */
struct edo_stream {
	const edo_stream_vtable *vt;
};

/**
 * edo_stream_poll_read() - read up to @len bytes into @buf; *@n: bytes (0:
 * end of stream) or error (-EINVAL at once for a bad stream, see above).
 */
static inline edo_poll edo_stream_poll_read(edo_stream *s, edo_cx *cx, void *buf, size_t len,
					    ssize_t *n)
{
	if (!s || !s->vt || !s->vt->poll_read) {
		if (n)
			*n = -EINVAL;
		return EDO_READY;
	}
	return s->vt->poll_read(s, cx, buf, len, n);
}

/**
 * edo_stream_poll_write() - write up to @len bytes; *@n: bytes written (> 0
 * unless @len is 0) or error (-EINVAL at once for a bad stream).
 */
static inline edo_poll edo_stream_poll_write(edo_stream *s, edo_cx *cx, const void *buf, size_t len,
					     ssize_t *n)
{
	if (!s || !s->vt || !s->vt->poll_write) {
		if (n)
			*n = -EINVAL;
		return EDO_READY;
	}
	return s->vt->poll_write(s, cx, buf, len, n);
}

/** edo_stream_poll_write_vectored() - write from @iovcnt buffers; *@n as poll_write
 *  (-EINVAL for a bad stream, a negative @iovcnt, or a NULL @iov with @iovcnt > 0; for
 *  a stream without its own poll_write_vectored, also for any entry with a NULL base and
 *  a nonzero length, checked before anything is written). */
edo_poll edo_stream_poll_write_vectored(edo_stream *s, edo_cx *cx, const struct iovec *iov,
					int iovcnt, ssize_t *n);

/** edo_stream_poll_flush() - push out buffered bytes; *@rc: 0 or error
 *  (-EINVAL for a NULL stream or one without a vtable). */
edo_poll edo_stream_poll_flush(edo_stream *s, edo_cx *cx, int *rc);

/** edo_stream_poll_shutdown() - flush, then end the write direction; *@rc: 0
 *  or error (-EINVAL at once for a bad stream). */
static inline edo_poll edo_stream_poll_shutdown(edo_stream *s, edo_cx *cx, int *rc)
{
	if (!s || !s->vt || !s->vt->poll_shutdown) {
		if (rc)
			*rc = -EINVAL;
		return EDO_READY;
	}
	return s->vt->poll_shutdown(s, cx, rc);
}

/** edo_stream_drop() - release @s (see its type for what that closes).  NULL,
 *  or a stream without a vtable, is a no-op. */
static inline void edo_stream_drop(edo_stream *s)
{
	if (s && s->vt && s->vt->drop)
		s->vt->drop(s);
}

/* ---- a growable byte buffer -------------------------------------------------------- */

/** Bytes on the heap: data[0..len) valid, cap allocated.  Zero-initialise; free with edo_buf_free(). */
typedef struct edo_buf {
	char *data;
	size_t len, cap;
} edo_buf;

/** edo_buf_reserve() - make room for @extra more bytes.  0, -ENOMEM, or -EINVAL for NULL. */
int edo_buf_reserve(edo_buf *b, size_t extra);

/** edo_buf_free() - free the bytes and zero @b.  NULL is a no-op. */
void edo_buf_free(edo_buf *b);

/* ---- futures over a stream ------------------------------------------------------------ */

/**
 * edo_read_exact() - read exactly @len bytes into @buf.
 * Outputs: rc = 0, EDO_EEOF if the stream ended first (n bytes were read),
 * or the read's error (-EINVAL at once for a NULL @buf with @len > 0);
 * n = bytes read.  Not cancel-safe: bytes read before a
 * drop are lost to the caller (they are in @buf[0..n)).
 */
typedef struct edo_read_exact_fut {
	edo_future base;
	int rc;
	size_t n;
	/* private */
	edo_stream *s_;
	char *buf_;
	size_t len_;
} edo_read_exact_fut;
edo_future *edo_read_exact(edo_read_exact_fut *f, edo_stream *s, void *buf, size_t len);

/**
 * edo_write_all() - write all @len bytes of @buf, however many writes it
 * takes (short writes are continued).  Outputs: rc = 0 or the error
 * (-EINVAL at once for a NULL @buf with @len > 0); n = bytes written.  Not cancel-safe: after a drop, n bytes were written.
 */
typedef struct edo_write_all_fut {
	edo_future base;
	int rc;
	size_t n;
	/* private */
	edo_stream *s_;
	const char *buf_;
	size_t len_;
} edo_write_all_fut;
edo_future *edo_write_all(edo_write_all_fut *f, edo_stream *s, const void *buf, size_t len);

/**
 * edo_write_all_vectored() - write every byte of @iovcnt buffers (at most
 * 64), with vectored writes.  @iov is copied; the bytes must stay valid.
 * Outputs as edo_write_all; rc = -EINVAL at once, with nothing written,
 * for a count below 0 or above 64, a NULL @iov with @iovcnt > 0, or any
 * entry with a NULL base and a nonzero length.
 */
#define EDO_WRITE_ALL_MAX_IOV 64
typedef struct edo_write_all_vectored_fut {
	edo_future base;
	int rc;
	size_t n;
	/* private */
	edo_stream *s_;
	int cnt_, first_;
	struct iovec iov_[EDO_WRITE_ALL_MAX_IOV];
} edo_write_all_vectored_fut;
edo_future *edo_write_all_vectored(edo_write_all_vectored_fut *f, edo_stream *s,
				   const struct iovec *iov, int iovcnt);

/**
 * edo_read_to_end() - read until end of stream, appending to @out.
 * Outputs: rc = 0 or the error (-ENOMEM too; -EINVAL at once for a NULL
 * @out); n = bytes appended.
 * Cancel-safe: what was read before a drop is in @out.
 */
typedef struct edo_read_to_end_fut {
	edo_future base;
	int rc;
	size_t n;
	/* private */
	edo_stream *s_;
	edo_buf *out_;
} edo_read_to_end_fut;
edo_future *edo_read_to_end(edo_read_to_end_fut *f, edo_stream *s, edo_buf *out);

/**
 * edo_copy() - copy everything from @r to @w until @r ends, then flush @w
 * (it does not shut @w down).  An 8 KiB buffer is allocated on the first
 * poll.  Outputs: rc = 0 or the first error; n = bytes written to @w.
 */
typedef struct edo_copy_fut {
	edo_future base;
	int rc;
	uint64_t n;
	/* private */
	edo_stream *r_, *w_;
	char *buf_;
	size_t pos_, cap_;
	bool eof_, done_;
} edo_copy_fut;
edo_future *edo_copy(edo_copy_fut *f, edo_stream *r, edo_stream *w);

/**
 * edo_copy_bidirectional() - copy @a to @b and @b to @a at the same time;
 * when one side's reads end, shut the other side's writes down.  Completes
 * when both directions are done, or at the first error.  Outputs: rc = 0 or
 * the first error; a_to_b, b_to_a = bytes copied each way.
 */
typedef struct edo_copy_bidi_fut {
	edo_future base;
	int rc;
	uint64_t a_to_b, b_to_a;
	/* private */
	edo_copy_fut ab_, ba_;
	bool ab_done_, ba_done_;
} edo_copy_bidi_fut;
edo_future *edo_copy_bidirectional(edo_copy_bidi_fut *f, edo_stream *a, edo_stream *b);

/* ---- buffered reader and writer --------------------------------------------------------- */

/**
 * edo_buf_reader - reads from @inner through a buffer, and is itself a
 * stream (its reads are served from the buffer first).  It does not own
 * @inner: dropping or de-initialising the reader leaves @inner open.
 * Writes, flush and shutdown go straight to @inner.
 */
typedef struct edo_buf_reader {
	edo_stream base;
	/* private */
	edo_stream *inner_;
	char *buf_;
	size_t pos_, filled_, cap_;
} edo_buf_reader;

/** edo_buf_reader_init() - a reader over @inner with a @cap byte buffer (0: 8 KiB).
 *  0, -ENOMEM, or -EINVAL (NULL @r, NULL @inner or one without a vtable). */
int edo_buf_reader_init(edo_buf_reader *r, edo_stream *inner, size_t cap);

/** edo_buf_reader_deinit() - free the buffer (buffered bytes are lost).  NULL is a no-op. */
void edo_buf_reader_deinit(edo_buf_reader *r);

/**
 * edo_buf_reader_poll_fill_buf() - the buffered bytes, reading more from
 * the inner stream if there are none.  READY: *@data/@len are the bytes
 * (*@len == 0 at end of stream), *@rc is 0 or an error.  Consume what was
 * used with edo_buf_reader_consume().  A NULL @r: READY at once with
 * *@data NULL, *@len 0 and *@rc -EINVAL.
 */
edo_poll edo_buf_reader_poll_fill_buf(edo_buf_reader *r, edo_cx *cx, const char **data, size_t *len,
				      int *rc);

/** edo_buf_reader_consume() - mark @n buffered bytes as used.  NULL is a no-op. */
void edo_buf_reader_consume(edo_buf_reader *r, size_t n);

/** edo_buf_reader_buffered() - how many bytes are buffered (0 for NULL). */
size_t edo_buf_reader_buffered(const edo_buf_reader *r);

/**
 * edo_read_until() - append bytes to @out up to and including @delim, or
 * until end of stream.  Outputs: rc = 0 or the error (-EINVAL at once for
 * a NULL @r or @out); n = bytes appended (0: end of stream).  Cancel-safe: bytes already read are in @out and the
 * rest stays buffered.  edo_read_line() is edo_read_until() with '\n'.
 */
typedef struct edo_read_until_fut {
	edo_future base;
	int rc;
	size_t n;
	/* private */
	edo_buf_reader *r_;
	edo_buf *out_;
	int delim_;
} edo_read_until_fut;
edo_future *edo_read_until(edo_read_until_fut *f, edo_buf_reader *r, int delim, edo_buf *out);
edo_future *edo_read_line(edo_read_until_fut *f, edo_buf_reader *r, edo_buf *out);

/**
 * edo_lines - the lines of a buffered reader, one at a time (Tokio's
 * Lines): each edo_next_line() yields the next line without its "\n" or
 * "\r\n"; a last line without a newline is yielded too.  `line` is the
 * output: after an edo_next_line() that found a line, line.data[0..line.len)
 * holds it, NUL-terminated, until the next call.  @r is not owned.
 */
typedef struct edo_lines {
	edo_buf line;
	/* private */
	edo_buf_reader *r_;
	bool partial_; /* line holds the start of a line a dropped call read */
} edo_lines;

/** edo_lines_init() - lines of @r.  0, or -EINVAL for NULL (@l is then untouched). */
int edo_lines_init(edo_lines *l, edo_buf_reader *r);

/** edo_lines_deinit() - free the line buffer (the reader is left as it is).  NULL is a no-op. */
void edo_lines_deinit(edo_lines *l);

/**
 * edo_next_line() - the next line of @l.  Outputs: rc = 0 or the read's
 * error (-ENOMEM too; the partial line is then discarded), -EINVAL at once
 * for a NULL @l; eof = true when the stream ended with no line left (rc 0,
 * and line.len 0).  Cancel-safe: the bytes of a line read before a drop are
 * kept in @l, and the next call goes on from there.
 */
typedef struct edo_next_line_fut {
	edo_future base;
	int rc;
	bool eof;
	/* private */
	edo_lines *l_;
} edo_next_line_fut;
edo_future *edo_next_line(edo_next_line_fut *f, edo_lines *l);

/**
 * edo_buf_writer - buffers writes to @inner and is itself a stream: writes
 * that fit go to the buffer; a full buffer is written out first; writes at
 * least as large as the buffer go straight through.  poll_flush writes the
 * buffer out and flushes @inner; poll_shutdown flushes, then shuts @inner
 * down.  Reads go straight to @inner.  It does not own @inner.
 */
typedef struct edo_buf_writer {
	edo_stream base;
	/* private */
	edo_stream *inner_;
	char *buf_;
	size_t pos_, len_, cap_;
} edo_buf_writer;

/** edo_buf_writer_init() - a writer over @inner with a @cap byte buffer (0: 8 KiB).
 *  0, -ENOMEM, or -EINVAL (NULL @w, NULL @inner or one without a vtable). */
int edo_buf_writer_init(edo_buf_writer *w, edo_stream *inner, size_t cap);

/** edo_buf_writer_deinit() - free the buffer; unflushed bytes are lost.  NULL is a no-op. */
void edo_buf_writer_deinit(edo_buf_writer *w);

/** edo_buf_writer_buffered() - bytes waiting to be written (0 for NULL). */
size_t edo_buf_writer_buffered(const edo_buf_writer *w);

/* ---- in-memory duplex pipe ---------------------------------------------------------------- */

/**
 * edo_duplex() - two connected in-memory streams, like a socket pair: what
 * is written to one is read from the other, each direction buffering at
 * most @max_buf bytes (0: 64 KiB) before writes wait.  Shutting one end's
 * writes down makes the other read end of stream; dropping an end (with
 * edo_stream_drop()) does the same, and writes to a dropped end fail with
 * -EPIPE.  Both ends must be dropped.  Thread-safe: the ends may live on
 * different threads and runtimes.  Returns 0, -ENOMEM, or -EINVAL (a NULL
 * @a or @b, or @a == @b: one end would be lost and the pair never freed),
 * leaving *@a and *@b unchanged on failure.
 */
int edo_duplex(size_t max_buf, edo_stream **a, edo_stream **b);

#ifdef __cplusplus
}
#endif
#endif /* EDO_STREAM_H */
