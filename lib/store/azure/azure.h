/*
 * Azure Blob Storage request signing and listing parsing, apart from the
 * driver (azure.c) so the unit tests reach them without a server.
 */
#ifndef WAL_AZURE_H
#define WAL_AZURE_H

#include <stddef.h>
#include <stdint.h>
#include "base/error.h"
#include "store/store.h"

/* The REST API version every request names: 2019-12-12 or later lets one
 * Put Blob carry up to 5000 MiB, more than any segment. */
#define WAL_AZURE_VERSION "2021-08-06"

/* One request as Shared Key signs it.  Unset members are NULL (or -1 for
 * content_length: no body). */
typedef struct wal_azure_sig {
	const char *method;
	int64_t content_length; /* signed as "" when 0 or -1 */
	const char *content_md5;
	const char *if_none_match;
	const char *const *ms_headers; /* "x-ms-name:value", lowercase names, sorted,
					  NULL-terminated */
	const char *resource;	       /* "/<account><encoded URL path>" */
	const char *const *query;      /* "name:decoded value", lowercase names, sorted,
					  NULL-terminated; may be NULL */
} wal_azure_sig;

/*
 * The Shared Key string-to-sign of sig (versions 2015-02-21 and later)
 * into out.  WAL_EINVAL if it does not fit.
 */
wal_err wal_azure_string_to_sign(const wal_azure_sig *sig, char *out, size_t cap, wal_error *e);

/*
 * "Authorization: SharedKey <account>:<base64 HMAC-SHA256 of the
 * string-to-sign under key>" into out.
 */
wal_err wal_azure_authorization(const char *account, const unsigned char *key, size_t key_len,
				const wal_azure_sig *sig, char *out, size_t cap, wal_error *e);

/* Decodes a base64 account key into key (cap bytes, at least 3 for every 4
 * characters of text); its length, or -1 if it is not base64 or too long. */
int wal_azure_decode_key(const char *text, unsigned char *key, size_t cap);

/* An RFC 1123 date ("Mon, 30 Nov 2026 21:49:04 GMT") of t, locale-independent. */
void wal_azure_date(time_t t, char *out, size_t cap);

/*
 * One page of a List Blobs answer (delimiter "/"), parsed: fn gets each
 * direct child of prefix (blobs with their size and time, BlobPrefix
 * entries as directories); next_marker (cap bytes) gets NextMarker, ""
 * on the last page.
 */
wal_err wal_azure_parse_list(const char *xml, size_t len, const char *what, const char *prefix,
			     wal_list_fn fn, void *arg, char *next_marker, size_t marker_cap,
			     int *entries, wal_error *e);

#endif
