#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# replinit on PostgreSQL 15 (Debian): a primary from initdb defaults is set
# up by `replinit primary`, a standby made by `replinit standby --start`
# streams rows and, with streaming cut, restores from the archive.  Bad
# input (no pg_hba entry, wrong password, unreachable primary, directory in
# use or not empty, too few wal senders) gives one clear message and leaves
# nothing half-done; --dry-run changes nothing; a second run does nothing.
# Names that would inject a pg_hba rule or a conninfo keyword are refused
# with exit 2 and nothing changed; other odd role names are quoted as the
# server reads them; a pg_hba.conf the server refuses is rolled back; two
# runs in one second keep two backups; the passfile is created 0600.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"

R=$WALARCHIVE_BIN/replinit
T=$WALARCHIVE_TMP
: "${REPLINIT_PGBIN:=$PGBIN}"       # server binaries of the version under test
: "${REPLINIT_INITDB_OPTS:=}"

md5() { md5sum "$1" | cut -d' ' -f1; }
# replinit, walpush and walfetch read this unless -c names another file
export WALARCHIVE_CONFIG=$T/walarchive.conf
# replinit_run (tests/lib/pg.sh): replinit as postgres; output in $out, exit code in $rc

mkdir -p "$T/archive" "$T/s"
chown postgres:postgres "$T/archive" "$T/s"
walarchive_conf "$T/walarchive.conf" "archive=$T/archive" "compress=none"
echo 'correct horse battery' > "$T/pw"
echo 'wrong horse' > "$T/badpw"
chown postgres:postgres "$T/pw" "$T/badpw"
chmod 600 "$T/pw" "$T/badpw"

# the primary: initdb defaults, password auth over TCP, and no replication entry
# in pg_hba.conf (as on a server that never had a standby)
PGBIN=$REPLINIT_PGBIN pg_new p --auth-host=scram-sha-256 $REPLINIT_INITDB_OPTS || { t_fail "initdb"; t_done; }
sed -i '/^host *replication/d' "$(pg_data p)/pg_hba.conf"
PGBIN=$REPLINIT_PGBIN pg_start p || { t_fail "start primary"; t_done; }
PPORT=$(pg_port p)
PCONN="host=$(pg_sock p) port=$PPORT user=postgres dbname=postgres"
HBA=$(pg_data p)/pg_hba.conf
AUTO=$(pg_data p)/postgresql.auto.conf
SDATA=$T/s/data
SPORT=$(t_free_port)
VERSION=$(pg_sql p "SHOW server_version_num")
STANDBY_ARGS=(standby --primary "127.0.0.1:$PPORT" --pgdata "$SDATA" --password-file "$T/pw"
	-c "$T/walarchive.conf" --port "$SPORT" --pg-bin "$REPLINIT_PGBIN" --slot standby1 --timeout 60)
t_cleanup "as_pg $REPLINIT_PGBIN/pg_ctl -D $SDATA -m immediate -w stop"

# --- bad input before the primary is set up: no pg_hba entry for replication
replinit_run standby --primary "127.0.0.1:$PPORT" --pgdata "$SDATA" --password-file "$T/pw"
t_eq "no pg_hba entry: non-zero exit" "$([ $rc -ne 0 ] && echo fail)" "fail"
t_match "no pg_hba entry: says so and what to run" "$out" \
	'^replinit: primary 127.0.0.1:[0-9]+: no pg_hba.conf entry for replication connection.*run replinit primary --standby'
t_check "no pg_hba entry: no standby directory left" test ! -e "$SDATA"
t_eq "no pg_hba entry: one line of output" "$(printf '%s\n' "$out" | grep -c .)" "1"

# --- primary: --dry-run prints the plan and changes nothing
HBA_SUM=$(md5 "$HBA"); AUTO_SUM=$(md5 "$AUTO")
replinit_run primary -d "$PCONN" --standby 127.0.0.1 --password-file "$T/pw" -c "$T/walarchive.conf" --dry-run
t_eq "primary dry run: exit 0" "$rc" 0
t_match "primary dry run: step 1 creates the role" "$out" "replinit: 1\. create role replicator with REPLICATION LOGIN and a scram-sha-256 password"
t_match "primary dry run: archive_mode planned" "$out" "ALTER SYSTEM SET archive_mode = 'on'"
t_match "primary dry run: walpush planned" "$out" "ALTER SYSTEM SET archive_command = '.*walpush -c $T/walarchive.conf %p %f'"
t_match "primary dry run: pg_hba line planned" "$out" "append to $HBA: host +replication +replicator 127.0.0.1/32 scram-sha-256"
if [ "$VERSION" -ge 130000 ]; then
	t_match "primary dry run: wal_keep_size, not wal_keep_segments" "$out" "wal_keep_size = '1GB'"
	t_eq "primary dry run: no wal_keep_segments" "$(printf '%s' "$out" | grep -c wal_keep_segments)" 0
else
	t_match "primary dry run: wal_keep_segments, not wal_keep_size" "$out" "wal_keep_segments = '64'"
	t_eq "primary dry run: no wal_keep_size" "$(printf '%s' "$out" | grep -c wal_keep_size)" 0
fi
t_eq "primary dry run: pg_hba.conf unchanged" "$(md5 "$HBA")" "$HBA_SUM"
t_eq "primary dry run: postgresql.auto.conf unchanged" "$(md5 "$AUTO")" "$AUTO_SUM"
t_eq "primary dry run: no role created" "$(pg_sql p "SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'")" 0

# --- names that would add a pg_hba rule or a conninfo keyword: refused, nothing changed
replinit_run primary -d "$PCONN" --standby 127.0.0.1 --password-file "$T/pw" -c "$T/walarchive.conf" \
	--user $'r 0.0.0.0/0 trust\nhost all all 0.0.0.0/0 trust #'
t_eq "role with a newline: exit 2" "$rc" 2
t_match "role with a newline: names the option and the character" "$out" \
	"^replinit: --user 'r 0\.0\.0\.0/0 trust\\\\nhost all all 0\.0\.0\.0/0 trust #': control character \\\\n at byte 18"
t_eq "role with a newline: one line of output" "$(printf '%s\n' "$out" | grep -c .)" 1
t_eq "role with a newline: pg_hba.conf unchanged" "$(md5 "$HBA")" "$HBA_SUM"
t_eq "role with a newline: postgresql.auto.conf unchanged" "$(md5 "$AUTO")" "$AUTO_SUM"
t_eq "role with a newline: the server has no trust rule for 0.0.0.0/0" \
	"$(pg_sql p "SELECT count(*) FROM pg_hba_file_rules WHERE address = '0.0.0.0'")" 0
t_eq "role with a newline: no role created" "$(pg_sql p "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'r %'")" 0
replinit_run standby --primary "127.0.0.1:$PPORT" --pgdata "$SDATA" --password-file "$T/pw" \
	--application-name $'db2\vport=6699'
t_eq "application name with \\v: exit 2" "$rc" 2
t_match "application name with \\v: names the option and the character" "$out" \
	"^replinit: --application-name 'db2\\\\vport=6699': control character \\\\v at byte 4"
t_check "application name with \\v: no standby directory made" test ! -e "$SDATA"
t_eq "application name with \\v: no slot made" "$(pg_sql p "SELECT count(*) FROM pg_replication_slots")" 0
replinit_run standby --primary "127.0.0.1:$PPORT" --pgdata "$SDATA" --password-file "$T/pw" --passfile $'/tmp/p\rx'
t_eq "passfile with \\r: exit 2" "$rc" 2
t_match "passfile with \\r: names the option" "$out" "^replinit: --passfile '/tmp/p\\\\rx': control character"

# --- primary: the real run, then --restart
replinit_run primary -d "$PCONN" --standby 127.0.0.1 --password-file "$T/pw" -c "$T/walarchive.conf"
t_eq "primary: exit 0" "$rc" 0
t_match "primary: reports the role it created" "$out" "replinit: 1\. created role replicator"
t_match "primary: reports the pg_hba line and its backup" "$out" "added to $HBA: host +replication +replicator 127.0.0.1/32 scram-sha-256 \(previous file kept as $HBA\.replinit-"
t_match "primary: says a restart is needed for archive_mode" "$out" "restart needed for .*archive_mode"
t_eq "primary: role has REPLICATION LOGIN" \
	"$(pg_sql p "SELECT rolreplication AND rolcanlogin FROM pg_roles WHERE rolname = 'replicator'")" t
t_eq "primary: password stored as a scram verifier" \
	"$(pg_sql p "SELECT rolpassword LIKE 'SCRAM-SHA-256\$%' FROM pg_authid WHERE rolname = 'replicator'")" t
t_eq "primary: exactly one replication line added to pg_hba.conf" "$(grep -c '^host *replication *replicator' "$HBA")" 1
t_eq "primary: pg_hba.conf backup equals the original" "$(md5 "$(ls "$HBA".replinit-* | head -n1)")" "$HBA_SUM"
t_eq "primary: pg_hba.conf keeps mode 0600" "$(stat -c %a "$HBA")" 600
if grep -q 'correct horse' "$(pg_dir p)/server.log" "$AUTO" "$HBA"; then
	t_fail "primary: the password appears in the server log or config"
else
	t_ok "primary: the password appears in no server log or config"
fi
replinit_run primary -d "$PCONN" --standby 127.0.0.1 --password-file "$T/pw" -c "$T/walarchive.conf" --restart
t_eq "primary --restart: exit 0" "$rc" 0
t_match "primary --restart: restarted" "$out" "restarted the server"
t_eq "primary --restart: archive_mode is on" "$(pg_sql p "SHOW archive_mode")" on
t_eq "primary --restart: nothing pending" "$(pg_sql p "SELECT count(*) FROM pg_settings WHERE pending_restart")" 0

# --- primary: a second run changes nothing
HBA_SUM=$(md5 "$HBA"); AUTO_SUM=$(md5 "$AUTO")
replinit_run primary -d "$PCONN" --standby 127.0.0.1 --password-file "$T/pw" -c "$T/walarchive.conf"
t_eq "primary second run: exit 0" "$rc" 0
t_match "primary second run: nothing to do" "$out" "already set up .*nothing to do"
t_eq "primary second run: pg_hba.conf unchanged" "$(md5 "$HBA")" "$HBA_SUM"
t_eq "primary second run: postgresql.auto.conf unchanged" "$(md5 "$AUTO")" "$AUTO_SUM"
t_eq "primary second run: no new pg_hba backup" "$(ls "$HBA".replinit-* | wc -l)" 1

# --- a role with blanks, quotes, a comma and '#' is quoted as the server reads it
replinit_run primary -d "$PCONN" --standby 10.0.0.9 --password-file "$T/pw" -c "$T/walarchive.conf" --user 'odd "user", #x'
t_eq "quoted role: exit 0" "$rc" 0
t_match "quoted role: the line written" "$out" 'added to .*: host +replication +"odd ""user"", #x" 10\.0\.0\.9/32 scram-sha-256'
t_eq "quoted role: the server reads the role as given" \
	"$(pg_sql p "SELECT user_name[1] FROM pg_hba_file_rules WHERE address = '10.0.0.9'")" 'odd "user", #x'
t_eq "quoted role: the server reports no error" "$(pg_sql p "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")" 0

# --- two runs within one second: each keeps its own backup of pg_hba.conf
for try in 1 2 3 4 5; do
	# start at the beginning of a second
	sleep "0.$(printf '%03d' $((999 - 10#$(date +%N | cut -c1-3))))"
	BACKUPS=$(ls "$HBA".replinit-* | wc -l)
	START=$(date +%s)
	replinit_run primary -d "$PCONN" --standby "10.0.1.$try" --password-file "$T/pw" -c "$T/walarchive.conf"
	RC1=$rc OUT1=$out
	replinit_run primary -d "$PCONN" --standby "10.0.2.$try" --password-file "$T/pw" -c "$T/walarchive.conf"
	[ "$(date +%s)" = "$START" ] && break
done
t_eq "two runs in one second: both within the same second" "$(date +%s)" "$START"
t_eq "two runs in one second: first exit 0" "$RC1" 0
t_eq "two runs in one second: second exit 0" "$rc" 0
t_eq "two runs in one second: two more backups" "$(ls "$HBA".replinit-* | wc -l)" $((BACKUPS + 2))
B1=$(printf '%s' "$OUT1" | sed -n 's/.*previous file kept as \(.*\))$/\1/p')
B2=$(printf '%s' "$out" | sed -n 's/.*previous file kept as \(.*\))$/\1/p')
t_check "two runs in one second: two names" test -n "$B1" -a -n "$B2" -a "$B1" != "$B2"
t_check "two runs in one second: the second backup holds the first run's line" grep -q "10\.0\.1\.$try/32" "$B2"

# --- a pg_hba.conf the server already refuses: reported before any change
GOOD_HBA=$(cat "$HBA")
echo 'host all all 10.0.0.1/33 trust' >> "$HBA"
HBA_SUM=$(md5 "$HBA"); AUTO_SUM=$(md5 "$AUTO")
replinit_run primary -d "$PCONN" --standby 10.0.0.10 --password-file "$T/pw" -c "$T/walarchive.conf" --user pc_user
t_eq "refused pg_hba.conf before: exit 3" "$rc" 3
t_match "refused pg_hba.conf before: names the line, changes nothing" "$out" \
	"^replinit: $HBA line [0-9]+: invalid CIDR mask in address \"10\.0\.0\.1/33\"; the server refuses to load this file as it is.*fix it"
t_eq "refused pg_hba.conf before: pg_hba.conf unchanged" "$(md5 "$HBA")" "$HBA_SUM"
t_eq "refused pg_hba.conf before: no role created" "$(pg_sql p "SELECT count(*) FROM pg_roles WHERE rolname = 'pc_user'")" 0
printf '%s\n' "$GOOD_HBA" > "$HBA"

# --- a pg_hba.conf the server refuses after replinit's edit is rolled back.  The
# password is read from a fifo when the role is made, after the plan: while
# replinit waits there, a bad line goes into pg_hba.conf, as another
# administrator's edit would; replinit adds its line, the reload is refused
# by the server, and the file is put back as it was before replinit wrote it.
mkfifo -m 600 "$T/pwfifo"
chown postgres:postgres "$T/pwfifo"
BACKUPS=$(ls "$HBA".replinit-* | wc -l)
(cd / && as_pg "$R" primary -d "$PCONN" --standby 10.0.0.11 --password-file "$T/pwfifo" \
	-c "$T/walarchive.conf" --user rb_user >"$T/rollback.out" 2>&1; echo $? >"$T/rollback.rc") &
exec 3>"$T/pwfifo"             # returns once replinit opens the fifo, after inspecting
echo 'host all all 10.0.0.1/33 trust' >> "$HBA"
HBA_SUM=$(md5 "$HBA")
echo 'correct horse battery' >&3
exec 3>&-
wait
out=$(cat "$T/rollback.out")
t_eq "refused pg_hba.conf: exit 3" "$(cat "$T/rollback.rc")" 3
t_match "refused pg_hba.conf: replinit wrote its line first" "$out" "added to $HBA: host +replication +rb_user 10\.0\.0\.11/32"
t_match "refused pg_hba.conf: names the line and says it was rolled back" "$out" \
	"^replinit: step [0-9]+ failed: $HBA line [0-9]+: invalid CIDR mask in address \"10\.0\.0\.1/33\"; the server refused the new file, so it was rolled back to the previous one$"
t_eq "refused pg_hba.conf: the file is the one before replinit's edit" "$(md5 "$HBA")" "$HBA_SUM"
t_eq "refused pg_hba.conf: no line for rb_user" "$(grep -c rb_user "$HBA")" 0
t_eq "refused pg_hba.conf: the backup became the file again" "$(ls "$HBA".replinit-* | wc -l)" "$BACKUPS"
t_eq "refused pg_hba.conf: no temporary file left" "$(ls -A "$(dirname "$HBA")" | grep -c '\.tmp$')" 0
t_eq "refused pg_hba.conf: mode kept" "$(stat -c %a "$HBA")" 600
printf '%s\n' "$GOOD_HBA" > "$HBA"
pg_sql p "SELECT pg_reload_conf()" >/dev/null

# --- standby: bad input
replinit_run standby --primary "127.0.0.1:$PPORT" --pgdata "$SDATA" --password-file "$T/badpw"
t_eq "wrong password: exit 8 (authentication)" "$rc" 8
t_match "wrong password: says so" "$out" '^replinit: primary 127.0.0.1:[0-9]+: password authentication failed for user "replicator"; check the password file'
t_check "wrong password: no standby directory left" test ! -e "$SDATA"

DEAD=$(t_free_port)
replinit_run standby --primary "127.0.0.1:$DEAD" --pgdata "$SDATA" --password-file "$T/pw"
t_eq "primary unreachable: non-zero exit" "$([ $rc -ne 0 ] && echo fail)" "fail"
t_match "primary unreachable: says so" "$out" "^replinit: primary 127.0.0.1:$DEAD: .*(refused|could not connect).*check the address and port"
t_check "primary unreachable: no standby directory left" test ! -e "$SDATA"

as_pg mkdir "$SDATA"
as_pg touch "$SDATA/old-notes.txt"
replinit_run "${STANDBY_ARGS[@]}"
t_eq "non-empty directory: refused" "$rc" 4
t_match "non-empty directory: names the entries and --replace" "$out" "^replinit: --pgdata $SDATA: not empty \(1 entries: old-notes.txt\); give --replace"
t_check "non-empty directory: content untouched" test -f "$SDATA/old-notes.txt"

# --- standby: --dry-run
replinit_run "${STANDBY_ARGS[@]}" --replace --start --dry-run
t_eq "standby dry run: exit 0" "$rc" 0
t_match "standby dry run: names what it would remove" "$out" "1\. remove the 1 entries of $SDATA \(old-notes.txt\)"
t_match "standby dry run: base backup planned" "$out" "take a base backup of 127.0.0.1:$PPORT \(PostgreSQL [0-9]+\) with .*pg_basebackup -X stream -c fast -P"
if [ "$VERSION" -ge 120000 ]; then
	t_match "standby dry run: standby.signal planned" "$out" "write standby.signal and, in postgresql.auto.conf, primary_conninfo"
else
	t_match "standby dry run: recovery.conf planned" "$out" "write recovery.conf: standby_mode = 'on', primary_conninfo"
fi
t_eq "standby dry run: directory unchanged" "$(ls -A "$SDATA")" "old-notes.txt"
t_eq "standby dry run: no slot made" "$(pg_sql p "SELECT count(*) FROM pg_replication_slots")" 0

# --- standby: the real run (under strace when there is one, to see how the passfile
# is made; not in the sanitizer pass: LeakSanitizer does not work under ptrace)
mkdir -p "$T/trace"
chown postgres:postgres "$T/trace"
if command -v strace >/dev/null && [ -z "${ASAN_OPTIONS:-}" ]; then
	out=$(cd / && as_pg strace -qq -o "$T/trace/standby" -e trace=openat,rename,chmod,fchmod \
		"$R" "${STANDBY_ARGS[@]}" --replace --start 2>&1); rc=$?
else
	replinit_run "${STANDBY_ARGS[@]}" --replace --start
fi
t_eq "standby: exit 0" "$rc" 0
[ "$rc" = 0 ] || printf '%s\n' "$out" | tail -n 20 | sed 's/^/# /'
t_match "standby: names what it removed" "$out" "removed its previous content \(1 entries: old-notes.txt\)"
t_match "standby: created the slot" "$out" "created physical replication slot standby1"
t_match "standby: pg_basebackup progress shown" "$out" "[0-9]+/[0-9]+ kB \(100%\)"
t_match "standby: reports streaming" "$out" "the standby streams from 127.0.0.1:$PPORT \(pg_stat_wal_receiver\)"
t_check "standby: old content gone" test ! -e "$SDATA/old-notes.txt"
t_eq "standby: passfile mode 0600" "$(stat -c %a "$SDATA/replinit.pgpass")" 600
if [ -s "$T/trace/standby" ]; then
	CREATE=$(grep -E 'openat\(.*replinit\.pgpass[^"]*\.tmp", [^)]*O_CREAT' "$T/trace/standby")
	t_match "standby: passfile created exclusive and 0600 from the start" "$CREATE" 'O_EXCL.*, 0600\) = [0-9]+$'
	t_eq "standby: passfile never given another mode" \
		"$(grep -E '^(f?chmod)\(' "$T/trace/standby" | grep -vc ', 0600)')" 0
	t_match "standby: passfile renamed into place" "$(cat "$T/trace/standby")" \
		'rename\(".*/\.replinit\.pgpass\.[0-9]+\.[0-9a-f]+\.tmp", ".*/replinit\.pgpass"\) = 0'
else
	echo "# strace not installed, or a sanitized run: how the passfile is created is not traced"
fi
t_eq "standby: passfile line" "$(cat "$SDATA/replinit.pgpass")" "127.0.0.1:$PPORT:replication:replicator:correct horse battery"
if [ "$VERSION" -ge 120000 ]; then
	RECOVERY=$SDATA/postgresql.auto.conf
	t_check "standby: standby.signal present" test -f "$SDATA/standby.signal"
	t_check "standby: no recovery.conf on 12+" test ! -e "$SDATA/recovery.conf"
else
	RECOVERY=$SDATA/recovery.conf
	t_check "standby: recovery.conf present" test -f "$RECOVERY"
	t_check "standby: no standby.signal on 11" test ! -e "$SDATA/standby.signal"
	t_match "standby: standby_mode on" "$(cat "$RECOVERY")" "standby_mode = 'on'"
	t_eq "standby: no recovery settings in postgresql.auto.conf on 11" \
		"$(grep -c -E 'primary_conninfo|restore_command' "$SDATA/postgresql.auto.conf")" 0
fi
t_match "standby: primary_conninfo with passfile" "$(cat "$RECOVERY")" \
	"primary_conninfo = 'host=127.0.0.1 port=$PPORT user=replicator passfile=$SDATA/replinit.pgpass application_name="
t_match "standby: restore_command runs walfetch" "$(cat "$RECOVERY")" "restore_command = '.*walfetch -c $T/walarchive.conf %f %p'"
t_match "standby: recovery_target_timeline latest" "$(cat "$RECOVERY")" "recovery_target_timeline = 'latest'"
t_match "standby: primary_slot_name" "$(cat "$RECOVERY")" "primary_slot_name = 'standby1'"
if grep -rq 'correct horse' "$RECOVERY" "$SDATA/postgresql.auto.conf" "$SDATA/startup.log"; then
	t_fail "standby: the password is outside the passfile"
else
	t_ok "standby: the password is only in the passfile"
fi
t_check "standby: no staging directory left" test -z "$(ls -A "$T/s" | grep -v '^data$')"

ssql() { as_pg "$PGCLIENT/psql" -X -q -At -h "$(pg_sock p)" -p "$SPORT" -U postgres -d postgres -c "$1"; }
# standby_has N: the standby sees N rows in t
standby_has() { [ "$(ssql "SELECT count(*) FROM t" 2>/dev/null)" = "$1" ]; }
pg_sql p "CREATE TABLE t (id int)" "INSERT INTO t SELECT generate_series(1, 1000)"
if t_wait 30 standby_has 1000; then
	t_ok "streaming: rows written on the primary appear on the standby"
else
	t_fail "streaming: rows written on the primary appear on the standby"
fi
t_eq "streaming: the slot is active" "$(pg_sql p "SELECT active FROM pg_replication_slots WHERE slot_name = 'standby1'")" t

# --- standby: a second run changes nothing; a running standby is not touched
SUM=$(md5 "$RECOVERY")
replinit_run "${STANDBY_ARGS[@]}" --replace --start
t_eq "standby second run: exit 0" "$rc" 0
t_match "standby second run: nothing to do" "$out" "already set up for 127.0.0.1:$PPORT as user replicator and running; nothing to do"
t_eq "standby second run: configuration unchanged" "$(md5 "$RECOVERY")" "$SUM"
replinit_run standby --primary "127.0.0.1:$PPORT" --pgdata "$SDATA" --password-file "$T/pw" --user other --replace
t_eq "directory in use: refused" "$rc" 4
t_match "directory in use: says so" "$out" "^replinit: --pgdata $SDATA: in use by a running server \(pid [0-9]+\); stop it first"
t_check "directory in use: the standby still runs" test "$(ssql "SELECT pg_is_in_recovery()")" = t

# --- streaming cut: the standby goes on from the archive
LOG_LINES=$(wc -l < "$SDATA/startup.log")
pg_sql p "ALTER ROLE replicator NOLOGIN" \
	"SELECT pg_terminate_backend(pid) FROM pg_stat_replication" >/dev/null
pg_sql p "INSERT INTO t SELECT generate_series(1001, 1500)" "SELECT pg_switch_wal()" >/dev/null
if t_wait 60 standby_has 1500; then
	t_ok "archive: rows written while streaming is cut reach the standby"
else
	t_fail "archive: rows written while streaming is cut reach the standby"
fi
t_match "archive: the standby restored from the archive with walfetch" "$(tail -n +"$((LOG_LINES + 1))" "$SDATA/startup.log")" "restored log file \"[0-9A-F]{24}\" from archive"
t_eq "archive: the standby is not streaming meanwhile" "$(ssql "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")" 0
pg_sql p "ALTER ROLE replicator LOGIN" >/dev/null

# --- too few wal senders: a second primary with max_wal_senders = 1 lets the
# first connection in, and pg_basebackup's WAL stream fails in the middle
PGBIN=$REPLINIT_PGBIN pg_new q $REPLINIT_INITDB_OPTS || t_fail "initdb q"
pg_conf q "max_wal_senders = 1"
PGBIN=$REPLINIT_PGBIN pg_start q || t_fail "start q"
pg_sql q "CREATE ROLE replicator REPLICATION LOGIN" >/dev/null
QDATA=$T/s/qdata
replinit_run standby --primary "127.0.0.1:$(pg_port q)" --pgdata "$QDATA" --password-file "$T/pw" --pg-bin "$REPLINIT_PGBIN"
t_eq "max_wal_senders: non-zero exit" "$([ $rc -ne 0 ] && echo fail)" "fail"
t_match "max_wal_senders: says what to raise" "$out" "^replinit: pg_basebackup from 127.0.0.1:[0-9]+: .*exceeds max_wal_senders \(currently 1\); raise max_wal_senders on the primary"
t_check "max_wal_senders: failed base backup leaves no directory" test ! -e "$QDATA"
t_check "max_wal_senders: no staging directory left" test -z "$(ls -A "$T/s" | grep -v '^data$')"
replinit_run primary -d "host=$(pg_sock q) port=$(pg_port q) user=postgres dbname=postgres" --standby 127.0.0.1 --password-file "$T/pw" --dry-run
t_match "max_wal_senders: replinit primary plans to raise it" "$out" "ALTER SYSTEM SET max_wal_senders = '10' \(takes effect at restart\)"

t_done
