/*
 * The libcurl layer under the WebDAV and S3 drivers: a reused easy handle
 * (so one run keeps its connection alive), timeouts and TLS settings on
 * every request, bounded retries, and typed errors with the server's own
 * error code in one line.  Also the XML helpers (expat) both drivers parse
 * listings and error bodies with.
 */
#include "sys/fileio.h"
#include "store/http/http.h"

#include <ctype.h>
#include <errno.h>
#include <curl/curl.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#ifndef WALARCHIVE_VERSION
#define WALARCHIVE_VERSION "0"
#endif

struct wal_http {
	CURL *curl;
	char *user;
	char *password;
	char *aws_sigv4;
	char *ca_file;
	int tls_verify;
	int timeout;
	int retries;
	char errbuf[CURL_ERROR_SIZE];
};

/* State of one attempt, seen by the curl callbacks. */
typedef struct xfer {
	wal_http *h;
	const wal_http_req *req;
	wal_http_resp *resp;
	size_t body_cap;
	const char *mem_pos;       /* in-memory request body still to send */
	size_t mem_left;
	int sink_used;             /* bytes went to req->sink in this attempt */
	int src_failed;
	int sink_failed;
	int net_fault;             /* errno injected by the fault seam, 0 if none */
	curl_off_t moved;          /* bytes sent and received so far */
	struct timespec last_move; /* when that count last changed */
	int idle;                  /* abandoned: nothing moved for timeout seconds */
	wal_error cb_err;          /* the source's or sink's error */
} xfer;

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

static int status_ok(long status)
{
	return status >= 200 && status < 300;
}

static void body_append(xfer *x, const char *data, size_t len)
{
	wal_http_resp *r = x->resp;

	if (r->body_len + len > WAL_HTTP_BODY_MAX)
		len = WAL_HTTP_BODY_MAX - r->body_len;
	if (len == 0)
		return;
	if (r->body_len + len + 1 > x->body_cap) {
		size_t cap = x->body_cap ? x->body_cap : 4096;
		char *grown;

		while (cap < r->body_len + len + 1)
			cap *= 2;
		grown = realloc(r->body, cap);
		if (!grown)
			return;        /* the body is informative only: keep what fits */
		r->body = grown;
		x->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	xfer *x = arg;
	size_t len = size * nmemb;
	long status = 0;

	/* the fault seam: data received, as if the connection broke here */
	if ((x->net_fault = wal_sys_fault(WAL_SYS_NET_RECV)) != 0)
		return 0;
	curl_easy_getinfo(x->h->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status_ok(status) && x->req->sink) {
		if (x->req->sink->write(x->req->sink, data, len, &x->cb_err) != WAL_OK) {
			x->sink_failed = 1;
			return 0;      /* makes curl stop with CURLE_WRITE_ERROR */
		}
		x->sink_used = 1;
		return len;
	}
	body_append(x, data, len);
	return len;
}

/* the fault seam on response headers: a reply lost after the server acted */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	xfer *x = arg;
	(void)data;
	if ((x->net_fault = wal_sys_fault(WAL_SYS_NET_RECV)) != 0)
		return 0;
	return size * nmemb;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	xfer *x = arg;
	size_t cap = size * nitems;
	size_t got = 0;

	/* the fault seam: data sent, as if the connection broke here */
	if ((x->net_fault = wal_sys_fault(WAL_SYS_NET_SEND)) != 0)
		return CURL_READFUNC_ABORT;
	if (x->req->upload) {
		if (x->req->upload->read(x->req->upload, buf, cap, &got, &x->cb_err) != WAL_OK) {
			x->src_failed = 1;
			return CURL_READFUNC_ABORT;
		}
		return got;
	}
	got = x->mem_left < cap ? x->mem_left : cap;
	memcpy(buf, x->mem_pos, got);
	x->mem_pos += got;
	x->mem_left -= got;
	return got;
}

/* curl asks to start the body again (e.g. after a 100-continue refusal). */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
	xfer *x = arg;

	if (offset != 0 || origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	if (x->req->upload) {
		if (x->req->upload->rewind(x->req->upload, &x->cb_err) != WAL_OK) {
			x->src_failed = 1;
			return CURL_SEEKFUNC_FAIL;
		}
	} else {
		x->mem_pos = x->req->body;
		x->mem_left = x->req->body_len;
	}
	return CURL_SEEKFUNC_OK;
}

/* curl calls this at least once a second: a transfer that has moved no
 * byte for timeout seconds is abandoned (CURLOPT_LOW_SPEED_TIME averages
 * over the last five seconds, so it fires several seconds late). */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	xfer *x = arg;
	struct timespec now;

	(void)dltotal;
	(void)ultotal;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (x->last_move.tv_sec == 0 || dlnow + ulnow != x->moved) {
		x->moved = dlnow + ulnow;
		x->last_move = now;
		return 0;
	}
	if ((now.tv_sec - x->last_move.tv_sec) * 1000 + (now.tv_nsec - x->last_move.tv_nsec) / 1000000 >=
	    (long)x->h->timeout * 1000) {
		x->idle = 1;
		return 1;
	}
	return 0;
}

/* Sets every option of one attempt on the (reset) handle. */
static wal_err setup(wal_http *h, xfer *x, struct curl_slist **headers, wal_error *e)
{
	const wal_http_req *req = x->req;
	CURL *c = h->curl;
	struct curl_slist *list = NULL;
	const char *const *hdr;

	curl_easy_reset(c);    /* keeps the connection cache: keep-alive across requests */
	h->errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "walarchive/" WALARCHIVE_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)h->timeout);
	/* a transfer that moves less than one byte a second for timeout seconds
	 * (including a server that never answers) is abandoned */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)h->timeout);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->tls_verify ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->tls_verify ? 2L : 0L);
	if (h->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	if (h->user) {
		/* separate user and password: S3 keys may contain ':' */
		curl_easy_setopt(c, CURLOPT_USERNAME, h->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, h->password ? h->password : "");
		if (h->aws_sigv4)
			curl_easy_setopt(c, CURLOPT_AWS_SIGV4, h->aws_sigv4);
		else
			curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	}
	curl_easy_setopt(c, CURLOPT_FILETIME, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);

	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (req->upload || req->body) {
		int64_t size = req->upload ? req->upload->size : (int64_t)req->body_len;

		x->mem_pos = req->body;
		x->mem_left = req->body_len;
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		/* an unknown size goes out with chunked transfer encoding */
		if (size >= 0)
			curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
		if (strcmp(req->method, "PUT") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	} else if (strcmp(req->method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	}

	for (hdr = req->headers; hdr && *hdr; hdr++) {
		struct curl_slist *more = curl_slist_append(list, *hdr);

		if (!more) {
			curl_slist_free_all(list);
			return wal_fail(e, WAL_ENOMEM, "%s: out of memory", req->what);
		}
		list = more;
	}
	if (list)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
	*headers = list;
	return WAL_OK;
}

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
	while (i > 0 && (out[i - 1] == '\n' || out[i - 1] == '\r' || out[i - 1] == '.' ||
			 out[i - 1] == ' '))
		out[--i] = '\0';
}

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

/* S3 answers a body damaged in transit with a 400 that a resend may cure. */
static int body_code_transient(const wal_http_resp *resp)
{
	static const char *const codes[] = {
		"<Code>BadDigest<", "<Code>XAmzContentSHA256Mismatch<", "<Code>RequestTimeout<",
		"<Code>IncompleteBody<", NULL
	};
	int i;

	if (resp->status != 400 || !resp->body)
		return 0;
	for (i = 0; codes[i]; i++)
		if (strstr(resp->body, codes[i]))
			return 1;
	return 0;
}

int wal_http_status_transient(long status)
{
	return status >= 500 || status == 429 || status == 408;
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
		rc = setup(h, &x, &headers, e);
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
			if (!wal_http_status_transient(resp->status) && !body_code_transient(resp))
				return WAL_OK;
			/* a 5xx on the last attempt is still an answer: the caller maps it */
			continue;
		}
		rc = curl_err(h, &x, cc, e);
		/* an injected loss of the connection is retried like a real one */
		if (!x.net_fault && !x.idle && (x.src_failed || x.sink_failed || !curl_transient(cc)))
			return rc;
		resp->status = 0;
	}
	return rc;
}

static const char *reason(long status)
{
	switch (status) {
	case 400: return "bad request";
	case 401: return "unauthorized";
	case 403: return "forbidden";
	case 404: return "not found";
	case 405: return "method not allowed";
	case 408: return "request timeout";
	case 409: return "conflict";
	case 410: return "gone";
	case 411: return "length required";
	case 412: return "precondition failed";
	case 413: return "payload too large";
	case 415: return "unsupported media type";
	case 416: return "range not satisfiable";
	case 423: return "locked";
	case 429: return "too many requests";
	case 500: return "internal server error";
	case 501: return "not implemented";
	case 502: return "bad gateway";
	case 503: return "service unavailable";
	case 504: return "gateway timeout";
	case 507: return "insufficient storage";
	default: return "unexpected status";
	}
}

wal_err wal_http_status_err(const char *what, const char *method, const wal_http_resp *resp,
			    wal_error *e)
{
	char text[384];
	wal_err code;
	long st = resp->status;

	if (status_ok(st))
		return WAL_OK;
	wal_http_error_text(resp->body, resp->body_len, text, sizeof text);
	if (st == 404 || st == 410)
		code = WAL_ENOENT;
	else if (st == 401 || st == 403)
		code = WAL_EAUTH;
	else if (st == 412)
		code = WAL_EEXIST;
	else if (st == 405 || st == 501)
		code = WAL_EUNSUPPORTED;
	else if (st == 507)
		code = WAL_ENOSPC;
	else if (st == 400 && resp->body &&
		 (strstr(resp->body, "<Code>AuthorizationHeaderMalformed<") ||
		  strstr(resp->body, "<Code>InvalidRegion<") ||
		  strstr(resp->body, "<Code>InvalidBucketName<")))
		code = WAL_ECONFIG;    /* region or bucket settings */
	else if (wal_http_status_transient(st) || body_code_transient(resp))
		code = WAL_ENET;
	else
		code = WAL_EINVAL;
	if (code == WAL_EAUTH && !text[0])
		snprintf(text, sizeof text, "check the user name and password");
	return wal_fail(e, code, "%s: %s failed: %ld %s%s%s", what, method, st, reason(st),
			text[0] ? ": " : "", text);
}

wal_err wal_http_encode(const char *s, int keep_slash, char *out, size_t cap, wal_error *e)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(out);

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		int plain = isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
			    (keep_slash && ch == '/');

		if (n + (plain ? 1 : 3) >= cap)
			return wal_fail(e, WAL_EINVAL, "url too long");
		if (plain) {
			out[n++] = (char)ch;
		} else {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	out[n] = '\0';
	return WAL_OK;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

void wal_http_decode(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '%' && hexval((unsigned char)s[1]) >= 0 &&
		    hexval((unsigned char)s[2]) >= 0) {
			*w++ = (char)(hexval((unsigned char)s[1]) * 16 + hexval((unsigned char)s[2]));
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

time_t wal_http_parse_date(const char *text)
{
	time_t t = curl_getdate(text, NULL);

	return t > 0 ? t : 0;
}

/* ---- XML ---- */

typedef struct xml_state {
	XML_Parser parser;
	wal_xml_fn fn;
	void *arg;
	wal_error *e;
	wal_err rc;
	char path[1024];
	size_t path_len;
	size_t path_starts[64];    /* path_len before each open element */
	size_t text_starts[64];
	int depth;
	char *text;
	size_t text_len;
	size_t text_cap;
	int refused;               /* a DTD entity declaration was seen */
} xml_state;

static const char *local_name(const char *name)
{
	const char *sep = strrchr(name, '\x01');

	return sep ? sep + 1 : name;
}

static void xml_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	xml_state *st = arg;
	const char *local = local_name(name);
	size_t add = strlen(local) + (st->path_len ? 1 : 0);

	(void)attrs;
	if (st->depth >= 64 || st->path_len + add + 1 > sizeof st->path) {
		st->rc = wal_fail(st->e, WAL_ENET, "xml nested too deeply");
		XML_StopParser(st->parser, XML_FALSE);
		return;
	}
	st->path_starts[st->depth] = st->path_len;
	st->text_starts[st->depth] = st->text_len;
	st->depth++;
	if (st->path_len)
		st->path[st->path_len++] = '/';
	memcpy(st->path + st->path_len, local, strlen(local) + 1);
	st->path_len += strlen(local);
}

static void xml_chars(void *arg, const XML_Char *s, int len)
{
	xml_state *st = arg;

	if (st->text_len + (size_t)len + 1 > st->text_cap) {
		size_t cap = st->text_cap ? st->text_cap : 256;
		char *grown;

		while (cap < st->text_len + (size_t)len + 1)
			cap *= 2;
		grown = realloc(st->text, cap);
		if (!grown) {
			st->rc = wal_fail(st->e, WAL_ENOMEM, "xml: out of memory");
			XML_StopParser(st->parser, XML_FALSE);
			return;
		}
		st->text = grown;
		st->text_cap = cap;
	}
	memcpy(st->text + st->text_len, s, (size_t)len);
	st->text_len += (size_t)len;
	st->text[st->text_len] = '\0';
}

static void xml_end(void *arg, const XML_Char *name)
{
	xml_state *st = arg;
	size_t start, end;
	char saved;
	wal_err rc;

	(void)name;
	if (st->depth == 0)
		return;
	st->depth--;
	start = st->text_starts[st->depth];
	end = st->text_len;
	while (start < end && isspace((unsigned char)st->text[start]))
		start++;
	while (end > start && isspace((unsigned char)st->text[end - 1]))
		end--;
	if (!st->text) {
		static char empty[1];

		rc = st->fn(st->arg, st->path, empty, st->e);
	} else {
		saved = st->text[end];
		st->text[end] = '\0';
		rc = st->fn(st->arg, st->path, st->text + start, st->e);
		st->text[end] = saved;
	}
	/* the element's text is not part of its parent's */
	st->text_len = st->text_starts[st->depth];
	if (st->text)
		st->text[st->text_len] = '\0';
	st->path_len = st->path_starts[st->depth];
	st->path[st->path_len] = '\0';
	if (rc != WAL_OK) {
		st->rc = rc;
		XML_StopParser(st->parser, XML_FALSE);
	}
}

static void xml_entity(void *arg, const XML_Char *name, int is_param, const XML_Char *value,
		       int value_len, const XML_Char *base, const XML_Char *system_id,
		       const XML_Char *public_id, const XML_Char *notation)
{
	xml_state *st = arg;

	(void)name; (void)is_param; (void)value; (void)value_len; (void)base;
	(void)system_id; (void)public_id; (void)notation;
	st->refused = 1;
	XML_StopParser(st->parser, XML_FALSE);
}

wal_err wal_xml_parse(const char *xml, size_t len, const char *what, wal_xml_fn fn, void *arg,
		      wal_error *e)
{
	xml_state st;
	wal_err rc = WAL_OK;

	memset(&st, 0, sizeof st);
	st.parser = XML_ParserCreateNS(NULL, '\x01');
	if (!st.parser)
		return wal_fail(e, WAL_ENOMEM, "%s: out of memory", what);
	st.fn = fn;
	st.arg = arg;
	st.e = e;
	XML_SetUserData(st.parser, &st);
	XML_SetElementHandler(st.parser, xml_start, xml_end);
	XML_SetCharacterDataHandler(st.parser, xml_chars);
	XML_SetEntityDeclHandler(st.parser, xml_entity);
	if (XML_Parse(st.parser, xml ? xml : "", (int)len, XML_TRUE) == XML_STATUS_ERROR) {
		if (st.rc != WAL_OK)
			rc = st.rc;
		else if (st.refused)
			rc = wal_fail(e, WAL_ENET, "%s: xml with entity declarations refused", what);
		else
			rc = wal_fail(e, WAL_ENET, "%s: malformed xml at line %lu: %s", what,
				      (unsigned long)XML_GetCurrentLineNumber(st.parser),
				      XML_ErrorString(XML_GetErrorCode(st.parser)));
	} else if (st.rc != WAL_OK) {
		rc = st.rc;
	}
	XML_ParserFree(st.parser);
	free(st.text);
	return rc;
}

typedef struct err_text {
	char code[128];
	char message[256];
} err_text;

static void copy_text(char *dst, size_t cap, const char *src)
{
	size_t i;

	/* one line: control characters become spaces */
	for (i = 0; src[i] && i + 1 < cap; i++)
		dst[i] = iscntrl((unsigned char)src[i]) ? ' ' : src[i];
	dst[i] = '\0';
}

static wal_err collect_error(void *arg, const char *path, const char *text, wal_error *e)
{
	err_text *et = arg;
	const char *leaf = strrchr(path, '/');

	(void)e;
	leaf = leaf ? leaf + 1 : path;
	if (!et->code[0] && strcmp(leaf, "Code") == 0)
		copy_text(et->code, sizeof et->code, text);
	else if (!et->message[0] && (strcmp(leaf, "Message") == 0 || strcmp(leaf, "message") == 0))
		copy_text(et->message, sizeof et->message, text);
	return WAL_OK;
}

void wal_http_error_text(const char *body, size_t len, char *out, size_t cap)
{
	err_text et;
	wal_error ignored;
	size_t i = 0;

	out[0] = '\0';
	if (!body)
		return;
	while (i < len && isspace((unsigned char)body[i]))
		i++;
	if (i >= len || body[i] != '<' || (i + 5 < len && strncasecmp(body + i, "<html", 5) == 0) ||
	    (i + 9 < len && strncasecmp(body + i, "<!doctype", 9) == 0))
		return;
	memset(&et, 0, sizeof et);
	/* a half-parsed body still yields what was seen before the error */
	wal_xml_parse(body, len, "error body", collect_error, &et, &ignored);
	if (et.code[0] && et.message[0])
		snprintf(out, cap, "%s: %s", et.code, et.message);
	else if (et.code[0])
		snprintf(out, cap, "%s", et.code);
	else if (et.message[0])
		snprintf(out, cap, "%s", et.message);
}
