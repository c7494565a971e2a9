/* mini-redis — the key space (see db.h). */
#include "db.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Keys deleted per purge pass before the task yields to the others. */
#define PURGE_BATCH 4096

struct db_shard {
	pthread_mutex_t lock;
	db_entry **buckets;
	size_t mask; /* buckets - 1 */
	size_t count;
	db_entry **heap; /* min-heap on expires */
	size_t heap_len, heap_cap;
} __attribute__((aligned(64)));

struct db {
	db_shard shards[DB_SHARDS];
	bool threaded;
	uint64_t seed;
	/* The deadline the purge task sleeps towards; a sooner one wakes it. */
	_Atomic(edo_instant) next_expiry;
	_Atomic(bool) stopping;
	edo_notify purge_wake;
};

/* ---- hashing ------------------------------------------------------------------------------ */

static uint64_t mix(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* A multiply-mix hash over 8-byte words, seeded at random per process so that
 * which keys collide cannot be chosen from outside.  Not a keyed MAC like
 * Redis's SipHash: good enough for an example, cheap on short keys. */
uint64_t db_hash(const db *d, const char *key, size_t klen)
{
	const uint64_t p0 = 0xa0761d6478bd642fULL, p1 = 0xe7037ed1a0b428dbULL;
	uint64_t h = d->seed ^ (klen * p0);
	size_t i = 0;
	for (; i + 8 <= klen; i += 8) {
		uint64_t w;
		memcpy(&w, key + i, 8);
		h = mix(h ^ w, p1);
	}
	uint64_t w = 0;
	memcpy(&w, key + i, klen - i);
	h = mix(h ^ w ^ ((uint64_t)(klen - i) << 59), p0);
	return mix(h, p1);
}

unsigned db_shard_index(uint64_t hash)
{
	return (unsigned)(hash >> 58) % DB_SHARDS; /* the top bits; buckets use the low ones */
}

db_shard *db_shard_at(db *d, unsigned index)
{
	return &d->shards[index];
}

db_shard *db_shard_of(db *d, uint64_t hash)
{
	return &d->shards[db_shard_index(hash)];
}

void db_lock(db *d, db_shard *s)
{
	if (d->threaded)
		pthread_mutex_lock(&s->lock);
}

void db_unlock(db *d, db_shard *s)
{
	if (d->threaded)
		pthread_mutex_unlock(&s->lock);
}

/* ---- the expiry heap --------------------------------------------------------------------- */

static void heap_place(db_shard *s, size_t i, db_entry *e)
{
	s->heap[i] = e;
	e->heap_idx = (uint32_t)i;
}

static void heap_up(db_shard *s, size_t i)
{
	db_entry *e = s->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (s->heap[parent]->expires <= e->expires)
			break;
		heap_place(s, i, s->heap[parent]);
		i = parent;
	}
	heap_place(s, i, e);
}

static void heap_down(db_shard *s, size_t i)
{
	db_entry *e = s->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= s->heap_len)
			break;
		if (c + 1 < s->heap_len && s->heap[c + 1]->expires < s->heap[c]->expires)
			c++;
		if (e->expires <= s->heap[c]->expires)
			break;
		heap_place(s, i, s->heap[c]);
		i = c;
	}
	heap_place(s, i, e);
}

static void heap_remove(db_shard *s, db_entry *e)
{
	size_t i = e->heap_idx;
	db_entry *last = s->heap[--s->heap_len];
	if (last != e) {
		heap_place(s, i, last);
		heap_up(s, i);
		heap_down(s, last->heap_idx);
	}
}

static int heap_add(db_shard *s, db_entry *e)
{
	if (s->heap_len == s->heap_cap) {
		size_t cap = s->heap_cap ? s->heap_cap * 2 : 16;
		db_entry **h = realloc(s->heap, cap * sizeof *h);
		if (!h)
			return -ENOMEM;
		s->heap = h;
		s->heap_cap = cap;
	}
	heap_place(s, s->heap_len++, e);
	heap_up(s, s->heap_len - 1);
	return 0;
}

/* ---- the table ------------------------------------------------------------------------------ */

int db_new(bool threaded, db **out)
{
	db *d = aligned_alloc(64, sizeof *d);
	if (!d)
		return -ENOMEM;
	memset(d, 0, sizeof *d);
	d->threaded = threaded;
	if (getrandom(&d->seed, sizeof d->seed, GRND_NONBLOCK) != sizeof d->seed)
		d->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uintptr_t)d;
	atomic_init(&d->next_expiry, UINT64_MAX);
	atomic_init(&d->stopping, false);
	edo_notify_init(&d->purge_wake);
	/* Adaptive: a thread that finds the lock taken spins a little before it
	 * sleeps, which suits critical sections of a few hundred nanoseconds. */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	for (unsigned i = 0; i < DB_SHARDS; i++) {
		db_shard *s = &d->shards[i];
		pthread_mutex_init(&s->lock, &attr);
		s->buckets = calloc(16, sizeof *s->buckets);
		if (!s->buckets) {
			pthread_mutexattr_destroy(&attr);
			db_free(d);
			return -ENOMEM;
		}
		s->mask = 15;
	}
	pthread_mutexattr_destroy(&attr);
	*out = d;
	return 0;
}

static void free_entry(db_entry *e)
{
	free(e->val);
	free(e);
}

static void shard_clear(db_shard *s)
{
	for (size_t b = 0; s->buckets && b <= s->mask; b++) {
		for (db_entry *e = s->buckets[b], *next; e; e = next) {
			next = e->next;
			free_entry(e);
		}
		s->buckets[b] = NULL;
	}
	s->count = 0;
	s->heap_len = 0;
}

void db_free(db *d)
{
	if (!d)
		return;
	for (unsigned i = 0; i < DB_SHARDS; i++) {
		db_shard *s = &d->shards[i];
		shard_clear(s);
		free(s->buckets);
		free(s->heap);
		pthread_mutex_destroy(&s->lock);
	}
	free(d);
}

static bool expired(db_entry *e, edo_instant *now)
{
	return e->expires && e->expires <= db_now(now);
}

db_entry *db_find(db *d, db_shard *s, uint64_t hash, const char *key, size_t klen, edo_instant *now)
{
	for (db_entry *e = s->buckets[hash & s->mask]; e; e = e->next) {
		if (e->hash == hash && e->klen == klen && memcmp(e->key, key, klen) == 0) {
			if (expired(e, now)) {
				db_delete(d, s, e);
				return NULL;
			}
			return e;
		}
	}
	return NULL;
}

/* Doubles the bucket array; on ENOMEM the table just stays denser. */
static void grow(db_shard *s)
{
	size_t n = (s->mask + 1) * 2;
	db_entry **b = calloc(n, sizeof *b);
	if (!b)
		return;
	for (size_t i = 0; i <= s->mask; i++) {
		for (db_entry *e = s->buckets[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->mask = n - 1;
}

int db_set_value(db_entry *e, const char *val, size_t vlen)
{
	if (vlen > UINT32_MAX)
		return -ENOMEM;
	if (vlen > e->vcap || (e->vcap > 256 && vlen < e->vcap / 4)) {
		/* At least 1 byte, so a value is never a NULL pointer. */
		char *v = malloc(vlen ? vlen : 1);
		if (!v)
			return -ENOMEM;
		free(e->val);
		e->val = v;
		e->vcap = (uint32_t)(vlen ? vlen : 1);
	}
	memcpy(e->val, val, vlen);
	e->vlen = (uint32_t)vlen;
	return 0;
}

db_entry *db_insert(db *d, db_shard *s, uint64_t hash, const char *key, size_t klen,
		    const char *val, size_t vlen)
{
	if (klen > UINT32_MAX)
		return NULL;
	db_entry *e = calloc(1, sizeof *e + klen);
	if (!e)
		return NULL;
	e->hash = hash;
	e->klen = (uint32_t)klen;
	memcpy(e->key, key, klen);
	if (db_set_value(e, val, vlen) < 0) {
		free(e);
		return NULL;
	}
	if (s->count > s->mask)
		grow(s);
	e->next = s->buckets[hash & s->mask];
	s->buckets[hash & s->mask] = e;
	s->count++;
	return e;
}

void db_delete(db *d, db_shard *s, db_entry *e)
{
	(void)d;
	db_entry **pp = &s->buckets[e->hash & s->mask];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	if (e->expires)
		heap_remove(s, e);
	s->count--;
	free_entry(e);
}

void db_set_expiry(db *d, db_shard *s, db_entry *e, edo_instant when)
{
	if (e->expires && when) {
		edo_instant old = e->expires;
		e->expires = when;
		if (when < old)
			heap_up(s, e->heap_idx);
		else
			heap_down(s, e->heap_idx);
	} else if (e->expires) {
		heap_remove(s, e);
		e->expires = 0;
	} else if (when) {
		e->expires = when;
		if (heap_add(s, e) < 0) {
			/* No room to track it: expire it now rather than never. */
			e->expires = 0;
			db_delete(d, s, e);
			return;
		}
	}
	if (when && when < atomic_load_explicit(&d->next_expiry, memory_order_acquire)) {
		atomic_store_explicit(&d->next_expiry, when, memory_order_release);
		edo_notify_one(&d->purge_wake);
	}
}

size_t db_size(db *d)
{
	size_t n = 0;
	for (unsigned i = 0; i < DB_SHARDS; i++) {
		db_lock(d, &d->shards[i]);
		n += d->shards[i].count;
		db_unlock(d, &d->shards[i]);
	}
	return n;
}

void db_flush(db *d)
{
	for (unsigned i = 0; i < DB_SHARDS; i++) {
		db_lock(d, &d->shards[i]);
		shard_clear(&d->shards[i]);
		db_unlock(d, &d->shards[i]);
	}
}

/* ---- the purge task ------------------------------------------------------------------------ */

/* Deletes up to PURGE_BATCH expired keys; *more if it stopped early.  Returns
 * the earliest deadline left (UINT64_MAX: none). */
static edo_instant purge_pass(db *d, bool *more)
{
	edo_instant now = edo_instant_now(), next = UINT64_MAX;
	size_t budget = PURGE_BATCH;
	/* Any deadline set while this pass runs wakes the task for another pass:
	 * the pass may have looked at that key's shard already. */
	atomic_store_explicit(&d->next_expiry, UINT64_MAX, memory_order_release);
	*more = false;
	for (unsigned i = 0; i < DB_SHARDS; i++) {
		db_shard *s = &d->shards[i];
		db_lock(d, s);
		while (s->heap_len && s->heap[0]->expires <= now && budget) {
			db_delete(d, s, s->heap[0]);
			budget--;
		}
		if (s->heap_len && s->heap[0]->expires < next)
			next = s->heap[0]->expires;
		db_unlock(d, s);
	}
	*more = budget == 0;
	atomic_store_explicit(&d->next_expiry, next, memory_order_release);
	return next;
}

EDO_ASYNC_PUBLIC(db_purge, db_purge_frame, NULL)
{
	EDO_BEGIN();
	while (!atomic_load(&self->d->stopping)) {
		self->next = purge_pass(self->d, &self->more);
		if (self->more) {
			EDO_YIELD();
			continue;
		}
		edo_notify_notified(&self->wake, &self->d->purge_wake);
		if (self->next == UINT64_MAX) {
			EDO_AWAIT(&self->wake);
		} else {
			edo_timeout_at_init(&self->to, &self->wake.base, self->next);
			EDO_AWAIT(&self->to);
			edo_future_drop(&self->wake.base);
		}
	}
	EDO_END();
}

void db_purge_stop(db *d)
{
	atomic_store(&d->stopping, true);
	edo_notify_one(&d->purge_wake);
}
