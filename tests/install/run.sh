#!/usr/bin/env bash
# tests/install/run.sh BUILD_DIR SOURCE_DIR - the `install` test (ctest).
#
# Installs the build under test into a fresh prefix, as `make install` does,
# then checks what a user of the installed Edo gets:
#   - the layout: public headers only, both libraries, the CMake package and
#     the pkg-config file;
#   - libedo.so has a SONAME and exports only edo_* symbols, all versioned
#     (src/libedo.map);
#   - tests/install/consumer.c, an out-of-tree program, builds with CMake's
#     find_package(edo) (shared and static) and with `pkg-config edo`, and
#     each binary runs and prints the expected line.
# Consumers are built with the build's own compiler and sanitizer flags.
# Exits 77 (skip) after the other checks if pkg-config is not installed.
set -euo pipefail

build=$(cd "${1:?usage: run.sh BUILD_DIR SOURCE_DIR}" && pwd)
src=$(cd "${2:?usage: run.sh BUILD_DIR SOURCE_DIR}" && pwd)
here="$src/tests/install"

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
step() { echo "-- $*"; }

cache() { # cache VAR: a value from the build's CMakeCache.txt
	sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" | head -n 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/edo-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"

cc=$(cache CMAKE_C_COMPILER)
[[ -n "$cc" ]] || fail "no CMAKE_C_COMPILER in $build/CMakeCache.txt"
case "$(cache EDO_SANITIZE)" in
address) san="-fsanitize=address,undefined -fno-omit-frame-pointer" ;;
thread) san="-fsanitize=thread" ;;
*) san="" ;;
esac

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
	{ cat "$tmp/install.log" >&2; fail "cmake --install failed"; }

# ---- layout ------------------------------------------------------------------
step "installed layout"
[[ -f "$prefix/include/edo.h" ]] || fail "include/edo.h not installed"
for h in "$src"/include/edo/*.h; do
	[[ -f "$prefix/include/edo/$(basename "$h")" ]] || fail "include/edo/$(basename "$h") not installed"
done
# Internal headers live in src/ and are never installed (DESIGN.md §8).
extra=$(cd "$prefix/include" && find . -type f ! -name 'edo.h' ! -path './edo/*.h')
[[ -z "$extra" ]] || fail "unexpected files under include/: $extra"

so=$(find "$prefix" -name 'libedo.so' | head -n 1)
[[ -n "$so" ]] || fail "libedo.so not installed"
libdir=$(dirname "$so")
[[ -f "$libdir/libedo.a" ]] || fail "libedo.a not installed beside libedo.so"
pc=$(find "$prefix" -name edo.pc | head -n 1)
[[ -n "$pc" ]] || fail "edo.pc not installed"
[[ -n "$(find "$prefix" -name edoConfig.cmake)" ]] || fail "edoConfig.cmake not installed"

# ---- the shared library's ABI surface ----------------------------------------
step "SONAME and exported symbols of $so"
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[[ "$soname" =~ ^libedo\.so\.[0-9]+$ ]] || fail "libedo.so has no SONAME libedo.so.N (got '$soname')"
[[ -e "$libdir/$soname" ]] || fail "$soname (the SONAME) is not installed"
# Defined dynamic symbols, less the version nodes (type A, e.g. EDO_0.1).
nm -D --defined-only --with-symbol-versions "$so" | awk '$2 != "A" { print $3 }' >"$tmp/syms"
[[ -s "$tmp/syms" ]] || fail "libedo.so exports nothing"
bad=$(grep -v -E '^edo_[A-Za-z0-9_]*@@?EDO_[0-9.]+$' "$tmp/syms" || true)
[[ -z "$bad" ]] || fail "libedo.so exports symbols that are not versioned edo_*:
$bad"
for sym in edo_block_on edo_spawn_on edo_strerror edo_runtime_free; do
	grep -q "^$sym@" "$tmp/syms" || fail "libedo.so does not export $sym"
done
echo "   $soname, $(wc -l <"$tmp/syms") symbols, all edo_*"

check_output() { # check_output NAME OUTPUT
	[[ "$2" =~ ^edo\ ([0-9]+\.[0-9]+\.[0-9]+):\ square\(7\)\ =\ 49$ ]] ||
		fail "$1 printed '$2', expected 'edo X.Y.Z: square(7) = 49'"
	header_version=${BASH_REMATCH[1]}
	echo "   $1: $2"
}

# ---- CMake: find_package(edo) ------------------------------------------------
step "consumer with CMake find_package(edo)"
if ! cmake -S "$here" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCMAKE_C_FLAGS="-Wall -Wextra -Werror $san" -DCMAKE_EXE_LINKER_FLAGS="$san" \
	-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$tmp/cmake.log" 2>&1; then
	cat "$tmp/cmake.log" >&2
	fail "configuring the consumer failed"
fi
found=$(sed -n 's/^edo_DIR:PATH=//p' "$tmp/cmake/CMakeCache.txt")
[[ "$found" == "$prefix"/* ]] || fail "find_package(edo) found '$found', not the install in $prefix"
cmake --build "$tmp/cmake" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; fail "building the consumer failed"; }
# No LD_LIBRARY_PATH: CMake's build RPATH must find the shared library.
check_output "find_package, edo::edo" "$("$tmp/cmake/consumer")"
check_output "find_package, edo::edo_static" "$("$tmp/cmake/consumer_static")"
! readelf -d "$tmp/cmake/consumer_static" | grep -q 'libedo\.so' ||
	fail "consumer_static is linked against libedo.so"

# ---- pkg-config ----------------------------------------------------------------
if ! command -v pkg-config >/dev/null 2>&1; then
	echo "SKIP: pkg-config is not installed (.ci/install-deps.sh installs it)"
	exit 77
fi
step "consumer with pkg-config"
# PKG_CONFIG_LIBDIR (not _PATH) so that no other edo.pc can be found.
export PKG_CONFIG_LIBDIR="$(dirname "$pc")"
pc_version=$(pkg-config --modversion edo)
flags=$(pkg-config --cflags --libs edo)
[[ "$(pkg-config --static --libs edo)" == *-pthread* ]] || fail "pkg-config --static --libs edo lacks -pthread"
# shellcheck disable=SC2086 # the flags are words
"$cc" -Wall -Wextra -Werror $san -o "$tmp/consumer_pc" "$here/consumer.c" $flags ||
	fail "building the consumer with \`pkg-config --cflags --libs edo\` ($flags) failed"
check_output "pkg-config" "$(LD_LIBRARY_PATH="$libdir" "$tmp/consumer_pc")"
[[ "$pc_version" == "$header_version" ]] ||
	fail "edo.pc says version $pc_version but edo.h says $header_version"

echo "install test: ok"
