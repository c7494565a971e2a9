/* Edo — files and directories, and async stdin, stdout and stderr.
 *
 * Regular files are always "ready" to epoll, so, like Tokio, Edo does file
 * I/O on the runtime's blocking pool (edo_spawn_blocking): every operation
 * below is a blocking system call run on a pool thread while the task waits.
 *
 *     EDO_AWAIT(edo_fs_read(&self->op, "config.toml"));   // whole file
 *     if (self->op.rc < 0) ...                            // -ENOENT, ...
 *     use(self->op.data.data, self->op.data.len);
 *     edo_fs_fut_clear(&self->op);                        // frees the data
 *
 *     EDO_AWAIT(edo_file_open(&self->of, "log.txt",
 *                             &(edo_open_opts){.append = true, .create = true}));
 *     self->f = self->of.file;
 *     EDO_AWAIT(edo_write_all(&self->wa, edo_file_stream(self->f), line, len));
 *     EDO_AWAIT_POLL(edo_stream_poll_flush(edo_file_stream(self->f), cx, &self->rc));
 *     edo_file_close(self->f);
 *
 * Path operations.  One future type, edo_fs_fut, serves every operation on
 * paths; its initialiser copies the paths (and the bytes to write), so they
 * need not outlive the call.  Nothing happens until the first poll.  When
 * READY, rc is 0 (or a count, where said) or a negative errno from the
 * system call (-ENOENT, -EEXIST, -ENOTDIR, -EISDIR, -ENOTEMPTY, -EACCES,
 * -ENAMETOOLONG, ...), and the operation's outputs are in its fields (a
 * failed operation has none: data is empty and path NULL).
 * Dropping one while pending abandons it: the system call still finishes
 * on the pool, and whatever it made (bytes read, an open descriptor) is
 * released there.  Release outputs with edo_fs_fut_clear().  Opening a file
 * (edo_fs_read, edo_fs_write, edo_fs_copy, edo_file_open) never waits for
 * the other end of a FIFO: with no writer a FIFO reads as empty at once,
 * and with no reader opening one for writing fails with -ENXIO.
 *
 * Files (edo_file) are streams (edo/stream.h) with Tokio's buffering:
 *
 *   - A read first tries preadv2(RWF_NOWAIT) on the task's own thread: a
 *     read the page cache (or a device such as /dev/zero) can serve without
 *     blocking completes at once, up to 256 KiB, with no pool round trip.
 *     Otherwise it asks the pool to read up to its length (at most 2 MiB)
 *     into the file's buffer and waits for it; bytes left over from a
 *     longer read are served from the buffer first.  (Tokio always goes to
 *     the pool.)
 *   - A write copies the bytes (at most 2 MiB) into the file's buffer, hands
 *     the buffer to a pool thread that writes it all, and completes at
 *     once.  The next operation on the file waits for that write; if it
 *     failed, the error is reported by the next write or flush.  So a write
 *     that returned n bytes is not on disk yet: flush (poll_flush, or
 *     poll_shutdown, which is a flush) to know that it was written and
 *     whether it failed, and sync to know it reached the device.
 *   - Guarantee: a write job, once a write returned, runs to completion even
 *     if the file is dropped or closed meanwhile and even if the runtime
 *     shuts down (it is a mandatory blocking task, which shutdown runs
 *     rather than cancels): accepted bytes are written, though an error
 *     nobody flushed for goes unreported.  Reads and other file jobs are
 *     mandatory too (they are short); stdin's reads are not (one may wait
 *     for input forever).
 *   - Reading after writing, or writing after reading, works as on a plain
 *     descriptor: bytes read ahead into the buffer are given back with a
 *     seek before the write.
 *   - An operation whose pool job cannot start (no runtime, the runtime
 *     shutting down, out of memory) fails with that error (EDO_ENORUNTIME,
 *     EDO_ESHUTDOWN, -ENOMEM, ...) and changes nothing: bytes read ahead
 *     are still read next.
 *   - A NULL buffer with a nonzero length gives -EINVAL at once, with
 *     nothing read, written or waited for (as from a socket, edo/stream.h);
 *     a NULL result pointer (@n, @rc) has nowhere to report: READY, with
 *     nothing done.
 *   - No O_DIRECT (see edo_open_opts).
 *
 * One task uses a file at a time (as one would a Rust &mut File): a read
 * and a write may not be pending at once.  Different files are independent.
 *
 * Bad input.  A future initialiser given a NULL future does nothing and
 * returns NULL.  A future given a NULL path or file completes at its first
 * poll with rc = -EINVAL, touching nothing; a poll function given a NULL
 * handle or output returns READY at once with *rc = -EINVAL (with a NULL
 * @rc, nothing is done).
 */
#ifndef EDO_FS_H
#define EDO_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "edo/future.h"
#include "edo/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Bytes a file buffers for one read or write, as Tokio's File (2 MiB). */
#define EDO_FILE_MAX_BUF ((size_t)2 << 20)

/* ==== operations on paths =================================================================== */

/**
 * edo_fs_fut - a one-shot file-system operation on the blocking pool.
 * Outputs (valid when READY): rc, and per operation st, data, path or n.
 */
typedef struct edo_fs_fut {
	edo_future base;
	int rc;         /**< 0 or a count, or a negative errno */
	uint64_t n;     /**< edo_fs_copy, edo_fs_write: bytes */
	struct stat st; /**< edo_fs_metadata, edo_fs_symlink_metadata */
	edo_buf data;   /**< edo_fs_read: the contents */
	char *path;     /**< edo_fs_canonicalize, edo_fs_read_link: malloc'd */
	/* private */
	struct edo__fs_job *job_;
	struct edo_join *join_;
} edo_fs_fut;

/** edo_fs_fut_clear() - free the outputs (data, path) of a finished or dropped @f.
 *  NULL: no-op. */
void edo_fs_fut_clear(edo_fs_fut *f);

/** edo_fs_read() - the whole file @path into data (left empty if it fails). */
edo_future *edo_fs_read(edo_fs_fut *f, const char *path);

/** edo_fs_write() - make @path contain exactly @len bytes of @data (created
 *  0666 & ~umask, or truncated).  @data is copied.  n = bytes written. */
edo_future *edo_fs_write(edo_fs_fut *f, const char *path, const void *data, size_t len);

/** edo_fs_metadata() - stat(2) of @path into st (following symlinks). */
edo_future *edo_fs_metadata(edo_fs_fut *f, const char *path);

/** edo_fs_symlink_metadata() - lstat(2): a symlink's own metadata. */
edo_future *edo_fs_symlink_metadata(edo_fs_fut *f, const char *path);

/** edo_fs_try_exists() - rc = 1 if @path exists (a dangling symlink does
 *  not), 0 if it does not (-ENOENT), another negative errno if unknown. */
edo_future *edo_fs_try_exists(edo_fs_fut *f, const char *path);

/** edo_fs_create_dir() - mkdir(2) with mode 0777 & ~umask.  -EEXIST if it exists. */
edo_future *edo_fs_create_dir(edo_fs_fut *f, const char *path);

/** edo_fs_create_dir_all() - create @path and every missing parent; an
 *  existing directory is fine, -EEXIST if @path is something else,
 *  -ENOTDIR if a parent is not a directory. */
edo_future *edo_fs_create_dir_all(edo_fs_fut *f, const char *path);

/** edo_fs_remove_file() - unlink(2).  -EISDIR for a directory. */
edo_future *edo_fs_remove_file(edo_fs_fut *f, const char *path);

/** edo_fs_remove_dir() - rmdir(2) of an empty directory.  -ENOTEMPTY. */
edo_future *edo_fs_remove_dir(edo_fs_fut *f, const char *path);

/** edo_fs_remove_dir_all() - remove the directory @path and everything
 *  under it, never following a symlink: a symlink named by @path is itself
 *  removed, also when spelt with trailing slashes ("link/" removes the
 *  link, not what it points to); symlinks found under @path are removed,
 *  not followed.  The components before the last are resolved as usual.
 *  -EINVAL, with nothing removed, if the last component is "." or ".." (or
 *  @path is the root); -ENOTDIR, with nothing removed, if @path names
 *  something that is neither a directory nor a symlink (a regular file, a
 *  FIFO, a device, a socket), as Rust's std::fs::remove_dir_all. */
edo_future *edo_fs_remove_dir_all(edo_fs_fut *f, const char *path);

/** edo_fs_rename() - rename(2), replacing @to if it exists. */
edo_future *edo_fs_rename(edo_fs_fut *f, const char *from, const char *to);

/** edo_fs_copy() - copy the contents and permission bits of file @from to
 *  @to (created or truncated).  n = bytes copied.  The permission bits are
 *  set only when @to is a regular file (as Rust's std::fs::copy): copying
 *  onto a FIFO or a device such as /dev/null writes the bytes and leaves
 *  its mode alone.  -EISDIR if @from is a directory, -EINVAL if it is not
 *  a regular file, and -EINVAL, with nothing written, if @to is @from
 *  itself (the same path, a hard link of it, a symlink to it). */
edo_future *edo_fs_copy(edo_fs_fut *f, const char *from, const char *to);

/** edo_fs_canonicalize() - the absolute path with every symlink, "." and
 *  ".." resolved (realpath(3)), in path. */
edo_future *edo_fs_canonicalize(edo_fs_fut *f, const char *path);

/** edo_fs_symlink() - make @link a symbolic link to @target. */
edo_future *edo_fs_symlink(edo_fs_fut *f, const char *target, const char *link);

/** edo_fs_hard_link() - make @link another name of the file @src. */
edo_future *edo_fs_hard_link(edo_fs_fut *f, const char *src, const char *link);

/** edo_fs_read_link() - the target of the symlink @path, in path.  -EINVAL if not a symlink. */
edo_future *edo_fs_read_link(edo_fs_fut *f, const char *path);

/** edo_fs_set_permissions() - chmod(2) @path to @mode (07777 bits). */
edo_future *edo_fs_set_permissions(edo_fs_fut *f, const char *path, mode_t mode);

/* ==== files ================================================================================== */

typedef struct edo_file edo_file;

/**
 * How to open a file, as Rust's OpenOptions.  Zero everything, then set:
 * at least one of read, write, append.  create and truncate need write
 * access (or append, for create); truncate and append exclude each other;
 * create_new (O_CREAT | O_EXCL) overrides create and truncate.  @mode is
 * the permission for a created file (0: 0666), less the umask.  @flags are
 * more open(2) flags (O_NOFOLLOW, O_NOATIME, O_CLOEXEC, ...), but not those
 * with fields of their own: O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL,
 * O_TRUNC and O_APPEND in @flags make the open fail with -EINVAL.  So does
 * O_DIRECT: a file's reads and writes go through its own buffer, at the
 * lengths and offsets the caller asks for, which meet none of O_DIRECT's
 * alignment rules (every one of them would fail with -EINVAL).  For direct
 * I/O use a descriptor of your own with edo_spawn_blocking().
 */
typedef struct edo_open_opts {
	bool read, write, append, truncate, create, create_new;
	mode_t mode;
	int flags;
} edo_open_opts;

/**
 * edo_file_open() - open @path (copied).  @o NULL: read only.  Outputs:
 * rc = 0 with file, or -ENOENT, -EEXIST (create_new), -EISDIR, -EACCES,
 * -EINVAL (options that contradict each other, or flags that @o may not
 * hold), -ENXIO (a FIFO opened for writing that has no reader: opening
 * never waits for a FIFO's other end), ...  Dropping it while pending
 * closes the file it would have returned.
 */
typedef struct edo_file_open_fut {
	edo_future base;
	int rc;
	edo_file *file;
	/* private */
	struct edo__fs_job *job_;
	struct edo_join *join_;
} edo_file_open_fut;
edo_future *edo_file_open(edo_file_open_fut *f, const char *path, const edo_open_opts *o);

/** edo_file_create() - open @path for writing, created or truncated (Tokio's File::create). */
edo_future *edo_file_create(edo_file_open_fut *f, const char *path);

/**
 * edo_file_from_fd() - a file over the open descriptor @fd, which it then
 * owns (closing it when the file is closed).  Its operations run on the
 * blocking pool of the runtime of the task that polls them.  Returns 0,
 * -EINVAL (@fd negative, @out NULL, or @fd opened with O_DIRECT: see
 * edo_open_opts), -EBADF (@fd is not an open descriptor) or -ENOMEM; on
 * failure @fd is left as it was (still the caller's, open if it was).
 */
int edo_file_from_fd(int fd, edo_file **out);

/** edo_file_stream() - the file as a stream (the same object; not a new reference). */
edo_stream *edo_file_stream(edo_file *f);

/**
 * edo_file_close() - release the file.  A write still in progress
 * finishes first on the pool (and only then is the descriptor closed);
 * its error, if any, is lost: flush first to see it.  Same as
 * edo_stream_drop(edo_file_stream(f)).  NULL: no-op.
 */
void edo_file_close(edo_file *f);

/**
 * edo_file_op_fut - an operation on a file that waits for the one in
 * progress: seek, sync, set_len, metadata.  Outputs: rc = 0 or a negative
 * errno (a failed earlier write's error comes first); pos (seek); st
 * (metadata).  The file must outlive it.  Cancel-safe in that dropping it
 * leaves the file usable, though the operation may still take place.
 */
typedef struct edo_file_op_fut {
	edo_future base;
	int rc;
	off_t pos;
	struct stat st;
	/* private */
	edo_file *file_;
	off_t arg_;
	int kind_, whence_;
	bool started_;
} edo_file_op_fut;

/** edo_file_seek() - lseek(2): move to @offset from @whence (SEEK_SET, SEEK_CUR,
 *  SEEK_END); pos = the new position.  -EINVAL for a negative result.  A
 *  seek that fails changes nothing: bytes read ahead are still read next. */
edo_future *edo_file_seek(edo_file_op_fut *f, edo_file *file, off_t offset, int whence);

/** edo_file_sync_all() - flush, then fsync(2): data and metadata on the device. */
edo_future *edo_file_sync_all(edo_file_op_fut *f, edo_file *file);

/** edo_file_sync_data() - flush, then fdatasync(2). */
edo_future *edo_file_sync_data(edo_file_op_fut *f, edo_file *file);

/** edo_file_set_len() - flush, then ftruncate(2) to @len bytes. */
edo_future *edo_file_set_len(edo_file_op_fut *f, edo_file *file, off_t len);

/** edo_file_metadata() - flush, then fstat(2) into st. */
edo_future *edo_file_metadata(edo_file_op_fut *f, edo_file *file);

/* ==== directories ============================================================================= */

typedef struct edo_read_dir edo_read_dir;

/** One directory entry ("." and ".." are never listed). */
typedef struct edo_dir_entry {
	char name[256];     /**< the file name */
	unsigned char type; /**< DT_REG, DT_DIR, DT_LNK, ... (lstat'd where the
				 file system does not say: never DT_UNKNOWN
				 unless the entry vanished meanwhile) */
	ino_t ino;
} edo_dir_entry;

/**
 * edo_read_dir_open() - start listing @path.  Outputs: rc = 0 with dir,
 * or -ENOENT, -ENOTDIR, -EACCES, ...  Entries are read 32 at a time by
 * pool jobs, in the order readdir(3) gives.
 */
typedef struct edo_read_dir_fut {
	edo_future base;
	int rc;
	edo_read_dir *dir;
	/* private */
	struct edo__fs_job *job_;
	struct edo_join *join_;
} edo_read_dir_fut;
edo_future *edo_read_dir_open(edo_read_dir_fut *f, const char *path);

/**
 * edo_read_dir_poll_next() - the next entry: READY with *@rc = 1 and *@out
 * filled, *@rc = 0 at the end, or a negative errno.  Cancel-safe.  One
 * task at a time.  A NULL @d or @out: READY with *@rc = -EINVAL and the
 * listing as it was (a NULL @rc: READY, nothing done).
 */
edo_poll edo_read_dir_poll_next(edo_read_dir *d, edo_cx *cx, edo_dir_entry *out, int *rc);

/** edo_read_dir_close() - stop listing and free @d (a read in progress
 *  finishes on the pool first).  NULL: no-op. */
void edo_read_dir_close(edo_read_dir *d);

/* ==== stdin, stdout, stderr ======================================================================= */

/**
 * edo_stdin() / edo_stdout() / edo_stderr() - a stream over this process's
 * descriptor 0, 1 or 2, with a file's buffering (a write completes into the
 * buffer; flush to know it is written).  Each call makes a new handle;
 * drop it with edo_stream_drop(), which does not close the descriptor.
 * Writes from several handles may interleave.  A read of stdin that waits
 * for input occupies a pool thread until input comes, and edo_runtime_free()
 * waits for running pool jobs: shut down with edo_runtime_shutdown_timeout()
 * where stdin may stay silent.  Returns 0, -EINVAL or -ENOMEM.
 */
int edo_stdin(edo_stream **out);
int edo_stdout(edo_stream **out);
int edo_stderr(edo_stream **out);

#ifdef __cplusplus
}
#endif
#endif /* EDO_FS_H */
