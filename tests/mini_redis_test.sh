#!/usr/bin/env bash
# tests/mini_redis_test.sh MINI_REDIS [TUTORIAL_STEP...] - examples/mini-redis
# against Debian's redis-tools on 127.0.0.1, on the current-thread runtime and
# on a multi-thread one with 2 workers:
#
#   1. a redis-cli round trip for every command, and Redis's error replies
#   2. expiry: lazy (a read after the deadline) and by the background task
#      (DBSIZE, which counts keys without looking at deadlines, drops to 0)
#   3. pub/sub between redis-cli processes: one or two subscribers, PUBLISH's
#      count, what a subscribed connection may do
#   4. the wire: exact bytes of pipelined requests, inline requests,
#      redis-cli --pipe with 10,000 requests
#   5. limits: malformed and oversized requests get a protocol error and a
#      closed connection, and the server lives on; --max-clients turns the
#      next client away with Redis's error
#   6. redis-benchmark (small, -P 16): every test gives a result
#   7. SIGTERM: a graceful shutdown, exit status 0
# Then each tutorial step given (examples/tutorial/) is started and answers
# the commands its step introduces.
#
# Exits 77 (skipped) when redis-cli is missing (.ci/install-deps.sh installs
# redis-tools).  The servers are stopped by their process id.
set -uo pipefail

server=${1:?usage: mini_redis_test.sh path/to/mini-redis [tutorial steps...]}
shift
steps=("$@")
# Under ThreadSanitizer a process signal reaches its handler only when the
# receiving thread next enters a function TSan intercepts; a runtime whose
# threads all sleep in raw futex syscalls never runs it, so the graceful
# SIGTERM shutdown cannot be observed there: under TSan everything else runs
# and the servers are stopped with SIGKILL instead (TSan writes its reports
# as it finds them, so they are still read from the server's stderr).  The
# signal path itself is covered under TSan by test_signal and test_net.
tsan=
[ "${EDO_SANITIZE:-}" = thread ] && tsan=1

for tool in redis-cli redis-benchmark timeout; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "skip: $tool not installed (.ci/install-deps.sh installs redis-tools)"
		exit 77
	fi
done

tmp=$(mktemp -d)
pid=
subs=()
cleanup() {
	local p
	for p in "${subs[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	[ -z "$pid" ] || { kill ${tsan:+-KILL} "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; }
	rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# Start $1 with the remaining arguments on a free port (--port 0); read the
# port it prints.
start() {
	local prog=$1
	shift
	rm -f "$tmp/out" "$tmp/err"
	"$prog" --port 0 "$@" >"$tmp/out" 2>"$tmp/err" &
	pid=$!
	port=
	for _ in $(seq 100); do
		port=$(sed -n 's|.*listening on 127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/out" 2>/dev/null)
		[ -n "$port" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	fail "$prog $* did not start: $(cat "$tmp/err")"
	return 1
}

stop() {
	kill ${tsan:+-KILL} "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=
}

cli() { timeout 10 redis-cli -p "$port" "$@" 2>&1; }

# expect WANT redis-cli-arguments...: the output of redis-cli must be WANT.
expect() {
	local want=$1 got
	shift
	got=$(cli "$@")
	[ "$got" = "$want" ] || fail "[$label] redis-cli $*: got $(printf %q "$got"), want $(printf %q "$want")"
}

# Send $1 (printf format) on a new connection, read $2 bytes back (2 s at most).
exchange() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		printf "$1" >&3
		timeout 2 head -c "$2" <&3
	)
}

# wire WHAT WANT REQUEST: send REQUEST (printf format) on a new connection;
# the reply must be exactly the bytes WANT.
wire() {
	local got
	got=$(exchange "$3" ${#2} | od -An -c)
	[ "$got" = "$(printf %s "$2" | od -An -c)" ] || fail "[$label] $1: got $got"
}

# Send $1 (printf format), then read until the server closes (2 s at most).
exchange_to_close() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		printf "$1" >&3
		timeout 2 cat <&3
		echo "rc=$?"
	)
}

check_commands() {
	expect PONG ping
	expect hello ping hello
	expect "hi there" echo "hi there"
	expect OK set greeting hello
	expect hello get greeting
	expect "" get nosuchkey
	expect OK set greeting "hello again"
	expect "hello again" get greeting
	expect "" set greeting x nx
	expect OK set newkey x nx
	expect OK set newkey y xx
	expect y get newkey
	expect "" set absent y xx
	expect "" get absent
	expect y set newkey z get
	expect "ERR syntax error" set k v nx xx
	expect "ERR syntax error" set k v ex 10 px 100
	expect "ERR invalid expire time in 'set' command" set k v ex 0
	expect "ERR value is not an integer or out of range" set k v ex ten
	expect 2 exists greeting newkey
	expect 3 exists greeting newkey greeting
	expect 1 del newkey
	expect 0 del newkey
	expect 0 exists newkey
	expect 1 incr counter
	expect 2 incr counter
	expect 1 decr counter
	expect 11 incrby counter 10
	expect 6 decrby counter 5
	expect -4 incrby counter -10
	expect -4 get counter
	expect "ERR value is not an integer or out of range" incr greeting
	expect "ERR value is not an integer or out of range" incrby counter x
	expect OK set big 9223372036854775807
	expect "ERR increment or decrement would overflow" incr big
	expect OK mset a 1 b 2 c 3
	expect $'1\n2\n3' mget a b c nosuchkey # nil: an empty line
	expect "ERR wrong number of arguments for 'mset' command" mset a 1 b
	expect 3 del a b c
	expect 0 publish nobody-listens hello
	expect save config get save
	expect $'appendonly\nno' config get appendonly
	expect $'save\n\nappendonly\nno' config get save appendonly
	expect 29 command count
	expect $'get\n2\nreadonly\nfast\n1\n1\n1' command info get
	expect "ERR unknown command 'nosuch', with args beginning with: 'x' " nosuch x
	expect "ERR wrong number of arguments for 'get' command" get
	expect "ERR wrong number of arguments for 'get' command" get a b
	expect OK select 0
	expect "ERR DB index is out of range" select 1
	cli info | grep -q '^redis_version:' || fail "[$label] INFO has no redis_version"
	expect OK flushall
	expect 0 dbsize
}

check_expiry() {
	expect OK set temp v ex 100
	local ttl pttl
	ttl=$(cli ttl temp)
	pttl=$(cli pttl temp)
	[ "$ttl" -ge 99 ] && [ "$ttl" -le 100 ] || fail "[$label] ttl after ex 100: $ttl"
	[ "$pttl" -gt 98000 ] && [ "$pttl" -le 100000 ] || fail "[$label] pttl after ex 100: $pttl"
	expect OK set plain v
	expect -1 ttl plain
	expect -2 ttl nosuchkey
	expect -2 pttl nosuchkey
	expect 1 expire plain 100
	expect 100 ttl plain
	expect 1 persist plain
	expect -1 ttl plain
	expect 0 persist plain
	expect 0 expire nosuchkey 10
	expect 0 expire plain 50 xx
	expect 1 expire plain 50 nx
	expect 0 expire plain 40 gt
	expect 1 expire plain 40 lt
	expect 1 expire plain 0 # a deadline in the past deletes the key
	expect 0 exists plain
	# Lazy: a read after the deadline sees nothing, before the purge runs or not.
	# (2 s, not less: on a loaded machine starting redis-cli alone can
	# take longer than a short deadline.)
	expect OK set soon v px 2000
	expect v get soon
	sleep 2.2
	expect "" get soon
	expect 0 exists soon
	expect 1 pexpire temp 100
	sleep 0.3
	expect -2 ttl temp
	# The background task: DBSIZE counts keys without checking deadlines, so
	# it reaches 0 only if the expiry task deleted them.
	expect OK flushall
	local i cmds=
	for i in $(seq 200); do cmds+="SET k$i v PX 1500"$'\n'; done
	printf '%s' "$cmds" | cli >/dev/null
	expect 200 dbsize
	local n=
	for _ in $(seq 100); do
		n=$(cli dbsize)
		[ "$n" = 0 ] && break
		sleep 0.05
	done
	[ "$n" = 0 ] || fail "[$label] the expiry task left $n keys"
	expect OK flushall
}

check_pubsub() {
	local n=
	redis-cli -p "$port" subscribe news sports >"$tmp/sub1" &
	subs+=($!)
	for _ in $(seq 100); do
		n=$(cli publish news probe)
		[ "$n" = 1 ] && break
		sleep 0.05
	done
	[ "$n" = 1 ] || fail "[$label] the subscriber never counted (publish: $n)"
	expect 1 publish news "hello world"
	expect 1 publish sports goal
	redis-cli -p "$port" subscribe news >"$tmp/sub2" &
	subs+=($!)
	for _ in $(seq 100); do
		n=$(cli publish news probe2)
		[ "$n" = 2 ] && break
		sleep 0.05
	done
	[ "$n" = 2 ] || fail "[$label] two subscribers: publish says $n"
	expect 2 publish news last
	for _ in $(seq 100); do
		grep -q '^last$' "$tmp/sub1" && grep -q '^last$' "$tmp/sub2" && break
		sleep 0.05
	done
	grep -q '^hello world$' "$tmp/sub1" || fail "[$label] subscriber 1 did not get 'hello world': $(cat "$tmp/sub1")"
	grep -q '^goal$' "$tmp/sub1" || fail "[$label] subscriber 1 did not get 'goal'"
	grep -q '^last$' "$tmp/sub1" || fail "[$label] subscriber 1 did not get 'last'"
	grep -q '^last$' "$tmp/sub2" || fail "[$label] subscriber 2 did not get 'last'"
	grep -q '^hello world$' "$tmp/sub2" && fail "[$label] subscriber 2 got a message sent before it subscribed"
	head -3 "$tmp/sub1" | tr '\n' ' ' | grep -q '^subscribe news 1 ' ||
		fail "[$label] subscribe reply: $(head -3 "$tmp/sub1" | tr '\n' ' ')"
	# A burst: 2,000 PUBLISH in one pipeline, all delivered (the publisher
	# lets the subscribers run every few; none lags behind and is dropped).
	redis-cli -p "$port" subscribe burst >"$tmp/sub3" &
	subs+=($!)
	for _ in $(seq 100); do
		[ "$(cli publish burst probe)" = 1 ] && break
		sleep 0.05
	done
	local i
	for i in $(seq 2000); do printf '*3\r\n$7\r\nPUBLISH\r\n$5\r\nburst\r\n$1\r\nx\r\n'; done >"$tmp/burst"
	timeout 20 redis-cli -p "$port" --pipe <"$tmp/burst" >/dev/null 2>&1
	for _ in $(seq 100); do
		n=$(grep -c '^x$' "$tmp/sub3")
		[ "$n" = 2000 ] && break
		sleep 0.05
	done
	[ "$n" = 2000 ] || fail "[$label] a burst of 2000 messages: the subscriber got $n"
	local p
	for p in "${subs[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	subs=()
	for _ in $(seq 100); do
		n=$(cli publish news after)
		[ "$n" = 0 ] && break
		sleep 0.05
	done
	[ "$n" = 0 ] || fail "[$label] subscribers that left still count: $n"
	# While subscribed only some commands are allowed; PING answers as a push.
	local want
	want=$'*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n'
	want+=$'-ERR Can\'t execute \'get\': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n'
	want+=$'*2\r\n$4\r\npong\r\n$0\r\n\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n+PONG\r\n'
	wire "subscribed connection" "$want" '*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nc\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n*1\r\n$11\r\nUNSUBSCRIBE\r\n*1\r\n$4\r\nPING\r\n'
}

check_wire() {
	local got
	wire "pipelined requests" $'+PONG\r\n+OK\r\n$5\r\nvalue\r\n:1\r\n' \
		'*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n'
	wire "inline requests" $'+PONG\r\n+OK\r\n$3\r\nx\ty\r\n:1\r\n$2\r\nhi\r\n' \
		'PING\r\nSET "a b" "x\\ty"\r\nGET \x27a b\x27\r\n\r\nDEL "a\\x20b"\r\nECHO hi\n'
	# A request split over writes is answered once, when complete.
	got=$(
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		printf '*2\r\n$4\r\nEC' >&3
		sleep 0.1
		printf 'HO\r\n$5\r\nhel' >&3
		sleep 0.1
		printf 'lo\r\n' >&3
		timeout 2 head -c 11 <&3
	)
	[ "$got" = $'$5\r\nhello\r' ] || fail "[$label] split request: $(printf %q "$got")"
	local i
	for i in $(seq 10000); do printf '*3\r\n$3\r\nSET\r\n$%d\r\nkey%d\r\n$1\r\nv\r\n' $((${#i} + 3)) "$i"; done >"$tmp/mass"
	got=$(timeout 20 redis-cli -p "$port" --pipe <"$tmp/mass" 2>&1 | tail -1)
	[ "$got" = "errors: 0, replies: 10000" ] || fail "[$label] redis-cli --pipe: $got"
	expect 10000 dbsize
	expect OK flushall
}

check_limits() {
	local got
	got=$(exchange_to_close '*1\r\n$99999999999\r\n')
	[ "$got" = $'-ERR Protocol error: invalid bulk length\r\nrc=0' ] || fail "[$label] huge bulk: $(printf %q "$got")"
	got=$(exchange_to_close '*99999999\r\n')
	[ "$got" = $'-ERR Protocol error: invalid multibulk length\r\nrc=0' ] || fail "[$label] huge multibulk: $(printf %q "$got")"
	got=$(exchange_to_close '*2\r\n$3\r\nGET\r\n*1\r\n')
	[ "$got" = $'-ERR Protocol error: expected \'$\', got \'*\'\r\nrc=0' ] || fail "[$label] nested array: $(printf %q "$got")"
	got=$(exchange_to_close '*1\r\n$4\r\nPINGxx')
	[ "$got" = $'-ERR Protocol error: expected CRLF after bulk string\r\nrc=0' ] || fail "[$label] bad bulk end: $(printf %q "$got")"
	got=$(exchange_to_close '*1x\r\n')
	[ "$got" = $'-ERR Protocol error: invalid multibulk length\r\nrc=0' ] || fail "[$label] bad count: $(printf %q "$got")"
	got=$(exchange_to_close 'SET "unbalanced\r\n')
	[ "$got" = $'-ERR Protocol error: unbalanced quotes in request\r\nrc=0' ] || fail "[$label] quotes: $(printf %q "$got")"
	got=$(exchange_to_close "$(head -c 70000 /dev/zero | tr '\0' a)")
	[ "$got" = $'-ERR Protocol error: too big inline request\r\nrc=0' ] || fail "[$label] long inline line: $(printf %q "$got")"
	# A bulk over the 16 MiB limit, refused from its header.
	got=$(exchange_to_close '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16777217\r\n')
	[ "$got" = $'-ERR Protocol error: invalid bulk length\r\nrc=0' ] || fail "[$label] 16 MiB + 1 bulk: $(printf %q "$got")"
	# 1 MiB values are fine.
	head -c 1048576 /dev/zero | tr '\0' v >"$tmp/mib"
	expect OK -x set mib <"$tmp/mib"
	[ "$(cli get mib | wc -c)" = 1048577 ] || fail "[$label] 1 MiB value did not come back whole"
	expect PONG ping
}

check_benchmark() {
	local out
	out=$(timeout 60 redis-benchmark -p "$port" -t ping,set,get -n 20000 -c 50 -P 16 -q 2>&1 | tr '\r' '\n' | grep 'requests per second')
	echo "$out" | sed 's/^/   /'
	[ "$(grep -c 'requests per second' <<<"$out")" = 4 ] || fail "[$label] redis-benchmark: $out"
}

check_server() { # threads
	label="threads $1"
	start "$server" --threads "$1" || return
	echo "== mini-redis --threads $1 on port $port"
	check_commands
	check_expiry
	check_pubsub
	check_wire
	check_limits
	check_benchmark
	kill -0 "$pid" 2>/dev/null || fail "[$label] the server died"
	if [ -n "$tsan" ]; then
		echo "   (ThreadSanitizer: the SIGTERM shutdown is not checked; see the top)"
		stop
		grep -q 'Sanitizer' "$tmp/err" && fail "[$label] $(grep -m1 Sanitizer "$tmp/err")"
		return
	fi
	# Graceful shutdown on SIGTERM: it answers what it has, exits with 0.
	kill -TERM "$pid"
	local rc=
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "[$label] still running 10 s after SIGTERM"
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
	else
		wait "$pid"
		rc=$?
		[ "$rc" = 0 ] || fail "[$label] exit status $rc after SIGTERM"
		grep -q 'shutting down' "$tmp/out" || fail "[$label] no 'shutting down' after SIGTERM"
	fi
	pid=
	grep -q 'Sanitizer' "$tmp/err" && fail "[$label] $(grep -m1 Sanitizer "$tmp/err")"
}

# hold FD: open a connection on descriptor FD that the server accepted
# (it answers PING; a connection turned away gets the error instead).
hold() {
	local line
	for _ in $(seq 50); do
		eval "exec $1<>/dev/tcp/127.0.0.1/$port" || return 1
		printf 'PING\r\n' >&"$1"
		read -r -t 2 line <&"$1"
		[ "$line" = $'+PONG\r' ] && return 0
		eval "exec $1>&-"
		sleep 0.1
	done
	return 1
}

check_max_clients() {
	label="max-clients"
	start "$server" --threads 0 --max-clients 2 || return
	echo "== mini-redis --max-clients 2"
	hold 5 && hold 6 || fail "[$label] could not open two connections"
	expect "ERR max number of clients reached" ping
	exec 5>&- 6>&-
	local got
	for _ in $(seq 100); do
		got=$(cli ping)
		[ "$got" = PONG ] && break
		sleep 0.05
	done
	[ "$got" = PONG ] || fail "[$label] a slot did not come back: $got"
	stop
}

check_server 0
check_server 2
check_max_clients

# The tutorial's steps: each builds on the one before; check what each adds.
for step in "${steps[@]}"; do
	name=$(basename "$step")
	label=$name
	start "$step" || continue
	echo "== $name on port $port"
	expect PONG ping
	case $name in
	step1_*) ;;
	step2_*)
		expect hi echo hi
		expect "ERR unknown command 'nosuch'" nosuch
		;;
	*)
		expect OK set k v
		expect v get k
		;;
	esac
	case $name in
	step4_* | step5_*)
		expect OK set t v px 100
		sleep 0.3
		expect "" get t
		;;
	esac
	case $name in
	step5_*)
		redis-cli -p "$port" subscribe ch >"$tmp/tsub" &
		subs+=($!)
		for _ in $(seq 100); do
			[ "$(cli publish ch hi)" = 1 ] && break
			sleep 0.05
		done
		sleep 0.2
		grep -q '^hi$' "$tmp/tsub" || fail "[$label] pub/sub"
		for p in "${subs[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
		subs=()
		;;
	esac
	stop
done

if [ $failures -gt 0 ]; then
	echo "mini_redis_test: $failures failure(s)"
	exit 1
fi
echo "mini_redis_test: ok"
