#!/bin/bash
# Builds walarchive and runs every test: the Criterion unit tests and the
# integration tests against real servers (PostgreSQL, sshd, nginx WebDAV,
# Swift S3), then the unit tests and the server-less integration tests again
# under AddressSanitizer and UndefinedBehaviorSanitizer.  Run as root after
# tests/setup.sh.  Ends with "N passed, N failed".
#
#   tests/run.sh [PATTERN]     only integration scripts whose name matches
#   NO_SANITIZE=1              skip the sanitizer pass
#   KEEP_TMP=1                 keep each script's scratch directory
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
PATTERN=${1:-}
WORK=$(mktemp -d /tmp/walarchive-run.XXXXXX)
chmod 755 "$WORK"
LOG=$WORK/log
mkdir -p "$LOG"
PASSED=0
FAILED=0
FAILURES=()
START=$SECONDS

note() { echo "== $* ($((SECONDS - START)) s)"; }

# build DIR [cmake options...]: configures, builds and installs into DIR/inst
build() {
	local dir=$1; shift
	cmake -S "$SRC" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir.cmake.log" 2>&1 &&
	cmake --build "$dir" -j"$(nproc)" >"$dir.build.log" 2>&1 &&
	cmake --install "$dir" --prefix "$dir/inst" >/dev/null 2>&1 || {
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

# unit TAG DIR: runs each Criterion binary, counting its tests
unit() {
	local tag=$1 dir=$2 bin out synth pass fail
	for bin in "$dir"/test_*; do
		[ -x "$bin" ] || continue
		out=$LOG/$tag-$(basename "$bin").log
		(cd "$dir" && "$bin" --jobs 1 >"$out" 2>&1)
		local rc=$?
		synth=$(grep 'Synthesis' "$out" | tail -n 1)
		pass=$(echo "$synth" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
		fail=$(echo "$synth" | sed -n 's/.*Failing: \([0-9]*\).*Crashing: \([0-9]*\).*/\1 \2/p')
		pass=${pass:-0}
		fail=$(( ${fail% *} + ${fail#* } )) 2>/dev/null || fail=1
		if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
		PASSED=$((PASSED + pass))
		FAILED=$((FAILED + fail))
		echo "$tag $(basename "$bin"): $synth"
		if [ "$fail" -ne 0 ]; then
			FAILURES+=("$tag $(basename "$bin")")
			grep -E '\[----\]|\[FAIL\]|ERROR|runtime error' "$out" | head -n 20
		fi
	done
}

# integration TAG BINDIR SCRIPT...: runs each script, counting ok / not ok lines
integration() {
	local tag=$1 bindir=$2 script name out rc ok notok
	shift 2
	for script in "$@"; do
		name=$(basename "$script" .sh)
		out=$LOG/$tag-$name.log
		local t0=$SECONDS
		WALARCHIVE_BIN=$bindir WALARCHIVE_SRC=$SRC WALARCHIVE_TMP= \
			timeout -k 10 900 bash "$script" >"$out" 2>&1
		rc=$?
		ok=$(grep -c '^ok - ' "$out")
		notok=$(grep -c '^not ok - ' "$out")
		if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then notok=1; fi
		PASSED=$((PASSED + ok))
		FAILED=$((FAILED + notok))
		echo "$tag $name: $ok passed, $notok failed, exit $rc ($((SECONDS - t0)) s)"
		if [ "$notok" -ne 0 ]; then
			FAILURES+=("$tag $name")
			grep -E '^not ok' "$out" | head -n 20
			tail -n 15 "$out"
		fi
	done
}

scripts=()
for s in "$SRC"/tests/integration/*.sh; do
	[ -z "$PATTERN" ] || [[ $(basename "$s") == *$PATTERN* ]] || continue
	scripts+=("$s")
done

note "build"
build "$WORK/build" || { echo "0 passed, 1 failed"; exit 1; }
note "unit tests"
unit unit "$WORK/build"
note "integration tests"
integration it "$WORK/build/inst/bin" "${scripts[@]}"

if [ "${NO_SANITIZE:-0}" != 1 ]; then
	note "sanitizer build (ASan + UBSan)"
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=99
	if build "$WORK/asan" -DWALARCHIVE_SANITIZE=ON; then
		unit asan "$WORK/asan"
		# the integration scripts that need no PostgreSQL server run sanitized too
		san=()
		for s in "${scripts[@]}"; do
			grep -q 'SANITIZE_OK' "$s" && san+=("$s")
		done
		integration asan "$WORK/asan/inst/bin" "${san[@]}"
	else
		FAILED=$((FAILED + 1))
		FAILURES+=("asan build")
	fi
fi

note "done"
if [ ${#FAILURES[@]} -gt 0 ]; then
	echo "failed: ${FAILURES[*]} (logs in $LOG)"
else
	[ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$WORK"
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
