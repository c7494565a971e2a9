/* A libFuzzer target for mini-redis's RESP code (examples/mini-redis/resp.c).
 *
 * Each input is parsed the way the server parses a connection's bytes, with
 * small limits so that the fuzzer reaches every one of them:
 *
 *  1. all at once: requests are taken from the front until one is
 *     incomplete or malformed;
 *  2. in pieces whose sizes come from the input's first byte, the buffer
 *     compacted and grown as conn.c does: the same requests, the same end;
 *  3. every request parsed is written back as a RESP array, which must
 *     parse again to the same arguments and pass resp_scan_value();
 *  4. resp_scan_value() over the raw input (any RESP2 value, nesting
 *     limited), which must not read past the input.
 *
 * Every argument must lie inside the buffer and respect the limits.  Any
 * difference aborts, which libFuzzer reports with the input.  Built with
 * clang's -fsanitize=fuzzer (tests/fuzz/run.sh), or with replay.c's main()
 * by any compiler (the ctest `resp_fuzz_replay`).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "resp_fuzz: %s:%d: check failed: %s\n", __FILE__,          \
				__LINE__, #cond);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static const resp_limits small = {
	.max_args = 16,
	.max_bulk = 64,
	.max_inline = 48,
	.max_request = 512,
};

/* What a parse produced: the requests, serialised, and how it ended. */
typedef struct outcome {
	rbuf log;
	resp_status end;
	char error[64]; /* a copy: p.error may point into the parser */
} outcome;

static void log_request(outcome *o, const resp_parser *p, const char *req, size_t used)
{
	CHECK(p->argc <= small.max_args);
	CHECK(used <= small.max_request + small.max_inline + 2);
	resp_array(&o->log, p->argc);
	for (size_t i = 0; i < p->argc; i++) {
		const resp_arg *a = &p->args[i];
		CHECK(a->off <= used && a->len <= used - a->off);
		CHECK(a->len <= small.max_bulk || req[0] != '*');
		resp_bulk(&o->log, req + a->off, a->len);
	}
	CHECK(!o->log.overflow);
}

/* 3: the request, written as RESP, parses back to the same arguments. */
static void round_trip(const resp_parser *p, const char *req)
{
	rbuf w = {.limit = SIZE_MAX};
	resp_array(&w, p->argc);
	for (size_t i = 0; i < p->argc; i++)
		resp_bulk(&w, req + p->args[i].off, p->args[i].len);
	CHECK(!w.overflow);
	if (p->argc == 0) {
		rbuf_free(&w);
		return;
	}
	resp_limits big;
	resp_limits_default(&big);
	size_t used = 0;
	const char *why;
	CHECK(resp_scan_value(w.data, w.len, &big, &used, &why) == RESP_OK && used == w.len);
	resp_parser q;
	resp_parser_init(&q, &big);
	CHECK(resp_parse(&q, w.data, w.len, &used) == RESP_OK && used == w.len);
	CHECK(q.argc == p->argc);
	for (size_t i = 0; i < q.argc; i++) {
		CHECK(q.args[i].len == p->args[i].len);
		CHECK(memcmp(w.data + q.args[i].off, req + p->args[i].off, q.args[i].len) == 0);
	}
	resp_parser_free(&q);
	rbuf_free(&w);
}

/* 1: the whole input at once. */
static void parse_whole(const uint8_t *data, size_t size, outcome *o)
{
	char *buf = malloc(size ? size : 1);
	CHECK(buf);
	memcpy(buf, data, size);
	resp_parser p;
	resp_parser_init(&p, &small);
	size_t off = 0, used;
	o->end = RESP_MORE;
	while (off < size) {
		o->end = resp_parse(&p, buf + off, size - off, &used);
		if (o->end != RESP_OK)
			break;
		CHECK(used > 0 && used <= size - off);
		log_request(o, &p, buf + off, used);
		round_trip(&p, buf + off);
		off += used;
		o->end = RESP_MORE;
	}
	if (o->end == RESP_ERROR)
		snprintf(o->error, sizeof o->error, "%s", p.error);
	if (o->end == RESP_MORE && off < size)
		CHECK(p.need > size - off && p.need <= small.max_request + small.max_inline + 2);
	resp_parser_free(&p);
	free(buf);
}

/* 2: the input in pieces, into a buffer managed as conn.c manages `in`. */
static void parse_pieces(const uint8_t *data, size_t size, outcome *o)
{
	size_t step = size ? (size_t)data[0] % 7 + 1 : 1;
	rbuf in = {.limit = small.max_request + small.max_inline + 4096};
	resp_parser p;
	resp_parser_init(&p, &small);
	size_t fed = 0;
	o->end = RESP_MORE;
	while (fed < size && o->end != RESP_ERROR) {
		size_t n = size - fed < step ? size - fed : step;
		CHECK(rbuf_reserve(&in, n));
		memcpy(in.data + in.len, data + fed, n);
		in.len += n;
		fed += n;
		size_t parsed = 0, used;
		while (parsed < in.len) {
			o->end = resp_parse(&p, in.data + parsed, in.len - parsed, &used);
			if (o->end != RESP_OK)
				break;
			log_request(o, &p, in.data + parsed, used);
			parsed += used;
			o->end = RESP_MORE;
		}
		rbuf_consume(&in, parsed);
	}
	if (o->end == RESP_ERROR)
		snprintf(o->error, sizeof o->error, "%s", p.error);
	resp_parser_free(&p);
	rbuf_free(&in);
}

/* 4: any RESP2 value; must not read past @size (ASan checks the copy's end). */
static void scan_raw(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	CHECK(buf);
	memcpy(buf, data, size);
	size_t used = 0;
	const char *why = NULL;
	resp_limits lim = small;
	lim.max_args = 4;
	resp_status st = resp_scan_value(buf, size, &lim, &used, &why);
	if (st == RESP_OK)
		CHECK(used > 0 && used <= size);
	if (st == RESP_ERROR)
		CHECK(why != NULL);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	outcome whole = {.log = {.limit = SIZE_MAX}}, pieces = {.log = {.limit = SIZE_MAX}};
	parse_whole(data, size, &whole);
	parse_pieces(data, size, &pieces);
	if (whole.log.len != pieces.log.len ||
	    (whole.log.len && memcmp(whole.log.data, pieces.log.data, whole.log.len) != 0) ||
	    whole.end != pieces.end || strcmp(whole.error, pieces.error) != 0) {
		fprintf(stderr,
			"resp_fuzz: whole and piecewise parses differ (end %d/%d: '%s' / '%s')\n",
			whole.end, pieces.end, whole.error, pieces.error);
		abort();
	}
	rbuf_free(&whole.log);
	rbuf_free(&pieces.log);
	scan_raw(data, size);
	return 0;
}
