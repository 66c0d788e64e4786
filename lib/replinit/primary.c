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
#include "primary.h"
#include "scram.h"

/*
 * Whether password matches the stored SCRAM-SHA-256 verifier, so that a
 * second run with the same password file changes nothing.  An md5 hash
 * counts as different: it is replaced by a scram-sha-256 one once.
 */
static int password_matches(const char *stored, const char *password)
{
	return stored != NULL && rpl_scram_matches(stored, password);
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
int rpl_primary_needs_restart(const char *name)
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

/* The steps for the replication role: create it, or grant it what it
 * lacks and set its password when it has none or the file's differs. */
static wal_err plan_role(primary *p, wal_error *e)
{
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
			if (p->role_password && (rc = rpl_primary_password(p, 0, e)) != WAL_OK)
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
	return WAL_OK;
}

static wal_err plan(primary *p, wal_error *e)
{
	int i;
	wal_err rc;
	step *s;

	if ((rc = plan_role(p, e)) != WAL_OK)
		return rc;
	for (i = 0; i < p->settings_count; i++) {
		char quoted[1100];
		s = add_step(p, STEP_SETTING);
		s->setting = i;
		rpl_guc_quote(p->settings[i].value, quoted, sizeof quoted);
		rpl_fmt(s->plan, sizeof s->plan, "ALTER SYSTEM SET %s = %s%s", p->settings[i].name,
			quoted,
			rpl_primary_needs_restart(p->settings[i].name)
				? " (takes effect at restart)"
				: "");
	}
	if (p->hba.line == 0 || !p->hba.usable) {
		char refused[1024];
		int found = rpl_primary_hba_refused(p, refused, sizeof refused, e);
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
		if (rpl_primary_needs_restart(p->settings[i].name))
			add_pending(p->pending, sizeof p->pending, p->settings[i].name);
	if (p->o->restart && p->pending[0]) {
		s = add_step(p, STEP_RESTART);
		rpl_fmt(s->plan, sizeof s->plan, "restart the server for %s", p->pending);
	}
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
		rpl_pq_reason(p->conn, reason, sizeof reason);
		return wal_fail(e, WAL_ENET, "primary: cannot connect: %s", reason);
	}
	p->version = PQserverVersion(p->conn);
	return WAL_OK;
}

/* Checks the options (names that go into files) and parses --standby. */
static wal_err check_options(primary *p, wal_error *e)
{
	const rpl_primary_opts *o = p->o;

	/* the role goes into pg_hba.conf; the commands and addresses into postgresql.auto.conf */
	if ((o->user && rpl_check_role("--user", o->user, e) != WAL_OK) ||
	    (o->archive_command &&
	     rpl_check_text("--archive-command", o->archive_command, e) != WAL_OK) ||
	    (o->listen_addresses &&
	     rpl_check_text("--listen-addresses", o->listen_addresses, e) != WAL_OK) ||
	    (o->config_file && rpl_check_text("--config", o->config_file, e) != WAL_OK))
		return e->code;
	rpl_fmt(p->user, sizeof p->user, "%s", o->user ? o->user : RPL_DEFAULT_USER);
	if (o->standby == NULL)
		return wal_fail(e, WAL_EINVAL, "--standby ADDRESS[/BITS] is required");
	if (rpl_net_parse(o->standby, &p->net, e) != WAL_OK)
		return e->code;
	rpl_net_format(&p->net, p->net_text, sizeof p->net_text);
	return WAL_OK;
}

/* Performs one step of the plan. */
static wal_err run_step(primary *p, step *s, wal_error *e)
{
	wal_err rc = WAL_OK;

	switch (s->kind) {
	case STEP_ROLE_CREATE:
	case STEP_ROLE_ALTER:
	case STEP_ROLE_PASSWORD:
		rc = rpl_primary_do_role(p, s, e);
		break;
	case STEP_SETTING:
		rc = rpl_primary_do_setting(p, &p->settings[s->setting], e);
		break;
	case STEP_HBA:
		rc = rpl_primary_do_hba(p, e);
		break;
	case STEP_RELOAD:
		rc = rpl_primary_do_reload(p, e);
		break;
	case STEP_RESTART:
		rc = rpl_primary_do_restart(p, e);
		if (rc == WAL_OK)
			p->pending[0] = '\0';
		break;
	}
	return rc;
}

/* Performs the plan in order; the first failure stops it, naming its step. */
static wal_err run_plan(primary *p, rpl_result *res, wal_error *e)
{
	wal_err rc;
	int i;

	for (i = 0; i < p->step_count; i++) {
		if ((rc = run_step(p, &p->steps[i], e)) != WAL_OK) {
			char cause[768];
			rpl_fmt(cause, sizeof cause, "%s", e->msg);
			wal_fail(e, rc, "step %d failed: %s", i + 1, cause);
			return rc;
		}
		res->steps_done++;
	}
	/* after a restart: connected again, as the caller expects */
	if (p->conn == NULL)
		return connect_primary(p, e);
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
	if ((rc = check_options(p, e)) != WAL_OK)
		goto out;
	if ((rc = connect_primary(p, e)) != WAL_OK)
		goto out;
	if (p->version < 100000) {
		rc = wal_fail(e, WAL_EUNSUPPORTED,
			      "primary: PostgreSQL %d.%d is too old; replinit needs 10 or newer",
			      p->version / 10000, p->version % 10000 / 100);
		goto out;
	}
	if ((rc = rpl_primary_inspect(p, e)) != WAL_OK)
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
	} else if ((rc = run_plan(p, res, e)) != WAL_OK) {
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
