/* The system calls of edo/fs.h's path operations, run on the blocking pool,
 * and the jobs that carry them (job.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/job.h"

edo__fs_job *edo__fs_job_new(enum edo__fs_op op, const char *a, const char *b)
{
	edo__fs_job *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	atomic_init(&j->refs, 1);
	j->op = op;
	j->fd = -1;
	if ((a && !(j->a = strdup(a))) || (b && !(j->b = strdup(b)))) {
		free(j->a);
		free(j);
		return NULL;
	}
	return j;
}

void edo__fs_job_put(edo__fs_job *j)
{
	if (!j || atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(j->a);
	free(j->b);
	free(j->in);
	edo_buf_free(&j->data);
	free(j->path);
	if (j->fd >= 0)
		close(j->fd);
	if (j->dir)
		closedir(j->dir);
	free(j);
}

/* ---- the operations ---------------------------------------------------------------------- */

static int err(void)
{
	return -errno;
}

static ssize_t read_retry(int fd, void *buf, size_t len)
{
	ssize_t r;
	do
		r = read(fd, buf, len);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/* Write all of @buf; 0 or -errno. */
int edo__fs_write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t r = write(fd, buf, len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

static int read_all(edo__fs_job *j)
{
	int fd = open(j->a, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err();
	struct stat st;
	size_t hint = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (size_t)st.st_size : 0;
	int rc = edo_buf_reserve(&j->data, hint + 1);
	while (rc == 0) {
		if (j->data.cap == j->data.len && (rc = edo_buf_reserve(&j->data, j->data.cap)) < 0)
			break;
		ssize_t r = read_retry(fd, j->data.data + j->data.len, j->data.cap - j->data.len);
		if (r <= 0) {
			rc = (int)r;
			break;
		}
		j->data.len += (size_t)r;
	}
	close(fd);
	return rc;
}

static int write_file(edo__fs_job *j)
{
	int fd = open(j->a, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0)
		return err();
	int rc = edo__fs_write_all(fd, j->in, j->in_len);
	if (close(fd) < 0 && rc == 0 && errno != EINTR)
		rc = err();
	if (rc == 0)
		j->n = j->in_len;
	return rc;
}

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p, as Rust's create_dir_all: racing creators are fine. */
static int mkdir_all(char *path)
{
	if (!*path)
		return -ENOENT;
	if (mkdir(path, 0777) == 0)
		return 0;
	if (errno == EEXIST)
		return is_dir(path) ? 0 : -EEXIST;
	if (errno != ENOENT)
		return err();
	/* Make the parent, then try again. */
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	while (len > 0 && path[len - 1] != '/')
		len--;
	while (len > 1 && path[len - 1] == '/')
		len--;
	if (len == 0)
		return -ENOENT;
	char saved = path[len];
	path[len] = 0;
	int rc = mkdir_all(path);
	path[len] = saved;
	if (rc < 0)
		return rc;
	if (mkdir(path, 0777) == 0 || (errno == EEXIST && is_dir(path)))
		return 0;
	return err();
}

/* Remove @name under @dirfd and everything below it, never following a
 * symlink; entries that vanish meanwhile are not errors. */
static int rm_tree_at(int at, const char *name)
{
	struct stat st;
	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err();
	if (!S_ISDIR(st.st_mode))
		return unlinkat(at, name, 0) < 0 ? err() : 0;
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err();
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = err();
		close(fd);
		return e;
	}
	int rc = 0;
	struct dirent *e;
	// NOLINTNEXTLINE(concurrency-mt-unsafe): this DIR stream is this thread's alone
	while (rc == 0 && (errno = 0, e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN)
			rc = rm_tree_at(dirfd(d), e->d_name);
		else if (unlinkat(dirfd(d), e->d_name, 0) < 0)
			rc = errno == EISDIR ? rm_tree_at(dirfd(d), e->d_name) : err();
		if (rc == -ENOENT)
			rc = 0;
	}
	if (rc == 0 && errno)
		rc = err();
	closedir(d);
	if (rc == 0 && unlinkat(at, name, AT_REMOVEDIR) < 0)
		rc = err();
	return rc;
}

static int copy_file(edo__fs_job *j)
{
	int in = open(j->a, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return err();
	struct stat st;
	if (fstat(in, &st) < 0) {
		int e = err();
		close(in);
		return e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(in);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	int out = open(j->b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
	if (out < 0) {
		int e = err();
		close(in);
		return e;
	}
	int rc = 0;
	bool plain = false;
	for (;;) {
		ssize_t r = plain ? 0 : copy_file_range(in, NULL, out, NULL, (size_t)1 << 30, 0);
		if (!plain && r < 0 && j->n == 0 &&
		    (errno == ENOSYS || errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP))
			plain = true;
		if (plain) {
			char buf[65536];
			r = read_retry(in, buf, sizeof buf);
			if (r > 0 && (rc = edo__fs_write_all(out, buf, (size_t)r)) < 0)
				break;
			if (r < 0) {
				rc = (int)r;
				break;
			}
		} else if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = err();
			break;
		}
		if (r == 0)
			break;
		j->n += (uint64_t)r;
	}
	if (rc == 0 && fchmod(out, st.st_mode & 07777) < 0)
		rc = err();
	if (close(out) < 0 && rc == 0 && errno != EINTR)
		rc = err();
	close(in);
	return rc;
}

static int read_link(edo__fs_job *j)
{
	for (size_t size = 256;; size *= 2) {
		char *buf = malloc(size);
		if (!buf)
			return -ENOMEM;
		ssize_t r = readlink(j->a, buf, size);
		if (r < 0) {
			int e = err();
			free(buf);
			return e;
		}
		if ((size_t)r < size) {
			buf[r] = 0;
			j->path = buf;
			return 0;
		}
		free(buf);
	}
}

void edo__fs_job_run(edo__fs_job *j)
{
	int rc;
	switch (j->op) {
	case EDO__FS_READ:
		rc = read_all(j);
		break;
	case EDO__FS_WRITE:
		rc = write_file(j);
		break;
	case EDO__FS_STAT:
		rc = stat(j->a, &j->st) < 0 ? err() : 0;
		break;
	case EDO__FS_LSTAT:
		rc = lstat(j->a, &j->st) < 0 ? err() : 0;
		break;
	case EDO__FS_EXISTS:
		rc = stat(j->a, &j->st) == 0 ? 1 : errno == ENOENT ? 0 : err();
		break;
	case EDO__FS_MKDIR:
		rc = mkdir(j->a, 0777) < 0 ? err() : 0;
		break;
	case EDO__FS_MKDIR_ALL:
		rc = mkdir_all(j->a);
		break;
	case EDO__FS_UNLINK:
		rc = unlink(j->a) < 0 ? err() : 0;
		break;
	case EDO__FS_RMDIR:
		rc = rmdir(j->a) < 0 ? err() : 0;
		break;
	case EDO__FS_RMDIR_ALL:
		rc = rm_tree_at(AT_FDCWD, j->a);
		break;
	case EDO__FS_RENAME:
		rc = rename(j->a, j->b) < 0 ? err() : 0;
		break;
	case EDO__FS_COPY:
		rc = copy_file(j);
		break;
	case EDO__FS_CANONICALIZE:
		j->path = realpath(j->a, NULL);
		rc = j->path ? 0 : err();
		break;
	case EDO__FS_SYMLINK:
		rc = symlink(j->a, j->b) < 0 ? err() : 0;
		break;
	case EDO__FS_LINK:
		rc = link(j->a, j->b) < 0 ? err() : 0;
		break;
	case EDO__FS_READLINK:
		rc = read_link(j);
		break;
	case EDO__FS_CHMOD:
		rc = chmod(j->a, j->mode) < 0 ? err() : 0;
		break;
	case EDO__FS_OPEN:
		j->fd = open(j->a, j->flags | O_CLOEXEC, j->mode);
		rc = j->fd < 0 ? err() : 0;
		break;
	case EDO__FS_OPENDIR:
		j->dir = opendir(j->a);
		rc = j->dir ? 0 : err();
		break;
	default:
		rc = -EINVAL;
		break;
	}
	j->rc = rc;
}
