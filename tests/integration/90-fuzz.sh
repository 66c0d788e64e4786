#!/bin/bash
# Hostile input: runs every libFuzzer target (tests/fuzz/run.sh) for a bounded
# time from its checked-in seed corpus, after replaying the saved crash
# inputs in tests/fuzz/regressions/.  About 2 minutes: the clang build, then
# FUZZ_SECONDS (default 12) seconds per target.  Its TAP lines are this
# script's results.

. "$(dirname "$0")/../lib/common.sh"

if ! command -v clang >/dev/null; then
	t_fail "clang is needed for the fuzz targets (apt-get install clang)"
	t_done
fi
out=$WALARCHIVE_TMP/fuzz.out
FUZZ_KEEP=$WALARCHIVE_TMP timeout -k 10 400 "$WALARCHIVE_SRC/tests/fuzz/run.sh" "${FUZZ_SECONDS:-12}" >"$out" 2>&1
rc=$?
# run.sh prints the ok / not ok lines; count them here through t_ok / t_fail
while IFS= read -r line; do
	case $line in
	"ok - "*) t_ok "${line#ok - }" ;;
	"not ok - "*) t_fail "${line#not ok - }" ;;
	*) echo "$line" ;;
	esac
done <"$out"
[ "$rc" -eq 0 ] || [ "$T_FAIL" -gt 0 ] || t_fail "tests/fuzz/run.sh exited $rc"
t_done
