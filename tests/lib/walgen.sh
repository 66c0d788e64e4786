# Real WAL segments for transport tests (bash; source after common.sh and pg.sh).
#   walgen NAME COUNT   runs a PostgreSQL 15 cluster NAME, makes COUNT
#                       complete segments with data in them and copies them
#                       (with archive_command = cp) into $WALARCHIVE_TMP/NAME/wal;
#                       stops the cluster; sets WALGEN_DIR and WALGEN_PGDATA
walgen() {
	local name=$1 count=$2 i
	pg_new "$name" || return 1
	WALGEN_DIR=$(pg_dir "$name")/wal
	WALGEN_PGDATA=$(pg_data "$name")
	mkdir -p "$WALGEN_DIR"
	chown postgres:postgres "$WALGEN_DIR"
	pg_conf "$name" "archive_mode = on" "archive_command = 'cp %p $WALGEN_DIR/%f'"
	pg_start "$name" || return 1
	pg_sql "$name" "create table walgen(id int, payload text)" || return 1
	for i in $(seq 1 "$count"); do
		pg_sql "$name" "insert into walgen select g, md5(g::text) from generate_series(1, 20000) g" \
			"select pg_switch_wal()" >/dev/null || return 1
	done
	pg_wait_sql "$name" 60 "select archived_count >= $count from pg_stat_archiver" || return 1
	pg_stop "$name"
}
