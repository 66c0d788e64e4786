/*
 * What walpush, walfetch and walprune share: option parsing for -c/--set/
 * --help/--version, loading the configuration, and the exit code of each
 * error kind.
 */
#ifndef WAL_CMD_COMMON_H
#define WAL_CMD_COMMON_H

#include <stdint.h>
#include "base/config.h"
#include "base/error.h"

/*
 * Exit codes.  PostgreSQL treats an archive_command exit above 125 as a
 * crash of the archiver, so walpush stays within 1..125.  walfetch uses 1
 * only for "the archive has no such file"; its hard errors exit with their
 * own code, or 126 when fetch_on_error says recovery must stop (PostgreSQL
 * aborts recovery on an exit above 125 instead of ending it early).
 */
enum {
	EXIT_OK = 0,
	EXIT_NOTFOUND = 1,  /* walfetch: not in the archive */
	EXIT_USAGE = 2,	    /* bad arguments or file name */
	EXIT_CONFIG = 3,    /* bad configuration */
	EXIT_DIFFERENT = 4, /* walpush: archive holds different content */
	EXIT_BADINPUT = 5,  /* input is not valid WAL for its name, or another cluster's */
	EXIT_ARCHIVE = 6,   /* archive unreachable, I/O error, disk full */
	EXIT_CORRUPT = 7,   /* walfetch: archived object fails verification */
	EXIT_AUTH = 8,	    /* authentication or host key/certificate refused */
	EXIT_STOP_RECOVERY = 126
};

typedef struct wal_cmd {
	const char *program;
	const char *usage; /* printed by --help and on usage errors */
	wal_config cfg;
	const char *config_path;
	int dry_run;	      /* --dry-run, where a program has it */
	const char *sets[64]; /* --set key=value, applied after the file */
	int nsets;
	int verbose;
} wal_cmd;

/* The options every program takes, for getopt_long (-c, --set, -v, -h, -V);
 * first in each program's list: the ':' makes a missing argument return ':'. */
#define WAL_CMD_SHORT_OPTS ":c:s:vhV"
#define WAL_CMD_LONG_OPTS                                                                          \
	{ "config", required_argument, NULL, 'c' }, { "set", required_argument, NULL, 's' },       \
		{ "verbose", no_argument, NULL, 'v' }, { "help", no_argument, NULL, 'h' },         \
	{                                                                                          \
		"version", no_argument, NULL, 'V'                                                  \
	}

/* Maps an error kind to the exit code above. */
int wal_cmd_exit_code(wal_err code);

/* Sets up logging and default settings for program. */
void wal_cmd_init(wal_cmd *cmd, const char *program, const char *usage);

/* Handles a common option; returns 0 if opt is not one.  --help and
 * --version print and exit 0. */
int wal_cmd_option(wal_cmd *cmd, int opt, const char *arg);

/*
 * For what getopt_long returned instead of an option ('?' or ':'): prints
 * one usage error naming the option as given (unknown, ambiguous, missing
 * or unwanted argument) and exits 2.  getopt prints nothing itself
 * (wal_cmd_init clears opterr).
 */
struct option;
void wal_cmd_option_error(wal_cmd *cmd, int opt, char **argv, const struct option *longopts)
	__attribute__((noreturn));

/* Prints a usage error and exits 2. */
void wal_cmd_usage_error(wal_cmd *cmd, const char *why) __attribute__((noreturn));

/*
 * Records a run's outcome (exit code 0: a success) as the program's status
 * record in the spool (ahead/status.h), for the cluster of datadir's
 * pg_control, else the system_id setting, else fallback_id (what the run
 * found); nothing when none is known or the spool is not usable.  Never
 * fails the run.
 */
void wal_cmd_status(const wal_cmd *cmd, const char *datadir, uint64_t fallback_id, const char *file,
		    int exit_code, const char *message);

/* Reads the configuration file, then the --set overrides; checks archive is set. */
wal_err wal_cmd_load_config(wal_cmd *cmd, wal_error *e);

#endif
