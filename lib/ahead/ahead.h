/*
 * Push-ahead and fetch-ahead, without a daemon.  Both keep their state in
 * spool_dir (outside the data directory, where pg_rewind and base backups
 * never see it), under the cluster's system identifier:
 *   <spool>/<system-id>/pushed/<name>        record of a file pushed ahead:
 *                                            "size xxh64 object stored-size archive"
 *   <spool>/<system-id>/<TTTTTTTTLLLLLLLL>/<segment>.<xxh64>
 *                                            a segment fetched ahead: restored,
 *                                            verified, named with the XXH64 of
 *                                            its bytes; taken by a rename
 */
#ifndef WAL_AHEAD_H
#define WAL_AHEAD_H

#include <stdint.h>
#include <time.h>
#include "archive/archive.h"
#include "base/config.h"
#include "base/error.h"
#include "pg/walname.h"

/* What push_ahead = auto means for an archive over a network. */
#define WAL_PUSH_AHEAD_AUTO 64

/* How many files push-ahead would take: push_ahead, with auto resolved for the archive. */
int wal_ahead_push_count(const wal_config *cfg);

/*
 * Whether push_ahead / fetch_ahead are on and spool_dir is a writable
 * directory that can be trusted (wal_ahead_spool_check).
 */
int wal_ahead_push_enabled(const wal_config *cfg);
int wal_ahead_fetch_enabled(const wal_config *cfg);

/*
 * Whether spool_dir can be trusted with push-ahead records and fetched-ahead
 * segments, as OpenSSH's StrictModes trusts ~/.ssh: a directory owned by
 * the effective user and not writable by group or others (a symbolic link
 * as spool_dir only if the running user or root owns the link and its
 * target passes), and, for system_id (0: the spool alone), the cluster's
 * directory and the directories walarchive uses in it, where they exist.
 * WAL_OK if so; WAL_ENOENT if there is no writable spool (both features
 * quietly off); WAL_EPERM with the reason in e if others could have
 * written to it (both features off: the caller says why, once).
 */
wal_err wal_ahead_spool_check(const wal_config *cfg, uint64_t system_id, wal_error *e);

/*
 * Records that name was archived as object (stored bytes in the archive),
 * from size bytes with this XXH64.
 */
wal_err wal_ahead_record(const wal_config *cfg, uint64_t system_id, const char *name, uint64_t size,
			 const char *hash_hex, const char *object, uint64_t stored, wal_error *e);

/*
 * Whether a record says name was pushed ahead to cfg->archive and the file
 * open as fd still holds exactly those bytes (same size and XXH64).  Only a
 * record walarchive could have written counts: a regular file, not a link,
 * owned by the running user and writable by nobody else, in a trusted
 * spool.  The record is used up either way; on a match object gets the
 * archived object's path and *stored its recorded size, which the caller
 * checks against the archive before it trusts the record.
 */
int wal_ahead_recorded(const wal_config *cfg, uint64_t system_id, const char *name, int fd,
		       char *object, size_t cap, uint64_t *stored);

typedef struct wal_push_ahead_result {
	int candidates;	 /* ready files taken into the batch */
	int pushed;	 /* of those, now archived and recorded */
	char error[768]; /* the first failure, if any */
} wal_push_ahead_result;

/*
 * walpush's job: archives current (the file at wal_path) as wal_push does,
 * and with push-ahead on, up to push_ahead files that PostgreSQL has marked
 * ready (archive_status/NAME.ready beside wal_path), other than current, in
 * the order PostgreSQL would ask for them, cfg->parallel at a time; records
 * each success.  The batch runs beside the push of current (on child
 * processes, each with its own connection) and then on current's
 * connection; returns after every child has exited.  The result is
 * current's: failures of the batch stop only the batch and are reported in
 * ahead (PostgreSQL will ask for those files itself).
 */
wal_err wal_push_and_ahead(const wal_config *cfg, const char *wal_path, const char *current,
			   const char *datadir, wal_push_result *res, wal_push_ahead_result *ahead,
			   wal_error *e);

/*
 * One file as walpush archives it, without a batch: current (at wal_path)
 * is done when an earlier push-ahead recorded it and the archive confirms
 * the object (res->outcome WAL_PUSHED_AHEAD), else pushed with
 * wal_push_with on *store (opened here when NULL and left open for the
 * next call).  For a caller that lives longer than one file (the
 * PostgreSQL archive module): records that walpush left are used up as
 * walpush would, so that switching between the two never pushes a file
 * twice or skips one.
 */
wal_err wal_push_one(const wal_config *cfg, wal_store **store, const char *wal_path,
		     const char *current, const char *datadir, wal_push_result *res, wal_error *e);

typedef struct wal_backlog {
	int count; /* files marked ready */
	uint64_t bytes;
	char oldest[WAL_NAME_MAX];
	long oldest_age; /* seconds since the oldest was marked ready */
} wal_backlog;

/* Reads the archive backlog from archive_status beside wal_path. */
wal_err wal_backlog_read(const char *wal_path, wal_backlog *b, wal_error *e);

/*
 * Restores name from the spool into dest_path (a rename when both are on one
 * file system, else a copy), checked against its XXH64 and its WAL header,
 * and removes it from the spool.  Only from a trusted spool, never through a
 * link, and only a file walarchive could have written (owned by the running
 * user, writable by nobody else); dest_path is then the running user's,
 * mode 0600.  WAL_ENOENT if the spool has no good copy (a bad one is
 * removed and described in res->spool_note).
 */
wal_err wal_ahead_take(const wal_config *cfg, uint64_t system_id, const wal_name *name,
		       const char *dest_path, wal_fetch_result *res, wal_error *e);

/*
 * walfetch's job: restores file_name into dest_path as wal_fetch does,
 * taking a segment fetched ahead from the spool when there is a good copy
 * there (a bad one is dropped and described in res->spool_note, and the
 * archive asked instead); then, with fetch-ahead on, starts the prefetcher
 * for the segments after it (wal_fetch_ahead_start).
 */
wal_err wal_fetch_and_ahead(const wal_config *cfg, const char *file_name, const char *dest_path,
			    const char *datadir, wal_fetch_result *res, wal_error *e);

/*
 * Records name as the position recovery has reached, then starts the
 * prefetcher, a background process detached from the caller, unless one
 * already runs for this cluster and spool (which then follows the new
 * position).  datadir is the data directory the caller restores into: the
 * prefetcher stops once it or its running server is gone.  Returns at once.
 */
void wal_fetch_ahead_start(const wal_config *cfg, uint64_t system_id, const wal_name *name,
			   uint32_t seg_size, const char *datadir);

/*
 * The prefetcher itself, in the calling process: keeps the cfg->fetch_ahead
 * segments after the recorded position spooled, with cfg->parallel worker
 * processes that keep their connections, following the position until it
 * has had nothing to do for 2 seconds, or until datadir (if not NULL) is
 * removed or the postmaster that ran in it when it started has exited.  It
 * creates directories only inside a trusted spool, never the spool itself.
 */
void wal_fetch_ahead_run(const wal_config *cfg, uint64_t system_id, const wal_name *name,
			 uint32_t seg_size, const char *datadir);

#endif
