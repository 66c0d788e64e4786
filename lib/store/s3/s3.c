/*
 * S3 store for s3://bucket/prefix archives (AWS, and S3-compatible servers
 * such as Ceph RGW, MinIO and Swift's s3api): one PUT per object carrying
 * the payload's SHA-256, GET, HEAD, DELETE and ListObjectsV2, signed with
 * AWS Signature V4 by libcurl.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/http/http.h"
#include "store/http/xml.h"
#include "store/store.h"

/* SHA-256 of the empty body, sent with every request without one. */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_URL_MAX 4096

typedef struct s3_store {
	wal_store base;
	wal_http *http;
	char base_url[1024];       /* bucket URL, no trailing '/' */
	int path_style;
	char bucket[256];
	char prefix[1024];         /* key prefix, no leading or trailing '/'; may be "" */
	char token_hdr[4096];      /* "x-amz-security-token: ..." or "" */
	int max_keys;              /* 0 = server default (1000) */
	int no_conditional_put;    /* the server refuses If-None-Match on PUT */
} s3_store;

/* ---- pure helpers ---- */

wal_err wal_s3_base_url(const char *endpoint, const char *region, const char *bucket,
			int path_style, char *out, size_t cap, wal_error *e)
{
	char scheme[8] = "https", host[512], shown[512];
	const char *sep;
	size_t i, n;
	int len;

	/* messages show the endpoint, but never a password written into it */
	wal_url_redact(endpoint, shown, sizeof shown);
	if (!endpoint || !endpoint[0]) {
		snprintf(host, sizeof host, "s3.%s.amazonaws.com", region ? region : "us-east-1");
	} else {
		sep = strstr(endpoint, "://");
		if (sep) {
			if ((size_t)(sep - endpoint) >= sizeof scheme)
				return wal_fail(e, WAL_ECONFIG, "s3_endpoint \"%s\": unknown scheme",
						shown);
			memcpy(scheme, endpoint, (size_t)(sep - endpoint));
			scheme[sep - endpoint] = '\0';
			for (i = 0; scheme[i]; i++)
				scheme[i] = (char)tolower((unsigned char)scheme[i]);
			if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
				return wal_fail(e, WAL_ECONFIG,
						"s3_endpoint \"%s\": want http:// or https://", shown);
			endpoint = sep + 3;
		}
		if (snprintf(host, sizeof host, "%s", endpoint) >= (int)sizeof host)
			return wal_fail(e, WAL_ECONFIG, "s3_endpoint too long");
		n = strlen(host);
		while (n > 0 && host[n - 1] == '/')
			host[--n] = '\0';
		if (!host[0] || strchr(host, '/') || strchr(host, '?') || strchr(host, '@'))
			return wal_fail(e, WAL_ECONFIG,
					"s3_endpoint \"%s\": want host[:port] or a URL without a path",
					shown);
	}
	if (!bucket || !bucket[0])
		return wal_fail(e, WAL_ECONFIG, "s3 archive without a bucket");
	for (i = 0; bucket[i]; i++) {
		unsigned char ch = (unsigned char)bucket[i];

		if (!(islower(ch) || isdigit(ch) || ch == '-' || ch == '.' ||
		      (path_style && (isupper(ch) || ch == '_'))))
			return wal_fail(e, WAL_ECONFIG, "s3 bucket \"%s\": invalid name%s", bucket,
					path_style ? "" : " for s3_uri_style = host");
	}
	if (path_style)
		len = snprintf(out, cap, "%s://%s/%s", scheme, host, bucket);
	else
		len = snprintf(out, cap, "%s://%s.%s", scheme, bucket, host);
	if (len < 0 || (size_t)len >= cap)
		return wal_fail(e, WAL_ECONFIG, "s3 url too long");
	return WAL_OK;
}

wal_err wal_s3_list_query(const char *prefix, const char *token, int max_keys, char *out,
			  size_t cap, wal_error *e)
{
	char num[32];

	out[0] = '\0';
	/* SigV4 signs the query as sent: names in byte order, values RFC 3986 encoded */
	if (token) {
		if (snprintf(out, cap, "continuation-token=") >= (int)cap ||
		    wal_http_encode(token, 0, out, cap, e) != WAL_OK ||
		    strlen(out) + 1 >= cap)
			return wal_fail(e, WAL_EINVAL, "s3 listing query too long");
		strcat(out, "&");
	}
	snprintf(num, sizeof num, "&max-keys=%d", max_keys);
	if (strlen(out) + 64 >= cap)
		return wal_fail(e, WAL_EINVAL, "s3 listing query too long");
	strcat(out, "delimiter=%2F&list-type=2");
	if (max_keys > 0)
		strcat(out, num);
	strcat(out, "&prefix=");
	if (wal_http_encode(prefix, 0, out, cap, e) != WAL_OK)
		return wal_fail(e, WAL_EINVAL, "s3 listing query too long");
	return WAL_OK;
}

time_t wal_s3_parse_time(const char *text)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof tm);
	end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return 0;
	return timegm(&tm);
}

typedef struct list_page {
	const char *prefix;
	size_t prefix_len;
	wal_list_fn fn;
	void *arg;
	int *truncated;
	char *next_token;
	size_t token_cap;
	int *entries;
	char key[1024];
	wal_stat st;
	int seen_root;         /* the document's root element is ListBucketResult */
} list_page;

static wal_err emit_child(list_page *pg, const char *full, int is_dir, wal_error *e)
{
	char name[1024];
	size_t n;

	if (strncmp(full, pg->prefix, pg->prefix_len) != 0)
		return WAL_OK;
	snprintf(name, sizeof name, "%s", full + pg->prefix_len);
	n = strlen(name);
	if (is_dir && n > 0 && name[n - 1] == '/')
		name[--n] = '\0';
	if (!name[0] || strchr(name, '/'))
		return WAL_OK;
	(*pg->entries)++;
	if (is_dir) {
		wal_stat st = { .size = -1, .mtime = 0, .is_dir = 1 };

		return pg->fn(pg->arg, name, &st, e);
	}
	return pg->fn(pg->arg, name, &pg->st, e);
}

static wal_err list_xml(void *arg, const char *path, const char *text, wal_error *e)
{
	list_page *pg = arg;

	if (strcmp(path, "ListBucketResult/Contents/Key") == 0)
		snprintf(pg->key, sizeof pg->key, "%s", text);
	else if (strcmp(path, "ListBucketResult/Contents/Size") == 0)
		pg->st.size = strtoll(text, NULL, 10);
	else if (strcmp(path, "ListBucketResult/Contents/LastModified") == 0)
		pg->st.mtime = wal_s3_parse_time(text);
	else if (strcmp(path, "ListBucketResult/Contents") == 0) {
		wal_err rc = emit_child(pg, pg->key, 0, e);

		pg->key[0] = '\0';
		memset(&pg->st, 0, sizeof pg->st);
		pg->st.size = -1;
		return rc;
	} else if (strcmp(path, "ListBucketResult/CommonPrefixes/Prefix") == 0)
		return emit_child(pg, text, 1, e);
	else if (strcmp(path, "ListBucketResult/IsTruncated") == 0)
		*pg->truncated = strcmp(text, "true") == 0;
	else if (strcmp(path, "ListBucketResult/NextContinuationToken") == 0)
		snprintf(pg->next_token, pg->token_cap, "%s", text);
	else if (strcmp(path, "ListBucketResult") == 0)
		pg->seen_root = 1;
	return WAL_OK;
}

wal_err wal_s3_parse_list(const char *xml, size_t len, const char *what, const char *prefix,
			  wal_list_fn fn, void *arg, int *truncated, char *next_token,
			  size_t token_cap, int *entries, wal_error *e)
{
	list_page pg;
	wal_err rc;

	memset(&pg, 0, sizeof pg);
	pg.prefix = prefix;
	pg.prefix_len = strlen(prefix);
	pg.fn = fn;
	pg.arg = arg;
	pg.truncated = truncated;
	pg.next_token = next_token;
	pg.token_cap = token_cap;
	pg.entries = entries;
	pg.st.size = -1;
	*truncated = 0;
	next_token[0] = '\0';
	rc = wal_xml_parse(xml, len, what, list_xml, &pg, e);
	if (rc != WAL_OK)
		return rc;
	/* the root element must be the listing: anything else is not an answer */
	if (!pg.seen_root)
		return wal_fail(e, WAL_ENET, "%s: the server's answer is not a bucket listing", what);
	if (*truncated && !next_token[0])
		return wal_fail(e, WAL_ENET, "%s: truncated listing without a continuation token",
				what);
	return WAL_OK;
}

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

/* Sends a request with the headers every S3 request carries. */
static wal_err s3_send(s3_store *s, const char *method, const char *url, const char *what,
		       const char *sha256, const char *extra, wal_source *upload, wal_sink *sink,
		       int no_retry, wal_http_resp *resp, wal_error *e)
{
	char sha_hdr[128];
	const char *headers[4];
	int n = 0;
	wal_http_req req = { .method = method, .url = url, .what = what, .upload = upload,
			     .sink = sink, .headers = headers, .no_retry = no_retry };

	/* the server checks the body against this hash and refuses a damaged one */
	snprintf(sha_hdr, sizeof sha_hdr, "x-amz-content-sha256: %s",
		 sha256 ? sha256 : S3_EMPTY_SHA256);
	headers[n++] = sha_hdr;
	if (s->token_hdr[0])
		headers[n++] = s->token_hdr;
	if (extra)
		headers[n++] = extra;
	headers[n] = NULL;
	return wal_http_do(s->http, &req, resp, e);
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
static wal_err list_prefix(s3_store *s, const char *lp, int max_keys, int one_page,
			   wal_list_fn fn, void *arg, int *entries, wal_error *e)
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
			rc = wal_s3_parse_list(resp.body, resp.body_len, what, lp, fn, arg, &truncated,
					       token, 2048, entries, e);
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
	(void)arg; (void)name; (void)st; (void)e;
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

static wal_err s3_open(wal_store **out, const wal_url *url, const wal_config *cfg, wal_error *e)
{
	const char *access = cfg->s3_access_key ? cfg->s3_access_key : getenv("AWS_ACCESS_KEY_ID");
	const char *secret = cfg->s3_secret_key ? cfg->s3_secret_key
						: getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = cfg->s3_session_token ? cfg->s3_session_token
						  : getenv("AWS_SESSION_TOKEN");
	const char *region = cfg->s3_region && cfg->s3_region[0] ? cfg->s3_region : "us-east-1";
	const char *max_keys = getenv("WALARCHIVE_S3_MAX_KEYS");
	char sigv4[128];
	wal_http_opts opts = { 0 };
	s3_store *s;
	int yes = 0;
	wal_err rc;

	*out = NULL;
	if (!access || !access[0] || !secret || !secret[0])
		return wal_fail(e, WAL_ECONFIG,
				"s3://%s: no credentials (set s3_access_key and s3_secret_key, or "
				"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", url->host);
	for (const char *p = region; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '-')) {
			wal_fail(e, WAL_ECONFIG, "s3_region \"%s\": invalid", region);
			return wal_config_blame(cfg, "s3_region", e);
		}
	s = calloc(1, sizeof *s);
	if (!s)
		return wal_fail(e, WAL_ENOMEM, "s3: out of memory");
	s->base.ops = &wal_store_s3_ops;
	s->path_style = cfg->s3_uri_style == WAL_S3_PATH;
	snprintf(s->bucket, sizeof s->bucket, "%s", url->host);
	snprintf(s->prefix, sizeof s->prefix, "%s", url->path ? url->path : "");
	while (s->prefix[0] == '/')
		memmove(s->prefix, s->prefix + 1, strlen(s->prefix));
	if (token && token[0] &&
	    snprintf(s->token_hdr, sizeof s->token_hdr, "x-amz-security-token: %s", token) >=
	    (int)sizeof s->token_hdr) {
		rc = wal_fail(e, WAL_ECONFIG, "s3 session token too long");
		goto fail;
	}
	/* a test hook: small pages prove that pagination works */
	if (max_keys && atoi(max_keys) > 0 && atoi(max_keys) <= 1000)
		s->max_keys = atoi(max_keys);
	rc = wal_s3_base_url(cfg->s3_endpoint, region, s->bucket, s->path_style, s->base_url,
			     sizeof s->base_url, e);
	if (rc == WAL_ECONFIG)
		/* the endpoint's messages start with its name; the others are the bucket's */
		rc = wal_config_blame(cfg, strncmp(e->msg, "s3_endpoint", 11) == 0 ? "s3_endpoint"
				      : "archive", e);
	if (rc != WAL_OK)
		goto fail;
	snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", region);
	opts.user = access;
	opts.password = secret;
	opts.aws_sigv4 = sigv4;
	opts.ca_file = cfg->tls_ca_file;
	opts.tls_verify = cfg->tls_verify;
	opts.timeout = cfg->timeout;
	opts.retries = cfg->retries;
	if ((rc = wal_http_open(&s->http, &opts, e)) != WAL_OK) {
		if (rc == WAL_ECONFIG)
			rc = wal_config_blame(cfg, "tls_ca_file", e);
		goto fail;
	}
	/* one small listing proves the bucket, the credentials and the signing */
	rc = has_children(s, s->prefix, &yes, e);
	if (rc == WAL_ENOENT)
		wal_fail(e, WAL_ENOENT, "s3://%s: bucket does not exist", s->bucket);
	if (rc != WAL_OK)
		goto fail;
	*out = &s->base;
	return WAL_OK;
fail:
	wal_http_close(s->http);
	memset(s->token_hdr, 0, sizeof s->token_hdr);
	free(s);
	return rc;
}

static wal_err s3_put(wal_store *store, const char *path, wal_source *src, wal_error *e)
{
	s3_store *s = (s3_store *)store;
	char key[1100], url[S3_URL_MAX], what[1400], sha256[65];
	wal_http_resp resp;
	wal_stat st;
	wal_err rc;

	if ((rc = wal_store_path_valid(path, e)) != WAL_OK ||
	    (rc = make_key(s, path, key, sizeof key, e)) != WAL_OK ||
	    (rc = object_url(s, key, url, sizeof url, e)) != WAL_OK)
		return rc;
	show_name(s, key, what, sizeof what);
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
		if ((rc != WAL_OK && wal_err_transient(rc)) ||
		    (rc == WAL_OK && (resp.status == 501 || wal_http_status_transient(resp.status)))) {
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

	if ((rc = wal_store_path_valid(path, e)) != WAL_OK ||
	    (rc = make_key(s, path, key, sizeof key, e)) != WAL_OK ||
	    (rc = object_url(s, key, url, sizeof url, e)) != WAL_OK)
		return rc;
	show_name(s, key, what, sizeof what);
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

	if ((rc = wal_store_path_valid(path, e)) != WAL_OK ||
	    (rc = make_key(s, path, key, sizeof key, e)) != WAL_OK ||
	    (rc = object_url(s, key, url, sizeof url, e)) != WAL_OK)
		return rc;
	show_name(s, key, what, sizeof what);
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
	wal_http_close(s->http);
	memset(s->token_hdr, 0, sizeof s->token_hdr);
	free(s);
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
};
