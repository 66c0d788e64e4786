/*
 * Typed errors: codes, their names, and the detail line carried with them.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "base/error.h"

static const char *const err_names[WAL_ERR_COUNT] = {
	[WAL_OK] = "OK",
	[WAL_ENOENT] = "ENOENT",
	[WAL_EEXIST] = "EEXIST",
	[WAL_EEXIST_DIFFERENT] = "EEXIST_DIFFERENT",
	[WAL_EINVAL] = "EINVAL",
	[WAL_ECONFIG] = "ECONFIG",
	[WAL_ENOTWAL] = "ENOTWAL",
	[WAL_EFOREIGN] = "EFOREIGN",
	[WAL_ECORRUPT] = "ECORRUPT",
	[WAL_EIO] = "EIO",
	[WAL_ENOSPC] = "ENOSPC",
	[WAL_EPERM] = "EPERM",
	[WAL_EAUTH] = "EAUTH",
	[WAL_EHOSTKEY] = "EHOSTKEY",
	[WAL_ENET] = "ENET",
	[WAL_ETIMEOUT] = "ETIMEOUT",
	[WAL_ENOMEM] = "ENOMEM",
	[WAL_EUNSUPPORTED] = "EUNSUPPORTED",
	[WAL_EAMBIGUOUS] = "EAMBIGUOUS",
};

const char *wal_err_name(wal_err code)
{
	if ((int)code < 0 || code >= WAL_ERR_COUNT)
		return "EUNKNOWN";
	return err_names[code];
}

int wal_err_transient(wal_err code)
{
	return code == WAL_ENET || code == WAL_ETIMEOUT;
}

void wal_error_clear(wal_error *e)
{
	if (!e)
		return;
	e->code = WAL_OK;
	e->msg[0] = '\0';
}

wal_err wal_err_from_errno(int errnum)
{
	switch (errnum) {
	case 0:
		return WAL_OK;
	case ENOENT:
	case ENOTDIR:
		return WAL_ENOENT;
	case EEXIST:
		return WAL_EEXIST;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return WAL_ENOSPC;
	case EACCES:
	case EPERM:
	case EROFS:
		return WAL_EPERM;
	case ENOMEM:
		return WAL_ENOMEM;
	case EINVAL:
	case ENAMETOOLONG:
		return WAL_EINVAL;
	case ETIMEDOUT:
		return WAL_ETIMEOUT;
	case ECONNREFUSED:
	case ECONNRESET:
	case EPIPE:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ENETDOWN:
		return WAL_ENET;
	default:
		return WAL_EIO;
	}
}

static void vset(wal_error *e, const char *fmt, va_list ap)
{
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

wal_err wal_fail(wal_error *e, wal_err code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		vset(e, fmt, ap);
		va_end(ap);
		e->code = code;
	}
	return code;
}

wal_err wal_fail_errno(wal_error *e, wal_err code, int errnum, const char *fmt, ...)
{
	if (code == WAL_OK)
		code = wal_err_from_errno(errnum);
	if (code == WAL_OK)
		code = WAL_EIO;
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		vset(e, fmt, ap);
		va_end(ap);
		size_t used = strlen(e->msg);
		char cause[128];
		snprintf(cause, sizeof(cause), "%s", strerror(errnum));
		cause[0] = (char)tolower((unsigned char)cause[0]);
		snprintf(e->msg + used, sizeof(e->msg) - used, ": %s", cause);
		e->code = code;
	}
	return code;
}

wal_err wal_error_recode(wal_error *e, wal_err code)
{
	if (e)
		e->code = code;
	return code;
}
