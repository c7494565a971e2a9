#!/usr/bin/env bash
# tests/valgrind.sh - the fiber tests under valgrind (memcheck), built with gcc
# (build-valgrind/) and with clang (build-valgrind-clang/): fibers switch
# stacks, and valgrind must be told of each one (src/fiber/san.h registers
# them) or it reports the switches as stack overflows and misses real errors.
# `make test-valgrind`; CI's "valgrind" stage.  EDO_STRESS_SCALE (default
# 0.25 here) scales the stress cases: valgrind runs code ~50x slower.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v valgrind >/dev/null 2>&1; then
	echo "valgrind.sh: valgrind is not installed (.ci/install-deps.sh installs it)" >&2
	exit 1
fi
export EDO_STRESS_SCALE=${EDO_STRESS_SCALE:-0.25}
export EDO_TEST_TIMEOUT=${EDO_TEST_TIMEOUT:-300} # seconds per case; a loaded CI machine
jobs=$(nproc)
failed=0
for cc in gcc clang; do
	dir=build-valgrind
	[[ $cc == gcc ]] || dir=build-valgrind-$cc
	# DWARF 4: Debian 12's valgrind cannot read the DWARF 5 clang 14 emits.
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc" \
		-DCMAKE_C_FLAGS=-gdwarf-4 -DEDO_BUILD_BENCH=OFF >/dev/null
	cmake --build "$dir" -j "$jobs" --target test_fiber >/dev/null
	echo "== valgrind: test_fiber ($cc)"
	# Each test case is a forked child: valgrind follows it without
	# --trace-children (no exec), and --error-exitcode fails the case.
	# --fair-sched=yes: valgrind runs one thread at a time, and its default
	# lock hands the CPU back to the thread that just released it, so a
	# worker spinning through yields starved the others (abort_races took
	# 118 s of its 120 s timeout; with the fair ticket lock, 4 s).
	if ! valgrind -q --fair-sched=yes --error-exitcode=99 --leak-check=no "$dir/tests/test_fiber"; then
		echo "== valgrind: test_fiber ($cc): FAILED"
		failed=1
	fi
done
exit "$failed"
