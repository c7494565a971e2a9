/* Unix stream sockets and listeners (edo/net.h), over the socket core;
 * Unix datagram sockets are in udp.c with the other datagram code. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edo/error.h"
#include "edo/net.h"
#include "net/socket.h"

struct edo_unix_listener {
	edo__listener l;
};

struct edo_unix_stream {
	edo__sstream h;
};

static edo__sstream *H(edo_unix_stream *s)
{
	return &s->h;
}

/* ---- listener -------------------------------------------------------------------------------- */

/* A Unix address that names a file (not the abstract namespace): bind(2)
 * created it, and a bind that fails after that removes it. */
static bool names_file(const edo_addr *a)
{
	return a->u.un.sun_path[0] != 0;
}

int edo_unix_listener_bind(const char *path, int backlog, edo_unix_listener **out)
{
	edo_addr a;
	if (!out || !path || backlog < 0 || edo_addr_unix(&a, path) < 0)
		return -EINVAL;
	/* Nothing is created (no socket, no file) unless it can be registered. */
	int rc = edo__sock_check_runtime();
	if (rc < 0)
		return rc;
	edo_unix_listener *l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	int fd = edo__sock_socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0) {
		free(l);
		return fd;
	}
	bool bound = false;
	if (bind(fd, &a.u.sa, a.len) < 0)
		rc = -errno;
	else
		bound = true;
	if (!rc && listen(fd, backlog ? backlog : 1024) < 0)
		rc = -errno;
	if (!rc)
		rc = edo__sock_init(&l->l.sock, fd);
	if (rc < 0) {
		if (bound && names_file(&a))
			(void)unlink(a.u.un.sun_path);
		free(l);
		close(fd);
		return rc;
	}
	*out = l;
	return 0;
}

int edo_unix_listener_from_fd(int fd, edo_unix_listener **out)
{
	if (!out)
		return -EINVAL;
	const edo__sock_kind k = {.type = SOCK_STREAM, .ip = false, .listening = true};
	return edo__sock_adopt(fd, &k, sizeof(edo_unix_listener), (void **)out);
}

edo_poll edo_unix_listener_poll_accept(edo_unix_listener *l, edo_cx *cx, edo_unix_stream **out,
				       int *rc)
{
	if (!l || !out || !rc) {
		if (rc)
			*rc = -EINVAL;
		return EDO_READY;
	}
	edo__sstream *h;
	if (edo__listener_accept(&l->l, NULL, NULL, cx, NULL, &h, rc) == EDO_PENDING)
		return EDO_PENDING;
	if (*rc == 0)
		*out = (edo_unix_stream *)h;
	return EDO_READY;
}

static edo_poll accept_fut_poll(edo_future *base, edo_cx *cx)
{
	edo_unix_accept_fut *f = (edo_unix_accept_fut *)base;
	if (!f->l_)
		return EDO_READY; /* bad input: rc set at init */
	edo__sstream *h;
	if (edo__listener_accept(&f->l_->l, &f->wait_, &f->backoff_, cx, NULL, &h, &f->rc) ==
	    EDO_PENDING)
		return EDO_PENDING;
	if (f->rc == 0)
		f->stream = (edo_unix_stream *)h;
	return EDO_READY;
}

static void accept_fut_drop(edo_future *base)
{
	edo_unix_accept_fut *f = (edo_unix_accept_fut *)base;
	edo__net_wait_drop(&f->wait_);
	edo__net_backoff_drop(&f->backoff_);
}

static const edo_future_vtable accept_fut_vt = {.poll = accept_fut_poll, .drop = accept_fut_drop};

edo_future *edo_unix_listener_accept(edo_unix_accept_fut *f, edo_unix_listener *l)
{
	*f = (edo_unix_accept_fut){.base = {&accept_fut_vt}, .l_ = l, .rc = l ? 0 : -EINVAL};
	return &f->base;
}

int edo_unix_listener_local_addr(edo_unix_listener *l, edo_addr *out)
{
	if (!l)
		return -EINVAL;
	return edo__sock_name(&l->l.sock, out, false);
}

edo_unix_listener *edo_unix_listener_clone(edo_unix_listener *l)
{
	if (!l)
		return NULL;
	edo__sock_ref(&l->l.sock);
	return l;
}

void edo_unix_listener_drop(edo_unix_listener *l)
{
	if (!l)
		return;
	if (edo__sock_release(&l->l.sock)) {
		edo__listener_fini(&l->l);
		free(l);
	}
}

int edo_unix_listener_into_fd(edo_unix_listener *l)
{
	if (!l)
		return -EINVAL;
	int fd = edo__sock_into_fd(&l->l.sock);
	if (fd >= 0) {
		edo__listener_fini(&l->l);
		free(l);
	}
	return fd;
}

void edo_unix_listener_close(edo_unix_listener *l)
{
	if (!l)
		return;
	edo__sock_close(&l->l.sock);
	edo_unix_listener_drop(l);
}

/* ---- stream ------------------------------------------------------------------------------------ */

int edo_unix_stream_connect(const char *path, edo_unix_stream **out)
{
	edo_addr a;
	if (!out || !path || edo_addr_unix(&a, path) < 0)
		return -EINVAL;
	/* Checked before connecting: a connect that must fail reaches no
	 * listener (which would accept a client that is already gone). */
	int rc = edo__sock_check_runtime();
	if (rc < 0)
		return rc;
	int fd = edo__sock_socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return fd;
	int r;
	do
		r = connect(fd, &a.u.sa, a.len);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	edo__sstream *h;
	rc = edo__sstream_new(fd, &h);
	if (rc == 0)
		*out = (edo_unix_stream *)h;
	return rc;
}

int edo_unix_stream_pair(edo_unix_stream **a, edo_unix_stream **b)
{
	if (!a || !b)
		return -EINVAL;
	int fds[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
		return -errno;
	edo__sstream *x, *y;
	int rc = edo__sstream_new(fds[0], &x); /* closes fds[0] on failure */
	if (rc < 0) {
		close(fds[1]);
		return rc;
	}
	rc = edo__sstream_new(fds[1], &y);
	if (rc < 0) {
		edo__sstream_drop(x);
		return rc;
	}
	*a = (edo_unix_stream *)x;
	*b = (edo_unix_stream *)y;
	return 0;
}

int edo_unix_stream_from_fd(int fd, edo_unix_stream **out)
{
	if (!out)
		return -EINVAL;
	edo__sstream *h;
	int rc = edo__sstream_adopt(fd, false, &h);
	if (rc == 0)
		*out = (edo_unix_stream *)h;
	return rc;
}

edo_stream *edo_unix_stream_io(edo_unix_stream *s)
{
	if (!s)
		return NULL;
	return &s->h.base;
}

edo_poll edo_unix_stream_poll_read(edo_unix_stream *s, edo_cx *cx, void *buf, size_t len,
				   ssize_t *n)
{
	if (!s)
		return edo__poll_einval(n);
	return edo__sstream_poll_read(H(s), cx, buf, len, n);
}

edo_future *edo_unix_stream_peek(edo_peek_fut *f, edo_unix_stream *s, void *buf, size_t len)
{
	return edo__sstream_peek(f, s ? H(s) : NULL, buf, len);
}

edo_poll edo_unix_stream_poll_peek(edo_unix_stream *s, edo_cx *cx, void *buf, size_t len,
				   ssize_t *n)
{
	if (!s)
		return edo__poll_einval(n);
	return edo__sstream_poll_peek(H(s), cx, buf, len, n);
}

edo_poll edo_unix_stream_poll_write(edo_unix_stream *s, edo_cx *cx, const void *buf, size_t len,
				    ssize_t *n)
{
	if (!s)
		return edo__poll_einval(n);
	return edo__sstream_poll_write(H(s), cx, buf, len, n);
}

ssize_t edo_unix_stream_try_read(edo_unix_stream *s, void *buf, size_t len)
{
	if (!s)
		return -EINVAL;
	return edo__sstream_try_read(H(s), buf, len);
}

ssize_t edo_unix_stream_try_write(edo_unix_stream *s, const void *buf, size_t len)
{
	if (!s)
		return -EINVAL;
	return edo__sstream_try_write(H(s), buf, len);
}

edo_future *edo_unix_stream_ready(edo_net_ready_fut *f, edo_unix_stream *s, uint32_t interest)
{
	return edo__sock_ready(f, s ? H(s)->sock : NULL, interest);
}

int edo_unix_stream_shutdown(edo_unix_stream *s, int how)
{
	if (!s)
		return -EINVAL;
	return edo__sstream_shutdown(H(s), how);
}

int edo_unix_stream_local_addr(edo_unix_stream *s, edo_addr *out)
{
	if (!s)
		return -EINVAL;
	return edo__sock_name(H(s)->sock, out, false);
}

int edo_unix_stream_peer_addr(edo_unix_stream *s, edo_addr *out)
{
	if (!s)
		return -EINVAL;
	return edo__sock_name(H(s)->sock, out, true);
}

int edo_unix_stream_peer_cred(edo_unix_stream *s, pid_t *pid, uid_t *uid, gid_t *gid)
{
	if (!s)
		return -EINVAL;
	if (edo__sock_is_closed(H(s)->sock))
		return -EBADF;
	struct ucred c;
	socklen_t len = sizeof c;
	if (getsockopt(H(s)->sock->fd, SOL_SOCKET, SO_PEERCRED, &c, &len) < 0)
		return -errno;
	if (pid)
		*pid = c.pid;
	if (uid)
		*uid = c.uid;
	if (gid)
		*gid = c.gid;
	return 0;
}

int edo_unix_stream_into_split(edo_unix_stream *s, edo_unix_stream **rd, edo_unix_stream **wr)
{
	if (!s)
		return -EINVAL;
	return edo__sstream_split(H(s), (edo__sstream **)rd, (edo__sstream **)wr);
}

ssize_t edo_unix_stream_try_io(edo_unix_stream *s, uint32_t interest, edo_net_io_fn fn, void *ctx)
{
	return s ? edo__sstream_try_io(H(s), interest, fn, ctx) : -EINVAL;
}

edo_poll edo_unix_stream_poll_io(edo_unix_stream *s, edo_cx *cx, uint32_t interest,
				 edo_net_io_fn fn, void *ctx, ssize_t *n)
{
	if (!s)
		return edo__poll_einval(n);
	return edo__sstream_poll_io(H(s), cx, interest, fn, ctx, n);
}

int edo_unix_stream_into_fd(edo_unix_stream *s)
{
	return s ? edo__sstream_into_fd(H(s)) : -EINVAL;
}

int edo_unix_stream_take_error(edo_unix_stream *s)
{
	return s ? edo__sock_take_error(H(s)->sock) : -EINVAL;
}

void edo_unix_stream_close(edo_unix_stream *s)
{
	if (s)
		edo__sstream_close(H(s));
}

void edo_unix_stream_drop(edo_unix_stream *s)
{
	if (s)
		edo__sstream_drop(H(s));
}
