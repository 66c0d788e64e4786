/*
 * S3 store for s3://bucket/prefix archives (AWS, and S3-compatible servers
 * such as Ceph RGW, MinIO and Swift's s3api): one PUT per object carrying
 * the payload's SHA-256, GET, HEAD, DELETE and ListObjectsV2, signed with
 * AWS Signature V4 by libcurl.  The URL and listing forms are in
 * protocol.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/http/http.h"
#include "store/s3/credentials.h"
#include "store/s3/s3.h"
#include "store/store.h"

/* SHA-256 of the empty body, sent with every request without one. */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
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

/* ---- requests ---- */

/* Key of path: "<prefix>/<path>" (or path when there is no prefix). */
static wal_err make_key(s3_store *s, const char *path, char *out, size_t cap, wal_error *e)
{
	if (snprintf(out, cap, "%s%s%s", s->prefix, s->prefix[0] && path[0] ? "/" : "", path) >=
	    (int)cap)
		return wal_fail(e, WAL_EINVAL, "%s: s3 key too long", path);
	return WAL_OK;
}

static wal_err object_url(s3_store *s, const char *key, char *out, size_t cap, wal_error *e)
{
	if (snprintf(out, cap, "%s/", s->base_url) >= (int)cap ||
	    wal_http_encode(key, 1, out, cap, e) != WAL_OK)
		return wal_fail(e, WAL_EINVAL, "%s: url too long", key);
	return WAL_OK;
}

static void show_name(s3_store *s, const char *key, char *out, size_t cap)
{
	snprintf(out, cap, "s3://%s/%s", s->bucket, key);
}

/* Puts the keys of s->creds into the signing handle and the token header. */
static wal_err use_creds(s3_store *s, wal_error *e)
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
		rc = use_creds(s, e);
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

static wal_err s3_do(s3_store *s, const char *method, const char *url, const char *what,
		     const char *sha256, const char *extra, wal_source *upload, wal_sink *sink,
		     wal_http_resp *resp, wal_error *e)
{
	return s3_send(s, method, url, what, sha256, extra, upload, sink, 0, resp, e);
}

/* One attempt only: the caller decides what a failure means. */
static wal_err s3_do_once(s3_store *s, const char *method, const char *url, const char *what,
			  const char *sha256, const char *extra, wal_source *upload,
			  wal_http_resp *resp, wal_error *e)
{
	return s3_send(s, method, url, what, sha256, extra, upload, NULL, 1, resp, e);
}

/* HEAD of key: WAL_OK with st filled, WAL_ENOENT, or another error. */
static wal_err head_key(s3_store *s, const char *key, wal_stat *st, wal_error *e)
{
	char url[S3_URL_MAX], what[1400];
	wal_http_resp resp;
	wal_err rc;

	show_name(s, key, what, sizeof what);
	if ((rc = object_url(s, key, url, sizeof url, e)) != WAL_OK)
		return rc;
	rc = s3_do(s, "HEAD", url, what, NULL, NULL, NULL, NULL, &resp, e);
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
static wal_err list_prefix(s3_store *s, const char *lp, int max_keys, int one_page, wal_list_fn fn,
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
		rc = s3_do(s, "GET", url, what, NULL, NULL, NULL, NULL, &resp, e);
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
static wal_err has_children(s3_store *s, const char *key, int *yes, wal_error *e)
{
	char lp[1100];
	int entries = 0;
	wal_err rc;

	snprintf(lp, sizeof lp, "%s%s", key, key[0] ? "/" : "");
	rc = list_prefix(s, lp, 1, 1, count_only, NULL, &entries, e);
	*yes = entries > 0;
	return rc;
}

/* ---- the driver ---- */

/* Whether every character of v is a letter, a digit or one of extra. */
static int plain(const char *v, const char *extra)
{
	for (; *v; v++)
		if (!isalnum((unsigned char)*v) && !strchr(extra, *v))
			return 0;
	return 1;
}

/* The server-side encryption and storage class headers of every PUT. */
static wal_err put_options(s3_store *s, const wal_config *cfg, wal_error *e)
{
	const char *sse = cfg->s3_sse && cfg->s3_sse[0] ? cfg->s3_sse : NULL;
	const char *kms =
		cfg->s3_sse_kms_key_id && cfg->s3_sse_kms_key_id[0] ? cfg->s3_sse_kms_key_id : NULL;
	const char *cls =
		cfg->s3_storage_class && cfg->s3_storage_class[0] ? cfg->s3_storage_class : NULL;
	const char *curl_version = "";

	if (sse && strcmp(sse, "AES256") != 0 && strcmp(sse, "aws:kms") != 0) {
		wal_fail(e, WAL_ECONFIG, "s3_sse \"%s\": want AES256 or aws:kms", sse);
		return wal_config_blame(cfg, "s3_sse", e);
	}
	if (kms && (!sse || strcmp(sse, "aws:kms") != 0)) {
		wal_fail(e, WAL_ECONFIG, "s3_sse_kms_key_id needs s3_sse = aws:kms");
		return wal_config_blame(cfg, "s3_sse_kms_key_id", e);
	}
	if (kms && !wal_http_sigv4_prefix_order_ok(&curl_version)) {
		wal_fail(e, WAL_ECONFIG,
			 "s3_sse_kms_key_id needs libcurl 8.10 or newer: libcurl %s signs its "
			 "header out of order and the server would refuse every put (without "
			 "it, s3_sse = aws:kms uses the bucket's default key)",
			 curl_version);
		return wal_config_blame(cfg, "s3_sse_kms_key_id", e);
	}
	if (kms && (strlen(kms) > 256 || !plain(kms, ":/_-."))) {
		wal_fail(e, WAL_ECONFIG, "s3_sse_kms_key_id \"%.64s\": not a key id, arn or alias",
			 kms);
		return wal_config_blame(cfg, "s3_sse_kms_key_id", e);
	}
	if (cls && (strlen(cls) > 64 || !plain(cls, "_"))) {
		wal_fail(e, WAL_ECONFIG, "s3_storage_class \"%.64s\": invalid", cls);
		return wal_config_blame(cfg, "s3_storage_class", e);
	}
	/* walfetch reads with a plain GET: an object that must be restored first is no archive */
	if (cls && (strcmp(cls, "GLACIER") == 0 || strcmp(cls, "DEEP_ARCHIVE") == 0)) {
		wal_fail(e, WAL_ECONFIG,
			 "s3_storage_class %s: objects need a restore before walfetch can read "
			 "them (GLACIER_IR is read directly)",
			 cls);
		return wal_config_blame(cfg, "s3_storage_class", e);
	}
	if (sse) {
		snprintf(s->put_hdr[s->put_hdrs++], sizeof s->put_hdr[0],
			 "x-amz-server-side-encryption: %s", sse);
		snprintf(s->sse_shown, sizeof s->sse_shown, "%s%ss3_sse = %s%s%s",
			 wal_config_origin(cfg, "s3_sse") ? wal_config_origin(cfg, "s3_sse") : "",
			 wal_config_origin(cfg, "s3_sse") ? ": " : "", sse,
			 kms ? ", s3_sse_kms_key_id = " : "", kms ? kms : "");
	}
	if (kms)
		snprintf(s->put_hdr[s->put_hdrs++], sizeof s->put_hdr[0],
			 "x-amz-server-side-encryption-aws-kms-key-id: %s", kms);
	if (cls) {
		snprintf(s->put_hdr[s->put_hdrs++], sizeof s->put_hdr[0], "x-amz-storage-class: %s",
			 cls);
		snprintf(s->class_shown, sizeof s->class_shown, "%s%ss3_storage_class = %s",
			 wal_config_origin(cfg, "s3_storage_class")
				 ? wal_config_origin(cfg, "s3_storage_class")
				 : "",
			 wal_config_origin(cfg, "s3_storage_class") ? ": " : "", cls);
	}
	return WAL_OK;
}

/* Refuses settings that can never work before anything is sent. */
static wal_err check_settings(const wal_config *cfg, const char *region, wal_error *e)
{
	for (const char *p = region; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '-')) {
			wal_fail(e, WAL_ECONFIG, "s3_region \"%s\": invalid", region);
			return wal_config_blame(cfg, "s3_region", e);
		}
	return WAL_OK;
}

/* Where the archive lies: bucket, key prefix and the bucket's URL. */
static wal_err locate(s3_store *s, const wal_url *url, const wal_config *cfg, const char *region,
		      wal_error *e)
{
	wal_err rc;

	s->path_style = cfg->s3_uri_style == WAL_S3_PATH;
	snprintf(s->bucket, sizeof s->bucket, "%s", url->host);
	snprintf(s->prefix, sizeof s->prefix, "%s", url->path ? url->path : "");
	while (s->prefix[0] == '/')
		memmove(s->prefix, s->prefix + 1, strlen(s->prefix));
#ifdef WALARCHIVE_TEST_SEAMS
	/* the tests' build: short pages, to walk a paginated listing */
	const char *max_keys = getenv("WALARCHIVE_S3_MAX_KEYS");
	if (max_keys && atoi(max_keys) > 0 && atoi(max_keys) <= 1000)
		s->max_keys = atoi(max_keys);
#endif
	rc = wal_s3_base_url(cfg->s3_endpoint, region, s->bucket, s->path_style, s->base_url,
			     sizeof s->base_url, e);
	if (rc == WAL_ECONFIG)
		/* the endpoint's messages start with its name; the others are the bucket's */
		rc = wal_config_blame(cfg,
				      strncmp(e->msg, "s3_endpoint", 11) == 0 ? "s3_endpoint"
									      : "archive",
				      e);
	return rc;
}

/* The HTTP client, signing every request with SigV4 for region. */
static wal_err connect_signed(s3_store *s, const wal_config *cfg, const char *region, wal_error *e)
{
	char sigv4[128];
	wal_http_opts opts = { 0 };
	wal_err rc;

	snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", region);
	opts.user = s->creds->access_key;
	opts.password = s->creds->secret_key;
	opts.aws_sigv4 = sigv4;
	opts.ca_file = cfg->tls_ca_file;
	opts.tls_verify = cfg->tls_verify;
	opts.timeout = cfg->timeout;
	opts.retries = cfg->retries;
	if ((rc = wal_http_open(&s->http, &opts, e)) == WAL_ECONFIG)
		rc = wal_config_blame(cfg, "tls_ca_file", e);
	if (rc == WAL_OK)
		rc = use_creds(s, e);
	return rc;
}

/* What a refresh of temporary credentials reads, kept past the caller's config. */
static wal_err keep_cred_settings(s3_store *s, const wal_config *cfg, wal_error *e)
{
	wal_config *k = &s->cred_cfg;

	memset(k, 0, sizeof *k);
	k->timeout = cfg->timeout;
	k->retries = cfg->retries;
	k->tls_verify = cfg->tls_verify;
	if ((cfg->s3_region && !(k->s3_region = strdup(cfg->s3_region))) ||
	    (cfg->s3_sts_endpoint && !(k->s3_sts_endpoint = strdup(cfg->s3_sts_endpoint))) ||
	    (cfg->tls_ca_file && !(k->tls_ca_file = strdup(cfg->tls_ca_file))))
		return wal_fail(e, WAL_ENOMEM, "s3: out of memory");
	return WAL_OK;
}

static void free_store(s3_store *s)
{
	wal_http_close(s->http);
	memset(s->token_hdr, 0, sizeof s->token_hdr);
	if (s->creds) {
		wal_s3_creds_wipe(s->creds);
		free(s->creds);
	}
	free(s->cred_cfg.s3_region);
	free(s->cred_cfg.s3_sts_endpoint);
	free(s->cred_cfg.tls_ca_file);
	free(s);
}

static wal_err s3_open(wal_store **out, const wal_url *url, const wal_config *cfg, wal_error *e)
{
	const char *region = cfg->s3_region && cfg->s3_region[0] ? cfg->s3_region : "us-east-1";
	s3_store *s;
	int yes = 0;
	wal_err rc;

	*out = NULL;
	if ((rc = check_settings(cfg, region, e)) != WAL_OK)
		return rc;
	s = calloc(1, sizeof *s);
	if (!s)
		return wal_fail(e, WAL_ENOMEM, "s3: out of memory");
	s->base.ops = &wal_store_s3_ops;
	s->creds = calloc(1, sizeof *s->creds);
	if (!s->creds) {
		rc = wal_fail(e, WAL_ENOMEM, "s3: out of memory");
		goto fail;
	}
	if ((rc = put_options(s, cfg, e)) != WAL_OK ||
	    (rc = keep_cred_settings(s, cfg, e)) != WAL_OK ||
	    (rc = locate(s, url, cfg, region, e)) != WAL_OK)
		goto fail;
	if ((rc = wal_s3_creds_load(cfg, s->creds, e)) != WAL_OK) {
		/* the source's own message, after the archive's name */
		char msg[sizeof e->msg];

		if (e) {
			snprintf(msg, sizeof msg, "%s", e->msg);
			wal_fail(e, rc, "s3://%s: %s", s->bucket, msg);
		}
		goto fail;
	}
	if ((rc = connect_signed(s, cfg, region, e)) != WAL_OK)
		goto fail;
	/* one small listing proves the bucket, the credentials and the signing */
	rc = has_children(s, s->prefix, &yes, e);
	if (rc == WAL_ENOENT)
		wal_fail(e, WAL_ENOENT, "s3://%s: bucket does not exist", s->bucket);
	if (rc != WAL_OK)
		goto fail;
	*out = &s->base;
	return WAL_OK;
fail:
	free_store(s);
	return rc;
}

/* The key, URL and shown name of the object at path (the buffers of put, get and remove). */
static wal_err object_of(s3_store *s, const char *path, char key[1100], char url[S3_URL_MAX],
			 char what[1400], wal_error *e)
{
	wal_err rc;
	if ((rc = wal_store_path_valid(path, e)) != WAL_OK ||
	    (rc = make_key(s, path, key, 1100, e)) != WAL_OK ||
	    (rc = object_url(s, key, url, S3_URL_MAX, e)) != WAL_OK)
		return rc;
	show_name(s, key, what, 1400);
	return WAL_OK;
}

/*
 * Whether a PUT's answer refuses the server-side encryption or storage
 * class this store sends: then *rc and e carry one line naming the
 * setting and the server's reason, a configuration error.
 */
static int put_option_refused(s3_store *s, const char *what, const wal_http_resp *resp, wal_err *rc,
			      wal_error *e)
{
	const char *body = resp->body ? resp->body : "";
	const char *shown = NULL;
	char text[384];

	if (resp->status != 400 && resp->status != 403 && resp->status != 501)
		return 0;
	if (s->class_shown[0] && (strstr(body, "<Code>InvalidStorageClass<") ||
				  (resp->status != 403 &&
				   (strstr(body, "torage class") || strstr(body, "StorageClass")))))
		shown = s->class_shown;
	else if (s->sse_shown[0] &&
		 (strstr(body, "ncryption") || strstr(body, "KMS") || strstr(body, "kms")))
		shown = s->sse_shown;
	if (!shown)
		return 0;
	wal_http_error_text(resp->body, resp->body_len, text, sizeof text);
	*rc = wal_fail(e, WAL_ECONFIG, "%s: refused by the server: %s (%s: PUT %ld)", shown,
		       text[0] ? text : "no reason given", what, resp->status);
	return 1;
}

static wal_err s3_put(wal_store *store, const char *path, wal_source *src, wal_error *e)
{
	s3_store *s = (s3_store *)store;
	char key[1100], url[S3_URL_MAX], what[1400], sha256[65];
	wal_http_resp resp;
	wal_stat st;
	wal_err rc;

	if ((rc = object_of(s, path, key, url, what, e)) != WAL_OK)
		return rc;
	/* S3 has no atomic "create only": look first, then ask the server to
	 * refuse an existing name (If-None-Match), which AWS and most others honour */
	rc = head_key(s, key, &st, e);
	if (rc == WAL_OK)
		return wal_fail(e, WAL_EEXIST, "%s: already exists", what);
	if (rc != WAL_ENOENT)
		return rc;
	if ((rc = wal_source_measure(src, sha256, e)) != WAL_OK)
		return rc;
	if (!s->no_conditional_put) {
		/* one conditional attempt; a server without conditional PUTs answers
		 * 501 (Swift's s3api 2.30: "Conditional object PUTs are not
		 * supported"), or 502 from a proxy in front of it that was still
		 * sending the body: then the HEAD above is the guard, and the
		 * plain PUT below has the usual retries */
		rc = s3_do_once(s, "PUT", url, what, sha256, "If-None-Match: *", src, &resp, e);
		if (rc == WAL_OK && put_option_refused(s, what, &resp, &rc, e)) {
			wal_http_resp_free(&resp);
			return rc;
		}
		if ((rc != WAL_OK && wal_err_transient(rc)) ||
		    (rc == WAL_OK &&
		     (resp.status == 501 || wal_http_status_transient(resp.status)))) {
			if (rc == WAL_OK && resp.status == 501)
				s->no_conditional_put = 1;
			wal_http_resp_free(&resp);
			rc = s3_do(s, "PUT", url, what, sha256, NULL, src, NULL, &resp, e);
		}
	} else {
		rc = s3_do(s, "PUT", url, what, sha256, NULL, src, NULL, &resp, e);
	}
	if (rc == WAL_OK && resp.status == 412)
		rc = wal_fail(e, WAL_EEXIST, "%s: already exists", what);
	else if (rc == WAL_OK && put_option_refused(s, what, &resp, &rc, e))
		; /* the message names the setting */
	else if (rc == WAL_OK)
		rc = wal_http_status_err(what, "PUT", &resp, e);
	wal_http_resp_free(&resp);
	return rc;
}

static wal_err s3_get(wal_store *store, const char *path, wal_sink *sink, wal_error *e)
{
	s3_store *s = (s3_store *)store;
	char key[1100], url[S3_URL_MAX], what[1400];
	wal_http_resp resp;
	wal_err rc;

	if ((rc = object_of(s, path, key, url, what, e)) != WAL_OK)
		return rc;
	rc = s3_do(s, "GET", url, what, NULL, NULL, NULL, sink, &resp, e);
	if (rc == WAL_OK)
		rc = wal_http_status_err(what, "GET", &resp, e);
	wal_http_resp_free(&resp);
	return rc;
}

static wal_err s3_stat(wal_store *store, const char *path, wal_stat *st, wal_error *e)
{
	s3_store *s = (s3_store *)store;
	char key[1100];
	wal_error saved;
	int yes = 0;
	wal_err rc;

	if ((rc = wal_store_path_valid(path, e)) != WAL_OK ||
	    (rc = make_key(s, path, key, sizeof key, e)) != WAL_OK)
		return rc;
	rc = head_key(s, key, st, e);
	if (rc != WAL_ENOENT)
		return rc;
	/* no object: a "directory" exists while keys lie under it */
	saved = e ? *e : (wal_error){ 0 };
	rc = has_children(s, key, &yes, e);
	if (rc != WAL_OK)
		return rc;
	if (!yes) {
		if (e)
			*e = saved;
		return WAL_ENOENT;
	}
	st->size = -1;
	st->mtime = 0;
	st->is_dir = 1;
	return WAL_OK;
}

static wal_err s3_list(wal_store *store, const char *dir, wal_list_fn fn, void *arg, wal_error *e)
{
	s3_store *s = (s3_store *)store;
	char key[1100], lp[1200];
	int entries = 0;
	wal_err rc;

	if (dir[0] && (rc = wal_store_path_valid(dir, e)) != WAL_OK)
		return rc;
	if ((rc = make_key(s, dir, key, sizeof key, e)) != WAL_OK)
		return rc;
	snprintf(lp, sizeof lp, "%s%s", key, key[0] ? "/" : "");
	rc = list_prefix(s, lp, s->max_keys, 0, fn, arg, &entries, e);
	/* S3 has no empty directories: nothing under dir means it does not exist */
	if (rc == WAL_OK && entries == 0 && dir[0])
		rc = wal_fail(e, WAL_ENOENT, "s3://%s/%s: no such directory", s->bucket, key);
	return rc;
}

static wal_err s3_remove(wal_store *store, const char *path, wal_error *e)
{
	s3_store *s = (s3_store *)store;
	char key[1100], url[S3_URL_MAX], what[1400];
	wal_http_resp resp;
	wal_stat st;
	wal_err rc;

	if ((rc = object_of(s, path, key, url, what, e)) != WAL_OK)
		return rc;
	/* DELETE answers 204 for absent keys too; HEAD tells absent apart */
	rc = head_key(s, key, &st, e);
	if (rc == WAL_ENOENT) {
		int yes = 0;

		/* a directory: it vanishes with its last key; a non-empty one stays */
		rc = has_children(s, key, &yes, e);
		if (rc != WAL_OK)
			return rc;
		if (yes)
			return wal_fail(e, WAL_EINVAL, "%s: directory not empty", what);
		return wal_fail(e, WAL_ENOENT, "%s: does not exist", what);
	}
	if (rc != WAL_OK)
		return rc;
	rc = s3_do(s, "DELETE", url, what, NULL, NULL, NULL, NULL, &resp, e);
	if (rc == WAL_OK)
		rc = wal_http_status_err(what, "DELETE", &resp, e);
	wal_http_resp_free(&resp);
	return rc;
}

static void s3_close(wal_store *store)
{
	s3_store *s = (s3_store *)store;

	if (!s)
		return;
	free_store(s);
}

static const char *s3_auth(wal_store *store)
{
	s3_store *s = (s3_store *)store;

	return s->creds->origin;
}

const wal_store_ops wal_store_s3_ops = {
	.scheme = "s3",
	.open = s3_open,
	.put = s3_put,
	.get = s3_get,
	.stat = s3_stat,
	.list = s3_list,
	.remove = s3_remove,
	.close = s3_close,
	.auth = s3_auth,
};
