/*
 * Unit tests for the S3 credential chain (store/s3/credentials.h): the
 * shared config and credentials files, the metadata endpoints' JSON, STS's
 * XML answer and error, expiry and when to fetch again, and the order and
 * fail-safe of the sources that need no server.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/config.h"
#include "store/s3/credentials.h"

static const char credentials_file[] = "# a comment\n"
				       "[default]\n"
				       "aws_access_key_id = AKIADEFAULT\n"
				       "aws_secret_access_key=secret/default+1\n"
				       "\n"
				       "; another comment\n"
				       "[archive]\r\n"
				       "aws_access_key_id =   AKIAARCHIVE  \r\n"
				       "aws_secret_access_key = s3cr3t\r\n"
				       "aws_session_token = tok==\r\n";

static const char config_file[] = "[default]\n"
				  "region = eu-west-1\n"
				  "[profile fleet]\n"
				  "s3 =\n"
				  "    aws_access_key_id = NESTED\n"
				  "aws_access_key_id = AKIAFLEET\n"
				  "[profile fleet-b]\n"
				  "aws_access_key_id = AKIAB\n";

Test(s3_credentials, ini_sections_and_keys)
{
	char v[64];

	cr_assert_eq(wal_s3_ini_get(credentials_file, "default", "aws_access_key_id", v, sizeof v),
		     1);
	cr_assert_str_eq(v, "AKIADEFAULT");
	cr_assert_eq(wal_s3_ini_get(credentials_file, "default", "aws_secret_access_key", v,
				    sizeof v),
		     1);
	cr_assert_str_eq(v, "secret/default+1");
	/* CRLF lines and padding around the value */
	cr_assert_eq(wal_s3_ini_get(credentials_file, "archive", "aws_access_key_id", v, sizeof v),
		     1);
	cr_assert_str_eq(v, "AKIAARCHIVE");
	cr_assert_eq(wal_s3_ini_get(credentials_file, "archive", "aws_session_token", v, sizeof v),
		     1);
	cr_assert_str_eq(v, "tok==");
	cr_assert_eq(wal_s3_ini_get(credentials_file, "default", "aws_session_token", v, sizeof v),
		     0);
	cr_assert_eq(wal_s3_ini_get(credentials_file, "nosuch", NULL, NULL, 0), 0);
	cr_assert_eq(wal_s3_ini_get(credentials_file, "archive", NULL, NULL, 0), 1);
	/* the config file's "[profile NAME]"; an indented nested key is not the profile's */
	cr_assert_eq(wal_s3_ini_get(config_file, "profile fleet", "aws_access_key_id", v, sizeof v),
		     1);
	cr_assert_str_eq(v, "AKIAFLEET");
	cr_assert_eq(wal_s3_ini_get(config_file, "fleet", NULL, NULL, 0), 0);
	/* a longer name sharing the prefix is another profile */
	cr_assert_eq(wal_s3_ini_get(config_file, "profile fleet-b", "aws_access_key_id", v,
				    sizeof v),
		     1);
	cr_assert_str_eq(v, "AKIAB");
	cr_assert_eq(wal_s3_ini_get(credentials_file, "default", "aws_access_key_id", v, 4), -1);
}

static const char imds_answer[] = "{\n"
				  "  \"Code\" : \"Success\",\n"
				  "  \"LastUpdated\" : \"2026-11-30T20:00:00Z\",\n"
				  "  \"Type\" : \"AWS-HMAC\",\n"
				  "  \"AccessKeyId\" : \"ASIAEXAMPLE\",\n"
				  "  \"SecretAccessKey\" : \"wJalr\\/K7MDENG\\u002bbPxRfi\",\n"
				  "  \"Token\" : \"IQoJb3JpZ2luX2VjE\\\"q\",\n"
				  "  \"Expiration\" : \"2026-11-30T21:00:00Z\"\n"
				  "}\n";

Test(s3_credentials, json_of_the_metadata_service)
{
	wal_s3_creds c;
	wal_error e;

	memset(&c, 0, sizeof c);
	cr_assert_eq(wal_s3_creds_from_json(imds_answer, strlen(imds_answer), "imds", &c, &e),
		     WAL_OK, "%s", e.msg);
	cr_assert_str_eq(c.access_key, "ASIAEXAMPLE");
	cr_assert_str_eq(c.secret_key, "wJalr/K7MDENG+bPxRfi");
	cr_assert_str_eq(c.token, "IQoJb3JpZ2luX2VjE\"q");
	cr_assert_eq(c.expiration, wal_s3_parse_expiration("2026-11-30T21:00:00Z"));
}

static wal_err json_try(const char *text, wal_error *e)
{
	wal_s3_creds c;

	memset(&c, 0, sizeof c);
	return wal_s3_creds_from_json(text, strlen(text), "imds", &c, e);
}

Test(s3_credentials, json_refusals)
{
	wal_error e;

	cr_assert_neq(json_try("{\"AccessKeyId\": 1}", &e), WAL_OK);
	cr_assert(strstr(e.msg, "\"AccessKeyId\" is not a string"), "%s", e.msg);
	cr_assert_neq(json_try("{\"a\": {\"b\": \"c\"}}", &e), WAL_OK);
	cr_assert_neq(json_try("{\"a\": \"b\"} trailing", &e), WAL_OK);
	cr_assert(strstr(e.msg, "text after"), "%s", e.msg);
	cr_assert_neq(json_try("{\"a\": \"b\"", &e), WAL_OK);
	cr_assert_neq(json_try("[\"a\"]", &e), WAL_OK);
	cr_assert_neq(json_try("{\"a\": \"\\u0000\"}", &e), WAL_OK);
	cr_assert_neq(json_try("{\"a\": \"\\x\"}", &e), WAL_OK);
	/* a well-formed answer that is not a success, or lacks a key */
	cr_assert_eq(json_try("{\"Code\": \"AssumeRoleUnauthorizedAccess\", \"Message\": \"no\"}",
			      &e),
		     WAL_EAUTH);
	cr_assert(strstr(e.msg, "AssumeRoleUnauthorizedAccess: no"), "%s", e.msg);
	cr_assert_eq(json_try("{\"AccessKeyId\": \"A\", \"Token\": \"t\"}", &e), WAL_ENET);
	cr_assert(strstr(e.msg, "without AccessKeyId and SecretAccessKey"), "%s", e.msg);
	cr_assert_eq(json_try("{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"s\", "
			      "\"Expiration\": \"soon\"}",
			      &e),
		     WAL_ENET);
	cr_assert(strstr(e.msg, "unparseable Expiration"), "%s", e.msg);
}

static const char sts_answer[] =
	"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
	"  <AssumeRoleWithWebIdentityResult>\n"
	"    <SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A"
	"</SubjectFromWebIdentityToken>\n"
	"    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>\n"
	"    <AssumedRoleUser>\n"
	"      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>\n"
	"      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>\n"
	"    </AssumedRoleUser>\n"
	"    <Credentials>\n"
	"      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>\n"
	"      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"
	"      <Expiration>2014-10-24T23:00:23Z</Expiration>\n"
	"      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
	"    </Credentials>\n"
	"    <SourceIdentity>SourceIdentityValue</SourceIdentity>\n"
	"    <Provider>www.amazon.com</Provider>\n"
	"  </AssumeRoleWithWebIdentityResult>\n"
	"  <ResponseMetadata>\n"
	"    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>\n"
	"  </ResponseMetadata>\n"
	"</AssumeRoleWithWebIdentityResponse>\n";

static const char sts_error[] =
	"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
	"  <Error>\n    <Type>Sender</Type>\n    <Code>InvalidIdentityToken</Code>\n"
	"    <Message>Couldn't retrieve verification key from your identity provider</Message>\n"
	"  </Error>\n  <RequestId>x</RequestId>\n</ErrorResponse>\n";

Test(s3_credentials, sts_answer_and_error)
{
	wal_s3_creds c;
	wal_error e;

	memset(&c, 0, sizeof c);
	cr_assert_eq(wal_s3_creds_from_sts(sts_answer, strlen(sts_answer), "sts", 200, &c, &e),
		     WAL_OK, "%s", e.msg);
	cr_assert_str_eq(c.access_key, "ASgeIAIOSFODNN7EXAMPLE");
	cr_assert_str_eq(c.secret_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
	cr_assert_str_eq(c.token, "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE");
	cr_assert_eq(c.expiration, 1414191623);

	cr_assert_eq(wal_s3_creds_from_sts(sts_error, strlen(sts_error), "sts", 400, &c, &e),
		     WAL_EAUTH);
	cr_assert_str_eq(e.msg, "sts: InvalidIdentityToken: Couldn't retrieve verification key "
				"from your identity provider");
	cr_assert_eq(wal_s3_creds_from_sts("<Other/>", 8, "sts", 200, &c, &e), WAL_ENET);
	cr_assert_eq(wal_s3_creds_from_sts("not xml", 7, "sts", 502, &c, &e), WAL_ENET);
	cr_assert_eq(wal_s3_creds_from_sts(NULL, 0, "sts", 503, &c, &e), WAL_ENET);
}

Test(s3_credentials, expiration_and_when_to_refresh)
{
	wal_s3_creds c;

	cr_assert_eq(wal_s3_parse_expiration("1970-01-01T00:01:40Z"), 100);
	cr_assert_eq(wal_s3_parse_expiration("1970-01-01T00:01:40.123Z"), 100);
	cr_assert_eq(wal_s3_parse_expiration("1970-01-01T00:01:40+00:00"), 100);
	cr_assert_eq(wal_s3_parse_expiration("1970-01-01T00:01:40+02:00"), 0);
	cr_assert_eq(wal_s3_parse_expiration("tomorrow"), 0);

	memset(&c, 0, sizeof c);
	cr_assert_eq(wal_s3_creds_due(&c, 2000000000), 0, "long-term keys never");
	/* an hour's credentials: five minutes before the end */
	c.fetched = 1000;
	c.expiration = 1000 + 3600;
	cr_assert_eq(wal_s3_creds_due(&c, 1000 + 3600 - 301), 0);
	cr_assert_eq(wal_s3_creds_due(&c, 1000 + 3600 - 300), 1);
	cr_assert_eq(wal_s3_creds_due(&c, 1000 + 4000), 1);
	/* short-lived ones: half-way */
	c.expiration = 1000 + 6;
	cr_assert_eq(wal_s3_creds_due(&c, 1002), 0);
	cr_assert_eq(wal_s3_creds_due(&c, 1003), 1);
}

static void clear_env(void)
{
	static const char *const vars[] = { "AWS_ACCESS_KEY_ID",
					    "AWS_SECRET_ACCESS_KEY",
					    "AWS_SESSION_TOKEN",
					    "AWS_WEB_IDENTITY_TOKEN_FILE",
					    "AWS_ROLE_ARN",
					    "AWS_PROFILE",
					    "AWS_DEFAULT_PROFILE",
					    "AWS_SHARED_CREDENTIALS_FILE",
					    "AWS_CONFIG_FILE",
					    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
					    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
					    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
					    NULL };
	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
	/* no network from a unit test */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("HOME", "/nonexistent", 1);
}

Test(s3_credentials, chain_order_and_fail_safe)
{
	wal_config cfg;
	wal_s3_creds c;
	wal_error e;
	char path[] = "/tmp/walarchive-credsXXXXXX";
	int fd;

	clear_env();
	wal_config_init(&cfg);
	cr_assert_eq(wal_s3_creds_load(&cfg, &c, &e), WAL_ECONFIG);
	cr_assert(strstr(e.msg, "no credentials") && strstr(e.msg, "AWS_EC2_METADATA_DISABLED"),
		  "%s", e.msg);

	/* a profile file, found through AWS_SHARED_CREDENTIALS_FILE */
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, credentials_file, strlen(credentials_file)),
		     (ssize_t)strlen(credentials_file));
	close(fd);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	cr_assert_eq(wal_s3_creds_load(&cfg, &c, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(c.source, WAL_S3_SRC_PROFILE);
	cr_assert_str_eq(c.access_key, "AKIADEFAULT");
	setenv("AWS_PROFILE", "archive", 1);
	cr_assert_eq(wal_s3_creds_load(&cfg, &c, &e), WAL_OK, "%s", e.msg);
	cr_assert_str_eq(c.token, "tok==");
	setenv("AWS_PROFILE", "missing", 1);
	cr_assert_eq(wal_s3_creds_load(&cfg, &c, &e), WAL_ECONFIG);
	cr_assert(strstr(e.msg, "profile missing (AWS_PROFILE): not in"), "%s", e.msg);

	/* the environment comes before a profile; half of a pair is an error */
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	cr_assert_eq(wal_s3_creds_load(&cfg, &c, &e), WAL_ECONFIG);
	cr_assert(strstr(e.msg, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"), "%s",
		  e.msg);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	cr_assert_eq(wal_s3_creds_load(&cfg, &c, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(c.source, WAL_S3_SRC_ENV);
	cr_assert_str_eq(c.access_key, "AKIAENV");
	cr_assert_eq(c.expiration, 0);

	/* the settings come first, and never give way when half set */
	cfg.s3_access_key = strdup("AKIASET");
	cr_assert_eq(wal_s3_creds_load(&cfg, &c, &e), WAL_ECONFIG);
	cr_assert(strstr(e.msg, "s3_access_key is set but s3_secret_key is not"), "%s", e.msg);
	cfg.s3_secret_key = strdup("setsecret");
	cr_assert_eq(wal_s3_creds_load(&cfg, &c, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(c.source, WAL_S3_SRC_SETTINGS);
	cr_assert_str_eq(c.access_key, "AKIASET");

	/* a web identity missing its role, and a missing token file, are errors */
	free(cfg.s3_access_key);
	free(cfg.s3_secret_key);
	cfg.s3_access_key = cfg.s3_secret_key = NULL;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
	cr_assert_eq(wal_s3_creds_load(&cfg, &c, &e), WAL_ECONFIG);
	cr_assert(strstr(e.msg, "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not"), "%s",
		  e.msg);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
	cr_assert_eq(wal_s3_creds_load(&cfg, &c, &e), WAL_ECONFIG);
	cr_assert(strstr(e.msg, "token file /nonexistent/token: no such file"), "%s", e.msg);

	unlink(path);
	wal_config_free(&cfg);
	clear_env();
}

Test(s3_credentials, refresh_keeps_valid_credentials_when_the_source_fails)
{
	wal_config cfg;
	wal_s3_creds c;
	wal_error e;
	time_t now = time(NULL);
	int changed = 1;

	clear_env();
	wal_config_init(&cfg);
	memset(&c, 0, sizeof c);
	c.source = WAL_S3_SRC_WEB_IDENTITY;
	snprintf(c.access_key, sizeof c.access_key, "ASIAOLD");
	snprintf(c.token, sizeof c.token, "old-token");
	/* an hour's credentials with 100 s left: due, but still good */
	c.fetched = now - 3500;
	c.expiration = now + 100;
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
	cr_assert_eq(wal_s3_creds_refresh(&cfg, &c, 0, &changed, &e), WAL_OK);
	cr_assert_eq(changed, 0);
	cr_assert_str_eq(c.token, "old-token");
	/* refused by the server (forced), or about to expire: the source's error */
	cr_assert_eq(wal_s3_creds_refresh(&cfg, &c, 1, &changed, &e), WAL_ECONFIG);
	cr_assert(strstr(e.msg, "token file /nonexistent/token"), "%s", e.msg);
	c.expiration = now + 5;
	cr_assert_eq(wal_s3_creds_refresh(&cfg, &c, 0, &changed, &e), WAL_ECONFIG);
	/* long-term keys are never fetched again */
	c.expiration = 0;
	cr_assert_eq(wal_s3_creds_refresh(&cfg, &c, 1, &changed, &e), WAL_OK);
	cr_assert_eq(changed, 0);
	wal_config_free(&cfg);
	clear_env();
}
