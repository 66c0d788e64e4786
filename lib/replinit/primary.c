/*
 * replinit primary: the replication role, the ALTER SYSTEM settings, the
 * pg_hba.conf line, reload and (when asked) restart, all through libpq on
 * the primary.  It first inspects, then plans only what is missing.
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
#include "scram.h"
#include "util.h"

#define MAX_STEPS 16

typedef enum step_kind {
	STEP_ROLE_CREATE, STEP_ROLE_ALTER, STEP_ROLE_PASSWORD, STEP_SETTING, STEP_HBA,
	STEP_RELOAD, STEP_RESTART
} step_kind;

typedef struct step {
	step_kind kind;
	int setting; /* index into settings for STEP_SETTING */
	char plan[1024];
} step;

typedef struct primary {
	const rpl_primary_opts *o;
	rpl_out out;
	PGconn *conn;
	int version;
	char user[64];
	rpl_net net;
	char net_text[64];

	int role_exists, role_login, role_replication;
	char *role_password; /* stored hash or NULL */
	char password[1024];
	int have_password;

	rpl_setting settings[RPL_MAX_SETTINGS];
	int settings_count;
	char hba_file[PATH_MAX];
	char data_directory[PATH_MAX];
	char config_file[PATH_MAX];
	char *hba_text;
	char hba_line[512];
	rpl_hba_match hba;
	int ssl_on;
	char hba_backup[PATH_MAX + 64]; /* the previous pg_hba.conf, once replaced */
	char pending[256];              /* settings waiting for a restart, comma separated */

	step steps[MAX_STEPS];
	int step_count;
} primary;

/* ---- libpq helpers ---- */

static void pq_reason(PGconn *conn, char *buf, size_t size)
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
static PGresult *query(primary *p, const char *sql, const char *param1, const char *param2,
		       wal_error *e)
{
	const char *params[2] = { param1, param2 };
	int nparams = param2 ? 2 : (param1 ? 1 : 0);
	PGresult *r = PQexecParams(p->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	char reason[512];

	if (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
		return r;
	pq_reason(p->conn, reason, sizeof reason);
	wal_fail(e, WAL_EIO, "primary: %s: %s",
		 strncmp(sql, "ALTER ROLE", 10) == 0 || strncmp(sql, "CREATE ROLE", 11) == 0
			 ? "role statement"
			 : sql,
		 reason);
	PQclear(r);
	return NULL;
}

/* The first value of a one-row query into buf; returns 1 if a row, 0 if none, -1 on error. */
static int query_value(primary *p, const char *sql, const char *param, char *buf, size_t size,
		       wal_error *e)
{
	PGresult *r = query(p, sql, param, NULL, e);
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

/* ---- password check against the stored hash ---- */

/*
 * Whether password matches the stored SCRAM-SHA-256 verifier, so that a
 * second run with the same password file changes nothing.  An md5 hash
 * counts as different: it is replaced by a scram-sha-256 one once.
 */
static int password_matches(const char *stored, const char *password)
{
	return stored != NULL && rpl_scram_matches(stored, password);
}

/* ---- inspection ---- */

/* The value the server will use after a reload: the last file entry, else the current one. */
static wal_err configured_value(primary *p, const char *name, char *buf, size_t size, wal_error *e)
{
	int found = query_value(p,
				"SELECT setting FROM pg_file_settings WHERE name = $1 "
				"AND error IS NULL ORDER BY seqno DESC LIMIT 1",
				name, buf, size, e);
	if (found < 0)
		return e->code;
	if (found)
		return WAL_OK;
	found = query_value(p, "SELECT setting FROM pg_settings WHERE name = $1", name, buf, size,
			    e);
	if (found < 0)
		return e->code;
	return WAL_OK;
}

static wal_err get_password(primary *p, int confirm, wal_error *e)
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

static wal_err inspect(primary *p, wal_error *e)
{
	static const char *names[] = { "wal_level", "archive_mode", "archive_command",
				       "max_wal_senders", NULL /* keep */, "hot_standby",
				       "listen_addresses" };
	char values[7][1024], buf[PATH_MAX];
	rpl_primary_state st;
	PGresult *r;
	int i;

	/* the server must be a primary and we must be able to change it */
	if (query_value(p, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user", NULL, buf,
			sizeof buf, e) < 0)
		return e->code;
	if (strcmp(buf, "t") != 0) {
		query_value(p, "SELECT current_user", NULL, buf, sizeof buf, e);
		return wal_fail(e, WAL_EPERM,
				"primary: role %s is not a superuser; connect as one "
				"(-d 'user=postgres' or run as the postgres os user)",
				buf);
	}
	if (query_value(p, "SELECT pg_is_in_recovery()", NULL, buf, sizeof buf, e) < 0)
		return e->code;
	if (strcmp(buf, "t") == 0)
		return wal_fail(e, WAL_EINVAL,
				"primary: the server is in recovery (a standby); "
				"run replinit primary on the primary");

	/* role */
	r = query(p, "SELECT rolcanlogin, rolreplication, rolpassword FROM pg_authid "
		  "WHERE rolname = $1", p->user, NULL, e);
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

	/* settings as configured (what the next reload or restart will use) */
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
	if (query_value(p, "SELECT setting::int * 8192 / 1048576 FROM pg_settings "
			"WHERE name = 'wal_segment_size' AND unit = '8kB' UNION ALL "
			"SELECT setting::bigint / 1048576 FROM pg_settings "
			"WHERE name = 'wal_segment_size' AND unit = 'B'",
			NULL, buf, sizeof buf, e) < 0)
		return e->code;
	st.seg_mb = atoi(buf) > 0 ? atoi(buf) : 16;
	if (query_value(p, "SELECT count(*) FROM pg_stat_replication", NULL, buf, sizeof buf, e) <
	    0)
		return e->code;
	st.senders_in_use = atoi(buf);
	{
		char archive_command[1024];
		if (p->o->archive_command)
			rpl_fmt(archive_command, sizeof archive_command, "%s",
				p->o->archive_command);
		else
			rpl_default_command("walpush", "%p %f", p->o->config_file, archive_command,
					    sizeof archive_command);
		p->settings_count =
			rpl_primary_settings(&st, archive_command, p->o->archive_command != NULL,
					     p->o->listen_addresses, p->settings);
	}
	if (strcmp(values[6], "localhost") == 0 || strcmp(values[6], "127.0.0.1") == 0 ||
	    strcmp(values[6], "::1") == 0) {
		int loopback = (p->net.family == 2 && p->net.addr[0] == 127) ||
			       (p->net.family != 2 && p->net.bits == 128 && p->net.addr[15] == 1);
		if (!loopback && p->o->listen_addresses == NULL)
			rpl_say(&p->out, RPL_MSG_WARNING,
				"primary: listen_addresses is '%s', so the standby at %s cannot "
				"connect; add --listen-addresses '*' (or the primary's address)",
				values[6], p->net_text);
	}

	/* pg_hba.conf */
	if (query_value(p, "SELECT setting FROM pg_settings WHERE name = 'hba_file'", NULL,
			p->hba_file, sizeof p->hba_file, e) < 0 ||
	    query_value(p, "SELECT setting FROM pg_settings WHERE name = 'data_directory'", NULL,
			p->data_directory, sizeof p->data_directory, e) < 0 ||
	    query_value(p, "SELECT setting FROM pg_settings WHERE name = 'config_file'", NULL,
			p->config_file, sizeof p->config_file, e) < 0 ||
	    query_value(p, "SELECT setting FROM pg_settings WHERE name = 'ssl'", NULL, buf,
			sizeof buf, e) < 0)
		return e->code;
	if (rpl_read_file(p->hba_file, &p->hba_text, e) != WAL_OK) {
		char cause[768];
		rpl_fmt(cause, sizeof cause, "%s", e->msg);
		return wal_fail(e, e->code,
				"%s (the server's hba_file); run replinit primary on the "
				"primary's host as a user that can edit it",
				cause);
	}
	p->ssl_on = strcmp(buf, "on") == 0;
	rpl_hba_find(p->hba_text, p->user, &p->net, p->ssl_on, &p->hba);
	rpl_hba_line(p->user, &p->net, rpl_auth_method(p->version), p->hba_line,
		     sizeof p->hba_line);

	/* restarts already pending from an earlier run */
	r = query(p, "SELECT string_agg(name, ', ' ORDER BY name) FROM pg_settings "
		   "WHERE pending_restart", NULL, NULL, e);
	if (r == NULL)
		return e->code;
	rpl_fmt(p->pending, sizeof p->pending, "%s",
		PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
	PQclear(r);
	return WAL_OK;
}

static step *add_step(primary *p, step_kind kind)
{
	step *s = &p->steps[p->step_count++];
	s->kind = kind;
	s->setting = -1;
	s->plan[0] = '\0';
	return s;
}

/* Whether a setting only takes effect at server start. */
static int needs_restart(const char *name)
{
	return strcmp(name, "wal_level") == 0 || strcmp(name, "archive_mode") == 0 ||
	       strcmp(name, "max_wal_senders") == 0 || strcmp(name, "listen_addresses") == 0 ||
	       strcmp(name, "hot_standby") == 0;
}

static void add_pending(char *list, size_t size, const char *name)
{
	size_t n = strlen(list);
	if (strstr(list, name))
		return;
	rpl_fmt(list + n, size - n, "%s%s", n ? ", " : "", name);
}

/*
 * The first line of hba_file the server refuses, as "line N: error", into
 * buf; 1 if there is one, 0 if none, -1 on error.  pg_hba_file_rules reads
 * the file as it is on disk now.  A line it could not parse has no type;
 * one with a type was loaded and its error is only a warning (hostssl with
 * ssl off).  The server loads a file only when every line parses.
 */
static int hba_refused(primary *p, char *buf, size_t size, wal_error *e)
{
	return query_value(p,
			   "SELECT 'line ' || line_number || ': ' || error FROM pg_hba_file_rules "
			   "WHERE error IS NOT NULL AND type IS NULL ORDER BY line_number LIMIT 1",
			   NULL, buf, size, e);
}

static wal_err plan(primary *p, wal_error *e)
{
	int i;
	wal_err rc;
	step *s;

	if (!p->role_exists) {
		s = add_step(p, STEP_ROLE_CREATE);
		rpl_fmt(s->plan, sizeof s->plan,
			"create role %s with REPLICATION LOGIN and a %s password "
			"hashed by replinit",
			p->user, rpl_auth_method(p->version));
	} else {
		if (!p->role_login || !p->role_replication) {
			s = add_step(p, STEP_ROLE_ALTER);
			rpl_fmt(s->plan, sizeof s->plan,
				"grant REPLICATION LOGIN to existing role %s", p->user);
		}
		if (p->role_password == NULL || p->o->password_file) {
			int differs = 1;
			if (p->role_password && (rc = get_password(p, 0, e)) != WAL_OK)
				return rc;
			if (p->have_password)
				differs = !password_matches(p->role_password, p->password);
			if (differs) {
				s = add_step(p, STEP_ROLE_PASSWORD);
				rpl_fmt(s->plan, sizeof s->plan, "set the password of role %s (%s)",
					p->user,
					p->role_password ? "it differs from the password file"
							 : "it has none");
			}
		}
	}
	for (i = 0; i < p->settings_count; i++) {
		char quoted[1100];
		s = add_step(p, STEP_SETTING);
		s->setting = i;
		rpl_guc_quote(p->settings[i].value, quoted, sizeof quoted);
		rpl_fmt(s->plan, sizeof s->plan, "ALTER SYSTEM SET %s = %s%s", p->settings[i].name,
			quoted,
			needs_restart(p->settings[i].name) ? " (takes effect at restart)" : "");
	}
	if (p->hba.line == 0 || !p->hba.usable) {
		char refused[1024];
		int found = hba_refused(p, refused, sizeof refused, e);
		if (found < 0)
			return e->code;
		/* a line added to a file the server does not load would not take effect */
		if (found)
			return wal_fail(e, WAL_ECONFIG,
					"%s %s; the server refuses to load this file as it is "
					"(it keeps the rules it loaded before); fix it, then run "
					"replinit again",
					p->hba_file, refused);
		s = add_step(p, STEP_HBA);
		if (p->hba.line == 0)
			rpl_fmt(s->plan, sizeof s->plan, "append to %s: %s", p->hba_file,
				p->hba_line);
		else
			rpl_fmt(s->plan, sizeof s->plan,
				"insert into %s before line %d (which would %s the "
				"standby): %s",
				p->hba_file, p->hba.line,
				strcmp(p->hba.method, "reject") == 0 ? "reject"
								     : "not let a password in for",
				p->hba_line);
	}
	if (p->step_count > 0) {
		s = add_step(p, STEP_RELOAD);
		rpl_fmt(s->plan, sizeof s->plan, "reload the configuration (pg_reload_conf)");
	}
	for (i = 0; i < p->settings_count; i++)
		if (needs_restart(p->settings[i].name))
			add_pending(p->pending, sizeof p->pending, p->settings[i].name);
	if (p->o->restart && p->pending[0]) {
		s = add_step(p, STEP_RESTART);
		rpl_fmt(s->plan, sizeof s->plan, "restart the server for %s", p->pending);
	}
	return WAL_OK;
}

/* ---- the steps ---- */

static wal_err do_role(primary *p, step *s, wal_error *e)
{
	char *ident = PQescapeIdentifier(p->conn, p->user, strlen(p->user));
	char *hash = NULL, *literal = NULL, sql[2048];
	PGresult *r = NULL;
	wal_err rc = WAL_OK;

	if (ident == NULL) {
		rc = wal_fail(e, WAL_ENOMEM, "role %s: cannot quote the name", p->user);
		goto out;
	}
	if (s->kind == STEP_ROLE_ALTER) {
		rpl_fmt(sql, sizeof sql, "ALTER ROLE %s WITH REPLICATION LOGIN", ident);
	} else {
		if ((rc = get_password(p, s->kind == STEP_ROLE_CREATE, e)) != WAL_OK)
			goto out;
		/* hashed here, so the plain text never reaches the server or its logs */
		hash = PQencryptPasswordConn(p->conn, p->password, p->user,
					     rpl_auth_method(p->version));
		if (hash == NULL) {
			char reason[512];
			pq_reason(p->conn, reason, sizeof reason);
			rc = wal_fail(e, WAL_EIO, "role %s: cannot hash the password: %s", p->user,
				      reason);
			goto out;
		}
		literal = PQescapeLiteral(p->conn, hash, strlen(hash));
		if (literal == NULL) {
			rc = wal_fail(e, WAL_ENOMEM, "role %s: cannot quote the password hash",
				      p->user);
			goto out;
		}
		rpl_fmt(sql, sizeof sql, "%s ROLE %s WITH %sPASSWORD %s",
			s->kind == STEP_ROLE_CREATE ? "CREATE" : "ALTER", ident,
			s->kind == STEP_ROLE_CREATE ? "REPLICATION LOGIN " : "", literal);
	}
	r = query(p, sql, NULL, NULL, e);
	if (r == NULL) {
		rc = wal_fail(e, e->code, "role %s: %s", p->user, e->msg);
		goto out;
	}
	rpl_say(&p->out, RPL_MSG_STEP, "%s role %s%s",
		s->kind == STEP_ROLE_CREATE ? "created" : "altered", p->user,
		s->kind == STEP_ROLE_CREATE  ? " with REPLICATION LOGIN and a hashed password"
		: s->kind == STEP_ROLE_ALTER ? ": REPLICATION LOGIN"
					     : ": new hashed password");
out:
	PQclear(r);
	if (hash)
		PQfreemem(hash);
	if (literal)
		PQfreemem(literal);
	if (ident)
		PQfreemem(ident);
	return rc;
}

static wal_err do_setting(primary *p, const rpl_setting *set, wal_error *e)
{
	char *literal = PQescapeLiteral(p->conn, set->value, strlen(set->value));
	char sql[2400], quoted[1100];
	PGresult *r;

	if (literal == NULL)
		return wal_fail(e, WAL_ENOMEM, "%s: cannot quote the value", set->name);
	rpl_fmt(sql, sizeof sql, "ALTER SYSTEM SET %s = %s", set->name, literal);
	PQfreemem(literal);
	r = query(p, sql, NULL, NULL, e);
	if (r == NULL)
		return e->code;
	PQclear(r);
	rpl_guc_quote(set->value, quoted, sizeof quoted);
	rpl_say(&p->out, RPL_MSG_STEP, "set %s = %s in postgresql.auto.conf", set->name, quoted);
	return WAL_OK;
}

static wal_err do_hba(primary *p, wal_error *e)
{
	char backup[PATH_MAX + 32], stamp[32];
	char *now_text = NULL, *text = NULL;
	time_t now = time(NULL);
	struct tm tm;
	wal_err rc;

	/* read again: what was there when the plan was made may have been edited since */
	if ((rc = rpl_read_file(p->hba_file, &now_text, e)) != WAL_OK)
		return rc;
	if (strcmp(now_text, p->hba_text) != 0) {
		free(p->hba_text);
		p->hba_text = now_text;
		now_text = NULL;
		rpl_hba_find(p->hba_text, p->user, &p->net, p->ssl_on, &p->hba);
		if (p->hba.line && p->hba.usable) {
			rpl_say(&p->out, RPL_MSG_STEP,
				"%s was changed meanwhile; line %d now lets %s in from %s (%s)",
				p->hba_file, p->hba.line, p->user, p->net_text, p->hba.method);
			return WAL_OK;
		}
	}
	localtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
	rpl_fmt(backup, sizeof backup, "%s.replinit-%s", p->hba_file, stamp);
	text = rpl_hba_insert(p->hba_text, p->hba_line,
			      p->hba.line && !p->hba.usable ? p->hba.line : 0);
	if (text == NULL) {
		rc = wal_fail(e, WAL_ENOMEM, "%s: out of memory", p->hba_file);
		goto out;
	}
	/* same mode and owner as before; the old file stays as a backup under a name of its own */
	rc = rpl_write_atomic(p->hba_file, text, 0600, 1, backup, p->hba_backup,
			      sizeof p->hba_backup, e);
	if (rc != WAL_OK)
		goto out;
	rpl_say(&p->out, RPL_MSG_STEP, "added to %s: %s (previous file kept as %s)", p->hba_file,
		p->hba_line, p->hba_backup);
out:
	free(now_text);
	free(text);
	return rc;
}

/*
 * Puts the previous pg_hba.conf back after the server refused the new one:
 * the backup is renamed over it (the old file itself, with its mode and
 * owner), and the server reloads it.  Returns the error to report.
 */
static wal_err rollback_hba(primary *p, const char *refused, wal_error *e)
{
	char dir[PATH_MAX];
	wal_error ignore;
	PGresult *r;

	if (wal_sys_rename(p->hba_backup, p->hba_file) != 0)
		return wal_fail_errno(e, WAL_ECONFIG, errno,
				      "%s %s; the server refused the new file, and "
				      "putting back the previous one failed (mv %s %s)",
				      p->hba_file, refused, p->hba_backup, p->hba_file);
	p->hba_backup[0] = '\0';
	wal_dirname(p->hba_file, dir, sizeof dir);
	wal_fsync_dir(dir, &ignore);
	/* the reload that read the refused file changed nothing; this one reads the old again */
	r = query(p, "SELECT pg_reload_conf()", NULL, NULL, &ignore);
	PQclear(r);
	return wal_fail(e, WAL_ECONFIG,
			"%s %s; the server refused the new file, so it was rolled back "
			"to the previous one",
			p->hba_file, refused);
}

/*
 * After a reload: a pg_hba.conf the server refuses.  The file replinit
 * wrote is rolled back; one it did not touch gets a warning (the reload
 * of the settings still happened).
 */
static wal_err check_hba_rules(primary *p, wal_error *e)
{
	char buf[1024];
	int found = hba_refused(p, buf, sizeof buf, e);

	if (found < 0 && p->hba_backup[0]) {
		/* the server cannot even read it (owner, mode): no better than a refused line */
		rpl_fmt(buf, sizeof buf, "cannot be read back: %s", e->msg);
		found = 1;
	}
	if (found < 0)
		return e->code;
	if (found && p->hba_backup[0])
		return rollback_hba(p, buf, e);
	if (found)
		rpl_say(&p->out, RPL_MSG_WARNING,
			"%s %s; the server refuses to load this file and keeps "
			"the rules it loaded before until this is fixed",
			p->hba_file, buf);
	return WAL_OK;
}

static wal_err do_reload(primary *p, wal_error *e)
{
	PGresult *r = query(p, "SELECT pg_reload_conf()", NULL, NULL, e);
	char buf[256];
	int i, tries;

	if (r == NULL)
		return e->code;
	PQclear(r);
	rpl_say(&p->out, RPL_MSG_STEP, "reloaded the configuration");
	if (check_hba_rules(p, e) != WAL_OK)
		return e->code;
	/*
	 * the backends see the reload a moment later; wait for the postmaster-only
	 * settings to show as pending
	 */
	for (tries = 0; tries < 25; tries++) {
		int missing = 0;
		PGresult *pr;
		usleep(200000);
		pr = query(p, "SELECT string_agg(name, ', ' ORDER BY name) FROM pg_settings "
			    "WHERE pending_restart", NULL, NULL, e);
		if (pr == NULL)
			return e->code;
		rpl_fmt(buf, sizeof buf, "%s", PQgetisnull(pr, 0, 0) ? "" : PQgetvalue(pr, 0, 0));
		PQclear(pr);
		for (i = 0; i < p->settings_count; i++)
			if (needs_restart(p->settings[i].name) && !strstr(buf, p->settings[i].name))
				missing = 1;
		if (!missing)
			break;
	}
	rpl_fmt(p->pending, sizeof p->pending, "%s", buf);
	return WAL_OK;
}

/* Path of the postmaster's binary dir and its stderr, from /proc (same os user only). */
static int postmaster_info(primary *p, long *pid, char *bin_dir, size_t bin_size, char *log,
			   size_t log_size)
{
	char path[PATH_MAX + 32], link[PATH_MAX];
	FILE *f;
	ssize_t len;

	rpl_fmt(path, sizeof path, "%s/postmaster.pid", p->data_directory);
	f = fopen(path, "r");
	if (f == NULL || fscanf(f, "%ld", pid) != 1) {
		if (f)
			fclose(f);
		return 0;
	}
	fclose(f);
	rpl_fmt(path, sizeof path, "/proc/%ld/exe", *pid);
	len = readlink(path, link, sizeof link - 1);
	if (len <= 0)
		return 0;
	link[len] = '\0';
	{
		char *slash = strrchr(link, '/');
		if (slash)
			*slash = '\0';
		rpl_fmt(bin_dir, bin_size, "%s", link);
	}
	rpl_fmt(path, sizeof path, "/proc/%ld/fd/2", *pid);
	len = readlink(path, link, sizeof link - 1);
	if (len <= 0)
		return 0;
	link[len] = '\0';
	rpl_fmt(log, log_size, "%s", link);
	return 1;
}

static wal_err do_restart(primary *p, wal_error *e)
{
	char pg_ctl[PATH_MAX + 16], bin_dir[PATH_MAX], log[PATH_MAX], version[16], cluster[256];
	char *argv[16];
	long pid = 0;
	int argc = 0, status;
	rpl_child_out co;
	struct stat st;
	const char *etc = "/etc/postgresql/";

	/* a Debian cluster: /etc/postgresql/V/C/postgresql.conf, restarted with pg_ctlcluster */
	if (strncmp(p->config_file, etc, strlen(etc)) == 0 &&
	    sscanf(p->config_file + strlen(etc), "%15[0-9]/%255[^/]/postgresql.conf", version,
		   cluster) == 2 &&
	    access("/usr/bin/pg_ctlcluster", X_OK) == 0) {
		argv[argc++] = "/usr/bin/pg_ctlcluster";
		argv[argc++] = version;
		argv[argc++] = cluster;
		argv[argc++] = "restart";
		argv[argc++] = "-m";
		argv[argc++] = "fast";
	} else {
		if (!postmaster_info(p, &pid, bin_dir, sizeof bin_dir, log, sizeof log))
			return wal_fail(e, WAL_EPERM,
					"primary: cannot find how the server in %s was started "
					"(run replinit as its os user); restart it yourself",
					p->data_directory);
		if (log[0] != '/' || (strcmp(log, "/dev/null") != 0 &&
				      (stat(log, &st) != 0 || !S_ISREG(st.st_mode))))
			return wal_fail(e, WAL_EUNSUPPORTED,
					"primary: the server's output goes to %s, not a file; "
					"it is run by a service manager: restart it with that "
					"(e.g. systemctl restart postgresql)",
					log);
		if (p->o->pg_bin)
			rpl_fmt(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", p->o->pg_bin);
		else
			rpl_fmt(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", bin_dir);
		if (access(pg_ctl, X_OK) != 0)
			return wal_fail(e, WAL_ENOENT, "%s: not found; give --pg-bin DIR", pg_ctl);
		argv[argc++] = pg_ctl;
		argv[argc++] = "restart";
		argv[argc++] = "-D";
		argv[argc++] = p->data_directory;
		argv[argc++] = "-m";
		argv[argc++] = "fast";
		argv[argc++] = "-w";
		argv[argc++] = "-t";
		argv[argc++] = "120";
		/* pg_ctl restart reuses postmaster.opts; the log goes where it went before */
		argv[argc++] = "-l";
		argv[argc++] = log;
	}
	argv[argc] = NULL;
	PQfinish(p->conn);
	p->conn = NULL;
	status = rpl_run(argv, NULL, 1, &p->out, &co, e);
	if (status < 0)
		return e->code;
	if (status != 0)
		return wal_fail(e, WAL_EIO,
				"primary: %s restart failed (exit %d); see the server log", argv[0],
				status);
	if (argc > 4 && strcmp(argv[0], "/usr/bin/pg_ctlcluster") == 0)
		rpl_say(&p->out, RPL_MSG_STEP,
			"restarted the server with pg_ctlcluster %s %s restart (%s)", argv[1],
			argv[2], p->pending);
	else
		rpl_say(&p->out, RPL_MSG_STEP, "restarted the server with %s restart (%s)", argv[0],
			p->pending);
	return WAL_OK;
}

static wal_err connect_primary(primary *p, wal_error *e)
{
	const char *keys[] = { "dbname", "fallback_application_name", NULL };
	const char *values[] = { p->o->conninfo ? p->o->conninfo : "", "replinit", NULL };
	char reason[512];

	p->conn = PQconnectdbParams(keys, values, 1);
	if (p->conn == NULL)
		return wal_fail(e, WAL_ENOMEM, "primary: out of memory");
	if (PQstatus(p->conn) != CONNECTION_OK) {
		pq_reason(p->conn, reason, sizeof reason);
		return wal_fail(e, WAL_ENET, "primary: cannot connect: %s", reason);
	}
	p->version = PQserverVersion(p->conn);
	return WAL_OK;
}

wal_err rpl_primary_run(const rpl_primary_opts *o, rpl_result *res, wal_error *e)
{
	primary *p = calloc(1, sizeof *p);
	wal_err rc = WAL_OK;
	int i;

	memset(res, 0, sizeof *res);
	if (p == NULL)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	p->o = o;
	p->out.fn = o->report;
	p->out.ctx = o->ctx;
	/* the role goes into pg_hba.conf; the commands and addresses into postgresql.auto.conf */
	if ((o->user && rpl_check_role("--user", o->user, e) != WAL_OK) ||
	    (o->archive_command &&
	     rpl_check_text("--archive-command", o->archive_command, e) != WAL_OK) ||
	    (o->listen_addresses &&
	     rpl_check_text("--listen-addresses", o->listen_addresses, e) != WAL_OK) ||
	    (o->config_file && rpl_check_text("--config", o->config_file, e) != WAL_OK)) {
		rc = e->code;
		goto out;
	}
	rpl_fmt(p->user, sizeof p->user, "%s", o->user ? o->user : RPL_DEFAULT_USER);
	if (o->standby == NULL) {
		rc = wal_fail(e, WAL_EINVAL, "--standby ADDRESS[/BITS] is required");
		goto out;
	}
	if ((rc = rpl_net_parse(o->standby, &p->net, e)) != WAL_OK)
		goto out;
	rpl_net_format(&p->net, p->net_text, sizeof p->net_text);
	if ((rc = connect_primary(p, e)) != WAL_OK)
		goto out;
	if (p->version < 100000) {
		rc = wal_fail(e, WAL_EUNSUPPORTED,
			      "primary: PostgreSQL %d.%d is too old; replinit needs 10 or newer",
			      p->version / 10000, p->version % 10000 / 100);
		goto out;
	}
	if ((rc = inspect(p, e)) != WAL_OK)
		goto out;
	rpl_say(&p->out, RPL_MSG_INFO, "primary: PostgreSQL %d.%d, data directory %s, hba_file %s",
		p->version / 10000, p->version % 10000, p->data_directory, p->hba_file);
	if ((rc = plan(p, e)) != WAL_OK)
		goto out;
	res->steps_planned = p->step_count;

	if (p->hba.line && p->hba.usable)
		rpl_say(&p->out, RPL_MSG_INFO, "%s line %d already lets %s in from %s (%s)",
			p->hba_file, p->hba.line, p->user, p->net_text, p->hba.method);
	if (p->step_count == 0) {
		rpl_say(&p->out, RPL_MSG_NOTICE,
			"primary is already set up for a standby at %s "
			"(role %s, settings, pg_hba); nothing to do",
			p->net_text, p->user);
	} else if (o->dry_run) {
		rpl_say(&p->out, RPL_MSG_NOTICE, "dry run: the plan, nothing is changed");
		for (i = 0; i < p->step_count; i++)
			rpl_say(&p->out, RPL_MSG_PLAN, "%d. %s", i + 1, p->steps[i].plan);
	} else {
		for (i = 0; i < p->step_count; i++) {
			step *s = &p->steps[i];
			switch (s->kind) {
			case STEP_ROLE_CREATE:
			case STEP_ROLE_ALTER:
			case STEP_ROLE_PASSWORD:
				rc = do_role(p, s, e);
				break;
			case STEP_SETTING:
				rc = do_setting(p, &p->settings[s->setting], e);
				break;
			case STEP_HBA:
				rc = do_hba(p, e);
				break;
			case STEP_RELOAD:
				rc = do_reload(p, e);
				break;
			case STEP_RESTART:
				rc = do_restart(p, e);
				if (rc == WAL_OK)
					p->pending[0] = '\0';
				break;
			}
			if (rc != WAL_OK) {
				char cause[768];
				rpl_fmt(cause, sizeof cause, "%s", e->msg);
				wal_fail(e, rc, "step %d failed: %s", i + 1, cause);
				goto out;
			}
			res->steps_done++;
		}
		if (p->conn == NULL && (rc = connect_primary(p, e)) != WAL_OK)
			goto out;
	}
	if (p->pending[0]) {
		res->restart_needed = 1;
		rpl_fmt(res->restart_settings, sizeof res->restart_settings, "%s", p->pending);
	}
out:
	if (p->conn)
		PQfinish(p->conn);
	if (p->role_password)
		free(p->role_password);
	free(p->hba_text);
	explicit_bzero(p->password, sizeof p->password);
	free(p);
	return rc;
}
