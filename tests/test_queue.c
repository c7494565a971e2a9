/* The multi-thread scheduler's local run queue (queue.c): FIFO order,
 * overflow of half the ring, steal-half, index wrap-around, and a concurrent
 * stress of one owner against several thieves in which every task must be
 * consumed exactly once.
 *
 * Then the inject queue (inject.c): FIFO order across its blocks and its
 * spill list, with pops and pushes of every size, the spill list taking over
 * when a block cannot be allocated, closing, and several pushers against
 * several poppers.
 *
 * Then a worker's burst (burst.h): its order, and an owner taking tasks one
 * by one against thieves taking all that wait.
 *
 * The queue only stores edo__task pointers and hands them to the overflow
 * sink as an array, so the tests use fake cells: an edo__task header followed
 * by an id and counters.  Nothing here runs a task.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "harness.h"
#include "runtime/scheduler/inject.h"
/* A thief's take sometimes pauses between reading the slots and its CAS, so
 * that the owner finishes the burst and loads the next one meanwhile: the
 * generation must make that CAS fail. */
static void bt_take_hook(void);
#define EDO__BURST_TAKE_HOOK() bt_take_hook()
#include "runtime/scheduler/multi_thread/burst.h"
#include "runtime/scheduler/multi_thread/queue.h"

#define CAP EDO__LOCAL_QUEUE_CAPACITY

typedef struct fake {
	edo__task hdr; /* the queue sees only this */
	uint32_t id;
	_Atomic(uint64_t) pushed;   /* times handed to the queue (owner) */
	_Atomic(uint64_t) consumed; /* times taken out (anyone) */
} fake;

static fake *fakes_new(uint32_t n)
{
	fake *f = calloc(n, sizeof *f);
	CHECK(f != NULL);
	for (uint32_t i = 0; i < n; i++) {
		f[i].id = i;
		atomic_init(&f[i].pushed, 0);
		atomic_init(&f[i].consumed, 0);
	}
	return f;
}

static uint32_t id_of(edo__task *t)
{
	return ((fake *)t)->id;
}

/* ---- single-threaded behaviour ------------------------------------------------ */

typedef struct sink {
	uint32_t calls;
	uint32_t n;
	uint32_t ids[2 * CAP];
} sink;

static void sink_fn(void *ctx, edo__task *const *tasks, uint32_t n)
{
	sink *s = ctx;
	s->calls++;
	for (uint32_t i = 0; i < n; i++) {
		CHECK_LT(s->n, 2 * CAP);
		s->ids[s->n++] = id_of(tasks[i]);
	}
}

static void no_overflow(void *ctx, edo__task *const *tasks, uint32_t n)
{
	TEST_FAIL_AT("unexpected overflow of %u tasks", n);
}

TEST(fifo_order)
{
	static edo__local_queue q;
	edo__local_queue_init(&q);
	fake *f = fakes_new(CAP);
	CHECK(edo__local_queue_pop(&q) == NULL);
	CHECK(edo__local_queue_is_empty(&q));
	CHECK_EQ(edo__local_queue_remaining(&q), CAP);
	for (uint32_t round = 0; round < 3; round++) {
		for (uint32_t i = 0; i < 100; i++)
			CHECK(!edo__local_queue_push(&q, &f[i].hdr, no_overflow, NULL));
		CHECK_EQ(edo__local_queue_len(&q), 100u);
		CHECK_EQ(edo__local_queue_remaining(&q), CAP - 100);
		for (uint32_t i = 0; i < 100; i++) {
			edo__task *t = edo__local_queue_pop(&q);
			CHECK(t != NULL);
			CHECK_EQ(id_of(t), i);
		}
		CHECK(edo__local_queue_pop(&q) == NULL);
	}
	/* Interleaved push and pop keep FIFO order across the ring's end. */
	uint32_t next_in = 0, next_out = 0;
	for (uint32_t step = 0; step < 10 * CAP; step++) {
		CHECK(!edo__local_queue_push(&q, &f[next_in % CAP].hdr, no_overflow, NULL));
		next_in++;
		if (step % 3 != 0 || edo__local_queue_len(&q) > 200) {
			edo__task *t = edo__local_queue_pop(&q);
			CHECK(t != NULL);
			CHECK_EQ(id_of(t), next_out % CAP);
			next_out++;
		}
	}
	for (edo__task *t; (t = edo__local_queue_pop(&q)); next_out++)
		CHECK_EQ(id_of(t), next_out % CAP);
	CHECK_EQ(next_out, next_in);
	free(f);
}

TEST(fill_exactly_no_overflow)
{
	static edo__local_queue q;
	edo__local_queue_init(&q);
	fake *f = fakes_new(CAP);
	for (uint32_t i = 0; i < CAP; i++)
		CHECK(!edo__local_queue_push(&q, &f[i].hdr, no_overflow, NULL));
	CHECK_EQ(edo__local_queue_len(&q), CAP);
	CHECK_EQ(edo__local_queue_remaining(&q), 0u);
	for (uint32_t i = 0; i < CAP; i++)
		CHECK_EQ(id_of(edo__local_queue_pop(&q)), i);
	CHECK(edo__local_queue_pop(&q) == NULL);
	free(f);
}

TEST(overflow_moves_half_plus_one)
{
	static edo__local_queue q;
	static sink s;
	edo__local_queue_init(&q);
	fake *f = fakes_new(CAP + 1);
	for (uint32_t i = 0; i < CAP; i++)
		CHECK(!edo__local_queue_push(&q, &f[i].hdr, sink_fn, &s));
	CHECK_EQ(s.calls, 0u);
	/* The 257th push moves the oldest 128 plus itself: 129 tasks. */
	CHECK(edo__local_queue_push(&q, &f[CAP].hdr, sink_fn, &s));
	CHECK_EQ(s.calls, 1u);
	CHECK_EQ(s.n, CAP / 2 + 1);
	for (uint32_t i = 0; i < CAP / 2; i++)
		CHECK_EQ(s.ids[i], i);
	CHECK_EQ(s.ids[CAP / 2], CAP);
	/* The newest half stays, in order. */
	CHECK_EQ(edo__local_queue_len(&q), CAP / 2);
	CHECK_EQ(edo__local_queue_remaining(&q), CAP / 2);
	for (uint32_t i = CAP / 2; i < CAP; i++)
		CHECK_EQ(id_of(edo__local_queue_pop(&q)), i);
	CHECK(edo__local_queue_pop(&q) == NULL);
	free(f);
}

TEST(steal_takes_half)
{
	static edo__local_queue src, dst;
	edo__local_queue_init(&src);
	edo__local_queue_init(&dst);
	fake *f = fakes_new(CAP);
	for (uint32_t i = 0; i < 100; i++)
		CHECK(!edo__local_queue_push(&src, &f[i].hdr, no_overflow, NULL));
	/* ceil(100 / 2) = 50 move: the oldest; the last one is returned. */
	edo__task *t = edo__local_queue_steal_into(&src, &dst);
	CHECK(t != NULL);
	CHECK_EQ(id_of(t), 49u);
	CHECK_EQ(edo__local_queue_len(&src), 50u);
	CHECK_EQ(edo__local_queue_len(&dst), 49u);
	for (uint32_t i = 0; i < 49; i++)
		CHECK_EQ(id_of(edo__local_queue_pop(&dst)), i);
	CHECK(edo__local_queue_pop(&dst) == NULL);
	/* Odd counts round up: 50 -> 25, 25 -> 13, ... down to 1 -> 1. */
	uint32_t left = 50, next = 50;
	while (left) {
		uint32_t n = left - left / 2;
		t = edo__local_queue_steal_into(&src, &dst);
		CHECK(t != NULL);
		CHECK_EQ(id_of(t), next + n - 1);
		CHECK_EQ(edo__local_queue_len(&dst), n - 1);
		for (uint32_t i = 0; i < n - 1; i++)
			CHECK_EQ(id_of(edo__local_queue_pop(&dst)), next + i);
		next += n;
		left -= n;
		CHECK_EQ(edo__local_queue_len(&src), left);
	}
	CHECK(edo__local_queue_steal_into(&src, &dst) == NULL);
	CHECK(edo__local_queue_is_empty(&src));

	/* A full source gives at most half a ring (128). */
	for (uint32_t i = 0; i < CAP; i++)
		CHECK(!edo__local_queue_push(&src, &f[i].hdr, no_overflow, NULL));
	t = edo__local_queue_steal_into(&src, &dst);
	CHECK_EQ(id_of(t), CAP / 2 - 1);
	CHECK_EQ(edo__local_queue_len(&dst), CAP / 2 - 1);
	CHECK_EQ(edo__local_queue_len(&src), CAP / 2);
	/* dst holds 127 (<= 128): it may steal again, 64 more. */
	t = edo__local_queue_steal_into(&src, &dst);
	CHECK(t != NULL);
	CHECK_EQ(id_of(t), CAP / 2 + CAP / 4 - 1);
	CHECK_EQ(edo__local_queue_len(&dst), CAP / 2 - 1 + CAP / 4 - 1);
	/* dst now holds 190 > 128: it refuses to steal. */
	CHECK(edo__local_queue_steal_into(&src, &dst) == NULL);
	CHECK_EQ(edo__local_queue_len(&src), CAP / 4);
	/* The stolen tasks pop from dst in their original order. */
	for (uint32_t i = 0; i < CAP / 2 - 1; i++)
		CHECK_EQ(id_of(edo__local_queue_pop(&dst)), i);
	for (uint32_t i = CAP / 2; i < CAP / 2 + CAP / 4 - 1; i++)
		CHECK_EQ(id_of(edo__local_queue_pop(&dst)), i);
	CHECK(edo__local_queue_pop(&dst) == NULL);
	for (uint32_t i = CAP / 2 + CAP / 4; i < CAP; i++)
		CHECK_EQ(id_of(edo__local_queue_pop(&src)), i);
	/* Stealing from an empty queue, and into oneself from empty, is NULL. */
	CHECK(edo__local_queue_steal_into(&src, &dst) == NULL);
	free(f);
}

/* The 32-bit indices wrap; start them just below 2^32 (white box: the packed
 * head is steal << 32 | real, both equal when no steal is in flight). */
static void queue_init_at(edo__local_queue *q, uint32_t idx)
{
	edo__local_queue_init(q);
	atomic_store(&q->head, ((uint64_t)idx << 32) | idx);
	atomic_store(&q->tail, idx);
}

TEST(index_wraparound)
{
	static edo__local_queue q, dst;
	static sink s;
	fake *f = fakes_new(CAP + 1);
	queue_init_at(&q, UINT32_MAX - 100);
	queue_init_at(&dst, UINT32_MAX - 3);
	uint32_t in = 0, out = 0;
	for (uint32_t step = 0; step < 4 * CAP; step++) {
		CHECK(!edo__local_queue_push(&q, &f[in % CAP].hdr, no_overflow, NULL));
		in++;
		if (in - out > 200)
			CHECK_EQ(id_of(edo__local_queue_pop(&q)), out++ % CAP);
	}
	CHECK_EQ(in - out, 200u);
	CHECK_EQ(edo__local_queue_len(&q), in - out);
	/* Steal across the wrap, into a queue whose indices wrap too. */
	uint32_t len = in - out, n = len - len / 2;
	edo__task *t = edo__local_queue_steal_into(&q, &dst);
	CHECK_EQ(id_of(t), (out + n - 1) % CAP);
	for (uint32_t i = 0; i < n - 1; i++)
		CHECK_EQ(id_of(edo__local_queue_pop(&dst)), (out + i) % CAP);
	out += n;
	while ((t = edo__local_queue_pop(&q)))
		CHECK_EQ(id_of(t), out++ % CAP);
	CHECK_EQ(out, in);

	/* Overflow across the wrap. */
	queue_init_at(&q, UINT32_MAX - 10);
	for (uint32_t i = 0; i < CAP; i++)
		CHECK(!edo__local_queue_push(&q, &f[i].hdr, sink_fn, &s));
	CHECK(edo__local_queue_push(&q, &f[CAP].hdr, sink_fn, &s));
	CHECK_EQ(s.n, CAP / 2 + 1);
	for (uint32_t i = 0; i < CAP / 2; i++)
		CHECK_EQ(s.ids[i], i);
	for (uint32_t i = CAP / 2; i < CAP; i++)
		CHECK_EQ(id_of(edo__local_queue_pop(&q)), i);
	CHECK(edo__local_queue_pop(&q) == NULL);
	free(f);
}

/* ---- concurrent stress ------------------------------------------------------------- */

#define NTHIEVES 3
#define POOL 4096u

typedef struct stress {
	edo__local_queue owner_q;
	edo__local_queue thief_q[NTHIEVES];
	fake *cells;
	atomic_bool owner_done;
	atomic_uint_fast64_t consumed_total;
	atomic_uint_fast64_t stolen_total;
	atomic_uint_fast64_t thief_stolen_total; /* stolen from a thief's queue */
	uint64_t overflowed;
	uint64_t pushed_total;
} stress;

static stress S;

/* Take a task of @cells out of the system: it must be in flight exactly
 * once. */
static void consume_from(fake *cells, uint32_t pool, atomic_uint_fast64_t *total, edo__task *t)
{
	fake *f = (fake *)t;
	CHECK(f >= cells && f < cells + pool);
	/* Read pushed before counting this consumption: while the cell is in
	 * flight the owner cannot push it again, but once consumed is bumped it
	 * may, many times over, before a preempted thread here reads pushed. */
	uint64_t p = atomic_load_explicit(&f->pushed, memory_order_acquire);
	uint64_t c = atomic_fetch_add_explicit(&f->consumed, 1, memory_order_acq_rel) + 1;
	if (c != p)
		TEST_FAIL_AT("task %u consumed %" PRIu64 " times but pushed %" PRIu64, f->id, c, p);
	atomic_fetch_add_explicit(total, 1, memory_order_relaxed);
}

static void consume(edo__task *t)
{
	consume_from(S.cells, POOL, &S.consumed_total, t);
}

static void stress_overflow(void *ctx, edo__task *const *tasks, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		consume(tasks[i]);
	S.overflowed += n;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void *owner_main(void *arg)
{
	long ops = *(long *)arg;
	uint64_t rng = 0x1234567;
	uint32_t cursor = 0;
	long done = 0;
	while (done < ops) {
		/* A burst of pushes (sometimes enough to overflow), then pops. */
		uint32_t burst = (uint32_t)(xorshift(&rng) % 64) + 1;
		for (uint32_t i = 0; i < burst; i++) {
			/* Find a cell that is not in flight. */
			fake *f;
			for (;;) {
				f = &S.cells[cursor++ % POOL];
				if (atomic_load_explicit(&f->consumed, memory_order_acquire) ==
				    atomic_load_explicit(&f->pushed, memory_order_relaxed))
					break;
			}
			uint64_t times = atomic_load_explicit(&f->pushed, memory_order_relaxed);
			atomic_store_explicit(&f->pushed, times + 1, memory_order_release);
			S.pushed_total++;
			edo__local_queue_push(&S.owner_q, &f->hdr, stress_overflow, NULL);
			done++;
		}
		uint32_t pops = (uint32_t)(xorshift(&rng) % 60);
		for (uint32_t i = 0; i < pops; i++) {
			edo__task *t = edo__local_queue_pop(&S.owner_q);
			done++;
			if (!t)
				break;
			consume(t);
		}
		if (xorshift(&rng) % 64 == 0)
			sched_yield();
	}
	/* Drain what the thieves left. */
	for (edo__task *t; (t = edo__local_queue_pop(&S.owner_q));)
		consume(t);
	atomic_store(&S.owner_done, true);
	return NULL;
}

static void *thief_main(void *arg)
{
	uint32_t me = (uint32_t)(uintptr_t)arg;
	edo__local_queue *mine = &S.thief_q[me];
	uint64_t rng = 0x9e3779b97f4a7c15ull * (me + 1);
	for (;;) {
		bool done = atomic_load(&S.owner_done);
		/* Mostly the owner's queue; sometimes another thief's, which is
		 * being refilled by its own steals at the same time. */
		uint32_t pick = (uint32_t)(xorshift(&rng) % 4);
		edo__local_queue *victim = &S.owner_q;
		bool from_thief = false;
		if (pick == 0 && NTHIEVES > 1) {
			uint32_t v =
				(me + 1 + (uint32_t)(xorshift(&rng) % (NTHIEVES - 1))) % NTHIEVES;
			victim = &S.thief_q[v];
			from_thief = true;
		}
		edo__task *t = edo__local_queue_steal_into(victim, mine);
		if (t) {
			atomic_fetch_add_explicit(from_thief ? &S.thief_stolen_total :
							       &S.stolen_total,
						  1 + edo__local_queue_len(mine),
						  memory_order_relaxed);
			consume(t);
			/* Leave some in our queue for other thieves to take. */
			uint32_t keep = (uint32_t)(xorshift(&rng) % 32);
			while (edo__local_queue_len(mine) > keep) {
				edo__task *x = edo__local_queue_pop(mine);
				if (!x)
					break;
				consume(x);
			}
		} else if (done) {
			break;
		} else if (xorshift(&rng) % 8 == 0) {
			sched_yield();
		}
	}
	for (edo__task *t; (t = edo__local_queue_pop(mine));)
		consume(t);
	return NULL;
}

TEST(concurrent_owner_and_thieves)
{
	S.cells = fakes_new(POOL);
	edo__local_queue_init(&S.owner_q);
	for (int i = 0; i < NTHIEVES; i++)
		edo__local_queue_init(&S.thief_q[i]);
	long ops = test_scale(20000000);
	pthread_t owner, thieves[NTHIEVES];
	for (uintptr_t i = 0; i < NTHIEVES; i++)
		CHECK_EQ(pthread_create(&thieves[i], NULL, thief_main, (void *)i), 0);
	CHECK_EQ(pthread_create(&owner, NULL, owner_main, &ops), 0);
	CHECK_EQ(pthread_join(owner, NULL), 0);
	for (int i = 0; i < NTHIEVES; i++)
		CHECK_EQ(pthread_join(thieves[i], NULL), 0);

	/* Thieves drained their own queues after the owner finished; a thief
	 * that stole from another thief's queue after that thief exited may
	 * have left tasks behind: drain those too. */
	for (int i = 0; i < NTHIEVES; i++)
		for (edo__task *t; (t = edo__local_queue_pop(&S.thief_q[i]));)
			consume(t);
	CHECK(edo__local_queue_is_empty(&S.owner_q));
	uint64_t consumed = atomic_load(&S.consumed_total);
	CHECK_EQ(consumed, S.pushed_total);
	for (uint32_t i = 0; i < POOL; i++)
		CHECK_EQ(atomic_load(&S.cells[i].consumed), atomic_load(&S.cells[i].pushed));
	uint64_t stolen = atomic_load(&S.stolen_total);
	printf("  %" PRIu64 " pushed, %" PRIu64 " stolen from the owner, %" PRIu64
	       " from thieves, %" PRIu64 " overflowed\n",
	       S.pushed_total, stolen, (uint64_t)atomic_load(&S.thief_stolen_total), S.overflowed);
	CHECK_GT(stolen, 0u);
	free(S.cells);
}

/* ---- the inject queue ------------------------------------------------------------ */

/* Push @n ids from *@in, one at a time or as batches of varying size. */
static void inject_push_ids(edo__inject *q, fake *f, uint32_t *in, uint32_t n, uint64_t *rng)
{
	edo__task *batch[300];
	uint32_t left = n;
	while (left) {
		uint32_t k = (uint32_t)(xorshift(rng) % 300) + 1;
		if (k > left)
			k = left;
		for (uint32_t i = 0; i < k; i++)
			batch[i] = &f[(*in)++].hdr;
		if (k == 1)
			CHECK(edo__inject_push(q, batch[0]));
		else
			CHECK(edo__inject_push_batch(q, batch, k));
		left -= k;
	}
}

/* Pop up to @n ids, checking they come out in order from *@out. */
static uint32_t inject_pop_ids(edo__inject *q, uint32_t *out, uint32_t n, uint64_t *rng)
{
	edo__task *got[300];
	uint32_t total = 0;
	while (total < n) {
		uint32_t k = (uint32_t)(xorshift(rng) % 300) + 1;
		if (k > n - total)
			k = n - total;
		uint32_t m = (xorshift(rng) & 1) ? edo__inject_pop_n(q, k, got) :
						   (got[0] = edo__inject_pop(q)) != NULL;
		if (m == 0)
			break;
		for (uint32_t i = 0; i < m; i++)
			CHECK_EQ(id_of(got[i]), (*out)++);
		total += m;
	}
	return total;
}

TEST(inject_fifo_across_blocks_and_spill)
{
	enum { N = 20000 };
	static edo__inject q;
	edo__inject_init(&q);
	fake *f = fakes_new(N);
	uint64_t rng = 0x9e3779b97f4a7c15u;
	uint32_t in = 0, out = 0;
	bool saw_spill = false;
	/* Rounds of pushes and pops; in some rounds blocks cannot be
	 * allocated, so tasks spill to the list in the middle of a batch. */
	for (int round = 0; in < N; round++) {
		edo__inject_alloc_fails = round % 3 == 1;
		uint32_t n = (uint32_t)(xorshift(&rng) % 1500);
		if (n > N - in)
			n = N - in;
		inject_push_ids(&q, f, &in, n, &rng);
		saw_spill |= q.spill_head != NULL;
		CHECK_EQ(edo__inject_len(&q), (size_t)(in - out));
		uint32_t want = (uint32_t)(xorshift(&rng) % 1500);
		if (want > in - out)
			want = in - out;
		CHECK_EQ(inject_pop_ids(&q, &out, want, &rng), want);
		CHECK_EQ(edo__inject_len(&q), (size_t)(in - out));
	}
	edo__inject_alloc_fails = false;
	uint32_t rest = in - out;
	CHECK_EQ(inject_pop_ids(&q, &out, N, &rng), rest);
	CHECK_EQ(out, (uint32_t)N);
	CHECK(saw_spill);
	CHECK(edo__inject_is_empty(&q));
	CHECK(edo__inject_pop(&q) == NULL);
	edo__task *none[4];
	CHECK_EQ(edo__inject_pop_n(&q, 4, none), 0u);
	/* Closed: pushes are refused and change nothing; what is queued stays
	 * for draining. */
	edo__task *two[2] = {&f[0].hdr, &f[1].hdr};
	CHECK(edo__inject_push(&q, two[0]));
	edo__inject_close(&q);
	CHECK(!edo__inject_push(&q, two[1]));
	CHECK(!edo__inject_push_batch(&q, two, 2));
	CHECK_EQ(edo__inject_len(&q), (size_t)1);
	CHECK(edo__inject_pop(&q) == two[0]);
	CHECK(edo__inject_pop(&q) == NULL);
	edo__inject_destroy(&q);
	free(f);
}

#define INJ_PUSHERS 3
#define INJ_POPPERS 2

static struct {
	edo__inject q;
	fake *cells;
	uint32_t per_pusher;
	atomic_uint pushers_done;
	atomic_uint_fast64_t popped;
} I;

/* Pusher p owns cells [p * per, (p + 1) * per) and pushes them in order. */
static void *inj_pusher(void *arg)
{
	uint32_t p = (uint32_t)(uintptr_t)arg, base = p * I.per_pusher, i = 0;
	uint64_t rng = 0x1234567u + p;
	edo__task *batch[200];
	while (i < I.per_pusher) {
		uint32_t k = (uint32_t)(xorshift(&rng) % 200) + 1;
		if (k > I.per_pusher - i)
			k = I.per_pusher - i;
		for (uint32_t j = 0; j < k; j++) {
			fake *f = &I.cells[base + i + j];
			atomic_fetch_add_explicit(&f->pushed, 1, memory_order_relaxed);
			batch[j] = &f->hdr;
		}
		CHECK(k == 1 ? edo__inject_push(&I.q, batch[0]) :
			       edo__inject_push_batch(&I.q, batch, k));
		i += k;
	}
	atomic_fetch_add(&I.pushers_done, 1);
	return NULL;
}

static void *inj_popper(void *arg)
{
	uint64_t rng = 0x7654321u + (uintptr_t)arg;
	uint32_t last[INJ_PUSHERS];
	for (int p = 0; p < INJ_PUSHERS; p++)
		last[p] = UINT32_MAX;
	edo__task *got[256];
	for (;;) {
		bool done = atomic_load(&I.pushers_done) == INJ_PUSHERS;
		uint32_t n = edo__inject_pop_n(&I.q, (uint32_t)(xorshift(&rng) % 256) + 1, got);
		for (uint32_t i = 0; i < n; i++) {
			fake *f = (fake *)got[i];
			CHECK_EQ(atomic_fetch_add(&f->consumed, 1), 0u);
			CHECK_EQ(atomic_load(&f->pushed), 1u);
			/* FIFO: each pusher's tasks come out in the order pushed. */
			uint32_t p = f->id / I.per_pusher;
			CHECK(last[p] == UINT32_MAX || f->id > last[p]);
			last[p] = f->id;
		}
		atomic_fetch_add(&I.popped, n);
		if (n == 0 && done && edo__inject_is_empty(&I.q))
			break;
	}
	return NULL;
}

TEST(inject_concurrent_pushers_and_poppers)
{
	I.per_pusher = (uint32_t)test_scale(400000);
	if (I.per_pusher < 1000)
		I.per_pusher = 1000;
	uint32_t total = I.per_pusher * INJ_PUSHERS;
	I.cells = fakes_new(total);
	edo__inject_init(&I.q);
	pthread_t pu[INJ_PUSHERS], po[INJ_POPPERS];
	for (uintptr_t i = 0; i < INJ_POPPERS; i++)
		CHECK_EQ(pthread_create(&po[i], NULL, inj_popper, (void *)i), 0);
	for (uintptr_t i = 0; i < INJ_PUSHERS; i++)
		CHECK_EQ(pthread_create(&pu[i], NULL, inj_pusher, (void *)i), 0);
	for (int i = 0; i < INJ_PUSHERS; i++)
		CHECK_EQ(pthread_join(pu[i], NULL), 0);
	for (int i = 0; i < INJ_POPPERS; i++)
		CHECK_EQ(pthread_join(po[i], NULL), 0);
	CHECK_EQ((uint64_t)atomic_load(&I.popped), (uint64_t)total);
	for (uint32_t i = 0; i < total; i++)
		CHECK_EQ(atomic_load(&I.cells[i].consumed), 1u);
	CHECK(edo__inject_is_empty(&I.q));
	edo__inject_destroy(&I.q);
	free(I.cells);
}

/* ---- a worker's burst (burst.h) -------------------------------------------------- */

TEST(burst_order)
{
	fake *f = fakes_new(32);
	edo__burst b;
	edo__burst_init(&b);
	edo__task *out[EDO__BURST_MAX];
	CHECK(edo__burst_pop(&b) == NULL);
	CHECK_EQ(edo__burst_take_all(&b, out), 0u);
	edo__task *in[EDO__BURST_MAX];
	for (uint32_t i = 0; i < 5; i++)
		in[i] = &f[i].hdr;
	edo__burst_load(&b, in, 5); /* in[0] runs at once: 1..4 wait */
	CHECK_EQ(edo__burst_waiting(&b), 4u);
	CHECK_EQ(id_of(edo__burst_pop(&b)), 1u);
	CHECK_EQ(id_of(edo__burst_pop(&b)), 2u);
	CHECK_EQ(edo__burst_take_all(&b, out), 2u);
	CHECK_EQ(id_of(out[0]), 3u);
	CHECK_EQ(id_of(out[1]), 4u);
	CHECK(edo__burst_pop(&b) == NULL);
	CHECK_EQ(edo__burst_waiting(&b), 0u);
	/* A full burst, emptied by the owner. */
	for (uint32_t i = 0; i < EDO__BURST_MAX; i++)
		in[i] = &f[10 + i].hdr;
	edo__burst_load(&b, in, EDO__BURST_MAX);
	for (uint32_t i = 1; i < EDO__BURST_MAX; i++)
		CHECK_EQ(id_of(edo__burst_pop(&b)), 10u + i);
	CHECK(edo__burst_pop(&b) == NULL);
	CHECK_EQ(edo__burst_take_all(&b, out), 0u);
	free(f);
}

#define BT_THIEVES 2
#define BT_POOL 256u

static struct {
	edo__burst b;
	fake *cells;
	atomic_bool done;
	atomic_uint_fast64_t consumed, taken, takes;
} BT;

static void bt_take_hook(void)
{
	static _Thread_local uint64_t rng = 0x853c49e6748fea9bull;
	uint64_t r = xorshift(&rng);
	if (r % 4 == 0)
		for (int k = (int)(r >> 32) % 2000; k > 0; k--)
			__asm__ volatile("" ::: "memory");
}

static void bt_consume(edo__task *t)
{
	consume_from(BT.cells, BT_POOL, &BT.consumed, t);
}

static void *bt_owner(void *arg)
{
	long rounds = *(long *)arg, pushed = 0;
	uint64_t rng = 0x2545f4914f6cdd1dull;
	uint32_t cursor = 0;
	for (long r = 0; r < rounds; r++) {
		uint32_t n = 2 + (uint32_t)(xorshift(&rng) % (EDO__BURST_MAX - 1));
		edo__task *in[EDO__BURST_MAX];
		for (uint32_t i = 0; i < n; i++) {
			fake *f;
			do
				f = &BT.cells[cursor++ % BT_POOL];
			while (atomic_load_explicit(&f->consumed, memory_order_acquire) !=
			       atomic_load_explicit(&f->pushed, memory_order_relaxed));
			atomic_store_explicit(&f->pushed,
					      atomic_load_explicit(&f->pushed,
								   memory_order_relaxed) +
						      1,
					      memory_order_release);
			in[i] = &f->hdr;
		}
		pushed += n;
		edo__burst_load(&BT.b, in, n);
		bt_consume(in[0]); /* the one the owner runs at once */
		/* Run the rest one per "tick", sometimes slowly: a thief may take
		 * what is left at any point. */
		for (edo__task *t; (t = edo__burst_pop(&BT.b));) {
			bt_consume(t);
			if (xorshift(&rng) % 4 == 0)
				for (int k = (int)(xorshift(&rng) % 200); k > 0; k--)
					__asm__ volatile("" ::: "memory");
		}
	}
	atomic_store(&BT.done, true);
	return (void *)pushed;
}

static void *bt_thief(void *arg)
{
	(void)arg;
	edo__task *out[EDO__BURST_MAX];
	while (!atomic_load_explicit(&BT.done, memory_order_relaxed)) {
		uint32_t n = edo__burst_take_all(&BT.b, out);
		for (uint32_t i = 0; i < n; i++)
			bt_consume(out[i]);
		if (n) {
			atomic_fetch_add_explicit(&BT.taken, n, memory_order_relaxed);
			atomic_fetch_add_explicit(&BT.takes, 1, memory_order_relaxed);
		}
	}
	return NULL;
}

TEST(burst_owner_against_thieves)
{
	BT.cells = fakes_new(BT_POOL);
	edo__burst_init(&BT.b);
	atomic_init(&BT.done, false);
	long rounds = test_scale(2000000);
	pthread_t owner, thieves[BT_THIEVES];
	for (int i = 0; i < BT_THIEVES; i++)
		CHECK_EQ(pthread_create(&thieves[i], NULL, bt_thief, NULL), 0);
	CHECK_EQ(pthread_create(&owner, NULL, bt_owner, &rounds), 0);
	void *pushed;
	CHECK_EQ(pthread_join(owner, &pushed), 0);
	for (int i = 0; i < BT_THIEVES; i++)
		CHECK_EQ(pthread_join(thieves[i], NULL), 0);
	CHECK_EQ(edo__burst_waiting(&BT.b), 0u);
	CHECK_EQ((uint64_t)atomic_load(&BT.consumed), (uint64_t)(long)pushed);
	for (uint32_t i = 0; i < BT_POOL; i++)
		CHECK_EQ(atomic_load(&BT.cells[i].consumed), atomic_load(&BT.cells[i].pushed));
	printf("  %ld bursts, %ld tasks; thieves took %" PRIu64 " tasks in %" PRIu64 " takes\n",
	       rounds, (long)pushed, (uint64_t)atomic_load(&BT.taken),
	       (uint64_t)atomic_load(&BT.takes));
	CHECK_GT((uint64_t)atomic_load(&BT.takes), 0u);
	free(BT.cells);
}

TEST_MAIN()
