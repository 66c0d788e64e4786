/*
 * Shared by the programs: the common options, loading the configuration,
 * and turning error kinds into exit codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "log.h"

int wal_cmd_exit_code(wal_err code)
{
	switch (code) {
	case WAL_OK:
		return EXIT_OK;
	case WAL_ENOENT:
		return EXIT_NOTFOUND;
	case WAL_EINVAL:
		return EXIT_USAGE;
	case WAL_ECONFIG:
	case WAL_EAMBIGUOUS:
		return EXIT_CONFIG;
	case WAL_EEXIST:
	case WAL_EEXIST_DIFFERENT:
		return EXIT_DIFFERENT;
	case WAL_ENOTWAL:
	case WAL_EFOREIGN:
		return EXIT_BADINPUT;
	case WAL_ECORRUPT:
		return EXIT_CORRUPT;
	case WAL_EAUTH:
	case WAL_EHOSTKEY:
		return EXIT_AUTH;
	default:
		return EXIT_ARCHIVE;
	}
}

void wal_cmd_init(wal_cmd *cmd, const char *program, const char *usage)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->program = program;
	cmd->usage = usage;
	wal_log_init(program);
	wal_config_init(&cmd->cfg);
}

int wal_cmd_option(wal_cmd *cmd, int opt, const char *arg)
{
	switch (opt) {
	case 'c':
		cmd->config_path = arg;
		return 1;
	case 's':
		if (cmd->nsets < (int)(sizeof(cmd->sets) / sizeof(cmd->sets[0])))
			cmd->sets[cmd->nsets++] = arg;
		return 1;
	case 'v':
		cmd->verbose = 1;
		return 1;
	case 'h':
		printf("%s", cmd->usage);
		exit(EXIT_OK);
	case 'V':
		printf("%s (walarchive) %s\n", cmd->program, WALARCHIVE_VERSION);
		exit(EXIT_OK);
	default:
		return 0;
	}
}

void wal_cmd_usage_error(wal_cmd *cmd, const char *why)
{
	wal_log(WAL_LOG_ERROR, "%s (see %s --help)", why, cmd->program);
	exit(EXIT_USAGE);
}

wal_err wal_cmd_load_config(wal_cmd *cmd, wal_error *e)
{
	wal_err rc = wal_config_load(&cmd->cfg, cmd->config_path, e);
	for (int i = 0; rc == WAL_OK && i < cmd->nsets; i++)
		rc = wal_config_set_arg(&cmd->cfg, cmd->sets[i], e);
	if (rc == WAL_OK) {
		wal_log_set_level(cmd->verbose ? WAL_LOG_DEBUG : cmd->cfg.log_level);
		if (!cmd->cfg.archive)
			rc = wal_fail(e, WAL_ECONFIG, "%s: archive is not set",
				      cmd->cfg.source ? cmd->cfg.source : "configuration");
	}
	return rc;
}
