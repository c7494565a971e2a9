/* mini-redis — RESP2 parsing and writing (see resp.h).
 *
 * The request parser, drawn:
 *
 *   fresh ──'*'──▶ header `*n\r\n` ──▶ ┌─▶ header `$len\r\n` ──▶ len bytes + \r\n ─┐
 *     │                                └──────────── n times ◀────────────────────┘
 *     └──other──▶ inline: one line, split into words (quotes as redis-cli's)
 *
 * Everything it keeps between calls is an offset (pos_) and two counters, so
 * the caller may move the bytes (compact or grow its buffer) between calls.
 * Every line is searched for only in the bytes not yet searched, and every
 * length is checked against the limits before anything is allocated for it.
 */
#include "resp.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void resp_limits_default(resp_limits *l)
{
	*l = (resp_limits){
		.max_args = RESP_DEFAULT_MAX_ARGS,
		.max_bulk = RESP_DEFAULT_MAX_BULK,
		.max_inline = RESP_DEFAULT_MAX_INLINE,
		.max_request = RESP_DEFAULT_MAX_REQUEST,
	};
}

void resp_parser_init(resp_parser *p, const resp_limits *limits)
{
	*p = (resp_parser){0};
	if (limits)
		p->limits = *limits;
	else
		resp_limits_default(&p->limits);
}

void resp_parser_free(resp_parser *p)
{
	free(p->args);
	p->args = NULL;
	p->args_cap_ = 0;
	p->argc = 0;
}

/* ---- numbers -------------------------------------------------------------------------- */

bool resp_parse_ll(const char *p, size_t n, long long *v)
{
	if (n == 0 || n > 20)
		return false;
	if (n == 1 && p[0] == '0') {
		*v = 0;
		return true;
	}
	bool neg = p[0] == '-';
	size_t i = neg;
	if (i == n || p[i] < '1' || p[i] > '9')
		return false; /* no digits, or a leading zero */
	unsigned long long u = 0;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		unsigned d = (unsigned)(p[i] - '0');
		if (u > (~0ULL - d) / 10)
			return false;
		u = u * 10 + d;
	}
	if (neg) {
		if (u > (unsigned long long)LLONG_MAX + 1)
			return false;
		*v = u == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)u;
	} else {
		if (u > (unsigned long long)LLONG_MAX)
			return false;
		*v = (long long)u;
	}
	return true;
}

size_t resp_ll(char *out, long long v)
{
	char tmp[24];
	size_t n = 0;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	size_t len = 0;
	if (v < 0)
		out[len++] = '-';
	while (n)
		out[len++] = tmp[--n];
	return len;
}

/* ---- the request parser ---------------------------------------------------------------- */

static resp_status fail(resp_parser *p, const char *why)
{
	p->error = why;
	p->need = 0;
	p->pos_ = 0;
	p->multibulk_ = p->in_bulk_ = false;
	return RESP_ERROR;
}

static resp_status done(resp_parser *p, size_t size, size_t *consumed)
{
	*consumed = size;
	p->need = 0;
	p->pos_ = 0;
	p->multibulk_ = p->in_bulk_ = false;
	return RESP_OK;
}

static bool push_arg(resp_parser *p, size_t off, size_t len)
{
	if (p->argc == p->args_cap_) {
		size_t cap = p->args_cap_ ? p->args_cap_ * 2 : 8;
		if (cap > p->limits.max_args)
			cap = p->limits.max_args;
		resp_arg *a = realloc(p->args, cap * sizeof *a);
		if (!a)
			return false;
		p->args = a;
		p->args_cap_ = cap;
	}
	p->args[p->argc++] = (resp_arg){off, len};
	return true;
}

/* The line starting at @from ends with "\r\n" at *@eol (the '\r').  RESP_MORE
 * if it has not arrived, RESP_ERROR if it is longer than max_inline or its
 * '\r' is not followed by '\n'. */
static resp_status find_crlf(const resp_parser *p, const char *buf, size_t len, size_t from,
			     size_t *eol)
{
	size_t avail = len - from, lim = p->limits.max_inline;
	const char *cr = memchr(buf + from, '\r', avail < lim + 1 ? avail : lim + 1);
	if (!cr)
		return avail > lim ? RESP_ERROR : RESP_MORE;
	size_t at = (size_t)(cr - buf);
	if (at + 1 == len)
		return RESP_MORE;
	if (buf[at + 1] != '\n')
		return RESP_ERROR;
	*eol = at;
	return RESP_OK;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The bytes that separate the words of an inline request (isspace() in the C
 * locale), as a table: one load per byte of a word. */
static const bool blank[256] = {
	[' '] = true, ['\t'] = true, ['\r'] = true, ['\n'] = true, ['\v'] = true, ['\f'] = true,
};

static bool is_blank(char c)
{
	return blank[(unsigned char)c];
}

/* Splits buf[0..n) into words in place, with redis-cli's quoting: "..." with
 * \n \r \t \b \a \\ \" \xHH escapes, '...' with \' only.  The unquoted bytes
 * are written back over the line (never past what was read). */
static resp_status split_inline(resp_parser *p, char *buf, size_t n)
{
	size_t r = 0, w = 0;
	for (;;) {
		while (r < n && is_blank(buf[r]))
			r++;
		if (r == n)
			return RESP_OK;
		if (p->argc == p->limits.max_args)
			return fail(p, "Protocol error: too many arguments in inline request");
		size_t start = w;
		char q = buf[r] == '"' || buf[r] == '\'' ? buf[r] : 0;
		if (!q) {
			/* An unquoted word, the common case: its bytes as they are,
			 * moved down only if a quoted word before it got shorter. */
			size_t from = r;
			while (r < n && !is_blank(buf[r]))
				r++;
			if (w != from)
				memmove(buf + w, buf + from, r - from);
			w += r - from;
			if (!push_arg(p, start, w - start))
				return fail(p, "Protocol error: out of memory");
			continue;
		}
		r++;
		for (;;) {
			if (r == n)
				return fail(p, "Protocol error: unbalanced quotes in request");
			char c = buf[r];
			if (c == q) {
				r++;
				/* A closing quote must end the word. */
				if (r < n && !is_blank(buf[r]))
					return fail(p,
						    "Protocol error: unbalanced quotes in request");
				break;
			} else if (c == '\\' && r + 1 < n) {
				char e = buf[r + 1];
				if (q == '\'') {
					buf[w++] = e == '\'' ? '\'' : '\\';
					r += e == '\'' ? 2 : 1;
				} else if (e == 'x' && r + 3 < n && hexval(buf[r + 2]) >= 0 &&
					   hexval(buf[r + 3]) >= 0) {
					buf[w++] = (char)(hexval(buf[r + 2]) * 16 +
							  hexval(buf[r + 3]));
					r += 4;
				} else {
					buf[w++] = e == 'n' ? '\n' :
						   e == 'r' ? '\r' :
						   e == 't' ? '\t' :
						   e == 'b' ? '\b' :
						   e == 'a' ? '\a' :
							      e;
					r += 2;
				}
			} else {
				buf[w++] = c;
				r++;
			}
		}
		if (!push_arg(p, start, w - start))
			return fail(p, "Protocol error: out of memory");
	}
}

static resp_status parse_inline(resp_parser *p, char *buf, size_t len, size_t *consumed)
{
	size_t from = p->pos_, lim = p->limits.max_inline;
	size_t avail = len - from;
	const char *nl = memchr(buf + from, '\n', avail);
	if (!nl || (size_t)(nl - buf) > lim) {
		if (len > lim)
			return fail(p, "Protocol error: too big inline request");
		p->pos_ = len; /* searched up to here */
		p->need = len + 1;
		return RESP_MORE;
	}
	size_t eol = (size_t)(nl - buf), end = eol;
	if (end > 0 && buf[end - 1] == '\r')
		end--;
	p->argc = 0;
	resp_status st = split_inline(p, buf, end);
	if (st != RESP_OK)
		return st;
	return done(p, eol + 1, consumed);
}

/* The number of a `*n` or `$n` header whose type byte is buf[at], read in one
 * pass: an optional '-', digits without a leading zero, "\r\n".  A byte that
 * cannot be there is an error as soon as it arrives (so a header is never
 * longer than 22 bytes); one that has not fully arrived is RESP_MORE. */
static resp_status read_header(resp_parser *p, const char *buf, size_t len, size_t at,
			       long long *num, size_t *next)
{
	/* The common case first: one or two digits, all there. */
	if (len - at >= 5) {
		unsigned a = (unsigned)(unsigned char)buf[at + 1] - '0';
		unsigned b = (unsigned)(unsigned char)buf[at + 2] - '0';
		if (a <= 9 && buf[at + 2] == '\r' && buf[at + 3] == '\n') {
			*num = a;
			*next = at + 4;
			return RESP_OK;
		}
		if (a - 1 <= 8 && b <= 9 && buf[at + 3] == '\r' && buf[at + 4] == '\n') {
			*num = a * 10 + b;
			*next = at + 5;
			return RESP_OK;
		}
	}
	const char *bad = buf[at] == '*' ? "Protocol error: invalid multibulk length" :
					   "Protocol error: invalid bulk length";
	size_t i = at + 1;
	bool neg = i < len && buf[i] == '-';
	size_t first = i + neg;
	unsigned long long v = 0;
	for (i = first; i < len; i++) {
		unsigned d = (unsigned)(unsigned char)buf[i] - '0';
		if (d > 9)
			break;
		if ((i > first && buf[first] == '0') ||
		    v > ((unsigned long long)LLONG_MAX - d) / 10)
			return fail(p, bad); /* a leading zero, or too large */
		v = v * 10 + d;
	}
	if (i + 1 >= len) {
		if (i < len && buf[i] != '\r')
			return fail(p, bad);
		p->need = len + 1;
		return RESP_MORE;
	}
	if (i == first || buf[i] != '\r' || buf[i + 1] != '\n' || (neg && v == 0))
		return fail(p, bad);
	*num = neg ? -(long long)v : (long long)v;
	*next = i + 2;
	return RESP_OK;
}

resp_status resp_parse(resp_parser *p, char *buf, size_t len, size_t *consumed)
{
	const resp_limits *lim = &p->limits;
	*consumed = 0;
	if (len == 0) {
		p->need = 1;
		return RESP_MORE;
	}
	if (buf[0] != '*')
		return parse_inline(p, buf, len, consumed);

	if (!p->multibulk_) {
		long long n;
		size_t next;
		resp_status st = read_header(p, buf, len, 0, &n, &next);
		if (st != RESP_OK)
			return st;
		if (n > (long long)lim->max_args)
			return fail(p, "Protocol error: invalid multibulk length");
		p->argc = 0;
		if (n <= 0) /* `*0` and `*-1`: nothing to do, as Redis */
			return done(p, next, consumed);
		p->multibulk_ = true;
		p->expect_ = (size_t)n;
		p->pos_ = next;
		p->in_bulk_ = false;
	}

	while (p->argc < p->expect_) {
		if (!p->in_bulk_) {
			size_t at = p->pos_;
			if (at >= len) {
				p->need = at + 1;
				return RESP_MORE;
			}
			if (buf[at] != '$') {
				char c = buf[at];
				snprintf(p->errbuf_, sizeof p->errbuf_,
					 "Protocol error: expected '$', got '%c'",
					 c >= 32 && c < 127 ? c : '?');
				return fail(p, p->errbuf_);
			}
			long long n;
			size_t next;
			resp_status st = read_header(p, buf, len, at, &n, &next);
			if (st != RESP_OK)
				return st;
			if (n < 0 || (unsigned long long)n > lim->max_bulk)
				return fail(p, "Protocol error: invalid bulk length");
			if (next + (size_t)n + 2 > lim->max_request)
				return fail(p, "Protocol error: request too large");
			p->pos_ = next;
			p->bulk_ = (size_t)n;
			p->in_bulk_ = true;
		}
		size_t end = p->pos_ + p->bulk_;
		if (len < end + 2) {
			p->need = end + 2;
			return RESP_MORE;
		}
		if (buf[end] != '\r' || buf[end + 1] != '\n')
			return fail(p, "Protocol error: expected CRLF after bulk string");
		if (!push_arg(p, p->pos_, p->bulk_))
			return fail(p, "Protocol error: out of memory");
		p->pos_ = end + 2;
		p->in_bulk_ = false;
	}
	return done(p, p->pos_, consumed);
}

/* ---- the output buffer ---------------------------------------------------------------- */

/* The first allocation of a buffer: one read or one batch of replies. */
#define RBUF_MIN_CAP 16384

bool rbuf_reserve(rbuf *b, size_t extra)
{
	if (b->overflow)
		return false;
	if (extra <= b->cap - b->len)
		return true;
	if (extra > b->limit || b->len > b->limit - extra) {
		b->overflow = true;
		return false;
	}
	size_t want = b->len + extra, cap = b->cap ? b->cap : RBUF_MIN_CAP;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	if (cap > b->limit)
		cap = b->limit;
	char *d = realloc(b->data, cap);
	if (!d) {
		b->overflow = true;
		return false;
	}
	b->data = d;
	b->cap = cap;
	return true;
}

void rbuf_append(rbuf *b, const void *p, size_t n)
{
	if (n && rbuf_reserve(b, n)) {
		memcpy(b->data + b->len, p, n);
		b->len += n;
	}
}

void rbuf_truncate(rbuf *b, size_t len)
{
	if (len < b->len)
		b->len = len;
	b->overflow = false;
}

void rbuf_consume(rbuf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void rbuf_shrink(rbuf *b, size_t keep)
{
	if (b->len == 0 && b->cap > keep) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
}

void rbuf_free(rbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->overflow = false;
}

/* ---- reply writers ---------------------------------------------------------------------- */

/* `<type><decimal>\r\n` */
static void header(rbuf *b, char type, long long v)
{
	if (!rbuf_reserve(b, 24))
		return;
	char *o = b->data + b->len;
	o[0] = type;
	size_t n = 1 + resp_ll(o + 1, v);
	o[n++] = '\r';
	o[n++] = '\n';
	b->len += n;
}

void resp_simple(rbuf *b, const char *s)
{
	size_t n = strlen(s);
	if (!rbuf_reserve(b, n + 3))
		return;
	char *o = b->data + b->len;
	o[0] = '+';
	memcpy(o + 1, s, n);
	o[n + 1] = '\r';
	o[n + 2] = '\n';
	b->len += n + 3;
}

void resp_error(rbuf *b, const char *msg)
{
	size_t n = strlen(msg);
	if (!rbuf_reserve(b, n + 3))
		return;
	char *o = b->data + b->len;
	o[0] = '-';
	/* An error is one line: user bytes in it (a command name) must not break it. */
	for (size_t i = 0; i < n; i++)
		o[1 + i] = msg[i] == '\r' || msg[i] == '\n' ? ' ' : msg[i];
	o[n + 1] = '\r';
	o[n + 2] = '\n';
	b->len += n + 3;
}

void resp_errorf(rbuf *b, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	resp_error(b, msg);
}

void resp_int(rbuf *b, long long v)
{
	header(b, ':', v);
}

void resp_array(rbuf *b, size_t n)
{
	header(b, '*', (long long)n);
}

void resp_null(rbuf *b)
{
	rbuf_put(b, "$-1\r\n", 5);
}

void resp_bulk(rbuf *b, const void *p, size_t n)
{
	if (!rbuf_reserve(b, n + 26))
		return;
	char *o = b->data + b->len;
	o[0] = '$';
	size_t h = 1 + resp_ll(o + 1, (long long)n);
	o[h++] = '\r';
	o[h++] = '\n';
	if (n)
		memcpy(o + h, p, n);
	o[h + n] = '\r';
	o[h + n + 1] = '\n';
	b->len += h + n + 2;
}

void resp_bulk_str(rbuf *b, const char *s)
{
	resp_bulk(b, s, strlen(s));
}

void resp_bulk_int(rbuf *b, long long v)
{
	char d[24];
	resp_bulk(b, d, resp_ll(d, v));
}

/* ---- checking a value of any type ------------------------------------------------------- */

resp_status resp_scan_value(const char *buf, size_t len, const resp_limits *limits,
			    size_t *consumed, const char **why)
{
	/* left[d]: values still to read at nesting level d. */
	size_t left[RESP_MAX_DEPTH + 1];
	int depth = 0;
	size_t pos = 0;
	resp_parser lp = {.limits = *limits}; /* for find_crlf's line limit */
	left[0] = 1;
	*why = NULL;
	while (depth >= 0) {
		if (left[depth] == 0) {
			depth--;
			continue;
		}
		left[depth]--;
		if (pos >= len)
			return RESP_MORE;
		char type = buf[pos];
		size_t eol = 0;
		resp_status st = find_crlf(&lp, buf, len, pos + 1, &eol);
		if (st == RESP_MORE)
			return RESP_MORE;
		if (st == RESP_ERROR) {
			*why = "line too long or bad line end";
			return RESP_ERROR;
		}
		long long n = 0;
		switch (type) {
		case '+':
		case '-':
			if (memchr(buf + pos + 1, '\n', eol - pos - 1)) {
				*why = "newline inside a simple string";
				return RESP_ERROR;
			}
			pos = eol + 2;
			break;
		case ':':
			if (!resp_parse_ll(buf + pos + 1, eol - pos - 1, &n)) {
				*why = "bad integer";
				return RESP_ERROR;
			}
			pos = eol + 2;
			break;
		case '$':
			if (!resp_parse_ll(buf + pos + 1, eol - pos - 1, &n) || n < -1 ||
			    (n > 0 && (unsigned long long)n > limits->max_bulk)) {
				*why = "bad bulk length";
				return RESP_ERROR;
			}
			pos = eol + 2;
			if (n >= 0) {
				if (len - pos < (size_t)n + 2)
					return RESP_MORE;
				if (buf[pos + (size_t)n] != '\r' ||
				    buf[pos + (size_t)n + 1] != '\n') {
					*why = "no CRLF after bulk";
					return RESP_ERROR;
				}
				pos += (size_t)n + 2;
			}
			break;
		case '*':
			if (!resp_parse_ll(buf + pos + 1, eol - pos - 1, &n) || n < -1 ||
			    (n > 0 && (unsigned long long)n > limits->max_args)) {
				*why = "bad array length";
				return RESP_ERROR;
			}
			pos = eol + 2;
			if (n > 0) {
				if (depth == RESP_MAX_DEPTH) {
					*why = "nested too deep";
					return RESP_ERROR;
				}
				left[++depth] = (size_t)n;
			}
			break;
		default:
			*why = "unknown type byte";
			return RESP_ERROR;
		}
	}
	*consumed = pos;
	return RESP_OK;
}
