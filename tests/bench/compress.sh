#!/bin/bash
# Benchmark of the compress settings, per WAL segment on a local archive:
# walpush and walfetch with compress = none, lz4 (level 1, the default) and
# zstd at levels 1, 3 and 9, each into its own archive, in the same run and
# interleaved segment by segment; and the size of each archive against the
# segments.  Every command is a fresh process, as archive_command and
# restore_command run.  Prints medians and a table for README's
# Performance section: elapsed time and, in parentheses, CPU time (user +
# system, all threads), medians per segment; asserts no timing.
#
#   tests/bench/compress.sh CORPUS_DIR [ROUNDS]
#
# CORPUS_DIR holds real WAL segments under their names (24 hex digits), as
# tests/bench/run.sh makes them (it runs this script with its corpus);
# ROUNDS repeats each method over the whole corpus (default: enough rounds
# for 20 samples per method).

set -u
CORPUS=${1:?usage: compress.sh CORPUS_DIR [ROUNDS]}
WALARCHIVE_TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/walarchive-bench-compress.XXXXXX") || exit 1
chmod 755 "$WALARCHIVE_TMP"
export WALARCHIVE_TMP
BENCH_OUT=$WALARCHIVE_TMP/results
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/lib.sh"
[ "${KEEP_TMP:-0}" = 1 ] || t_cleanup "rm -rf '$WALARCHIVE_TMP'"
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
for p in walpush walfetch; do
	[ -x "$BIN/$p" ] || { echo "compress.sh: $BIN/$p is not installed" >&2; exit 2; }
done
mapfile -t SEGS < <(cd "$CORPUS" && ls | grep -E '^[0-9A-F]{24}$' | sort)
[ "${#SEGS[@]}" -gt 0 ] || { echo "compress.sh: no WAL segments in $CORPUS" >&2; exit 2; }
ROUNDS=${2:-$(( (20 + ${#SEGS[@]} - 1) / ${#SEGS[@]} ))}
export LC_ALL=C

SYSID=$(python3 -c "import struct,sys; print(struct.unpack_from('<Q', open(sys.argv[1],'rb').read(), 8+16)[0])" \
	"$CORPUS/${SEGS[0]}")
# NAME:SETTINGS (compress, compress_level)
METHODS=("none:none:1" "lz4 1:lz4:1" "zstd 1:zstd:1" "zstd 3:zstd:3" "zstd 9:zstd:9")
mkdir -p "$T/cwd" "$T/out"
for m in "${METHODS[@]}"; do
	IFS=: read -r name comp level <<<"$m"
	printf 'archive = %s\nsystem_id = %s\ncompress = %s\ncompress_level = %s\n' \
		"$T/a-${name// /}" "$SYSID" "$comp" "$level" > "$T/${name// /}.conf"
done

# "${CPU_TO[@]}" FILE CMD...: runs CMD, appending its user and system CPU
# time (all threads, to the millisecond: bash's times) to FILE
CPU_TO=(bash -c 'f=$1; shift; "$@"; rc=$?; times >"$f.now"; tail -n 1 "$f.now" >>"$f"; exit $rc' _)

for ((round = 1; round <= ROUNDS; round++)); do
	for m in "${METHODS[@]}"; do
		IFS=: read -r name _ <<<"$m"
		rm -rf "$T/a-${name// /}"; mkdir -p "$T/a-${name// /}/$SYSID/${SEGS[0]:0:16}"
	done
	for s in "${SEGS[@]}"; do
		for m in "${METHODS[@]}"; do
			IFS=: read -r name _ <<<"$m"
			bench_run "walpush $name" "${CPU_TO[@]}" "$T/cpu-push-${name// /}" \
				env -C "$T/cwd" "$BIN/walpush" -c "$T/${name// /}.conf" "$CORPUS/$s" "$s"
		done
	done
	for s in "${SEGS[@]}"; do
		for m in "${METHODS[@]}"; do
			IFS=: read -r name _ <<<"$m"
			bench_run "walfetch $name" "${CPU_TO[@]}" "$T/cpu-fetch-${name// /}" \
				env -C "$T/cwd" "$BIN/walfetch" -c "$T/${name// /}.conf" "$s" "$T/out/x"
			cmp -s "$T/out/x" "$CORPUS/$s" ||
				{ echo "compress.sh: $s ($name) did not restore exactly" >&2; BENCH_FAILURES=$((BENCH_FAILURES + 1)); }
		done
	done
done

total=$(cd "$CORPUS" && cat "${SEGS[@]}" | wc -c)
echo "corpus: ${#SEGS[@]} segments ($((total / 1048576)) MiB) x $ROUNDS rounds, $(nproc) cores"
names=()
for m in "${METHODS[@]}"; do IFS=: read -r name _ <<<"$m"; names+=("walpush $name"); done
for m in "${METHODS[@]}"; do IFS=: read -r name _ <<<"$m"; names+=("walfetch $name"); done
bench_table "${names[@]}"
echo
# the README table: archive size from the objects' bytes, medians per segment
for m in "${METHODS[@]}"; do
	IFS=: read -r name _ <<<"$m"
	echo "$name $(find "$T/a-${name// /}/$SYSID" -type f -name '0*' -printf '%s\n' | awk '{ s += $1 } END { print s }')"
done > "$T/sizes"
python3 - "$BENCH_OUT" "$total" "$T/sizes" "$T" <<'PY'
import os, statistics, sys
out, total, sizes, tmp = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def med(m):
    v = [float(x) for x in open(os.path.join(out, m + ".times")) if x.strip()]
    return statistics.median(v) * 1000
def cpu(f):
    def secs(t):  # bash's times: 0m0.012s
        m, _, sec = t.rstrip("s").partition("m")
        return int(m) * 60 + float(sec)
    v = [sum(map(secs, x.split())) for x in open(os.path.join(tmp, f)) if x.strip()]
    return statistics.median(v) * 1000
print("| `compress` | archive size | ratio | walpush per segment (CPU) | walfetch per segment (CPU) |")
print("|---|---:|---:|---:|---:|")
for line in open(sizes):
    name, size = line.rsplit(" ", 1)
    comp, _, level = name.partition(" ")
    label = "`%s`" % comp + (", level %s" % level if level else "")
    key = name.replace(" ", "")
    print("| %s | %.0f MiB | %.2f | %.1f ms (%.0f ms) | %.1f ms (%.0f ms) |" % (
        label, int(size) / 1048576, total / int(size), med("walpush " + name), cpu("cpu-push-" + key),
        med("walfetch " + name), cpu("cpu-fetch-" + key)))
PY
echo "compress.sh: $BENCH_FAILURES failed runs"
t_run_cleanups
[ "$BENCH_FAILURES" -eq 0 ]
