/*
 * Azure Blob Storage store for azure://account/container/prefix archives:
 * each object one block blob written by a single Put Blob (atomic: the
 * blob appears only complete) with If-None-Match: * (never replacing
 * another) and Content-MD5 (the server refuses a body damaged in
 * transit); Get Blob, Get Blob Properties, Delete Blob and List Blobs
 * with continuation markers.  Requests are signed with the account's
 * Shared Key, or carry a SAS token.  The signing and listing forms are
 * in protocol.c.
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/azure/azure.h"
#include "store/http/http.h"
#include "store/store.h"

#define AZ_URL_MAX 8192

typedef struct az_store {
	wal_store base;
	wal_http *http;
	char account[64];
	char container[64];
	char prefix[1024];    /* blob name prefix, no leading or trailing '/'; may be "" */
	char base_url[1024];  /* the container's URL, no trailing '/' */
	char base_path[1024]; /* its encoded URL path, as the signature names it */
	unsigned char key[128];
	int key_len;	   /* 0: no Shared Key (SAS) */
	char *sas;	   /* the SAS query string without '?', or NULL */
	int max_results;   /* 0 = server default (5000) */
	char origin[1200]; /* where the credentials came from, for walcheck */
} az_store;

/* ---- requests ---- */

static wal_err make_name(az_store *s, const char *path, char *out, size_t cap, wal_error *e)
{
	if (snprintf(out, cap, "%s%s%s", s->prefix, s->prefix[0] && path[0] ? "/" : "", path) >=
	    (int)cap)
		return wal_fail(e, WAL_EINVAL, "%s: blob name too long", path);
	return WAL_OK;
}

static void show_name(az_store *s, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "azure://%s/%s/%s", s->account, s->container, name);
}

/* One request to the container (name NULL) or a blob. */
typedef struct az_req {
	const char *method;
	const char *name;	      /* blob name, NULL for the container */
	const char *query;	      /* encoded query string without '?', or NULL */
	const char *const *query_sig; /* the same as "name:value" lines for the signature */
	wal_source *upload;	      /* Put Blob's body, measured */
	const char *md5;	      /* its Content-MD5 (base64) */
	wal_sink *sink;
	const char *what;
} az_req;

static wal_err az_do(az_store *s, const az_req *r, wal_http_resp *resp, wal_error *e)
{
	char *url = NULL, *resource = NULL;
	char enc[3200] = "", date[64], date_hdr[80], md5_hdr[80], auth[256];
	char date_sig[80];
	const char *headers[8];
	const char *ms[4];
	int n = 0, m = 0, put = r->upload != NULL;
	wal_http_req req = { 0 };
	wal_err rc;

	memset(resp, 0, sizeof *resp);
	resp->content_length = -1;
	url = malloc(AZ_URL_MAX);
	resource = malloc(AZ_URL_MAX);
	if (!url || !resource) {
		rc = wal_fail(e, WAL_ENOMEM, "%s: out of memory", r->what);
		goto out;
	}
	if (r->name && (rc = wal_http_encode(r->name, 1, enc, sizeof enc, e)) != WAL_OK) {
		rc = wal_fail(e, WAL_EINVAL, "%s: blob name too long", r->what);
		goto out;
	}
	if (snprintf(url, AZ_URL_MAX, "%s%s%s%s%s%s%s", s->base_url, r->name ? "/" : "", enc,
		     r->query || s->sas ? "?" : "", r->query ? r->query : "",
		     r->query && s->sas ? "&" : "", s->sas ? s->sas : "") >= AZ_URL_MAX ||
	    snprintf(resource, AZ_URL_MAX, "/%s%s%s%s", s->account, s->base_path,
		     r->name ? "/" : "", enc) >= AZ_URL_MAX) {
		rc = wal_fail(e, WAL_EINVAL, "%s: url too long", r->what);
		goto out;
	}
	wal_azure_date(time(NULL), date, sizeof date);
	snprintf(date_hdr, sizeof date_hdr, "x-ms-date: %s", date);
	snprintf(date_sig, sizeof date_sig, "x-ms-date:%s", date);
	if (put) {
		headers[n++] = "x-ms-blob-type: BlockBlob";
		ms[m++] = "x-ms-blob-type:BlockBlob";
		/* create only: an existing blob is never replaced (409 BlobAlreadyExists) */
		headers[n++] = "If-None-Match: *";
		snprintf(md5_hdr, sizeof md5_hdr, "Content-MD5: %s", r->md5);
		headers[n++] = md5_hdr;
	}
	headers[n++] = date_hdr;
	ms[m++] = date_sig;
	headers[n++] = "x-ms-version: " WAL_AZURE_VERSION;
	ms[m++] = "x-ms-version:" WAL_AZURE_VERSION;
	ms[m] = NULL;
	if (s->key_len > 0) {
		wal_azure_sig sig = { .method = r->method,
				      .content_length = put ? r->upload->size : -1,
				      .content_md5 = put ? r->md5 : NULL,
				      .if_none_match = put ? "*" : NULL,
				      .ms_headers = ms,
				      .resource = resource,
				      .query = r->query_sig };

		if ((rc = wal_azure_authorization(s->account, s->key, (size_t)s->key_len, &sig,
						  auth, sizeof auth, e)) != WAL_OK)
			goto out;
		headers[n++] = auth;
	}
	headers[n] = NULL;
	req.method = r->method;
	req.url = url;
	req.what = r->what;
	req.headers = headers;
	req.upload = r->upload;
	req.sink = r->sink;
	rc = wal_http_do(s->http, &req, resp, e);
	memset(auth, 0, sizeof auth);
out:
	if (url) {
		/* it carries the SAS */
		memset(url, 0, AZ_URL_MAX);
		free(url);
	}
	free(resource);
	return rc;
}

/* Get Blob Properties of name: WAL_OK with st filled, WAL_ENOENT, or another error. */
static wal_err head_blob(az_store *s, const char *name, wal_stat *st, wal_error *e)
{
	char what[1400];
	az_req r = { .method = "HEAD", .name = name, .what = what };
	wal_http_resp resp;
	wal_err rc;

	show_name(s, name, what, sizeof what);
	rc = az_do(s, &r, &resp, e);
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

/* Lists the direct children of name prefix lp (ending in '/' or ""), all
 * pages (or the first only); *entries counts them. */
static wal_err list_prefix(az_store *s, const char *lp, int max_results, int one_page,
			   wal_list_fn fn, void *arg, int *entries, wal_error *e)
{
	char *marker = malloc(2048), *query = malloc(8192), *sig_marker = malloc(2100);
	char sig_prefix[1200], sig_max[48], what[1400];
	wal_err rc = WAL_OK;

	*entries = 0;
	if (!marker || !query || !sig_marker) {
		rc = wal_fail(e, WAL_ENOMEM, "azure listing: out of memory");
		goto out;
	}
	marker[0] = '\0';
	snprintf(what, sizeof what, "azure://%s/%s/%s", s->account, s->container, lp);
	snprintf(sig_prefix, sizeof sig_prefix, "prefix:%s", lp);
	snprintf(sig_max, sizeof sig_max, "maxresults:%d", max_results);
	do {
		/* the signature names the parameters sorted, values decoded */
		const char *sig[8];
		az_req r = { .method = "GET", .query = query, .query_sig = sig, .what = what };
		wal_http_resp resp;
		int k = 0;

		sig[k++] = "comp:list";
		sig[k++] = "delimiter:/";
		snprintf(query, 8192, "restype=container&comp=list&delimiter=%%2F");
		if (marker[0]) {
			snprintf(sig_marker, 2100, "marker:%s", marker);
			sig[k++] = sig_marker;
			strcat(query, "&marker=");
			if ((rc = wal_http_encode(marker, 0, query, 8192, e)) != WAL_OK)
				break;
		}
		if (max_results > 0) {
			sig[k++] = sig_max;
			snprintf(query + strlen(query), 8192 - strlen(query), "&maxresults=%d",
				 max_results);
		}
		/* the whole container (an archive without a prefix): no prefix at all */
		if (lp[0])
			sig[k++] = sig_prefix;
		sig[k++] = "restype:container";
		sig[k] = NULL;
		if (lp[0]) {
			strcat(query, "&prefix=");
			if ((rc = wal_http_encode(lp, 0, query, 8192, e)) != WAL_OK)
				break;
		}
		rc = az_do(s, &r, &resp, e);
		if (rc == WAL_OK)
			rc = wal_http_status_err(what, "list", &resp, e);
		if (rc == WAL_OK)
			rc = wal_azure_parse_list(resp.body, resp.body_len, what, lp, fn, arg,
						  marker, 2048, entries, e);
		if (rc == WAL_OK && resp.body_len >= WAL_HTTP_BODY_MAX)
			rc = wal_fail(e, WAL_ENET, "%s: listing page too large", what);
		wal_http_resp_free(&resp);
	} while (rc == WAL_OK && marker[0] && !one_page);
out:
	free(marker);
	free(query);
	free(sig_marker);
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

/* Whether any blob lies under "<name>/": a directory in blob terms. */
static wal_err has_children(az_store *s, const char *name, int *yes, wal_error *e)
{
	char lp[1100];
	int entries = 0;
	wal_err rc;

	snprintf(lp, sizeof lp, "%s%s", name, name[0] ? "/" : "");
	rc = list_prefix(s, lp, 1, 1, count_only, NULL, &entries, e);
	*yes = entries > 0;
	return rc;
}

/* Reads src through once for its length and Content-MD5, and rewinds it. */
static wal_err measure(wal_source *src, char *md5_b64, wal_error *e)
{
	unsigned char *buf = malloc(WAL_IO_CHUNK), digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int64_t total = 0;
	wal_err rc = WAL_OK;

	if (!buf || !md || EVP_DigestInit_ex(md, EVP_md5(), NULL) != 1) {
		rc = wal_fail(e, WAL_ENOMEM, "cannot start an md5 digest");
		goto out;
	}
	for (;;) {
		size_t got = 0;

		if ((rc = src->read(src, buf, WAL_IO_CHUNK, &got, e)) != WAL_OK)
			goto out;
		if (got == 0)
			break;
		EVP_DigestUpdate(md, buf, got);
		total += (int64_t)got;
	}
	EVP_DigestFinal_ex(md, digest, &len);
	EVP_EncodeBlock((unsigned char *)md5_b64, digest, (int)len);
	src->size = total;
	rc = src->rewind(src, e);
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

/* ---- the driver ---- */

/* Account: 3-24 lowercase letters and digits; container: 3-63 of those
 * and '-', starting with a letter or digit, no "--". */
static int valid_name(const char *v, int min, int max, int dash)
{
	int n = (int)strlen(v);

	if (n < min || n > max || v[0] == '-' || v[n - 1] == '-' || strstr(v, "--"))
		return 0;
	for (; *v; v++)
		if (!(islower((unsigned char)*v) || isdigit((unsigned char)*v) ||
		      (dash && *v == '-')))
			return 0;
	return 1;
}

/* Where the archive lies: account, container, prefix and the container's URL. */
static wal_err locate(az_store *s, const wal_url *url, const wal_config *cfg, wal_error *e)
{
	const char *path = url->path ? url->path : "";
	const char *slash = strchr(path, '/');
	const char *ep = cfg->azure_endpoint && cfg->azure_endpoint[0] ? cfg->azure_endpoint : NULL;
	char endpoint[900];
	const char *host, *epath;
	size_t n;

	snprintf(s->account, sizeof s->account, "%s", url->host ? url->host : "");
	n = slash ? (size_t)(slash - path) : strlen(path);
	if (n < sizeof s->container) {
		memcpy(s->container, path, n);
		s->container[n] = '\0';
	}
	snprintf(s->prefix, sizeof s->prefix, "%s", slash ? slash + 1 : "");
	if (!valid_name(s->account, 3, 24, 0)) {
		wal_fail(e, WAL_ECONFIG,
			 "archive: azure account \"%.64s\": want 3 to 24 lowercase letters and "
			 "digits",
			 s->account);
		return wal_config_blame(cfg, "archive", e);
	}
	if (n >= sizeof s->container || !valid_name(s->container, 3, 63, 1)) {
		wal_fail(
			e, WAL_ECONFIG,
			"archive: azure container \"%.*s\": want azure://account/container/prefix, "
			"the container 3 to 63 lowercase letters, digits and dashes",
			(int)(n > 64 ? 64 : n), path);
		return wal_config_blame(cfg, "archive", e);
	}
	if (!ep) {
		snprintf(endpoint, sizeof endpoint, "https://%s.blob.core.windows.net", s->account);
	} else if ((strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) ||
		   strlen(ep) >= sizeof endpoint - 1 || strpbrk(ep, "?# ")) {
		wal_fail(e, WAL_ECONFIG,
			 "azure_endpoint \"%.128s\": want a URL such as "
			 "https://%s.blob.core.windows.net or http://127.0.0.1:10000/%s",
			 ep, s->account, s->account);
		return wal_config_blame(cfg, "azure_endpoint", e);
	} else {
		snprintf(endpoint, sizeof endpoint, "%s", ep);
	}
	n = strlen(endpoint);
	while (n > 0 && endpoint[n - 1] == '/')
		endpoint[--n] = '\0';
	host = strstr(endpoint, "://") + 3;
	epath = strchr(host, '/');
	snprintf(s->base_url, sizeof s->base_url, "%s/%s", endpoint, s->container);
	snprintf(s->base_path, sizeof s->base_path, "%s/%s", epath ? epath : "", s->container);
#ifdef WALARCHIVE_TEST_SEAMS
	/* the tests' build: short pages, to walk a paginated listing */
	const char *max = getenv("WALARCHIVE_AZURE_MAX_RESULTS");
	if (max && atoi(max) > 0 && atoi(max) <= 5000)
		s->max_results = atoi(max);
#endif
	return WAL_OK;
}

/* The Shared Key or the SAS token, from the configuration file only. */
static wal_err credentials(az_store *s, const wal_config *cfg, wal_error *e)
{
	const char *key =
		cfg->azure_account_key && cfg->azure_account_key[0] ? cfg->azure_account_key : NULL;
	const char *sas =
		cfg->azure_sas_token && cfg->azure_sas_token[0] ? cfg->azure_sas_token : NULL;
	const char *name = key ? "azure_account_key" : "azure_sas_token";
	const char *at = wal_config_origin(cfg, name);

	if (key && sas) {
		wal_fail(e, WAL_ECONFIG,
			 "azure://%s/%s: set azure_account_key or azure_sas_token, not both",
			 s->account, s->container);
		return wal_config_blame(cfg, "azure_sas_token", e);
	}
	if (!key && !sas)
		return wal_fail(e, WAL_ECONFIG,
				"azure://%s/%s: no credentials: set azure_account_key or "
				"azure_sas_token in the configuration file",
				s->account, s->container);
	if (key) {
		s->key_len = wal_azure_decode_key(key, s->key, sizeof s->key);
		if (s->key_len <= 0) {
			s->key_len = 0;
			wal_fail(e, WAL_ECONFIG, "azure_account_key: not a base64 account key");
			return wal_config_blame(cfg, "azure_account_key", e);
		}
	} else {
		while (*sas == '?')
			sas++;
		if (!strstr(sas, "sig=") || strpbrk(sas, " #\r\n")) {
			wal_fail(e, WAL_ECONFIG,
				 "azure_sas_token: not a shared access signature (want the query "
				 "string with sv=...&sig=...)");
			return wal_config_blame(cfg, "azure_sas_token", e);
		}
		if (!(s->sas = strdup(sas)))
			return wal_fail(e, WAL_ENOMEM, "azure: out of memory");
	}
	snprintf(s->origin, sizeof s->origin, "%s (%s%s%s)", key ? "shared key" : "sas token", name,
		 at ? ", " : "", at ? at : "");
	return WAL_OK;
}

static void free_store(az_store *s)
{
	wal_http_close(s->http);
	memset(s->key, 0, sizeof s->key);
	if (s->sas) {
		memset(s->sas, 0, strlen(s->sas));
		free(s->sas);
	}
	free(s);
}

static wal_err az_open(wal_store **out, const wal_url *url, const wal_config *cfg, wal_error *e)
{
	wal_http_opts opts = { 0 };
	az_store *s;
	int yes = 0;
	wal_err rc;

	*out = NULL;
	s = calloc(1, sizeof *s);
	if (!s)
		return wal_fail(e, WAL_ENOMEM, "azure: out of memory");
	s->base.ops = &wal_store_azure_ops;
	if ((rc = locate(s, url, cfg, e)) != WAL_OK || (rc = credentials(s, cfg, e)) != WAL_OK)
		goto fail;
	opts.ca_file = cfg->tls_ca_file;
	opts.tls_verify = cfg->tls_verify;
	opts.timeout = cfg->timeout;
	opts.retries = cfg->retries;
	if ((rc = wal_http_open(&s->http, &opts, e)) != WAL_OK) {
		if (rc == WAL_ECONFIG)
			rc = wal_config_blame(cfg, "tls_ca_file", e);
		goto fail;
	}
	/* one small listing proves the container, the credentials and the signing */
	rc = has_children(s, s->prefix, &yes, e);
	if (rc == WAL_ENOENT)
		wal_fail(e, WAL_ENOENT, "azure://%s/%s: container does not exist", s->account,
			 s->container);
	if (rc != WAL_OK)
		goto fail;
	*out = &s->base;
	return WAL_OK;
fail:
	free_store(s);
	return rc;
}

static wal_err object_of(az_store *s, const char *path, char name[1100], char what[1400],
			 wal_error *e)
{
	wal_err rc;

	if ((rc = wal_store_path_valid(path, e)) != WAL_OK ||
	    (rc = make_name(s, path, name, 1100, e)) != WAL_OK)
		return rc;
	show_name(s, name, what, 1400);
	return WAL_OK;
}

static wal_err az_put(wal_store *store, const char *path, wal_source *src, wal_error *e)
{
	az_store *s = (az_store *)store;
	char name[1100], what[1400], md5[32];
	az_req r = { .method = "PUT", .name = name, .upload = src, .md5 = md5, .what = what };
	wal_http_resp resp;
	wal_err rc;

	if ((rc = object_of(s, path, name, what, e)) != WAL_OK ||
	    (rc = measure(src, md5, e)) != WAL_OK)
		return rc;
	/* one Put Blob: the blob appears only complete, and If-None-Match: *
	 * refuses an existing name atomically; a retry after a lost answer
	 * finds its own blob (409), which the archive compares */
	rc = az_do(s, &r, &resp, e);
	if (rc == WAL_OK && (resp.status == 409 || resp.status == 412))
		rc = wal_fail(e, WAL_EEXIST, "%s: already exists", what);
	else if (rc == WAL_OK)
		rc = wal_http_status_err(what, "PUT", &resp, e);
	wal_http_resp_free(&resp);
	return rc;
}

static wal_err az_get(wal_store *store, const char *path, wal_sink *sink, wal_error *e)
{
	az_store *s = (az_store *)store;
	char name[1100], what[1400];
	az_req r = { .method = "GET", .name = name, .sink = sink, .what = what };
	wal_http_resp resp;
	wal_err rc;

	if ((rc = object_of(s, path, name, what, e)) != WAL_OK)
		return rc;
	rc = az_do(s, &r, &resp, e);
	if (rc == WAL_OK)
		rc = wal_http_status_err(what, "GET", &resp, e);
	wal_http_resp_free(&resp);
	return rc;
}

static wal_err az_stat(wal_store *store, const char *path, wal_stat *st, wal_error *e)
{
	az_store *s = (az_store *)store;
	char name[1100];
	wal_error saved;
	int yes = 0;
	wal_err rc;

	if ((rc = wal_store_path_valid(path, e)) != WAL_OK ||
	    (rc = make_name(s, path, name, sizeof name, e)) != WAL_OK)
		return rc;
	rc = head_blob(s, name, st, e);
	if (rc != WAL_ENOENT)
		return rc;
	/* no blob: a "directory" exists while blobs lie under it */
	saved = e ? *e : (wal_error){ 0 };
	if ((rc = has_children(s, name, &yes, e)) != WAL_OK)
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

static wal_err az_list(wal_store *store, const char *dir, wal_list_fn fn, void *arg, wal_error *e)
{
	az_store *s = (az_store *)store;
	char name[1100], lp[1200];
	int entries = 0;
	wal_err rc;

	if (dir[0] && (rc = wal_store_path_valid(dir, e)) != WAL_OK)
		return rc;
	if ((rc = make_name(s, dir, name, sizeof name, e)) != WAL_OK)
		return rc;
	snprintf(lp, sizeof lp, "%s%s", name, name[0] ? "/" : "");
	rc = list_prefix(s, lp, s->max_results, 0, fn, arg, &entries, e);
	/* blob storage has no empty directories: nothing under dir means none */
	if (rc == WAL_OK && entries == 0 && dir[0])
		rc = wal_fail(e, WAL_ENOENT, "azure://%s/%s/%s: no such directory", s->account,
			      s->container, name);
	return rc;
}

static wal_err az_remove(wal_store *store, const char *path, wal_error *e)
{
	az_store *s = (az_store *)store;
	char name[1100], what[1400];
	az_req r = { .method = "DELETE", .name = name, .what = what };
	wal_http_resp resp;
	wal_err rc;

	if ((rc = object_of(s, path, name, what, e)) != WAL_OK)
		return rc;
	rc = az_do(s, &r, &resp, e);
	if (rc == WAL_OK)
		rc = wal_http_status_err(what, "DELETE", &resp, e);
	wal_http_resp_free(&resp);
	if (rc == WAL_ENOENT) {
		/* a retry after a lost answer, a directory, or nothing at all */
		int yes = 0;

		if ((rc = has_children(s, name, &yes, e)) != WAL_OK)
			return rc;
		if (yes)
			return wal_fail(e, WAL_EINVAL, "%s: directory not empty", what);
		return wal_fail(e, WAL_ENOENT, "%s: does not exist", what);
	}
	return rc;
}

static void az_close(wal_store *store)
{
	if (store)
		free_store((az_store *)store);
}

static const char *az_auth(wal_store *store)
{
	return ((az_store *)store)->origin;
}

const wal_store_ops wal_store_azure_ops = {
	.scheme = "azure",
	.open = az_open,
	.put = az_put,
	.get = az_get,
	.stat = az_stat,
	.list = az_list,
	.remove = az_remove,
	.close = az_close,
	.auth = az_auth,
};
