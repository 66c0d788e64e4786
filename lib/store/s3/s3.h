/*
 * S3 request building and listing parsing, apart from the driver (s3.c)
 * so the unit tests and the fuzz target reach them without a server.
 */
#ifndef WAL_S3_H
#define WAL_S3_H

#include <stddef.h>
#include <time.h>
#include "base/error.h"
#include "store/store.h"

/*
 * The bucket's base URL, without a trailing '/': path style
 * "<scheme>://<endpoint>/<bucket>", host style "<scheme>://<bucket>.<endpoint>".
 * endpoint is "host[:port]" (https is used) or a URL with its scheme; NULL
 * means AWS, "s3.<region>.amazonaws.com".  WAL_ECONFIG if it does not fit or
 * the bucket is not a valid DNS label in host style.
 */
wal_err wal_s3_base_url(const char *endpoint, const char *region, const char *bucket,
			int path_style, char *out, size_t cap, wal_error *e);

/*
 * The ListObjectsV2 query string, parameters sorted by name and values
 * encoded per RFC 3986 as SigV4 signs them: "[continuation-token=T&]
 * delimiter=%2F&list-type=2[&max-keys=N]&prefix=P".  token NULL = first
 * page; max_keys 0 = the server's default.
 */
wal_err wal_s3_list_query(const char *prefix, const char *token, int max_keys, char *out,
			  size_t cap, wal_error *e);

/* Parses an ISO 8601 UTC time as S3 listings give it ("2024-01-31T12:00:00.000Z"); 0 if not. */
time_t wal_s3_parse_time(const char *text);

/* One page of a ListObjectsV2 answer, parsed: fn gets each direct child of
 * prefix (objects with their size and time, CommonPrefixes as directories,
 * the prefix itself skipped); *truncated and next_token (cap bytes) say
 * whether and where to continue. */
wal_err wal_s3_parse_list(const char *xml, size_t len, const char *what, const char *prefix,
			  wal_list_fn fn, void *arg, int *truncated, char *next_token,
			  size_t token_cap, int *entries, wal_error *e);

#endif
