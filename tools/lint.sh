#!/usr/bin/env bash
# tools/lint.sh - Edo's lint (`make lint`; CI runs it):
#
#   1. format  clang-format --dry-run -Werror over the tracked .c/.h files
#              (`make format`, which is `tools/lint.sh --fix`, fixes them)
#   2. async   every EDO_ASYNC / EDO_ASYNC_PUBLIC body starts with EDO_BEGIN();
#              (tools/lint-async.sh, after its self-test)
#   3. tidy    clang-tidy (.clang-tidy) over src/**/*.c, with the compile
#              commands of $BUILD (default build/), configured here with
#              CMAKE_EXPORT_COMPILE_COMMANDS=ON
#
# `tools/lint.sh format async` runs only the stages named.  Exits non-zero if
# any stage fails, after running them all.
#
# bench/peers/ (the same workloads written against other runtimes) is not
# Edo's C: its own .clang-format there keeps the peers' compact style.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
CLANG_TIDY=${CLANG_TIDY:-clang-tidy}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

c_files() {
	git ls-files '*.c' '*.h'
}

if [[ "${1-}" == "--fix" ]]; then
	mapfile -t files < <(c_files)
	exec "$CLANG_FORMAT" -i "${files[@]}"
fi

stages=("$@")
[[ ${#stages[@]} -gt 0 ]] || stages=(format async tidy)
failed=()

need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	echo "lint: $1 not found (run .ci/install-deps.sh)" >&2
	return 1
}

lint_format() {
	need "$CLANG_FORMAT" || return 1
	local files
	mapfile -t files < <(c_files)
	[[ ${#files[@]} -gt 0 ]] || return 0
	if ! "$CLANG_FORMAT" --dry-run -Werror "${files[@]}"; then
		echo "lint: the files above are not clang-formatted; run \`make format\`" >&2
		return 1
	fi
}

lint_async() {
	bash tools/lint-async.sh --self-test && bash tools/lint-async.sh
}

lint_tidy() {
	need "$CLANG_TIDY" || return 1
	# Configure (cheap, and keeps the tree's other settings) so that the
	# compile commands exist and list every current source file.
	cmake -S . -B "$BUILD" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null || return 1
	local files
	mapfile -t files < <(git ls-files 'src/*.c')
	[[ ${#files[@]} -gt 0 ]] || return 0
	# -Wno-unknown-warning-option: the commands may be gcc's, with warning
	# flags clang does not know.
	printf '%s\n' "${files[@]}" |
		xargs -P "$JOBS" -n 4 "$CLANG_TIDY" -p "$BUILD" --quiet \
			--extra-arg=-Wno-unknown-warning-option 2>&1 |
		grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$'
	local rc=("${PIPESTATUS[@]}")
	[[ ${rc[1]} -eq 0 ]]
}

for s in "${stages[@]}"; do
	case $s in
	format | async | tidy) ;;
	*)
		echo "lint: unknown stage '$s' (format, async, tidy)" >&2
		exit 2
		;;
	esac
	echo "== lint: $s"
	if "lint_$s"; then
		echo "== lint: $s: ok"
	else
		echo "== lint: $s: FAILED"
		failed+=("$s")
	fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
	echo "lint: FAILED: ${failed[*]}"
	exit 1
fi
echo "lint: ok"
