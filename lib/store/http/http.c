/*
 * The libcurl client under the WebDAV and S3 drivers: a reused easy handle
 * (so one run keeps its connection alive), bounded retries, and transport
 * failures turned into typed errors in one line.  The body callbacks live
 * in transfer.c, the status mapping in status.c, the XML walker in xml.c.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store/http/transfer.h"

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void wipe_free(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

wal_err wal_http_open(wal_http **out, const wal_http_opts *opts, wal_error *e)
{
	static int global_done;
	wal_http *h;

	*out = NULL;
	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return wal_fail(e, WAL_ENOMEM, "libcurl: global initialisation failed");
		global_done = 1;
	}
	if (opts->ca_file && access(opts->ca_file, R_OK) != 0)
		return wal_fail_errno(e, WAL_ECONFIG, errno, "tls_ca_file %s", opts->ca_file);
	h = calloc(1, sizeof *h);
	if (!h)
		return wal_fail(e, WAL_ENOMEM, "http: out of memory");
	h->curl = curl_easy_init();
	h->user = dup_or_null(opts->user);
	h->password = dup_or_null(opts->password);
	h->aws_sigv4 = dup_or_null(opts->aws_sigv4);
	h->ca_file = dup_or_null(opts->ca_file);
	if (!h->curl || (opts->user && !h->user) || (opts->password && !h->password) ||
	    (opts->aws_sigv4 && !h->aws_sigv4) || (opts->ca_file && !h->ca_file)) {
		wal_http_close(h);
		return wal_fail(e, WAL_ENOMEM, "http: out of memory");
	}
	h->tls_verify = opts->tls_verify;
	h->timeout = opts->timeout > 0 ? opts->timeout : 30;
	h->retries = opts->retries > 0 ? opts->retries : 0;
	*out = h;
	return WAL_OK;
}

wal_err wal_http_set_auth(wal_http *h, const char *user, const char *password, wal_error *e)
{
	char *new_user = dup_or_null(user);
	char *new_password = dup_or_null(password);

	if ((user && !new_user) || (password && !new_password)) {
		free(new_user);
		wipe_free(new_password);
		return wal_fail(e, WAL_ENOMEM, "http: out of memory");
	}
	free(h->user);
	wipe_free(h->password);
	h->user = new_user;
	h->password = new_password;
	return WAL_OK;
}

int wal_http_sigv4_prefix_order_ok(const char **version)
{
	const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);

	*version = info->version;
	return info->version_num >= 0x080a00;
}

void wal_http_close(wal_http *h)
{
	if (!h)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	free(h->user);
	wipe_free(h->password);
	free(h->aws_sigv4);
	free(h->ca_file);
	free(h);
}

void wal_http_resp_free(wal_http_resp *resp)
{
	free(resp->body);
	memset(resp, 0, sizeof *resp);
	resp->content_length = -1;
}

/* Whether curl gave up on a connection that another attempt may find healthy. */
static int curl_transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return 1;
	default:
		return 0;
	}
}

/* Copies s into out, lower-cased, without a trailing newline or period. */
static void lower_line(const char *s, char *out, size_t cap)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < cap; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[i] = '\0';
	while (i > 0 &&
	       (out[i - 1] == '\n' || out[i - 1] == '\r' || out[i - 1] == '.' || out[i - 1] == ' '))
		out[--i] = '\0';
}

/* The typed error for an attempt curl did not complete: an injected fault, a
 * stall, the source's or sink's own error, or curl's reason in one line. */
static wal_err curl_err(wal_http *h, xfer *x, CURLcode rc, wal_error *e)
{
	const wal_http_req *req = x->req;
	char detail[CURL_ERROR_SIZE + 64];

	if (x->net_fault)
		return wal_fail_errno(e, WAL_ENET, x->net_fault, "%s: connection lost", req->what);
	if (x->idle)
		return wal_fail(e, WAL_ETIMEOUT, "%s: %s timed out after %d s: no data moved",
				req->what, req->method, h->timeout);
	if (x->src_failed || x->sink_failed) {
		if (e)
			*e = x->cb_err;
		return x->cb_err.code ? x->cb_err.code : WAL_EIO;
	}
	lower_line(h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc), detail, sizeof detail);
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
		return wal_fail(e, WAL_EHOSTKEY, "%s: server certificate not trusted: %s%s",
				req->what, detail,
				h->ca_file ? "" : " (set tls_ca_file for a private ca)");
	case CURLE_SSL_CACERT_BADFILE:
		return wal_fail(e, WAL_ECONFIG, "%s: tls_ca_file %s unusable: %s", req->what,
				h->ca_file ? h->ca_file : "(default)", detail);
	case CURLE_OPERATION_TIMEDOUT:
		return wal_fail(e, WAL_ETIMEOUT, "%s: %s timed out after %d s: %s", req->what,
				req->method, h->timeout, detail);
	case CURLE_OUT_OF_MEMORY:
		return wal_fail(e, WAL_ENOMEM, "%s: out of memory", req->what);
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return wal_fail(e, WAL_ECONFIG, "%s: bad url: %s", req->what, detail);
	default:
		return wal_fail(e, WAL_ENET, "%s: %s failed: %s", req->what, req->method, detail);
	}
}

wal_err wal_http_do(wal_http *h, const wal_http_req *req, wal_http_resp *resp, wal_error *e)
{
	int max_attempts = req->no_retry ? 1 : h->retries + 1;
	int attempt;
	wal_err rc = WAL_OK;
	int sink_dirty = 0;

	memset(resp, 0, sizeof *resp);
	resp->content_length = -1;
	for (attempt = 0; attempt < max_attempts; attempt++) {
		struct curl_slist *headers = NULL;
		xfer x = { .h = h, .req = req, .resp = resp };
		CURLcode cc;
		curl_off_t len = -1, filetime = -1;

		/* every attempt sends the body from its first byte */
		if (req->upload && (rc = req->upload->rewind(req->upload, e)) != WAL_OK)
			return rc;
		if (attempt > 0) {
			wal_retry_backoff(attempt);
			if (req->sink && sink_dirty &&
			    (rc = req->sink->reset(req->sink, e)) != WAL_OK)
				return rc;
			sink_dirty = 0;
			free(resp->body);
			memset(resp, 0, sizeof *resp);
			resp->content_length = -1;
		}
		resp->attempts = attempt + 1;
		rc = wal_http_xfer_setup(h, &x, &headers, e);
		if (rc != WAL_OK)
			return rc;
		cc = curl_easy_perform(h->curl);
		curl_slist_free_all(headers);
		sink_dirty |= x.sink_used;
		curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp->status);
		curl_easy_getinfo(h->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
		curl_easy_getinfo(h->curl, CURLINFO_FILETIME_T, &filetime);
		resp->content_length = len;
		resp->mtime = filetime > 0 ? (time_t)filetime : 0;
		if (cc == CURLE_OK) {
			rc = WAL_OK;
			if (!wal_http_status_transient(resp->status) &&
			    !wal_http_body_code_transient(resp))
				return WAL_OK;
			/* a 5xx on the last attempt is still an answer: the caller maps it */
			continue;
		}
		rc = curl_err(h, &x, cc, e);
		/* an injected loss of the connection is retried like a real one */
		if (!x.net_fault && !x.idle &&
		    (x.src_failed || x.sink_failed || !curl_transient(cc)))
			return rc;
		resp->status = 0;
	}
	return rc;
}
