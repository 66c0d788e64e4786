/*
 * replinit standby: base backup of the primary into a staging directory
 * beside PGDATA, recovery configuration for the primary's version, a 0600
 * passfile, then one rename into place; optional slot and start.  A
 * failure leaves nothing that looks like a standby.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "sys/fileio.h"
#include "util.h"

typedef struct standby {
	const rpl_standby_opts *o;
	rpl_out out;
	char host[256];
	int port;
	char user[64];
	char pgdata[PATH_MAX];
	char parent[PATH_MAX];
	char base[256];
	char passfile[PATH_MAX];
	char app_name[64];
	char restore_command[1024];
	char conninfo[2048];
	char password[1024];
	int have_password;

	int debian;
	char deb_version[16], deb_cluster[128];

	int exists, entries, running, set_up;
	long running_pid;
	char entry_names[512];
	int in_place; /* no staging: PGDATA is a mount point or its parent is read-only */

	int version; /* primary's server_version_num */
	char system_id[32];
	char basebackup[PATH_MAX];
	char pg_ctl[PATH_MAX];
	char target[PATH_MAX]; /* where pg_basebackup writes: staging or PGDATA */
	char old_dir[PATH_MAX];
	int created_slot;
	int made_target;
	int step_no;
	char log[PATH_MAX + 32];
} standby;

/* ---- local state ---- */

static long live_postmaster(const char *dir)
{
	char path[PATH_MAX + 32];
	FILE *f;
	long pid = 0;

	rpl_fmt(path, sizeof path, "%s/postmaster.pid", dir);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
		return pid;
	return 0;
}

/* Counts the entries of dir and names the first few. */
static int list_entries(const char *dir, char *names, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int count = 0;
	size_t n = 0;

	names[0] = '\0';
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (count < 8 && n + strlen(de->d_name) + 3 < size)
			n += (size_t)snprintf(names + n, size - n, "%s%s", n ? ", " : "",
					      de->d_name);
		count++;
	}
	closedir(d);
	if (count > 8 && n + 20 < size)
		rpl_fmt(names + n, size - n, " and %d more", count - 8);
	return count;
}

/* Settings wanted for version (recovery + port) into set; returns count. */
static int wanted_settings(standby *s, int version, rpl_setting *set)
{
	rpl_recovery r = { s->conninfo, s->restore_command, s->o->slot };
	return rpl_recovery_settings(version, &r, set);
}

/* Whether dir already is a standby configured exactly as this run would configure it. */
static int already_set_up(standby *s)
{
	char path[PATH_MAX + 64], value[2048];
	char *text = NULL;
	rpl_setting set[RPL_MAX_SETTINGS];
	int version, n, i, ok = 0;
	struct stat st;
	wal_error e;

	rpl_fmt(path, sizeof path, "%s/PG_VERSION", s->pgdata);
	if (rpl_read_file(path, &text, &e) != WAL_OK)
		return 0;
	version = atoi(text) * 10000;
	free(text);
	text = NULL;
	if (version < 100000)
		return 0;
	rpl_fmt(path, sizeof path, "%s/standby.signal", s->pgdata);
	if (!rpl_uses_recovery_conf(version) && access(path, F_OK) != 0)
		return 0;
	rpl_fmt(path, sizeof path, "%s/%s", s->pgdata, rpl_recovery_file(version));
	if (rpl_read_file(path, &text, &e) != WAL_OK)
		return 0;
	n = wanted_settings(s, version, set);
	for (i = 0; i < n; i++)
		if (!rpl_conf_get(text, set[i].name, value, sizeof value) ||
		    strcmp(value, set[i].value) != 0)
			goto out;
	if (s->o->port) {
		free(text);
		text = NULL;
		rpl_fmt(path, sizeof path, "%s/postgresql.auto.conf", s->pgdata);
		rpl_fmt(value, sizeof value, "%d", s->o->port);
		if (rpl_read_file(path, &text, &e) != WAL_OK)
			goto out;
		if (!rpl_conf_get(text, "port", path, sizeof path) || strcmp(path, value) != 0)
			goto out;
	}
	if (stat(s->passfile, &st) != 0 || (st.st_mode & 077))
		goto out;
	ok = 1;
out:
	free(text);
	return ok;
}

/* Removes staging directories left by an interrupted run (their pid is gone). */
static void remove_leftovers(standby *s)
{
	DIR *d = opendir(s->parent);
	struct dirent *de;
	char prefix[300], path[PATH_MAX + 300];
	wal_error e;

	if (d == NULL)
		return;
	rpl_fmt(prefix, sizeof prefix, ".%s.replinit-", s->base);
	while ((de = readdir(d)) != NULL) {
		const char *rest;
		long pid;
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		rest = de->d_name + strlen(prefix);
		if (strncmp(rest, "old-", 4) == 0)
			rest += 4;
		pid = atol(rest);
		if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno == EPERM)
			continue;
		rpl_fmt(path, sizeof path, "%s/%s", s->parent, de->d_name);
		if (rpl_remove_tree(path, &e) == WAL_OK)
			rpl_say(&s->out, RPL_MSG_NOTICE, "removed %s, left by an interrupted run",
				path);
	}
	closedir(d);
}

/* ---- the primary ---- */

static wal_err get_password(standby *s, wal_error *e)
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
	const char *keys[] = { "host", "port", "user", "password", "dbname", "replication",
			       "application_name", "connect_timeout", NULL };
	const char *values[] = { s->host, port, s->user, s->password, "replication", "true",
				 "replinit", "15", NULL };
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

static wal_err inspect_primary(standby *s, wal_error *e)
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
				"or newer", s->host, s->port, s->version / 100);

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
					"give --pg-bin DIR", major, major);
	}
	return WAL_OK;
}

static wal_err slot_command(standby *s, int create, wal_error *e)
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

/* ---- the steps ---- */

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

static wal_err do_basebackup(standby *s, wal_error *e)
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

static wal_err write_passfile(standby *s, wal_error *e)
{
	char line[2300], path[PATH_MAX + 64];
	wal_err rc;

	/* written into the staging copy when it sits inside PGDATA, else at its own place */
	if (strncmp(s->passfile, s->pgdata, strlen(s->pgdata)) == 0 &&
	    s->passfile[strlen(s->pgdata)] == '/')
		rpl_fmt(path, sizeof path, "%s%s", s->target, s->passfile + strlen(s->pgdata));
	else
		rpl_fmt(path, sizeof path, "%s", s->passfile);
	rpl_pgpass_line(s->host, s->port, s->user, s->password, line, sizeof line);
	strcat(line, "\n");
	/* 0600 from its creation on, whatever an older file at that name allowed */
	rc = rpl_write_atomic(path, line, 0600, 0, NULL, NULL, 0, e);
	explicit_bzero(line, sizeof line);
	if (rc != WAL_OK)
		return rc;
	rpl_say(&s->out, RPL_MSG_STEP, "wrote passfile %s (mode 0600) for role %s", s->passfile,
		s->user);
	return WAL_OK;
}

static wal_err merge_into(const char *path, const rpl_setting *set, int n, const char *header,
			  wal_error *e)
{
	char *text = NULL, *merged;
	wal_err rc;

	if (rpl_read_file(path, &text, e) != WAL_OK) {
		if (e->code != WAL_ENOENT)
			return e->code;
		text = strdup(header);
		if (text == NULL)
			return wal_fail(e, WAL_ENOMEM, "out of memory");
	}
	merged = rpl_conf_merge(text, set, n);
	free(text);
	if (merged == NULL)
		return wal_fail(e, WAL_ENOMEM, "%s: out of memory", path);
	rc = rpl_write_atomic(path, merged, 0600, 1, NULL, NULL, 0, e);
	free(merged);
	return rc;
}

static wal_err write_recovery(standby *s, wal_error *e)
{
	rpl_setting set[RPL_MAX_SETTINGS];
	char path[PATH_MAX + 64];
	int n = wanted_settings(s, s->version, set);
	int fd;
	wal_err rc;

	rpl_fmt(path, sizeof path, "%s/postgresql.auto.conf", s->target);
	if (s->o->port) {
		rpl_setting port;
		rpl_fmt(port.name, sizeof port.name, "port");
		rpl_fmt(port.value, sizeof port.value, "%d", s->o->port);
		if ((rc = merge_into(path, &port, 1,
				     "# Do not edit this file manually!\n"
				     "# It will be overwritten by the ALTER SYSTEM command.\n",
				     e)) != WAL_OK)
			return rc;
		rpl_say(&s->out, RPL_MSG_STEP, "set port = %d in postgresql.auto.conf", s->o->port);
	}
	if (rpl_uses_recovery_conf(s->version)) {
		/* 11 and older: all in recovery.conf, whose presence makes the server a standby */
		rpl_fmt(path, sizeof path, "%s/recovery.conf", s->target);
		unlink(path);
		if ((rc = merge_into(path, set, n, "# written by replinit\n", e)) != WAL_OK)
			return rc;
		rpl_say(&s->out, RPL_MSG_STEP,
			"wrote recovery.conf: standby_mode, primary_conninfo (%s), "
			"restore_command, recovery_target_timeline%s",
			s->conninfo, s->o->slot ? ", primary_slot_name" : "");
		return WAL_OK;
	}
	if ((rc = merge_into(path, set, n,
			     "# Do not edit this file manually!\n"
			     "# It will be overwritten by the ALTER SYSTEM command.\n",
			     e)) != WAL_OK)
		return rc;
	/* standby.signal last: until it exists the directory is not a standby */
	rpl_fmt(path, sizeof path, "%s/standby.signal", s->target);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || fsync(fd) != 0) {
		rc = wal_fail_errno(e, WAL_OK, errno, "%s: cannot create", path);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	close(fd);
	if ((rc = wal_fsync_dir(s->target, e)) != WAL_OK)
		return rc;
	rpl_say(&s->out, RPL_MSG_STEP,
		"wrote standby.signal and, in postgresql.auto.conf, primary_conninfo (%s), "
		"restore_command, recovery_target_timeline%s",
		s->conninfo, s->o->slot ? ", primary_slot_name" : "");
	return WAL_OK;
}

static wal_err move_into_place(standby *s, wal_error *e)
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
static wal_err empty_dir(const char *dir, wal_error *e)
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

/* Last line of the server log that says why the standby cannot reach the primary. */
static int log_reason(const char *log, char *buf, size_t size)
{
	char *text = NULL, *p, *best = NULL;
	wal_error e;

	if (rpl_read_file(log, &text, &e) != WAL_OK)
		return 0;
	for (p = text; (p = strstr(p, "could not connect to the primary server")) != NULL; p++)
		best = p;
	if (best == NULL)
		for (p = text; (p = strstr(p, "FATAL:")) != NULL; p++)
			best = p;
	if (best) {
		char line[1024];
		rpl_fmt(line, sizeof line, "%s", best);
		line[strcspn(line, "\n")] = '\0';
		rpl_classify_conn_error(line, buf, size);
	}
	free(text);
	return best != NULL;
}

/* Polls pg_stat_wal_receiver on the standby until it streams or timeout seconds pass. */
static wal_err wait_streaming(standby *s, wal_error *e)
{
	char path[PATH_MAX + 32], lines[8][PATH_MAX];
	FILE *f;
	int i, timeout = s->o->timeout > 0 ? s->o->timeout : 60;
	time_t end = time(NULL) + timeout;
	char status[64] = "";

	rpl_fmt(path, sizeof path, "%s/postmaster.pid", s->pgdata);
	for (;;) {
		f = fopen(path, "r");
		memset(lines, 0, sizeof lines);
		for (i = 0; f && i < 8 && fgets(lines[i], sizeof lines[i], f); i++)
			lines[i][strcspn(lines[i], "\n")] = '\0';
		if (f)
			fclose(f);
		if (i >= 5) {
			const char *keys[] = { "host", "port", "dbname", "connect_timeout", NULL };
			const char *values[] = { lines[4][0] ? lines[4] : "127.0.0.1", lines[3],
						 "postgres", "5", NULL };
			PGconn *conn = PQconnectdbParams(keys, values, 0);
			if (PQstatus(conn) == CONNECTION_OK) {
				PGresult *r;
				r = PQexec(conn, "SELECT status FROM pg_stat_wal_receiver");
				if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
					rpl_fmt(status, sizeof status, "%s", PQgetvalue(r, 0, 0));
				else
					status[0] = '\0';
				PQclear(r);
			}
			PQfinish(conn);
			if (strcmp(status, "streaming") == 0) {
				rpl_say(&s->out, RPL_MSG_STEP,
					"the standby streams from %s:%d (pg_stat_wal_receiver)",
					s->host, s->port);
				return WAL_OK;
			}
		}
		if (time(NULL) >= end)
			break;
		usleep(500000);
	}
	{
		char reason[768] = "";
		if (s->log[0] && log_reason(s->log, reason, sizeof reason))
			return wal_fail(e, WAL_ENET,
					"standby %s runs but does not stream after %d s: %s "
					"(it keeps retrying; log %s)",
					s->pgdata, timeout, reason, s->log);
		return wal_fail(e, WAL_ENET,
				"standby %s runs but does not stream after %d s (wal receiver "
				"status '%s'); see %s",
				s->pgdata, timeout, status[0] ? status : "none",
				s->log[0] ? s->log : "the server log");
	}
}

static wal_err do_start(standby *s, wal_error *e)
{
	char *argv[16];
	int argc = 0, status;
	rpl_child_out co;

	if (s->debian) {
		argv[argc++] = "/usr/bin/pg_ctlcluster";
		argv[argc++] = s->deb_version;
		argv[argc++] = s->deb_cluster;
		argv[argc++] = "start";
		rpl_fmt(s->log, sizeof s->log, "/var/log/postgresql/postgresql-%s-%s.log",
			s->deb_version, s->deb_cluster);
	} else {
		rpl_fmt(s->log, sizeof s->log, "%s/startup.log", s->pgdata);
		argv[argc++] = s->pg_ctl;
		argv[argc++] = "start";
		argv[argc++] = "-D";
		argv[argc++] = s->pgdata;
		argv[argc++] = "-l";
		argv[argc++] = s->log;
		argv[argc++] = "-w";
		argv[argc++] = "-t";
		argv[argc++] = "120";
	}
	argv[argc] = NULL;
	status = rpl_run(argv, NULL, 1, &s->out, &co, e);
	if (status < 0)
		return e->code;
	if (status != 0)
		return wal_fail(e, WAL_EIO, "standby %s: %s start failed (exit %d); see %s",
				s->pgdata, argv[0], status, s->log);
	rpl_say(&s->out, RPL_MSG_STEP, "started the standby (log %s)", s->log);
	return wait_streaming(s, e);
}

/* ---- the run ---- */

static wal_err prepare(standby *s, wal_error *e)
{
	const rpl_standby_opts *o = s->o;
	char buf[PATH_MAX], *slash;
	struct stat st;
	size_t len;

	if (o->primary == NULL || o->pgdata == NULL)
		return wal_fail(e, WAL_EINVAL,
				"--primary HOST[:PORT] and --pgdata DIR are required");
	/*
	 * every name below ends up in postgresql.auto.conf, recovery.conf, the
	 * passfile or primary_conninfo
	 */
	if (rpl_check_text("--primary", o->primary, e) != WAL_OK ||
	    rpl_check_text("--pgdata", o->pgdata, e) != WAL_OK ||
	    (o->user && rpl_check_role("--user", o->user, e) != WAL_OK) ||
	    (o->passfile && rpl_check_text("--passfile", o->passfile, e) != WAL_OK) ||
	    (o->slot && rpl_check_text("--slot", o->slot, e) != WAL_OK) ||
	    (o->app_name && rpl_check_text("--application-name", o->app_name, e) != WAL_OK) ||
	    (o->restore_command &&
	     rpl_check_text("--restore-command", o->restore_command, e) != WAL_OK) ||
	    (o->config_file && rpl_check_text("--config", o->config_file, e) != WAL_OK))
		return e->code;
	if (rpl_hostport_parse(o->primary, s->host, sizeof s->host, &s->port, e) != WAL_OK)
		return e->code;
	rpl_fmt(s->user, sizeof s->user, "%s", o->user ? o->user : RPL_DEFAULT_USER);
	if (o->slot) {
		const char *c;
		if (!*o->slot || strlen(o->slot) > RPL_NAME_MAX)
			return wal_fail(e, WAL_EINVAL, "--slot '%s': 1 to 63 characters", o->slot);
		for (c = o->slot; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
				return wal_fail(e, WAL_EINVAL,
						"--slot '%s': only a-z, 0-9 and _ are allowed",
						o->slot);
	}
	if (geteuid() == 0)
		return wal_fail(e, WAL_EPERM,
				"standby: running as root would leave root-owned files the server "
				"refuses; run as the postgres os user "
				"(runuser -u postgres -- replinit ...)");
	/* an absolute PGDATA without trailing slashes */
	if (o->pgdata[0] == '/')
		rpl_fmt(buf, sizeof buf, "%s", o->pgdata);
	else {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof cwd) == NULL)
			return wal_fail_errno(e, WAL_OK, errno, "cannot get the current directory");
		rpl_fmt(buf, sizeof buf, "%s/%s", cwd, o->pgdata);
		if (rpl_check_text("--pgdata", buf, e) != WAL_OK)
			return e->code;
	}
	len = strlen(buf);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	rpl_fmt(s->pgdata, sizeof s->pgdata, "%s", buf);
	slash = strrchr(buf, '/');
	if (slash == NULL || slash[1] == '\0')
		return wal_fail(e, WAL_EINVAL, "--pgdata '%s': not a directory below /", o->pgdata);
	rpl_fmt(s->base, sizeof s->base, "%s", slash + 1);
	*slash = '\0';
	rpl_fmt(s->parent, sizeof s->parent, "%s", buf[0] ? buf : "/");
	if (stat(s->parent, &st) != 0 || !S_ISDIR(st.st_mode))
		return wal_fail(e, WAL_ENOENT, "--pgdata %s: parent directory %s does not exist",
				s->pgdata, s->parent);

	/* Debian: /var/lib/postgresql/V/C with its configuration in /etc/postgresql/V/C */
	if (sscanf(s->pgdata, "/var/lib/postgresql/%15[0-9]/%127[^/]", s->deb_version,
		   s->deb_cluster) == 2) {
		rpl_fmt(buf, sizeof buf, "/etc/postgresql/%s/%s/postgresql.conf", s->deb_version,
			s->deb_cluster);
		s->debian = access(buf, R_OK) == 0 && access("/usr/bin/pg_ctlcluster", X_OK) == 0;
	}

	/* the standby reads primary_conninfo in PGDATA: a relative passfile would move */
	if (o->passfile && o->passfile[0] != '/') {
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof cwd) == NULL)
			return wal_fail_errno(e, WAL_OK, errno, "cannot get the current directory");
		rpl_fmt(s->passfile, sizeof s->passfile, "%s/%s", cwd, o->passfile);
		if (rpl_check_text("--passfile", s->passfile, e) != WAL_OK)
			return e->code;
	} else if (o->passfile)
		rpl_fmt(s->passfile, sizeof s->passfile, "%s", o->passfile);
	else
		rpl_fmt(s->passfile, sizeof s->passfile, "%s/replinit.pgpass", s->pgdata);
	if (o->app_name)
		rpl_fmt(s->app_name, sizeof s->app_name, "%s", o->app_name);
	else {
		char *c;
		if (gethostname(s->app_name, sizeof s->app_name - 1) != 0)
			rpl_fmt(s->app_name, sizeof s->app_name, "standby");
		s->app_name[sizeof s->app_name - 1] = '\0';
		for (c = s->app_name; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.'))
				*c = '_';
	}
	if (o->restore_command)
		rpl_fmt(s->restore_command, sizeof s->restore_command, "%s", o->restore_command);
	else
		rpl_default_command("walfetch", "%f %p", o->config_file, s->restore_command,
				    sizeof s->restore_command);
	rpl_conninfo(s->host, s->port, s->user, s->passfile, s->app_name, s->conninfo,
		     sizeof s->conninfo);

	/* what is there now */
	if (lstat(s->pgdata, &st) == 0) {
		struct stat parent_st;
		if (!S_ISDIR(st.st_mode))
			return wal_fail(e, WAL_EINVAL, "--pgdata %s: exists and is not a directory",
					s->pgdata);
		s->exists = 1;
		s->entries = list_entries(s->pgdata, s->entry_names, sizeof s->entry_names);
		if (s->entries < 0)
			return wal_fail_errno(e, WAL_OK, errno, "%s: cannot list", s->pgdata);
		s->running_pid = live_postmaster(s->pgdata);
		s->running = s->running_pid > 0;
		/* a mount point cannot be renamed over: back up into it directly */
		if (stat(s->parent, &parent_st) == 0 && parent_st.st_dev != st.st_dev)
			s->in_place = 1;
	} else if (errno != ENOENT) {
		return wal_fail_errno(e, WAL_OK, errno, "%s: cannot stat", s->pgdata);
	}
	if (access(s->parent, W_OK) != 0) {
		if (!s->exists)
			return wal_fail(e, WAL_EPERM,
					"--pgdata %s: cannot create it: %s is not writable for "
					"this user", s->pgdata, s->parent);
		s->in_place = 1;
	}
	s->set_up = s->exists && already_set_up(s);
	return WAL_OK;
}

static void plan_line(standby *s, const char *fmt, const char *a, const char *b)
{
	char text[2048];
	rpl_fmt(text, sizeof text, fmt, a, b);
	rpl_say(&s->out, RPL_MSG_PLAN, "%d. %s", ++s->step_no, text);
}

static void print_plan(standby *s)
{
	char buf[2600];

	rpl_say(&s->out, RPL_MSG_NOTICE, "dry run: the plan, nothing is changed");
	if (s->exists && s->entries > 0) {
		rpl_fmt(buf, sizeof buf, "remove the %d entries of %s (%s)", s->entries, s->pgdata,
			s->entry_names);
		plan_line(s, "%s%s", buf,
			  s->in_place ? " before the base backup"
				      : " after the new copy is complete");
	}
	if (s->o->slot)
		plan_line(s, "create physical replication slot %s on the primary "
			  "(or use it if it exists)%s", s->o->slot, "");
	rpl_fmt(buf, sizeof buf, "%s:%d (PostgreSQL %d) with %s -X stream -c fast -P into %s",
		s->host, s->port, s->version / 10000, s->basebackup, s->target);
	plan_line(s, "take a base backup of %s%s", buf, "");
	plan_line(s, "write passfile %s (mode 0600) with the password of role %s", s->passfile,
		  s->user);
	if (s->o->port) {
		rpl_fmt(buf, sizeof buf, "%d", s->o->port);
		plan_line(s, "set port = %s in postgresql.auto.conf%s", buf, "");
	}
	rpl_fmt(buf, sizeof buf,
		"primary_conninfo = '%s', restore_command = '%s', recovery_target_timeline = "
		"'latest'%s%s",
		s->conninfo, s->restore_command, s->o->slot ? ", primary_slot_name = " : "",
		s->o->slot ? s->o->slot : "");
	if (rpl_uses_recovery_conf(s->version))
		plan_line(s, "write recovery.conf: standby_mode = 'on', %s%s", buf, "");
	else
		plan_line(s, "write standby.signal and, in postgresql.auto.conf, %s%s", buf, "");
	if (!s->in_place)
		plan_line(s, "rename %s to %s", s->target, s->pgdata);
	if (s->o->start)
		plan_line(s, "start the standby with %s and wait until pg_stat_wal_receiver "
			  "shows it streaming%s", s->debian ? "pg_ctlcluster" : s->pg_ctl, "");
}

wal_err rpl_standby_run(const rpl_standby_opts *o, rpl_result *res, wal_error *e)
{
	standby *s = calloc(1, sizeof *s);
	wal_err rc = WAL_OK;

	memset(res, 0, sizeof *res);
	if (s == NULL)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	s->o = o;
	s->out.fn = o->report;
	s->out.ctx = o->ctx;
	if ((rc = prepare(s, e)) != WAL_OK)
		goto out;

	if (s->set_up) {
		rpl_say(&s->out, RPL_MSG_NOTICE,
			"standby %s is already set up for %s:%d as user %s%s; nothing to do",
			s->pgdata, s->host, s->port, s->user, s->running ? " and running" : "");
		if (o->start && !o->dry_run) {
			if (s->running) {
				if (s->debian)
					rpl_fmt(s->log, sizeof s->log,
						"/var/log/postgresql/postgresql-%s-%s.log",
						s->deb_version, s->deb_cluster);
				else
					rpl_fmt(s->log, sizeof s->log, "%s/startup.log", s->pgdata);
				rc = wait_streaming(s, e);
			} else {
				char text[32] = "", path[PATH_MAX + 32];
				int major;
				rpl_fmt(path, sizeof path, "%s/PG_VERSION", s->pgdata);
				FILE *f = fopen(path, "r");
				if (f && fgets(text, sizeof text, f) == NULL)
					text[0] = '\0';
				if (f)
					fclose(f);
				major = atoi(text);
				if (!s->debian && (!rpl_find_program("pg_ctl", o->pg_bin, major, 0,
								     s->pg_ctl, sizeof s->pg_ctl)))
					rc = wal_fail(e, WAL_ENOENT, "pg_ctl of PostgreSQL %d not "
						      "found; give --pg-bin DIR", major);
				else
					rc = do_start(s, e);
				if (rc == WAL_OK)
					res->steps_done++;
			}
		}
		goto out;
	}
	if (s->running) {
		rc = wal_fail(e, WAL_EEXIST,
			      "--pgdata %s: in use by a running server (pid %ld); stop it "
			      "first, then use --replace",
			      s->pgdata, s->running_pid);
		goto out;
	}
	if (s->exists && s->entries > 0 && !o->replace) {
		rc = wal_fail(e, WAL_EEXIST,
			      "--pgdata %s: not empty (%d entries: %s); give --replace "
			      "to remove them",
			      s->pgdata, s->entries, s->entry_names);
		goto out;
	}
	if (!s->in_place)
		remove_leftovers(s);
	if ((rc = get_password(s, e)) != WAL_OK)
		goto out;
	if ((rc = inspect_primary(s, e)) != WAL_OK)
		goto out;
	rpl_say(&s->out, RPL_MSG_INFO,
		"primary %s:%d: PostgreSQL %d.%d, system identifier %s; %s layout", s->host,
		s->port, s->version / 10000, s->version % 10000, s->system_id,
		s->debian ? "Debian" : "plain data directory");
	if (s->in_place)
		rpl_fmt(s->target, sizeof s->target, "%s", s->pgdata);
	else
		rpl_fmt(s->target, sizeof s->target, "%s/.%s.replinit-%ld", s->parent, s->base,
			(long)getpid());

	if (o->dry_run) {
		print_plan(s);
		res->steps_planned = s->step_no;
		goto out;
	}

	if (s->in_place && s->entries > 0) {
		if ((rc = empty_dir(s->pgdata, e)) != WAL_OK)
			goto fail;
		rpl_say(&s->out, RPL_MSG_STEP, "removed the %d entries of %s (%s)", s->entries,
			s->pgdata, s->entry_names);
	}
	if (o->slot && (rc = slot_command(s, 1, e)) != WAL_OK)
		goto fail;
	if ((rc = do_basebackup(s, e)) != WAL_OK)
		goto fail;
	if ((rc = write_passfile(s, e)) != WAL_OK)
		goto fail;
	if ((rc = write_recovery(s, e)) != WAL_OK)
		goto fail;
	if (!s->in_place && (rc = move_into_place(s, e)) != WAL_OK)
		goto fail;
	res->steps_done = 1;
	if (o->start && (rc = do_start(s, e)) != WAL_OK)
		goto out; /* the standby is complete; it keeps retrying, so leave it */
	goto out;
fail : {
	wal_error cleanup;
	char cause[768];
	rpl_fmt(cause, sizeof cause, "%s", e->msg);
	if (s->made_target) {
		if (s->in_place)
			empty_dir(s->target, &cleanup);
		else
			rpl_remove_tree(s->target, &cleanup);
	}
	if (s->created_slot && slot_command(s, 0, &cleanup) == WAL_OK)
		rpl_fmt(cause + strlen(cause), sizeof cause - strlen(cause),
			"; dropped slot %s again", o->slot);
	if (s->in_place)
		wal_fail(e, rc, "%s; %s was left empty", cause, s->pgdata);
	else
		wal_fail(e, rc, "%s; %s is unchanged", cause, s->pgdata);
}
out:
	explicit_bzero(s->password, sizeof s->password);
	free(s);
	return rc;
}
