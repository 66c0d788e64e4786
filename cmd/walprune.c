/*
 * walprune: removes archived WAL that no backup needs any more; run from
 * cron as the postgres user.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include "archive/archive.h"
#include "common.h"
#include "base/log.h"

static const char usage[] =
	"usage: walprune [OPTIONS] {--before WAL_NAME | --keep-backups N | --keep-days D}...\n"
	"Removes archived WAL older than the horizon the options give (the oldest of\n"
	"them when several are given).  Timeline history files are always kept.\n"
	"\n"
	"  -b, --before WAL_NAME   remove segments and partials whose position sorts\n"
	"                          before WAL_NAME's, whatever their timeline (as\n"
	"                          pg_archivecleanup)\n"
	"  -k, --keep-backups N    keep what the N newest base backups need (found from\n"
	"                          the .backup files in the archive)\n"
	"  -d, --keep-days D       keep WAL archived in the last D days\n"
	"  -n, --dry-run           list what would be removed, remove nothing\n"
	"  -D, --pgdata DIR        data directory whose global/pg_control names the\n"
	"                          cluster (else system_id, else the only cluster)\n"
	"  -c, --config FILE       configuration file\n"
	"  -s, --set KEY=VALUE     override a setting (repeatable)\n"
	"  -v, --verbose           list every object removed\n"
	"  -h, --help              show this help\n"
	"  -V, --version           show the version\n"
	"\n"
	"exit codes: 0 done, 2 bad arguments, 3 bad configuration, 6 archive\n"
	"unreachable or not fully listable (nothing removed)\n";

static void on_object(void *arg, const char *path, int64_t size)
{
	const wal_cmd *cmd = arg;
	if (cmd->dry_run)
		printf("would remove %s (%" PRId64 " bytes)\n", path, size);
	else
		wal_log(WAL_LOG_INFO, "removed %s", path);
}

/* The summary of a run that succeeded, one message per line. */
static void report(const wal_prune_opts *opts, const wal_prune_result *res)
{
	if (res->empty && !res->system_id) {
		/* a new archive, before the first walpush: not an error for cron to mail */
		wal_log(WAL_LOG_NOTICE,
			"the archive holds no WAL yet (no cluster has pushed to it); "
			"nothing to remove");
		return;
	}
	if (res->empty && !res->stale_tmp) {
		wal_log(WAL_LOG_NOTICE,
			"the archive holds no WAL of cluster %" PRIu64 " yet; nothing "
			"to remove",
			res->system_id);
		return;
	}
	if (opts->keep_backups > 0 && res->backups < opts->keep_backups)
		wal_log(WAL_LOG_NOTICE,
			"the archive has %d backup%s, fewer than --keep-backups %d: "
			"keeping all WAL they may need",
			res->backups, res->backups == 1 ? "" : "s", opts->keep_backups);
	wal_log(WAL_LOG_NOTICE, "%s %" PRIu64 " object%s (%" PRIu64 " bytes)%s%s",
		opts->dry_run ? "would remove" : "removed", res->objects,
		res->objects == 1 ? "" : "s", res->bytes, res->horizon[0] ? " before " : "",
		res->horizon);
	if (res->stale_tmp)
		wal_log(WAL_LOG_NOTICE,
			"%s %" PRIu64 " temporary file%s (%" PRIu64
			" bytes) left more than a day ago by writers that died",
			opts->dry_run ? "would remove" : "removed", res->stale_tmp,
			res->stale_tmp == 1 ? "" : "s", res->stale_tmp_bytes);
}

static int parse_count(const char *text, int min)
{
	char *end;
	long v = strtol(text, &end, 10);
	if (end == text || *end || v < min || v > 1000000)
		return -1;
	return (int)v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = { WAL_CMD_LONG_OPTS,
						  { "before", required_argument, NULL, 'b' },
						  { "keep-backups", required_argument, NULL, 'k' },
						  { "keep-days", required_argument, NULL, 'd' },
						  { "dry-run", no_argument, NULL, 'n' },
						  { "pgdata", required_argument, NULL, 'D' },
						  { NULL, 0, NULL, 0 } };
	wal_cmd cmd;
	wal_error err;
	wal_prune_opts opts = { .keep_days = -1, .datadir = "." };
	wal_prune_result res;
	int opt;

	wal_cmd_init(&cmd, "walprune", usage);
	while ((opt = getopt_long(argc, argv, WAL_CMD_SHORT_OPTS "b:k:d:nD:", longopts, NULL)) !=
	       -1) {
		if (wal_cmd_option(&cmd, opt, optarg))
			continue;
		switch (opt) {
		case 'b':
			opts.before = optarg;
			break;
		case 'k':
			if ((opts.keep_backups = parse_count(optarg, 1)) < 0)
				wal_cmd_usage_error(&cmd,
						    "--keep-backups wants a number of at least 1");
			break;
		case 'd':
			if ((opts.keep_days = parse_count(optarg, 0)) < 0)
				wal_cmd_usage_error(&cmd, "--keep-days wants a number of days");
			break;
		case 'n':
			cmd.dry_run = opts.dry_run = 1;
			break;
		case 'D':
			opts.datadir = optarg;
			break;
		default:
			wal_cmd_option_error(&cmd, opt, argv, longopts);
		}
	}
	if (optind != argc)
		wal_cmd_usage_error(&cmd, "unexpected argument");
	if (!opts.before && opts.keep_backups == 0 && opts.keep_days < 0)
		wal_cmd_usage_error(&cmd, "give --before, --keep-backups or --keep-days");
	opts.on_object = on_object;
	opts.arg = &cmd;

	wal_error_clear(&err);
	wal_err rc = wal_cmd_load_config(&cmd, &err);
	if (rc == WAL_OK)
		rc = wal_prune(&cmd.cfg, &opts, &res, &err);
	if (rc != WAL_OK)
		wal_log(WAL_LOG_ERROR, "%s", err.msg);
	else
		report(&opts, &res);
	wal_config_free(&cmd.cfg);
	return wal_cmd_exit_code(rc == WAL_ENOENT ? WAL_EIO : rc);
}
