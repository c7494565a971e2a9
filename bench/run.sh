#!/usr/bin/env bash
# Edo's side-by-side benchmark runner (bench/README.md). Runs every workload
# of bench/workloads.txt for every implementation, each at least 3 times in
# fresh processes (interleaved), and reports the medians with Edo's ratio to
# each peer: a table on stdout, docs/benchmarks.md and docs/benchmarks.png.
#
# Environment:
#   EDO_BUILD=build      where Edo's binaries are (bench/edo_bench, examples/*_server)
#   BENCH=name           run only this workload (of workloads.txt)
#   QUICK=1              1 run each, 2 s load runs (reduced; says so in the report)
#   BENCH_REPS=n         runs per cell (default 3; QUICK: 1)
#   BENCH_SECONDS=s      duration of each server load run (default 10; QUICK: 2)
#   BENCH_WRITE_DOCS=0|1 write docs/ (default: 1 for a full run, 0 for QUICK or BENCH)
#   BENCH_SKIP_SETUP=1   do not call setup-peers.sh (use the peers already built)
#   BENCH_TIMEOUT=s      limit for one non-server process (default 300)
#   BENCH_REDIS_N=n      redis-benchmark -n for mini_redis (default 1000000; QUICK: 200000)
#   BENCH_REPORT_ONLY=1  run nothing: rebuild the report from the last run's raw results
#   BENCH_PIN=0|1        server loads: the load generator on the last CPU, servers of
#                        one thread (and redis-server) on the others (default 1 with
#                        2+ CPUs): it no longer lands on the server's core by chance
#   BENCH_AB_REPS=n      runs of Edo's cells in the metrics A/B workloads, those that
#                        list edo-nometrics (default 15; QUICK: 5); peers keep BENCH_REPS
#                        (BENCH_REPS=0 BENCH=spawn_many: that A/B alone)
#   BENCH_SERVER_REPS=n  runs of the server cells' target columns (BENCH_SERVER_IMPLS,
#                        default "edo tokio epoll") in tcp_echo and http_hello
#                        (default 7; QUICK: BENCH_REPS); the other columns keep
#                        BENCH_REPS. The report pairs each round's runs (servers.awk)
#   BENCH_AB_INSTR=x     instruction counts of those cells, in extra runs (one at
#                        threads 0, where they are exact; 3 on workers, QUICK: 1):
#                        perf, valgrind (cachegrind), 0 = none; default: perf if its
#                        hardware counter works here, else valgrind if installed
# Only 127.0.0.1 is ever used; every load run is bounded in time; servers are
# started here and stopped by their process id.
set -u
# The whole script is one { ... } block: bash reads all of it before running
# any, so editing this file while a suite runs cannot break that run.
{

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
cd "$ROOT" || exit 1
EDO_BUILD=${EDO_BUILD:-build}
case $EDO_BUILD in /*) EDO=$EDO_BUILD ;; *) EDO=$ROOT/$EDO_BUILD ;; esac
QUICK=${QUICK:-0}
[ "$QUICK" = 0 ] && QUICK=
BENCH=${BENCH:-}
if [ -n "$QUICK" ]; then
	REPS=${BENCH_REPS:-1}
	SECONDS_LOAD=${BENCH_SECONDS:-2}
else
	REPS=${BENCH_REPS:-3}
	SECONDS_LOAD=${BENCH_SECONDS:-10}
fi
if [ -n "$QUICK" ] || [ -n "$BENCH" ]; then
	WRITE_DOCS=${BENCH_WRITE_DOCS:-0}
else
	WRITE_DOCS=${BENCH_WRITE_DOCS:-1}
fi
TASK_TIMEOUT=${BENCH_TIMEOUT:-300}
ECHO_CONNS="100 1000"
HTTP_CONNS="256 1000"
# Pinning for server loads (BENCH_PIN): the client (wrk, echo_client,
# redis-benchmark: one thread each) on the last CPU; a server of one thread
# on the others, so that the scheduler cannot put both on one core while the
# other idles (which moved medians by up to 25% between runs); servers of
# more threads are not pinned.
NCPU=$(nproc)
PIN=${BENCH_PIN:-1}
if [ "$PIN" = 1 ] && [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
	PIN_CLIENT=(taskset -c $((NCPU - 1)))
	PIN_SERVER=(taskset -c 0-$((NCPU - 2)))
else
	PIN=0
	PIN_CLIENT=()
	PIN_SERVER=()
fi
# mini_redis: redis-benchmark requests per test (ping_inline, ping_mbulk, set, get).
if [ -n "$QUICK" ]; then REDIS_N=${BENCH_REDIS_N:-200000}; else REDIS_N=${BENCH_REDIS_N:-1000000}; fi
# The metrics A/B (bench/README.md, edo-nometrics): more runs, instructions.
if [ -n "$QUICK" ]; then AB_REPS=${BENCH_AB_REPS:-5} AB_INSTR_REPS=1; else AB_REPS=${BENCH_AB_REPS:-15} AB_INSTR_REPS=3; fi
# The servers' target columns (bench/README.md, "Servers, paired"): more runs.
if [ -n "$QUICK" ]; then SERVER_REPS=${BENCH_SERVER_REPS:-$REPS}; else SERVER_REPS=${BENCH_SERVER_REPS:-7}; fi
SERVER_IMPLS=${BENCH_SERVER_IMPLS:-edo tokio epoll}
AB_INSTR=${BENCH_AB_INSTR:-}
if [ -z "$AB_INSTR" ]; then
	if perf stat -x, -e instructions:u true 2>&1 | grep -q '^[0-9]*,,instructions'; then
		AB_INSTR=perf
	elif command -v valgrind >/dev/null; then
		AB_INSTR=valgrind
	else
		AB_INSTR=0
	fi
fi
PEERS=${BENCH_PEERS_OUT:-$ROOT/build/bench-peers}
export BENCH_PEERS_OUT=$PEERS
PBIN=$PEERS/bin
RES=$ROOT/build/bench-results
RAW=$RES/raw.txt
LOGS=$RES/logs
MANIFEST=$ROOT/bench/workloads.txt
COMMAND="EDO_BUILD=$EDO_BUILD${BENCH:+ BENCH=$BENCH}${QUICK:+ QUICK=1}${BENCH_REPS:+ BENCH_REPS=$BENCH_REPS}${BENCH_SECONDS:+ BENCH_SECONDS=$BENCH_SECONDS}${BENCH_AB_REPS:+ BENCH_AB_REPS=$BENCH_AB_REPS}${BENCH_SERVER_REPS:+ BENCH_SERVER_REPS=$BENCH_SERVER_REPS} bash bench/run.sh"

# Invoked by the top-level Makefile (`make bench`), say so.
if [ -n "${MAKELEVEL:-}" ]; then
	COMMAND="make bench${BENCH:+ BENCH=$BENCH}${QUICK:+ QUICK=1} (which runs: $COMMAND)"
fi
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

say() { printf 'bench: %s\n' "$*" >&2; }

SERVER_PID=
cleanup() {
	if [ -n "$SERVER_PID" ]; then
		kill -KILL "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the manifest ------------------------------------------------------------

WORKLOADS=()
declare -A KIND THREADS IMPLS
while read -r name kind threads impls rest; do
	case $name in '' | '#'*) continue ;; esac
	WORKLOADS+=("$name")
	KIND[$name]=$kind
	THREADS[$name]=${threads//,/ }
	IMPLS[$name]=${impls//,/ }
done <"$MANIFEST"
if [ -n "$BENCH" ] && [ -z "${KIND[$BENCH]:-}" ]; then
	say "unknown workload '$BENCH'; known: ${WORKLOADS[*]}"
	exit 2
fi

# Implementation columns, in this order when present in the manifest.
IMPL_ORDER="edo edo-metrics edo-nometrics edo-fiber tokio hyper go libuv epoll redis"

prog_for() { # kind impl -> path of the program
	case $1:$2 in
	task:edo | task:edo-metrics) echo "$EDO/bench/edo_bench" ;;
	task:edo-nometrics) echo "$EDO/bench/edo_bench_nometrics" ;;
	echo:edo) echo "$EDO/examples/echo_server" ;;
	http:edo) echo "$EDO/examples/hello_server" ;;
	echo:edo-fiber) echo "$EDO/examples/echo_server_fiber" ;;
	http:edo-fiber) echo "$EDO/examples/hello_server_fiber" ;;
	redis:edo) echo "$EDO/examples/mini-redis" ;;
	redis:redis) if [ -x "$PBIN/redis-server" ]; then echo "$PBIN/redis-server"; else command -v redis-server || echo ""; fi ;;
	task:tokio | task:go | task:libuv) echo "$PBIN/${2}_bench" ;;
	echo:hyper) echo "" ;;
	echo:*) echo "$PBIN/${2}_echo" ;;
	http:*) echo "$PBIN/${2}_http" ;;
	*) echo "" ;;
	esac
}

# ---- running one cell ----------------------------------------------------------

record_run() { # wl impl threads rep status [note]
	echo "run wl=$1 impl=$2 threads=$3 rep=$4 status=$5${6:+ note=$6}" >>"$RAW"
}

run_task() { # wl impl threads rep
	local wl=$1 impl=$2 t=$3 rep=$4 prog out rc log
	prog=$(prog_for task "$impl")
	if [ ! -x "$prog" ]; then
		record_run "$wl" "$impl" "$t" "$rep" missing not-built
		return
	fi
	log=$LOGS/$impl-$wl-t$t.log
	echo "== run $rep: $prog $wl $t" >>"$log"
	# edo-metrics: the same program with the optional collection on.
	out=$(EDO_BENCH_METRICS=$([ "$impl" = edo-metrics ] && echo 1) \
		timeout -k 5 "$TASK_TIMEOUT" "$prog" "$wl" "$t" 2>>"$log")
	rc=$?
	echo "$out" >>"$log"
	if [ $rc -eq 77 ]; then
		record_run "$wl" "$impl" "$t" "$rep" missing exit-77
		return
	fi
	out=$(printf '%s\n' "$out" | grep "^bench=.* impl=$impl threads=$t value=[0-9.e+-]* unit=")
	if [ $rc -ne 0 ] || [ -z "$out" ]; then
		record_run "$wl" "$impl" "$t" "$rep" failed "exit-$rc"
		say "  $impl $wl threads=$t: FAILED (exit $rc, see $log)"
		return
	fi
	record_run "$wl" "$impl" "$t" "$rep" ok
	printf '%s\n' "$out" | sed "s/\$/ wl=$wl rep=$rep/" >>"$RAW"
	printf '%s\n' "$out" | sed 's/^/  /' >&2
}

# The metrics A/B: instructions of one whole process (user space, every
# thread), counted by perf or by valgrind's cachegrind (which runs the threads
# one at a time).  The same on every run of the current-thread runtime; on
# workers, stealing and parking vary a little from run to run.  Emits
# `<wl>_instr` with unit instr.
run_instr() { # wl impl threads rep
	local wl=$1 impl=$2 t=$3 rep=$4 prog log out n metrics
	prog=$(prog_for task "$impl")
	[ -x "$prog" ] || return
	log=$LOGS/$impl-$wl-t$t.log
	metrics=$([ "$impl" = edo-metrics ] && echo 1)
	# The counter's report is on stderr; the program's result lines are not needed.
	if [ "$AB_INSTR" = perf ]; then
		out=$(EDO_BENCH_METRICS=$metrics timeout -k 5 "$TASK_TIMEOUT" \
			perf stat -x, -e instructions:u -- "$prog" "$wl" "$t" 2>&1 >/dev/null)
		n=$(printf '%s\n' "$out" | awk -F, '$3 ~ /^instructions/ {print $1}')
	else
		out=$(EDO_BENCH_METRICS=$metrics timeout -k 5 "$TASK_TIMEOUT" valgrind --tool=cachegrind \
			--cache-sim=no --cachegrind-out-file=/dev/null "$prog" "$wl" "$t" 2>&1 >/dev/null)
		n=$(printf '%s\n' "$out" | awk '/ I +refs:/ {gsub(",", "", $NF); print $NF}')
	fi
	printf '%s\n' "== instructions ($AB_INSTR), run $rep: $prog $wl $t" "$out" >>"$log"
	case $n in '' | *[!0-9]*)
		say "  $impl $wl threads=$t: no instruction count (see $log)"
		return
		;;
	esac
	emit "${wl}_instr" "$impl" "$t" "$n" instr "$wl" "$rep"
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts a server on a free port of 127.0.0.1: sets SERVER_PID and PORT, or
# returns 77 (the server says it lacks this configuration) or 1.
start_server() { # prog threads log
	local try i rc
	for try in 1 2 3 4 5; do
		PORT=$((20000 + RANDOM % 30000))
		listening "$PORT" && continue
		if [ "${1##*/}" = redis-server ]; then # Debian's, persistence off
			"${PIN_SERVER[@]}" "$1" --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
				>>"$3" 2>&1 &
		elif [ "$2" -le 1 ]; then
			"${PIN_SERVER[@]}" "$1" --port "$PORT" --threads "$2" >>"$3" 2>&1 &
		else
			"$1" --port "$PORT" --threads "$2" >>"$3" 2>&1 &
		fi
		SERVER_PID=$!
		for i in $(seq 100); do
			if ! kill -0 "$SERVER_PID" 2>/dev/null; then
				wait "$SERVER_PID"
				rc=$?
				SERVER_PID=
				[ $rc -eq 77 ] && return 77
				continue 2 # maybe the port was taken: try another
			fi
			listening "$PORT" && return 0
			sleep 0.1
		done
		stop_server
		return 1
	done
	return 1
}

stop_server() {
	local i
	[ -z "$SERVER_PID" ] && return
	kill -TERM "$SERVER_PID" 2>/dev/null
	for i in $(seq 30); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$SERVER_PID" 2>/dev/null
	wait "$SERVER_PID" 2>/dev/null
	SERVER_PID=
}

to_ms() { # wrk latency like 812.00us, 4.51ms, 1.02s -> ms
	awk -v x="$1" 'BEGIN {
		if (x ~ /us$/) printf "%.4f", x / 1000; else if (x ~ /ms$/) printf "%.4f", x + 0;
		else if (x ~ /m$/) printf "%.4f", x * 60000; else if (x ~ /s$/) printf "%.4f", x * 1000; }'
}

emit() { # bench impl threads value unit wl rep
	local line="bench=$1 impl=$2 threads=$3 value=$4 unit=$5"
	echo "$line wl=$6 rep=$7" >>"$RAW"
	echo "  $line" >&2
}

# A server cell's run order: the columns of SERVER_IMPLS together, Edo in
# their middle (each ratio the report pairs is then of neighbouring runs),
# then the other columns.
server_order() { # specs
	local s before=() after=() edo= rest=() n
	local -a tgt=()
	for s in $1; do
		case " $SERVER_IMPLS " in
		*" ${s%@*} "*) if [ "${s%@*}" = edo ]; then edo=$s; else tgt+=("$s"); fi ;;
		*) rest+=("$s") ;;
		esac
	done
	n=$((${#tgt[@]} / 2))
	before=("${tgt[@]:0:n}")
	after=("${tgt[@]:n}")
	echo "${before[*]} $edo ${after[*]} ${rest[*]}" | xargs
}

run_server() { # kind wl impl threads rep [conns]
	local kind=$1 wl=$2 impl=$3 t=$4 rep=$5 prog log conns c0 c1 out rate total p99 spread cpu rc hz
	prog=$(prog_for "$kind" "$impl")
	if [ -z "$prog" ] || [ ! -x "$prog" ]; then
		record_run "$wl" "$impl" "$t" "$rep" missing not-built
		return
	fi
	log=$LOGS/$impl-$wl-t$t.log
	echo "== run $rep: $prog --threads $t" >>"$log"
	start_server "$prog" "$t" "$log"
	rc=$?
	if [ $rc -eq 77 ]; then
		record_run "$wl" "$impl" "$t" "$rep" missing exit-77
		return
	elif [ $rc -ne 0 ]; then
		record_run "$wl" "$impl" "$t" "$rep" failed no-listen
		say "  $impl $wl threads=$t: FAILED to start/listen (see $log)"
		return
	fi
	hz=$(getconf CLK_TCK)
	if [ "$kind" = redis ]; then
		run_redis_benchmark "$wl" "$impl" "$t" "$rep" "$log" "$hz"
		return
	fi
	if [ -n "${6:-}" ]; then
		conns=$6
	elif [ "$kind" = http ]; then
		conns=$HTTP_CONNS
	else
		conns=$ECHO_CONNS
	fi
	local ok=1
	for c in $conns; do
		c0=$(cpu_ticks "$SERVER_PID")
		if [ "$kind" = http ]; then
			out=$(timeout -k 5 $((SECONDS_LOAD + 30)) "${PIN_CLIENT[@]}" wrk -t1 -c"$c" -d"${SECONDS_LOAD}s" --timeout 5s \
				--latency "http://127.0.0.1:$PORT/" 2>&1)
		else
			out=$(timeout -k 5 $((SECONDS_LOAD + 60)) "${PIN_CLIENT[@]}" "$PBIN/echo_client" --port "$PORT" --conns "$c" \
				--seconds "$SECONDS_LOAD" --size 64 2>&1)
		fi
		rc=$?
		c1=$(cpu_ticks "$SERVER_PID")
		printf '%s\n' "-- c=$c rc=$rc" "$out" >>"$log"
		if [ "$kind" = http ]; then
			rate=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {print $2}')
			total=$(printf '%s\n' "$out" | awk '/ requests in / {print $1}')
			p99=$(printf '%s\n' "$out" | awk '$1 == "99%" {print $2}')
			if printf '%s\n' "$out" | grep -q "Non-2xx"; then rate=; fi
		else
			rate=$(printf '%s\n' "$out" | sed -n 's/.*rate=\([0-9.]*\).*/\1/p')
			total=$(printf '%s\n' "$out" | sed -n 's/^msgs=\([0-9]*\) .*/\1/p')
			spread=$(printf '%s\n' "$out" | sed -n 's/^spread=\([0-9.]*\) .*/\1/p')
			p99=$(printf '%s\n' "$out" | sed -n 's/.*p99_us=\([0-9]*\).*/\1us/p')
		fi
		if [ $rc -ne 0 ] || [ -z "$rate" ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
			ok=0
			say "  $impl $wl c=$c threads=$t: FAILED (see $log)"
			continue
		fi
		cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz}')
		emit "${wl}_c$c" "$impl" "$t" "$rate" ops/s "$wl" "$rep"
		[ -n "${p99:-}" ] && emit "${wl}_c${c}_p99" "$impl" "$t" "$(to_ms "$p99")" ms "$wl" "$rep"
		[ -n "${spread:-}" ] && emit "${wl}_c${c}_spread" "$impl" "$t" "$spread" x "$wl" "$rep"
		emit "${wl}_c${c}_cpu" "$impl" "$t" "$cpu" s "$wl" "$rep"
		awk -v n="$total" -v cpu="$cpu" 'BEGIN { if (cpu > 0 && n > 0) printf "%.1f\n", n / cpu }' |
			while read -r per; do emit "${wl}_c${c}_per_cpu" "$impl" "$t" "$per" ops/cpu-s "$wl" "$rep"; done
	done
	stop_server
	if [ $ok = 1 ]; then
		record_run "$wl" "$impl" "$t" "$rep" ok
	else
		record_run "$wl" "$impl" "$t" "$rep" failed load
	fi
}

# mini_redis: `redis-benchmark -t ping,set,get -n REDIS_N -c 50 -P 16` against
# the server started by run_server (which stops it afterwards).
run_redis_benchmark() { # wl impl threads rep log hz
	local wl=$1 impl=$2 t=$3 rep=$4 log=$5 hz=$6 c0 c1 out rc cpu name rate n=0
	c0=$(cpu_ticks "$SERVER_PID")
	out=$(timeout -k 5 $((TASK_TIMEOUT + 60)) "${PIN_CLIENT[@]}" redis-benchmark -p "$PORT" -t ping,set,get \
		-n "$REDIS_N" -c 50 -P 16 -q 2>&1 | tr '\r' '\n' | grep 'requests per second')
	rc=$?
	c1=$(cpu_ticks "$SERVER_PID")
	printf '%s\n' "-- redis-benchmark -n $REDIS_N rc=$rc" "$out" >>"$log"
	while read -r name rate _; do
		name=$(printf '%s' "${name%:}" | tr 'A-Z' 'a-z')
		emit "${wl}_$name" "$impl" "$t" "$rate" ops/s "$wl" "$rep"
		n=$((n + 1))
	done <<<"$out"
	if [ $n -ne 4 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
		say "  $impl $wl threads=$t: FAILED (see $log)"
		stop_server
		record_run "$wl" "$impl" "$t" "$rep" failed load
		return
	fi
	cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz}')
	emit "${wl}_cpu" "$impl" "$t" "$cpu" s "$wl" "$rep"
	awk -v n="$((4 * REDIS_N))" -v cpu="$cpu" 'BEGIN { if (cpu > 0) printf "%.1f\n", n / cpu }' |
		while read -r per; do emit "${wl}_per_cpu" "$impl" "$t" "$per" ops/cpu-s "$wl" "$rep"; done
	stop_server
	record_run "$wl" "$impl" "$t" "$rep" ok
}

# ---- the suite -------------------------------------------------------------------

META=$RES/meta.txt
# One suite at a time: a second runner would share raw.txt (and the cores).
mkdir -p "$RES"
exec 9>"$RES/.lock"
if ! flock -n 9; then
	say "another bench/run.sh is running (lock $RES/.lock): waiting for it to finish"
	flock 9
fi
if [ "${BENCH_REPORT_ONLY:-0}" = 1 ]; then
	[ -s "$RAW" ] || { say "no $RAW to report on"; exit 1; }
	LOAD_AT_START= RUN_DATE= EDO_COMMIT=
	SERVER_REPS=
	# shellcheck disable=SC1090
	[ -f "$META" ] && . "$META"
	# A run from before the servers' extra rounds ran them REPS times.
	SERVER_REPS=${SERVER_REPS:-$REPS}
	say "report only, from $RAW"
else

START=$(date +%s)
RUN_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
EDO_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$ROOT" diff --quiet HEAD -- include src bench examples 2>/dev/null || EDO_COMMIT="$EDO_COMMIT (with uncommitted changes)"
if [ "${BENCH_SKIP_SETUP:-0}" != 1 ]; then
	say "building the peers (bench/setup-peers.sh)"
	bash "$ROOT/bench/setup-peers.sh"
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null
say "open files limit: $(ulimit -n)"
[ -x "$EDO/bench/edo_bench" ] || say "no $EDO/bench/edo_bench: every Edo task cell is missing"
mkdir -p "$LOGS"
rm -f "$RAW" "$META" "$LOGS"/*.log
say "mode: ${QUICK:+QUICK, }$REPS run(s) per cell ($AB_REPS for Edo in the metrics A/B, instructions: $AB_INSTR; $SERVER_REPS for $SERVER_IMPLS in the servers), ${SECONDS_LOAD} s load runs${BENCH:+, only $BENCH}"

for wl in "${WORKLOADS[@]}"; do
	[ -n "$BENCH" ] && [ "$wl" != "$BENCH" ] && continue
	kind=${KIND[$wl]}
	# The metrics A/B workloads run Edo's columns AB_REPS times, the
	# echo and HTTP servers their target columns SERVER_REPS times.
	nreps=$REPS ab= more=
	case " ${IMPLS[$wl]} " in *" edo-nometrics "*)
		ab=1
		[ "$AB_REPS" -gt "$nreps" ] && nreps=$AB_REPS
		;;
	esac
	case $kind in echo | http)
		more=" $SERVER_IMPLS "
		[ "$SERVER_REPS" -gt "$nreps" ] && nreps=$SERVER_REPS
		;;
	esac
	for t in ${THREADS[$wl]}; do
		# The echo and HTTP servers run one load at a time: every column
		# runs the same connection count one right after the other (a fresh
		# server each), so that the runs whose ratio is taken are seconds
		# apart rather than a minute.
		case $kind in
		echo) loads=$ECHO_CONNS ;;
		http) loads=$HTTP_CONNS ;;
		*) loads=all ;;
		esac
		for rep in $(seq "$nreps"); do
			say "$wl threads=$t run $rep/$nreps"
			li=0
			for load in $loads; do
				# Alternately in the manifest's order and in reverse: no
				# column always runs right after the same one.
				specs=${IMPLS[$wl]}
				[ "$loads" != all ] && specs=$(server_order "$specs")
				[ $(((rep + li) % 2)) = 0 ] && specs=$(tr ' ' '\n' <<<"$specs" | tac | paste -sd' ')
				li=$((li + 1))
				for spec in $specs; do
					impl=${spec%@*}
					if [ "$spec" != "$impl" ] && [ "${spec#*@}" != "$t" ]; then continue; fi
					if [ "$rep" -gt "$REPS" ]; then
						if [ -n "$more" ]; then
							case $more in *" $impl "*) ;; *) continue ;; esac
						else
							case $impl in edo | edo-*) ;; *) continue ;; esac
						fi
					fi
					if [ "$kind" = task ]; then
						run_task "$wl" "$impl" "$t" "$rep"
					elif [ "$load" = all ]; then
						run_server "$kind" "$wl" "$impl" "$t" "$rep"
					else
						run_server "$kind" "$wl" "$impl" "$t" "$rep" "$load"
					fi
				done
			done
		done
		if [ -n "$ab" ] && [ "$AB_INSTR" != 0 ]; then
			for rep in $(seq "$([ "$t" = 0 ] && echo 1 || echo "$AB_INSTR_REPS")"); do
				for impl in ${IMPLS[$wl]}; do
					case $impl in edo | edo-*) run_instr "$wl" "$impl" "$t" "$rep" ;; esac
				done
			done
		fi
	done
done
ELAPSED=$(($(date +%s) - START))
LOAD_AT_END=$(cut -d' ' -f1-3 /proc/loadavg)
# What the report needs besides raw.txt, so BENCH_REPORT_ONLY=1 can redo it.
for v in COMMAND RUN_DATE EDO_COMMIT REPS AB_REPS AB_INSTR SERVER_REPS SERVER_IMPLS SECONDS_LOAD REDIS_N QUICK BENCH EDO_BUILD ELAPSED LOAD_AT_START LOAD_AT_END PIN NCPU; do
	printf '%s=%q\n' "$v" "${!v}"
done >"$META"
fi

# ---- the report --------------------------------------------------------------------

impls=""
for i in $IMPL_ORDER; do grep -qE "(^|[ ,])$i(@|,|$)" <(awk '!/^#/ && NF >= 4 {print $4}' "$MANIFEST") && impls="$impls $i"; done
CHART_DATA=$RES/chart.dat
TABLE=$(awk -v order="${WORKLOADS[*]}" -v impls="${impls# }" -v reps="$REPS" -v chart="$CHART_DATA" \
	-f "$ROOT/bench/report.awk" "$RAW")
# The metrics A/B: paired ratios, with their spread (bench/ab.awk).
AB_TABLE=$(awk -f "$ROOT/bench/paired.awk" -f "$ROOT/bench/ab.awk" "$RAW")
# The servers: Edo ÷ each peer in paired runs (bench/servers.awk).
servers="" peers=""
for k in "${WORKLOADS[@]}"; do [ "${KIND[$k]}" = echo ] || [ "${KIND[$k]}" = http ] && servers="$servers $k"; done
for i in ${impls# }; do case $i in edo | edo-*) ;; *) peers="$peers $i" ;; esac; done
SERVER_TABLE=$(awk -v servers="$servers" -v peers="$peers" -f "$ROOT/bench/paired.awk" -f "$ROOT/bench/servers.awk" "$RAW")
echo
echo "$TABLE"
echo
echo "edo/peer = Edo's median / the peer's median. For ns/op, ms, s and bytes lower is better"
echo "(under 1: Edo better); for ops/s and ops/cpu-s higher is better (over 1: Edo better)."
if [ -n "$AB_TABLE" ]; then
	echo
	echo "Metrics cost: median of the ratios of paired runs (middle half, pairs); _cpu = process CPU time, _instr = instructions ($AB_INSTR):"
	echo "$AB_TABLE"
fi
if [ -n "$SERVER_TABLE" ]; then
	echo
	echo "Servers, paired: median of the ratios edo ÷ peer of runs in the same round (middle half, pairs):"
	echo "$SERVER_TABLE"
fi
echo "Suite time: ${ELAPSED:-unknown} s."

if [ "$WRITE_DOCS" = 1 ]; then
	DOC=$ROOT/docs/benchmarks.md
	PNG=$ROOT/docs/benchmarks.png
	mkdir -p "$ROOT/docs"
else
	DOC=$RES/benchmarks.md
	PNG=$RES/benchmarks.png
fi

# The chart: Edo's advantage over each peer, one group of bars per row.
plot_chart() {
	command -v gnuplot >/dev/null || { say "no gnuplot: no chart"; return; }
	local rows
	rows=$(($(wc -l <"$CHART_DATA") - 1))
	if [ "$rows" -le 0 ]; then
		gnuplot <<-EOF 2>>"$LOGS/gnuplot.log"
			set terminal pngcairo size 1000,300 font "sans,11"
			set output "$PNG"
			unset border; unset tics; unset key
			set label 1 "Edo vs peers: no Edo result yet (every Edo cell is missing)" at screen 0.5,0.5 center
			plot [0:1][0:1] NaN
		EOF
		return
	fi
	local cols width lo hi ytics k servers n1 n2 most
	cols=$(head -1 "$CHART_DATA" | awk '{print NF}')
	# Two panels: the runtime workloads, then the servers.
	servers=""
	for k in "${WORKLOADS[@]}"; do [ "${KIND[$k]}" != task ] && servers="$servers $k"; done
	awk -v servers="$servers" -v t="$RES/chart-task.dat" -v s="$RES/chart-server.dat" '
		BEGIN { n = split(servers, S, " ") }
		NR == 1 { print > t; print > s; next }
		{ srv = 0; for (i = 1; i <= n; i++) if (index($1, S[i] "_") == 1) srv = 1
		  print > (srv ? s : t) }' "$CHART_DATA"
	n1=$(($(wc -l <"$RES/chart-task.dat") - 1))
	n2=$(($(wc -l <"$RES/chart-server.dat") - 1))
	most=$((n1 > n2 ? n1 : n2))
	width=$((700 + most * (cols - 1) * 16))
	[ $width -gt 3200 ] && width=3200
	# Bars are log2(advantage): up = Edo better, down = Edo worse; ticks as ratios.
	read -r lo hi < <(awk 'NR > 1 { for (i = 2; i <= NF; i++) if ($i != "-") {
			if (!n++ || $i < lo) lo = $i; if (n == 1 || $i > hi) hi = $i } }
		END { lo = lo < -1 ? lo : -1; hi = hi > 1 ? hi : 1
			l = int(lo); if (l > lo) l--; h = int(hi); if (h < hi) h++; print l, h }' "$CHART_DATA")
	ytics=""
	for k in $(seq "$lo" "$hi"); do
		ytics="$ytics${ytics:+, }\"$(awk -v k="$k" 'BEGIN { v = 2 ^ k; printf (v >= 1 ? "%g" : "1/%g"), (v >= 1 ? v : 1 / v) }')x\" $k"
	done
	local panels=0 f
	for f in task server; do [ "$(wc -l <"$RES/chart-$f.dat")" -gt 1 ] && panels=$((panels + 1)); done
	{
		cat <<-EOF
			set terminal pngcairo size $width,$((80 + panels * 460)) font "sans,10"
			set output "$PNG"
			set multiplot layout $panels,1 title "Edo vs each peer: bars up = Edo better, down = Edo worse (log scale; run of ${RUN_DATE:-unknown}, $(nproc) cores)" noenhanced
			set style data histograms
			set style histogram clustered gap 1
			set style fill solid 0.8 border -1
			set yrange [$lo:$hi]
			set ytics ($ytics)
			set grid ytics
			set ylabel "peer time / Edo time\n(Edo / peer for ops/s)"
			set xtics rotate by -35 left noenhanced
			set key top left noenhanced
			set datafile missing "-"
			set xzeroaxis lt -1 lw 2
			set bmargin 8
		EOF
		for f in task server; do
			[ "$(wc -l <"$RES/chart-$f.dat")" -gt 1 ] || continue
			echo "set title \"$([ $f = task ] && echo 'runtime workloads (label: workload/threads)' || echo 'servers (requests/s and requests per server CPU second)')\""
			echo "plot for [i=2:$cols] \"$RES/chart-$f.dat\" using i:xtic(1) title columnheader(i)"
		done
		echo "unset multiplot"
	} | gnuplot 2>>"$LOGS/gnuplot.log"
}
plot_chart

cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
{
	echo "# Edo benchmarks: side by side"
	echo
	echo "Generated by \`bench/run.sh\` — do not edit by hand. Workload definitions: [bench/README.md](../bench/README.md)."
	echo
	echo "- date: ${RUN_DATE:-unknown} (report written $(date -u '+%Y-%m-%d %H:%M UTC'))"
	echo "- machine: ${cpu_model:-unknown CPU}, $(nproc) cores, $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r), shared with other work (numbers are noisy; read the ratios)"
	echo "- command: \`$COMMAND\`"
	echo "- Edo: commit ${EDO_COMMIT:-unknown}, binaries from \`$EDO_BUILD/\`"
	echo "- peers (Debian 12 packages):"
	sed 's/^/  - /' "$PEERS/versions.txt" 2>/dev/null
	[ -n "$(cat "$PEERS/failed.txt" 2>/dev/null)" ] && echo "  - peers that failed to build: $(cat "$PEERS/failed.txt")"
	echo "- runs: ${REPS} per cell (Edo's columns of the metrics A/B: ${AB_REPS:-$REPS}; the servers' $(echo ${SERVER_IMPLS:-edo tokio epoll} | sed "s/ /, /g") columns in tcp_echo and http_hello: ${SERVER_REPS:-$REPS}), fresh process each, interleaved; the median is shown${QUICK:+ (QUICK mode: reduced, not for publication)}; a \`*\` marks a median of fewer runs than planned (some failed)"
	loads=""
	grep -q " wl=http_hello " "$RAW" && loads="$loads; \`wrk -t1 -c256\` and \`-c1000\`, ${SECONDS_LOAD} s each (http_hello)"
	grep -q " wl=tcp_echo " "$RAW" && loads="$loads; \`echo_client\` with 100 and 1,000 connections, 64-byte messages, ${SECONDS_LOAD} s each (tcp_echo)"
	grep -q " wl=mini_redis " "$RAW" && loads="$loads; \`redis-benchmark -t ping,set,get -n $REDIS_N -c 50 -P 16\` against mini-redis and Debian's redis-server (mini_redis)"
	if [ "$PIN" = 1 ]; then
		where="the load generator is pinned to CPU $((NCPU - 1)), servers of one thread (and redis-server) to CPU$([ "$NCPU" -gt 2 ] && echo "s 0-$((NCPU - 2))" || echo " 0"), servers of more threads run on every CPU (BENCH_PIN=0: no pinning)"
	else
		where="the load generator shares the cores with the server (not pinned)"
	fi
	[ -n "$loads" ] && echo "- server loads on 127.0.0.1:${loads#;}; $where"

	echo "- suite time: ${ELAPSED:-unknown} s; load average at start ${LOAD_AT_START:-unknown}, at end ${LOAD_AT_END:-unknown}"
	echo
	echo "## How to read it"
	echo
	echo "- **edo/X = Edo's median ÷ X's median**, for every unit. For \`ns/op\`, \`ms\`, \`s\` and \`bytes\` (better = lower) a ratio **under 1** means Edo is better; for \`ops/s\` and \`ops/cpu-s\` (better = higher) a ratio **over 1** means Edo is better."
	echo "- threads: 0 = current-thread runtime (Go: GOMAXPROCS 1), N = multi-thread runtime with N workers (Go: GOMAXPROCS N); libuv and epoll are one event loop (listed under 0 or 1)."
	echo "- **missing**: the implementation does not provide that workload yet (program absent, or it exited 77); **failed**: it ran and gave no valid result (see \`build/bench-results/logs/\`); empty: not applicable."
	echo "- Server rows: \`<workload>_cN\` = requests (round trips) per second with N connections, \`_p99\` = p99 latency (wrk's; for tcp_echo, echo_client's: of every round trip, send to the last byte back), \`_spread\` = how unevenly the echo server served its connections (round trips of the most served connection ÷ those of the least served; 1 = evenly), \`_cpu\` = server CPU seconds during the load, \`_per_cpu\` = requests per server CPU second. In http_hello, tokio is a raw server on Tokio, hyper is hyper 0.14 on Tokio, go is net/http. **edo-fiber** is not a peer but Edo again: the same servers written with stackful fibers (\`examples/hello_server_fiber.c\`, \`echo_server_fiber.c\`); \`edo/edo-fiber\` is the stackless server's result ÷ the fiber server's."
	echo
	echo "## Results"
	echo
	echo "$TABLE"
	echo
	echo "![Edo's advantage over each peer]($(basename "$PNG"))"
	echo
	echo "The chart plots, for each row where Edo has a result, Edo's advantage over each peer: the ratio above turned so that over 1 always means Edo is better (log scale; the \`_cpu\`, \`_instr\`, \`_p99\` and \`_spread\` rows are left out of it)."
	if [ -n "$SERVER_TABLE" ]; then
		echo
		echo "## Servers, paired"
		echo
		echo "Each round of a server cell runs every column once on one load (connection count), one right after the other, so a change of load on the machine (which moved one binary's requests/s by up to 1.7x between runs a minute apart) hits the runs of one round alike. Below, each ratio is the median over the rounds of Edo's result ÷ the peer's in the same round, with the middle half of those ratios and the number of rounds; the columns $(echo ${SERVER_IMPLS:-edo tokio epoll} | sed "s/ /, /g") run ${SERVER_REPS:-$REPS} rounds, the others ${REPS}. Over 1 is better for Edo in the requests/s (\`_cN\`) and requests per CPU second (\`_per_cpu\`) rows; under 1 in the p99 (\`_p99\`) rows. The table above gives the ratio of the medians instead."
		echo
		echo "$SERVER_TABLE"
	fi
	if [ -n "$AB_TABLE" ]; then
		echo
		echo "## What the metrics cost"
		echo
		echo "**edo-nometrics** is Edo built with \`EDO_NO_METRICS\`: the always-on counters of \`include/edo/metrics.h\` (and the poll count and last-poll stamp of task dumps) compiled out. **edo-metrics** is Edo with the optional collection of \`include/edo/trace.h\` turned on (stall detector, poll-time histogram timing one poll in 16). Their runs (${AB_REPS:-?} each) are interleaved with Edo's; each ratio below is the median of the ratios of paired runs (run r of one ÷ run r of the other), with the middle half of those ratios and the number of pairs: a ratio of 1.02 is a cost of 2%. \`<workload>_cpu\` rows compare process CPU time (user + system, every thread) in the timed region, steadier than wall time on a shared machine; \`<workload>_instr\` rows compare the instructions of the whole process (${AB_INSTR:-?}; one run at threads 0, where the count is the same every run, three on workers), the measure least disturbed by other work on the machine."
		echo
		echo "$AB_TABLE"
	fi
	missing=$(awk '$1 == "run" && / impl=edo / && / status=missing/ {sub(/^wl=/, "", $2); sub(/^threads=/, "", $4); print $2 " (threads " $4 ")"}' "$RAW" | sort -u | paste -sd, - | sed 's/,/, /g')
	if [ -n "$missing" ]; then
		echo
		echo "Edo missing: $missing."
	fi
} >"$DOC"
say "report: $DOC, chart: $PNG, raw: $RAW"
exit 0
}
