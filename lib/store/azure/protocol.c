/*
 * Azure Blob Storage: the Shared Key signature and the List Blobs answer.
 * See azure.h.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/azure/azure.h"
#include "store/http/http.h"
#include "store/http/xml.h"

/* Appends text and a newline; 0 if it does not fit. */
static int add_line(char *out, size_t cap, size_t *n, const char *text, int newline)
{
	int w = snprintf(out + *n, cap - *n, "%s%s", text ? text : "", newline ? "\n" : "");

	if (w < 0 || (size_t)w >= cap - *n)
		return 0;
	*n += (size_t)w;
	return 1;
}

wal_err wal_azure_string_to_sign(const wal_azure_sig *sig, char *out, size_t cap, wal_error *e)
{
	char length[32] = "";
	size_t n = 0;
	int ok = 1;

	if (sig->content_length > 0)
		snprintf(length, sizeof length, "%lld", (long long)sig->content_length);
	/* VERB, Content-Encoding, Content-Language, Content-Length, Content-MD5,
	 * Content-Type, Date, If-Modified-Since, If-Match, If-None-Match,
	 * If-Unmodified-Since, Range: x-ms-date stands for Date */
	ok = add_line(out, cap, &n, sig->method, 1) && add_line(out, cap, &n, "", 1) &&
	     add_line(out, cap, &n, "", 1) && add_line(out, cap, &n, length, 1) &&
	     add_line(out, cap, &n, sig->content_md5, 1) && add_line(out, cap, &n, "", 1) &&
	     add_line(out, cap, &n, "", 1) && add_line(out, cap, &n, "", 1) &&
	     add_line(out, cap, &n, "", 1) && add_line(out, cap, &n, sig->if_none_match, 1) &&
	     add_line(out, cap, &n, "", 1) && add_line(out, cap, &n, "", 1);
	for (const char *const *h = sig->ms_headers; ok && h && *h; h++)
		ok = add_line(out, cap, &n, *h, 1);
	ok = ok && add_line(out, cap, &n, sig->resource, 0);
	for (const char *const *q = sig->query; ok && q && *q; q++)
		ok = add_line(out, cap, &n, "\n", 0) && add_line(out, cap, &n, *q, 0);
	if (!ok)
		return wal_fail(e, WAL_EINVAL, "azure: request too long to sign");
	return WAL_OK;
}

wal_err wal_azure_authorization(const char *account, const unsigned char *key, size_t key_len,
				const wal_azure_sig *sig, char *out, size_t cap, wal_error *e)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char b64[96];
	char *text;
	wal_err rc;

	text = malloc(16384);
	if (!text)
		return wal_fail(e, WAL_ENOMEM, "azure: out of memory");
	rc = wal_azure_string_to_sign(sig, text, 16384, e);
	if (rc == WAL_OK && !HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)text,
				  strlen(text), mac, &mac_len))
		rc = wal_fail(e, WAL_ENOMEM, "azure: cannot compute the request signature");
	free(text);
	if (rc != WAL_OK)
		return rc;
	EVP_EncodeBlock((unsigned char *)b64, mac, (int)mac_len);
	if (snprintf(out, cap, "Authorization: SharedKey %s:%s", account, b64) >= (int)cap)
		return wal_fail(e, WAL_EINVAL, "azure: account name too long");
	return WAL_OK;
}

int wal_azure_decode_key(const char *text, unsigned char *key, size_t cap)
{
	size_t len = strlen(text);
	int n, pad = 0;

	if (len == 0 || len % 4 != 0 || len / 4 * 3 > cap)
		return -1;
	if (text[len - 2] == '=' && text[len - 1] != '=')
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (c == '=' && i >= len - 2)
			continue;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return -1;
	}
	n = EVP_DecodeBlock(key, (const unsigned char *)text, (int)len);
	if (n < 0)
		return -1;
	if (text[len - 1] == '=')
		pad++;
	if (text[len - 2] == '=')
		pad++;
	return n - pad;
}

void wal_azure_date(time_t t, char *out, size_t cap)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
		 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

typedef struct list_page {
	const char *prefix;
	size_t prefix_len;
	wal_list_fn fn;
	void *arg;
	char *next_marker;
	size_t marker_cap;
	int *entries;
	char name[1024];
	wal_stat st;
	int seen_root; /* the document's root element is EnumerationResults */
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

#define BLOB "EnumerationResults/Blobs/Blob"

static wal_err list_xml(void *arg, const char *path, const char *text, wal_error *e)
{
	list_page *pg = arg;

	if (strcmp(path, BLOB "/Name") == 0)
		snprintf(pg->name, sizeof pg->name, "%s", text);
	else if (strcmp(path, BLOB "/Properties/Content-Length") == 0)
		pg->st.size = strtoll(text, NULL, 10);
	else if (strcmp(path, BLOB "/Properties/Last-Modified") == 0)
		pg->st.mtime = wal_http_parse_date(text);
	else if (strcmp(path, BLOB) == 0) {
		wal_err rc = emit_child(pg, pg->name, 0, e);

		pg->name[0] = '\0';
		memset(&pg->st, 0, sizeof pg->st);
		pg->st.size = -1;
		return rc;
	} else if (strcmp(path, "EnumerationResults/Blobs/BlobPrefix/Name") == 0)
		return emit_child(pg, text, 1, e);
	else if (strcmp(path, "EnumerationResults/NextMarker") == 0)
		snprintf(pg->next_marker, pg->marker_cap, "%s", text);
	else if (strcmp(path, "EnumerationResults") == 0)
		pg->seen_root = 1;
	return WAL_OK;
}

wal_err wal_azure_parse_list(const char *xml, size_t len, const char *what, const char *prefix,
			     wal_list_fn fn, void *arg, char *next_marker, size_t marker_cap,
			     int *entries, wal_error *e)
{
	list_page pg;
	wal_err rc;

	memset(&pg, 0, sizeof pg);
	pg.prefix = prefix;
	pg.prefix_len = strlen(prefix);
	pg.fn = fn;
	pg.arg = arg;
	pg.next_marker = next_marker;
	pg.marker_cap = marker_cap;
	pg.entries = entries;
	pg.st.size = -1;
	next_marker[0] = '\0';
	rc = wal_xml_parse(xml, len, what, list_xml, &pg, e);
	if (rc != WAL_OK)
		return rc;
	/* the root element must be the listing: anything else is not an answer */
	if (!pg.seen_root)
		return wal_fail(e, WAL_ENET, "%s: the server's answer is not a blob listing", what);
	return WAL_OK;
}
