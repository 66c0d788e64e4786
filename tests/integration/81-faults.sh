#!/bin/bash
# SANITIZE_OK
# The fault seam (lib/sys/seam.c, WALARCHIVE_FAULT="N:ERRNO:KIND"): for walpush
# and walfetch on a local archive, every counted call of one run is made to
# fail in turn, with ENOSPC and with EIO: for each KIND (open read write fsync
# rename link unlink mkdir), N walks 1, 2, 3, ... until two runs in a row
# exit 0 (N is past the last call of that kind).  After each faulted run:
#   walpush: exit 6 (disk error; never 0 unless the archive then holds the
#            right bytes, never outside 1..125), no partial or wrong object
#            under a final name, no temporary file left (unless the failing
#            call was the unlink of that temporary file), and a retry without
#            faults exits 0 and stores the right bytes;
#   walfetch: exit 6 (never 1, which PostgreSQL reads as "end of archive"),
#            the destination absent or complete, no .NAME.*.tmp left in its
#            directory (same unlink exception), and a retry restores it.
# Three scenarios: push into an empty archive, push of an object the archive
# already holds (the compare path), fetch.  A 1 MiB segment (real first page
# from tests/fixtures/pg15-1mb, random bytes after it) keeps runs short; the
# code paths are the same as for 16 MiB, only fewer read/write chunks.
# Prints the number of fault points tried, and fails if the faults did not
# fire: each scenario needs at least MIN_POINTS points, at least one for each
# kind of call its protocol makes (NEEDS), and the whole walk at least
# MIN_TOTAL -- with the seam broken every run would exit 0 and every check
# above would hold.  That the faults fired is a precondition, not a pass.

. "$(dirname "$0")/../lib/common.sh"

export LC_ALL=C
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
FIX=$WALARCHIVE_SRC/tests/fixtures/pg15-1mb
for p in walpush walfetch; do
	[ -x "$BIN/$p" ] || { t_fail "$BIN/$p is not installed"; t_done; }
done
command -v lz4 >/dev/null || { t_fail "lz4 is needed to check archived objects"; t_done; }

SEG=$(sed -n 's/^source_segment=//p' "$FIX/INFO")
SYSID=$(sed -n 's/^system_identifier=//p' "$FIX/INFO")
DATA=$T/pgdata                  # what walfetch needs of a data directory
mkdir -p "$DATA/global" "$T/src"
cp "$FIX/pg_control" "$DATA/global/pg_control"
touch "$DATA/standby.signal"    # fetch_on_error = auto: plain exit codes
SRC=$T/src/$SEG
python3 - "$FIX/wal-first-page.bin" "$SRC" <<'PY'
import os, sys
page = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(page + os.urandom((1 << 20) - len(page)))
PY
ARCH=$T/archive
CONF=$T/walarchive.conf
printf 'archive = %s\nfetch_fsync = on\n' "$ARCH" > "$CONF"
# the tree's description that walpush writes beside the objects
INFO=$T/walarchive.info
printf '# walarchive: the cluster whose WAL this tree holds\nsystem_id = %s\npg_version = 15\nwal_seg_size = 1048576\nwal_block_size = 8192\n' "$SYSID" > "$INFO"
chmod 600 "$CONF"
OBJDIR=$ARCH/$SYSID/${SEG:0:16}

# sanity: the programs work without faults on this input
rm -rf "$ARCH"; mkdir -p "$ARCH"
t_exit "walpush stores the test segment without faults" 0 \
	"$BIN/walpush" -c "$CONF" -D "$DATA" "$SRC" "$SEG"
[ -d "$OBJDIR" ] || { t_fail "no object directory $OBJDIR after a push"; t_done; }
cp -a "$ARCH" "$T/archive.full"         # reference archive holding the object

# verify_archive: every non-dot file in the archive is the source, intact;
# prints a reason and returns 1 otherwise.  Sets OBJECTS and TMPS.
verify_archive() {
	local f base
	OBJECTS=0; TMPS=0
	while IFS= read -r -d '' f; do
		base=$(basename "$f")
		if [[ $base == .* ]]; then TMPS=$((TMPS + 1)); continue; fi
		[ "$base" = walarchive.info ] || OBJECTS=$((OBJECTS + 1))
		case $base in
		"$SEG.lz4") lz4 -dc "$f" 2>/dev/null | cmp -s - "$SRC" || { echo "corrupt object $f"; return 1; } ;;
		"$SEG") cmp -s "$f" "$SRC" || { echo "wrong object $f"; return 1; } ;;
		walarchive.info) cmp -s "$f" "$INFO" || { echo "partial or wrong $f"; return 1; } ;;
		*) echo "unexpected file $f"; return 1 ;;
		esac
	done < <(find "$ARCH" -type f -print0)
	return 0
}

POINTS=0
BAD=0
MIN_POINTS=20 MIN_TOTAL=100
declare -A KIND_POINTS          # "scenario kind" -> fault points that fired
# the kinds of call each scenario must make (and fail on when faulted)
declare -A NEEDS=([push-new]="open read write fsync rename mkdir"
	[push-again]="open read fsync" [fetch]="open read write fsync rename")
bad() { BAD=$((BAD + 1)); [ "$BAD" -le 20 ] && echo "# $*"; }

# walk SCENARIO: all kinds, both errnos
walk() {
	local scenario=$1 kind err n rc zeros why
	for kind in open read write fsync rename link unlink mkdir; do
		for err in ENOSPC EIO; do
			n=1; zeros=0
			while [ "$zeros" -lt 2 ] && [ "$n" -le 500 ]; do
				prepare "$scenario"
				WALARCHIVE_FAULT="$n:$err:$kind" run_prog "$scenario" >"$T/err" 2>&1
				rc=$?
				if [ "$rc" -eq 0 ]; then
					zeros=$((zeros + 1))
				else
					zeros=0; POINTS=$((POINTS + 1))
					KIND_POINTS["$scenario $kind"]=$(( ${KIND_POINTS["$scenario $kind"]:-0} + 1 ))
				fi
				why=$(check_after "$scenario" "$rc" "$kind")
				[ -z "$why" ] || bad "$scenario $n:$err:$kind: exit $rc: $why ($(head -c 300 "$T/err" | tr '\n' '|'))"
				why=$(retry "$scenario")
				[ -z "$why" ] || bad "$scenario $n:$err:$kind: retry: $why"
				n=$((n + 1))
			done
			[ "$n" -le 500 ] || bad "$scenario $err:$kind: still failing at N=500"
			echo "# $scenario $kind $err: $((n - 3)) calls counted"
		done
	done
}

prepare() {
	case $1 in
	push-new) rm -rf "$ARCH"; mkdir -p "$ARCH" ;;
	push-again|fetch) rm -rf "$ARCH"; cp -a "$T/archive.full" "$ARCH" ;;
	esac
	rm -rf "$T/dest"; mkdir -p "$T/dest"
}

run_prog() {
	case $1 in
	push-*) "$BIN/walpush" -c "$CONF" -D "$DATA" "$SRC" "$SEG" ;;
	fetch) "$BIN/walfetch" -c "$CONF" -D "$DATA" "$SEG" "$T/dest/$SEG" ;;
	esac
}

check_after() {
	local scenario=$1 rc=$2 kind=$3 tmps
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 6 ]; then
		echo "exit $rc, want 6 (disk or i/o error)"
	fi
	if [ "$rc" -gt 125 ]; then echo "exit $rc is above 125"; fi
	verify_archive || return
	case $scenario in
	push-*)
		[ "$rc" -ne 0 ] || [ "$OBJECTS" -eq 1 ] || echo "exit 0 but $OBJECTS objects"
		[ "$TMPS" -eq 0 ] || [ "$kind" = unlink ] || echo "$TMPS temporary file(s) left in the archive"
		;;
	fetch)
		if [ -e "$T/dest/$SEG" ] && ! cmp -s "$T/dest/$SEG" "$SRC"; then
			echo "destination holds wrong or partial data"
		fi
		[ "$rc" -ne 0 ] || [ -e "$T/dest/$SEG" ] || echo "exit 0 but no destination file"
		tmps=$(find "$T/dest" -name ".$SEG.*" | wc -l)
		[ "$tmps" -eq 0 ] || [ "$kind" = unlink ] || echo "$tmps temporary file(s) left beside the destination"
		;;
	esac
}

retry() {
	local rc
	run_prog "$1" >/dev/null 2>"$T/err2"
	rc=$?
	[ "$rc" -eq 0 ] || { echo "exit $rc: $(head -c 300 "$T/err2")"; return; }
	verify_archive || return
	[ "$OBJECTS" -eq 1 ] || echo "$OBJECTS objects after the retry"
	case $1 in
	fetch) cmp -s "$T/dest/$SEG" "$SRC" || echo "restored file differs" ;;
	esac
}

START=$SECONDS
for scenario in push-new push-again fetch; do
	before=$POINTS bad_before=$BAD
	walk "$scenario"
	if [ "$BAD" -eq "$bad_before" ]; then
		t_ok "$scenario: $((POINTS - before)) fault points, every promise kept"
	else
		t_fail "$scenario: $((BAD - bad_before)) broken promises over $((POINTS - before)) fault points"
	fi
	missing=
	for kind in ${NEEDS[$scenario]}; do
		[ "${KIND_POINTS["$scenario $kind"]:-0}" -gt 0 ] || missing="$missing $kind"
	done
	if [ "$((POINTS - before))" -ge "$MIN_POINTS" ] && [ -z "$missing" ]; then
		t_setup_ok "$scenario: the faults fired ($((POINTS - before)) points, at least $MIN_POINTS; every one of: ${NEEDS[$scenario]})"
	else
		t_fail "$scenario: the faults did not fire: $((POINTS - before)) points (want $MIN_POINTS)${missing:+, none for:$missing}"
	fi
done
echo "# fault points tried: $POINTS (walpush and walfetch, ENOSPC and EIO, $((SECONDS - START)) s)"
t_setup "at least $MIN_TOTAL fault points in all ($POINTS)" test "$POINTS" -ge "$MIN_TOTAL"
t_done
