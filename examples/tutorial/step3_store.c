/* Tutorial step 3 (docs/tutorial.md): a shared key space: GET, SET, DEL.
 *
 *   step3_store [--port N] [--threads N]     then: redis-cli -p N set k v; redis-cli -p N get k
 *
 * Two changes from step 2:
 *
 *  - The protocol code is mini-redis's (examples/mini-redis/resp.c): an
 *    incremental parser with a limit on every length, and `rbuf`, a growable
 *    buffer with a hard limit.  The connection loop stays the same shape.
 *  - Every connection reads and writes one store: a hash table behind a
 *    plain pthread mutex.  Not an Edo mutex: nothing awaits while holding
 *    the lock, and a plain mutex is the cheapest lock there is when nobody
 *    waits (Tokio's mini-redis makes the same choice, for the same reason).
 *    An async mutex is for a lock that is held across an await.
 *
 * With --threads N the connections run on N worker threads at once, so the
 * lock is needed; examples/mini-redis splits the table into 64 shards, each
 * with its own lock, so that workers rarely meet on one.
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
	char key[];
} entry;

#define BUCKETS 4096
static struct {
	pthread_mutex_t lock;
	entry *buckets[BUCKETS];
} db = {.lock = PTHREAD_MUTEX_INITIALIZER};

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
		entry *e = *slot_of(ARG(1), LEN(1));
		if (e)
			resp_bulk(out, e->val, e->vlen);
		else
			resp_null(out);
		pthread_mutex_unlock(&db.lock);
	} else if (is(ARG(0), LEN(0), "set") && argc == 3) {
		pthread_mutex_lock(&db.lock);
		bool ok = store_set(ARG(1), LEN(1), ARG(2), LEN(2));
		pthread_mutex_unlock(&db.lock);
		if (ok)
			resp_simple(out, "OK");
		else
			resp_error(out, "ERR out of memory");
	} else if (is(ARG(0), LEN(0), "del") && argc >= 2) {
		long long n = 0;
		pthread_mutex_lock(&db.lock);
		for (size_t i = 1; i < argc; i++) {
			entry **pp = slot_of(ARG(i), LEN(i));
			if (*pp) {
				store_del(pp);
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
		printf("step3: listening on %s\n", txt);
		fflush(stdout);
	}
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
	server_frame srv = {EDO_FRAME_INIT(server), .port = (uint16_t)port};
	edo_block_on(rt, &srv.edo_base);
	edo_runtime_free(rt);
	return srv.rc < 0 ? 1 : 0;
}
