#!/usr/bin/env bash
# The benchmark report's paired ratios (bench/paired.awk, servers.awk,
# ab.awk) on made-up raw results whose answers are known: `make bench` is
# not part of CI, so this is what keeps its arithmetic honest.
#
#   bash tests/bench_report_test.sh [ROOT]
set -u -o pipefail
ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
B=$ROOT/bench
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
fail=0

# expect NAME WANT GOT: one exact line of output
expect() {
	if grep -qxF -- "$2" <<<"$3"; then
		echo "ok: $1"
	else
		echo "FAIL: $1"
		echo "  wanted the line: $2"
		echo "  got:"
		sed 's/^/    /' <<<"$3"
		fail=1
	fi
}
# absent NAME PATTERN GOT: no line matches
absent() {
	if grep -qE -- "$2" <<<"$3"; then
		echo "FAIL: $1 (a line matches $2)"
		fail=1
	else
		echo "ok: $1"
	fi
}

line() { # bench impl threads value unit wl rep
	echo "bench=$1 impl=$2 threads=$3 value=$4 unit=$5 wl=$6 rep=$7" >>"$raw"
}

# tcp_echo_c100 on 1 thread: edo 100, 90, 120 against tokio 100 in rounds
# 1-3 (ratios 1.0, 0.9, 1.2: median 1.0, quartiles 0.95 and 1.1); epoll only
# in rounds 1 and 3 (ratios 0.5 and 0.6); go in round 2 alone (0.9/0.5 = 1.8).
for r in 1 2 3; do
	echo "run wl=tcp_echo impl=edo threads=1 rep=$r status=ok" >>"$raw"
done
line tcp_echo_c100 edo 1 100 ops/s tcp_echo 1
line tcp_echo_c100 edo 1 90 ops/s tcp_echo 2
line tcp_echo_c100 edo 1 120 ops/s tcp_echo 3
for r in 1 2 3; do line tcp_echo_c100 tokio 1 100 ops/s tcp_echo $r; done
line tcp_echo_c100 epoll 1 200 ops/s tcp_echo 1
line tcp_echo_c100 epoll 1 200 ops/s tcp_echo 3
line tcp_echo_c100 go 1 50 ops/s tcp_echo 2
# Rows that the servers' table leaves out (_spread, _cpu) or keeps (_p99).
line tcp_echo_c100_spread edo 1 1.2 x tcp_echo 1
line tcp_echo_c100_spread tokio 1 3.0 x tcp_echo 1
line tcp_echo_c100_cpu edo 1 9.0 s tcp_echo 1
line tcp_echo_c100_cpu tokio 1 9.5 s tcp_echo 1
line tcp_echo_c100_p99 edo 1 2 ms tcp_echo 1
line tcp_echo_c100_p99 tokio 1 4 ms tcp_echo 1
# A task workload is not a server: not in the servers' table.
line yield_many edo 0 40 ns/op yield_many 1
line yield_many tokio 0 80 ns/op yield_many 1
# The metrics A/B: edo ÷ edo-nometrics 1.02, 1.04, 1.00, 1.06 (median 1.03,
# quartiles 1.015 and 1.045); edo-metrics ÷ edo in round 1 only (1.1).
r=0
for v in 102 104 100 106; do
	r=$((r + 1))
	line spawn_many edo 0 $v ns/op spawn_many $r
	line spawn_many edo-nometrics 0 100 ns/op spawn_many $r
done
line spawn_many edo-metrics 0 112.2 ns/op spawn_many 1

servers=$(awk -v servers="tcp_echo http_hello" -v peers="tokio go libuv epoll" \
	-f "$B/paired.awk" -f "$B/servers.awk" "$raw") || fail=1
expect "servers: header, columns only for peers with a result" \
	"| row | threads | unit | edo ÷ tokio | edo ÷ go | edo ÷ epoll |" "$servers"
expect "servers: median and middle half of three rounds; a lone round; two rounds" \
	"| tcp_echo_c100 | 1 | ops/s | 1.000 (0.950–1.100, 3) | 1.800 | 0.550 (0.525–0.575, 2) |" "$servers"
expect "servers: p99 row kept, a peer without it gets —" \
	"| tcp_echo_c100_p99 | 1 | ms | 0.500 | — | — |" "$servers"
absent "servers: no _spread or _cpu row" "_spread|_cpu " "$servers"
absent "servers: no task workload" "yield_many" "$servers"

ab=$(awk -f "$B/paired.awk" -f "$B/ab.awk" "$raw") || fail=1
expect "ab: median of four paired ratios, and a lone pair" \
	"| spawn_many | 0 | ns/op | 1.030 (1.015–1.045, 4) | 1.100 |" "$ab"
absent "ab: only rows with edo-nometrics" "tcp_echo|yield_many" "$ab"

none=$(awk -v servers="tcp_echo" -v peers="tokio" -f "$B/paired.awk" -f "$B/servers.awk" /dev/null)
if [ -z "$none" ]; then echo "ok: servers: no table without results"; else
	echo "FAIL: servers: a table without results: $none"
	fail=1
fi

[ $fail = 0 ] && echo "bench_report: all checks passed"
exit $fail
