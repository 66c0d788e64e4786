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
# name; archived after the restart).  Last, the archiver's resident memory
# over 1,000 segments of 1 MiB stays flat.
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
		"$(echo "$names" | awk -v f="$first" '$0 >= f')" "$(every_segment "$first" "$last")"
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
	if [ ! -f "$(module "$v")" ]; then
		t_skip "pg $v: no module built for it ($(module "$v")): its server headers are missing (tests/lib/pgheaders.sh)"
		continue
	fi
	PGBIN=$(pgnpm_bin "$v") || { t_fail "pg $v: server binaries"; continue; }
	export PGBIN
	if [ "$v" -gt 15 ] && [ -z "$CLIENT18" ]; then
		CLIENT18=$(pgclient_install) || { t_fail "pg_basebackup 18"; continue; }
	fi
	for kind in local sftp s3; do
		[ "$kind" = s3 ] && [ -z "$S3_OK" ] && continue
		one_case "$v" "$kind"
	done
	MAJORS_RUN="${MAJORS_RUN:-} $v"
done
t_done
