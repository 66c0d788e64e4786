#!/bin/bash
# Every supported PostgreSQL major (11..18; 15 from Debian, the others from
# npm, see tests/lib/pgnpm.sh): a primary archives with walpush under a
# pgbench load, a base backup is taken with the low-level API from one psql
# session (pg_start_backup/pg_stop_backup on 11-14, pg_backup_start/
# pg_backup_stop on 15+, the same way for every version, since Debian's
# pg_basebackup 15 refuses 16+), and a point-in-time recovery with walfetch
# as restore_command reaches a restore point: the row written before it is
# there, the row written after it is not.  Then replinit: `replinit primary
# --restart` on that primary, and `replinit standby --start`, which needs a
# pg_basebackup of the primary's major or newer: Debian's 15 for 11-15, one
# of 18 built from Debian's source package for 16-18 (tests/lib/pgclient.sh).
# Each must give a standby that streams; on 16, without the newer
# pg_basebackup, it must first refuse cleanly (one message naming what to
# install, no directory left behind).
#   PG_VERSIONS="11 15"   only these majors
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"
. "$(dirname "$0")/../lib/pgnpm.sh"
. "$(dirname "$0")/../lib/pgclient.sh"

export LC_ALL=C
T=$WALARCHIVE_TMP
BIN=$WALARCHIVE_BIN
for p in walpush walfetch replinit; do
	[ -x "$BIN/$p" ] || { t_fail "$BIN/$p is not installed"; t_done; }
done
echo 'replication secret 42' > "$T/pw"
chown postgres:postgres "$T/pw"
chmod 600 "$T/pw"

# psql as postgres against cluster NAME over TCP (for copies whose socket
# directory setting came from elsewhere)
sql_tcp() {
	local port=$1; shift
	local args=() s
	for s in "$@"; do args+=(-c "$s"); done
	as_pg "$PGCLIENT/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres \
		-d postgres "${args[@]}"
}

# one_version MAJOR: the whole check; prints its own ok / not ok lines
one_version() {
	local v=$1 t0=$SECONDS
	local P=p$v R=r$v
	local arch=$T/archive$v conf=$T/walarchive$v.conf bk=$T/backup$v

	PGBIN=$(pgnpm_bin "$v") || { t_fail "pg $v: server binaries not available"; return; }
	export PGBIN
	mkdir -p "$arch"; chown postgres:postgres "$arch"
	walarchive_conf "$conf" "archive=$arch"

	# --- the primary, archiving with walpush, under load
	pg_new "$P" >/dev/null || { t_fail "pg $v: initdb"; return; }
	pg_conf "$P" "archive_mode = on" "wal_level = replica" \
		"archive_command = '$BIN/walpush -c $conf %p %f'"
	pg_start "$P" || { t_fail "pg $v: start primary"; return; }
	local version; version=$(pg_sql "$P" "SHOW server_version_num")
	pg_pgbench "$P" -q -i -s 2 >"$(pg_dir "$P")/pgbench-init.log" 2>&1 ||
		{ t_fail "pg $v: pgbench -i"; cat "$(pg_dir "$P")/pgbench-init.log"; return; }
	pg_pgbench "$P" -n -T 6 -c 2 -j 2 >"$(pg_dir "$P")/pgbench.log" 2>&1 &
	local bench=$!

	# --- base backup from one psql session, during the load
	local start stop
	if [ "$version" -ge 150000 ]; then
		start="SELECT pg_backup_start('pitr', true);"
		stop="SELECT labelfile FROM pg_backup_stop(true)"
	else
		start="SELECT pg_start_backup('pitr', true, false);"
		stop="SELECT labelfile FROM pg_stop_backup(false, true)"
	fi
	mkdir -p "$bk"; chown postgres:postgres "$bk"
	sleep 1
	as_pg "$PGCLIENT/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$(pg_sock "$P")" -p "$(pg_port "$P")" \
		-U postgres -d postgres >"$T/backup$v.log" 2>&1 <<SQL
$start
\! rsync -a --exclude='pg_wal/*' --exclude=postmaster.pid --exclude=postmaster.opts $(pg_data "$P")/ $bk/data/
$stop \g $bk/data/backup_label
SQL
	local brc=$?
	wait "$bench"; local bench_rc=$?
	if [ "$brc" -ne 0 ] || ! grep -q '^START WAL LOCATION' "$bk/data/backup_label" 2>/dev/null; then
		t_fail "pg $v: low-level base backup"; cat "$T/backup$v.log"; return
	fi
	[ "$bench_rc" -eq 0 ] || { t_fail "pg $v: pgbench load"; tail -n 5 "$(pg_dir "$P")/pgbench.log"; return; }
	local tps; tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$(pg_dir "$P")/pgbench.log" | head -n 1)
	mkdir -p "$bk/data/pg_wal/archive_status"; chown -R postgres:postgres "$bk"

	# --- a restore point between two rows
	pg_sql "$P" "CREATE TABLE marker(x int)" "INSERT INTO marker VALUES (1)" \
		"SELECT pg_create_restore_point('before_two')" "INSERT INTO marker VALUES (2)" \
		"SELECT pg_switch_wal()" >/dev/null || { t_fail "pg $v: restore point"; return; }
	local archived failed
	archived=$(pg_sql "$P" "SELECT archived_count FROM pg_stat_archiver")
	failed=$(pg_sql "$P" "SELECT failed_count FROM pg_stat_archiver")

	# --- replinit on this primary (it restarts it), then a standby
	replinit_check "$v" "$P" "$conf"

	pg_stop "$P" || { t_fail "pg $v: stop primary"; return; }
	local ready; ready=$(find "$(pg_data "$P")/pg_wal/archive_status" -name '*.ready' | wc -l)

	# --- point-in-time recovery from the archive with walfetch
	pg_prepare "$R"
	rsync -a "$bk/data/" "$(pg_data "$R")/"
	local restore="restore_command = '$BIN/walfetch -c $conf %f %p'"
	if [ "$version" -ge 120000 ]; then
		pg_conf "$R" "$restore" "recovery_target_name = 'before_two'" "recovery_target_action = 'promote'"
		touch "$(pg_data "$R")/recovery.signal"
	else
		printf "%s\nrecovery_target_name = 'before_two'\nrecovery_target_action = 'promote'\n" \
			"$restore" > "$(pg_data "$R")/recovery.conf"
	fi
	pg_conf "$R" "port = $(pg_port "$R")" "unix_socket_directories = '$(pg_sock "$R")'" "archive_mode = off"
	chown -R postgres:postgres "$(pg_data "$R")"; chmod 700 "$(pg_data "$R")"
	pg_start "$R" || { t_fail "pg $v: recovered server does not start"; return; }
	if ! pg_wait_sql "$R" 60 "SELECT NOT pg_is_in_recovery()"; then
		t_fail "pg $v: recovery did not reach the restore point and promote"
		tail -n 15 "$(pg_dir "$R")/server.log"; return
	fi
	local rows; rows=$(pg_sql "$R" "SELECT string_agg(x::text, ',' ORDER BY x) FROM marker")
	local fetched; fetched=$(grep -c 'restored log file' "$(pg_dir "$R")/server.log")
	local stopped; stopped=$(grep -c 'recovery stopping at restore point "before_two"' "$(pg_dir "$R")/server.log")
	local accounts; accounts=$(pg_sql "$R" "SELECT count(*) FROM pgbench_accounts")
	pg_stop "$R"
	echo "# pg $v ($version): pgbench ${tps:-?} tps, $archived segments archived, $failed failed, $ready left .ready; PITR restored $fetched files, rows '$rows', $accounts accounts ($((SECONDS - t0)) s)"
	if [ "$failed" = 0 ] && [ "$ready" = 0 ] && [ "${archived:-0}" -ge 3 ] && [ "$rows" = 1 ] &&
	   [ "$stopped" -ge 1 ] && [ "$fetched" -ge 2 ] && [ "$accounts" = 200000 ]; then
		t_ok "pg $v: archive + PITR"
	else
		t_fail "pg $v: archive + PITR (archived $archived, failed $failed, .ready $ready, rows '$rows' want '1', stop at restore point $stopped, files restored $fetched, accounts $accounts)"
		grep -E 'FATAL|ERROR|walfetch|walpush' "$(pg_dir "$R")/server.log" "$(pg_dir "$P")/server.log" | tail -n 10
	fi
}

# replinit_check MAJOR PRIMARY CONF
replinit_check() {
	local v=$1 P=$2 conf=$3 out rc
	local S=$T/s$v/data sport
	sport=$(t_free_port)
	mkdir -p "$T/s$v"; chown postgres:postgres "$T/s$v"
	out=$(cd / && as_pg "$BIN/replinit" primary -d "host=$(pg_sock "$P") port=$(pg_port "$P") user=postgres dbname=postgres" \
		--standby 127.0.0.1 --password-file "$T/pw" -c "$conf" --pg-bin "$PGBIN" --restart 2>&1); rc=$?
	if [ "$rc" -ne 0 ]; then
		t_fail "pg $v: replinit primary --restart (exit $rc: $(echo "$out" | tail -n 3 | tr '\n' '|'))"
		return
	fi
	t_cleanup "as_pg $PGBIN/pg_ctl -D $S -m immediate -w stop"
	local path=$PATH
	if [ "$v" -ge 16 ]; then
		if [ "$v" = 16 ]; then
			# without a pg_basebackup of 16 or newer: one message naming
			# what to install, and no directory left behind
			out=$(cd / && as_pg "$BIN/replinit" standby --primary "127.0.0.1:$(pg_port "$P")" --pgdata "$S" \
				--password-file "$T/pw" -c "$conf" --port "$sport" --pg-bin "$PGBIN" --start 2>&1); rc=$?
			if [ "$rc" -ne 0 ] && [ "$(printf '%s\n' "$out" | grep -c .)" = 1 ] &&
			   printf '%s' "$out" | grep -q "pg_basebackup for PostgreSQL $v or newer not found" &&
			   [ ! -e "$S" ]; then
				t_ok "pg $v: replinit standby refuses cleanly without pg_basebackup $v: $out"
			else
				t_fail "pg $v: replinit standby without pg_basebackup $v (exit $rc: $(echo "$out" | tr '\n' '|'))"
			fi
		fi
		# Debian 12 has no client tools newer than 15: pg_basebackup 18
		# (built once, tests/lib/pgclient.sh), found on PATH
		local client
		client=$(pgclient_install) || { t_fail "pg $v: no pg_basebackup 18 for the standby"; return; }
		path=$client:$PATH
	fi
	out=$(cd / && PATH=$path as_pg "$BIN/replinit" standby --primary "127.0.0.1:$(pg_port "$P")" --pgdata "$S" \
		--password-file "$T/pw" -c "$conf" --port "$sport" --pg-bin "$PGBIN" --slot "standby$v" \
		--start --timeout 60 2>&1); rc=$?
	if [ "$rc" -ne 0 ]; then
		t_fail "pg $v: replinit standby --start (exit $rc: $(echo "$out" | tail -n 3 | tr '\n' '|'))"
		return
	fi
	local basebackup; basebackup=$(printf '%s\n' "$out" | sed -n 's/.*took a base backup .* with \([^ ]*\) into .*/\1/p')
	pg_sql "$P" "CREATE TABLE replinit_probe AS SELECT 42 AS x" >/dev/null
	local end=$((SECONDS + 30)) got=
	while [ $SECONDS -lt $end ]; do
		got=$(sql_tcp "$sport" "SELECT x FROM replinit_probe" 2>/dev/null)
		[ "$got" = 42 ] && break
		sleep 0.3
	done
	local recov; recov=$(sql_tcp "$sport" "SELECT pg_is_in_recovery()" 2>/dev/null)
	local sver; sver=$(sql_tcp "$sport" "SHOW server_version_num" 2>/dev/null)
	local how=standby.signal
	[ -f "$S/recovery.conf" ] && how=recovery.conf
	if [ "$got" = 42 ] && [ "$recov" = t ] && [ "$((sver / 10000))" = "$v" ] &&
	   grep -q walfetch "$S/$([ $how = recovery.conf ] && echo recovery.conf || echo postgresql.auto.conf)"; then
		t_ok "pg $v: replinit builds a streaming standby ($how, restore_command walfetch, ${basebackup:-pg_basebackup})"
	else
		t_fail "pg $v: replinit standby does not stream (row '$got', in recovery '$recov', version '$sver')"
	fi
	as_pg "$PGBIN/pg_ctl" -D "$S" -m fast -w stop >/dev/null 2>&1
}

command -v rsync >/dev/null || { t_fail "rsync is needed"; t_done; }
for v in ${PG_VERSIONS:-11 12 13 14 15 16 17 18}; do
	one_version "$v"
	# leave no server of this version running into the next
	t_run_cleanups
done
t_done
