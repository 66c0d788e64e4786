/*
 * Status records: the last success and the last failure of walpush,
 * walfetch and the prefetcher, kept in the spool so that walcheck (and an
 * administrator with cat) can tell whether archiving or restoring works:
 *   <spool>/<system-id>/status/<prog>.success
 *   <spool>/<system-id>/status/<prog>.failure
 * each "<unix time> <exit code> <file>\n<message>\n", replaced atomically.
 */
#ifndef WAL_AHEAD_STATUS_H
#define WAL_AHEAD_STATUS_H

#include <stdint.h>
#include <time.h>
#include "base/config.h"
#include "base/error.h"

#define WAL_STATUS_DIR "status"

typedef struct wal_status_event {
	time_t at;	   /* when it happened (seconds since the epoch) */
	int exit_code;	   /* 0 for a success; else the program's exit code */
	char file[64];	   /* the WAL file it was about, "" if none */
	char message[512]; /* the message the program printed, without "prog: " */
} wal_status_event;

typedef struct wal_status {
	int have_success, have_failure;
	wal_status_event success, failure;
} wal_status;

/*
 * Records one outcome of prog ("walpush", "walfetch", "prefetch": lowercase
 * letters only) for system_id: a success (exit_code 0) or a failure with
 * its message.  The record replaces the previous one of the same outcome
 * atomically (a reader sees the old one or the new one, never a mix), mode
 * 0600, without fsync: it is advisory, and a crash may lose the last one.
 * Written only into a trusted spool (wal_spool_open: the status directory
 * is made there if missing, never the spool itself); otherwise nothing is
 * written and the error says why (WAL_ENOENT: no usable spool; WAL_EPERM:
 * one others could write).  A file or message that does not fit is cut
 * short (at a UTF-8 character boundary); line breaks and other control
 * characters become spaces.  Callers may ignore the result: a status
 * record never makes a program fail.
 */
wal_err wal_status_record(const wal_config *cfg, uint64_t system_id, const char *prog,
			  const char *file, int exit_code, const char *message, wal_error *e);

/*
 * The last success and failure that prog recorded for system_id in
 * spool_dir, read without following a link, at most a few KiB, and only
 * from files walarchive could have written (regular, owned by the running
 * user, writable by nobody else); a record that is not so, or does not
 * parse, counts as absent.  WAL_ENOENT if there is neither (no spool, no
 * record yet); WAL_EPERM if the spool is not trusted (the reason in e).
 */
wal_err wal_status_read(const wal_config *cfg, uint64_t system_id, const char *prog, wal_status *st,
			wal_error *e);

#endif
