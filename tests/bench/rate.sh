#!/bin/bash
# Benchmark of the sustained archiving rate, end to end with real PostgreSQL
# 15 (run by hand as root; it reports and asserts nothing):
#
#   tests/bench/rate.sh
#
# The question: what is the highest steady WAL rate that the archiver keeps
# up with while pgbench loads the primary, i.e. with the backlog of .ready
# files bounded, not growing?  One primary cluster (archive_mode = on,
# wal_level = replica, checkpoint_timeout = 30min, max_wal_size = 16GB as in
# ahead.sh, wal_init_zero = off; a warm-up writes as much WAL as a run makes, so that every
# configuration recycles its segments rather than the first creating them for
# the others) takes a WAL-heavy
# pgbench load: BENCH_CLIENTS clients (-j 2) each running, as fast as they
# can, one transaction of BENCH_ROWS rows as ahead.sh's burst writes them
# (insert ... select g, md5(g::text), repeat(chr(65 + g % 26), 40) from
# generate_series).  The table is truncated at every sample so that the disk
# holds the WAL, not a growing table.  Archiving configurations, per
# transport in BENCH_TRANSPORTS:
#   local:  walpush into a local directory (push_ahead = BENCH_PUSH_AHEAD,
#           default auto: 0 there), and pgBackRest's asynchronous
#           archive-push into a local posix repository (lz4 level 1 as
#           walpush, process-max = BENCH_PARALLEL, as ahead.sh's pgbr_conf);
#   sftp:   walpush over SFTP to a private sshd on loopback (push_ahead auto:
#           64), and pgBackRest asynchronous in its repository-host mode over
#           ssh to the same sshd (repo1-host = 127.0.0.1, the sshd's port and
#           user, cmd-ssh a wrapper adding the key and known_hosts): the
#           remote side runs pgbackrest as the sshd's user on this machine,
#           as a backup server would.  pgBackRest 2.45 has no SFTP
#           repository type; its ssh protocol is the nearest like for like.
#           Its stanza is created by a local pgbackrest writing straight into
#           the remote repository's directory (stanza-create refuses to run
#           from a database host against a repository host), then handed to
#           the sshd's user.
# Both tools use parallel / process-max = BENCH_PARALLEL (default 4).
#
# Phase 1, unthrottled: for each configuration in turn, pgbench runs at full
# speed for BENCH_SECONDS (default 120) with that archive_command; every
# BENCH_SAMPLE (default 5) seconds the script samples pg_current_wal_lsn,
# pg_stat_archiver (archived_count, failed_count) and the number of .ready
# files (the backlog).  It reports the WAL generated (MiB/s from the LSN),
# the WAL archived (archived_count x 16 MiB / s), the backlog at the start,
# the end and its peak, and its slope (least squares) over the last 60 s (in
# a shorter run, all but the first 15 s, at least its last half).  Verdict: "growing" when that slope exceeds 5%
# of the rate at which segments were made (and 0.05 files/s): the archiver
# is saturated, and its archived rate is the highest steady rate it keeps up
# with on this machine under this load; otherwise "bounded": it kept up with
# everything pgbench made here, and its figure is a lower bound (>= the
# generated rate).  On a machine with few cores pgbench and the archiver
# share the CPU, so an archiver that costs less CPU also lets pgbench make
# more WAL: compare the generated rates too.
# Between configurations: pgbench stops, a pg_switch_wal, the backlog drains
# with the same command (the time is reported: the archiver's rate without
# load), the table is truncated, CHECKPOINT; so each configuration starts
# with an empty backlog.  Each walarchive configuration archives into a fresh
# directory, removed after its drain to keep the disk bounded (likewise the
# pgBackRest repositories' WAL).
#
# Phase 2, throttled (BENCH_CONFIRM_SECONDS, default 60; 0 skips it): for a
# transport where one tool was saturated in phase 1, pgbench is throttled
# (--rate, from phase 1's WAL bytes per transaction) to 1.1 times that
# tool's archived rate (the lower one when both were saturated), and both
# tools run again at that rate: the saturated one should grow, and the other
# stays bounded if it really is faster.  Skipped when both kept up (nothing
# to confirm).
#
# Prints one line per configuration (generated, archived, backlog start ->
# end, peak, slope, verdict), the walarchive / pgBackRest ratio of the
# archived rate for each transport beside the target "an archiving rate at
# least pgBackRest's" (>= 1x: met / NOT met), and a README-ready Markdown
# table.  About 13 minutes with the defaults (2 transports x 2 tools x
# (120 s + drain) plus phase 2 when it runs).
#
# Environment: WALARCHIVE_BIN (default <src>/build/inst/bin), BENCH_DIR (work
# directory, default /var/tmp/walarchive-rate.PID, removed unless KEEP=1),
# BENCH_SECONDS (default 120), BENCH_PARALLEL (default 4), BENCH_CLIENTS
# (pgbench clients, default 2), BENCH_TRANSPORTS (default "local sftp"),
# BENCH_CONFIRM_SECONDS (phase 2, default 60; 0: off), BENCH_SAMPLE (default
# 5), BENCH_ROWS (rows per transaction, default 5000), BENCH_LOAD (insert,
# the default, as above; or messages: each transaction writes one WAL record
# of BENCH_MESSAGE_KB KiB, default 1024, of random hex text (a 64 KiB block
# repeated, which LZ4 cannot see as a repeat) with
# pg_logical_emit_message, a load that makes WAL at little CPU per byte and
# so can outrun an archiver on a machine where the inserts cannot: a
# saturated archiver's backlog is pg_wal growing by hundreds of MiB/s, so keep
# BENCH_SECONDS short, 40 s took up to 27 GB here), BENCH_PUSH_AHEAD
# (default auto), BENCH_DRAIN (seconds allowed for a drain, default 600),
# KEEP=1 (keep BENCH_DIR).

set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${WALARCHIVE_BIN:=$SRC/build/inst/bin}"
: "${BENCH_DIR:=/var/tmp/walarchive-rate.$$}"
: "${BENCH_SECONDS:=120}"
: "${BENCH_PARALLEL:=4}"
: "${BENCH_CLIENTS:=2}"
: "${BENCH_TRANSPORTS:=local sftp}"
: "${BENCH_CONFIRM_SECONDS:=60}"
: "${BENCH_SAMPLE:=5}"
: "${BENCH_ROWS:=5000}"
: "${BENCH_LOAD:=insert}"
: "${BENCH_MESSAGE_KB:=1024}"
: "${BENCH_PUSH_AHEAD:=auto}"
: "${BENCH_DRAIN:=600}"
[ "$(id -u)" = 0 ] || { echo "bench: run as root (clusters run as the postgres user)" >&2; exit 2; }
[ -x "$WALARCHIVE_BIN/walpush" ] || { echo "bench: $WALARCHIVE_BIN/walpush not found (set WALARCHIVE_BIN)" >&2; exit 2; }
command -v pgbackrest >/dev/null || { echo "bench: pgbackrest not installed" >&2; exit 2; }
PGBACKREST=$(command -v pgbackrest)

mkdir -p "$BENCH_DIR"
chmod 755 "$BENCH_DIR"
WALARCHIVE_TMP=$BENCH_DIR
. "$SRC/tests/lib/common.sh"
. "$SRC/tests/lib/pg.sh"
. "$SRC/tests/lib/sshd.sh"
t_cleanup "[ '${KEEP:-0}' = 1 ] || rm -rf '$BENCH_DIR'"
export LC_ALL=C
B=$BENCH_DIR
R=$B/results
mkdir -p "$R"
T0=$SECONDS
FAILURES=0
fail() { echo "bench: $*" >&2; FAILURES=$((FAILURES + 1)); }

# ---- the cluster -----------------------------------------------------------

pg_new src >/dev/null || exit 1
pg_conf src "archive_mode = on" "archive_command = '/bin/true'" "wal_level = replica" \
	"checkpoint_timeout = 30min" "max_wal_size = 16GB" "min_wal_size = 1GB" \
	"wal_init_zero = off" "log_line_prefix = '%m [%p] '"
pg_start src || exit 1
pg_sql src "create table bulk(i int, h text, pad text)" >/dev/null
case $BENCH_LOAD in
insert)
	echo "insert into bulk select g, md5(g::text), repeat(chr(65 + g % 26), 40) from generate_series(1, $BENCH_ROWS) g;" > "$B/bulk.sql"
	LOAD_TEXT="$BENCH_ROWS rows per transaction" ;;
messages)
	# WAL at little CPU per byte: one WAL record of BENCH_MESSAGE_KB KiB per
	# transaction, 64 KiB of random hex text repeated: a repeat 64 KiB back
	# is beyond LZ4's window, which stores it at about half its size
	echo "select pg_logical_emit_message(false, 'bench', repeat((select string_agg(md5(random()::text), '') from generate_series(1, 2048)), $BENCH_MESSAGE_KB / 64));" > "$B/bulk.sql"
	LOAD_TEXT="a WAL message of $BENCH_MESSAGE_KB KiB per transaction" ;;
*) echo "bench: BENCH_LOAD is insert or messages, not '$BENCH_LOAD'" >&2; exit 2 ;;
esac
chmod 644 "$B/bulk.sql"
echo "== PostgreSQL $(pg_sql src "show server_version"), $(nproc) CPUs, $(findmnt -no FSTYPE -T "$B" 2>/dev/null || echo '?') under $B;" \
	"pgbench -c $BENCH_CLIENTS -j 2, $LOAD_TEXT; parallel = process-max = $BENCH_PARALLEL"

set_archive_command() {
	pg_sql src "alter system set archive_command = '$1'" "select pg_reload_conf()" >/dev/null
	sleep 1   # the archiver takes the new command at its next file
}
ready_count() { find "$(pg_data src)/pg_wal/archive_status" -name '*.ready' | wc -l; }
no_ready() { [ "$(ready_count)" -eq 0 ]; }

# sample: one line "epoch lsn_bytes archived_count failed_count ready_files"
sample() {
	pg_sql src "select extract(epoch from clock_timestamp()), pg_current_wal_lsn() - '0/0',
		archived_count, failed_count,
		(select count(*) from pg_ls_archive_statusdir() where name like '%.ready')
		from pg_stat_archiver" | tr '|' ' '
}

# load KEY SECONDS [RATE]: pgbench for SECONDS (throttled to RATE
# transactions/s if given), sampling into $R/KEY.samples; its output in
# $R/KEY.pgbench
load() {
	local key=$1 secs=$2 rate=${3:-}
	local throttle=()
	[ -n "$rate" ] && throttle=(--rate="$rate")
	sample > "$R/$key.samples"
	pg_pgbench src -n -f "$B/bulk.sql" -c "$BENCH_CLIENTS" -j 2 -T "$secs" "${throttle[@]}" \
		> "$R/$key.pgbench" 2>&1 &
	local pid=$! next=$((SECONDS + BENCH_SAMPLE))
	while kill -0 "$pid" 2>/dev/null; do
		sleep 0.5
		[ $SECONDS -ge $next ] || continue
		next=$((next + BENCH_SAMPLE))
		# a bounded table: only the WAL grows
		pg_sql src "set lock_timeout = '2s'" "truncate bulk" >/dev/null 2>&1
		sample >> "$R/$key.samples"
	done
	wait "$pid" || fail "$key: pgbench exits $?: $(tail -n 2 "$R/$key.pgbench" | tr '\n' ' ')"
	sample >> "$R/$key.samples"
}

# stats KEY: computes $R/KEY.stats from the samples (see the header)
stats() {
	python3 - "$R" "$1" <<'PY'
import re, sys
R, key = sys.argv[1], sys.argv[2]
MiB, SEG = 1048576.0, 16 * 1048576.0
rows = [tuple(map(float, l.split())) for l in open("%s/%s.samples" % (R, key)) if l.strip()]
(t0, l0, a0, f0, b0), (t1, l1, a1, f1, b1) = rows[0], rows[-1]
dt = t1 - t0
gen, arch = (l1 - l0) / dt / MiB, (a1 - a0) * 16 / dt
window = min(60.0, max(dt / 2, dt - 15))
w = [r for r in rows if r[0] >= t1 - window]
n = len(w)
mt, mb = sum(r[0] for r in w) / n, sum(r[4] for r in w) / n
den = sum((r[0] - mt) ** 2 for r in w)
slope = sum((r[0] - mt) * (r[4] - mb) for r in w) / den if den > 0 else 0.0
segrate = (l1 - l0) / dt / SEG
verdict = "growing" if slope > max(0.05, 0.05 * segrate) else "bounded"
txs = 0
m = re.search(r"number of transactions actually processed: (\d+)", open("%s/%s.pgbench" % (R, key)).read())
if m:
    txs = int(m.group(1))
bpt = (l1 - l0) / txs if txs else 0
print("%.2f %.2f %.2f %d %d %d %.3f %.0f %s %d %.0f %d" % (dt, gen, arch, b0, b1, max(r[4] for r in rows),
      slope, window, verdict, txs, bpt, f1 - f0))
PY
}

# run KEY SECONDS [RATE]: an empty backlog, the load, its figures, the drain
run() {
	local key=$1 secs=$2 rate=${3:-}
	load "$key" "$secs" "$rate"
	stats "$key" > "$R/$key.stats" || { fail "$key: no figures"; return 1; }
	local gen arch b0 b1 bmax slope window verdict failed
	read -r _ gen arch b0 b1 bmax slope window verdict _ _ failed < "$R/$key.stats"
	printf '   %-22s generated %6.1f MiB/s, archived %6.1f MiB/s, backlog %s -> %s files (peak %s, %+.2f files/s over the last %s s), failed %s: %s\n' \
		"$key" "$gen" "$arch" "$b0" "$b1" "$bmax" "$slope" "$window" "$failed" "$verdict"
	# the backlog drains with the same command: the rate without load
	pg_sql src "select pg_switch_wal()" >/dev/null
	local n t0 t1; n=$(ready_count); t0=$EPOCHREALTIME
	if t_wait "$BENCH_DRAIN" no_ready; then
		t1=$EPOCHREALTIME
		awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "   %-22s drained %d files in %.1f s after the load\n", "", n, b - a }'
		echo "$n $t0 $t1" > "$R/$key.drain"
	else
		fail "$key: $(ready_count) files still ready after $BENCH_DRAIN s; discarding them (archive_command = /bin/true)"
		set_archive_command /bin/true
		t_wait 300 no_ready || { fail "the backlog does not clear even with /bin/true"; exit 1; }
	fi
	pg_sql src "truncate bulk" "checkpoint" >/dev/null
}

# ---- archiving configurations ----------------------------------------------

# wa_conf NAME ARCHIVE [key=value...]: a walarchive config, its spool empty
wa_conf() {
	local name=$1 archive=$2; shift 2
	rm -rf "$B/spool-$name"
	mkdir -p "$B/spool-$name"
	chown postgres:postgres "$B/spool-$name"
	chmod 700 "$B/spool-$name"   # a spool only its owner can write, or it is ignored
	walarchive_conf "$B/$name.conf" "archive=$archive" "spool_dir=$B/spool-$name" \
		"push_ahead=$BENCH_PUSH_AHEAD" "parallel=$BENCH_PARALLEL" "$@"
}

# pgBackRest, asynchronous, lz4 level 1 as walpush
mkdir -p "$B/pgbr/repo" "$B/pgbr/lock" "$B/pgbr/log"
chown -R postgres:postgres "$B/pgbr"
pgbr_conf() {   # pgbr_conf FILE SPOOL REPO_LINES...
	local file=$1 spool=$2; shift 2
	mkdir -p "$spool"; chown postgres:postgres "$spool"
	{
		echo "[global]"
		printf '%s\n' "$@"
		cat <<EOF
compress-type=lz4
compress-level=1
archive-async=y
process-max=$BENCH_PARALLEL
spool-path=$spool
lock-path=$B/pgbr/lock
log-path=$B/pgbr/log
log-level-console=warn
log-level-stderr=warn
log-level-file=off

[bench]
pg1-path=$(pg_data src)
pg1-port=$(pg_port src)
pg1-socket-path=$(pg_sock src)
EOF
	} > "$file"
	chown postgres "$file"
}
pgbr_push() { echo "pgbackrest --config=$B/pgbr/$1.conf --stanza=bench archive-push %p"; }
# pgbr_clean REPO: drops the archived WAL (keeps archive.info)
pgbr_clean() { rm -rf "$1"/archive/bench/*/[0-9A-F]*; }

# CMD[key] the archive_command, ARCH[key] what to empty after the run,
# OWNER[key] who owns a walarchive archive's directory
declare -A CMD ARCH OWNER
KEYS=()
for tr in $BENCH_TRANSPORTS; do
	case $tr in
	local)
		mkdir -p "$B/arch"; chown postgres:postgres "$B/arch"
		wa_conf wa-local "$B/arch/local" log_level=notice
		CMD[local-walarchive]="$WALARCHIVE_BIN/walpush -c $B/wa-local.conf %p %f"
		ARCH[local-walarchive]=$B/arch/local OWNER[local-walarchive]=postgres
		pgbr_conf "$B/pgbr/local.conf" "$B/pgbr/spool-local" "repo1-type=posix" "repo1-path=$B/pgbr/repo"
		if as_pg pgbackrest --config="$B/pgbr/local.conf" --stanza=bench stanza-create >"$B/pgbr/stanza-local.log" 2>&1; then
			CMD[local-pgbackrest]=$(pgbr_push local)
			ARCH[local-pgbackrest]=pgbr:$B/pgbr/repo
		else
			fail "pgbackrest stanza-create (local): $(cat "$B/pgbr/stanza-local.log")"
		fi
		KEYS+=(local-walarchive local-pgbackrest) ;;
	sftp)
		D=$B/sshd
		sshd_setup "$D" postgres >/dev/null || { fail "sshd setup"; continue; }
		sshd_start "$D" || { fail "sshd start"; continue; }
		sshd_known_hosts "$D" || { fail "ssh-keyscan"; continue; }
		mkdir -p "$B/sftp-remote"; chown "$SSHD_USER" "$B/sftp-remote"
		wa_conf wa-sftp "$(sshd_url "$D" "$B/sftp-remote/wal")" log_level=notice \
			"ssh_key=$D/id_ed25519" "ssh_known_hosts=$D/known_hosts" timeout=30
		CMD[sftp-walarchive]="$WALARCHIVE_BIN/walpush -c $B/wa-sftp.conf %p %f"
		ARCH[sftp-walarchive]=$B/sftp-remote/wal OWNER[sftp-walarchive]=$SSHD_USER
		# pgBackRest's repository host: the sshd's user runs pgbackrest with
		# its own config naming the repository
		RH=$B/pgbr-remote
		mkdir -p "$RH/repo" "$RH/lock" "$RH/log"
		cat > "$RH/pgbackrest.conf" <<EOF
[global]
repo1-path=$RH/repo
lock-path=$RH/lock
log-path=$RH/log
log-level-console=warn
log-level-stderr=warn
log-level-file=off
EOF
		cat > "$B/pgbr/ssh" <<EOF
#!/bin/sh
exec ssh -i $D/id_ed25519 -o UserKnownHostsFile=$D/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes "\$@"
EOF
		chmod 755 "$B/pgbr/ssh"
		# the stanza, written into the repository's directory by a local
		# pgbackrest, then handed to the remote user
		chown -R postgres:postgres "$RH"
		pgbr_conf "$B/pgbr/create-ssh.conf" "$B/pgbr/spool-create" "repo1-type=posix" "repo1-path=$RH/repo"
		as_pg pgbackrest --config="$B/pgbr/create-ssh.conf" --stanza=bench stanza-create >"$B/pgbr/stanza-ssh.log" 2>&1 ||
			fail "pgbackrest stanza-create (ssh repository): $(cat "$B/pgbr/stanza-ssh.log")"
		chown -R "$SSHD_USER" "$RH"
		chmod 644 "$RH/pgbackrest.conf"
		pgbr_conf "$B/pgbr/ssh.conf" "$B/pgbr/spool-ssh" "repo1-host=127.0.0.1" "repo1-host-port=$(sshd_port "$D")" \
			"repo1-host-user=$SSHD_USER" "repo1-host-config=$RH/pgbackrest.conf" "repo1-host-cmd=$PGBACKREST" \
			"cmd-ssh=$B/pgbr/ssh"
		if as_pg pgbackrest --config="$B/pgbr/ssh.conf" --stanza=bench info >"$B/pgbr/info-ssh.log" 2>&1; then
			CMD[sftp-pgbackrest]=$(pgbr_push ssh)
			ARCH[sftp-pgbackrest]=pgbr:$RH/repo
		else
			fail "pgbackrest over ssh: info fails: $(cat "$B/pgbr/info-ssh.log")"
		fi
		KEYS+=(sftp-walarchive sftp-pgbackrest) ;;
	*) fail "unknown transport $tr" ;;
	esac
done

# prepare KEY: a fresh archive directory for walarchive, an empty spool
prepare() {
	case ${ARCH[$1]} in
	pgbr:*) ;;
	*)	mkdir -p "${ARCH[$1]}"; chown "${OWNER[$1]}" "${ARCH[$1]}"
		rm -rf "$B/spool-wa-${1%-walarchive}"/* ;;
	esac
}
# empty KEY: drops what KEY archived (the disk holds one run at a time)
empty() {
	local a=${ARCH[$1]}
	case $a in
	pgbr:*) pgbr_clean "${a#pgbr:}" ;;
	*) rm -rf "$a" ;;
	esac
}

# ---- phase 1: unthrottled ----------------------------------------------------

# A warm-up, archived to nowhere: a short pgbench, then as much WAL as the
# fastest configuration makes (BENCH_SECONDS x 128 MiB, cheap to write as
# logical messages), so that after the checkpoint every configuration, the
# first one too, recycles the segments it writes instead of creating them.
pg_pgbench src -n -f "$B/bulk.sql" -c "$BENCH_CLIENTS" -j 2 -T 5 >/dev/null 2>&1
pg_sql src "do \$\$ begin for i in 1 .. $((BENCH_SECONDS * 2)) loop
		perform pg_logical_emit_message(false, 'warm-up', repeat('x', 64 * 1048576)); end loop; end \$\$" \
	"select pg_switch_wal()" >/dev/null || fail "warm-up WAL not written"
t_wait 300 no_ready
pg_sql src "truncate bulk" "checkpoint" >/dev/null

echo "-- phase 1: pgbench at full speed for $BENCH_SECONDS s"
for key in "${KEYS[@]}"; do
	[ -n "${CMD[$key]:-}" ] || continue
	prepare "$key"
	set_archive_command "${CMD[$key]}"
	run "p1-$key" "$BENCH_SECONDS"
	empty "$key"
done

# ---- phase 2: throttled just above the saturated rate -----------------------

if [ "$BENCH_CONFIRM_SECONDS" -gt 0 ]; then
	for tr in $BENCH_TRANSPORTS; do
		w=$R/p1-$tr-walarchive.stats p=$R/p1-$tr-pgbackrest.stats
		{ [ -f "$w" ] && [ -f "$p" ]; } || continue
		# the target rate (MiB/s) and pgbench --rate (transactions/s), or nothing
		plan=$(python3 - "$w" "$p" <<'PY'
import sys
s = [open(f).read().split() for f in sys.argv[1:3]]
sat = [float(x[2]) for x in s if x[8] == "growing"]
bpt = [float(x[10]) for x in s if float(x[10]) > 0]
if sat and bpt:
    target = 1.1 * min(sat)
    print("%.1f %.2f" % (target, target * 1048576 / (sum(bpt) / len(bpt))))
PY
)
		if [ -z "$plan" ]; then
			echo "-- phase 2, $tr: both tools kept up with all that pgbench made; nothing to confirm"
			continue
		fi
		read -r target tps <<< "$plan"
		echo "-- phase 2, $tr: pgbench throttled to $tps transactions/s (about $target MiB/s of WAL) for $BENCH_CONFIRM_SECONDS s"
		echo "$target $tps" > "$R/p2-$tr.target"
		for tool in walarchive pgbackrest; do
			key=$tr-$tool
			prepare "$key"
			set_archive_command "${CMD[$key]}"
			run "p2-$key" "$BENCH_CONFIRM_SECONDS" "$tps"
			empty "$key"
		done
	done
fi
pg_stop src fast

# ---- results -----------------------------------------------------------------

echo
echo "== results (pgbench -c $BENCH_CLIENTS, $BENCH_SECONDS s unthrottled; parallel = process-max = $BENCH_PARALLEL; bench took $((SECONDS - T0)) s, $FAILURES failures)"
python3 - "$R" "$BENCH_TRANSPORTS" "$BENCH_PARALLEL" "$BENCH_SECONDS" "$BENCH_CONFIRM_SECONDS" <<'PY'
import os, sys
R, transports, par, secs, csecs = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4], sys.argv[5]
def st(key):
    p = os.path.join(R, key + ".stats")
    if not os.path.exists(p):
        return None
    x = open(p).read().split()
    return dict(gen=float(x[1]), arch=float(x[2]), b0=int(x[3]), b1=int(x[4]), bmax=int(x[5]),
                slope=float(x[6]), window=x[7], verdict=x[8], failed=int(x[11]))
names = {"local": "local directory", "sftp": "SFTP / ssh (sshd on loopback)"}
tools = {"walarchive": "walarchive", "pgbackrest": "pgBackRest async"}
def row(label, tool, s, extra=""):
    if s is None:
        return "| %s | %s | n/a | n/a | n/a | n/a | n/a | n/a |" % (label, tool)
    # the steady rate it keeps up with: what it archived when saturated,
    # else at least all that was made
    fig = ("%.1f" % s["arch"]) if s["verdict"] == "growing" else "≥ %.1f" % s["gen"]
    return "| %s | %s | %.1f | %.1f | %d → %d (peak %d) | %+.2f | %s%s | %s |" % (label, tool, s["gen"], s["arch"],
           s["b0"], s["b1"], s["bmax"], s["slope"], s["verdict"], extra, fig)
print()
print("| Archive | Archiver | WAL generated, MiB/s | WAL archived, MiB/s | Backlog, files | Slope, files/s | Backlog | Keeps up with, MiB/s |")
print("|---|---|---:|---:|---|---:|---|---:|")
for t in transports:
    for tool in ("walarchive", "pgbackrest"):
        print(row(names.get(t, t) + ", unthrottled", tools[tool], st("p1-%s-%s" % (t, tool))))
    tp = os.path.join(R, "p2-%s.target" % t)
    if os.path.exists(tp):
        target = open(tp).read().split()[0]
        for tool in ("walarchive", "pgbackrest"):
            print(row("%s, throttled to %s MiB/s" % (names.get(t, t), target), tools[tool], st("p2-%s-%s" % (t, tool))))
print()
print("Per configuration (p1: unthrottled, p2: throttled):")
for f in sorted(os.listdir(R)):
    if not f.endswith(".stats"):
        continue
    k = f[:-6]
    s = st(k)
    d = os.path.join(R, k + ".drain")
    dr = ""
    if os.path.exists(d):
        n, a, b = open(d).read().split()
        dr = ", then drained %s files in %.1f s" % (n, float(b) - float(a))
    print("  %-22s generated %6.1f MiB/s, archived %6.1f MiB/s, backlog %d -> %d (peak %d, %+.2f files/s over the last %s s), failed %d: %s%s" % (
          k, s["gen"], s["arch"], s["b0"], s["b1"], s["bmax"], s["slope"], s["window"], s["failed"], s["verdict"], dr))
print()
print("Target (README, Performance): an archiving rate at least pgBackRest's:")
for t in transports:
    w, p = st("p1-%s-walarchive" % t), st("p1-%s-pgbackrest" % t)
    if w is None or p is None or p["arch"] <= 0:
        print("  %-8s n/a" % t)
        continue
    r = w["arch"] / p["arch"]
    if w["verdict"] == "bounded" and p["verdict"] == "bounded":
        note = ("but both kept up with all that pgbench made: the rates are the load's, set by the CPU each "
                "archiver left pgbench, not the archivers' limits")
    elif w["verdict"] == "bounded":
        note = "walarchive kept up, pgBackRest saturated: walarchive's figure is a lower bound"
    elif p["verdict"] == "bounded":
        note = "walarchive saturated, pgBackRest kept up"
    else:
        note = "both saturated"
    print("  %-8s walarchive / pgBackRest archived rate, unthrottled: %.2f× (target ≥ 1×: %s; %s)" % (
          t, r, "met" if r >= 1 else "NOT met", note))
    w2, p2 = st("p2-%s-walarchive" % t), st("p2-%s-pgbackrest" % t)
    if w2 is not None and p2 is not None:
        target = open(os.path.join(R, "p2-%s.target" % t)).read().split()[0]
        print("  %-8s throttled to %s MiB/s: walarchive %s, pgBackRest %s (keeping up where the other grows: %s)" % (
              t, target, w2["verdict"], p2["verdict"],
              "walarchive" if w2["verdict"] == "bounded" and p2["verdict"] == "growing" else
              "pgBackRest" if p2["verdict"] == "bounded" and w2["verdict"] == "growing" else "neither alone"))
        for name, s in (("walarchive", w2), ("pgBackRest", p2)):
            if s["gen"] < 0.95 * float(target):
                print("  %-8s   beside %s pgbench made only %.1f MiB/s of the %s asked: the CPU that archiving takes from it" % (
                      "", name, s["gen"], target))
PY
[ "${KEEP:-0}" = 1 ] && echo "bench: work directory kept in $B"
t_run_cleanups
[ "$FAILURES" -eq 0 ]
