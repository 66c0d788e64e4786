#!/bin/bash
# This build against a base build (e.g. main before a change), per WAL
# segment on a local archive, interleaved run by run so that both meet the
# same machine: walpush and walfetch without encryption, then with it
# (encrypt_recipients, encrypt_identity), and the start of a program alone
# (`walfetch --version`), with the peak resident memory of each; then the
# CPU time of the same runs.  Every command is a fresh process, as
# archive_command and restore_command run.
#
#   tests/bench/base.sh BASE_BIN CORPUS_DIR [ROUNDS]
#
# BASE_BIN holds the base build's walpush and walfetch; this build's are in
# $WALARCHIVE_BIN.  CORPUS_DIR holds real WAL segments under their names, as
# tests/bench/run.sh makes them.  Prints medians and the ratios this / base;
# asserts no timing.

set -u
BASE=${1:?usage: base.sh BASE_BIN CORPUS_DIR [ROUNDS]}
CORPUS=${2:?usage: base.sh BASE_BIN CORPUS_DIR [ROUNDS]}
WALARCHIVE_TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/walarchive-bench-base.XXXXXX") || exit 1
chmod 755 "$WALARCHIVE_TMP"
export WALARCHIVE_TMP
BENCH_OUT=$WALARCHIVE_TMP/results
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/lib.sh"
[ "${KEEP_TMP:-0}" = 1 ] || t_cleanup "rm -rf '$WALARCHIVE_TMP'"
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
for p in "$BIN/walpush" "$BIN/walfetch" "$BASE/walpush" "$BASE/walfetch"; do
	[ -x "$p" ] || { echo "base.sh: $p is not installed" >&2; exit 2; }
done
command -v age-keygen >/dev/null || { echo "base.sh: age-keygen is not installed" >&2; exit 2; }
mapfile -t SEGS < <(cd "$CORPUS" && ls | grep -E '^[0-9A-F]{24}$' | sort)
[ "${#SEGS[@]}" -gt 0 ] || { echo "base.sh: no WAL segments in $CORPUS" >&2; exit 2; }
ROUNDS=${3:-$(( (20 + ${#SEGS[@]} - 1) / ${#SEGS[@]} ))}
export LC_ALL=C

age-keygen -o "$T/key.txt" 2>/dev/null
PUB=$(age-keygen -y "$T/key.txt")
SYSID=$(python3 -c "import struct,sys; print(struct.unpack_from('<Q', open(sys.argv[1],'rb').read(), 8+16)[0])" \
	"$CORPUS/${SEGS[0]}")
mkdir -p "$T/cwd" "$T/out"
for b in base this; do
	printf 'archive = %s\nsystem_id = %s\n' "$T/$b-plain" "$SYSID" > "$T/$b-plain.conf"
	printf 'archive = %s\nsystem_id = %s\nencrypt_recipients = %s\nencrypt_identity = %s\n' \
		"$T/$b-enc" "$SYSID" "$PUB" "$T/key.txt" > "$T/$b-enc.conf"
done
bin_of() { [ "$1" = base ] && echo "$BASE" || echo "$BIN"; }

for ((round = 1; round <= ROUNDS; round++)); do
	rm -rf "$T"/*-plain "$T"/*-enc
	mkdir -p "$T/base-plain" "$T/base-enc" "$T/this-plain" "$T/this-enc"
	for s in "${SEGS[@]}"; do
		for b in base this; do
			for f in plain enc; do
				bench_run "$b walpush $f" env -C "$T/cwd" "$(bin_of $b)/walpush" \
					-c "$T/$b-$f.conf" "$CORPUS/$s" "$s"
			done
		done
	done
	for s in "${SEGS[@]}"; do
		for b in base this; do
			for f in plain enc; do
				bench_run "$b walfetch $f" env -C "$T/cwd" "$(bin_of $b)/walfetch" \
					-c "$T/$b-$f.conf" "$s" "$T/out/$b-$f"
				cmp -s "$T/out/$b-$f" "$CORPUS/$s" ||
					{ echo "base.sh: $s did not restore exactly" >&2; BENCH_FAILURES=$((BENCH_FAILURES + 1)); }
			done
		done
		for b in base this; do
			bench_run "$b walfetch --version" "$(bin_of $b)/walfetch" --version
		done
	done
done

# CPU time (user + system, from wait4) is steadier than elapsed time on a
# busy machine: the same runs again, listed interleaved, each timed alone.
# A line: "t" (timed) or "-" (not timed), the method, then the command.
cmds=$T/cpu.cmds
: > "$cmds"
line() { local IFS=$'\t'; echo "$*" >> "$cmds"; }
for b in base this; do
	line - reset rm -rf "$T/$b-enc"
	line - reset mkdir "$T/$b-enc"
done
for s in "${SEGS[@]}"; do
	for b in base this; do
		line t "$b walpush enc" "$(bin_of $b)/walpush" -c "$T/$b-enc.conf" "$CORPUS/$s" "$s"
	done
done
for s in "${SEGS[@]}"; do
	for b in base this; do
		for f in plain enc; do
			line - reset rm -f "$T/out/$b-$f"
			line t "$b walfetch $f" "$(bin_of $b)/walfetch" -c "$T/$b-$f.conf" "$s" "$T/out/$b-$f"
		done
		line t "$b walfetch --version" "$(bin_of $b)/walfetch" --version
	done
done
python3 - "$cmds" "$ROUNDS" "$T/cwd" <<'PY'
import os, statistics, subprocess, sys
lines = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
cpu = {}
for _ in range(int(sys.argv[2])):
    for kind, method, *cmd in lines:
        p = subprocess.Popen(cmd, cwd=sys.argv[3], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        if status != 0:
            print("bench: %s failed: %s" % (method, " ".join(cmd)), file=sys.stderr)
        if kind == "t":
            cpu.setdefault(method, []).append(ru.ru_utime + ru.ru_stime)
print("%-34s %5s %15s" % ("CPU time (user + system)", "runs", "median ms"))
for m, v in cpu.items():
    print("%-34s %5d %15.2f" % (m, len(v), statistics.median(v) * 1000))
PY
echo

echo "corpus: ${#SEGS[@]} segments x $ROUNDS rounds; base $BASE, this $BIN"
bench_table "base walpush plain" "this walpush plain" "base walfetch plain" "this walfetch plain" \
	"base walpush enc" "this walpush enc" "base walfetch enc" "this walfetch enc" \
	"base walfetch --version" "this walfetch --version"
echo
for m in "walpush plain" "walfetch plain" "walpush enc" "walfetch enc" "walfetch --version"; do
	bench_ratio "this $m" "base $m" -
done
echo "base.sh: $BENCH_FAILURES failed runs"
t_run_cleanups
[ "$BENCH_FAILURES" -eq 0 ]
