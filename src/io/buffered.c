/* The buffered reader and writer of edo/stream.h, and read_until/read_line.
 *
 * Both are streams wrapping another stream (which they do not own):
 *
 *   edo_buf_reader   buf_[0 .. pos_ .. filled_ .. cap_)
 *                          consumed  buffered   free
 *   edo_buf_writer   buf_[0 .. pos_ .. len_ .. cap_)
 *                          written  waiting  free
 *
 * Reads and writes at least as large as the buffer bypass it when it is
 * empty, as Tokio's BufReader/BufWriter do. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "edo/stream.h"

#define DEFAULT_CAP 8192

/* ---- reader -------------------------------------------------------------------------------- */

static edo_poll reader_read(edo_stream *s, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	edo_buf_reader *r = (edo_buf_reader *)s;
	if (!buf && len) {
		*n = -EINVAL;
		return EDO_READY;
	}
	if (r->pos_ == r->filled_ && len >= r->cap_) {
		r->pos_ = r->filled_ = 0;
		return edo_stream_poll_read(r->inner_, cx, buf, len, n);
	}
	const char *data;
	size_t avail;
	int rc;
	if (edo_buf_reader_poll_fill_buf(r, cx, &data, &avail, &rc) == EDO_PENDING)
		return EDO_PENDING;
	if (rc < 0) {
		*n = rc;
		return EDO_READY;
	}
	size_t take = avail < len ? avail : len;
	if (take)
		memcpy(buf, data, take);
	edo_buf_reader_consume(r, take);
	*n = (ssize_t)take;
	return EDO_READY;
}

static edo_poll reader_write(edo_stream *s, edo_cx *cx, const void *buf, size_t len, ssize_t *n)
{
	return edo_stream_poll_write(((edo_buf_reader *)s)->inner_, cx, buf, len, n);
}

static edo_poll reader_writev(edo_stream *s, edo_cx *cx, const struct iovec *iov, int cnt,
			      ssize_t *n)
{
	return edo_stream_poll_write_vectored(((edo_buf_reader *)s)->inner_, cx, iov, cnt, n);
}

static edo_poll reader_flush(edo_stream *s, edo_cx *cx, int *rc)
{
	return edo_stream_poll_flush(((edo_buf_reader *)s)->inner_, cx, rc);
}

static edo_poll reader_shutdown(edo_stream *s, edo_cx *cx, int *rc)
{
	return edo_stream_poll_shutdown(((edo_buf_reader *)s)->inner_, cx, rc);
}

static void reader_drop(edo_stream *s)
{
	edo_buf_reader_deinit((edo_buf_reader *)s);
}

static const edo_stream_vtable reader_vt = {
	.poll_read = reader_read,
	.poll_write = reader_write,
	.poll_write_vectored = reader_writev,
	.poll_flush = reader_flush,
	.poll_shutdown = reader_shutdown,
	.drop = reader_drop,
};

int edo_buf_reader_init(edo_buf_reader *r, edo_stream *inner, size_t cap)
{
	if (!r || !inner || !inner->vt)
		return -EINVAL;
	if (!cap)
		cap = DEFAULT_CAP;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	*r = (edo_buf_reader){.base = {&reader_vt}, .inner_ = inner, .buf_ = buf, .cap_ = cap};
	return 0;
}

void edo_buf_reader_deinit(edo_buf_reader *r)
{
	if (!r)
		return;
	free(r->buf_);
	r->buf_ = NULL;
	r->pos_ = r->filled_ = r->cap_ = 0;
}

edo_poll edo_buf_reader_poll_fill_buf(edo_buf_reader *r, edo_cx *cx, const char **data, size_t *len,
				      int *rc)
{
	if (!r) {
		*data = NULL;
		*len = 0;
		*rc = -EINVAL;
		return EDO_READY;
	}
	if (r->pos_ == r->filled_) {
		ssize_t n;
		if (edo_stream_poll_read(r->inner_, cx, r->buf_, r->cap_, &n) == EDO_PENDING)
			return EDO_PENDING;
		r->pos_ = r->filled_ = 0;
		if (n < 0) {
			*data = r->buf_;
			*len = 0;
			*rc = (int)n;
			return EDO_READY;
		}
		r->filled_ = (size_t)n;
	}
	*data = r->buf_ + r->pos_;
	*len = r->filled_ - r->pos_;
	*rc = 0;
	return EDO_READY;
}

void edo_buf_reader_consume(edo_buf_reader *r, size_t n)
{
	if (!r)
		return;
	size_t avail = r->filled_ - r->pos_;
	r->pos_ += n < avail ? n : avail;
}

size_t edo_buf_reader_buffered(const edo_buf_reader *r)
{
	return r ? r->filled_ - r->pos_ : 0;
}

/* ---- read_until ----------------------------------------------------------------------------- */

static edo_poll read_until_poll(edo_future *base, edo_cx *cx)
{
	edo_read_until_fut *f = (edo_read_until_fut *)base;
	if (f->rc < 0)
		return EDO_READY; /* bad input, reported at once */
	for (;;) {
		const char *data;
		size_t len;
		int rc;
		if (edo_buf_reader_poll_fill_buf(f->r_, cx, &data, &len, &rc) == EDO_PENDING)
			return EDO_PENDING;
		if (rc < 0 || len == 0) {
			f->rc = rc;
			return EDO_READY;
		}
		const char *hit = memchr(data, f->delim_, len);
		size_t take = hit ? (size_t)(hit - data) + 1 : len;
		if (edo_buf_reserve(f->out_, take) < 0) {
			f->rc = -ENOMEM;
			return EDO_READY;
		}
		memcpy(f->out_->data + f->out_->len, data, take);
		f->out_->len += take;
		f->n += take;
		edo_buf_reader_consume(f->r_, take);
		if (hit) {
			f->rc = 0;
			return EDO_READY;
		}
	}
}

static const edo_future_vtable read_until_vt = {.poll = read_until_poll};

edo_future *edo_read_until(edo_read_until_fut *f, edo_buf_reader *r, int delim, edo_buf *out)
{
	*f = (edo_read_until_fut){.base = {&read_until_vt},
				  .r_ = r,
				  .out_ = out,
				  .delim_ = (unsigned char)delim,
				  .rc = r && out ? 0 : -EINVAL};
	return &f->base;
}

edo_future *edo_read_line(edo_read_until_fut *f, edo_buf_reader *r, edo_buf *out)
{
	return edo_read_until(f, r, '\n', out);
}

/* ---- lines ------------------------------------------------------------------------------------ */

int edo_lines_init(edo_lines *l, edo_buf_reader *r)
{
	if (!l || !r)
		return -EINVAL;
	*l = (edo_lines){.r_ = r};
	return 0;
}

void edo_lines_deinit(edo_lines *l)
{
	if (!l)
		return;
	edo_buf_free(&l->line);
	l->partial_ = false;
}

/* The line is complete: strip "\n" or "\r\n", NUL-terminate. */
static int line_finish(edo_lines *l)
{
	edo_buf *b = &l->line;
	if (b->len && b->data[b->len - 1] == '\n') {
		b->len--;
		if (b->len && b->data[b->len - 1] == '\r')
			b->len--;
	}
	if (edo_buf_reserve(b, 1) < 0)
		return -ENOMEM;
	b->data[b->len] = 0;
	return 0;
}

static edo_poll next_line_poll(edo_future *base, edo_cx *cx)
{
	edo_next_line_fut *f = (edo_next_line_fut *)base;
	edo_lines *l = f->l_;
	if (!l)
		return EDO_READY; /* bad input, reported at once */
	if (!l->partial_) {
		l->line.len = 0;
		l->partial_ = true;
	}
	for (;;) {
		const char *data;
		size_t len;
		int rc;
		if (edo_buf_reader_poll_fill_buf(l->r_, cx, &data, &len, &rc) == EDO_PENDING)
			return EDO_PENDING;
		if (rc == 0 && len == 0) {
			/* End of stream: the last line, if it had no newline. */
			f->eof = l->line.len == 0;
			rc = line_finish(l);
		} else if (rc == 0) {
			const char *hit = memchr(data, '\n', len);
			size_t take = hit ? (size_t)(hit - data) + 1 : len;
			if (edo_buf_reserve(&l->line, take) < 0) {
				rc = -ENOMEM;
			} else {
				memcpy(l->line.data + l->line.len, data, take);
				l->line.len += take;
				edo_buf_reader_consume(l->r_, take);
				if (!hit)
					continue;
				rc = line_finish(l);
			}
		}
		l->partial_ = false;
		if (rc < 0) {
			l->line.len = 0;
			f->eof = false;
		}
		f->rc = rc;
		return EDO_READY;
	}
}

static const edo_future_vtable next_line_vt = {.poll = next_line_poll};

edo_future *edo_next_line(edo_next_line_fut *f, edo_lines *l)
{
	*f = (edo_next_line_fut){.base = {&next_line_vt}, .l_ = l, .rc = l ? 0 : -EINVAL};
	return &f->base;
}

/* ---- writer ------------------------------------------------------------------------------- */

/* Write the waiting bytes out; READY with *err = 0 once the buffer is empty. */
static edo_poll writer_flush_buf(edo_buf_writer *w, edo_cx *cx, int *err)
{
	while (w->pos_ < w->len_) {
		ssize_t n;
		if (edo_stream_poll_write(w->inner_, cx, w->buf_ + w->pos_, w->len_ - w->pos_,
					  &n) == EDO_PENDING)
			return EDO_PENDING;
		if (n <= 0) {
			*err = n == 0 ? -EPIPE : (int)n;
			return EDO_READY;
		}
		w->pos_ += (size_t)n;
	}
	w->pos_ = w->len_ = 0;
	*err = 0;
	return EDO_READY;
}

static edo_poll writer_write(edo_stream *s, edo_cx *cx, const void *buf, size_t len, ssize_t *n)
{
	edo_buf_writer *w = (edo_buf_writer *)s;
	if (!buf && len) {
		*n = -EINVAL;
		return EDO_READY;
	}
	/* Not w->len_ + len > w->cap_: that wraps for a huge len, which would
	 * then go straight through ahead of the bytes still buffered. */
	if (len > w->cap_ - w->len_) {
		int err;
		if (writer_flush_buf(w, cx, &err) == EDO_PENDING)
			return EDO_PENDING;
		if (err) {
			*n = err;
			return EDO_READY;
		}
	}
	if (len >= w->cap_)
		return edo_stream_poll_write(w->inner_, cx, buf, len, n);
	if (len)
		memcpy(w->buf_ + w->len_, buf, len);
	w->len_ += len;
	*n = (ssize_t)len;
	return EDO_READY;
}

static edo_poll writer_writev(edo_stream *s, edo_cx *cx, const struct iovec *iov, int cnt,
			      ssize_t *n)
{
	edo_buf_writer *w = (edo_buf_writer *)s;
	if (cnt < 0 || (!iov && cnt)) {
		*n = -EINVAL;
		return EDO_READY;
	}
	/* The total saturates: a sum that wrapped would look small and be
	 * copied into the buffer. */
	size_t total = 0;
	for (int i = 0; i < cnt; i++) {
		if (!iov[i].iov_base && iov[i].iov_len) {
			*n = -EINVAL;
			return EDO_READY;
		}
		total = iov[i].iov_len > SIZE_MAX - total ? SIZE_MAX : total + iov[i].iov_len;
	}
	if (total > w->cap_ - w->len_) {
		int err;
		if (writer_flush_buf(w, cx, &err) == EDO_PENDING)
			return EDO_PENDING;
		if (err) {
			*n = err;
			return EDO_READY;
		}
	}
	if (total >= w->cap_)
		return edo_stream_poll_write_vectored(w->inner_, cx, iov, cnt, n);
	for (int i = 0; i < cnt; i++) {
		if (iov[i].iov_len)
			memcpy(w->buf_ + w->len_, iov[i].iov_base, iov[i].iov_len);
		w->len_ += iov[i].iov_len;
	}
	*n = (ssize_t)total;
	return EDO_READY;
}

static edo_poll writer_flush(edo_stream *s, edo_cx *cx, int *rc)
{
	edo_buf_writer *w = (edo_buf_writer *)s;
	if (writer_flush_buf(w, cx, rc) == EDO_PENDING)
		return EDO_PENDING;
	if (*rc)
		return EDO_READY;
	return edo_stream_poll_flush(w->inner_, cx, rc);
}

static edo_poll writer_shutdown(edo_stream *s, edo_cx *cx, int *rc)
{
	edo_buf_writer *w = (edo_buf_writer *)s;
	if (writer_flush_buf(w, cx, rc) == EDO_PENDING)
		return EDO_PENDING;
	if (*rc)
		return EDO_READY;
	return edo_stream_poll_shutdown(w->inner_, cx, rc);
}

static edo_poll writer_read(edo_stream *s, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	return edo_stream_poll_read(((edo_buf_writer *)s)->inner_, cx, buf, len, n);
}

static void writer_drop(edo_stream *s)
{
	edo_buf_writer_deinit((edo_buf_writer *)s);
}

static const edo_stream_vtable writer_vt = {
	.poll_read = writer_read,
	.poll_write = writer_write,
	.poll_write_vectored = writer_writev,
	.poll_flush = writer_flush,
	.poll_shutdown = writer_shutdown,
	.drop = writer_drop,
};

int edo_buf_writer_init(edo_buf_writer *w, edo_stream *inner, size_t cap)
{
	if (!w || !inner || !inner->vt)
		return -EINVAL;
	if (!cap)
		cap = DEFAULT_CAP;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	*w = (edo_buf_writer){.base = {&writer_vt}, .inner_ = inner, .buf_ = buf, .cap_ = cap};
	return 0;
}

void edo_buf_writer_deinit(edo_buf_writer *w)
{
	if (!w)
		return;
	free(w->buf_);
	w->buf_ = NULL;
	w->pos_ = w->len_ = w->cap_ = 0;
}

size_t edo_buf_writer_buffered(const edo_buf_writer *w)
{
	return w ? w->len_ - w->pos_ : 0;
}
