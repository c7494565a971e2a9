/* Graceful shutdown for the example servers: on Ctrl-C, stop accepting,
 * let open connections finish what they were doing, exit within a deadline.
 *
 *   server task:  race accept against edo_ctrl_c(); on Ctrl-C close the
 *                 listener, call graceful_stop(), then sleep in small steps
 *                 until graceful_live() is 0 or the deadline passes.
 *   connection:   graceful_join() when it starts, graceful_leave() before
 *                 it closes its stream; after each request it has answered,
 *                 it stops if graceful_stopping().
 *
 * graceful_stop() shuts the read side of every open connection down
 * (shutdown(SHUT_RD)): a connection waiting for its next request reads end
 * of stream at once and closes; one in the middle of a response finishes
 * writing it first.  Connections still open at the deadline are cancelled
 * when the runtime is freed.
 *
 * Thread-safe: connections run on any worker of a multi-thread runtime.
 */
#ifndef EDO_EXAMPLES_GRACEFUL_H
#define EDO_EXAMPLES_GRACEFUL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "edo.h"

/* How long open connections get to finish after Ctrl-C. */
#define GRACEFUL_DEADLINE_MS 5000

typedef struct graceful_conn {
	edo_tcp_stream *s;
	struct graceful_conn *prev, *next;
	bool linked;
} graceful_conn;

static struct {
	pthread_mutex_t lock;
	graceful_conn *head;
	size_t live;
	atomic_bool stopping;
} graceful = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Register a new connection; false if the server is already stopping (then
 * the connection should just close). */
static inline bool graceful_join(graceful_conn *c, edo_tcp_stream *s)
{
	pthread_mutex_lock(&graceful.lock);
	bool ok = !atomic_load(&graceful.stopping);
	if (ok) {
		c->s = s;
		c->prev = NULL;
		c->next = graceful.head;
		if (c->next)
			c->next->prev = c;
		graceful.head = c;
		c->linked = true;
		graceful.live++;
	}
	pthread_mutex_unlock(&graceful.lock);
	return ok;
}

/* Unregister (before closing the stream); a no-op if never joined. */
static inline void graceful_leave(graceful_conn *c)
{
	pthread_mutex_lock(&graceful.lock);
	if (c->linked) {
		if (c->prev)
			c->prev->next = c->next;
		else
			graceful.head = c->next;
		if (c->next)
			c->next->prev = c->prev;
		c->linked = false;
		graceful.live--;
	}
	pthread_mutex_unlock(&graceful.lock);
}

static inline bool graceful_stopping(void)
{
	return atomic_load_explicit(&graceful.stopping, memory_order_relaxed);
}

/* Stop: no new connection joins; every open one stops reading. */
static inline void graceful_stop(void)
{
	pthread_mutex_lock(&graceful.lock);
	atomic_store(&graceful.stopping, true);
	for (graceful_conn *c = graceful.head; c; c = c->next)
		edo_tcp_stream_shutdown(c->s, SHUT_RD);
	pthread_mutex_unlock(&graceful.lock);
}

/* Connections still open. */
static inline size_t graceful_live(void)
{
	pthread_mutex_lock(&graceful.lock);
	size_t n = graceful.live;
	pthread_mutex_unlock(&graceful.lock);
	return n;
}

#endif /* EDO_EXAMPLES_GRACEFUL_H */
