#!/bin/bash
# The test run's own counting (tests/run.sh, sourced for its functions):
# fake unit binaries and scripts that crash, exit non-zero without a failing
# test, print no summary, skip tests, or leave a sanitizer report.  Each must
# be counted as a failure (or a skip), never as a pass, and counting must go
# on to the binaries and scripts after them.  Needs no server and no build.

. "$(dirname "$0")/../lib/common.sh"

T=$WALARCHIVE_TMP
mkdir -p "$T/run" "$T/units" "$T/scripts"
# shellcheck source=../run.sh
RUN_WORK=$T/run . "$WALARCHIVE_SRC/tests/run.sh"
set +e

# fake FILE BODY: an executable shell script
fake() { printf '#!/bin/bash\n%s\n' "$2" > "$1"; chmod 755 "$1"; }

SYN='[====] Synthesis: Tested: %s | Passing: %s | Failing: %s | Crashing: %s \n'
# crashes before its summary (a SIGSEGV: exit 139)
fake "$T/units/test_a_crash" "echo '[RUN ] a::one'; kill -SEGV \$\$"
# one failing test, exit 1
fake "$T/units/test_b_fail" "printf '[FAIL] b::two\n$SYN' 3 2 1 0; exit 1"
# all its tests pass, one skipped, exit 0
fake "$T/units/test_c_skip" "printf '[SKIP] c::three: not here\n$SYN' 2 2 0 0"
# every test passes, yet it exits 1 (a leak reported at exit)
fake "$T/units/test_d_exit" "printf '$SYN' 4 4 0 0; exit 1"
# prints garbage where the counts should be
fake "$T/units/test_e_garbled" "echo '[====] Synthesis: Tested: 1 | Passing: | Failing: x'"
# a good one after all of those, which must still be counted
fake "$T/units/test_f_good" "printf '$SYN' 5 5 0 0"

unit_run unit "$T/units" > "$T/unit-run.out" 2>&1
# a sanitizer report left by one of them
mkdir -p "$T/run/reports-unit"
echo "==1==ERROR: AddressSanitizer: heap-use-after-free" > "$T/run/reports-unit/asan.1"
unit_count unit "$T/units" > "$T/unit.out" 2>&1
t_eq "unit: passes are counted for every binary, also after a crash" "$PASSED" $((2 + 2 + 4 + 5))
t_eq "unit: crash, failing test, bad exit, garbled summary, report: 5 failures" "$FAILED" 5
t_eq "unit: the skipped test is counted as skipped" "$SKIPPED" 1
t_match "unit: the crash is named as a failure" "${FAILURES[*]}" "unit test_a_crash"
t_match "unit: the bad exit is named as a failure" "${FAILURES[*]}" "unit test_d_exit"
t_match "unit: the garbled summary is named as a failure" "${FAILURES[*]}" "unit test_e_garbled"
t_match "unit: the sanitizer report is a failure" "${FAILURES[*]}" "unit unit: 1 reports"
t_match "unit: the good binary after them is counted" "$(cat "$T/unit.out")" "test_f_good: 5 passed, 0 failed, 0 skipped"

# a real Criterion binary: a skipped test shows up in its --verbose output
if cc -x c -o "$T/units2-test_real" - -lcriterion 2>"$T/cc.err" <<'EOF'
#include <criterion/criterion.h>
Test(real, passes) { cr_assert(1); }
Test(real, skips) { cr_skip_test("not on this machine"); }
EOF
then
	mkdir -p "$T/units2"; mv "$T/units2-test_real" "$T/units2/test_real"
	PASSED=0 FAILED=0 SKIPPED=0 FAILURES=()
	unit_run crit "$T/units2" > /dev/null 2>&1
	unit_count crit "$T/units2" > "$T/crit.out" 2>&1
	t_eq "criterion: 1 passed, 0 failed, 1 skipped" "$PASSED $FAILED $SKIPPED" "1 0 1"
else
	t_fail "build a Criterion test binary: $(head -c 300 "$T/cc.err")"
fi

# integration scripts
fake "$T/scripts/s1-crash.sh" "echo 'ok - one'; echo 'ok - two'; exit 3"
fake "$T/scripts/s2-fail.sh" "echo 'ok - one'; echo 'not ok - two'; echo '# s2-fail.sh: 1 passed, 1 failed, 0 skipped'; exit 1"
fake "$T/scripts/s3-skip.sh" "echo 'ok - one'; echo 'skip - two (not here)'; echo '# s3-skip.sh: 1 passed, 0 failed, 1 skipped'"
fake "$T/scripts/s4-nosummary.sh" "echo 'ok - one'; exit 0"
fake "$T/scripts/s5-good.sh" "echo 'ok - one'; echo 'ok - two'; echo '# s5-good.sh: 2 passed, 0 failed, 0 skipped'"
PASSED=0 FAILED=0 SKIPPED=0 FAILURES=()
set -- "$T"/scripts/s*.sh
integration_run it /nonexistent "$@" > /dev/null 2>&1
integration_count it "$@" > "$T/it.out" 2>&1
t_eq "scripts: every ok line is counted, none of the skips" "$PASSED" 7
t_eq "scripts: exit 3, a failed check, no summary: 3 failures" "$FAILED" 3
t_eq "scripts: the skip line is counted as skipped" "$SKIPPED" 1
t_match "scripts: the non-zero exit is named as a failure" "${FAILURES[*]}" "it s1-crash"
t_match "scripts: the missing summary is named as a failure" "${FAILURES[*]}" "it s4-nosummary"

# the helpers: t_skip and t_setup never print an ok line
out=$(bash -c '. "$1/tests/lib/common.sh"; t_skip "not here"; t_setup "true works" true;
	t_setup "false fails" false; t_done' _ "$WALARCHIVE_SRC" 2>&1)
t_eq "t_skip and t_setup print no ok line" "$(printf '%s\n' "$out" | grep -c '^ok - ')" 0
t_match "a failed setup step is a failure" "$out" "not ok - setup: false fails"
t_match "the summary counts the skip" "$out" "0 passed, 1 failed, 1 skipped"

t_done
