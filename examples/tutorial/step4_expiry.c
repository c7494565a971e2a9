/* Tutorial step 4 (docs/tutorial.md): keys that expire, on Edo's timers.
 *
 *   step4_expiry [--port N] [--threads N]    then: redis-cli -p N set k v px 500; redis-cli -p N ttl k
 *
 * Step 3 plus SET's EX and PX options and TTL.  Each key may have a
 * deadline.  A background task, `purge`, deletes keys whose deadline has
 * passed: it sleeps until the earliest deadline (an edo_timeout around an
 * edo_notify wait), and a SET whose deadline is earlier than the one the
 * task sleeps towards wakes it with edo_notify_one().  Nothing scans the
 * keys on every request.  A lookup that finds a key past its deadline before
 * the task got to it treats it as gone (and deletes it), so no command ever
 * sees an expired key.
 *
 * The deadlines are kept in a min-heap of (deadline, key) under the store's
 * lock.  When a key's deadline changes its old heap entry stays, and is
 * skipped when it comes up; examples/mini-redis keeps each key's place in
 * the heap instead, so it never holds stale entries.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "edo.h"
#include "resp.h"

/* ---- the store ---------------------------------------------------------------------------- */

typedef struct entry {
	struct entry *next;
	char *val;
	size_t klen, vlen;
	edo_instant expires; /* 0: never */
	char key[];
} entry;

/* A deadline in the heap: the key is a copy (the entry may be gone by then). */
typedef struct deadline {
	edo_instant when;
	char *key;
	size_t klen;
} deadline;

#define BUCKETS 4096
static struct {
	pthread_mutex_t lock;
	entry *buckets[BUCKETS];
	deadline *heap; /* min-heap on `when` */
	size_t heap_len, heap_cap;
	edo_instant next; /* the deadline the purge task sleeps towards */
	edo_notify wake;  /* wakes it for a sooner one */
} db = {.lock = PTHREAD_MUTEX_INITIALIZER, .next = UINT64_MAX};

static entry **slot_of(const char *key, size_t n) /* the link to key's entry, or to NULL */
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)key[i]) * 0x100000001b3ULL;
	entry **pp = &db.buckets[h % BUCKETS];
	while (*pp && ((*pp)->klen != n || memcmp((*pp)->key, key, n) != 0))
		pp = &(*pp)->next;
	return pp;
}

static bool store_set(const char *key, size_t klen, const char *val, size_t vlen)
{
	char *v = malloc(vlen ? vlen : 1);
	if (!v)
		return false;
	memcpy(v, val, vlen);
	entry **pp = slot_of(key, klen);
	if (!*pp) {
		entry *e = calloc(1, sizeof *e + klen);
		if (!e) {
			free(v);
			return false;
		}
		memcpy(e->key, key, klen);
		e->klen = klen;
		*pp = e;
	}
	free((*pp)->val);
	(*pp)->val = v;
	(*pp)->vlen = vlen;
	return true;
}

static void store_del(entry **pp)
{
	entry *e = *pp;
	*pp = e->next;
	free(e->val);
	free(e);
}

/* The entry of @key, or NULL; one past its deadline is deleted now. */
static entry *store_find(const char *key, size_t n, edo_instant now)
{
	entry **pp = slot_of(key, n);
	if (*pp && (*pp)->expires && (*pp)->expires <= now) {
		store_del(pp);
		return NULL;
	}
	return *pp;
}

static void heap_swap(size_t a, size_t b)
{
	deadline t = db.heap[a];
	db.heap[a] = db.heap[b];
	db.heap[b] = t;
}

static bool heap_push(edo_instant when, const char *key, size_t klen)
{
	if (db.heap_len == db.heap_cap) {
		size_t cap = db.heap_cap ? 2 * db.heap_cap : 64;
		deadline *h = realloc(db.heap, cap * sizeof *h);
		if (!h)
			return false;
		db.heap = h;
		db.heap_cap = cap;
	}
	char *k = malloc(klen ? klen : 1);
	if (!k)
		return false;
	memcpy(k, key, klen);
	size_t i = db.heap_len++;
	db.heap[i] = (deadline){when, k, klen};
	for (; i > 0 && db.heap[(i - 1) / 2].when > db.heap[i].when; i = (i - 1) / 2)
		heap_swap(i, (i - 1) / 2);
	return true;
}

static deadline heap_pop(void)
{
	deadline top = db.heap[0];
	db.heap[0] = db.heap[--db.heap_len];
	for (size_t i = 0;;) {
		size_t c = 2 * i + 1;
		if (c >= db.heap_len)
			break;
		if (c + 1 < db.heap_len && db.heap[c + 1].when < db.heap[c].when)
			c++;
		if (db.heap[i].when <= db.heap[c].when)
			break;
		heap_swap(i, c);
		i = c;
	}
	return top;
}

/* Gives the key a deadline; wakes the purge task if it sleeps towards a later one. */
static void store_expire(entry *e, edo_instant when)
{
	e->expires = when;
	if (!when || !heap_push(when, e->key, e->klen))
		return;
	if (when < db.next) {
		db.next = when;
		edo_notify_one(&db.wake);
	}
}

/* Deletes the keys whose deadline has passed; returns the next deadline. */
static edo_instant store_purge(edo_instant now)
{
	while (db.heap_len && db.heap[0].when <= now) {
		deadline d = heap_pop();
		entry **pp = slot_of(d.key, d.klen);
		if (*pp && (*pp)->expires == d.when) /* else: a stale entry */
			store_del(pp);
		free(d.key);
	}
	db.next = db.heap_len ? db.heap[0].when : UINT64_MAX;
	return db.next;
}

/* ---- the purge task ------------------------------------------------------------------------- */

typedef struct purge_frame {
	EDO_FRAME;
	edo_instant next;
	edo_notified_fut wake;
	edo_timeout to;
} purge_frame;

EDO_ASYNC(purge, purge_frame, NULL)
{
	EDO_BEGIN();
	for (;;) {
		pthread_mutex_lock(&db.lock);
		self->next = store_purge(edo_instant_now());
		pthread_mutex_unlock(&db.lock);
		/* Wait for a notification, or at most until the next deadline. */
		edo_notify_notified(&self->wake, &db.wake);
		if (self->next == UINT64_MAX) {
			EDO_AWAIT(&self->wake);
		} else {
			edo_timeout_at_init(&self->to, &self->wake.base, self->next);
			EDO_AWAIT(&self->to);
			edo_future_drop(&self->wake.base); /* it may not have completed */
		}
	}
	EDO_END();
}

/* ---- the commands ------------------------------------------------------------------------ */

/* Argument i of the request parsed from `base`. */
#define ARG(i) (base + args[i].off)
#define LEN(i) (args[i].len)

static bool is(const char *p, size_t n, const char *word)
{
	return n == strlen(word) && strncasecmp(p, word, n) == 0;
}

static void execute(rbuf *out, const char *base, const resp_arg *args, size_t argc)
{
	if (argc == 0)
		return;
	if (is(ARG(0), LEN(0), "ping") && argc == 1) {
		resp_simple(out, "PONG");
	} else if (is(ARG(0), LEN(0), "echo") && argc == 2) {
		resp_bulk(out, ARG(1), LEN(1));
	} else if (is(ARG(0), LEN(0), "get") && argc == 2) {
		pthread_mutex_lock(&db.lock);
		entry *e = store_find(ARG(1), LEN(1), edo_instant_now());
		if (e)
			resp_bulk(out, e->val, e->vlen);
		else
			resp_null(out);
		pthread_mutex_unlock(&db.lock);
	} else if (is(ARG(0), LEN(0), "set") && (argc == 3 || argc == 5)) {
		/* SET key value [EX seconds | PX milliseconds] */
		long long n = 0;
		uint64_t unit = argc == 3                ? 0 :
				is(ARG(3), LEN(3), "ex") ? EDO_SEC(1) :
				is(ARG(3), LEN(3), "px") ? EDO_MS(1) :
							   1;
		if (unit == 1 || (argc == 5 && (!resp_parse_ll(ARG(4), LEN(4), &n) || n <= 0 ||
						n > 1000000000LL))) {
			resp_error(out, "ERR syntax error or invalid expire time");
			return;
		}
		pthread_mutex_lock(&db.lock);
		bool ok = store_set(ARG(1), LEN(1), ARG(2), LEN(2));
		if (ok) {
			entry *e = *slot_of(ARG(1), LEN(1));
			store_expire(e, n ? edo_instant_now() + (uint64_t)n * unit : 0);
		}
		pthread_mutex_unlock(&db.lock);
		if (ok)
			resp_simple(out, "OK");
		else
			resp_error(out, "ERR out of memory");
	} else if (is(ARG(0), LEN(0), "ttl") && argc == 2) {
		/* -2: no such key, -1: no deadline, else seconds left (rounded) */
		edo_instant now = edo_instant_now();
		pthread_mutex_lock(&db.lock);
		entry *e = store_find(ARG(1), LEN(1), now);
		long long ttl = !e ? -2 :
				!e->expires ?
				     -1 :
				     (long long)((e->expires - now + EDO_MS(500)) / EDO_SEC(1));
		pthread_mutex_unlock(&db.lock);
		resp_int(out, ttl);
	} else if (is(ARG(0), LEN(0), "del") && argc >= 2) {
		long long n = 0;
		pthread_mutex_lock(&db.lock);
		for (size_t i = 1; i < argc; i++) {
			if (store_find(ARG(i), LEN(i), edo_instant_now())) {
				store_del(slot_of(ARG(i), LEN(i)));
				n++;
			}
		}
		pthread_mutex_unlock(&db.lock);
		resp_int(out, n);
	} else {
		resp_errorf(out, "ERR unknown command '%.*s'", (int)(LEN(0) < 32 ? LEN(0) : 32),
			    ARG(0));
	}
}

/* ---- a connection ---------------------------------------------------------------------------- */

typedef struct conn_frame {
	EDO_FRAME;
	edo_tcp_stream *s;
	resp_parser p;
	rbuf in, out;
	bool quit;
	ssize_t n;
	edo_write_all_fut wa;
} conn_frame;

static void conn_cleanup(conn_frame *self)
{
	resp_parser_free(&self->p);
	rbuf_free(&self->in);
	rbuf_free(&self->out);
	edo_tcp_stream_close(self->s);
}

/* Runs every complete request in `in`; keeps the start of the next one. */
static void run_requests(conn_frame *self)
{
	size_t parsed = 0, used;
	while (!self->quit && parsed < self->in.len) {
		char *req = self->in.data + parsed;
		resp_status st = resp_parse(&self->p, req, self->in.len - parsed, &used);
		if (st == RESP_MORE)
			break;
		if (st == RESP_ERROR) {
			resp_errorf(&self->out, "ERR %s", self->p.error);
			self->quit = true;
			break;
		}
		execute(&self->out, req, self->p.args, self->p.argc);
		parsed += used;
	}
	rbuf_consume(&self->in, parsed);
}

EDO_ASYNC(conn, conn_frame, conn_cleanup)
{
	EDO_BEGIN();
	resp_parser_init(&self->p, NULL);
	self->in.limit = RESP_DEFAULT_MAX_REQUEST + RESP_DEFAULT_MAX_INLINE + 4096;
	self->out.limit = 256u << 20;
	while (!self->quit) {
		/* Room for the rest of a large request, or at least 4 KiB. */
		if (!rbuf_reserve(&self->in, self->p.need > self->in.len + 4096 ?
						     self->p.need - self->in.len :
						     4096))
			break;
		EDO_AWAIT_POLL(edo_tcp_stream_poll_read(self->s, cx, self->in.data + self->in.len,
							self->in.cap - self->in.len, &self->n));
		if (self->n <= 0)
			break;
		self->in.len += (size_t)self->n;
		run_requests(self);
		if (self->out.len == 0)
			continue; /* only part of a request so far */
		EDO_AWAIT(edo_write_all(&self->wa, edo_tcp_stream_io(self->s), self->out.data,
					self->out.len));
		if (self->wa.rc < 0)
			break;
		self->out.len = 0;
	}
	EDO_END();
}

/* ---- the server, as in step 1 ------------------------------------------------------------------ */

typedef struct server_frame {
	EDO_FRAME;
	uint16_t port;
	edo_tcp_listener *l;
	edo_tcp_stream *s;
	int rc;
} server_frame;

static void server_cleanup(server_frame *self)
{
	edo_tcp_listener_close(self->l);
}

EDO_ASYNC(server, server_frame, server_cleanup)
{
	EDO_BEGIN();
	{
		edo_addr a;
		char txt[EDO_ADDR_STRLEN];
		edo_addr_ip(&a, "127.0.0.1", self->port);
		self->rc = edo_tcp_listener_bind(&a, NULL, &self->l);
		if (self->rc < 0) {
			fprintf(stderr, "bind: %s\n", edo_strerror(self->rc));
			EDO_RETURN();
		}
		edo_tcp_listener_local_addr(self->l, &a);
		edo_addr_format(&a, txt, sizeof txt);
		printf("step4: listening on %s\n", txt);
		fflush(stdout);
	}
	/* The purge task runs beside the connections for the server's life. */
	self->rc = EDO_SPAWN(NULL, purge, .next = 0);
	if (self->rc < 0)
		EDO_RETURN();
	for (;;) {
		EDO_AWAIT_POLL(
			edo_tcp_listener_poll_accept(self->l, cx, &self->s, NULL, &self->rc));
		if (self->rc < 0)
			continue;
		edo_tcp_stream_set_nodelay(self->s, true);
		if (EDO_SPAWN(NULL, conn, .s = self->s) < 0)
			edo_tcp_stream_close(self->s);
	}
	EDO_END();
}

int main(int argc, char **argv)
{
	long port = 6379, threads = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0)
			port = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--threads") == 0)
			threads = strtol(argv[i + 1], NULL, 10);
	}
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, threads ? EDO_RT_MULTI_THREAD : EDO_RT_CURRENT_THREAD);
	b.worker_threads = (unsigned)threads;
	edo_runtime *rt;
	if (edo_runtime_build(&b, &rt) < 0)
		return 1;
	edo_notify_init(&db.wake);
	server_frame srv = {EDO_FRAME_INIT(server), .port = (uint16_t)port};
	edo_block_on(rt, &srv.edo_base);
	edo_runtime_free(rt);
	return srv.rc < 0 ? 1 : 0;
}
