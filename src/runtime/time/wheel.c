/* The timer wheel of one parker (Tokio's wheel, one per parking thread).
 *
 * Geometry: 6 levels x 64 slots, one tick = 1 ms.  A slot of level L spans
 * 64^L ticks; level L spans 64^(L+1):
 *
 *   level 0: 64 x 1 ms      (64 ms)       level 3: 64 x 4.4 min (4.7 h)
 *   level 1: 64 x 64 ms     (4.1 s)       level 4: 64 x 4.7 h   (12.4 days)
 *   level 2: 64 x 4.1 s     (4.4 min)     level 5: 64 x 12.4 d  (2.2 years)
 *
 * An entry due at tick `when` goes to level level_for(elapsed, when): the
 * highest 6-bit group in which `when` and `elapsed` differ.  So level-0
 * entries are in the current 64 ms block, level-1 entries in the current
 * 4 s block but a later 64 ms one, and so on; each level keeps a 64-bit
 * `occupied` mask, and the next expiry is found with a rotate and a count of
 * trailing zeros.  When `elapsed` reaches the start of an occupied slot of
 * level L > 0, the slot's entries cascade to lower levels; a level-0 slot's
 * entries move to the pending list and fire.  Entries further than 2^36 ms
 * away (up to "never") sit in the top level, which acts as a ring: each is
 * filed by the slot bits of its tick, comes up once a lap, and is re-filed
 * until its lap comes (level_next says in which order the slots come up).
 *
 * Entries are the edo_sleep futures themselves (intrusive, no allocation).
 * The state word of an entry:
 *
 *   UNREGISTERED ──poll──▶ tick T (in a slot)  ──slot expires, T <= now──▶ PENDING_FIRE
 *        ▲                  │  ▲ extend: CAS T→T' > T, no lock                   │ fire
 *        │ reset/cancel     │  └ slot expires, T' > now: re-filed at T'           ▼
 *        └──────────────────┴──────────────────────────────────────────────── FIRED
 *
 * Everything except the extension happens under the wheel's lock.  Moving
 * a deadline later only CASes the state word: the entry stays in its old
 * slot (`when_`), and when that slot comes up, the wheel sees the later
 * deadline and re-files it (Tokio's lazy re-file).  The firing thread copies
 * the waker out and publishes FIRED last (release): the owner may free the
 * entry as soon as it sees FIRED (acquire), without the lock.  The waker
 * slot of an entry holds a reference only while it is registered; after
 * FIRED it is stale and ignored.  Wakers are called in batches of 32,
 * outside the lock.
 *
 * next_wake: the tick by which the owner will look at the wheel again: the
 * next expiry while it is parked, 0 while it is awake (it looks before it
 * parks).  A registration from another thread that is earlier than
 * next_wake lowers it and unparks the owner, which recomputes its timeout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "edo/error.h"
#include "runtime/driver.h"
#include "runtime/time/time.h"

#define LEVEL_BITS 6
#define SLOT_MASK ((uint64_t)EDO__WHEEL_SLOTS - 1)
/* The furthest a level can place an entry; further ones ride the top level. */
#define MAX_DURATION (((uint64_t)1 << (LEVEL_BITS * EDO__WHEEL_LEVELS)) - 1)
#define WHEN_PENDING UINT64_MAX /* when_ of an entry on the pending list */
#define WAKE_BATCH 32

static inline uint64_t state_load(const edo_sleep *s)
{
	return __atomic_load_n(&s->state_, __ATOMIC_ACQUIRE);
}

static inline void state_store(edo_sleep *s, uint64_t v)
{
	__atomic_store_n(&s->state_, v, __ATOMIC_RELEASE);
}

/* ---- lists ------------------------------------------------------------------------- */

static void list_push(edo_sleep **head, edo_sleep *e)
{
	e->prev_ = NULL;
	e->next_ = *head;
	if (*head)
		(*head)->prev_ = e;
	*head = e;
}

static void list_remove(edo_sleep **head, edo_sleep *e)
{
	if (e->prev_)
		e->prev_->next_ = e->next_;
	else
		*head = e->next_;
	if (e->next_)
		e->next_->prev_ = e->prev_;
	e->prev_ = e->next_ = NULL;
}

/* ---- levels ------------------------------------------------------------------------ */

static inline uint64_t slot_range(unsigned level)
{
	return (uint64_t)1 << (LEVEL_BITS * level);
}

static inline uint64_t level_range(unsigned level)
{
	return (uint64_t)1 << (LEVEL_BITS * (level + 1));
}

static inline unsigned slot_for(uint64_t when, unsigned level)
{
	return (unsigned)((when >> (LEVEL_BITS * level)) & SLOT_MASK);
}

static unsigned level_for(uint64_t elapsed, uint64_t when)
{
	uint64_t masked = (elapsed ^ when) | SLOT_MASK;
	if (masked >= MAX_DURATION)
		masked = MAX_DURATION - 1;
	unsigned significant = 63u - (unsigned)__builtin_clzll(masked);
	return significant / LEVEL_BITS;
}

static void level_add(edo__time *t, edo_sleep *e)
{
	unsigned level = level_for(t->elapsed, e->when_);
	edo__wheel_level *l = &t->levels[level];
	unsigned slot = slot_for(e->when_, level);
	list_push(&l->slot[slot], e);
	l->occupied |= (uint64_t)1 << slot;
}

typedef struct expiration {
	unsigned level, slot;
	uint64_t deadline; /* the tick at which the slot starts */
} expiration;

/* The next occupied slot of @level to process, seen from @now (the wheel's
 * elapsed), and the tick it starts at (after now).
 *
 * Below the top, every entry lies in a later slot of now's block of the
 * level (level_for), so the search starts at now's slot, which is empty.
 *
 * The top level is a ring: it also holds the entries beyond the wheel's
 * range (more than 2^36 ticks away, up to "never"), each filed by the slot
 * bits of its own tick.  One that comes back to the slot now stands in:
 * that slot's start has passed, so it is due a lap later, after every other
 * slot.  The search there starts at the slot after now's and wraps round
 * to now's own slot last.  (Tokio's next_occupied_slot starts at now's slot
 * at every level.  A far entry re-filed into the top-level slot being
 * processed is then the "next" expiry, a lap away, ahead of the next slots:
 * their timers fired up to 2.2 years late, elapsed passed their slots'
 * starts unprocessed, and wheel_remove then looked for their entries at the
 * wrong level, leaving them linked after they were freed.)  Now's own slot
 * holds no entry of this lap: one filed there while the wheel stood in an
 * earlier slot was cascaded when the slot started, and one filed since
 * differs from now only below the top level's bits, so it goes lower. */
static bool level_next(const edo__wheel_level *l, unsigned level, uint64_t now, expiration *out)
{
	if (!l->occupied)
		return false;
	unsigned start = slot_for(now, level);
	if (level == EDO__WHEEL_LEVELS - 1)
		start = (start + 1) & (unsigned)SLOT_MASK; /* now's own slot last */
	uint64_t rotated =
		start ? (l->occupied >> start) | (l->occupied << (64 - start)) : l->occupied;
	unsigned slot = ((unsigned)__builtin_ctzll(rotated) + start) & (unsigned)SLOT_MASK;
	uint64_t deadline = (now & ~(level_range(level) - 1)) + slot * slot_range(level);
	if (deadline <= now) {
		/* Only the top level wraps: a slot at or before now's is next
		 * lap's.  (now is a clock tick, below 2^45: no overflow.) */
		deadline += level_range(level);
	}
	*out = (expiration){level, slot, deadline};
	return true;
}

static bool next_expiration(const edo__time *t, expiration *out)
{
	if (t->pending) {
		*out = (expiration){0, 0, t->elapsed};
		return true;
	}
	for (unsigned level = 0; level < EDO__WHEEL_LEVELS; level++)
		if (level_next(&t->levels[level], level, t->elapsed, out))
			return true;
	return false;
}

/* The lowest tick an entry of the top level is filed at (a lower bound on
 * its deadline: a lazily extended one is later).  Walks every entry there;
 * only the paused clock's auto-advance asks, and only when the next expiry
 * is a top-level slot. */
static uint64_t top_level_min_when(const edo__time *t)
{
	const edo__wheel_level *l = &t->levels[EDO__WHEEL_LEVELS - 1];
	uint64_t min = UINT64_MAX;
	for (uint64_t occ = l->occupied; occ; occ &= occ - 1)
		for (const edo_sleep *e = l->slot[__builtin_ctzll(occ)]; e; e = e->next_)
			if (e->when_ < min)
				min = e->when_;
	return min;
}

/* ---- the wheel --------------------------------------------------------------------- */

static void set_earliest(edo__time *t, uint64_t tick)
{
	atomic_store_explicit(&t->earliest, tick, memory_order_relaxed);
}

/* File @e (state: its tick @when > elapsed). */
static void wheel_insert(edo__time *t, edo_sleep *e, uint64_t when)
{
	e->when_ = when;
	level_add(t, e);
	t->len++;
	if (when < atomic_load_explicit(&t->earliest, memory_order_relaxed))
		set_earliest(t, when);
}

/* Unlink @e from slot @slot of @l. */
static void slot_remove(edo__wheel_level *l, unsigned slot, edo_sleep *e)
{
	list_remove(&l->slot[slot], e);
	if (!l->slot[slot])
		l->occupied &= ~((uint64_t)1 << slot);
}

/* An entry has left the wheel. */
static void len_dec(edo__time *t)
{
	/* `earliest` stays a lower bound; exact again once empty. */
	if (--t->len == 0)
		set_earliest(t, UINT64_MAX);
}

static void wheel_remove(edo__time *t, edo_sleep *e)
{
	if (e->when_ == WHEN_PENDING) {
		list_remove(&t->pending, e);
	} else {
		/* Still at the level it was filed at: elapsed has not reached
		 * the start of its slot, or the slot would have been processed
		 * (level_next finds every slot by the time it starts). */
		unsigned level = level_for(t->elapsed, e->when_);
		slot_remove(&t->levels[level], slot_for(e->when_, level), e);
	}
	len_dec(t);
}

/* A slot's time has come: its entries that are due move to the pending
 * list, the others (later levels' entries, extended deadlines) re-file. */
static void process_expiration(edo__time *t, const expiration *exp)
{
	edo__wheel_level *l = &t->levels[exp->level];
	edo_sleep *e = l->slot[exp->slot];
	l->slot[exp->slot] = NULL;
	l->occupied &= ~((uint64_t)1 << exp->slot);
	/* Filing below uses the new elapsed. */
	t->elapsed = exp->deadline;
	while (e) {
		edo_sleep *next = e->next_;
		uint64_t cur = __atomic_load_n(&e->state_, __ATOMIC_RELAXED);
		/* Only the owner's extension (a later tick) races with us. */
		while (cur <= exp->deadline &&
		       !__atomic_compare_exchange_n(&e->state_, &cur, EDO__TIMER_PENDING_FIRE,
						    false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			;
		if (cur <= exp->deadline) {
			e->when_ = WHEN_PENDING;
			list_push(&t->pending, e);
		} else {
			e->when_ = cur;
			level_add(t, e);
		}
		e = next;
	}
}

/* The next entry to fire at @now, removed from the wheel, or NULL.
 * Entries fire in tick order: a tick's pending entries all go before the
 * next slot is looked at. */
static edo_sleep *wheel_poll(edo__time *t, uint64_t now)
{
	for (;;) {
		if (t->pending) {
			edo_sleep *e = t->pending;
			list_remove(&t->pending, e);
			t->len--; /* `earliest` is set when the poll ends */
			return e;
		}
		expiration exp;
		bool any = next_expiration(t, &exp);
		if (!any || exp.deadline > now) {
			if (now > t->elapsed)
				t->elapsed = now;
			set_earliest(t, any ? exp.deadline : UINT64_MAX);
			return NULL;
		}
		process_expiration(t, &exp);
	}
}

/* Fire @e (removed from the wheel) with @result: copy its waker out, then
 * publish FIRED. */
static edo_waker fire(edo_sleep *e, int result)
{
	edo_waker w = e->waker_;
	e->result = result;
	state_store(e, EDO__TIMER_FIRED);
	return w;
}

static void wake_all(edo_waker *batch, size_t n)
{
	for (size_t i = 0; i < n; i++)
		edo_waker_wake(batch[i]);
}

/* ---- life -------------------------------------------------------------------------- */

int edo__time_new(edo__time **out, edo__clock *clock, edo__parker *p)
{
	edo__time *t = aligned_alloc(64, (sizeof *t + 63) & ~(size_t)63);
	if (!t)
		return -ENOMEM;
	memset(t, 0, sizeof *t);
	pthread_mutex_init(&t->lock, NULL);
	t->clock = clock;
	t->parker = p;
	t->elapsed = edo__clock_tick_floor(clock, edo__clock_now(clock));
	atomic_init(&t->earliest, UINT64_MAX);
	pthread_mutex_lock(&clock->lock);
	t->clock_next = clock->wheels;
	if (clock->wheels)
		clock->wheels->clock_prev = t;
	clock->wheels = t;
	pthread_mutex_unlock(&clock->lock);
	*out = t;
	return 0;
}

/* Take any one entry out of the wheel, or NULL when it is empty. */
static edo_sleep *take_any(edo__time *t)
{
	if (t->pending) {
		edo_sleep *e = t->pending;
		wheel_remove(t, e);
		return e;
	}
	for (unsigned level = 0; level < EDO__WHEEL_LEVELS; level++) {
		edo__wheel_level *l = &t->levels[level];
		if (l->occupied) {
			/* Unlinked from where it was found, not where its tick
			 * says: each call takes one entry out, so shutdown ends. */
			unsigned slot = (unsigned)__builtin_ctzll(l->occupied);
			edo_sleep *e = l->slot[slot];
			slot_remove(l, slot, e);
			len_dec(t);
			return e;
		}
	}
	return NULL;
}

void edo__time_shutdown(edo__time *t)
{
	pthread_mutex_lock(&t->lock);
	bool first = !t->shutdown;
	t->shutdown = true;
	pthread_mutex_unlock(&t->lock);
	if (first) {
		edo__clock *c = t->clock;
		pthread_mutex_lock(&c->lock);
		if (t->clock_prev)
			t->clock_prev->clock_next = t->clock_next;
		else
			c->wheels = t->clock_next;
		if (t->clock_next)
			t->clock_next->clock_prev = t->clock_prev;
		pthread_mutex_unlock(&c->lock);
	}
	for (;;) {
		edo_waker batch[WAKE_BATCH];
		size_t n = 0;
		pthread_mutex_lock(&t->lock);
		edo_sleep *e;
		while (n < WAKE_BATCH && (e = take_any(t)))
			batch[n++] = fire(e, EDO_ESHUTDOWN);
		pthread_mutex_unlock(&t->lock);
		if (!n)
			return;
		wake_all(batch, n);
	}
}

void edo__time_free(edo__time *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t);
}

size_t edo__time_len(edo__time *t)
{
	pthread_mutex_lock(&t->lock);
	size_t n = t->len;
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* ---- parking ----------------------------------------------------------------------- */

int64_t edo__time_park_timeout(edo__time *t, int64_t timeout_ns, bool *auto_advance)
{
	*auto_advance = false;
	if (timeout_ns == 0)
		return 0;
	expiration exp;
	pthread_mutex_lock(&t->lock);
	bool any = next_expiration(t, &exp);
	t->next_wake = any ? exp.deadline : UINT64_MAX;
	/* The earliest tick an entry of the top level is filed at: when the
	 * next expiry is there, a paused clock may have nothing it can reach
	 * (every entry "never"), though the slot itself is reachable. */
	uint64_t top_min = UINT64_MAX;
	if (any && exp.level == EDO__WHEEL_LEVELS - 1 &&
	    atomic_load_explicit(&t->clock->controlled, memory_order_relaxed))
		top_min = top_level_min_when(t);
	pthread_mutex_unlock(&t->lock);
	t->parked = true;
	if (!any)
		return timeout_ns;
	edo__clock *c = t->clock;
	if (edo__clock_is_paused(c)) {
		/* Real time does not move a paused clock: either jump to the
		 * expiry when the runtime is idle, or wait for an advance (or
		 * for the blocking jobs in flight, which unpark when done). */
		if (!c->auto_advance || atomic_load_explicit(&c->inhibit, memory_order_acquire))
			return timeout_ns;
		/* Deadlines the clock cannot show ("never"): nothing to jump to,
		 * not even the cascade points on the way. */
		uint64_t reachable = (EDO__CLOCK_MAX - c->base) / EDO__NS_PER_TICK;
		if (exp.deadline > reachable || (top_min != UINT64_MAX && top_min > reachable))
			return timeout_ns;
		t->advance_to = exp.deadline;
		*auto_advance = true;
		return 0;
	}
	if (exp.deadline > (UINT64_MAX - c->base) / EDO__NS_PER_TICK)
		return timeout_ns;
	uint64_t deadline = c->base + exp.deadline * EDO__NS_PER_TICK;
	uint64_t now = edo__clock_now(c);
	uint64_t d = deadline > now ? deadline - now : 0;
	if (d > INT64_MAX)
		d = INT64_MAX;
	return timeout_ns < 0 || (int64_t)d < timeout_ns ? (int64_t)d : timeout_ns;
}

/* Whether the tick @e (a lower bound on the next expiry) surely lies in
 * the future: a cheap look at the coarse clock, which is behind the real
 * one.  Never true on a paused clock. */
static bool surely_future(const edo__clock *c, uint64_t e)
{
	if (e == UINT64_MAX)
		return true;
	if (atomic_load_explicit(&c->controlled, memory_order_relaxed) ||
	    e > (UINT64_MAX - c->base) / EDO__NS_PER_TICK)
		return false;
	return edo__mono_coarse_ns() + c->coarse_slack < c->base + e * EDO__NS_PER_TICK;
}

void edo__time_after_park(edo__time *t, bool advance)
{
	edo__clock *c = t->clock;
	/* After a non-blocking turn (a busy thread's maintenance, a yield),
	 * skip the lock and the precise clock when nothing can be due.  After
	 * a blocking park, always look: next_wake must go back to 0. */
	if (!t->parked && !advance &&
	    surely_future(c, atomic_load_explicit(&t->earliest, memory_order_relaxed)))
		return;
	t->parked = false;
	if (advance && t->advance_to <= (UINT64_MAX - c->base) / EDO__NS_PER_TICK)
		edo__clock_advance_to(c, c->base + t->advance_to * EDO__NS_PER_TICK);
	uint64_t now = edo__clock_tick_floor(c, edo__clock_now(c));
	edo_waker batch[WAKE_BATCH];
	size_t n = 0;
	pthread_mutex_lock(&t->lock);
	t->next_wake = 0; /* awake: it looks at the wheel before parking again */
	edo_sleep *e;
	while ((e = wheel_poll(t, now))) {
		batch[n++] = fire(e, 0);
		if (n == WAKE_BATCH) {
			pthread_mutex_unlock(&t->lock);
			wake_all(batch, n);
			n = 0;
			pthread_mutex_lock(&t->lock);
		}
	}
	pthread_mutex_unlock(&t->lock);
	wake_all(batch, n);
}

/* ---- entries (sleep.c) ---------------------------------------------------------------- */

/* The deadline instant → the tick it is due at, rounded up (never early). */
static uint64_t deadline_tick(const edo__clock *c, edo_instant d)
{
	if (d <= c->base)
		return 0;
	uint64_t ns = d - c->base;
	uint64_t tick = ns / EDO__NS_PER_TICK + (ns % EDO__NS_PER_TICK != 0);
	return tick > EDO__TIMER_MAX_TICK ? EDO__TIMER_MAX_TICK : tick;
}

/* Whether @deadline (due at tick @when) has passed, so that a timer
 * completes at once instead of being filed: surely if the wheel is past it,
 * or the coarse clock (behind the real one) is; near the coarse clock, only
 * the precise clock can say.  `elapsed` may lag (after_park skips updating
 * it when nothing is due), which is why it is not the only test. */
static bool is_due(edo__time *t, uint64_t when, edo_instant deadline)
{
	const edo__clock *c = t->clock;
	if (when <= t->elapsed)
		return true;
	if (atomic_load_explicit(&c->controlled, memory_order_relaxed))
		return deadline <= edo__clock_now(t->clock);
	uint64_t coarse = edo__mono_coarse_ns();
	if (deadline <= coarse)
		return true;
	return deadline <= coarse + c->coarse_slack && deadline <= edo__mono_ns();
}

/* Unpark the owner if @when comes before it would look at the wheel. */
static bool lower_next_wake(edo__time *t, uint64_t when)
{
	if (when >= t->next_wake)
		return false;
	t->next_wake = when;
	return true;
}

bool edo__time_register(edo__time *t, edo_sleep *s, const edo_waker *w)
{
	uint64_t when = deadline_tick(t->clock, s->deadline_);
	pthread_mutex_lock(&t->lock);
	if (t->shutdown || is_due(t, when, s->deadline_)) {
		s->result = t->shutdown ? EDO_ESHUTDOWN : 0;
		state_store(s, EDO__TIMER_FIRED);
		pthread_mutex_unlock(&t->lock);
		return true;
	}
	s->wheel_ = t;
	s->waker_ = edo_waker_clone(w);
	state_store(s, when);
	wheel_insert(t, s, when);
	bool unpark = lower_next_wake(t, when);
	pthread_mutex_unlock(&t->lock);
	if (unpark)
		edo__parker_unpark(t->parker);
	return false;
}

bool edo__time_set_waker(edo_sleep *s, const edo_waker *w)
{
	edo__time *t = s->wheel_;
	edo_waker old = {0};
	pthread_mutex_lock(&t->lock);
	bool fired = state_load(s) == EDO__TIMER_FIRED;
	if (!fired) {
		old = s->waker_;
		s->waker_ = edo_waker_clone(w);
	}
	pthread_mutex_unlock(&t->lock);
	edo_waker_drop(old);
	return !fired;
}

void edo__time_cancel(edo_sleep *s)
{
	edo__time *t = s->wheel_;
	edo_waker w = {0};
	pthread_mutex_lock(&t->lock);
	if (state_load(s) != EDO__TIMER_FIRED) {
		wheel_remove(t, s);
		w = s->waker_;
		state_store(s, EDO__TIMER_UNREGISTERED);
	}
	pthread_mutex_unlock(&t->lock);
	edo_waker_drop(w);
}

void edo__time_reregister(edo_sleep *s)
{
	edo__time *t = s->wheel_;
	uint64_t when = deadline_tick(t->clock, s->deadline_);
	edo_waker wake = {0};
	bool unpark = false;
	pthread_mutex_lock(&t->lock);
	if (state_load(s) == EDO__TIMER_FIRED) {
		/* It fired meanwhile (its waker was woken): the next poll
		 * registers the new deadline. */
		state_store(s, EDO__TIMER_UNREGISTERED);
		pthread_mutex_unlock(&t->lock);
		return;
	}
	wheel_remove(t, s);
	if (is_due(t, when, s->deadline_)) {
		wake = fire(s, 0);
	} else {
		state_store(s, when);
		wheel_insert(t, s, when);
		unpark = lower_next_wake(t, when);
	}
	pthread_mutex_unlock(&t->lock);
	if (unpark)
		edo__parker_unpark(t->parker);
	edo_waker_wake(wake);
}

uint64_t edo__time_deadline_tick(const edo__clock *c, edo_instant d)
{
	return deadline_tick(c, d);
}
