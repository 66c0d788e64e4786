/*
 * What the files of the S3 driver share, and nothing outside this folder
 * includes: the store handle (s3.c opens it and runs the store's
 * operations) and the requests (request.c).
 */
#ifndef WAL_STORE_S3_DRIVER_H
#define WAL_STORE_S3_DRIVER_H

#include <stddef.h>
#include "base/error.h"
#include "store/http/http.h"
#include "store/s3/credentials.h"
#include "store/store.h"

#define S3_URL_MAX 4096

typedef struct s3_store {
	wal_store base;
	wal_http *http;
	char base_url[1024]; /* bucket URL, no trailing '/' */
	int path_style;
	char bucket[256];
	char prefix[1024];	/* key prefix, no leading or trailing '/'; may be "" */
	char token_hdr[8300];	/* "x-amz-security-token: ..." or "" */
	int max_keys;		/* 0 = server default (1000) */
	int no_conditional_put; /* the server refuses If-None-Match on PUT */
	wal_s3_creds *creds;	/* the keys signing the requests, and where they came from */
	wal_config cred_cfg;	/* the settings a refresh of temporary credentials reads */
	char put_hdr[3][320];	/* server-side encryption and storage class, on every PUT */
	int put_hdrs;
	char sse_shown[1400];	/* "FILE:LINE: s3_sse = aws:kms", for a refusal */
	char class_shown[1400]; /* "FILE:LINE: s3_storage_class = X" */
} s3_store;

/* Key of path: "<prefix>/<path>" (or path when there is no prefix). */
wal_err wal_s3_make_key(s3_store *s, const char *path, char *out, size_t cap, wal_error *e);

/* The URL of key, percent-encoded under the bucket's URL. */
wal_err wal_s3_object_url(s3_store *s, const char *key, char *out, size_t cap, wal_error *e);

/* "s3://bucket/key", for messages. */
void wal_s3_show_name(s3_store *s, const char *key, char *out, size_t cap);

/* Puts the keys of s->creds into the signing handle and the token header. */
wal_err wal_s3_use_creds(s3_store *s, wal_error *e);

/* One request, with retries, carrying the headers every S3 request
 * carries (sha256 NULL: the empty body's; extra: one more header or NULL);
 * the caller frees resp whatever happens. */
wal_err wal_s3_do(s3_store *s, const char *method, const char *url, const char *what,
		  const char *sha256, const char *extra, wal_source *upload, wal_sink *sink,
		  wal_http_resp *resp, wal_error *e);

/* As wal_s3_do, one attempt only: the caller decides what a failure means. */
wal_err wal_s3_do_once(s3_store *s, const char *method, const char *url, const char *what,
		       const char *sha256, const char *extra, wal_source *upload,
		       wal_http_resp *resp, wal_error *e);

/* HEAD of key: WAL_OK with st filled, WAL_ENOENT, or another error. */
wal_err wal_s3_head_key(s3_store *s, const char *key, wal_stat *st, wal_error *e);

/* Lists the direct children of key prefix lp (ending in '/' or ""), all
 * pages unless one_page; *entries counts them. */
wal_err wal_s3_list_prefix(s3_store *s, const char *lp, int max_keys, int one_page, wal_list_fn fn,
			   void *arg, int *entries, wal_error *e);

/* Whether any key lies under "<key>/": a directory in S3 terms. */
wal_err wal_s3_has_children(s3_store *s, const char *key, int *yes, wal_error *e);

#endif
