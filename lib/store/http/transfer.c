/*
 * One attempt's transfer: the libcurl callbacks that feed the request body
 * from a source or memory, pass a 2xx response body to the sink (anything
 * else is kept for the error message), stop a stalled transfer, and host
 * the fault seam on sends and receives; and the options that bind them.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sys/fileio.h"
#include "store/http/transfer.h"

#ifndef WALARCHIVE_VERSION
#define WALARCHIVE_VERSION "0"
#endif

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
			return; /* the body is informative only: keep what fits */
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
	if (wal_http_status_ok(status) && x->req->sink) {
		if (x->req->sink->write(x->req->sink, data, len, &x->cb_err) != WAL_OK) {
			x->sink_failed = 1;
			return 0; /* makes curl stop with CURLE_WRITE_ERROR */
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
	if ((now.tv_sec - x->last_move.tv_sec) * 1000 +
		    (now.tv_nsec - x->last_move.tv_nsec) / 1000000 >=
	    (long)x->h->timeout * 1000) {
		x->idle = 1;
		return 1;
	}
	return 0;
}

/* The options every request carries: where, how long, TLS, authentication,
 * and the callbacks that see the answer. */
static void set_connection(wal_http *h, xfer *x)
{
	CURL *c = h->curl;

	curl_easy_reset(c); /* keeps the connection cache: keep-alive across requests */
	h->errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, x->req->url);
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
}

/* The method, and the request body's callbacks when there is one. */
static void set_method(CURL *c, xfer *x)
{
	const wal_http_req *req = x->req;

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
}

wal_err wal_http_xfer_setup(wal_http *h, xfer *x, struct curl_slist **headers, wal_error *e)
{
	const wal_http_req *req = x->req;
	struct curl_slist *list = NULL;
	const char *const *hdr;

	set_connection(h, x);
	set_method(h->curl, x);
	for (hdr = req->headers; hdr && *hdr; hdr++) {
		struct curl_slist *more = curl_slist_append(list, *hdr);

		if (!more) {
			curl_slist_free_all(list);
			return wal_fail(e, WAL_ENOMEM, "%s: out of memory", req->what);
		}
		list = more;
	}
	if (list)
		curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, list);
	*headers = list;
	return WAL_OK;
}
