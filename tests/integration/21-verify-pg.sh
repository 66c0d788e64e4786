#!/bin/bash
# A point-in-time recovery with real PostgreSQL 15 in which one archived
# segment was swapped for another cluster's segment of the same name (a
# copied archive, a mixed-up prefix): walfetch refuses it, naming the
# object, and recovery stops instead of ending early and promoting with
# data missing.  Once the right object is back, the same recovery reaches
# its target with every row.

. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"

BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
ARCH=$T/archive
CONF=$T/walarchive.conf
for p in walpush walfetch; do
	[ -x "$BIN/$p" ] || { t_fail "$BIN/$p is not installed"; t_done; }
done
mkdir -p "$ARCH"
chown postgres:postgres "$ARCH"
walarchive_conf "$CONF" "archive=$ARCH"
PUSH="$BIN/walpush -c $CONF %p %f"
FETCH="$BIN/walfetch -c $CONF %f %p"

# sys_obj SYSID NAME: the framed object of NAME archived by cluster SYSID
sys_obj() { echo "$ARCH/$1/${2:0:16}/$2.lz4"; }

# ---- two clusters archiving into one archive -------------------------------
for c in a b; do
	pg_new $c || { t_fail "initdb $c"; t_done; }
	pg_conf $c "archive_mode = on" "archive_command = '$PUSH'" "wal_level = replica"
	pg_start $c || { t_fail "cluster $c starts"; t_done; }
done
SYS_A=$(pg_sql a "select system_identifier from pg_control_system()")
SYS_B=$(pg_sql b "select system_identifier from pg_control_system()")
t_check "two clusters with different system identifiers" test "$SYS_A" != "$SYS_B"

pg_take_basebackup a bb -X none || { t_fail "base backup of a"; t_done; }
pg_sql a "create table marker (v int)" >/dev/null
# 4,000 rows, one per transaction group, over several segments
for i in 1 2 3 4; do
	pg_sql a "insert into marker select g from generate_series(($i - 1) * 1000 + 1, $i * 1000) g" >/dev/null
	# the segment holding the second thousand rows: after the backup, before rp1
	[ $i = 2 ] && S=$(pg_sql a "select pg_walfile_name(pg_current_wal_lsn())")
	switch_wal a >/dev/null
done
pg_sql a "select pg_create_restore_point('rp1')" >/dev/null
LAST_A=$(switch_wal a)
wait_archived a "$LAST_A" || t_fail "cluster a archives up to $LAST_A"
# cluster b makes as many segments, so that it has one of each name
for i in 1 2 3 4 5 6; do
	pg_sql b "create table t$i as select g from generate_series(1, 1000) g" >/dev/null
	LAST_B=$(switch_wal b)
done
wait_archived b "$LAST_B" || t_fail "cluster b archives up to $LAST_B"

t_check "segment $S exists in both clusters' trees" test -f "$(sys_obj "$SYS_A" "$S")" -a -f "$(sys_obj "$SYS_B" "$S")"
cp -p "$(sys_obj "$SYS_A" "$S")" "$T/right.lz4"
cp "$(sys_obj "$SYS_B" "$S")" "$(sys_obj "$SYS_A" "$S")"
t_check "cluster b's $S is now in cluster a's tree" cmp -s "$(sys_obj "$SYS_B" "$S")" "$(sys_obj "$SYS_A" "$S")"

# ---- the point-in-time recovery stops at the foreign object ----------------
pg_prepare pitr
cp -a "$(pg_data bb)" "$(pg_data pitr)"
pg_conf pitr "port = $(pg_port pitr)" "unix_socket_directories = '$(pg_sock pitr)'" \
	"archive_mode = off" "restore_command = '$FETCH'" "recovery_target_name = 'rp1'" \
	"recovery_target_action = 'promote'"
as_pg touch "$(pg_data pitr)/recovery.signal"
as_pg "$PGBIN/pg_ctl" -D "$(pg_data pitr)" -l "$(pg_dir pitr)/server.log" \
	-o "-p $(pg_port pitr) -k $(pg_sock pitr)" start >/dev/null 2>&1
t_cleanup "pg_stop pitr immediate"
# recovery must stop: the server exits by itself, never accepting writes
for _ in $(seq 1 120); do
	[ -f "$(pg_data pitr)/postmaster.pid" ] || break
	[ "$(pg_sql pitr "select not pg_is_in_recovery()" 2>/dev/null)" = t ] && break
	sleep 0.5
done
promoted=$(pg_sql pitr "select not pg_is_in_recovery()" 2>/dev/null)
t_check "the recovery did not promote past the foreign segment" test "$promoted" != t
t_check "the server stopped by itself" test ! -f "$(pg_data pitr)/postmaster.pid"
LOG=$(pg_dir pitr)/server.log
t_check "walfetch named the object and the cause in the server log" \
	grep -Eq "walfetch: $SYS_A/${S:0:16}/$S.lz4: archived object is not a valid $S: it belongs to another cluster" "$LOG"
t_check "PostgreSQL stopped recovery on walfetch's exit 126" \
	grep -Eq "FATAL: .*(could not restore file \"$S\"|restore_command)|exit code 126" "$LOG"
t_check "PostgreSQL never read the foreign segment" \
	test -z "$(grep -E 'different database system' "$LOG")"
pg_stop pitr immediate 2>/dev/null

# ---- the right object back: the same recovery reaches its target ------------
cp -p "$T/right.lz4" "$(sys_obj "$SYS_A" "$S")"
pg_start pitr || t_fail "the recovery starts again"
pg_wait_sql pitr 120 "select not pg_is_in_recovery()"
t_check "with the right object the recovery ends and promotes" test $? -eq 0
t_check "it stopped at restore point rp1" grep -q 'recovery stopping at restore point "rp1"' "$LOG"
t_eq "every one of the 4,000 rows is there" "$(pg_sql pitr "select count(*) from marker")" 4000
t_done
