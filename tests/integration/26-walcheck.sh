#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# walcheck against real PostgreSQL 15 clusters archiving into one local
# tree: a primary (timeline 1) with a base backup, a standby promoted
# (timeline 2) that goes on writing past a restore point, and a
# point-in-time recovery to that point (timeline 3).  Healthy, then objects
# removed or damaged by hand, a missing history file, archive_command
# removed, --switch-wal with a working and a failing archiver, --max-age on
# an idle and on a stuck primary, the programs' status records, a spool_dir
# that is not usable, --json and --metrics read by real parsers, a new
# archive, an unreachable one.

. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"

BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
ARCH=$T/archive
CONF=$T/walarchive.conf
for p in walpush walfetch walcheck; do
	[ -x "$BIN/$p" ] || { t_fail "$BIN/$p is not installed"; t_done; }
done
mkdir -p "$ARCH" "$T/spool" "$T/out"
chown postgres:postgres "$ARCH" "$T/spool" "$T/out"
chmod 700 "$T/spool"
walarchive_conf "$CONF" "archive=$ARCH" "spool_dir=$T/spool"
PUSH="$BIN/walpush -c $CONF %p %f"
FETCH="$BIN/walfetch -c $CONF %f %p"
PY=/usr/bin/python3

# walcheck ARGS... as postgres: stdout in $T/out/check.out, stderr in check.err; returns its exit
walcheck() {
	as_pg "$BIN/walcheck" -c "$CONF" "$@" >"$T/out/check.out" 2>"$T/out/check.err"
}
check_out() { cat "$T/out/check.out" "$T/out/check.err"; }
obj() { find "$ARCH/$SYSID" -name "$1*" | head -n1; }

# ---- the archive: timelines 1, 2 and 3 --------------------------------------

pg_new prim || { t_fail "initdb"; t_done; }
pg_conf prim "archive_mode = on" "archive_command = '$PUSH'" "wal_level = replica"
t_setup "primary starts" pg_start prim || t_done
SYSID=$(pg_sql prim "select system_identifier from pg_control_system()")
pg_pgbench prim -i -s 2 -q >/dev/null 2>&1
t_setup "pgbench -i" test $? -eq 0
switch_wal prim >/dev/null
t_setup "base backup bb1" pg_take_basebackup prim bb1 -X none || t_done
for i in 1 2 3; do
	pg_sql prim "insert into pgbench_history values (1, 1, 1, $i, now())" >/dev/null
	LAST=$(switch_wal prim)
done
t_setup "the primary archives $LAST" wait_archived prim "$LAST"
pg_stop prim fast

# a standby from bb1, fed from the archive, promoted: timeline 2
pg_prepare stby
cp -a "$(pg_data bb1)" "$(pg_data stby)"
pg_conf stby "port = $(pg_port stby)" "unix_socket_directories = '$(pg_sock stby)'" \
	"archive_mode = on" "archive_command = '$PUSH'" "restore_command = '$FETCH'" \
	"primary_conninfo = ''"
as_pg touch "$(pg_data stby)/standby.signal"
t_setup "standby starts" pg_start stby || t_done
pg_wait_sql stby 60 "select count(*) = 3 from pgbench_history"
t_setup "the standby replays the archive" test $? -eq 0
as_pg "$PGBIN/pg_ctl" -D "$(pg_data stby)" -w -t 60 promote >/dev/null
t_setup "the standby promotes" test $? -eq 0
pg_sql stby "insert into pgbench_history values (2, 2, 2, 2, now())" >/dev/null
pg_sql stby "select pg_create_restore_point('rp2')" >/dev/null
switch_wal stby >/dev/null
# timeline 2 goes on past the restore point: segments no recovery to 3 needs
for i in 1 2 3; do
	pg_sql stby "insert into pgbench_history values (2, 2, 2, 9$i, now())" >/dev/null
	LAST=$(switch_wal stby)
done
t_setup "timeline 2 archives $LAST" wait_archived stby "$LAST"
pg_stop stby fast

# a point-in-time recovery of bb1 to rp2 on timeline 2: timeline 3
pg_prepare pitr
cp -a "$(pg_data bb1)" "$(pg_data pitr)"
pg_conf pitr "port = $(pg_port pitr)" "unix_socket_directories = '$(pg_sock pitr)'" \
	"archive_mode = on" "archive_command = '$PUSH'" "restore_command = '$FETCH'" \
	"recovery_target_name = 'rp2'" "recovery_target_timeline = 'latest'" \
	"recovery_target_action = 'promote'"
as_pg touch "$(pg_data pitr)/recovery.signal"
t_setup "point-in-time recovery starts" pg_start pitr || t_done
pg_wait_sql pitr 120 "select not pg_is_in_recovery()"
t_setup "point-in-time recovery promotes" test $? -eq 0
t_eq "the recovery is on timeline 3" \
	"$(pg_sql pitr "select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")" 00000003
for i in 1 2; do
	pg_sql pitr "insert into pgbench_history values (3, 3, 3, $i, now())" >/dev/null
	LAST=$(switch_wal pitr)
done
t_setup "timeline 3 archives $LAST" wait_archived pitr "$LAST"
t_check "00000003.history is archived" test -n "$(obj 00000003.history)"
echo "# archive: $(find "$ARCH/$SYSID" -type f | sed 's|.*/||' | sort | tr '\n' ' ')"

# ---- healthy ----------------------------------------------------------------

walcheck
t_eq "a healthy archive: exit 0" "$?" 0
echo "$(check_out)" | sed 's/^/# /'
t_match "it names the cluster" "$(check_out)" "cluster $SYSID"
t_match "it follows timeline 3 from the backup's start" "$(check_out)" \
	'continuity: +timeline 3, from 00000001[0-9A-F]{16} \(oldest backup\)'
t_match "timeline 2's segments past the switch to 3 are present, not needed, no gap" \
	"$(check_out)" 'present: +timeline 2'
t_check "no gap reported" sh -c "! grep -q '^gap' '$T/out/check.out'"
t_check "the probe is gone" sh -c "! find '$ARCH' -name '.walcheck-probe*' | grep -q ."

# the status records walpush (archive_command) and walfetch (restore_command)
# left in the spool: walcheck reports each program's last success
walcheck --json
t_check "--json reports walpush's and walfetch's last success from their status records" \
	$PY -c 'import json,sys,time; s=json.load(open(sys.argv[1]))["status"]
for p in ("walpush", "walfetch"):
    ok = s[p]["last_success"]; assert ok and ok["exit_code"] == 0, (p, s[p])
    assert ok["file"] and 0 <= time.time() - ok["at"] < 3600, (p, ok)' "$T/out/check.out"
walcheck
t_match "the report gives walpush's last success" "$(cat "$T/out/check.out")" \
	'^walpush +last success 20[0-9-]+ [0-9:]+ UTC, last failure '

# push-ahead and fetch-ahead off only because spool_dir is not usable: said loudly, still healthy
walcheck --set "spool_dir=$T/nospool"
t_eq "a spool_dir that is not there: exit 0 (the archive works)" "$?" 0
t_eq "a warning on stderr says that push-ahead and fetch-ahead are off, and how to fix it" \
	"$(cat "$T/out/check.err")" \
	"walcheck: warning: spool $T/nospool: not a writable directory: push-ahead and fetch-ahead are off (install -d -o postgres -m 700 $T/nospool)"
t_match "the report says the spool is not usable" "$(cat "$T/out/check.out")" \
	'^spool: +NOT usable: push-ahead and fetch-ahead are off'
walcheck --set "spool_dir=$T/nospool" --set push_ahead=0 --set fetch_ahead=0
t_eq "neither push-ahead nor fetch-ahead configured: no spool warning" \
	"$?:$(cat "$T/out/check.err")" "0:"

walcheck -D "$(pg_data pitr)"
t_eq "with -D of the running primary: exit 0" "$?" 0
t_match "it asks the server" "$(check_out)" "postgresql: +primary 15[0-9]+, wal_level replica, archive_mode on"

walcheck -D "$(pg_data pitr)" --switch-wal --timeout 60
t_eq "--switch-wal: exit 0" "$?" 0
t_match "--switch-wal waits until the segment is archived" "$(check_out)" \
	'switch-wal: +00000003[0-9A-F]{16} archived after'
# idle since that switch: the newest segment ages, but no WAL waits to be archived
sleep 2
walcheck -D "$(pg_data pitr)" --max-age 1
t_eq "--max-age 1 on an idle primary that archived its last segment: exit 0" "$?" 0

# ---- --json and --metrics, read by real parsers -----------------------------

walcheck -D "$(pg_data pitr)" --json --metrics "$T/out/walarchive.prom"
t_eq "--json --metrics: exit 0" "$?" 0
t_check "--json is one document Python's json reads, healthy, with timeline 3" \
	$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["healthy"] is True, d; assert d["continuity"]["timeline"]==3; assert d["continuity"]["gaps"]==[]; assert d["system_id"]==sys.argv[2]' \
	"$T/out/check.out" "$SYSID"
t_check "--metrics is Prometheus text prometheus_client parses, with the metrics" \
	$PY -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
m = {s.name: s.value for f in text_string_to_metric_families(open(sys.argv[1]).read()) for s in f.samples}
for k in ("walarchive_up", "walarchive_healthy", "walarchive_gaps", "walarchive_corrupt_objects",
          "walarchive_segments", "walarchive_bytes", "walarchive_newest_segment_age_seconds",
          "walarchive_backlog_files", "walarchive_last_success_timestamp_seconds",
          "walarchive_last_failure_timestamp_seconds"):
    assert k in m, k
assert m["walarchive_up"] == 1 and m["walarchive_healthy"] == 1 and m["walarchive_gaps"] == 0
assert m["walarchive_segments"] >= 10, m["walarchive_segments"]
' "$T/out/walarchive.prom"
t_eq "the metrics file is left with no temporary file beside it" \
	"$(ls -A "$T/out" | grep -c '^\.')" 0

# ---- damage by hand ----------------------------------------------------------

# a segment of timeline 1 between the backup and the switch to 2
BB1_START=$(sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]\{24\}\)).*/\1/p' "$(pg_data bb1)/backup_label")
N=$((16#${BB1_START:16:8} + 1))
GONE=$(printf '%s%08X' "${BB1_START:0:16}" "$N")
F=$(obj "$GONE")
mv "$F" "$T/out/saved"
walcheck
t_eq "a segment removed by hand: exit 9" "$?" 9
t_match "the gap is named" "$(cat "$T/out/check.err")" "gap: timeline 1: $GONE missing \(1 segment\)"
t_match "the report names a gap of one segment once" "$(check_out)" "gap: +timeline 1: $GONE\$"
walcheck --json
t_check "--json lists the gap" $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); g=d["continuity"]["gaps"]; assert d["healthy"] is False and len(g)==1 and g[0]["first"]==sys.argv[2], g' "$T/out/check.out" "$GONE"
mv "$T/out/saved" "$F"

walcheck --from "${BB1_START:0:16}00000000"
t_eq "--from before the first segment: exit 9" "$?" 9
t_match "--from: the segments before the first archived one are a gap" "$(cat "$T/out/check.err")" \
	"gap: timeline 1: ${BB1_START:0:16}00000000"

# a damaged object: only --deep reads it
F=$(find "$ARCH/$SYSID" -name '00000003*.lz4' ! -name '*.history*' | sort | tail -n1)
cp -p "$F" "$T/out/saved"
size=$(stat -c %s "$F")
printf '\x5a' | dd of="$F" bs=1 seek=$((size / 2)) conv=notrunc status=none
cmp -s "$F" "$T/out/saved" || printf '\x5b' | dd of="$F" bs=1 seek=$((size / 2)) conv=notrunc status=none
walcheck
t_eq "a damaged object, without --deep: exit 0 (nothing read)" "$?" 0
walcheck --deep
t_eq "a damaged object, --deep: exit 9" "$?" 9
t_match "--deep names it" "$(cat "$T/out/check.err")" "corrupt: .*${F#$ARCH/}"
t_match "--deep verified the others" "$(check_out)" 'deep: +[0-9]+ objects verified, 1 corrupt'
cp -p "$T/out/saved" "$F"
walcheck --deep
t_eq "every object good again, --deep: exit 0" "$?" 0

# a missing history file
F=$(obj 00000002.history)
mv "$F" "$T/out/saved"
walcheck
t_eq "00000002.history removed: exit 9" "$?" 9
t_match "the missing history is a gap" "$(cat "$T/out/check.err")" "gap: timeline 2: 00000002.history is missing"
mv "$T/out/saved" "$F"

# ---- PostgreSQL not wired ------------------------------------------------------

pg_sql pitr "alter system set archive_command = ''" "select pg_reload_conf()" >/dev/null
sleep 0.5
walcheck -D "$(pg_data pitr)"
t_eq "archive_command removed: exit 10" "$?" 10
t_match "it names archive_command" "$(cat "$T/out/check.err")" "archive_command is not set"

# an archiver that fails: what waits is not a gap; --switch-wal reports the failure
pg_sql pitr "alter system set archive_command = 'false walpush %p %f'" "select pg_reload_conf()" >/dev/null
sleep 0.5
pg_sql pitr "insert into pgbench_history values (3, 3, 3, 9, now())" >/dev/null
STUCK=$(switch_wal pitr)
walcheck -D "$(pg_data pitr)"
t_eq "a failing archiver, segments waiting in pg_wal: exit 0" "$?" 0
t_match "the waiting segment is said to wait" "$(check_out)" "gap: +timeline 3: $STUCK \(waiting in pg_wal"
walcheck -D "$(pg_data pitr)" --switch-wal --timeout 3
t_eq "--switch-wal with a failing archiver: exit 10" "$?" 10
t_match "it reports pg_stat_archiver's last failure" "$(cat "$T/out/check.err")" \
	"--switch-wal: 00000003[0-9A-F]{16} not in the archive after 3 s; PostgreSQL's archiver last failed on 00000003[0-9A-F]{16} at 20"
walcheck -D "$(pg_data pitr)" --max-age 1
t_eq "--max-age 1 with nothing archived since: exit 11" "$?" 11
# an archiver that succeeds into another place: it has not failed, and says what it archived
pg_sql pitr "select pg_stat_reset_shared('archiver')" \
	"alter system set archive_command = '/bin/true'" "select pg_reload_conf()" >/dev/null
sleep 0.5
walcheck -D "$(pg_data pitr)" --switch-wal --timeout 3
t_eq "--switch-wal with an archiver that stores elsewhere: exit 9 (what it took is a gap)" "$?" 9
t_match "the segment it marked archived is a gap, not waiting" "$(cat "$T/out/check.err")" \
	"gap: timeline 3: $STUCK missing"
t_match "it says the archiver has not failed and what it last archived" "$(cat "$T/out/check.err")" \
	"--switch-wal: 00000003[0-9A-F]{16} not in the archive after 3 s; PostgreSQL's archiver has not failed and last archived 00000003[0-9A-F]{16}: does archive_command store into this archive\\?"
# what /bin/true took is pushed by hand, so that the tree stays complete
for f in "$(pg_data pitr)"/pg_wal/00000003????????????????; do
	[ -e "$(pg_data pitr)/pg_wal/archive_status/${f##*/}.done" ] && as_pg $BIN/walpush -c "$CONF" "$f" "${f##*/}"
done
pg_sql pitr "alter system reset archive_command" "select pg_reload_conf()" >/dev/null
pg_stop pitr fast

# a standby: restore_command must run walfetch
pg_prepare stby2
cp -a "$(pg_data bb1)" "$(pg_data stby2)"
pg_conf stby2 "port = $(pg_port stby2)" "unix_socket_directories = '$(pg_sock stby2)'" \
	"archive_mode = on" "archive_command = ''" "restore_command = '$FETCH'" \
	"primary_conninfo = ''" "recovery_target_timeline = 'latest'"
as_pg touch "$(pg_data stby2)/standby.signal"
t_setup "a standby of bb1 starts" pg_start stby2 || t_done
pg_wait_sql stby2 60 "select pg_is_in_recovery()"
walcheck -D "$(pg_data stby2)"
t_eq "a standby restoring with walfetch: exit 0" "$?" 0
t_match "it is seen as a standby" "$(check_out)" "postgresql: +standby 15[0-9]+"
pg_sql stby2 "alter system set restore_command = 'cp /nonexistent/%f %p'" "select pg_reload_conf()" >/dev/null
sleep 0.5
walcheck -D "$(pg_data stby2)"
t_eq "a standby whose restore_command does not run walfetch: exit 10" "$?" 10
t_match "it names restore_command" "$(cat "$T/out/check.err")" "restore_command 'cp /nonexistent/%f %p' does not run walfetch"
pg_stop stby2 immediate

# ---- a new archive; an unreachable one -----------------------------------------

mkdir -p "$T/empty"; chown postgres:postgres "$T/empty"
walcheck --set "archive=$T/empty"
t_eq "an empty new archive: exit 0" "$?" 0
t_match "it says no WAL yet" "$(check_out)" "no WAL archived"
walcheck --set "archive=$T/empty" -D "$(pg_data bb1)"
t_eq "an empty archive, cluster known from pg_control: exit 0" "$?" 0
t_eq "the probe leaves nothing behind in an empty archive" "$(ls -A "$T/empty")" ""
walcheck --set "archive=$T/nonexistent" --metrics "$T/out/down.prom"
t_eq "an archive directory that is not there: exit 6" "$?" 6
t_check "the metrics still say so: walarchive_up 0" $PY -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
m = {s.name: s.value for f in text_string_to_metric_families(open(sys.argv[1]).read()) for s in f.samples}
assert m["walarchive_up"] == 0 and m["walarchive_healthy"] == 0, m
' "$T/out/down.prom"
PORT=$(t_free_port)
walcheck --set "archive=sftp://nobody@127.0.0.1:$PORT/wal" --set timeout=2 --set retries=0
t_eq "an SFTP server that does not answer: exit 6" "$?" 6
t_match "one line says what failed" "$(cat "$T/out/check.err")" "127.0.0.1"
walcheck --no-such-option
t_eq "an unknown option: exit 2" "$?" 2
t_eq "one message for an unknown option" "$(cat "$T/out/check.err")" \
	"walcheck: --no-such-option: unknown option (see walcheck --help)"
walcheck --set "archive=$T/empty" --set no_such_setting=1
t_eq "an unknown setting: exit 3 (bad configuration)" "$?" 3
t_eq "one message names the setting" "$(cat "$T/out/check.err")" \
	'walcheck: --set: unknown setting "no_such_setting"'

t_done
