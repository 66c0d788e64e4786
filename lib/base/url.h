/*
 * Archive locations: a plain absolute path or file:///path, sftp://user@host[:port]/path,
 * http(s)://[user@]host[:port]/path, s3://bucket/prefix.
 */
#ifndef WAL_URL_H
#define WAL_URL_H

#include <stddef.h>
#include "base/error.h"

typedef struct wal_url {
	char scheme[8]; /* "file", "sftp", "http", "https", "s3", "azure" */
	char *user;	/* NULL if absent (percent-decoded) */
	char *host;	/* NULL for file; the bucket for s3; IPv6 without brackets */
	int port;	/* 0 = scheme default */
	char *path; /* decoded; no trailing '/' except for "/"; s3: prefix without leading '/'; azure: "container[/prefix]" likewise (host is the account) */
} wal_url;

/* Parses text; WAL_ECONFIG with the reason if it is not one of the forms. */
wal_err wal_url_parse(const char *text, wal_url *url, wal_error *e);

void wal_url_free(wal_url *url);

/*
 * Copies text into out (cap bytes) for a message, with the password of
 * any userinfo replaced by "***": "https://u:***@host/x".  Everything from
 * the first ':' after "://" (or from the start, for text without a scheme
 * that is not an absolute path: "u:pw@host") to the last '@' counts as the
 * password, so a password holding '@' or '/' is hidden too.  text may be NULL.
 */
void wal_url_redact(const char *text, char *out, size_t cap);

#endif
