/*
 * replinit primary's state, shared by its parts: inspecting the server
 * (primary_inspect.c), the steps (primary_steps.c), pg_hba.conf
 * (primary_hba.c) and the plan and the run (primary.c).
 */
#ifndef RPL_PRIMARY_H
#define RPL_PRIMARY_H

#include <limits.h>
#include <libpq-fe.h>

#include "util.h"

#define MAX_STEPS 16

typedef enum step_kind {
	STEP_ROLE_CREATE,
	STEP_ROLE_ALTER,
	STEP_ROLE_PASSWORD,
	STEP_SETTING,
	STEP_HBA,
	STEP_RELOAD,
	STEP_RESTART
} step_kind;

/* One step of the plan, with the line the dry run shows for it. */
typedef struct step {
	step_kind kind;
	int setting; /* index into settings for STEP_SETTING */
	char plan[1024];
} step;

/* One run of replinit primary: the options, what inspection found, the plan. */
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
	char pending[256];		/* settings waiting for a restart, comma separated */

	step steps[MAX_STEPS];
	int step_count;
} primary;

/* libpq's last error on conn as one line, without a trailing period. */
void rpl_pq_reason(PGconn *conn, char *buf, size_t size);

/*
 * Runs sql with up to two text parameters (NULL for fewer); returns the
 * result for the caller to PQclear, or NULL with e filled.
 */
PGresult *rpl_primary_query(primary *p, const char *sql, const char *param1, const char *param2,
			    wal_error *e);

/*
 * The first value of a one-row query with up to one parameter into buf;
 * returns 1 if there was a row, 0 if none (buf ""), -1 on error (e filled).
 */
int rpl_primary_value(primary *p, const char *sql, const char *param, char *buf, size_t size,
		      wal_error *e);

/*
 * The password for the role into p->password, from --password-file or the
 * prompt (confirm asks twice), once per run.
 */
wal_err rpl_primary_password(primary *p, int confirm, wal_error *e);

/*
 * Reads what the server has now: that it is a primary we may change, the
 * role, the settings as the next reload or restart will use them (and so
 * p->settings, the ones to set), pg_hba.conf and the restarts pending.
 */
wal_err rpl_primary_inspect(primary *p, wal_error *e);

/* Whether a setting only takes effect at server start. */
int rpl_primary_needs_restart(const char *name);

/*
 * The first line of hba_file the server refuses, as "line N: error", into
 * buf; 1 if there is one, 0 if none, -1 on error.
 */
int rpl_primary_hba_refused(primary *p, char *buf, size_t size, wal_error *e);

/* Step: creates the role, grants it REPLICATION LOGIN, or sets its password. */
wal_err rpl_primary_do_role(primary *p, step *s, wal_error *e);

/* Step: ALTER SYSTEM SET for one setting. */
wal_err rpl_primary_do_setting(primary *p, const rpl_setting *set, wal_error *e);

/*
 * Step: adds p->hba_line to pg_hba.conf (unless the file, read again, now
 * lets the standby in), keeping the previous file as p->hba_backup.
 */
wal_err rpl_primary_do_hba(primary *p, wal_error *e);

/*
 * After a reload: a pg_hba.conf the server refuses is rolled back to
 * p->hba_backup when replinit wrote it (WAL_ECONFIG), else only warned about.
 */
wal_err rpl_primary_check_hba(primary *p, wal_error *e);

/*
 * Step: pg_reload_conf(), the pg_hba.conf check, then waits until the
 * settings that need a restart show as pending (into p->pending).
 */
wal_err rpl_primary_do_reload(primary *p, wal_error *e);

/*
 * Step: restarts the server, with pg_ctlcluster for a Debian cluster, else
 * with the postmaster's own pg_ctl and log; closes p->conn first.
 */
wal_err rpl_primary_do_restart(primary *p, wal_error *e);

#endif
