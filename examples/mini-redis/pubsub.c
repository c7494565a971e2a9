/* mini-redis — publish/subscribe (see pubsub.h). */
#include "pubsub.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct ps_msg {
	uint64_t seq;
	size_t len;
	char data[];
} ps_msg;

/* Where one subscriber is: the sequence number it reads next. */
struct ps_reader {
	ps_reader *prev, *next;
	uint64_t seq;
};

struct ps_channel {
	ps_channel *next;   /* hash chain */
	ps_reader *readers; /* every subscriber's place */
	uint64_t hash;
	edo_broadcast_tx *tx;
	size_t subscribers;
	uint64_t sent;   /* messages published: the next sequence number */
	uint64_t oldest; /* the oldest sequence number still in the ring */
	size_t bytes;    /* bytes of the messages in the ring */
	ps_msg *ring[PUBSUB_RING];
	size_t nlen;
	char name[];
};

struct pubsub {
	pthread_mutex_t lock;
	bool threaded;
	ps_channel **buckets;
	size_t mask, count;
};

static void ps_lock(pubsub *ps)
{
	if (ps->threaded)
		pthread_mutex_lock(&ps->lock);
}

static void ps_unlock(pubsub *ps)
{
	if (ps->threaded)
		pthread_mutex_unlock(&ps->lock);
}

static uint64_t name_hash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a: channel names are few and short */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
	return h;
}

int pubsub_new(bool threaded, pubsub **out)
{
	pubsub *ps = calloc(1, sizeof *ps);
	if (!ps)
		return -ENOMEM;
	ps->buckets = calloc(64, sizeof *ps->buckets);
	if (!ps->buckets) {
		free(ps);
		return -ENOMEM;
	}
	ps->mask = 63;
	ps->threaded = threaded;
	pthread_mutex_init(&ps->lock, NULL);
	*out = ps;
	return 0;
}

void pubsub_free(pubsub *ps)
{
	if (!ps)
		return;
	free(ps->buckets);
	pthread_mutex_destroy(&ps->lock);
	free(ps);
}

static ps_channel *find(pubsub *ps, uint64_t h, const char *name, size_t len)
{
	for (ps_channel *c = ps->buckets[h & ps->mask]; c; c = c->next)
		if (c->hash == h && c->nlen == len && memcmp(c->name, name, len) == 0)
			return c;
	return NULL;
}

static void grow(pubsub *ps)
{
	size_t n = (ps->mask + 1) * 2;
	ps_channel **b = calloc(n, sizeof *b);
	if (!b)
		return;
	for (size_t i = 0; i <= ps->mask; i++) {
		for (ps_channel *c = ps->buckets[i], *next; c; c = next) {
			next = c->next;
			c->next = b[c->hash & (n - 1)];
			b[c->hash & (n - 1)] = c;
		}
	}
	free(ps->buckets);
	ps->buckets = b;
	ps->mask = n - 1;
}

int pubsub_subscribe(pubsub *ps, const char *name, size_t len, ps_sub *out)
{
	uint64_t h = name_hash(name, len);
	int rc = 0;
	ps_reader *rd = calloc(1, sizeof *rd);
	if (!rd)
		return -ENOMEM;
	ps_lock(ps);
	ps_channel *c = find(ps, h, name, len);
	if (c) {
		out->rx = edo_broadcast_subscribe(c->tx);
		if (!out->rx)
			rc = -ENOMEM;
	} else {
		c = calloc(1, sizeof *c + len);
		if (!c || edo_broadcast_new(PUBSUB_RING, sizeof(uint64_t), &c->tx, &out->rx) < 0) {
			free(c);
			rc = -ENOMEM;
		} else {
			c->hash = h;
			c->nlen = len;
			memcpy(c->name, name, len);
			if (ps->count > ps->mask)
				grow(ps);
			c->next = ps->buckets[h & ps->mask];
			ps->buckets[h & ps->mask] = c;
			ps->count++;
		}
	}
	if (rc == 0) {
		c->subscribers++;
		out->ch = c;
		rd->seq = c->sent;
		rd->next = c->readers;
		if (c->readers)
			c->readers->prev = rd;
		c->readers = rd;
		out->rd = rd;
	}
	ps_unlock(ps);
	if (rc < 0)
		free(rd);
	return rc;
}

static void free_channel(pubsub *ps, ps_channel *c)
{
	ps_channel **pp = &ps->buckets[c->hash & ps->mask];
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	ps->count--;
	edo_broadcast_tx_drop(c->tx);
	for (size_t i = 0; i < PUBSUB_RING; i++)
		free(c->ring[i]);
	free(c);
}

void pubsub_unsubscribe(pubsub *ps, ps_sub *sub)
{
	if (!sub->ch)
		return;
	ps_lock(ps);
	edo_broadcast_rx_drop(sub->rx);
	ps_reader *rd = sub->rd;
	if (rd->prev)
		rd->prev->next = rd->next;
	else
		sub->ch->readers = rd->next;
	if (rd->next)
		rd->next->prev = rd->prev;
	free(rd);
	if (--sub->ch->subscribers == 0)
		free_channel(ps, sub->ch);
	ps_unlock(ps);
	*sub = (ps_sub){0};
}

const char *pubsub_name(const ps_sub *sub, size_t *len)
{
	*len = sub->ch->nlen;
	return sub->ch->name;
}

/* The push a subscriber receives, formatted once. */
static ps_msg *format(const ps_channel *c, const char *msg, size_t mlen)
{
	size_t cap = c->nlen + mlen + 96; /* "*3", "message" and two bulk headers fit in 96 */
	ps_msg *m = malloc(sizeof *m + cap);
	if (!m)
		return NULL;
	rbuf b = {.data = m->data, .cap = cap, .limit = cap};
	resp_array(&b, 3);
	resp_bulk(&b, "message", 7);
	resp_bulk(&b, c->name, c->nlen);
	resp_bulk(&b, msg, mlen);
	m->len = b.len; /* b never grew: cap was enough */
	return m;
}

/* Whether the slowest reader of @c is more than half a ring behind. */
static bool channel_behind(const ps_channel *c)
{
	for (const ps_reader *rd = c->readers; rd; rd = rd->next)
		if (c->sent - rd->seq > PUBSUB_RING / 2)
			return true;
	return false;
}

bool pubsub_behind(pubsub *ps, const char *name, size_t nlen)
{
	ps_lock(ps);
	ps_channel *c = find(ps, name_hash(name, nlen), name, nlen);
	bool behind = c && channel_behind(c);
	ps_unlock(ps);
	return behind;
}

long pubsub_publish(pubsub *ps, const char *name, size_t nlen, const char *msg, size_t mlen,
		    bool *behind)
{
	uint64_t h = name_hash(name, nlen);
	long n = 0;
	*behind = false;
	ps_lock(ps);
	ps_channel *c = find(ps, h, name, nlen);
	if (c) {
		ps_msg *m = format(c, msg, mlen);
		if (!m) {
			ps_unlock(ps);
			return -ENOMEM;
		}
		uint64_t seq = m->seq = c->sent++;
		size_t slot = seq & (PUBSUB_RING - 1);
		/* The broadcast overwrites the same slot: whoever had not read
		 * that message now lags, and nobody can read it any more. */
		if (c->ring[slot]) {
			c->bytes -= c->ring[slot]->len;
			free(c->ring[slot]);
			if (c->oldest < seq - PUBSUB_RING + 1)
				c->oldest = seq - PUBSUB_RING + 1;
		}
		c->ring[slot] = m;
		c->bytes += m->len;
		while (c->bytes > PUBSUB_RING_BYTES && c->oldest < seq) {
			ps_msg **old = &c->ring[c->oldest++ & (PUBSUB_RING - 1)];
			c->bytes -= (*old)->len;
			free(*old);
			*old = NULL;
		}
		n = edo_broadcast_send(c->tx, &seq);
		if (n < 0)
			n = 0;
		*behind = channel_behind(c);
	}
	ps_unlock(ps);
	return n;
}

edo_poll pubsub_poll(pubsub *ps, ps_sub *sub, edo_cx *cx, rbuf *out, size_t max, int *rc)
{
	edo_poll r = EDO_PENDING;
	*rc = 0;
	ps_lock(ps);
	while (out->len < max) {
		uint64_t seq;
		int got;
		if (edo_broadcast_poll_recv(sub->rx, cx, &seq, &got) == EDO_PENDING)
			break;
		r = EDO_READY;
		ps_msg *m = got == 0 ? sub->ch->ring[seq & (PUBSUB_RING - 1)] : NULL;
		if (!m || m->seq != seq) { /* lagged, or dropped by the byte limit */
			*rc = EDO_ELAGGED;
			break;
		}
		sub->rd->seq = seq + 1;
		rbuf_append(out, m->data, m->len);
	}
	ps_unlock(ps);
	return r;
}
