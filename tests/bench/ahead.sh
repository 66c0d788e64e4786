#!/bin/bash
# Benchmark of push-ahead and fetch-ahead, end to end with real PostgreSQL 15
# (run by hand as root; it reports and asserts nothing):
#
#   tests/bench/ahead.sh
#
# For each transport (local directory; SFTP to a private sshd; S3 to a
# private Swift with s3api), with push_ahead/fetch_ahead at their defaults
# for a network archive (64 and 16) and at 0; for pgBackRest's asynchronous
# archive-push/archive-get (process-max = parallel, lz4 level 1) on a local
# posix repository and, for the sftp and sftp-wan transports, on a
# repository host reached over ssh through the same sshd (and the same
# proxy): pgBackRest 2.45 has no SFTP repository type, its repo-host mode is
# its way to a remote archive (the remote pgbackrest runs on this machine as
# the sshd's user); and for cp into and out of a local directory, the setup
# guide's commands (no compression, no fsync, no checks: the floor of a
# recovery):
#   burst:    archiving is paused (archive_command = ''), bulk writes make
#             BENCH_SEGMENTS (default 64) segments, then the real command is
#             set and the timer runs until pg_stat_archiver.archived_count
#             covers every file that was ready;
#   recovery: a base backup taken just before the burst, restored with
#             recovery.signal and no target: the timer runs from pg_ctl start
#             until the server has replayed the whole archive and promoted.
# Beside each time it prints how busy the machine's CPUs were meanwhile
# (/proc/stat: user + nice + system + irq + softirq over all the time of all
# CPUs, this benchmark's polling and anything else running included): near
# 100 % the phase is bound by CPU, well below it something waits.
# Prints seconds, segments per second, the ratios beside the targets of
# push-ahead and fetch-ahead (README, Performance), the restore overhead
# (recovery time minus the floor's, the same WAL already in pg_wal) of each
# walarchive run against pgBackRest's over the same transport, and a
# README-ready Markdown table.
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
# The machine's CPU time so far, in clock ticks: "BUSY TOTAL", busy being
# user + nice + system + irq + softirq and total adding idle, iowait and steal
# (guest time is already counted in user), summed over all CPUs.
HZ=$(getconf CLK_TCK)
cpu_now() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat; }
# cpu_used BEFORE AFTER: "BUSY TOTAL" in CPU-seconds between two cpu_now
cpu_used() {
	awk -v a="$1" -v b="$2" -v hz="$HZ" 'BEGIN { split(a, x, " "); split(b, y, " ");
		printf "%.2f %.2f", (y[1] - x[1]) / hz, (y[2] - x[2]) / hz }'
}
# cpu_text USED: "CPU 93% busy (19.3 of 20.8 CPU-seconds)"
cpu_text() {
	awk -v u="$1" 'BEGIN { split(u, x, " ");
		printf "CPU %.0f%% busy (%.1f of %.1f CPU-seconds)", (x[2] > 0 ? 100 * x[1] / x[2] : 0), x[1], x[2] }'
}

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
	local c0 c1
	c0=$(cpu_now)
	t0=$(now)
	as_pg "$PGBIN/pg_ctl" -D "$(pg_data "$rec")" -l "$(pg_dir "$rec")/server.log" \
		-o "-p $(pg_port "$rec") -k $(pg_sock "$rec")" -W start >/dev/null
	t_cleanup "pg_stop $rec immediate"
	# pg_ctl -W returns before the postmaster writes its PID file
	t_wait 30 test -f "$(pg_data "$rec")/postmaster.pid"
	local end=$((SECONDS + 900)) ok=0 data; data=$(pg_data "$rec")
	while [ $SECONDS -lt $end ]; do
		# the server gave up (not just "starting up" answers to our polling)
		[ -f "$data/postmaster.pid" ] || break
		# PostgreSQL removes recovery.signal when the replay is over: until
		# then, asking the server (runuser, psql, a backend refusing it) would
		# cost the CPU this phase is profiled with
		[ -e "$data/recovery.signal" ] && { sleep 0.05; continue; }
		[ "$(pg_sql "$rec" "select pg_is_in_recovery()" 2>/dev/null)" = f ] && { ok=1; break; }
		sleep 0.05
	done
	t1=$(now)
	c1=$(cpu_now)
	if [ $ok = 1 ]; then
		local fromspool; fromspool=$(grep -c 'restored from the spool' "$(pg_dir "$rec")/server.log")
		local used; used=$(cpu_used "$c0" "$c1")
		echo "$segs $(elapsed "$t0" "$t1") $used" >> "$R/fetch-$key"
		echo "   recovery: $segs segments replayed in $(elapsed "$t0" "$t1") s ($fromspool from the spool) — $(cpu_text "$used")"
		[ "$(pg_sql "$rec" "select count(*) > 0 from bulk")" = t ] || fail "$key: recovered cluster misses the burst's rows"
	else
		fail "$key: recovery does not finish: $(grep -v 'starting up' "$(pg_dir "$rec")/server.log" | grep 'FATAL\|PANIC' | head -n 2)"
	fi
	pg_stop "$rec" immediate
	[ $ok = 1 ] || cp "$(pg_dir "$rec")/server.log" "$R/failed-$key.log"
	# wait for a prefetcher still running from this recovery
	local lock
	for lock in "$B"/spool-*/"$SYSID"/.prefetch.lock; do [ -e "$lock" ] && timeout 60 flock "$lock" true; done
	# and for pgBackRest's asynchronous archive-get (flock too; as postgres,
	# so that a lock file created here stays usable by pgBackRest)
	for lock in "$B"/pgbackrest*/lock/*.lock; do [ -e "$lock" ] && as_pg timeout 60 flock "$lock" true; done
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
	local t0 t1 c0 c1
	c0=$(cpu_now)
	t0=$(now)
	set_archive_command "$push"
	if ! pg_wait_sql src 900 "select archived_count >= $before + $n from pg_stat_archiver"; then
		fail "$key: the burst of $n files is not archived within 900 s"
		return 1
	fi
	t1=$(now)
	c1=$(cpu_now)
	local used; used=$(cpu_used "$c0" "$c1")
	local failed; failed=$(pg_sql src "select failed_count from pg_stat_archiver")
	echo "$n $(elapsed "$t0" "$t1") $used" >> "$R/push-$key"
	echo "   burst: $n files archived in $(elapsed "$t0" "$t1") s (failed_count so far $failed) — $(cpu_text "$used")"
	pg_sql src "checkpoint" >/dev/null

	recover "$key" "$key" "$fetch" ""
	# after the cp run, the floor: the same WAL already in pg_wal, nothing
	# restored (restore_command fails): what the replay alone costs
	[ "$key" = cp ] && { echo "-- floor (replay alone)"; recover "$key" floor false "$B/cp"; }
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

# pgBackRest, asynchronous, lz4 level 1 as walpush, process-max = parallel.
# Each run has its own directory $B/KEY (repository, spools, locks), so that
# no run sees another's WAL: "pgbackrest" keeps a local posix repository;
# "pgbackrest-sftp" and "pgbackrest-sftp-wan" reach theirs as a repository
# host over ssh, with the sshd and the client key of the sftp transport,
# directly or through the sftp-wan proxy. The remote pgbackrest runs on this
# machine as $SSHD_USER and reads DIR/remote.conf (repo1-path, its own lock
# and log paths).
declare -A PGBR_REPO PGBR_OK
pgbr_conf() {   # pgbr_conf KEY FILE PGDATA SPOOL
	cat > "$2" <<EOF
[global]
${PGBR_REPO[$1]}
compress-type=lz4
compress-level=1
archive-async=y
process-max=$BENCH_PARALLEL
archive-get-queue-max=$((BENCH_FETCH_AHEAD * 16))MiB
spool-path=$4
lock-path=$B/$1/lock
log-path=$B/$1/log
log-level-console=warn
log-level-stderr=warn
log-level-file=off
start-fast=y

[bench]
pg1-path=$3
pg1-port=$(pg_port src)
pg1-socket-path=$(pg_sock src)
EOF
	chown postgres "$2"
}
# pgbr_setup KEY [PORT KNOWN_HOSTS]: the run's directory and stanza; with
# PORT, a repository host at 127.0.0.1:PORT (the sshd or its proxy).
pgbr_setup() {
	local key=$1 port=${2:-} kh=${3:-} dir=$B/$1
	rm -rf "$dir"
	mkdir -p "$dir/repo" "$dir/lock" "$dir/log" "$dir/spool" "$dir/spool-get"
	chown -R postgres:postgres "$dir"
	if [ -z "$port" ]; then
		PGBR_REPO[$key]="repo1-type=posix
repo1-path=$dir/repo"
	else
		mkdir -p "$dir/remote-lock" "$dir/remote-log"
		chown -R "$SSHD_USER" "$dir/repo" "$dir/remote-lock" "$dir/remote-log"
		cat > "$dir/remote.conf" <<EOF
[global]
repo1-path=$dir/repo
lock-path=$dir/remote-lock
log-path=$dir/remote-log
log-level-file=off
EOF
		chmod 644 "$dir/remote.conf"
		cat > "$dir/ssh" <<EOF
#!/bin/sh
# pgBackRest's cmd-ssh: the client key and known_hosts of the sftp transport
exec ssh -i $D/id_ed25519 -o UserKnownHostsFile=$kh -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes "\$@"
EOF
		chmod 755 "$dir/ssh"
		PGBR_REPO[$key]="repo1-host=127.0.0.1
repo1-host-port=$port
repo1-host-user=$SSHD_USER
repo1-host-config=$dir/remote.conf
cmd-ssh=$dir/ssh"
	fi
	pgbr_conf "$key" "$dir/push.conf" "$(pg_data src)" "$dir/spool"
	# with a repository host, stanza-create already goes over ssh
	as_pg pgbackrest --config="$dir/push.conf" --stanza=bench stanza-create >"$dir/stanza.log" 2>&1 ||
		{ fail "$key: pgbackrest stanza-create: $(cat "$dir/stanza.log")"; return 1; }
	PGBR_OK[$key]=1
}
pgbr_setup pgbackrest
[ -n "${ARCHIVE[sftp]:-}" ] && pgbr_setup pgbackrest-sftp "$(sshd_port "$D")" "$D/known_hosts"
[ -n "${ARCHIVE[sftp-wan]:-}" ] && pgbr_setup pgbackrest-sftp-wan "$PP" "$D/known_hosts_wan"

# ---- runs ------------------------------------------------------------------

# what else keeps the CPUs busy: the CPU figures below count it too
c0=$(cpu_now); sleep 2; c1=$(cpu_now)
echo "== before the runs, nothing of this benchmark working: $(cpu_text "$(cpu_used "$c0" "$c1")") over 2 s"

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
	for key in pgbackrest pgbackrest-sftp pgbackrest-sftp-wan; do
		[ -n "${PGBR_OK[$key]:-}" ] || continue
		pgbr_conf "$key" "$B/$key/get.conf" "$(pg_data "rec-$key")" "$B/$key/spool-get"
		run_one "$key" "pgbackrest --config=$B/$key/push.conf --stanza=bench archive-push %p" \
			"pgbackrest --config=$B/$key/get.conf --stanza=bench archive-get %f \"%p\""
	done
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
# a results file: one line per round, "FILES SECONDS BUSY_CPU_S TOTAL_CPU_S";
# the median of each, and of the CPU busy fraction
def med(kind, key):
    p = os.path.join(out, "%s-%s" % (kind, key))
    if not os.path.exists(p):
        return None
    rows = [tuple(map(float, l.split())) for l in open(p) if l.strip()]
    if not rows:
        return None
    busy = [r[2] / r[3] for r in rows if len(r) >= 4 and r[3] > 0]
    cpu = [r[2] for r in rows if len(r) >= 4]
    return (statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows),
            statistics.median(busy) if busy else None, statistics.median(cpu) if cpu else None)
def cell(m):
    return "n/a" if m is None else "%.1f s (%.1f seg/s)" % (m[1], m[0] / m[1])
def busy(m):
    return "n/a" if m is None or m[2] is None else "%.0f %%" % (100 * m[2])
def busy_s(m):   # with the CPU-seconds the phase kept busy
    return "n/a" if m is None or m[2] is None else "%3.0f %% (%.1f CPU-s)" % (100 * m[2], m[3])
def ratio(a, b):
    return None if a is None or b is None else b[1] / a[1]
def fmt(r, target):
    if r is None:
        return "n/a"
    return "%.2f× (target ≥ %s×: %s)" % (r, target, "met" if r >= target else "NOT met")
wan = "%s MB/s and %g ms round trip per connection" % (int(sys.argv[5]) // 1000000, 2 * float(sys.argv[6]))
names = {"local": "local directory", "sftp": "SFTP (sshd on loopback)", "s3": "S3 (Swift s3api on loopback)",
         "sftp-wan": "SFTP, " + wan}
# pgBackRest's run over the same transport
pgbr = {"local": "pgbackrest", "sftp": "pgbackrest-sftp", "sftp-wan": "pgbackrest-sftp-wan"}
pgbr_names = {"pgbackrest": "pgBackRest async, local (process-max = %s)" % par,
              "pgbackrest-sftp": "pgBackRest async, repository host over ssh on loopback",
              "pgbackrest-sftp-wan": "pgBackRest async, repository host over ssh, " + wan}
print()
print("| Archive | Burst, push_ahead = %s | Burst, push_ahead = 0 | Speed-up | Recovery, fetch_ahead = %s | CPU busy | Recovery, fetch_ahead = 0 | CPU busy | Speed-up |" % (ahead, fahead))
print("|---|---|---|---|---|---|---|---|---|")
for t in transports:
    pon, poff, fon, foff = med("push", t + "-on"), med("push", t + "-off"), med("fetch", t + "-on"), med("fetch", t + "-off")
    rp, rf = ratio(pon, poff), ratio(fon, foff)
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (names.get(t, t), cell(pon), cell(poff),
          "n/a" if rp is None else "%.1f×" % rp, cell(fon), busy(fon), cell(foff), busy(foff),
          "n/a" if rf is None else "%.1f×" % rf))
for k in ["pgbackrest", "pgbackrest-sftp", "pgbackrest-sftp-wan"]:
    pb, pf = med("push", k), med("fetch", k)
    if k == "pgbackrest" or pb is not None or pf is not None:
        print("| %s | %s | | | %s | %s | | | |" % (pgbr_names[k], cell(pb), cell(pf), busy(pf)))
cp = med("fetch", "cp")
print("| cp, local (no compression, no fsync, no checks) | %s | | | %s | %s | | | |" % (cell(med("push", "cp")), cell(cp), busy(cp)))
floor = med("fetch", "floor")
print("| the floor: the same WAL already in pg_wal (replay alone) | | | | %s | %s | | | |" % (cell(floor), busy(floor)))
print()
print("Targets (README, Performance):")
print("  burst over SFTP, push-ahead on vs off:           ", fmt(ratio(med("push", "sftp-on"), med("push", "sftp-off")), 4))
if "sftp-wan" in transports:
    print("  burst over SFTP-WAN, push-ahead on vs off:       ", fmt(ratio(med("push", "sftp-wan-on"), med("push", "sftp-wan-off")), 4))
for t in [t for t in transports if t in pgbr]:
    w, b = med("push", t + "-on"), med("push", pgbr[t])
    r = ratio(w, b)
    print("  burst %-8s walarchive vs pgBackRest async:   " % t, "n/a" if r is None else
          "%.2f× as fast (burst time %.2f of pgBackRest's %.1f s%s)" % (r, 1 / r, b[1],
          "; target ≥ 1×: %s" % ("met" if r >= 1 else "NOT met") if t == "local" else ""))
for t in [t for t in transports if t in pgbr]:
    r = ratio(med("fetch", t + "-on"), med("fetch", pgbr[t]))
    print("  recovery %-8s walarchive vs pgBackRest async:" % t, "n/a" if r is None else "%.2f× as fast" % r)
for t in transports:
    print("  recovery %-8s fetch-ahead on vs off:          " % t, fmt(ratio(med("fetch", t + "-on"), med("fetch", t + "-off")), 2))
if floor is not None:
    print()
    print("Restore overhead (recovery time minus the floor, %.2f s, CPU busy %s), against pgBackRest's over the same transport:" % (floor[1], busy_s(floor)))
    over = lambda m: None if m is None else m[1] - floor[1]
    for t in transports:
        for k in [t + "-on", t + "-off"]:
            m = med("fetch", k)
            if m is None:
                continue
            o = over(m)
            rel = "no pgBackRest run over %s" % t
            if t in pgbr and med("fetch", pgbr[t]) is not None:
                ob = over(med("fetch", pgbr[t]))
                if ob <= 0:
                    rel = "n/a: %s's overhead is %.2f s" % (pgbr[t], ob)
                else:
                    rel = "%.2f of %s's %.2f s (target ≤ 0.5: %s)" % (o / ob, pgbr[t], ob, "met" if o / ob <= 0.5 else "NOT met")
            print("  %-20s %6.2f s  CPU busy %-17s %s" % (k, o, busy_s(m), rel))
    for k in ["pgbackrest", "pgbackrest-sftp", "pgbackrest-sftp-wan", "cp"]:
        m = med("fetch", k)
        if m is not None:
            print("  %-20s %6.2f s  CPU busy %s" % (k, over(m), busy_s(m)))
PY
[ "${KEEP:-0}" = 1 ] && echo "bench: work directory kept in $B"
t_run_cleanups
[ "$FAILURES" -eq 0 ]
