#!/usr/bin/env bash
# .ci/install-deps.sh - install what building, testing and linting Edo needs
# (Debian 12 packages), only what is missing; quick when all is present.
# Run by .ci/run; run it by hand on a new machine.  Needs root or sudo only
# when something is missing.
#
#   compilers and build  gcc (its ASan/UBSan/TSan runtimes come with it), clang,
#                        make, cmake, binutils (readelf, nm: the install test)
#   clang's sanitizers   libclang-rt-14-dev (`make test-asan` with clang)
#   tests                pkg-config (the install test), valgrind, curl and wrk
#                        (tests/http_server_test.sh), tmux (tests/console_test.sh
#                        drives edo-console in it), redis-tools (redis-cli and
#                        redis-benchmark: tests/mini_redis_test.sh) and
#                        redis-server (the mini-redis benchmark's peer)
#   aarch64 fibers       gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user
#                        (test_fiber_arch runs the aarch64 context switch under
#                        qemu; about 100 MB, a minute to install)
#   lint                 clang-format, clang-tidy, git (its file list)
set -euo pipefail

# command:package, or package alone for what has no command of its own.
wanted=(
	gcc:gcc
	clang:clang
	make:make
	cmake:cmake
	readelf:binutils
	nm:binutils
	pkg-config:pkg-config
	valgrind:valgrind
	curl:curl
	wrk:wrk
	tmux:tmux
	redis-cli:redis-tools
	redis-server:redis-server
	aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu
	libc6-dev-arm64-cross
	qemu-aarch64:qemu-user
	clang-format:clang-format
	clang-tidy:clang-tidy
	git:git
	libclang-rt-14-dev
)

have_pkg() {
	command -v dpkg-query >/dev/null 2>&1 &&
		dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
}

missing=()
for w in "${wanted[@]}"; do
	if [[ $w == *:* ]]; then
		command -v "${w%%:*}" >/dev/null 2>&1 && continue
		pkg=${w#*:}
	else
		pkg=$w
		have_pkg "$pkg" && continue
	fi
	[[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
	echo "install-deps: all present"
	exit 0
fi

echo "install-deps: installing ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: no apt-get here; install these by hand: ${missing[*]}" >&2
	exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null 2>&1 || {
		echo "install-deps: need root (or sudo) to install ${missing[*]}" >&2
		exit 1
	}
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
echo "install-deps: done"
