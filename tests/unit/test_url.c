/*
 * Unit tests for url.h: the archive locations an administrator writes in
 * `archive = ...`, and the ones that must be refused.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "base/url.h"

static wal_url parse_ok(const char *text)
{
	wal_url u;
	wal_error e;

	memset(&u, 0, sizeof(u));
	wal_error_clear(&e);
	cr_assert_eq(wal_url_parse(text, &u, &e), WAL_OK, "\"%s\": %s", text, e.msg);
	return u;
}

static void refused(const char *text)
{
	wal_url u;
	wal_error e;

	memset(&u, 0, sizeof(u));
	wal_error_clear(&e);
	cr_assert_eq(wal_url_parse(text, &u, &e), WAL_ECONFIG, "\"%s\" accepted", text);
	cr_assert(e.msg[0], "refusal of \"%s\" must say why", text);
}

Test(url, plain_path)
{
	wal_url u = parse_ok("/var/lib/walarchive");
	cr_assert_str_eq(u.scheme, "file");
	cr_assert_null(u.host);
	cr_assert_null(u.user);
	cr_assert_str_eq(u.path, "/var/lib/walarchive");
	wal_url_free(&u);

	u = parse_ok("/var/lib/walarchive/");
	cr_assert_str_eq(u.path, "/var/lib/walarchive", "trailing '/' removed");
	wal_url_free(&u);

	u = parse_ok("/");
	cr_assert_str_eq(u.path, "/");
	wal_url_free(&u);
}

Test(url, file_scheme)
{
	wal_url u = parse_ok("file:///srv/wal");
	cr_assert_str_eq(u.scheme, "file");
	cr_assert_null(u.host);
	cr_assert_str_eq(u.path, "/srv/wal");
	wal_url_free(&u);

	u = parse_ok("file:///srv/wal%20archive/");
	cr_assert_str_eq(u.path, "/srv/wal archive");
	wal_url_free(&u);
}

Test(url, sftp)
{
	wal_url u = parse_ok("sftp://postgres@backup.example:2222/srv/wal");
	cr_assert_str_eq(u.scheme, "sftp");
	cr_assert_str_eq(u.user, "postgres");
	cr_assert_str_eq(u.host, "backup.example");
	cr_assert_eq(u.port, 2222);
	cr_assert_str_eq(u.path, "/srv/wal");
	wal_url_free(&u);

	u = parse_ok("sftp://127.0.0.1/srv/wal/");
	cr_assert_null(u.user);
	cr_assert_str_eq(u.host, "127.0.0.1");
	cr_assert_eq(u.port, 0);
	cr_assert_str_eq(u.path, "/srv/wal");
	wal_url_free(&u);

	u = parse_ok("sftp://wal%40ops@[::1]:22/w");
	cr_assert_str_eq(u.user, "wal@ops");
	cr_assert_str_eq(u.host, "::1");
	cr_assert_eq(u.port, 22);
	wal_url_free(&u);
}

Test(url, http)
{
	wal_url u = parse_ok("https://dav.example/remote.php/wal");
	cr_assert_str_eq(u.scheme, "https");
	cr_assert_null(u.user);
	cr_assert_str_eq(u.host, "dav.example");
	cr_assert_eq(u.port, 0);
	cr_assert_str_eq(u.path, "/remote.php/wal");
	wal_url_free(&u);

	u = parse_ok("http://walbot@127.0.0.1:8080/a%2Bb");
	cr_assert_str_eq(u.scheme, "http");
	cr_assert_str_eq(u.user, "walbot");
	cr_assert_str_eq(u.host, "127.0.0.1");
	cr_assert_eq(u.port, 8080);
	cr_assert_str_eq(u.path, "/a+b");
	wal_url_free(&u);

	u = parse_ok("http://[::1]:8080/");
	cr_assert_str_eq(u.host, "::1");
	cr_assert_str_eq(u.path, "/");
	wal_url_free(&u);
}

Test(url, s3)
{
	wal_url u = parse_ok("s3://my-bucket/cluster/wal");
	cr_assert_str_eq(u.scheme, "s3");
	cr_assert_str_eq(u.host, "my-bucket");
	cr_assert_str_eq(u.path, "cluster/wal", "prefix without leading '/'");
	wal_url_free(&u);

	u = parse_ok("s3://my-bucket/cluster/");
	cr_assert_str_eq(u.path, "cluster");
	wal_url_free(&u);

	u = parse_ok("s3://my-bucket");
	cr_assert_str_eq(u.host, "my-bucket");
	cr_assert_str_eq(u.path, "");
	wal_url_free(&u);
}

Test(url, azure)
{
	wal_url u = parse_ok("azure://myaccount/wal/prod/db1");
	cr_assert_str_eq(u.scheme, "azure");
	cr_assert_str_eq(u.host, "myaccount", "the account");
	cr_assert_str_eq(u.path, "wal/prod/db1", "container and prefix, no leading '/'");
	wal_url_free(&u);

	u = parse_ok("azure://myaccount/wal/");
	cr_assert_str_eq(u.path, "wal");
	wal_url_free(&u);
}

Test(url, refused)
{
	refused("");
	refused("relative/path");
	refused("walarchive");
	refused("ftp://host/path");
	refused("rsync://host/path");
	refused("sftp://");
	refused("sftp:///path");
	refused("sftp://host:notaport/path");
	refused("sftp://host:0/path");
	refused("sftp://host:65536/path");
	refused("sftp://host:-1/path");
	refused("http://[::1/path");
	refused("https://");
	refused("s3://");
	refused("s3:///prefix");
	refused("azure://");
	refused("azure://acct:10000/wal");
	refused("sftp://host/pa%zzth");
}

/* A password written into the URL is refused, and no refusal repeats it. */
Test(url, refusals_never_repeat_a_password)
{
	static const char *const texts[] = {
		"https://u:PASSWORD@dav.example/x",
		"http://walarchive:PASSWORD@127.0.0.1:8080/dav",
		"https://u:PASS/WORD@dav.example/x", /* '/' ends the authority early */
		"https://u:PASS@WORD@dav.example/x", /* '@' in the password */
		"sftp://u:PASSWORD@backup/srv/wal",
		"file://u:PASSWORD@localhost/srv/wal",
		"s3://u:PASSWORD@bucket/prefix",
		"azure://u:PASSWORD@account/container",
		"ftp://u:PASSWORD@host/x", /* unknown scheme */
		"https://u:PASSWORD@dav.example:99999/x",
		"https://:PASSWORD@dav.example/x",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		wal_url u;
		wal_error e;
		memset(&u, 0, sizeof(u));
		wal_error_clear(&e);
		cr_assert_eq(wal_url_parse(texts[i], &u, &e), WAL_ECONFIG, "\"%s\" accepted",
			     texts[i]);
		cr_assert_null(strstr(e.msg, "PASS"), "the message repeats the password: %s",
			       e.msg);
		cr_assert_null(strstr(e.msg, "WORD"), "the message repeats the password: %s",
			       e.msg);
		cr_assert(strstr(e.msg, "archive \""), "the message shows the archive: %s", e.msg);
	}
}

Test(url, redact)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "https://u:secret@dav.example/x", "https://u:***@dav.example/x" },
		{ "https://u:se/cr@et@dav.example:8443/x", "https://u:***@dav.example:8443/x" },
		{ "https://:secret@h/x", "https://:***@h/x" },
		{ "https://u@dav.example/x", "https://u@dav.example/x" },
		{ "https://dav.example:8443/x", "https://dav.example:8443/x" },
		{ "sftp://u@[::1]:22/srv/wal", "sftp://u@[::1]:22/srv/wal" },
		{ "/srv/a:b@c", "/srv/a:b@c" },
		{ "key:secret@minio.lan:9000", "key:***@minio.lan:9000" },
		{ "minio.lan:9000", "minio.lan:9000" },
		{ "", "" },
	};
	char out[128];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		wal_url_redact(cases[i].in, out, sizeof(out));
		cr_assert_str_eq(out, cases[i].out, "%s", cases[i].in);
	}
	wal_url_redact(NULL, out, sizeof(out));
	cr_assert_str_eq(out, "");
	wal_url_redact("https://u:secretsecret@h/x", out, 12);
	cr_assert_str_eq(out, "https://u:*", "cut short, never the password");
}
