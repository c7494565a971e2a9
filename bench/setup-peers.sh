#!/usr/bin/env bash
# Installs what the benchmark peers need from Debian 12 packages (when
# missing) and builds every peer, release/-O2, into build/bench-peers/bin/.
# Everything builds offline: the Tokio peers against the crate sources that
# Debian's librust-*-dev packages install, the Go peers from the standard
# library only. A peer that fails to build is reported and the others go on.
#
# usage: bash bench/setup-peers.sh        (from anywhere; idempotent)
#   BENCH_PEERS_OUT=dir   where to build (default: <repo>/build/bench-peers)
#   BENCH_NO_INSTALL=1    never call apt-get, only build what can be built
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS=$ROOT/bench/peers
OUT=${BENCH_PEERS_OUT:-$ROOT/build/bench-peers}
BIN=$OUT/bin
LOGS=$OUT/logs
mkdir -p "$BIN" "$LOGS"

# Debian's own toolchains, never rustup's or another one on PATH.
CARGO_BIN=/usr/bin/cargo
RUSTC_BIN=/usr/bin/rustc
GO_BIN=/usr/bin/go

PACKAGES="librust-tokio-dev librust-hyper-dev librust-libc-dev cargo rustc golang-go
          libuv1-dev pkg-config gcc libc6-dev wrk gnuplot-nox redis-tools"

say() { printf 'setup-peers: %s\n' "$*" >&2; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

install_missing() {
	local missing="" p
	for p in $PACKAGES; do
		installed "$p" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "${BENCH_NO_INSTALL:-0}" = 1 ]; then
		say "missing packages (not installing, BENCH_NO_INSTALL=1):$missing"
		return 0
	fi
	local sudo=""
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	say "installing:$missing"
	$sudo apt-get update -q >"$LOGS/apt-update.log" 2>&1 || say "apt-get update failed (see $LOGS/apt-update.log)"
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing \
		>"$LOGS/apt-install.log" 2>&1 || say "apt-get install failed (see $LOGS/apt-install.log)"
}

FAILED=""
fail() {
	FAILED="$FAILED $1"
	say "peer $1: build FAILED (see $LOGS/$1.log)"
}

build_c() {
	local cflags="-O2 -g0 -Wall -Wextra -std=gnu11"
	cc $cflags -o "$BIN/echo_client" "$PEERS/echo_client.c" >"$LOGS/echo_client.log" 2>&1 ||
		fail echo_client
	{ cc $cflags -o "$BIN/epoll_echo" "$PEERS/epoll/server.c" &&
		cc $cflags -DPEER_HTTP -o "$BIN/epoll_http" "$PEERS/epoll/server.c"; } \
		>"$LOGS/epoll.log" 2>&1 || fail epoll
	local uv_cflags uv_libs
	uv_cflags=$(pkg-config --cflags libuv 2>/dev/null)
	uv_libs=$(pkg-config --libs libuv 2>/dev/null || echo -luv)
	# shellcheck disable=SC2086
	{ cc $cflags $uv_cflags -o "$BIN/libuv_echo" "$PEERS/libuv/server.c" $uv_libs &&
		cc $cflags $uv_cflags -DPEER_HTTP -o "$BIN/libuv_http" "$PEERS/libuv/server.c" $uv_libs &&
		cc $cflags $uv_cflags -o "$BIN/libuv_bench" "$PEERS/libuv/bench.c" $uv_libs; } \
		>"$LOGS/libuv.log" 2>&1 || fail libuv
}

build_tokio() {
	if [ ! -x "$CARGO_BIN" ] || [ ! -x "$RUSTC_BIN" ]; then
		echo "no Debian cargo/rustc at $CARGO_BIN / $RUSTC_BIN" >"$LOGS/tokio.log"
		fail tokio
		return
	fi
	local home=$OUT/cargo-home
	mkdir -p "$home"
	# Offline: crates-io replaced by the sources Debian's librust-*-dev install.
	cat >"$home/config.toml" <<-EOF
		[source.crates-io]
		replace-with = "debian"

		[source.debian]
		directory = "/usr/share/cargo/registry"

		[net]
		offline = true
	EOF
	(
		cd "$PEERS/tokio" &&
			env -u RUSTUP_TOOLCHAIN -u CARGO_BUILD_TARGET CARGO_HOME="$home" \
				CARGO_TARGET_DIR="$OUT/tokio-target" RUSTC="$RUSTC_BIN" RUSTDOC=/usr/bin/rustdoc \
				"$CARGO_BIN" build --release --offline --jobs "${BENCH_JOBS:-2}"
	) >"$LOGS/tokio.log" 2>&1 || {
		fail tokio
		return
	}
	local b
	for b in tokio_bench tokio_http hyper_http tokio_echo; do
		cp -f "$OUT/tokio-target/release/$b" "$BIN/$b"
	done
}

build_go() {
	if [ ! -x "$GO_BIN" ]; then
		echo "no Debian go at $GO_BIN" >"$LOGS/go.log"
		fail go
		return
	fi
	(
		cd "$PEERS/go" || exit 1
		export GOPROXY=off GOFLAGS= GO111MODULE=on GOTOOLCHAIN=local GOWORK=off \
			GOCACHE="$OUT/go-cache" GOPATH="$OUT/go-path" CGO_ENABLED=0
		for p in bench http echo; do
			"$GO_BIN" build -trimpath -o "$BIN/go_$p" "./$p" || exit 1
		done
	) >"$LOGS/go.log" 2>&1 || fail go
}

# mini_redis's peer: Debian's redis-server binary. redis-tools ships it as
# redis-check-rdb, which runs as a server when called by another name, so a
# link named redis-server in bin/ gives the server without the redis-server
# package and the system daemon its installation starts.
link_redis() {
	if [ -x /usr/bin/redis-check-rdb ]; then
		ln -sf /usr/bin/redis-check-rdb "$BIN/redis-server"
	else
		echo "no /usr/bin/redis-check-rdb (redis-tools)" >"$LOGS/redis.log"
		fail redis
	fi
}

pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }

write_versions() {
	{
		echo "tokio=$(pkgver librust-tokio-dev) (librust-tokio-dev)"
		echo "hyper=$(pkgver librust-hyper-dev) (librust-hyper-dev)"
		echo "rustc=$("$RUSTC_BIN" --version 2>/dev/null || echo missing)"
		echo "go=$("$GO_BIN" version 2>/dev/null | awk '{print $3}' || echo missing) (golang-go $(pkgver golang-go))"
		echo "libuv=$(pkgver libuv1-dev) (libuv1-dev)"
		echo "cc=$(cc --version 2>/dev/null | head -1)"
		echo "wrk=$(pkgver wrk) (wrk)"
		echo "redis=$(pkgver redis-tools) (redis-tools: redis-server, redis-benchmark)"
	} >"$OUT/versions.txt"
}

install_missing
build_c
build_tokio
build_go
link_redis
write_versions
echo "${FAILED# }" >"$OUT/failed.txt"
if [ -n "$FAILED" ]; then
	say "built into $BIN; FAILED:$FAILED"
else
	say "all peers built into $BIN"
fi
exit 0
