/* The futures of edo/fs.h's path operations, opening files and listing
 * directories: each drives one blocking job (job.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "edo/error.h"
#include "fs/job.h"

/* ---- driving a job ------------------------------------------------------------------------ */

static void *job_thunk(void *arg)
{
	edo__fs_job *j = arg;
	edo__fs_job_run(j);
	edo__fs_job_put(j);
	return NULL;
}

edo_poll edo__fs_job_poll(edo__fs_job *j, edo_join **join, edo_cx *cx)
{
	if (!*join) {
		atomic_fetch_add_explicit(&j->refs, 1, memory_order_relaxed);
		int rc = edo_spawn_blocking_on(NULL, job_thunk, j, EDO_BLOCKING_MANDATORY, join);
		if (rc < 0) {
			edo__fs_job_put(j);
			*join = NULL;
			j->rc = rc;
			return EDO_READY;
		}
	}
	int res;
	if (edo_join_poll(*join, cx, &res) == EDO_PENDING)
		return EDO_PENDING;
	edo_join_detach(*join);
	*join = NULL;
	if (res < 0) {
		/* Cancelled before it ran (the pool shut down): its reference
		 * was never released. */
		j->rc = EDO_ESHUTDOWN;
		edo__fs_job_put(j); /* ours is still held */
	}
	return EDO_READY;
}

void edo__fs_job_abandon(edo__fs_job **j, edo_join **join)
{
	if (*join)
		edo_join_detach(*join);
	*join = NULL;
	edo__fs_job_put(*j);
	*j = NULL;
}

/* ---- edo_fs_fut ------------------------------------------------------------------------------ */

static edo_poll fs_poll(edo_future *base, edo_cx *cx)
{
	edo_fs_fut *f = (edo_fs_fut *)base;
	edo__fs_job *j = f->job_;
	if (!j)
		return EDO_READY; /* rc was set by the initialiser */
	if (edo__fs_job_poll(j, &f->join_, cx) == EDO_PENDING)
		return EDO_PENDING;
	f->rc = j->rc;
	f->n = j->n;
	f->st = j->st;
	f->data = j->data;
	j->data = (edo_buf){0};
	f->path = j->path;
	j->path = NULL;
	edo__fs_job_put(j);
	f->job_ = NULL;
	return EDO_READY;
}

static void fs_drop(edo_future *base)
{
	edo_fs_fut *f = (edo_fs_fut *)base;
	if (f->job_)
		edo__fs_job_abandon(&f->job_, &f->join_);
}

static const edo_future_vtable fs_vt = {.poll = fs_poll, .drop = fs_drop};

static edo_future *fs_init(edo_fs_fut *f, enum edo__fs_op op, const char *a, const char *b)
{
	if (!f)
		return NULL;
	*f = (edo_fs_fut){.base = {&fs_vt}};
	if (!a || (op == EDO__FS_RENAME || op == EDO__FS_COPY || op == EDO__FS_SYMLINK ||
		   op == EDO__FS_LINK) != (b != NULL)) {
		f->rc = -EINVAL;
		return &f->base;
	}
	f->job_ = edo__fs_job_new(op, a, b);
	if (!f->job_)
		f->rc = -ENOMEM;
	return &f->base;
}

void edo_fs_fut_clear(edo_fs_fut *f)
{
	if (!f)
		return;
	edo_buf_free(&f->data);
	free(f->path);
	f->path = NULL;
}

edo_future *edo_fs_read(edo_fs_fut *f, const char *path)
{
	return fs_init(f, EDO__FS_READ, path, NULL);
}

edo_future *edo_fs_write(edo_fs_fut *f, const char *path, const void *data, size_t len)
{
	if (!fs_init(f, EDO__FS_WRITE, path, NULL))
		return NULL;
	if (f->job_ && len) {
		if (!data || !(f->job_->in = malloc(len))) {
			f->rc = data ? -ENOMEM : -EINVAL;
			edo__fs_job_put(f->job_);
			f->job_ = NULL;
		} else {
			memcpy(f->job_->in, data, len);
			f->job_->in_len = len;
		}
	}
	return &f->base;
}

edo_future *edo_fs_metadata(edo_fs_fut *f, const char *path)
{
	return fs_init(f, EDO__FS_STAT, path, NULL);
}

edo_future *edo_fs_symlink_metadata(edo_fs_fut *f, const char *path)
{
	return fs_init(f, EDO__FS_LSTAT, path, NULL);
}

edo_future *edo_fs_try_exists(edo_fs_fut *f, const char *path)
{
	return fs_init(f, EDO__FS_EXISTS, path, NULL);
}

edo_future *edo_fs_create_dir(edo_fs_fut *f, const char *path)
{
	return fs_init(f, EDO__FS_MKDIR, path, NULL);
}

edo_future *edo_fs_create_dir_all(edo_fs_fut *f, const char *path)
{
	return fs_init(f, EDO__FS_MKDIR_ALL, path, NULL);
}

edo_future *edo_fs_remove_file(edo_fs_fut *f, const char *path)
{
	return fs_init(f, EDO__FS_UNLINK, path, NULL);
}

edo_future *edo_fs_remove_dir(edo_fs_fut *f, const char *path)
{
	return fs_init(f, EDO__FS_RMDIR, path, NULL);
}

edo_future *edo_fs_remove_dir_all(edo_fs_fut *f, const char *path)
{
	return fs_init(f, EDO__FS_RMDIR_ALL, path, NULL);
}

edo_future *edo_fs_rename(edo_fs_fut *f, const char *from, const char *to)
{
	return fs_init(f, EDO__FS_RENAME, from, to);
}

edo_future *edo_fs_copy(edo_fs_fut *f, const char *from, const char *to)
{
	return fs_init(f, EDO__FS_COPY, from, to);
}

edo_future *edo_fs_canonicalize(edo_fs_fut *f, const char *path)
{
	return fs_init(f, EDO__FS_CANONICALIZE, path, NULL);
}

edo_future *edo_fs_symlink(edo_fs_fut *f, const char *target, const char *link)
{
	return fs_init(f, EDO__FS_SYMLINK, target, link);
}

edo_future *edo_fs_hard_link(edo_fs_fut *f, const char *src, const char *link)
{
	return fs_init(f, EDO__FS_LINK, src, link);
}

edo_future *edo_fs_read_link(edo_fs_fut *f, const char *path)
{
	return fs_init(f, EDO__FS_READLINK, path, NULL);
}

edo_future *edo_fs_set_permissions(edo_fs_fut *f, const char *path, mode_t mode)
{
	if (!fs_init(f, EDO__FS_CHMOD, path, NULL))
		return NULL;
	if (f->job_)
		f->job_->mode = mode & 07777;
	return &f->base;
}

/* ---- opening files -------------------------------------------------------------------------- */

/* Rust's OpenOptions rules; -EINVAL for combinations that contradict, for
 * flags that have fields of their own (they would bypass the rules), and
 * for O_DIRECT (the file's buffer meets none of its alignment rules: every
 * read and write would fail with EINVAL). */
static int open_flags(const edo_open_opts *o, int *flags)
{
	if (o->flags & (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_DIRECT))
		return -EINVAL;
	int acc;
	if (o->read && !o->write && !o->append)
		acc = O_RDONLY;
	else if (!o->read && (o->write || o->append))
		acc = O_WRONLY;
	else if (o->read && (o->write || o->append))
		acc = O_RDWR;
	else
		return -EINVAL;
	if (o->append)
		acc |= O_APPEND;
	bool writes = o->write || o->append;
	int cr;
	if (o->create_new) {
		if (!writes)
			return -EINVAL;
		cr = O_CREAT | O_EXCL;
	} else {
		if ((o->truncate && !o->write) || (o->truncate && o->append))
			return -EINVAL;
		if (o->create && !writes)
			return -EINVAL;
		cr = (o->create ? O_CREAT : 0) | (o->truncate ? O_TRUNC : 0);
	}
	*flags = acc | cr | o->flags;
	return 0;
}

static edo_poll open_poll(edo_future *base, edo_cx *cx)
{
	edo_file_open_fut *f = (edo_file_open_fut *)base;
	edo__fs_job *j = f->job_;
	if (!j)
		return EDO_READY;
	if (edo__fs_job_poll(j, &f->join_, cx) == EDO_PENDING)
		return EDO_PENDING;
	f->rc = j->rc;
	if (f->rc == 0) {
		f->rc = edo__file_new(j->fd, true, true, &f->file);
		if (f->rc == 0)
			j->fd = -1; /* the file owns it now */
	}
	edo__fs_job_put(j);
	f->job_ = NULL;
	return EDO_READY;
}

static void open_drop(edo_future *base)
{
	edo_file_open_fut *f = (edo_file_open_fut *)base;
	if (f->job_)
		edo__fs_job_abandon(&f->job_, &f->join_);
}

static const edo_future_vtable open_vt = {.poll = open_poll, .drop = open_drop};

edo_future *edo_file_open(edo_file_open_fut *f, const char *path, const edo_open_opts *o)
{
	if (!f)
		return NULL;
	*f = (edo_file_open_fut){.base = {&open_vt}};
	static const edo_open_opts read_only = {.read = true};
	int flags = 0;
	if (!path || (f->rc = open_flags(o ? o : &read_only, &flags)) < 0) {
		if (!f->rc)
			f->rc = -EINVAL;
		return &f->base;
	}
	f->job_ = edo__fs_job_new(EDO__FS_OPEN, path, NULL);
	if (!f->job_) {
		f->rc = -ENOMEM;
		return &f->base;
	}
	f->job_->flags = flags;
	f->job_->mode = o && o->mode ? o->mode : 0666;
	return &f->base;
}

edo_future *edo_file_create(edo_file_open_fut *f, const char *path)
{
	return edo_file_open(f, path,
			     &(edo_open_opts){.write = true, .create = true, .truncate = true});
}

/* ---- opening directories -------------------------------------------------------------------------- */

static edo_poll opendir_poll(edo_future *base, edo_cx *cx)
{
	edo_read_dir_fut *f = (edo_read_dir_fut *)base;
	edo__fs_job *j = f->job_;
	if (!j)
		return EDO_READY;
	if (edo__fs_job_poll(j, &f->join_, cx) == EDO_PENDING)
		return EDO_PENDING;
	f->rc = j->rc;
	if (f->rc == 0) {
		f->rc = edo__read_dir_new(j->dir, &f->dir);
		if (f->rc == 0)
			j->dir = NULL;
	}
	edo__fs_job_put(j);
	f->job_ = NULL;
	return EDO_READY;
}

static void opendir_drop(edo_future *base)
{
	edo_read_dir_fut *f = (edo_read_dir_fut *)base;
	if (f->job_)
		edo__fs_job_abandon(&f->job_, &f->join_);
}

static const edo_future_vtable opendir_vt = {.poll = opendir_poll, .drop = opendir_drop};

edo_future *edo_read_dir_open(edo_read_dir_fut *f, const char *path)
{
	if (!f)
		return NULL;
	*f = (edo_read_dir_fut){.base = {&opendir_vt}};
	if (!path)
		f->rc = -EINVAL;
	else if (!(f->job_ = edo__fs_job_new(EDO__FS_OPENDIR, path, NULL)))
		f->rc = -ENOMEM;
	return &f->base;
}
