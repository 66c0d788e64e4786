/*
 * The S3 credential sources the host serves: a container's credentials
 * endpoint (ECS, EKS Pod Identity) and the EC2 instance metadata service
 * (IMDSv2).  The rest of the chain, and the helpers these share with it,
 * are in credentials.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/url.h"
#include "store/http/http.h"
#include "store/s3/credentials.h"
#include "store/s3/sources.h"

#define IMDS_DEFAULT "http://169.254.169.254"
#define CONTAINER_HOST "http://169.254.170.2"

/* Whether a plain-http container endpoint is one the platform serves
 * on-host, where the AWS SDKs allow http. */
static int container_host_ok(const char *url)
{
	static const char *const hosts[] = { "http://127.",
					     "http://localhost",
					     "http://[::1]",
					     "http://169.254.170.2",
					     "http://169.254.170.23",
					     "http://[fd00:ec2::23]",
					     NULL };
	int i;

	if (strncmp(url, "https://", 8) == 0)
		return 1;
	for (i = 0; hosts[i]; i++) {
		size_t n = strlen(hosts[i]);
		char next = url[n];

		if (strncmp(url, hosts[i], n) == 0 &&
		    (hosts[i][n - 1] == '.' || next == '\0' || next == '/' || next == ':'))
			return 1;
	}
	return 0;
}

wal_err wal_s3_cred_from_container(const wal_config *cfg, int use_cache, wal_s3_creds *out,
				   int *found, wal_error *e)
{
	const char *relative = wal_s3_cred_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = wal_s3_cred_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *token_file = wal_s3_cred_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *token = wal_s3_cred_env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char url[2048], shown[2048], what[2100], key[2100], *file_token = NULL;
	char *auth = NULL;
	const char *headers[3] = { "Accept: application/json", NULL, NULL };
	wal_http_resp resp = { 0 };
	size_t len = 0;
	wal_err rc = WAL_OK;

	if (!relative && !full)
		return WAL_OK;
	*found = 1;
	if (relative)
		snprintf(url, sizeof url, "%s%s%s", CONTAINER_HOST, relative[0] == '/' ? "" : "/",
			 relative);
	else
		snprintf(url, sizeof url, "%s", full);
	wal_url_redact(url, shown, sizeof shown);
	snprintf(what, sizeof what, "container credentials at %s", shown);
	if (!relative && !container_host_ok(url))
		return wal_fail(e, WAL_ECONFIG,
				"%s: AWS_CONTAINER_CREDENTIALS_FULL_URI must be https or a "
				"loopback or container host",
				what);
	snprintf(key, sizeof key, "container|%s", url);
	if (use_cache && wal_s3_cred_cached(key, out))
		return WAL_OK;
	if (token_file) {
		if (!wal_s3_cred_read_small(token_file, &file_token, &len))
			return wal_fail_errno(e, WAL_ECONFIG, errno,
					      "container credentials: token file %s", token_file);
		while (len > 0 && (file_token[len - 1] == '\n' || file_token[len - 1] == '\r'))
			file_token[--len] = '\0';
		token = file_token;
	}
	if (token) {
		len = strlen(token) + 32;
		auth = malloc(len);
		if (!auth) {
			rc = wal_fail(e, WAL_ENOMEM, "%s: out of memory", what);
			goto out;
		}
		snprintf(auth, len, "Authorization: %s", token);
		headers[1] = auth;
	}
	rc = wal_s3_cred_call(cfg, "GET", url, what, headers, NULL, 2, 2, &resp, e);
	if (rc == WAL_OK && (resp.status < 200 || resp.status >= 300))
		rc = wal_http_status_err(what, "GET", &resp, e);
	if (rc == WAL_OK)
		rc = wal_s3_creds_from_json(resp.body, resp.body_len, what, out, e);
	if (rc != WAL_OK)
		goto out;
	snprintf(out->origin, sizeof out->origin, "container credentials (%.450s)", shown);
	wal_s3_cred_fetched(out, WAL_S3_SRC_CONTAINER, key);
out:
	if (resp.body)
		memset(resp.body, 0, resp.body_len);
	wal_http_resp_free(&resp);
	wal_s3_cred_wipe_text(auth);
	wal_s3_cred_wipe_text(file_token);
	return rc;
}

/*
 * IMDSv2's session token (PUT), as the header the next requests carry.
 * given: the endpoint was set, so it has more than a one-second budget.
 */
static wal_err imds_token(const wal_config *cfg, const char *base, const char *what, int given,
			  char *token_hdr, size_t cap, wal_error *e)
{
	const char *ttl[] = { "X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL };
	wal_http_resp resp = { 0 };
	char url[1400];
	size_t n;
	wal_err rc;

	snprintf(url, sizeof url, "%s/latest/api/token", base);
	rc = wal_s3_cred_call(cfg, "PUT", url, what, ttl, "", 1, given ? 1 : 0, &resp, e);
	if (rc == WAL_OK && resp.status != 200)
		rc = wal_http_status_err(what, "PUT token", &resp, e);
	if (rc == WAL_OK) {
		n = resp.body_len;
		while (n > 0 && (resp.body[n - 1] == '\n' || resp.body[n - 1] == '\r'))
			n--;
		if (n == 0 || n + 32 > cap)
			rc = wal_fail(e, WAL_ENET, "%s: unusable session token", what);
		else
			snprintf(token_hdr, cap, "X-aws-ec2-metadata-token: %.*s", (int)n,
				 resp.body);
	}
	wal_http_resp_free(&resp);
	return rc;
}

/* The name of the role attached to the instance, into role (cap bytes). */
static wal_err imds_role(const wal_config *cfg, const char *base, const char *what,
			 const char *const *with_token, char *role, size_t cap, wal_error *e)
{
	wal_http_resp resp = { 0 };
	char url[1400];
	size_t n;
	wal_err rc;

	snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", base);
	rc = wal_s3_cred_call(cfg, "GET", url, what, with_token, NULL, 1, 1, &resp, e);
	if (rc == WAL_OK && resp.status == 404)
		rc = wal_fail(e, WAL_ECONFIG, "%s: no instance role attached", what);
	else if (rc == WAL_OK)
		rc = wal_http_status_err(what, "GET role", &resp, e);
	if (rc == WAL_OK) {
		const char *body = resp.body ? resp.body : "";

		n = strcspn(body, "\r\n");
		if (n == 0 || n >= cap || memchr(body, '/', n))
			rc = wal_fail(e, WAL_ENET, "%s: unusable role name", what);
		else
			snprintf(role, cap, "%.*s", (int)n, body);
	}
	wal_http_resp_free(&resp);
	return rc;
}

/*
 * IMDSv2: a session token first (PUT), then the role's name and its
 * credentials, each request carrying the token.  An endpoint nobody set is
 * tried with a one-second budget, so a host without one is not slowed;
 * why it failed goes into cause for the chain's final message.
 */
wal_err wal_s3_cred_from_imds(const wal_config *cfg, int use_cache, wal_s3_creds *out, int *found,
			      char *cause, size_t cause_cap, wal_error *e)
{
	const char *given = wal_s3_cred_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *disabled = wal_s3_cred_env("AWS_EC2_METADATA_DISABLED");
	char base[1024], url[1400], shown[1024], what[1100], key[1100];
	char role[256], token_hdr[512];
	const char *with_token[] = { token_hdr, NULL };
	wal_http_resp resp = { 0 };
	wal_error err;
	wal_err rc;
	size_t n;

	if (disabled && strcasecmp(disabled, "true") == 0) {
		snprintf(cause, cause_cap, "disabled by AWS_EC2_METADATA_DISABLED");
		return WAL_OK;
	}
	snprintf(base, sizeof base, "%s", given ? given : IMDS_DEFAULT);
	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		base[--n] = '\0';
	wal_url_redact(base, shown, sizeof shown);
	snprintf(what, sizeof what, "instance metadata at %s", shown);
	snprintf(key, sizeof key, "imds|%s", base);
	if (use_cache && wal_s3_cred_cached(key, out)) {
		*found = 1;
		return WAL_OK;
	}
	token_hdr[0] = '\0';
	rc = imds_token(cfg, base, what, given != NULL, token_hdr, sizeof token_hdr, &err);
	if (rc != WAL_OK) {
		/* no session token from the usual address: a host without the
		 * service (or something else answering there), unless someone set it */
		if (!given) {
			snprintf(cause, cause_cap, "%s", err.msg);
			return WAL_OK;
		}
		*found = 1;
		if (e)
			*e = err;
		return rc;
	}
	*found = 1;
	if ((rc = imds_role(cfg, base, what, with_token, role, sizeof role, e)) != WAL_OK)
		goto out;
	snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", base);
	if ((rc = wal_http_encode(role, 0, url, sizeof url, e)) != WAL_OK)
		goto out;
	rc = wal_s3_cred_call(cfg, "GET", url, what, with_token, NULL, 1, 1, &resp, e);
	if (rc == WAL_OK)
		rc = wal_http_status_err(what, "GET credentials", &resp, e);
	if (rc == WAL_OK)
		rc = wal_s3_creds_from_json(resp.body, resp.body_len, what, out, e);
	if (resp.body)
		memset(resp.body, 0, resp.body_len);
	wal_http_resp_free(&resp);
	if (rc != WAL_OK)
		goto out;
	snprintf(out->origin, sizeof out->origin, "instance metadata (role %.200s at %.250s)", role,
		 shown);
	wal_s3_cred_fetched(out, WAL_S3_SRC_IMDS, key);
out:
	memset(token_hdr, 0, sizeof token_hdr);
	return rc;
}
