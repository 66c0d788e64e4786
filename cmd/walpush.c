/*
 * walpush WAL_PATH WAL_NAME: PostgreSQL's archive_command ('walpush %p %f').
 * Exits 0 only when the archive holds a durable copy of exactly these bytes.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include "ahead/ahead.h"
#include "archive/archive.h"
#include "common.h"
#include "base/log.h"

static const char usage[] =
	"usage: walpush [OPTIONS] WAL_PATH WAL_NAME\n"
	"Archives one WAL file; for archive_command = 'walpush %p %f'.\n"
	"\n"
	"  -c, --config FILE    configuration file (default $WALARCHIVE_CONFIG, else\n"
	"                       /etc/walarchive.conf)\n"
	"  -s, --set KEY=VALUE  override a setting (repeatable)\n"
	"  -D, --pgdata DIR     data directory whose global/pg_control names the cluster\n"
	"                       (default: the current directory, as archive_command runs)\n"
	"  -v, --verbose        log every step\n"
	"  -h, --help           show this help\n"
	"  -V, --version        show the version\n"
	"\n"
	"exit codes: 0 archived (or already archived with identical content), 2 bad\n"
	"arguments, 3 bad configuration, 4 the archive holds different content under\n"
	"this name, 5 not a valid WAL file of this name or cluster, 6 archive\n"
	"unreachable or I/O error, 8 authentication or host key refused\n";

/* Warns when PostgreSQL has more files waiting than backlog_warn. */
static void report_backlog(const wal_config *cfg, const char *wal_path)
{
	wal_backlog b;
	if (cfg->backlog_warn <= 0 || wal_backlog_read(wal_path, &b, NULL) != WAL_OK ||
	    b.count < cfg->backlog_warn)
		return;
	wal_log(WAL_LOG_WARNING,
		"archive backlog: %d files ready (%" PRIu64 " MiB), oldest %s waiting %ld s",
		b.count, b.bytes >> 20, b.oldest[0] ? b.oldest : "-", b.oldest_age);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = { WAL_CMD_LONG_OPTS,
						  { "pgdata", required_argument, NULL, 'D' },
						  { NULL, 0, NULL, 0 } };
	wal_cmd cmd;
	wal_error err;
	wal_push_result res;
	const char *datadir = ".";
	int opt;

	wal_cmd_init(&cmd, "walpush", usage);
	while ((opt = getopt_long(argc, argv, WAL_CMD_SHORT_OPTS "D:", longopts, NULL)) != -1) {
		if (wal_cmd_option(&cmd, opt, optarg))
			continue;
		if (opt == 'D')
			datadir = optarg;
		else
			wal_cmd_option_error(&cmd, opt, argv, longopts);
	}
	if (argc - optind != 2)
		wal_cmd_usage_error(&cmd, "want WAL_PATH and WAL_NAME");
	const char *wal_path = argv[optind], *wal_name = argv[optind + 1];

	wal_error_clear(&err);
	wal_push_ahead_result ahead = { 0 };
	wal_err rc = wal_cmd_load_config(&cmd, &err);
	int configured = rc == WAL_OK;
	if (rc == WAL_OK)
		/* with the files PostgreSQL will ask for next, at the same time */
		rc = wal_push_and_ahead(&cmd.cfg, wal_path, wal_name, datadir, &res, &ahead, &err);

	/* a spool others could write to is ignored: say so, once */
	wal_error spool_err;
	if (configured && wal_ahead_push_count(&cmd.cfg) > 0 &&
	    wal_ahead_spool_check(&cmd.cfg, res.system_id, &spool_err) == WAL_EPERM)
		wal_log(WAL_LOG_WARNING, "%s; push-ahead is off", spool_err.msg);
	char said[1024];
	if (rc != WAL_OK) {
		snprintf(said, sizeof(said), "%s", err.msg);
		wal_log(WAL_LOG_ERROR, "%s", said);
	} else if (res.outcome == WAL_PUSH_DUPLICATE) {
		snprintf(said, sizeof(said), "%s: already archived with identical content at %s",
			 wal_name, res.object);
		wal_log(WAL_LOG_NOTICE, "%s", said);
	} else if (res.outcome == WAL_PUSHED_AHEAD) {
		snprintf(said, sizeof(said), "%s: archived ahead at %s, file unchanged since",
			 wal_name, res.object);
		wal_log(WAL_LOG_INFO, "%s", said);
	} else {
		snprintf(said, sizeof(said), "%s: archived at %s (%" PRIu64 " bytes stored)",
			 wal_name, res.object, res.stored_bytes);
		wal_log(WAL_LOG_INFO, "%s", said);
	}
	/* for walcheck: this run's outcome, in the spool */
	if (configured)
		wal_cmd_status(&cmd, datadir, res.system_id, wal_name, wal_cmd_exit_code(rc), said);

	if (ahead.candidates)
		wal_log(WAL_LOG_INFO, "pushed ahead %d of %d ready files", ahead.pushed,
			ahead.candidates);
	if (ahead.error[0])
		wal_log(WAL_LOG_WARNING, "push-ahead stopped: %s", ahead.error);
	if (rc == WAL_OK)
		report_backlog(&cmd.cfg, wal_path);
	wal_config_free(&cmd.cfg);
	return wal_cmd_exit_code(rc);
}
