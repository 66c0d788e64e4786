#!/bin/bash
# Benchmark of the archive module against walpush, end to end with real
# PostgreSQL 15 (run by hand as root; it reports and asserts nothing):
#
#   tests/bench/pgmodule.sh
#
# For each transport (a local directory; SFTP to a private sshd over
# loopback; the same sshd behind a relay limiting each connection to
# BENCH_WAN_RATE bytes/s, default 20000000, and delaying it by
# BENCH_WAN_DELAY_MS, default 5, as tests/bench/ahead.sh's sftp-wan), and
# for each method, interleaved in one run on one cluster:
#   walpush:  archive_command = 'walpush %p %f', push_ahead and parallel at
#             their defaults;
#   module:   archive_library = 'walarchive' with the same configuration;
# archiving is paused (walpush: no archive_command; the module: loaded, its
# configuration without an archive), bulk writes make BENCH_SEGMENTS
# (default 64) segments, then the method is set (walpush: archive_command
# and a reload; the module: its configuration file, and the archiver woken
# as a new segment wakes it) and the timer runs until pg_stat_archiver's
# archived_count covers every file that was ready.  So the module is timed
# as it runs, loaded since the archiver started, not with the archiver's
# restart that a change of archive_library costs once.  Each run archives into
# a fresh archive.  Prints seconds per burst (the median of BENCH_ROUNDS,
# default 3), the module's speed-up (walpush seconds / module seconds), and a
# README-ready Markdown table.
#
# Environment: WALARCHIVE_BIN (default <src>/build/inst/bin), PGMODULE (the
# module for PostgreSQL 15, default beside WALARCHIVE_BIN in
# lib/postgresql/15/lib), BENCH_DIR (default /var/tmp/walarchive-pgmodule.PID,
# removed unless KEEP=1), BENCH_TRANSPORTS (default "local sftp sftp-wan").

set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${WALARCHIVE_BIN:=$SRC/build/inst/bin}"
: "${PGMODULE:=$(readlink -f "$WALARCHIVE_BIN/../lib/postgresql/15/lib/walarchive.so")}"
: "${BENCH_DIR:=/var/tmp/walarchive-pgmodule.$$}"
: "${BENCH_SEGMENTS:=64}"
: "${BENCH_TRANSPORTS:=local sftp sftp-wan}"
: "${BENCH_WAN_RATE:=20000000}"
: "${BENCH_WAN_DELAY_MS:=5}"
: "${BENCH_ROUNDS:=3}"
[ "$(id -u)" = 0 ] || { echo "bench: run as root (clusters run as the postgres user)" >&2; exit 2; }
[ -x "$WALARCHIVE_BIN/walpush" ] || { echo "bench: $WALARCHIVE_BIN/walpush not found (set WALARCHIVE_BIN)" >&2; exit 2; }
[ -f "$PGMODULE" ] || { echo "bench: $PGMODULE not found (set PGMODULE)" >&2; exit 2; }

mkdir -p "$BENCH_DIR"
chmod 755 "$BENCH_DIR"
WALARCHIVE_TMP=$BENCH_DIR
. "$SRC/tests/lib/common.sh"
. "$SRC/tests/lib/pg.sh"
. "$SRC/tests/lib/sshd.sh"
t_cleanup "[ '${KEEP:-0}' = 1 ] || rm -rf '$BENCH_DIR'"
export LC_ALL=C
B=$BENCH_DIR
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
fail() { echo "bench: $*" >&2; }

pg_new src >/dev/null || exit 1
# the module's configuration file is always this one, a copy of the run's:
# the module reads it again when it changes (ALTER SYSTEM cannot set
# walarchive.config in a backend that has not loaded the module)
pg_conf src "archive_mode = on" "archive_command = ''" "archive_library = ''" \
	"wal_level = replica" "checkpoint_timeout = 30min" "max_wal_size = 16GB" \
	"min_wal_size = 1GB" "walarchive.config = '$B/module.conf'"
pg_start src || exit 1
pg_sql src "create table bulk(i int, h text, pad text)" >/dev/null
echo "== PostgreSQL $(pg_sql src "show server_version"), $(nproc) CPUs, $BENCH_SEGMENTS segments a burst, $BENCH_ROUNDS rounds"

# archive_with COMMAND LIBRARY: how the server archives from now on
archive_with() {
	pg_sql src "alter system set archive_command = '$1'" \
		"alter system set archive_library = '$2'" "select pg_reload_conf()" >/dev/null
}
archiver_pid() {
	ps -o pid=,args= --ppid "$(head -n 1 "$(pg_data src)/postmaster.pid")" | awk '/archiver/ { print $1; exit }'
}
ready_count() { ls "$(pg_data src)/pg_wal/archive_status" | grep -c '\.ready$'; }
no_ready() { [ "$(ready_count)" -eq 0 ]; }

declare -A ARCHIVE EXTRA
D=$B/sshd
for tr in $BENCH_TRANSPORTS; do
	case $tr in
	local)
		install -d -o postgres -m 700 "$B/local-remote"
		ARCHIVE[local]=$B/local-remote
		EXTRA[local]="" ;;
	sftp | sftp-wan)
		if [ ! -f "$D/port" ]; then
			sshd_setup "$D" postgres >/dev/null && sshd_start "$D" && sshd_known_hosts "$D" ||
				{ fail "sshd"; exit 1; }
			mkdir -p "$B/sftp-remote"
			chown "$SSHD_USER" "$B/sftp-remote"
		fi
		if [ "$tr" = sftp ]; then
			ARCHIVE[sftp]=$(sshd_url "$D" "$B/sftp-remote")
			EXTRA[sftp]="ssh_key=$D/id_ed25519 ssh_known_hosts=$D/known_hosts timeout=60"
		else
			sshd_throttle_proxy "$D" "$BENCH_WAN_RATE" "$BENCH_WAN_DELAY_MS" || { fail "relay"; exit 1; }
			PP=$(cat "$D/proxy_port")
			sed "s/^\[127.0.0.1\]:$(sshd_port "$D") /[127.0.0.1]:$PP /" "$D/known_hosts" >"$D/known_hosts_wan"
			chmod 644 "$D/known_hosts_wan"
			ARCHIVE[sftp-wan]=sftp://$SSHD_USER@127.0.0.1:$PP/$B/sftp-remote
			EXTRA[sftp-wan]="ssh_key=$D/id_ed25519 ssh_known_hosts=$D/known_hosts_wan timeout=60"
		fi ;;
	*) fail "unknown transport $tr"; exit 2 ;;
	esac
done

# burst KEY METHOD TRANSPORT: one timed burst into a fresh archive; appends seconds to results
RUN=0
burst() {
	local key=$1 method=$2 tr=$3 conf
	RUN=$((RUN + 1))
	conf=$B/run$RUN.conf
	install -d -o postgres -m 700 "$B/spool$RUN"
	# shellcheck disable=SC2086
	walarchive_conf "$conf" "archive=${ARCHIVE[$tr]}/run$RUN" "spool_dir=$B/spool$RUN" ${EXTRA[$tr]}
	[ "$tr" = local ] && install -d -o postgres -m 700 "${ARCHIVE[$tr]}/run$RUN"
	[ "$tr" != local ] && install -d -o "$SSHD_USER" -m 700 "$B/sftp-remote/run$RUN"
	if [ "$method" = walpush ]; then
		archive_with "" ""
	else
		walarchive_conf "$B/module.conf" "timeout=60"
		archive_with "" "$PGMODULE"
	fi
	sleep 0.5
	pg_sql src "truncate bulk" "do \$\$ declare s pg_lsn := pg_current_wal_lsn(); begin
		while pg_current_wal_lsn() - s < $BENCH_SEGMENTS::numeric * 16777216 loop
			insert into bulk select g, md5(g::text), repeat(chr(65 + g % 26), 40)
				from generate_series(1, 50000) g;
		end loop; end \$\$" "select pg_switch_wal()" >/dev/null
	local n before t0 t1
	n=$(ready_count)
	before=$(pg_sql src "select archived_count from pg_stat_archiver")
	t0=$(now)
	if [ "$method" = walpush ]; then
		archive_with "$WALARCHIVE_BIN/walpush -c $conf %p %f" ""
	else
		cp -p "$conf" "$B/module.conf"
		kill -USR1 "$(archiver_pid)"
	fi
	if ! pg_wait_sql src 900 "select archived_count >= $before + $n from pg_stat_archiver"; then
		fail "$key: the burst of $n files is not archived within 900 s"
		return 1
	fi
	t1=$(now)
	echo "$(elapsed "$t0" "$t1")" >>"$B/result-$key"
	echo "   $key: $n files in $(elapsed "$t0" "$t1") s (failed_count so far $(pg_sql src "select failed_count from pg_stat_archiver"))"
	pg_sql src "checkpoint" >/dev/null
}

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for ((round = 1; round <= BENCH_ROUNDS; round++)); do
	echo "-- round $round"
	for tr in $BENCH_TRANSPORTS; do
		for method in walpush module; do
			burst "$tr-$method" "$method" "$tr"
		done
	done
done

echo
echo "| transport | walpush (s) | module (s) | module speed-up |"
echo "| --- | ---: | ---: | ---: |"
for tr in $BENCH_TRANSPORTS; do
	[ -f "$B/result-$tr-walpush" ] && [ -f "$B/result-$tr-module" ] || continue
	w=$(median "$B/result-$tr-walpush")
	m=$(median "$B/result-$tr-module")
	echo "| $tr | $w | $m | $(awk -v w="$w" -v m="$m" 'BEGIN { printf "%.2f×", w / m }') |"
done
