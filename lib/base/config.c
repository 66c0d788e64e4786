/*
 * The configuration file and --set overrides: one table describes every
 * setting (name, type, where it lives in wal_config), and one parser reads
 * postgresql.conf-style lines into it.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/config.h"
#include "base/log.h"
#include "base/url.h"

typedef enum { T_STRING, T_BOOL, T_INT, T_ENUM, T_U64, T_MODE } setting_type;

typedef struct setting {
	const char *name;
	setting_type type;
	size_t offset;
	int secret;		    /* refused in files that others can read */
	int min, max;		    /* T_INT range */
	const char *const *choices; /* T_ENUM names, index = value */
	int auto_ok;		    /* T_INT: "auto" is accepted, stored as -1 */
} setting;

static const char *const compress_names[] = { "none", "lz4", "zstd", NULL };
static const char *const onerr_names[] = { "auto", "stop", "continue", NULL };
static const char *const style_names[] = { "host", "path", NULL };
static const char *const level_names[] = { "error", "warning", "notice", "info", "debug", NULL };
static const char *const cleartext_names[] = { "warn", "refuse", NULL };

#define S(n, t) #n, t, offsetof(wal_config, n)
static const setting settings[] = {
	{ S(archive, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(compress, T_ENUM), 0, 0, 0, compress_names, 0 },
	{ S(compress_level, T_INT), 0, 1, 19, NULL, 0 }, /* lz4: to 12 (wal_config_check) */
	{ S(file_mode, T_MODE), 0, 0, 0, NULL, 0 },
	{ S(ssh_key, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(ssh_key_passphrase_file, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(ssh_known_hosts, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(ssh_agent, T_BOOL), 0, 0, 0, NULL, 0 },
	{ S(sftp_require_fsync, T_BOOL), 0, 0, 0, NULL, 0 },
	{ S(http_user, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(http_password, T_STRING), 1, 0, 0, NULL, 0 },
	{ S(tls_ca_file, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(tls_verify, T_BOOL), 0, 0, 0, NULL, 0 },
	{ S(http_cleartext_auth, T_ENUM), 0, 0, 0, cleartext_names, 0 },
	{ S(s3_endpoint, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(s3_region, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(s3_uri_style, T_ENUM), 0, 0, 0, style_names, 0 },
	{ S(s3_access_key, T_STRING), 1, 0, 0, NULL, 0 },
	{ S(s3_secret_key, T_STRING), 1, 0, 0, NULL, 0 },
	{ S(s3_session_token, T_STRING), 1, 0, 0, NULL, 0 },
	{ S(s3_sts_endpoint, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(s3_sse, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(s3_sse_kms_key_id, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(s3_storage_class, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(azure_endpoint, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(azure_account_key, T_STRING), 1, 0, 0, NULL, 0 },
	{ S(azure_sas_token, T_STRING), 1, 0, 0, NULL, 0 },
	{ S(timeout, T_INT), 0, 1, 3600, NULL, 0 },
	{ S(retries, T_INT), 0, 0, 100, NULL, 0 },
	{ S(system_id, T_U64), 0, 0, 0, NULL, 0 },
	{ S(fetch_on_error, T_ENUM), 0, 0, 0, onerr_names, 0 },
	{ S(fetch_fsync, T_BOOL), 0, 0, 0, NULL, 0 },
	{ S(encrypt_recipients, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(encrypt_identity, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(push_ahead, T_INT), 0, 0, 1024, NULL, 1 },
	{ S(fetch_ahead, T_INT), 0, 0, 1024, NULL, 0 },
	{ S(parallel, T_INT), 0, 1, 64, NULL, 0 },
	{ S(spool_dir, T_STRING), 0, 0, 0, NULL, 0 },
	{ S(backlog_warn, T_INT), 0, 0, 1000000, NULL, 0 },
	{ S(log_level, T_ENUM), 0, 0, 0, level_names, 0 },
};
#undef S

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Where one setting's value came from, for messages about it. */
struct wal_config_origin {
	char *at;	   /* "FILE:LINE" or "--set"; NULL while the default */
	const char *value; /* T_STRING: the string it was set to (see wal_config_origin) */
};

static const setting *find_setting(const char *key)
{
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		if (strcmp(settings[i].name, key) == 0)
			return &settings[i];
	return NULL;
}

int wal_config_known(const char *key)
{
	return find_setting(key) != NULL;
}

void wal_config_init(wal_config *c)
{
	memset(c, 0, sizeof(*c));
	c->compress = WAL_COMPRESS_LZ4;
	c->compress_level = 1;
	c->file_mode = 0600;
	c->sftp_require_fsync = 1;
	c->tls_verify = 1;
	c->s3_uri_style = WAL_S3_HOST;
	c->timeout = 30;
	c->retries = 3;
	c->fetch_on_error = WAL_ONERR_AUTO;
	c->fetch_fsync = 0; /* PostgreSQL fsyncs what it keeps (README) */
	c->push_ahead = -1; /* auto: on for network archives */
	c->fetch_ahead = 16;
	c->parallel = 4;
	c->spool_dir = strdup(WAL_SPOOL_DEFAULT);
	c->backlog_warn = 64;
	c->log_level = WAL_LOG_NOTICE;
}

void wal_config_free(wal_config *c)
{
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		if (settings[i].type != T_STRING)
			continue;
		char **slot = (char **)((char *)c + settings[i].offset);
		if (*slot) {
			if (settings[i].secret)
				memset(*slot, 0, strlen(*slot));
			free(*slot);
			*slot = NULL;
		}
	}
	free(c->source);
	c->source = NULL;
	if (c->origins) {
		for (size_t i = 0; i < NSETTINGS; i++)
			free(c->origins[i].at);
		free(c->origins);
		c->origins = NULL;
	}
}

/* Records that s was set at at (to the string value, for T_STRING). */
static void remember_origin(wal_config *c, const setting *s, const char *at)
{
	if (!c->origins && !(c->origins = calloc(NSETTINGS, sizeof(*c->origins))))
		return; /* messages then name no line; nothing else depends on it */
	struct wal_config_origin *o = &c->origins[s - settings];
	char *copy = strdup(at);
	if (!copy)
		return;
	free(o->at);
	o->at = copy;
	o->value = s->type == T_STRING ? *(char **)((char *)c + s->offset) : NULL;
}

const char *wal_config_origin(const wal_config *c, const char *key)
{
	const setting *s = find_setting(key);
	if (!s || !c->origins)
		return NULL;
	const struct wal_config_origin *o = &c->origins[s - settings];
	if (s->type == T_STRING && *(char *const *)((const char *)c + s->offset) != o->value)
		return NULL;
	return o->at;
}

wal_err wal_config_blame(const wal_config *c, const char *key, wal_error *e)
{
	const char *at = wal_config_origin(c, key);
	if (!e)
		return WAL_ECONFIG;
	size_t plen = at ? strlen(at) + 2 : 0;
	if (at && plen < sizeof(e->msg)) {
		/* "AT: " in front, the message moved behind it (its end cut if need be) */
		size_t keep = strnlen(e->msg, sizeof(e->msg) - 1);
		if (keep > sizeof(e->msg) - 1 - plen)
			keep = sizeof(e->msg) - 1 - plen;
		memmove(e->msg + plen, e->msg, keep);
		e->msg[plen + keep] = '\0';
		memcpy(e->msg, at, plen - 2);
		memcpy(e->msg + plen - 2, ": ", 2);
	}
	return e->code;
}

static void where(char *out, size_t cap, const char *origin, int line)
{
	if (line > 0)
		snprintf(out, cap, "%s:%d", origin, line);
	else
		snprintf(out, cap, "%s", origin);
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "on", "true", "yes", "1" };
	static const char *const no[] = { "off", "false", "no", "0" };
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

static wal_err set_value(wal_config *c, const setting *s, const char *key, const char *value,
			 const char *at, wal_error *e);

wal_err wal_config_set(wal_config *c, const char *key, const char *value, const char *origin,
		       int line, wal_error *e)
{
	char at[512];
	where(at, sizeof(at), origin, line);
	const setting *s = find_setting(key);
	if (!s)
		return wal_fail(e, WAL_ECONFIG, "%s: unknown setting \"%s\"", at, key);
	wal_err rc = set_value(c, s, key, value, at, e);
	if (rc == WAL_OK)
		remember_origin(c, s, at);
	return rc;
}

/* Parses value into s's slot; errors name at.  One short, independent case
 * per type of setting: a reader looks up the one case, so it stays one
 * switch, longer than most functions here. */
static wal_err set_value(wal_config *c, const setting *s, const char *key, const char *value,
			 const char *at, wal_error *e)
{
	void *slot = (char *)c + s->offset;
	char *end = NULL;

	switch (s->type) {
	case T_STRING: {
		char *copy = strdup(value);
		if (!copy)
			return wal_fail(e, WAL_ENOMEM, "out of memory");
		char **str = slot;
		if (*str && s->secret)
			memset(*str, 0, strlen(*str));
		free(*str);
		*str = *value ? copy : (free(copy), NULL);
		return WAL_OK;
	}
	case T_BOOL:
		if (parse_bool(value, slot) < 0)
			return wal_fail(e, WAL_ECONFIG,
					"%s: %s: invalid value \"%s\" (want on or off)", at, key,
					value);
		return WAL_OK;
	case T_INT: {
		if (s->auto_ok && strcmp(value, "auto") == 0) {
			*(int *)slot = -1;
			return WAL_OK;
		}
		errno = 0;
		long v = strtol(value, &end, 10);
		if (errno || end == value || *end || v < s->min || v > s->max)
			return wal_fail(
				e, WAL_ECONFIG,
				"%s: %s: invalid value \"%s\" (want %san integer from %d to %d)",
				at, key, value, s->auto_ok ? "auto or " : "", s->min, s->max);
		*(int *)slot = (int)v;
		return WAL_OK;
	}
	case T_MODE: {
		errno = 0;
		long v = strtol(value, &end, 8);
		if (errno || end == value || *end || (v != 0600 && v != 0640))
			return wal_fail(e, WAL_ECONFIG,
					"%s: %s: invalid value \"%s\" (want 0600 or 0640)", at, key,
					value);
		*(int *)slot = (int)v;
		return WAL_OK;
	}
	case T_U64: {
		errno = 0;
		unsigned long long v = strtoull(value, &end, 10);
		if (errno || end == value || *end || v == 0 || value[0] == '-')
			return wal_fail(
				e, WAL_ECONFIG,
				"%s: %s: invalid value \"%s\" (want a decimal system identifier)",
				at, key, value);
		*(uint64_t *)slot = v;
		return WAL_OK;
	}
	case T_ENUM:
		for (int i = 0; s->choices[i]; i++)
			if (strcmp(value, s->choices[i]) == 0) {
				*(int *)slot = i;
				if (s->offset == offsetof(wal_config, log_level))
					wal_log_set_level(i);
				return WAL_OK;
			}
		{
			char list[256] = "";
			for (int i = 0; s->choices[i]; i++) {
				strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
				strncat(list, s->choices[i], sizeof(list) - strlen(list) - 1);
			}
			return wal_fail(e, WAL_ECONFIG,
					"%s: %s: invalid value \"%s\" (want one of %s)", at, key,
					value, list);
		}
	}
	return wal_fail(e, WAL_ECONFIG, "%s: %s: unsupported setting type", at, key);
}

wal_err wal_config_set_arg(wal_config *c, const char *key_value, wal_error *e)
{
	const char *eq = strchr(key_value, '=');
	if (!eq || eq == key_value)
		return wal_fail(e, WAL_ECONFIG, "--set %s: want key=value", key_value);
	char key[128];
	size_t klen = (size_t)(eq - key_value);
	if (klen >= sizeof(key))
		return wal_fail(e, WAL_ECONFIG, "--set: setting name too long");
	memcpy(key, key_value, klen);
	key[klen] = '\0';
	/* tolerate "key = value" passed as one argument */
	while (klen > 0 && isspace((unsigned char)key[klen - 1]))
		key[--klen] = '\0';
	const char *value = eq + 1;
	while (isspace((unsigned char)*value))
		value++;
	const setting *s = find_setting(key);
	if (s && s->secret)
		/* the command line is visible to every user of the machine */
		return wal_fail(e, WAL_ECONFIG,
				"--set %s: secrets belong in the configuration file "
				"(mode 0600 or 0640), never on the command line",
				key);
	return wal_config_set(c, key, value, "--set", 0, e);
}

/*
 * Splits one line into key and value.  Returns 0 for a setting, 1 for a
 * blank or comment line, -1 with a reason for a malformed one.
 */
static int parse_line(char *line, char **key, char **value, const char **why)
{
	char *p = line;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 1;
	*key = p;
	while (*p && (isalnum((unsigned char)*p) || *p == '_'))
		p++;
	if (p == *key) {
		*why = "expected a setting name";
		return -1;
	}
	char *key_end = p;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '=')
		p++;
	*key_end = '\0';
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\'') {
		/* quoted: '' is a literal quote, as in postgresql.conf */
		char *out = ++p;
		*value = out;
		for (;;) {
			if (*p == '\0' || *p == '\n') {
				*why = "unterminated quoted value";
				return -1;
			}
			if (*p == '\'') {
				if (p[1] == '\'') {
					*out++ = '\'';
					p += 2;
					continue;
				}
				p++;
				break;
			}
			*out++ = *p++;
		}
		*out = '\0';
	} else {
		*value = p;
		while (*p && !isspace((unsigned char)*p) && *p != '#')
			p++;
		char stop = *p;
		*p = '\0';
		if (**value == '\0') {
			*why = "missing value";
			return -1;
		}
		if (stop == '\0' || stop == '#')
			return 0;
		p++;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p && *p != '#') {
		*why = "unexpected text after the value";
		return -1;
	}
	return 0;
}

wal_err wal_config_read_file(wal_config *c, const char *path, wal_error *e)
{
	wal_err rc = WAL_OK;
	FILE *f = fopen(path, "r");
	if (!f)
		return wal_fail_errno(e, WAL_ECONFIG, errno, "%s: cannot open configuration", path);

	struct stat st;
	int others_read = fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH);
	char line[4096];
	int lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			rc = wal_fail(e, WAL_ECONFIG, "%s:%d: line too long", path, lineno);
			goto out;
		}
		char *key = NULL, *value = NULL;
		const char *why = NULL;
		int kind = parse_line(line, &key, &value, &why);
		if (kind == 1)
			continue;
		if (kind < 0) {
			rc = wal_fail(e, WAL_ECONFIG, "%s:%d: %s", path, lineno, why);
			goto out;
		}
		const setting *s = find_setting(key);
		if (s && s->secret && others_read) {
			rc = wal_fail(e, WAL_ECONFIG,
				      "%s:%d: %s is a secret but the file is readable by others; "
				      "chmod o-r %s",
				      path, lineno, key, path);
			goto out;
		}
		rc = wal_config_set(c, key, value, path, lineno, e);
		if (rc != WAL_OK)
			goto out;
	}
	if (ferror(f))
		rc = wal_fail_errno(e, WAL_ECONFIG, errno, "%s: cannot read configuration", path);
	free(c->source);
	c->source = strdup(path);
out:
	fclose(f);
	return rc;
}

wal_err wal_config_load(wal_config *c, const char *explicit_path, wal_error *e)
{
	const char *path = explicit_path;
	if (!path || !*path)
		path = getenv("WALARCHIVE_CONFIG");
	if (path && *path)
		return wal_config_read_file(c, path, e);
	if (access(WAL_CONFIG_DEFAULT_PATH, F_OK) != 0 && errno == ENOENT)
		return WAL_OK;
	return wal_config_read_file(c, WAL_CONFIG_DEFAULT_PATH, e);
}

wal_err wal_config_check(const wal_config *c, char *warning, size_t cap, wal_error *e)
{
	wal_url url;
	char shown[512];
	wal_err rc = WAL_OK;

	if (warning && cap)
		warning[0] = '\0';
	if (!c->archive || !*c->archive) {
		const char *at = wal_config_origin(c, "archive");
		return wal_fail(e, WAL_ECONFIG, "%s: archive is not set",
				at	    ? at
				: c->source ? c->source
					    : "configuration");
	}
	if (wal_url_parse(c->archive, &url, e) != WAL_OK)
		return wal_config_blame(c, "archive", e);
	if (c->compress == WAL_COMPRESS_LZ4 && c->compress_level > 12) {
		wal_url_free(&url);
		wal_fail(e, WAL_ECONFIG,
			 "compress_level %d: lz4's levels are 1 to 12 (zstd's to 19)",
			 c->compress_level);
		return wal_config_blame(c, "compress_level", e);
	}
	/* basic authentication is the password itself, readable by anyone on the way */
	if (strcmp(url.scheme, "http") == 0 && c->http_password) {
		wal_url_redact(c->archive, shown, sizeof(shown));
		if (c->http_cleartext_auth == WAL_CLEARTEXT_REFUSE) {
			wal_fail(e, WAL_ECONFIG,
				 "%s: the password would be sent in clear "
				 "(basic authentication over http://) and http_cleartext_auth = "
				 "refuse; "
				 "use https://",
				 shown);
			rc = wal_config_blame(c, "archive", e);
		} else if (warning && cap) {
			snprintf(warning, cap,
				 "%s: the password is sent in clear "
				 "(basic authentication over http://); use https://",
				 shown);
		}
	}
	/* so is a SAS token, in every request's URL */
	if (strcmp(url.scheme, "azure") == 0 && c->azure_sas_token && c->azure_endpoint &&
	    strncasecmp(c->azure_endpoint, "http://", 7) == 0) {
		if (c->http_cleartext_auth == WAL_CLEARTEXT_REFUSE) {
			wal_fail(e, WAL_ECONFIG,
				 "azure_endpoint %s: the sas token would be sent in clear and "
				 "http_cleartext_auth = refuse; use https://",
				 c->azure_endpoint);
			rc = wal_config_blame(c, "azure_endpoint", e);
		} else if (warning && cap) {
			snprintf(warning, cap,
				 "azure_endpoint %s: the sas token is sent in clear (http://); "
				 "use https://",
				 c->azure_endpoint);
		}
	}
	wal_url_free(&url);
	return rc;
}
