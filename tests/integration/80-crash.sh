#!/bin/bash
# SANITIZE_OK
# Crash tests on a local archive, with a 16 MiB segment that looks real (the
# first page of a PostgreSQL 15 segment from tests/fixtures/pg15, random
# bytes after it) and a data directory holding that cluster's pg_control.
#
# 1. SIGKILL: walpush (into an empty archive) and walfetch (into an empty
#    directory) are killed at a random moment of their run, up to 200 times
#    each within a time bound.  After each kill: every object under a final
#    name (a name not starting with '.') decompresses with `lz4 -d` to exactly
#    the source; the restored file is absent or identical; a retry exits 0
#    and stores / restores the right bytes.
# 2. Power loss: tests/crash/powerloss.c (built here with cc) is preloaded
#    into walpush and walfetch.  It logs every create, mkdir, rename, link,
#    unlink, and every fsync: of a file with a copy of its content at that
#    moment, of a directory by name.  tests/crash/powerloss-replay.py then
#    replays the log and simulates a power loss after EVERY logged event: a
#    file keeps only what its last fsync saw; a directory entry survives only
#    if its directory was fsynced after the change, and only if the
#    directories above it survive.  It checks that no surviving final name
#    holds incomplete data, and that once a program exited 0 its object (or
#    restored file) survives intact.  Scenarios: a clean push and fetch; a
#    push or fetch killed at a random moment, then retried; a push whose Nth
#    fsync fails (WALARCHIVE_FAULT, for every N), then retried.  Each point
#    is tried with the directory changes not yet fsynced lost, and with them
#    all kept (a rename that survives without its data).
# The faults must have fired: at least MIN_KILLED runs of each program killed
# mid-run, MIN_PL_POINTS power-loss points, and MIN_PL_FAULTED pushes failed
# by an injected fault.

. "$(dirname "$0")/../lib/common.sh"

export LC_ALL=C
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
FIX=$WALARCHIVE_SRC/tests/fixtures/pg15
for p in walpush walfetch; do
	[ -x "$BIN/$p" ] || { t_fail "$BIN/$p is not installed"; t_done; }
done
for c in lz4 cc python3; do
	command -v "$c" >/dev/null || { t_fail "$c is needed"; t_done; }
done

SEG=000000010000000000000001
SYSID=$(sed -n 's/^system_identifier=//p' "$FIX/INFO")
DATA=$T/pgdata
mkdir -p "$DATA/global" "$T/src"
cp "$FIX/pg_control" "$DATA/global/pg_control"
touch "$DATA/standby.signal"
SRC=$T/src/$SEG
python3 - "$FIX/wal-first-page.bin" "$SRC" <<'PY'
import os, sys
page = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(page + os.urandom((16 << 20) - len(page)))
PY
ARCH=$T/archive
CONF=$T/walarchive.conf
# fetch_fsync = on: exit 0 of walfetch then means durable, as the replay checks
printf 'archive = %s\nfetch_fsync = on\n' "$ARCH" > "$CONF"
# the tree's description that walpush writes beside the objects
INFO=$T/walarchive.info
printf '# walarchive: the cluster whose WAL this tree holds\nsystem_id = %s\npg_version = 15\nwal_seg_size = 16777216\nwal_block_size = 8192\n' "$SYSID" > "$INFO"
chmod 600 "$CONF"
OBJ=$ARCH/$SYSID/${SEG:0:16}/$SEG.lz4
DEST=$T/dest

push()  { "$BIN/walpush" -c "$CONF" -D "$DATA" "$SRC" "$SEG"; }
fetch() { "$BIN/walfetch" -c "$CONF" -D "$DATA" "$SEG" "$DEST/$SEG"; }

# verify_archive: every non-dot file is the complete compressed source;
# sets OBJECTS and TMPS; prints the reason and returns 1 otherwise
verify_archive() {
	local f
	OBJECTS=0; TMPS=0
	while IFS= read -r -d '' f; do
		case $(basename "$f") in
		.*) TMPS=$((TMPS + 1)) ;;
		"$SEG.lz4")
			OBJECTS=$((OBJECTS + 1)) # counted for the caller: call it outside $(...)
			lz4 -dc "$f" 2>/dev/null | cmp -s - "$SRC" || { echo "partial or wrong object $f"; return 1; } ;;
		walarchive.info) cmp -s "$f" "$INFO" || { echo "partial or wrong $f"; return 1; } ;;
		*) echo "unexpected file $f"; return 1 ;;
		esac
	done < <(find "$ARCH" -type f -print0)
}

MIN_KILLED=20 MIN_PL_POINTS=300 MIN_PL_FAULTED=6

# ms_of CMD...: run time of CMD in milliseconds
ms_of() {
	local t0 t1
	t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}

# ---- 1. SIGKILL at random moments -------------------------------------------
# Each program's run time is the shortest of three runs made as the trials
# make theirs: a first run, which also creates the archive's tree, or one
# slowed by other work on the machine, would put most kills after the end.
PUSH_MS= FETCH_MS=
for i in 1 2 3; do
	rm -rf "$ARCH"; mkdir -p "$ARCH"
	ms=$(ms_of push)
	[ -z "$PUSH_MS" ] || [ "$ms" -lt "$PUSH_MS" ] && PUSH_MS=$ms
done
verify_archive && [ "$OBJECTS" = 1 ] || { t_fail "a plain walpush stores the segment"; t_done; }
mkdir -p "$DEST"
for i in 1 2 3; do
	rm -f "$DEST/$SEG"
	ms=$(ms_of fetch)
	[ -z "$FETCH_MS" ] || [ "$ms" -lt "$FETCH_MS" ] && FETCH_MS=$ms
done
cmp -s "$DEST/$SEG" "$SRC" || { t_fail "a plain walfetch restores the segment"; t_done; }
cp -a "$ARCH" "$T/archive.full"
echo "# walpush takes $PUSH_MS ms, walfetch $FETCH_MS ms: kills land in 0..1.3 times that"

# delay MS: a random sleep argument in 0 .. 1.3 * MS milliseconds
delay() { local d=$((RANDOM % ($1 * 13 / 10 + 1))); printf '%d.%03d' $((d / 1000)) $((d % 1000)); }

# more_trials: up to 200 trials within the time bound ($end), and up to 40 s
# beyond it while fewer than MIN_KILLED of them were killed mid-run (a
# machine slowed by other work)
more_trials() {
	[ "$trials" -lt 200 ] && [ $SECONDS -lt "$end" ] && return 0
	[ "$killed" -lt "$MIN_KILLED" ] && [ $SECONDS -lt $((end + 40)) ]
}

trials=0 killed=0 bad=0 tmps_left=0
end=$((SECONDS + 25))
while more_trials; do
	rm -rf "$ARCH"; mkdir -p "$ARCH"
	push >/dev/null 2>&1 & pid=$!
	sleep "$(delay "$PUSH_MS")"
	kill -9 "$pid" 2>/dev/null
	{ wait "$pid"; } 2>/dev/null; rc=$?
	trials=$((trials + 1))
	[ "$rc" = 137 ] && killed=$((killed + 1))
	[ "$rc" = 137 ] || [ "$rc" = 0 ] || { bad=$((bad + 1)); echo "# push trial $trials: exit $rc"; }
	verify_archive >"$T/why" || { bad=$((bad + 1)); echo "# push trial $trials after the kill: $(cat "$T/why")"; }
	tmps_left=$((tmps_left + TMPS))
	push >/dev/null 2>"$T/err"; rc=$?
	[ "$rc" = 0 ] || { bad=$((bad + 1)); echo "# push trial $trials: retry exit $rc: $(cat "$T/err")"; }
	verify_archive >"$T/why" || { bad=$((bad + 1)); echo "# push trial $trials after the retry: $(cat "$T/why")"; }
	[ "$OBJECTS" = 1 ] || { bad=$((bad + 1)); echo "# push trial $trials: $OBJECTS objects after the retry"; }
	[ -f "$OBJ" ] || { bad=$((bad + 1)); echo "# push trial $trials: no object after the retry"; }
done
echo "# walpush: $trials trials, $killed killed mid-run, $tmps_left temporary files left by kills"
if [ "$bad" = 0 ] && [ "$killed" -ge "$MIN_KILLED" ]; then
	t_ok "walpush killed at random moments: $trials trials ($killed killed mid-run), no partial object, every retry exits 0"
else
	t_fail "walpush killed at random moments: $bad problems in $trials trials ($killed killed mid-run, want at least $MIN_KILLED)"
fi

rm -rf "$ARCH"; cp -a "$T/archive.full" "$ARCH"
trials=0 killed=0 bad=0 tmps_left=0
end=$((SECONDS + 20))
while more_trials; do
	rm -rf "$DEST"; mkdir -p "$DEST"
	fetch >/dev/null 2>&1 & pid=$!
	sleep "$(delay "$FETCH_MS")"
	kill -9 "$pid" 2>/dev/null
	{ wait "$pid"; } 2>/dev/null; rc=$?
	trials=$((trials + 1))
	[ "$rc" = 137 ] && killed=$((killed + 1))
	[ "$rc" = 137 ] || [ "$rc" = 0 ] || { bad=$((bad + 1)); echo "# fetch trial $trials: exit $rc"; }
	if [ -e "$DEST/$SEG" ] && ! cmp -s "$DEST/$SEG" "$SRC"; then
		bad=$((bad + 1)); echo "# fetch trial $trials: partial or wrong destination after the kill"
	fi
	tmps_left=$((tmps_left + $(find "$DEST" -name ".$SEG.*" | wc -l)))
	fetch >/dev/null 2>"$T/err"; rc=$?
	[ "$rc" = 0 ] || { bad=$((bad + 1)); echo "# fetch trial $trials: retry exit $rc: $(cat "$T/err")"; }
	cmp -s "$DEST/$SEG" "$SRC" || { bad=$((bad + 1)); echo "# fetch trial $trials: retry did not restore the segment"; }
done
echo "# walfetch: $trials trials, $killed killed mid-run, $tmps_left temporary files left by kills"
if [ "$bad" = 0 ] && [ "$killed" -ge "$MIN_KILLED" ]; then
	t_ok "walfetch killed at random moments: $trials trials ($killed killed mid-run), destination absent or complete, every retry exits 0"
else
	t_fail "walfetch killed at random moments: $bad problems in $trials trials ($killed killed mid-run, want at least $MIN_KILLED)"
fi

# ---- 2. simulated power loss -------------------------------------------------
SHIM=$T/powerloss.so
if ! cc -Wall -Wextra -O1 -shared -fPIC -o "$SHIM" "$WALARCHIVE_SRC/tests/crash/powerloss.c" -ldl 2>"$T/cc.err"; then
	cat "$T/cc.err"
	t_fail "build tests/crash/powerloss.c"
	t_done
fi
REPLAY=$WALARCHIVE_SRC/tests/crash/powerloss-replay.py
# a sanitized build must accept a preloaded library ahead of its runtime
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
PL=$T/powerloss

# pl_start [full]: a fresh log; an empty archive, or one holding the object
pl_start() {
	local f ino copy
	rm -rf "$PL" "$ARCH" "$DEST"
	mkdir -p "$PL/snap" "$DEST"
	if [ "${1:-}" = full ]; then
		cp -a "$T/archive.full" "$ARCH"
		while IFS= read -r -d '' f; do
			ino=$(stat -c %i "$f"); copy=$PL/snap/initial.$ino
			cp "$f" "$copy"
			echo "I $ino $f $copy" >> "$PL/log"
		done < <(find "$ARCH" -type f -print0)
		ROOTS=$(find "$ARCH" -type d)
	else
		mkdir -p "$ARCH"
		ROOTS=$ARCH
	fi
	# the destination directory and everything above it exist from the start
	ROOTS="$ROOTS $DEST $T"
}
# pl_run PATH CMD...: runs CMD under the shim; logs its exit for PATH
pl_run() {
	local path=$1 rc; shift
	POWERLOSS_LOG=$PL/log POWERLOSS_SNAP=$PL/snap LD_PRELOAD=$SHIM "$@" >/dev/null 2>>"$PL/err"
	rc=$?
	echo "X $rc $path" >> "$PL/log"
	return $rc
}
# pl_kill PATH DELAY_MS CMD...: the same, killed with SIGKILL after a random delay
pl_kill() {
	local path=$1 ms=$2 pid; shift 2
	POWERLOSS_LOG=$PL/log POWERLOSS_SNAP=$PL/snap LD_PRELOAD=$SHIM "$@" >/dev/null 2>>"$PL/err" & pid=$!
	sleep "$(delay "$ms")"
	kill -9 "$pid" 2>/dev/null
	{ wait "$pid"; } 2>/dev/null
	echo "X $? $path" >> "$PL/log"
}
# pl_check DESC: replays the log; counts the points checked
PL_POINTS=0 PL_SCEN=0 PL_BAD=0
pl_check() {
	local out n
	# shellcheck disable=SC2086
	out=$(POWERLOSS_INFO=$INFO python3 "$REPLAY" "$PL/log" "$SRC" $ROOTS)
	local rc=$?
	n=$(echo "$out" | sed -n 's/^checked \([0-9]*\) power-loss points$/\1/p')
	PL_POINTS=$((PL_POINTS + ${n:-0})); PL_SCEN=$((PL_SCEN + 1))
	if [ "$rc" -ne 0 ] || [ -z "$n" ]; then
		PL_BAD=$((PL_BAD + 1))
		[ "$PL_BAD" -le 6 ] && { echo "# power loss, $1:"; echo "$out" | head -n 4 | sed 's/^/#   /'; }
	fi
}

# the shim itself must see the protocol: a create, a rename, a directory
# fsync (not the file's fsync: the replay finds a push without one)
pl_start
pl_run "$OBJ" push
grep -q '^C ' "$PL/log" && grep -q '^R ' "$PL/log" && grep -q '^D ' "$PL/log" ||
	{ t_fail "the power-loss shim records walpush's calls"; cat "$PL/log"; t_done; }
pl_check "clean push"
pl_start full
pl_run "$DEST/$SEG" fetch
pl_check "clean fetch"

# killed at a random moment, then retried
end=$((SECONDS + 15))
k=0
while [ $k -lt 12 ] && [ $SECONDS -lt $end ]; do
	pl_start; pl_kill "$OBJ" "$PUSH_MS" push; pl_run "$OBJ" push; pl_check "push killed, retried"
	pl_start full; pl_kill "$DEST/$SEG" "$FETCH_MS" fetch; pl_run "$DEST/$SEG" fetch
	pl_check "fetch killed, retried"
	k=$((k + 1))
done

# the Nth fsync (or rename) fails, then a retry without faults
PL_FAULTED=0
for kind in fsync rename; do
	for n in 1 2 3 4 5 6; do
		pl_start
		WALARCHIVE_FAULT=$n:EIO:$kind pl_run "$OBJ" push || PL_FAULTED=$((PL_FAULTED + 1))
		pl_run "$OBJ" push
		pl_check "push with fault $n:EIO:$kind, then retried"
	done
done

if [ "$PL_BAD" = 0 ]; then
	t_ok "power loss: $PL_POINTS power-loss points in $PL_SCEN runs, each with renames lost and kept: nothing incomplete under a final name, every exit 0 durable"
else
	t_fail "power loss: $PL_BAD of $PL_SCEN scenarios lose data or leave a final name incomplete ($PL_POINTS points checked)"
fi
if [ "$PL_POINTS" -ge "$MIN_PL_POINTS" ] && [ "$PL_FAULTED" -ge "$MIN_PL_FAULTED" ]; then
	t_setup_ok "power loss: the faults fired ($PL_POINTS points, at least $MIN_PL_POINTS; $PL_FAULTED pushes failed by an injected fault, at least $MIN_PL_FAULTED)"
else
	t_fail "power loss: the faults did not fire: $PL_POINTS points (want $MIN_PL_POINTS), $PL_FAULTED pushes failed by an injected fault (want $MIN_PL_FAULTED)"
fi
t_done
