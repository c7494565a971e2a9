/* File workloads (bench/README.md defines each exactly; the Tokio peer does
 * the same work): fs_read, Tokio's fs.rs async_read_buf repeated, and
 * fs_read_pool, the same with Edo's inline RWF_NOWAIT reads turned off so
 * that every read is a blocking-pool round trip, as in Tokio. */
#include <fcntl.h>
#include <stdbool.h>

#include "bench.h"

/* src/fs/job.h: every file read through the blocking pool. */
void edo__fs_force_pool(bool on);

#define FS_ROUNDS 10
#define FS_READS 1000
#define FS_BLOCK 4096

/* ---- fs_read: 10 x (open /dev/zero, 1,000 reads of 4 KiB, close) ---- */

typedef struct fs_read_frame {
	EDO_FRAME;
	edo_file_open_fut of;
	edo_file *f;
	int round, i;
	ssize_t n;
	double t0, ns;
	char buf[FS_BLOCK];
} fs_read_frame;

EDO_ASYNC(fs_read_task, fs_read_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = now_ns();
	for (self->round = 0; self->round < FS_ROUNDS; self->round++) {
		EDO_AWAIT(edo_file_open(&self->of, "/dev/zero", NULL));
		if (self->of.rc < 0)
			die("open /dev/zero", self->of.rc);
		self->f = self->of.file;
		for (self->i = 0; self->i < FS_READS; self->i++) {
			EDO_AWAIT_POLL(edo_stream_poll_read(edo_file_stream(self->f), cx, self->buf,
							    sizeof self->buf, &self->n));
			if (self->n <= 0)
				die("read /dev/zero", self->n < 0 ? (int)self->n : -EIO);
		}
		edo_file_close(self->f);
	}
	self->ns = (now_ns() - self->t0) / ((double)FS_ROUNDS * FS_READS);
	EDO_END();
}

static double bench_fs_read(edo_runtime *rt)
{
	fs_read_frame *f = calloc(1, sizeof *f);
	f->edo_base.vt = &fs_read_task_vt;
	run_in_task(rt, &f->edo_base, sizeof *f);
	double ns = f->ns;
	free(f);
	return ns;
}

static double bench_fs_read_pool(edo_runtime *rt)
{
	edo__fs_force_pool(true);
	return bench_fs_read(rt);
}

BENCH_WORKLOAD(fs_read, bench_fs_read, "ns/op")
BENCH_WORKLOAD(fs_read_pool, bench_fs_read_pool, "ns/op")
