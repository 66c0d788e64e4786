/*
 * Unit tests for the Azure Blob request signing and listing parsing
 * (store/azure/azure.h): the Shared Key string-to-sign, the signature
 * against one computed independently (Python's hmac), account keys, the
 * date form, and List Blobs pages.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "store/azure/azure.h"
#include "store/store.h"

#define KEY                                                                                        \
	"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define DATE "x-ms-date:Mon, 30 Nov 2026 21:49:04 GMT"

static const char *const put_ms[] = { "x-ms-blob-type:BlockBlob", DATE, "x-ms-version:2021-08-06",
				      NULL };
static const wal_azure_sig put_sig = { .method = "PUT",
				       .content_length = 1234,
				       .content_md5 = "q1Qq6pTb6cT1Kq5z6Xw2fA==",
				       .if_none_match = "*",
				       .ms_headers = put_ms,
				       .resource =
					       "/devstoreaccount1/devstoreaccount1/wal/a/b.lz4" };

Test(azure, string_to_sign_of_a_put)
{
	char out[1024];
	wal_error e;

	cr_assert_eq(wal_azure_string_to_sign(&put_sig, out, sizeof out, &e), WAL_OK);
	cr_assert_str_eq(out, "PUT\n\n\n1234\nq1Qq6pTb6cT1Kq5z6Xw2fA==\n\n\n\n\n*\n\n\n"
			      "x-ms-blob-type:BlockBlob\n" DATE "\nx-ms-version:2021-08-06\n"
			      "/devstoreaccount1/devstoreaccount1/wal/a/b.lz4");
	cr_assert_eq(wal_azure_string_to_sign(&put_sig, out, 40, &e), WAL_EINVAL);
}

Test(azure, signatures_match_an_independent_hmac)
{
	static const char *const get_ms[] = { DATE, "x-ms-version:2021-08-06", NULL };
	static const char *const query[] = { "comp:list", "delimiter:/", "prefix:a b/",
					     "restype:container", NULL };
	wal_azure_sig list = { .method = "GET",
			       .content_length = -1,
			       .ms_headers = get_ms,
			       .resource = "/acct/wal",
			       .query = query };
	unsigned char key[128];
	char out[256];
	wal_error e;
	int n = wal_azure_decode_key(KEY, key, sizeof key);

	cr_assert_eq(n, 64);
	cr_assert_eq(wal_azure_authorization("devstoreaccount1", key, (size_t)n, &put_sig, out,
					     sizeof out, &e),
		     WAL_OK);
	cr_assert_str_eq(out, "Authorization: SharedKey devstoreaccount1:"
			      "MWucRr5E2oxfk+6HttB4cDuVZFCj1ZhLB4Wv0DxpZ8Q=");
	/* no body: Content-Length signed empty; query parameters after the resource */
	cr_assert_eq(wal_azure_authorization("acct", key, (size_t)n, &list, out, sizeof out, &e),
		     WAL_OK);
	cr_assert_str_eq(out, "Authorization: SharedKey acct:"
			      "GkpQTyrU2W32PdqkmkAvgIQ1p6K1Ja/T4Ljgkp8asNY=");
}

Test(azure, account_keys)
{
	unsigned char key[64];

	cr_assert_eq(wal_azure_decode_key("YWJj", key, sizeof key), 3);
	cr_assert_eq(memcmp(key, "abc", 3), 0);
	cr_assert_eq(wal_azure_decode_key("YWI=", key, sizeof key), 2);
	cr_assert_eq(wal_azure_decode_key("YQ==", key, sizeof key), 1);
	cr_assert_eq(wal_azure_decode_key("", key, sizeof key), -1);
	cr_assert_eq(wal_azure_decode_key("YWJ", key, sizeof key), -1);
	cr_assert_eq(wal_azure_decode_key("YW=j", key, sizeof key), -1);
	cr_assert_eq(wal_azure_decode_key("Y*Jj", key, sizeof key), -1);
	cr_assert_eq(wal_azure_decode_key(KEY, key, 16), -1);
}

Test(azure, dates_are_rfc1123)
{
	char out[64];

	wal_azure_date(1796075344, out, sizeof out);
	cr_assert_str_eq(out, "Mon, 30 Nov 2026 21:49:04 GMT");
}

typedef struct seen {
	char text[1024];
	int64_t size;
	time_t mtime;
} seen;

static wal_err note(void *arg, const char *name, const wal_stat *st, wal_error *e)
{
	seen *s = arg;

	(void)e;
	snprintf(s->text + strlen(s->text), sizeof s->text - strlen(s->text), "%s%s ", name,
		 st->is_dir ? "/" : "");
	if (!st->is_dir) {
		s->size = st->size;
		s->mtime = st->mtime;
	}
	return WAL_OK;
}

Test(azure, list_pages)
{
	static const char page[] =
		"\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>"
		"<EnumerationResults ServiceEndpoint=\"http://x/\" ContainerName=\"wal\">"
		"<Prefix>p/</Prefix><Delimiter>/</Delimiter><Blobs>"
		"<Blob><Name>p/000000010000000000000001.lz4</Name><Properties>"
		"<Last-Modified>Mon, 30 Nov 2026 21:49:04 GMT</Last-Modified>"
		"<Content-Length>1234</Content-Length><BlobType>BlockBlob</BlobType>"
		"</Properties></Blob>"
		"<BlobPrefix><Name>p/sub/</Name></BlobPrefix>"
		"<Blob><Name>other/x</Name><Properties><Content-Length>1</Content-Length>"
		"</Properties></Blob>"
		"</Blobs><NextMarker>2!abc</NextMarker></EnumerationResults>";
	char marker[64];
	int entries = 0;
	seen s = { 0 };
	wal_error e;

	cr_assert_eq(wal_azure_parse_list(page, sizeof page - 1, "t", "p/", note, &s, marker,
					  sizeof marker, &entries, &e),
		     WAL_OK, "%s", e.msg);
	cr_assert_str_eq(s.text, "000000010000000000000001.lz4 sub/ ");
	cr_assert_eq(entries, 2);
	cr_assert_eq(s.size, 1234);
	cr_assert_eq(s.mtime, 1796075344);
	cr_assert_str_eq(marker, "2!abc");

	/* the last page: an empty NextMarker */
	static const char last[] = "<EnumerationResults><Blobs/><NextMarker/></EnumerationResults>";
	cr_assert_eq(wal_azure_parse_list(last, sizeof last - 1, "t", "p/", note, &s, marker,
					  sizeof marker, &entries, &e),
		     WAL_OK);
	cr_assert_str_eq(marker, "");

	/* an answer that is not a listing is no empty listing */
	static const char other[] = "<Error><Code>X</Code></Error>";
	cr_assert_eq(wal_azure_parse_list(other, sizeof other - 1, "t", "p/", note, &s, marker,
					  sizeof marker, &entries, &e),
		     WAL_ENET);
}
