/* mini-redis — RESP2, the Redis protocol: parsing requests, writing replies.
 *
 * Pure C with no Edo in it, so that the fuzz target (tests/fuzz/) and the
 * tutorial can use it as it is.
 *
 * A request is an array of bulk strings, `*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, or an
 * "inline" line of words, `GET k\r\n` (what telnet users type).  The parser is
 * incremental: it keeps its place inside a request that has not fully
 * arrived, so a large request that trickles in is not parsed again from the
 * start on every read.  Every length it reads is bounded (resp_limits); a
 * request that breaks a limit or the grammar is a protocol error, after which
 * the server answers `-ERR Protocol error: ...` and closes the connection, as
 * Redis does.  Nested arrays are not requests (Redis refuses them too): the
 * nesting limit of a request is 1.
 *
 * Replies are written into an rbuf, a growable buffer with a hard limit and a
 * sticky overflow flag: writers never fail one by one, the caller checks
 * rbuf.overflow once per reply.  resp_scan_value() checks that bytes hold one
 * complete, well-formed RESP2 value of any type, with limits on lengths and on
 * nesting depth; the tests and the fuzz target use it on what the writers
 * produce.
 */
#ifndef MINI_REDIS_RESP_H
#define MINI_REDIS_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- limits --------------------------------------------------------------------------- */

/** The bounds on what a request may contain; resp_limits_default() fills them. */
typedef struct resp_limits {
	size_t max_args;    /**< elements of a request array (Redis: 1,048,576) */
	size_t max_bulk;    /**< bytes of one bulk string (Redis: 512 MiB) */
	size_t max_inline;  /**< bytes of one line: an inline request, a `*n` or `$n` header */
	size_t max_request; /**< bytes of one whole request, framing included */
} resp_limits;

#define RESP_DEFAULT_MAX_ARGS (1024u * 1024u)
#define RESP_DEFAULT_MAX_BULK (16u * 1024u * 1024u)
#define RESP_DEFAULT_MAX_INLINE (64u * 1024u)
#define RESP_DEFAULT_MAX_REQUEST (64u * 1024u * 1024u)
/** Nesting depth that resp_scan_value() accepts. */
#define RESP_MAX_DEPTH 32

void resp_limits_default(resp_limits *l);

/* ---- the request parser --------------------------------------------------------------- */

/** One argument: its bytes are buf[off .. off + len) of the request's buffer. */
typedef struct resp_arg {
	size_t off, len;
} resp_arg;

typedef enum resp_status {
	RESP_OK = 0,    /**< a request was parsed (argc may be 0: an empty line, `*0`) */
	RESP_MORE = 1,  /**< incomplete: call again once more bytes arrived */
	RESP_ERROR = 2, /**< protocol error: p->error says which; close the connection */
} resp_status;

/**
 * The parser's state for the request being parsed.  Initialise it with
 * resp_parser_init(); it resets itself after each request.  `args` is owned
 * (grown with realloc as arguments arrive, never past limits.max_args).
 */
typedef struct resp_parser {
	resp_limits limits;
	resp_arg *args; /**< the arguments of the last RESP_OK */
	size_t argc;
	const char *error; /**< after RESP_ERROR: the reason, for the reply */
	size_t need;       /**< after RESP_MORE: bytes the buffer must hold to go on; else 0 */
	/* private: where the parse of the current request stands */
	size_t pos_;      /* bytes of the request consumed (or scanned, inline) */
	size_t expect_;   /* multibulk: arguments announced */
	size_t bulk_;     /* length of the bulk being read, when in_bulk_ */
	size_t args_cap_; /* allocated entries of args */
	bool multibulk_;  /* the header `*n` has been read */
	bool in_bulk_;    /* the header `$n` of the next argument has been read */
	char errbuf_[64];
} resp_parser;

/** resp_parser_init() - a parser with @limits (NULL: the defaults). */
void resp_parser_init(resp_parser *p, const resp_limits *limits);

/** resp_parser_free() - release the argument array. */
void resp_parser_free(resp_parser *p);

/**
 * resp_parse() - parse the request at the start of @buf (@len bytes).
 *
 * @buf must begin where the request begins: the bytes of a request that came
 * back RESP_MORE must still be at the front of @buf when it is called again
 * (they may have moved in memory; positions are offsets).  On RESP_OK,
 * *@consumed is the request's size and p->args / p->argc its arguments,
 * offsets into @buf; drop the consumed bytes before the next call.  An inline
 * request is unquoted in place (its arguments may be shorter than the bytes
 * they came from), so @buf is written to.  On RESP_MORE, p->need is how many
 * bytes @buf must hold for the parse to move on (at most
 * limits.max_request + 2): grow the buffer to that.
 */
resp_status resp_parse(resp_parser *p, char *buf, size_t len, size_t *consumed);

/* ---- a growable output buffer -------------------------------------------------------- */

/**
 * Bytes data[0..len) of cap allocated.  Appends never fail one by one: one
 * that would pass `limit` or cannot allocate sets `overflow` and is
 * dropped, and so is every later one until resp_buf_truncate() goes back to
 * a length before it.  Zero-initialise with a limit: (rbuf){.limit = n}.
 */
typedef struct rbuf {
	char *data;
	size_t len, cap, limit;
	bool overflow;
} rbuf;

/** rbuf_reserve() - make room for @extra more bytes.  false (and overflow set) if it cannot. */
bool rbuf_reserve(rbuf *b, size_t extra);
void rbuf_append(rbuf *b, const void *p, size_t n);
/** rbuf_put() - rbuf_append() inlined for the room-already-there case: the
 * short constant replies of the hot commands (+OK, +PONG) cost a copy. */
static inline void rbuf_put(rbuf *b, const void *p, size_t n)
{
	if (!b->overflow && n <= b->cap - b->len) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
	} else {
		rbuf_append(b, p, n);
	}
}
/** rbuf_truncate() - go back to @len bytes, clearing the overflow flag. */
void rbuf_truncate(rbuf *b, size_t len);
/** rbuf_consume() - drop the first @n bytes, moving the rest to the front. */
void rbuf_consume(rbuf *b, size_t n);
/** rbuf_shrink() - free the memory of an empty buffer above @keep bytes. */
void rbuf_shrink(rbuf *b, size_t keep);
void rbuf_free(rbuf *b);

/* ---- reply writers ---------------------------------------------------------------------- */

void resp_simple(rbuf *b, const char *s);         /* +OK\r\n */
void resp_error(rbuf *b, const char *msg);        /* -ERR msg\r\n (msg includes "ERR") */
void resp_int(rbuf *b, long long v);              /* :42\r\n */
void resp_bulk(rbuf *b, const void *p, size_t n); /* $n\r\n...\r\n */
void resp_bulk_str(rbuf *b, const char *s);       /* a bulk of a C string */
void resp_bulk_int(rbuf *b, long long v);         /* the decimal of @v as a bulk */
void resp_null(rbuf *b);                          /* $-1\r\n */
void resp_array(rbuf *b, size_t n);               /* *n\r\n, then n values */
void resp_errorf(rbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** resp_ll() - write @v in decimal to @out (at least 21 bytes); returns the length. */
size_t resp_ll(char *out, long long v);

/**
 * resp_parse_ll() - @p[0..n) as a signed 64-bit decimal, strictly: an
 * optional '-', digits, no leading zeros or spaces, no overflow (Redis's
 * string2ll).  Returns true and sets *@v, or false.
 */
bool resp_parse_ll(const char *p, size_t n, long long *v);

/**
 * resp_scan_value() - whether @buf[0..len) starts with one complete RESP2
 * value (simple string, error, integer, bulk or null bulk, array or null
 * array, nested up to RESP_MAX_DEPTH), with the lengths of @limits.
 * RESP_OK sets *@consumed to its size; RESP_MORE: incomplete so far;
 * RESP_ERROR: malformed, *@why says how.
 */
resp_status resp_scan_value(const char *buf, size_t len, const resp_limits *limits,
			    size_t *consumed, const char **why);

#endif /* MINI_REDIS_RESP_H */
