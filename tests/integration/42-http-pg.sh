#!/bin/bash
# SANITIZE_OK: also run against the ASan+UBSan build by tests/run.sh
# End to end with PostgreSQL 15 over each HTTP transport: a primary archives
# through walpush under pgbench into nginx WebDAV (HTTPS), into S3 (Swift
# s3api) and into Azure Blob Storage (Azurite), then a copy of its base backup recovers with walfetch to a named
# restore point and must hold exactly the data committed before it.
. "$(dirname "$0")/../lib/common.sh"
. "$WALARCHIVE_SRC/tests/lib/pg.sh"
. "$WALARCHIVE_SRC/tests/lib/nginx.sh"
. "$WALARCHIVE_SRC/tests/lib/swift.sh"
. "$WALARCHIVE_SRC/tests/lib/azurite.sh"

BIN=$WALARCHIVE_BIN

# run_case NAME CONF: the whole scenario with the archive that CONF names.
run_case() {
	local name=$1 conf=$2
	local prim=${name}_primary rest=${name}_restore
	pg_new "$prim" || { t_fail "$name: initdb"; return; }
	pg_conf "$prim" "archive_mode = on" "wal_level = replica" \
		"archive_command = '$BIN/walpush -c $conf %p %f'" "archive_timeout = 0"
	pg_start "$prim" || { t_fail "$name: start the primary"; return; }
	pg_take_basebackup "$prim" "$rest" || { t_fail "$name: base backup"; return; }
	pg_pgbench "$prim" -i -s 5 -q >/dev/null 2>&1 || t_fail "$name: pgbench -i"
	pg_pgbench "$prim" -T 10 -c 2 >/dev/null 2>&1 || t_fail "$name: pgbench -T 10"
	pg_sql "$prim" "create table marker(what text)" "insert into marker values ('before')" \
		>/dev/null || t_fail "$name: marker"
	local accounts
	accounts=$(pg_sql "$prim" "select sum(abalance) from pgbench_accounts")
	pg_sql "$prim" "select pg_create_restore_point('walarchive_target')" >/dev/null
	pg_sql "$prim" "insert into marker values ('after')" "update pgbench_accounts set abalance = abalance + 1" \
		"select pg_switch_wal()" >/dev/null
	local last
	last=$(pg_sql "$prim" "select pg_walfile_name(pg_current_wal_lsn() - 1)")
	if pg_wait_sql "$prim" 120 "select last_archived_wal >= '$last' from pg_stat_archiver"; then
		t_ok "$name: primary archived every segment under pgbench ($(pg_sql "$prim" \
			"select archived_count from pg_stat_archiver") archived)"
	else
		t_fail "$name: archiving did not catch up ($(pg_sql "$prim" \
			"select archived_count, failed_count, last_failed_wal from pg_stat_archiver"))"
		tail -n 5 "$(pg_dir "$prim")/server.log"
	fi
	t_eq "$name: no failed archive attempts" \
		"$(pg_sql "$prim" "select failed_count from pg_stat_archiver")" 0
	pg_stop "$prim"

	pg_conf "$rest" "archive_mode = off" \
		"restore_command = '$BIN/walfetch -c $conf %f %p'" \
		"recovery_target_name = 'walarchive_target'" "recovery_target_action = 'promote'"
	touch "$(pg_data "$rest")/recovery.signal"
	chown postgres:postgres "$(pg_data "$rest")/recovery.signal"
	pg_start "$rest" || { t_fail "$name: start recovery"; return; }
	if pg_wait_sql "$rest" 180 "select not pg_is_in_recovery()"; then
		t_ok "$name: point-in-time recovery reached its target and promoted"
	else
		t_fail "$name: recovery did not finish"
		tail -n 10 "$(pg_dir "$rest")/server.log"
		return
	fi
	t_match "$name: the server log says the target was reached" \
		"$(cat "$(pg_dir "$rest")/server.log")" 'recovery stopping at restore point "walarchive_target"'
	t_eq "$name: data committed before the target is there, none after" \
		"$(pg_sql "$rest" "select string_agg(what, ',') from marker")" before
	t_eq "$name: pgbench balances as of the target" \
		"$(pg_sql "$rest" "select sum(abalance) from pgbench_accounts")" "$accounts"
	pg_stop "$rest"
}

# --- WebDAV (nginx, HTTPS) ---------------------------------------------------
if nginx_start dav; then
	conf=$WALARCHIVE_TMP/dav.conf
	walarchive_conf "$conf" "archive=$NGINX_URL" "http_user=$NGINX_USER" \
		"http_password=$NGINX_PASS" "tls_ca_file=$NGINX_CA" "timeout=10"
	run_case webdav "$conf"
else
	t_fail "start nginx"
fi

# --- S3 (Swift s3api) ----------------------------------------------------------
if swift_start swift walarchive; then
	conf=$WALARCHIVE_TMP/s3.conf
	walarchive_conf "$conf" "archive=s3://$SWIFT_BUCKET/pg" \
		"s3_endpoint=http://127.0.0.1:$SWIFT_PORT" "s3_uri_style=path" \
		"s3_access_key=$SWIFT_ACCESS" "s3_secret_key=$SWIFT_SECRET" "timeout=10"
	run_case s3 "$conf"
else
	t_fail "start swift"
fi

# --- Azure Blob Storage (Azurite) ---------------------------------------------
if azurite_start azurite walarchive; then
	conf=$WALARCHIVE_TMP/azure.conf
	walarchive_conf "$conf" "archive=azure://$AZURITE_ACCOUNT/$AZURITE_CONTAINER/pg" \
		"azure_endpoint=$AZURITE_ENDPOINT" "azure_account_key=$AZURITE_KEY" "timeout=10"
	run_case azure "$conf"
else
	t_fail "start azurite"
fi

t_done
