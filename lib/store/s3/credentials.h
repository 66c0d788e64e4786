/*
 * Where the S3 driver's keys come from, in the order the AWS SDKs look:
 * the settings, the environment, a web identity exchanged at STS, the
 * shared credentials and config files, the container credentials endpoint
 * and the instance metadata service (IMDSv2).  Temporary credentials are
 * kept in the process with their expiry and fetched again before it.
 * The parsers are apart so the unit tests reach them without a server.
 */
#ifndef WAL_S3_CREDENTIALS_H
#define WAL_S3_CREDENTIALS_H

#include <stddef.h>
#include <time.h>
#include "base/config.h"
#include "base/error.h"

typedef enum {
	WAL_S3_SRC_NONE = 0,
	WAL_S3_SRC_SETTINGS,	 /* s3_access_key, s3_secret_key, s3_session_token */
	WAL_S3_SRC_ENV,		 /* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN */
	WAL_S3_SRC_WEB_IDENTITY, /* AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, at STS */
	WAL_S3_SRC_PROFILE,	 /* AWS_PROFILE in the shared credentials or config file */
	WAL_S3_SRC_CONTAINER,	 /* AWS_CONTAINER_CREDENTIALS_{FULL,RELATIVE}_URI */
	WAL_S3_SRC_IMDS,	 /* the EC2 instance metadata service, IMDSv2 */
} wal_s3_source;

/* One set of keys.  The secret and the token never appear in a message. */
typedef struct wal_s3_creds {
	wal_s3_source source;
	char access_key[256];
	char secret_key[256];
	char token[8192];  /* session token, "" for long-term keys */
	time_t expiration; /* 0: does not expire */
	time_t fetched;	   /* when they were obtained */
	char origin[512];  /* where from, for walcheck and messages: no secret */
} wal_s3_creds;

/*
 * Finds credentials along the chain.  A source that is configured but
 * fails (a half-set pair of keys, an unreadable token file, an STS
 * refusal, an unreachable metadata endpoint that was set explicitly) is an
 * error naming the source and the cause; it never falls through to a
 * later source.  Temporary credentials come from the process's cache while
 * they are fresh.  WAL_ECONFIG when no source has any.
 */
wal_err wal_s3_creds_load(const wal_config *cfg, wal_s3_creds *out, wal_error *e);

/*
 * Fetches *c again from its own source when it is due (see
 * wal_s3_creds_due) or when force is set; long-term keys are left alone.
 * If the new fetch fails while *c is still valid for a while, *c is kept
 * and WAL_OK returned; otherwise the fetch's error.  *changed is set when
 * *c was replaced.
 */
wal_err wal_s3_creds_refresh(const wal_config *cfg, wal_s3_creds *c, int force, int *changed,
			     wal_error *e);

/*
 * Whether temporary credentials should be fetched again at now: five
 * minutes before they expire, or half-way through their life when that is
 * shorter than ten minutes.  0 for credentials that do not expire.
 */
int wal_s3_creds_due(const wal_s3_creds *c, time_t now);

/* Wipes the secret and token of c. */
void wal_s3_creds_wipe(wal_s3_creds *c);

/* ---- the parsers, for the unit tests ---- */

/*
 * Looks up key in section of an AWS shared config or credentials file
 * (text, NUL-terminated): "[section]" headers, "key = value" lines, '#' and
 * ';' comments, indented lines belonging to a nested setting skipped.
 * Returns 1 and the trimmed value in out (cap bytes) when found, 0 when
 * not; -1 if the value does not fit.  section NULL: *out gets nothing and
 * the return says whether the section exists at all.
 */
int wal_s3_ini_get(const char *text, const char *section, const char *key, char *out, size_t cap);

/*
 * Parses a flat JSON object whose values are strings, as the metadata and
 * container endpoints answer, calling fn for each member.  Escapes (\" \\ \/
 * \b \f \n \r \t \uXXXX) are decoded; a value that is not a string, a
 * nested object or trailing text is WAL_EINVAL naming what.
 */
typedef wal_err (*wal_s3_json_fn)(void *arg, const char *name, const char *value, wal_error *e);
wal_err wal_s3_json_parse(const char *text, size_t len, const char *what, wal_s3_json_fn fn,
			  void *arg, wal_error *e);

/*
 * Reads AccessKeyId, SecretAccessKey, Token and Expiration from a metadata
 * or container JSON answer into c (source and origin left alone).  A
 * "Code" other than "Success", a missing key or an unparseable expiration
 * is an error naming what.
 */
wal_err wal_s3_creds_from_json(const char *text, size_t len, const char *what, wal_s3_creds *c,
			       wal_error *e);

/*
 * Reads an STS AssumeRoleWithWebIdentity answer into c, or turns an STS
 * ErrorResponse into an error "<what>: <Code>: <Message>" (WAL_EAUTH for
 * access and token refusals, WAL_ENET for the rest).
 */
wal_err wal_s3_creds_from_sts(const char *xml, size_t len, const char *what, long status,
			      wal_s3_creds *c, wal_error *e);

/* Parses an ISO 8601 UTC time "2024-01-31T12:00:00Z" (fraction and Z
 * optional); 0 if not. */
time_t wal_s3_parse_expiration(const char *text);

#endif
