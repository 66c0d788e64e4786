/*
 * libFuzzer target: what walarchive parses from an HTTP server's answers:
 * WebDAV PROPFIND multistatus bodies (through wal_xml_parse, as
 * store_webdav.c walks them), S3 ListObjectsV2 pages (wal_s3_parse_list),
 * error bodies (wal_http_error_text), dates (wal_http_parse_date,
 * wal_s3_parse_time), Azure List Blobs pages (wal_azure_parse_list),
 * percent-decoding (wal_http_decode), and the answers
 * credentials arrive in: STS's XML, the metadata and container JSON, the
 * AWS shared files and expiry times (store/s3/credentials.h).  Every buffer
 * is an exact-size heap copy without a terminating NUL, as a response body
 * may be, so any read past len is caught.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "store/azure/azure.h"
#include "store/http/http.h"
#include "store/http/xml.h"
#include "store/s3/credentials.h"
#include "store/s3/s3.h"

static wal_err count_element(void *arg, const char *path, const char *text, wal_error *e)
{
	size_t *n = arg;

	(void)e;
	*n += strlen(path) + strlen(text);
	return WAL_OK;
}

static wal_err take_entry(void *arg, const char *name, const wal_stat *st, wal_error *e)
{
	size_t *n = arg;

	(void)e;
	(void)st;
	/* the parser promises direct children only */
	if (!name[0] || strchr(name, '/'))
		abort();
	*n += strlen(name);
	return WAL_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size ? size : 1);
	char *text = malloc(size + 1);
	char out[512], token[1024], value[64];
	wal_s3_creds *creds = calloc(1, sizeof *creds);
	size_t count = 0;
	int truncated, entries = 0;
	wal_error e;

	if (!body || !text || !creds)
		abort();
	memcpy(body, data, size);
	memcpy(text, data, size);
	text[size] = '\0';

	(void)wal_xml_parse(body, size, "fuzz", count_element, &count, &e);
	if (wal_s3_parse_list(body, size, "fuzz", "db/0000000100000000/", take_entry, &count,
			      &truncated, token, sizeof token, &entries, &e) == WAL_OK &&
	    strlen(token) >= sizeof token)
		abort();
	(void)wal_s3_parse_list(body, size, "fuzz", "", take_entry, &count, &truncated, token,
				sizeof token, &entries, &e);
	if (wal_azure_parse_list(body, size, "fuzz", "db/0000000100000000/", take_entry, &count,
				 token, sizeof token, &entries, &e) == WAL_OK &&
	    strlen(token) >= sizeof token)
		abort();
	wal_http_error_text(body, size, out, sizeof out);
	if (strlen(out) >= sizeof out || strchr(out, '\n'))
		abort();
	(void)wal_http_parse_date(text);
	(void)wal_s3_parse_time(text);
	if (wal_s3_creds_from_sts(body, size, "fuzz", 200, creds, &e) == WAL_OK &&
	    (!creds->access_key[0] || !creds->token[0] || !creds->expiration))
		abort();
	if (wal_s3_creds_from_json(body, size, "fuzz", creds, &e) == WAL_OK &&
	    (!creds->access_key[0] || !creds->secret_key[0]))
		abort();
	if (wal_s3_ini_get(text, "default", "aws_access_key_id", value, sizeof value) == 1 &&
	    strlen(value) >= sizeof value)
		abort();
	(void)wal_s3_ini_get(text, "profile x", NULL, NULL, 0);
	(void)wal_s3_parse_expiration(text);
	wal_http_decode(text);
	free(creds);
	free(text);
	free(body);
	return 0;
}
