/*
 * replinit primary's steps on the server: the role, one ALTER SYSTEM
 * setting, the reload, and the restart through pg_ctl or pg_ctlcluster.
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

wal_err rpl_primary_do_role(primary *p, step *s, wal_error *e)
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
		if ((rc = rpl_primary_password(p, s->kind == STEP_ROLE_CREATE, e)) != WAL_OK)
			goto out;
		/* hashed here, so the plain text never reaches the server or its logs */
		hash = PQencryptPasswordConn(p->conn, p->password, p->user,
					     rpl_auth_method(p->version));
		if (hash == NULL) {
			char reason[512];
			rpl_pq_reason(p->conn, reason, sizeof reason);
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
	r = rpl_primary_query(p, sql, NULL, NULL, e);
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

wal_err rpl_primary_do_setting(primary *p, const rpl_setting *set, wal_error *e)
{
	char *literal = PQescapeLiteral(p->conn, set->value, strlen(set->value));
	char sql[2400], quoted[1100];
	PGresult *r;

	if (literal == NULL)
		return wal_fail(e, WAL_ENOMEM, "%s: cannot quote the value", set->name);
	rpl_fmt(sql, sizeof sql, "ALTER SYSTEM SET %s = %s", set->name, literal);
	PQfreemem(literal);
	r = rpl_primary_query(p, sql, NULL, NULL, e);
	if (r == NULL)
		return e->code;
	PQclear(r);
	rpl_guc_quote(set->value, quoted, sizeof quoted);
	rpl_say(&p->out, RPL_MSG_STEP, "set %s = %s in postgresql.auto.conf", set->name, quoted);
	return WAL_OK;
}

wal_err rpl_primary_do_reload(primary *p, wal_error *e)
{
	PGresult *r = rpl_primary_query(p, "SELECT pg_reload_conf()", NULL, NULL, e);
	char buf[256];
	int i, tries;

	if (r == NULL)
		return e->code;
	PQclear(r);
	rpl_say(&p->out, RPL_MSG_STEP, "reloaded the configuration");
	if (rpl_primary_check_hba(p, e) != WAL_OK)
		return e->code;
	/*
	 * the backends see the reload a moment later; wait for the postmaster-only
	 * settings to show as pending
	 */
	for (tries = 0; tries < 25; tries++) {
		int missing = 0;
		PGresult *pr;
		usleep(200000);
		pr = rpl_primary_query(p,
				       "SELECT string_agg(name, ', ' ORDER BY name) "
				       "FROM pg_settings WHERE pending_restart",
				       NULL, NULL, e);
		if (pr == NULL)
			return e->code;
		rpl_fmt(buf, sizeof buf, "%s", PQgetisnull(pr, 0, 0) ? "" : PQgetvalue(pr, 0, 0));
		PQclear(pr);
		for (i = 0; i < p->settings_count; i++)
			if (rpl_primary_needs_restart(p->settings[i].name) &&
			    !strstr(buf, p->settings[i].name))
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

wal_err rpl_primary_do_restart(primary *p, wal_error *e)
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
