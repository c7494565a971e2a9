/* Listing a directory (edo/fs.h): readdir(3) on the blocking pool, 32
 * entries per job (Tokio's chunk), served one at a time by poll_next.
 *
 * As with files, the state the job fills (the DIR stream, the chunk) is
 * shared with the pool thread, reference-counted, and touched by the task
 * only after the join handle reported the job done; a listing closed while
 * a job runs is freed by that job. */
#define _GNU_SOURCE
#include <dirent.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "edo/error.h"
#include "fs/job.h"

#define CHUNK 32

typedef struct dir_core {
	atomic_uint refs;
	DIR *d;
	edo_dir_entry ents[CHUNK];
	size_t n, pos;
	int err;
	bool eof;
} dir_core;

struct edo_read_dir {
	dir_core *c;
	edo_join *join;
};

/* Drop the reference of a job that never ran; the caller still holds its own. */
static void core_put_job(dir_core *c)
{
	unsigned prev = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_relaxed);
	assert(prev > 1);
	(void)prev;
}

static void core_put(dir_core *c)
{
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	closedir(c->d);
	free(c);
}

static unsigned char type_of(mode_t m)
{
	return S_ISREG(m)  ? DT_REG :
	       S_ISDIR(m)  ? DT_DIR :
	       S_ISLNK(m)  ? DT_LNK :
	       S_ISFIFO(m) ? DT_FIFO :
	       S_ISSOCK(m) ? DT_SOCK :
	       S_ISCHR(m)  ? DT_CHR :
	       S_ISBLK(m)  ? DT_BLK :
			     DT_UNKNOWN;
}

static void *dir_job(void *arg)
{
	dir_core *c = arg;
	c->n = c->pos = 0;
	while (c->n < CHUNK) {
		errno = 0;
		// NOLINTNEXTLINE(concurrency-mt-unsafe): one thread per DIR stream at a time
		struct dirent *e = readdir(c->d);
		if (!e) {
			if (errno)
				c->err = -errno;
			else
				c->eof = true;
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		edo_dir_entry *out = &c->ents[c->n++];
		size_t len = strnlen(e->d_name, sizeof out->name - 1);
		memcpy(out->name, e->d_name, len);
		out->name[len] = 0;
		out->ino = e->d_ino;
		out->type = e->d_type;
		struct stat st;
		if (out->type == DT_UNKNOWN &&
		    fstatat(dirfd(c->d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			out->type = type_of(st.st_mode);
	}
	core_put(c);
	return NULL;
}

int edo__read_dir_new(void *dir, edo_read_dir **out)
{
	edo_read_dir *d = calloc(1, sizeof *d);
	dir_core *c = calloc(1, sizeof *c);
	if (!d || !c) {
		free(d);
		free(c);
		return -ENOMEM;
	}
	atomic_init(&c->refs, 1);
	c->d = dir;
	d->c = c;
	*out = d;
	return 0;
}

edo_poll edo_read_dir_poll_next(edo_read_dir *d, edo_cx *cx, edo_dir_entry *out, int *rc)
{
	if (!d || !out || !rc) {
		/* Bad input: nothing read, nothing waited for. */
		if (rc)
			*rc = -EINVAL;
		return EDO_READY;
	}
	dir_core *c = d->c;
	for (;;) {
		if (d->join) {
			int res;
			if (edo_join_poll(d->join, cx, &res) == EDO_PENDING)
				return EDO_PENDING;
			edo_join_detach(d->join);
			d->join = NULL;
			if (res < 0) {
				c->err = EDO_ESHUTDOWN;
				core_put_job(c); /* cancelled before it ran */
			}
		}
		if (c->pos < c->n) {
			*out = c->ents[c->pos++];
			*rc = 1;
			return EDO_READY;
		}
		if (c->err) {
			*rc = c->err;
			c->err = 0;
			c->eof = true; /* reported once, then the end */
			return EDO_READY;
		}
		if (c->eof) {
			*rc = 0;
			return EDO_READY;
		}
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
		int r = edo_spawn_blocking_on(NULL, dir_job, c, EDO_BLOCKING_MANDATORY, &d->join);
		if (r < 0) {
			atomic_fetch_sub_explicit(&c->refs, 1, memory_order_relaxed);
			d->join = NULL;
			*rc = r;
			return EDO_READY;
		}
	}
}

void edo_read_dir_close(edo_read_dir *d)
{
	if (!d)
		return;
	if (d->join)
		edo_join_detach(d->join);
	core_put(d->c);
	free(d);
}
