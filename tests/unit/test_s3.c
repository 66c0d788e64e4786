/*
 * Unit tests for the S3 request building in http.h: bucket URLs in path and
 * host style from every form of s3_endpoint, the ListObjectsV2 query as
 * SigV4 signs it (sorted, RFC 3986), and parsing of listing pages.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "store/http/http.h"
#include "store/s3/s3.h"
#include "store/store.h"

static const char *base(const char *endpoint, const char *region, const char *bucket,
			int path_style)
{
	static char out[1024];
	wal_error e;

	if (wal_s3_base_url(endpoint, region, bucket, path_style, out, sizeof out, &e) != WAL_OK)
		snprintf(out, sizeof out, "error %s: %.300s", wal_err_name(e.code), e.msg);
	return out;
}

Test(s3, base_url_styles_and_endpoints)
{
	cr_assert_str_eq(base(NULL, "eu-west-1", "wal", 0),
			 "https://wal.s3.eu-west-1.amazonaws.com");
	cr_assert_str_eq(base(NULL, "eu-west-1", "wal", 1),
			 "https://s3.eu-west-1.amazonaws.com/wal");
	cr_assert_str_eq(base("minio.lan:9000", "us-east-1", "wal", 1),
			 "https://minio.lan:9000/wal");
	cr_assert_str_eq(base("http://127.0.0.1:8080/", "us-east-1", "wal", 1),
			 "http://127.0.0.1:8080/wal");
	cr_assert_str_eq(base("HTTPS://rgw.example", "r", "wal", 0), "https://wal.rgw.example");
}

Test(s3, base_url_refusals)
{
	cr_assert(strncmp(base("ftp://x", "r", "wal", 1), "error ECONFIG", 13) == 0);
	cr_assert(strncmp(base("http://x/some/path", "r", "wal", 1), "error ECONFIG", 13) == 0);
	cr_assert(strncmp(base("x", "r", "Wal_Bucket", 0), "error ECONFIG", 13) == 0);
	cr_assert_str_eq(base("x", "r", "Wal_Bucket", 1), "https://x/Wal_Bucket");
	cr_assert(strncmp(base("x", "r", "", 1), "error ECONFIG", 13) == 0);
}

Test(s3, list_query_sorted_and_encoded)
{
	char q[512];
	wal_error e;

	cr_assert_eq(wal_s3_list_query("fleet/7712/", NULL, 0, q, sizeof q, &e), WAL_OK);
	cr_assert_str_eq(q, "delimiter=%2F&list-type=2&prefix=fleet%2F7712%2F");
	cr_assert_eq(wal_s3_list_query("", NULL, 5, q, sizeof q, &e), WAL_OK);
	cr_assert_str_eq(q, "delimiter=%2F&list-type=2&max-keys=5&prefix=");
	cr_assert_eq(wal_s3_list_query("a b/", "1/Zx+y==", 1000, q, sizeof q, &e), WAL_OK);
	cr_assert_str_eq(q, "continuation-token=1%2FZx%2By%3D%3D&delimiter=%2F&list-type=2"
			    "&max-keys=1000&prefix=a%20b%2F");
	cr_assert_eq(wal_s3_list_query("p/", "t", 0, q, 40, &e), WAL_EINVAL);
}

Test(s3, parse_time)
{
	cr_assert_eq(wal_s3_parse_time("1970-01-01T00:01:40.000Z"), 100);
	cr_assert_eq(wal_s3_parse_time("2009-10-12T17:50:30.000Z"), 1255369830);
	cr_assert_eq(wal_s3_parse_time("yesterday"), 0);
}

typedef struct got {
	char names[8][64];
	wal_stat st[8];
	int count;
} got;

static wal_err collect(void *arg, const char *name, const wal_stat *st, wal_error *e)
{
	got *g = arg;

	(void)e;
	if (g->count < 8) {
		snprintf(g->names[g->count], 64, "%s", name);
		g->st[g->count++] = *st;
	}
	return WAL_OK;
}

static const char page1[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<Name>wal</Name><Prefix>fleet/</Prefix><KeyCount>3</KeyCount><MaxKeys>3</MaxKeys>"
	"<Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"
	"<Contents><Key>fleet/</Key><Size>0</Size></Contents>"
	"<Contents><Key>fleet/00000002.history.lz4</Key>"
	"<LastModified>2009-10-12T17:50:30.000Z</LastModified><Size>1234</Size></Contents>"
	"<CommonPrefixes><Prefix>fleet/7712/</Prefix></CommonPrefixes>"
	"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</"
	"NextContinuationToken>"
	"</ListBucketResult>";

Test(s3, parse_list_page)
{
	got g = { .count = 0 };
	char token[128];
	int truncated = -1, entries = 0;
	wal_error e;

	cr_assert_eq(wal_s3_parse_list(page1, strlen(page1), "t", "fleet/", collect, &g, &truncated,
				       token, sizeof token, &entries, &e),
		     WAL_OK);
	cr_assert_eq(truncated, 1);
	cr_assert_str_eq(token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	cr_assert_eq(g.count, 2, "the prefix itself is not an entry");
	cr_assert_eq(entries, 2);
	cr_assert_str_eq(g.names[0], "00000002.history.lz4");
	cr_assert_eq(g.st[0].size, 1234);
	cr_assert_eq(g.st[0].mtime, 1255369830);
	cr_assert_eq(g.st[0].is_dir, 0);
	cr_assert_str_eq(g.names[1], "7712");
	cr_assert_eq(g.st[1].is_dir, 1);
}

Test(s3, parse_list_last_page_and_refusals)
{
	static const char last[] =
		"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
	static const char no_token[] =
		"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";
	static const char other[] = "<Error><Code>NoSuchBucket</Code></Error>";
	got g = { .count = 0 };
	char token[128];
	int truncated = -1, entries = 0;
	wal_error e;

	cr_assert_eq(wal_s3_parse_list(last, strlen(last), "t", "", collect, &g, &truncated, token,
				       sizeof token, &entries, &e),
		     WAL_OK);
	cr_assert_eq(truncated, 0);
	cr_assert_eq(entries, 0);
	cr_assert_eq(wal_s3_parse_list(no_token, strlen(no_token), "t", "", collect, &g, &truncated,
				       token, sizeof token, &entries, &e),
		     WAL_ENET, "a truncated page without a token would end the listing early");
	cr_assert_eq(wal_s3_parse_list(other, strlen(other), "t", "", collect, &g, &truncated,
				       token, sizeof token, &entries, &e),
		     WAL_ENET);
}

/* The settings s3 checks as it opens are named by their file and line, and
 * an endpoint's password never shows; all of this before any request. */
Test(s3, open_names_the_setting_at_fault)
{
	wal_config c;
	wal_error e;
	wal_store *s = NULL;

	wal_config_init(&c);
	cr_assert_eq(wal_config_set(&c, "archive", "s3://Bad_Bucket/x", "/etc/w.conf", 2, &e),
		     WAL_OK);
	cr_assert_eq(wal_config_set(&c, "s3_access_key", "AKIA", "/etc/w.conf", 3, &e), WAL_OK);
	cr_assert_eq(wal_config_set(&c, "s3_secret_key", "S3KRIT", "/etc/w.conf", 4, &e), WAL_OK);
	cr_assert_eq(wal_store_open(&s, &c, &e), WAL_ECONFIG);
	cr_assert(strncmp(e.msg, "/etc/w.conf:2: s3 bucket \"Bad_Bucket\"", 36) == 0, "%s", e.msg);

	cr_assert_eq(wal_config_set(&c, "archive", "s3://bucket/x", "/etc/w.conf", 2, &e), WAL_OK);
	cr_assert_eq(wal_config_set(&c, "s3_endpoint", "https://u:PASSWORD@minio.lan",
				    "/etc/w.conf", 5, &e),
		     WAL_OK);
	cr_assert_eq(wal_store_open(&s, &c, &e), WAL_ECONFIG);
	cr_assert_str_eq(e.msg, "/etc/w.conf:5: s3_endpoint \"https://u:***@minio.lan\": "
				"want host[:port] or a URL without a path");

	cr_assert_eq(wal_config_set(&c, "s3_endpoint", "u:PASSWORD@minio.lan", "/etc/w.conf", 5,
				    &e),
		     WAL_OK);
	cr_assert_eq(wal_store_open(&s, &c, &e), WAL_ECONFIG);
	cr_assert_str_eq(e.msg, "/etc/w.conf:5: s3_endpoint \"u:***@minio.lan\": "
				"want host[:port] or a URL without a path");

	cr_assert_eq(wal_config_set(&c, "s3_endpoint", "127.0.0.1:9", "/etc/w.conf", 5, &e),
		     WAL_OK);
	cr_assert_eq(wal_config_set(&c, "s3_region", "eu_west", "--set", 0, &e), WAL_OK);
	cr_assert_eq(wal_store_open(&s, &c, &e), WAL_ECONFIG);
	cr_assert_str_eq(e.msg, "--set: s3_region \"eu_west\": invalid");
	cr_assert_null(s);
	wal_config_free(&c);
}
