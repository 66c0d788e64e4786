/*
 * What an HTTP status means to walarchive: which answers are worth another
 * attempt, and the typed error and one-line message for the others, with
 * the server's own error code when its body carries one.
 */
#include <stdio.h>
#include <string.h>

#include "store/http/transfer.h"

int wal_http_status_ok(long status)
{
	return status >= 200 && status < 300;
}

/* S3 answers a body damaged in transit with a 400 that a resend may cure. */
int wal_http_body_code_transient(const wal_http_resp *resp)
{
	static const char *const codes[] = { "<Code>BadDigest<", "<Code>XAmzContentSHA256Mismatch<",
					     "<Code>RequestTimeout<", "<Code>IncompleteBody<",
					     /* Azure: a body that does not match its Content-MD5 */
					     "<Code>Md5Mismatch<", NULL };
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

static const char *reason(long status)
{
	switch (status) {
	case 400:
		return "bad request";
	case 401:
		return "unauthorized";
	case 403:
		return "forbidden";
	case 404:
		return "not found";
	case 405:
		return "method not allowed";
	case 408:
		return "request timeout";
	case 409:
		return "conflict";
	case 410:
		return "gone";
	case 411:
		return "length required";
	case 412:
		return "precondition failed";
	case 413:
		return "payload too large";
	case 415:
		return "unsupported media type";
	case 416:
		return "range not satisfiable";
	case 423:
		return "locked";
	case 429:
		return "too many requests";
	case 500:
		return "internal server error";
	case 501:
		return "not implemented";
	case 502:
		return "bad gateway";
	case 503:
		return "service unavailable";
	case 504:
		return "gateway timeout";
	case 507:
		return "insufficient storage";
	default:
		return "unexpected status";
	}
}

wal_err wal_http_status_err(const char *what, const char *method, const wal_http_resp *resp,
			    wal_error *e)
{
	char text[384];
	wal_err code;
	long st = resp->status;

	if (wal_http_status_ok(st))
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
		code = WAL_ECONFIG; /* region or bucket settings */
	else if (wal_http_status_transient(st) || wal_http_body_code_transient(resp))
		code = WAL_ENET;
	else
		code = WAL_EINVAL;
	if (code == WAL_EAUTH && !text[0])
		snprintf(text, sizeof text, "check the user name and password");
	return wal_fail(e, code, "%s: %s failed: %ld %s%s%s", what, method, st, reason(st),
			text[0] ? ": " : "", text);
}
