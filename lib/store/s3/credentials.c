/*
 * The S3 credential chain: one function per source, tried in the order
 * the AWS SDKs use, and the process's cache of temporary credentials with
 * their expiry.  A source that is configured but fails stops the chain
 * with its own error; the parsers are in parse_creds.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/url.h"
#include "store/http/http.h"
#include "store/s3/credentials.h"
#include "store/s3/sources.h"

#define TOKEN_FILE_MAX (64 * 1024)

/* The temporary credentials of this process, and the inputs they came from. */
static struct {
	int valid;
	char key[2048];
	wal_s3_creds creds;
} cache;

void wal_s3_creds_wipe(wal_s3_creds *c)
{
	memset(c->secret_key, 0, sizeof c->secret_key);
	memset(c->token, 0, sizeof c->token);
}

int wal_s3_creds_due(const wal_s3_creds *c, time_t now)
{
	time_t life, window;

	if (!c->expiration)
		return 0;
	life = c->expiration - c->fetched;
	window = 300;
	if (life < 600)
		window = life > 0 ? life / 2 : 0;
	return now >= c->expiration - window;
}

const char *wal_s3_cred_env(const char *name)
{
	const char *v = getenv(name);

	return v && v[0] ? v : NULL;
}

static const char *set(const char *v)
{
	return v && v[0] ? v : NULL;
}

/* Reads a small file whole into *text (NUL-terminated, to be freed and
 * wiped by the caller).  Returns 0 with errno set on failure. */
int wal_s3_cred_read_small(const char *path, char **text, size_t *len)
{
	struct stat st;
	ssize_t got;
	size_t n = 0;
	int fd, saved;

	*text = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > TOKEN_FILE_MAX) {
		saved = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		close(fd);
		errno = saved;
		return 0;
	}
	*text = malloc((size_t)st.st_size + 1);
	if (!*text) {
		close(fd);
		errno = ENOMEM;
		return 0;
	}
	while (n < (size_t)st.st_size && ((got = read(fd, *text + n, (size_t)st.st_size - n)) > 0 ||
					  (got < 0 && errno == EINTR)))
		if (got > 0)
			n += (size_t)got;
	saved = errno;
	close(fd);
	if (n < (size_t)st.st_size) {
		free(*text);
		*text = NULL;
		errno = saved ? saved : EIO;
		return 0;
	}
	(*text)[n] = '\0';
	if (len)
		*len = n;
	return 1;
}

void wal_s3_cred_wipe_text(char *text)
{
	if (text) {
		memset(text, 0, strlen(text));
		free(text);
	}
}

/* One request to a credentials endpoint on a handle of its own. */
wal_err wal_s3_cred_call(const wal_config *cfg, const char *method, const char *url,
			 const char *what, const char *const *headers, const char *body,
			 int timeout, int retries, wal_http_resp *resp, wal_error *e)
{
	wal_http_opts opts = { 0 };
	wal_http *h = NULL;
	wal_http_req req = { .method = method,
			     .url = url,
			     .what = what,
			     .headers = headers,
			     .body = body,
			     .body_len = body ? strlen(body) : 0 };
	wal_err rc;

	memset(resp, 0, sizeof *resp);
	opts.ca_file = cfg->tls_ca_file;
	opts.tls_verify = cfg->tls_verify;
	opts.timeout = timeout;
	opts.retries = retries;
	if ((rc = wal_http_open(&h, &opts, e)) != WAL_OK)
		return rc;
	rc = wal_http_do(h, &req, resp, e);
	wal_http_close(h);
	return rc;
}

/* Fills the bookkeeping of freshly fetched credentials and caches them. */
void wal_s3_cred_fetched(wal_s3_creds *out, wal_s3_source source, const char *key)
{
	out->source = source;
	out->fetched = time(NULL);
	if (!out->expiration)
		return;
	if (strlen(key) < sizeof cache.key) {
		wal_s3_creds_wipe(&cache.creds);
		cache.creds = *out;
		snprintf(cache.key, sizeof cache.key, "%s", key);
		cache.valid = 1;
	}
}

/* The cached credentials for key when they are not yet due. */
int wal_s3_cred_cached(const char *key, wal_s3_creds *out)
{
	if (!cache.valid || strcmp(cache.key, key) != 0 ||
	    wal_s3_creds_due(&cache.creds, time(NULL)))
		return 0;
	*out = cache.creds;
	return 1;
}

static wal_err copy_keys(wal_s3_creds *out, const char *what, const char *access,
			 const char *secret, const char *token, wal_error *e)
{
	if (snprintf(out->access_key, sizeof out->access_key, "%s", access) >=
		    (int)sizeof out->access_key ||
	    snprintf(out->secret_key, sizeof out->secret_key, "%s", secret) >=
		    (int)sizeof out->secret_key ||
	    snprintf(out->token, sizeof out->token, "%s", token ? token : "") >=
		    (int)sizeof out->token)
		return wal_fail(e, WAL_ECONFIG, "%s: key or token too long", what);
	return WAL_OK;
}

/* ---- the sources ---- */

static wal_err from_settings(const wal_config *cfg, int use_cache, wal_s3_creds *out, int *found,
			     wal_error *e)
{
	const char *access = set(cfg->s3_access_key), *secret = set(cfg->s3_secret_key);
	wal_err rc;

	(void)use_cache;
	if (!access && !secret) {
		if (set(cfg->s3_session_token)) {
			wal_fail(e, WAL_ECONFIG,
				 "s3_session_token is set without s3_access_key and s3_secret_key");
			return wal_config_blame(cfg, "s3_session_token", e);
		}
		return WAL_OK;
	}
	*found = 1;
	if (!access || !secret) {
		/* a configured key never gives way to another source */
		wal_fail(e, WAL_ECONFIG, "%s is set but %s is not",
			 access ? "s3_access_key" : "s3_secret_key",
			 access ? "s3_secret_key" : "s3_access_key");
		return wal_config_blame(cfg, access ? "s3_access_key" : "s3_secret_key", e);
	}
	if ((rc = copy_keys(out, "settings", access, secret, set(cfg->s3_session_token), e)) !=
	    WAL_OK)
		return rc;
	snprintf(out->origin, sizeof out->origin, "settings (s3_access_key)");
	wal_s3_cred_fetched(out, WAL_S3_SRC_SETTINGS, "");
	return WAL_OK;
}

static wal_err from_env(const wal_config *cfg, int use_cache, wal_s3_creds *out, int *found,
			wal_error *e)
{
	const char *access = wal_s3_cred_env("AWS_ACCESS_KEY_ID"),
		   *secret = wal_s3_cred_env("AWS_SECRET_ACCESS_KEY");
	wal_err rc;

	(void)cfg;
	(void)use_cache;
	if (!access && !secret)
		return WAL_OK;
	*found = 1;
	if (!access || !secret)
		return wal_fail(e, WAL_ECONFIG, "environment: %s is set but %s is not",
				access ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
				access ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	if ((rc = copy_keys(out, "environment", access, secret,
			    wal_s3_cred_env("AWS_SESSION_TOKEN"), e)) != WAL_OK)
		return rc;
	snprintf(out->origin, sizeof out->origin, "environment (AWS_ACCESS_KEY_ID)");
	wal_s3_cred_fetched(out, WAL_S3_SRC_ENV, "");
	return WAL_OK;
}

/* The STS URL: s3_sts_endpoint, AWS_ENDPOINT_URL_STS, or the region's. */
static wal_err sts_url(const wal_config *cfg, char *out, size_t cap, wal_error *e)
{
	const char *endpoint = set(cfg->s3_sts_endpoint);
	const char *region = set(cfg->s3_region) ? cfg->s3_region : "us-east-1";
	int n;

	if (!endpoint)
		endpoint = wal_s3_cred_env("AWS_ENDPOINT_URL_STS");
	if (!endpoint)
		n = snprintf(out, cap, "https://sts.%s.amazonaws.com/", region);
	else if (strncmp(endpoint, "http://", 7) == 0 || strncmp(endpoint, "https://", 8) == 0)
		n = snprintf(out, cap, "%s%s", endpoint,
			     strchr(strstr(endpoint, "://") + 3, '/') ? "" : "/");
	else
		n = snprintf(out, cap, "https://%s/", endpoint);
	if (n < 0 || (size_t)n >= cap) {
		wal_fail(e, WAL_ECONFIG, "s3_sts_endpoint too long");
		return wal_config_blame(cfg, "s3_sts_endpoint", e);
	}
	return WAL_OK;
}

/* Appends "&name=value", the value percent-encoded. */
static wal_err form_add(char *form, size_t cap, const char *name, const char *value, wal_error *e)
{
	size_t n = strlen(form);

	if (n + strlen(name) + 3 >= cap)
		return wal_fail(e, WAL_ECONFIG, "web identity: request too long");
	snprintf(form + n, cap - n, "%s%s=", n ? "&" : "", name);
	return wal_http_encode(value, 0, form, cap, e);
}

static wal_err from_web_identity(const wal_config *cfg, int use_cache, wal_s3_creds *out,
				 int *found, wal_error *e)
{
	const char *token_file = wal_s3_cred_env("AWS_WEB_IDENTITY_TOKEN_FILE"),
		   *role = wal_s3_cred_env("AWS_ROLE_ARN");
	const char *session = wal_s3_cred_env("AWS_ROLE_SESSION_NAME");
	char url[1024], shown[1024], what[1200], key[2048];
	const char *headers[] = { "Content-Type: application/x-www-form-urlencoded",
				  "Accept: text/xml", "Expect:", NULL };
	char *token = NULL, *form = NULL;
	size_t cap, len;
	wal_http_resp resp = { 0 };
	wal_err rc;

	if (!token_file && !role)
		return WAL_OK;
	*found = 1;
	if (!token_file || !role)
		return wal_fail(e, WAL_ECONFIG, "web identity: %s is set but %s is not",
				token_file ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN",
				token_file ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE");
	if ((rc = sts_url(cfg, url, sizeof url, e)) != WAL_OK)
		return rc;
	wal_url_redact(url, shown, sizeof shown);
	snprintf(key, sizeof key, "web|%s|%s|%s|%s", token_file, role, session ? session : "", url);
	if (use_cache && wal_s3_cred_cached(key, out))
		return WAL_OK;
	/* read at every fetch: the platform rotates the token file */
	if (!wal_s3_cred_read_small(token_file, &token, &len))
		return wal_fail_errno(e, WAL_ECONFIG, errno, "web identity: token file %s",
				      token_file);
	while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r' ||
			   token[len - 1] == ' ' || token[len - 1] == '\t'))
		token[--len] = '\0';
	if (!len) {
		rc = wal_fail(e, WAL_ECONFIG, "web identity: token file %s is empty", token_file);
		goto out;
	}
	cap = 3 * len + 3 * strlen(role) + 512;
	form = calloc(1, cap);
	if (!form) {
		rc = wal_fail(e, WAL_ENOMEM, "web identity: out of memory");
		goto out;
	}
	if ((rc = form_add(form, cap, "Action", "AssumeRoleWithWebIdentity", e)) != WAL_OK ||
	    (rc = form_add(form, cap, "RoleArn", role, e)) != WAL_OK ||
	    (rc = form_add(form, cap, "RoleSessionName", session ? session : "walarchive", e)) !=
		    WAL_OK ||
	    (rc = form_add(form, cap, "Version", "2011-06-15", e)) != WAL_OK ||
	    (rc = form_add(form, cap, "WebIdentityToken", token, e)) != WAL_OK)
		goto out;
	snprintf(what, sizeof what, "web identity: sts at %s", shown);
	rc = wal_s3_cred_call(cfg, "POST", url, what, headers, form,
			      cfg->timeout > 0 ? cfg->timeout : 30, cfg->retries, &resp, e);
	if (rc == WAL_OK)
		rc = wal_s3_creds_from_sts(resp.body, resp.body_len, what, resp.status, out, e);
	if (rc != WAL_OK)
		goto out;
	snprintf(out->origin, sizeof out->origin, "web identity (%.200s via %.250s)", role, shown);
	wal_s3_cred_fetched(out, WAL_S3_SRC_WEB_IDENTITY, key);
out:
	if (resp.body)
		memset(resp.body, 0, resp.body_len);
	wal_http_resp_free(&resp);
	if (form) {
		memset(form, 0, cap);
		free(form);
	}
	wal_s3_cred_wipe_text(token);
	return rc;
}

static const char *home_dir(void)
{
	const char *home = wal_s3_cred_env("HOME");
	struct passwd *pw;

	if (home)
		return home;
	pw = getpwuid(getuid());
	return pw && pw->pw_dir ? pw->pw_dir : NULL;
}

/* Reads the file named by variable, or ~/.aws/name.  *text NULL and WAL_OK
 * when a default file is absent; an explicitly named file must exist. */
static wal_err read_aws_file(const char *variable, const char *name, char *path, size_t cap,
			     char **text, wal_error *e)
{
	const char *given = wal_s3_cred_env(variable), *home = home_dir();

	*text = NULL;
	if (given)
		snprintf(path, cap, "%s", given);
	else if (home)
		snprintf(path, cap, "%s/.aws/%s", home, name);
	else {
		path[0] = '\0';
		return WAL_OK;
	}
	if (wal_s3_cred_read_small(path, text, NULL))
		return WAL_OK;
	if (errno == ENOENT && !given)
		return WAL_OK;
	return wal_fail_errno(e, WAL_ECONFIG, errno, "profile: %s%s%s%s", path, given ? " (" : "",
			      given ? variable : "", given ? ")" : "");
}

/*
 * The text and section that hold profile: "[NAME]" in the credentials file,
 * else "[profile NAME]" (or, for the default profile, "[default]") in the
 * config file.  NULL when neither has it; *path names the file.
 */
static const char *profile_section(const char *profile, const char *cred_text,
				   const char *cred_path, const char *conf_text,
				   const char *conf_path, char *section, size_t cap,
				   const char **path)
{
	if (cred_text && wal_s3_ini_get(cred_text, profile, NULL, NULL, 0) == 1) {
		*path = cred_path;
		snprintf(section, cap, "%s", profile);
		return cred_text;
	}
	if (!conf_text)
		return NULL;
	snprintf(section, cap, "profile %s", profile);
	if (wal_s3_ini_get(conf_text, section, NULL, NULL, 0) != 1 &&
	    strcmp(profile, "default") == 0)
		snprintf(section, cap, "default");
	if (wal_s3_ini_get(conf_text, section, NULL, NULL, 0) != 1)
		return NULL;
	*path = conf_path;
	return conf_text;
}

/*
 * The error of a profile without both keys (got: 1 the access key alone,
 * 2 the secret alone, 0 neither), naming a setting of the AWS CLI that
 * walarchive does not follow when the profile relies on one.
 */
static wal_err profile_keys_missing(const char *text, const char *section, const char *where,
				    int got, wal_error *e)
{
	static const char *const unsupported[] = { "role_arn", "credential_process", "sso_session",
						   "sso_start_url", NULL };
	char probe[8];
	int i;

	if (got != 0)
		return wal_fail(e, WAL_ECONFIG, "%s: %s without %s", where,
				got == 1 ? "aws_access_key_id" : "aws_secret_access_key",
				got == 1 ? "aws_secret_access_key" : "aws_access_key_id");
	for (i = 0; unsupported[i]; i++)
		if (wal_s3_ini_get(text, section, unsupported[i], probe, sizeof probe))
			return wal_fail(e, WAL_ECONFIG,
					"%s: %s is not supported; give the profile "
					"aws_access_key_id and aws_secret_access_key",
					where, unsupported[i]);
	return wal_fail(e, WAL_ECONFIG, "%s: no aws_access_key_id and aws_secret_access_key",
			where);
}

static wal_err from_profile(const wal_config *cfg, int use_cache, wal_s3_creds *out, int *found,
			    wal_error *e)
{
	const char *profile = wal_s3_cred_env("AWS_PROFILE");
	int explicit = profile != NULL;
	char cred_path[1024], conf_path[1024], section[300], where[2100];
	char access[256], secret[256], *token = NULL;
	char *cred_text = NULL, *conf_text = NULL;
	const char *text = NULL, *path = NULL;
	wal_err rc;
	int got;

	(void)cfg;
	(void)use_cache;
	if (!profile)
		profile = wal_s3_cred_env("AWS_DEFAULT_PROFILE");
	explicit |= profile != NULL;
	if (!profile)
		profile = "default";
	if ((rc = read_aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials", cred_path,
				sizeof cred_path, &cred_text, e)) != WAL_OK ||
	    (rc = read_aws_file("AWS_CONFIG_FILE", "config", conf_path, sizeof conf_path,
				&conf_text, e)) != WAL_OK) {
		*found = 1;
		goto out;
	}
	text = profile_section(profile, cred_text, cred_path, conf_text, conf_path, section,
			       sizeof section, &path);
	if (!text) {
		if (explicit) {
			*found = 1;
			rc = wal_fail(e, WAL_ECONFIG, "profile %s (AWS_PROFILE): not in %s or %s",
				      profile, cred_path[0] ? cred_path : "~/.aws/credentials",
				      conf_path[0] ? conf_path : "~/.aws/config");
		}
		goto out;
	}
	*found = 1;
	snprintf(where, sizeof where, "profile %s in %s", profile, path);
	token = malloc(sizeof out->token);
	if (!token) {
		rc = wal_fail(e, WAL_ENOMEM, "%s: out of memory", where);
		goto out;
	}
	got = wal_s3_ini_get(text, section, "aws_access_key_id", access, sizeof access) == 1;
	got += (wal_s3_ini_get(text, section, "aws_secret_access_key", secret, sizeof secret) ==
		1) *
	       2;
	if (wal_s3_ini_get(text, section, "aws_session_token", token, sizeof out->token) != 1)
		token[0] = '\0';
	if (got != 3) {
		rc = profile_keys_missing(text, section, where, got, e);
		goto out;
	}
	if ((rc = copy_keys(out, where, access, secret, token, e)) != WAL_OK)
		goto out;
	snprintf(out->origin, sizeof out->origin, "%.500s", where);
	out->expiration = 0;
	wal_s3_cred_fetched(out, WAL_S3_SRC_PROFILE, "");
out:
	memset(secret, 0, sizeof secret);
	if (token) {
		memset(token, 0, sizeof out->token);
		free(token);
	}
	wal_s3_cred_wipe_text(cred_text);
	wal_s3_cred_wipe_text(conf_text);
	return rc;
}

/* ---- the chain ---- */

/* Asks one source; *found says whether it is configured at all. */
static wal_err ask(wal_s3_source source, const wal_config *cfg, int use_cache, wal_s3_creds *out,
		   int *found, char *cause, size_t cause_cap, wal_error *e)
{
	*found = 0;
	switch (source) {
	case WAL_S3_SRC_SETTINGS:
		return from_settings(cfg, use_cache, out, found, e);
	case WAL_S3_SRC_ENV:
		return from_env(cfg, use_cache, out, found, e);
	case WAL_S3_SRC_WEB_IDENTITY:
		return from_web_identity(cfg, use_cache, out, found, e);
	case WAL_S3_SRC_PROFILE:
		return from_profile(cfg, use_cache, out, found, e);
	case WAL_S3_SRC_CONTAINER:
		return wal_s3_cred_from_container(cfg, use_cache, out, found, e);
	case WAL_S3_SRC_IMDS:
		return wal_s3_cred_from_imds(cfg, use_cache, out, found, cause, cause_cap, e);
	default:
		return WAL_OK;
	}
}

wal_err wal_s3_creds_load(const wal_config *cfg, wal_s3_creds *out, wal_error *e)
{
	static const wal_s3_source order[] = { WAL_S3_SRC_SETTINGS,	WAL_S3_SRC_ENV,
					       WAL_S3_SRC_WEB_IDENTITY, WAL_S3_SRC_PROFILE,
					       WAL_S3_SRC_CONTAINER,	WAL_S3_SRC_IMDS };
	char cause[800] = "";
	size_t i;

	memset(out, 0, sizeof *out);
	for (i = 0; i < sizeof order / sizeof order[0]; i++) {
		int found = 0;
		wal_err rc = ask(order[i], cfg, 1, out, &found, cause, sizeof cause, e);

		if (rc != WAL_OK || found) {
			if (rc != WAL_OK)
				wal_s3_creds_wipe(out);
			return rc;
		}
	}
	return wal_fail(e, WAL_ECONFIG,
			"no credentials: set s3_access_key and s3_secret_key, AWS_ACCESS_KEY_ID "
			"and AWS_SECRET_ACCESS_KEY, a web identity or a profile (%s)",
			cause[0] ? cause : "instance metadata: not tried");
}

wal_err wal_s3_creds_refresh(const wal_config *cfg, wal_s3_creds *c, int force, int *changed,
			     wal_error *e)
{
	wal_s3_creds *fresh;
	char cause[800] = "";
	time_t now = time(NULL);
	int found = 0;
	wal_err rc;

	*changed = 0;
	if (!c->expiration || (!force && !wal_s3_creds_due(c, now)))
		return WAL_OK;
	fresh = calloc(1, sizeof *fresh);
	if (!fresh)
		return wal_fail(e, WAL_ENOMEM, "s3 credentials: out of memory");
	/* forced: the server refused these, so the cache's copy is stale too */
	if (force && cache.valid && strcmp(cache.creds.access_key, c->access_key) == 0 &&
	    strcmp(cache.creds.token, c->token) == 0)
		cache.valid = 0;
	rc = ask(c->source, cfg, 1, fresh, &found, cause, sizeof cause, e);
	if (rc == WAL_OK && !found)
		rc = wal_fail(e, WAL_ECONFIG, "%s: no longer configured%s%s", c->origin,
			      cause[0] ? ": " : "", cause);
	if (rc == WAL_OK) {
		wal_s3_creds_wipe(c);
		*c = *fresh;
		*changed = 1;
	} else if (!force && c->expiration - now > 10) {
		/* still valid for a while: the next request tries again */
		rc = WAL_OK;
	}
	wal_s3_creds_wipe(fresh);
	free(fresh);
	return rc;
}
