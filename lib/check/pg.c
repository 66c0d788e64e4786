/*
 * walcheck's questions to PostgreSQL, over libpq: the settings that send
 * WAL to this archive (wal_level, archive_mode, archive_command or
 * archive_library, restore_command on a standby), where the server is, and
 * what its archiver last did.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check/check.h"

/* The first column of the first row of sql, or "" (NULL on an error). */
static const char *query_one(PGconn *conn, const char *sql, char *out, size_t cap)
{
	PGresult *res = PQexec(conn, sql);
	const char *ret = out;
	out[0] = '\0';
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		ret = NULL;
	else if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return ret;
}

/* The socket directory and port of the server running in datadir (postmaster.pid). */
static int datadir_conninfo(const char *datadir, char *out, size_t cap)
{
	char path[1024], line[1024], port[64] = "", sock[1024] = "";
	snprintf(path, sizeof(path), "%s/postmaster.pid", datadir);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	for (int n = 1; fgets(line, sizeof(line), f); n++) {
		line[strcspn(line, "\n")] = '\0';
		if (n == 4)
			snprintf(port, sizeof(port), "%.20s", line);
		if (n == 5)
			snprintf(sock, sizeof(sock), "%s", line);
	}
	fclose(f);
	if (!port[0])
		return 0;
	/* quoted for conninfo: ' and \ escaped */
	size_t used = (size_t)snprintf(out, cap, "port=%s dbname=postgres host='", port);
	const char *host = sock[0] ? sock : "localhost";
	for (const char *p = host; *p && used + 3 < cap; p++) {
		if (*p == '\'' || *p == '\\')
			out[used++] = '\\';
		out[used++] = *p;
	}
	if (used + 2 > cap)
		return 0;
	out[used++] = '\'';
	out[used] = '\0';
	return 1;
}

static time_t parse_epoch(const char *text)
{
	return text[0] ? (time_t)strtoll(text, NULL, 10) : 0;
}

void wal_check_pg_archiver(void *handle, wal_check_report *r)
{
	PGconn *conn = handle;
	PGresult *res =
		PQexec(conn, "SELECT coalesce(last_archived_wal, ''), "
			     "coalesce(extract(epoch from last_archived_time)::bigint::text, ''), "
			     "coalesce(last_failed_wal, ''), "
			     "coalesce(extract(epoch from last_failed_time)::bigint::text, ''), "
			     "archived_count, failed_count FROM pg_stat_archiver");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		wal_check_pg *pg = &r->pg;
		snprintf(pg->last_archived_wal, sizeof(pg->last_archived_wal), "%s",
			 PQgetvalue(res, 0, 0));
		pg->last_archived_time = parse_epoch(PQgetvalue(res, 0, 1));
		snprintf(pg->last_failed_wal, sizeof(pg->last_failed_wal), "%s",
			 PQgetvalue(res, 0, 2));
		pg->last_failed_time = parse_epoch(PQgetvalue(res, 0, 3));
		pg->archived_count = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
		pg->failed_count = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	}
	PQclear(res);
}

/*
 * Whether archive_library loads walarchive's module: 'walarchive', or a
 * path to it ('/usr/lib/postgresql/15/lib/walarchive.so').
 */
static int is_walarchive_module(const char *library)
{
	const char *slash = strrchr(library, '/');
	const char *base = slash ? slash + 1 : library;
	return strcmp(base, "walarchive") == 0 || strcmp(base, "walarchive.so") == 0;
}

/* Adds a NOT_WIRED problem for each setting that keeps WAL from reaching walarchive. */
static void check_wiring(wal_check_report *r)
{
	wal_check_pg *pg = &r->pg;
	if (strcmp(pg->wal_level, "replica") != 0 && strcmp(pg->wal_level, "logical") != 0)
		wal_check_problem_add(
			r, WAL_CHECK_NOT_WIRED, WAL_OK,
			"postgresql: wal_level is '%s': archiving needs 'replica' or 'logical' "
			"(ALTER SYSTEM SET wal_level = replica, then restart)",
			pg->wal_level);
	/* a standby archives only with 'always'; its primary archives otherwise */
	if (!pg->standby && strcmp(pg->archive_mode, "on") != 0 &&
	    strcmp(pg->archive_mode, "always") != 0)
		wal_check_problem_add(r, WAL_CHECK_NOT_WIRED, WAL_OK,
				      "postgresql: archive_mode is '%s': nothing is archived "
				      "(ALTER SYSTEM SET archive_mode = on, then restart)",
				      pg->archive_mode);
	int archives = !pg->standby || strcmp(pg->archive_mode, "always") == 0;
	if (archives && !is_walarchive_module(pg->archive_library) &&
	    !strstr(pg->archive_command, "walpush")) {
		if (pg->archive_library[0])
			wal_check_problem_add(r, WAL_CHECK_NOT_WIRED, WAL_OK,
					      "postgresql: archive_library is '%s', not walarchive",
					      pg->archive_library);
		else if (!pg->archive_command[0])
			wal_check_problem_add(
				r, WAL_CHECK_NOT_WIRED, WAL_OK,
				"postgresql: archive_command is not set: nothing is archived "
				"(ALTER SYSTEM SET archive_command = 'walpush %%p %%f', then "
				"SELECT pg_reload_conf())");
		else
			wal_check_problem_add(
				r, WAL_CHECK_NOT_WIRED, WAL_OK,
				"postgresql: archive_command '%s' does not run walpush",
				pg->archive_command);
	}
	if (pg->standby && !strstr(pg->restore_command, "walfetch"))
		wal_check_problem_add(
			r, WAL_CHECK_NOT_WIRED, WAL_OK,
			"postgresql: this standby's restore_command %s%s%s does not run walfetch "
			"(restore_command = 'walfetch %%f %%p')",
			pg->restore_command[0] ? "'" : "(empty)", pg->restore_command,
			pg->restore_command[0] ? "'" : "");
}

void wal_check_pg_inspect(const wal_check_opts *opts, wal_check_report *r, void **handle)
{
	wal_check_pg *pg = &r->pg;
	char conninfo[1200], value[64];
	*handle = NULL;
	if (opts->conninfo)
		snprintf(conninfo, sizeof(conninfo), "%s", opts->conninfo);
	else if (opts->datadir && datadir_conninfo(opts->datadir, conninfo, sizeof(conninfo)))
		; /* the server running in the data directory */
	else if (opts->connect)
		conninfo[0] = '\0'; /* libpq's environment and defaults */
	else
		return;
	PGconn *conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK) {
		char why[512];
		snprintf(why, sizeof(why), "%s", PQerrorMessage(conn));
		why[strcspn(why, "\n")] = '\0';
		wal_check_problem_add(r, WAL_CHECK_NOT_WIRED, WAL_OK,
				      "postgresql: cannot connect: %s", why);
		PQfinish(conn);
		return;
	}
	PQsetClientEncoding(conn, "UTF8");
	pg->connected = 1;
	pg->server_version = PQserverVersion(conn);
	query_one(conn, "SELECT pg_is_in_recovery()::text", value, sizeof(value));
	pg->standby = strcmp(value, "true") == 0;
	query_one(conn, "SELECT current_setting('wal_level')", pg->wal_level,
		  sizeof(pg->wal_level));
	query_one(conn, "SELECT current_setting('archive_mode')", pg->archive_mode,
		  sizeof(pg->archive_mode));
	query_one(conn, "SELECT current_setting('archive_command')", pg->archive_command,
		  sizeof(pg->archive_command));
	query_one(conn, "SELECT current_setting('archive_library', true)", pg->archive_library,
		  sizeof(pg->archive_library));
	query_one(conn, "SELECT current_setting('restore_command', true)", pg->restore_command,
		  sizeof(pg->restore_command));
	/* needs pg_read_all_settings or superuser: else the data directory stays unknown */
	if (!query_one(conn, "SELECT current_setting('data_directory')", pg->data_directory,
		       sizeof(pg->data_directory)))
		pg->data_directory[0] = '\0';
	if (query_one(conn, "SELECT system_identifier::text FROM pg_control_system()", value,
		      sizeof(value)))
		pg->system_id = strtoull(value, NULL, 10);
	if (!pg->standby) {
		char lsn[32];
		if (query_one(conn, "SELECT (pg_current_wal_lsn() - '0/0')::text", lsn,
			      sizeof(lsn)))
			pg->current_lsn = strtoull(lsn, NULL, 10);
		query_one(conn, "SELECT pg_walfile_name(pg_current_wal_lsn())", pg->current_wal,
			  sizeof(pg->current_wal));
	}
	wal_check_pg_archiver(conn, r);
	check_wiring(r);
	*handle = conn;
}

wal_err wal_check_pg_switch(void *handle, char *name, wal_error *e)
{
	PGconn *conn = handle;
	/* the segment that holds the switch record is the one closed; with nothing
	 * written since the last switch, the one before, archived already */
	PGresult *res = PQexec(conn, "SELECT pg_walfile_name(pg_switch_wal())");
	wal_err rc = WAL_OK;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		char why[512];
		snprintf(why, sizeof(why), "%s", PQresultErrorMessage(res));
		why[strcspn(why, "\n")] = '\0';
		rc = wal_fail(e, WAL_EIO, "postgresql: pg_switch_wal() failed: %s", why);
	} else {
		snprintf(name, WAL_NAME_MAX, "%s", PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return rc;
}

void wal_check_pg_close(void *handle)
{
	if (handle)
		PQfinish(handle);
}
