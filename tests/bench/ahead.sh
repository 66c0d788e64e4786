#!/bin/bash
# Benchmark of push-ahead and fetch-ahead, end to end with real PostgreSQL 15
# (run by hand as root; it reports and asserts nothing):
#
#   tests/bench/ahead.sh
#
# For each transport (local directory; SFTP to a private sshd; S3 to a
# private Swift with s3api), with push_ahead/fetch_ahead at their defaults
# for a network archive (64 and 16) and at 0; for pgBackRest's asynchronous
# archive-push/archive-get on a local posix repository (process-max =
# parallel); and for cp into and out of a local directory, the setup guide's
# commands (no compression, no fsync, no checks: the floor of a recovery):
#   burst:    archiving is paused (archive_command = ''), bulk writes make
#             BENCH_SEGMENTS (default 64) segments, then the real command is
#             set and the timer runs until pg_stat_archiver.archived_count
#             covers every file that was ready;
#   recovery: a base backup taken just before the burst, restored with
#             recovery.signal and no target: the timer runs from pg_ctl start
#             until the server has replayed the whole archive and promoted.
# Prints seconds, segments per second, the ratios beside the targets of
# push-ahead and fetch-ahead (README, Performance), and a README-ready Markdown table.
#
# Environment: WALARCHIVE_BIN (default <src>/build/inst/bin), BENCH_DIR (work
# directory, default /var/tmp/walarchive-ahead.PID, removed unless KEEP=1),
# BENCH_SEGMENTS (default 64), BENCH_TRANSPORTS (default "local sftp s3
# sftp-wan"; sftp-wan is the same sshd behind a proxy limiting each
# connection to BENCH_WAN_RATE bytes/s, default 20000000, and delaying each
# byte by BENCH_WAN_DELAY_MS, default 5: a 10 ms round trip, a server in
# another data centre), BENCH_PARALLEL (default 4), BENCH_PUSH_AHEAD
# (default 64), BENCH_FETCH_AHEAD (default 16), BENCH_ROUNDS (default 1; the
# median of the rounds is printed).

set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${WALARCHIVE_BIN:=$SRC/build/inst/bin}"
: "${BENCH_DIR:=/var/tmp/walarchive-ahead.$$}"
: "${BENCH_SEGMENTS:=64}"
: "${BENCH_TRANSPORTS:=local sftp s3 sftp-wan}"
: "${BENCH_PARALLEL:=4}"
: "${BENCH_PUSH_AHEAD:=64}"
: "${BENCH_FETCH_AHEAD:=16}"
: "${BENCH_WAN_RATE:=20000000}"
: "${BENCH_WAN_DELAY_MS:=5}"
: "${BENCH_ROUNDS:=1}"
[ "$(id -u)" = 0 ] || { echo "bench: run as root (clusters run as the postgres user)" >&2; exit 2; }
for p in walpush walfetch; do
	[ -x "$WALARCHIVE_BIN/$p" ] || { echo "bench: $WALARCHIVE_BIN/$p not found (set WALARCHIVE_BIN)" >&2; exit 2; }
done
command -v pgbackrest >/dev/null || { echo "bench: pgbackrest not installed" >&2; exit 2; }

mkdir -p "$BENCH_DIR"
chmod 755 "$BENCH_DIR"
WALARCHIVE_TMP=$BENCH_DIR
. "$SRC/tests/lib/common.sh"
. "$SRC/tests/lib/pg.sh"
. "$SRC/tests/lib/sshd.sh"
. "$SRC/tests/lib/swift.sh"
t_cleanup "[ '${KEEP:-0}' = 1 ] || rm -rf '$BENCH_DIR'"
export LC_ALL=C
B=$BENCH_DIR
R=$B/results
mkdir -p "$R"
T0=$SECONDS
FAILURES=0
fail() { echo "bench: $*" >&2; FAILURES=$((FAILURES + 1)); }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# ---- the cluster -----------------------------------------------------------

pg_new src >/dev/null || exit 1
pg_conf src "archive_mode = on" "archive_command = ''" "wal_level = replica" \
	"checkpoint_timeout = 30min" "max_wal_size = 16GB" "min_wal_size = 1GB" \
	"log_line_prefix = '%m [%p] '"
pg_start src || exit 1
SYSID=$(pg_sql src "select system_identifier from pg_control_system()")
pg_sql src "create table bulk(i int, h text, pad text)" >/dev/null
echo "== PostgreSQL $(pg_sql src "show server_version"), system $SYSID, $(nproc) CPUs, $(findmnt -no FSTYPE -T "$B" 2>/dev/null || echo '?') under $B"

set_archive_command() {
	pg_sql src "alter system set archive_command = '$1'" "select pg_reload_conf()" >/dev/null
}
segno() { echo $(( (16#${1:8:8}) * 256 + (16#${1:16:8}) )); }
ready_count() { ls "$(pg_data src)/pg_wal/archive_status" | grep -c '\.ready$'; }
archived_count() { pg_sql src "select archived_count from pg_stat_archiver"; }
# Waits (up to $1 s) until nothing is left to archive.
no_ready() { [ "$(ready_count)" -eq 0 ]; }
drain() { t_wait "$1" no_ready; }

# recover BACKUP KEY RESTORE_CMD [WAL_DIR]: a timed recovery, from the base
# backup of run BACKUP, of everything archived since it (with WAL_DIR, its
# segments placed in pg_wal first)
recover() {
	local bb=$1 key=$2 fetch=$3 wal=$4
	local rec=rec-$key t0 t1
	rm -rf "$(pg_dir "$rec")"
	pg_prepare "$rec"
	cp -a "$(pg_data "bb-$bb")" "$(pg_data "$rec")"
	# shellcheck disable=SC2015
	[ -n "$wal" ] && { cp "$wal"/0* "$(pg_data "$rec")/pg_wal/" && chown postgres:postgres "$(pg_data "$rec")"/pg_wal/0*; } || true
	pg_conf "$rec" "port = $(pg_port "$rec")" "unix_socket_directories = '$(pg_sock "$rec")'" \
		"archive_mode = off" "archive_command = ''" "restore_command = '$fetch'"
	as_pg sh -c "sed -i '/archive_command/d' '$(pg_data "$rec")/postgresql.auto.conf'"
	as_pg touch "$(pg_data "$rec")/recovery.signal"
	# segments to replay: from the backup's redo point to the end of the burst
	local redo last segs
	redo=$(as_pg "$PGBIN/pg_controldata" "$(pg_data "$rec")" | awk -F': *' '/REDO WAL file/ {print $2}')
	last=$(pg_sql src "select pg_walfile_name(pg_current_wal_lsn())")
	segs=$(( $(segno "$last") - $(segno "$redo") ))
	t0=$(now)
	as_pg "$PGBIN/pg_ctl" -D "$(pg_data "$rec")" -l "$(pg_dir "$rec")/server.log" \
		-o "-p $(pg_port "$rec") -k $(pg_sock "$rec")" -W start >/dev/null
	t_cleanup "pg_stop $rec immediate"
	# pg_ctl -W returns before the postmaster writes its PID file
	t_wait 30 test -f "$(pg_data "$rec")/postmaster.pid"
	local end=$((SECONDS + 900)) ok=0
	while [ $SECONDS -lt $end ]; do
		[ "$(pg_sql "$rec" "select pg_is_in_recovery()" 2>/dev/null)" = f ] && { ok=1; break; }
		# the server gave up (not just "starting up" answers to our polling)
		[ -f "$(pg_data "$rec")/postmaster.pid" ] || break
		sleep 0.05
	done
	t1=$(now)
	if [ $ok = 1 ]; then
		local fromspool; fromspool=$(grep -c 'restored from the spool' "$(pg_dir "$rec")/server.log")
		echo "$segs $(elapsed "$t0" "$t1")" >> "$R/fetch-$key"
		echo "   recovery: $segs segments replayed in $(elapsed "$t0" "$t1") s ($fromspool from the spool)"
		[ "$(pg_sql "$rec" "select count(*) > 0 from bulk")" = t ] || fail "$key: recovered cluster misses the burst's rows"
	else
		fail "$key: recovery does not finish: $(grep -v 'starting up' "$(pg_dir "$rec")/server.log" | grep 'FATAL\|PANIC' | head -n 2)"
	fi
	pg_stop "$rec" immediate
	[ $ok = 1 ] || cp "$(pg_dir "$rec")/server.log" "$R/failed-$key.log"
	# wait for a prefetcher still running from this recovery
	local lock
	for lock in "$B"/spool-*/"$SYSID"/.prefetch.lock; do [ -e "$lock" ] && timeout 60 flock "$lock" true; done
	rm -rf "$(pg_dir "$rec")"
}

# run_one KEY ARCHIVE_CMD RESTORE_CMD: base backup, paused burst, timed
# archiving of the burst, then a timed recovery from the backup.
run_one() {
	local key=$1 push=$2 fetch=$3
	echo "-- $key"
	set_archive_command "$push"
	pg_sql src "select pg_switch_wal()" >/dev/null
	drain 120 || { fail "$key: archiving before the backup does not finish"; return 1; }
	rm -rf "$(pg_dir "bb-$key")"
	pg_take_basebackup src "bb-$key" || { fail "$key: base backup"; return 1; }
	drain 120 || { fail "$key: archiving after the backup does not finish"; return 1; }
	set_archive_command ""
	sleep 1
	# the burst: bulk writes until BENCH_SEGMENTS segments are full, then a switch
	pg_sql src "truncate bulk" "do \$\$ declare s pg_lsn := pg_current_wal_lsn(); begin
		while pg_current_wal_lsn() - s < $BENCH_SEGMENTS::numeric * 16777216 loop
			insert into bulk select g, md5(g::text), repeat(chr(65 + g % 26), 40)
				from generate_series(1, 50000) g;
		end loop; end \$\$" "select pg_switch_wal()" >/dev/null
	local n; n=$(ready_count)
	local before; before=$(archived_count)
	local t0 t1
	t0=$(now)
	set_archive_command "$push"
	if ! pg_wait_sql src 900 "select archived_count >= $before + $n from pg_stat_archiver"; then
		fail "$key: the burst of $n files is not archived within 900 s"
		return 1
	fi
	t1=$(now)
	local failed; failed=$(pg_sql src "select failed_count from pg_stat_archiver")
	echo "$n $(elapsed "$t0" "$t1")" >> "$R/push-$key"
	echo "   burst: $n files archived in $(elapsed "$t0" "$t1") s (failed_count so far $failed)"
	pg_sql src "checkpoint" >/dev/null

	recover "$key" "$key" "$fetch" ""
	# after the cp run, the floor: the same WAL already in pg_wal, nothing
	# restored (restore_command fails): what the replay alone costs
	[ "$key" = cp ] && recover "$key" floor false "$B/cp"
	rm -rf "$(pg_dir "bb-$key")"
	return 0
}

# wa_conf NAME ARCHIVE PUSH_AHEAD FETCH_AHEAD [key=value...]: a walarchive config and its spool.
wa_conf() {
	local name=$1 archive=$2 push=$3 fetch=$4; shift 4
	mkdir -p "$B/spool-$name"
	rm -rf "$B/spool-$name"/*
	chown postgres:postgres "$B/spool-$name"
	chmod 700 "$B/spool-$name"   # a spool only its owner can write, or it is ignored
	walarchive_conf "$B/$name.conf" "archive=$archive" "spool_dir=$B/spool-$name" \
		"push_ahead=$push" "fetch_ahead=$fetch" "parallel=$BENCH_PARALLEL" "log_level=info" "$@"
}
wa_push()  { echo "$WALARCHIVE_BIN/walpush -c $B/$1.conf %p %f"; }
wa_fetch() { echo "$WALARCHIVE_BIN/walfetch -c $B/$1.conf %f %p"; }

# ---- transports --------------------------------------------------------------

declare -A ARCHIVE EXTRA
for tr in $BENCH_TRANSPORTS; do
	case $tr in
	local)
		ARCHIVE[local]=$B/arch-local
		EXTRA[local]="" ;;
	sftp)
		D=$B/sshd
		sshd_setup "$D" postgres >/dev/null || { fail "sshd setup"; continue; }
		sshd_start "$D" || { fail "sshd start"; continue; }
		sshd_known_hosts "$D" || { fail "ssh-keyscan"; continue; }
		mkdir -p "$B/sftp-remote"; chown "$SSHD_USER" "$B/sftp-remote"
		ARCHIVE[sftp]=$(sshd_url "$D" "$B/sftp-remote")
		EXTRA[sftp]="ssh_key=$D/id_ed25519 ssh_known_hosts=$D/known_hosts timeout=30" ;;
	sftp-wan)
		# the same sshd behind a proxy that limits each connection to
		# BENCH_WAN_RATE bytes/s each way and delays it by BENCH_WAN_DELAY_MS,
		# as a link to another site does; needs "sftp" listed before it
		[ -n "${ARCHIVE[sftp]:-}" ] || { fail "sftp-wan needs the sftp transport first"; continue; }
		sshd_throttle_proxy "$D" "$BENCH_WAN_RATE" "$BENCH_WAN_DELAY_MS" || { fail "throttle proxy"; continue; }
		PP=$(cat "$D/proxy_port")
		sed "s/^\[127.0.0.1\]:$(sshd_port "$D") /[127.0.0.1]:$PP /" "$D/known_hosts" > "$D/known_hosts_wan"
		chmod 644 "$D/known_hosts_wan"
		ARCHIVE[sftp-wan]=sftp://$SSHD_USER@127.0.0.1:$PP/$B/sftp-remote
		EXTRA[sftp-wan]="ssh_key=$D/id_ed25519 ssh_known_hosts=$D/known_hosts_wan timeout=60" ;;
	s3)
		swift_start swift walarchive >/dev/null || { fail "swift start"; continue; }
		ARCHIVE[s3]=s3://$SWIFT_BUCKET/bench
		EXTRA[s3]="s3_endpoint=http://127.0.0.1:$SWIFT_PORT s3_uri_style=path s3_region=us-east-1 s3_access_key=$SWIFT_ACCESS s3_secret_key=$SWIFT_SECRET timeout=60" ;;
	*) fail "unknown transport $tr" ;;
	esac
done

# pgBackRest, asynchronous, local posix repository, lz4 level 1 as walpush
mkdir -p "$B/pgbr/repo" "$B/pgbr/lock" "$B/pgbr/log" "$B/pgbr/spool" "$B/pgbr/spool-get"
chown -R postgres:postgres "$B/pgbr"
pgbr_conf() {   # pgbr_conf FILE PGDATA SPOOL
	cat > "$1" <<EOF
[global]
repo1-type=posix
repo1-path=$B/pgbr/repo
compress-type=lz4
compress-level=1
archive-async=y
process-max=$BENCH_PARALLEL
archive-get-queue-max=$((BENCH_FETCH_AHEAD * 16))MiB
spool-path=$3
lock-path=$B/pgbr/lock
log-path=$B/pgbr/log
log-level-console=warn
log-level-stderr=warn
log-level-file=off
start-fast=y

[bench]
pg1-path=$2
pg1-port=$(pg_port src)
pg1-socket-path=$(pg_sock src)
EOF
	chown postgres "$1"
}
pgbr_conf "$B/pgbr/push.conf" "$(pg_data src)" "$B/pgbr/spool"
as_pg pgbackrest --config="$B/pgbr/push.conf" --stanza=bench stanza-create >"$B/pgbr/stanza.log" 2>&1 ||
	{ fail "pgbackrest stanza-create: $(cat "$B/pgbr/stanza.log")"; }

# ---- runs ------------------------------------------------------------------

for round in $(seq 1 "$BENCH_ROUNDS"); do
	for tr in $BENCH_TRANSPORTS; do
		[ -n "${ARCHIVE[$tr]:-}" ] || continue
		for mode in on off; do
			push=$BENCH_PUSH_AHEAD fetch=$BENCH_FETCH_AHEAD
			[ $mode = off ] && push=0 fetch=0
			name=$tr-$mode-$round
			arch=${ARCHIVE[$tr]}
			[ $tr = local ] && { mkdir -p "$arch/$name"; chown postgres:postgres "$arch" "$arch/$name"; }
			[ "${tr%-wan}" = sftp ] && { mkdir -p "$B/sftp-remote/$name"; chown "$SSHD_USER" "$B/sftp-remote/$name"; }
			# shellcheck disable=SC2086
			wa_conf "$name" "$arch/$name" "$push" "$fetch" ${EXTRA[$tr]}
			run_one "$tr-$mode" "$(wa_push "$name")" "$(wa_fetch "$name")"
		done
	done
	# pgBackRest async: the restoring cluster's own config names its data directory
	pgbr_conf "$B/pgbr/get.conf" "$(pg_data rec-pgbackrest)" "$B/pgbr/spool-get"
	run_one pgbackrest "pgbackrest --config=$B/pgbr/push.conf --stanza=bench archive-push %p" \
		"pgbackrest --config=$B/pgbr/get.conf --stanza=bench archive-get %f \"%p\""
	# the setup guide's commands: what PostgreSQL's replay alone costs
	rm -rf "$B/cp"; mkdir -p "$B/cp"; chown postgres:postgres "$B/cp"
	run_one cp "test ! -f $B/cp/%f && cp %p $B/cp/%f" "cp $B/cp/%f %p"
done
pg_stop src fast

# ---- results -----------------------------------------------------------------

echo
echo "== results ($BENCH_ROUNDS round(s), push_ahead = $BENCH_PUSH_AHEAD or 0, fetch_ahead = $BENCH_FETCH_AHEAD or 0, parallel = $BENCH_PARALLEL; bench took $((SECONDS - T0)) s, $FAILURES failures)"
python3 - "$R" "$BENCH_TRANSPORTS" "$BENCH_PUSH_AHEAD" "$BENCH_PARALLEL" "$BENCH_WAN_RATE" "$BENCH_WAN_DELAY_MS" "$BENCH_FETCH_AHEAD" <<'PY'
import os, statistics, sys
out, transports, ahead, par = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4]
fahead = sys.argv[7]
def med(kind, key):
    p = os.path.join(out, "%s-%s" % (kind, key))
    if not os.path.exists(p):
        return None
    rows = [tuple(map(float, l.split())) for l in open(p) if l.strip()]
    return (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows))
def cell(m):
    return "n/a" if m is None else "%.1f s (%.1f seg/s)" % (m[1], m[0] / m[1])
def ratio(a, b):
    return None if a is None or b is None else b[1] / a[1]
def fmt(r, target):
    if r is None:
        return "n/a"
    return "%.2f× (target ≥ %s×: %s)" % (r, target, "met" if r >= target else "NOT met")
names = {"local": "local directory", "sftp": "SFTP (sshd on loopback)", "s3": "S3 (Swift s3api on loopback)",
         "sftp-wan": "SFTP, %s MB/s and %g ms round trip per connection" % (int(sys.argv[5]) // 1000000, 2 * float(sys.argv[6]))}
print()
print("| Archive | Burst, push_ahead = %s | Burst, push_ahead = 0 | Speed-up | Recovery, fetch_ahead = %s | Recovery, fetch_ahead = 0 | Speed-up |" % (ahead, fahead))
print("|---|---|---|---|---|---|---|")
for t in transports:
    pon, poff, fon, foff = med("push", t + "-on"), med("push", t + "-off"), med("fetch", t + "-on"), med("fetch", t + "-off")
    rp, rf = ratio(pon, poff), ratio(fon, foff)
    print("| %s | %s | %s | %s | %s | %s | %s |" % (names.get(t, t), cell(pon), cell(poff),
          "n/a" if rp is None else "%.1f×" % rp, cell(fon), cell(foff), "n/a" if rf is None else "%.1f×" % rf))
pb, pf = med("push", "pgbackrest"), med("fetch", "pgbackrest")
print("| pgBackRest async, local (process-max = %s) | %s | | | %s | | |" % (par, cell(pb), cell(pf)))
print("| cp, local (no compression, no fsync, no checks) | %s | | | %s | | |" % (cell(med("push", "cp")), cell(med("fetch", "cp"))))
floor = med("fetch", "floor")
print("| the floor: the same WAL already in pg_wal (replay alone) | | | | %s | | |" % cell(floor))
print()
print("Targets (README, Performance):")
print("  burst over SFTP, push-ahead on vs off:           ", fmt(ratio(med("push", "sftp-on"), med("push", "sftp-off")), 4))
if "sftp-wan" in transports:
    print("  burst over SFTP-WAN, push-ahead on vs off:       ", fmt(ratio(med("push", "sftp-wan-on"), med("push", "sftp-wan-off")), 4))
r = ratio(med("push", "local-on"), pb)
print("  burst local, walarchive vs pgBackRest async:      ", "n/a" if r is None else
      "%.2f× as fast (target ≥ 1×: %s)" % (r, "met" if r >= 1 else "NOT met"))
r = ratio(med("fetch", "local-on"), pf)
print("  recovery local, walarchive vs pgBackRest async:   ", "n/a" if r is None else "%.2f× as fast" % r)
for t in transports:
    print("  recovery %-8s fetch-ahead on vs off:          " % t, fmt(ratio(med("fetch", t + "-on"), med("fetch", t + "-off")), 2))
if floor is not None:
    print()
    print("Restore overhead (recovery time minus the floor, %.2f s):" % floor[1])
    over = lambda m: None if m is None else m[1] - floor[1]
    opb = over(pf)
    for k in [t + "-on" for t in transports] + [t + "-off" for t in transports] + ["pgbackrest", "cp"]:
        o = over(med("fetch", k))
        if o is None:
            continue
        rel = "" if opb is None or opb <= 0 or k == "pgbackrest" else "  (%.2f of pgBackRest's)" % (o / opb)
        print("  %-14s %6.2f s%s" % (k, o, rel))
PY
[ "${KEEP:-0}" = 1 ] && echo "bench: work directory kept in $B"
t_run_cleanups
[ "$FAILURES" -eq 0 ]
