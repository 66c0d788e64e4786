/*
 * replinit: sets up streaming replication, one command on the primary and
 * one on the standby.  Parses options, reads passwords (file or terminal,
 * never argv), prints the plan and each step, maps the result to an exit
 * code.  The work is in lib/replinit/.
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "common.h"
#include "base/log.h"
#include "replinit/replinit.h"

static const char usage[] =
	"usage: replinit primary [-d CONNSTR] --standby ADDRESS[/BITS] [--user NAME]\n"
	"                        [--password-file FILE] [--restart] [--dry-run]\n"
	"                        [--archive-command CMD] [--listen-addresses LIST] [--pg-bin DIR]\n"
	"       replinit standby --primary HOST[:PORT] --pgdata DIR [--user NAME]\n"
	"                        [--password-file FILE] [--slot NAME] [--replace] [--start]\n"
	"                        [--dry-run] [--passfile FILE] [--restore-command CMD] [--port N]\n"
	"                        [--application-name NAME] [--pg-bin DIR] [--timeout SECONDS]\n"
	"\n"
	"Performs the steps of a streaming-replication setup for the server's version.\n"
	"\n"
	"primary (on the primary, as the postgres os user or with -d CONNSTR of a superuser):\n"
	"  creates the replication role (password hashed here, scram-sha-256), sets wal_level,\n"
	"  archive_mode, archive_command = 'walpush %p %f', max_wal_senders, wal_keep_segments\n"
	"  (<= 12) or wal_keep_size (>= 13) with ALTER SYSTEM, adds a pg_hba.conf line for the\n"
	"  standby (keeping a backup), reloads, and says whether a restart is still needed.\n"
	"  --restart restarts the server (pg_ctl, or pg_ctlcluster on a Debian cluster).\n"
	"\n"
	"standby (on the standby, as the postgres os user):\n"
	"  refuses a data directory in use; refuses a non-empty one unless --replace; runs\n"
	"  pg_basebackup -X stream -c fast; writes recovery.conf (11) or standby.signal and\n"
	"  postgresql.auto.conf (12+) with restore_command = 'walfetch %f %p'; the password goes\n"
	"  to a passfile of mode 0600 (default PGDATA/replinit.pgpass), never into the conninfo.\n"
	"  --slot creates and uses a physical slot; --start starts the standby and waits until\n"
	"  pg_stat_wal_receiver shows it streaming.\n"
	"\n"
	"Both: --dry-run prints the numbered plan and changes nothing; a second run after\n"
	"success changes nothing.  --user defaults to replicator; --password-file holds the\n"
	"password on its first line (else it is asked on the terminal).  A name with a\n"
	"control character is refused (exit 2); a role is quoted as pg_hba.conf reads it,\n"
	"and a pg_hba.conf the server refuses after the edit is rolled back (exit 3).\n"
	"  -c, --config FILE   walarchive.conf checked and passed to walpush/walfetch as -c FILE\n"
	"  --set KEY=VALUE     checked like walpush does\n"
	"  -h, --help / -V, --version\n"
	"Exit: 0 done or nothing to do, 2 usage, 3 configuration, 8 authentication, other\n"
	"non-zero for any other failure (the message names the step and what to fix).\n";

enum {
	OPT_STANDBY = 256,
	OPT_PRIMARY,
	OPT_USER,
	OPT_PASSWORD_FILE,
	OPT_RESTART,
	OPT_DRY_RUN,
	OPT_ARCHIVE_COMMAND,
	OPT_LISTEN,
	OPT_PG_BIN,
	OPT_PGDATA,
	OPT_SLOT,
	OPT_REPLACE,
	OPT_START,
	OPT_PASSFILE,
	OPT_RESTORE_COMMAND,
	OPT_PORT,
	OPT_APP_NAME,
	OPT_TIMEOUT
};

static int step_counter;

/* Shows what lib reports: plan and steps on stdout, the rest on stderr. */
static void report(void *ctx, rpl_msg kind, const char *text)
{
	(void)ctx;
	switch (kind) {
	case RPL_MSG_PLAN:
		printf("replinit: %s\n", text);
		fflush(stdout);
		break;
	case RPL_MSG_STEP:
		printf("replinit: %d. %s\n", ++step_counter, text);
		fflush(stdout);
		break;
	case RPL_MSG_WARNING:
		wal_log(WAL_LOG_WARNING, "%s", text);
		break;
	case RPL_MSG_OUTPUT:
		fputs(text, stderr);
		fflush(stderr);
		break;
	default:
		wal_log(WAL_LOG_NOTICE, "%s", text);
		break;
	}
}

/* Reads a password from the terminal without echo; confirm asks twice. */
static wal_err prompt(void *ctx, const char *what, int confirm, char *buf, size_t size,
		      wal_error *e)
{
	char again[1024];
	struct termios old, quiet;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	FILE *tty;
	wal_err rc = WAL_OK;
	int round;

	(void)ctx;
	if (fd < 0)
		return wal_fail(e, WAL_EINVAL, "%s: no terminal to ask on; give --password-file",
				what);
	tty = fdopen(fd, "r+");
	if (tty == NULL) {
		close(fd);
		return wal_fail(e, WAL_EIO, "%s: cannot use the terminal", what);
	}
	tcgetattr(fd, &old);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	for (round = 0; round < (confirm ? 2 : 1); round++) {
		char *target = round == 0 ? buf : again;
		size_t target_size = round == 0 ? size : sizeof again;
		fprintf(tty, "%s%s: ", round ? "again, " : "", what);
		fflush(tty);
		tcsetattr(fd, TCSAFLUSH, &quiet);
		if (fgets(target, (int)target_size, tty) == NULL)
			target[0] = '\0';
		tcsetattr(fd, TCSAFLUSH, &old);
		fputc('\n', tty);
		target[strcspn(target, "\r\n")] = '\0';
	}
	if (buf[0] == '\0')
		rc = wal_fail(e, WAL_EINVAL, "%s: empty password", what);
	else if (confirm && strcmp(buf, again) != 0)
		rc = wal_fail(e, WAL_EINVAL, "%s: the two entries differ", what);
	explicit_bzero(again, sizeof again);
	fclose(tty);
	return rc;
}

/* A signal during pg_basebackup: the child stops; we clean up and report. */
static void on_signal(int sig)
{
	(void)sig;
}

static const struct option longopts[] = {
	WAL_CMD_LONG_OPTS,
	{ "dbname", required_argument, NULL, 'd' },
	{ "standby", required_argument, NULL, OPT_STANDBY },
	{ "primary", required_argument, NULL, OPT_PRIMARY },
	{ "user", required_argument, NULL, OPT_USER },
	{ "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
	{ "restart", no_argument, NULL, OPT_RESTART },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "archive-command", required_argument, NULL, OPT_ARCHIVE_COMMAND },
	{ "listen-addresses", required_argument, NULL, OPT_LISTEN },
	{ "pg-bin", required_argument, NULL, OPT_PG_BIN },
	{ "pgdata", required_argument, NULL, OPT_PGDATA },
	{ "slot", required_argument, NULL, OPT_SLOT },
	{ "replace", no_argument, NULL, OPT_REPLACE },
	{ "start", no_argument, NULL, OPT_START },
	{ "passfile", required_argument, NULL, OPT_PASSFILE },
	{ "restore-command", required_argument, NULL, OPT_RESTORE_COMMAND },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "application-name", required_argument, NULL, OPT_APP_NAME },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ NULL, 0, NULL, 0 }
};

/*
 * Takes one option of replinit primary (into po) or standby (into so);
 * returns 0 for an option it does not know.
 */
static int take_option(wal_cmd *cmd, int opt, rpl_primary_opts *po, rpl_standby_opts *so)
{
	switch (opt) {
	case 'd':
		po->conninfo = optarg;
		break;
	case OPT_STANDBY:
		po->standby = optarg;
		break;
	case OPT_PRIMARY:
		so->primary = optarg;
		break;
	case OPT_USER:
		po->user = so->user = optarg;
		break;
	case OPT_PASSWORD_FILE:
		po->password_file = so->password_file = optarg;
		break;
	case OPT_RESTART:
		po->restart = 1;
		break;
	case OPT_DRY_RUN:
		po->dry_run = so->dry_run = 1;
		break;
	case OPT_ARCHIVE_COMMAND:
		po->archive_command = optarg;
		break;
	case OPT_LISTEN:
		po->listen_addresses = optarg;
		break;
	case OPT_PG_BIN:
		po->pg_bin = so->pg_bin = optarg;
		break;
	case 'D':
	case OPT_PGDATA:
		so->pgdata = optarg;
		break;
	case OPT_SLOT:
		so->slot = optarg;
		break;
	case OPT_REPLACE:
		so->replace = 1;
		break;
	case OPT_START:
		so->start = 1;
		break;
	case OPT_PASSFILE:
		so->passfile = optarg;
		break;
	case OPT_RESTORE_COMMAND:
		so->restore_command = optarg;
		break;
	case OPT_PORT:
		so->port = atoi(optarg);
		if (so->port < 1 || so->port > 65535)
			wal_cmd_usage_error(cmd, "--port: must be 1..65535");
		break;
	case OPT_APP_NAME:
		so->app_name = optarg;
		break;
	case OPT_TIMEOUT:
		so->timeout = atoi(optarg);
		if (so->timeout < 1)
			wal_cmd_usage_error(cmd, "--timeout: must be a number of seconds");
		break;
	default:
		return 0;
	}
	return 1;
}

/*
 * Whether mode is primary (else standby); exits with a usage error for no
 * or another mode, an argument left over, or an option of the other mode.
 */
static int check_mode(wal_cmd *cmd, const char *mode, int argc, const rpl_primary_opts *po,
		      const rpl_standby_opts *so)
{
	int is_primary;

	if (mode == NULL)
		wal_cmd_usage_error(cmd, "say primary or standby");
	if (optind < argc)
		wal_cmd_usage_error(cmd, "unexpected argument");
	is_primary = strcmp(mode, "primary") == 0;
	if (!is_primary && strcmp(mode, "standby") != 0)
		wal_cmd_usage_error(cmd, "the first argument must be primary or standby");
	if (is_primary &&
	    (so->primary || so->pgdata || so->slot || so->replace || so->start || so->passfile ||
	     so->restore_command || so->port || so->app_name || so->timeout))
		wal_cmd_usage_error(cmd,
				    "an option of replinit standby was given to replinit primary");
	if (!is_primary && (po->conninfo || po->standby || po->restart || po->archive_command ||
			    po->listen_addresses))
		wal_cmd_usage_error(cmd,
				    "an option of replinit primary was given to replinit standby");
	return is_primary;
}

/*
 * The archive settings walpush/walfetch will read: checked now, not at the
 * first WAL.  Returns EXIT_OK, or EXIT_CONFIG for a file or --set that is
 * wrong (reported); no configuration at all is only a warning.
 */
static int check_config(wal_cmd *cmd, int is_primary)
{
	wal_error e;

	wal_error_clear(&e);
	if (cmd->config_path || cmd->nsets) {
		if (wal_cmd_load_config(cmd, &e) != WAL_OK) {
			wal_log(WAL_LOG_ERROR, "%s", e.msg);
			return EXIT_CONFIG;
		}
		if (cmd->nsets)
			wal_log(WAL_LOG_WARNING,
				"--set values were checked but are not passed on; put them in "
				"the configuration file walpush and walfetch read");
	} else if (wal_cmd_load_config(cmd, &e) != WAL_OK) {
		wal_log(WAL_LOG_WARNING, "%s; %s will fail until the archive is configured", e.msg,
			is_primary ? "walpush (archive_command)" : "walfetch (restore_command)");
	}
	return EXIT_OK;
}

/* Lets a signal stop the child, and the run come back here to clean up. */
static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int main(int argc, char **argv)
{
	wal_cmd cmd;
	rpl_primary_opts po;
	rpl_standby_opts so;
	rpl_result res;
	wal_error e;
	wal_err rc;
	const char *mode = NULL;
	int opt, is_primary;

	wal_cmd_init(&cmd, "replinit", usage);
	memset(&po, 0, sizeof po);
	memset(&so, 0, sizeof so);
	wal_error_clear(&e);
	if (argc > 1 && argv[1][0] != '-') {
		mode = argv[1];
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	while ((opt = getopt_long(argc, argv, WAL_CMD_SHORT_OPTS "d:D:", longopts, NULL)) != -1) {
		if (wal_cmd_option(&cmd, opt, optarg))
			continue;
		if (!take_option(&cmd, opt, &po, &so))
			wal_cmd_option_error(&cmd, opt, argv, longopts);
	}
	is_primary = check_mode(&cmd, mode, argc, &po, &so);
	if (check_config(&cmd, is_primary) != EXIT_OK) {
		wal_config_free(&cmd.cfg);
		return EXIT_CONFIG;
	}
	po.config_file = so.config_file = cmd.config_path;
	catch_signals();

	po.report = so.report = report;
	po.prompt = so.prompt = prompt;
	if (is_primary) {
		rc = rpl_primary_run(&po, &res, &e);
	} else {
		rc = rpl_standby_run(&so, &res, &e);
	}
	wal_config_free(&cmd.cfg);
	if (rc != WAL_OK) {
		wal_log(WAL_LOG_ERROR, "%s", e.msg);
		return wal_cmd_exit_code(rc) == EXIT_OK ? 1 : wal_cmd_exit_code(rc);
	}
	if (is_primary && res.restart_needed)
		wal_log(WAL_LOG_NOTICE,
			"restart needed for %s: run again with --restart, or restart the "
			"server yourself",
			res.restart_settings);
	if (!(po.dry_run || so.dry_run) && res.steps_done > 0)
		wal_log(WAL_LOG_NOTICE, "done");
	return EXIT_OK;
}
