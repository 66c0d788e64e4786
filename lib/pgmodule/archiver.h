/*
 * The archive module's walarchive half: what one archiver process keeps
 * between files (the configuration, the open store) and the job of one
 * file.  Free of PostgreSQL's headers (module.c is the other half), so that
 * neither side's names meet the other's.
 */
#ifndef WAL_PGMODULE_ARCHIVER_H
#define WAL_PGMODULE_ARCHIVER_H

#include <stddef.h>

/* The severity of a line for PostgreSQL's log. */
enum { WAM_LOG_NONE = 0, WAM_LOG_INFO, WAM_LOG_WARNING };

/*
 * Loads config_path when it, or the file it names, changed since the last
 * call (walpush reads it at every call; the module reads it again only then).
 * 1 if the configuration can archive, with in why what deserves a warning
 * ("" if nothing: a password over plain http, a spool others could write
 * to); else 0, with why it cannot (one line, naming the file and line).
 * *changed is set when this call read the file.
 */
int wam_configured(const char *config_path, char *why, size_t cap, int *changed);

/*
 * Archives the file at path under name as walpush does, on the store kept
 * from the previous file (opened, or opened again after a failure, here).
 * Returns 1 when the archive holds a durable copy of exactly these bytes.
 * line receives the message walpush would print for it, and *level its
 * severity (WAM_LOG_NONE: below the configured log_level).
 */
int wam_archive(const char *config_path, const char *path, const char *name, char *line, size_t cap,
		int *level);

/*
 * The first failure of push-ahead since the last call, as walpush reports
 * it ("push-ahead stopped: ..."); 0 if none.
 */
int wam_ahead_error(char *out, size_t cap);

/* Closes the store and frees the configuration (at the archiver's exit). */
void wam_shutdown(void);

#endif
