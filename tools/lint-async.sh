#!/usr/bin/env bash
# tools/lint-async.sh - check that every coroutine body starts with EDO_BEGIN();
#
#   tools/lint-async.sh              check every tracked .c/.h file
#   tools/lint-async.sh FILE...      check these files
#   tools/lint-async.sh --self-test  run the checker on tools/testdata/
#
# include/edo/async.h, rule 2: EDO_BEGIN() is the first statement of every
# body defined with EDO_ASYNC(fn, frame_t, cleanup) or EDO_ASYNC_PUBLIC(...).
# A body without it compiles when it has no EDO_END() (and a statement before
# it runs again on every resume), so the compiler alone cannot catch it.
#
# How: comments, string and character literals and preprocessor lines (with
# their continuations) are blanked out, newlines kept, so that the macros'
# own definitions and the examples in comments are not checked.  Then each
# EDO_ASYNC( / EDO_ASYNC_PUBLIC( has its argument list skipped by matching
# parentheses, and what follows must be `{ EDO_BEGIN ( ) ;` with any
# whitespace between the tokens.  Prints `file:line: message` per finding and
# exits 1 if there was any.  Plain POSIX awk (mawk, gawk, busybox).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

check() {
	awk '
	function blank(s) { gsub(/[^\n]/, " ", s); return s }

	# Blank comments and literals on one line, carrying /* */ across lines.
	function strip(line,    out, i, n, c, d, q) {
		out = ""; n = length(line); i = 1
		while (i <= n) {
			c = substr(line, i, 1); d = substr(line, i, 2)
			if (in_comment) {
				if (d == "*/") { in_comment = 0; out = out "  "; i += 2 }
				else { out = out " "; i++ }
			} else if (d == "/*") {
				in_comment = 1; out = out "  "; i += 2
			} else if (d == "//") {
				out = out blank(substr(line, i)); i = n + 1
			} else if (c == "\"" || c == "\047") {
				q = c; out = out " "; i++
				while (i <= n) {
					c = substr(line, i, 1)
					if (c == "\\") { out = out "  "; i += 2; continue }
					out = out " "; i++
					if (c == q) break
				}
			} else {
				out = out c; i++
			}
		}
		return out
	}

	FNR == 1 {
		if (NR > 1) scan(prev_file)
		text = ""; in_comment = 0; in_pp = 0; prev_file = FILENAME
	}
	{
		raw = $0
		s = strip(raw)
		cont = (raw ~ /\\[ \t]*$/)
		if (in_pp || s ~ /^[ \t]*#/) {
			s = blank(s)
			in_pp = cont
		}
		text = text s "\n"
	}
	END { if (NR > 0) scan(prev_file); exit (bad > 0 ? 1 : 0) }

	function lineno(pos,    t) {
		t = substr(text, 1, pos - 1)
		return gsub(/\n/, "", t) + 1
	}

	function report(pos, msg) {
		printf "%s:%d: %s\n", fname, lineno(pos), msg
		bad++
	}

	function scan(file,    rest, off, at, name, i, n, depth, c, after) {
		fname = file
		rest = text; off = 0
		while (match(rest, /EDO_ASYNC(_PUBLIC)?[ \t\n]*\(/)) {
			at = off + RSTART
			# Skip matches inside a longer identifier (MY_EDO_ASYNC().
			if (RSTART > 1 && substr(rest, RSTART - 1, 1) ~ /[A-Za-z0-9_]/) {
				off += RSTART + RLENGTH - 1
				rest = substr(rest, RSTART + RLENGTH)
				continue
			}
			name = substr(rest, RSTART, RLENGTH)
			sub(/[ \t\n]*\($/, "", name)
			# Skip the argument list: balance the parentheses.
			i = RSTART + RLENGTH; n = length(rest); depth = 1
			while (i <= n && depth > 0) {
				c = substr(rest, i, 1)
				if (c == "(") depth++
				else if (c == ")") depth--
				i++
			}
			after = substr(rest, i)
			if (depth > 0) {
				report(at, name "(: unbalanced parentheses")
			} else if (after !~ /^[ \t\n]*\{/) {
				report(at, name "(...) is not followed by a body { ... }")
			} else if (after !~ /^[ \t\n]*\{[ \t\n]*EDO_BEGIN[ \t\n]*\([ \t\n]*\)[ \t\n]*;/) {
				report(at, name "(...) body does not start with EDO_BEGIN(); (include/edo/async.h, rule 2)")
			}
			off += i - 1
			rest = after
		}
	}
	' "$@"
}

self_test() {
	local td="$root/tools/testdata" out expected got rc=0
	if ! check "$td/async_lint_good.c" >/dev/null; then
		echo "lint-async self-test: FAILED: the good sample was rejected:" >&2
		check "$td/async_lint_good.c" >&2 || true
		return 1
	fi
	# Every line of the bad sample that carries `expect-error` must be
	# reported, and nothing else.
	out=$(check "$td/async_lint_bad.c") && {
		echo "lint-async self-test: FAILED: the bad sample passed" >&2
		return 1
	}
	expected=$(grep -n '/\* expect-error \*/' "$td/async_lint_bad.c" | cut -d: -f1 | sort -n | tr '\n' ' ')
	got=$(printf '%s\n' "$out" | cut -d: -f2 | sort -n | tr '\n' ' ')
	if [[ "$expected" != "$got" ]]; then
		echo "lint-async self-test: FAILED: expected findings on lines [$expected], got [$got]:" >&2
		printf '%s\n' "$out" >&2
		rc=1
	fi
	return $rc
}

if [[ "${1-}" == "--self-test" ]]; then
	self_test && echo "lint-async self-test: ok"
	exit
fi

if [[ $# -eq 0 ]]; then
	cd "$root"
	mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v '^tools/testdata/')
	set -- "${files[@]}"
fi
[[ $# -gt 0 ]] || exit 0
check "$@"
