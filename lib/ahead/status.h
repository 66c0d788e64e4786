/*
 * The last success and failure of walpush, walfetch and the prefetcher,
 * kept in spool_dir.  This is the reader's interface only, with a minimal
 * body (no record is read yet) until the records themselves land.
 */
#ifndef WAL_AHEAD_STATUS_H
#define WAL_AHEAD_STATUS_H

#include <stdint.h>
#include <time.h>
#include "base/config.h"
#include "base/error.h"

typedef struct wal_status_event {
	time_t at;
	int exit_code;
	char file[64];
	char message[512];
} wal_status_event;

typedef struct wal_status {
	int have_success, have_failure;
	wal_status_event success, failure;
} wal_status;

/* The last success and failure that prog ("walpush", "walfetch", "prefetch")
 * recorded for system_id in spool_dir; WAL_ENOENT if none. */
wal_err wal_status_read(const wal_config *cfg, uint64_t system_id, const char *prog,
			wal_status *st, wal_error *e);

#endif
