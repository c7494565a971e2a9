/* mini-redis — the key space: string keys to string values, with expiry.
 *
 * The keys are spread over DB_SHARDS shards by hash, each a chained hash
 * table under its own lock, so workers of a multi-thread runtime touching
 * different keys do not wait for one another.  The lock is a plain mutex,
 * not an Edo one: nothing awaits while holding it (every critical section is
 * a lookup and a copy), and an uncontended pthread mutex is two atomic
 * operations.  An async mutex is for a lock held across an await.  With a
 * current-thread runtime every task runs on one thread and the locks are
 * skipped altogether (db_new(threaded = false)).
 *
 * Expiry: each shard keeps a min-heap of its keys that have a deadline.  A
 * background task (db_purge, a coroutine) sleeps on an Edo timer until the
 * earliest deadline of all shards and deletes what has expired; setting a
 * deadline earlier than the one it sleeps towards wakes it through an
 * edo_notify.  A key found past its deadline by a lookup before the purge got
 * to it is deleted by that lookup, so no command ever sees an expired key.
 *
 * Deadlines are edo_instants (monotonic nanoseconds).
 */
#ifndef MINI_REDIS_DB_H
#define MINI_REDIS_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edo.h"

#define DB_SHARDS 64

typedef struct db db;
typedef struct db_shard db_shard;

/** One key and its value.  Read and written only under its shard's lock. */
typedef struct db_entry {
	struct db_entry *next; /* hash chain */
	uint64_t hash;
	edo_instant expires; /* 0: no deadline */
	uint32_t heap_idx;   /* place in the shard's expiry heap, when expires != 0 */
	uint32_t klen;
	uint32_t vlen, vcap;
	char *val;
	char key[];
} db_entry;

/** db_new() - an empty key space; @threaded: lock the shards.  0 or -ENOMEM. */
int db_new(bool threaded, db **out);
/** db_free() - free every key (the purge task must be gone). */
void db_free(db *d);

uint64_t db_hash(const db *d, const char *key, size_t klen);
db_shard *db_shard_of(db *d, uint64_t hash);
unsigned db_shard_index(uint64_t hash);
db_shard *db_shard_at(db *d, unsigned index);
void db_lock(db *d, db_shard *s);
void db_unlock(db *d, db_shard *s);

/* The functions below are called with the shard's lock held.  @now points at
 * the current instant, or at 0 to have it read when first needed. */

/** db_find() - the entry of @key, or NULL; an expired one is deleted first. */
db_entry *db_find(db *d, db_shard *s, uint64_t hash, const char *key, size_t klen,
		  edo_instant *now);
/** db_insert() - a new entry for @key (not present) with @val.  NULL on ENOMEM. */
db_entry *db_insert(db *d, db_shard *s, uint64_t hash, const char *key, size_t klen,
		    const char *val, size_t vlen);
/** db_set_value() - replace the value of @e (its deadline stays).  0 or -ENOMEM. */
int db_set_value(db_entry *e, const char *val, size_t vlen);
/** db_delete() - unlink and free @e. */
void db_delete(db *d, db_shard *s, db_entry *e);
/** db_set_expiry() - give @e the deadline @when (0: none), waking the purge task if sooner. */
void db_set_expiry(db *d, db_shard *s, db_entry *e, edo_instant when);

/** db_now() - *@now, reading the clock the first time. */
static inline edo_instant db_now(edo_instant *now)
{
	if (!*now)
		*now = edo_instant_now();
	return *now;
}

/** db_size() - the number of keys (some may have expired unpurged).  Takes the locks. */
size_t db_size(db *d);
/** db_flush() - delete every key.  Takes the locks. */
void db_flush(db *d);

/**
 * The purge task: spawn it with EDO_SPAWN(&h, db_purge, .d = d); stop it with
 * db_purge_stop() (it then finishes) or by aborting it.
 */
typedef struct db_purge_frame {
	EDO_FRAME;
	db *d;
	edo_instant next;
	bool more;
	edo_notified_fut wake;
	edo_timeout to;
} db_purge_frame;
EDO_ASYNC_DECL(db_purge, db_purge_frame);
void db_purge_stop(db *d);

#endif /* MINI_REDIS_DB_H */
