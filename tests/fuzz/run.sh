#!/bin/bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan, replays every saved crash input in tests/fuzz/regressions/<target>/,
# then fuzzes each target for a bounded time starting from a copy of its seed
# corpus tests/fuzz/corpus/<target>/ (the tree is never modified).
#
#   tests/fuzz/run.sh [SECONDS]     seconds per target (default 20)
#   FUZZ_BUILD=DIR                  build directory to (re)use (default: a temp dir)
#   FUZZ_TARGETS="fuzz_url ..."     only these targets
#
# Prints one TAP line per target: "ok - fuzz <target>: N runs, no crash" or
# "not ok - ..." with the crashing input's path and a hex dump of it; exits
# non-zero if any target crashed, leaked, timed out or failed to build.
# A crash found here belongs in tests/fuzz/regressions/<target>/ (copy the
# input there) once it is fixed: it is replayed on every run from then on.
set -u
FUZZ_DIR=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$FUZZ_DIR/../.." && pwd)
PER_TARGET=${1:-20}
WORK=$(mktemp -d /tmp/walarchive-fuzz.XXXXXX)
BUILD=${FUZZ_BUILD:-$WORK/build}
trap 'rm -rf "$WORK"' EXIT
FAILED=0

command -v clang >/dev/null || { echo "not ok - fuzz: clang is not installed"; exit 1; }

targets=()
for f in "$FUZZ_DIR"/fuzz_*.c; do
	t=$(basename "$f" .c)
	if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" $t "* ]]; then continue; fi
	targets+=("$t")
done

if ! { cmake -S "$SRC" -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DWALARCHIVE_FUZZ=ON -DWALARCHIVE_TESTS=OFF &&
	cmake --build "$BUILD" -j"$(nproc)" --target "${targets[@]}"; } >"$WORK/build.log" 2>&1; then
	tail -n 30 "$WORK/build.log"
	echo "not ok - fuzz: build with clang failed"
	exit 1
fi
if grep -q 'warning:' "$WORK/build.log"; then
	grep 'warning:' "$WORK/build.log"
	echo "not ok - fuzz: compiler warnings"
	FAILED=1
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# show_input FILE: the crashing input, so it can be copied from a CI log
show_input() {
	echo "# input ($(stat -c %s "$1") bytes, base64):"
	head -c 4096 "$1" | base64 -w 76 | sed 's/^/#   /'
}

for t in "${targets[@]}"; do
	bin=$BUILD/$t
	log=$WORK/$t.log
	# 1. every saved regression input, once each
	reg=("$FUZZ_DIR/regressions/$t"/*)
	if [ -e "${reg[0]}" ]; then
		if ! "$bin" -runs=1 "${reg[@]}" >"$log.reg" 2>&1; then
			grep -E 'ERROR|runtime error|Running:' "$log.reg" | tail -n 5 | sed 's/^/# /'
			echo "not ok - fuzz $t: a regression input crashes again"
			FAILED=1
			continue
		fi
	fi
	# 2. bounded fuzzing from a private copy of the seed corpus
	mkdir -p "$WORK/corpus/$t" "$WORK/artifacts"
	cp -r "$FUZZ_DIR/corpus/$t/." "$WORK/corpus/$t/" 2>/dev/null
	"$bin" -max_total_time="$PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
		-print_final_stats=1 -artifact_prefix="$WORK/artifacts/$t-" \
		"$WORK/corpus/$t" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	seeds=$(find "$FUZZ_DIR/corpus/$t" -type f | wc -l)
	if [ "$rc" -eq 0 ] && [ -n "$runs" ]; then
		echo "ok - fuzz $t: ${runs} runs, no crash (${PER_TARGET} s, $seeds seeds, corpus now $(find "$WORK/corpus/$t" -type f | wc -l))"
	else
		FAILED=1
		grep -E '==ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -n 8 | sed 's/^/# /'
		art=$(ls "$WORK/artifacts/$t-"* 2>/dev/null | head -n 1)
		if [ -n "$art" ]; then
			mkdir -p "${FUZZ_KEEP:-/tmp}/walarchive-fuzz-crashes"
			cp "$art" "${FUZZ_KEEP:-/tmp}/walarchive-fuzz-crashes/"
			show_input "$art"
			echo "# saved as ${FUZZ_KEEP:-/tmp}/walarchive-fuzz-crashes/$(basename "$art")"
		fi
		echo "not ok - fuzz $t: crash after ${runs:-?} runs (exit $rc)"
	fi
done
exit "$FAILED"
