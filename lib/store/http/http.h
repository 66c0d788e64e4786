/*
 * The HTTP layer shared by the WebDAV and S3 drivers: one reused libcurl
 * handle per store (keep-alive), timeouts, TLS verification, bounded retries,
 * mapping of HTTP and curl failures to wal_err, and the text forms URLs
 * and headers need.  The XML walker for listings is in store/http/xml.h.
 */
#ifndef WAL_HTTP_H
#define WAL_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "base/error.h"
#include "io/stream.h"

typedef struct wal_http wal_http;

/* How a connection authenticates and verifies its peer. */
typedef struct wal_http_opts {
	const char *user;      /* basic auth user, or the S3 access key; NULL = none */
	const char *password;  /* basic auth password, or the S3 secret key */
	const char *aws_sigv4; /* e.g. "aws:amz:us-east-1:s3" to sign with SigV4; NULL = basic */
	const char *ca_file;   /* extra trust anchors (PEM), NULL = system store */
	int tls_verify;	       /* verify the peer certificate and host name */
	int timeout;	       /* seconds: connect, and a transfer stalled this long */
	int retries;	       /* attempts after the first on transient failures */
} wal_http_opts;

/* One request.  Unset members are zero. */
typedef struct wal_http_req {
	const char *method;	    /* "GET", "PUT", "HEAD", "DELETE", "MOVE", ... */
	const char *url;	    /* full URL, already percent-encoded */
	const char *what;	    /* the object named in error messages */
	const char *const *headers; /* extra "Name: value" lines, NULL-terminated; may be NULL */
	wal_source *upload;	    /* request body, rewound before each attempt; sent
				    * chunked while its size is unknown (-1) */
	const char *body;	    /* or a small in-memory request body */
	size_t body_len;
	wal_sink *sink; /* 2xx response body goes here; reset before a retry */
	int no_retry;	/* one attempt only (the caller handles repeats) */
} wal_http_req;

/* What came back.  body holds the response body when there was no sink or
 * the status was not 2xx (at most WAL_HTTP_BODY_MAX bytes); free with
 * wal_http_resp_free(). */
typedef struct wal_http_resp {
	long status; /* 0 if no HTTP answer */
	char *body;
	size_t body_len;
	int64_t content_length; /* -1 if unknown */
	time_t mtime;		/* Last-Modified, 0 if unknown */
	int attempts;		/* how many times the request was sent */
} wal_http_resp;

#define WAL_HTTP_BODY_MAX (4 * 1024 * 1024)

/* Creates a handle (one curl easy handle, reused for keep-alive).
 * WAL_ENOMEM or WAL_ECONFIG (unreadable ca_file) on failure. */
wal_err wal_http_open(wal_http **out, const wal_http_opts *opts, wal_error *e);

/* Replaces the user and password the next requests sign or log in with
 * (temporary credentials fetched again); the old password is wiped.
 * WAL_ENOMEM leaves the old ones in place. */
wal_err wal_http_set_auth(wal_http *h, const char *user, const char *password, wal_error *e);

/*
 * Whether libcurl's SigV4 signs header names that are prefixes of one
 * another in the order AWS expects ("x-amz-server-side-encryption" before
 * "...-aws-kms-key-id"): libcurl before 8.10 sorts whole "name:value"
 * lines, and AWS then answers SignatureDoesNotMatch.  *version gets
 * libcurl's version string.
 */
int wal_http_sigv4_prefix_order_ok(const char **version);

/* Frees h (NULL allowed); wipes the copy of the password. */
void wal_http_close(wal_http *h);

/*
 * Sends req, retrying connection errors, timeouts, 5xx and 429 (never 401
 * or 403) up to opts->retries times with wal_retry_backoff().  Returns WAL_OK
 * whenever the server answered with any status (the caller judges it with
 * wal_http_status_err()); a transport failure is returned typed
 * (WAL_ENET, WAL_ETIMEOUT, WAL_EHOSTKEY for an untrusted certificate, or the
 * source's or sink's own error).  resp is filled in either case.
 */
wal_err wal_http_do(wal_http *h, const wal_http_req *req, wal_http_resp *resp, wal_error *e);

/* Frees what resp holds and clears it. */
void wal_http_resp_free(wal_http_resp *resp);

/*
 * Maps a status that is not 2xx to a wal_err and a one-line detail
 * "<what>: <method> failed: <status> <reason>[: <code>: <message>]", the
 * code and message taken from an S3 <Error> body when there is one:
 * 404/410 -> WAL_ENOENT, 401/403 -> WAL_EAUTH, 412 -> WAL_EEXIST,
 * 405/501 -> WAL_EUNSUPPORTED, 507 -> WAL_ENOSPC, 5xx/429/408 -> WAL_ENET,
 * other 4xx -> WAL_EINVAL.  WAL_OK for 2xx.
 */
wal_err wal_http_status_err(const char *what, const char *method, const wal_http_resp *resp,
			    wal_error *e);

/* Whether a status is worth another attempt (5xx, 429, 408). */
int wal_http_status_transient(long status);

/*
 * Appends s to out (capacity cap, always terminated) percent-encoded per
 * RFC 3986: unreserved characters A-Z a-z 0-9 - . _ ~ stay, so does '/'
 * when keep_slash, everything else becomes %XX (upper-case hex).  Returns
 * WAL_OK, or WAL_EINVAL if it does not fit.
 */
wal_err wal_http_encode(const char *s, int keep_slash, char *out, size_t cap, wal_error *e);

/* Decodes %XX sequences of s in place. */
void wal_http_decode(char *s);

/* Parses an HTTP date (RFC 1123 and the two old forms); 0 if unparseable. */
time_t wal_http_parse_date(const char *text);

/*
 * Extracts "Code: Message" (or just "Code") from an S3-style <Error> body
 * or the first <error>/<message> text of a WebDAV body into out; "" if the
 * body holds none.
 */
void wal_http_error_text(const char *body, size_t len, char *out, size_t cap);

#endif
