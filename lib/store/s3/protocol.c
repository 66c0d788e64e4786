/*
 * S3's wire forms, apart from the driver: the bucket URL, the
 * ListObjectsV2 query as SigV4 signs it, and the parse of a listing page
 * into the store's entries.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/http/http.h"
#include "store/http/xml.h"
#include "store/s3/s3.h"

wal_err wal_s3_base_url(const char *endpoint, const char *region, const char *bucket,
			int path_style, char *out, size_t cap, wal_error *e)
{
	char scheme[8] = "https", host[512], shown[512];
	const char *sep;
	size_t i, n;
	int len;

	/* messages show the endpoint, but never a password written into it */
	wal_url_redact(endpoint, shown, sizeof shown);
	if (!endpoint || !endpoint[0]) {
		snprintf(host, sizeof host, "s3.%s.amazonaws.com", region ? region : "us-east-1");
	} else {
		sep = strstr(endpoint, "://");
		if (sep) {
			if ((size_t)(sep - endpoint) >= sizeof scheme)
				return wal_fail(e, WAL_ECONFIG,
						"s3_endpoint \"%s\": unknown scheme", shown);
			memcpy(scheme, endpoint, (size_t)(sep - endpoint));
			scheme[sep - endpoint] = '\0';
			for (i = 0; scheme[i]; i++)
				scheme[i] = (char)tolower((unsigned char)scheme[i]);
			if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
				return wal_fail(e, WAL_ECONFIG,
						"s3_endpoint \"%s\": want http:// or https://",
						shown);
			endpoint = sep + 3;
		}
		if (snprintf(host, sizeof host, "%s", endpoint) >= (int)sizeof host)
			return wal_fail(e, WAL_ECONFIG, "s3_endpoint too long");
		n = strlen(host);
		while (n > 0 && host[n - 1] == '/')
			host[--n] = '\0';
		if (!host[0] || strchr(host, '/') || strchr(host, '?') || strchr(host, '@'))
			return wal_fail(
				e, WAL_ECONFIG,
				"s3_endpoint \"%s\": want host[:port] or a URL without a path",
				shown);
	}
	if (!bucket || !bucket[0])
		return wal_fail(e, WAL_ECONFIG, "s3 archive without a bucket");
	for (i = 0; bucket[i]; i++) {
		unsigned char ch = (unsigned char)bucket[i];

		if (!(islower(ch) || isdigit(ch) || ch == '-' || ch == '.' ||
		      (path_style && (isupper(ch) || ch == '_'))))
			return wal_fail(e, WAL_ECONFIG, "s3 bucket \"%s\": invalid name%s", bucket,
					path_style ? "" : " for s3_uri_style = host");
	}
	if (path_style)
		len = snprintf(out, cap, "%s://%s/%s", scheme, host, bucket);
	else
		len = snprintf(out, cap, "%s://%s.%s", scheme, bucket, host);
	if (len < 0 || (size_t)len >= cap)
		return wal_fail(e, WAL_ECONFIG, "s3 url too long");
	return WAL_OK;
}

wal_err wal_s3_list_query(const char *prefix, const char *token, int max_keys, char *out,
			  size_t cap, wal_error *e)
{
	char num[32];

	out[0] = '\0';
	/* SigV4 signs the query as sent: names in byte order, values RFC 3986 encoded */
	if (token) {
		if (snprintf(out, cap, "continuation-token=") >= (int)cap ||
		    wal_http_encode(token, 0, out, cap, e) != WAL_OK || strlen(out) + 1 >= cap)
			return wal_fail(e, WAL_EINVAL, "s3 listing query too long");
		strcat(out, "&");
	}
	snprintf(num, sizeof num, "&max-keys=%d", max_keys);
	if (strlen(out) + 64 >= cap)
		return wal_fail(e, WAL_EINVAL, "s3 listing query too long");
	strcat(out, "delimiter=%2F&list-type=2");
	if (max_keys > 0)
		strcat(out, num);
	strcat(out, "&prefix=");
	if (wal_http_encode(prefix, 0, out, cap, e) != WAL_OK)
		return wal_fail(e, WAL_EINVAL, "s3 listing query too long");
	return WAL_OK;
}

time_t wal_s3_parse_time(const char *text)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof tm);
	end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return 0;
	return timegm(&tm);
}

typedef struct list_page {
	const char *prefix;
	size_t prefix_len;
	wal_list_fn fn;
	void *arg;
	int *truncated;
	char *next_token;
	size_t token_cap;
	int *entries;
	char key[1024];
	wal_stat st;
	int seen_root; /* the document's root element is ListBucketResult */
} list_page;

static wal_err emit_child(list_page *pg, const char *full, int is_dir, wal_error *e)
{
	char name[1024];
	size_t n;

	if (strncmp(full, pg->prefix, pg->prefix_len) != 0)
		return WAL_OK;
	snprintf(name, sizeof name, "%s", full + pg->prefix_len);
	n = strlen(name);
	if (is_dir && n > 0 && name[n - 1] == '/')
		name[--n] = '\0';
	if (!name[0] || strchr(name, '/'))
		return WAL_OK;
	(*pg->entries)++;
	if (is_dir) {
		wal_stat st = { .size = -1, .mtime = 0, .is_dir = 1 };

		return pg->fn(pg->arg, name, &st, e);
	}
	return pg->fn(pg->arg, name, &pg->st, e);
}

static wal_err list_xml(void *arg, const char *path, const char *text, wal_error *e)
{
	list_page *pg = arg;

	if (strcmp(path, "ListBucketResult/Contents/Key") == 0)
		snprintf(pg->key, sizeof pg->key, "%s", text);
	else if (strcmp(path, "ListBucketResult/Contents/Size") == 0)
		pg->st.size = strtoll(text, NULL, 10);
	else if (strcmp(path, "ListBucketResult/Contents/LastModified") == 0)
		pg->st.mtime = wal_s3_parse_time(text);
	else if (strcmp(path, "ListBucketResult/Contents") == 0) {
		wal_err rc = emit_child(pg, pg->key, 0, e);

		pg->key[0] = '\0';
		memset(&pg->st, 0, sizeof pg->st);
		pg->st.size = -1;
		return rc;
	} else if (strcmp(path, "ListBucketResult/CommonPrefixes/Prefix") == 0)
		return emit_child(pg, text, 1, e);
	else if (strcmp(path, "ListBucketResult/IsTruncated") == 0)
		*pg->truncated = strcmp(text, "true") == 0;
	else if (strcmp(path, "ListBucketResult/NextContinuationToken") == 0)
		snprintf(pg->next_token, pg->token_cap, "%s", text);
	else if (strcmp(path, "ListBucketResult") == 0)
		pg->seen_root = 1;
	return WAL_OK;
}

wal_err wal_s3_parse_list(const char *xml, size_t len, const char *what, const char *prefix,
			  wal_list_fn fn, void *arg, int *truncated, char *next_token,
			  size_t token_cap, int *entries, wal_error *e)
{
	list_page pg;
	wal_err rc;

	memset(&pg, 0, sizeof pg);
	pg.prefix = prefix;
	pg.prefix_len = strlen(prefix);
	pg.fn = fn;
	pg.arg = arg;
	pg.truncated = truncated;
	pg.next_token = next_token;
	pg.token_cap = token_cap;
	pg.entries = entries;
	pg.st.size = -1;
	*truncated = 0;
	next_token[0] = '\0';
	rc = wal_xml_parse(xml, len, what, list_xml, &pg, e);
	if (rc != WAL_OK)
		return rc;
	/* the root element must be the listing: anything else is not an answer */
	if (!pg.seen_root)
		return wal_fail(e, WAL_ENET, "%s: the server's answer is not a bucket listing",
				what);
	if (*truncated && !next_token[0])
		return wal_fail(e, WAL_ENET, "%s: truncated listing without a continuation token",
				what);
	return WAL_OK;
}
