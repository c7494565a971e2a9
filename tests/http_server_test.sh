#!/usr/bin/env bash
# tests/http_server_test.sh HELLO_SERVER - examples/hello_server against curl
# and wrk on 127.0.0.1, on the current-thread runtime and on a multi-thread
# one with 2 workers:
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
# Exits 77 (skipped) when curl or wrk is missing (.ci/install-deps.sh
# installs both) or when the descriptor limit cannot reach 1,000 connections.
# Every load is bounded in time; the server is stopped by its process id.
set -uo pipefail

server=${1:?usage: http_server_test.sh path/to/hello_server}
for tool in curl wrk timeout; do
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

# Start the server on a free port (--port 0) and read the port it prints.
start() { # threads
	rm -f "$tmp/out" "$tmp/err"
	"$server" --port 0 --threads "$1" >"$tmp/out" 2>"$tmp/err" &
	pid=$!
	port=
	for _ in $(seq 100); do
		port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/out" 2>/dev/null)
		[ -n "$port" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	fail "server (threads $1) did not start: $(cat "$tmp/err")"
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
	echo "== hello_server --threads $t on port $port"

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

check_server 0
check_server 2

if [ $failures -gt 0 ]; then
	echo "http_server_test: $failures failure(s)"
	exit 1
fi
echo "http_server_test: ok"
