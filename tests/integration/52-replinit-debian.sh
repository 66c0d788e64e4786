#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# replinit on Debian's layout: clusters made by pg_createcluster, with their
# configuration in /etc/postgresql/15/NAME and their data in
# /var/lib/postgresql/15/NAME, run by pg_ctlcluster.  `replinit primary
# --restart` must restart the primary with pg_ctlcluster (pg_ctl would lose
# the configuration directory); `replinit standby --replace --start` on the
# empty cluster pg_createcluster made must refuse while that cluster runs,
# then replace its data, keep /etc/postgresql/15/NAME as it is, start it with
# pg_ctlcluster and stream.  The clusters are dropped at the end.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/pg.sh"

R=$WALARCHIVE_BIN/replinit
T=$WALARCHIVE_TMP
for p in pg_createcluster pg_ctlcluster pg_dropcluster pg_lsclusters; do
	command -v "$p" >/dev/null || { t_fail "$p not found (postgresql-common)"; t_done; }
done
[ -x /usr/lib/postgresql/15/bin/postgres ] || { t_fail "Debian's postgresql-15 is not installed"; t_done; }

# names unique to this run, so a leftover of an earlier run never collides
ID=$$
P=wa_p$ID
S=wa_s$ID
PPORT=$(t_free_port)
SPORT=$(t_free_port)
while [ "$SPORT" = "$PPORT" ]; do SPORT=$(t_free_port); done
SDATA=/var/lib/postgresql/15/$S
psql_at() { local port=$1; shift; as_pg psql -X -q -At -v ON_ERROR_STOP=1 -p "$port" -d postgres -c "$@"; }

mkdir -p "$T/archive"
chown postgres:postgres "$T/archive"
walarchive_conf "$T/walarchive.conf" "archive=$T/archive"
echo 'debian layout secret' > "$T/pw"
chown postgres:postgres "$T/pw"
chmod 600 "$T/pw"

t_cleanup "pg_dropcluster --stop 15 $P"
t_cleanup "pg_dropcluster --stop 15 $S"
if ! pg_createcluster 15 "$P" -p "$PPORT" --start >"$T/create-p.log" 2>&1; then
	t_fail "pg_createcluster 15 $P"; cat "$T/create-p.log"; t_done
fi
if ! pg_createcluster 15 "$S" -p "$SPORT" >"$T/create-s.log" 2>&1; then
	t_fail "pg_createcluster 15 $S"; cat "$T/create-s.log"; t_done
fi
# Debian's pg_hba.conf allows replication from 127.0.0.1 to any role with a
# password; remove that, as on a server that never had a standby
sed -i '/^host *replication/d' "/etc/postgresql/15/$P/pg_hba.conf"
as_pg pg_ctlcluster 15 "$P" reload

# --- the primary
replinit_run primary -d "port=$PPORT dbname=postgres" --standby 127.0.0.1 --password-file "$T/pw" \
	-c "$T/walarchive.conf" --restart
t_eq "primary on a Debian cluster: exit 0" "$rc" 0
[ "$rc" = 0 ] || echo "$out"
t_match "primary: restarted with pg_ctlcluster" "$out" "restarted the server with pg_ctlcluster 15 $P restart \(archive_mode\)"
t_match "primary: pg_hba.conf in /etc/postgresql" "$out" "/etc/postgresql/15/$P/pg_hba.conf"
t_check "primary: the replication line is in /etc/postgresql/15/$P/pg_hba.conf" \
	grep -Eq '^host[[:space:]]+replication[[:space:]]+replicator[[:space:]]+127\.0\.0\.1/32[[:space:]]+scram-sha-256' \
	"/etc/postgresql/15/$P/pg_hba.conf"
t_eq "primary: archive_mode is on after the restart" "$(psql_at "$PPORT" 'SHOW archive_mode')" "on"
t_eq "primary: still runs from its /etc configuration" "$(psql_at "$PPORT" 'SHOW config_file')" \
	"/etc/postgresql/15/$P/postgresql.conf"
t_match "primary: pg_lsclusters shows it online" "$(pg_lsclusters -h 15 "$P")" "online"

# --- the standby: refused while the cluster pg_createcluster made runs
# the entries of the data directory (postmaster.* come and go with a start)
entries() { ls -A "$SDATA" | grep -v '^postmaster\.' | sort | tr '\n' ' '; }
before=$(entries)
as_pg pg_ctlcluster 15 "$S" start
replinit_run standby --primary "127.0.0.1:$PPORT" --pgdata "$SDATA" --password-file "$T/pw" \
	-c "$T/walarchive.conf" --replace --start --timeout 60
t_eq "standby over a running Debian cluster: non-zero exit" "$([ "$rc" -ne 0 ] && echo fail)" fail
t_match "standby over a running Debian cluster: says it is in use" "$out" "in use|running"
t_eq "standby over a running Debian cluster: one line" "$(printf '%s\n' "$out" | grep -c .)" 1
as_pg pg_ctlcluster 15 "$S" stop
t_eq "standby over a running Debian cluster: its files untouched" "$(entries)" "$before"

# --- the dry run names the layout and changes nothing
replinit_run standby --primary "127.0.0.1:$PPORT" --pgdata "$SDATA" --password-file "$T/pw" \
	-c "$T/walarchive.conf" --replace --start --timeout 60 --dry-run
t_eq "standby dry run: exit 0" "$rc" 0
t_match "standby dry run: Debian layout" "$out" "Debian layout"
t_match "standby dry run: names what --replace removes" "$out" "remove.*$SDATA"
t_eq "standby dry run: nothing changed" "$(entries)" "$before"

# --- the standby, for real
etc_sum() { find "/etc/postgresql/15/$S" -type f | sort | xargs cat | md5sum; }
conf_sum=$(etc_sum)
replinit_run standby --primary "127.0.0.1:$PPORT" --pgdata "$SDATA" --password-file "$T/pw" \
	-c "$T/walarchive.conf" --replace --start --timeout 60
t_eq "standby on a Debian cluster: exit 0" "$rc" 0
[ "$rc" = 0 ] || echo "$out"
t_match "standby: started with pg_ctlcluster" "$out" "started the standby \(log /var/log/postgresql/postgresql-15-$S.log\)"
t_match "standby: streams" "$out" "the standby streams from 127\.0\.0\.1:$PPORT"
t_check "standby: standby.signal in the data directory" test -f "$SDATA/standby.signal"
t_check "standby: restore_command walfetch in postgresql.auto.conf" grep -q "^restore_command = '.*walfetch" "$SDATA/postgresql.auto.conf"
t_eq "standby: /etc/postgresql/15/$S left as it was" "$(etc_sum)" "$conf_sum"
t_eq "standby: runs on its Debian port $SPORT from /etc" "$(psql_at "$SPORT" 'SHOW config_file' 2>&1)" \
	"/etc/postgresql/15/$S/postgresql.conf"
t_eq "standby: in recovery" "$(psql_at "$SPORT" 'SELECT pg_is_in_recovery()')" t
t_check "standby: the data directory is owned by postgres" test "$(stat -c %U "$SDATA")" = postgres
psql_at "$PPORT" "CREATE TABLE deb_probe AS SELECT 7 AS x" >/dev/null
got=
for _ in $(seq 1 100); do
	got=$(psql_at "$SPORT" "SELECT x FROM deb_probe" 2>/dev/null) && [ "$got" = 7 ] && break
	sleep 0.3
done
t_eq "standby: a row written on the primary appears" "$got" 7
t_eq "standby: no staging directory left in /var/lib/postgresql/15" \
	"$(find /var/lib/postgresql/15 -maxdepth 1 -name ".$S.replinit-*" | wc -l)" 0

# --- a second run changes nothing
replinit_run standby --primary "127.0.0.1:$PPORT" --pgdata "$SDATA" --password-file "$T/pw" \
	-c "$T/walarchive.conf" --start --timeout 60
t_eq "standby second run: exit 0" "$rc" 0
t_match "standby second run: nothing to do" "$out" "nothing to do"
t_done
