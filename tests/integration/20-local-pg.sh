#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# End to end with real PostgreSQL 15 clusters and a local-directory archive:
# a primary archiving with walpush under pgbench, point-in-time recovery with
# walfetch, a standby fed only from the archive, its promotion (history file
# and .partial archived, a later recovery follows timeline 2), and walprune
# --keep-backups 1 followed by a recovery from the newest backup.

. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"
. "$(dirname "$0")/../lib/wal.sh"

BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
ARCH=$T/archive
CONF=$T/walarchive.conf
for p in walpush walfetch walprune; do
	[ -x "$BIN/$p" ] || { t_fail "$BIN/$p is not installed"; t_done; }
done
mkdir -p "$ARCH"
chown postgres:postgres "$ARCH"
walarchive_conf "$CONF" "archive=$ARCH"
PUSH="$BIN/walpush -c $CONF %p %f"
FETCH="$BIN/walfetch -c $CONF %f %p"

# ---- helpers (arch_names, switch_wal, wait_archived, log_has: tests/lib) ---

# walfetch NAME DEST as postgres, in DIR (a data directory, for pg_control).
fetch_as_pg() {
	as_pg env -C "$1" "$BIN/walfetch" -c "$CONF" "$2" "$3"
}

# LSN at which segment NAME (16 MiB segments) starts, as X/X.
seg_lsn() {
	local n=$1
	printf '%X/%X\n' $((16#${n:8:8})) $(( (16#${n:16:8}) * 16777216 ))
}

# A copy of base backup SRC as a cluster NAME prepared for archive recovery
# (recovery.signal, restore_command = walfetch, no archiving of its own).
recovery_copy() {
	local src=$1 name=$2; shift 2
	pg_prepare "$name"
	cp -a "$(pg_data "$src")" "$(pg_data "$name")"
	pg_conf "$name" "port = $(pg_port "$name")" "unix_socket_directories = '$(pg_sock "$name")'" \
		"archive_mode = off" "restore_command = '$FETCH'" "$@"
	as_pg touch "$(pg_data "$name")/recovery.signal"
}

# ---- 1. a primary archiving with walpush under pgbench -------------------

pg_new prim || { t_fail "initdb"; t_done; }
pg_conf prim "archive_mode = on" "archive_command = '$PUSH'" "wal_level = replica" \
	"checkpoint_timeout = 30min"
t_setup "primary starts with archive_command = walpush" pg_start prim || t_done
SYSID=$(pg_sql prim "select system_identifier from pg_control_system()")

pg_pgbench prim -i -s 10 -q >"$T/pgbench-i.log" 2>&1
t_setup "pgbench -i -s 10" test $? -eq 0
pg_pgbench prim -T 15 -c 4 -j 2 >"$T/pgbench-T.log" 2>&1
t_setup "pgbench -T 15" test $? -eq 0
pg_sql prim "create table marker (v text, at timestamptz default now())" >/dev/null
LAST=$(switch_wal prim)
wait_archived prim "$LAST"
t_check "the archiver reaches $LAST" test $? -eq 0

read -r ARCHIVED FAILED LASTARCH <<<"$(pg_sql prim \
	"select archived_count, failed_count, last_archived_wal from pg_stat_archiver" | tr '|' ' ')"
t_eq "pg_stat_archiver.failed_count is 0" "$FAILED" 0
t_eq "last_archived_wal is the switched segment" "$LASTARCH" "$LAST"
t_check "walarchive.info exists in the cluster's tree" test -f "$ARCH/$SYSID/walarchive.info"
t_eq "objects in the archive = archived_count" "$(arch_names | wc -l)" "$ARCHIVED"
t_check "last_archived_wal is in the archive" arch_has "$LASTARCH"
# every segment from the first to the last, no gap
FIRST=$(arch_segments | head -n1)
expect=$(python3 -c '
import sys
a, b = sys.argv[1], sys.argv[2]
tli = a[:8]
f = int(a[8:16], 16) * 256 + int(a[16:], 16)
l = int(b[8:16], 16) * 256 + int(b[16:], 16)
for n in range(f, l + 1):
    print("%s%08X%08X" % (tli, n // 256, n % 256))' "$FIRST" "$LAST")
t_eq "every segment from $FIRST to $LAST archived, no gap" "$(arch_segments)" "$expect"
t_eq "the first segment is 000000010000000000000001" "$FIRST" 000000010000000000000001
NSEG=$(arch_segments | wc -l)
echo "# primary archived $NSEG segments"
t_setup "pgbench made at least 8 segments" test "$NSEG" -ge 8
missing=0
for f in "$(pg_data prim)"/pg_wal/archive_status/*.done; do
	n=$(basename "$f" .done)
	arch_has "$n" || { missing=$((missing + 1)); echo "# marked done but not archived: $n"; }
done
t_eq "every segment marked .done in pg_wal is in the archive" "$missing" 0
t_check "objects are compressed by default (.lz4)" \
	test -f "$ARCH/$SYSID/${LAST:0:16}/$LAST.lz4"
t_check "an archived object decodes with plain lz4 -d to the WAL file" \
	sh -c "lz4 -dc '$ARCH/$SYSID/${LAST:0:16}/$LAST.lz4' | cmp -s - '$(pg_data prim)/pg_wal/$LAST'"

# byte-identical: fetch each archived segment with walfetch and cmp
FD=$T/fetched
mkdir -p "$FD"; chown postgres:postgres "$FD"
bad=0; compared=0
for n in $(arch_segments); do
	if ! fetch_as_pg "$(pg_data prim)" "$n" "$FD/$n"; then
		bad=$((bad + 1)); echo "# walfetch $n failed"; continue
	fi
	if [ -f "$(pg_data prim)/pg_wal/$n" ]; then
		compared=$((compared + 1))
		cmp -s "$FD/$n" "$(pg_data prim)/pg_wal/$n" || { bad=$((bad + 1)); echo "# $n differs"; }
	fi
done
t_eq "walfetch returns every archived segment byte-identical to pg_wal ($compared compared)" "$bad" 0
t_setup "most segments were still in pg_wal to compare" test "$compared" -ge $((NSEG - 2))
ls "$FD" | grep -v -E '^[0-9A-F]{24}$' >"$T/leftover"
t_eq "walfetch leaves no temporary files" "$(cat "$T/leftover")" ""
# pg_waldump decodes every record of the fetched segments, from the first
# record of FIRST to the switch at the end of LAST (exit 0, no error)
out=$("$PGCLIENT/pg_waldump" -q -p "$FD" "$FIRST" "$LAST" 2>&1)
t_eq "pg_waldump reads every fetched segment from $FIRST to $LAST without error" "$?:$out" "0:"
"$PGCLIENT/pg_waldump" -p "$FD" --stats "$LAST" >"$T/waldump-last" 2>&1
t_match "pg_waldump finds the SWITCH record in the last fetched segment" "$(cat "$T/waldump-last")" "XLOG"
rm -rf "$FD"

# ---- 2. base backup, more load, point-in-time recovery --------------------

pg_take_basebackup prim bb1 -X none
t_check "base backup bb1 (-X none: all WAL must come from the archive)" test $? -eq 0
pg_pgbench prim -T 3 -c 2 >/dev/null 2>&1
pg_sql prim "insert into marker values ('before')" >/dev/null
pg_sql prim "select pg_create_restore_point('rp1')" >/dev/null
pg_sql prim "insert into marker values ('after')" >/dev/null
pg_pgbench prim -T 3 -c 2 >/dev/null 2>&1
LAST=$(switch_wal prim)
wait_archived prim "$LAST"
t_check "the archiver reaches $LAST after the backup" test $? -eq 0
t_check "the backup history file of bb1 is archived" sh -c "ls -R '$ARCH/$SYSID' | grep -q '\.backup'"

recovery_copy bb1 pitr "recovery_target_name = 'rp1'" "recovery_target_action = 'promote'"
pg_start pitr
t_setup "point-in-time recovery starts" test $? -eq 0
pg_wait_sql pitr 120 "select not pg_is_in_recovery()"
t_check "point-in-time recovery ends and promotes" test $? -eq 0
log_has "server log: WAL restored from the archive" pitr 'restored log file "0000000100000000000000[0-9A-F]{2}" from archive'
log_has "server log: recovery stopped at restore point rp1" pitr 'recovery stopping at restore point "rp1"'
t_eq "a row written before the target is there" "$(pg_sql pitr "select count(*) from marker where v = 'before'")" 1
t_eq "a row written after the target is not" "$(pg_sql pitr "select count(*) from marker where v = 'after'")" 0
t_eq "pgbench data is there" "$(pg_sql pitr "select count(*) from pgbench_accounts")" 1000000
pg_stop pitr immediate

# ---- 3. a standby fed only from the archive ---------------------------------

pg_prepare stby
cp -a "$(pg_data bb1)" "$(pg_data stby)"
pg_conf stby "port = $(pg_port stby)" "unix_socket_directories = '$(pg_sock stby)'" \
	"archive_mode = always" "archive_command = '$PUSH'" "restore_command = '$FETCH'" \
	"primary_conninfo = ''" "wal_retrieve_retry_interval = '500ms'"
as_pg touch "$(pg_data stby)/standby.signal"
pg_start stby
t_setup "standby starts" test $? -eq 0
pg_sql prim "insert into marker values ('standby1')" >/dev/null
LAST=$(switch_wal prim)
wait_archived prim "$LAST"
pg_wait_sql stby 60 "select count(*) = 1 from marker where v = 'standby1'"
t_check "standby catches up from the archive: a row written after the backup appears" test $? -eq 0
t_eq "standby is in recovery" "$(pg_sql stby "select pg_is_in_recovery()")" t
t_eq "standby has no WAL receiver (archive only)" "$(pg_sql stby "select count(*) from pg_stat_wal_receiver")" 0
# archive_mode = always: the standby pushes what it restored; identical -> exit 0
pg_wait_sql stby 60 "select archived_count > 0 from pg_stat_archiver"
t_check "standby (archive_mode = always) re-archives restored segments" test $? -eq 0
t_eq "standby pg_stat_archiver.failed_count is 0 (pushing identical segments succeeds)" \
	"$(pg_sql stby "select failed_count from pg_stat_archiver")" 0

# ---- 4. promotion: history file and .partial archived, timeline 2 ----------

# Failover: the primary fails with part of its current segment unarchived;
# the operator copies that segment into the standby's pg_wal.  The standby
# replays it, and promotion renames it to .partial and archives it (a segment
# restored from the archive is already archived, so it never becomes a
# .partial).  The filler makes the segments around the switch realistic.
pg_sql prim "insert into marker values ('standby2')" \
	"create table filler as select g, repeat('x', 40) as pad from generate_series(1, 300000) g" >/dev/null
pg_wait_sql prim 60 "select coalesce(last_archived_wal, '') >= pg_walfile_name(pg_current_wal_lsn() - 16777216) from pg_stat_archiver"
t_check "the primary archives the segments it filled" test $? -eq 0
pg_sql prim "insert into marker values ('in_partial')" >/dev/null
CUR=$(pg_sql prim "select pg_walfile_name(pg_current_wal_lsn())")
# every segment before CUR must be in the archive (the insert may have crossed a boundary)
pg_wait_sql prim 60 "select coalesce(last_archived_wal, '') >= pg_walfile_name(pg_current_wal_lsn() - 16777216) from pg_stat_archiver" ||
	t_fail "the primary archives every segment before $CUR"
pg_stop prim immediate
as_pg cp "$(pg_data prim)/pg_wal/$CUR" "$(pg_data stby)/pg_wal/$CUR"
pg_wait_sql stby 60 "select count(*) = 1 from marker where v = 'in_partial'"
t_check "standby replays the archive, then the failed primary's last segment $CUR" test $? -eq 0
t_eq "standby has the row written before the filler" \
	"$(pg_sql stby "select count(*) from marker where v = 'standby2'")" 1
as_pg "$PGBIN/pg_ctl" -D "$(pg_data stby)" -w -t 60 promote >/dev/null
t_check "standby promotes" test $? -eq 0
t_eq "promoted standby writes timeline 2" \
	"$(pg_sql stby "select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")" 00000002
pg_sql stby "insert into marker values ('tl2')" >/dev/null
L2=$(switch_wal stby)
t_wait 60 arch_has 00000002.history
t_check "00000002.history is archived" arch_has 00000002.history
t_wait 60 sh -c "find '$ARCH/$SYSID' -name '*.partial*' | grep -q ."
PARTIAL=$(arch_names | grep '\.partial$' | head -n1)
t_eq "the .partial segment of timeline 1 is archived" "$PARTIAL" "$CUR.partial"
wait_archived stby "$L2"
t_check "the promoted standby archives timeline 2 segments ($L2)" arch_has "$L2"
t_eq "promoted standby pg_stat_archiver.failed_count is 0" \
	"$(pg_sql stby "select failed_count from pg_stat_archiver")" 0
FD=$T/fetched2
mkdir -p "$FD"; chown postgres:postgres "$FD"
fetch_as_pg "$(pg_data stby)" 00000002.history "$FD/00000002.history"
t_check "walfetch returns 00000002.history identical to pg_wal's" \
	cmp -s "$FD/00000002.history" "$(pg_data stby)/pg_wal/00000002.history"
if [ -n "$PARTIAL" ] && [ -f "$(pg_data stby)/pg_wal/$PARTIAL" ]; then
	fetch_as_pg "$(pg_data stby)" "$PARTIAL" "$FD/$PARTIAL"
	t_check "walfetch returns the .partial identical to pg_wal's" \
		cmp -s "$FD/$PARTIAL" "$(pg_data stby)/pg_wal/$PARTIAL"
fi
rm -rf "$FD"

recovery_copy bb1 rec2 "recovery_target_timeline = 'latest'" "recovery_target_action = 'promote'"
pg_start rec2
t_setup "second recovery from bb1 starts" test $? -eq 0
pg_wait_sql rec2 120 "select not pg_is_in_recovery()"
t_check "second recovery ends" test $? -eq 0
log_has "server log: 00000002.history restored" rec2 'restored log file "00000002.history" from archive'
log_has "server log: timeline 2 segments restored" rec2 'restored log file "00000002[0-9A-F]{16}" from archive'
t_eq "the row from the .partial's timeline 1 part is there" "$(pg_sql rec2 "select count(*) from marker where v = 'in_partial'")" 1
t_eq "the row written on timeline 2 is there" "$(pg_sql rec2 "select count(*) from marker where v = 'tl2'")" 1
pg_stop rec2 immediate

# ---- 5. walprune --keep-backups 1 after two base backups -------------------

# pg_basebackup -X none waits for its WAL to be archived: with a stuck
# archiver it would hang, so stop here (counted as a failure above)
if [ "$(pg_sql stby "select failed_count from pg_stat_archiver")" != 0 ] || ! arch_has "$L2"; then
	t_fail "walprune section not run: the promoted standby does not archive"
	t_done
fi

pg_take_basebackup stby bb2 -X none
t_setup "base backup bb2" test $? -eq 0
pg_pgbench stby -T 3 -c 2 >/dev/null 2>&1
switch_wal stby >/dev/null
pg_take_basebackup stby bb3 -X none
t_setup "base backup bb3" test $? -eq 0
pg_sql stby "insert into marker values ('after_bb3')" >/dev/null
LAST=$(switch_wal stby)
wait_archived stby "$LAST"
t_check "the archiver reaches $LAST" test $? -eq 0
BB3_LABEL=$(as_pg cat "$(pg_data bb3)/backup_label")
BB3_START=$(printf '%s\n' "$BB3_LABEL" | sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]\{24\}\)).*/\1/p')
t_match "bb3's start segment is on timeline 2" "$BB3_START" '^00000002[0-9A-F]{16}$'
BACKUP=$(arch_names | grep '\.backup$' | grep "^$BB3_START\." | head -n1)
t_check "bb3's backup history file is archived" test -n "$BACKUP"
t_eq "the archive has three backup history files" "$(arch_names | grep -c '\.backup$')" 3

before=$(arch_names)
as_pg "$BIN/walprune" -c "$CONF" --keep-backups 1 --dry-run >"$T/dry.out" 2>"$T/dry.err"
t_eq "walprune --keep-backups 1 --dry-run exits 0" "$?" 0
t_eq "the dry run removes nothing" "$(arch_names)" "$before"
t_check "the dry run lists segments it would remove" grep -q 000000010000000000000001 "$T/dry.out" "$T/dry.err"
as_pg "$BIN/walprune" -c "$CONF" --keep-backups 1 >"$T/prune.out" 2>"$T/prune.err"
t_eq "walprune --keep-backups 1 exits 0" "$?" 0
echo "# walprune: $(cat "$T/prune.out" "$T/prune.err" | tail -n 2 | tr '\n' ' ')"
OLDEST=$(arch_segments | sort -k1.9 | head -n1)
t_eq "the oldest remaining segment is bb3's start segment" "$OLDEST" "$BB3_START"
t_eq "no segment or partial sorting before it remains, on any timeline" \
	"$(arch_names | grep -E '^[0-9A-F]{24}(\.partial)?$' | awk -v h="${BB3_START:8}" 'substr($0, 9, 16) < h')" ""
expect=$(python3 -c '
import sys
a, b = sys.argv[1], sys.argv[2]
f = int(a[8:16], 16) * 256 + int(a[16:], 16)
l = int(b[8:16], 16) * 256 + int(b[16:], 16)
for n in range(f, l + 1):
    print("%s%08X%08X" % (a[:8], n // 256, n % 256))' "$BB3_START" "$LAST")
t_eq "every segment from bb3's start to the last one is kept" \
	"$(arch_segments | grep '^00000002')" "$expect"
t_check "00000002.history is kept" arch_has 00000002.history
t_check "bb3's backup history file is kept" arch_has "$BACKUP"
removed=$(comm -23 <(echo "$before") <(arch_names) | wc -l)
t_check "walprune removed something ($removed objects)" test "$removed" -gt 0

recovery_copy bb3 rec3 "recovery_target_timeline = 'latest'" "recovery_target_action = 'promote'"
pg_start rec3
t_setup "recovery from bb3 after pruning starts" test $? -eq 0
pg_wait_sql rec3 120 "select not pg_is_in_recovery()"
t_check "recovery from bb3 after pruning ends" test $? -eq 0
t_eq "the row written after bb3 is there" "$(pg_sql rec3 "select count(*) from marker where v = 'after_bb3'")" 1
log_has "server log: archive recovery complete" rec3 'archive recovery complete'
pg_stop rec3 immediate
pg_stop stby fast

t_done
