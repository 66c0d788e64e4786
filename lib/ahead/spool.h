/*
 * The spool inside the ahead layer: where push-ahead records and
 * fetched-ahead segments live, when it can be trusted, and how the
 * prefetcher fills and cleans it.  Not for callers outside lib/ahead.
 */
#ifndef WAL_AHEAD_SPOOL_H
#define WAL_AHEAD_SPOOL_H

#include <stdint.h>
#include <sys/stat.h>
#include "base/config.h"
#include "base/error.h"
#include "pg/walname.h"
#include "store/store.h"

#define PUSHED_DIR "pushed"
#define LOCK_NAME ".prefetch.lock"
#define STALE_TMP_SECONDS 600
#define SPOOL_ENTRY_SIZE (24 + 1 + 16 + 1) /* "<segment>.<xxh64>" and its NUL */

/* Whether st (of path) is a directory only the running user can change; WAL_EPERM if not. */
wal_err wal_spool_check_dir(const struct stat *st, const char *path, wal_error *e);

/* Whether a spooled file open as fd (path) is one walarchive could have written. */
wal_err wal_spool_check_file(int fd, const char *path, wal_error *e);

/*
 * Opens <spool>/<system-id>, or with sub <spool>/<system-id>/<sub>, each
 * checked as private; with create, makes what is missing below a trusted
 * spool (never the spool itself, nor anything above it).
 */
wal_err wal_spool_open(const wal_config *cfg, uint64_t system_id, const char *sub, int create,
		       int *out, wal_error *e);

/* The path of name's push-ahead record. */
void wal_spool_record_path(const wal_config *cfg, uint64_t system_id, const char *name, char *out,
			   size_t cap);

/* The spool directory that holds name's segments (for messages). */
void wal_spool_seg_dir(const wal_config *cfg, uint64_t system_id, const wal_name *name, char *out,
		       size_t cap);

/*
 * Whether entry is the name of a spooled segment, "<segment>.<xxh64>": the
 * segment restored, verified and ready to be renamed into place, with the
 * XXH64 of its bytes.  Sets base to the segment name and hash to the hash.
 */
int wal_spool_entry(const char *entry, char base[WAL_NAME_MAX], char hash[17]);

/*
 * Finds name in the spool: in the directory of its segments under the
 * cluster's directory (open as cluster), private and not reached through a
 * link.  1 if it is there: that directory open in *dir_fd (if not NULL; the
 * caller closes it), the entry's name in entry and its hash in hash.
 */
int wal_spool_find(int cluster, const wal_name *name, int *dir_fd, char entry[SPOOL_ENTRY_SIZE],
		   char hash[17]);

/*
 * Cleans the cluster's spool (open as cluster) for position name (segno):
 * each directory of segments that is a private directory of its own is
 * cleaned and, once empty, removed; a link named like one is removed as a
 * link, never followed.
 */
void wal_spool_clean(const wal_config *cfg, int cluster, const wal_name *name, uint64_t segno,
		     uint32_t seg_size);

/*
 * Downloads one object of the archive into the spool, restored: decompressed,
 * checked as walfetch checks it (a segment of seg_size bytes, the size of
 * the segments the prefetcher follows), flushed (with fetch_fsync) and
 * named with its XXH64, so that taking it is a rename.  WAL_ENOENT if absent.
 */
wal_err wal_spool_fetch(const wal_config *cfg, wal_store *archive, uint64_t system_id,
			uint32_t seg_size, const wal_name *name, wal_error *e);

/* Whether the spool (the cluster's directory open as cluster) has name. */
int wal_spool_has(int cluster, const wal_name *name);

#endif
