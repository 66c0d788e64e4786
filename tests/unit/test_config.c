/*
 * Unit tests for config.h: walarchive.conf parsing as postgresql.conf does
 * it (key = value, comments, '...' quoting with '' escapes), errors naming
 * file:line, value checks, --set overrides, WALARCHIVE_CONFIG, and refusal
 * of world-readable files holding secrets.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/config.h"
#include "base/log.h"

static char dir[256];
static char conf[300];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/walarchive-unit-config.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/walarchive.conf", dir);
	unsetenv("WALARCHIVE_CONFIG");
}

static void teardown(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_conf(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, mode), 0);
}

/* Reads text as a config file; returns the result, leaves c initialised. */
static wal_err read_text(wal_config *c, const char *text, wal_error *e)
{
	write_conf(conf, text, 0600);
	wal_config_init(c);
	wal_error_clear(e);
	return wal_config_read_file(c, conf, e);
}

/* Asserts that text is refused with WAL_ECONFIG and a message naming conf:line. */
static void refused_at(const char *text, int line)
{
	wal_config c;
	wal_error e;
	char where[340];

	wal_err rc = read_text(&c, text, &e);
	cr_assert_eq(rc, WAL_ECONFIG, "accepted: \"%s\"", text);
	snprintf(where, sizeof(where), "%s:%d", conf, line);
	cr_assert_not_null(strstr(e.msg, where), "message \"%s\" does not name %s", e.msg, where);
	wal_config_free(&c);
}

static void value_ok(const char *text)
{
	wal_config c;
	wal_error e;

	cr_assert_eq(read_text(&c, text, &e), WAL_OK, "\"%s\" refused: %s", text, e.msg);
	wal_config_free(&c);
}

Test(config, defaults)
{
	wal_config c;

	wal_config_init(&c);
	cr_assert_null(c.archive);
	cr_assert_eq(c.compress, WAL_COMPRESS_LZ4);
	cr_assert_eq(c.compress_level, 1);
	cr_assert_eq(c.file_mode, 0600);
	cr_assert_eq(c.ssh_agent, 0);
	cr_assert_eq(c.sftp_require_fsync, 1);
	cr_assert_eq(c.tls_verify, 1);
	cr_assert_eq(c.s3_uri_style, WAL_S3_HOST);
	cr_assert_eq(c.timeout, 30);
	cr_assert_eq(c.retries, 3);
	cr_assert_eq(c.system_id, 0);
	cr_assert_eq(c.fetch_on_error, WAL_ONERR_AUTO);
	cr_assert_eq(c.fetch_fsync, 0);
	cr_assert_eq(c.log_level, WAL_LOG_NOTICE);
	cr_assert_null(c.http_password);
	cr_assert_null(c.s3_secret_key);
	wal_config_free(&c);
}

Test(config, key_value_comments_blank_lines, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;

	cr_assert_eq(read_text(&c,
			       "# walarchive.conf\n"
			       "\n"
			       "archive = /var/lib/walarchive\n"
			       "   compress=none   # trailing comment\n"
			       "\tcompress_level = 4\n"
			       "timeout = 10\n"
			       "retries = 0\n"
			       "system_id = 7712300585176830670\n"
			       "tls_verify = off\n"
			       "s3_uri_style = path\n"
			       "s3_region = eu-west-3\n"
			       "log_level = debug\n"
			       "   # indented comment\n",
			       &e),
		     WAL_OK, "%s", e.msg);
	cr_assert_str_eq(c.archive, "/var/lib/walarchive");
	cr_assert_eq(c.compress, WAL_COMPRESS_NONE);
	cr_assert_eq(c.compress_level, 4);
	cr_assert_eq(c.timeout, 10);
	cr_assert_eq(c.retries, 0);
	cr_assert_eq(c.system_id, 7712300585176830670ull);
	cr_assert_eq(c.tls_verify, 0);
	cr_assert_eq(c.s3_uri_style, WAL_S3_PATH);
	cr_assert_str_eq(c.s3_region, "eu-west-3");
	cr_assert_eq(c.log_level, WAL_LOG_DEBUG);
	wal_config_free(&c);
}

Test(config, last_line_without_newline, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;

	cr_assert_eq(read_text(&c, "archive = /a\ncompress = none", &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(c.compress, WAL_COMPRESS_NONE);
	wal_config_free(&c);
}

Test(config, later_line_wins, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;

	cr_assert_eq(read_text(&c, "archive = /a\narchive = /b\n", &e), WAL_OK, "%s", e.msg);
	cr_assert_str_eq(c.archive, "/b");
	wal_config_free(&c);
}

Test(config, quoting, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;

	cr_assert_eq(read_text(&c,
			       "archive = '/srv/wal archive/it''s here'\n"
			       "s3_region = 'with # hash'   # a real comment\n"
			       "ssh_key = ''\n"
			       "compress = 'none'\n",
			       &e),
		     WAL_OK, "%s", e.msg);
	cr_assert_str_eq(c.archive, "/srv/wal archive/it's here");
	cr_assert_str_eq(c.s3_region, "with # hash");
	cr_assert(c.ssh_key == NULL || c.ssh_key[0] == '\0');
	cr_assert_eq(c.compress, WAL_COMPRESS_NONE);
	wal_config_free(&c);
}

Test(config, errors_name_file_and_line, .init = setup, .fini = teardown)
{
	refused_at("archive = /a\n# comment\nno_such_setting = 1\n", 3);
	refused_at("\n\n\n\ncompress = gzip\n", 5);
	refused_at("archive = '/unterminated\n", 1);
	refused_at("archive = /a\njust some words\n", 2);
	refused_at("= value\n", 1);
	refused_at("archive = /a\ntimeout = 10 20\n", 2);
	refused_at("archive = /a\ncompress = none extra\n", 2);
	refused_at("archive = '/a' trailing\n", 1);
}

Test(config, unknown_keys, .init = setup, .fini = teardown)
{
	refused_at("archive_dir = /a\n", 1);
	refused_at("Archive = /a\n", 1);
	refused_at("compress_lvl = 3\n", 1);
	cr_assert(wal_config_known("archive"));
	cr_assert(wal_config_known("compress"));
	cr_assert(wal_config_known("http_password"));
	cr_assert(wal_config_known("s3_secret_key"));
	cr_assert(wal_config_known("system_id"));
	cr_assert(wal_config_known("timeout"));
	cr_assert_not(wal_config_known("archive_dir"));
	cr_assert_not(wal_config_known(""));
}

Test(config, booleans, .init = setup, .fini = teardown)
{
	static const struct {
		const char *text;
		int value;
	} ok[] = {
		{ "on", 1 },  { "off", 0 }, { "true", 1 }, { "false", 0 },
		{ "yes", 1 }, { "no", 0 },  { "1", 1 },	   { "0", 0 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char text[64];
		wal_config c;
		wal_error e;

		snprintf(text, sizeof(text), "tls_verify = %s\nssh_agent = %s\n", ok[i].text,
			 ok[i].text);
		cr_assert_eq(read_text(&c, text, &e), WAL_OK, "%s: %s", ok[i].text, e.msg);
		cr_assert_eq(c.tls_verify, ok[i].value, "tls_verify = %s", ok[i].text);
		cr_assert_eq(c.ssh_agent, ok[i].value, "ssh_agent = %s", ok[i].text);
		wal_config_free(&c);
	}
	refused_at("tls_verify = maybe\n", 1);
	refused_at("tls_verify = 2\n", 1);
	refused_at("tls_verify = \n", 1);
	refused_at("ssh_agent = onn\n", 1);
}

Test(config, integers, .init = setup, .fini = teardown)
{
	value_ok("timeout = 1\n");
	value_ok("retries = 10\n");
	value_ok("compress_level = 12\n");
	refused_at("timeout = -1\n", 1);
	refused_at("timeout = 0x\n", 1);
	refused_at("timeout = ten\n", 1);
	refused_at("timeout = 10s\n", 1);
	refused_at("timeout = 99999999999999999999\n", 1);
	refused_at("retries = -3\n", 1);
	refused_at("retries = 4294967297\n", 1);
	value_ok("compress_level = 19\n"); /* zstd's; lz4 stops at 12 (check_lz4_level) */
	refused_at("compress_level = 20\n", 1);
	refused_at("compress_level = -5\n", 1);
	refused_at("system_id = abc\n", 1);
	refused_at("system_id = -1\n", 1);
	refused_at("system_id = 18446744073709551616\n", 1);
}

Test(config, file_mode_is_octal, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;

	cr_assert_eq(read_text(&c, "file_mode = 0640\n", &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(c.file_mode, 0640);
	wal_config_free(&c);
	refused_at("file_mode = 0999\n", 1);
	refused_at("file_mode = 17777\n", 1);
}

Test(config, enums, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;

	cr_assert_eq(read_text(&c, "compress = lz4\nfetch_on_error = stop\n", &e), WAL_OK, "%s",
		     e.msg);
	cr_assert_eq(c.compress, WAL_COMPRESS_LZ4);
	cr_assert_eq(c.fetch_on_error, WAL_ONERR_STOP);
	wal_config_free(&c);
	cr_assert_eq(read_text(&c, "fetch_on_error = continue\ns3_uri_style = host\n", &e), WAL_OK,
		     "%s", e.msg);
	cr_assert_eq(c.fetch_on_error, WAL_ONERR_CONTINUE);
	cr_assert_eq(c.s3_uri_style, WAL_S3_HOST);
	wal_config_free(&c);
	cr_assert_eq(read_text(&c, "compress = zstd\n", &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(c.compress, WAL_COMPRESS_ZSTD);
	wal_config_free(&c);
	refused_at("compress = zlib\n", 1);
	refused_at("fetch_on_error = sometimes\n", 1);
	refused_at("s3_uri_style = virtual\n", 1);
	refused_at("log_level = loud\n", 1);
}

Test(config, set_arg_overrides_file, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;

	cr_assert_eq(read_text(&c, "archive = /a\ncompress = lz4\ntimeout = 10\n", &e), WAL_OK,
		     "%s", e.msg);
	cr_assert_eq(wal_config_set_arg(&c, "compress=none", &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_config_set_arg(&c, "archive=/b c", &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_config_set_arg(&c, "timeout=45", &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(c.compress, WAL_COMPRESS_NONE);
	cr_assert_str_eq(c.archive, "/b c");
	cr_assert_eq(c.timeout, 45);

	wal_error_clear(&e);
	cr_assert_eq(wal_config_set_arg(&c, "nosuchkey=1", &e), WAL_ECONFIG);
	cr_assert_not_null(strstr(e.msg, "nosuchkey"), "message: %s", e.msg);
	cr_assert_eq(wal_config_set_arg(&c, "compress=gzip", &e), WAL_ECONFIG);
	cr_assert_eq(wal_config_set_arg(&c, "timeout=-4", &e), WAL_ECONFIG);
	cr_assert_neq(wal_config_set_arg(&c, "compress", &e), WAL_OK, "no '='");
	cr_assert_eq(c.compress, WAL_COMPRESS_NONE, "a refused --set changed the setting");
	cr_assert_eq(c.timeout, 45);
	wal_config_free(&c);
}

Test(config, set_names_origin_and_line)
{
	wal_config c;
	wal_error e;

	wal_config_init(&c);
	cr_assert_eq(wal_config_set(&c, "compress", "none", "--set", 0, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(c.compress, WAL_COMPRESS_NONE);
	cr_assert_eq(wal_config_set(&c, "compress", "bzip2", "/etc/x.conf", 7, &e), WAL_ECONFIG);
	cr_assert_not_null(strstr(e.msg, "/etc/x.conf:7"), "message: %s", e.msg);
	wal_config_free(&c);
}

Test(config, load_explicit_path, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;
	char missing[340];

	write_conf(conf, "archive = /from/explicit\n", 0600);
	wal_config_init(&c);
	cr_assert_eq(wal_config_load(&c, conf, &e), WAL_OK, "%s", e.msg);
	cr_assert_str_eq(c.archive, "/from/explicit");
	cr_assert_not_null(c.source);
	cr_assert_str_eq(c.source, conf);
	wal_config_free(&c);

	snprintf(missing, sizeof(missing), "%s/missing.conf", dir);
	wal_config_init(&c);
	wal_error_clear(&e);
	cr_assert_neq(wal_config_load(&c, missing, &e), WAL_OK, "a missing -c file is an error");
	cr_assert_not_null(strstr(e.msg, missing), "message names the file: %s", e.msg);
	wal_config_free(&c);
}

Test(config, load_from_environment, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;
	char other[340];

	write_conf(conf, "archive = /from/env\n", 0600);
	setenv("WALARCHIVE_CONFIG", conf, 1);
	wal_config_init(&c);
	cr_assert_eq(wal_config_load(&c, NULL, &e), WAL_OK, "%s", e.msg);
	cr_assert_str_eq(c.archive, "/from/env");
	wal_config_free(&c);

	/* an explicit path wins over the environment */
	snprintf(other, sizeof(other), "%s/other.conf", dir);
	write_conf(other, "archive = /from/explicit\n", 0600);
	wal_config_init(&c);
	cr_assert_eq(wal_config_load(&c, other, &e), WAL_OK, "%s", e.msg);
	cr_assert_str_eq(c.archive, "/from/explicit");
	wal_config_free(&c);

	/* WALARCHIVE_CONFIG naming a missing file is not the silent default */
	snprintf(other, sizeof(other), "%s/missing.conf", dir);
	setenv("WALARCHIVE_CONFIG", other, 1);
	wal_config_init(&c);
	cr_assert_neq(wal_config_load(&c, NULL, &e), WAL_OK,
		      "WALARCHIVE_CONFIG names a missing file: not an error");
	wal_config_free(&c);
	unsetenv("WALARCHIVE_CONFIG");
}

Test(config, load_missing_default_is_fine)
{
	wal_config c;
	wal_error e;

	unsetenv("WALARCHIVE_CONFIG");
	if (access(WAL_CONFIG_DEFAULT_PATH, F_OK) == 0)
		cr_skip_test("%s exists on this machine", WAL_CONFIG_DEFAULT_PATH);
	wal_config_init(&c);
	cr_assert_eq(wal_config_load(&c, NULL, &e), WAL_OK, "%s", e.msg);
	cr_assert_null(c.source);
	cr_assert_eq(c.compress, WAL_COMPRESS_LZ4, "defaults kept");
	wal_config_free(&c);
}

Test(config, load_errors_name_line, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;
	char where[340];

	write_conf(conf, "archive = /a\n\ncompress = fast\n", 0600);
	wal_config_init(&c);
	cr_assert_eq(wal_config_load(&c, conf, &e), WAL_ECONFIG);
	snprintf(where, sizeof(where), "%s:3", conf);
	cr_assert_not_null(strstr(e.msg, where), "message: %s", e.msg);
	wal_config_free(&c);
}

static wal_err load_with_mode(const char *text, mode_t mode, wal_error *e)
{
	wal_config c;
	wal_err rc;

	write_conf(conf, text, mode);
	wal_config_init(&c);
	wal_error_clear(e);
	rc = wal_config_load(&c, conf, e);
	wal_config_free(&c);
	return rc;
}

Test(config, world_readable_secrets_refused, .init = setup, .fini = teardown)
{
	wal_error e;

	cr_assert_eq(load_with_mode("archive = https://dav.example/wal\nhttp_password = hunter2\n",
				    0644, &e),
		     WAL_ECONFIG, "world-readable http_password accepted");
	cr_assert_not_null(strstr(e.msg, conf), "message names the file: %s", e.msg);
	cr_assert_null(strstr(e.msg, "hunter2"), "message leaks the secret: %s", e.msg);

	cr_assert_eq(load_with_mode("archive = s3://b/p\ns3_secret_key = abc/def\n", 0604, &e),
		     WAL_ECONFIG, "world-readable s3_secret_key accepted");
	cr_assert_null(strstr(e.msg, "abc/def"), "message leaks the secret: %s", e.msg);

	cr_assert_eq(load_with_mode("archive = s3://b/p\ns3_secret_key = abc\n", 0600, &e), WAL_OK,
		     "0600 refused: %s", e.msg);
	cr_assert_eq(load_with_mode("archive = https://h/p\nhttp_password = x\n", 0600, &e), WAL_OK,
		     "0600 refused: %s", e.msg);
	cr_assert_eq(load_with_mode("archive = /var/lib/walarchive\n", 0644, &e), WAL_OK,
		     "a file without secrets may be world-readable: %s", e.msg);
}

Test(config, secret_values_stored, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;

	wal_config_init(&c);
	cr_assert_eq(wal_config_set(&c, "http_password", "s3cr3t", "--set", 0, &e), WAL_OK, "%s",
		     e.msg);
	cr_assert_str_eq(c.http_password, "s3cr3t");
	wal_config_free(&c);
}

/* A secret on the command line would be visible to every user (ps): refused. */
Test(config, set_arg_refuses_secrets)
{
	wal_config c;
	wal_error e;
	const char *secrets[] = { "http_password=x", "s3_secret_key=x", "s3_access_key=x",
				  "s3_session_token=x" };
	wal_config_init(&c);
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		cr_assert_eq(wal_config_set_arg(&c, secrets[i], &e), WAL_ECONFIG, "%s accepted",
			     secrets[i]);
		cr_assert(strstr(e.msg, "configuration file"), "%s", e.msg);
		cr_assert_null(strstr(e.msg, "=x"), "the message repeats the secret: %s", e.msg);
	}
	cr_assert_null(c.http_password);
	cr_assert_eq(wal_config_set_arg(&c, "http_user=walarchive", &e), WAL_OK, "%s", e.msg);
	wal_config_free(&c);
}

#include "ahead/ahead.h"

/* push_ahead = auto: on for archives over a network, off for a local
 * directory (where walpush is faster than the bookkeeping); a number
 * given is a number taken. */
Test(config, push_ahead_auto)
{
	wal_config c;
	wal_error e;
	char spool[] = "/tmp/walarchive-unit-spool.XXXXXX";
	cr_assert_not_null(mkdtemp(spool));
	wal_config_init(&c);
	cr_assert_eq(c.push_ahead, -1, "the default is auto");
	cr_assert_eq(wal_config_set(&c, "spool_dir", spool, "test", 1, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_config_set(&c, "archive", "/srv/wal", "test", 1, &e), WAL_OK);
	cr_assert_not(wal_ahead_push_enabled(&c), "auto pushes ahead on a local archive");
	cr_assert_eq(wal_config_set(&c, "archive", "sftp://u@h/wal", "test", 1, &e), WAL_OK);
	cr_assert(wal_ahead_push_enabled(&c), "auto does not push ahead over sftp");
	cr_assert_eq(wal_config_set(&c, "push_ahead", "0", "test", 1, &e), WAL_OK);
	cr_assert_not(wal_ahead_push_enabled(&c));
	cr_assert_eq(wal_config_set(&c, "archive", "/srv/wal", "test", 1, &e), WAL_OK);
	cr_assert_eq(wal_config_set(&c, "push_ahead", "3", "test", 1, &e), WAL_OK);
	cr_assert(wal_ahead_push_enabled(&c), "an explicit count is ignored locally");
	cr_assert_eq(wal_config_set(&c, "push_ahead", "auto", "test", 1, &e), WAL_OK);
	cr_assert_eq(c.push_ahead, -1);
	cr_assert_eq(wal_config_set(&c, "push_ahead", "lots", "test", 1, &e), WAL_ECONFIG);
	cr_assert(strstr(e.msg, "auto or an integer"), "%s", e.msg);
	/* without a usable spool, nothing is pushed ahead whatever the count */
	cr_assert_eq(wal_config_set(&c, "spool_dir", "/nonexistent/spool", "test", 1, &e), WAL_OK);
	cr_assert_eq(wal_config_set(&c, "push_ahead", "3", "test", 1, &e), WAL_OK);
	cr_assert_not(wal_ahead_push_enabled(&c));
	wal_config_free(&c);
	rmdir(spool);
}

/* Where each value came from: the file and line, --set, or nowhere (a default). */
Test(config, origin_of_each_setting, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;
	char where[340];

	cr_assert_eq(read_text(&c, "# archive\n\narchive = /a\ntimeout = 9\narchive = /b\n", &e),
		     WAL_OK, "%s", e.msg);
	snprintf(where, sizeof(where), "%s:5", conf);
	cr_assert_str_eq(wal_config_origin(&c, "archive"), where, "the line that won");
	snprintf(where, sizeof(where), "%s:4", conf);
	cr_assert_str_eq(wal_config_origin(&c, "timeout"), where);
	cr_assert_null(wal_config_origin(&c, "retries"), "a default comes from no line");
	cr_assert_null(wal_config_origin(&c, "no_such_key"));
	cr_assert_eq(wal_config_set_arg(&c, "timeout=5", &e), WAL_OK, "%s", e.msg);
	cr_assert_str_eq(wal_config_origin(&c, "timeout"), "--set");

	/* a copy pointed at another string is not what the line said */
	wal_config copy = c;
	copy.archive = "/elsewhere";
	cr_assert_null(wal_config_origin(&copy, "archive"));

	wal_fail(&e, WAL_ECONFIG, "archive \"/b\": not a directory");
	cr_assert_eq(wal_config_blame(&c, "archive", &e), WAL_ECONFIG);
	snprintf(where, sizeof(where), "%s:5: archive \"/b\": not a directory", conf);
	cr_assert_str_eq(e.msg, where);
	wal_fail(&e, WAL_ECONFIG, "retries: whatever");
	wal_config_blame(&c, "retries", &e);
	cr_assert_str_eq(e.msg, "retries: whatever", "nothing to name for a default");
	wal_fail(&e, WAL_ECONFIG, "%0760d", 7);
	wal_config_blame(&c, "timeout", &e);
	cr_assert(strncmp(e.msg, "--set: 0000", 11) == 0 && strlen(e.msg) == sizeof(e.msg) - 1,
		  "a long message is cut at its end: %.20s", e.msg);
	wal_config_free(&c);
}

/* Reads text and runs wal_config_check; returns its result. */
static wal_err check_text(wal_config *c, const char *text, char *warning, size_t cap, wal_error *e)
{
	wal_err rc = read_text(c, text, e);
	cr_assert_eq(rc, WAL_OK, "\"%s\" refused: %s", text, e->msg);
	return wal_config_check(c, warning, cap, e);
}

/* A bad archive value is found after the file is read, and named by its line. */
Test(config, check_names_archive_line, .init = setup, .fini = teardown)
{
	static const char *const bad[] = {
		"ftp://x", "relative/path", "https://u:PASSWORD@host/x", "sftp://host:0/x", "s3://",
	};
	wal_config c;
	wal_error e;
	char text[256], where[340], warning[768];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "# walarchive\ntimeout = 5\narchive = '%s'\n", bad[i]);
		cr_assert_eq(check_text(&c, text, warning, sizeof(warning), &e), WAL_ECONFIG,
			     "%s accepted", bad[i]);
		snprintf(where, sizeof(where), "%s:3: archive \"", conf);
		cr_assert(strncmp(e.msg, where, strlen(where)) == 0, "message: %s", e.msg);
		cr_assert_null(strstr(e.msg, "PASSWORD"), "the message repeats the password: %s",
			       e.msg);
		wal_config_free(&c);
	}
	/* --set is named as such */
	cr_assert_eq(read_text(&c, "archive = /a\n", &e), WAL_OK);
	cr_assert_eq(wal_config_set_arg(&c, "archive=ftp://x", &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_config_check(&c, NULL, 0, &e), WAL_ECONFIG);
	cr_assert(strncmp(e.msg, "--set: archive \"ftp://x\"", 24) == 0, "message: %s", e.msg);
	wal_config_free(&c);
	/* not set at all: the file is named */
	cr_assert_eq(check_text(&c, "timeout = 5\n", NULL, 0, &e), WAL_ECONFIG);
	snprintf(where, sizeof(where), "%s: archive is not set", conf);
	cr_assert_str_eq(e.msg, where);
	wal_config_free(&c);
	cr_assert_eq(check_text(&c, "archive = /srv/wal\n", warning, sizeof(warning), &e), WAL_OK,
		     "%s", e.msg);
	cr_assert_str_eq(warning, "");
	wal_config_free(&c);
}

/* Basic authentication over http:// sends the password in clear: a warning
 * by default, a refusal with http_cleartext_auth = refuse. */
Test(config, check_cleartext_password, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;
	char warning[768], where[420];

	cr_assert_eq(check_text(&c,
				"archive = http://dav.lan:8080/wal\nhttp_user = w\n"
				"http_password = hunter2\n",
				warning, sizeof(warning), &e),
		     WAL_OK, "%s", e.msg);
	cr_assert_str_eq(warning, "http://dav.lan:8080/wal: the password is sent in clear "
				  "(basic authentication over http://); use https://");
	cr_assert_eq(c.http_cleartext_auth, WAL_CLEARTEXT_WARN, "warn is the default");
	wal_config_free(&c);

	cr_assert_eq(check_text(&c, "archive = HTTP://w@dav.lan/wal\nhttp_password = hunter2\n",
				warning, sizeof(warning), &e),
		     WAL_OK, "%s", e.msg);
	cr_assert(warning[0], "the scheme is matched in any case");
	wal_config_free(&c);

	cr_assert_eq(check_text(&c,
				"archive = https://dav.lan/wal\nhttp_user = w\n"
				"http_password = hunter2\n",
				warning, sizeof(warning), &e),
		     WAL_OK);
	cr_assert_str_eq(warning, "", "https does not warn");
	wal_config_free(&c);
	cr_assert_eq(check_text(&c, "archive = http://dav.lan/wal\n", warning, sizeof(warning), &e),
		     WAL_OK);
	cr_assert_str_eq(warning, "", "no password, nothing sent in clear");
	wal_config_free(&c);

	cr_assert_eq(check_text(&c,
				"archive = http://dav.lan/wal\nhttp_user = w\n"
				"http_password = hunter2\nhttp_cleartext_auth = refuse\n",
				warning, sizeof(warning), &e),
		     WAL_ECONFIG);
	snprintf(where, sizeof(where),
		 "%s:1: http://dav.lan/wal: the password would be sent in clear", conf);
	cr_assert(strncmp(e.msg, where, strlen(where)) == 0, "message: %s", e.msg);
	cr_assert_null(strstr(e.msg, "hunter2"));
	cr_assert_str_eq(warning, "");
	wal_config_free(&c);
	cr_assert_eq(check_text(&c,
				"archive = https://dav.lan/wal\nhttp_user = w\n"
				"http_password = hunter2\nhttp_cleartext_auth = refuse\n",
				warning, sizeof(warning), &e),
		     WAL_OK, "refuse accepts https: %s", e.msg);
	wal_config_free(&c);
	refused_at("http_cleartext_auth = allow\n", 1);
}

/* compress_level above 12 is zstd's: with lz4 it is refused, naming its line. */
Test(config, check_lz4_level, .init = setup, .fini = teardown)
{
	wal_config c;
	wal_error e;
	char where[340];

	cr_assert_eq(check_text(&c, "archive = /a\ncompress_level = 13\n", NULL, 0, &e),
		     WAL_ECONFIG);
	snprintf(where, sizeof(where), "%s:2:", conf);
	cr_assert(strncmp(e.msg, where, strlen(where)) == 0, "message: %s", e.msg);
	cr_assert_not_null(strstr(e.msg, "lz4's levels are 1 to 12"), "message: %s", e.msg);
	wal_config_free(&c);
	cr_assert_eq(check_text(&c, "archive = /a\ncompress = zstd\ncompress_level = 19\n", NULL, 0,
				&e),
		     WAL_OK, "%s", e.msg);
	wal_config_free(&c);
}
