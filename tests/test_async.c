/* Stackless coroutines (edo/async.h): nested awaits with children stored
 * inline, EDO_RETURN and error paths, awaits inside switch and loops,
 * cancellation of a pending tree, dropping unpolled and finished frames,
 * awaiting an empty slot, the parked line, and EDO_ASYNC_PUBLIC/DECL.
 *
 * Most cases poll frames by hand with a waker that counts its wakes; the
 * others run them as tasks. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "edo.h"
#include "harness.h"

/* ---- helpers ------------------------------------------------------------------ */

/* A waker that counts its wakes (data points at an atomic_int). */
static edo_waker cw_clone(const void *d);
static void cw_wake(const void *d)
{
	atomic_fetch_add((atomic_int *)(uintptr_t)d, 1);
}
static void cw_drop(const void *d)
{
	(void)d;
}
static const edo_waker_vtable cw_vt = {cw_clone, cw_wake, cw_wake, cw_drop};
static edo_waker cw_clone(const void *d)
{
	return (edo_waker){&cw_vt, d};
}

/* The order in which cleanups ran. */
static int cleanup_log[64];
static int cleanup_len;

static void log_cleanup(int tag)
{
	CHECK_LT(cleanup_len, 64);
	cleanup_log[cleanup_len++] = tag;
}

static void check_log(const int *want, int n)
{
	CHECK_EQ(cleanup_len, n);
	for (int i = 0; i < n; i++)
		CHECK_EQ(cleanup_log[i], want[i]);
}

/* A resource that is not ready until opened; it stores the waker. */
typedef struct gate {
	int open;
	int polls;
	edo_waker w;
} gate;

static edo_poll gate_poll(gate *g, edo_cx *cx)
{
	g->polls++;
	if (g->open)
		return EDO_READY;
	edo_waker_set(&g->w, cx->waker);
	return EDO_PENDING;
}

static void gate_open(gate *g)
{
	g->open = 1;
	edo_waker_wake(edo_waker_take(&g->w));
}

/* PENDING (after waking the waker) every other poll. */
static edo_poll flip_poll(int *flip, edo_cx *cx)
{
	*flip = !*flip;
	if (*flip) {
		edo_waker_wake_by_ref(cx->waker);
		return EDO_PENDING;
	}
	return EDO_READY;
}

/* Poll @f with a counting waker until READY; returns the number of polls.
 * Every PENDING must have arranged a wake (no lost wake). */
static int poll_to_end(edo_future *f, int max)
{
	atomic_int wakes = 0;
	edo_waker w = {&cw_vt, &wakes};
	edo_cx cx = {&w};
	for (int polls = 1; polls <= max; polls++) {
		int before = atomic_load(&wakes);
		if (edo_future_poll(f, &cx) == EDO_READY)
			return polls;
		CHECK_GT(atomic_load(&wakes), before);
	}
	TEST_FAIL_AT("not READY after %d polls", max);
}

/* ---- three levels: top awaits mid awaits leaf, each stored inline --------------- */

typedef struct leaf_frame {
	EDO_FRAME;
	gate *g;
	int tag;
	int in, out;
	int parked_line;
	char *scratch; /* released by the cleanup */
} leaf_frame;

static void leaf_cleanup(leaf_frame *self)
{
	log_cleanup(self->tag);
	free(self->scratch);
	self->scratch = NULL;
	if (self->g)
		edo_waker_drop(edo_waker_take(&self->g->w));
}

EDO_ASYNC(leaf, leaf_frame, leaf_cleanup)
{
	EDO_BEGIN();
	self->scratch = malloc(32);
	CHECK(self->scratch != NULL);
	self->parked_line = __LINE__ + 1;
	EDO_AWAIT_POLL(gate_poll(self->g, cx));
	self->out = self->in + 1;
	EDO_END();
}

typedef struct mid_frame {
	EDO_FRAME;
	gate *g;
	leaf_frame child;
	int out;
	int parked_line;
} mid_frame;

static void mid_cleanup(mid_frame *self)
{
	log_cleanup(2);
	/* By now the awaited child has been dropped (or finished). */
	CHECK(self->child.edo_as.finished || self->child.edo_base.vt == NULL);
}

EDO_ASYNC(mid, mid_frame, mid_cleanup)
{
	EDO_BEGIN();
	self->child = (leaf_frame){EDO_FRAME_INIT(leaf), .g = self->g, .tag = 1, .in = 10};
	self->parked_line = __LINE__ + 1;
	EDO_AWAIT(&self->child);
	self->out = self->child.out * 2;
	EDO_END();
}

typedef struct top_frame {
	EDO_FRAME;
	gate *g;
	mid_frame child;
	int out;
	int parked_line;
	int resumed;
} top_frame;

static void top_cleanup(top_frame *self)
{
	log_cleanup(3);
	CHECK(self->child.edo_as.finished || self->child.edo_base.vt == NULL);
}

EDO_ASYNC(top, top_frame, top_cleanup)
{
	EDO_BEGIN();
	self->child = (mid_frame){EDO_FRAME_INIT(mid), .g = self->g};
	self->parked_line = __LINE__ + 1;
	EDO_AWAIT(&self->child);
	self->resumed++;
	self->out = self->child.out + 100;
	EDO_END();
}

TEST(nested_awaits_three_levels)
{
	gate g = {0};
	top_frame t = {EDO_FRAME_INIT(top), .g = &g};
	atomic_int wakes = 0;
	edo_waker w = {&cw_vt, &wakes};
	edo_cx cx = {&w};
	CHECK_EQ(edo_future_poll(&t.edo_base, &cx), EDO_PENDING);
	CHECK_EQ(edo_future_poll(&t.edo_base, &cx), EDO_PENDING); /* spurious poll */
	CHECK_EQ(atomic_load(&wakes), 0);
	CHECK_EQ(g.polls, 2);
	/* Each level is parked on its child, at the line of its await. */
	CHECK(t.edo_as.child == &t.child.edo_base);
	CHECK(t.child.edo_as.child == &t.child.child.edo_base);
	CHECK(t.child.child.edo_as.child == NULL); /* awaits a poll expression */
	CHECK_EQ(t.edo_as.line, t.parked_line);
	CHECK_EQ(t.child.edo_as.line, t.child.parked_line);
	CHECK_EQ(t.child.child.edo_as.line, t.child.child.parked_line);
	CHECK_EQ(cleanup_len, 0);
	CHECK_EQ(t.resumed, 0);
	gate_open(&g);
	CHECK_EQ(atomic_load(&wakes), 1);
	CHECK_EQ(edo_future_poll(&t.edo_base, &cx), EDO_READY);
	CHECK_EQ(t.out, (10 + 1) * 2 + 100);
	CHECK_EQ(t.resumed, 1);
	/* Cleanups ran once each, innermost first, as each level finished. */
	check_log((const int[]){1, 2, 3}, 3);
	CHECK(t.child.child.scratch == NULL);
	/* Polling a finished frame again: READY, nothing re-runs. */
	CHECK_EQ(edo_future_poll(&t.edo_base, &cx), EDO_READY);
	CHECK_EQ(t.resumed, 1);
	/* Dropping a finished frame is a no-op (the cleanup ran already). */
	edo_future_drop(&t.edo_base);
	CHECK(edo_future_is_empty(&t.edo_base));
	edo_future_drop(&t.edo_base);
	check_log((const int[]){1, 2, 3}, 3);
}

TEST(drop_pending_tree_drops_child_first)
{
	gate g = {0};
	top_frame t = {EDO_FRAME_INIT(top), .g = &g};
	edo_cx cx = {edo_noop_waker()};
	CHECK_EQ(edo_future_poll(&t.edo_base, &cx), EDO_PENDING);
	CHECK(g.w.vt != NULL);
	CHECK(t.child.child.scratch != NULL);
	edo_future_drop(&t.edo_base);
	/* Awaited child first, down the tree, then each parent: once each. */
	check_log((const int[]){1, 2, 3}, 3);
	CHECK(edo_future_is_empty(&t.edo_base));
	CHECK(edo_future_is_empty(&t.child.edo_base));
	CHECK(edo_future_is_empty(&t.child.child.edo_base));
	CHECK(g.w.vt == NULL);                /* the leaf deregistered */
	CHECK(t.child.child.scratch == NULL); /* and freed its resource */
	edo_future_drop(&t.edo_base);
	edo_future_drop(&t.child.edo_base);
	check_log((const int[]){1, 2, 3}, 3);
	CHECK_EQ(t.out, 0); /* never resumed */
}

TEST(drop_never_polled_frame)
{
	gate g = {0};
	top_frame t = {EDO_FRAME_INIT(top), .g = &g};
	edo_future_drop(&t.edo_base);
	/* The cleanup runs once; no child was ever made. */
	check_log((const int[]){3}, 1);
	CHECK(edo_future_is_empty(&t.edo_base));
	edo_future_drop(&t.edo_base);
	check_log((const int[]){3}, 1);
	/* A leaf: its cleanup copes with the resource never having been made. */
	leaf_frame l = {EDO_FRAME_INIT(leaf), .g = &g, .tag = 7};
	edo_future_drop(&l.edo_base);
	check_log((const int[]){3, 7}, 2);
	CHECK(l.scratch == NULL);
}

/* A parent awaiting one child while holding another that it never awaited:
 * the awaited one is dropped by the protocol, the other by the cleanup. */
typedef struct two_frame {
	EDO_FRAME;
	gate ga;
	leaf_frame a, b;
} two_frame;

static void two_cleanup(two_frame *self)
{
	log_cleanup(5);
	edo_future_drop(&self->b.edo_base);
	edo_future_drop(&self->a.edo_base); /* already dropped: a no-op */
}

EDO_ASYNC(two, two_frame, two_cleanup)
{
	EDO_BEGIN();
	self->a = (leaf_frame){EDO_FRAME_INIT(leaf), .g = &self->ga, .tag = 10};
	self->b = (leaf_frame){EDO_FRAME_INIT(leaf), .tag = 11};
	EDO_AWAIT(&self->a);
	EDO_AWAIT(&self->b);
	EDO_END();
}

TEST(drop_parent_with_unawaited_child)
{
	two_frame *t = calloc(1, sizeof *t);
	CHECK(t != NULL);
	*t = (two_frame){EDO_FRAME_INIT(two)};
	edo_cx cx = {edo_noop_waker()};
	CHECK_EQ(edo_future_poll(&t->edo_base, &cx), EDO_PENDING);
	edo_future_drop(&t->edo_base);
	check_log((const int[]){10, 5, 11}, 3);
	free(t);
}

/* ---- EDO_RETURN, errors --------------------------------------------------------- */

typedef struct early_frame {
	EDO_FRAME;
	int early;
	int steps;
	int cleanups;
	edo_yield_now y;
} early_frame;

static void early_cleanup(early_frame *self)
{
	self->cleanups++;
	log_cleanup(20);
}

EDO_ASYNC(early, early_frame, early_cleanup)
{
	EDO_BEGIN();
	self->steps = 1;
	self->y = (edo_yield_now)EDO_YIELD_NOW_INIT;
	EDO_AWAIT(&self->y);
	self->steps = 2;
	if (self->early)
		EDO_RETURN();
	self->steps = 3;
	EDO_YIELD();
	self->steps = 4;
	EDO_END();
}

TEST(early_return_runs_cleanup_once)
{
	early_frame e = {EDO_FRAME_INIT(early), .early = 1};
	CHECK_EQ(poll_to_end(&e.edo_base, 10), 2);
	CHECK_EQ(e.steps, 2);
	CHECK_EQ(e.cleanups, 1);
	edo_cx cx = {edo_noop_waker()};
	CHECK_EQ(edo_future_poll(&e.edo_base, &cx), EDO_READY);
	edo_future_drop(&e.edo_base);
	CHECK_EQ(e.cleanups, 1);
	CHECK_EQ(e.steps, 2);

	early_frame f = {EDO_FRAME_INIT(early), .early = 0};
	CHECK_EQ(poll_to_end(&f.edo_base, 10), 3);
	CHECK_EQ(f.steps, 4);
	CHECK_EQ(f.cleanups, 1);
	edo_future_drop(&f.edo_base);
	CHECK_EQ(f.cleanups, 1);
	check_log((const int[]){20, 20}, 2);
}

/* An error path: the child reports an error, the parent stops there. */
typedef struct parse_frame {
	EDO_FRAME;
	int fail_at; /* 0: never, 1: before any await, 2: after one */
	int flip;
	int err;
	int value;
} parse_frame;

static void parse_cleanup(parse_frame *self)
{
	(void)self;
	log_cleanup(30);
}

EDO_ASYNC(parse, parse_frame, parse_cleanup)
{
	EDO_BEGIN();
	if (self->fail_at == 1) {
		self->err = -EINVAL;
		EDO_RETURN();
	}
	EDO_AWAIT_POLL(flip_poll(&self->flip, cx));
	if (self->fail_at == 2) {
		self->err = -EIO;
		EDO_RETURN();
	}
	self->value = 42;
	EDO_END();
}

typedef struct request_frame {
	EDO_FRAME;
	int fail_at;
	parse_frame p;
	char *buf;
	int err;
	int value;
	int reached_end;
} request_frame;

static void request_cleanup(request_frame *self)
{
	log_cleanup(31);
	free(self->buf);
	self->buf = NULL;
}

EDO_ASYNC(request, request_frame, request_cleanup)
{
	EDO_BEGIN();
	self->buf = malloc(64);
	CHECK(self->buf != NULL);
	self->p = (parse_frame){EDO_FRAME_INIT(parse), .fail_at = self->fail_at};
	EDO_AWAIT(&self->p);
	if (self->p.err) {
		self->err = self->p.err;
		EDO_RETURN();
	}
	self->value = self->p.value;
	EDO_YIELD();
	self->reached_end = 1;
	EDO_END();
}

TEST(error_path)
{
	/* Fails before the child's first await: no suspension at all. */
	request_frame a = {EDO_FRAME_INIT(request), .fail_at = 1};
	CHECK_EQ(poll_to_end(&a.edo_base, 10), 1);
	CHECK_EQ(a.err, -EINVAL);
	CHECK_EQ(a.reached_end, 0);
	CHECK(a.buf == NULL);
	check_log((const int[]){30, 31}, 2);
	/* Fails after it. */
	cleanup_len = 0;
	request_frame b = {EDO_FRAME_INIT(request), .fail_at = 2};
	CHECK_EQ(poll_to_end(&b.edo_base, 10), 2);
	CHECK_EQ(b.err, -EIO);
	CHECK_EQ(b.value, 0);
	CHECK_EQ(b.reached_end, 0);
	check_log((const int[]){30, 31}, 2);
	/* Succeeds. */
	cleanup_len = 0;
	request_frame c = {EDO_FRAME_INIT(request), .fail_at = 0};
	CHECK_EQ(poll_to_end(&c.edo_base, 10), 3);
	CHECK_EQ(c.err, 0);
	CHECK_EQ(c.value, 42);
	CHECK_EQ(c.reached_end, 1);
	check_log((const int[]){30, 31}, 2);
	edo_future_drop(&a.edo_base);
	edo_future_drop(&b.edo_base);
	edo_future_drop(&c.edo_base);
	CHECK_EQ(cleanup_len, 2);
}

/* ---- awaits inside switch, loops and nested blocks -------------------------------- */

typedef struct sw_frame {
	EDO_FRAME;
	int i, j, k;
	int flip;
	edo_yield_now y;
	int trace[128];
	int nt;
} sw_frame;

#define TRACE(v)                                                                                   \
	do {                                                                                       \
		CHECK_LT(self->nt, 128);                                                           \
		self->trace[self->nt++] = (v);                                                     \
	} while (0)

EDO_ASYNC(switcher, sw_frame, NULL)
{
	EDO_BEGIN();
	for (self->i = 0; self->i < 6; self->i++) {
		switch (self->i % 3) {
		case 0:
			TRACE(100 + self->i);
			EDO_YIELD();
			TRACE(200 + self->i);
			break;
		case 1:
			self->y = (edo_yield_now)EDO_YIELD_NOW_INIT;
			EDO_AWAIT(&self->y);
			TRACE(300 + self->i);
			break;
		default:
			self->j = 0;
			while (self->j < 2) {
				EDO_AWAIT_POLL(flip_poll(&self->flip, cx));
				TRACE(400 + self->i * 10 + self->j);
				self->j++;
			}
			do {
				self->k++;
				if (self->k % 2)
					continue; /* a continue inside the loop body */
				EDO_YIELD();
			} while (self->k < 4);
			TRACE(500 + self->i);
			break;
		}
	}
	TRACE(999);
	EDO_END();
}

TEST(awaits_inside_switch_and_loops)
{
	sw_frame *s = calloc(1, sizeof *s);
	CHECK(s != NULL);
	*s = (sw_frame){EDO_FRAME_INIT(switcher)};
	/* Suspensions per round of three: 1 yield, 1 yield_now, 2 flips, then
	 * the do-while: yields at k = 2 and 4 in the first round; in the second
	 * k = 5 is odd, and its continue goes to the test, which ends the loop. */
	int polls = poll_to_end(&s->edo_base, 100);
	static const int want[] = {100, 200, 301, 420, 421, 502, 103, 203, 304, 450, 451, 505, 999};
	CHECK_EQ(s->nt, (int)(sizeof want / sizeof want[0]));
	for (int i = 0; i < s->nt; i++)
		CHECK_EQ(s->trace[i], want[i]);
	CHECK_EQ(polls, 1 + (1 + 1 + 2 + 2) + (1 + 1 + 2 + 0));
	free(s);
}

/* ---- an empty slot, a body without awaits ---------------------------------------- */

typedef struct empty_frame {
	EDO_FRAME;
	edo_future empty;
	edo_yield_now y;
	int done;
} empty_frame;

EDO_ASYNC(empty_awaiter, empty_frame, NULL)
{
	EDO_BEGIN();
	EDO_AWAIT(&self->empty); /* zeroed: completes at once */
	self->y = (edo_yield_now)EDO_YIELD_NOW_INIT;
	edo_future_drop(&self->y.base); /* emptied by a drop: also at once */
	EDO_AWAIT(&self->y);
	self->done = 1;
	EDO_END();
}

typedef struct plain_frame {
	EDO_FRAME;
	int a, b, sum;
} plain_frame;

EDO_ASYNC(no_awaits, plain_frame, NULL)
{
	EDO_BEGIN();
	self->sum = self->a + self->b;
	EDO_END();
}

TEST(await_empty_slot_and_no_awaits)
{
	atomic_int wakes = 0;
	edo_waker w = {&cw_vt, &wakes};
	edo_cx cx = {&w};
	empty_frame e = {EDO_FRAME_INIT(empty_awaiter)};
	CHECK_EQ(edo_future_poll(&e.edo_base, &cx), EDO_READY);
	CHECK_EQ(e.done, 1);
	CHECK_EQ(atomic_load(&wakes), 0);
	plain_frame p = {EDO_FRAME_INIT(no_awaits), .a = 2, .b = 3};
	CHECK_EQ(edo_future_poll(&p.edo_base, &cx), EDO_READY);
	CHECK_EQ(p.sum, 5);
	CHECK(p.edo_as.finished);
}

/* ---- EDO_ASYNC_DECL / EDO_ASYNC_PUBLIC -------------------------------------------- */

typedef struct pub_frame {
	EDO_FRAME;
	int in, out;
	int *cleanups;
	const char *name;
} pub_frame;

/* Declared here (as a header would), defined below with external linkage. */
EDO_ASYNC_DECL(edo_test_pub_coro, pub_frame);

typedef struct pub_main_frame {
	EDO_FRAME;
	edo_join *h;
	int rc;
	int cleanups;
	pub_frame out;
	pub_frame inline_child;
} pub_main_frame;

EDO_ASYNC(pub_main, pub_main_frame, NULL)
{
	EDO_BEGIN();
	/* As a task, through EDO_SPAWN (which names it after the coroutine). */
	CHECK_EQ(EDO_SPAWN(&self->h, edo_test_pub_coro, .in = 20, .cleanups = &self->cleanups), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	self->out = *EDO_JOIN_OUTPUT(self->h, edo_test_pub_coro);
	edo_join_detach(self->h);
	/* As a child awaited inline. */
	self->inline_child = (edo_test_pub_coro_frame){EDO_FRAME_INIT(edo_test_pub_coro), .in = 1,
						       .cleanups = &self->cleanups};
	EDO_AWAIT(&self->inline_child);
	EDO_END();
}

TEST(async_public_and_decl)
{
	edo_runtime *rt = NULL;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	pub_main_frame m = {EDO_FRAME_INIT(pub_main)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
	CHECK_EQ(m.out.out, 40);
	CHECK_STREQ(m.out.name, "edo_test_pub_coro");
	CHECK_EQ(m.inline_child.out, 2);
	CHECK(m.inline_child.name == NULL); /* not a task: no task name */
	CHECK_EQ(m.cleanups, 2);
	/* The vtable and the poll function are usable directly. */
	CHECK(edo_test_pub_coro_vt.poll != NULL);
	pub_frame f = {EDO_FRAME_INIT(edo_test_pub_coro), .in = 5};
	edo_cx cx = {edo_noop_waker()};
	CHECK_EQ(edo_test_pub_coro(&f, &cx), EDO_PENDING);
	CHECK_EQ(edo_test_pub_coro(&f, &cx), EDO_READY);
	CHECK_EQ(f.out, 10);
}

static void pub_cleanup(pub_frame *self)
{
	if (self->cleanups)
		(*self->cleanups)++;
}

EDO_ASYNC_PUBLIC(edo_test_pub_coro, pub_frame, pub_cleanup)
{
	EDO_BEGIN();
	self->name = edo_task_name();
	EDO_YIELD();
	self->out = self->in * 2;
	EDO_END();
}

/* ---- coroutine trees as tasks: abort and shutdown -------------------------------- */

typedef struct tree_main_frame {
	EDO_FRAME;
	gate *g;
	int shutdown; /* leave it pending for edo_runtime_free */
	edo_join *h;
	int rc;
} tree_main_frame;

EDO_ASYNC(tree_main, tree_main_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->h, top, .g = self->g), 0);
	while (self->g->w.vt == NULL)
		EDO_YIELD();
	CHECK_EQ(cleanup_len, 0);
	if (self->shutdown) {
		edo_join_detach(self->h);
		EDO_RETURN();
	}
	edo_join_abort(self->h);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, -ECANCELED);
	check_log((const int[]){1, 2, 3}, 3);
	edo_join_detach(self->h);
	EDO_END();
}

TEST(cancel_task_drops_coroutine_tree)
{
	for (int shutdown = 0; shutdown < 2; shutdown++) {
		cleanup_len = 0;
		gate g = {0};
		edo_runtime *rt = NULL;
		CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
		tree_main_frame m = {EDO_FRAME_INIT(tree_main), .g = &g, .shutdown = shutdown};
		CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
		CHECK_EQ(cleanup_len, shutdown ? 0 : 3);
		CHECK_EQ(edo_runtime_free(rt), 0);
		/* Each cleanup exactly once, children first; the leaf dropped
		 * the waker it had registered. */
		check_log((const int[]){1, 2, 3}, 3);
		CHECK(g.w.vt == NULL);
	}
}

TEST_MAIN()
