/* edo-console - a live view of a running Edo runtime.
 *
 *   edo-console [--interval MS] [--once] PATH
 *
 * PATH is the Unix socket a runtime serves when it is built with
 * edo_runtime_builder.console_path (edo/trace.h); examples/hello_server
 * takes --console PATH.  The view refreshes every second (--interval):
 * the runtime's shape and counters, each worker with its poll rate, queue
 * depth, steals, parks and busy share, the tasks sorted by busy time (or
 * time idle, or polls), each with where it waits, and the stall log.
 *
 * Keys: b sort by busy time, i by time idle, p by polls, + / - refresh
 * slower / faster, q (or Ctrl-C) quits.  --once prints one view as plain
 * text and exits (for scripts).
 *
 * Plain ANSI escape codes and termios raw mode; no curses.  The socket's
 * protocol (one "snap" request, key=value lines back) is described in
 * src/runtime/trace/trace.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 1024
#define MAX_STALLS 64

/* ---- one snapshot ---------------------------------------------------------------- */

typedef struct kv {
	char *line; /* owns the text the fields point into */
	int n;
	char *key[32];
	char *val[32];
} kv;

typedef struct worker_row {
	uint64_t polls, steals, parks, depth, overflows, busy_ns, mean_ns, local, remote;
} worker_row;

typedef struct task_row {
	uint64_t id, polls, busy_ns;
	int64_t idle_ms; /* -1 unknown */
	const char *state, *kind, *site, *where, *fn, *name;
} task_row;

typedef struct snap {
	char *text;
	double at; /* when it was taken (CLOCK_MONOTONIC s) */
	kv rt;     /* the "rt" line */
	unsigned nworkers;
	worker_row w[MAX_WORKERS];
	size_t ntasks, cap;
	task_row *t;
	kv *tkv; /* the task lines, parsed */
	int nstalls;
	kv stall[MAX_STALLS];
} snap;

static void parse_line(char *line, kv *out)
{
	out->line = line;
	out->n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(line, " ", &save); tok && out->n < 32;
	     tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq)
			continue;
		*eq = 0;
		out->key[out->n] = tok;
		out->val[out->n] = eq + 1;
		out->n++;
	}
}

static const char *get(const kv *k, const char *key)
{
	for (int i = 0; i < k->n; i++)
		if (strcmp(k->key[i], key) == 0)
			return k->val[i];
	return "-";
}

static uint64_t num(const kv *k, const char *key)
{
	return strtoull(get(k, key), NULL, 10);
}

static void snap_free(snap *s)
{
	free(s->text);
	free(s->t);
	free(s->tkv);
	memset(s, 0, sizeof *s);
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parse the reply in s->text (which it splits into lines in place). */
static int snap_parse(snap *s)
{
	char *save = NULL;
	char *line = strtok_r(s->text, "\n", &save);
	if (!line || strcmp(line, "edo 1") != 0)
		return -1;
	size_t tcap = 0;
	for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "rt ", 3) == 0) {
			parse_line(line + 3, &s->rt);
		} else if (strncmp(line, "w ", 2) == 0) {
			kv k;
			parse_line(line + 2, &k);
			unsigned i = (unsigned)num(&k, "i");
			if (i >= MAX_WORKERS)
				continue;
			s->w[i] = (worker_row){num(&k, "polls"),     num(&k, "steals"),
					       num(&k, "parks"),     num(&k, "depth"),
					       num(&k, "overflows"), num(&k, "busy_ns"),
					       num(&k, "mean_ns"),   num(&k, "local"),
					       num(&k, "remote")};
			if (i + 1 > s->nworkers)
				s->nworkers = i + 1;
		} else if (strncmp(line, "t ", 2) == 0) {
			if (s->ntasks == tcap) {
				tcap = tcap ? tcap * 2 : 256;
				s->tkv = realloc(s->tkv, tcap * sizeof *s->tkv);
				if (!s->tkv)
					return -1;
			}
			parse_line(line + 2, &s->tkv[s->ntasks++]);
		} else if (strncmp(line, "s ", 2) == 0) {
			if (s->nstalls < MAX_STALLS)
				parse_line(line + 2, &s->stall[s->nstalls++]);
		} else if (strcmp(line, "end") == 0) {
			break;
		}
	}
	s->t = calloc(s->ntasks ? s->ntasks : 1, sizeof *s->t);
	if (!s->t)
		return -1;
	for (size_t i = 0; i < s->ntasks; i++) {
		const kv *k = &s->tkv[i];
		const char *idle = get(k, "idle_ms");
		s->t[i] = (task_row){
			.id = num(k, "id"),
			.polls = num(k, "polls"),
			.busy_ns = num(k, "busy_ns"),
			.idle_ms = strcmp(idle, "-") == 0 ? -1 : strtoll(idle, NULL, 10),
			.state = get(k, "state"),
			.kind = get(k, "kind"),
			.site = get(k, "site"),
			.where = get(k, "where"),
			.fn = get(k, "fn"),
			.name = get(k, "name"),
		};
	}
	return 0;
}

/* ---- talking to the runtime -------------------------------------------------------- */

static int connect_to(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path) {
		close(fd);
		return -ENAMETOOLONG;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* Ask for a snapshot on @fd and read it into @s.  0 or -errno. */
static int fetch(int fd, snap *s)
{
	if (send(fd, "snap\n", 5, MSG_NOSIGNAL) != 5)
		return -EPIPE;
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 5000) <= 0) {
			free(buf);
			return -ETIMEDOUT;
		}
		if (len + 4096 > cap) {
			cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
		if (n <= 0) {
			free(buf);
			return n == 0 ? -ECONNRESET : -errno;
		}
		len += (size_t)n;
		buf[len] = 0;
		if (len >= 5 && strcmp(buf + len - 4, "end\n") == 0 &&
		    (len == 4 || buf[len - 5] == '\n'))
			break;
	}
	s->text = buf;
	s->at = mono();
	return snap_parse(s) < 0 ? -EPROTO : 0;
}

/* ---- the view ------------------------------------------------------------------------- */

enum sort_by { SORT_BUSY, SORT_IDLE, SORT_POLLS };

static const char *sort_name(enum sort_by s)
{
	return s == SORT_BUSY ? "busy time" : s == SORT_IDLE ? "time idle" : "polls";
}

static enum sort_by g_sort = SORT_BUSY;

static int task_cmp(const void *a, const void *b)
{
	const task_row *x = a, *y = b;
	int r = 0;
	switch (g_sort) {
	case SORT_BUSY:
		r = (x->busy_ns < y->busy_ns) - (x->busy_ns > y->busy_ns);
		if (!r)
			r = (x->polls < y->polls) - (x->polls > y->polls);
		break;
	case SORT_IDLE:
		r = (x->idle_ms < y->idle_ms) - (x->idle_ms > y->idle_ms);
		break;
	case SORT_POLLS:
		r = (x->polls < y->polls) - (x->polls > y->polls);
		break;
	}
	return r ? r : (x->id > y->id) - (x->id < y->id);
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static void fmt_ns(char *buf, size_t len, double ns)
{
	if (ns < 1e3)
		(void)snprintf(buf, len, "%.0f ns", ns);
	else if (ns < 1e6)
		(void)snprintf(buf, len, "%.1f us", ns / 1e3);
	else if (ns < 1e9)
		(void)snprintf(buf, len, "%.1f ms", ns / 1e6);
	else
		(void)snprintf(buf, len, "%.2f s", ns / 1e9);
}

static void fmt_ms(char *buf, size_t len, int64_t ms)
{
	if (ms < 0)
		(void)snprintf(buf, len, "-");
	else if (ms < 1000)
		(void)snprintf(buf, len, "%" PRId64 " ms", ms);
	else if (ms < 120000)
		(void)snprintf(buf, len, "%.1f s", (double)ms / 1e3);
	else
		(void)snprintf(buf, len, "%.0f min", (double)ms / 6e4);
}

/* "file.c:12" from "/long/path/file.c:12", "-" stays. */
static const char *short_site(const char *site)
{
	return strcmp(site, "-") == 0 ? site : base(site);
}

typedef struct screen {
	FILE *out;
	bool tty;
	int rows, cols;
	int row; /* lines written */
} screen;

/* One line, cut to the width, clearing the rest of the terminal line. */
__attribute__((format(printf, 2, 3))) static void line(screen *sc, const char *fmt, ...)
{
	if (sc->tty && sc->row >= sc->rows - 1)
		return;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (sc->tty && (int)strlen(buf) > sc->cols)
		buf[sc->cols] = 0;
	fputs(buf, sc->out);
	fputs(sc->tty ? "\x1b[K\r\n" : "\n", sc->out);
	sc->row++;
}

static void render(screen *sc, const char *path, const snap *s, const snap *prev, double interval,
		   const char *error)
{
	if (sc->tty)
		fputs("\x1b[H", sc->out);
	sc->row = 0;
	const char *bold = sc->tty ? "\x1b[1m" : "", *norm = sc->tty ? "\x1b[0m" : "";
	if (error) {
		line(sc, "%sedo-console%s  %s  (not connected: %s; retrying)", bold, norm, path,
		     error);
		if (sc->tty)
			fputs("\x1b[J", sc->out);
		fflush(sc->out);
		return;
	}
	const kv *rt = &s->rt;
	bool multi = strcmp(get(rt, "flavor"), "multi") == 0;
	line(sc, "%sedo-console%s  %s  %s runtime, %s worker%s  up %.1f s  refresh %.1f s", bold,
	     norm, path, multi ? "multi-thread" : "current-thread", get(rt, "workers"),
	     strcmp(get(rt, "workers"), "1") == 0 ? "" : "s", (double)num(rt, "uptime_ms") / 1e3,
	     interval);
	line(sc,
	     "tasks %s alive  inject queue %s  blocking %s threads (%s idle, %s queued)  "
	     "io %" PRIu64 " fds, %s events  stalls %s%s%s",
	     get(rt, "alive"), get(rt, "inject"), get(rt, "bthreads"), get(rt, "bidle"),
	     get(rt, "bqueue"), num(rt, "ioreg") - num(rt, "iodereg"), get(rt, "ioev"),
	     num(rt, "stalls") ? (sc->tty ? "\x1b[31;1m" : "") : "", get(rt, "stalls"),
	     num(rt, "stalls") ? norm : "");
	line(sc, "%s", "");
	line(sc,
	     "%sWORKER    POLLS/S       POLLS   QUEUE  STEALS   PARKS  OVERFLOWS   BUSY    MEAN POLL%s",
	     bold, norm);
	double dt = prev && prev->at > 0 ? s->at - prev->at : 0;
	for (unsigned i = 0; i < s->nworkers; i++) {
		const worker_row *w = &s->w[i];
		double rate = -1, busy = -1;
		if (dt > 0 && i < prev->nworkers) {
			rate = (double)(w->polls - prev->w[i].polls) / dt;
			busy = (double)(w->busy_ns - prev->w[i].busy_ns) / (dt * 1e9) * 100;
			if (busy > 100)
				busy = 100;
		}
		char mean[32], rate_s[32], busy_s[32];
		fmt_ns(mean, sizeof mean, (double)w->mean_ns);
		if (rate < 0)
			(void)snprintf(rate_s, sizeof rate_s, "-");
		else
			(void)snprintf(rate_s, sizeof rate_s, "%.0f", rate);
		if (busy < 0)
			(void)snprintf(busy_s, sizeof busy_s, "-");
		else
			(void)snprintf(busy_s, sizeof busy_s, "%.0f%%", busy);
		line(sc,
		     "%6u %10s %11" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %10" PRIu64
		     " %6s %12s",
		     i, rate_s, w->polls, w->depth, w->steals, w->parks, w->overflows, busy_s,
		     mean);
	}
	line(sc, "%s", "");
	line(sc,
	     "%sTASKS%s (%zu) sorted by %s    keys: b busy  i idle  p polls  +/- refresh  q quit",
	     bold, norm, s->ntasks, sort_name(g_sort));
	line(sc, "%s%8s  %-9s %8s %10s %9s  %-16s %-24s %s%s", bold, "ID", "STATE", "POLLS", "BUSY",
	     "IDLE", "NAME", "SPAWNED AT", "WAITING AT", norm);
	int stall_rows = s->nstalls ? (s->nstalls < 5 ? s->nstalls : 5) + 2 : 2;
	int room = sc->tty ? sc->rows - sc->row - stall_rows - 1 : (int)s->ntasks;
	for (size_t i = 0; i < s->ntasks && (int)i < room; i++) {
		const task_row *t = &s->t[i];
		char busy[32], idle[32], where[256];
		if (strcmp(t->where, "-") == 0)
			(void)snprintf(where, sizeof where, "%s",
				       strcmp(t->fn, "-") == 0 ? "" : t->fn);
		else
			(void)snprintf(where, sizeof where, "%s (%s)", short_site(t->where), t->fn);
		if (t->busy_ns)
			fmt_ns(busy, sizeof busy, (double)t->busy_ns);
		else
			(void)snprintf(busy, sizeof busy, "-");
		fmt_ms(idle, sizeof idle, t->idle_ms);
		line(sc, "%8" PRIu64 "  %-9s %8" PRIu64 " %10s %9s  %-16.16s %-24.24s %s", t->id,
		     t->state, t->polls, busy, idle, strcmp(t->name, "-") == 0 ? "" : t->name,
		     short_site(t->site), where);
	}
	if (sc->tty && (int)s->ntasks > room && room >= 0)
		line(sc, "  ... %zu more", s->ntasks - (size_t)room);
	line(sc, "%s", "");
	line(sc, "%sSTALL LOG%s (%d)%s", bold, norm, s->nstalls,
	     s->nstalls ? "" : "  no poll has run over the threshold");
	for (int i = s->nstalls > 5 ? s->nstalls - 5 : 0; i < s->nstalls; i++) {
		const kv *k = &s->stall[i];
		line(sc, "  at %.1f s: task %s \"%s\" (%s) held worker %s for %s ms",
		     (double)num(k, "at_ms") / 1e3, get(k, "id"), get(k, "name"),
		     short_site(get(k, "site")), get(k, "worker"), get(k, "ms"));
	}
	if (sc->tty)
		fputs("\x1b[J", sc->out);
	fflush(sc->out);
}

/* ---- the terminal ----------------------------------------------------------------------- */

static struct termios saved_tio;
static bool raw_on;
static volatile sig_atomic_t quit_flag;

static void on_quit(int sig)
{
	(void)sig;
	quit_flag = 1;
}

static void term_restore(void)
{
	if (!raw_on)
		return;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	fputs("\x1b[?25h\x1b[?1049l", stdout);
	fflush(stdout);
	raw_on = false;
}

static void term_raw(void)
{
	if (tcgetattr(STDIN_FILENO, &saved_tio) < 0)
		return;
	struct termios t = saved_tio;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
	t.c_iflag &= ~(tcflag_t)(IXON | ICRNL);
	t.c_oflag &= ~(tcflag_t)OPOST;
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
	raw_on = true;
	atexit(term_restore);
	/* The alternate screen; hide the cursor. */
	fputs("\x1b[?1049h\x1b[?25l\x1b[2J", stdout);
}

static void term_size(screen *sc)
{
	struct winsize ws;
	sc->rows = 24;
	sc->cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		sc->rows = ws.ws_row;
		sc->cols = ws.ws_col;
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: edo-console [--interval MS] [--once] PATH\n"
			"  PATH: the socket of a runtime built with console_path\n"
			"  keys: b/i/p sort by busy time/time idle/polls, +/- refresh, q quit\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	double interval = 1.0;
	bool once = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--once") == 0) {
			once = true;
		} else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
			interval = atof(argv[++i]) / 1000.0;
			if (interval < 0.05)
				interval = 0.05;
		} else if (argv[i][0] == '-') {
			return usage();
		} else {
			path = argv[i];
		}
	}
	if (!path)
		return usage();

	screen sc = {.out = stdout, .tty = !once && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)};
	static snap cur, prev;
	if (once) {
		int fd = connect_to(path);
		if (fd < 0) {
			fprintf(stderr, "edo-console: %s: %s\n", path, strerror(-fd));
			return 1;
		}
		int rc = fetch(fd, &cur);
		close(fd);
		if (rc < 0) {
			fprintf(stderr, "edo-console: %s: %s\n", path, strerror(-rc));
			return 1;
		}
		qsort(cur.t, cur.ntasks, sizeof *cur.t, task_cmp);
		render(&sc, path, &cur, NULL, interval, NULL);
		snap_free(&cur);
		return 0;
	}

	struct sigaction sa = {.sa_handler = on_quit};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (sc.tty)
		term_raw();
	int fd = -1;
	double next = 0;
	char err[128] = "";
	while (!quit_flag) {
		double now = mono();
		if (now >= next) {
			next = now + interval;
			if (fd < 0) {
				fd = connect_to(path);
				if (fd < 0)
					(void)snprintf(err, sizeof err, "%s", strerror(-fd));
			}
			if (fd >= 0) {
				snap_free(&prev);
				prev = cur;
				memset(&cur, 0, sizeof cur);
				int rc = fetch(fd, &cur);
				if (rc < 0) {
					(void)snprintf(err, sizeof err, "%s", strerror(-rc));
					close(fd);
					fd = -1;
					snap_free(&cur);
				} else {
					err[0] = 0;
				}
			}
			term_size(&sc);
			if (cur.text)
				qsort(cur.t, cur.ntasks, sizeof *cur.t, task_cmp);
			render(&sc, path, &cur, &prev, interval, err[0] ? err : NULL);
		}
		/* Keys, until the next refresh. */
		int wait_ms = (int)((next - mono()) * 1000);
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		if (poll(&p, 1, wait_ms > 0 ? wait_ms : 0) > 0 && (p.revents & POLLIN)) {
			char c;
			if (read(STDIN_FILENO, &c, 1) != 1)
				continue;
			bool redraw = true;
			switch (c) {
			case 'q':
			case 'Q':
			case 3: /* Ctrl-C in raw mode */
				quit_flag = 1;
				break;
			case 'b':
				g_sort = SORT_BUSY;
				break;
			case 'i':
				g_sort = SORT_IDLE;
				break;
			case 'p':
				g_sort = SORT_POLLS;
				break;
			case '+':
				interval = interval * 2 > 60 ? 60 : interval * 2;
				break;
			case '-':
				interval = interval / 2 < 0.05 ? 0.05 : interval / 2;
				break;
			default:
				redraw = false;
			}
			if (redraw && !quit_flag) {
				if (cur.text)
					qsort(cur.t, cur.ntasks, sizeof *cur.t, task_cmp);
				render(&sc, path, &cur, &prev, interval, err[0] ? err : NULL);
			}
		}
	}
	if (fd >= 0)
		close(fd);
	snap_free(&cur);
	snap_free(&prev);
	term_restore();
	return 0;
}
