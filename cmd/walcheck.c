/*
 * walcheck: is the archive reachable, is PostgreSQL wired to it, is every
 * segment a recovery needs there and readable; for people, cron and
 * monitoring (--json, --metrics).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check/check.h"
#include "common.h"
#include "base/log.h"

static const char usage[] =
	"usage: walcheck [OPTIONS]\n"
	"Checks that the archive is reachable (a probe written, read back, removed),\n"
	"that PostgreSQL archives into it, and that every segment a recovery from\n"
	"the oldest base backup needs is there, along the timeline history.\n"
	"\n"
	"  -D, --pgdata DIR        data directory: its pg_control names the cluster,\n"
	"                          its pg_wal shows what still waits to be archived,\n"
	"                          and its running server is asked (as -d would)\n"
	"  -d, --dbname CONNSTR    check PostgreSQL's settings over this connection\n"
	"                          (libpq's PG* variables alone are enough, too)\n"
	"      --switch-wal        switch WAL on the primary and wait until that\n"
	"                          segment is in the archive\n"
	"      --timeout SECONDS   how long --switch-wal waits (default 60)\n"
	"      --from WAL_NAME     check continuity from this segment on, instead of\n"
	"                          from the oldest base backup\n"
	"      --deep              read and verify every object as walfetch does\n"
	"      --max-age SECONDS   fail when nothing was archived for that long while\n"
	"                          PostgreSQL wrote WAL\n"
	"      --json              print the report as one JSON document\n"
	"      --metrics FILE      write the report as Prometheus metrics to FILE\n"
	"                          (atomically, for node_exporter's textfile collector)\n"
	"  -c, --config FILE       configuration file\n"
	"  -s, --set KEY=VALUE     override a setting (repeatable)\n"
	"  -v, --verbose           more detail\n"
	"  -h, --help              show this help\n"
	"  -V, --version           show the version\n"
	"\n"
	"exit codes: 0 healthy (also an archive with no WAL yet), 2 bad arguments,\n"
	"3 bad configuration, 6 archive unreachable, 8 authentication or host key\n"
	"refused, 9 archive incomplete or corrupt, 10 PostgreSQL not archiving into\n"
	"it, 11 nothing archived for --max-age\n";

enum { OPT_SWITCH = 256, OPT_TIMEOUT, OPT_FROM, OPT_DEEP, OPT_MAX_AGE, OPT_JSON, OPT_METRICS };

static long parse_seconds(wal_cmd *cmd, const char *opt, const char *text)
{
	char *end, why[128];
	long v = strtol(text, &end, 10);
	if (end == text || *end || v < 0 || v > 100L * 365 * 86400) {
		snprintf(why, sizeof(why), "%s wants a number of seconds", opt);
		wal_cmd_usage_error(cmd, why);
	}
	return v;
}

/* The exit code of the gravest problem: could not check, then incomplete, not wired, stale. */
static int exit_code(const wal_check_report *r)
{
	static const int rank[] = { [WAL_CHECK_FAILED] = 0,
				    [WAL_CHECK_INCOMPLETE] = 1,
				    [WAL_CHECK_NOT_WIRED] = 2,
				    [WAL_CHECK_STALE] = 3,
				    [WAL_CHECK_WARNING] = 4 };
	const wal_check_problem *worst = NULL;
	for (size_t i = 0; i < r->nproblems; i++)
		if (r->problems[i].cls != WAL_CHECK_WARNING &&
		    (!worst || rank[r->problems[i].cls] < rank[worst->cls]))
			worst = &r->problems[i];
	if (!worst)
		return EXIT_OK;
	switch (worst->cls) {
	case WAL_CHECK_INCOMPLETE:
		return WAL_CHECK_EXIT_INCOMPLETE;
	case WAL_CHECK_NOT_WIRED:
		return WAL_CHECK_EXIT_NOT_WIRED;
	case WAL_CHECK_STALE:
		return WAL_CHECK_EXIT_STALE;
	default:
		/* "not found" from a listing is a broken archive, never walfetch's 1 */
		return worst->err == WAL_ENOENT ? EXIT_ARCHIVE : wal_cmd_exit_code(worst->err);
	}
}

static const struct option longopts[] = { WAL_CMD_LONG_OPTS,
					  { "pgdata", required_argument, NULL, 'D' },
					  { "dbname", required_argument, NULL, 'd' },
					  { "switch-wal", no_argument, NULL, OPT_SWITCH },
					  { "timeout", required_argument, NULL, OPT_TIMEOUT },
					  { "from", required_argument, NULL, OPT_FROM },
					  { "deep", no_argument, NULL, OPT_DEEP },
					  { "max-age", required_argument, NULL, OPT_MAX_AGE },
					  { "json", no_argument, NULL, OPT_JSON },
					  { "metrics", required_argument, NULL, OPT_METRICS },
					  { NULL, 0, NULL, 0 } };

/* The options into opts, *json and *metrics; a bad one exits 2. */
static void parse_options(wal_cmd *cmd, int argc, char **argv, wal_check_opts *opts, int *json,
			  const char **metrics)
{
	int opt;
	while ((opt = getopt_long(argc, argv, WAL_CMD_SHORT_OPTS "D:d:", longopts, NULL)) != -1) {
		if (wal_cmd_option(cmd, opt, optarg))
			continue;
		switch (opt) {
		case 'D':
			opts->datadir = optarg;
			break;
		case 'd':
			opts->conninfo = optarg;
			break;
		case OPT_SWITCH:
			opts->switch_wal = 1;
			break;
		case OPT_TIMEOUT:
			opts->timeout = (int)parse_seconds(cmd, "--timeout", optarg);
			break;
		case OPT_FROM:
			opts->from = optarg;
			break;
		case OPT_DEEP:
			opts->deep = 1;
			break;
		case OPT_MAX_AGE:
			opts->max_age = parse_seconds(cmd, "--max-age", optarg);
			break;
		case OPT_JSON:
			*json = 1;
			break;
		case OPT_METRICS:
			*metrics = optarg;
			break;
		default:
			wal_cmd_option_error(cmd, opt, argv, longopts);
		}
	}
	if (optind != argc)
		wal_cmd_usage_error(cmd, "unexpected argument");
}

int main(int argc, char **argv)
{
	wal_cmd cmd;
	wal_error err;
	wal_check_opts opts = { .timeout = 60, .max_age = -1 };
	wal_check_report report;
	const char *metrics = NULL;
	int json = 0;

	wal_cmd_init(&cmd, "walcheck", usage);
	parse_options(&cmd, argc, argv, &opts, &json, &metrics);
	/* libpq's environment names a server: ask it, as psql would */
	opts.connect =
		getenv("PGHOST") || getenv("PGPORT") || getenv("PGSERVICE") || getenv("PGDATABASE");

	wal_error_clear(&err);
	wal_err rc = wal_cmd_load_config(&cmd, &err);
	if (rc != WAL_OK) {
		wal_log(WAL_LOG_ERROR, "%s", err.msg);
		wal_config_free(&cmd.cfg);
		return wal_cmd_exit_code(rc == WAL_ENOENT ? WAL_EIO : rc);
	}
	rc = wal_check_run(&cmd.cfg, &opts, &report, &err);
	if (rc != WAL_OK) {
		wal_log(WAL_LOG_ERROR, "%s", err.msg);
		wal_config_free(&cmd.cfg);
		return wal_cmd_exit_code(rc);
	}
	if (json)
		wal_check_print_json(&report, stdout);
	else
		wal_check_print_text(&report, stdout);
	fflush(stdout);
	int code = exit_code(&report);
	if (metrics && wal_check_write_metrics(&report, metrics, &err) != WAL_OK) {
		wal_log(WAL_LOG_ERROR, "--metrics %s: %s", metrics, err.msg);
		if (code == EXIT_OK)
			code = EXIT_ARCHIVE;
	}
	/* each problem on stderr, one line each, after the report */
	for (size_t i = 0; i < report.nproblems; i++)
		wal_log(report.problems[i].cls == WAL_CHECK_WARNING ? WAL_LOG_WARNING
								    : WAL_LOG_ERROR,
			"%s", report.problems[i].text);
	wal_check_report_free(&report);
	wal_config_free(&cmd.cfg);
	return code;
}
