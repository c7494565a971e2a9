#!/usr/bin/env bash
# Where a server's time per request goes, for servers whose rates differ by
# a few percent (bench/README.md, "Per request"): each server in turn, in
# the suite's setting (one thread pinned to CPU 0, the load on CPU 1), and
# per request:
#   user_us, sys_us   the server's CPU time in user space and in the kernel
#                     (/proc/PID/stat, all its threads)
#   syscalls          system calls the server made, and how many of them
#                     were epoll_wait (perf's raw_syscalls and syscalls
#                     tracepoints; "-" where perf cannot read them)
#   cli_waits         epoll_wait calls of the load client (how many replies
#                     each wake-up found: fewer is larger batches)
# Tracing the syscalls slows every server alike by a few percent; rates are
# printed for reference, not for ratios (bench/interleave.sh is for those).
#
#   bash bench/per_request.sh LOAD SECONDS SERVER...
#
#   LOAD    echo100 | echo1000 (echo_client with 100 / 1,000 connections)
#   SERVER  edo, edo-fiber (from $EDO_BUILD, default build-release), tokio,
#           go, libuv, epoll (built by bench/setup-peers.sh), or NAME=PATH
set -u -o pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
EDO=${EDO_BUILD:-build-release}
case $EDO in /*) ;; *) EDO=$ROOT/$EDO ;; esac
PBIN=${BENCH_PEERS_OUT:-$ROOT/build/bench-peers}/bin

usage() {
	sed -n '16,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
[ $# -ge 3 ] || usage
LOAD=$1 SECS=$2
shift 2
case $LOAD in
echo100 | echo1000) conns=${LOAD#echo} ;;
*) usage ;;
esac
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
HZ=$(getconf CLK_TCK)
TMP=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT

# Can perf count the syscall tracepoints here?
TRACE=0
perf stat -e raw_syscalls:sys_enter -o /dev/null true >/dev/null 2>&1 && TRACE=1

# field N (14 = utime, 15 = stime) of /proc/PID/stat
stat_field() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || {
		echo 0
		return
	}
	s=${s##*) }
	echo "$s" | awk -v f=$(($2 - 2)) '{print $f}'
}

printf '%-10s %10s %8s %8s %9s %9s %9s\n' server rate/s user_us sys_us syscalls epoll_w cli_waits
for spec in "$@"; do
	name=${spec%%=*}
	bin=$(server_bin echo "$spec")
	[ -x "$bin" ] || {
		echo "per_request: no echo server for '$spec' ($bin)" >&2
		exit 2
	}
	port=$(free_port)
	taskset -c 0 "$bin" --port "$port" --threads 1 >/dev/null 2>&1 &
	PID=$!
	wait_listen "$port" || {
		echo "per_request: $name does not listen" >&2
		exit 1
	}
	u0=$(stat_field "$PID" 14) s0=$(stat_field "$PID" 15)
	if [ $TRACE = 1 ]; then
		perf stat -x, -e raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait \
			-p "$PID" -o "$TMP/srv" &
		PP=$!
	fi
	out=$(perf stat -x, -e syscalls:sys_enter_epoll_wait -o "$TMP/cli" \
		taskset -c 1 "$PBIN/echo_client" --port "$port" --conns "$conns" \
		--seconds "$SECS" 2>&1)
	if [ $TRACE = 1 ]; then
		kill -INT "$PP"
		wait "$PP" 2>/dev/null
	fi
	u1=$(stat_field "$PID" 14) s1=$(stat_field "$PID" 15)
	kill "$PID" 2>/dev/null
	wait "$PID" 2>/dev/null
	PID=
	rate=$(sed -n 's/.*rate=\([0-9.]*\).*/\1/p' <<<"$out")
	[ -n "$rate" ] || {
		echo "per_request: $name: no rate from echo_client" >&2
		exit 1
	}
	awk -v name="$name" -v rate="$rate" -v secs="$SECS" -v hz="$HZ" \
		-v du=$((u1 - u0)) -v ds=$((s1 - s0)) -v trace=$TRACE \
		-v srv="$TMP/srv" -v cli="$TMP/cli" '
	function count(file, ev,   line, f, v) {
		v = -1
		while ((getline line < file) > 0) {
			split(line, f, ",")
			if (f[3] == ev && f[1] ~ /^[0-9]+$/) v = f[1]
		}
		close(file)
		return v
	}
	BEGIN {
		req = rate * secs
		all = trace ? count(srv, "raw_syscalls:sys_enter") : -1
		ew = trace ? count(srv, "syscalls:sys_enter_epoll_wait") : -1
		cw = count(cli, "syscalls:sys_enter_epoll_wait")
		printf "%-10s %10.0f %8.2f %8.2f %9s %9s %9s\n", name, rate,
			du / hz * 1e6 / req, ds / hz * 1e6 / req,
			all < 0 ? "-" : sprintf("%.3f", all / req),
			ew < 0 ? "-" : sprintf("%.4f", ew / req),
			cw < 0 ? "-" : sprintf("%.4f", cw / req)
	}'
done
