# shellcheck shell=bash
# Helpers shared by bench/run.sh, bench/side_by_side.sh and bench/interleave.sh
# (sourced).

# A free TCP port on 127.0.0.1, below the ephemeral range (32768 up), where
# the load generators' own connections take their ports.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		ss -Htln "sport = :$p" 2>/dev/null | grep -q . || {
			echo "$p"
			return
		}
	done
}

# Wait up to 5 s for something to listen on port $1; false if nothing does.
wait_listen() {
	local _
	for _ in $(seq 100); do
		ss -Htln "sport = :$1" 2>/dev/null | grep -q . && return 0
		sleep 0.05
	done
	return 1
}

# User + system clock ticks of process $1 so far, all its threads (fields 14
# and 15 of /proc/PID/stat; the name in field 2 is in parentheses and may hold
# spaces); 0 if it is gone.
cpu_ticks() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || {
		echo 0
		return
	}
	s=${s##*) }
	echo "$s" | awk '{print $12 + $13}'
}

# The server binary for KIND (echo | http) and SPEC: edo, edo-fiber (from
# $EDO, an Edo build directory), a peer's name (tokio, go, libuv, epoll,
# hyper: from $PBIN, built by setup-peers.sh), or NAME=PATH.
server_bin() {
	case $1:$2 in
	*=*) echo "${2#*=}" ;;
	echo:edo) echo "$EDO/examples/echo_server" ;;
	echo:edo-fiber) echo "$EDO/examples/echo_server_fiber" ;;
	http:edo) echo "$EDO/examples/hello_server" ;;
	http:edo-fiber) echo "$EDO/examples/hello_server_fiber" ;;
	*) echo "$PBIN/${2}_$1" ;;
	esac
}
