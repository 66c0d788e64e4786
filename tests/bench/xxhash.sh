#!/bin/bash
# XXH32 and XXH64 over a 16 MiB segment: walarchive's own implementation
# beside Debian's libxxhash (run by hand; it reports and asserts no timing):
#
#   tests/bench/xxhash.sh [RUNS]
#
# Builds tests/bench/xxhash.c with -O2, as the release is built, against
# libxxhash (pkg-config libxxhash; apt-get install libxxhash-dev) and against
# lib/xxhash.c of BENCH_XXH_REV (a git revision; default the last one that
# carried the home-made XXH32/XXH64, which libxxhash replaced), then prints
# MB/s, the median of RUNS runs (default 101), and the ratio.
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${BENCH_XXH_REV:=f3237141079f4cb9994bb5a117bc4163c5847324}"
: "${CC:=cc}"
WORK=$(mktemp -d /tmp/walarchive-xxhash.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

pkg-config --exists libxxhash || { echo "bench: libxxhash not found (apt-get install libxxhash-dev)" >&2; exit 2; }
# the implementation of that revision, with its header under a name of its
# own (xxhash.h is libxxhash's); its xxhash.c includes "xxhash.h" beside it
git -C "$SRC" show "$BENCH_XXH_REV:lib/xxhash.c" > "$WORK/xxhash.c"
git -C "$SRC" show "$BENCH_XXH_REV:lib/xxhash.h" > "$WORK/xxhash.h"
cp "$WORK/xxhash.h" "$WORK/xxhash_ours.h"
# -iquote: error.h for the old header, without hiding libxxhash's <xxhash.h>
"$CC" -std=gnu11 -O2 -Wall -Wextra -D_GNU_SOURCE -iquote "$WORK" -iquote "$SRC/lib" -iquote "$SRC/lib/base" \
	$(pkg-config --cflags libxxhash) -o "$WORK/xxhash-bench" \
	"$SRC/tests/bench/xxhash.c" "$WORK/xxhash.c" "$SRC/lib/base/error.c" $(pkg-config --libs libxxhash)
echo "== $(git -C "$SRC" log -1 --format='ours: lib/xxhash.c of %h (%s)' "$BENCH_XXH_REV" -- lib/xxhash.c)"
echo "== libxxhash $(pkg-config --modversion libxxhash), $("$CC" --version | head -n 1), -O2, $(nproc) CPUs: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
"$WORK/xxhash-bench" "${1:-101}"
