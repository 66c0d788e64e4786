/*
 * Shared by the programs: the common options, loading the configuration,
 * and turning error kinds into exit codes.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "ahead/status.h"
#include "archive/archive.h"
#include "base/log.h"

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
	/* getopt's own messages name the program by its full path: ours instead */
	opterr = 0;
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

/* The option a failed getopt_long call was looking at, as the user wrote it. */
static void bad_option_name(const char *arg, const struct option *longopts, char *out, size_t cap,
			    int *is_long)
{
	/* a long option's element ends the call, and it is the one before optind;
	 * optopt is 0 for an unknown one and its value for a known one (argument
	 * missing or not allowed), while a short option is optopt itself */
	*is_long = 0;
	if (arg && strncmp(arg, "--", 2) == 0 && arg[2]) {
		size_t len = strcspn(arg + 2, "=");
		if (optopt == 0)
			*is_long = 1;
		for (const struct option *o = longopts; !*is_long && o && o->name; o++)
			if (o->val == optopt && strncmp(o->name, arg + 2, len) == 0)
				*is_long = 1;
		if (*is_long) {
			snprintf(out, cap, "--%.*s", (int)len, arg + 2);
			return;
		}
	}
	snprintf(out, cap, "-%c", optopt > 32 && optopt < 127 ? optopt : '?');
}

void wal_cmd_option_error(wal_cmd *cmd, int opt, char **argv, const struct option *longopts)
{
	char name[128], why[512];
	int is_long;
	bad_option_name(optind > 0 ? argv[optind - 1] : NULL, longopts, name, sizeof(name),
			&is_long);
	if (opt == ':') {
		snprintf(why, sizeof(why), "%s: missing argument", name);
	} else if (is_long && optopt != 0) {
		snprintf(why, sizeof(why), "%s: takes no argument", name);
	} else if (is_long) {
		/* an abbreviation that fits several options */
		char matches[256] = "";
		int n = 0;
		for (const struct option *o = longopts; o && o->name; o++)
			if (strncmp(o->name, name + 2, strlen(name + 2)) == 0) {
				size_t used = strlen(matches);
				snprintf(matches + used, sizeof(matches) - used, "%s--%s",
					 n++ ? ", " : "", o->name);
			}
		if (n > 1)
			snprintf(why, sizeof(why), "%s: ambiguous option (%s)", name, matches);
		else
			snprintf(why, sizeof(why), "%s: unknown option", name);
	} else {
		snprintf(why, sizeof(why), "%s: unknown option", name);
	}
	wal_cmd_usage_error(cmd, why);
}

void wal_cmd_usage_error(wal_cmd *cmd, const char *why)
{
	wal_log(WAL_LOG_ERROR, "%s (see %s --help)", why, cmd->program);
	exit(EXIT_USAGE);
}

wal_err wal_cmd_load_config(wal_cmd *cmd, wal_error *e)
{
	char warning[768];
	wal_err rc = wal_config_load(&cmd->cfg, cmd->config_path, e);
	for (int i = 0; rc == WAL_OK && i < cmd->nsets; i++)
		rc = wal_config_set_arg(&cmd->cfg, cmd->sets[i], e);
	if (rc == WAL_OK) {
		wal_log_set_level(cmd->verbose ? WAL_LOG_DEBUG : cmd->cfg.log_level);
		rc = wal_config_check(&cmd->cfg, warning, sizeof(warning), e);
		/* every run: it lands in PostgreSQL's log until the setup changes */
		if (rc == WAL_OK && warning[0])
			wal_log(WAL_LOG_WARNING, "%s", warning);
	}
	return rc;
}

void wal_cmd_status(const wal_cmd *cmd, const char *datadir, uint64_t fallback_id, const char *file,
		    int exit_code, const char *message)
{
	uint64_t system_id = 0;
	/* the cluster that runs this, rather than the one a foreign file names */
	if (!wal_local_system_id(&cmd->cfg, datadir, &system_id))
		system_id = fallback_id;
	if (system_id)
		wal_status_record(&cmd->cfg, system_id, cmd->program, file, exit_code, message,
				  NULL);
}
