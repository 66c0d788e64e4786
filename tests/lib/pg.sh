# PostgreSQL cluster helpers for the integration tests (bash; source after
# common.sh).  Clusters run as the postgres OS user, on 127.0.0.1 and a
# socket directory inside the cluster's own folder, on a free port.
#
#   PGBIN            server binaries (default: Debian's PostgreSQL 15)
#   pg_new NAME      initdb a cluster in $WALARCHIVE_TMP/NAME (data in NAME/data);
#                    prints nothing; sets nothing; use pg_port/pg_data NAME later
#   pg_conf NAME 'key = value'...   appends settings to postgresql.conf
#   pg_start NAME / pg_stop NAME [mode] / pg_sql NAME SQL [-d db]
#   switch_wal NODE / wait_archived NODE FILE [SECS] / log_has DESC NODE REGEX
#   replinit_run ARGS...   replinit as postgres; sets out and rc

: "${PGBIN:=/usr/lib/postgresql/15/bin}"
PGCLIENT=${PGCLIENT:-/usr/lib/postgresql/15/bin}
export PGBIN PGCLIENT

pg_dir()  { echo "$WALARCHIVE_TMP/$1"; }
pg_data() { echo "$WALARCHIVE_TMP/$1/data"; }
pg_port() { cat "$WALARCHIVE_TMP/$1/port"; }
pg_sock() { echo "$WALARCHIVE_TMP/$1/sock"; }

# pg_new NAME [initdb options...]
pg_new() {
	local name=$1; shift
	local dir; dir=$(pg_dir "$name")
	mkdir -p "$dir/sock"
	chown postgres:postgres "$dir" "$dir/sock"
	t_free_port > "$dir/port"
	as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync "$@" >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2; return 1; }
	pg_conf "$name" "port = $(pg_port "$name")" "listen_addresses = '127.0.0.1'" \
		"unix_socket_directories = '$dir/sock'" "fsync = on" "max_wal_size = 1GB" \
		"logging_collector = off"
}

# pg_prepare NAME: a directory for a cluster that is not made by initdb
# (a base backup or a copy); sets its port and socket dir.
pg_prepare() {
	local dir; dir=$(pg_dir "$1")
	mkdir -p "$dir/sock"
	chown postgres:postgres "$dir" "$dir/sock"
	t_free_port > "$dir/port"
}

pg_conf() {
	local name=$1; shift
	local line
	for line in "$@"; do
		echo "$line" >> "$(pg_data "$name")/postgresql.conf"
	done
}

pg_start() {
	local name=$1
	as_pg "$PGBIN/pg_ctl" -D "$(pg_data "$name")" -l "$(pg_dir "$name")/server.log" \
		-o "-p $(pg_port "$name") -k $(pg_sock "$name")" -w -t 120 start >/dev/null || {
		tail -n 30 "$(pg_dir "$name")/server.log" >&2; return 1; }
	t_cleanup "pg_stop $name immediate"
}

pg_stop() {
	local mode=${2:-fast}
	[ -f "$(pg_data "$1")/postmaster.pid" ] || return 0
	as_pg "$PGBIN/pg_ctl" -D "$(pg_data "$1")" -m "$mode" -w -t 120 stop >/dev/null
}

# pg_sql NAME SQL...: runs each SQL as a separate -c (separate transactions).
pg_sql() {
	local name=$1; shift
	local args=()
	local s
	for s in "$@"; do args+=(-c "$s"); done
	as_pg "$PGCLIENT/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$(pg_sock "$name")" \
		-p "$(pg_port "$name")" -U postgres -d postgres "${args[@]}"
}

# pg_wait_sql NAME SECONDS SQL: waits until SQL returns 't'.
pg_wait_sql() {
	local name=$1 secs=$2 sql=$3
	local end=$((SECONDS + secs))
	while [ "$(pg_sql "$name" "$sql" 2>/dev/null)" != "t" ]; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.3
	done
}

# pg_pgbench NAME ARGS...: runs pgbench against the cluster.
pg_pgbench() {
	local name=$1; shift
	as_pg "$PGCLIENT/pgbench" -h "$(pg_sock "$name")" -p "$(pg_port "$name")" -U postgres "$@" postgres
}

# pg_basebackup NAME DEST_NAME [options...]: plain-format backup into a new cluster dir.
pg_take_basebackup() {
	local name=$1 dest=$2; shift 2
	pg_prepare "$dest"
	as_pg "$PGCLIENT/pg_basebackup" -h "$(pg_sock "$name")" -p "$(pg_port "$name")" -U postgres \
		-D "$(pg_data "$dest")" -c fast "$@" >"$(pg_dir "$dest")/basebackup.log" 2>&1 || {
		cat "$(pg_dir "$dest")/basebackup.log" >&2; return 1; }
	# the copy still has the source's port and socket settings; override them
	pg_conf "$dest" "port = $(pg_port "$dest")" "unix_socket_directories = '$(pg_sock "$dest")'"
}

# A config file for walarchive owned by postgres: walarchive_conf PATH key=value...
walarchive_conf() {
	local path=$1; shift
	: > "$path"
	local kv
	for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}" >> "$path"; done
	chown postgres:postgres "$path"
	chmod 0600 "$path"
}

# switch_wal NODE: closes the current segment; prints the name of the closed file.
switch_wal() { pg_sql "$1" "select pg_walfile_name(pg_switch_wal())"; }

# wait_archived NODE FILE [SECS]: waits until NODE's archiver has archived
# FILE (same timeline) or later: SECS, else $WAIT_ARCHIVED_SECS, else 60
# seconds.  With WAIT_ARCHIVED_READY=1, also until NODE has nothing left to
# archive (no .ready file).
wait_archived() {
	local secs=${3:-${WAIT_ARCHIVED_SECS:-60}}
	pg_wait_sql "$1" "$secs" "select coalesce(last_archived_wal, '') >= '$2' from pg_stat_archiver" || return 1
	[ -z "${WAIT_ARCHIVED_READY:-}" ] || t_wait "$secs" _pg_no_ready "$1"
}
_pg_no_ready() { ! ls "$(pg_data "$1")/pg_wal/archive_status" | grep -q '\.ready$'; }

# log_has DESC NODE REGEX: NODE's server log has a line matching REGEX.
log_has() {
	if grep -Eq -- "$3" "$(pg_dir "$2")/server.log"; then t_ok "$1"
	else t_fail "$1 (no line /$3/ in $(pg_dir "$2")/server.log)"; fi
}

# replinit_run ARGS...: replinit as postgres, from /; sets out (its stdout
# and stderr together) and rc
replinit_run() { out=$(cd / && as_pg "$WALARCHIVE_BIN/replinit" "$@" 2>&1); rc=$?; }
