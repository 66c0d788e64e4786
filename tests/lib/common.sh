# Shared helpers for the integration tests (bash).  A test script sources
# this, calls t_ok / t_fail / t_check for each assertion, and ends with
# t_done.  Output is TAP-like ("ok - ...", "not ok - ...", "skip - ..." for
# a check not made); tests/run.sh counts those lines.  A step the checks
# depend on (a server started, load made) goes through t_setup: it prints
# "# setup: ..." and is counted only when it fails.
#
# Environment from tests/run.sh:
#   WALARCHIVE_BIN   directory with the installed walpush, walfetch, walprune, replinit
#   WALARCHIVE_SRC   the source tree
#   WALARCHIVE_TMP   a scratch directory for this script (removed afterwards
#                    unless KEEP_TMP=1); owned by root, mode 0755

set -u
: "${WALARCHIVE_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${WALARCHIVE_BIN:=$WALARCHIVE_SRC/build/inst/bin}"
if [ -z "${WALARCHIVE_TMP:-}" ]; then
	WALARCHIVE_TMP=$(mktemp -d /tmp/walarchive-test.XXXXXX)
	chmod 755 "$WALARCHIVE_TMP"
fi
export WALARCHIVE_SRC WALARCHIVE_BIN WALARCHIVE_TMP
T_PASS=0
T_FAIL=0
T_SKIP=0
T_CLEANUPS=()

# Registers a command to run at exit (last registered runs first).
t_cleanup() { T_CLEANUPS=("$*" "${T_CLEANUPS[@]}"); }
t_run_cleanups() {
	local c
	for c in "${T_CLEANUPS[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
	T_CLEANUPS=()
}
trap t_run_cleanups EXIT

t_ok()   { T_PASS=$((T_PASS + 1)); echo "ok - $*"; }
t_fail() { T_FAIL=$((T_FAIL + 1)); echo "not ok - $*"; }
# t_skip DESC: a check this run cannot make (say why in DESC); never a pass
t_skip() { T_SKIP=$((T_SKIP + 1)); echo "skip - $*"; }

# t_setup DESC CMD...: runs a step the checks depend on; not a pass when it
# works, a failure when it does not.  Returns CMD's exit code.
t_setup() {
	local desc=$1 rc; shift
	"$@"; rc=$?
	if [ "$rc" -eq 0 ]; then echo "# setup: $desc"; else t_fail "setup: $desc (exit $rc: $*)"; fi
	return "$rc"
}

# t_setup_ok DESC: notes a setup step already done (not counted)
t_setup_ok() { echo "# setup: $*"; }

# t_check DESC CMD...: passes if CMD exits 0.
t_check() {
	local desc=$1; shift
	if "$@"; then t_ok "$desc"; else t_fail "$desc (command: $*)"; fi
}

# t_exit DESC CODE CMD...: passes if CMD exits with CODE.
t_exit() {
	local desc=$1 want=$2 got; shift 2
	"$@"; got=$?
	if [ "$got" = "$want" ]; then t_ok "$desc"; else t_fail "$desc (exit $got, want $want)"; fi
}

# t_eq DESC GOT WANT
t_eq() {
	if [ "$2" = "$3" ]; then t_ok "$1"; else t_fail "$1 (got '$2', want '$3')"; fi
}

# t_match DESC TEXT REGEX (extended regular expression)
t_match() {
	if printf '%s' "$2" | grep -Eq -- "$3"; then t_ok "$1"; else t_fail "$1 ('$2' does not match /$3/)"; fi
}

t_done() {
	echo "# $(basename "$0"): $T_PASS passed, $T_FAIL failed, $T_SKIP skipped"
	t_run_cleanups
	[ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$WALARCHIVE_TMP"
	[ "$T_FAIL" -eq 0 ]
	exit $?
}

# A free TCP port on 127.0.0.1.
t_free_port() {
	python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# Runs a command as the postgres OS user (clusters refuse to run as root).
as_pg() { runuser -u postgres -- "$@"; }

# Waits up to $1 seconds for command $2... to succeed.
t_wait() {
	local secs=$1; shift
	local end=$((SECONDS + secs))
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
	return 0
}

# msg_ok DESC PROG [REGEX]: $ERR (a program's stderr) is exactly one message
# line, "PROG: ...", with no trailing period (and matching REGEX; ignoring
# case when MSG_OK_ICASE=1).
msg_ok() {
	local desc=$1 prog=$2 re=${3:-.} icase=
	local n; n=$(printf '%s' "$ERR" | grep -c '')
	[ "${MSG_OK_ICASE:-0}" != 1 ] || icase=-i
	if [ "$n" != 1 ]; then
		t_fail "$desc: one message line (got $n: $(printf '%s' "$ERR" | tr '\n' '|'))"
	elif ! printf '%s' "$ERR" | grep -Eq "^$prog: .*[^.]\$"; then
		t_fail "$desc: message '$ERR' is not '$prog: ...' without trailing period"
	elif ! printf '%s' "$ERR" | grep -Eq $icase -- "$re"; then
		t_fail "$desc: message '$ERR' does not match /$re/"
	else
		t_ok "$desc: one line: $ERR"
	fi
}
