/*
 * walfetch WAL_NAME DEST_PATH: PostgreSQL's restore_command
 * ('walfetch %f %p').  Exit 1 means "not in the archive"; any other failure
 * has its own code, or 126 when recovery must stop rather than end early.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include "ahead/ahead.h"
#include "archive/archive.h"
#include "common.h"
#include "base/log.h"
#include "pg/pgcontrol.h"

static const char usage[] =
	"usage: walfetch [OPTIONS] WAL_NAME DEST_PATH\n"
	"Restores one WAL file; for restore_command = 'walfetch %f %p'.\n"
	"\n"
	"  -c, --config FILE    configuration file (default $WALARCHIVE_CONFIG, else\n"
	"                       /etc/walarchive.conf)\n"
	"  -s, --set KEY=VALUE  override a setting (repeatable)\n"
	"  -D, --pgdata DIR     data directory whose global/pg_control names the cluster\n"
	"                       (default: the current directory, as restore_command runs)\n"
	"  -v, --verbose        log every step\n"
	"  -h, --help           show this help\n"
	"  -V, --version        show the version\n"
	"\n"
	"exit codes: 0 restored, 1 not in the archive, 2 bad arguments, 3 bad\n"
	"configuration, 6 archive unreachable or I/O error, 7 archived object\n"
	"corrupt, 8 authentication or host key refused; 126 instead of 2..8 when\n"
	"fetch_on_error says recovery must stop (stop; or auto outside standby mode)\n";

int main(int argc, char **argv)
{
	static const struct option longopts[] = { WAL_CMD_LONG_OPTS,
						  { "pgdata", required_argument, NULL, 'D' },
						  { NULL, 0, NULL, 0 } };
	wal_cmd cmd;
	wal_error err;
	wal_fetch_result res = { 0 };
	const char *datadir = ".";
	int opt;

	wal_cmd_init(&cmd, "walfetch", usage);
	while ((opt = getopt_long(argc, argv, WAL_CMD_SHORT_OPTS "D:", longopts, NULL)) != -1) {
		if (wal_cmd_option(&cmd, opt, optarg))
			continue;
		if (opt == 'D')
			datadir = optarg;
		else
			wal_cmd_option_error(&cmd, opt, argv, longopts);
	}
	if (argc - optind != 2)
		wal_cmd_usage_error(&cmd, "want WAL_NAME and DEST_PATH");
	const char *wal_name = argv[optind], *dest = argv[optind + 1];

	wal_error_clear(&err);
	wal_err rc = wal_cmd_load_config(&cmd, &err);
	int configured = rc == WAL_OK;
	if (rc == WAL_OK)
		/* from the spool or the archive, then the segments after it in the background */
		rc = wal_fetch_and_ahead(&cmd.cfg, wal_name, dest, datadir, &res, &err);

	int code = wal_cmd_exit_code(rc);
	/* a spool others could write to is ignored: say so, once */
	wal_error spool_err;
	if (configured && cmd.cfg.fetch_ahead > 0 &&
	    wal_ahead_spool_check(&cmd.cfg, res.system_id, &spool_err) == WAL_EPERM)
		wal_log(WAL_LOG_WARNING, "%s; fetch-ahead is off", spool_err.msg);
	if (res.spool_note[0])
		wal_log(WAL_LOG_WARNING, "%s: spooled copy dropped: %s", wal_name, res.spool_note);
	char said[1024];
	if (rc == WAL_OK) {
		snprintf(said, sizeof(said), "%s: restored from %s%s (%" PRIu64 " bytes)", wal_name,
			 res.from_spool ? "the spool, fetched ahead, " : "", res.object, res.bytes);
		wal_log(WAL_LOG_INFO, "%s", said);
	} else if (code == EXIT_NOTFOUND) {
		/* PostgreSQL asks for files that do not exist yet: routine */
		wal_log(WAL_LOG_INFO, "%s", err.msg);
	} else {
		/* in archive recovery a plain failure means "end of WAL" and the
		 * server promotes early; exit above 125 makes it stop instead */
		int stop = cmd.cfg.fetch_on_error == WAL_ONERR_STOP ||
			   (cmd.cfg.fetch_on_error == WAL_ONERR_AUTO &&
			    !wal_datadir_is_standby(datadir));
		if (stop)
			code = EXIT_STOP_RECOVERY;
		snprintf(said, sizeof(said), "%s%s", err.msg,
			 stop ? "; stopping recovery (fetch_on_error)" : "");
		wal_log(WAL_LOG_ERROR, "%s", said);
	}
	/* for walcheck: this run's outcome, in the spool; "not in the archive"
	 * is routine (PostgreSQL asks past the end of the WAL), neither */
	if (configured && code != EXIT_NOTFOUND)
		wal_cmd_status(&cmd, datadir, res.system_id, wal_name, code, said);
	wal_config_free(&cmd.cfg);
	return code;
}
