#!/bin/bash
# Builds walarchive and runs every test: the Criterion unit tests and the
# integration tests against real servers (PostgreSQL, sshd, nginx WebDAV,
# Swift S3, Azurite); then the unit tests and the integration scripts marked
# SANITIZE_OK again under AddressSanitizer and UndefinedBehaviorSanitizer;
# then the unit tests and the scripts marked VALGRIND_OK under valgrind's
# memcheck.  A sanitizer or memcheck report from any process -- including
# walpush and walfetch run by PostgreSQL, whose exit codes the scripts do
# not see -- is written to a file and counts as a failure, as does a unit
# binary or script that crashes, exits non-zero or ends without its
# summary.  A check not made is counted as skipped, never as passed.  Run
# as root after tests/setup.sh.  Ends with "N passed, N failed, N skipped"
# and exits non-zero on any failure.
#
#   tests/run.sh [PATTERN]     only integration scripts whose name matches
#   tests/run.sh --reuse-build DIR [PATTERN]
#                              no build and no other pass: the integration
#                              scripts matching PATTERN against the programs
#                              of DIR -- a build directory with DIR/inst/bin
#                              (as this script or the README's build makes
#                              it), or a bin directory itself -- counted the
#                              same way; seconds of setup for one script.
#                              35-store-contract needs storectl there too:
#                              cmake --install DIR --prefix DIR/inst
#                              --component tests
#   NO_SANITIZE=1              skip the sanitizer pass
#   NO_VALGRIND=1              skip the memcheck pass
#   KEEP_TMP=1                 keep each script's scratch directory
set -u
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REUSE=
if [ "${1:-}" = --reuse-build ]; then
	REUSE=${2:?"--reuse-build needs a build directory"}
	shift 2
fi
PATTERN=${1:-}
WORK=${RUN_WORK:-$(mktemp -d /tmp/walarchive-run.XXXXXX)}
mkdir -p "$WORK" && chmod 755 "$WORK"
LOG=$WORK/log
mkdir -p "$LOG"
PASSED=0
FAILED=0
SKIPPED=0
FAILURES=()
START=$SECONDS

note() { echo "== $* ($((SECONDS - START)) s)"; }

# build DIR [cmake options...]: configures, builds and installs into DIR/inst,
# with the test tools (storectl, the "tests" component)
build() {
	local dir=$1; shift
	cmake -S "$SRC" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWALARCHIVE_TEST_SEAMS=ON "$@" >"$dir.cmake.log" 2>&1 &&
	cmake --build "$dir" -j"$(nproc)" >"$dir.build.log" 2>&1 &&
	cmake --install "$dir" --prefix "$dir/inst" >/dev/null 2>&1 &&
	cmake --install "$dir" --prefix "$dir/inst" --component tests >/dev/null 2>&1 || {
		cat "$dir.cmake.log" "$dir.build.log" | tail -n 40
		return 1
	}
	if grep -q 'warning:' "$dir.build.log"; then
		grep 'warning:' "$dir.build.log"
		echo "build: compiler warnings (see above)"
		return 1
	fi
	# the programs run as the postgres user from PostgreSQL
	chmod -R a+rX "$dir/inst"
}

# Report files of the sanitizers and of memcheck, written by every process
# (also those PostgreSQL starts as the postgres user), one directory per pass.
reports_dir() {
	mkdir -p "$WORK/reports-$1"
	chmod 1777 "$WORK/reports-$1"
	echo "$WORK/reports-$1"
}

# reports TAG NAME: counts the reports in TAG's directory as one failure of
# NAME, shows the first, and moves them into the log directory
reports() {
	local tag=$1 name=$2 dir=$WORK/reports-$1 files
	[ -d "$dir" ] || return 0
	files=$(find "$dir" "$dir/$name" -maxdepth 1 -type f -size +0 2>/dev/null | sort)
	find "$dir" "$dir/$name" -maxdepth 1 -type f -size 0 -delete 2>/dev/null
	[ -n "$files" ] || return 0
	FAILED=$((FAILED + 1))
	FAILURES+=("$tag $name: $(echo "$files" | wc -l) reports")
	echo "$tag $name: $(echo "$files" | wc -l) sanitizer or memcheck reports, the first:"
	head -n 30 "$(echo "$files" | head -n 1)"
	mkdir -p "$LOG/reports-$tag-$name"
	echo "$files" | xargs mv -t "$LOG/reports-$tag-$name"
}

# unit_run TAG DIR [RUNNER...]: runs each Criterion binary of DIR (under
# RUNNER), one test at a time, --verbose so that skipped tests are listed;
# output in the log directory
unit_run() {
	local tag=$1 dir=$2 bin
	shift 2
	for bin in "$dir"/test_*; do
		[ -x "$bin" ] || continue
		(cd "$dir" && "$@" "$bin" --jobs 1 --verbose >"$LOG/$tag-$(basename "$bin").log" 2>&1)
		echo $? > "$LOG/$tag-$(basename "$bin").rc"
	done
}

# count FILE REGEX: lines of FILE matching REGEX, 0 when there is no FILE
count() {
	local n
	n=$(grep -acE -- "$2" "$1" 2>/dev/null)
	echo "${n:-0}"
}

# is_count VALUE: VALUE is a plain non-negative number
is_count() { [[ $1 =~ ^[0-9]+$ ]]; }

# unit_count TAG DIR: counts the tests unit_run ran, and their reports.  A
# binary that crashed or exited non-zero, or printed no Synthesis line, is
# a failure even when no test of it failed; a skipped test is counted as
# skipped, not as passed.
unit_count() {
	local tag=$1 dir=$2 bin name out rc synth counts tested pass fail crash skip why
	for bin in "$dir"/test_*; do
		[ -x "$bin" ] || continue
		name=$(basename "$bin")
		out=$LOG/$tag-$name.log
		rc=$(cat "$LOG/$tag-$name.rc" 2>/dev/null)
		synth=$(grep -a 'Synthesis:' "$out" 2>/dev/null | tail -n 1)
		counts=$(echo "$synth" | sed -n 's/.*Tested: \([0-9]*\) | Passing: \([0-9]*\) | Failing: \([0-9]*\) | Crashing: \([0-9]*\).*/\1 \2 \3 \4/p')
		read -r tested pass fail crash <<<"$counts"
		skip=$(count "$out" '^\[SKIP\]')
		why=
		if ! is_count "${tested:-}" || ! is_count "${pass:-}" || ! is_count "${fail:-}" || ! is_count "${crash:-}"; then
			why="no Criterion summary"
			pass=0 fail=0 crash=0
		fi
		fail=$((fail + crash))
		if ! is_count "${rc:-}"; then
			why="${why:+$why, }no exit code"
		elif [ "$rc" -ne 0 ]; then
			why="${why:+$why, }exit $rc"
		fi
		# a crash or a bad exit with no failing test is still one failure
		[ -z "$why" ] || [ "$fail" -gt 0 ] || fail=1
		PASSED=$((PASSED + pass))
		FAILED=$((FAILED + fail))
		SKIPPED=$((SKIPPED + skip))
		echo "$tag $name: $pass passed, $fail failed, $skip skipped${why:+ ($why)}"
		if [ "$fail" -ne 0 ]; then
			FAILURES+=("$tag $name")
			grep -aE '\[----\]|\[FAIL\]|ERROR|runtime error' "$out" | head -n 20
			[ -z "$why" ] || tail -n 5 "$out" 2>/dev/null
		fi
		[ "$skip" -eq 0 ] || grep -a '^\[SKIP\]' "$out" | head -n 5
	done
	reports "$tag" unit
}

# unit TAG DIR [RUNNER...]: unit_run, then unit_count
unit() {
	unit_run "$@"
	unit_count "$1" "$2"
}

# integration_run TAG BINDIR SCRIPT...: runs each script; its output, exit
# code and time in the log directory.  Programs wrapped by valgrind_bin
# write their memcheck reports to reports-memcheck/NAME.
integration_run() {
	local tag=$1 bindir=$2 script name t0
	shift 2
	for script in "$@"; do
		name=$(basename "$script" .sh)
		t0=$SECONDS
		WALARCHIVE_BIN=$bindir WALARCHIVE_SRC=$SRC WALARCHIVE_TMP= \
			WALARCHIVE_MEMCHECK_DIR=$(reports_dir "memcheck/$name") \
			timeout -k 10 900 bash "$script" >"$LOG/$tag-$name.log" 2>&1
		echo $? > "$LOG/$tag-$name.rc"
		echo $((SECONDS - t0)) > "$LOG/$tag-$name.time"
	done
}

# integration_count TAG SCRIPT...: counts the ok / not ok / skip lines, and
# the reports, of what integration_run ran.  A script that exited non-zero,
# or ended without its summary line (t_done), is a failure even when none of
# its checks failed.
integration_count() {
	local tag=$1 script name out rc ok notok skip why
	shift
	for script in "$@"; do
		name=$(basename "$script" .sh)
		out=$LOG/$tag-$name.log
		rc=$(cat "$LOG/$tag-$name.rc" 2>/dev/null)
		ok=$(count "$out" '^ok - ')
		notok=$(count "$out" '^not ok - ')
		skip=$(count "$out" '^skip - ')
		why=
		if ! is_count "${rc:-}"; then
			why="no exit code"
		elif [ "$rc" -ne 0 ]; then
			why="exit $rc"
		fi
		grep -aqE "^# [^ ]+\.sh: [0-9]+ passed, [0-9]+ failed" "$out" 2>/dev/null ||
			why="${why:+$why, }no summary line"
		[ -z "$why" ] || [ "$notok" -gt 0 ] || notok=1
		PASSED=$((PASSED + ok))
		FAILED=$((FAILED + notok))
		SKIPPED=$((SKIPPED + skip))
		echo "$tag $name: $ok passed, $notok failed, $skip skipped, ${why:-exit 0} ($(cat "$LOG/$tag-$name.time" 2>/dev/null) s)"
		if [ "$notok" -ne 0 ]; then
			FAILURES+=("$tag $name")
			grep -aE '^not ok' "$out" | head -n 20
			tail -n 15 "$out" 2>/dev/null
		fi
		[ "$skip" -eq 0 ] || grep -a '^skip - ' "$out" | head -n 5
		reports "$tag" "$name"
	done
}

# integration TAG BINDIR SCRIPT...: runs each script, counting as it goes
integration() {
	local tag=$1 bindir=$2 script
	shift 2
	for script in "$@"; do
		integration_run "$tag" "$bindir" "$script"
		integration_count "$tag" "$script"
	done
}

# memcheck, with a definite or indirect leak counted as an error (the log
# file is added: reports-memcheck/unit for the unit tests); not into the
# age tools, Go programs that do not run under valgrind
VALGRIND=(valgrind -q --trace-children=yes --trace-children-skip='*/age,*/age-keygen'
	--leak-check=full --show-leak-kinds=definite,indirect
	--errors-for-leak-kinds=definite,indirect --error-exitcode=98)

# valgrind_bin BINDIR OUTDIR: programs in OUTDIR that run BINDIR's under
# memcheck, reporting into $WALARCHIVE_MEMCHECK_DIR (storectl too, when the
# build has it)
valgrind_bin() {
	local p
	mkdir -p "$2"
	for p in walpush walfetch walprune walcheck replinit storectl; do
		[ "$p" != storectl ] || [ -x "$1/$p" ] || continue
		printf '#!/bin/sh\nexec %s --log-file="${WALARCHIVE_MEMCHECK_DIR:-%s}/%%p" %s "$@"\n' \
			"${VALGRIND[*]}" "$(reports_dir memcheck)" "$1/$p" > "$2/$p"
		chmod 755 "$2/$p"
	done
	chmod 755 "$2"
}

# marked MARKER: the selected scripts that carry MARKER
marked() {
	local s
	for s in "${scripts[@]}"; do
		grep -q "$1" "$s" && echo "$s"
	done
}

# finish: the failures and the totals; exits non-zero on any failure
finish() {
	note "done"
	if [ ${#FAILURES[@]} -gt 0 ]; then
		echo "failed: ${FAILURES[*]} (logs in $LOG)"
	else
		[ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$WORK"
	fi
	echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
	[ "$FAILED" -eq 0 ]
	exit
}

# sourced (tests/integration/05-harness.sh checks the counting): functions only
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

scripts=()
for s in "$SRC"/tests/integration/*.sh; do
	[ -z "$PATTERN" ] || [[ $(basename "$s") == *$PATTERN* ]] || continue
	scripts+=("$s")
done

# source_check NAME CMD...: one check of the source tree, a pass or a failure
source_check() {
	local name=$1; shift
	if "$@" >"$LOG/check-$name.log" 2>&1; then
		PASSED=$((PASSED + 1))
		echo "check $name: ok"
	else
		FAILED=$((FAILED + 1))
		FAILURES+=("check $name")
		echo "check $name: failed"
		tail -n 20 "$LOG/check-$name.log"
	fi
}

# --reuse-build: the selected scripts against an existing build, nothing else
if [ -n "$REUSE" ]; then
	bindir=$REUSE/inst/bin
	[ -x "$bindir/walpush" ] || bindir=$REUSE
	if [ ! -x "$bindir/walpush" ]; then
		echo "run.sh: no walpush in $REUSE/inst/bin or $REUSE"
		rm -rf "$WORK"
		echo "0 passed, 1 failed, 0 skipped"
		exit 1
	fi
	bindir=$(cd "$bindir" && pwd)
	note "integration tests against $bindir"
	integration it "$bindir" "${scripts[@]}"
	finish
fi

note "source checks"
# lib/ has one folder per layer and includes only downward
source_check layers python3 "$SRC/tests/lib/layers.py" "$SRC"
# one style in the whole tree: every C file as .clang-format says
mapfile -t c_files < <(cd "$SRC" && find lib cmd tests -name '*.[ch]' | sort)
source_check format bash -c 'cd "$1" && shift && clang-format --dry-run -Werror "$@"' _ "$SRC" "${c_files[@]}"

note "build"
# the archive module for every PostgreSQL major whose server headers can be
# had here (tests/lib/pgheaders.sh; tests/integration/23-pgmodule.sh skips the others)
PG_SERVER_HEADERS=$(. "$SRC/tests/lib/pgheaders.sh" &&
	for v in 15 16 17 18; do pgheaders_install "$v" 2>>"$LOG/pgheaders.log"; done | paste -sd ';')
build "$WORK/build" ${PG_SERVER_HEADERS:+"-DPG_INCLUDEDIR_SERVER=$PG_SERVER_HEADERS"} ||
	{ echo "0 passed, 1 failed, 0 skipped"; exit 1; }
note "unit tests"
unit unit "$WORK/build"
note "integration tests"
integration it "$WORK/build/inst/bin" "${scripts[@]}"

# memcheck runs beside the sanitizer pass, whose scripts mostly wait on
# servers: one core for each.  Its scripts start their own servers on free
# ports, as every script does.
memcheck_pid=
if [ "${NO_VALGRIND:-0}" != 1 ]; then
	note "memcheck (valgrind), in the background"
	valgrind_bin "$WORK/build/inst/bin" "$WORK/memcheck-bin"
	mapfile -t vg < <(marked VALGRIND_OK)
	{
		unit_run memcheck "$WORK/build" "${VALGRIND[@]}" --log-file="$(reports_dir memcheck/unit)/%p"
		integration_run memcheck "$WORK/memcheck-bin" "${vg[@]}"
	} &
	memcheck_pid=$!
fi

if [ "${NO_SANITIZE:-0}" != 1 ]; then
	note "sanitizer build (ASan + UBSan)"
	if build "$WORK/asan" -DWALARCHIVE_SANITIZE=ON; then
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99:log_path=$(reports_dir asan)/asan
		export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=99:log_path=$(reports_dir asan)/ubsan
		unit asan "$WORK/asan"
		mapfile -t san < <(marked SANITIZE_OK)
		integration asan "$WORK/asan/inst/bin" "${san[@]}"
		unset ASAN_OPTIONS UBSAN_OPTIONS
	else
		FAILED=$((FAILED + 1))
		FAILURES+=("asan build")
	fi
fi

if [ -n "$memcheck_pid" ]; then
	wait "$memcheck_pid"
	note "memcheck (valgrind)"
	unit_count memcheck "$WORK/build"
	integration_count memcheck "${vg[@]}"
fi

finish
