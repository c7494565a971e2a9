#define _GNU_SOURCE
/* Files: whole-file round trips, files as streams (buffered writes, read-
 * ahead, seek, set_len, sync, append), every error path with its errno,
 * directories (create_dir_all, a 10,000-entry listing, remove_dir_all),
 * symlinks and hard links, permissions, writes that survive a runtime
 * shutdown, abandoned operations, stdin and stdout. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "edo.h"
#include "fs/job.h"
#include "harness.h"

static edo_runtime *make_rt(edo_rt_flavor flavor)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, flavor);
	b.worker_threads = 2;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	return rt;
}

static char tmp_root[64];

static void make_tmp(void)
{
	snprintf(tmp_root, sizeof tmp_root, "/tmp/edo-fs-XXXXXX");
	CHECK(mkdtemp(tmp_root) != NULL);
}

static int open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 4096; fd++) {
		if (fcntl(fd, F_GETFD) < 0)
			continue;
		n++;
		if (getenv("EDO_FS_DEBUG")) {
			char l[64], t[256] = "";
			snprintf(l, sizeof l, "/proc/self/fd/%d", fd);
			ssize_t r = readlink(l, t, sizeof t - 1);
			fprintf(stderr, "fd %d -> %s\n", fd, r > 0 ? t : "?");
		}
	}
	return n;
}

/* The descriptors once the blocking pool's last thread has let go of the
 * runtime (it may drop the runtime's epoll and eventfd a moment after
 * edo_runtime_free() returns). */
static int settled_fds(int want)
{
	int n = open_fds();
	for (int i = 0; i < 400 && n != want; i++) {
		usleep(5000);
		n = open_fds();
	}
	return n;
}

/* Run a coroutine on both flavours, in a fresh temporary directory. */
#define RUN_BOTH(fn)                                                                               \
	do {                                                                                       \
		for (int fl_ = EDO_RT_CURRENT_THREAD; fl_ <= EDO_RT_MULTI_THREAD; fl_++) {         \
			make_tmp();                                                                \
			int fds_ = open_fds();                                                     \
			edo_runtime *rt_ = make_rt((edo_rt_flavor)fl_);                            \
			fn##_frame f_ = {EDO_FRAME_INIT(fn)};                                      \
			CHECK_EQ(edo_block_on(rt_, &f_.edo_base), 0);                              \
			CHECK_EQ(edo_runtime_free(rt_), 0);                                        \
			CHECK_EQ(settled_fds(fds_), fds_);                                         \
			CHECK_EQ(rmdir(tmp_root), 0); /* the test cleaned up after itself */       \
		}                                                                                  \
	} while (0)

/* Paths under the temporary directory, into self->p / self->q. */
#define P(...) (snprintf(self->p, sizeof self->p, "%s/" __VA_ARGS__), self->p)
#define Q(...) (snprintf(self->q, sizeof self->q, "%s/" __VA_ARGS__), self->q)

/* Await a path operation in self->op (its earlier outputs freed first). */
#define FS(call)                                                                                   \
	do {                                                                                       \
		edo_fs_fut_clear(&self->op);                                                       \
		EDO_AWAIT(call);                                                                   \
	} while (0)

/* ---- whole files, metadata, rename, copy, remove ------------------------------------------------ */

typedef struct whole_frame {
	EDO_FRAME;
	char p[PATH_MAX], q[PATH_MAX];
	edo_fs_fut op;
	char *big;
} whole_frame;

static void whole_cleanup(whole_frame *self)
{
	edo_fs_fut_clear(&self->op);
	free(self->big);
}

#define BIG (3 << 20)

EDO_ASYNC(whole, whole_frame, whole_cleanup)
{
	EDO_BEGIN();
	FS(edo_fs_write(&self->op, P("a.txt", tmp_root), "hello, edo\n", 11));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(self->op.n, 11u);
	FS(edo_fs_read(&self->op, P("a.txt", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(self->op.data.len, 11u);
	CHECK(memcmp(self->op.data.data, "hello, edo\n", 11) == 0);
	FS(edo_fs_metadata(&self->op, P("a.txt", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(self->op.st.st_size, 11);
	CHECK(S_ISREG(self->op.st.st_mode));
	/* An empty file, and a big one. */
	FS(edo_fs_write(&self->op, P("empty", tmp_root), NULL, 0));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_read(&self->op, P("empty", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(self->op.data.len, 0u);
	self->big = malloc(BIG);
	for (size_t i = 0; i < BIG; i++)
		self->big[i] = (char)(i * 31 + (i >> 9));
	FS(edo_fs_write(&self->op, P("big", tmp_root), self->big, BIG));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_read(&self->op, P("big", tmp_root)));
	CHECK_EQ(self->op.data.len, (size_t)BIG);
	CHECK(memcmp(self->op.data.data, self->big, BIG) == 0);
	/* try_exists. */
	FS(edo_fs_try_exists(&self->op, P("big", tmp_root)));
	CHECK_EQ(self->op.rc, 1);
	FS(edo_fs_try_exists(&self->op, P("nope", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	/* copy keeps the bytes and the permission bits. */
	CHECK_EQ(chmod(P("big", tmp_root), 0640), 0);
	FS(edo_fs_copy(&self->op, P("big", tmp_root), Q("big2", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(self->op.n, (uint64_t)BIG);
	FS(edo_fs_metadata(&self->op, Q("big2", tmp_root)));
	CHECK_EQ(self->op.st.st_mode & 07777, 0640u);
	FS(edo_fs_read(&self->op, Q("big2", tmp_root)));
	CHECK(memcmp(self->op.data.data, self->big, BIG) == 0);
	/* rename replaces. */
	FS(edo_fs_rename(&self->op, P("a.txt", tmp_root), Q("big2", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_read(&self->op, Q("big2", tmp_root)));
	CHECK_EQ(self->op.data.len, 11u);
	/* set_permissions. */
	FS(edo_fs_set_permissions(&self->op, Q("big2", tmp_root), 0600));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_metadata(&self->op, Q("big2", tmp_root)));
	CHECK_EQ(self->op.st.st_mode & 07777, 0600u);
	/* remove. */
	FS(edo_fs_remove_file(&self->op, P("big", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_remove_file(&self->op, P("big2", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_remove_file(&self->op, P("empty", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	EDO_END();
}

TEST(whole_file_round_trip)
{
	RUN_BOTH(whole);
}

/* Copying a file onto itself (the same path, a hard link of it, through a
 * symlink) is refused before anything is written: it used to truncate the
 * file to nothing and report success.  Onto another, longer file, the copy
 * still replaces the old contents. */
typedef struct copy_self_frame {
	EDO_FRAME;
	char p[PATH_MAX], q[PATH_MAX];
	edo_fs_fut op;
} copy_self_frame;

static void copy_self_cleanup(copy_self_frame *self)
{
	edo_fs_fut_clear(&self->op);
}

#define PRECIOUS "important data\n"

EDO_ASYNC(copy_self, copy_self_frame, copy_self_cleanup)
{
	EDO_BEGIN();
	FS(edo_fs_write(&self->op, P("f", tmp_root), PRECIOUS, 15));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_copy(&self->op, P("f", tmp_root), Q("f", tmp_root)));
	CHECK_EQ(self->op.rc, -EINVAL);
	CHECK_EQ(self->op.n, 0u);
	CHECK_EQ(link(P("f", tmp_root), Q("hard", tmp_root)), 0);
	FS(edo_fs_copy(&self->op, P("f", tmp_root), Q("hard", tmp_root)));
	CHECK_EQ(self->op.rc, -EINVAL);
	FS(edo_fs_copy(&self->op, P("hard", tmp_root), Q("f", tmp_root)));
	CHECK_EQ(self->op.rc, -EINVAL);
	CHECK_EQ(symlink(P("f", tmp_root), Q("soft", tmp_root)), 0);
	FS(edo_fs_copy(&self->op, P("f", tmp_root), Q("soft", tmp_root)));
	CHECK_EQ(self->op.rc, -EINVAL);
	FS(edo_fs_read(&self->op, P("f", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(self->op.data.len, 15u);
	CHECK(memcmp(self->op.data.data, PRECIOUS, 15) == 0);
	/* Onto a different, longer file: truncated, then copied. */
	FS(edo_fs_write(&self->op, P("long", tmp_root), "a file much longer than f\n", 26));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_copy(&self->op, P("f", tmp_root), Q("long", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(self->op.n, 15u);
	FS(edo_fs_read(&self->op, P("long", tmp_root)));
	CHECK_EQ(self->op.data.len, 15u);
	CHECK(memcmp(self->op.data.data, PRECIOUS, 15) == 0);
	CHECK_EQ(unlink(P("f", tmp_root)), 0);
	CHECK_EQ(unlink(P("hard", tmp_root)), 0);
	CHECK_EQ(unlink(P("soft", tmp_root)), 0);
	CHECK_EQ(unlink(P("long", tmp_root)), 0);
	EDO_END();
}

TEST(copy_onto_itself_is_refused)
{
	RUN_BOTH(copy_self);
}

/* Copying onto something that is not a regular file (a FIFO with a reader,
 * a null device) writes the bytes and leaves its mode alone: like Rust's
 * fs::copy, only a regular destination takes the source's permission bits.
 * (fchmod used to give them all the source's 0600: as root, /dev/null
 * too, whose mode this test puts back before it fails.) */
typedef struct copy_special_frame {
	EDO_FRAME;
	char p[PATH_MAX], q[PATH_MAX];
	edo_fs_fut op;
	int rfd;
	char buf[16];
	mode_t before;
} copy_special_frame;

static void copy_special_cleanup(copy_special_frame *self)
{
	edo_fs_fut_clear(&self->op);
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	CHECK_EQ(stat(path, &st), 0);
	return st.st_mode;
}

EDO_ASYNC(copy_special, copy_special_frame, copy_special_cleanup)
{
	EDO_BEGIN();
	FS(edo_fs_write(&self->op, P("src", tmp_root), "data\n", 5));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(chmod(P("src", tmp_root), 0600), 0);
	/* A FIFO, its reader already there (so the open does not fail). */
	CHECK_EQ(mkfifo(Q("fifo", tmp_root), 0644), 0);
	CHECK_EQ(chmod(Q("fifo", tmp_root), 0644), 0); /* whatever the umask */
	self->rfd = open(Q("fifo", tmp_root), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK_GE(self->rfd, 0);
	FS(edo_fs_copy(&self->op, P("src", tmp_root), Q("fifo", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(self->op.n, 5u);
	CHECK_EQ(read(self->rfd, self->buf, sizeof self->buf), 5);
	CHECK(memcmp(self->buf, "data\n", 5) == 0);
	CHECK_EQ(close(self->rfd), 0);
	CHECK_EQ(mode_of(Q("fifo", tmp_root)), (mode_t)(S_IFIFO | 0644));
	CHECK_EQ(unlink(Q("fifo", tmp_root)), 0);
	/* A null device of our own, where we may make one. */
	if (mknod(Q("null", tmp_root), S_IFCHR | 0644, makedev(1, 3)) == 0) {
		CHECK_EQ(chmod(Q("null", tmp_root), 0644), 0);
		FS(edo_fs_copy(&self->op, P("src", tmp_root), Q("null", tmp_root)));
		CHECK_EQ(self->op.rc, 0);
		CHECK_EQ(self->op.n, 5u);
		CHECK_EQ(mode_of(Q("null", tmp_root)), (mode_t)(S_IFCHR | 0644));
		CHECK_EQ(unlink(Q("null", tmp_root)), 0);
	}
	/* The system's /dev/null. */
	self->before = mode_of("/dev/null");
	FS(edo_fs_copy(&self->op, P("src", tmp_root), "/dev/null"));
	if (mode_of("/dev/null") != self->before)
		CHECK_EQ(chmod("/dev/null", self->before & 07777), 0);
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(self->op.n, 5u);
	CHECK_EQ(mode_of("/dev/null"), self->before);
	CHECK_EQ(unlink(P("src", tmp_root)), 0);
	EDO_END();
}

TEST(copy_leaves_a_special_destination_s_mode_alone)
{
	RUN_BOTH(copy_special);
}

/* A read that fails hands back no buffer (it used to return the one it had
 * allocated, which a caller that frees only after success leaked). */
typedef struct read_fail_frame {
	EDO_FRAME;
	char p[PATH_MAX];
	edo_fs_fut op;
} read_fail_frame;

static void read_fail_cleanup(read_fail_frame *self)
{
	edo_fs_fut_clear(&self->op);
}

EDO_ASYNC(read_fail, read_fail_frame, read_fail_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(mkdir(P("dir", tmp_root), 0755), 0);
	FS(edo_fs_read(&self->op, P("dir", tmp_root)));
	CHECK_EQ(self->op.rc, -EISDIR);
	CHECK(self->op.data.data == NULL);
	CHECK_EQ(self->op.data.len, 0u);
	CHECK_EQ(self->op.data.cap, 0u);
	FS(edo_fs_read(&self->op, P("missing", tmp_root)));
	CHECK_EQ(self->op.rc, -ENOENT);
	CHECK(self->op.data.data == NULL);
	CHECK_EQ(rmdir(P("dir", tmp_root)), 0);
	EDO_END();
}

TEST(fs_read_failure_returns_no_buffer)
{
	RUN_BOTH(read_fail);
}

/* ---- files as streams -------------------------------------------------------------------------------- */

typedef struct stream_frame {
	EDO_FRAME;
	char p[PATH_MAX], q[PATH_MAX];
	edo_fs_fut op;
	edo_file_open_fut of;
	edo_file *f;
	edo_file_op_fut fo;
	edo_write_all_fut wa;
	edo_read_to_end_fut rte;
	edo_read_exact_fut rx;
	edo_buf buf;
	char *big;
	char small[64];
	ssize_t n;
	int rc;
} stream_frame;

static void stream_cleanup(stream_frame *self)
{
	edo_fs_fut_clear(&self->op);
	edo_file_close(self->f);
	edo_buf_free(&self->buf);
	free(self->big);
}

#define STREAM_BIG (5 << 20) /* more than two 2 MiB buffers */

EDO_ASYNC(streams, stream_frame, stream_cleanup)
{
	EDO_BEGIN();
	self->big = malloc(STREAM_BIG);
	for (size_t i = 0; i < STREAM_BIG; i++)
		self->big[i] = (char)(i * 13 + (i >> 12));
	/* Create, write (in 2 MiB pieces), flush. */
	EDO_AWAIT(edo_file_create(&self->of, P("s", tmp_root)));
	CHECK_EQ(self->of.rc, 0);
	self->f = self->of.file;
	EDO_AWAIT(edo_write_all(&self->wa, edo_file_stream(self->f), self->big, STREAM_BIG));
	CHECK_EQ(self->wa.rc, 0);
	EDO_AWAIT_POLL(edo_stream_poll_flush(edo_file_stream(self->f), cx, &self->rc));
	CHECK_EQ(self->rc, 0);
	/* Reading a write-only file fails. */
	EDO_AWAIT_POLL(
		edo_stream_poll_read(edo_file_stream(self->f), cx, self->small, 8, &self->n));
	CHECK_EQ(self->n, -EBADF);
	edo_file_close(self->f);
	self->f = NULL;
	/* Read it back whole. */
	EDO_AWAIT(edo_file_open(&self->of, P("s", tmp_root), NULL));
	CHECK_EQ(self->of.rc, 0);
	self->f = self->of.file;
	EDO_AWAIT(edo_read_to_end(&self->rte, edo_file_stream(self->f), &self->buf));
	CHECK_EQ(self->rte.rc, 0);
	CHECK_EQ(self->buf.len, (size_t)STREAM_BIG);
	CHECK(memcmp(self->buf.data, self->big, STREAM_BIG) == 0);
	/* Seek, and read exactly. */
	EDO_AWAIT(edo_file_seek(&self->fo, self->f, 1000, SEEK_SET));
	CHECK_EQ(self->fo.rc, 0);
	CHECK_EQ(self->fo.pos, 1000);
	EDO_AWAIT(edo_read_exact(&self->rx, edo_file_stream(self->f), self->small, 64));
	CHECK_EQ(self->rx.rc, 0);
	CHECK(memcmp(self->small, self->big + 1000, 64) == 0);
	EDO_AWAIT(edo_file_seek(&self->fo, self->f, -10, SEEK_END));
	CHECK_EQ(self->fo.pos, STREAM_BIG - 10);
	EDO_AWAIT(edo_read_exact(&self->rx, edo_file_stream(self->f), self->small, 20));
	CHECK_EQ(self->rx.rc, EDO_EEOF);
	CHECK_EQ(self->rx.n, 10u);
	EDO_AWAIT(edo_file_seek(&self->fo, self->f, -1, SEEK_SET));
	CHECK_EQ(self->fo.rc, -EINVAL);
	EDO_AWAIT(edo_file_seek(&self->fo, self->f, 0, 42));
	CHECK_EQ(self->fo.rc, -EINVAL);
	/* Writing a read-only file: the write is buffered, the flush reports it. */
	EDO_AWAIT_POLL(edo_stream_poll_write(edo_file_stream(self->f), cx, "x", 1, &self->n));
	CHECK_EQ(self->n, 1);
	EDO_AWAIT_POLL(edo_stream_poll_flush(edo_file_stream(self->f), cx, &self->rc));
	CHECK_EQ(self->rc, -EBADF);
	EDO_AWAIT_POLL(edo_stream_poll_flush(edo_file_stream(self->f), cx, &self->rc));
	CHECK_EQ(self->rc, 0); /* reported once */
	edo_file_close(self->f);
	self->f = NULL;

	/* Read, then write: bytes read ahead are given back first. */
	EDO_AWAIT(edo_file_open(&self->of, P("s", tmp_root),
				&(edo_open_opts){.read = true, .write = true}));
	CHECK_EQ(self->of.rc, 0);
	self->f = self->of.file;
	EDO_AWAIT(edo_read_exact(&self->rx, edo_file_stream(self->f), self->small, 10));
	CHECK_EQ(self->rx.rc, 0);
	EDO_AWAIT(edo_write_all(&self->wa, edo_file_stream(self->f), "WRITTEN", 7));
	CHECK_EQ(self->wa.rc, 0);
	/* set_len flushes first. */
	EDO_AWAIT(edo_file_set_len(&self->fo, self->f, 100));
	CHECK_EQ(self->fo.rc, 0);
	EDO_AWAIT(edo_file_metadata(&self->fo, self->f));
	CHECK_EQ(self->fo.rc, 0);
	CHECK_EQ(self->fo.st.st_size, 100);
	EDO_AWAIT(edo_file_sync_all(&self->fo, self->f));
	CHECK_EQ(self->fo.rc, 0);
	EDO_AWAIT(edo_file_sync_data(&self->fo, self->f));
	CHECK_EQ(self->fo.rc, 0);
	EDO_AWAIT(edo_file_seek(&self->fo, self->f, 0, SEEK_CUR));
	CHECK_EQ(self->fo.pos, 17);
	edo_file_close(self->f);
	self->f = NULL;
	FS(edo_fs_read(&self->op, P("s", tmp_root)));
	CHECK_EQ(self->op.data.len, 100u);
	CHECK(memcmp(self->op.data.data, self->big, 10) == 0);
	CHECK(memcmp(self->op.data.data + 10, "WRITTEN", 7) == 0);
	CHECK(memcmp(self->op.data.data + 17, self->big + 17, 83) == 0);

	/* Append. */
	EDO_AWAIT(edo_file_open(&self->of, P("s", tmp_root), &(edo_open_opts){.append = true}));
	CHECK_EQ(self->of.rc, 0);
	self->f = self->of.file;
	EDO_AWAIT(edo_write_all(&self->wa, edo_file_stream(self->f), "tail", 4));
	EDO_AWAIT_POLL(edo_stream_poll_shutdown(edo_file_stream(self->f), cx, &self->rc));
	CHECK_EQ(self->rc, 0);
	edo_file_close(self->f);
	self->f = NULL;
	FS(edo_fs_metadata(&self->op, P("s", tmp_root)));
	CHECK_EQ(self->op.st.st_size, 104);

	/* create_new. */
	EDO_AWAIT(edo_file_open(&self->of, P("s", tmp_root),
				&(edo_open_opts){.write = true, .create_new = true}));
	CHECK_EQ(self->of.rc, -EEXIST);
	EDO_AWAIT(edo_file_open(&self->of, P("new", tmp_root),
				&(edo_open_opts){.write = true, .create_new = true, .mode = 0604}));
	CHECK_EQ(self->of.rc, 0);
	edo_file_close(self->of.file);
	FS(edo_fs_metadata(&self->op, P("new", tmp_root)));
	CHECK_EQ(self->op.st.st_mode & 0777 & ~0022u, 0604u & ~0022u);
	FS(edo_fs_remove_file(&self->op, P("new", tmp_root)));
	FS(edo_fs_remove_file(&self->op, P("s", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	EDO_END();
}

TEST(file_streams)
{
	RUN_BOTH(streams); /* reads served inline where the page cache has them */
	edo__fs_force_pool(true);
	RUN_BOTH(streams); /* every read through the blocking pool */
	edo__fs_force_pool(false);
}

/* A file over a pipe: a read with nothing to read falls back from
 * RWF_NOWAIT to the pool, whose blocking read waits for the writer. */
typedef struct piped_frame {
	EDO_FRAME;
	int wfd;
	edo_file *f;
	char buf[64];
	ssize_t n;
	int i;
} piped_frame;

static void piped_cleanup(piped_frame *self)
{
	edo_file_close(self->f);
}

static void *late_writer(void *arg)
{
	int fd = *(int *)arg;
	for (int i = 0; i < 20; i++) {
		usleep(2000);
		CHECK_EQ(write(fd, "ping", 4), 4);
	}
	close(fd);
	return NULL;
}

EDO_ASYNC(piped, piped_frame, piped_cleanup)
{
	EDO_BEGIN();
	{
		int p[2];
		CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
		CHECK_EQ(edo_file_from_fd(p[0], &self->f), 0);
		self->wfd = p[1];
		pthread_t th;
		CHECK_EQ(pthread_create(&th, NULL, late_writer, &self->wfd), 0);
		pthread_detach(th);
	}
	for (self->i = 0;; self->i++) {
		EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf,
						    sizeof self->buf, &self->n));
		CHECK_GE(self->n, 0);
		if (self->n == 0)
			break;
		CHECK_EQ(self->n % 4, 0);
	}
	CHECK_GT(self->i, 0);
	EDO_END();
}

TEST(file_over_a_pipe)
{
	for (int fl = EDO_RT_CURRENT_THREAD; fl <= EDO_RT_MULTI_THREAD; fl++) {
		edo_runtime *rt = make_rt((edo_rt_flavor)fl);
		piped_frame f = {EDO_FRAME_INIT(piped)};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
	}
}

/* A seek that fails changes nothing: the bytes read ahead are still served
 * next (they used to be dropped before the seek ran, so the next read
 * skipped them), and a SEEK_CUR offset that would overflow once the
 * read-ahead is taken into account is refused.  A seek that succeeds, even
 * one whose future was dropped while pending, drops the read-ahead. */
typedef struct seek_fail_frame {
	EDO_FRAME;
	char p[PATH_MAX];
	edo_fs_fut op;
	edo_file_op_fut fo;
	edo_file_open_fut of;
	edo_file *f;
	char buf[128];
	ssize_t n;
	int tries, round;
} seek_fail_frame;

static void seek_fail_cleanup(seek_fail_frame *self)
{
	edo_fs_fut_clear(&self->op);
	edo_file_close(self->f);
}

/* 100 bytes: what a pool read brings in one go. */
#define SEEK_TEST_BYTES                                                                            \
	"0123456789abcdefghijKLMNOPQRST"                                                           \
	"......................................................................"

EDO_ASYNC(seek_fail, seek_fail_frame, seek_fail_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(sizeof SEEK_TEST_BYTES - 1, 100u);
	FS(edo_fs_write(&self->op, P("f", tmp_root), SEEK_TEST_BYTES, 100));
	CHECK_EQ(self->op.rc, 0);
	EDO_AWAIT(edo_file_open(&self->of, P("f", tmp_root), NULL));
	CHECK_EQ(self->of.rc, 0);
	self->f = self->of.file;
	for (self->round = 0; self->round < 2; self->round++) {
		/* Read-ahead: a 100-byte read goes to the pool (every read does
		 * here); a 10-byte read then takes the first 10 of its bytes
		 * and leaves 90 in the buffer.  (Should the pool finish before
		 * the first poll looks, rewind and try again.) */
		for (self->tries = 0;; self->tries++) {
			CHECK_LT(self->tries, 1000);
			EDO_AWAIT(edo_file_seek(&self->fo, self->f, 0, SEEK_SET));
			CHECK_EQ(self->fo.rc, 0);
			if (edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf, 100,
						 &self->n) == EDO_PENDING)
				break;
		}
		EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf, 10,
						    &self->n));
		CHECK_EQ(self->n, 10);
		CHECK(memcmp(self->buf, "0123456789", 10) == 0);
		if (self->round == 1)
			break;
		/* Seeks that fail. */
		EDO_AWAIT(edo_file_seek(&self->fo, self->f, -1000, SEEK_CUR));
		CHECK_EQ(self->fo.rc, -EINVAL);
		EDO_AWAIT(edo_file_seek(&self->fo, self->f, (off_t)INT64_MIN + 5, SEEK_CUR));
		CHECK_EQ(self->fo.rc, -EINVAL);
		EDO_AWAIT(edo_file_seek(&self->fo, self->f, (off_t)INT64_MIN, SEEK_CUR));
		CHECK_EQ(self->fo.rc, -EINVAL);
		EDO_AWAIT(edo_file_seek(&self->fo, self->f, -1, SEEK_SET));
		CHECK_EQ(self->fo.rc, -EINVAL);
		EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf, 10,
						    &self->n));
		CHECK_EQ(self->n, 10);
		CHECK(memcmp(self->buf, "abcdefghij", 10) == 0);
		/* One that succeeds is relative to what was read. */
		EDO_AWAIT(edo_file_seek(&self->fo, self->f, -5, SEEK_CUR));
		CHECK_EQ(self->fo.rc, 0);
		CHECK_EQ(self->fo.pos, 15);
		EDO_AWAIT_POLL(
			edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf, 5, &self->n));
		CHECK_EQ(self->n, 5);
		CHECK(memcmp(self->buf, "fghij", 5) == 0);
	}
	/* A seek dropped after its first poll may still take place; the next
	 * read is then from the new position, not from the read-ahead. */
	edo_file_seek(&self->fo, self->f, 20, SEEK_SET);
	(void)edo_future_poll(&self->fo.base, cx);
	edo_future_drop(&self->fo.base);
	EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf, 10, &self->n));
	CHECK_EQ(self->n, 10);
	CHECK(memcmp(self->buf, "KLMNOPQRST", 10) == 0);
	edo_file_close(self->f);
	self->f = NULL;
	CHECK_EQ(unlink(P("f", tmp_root)), 0);
	EDO_END();
}

TEST(failed_seek_keeps_the_read_ahead)
{
	edo__fs_force_pool(true);
	RUN_BOTH(seek_fail);
	edo__fs_force_pool(false);
}

/* A NULL buffer with a nonzero length is bad input: -EINVAL at once, with
 * nothing read, written or waited for (it used to be memcpy'd into by a
 * read served from the file's buffer, and from by a write).  A NULL result
 * pointer has nowhere to report: READY, with nothing done. */
typedef struct nullbuf_frame {
	EDO_FRAME;
	char p[PATH_MAX];
	edo_fs_fut op;
	edo_file_op_fut fo;
	edo_file_open_fut of;
	edo_file *f;
	struct iovec iov;
	char buf[128];
	ssize_t n;
	int rc, tries;
} nullbuf_frame;

static void nullbuf_cleanup(nullbuf_frame *self)
{
	edo_fs_fut_clear(&self->op);
	edo_file_close(self->f);
}

/* Whether every read goes to the pool (which is what leaves bytes read ahead). */
static bool nullbuf_pool;

EDO_ASYNC(nullbuf, nullbuf_frame, nullbuf_cleanup)
{
	EDO_BEGIN();
	FS(edo_fs_write(&self->op, P("f", tmp_root), SEEK_TEST_BYTES, 100));
	CHECK_EQ(self->op.rc, 0);
	EDO_AWAIT(edo_file_open(&self->of, P("f", tmp_root),
				&(edo_open_opts){.read = true, .write = true}));
	CHECK_EQ(self->of.rc, 0);
	self->f = self->of.file;
	/* Nothing buffered. */
	EDO_AWAIT_POLL(edo_stream_poll_write(edo_file_stream(self->f), cx, NULL, 10, &self->n));
	CHECK_EQ(self->n, -EINVAL);
	self->iov = (struct iovec){NULL, 5};
	EDO_AWAIT_POLL(edo_stream_poll_write_vectored(edo_file_stream(self->f), cx, &self->iov, 1,
						      &self->n));
	CHECK_EQ(self->n, -EINVAL);
	EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, NULL, 10, &self->n));
	CHECK_EQ(self->n, -EINVAL);
	CHECK_EQ(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf, 10, NULL),
		 EDO_READY);
	CHECK_EQ(edo_stream_poll_write(edo_file_stream(self->f), cx, "x", 1, NULL), EDO_READY);
	CHECK_EQ(edo_stream_poll_flush(edo_file_stream(self->f), cx, NULL), EDO_READY);
	CHECK_EQ(edo_stream_poll_shutdown(edo_file_stream(self->f), cx, NULL), EDO_READY);
	EDO_AWAIT(edo_file_seek(&self->fo, self->f, 0, SEEK_CUR));
	CHECK_EQ(self->fo.rc, 0);
	CHECK_EQ(self->fo.pos, 0); /* nothing was read or written */
	if (nullbuf_pool) {
		/* 90 bytes read ahead (as in seek_fail). */
		for (self->tries = 0;; self->tries++) {
			CHECK_LT(self->tries, 1000);
			EDO_AWAIT(edo_file_seek(&self->fo, self->f, 0, SEEK_SET));
			CHECK_EQ(self->fo.rc, 0);
			if (edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf, 100,
						 &self->n) == EDO_PENDING)
				break;
		}
		EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf, 10,
						    &self->n));
		CHECK_EQ(self->n, 10);
		EDO_AWAIT_POLL(
			edo_stream_poll_read(edo_file_stream(self->f), cx, NULL, 10, &self->n));
		CHECK_EQ(self->n, -EINVAL);
		EDO_AWAIT_POLL(
			edo_stream_poll_write(edo_file_stream(self->f), cx, NULL, 10, &self->n));
		CHECK_EQ(self->n, -EINVAL);
		EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf, 10,
						    &self->n));
		CHECK_EQ(self->n, 10);
		CHECK(memcmp(self->buf, "abcdefghij", 10) == 0);
	}
	/* A write in flight, then a NULL one, which neither waits for it nor
	 * takes its place. */
	EDO_AWAIT_POLL(edo_stream_poll_write(edo_file_stream(self->f), cx, "WXYZ", 4, &self->n));
	CHECK_EQ(self->n, 4);
	EDO_AWAIT_POLL(edo_stream_poll_write(edo_file_stream(self->f), cx, NULL, 4, &self->n));
	CHECK_EQ(self->n, -EINVAL);
	EDO_AWAIT_POLL(edo_stream_poll_flush(edo_file_stream(self->f), cx, &self->rc));
	CHECK_EQ(self->rc, 0);
	edo_file_close(self->f);
	self->f = NULL;
	FS(edo_fs_read(&self->op, P("f", tmp_root)));
	CHECK_EQ(self->op.data.len, 100u);
	self->n = nullbuf_pool ? 20 : 0; /* where the write went */
	CHECK(memcmp(self->op.data.data + self->n, "WXYZ", 4) == 0);
	CHECK_EQ(memcmp(self->op.data.data, SEEK_TEST_BYTES, (size_t)self->n), 0);
	CHECK_EQ(memcmp(self->op.data.data + self->n + 4, &SEEK_TEST_BYTES[self->n + 4],
			(size_t)(96 - self->n)),
		 0);
	CHECK_EQ(unlink(P("f", tmp_root)), 0);
	EDO_END();
}

TEST(file_null_buffer_is_einval)
{
	RUN_BOTH(nullbuf); /* reads served inline where the page cache has them */
	nullbuf_pool = true;
	edo__fs_force_pool(true);
	RUN_BOTH(nullbuf); /* every read through the pool: bytes read ahead */
	edo__fs_force_pool(false);
}

/* A job that cannot start (here: polled outside any runtime; at shutdown,
 * or out of memory, alike) changes nothing: a write or set_len that fails
 * so keeps the bytes read ahead, to be read next.  They used to be dropped
 * without the descriptor being moved back, so the next read skipped them. */
typedef struct nostart_frame {
	EDO_FRAME;
	char p[PATH_MAX];
	edo_fs_fut op;
	edo_file_op_fut fo;
	edo_file_open_fut of;
	edo_file *f;
	char buf[128];
	ssize_t n;
	int tries;
	bool check;
} nostart_frame;

static void nostart_cleanup(nostart_frame *self)
{
	edo_fs_fut_clear(&self->op);
	if (self->check)
		edo_file_close(self->f);
}

EDO_ASYNC(nostart, nostart_frame, nostart_cleanup)
{
	EDO_BEGIN();
	if (self->check) {
		/* Second run: the read-ahead is next, and the file is as it was. */
		EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf, 10,
						    &self->n));
		CHECK_EQ(self->n, 10);
		CHECK(memcmp(self->buf, "abcdefghij", 10) == 0);
		EDO_AWAIT(edo_file_seek(&self->fo, self->f, 0, SEEK_CUR));
		CHECK_EQ(self->fo.rc, 0);
		CHECK_EQ(self->fo.pos, 20);
		edo_file_close(self->f);
		self->f = NULL;
		FS(edo_fs_read(&self->op, P("f", tmp_root)));
		CHECK_EQ(self->op.data.len, 100u);
		CHECK(memcmp(self->op.data.data, SEEK_TEST_BYTES, 100) == 0);
		CHECK_EQ(unlink(P("f", tmp_root)), 0);
		EDO_RETURN();
	}
	/* First run: 90 bytes read ahead (as in seek_fail). */
	FS(edo_fs_write(&self->op, P("f", tmp_root), SEEK_TEST_BYTES, 100));
	CHECK_EQ(self->op.rc, 0);
	EDO_AWAIT(edo_file_open(&self->of, P("f", tmp_root),
				&(edo_open_opts){.read = true, .write = true}));
	CHECK_EQ(self->of.rc, 0);
	self->f = self->of.file;
	for (self->tries = 0;; self->tries++) {
		CHECK_LT(self->tries, 1000);
		EDO_AWAIT(edo_file_seek(&self->fo, self->f, 0, SEEK_SET));
		CHECK_EQ(self->fo.rc, 0);
		if (edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf, 100, &self->n) ==
		    EDO_PENDING)
			break;
	}
	EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf, 10, &self->n));
	CHECK_EQ(self->n, 10);
	CHECK(memcmp(self->buf, "0123456789", 10) == 0);
	EDO_END();
}

TEST(a_job_that_cannot_start_keeps_the_read_ahead)
{
	edo__fs_force_pool(true);
	for (int fl = EDO_RT_CURRENT_THREAD; fl <= EDO_RT_MULTI_THREAD; fl++) {
		make_tmp();
		int fds = open_fds();
		edo_runtime *rt = make_rt((edo_rt_flavor)fl);
		nostart_frame f = {EDO_FRAME_INIT(nostart)};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		/* Outside the runtime no job can start. */
		edo_cx cx = {edo_noop_waker()};
		ssize_t n = 0;
		CHECK_EQ(edo_stream_poll_write(edo_file_stream(f.f), &cx, "WXYZ", 4, &n),
			 EDO_READY);
		CHECK_EQ(n, EDO_ENORUNTIME);
		edo_file_op_fut fo;
		CHECK_EQ(edo_future_poll(edo_file_set_len(&fo, f.f, 50), &cx), EDO_READY);
		CHECK_EQ(fo.rc, EDO_ENORUNTIME);
		CHECK_EQ(edo_future_poll(edo_file_seek(&fo, f.f, 0, SEEK_SET), &cx), EDO_READY);
		CHECK_EQ(fo.rc, EDO_ENORUNTIME);
		CHECK_EQ(edo_future_poll(edo_file_sync_all(&fo, f.f), &cx), EDO_READY);
		CHECK_EQ(fo.rc, EDO_ENORUNTIME);
		nostart_frame g = {EDO_FRAME_INIT(nostart), .f = f.f, .check = true};
		CHECK_EQ(edo_block_on(rt, &g.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
		CHECK_EQ(settled_fds(fds), fds);
		CHECK_EQ(rmdir(tmp_root), 0);
	}
	edo__fs_force_pool(false);
}

/* edo_file_from_fd() takes only an open descriptor: a closed one used to
 * be accepted, and closed again (by then perhaps someone else's) when the
 * file was.  On failure the descriptor stays open, the caller's. */
TEST(file_from_fd_rejects_a_descriptor_that_is_not_open)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK_GE(fd, 0);
	CHECK_EQ(close(fd), 0);
	edo_file *f = NULL;
	CHECK_EQ(edo_file_from_fd(fd, &f), -EBADF);
	CHECK(f == NULL);
	CHECK_LT(fcntl(4000, F_GETFD), 0);
	CHECK_EQ(edo_file_from_fd(4000, &f), -EBADF);
	CHECK_EQ(edo_file_from_fd(-1, &f), -EINVAL);
	CHECK(f == NULL);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK_GE(fd, 0);
	CHECK_EQ(edo_file_from_fd(fd, NULL), -EINVAL);
	CHECK_GE(fcntl(fd, F_GETFD), 0); /* still open */
	CHECK_EQ(edo_file_from_fd(fd, &f), 0);
	edo_file_close(f);
	CHECK_LT(fcntl(fd, F_GETFD), 0); /* the file owned it */
}

/* ---- error paths ------------------------------------------------------------------------------------- */

typedef struct errs_frame {
	EDO_FRAME;
	char p[PATH_MAX], q[PATH_MAX];
	char longname[PATH_MAX + 16];
	char name[301];
	edo_fs_fut op;
	edo_file_open_fut of;
	edo_read_dir_fut rd;
} errs_frame;

static void errs_cleanup(errs_frame *self)
{
	edo_fs_fut_clear(&self->op);
}

#define EXPECT(call, err)                                                                          \
	do {                                                                                       \
		FS(call);                                                                          \
		CHECK_EQ(self->op.rc, err);                                                        \
	} while (0)

EDO_ASYNC(errs, errs_frame, errs_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(mkdir(P("dir", tmp_root), 0755), 0);
	CHECK_EQ(close(open(P("dir/f", tmp_root), O_CREAT | O_WRONLY, 0644)), 0);
	CHECK_EQ(close(open(P("file", tmp_root), O_CREAT | O_WRONLY, 0644)), 0);

	EXPECT(edo_fs_read(&self->op, P("missing", tmp_root)), -ENOENT);
	EXPECT(edo_fs_read(&self->op, P("dir", tmp_root)), -EISDIR);
	EXPECT(edo_fs_read(&self->op, P("file/x", tmp_root)), -ENOTDIR);
	EXPECT(edo_fs_write(&self->op, P("missing/x", tmp_root), "a", 1), -ENOENT);
	EXPECT(edo_fs_write(&self->op, P("dir", tmp_root), "a", 1), -EISDIR);
	EXPECT(edo_fs_metadata(&self->op, P("missing", tmp_root)), -ENOENT);
	EXPECT(edo_fs_symlink_metadata(&self->op, P("missing", tmp_root)), -ENOENT);
	EXPECT(edo_fs_try_exists(&self->op, P("file/x", tmp_root)), -ENOTDIR);
	EXPECT(edo_fs_create_dir(&self->op, P("dir", tmp_root)), -EEXIST);
	EXPECT(edo_fs_create_dir(&self->op, P("missing/x", tmp_root)), -ENOENT);
	EXPECT(edo_fs_create_dir_all(&self->op, P("file", tmp_root)), -EEXIST);
	EXPECT(edo_fs_create_dir_all(&self->op, P("file/a/b", tmp_root)), -ENOTDIR);
	EXPECT(edo_fs_create_dir_all(&self->op, ""), -ENOENT);
	EXPECT(edo_fs_remove_file(&self->op, P("missing", tmp_root)), -ENOENT);
	EXPECT(edo_fs_remove_file(&self->op, P("dir", tmp_root)), -EISDIR);
	EXPECT(edo_fs_remove_dir(&self->op, P("dir", tmp_root)), -ENOTEMPTY);
	EXPECT(edo_fs_remove_dir(&self->op, P("file", tmp_root)), -ENOTDIR);
	EXPECT(edo_fs_remove_dir(&self->op, P("missing", tmp_root)), -ENOENT);
	EXPECT(edo_fs_remove_dir_all(&self->op, P("missing", tmp_root)), -ENOENT);
	EXPECT(edo_fs_rename(&self->op, P("missing", tmp_root), Q("x", tmp_root)), -ENOENT);
	EXPECT(edo_fs_rename(&self->op, P("file", tmp_root), Q("missing/x", tmp_root)), -ENOENT);
	EXPECT(edo_fs_rename(&self->op, P("dir", tmp_root), Q("file", tmp_root)), -ENOTDIR);
	EXPECT(edo_fs_copy(&self->op, P("missing", tmp_root), Q("x", tmp_root)), -ENOENT);
	EXPECT(edo_fs_copy(&self->op, P("dir", tmp_root), Q("x", tmp_root)), -EISDIR);
	EXPECT(edo_fs_copy(&self->op, P("file", tmp_root), Q("missing/x", tmp_root)), -ENOENT);
	EXPECT(edo_fs_canonicalize(&self->op, P("missing", tmp_root)), -ENOENT);
	EXPECT(edo_fs_symlink(&self->op, "anything", Q("file", tmp_root)), -EEXIST);
	EXPECT(edo_fs_hard_link(&self->op, P("missing", tmp_root), Q("x", tmp_root)), -ENOENT);
	EXPECT(edo_fs_hard_link(&self->op, P("file", tmp_root), Q("dir/f", tmp_root)), -EEXIST);
	EXPECT(edo_fs_hard_link(&self->op, P("dir", tmp_root), Q("x", tmp_root)), -EPERM);
	EXPECT(edo_fs_read_link(&self->op, P("file", tmp_root)), -EINVAL);
	EXPECT(edo_fs_read_link(&self->op, P("missing", tmp_root)), -ENOENT);
	EXPECT(edo_fs_set_permissions(&self->op, P("missing", tmp_root), 0600), -ENOENT);
	/* A name longer than NAME_MAX; a path longer than PATH_MAX. */
	memset(self->name, 'n', 300);
	self->name[300] = 0;
	EXPECT(edo_fs_metadata(&self->op, P("%s", tmp_root, self->name)), -ENAMETOOLONG);
	memset(self->longname, 'a', sizeof self->longname - 1);
	self->longname[sizeof self->longname - 1] = 0;
	EXPECT(edo_fs_metadata(&self->op, self->longname), -ENAMETOOLONG);
	/* Bad input, reported without a system call. */
	EXPECT(edo_fs_read(&self->op, NULL), -EINVAL);
	EXPECT(edo_fs_rename(&self->op, P("file", tmp_root), NULL), -EINVAL);
	EXPECT(edo_fs_write(&self->op, P("file", tmp_root), NULL, 5), -EINVAL);
	/* Opening. */
	EDO_AWAIT(edo_file_open(&self->of, P("missing", tmp_root), NULL));
	CHECK_EQ(self->of.rc, -ENOENT);
	EDO_AWAIT(edo_file_open(&self->of, P("dir", tmp_root), &(edo_open_opts){.write = true}));
	CHECK_EQ(self->of.rc, -EISDIR);
	EDO_AWAIT(edo_file_open(&self->of, P("file", tmp_root), &(edo_open_opts){0}));
	CHECK_EQ(self->of.rc, -EINVAL); /* no access mode */
	EDO_AWAIT(edo_file_open(&self->of, P("file", tmp_root),
				&(edo_open_opts){.read = true, .truncate = true}));
	CHECK_EQ(self->of.rc, -EINVAL); /* truncate without write */
	EDO_AWAIT(edo_file_open(&self->of, P("file", tmp_root),
				&(edo_open_opts){.append = true, .truncate = true}));
	CHECK_EQ(self->of.rc, -EINVAL);
	EDO_AWAIT(edo_file_open(&self->of, P("x", tmp_root),
				&(edo_open_opts){.read = true, .create = true}));
	CHECK_EQ(self->of.rc, -EINVAL); /* create without write */
	EDO_AWAIT(edo_file_open(&self->of, P("file", tmp_root),
				&(edo_open_opts){.read = true, .flags = O_DIRECTORY}));
	CHECK_EQ(self->of.rc, -ENOTDIR);
	EDO_AWAIT(edo_file_open(&self->of, NULL, NULL));
	CHECK_EQ(self->of.rc, -EINVAL);
	/* Listing. */
	EDO_AWAIT(edo_read_dir_open(&self->rd, P("missing", tmp_root)));
	CHECK_EQ(self->rd.rc, -ENOENT);
	EDO_AWAIT(edo_read_dir_open(&self->rd, P("file", tmp_root)));
	CHECK_EQ(self->rd.rc, -ENOTDIR);
	/* Permission checks mean nothing to root. */
	if (geteuid() != 0) {
		CHECK_EQ(chmod(P("dir", tmp_root), 0), 0);
		EXPECT(edo_fs_read(&self->op, P("dir/f", tmp_root)), -EACCES);
		EDO_AWAIT(edo_read_dir_open(&self->rd, P("dir", tmp_root)));
		CHECK_EQ(self->rd.rc, -EACCES);
		CHECK_EQ(chmod(P("dir", tmp_root), 0755), 0);
	}
	EXPECT(edo_fs_remove_dir_all(&self->op, P("dir", tmp_root)), 0);
	EXPECT(edo_fs_remove_file(&self->op, P("file", tmp_root)), 0);
	EDO_END();
}

TEST(error_paths)
{
	RUN_BOTH(errs);
}

/* In a runtime: a listing polled with a NULL output lists on as before. */
typedef struct nulldir_frame {
	EDO_FRAME;
	char p[PATH_MAX];
	edo_read_dir_fut rd;
	edo_read_dir *d;
	edo_dir_entry e;
	int rc;
} nulldir_frame;

static void nulldir_cleanup(nulldir_frame *self)
{
	edo_read_dir_close(self->d);
}

EDO_ASYNC(nulldir, nulldir_frame, nulldir_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(close(open(P("only", tmp_root), O_CREAT | O_WRONLY | O_CLOEXEC, 0644)), 0);
	EDO_AWAIT(edo_read_dir_open(&self->rd, tmp_root));
	CHECK_EQ(self->rd.rc, 0);
	self->d = self->rd.dir;
	self->rc = 1;
	EDO_AWAIT_POLL(edo_read_dir_poll_next(self->d, cx, NULL, &self->rc));
	CHECK_EQ(self->rc, -EINVAL);
	EDO_AWAIT_POLL(edo_read_dir_poll_next(self->d, cx, &self->e, NULL));
	EDO_AWAIT_POLL(edo_read_dir_poll_next(self->d, cx, &self->e, &self->rc));
	CHECK_EQ(self->rc, 1);
	CHECK_STREQ(self->e.name, "only");
	EDO_AWAIT_POLL(edo_read_dir_poll_next(self->d, cx, &self->e, &self->rc));
	CHECK_EQ(self->rc, 0);
	edo_read_dir_close(self->d);
	self->d = NULL;
	CHECK_EQ(unlink(P("only", tmp_root)), 0);
	EDO_END();
}

/* NULL handles, futures and outputs: an initialiser given a NULL future
 * returns NULL; a poll function given a NULL handle or output reports
 * -EINVAL where it can (READY either way); nothing crashes, and a good
 * handle polled with a NULL output is left as it was. */
TEST(null_handles_and_outputs)
{
	edo_cx cx = {edo_noop_waker()};
	edo_dir_entry e;
	int rc = 1;
	CHECK_EQ(edo_read_dir_poll_next(NULL, &cx, &e, &rc), EDO_READY);
	CHECK_EQ(rc, -EINVAL);
	CHECK_EQ(edo_read_dir_poll_next(NULL, &cx, &e, NULL), EDO_READY);
	CHECK_EQ(edo_read_dir_poll_next(NULL, &cx, NULL, NULL), EDO_READY);
	edo_read_dir_close(NULL);
	edo_fs_fut_clear(NULL);
	CHECK(edo_fs_read(NULL, "x") == NULL);
	CHECK(edo_fs_write(NULL, "x", "a", 1) == NULL);
	CHECK(edo_fs_metadata(NULL, "x") == NULL);
	CHECK(edo_fs_symlink_metadata(NULL, "x") == NULL);
	CHECK(edo_fs_try_exists(NULL, "x") == NULL);
	CHECK(edo_fs_create_dir(NULL, "x") == NULL);
	CHECK(edo_fs_create_dir_all(NULL, "x") == NULL);
	CHECK(edo_fs_remove_file(NULL, "x") == NULL);
	CHECK(edo_fs_remove_dir(NULL, "x") == NULL);
	CHECK(edo_fs_remove_dir_all(NULL, "x") == NULL);
	CHECK(edo_fs_rename(NULL, "x", "y") == NULL);
	CHECK(edo_fs_copy(NULL, "x", "y") == NULL);
	CHECK(edo_fs_canonicalize(NULL, "x") == NULL);
	CHECK(edo_fs_symlink(NULL, "x", "y") == NULL);
	CHECK(edo_fs_hard_link(NULL, "x", "y") == NULL);
	CHECK(edo_fs_read_link(NULL, "x") == NULL);
	CHECK(edo_fs_set_permissions(NULL, "x", 0600) == NULL);
	CHECK(edo_file_open(NULL, "x", NULL) == NULL);
	CHECK(edo_file_create(NULL, "x") == NULL);
	CHECK(edo_read_dir_open(NULL, "x") == NULL);
	CHECK(edo_file_seek(NULL, NULL, 0, SEEK_SET) == NULL);
	CHECK(edo_file_sync_all(NULL, NULL) == NULL);
	CHECK(edo_file_sync_data(NULL, NULL) == NULL);
	CHECK(edo_file_set_len(NULL, NULL, 0) == NULL);
	CHECK(edo_file_metadata(NULL, NULL) == NULL);
	/* A NULL file: the future reports it. */
	edo_file_op_fut fo;
	CHECK_EQ(edo_future_poll(edo_file_seek(&fo, NULL, 0, SEEK_SET), &cx), EDO_READY);
	CHECK_EQ(fo.rc, -EINVAL);
	CHECK_EQ(edo_future_poll(edo_file_metadata(&fo, NULL), &cx), EDO_READY);
	CHECK_EQ(fo.rc, -EINVAL);
	CHECK(edo_file_stream(NULL) == NULL);
	edo_file_close(NULL);
	/* A good listing polled with a NULL output: -EINVAL, and the listing
	 * is as it was (nothing read, nothing started). */
	make_tmp();
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/only", tmp_root);
	CHECK_EQ(close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644)), 0);
	DIR *dir = opendir(tmp_root);
	CHECK(dir != NULL);
	edo_read_dir *d;
	CHECK_EQ(edo__read_dir_new(dir, &d), 0);
	rc = 1;
	CHECK_EQ(edo_read_dir_poll_next(d, &cx, NULL, &rc), EDO_READY);
	CHECK_EQ(rc, -EINVAL);
	CHECK_EQ(edo_read_dir_poll_next(d, &cx, &e, NULL), EDO_READY);
	/* Outside a runtime the next poll cannot start a job: had one of the
	 * polls above started one, this would wait for it instead. */
	rc = 1;
	CHECK_EQ(edo_read_dir_poll_next(d, &cx, &e, &rc), EDO_READY);
	CHECK_EQ(rc, EDO_ENORUNTIME);
	edo_read_dir_close(d);
	CHECK_EQ(unlink(path), 0);
	CHECK_EQ(rmdir(tmp_root), 0);
	RUN_BOTH(nulldir);
}

/* edo_file_open's rules cannot be bypassed through opts.flags: the bits
 * that have their own fields (access mode, O_CREAT, O_EXCL, O_TRUNC,
 * O_APPEND) are refused there; {.read, .flags = O_TRUNC} used to truncate. */
typedef struct open_flags_frame {
	EDO_FRAME;
	char p[PATH_MAX];
	edo_fs_fut op;
	edo_file_open_fut of;
	int i;
} open_flags_frame;

static void open_flags_cleanup(open_flags_frame *self)
{
	edo_fs_fut_clear(&self->op);
}

static const edo_open_opts bad_flags[] = {
	{.read = true, .flags = O_TRUNC},          {.append = true, .flags = O_TRUNC},
	{.write = true, .flags = O_TRUNC},         {.read = true, .flags = O_CREAT},
	{.read = true, .flags = O_CREAT | O_EXCL}, {.write = true, .flags = O_EXCL},
	{.read = true, .flags = O_APPEND},         {.read = true, .flags = O_WRONLY},
	{.read = true, .flags = O_RDWR},           {.write = true, .flags = O_RDWR},
};

EDO_ASYNC(open_flags, open_flags_frame, open_flags_cleanup)
{
	EDO_BEGIN();
	FS(edo_fs_write(&self->op, P("file", tmp_root), "important\n", 10));
	CHECK_EQ(self->op.rc, 0);
	for (self->i = 0; self->i < (int)(sizeof bad_flags / sizeof bad_flags[0]); self->i++) {
		EDO_AWAIT(edo_file_open(&self->of, P("file", tmp_root), &bad_flags[self->i]));
		CHECK_EQ(self->of.rc, -EINVAL);
		EDO_AWAIT(edo_file_open(&self->of, P("new", tmp_root), &bad_flags[self->i]));
		CHECK_EQ(self->of.rc, -EINVAL);
	}
	FS(edo_fs_metadata(&self->op, P("file", tmp_root)));
	CHECK_EQ(self->op.st.st_size, 10); /* not truncated */
	FS(edo_fs_try_exists(&self->op, P("new", tmp_root)));
	CHECK_EQ(self->op.rc, 0); /* not created */
	/* Other flags still pass. */
	EDO_AWAIT(edo_file_open(&self->of, P("file", tmp_root),
				&(edo_open_opts){.read = true, .flags = O_NOFOLLOW | O_NOATIME}));
	CHECK_EQ(self->of.rc, 0);
	edo_file_close(self->of.file);
	/* O_PATH (which takes no F_SETFL) still opens. */
	EDO_AWAIT(edo_file_open(&self->of, P("file", tmp_root),
				&(edo_open_opts){.read = true, .flags = O_PATH}));
	CHECK_EQ(self->of.rc, 0);
	edo_file_close(self->of.file);
	CHECK_EQ(unlink(P("file", tmp_root)), 0);
	EDO_END();
}

TEST(open_flags_cannot_bypass_the_options)
{
	RUN_BOTH(open_flags);
}

/* O_DIRECT is refused (-EINVAL, nothing opened or created), by
 * edo_file_open and edo_file_from_fd alike: a file's reads and writes go
 * through its own buffer, which meets none of O_DIRECT's alignment rules,
 * so every one of them used to fail with -EINVAL once the file was open. */
typedef struct odirect_frame {
	EDO_FRAME;
	char p[PATH_MAX];
	edo_fs_fut op;
	edo_file_open_fut of;
} odirect_frame;

static void odirect_cleanup(odirect_frame *self)
{
	edo_fs_fut_clear(&self->op);
}

EDO_ASYNC(odirect, odirect_frame, odirect_cleanup)
{
	EDO_BEGIN();
	EDO_AWAIT(edo_file_open(
		&self->of, P("new", tmp_root),
		&(edo_open_opts){.read = true, .write = true, .create = true, .flags = O_DIRECT}));
	CHECK_EQ(self->of.rc, -EINVAL);
	CHECK(self->of.file == NULL);
	FS(edo_fs_try_exists(&self->op, P("new", tmp_root)));
	CHECK_EQ(self->op.rc, 0); /* not created */
	FS(edo_fs_write(&self->op, P("file", tmp_root), "important\n", 10));
	CHECK_EQ(self->op.rc, 0);
	EDO_AWAIT(edo_file_open(&self->of, P("file", tmp_root),
				&(edo_open_opts){.read = true, .flags = O_DIRECT | O_NOFOLLOW}));
	CHECK_EQ(self->of.rc, -EINVAL);
	CHECK(self->of.file == NULL);
	EDO_AWAIT(edo_file_open(
		&self->of, P("file", tmp_root),
		&(edo_open_opts){.write = true, .truncate = true, .flags = O_DIRECT}));
	CHECK_EQ(self->of.rc, -EINVAL);
	FS(edo_fs_metadata(&self->op, P("file", tmp_root)));
	CHECK_EQ(self->op.st.st_size, 10); /* not truncated */
	{
		/* A descriptor opened with O_DIRECT (where the file system has it). */
		int fd = open(P("file", tmp_root), O_RDONLY | O_DIRECT | O_CLOEXEC);
		if (fd >= 0) {
			edo_file *f = NULL;
			CHECK_EQ(edo_file_from_fd(fd, &f), -EINVAL);
			CHECK(f == NULL);
			CHECK_GE(fcntl(fd, F_GETFD), 0); /* still open, the caller's */
			CHECK_EQ(close(fd), 0);
		} else {
			CHECK_EQ(errno, EINVAL);
		}
	}
	CHECK_EQ(unlink(P("file", tmp_root)), 0);
	EDO_END();
}

TEST(o_direct_is_refused)
{
	RUN_BOTH(odirect);
}

/* Opening a FIFO does not wait for its other end (it used to block a
 * mandatory pool job, and so edo_runtime_free(), until one came): with no
 * writer a read sees the end at once, with no reader opening for writing
 * fails with -ENXIO.  Once open, the descriptor blocks as usual: a read
 * waits on the pool for the writer's bytes. */
typedef struct fifo_frame {
	EDO_FRAME;
	char p[PATH_MAX], q[PATH_MAX];
	edo_fs_fut op;
	edo_file_open_fut of;
	edo_file *f;
	int wfd;
	char buf[64];
	ssize_t n;
} fifo_frame;

static void fifo_cleanup(fifo_frame *self)
{
	edo_fs_fut_clear(&self->op);
	edo_file_close(self->f);
}

EDO_ASYNC(fifo, fifo_frame, fifo_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(mkfifo(P("fifo", tmp_root), 0644), 0);
	FS(edo_fs_read(&self->op, P("fifo", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(self->op.data.len, 0u);
	FS(edo_fs_write(&self->op, P("fifo", tmp_root), "x", 1));
	CHECK_EQ(self->op.rc, -ENXIO);
	FS(edo_fs_copy(&self->op, P("fifo", tmp_root), Q("copy", tmp_root)));
	CHECK_EQ(self->op.rc, -EINVAL); /* not a regular file */
	FS(edo_fs_write(&self->op, P("file", tmp_root), "x", 1));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_copy(&self->op, P("file", tmp_root), Q("fifo", tmp_root)));
	CHECK_EQ(self->op.rc, -ENXIO);
	EDO_AWAIT(edo_file_open(&self->of, P("fifo", tmp_root), &(edo_open_opts){.write = true}));
	CHECK_EQ(self->of.rc, -ENXIO);
	EDO_AWAIT(edo_file_open(&self->of, P("fifo", tmp_root), NULL));
	CHECK_EQ(self->of.rc, 0);
	self->f = self->of.file;
	EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf,
					    sizeof self->buf, &self->n));
	CHECK_EQ(self->n, 0); /* no writer */
	/* A writer comes. */
	self->wfd = open(P("fifo", tmp_root), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK_GE(self->wfd, 0);
	CHECK_EQ(write(self->wfd, "ping", 4), 4);
	EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf,
					    sizeof self->buf, &self->n));
	CHECK_EQ(self->n, 4);
	CHECK(memcmp(self->buf, "ping", 4) == 0);
	/* Nothing to read, the writer still there: the read waits for it
	 * (a descriptor left non-blocking would fail with -EAGAIN). */
	CHECK_EQ(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf, sizeof self->buf,
				      &self->n),
		 EDO_PENDING);
	CHECK_EQ(write(self->wfd, "pong", 4), 4);
	CHECK_EQ(close(self->wfd), 0);
	EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf,
					    sizeof self->buf, &self->n));
	CHECK_EQ(self->n, 4);
	CHECK(memcmp(self->buf, "pong", 4) == 0);
	EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf,
					    sizeof self->buf, &self->n));
	CHECK_EQ(self->n, 0);
	edo_file_close(self->f);
	self->f = NULL;
	CHECK_EQ(unlink(P("fifo", tmp_root)), 0);
	CHECK_EQ(unlink(P("file", tmp_root)), 0);
	EDO_END();
}

TEST(opening_a_fifo_does_not_wait_for_the_other_end)
{
	RUN_BOTH(fifo);
}

/* ---- directories -------------------------------------------------------------------------------------- */

#define ENTRIES 10000

typedef struct dirs_frame {
	EDO_FRAME;
	char p[PATH_MAX], q[PATH_MAX];
	edo_fs_fut op;
	edo_read_dir_fut rd;
	edo_read_dir *d;
	edo_dir_entry e;
	unsigned char *seen;
	int rc, count, dirs;
} dirs_frame;

static void dirs_cleanup(dirs_frame *self)
{
	edo_fs_fut_clear(&self->op);
	edo_read_dir_close(self->d);
	free(self->seen);
}

EDO_ASYNC(dirs, dirs_frame, dirs_cleanup)
{
	EDO_BEGIN();
	/* create_dir_all: new, existing, with trailing slashes. */
	FS(edo_fs_create_dir_all(&self->op, P("a/b/c/d", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_create_dir_all(&self->op, P("a/b/c/d", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_create_dir_all(&self->op, P("a/b2//c2/", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_metadata(&self->op, P("a/b2/c2", tmp_root)));
	CHECK(S_ISDIR(self->op.st.st_mode));
	FS(edo_fs_create_dir(&self->op, P("a/e", tmp_root)));
	CHECK_EQ(self->op.rc, 0);

	/* 10,000 entries, listed. */
	FS(edo_fs_create_dir(&self->op, P("many", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	/* Files as hard links of one (new directory entries, no new inodes:
	 * much quicker to make on a busy disk). */
	CHECK_EQ(close(open(Q("one", tmp_root), O_CREAT | O_WRONLY, 0644)), 0);
	for (int i = 0; i < ENTRIES; i++) {
		if (i % 1000 == 0)
			CHECK_EQ(mkdir(P("many/d%05d", tmp_root, i), 0755), 0);
		else
			CHECK_EQ(link(self->q, P("many/f%05d", tmp_root, i)), 0);
	}
	CHECK_EQ(unlink(self->q), 0);
	EDO_AWAIT(edo_read_dir_open(&self->rd, P("many", tmp_root)));
	CHECK_EQ(self->rd.rc, 0);
	self->d = self->rd.dir;
	self->seen = calloc(ENTRIES, 1);
	for (;;) {
		EDO_AWAIT_POLL(edo_read_dir_poll_next(self->d, cx, &self->e, &self->rc));
		CHECK_GE(self->rc, 0);
		if (self->rc == 0)
			break;
		int i = atoi(self->e.name + 1);
		CHECK(i >= 0 && i < ENTRIES);
		CHECK_EQ(self->seen[i], 0);
		self->seen[i] = 1;
		CHECK_EQ(self->e.type, self->e.name[0] == 'd' ? DT_DIR : DT_REG);
		CHECK_GT(self->e.ino, 0u);
		self->dirs += self->e.type == DT_DIR;
		self->count++;
	}
	CHECK_EQ(self->count, ENTRIES);
	CHECK_EQ(self->dirs, ENTRIES / 1000);
	/* The end stays the end. */
	EDO_AWAIT_POLL(edo_read_dir_poll_next(self->d, cx, &self->e, &self->rc));
	CHECK_EQ(self->rc, 0);
	edo_read_dir_close(self->d);
	self->d = NULL;
	/* An empty directory lists nothing; closing a listing halfway is fine. */
	EDO_AWAIT(edo_read_dir_open(&self->rd, P("a/e", tmp_root)));
	CHECK_EQ(self->rd.rc, 0);
	self->d = self->rd.dir;
	EDO_AWAIT_POLL(edo_read_dir_poll_next(self->d, cx, &self->e, &self->rc));
	CHECK_EQ(self->rc, 0);
	edo_read_dir_close(self->d);
	self->d = NULL;
	EDO_AWAIT(edo_read_dir_open(&self->rd, P("many", tmp_root)));
	self->d = self->rd.dir;
	EDO_AWAIT_POLL(edo_read_dir_poll_next(self->d, cx, &self->e, &self->rc));
	CHECK_EQ(self->rc, 1);
	edo_read_dir_close(self->d);
	self->d = NULL;

	/* remove_dir_all of 10,000 entries and a tree. */
	FS(edo_fs_remove_dir_all(&self->op, P("many", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_remove_dir_all(&self->op, P("a", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_try_exists(&self->op, P("a", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	EDO_END();
}

TEST(directories)
{
	RUN_BOTH(dirs);
}

/* ---- symlinks, hard links, canonicalize ---------------------------------------------------------------- */

typedef struct links_frame {
	EDO_FRAME;
	char p[PATH_MAX], q[PATH_MAX];
	edo_fs_fut op;
	ino_t ino;
} links_frame;

static void links_cleanup(links_frame *self)
{
	edo_fs_fut_clear(&self->op);
}

EDO_ASYNC(links, links_frame, links_cleanup)
{
	EDO_BEGIN();
	FS(edo_fs_create_dir_all(&self->op, P("real/sub", tmp_root)));
	FS(edo_fs_write(&self->op, P("real/sub/file", tmp_root), "data", 4));
	CHECK_EQ(self->op.rc, 0);
	/* A symlink: read_link, lstat vs stat, canonicalize. */
	FS(edo_fs_symlink(&self->op, "real/sub", Q("link", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_read_link(&self->op, P("link", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK_STREQ(self->op.path, "real/sub");
	FS(edo_fs_symlink_metadata(&self->op, P("link", tmp_root)));
	CHECK(S_ISLNK(self->op.st.st_mode));
	FS(edo_fs_metadata(&self->op, P("link", tmp_root)));
	CHECK(S_ISDIR(self->op.st.st_mode));
	FS(edo_fs_canonicalize(&self->op, P("link/../sub/./file", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	{
		char want[PATH_MAX];
		CHECK(realpath(tmp_root, want) != NULL);
		strcat(want, "/real/sub/file");
		CHECK_STREQ(self->op.path, want);
	}
	/* A dangling symlink does not "exist". */
	FS(edo_fs_symlink(&self->op, "nowhere", Q("dangling", tmp_root)));
	FS(edo_fs_try_exists(&self->op, P("dangling", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_symlink_metadata(&self->op, P("dangling", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	/* A hard link is the same file. */
	FS(edo_fs_hard_link(&self->op, P("real/sub/file", tmp_root), Q("hard", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_metadata(&self->op, P("hard", tmp_root)));
	CHECK_EQ(self->op.st.st_nlink, 2u);
	self->ino = self->op.st.st_ino;
	FS(edo_fs_metadata(&self->op, P("real/sub/file", tmp_root)));
	CHECK_EQ(self->op.st.st_ino, self->ino);
	/* remove_dir_all never follows a symlink: through "tree/out" it must
	 * not reach real/. */
	FS(edo_fs_create_dir(&self->op, P("tree", tmp_root)));
	FS(edo_fs_symlink(&self->op, P("real", tmp_root), Q("tree/out", tmp_root)));
	FS(edo_fs_remove_dir_all(&self->op, P("tree", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_try_exists(&self->op, P("real/sub/file", tmp_root)));
	CHECK_EQ(self->op.rc, 1);
	/* ...and a symlink named directly is removed, not its target. */
	FS(edo_fs_remove_dir_all(&self->op, P("link", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_try_exists(&self->op, P("real/sub", tmp_root)));
	CHECK_EQ(self->op.rc, 1);
	FS(edo_fs_remove_file(&self->op, P("dangling", tmp_root)));
	FS(edo_fs_remove_file(&self->op, P("hard", tmp_root)));
	FS(edo_fs_remove_dir_all(&self->op, P("real", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	EDO_END();
}

TEST(links)
{
	RUN_BOTH(links);
}

/* remove_dir_all never goes through its last component when that is a
 * symlink, however the path is spelt: "link/" and "link//" remove the link
 * alone; a path whose last component is "." or ".." is refused before
 * anything is touched.  ("link/." and "dir/." used to empty the directory
 * and then fail.) */
typedef struct rmall_frame {
	EDO_FRAME;
	char p[PATH_MAX], q[PATH_MAX];
	edo_fs_fut op;
	int i, cwd;
} rmall_frame;

static void rmall_cleanup(rmall_frame *self)
{
	edo_fs_fut_clear(&self->op);
}

/* target/file, target/sub/f, and link -> target. */
static void rmall_make(rmall_frame *self)
{
	CHECK(mkdir(P("target", tmp_root), 0755) == 0 || errno == EEXIST);
	CHECK(mkdir(P("target/sub", tmp_root), 0755) == 0 || errno == EEXIST);
	CHECK_EQ(close(open(P("target/file", tmp_root), O_CREAT | O_WRONLY | O_CLOEXEC, 0644)), 0);
	CHECK_EQ(close(open(P("target/sub/f", tmp_root), O_CREAT | O_WRONLY | O_CLOEXEC, 0644)), 0);
	CHECK(symlink("target", P("link", tmp_root)) == 0 || errno == EEXIST);
}

static bool rmall_target_intact(rmall_frame *self)
{
	struct stat st;
	return stat(P("target/file", tmp_root), &st) == 0 &&
	       stat(P("target/sub/f", tmp_root), &st) == 0;
}

static bool rmall_link_exists(rmall_frame *self)
{
	struct stat st;
	return lstat(P("link", tmp_root), &st) == 0 && S_ISLNK(st.st_mode);
}

static const char *const rmall_refused[] = {
	"link/.",    "link/./",   "link/..",       "link/sub/..",  "target/.",
	"target/./", "target/..", "target/sub/..", "target/sub/.",
};

EDO_ASYNC(rmall, rmall_frame, rmall_cleanup)
{
	EDO_BEGIN();
	rmall_make(self);
	FS(edo_fs_remove_dir_all(&self->op, P("link/", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK(!rmall_link_exists(self));
	CHECK(rmall_target_intact(self));
	rmall_make(self);
	FS(edo_fs_remove_dir_all(&self->op, P("link//", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK(!rmall_link_exists(self));
	CHECK(rmall_target_intact(self));
	rmall_make(self);
	for (self->i = 0; self->i < (int)(sizeof rmall_refused / sizeof rmall_refused[0]);
	     self->i++) {
		FS(edo_fs_remove_dir_all(&self->op, P("%s", tmp_root, rmall_refused[self->i])));
		CHECK_EQ(self->op.rc, -EINVAL);
		CHECK(rmall_link_exists(self));
		CHECK(rmall_target_intact(self));
	}
	/* Relative to the working directory. */
	self->cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK_GE(self->cwd, 0);
	CHECK_EQ(chdir(P("target/sub", tmp_root)), 0);
	FS(edo_fs_remove_dir_all(&self->op, "."));
	CHECK_EQ(self->op.rc, -EINVAL);
	FS(edo_fs_remove_dir_all(&self->op, "./"));
	CHECK_EQ(self->op.rc, -EINVAL);
	FS(edo_fs_remove_dir_all(&self->op, ".."));
	CHECK_EQ(self->op.rc, -EINVAL);
	CHECK_EQ(fchdir(self->cwd), 0);
	CHECK_EQ(close(self->cwd), 0);
	CHECK(rmall_link_exists(self));
	CHECK(rmall_target_intact(self));
	/* A file is not removed through "file/" (it names no directory). */
	FS(edo_fs_write(&self->op, P("plain", tmp_root), "keep\n", 5));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_remove_dir_all(&self->op, P("plain/", tmp_root)));
	CHECK_EQ(self->op.rc, -ENOTDIR);
	FS(edo_fs_metadata(&self->op, P("plain", tmp_root)));
	CHECK_EQ(self->op.st.st_size, 5);
	CHECK_EQ(unlink(P("plain", tmp_root)), 0);
	/* A directory with a trailing slash is removed, whole. */
	FS(edo_fs_remove_dir_all(&self->op, P("target/", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_try_exists(&self->op, P("target", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK(rmall_link_exists(self)); /* dangling now */
	FS(edo_fs_remove_dir_all(&self->op, P("link", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK(!rmall_link_exists(self));
	EDO_END();
}

TEST(remove_dir_all_never_follows_the_last_component)
{
	RUN_BOTH(rmall);
}

/* remove_dir_all removes a directory or a symlink, as Rust's: anything else
 * it names (a file, a FIFO), however the path is spelt, is refused with
 * -ENOTDIR and left alone; a symlink to a file, or a dangling one, is
 * removed and its target kept.  ("file" without a slash used to be
 * removed.) */
typedef struct rmall_nondir_frame {
	EDO_FRAME;
	char p[PATH_MAX], q[PATH_MAX];
	edo_fs_fut op;
	int i;
} rmall_nondir_frame;

static void rmall_nondir_cleanup(rmall_nondir_frame *self)
{
	edo_fs_fut_clear(&self->op);
}

static const char *const rmall_nondirs[] = {"plain", "plain/", "fifo", "fifo/", "dir/plain"};

EDO_ASYNC(rmall_nondir, rmall_nondir_frame, rmall_nondir_cleanup)
{
	EDO_BEGIN();
	FS(edo_fs_write(&self->op, P("plain", tmp_root), "keep\n", 5));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(mkfifo(P("fifo", tmp_root), 0644), 0);
	CHECK_EQ(mkdir(P("dir", tmp_root), 0755), 0);
	FS(edo_fs_write(&self->op, P("dir/plain", tmp_root), "keep\n", 5));
	CHECK_EQ(self->op.rc, 0);
	for (self->i = 0; self->i < (int)(sizeof rmall_nondirs / sizeof rmall_nondirs[0]);
	     self->i++) {
		FS(edo_fs_remove_dir_all(&self->op, P("%s", tmp_root, rmall_nondirs[self->i])));
		CHECK_EQ(self->op.rc, -ENOTDIR);
	}
	FS(edo_fs_metadata(&self->op, P("plain", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(self->op.st.st_size, 5);
	FS(edo_fs_symlink_metadata(&self->op, P("fifo", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK(S_ISFIFO(self->op.st.st_mode));
	FS(edo_fs_metadata(&self->op, P("dir/plain", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(self->op.st.st_size, 5);
	/* Symlinks: to a file, dangling.  The link goes, the file stays. */
	CHECK_EQ(symlink("plain", P("flink", tmp_root)), 0);
	CHECK_EQ(symlink("nowhere", P("dangling", tmp_root)), 0);
	FS(edo_fs_remove_dir_all(&self->op, P("flink", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_remove_dir_all(&self->op, P("dangling", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_symlink_metadata(&self->op, P("flink", tmp_root)));
	CHECK_EQ(self->op.rc, -ENOENT);
	FS(edo_fs_symlink_metadata(&self->op, P("dangling", tmp_root)));
	CHECK_EQ(self->op.rc, -ENOENT);
	FS(edo_fs_metadata(&self->op, P("plain", tmp_root)));
	CHECK_EQ(self->op.st.st_size, 5);
	/* A directory still goes, whole, the files in it too. */
	FS(edo_fs_remove_dir_all(&self->op, P("dir", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_try_exists(&self->op, P("dir", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	CHECK_EQ(unlink(P("plain", tmp_root)), 0);
	CHECK_EQ(unlink(P("fifo", tmp_root)), 0);
	EDO_END();
}

TEST(remove_dir_all_refuses_what_is_not_a_directory)
{
	RUN_BOTH(rmall_nondir);
}

/* ---- writes survive the runtime's shutdown; abandoned operations -------------------------------------- */

#define SURVIVE (4 << 20)

typedef struct survive_frame {
	EDO_FRAME;
	char p[PATH_MAX];
	char *data;
	edo_file_open_fut of;
	edo_write_all_fut wa;
} survive_frame;

EDO_ASYNC(survive, survive_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT(edo_file_create(&self->of, P("survivor", tmp_root)));
	CHECK_EQ(self->of.rc, 0);
	/* The last 2 MiB are still being written when this returns; no flush. */
	EDO_AWAIT(edo_write_all(&self->wa, edo_file_stream(self->of.file), self->data, SURVIVE));
	CHECK_EQ(self->wa.rc, 0);
	edo_file_close(self->of.file);
	EDO_END();
}

/* A file write in flight when the task is cancelled by shutdown. */
static atomic_bool written;

typedef struct cancelled_frame {
	EDO_FRAME;
	char p[PATH_MAX];
	char *data;
	edo_file *f;
	edo_file_open_fut of;
	ssize_t n;
	edo_sleep sl;
} cancelled_frame;

static void cancelled_cleanup(cancelled_frame *self)
{
	edo_file_close(self->f);
}

EDO_ASYNC(cancelled, cancelled_frame, cancelled_cleanup)
{
	EDO_BEGIN();
	EDO_AWAIT(edo_file_create(&self->of, P("cancelled", tmp_root)));
	CHECK_EQ(self->of.rc, 0);
	self->f = self->of.file;
	EDO_AWAIT_POLL(edo_stream_poll_write(edo_file_stream(self->f), cx, self->data,
					     EDO_FILE_MAX_BUF, &self->n));
	CHECK_EQ(self->n, (ssize_t)EDO_FILE_MAX_BUF);
	atomic_store(&written, true);
	EDO_AWAIT_SLEEP(&self->sl, EDO_SEC(1000)); /* cancelled here */
	EDO_END();
}

typedef struct spawner_frame {
	EDO_FRAME;
	char *data;
} spawner_frame;

EDO_ASYNC(spawner, spawner_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(NULL, cancelled, .data = self->data), 0);
	while (!atomic_load(&written))
		EDO_YIELD();
	EDO_END();
}

static void check_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_RDONLY);
	CHECK_GE(fd, 0);
	char *got = malloc(len + 1);
	size_t n = 0;
	ssize_t r;
	while ((r = read(fd, got + n, len + 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	CHECK_EQ(n, len);
	CHECK(memcmp(got, data, len) == 0);
	free(got);
	CHECK_EQ(unlink(path), 0);
}

TEST(writes_survive_shutdown)
{
	char *data = malloc(SURVIVE);
	for (size_t i = 0; i < SURVIVE; i++)
		data[i] = (char)(i * 7);
	for (int fl = EDO_RT_CURRENT_THREAD; fl <= EDO_RT_MULTI_THREAD; fl++) {
		make_tmp();
		edo_runtime *rt = make_rt((edo_rt_flavor)fl);
		survive_frame f = {EDO_FRAME_INIT(survive), .data = data};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
		check_file(f.p, data, SURVIVE);

		atomic_store(&written, false);
		rt = make_rt((edo_rt_flavor)fl);
		spawner_frame s = {EDO_FRAME_INIT(spawner), .data = data};
		CHECK_EQ(edo_block_on(rt, &s.edo_base), 0);
		CHECK_EQ(edo_runtime_free(rt), 0);
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/cancelled", tmp_root);
		check_file(path, data, EDO_FILE_MAX_BUF);
		CHECK_EQ(rmdir(tmp_root), 0);
	}
	free(data);
}

/* Operations dropped after their first poll: the pool finishes them and
 * frees what they made (ASan: no leak; no descriptor left open). */
typedef struct abandon_frame {
	EDO_FRAME;
	char p[PATH_MAX], q[PATH_MAX];
	edo_fs_fut op;
	edo_file_open_fut of;
	edo_read_dir_fut rd;
	int i;
} abandon_frame;

static void abandon_cleanup(abandon_frame *self)
{
	edo_fs_fut_clear(&self->op);
}

/* Poll once, then drop; if it was quick enough to finish, release what it made. */
static void poll_once_and_drop(edo_future *f, edo_cx *cx, void (*release)(edo_future *))
{
	if (edo_future_poll(f, cx) == EDO_READY)
		release(f);
	edo_future_drop(f);
}

static void release_fs(edo_future *f)
{
	edo_fs_fut_clear((edo_fs_fut *)f);
}

static void release_open(edo_future *f)
{
	edo_file_close(((edo_file_open_fut *)f)->file);
}

static void release_dir(edo_future *f)
{
	edo_read_dir_close(((edo_read_dir_fut *)f)->dir);
}

EDO_ASYNC(abandon, abandon_frame, abandon_cleanup)
{
	EDO_BEGIN();
	FS(edo_fs_write(&self->op, P("f", tmp_root), "0123456789", 10));
	for (self->i = 0; self->i < 50; self->i++) {
		poll_once_and_drop(edo_fs_read(&self->op, P("f", tmp_root)), cx, release_fs);
		poll_once_and_drop(edo_fs_canonicalize(&self->op, P("f", tmp_root)), cx,
				   release_fs);
		poll_once_and_drop(edo_file_open(&self->of, P("f", tmp_root), NULL), cx,
				   release_open);
		poll_once_and_drop(edo_read_dir_open(&self->rd, tmp_root), cx, release_dir);
		/* Never polled at all. */
		edo_future_drop(edo_fs_write(&self->op, P("g", tmp_root), "x", 1));
		EDO_YIELD();
	}
	FS(edo_fs_try_exists(&self->op, P("g", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	FS(edo_fs_remove_file(&self->op, P("f", tmp_root)));
	CHECK_EQ(self->op.rc, 0);
	EDO_END();
}

TEST(abandoned_operations)
{
	RUN_BOTH(abandon);
}

/* ---- stdin and stdout ------------------------------------------------------------------------------------- */

typedef struct stdio_frame {
	EDO_FRAME;
	edo_stream *in, *out;
	edo_buf buf;
	edo_read_to_end_fut rte;
	edo_write_all_fut wa;
	int rc;
} stdio_frame;

static void stdio_cleanup(stdio_frame *self)
{
	edo_stream_drop(self->in);
	edo_stream_drop(self->out);
	edo_buf_free(&self->buf);
}

EDO_ASYNC(stdio_copy, stdio_frame, stdio_cleanup)
{
	EDO_BEGIN();
	CHECK_EQ(edo_stdin(&self->in), 0);
	CHECK_EQ(edo_stdout(&self->out), 0);
	EDO_AWAIT(edo_read_to_end(&self->rte, self->in, &self->buf));
	CHECK_EQ(self->rte.rc, 0);
	EDO_AWAIT(edo_write_all(&self->wa, self->out, self->buf.data, self->buf.len));
	CHECK_EQ(self->wa.rc, 0);
	EDO_AWAIT_POLL(edo_stream_poll_flush(self->out, cx, &self->rc));
	CHECK_EQ(self->rc, 0);
	EDO_END();
}

TEST(stdin_to_stdout)
{
	make_tmp();
	char in[PATH_MAX], out[PATH_MAX];
	snprintf(in, sizeof in, "%s/in", tmp_root);
	snprintf(out, sizeof out, "%s/out", tmp_root);
	int fd = open(in, O_CREAT | O_WRONLY, 0644);
	for (int i = 0; i < 10000; i++)
		CHECK_EQ(write(fd, "line of stdin\n", 14), 14);
	close(fd);
	fflush(stdout);
	int saved_in = dup(0), saved_out = dup(1);
	CHECK_EQ(dup2(open(in, O_RDONLY), 0), 0);
	CHECK_EQ(dup2(open(out, O_CREAT | O_WRONLY | O_TRUNC, 0644), 1), 1);
	edo_runtime *rt = make_rt(EDO_RT_MULTI_THREAD);
	stdio_frame f = {EDO_FRAME_INIT(stdio_copy)};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	dup2(saved_in, 0);
	dup2(saved_out, 1);
	struct stat st;
	CHECK_EQ(stat(out, &st), 0);
	CHECK_EQ(st.st_size, 140000);
	unlink(in);
	unlink(out);
	CHECK_EQ(rmdir(tmp_root), 0);
	edo_stream *s;
	CHECK_EQ(edo_stderr(&s), 0);
	edo_stream_drop(s);
	CHECK_EQ(edo_stdin(NULL), -EINVAL);
}

/* A read of stdin still queued on the blocking pool when the runtime shuts
 * down (the pool's one thread is busy) is cancelled, not run: stdin reads
 * may wait forever.  Its hold on the file's state is released even though
 * the file was dropped first (the ASan build's leak check reported it). */
static void *busy_job(void *arg)
{
	(void)arg;
	usleep(1000000); /* until well after the runtime began to shut down */
	return NULL;
}

typedef struct queued_frame {
	EDO_FRAME;
	edo_stream *in;
	char b[8];
	ssize_t n;
} queued_frame;

EDO_ASYNC(stdin_queued, queued_frame, NULL)
{
	EDO_BEGIN();
	edo_join *j;
	CHECK_EQ(edo_spawn_blocking_on(NULL, busy_job, NULL, EDO_BLOCKING_MANDATORY, &j), 0);
	edo_join_detach(j);
	CHECK_EQ(edo_stdin(&self->in), 0);
	CHECK_EQ(edo_stream_poll_read(self->in, cx, self->b, sizeof self->b, &self->n),
		 EDO_PENDING);
	edo_stream_drop(self->in);
	EDO_END();
}

TEST(stdin_read_queued_at_shutdown)
{
	int p[2];
	CHECK_EQ(pipe(p), 0); /* empty, and the write end open: a read waits */
	int saved_in = dup(0);
	CHECK_EQ(dup2(p[0], 0), 0);
	close(p[0]);
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, EDO_RT_CURRENT_THREAD);
	b.max_blocking_threads = 1;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	queued_frame f = {EDO_FRAME_INIT(stdin_queued)};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	close(p[1]);
	dup2(saved_in, 0);
	close(saved_in);
}

TEST_MAIN()
