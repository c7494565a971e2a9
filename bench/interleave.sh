#!/usr/bin/env bash
# Servers measured one after another, in rounds, in the suite's own setting
# (bench/README.md, "Interleaved"): for an A/B of two Edo builds or a check
# against a peer where side_by_side.sh's setting (each CPU shared by a server
# and a load generator) is not the one to judge by.
#
#   bash bench/interleave.sh LOAD ROUNDS SECONDS THREADS REF SERVER...
#
#   LOAD     echo100 | echo1000 (echo_client with 100 / 1,000 connections),
#            http256 | http1000 (wrk -t1 --latency)
#   THREADS  the servers' --threads; 1 pins them to CPU 0, as bench/run.sh
#            does, more leave them on every CPU; the load runs on CPU 1
#   REF      the server each round's ratios are taken against
#   SERVER   edo, edo0, edo-fiber (from $EDO_BUILD, default build-release),
#            tokio, go, libuv, epoll (built by bench/setup-peers.sh), or
#            NAME=PATH: a server binary taking --port and --threads, e.g.
#            old=/tmp/echo_server_before
#
# Each round runs every server once, in the order given, on a fresh port.
# Printed: one line per run (rate, p99 and worst round-trip latency in ms,
# spread for echo, and the server's CPU time per request in µs, user + system,
# from /proc), then per server the median over the rounds of its rate ÷ REF's
# rate in the same round, its median rate, p99 and CPU time per request.  Runs a
# minute apart on this 2-core VM moved one binary's rate by up to 2x; taking
# each ratio within a round, and the median over rounds, is what makes the
# comparison usable.  Not `make bench`: no CPU accounting, no report.
set -u -o pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
EDO=${EDO_BUILD:-build-release}
case $EDO in /*) ;; *) EDO=$ROOT/$EDO ;; esac
PBIN=${BENCH_PEERS_OUT:-$ROOT/build/bench-peers}/bin

usage() {
	sed -n '7,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
[ $# -ge 6 ] || usage
LOAD=$1 ROUNDS=$2 SECS=$3 THREADS=$4 REF=$5
shift 5
case $LOAD in
echo100 | echo1000) kind=echo conns=${LOAD#echo} ;;
http256 | http1000) kind=http conns=${LOAD#http} ;;
*) usage ;;
esac
[ "$(nproc)" -ge 2 ] || {
	echo "interleave: needs 2 CPUs" >&2
	exit 2
}
if [ "$THREADS" = 1 ]; then SCPU=0; else SCPU=0-$(($(nproc) - 1)); fi

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

NAMES=()
BINS=()
for s in "$@"; do
	n=${s%%=*}
	b=$(server_bin "$kind" "$s")
	[ -x "$b" ] || {
		echo "interleave: no $kind server for '$s' ($b)" >&2
		exit 2
	}
	NAMES+=("$n")
	BINS+=("$b")
done
printf '%s\n' "${NAMES[@]}" | grep -qx "$REF" || {
	echo "interleave: REF '$REF' is not among the servers" >&2
	exit 2
}

PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; exit 130' INT TERM


# name bin round -> one result line
run_one() {
	local name=$1 bin=$2 r=$3 port out rate p99 max spread cpu0 cpu1 cpu
	port=$(free_port)
	taskset -c "$SCPU" "$bin" --port "$port" --threads "$THREADS" >/dev/null 2>&1 &
	PID=$!
	wait_listen "$port"
	cpu0=$(cpu_ticks "$PID")
	if [ $kind = echo ]; then
		out=$(taskset -c 1 "$PBIN/echo_client" --port "$port" --conns "$conns" --seconds "$SECS" 2>&1)
		rate=$(sed -n 's/.*rate=\([0-9.]*\).*/\1/p' <<<"$out")
		spread=$(sed -n 's/^spread=\([0-9.]*\) .*/\1/p' <<<"$out")
		p99=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$out")
		max=$(sed -n 's/.*max_us=\([0-9]*\).*/\1/p' <<<"$out")
	else
		out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${SECS}s" --timeout 5s --latency \
			"http://127.0.0.1:$port/" 2>&1)
		rate=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
		grep -q "Non-2xx\|Socket errors" <<<"$out" && rate=
		spread=-
		# wrk prints 812.00us, 4.51ms, 1.02s: to us
		p99=$(awk '$1 == "99%" {v = $2; m = 1; if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1e3;
			else if (v ~ /s$/) m = 1e6; sub(/[a-z]+$/, "", v); printf "%d", v * m}' <<<"$out")
		max=$(awk '$1 == "Latency" && NF >= 4 {v = $4; m = 1; if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1e3;
			else if (v ~ /s$/) m = 1e6; sub(/[a-z]+$/, "", v); printf "%d", v * m}' <<<"$out")
	fi
	cpu1=$(cpu_ticks "$PID")
	if ! kill -0 "$PID" 2>/dev/null; then
		echo "interleave: $name exited during its run" >&2
		rate=
	fi
	# CPU µs per request over the load's run (connection set-up included).
	cpu=$(awk -v a="${cpu0:-0}" -v b="${cpu1:-0}" -v hz="$HZ" -v r="${rate:-0}" -v s="$SECS" \
		'BEGIN { if (r > 0 && b > a) printf "%.2f", (b - a) / hz * 1e6 / (r * s); else print "-" }')
	kill "$PID" 2>/dev/null
	wait "$PID" 2>/dev/null
	PID=
	[ -n "$rate" ] || {
		echo "interleave: $name failed in round $r" >&2
		return 1
	}
	printf 'round %d %s rate=%.0f p99_ms=%.1f max_ms=%.1f spread=%s cpu_us=%s\n' "$r" "$name" \
		"$rate" "$(awk -v x="${p99:-0}" 'BEGIN {print x / 1000}')" \
		"$(awk -v x="${max:-0}" 'BEGIN {print x / 1000}')" "${spread:--}" "$cpu"
}

HZ=$(getconf CLK_TCK)

echo "interleave: $LOAD, $ROUNDS rounds of $SECS s, --threads $THREADS (CPU $SCPU), load on CPU 1"
RUNS=$(mktemp)
trap 'rm -f "$RUNS"' EXIT
{
	for r in $(seq "$ROUNDS"); do
		for i in "${!NAMES[@]}"; do
			run_one "${NAMES[$i]}" "${BINS[$i]}" "$r" || exit 1
		done
	done
} | tee "$RUNS" || exit 1
awk -v ref="$REF" '
function med(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	split($4, x, "="); split($5, y, "="); split($8, z, "=")
	rate[$2, $3] = x[2]; p99[$2, $3] = y[2]; cpu[$2, $3] = z[2]
	if (!($3 in seen)) { seen[$3] = 1; order[++ns] = $3 }
	if ($2 > nr) nr = $2
}
END {
	for (s = 1; s <= ns; s++) {
		n = order[s]; k = 0; kc = 0
		for (r = 1; r <= nr; r++) if (rate[r, ref] > 0 && rate[r, n] > 0) {
			k++; q[k] = rate[r, n] / rate[r, ref]; v[k] = rate[r, n]; l[k] = p99[r, n]
			if (cpu[r, n] > 0) c[++kc] = cpu[r, n]
		}
		printf "%-12s %s/%s median %.3f, rate median %.0f/s, p99 median %.1f ms, CPU %s us/request (%d rounds)\n", n, n, ref, med(q, k), med(v, k), med(l, k), kc ? sprintf("%.2f", med(c, kc)) : "-", k
	}
}' "$RUNS"
