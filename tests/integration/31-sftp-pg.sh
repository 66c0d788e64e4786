#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# End to end over SFTP with real PostgreSQL 15: a primary whose
# archive_command pushes to a private sshd under pgbench (and keeps running,
# without an archiver crash, while sshd is down), then a point-in-time
# recovery whose restore_command fetches over SFTP and stops at its target;
# between them walcheck over SFTP (--switch-wal, continuity, --deep).

. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"
. "$(dirname "$0")/../lib/wal.sh"
. "$(dirname "$0")/../lib/sshd.sh"

BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
for p in walpush walfetch walcheck; do
	[ -x "$BIN/$p" ] || { t_fail "$BIN/$p is not installed"; t_done; }
done

D=$T/sshd
SARCH=$T/sftp-archive
CONF=$T/walarchive.conf
sshd_setup "$D" postgres || { t_fail "sshd setup"; t_done; }
sshd_start "$D" || { t_fail "sshd start"; t_done; }
sshd_known_hosts "$D" || { t_fail "ssh-keyscan"; t_done; }
mkdir -p "$SARCH"
chown "$SSHD_USER" "$SARCH"
chmod 700 "$SARCH"
walarchive_conf "$CONF" "archive=$(sshd_url "$D" "$SARCH")" "ssh_key=$D/id_ed25519" \
	"ssh_known_hosts=$D/known_hosts" "timeout=10" "retries=1"
PUSH="$BIN/walpush -c $CONF %p %f"
FETCH="$BIN/walfetch -c $CONF %f %p"

# arch_names (tests/lib/wal.sh): the server's side, without temporary names
ARCH=$SARCH ARCH_HIDE_TMP=1
WAIT_ARCHIVED_SECS=120

# ---- a primary archiving over SFTP under pgbench ----------------------------
pg_new prim || { t_fail "initdb"; t_done; }
pg_conf prim "archive_mode = on" "archive_command = '$PUSH'" "wal_level = replica" \
	"checkpoint_timeout = 30min" "archive_timeout = 0"
pg_start prim || { t_fail "primary starts"; t_done; }
SYSID=$(pg_sql prim "select system_identifier from pg_control_system()")

pg_pgbench prim -i -s 10 -q >"$T/pgbench-i.log" 2>&1
t_setup "pgbench -i -s 10" test $? -eq 0
pg_pgbench prim -T 10 -c 4 -j 2 >"$T/pgbench-T.log" 2>&1
t_setup "pgbench -T 10 while archiving over sftp" test $? -eq 0
pg_sql prim "create table marker (v text)" >/dev/null
LAST=$(switch_wal prim)
wait_archived prim "$LAST"
t_check "the archiver reaches $LAST over sftp" test $? -eq 0
read -r ARCHIVED FAILED <<<"$(pg_sql prim "select archived_count, failed_count from pg_stat_archiver" | tr '|' ' ')"
t_eq "pg_stat_archiver.failed_count is 0" "$FAILED" 0
t_eq "objects on the server = archived_count" "$(arch_names | wc -l)" "$ARCHIVED"
FIRST=$(arch_segments | head -n1)
expect=$(python3 -c '
import sys
a, b = sys.argv[1], sys.argv[2]
f = int(a[8:16], 16) * 256 + int(a[16:], 16)
l = int(b[8:16], 16) * 256 + int(b[16:], 16)
for n in range(f, l + 1):
    print("%s%08X%08X" % (a[:8], n // 256, n % 256))' "$FIRST" "$LAST")
t_eq "every segment from $FIRST to $LAST is on the server, no gap" "$(arch_segments)" "$expect"
echo "# primary archived $(arch_segments | wc -l) segments over sftp"
bad=0
for n in $(arch_segments); do
	f=$(pg_data prim)/pg_wal/$n
	[ -f "$f" ] || continue
	lz4 -dc "$SARCH/$SYSID/${n:0:16}/$n.lz4" | cmp -s - "$f" || bad=$((bad + 1))
done
t_eq "each object on the server decodes to the segment in pg_wal" "$bad" 0
t_eq "no temporary upload is left on the server" "$(find "$SARCH" -name '.*.tmp' | wc -l)" 0

# ---- sshd down: archiving fails cleanly, then catches up --------------------
sshd_kill "$D" KILL
pg_sql prim "insert into marker values ('while_down')" >/dev/null
DOWN=$(switch_wal prim)
pg_wait_sql prim 60 "select failed_count > 0 and last_failed_wal = '$DOWN' from pg_stat_archiver"
t_check "with sshd down the archiver records a failure of $DOWN" test $? -eq 0
LOG=$(cat "$(pg_dir prim)/server.log")
t_match "server log: archive command failed with an ordinary exit code" "$LOG" \
	'archive command failed with exit code ([1-9]|[1-9][0-9]|1[01][0-9]|12[0-5])$'
t_match "walpush says why in the server log" "$LOG" 'walpush: .*(cannot connect|connection)'
if printf '%s' "$LOG" | grep -Eq 'terminated by signal|archiver process .* exited'; then
	t_fail "the archiver did not crash (server log shows a crash)"
else
	t_ok "the archiver did not crash"
fi
sshd_restart "$D"
wait_archived prim "$DOWN"
t_check "after sshd is back the archiver catches up with $DOWN" test $? -eq 0

# ---- point-in-time recovery fetching over SFTP ------------------------------
pg_take_basebackup prim bb1 -X none
t_check "base backup (-X none: all WAL must come over sftp)" test $? -eq 0
pg_pgbench prim -T 3 -c 2 >/dev/null 2>&1
pg_sql prim "insert into marker values ('before')" >/dev/null
pg_sql prim "select pg_create_restore_point('rp1')" >/dev/null
pg_sql prim "insert into marker values ('after')" >/dev/null
pg_pgbench prim -T 3 -c 2 >/dev/null 2>&1
LAST=$(switch_wal prim)
wait_archived prim "$LAST"
t_check "the archiver reaches $LAST after the backup" test $? -eq 0

# ---- walcheck over SFTP -----------------------------------------------------
# the probe, --switch-wal and the continuity from bb1's start, then every
# object read back and verified by --deep's workers, each on its own session
as_pg "$BIN/walcheck" -c "$CONF" -D "$(pg_data prim)" --switch-wal >"$T/check.out" 2>"$T/check.err"
t_eq "walcheck --switch-wal over sftp: exit 0" "$?" 0 || sed 's/^/# /' "$T/check.out" "$T/check.err"
t_match "the probe was written, read back and removed over sftp" "$(cat "$T/check.out")" \
	'^reachable: +yes: connect [0-9.]+ ms, write [0-9.]+ ms, read [0-9.]+ ms, remove [0-9.]+ ms'
t_match "the switched segment reached the server" "$(cat "$T/check.out")" '^switch-wal: +[0-9A-F]{24} archived after'
t_match "continuity from the base backup, every segment present" "$(cat "$T/check.out")" \
	'^continuity: +timeline 1, from [0-9A-F]{24} \(oldest backup\) to [0-9A-F]{24}: ([0-9]+) of \1 segments present'
t_eq "no probe is left on the server" "$(find "$SARCH" -name '.walcheck-probe*' | wc -l)" 0
as_pg "$BIN/walcheck" -c "$CONF" --deep --set parallel=4 >"$T/check.out" 2>"$T/check.err"
t_eq "walcheck --deep over sftp: exit 0" "$?" 0 || sed 's/^/# /' "$T/check.out" "$T/check.err"
t_match "--deep read every object" "$(cat "$T/check.out")" \
	"^deep: +$(find "$SARCH/$SYSID" -type f ! -name '.*' ! -name walarchive.info | wc -l) objects verified, 0 corrupt"
pg_stop prim fast

pg_prepare pitr
cp -a "$(pg_data bb1)" "$(pg_data pitr)"
pg_conf pitr "port = $(pg_port pitr)" "unix_socket_directories = '$(pg_sock pitr)'" \
	"archive_mode = off" "restore_command = '$FETCH'" \
	"recovery_target_name = 'rp1'" "recovery_target_action = 'promote'"
as_pg touch "$(pg_data pitr)/recovery.signal"
pg_start pitr
t_setup "point-in-time recovery starts" test $? -eq 0
pg_wait_sql pitr 180 "select not pg_is_in_recovery()"
t_check "point-in-time recovery over sftp ends and promotes" test $? -eq 0
LOG=$(cat "$(pg_dir pitr)/server.log")
NREST=$(printf '%s\n' "$LOG" | grep -c 'restored log file "0000000100000000000000[0-9A-F]\{2\}" from archive')
t_check "server log: segments restored from the sftp archive ($NREST)" test "$NREST" -ge 2
t_match "server log: recovery stopped at restore point rp1" "$LOG" 'recovery stopping at restore point "rp1"'
t_eq "a row written before the target is there" "$(pg_sql pitr "select count(*) from marker where v = 'before'")" 1
t_eq "a row written after the target is not" "$(pg_sql pitr "select count(*) from marker where v = 'after'")" 0
t_eq "the row archived while sshd was down is there" \
	"$(pg_sql pitr "select count(*) from marker where v = 'while_down'")" 1
t_eq "pgbench data is there" "$(pg_sql pitr "select count(*) from pgbench_accounts")" 1000000
t_eq "walfetch left no temporary file in pg_wal" \
	"$(find "$(pg_data pitr)/pg_wal" -maxdepth 1 -name '*.tmp' | wc -l)" 0
pg_stop pitr immediate

t_done
