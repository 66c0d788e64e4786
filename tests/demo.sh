#!/bin/bash
# The main job on the embedded default, on one machine: builds walarchive,
# starts a PostgreSQL 15 primary that archives with walpush into a local
# directory under pgbench load, and a standby that is fed only from that
# archive with walfetch, then shows the standby catching up.  Run as root on
# Debian 12 after `tests/setup.sh core`.  Everything runs on 127.0.0.1 and
# is removed at the end (KEEP_TMP=1 keeps it).
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
source "$SRC/tests/lib/common.sh"
source "$SRC/tests/lib/pg.sh"

say() { echo "demo: $*"; }

say "building walarchive"
BUILD=$WALARCHIVE_TMP/build
cmake -S "$SRC" -B "$BUILD" -DWALARCHIVE_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
	cmake --build "$BUILD" -j"$(nproc)" >/dev/null &&
	cmake --install "$BUILD" --prefix "$WALARCHIVE_TMP/inst" >/dev/null || { say "build failed"; exit 1; }
chmod -R a+rX "$WALARCHIVE_TMP/inst"
BIN=$WALARCHIVE_TMP/inst/bin

ARCHIVE=$WALARCHIVE_TMP/archive
CONF=$WALARCHIVE_TMP/walarchive.conf
install -d -o postgres -g postgres -m 0700 "$ARCHIVE"
walarchive_conf "$CONF" "archive=$ARCHIVE" "compress=lz4"

say "primary: initdb, archive_command = 'walpush %p %f' into $ARCHIVE"
pg_new primary >/dev/null || exit 1
pg_conf primary "archive_mode = on" \
	"archive_command = '$BIN/walpush -c $CONF %p %f'" "wal_level = replica"
pg_start primary || exit 1

say "primary: pgbench -i -s 10, then 10 seconds of pgbench"
pg_pgbench primary -q -i -s 10 >/dev/null 2>&1
pg_take_basebackup primary standby -X none || exit 1
pg_pgbench primary -T 10 -c 4 >/dev/null 2>&1
pg_sql primary "create table demo(note text)" "insert into demo values ('written on the primary after the backup')" \
	"select pg_switch_wal()" >/dev/null

say "standby: from a base backup, restore_command = 'walfetch %f %p', no streaming"
touch "$(pg_data standby)/standby.signal"
chown postgres:postgres "$(pg_data standby)/standby.signal"
pg_conf standby "restore_command = '$BIN/walfetch -c $CONF %f %p'" "archive_mode = off"
pg_start standby || exit 1

say "waiting for the standby to replay the archived WAL"
if pg_wait_sql standby 120 "select count(*) = 1 from demo"; then
	say "standby has the row: $(pg_sql standby "select note from demo")"
	result=0
else
	say "the standby did not catch up; see $(pg_dir standby)/server.log"
	result=1
fi
say "pg_stat_archiver on the primary: $(pg_sql primary "select 'archived ' || archived_count || ', failed ' || failed_count || ', last ' || coalesce(last_archived_wal, '-') from pg_stat_archiver")"
objects=$(find "$ARCHIVE" -name '*.lz4' | wc -l)
say "archive: $objects objects, $(du -sh "$ARCHIVE" | cut -f1) on disk for $((objects * 16)) MiB of WAL"
say "archive layout: $(cd "$ARCHIVE" && find . -mindepth 1 -maxdepth 2 | sort | head -n 4 | tr '\n' ' ')"
[ $result -eq 0 ] && say "ok: the standby caught up from the archive"
t_run_cleanups
[ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$WALARCHIVE_TMP"
exit $result
