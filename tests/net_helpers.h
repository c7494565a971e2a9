/* Helpers shared by the networking tests (test_net*.c):
 * runtimes, a loopback listener, a connected
 * TCP pair (test_net_peek.c, test_net_io_fn.c), descriptor
 * counting and limits, the listener's count of accepts that met EMFILE,
 * and the client processes of the EMFILE tests.  Include it after the
 * test's `#define _GNU_SOURCE`. */
#ifndef EDO_TEST_NET_HELPERS_H
#define EDO_TEST_NET_HELPERS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "edo.h"
#include "harness.h"
#include "net/socket.h" /* the listener's count of exhausted accepts */

/* ---- runtimes ---------------------------------------------------------------------------------- */

/* A runtime of @flavor; @workers is the multi-thread runtime's worker count. */
static inline edo_runtime *make_rt(edo_rt_flavor flavor, unsigned workers)
{
	edo_runtime_builder b;
	edo_runtime_builder_init(&b, flavor);
	b.worker_threads = workers;
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_build(&b, &rt), 0);
	return rt;
}

/* Runs @main_fut to completion on a new runtime, then frees the runtime. */
static inline void run_with(edo_rt_flavor flavor, unsigned workers, edo_future *main_fut)
{
	edo_runtime *rt = make_rt(flavor, workers);
	CHECK_EQ(edo_block_on(rt, main_fut), 0);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

/* run_with() two workers. */
static inline void run(edo_rt_flavor flavor, edo_future *main_fut)
{
	run_with(flavor, 2, main_fut);
}

/* ---- sockets and descriptors ------------------------------------------------------------------- */

/* A listener on 127.0.0.1 with a free port; *addr is where to connect. */
static inline edo_tcp_listener *listen_local(edo_addr *addr)
{
	edo_addr a;
	CHECK_EQ(edo_addr_ip(&a, "127.0.0.1", 0), 0);
	edo_tcp_listener *l;
	CHECK_EQ(edo_tcp_listener_bind(&a, NULL, &l), 0);
	CHECK_EQ(edo_tcp_listener_local_addr(l, addr), 0);
	CHECK_NE(edo_addr_port(addr), 0);
	return l;
}

/* A connected TCP pair on 127.0.0.1, made at once (a blocking connect
 * completes in the listener's backlog) and taken over by the runtime of
 * the calling task: *client and *server, the accepted end. */
static inline void tcp_pair(edo_tcp_stream **client, edo_tcp_stream **server)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_GE(l, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	CHECK_EQ(bind(l, (struct sockaddr *)&a, sizeof a), 0);
	CHECK_EQ(listen(l, 1), 0);
	CHECK_EQ(getsockname(l, (struct sockaddr *)&a, &len), 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_GE(c, 0);
	CHECK_EQ(connect(c, (struct sockaddr *)&a, sizeof a), 0);
	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CHECK_GE(s, 0);
	CHECK_EQ(close(l), 0);
	CHECK_EQ(edo_tcp_stream_from_fd(c, client), 0);
	CHECK_EQ(edo_tcp_stream_from_fd(s, server), 0);
}

/* The descriptors open in this process (counting the one that reads
 * them); EDO_TEST_LIST_FDS=1 lists them on stderr. */
static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	CHECK(d != NULL);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		n++;
		if (getenv("EDO_TEST_LIST_FDS")) {
			char p[300], t[256] = "";
			snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
			ssize_t k = readlink(p, t, sizeof t - 1);
			fprintf(stderr, "  fd %s -> %s\n", e->d_name, k > 0 ? t : "?");
		}
	}
	closedir(d);
	return n;
}

/* Raises the soft RLIMIT_NOFILE to at least @want, or skips the case. */
static inline void raise_nofile(rlim_t want)
{
	struct rlimit r;
	CHECK_EQ(getrlimit(RLIMIT_NOFILE, &r), 0);
	if (r.rlim_cur < want) {
		r.rlim_cur = r.rlim_max;
		CHECK_EQ(setrlimit(RLIMIT_NOFILE, &r), 0);
	}
	if (r.rlim_cur < want)
		SKIP("RLIMIT_NOFILE hard limit too low for this test");
}

/* ---- EMFILE: the listener's count, the descriptor limit, the clients --------------------------- */

/* Accepts of a listener that met EMFILE, each followed by a back-off
 * (internals: both listener types start with their edo__listener). */
static inline unsigned long exhausted_accepts(void *listener)
{
	return atomic_load(&((edo__listener *)listener)->exhausted);
}

/* From here only @headroom more descriptors fit: fills the holes below
 * the highest open descriptor (with /dev/null, left open) and sets the
 * soft RLIMIT_NOFILE above it. */
static inline void leave_fd_headroom(int headroom)
{
	int maxfd = 0, open_fds = 0;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0) {
			maxfd = fd;
			open_fds++;
		}
	for (int k = open_fds; k < maxfd + 1; k++)
		CHECK_LT(open("/dev/null", O_RDONLY | O_CLOEXEC), maxfd);
	struct rlimit r;
	CHECK_EQ(getrlimit(RLIMIT_NOFILE, &r), 0);
	r.rlim_cur = (rlim_t)maxfd + 1 + (rlim_t)headroom;
	CHECK_EQ(setrlimit(RLIMIT_NOFILE, &r), 0);
}

/* Uses up every descriptor up to a limit just above the highest open one:
 * opens /dev/null until EMFILE.  The descriptors opened (at most @max) are
 * fill[0] to fill[n - 1], n returned, for the test to close. */
static inline int use_up_fds(int *fill, int max)
{
	int maxfd = 0, n = 0;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			maxfd = fd;
	struct rlimit r;
	CHECK_EQ(getrlimit(RLIMIT_NOFILE, &r), 0);
	r.rlim_cur = (rlim_t)maxfd + 1 + 4;
	CHECK_EQ(setrlimit(RLIMIT_NOFILE, &r), 0);
	for (;;) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			CHECK_EQ(errno, EMFILE);
			break;
		}
		CHECK_LT(n, max);
		fill[n++] = fd;
	}
	return n;
}

/* The most connections fork_tcp_client() makes. */
#define TCP_CLIENT_MAX 64

/* The body of fork_tcp_client()'s child: reads the port from @port_fd,
 * makes @conns connections to it on 127.0.0.1, sends "x" on each, then
 * reads "y" from each and closes it; returns the exit status. */
static inline int tcp_client_main(int port_fd, int conns)
{
	uint16_t port;
	if (read(port_fd, &port, sizeof port) != (ssize_t)sizeof port)
		return 2;
	int fds[TCP_CLIENT_MAX];
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	for (int i = 0; i < conns; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		struct timeval tv = {.tv_sec = 30};
		setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&a, sizeof a) < 0)
			return 3;
		if (write(fds[i], "x", 1) != 1)
			return 4;
	}
	for (int i = 0; i < conns; i++) {
		char c;
		if (read(fds[i], &c, 1) != 1 || c != 'y')
			return 5;
		close(fds[i]);
	}
	return 0;
}

/* Forks the TCP client of the EMFILE tests (in a child process, its
 * descriptors are not the server's): @conns connections to the port that
 * the server then sends with send_port() on *port_fd.  Returns the child,
 * for wait_child_ok(). */
static inline pid_t fork_tcp_client(int conns, int *port_fd)
{
	CHECK_LE(conns, TCP_CLIENT_MAX);
	int p[2];
	CHECK_EQ(pipe(p), 0);
	fflush(NULL);
	pid_t child = fork();
	CHECK_GE(child, 0);
	if (child == 0) {
		close(p[1]);
		_exit(tcp_client_main(p[0], conns));
	}
	close(p[0]);
	*port_fd = p[1];
	return child;
}

/* Tells fork_tcp_client()'s child the port of @addr, and closes @port_fd. */
static inline void send_port(int port_fd, const edo_addr *addr)
{
	uint16_t port = edo_addr_port(addr);
	CHECK_EQ(write(port_fd, &port, sizeof port), (ssize_t)sizeof port);
	close(port_fd);
}

/* Forks the Unix client of the EMFILE tests: in a child process, @conns
 * connections one after another to the abstract socket @name ("@..."),
 * each sending "x" and reading "y".  The server may not listen yet: each
 * connect is retried for 30 s.  Returns the child, for wait_child_ok(). */
static inline pid_t fork_unix_client(const char *name, int conns)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	CHECK_LE(n, sizeof a.sun_path);
	memcpy(a.sun_path, name, n);
	a.sun_path[0] = 0;
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	fflush(NULL);
	pid_t child = fork();
	CHECK_GE(child, 0);
	if (child == 0) {
		for (int i = 0; i < conns; i++) {
			int fd = socket(AF_UNIX, SOCK_STREAM, 0);
			char c;
			for (int t = 0; fd >= 0 && connect(fd, (struct sockaddr *)&a, len) < 0;
			     t++) {
				if (errno != ECONNREFUSED || t == 30000)
					_exit(3);
				usleep(1000);
			}
			if (fd < 0 || write(fd, "x", 1) != 1 || read(fd, &c, 1) != 1 || c != 'y')
				_exit(4);
			close(fd);
		}
		_exit(0);
	}
	return child;
}

/* Waits for the child process @child: it must have exited with status 0. */
static inline void wait_child_ok(pid_t child)
{
	int st;
	CHECK_EQ(waitpid(child, &st, 0), child);
	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
}

#endif /* EDO_TEST_NET_HELPERS_H */
