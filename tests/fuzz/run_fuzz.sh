#!/bin/sh
# Runs one libFuzzer harness, tests/fuzz/fuzz_NAME, for a bounded time
# on a copy of its seed corpus tests/fuzz/corpus/NAME, so that make check
# catches a regression the seeds or a short run find.  Each harness has a
# two-line wrapper, tests/fuzz/fuzz_NAME.sh, that make check runs:
#	exec "$(dirname "$0")/run_fuzz.sh" NAME
# Fuzzing happens on a copy of the corpus in a scratch directory: the
# source tree stays read-only (distcheck), and what libFuzzer learns is
# thrown away.  A crashing input is kept in $top_builddir/tests/fuzz/.
#
# FUZZ_TIME (seconds, default 10) and FUZZ_RUNS (default 200000) bound
# the run, whichever comes first.
#
# Memory bombs are crashes: one allocation over FUZZ_MALLOC_MB (default
# 64 MiB) or a process over FUZZ_RSS_MB (default 512 MiB; ASan's shadow
# and quarantine are most of it) stops the run with the input kept.  An
# input of a few KiB that allocates with the square of its length gets
# there; the MIME harness also checks its pool's octets against a linear
# bound on every input.  tests/fuzz/README.md says how to run long.
set -u
name=${1:?usage: run_fuzz.sh NAME}
: "${top_srcdir:=$(dirname "$0")/../..}" "${top_builddir:=.}"

if [ "${POSTERN_FUZZ:-no}" != yes ]; then
	echo "fuzz_$name: skipped (configure found no clang that links" \
	     "-fsanitize=fuzzer)"
	exit 77
fi

fuzzer="$top_builddir/tests/fuzz/fuzz_$name"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/postern-fuzz.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

mkdir "$tmp/corpus" "$tmp/crash" &&
	cp "$top_srcdir"/tests/fuzz/corpus/"$name"/* "$tmp/corpus/" &&
	chmod -R u+w "$tmp/corpus" || exit 99

"$fuzzer" -max_total_time="${FUZZ_TIME:-10}" -runs="${FUZZ_RUNS:-200000}" \
	-timeout=10 -rss_limit_mb="${FUZZ_RSS_MB:-512}" \
	-malloc_limit_mb="${FUZZ_MALLOC_MB:-64}" -print_final_stats=1 \
	-artifact_prefix="$tmp/crash/" "$tmp/corpus" >"$tmp/log" 2>&1
rc=$?
# The closing status line (runs, coverage, exec/s) and the stats.
grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)|^stat::' "$tmp/log"
if [ "$rc" -eq 0 ]; then
	echo "PASS: fuzz_$name"
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
echo "FAIL: fuzz_$name (exit $rc)"
echo "0 passed, 1 failed"
exit 1
