/*
 * replinit internals shared by primary.c and standby.c: files written
 * atomically, child programs run with their output passed to the report
 * callback, password files, and the paths of this installation.
 */
#ifndef RPL_UTIL_H
#define RPL_UTIL_H

#include <stddef.h>
#include <sys/types.h>
#include "replinit.h"

/* Report sink: the callback and its context from the options. */
typedef struct rpl_out {
	rpl_report_fn fn;
	void *ctx;
} rpl_out;

/* Formats one line and hands it to out (nothing if out->fn is NULL). */
void rpl_say(const rpl_out *out, rpl_msg kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* snprintf that may truncate on purpose (paths and messages are bounded). */
void rpl_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reads a whole file into a malloc'd NUL-terminated string. */
wal_err rpl_read_file(const char *path, char **text, wal_error *e);

/*
 * Replaces (or creates) path with text through lib/fileio.h's atomic file:
 * a temporary file beside it, created O_EXCL with mode 0600 whatever the
 * umask, written, fsynced, renamed over path, the directory fsynced.  Its
 * final mode is mode, or with keep an existing file's mode (and, as root,
 * its owner); it is set before the first byte is written, so a file of
 * mode 0600 is never readable by others, not even for a moment.  When
 * backup is not NULL and path exists, the old file stays reachable under
 * a name nobody has yet (a hard link made just before the rename):
 * backup, else backup.1, backup.2, ...; the name goes into backup_out.
 * On failure path is unchanged and neither a temporary file nor a backup
 * is left.
 */
wal_err rpl_write_atomic(const char *path, const char *text, mode_t mode, int keep,
			 const char *backup, char *backup_out, size_t backup_size, wal_error *e);

/* Removes path and everything below it; missing is fine. */
wal_err rpl_remove_tree(const char *path, wal_error *e);

/*
 * Reads the first line of a password file; refuses an empty one and warns
 * through out when others can read it.
 */
wal_err rpl_read_password_file(const char *path, char *buf, size_t size, const rpl_out *out,
			       wal_error *e);

/* Output kept from a child for error messages. */
typedef struct rpl_child_out {
	char tail[4096];
} rpl_child_out;

/*
 * Runs argv (argv[0] a path) with extra environment entries env (NULL
 * terminated, may be NULL); its stdout and stderr go to out as
 * RPL_MSG_OUTPUT when show is set, and the last part is kept in co.
 * Returns the exit status (0..255), 256+signal for a signal, -1 if it
 * could not be started (e filled).
 */
int rpl_run(char *const argv[], char *const env[], int show, const rpl_out *out, rpl_child_out *co,
	    wal_error *e);

/* Directory of the running executable into buf ("" if unknown). */
void rpl_self_dir(char *buf, size_t size);

/*
 * "walpush %p %f" or "/opt/x/bin/walpush %p %f", plus -c FILE.  The
 * server runs it with sh and replaces %p, %f, %%: a path with anything
 * but letters, digits and _ . / - , : @ + = goes in single quotes, and
 * each % in a path is written %%.
 */
void rpl_default_command(const char *prog, const char *args, const char *config_file, char *buf,
			 size_t size);

/* Major version from `PROG --version` output ("pg_basebackup (PostgreSQL) 15.4" -> 15); -1. */
int rpl_program_major(const char *path);

/* Finds prog of that major (or newer when newer_ok, as pg_basebackup reads older servers):
 * in pg_bin, then /usr/lib/postgresql/MAJOR/bin and newer, then PATH; checks --version. */
int rpl_find_program(const char *prog, const char *pg_bin, int major, int newer_ok, char *buf,
		     size_t size);

#endif
