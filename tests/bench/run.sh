#!/bin/bash
# walarchive benchmark, run by hand as root (it starts a PostgreSQL 15
# cluster as the postgres user):  tests/bench/run.sh
#
# 1. Makes a corpus of real WAL (at least BENCH_SEGMENTS segments of 16 MiB)
#    with pgbench -i and a timed pgbench run, copied out by archive_command.
# 2. Times, per segment, on the same disk and interleaved segment by segment:
#    walpush (lz4, none), cp + sync + mv, pgbackrest archive-push (posix repo,
#    lz4 level 1, synchronous); the same two with every fsync made
#    BENCH_SLOW_FSYNC_MS (10) slower by tests/bench/slowsync.c, a disk whose
#    flush is slow; then walfetch (fetch_fsync off, the default, and on),
#    pgbackrest archive-get, and lz4 -d + sync + mv.  Prints medians, ratios beside the targets, and the
#    peak resident memory of each program.  It reports; it asserts no timing.
# 3. Runs tests/bench/sftp.sh CORPUS and tests/bench/http.sh CORPUS if present,
#    and tests/bench/age.sh CORPUS (encryption, local) and
#    tests/bench/compress.sh CORPUS (none, lz4, zstd levels, local) always; with
#    BENCH_BASE_REV, tests/bench/base.sh BASE_BIN CORPUS too.
#
# Environment: WALARCHIVE_BIN (default <src>/build/inst/bin), BENCH_DIR (work
# directory, default /var/tmp/walarchive-bench.PID, removed unless KEEP=1),
# BENCH_SEGMENTS (default 40), BENCH_SCALE (pgbench -i scale, default 16),
# BENCH_LOCAL_ONLY=1 (do not run sftp.sh and http.sh), BENCH_BASE_REV (a git
# revision, e.g. an earlier release: its walpush and walfetch are built and
# timed in the same run, beside these, to show what a change costs).

set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${WALARCHIVE_BIN:=$SRC/build/inst/bin}"
: "${BENCH_DIR:=/var/tmp/walarchive-bench.$$}"
: "${BENCH_SEGMENTS:=40}"
: "${BENCH_SCALE:=16}"
[ "$(id -u)" = 0 ] || { echo "bench: run as root (clusters run as the postgres user)" >&2; exit 2; }
for p in walpush walfetch; do
	[ -x "$WALARCHIVE_BIN/$p" ] || { echo "bench: $WALARCHIVE_BIN/$p not found (set WALARCHIVE_BIN)" >&2; exit 2; }
done
command -v pgbackrest >/dev/null || { echo "bench: pgbackrest not installed (apt-get install pgbackrest)" >&2; exit 2; }

mkdir -p "$BENCH_DIR"
chmod 755 "$BENCH_DIR"
WALARCHIVE_TMP=$BENCH_DIR
BENCH_OUT=$BENCH_DIR/results
. "$SRC/tests/lib/common.sh"
. "$SRC/tests/lib/pg.sh"
. "$SRC/tests/bench/lib.sh"
t_cleanup "[ '${KEEP:-0}' = 1 ] || rm -rf '$BENCH_DIR'"
export LC_ALL=C
B=$BENCH_DIR
PGUID=$(id -u postgres); PGGID=$(id -g postgres)
# "${AS_PG[@]}" CMD...: execs CMD as postgres in place (no extra process),
# so the time and RSS measured are CMD's own.
AS_PG=(setpriv --reuid="$PGUID" --regid="$PGGID" --clear-groups)
T0=$SECONDS

echo "== corpus: pgbench -i -s $BENCH_SCALE, then timed pgbench runs, until $BENCH_SEGMENTS segments"
CORPUS=$B/corpus
mkdir -p "$CORPUS"; chown postgres:postgres "$CORPUS"
pg_new bench >/dev/null || exit 1
pg_conf bench "archive_mode = on" "archive_command = 'cp %p $CORPUS/.%f && mv $CORPUS/.%f $CORPUS/%f'" \
	"checkpoint_timeout = 30min" "max_wal_size = 4GB"
pg_start bench || exit 1
DATA=$(pg_data bench)
# the archives' directories, made now: by the time of the pushes they are
# settled (a minute old), as they are for all but the first push of every
# 4 GiB of WAL, and walpush no longer syncs the directories above them
SYSID=$(pg_sql bench "select system_identifier from pg_control_system()")
for d in wa-lz4 wa-none base-lz4 base-none wa-slow; do
	mkdir -p -m 0700 "$B/$d/$SYSID/0000000100000000"; chown -R postgres:postgres "$B/$d"
done
T_TREES=$SECONDS
pg_pgbench bench -i -s "$BENCH_SCALE" -q >/dev/null 2>&1 || { echo "bench: pgbench -i failed" >&2; exit 1; }
pg_sql bench "select pg_switch_wal()" >/dev/null
pg_wait_sql bench 120 "select count(*) = 0 from pg_ls_archive_statusdir() where name like '%.ready'"
N_INIT=$(ls "$CORPUS" | grep -cE '^[0-9A-F]{24}$')
rounds=0
while [ "$(ls "$CORPUS" | grep -cE '^[0-9A-F]{24}$')" -lt "$BENCH_SEGMENTS" ] && [ $rounds -lt 10 ]; do
	pg_pgbench bench -T 10 -c 4 -j 2 >/dev/null 2>&1
	pg_sql bench "checkpoint" "select pg_switch_wal()" >/dev/null
	rounds=$((rounds + 1))
done
pg_wait_sql bench 120 "select count(*) = 0 from pg_ls_archive_statusdir() where name like '%.ready'"
# the corpus is full segments only (the last switched ones are mostly zeros: keep them, they are real)
SEGS=$(ls "$CORPUS" | grep -E '^[0-9A-F]{24}$' | sort)
NSEG=$(echo "$SEGS" | wc -l)
N_RUN=$((NSEG - N_INIT))
echo "corpus: $NSEG segments ($N_INIT from pgbench -i, $N_RUN from $rounds x pgbench -T 10), $(du -sm "$CORPUS" | cut -f1) MiB, lz4 -1 ratio $(
	cat "$CORPUS"/0* | lz4 -1 -c | wc -c | awk -v t=$((NSEG * 16777216)) '{ printf "%.2f", t / $1 }')"
[ "$NSEG" -ge 32 ] || echo "bench: warning: only $NSEG segments (want >= 32)" >&2
[ "$N_RUN" -gt 0 ] || echo "bench: warning: no segment from the timed run" >&2

echo "== setup: archives and pgbackrest stanza"
for d in wa-lz4 wa-none base-lz4 base-none cpdir restore pgbr pgbr/repo pgbr/lock pgbr/log pgbr/spool; do
	mkdir -p "$B/$d"; chown postgres:postgres "$B/$d"
done
printf 'archive = %s\ncompress = lz4\n' "$B/wa-lz4" > "$B/wa-lz4.conf"
printf 'archive = %s\ncompress = none\n' "$B/wa-none" > "$B/wa-none.conf"
# the same archive, restored with a flush before the rename (not the default)
printf 'archive = %s\ncompress = lz4\nfetch_fsync = on\n' "$B/wa-lz4" > "$B/wa-lz4-sync.conf"
printf 'archive = %s\ncompress = lz4\n' "$B/base-lz4" > "$B/wa-base-lz4.conf"
printf 'archive = %s\ncompress = none\n' "$B/base-none" > "$B/wa-base-none.conf"
BASE_BIN=
if [ -n "${BENCH_BASE_REV:-}" ]; then
	mkdir -p "$B/base-src"
	if git -C "$SRC" archive "$BENCH_BASE_REV" | tar -x -C "$B/base-src" &&
	   cmake -S "$B/base-src" -B "$B/base-build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWALARCHIVE_TESTS=OFF >/dev/null &&
	   cmake --build "$B/base-build" -j"$(nproc)" >/dev/null &&
	   cmake --install "$B/base-build" --prefix "$B/base-inst" >/dev/null; then
		chmod -R a+rX "$B/base-inst"
		BASE_BIN=$B/base-inst/bin
		echo "base: walpush and walfetch of $BENCH_BASE_REV ($(git -C "$SRC" rev-parse --short "$BENCH_BASE_REV")) timed beside"
	else
		echo "bench: cannot build $BENCH_BASE_REV; no base rows" >&2
	fi
fi
chown postgres "$B"/wa-*.conf; chmod 600 "$B"/wa-*.conf
cat > "$B/pgbackrest.conf" <<EOF
[global]
repo1-type=posix
repo1-path=$B/pgbr/repo
compress-type=lz4
compress-level=1
archive-async=n
lock-path=$B/pgbr/lock
log-path=$B/pgbr/log
spool-path=$B/pgbr/spool
log-level-console=warn
log-level-stderr=warn
log-level-file=off

[bench]
pg1-path=$DATA
pg1-port=$(pg_port bench)
pg1-socket-path=$(pg_sock bench)
EOF
chown postgres "$B/pgbackrest.conf"
PGBR="pgbackrest --config=$B/pgbackrest.conf --stanza=bench"
as_pg $PGBR stanza-create >"$B/stanza.log" 2>&1 || { echo "bench: pgbackrest stanza-create failed:" >&2; cat "$B/stanza.log" >&2; exit 1; }
echo "pgbackrest $(pgbackrest version | awk '{print $2}'), stanza created (posix repo, lz4 level 1, archive-async=n)"
sync

# walpush and walfetch run in the data directory, as archive_command does
cd "$DATA" || exit 1
while [ $((SECONDS - T_TREES)) -le 61 ]; do sleep 1; done
NPUSH=4; [ -n "$BASE_BIN" ] && NPUSH=6
echo "== push: per segment, interleaved (walpush lz4, walpush none, cp+sync+mv, pgbackrest archive-push${BASE_BIN:+, base walpush lz4 and none})"
i=0
for s in $SEGS; do
	i=$((i + 1))
	[ "$BENCH_FAILURES" -le 10 ] || { echo "bench: more than 10 failed runs; stopping" >&2; break; }
	# rotate the order so that no method always runs first on a cold page
	for k in $(seq 0 $((NPUSH - 1))); do
		case $(( (i + k) % NPUSH )) in
		0) bench_run "walpush lz4" "${AS_PG[@]}" "$WALARCHIVE_BIN/walpush" -c "$B/wa-lz4.conf" "$CORPUS/$s" "$s" ;;
		1) bench_run "walpush none" "${AS_PG[@]}" "$WALARCHIVE_BIN/walpush" -c "$B/wa-none.conf" "$CORPUS/$s" "$s" ;;
		2) bench_steps "cp+sync+mv" "${AS_PG[@]}" cp "$CORPUS/$s" "$B/cpdir/.$s.tmp" -- \
			"${AS_PG[@]}" sync "$B/cpdir/.$s.tmp" -- "${AS_PG[@]}" mv "$B/cpdir/.$s.tmp" "$B/cpdir/$s" ;;
		3) bench_run "pgbackrest archive-push" "${AS_PG[@]}" $PGBR archive-push "$CORPUS/$s" ;;
		4) bench_run "base walpush lz4" "${AS_PG[@]}" "$BASE_BIN/walpush" -c "$B/wa-base-lz4.conf" "$CORPUS/$s" "$s" ;;
		5) bench_run "base walpush none" "${AS_PG[@]}" "$BASE_BIN/walpush" -c "$B/wa-base-none.conf" "$CORPUS/$s" "$s" ;;
		esac
	done
done

# a disk whose flush is slow: every fsync waits BENCH_SLOW_FSYNC_MS first
SLOW_MS=${BENCH_SLOW_FSYNC_MS:-10}
SLOWLIB=$B/slowsync.so
if [ "$SLOW_MS" != 0 ] && cc -O2 -shared -fPIC -o "$SLOWLIB" "$SRC/tests/bench/slowsync.c" -ldl; then
	chmod a+rx "$B" "$SLOWLIB"
	mkdir -p "$B/pgbr-slow/repo"; chown -R postgres:postgres "$B/pgbr-slow"
	sed "s|^repo1-path=.*|repo1-path=$B/pgbr-slow/repo|" "$B/pgbackrest.conf" > "$B/pgbackrest-slow.conf"
	printf 'archive = %s\ncompress = lz4\n' "$B/wa-slow" > "$B/wa-slow.conf"
	chown postgres "$B/pgbackrest-slow.conf" "$B/wa-slow.conf"; chmod 600 "$B/wa-slow.conf"
	PGBR_SLOW="pgbackrest --config=$B/pgbackrest-slow.conf --stanza=bench"
	as_pg $PGBR_SLOW stanza-create >"$B/stanza-slow.log" 2>&1 || { echo "bench: pgbackrest stanza-create (slow) failed" >&2; cat "$B/stanza-slow.log" >&2; }
	echo "== push with a slow flush: every fsync waits $SLOW_MS ms (LD_PRELOAD $SLOWLIB), interleaved (walpush lz4, pgbackrest archive-push)"
	i=0
	for s in $SEGS; do
		i=$((i + 1))
		for k in 0 1; do
			case $(( (i + k) % 2 )) in
			0) bench_run "walpush lz4 (slow flush)" env LD_PRELOAD="$SLOWLIB" SLOWSYNC_MS="$SLOW_MS" \
				"${AS_PG[@]}" "$WALARCHIVE_BIN/walpush" -c "$B/wa-slow.conf" "$CORPUS/$s" "$s" ;;
			1) bench_run "pgbackrest archive-push (slow flush)" env LD_PRELOAD="$SLOWLIB" SLOWSYNC_MS="$SLOW_MS" \
				"${AS_PG[@]}" $PGBR_SLOW archive-push "$CORPUS/$s" ;;
			esac
		done
	done
fi

echo "== fetch: per segment, interleaved (walfetch at the default fetch_fsync = off and with on, pgbackrest archive-get, lz4 -d+sync+mv)"
R=$B/restore
i=0
for s in $SEGS; do
	i=$((i + 1))
	[ "$BENCH_FAILURES" -le 10 ] || { echo "bench: more than 10 failed runs; stopping" >&2; break; }
	obj=$B/wa-lz4/$SYSID/${s:0:16}/$s.lz4
	NFETCH=5; [ -n "$BASE_BIN" ] && NFETCH=7
	for k in $(seq 0 $((NFETCH - 1))); do
		case $(( (i + k) % NFETCH )) in
		0) bench_run "walfetch (lz4 object)" "${AS_PG[@]}" "$WALARCHIVE_BIN/walfetch" -c "$B/wa-lz4.conf" "$s" "$R/RECOVERYXLOG" ;;
		1) bench_run "pgbackrest archive-get" "${AS_PG[@]}" $PGBR archive-get "$s" "$R/RECOVERYXLOG" ;;
		2) bench_steps "lz4 -d+sync+mv" "${AS_PG[@]}" lz4 -d -q -f "$obj" "$R/.tmp" -- \
			"${AS_PG[@]}" sync "$R/.tmp" -- "${AS_PG[@]}" mv "$R/.tmp" "$R/RECOVERYXLOG"
		   rm -f "$R/RECOVERYXLOG"; continue ;;
		3) bench_run "walfetch (none object)" "${AS_PG[@]}" "$WALARCHIVE_BIN/walfetch" -c "$B/wa-none.conf" "$s" "$R/RECOVERYXLOG" ;;
		4) bench_run "walfetch (lz4, fetch_fsync on)" "${AS_PG[@]}" "$WALARCHIVE_BIN/walfetch" -c "$B/wa-lz4-sync.conf" "$s" "$R/RECOVERYXLOG" ;;
		5) bench_run "base walfetch (lz4 object)" "${AS_PG[@]}" "$BASE_BIN/walfetch" -c "$B/wa-base-lz4.conf" "$s" "$R/RECOVERYXLOG" ;;
		6) bench_run "base walfetch (none object)" "${AS_PG[@]}" "$BASE_BIN/walfetch" -c "$B/wa-base-none.conf" "$s" "$R/RECOVERYXLOG" ;;
		esac
		cmp -s "$R/RECOVERYXLOG" "$CORPUS/$s" || { echo "bench: fetch method $k, $s: content differs" >&2; BENCH_FAILURES=$((BENCH_FAILURES + 1)); }
		rm -f "$R/RECOVERYXLOG"
	done
done
cd "$B" || exit 1
pg_stop bench fast

echo
echo "== results: $NSEG segments of 16 MiB, $(df -P "$B" | awk 'NR==2 {print $1}') ($(findmnt -no FSTYPE -T "$B" 2>/dev/null || echo '?')), $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
bench_table "walpush lz4" "walpush none" "cp+sync+mv" "pgbackrest archive-push" \
	"walpush lz4 (slow flush)" "pgbackrest archive-push (slow flush)" \
	"walfetch (lz4 object)" "walfetch (none object)" "walfetch (lz4, fetch_fsync on)" "pgbackrest archive-get" "lz4 -d+sync+mv" \
	${BASE_BIN:+"base walpush lz4" "base walpush none" "base walfetch (lz4 object)" "base walfetch (none object)"}
echo
if [ -n "$BASE_BIN" ]; then
	echo "what the change costs against $BENCH_BASE_REV (same run, same segments):"
	bench_ratio "walpush lz4" "base walpush lz4" -
	bench_ratio "walpush none" "base walpush none" -
	bench_ratio "walfetch (lz4 object)" "base walfetch (lz4 object)" -
	bench_ratio "walfetch (none object)" "base walfetch (none object)" -
fi
bench_ratio "walpush lz4" "pgbackrest archive-push" 0.4
bench_ratio "walpush none" "cp+sync+mv" 1.15
[ -s "$BENCH_OUT/walpush lz4 (slow flush).times" ] &&
	bench_ratio "walpush lz4 (slow flush)" "pgbackrest archive-push (slow flush)" 0.4
bench_ratio "walfetch (lz4 object)" "pgbackrest archive-get" 0.4
bench_ratio "walfetch (lz4, fetch_fsync on)" "pgbackrest archive-get" -
bench_ratio "walfetch (lz4 object)" "lz4 -d+sync+mv" -
bench_ratio "walpush lz4" "cp+sync+mv" -
bench_rss "walpush lz4" 8192
bench_rss "walpush none" 8192
bench_rss "walfetch (lz4 object)" 8192
echo "archive size: walpush lz4 $(du -sm "$B/wa-lz4" | cut -f1) MiB, pgbackrest $(du -sm "$B/pgbr/repo" | cut -f1) MiB, uncompressed $(du -sm "$B/wa-none" | cut -f1) MiB"
echo "bench: local part took $((SECONDS - T0)) s, $BENCH_FAILURES failed runs"
[ "${KEEP:-0}" = 1 ] && echo "bench: results kept in $BENCH_OUT"

# the other benchmarks reuse the same corpus
status=0
[ "$BENCH_FAILURES" -eq 0 ] || status=1
for extra in sftp http age compress; do
	if [ "${BENCH_LOCAL_ONLY:-0}" = 1 ] && [ "$extra" != age ] && [ "$extra" != compress ]; then
		echo "bench: BENCH_LOCAL_ONLY=1: tests/bench/$extra.sh not run"
	elif [ -x "$SRC/tests/bench/$extra.sh" ] || [ -f "$SRC/tests/bench/$extra.sh" ]; then
		echo
		echo "== tests/bench/$extra.sh"
		WALARCHIVE_BIN=$WALARCHIVE_BIN BENCH_DIR=$B/$extra bash "$SRC/tests/bench/$extra.sh" "$CORPUS" || status=1
	else
		echo "bench: tests/bench/$extra.sh not present; skipped"
	fi
done
if [ -n "$BASE_BIN" ]; then
	echo
	echo "== tests/bench/base.sh (against $BENCH_BASE_REV, with and without encryption)"
	WALARCHIVE_BIN=$WALARCHIVE_BIN bash "$SRC/tests/bench/base.sh" "$BASE_BIN" "$CORPUS" || status=1
fi
t_run_cleanups
exit $status
