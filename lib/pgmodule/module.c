/*
 * walarchive as PostgreSQL's archive module: archive_library = 'walarchive'
 * (PostgreSQL 15 and later).  One archiver process loads it and keeps it
 * until it exits, so the configuration is read once (again when it
 * changes) and the store's connection is kept between files.
 *
 * PostgreSQL 15 has _PG_archive_module_init fill in three callbacks;
 * 16 and later have it return a table with startup and shutdown and a
 * state.  The callbacks below serve both.  A failure never raises an
 * ERROR: it returns false after one line in the log, and the archiver tries
 * the file again as it does after a failing archive_command.  Nothing here
 * allocates in PostgreSQL's memory contexts: the walarchive half
 * (archiver.c) frees what it allocates for a file before returning.
 */
#include <postgres.h>
#include <fmgr.h>
#include <miscadmin.h>
#include <utils/guc.h>
#if PG_VERSION_NUM >= 160000
#include <archive/archive_module.h>
#else
#include <postmaster/pgarch.h>
#endif
#include "pgmodule/archiver.h"

PG_MODULE_MAGIC;

static char *config_path = NULL;

/* The last reason given for an unusable configuration, said once. */
static char said_why[768];

void _PG_init(void);

void _PG_init(void)
{
	DefineCustomStringVariable("walarchive.config",
				   "Configuration file of the walarchive archive module.",
				   "The same file and keys as walpush; read again when it changes.",
				   &config_path, "/etc/walarchive.conf", PGC_SIGHUP, 0, NULL, NULL,
				   NULL);
	MarkGUCPrefixReserved("walarchive");
}

static bool configured(void)
{
	char why[768];
	int changed;
	int ok = wam_configured(config_path, why, sizeof(why), &changed);
#ifdef arch_module_check_errdetail
	/* the detail of PostgreSQL's own warning, which it gives at each try */
	if (!ok)
		arch_module_check_errdetail("walarchive: %s", why);
#endif
	/* once per change of the file or of what it lacks, not at every file */
	if (!ok && (changed || strcmp(why, said_why) != 0)) {
		strlcpy(said_why, why, sizeof(said_why));
		ereport(WARNING, (errmsg("walarchive: %s", why)));
	} else if (ok && changed) {
		said_why[0] = '\0';
		/* what the configuration deserves a warning for (plain http) */
		if (why[0])
			ereport(WARNING, (errmsg("walarchive: %s", why)));
	}
	return ok;
}

static bool archive_file(const char *file, const char *path)
{
	char line[1024];
	int level;
	int ok = wam_archive(config_path, path, file, line, sizeof(line), &level);
	if (level == WAM_LOG_WARNING)
		ereport(WARNING, (errmsg("walarchive: %s", line)));
	else if (level == WAM_LOG_INFO)
		ereport(LOG, (errmsg("walarchive: %s", line)));
	if (wam_ahead_error(line, sizeof(line)))
		ereport(WARNING, (errmsg("walarchive: %s", line)));
	return ok;
}

#if PG_VERSION_NUM >= 160000

static bool configured_cb(ArchiveModuleState *state)
{
	(void)state;
	return configured();
}

static bool archive_file_cb(ArchiveModuleState *state, const char *file, const char *path)
{
	(void)state;
	return archive_file(file, path);
}

static void shutdown_cb(ArchiveModuleState *state)
{
	(void)state;
	wam_shutdown();
}

static const ArchiveModuleCallbacks callbacks = {
	.startup_cb = NULL,
	.check_configured_cb = configured_cb,
	.archive_file_cb = archive_file_cb,
	.shutdown_cb = shutdown_cb,
};

const ArchiveModuleCallbacks *_PG_archive_module_init(void)
{
	return &callbacks;
}

#else

void _PG_archive_module_init(ArchiveModuleCallbacks *cb);

static void shutdown_cb(void)
{
	wam_shutdown();
}

void _PG_archive_module_init(ArchiveModuleCallbacks *cb)
{
	cb->check_configured_cb = configured;
	cb->archive_file_cb = archive_file;
	cb->shutdown_cb = shutdown_cb;
}

#endif
