/* The blocking jobs behind edo/fs.h's path operations (Tokio's asyncify).
 *
 * A job holds copies of its inputs and receives its outputs.  It is shared
 * by the future that spawned it and by the pool thread that runs it, each
 * with a reference: if the future is dropped first, the thread's release
 * frees the job and whatever it produced (closes an opened descriptor,
 * closes a directory stream, frees bytes read).  A future that completes
 * moves the outputs out before it lets go.
 */
#ifndef EDO_FS_JOB_H
#define EDO_FS_JOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "edo/fs.h"
#include "edo/task.h"

enum edo__fs_op {
	EDO__FS_READ = 1,
	EDO__FS_WRITE,
	EDO__FS_STAT,
	EDO__FS_LSTAT,
	EDO__FS_EXISTS,
	EDO__FS_MKDIR,
	EDO__FS_MKDIR_ALL,
	EDO__FS_UNLINK,
	EDO__FS_RMDIR,
	EDO__FS_RMDIR_ALL,
	EDO__FS_RENAME,
	EDO__FS_COPY,
	EDO__FS_CANONICALIZE,
	EDO__FS_SYMLINK,
	EDO__FS_LINK,
	EDO__FS_READLINK,
	EDO__FS_CHMOD,
	EDO__FS_OPEN,
	EDO__FS_OPENDIR,
};

typedef struct edo__fs_job {
	atomic_uint refs;
	enum edo__fs_op op;
	/* inputs */
	char *a, *b;
	void *in;
	size_t in_len;
	mode_t mode;
	int flags;
	/* outputs */
	int rc;
	uint64_t n;
	struct stat st;
	edo_buf data;
	char *path;
	int fd;    /* EDO__FS_OPEN: the descriptor, -1 */
	void *dir; /* EDO__FS_OPENDIR: the DIR * */
} edo__fs_job;

/* A job for @op with copies of @a and @b (either may be NULL); NULL if out
 * of memory. */
edo__fs_job *edo__fs_job_new(enum edo__fs_op op, const char *a, const char *b);

/* Release one reference; the last frees the job and any output left in it. */
void edo__fs_job_put(edo__fs_job *j);

/* Run the job's system calls (on a pool thread). */
void edo__fs_job_run(edo__fs_job *j);

/*
 * Drive a job from a future: the first call spawns it (a mandatory blocking
 * task), later calls poll its join handle.  READY when it finished (its
 * outputs are valid) or could not be run (j->rc holds why); the join handle
 * is released by then.
 */
edo_poll edo__fs_job_poll(edo__fs_job *j, struct edo_join **join, edo_cx *cx);

/* Abandon a job (a future dropped): release the join handle and our reference. */
void edo__fs_job_abandon(edo__fs_job **j, struct edo_join **join);

/* Write all of @buf to @fd (retrying short writes and EINTR): 0 or -errno. */
int edo__fs_write_all(int fd, const char *buf, size_t len);

/* A file over @fd: closed with the file if @owns_fd; reads are mandatory
 * blocking tasks if @mandatory_reads (not for stdin). */
int edo__file_new(int fd, bool owns_fd, bool mandatory_reads, edo_file **out);

/* Tests: every file read goes to the blocking pool (no RWF_NOWAIT try). */
void edo__fs_force_pool(bool on);

/* For edo_read_dir_open: wrap a DIR * (owned from then on). */
int edo__read_dir_new(void *dir, edo_read_dir **out);

#endif /* EDO_FS_JOB_H */
