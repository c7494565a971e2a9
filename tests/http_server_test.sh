#!/usr/bin/env bash
# tests/http_server_test.sh HELLO_SERVER [ECHO_SERVER] - an example hello
# server against curl and wrk on 127.0.0.1, on the current-thread runtime and
# on a multi-thread one with 2 workers (ctest runs it twice: the stackless
# examples/hello_server.c and echo_server.c, then the fiber ones,
# examples/*_server_fiber.c):
#
#   1. curl gets exactly the response of bench/README.md (status, headers,
#      body "Hello world!")
#   2. the exact bytes on the wire, for one request and for three pipelined
#      requests sent in one write (all three answered, in order)
#   3. keep-alive: curl fetches twice over one connection
#   4. a request head split over several writes is answered once, when it
#      is complete
#   5. wrk -c1000 for 3 s: requests served, zero socket errors, zero non-2xx
#
# With ECHO_SERVER, that echo server too, at the same thread counts:
#
#   6. a round trip of a few bytes, exact; 300 KB of random bytes sent while
#      reading, all back and equal; 20 connections at once, 64 KB each
#
# Exits 77 (skipped) when curl or wrk is missing (.ci/install-deps.sh
# installs both) or when the descriptor limit cannot reach 1,000 connections.
# Every load is bounded in time; the server is stopped by its process id.
# (Ctrl-C of the same servers: tests/test_signal.c.)
set -uo pipefail

server=${1:?usage: http_server_test.sh path/to/hello_server [path/to/echo_server]}
echo_server=${2:-}
for tool in curl wrk timeout cmp; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "skip: $tool not installed (.ci/install-deps.sh installs it)"
		exit 77
	fi
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 2200 ]; then
	echo "skip: open files limit $(ulimit -n) is too low for 1,000 connections"
	exit 77
fi

RESPONSE=$'HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nHello world!'
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# Start a server (default: the hello server) on a free port (--port 0) and
# read the port it prints.
start() { # threads [program]
	rm -f "$tmp/out" "$tmp/err"
	"${2:-$server}" --port 0 --threads "$1" >"$tmp/out" 2>"$tmp/err" &
	pid=$!
	port=
	for _ in $(seq 100); do
		port=$(sed -n 's|.*listening on \(http://\)\{0,1\}127.0.0.1:\([0-9]*\).*|\2|p' "$tmp/out" 2>/dev/null)
		[ -n "$port" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	fail "${2:-$server} (threads $1) did not start: $(cat "$tmp/err")"
	return 1
}

stop() {
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=
}

# Send $1 (printf format) on a new connection, read $2 bytes back (2 s at most).
exchange() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		printf "$1" >&3
		timeout 2 head -c "$2" <&3
	)
}

check_server() { # threads
	local t=$1 got hdrs body want3 out
	start "$t" || return
	echo "== ${server##*/} --threads $t on port $port"

	# 1. curl sees the response.
	body=$(curl -s --max-time 5 "http://127.0.0.1:$port/")
	[ "$body" = "Hello world!" ] || fail "threads $t: curl body '$body'"
	hdrs=$(curl -s -i --max-time 5 "http://127.0.0.1:$port/" | tr -d '\r')
	grep -q '^HTTP/1.1 200 OK$' <<<"$hdrs" || fail "threads $t: status line: $hdrs"
	grep -q '^Content-Length: 12$' <<<"$hdrs" || fail "threads $t: Content-Length"
	grep -q '^Content-Type: text/plain$' <<<"$hdrs" || fail "threads $t: Content-Type"

	# 2. Exact bytes, one request and three pipelined in one write.
	got=$(exchange 'GET / HTTP/1.1\r\nHost: t\r\n\r\n' ${#RESPONSE})
	[ "$got" = "$RESPONSE" ] || fail "threads $t: response bytes differ: $(printf %q "$got")"
	want3=$RESPONSE$RESPONSE$RESPONSE
	got=$(exchange 'GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\nGET /3 HTTP/1.1\r\n\r\n' ${#want3})
	[ "$got" = "$want3" ] || fail "threads $t: pipelined: got ${#got} bytes, want ${#want3}"

	# 3. Keep-alive: two fetches, one connection.
	out=$(curl -sv --max-time 5 "http://127.0.0.1:$port/a" "http://127.0.0.1:$port/b" 2>&1)
	[ "$(grep -c 'Hello world!' <<<"$out")" = 2 ] || fail "threads $t: keep-alive bodies"
	grep -qiE 're-?using (existing )?connection' <<<"$out" ||
		fail "threads $t: curl did not reuse the connection"

	# 4. A head split over writes: nothing until the empty line, then one answer.
	got=$(
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		printf 'GET / HTTP/1.1\r\nHo' >&3
		sleep 0.1
		printf 'st: t\r\n\r' >&3
		sleep 0.1
		printf '\n' >&3
		timeout 2 head -c ${#RESPONSE} <&3
	)
	[ "$got" = "$RESPONSE" ] || fail "threads $t: split head"

	# 5. Load: 1,000 connections, no socket errors.
	out=$(timeout 30 wrk -t1 -c1000 -d3s --timeout 5s "http://127.0.0.1:$port/" 2>&1)
	echo "$out" | sed 's/^/   /'
	grep -q '^Requests/sec:' <<<"$out" || fail "threads $t: wrk gave no result"
	grep -q 'Socket errors' <<<"$out" && fail "threads $t: wrk saw socket errors"
	grep -q 'Non-2xx' <<<"$out" && fail "threads $t: wrk saw non-2xx responses"
	kill -0 "$pid" 2>/dev/null || fail "threads $t: the server died"
	stop
	# Sanitizer builds: a report on the server's stderr is a failure.
	grep -q 'Sanitizer' "$tmp/err" && fail "threads $t: $(grep -m1 Sanitizer "$tmp/err")"
}

# Send file $1 on a new connection while reading as many bytes back into $2
# (10 s at most).
echo_file() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		cat "$1" >&3 &
		timeout 10 head -c "$(stat -c %s "$1")" <&3 >"$2"
		wait $!
	)
}

check_echo() { # threads
	local t=$1 got i pids=()
	start "$t" "$echo_server" || return
	echo "== ${echo_server##*/} --threads $t on port $port"

	# 6. A few bytes, then 300 KB written while reading, then 20 at once.
	got=$(exchange 'hello, echo' 11)
	[ "$got" = "hello, echo" ] || fail "threads $t: echo of 'hello, echo': '$got'"
	head -c 300000 /dev/urandom >"$tmp/big"
	head -c 65536 /dev/urandom >"$tmp/small"
	echo_file "$tmp/big" "$tmp/big.out"
	cmp -s "$tmp/big" "$tmp/big.out" || fail "threads $t: 300 KB echo differs"
	for i in $(seq 20); do
		echo_file "$tmp/small" "$tmp/small.$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	for i in $(seq 20); do
		cmp -s "$tmp/small" "$tmp/small.$i" || fail "threads $t: echo $i of 20 differs"
	done
	kill -0 "$pid" 2>/dev/null || fail "threads $t: the echo server died"
	stop
	grep -q 'Sanitizer' "$tmp/err" && fail "threads $t: $(grep -m1 Sanitizer "$tmp/err")"
}

check_server 0
check_server 2
if [ -n "$echo_server" ]; then
	check_echo 0
	check_echo 2
fi

if [ $failures -gt 0 ]; then
	echo "http_server_test: $failures failure(s)"
	exit 1
fi
echo "http_server_test: ok"
