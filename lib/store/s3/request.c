/*
 * The S3 driver's requests (s3.c holds the driver): keys and URLs of
 * objects, one signed request with the headers every S3 request carries
 * (credentials fetched again when they near their expiry or the server
 * says they expired), HEAD of a key and the listing of a prefix.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/http/http.h"
#include "store/s3/credentials.h"
#include "store/s3/s3.h"
#include "store/s3/driver.h"
#include "store/store.h"

/* SHA-256 of the empty body, sent with every request without one. */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Key of path: "<prefix>/<path>" (or path when there is no prefix). */
wal_err wal_s3_make_key(s3_store *s, const char *path, char *out, size_t cap, wal_error *e)
{
	if (snprintf(out, cap, "%s%s%s", s->prefix, s->prefix[0] && path[0] ? "/" : "", path) >=
	    (int)cap)
		return wal_fail(e, WAL_EINVAL, "%s: s3 key too long", path);
	return WAL_OK;
}

wal_err wal_s3_object_url(s3_store *s, const char *key, char *out, size_t cap, wal_error *e)
{
	if (snprintf(out, cap, "%s/", s->base_url) >= (int)cap ||
	    wal_http_encode(key, 1, out, cap, e) != WAL_OK)
		return wal_fail(e, WAL_EINVAL, "%s: url too long", key);
	return WAL_OK;
}

void wal_s3_show_name(s3_store *s, const char *key, char *out, size_t cap)
{
	snprintf(out, cap, "s3://%s/%s", s->bucket, key);
}

/* Puts the keys of s->creds into the signing handle and the token header. */
wal_err wal_s3_use_creds(s3_store *s, wal_error *e)
{
	const wal_s3_creds *c = s->creds;

	memset(s->token_hdr, 0, sizeof s->token_hdr);
	if (c->token[0])
		snprintf(s->token_hdr, sizeof s->token_hdr, "x-amz-security-token: %s", c->token);
	return wal_http_set_auth(s->http, c->access_key, c->secret_key, e);
}

/* Fetches temporary credentials again when they near their expiry (or,
 * forced, when the server said they expired), before a request signs. */
static wal_err fresh_creds(s3_store *s, int force, wal_error *e)
{
	int changed = 0;
	wal_err rc = wal_s3_creds_refresh(&s->cred_cfg, s->creds, force, &changed, e);

	if (rc == WAL_OK && changed)
		rc = wal_s3_use_creds(s, e);
	return rc;
}

/* Whether the server refused the session token as expired (a HEAD's
 * answer has no body to say why: its 400 or 403 is taken as that too). */
static int token_expired(const char *method, const wal_http_resp *resp)
{
	if (resp->status != 400 && resp->status != 403)
		return 0;
	if (strcmp(method, "HEAD") == 0)
		return 1;
	return resp->body && (strstr(resp->body, "<Code>ExpiredToken<") ||
			      strstr(resp->body, "<Code>TokenRefreshRequired<"));
}

/* Sends a request with the headers every S3 request carries. */
static wal_err s3_send(s3_store *s, const char *method, const char *url, const char *what,
		       const char *sha256, const char *extra, wal_source *upload, wal_sink *sink,
		       int no_retry, wal_http_resp *resp, wal_error *e)
{
	char sha_hdr[128];
	const char *headers[8];
	int n = 0, i, again;
	wal_http_req req = { .method = method,
			     .url = url,
			     .what = what,
			     .upload = upload,
			     .sink = sink,
			     .headers = headers,
			     .no_retry = no_retry };
	wal_err rc;

	/* the caller frees resp whatever happens, also when no request was sent */
	memset(resp, 0, sizeof *resp);
	resp->content_length = -1;
	/* the server checks the body against this hash and refuses a damaged one */
	snprintf(sha_hdr, sizeof sha_hdr, "x-amz-content-sha256: %s",
		 sha256 ? sha256 : S3_EMPTY_SHA256);
	headers[n++] = sha_hdr;
	if (s->token_hdr[0])
		headers[n++] = s->token_hdr;
	if (extra)
		headers[n++] = extra;
	/* signed like every x-amz- header: a proxy cannot strip them unnoticed */
	if (upload && strcmp(method, "PUT") == 0)
		for (i = 0; i < s->put_hdrs; i++)
			headers[n++] = s->put_hdr[i];
	headers[n] = NULL;
	for (again = 0;; again++) {
		if ((rc = fresh_creds(s, again, e)) != WAL_OK)
			return rc;
		rc = wal_http_do(s->http, &req, resp, e);
		/* credentials that expired early (a clock off, a revoked session):
		 * fetched once more, and the request sent again */
		if (rc != WAL_OK || again || !s->creds->expiration || !token_expired(method, resp))
			return rc;
		wal_http_resp_free(resp);
	}
}

wal_err wal_s3_do(s3_store *s, const char *method, const char *url, const char *what,
		  const char *sha256, const char *extra, wal_source *upload, wal_sink *sink,
		  wal_http_resp *resp, wal_error *e)
{
	return s3_send(s, method, url, what, sha256, extra, upload, sink, 0, resp, e);
}

/* One attempt only: the caller decides what a failure means. */
wal_err wal_s3_do_once(s3_store *s, const char *method, const char *url, const char *what,
		       const char *sha256, const char *extra, wal_source *upload,
		       wal_http_resp *resp, wal_error *e)
{
	return s3_send(s, method, url, what, sha256, extra, upload, NULL, 1, resp, e);
}

/* HEAD of key: WAL_OK with st filled, WAL_ENOENT, or another error. */
wal_err wal_s3_head_key(s3_store *s, const char *key, wal_stat *st, wal_error *e)
{
	char url[S3_URL_MAX], what[1400];
	wal_http_resp resp;
	wal_err rc;

	wal_s3_show_name(s, key, what, sizeof what);
	if ((rc = wal_s3_object_url(s, key, url, sizeof url, e)) != WAL_OK)
		return rc;
	rc = wal_s3_do(s, "HEAD", url, what, NULL, NULL, NULL, NULL, &resp, e);
	if (rc == WAL_OK)
		rc = wal_http_status_err(what, "HEAD", &resp, e);
	if (rc == WAL_OK) {
		st->size = resp.content_length;
		st->mtime = resp.mtime;
		st->is_dir = 0;
	}
	wal_http_resp_free(&resp);
	return rc;
}

/* Lists the direct children of key prefix lp (ending in '/' or ""),
 * all pages; *entries counts them. */
wal_err wal_s3_list_prefix(s3_store *s, const char *lp, int max_keys, int one_page, wal_list_fn fn,
			   void *arg, int *entries, wal_error *e)
{
	char query[3072], url[S3_URL_MAX + 3072], what[1400];
	char *token = NULL;
	int truncated = 0;
	wal_err rc = WAL_OK;
	int pages = 0;

	token = malloc(2048);
	if (!token)
		return wal_fail(e, WAL_ENOMEM, "s3 listing: out of memory");
	token[0] = '\0';
	*entries = 0;
	snprintf(what, sizeof what, "s3://%s/%s", s->bucket, lp);
	do {
		wal_http_resp resp;

		rc = wal_s3_list_query(lp, pages ? token : NULL, max_keys, query, sizeof query, e);
		if (rc != WAL_OK)
			break;
		snprintf(url, sizeof url, "%s%s?%s", s->base_url, s->path_style ? "" : "/", query);
		rc = wal_s3_do(s, "GET", url, what, NULL, NULL, NULL, NULL, &resp, e);
		if (rc == WAL_OK)
			rc = wal_http_status_err(what, "list", &resp, e);
		if (rc == WAL_OK)
			rc = wal_s3_parse_list(resp.body, resp.body_len, what, lp, fn, arg,
					       &truncated, token, 2048, entries, e);
		if (rc == WAL_OK && resp.body_len >= WAL_HTTP_BODY_MAX)
			rc = wal_fail(e, WAL_ENET, "%s: listing page too large", what);
		wal_http_resp_free(&resp);
		pages++;
	} while (rc == WAL_OK && truncated && !one_page);
	free(token);
	return rc;
}

static wal_err count_only(void *arg, const char *name, const wal_stat *st, wal_error *e)
{
	(void)arg;
	(void)name;
	(void)st;
	(void)e;
	return WAL_OK;
}

/* Whether any key lies under "<key>/": a directory in S3 terms. */
wal_err wal_s3_has_children(s3_store *s, const char *key, int *yes, wal_error *e)
{
	char lp[1100];
	int entries = 0;
	wal_err rc;

	snprintf(lp, sizeof lp, "%s%s", key, key[0] ? "/" : "");
	rc = wal_s3_list_prefix(s, lp, 1, 1, count_only, NULL, &entries, e);
	*yes = entries > 0;
	return rc;
}
