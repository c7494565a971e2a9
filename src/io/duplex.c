/* The in-memory duplex pipe of edo/stream.h (Tokio's io::duplex).
 *
 * Two ends share one allocation holding two one-way pipes, each a ring
 * buffer of at most max_buf bytes under the shared lock:
 *
 *   end 0 ──writes──▶ pipe[0] ──reads──▶ end 1
 *   end 0 ◀──reads─── pipe[1] ◀─writes── end 1
 *
 * Each pipe keeps one waker for its reader and one for its writer (one
 * task per direction, as with a socket); wakers are called after the lock
 * is released.  The allocation is freed when both ends are dropped. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "edo/stream.h"
#include "edo/task.h"
#include "sync/internal.h"

typedef struct pipe_dir {
	char *buf;
	size_t cap, head, len;
	bool write_closed; /* the writing end shut down or was dropped: EOF after the bytes */
	bool read_closed;  /* the reading end was dropped: writes fail */
	edo_waker reader, writer;
} pipe_dir;

typedef struct duplex_shared duplex_shared;

typedef struct duplex_end {
	edo_stream base;
	duplex_shared *sh;
	int side;
} duplex_end;

struct duplex_shared {
	pthread_mutex_t lock;
	atomic_int refs;
	pipe_dir dir[2];
	duplex_end end[2];
};

static edo_poll duplex_read(edo_stream *s, edo_cx *cx, void *buf, size_t len, ssize_t *n)
{
	duplex_end *e = (duplex_end *)s;
	pipe_dir *d = &e->sh->dir[1 - e->side];
	if (!buf && len) {
		*n = -EINVAL;
		return EDO_READY;
	}
	if (edo_coop_poll_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	pthread_mutex_lock(&e->sh->lock);
	if (d->len == 0 && !d->write_closed && len) {
		/* The replaced waker is dropped after the lock: a drop may free a task,
		 * and a task's future may hold the other end of this pipe. */
		edo_waker old = edo__waker_swap(&d->reader, cx->waker);
		pthread_mutex_unlock(&e->sh->lock);
		edo_waker_drop(old);
		edo_coop_refund();
		return EDO_PENDING;
	}
	size_t take = d->len < len ? d->len : len;
	size_t first = d->cap - d->head < take ? d->cap - d->head : take;
	if (take) {
		memcpy(buf, d->buf + d->head, first);
		memcpy((char *)buf + first, d->buf, take - first);
	}
	d->head = (d->head + take) % d->cap;
	d->len -= take;
	edo_waker w = take ? edo_waker_take(&d->writer) : (edo_waker){0};
	pthread_mutex_unlock(&e->sh->lock);
	edo_waker_wake(w);
	*n = (ssize_t)take;
	return EDO_READY;
}

static edo_poll duplex_write(edo_stream *s, edo_cx *cx, const void *buf, size_t len, ssize_t *n)
{
	duplex_end *e = (duplex_end *)s;
	pipe_dir *d = &e->sh->dir[e->side];
	if (!buf && len) {
		*n = -EINVAL;
		return EDO_READY;
	}
	if (edo_coop_poll_proceed(cx) == EDO_PENDING)
		return EDO_PENDING;
	pthread_mutex_lock(&e->sh->lock);
	if (d->read_closed || d->write_closed) {
		pthread_mutex_unlock(&e->sh->lock);
		*n = -EPIPE;
		return EDO_READY;
	}
	if (d->len == d->cap && len) {
		edo_waker old = edo__waker_swap(&d->writer, cx->waker);
		pthread_mutex_unlock(&e->sh->lock);
		edo_waker_drop(old);
		edo_coop_refund();
		return EDO_PENDING;
	}
	size_t space = d->cap - d->len;
	size_t take = space < len ? space : len;
	size_t tail = (d->head + d->len) % d->cap;
	size_t first = d->cap - tail < take ? d->cap - tail : take;
	if (take) {
		memcpy(d->buf + tail, buf, first);
		memcpy(d->buf, (const char *)buf + first, take - first);
	}
	d->len += take;
	edo_waker w = take ? edo_waker_take(&d->reader) : (edo_waker){0};
	pthread_mutex_unlock(&e->sh->lock);
	edo_waker_wake(w);
	*n = (ssize_t)take;
	return EDO_READY;
}

static edo_poll duplex_shutdown(edo_stream *s, edo_cx *cx, int *rc)
{
	duplex_end *e = (duplex_end *)s;
	pipe_dir *d = &e->sh->dir[e->side];
	pthread_mutex_lock(&e->sh->lock);
	d->write_closed = true;
	edo_waker w = edo_waker_take(&d->reader);
	pthread_mutex_unlock(&e->sh->lock);
	edo_waker_wake(w);
	*rc = 0;
	return EDO_READY;
}

static void duplex_drop(edo_stream *s)
{
	duplex_end *e = (duplex_end *)s;
	duplex_shared *sh = e->sh;
	pipe_dir *out = &sh->dir[e->side], *in = &sh->dir[1 - e->side];
	pthread_mutex_lock(&sh->lock);
	out->write_closed = true;
	in->read_closed = true;
	edo_waker wr = edo_waker_take(&out->reader), ww = edo_waker_take(&in->writer);
	/* Our own wakers (a task cancelled while waiting) are released too. */
	edo_waker o1 = edo_waker_take(&in->reader), o2 = edo_waker_take(&out->writer);
	pthread_mutex_unlock(&sh->lock);
	edo_waker_wake(wr);
	edo_waker_wake(ww);
	edo_waker_drop(o1);
	edo_waker_drop(o2);
	if (atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) == 1) {
		pthread_mutex_destroy(&sh->lock);
		free(sh->dir[0].buf);
		free(sh->dir[1].buf);
		free(sh);
	}
}

static const edo_stream_vtable duplex_vt = {
	.poll_read = duplex_read,
	.poll_write = duplex_write,
	.poll_shutdown = duplex_shutdown,
	.drop = duplex_drop,
};

int edo_duplex(size_t max_buf, edo_stream **a, edo_stream **b)
{
	if (!a || !b || a == b) /* one pointer for both ends would lose one */
		return -EINVAL;
	if (!max_buf)
		max_buf = (size_t)64 * 1024;
	duplex_shared *sh = calloc(1, sizeof *sh);
	if (!sh)
		return -ENOMEM;
	sh->dir[0].buf = malloc(max_buf);
	sh->dir[1].buf = malloc(max_buf);
	if (!sh->dir[0].buf || !sh->dir[1].buf) {
		free(sh->dir[0].buf);
		free(sh->dir[1].buf);
		free(sh);
		return -ENOMEM;
	}
	sh->dir[0].cap = sh->dir[1].cap = max_buf;
	pthread_mutex_init(&sh->lock, NULL);
	atomic_init(&sh->refs, 2);
	for (int i = 0; i < 2; i++)
		sh->end[i] = (duplex_end){.base = {&duplex_vt}, .sh = sh, .side = i};
	*a = &sh->end[0].base;
	*b = &sh->end[1].base;
	return 0;
}
