/* Socket addresses and host name resolution (edo/net.h).
 *
 * edo_lookup_host runs getaddrinfo(3) on the blocking pool.  The job and
 * the future share a small reference-counted record, so that a future
 * dropped while the job runs leaves the job to free what it made. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edo/error.h"
#include "edo/net.h"

/* ---- addresses ---------------------------------------------------------------------------- */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int edo_addr_ip(edo_addr *a, const char *ip, uint16_t port)
{
	if (!a || !ip)
		return -EINVAL;
	edo_addr t;
	memset(&t, 0, sizeof t);
	if (inet_pton(AF_INET, ip, &t.u.in4.sin_addr) == 1) {
		t.u.in4.sin_family = AF_INET;
		t.u.in4.sin_port = htons(port);
		t.len = sizeof t.u.in4;
		*a = t;
		return 0;
	}
	char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	const char *pct = strchr(ip, '%');
	size_t n = pct ? (size_t)(pct - ip) : strlen(ip);
	if (n >= INET6_ADDRSTRLEN)
		return -EINVAL;
	memcpy(buf, ip, n);
	buf[n] = 0;
	if (inet_pton(AF_INET6, buf, &t.u.in6.sin6_addr) != 1)
		return -EINVAL;
	if (pct) {
		unsigned idx = if_nametoindex(pct + 1);
		if (!idx) {
			/* Or a number: digits only (strtoul would also take
			 * leading space and a sign). */
			if (!is_digit(pct[1]))
				return -EINVAL;
			char *end;
			unsigned long v = strtoul(pct + 1, &end, 10);
			if (*end || end == pct + 1 || v > 0xffffffffUL)
				return -EINVAL;
			idx = (unsigned)v;
		}
		t.u.in6.sin6_scope_id = idx;
	}
	t.u.in6.sin6_family = AF_INET6;
	t.u.in6.sin6_port = htons(port);
	t.len = sizeof t.u.in6;
	*a = t;
	return 0;
}

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	/* Digits only: strtoul would also take leading space and a sign. */
	if (!is_digit(*s))
		return -EINVAL;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int edo_addr_parse(edo_addr *a, const char *s)
{
	if (!a || !s)
		return -EINVAL;
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	const char *colon;
	size_t n;
	bool bracketed = *s == '[';
	if (bracketed) {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		n = (size_t)(close - s - 1);
		s++;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - s);
		if (memchr(s, ':', n))
			return -EINVAL; /* a bare IPv6 address needs brackets */
	}
	if (n == 0 || n >= sizeof host)
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = 0;
	uint16_t port;
	if (parse_port(colon + 1, &port) < 0)
		return -EINVAL;
	edo_addr t;
	if (edo_addr_ip(&t, host, port) < 0)
		return -EINVAL;
	/* Brackets go around an IPv6 address, and only there. */
	if (bracketed != (edo_addr_family(&t) == AF_INET6))
		return -EINVAL;
	*a = t;
	return 0;
}

int edo_addr_unix(edo_addr *a, const char *path)
{
	if (!a || !path)
		return -EINVAL;
	size_t n = strlen(path);
	edo_addr t;
	memset(&t, 0, sizeof t);
	/* sun_path (108 bytes) holds a path and its NUL (so at most 107
	 * bytes), or an abstract name's leading NUL -- the '@' here -- and up
	 * to 107 bytes, with no NUL after them. */
	bool abstract = n > 0 && path[0] == '@';
	size_t max = abstract ? sizeof t.u.un.sun_path : sizeof t.u.un.sun_path - 1;
	if (n == 0 || n > max || (abstract && n == 1))
		return -EINVAL;
	t.u.un.sun_family = AF_UNIX;
	memcpy(t.u.un.sun_path, path, n);
	if (abstract) {
		/* Abstract: a leading NUL, and the length says where it ends. */
		t.u.un.sun_path[0] = 0;
		t.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		t.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	*a = t;
	return 0;
}

int edo_addr_family(const edo_addr *a)
{
	if (!a || a->len < sizeof(sa_family_t))
		return AF_UNSPEC;
	return a->u.sa.sa_family;
}

uint16_t edo_addr_port(const edo_addr *a)
{
	switch (edo_addr_family(a)) {
	case AF_INET:
		return ntohs(a->u.in4.sin_port);
	case AF_INET6:
		return ntohs(a->u.in6.sin6_port);
	default:
		return 0;
	}
}

int edo_addr_format(const edo_addr *a, char *buf, size_t len)
{
	if (!a || !buf || !len)
		return -EINVAL;
	char ip[INET6_ADDRSTRLEN];
	int w;
	switch (edo_addr_family(a)) {
	case AF_INET:
		inet_ntop(AF_INET, &a->u.in4.sin_addr, ip, sizeof ip);
		w = snprintf(buf, len, "%s:%u", ip, ntohs(a->u.in4.sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &a->u.in6.sin6_addr, ip, sizeof ip);
		if (a->u.in6.sin6_scope_id)
			w = snprintf(buf, len, "[%s%%%u]:%u", ip, a->u.in6.sin6_scope_id,
				     ntohs(a->u.in6.sin6_port));
		else
			w = snprintf(buf, len, "[%s]:%u", ip, ntohs(a->u.in6.sin6_port));
		break;
	case AF_UNIX: {
		size_t off = offsetof(struct sockaddr_un, sun_path);
		size_t n = a->len > off ? a->len - off : 0;
		if (n == 0) {
			w = snprintf(buf, len, "(unnamed)");
		} else if (a->u.un.sun_path[0] == 0) {
			w = snprintf(buf, len, "@%.*s", (int)(n - 1), a->u.un.sun_path + 1);
		} else {
			w = snprintf(buf, len, "%.*s", (int)strnlen(a->u.un.sun_path, n),
				     a->u.un.sun_path);
		}
		break;
	}
	default:
		return -EINVAL;
	}
	return w < 0 || (size_t)w >= len ? -ENOSPC : 0;
}

bool edo_addr_equal(const edo_addr *a, const edo_addr *b)
{
	int f = edo_addr_family(a);
	if (f != edo_addr_family(b))
		return false;
	switch (f) {
	case AF_INET:
		return a->u.in4.sin_port == b->u.in4.sin_port &&
		       a->u.in4.sin_addr.s_addr == b->u.in4.sin_addr.s_addr;
	case AF_INET6:
		return a->u.in6.sin6_port == b->u.in6.sin6_port &&
		       a->u.in6.sin6_scope_id == b->u.in6.sin6_scope_id &&
		       memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, 16) == 0;
	case AF_UNIX:
		return a->len == b->len && memcmp(&a->u.un, &b->u.un, a->len) == 0;
	default:
		return false;
	}
}

/* ---- lookup ------------------------------------------------------------------------------------ */

typedef struct edo__lookup_job {
	atomic_int refs; /* the future and the blocking job */
	char *host;
	uint16_t port;
	int type;
	int rc;
	edo_addr *addrs;
	size_t count;
} lookup_job;

static void job_unref(lookup_job *j)
{
	if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) == 1) {
		free(j->addrs);
		free(j->host);
		free(j);
	}
}

static int gai_to_errno(int e)
{
	switch (e) {
	case EAI_NONAME:
	case EAI_NODATA:
	case EAI_ADDRFAMILY:
		return -ENOENT;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	default:
		return -EINVAL;
	}
}

static void *lookup_run(void *arg)
{
	lookup_job *j = arg;
	char port[8];
	(void)snprintf(port, sizeof port, "%u", j->port);
	struct addrinfo hints = {.ai_socktype = j->type, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int e = getaddrinfo(j->host, port, &hints, &res);
	if (e) {
		j->rc = gai_to_errno(e);
	} else {
		size_t n = 0;
		for (struct addrinfo *p = res; p; p = p->ai_next)
			n++;
		j->addrs = calloc(n ? n : 1, sizeof *j->addrs);
		if (!j->addrs) {
			j->rc = -ENOMEM;
		} else {
			for (struct addrinfo *p = res; p; p = p->ai_next) {
				if (p->ai_addrlen > sizeof j->addrs->u)
					continue;
				memcpy(&j->addrs[j->count].u, p->ai_addr, p->ai_addrlen);
				j->addrs[j->count++].len = p->ai_addrlen;
			}
			j->rc = j->count ? 0 : -ENOENT;
		}
		freeaddrinfo(res);
	}
	job_unref(j);
	return NULL;
}

static void lookup_drop(edo_future *base)
{
	edo_lookup_fut *f = (edo_lookup_fut *)base;
	if (f->join_) {
		/* Not aborted: the job must run to release its reference. */
		edo_join_detach(f->join_);
		f->join_ = NULL;
	}
	if (f->job_) {
		job_unref(f->job_);
		f->job_ = NULL;
	}
	free(f->host_);
	f->host_ = NULL;
}

static edo_poll lookup_poll(edo_future *base, edo_cx *cx)
{
	edo_lookup_fut *f = (edo_lookup_fut *)base;
	if (f->rc < 0 || f->addrs)
		return EDO_READY; /* bad input, or finished before */
	edo_addr a;
	if (!f->job_ && edo_addr_ip(&a, f->host_, f->port_) == 0) {
		/* An IP literal needs no resolver (nor a thread). */
		f->addrs = malloc(sizeof a);
		if (!f->addrs) {
			f->rc = -ENOMEM;
		} else {
			f->addrs[0] = a;
			f->count = 1;
		}
		goto done;
	}
	if (!f->job_) {
		lookup_job *j = calloc(1, sizeof *j);
		if (!j) {
			f->rc = -ENOMEM;
			goto done;
		}
		atomic_init(&j->refs, 2);
		j->host = f->host_;
		f->host_ = NULL;
		j->port = f->port_;
		j->type = f->type_;
		f->job_ = j;
		/* Mandatory: a job cancelled before it ran would never release
		 * its reference. */
		int rc = edo_spawn_blocking_on(NULL, lookup_run, j, EDO_BLOCKING_MANDATORY,
					       &f->join_);
		if (rc < 0) {
			atomic_store(&j->refs, 1);
			f->join_ = NULL;
			f->rc = rc;
			goto done;
		}
	}
	int jr;
	if (edo_join_poll(f->join_, cx, &jr) == EDO_PENDING)
		return EDO_PENDING;
	if (jr < 0) {
		f->rc = jr; /* cancelled: the runtime is shutting down */
	} else {
		f->rc = f->job_->rc;
		f->addrs = f->job_->addrs;
		f->count = f->job_->count;
		f->job_->addrs = NULL;
	}
done:
	lookup_drop(base);
	return EDO_READY;
}

static const edo_future_vtable lookup_vt = {.poll = lookup_poll, .drop = lookup_drop};

edo_future *edo_lookup_host(edo_lookup_fut *f, const char *host, uint16_t port)
{
	*f = (edo_lookup_fut){.base = {&lookup_vt}, .port_ = port, .type_ = SOCK_STREAM};
	if (!host || !*host) {
		f->rc = -EINVAL;
		return &f->base;
	}
	/* Nothing but the name until the first poll, so that dropping a
	 * future never polled frees all it holds (an IP literal is turned
	 * into its address then, without a thread). */
	f->host_ = strdup(host);
	if (!f->host_)
		f->rc = -ENOMEM;
	return &f->base;
}
