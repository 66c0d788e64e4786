/*
 * replinit standby and the primary: the replication connection, the slot,
 * the base backup into a staging directory and its rename over PGDATA.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "sys/fileio.h"
#include "standby.h"

wal_err rpl_standby_password(standby *s, wal_error *e)
{
	wal_err rc;

	if (s->have_password)
		return WAL_OK;
	if (s->o->password_file) {
		rc = rpl_read_password_file(s->o->password_file, s->password, sizeof s->password,
					    &s->out, e);
	} else if (s->o->prompt) {
		char what[128];
		rpl_fmt(what, sizeof what, "password of role %s on %s", s->user, s->host);
		rc = s->o->prompt(s->o->ctx, what, 0, s->password, sizeof s->password, e);
	} else {
		rc = wal_fail(e, WAL_EINVAL, "role %s: a password is needed; give --password-file",
			      s->user);
	}
	if (rc == WAL_OK)
		s->have_password = 1;
	return rc;
}

/* A replication connection to the primary (the kind pg_basebackup and the standby make). */
static PGconn *connect_replication(standby *s, wal_error *e)
{
	char port[16];
	const char *keys[] = { "host",
			       "port",
			       "user",
			       "password",
			       "dbname",
			       "replication",
			       "application_name",
			       "connect_timeout",
			       NULL };
	const char *values[] = { s->host, port,	      s->user, s->password, "replication",
				 "true",  "replinit", "15",    NULL };
	PGconn *conn;

	rpl_fmt(port, sizeof port, "%d", s->port);
	conn = PQconnectdbParams(keys, values, 0);
	if (conn == NULL) {
		wal_fail(e, WAL_ENOMEM, "out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		char reason[768];
		wal_err code = rpl_classify_conn_error(PQerrorMessage(conn), reason, sizeof reason);
		wal_fail(e, code, "primary %s:%d: %s", s->host, s->port, reason);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

wal_err rpl_standby_inspect_primary(standby *s, wal_error *e)
{
	PGconn *conn = connect_replication(s, e);
	PGresult *r;
	int major;

	if (conn == NULL)
		return e->code;
	s->version = PQserverVersion(conn);
	r = PQexec(conn, "IDENTIFY_SYSTEM");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		rpl_fmt(s->system_id, sizeof s->system_id, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(conn);
	major = s->version / 10000;
	if (s->version < 100000)
		return wal_fail(e, WAL_EUNSUPPORTED,
				"primary %s:%d: PostgreSQL %d is too old; replinit needs 10 "
				"or newer",
				s->host, s->port, s->version / 100);

	/* pg_basebackup of the same major or newer (15 reads 11); it refuses newer servers */
	if (!rpl_find_program("pg_basebackup", s->o->pg_bin, major, 1, s->basebackup,
			      sizeof s->basebackup))
		return wal_fail(e, WAL_ENOENT,
				"pg_basebackup for PostgreSQL %d or newer not found; install "
				"postgresql-client-%d or give --pg-bin DIR",
				major, major);
	if (s->o->start && !s->debian) {
		if (!rpl_find_program("pg_ctl", s->o->pg_bin, major, 0, s->pg_ctl,
				      sizeof s->pg_ctl))
			return wal_fail(e, WAL_ENOENT,
					"pg_ctl of PostgreSQL %d not found (the standby must run "
					"the primary's major version); install postgresql-%d or "
					"give --pg-bin DIR",
					major, major);
	}
	return WAL_OK;
}

wal_err rpl_standby_slot(standby *s, int create, wal_error *e)
{
	PGconn *conn = connect_replication(s, e);
	PGresult *r;
	char *ident, sql[256];
	wal_err rc = WAL_OK;

	if (conn == NULL)
		return e->code;
	ident = PQescapeIdentifier(conn, s->o->slot, strlen(s->o->slot));
	rpl_fmt(sql, sizeof sql,
		create ? "CREATE_REPLICATION_SLOT %s PHYSICAL RESERVE_WAL"
		       : "DROP_REPLICATION_SLOT %s",
		ident ? ident : s->o->slot);
	if (ident)
		PQfreemem(ident);
	r = PQexec(conn, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (create && state && strcmp(state, "42710") == 0) {
			rpl_say(&s->out, RPL_MSG_STEP,
				"slot %s already exists on the primary; using it", s->o->slot);
		} else {
			char reason[512];
			rpl_fmt(reason, sizeof reason, "%s", PQresultErrorMessage(r));
			reason[strcspn(reason, "\n")] = '\0';
			rc = wal_fail(e, WAL_EIO, "slot %s on %s:%d: %s%s", s->o->slot, s->host,
				      s->port, reason,
				      strstr(reason, "max_replication_slots")
					      ? "; raise max_replication_slots on the primary"
					      : "");
		}
	} else if (create) {
		s->created_slot = 1;
		rpl_say(&s->out, RPL_MSG_STEP,
			"created physical replication slot %s on the primary", s->o->slot);
	}
	PQclear(r);
	PQfinish(conn);
	return rc;
}

/* The last "error:" line pg_basebackup printed. */
static void last_error_line(const char *tail, char *buf, size_t size)
{
	const char *best = NULL, *p = tail;

	while ((p = strstr(p, "error: ")) != NULL) {
		best = p + 7;
		p++;
	}
	if (best == NULL)
		best = tail;
	rpl_fmt(buf, size, "%s", best);
	buf[strcspn(buf, "\n")] = '\0';
}

wal_err rpl_standby_basebackup(standby *s, wal_error *e)
{
	char port[16], env_passfile[64], reason[768];
	char *argv[20];
	char *env[3];
	char pgpass[2300];
	int argc = 0, fd, status;
	rpl_child_out co;
	wal_err rc = WAL_OK;

	/* the password reaches pg_basebackup through a passfile that never touches a disk */
	fd = memfd_create("replinit.pgpass", 0);
	if (fd < 0)
		return wal_fail_errno(e, WAL_OK, errno, "cannot make an in-memory passfile");
	rpl_pgpass_line("*", s->port, s->user, s->password, pgpass, sizeof pgpass);
	strcat(pgpass, "\n");
	if (fchmod(fd, 0600) != 0 || write(fd, pgpass, strlen(pgpass)) != (ssize_t)strlen(pgpass)) {
		rc = wal_fail_errno(e, WAL_OK, errno, "cannot write the in-memory passfile");
		goto out;
	}
	rpl_fmt(env_passfile, sizeof env_passfile, "PGPASSFILE=/proc/self/fd/%d", fd);
	env[0] = env_passfile;
	env[1] = "PGAPPNAME=replinit";
	env[2] = NULL;
	rpl_fmt(port, sizeof port, "%d", s->port);
	argv[argc++] = s->basebackup;
	argv[argc++] = "-D";
	argv[argc++] = s->target;
	argv[argc++] = "-h";
	argv[argc++] = s->host;
	argv[argc++] = "-p";
	argv[argc++] = port;
	argv[argc++] = "-U";
	argv[argc++] = s->user;
	argv[argc++] = "-X";
	argv[argc++] = "stream";
	argv[argc++] = "-c";
	argv[argc++] = "fast";
	argv[argc++] = "-P";
	argv[argc++] = "-w";
	if (s->o->slot) {
		argv[argc++] = "-S";
		argv[argc++] = (char *)s->o->slot;
	}
	argv[argc] = NULL;
	s->made_target = 1;
	status = rpl_run(argv, env, 1, &s->out, &co, e);
	if (status < 0) {
		rc = e->code;
		goto out;
	}
	if (status != 0) {
		if (strstr(co.tail, "connection to server") ||
		    strstr(co.tail, "could not connect") || strstr(co.tail, "max_wal_senders") ||
		    strstr(co.tail, "FATAL")) {
			wal_err code = rpl_classify_conn_error(co.tail, reason, sizeof reason);
			rc = wal_fail(e, code, "pg_basebackup from %s:%d: %s", s->host, s->port,
				      reason);
		} else {
			last_error_line(co.tail, reason, sizeof reason);
			rc = wal_fail(e, WAL_EIO, "pg_basebackup from %s:%d failed (exit %d): %s",
				      s->host, s->port, status, reason);
		}
		goto out;
	}
	rpl_say(&s->out, RPL_MSG_STEP, "took a base backup of %s:%d with %s into %s", s->host,
		s->port, s->basebackup, s->target);
out:
	close(fd);
	return rc;
}

wal_err rpl_standby_move_into_place(standby *s, wal_error *e)
{
	wal_err rc;

	if (s->exists) {
		rpl_fmt(s->old_dir, sizeof s->old_dir, "%s/.%s.replinit-old-%ld", s->parent,
			s->base, (long)getpid());
		if (rename(s->pgdata, s->old_dir) != 0)
			return wal_fail_errno(e, WAL_OK, errno, "%s: cannot move aside to %s",
					      s->pgdata, s->old_dir);
	}
	if (rename(s->target, s->pgdata) != 0) {
		rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot rename %s into place", s->pgdata,
				    s->target);
		if (s->old_dir[0] && rename(s->old_dir, s->pgdata) == 0)
			s->old_dir[0] = '\0';
		return rc;
	}
	s->made_target = 0;
	if ((rc = wal_fsync_dir(s->parent, e)) != WAL_OK)
		return rc;
	if (s->old_dir[0]) {
		if ((rc = rpl_remove_tree(s->old_dir, e)) != WAL_OK)
			return rc;
		rpl_say(&s->out, RPL_MSG_STEP,
			"moved the new standby into %s and removed its previous "
			"content (%d entries: %s)",
			s->pgdata, s->entries, s->entry_names);
	} else {
		rpl_say(&s->out, RPL_MSG_STEP, "moved the new standby into %s", s->pgdata);
	}
	return WAL_OK;
}

/* Empties dir, keeping dir itself (in-place mode). */
wal_err rpl_standby_empty_dir(const char *dir, wal_error *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX + 300];
	wal_err rc = WAL_OK;

	if (d == NULL)
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot open", dir);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rpl_fmt(path, sizeof path, "%s/%s", dir, de->d_name);
		if ((rc = rpl_remove_tree(path, e)) != WAL_OK)
			break;
	}
	closedir(d);
	return rc;
}
