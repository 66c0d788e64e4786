#!/bin/bash
# Benchmark of encryption at rest (age), per WAL segment on a local archive:
# walpush with encrypt_recipients against walpush without it, in the same
# run and interleaved segment by segment, and against doing it by hand
# (`lz4 -1 | age -r`, then sync and mv, as a careful archive_command would);
# then walfetch with encrypt_identity against walfetch of the plain object
# and against `age -d | lz4 -d`, sync, mv.  Every command is a fresh
# process, as archive_command and restore_command run.
#
#   tests/bench/age.sh CORPUS_DIR [ROUNDS]
#
# CORPUS_DIR holds real WAL segments under their names (24 hex digits), as
# tests/bench/run.sh makes them (it runs this script with its corpus);
# ROUNDS repeats each method over the whole corpus (default: enough rounds
# for 20 samples per method).  Prints medians and the ratios beside the
# target (encryption adds under 25 % to walpush); asserts no timing.

set -u
CORPUS=${1:?usage: age.sh CORPUS_DIR [ROUNDS]}
WALARCHIVE_TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/walarchive-bench-age.XXXXXX") || exit 1
chmod 755 "$WALARCHIVE_TMP"
export WALARCHIVE_TMP
BENCH_OUT=$WALARCHIVE_TMP/results
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/lib.sh"
[ "${KEEP_TMP:-0}" = 1 ] || t_cleanup "rm -rf '$WALARCHIVE_TMP'"
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
for p in walpush walfetch; do
	[ -x "$BIN/$p" ] || { echo "age.sh: $BIN/$p is not installed" >&2; exit 2; }
done
for p in age age-keygen lz4; do
	command -v $p >/dev/null || { echo "age.sh: $p is not installed" >&2; exit 2; }
done
mapfile -t SEGS < <(cd "$CORPUS" && ls | grep -E '^[0-9A-F]{24}$' | sort)
[ "${#SEGS[@]}" -gt 0 ] || { echo "age.sh: no WAL segments in $CORPUS" >&2; exit 2; }
ROUNDS=${2:-$(( (20 + ${#SEGS[@]} - 1) / ${#SEGS[@]} ))}
export LC_ALL=C

age-keygen -o "$T/key.txt" 2>/dev/null
PUB=$(age-keygen -y "$T/key.txt")
SYSID=$(python3 -c "import struct,sys; print(struct.unpack_from('<Q', open(sys.argv[1],'rb').read(), 8+16)[0])" \
	"$CORPUS/${SEGS[0]}")
mkdir -p "$T/cwd" "$T/out"
printf 'archive = %s\nsystem_id = %s\n' "$T/plain" "$SYSID" > "$T/plain.conf"
printf 'archive = %s\nsystem_id = %s\nencrypt_recipients = %s\nencrypt_identity = %s\n' \
	"$T/enc" "$SYSID" "$PUB" "$T/key.txt" > "$T/enc.conf"

for ((round = 1; round <= ROUNDS; round++)); do
	rm -rf "$T/plain" "$T/enc" "$T/hand"
	mkdir -p "$T/plain" "$T/enc" "$T/hand"
	for s in "${SEGS[@]}"; do
		bench_run "walpush lz4" env -C "$T/cwd" "$BIN/walpush" -c "$T/plain.conf" "$CORPUS/$s" "$s"
		bench_run "walpush lz4 + age" env -C "$T/cwd" "$BIN/walpush" -c "$T/enc.conf" "$CORPUS/$s" "$s"
		bench_steps "lz4 -1 | age -r, sync, mv" \
			sh -c "lz4 -1 -q -c '$CORPUS/$s' | age -r $PUB > '$T/hand/.$s'" -- \
			sync -- mv "$T/hand/.$s" "$T/hand/$s.lz4.age"
	done
	for s in "${SEGS[@]}"; do
		d=${s:0:16}
		bench_run "walfetch lz4" env -C "$T/cwd" "$BIN/walfetch" -c "$T/plain.conf" "$s" "$T/out/a"
		bench_run "walfetch lz4 + age" env -C "$T/cwd" "$BIN/walfetch" -c "$T/enc.conf" "$s" "$T/out/b"
		bench_steps "age -d | lz4 -d, sync, mv" \
			sh -c "age -d -i '$T/key.txt' '$T/enc/$SYSID/$d/$s.lz4.age' | lz4 -d -q -c > '$T/out/.c'" -- \
			sync -- mv "$T/out/.c" "$T/out/c"
		cmp -s "$T/out/b" "$CORPUS/$s" && cmp -s "$T/out/c" "$CORPUS/$s" ||
			{ echo "age.sh: $s did not restore exactly" >&2; BENCH_FAILURES=$((BENCH_FAILURES + 1)); }
	done
done

echo "corpus: ${#SEGS[@]} segments x $ROUNDS rounds; archive $(du -sm "$T/plain" | cut -f1) MiB plain, $(du -sm "$T/enc" | cut -f1) MiB encrypted"
bench_table "walpush lz4" "walpush lz4 + age" "lz4 -1 | age -r, sync, mv" \
	"walfetch lz4" "walfetch lz4 + age" "age -d | lz4 -d, sync, mv"
echo
bench_ratio "walpush lz4 + age" "walpush lz4" 1.25
bench_ratio "walpush lz4 + age" "lz4 -1 | age -r, sync, mv" -
bench_ratio "walfetch lz4 + age" "walfetch lz4" -
bench_ratio "walfetch lz4 + age" "age -d | lz4 -d, sync, mv" -
echo "age.sh: $BENCH_FAILURES failed runs"
t_run_cleanups
[ "$BENCH_FAILURES" -eq 0 ]
