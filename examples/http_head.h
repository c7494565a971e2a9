/* The end of an HTTP/1.1 request head, for the hello servers
 * (hello_server.c, hello_server_fiber.c).
 *
 * http_head_end(p, len) - the first "\r\n\r\n" in p[0, len): a pointer to
 * its first byte, or NULL.  memmem() would do, but glibc's is slow on
 * needles this short: it and its memcmp() cost about 400 instructions per
 * request, over a quarter of hello_server's user time; a vectorised
 * memchr() for each '\r' took the server from 1,417 to 1,067 instructions
 * per request (callgrind, wrk -t1 -c256, one worker).
 */
#ifndef EDO_EXAMPLES_HTTP_HEAD_H
#define EDO_EXAMPLES_HTTP_HEAD_H

#include <stddef.h>
#include <string.h>

static inline const char *http_head_end(const char *p, size_t len)
{
	const char *end = p + len;
	while (end - p >= 4) {
		p = memchr(p, '\r', (size_t)(end - p) - 3);
		if (!p)
			return NULL;
		if (memcmp(p, "\r\n\r\n", 4) == 0)
			return p;
		p++;
	}
	return NULL;
}

#endif /* EDO_EXAMPLES_HTTP_HEAD_H */
