/* The stream utilities of edo/stream.h: default vtable entries, the byte
 * buffer, and the futures that loop over a stream's poll functions
 * (read_exact, write_all, read_to_end, copy, copy_bidirectional).
 *
 * Each future is a small state machine over stateless poll calls: its
 * fields hold the progress, so it can return PENDING at any point and pick
 * up where it stopped.  None of them holds anything but heap buffers, so
 * dropping one is always safe. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "edo/error.h"
#include "edo/stream.h"

/* A stream no operation can be called on: the futures refuse it up front. */
static bool bad_stream(const edo_stream *s)
{
	return !s || !s->vt;
}

/* A negative count, a NULL array with a nonzero count, or a NULL buffer
 * with a nonzero length anywhere in it: checked before anything is
 * written, since a later bad entry must not leave the earlier ones sent. */
static bool bad_iov(const struct iovec *iov, int iovcnt)
{
	if (iovcnt < 0 || (!iov && iovcnt))
		return true;
	for (int i = 0; i < iovcnt; i++)
		if (!iov[i].iov_base && iov[i].iov_len)
			return true;
	return false;
}

/* ---- dispatch with defaults ------------------------------------------------------------ */

edo_poll edo_stream_poll_write_vectored(edo_stream *s, edo_cx *cx, const struct iovec *iov,
					int iovcnt, ssize_t *n)
{
	if (bad_stream(s) || (!s->vt->poll_write_vectored && !s->vt->poll_write) || iovcnt < 0 ||
	    (!iov && iovcnt)) {
		if (n)
			*n = -EINVAL;
		return EDO_READY;
	}
	if (s->vt->poll_write_vectored)
		return s->vt->poll_write_vectored(s, cx, iov, iovcnt, n);
	/* The default writes the first nonempty buffer: check them all first. */
	if (bad_iov(iov, iovcnt)) {
		if (n)
			*n = -EINVAL;
		return EDO_READY;
	}
	for (int i = 0; i < iovcnt; i++)
		if (iov[i].iov_len)
			return s->vt->poll_write(s, cx, iov[i].iov_base, iov[i].iov_len, n);
	*n = 0;
	return EDO_READY;
}

edo_poll edo_stream_poll_flush(edo_stream *s, edo_cx *cx, int *rc)
{
	if (bad_stream(s)) {
		if (rc)
			*rc = -EINVAL;
		return EDO_READY;
	}
	if (s->vt->poll_flush)
		return s->vt->poll_flush(s, cx, rc);
	if (rc)
		*rc = 0;
	return EDO_READY;
}

/* ---- edo_buf ------------------------------------------------------------------------------ */

int edo_buf_reserve(edo_buf *b, size_t extra)
{
	if (!b)
		return -EINVAL;
	if (b->cap - b->len >= extra)
		return 0;
	if (extra > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	size_t cap = b->cap ? b->cap : 64;
	while (cap - b->len < extra)
		cap *= 2;
	char *d = realloc(b->data, cap);
	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = cap;
	return 0;
}

void edo_buf_free(edo_buf *b)
{
	if (!b)
		return;
	free(b->data);
	*b = (edo_buf){0};
}

/* ---- read_exact -------------------------------------------------------------------------- */

static edo_poll read_exact_poll(edo_future *base, edo_cx *cx)
{
	edo_read_exact_fut *f = (edo_read_exact_fut *)base;
	if (f->rc < 0)
		return EDO_READY; /* bad input, reported at once */
	while (f->n < f->len_) {
		ssize_t r;
		if (edo_stream_poll_read(f->s_, cx, f->buf_ + f->n, f->len_ - f->n, &r) ==
		    EDO_PENDING)
			return EDO_PENDING;
		if (r <= 0) {
			f->rc = r == 0 ? EDO_EEOF : (int)r;
			return EDO_READY;
		}
		f->n += (size_t)r;
	}
	f->rc = 0;
	return EDO_READY;
}

static const edo_future_vtable read_exact_vt = {.poll = read_exact_poll};

edo_future *edo_read_exact(edo_read_exact_fut *f, edo_stream *s, void *buf, size_t len)
{
	*f = (edo_read_exact_fut){.base = {&read_exact_vt}, .s_ = s, .buf_ = buf, .len_ = len};
	if (bad_stream(s) || (!buf && len))
		f->rc = -EINVAL;
	return &f->base;
}

/* ---- write_all ---------------------------------------------------------------------------- */

static edo_poll write_all_poll(edo_future *base, edo_cx *cx)
{
	edo_write_all_fut *f = (edo_write_all_fut *)base;
	if (f->rc < 0)
		return EDO_READY; /* bad input, reported at once */
	while (f->n < f->len_) {
		ssize_t r;
		if (edo_stream_poll_write(f->s_, cx, f->buf_ + f->n, f->len_ - f->n, &r) ==
		    EDO_PENDING)
			return EDO_PENDING;
		if (r <= 0) {
			/* A write that takes nothing would loop forever. */
			f->rc = r == 0 ? -EPIPE : (int)r;
			return EDO_READY;
		}
		f->n += (size_t)r;
	}
	f->rc = 0;
	return EDO_READY;
}

static const edo_future_vtable write_all_vt = {.poll = write_all_poll};

edo_future *edo_write_all(edo_write_all_fut *f, edo_stream *s, const void *buf, size_t len)
{
	*f = (edo_write_all_fut){.base = {&write_all_vt}, .s_ = s, .buf_ = buf, .len_ = len};
	if (bad_stream(s) || (!buf && len))
		f->rc = -EINVAL;
	return &f->base;
}

/* ---- write_all_vectored ------------------------------------------------------------------- */

static edo_poll write_all_vectored_poll(edo_future *base, edo_cx *cx)
{
	edo_write_all_vectored_fut *f = (edo_write_all_vectored_fut *)base;
	if (f->rc < 0)
		return EDO_READY; /* bad input, reported at once */
	for (;;) {
		while (f->first_ < f->cnt_ && f->iov_[f->first_].iov_len == 0)
			f->first_++;
		if (f->first_ == f->cnt_) {
			f->rc = 0;
			return EDO_READY;
		}
		ssize_t r;
		if (edo_stream_poll_write_vectored(f->s_, cx, f->iov_ + f->first_,
						   f->cnt_ - f->first_, &r) == EDO_PENDING)
			return EDO_PENDING;
		if (r <= 0) {
			f->rc = r == 0 ? -EPIPE : (int)r;
			return EDO_READY;
		}
		f->n += (size_t)r;
		/* Advance past what was written: whole buffers, then part of one. */
		size_t left = (size_t)r;
		while (left && f->first_ < f->cnt_) {
			struct iovec *v = &f->iov_[f->first_];
			size_t take = left < v->iov_len ? left : v->iov_len;
			v->iov_base = (char *)v->iov_base + take;
			v->iov_len -= take;
			left -= take;
			if (v->iov_len == 0)
				f->first_++;
		}
	}
}

static const edo_future_vtable write_all_vectored_vt = {.poll = write_all_vectored_poll};

edo_future *edo_write_all_vectored(edo_write_all_vectored_fut *f, edo_stream *s,
				   const struct iovec *iov, int iovcnt)
{
	*f = (edo_write_all_vectored_fut){.base = {&write_all_vectored_vt}, .s_ = s};
	if (bad_stream(s) || iovcnt > EDO_WRITE_ALL_MAX_IOV || bad_iov(iov, iovcnt)) {
		/* Bad input: complete at once with the error. */
		f->rc = -EINVAL;
		return &f->base;
	}
	f->cnt_ = iovcnt;
	if (iovcnt)
		memcpy(f->iov_, iov, (size_t)iovcnt * sizeof *iov);
	return &f->base;
}

/* ---- read_to_end -------------------------------------------------------------------------- */

static edo_poll read_to_end_poll(edo_future *base, edo_cx *cx)
{
	edo_read_to_end_fut *f = (edo_read_to_end_fut *)base;
	if (f->rc < 0)
		return EDO_READY; /* bad input, reported at once */
	for (;;) {
		/* Grow by doubling from 4 KiB, as Tokio does (adaptively). */
		size_t want = f->out_->cap - f->out_->len;
		if (want < 4096) {
			want = f->out_->cap > 4096 ? f->out_->cap : 4096;
			if (edo_buf_reserve(f->out_, want) < 0) {
				f->rc = -ENOMEM;
				return EDO_READY;
			}
		}
		ssize_t r;
		edo_buf *o = f->out_;
		if (edo_stream_poll_read(f->s_, cx, o->data + o->len, o->cap - o->len, &r) ==
		    EDO_PENDING)
			return EDO_PENDING;
		if (r <= 0) {
			f->rc = (int)r;
			return EDO_READY;
		}
		o->len += (size_t)r;
		f->n += (size_t)r;
	}
}

static const edo_future_vtable read_to_end_vt = {.poll = read_to_end_poll};

edo_future *edo_read_to_end(edo_read_to_end_fut *f, edo_stream *s, edo_buf *out)
{
	*f = (edo_read_to_end_fut){.base = {&read_to_end_vt}, .s_ = s, .out_ = out};
	if (bad_stream(s) || !out)
		f->rc = -EINVAL;
	return &f->base;
}

/* ---- copy ------------------------------------------------------------------------------------ */

#define COPY_BUF 8192

/* Tokio's CopyBuffer: read into the buffer when it is empty, write it out,
 * and flush the writer whenever a read would wait, so that a peer waiting
 * for a reply is never stuck behind buffered bytes. */
static edo_poll copy_step(edo_copy_fut *f, edo_cx *cx)
{
	for (;;) {
		if (f->pos_ == f->cap_ && !f->eof_) {
			ssize_t r;
			if (edo_stream_poll_read(f->r_, cx, f->buf_, COPY_BUF, &r) == EDO_PENDING) {
				int rc;
				if (edo_stream_poll_flush(f->w_, cx, &rc) == EDO_READY && rc < 0) {
					f->rc = rc;
					return EDO_READY;
				}
				return EDO_PENDING;
			}
			if (r < 0) {
				f->rc = (int)r;
				return EDO_READY;
			}
			f->eof_ = r == 0;
			f->pos_ = 0;
			f->cap_ = (size_t)r;
		}
		while (f->pos_ < f->cap_) {
			ssize_t w;
			if (edo_stream_poll_write(f->w_, cx, f->buf_ + f->pos_, f->cap_ - f->pos_,
						  &w) == EDO_PENDING)
				return EDO_PENDING;
			if (w <= 0) {
				f->rc = w == 0 ? -EPIPE : (int)w;
				return EDO_READY;
			}
			f->pos_ += (size_t)w;
			f->n += (uint64_t)w;
		}
		if (f->eof_) {
			int rc;
			if (edo_stream_poll_flush(f->w_, cx, &rc) == EDO_PENDING)
				return EDO_PENDING;
			f->rc = rc;
			return EDO_READY;
		}
	}
}

static void copy_drop(edo_future *base)
{
	edo_copy_fut *f = (edo_copy_fut *)base;
	free(f->buf_);
	f->buf_ = NULL;
}

static edo_poll copy_poll(edo_future *base, edo_cx *cx)
{
	edo_copy_fut *f = (edo_copy_fut *)base;
	if (f->done_)
		return EDO_READY;
	if (!f->buf_ && !(f->buf_ = malloc(COPY_BUF))) {
		f->rc = -ENOMEM;
	} else if (copy_step(f, cx) == EDO_PENDING) {
		return EDO_PENDING;
	}
	copy_drop(base);
	f->done_ = true;
	return EDO_READY;
}

static const edo_future_vtable copy_vt = {.poll = copy_poll, .drop = copy_drop};

edo_future *edo_copy(edo_copy_fut *f, edo_stream *r, edo_stream *w)
{
	*f = (edo_copy_fut){.base = {&copy_vt}, .r_ = r, .w_ = w};
	if (bad_stream(r) || bad_stream(w)) {
		/* Bad input: complete at once, nothing read from the good one. */
		f->rc = -EINVAL;
		f->done_ = true;
	}
	return &f->base;
}

/* ---- copy_bidirectional --------------------------------------------------------------------- */

/* One direction: copy until the reader ends, then shut the writer down. */
static edo_poll bidi_half(edo_copy_fut *c, bool *done, edo_cx *cx, int *err)
{
	if (*done)
		return EDO_READY;
	if (!c->done_ && copy_poll(&c->base, cx) == EDO_PENDING)
		return EDO_PENDING;
	if (c->rc < 0) {
		*err = c->rc;
		*done = true;
		return EDO_READY;
	}
	int rc;
	if (edo_stream_poll_shutdown(c->w_, cx, &rc) == EDO_PENDING)
		return EDO_PENDING;
	if (rc < 0)
		*err = rc;
	*done = true;
	return EDO_READY;
}

static edo_poll copy_bidi_poll(edo_future *base, edo_cx *cx)
{
	edo_copy_bidi_fut *f = (edo_copy_bidi_fut *)base;
	if (f->rc < 0)
		return EDO_READY; /* bad input, or an error already reported */
	int err = 0;
	edo_poll ab = bidi_half(&f->ab_, &f->ab_done_, cx, &err);
	edo_poll ba = err ? EDO_READY : bidi_half(&f->ba_, &f->ba_done_, cx, &err);
	f->a_to_b = f->ab_.n;
	f->b_to_a = f->ba_.n;
	if (err) {
		f->rc = err;
		copy_drop(&f->ab_.base);
		copy_drop(&f->ba_.base);
		f->ab_done_ = f->ba_done_ = true;
		return EDO_READY;
	}
	if (ab == EDO_PENDING || ba == EDO_PENDING)
		return EDO_PENDING;
	f->rc = 0;
	return EDO_READY;
}

static void copy_bidi_drop(edo_future *base)
{
	edo_copy_bidi_fut *f = (edo_copy_bidi_fut *)base;
	copy_drop(&f->ab_.base);
	copy_drop(&f->ba_.base);
}

static const edo_future_vtable copy_bidi_vt = {.poll = copy_bidi_poll, .drop = copy_bidi_drop};

edo_future *edo_copy_bidirectional(edo_copy_bidi_fut *f, edo_stream *a, edo_stream *b)
{
	*f = (edo_copy_bidi_fut){.base = {&copy_bidi_vt}};
	edo_copy(&f->ab_, a, b);
	edo_copy(&f->ba_, b, a);
	if (f->ab_.rc < 0) {
		f->rc = f->ab_.rc;
		f->ab_done_ = f->ba_done_ = true;
	}
	return &f->base;
}
