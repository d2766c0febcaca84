#!/bin/sh
# Runs the line-reader fuzzer (fuzz_lines) for a bounded time, so that
# make check catches a regression the seed corpus or a short run finds.
# Fuzzing happens on a copy of the corpus in a scratch directory: the
# source tree stays read-only (distcheck), and what libFuzzer learns is
# thrown away.  A crashing input is kept in $top_builddir/tests/fuzz/.
#
# FUZZ_TIME (seconds, default 10) and FUZZ_RUNS (default 200000) bound
# the run, whichever comes first.
set -u
: "${top_srcdir:=$(dirname "$0")/../..}" "${top_builddir:=.}"

if [ "${POSTERN_FUZZ:-no}" != yes ]; then
	echo "fuzz_lines: skipped (configure found no clang that links" \
	     "-fsanitize=fuzzer)"
	exit 77
fi

fuzzer="$top_builddir/tests/fuzz/fuzz_lines"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/postern-fuzz.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

mkdir "$tmp/corpus" "$tmp/crash" &&
	cp "$top_srcdir"/tests/fuzz/corpus/lines/* "$tmp/corpus/" &&
	chmod -R u+w "$tmp/corpus" || exit 99

"$fuzzer" -max_total_time="${FUZZ_TIME:-10}" -runs="${FUZZ_RUNS:-200000}" \
	-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$tmp/crash/" "$tmp/corpus" >"$tmp/log" 2>&1
rc=$?
# The closing status line (runs, coverage, exec/s) and the stats.
grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)|^stat::' "$tmp/log"
if [ "$rc" -eq 0 ]; then
	echo "PASS: fuzz_lines"
	echo "1 passed, 0 failed"
	exit 0
fi
tail -n 60 "$tmp/log"
for f in "$tmp"/crash/*; do
	[ -e "$f" ] || continue
	cp "$f" "$top_builddir/tests/fuzz/" &&
		echo "kept $top_builddir/tests/fuzz/$(basename "$f");" \
		     "reproduce: $fuzzer $top_builddir/tests/fuzz/$(basename "$f")"
done
echo "FAIL: fuzz_lines (exit $rc)"
echo "0 passed, 1 failed"
exit 1
