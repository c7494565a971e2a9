/* The time driver: sleeps never fire early and fire promptly on an idle
 * runtime, many timers fire in deadline order, reset earlier and later
 * (lock-free extension), cancel and reset racing with expiry on the
 * multi-thread runtime, a reset from another thread unparks the wheel's
 * owner, timeouts (lazy registration, budget), intervals in all three
 * missed-tick modes, the paused test clock with auto-advance, shutdown;
 * deadlines beyond the wheel's range (the top level's ring) and a
 * model-based fuzz of the wheel at its internal API.
 *
 * Nothing here asserts that something happened *soon*: lateness is printed
 * as information, and a timer that never fires is caught by the harness's
 * timeout.  Tests on the paused clock are exact: with auto-advance the clock
 * lands on the millisecond tick of each deadline. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"
#include "runtime/context.h"
#include "runtime/driver.h"
#include "runtime/time/time.h"
#include "test_sync_util.h"

static edo_runtime *make_rt(edo_rt_flavor flavor, unsigned workers, bool paused)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, flavor);
	b.worker_threads = workers;
	b.start_paused = paused;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	return rt;
}

/* xorshift64*, deterministic per seed. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Runs @f (a frame) on @rt from a spawned task, as user code would. */
typedef struct in_task_frame {
	EDO_FRAME;
	edo_future *work;
	size_t size;
	edo_join *h;
	int rc;
} in_task_frame;

EDO_ASYNC(in_task, in_task_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(edo_spawn(self->work, self->size, &self->h), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	memcpy(self->work, edo_join_output(self->h), self->size);
	edo_join_detach(self->h);
	EDO_END();
}

static void run_in_task(edo_runtime *rt, edo_future *work, size_t size)
{
	in_task_frame f = {EDO_FRAME_INIT(in_task), .work = work, .size = size};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
}

/* ---- a sleep never fires early; lateness is printed ------------------------------- */

static const uint64_t durations_ms[] = {0, 1, 2, 3, 5, 10, 25, 50};
#define NDUR (sizeof durations_ms / sizeof durations_ms[0])

typedef struct not_early_frame {
	EDO_FRAME;
	size_t i;
	int rep;
	uint64_t t0;
	edo_sleep s;
	uint64_t late_max, late_sum;
	unsigned n;
} not_early_frame;

EDO_ASYNC(not_early, not_early_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < NDUR; self->i++) {
		for (self->rep = 0; self->rep < 5; self->rep++) {
			self->t0 = test_now_ns();
			EDO_AWAIT_SLEEP(&self->s, EDO_MS(durations_ms[self->i]));
			CHECK_EQ(self->s.result, 0);
			uint64_t took = test_now_ns() - self->t0;
			CHECK_GE(took, EDO_MS(durations_ms[self->i]));
			uint64_t late = took - EDO_MS(durations_ms[self->i]);
			self->late_sum += late;
			self->n++;
			if (late > self->late_max)
				self->late_max = late;
		}
	}
	EDO_END();
}

static void check_not_early(edo_rt_flavor flavor, const char *name)
{
	edo_runtime *rt = make_rt(flavor, 2, false);
	not_early_frame f = {EDO_FRAME_INIT(not_early)};
	run_in_task(rt, &f.edo_base, sizeof f);
	printf("  %s idle runtime: %u sleeps, lateness mean %.3f ms, max %.3f ms\n", name, f.n,
	       (double)f.late_sum / f.n / 1e6, (double)f.late_max / 1e6);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(sleep_not_early_current_thread)
{
	check_not_early(EDO_RT_CURRENT_THREAD, "current-thread");
}

TEST(sleep_not_early_multi_thread)
{
	check_not_early(EDO_RT_MULTI_THREAD, "multi-thread");
}

/* The block_on future's own timers: on a multi-thread runtime they live in
 * the block_on thread's wheel. */
TEST(sleep_in_block_on)
{
	for (int flavor = EDO_RT_CURRENT_THREAD; flavor <= EDO_RT_MULTI_THREAD; flavor++) {
		edo_runtime *rt = make_rt((edo_rt_flavor)flavor, 2, false);
		not_early_frame f = {EDO_FRAME_INIT(not_early)};
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		printf("  block_on (%s): lateness mean %.3f ms, max %.3f ms\n",
		       flavor == EDO_RT_CURRENT_THREAD ? "current-thread" : "multi-thread",
		       (double)f.late_sum / f.n / 1e6, (double)f.late_max / 1e6);
		CHECK_EQ(edo_runtime_free(rt), 0);
	}
}

/* ---- many random timers fire in deadline order ------------------------------------- */

/* Filled in firing order by the sleeper tasks (one thread: current-thread). */
static edo_instant *fired_deadline;
static edo_instant *fired_at;
static bool *fired_filed; /* first polled before its deadline: it went through the wheel */
static long nfired;

typedef struct sleeper_frame {
	EDO_FRAME;
	edo_instant deadline;
	bool filed;
	edo_sleep s;
} sleeper_frame;

EDO_ASYNC(sleeper, sleeper_frame, NULL)
{
	EDO_BEGIN();
	/* A sleep first polled after its deadline completes at once, in
	 * whatever order the tasks run: only filed ones fire in deadline order
	 * (on a loaded machine the first polls may run late). */
	self->filed = edo_instant_now() < self->deadline;
	EDO_AWAIT_SLEEP_UNTIL(&self->s, self->deadline);
	CHECK_EQ(self->s.result, 0);
	fired_filed[nfired] = self->filed;
	fired_deadline[nfired] = self->deadline;
	fired_at[nfired] = edo_instant_now();
	nfired++;
	EDO_END();
}

typedef struct order_frame {
	EDO_FRAME;
	long n;
	uint64_t offset, spread; /* deadlines in [start + offset, + spread) */
	long i;
	edo_join **h;
	int rc;
	uint64_t seed;
	edo_instant start, last_spawned;
} order_frame;

EDO_ASYNC(order_main, order_frame, NULL)
{
	EDO_BEGIN();
	self->h = calloc((size_t)self->n, sizeof *self->h);
	CHECK(self->h != NULL);
	self->start = edo_instant_now();
	self->seed = 0x9e3779b97f4a7c15ull;
	for (self->i = 0; self->i < self->n; self->i++) {
		edo_instant d = self->start + self->offset + rnd(&self->seed) % self->spread;
		CHECK_EQ(
			edo_spawn(&(sleeper_frame){EDO_FRAME_INIT(sleeper), .deadline = d}.edo_base,
				  sizeof(sleeper_frame), &self->h[self->i]),
			0);
	}
	self->last_spawned = edo_instant_now();
	for (self->i = 0; self->i < self->n; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->h[self->i]);
	}
	free(self->h);
	EDO_END();
}

static void check_order(bool paused, long n, uint64_t offset, uint64_t spread)
{
	fired_deadline = calloc((size_t)n, sizeof *fired_deadline);
	fired_at = calloc((size_t)n, sizeof *fired_at);
	fired_filed = calloc((size_t)n, sizeof *fired_filed);
	nfired = 0;
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, paused);
	order_frame f = {EDO_FRAME_INIT(order_main), .n = n, .offset = offset, .spread = spread};
	uint64_t t0 = test_now_ns();
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	uint64_t wall = test_now_ns() - t0;
	CHECK_EQ(nfired, n);
	uint64_t late_max = 0, late_sum = 0;
	long inversions = 0, unfiled = 0;
	long prev = -1; /* the last filed timer */
	for (long i = 0; i < n; i++) {
		CHECK_GE(fired_at[i], fired_deadline[i]); /* never early */
		uint64_t late = fired_at[i] - fired_deadline[i];
		late_sum += late;
		if (late > late_max)
			late_max = late;
		if (paused) /* the clock lands on the deadline's tick */
			CHECK_LT(late, EDO_MS(1));
		/* Deadline order, within one tick (1 ms): timers of one tick
		 * fire in any order. */
		if (!fired_filed[i]) {
			unfiled++;
			continue;
		}
		if (prev >= 0 && fired_deadline[prev] > fired_deadline[i])
			inversions++;
		if (prev >= 0)
			CHECK_LT(fired_deadline[prev], fired_deadline[i] + EDO_MS(1));
		prev = i;
	}
	if (paused)
		CHECK_EQ(unfiled, 0);
	CHECK_LT(unfiled, n / 2); /* most of the order is still checked */
	printf("  %ld timers (%s clock, %ld first polled after their deadline): %ld same-tick "
	       "inversions; lateness mean %.3f ms, "
	       "max %.3f ms; wall %.0f ms; spawning took %.0f ms\n",
	       n, paused ? "paused" : "real", unfiled, inversions,
	       (double)late_sum / (double)n / 1e6, (double)late_max / 1e6, (double)wall / 1e6,
	       (double)(f.last_spawned - f.start) / 1e6);
	CHECK_EQ(edo_runtime_free(rt), 0);
	free(fired_deadline);
	free(fired_at);
	free(fired_filed);
}

TEST(order_100k_paused)
{
	/* Deadlines over 100 virtual seconds: every wheel level up to 2. */
	check_order(true, test_scale(100000), 0, EDO_SEC(100));
}

TEST(order_100k_real_clock)
{
	/* Registered well before the first fires (spawning is far quicker
	 * than the 1 s offset, also under sanitizers). */
	check_order(false, test_scale(100000), EDO_SEC(1), EDO_MS(1000));
}

/* ---- wheel levels: far deadlines, exact on the paused clock -------------------------- */

static const uint64_t far_ms[] = {
	1,          63,         64,          65,          4095,        4096,         4097,
	262143,     262144,     262145,      16777215,    16777216,    16777217,     1073741823,
	1073741824, 1073741825, 68719476735, 68719476736, 68719476737, 100000000000,
};
#define NFAR (sizeof far_ms / sizeof far_ms[0])

typedef struct far_frame {
	EDO_FRAME;
	size_t i;
	edo_instant t0;
	edo_sleep s;
} far_frame;

EDO_ASYNC(far_main, far_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < NFAR; self->i++) {
		self->t0 = edo_instant_now();
		EDO_AWAIT_SLEEP(&self->s, EDO_MS(far_ms[self->i]));
		CHECK_EQ(self->s.result, 0);
		CHECK_EQ(edo_instant_now() - self->t0, EDO_MS(far_ms[self->i]));
	}
	EDO_END();
}

TEST(wheel_levels_paused)
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, true);
	far_frame f = {EDO_FRAME_INIT(far_main)};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* ---- the top level's ring: deadlines beyond the wheel's range ------------------------ */

/* The top level holds what lies more than 2^36 ticks (about 795 days) away,
 * up to "never", each entry filed by the slot bits of its own tick; it is a
 * ring.  When the wheel reaches such an entry's slot, the entry is re-filed
 * into the slot the wheel now stands in: that slot must come up last, a lap
 * later, not before the slots after it. */
#define TOP_SLOT_TICKS ((uint64_t)1 << 30) /* one top-level slot: 12.4 days */
#define TOP_LAP_TICKS ((uint64_t)1 << 36)  /* the top level's range: 795 days */
#define DAY_NS EDO_SEC(86400u)

/* The top-level slot of the tick @tick. */
static unsigned top_slot(uint64_t tick)
{
	return (unsigned)((tick >> 30) & 63);
}

/* The first start of the top-level slot @slot after the tick @elapsed. */
static uint64_t next_top_slot_start(uint64_t elapsed, unsigned slot)
{
	uint64_t start = (elapsed & ~(TOP_LAP_TICKS - 1)) + slot * TOP_SLOT_TICKS;
	return start > elapsed ? start : start + TOP_LAP_TICKS;
}

/* The instant at which the tick @tick of @t's clock begins. */
static edo_instant tick_instant(const edo__time *t, uint64_t tick)
{
	return t->clock->base + tick * EDO__NS_PER_TICK;
}

/* wheel.c's level_for: the level at which it files (and looks for) an
 * entry due at @when while the wheel stands at @elapsed. */
static unsigned model_level_for(uint64_t elapsed, uint64_t when)
{
	uint64_t masked = (elapsed ^ when) | 63;
	if (masked >= TOP_LAP_TICKS - 1)
		masked = TOP_LAP_TICKS - 2;
	return (63u - (unsigned)__builtin_clzll(masked)) / 6;
}

/* Walk @t under its lock: each entry of a level sits where wheel_remove()
 * looks for it, the occupied bits match the slots, len counts the entries,
 * and @gone (unless NULL) is linked nowhere. */
static void check_wheel(edo__time *t, const edo_sleep *gone)
{
	pthread_mutex_lock(&t->lock);
	size_t n = 0;
	for (const edo_sleep *e = t->pending; e; e = e->next_, n++)
		CHECK(e != gone);
	for (unsigned level = 0; level < EDO__WHEEL_LEVELS; level++) {
		const edo__wheel_level *l = &t->levels[level];
		for (unsigned slot = 0; slot < EDO__WHEEL_SLOTS; slot++) {
			CHECK_EQ((l->occupied >> slot) & 1, (uint64_t)(l->slot[slot] != NULL));
			for (const edo_sleep *e = l->slot[slot]; e; e = e->next_, n++) {
				CHECK(e != gone);
				CHECK_GT(e->when_, t->elapsed);
				CHECK_EQ(model_level_for(t->elapsed, e->when_), level);
				CHECK_EQ((unsigned)((e->when_ >> (6 * level)) & 63), slot);
			}
		}
	}
	CHECK_EQ(n, t->len);
	pthread_mutex_unlock(&t->lock);
}

/* A task that sleeps until @deadline, and checks it woke exactly then. */
typedef struct until_frame {
	EDO_FRAME;
	edo_instant deadline;
	edo_sleep s;
} until_frame;

EDO_ASYNC(sleep_until_task, until_frame, NULL)
{
	EDO_BEGIN();
	edo_sleep_until_init(&self->s, self->deadline);
	EDO_AWAIT(&self->s);
	CHECK_EQ(self->s.result, 0);
	CHECK_EQ(edo_instant_now(), self->deadline);
	EDO_END();
}

static const uint64_t ring_days[] = {30, 340, 500, 1000};
#define NRING (sizeof ring_days / sizeof ring_days[0])

typedef struct ring_frame {
	EDO_FRAME;
	edo__time *wheel;
	edo_join *far;
	edo_instant t;
	edo_sleep s;
	size_t i;
	int rc;
} ring_frame;

EDO_ASYNC(ring_main, ring_frame, NULL)
{
	EDO_BEGIN();
	self->wheel = edo__ctx.time;
	/* "Never" and five years: both ride the top level. */
	CHECK_EQ(EDO_SPAWN(NULL, sleep_until_task, .deadline = UINT64_MAX), 0);
	CHECK_EQ(EDO_SPAWN(&self->far, sleep_until_task,
			   .deadline = edo_instant_now() + 5 * 365 * DAY_NS),
		 0);
	EDO_YIELD(); /* both register */
	CHECK_EQ(edo__time_len(self->wheel), 2u);
	/* Four days into the slot of "never" (its slot bits depend on the
	 * clock's base): the slot was processed, "never" re-filed into it. */
	uint64_t never = edo__time_deadline_tick(self->wheel->clock, UINT64_MAX);
	self->t = tick_instant(self->wheel,
			       next_top_slot_start(self->wheel->elapsed, top_slot(never))) +
		  4 * DAY_NS;
	edo_sleep_until_init(&self->s, self->t);
	EDO_AWAIT(&self->s);
	CHECK_EQ(edo_instant_now(), self->t);
	/* The slots after it come up in their turn, round the ring and on. */
	for (self->i = 0; self->i < NRING; self->i++) {
		self->t = edo_instant_now() + ring_days[self->i] * DAY_NS;
		EDO_AWAIT_SLEEP(&self->s, ring_days[self->i] * DAY_NS);
		CHECK_EQ(self->s.result, 0);
		CHECK_EQ(edo_instant_now(), self->t);
		check_wheel(self->wheel, NULL);
	}
	EDO_AWAIT_JOIN(self->far, &self->rc); /* it checked its own instant */
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->far);
	CHECK_EQ(edo__time_len(self->wheel), 1u); /* "never" */
	EDO_END();
}

TEST(sleep_forever_does_not_delay_far_sleeps_paused)
{
	/* Before the fix the wheel, once it stood in the slot of "never",
	 * took that slot a lap later for the next expiry, ahead of every other
	 * top-level slot: the 30-day sleep never fired (auto-advance went
	 * round lap after lap to the end of the clock, then parked). */
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, true);
	ring_frame f = {EDO_FRAME_INIT(ring_main)};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* The wheel of the current thread steps into the top-level slot of a sleep
 * "never" (@never), then into the next slot, where @x is due a day later.
 * With @drop_x, the wheel's layout is checked on the way, x is dropped and
 * freed, and a lap is run; without, both are left pending. */
typedef struct wrap_frame {
	EDO_FRAME;
	edo_sleep *never, *x;
	bool drop_x;
	edo__time *wheel;
	uint64_t next; /* the tick at which the slot after never's starts */
} wrap_frame;

EDO_ASYNC(wrap_main, wrap_frame, NULL)
{
	EDO_BEGIN();
	self->wheel = edo__ctx.time;
	edo_sleep_init(self->never, UINT64_MAX);
	CHECK_EQ(edo_future_poll(&self->never->base, cx), EDO_PENDING);
	uint64_t never = edo__time_deadline_tick(self->wheel->clock, UINT64_MAX);
	self->next = next_top_slot_start(self->wheel->elapsed, top_slot(never)) + TOP_SLOT_TICKS;
	/* A day into never's slot: it is re-filed there. */
	CHECK_EQ(edo_time_advance(tick_instant(self->wheel, self->next - TOP_SLOT_TICKS) + DAY_NS -
				  edo_instant_now()),
		 0);
	EDO_YIELD();
	if (self->drop_x)
		check_wheel(self->wheel, NULL);
	/* x: a day into the next slot (the next lap's slot 0 after slot 63). */
	edo_sleep_until_init(self->x, tick_instant(self->wheel, self->next) + DAY_NS);
	CHECK_EQ(edo_future_poll(&self->x->base, cx), EDO_PENDING);
	/* 10 ms into x's slot: the slot is processed, x cascades down. */
	CHECK_EQ(edo_time_advance(tick_instant(self->wheel, self->next) + EDO_MS(10) -
				  edo_instant_now()),
		 0);
	EDO_YIELD();
	CHECK(!edo_sleep_is_elapsed(self->x));
	CHECK_EQ(edo__time_len(self->wheel), 2u);
	if (self->drop_x) {
		check_wheel(self->wheel, NULL);
		edo_future_drop(&self->x->base);
		check_wheel(self->wheel, self->x);
		CHECK_EQ(edo__time_len(self->wheel), 1u);
		free(self->x);
		self->x = NULL;
		/* More than a lap: every slot comes up again. */
		CHECK_EQ(edo_time_advance(900 * DAY_NS), 0);
		EDO_YIELD();
		EDO_YIELD();
		check_wheel(self->wheel, NULL);
		CHECK_EQ(edo__time_len(self->wheel), 1u);
		edo_future_drop(&self->never->base);
		CHECK_EQ(edo__time_len(self->wheel), 0u);
	}
	EDO_END();
}

TEST(far_sleep_dropped_after_the_wrap_is_unlinked_paused)
{
	/* Before the fix the wheel moved into x's slot without processing it
	 * (it went for never's slot, a lap on, first), so x was removed from
	 * the wrong level: it stayed linked, and was written to after it was
	 * freed when its slot came up (ASan: heap-use-after-free). */
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, true);
	edo_sleep never;
	wrap_frame f = {EDO_FRAME_INIT(wrap_main), .never = &never, .drop_x = true};
	f.x = malloc(sizeof *f.x);
	CHECK(f.x);
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(shutdown_with_far_sleeps_pending_paused)
{
	/* The same two sleeps left pending, owned outside any task: freeing
	 * the runtime fires both as cancelled.  Before the fix it fired x
	 * over and over (take_any() and wheel_remove() disagreed on its
	 * level) and never returned. */
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, true);
	edo_sleep never, x;
	wrap_frame f = {EDO_FRAME_INIT(wrap_main), .never = &never, .x = &x};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK(edo_sleep_is_elapsed(&never) && edo_sleep_is_elapsed(&x));
	CHECK_EQ(never.result, EDO_ESHUTDOWN);
	CHECK_EQ(x.result, EDO_ESHUTDOWN);
	edo_future_drop(&never.base);
	edo_future_drop(&x.base);
}

/* A thread's wheel on the real clock, at the internal API: its park is
 * bounded by a 20-day sleep, also next to a 2.2-year one (beyond the
 * wheel's range: filed in the top-level slot the wheel stands in, 0). */
TEST(park_timeout_not_past_a_far_sleep)
{
	edo__clock *c;
	CHECK_EQ(edo__clock_new(&c, false), 0);
	edo__parker p;
	CHECK_EQ(edo__parker_init(&p, NULL), 0);
	CHECK_EQ(edo__parker_init_time(&p, c), 0);
	edo__ctx.time = p.time;
	edo_cx cx = {edo_noop_waker()};
	edo_sleep near, far;
	bool aa;
	edo_sleep_init(&near, 20 * DAY_NS);
	CHECK_EQ(edo_future_poll(&near.base, &cx), EDO_PENDING);
	int64_t alone = edo__time_park_timeout(p.time, -1, &aa);
	edo__time_after_park(p.time, false);
	edo_sleep_init(&far, 803 * DAY_NS);
	CHECK_EQ(edo_future_poll(&far.base, &cx), EDO_PENDING);
	CHECK_EQ(top_slot(far.when_), top_slot(p.time->elapsed));
	int64_t both = edo__time_park_timeout(p.time, -1, &aa);
	edo__time_after_park(p.time, false);
	printf("  park timeout: %.1f days, %.1f days with the far sleep too\n",
	       (double)alone / 86400e9, (double)both / 86400e9);
	/* The next expiry is where the 20-day sleep cascades (12.4 days). */
	CHECK_LE(alone, (int64_t)(20 * DAY_NS));
	CHECK_LE(both, (int64_t)(20 * DAY_NS));
	edo_future_drop(&near.base);
	edo_future_drop(&far.base);
	edo__ctx.time = NULL;
	edo__parker_destroy(&p);
	edo__clock_free(c);
}

/* ---- model-based fuzz of the wheel --------------------------------------------------- */

/* One thread drives a wheel on a paused clock through the internal API:
 * sleeps are registered, dropped, reset earlier and later, reset after
 * firing; the clock is advanced by hand and by auto-advance.  After each
 * step: nothing fired early, everything due has fired, auto-advance never
 * jumped past a pending deadline, the wheel's length and layout agree
 * with the sleeps (check_wheel). */
#define FZ_N 64

static uint64_t fz_duration(uint64_t *seed)
{
	switch (rnd(seed) % 10) {
	case 0:
		return rnd(seed) % EDO_MS(3);
	case 1:
		return rnd(seed) % EDO_MS(70);
	case 2:
		return rnd(seed) % EDO_SEC(5);
	case 3:
		return rnd(seed) % EDO_SEC(300);
	case 4:
		return rnd(seed) % EDO_SEC(20000);
	case 5:
		return rnd(seed) % (15 * DAY_NS);
	case 6:
		return rnd(seed) % (900 * DAY_NS);
	case 7:
		return rnd(seed) % (3650 * DAY_NS);
	case 8:
		return UINT64_MAX;
	default:
		return rnd(seed) % EDO_MS(200);
	}
}

static void fuzz_wheel(uint64_t seed, long iters)
{
	static edo_sleep s[FZ_N];
	static test_waker w[FZ_N];
	bool used[FZ_N] = {false};
	edo__clock *c;
	CHECK_EQ(edo__clock_new(&c, true), 0);
	c->auto_advance = true;
	edo__parker p;
	CHECK_EQ(edo__parker_init(&p, NULL), 0);
	CHECK_EQ(edo__parker_init_time(&p, c), 0);
	edo__ctx.time = p.time;
	for (int k = 0; k < FZ_N; k++)
		tw_init(&w[k]);
	for (long it = 0; it < iters; it++) {
		edo_instant now = edo__clock_now(c);
		int i = (int)(rnd(&seed) % FZ_N);
		int op = (int)(rnd(&seed) % 8);
		if (op <= 2) {
			/* A new sleep, polled. */
			if (used[i])
				edo_future_drop(&s[i].base);
			edo_sleep_until_init(&s[i], edo_instant_add(now, fz_duration(&seed)));
			used[i] = true;
			tw_poll(&w[i], &s[i].base);
		} else if (op == 3 && used[i]) {
			edo_future_drop(&s[i].base);
			used[i] = false;
		} else if (op == 4 && used[i]) {
			edo_sleep_reset(&s[i], edo_instant_add(now, fz_duration(&seed)));
			tw_poll(&w[i], &s[i].base);
		} else if (op == 5) {
			/* Advance by hand, then a driver turn. */
			uint64_t d = fz_duration(&seed);
			if (d == UINT64_MAX || rnd(&seed) % 4)
				d = rnd(&seed) % ((1 + rnd(&seed) % 40) * DAY_NS);
			if (d > EDO__CLOCK_MAX - now)
				d = EDO__CLOCK_MAX - now;
			edo__clock_advance_to(c, now + d);
			edo__parker_park(&p, 0);
		} else if (op == 6) {
			/* An idle park: auto-advance to the next expiry, never
			 * past the earliest pending deadline. */
			edo_instant min = UINT64_MAX;
			for (int k = 0; k < FZ_N; k++)
				if (used[k] && !edo_sleep_is_elapsed(&s[k]) && s[k].deadline_ < min)
					min = s[k].deadline_;
			if (min <= EDO__CLOCK_MAX) {
				/* Bounded: a park the clock cannot end returns. */
				edo__parker_park(&p, EDO_MS(1));
				CHECK_LE(edo__clock_tick_floor(c, edo__clock_now(c)),
					 edo__time_deadline_tick(c, min));
			}
		} else {
			edo__parker_park(&p, 0);
		}
		now = edo__clock_now(c);
		uint64_t now_tick = edo__clock_tick_floor(c, now);
		size_t registered = 0;
		for (int k = 0; k < FZ_N; k++) {
			if (!used[k])
				continue;
			uint64_t st = s[k].state_;
			bool fired = st == EDO__TIMER_FIRED;
			if (fired && s[k].result == 0)
				CHECK_LE(s[k].deadline_, now); /* never early */
			if (!fired && st != EDO__TIMER_UNREGISTERED) {
				registered++;
				/* After a driver turn, nothing due is left. */
				if (op >= 5)
					CHECK_GT(edo__time_deadline_tick(c, s[k].deadline_),
						 now_tick);
			}
		}
		CHECK_EQ(edo__time_len(p.time), registered);
		check_wheel(p.time, NULL);
	}
	int refs = 0;
	for (int k = 0; k < FZ_N; k++) {
		if (used[k])
			edo_future_drop(&s[k].base);
		refs += atomic_load(&w[k].refs);
	}
	CHECK_EQ(refs, 0);
	CHECK_EQ(edo__time_len(p.time), 0u);
	edo__ctx.time = NULL;
	edo__parker_destroy(&p);
	edo__clock_free(c);
}

TEST(wheel_model_fuzz_paused)
{
	/* Before the fix every one of these seeds failed: timers far apart in
	 * the top level fired late, and entries sat at the wrong level. */
	long iters = test_scale(20000);
	for (uint64_t seed = 1; seed <= 8; seed++)
		fuzz_wheel(seed, iters);
	printf("  8 seeds x %ld steps\n", iters);
}

/* ---- reset: earlier, later (lock-free), after completion, before polling ----------- */

typedef struct reset_frame {
	EDO_FRAME;
	edo_instant t0;
	edo_sleep s;
	edo__time *wheel;
} reset_frame;

EDO_ASYNC(reset_main, reset_frame, NULL)
{
	EDO_BEGIN();
	self->wheel = edo__ctx.time;
	CHECK(self->wheel != NULL);
	self->t0 = edo_instant_now();

	/* Later: registered at 100 ms, moved to 300 ms without a lock; the
	 * wheel re-files it when the 100 ms slot comes up. */
	edo_sleep_init(&self->s, EDO_MS(100));
	CHECK_EQ(edo_future_poll(&self->s.base, cx), EDO_PENDING);
	CHECK_EQ(edo__time_len(self->wheel), 1u);
	edo_sleep_reset(&self->s, self->t0 + EDO_MS(300));
	EDO_AWAIT(&self->s);
	CHECK_EQ(edo_instant_now() - self->t0, EDO_MS(300));
	CHECK_EQ(edo__time_len(self->wheel), 0u);

	/* After completion: pending again, awaited again. */
	edo_sleep_reset(&self->s, self->t0 + EDO_MS(350));
	CHECK(!edo_sleep_is_elapsed(&self->s));
	EDO_AWAIT(&self->s);
	CHECK_EQ(edo_instant_now() - self->t0, EDO_MS(350));

	/* Earlier: registered at +1 s, moved to +20 ms. */
	self->t0 = edo_instant_now();
	edo_sleep_init(&self->s, EDO_SEC(1));
	CHECK_EQ(edo_future_poll(&self->s.base, cx), EDO_PENDING);
	edo_sleep_reset(&self->s, self->t0 + EDO_MS(20));
	EDO_AWAIT(&self->s);
	CHECK_EQ(edo_instant_now() - self->t0, EDO_MS(20));

	/* Later, then earlier again (the lazy state, then the lock). */
	self->t0 = edo_instant_now();
	edo_sleep_init(&self->s, EDO_MS(10));
	CHECK_EQ(edo_future_poll(&self->s.base, cx), EDO_PENDING);
	edo_sleep_reset(&self->s, self->t0 + EDO_MS(5000));
	edo_sleep_reset(&self->s, self->t0 + EDO_MS(7));
	EDO_AWAIT(&self->s);
	CHECK_EQ(edo_instant_now() - self->t0, EDO_MS(7));

	/* Before the first poll: nothing registered until then. */
	self->t0 = edo_instant_now();
	edo_sleep_init(&self->s, EDO_MS(10));
	edo_sleep_reset(&self->s, self->t0 + EDO_MS(40));
	CHECK_EQ(edo__time_len(self->wheel), 0u);
	EDO_AWAIT(&self->s);
	CHECK_EQ(edo_instant_now() - self->t0, EDO_MS(40));

	/* To the past: fires at once. */
	self->t0 = edo_instant_now();
	edo_sleep_init(&self->s, EDO_MS(10));
	CHECK_EQ(edo_future_poll(&self->s.base, cx), EDO_PENDING);
	edo_sleep_reset(&self->s, self->t0 - EDO_MS(1));
	CHECK(edo_sleep_is_elapsed(&self->s));
	EDO_AWAIT(&self->s);
	CHECK_EQ(edo_instant_now(), self->t0);

	/* Dropping a pending sleep cancels it. */
	edo_sleep_init(&self->s, EDO_MS(10));
	CHECK_EQ(edo_future_poll(&self->s.base, cx), EDO_PENDING);
	CHECK_EQ(edo__time_len(self->wheel), 1u);
	edo_future_drop(&self->s.base);
	CHECK_EQ(edo__time_len(self->wheel), 0u);
	EDO_END();
}

TEST(reset_earlier_and_later_paused)
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, true);
	reset_frame f = {EDO_FRAME_INIT(reset_main)};
	run_in_task(rt, &f.edo_base, sizeof f);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* A sleep dropped after it expired but before it fired leaves the wheel.
 * The wheel fires a tick's timers in batches of 32 and wakes each batch
 * outside its lock; meanwhile the rest wait on its pending list.  Here the
 * first wake drops (and frees) every sleep that has not fired yet: none of
 * them may fire after that, or the wheel would write into freed memory. */
#define PD_N 80
static struct {
	edo_sleep *s[PD_N];
	int woken[PD_N];
	bool dropped[PD_N];
	int dropped_n, refs;
} pd;

static edo_waker pd_clone(const void *d);
static void pd_wake_by_ref(const void *d)
{
	int i = (int)(uintptr_t)d;
	pd.woken[i]++;
	if (pd.dropped_n)
		return;
	for (int k = 0; k < PD_N; k++) {
		if (edo_sleep_is_elapsed(pd.s[k]))
			continue;
		edo_future_drop(&pd.s[k]->base);
		free(pd.s[k]);
		pd.s[k] = NULL;
		pd.dropped[k] = true;
		pd.dropped_n++;
	}
}
static void pd_drop(const void *d)
{
	(void)d;
	pd.refs--;
}
static void pd_wake(const void *d)
{
	pd_wake_by_ref(d);
	pd_drop(d);
}
static const edo_waker_vtable pd_vt = {pd_clone, pd_wake, pd_wake_by_ref, pd_drop};
static edo_waker pd_clone(const void *d)
{
	pd.refs++;
	return (edo_waker){&pd_vt, d};
}

typedef struct pd_frame {
	EDO_FRAME;
	edo__time *wheel;
	edo_sleep after;
} pd_frame;

EDO_ASYNC(pd_main, pd_frame, NULL)
{
	EDO_BEGIN();
	self->wheel = edo__ctx.time;
	for (int i = 0; i < PD_N; i++) {
		pd.s[i] = malloc(sizeof *pd.s[i]);
		CHECK(pd.s[i]);
		edo_sleep_init(pd.s[i], EDO_MS(10));
		edo_waker w = {&pd_vt, (const void *)(uintptr_t)i};
		edo_cx wcx = {&w};
		CHECK_EQ(edo_future_poll(&pd.s[i]->base, &wcx), EDO_PENDING);
	}
	CHECK_EQ(edo__time_len(self->wheel), (size_t)PD_N);
	EDO_AWAIT_SLEEP(&self->after, EDO_MS(20));
	/* A batch fired before the first wake, the rest were dropped. */
	CHECK_GT(pd.dropped_n, 0);
	CHECK_LT(pd.dropped_n, PD_N);
	for (int i = 0; i < PD_N; i++) {
		CHECK_EQ(pd.woken[i], pd.dropped[i] ? 0 : 1);
		if (pd.s[i]) {
			CHECK(edo_sleep_is_elapsed(pd.s[i]));
			edo_future_drop(&pd.s[i]->base);
			free(pd.s[i]);
		}
	}
	CHECK_EQ(pd.refs, 0); /* every clone the wheel took was woken or dropped */
	CHECK_EQ(edo__time_len(self->wheel), 0u);
	EDO_END();
}

TEST(drop_between_expiry_and_fire_paused)
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, true);
	pd_frame f = {EDO_FRAME_INIT(pd_main)};
	run_in_task(rt, &f.edo_base, sizeof f);
	CHECK_EQ(edo_runtime_free(rt), 0);
	printf("  %d sleeps fired in the first batch, %d dropped while pending\n",
	       PD_N - pd.dropped_n, pd.dropped_n);
}

/* The same on the real clock: moved later, it does not fire at the old
 * deadline; moved earlier, it fires (not before the new one). */
typedef struct reset_real_frame {
	EDO_FRAME;
	uint64_t t0;
	edo_sleep s;
} reset_real_frame;

EDO_ASYNC(reset_real, reset_real_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = test_now_ns();
	edo_sleep_init(&self->s, EDO_MS(5));
	CHECK_EQ(edo_future_poll(&self->s.base, cx), EDO_PENDING);
	edo_sleep_reset(&self->s, edo_sleep_deadline(&self->s) + EDO_MS(30));
	EDO_AWAIT(&self->s);
	CHECK_GE(test_now_ns() - self->t0, EDO_MS(35));
	printf("  reset later: fired %.3f ms after the new deadline\n",
	       (double)(test_now_ns() - self->t0 - EDO_MS(35)) / 1e6);
	self->t0 = test_now_ns();
	edo_sleep_init(&self->s, EDO_SEC(3600));
	CHECK_EQ(edo_future_poll(&self->s.base, cx), EDO_PENDING);
	edo_sleep_reset(&self->s, edo_instant_now() + EDO_MS(5));
	EDO_AWAIT(&self->s);
	CHECK_GE(test_now_ns() - self->t0, EDO_MS(5));
	EDO_END();
}

TEST(reset_real_clock)
{
	for (int flavor = EDO_RT_CURRENT_THREAD; flavor <= EDO_RT_MULTI_THREAD; flavor++) {
		edo_runtime *rt = make_rt((edo_rt_flavor)flavor, 2, false);
		reset_real_frame f = {EDO_FRAME_INIT(reset_real)};
		run_in_task(rt, &f.edo_base, sizeof f);
		CHECK_EQ(edo_runtime_free(rt), 0);
	}
}

/* ---- a reset to earlier from another thread unparks the wheel's owner ------------- */

typedef struct remote_frame {
	EDO_FRAME;
	edo_sleep s;
	atomic_int *published;
} remote_frame;

EDO_ASYNC(remote_sleeper, remote_frame, NULL)
{
	EDO_BEGIN();
	edo_sleep_init(&self->s, EDO_SEC(3600));
	CHECK_EQ(edo_future_poll(&self->s.base, cx), EDO_PENDING);
	atomic_store_explicit(self->published, 1, memory_order_release);
	/* The worker parks with a one-hour timeout; only the unpark by the
	 * reset below gets this done before the harness's timeout. */
	EDO_AWAIT(&self->s);
	CHECK_EQ(self->s.result, 0);
	EDO_END();
}

typedef struct remote_arg {
	edo_sleep *s;
	atomic_int *published;
} remote_arg;

static void *remote_resetter(void *p)
{
	remote_arg *a = p;
	while (!atomic_load_explicit(a->published, memory_order_acquire))
		usleep(1000);
	usleep(50000); /* let the owner park */
	edo_sleep_reset(a->s, edo_instant_now() + EDO_MS(10));
	return NULL;
}

TEST(reset_from_other_thread_unparks_owner)
{
	for (int flavor = EDO_RT_CURRENT_THREAD; flavor <= EDO_RT_MULTI_THREAD; flavor++) {
		edo_runtime *rt = make_rt((edo_rt_flavor)flavor, 2, false);
		static atomic_int published;
		atomic_store(&published, 0);
		/* The frame stays where it is (block_on polls it in place), so
		 * the other thread can be given the sleep's address. */
		remote_frame f = {EDO_FRAME_INIT(remote_sleeper), .published = &published};
		remote_arg a = {&f.s, &published};
		pthread_t th;
		CHECK_EQ(pthread_create(&th, NULL, remote_resetter, &a), 0);
		uint64_t t0 = test_now_ns();
		CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
		printf("  %s: done %.1f ms after start (reset at ~50 ms, +10 ms)\n",
		       flavor == EDO_RT_CURRENT_THREAD ? "current-thread" : "multi-thread",
		       (double)(test_now_ns() - t0) / 1e6);
		pthread_join(th, NULL);
		CHECK_EQ(edo_runtime_free(rt), 0);
	}
}

/* A worker's wheel: a task on a worker registers; another thread resets it
 * earlier while that worker is parked. */
static _Atomic(edo_sleep *) worker_sleep;

typedef struct worker_sleeper_frame {
	EDO_FRAME;
	edo_sleep s;
} worker_sleeper_frame;

EDO_ASYNC(worker_sleeper, worker_sleeper_frame, NULL)
{
	EDO_BEGIN();
	edo_sleep_init(&self->s, EDO_SEC(3600));
	CHECK_EQ(edo_future_poll(&self->s.base, cx), EDO_PENDING);
	/* Task memory does not move: the address may be published. */
	atomic_store_explicit(&worker_sleep, &self->s, memory_order_release);
	EDO_AWAIT(&self->s);
	CHECK_EQ(self->s.result, 0);
	EDO_END();
}

static void *worker_resetter(void *p)
{
	(void)p;
	edo_sleep *s;
	while (!(s = atomic_load_explicit(&worker_sleep, memory_order_acquire)))
		usleep(1000);
	usleep(50000);
	edo_sleep_reset(s, edo_instant_now() + EDO_MS(10));
	return NULL;
}

TEST(reset_from_other_thread_unparks_worker)
{
	edo_runtime *rt = make_rt(EDO_RT_MULTI_THREAD, 2, false);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, worker_resetter, NULL), 0);
	worker_sleeper_frame f = {EDO_FRAME_INIT(worker_sleeper)};
	run_in_task(rt, &f.edo_base, sizeof f);
	pthread_join(th, NULL);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* ---- cancel and reset racing with expiry (multi-thread; TSan) ------------------------- */

/* Handed to the racer thread: a registered sleep it resets or drops while
 * the owning worker's wheel may be firing it.  The task waits meanwhile, so
 * the sleep still has one user at a time. */
typedef struct race_req {
	edo_sleep *s;
	bool done, dropped; /* the racer finished with it (by dropping it) */
	edo_waker waker;    /* the task waiting for done */
} race_req;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	race_req *req; /* waiting to be taken */
	bool stop;
} ho = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static atomic_long race_fired, race_cancelled, race_reset, race_remote;

static void *racer(void *p)
{
	uint64_t seed = 77;
	(void)p;
	pthread_mutex_lock(&ho.lock);
	for (;;) {
		while (!ho.req && !ho.stop)
			pthread_cond_wait(&ho.cond, &ho.lock);
		if (ho.stop)
			break;
		race_req *req = ho.req;
		ho.req = NULL;
		pthread_mutex_unlock(&ho.lock);
		edo_sleep *s = req->s;
		uint64_t r = rnd(&seed);
		bool dropped = false;
		switch (r % 4) {
		case 0:
			edo_future_drop(&s->base);
			dropped = true;
			break;
		case 1:
			edo_sleep_reset(s, edo_instant_now() + r % EDO_MS(2));
			break;
		case 2:
			edo_sleep_reset(s, edo_sleep_deadline(s) + r % EDO_MS(2));
			break;
		default:
			break;
		}
		atomic_fetch_add(&race_remote, 1);
		pthread_mutex_lock(&ho.lock);
		req->done = true;
		req->dropped = dropped;
		edo_waker w = edo_waker_take(&req->waker);
		pthread_mutex_unlock(&ho.lock);
		edo_waker_wake(w);
		pthread_mutex_lock(&ho.lock);
	}
	pthread_mutex_unlock(&ho.lock);
	return NULL;
}

/* Try to hand @s to the racer; false if it is busy. */
static bool handoff_give(race_req *req, edo_sleep *s)
{
	pthread_mutex_lock(&ho.lock);
	bool ok = !ho.req;
	if (ok) {
		*req = (race_req){.s = s};
		ho.req = req;
		pthread_cond_signal(&ho.cond);
	}
	pthread_mutex_unlock(&ho.lock);
	return ok;
}

static edo_poll handoff_wait(race_req *req, edo_cx *cx)
{
	pthread_mutex_lock(&ho.lock);
	bool done = req->done;
	if (!done)
		edo_waker_set(&req->waker, cx->waker);
	pthread_mutex_unlock(&ho.lock);
	return done ? EDO_READY : EDO_PENDING;
}

typedef struct racer_task_frame {
	EDO_FRAME;
	uint64_t seed;
	int iters, i;
	edo_sleep s;
	bool given;
	race_req req;
} racer_task_frame;

EDO_ASYNC(racer_task, racer_task_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < self->iters; self->i++) {
		uint64_t r = rnd(&self->seed);
		edo_sleep_init(&self->s, r % EDO_US(1500));
		if (edo_future_poll(&self->s.base, cx) == EDO_READY) {
			atomic_fetch_add(&race_fired, 1);
			continue;
		}
		/* Registered on this worker's wheel.  Let time pass, maybe move
		 * to another worker (a thief), then race with the expiry. */
		if (r & 1)
			EDO_YIELD();
		r = rnd(&self->seed);
		self->given = (r % 8 == 0) && handoff_give(&self->req, &self->s);
		if (self->given) {
			EDO_AWAIT_POLL(handoff_wait(&self->req, cx));
			if (self->req.dropped) {
				atomic_fetch_add(&race_cancelled, 1);
				continue;
			}
			EDO_AWAIT(&self->s);
			atomic_fetch_add(&race_fired, 1);
			continue;
		}
		switch (r % 4) {
		case 0:
			edo_future_drop(&self->s.base); /* cancel, maybe from another worker */
			atomic_fetch_add(&race_cancelled, 1);
			break;
		case 1:
			edo_sleep_reset(&self->s, edo_instant_now() + r % EDO_US(1500));
			atomic_fetch_add(&race_reset, 1);
			EDO_AWAIT(&self->s);
			atomic_fetch_add(&race_fired, 1);
			break;
		case 2:
			edo_sleep_reset(&self->s, edo_sleep_deadline(&self->s) + r % EDO_US(1500));
			atomic_fetch_add(&race_reset, 1);
			EDO_AWAIT(&self->s);
			atomic_fetch_add(&race_fired, 1);
			break;
		default:
			EDO_AWAIT(&self->s);
			atomic_fetch_add(&race_fired, 1);
			break;
		}
	}
	EDO_END();
}

typedef struct race_main_frame {
	EDO_FRAME;
	int tasks, iters, i, rc;
	edo_join **h;
} race_main_frame;

EDO_ASYNC(race_main, race_main_frame, NULL)
{
	EDO_BEGIN();
	self->h = calloc((size_t)self->tasks, sizeof *self->h);
	for (self->i = 0; self->i < self->tasks; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], racer_task, .iters = self->iters,
				   .seed = 1000u + (unsigned)self->i),
			 0);
	for (self->i = 0; self->i < self->tasks; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		CHECK_EQ(self->rc, 0);
		edo_join_detach(self->h[self->i]);
	}
	free(self->h);
	EDO_END();
}

TEST(cancel_reset_race_multi_thread)
{
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, racer, NULL), 0);
	edo_runtime *rt = make_rt(EDO_RT_MULTI_THREAD, 4, false);
	race_main_frame f = {EDO_FRAME_INIT(race_main), .tasks = 64,
			     .iters = (int)test_scale(2000)};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	pthread_mutex_lock(&ho.lock);
	ho.stop = true;
	pthread_cond_signal(&ho.cond);
	pthread_mutex_unlock(&ho.lock);
	pthread_join(th, NULL);
	printf("  fired %ld, cancelled %ld, reset %ld, handed to another thread %ld\n",
	       atomic_load(&race_fired), atomic_load(&race_cancelled), atomic_load(&race_reset),
	       atomic_load(&race_remote));
	CHECK_EQ(atomic_load(&race_fired) + atomic_load(&race_cancelled), (long)f.tasks * f.iters);
}

/* Many timers over several workers: all fire, none early. */
static atomic_long mt_early, mt_fired;

typedef struct mt_sleeper_frame {
	EDO_FRAME;
	uint64_t ms;
	uint64_t t0;
	edo_sleep s;
} mt_sleeper_frame;

EDO_ASYNC(mt_sleeper, mt_sleeper_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = test_now_ns();
	EDO_AWAIT_SLEEP(&self->s, EDO_MS(self->ms));
	if (test_now_ns() - self->t0 < EDO_MS(self->ms))
		atomic_fetch_add(&mt_early, 1);
	atomic_fetch_add(&mt_fired, 1);
	EDO_END();
}

typedef struct mt_many_frame {
	EDO_FRAME;
	long n, i;
	int rc;
	edo_join **h;
	uint64_t seed;
} mt_many_frame;

EDO_ASYNC(mt_many, mt_many_frame, NULL)
{
	EDO_BEGIN();
	self->h = calloc((size_t)self->n, sizeof *self->h);
	self->seed = 5;
	for (self->i = 0; self->i < self->n; self->i++)
		CHECK_EQ(EDO_SPAWN(&self->h[self->i], mt_sleeper, .ms = rnd(&self->seed) % 200), 0);
	for (self->i = 0; self->i < self->n; self->i++) {
		EDO_AWAIT_JOIN(self->h[self->i], &self->rc);
		edo_join_detach(self->h[self->i]);
	}
	free(self->h);
	EDO_END();
}

TEST(many_timers_multi_thread)
{
	edo_runtime *rt = make_rt(EDO_RT_MULTI_THREAD, 2, false);
	mt_many_frame f = {EDO_FRAME_INIT(mt_many), .n = test_scale(50000)};
	run_in_task(rt, &f.edo_base, sizeof f);
	CHECK_EQ(atomic_load(&mt_fired), f.n);
	CHECK_EQ(atomic_load(&mt_early), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* ---- timeouts ------------------------------------------------------------------------ */

/* A future that is PENDING @polls times (waking itself), then READY. */
typedef struct slowpoke {
	edo_future base;
	int polls;
	bool done;
} slowpoke;

static edo_poll slowpoke_poll(edo_future *f, edo_cx *cx)
{
	slowpoke *p = (slowpoke *)f;
	if (p->polls-- > 0) {
		edo_defer_wake(cx);
		return EDO_PENDING;
	}
	p->done = true;
	return EDO_READY;
}

static int slowpoke_drops;
static void slowpoke_drop(edo_future *f)
{
	(void)f;
	slowpoke_drops++;
}

static const edo_future_vtable slowpoke_vt = {.poll = slowpoke_poll, .drop = slowpoke_drop};

typedef struct timeout_frame {
	EDO_FRAME;
	edo_instant t0;
	edo_timeout to;
	edo_sleep inner_sleep;
	slowpoke sp;
	edo__time *wheel;
} timeout_frame;

EDO_ASYNC(timeout_main, timeout_frame, NULL)
{
	EDO_BEGIN();
	self->wheel = edo__ctx.time;
	/* Inner ready at once: no timer is ever registered. */
	self->sp = (slowpoke){{&slowpoke_vt}, 0, false};
	edo_timeout_init(&self->to, &self->sp.base, EDO_SEC(1));
	CHECK_EQ(edo_future_poll(&self->to.base, cx), EDO_READY);
	CHECK_EQ(self->to.result, 0);
	CHECK(self->sp.done);
	CHECK_EQ(edo__time_len(self->wheel), 0u);

	/* Inner pending once: registered meanwhile, removed on completion. */
	self->sp = (slowpoke){{&slowpoke_vt}, 1, false};
	edo_timeout_init(&self->to, &self->sp.base, EDO_SEC(1));
	CHECK_EQ(edo_future_poll(&self->to.base, cx), EDO_PENDING);
	CHECK_EQ(edo__time_len(self->wheel), 1u);
	EDO_AWAIT(&self->to);
	CHECK_EQ(self->to.result, 0);
	CHECK_EQ(edo__time_len(self->wheel), 0u);

	/* The deadline first: the inner future is dropped. */
	self->t0 = edo_instant_now();
	edo_sleep_init(&self->inner_sleep, EDO_MS(100));
	EDO_AWAIT_TIMEOUT(&self->to, &self->inner_sleep.base, EDO_MS(50));
	CHECK_EQ(self->to.result, -ETIMEDOUT);
	CHECK_EQ(edo_instant_now() - self->t0, EDO_MS(50));
	CHECK(edo_future_is_empty(&self->inner_sleep.base));
	CHECK_EQ(edo__time_len(self->wheel), 0u);

	/* The inner future first. */
	self->t0 = edo_instant_now();
	edo_sleep_init(&self->inner_sleep, EDO_MS(50));
	EDO_AWAIT_TIMEOUT(&self->to, &self->inner_sleep.base, EDO_MS(100));
	CHECK_EQ(self->to.result, 0);
	CHECK_EQ(self->inner_sleep.result, 0);
	CHECK_EQ(edo_instant_now() - self->t0, EDO_MS(50));
	CHECK_EQ(edo__time_len(self->wheel), 0u);

	/* Dropping a pending timeout drops the inner future and the timer. */
	slowpoke_drops = 0;
	self->sp = (slowpoke){{&slowpoke_vt}, 1000, false};
	edo_timeout_init(&self->to, &self->sp.base, EDO_SEC(5));
	CHECK_EQ(edo_future_poll(&self->to.base, cx), EDO_PENDING);
	edo_future_drop(&self->to.base);
	CHECK_EQ(slowpoke_drops, 1);
	CHECK_EQ(edo__time_len(self->wheel), 0u);
	EDO_END();
}

TEST(timeout_paused)
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, true);
	timeout_frame f = {EDO_FRAME_INIT(timeout_main)};
	run_in_task(rt, &f.edo_base, sizeof f);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* An inner future that spends the whole budget every poll (and never
 * completes) still times out. */
typedef struct hog {
	edo_future base;
	long polls;
} hog;

static edo_poll hog_poll(edo_future *f, edo_cx *cx)
{
	hog *h = (hog *)f;
	h->polls++;
	while (edo_coop_poll_proceed(cx) == EDO_READY)
		;
	return EDO_PENDING; /* its wake was deferred by the spent budget */
}

static const edo_future_vtable hog_vt = {.poll = hog_poll, .drop = NULL};

typedef struct hog_frame {
	EDO_FRAME;
	hog h;
	edo_timeout to;
	uint64_t t0;
} hog_frame;

EDO_ASYNC(hog_main, hog_frame, NULL)
{
	EDO_BEGIN();
	self->h = (hog){{&hog_vt}, 0};
	self->t0 = test_now_ns();
	EDO_AWAIT_TIMEOUT(&self->to, &self->h.base, EDO_MS(20));
	CHECK_EQ(self->to.result, -ETIMEDOUT);
	CHECK_GE(test_now_ns() - self->t0, EDO_MS(20));
	CHECK_GT(self->h.polls, 1);
	EDO_END();
}

TEST(timeout_of_budget_hog)
{
	for (int flavor = EDO_RT_CURRENT_THREAD; flavor <= EDO_RT_MULTI_THREAD; flavor++) {
		edo_runtime *rt = make_rt((edo_rt_flavor)flavor, 2, false);
		hog_frame f = {EDO_FRAME_INIT(hog_main)};
		run_in_task(rt, &f.edo_base, sizeof f);
		CHECK_EQ(edo_runtime_free(rt), 0);
	}
}

/* A completed sleep consumes budget: polling it in a loop is forced to
 * yield, like any ready resource. */
typedef struct budget_frame {
	EDO_FRAME;
	edo_sleep s;
	int ready_in_a_row;
} budget_frame;

EDO_ASYNC(budget_main, budget_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT_SLEEP(&self->s, 0);
	EDO_YIELD(); /* a fresh budget */
	for (;;) {
		if (edo_future_poll(&self->s.base, cx) == EDO_PENDING)
			break;
		self->ready_in_a_row++;
		CHECK_LE(self->ready_in_a_row, EDO_COOP_BUDGET);
	}
	CHECK_EQ(self->ready_in_a_row, EDO_COOP_BUDGET);
	EDO_YIELD();
	EDO_END();
}

TEST(sleep_consumes_budget)
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, false);
	budget_frame f = {EDO_FRAME_INIT(budget_main)};
	run_in_task(rt, &f.edo_base, sizeof f);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* ---- intervals: burst, delay, skip (paused clock) ---------------------------------------- */

typedef struct interval_frame {
	EDO_FRAME;
	edo_missed_tick mode;
	edo_interval iv;
	edo_instant start;
	int n;
	uint64_t tick[8], at[8]; /* ms since start */
} interval_frame;

EDO_ASYNC(interval_main, interval_frame, NULL)
{
	EDO_BEGIN();
	self->start = edo_instant_now();
	CHECK_EQ(edo_interval_init(&self->iv, EDO_MS(10), self->mode), 0);
	for (self->n = 0; self->n < 6; self->n++) {
		EDO_AWAIT(&self->iv);
		CHECK_EQ(self->iv.result, 0);
		self->tick[self->n] = (self->iv.tick - self->start) / EDO_MS(1);
		self->at[self->n] = (edo_instant_now() - self->start) / EDO_MS(1);
		if (self->n == 1) /* the task stalls for 35 ms after the tick at 10 */
			CHECK_EQ(edo_time_advance(EDO_MS(35)), 0);
	}
	edo_future_drop(&self->iv.base);
	EDO_END();
}

static void check_interval(edo_missed_tick mode, const uint64_t tick[6], const uint64_t at[6])
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, true);
	interval_frame f = {EDO_FRAME_INIT(interval_main), .mode = mode};
	run_in_task(rt, &f.edo_base, sizeof f);
	for (int i = 0; i < 6; i++) {
		CHECK_EQ(f.tick[i], tick[i]);
		CHECK_EQ(f.at[i], at[i]);
	}
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(interval_missed_tick_modes)
{
	/* Ticks at 0 and 10, then a 35 ms stall (now = 45). */
	static const uint64_t burst_tick[] = {0, 10, 20, 30, 40, 50};
	static const uint64_t burst_at[] = {0, 10, 45, 45, 45, 50};
	check_interval(EDO_MISSED_TICK_BURST, burst_tick, burst_at);
	static const uint64_t delay_tick[] = {0, 10, 20, 55, 65, 75};
	static const uint64_t delay_at[] = {0, 10, 45, 55, 65, 75};
	check_interval(EDO_MISSED_TICK_DELAY, delay_tick, delay_at);
	static const uint64_t skip_tick[] = {0, 10, 20, 50, 60, 70};
	static const uint64_t skip_at[] = {0, 10, 45, 50, 60, 70};
	check_interval(EDO_MISSED_TICK_SKIP, skip_tick, skip_at);
	edo_interval iv;
	CHECK_EQ(edo_interval_init(&iv, 0, EDO_MISSED_TICK_BURST), -EINVAL);
	CHECK_EQ(edo_interval_init(&iv, 1, (edo_missed_tick)7), -EINVAL);
}

TEST(interval_bad_input)
{
	/* A NULL interval is refused (it crashed before the fix), as are a
	 * zero period and an unknown mode; the interval is left untouched. */
	CHECK_EQ(edo_interval_init(NULL, EDO_MS(10), EDO_MISSED_TICK_BURST), -EINVAL);
	CHECK_EQ(edo_interval_at_init(NULL, edo_instant_now(), EDO_MS(10), EDO_MISSED_TICK_SKIP),
		 -EINVAL);
	edo_interval iv, before;
	memset(&iv, 0x5a, sizeof iv);
	before = iv;
	CHECK_EQ(edo_interval_at_init(&iv, 0, 0, EDO_MISSED_TICK_DELAY), -EINVAL);
	CHECK_EQ(edo_interval_at_init(&iv, 0, 1, (edo_missed_tick)-1), -EINVAL);
	CHECK_EQ(memcmp(&iv, &before, sizeof iv), 0);
	CHECK_EQ(edo_interval_init(&iv, EDO_MS(10), EDO_MISSED_TICK_BURST), 0);
	edo_future_drop(&iv.base);
}

/* On the real clock: ticks are never early. */
typedef struct interval_real_frame {
	EDO_FRAME;
	edo_interval iv;
	int n;
	uint64_t t0;
} interval_real_frame;

EDO_ASYNC(interval_real, interval_real_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = test_now_ns();
	CHECK_EQ(edo_interval_init(&self->iv, EDO_MS(5), EDO_MISSED_TICK_SKIP), 0);
	for (self->n = 0; self->n < 10; self->n++) {
		EDO_AWAIT(&self->iv);
		CHECK_GE(test_now_ns() - self->t0, (uint64_t)self->n * EDO_MS(5));
		CHECK_GE(edo_instant_now(), self->iv.tick);
	}
	edo_interval_reset(&self->iv);
	EDO_AWAIT(&self->iv);
	edo_future_drop(&self->iv.base);
	EDO_END();
}

TEST(interval_real_clock)
{
	edo_runtime *rt = make_rt(EDO_RT_MULTI_THREAD, 2, false);
	interval_real_frame f = {EDO_FRAME_INIT(interval_real)};
	run_in_task(rt, &f.edo_base, sizeof f);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* ---- the paused clock ------------------------------------------------------------------- */

typedef struct paused_frame {
	EDO_FRAME;
	edo_instant t0;
	edo_sleep s;
	uint64_t wall0;
} paused_frame;

EDO_ASYNC(paused_main, paused_frame, NULL)
{
	EDO_BEGIN();
	CHECK(edo_time_is_paused());
	self->wall0 = test_now_ns();
	self->t0 = edo_instant_now();
	CHECK_EQ(edo_instant_now(), self->t0); /* frozen */
	/* An hour passes at once: auto-advance. */
	EDO_AWAIT_SLEEP(&self->s, EDO_SEC(3600));
	CHECK_EQ(edo_instant_now() - self->t0, EDO_SEC(3600));
	/* Advance by hand past a registered timer; it fires at the next
	 * driver turn. */
	self->t0 = edo_instant_now();
	edo_sleep_init(&self->s, EDO_SEC(5));
	CHECK_EQ(edo_future_poll(&self->s.base, cx), EDO_PENDING);
	CHECK_EQ(edo_time_advance(EDO_SEC(10)), 0);
	CHECK_EQ(edo_instant_now() - self->t0, EDO_SEC(10));
	EDO_YIELD();
	CHECK(edo_sleep_is_elapsed(&self->s));
	EDO_AWAIT(&self->s);
	/* Resume: real time runs on from the paused instant. */
	self->t0 = edo_instant_now();
	CHECK_EQ(edo_time_pause(), -EALREADY);
	CHECK_EQ(edo_time_resume(), 0);
	CHECK_EQ(edo_time_resume(), -EINVAL);
	CHECK(!edo_time_is_paused());
	CHECK_GE(edo_instant_now(), self->t0);
	CHECK_EQ(edo_time_advance(1), -EINVAL);
	EDO_AWAIT_SLEEP(&self->s, EDO_MS(2));
	CHECK_GE(edo_instant_now(), self->t0 + EDO_MS(2));
	/* Pause again from inside. */
	CHECK_EQ(edo_time_pause(), 0);
	self->t0 = edo_instant_now();
	EDO_AWAIT_SLEEP(&self->s, EDO_SEC(86400));
	/* Not on a whole millisecond since resuming: lands on the tick. */
	CHECK_GE(edo_instant_now() - self->t0, EDO_SEC(86400));
	CHECK_LT(edo_instant_now() - self->t0, EDO_SEC(86400) + EDO_MS(1));
	printf("  %.0f virtual seconds in %.1f ms of real time\n", 3600.0 + 10 + 86400,
	       (double)(test_now_ns() - self->wall0) / 1e6);
	EDO_END();
}

TEST(paused_clock_auto_advance)
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, true);
	paused_frame f = {EDO_FRAME_INIT(paused_main)};
	run_in_task(rt, &f.edo_base, sizeof f);
	CHECK_EQ(edo_runtime_free(rt), 0);
	/* Outside a runtime. */
	CHECK_EQ(edo_time_pause(), EDO_ENORUNTIME);
	CHECK_EQ(edo_time_advance(1), EDO_ENORUNTIME);
	CHECK_EQ(edo_time_resume(), EDO_ENORUNTIME);
	CHECK(!edo_time_is_paused());
}

/* Auto-advance waits while a task can still run: a timer never overtakes
 * work that is ready. */
typedef struct busy_frame {
	EDO_FRAME;
	int i;
	edo_instant t0;
} busy_frame;

EDO_ASYNC(busy_main, busy_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = edo_instant_now();
	for (self->i = 0; self->i < 1000; self->i++)
		EDO_YIELD();
	CHECK_EQ(edo_instant_now(), self->t0);
	EDO_END();
}

TEST(paused_clock_waits_for_ready_tasks)
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, true);
	busy_frame f = {EDO_FRAME_INIT(busy_main)};
	run_in_task(rt, &f.edo_base, sizeof f);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* Multi-thread: a paused clock moves only by edo_time_advance, which
 * unparks the workers to look at their wheels. */
static atomic_int mt_registered;

typedef struct mt_paused_frame {
	EDO_FRAME;
	edo_join *h;
	int rc;
	edo_instant t0;
	edo_sleep s;
} mt_paused_frame;

EDO_ASYNC(mt_paused_sleeper, mt_paused_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = edo_instant_now();
	edo_sleep_init(&self->s, EDO_SEC(60));
	CHECK_EQ(edo_future_poll(&self->s.base, cx), EDO_PENDING);
	atomic_store(&mt_registered, 1);
	EDO_AWAIT(&self->s);
	CHECK_GE(edo_instant_now() - self->t0, EDO_SEC(60));
	EDO_END();
}

EDO_ASYNC(mt_paused_main, mt_paused_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->h, mt_paused_sleeper), 0);
	while (!atomic_load(&mt_registered))
		EDO_YIELD();
	CHECK_EQ(edo_time_advance(EDO_SEC(60)), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	edo_join_detach(self->h);
	EDO_END();
}

TEST(paused_clock_multi_thread_advance)
{
	edo_runtime *rt = make_rt(EDO_RT_MULTI_THREAD, 2, true);
	mt_paused_frame f = {EDO_FRAME_INIT(mt_paused_main)};
	run_in_task(rt, &f.edo_base, sizeof f);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* ---- shutdown and misuse ---------------------------------------------------------------- */

/* A block_on future that leaves a registered sleep behind (in memory the
 * caller owns) and completes. */
typedef struct leave_frame {
	EDO_FRAME;
	edo_sleep *s;
} leave_frame;

EDO_ASYNC(leave_pending, leave_frame, NULL)
{
	EDO_BEGIN();
	edo_sleep_init(self->s, EDO_SEC(3600));
	CHECK_EQ(edo_future_poll(&self->s->base, cx), EDO_PENDING);
	EDO_END();
}

/* Workers cancel tasks in parallel at shutdown: an atomic counter. */
static atomic_int cancelled_cleanups;

typedef struct doomed_frame {
	EDO_FRAME;
	edo_sleep s;
} doomed_frame;

static void doomed_cleanup(doomed_frame *self)
{
	/* The task is cancelled (dropped) before the timers are shut down:
	 * its sleep never saw EDO_ESHUTDOWN. */
	CHECK(!edo_sleep_is_elapsed(&self->s));
	atomic_fetch_add(&cancelled_cleanups, 1);
}

EDO_ASYNC(doomed, doomed_frame, doomed_cleanup)
{
	EDO_BEGIN();
	EDO_AWAIT_SLEEP(&self->s, EDO_SEC(3600));
	CHECK(false); /* never completes */
	EDO_END();
}

typedef struct spawn_doomed_frame {
	EDO_FRAME;
	int i;
} spawn_doomed_frame;

EDO_ASYNC(spawn_doomed, spawn_doomed_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < 10; self->i++)
		CHECK_EQ(EDO_SPAWN(NULL, doomed), 0);
	EDO_YIELD(); /* let them register */
	EDO_YIELD();
	EDO_END();
}

/* A sleep "forever" (its deadline saturated to UINT64_MAX) is beyond any
 * instant the paused clock can show: auto-advance has nothing to jump to,
 * so a runtime waiting on it (and on a message from another thread) parks
 * instead of turning without end. */
static edo_oneshot_tx *never_tx;

static void *never_sender(void *arg)
{
	(void)arg;
	test_sleep_ms(100);
	int v = 1;
	CHECK_EQ(edo_oneshot_send(never_tx, &v), 0);
	return NULL;
}

typedef struct never_frame {
	EDO_FRAME;
	edo_oneshot_rx *rx;
	edo_sleep s;
	int v, rc;
	edo_instant t0;
} never_frame;

static edo_poll never_or_message(never_frame *self, edo_cx *cx)
{
	if (edo_future_poll(&self->s.base, cx) == EDO_READY)
		TEST_FAIL_AT("the sleep forever fired");
	return edo_oneshot_poll_recv(self->rx, cx, &self->v, &self->rc);
}

EDO_ASYNC(never_main, never_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = edo_instant_now();
	edo_sleep_init(&self->s, UINT64_MAX);
	EDO_AWAIT_POLL(never_or_message(self, cx));
	CHECK_EQ(self->rc, 0);
	CHECK_EQ(self->v, 1);
	CHECK_EQ(edo_instant_now(), self->t0);
	edo_future_drop(&self->s.base);
	EDO_END();
}

TEST(paused_clock_parks_on_a_sleep_forever)
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, true);
	never_frame f = {EDO_FRAME_INIT(never_main)};
	CHECK_EQ(edo_oneshot_new(sizeof(int), &never_tx, &f.rx), 0);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, never_sender, NULL), 0);
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(pthread_join(th, NULL), 0);
	edo_oneshot_rx_drop(f.rx);
	edo_worker_metrics w;
	CHECK_EQ(edo_worker_metrics_get(rt, 0, &w), 0);
	/* Before the fix every turn was a "park" that returned at once:
	 * hundreds of thousands in the 100 ms.  Now: one or two. */
	printf("  %" PRIu64 " parks while waiting\n", w.parks);
	CHECK_LT(w.parks, 100u);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* edo_time_advance refuses to take the clock past INT64_MAX ns (changing
 * nothing), and a resume from the latest instant never goes back. */
typedef struct overflow_frame {
	EDO_FRAME;
	edo_instant t0;
} overflow_frame;

EDO_ASYNC(overflow_main, overflow_frame, NULL)
{
	EDO_BEGIN();
	self->t0 = edo_instant_now();
	CHECK_EQ(edo_time_advance(UINT64_MAX), -EOVERFLOW);
	CHECK_EQ(edo_time_advance((uint64_t)1 << 63), -EOVERFLOW);
	CHECK_EQ(edo_instant_now(), self->t0);
	CHECK_EQ(edo_time_advance((uint64_t)INT64_MAX - self->t0), 0);
	CHECK_EQ(edo_instant_now(), (uint64_t)INT64_MAX);
	CHECK_EQ(edo_time_advance(1), -EOVERFLOW);
	CHECK_EQ(edo_time_resume(), 0);
	CHECK_GE(edo_instant_now(), (uint64_t)INT64_MAX);
	CHECK_EQ(edo_time_pause(), 0);
	CHECK_GE(edo_instant_now(), (uint64_t)INT64_MAX);
	EDO_END();
}

TEST(paused_clock_advance_overflow_refused)
{
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, true);
	overflow_frame f = {EDO_FRAME_INIT(overflow_main)};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(shutdown_fires_pending_timers_as_cancelled)
{
	/* Current-thread: the timer outside any task completes with
	 * EDO_ESHUTDOWN when the runtime is freed. */
	edo_runtime *rt = make_rt(EDO_RT_CURRENT_THREAD, 0, false);
	edo_sleep s;
	leave_frame f = {EDO_FRAME_INIT(leave_pending), .s = &s};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK(!edo_sleep_is_elapsed(&s));
	spawn_doomed_frame d = {EDO_FRAME_INIT(spawn_doomed)};
	CHECK_EQ(edo_block_on(rt, &d.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK(edo_sleep_is_elapsed(&s));
	CHECK_EQ(s.result, EDO_ESHUTDOWN);
	CHECK_EQ(atomic_load(&cancelled_cleanups), 10);
	edo_future_drop(&s.base); /* after the runtime: safe, a no-op */

	/* Multi-thread: a block_on thread's timers end with its block_on;
	 * tasks' timers are cancelled with their tasks at shutdown. */
	atomic_store(&cancelled_cleanups, 0);
	rt = make_rt(EDO_RT_MULTI_THREAD, 2, false);
	f = (leave_frame){EDO_FRAME_INIT(leave_pending), .s = &s};
	CHECK_EQ(edo_block_on(rt, &f.edo_base), 0);
	CHECK(edo_sleep_is_elapsed(&s));
	CHECK_EQ(s.result, EDO_ESHUTDOWN);
	d = (spawn_doomed_frame){EDO_FRAME_INIT(spawn_doomed)};
	CHECK_EQ(edo_block_on(rt, &d.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(atomic_load(&cancelled_cleanups), 10);
}

TEST(outside_a_runtime)
{
	edo_sleep s;
	edo_sleep_init(&s, EDO_MS(1));
	edo_cx cx = {edo_noop_waker()};
	CHECK_EQ(edo_future_poll(&s.base, &cx), EDO_READY);
	CHECK_EQ(s.result, EDO_ENORUNTIME);
	edo_future_drop(&s.base);
	edo_instant a = edo_instant_now(), b = edo_instant_now();
	CHECK_LE(a, b);
	CHECK_EQ(edo_instant_add(UINT64_MAX - 5, 10), UINT64_MAX);
	/* A timeout around no future: refused at once, not "completed". */
	edo_timeout to;
	edo_timeout_init(&to, NULL, EDO_MS(1));
	CHECK_EQ(edo_future_poll(&to.base, &cx), EDO_READY);
	CHECK_EQ(to.result, -EINVAL);
	edo_future_drop(&to.base);
	/* A never-polled sleep costs nothing and drops as a no-op. */
	edo_sleep_init(&s, EDO_SEC(1));
	edo_future_drop(&s.base);
}

TEST_MAIN()
