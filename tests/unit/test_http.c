/*
 * Unit tests for http.h: RFC 3986 encoding, XML parsing of WebDAV and S3
 * answers (and refusal of entity declarations), one-line error messages
 * from S3 error bodies, the mapping of HTTP status to wal_err, and
 * transport failures (nothing listening, a server that hangs up) typed as
 * network errors, never as "not found".
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store/http/http.h"
#include "store/http/xml.h"
#include "store/store.h"

Test(http, encode_keeps_unreserved_and_slashes_when_asked)
{
	char out[128] = "";
	wal_error e;

	cr_assert_eq(wal_http_encode("a b/c~_.-Z9", 1, out, sizeof out, &e), WAL_OK);
	cr_assert_str_eq(out, "a%20b/c~_.-Z9");
	out[0] = '\0';
	cr_assert_eq(wal_http_encode("fleet/1+2=3&\xc3\xa9", 0, out, sizeof out, &e), WAL_OK);
	cr_assert_str_eq(out, "fleet%2F1%2B2%3D3%26%C3%A9");
}

Test(http, encode_appends_and_refuses_overflow)
{
	char out[8] = "ab";
	wal_error e;

	cr_assert_eq(wal_http_encode("cd", 0, out, sizeof out, &e), WAL_OK);
	cr_assert_str_eq(out, "abcd");
	cr_assert_eq(wal_http_encode("  ", 0, out, sizeof out, &e), WAL_EINVAL);
}

Test(http, decode)
{
	char s[] = "/dav/a%20b/%C3%A9x%2";

	wal_http_decode(s);
	cr_assert_str_eq(s, "/dav/a b/\xc3\xa9x%2");
}

Test(http, parse_date)
{
	cr_assert_eq(wal_http_parse_date("Thu, 01 Jan 1970 00:01:40 GMT"), 100);
	cr_assert_eq(wal_http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
	cr_assert_eq(wal_http_parse_date("nonsense"), 0);
}

typedef struct seen {
	char lines[16][256];
	int count;
} seen;

static wal_err record(void *arg, const char *path, const char *text, wal_error *e)
{
	seen *s = arg;

	(void)e;
	if (s->count < 16)
		snprintf(s->lines[s->count++], 256, "%s=%s", path, text);
	return WAL_OK;
}

Test(http, xml_paths_drop_namespaces_and_trim_text)
{
	static const char xml[] =
		"<?xml version=\"1.0\"?>\n<D:multistatus xmlns:D=\"DAV:\">\n"
		" <D:response><D:href>/dav/a%20b</D:href>\n"
		"  <D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype>"
		"<D:getcontentlength> 42 </D:getcontentlength></D:prop></D:propstat>\n"
		" </D:response>\n</D:multistatus>\n";
	seen s = { .count = 0 };
	wal_error e;

	cr_assert_eq(wal_xml_parse(xml, strlen(xml), "t", record, &s, &e), WAL_OK);
	cr_assert_eq(s.count, 8);
	cr_assert_str_eq(s.lines[0], "multistatus/response/href=/dav/a%20b");
	cr_assert_str_eq(s.lines[1], "multistatus/response/propstat/prop/resourcetype/collection=");
	cr_assert_str_eq(s.lines[3], "multistatus/response/propstat/prop/getcontentlength=42");
	cr_assert_str_eq(s.lines[6], "multistatus/response=");
	cr_assert_str_eq(s.lines[7], "multistatus=");
}

static wal_err stop_at_second(void *arg, const char *path, const char *text, wal_error *e)
{
	int *calls = arg;

	(void)path;
	(void)text;
	if (++*calls == 2)
		return wal_fail(e, WAL_EIO, "stop");
	return WAL_OK;
}

Test(http, xml_callback_error_stops_and_passes_through)
{
	static const char xml[] = "<a><b>1</b><b>2</b><b>3</b></a>";
	int calls = 0;
	wal_error e;

	cr_assert_eq(wal_xml_parse(xml, strlen(xml), "t", stop_at_second, &calls, &e), WAL_EIO);
	cr_assert_eq(calls, 2);
}

Test(http, xml_malformed_and_entities_refused)
{
	static const char bad[] = "<a><b></a>";
	static const char laughs[] =
		"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\">"
		"<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]><x>&b;</x>";
	seen s = { .count = 0 };
	wal_error e;

	cr_assert_eq(wal_xml_parse(bad, strlen(bad), "listing", record, &s, &e), WAL_ENET);
	cr_assert(strstr(e.msg, "listing: malformed xml") != NULL, "%s", e.msg);
	s.count = 0;
	cr_assert_eq(wal_xml_parse(laughs, strlen(laughs), "listing", record, &s, &e), WAL_ENET);
	cr_assert(strstr(e.msg, "entity") != NULL, "%s", e.msg);
	cr_assert_eq(s.count, 0);
}

Test(http, error_text_from_s3_body)
{
	static const char body[] =
		"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>SignatureDoesNotMatch</Code>"
		"<Message>The request signature we calculated does not match.\n</Message>"
		"<RequestId>tx1</RequestId></Error>";
	static const char html[] =
		"<html><head><title>401 Authorization Required</title></head></html>";
	char out[256];

	wal_http_error_text(body, strlen(body), out, sizeof out);
	cr_assert_str_eq(
		out, "SignatureDoesNotMatch: The request signature we calculated does not match.");
	wal_http_error_text(html, strlen(html), out, sizeof out);
	cr_assert_str_eq(out, "");
	wal_http_error_text("not xml", 7, out, sizeof out);
	cr_assert_str_eq(out, "");
	wal_http_error_text(NULL, 0, out, sizeof out);
	cr_assert_str_eq(out, "");
}

static wal_err status_of(long status, const char *body, wal_error *e)
{
	wal_http_resp r = { .status = status,
			    .body = (char *)body,
			    .body_len = body ? strlen(body) : 0 };

	return wal_http_status_err("s3://b/k", "PUT", &r, e);
}

Test(http, status_mapping)
{
	wal_error e;

	cr_assert_eq(status_of(200, NULL, &e), WAL_OK);
	cr_assert_eq(status_of(204, NULL, &e), WAL_OK);
	cr_assert_eq(status_of(404, "<Error><Code>NoSuchKey</Code></Error>", &e), WAL_ENOENT);
	cr_assert_str_eq(e.msg, "s3://b/k: PUT failed: 404 not found: NoSuchKey");
	cr_assert_eq(status_of(401, NULL, &e), WAL_EAUTH);
	cr_assert(strstr(e.msg, "401 unauthorized") != NULL, "%s", e.msg);
	cr_assert_eq(
		status_of(
			403,
			"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
			&e),
		WAL_EAUTH);
	cr_assert_str_eq(e.msg, "s3://b/k: PUT failed: 403 forbidden: AccessDenied: Access Denied");
	cr_assert_eq(status_of(412, NULL, &e), WAL_EEXIST);
	cr_assert_eq(status_of(507, NULL, &e), WAL_ENOSPC);
	cr_assert_eq(status_of(501, NULL, &e), WAL_EUNSUPPORTED);
	cr_assert_eq(status_of(503, "<Error><Code>SlowDown</Code></Error>", &e), WAL_ENET);
	cr_assert_eq(status_of(429, NULL, &e), WAL_ENET);
	cr_assert_eq(status_of(400, "<Error><Code>BadDigest</Code></Error>", &e), WAL_ENET);
	cr_assert_eq(status_of(400,
			       "<Error><Code>AuthorizationHeaderMalformed</Code>"
			       "<Message>the region 'x' is wrong</Message></Error>",
			       &e),
		     WAL_ECONFIG);
	cr_assert_eq(status_of(400, "<Error><Code>InvalidArgument</Code></Error>", &e), WAL_EINVAL);
}

Test(http, transient_statuses)
{
	cr_assert(wal_http_status_transient(500));
	cr_assert(wal_http_status_transient(503));
	cr_assert(wal_http_status_transient(429));
	cr_assert(!wal_http_status_transient(401));
	cr_assert(!wal_http_status_transient(403));
	cr_assert(!wal_http_status_transient(404));
}

/* http_cleartext_auth = refuse holds in the WebDAV driver itself, before
 * any request, for whoever opens the store; https is accepted. */
Test(http, webdav_refuses_cleartext_password_when_asked)
{
	wal_config c;
	wal_error e;
	wal_store *s = NULL;

	wal_config_init(&c);
	cr_assert_eq(wal_config_set(&c, "archive", "http://127.0.0.1:9/dav", "/etc/w.conf", 1, &e),
		     WAL_OK);
	cr_assert_eq(wal_config_set(&c, "http_user", "w", "/etc/w.conf", 2, &e), WAL_OK);
	cr_assert_eq(wal_config_set(&c, "http_password", "hunter2", "/etc/w.conf", 3, &e), WAL_OK);
	cr_assert_eq(wal_config_set(&c, "http_cleartext_auth", "refuse", "/etc/w.conf", 4, &e),
		     WAL_OK);
	cr_assert_eq(wal_store_open(&s, &c, &e), WAL_ECONFIG);
	cr_assert_str_eq(e.msg,
			 "/etc/w.conf:1: http://127.0.0.1:9/dav: the password would be sent "
			 "in clear (basic authentication over http://) and http_cleartext_auth = "
			 "refuse; use https://");
	cr_assert_null(s);
	wal_config_free(&c);
}

/* ---- transport failures ---- */

/* A listening socket on 127.0.0.1; its port in *port. */
static int listen_local(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	cr_assert_eq(listen(fd, 4), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Accepts one connection, reads a little of the request, and hangs up. */
static void *hang_up(void *arg)
{
	int fd = accept(*(int *)arg, NULL, NULL);
	char buf[512];
	if (fd >= 0) {
		(void)!read(fd, buf, sizeof buf);
		close(fd);
	}
	return NULL;
}

static wal_err get_once(int port, wal_error *e)
{
	wal_http_opts opts = { .timeout = 5, .retries = 0, .tls_verify = 1 };
	wal_http *h = NULL;
	wal_http_resp resp;
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/dav/000000010000000000000001", port);
	wal_http_req req = { .method = "GET", .url = url, .what = url };
	cr_assert_eq(wal_http_open(&h, &opts, e), WAL_OK, "%s", e->msg);
	wal_err rc = wal_http_do(h, &req, &resp, e);
	wal_http_resp_free(&resp);
	wal_http_close(h);
	return rc;
}

Test(http, transport_failure_is_a_network_error_not_not_found)
{
	wal_error e;
	int port;

	/* nothing listens: connection refused */
	close(listen_local(&port));
	wal_error_clear(&e);
	cr_assert_eq(get_once(port, &e), WAL_ENET, "connection refused: %s (%s)",
		     wal_err_name(e.code), e.msg);

	/* a server that hangs up without an answer */
	int fd = listen_local(&port);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, hang_up, &fd), 0);
	wal_error_clear(&e);
	cr_assert_eq(get_once(port, &e), WAL_ENET, "empty reply: %s (%s)", wal_err_name(e.code),
		     e.msg);
	pthread_join(t, NULL);
	close(fd);
}
