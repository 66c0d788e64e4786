/*
 * Private to lib/store/http: the client handle and the state of one
 * attempt, shared by the request loop (http.c), the libcurl callbacks that
 * move the body (transfer.c) and the status mapping (status.c).
 */
#ifndef WAL_HTTP_TRANSFER_H
#define WAL_HTTP_TRANSFER_H

#include <curl/curl.h>
#include <time.h>
#include "store/http/http.h"

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
	const char *mem_pos; /* in-memory request body still to send */
	size_t mem_left;
	int sink_used; /* bytes went to req->sink in this attempt */
	int src_failed;
	int sink_failed;
	int net_fault;		   /* errno injected by the fault seam, 0 if none */
	curl_off_t moved;	   /* bytes sent and received so far */
	struct timespec last_move; /* when that count last changed */
	int idle;		   /* abandoned: nothing moved for timeout seconds */
	wal_error cb_err;	   /* the source's or sink's error */
} xfer;

/*
 * Resets h's curl handle (keeping its connection cache) and sets every
 * option of one attempt of x->req: timeouts, TLS, authentication, the
 * body callbacks bound to x, and the extra headers.  *headers receives the
 * header list, to be freed with curl_slist_free_all() after the transfer.
 * WAL_ENOMEM if the list cannot be built (nothing is left to free then).
 */
wal_err wal_http_xfer_setup(wal_http *h, xfer *x, struct curl_slist **headers, wal_error *e);

/* Whether status is 2xx. */
int wal_http_status_ok(long status);

/* Whether resp is a 400 whose S3 error code says a resend may cure it
 * (a body damaged in transit, a request that timed out). */
int wal_http_body_code_transient(const wal_http_resp *resp);

#endif
