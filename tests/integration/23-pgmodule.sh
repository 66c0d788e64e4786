#!/bin/bash
# The archive module (archive_library = 'walarchive') in real servers:
# PostgreSQL 15 (Debian) and 16, 17, 18 (npm; tests/lib/pgnpm.sh), each with
# the module built against its own server headers (tests/lib/pgheaders.sh).
# For each major, a primary archives under pgbench through the module into a
# local, an SFTP and an S3 archive (Swift s3api): no failure, no gap, every
# object decodes to the segment in pg_wal; a standby made from a base backup
# recovers from that archive with walfetch alone.  Then, on 15 and the
# newest other major: the SFTP archive made unreachable (failed_count
# grows, the server and its archiver keep running, archiving resumes by
# itself), the connection kept between files (one SSH login for a burst),
# a different object under a segment's name refused and left alone, an
# identical one taken as archived, an unusable configuration said once and
# picked up when fixed, push-ahead records of walpush used up by the module
# (nothing pushed twice, nothing skipped, in both directions), and the
# archiver killed with SIGKILL during an upload (nothing under the final
# name; archived after the restart).  Last, on 15, the archiver's resident
# memory over 1,000 segments of 1 MiB stays flat.
#   PGMODULE_VERSIONS="15 18"   only these majors
#   PGMODULE_DIR=DIR            the modules as DIR/MAJOR/lib/walarchive.so
#                               (default: the install beside $WALARCHIVE_BIN)
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"
. "$(dirname "$0")/../lib/pgnpm.sh"
. "$(dirname "$0")/../lib/pgclient.sh"
. "$(dirname "$0")/../lib/wal.sh"
. "$(dirname "$0")/../lib/sshd.sh"
. "$(dirname "$0")/../lib/swift.sh"

export LC_ALL=C
BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
for p in walpush walfetch; do
	[ -x "$BIN/$p" ] || { t_fail "$BIN/$p is not installed"; t_done; }
done
: "${PGMODULE_DIR:=$(readlink -f "$BIN/../lib/postgresql")}"
: "${PGMODULE_VERSIONS:=15 16 17 18}"
module() { echo "$PGMODULE_DIR/$1/lib/walarchive.so"; }

# ---- the stores ---------------------------------------------------------------
D=$T/sshd
sshd_setup "$D" postgres || { t_fail "sshd setup"; t_done; }
sshd_start "$D" || { t_fail "sshd start"; t_done; }
sshd_known_hosts "$D" || { t_fail "ssh-keyscan"; t_done; }
chmod 644 "$D/id_ed25519.pub"
S3_OK=1
swift_start swift walarchive >/dev/null || { t_fail "swift starts"; S3_OK=; }

# store_conf KIND MAJOR CONF: a configuration for a fresh archive of KIND;
# prints the directory this machine sees the archive in (none for s3)
store_conf() {
	local kind=$1 v=$2 conf=$3 dir=$T/arch-$1-$2
	case $kind in
	local)
		install -d -o postgres -m 700 "$dir"
		walarchive_conf "$conf" "archive=$dir" ;;
	sftp)
		install -d -o "$SSHD_USER" -m 700 "$dir"
		walarchive_conf "$conf" "archive=$(sshd_url "$D" "$dir")" "ssh_key=$D/id_ed25519" \
			"ssh_known_hosts=$D/known_hosts" "timeout=5" "retries=1" ;;
	s3)
		walarchive_conf "$conf" "archive=s3://$SWIFT_BUCKET/pg$v" \
			"s3_endpoint=http://127.0.0.1:$SWIFT_PORT" "s3_uri_style=path" \
			"s3_access_key=$SWIFT_ACCESS" "s3_secret_key=$SWIFT_SECRET" "timeout=10"
		dir= ;;
	esac
	echo "spool_dir = $T/spool-$kind-$v" >>"$conf"
	install -d -o postgres -m 700 "$T/spool-$kind-$v"
	echo "$dir"
}

# module_primary NAME MAJOR CONF [initdb options]: a primary archiving through the module
module_primary() {
	local name=$1 v=$2 conf=$3; shift 3
	pg_new "$name" "$@" >/dev/null || return 1
	pg_conf "$name" "archive_mode = on" "wal_level = replica" "archive_command = ''" \
		"archive_library = '$(module "$v")'" "walarchive.config = '$conf'" \
		"archive_timeout = 0" "checkpoint_timeout = 30min"
	pg_start "$name"
}

# archiver_pid NAME: the archiver process of NAME's postmaster
archiver_pid() {
	local pm; pm=$(head -n1 "$(pg_data "$1")/postmaster.pid" 2>/dev/null) || return 1
	ps -o pid=,args= --ppid "$pm" | awk '/archiver/ { print $1; exit }'
}

# every_segment FIRST LAST: the names from FIRST to LAST (16 MiB segments)
every_segment() {
	python3 -c '
import sys
a, b = sys.argv[1], sys.argv[2]
f = int(a[8:16], 16) * 256 + int(a[16:], 16)
l = int(b[8:16], 16) * 256 + int(b[16:], 16)
for n in range(f, l + 1):
    print("%s%08X%08X" % (a[:8], n // 256, n % 256))' "$1" "$2"
}

# fetched_match NAME CONF SEGMENTS...: how many of SEGMENTS still in NAME's
# pg_wal differ from what walfetch restores from the archive
fetched_differ() {
	local name=$1 conf=$2 bad=0 n; shift 2
	for n in "$@"; do
		local f; f=$(pg_data "$name")/pg_wal/$n
		[ -f "$f" ] || continue
		rm -f "$T/fetched"
		"$BIN/walfetch" -c "$conf" -D "$(pg_data "$name")" "$n" "$T/fetched" 2>>"$T/walfetch.log" &&
			cmp -s "$T/fetched" "$f" || bad=$((bad + 1))
	done
	echo "$bad"
}

# ---- each major, each store -----------------------------------------------------
# one_case MAJOR KIND: the primary under pgbench, the archive's content, and
# a standby recovering from it
one_case() {
	local v=$1 kind=$2 P=p$2$1 S=s$2$1 conf=$T/$2$1.conf dir
	dir=$(store_conf "$kind" "$v" "$conf")
	module_primary "$P" "$v" "$conf" || { t_fail "pg $v $kind: primary starts"; return; }
	t_eq "pg $v $kind: the server loaded the module" \
		"$(pg_sql "$P" "show archive_library")" "$(module "$v")"
	pg_pgbench "$P" -q -i -s 2 >"$(pg_dir "$P")/pgbench-init.log" 2>&1 ||
		{ t_fail "pg $v $kind: pgbench -i"; return; }
	local first; first=$(pg_sql "$P" "select pg_walfile_name(pg_current_wal_lsn())")
	pg_pgbench "$P" -n -T 3 -c 2 -j 2 >"$(pg_dir "$P")/pgbench.log" 2>&1
	t_setup "pg $v $kind: pgbench -T 3" test $? -eq 0

	# the standby's base backup, from the running primary, with no WAL of its own
	local client=$PGCLIENT
	[ "$v" -gt 15 ] && client=$CLIENT18
	pg_prepare "$S"
	as_pg "$client/pg_basebackup" -h "$(pg_sock "$P")" -p "$(pg_port "$P")" -U postgres \
		-D "$(pg_data "$S")" -c fast -X none >"$(pg_dir "$S")/basebackup.log" 2>&1
	t_setup "pg $v $kind: base backup with -X none" test $? -eq 0
	pg_sql "$P" "create table marker (v text)" "insert into marker values ('after the backup')" >/dev/null
	local last; last=$(switch_wal "$P")
	WAIT_ARCHIVED_READY=1 wait_archived "$P" "$last" 60
	t_check "pg $v $kind: the module archives up to $last" test $? -eq 0
	local failed; failed=$(pg_sql "$P" "select failed_count from pg_stat_archiver")
	t_eq "pg $v $kind: pg_stat_archiver.failed_count is 0" "$failed" 0
	local sysid; sysid=$(pg_sql "$P" "select system_identifier from pg_control_system()")
	local names
	if [ "$kind" = s3 ]; then
		names=$(swift_keys "$SWIFT_BUCKET" "pg$v/$sysid/" | sed -n 's|.*/\([0-9A-F]\{24\}\)\.lz4$|\1|p' | sort)
	else
		names=$(ARCH=$dir SYSID=$sysid ARCH_HIDE_TMP=1 arch_segments)
	fi
	t_eq "pg $v $kind: every segment from $first to $last is archived, no gap" \
		"$(echo "$names" | awk -v f="$first" '$0 "" >= f ""')" "$(every_segment "$first" "$last")"
	# shellcheck disable=SC2086
	t_eq "pg $v $kind: each segment walfetch restores is the one in pg_wal" \
		"$(fetched_differ "$P" "$conf" $names)" 0
	if [ -n "$dir" ]; then
		local bad=0 n
		for n in $names; do
			f=$(pg_data "$P")/pg_wal/$n
			[ -f "$f" ] || continue
			lz4 -dc "$dir/$sysid/${n:0:16}/$n.lz4" | cmp -s - "$f" || bad=$((bad + 1))
		done
		t_eq "pg $v $kind: lz4 decodes each object to the segment in pg_wal" "$bad" 0
		t_eq "pg $v $kind: no temporary file is left in the archive" \
			"$(find "$dir" -name '.*' -type f | wc -l)" 0
	fi

	# a standby that only restores from the archive
	touch "$(pg_data "$S")/standby.signal"
	chown postgres: "$(pg_data "$S")/standby.signal"
	pg_conf "$S" "port = $(pg_port "$S")" "unix_socket_directories = '$(pg_sock "$S")'" \
		"archive_mode = off" "hot_standby = on" \
		"restore_command = '$BIN/walfetch -c $conf %f %p'"
	pg_start "$S" || { t_fail "pg $v $kind: standby starts"; pg_stop "$P" immediate; return; }
	pg_wait_sql "$S" 60 "select count(*) = 1 from marker where v = 'after the backup'"
	t_check "pg $v $kind: the standby recovers from the archive with walfetch, up to the row after the backup" \
		test $? -eq 0
	pg_stop "$S" immediate
	pg_stop "$P" immediate
}

CLIENT18=
for v in $PGMODULE_VERSIONS; do
	MAJORS_RUN="${MAJORS_RUN:-} $v"
	if [ ! -f "$(module "$v")" ]; then
		t_skip "pg $v: no module built for it ($(module "$v")): its server headers are missing (tests/lib/pgheaders.sh)"
		continue
	fi
	PGBIN=$(pgnpm_bin "$v") || { t_fail "pg $v: server binaries"; continue; }
	export PGBIN
	if [ "$v" -gt 15 ] && [ -z "$CLIENT18" ]; then
		CLIENT18=$(pgclient_install) || { t_fail "pg_basebackup 18"; continue; }
	fi
	for kind in ${PGMODULE_STORES-local sftp s3}; do
		[ "$kind" = s3 ] && [ -z "$S3_OK" ] && continue
		one_case "$v" "$kind"
	done
	echo "# pg $v: local, sftp and s3 checked at $SECONDS s"
done

# ---- failures, duplicates, configuration, push-ahead, SIGKILL -------------------
logins() { grep -c 'Accepted publickey' "$D/sshd.log"; }
# log_since NAME MARK REGEX: lines matching REGEX in NAME's log after line MARK
log_since() { log_lines_since "$@" | wc -l; }
log_lines_since() { tail -n "+$(($2 + 1))" "$(pg_dir "$1")/server.log" | grep -E -- "$3"; }
log_mark() { wc -l <"$(pg_dir "$1")/server.log"; }
stat_archiver() { pg_sql "$1" "select $2 from pg_stat_archiver"; }
# wake NAME: a new segment, and the archiver woken at once (SIGUSR1 sets
# its latch) rather than at its next poll, a minute after a failure
wake() {
	pg_sql "$1" "insert into t values ('wake')" >/dev/null
	switch_wal "$1"
	kill -USR1 "$(archiver_pid "$1")" 2>/dev/null
}
# next_segment NAME: the segment that WAL written now goes to
next_segment() {
	pg_sql "$1" "insert into t values ('next')" >/dev/null
	pg_sql "$1" "select pg_walfile_name(pg_current_wal_insert_lsn())"
}

robust() {
	local v=$1 P=r$1 conf=$T/r$1.conf dir sysid
	dir=$(store_conf sftp "$v" "$conf")
	echo "log_level = info" >>"$conf"
	module_primary "$P" "$v" "$conf" || { t_fail "pg $v: primary starts"; return; }
	pg_sql "$P" "create table t (v text)" >/dev/null
	sysid=$(pg_sql "$P" "select system_identifier from pg_control_system()")
	local ARCH=$dir SYSID=$sysid ARCH_HIDE_TMP=1

	# bursts on kept connections: the file asked for on the archiver's own,
	# the files pushed ahead on those of up to parallel - 1 threads
	local l0 l1 i last apid
	l0=$(logins)
	for i in 1 2 3 4 5 6 7; do pg_sql "$P" "insert into t values ('$i')" "select pg_switch_wal()" >/dev/null; done
	last=$(wake "$P")
	wait_archived "$P" "$last" 60
	t_check "pg $v: a burst of 8 segments is archived over sftp" test $? -eq 0
	l1=$(logins)
	t_check "pg $v: fewer SSH logins than files for it ($((l1 - l0)))" test $((l1 - l0)) -ge 1 -a $((l1 - l0)) -lt 8
	for i in 1 2 3 4 5 6 7; do pg_sql "$P" "insert into t values ('$i')" "select pg_switch_wal()" >/dev/null; done
	last=$(wake "$P")
	wait_archived "$P" "$last" 60
	t_check "pg $v: a second burst of 8 segments is archived" test $? -eq 0
	# a thread logs in at its first file, which may come only in the second
	# burst, and the driver logs in again after a transient failure (a slow
	# answer on a loaded machine): walpush would log in at least once a file
	t_check "pg $v: ... and both bursts, 16 files, took fewer than 8 SSH logins ($(($(logins) - l0))): the connections are kept" \
		test $(($(logins) - l0)) -lt 8
	apid=$(archiver_pid "$P")

	# the archive unreachable, then back
	local mark down f0
	mark=$(log_mark "$P")
	f0=$(stat_archiver "$P" failed_count)
	sshd_kill "$D" KILL
	down=$(wake "$P")
	pg_wait_sql "$P" 60 "select failed_count >= $f0 + 3 and last_failed_wal = '$down' from pg_stat_archiver"
	t_check "pg $v: with sshd down, failed_count grows and names $down" test $? -eq 0
	t_eq "pg $v: the server still answers" "$(pg_sql "$P" "select 1")" 1
	t_eq "pg $v: the archiver is the same process (it never exits on a failure)" "$(archiver_pid "$P")" "$apid"
	t_eq "pg $v: one log line per failed try" \
		"$(log_lines_since "$P" "$mark" 'WARNING: +walarchive: ' | grep -vc 'push-ahead stopped')" \
		"$(($(stat_archiver "$P" failed_count) - f0))"
	sshd_restart "$D" || { t_fail "sshd restarts"; return; }
	last=$(wake "$P")
	wait_archived "$P" "$last" 90
	t_check "pg $v: archiving resumes by itself once sshd is back" test $? -eq 0
	t_check "pg $v: $down, which failed, is archived too" arch_has "$down"

	# a different object under the next name: refused, left alone
	local cur prev sum
	cur=$(next_segment "$P")
	prev=$(obj "$last").lz4
	mkdir -p "$(dirname "$(obj "$cur")")"
	cp "$prev" "$(obj "$cur").lz4"
	chown -R "$SSHD_USER" "$dir"
	sum=$(sha256sum <"$(obj "$cur").lz4")
	f0=$(stat_archiver "$P" failed_count)
	mark=$(log_mark "$P")
	switch_wal "$P" >/dev/null
	pg_wait_sql "$P" 60 "select failed_count > $f0 and last_failed_wal = '$cur' from pg_stat_archiver"
	t_check "pg $v: a different object under $cur fails the file" test $? -eq 0
	t_check "pg $v: ... with walpush's message in the log" \
		test "$(log_since "$P" "$mark" "WARNING: +walarchive: $cur: archive has different content at .*refusing to overwrite")" -ge 1
	t_eq "pg $v: ... and the object is left as it was" "$(sha256sum <"$(obj "$cur").lz4")" "$sum"
	rm "$(obj "$cur").lz4"
	last=$(wake "$P")
	wait_archived "$P" "$last" 90
	t_check "pg $v: once it is removed, $cur is archived" arch_has "$cur"

	# the same file again: already archived, identical, a success
	local st=$(pg_data "$P")/pg_wal/archive_status
	f0=$(stat_archiver "$P" failed_count)
	mark=$(log_mark "$P")
	as_pg rm "$st/$cur.done"
	as_pg touch "$st/$cur.ready"
	wake "$P" >/dev/null
	t_wait 30 test -f "$st/$cur.done"
	t_check "pg $v: archiving $cur again succeeds" test $? -eq 0
	t_eq "pg $v: ... as an identical duplicate" \
		"$(log_since "$P" "$mark" "walarchive: $cur: already archived with identical content")" 1
	t_eq "pg $v: ... without a failure" "$(stat_archiver "$P" failed_count)" "$f0"

	# a file whose header is not its name's: refused, as walpush refuses it
	local bogus=0000000100000000000000FE
	f0=$(stat_archiver "$P" failed_count)
	mark=$(log_mark "$P")
	as_pg cp "$(pg_data "$P")/pg_wal/$cur" "$(pg_data "$P")/pg_wal/$bogus"
	as_pg touch "$st/$bogus.ready"
	kill -USR1 "$(archiver_pid "$P")"
	pg_wait_sql "$P" 60 "select failed_count > $f0 and last_failed_wal = '$bogus' from pg_stat_archiver"
	t_check "pg $v: a segment whose header names another position fails" test $? -eq 0
	t_check "pg $v: ... with walpush's message" \
		test "$(log_since "$P" "$mark" "WARNING: +walarchive: .*$bogus.*header is of position")" -ge 1
	t_check "pg $v: ... and nothing is archived under its name" bash -c "! test -e '$(obj "$bogus").lz4'"
	as_pg rm -f "$st/$bogus.ready" "$(pg_data "$P")/pg_wal/$bogus"

	# an unusable configuration: said once, then picked up when fixed
	cp -p "$conf" "$conf.good"
	walarchive_conf "$conf" "timeout=5"
	mark=$(log_mark "$P")
	f0=$(stat_archiver "$P" failed_count)
	local held; held=$(wake "$P")
	sleep 1
	wake "$P" >/dev/null
	t_wait 10 test "$(log_since "$P" "$mark" 'walarchive: .*archive is not set')" -ge 1
	t_eq "pg $v: an unusable configuration is said once, naming the file" \
		"$(log_since "$P" "$mark" "WARNING: +walarchive: $conf: archive is not set")" 1
	t_check "pg $v: ... and nothing is archived meanwhile" test -f "$st/$held.ready"
	t_eq "pg $v: ... nor counted as failed, file after file" "$(stat_archiver "$P" failed_count)" "$f0"

	# push-ahead: what walpush pushed ahead is not pushed again by the module
	local spool=$T/spool-sftp-$v ready=() n inodes0 inodes1
	sleep 1
	for i in 1 2 3; do ready+=("$(wake "$P")"); done
	t_wait 10 test -f "$st/${ready[2]}.ready"
	cp -p "$conf.good" "$conf.ahead"
	echo "push_ahead = 8" >>"$conf.ahead"
	(cd "$(pg_data "$P")" && as_pg "$BIN/walpush" -c "$conf.ahead" "pg_wal/$held" "$held") >"$T/walpush-ahead.log" 2>&1
	t_check "pg $v: walpush by hand pushes $held and the ready files ahead" \
		test "$(ls "$spool/$sysid/pushed" 2>/dev/null | wc -l)" -ge 3
	inodes0=$(for n in "${ready[@]}"; do stat -c %i "$(obj "$n").lz4"; done)
	mark=$(log_mark "$P")
	cp -p "$conf.good" "$conf"
	last=$(wake "$P")
	WAIT_ARCHIVED_READY=1 wait_archived "$P" "$last" 60
	t_check "pg $v: the configuration fixed, the module archives what waited" test $? -eq 0
	t_eq "pg $v: the module takes walpush's records for the files pushed ahead" \
		"$(log_since "$P" "$mark" "walarchive: (${ready[0]}|${ready[1]}|${ready[2]}): archived ahead at")" 3
	inodes1=$(for n in "${ready[@]}"; do stat -c %i "$(obj "$n").lz4"; done)
	t_eq "pg $v: ... without pushing them again" "$inodes1" "$inodes0"
	t_eq "pg $v: ... and uses the records up" "$(ls "$spool/$sysid/pushed" | grep -c '^0')" 0

	# from the module to walpush and back: nothing skipped
	local first=$last
	pg_sql "$P" "alter system set archive_library = ''" \
		"alter system set archive_command = '$BIN/walpush -c $conf.ahead %p %f'" \
		"select pg_reload_conf()" >/dev/null
	sleep 1
	for i in 1 2 3; do last=$(wake "$P"); done
	wait_archived "$P" "$last" 60
	pg_sql "$P" "alter system set archive_command = ''" \
		"alter system set archive_library = '$(module "$v")'" "select pg_reload_conf()" >/dev/null
	sleep 1
	for i in 1 2 3; do last=$(wake "$P"); done
	WAIT_ARCHIVED_READY=1 wait_archived "$P" "$last" 60
	t_check "pg $v: switched to walpush and back, archiving reaches $last" test $? -eq 0
	t_eq "pg $v: every segment from $first to $last is archived, no gap" \
		"$(arch_segments | awk -v f="$first" -v l="$last" '$0 "" >= f "" && $0 "" <= l ""')" \
		"$(every_segment "$first" "$last")"

	# SIGKILL during an upload through a slow link
	sshd_throttle_proxy "$D" 2000000 || { t_fail "pg $v: throttling proxy"; return; }
	local pport; pport=$(cat "$D/proxy_port")
	sed "s/^\[127.0.0.1\]:$(sshd_port "$D") /[127.0.0.1]:$pport /" "$D/known_hosts" >"$D/known_hosts.proxy"
	walarchive_conf "$conf" "archive=sftp://$SSHD_USER@127.0.0.1:$pport/${dir#/}" \
		"ssh_key=$D/id_ed25519" "ssh_known_hosts=$D/known_hosts.proxy" "timeout=30" "retries=1" \
		"compress=none"
	pg_sql "$P" "create table big (b bytea)" "alter table big alter column b set storage external" >/dev/null
	cur=$(next_segment "$P")
	pg_sql "$P" "insert into big select decode(string_agg(md5(random()::text), ''), 'hex') from generate_series(1, 400000)" >/dev/null
	switch_wal "$P" >/dev/null
	t_wait 30 bash -c "find '$dir/$sysid' -name '.*$cur*' -size +1 | grep -q ."
	t_setup "pg $v: an upload of $cur is under way" test $? -eq 0
	apid=$(archiver_pid "$P")
	kill -KILL "$apid"
	sleep 0.5
	t_check "pg $v: the archiver killed mid-upload leaves nothing under $cur's final name" \
		bash -c "! test -e '$(obj "$cur").lz4'"
	pg_wait_sql "$P" 60 "select true"
	wait_archived "$P" "$cur" 120
	t_check "pg $v: after the restart, $cur is archived" arch_has "$cur"
	t_check "pg $v: ... and decodes to the segment in pg_wal" \
		bash -c "lz4 -dc '$(obj "$cur").lz4' | cmp -s - '$(pg_data "$P")/pg_wal/$cur'"
	sshd_proxy_stop "$D"
	pg_stop "$P" immediate
}

# ---- memory over 1,000 segments ---------------------------------------------------
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# switches NAME N: N segments, each with a row
switches() {
	pg_sql "$1" "do \$\$ begin for i in 1..$2 loop insert into t values ('x'); perform pg_switch_wal(); end loop; end \$\$" >/dev/null
	switch_wal "$1"
}
memory() {
	local v=$1 P=m$1 conf=$T/m$1.conf dir pid rss0 rss1 last
	dir=$(store_conf local "m$v" "$conf")
	module_primary "$P" "$v" "$conf" --wal-segsize=1 || { t_fail "pg $v: 1 MiB primary starts"; return; }
	pg_sql "$P" "create table t (v text)" >/dev/null
	last=$(switches "$P" 100)
	wait_archived "$P" "$last" 120
	t_setup "pg $v: 100 segments of 1 MiB archived" test $? -eq 0
	pid=$(archiver_pid "$P")
	rss0=$(rss_kb "$pid")
	last=$(switches "$P" 1000)
	wait_archived "$P" "$last" 300
	t_check "pg $v: 1,000 more segments of 1 MiB archived" test $? -eq 0
	t_eq "pg $v: by the same archiver process" "$(archiver_pid "$P")" "$pid"
	rss1=$(rss_kb "$pid")
	echo "# pg $v: archiver RSS ${rss0} kB after 100 segments, ${rss1} kB after 1,100"
	t_check "pg $v: the archiver's RSS stays flat over 1,000 segments (${rss0} -> ${rss1} kB)" \
		test $((rss1 - rss0)) -le 1024
	pg_stop "$P" immediate
}

NEWEST=
for v in ${MAJORS_RUN:-}; do [ -f "$(module "$v")" ] && NEWEST=$v; done
for v in ${MAJORS_RUN:-}; do
	[ -f "$(module "$v")" ] || continue
	[ "$v" = 15 ] || [ "$v" = "$NEWEST" ] || continue
	PGBIN=$(pgnpm_bin "$v") && export PGBIN || continue
	robust "$v"
	echo "# pg $v: failures, duplicates, push-ahead and SIGKILL checked at $SECONDS s"
done
# memory: one major is enough (the module's code is the same for each);
# Debian's, the one its package serves
if [ -f "$(module 15)" ]; then
	PGBIN=$(pgnpm_bin 15) && export PGBIN && memory 15
	echo "# pg 15: memory checked at $SECONDS s"
fi
t_done
