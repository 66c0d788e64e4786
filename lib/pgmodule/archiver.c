/*
 * The archive module's walarchive half (archiver.h): the configuration and
 * the store, kept for the archiver's lifetime, and walpush's job for one
 * file.  Everything the library allocates for a file is freed before the
 * call returns; what lives between files is the configuration and the
 * store's connection.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "ahead/ahead.h"
#include "ahead/status.h"
#include "archive/archive.h"
#include "base/log.h"
#include "pgmodule/archiver.h"

/* The archiver runs in the data directory: %p is relative to it. */
#define DATADIR "."

static struct {
	int loaded;	 /* cfg holds a read of path */
	int usable;	 /* and it can archive */
	char path[4096]; /* the file read */
	struct stat st;	 /* its identity then (st_ino 0: it was missing) */
	wal_config cfg;
	char why[768];	  /* why it cannot archive, when not usable */
	wal_store *store; /* kept between files; NULL after a failure */
} am;

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void forget(void)
{
	wal_store_close(am.store);
	am.store = NULL;
	if (am.loaded)
		wal_config_free(&am.cfg);
	am.loaded = am.usable = 0;
}

int wam_configured(const char *config_path, char *why, size_t cap, int *changed)
{
	struct stat st;
	*changed = 0;
	if (!config_path || !*config_path)
		config_path = "/etc/walarchive.conf";
	if (stat(config_path, &st) != 0)
		memset(&st, 0, sizeof(st));
	if (!am.loaded || strcmp(am.path, config_path) != 0 || !same_file(&am.st, &st)) {
		wal_error err;
		char warning[768] = "";
		forget();
		*changed = 1;
		snprintf(am.path, sizeof(am.path), "%s", config_path);
		am.st = st;
		wal_config_init(&am.cfg);
		am.loaded = 1;
		wal_error_clear(&err);
		wal_err rc = wal_config_load(&am.cfg, config_path, &err);
		if (rc == WAL_OK)
			rc = wal_config_check(&am.cfg, warning, sizeof(warning), &err);
		am.usable = rc == WAL_OK;
		if (!am.usable)
			snprintf(am.why, sizeof(am.why), "%s", err.msg);
		else
			snprintf(am.why, sizeof(am.why), "%s", warning);
	}
	snprintf(why, cap, "%s", am.why);
	return am.usable;
}

/* The exit code walpush would have had, for the status record walcheck reads. */
static int exit_code(wal_err rc)
{
	switch (rc) {
	case WAL_OK:
		return 0;
	case WAL_EINVAL:
		return 2;
	case WAL_ECONFIG:
	case WAL_EAMBIGUOUS:
		return 3;
	case WAL_EEXIST:
	case WAL_EEXIST_DIFFERENT:
		return 4;
	case WAL_ENOTWAL:
	case WAL_EFOREIGN:
		return 5;
	case WAL_EAUTH:
	case WAL_EHOSTKEY:
		return 8;
	default:
		return 6;
	}
}

/* Whether a failure may pass on a new connection (the kept one went stale). */
static int worth_reconnecting(wal_err rc)
{
	return rc == WAL_ENET || rc == WAL_ETIMEOUT || rc == WAL_EIO;
}

int wam_archive(const char *config_path, const char *path, const char *name, char *line, size_t cap,
		int *level)
{
	char why[768];
	int changed;
	*level = WAM_LOG_WARNING;
	if (!wam_configured(config_path, why, sizeof(why), &changed)) {
		snprintf(line, cap, "%s", why);
		return 0;
	}
	wal_push_result res;
	wal_error err;
	wal_error_clear(&err);
	int reused = am.store != NULL;
	wal_err rc = wal_push_one(&am.cfg, &am.store, path, name, DATADIR, &res, &err);
	if (rc != WAL_OK) {
		/* a failed connection is not used again */
		wal_store_close(am.store);
		am.store = NULL;
		/* a connection kept across an idle time may have been dropped by
		 * the server: one more try, on a new one, before a failure */
		if (reused && worth_reconnecting(rc)) {
			wal_error_clear(&err);
			rc = wal_push_one(&am.cfg, &am.store, path, name, DATADIR, &res, &err);
			if (rc != WAL_OK) {
				wal_store_close(am.store);
				am.store = NULL;
			}
		}
	}
	int shown = WAL_LOG_ERROR;
	if (rc != WAL_OK) {
		snprintf(line, cap, "%s", err.msg);
	} else if (res.outcome == WAL_PUSH_DUPLICATE) {
		snprintf(line, cap, "%s: already archived with identical content at %s", name,
			 res.object);
		shown = WAL_LOG_NOTICE;
	} else if (res.outcome == WAL_PUSHED_AHEAD) {
		snprintf(line, cap, "%s: archived ahead at %s, file unchanged since", name,
			 res.object);
		shown = WAL_LOG_INFO;
	} else {
		snprintf(line, cap, "%s: archived at %s (%" PRIu64 " bytes stored)", name,
			 res.object, res.stored_bytes);
		shown = WAL_LOG_INFO;
	}
	*level = rc != WAL_OK		     ? WAM_LOG_WARNING
		 : shown <= am.cfg.log_level ? WAM_LOG_INFO
					     : WAM_LOG_NONE;
	/* for walcheck: the outcome, in the spool, as walpush records it */
	uint64_t system_id = 0;
	if (!wal_local_system_id(&am.cfg, DATADIR, &system_id))
		system_id = res.system_id;
	if (system_id)
		wal_status_record(&am.cfg, system_id, "walpush", name, exit_code(rc), line, NULL);
	return rc == WAL_OK;
}

void wam_shutdown(void)
{
	forget();
}
