/* mini-redis — the commands.
 *
 * Each command reads its arguments from the client (arg(), alen()) and writes
 * its reply into c->out; none waits for anything, so none is a coroutine:
 * the connection task runs them one after another between its reads and
 * writes.  Replies and error texts are Redis's own, so that redis-cli and
 * redis-benchmark see what they expect.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "server.h"

static const char *arg(const client *c, size_t i)
{
	return c->base + c->args[i].off;
}

static size_t alen(const client *c, size_t i)
{
	return c->args[i].len;
}

/* Whether argument @i is @word, ignoring case. */
static bool is(const client *c, size_t i, const char *word)
{
	size_t n = strlen(word);
	return alen(c, i) == n && strncasecmp(arg(c, i), word, n) == 0;
}

static void err_syntax(client *c)
{
	resp_error(&c->out, "ERR syntax error");
}

static void err_not_int(client *c)
{
	resp_error(&c->out, "ERR value is not an integer or out of range");
}

static void err_oom(client *c)
{
	resp_error(&c->out, "ERR out of memory");
}

/* ---- locking the shards of several keys ---------------------------------------------------- */

/* DB_SHARDS is 64: the set of shards a command touches is one word. */
_Static_assert(DB_SHARDS == 64, "a shard set is a uint64_t");

static uint64_t shards_of(const client *c, size_t first, size_t step)
{
	uint64_t set = 0;
	for (size_t i = first; i < c->argc; i += step)
		set |= 1ULL << db_shard_index(db_hash(c->srv->db, arg(c, i), alen(c, i)));
	return set;
}

/* Locks are taken in shard order, so two multi-key commands never deadlock. */
static void lock_set(db *d, uint64_t set)
{
	for (unsigned i = 0; i < DB_SHARDS; i++)
		if (set >> i & 1)
			db_lock(d, db_shard_at(d, i));
}

static void unlock_set(db *d, uint64_t set)
{
	for (unsigned i = 0; i < DB_SHARDS; i++)
		if (set >> i & 1)
			db_unlock(d, db_shard_at(d, i));
}

/*
 * Single-key commands lock the shard of their key with lock_key().  A pipeline
 * of such commands on one shard (a client hammering one key) takes the lock
 * once: it stays held (c->held) until a command needs another shard or any
 * other lock, HOLD_MAX commands have run under it, or the batch of requests
 * ends: the connection calls client_release() before it awaits anything, so
 * a lock is never held across an await.
 */
#define HOLD_MAX 32

void client_release(client *c)
{
	if (c->held) {
		db_unlock(c->srv->db, c->held);
		c->held = NULL;
		c->held_for = 0;
	}
}

static db_shard *lock_key(client *c, uint64_t *h)
{
	db *d = c->srv->db;
	*h = db_hash(d, arg(c, 1), alen(c, 1));
	db_shard *s = db_shard_of(d, *h);
	if (c->held != s || c->held_for == HOLD_MAX) {
		client_release(c);
		db_lock(d, s);
		c->held = s;
	}
	c->held_for++;
	return s;
}

/* The entry of key argument @i (its shard locked by the caller), or NULL. */
static db_entry *lookup(client *c, size_t i, db_shard **s, uint64_t *h, edo_instant *now)
{
	db *d = c->srv->db;
	*h = db_hash(d, arg(c, i), alen(c, i));
	*s = db_shard_of(d, *h);
	return db_find(d, *s, *h, arg(c, i), alen(c, i), now);
}

/* ---- connection and server ------------------------------------------------------------------ */

static void cmd_ping(client *c)
{
	if (c->argc > 2) {
		resp_error(&c->out, "ERR wrong number of arguments for 'ping' command");
	} else if (c->nsubs) { /* subscribed: a push-style reply, as Redis */
		resp_array(&c->out, 2);
		resp_bulk(&c->out, "pong", 4);
		if (c->argc == 2)
			resp_bulk(&c->out, arg(c, 1), alen(c, 1));
		else
			resp_bulk(&c->out, "", 0);
	} else if (c->argc == 2) {
		resp_bulk(&c->out, arg(c, 1), alen(c, 1));
	} else {
		rbuf_put(&c->out, "+PONG\r\n", 7);
	}
}

static void cmd_echo(client *c)
{
	resp_bulk(&c->out, arg(c, 1), alen(c, 1));
}

static void cmd_quit(client *c)
{
	resp_simple(&c->out, "OK");
	c->quit = true;
}

static void cmd_select(client *c)
{
	long long n;
	if (!resp_parse_ll(arg(c, 1), alen(c, 1), &n))
		err_not_int(c);
	else if (n != 0)
		resp_error(&c->out, "ERR DB index is out of range");
	else
		resp_simple(&c->out, "OK");
}

static void cmd_dbsize(client *c)
{
	resp_int(&c->out, (long long)db_size(c->srv->db));
}

static void cmd_flushall(client *c)
{
	if (c->argc > 2 || (c->argc == 2 && !is(c, 1, "sync") && !is(c, 1, "async"))) {
		err_syntax(c);
		return;
	}
	db_flush(c->srv->db);
	resp_simple(&c->out, "OK");
}

static void cmd_info(client *c)
{
	server *srv = c->srv;
	char text[1024];
	edo_instant up = (edo_instant_now() - srv->started) / EDO_SEC(1);
	int n = snprintf(text, sizeof text,
			 "# Server\r\nredis_version:%s\r\nredis_mode:standalone\r\n"
			 "multiplexing_api:edo\r\nprocess_id:%ld\r\ntcp_port:%u\r\n"
			 "uptime_in_seconds:%llu\r\nworker_threads:%ld\r\n\r\n"
			 "# Clients\r\nconnected_clients:%zu\r\nmaxclients:%zu\r\n\r\n"
			 "# Stats\r\ntotal_connections_received:%llu\r\n"
			 "total_commands_processed:%llu\r\n\r\n"
			 "# Keyspace\r\ndb0:keys=%zu,expires=0,avg_ttl=0\r\n",
			 MINI_REDIS_VERSION, (long)getpid(), srv->port, (unsigned long long)up,
			 srv->threads, atomic_load(&srv->connected), srv->max_clients,
			 (unsigned long long)atomic_load(&srv->total_connections),
			 (unsigned long long)server_total_commands(srv), db_size(srv->db));
	resp_bulk(&c->out, text, n < 0 ? 0 : (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

/* ---- strings ------------------------------------------------------------------------------ */

static void cmd_get(client *c)
{
	db *d = c->srv->db;
	db_shard *s;
	uint64_t h;
	edo_instant now = 0;
	s = lock_key(c, &h);
	db_entry *e = db_find(d, s, h, arg(c, 1), alen(c, 1), &now);
	if (e)
		resp_bulk(&c->out, e->val, e->vlen);
	else
		resp_null(&c->out);
}

/* A relative expiry of @n units of @unit_ns from now, or 0 if it is not a
 * positive number that fits. */
static edo_instant deadline_in(long long n, uint64_t unit_ns, edo_instant *now)
{
	if (n <= 0 || (unsigned long long)n > UINT64_MAX / unit_ns / 2)
		return 0;
	return edo_instant_add(db_now(now), (uint64_t)n * unit_ns);
}

static void cmd_set(client *c)
{
	enum { NX = 1, XX = 2, KEEPTTL = 4, GET = 8 };
	unsigned flags = 0;
	edo_instant now = 0, when = 0;
	for (size_t i = 3; i < c->argc; i++) {
		unsigned f = is(c, i, "nx")      ? NX :
			     is(c, i, "xx")      ? XX :
			     is(c, i, "keepttl") ? KEEPTTL :
			     is(c, i, "get")     ? GET :
						   0;
		if (f) {
			flags |= f;
			continue;
		}
		bool ex = is(c, i, "ex"), px = is(c, i, "px");
		if (!(ex || px) || i + 1 == c->argc || when) {
			err_syntax(c);
			return;
		}
		long long n;
		i++;
		if (!resp_parse_ll(arg(c, i), alen(c, i), &n)) {
			err_not_int(c);
			return;
		}
		when = deadline_in(n, ex ? EDO_SEC(1) : EDO_MS(1), &now);
		if (!when) {
			resp_error(&c->out, "ERR invalid expire time in 'set' command");
			return;
		}
	}
	if ((flags & NX && flags & XX) || (flags & KEEPTTL && when)) {
		err_syntax(c);
		return;
	}

	db *d = c->srv->db;
	db_shard *s;
	uint64_t h;
	s = lock_key(c, &h);
	db_entry *e = db_find(d, s, h, arg(c, 1), alen(c, 1), &now);
	if (flags & GET) {
		if (e)
			resp_bulk(&c->out, e->val, e->vlen);
		else
			resp_null(&c->out);
	}
	if ((flags & NX && e) || (flags & XX && !e)) {
		if (!(flags & GET))
			resp_null(&c->out);
	} else if (e && db_set_value(e, arg(c, 2), alen(c, 2)) < 0) {
		err_oom(c);
	} else if (!e && !(e = db_insert(d, s, h, arg(c, 1), alen(c, 1), arg(c, 2), alen(c, 2)))) {
		err_oom(c);
	} else {
		if (when || !(flags & KEEPTTL))
			db_set_expiry(d, s, e, when);
		if (!(flags & GET))
			rbuf_put(&c->out, "+OK\r\n", 5);
	}
}

/* INCR, DECR, INCRBY, DECRBY: add @by to the integer in argument 1's value. */
static void incr_by(client *c, long long by)
{
	db_shard *s;
	uint64_t h;
	edo_instant now = 0;
	db *d = c->srv->db;
	s = lock_key(c, &h);
	db_entry *e = db_find(d, s, h, arg(c, 1), alen(c, 1), &now);
	long long v = 0;
	char digits[24];
	if (e && !resp_parse_ll(e->val, e->vlen, &v)) {
		err_not_int(c);
	} else if ((by > 0 && v > LLONG_MAX - by) || (by < 0 && v < LLONG_MIN - by)) {
		resp_error(&c->out, "ERR increment or decrement would overflow");
	} else {
		v += by;
		size_t n = resp_ll(digits, v);
		if (e ? db_set_value(e, digits, n) < 0 :
			!db_insert(d, s, h, arg(c, 1), alen(c, 1), digits, n))
			err_oom(c);
		else
			resp_int(&c->out, v);
	}
}

static void cmd_incr(client *c)
{
	incr_by(c, 1);
}

static void cmd_decr(client *c)
{
	incr_by(c, -1);
}

static void cmd_incrby(client *c)
{
	long long by;
	if (!resp_parse_ll(arg(c, 2), alen(c, 2), &by))
		err_not_int(c);
	else
		incr_by(c, by);
}

static void cmd_decrby(client *c)
{
	long long by;
	if (!resp_parse_ll(arg(c, 2), alen(c, 2), &by) || by == LLONG_MIN)
		err_not_int(c);
	else
		incr_by(c, -by);
}

static void cmd_mget(client *c)
{
	db *d = c->srv->db;
	uint64_t set = shards_of(c, 1, 1);
	edo_instant now = 0;
	lock_set(d, set);
	resp_array(&c->out, c->argc - 1);
	for (size_t i = 1; i < c->argc; i++) {
		db_shard *s;
		uint64_t h;
		db_entry *e = lookup(c, i, &s, &h, &now);
		if (e)
			resp_bulk(&c->out, e->val, e->vlen);
		else
			resp_null(&c->out);
	}
	unlock_set(d, set);
}

static void cmd_mset(client *c)
{
	if (c->argc % 2 == 0) {
		resp_error(&c->out, "ERR wrong number of arguments for 'mset' command");
		return;
	}
	db *d = c->srv->db;
	uint64_t set = shards_of(c, 1, 2);
	edo_instant now = 0;
	bool oom = false;
	lock_set(d, set); /* all at once: MSET is atomic */
	for (size_t i = 1; i < c->argc; i += 2) {
		db_shard *s;
		uint64_t h;
		db_entry *e = lookup(c, i, &s, &h, &now);
		if (e && db_set_value(e, arg(c, i + 1), alen(c, i + 1)) == 0)
			db_set_expiry(d, s, e, 0);
		else if (e ||
			 !db_insert(d, s, h, arg(c, i), alen(c, i), arg(c, i + 1), alen(c, i + 1)))
			oom = true;
	}
	unlock_set(d, set);
	if (oom)
		err_oom(c);
	else
		resp_simple(&c->out, "OK");
}

/* ---- keys ------------------------------------------------------------------------------------ */

/* DEL (@del) and EXISTS: how many of the key arguments exist. */
static void count_keys(client *c, bool del)
{
	db *d = c->srv->db;
	uint64_t set = shards_of(c, 1, 1);
	edo_instant now = 0;
	long long n = 0;
	lock_set(d, set);
	for (size_t i = 1; i < c->argc; i++) {
		db_shard *s;
		uint64_t h;
		db_entry *e = lookup(c, i, &s, &h, &now);
		if (e) {
			n++;
			if (del)
				db_delete(d, s, e);
		}
	}
	unlock_set(d, set);
	resp_int(&c->out, n);
}

static void cmd_del(client *c)
{
	count_keys(c, true);
}

static void cmd_exists(client *c)
{
	count_keys(c, false);
}

/* EXPIRE and PEXPIRE key n [NX|XX|GT|LT], in units of @unit_ns. */
static void expire_generic(client *c, uint64_t unit_ns, const char *name)
{
	enum { NX = 1, XX = 2, GT = 4, LT = 8 };
	unsigned flags = 0;
	long long n;
	for (size_t i = 3; i < c->argc; i++) {
		unsigned f = is(c, i, "nx") ? NX :
			     is(c, i, "xx") ? XX :
			     is(c, i, "gt") ? GT :
			     is(c, i, "lt") ? LT :
					      0;
		if (!f) {
			resp_errorf(&c->out, "ERR Unsupported option %.*s",
				    (int)(alen(c, i) < 64 ? alen(c, i) : 64), arg(c, i));
			return;
		}
		flags |= f;
	}
	if ((flags & NX && flags & (XX | GT | LT)) || (flags & GT && flags & LT)) {
		resp_error(&c->out, "ERR NX and XX, GT or LT options at the same time are not "
				    "compatible");
		return;
	}
	if (!resp_parse_ll(arg(c, 2), alen(c, 2), &n)) {
		err_not_int(c);
		return;
	}
	edo_instant now = 0, when = 0;
	bool delete_now = n <= 0;
	if (!delete_now && !(when = deadline_in(n, unit_ns, &now))) {
		resp_errorf(&c->out, "ERR invalid expire time in '%s' command", name);
		return;
	}
	db *d = c->srv->db;
	db_shard *s;
	uint64_t h;
	s = lock_key(c, &h);
	db_entry *e = db_find(d, s, h, arg(c, 1), alen(c, 1), &now);
	/* A key without a deadline counts as one infinitely far (Redis). */
	edo_instant cur = e && e->expires ? e->expires : UINT64_MAX;
	edo_instant next = delete_now ? 0 : when;
	bool ok = e && !(flags & NX && e->expires) && !(flags & XX && !e->expires) &&
		  !(flags & GT && next <= cur) && !(flags & LT && next >= cur);
	if (ok) {
		if (delete_now)
			db_delete(d, s, e);
		else
			db_set_expiry(d, s, e, when);
	}
	resp_int(&c->out, ok);
}

static void cmd_expire(client *c)
{
	expire_generic(c, EDO_SEC(1), "expire");
}

static void cmd_pexpire(client *c)
{
	expire_generic(c, EDO_MS(1), "pexpire");
}

/* TTL and PTTL: -2 no key, -1 no deadline, else the time left. */
static void ttl_generic(client *c, bool ms)
{
	db *d = c->srv->db;
	db_shard *s;
	uint64_t h;
	edo_instant now = 0;
	long long r = -2;
	s = lock_key(c, &h);
	db_entry *e = db_find(d, s, h, arg(c, 1), alen(c, 1), &now);
	if (e && !e->expires) {
		r = -1;
	} else if (e) {
		uint64_t left_ms = (e->expires - db_now(&now) + EDO_MS(1) / 2) / EDO_MS(1);
		r = (long long)(ms ? left_ms : (left_ms + 500) / 1000);
	}
	resp_int(&c->out, r);
}

static void cmd_ttl(client *c)
{
	ttl_generic(c, false);
}

static void cmd_pttl(client *c)
{
	ttl_generic(c, true);
}

static void cmd_persist(client *c)
{
	db *d = c->srv->db;
	db_shard *s;
	uint64_t h;
	edo_instant now = 0;
	s = lock_key(c, &h);
	db_entry *e = db_find(d, s, h, arg(c, 1), alen(c, 1), &now);
	bool had = e && e->expires;
	if (had)
		db_set_expiry(d, s, e, 0);
	resp_int(&c->out, had);
}

/* ---- publish / subscribe ---------------------------------------------------------------------- */

static void cmd_publish(client *c)
{
	c->published++;
	bool behind;
	long n = pubsub_publish(c->srv->ps, arg(c, 1), alen(c, 1), arg(c, 2), alen(c, 2), &behind);
	if (behind && alen(c, 1) <= sizeof c->behind) {
		/* Let that channel's subscribers catch up before the next command. */
		memcpy(c->behind, arg(c, 1), alen(c, 1));
		c->behind_len = alen(c, 1);
		c->published = PUBLISH_YIELD;
	}
	if (n < 0)
		err_oom(c);
	else
		resp_int(&c->out, n);
}

static void sub_reply(client *c, const char *kind, const char *name, size_t len)
{
	resp_array(&c->out, 3);
	resp_bulk_str(&c->out, kind);
	if (name)
		resp_bulk(&c->out, name, len);
	else
		resp_null(&c->out);
	resp_int(&c->out, (long long)c->nsubs);
}

static ps_sub *find_sub(client *c, const char *name, size_t len)
{
	for (size_t i = 0; i < c->nsubs; i++) {
		size_t n;
		const char *p = pubsub_name(&c->subs[i], &n);
		if (n == len && memcmp(p, name, n) == 0)
			return &c->subs[i];
	}
	return NULL;
}

static void cmd_subscribe(client *c)
{
	for (size_t i = 1; i < c->argc; i++) {
		if (!find_sub(c, arg(c, i), alen(c, i))) {
			if (c->nsubs == MAX_SUBSCRIPTIONS) {
				resp_error(&c->out, "ERR too many subscriptions");
				return;
			}
			if (c->nsubs == c->subs_cap) {
				size_t cap = c->subs_cap ? c->subs_cap * 2 : 4;
				ps_sub *p = realloc(c->subs, cap * sizeof *p);
				if (!p) {
					err_oom(c);
					return;
				}
				c->subs = p;
				c->subs_cap = cap;
			}
			if (pubsub_subscribe(c->srv->ps, arg(c, i), alen(c, i),
					     &c->subs[c->nsubs]) < 0) {
				err_oom(c);
				return;
			}
			c->nsubs++;
		}
		sub_reply(c, "subscribe", arg(c, i), alen(c, i));
	}
}

static void drop_sub(client *c, ps_sub *sub)
{
	pubsub_unsubscribe(c->srv->ps, sub);
	*sub = c->subs[--c->nsubs];
}

static void cmd_unsubscribe(client *c)
{
	if (c->argc == 1) {
		if (c->nsubs == 0)
			sub_reply(c, "unsubscribe", NULL, 0);
		while (c->nsubs) {
			/* Reply with the name before the channel can be freed. */
			ps_sub *sub = &c->subs[c->nsubs - 1];
			size_t n;
			const char *name = pubsub_name(sub, &n);
			resp_array(&c->out, 3);
			resp_bulk_str(&c->out, "unsubscribe");
			resp_bulk(&c->out, name, n);
			drop_sub(c, sub);
			resp_int(&c->out, (long long)c->nsubs);
		}
		return;
	}
	for (size_t i = 1; i < c->argc; i++) {
		ps_sub *sub = find_sub(c, arg(c, i), alen(c, i));
		if (sub)
			drop_sub(c, sub);
		sub_reply(c, "unsubscribe", arg(c, i), alen(c, i));
	}
}

static void cmd_reset(client *c)
{
	client_unsubscribe_all(c);
	resp_simple(&c->out, "RESET");
}

void client_unsubscribe_all(client *c)
{
	while (c->nsubs)
		drop_sub(c, &c->subs[c->nsubs - 1]);
	free(c->subs);
	c->subs = NULL;
	c->subs_cap = 0;
}

/* ---- introspection: CONFIG GET and COMMAND ------------------------------------------------------ */

/* Glob match with * and ?, case-insensitive (CONFIG GET's patterns). */
static bool glob(const char *p, size_t pn, const char *s)
{
	while (pn) {
		if (*p == '*') {
			for (const char *t = s;; t++) {
				if (glob(p + 1, pn - 1, t))
					return true;
				if (!*t)
					return false;
			}
		}
		if (!*s || (*p != '?' && tolower((unsigned char)*p) != tolower((unsigned char)*s)))
			return false;
		p++, pn--, s++;
	}
	return !*s;
}

static void cmd_config(client *c)
{
	if (!is(c, 1, "get")) {
		if (is(c, 1, "resetstat") && c->argc == 2)
			resp_simple(&c->out, "OK");
		else
			resp_errorf(&c->out, "ERR unknown subcommand '%.*s'",
				    (int)(alen(c, 1) < 64 ? alen(c, 1) : 64), arg(c, 1));
		return;
	}
	if (c->argc < 3) {
		resp_error(&c->out, "ERR wrong number of arguments for 'config|get' command");
		return;
	}
	char port[8], maxclients[24];
	snprintf(port, sizeof port, "%u", c->srv->port);
	snprintf(maxclients, sizeof maxclients, "%zu", c->srv->max_clients);
	/* What redis-benchmark and redis-cli ask for, and a few more. */
	const char *params[][2] = {
		{"save", ""},          {"appendonly", "no"},      {"port", port},
		{"bind", "127.0.0.1"}, {"databases", "1"},        {"maxclients", maxclients},
		{"maxmemory", "0"},    {"timeout", "0"},          {"protected-mode", "no"},
		{"io-threads", "1"},   {"cluster-enabled", "no"},
	};
	size_t n = sizeof params / sizeof params[0], found = 0;
	bool match[sizeof params / sizeof params[0]] = {0};
	for (size_t i = 2; i < c->argc; i++)
		for (size_t k = 0; k < n; k++)
			if (!match[k] && glob(arg(c, i), alen(c, i), params[k][0]))
				match[k] = true, found++;
	resp_array(&c->out, 2 * found);
	for (size_t k = 0; k < n; k++) {
		if (match[k]) {
			resp_bulk_str(&c->out, params[k][0]);
			resp_bulk_str(&c->out, params[k][1]);
		}
	}
}

typedef struct command {
	const char *name;
	size_t len;
	void (*fn)(client *c);
	int arity; /* Redis's: n = exactly n arguments with the name, -n = at least n */
	const char *flags;
	int first, last, step; /* key positions, for COMMAND */
	bool in_sub;           /* allowed while subscribed */
	bool keeps;            /* may run under a kept shard lock: takes none but lock_key()'s */
} command;

static void cmd_command(client *c);

/* The hot ones first: the lookup is a scan by length, then case-blind compare. */
static const command commands[] = {
	{"get", 3, cmd_get, 2, "readonly fast", 1, 1, 1, false, true},
	{"set", 3, cmd_set, -3, "write denyoom", 1, 1, 1, false, true},
	{"ping", 4, cmd_ping, -1, "fast", 0, 0, 0, true, true},
	{"incr", 4, cmd_incr, 2, "write denyoom fast", 1, 1, 1, false, true},
	{"mget", 4, cmd_mget, -2, "readonly fast", 1, -1, 1, false, false},
	{"mset", 4, cmd_mset, -3, "write denyoom", 1, -1, 2, false, false},
	{"del", 3, cmd_del, -2, "write", 1, -1, 1, false, false},
	{"exists", 6, cmd_exists, -2, "readonly fast", 1, -1, 1, false, false},
	{"decr", 4, cmd_decr, 2, "write denyoom fast", 1, 1, 1, false, true},
	{"incrby", 6, cmd_incrby, 3, "write denyoom fast", 1, 1, 1, false, true},
	{"decrby", 6, cmd_decrby, 3, "write denyoom fast", 1, 1, 1, false, true},
	{"expire", 6, cmd_expire, -3, "write fast", 1, 1, 1, false, true},
	{"pexpire", 7, cmd_pexpire, -3, "write fast", 1, 1, 1, false, true},
	{"ttl", 3, cmd_ttl, 2, "readonly fast", 1, 1, 1, false, true},
	{"pttl", 4, cmd_pttl, 2, "readonly fast", 1, 1, 1, false, true},
	{"persist", 7, cmd_persist, 2, "write fast", 1, 1, 1, false, true},
	{"echo", 4, cmd_echo, 2, "fast", 0, 0, 0, false, true},
	{"publish", 7, cmd_publish, 3, "pubsub loading stale fast", 0, 0, 0, false, false},
	{"subscribe", 9, cmd_subscribe, -2, "pubsub noscript loading stale", 0, 0, 0, true, false},
	{"unsubscribe", 11, cmd_unsubscribe, -1, "pubsub noscript loading stale", 0, 0, 0, true,
	 false},
	{"reset", 5, cmd_reset, 1, "noscript loading stale fast", 0, 0, 0, true, false},
	{"quit", 4, cmd_quit, -1, "fast", 0, 0, 0, true, true},
	{"select", 6, cmd_select, 2, "loading stale fast", 0, 0, 0, false, true},
	{"dbsize", 6, cmd_dbsize, 1, "readonly fast", 0, 0, 0, false, false},
	{"flushall", 8, cmd_flushall, -1, "write", 0, 0, 0, false, false},
	{"flushdb", 7, cmd_flushall, -1, "write", 0, 0, 0, false, false},
	{"info", 4, cmd_info, -1, "loading stale", 0, 0, 0, false, false},
	{"config", 6, cmd_config, -2, "admin noscript loading stale", 0, 0, 0, false, true},
	{"command", 7, cmd_command, -1, "loading stale", 0, 0, 0, false, true},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* Command names are lower-case letters, which differ from upper-case ones
 * only in bit 5: `b | 0x20` compares a byte to a name's letter ignoring case,
 * and matches nothing else. */
static const command *lookup_command(const char *name, size_t n)
{
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const command *cmd = &commands[i];
		if (cmd->len != n || (name[0] | 0x20) != cmd->name[0])
			continue;
		size_t k = 1;
		while (k < n && (name[k] | 0x20) == cmd->name[k])
			k++;
		if (k == n)
			return cmd;
	}
	return NULL;
}

/* One entry of COMMAND's reply: name, arity, flags, first key, last key, step. */
static void command_info(client *c, const command *cmd)
{
	resp_array(&c->out, 6);
	resp_bulk_str(&c->out, cmd->name);
	resp_int(&c->out, cmd->arity);
	size_t nflags = 1;
	for (const char *p = cmd->flags; *p; p++)
		nflags += *p == ' ';
	resp_array(&c->out, nflags);
	for (const char *p = cmd->flags; *p;) {
		size_t n = strcspn(p, " ");
		rbuf_append(&c->out, "+", 1);
		rbuf_append(&c->out, p, n);
		rbuf_append(&c->out, "\r\n", 2);
		p += n + (p[n] == ' ');
	}
	resp_int(&c->out, cmd->first);
	resp_int(&c->out, cmd->last);
	resp_int(&c->out, cmd->step);
}

static void cmd_command(client *c)
{
	if (c->argc == 1) {
		resp_array(&c->out, NCOMMANDS);
		for (size_t i = 0; i < NCOMMANDS; i++)
			command_info(c, &commands[i]);
	} else if (is(c, 1, "count") && c->argc == 2) {
		resp_int(&c->out, (long long)NCOMMANDS);
	} else if (is(c, 1, "info")) {
		resp_array(&c->out, c->argc - 2);
		for (size_t i = 2; i < c->argc; i++) {
			const command *cmd = lookup_command(arg(c, i), alen(c, i));
			if (cmd)
				command_info(c, cmd);
			else
				rbuf_append(&c->out, "*-1\r\n", 5);
		}
	} else if (is(c, 1, "docs")) {
		resp_array(&c->out, 0); /* no docs: redis-cli falls back to its own help */
	} else if (is(c, 1, "list") && c->argc == 2) {
		resp_array(&c->out, NCOMMANDS);
		for (size_t i = 0; i < NCOMMANDS; i++)
			resp_bulk_str(&c->out, commands[i].name);
	} else {
		resp_errorf(&c->out, "ERR unknown subcommand '%.*s'",
			    (int)(alen(c, 1) < 64 ? alen(c, 1) : 64), arg(c, 1));
	}
}

/* ---- dispatch ----------------------------------------------------------------------------------- */

/* Cold, and out of line: its message buffer stays off cmd_execute()'s frame. */
static __attribute__((cold, noinline)) void unknown_command(client *c)
{
	char msg[256];
	int n = snprintf(msg, sizeof msg, "ERR unknown command '%.*s', with args beginning with: ",
			 (int)(alen(c, 0) < 64 ? alen(c, 0) : 64), arg(c, 0));
	for (size_t i = 1; i < c->argc && n > 0 && (size_t)n < sizeof msg - 1; i++)
		n += snprintf(msg + n, sizeof msg - (size_t)n, "'%.*s' ",
			      (int)(alen(c, i) < 32 ? alen(c, i) : 32), arg(c, i));
	resp_error(&c->out, msg);
}

void cmd_execute(client *c)
{
	if (c->argc == 0)
		return;
	c->commands++;
	size_t start = c->out.len;
	const command *cmd = lookup_command(arg(c, 0), alen(c, 0));
	if (!cmd) {
		unknown_command(c);
	} else if ((cmd->arity > 0 && c->argc != (size_t)cmd->arity) ||
		   (cmd->arity < 0 && c->argc < (size_t)-cmd->arity)) {
		resp_errorf(&c->out, "ERR wrong number of arguments for '%s' command", cmd->name);
	} else if (c->nsubs && !cmd->in_sub) {
		resp_errorf(&c->out,
			    "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
			    "PING / QUIT / RESET are allowed in this context",
			    cmd->name);
	} else {
		if (!cmd->keeps)
			client_release(c); /* it takes other locks */
		cmd->fn(c);
	}
	if (c->out.overflow) { /* the reply did not fit the output limit */
		rbuf_truncate(&c->out, start);
		resp_error(&c->out, "ERR reply too large");
	}
}
