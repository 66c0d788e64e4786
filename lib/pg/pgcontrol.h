/*
 * The system identifier and WAL segment size of a data directory, from
 * global/pg_control (ControlFileData begins with the identifier, in every
 * version walarchive supports; xlog_seg_size is at byte 220 in version 1100,
 * PostgreSQL 11, and at byte 228 from 1201 on).
 */
#ifndef WAL_PGCONTROL_H
#define WAL_PGCONTROL_H

#include <stdint.h>
#include "base/error.h"

typedef struct wal_pgcontrol {
	uint64_t system_id;
	uint32_t control_version; /* pg_control_version, e.g. 1300 */
	uint32_t catalog_version;
	uint32_t seg_size; /* xlog_seg_size; 0 if the file does not give a valid one */
} wal_pgcontrol;

/*
 * Reads datadir/global/pg_control.  WAL_ENOENT if the file is not there,
 * WAL_ECORRUPT if it is too short or of an unknown control version.
 */
wal_err wal_pgcontrol_read(const char *datadir, wal_pgcontrol *ctl, wal_error *e);

/*
 * Whether datadir is set up as a standby: standby.signal (12+), or a
 * recovery.conf with standby_mode on (11).  A standby retries a failed
 * restore_command; archive recovery takes a failure as the end of WAL.
 */
int wal_datadir_is_standby(const char *datadir);

#endif
