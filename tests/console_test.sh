#!/usr/bin/env bash
# tests/console_test.sh HELLO_SERVER EDO_CONSOLE DEMO - edo-console driven as
# a person would, in a tmux terminal (send-keys, capture-pane):
#
#   1. examples/hello_server --threads 2 --console SOCK under wrk load: the
#      socket is a socket, mode 0600, ours; `edo-console --once` answers;
#      in tmux the live view shows the runtime, both workers polling, the
#      connection tasks (spawn site and the line each waits at); the task
#      table is sorted by busy time, and by time idle after the key `i`, by
#      polls after `p` (the columns are checked in order); `q` quits and
#      gives the terminal back; wrk saw no errors; the socket is gone after
#      the server stops.
#   2. tools/edo-console-demo: the stall log fills with its "blocker" task
#      (a usleep inside a task), the fiber shows what it awaits, and SIGQUIT
#      writes a task dump to the demo's stderr.
#
# Exits 77 (skipped) when tmux, wrk or curl is missing (.ci/install-deps.sh
# installs them).  Every wait is bounded; the servers, wrk and the private
# tmux server (-L) are stopped by what this script started.
set -uo pipefail

server=${1:?usage: console_test.sh HELLO_SERVER EDO_CONSOLE DEMO}
console=${2:?usage: console_test.sh HELLO_SERVER EDO_CONSOLE DEMO}
demo=${3:?usage: console_test.sh HELLO_SERVER EDO_CONSOLE DEMO}
for tool in tmux wrk curl timeout; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "skip: $tool not installed (.ci/install-deps.sh installs it)"
		exit 77
	fi
done

tmp=$(mktemp -d)
sock=$tmp/hello.sock
TMUX_L=edo-console-test-$$
pid=
wrk_pid=
demo_pid=
cleanup() {
	tmux -L "$TMUX_L" kill-server 2>/dev/null
	[ -n "$wrk_pid" ] && kill "$wrk_pid" 2>/dev/null && wait "$wrk_pid" 2>/dev/null
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

t() { tmux -L "$TMUX_L" "$@"; }
screen() { t capture-pane -p -t edo 2>/dev/null; }

# Wait until the screen shows $1 (an extended regex); at most $2 seconds.
wait_screen() {
	local deadline=$((SECONDS + $2))
	while [ $SECONDS -lt $deadline ]; do
		screen | grep -qE "$1" && return 0
		sleep 0.2
	done
	return 1
}

# The task table's column $1 (busy or idle) as numbers, in screen order.
# Columns are fixed-width (tools/edo-console): BUSY at 30-39, IDLE at 41-49.
column_values() {
	local from len
	if [ "$1" = busy ]; then from=30 len=10; else from=41 len=9; fi
	screen | awk -v from=$from -v len=$len '
		/^ *ID  STATE/ { on = 1; next }
		on && /^ *[0-9]+  [a-z]/ {
			v = substr($0, from, len); gsub(/^ +| +$/, "", v)
			if (v == "-") { print -1; next }
			split(v, p, " "); m = p[1]
			if (p[2] == "ns") m /= 1e6; else if (p[2] == "us") m /= 1e3
			else if (p[2] == "s") m *= 1e3; else if (p[2] == "min") m *= 6e4
			print m; next }
		on && !/^ *[0-9]+  / { on = 0 }'
}

# Non-increasing?
sorted_desc() { awk 'NR > 1 && $1 > prev + 1e-9 { bad = 1 } { prev = $1 } END { exit bad }'; }

# ---- 1. hello_server under load --------------------------------------------------
"$server" --port 0 --threads 2 --console "$sock" >"$tmp/out" 2>"$tmp/err" &
pid=$!
port=
for _ in $(seq 100); do
	port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/out" 2>/dev/null)
	[ -n "$port" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.05
done
if [ -z "$port" ]; then
	echo "FAIL: hello_server did not start: $(cat "$tmp/err")"
	exit 1
fi
echo "== hello_server --threads 2 --console $sock on port $port"

[ -S "$sock" ] || fail "$sock is not a socket"
[ "$(stat -c %a "$sock")" = 600 ] || fail "socket mode is $(stat -c %a "$sock"), not 600"
[ "$(stat -c %u "$sock")" = "$(id -u)" ] || fail "socket owner is not us"
once=$("$console" --once "$sock" 2>&1)
grep -q 'multi-thread runtime, 2 workers' <<<"$once" || fail "--once: $once"

# One connection that stays idle: under load every other task may be queued
# (a sanitizer build is slow), but this one waits at its read.
exec 5<>"/dev/tcp/127.0.0.1/$port" || fail "no idle connection"
timeout 60 wrk -t1 -c50 -d10s --timeout 5s "http://127.0.0.1:$port/" >"$tmp/wrk" 2>&1 &
wrk_pid=$!
sleep 1

t new-session -d -s edo -x 180 -y 60 "$console --interval 500 $sock" ||
	{ echo "FAIL: tmux new-session"; exit 1; }
wait_screen 'TASKS.*sorted by busy time' 10 || fail "no task table: $(screen)"
# Two refreshes under load, so that rates are known.
sleep 1.5
s=$(screen)
echo "$s" | sed 's/^/   | /' | head -30
grep -q 'edo-console .*multi-thread runtime, 2 workers' <<<"$s" || fail "header"
grep -qE '^WORKER +POLLS/S' <<<"$s" || fail "no worker table"
rates=$(awk '/^WORKER/ { on = 1; next } on && /^ +[0-9]+ / { print $2 } on && /^$/ { exit }' <<<"$s")
[ "$(wc -l <<<"$rates")" = 2 ] || fail "expected 2 worker rows, got: $rates"
awk '$1 + 0 > 0 { ok = 1 } END { exit !ok }' <<<"$rates" || fail "no worker is polling under load: $rates"
ntasks=$(sed -n 's/^TASKS (\([0-9]*\)).*/\1/p' <<<"$s")
[ "${ntasks:-0}" -ge 20 ] || fail "expected 50 connection tasks, the table says ${ntasks:-none}"
grep -qE ' conn +hello_server\.c:[0-9]+( |$)' <<<"$s" || fail "no conn task with its spawn site"
column_values busy | sorted_desc || fail "not sorted by busy time: $(column_values busy | tr '\n' ' ')"

t send-keys -t edo i
wait_screen 'sorted by time idle' 5 || fail "key i: $(screen | head -12)"
sleep 0.3
column_values idle | sorted_desc || fail "not sorted by time idle: $(column_values idle | tr '\n' ' ')"
# The longest idle is the quiet connection, parked at its read.
screen | grep -A1 -E '^ *ID  STATE' | tail -1 |
	grep -qE ' idle .* conn +hello_server\.c:[0-9]+ +hello_server\.c:[0-9]+ \(conn\)' ||
	fail "the idle connection does not show where it waits: $(screen | grep -A1 -E '^ *ID  STATE')"
t send-keys -t edo p
wait_screen 'sorted by polls' 5 || fail "key p"
t send-keys -t edo b
wait_screen 'sorted by busy time' 5 || fail "key b"
t send-keys -t edo q
for _ in $(seq 50); do t has-session -t edo 2>/dev/null || break; sleep 0.1; done
t has-session -t edo 2>/dev/null && fail "q did not quit"

wait "$wrk_pid"
wrk_pid=
exec 5<&-
sed 's/^/   /' "$tmp/wrk"
grep -q '^Requests/sec:' "$tmp/wrk" || fail "wrk gave no result"
grep -q 'Socket errors' "$tmp/wrk" && fail "wrk saw socket errors"
kill "$pid"
wait "$pid" 2>/dev/null
pid=
grep -q 'Sanitizer' "$tmp/err" && fail "$(grep -m1 Sanitizer "$tmp/err")"
# Killed, the server left its socket behind; the next one replaces it.
"$server" --port 0 --threads 0 --console "$sock" >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 100); do grep -q listening "$tmp/out" 2>/dev/null && break; sleep 0.05; done
grep -q 'current-thread runtime' <<<"$("$console" --once "$sock" 2>&1)" ||
	fail "a second server could not take over the stale socket: $(cat "$tmp/err")"
kill "$pid"
wait "$pid" 2>/dev/null
pid=

# ---- 2. the stall log, fibers, SIGQUIT ------------------------------------------------
sock2=$tmp/demo.sock
"$demo" --console "$sock2" --threads 2 --seconds 60 >"$tmp/demo.out" 2>"$tmp/demo.err" &
demo_pid=$!
for _ in $(seq 100); do [ -S "$sock2" ] && break; sleep 0.05; done
echo "== edo-console-demo --console $sock2"
t new-session -d -s edo -x 180 -y 60 "$console --interval 300 $sock2" ||
	{ echo "FAIL: tmux new-session"; exit 1; }
wait_screen 'STALL LOG \([1-9]' 15 || fail "no stall in the log: $(screen | tail -8)"
sleep 0.5
s=$(screen)
echo "$s" | sed 's/^/   | /' | tail -12
grep -qE 'task [0-9]+ "blocker" \(demo\.c:[0-9]+\) held worker [01] for [0-9]+ ms' <<<"$s" ||
	fail "the stall log does not name the blocker and its spawn site"
grep -qE ' sleepy-fiber .*edo_fiber_sleep' <<<"$s" || fail "the fiber's operation is not shown"
grep -qE ' napper +demo\.c:[0-9]+ +demo\.c:[0-9]+ \(napper\)' <<<"$s" || fail "no napper"
t send-keys -t edo q
kill -QUIT "$demo_pid"
for _ in $(seq 50); do grep -q 'edo task dump' "$tmp/demo.err" && break; sleep 0.1; done
grep -q 'edo task dump: multi-thread runtime, 2 workers' "$tmp/demo.err" ||
	fail "SIGQUIT wrote no dump: $(head -5 "$tmp/demo.err")"
grep -qE 'parked at .*demo\.c:[0-9]+ in napper' "$tmp/demo.err" || fail "the dump names no parked napper"
grep -qE 'edo: stall: task [0-9]+ "blocker"' "$tmp/demo.err" || fail "no stall line on stderr"
kill -0 "$demo_pid" 2>/dev/null || fail "SIGQUIT killed the demo"
kill "$demo_pid"
wait "$demo_pid" 2>/dev/null
demo_pid=
grep -q 'Sanitizer' "$tmp/demo.err" && fail "$(grep -m1 Sanitizer "$tmp/demo.err")"

if [ $failures -gt 0 ]; then
	echo "console_test: $failures failure(s)"
	exit 1
fi
echo "console_test: ok"
