#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# Push-ahead and fetch-ahead with real PostgreSQL 15 and a local archive:
# (a) a burst is archived with push-ahead, every object is the segment's
#     bytes; (b) a file changed after it was pushed ahead is pushed again,
#     never assumed; (c) walpush SIGKILLed in the middle of push-ahead
#     batches, then PostgreSQL continues: every segment archived exactly
#     once with the right content; (d) the backlog warning; (e) fetch-ahead:
#     a standby catches up from the spool; a corrupt or wrong spooled file is
#     dropped; a stale spool is cleaned; concurrent walfetch; .history and
#     .partial never come from the spool; a standby promoted while its
#     prefetcher runs starts timeline 2, and a second standby with
#     recovery_target_timeline = 'latest' and fetch-ahead follows it;
#     (f) walpush pushes its own file beside the batch; a push-ahead child
#     SIGKILLed loses only its file, and walpush waits for its children.

. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"
. "$(dirname "$0")/../lib/wal.sh"

BIN=$WALARCHIVE_BIN
T=$WALARCHIVE_TMP
ARCH=$T/archive
for p in walpush walfetch; do
	[ -x "$BIN/$p" ] || { t_fail "$BIN/$p is not installed"; t_done; }
done
for tool in lz4 flock python3; do
	command -v $tool >/dev/null || { t_fail "$tool is not installed"; t_done; }
done
mkdir -p "$ARCH"
chown postgres:postgres "$ARCH"

# node_conf NAME [key=value...]: $T/NAME.conf for the local archive with
# its own spool $T/spool-NAME (owned by postgres), log lines at info.
node_conf() {
	local name=$1; shift
	mkdir -p "$T/spool-$name"
	chown postgres:postgres "$T/spool-$name"
	chmod 700 "$T/spool-$name"
	walarchive_conf "$T/$name.conf" "archive=$ARCH" "spool_dir=$T/spool-$name" "log_level=info" \
		"push_ahead=16" "fetch_ahead=16" "parallel=4" "$@"
}
push_cmd()  { echo "$BIN/walpush -c $T/$1.conf %p %f"; }
fetch_cmd() { echo "$BIN/walfetch -c $T/$1.conf %f %p"; }

# arch_names and arch_has (tests/lib/wal.sh) leave out temporary (dot) names
ARCH_HIDE_TMP=1
arch_files()  { find "$ARCH/$SYSID" -type f ! -name walarchive.info ! -name '.*' 2>/dev/null; }
arch_tmp_count() { find "$ARCH" -type f -name '.*' | wc -l; }
# The archived object of NAME, decompressed, on stdout.
arch_cat() {
	local n=$1 d=$ARCH/$SYSID/${1:0:16}
	case $n in *.history) d=$ARCH/$SYSID ;; esac
	if [ -f "$d/$n.lz4" ]; then lz4 -dcq "$d/$n.lz4"; else cat "$d/$n"; fi
}
# Whether the archived object of NAME holds exactly the bytes of FILE.
arch_same() { arch_cat "$1" | cmp -s - "$2"; }

ready_count() { ls "$(pg_data "$1")/pg_wal/archive_status" | grep -c '\.ready$'; }
no_ready() { [ "$(ready_count "$1")" -eq 0 ]; }
# wait_archived (tests/lib/pg.sh): 90 s, and until nothing is left to archive
WAIT_ARCHIVED_SECS=90 WAIT_ARCHIVED_READY=1
# Next segment name after NAME (16 MiB segments).
seg_next() {
	local n=$1 k=${2:-1}
	local s=$(( (16#${n:8:8}) * 256 + (16#${n:16:8}) + k ))
	printf '%s%08X%08X\n' "${n:0:8}" $((s / 256)) $((s % 256))
}
log_count() { grep -Ec -- "$2" "$(pg_dir "$1")/server.log"; }
# flip FILE OFFSET: inverts one byte in place.
flip() {
	python3 - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xFF]))
PY
}
t_cleanup "for s in $T/spool-*/*/.prefetch.lock; do timeout 30 flock \$s true; done"

# ---- (a) a burst archived with push-ahead ---------------------------------

node_conf prim "backlog_warn=8"
pg_new prim || { t_fail "initdb"; t_done; }
# archive_mode on with no command: PostgreSQL keeps .ready files and waits,
# which makes a backlog without failed attempts
pg_conf prim "archive_mode = on" "archive_command = ''" "wal_level = replica" \
	"checkpoint_timeout = 30min" "max_wal_size = 8GB" "hot_standby = on"
pg_start prim || { t_fail "primary starts"; t_done; }
SYSID=$(pg_sql prim "select system_identifier from pg_control_system()")
pg_sql prim "create table marker(v text)" "create table t(i int, pad text)" >/dev/null
# the base backup for the standbys, before everything below
pg_sql prim "alter system set archive_command = '$(push_cmd prim)'" "select pg_reload_conf()" >/dev/null
pg_take_basebackup prim bb || { t_fail "base backup"; t_done; }
wait_archived prim "$(switch_wal prim)"
pg_sql prim "alter system set archive_command = ''" "select pg_reload_conf()" >/dev/null
sleep 1

sqls=()
for i in $(seq 1 30); do
	sqls+=("insert into t select g, repeat('a', 100) from generate_series(1, 2000) g" "select pg_switch_wal()")
done
FIRST=$(pg_sql prim "select pg_walfile_name(pg_current_wal_lsn())")
pg_sql prim "${sqls[@]}" >/dev/null
LAST=$(switch_wal prim)
BURST=$(( (16#${LAST:16:8}) - (16#${FIRST:16:8}) + 1 ))
t_check "burst: $BURST segments ready ($FIRST..$LAST), none archived yet" \
	test "$(ready_count prim)" -ge 30
pg_sql prim "alter system set archive_command = '$(push_cmd prim)'" "select pg_reload_conf()" >/dev/null
T0=$SECONDS
wait_archived prim "$LAST" 120
t_check "the burst is archived ($((SECONDS - T0)) s)" test $? -eq 0
t_eq "failed_count is 0" "$(pg_sql prim "select failed_count from pg_stat_archiver")" 0
log_has "server log: walpush pushed ready files ahead" prim 'walpush: pushed ahead [1-9][0-9]* of [0-9]+ ready files'
log_has "server log: later calls find them archived ahead" prim 'walpush: [0-9A-F]{24}: archived ahead at'
log_has "(d) server log: the backlog warning reports count, size and age" prim \
	'walpush: warning: archive backlog: [0-9]+ files ready \([0-9]+ MiB\), oldest [0-9A-F]{24} waiting [0-9]+ s'
n_ahead=$(log_count prim 'archived ahead at')
n_dup=$(log_count prim 'already archived with identical content')
echo "# burst: $n_ahead calls answered from push-ahead records, $n_dup found the object already there"
t_check "most calls of the burst are answered from push-ahead records ($n_ahead of $BURST)" \
	test "$n_ahead" -ge $((BURST / 2))
bad=0
s=$FIRST
while [[ "$s" < "$LAST" || "$s" == "$LAST" ]]; do
	arch_same "$s" "$(pg_data prim)/pg_wal/$s" || { bad=$((bad + 1)); echo "# $s differs or is missing"; }
	s=$(seg_next "$s")
done
t_eq "every segment of the burst decompresses to pg_wal's bytes" "$bad" 0
t_eq "no push-ahead record is left over" "$(ls "$T/spool-prim/$SYSID/pushed" | wc -l)" 0

# (d) below the threshold: no warning
node_conf quiet "backlog_warn=100"
sb=$(grep -c 'archive backlog' "$(pg_dir prim)/server.log")
pg_sql prim "alter system set archive_command = '$(push_cmd quiet)'" "select pg_reload_conf()" >/dev/null
sleep 0.5
pg_sql prim "insert into marker values ('quiet')" >/dev/null
wait_archived prim "$(switch_wal prim)"
t_eq "(d) no backlog warning below backlog_warn" "$(grep -c 'archive backlog' "$(pg_dir prim)/server.log")" "$sb"

# ---- (b) a file changed after it was pushed ahead -------------------------

node_conf hand
H=$T/hand
mkdir -p "$H/pg_wal/archive_status"
S1=$(seg_next "$FIRST" 2) S2=$(seg_next "$FIRST" 3) S3=$(seg_next "$FIRST" 4) S4=$(seg_next "$FIRST" 5)
for s in $S1 $S2 $S3 $S4; do cp "$(pg_data prim)/pg_wal/$s" "$H/pg_wal/$s"; done
touch "$H/pg_wal/archive_status/$S2.ready" "$H/pg_wal/archive_status/$S3.ready" \
	"$H/pg_wal/archive_status/$S4.ready"
chown -R postgres:postgres "$H"
sed -i "s|^archive = .*|archive = $T/arch-hand|" "$T/hand.conf"
mkdir -p "$T/arch-hand"; chown postgres:postgres "$T/arch-hand"
hpush() { as_pg "$BIN/walpush" -c "$T/hand.conf" -D "$(pg_data prim)" "$H/pg_wal/$1" "$1"; }
out=$(hpush "$S1" 2>&1); rc=$?
t_eq "walpush $S1 by hand exits 0" "$rc" 0
t_match "and pushes the 3 ready files ahead" "$out" "pushed ahead 3 of 3 ready files"
REC=$T/spool-hand/$SYSID/pushed
t_check "records for $S2 $S3 $S4" test -f "$REC/$S2" -a -f "$REC/$S3" -a -f "$REC/$S4"
t_match "a record holds size, xxh64, object, its stored size and the archive it went to" \
	"$(cat "$REC/$S2")" "^16777216 [0-9a-f]{16} $SYSID/${S2:0:16}/$S2.lz4 [1-9][0-9]* /.+$"
cp "$H/pg_wal/$S2" "$T/orig-$S2"
flip "$H/pg_wal/$S2" $((8 * 1048576 + 12345))
out=$(hpush "$S2" 2>&1); rc=$?
t_eq "a file changed after push-ahead: walpush exits 4 (the archive has other bytes)" "$rc" 4
t_match "and says so" "$out" "different content"
arch_same_hand() { lz4 -dcq "$T/arch-hand/$SYSID/${1:0:16}/$1.lz4" | cmp -s - "$2"; }
t_check "the archived object of $S2 still holds the original bytes" arch_same_hand "$S2" "$T/orig-$S2"
t_check "the record of $S2 is used up" test ! -e "$REC/$S2"
out=$(hpush "$S2" 2>&1); rc=$?
t_eq "asked again (no record now): still exit 4" "$rc" 4
# a record whose hash does not match the file: the file is checked, not assumed
sed -i -E "s/^([0-9]+) [0-9a-f]{16} /\\1 $(printf '0%.0s' $(seq 16)) /" "$REC/$S3"
out=$(hpush "$S3" 2>&1); rc=$?
t_eq "a record with another hash: walpush exits 0 (identical content archived)" "$rc" 0
t_match "after checking the archive, not from the record" "$out" "already archived with identical content"
# a file ready beside it: the call answered from a record starts no batch
# (under a load that outruns the archive, a batch per such call would hold
# every one of PostgreSQL's calls for a whole batch)
S5=$(seg_next "$FIRST" 6)
cp "$H/pg_wal/$S1" "$H/pg_wal/$S5"
touch "$H/pg_wal/archive_status/$S5.ready"
chown postgres:postgres "$H/pg_wal/$S5" "$H/pg_wal/archive_status/$S5.ready"
out=$(hpush "$S4" 2>&1); rc=$?
t_eq "an unchanged file with its record: exit 0" "$rc" 0
t_match "answered from the record" "$out" "$S4: archived ahead at"
t_check "and, with $S5 ready beside it, starts no batch (it said: $out)" \
	bash -c "! grep -q -e 'pushed ahead' -e 'push-ahead' <<<'$out'"
t_check "nor records $S5" test ! -e "$REC/$S5"
rm -f "$H/pg_wal/$S5" "$H/pg_wal/archive_status/$S5.ready"
# a record says where the file went: a walpush for another archive (a new
# archive after a migration, or a second copy) must still store the file there
cp "$T/orig-$S2" "$H/pg_wal/$S2"
hpush "$S1" >/dev/null 2>&1
t_check "records for $S3 $S4 again" test -f "$REC/$S3" -a -f "$REC/$S4"
sed "s|^archive = .*|archive = $T/arch-hand2|" "$T/hand.conf" > "$T/hand2.conf"
chown postgres "$T/hand2.conf"; chmod 600 "$T/hand2.conf"
mkdir -p "$T/arch-hand2"; chown postgres:postgres "$T/arch-hand2"
as_pg "$BIN/walpush" -c "$T/hand2.conf" -D "$(pg_data prim)" "$H/pg_wal/$S3" "$S3" 2>/dev/null
t_eq "walpush to another archive with a record from the first: exit 0" "$?" 0
t_check "and that archive holds $S3 (a record of another archive is not proof)" \
	test -f "$T/arch-hand2/$SYSID/${S3:0:16}/$S3.lz4"
# a fresh record is taken without asking the archive: with the archive
# gone, walpush still answers from it (what saves a connection per call)
hpush "$S1" >/dev/null 2>&1
t_check "a record for $S4 again" test -f "$REC/$S4"
mv "$T/arch-hand" "$T/arch-hand.away"
out=$(hpush "$S4" 2>&1); rc=$?
mv "$T/arch-hand.away" "$T/arch-hand"
t_eq "a record less than a minute old, the archive unreachable: walpush exits 0" "$rc" 0
t_match "answered from the record" "$out" "$S4: archived ahead at"
# a record outlives its object (a lifecycle rule, a cleanup by hand): an
# older record is checked against the archive, and the file pushed again
hpush "$S1" >/dev/null 2>&1
t_check "a record for $S4 again" test -f "$REC/$S4"
rm -f "$T/arch-hand/$SYSID/${S4:0:16}/$S4.lz4"
touch -h -d '2 minutes ago' "$REC/$S4"
t_check "the record of $S4 is still there" test -f "$REC/$S4"
out=$(hpush "$S4" 2>&1); rc=$?
t_eq "a record whose object was removed: walpush exits 0" "$rc" 0
t_check "not answered from the record ($out)" test -z "$(printf '%s' "$out" | grep 'archived ahead at')"
t_check "the object of $S4 is back, with the file's bytes" arch_same_hand "$S4" "$H/pg_wal/$S4"
# ... and a record whose object is there with another size: pushed again
# too, and then refused, since the archive's object differs
hpush "$S1" >/dev/null 2>&1
t_check "a record for $S4 again" test -f "$REC/$S4"
o4="$T/arch-hand/$SYSID/${S4:0:16}/$S4.lz4"
cp -p "$o4" "$T/o4.keep"; head -c 1000 "$T/o4.keep" > "$o4"
touch -h -d '2 minutes ago' "$REC/$S4"
out=$(hpush "$S4" 2>&1); rc=$?
t_eq "a record whose object has another size: not trusted, the push is refused (exit 4)" "$rc" 4
cp -p "$T/o4.keep" "$o4"

# ---- (f) the file asked for and the batch at the same time ----------------

# walpush pushes its own file while child processes push the batch off a
# shared queue; a child SIGKILLed midway loses only what it was pushing, and
# walpush never returns before its children
node_conf par "compress_level=9"
P=$T/par
mkdir -p "$P/pg_wal/archive_status" "$T/arch-par"
PS=()
for k in $(seq 6 15); do PS+=("$(seg_next "$FIRST" "$k")"); done
for s in "${PS[@]}"; do cp "$(pg_data prim)/pg_wal/$s" "$P/pg_wal/$s"; done
for s in "${PS[@]}"; do touch "$P/pg_wal/archive_status/$s.ready"; done
chown -R postgres:postgres "$P" "$T/arch-par"
sed -i "s|^archive = .*|archive = $T/arch-par|" "$T/par.conf"
PGUID=$(id -u postgres) PGGID=$(id -g postgres)
( cd "$(pg_data prim)" && exec setsid setpriv --reuid="$PGUID" --regid="$PGGID" --clear-groups \
	"$BIN/walpush" -c "$T/par.conf" "$P/pg_wal/${PS[0]}" "${PS[0]}" ) >"$T/par.log" 2>&1 &
pid=$!
victim=
for i in $(seq 1 500); do
	victim=$(ps -o pid= --ppid "$pid" 2>/dev/null | head -n 1 | tr -d ' ')
	[ -n "$victim" ] && break
	sleep 0.01
done
t_check "(f) walpush starts its push-ahead children" test -n "$victim"
sleep 0.2
[ -n "$victim" ] && kill -9 "$victim" 2>/dev/null
wait "$pid"
rc=$?
t_eq "(f) walpush with a child SIGKILLed exits 0" "$rc" 0
t_eq "(f) no process of its group outlives it" "$(ps -o pid= -g "$pid" 2>/dev/null | wc -l)" 0
t_match "(f) and reports the batch" "$(cat "$T/par.log")" "pushed ahead [0-9]+ of 9 ready files"
par_same() { lz4 -dcq "$T/arch-par/$SYSID/${1:0:16}/$1.lz4" 2>/dev/null | cmp -s - "$P/pg_wal/$1"; }
t_check "(f) the file asked for is archived with its bytes" par_same "${PS[0]}"
mv "$P/pg_wal/archive_status/${PS[0]}.ready" "$P/pg_wal/archive_status/${PS[0]}.done"
# PostgreSQL then asks for the others, in order, as its archiver would
again=0
for s in "${PS[@]:1}"; do
	( cd "$(pg_data prim)" && as_pg "$BIN/walpush" -c "$T/par.conf" "$P/pg_wal/$s" "$s" ) \
		>>"$T/par.log" 2>&1 || again=$((again + 1))
	mv "$P/pg_wal/archive_status/$s.ready" "$P/pg_wal/archive_status/$s.done"
done
t_eq "(f) every later call exits 0" "$again" 0
bad=0
for s in "${PS[@]}"; do par_same "$s" || { bad=$((bad + 1)); echo "# $s differs or is missing"; }; done
t_eq "(f) all ${#PS[@]} files are archived with their bytes" "$bad" 0
t_eq "(f) each exactly once (no NAME beside NAME.lz4)" \
	"$(find "$T/arch-par/$SYSID" -type f ! -name '.*' ! -name walarchive.info | wc -l)" "${#PS[@]}"
t_eq "(f) no record is left over" "$(ls "$T/spool-par/$SYSID/pushed" | wc -l)" 0
# parallel = 1: no child; the batch follows on the same connection (run
# outside a data directory: the cluster is known only from the file's header)
node_conf par1 "parallel=1"
sed -i "s|^archive = .*|archive = $T/arch-par1|" "$T/par1.conf"
mkdir -p "$T/arch-par1"; chown postgres:postgres "$T/arch-par1"
for s in "${PS[@]:1:3}"; do mv "$P/pg_wal/archive_status/$s.done" "$P/pg_wal/archive_status/$s.ready"; done
out=$(cd "$P" && as_pg "$BIN/walpush" -c "$T/par1.conf" "$P/pg_wal/${PS[0]}" "${PS[0]}" 2>&1)
t_eq "(f) parallel = 1: walpush exits 0" "$?" 0
t_match "(f) parallel = 1: and pushes the 3 ready files ahead" "$out" "pushed ahead 3 of 3 ready files"

# ---- (c) SIGKILL in the middle of push-ahead batches ----------------------

# A backlog of 48 segments.  PostgreSQL 15 waits about 30 s before it
# restarts an archiver whose command died on a signal, so the trials play the
# archiver by hand: walpush for the oldest ready file, in its own process
# group, killed with SIGKILL at a random moment (it marks the file done, as
# PostgreSQL would, only when walpush exited 0 before the kill).  Then
# PostgreSQL's own archiver takes over what is left.
pg_sql prim "alter system set archive_command = ''" "select pg_reload_conf()" >/dev/null
sleep 1
sqls=()
for i in $(seq 1 48); do
	sqls+=("insert into t select g, md5(g::text) from generate_series(1, 20000) g" "select pg_switch_wal()")
done
KFIRST=$(pg_sql prim "select pg_walfile_name(pg_current_wal_lsn())")
pg_sql prim "${sqls[@]}" >/dev/null
KLAST=$(switch_wal prim)
failed0=$(pg_sql prim "select failed_count from pg_stat_archiver")
ST=$(pg_data prim)/pg_wal/archive_status
PGUID=$(id -u postgres) PGGID=$(id -g postgres)
# the trials compress harder (slower pushes: wider windows to kill in)
sed 's/^compress_level = .*//' "$T/prim.conf" > "$T/kill.conf"
echo "compress_level = 9" >> "$T/kill.conf"
chown postgres "$T/kill.conf"; chmod 600 "$T/kill.conf"
in_batch=0 killed=0 done_by_trials=0 retry_failed=0
# (a call for a file an earlier batch pushed returns at once, without a
# batch, and is seldom killed: the trials go on past 24 until enough kills
# landed, while the backlog lasts)
for trial in $(seq 1 60); do
	[ "$trial" -gt 24 ] && [ $killed -ge 10 ] && [ $in_batch -ge 5 ] && break
	cur=$(ls "$ST" | grep -E '^[0-9A-F]{24}\.ready$' | sort | head -n 1)
	cur=${cur%.ready}
	[ -n "$cur" ] || break
	# half of the killed calls start from an empty spool (no records: a full batch)
	conf=$T/kill.conf
	if [ $((trial % 2)) -eq 0 ] && [ $((trial % 4)) -ne 0 ]; then
		conf=$T/kill-$trial.conf
		mkdir -p "$T/spool-kill-$trial"; chown postgres:postgres "$T/spool-kill-$trial"
		chmod 700 "$T/spool-kill-$trial"
		sed "s|^spool_dir = .*|spool_dir = $T/spool-kill-$trial|" "$T/kill.conf" > "$conf"
		chown postgres "$conf"; chmod 600 "$conf"
	fi
	( cd "$(pg_data prim)" && exec setsid setpriv --reuid="$PGUID" --regid="$PGGID" --clear-groups \
		"$BIN/walpush" -c "$conf" "pg_wal/$cur" "$cur" ) 2>>"$T/trials.log" &
	pid=$!
	if [ $((trial % 4)) -eq 0 ]; then
		# every fourth call runs to its end: the retry after kills must succeed
		wait "$pid"
		rc=$?
		[ $rc -eq 0 ] || retry_failed=$((retry_failed + 1))
		[ $rc -eq 0 ] && mv "$ST/$cur.ready" "$ST/$cur.done" && done_by_trials=$((done_by_trials + 1))
		continue
	elif [ $((trial % 4)) -eq 1 ]; then
		# now and then while it pushes the file asked for
		sleep "0.$(printf '%03d' $((RANDOM % 80)))"
	else
		# mostly once it has forked its push-ahead workers
		for i in $(seq 1 300); do
			[ "$(ps -o pid= -g "$pid" 2>/dev/null | wc -l)" -gt 2 ] && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.01
		done
		sleep "0.$(printf '%03d' $((RANDOM % 120)))"
	fi
	members=$(ps -o pid= -g "$pid" 2>/dev/null | wc -l)
	if kill -9 -- "-$pid" 2>/dev/null; then
		killed=$((killed + 1))
		[ "$members" -gt 2 ] && in_batch=$((in_batch + 1))
	fi
	wait "$pid" 2>/dev/null
	if [ $? -eq 0 ]; then
		mv "$ST/$cur.ready" "$ST/$cur.done"
		done_by_trials=$((done_by_trials + 1))
	fi
done
echo "# (c) $((trial - 1)) trials: $killed killed ($in_batch with push-ahead workers running), $done_by_trials ran to the end"
t_eq "(c) every walpush that was not killed exited 0" "$retry_failed" 0
t_setup "(c) walpush was killed $killed times, $in_batch of them in the middle of push-ahead batches" \
	test $killed -ge 10 -a $in_batch -ge 5
left=$(ready_count prim)
pg_sql prim "alter system set archive_command = '$(push_cmd prim)'" "select pg_reload_conf()" >/dev/null
wait_archived prim "$KLAST" 120
t_check "(c) then PostgreSQL archives the $left files left" test $? -eq 0
bad=0 n=0
s=$KFIRST
while [[ "$s" < "$KLAST" || "$s" == "$KLAST" ]]; do
	n=$((n + 1))
	arch_same "$s" "$(pg_data prim)/pg_wal/$s" || { bad=$((bad + 1)); echo "# $s differs or is missing"; }
	s=$(seg_next "$s")
done
t_eq "(c) all $n segments are archived with the right content" "$bad" 0
dups=$(arch_names | uniq -d | wc -l)
t_eq "(c) no segment is stored twice (as NAME and NAME.lz4)" "$dups" 0
strays=$(arch_files | sed 's|.*/||' | grep -vcE '^([0-9A-F]{24}(\.partial)?|[0-9A-F]{24}\.[0-9A-F]{8}\.backup|[0-9A-F]{8}\.history)(\.lz4)?$')
t_eq "(c) no object under any other name" "$strays" 0
echo "# (c) temporary files left in the archive by killed transfers: $(arch_tmp_count) (dot names, not objects)"
failed=$(( $(pg_sql prim "select failed_count from pg_stat_archiver") - failed0 ))
t_eq "(c) PostgreSQL's calls after the kills all succeed (failed_count unchanged)" "$failed" 0
t_eq "(c) no archive_command failed with an exit code (every retry succeeded)" \
	"$(log_count prim 'archive command failed with exit code')" 0
t_eq "(c) no walpush error in the log" "$(grep -c 'walpush: error\|refusing\|different content' "$(pg_dir prim)/server.log")" 0

# ---- (e) fetch-ahead --------------------------------------------------------

# a standby fed only from the archive, with fetch-ahead
node_conf sb1
pg_prepare sb1
cp -a "$(pg_data bb)" "$(pg_data sb1)"
pg_conf sb1 "port = $(pg_port sb1)" "unix_socket_directories = '$(pg_sock sb1)'" \
	"restore_command = '$(fetch_cmd sb1)'" "archive_mode = on" "archive_command = '$(push_cmd sb1)'"
as_pg sh -c "sed -i '/archive_command/d' '$(pg_data sb1)/postgresql.auto.conf'"
as_pg touch "$(pg_data sb1)/standby.signal"
pg_sql prim "insert into marker values ('caught-up')" >/dev/null
wait_archived prim "$(switch_wal prim)"
T0=$SECONDS
pg_start sb1 || { t_fail "standby sb1 starts"; t_done; }
pg_wait_sql sb1 120 "select count(*) = 1 from marker where v = 'caught-up'"
t_check "(e) a standby with fetch-ahead catches up from the archive ($((SECONDS - T0)) s)" test $? -eq 0
log_has "(e) server log: segments restored from the spool" sb1 'walfetch: [0-9A-F]{24}: restored from the spool'
echo "# (e) sb1: $(log_count sb1 'restored from the spool') restored from the spool, $(log_count sb1 'restored from [0-9]') from the archive"

# by hand: the spool of node "hf", walfetch run in the primary's data directory
node_conf hf
SP=$T/spool-hf/$SYSID
OUT=$T/out
mkdir -p "$OUT"; chown postgres:postgres "$OUT"
hfetch() { as_pg "$BIN/walfetch" -c "$T/hf.conf" -D "$(pg_data prim)" "$1" "$2"; }
N=$(seg_next "$KFIRST" 4)
# a spooled segment is "<segment>.<xxh64>", restored and ready to be renamed into place
HASH0=0123456789abcdef
spool_file() { ls "$SP/${1:0:16}/$1".* 2>/dev/null | grep -E "/$1\.[0-9a-f]{16}\$" | head -n 1; }
spool_has() { local s; for s in "$@"; do [ -n "$(spool_file "$s")" ] || return 1; done; }
# a stale spool: another timeline, an older position, an old temporary file
mkdir -p "$SP/0000000500000000" "$SP/${N:0:16}"
lz4 -dcq "$ARCH/$SYSID/${N:0:16}/$N.lz4" > "$SP/0000000500000000/0000000500000000000000AA.$HASH0"
OLD=$(seg_next "$N" -2)
lz4 -dcq "$ARCH/$SYSID/${OLD:0:16}/$OLD.lz4" > "$SP/${OLD:0:16}/$OLD.$HASH0"
# .history and .partial in the spool: never served from there
printf '1\t0/9000000\tno recovery target specified\n' | lz4 -q > "$SP/00000007.history.lz4"
cp "$ARCH/$SYSID/${N:0:16}/$N.lz4" "$SP/${N:0:16}/$N.partial.lz4"
chown -R postgres:postgres "$T/spool-hf"
hfetch 00000007.history "$OUT/h" 2>/dev/null
t_eq "(e) a .history present only in the spool is not served (exit 1)" "$?" 1
hfetch "$N.partial" "$OUT/p" 2>/dev/null
t_eq "(e) a .partial present only in the spool is not served (exit 1)" "$?" 1
t_check "(e) neither was written" test ! -e "$OUT/h" -a ! -e "$OUT/p"
hfetch "$N" "$OUT/$N" 2>/dev/null
t_eq "(e) walfetch $N exits 0" "$?" 0
t_check "(e) with the segment's bytes" cmp -s "$OUT/$N" "$(pg_data prim)/pg_wal/$N"
t_wait 30 spool_has "$(seg_next "$N")"
prefetch_wait "$T/spool-hf"
spooled=$(ls "$SP/${N:0:16}" | grep -cE '^[0-9A-F]{24}\.[0-9a-f]{16}$')
t_eq "(e) the prefetcher spooled the next 16 segments" "$spooled" 16
t_check "(e) each is the segment after $N up to +16" \
	spool_has "$(seg_next "$N" 1)" "$(seg_next "$N" 16)"
t_check "(e) stale spool: another timeline's file and directory are removed" test ! -e "$SP/0000000500000000"
t_check "(e) stale spool: an older position is removed" test ! -e "$SP/${OLD:0:16}/$OLD.$HASH0"
t_check "(e) stale spool: the .partial is removed" test ! -e "$SP/${N:0:16}/$N.partial.lz4"
t_eq "(e) no temporary file is left in the spool" "$(find "$T/spool-hf" -name '*.tmp' | wc -l)" 0

# a corrupt spooled file: one byte flipped (its hash no longer matches)
N1=$(seg_next "$N" 1) N2=$(seg_next "$N" 2) N3=$(seg_next "$N" 3)
flip "$(spool_file "$N1")" 20000
out=$(hfetch "$N1" "$OUT/$N1" 2>&1); rc=$?
t_eq "(e) corrupt spooled $N1: walfetch exits 0" "$rc" 0
t_check "(e) with the archive's bytes" cmp -s "$OUT/$N1" "$(pg_data prim)/pg_wal/$N1"
t_match "(e) and warns that the spooled copy was dropped" "$out" "warning: $N1: spooled copy dropped"
t_check "(e) the corrupt copy is gone from the spool" test -z "$(spool_file "$N1")"
prefetch_wait "$T/spool-hf"
# a segment with its right hash under another segment's name
rm -f "$(spool_file "$N2")"
f3=$(spool_file "$N3")
cp "$f3" "$SP/${N:0:16}/$N2.${f3##*.}"
# postgres's, as walarchive would have written it: the content check drops it
chown postgres:postgres "$SP/${N:0:16}/$N2.${f3##*.}"
out=$(hfetch "$N2" "$OUT/$N2" 2>&1); rc=$?
t_eq "(e) spooled $N2 holding another segment: walfetch exits 0" "$rc" 0
t_check "(e) with the archive's bytes" cmp -s "$OUT/$N2" "$(pg_data prim)/pg_wal/$N2"
t_match "(e) and warns" "$out" "spooled copy dropped"
prefetch_wait "$T/spool-hf"
out=$(hfetch "$N3" "$OUT/$N3" 2>&1); rc=$?
t_eq "(e) $N3 from the spool: exit 0" "$rc" 0
t_match "(e) says it came from the spool" "$out" "$N3: restored from the spool"
t_check "(e) with the segment's bytes" cmp -s "$OUT/$N3" "$(pg_data prim)/pg_wal/$N3"
prefetch_wait "$T/spool-hf"

# the destination on another file system than the spool (tmpfs): no rename
# across them; the segment is copied, hashed on the way, then taken
N4=$(seg_next "$N" 4)
XDEV=$(mktemp -d /dev/shm/walarchive-xdev.XXXXXX)
chown postgres:postgres "$XDEV"
t_cleanup "rm -rf '$XDEV'"
t_check "(e) $N4 is spooled" spool_has "$N4"
out=$(hfetch "$N4" "$XDEV/$N4" 2>&1); rc=$?
t_eq "(e) $N4 from the spool onto another file system: exit 0" "$rc" 0
t_match "(e) says it came from the spool" "$out" "$N4: restored from the spool"
t_check "(e) with the segment's bytes" cmp -s "$XDEV/$N4" "$(pg_data prim)/pg_wal/$N4"
t_check "(e) and the spooled copy is gone" test -z "$(spool_file "$N4")"
t_eq "(e) no temporary file left there" "$(find "$XDEV" -name '.*' | wc -l)" 0
prefetch_wait "$T/spool-hf"

# concurrent walfetch, for the same and for different segments, spooled or not
conc_bad=0
for round in 1 2 3; do
	for k in 4 5 6 20 21; do
		s=$(seg_next "$N" $((k + round * 3)))
		[[ "$s" > "$KLAST" ]] && continue
		rm -f "$OUT"/c-*
		hfetch "$s" "$OUT/c-$s-a" 2>/dev/null & p1=$!
		hfetch "$s" "$OUT/c-$s-b" 2>/dev/null & p2=$!
		o=$(seg_next "$s" 1)
		hfetch "$o" "$OUT/c-$o-c" 2>/dev/null & p3=$!
		wait $p1 || conc_bad=$((conc_bad + 1))
		wait $p2 || conc_bad=$((conc_bad + 1))
		wait $p3 || conc_bad=$((conc_bad + 1))
		cmp -s "$OUT/c-$s-a" "$(pg_data prim)/pg_wal/$s" || conc_bad=$((conc_bad + 1))
		cmp -s "$OUT/c-$s-b" "$(pg_data prim)/pg_wal/$s" || conc_bad=$((conc_bad + 1))
		cmp -s "$OUT/c-$o-c" "$(pg_data prim)/pg_wal/$o" || conc_bad=$((conc_bad + 1))
	done
done
t_eq "(e) concurrent walfetch (same and different segments): all exit 0 with the right bytes" "$conc_bad" 0
prefetch_wait "$T/spool-hf"
t_eq "(e) no temporary file left in the spool or the output directory" \
	"$(find "$T/spool-hf" "$OUT" -name '*.tmp' | wc -l)" 0

# ---- (e) promotion while fetch-ahead runs; a second standby follows -------

# the primary writes 20 more segments; sb1 replays them with fetch-ahead and
# is promoted while its prefetcher runs, after the operator copied the
# primary's current (unarchived) segment into its pg_wal
pg_sql sb1 "select pg_wal_replay_pause()" >/dev/null
sqls=()
for i in $(seq 1 20); do
	sqls+=("insert into t select g, md5(g::text) from generate_series(1, 20000) g" "select pg_switch_wal()")
done
pg_sql prim "${sqls[@]}" "insert into marker values ('before-fork')" >/dev/null
CUR=$(pg_sql prim "select pg_walfile_name(pg_current_wal_lsn())")
wait_archived prim "$(seg_next "$CUR" -1)"
as_pg cp "$(pg_data prim)/pg_wal/$CUR" "$(pg_data sb1)/pg_wal/$CUR"
pg_sql sb1 "select pg_wal_replay_resume()" >/dev/null
held=0
lock=$T/spool-sb1/$SYSID/.prefetch.lock
end=$((SECONDS + 60))
while [ $SECONDS -lt $end ]; do
	if [ -e "$lock" ] && ! flock -n "$lock" true; then held=1; break; fi
	sleep 0.01
done
as_pg "$PGBIN/pg_ctl" -D "$(pg_data sb1)" -w -t 120 promote >/dev/null
t_check "(e) sb1 promotes (requested while its prefetcher held the lock: $held)" test $? -eq 0
t_eq "(e) the promotion was requested while fetch-ahead was running" "$held" 1
t_eq "(e) sb1 replayed everything before the fork" \
	"$(pg_sql sb1 "select count(*) from marker where v = 'before-fork'")" 1
TLI=$(pg_sql sb1 "select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")
t_eq "(e) the promoted standby writes timeline 2" "$TLI" 00000002
pg_sql sb1 "insert into marker values ('tl2')" >/dev/null
L2=$(switch_wal sb1)
pg_wait_sql sb1 60 "select coalesce(last_archived_wal, '') >= '$L2' from pg_stat_archiver"
t_check "(e) the new row's segment $L2 is archived under a timeline 2 name" arch_has "$L2"
t_check "(e) 00000002.history is archived" arch_has 00000002.history
t_wait 30 arch_has "$CUR.partial"
t_check "(e) $CUR.partial is archived" arch_has "$CUR.partial"
# the old primary goes on writing timeline 1 past the fork (split brain):
# the spool may hold those segments, and they must never be replayed
pg_sql prim "insert into marker values ('tl1-divergent')" >/dev/null
for i in 1 2 3; do LD=$(switch_wal prim); done
wait_archived prim "$LD"
t_check "(e) the old primary's divergent timeline 1 segment $CUR is archived" arch_has "$CUR"

node_conf sb2
pg_prepare sb2
cp -a "$(pg_data bb)" "$(pg_data sb2)"
pg_conf sb2 "port = $(pg_port sb2)" "unix_socket_directories = '$(pg_sock sb2)'" \
	"restore_command = '$(fetch_cmd sb2)'" "archive_mode = off" "recovery_target_timeline = 'latest'"
as_pg touch "$(pg_data sb2)/standby.signal"
pg_start sb2 || { t_fail "standby sb2 starts"; t_done; }
pg_wait_sql sb2 120 "select count(*) = 1 from marker where v = 'tl2'"
t_check "(e) a second standby (latest, fetch-ahead) follows timeline 2 to the row written after the promotion" \
	test $? -eq 0
t_eq "(e) it never replayed the old primary's divergent row" \
	"$(pg_sql sb2 "select count(*) from marker where v = 'tl1-divergent'")" 0
log_has "(e) sb2 restored 00000002.history" sb2 'restored log file "00000002.history" from archive'
log_has "(e) sb2 restored segments from the spool" sb2 'walfetch: [0-9A-F]{24}: restored from the spool'
log_has "(e) sb2 restored timeline 2 segments" sb2 "restored log file \"00000002"
prefetch_wait "$T/spool-sb1"
prefetch_wait "$T/spool-sb2"
t_done
