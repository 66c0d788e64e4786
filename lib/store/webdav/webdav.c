/*
 * WebDAV store (RFC 4918) for http:// and https:// archives: an upload is a
 * PUT to a temporary name followed by MOVE with "Overwrite: F", so the final
 * name appears only complete and never replaces an object; listings come
 * from PROPFIND with depth 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/http/http.h"
#include "store/http/xml.h"
#include "store/store.h"

typedef struct dav_store {
	wal_store base;
	wal_http *http;
	char origin[512];     /* "https://host:port" */
	char root_enc[1024];  /* encoded root path, no trailing '/', "" for "/" */
	char root_show[1024]; /* "https://host:port/root" for messages */
} dav_store;

#define DAV_URL_MAX 4096

static const char propfind_body[] =
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	"<D:propfind xmlns:D=\"DAV:\"><D:prop><D:resourcetype/><D:getcontentlength/>"
	"<D:getlastmodified/></D:prop></D:propfind>\n";

/* Full URL of path (relative to the root); a trailing '/' when collection. */
static wal_err object_url(dav_store *s, const char *path, int collection, char *out, size_t cap,
			  wal_error *e)
{
	size_t n;

	if (snprintf(out, cap, "%s%s/", s->origin, s->root_enc) >= (int)cap)
		return wal_fail(e, WAL_EINVAL, "%s/%s: url too long", s->root_show, path);
	if (wal_http_encode(path, 1, out, cap, e) != WAL_OK)
		return wal_fail(e, WAL_EINVAL, "%s/%s: url too long", s->root_show, path);
	n = strlen(out);
	if (collection && path[0] && n + 1 < cap) {
		out[n++] = '/';
		out[n] = '\0';
	}
	return WAL_OK;
}

static void show_name(dav_store *s, const char *path, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s%s", s->root_show, path[0] ? "/" : "", path);
}

/* One request with no body to send or receive; resp must be freed. */
static wal_err simple(dav_store *s, const char *method, const char *url, const char *what,
		      const char *const *headers, wal_http_resp *resp, wal_error *e)
{
	wal_http_req req = { .method = method, .url = url, .what = what, .headers = headers };

	return wal_http_do(s->http, &req, resp, e);
}

/* ---- PROPFIND ---- */

typedef struct dav_entry {
	char href[2048];
	wal_stat st;
} dav_entry;

typedef struct propfind_ctx {
	dav_entry cur;
	int (*emit)(void *arg, const dav_entry *ent, wal_error *e);
	void *arg;
	int count;
} propfind_ctx;

static int ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static wal_err propfind_xml(void *arg, const char *path, const char *text, wal_error *e)
{
	propfind_ctx *ctx = arg;

	if (ends_with(path, "multistatus/response/href")) {
		snprintf(ctx->cur.href, sizeof ctx->cur.href, "%s", text);
	} else if (ends_with(path, "/prop/getcontentlength")) {
		if (text[0])
			ctx->cur.st.size = strtoll(text, NULL, 10);
	} else if (ends_with(path, "/prop/getlastmodified")) {
		ctx->cur.st.mtime = wal_http_parse_date(text);
	} else if (ends_with(path, "/prop/resourcetype/collection")) {
		ctx->cur.st.is_dir = 1;
	} else if (ends_with(path, "multistatus/response")) {
		wal_err rc = WAL_OK;

		ctx->count++;
		if (ctx->emit)
			rc = (wal_err)ctx->emit(ctx->arg, &ctx->cur, e);
		memset(&ctx->cur, 0, sizeof ctx->cur);
		ctx->cur.st.size = -1;
		return rc;
	}
	return WAL_OK;
}

/* PROPFIND url with depth; calls emit per response. */
static wal_err propfind(dav_store *s, const char *url, const char *what, int depth,
			int (*emit)(void *, const dav_entry *, wal_error *), void *arg,
			wal_error *e)
{
	const char *headers[] = { depth ? "Depth: 1" : "Depth: 0",
				  "Content-Type: application/xml; charset=utf-8", NULL };
	wal_http_req req = { .method = "PROPFIND",
			     .url = url,
			     .what = what,
			     .headers = headers,
			     .body = propfind_body,
			     .body_len = sizeof propfind_body - 1 };
	wal_http_resp resp;
	propfind_ctx ctx;
	wal_err rc;

	rc = wal_http_do(s->http, &req, &resp, e);
	if (rc == WAL_OK && resp.status != 207) {
		if (resp.status >= 200 && resp.status < 300)
			rc = wal_fail(e, WAL_EUNSUPPORTED,
				      "%s: PROPFIND answered %ld, not 207: not a webdav server",
				      what, resp.status);
		else
			rc = wal_http_status_err(what, "PROPFIND", &resp, e);
	}
	if (rc == WAL_OK) {
		memset(&ctx, 0, sizeof ctx);
		ctx.cur.st.size = -1;
		ctx.emit = emit;
		ctx.arg = arg;
		rc = wal_xml_parse(resp.body, resp.body_len, what, propfind_xml, &ctx, e);
		if (rc == WAL_OK && ctx.count == 0)
			rc = wal_fail(e, WAL_ENET, "%s: PROPFIND answer lists nothing", what);
	}
	wal_http_resp_free(&resp);
	return rc;
}

static int take_first(void *arg, const dav_entry *ent, wal_error *e)
{
	dav_entry *out = arg;

	(void)e;
	if (!out->href[0])
		*out = *ent;
	return WAL_OK;
}

/* The decoded path part of an href (absolute URL or path), no trailing '/'. */
static void href_path(const char *href, char *out, size_t cap)
{
	const char *p = href;
	size_t n;

	if (strncmp(p, "http://", 7) == 0 || strncmp(p, "https://", 8) == 0) {
		p = strstr(p, "://") + 3;
		p = strchr(p, '/');
		if (!p)
			p = "/";
	}
	snprintf(out, cap, "%s", p);
	wal_http_decode(out);
	n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
}

/* ---- the driver ---- */

static wal_err dav_stat(wal_store *store, const char *path, wal_stat *st, wal_error *e)
{
	dav_store *s = (dav_store *)store;
	char url[DAV_URL_MAX], what[2200];
	dav_entry ent;
	wal_err rc;

	if (path[0] && wal_store_path_valid(path, e) != WAL_OK)
		return WAL_EINVAL;
	show_name(s, path, what, sizeof what);
	if ((rc = object_url(s, path, 0, url, sizeof url, e)) != WAL_OK)
		return rc;
	memset(&ent, 0, sizeof ent);
	rc = propfind(s, url, what, 0, take_first, &ent, e);
	if (rc == WAL_OK)
		*st = ent.st;
	return rc;
}

static wal_err dav_open(wal_store **out, const wal_url *url, const wal_config *cfg, wal_error *e)
{
	dav_store *s;
	wal_http_opts opts = {
		.user = cfg->http_user ? cfg->http_user : url->user,
		.password = cfg->http_password,
		.ca_file = cfg->tls_ca_file,
		.tls_verify = cfg->tls_verify,
		.timeout = cfg->timeout,
		.retries = cfg->retries,
	};
	int ipv6 = strchr(url->host, ':') != NULL;
	wal_stat st;
	wal_err rc;

	*out = NULL;
	if (opts.password && !opts.user) {
		wal_fail(e, WAL_ECONFIG, "http_password is set but http_user is not");
		return wal_config_blame(cfg, "http_password", e);
	}
	/* wal_config_check warns about this; a setting that asks for refusal
	 * refuses here too, whoever opens the store */
	if (opts.password && strcmp(url->scheme, "http") == 0 &&
	    cfg->http_cleartext_auth == WAL_CLEARTEXT_REFUSE) {
		char shown[512];
		wal_url_redact(cfg->archive, shown, sizeof shown);
		wal_fail(e, WAL_ECONFIG,
			 "%s: the password would be sent in clear "
			 "(basic authentication over http://) and http_cleartext_auth = refuse; "
			 "use https://",
			 shown);
		return wal_config_blame(cfg, "archive", e);
	}
	s = calloc(1, sizeof *s);
	if (!s)
		return wal_fail(e, WAL_ENOMEM, "%s: out of memory", url->host);
	s->base.ops = &wal_store_webdav_ops;
	if (url->port)
		snprintf(s->origin, sizeof s->origin, "%s://%s%s%s:%d", url->scheme,
			 ipv6 ? "[" : "", url->host, ipv6 ? "]" : "", url->port);
	else
		snprintf(s->origin, sizeof s->origin, "%s://%s%s%s", url->scheme, ipv6 ? "[" : "",
			 url->host, ipv6 ? "]" : "");
	if (strcmp(url->path, "/") != 0 && url->path[0]) {
		if (url->path[0] != '/')
			strcpy(s->root_enc, "/");
		if (wal_http_encode(url->path, 1, s->root_enc, sizeof s->root_enc, e) != WAL_OK) {
			free(s);
			wal_fail(e, WAL_ECONFIG, "archive url path too long");
			return wal_config_blame(cfg, "archive", e);
		}
	}
	snprintf(s->root_show, sizeof s->root_show, "%s%s%s", s->origin,
		 url->path[0] == '/' ? "" : "/", strcmp(url->path, "/") ? url->path : "");
	rc = wal_http_open(&s->http, &opts, e);
	if (rc == WAL_ECONFIG)
		rc = wal_config_blame(cfg, "tls_ca_file", e);
	if (rc == WAL_OK)
		rc = dav_stat(&s->base, "", &st, e);
	if (rc == WAL_OK && !st.is_dir)
		rc = wal_fail(e, WAL_ENOENT, "%s: archive root is not a collection", s->root_show);
	else if (rc == WAL_ENOENT)
		wal_fail(e, WAL_ENOENT, "%s: archive root does not exist (create it with MKCOL)",
			 s->root_show);
	if (rc != WAL_OK) {
		wal_http_close(s->http);
		free(s);
		return rc;
	}
	*out = &s->base;
	return WAL_OK;
}

/* MKCOL every parent of path, from the top; existing ones are fine. */
static wal_err make_parents(dav_store *s, const char *path, wal_error *e)
{
	char dir[1024], url[DAV_URL_MAX], what[2200];
	const char *slash;
	wal_err rc = WAL_OK;

	for (slash = strchr(path, '/'); slash && rc == WAL_OK; slash = strchr(slash + 1, '/')) {
		wal_http_resp resp;

		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
		show_name(s, dir, what, sizeof what);
		if ((rc = object_url(s, dir, 1, url, sizeof url, e)) != WAL_OK)
			break;
		rc = simple(s, "MKCOL", url, what, NULL, &resp, e);
		/* 405: it exists already */
		if (rc == WAL_OK && resp.status != 201 && resp.status != 405)
			rc = wal_http_status_err(what, "MKCOL", &resp, e);
		wal_http_resp_free(&resp);
	}
	return rc;
}

static wal_err put_tmp(dav_store *s, const char *url, const char *what, wal_source *src,
		       wal_http_resp *resp, wal_error *e)
{
	wal_http_req req = { .method = "PUT", .url = url, .what = what, .upload = src };
	return wal_http_do(s->http, &req, resp, e);
}

static void delete_quietly(dav_store *s, const char *url, const char *what)
{
	wal_http_resp resp;
	wal_error ignored;
	wal_http_req req = { .method = "DELETE", .url = url, .what = what, .no_retry = 1 };

	wal_http_do(s->http, &req, &resp, &ignored);
	wal_http_resp_free(&resp);
}

static wal_err dav_put(wal_store *store, const char *path, wal_source *src, wal_error *e)
{
	dav_store *s = (dav_store *)store;
	char tmp_path[1024], tmp_url[DAV_URL_MAX], url[DAV_URL_MAX], what[2200];
	char dest_hdr[DAV_URL_MAX + 16];
	const char *move_headers[] = { dest_hdr, "Overwrite: F", NULL };
	wal_http_resp resp = { 0 };
	wal_err rc;
	int tmp_made = 0;

	if ((rc = wal_store_path_valid(path, e)) != WAL_OK)
		return rc;
	show_name(s, path, what, sizeof what);
	/* a source of unknown size (compressing as it goes) is sent chunked,
	 * in one pass: nginx and Apache accept chunked PUT bodies */
	wal_store_tmp_name(path, tmp_path, sizeof tmp_path);
	if ((rc = object_url(s, tmp_path, 0, tmp_url, sizeof tmp_url, e)) != WAL_OK ||
	    (rc = object_url(s, path, 0, url, sizeof url, e)) != WAL_OK)
		return rc;
	snprintf(dest_hdr, sizeof dest_hdr, "Destination: %s", url);

	rc = put_tmp(s, tmp_url, what, src, &resp, e);
	if (rc == WAL_OK && (resp.status == 409 || resp.status == 404) && strchr(path, '/')) {
		/* servers without create_full_put_path want the collections first */
		wal_http_resp_free(&resp);
		rc = make_parents(s, path, e);
		if (rc == WAL_OK)
			rc = put_tmp(s, tmp_url, what, src, &resp, e);
	}
	if (rc == WAL_OK && resp.status != 201 && resp.status != 204 && resp.status != 200)
		rc = wal_http_status_err(what, "PUT", &resp, e);
	wal_http_resp_free(&resp);
	if (rc != WAL_OK)
		goto out;
	tmp_made = 1;

	rc = simple(s, "MOVE", tmp_url, what, move_headers, &resp, e);
	if (rc != WAL_OK)
		goto out;
	if (resp.status == 201 || resp.status == 204) {
		tmp_made = 0;
	} else if (resp.status == 412) {
		rc = wal_fail(e, WAL_EEXIST, "%s: already exists", what);
	} else if (resp.status == 404 && resp.attempts > 1) {
		/* an earlier attempt may have moved it before its answer was lost:
		 * the caller compares what is there now */
		tmp_made = 0;
		rc = wal_fail(e, WAL_EEXIST, "%s: already exists (after a retried move)", what);
	} else {
		rc = wal_http_status_err(what, "MOVE", &resp, e);
	}
	wal_http_resp_free(&resp);
out:
	if (tmp_made)
		delete_quietly(s, tmp_url, what);
	return rc;
}

static wal_err dav_get(wal_store *store, const char *path, wal_sink *sink, wal_error *e)
{
	dav_store *s = (dav_store *)store;
	char url[DAV_URL_MAX], what[2200];
	wal_http_req req = { .method = "GET", .url = url, .what = what, .sink = sink };
	wal_http_resp resp;
	wal_err rc;

	if ((rc = wal_store_path_valid(path, e)) != WAL_OK)
		return rc;
	show_name(s, path, what, sizeof what);
	if ((rc = object_url(s, path, 0, url, sizeof url, e)) != WAL_OK)
		return rc;
	rc = wal_http_do(s->http, &req, &resp, e);
	if (rc == WAL_OK)
		rc = wal_http_status_err(what, "GET", &resp, e);
	wal_http_resp_free(&resp);
	return rc;
}

typedef struct list_ctx {
	char self[2048]; /* decoded path of the listed collection */
	wal_list_fn fn;
	void *arg;
} list_ctx;

static int list_emit(void *arg, const dav_entry *ent, wal_error *e)
{
	list_ctx *ctx = arg;
	char path[2048];
	const char *name;

	href_path(ent->href, path, sizeof path);
	if (strcmp(path, ctx->self) == 0)
		return WAL_OK;
	name = strrchr(path, '/');
	name = name ? name + 1 : path;
	if (!name[0])
		return WAL_OK;
	return ctx->fn(ctx->arg, name, &ent->st, e);
}

static wal_err dav_list(wal_store *store, const char *dir, wal_list_fn fn, void *arg, wal_error *e)
{
	dav_store *s = (dav_store *)store;
	char url[DAV_URL_MAX], what[2200];
	list_ctx ctx;
	const char *p;
	wal_err rc;

	if (dir[0] && (rc = wal_store_path_valid(dir, e)) != WAL_OK)
		return rc;
	show_name(s, dir, what, sizeof what);
	if ((rc = object_url(s, dir, 1, url, sizeof url, e)) != WAL_OK)
		return rc;
	ctx.fn = fn;
	ctx.arg = arg;
	p = strstr(url, "://") + 3;
	p = strchr(p, '/');
	href_path(p ? p : "/", ctx.self, sizeof ctx.self);
	return propfind(s, url, what, 1, list_emit, &ctx, e);
}

static wal_err count_child(void *arg, const char *name, const wal_stat *st, wal_error *e)
{
	(void)name;
	(void)st;
	(void)e;
	(*(int *)arg)++;
	return WAL_OK;
}

static wal_err dav_remove(wal_store *store, const char *path, wal_error *e)
{
	dav_store *s = (dav_store *)store;
	char url[DAV_URL_MAX], what[2200];
	wal_http_resp resp;
	wal_err rc;

	if ((rc = wal_store_path_valid(path, e)) != WAL_OK)
		return rc;
	show_name(s, path, what, sizeof what);
	if ((rc = object_url(s, path, 0, url, sizeof url, e)) != WAL_OK)
		return rc;
	rc = simple(s, "DELETE", url, what, NULL, &resp, e);
	if (rc == WAL_OK && resp.status == 409) {
		/* a collection: nginx wants its URL with the trailing '/', and
		 * would delete the whole tree, so only an empty one goes */
		int children = 0;

		wal_http_resp_free(&resp);
		rc = dav_list(store, path, count_child, &children, e);
		if (rc == WAL_OK && children)
			return wal_fail(e, WAL_EINVAL, "%s: directory not empty", what);
		if (rc == WAL_OK && (rc = object_url(s, path, 1, url, sizeof url, e)) == WAL_OK)
			rc = simple(s, "DELETE", url, what, NULL, &resp, e);
		if (rc != WAL_OK)
			return rc;
	}
	if (rc == WAL_OK && resp.status == 404 && resp.attempts > 1)
		resp.status = 204; /* an earlier attempt removed it */
	if (rc == WAL_OK)
		rc = wal_http_status_err(what, "DELETE", &resp, e);
	wal_http_resp_free(&resp);
	return rc;
}

static void dav_close(wal_store *store)
{
	dav_store *s = (dav_store *)store;

	if (!s)
		return;
	wal_http_close(s->http);
	free(s);
}

const wal_store_ops wal_store_webdav_ops = {
	.scheme = "http, https",
	.open = dav_open,
	.put = dav_put,
	.get = dav_get,
	.stat = dav_stat,
	.list = dav_list,
	.remove = dav_remove,
	.close = dav_close,
};
