/*
 * replinit standby's start: pg_ctl or pg_ctlcluster, then waiting until
 * pg_stat_wal_receiver shows it streaming, or saying why it does not.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "standby.h"

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
wal_err rpl_standby_wait_streaming(standby *s, wal_error *e)
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

wal_err rpl_standby_start(standby *s, wal_error *e)
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
	return rpl_standby_wait_streaming(s, e);
}

wal_err rpl_standby_start_existing(standby *s, rpl_result *res, wal_error *e)
{
	wal_err rc;
	int major;

	if (s->running) {
		if (s->debian)
			rpl_fmt(s->log, sizeof s->log, "/var/log/postgresql/postgresql-%s-%s.log",
				s->deb_version, s->deb_cluster);
		else
			rpl_fmt(s->log, sizeof s->log, "%s/startup.log", s->pgdata);
		return rpl_standby_wait_streaming(s, e);
	}
	major = rpl_standby_data_major(s->pgdata);
	if (!s->debian &&
	    !rpl_find_program("pg_ctl", s->o->pg_bin, major, 0, s->pg_ctl, sizeof s->pg_ctl))
		rc = wal_fail(e, WAL_ENOENT, "pg_ctl of PostgreSQL %d not found; give --pg-bin DIR",
			      major);
	else
		rc = rpl_standby_start(s, e);
	if (rc == WAL_OK)
		res->steps_done++;
	return rc;
}
