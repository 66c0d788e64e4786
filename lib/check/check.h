/*
 * walcheck: is the archive reachable, is PostgreSQL wired to it, is every
 * segment a recovery needs there and readable, how stale is it.  Beside the
 * stack (it uses every layer, and libpq): run.c gathers a report, pg.c asks
 * PostgreSQL, report.c prints it as text, JSON or Prometheus metrics.
 */
#ifndef WAL_CHECK_H
#define WAL_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "ahead/ahead.h"
#include "ahead/status.h"
#include "archive/check.h"
#include "base/config.h"
#include "base/error.h"

/* walcheck's own exit codes, beside the common ones (README, "Exit codes"). */
enum {
	WAL_CHECK_EXIT_INCOMPLETE = 9, /* a segment or history file missing, or an object corrupt */
	WAL_CHECK_EXIT_NOT_WIRED = 10, /* PostgreSQL not set up to archive here, or not archiving */
	WAL_CHECK_EXIT_STALE =
		11 /* --max-age: nothing archived for that long while WAL was written */
};

typedef struct wal_check_opts {
	const char *datadir;  /* -D: pg_control, pg_wal/archive_status, the server's socket */
	const char *conninfo; /* -d: a libpq connection string */
	int connect;	      /* connect with libpq's environment even without -d or -D */
	int switch_wal;	      /* --switch-wal */
	int timeout;	      /* --timeout seconds for --switch-wal */
	const char *from;     /* --from NAME */
	int deep;	      /* --deep */
	long max_age;	      /* --max-age seconds, -1 unset */
} wal_check_opts;

/* What a problem makes of the run (cmd/ turns it into an exit code). */
typedef enum wal_check_class {
	WAL_CHECK_FAILED, /* the check could not be made: err says why */
	WAL_CHECK_INCOMPLETE,
	WAL_CHECK_NOT_WIRED,
	WAL_CHECK_STALE,
	WAL_CHECK_WARNING /* said loudly, but the archive works (a spool that is off) */
} wal_check_class;

typedef struct wal_check_problem {
	wal_check_class cls;
	wal_err err;	/* for WAL_CHECK_FAILED */
	char text[768]; /* one line that says what to fix */
} wal_check_problem;

typedef struct wal_check_pg {
	int connected;
	int standby;
	int server_version;
	char wal_level[32], archive_mode[32], archive_library[128];
	char archive_command[512], restore_command[512];
	char data_directory[512];
	uint64_t system_id;
	char current_wal[WAL_NAME_MAX]; /* pg_walfile_name(pg_current_wal_lsn()): its timeline */
	uint64_t current_lsn;		/* pg_current_wal_lsn() (primary), 0 if unknown */
	char last_archived_wal[WAL_NAME_MAX], last_failed_wal[WAL_NAME_MAX];
	time_t last_archived_time, last_failed_time;
	int64_t archived_count, failed_count;
	int switch_done, switch_ok; /* --switch-wal */
	char switch_segment[WAL_NAME_MAX];
	double switch_wait_s;
} wal_check_pg;

typedef struct wal_check_corrupt {
	char path[128];
	char why[512];
} wal_check_corrupt;

typedef struct wal_check_report {
	const char *archive;
	uint64_t system_id;
	const char *system_id_from; /* "pg_control", "system_id", "postgresql", "archive" */
	int new_archive;	    /* no tree for the cluster (or no cluster) yet */
	time_t checked_at;

	int reachable;
	double open_ms;
	char credentials[512]; /* where the store's credentials came from, "" if it has none */
	wal_probe_result probe;

	int spool_wanted; /* push-ahead or fetch-ahead configured */
	int spool_ok;
	int push_ahead, fetch_ahead;
	char spool_note[600];

	wal_check_pg pg;

	int listed;
	wal_check_tree tree;
	uint64_t segments;
	char newest_segment[WAL_NAME_MAX];
	time_t newest_mtime;
	int continuity_done;
	wal_continuity cont;
	uint64_t missing; /* segments in gaps not waiting in pg_wal */

	int deep_done;
	size_t verified;
	wal_check_corrupt *corrupt;
	size_t ncorrupt;

	const char *status_progs[3];
	wal_status status[3];
	int have_status[3];

	int have_backlog;
	wal_backlog backlog;

	wal_check_problem *problems;
	size_t nproblems;
} wal_check_report;

/*
 * Runs every check opts asks for and fills r (free with
 * wal_check_report_free).  A check that fails is a problem in r, never a
 * reason to stop the others, except that nothing in the archive can be
 * checked once it cannot be reached.  Returns WAL_OK: what went wrong is
 * in r->problems (a problem that does not fit in memory is dropped).
 */
wal_err wal_check_run(const wal_config *cfg, const wal_check_opts *opts, wal_check_report *r,
		      wal_error *e);
void wal_check_report_free(wal_check_report *r);

/* Records a problem (printf-style text). */
void wal_check_problem_add(wal_check_report *r, wal_check_class cls, wal_err err, const char *fmt,
			   ...) __attribute__((format(printf, 4, 5)));

/* The report as text for people, one JSON document, or Prometheus text format. */
void wal_check_print_text(const wal_check_report *r, FILE *out);
void wal_check_print_json(const wal_check_report *r, FILE *out);
void wal_check_print_metrics(const wal_check_report *r, FILE *out);

/* Writes the metrics to path atomically (a temporary file renamed over it). */
wal_err wal_check_write_metrics(const wal_check_report *r, const char *path, wal_error *e);

/* ---- PostgreSQL (pg.c) ----------------------------------------------------- */

/*
 * Connects as opts say (-d, else the server of -D through its socket, else
 * libpq's environment) and fills r->pg: settings, role, position,
 * pg_stat_archiver; adds a NOT_WIRED problem for each setting that keeps
 * WAL from this archive.  *conn is a PGconn (void * here, so that only pg.c
 * needs libpq's header), NULL when no connection was asked for or made.
 */
void wal_check_pg_inspect(const wal_check_opts *opts, wal_check_report *r, void **conn);

/* SELECT pg_switch_wal(): the segment it closed in name[WAL_NAME_MAX]. */
wal_err wal_check_pg_switch(void *conn, char *name, wal_error *e);

/* Reads pg_stat_archiver again into r->pg. */
void wal_check_pg_archiver(void *conn, wal_check_report *r);

void wal_check_pg_close(void *conn);

#endif
