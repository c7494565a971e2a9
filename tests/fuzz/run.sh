#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] - fuzz mini-redis's RESP parser with libFuzzer.
#
# Builds tests/fuzz/resp_fuzz.c with clang -fsanitize=fuzzer,address,undefined
# in build-fuzz/ (libFuzzer comes with Debian's libclang-rt-14-dev) and runs it
# for SECONDS (default $FUZZ_SECONDS, else 45), starting from a copy of
# tests/fuzz/corpus (what it finds stays in build-fuzz/corpus/).  A crash
# leaves its input in build-fuzz/crash-*; reproduce it with
#   build-fuzz/tests/fuzz/resp_fuzz build-fuzz/crash-<hash>
# or with any build's resp_fuzz_replay.  CI runs this as its `fuzz` stage.
# Exits 77 when clang cannot build a libFuzzer binary here.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
seconds=${1:-${FUZZ_SECONDS:-45}}
out=${FUZZ_BUILD:-build-fuzz}

probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' >"$probe/p.c"
if ! clang -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>/dev/null; then
	echo "fuzz: clang with libFuzzer is not available (install clang and libclang-rt-14-dev)"
	exit 77
fi

cmake -S . -B "$out" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DEDO_FUZZ=ON -DEDO_BUILD_BENCH=OFF -DEDO_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$out" --target resp_fuzz -j "$(nproc)"
mkdir -p "$out/corpus"
cp -n tests/fuzz/corpus/* "$out/corpus/"
echo "fuzz: resp_fuzz for ${seconds} s"
"$out/tests/fuzz/resp_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-max_len=4096 -print_final_stats=1 -artifact_prefix="$out/" "$out/corpus"
