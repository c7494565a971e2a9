/* mini-redis — what the parts share: the server, a client, the commands.
 *
 *   main.c    arguments, the runtime, the accept loop, shutdown
 *   conn.c    one task per connection: read, parse, execute, write
 *   cmd.c     the commands, writing their replies into the client's buffer
 *   db.c      the key space and the expiry task
 *   pubsub.c  channels on Edo's broadcast
 *   resp.c    the protocol (no Edo in it)
 */
#ifndef MINI_REDIS_SERVER_H
#define MINI_REDIS_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "edo.h"
#include "pubsub.h"
#include "resp.h"

#define MINI_REDIS_VERSION "7.0.0-mini"

/* Flush the replies once this many bytes are waiting, mid-pipeline. */
#define OUT_FLUSH_AT (64u * 1024u)
/* The most one connection's replies may hold at once: a bigger reply is an error. */
#define OUT_LIMIT (128u * 1024u * 1024u)
/* Channels one connection may be subscribed to. */
#define MAX_SUBSCRIPTIONS 4096u
/* A pipeline of PUBLISH lets other tasks (the subscribers) run this often. */
#define PUBLISH_YIELD 32u
/* The longest a publisher waits for a channel's slowest subscriber (pubsub.h). */
#define PUBLISH_WAIT_MS 500u

/* Stripes of the executed-commands counter (server.commands). */
#define COMMAND_STRIPES 16

/** A counter on a cache line of its own. */
typedef struct stripe {
	_Alignas(64) _Atomic(uint64_t) n;
} stripe;

/** The state every connection shares.  Lives as long as the runtime.
 *
 * The fields every batch of requests reads (db, stopping) are never written
 * while serving; what changes stays off their cache line: connection counts
 * on their own, and the commands counter in one stripe per thread (each
 * thread adds to its own, INFO sums them), so that workers on different
 * cores never pass a cache line back and forth for the statistics. */
typedef struct server {
	db *db;
	pubsub *ps;
	size_t max_clients;
	resp_limits limits;
	uint16_t port;
	long threads;
	edo_instant started;
	/* Shutdown: `stopping` is set, then `stop` wakes every connection. */
	_Atomic(bool) stopping;
	_Alignas(64) edo_semaphore clients; /* one permit per connection: the limit */
	edo_notify stop;
	_Alignas(64) _Atomic(size_t) connected;
	_Atomic(uint64_t) total_connections;
	stripe commands[COMMAND_STRIPES];
} server;

/** server_count_commands() - add @n to the executed commands (this thread's stripe). */
void server_count_commands(server *srv, uint64_t n);
/** server_total_commands() - the commands executed so far, all threads. */
uint64_t server_total_commands(server *srv);

/** One connection's side of the commands: where replies go, its subscriptions. */
typedef struct client {
	server *srv;
	rbuf out;
	/* the request being executed: argument i is base[args[i].off ..][.. args[i].len] */
	const char *base;
	const resp_arg *args;
	size_t argc;
	ps_sub *subs;
	size_t nsubs, subs_cap;
	bool quit;          /* close the connection once the replies are written */
	uint64_t commands;  /* executed, not yet added to srv->total_commands */
	unsigned published; /* PUBLISH commands since the connection last yielded */
	/* the channel whose slowest subscriber the connection waits for */
	size_t behind_len; /* 0: none */
	char behind[64];
	db_shard *held;    /* a shard lock kept between commands (cmd.c) */
	unsigned held_for; /* commands run under it */
} client;

/** cmd_execute() - run the request in c->args, writing its reply to c->out. */
void cmd_execute(client *c);

/** client_release() - release the shard lock a batch of commands kept.  Call
 * it before awaiting anything. */
void client_release(client *c);

/** client_unsubscribe_all() - end every subscription (a closing connection). */
void client_unsubscribe_all(client *c);

/** The connection task: spawned by the accept loop for each client. */
typedef struct conn_frame {
	EDO_FRAME;
	server *srv;
	edo_tcp_stream *s;
	bool permit; /* holds one of srv->clients */
	client c;
	resp_parser p;
	rbuf in;
	size_t parsed; /* bytes of `in` consumed by complete requests */
	ssize_t n;
	int state;
	size_t next_sub; /* the subscription polled first, in turn */
	edo_notified_fut stop;
	edo_sleep linger;
	edo_sleep nap;   /* a publisher waiting for a slow subscriber (conn.c) */
	unsigned napped; /* ms it waited */
	edo_write_all_fut wa;
} conn_frame;
EDO_ASYNC_DECL(conn, conn_frame);

#endif /* MINI_REDIS_SERVER_H */
