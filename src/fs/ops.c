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

/*
 * open(2) that never waits for the other end of a FIFO (nor for a device's
 * carrier): a job that did would hold a mandatory pool thread, and so
 * edo_runtime_free(), until a writer or reader came, perhaps never.  Opened
 * with O_NONBLOCK, which is then cleared unless @flags asked for it: a
 * FIFO without a writer opens for reading (and reads the end at once), one
 * without a reader fails to open for writing with ENXIO.  A regular file's
 * lease held elsewhere fails a non-blocking open with EWOULDBLOCK: that
 * one is opened again plainly, to wait for the lease's break as before.
 */
static int open_nowait(const char *path, int flags, mode_t mode)
{
	if (flags & O_PATH) /* opens nothing, waits for nothing, takes no F_SETFL */
		return open(path, flags | O_CLOEXEC, mode);
	int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, mode);
	if (fd < 0 && errno == EWOULDBLOCK && !(flags & O_NONBLOCK))
		return open(path, flags | O_CLOEXEC, mode);
	if (fd < 0 || (flags & O_NONBLOCK))
		return fd;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
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
	int fd = open_nowait(j->a, O_RDONLY, 0);
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
	int fd = open_nowait(j->a, O_WRONLY | O_CREAT | O_TRUNC, 0666);
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

/* Remove @name under @at and everything below it, never following a
 * symlink (@name's last component included: it is checked with
 * AT_SYMLINK_NOFOLLOW and opened with O_NOFOLLOW, so @name must not end in
 * "/" or "/.", which make the kernel resolve it); entries that vanish
 * meanwhile are not errors.  The @top of the tree must be a directory or a
 * symlink (Rust's remove_dir_all): anything else there is refused with
 * ENOTDIR, and a directory that turns into one after it was checked fails
 * the O_DIRECTORY open the same way. */
static int rm_tree_at(int at, const char *name, bool top)
{
	struct stat st;
	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return err();
	if (top && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
		return -ENOTDIR;
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
			rc = rm_tree_at(dirfd(d), e->d_name, false);
		else if (unlinkat(dirfd(d), e->d_name, 0) < 0)
			rc = errno == EISDIR ? rm_tree_at(dirfd(d), e->d_name, false) : err();
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

/*
 * remove_dir_all's path, checked before anything is touched.  Trailing
 * slashes are stripped: "link/" names the symlink itself (removed, never
 * followed), as "link" does; the kernel would resolve "link/" to the
 * link's target.  A last component "." or ".." (and the root) is refused
 * with EINVAL: the directory it names could not be removed at the end, so
 * nothing under it may be removed first.  What is left must name a
 * directory or a symlink ("file" and "file/" are ENOTDIR: see rm_tree_at).
 * Components before the last are resolved as usual.  @path (the job's
 * copy) is edited in place.
 */
static int rm_all(char *path)
{
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	path[len] = 0;
	if (len == 0)
		return -ENOENT;
	const char *name = strrchr(path, '/');
	name = name ? name + 1 : path;
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	return rm_tree_at(AT_FDCWD, path, true);
}

/* Copy as Rust's fs::copy, except that a @to that is @from itself (the same
 * path, a hard link, a symlink to it) is refused with EINVAL before it is
 * truncated. */
static int copy_file(edo__fs_job *j)
{
	int in = open_nowait(j->a, O_RDONLY, 0);
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
	/* Not O_TRUNC: @to may be @from. */
	int out = open_nowait(j->b, O_WRONLY | O_CREAT, st.st_mode & 07777);
	if (out < 0) {
		int e = err();
		close(in);
		return e;
	}
	struct stat ost;
	int rc = fstat(out, &ost) < 0 ? err() : 0;
	if (rc == 0 && ost.st_dev == st.st_dev && ost.st_ino == st.st_ino)
		rc = -EINVAL;
	/* Truncate as O_TRUNC would have: regular files only. */
	if (rc == 0 && S_ISREG(ost.st_mode) && ftruncate(out, 0) < 0)
		rc = err();
	if (rc < 0) {
		close(out);
		close(in);
		return rc;
	}
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
	/* Only a regular file takes @from's permission bits (as Rust's
	 * fs::copy): a FIFO or a device written to keeps its own mode. */
	if (rc == 0 && S_ISREG(ost.st_mode) && fchmod(out, st.st_mode & 07777) < 0)
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
		rc = rm_all(j->a);
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
		j->fd = open_nowait(j->a, j->flags, j->mode);
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
	if (rc < 0) {
		/* A failed operation outputs nothing (a read may have allocated
		 * its buffer before it failed). */
		edo_buf_free(&j->data);
		free(j->path);
		j->path = NULL;
	}
	j->rc = rc;
}
