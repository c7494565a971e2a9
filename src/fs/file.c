/* Files as streams (edo/fs.h), Tokio's fs::File in C.
 *
 *   edo_file (the task's)          file_core (shared with the job in flight)
 *   ┌──────────────────────┐       ┌───────────────────────────────────┐
 *   │ stream vtable        │──────▶│ refs, fd                          │
 *   │ join (job in flight) │       │ buf[pos, len): read-ahead, or the │
 *   │ last_write_err       │       │   bytes a write job writes        │
 *   └──────────────────────┘       │ kind, args, result of the job     │
 *                                  └───────────────────────────────────┘
 *
 * The state machine is Tokio's Idle/Busy: while a job is in flight (join
 * != NULL) the core's buffer and job fields belong to the pool thread; the
 * task touches them again only after the join handle said the job finished
 * (which orders the thread's writes before the task's reads).  Every
 * operation first waits for the job in flight and folds its result in:
 *
 *   READ   bytes in buf -> served by this and later reads (a read tries
 *          preadv2(RWF_NOWAIT) on the task's thread first: see try_nowait)
 *   WRITE  an error is kept in last_write_err for the next write or flush
 *   other  the result belongs to the future that started it (if it was
 *          dropped, the result is ignored)
 *
 * Dropping the file while a job runs lets the job finish: the core is
 * reference-counted (the file, and the job while in flight), and the last
 * reference closes the descriptor.  Write jobs are mandatory blocking
 * tasks, so a write that completed into the buffer is written even if the
 * runtime shuts down.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "edo/error.h"
#include "fs/job.h"
#include "runtime/blocking/pool.h"

enum { OP_NONE, OP_READ, OP_WRITE, OP_SEEK, OP_SYNC_ALL, OP_SYNC_DATA, OP_SET_LEN, OP_FSTAT };

typedef struct file_core {
	atomic_uint refs;
	int fd;
	bool owns_fd;
	char *buf;
	size_t cap, pos, len;
	/* the job */
	int kind;
	off_t arg;        /* READ: bytes wanted; SEEK: offset; SET_LEN: length */
	int whence;       /* SEEK */
	off_t seek_first; /* WRITE, SET_LEN: lseek(SEEK_CUR) by this first */
	/* its result */
	ssize_t res; /* READ: bytes; SEEK: position; others 0; or -errno */
	struct stat st;
} file_core;

struct edo_file {
	edo_stream base;
	file_core *c;
	edo_join *join; /* the job in flight, or NULL */
	int last_write_err;
	bool mandatory_reads;
	bool no_nowait;          /* the file refused RWF_NOWAIT: always use the pool */
	unsigned nowait_skip;    /* reads to go before trying RWF_NOWAIT again */
	unsigned nowait_backoff; /* the skip after the next miss */
};

static void core_put(file_core *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (c->owns_fd)
		close(c->fd);
	free(c->buf);
	free(c);
}

/* ---- the job ------------------------------------------------------------------------------ */

static ssize_t seek_then(file_core *c)
{
	if (c->seek_first && lseek(c->fd, c->seek_first, SEEK_CUR) < 0)
		return -errno;
	return 0;
}

static void *file_job(void *arg)
{
	file_core *c = arg;
	ssize_t r = 0;
	switch (c->kind) {
	case OP_READ:
		do
			r = read(c->fd, c->buf, (size_t)c->arg);
		while (r < 0 && errno == EINTR);
		c->pos = 0;
		c->len = r > 0 ? (size_t)r : 0;
		if (r < 0)
			r = -errno;
		break;
	case OP_WRITE:
		r = seek_then(c);
		if (r == 0)
			r = edo__fs_write_all(c->fd, c->buf + c->pos, c->len - c->pos);
		c->pos = c->len = 0;
		break;
	case OP_SEEK:
		r = lseek(c->fd, c->arg, c->whence);
		if (r < 0)
			r = -errno;
		break;
	case OP_SYNC_ALL:
		r = fsync(c->fd) < 0 ? -errno : 0;
		break;
	case OP_SYNC_DATA:
		r = fdatasync(c->fd) < 0 ? -errno : 0;
		break;
	case OP_SET_LEN:
		r = seek_then(c);
		if (r == 0 && ftruncate(c->fd, c->arg) < 0)
			r = -errno;
		break;
	case OP_FSTAT:
		r = fstat(c->fd, &c->st) < 0 ? -errno : 0;
		break;
	default:
		r = -EINVAL;
		break;
	}
	c->res = r;
	core_put(c);
	return NULL;
}

/* A job cancelled before it ran (only reads of stdin, which are not
 * mandatory: at shutdown, or when no pool thread could be started): the
 * pool drops its reference here, even if the file was dropped first. */
static void job_cancelled(void *arg)
{
	file_core *c = arg;
	c->res = -ECANCELED;
	c->pos = c->len = 0;
	core_put(c);
}

/* Start the job set up in the core. */
static int start(edo_file *f, int kind)
{
	file_core *c = f->c;
	c->kind = kind;
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	unsigned flags = kind == OP_READ && !f->mandatory_reads ? 0 : EDO_BLOCKING_MANDATORY;
	int rc = edo__spawn_blocking_cleanup(NULL, file_job, c, flags, job_cancelled, &f->join);
	if (rc < 0) {
		atomic_fetch_sub_explicit(&c->refs, 1, memory_order_relaxed);
		f->join = NULL;
		c->kind = OP_NONE;
	}
	return rc;
}

/* Wait for the job in flight.  READY with *kind = the kind that finished
 * (its result in the core), or OP_NONE if none was in flight. */
static edo_poll wait_job(edo_file *f, edo_cx *cx, int *kind)
{
	*kind = OP_NONE;
	if (!f->join)
		return EDO_READY;
	int res;
	if (edo_join_poll(f->join, cx, &res) == EDO_PENDING)
		return EDO_PENDING;
	edo_join_detach(f->join);
	f->join = NULL;
	file_core *c = f->c;
	*kind = c->kind;
	c->kind = OP_NONE;
	/* A seek that took place leaves the read-ahead behind (one that failed
	 * changed nothing).  Done here, not by the seek's future, which may
	 * have been dropped meanwhile. */
	if (*kind == OP_SEEK && c->res >= 0)
		c->pos = c->len = 0;
	return EDO_READY;
}

/* Fold a finished write's failure into last_write_err. */
static void keep_write_err(edo_file *f, int kind)
{
	if (kind == OP_WRITE && f->c->res < 0 && !f->last_write_err)
		f->last_write_err = (int)f->c->res;
}

static int take_write_err(edo_file *f)
{
	int e = f->last_write_err;
	f->last_write_err = 0;
	return e;
}

static int reserve(file_core *c, size_t want)
{
	if (c->cap >= want)
		return 0;
	size_t cap = c->cap ? c->cap : 4096;
	while (cap < want)
		cap *= 2;
	char *b = realloc(c->buf, cap);
	if (!b)
		return -ENOMEM;
	c->buf = b;
	c->cap = cap;
	return 0;
}

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* ---- the stream -------------------------------------------------------------------------------- */

/* Most reads hit the page cache (or a device like /dev/zero) and would not
 * block at all: try them here first with preadv2(RWF_NOWAIT), which fails
 * with EAGAIN instead of waiting for the disk, and go to the pool only
 * then.  A hit costs one system call instead of a round trip through a
 * pool thread.  Inline reads are capped (a long memcpy is work too), take a
 * unit of budget, and back off after misses: a file that is never cached
 * costs at most an extra failed syscall every 64 reads.  Files that refuse
 * the flag (ttys, some file systems) are never asked again. */
#define NOWAIT_MAX ((size_t)256 << 10)

static atomic_bool force_pool;

void edo__fs_force_pool(bool on)
{
	atomic_store(&force_pool, on);
}

/* READY with *n (bytes, 0 at end of file, or an error) if the read was done
 * here; PENDING if it must go to the pool (or the budget is spent: then
 * *n = 1 and the caller returns PENDING). */
static edo_poll try_nowait(edo_file *f, edo_cx *cx, void *dst, size_t len, ssize_t *n)
{
	if (f->no_nowait || atomic_load_explicit(&force_pool, memory_order_relaxed))
		return EDO_PENDING;
	if (f->nowait_skip) {
		f->nowait_skip--;
		return EDO_PENDING;
	}
	if (edo_coop_poll_proceed(cx) == EDO_PENDING) {
		*n = 1;
		return EDO_PENDING;
	}
	struct iovec iov = {dst, min_sz(len, NOWAIT_MAX)};
	ssize_t r;
	do
		r = preadv2(f->c->fd, &iov, 1, -1, RWF_NOWAIT);
	while (r < 0 && errno == EINTR);
	if (r >= 0) {
		f->nowait_backoff = 0;
		*n = r;
		return EDO_READY;
	}
	edo_coop_refund();
	if (errno == EAGAIN) {
		f->nowait_skip = f->nowait_backoff;
		f->nowait_backoff = f->nowait_backoff ?
					    (f->nowait_backoff < 32 ? f->nowait_backoff * 2 : 64) :
					    1;
	} else if (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS || errno == ESPIPE) {
		f->no_nowait = true; /* the pool's read reports a real EINVAL */
	} else {
		*n = -errno;
		return EDO_READY;
	}
	return EDO_PENDING;
}

static edo_poll file_poll_read(edo_stream *s, edo_cx *cx, void *dst, size_t len, ssize_t *n)
{
	edo_file *f = (edo_file *)s;
	file_core *c = f->c;
	if (!n || (!dst && len)) {
		/* Bad input: nothing read, nothing waited for. */
		if (n)
			*n = -EINVAL;
		return EDO_READY;
	}
	for (;;) {
		int kind;
		if (wait_job(f, cx, &kind) == EDO_PENDING)
			return EDO_PENDING;
		if (kind == OP_READ && c->res < 0) {
			*n = c->res;
			return EDO_READY;
		}
		keep_write_err(f, kind);
		if (c->pos < c->len || kind == OP_READ) {
			/* Read-ahead, or what the read just brought (0: end of file). */
			size_t k = min_sz(len, c->len - c->pos);
			if (k)
				memcpy(dst, c->buf + c->pos, k);
			c->pos += k;
			*n = (ssize_t)k;
			return EDO_READY;
		}
		if (len == 0) {
			*n = 0;
			return EDO_READY;
		}
		ssize_t r = 0;
		if (try_nowait(f, cx, dst, len, &r) == EDO_READY) {
			*n = r;
			return EDO_READY;
		}
		if (r == 1)
			return EDO_PENDING; /* budget spent; the wake is deferred */
		size_t want = min_sz(len, EDO_FILE_MAX_BUF);
		int rc = reserve(c, want);
		if (rc == 0) {
			c->pos = c->len = 0;
			c->arg = (off_t)want;
			rc = start(f, OP_READ);
		}
		if (rc < 0) {
			*n = rc;
			return EDO_READY;
		}
	}
}

static edo_poll file_poll_write(edo_stream *s, edo_cx *cx, const void *src, size_t len, ssize_t *n)
{
	edo_file *f = (edo_file *)s;
	file_core *c = f->c;
	if (!n || (!src && len)) {
		/* Bad input: nothing written, nothing waited for. */
		if (n)
			*n = -EINVAL;
		return EDO_READY;
	}
	int kind;
	if (wait_job(f, cx, &kind) == EDO_PENDING)
		return EDO_PENDING;
	/* The previous write's failure is this write's (Tokio's rule). */
	if (kind == OP_WRITE && c->res < 0) {
		*n = c->res;
		return EDO_READY;
	}
	int rc = take_write_err(f);
	if (rc == 0 && len == 0) {
		*n = 0;
		return EDO_READY;
	}
	size_t k = min_sz(len, EDO_FILE_MAX_BUF);
	/* Bytes read ahead are given back (the job seeks back over them)
	 * before writing.  Until the job has started they stay in the buffer,
	 * the bytes to write after them: a job that cannot start (shutdown,
	 * out of memory) leaves the read-ahead to be read next. */
	size_t pos = c->pos, end = c->len;
	size_t at = pos < end ? end : 0;
	if (rc == 0)
		rc = reserve(c, at + k);
	if (rc == 0) {
		c->seek_first = -(off_t)(end - pos);
		memcpy(c->buf + at, src, k);
		c->pos = at;
		c->len = at + k;
		rc = start(f, OP_WRITE);
		if (rc < 0) {
			c->pos = pos;
			c->len = end;
		}
	}
	*n = rc < 0 ? rc : (ssize_t)k;
	return EDO_READY;
}

static edo_poll file_poll_flush(edo_stream *s, edo_cx *cx, int *rc)
{
	edo_file *f = (edo_file *)s;
	if (!rc)
		return EDO_READY; /* nowhere to report: nothing done */
	int kind;
	if (wait_job(f, cx, &kind) == EDO_PENDING)
		return EDO_PENDING;
	keep_write_err(f, kind);
	*rc = take_write_err(f);
	return EDO_READY;
}

static void file_drop(edo_stream *s)
{
	edo_file *f = (edo_file *)s;
	/* A job in flight finishes on its own and drops its reference. */
	if (f->join)
		edo_join_detach(f->join);
	core_put(f->c);
	free(f);
}

static const edo_stream_vtable file_vt = {
	.poll_read = file_poll_read,
	.poll_write = file_poll_write,
	.poll_flush = file_poll_flush,
	.poll_shutdown = file_poll_flush,
	.drop = file_drop,
};

int edo__file_new(int fd, bool owns_fd, bool mandatory_reads, edo_file **out)
{
	edo_file *f = calloc(1, sizeof *f);
	file_core *c = calloc(1, sizeof *c);
	if (!f || !c) {
		free(f);
		free(c);
		return -ENOMEM;
	}
	atomic_init(&c->refs, 1);
	c->fd = fd;
	c->owns_fd = owns_fd;
	f->base.vt = &file_vt;
	f->c = c;
	f->mandatory_reads = mandatory_reads;
	*out = f;
	return 0;
}

int edo_file_from_fd(int fd, edo_file **out)
{
	if (fd < 0 || !out)
		return -EINVAL;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -EBADF; /* not open: closing it later might close another's */
	if (fl & O_DIRECT)
		return -EINVAL; /* the file's buffer cannot meet its alignment rules */
	return edo__file_new(fd, true, true, out);
}

edo_stream *edo_file_stream(edo_file *f)
{
	return f ? &f->base : NULL;
}

void edo_file_close(edo_file *f)
{
	if (f)
		file_drop(&f->base);
}

/* ---- seek, sync, set_len, metadata ---------------------------------------------------------------- */

static edo_poll op_poll(edo_future *base, edo_cx *cx)
{
	edo_file_op_fut *o = (edo_file_op_fut *)base;
	edo_file *f = o->file_;
	if (!f)
		return EDO_READY; /* bad input, rc set */
	file_core *c = f->c;
	int kind;
	if (!o->started_) {
		if (wait_job(f, cx, &kind) == EDO_PENDING)
			return EDO_PENDING;
		keep_write_err(f, kind);
		if ((o->rc = take_write_err(f)) < 0)
			return EDO_READY;
		size_t pos = c->pos, end = c->len, unread = end - pos;
		if (o->kind_ == OP_SEEK) {
			/* The read-ahead stays until the seek took place (wait_job):
			 * a seek that fails changes nothing. */
			off_t arg = o->arg_;
			if (o->whence_ == SEEK_CUR &&
			    __builtin_sub_overflow(arg, (off_t)unread, &arg)) {
				o->rc = -EINVAL; /* before the start of the file */
				return EDO_READY;
			}
			c->arg = arg;
			c->whence = o->whence_;
		} else if (o->kind_ == OP_SET_LEN) {
			c->arg = o->arg_;
			c->seek_first = -(off_t)unread;
			c->pos = c->len = 0;
		}
		if ((o->rc = start(f, o->kind_)) < 0) {
			/* Nothing took place: the read-ahead stays (set_len). */
			c->pos = pos;
			c->len = end;
			return EDO_READY;
		}
		o->started_ = true;
	}
	if (wait_job(f, cx, &kind) == EDO_PENDING)
		return EDO_PENDING;
	o->rc = c->res < 0 ? (int)c->res : 0;
	if (o->kind_ == OP_SEEK && c->res >= 0)
		o->pos = (off_t)c->res;
	if (o->kind_ == OP_FSTAT)
		o->st = c->st;
	return EDO_READY;
}

static const edo_future_vtable op_vt = {.poll = op_poll, .drop = NULL};

static edo_future *op_init(edo_file_op_fut *o, edo_file *file, int kind, off_t arg, int whence)
{
	if (!o)
		return NULL;
	*o = (edo_file_op_fut){
		.base = {&op_vt}, .file_ = file, .kind_ = kind, .arg_ = arg, .whence_ = whence};
	if (!file)
		o->rc = -EINVAL;
	return &o->base;
}

edo_future *edo_file_seek(edo_file_op_fut *f, edo_file *file, off_t offset, int whence)
{
	if (!op_init(f, file, OP_SEEK, offset, whence))
		return NULL;
	if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) {
		f->file_ = NULL;
		f->rc = -EINVAL;
	}
	return &f->base;
}

edo_future *edo_file_sync_all(edo_file_op_fut *f, edo_file *file)
{
	return op_init(f, file, OP_SYNC_ALL, 0, 0);
}

edo_future *edo_file_sync_data(edo_file_op_fut *f, edo_file *file)
{
	return op_init(f, file, OP_SYNC_DATA, 0, 0);
}

edo_future *edo_file_set_len(edo_file_op_fut *f, edo_file *file, off_t len)
{
	if (!op_init(f, file, OP_SET_LEN, len, 0))
		return NULL;
	if (len < 0) {
		f->file_ = NULL;
		f->rc = -EINVAL;
	}
	return &f->base;
}

edo_future *edo_file_metadata(edo_file_op_fut *f, edo_file *file)
{
	return op_init(f, file, OP_FSTAT, 0, 0);
}

/* ---- stdin, stdout, stderr ------------------------------------------------------------------------- */

static int std_stream(int fd, edo_stream **out)
{
	if (!out)
		return -EINVAL;
	edo_file *f;
	/* stdin's reads may wait for input forever: not mandatory, so that
	 * shutdown does not wait for one that has not started. */
	int rc = edo__file_new(fd, false, fd != 0, &f);
	if (rc == 0)
		*out = &f->base;
	return rc;
}

int edo_stdin(edo_stream **out)
{
	return std_stream(0, out);
}

int edo_stdout(edo_stream **out)
{
	return std_stream(1, out);
}

int edo_stderr(edo_stream **out)
{
	return std_stream(2, out);
}
