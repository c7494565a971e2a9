/* mini-redis — publish/subscribe on Edo's broadcast channels.
 *
 * Each channel that has subscribers is an edo_broadcast channel plus a ring
 * of the last messages published on it, already written as the RESP push a
 * subscriber receives (`*3 message <channel> <payload>`), so a message is
 * formatted once however many subscribers it goes to.  The broadcast channel
 * carries each message's sequence number: it wakes the subscribers, keeps
 * each one's place, counts them (PUBLISH's reply) and tells a subscriber
 * that fell more than a ring behind that it lagged.  Edo's broadcast copies
 * fixed-size values and never calls a destructor on one it overwrites, so
 * the bytes of the messages live in the ring, owned by the channel, and are
 * read under the registry's lock: a message is freed only when a newer one
 * takes its place or the ring passes its byte limit.
 *
 * A subscriber that lags (more than PUBSUB_RING messages or PUBSUB_RING_BYTES
 * bytes behind) is disconnected, as Redis disconnects a subscriber whose
 * output buffer passes its limit, so memory stays bounded.  So that a burst
 * does not do that to a subscriber that merely had no turn to run (its
 * worker thread preempted, say), a connection yields after every
 * PUBLISH_YIELD publishes of a pipeline, and a publish that finds the
 * slowest subscriber of its channel more than half a ring behind makes the
 * publishing connection wait for it, PUBLISH_WAIT_MS at most (conn.c): a
 * subscriber that keeps running keeps up, a stuck one is dropped and the
 * publisher goes on.  The last subscriber to leave frees the channel.  A channel costs about 10 KiB (the broadcast channel's slots and
 * the ring), which is why one connection may hold MAX_SUBSCRIPTIONS at most.
 */
#ifndef MINI_REDIS_PUBSUB_H
#define MINI_REDIS_PUBSUB_H

#include <stdbool.h>
#include <stddef.h>

#include "edo.h"
#include "resp.h"

#define PUBSUB_RING 256u                        /* messages kept per channel (a power of 2) */
#define PUBSUB_RING_BYTES (32u * 1024u * 1024u) /* bytes kept per channel */

typedef struct pubsub pubsub;
typedef struct ps_channel ps_channel;

typedef struct ps_reader ps_reader;

/** One subscription of one connection. */
typedef struct ps_sub {
	ps_channel *ch;
	edo_broadcast_rx *rx;
	ps_reader *rd; /* its place in the channel, for the publishers to see */
} ps_sub;

/** pubsub_new() - an empty registry; @threaded: take its lock.  0 or -ENOMEM. */
int pubsub_new(bool threaded, pubsub **out);
/** pubsub_free() - free the registry (every subscription must be gone). */
void pubsub_free(pubsub *ps);

/** pubsub_subscribe() - subscribe to @name, filling *@out.  0 or -ENOMEM. */
int pubsub_subscribe(pubsub *ps, const char *name, size_t len, ps_sub *out);
/** pubsub_unsubscribe() - end @sub; the last subscriber frees the channel. */
void pubsub_unsubscribe(pubsub *ps, ps_sub *sub);
/** pubsub_name() - the channel's name. */
const char *pubsub_name(const ps_sub *sub, size_t *len);

/**
 * pubsub_publish() - send @msg on @name: the number of subscribers it went
 * to, or -ENOMEM.  *@behind is set when the slowest of them is more than
 * half a ring behind (the publisher should let it catch up: pubsub_behind()).
 */
long pubsub_publish(pubsub *ps, const char *name, size_t nlen, const char *msg, size_t mlen,
		    bool *behind);

/** pubsub_behind() - whether the slowest subscriber of @name is more than half a ring behind. */
bool pubsub_behind(pubsub *ps, const char *name, size_t nlen);

/**
 * pubsub_poll() - append the messages waiting for @sub to @out (until it
 * holds @max bytes).  READY when some were appended, or with *@rc =
 * EDO_ELAGGED when the subscriber lagged; PENDING (*@rc = 0) when none are
 * waiting: the task is woken when one is published.
 */
edo_poll pubsub_poll(pubsub *ps, ps_sub *sub, edo_cx *cx, rbuf *out, size_t max, int *rc);

#endif /* MINI_REDIS_PUBSUB_H */
