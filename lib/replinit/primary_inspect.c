/*
 * replinit primary: queries through libpq, and what the server has now
 * (role, settings as configured, pg_hba.conf, restarts pending).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "sys/fileio.h"
#include "primary.h"

void rpl_pq_reason(PGconn *conn, char *buf, size_t size)
{
	const char *msg = PQerrorMessage(conn);
	size_t n = 0;

	for (; *msg && n + 1 < size; msg++)
		buf[n++] = (*msg == '\n' || *msg == '\t') ? ' ' : *msg;
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '.'))
		n--;
	buf[n] = '\0';
}

/* Runs sql with up to two text parameters; returns the result or NULL (e filled). */
PGresult *rpl_primary_query(primary *p, const char *sql, const char *param1, const char *param2,
			    wal_error *e)
{
	const char *params[2] = { param1, param2 };
	int nparams = param2 ? 2 : (param1 ? 1 : 0);
	PGresult *r = PQexecParams(p->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	char reason[512];

	if (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
		return r;
	rpl_pq_reason(p->conn, reason, sizeof reason);
	wal_fail(e, WAL_EIO, "primary: %s: %s",
		 strncmp(sql, "ALTER ROLE", 10) == 0 || strncmp(sql, "CREATE ROLE", 11) == 0
			 ? "role statement"
			 : sql,
		 reason);
	PQclear(r);
	return NULL;
}

/* The first value of a one-row query into buf; returns 1 if a row, 0 if none, -1 on error. */
int rpl_primary_value(primary *p, const char *sql, const char *param, char *buf, size_t size,
		      wal_error *e)
{
	PGresult *r = rpl_primary_query(p, sql, param, NULL, e);
	int found;

	if (r == NULL)
		return -1;
	found = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0);
	if (found)
		rpl_fmt(buf, size, "%s", PQgetvalue(r, 0, 0));
	else if (size)
		buf[0] = '\0';
	PQclear(r);
	return found;
}

/* The value the server will use after a reload: the last file entry, else the current one. */
static wal_err configured_value(primary *p, const char *name, char *buf, size_t size, wal_error *e)
{
	int found = rpl_primary_value(p,
				      "SELECT setting FROM pg_file_settings WHERE name = $1 "
				      "AND error IS NULL ORDER BY seqno DESC LIMIT 1",
				      name, buf, size, e);
	if (found < 0)
		return e->code;
	if (found)
		return WAL_OK;
	found = rpl_primary_value(p, "SELECT setting FROM pg_settings WHERE name = $1", name, buf,
				  size, e);
	if (found < 0)
		return e->code;
	return WAL_OK;
}

wal_err rpl_primary_password(primary *p, int confirm, wal_error *e)
{
	wal_err rc;

	if (p->have_password)
		return WAL_OK;
	if (p->o->password_file) {
		rc = rpl_read_password_file(p->o->password_file, p->password, sizeof p->password,
					    &p->out, e);
	} else if (p->o->prompt) {
		char what[128];
		rpl_fmt(what, sizeof what, "password for role %s", p->user);
		rc = p->o->prompt(p->o->ctx, what, confirm, p->password, sizeof p->password, e);
	} else {
		rc = wal_fail(e, WAL_EINVAL, "role %s: a password is needed; give --password-file",
			      p->user);
	}
	if (rc == WAL_OK)
		p->have_password = 1;
	return rc;
}

/* The server must be a primary and we must be able to change it. */
static wal_err check_server(primary *p, wal_error *e)
{
	char buf[PATH_MAX];

	if (rpl_primary_value(p, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user", NULL,
			      buf, sizeof buf, e) < 0)
		return e->code;
	if (strcmp(buf, "t") != 0) {
		rpl_primary_value(p, "SELECT current_user", NULL, buf, sizeof buf, e);
		return wal_fail(e, WAL_EPERM,
				"primary: role %s is not a superuser; connect as one "
				"(-d 'user=postgres' or run as the postgres os user)",
				buf);
	}
	if (rpl_primary_value(p, "SELECT pg_is_in_recovery()", NULL, buf, sizeof buf, e) < 0)
		return e->code;
	if (strcmp(buf, "t") == 0)
		return wal_fail(e, WAL_EINVAL,
				"primary: the server is in recovery (a standby); "
				"run replinit primary on the primary");
	return WAL_OK;
}

/* Whether the role exists, may log in and replicate, and its stored password. */
static wal_err inspect_role(primary *p, wal_error *e)
{
	PGresult *r;

	r = rpl_primary_query(p,
			      "SELECT rolcanlogin, rolreplication, rolpassword FROM pg_authid "
			      "WHERE rolname = $1",
			      p->user, NULL, e);
	if (r == NULL)
		return e->code;
	p->role_exists = PQntuples(r) == 1;
	if (p->role_exists) {
		p->role_login = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
		p->role_replication = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
		if (!PQgetisnull(r, 0, 2))
			p->role_password = strdup(PQgetvalue(r, 0, 2));
	}
	PQclear(r);
	return WAL_OK;
}

/* The WAL segment size in MB and the wal senders in use now, into st. */
static wal_err inspect_senders(primary *p, rpl_primary_state *st, wal_error *e)
{
	char buf[64];

	if (rpl_primary_value(p,
			      "SELECT setting::int * 8192 / 1048576 FROM pg_settings "
			      "WHERE name = 'wal_segment_size' AND unit = '8kB' UNION ALL "
			      "SELECT setting::bigint / 1048576 FROM pg_settings "
			      "WHERE name = 'wal_segment_size' AND unit = 'B'",
			      NULL, buf, sizeof buf, e) < 0)
		return e->code;
	st->seg_mb = atoi(buf) > 0 ? atoi(buf) : 16;
	if (rpl_primary_value(p, "SELECT count(*) FROM pg_stat_replication", NULL, buf, sizeof buf,
			      e) < 0)
		return e->code;
	st->senders_in_use = atoi(buf);
	return WAL_OK;
}

/* A standby elsewhere cannot reach a server that listens on loopback only. */
static void warn_loopback(primary *p, const char *listen_addresses)
{
	int loopback;

	if (strcmp(listen_addresses, "localhost") != 0 &&
	    strcmp(listen_addresses, "127.0.0.1") != 0 && strcmp(listen_addresses, "::1") != 0)
		return;
	loopback = (p->net.family == 2 && p->net.addr[0] == 127) ||
		   (p->net.family != 2 && p->net.bits == 128 && p->net.addr[15] == 1);
	if (!loopback && p->o->listen_addresses == NULL)
		rpl_say(&p->out, RPL_MSG_WARNING,
			"primary: listen_addresses is '%s', so the standby at %s cannot "
			"connect; add --listen-addresses '*' (or the primary's address)",
			listen_addresses, p->net_text);
}

/* The settings as configured (what the next reload or restart will use), and so p->settings. */
static wal_err inspect_settings(primary *p, wal_error *e)
{
	static const char *names[] = { "wal_level",	  "archive_mode",  "archive_command",
				       "max_wal_senders", NULL /* keep */, "hot_standby",
				       "listen_addresses" };
	char values[7][1024], archive_command[1024];
	rpl_primary_state st;
	int i;

	memset(&st, 0, sizeof st);
	st.version_num = p->version;
	for (i = 0; i < 7; i++) {
		const char *name = names[i] ? names[i] : rpl_keep_setting(p->version);
		if (configured_value(p, name, values[i], sizeof values[i], e) != WAL_OK)
			return e->code;
	}
	st.wal_level = values[0];
	st.archive_mode = values[1];
	st.archive_command = values[2];
	st.max_wal_senders = values[3];
	st.keep = values[4];
	st.hot_standby = values[5];
	st.listen_addresses = values[6];
	if (inspect_senders(p, &st, e) != WAL_OK)
		return e->code;
	if (p->o->archive_command)
		rpl_fmt(archive_command, sizeof archive_command, "%s", p->o->archive_command);
	else
		rpl_default_command("walpush", "%p %f", p->o->config_file, archive_command,
				    sizeof archive_command);
	p->settings_count =
		rpl_primary_settings(&st, archive_command, p->o->archive_command != NULL,
				     p->o->listen_addresses, p->settings);
	warn_loopback(p, values[6]);
	return WAL_OK;
}

/* The server's files, pg_hba.conf as it is now and the line a standby would match in it. */
static wal_err inspect_hba(primary *p, wal_error *e)
{
	char ssl[64];

	if (rpl_primary_value(p, "SELECT setting FROM pg_settings WHERE name = 'hba_file'", NULL,
			      p->hba_file, sizeof p->hba_file, e) < 0 ||
	    rpl_primary_value(p, "SELECT setting FROM pg_settings WHERE name = 'data_directory'",
			      NULL, p->data_directory, sizeof p->data_directory, e) < 0 ||
	    rpl_primary_value(p, "SELECT setting FROM pg_settings WHERE name = 'config_file'", NULL,
			      p->config_file, sizeof p->config_file, e) < 0 ||
	    rpl_primary_value(p, "SELECT setting FROM pg_settings WHERE name = 'ssl'", NULL, ssl,
			      sizeof ssl, e) < 0)
		return e->code;
	if (rpl_read_file(p->hba_file, &p->hba_text, e) != WAL_OK) {
		char cause[768];
		rpl_fmt(cause, sizeof cause, "%s", e->msg);
		return wal_fail(e, e->code,
				"%s (the server's hba_file); run replinit primary on the "
				"primary's host as a user that can edit it",
				cause);
	}
	p->ssl_on = strcmp(ssl, "on") == 0;
	rpl_hba_find(p->hba_text, p->user, &p->net, p->ssl_on, &p->hba);
	rpl_hba_line(p->user, &p->net, rpl_auth_method(p->version), p->hba_line,
		     sizeof p->hba_line);
	return WAL_OK;
}

wal_err rpl_primary_inspect(primary *p, wal_error *e)
{
	PGresult *r;

	if (check_server(p, e) != WAL_OK || inspect_role(p, e) != WAL_OK ||
	    inspect_settings(p, e) != WAL_OK || inspect_hba(p, e) != WAL_OK)
		return e->code;
	/* restarts already pending from an earlier run */
	r = rpl_primary_query(p,
			      "SELECT string_agg(name, ', ' ORDER BY name) FROM pg_settings "
			      "WHERE pending_restart",
			      NULL, NULL, e);
	if (r == NULL)
		return e->code;
	rpl_fmt(p->pending, sizeof p->pending, "%s",
		PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
	PQclear(r);
	return WAL_OK;
}
