/*
 * S3 store for s3://bucket/prefix archives (AWS, and S3-compatible servers
 * such as Ceph RGW, MinIO and Swift's s3api): one PUT per object carrying
 * the payload's SHA-256, GET, HEAD, DELETE and ListObjectsV2, signed with
 * AWS Signature V4 by libcurl.  The requests are in request.c, the URL
 * and listing forms in protocol.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/http/http.h"
#include "store/s3/credentials.h"
#include "store/s3/s3.h"
#include "store/s3/driver.h"
#include "store/store.h"

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
		rc = wal_s3_use_creds(s, e);
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
	rc = wal_s3_has_children(s, s->prefix, &yes, e);
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
	    (rc = wal_s3_make_key(s, path, key, 1100, e)) != WAL_OK ||
	    (rc = wal_s3_object_url(s, key, url, S3_URL_MAX, e)) != WAL_OK)
		return rc;
	wal_s3_show_name(s, key, what, 1400);
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
	rc = wal_s3_head_key(s, key, &st, e);
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
		rc = wal_s3_do_once(s, "PUT", url, what, sha256, "If-None-Match: *", src, &resp, e);
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
			rc = wal_s3_do(s, "PUT", url, what, sha256, NULL, src, NULL, &resp, e);
		}
	} else {
		rc = wal_s3_do(s, "PUT", url, what, sha256, NULL, src, NULL, &resp, e);
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
	rc = wal_s3_do(s, "GET", url, what, NULL, NULL, NULL, sink, &resp, e);
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
	    (rc = wal_s3_make_key(s, path, key, sizeof key, e)) != WAL_OK)
		return rc;
	rc = wal_s3_head_key(s, key, st, e);
	if (rc != WAL_ENOENT)
		return rc;
	/* no object: a "directory" exists while keys lie under it */
	saved = e ? *e : (wal_error){ 0 };
	rc = wal_s3_has_children(s, key, &yes, e);
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
	if ((rc = wal_s3_make_key(s, dir, key, sizeof key, e)) != WAL_OK)
		return rc;
	snprintf(lp, sizeof lp, "%s%s", key, key[0] ? "/" : "");
	rc = wal_s3_list_prefix(s, lp, s->max_keys, 0, fn, arg, &entries, e);
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
	rc = wal_s3_head_key(s, key, &st, e);
	if (rc == WAL_ENOENT) {
		int yes = 0;

		/* a directory: it vanishes with its last key; a non-empty one stays */
		rc = wal_s3_has_children(s, key, &yes, e);
		if (rc != WAL_OK)
			return rc;
		if (yes)
			return wal_fail(e, WAL_EINVAL, "%s: directory not empty", what);
		return wal_fail(e, WAL_ENOENT, "%s: does not exist", what);
	}
	if (rc != WAL_OK)
		return rc;
	rc = wal_s3_do(s, "DELETE", url, what, NULL, NULL, NULL, NULL, &resp, e);
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
