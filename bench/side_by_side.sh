#!/usr/bin/env bash
# Two servers measured at the same time, for a ratio that the machine's drift
# does not move (bench/README.md, "Side by side").
#
#   bash bench/side_by_side.sh LOAD A B [ROUNDS] [SECONDS]
#
#   LOAD     echo100 | echo1000 (tcp_echo with 100 / 1,000 connections),
#            http256 | http1000 (wrk -t1), redis (redis-benchmark -t ping,set,get
#            -c 50 -P 16; -n BENCH_REDIS_N, default 500000)
#   A, B     implementations: edo, edo0 (Edo's current-thread runtime), edo-fiber,
#            tokio, go, libuv, epoll (the load's peers, as bench/run.sh names
#            them), redis (Debian's redis-server, for LOAD redis); one thread each
#   ROUNDS   default 6; SECONDS: each load run, default 5 (echo and http)
#
# Each round starts both servers, one pinned to CPU 0 and the other to CPU 1,
# and loads both at once, each load generator pinned to the other server's
# CPU; the next round swaps the CPUs.  Both servers therefore see the same
# moment of the host, and each CPU holds one server and one load generator.
# Sequential runs on this 2-core VM moved a server's rate by up to +-25% from
# one run to the next (the host, not the server: the same binary went from 52k
# to 106k messages/s); side by side, one echo round's ratio stays within a few
# percent of the next.  http rounds spread far more (0.6-1.5 with 1,000
# connections: wrk's own pace swings), so give them more rounds.  Printed: each round's rates and ratio A / B, then the geometric
# mean of the ratios with the lowest and highest.
#
# redis-benchmark sends a fixed number of requests, so with redis the faster
# server's load ends first and the other runs its last part alone, which
# favours the slower one a little.
#
# This is not `make bench`: the servers share each CPU with a load generator,
# a different (and harder) setting from the suite's, and only two run at once.
# Use it to decide whether a change or a peer is faster, not to report the
# suite's figures.
set -u -o pipefail # a failed round fails the script, not only its awk
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
EDO=${EDO_BUILD:-build-release}
case $EDO in /*) ;; *) EDO=$ROOT/$EDO ;; esac
PBIN=${BENCH_PEERS_OUT:-$ROOT/build/bench-peers}/bin
LOAD=${1:-}
A=${2:-}
B=${3:-}
ROUNDS=${4:-6}
SECS=${5:-5}
REDIS_N=${BENCH_REDIS_N:-500000}

usage() {
	sed -n '5,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
[ -n "$B" ] || usage
[ "$(nproc)" -ge 2 ] || {
	echo "side_by_side: needs 2 CPUs" >&2
	exit 2
}

case $LOAD in
echo100 | echo1000) kind=echo conns=${LOAD#echo} ;;
http256 | http1000) kind=http conns=${LOAD#http} ;;
redis) kind=redis conns=50 ;;
*) usage ;;
esac

# prog impl -> the command line of a one-thread server, without --port
prog() {
	case $kind:$1 in
	echo:edo) echo "$EDO/examples/echo_server --threads 1" ;;
	echo:edo0) echo "$EDO/examples/echo_server --threads 0" ;;
	echo:edo-fiber) echo "$EDO/examples/echo_server_fiber --threads 1" ;;
	http:edo) echo "$EDO/examples/hello_server --threads 1" ;;
	http:edo0) echo "$EDO/examples/hello_server --threads 0" ;;
	http:edo-fiber) echo "$EDO/examples/hello_server_fiber --threads 1" ;;
	redis:edo) echo "$EDO/examples/mini-redis --threads 1" ;;
	redis:edo0) echo "$EDO/examples/mini-redis --threads 0" ;;
	redis:redis)
		local r=$PBIN/redis-server
		[ -x "$r" ] || r=$(command -v redis-server)
		echo "$r --bind 127.0.0.1 --save '' --appendonly no"
		;;
	echo:* | http:*) echo "$PBIN/${1}_$kind --threads 1" ;;
	*) echo "" ;;
	esac
}

for impl in "$A" "$B"; do
	p=$(prog "$impl")
	bin=${p%% *}
	if [ -z "$p" ] || [ ! -x "$bin" ]; then
		echo "side_by_side: no $kind server for '$impl' (${bin:-none}); build Edo in $EDO and the peers (bench/setup-peers.sh)" >&2
		exit 2
	fi
done

PIDS=()
cleanup() {
	[ ${#PIDS[@]} -gt 0 ] && kill "${PIDS[@]}" 2>/dev/null
	wait 2>/dev/null
	PIDS=()
}
trap 'cleanup; exit 130' INT TERM

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# load cpu port out: one load run; writes its rate (per second) to out
load() {
	local cpu=$1 port=$2 out=$3
	case $kind in
	echo)
		taskset -c "$cpu" "$PBIN/echo_client" --port "$port" --conns "$conns" --seconds "$SECS" |
			sed -n 's/.*rate=\([0-9.]*\).*/\1/p' >"$out"
		;;
	http)
		taskset -c "$cpu" wrk -t1 -c"$conns" -d"${SECS}s" "http://127.0.0.1:$port/" |
			awk '/Requests\/sec/ {print $2}' >"$out"
		;;
	redis)
		# The sum of the four rates stands for the round (ping inline,
		# ping bulk, set, get); each is printed too.
		taskset -c "$cpu" redis-benchmark -p "$port" -t ping,set,get -n "$REDIS_N" -c 50 -P 16 -q |
			tr '\r' '\n' | awk '/requests per second/ {s += $2; r = r sprintf(" %.0f", $2)} END {printf "%.0f%s\n", s, r}' >"$out"
		;;
	esac
}

tmp=$(mktemp -d)
trap 'cleanup; rm -rf "$tmp"' EXIT
echo "side by side: $LOAD, $A vs $B, $ROUNDS rounds$([ $kind = redis ] || echo " of $SECS s")"
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then ca=0 cb=1; else ca=1 cb=0; fi
	ok=0
	for _ in 1 2 3; do
		pa=$(free_port)
		pb=$(free_port)
		[ "$pb" = "$pa" ] && pb=$((pa + 1))
		eval "taskset -c $ca $(prog "$A") --port $pa" >>"$tmp/a.log" 2>&1 &
		PIDS+=($!)
		eval "taskset -c $cb $(prog "$B") --port $pb" >>"$tmp/b.log" 2>&1 &
		PIDS+=($!)
		if wait_listen "$pa" && wait_listen "$pb"; then
			ok=1
			break
		fi
		cleanup # a port taken meanwhile: again, on others
	done
	if [ $ok = 0 ]; then
		echo "side_by_side: round $r: a server did not listen:" >&2
		tail -n 3 "$tmp/a.log" "$tmp/b.log" >&2
		exit 1
	fi
	load "$cb" "$pa" "$tmp/ra" &
	la=$!
	load "$ca" "$pb" "$tmp/rb"
	wait "$la"
	cleanup
	ra=$(cat "$tmp/ra")
	rb=$(cat "$tmp/rb")
	if [ -z "${ra%% *}" ] || [ -z "${rb%% *}" ]; then
		echo "side_by_side: round $r: a load run failed" >&2
		exit 1
	fi
	echo "$r|$ca|$cb|$ra|$rb"
done | awk -F'|' -v a="$A" -v b="$B" '
	{
		split($4, x, " "); split($5, y, " ")
		q = x[1] / y[1]
		printf "round %d: %s (cpu %d) %.0f/s, %s (cpu %d) %.0f/s, ratio %.3f", $1, a, $2, x[1], b, $3, y[1], q
		if (length(x) > 1) { # redis: the four rates that make the sum
			printf "  (%s:", a; for (i = 2; i in x; i++) printf " %s", x[i]
			printf "; %s:", b; for (i = 2; i in y; i++) printf " %s", y[i]
			printf ")"
		}
		printf "\n"
		n++; s += log(q); if (n == 1 || q < lo) lo = q; if (n == 1 || q > hi) hi = q
	}
	END { if (n) printf "%s / %s: geometric mean %.3f (lowest %.3f, highest %.3f, %d rounds)\n", a, b, exp(s / n), lo, hi, n }'
