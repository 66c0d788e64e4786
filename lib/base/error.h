/*
 * Typed errors for walarchive's library.  Every lib function that can fail
 * returns a wal_err and fills a wal_error with one lowercase line of detail
 * that names the object and the cause; cmd/ turns it into a message and an
 * exit code.  lib never prints and never exits.
 */
#ifndef WAL_ERROR_H
#define WAL_ERROR_H

#include <stdarg.h>

typedef enum wal_err {
	WAL_OK = 0,
	WAL_ENOENT,	      /* the object or file does not exist */
	WAL_EEXIST,	      /* the name is taken (put never replaces) */
	WAL_EEXIST_DIFFERENT, /* the archive holds different content under this name */
	WAL_EINVAL,	      /* bad argument: name, path, option */
	WAL_ECONFIG,	      /* bad configuration file or setting */
	WAL_ENOTWAL,	      /* input is not a WAL file of this name (header, size) */
	WAL_EFOREIGN,	      /* the WAL belongs to another cluster */
	WAL_ECORRUPT,	      /* an archived object fails verification */
	WAL_EIO,	      /* local I/O error */
	WAL_ENOSPC,	      /* disk or quota full */
	WAL_EPERM,	      /* permission denied */
	WAL_EAUTH,	      /* authentication refused */
	WAL_EHOSTKEY,	      /* server identity not trusted (host key, certificate) */
	WAL_ENET,	      /* network or server failure, may pass on retry */
	WAL_ETIMEOUT,	      /* a network operation timed out */
	WAL_ENOMEM,	      /* out of memory */
	WAL_EUNSUPPORTED,     /* the server or build lacks a needed feature */
	WAL_EAMBIGUOUS,	      /* several candidates and nothing to choose by */
	WAL_ERR_COUNT
} wal_err;

typedef struct wal_error {
	wal_err code;
	char msg[768];
} wal_error;

/* Records code and a printf-style detail in e (if not NULL); returns code. */
wal_err wal_fail(wal_error *e, wal_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Like wal_fail, with ": <cause>" appended, where cause is strerror(errnum)
 * in lowercase; the code is derived from errnum (ENOSPC -> WAL_ENOSPC, ...)
 * unless code is not WAL_OK.
 */
wal_err wal_fail_errno(wal_error *e, wal_err code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Maps an errno value to the closest wal_err (WAL_EIO when nothing fits). */
wal_err wal_err_from_errno(int errnum);

/* Short stable name of a code, e.g. "ENOENT" for WAL_ENOENT. */
const char *wal_err_name(wal_err code);

/* Whether a retry of the same operation may succeed (network, timeout). */
int wal_err_transient(wal_err code);

/* Keeps e's message but files it under another code; returns code. */
wal_err wal_error_recode(wal_error *e, wal_err code);

/* Clears e to WAL_OK with an empty message. */
void wal_error_clear(wal_error *e);

#endif
