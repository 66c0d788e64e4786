/*
 * The text forms credentials arrive in: the AWS shared config and
 * credentials files, the flat JSON of the metadata and container
 * endpoints, and STS's XML answer.  No I/O here; the chain is in
 * credentials.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/http/xml.h"
#include "store/s3/credentials.h"

/* ---- shared config and credentials files ---- */

/* Copies [start, end) into out trimmed of white space; 0 if it does not fit. */
static int copy_trimmed(const char *start, const char *end, char *out, size_t cap)
{
	while (start < end && isspace((unsigned char)*start))
		start++;
	while (end > start && isspace((unsigned char)end[-1]))
		end--;
	if ((size_t)(end - start) >= cap)
		return 0;
	memcpy(out, start, (size_t)(end - start));
	out[end - start] = '\0';
	return 1;
}

int wal_s3_ini_get(const char *text, const char *section, const char *key, char *out, size_t cap)
{
	const char *line = text;
	char name[512];
	int inside = 0;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		const char *end = eol ? eol : line + strlen(line);
		const char *p = line;

		if (end > line && end[-1] == '\r')
			end--;
		if (*p == ' ' || *p == '\t') {
			/* a nested setting's lines ("s3 =" then indented pairs) */
		} else if (*p == '#' || *p == ';' || p == end) {
			/* comment or blank */
		} else if (*p == '[') {
			const char *close = memchr(p, ']', (size_t)(end - p));

			inside = 0;
			if (close && copy_trimmed(p + 1, close, name, sizeof name)) {
				inside = strcmp(name, section ? section : "") == 0;
				if (inside && !key)
					return 1;
			}
		} else if (inside && key) {
			const char *eq = memchr(p, '=', (size_t)(end - p));

			if (eq && copy_trimmed(p, eq, name, sizeof name) &&
			    strcmp(name, key) == 0) {
				if (!copy_trimmed(eq + 1, end, out, cap))
					return -1;
				return 1;
			}
		}
		line = eol ? eol + 1 : NULL;
	}
	return 0;
}

/* ---- flat JSON ---- */

typedef struct json_in {
	const char *p, *end, *what;
} json_in;

static void json_space(json_in *in)
{
	while (in->p < in->end && isspace((unsigned char)*in->p))
		in->p++;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Appends code point cp as UTF-8; 0 if it does not fit. */
static int put_utf8(unsigned cp, char *out, size_t *n, size_t cap)
{
	char buf[4];
	size_t len;

	if (cp < 0x80) {
		buf[0] = (char)cp;
		len = 1;
	} else if (cp < 0x800) {
		buf[0] = (char)(0xc0 | (cp >> 6));
		buf[1] = (char)(0x80 | (cp & 0x3f));
		len = 2;
	} else {
		buf[0] = (char)(0xe0 | (cp >> 12));
		buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		buf[2] = (char)(0x80 | (cp & 0x3f));
		len = 3;
	}
	if (*n + len >= cap)
		return 0;
	memcpy(out + *n, buf, len);
	*n += len;
	return 1;
}

/* Reads one string at in->p (at its opening quote) into out. */
static wal_err json_string(json_in *in, char *out, size_t cap, wal_error *e)
{
	size_t n = 0;

	if (in->p >= in->end || *in->p != '"')
		return wal_fail(e, WAL_EINVAL, "%s: not a json object of strings", in->what);
	in->p++;
	while (in->p < in->end && *in->p != '"') {
		char ch = *in->p++;

		if ((unsigned char)ch < 0x20)
			return wal_fail(e, WAL_EINVAL, "%s: control character in a json string",
					in->what);
		if (ch == '\\') {
			if (in->p >= in->end)
				break;
			ch = *in->p++;
			switch (ch) {
			case '"':
			case '\\':
			case '/':
				break;
			case 'b':
				ch = '\b';
				break;
			case 'f':
				ch = '\f';
				break;
			case 'n':
				ch = '\n';
				break;
			case 'r':
				ch = '\r';
				break;
			case 't':
				ch = '\t';
				break;
			case 'u': {
				unsigned cp = 0;
				int i;

				for (i = 0; i < 4; i++) {
					int v = in->p < in->end ? hexval(*in->p) : -1;

					if (v < 0)
						return wal_fail(e, WAL_EINVAL,
								"%s: bad \\u escape in json",
								in->what);
					cp = cp * 16 + (unsigned)v;
					in->p++;
				}
				if (cp == 0)
					return wal_fail(e, WAL_EINVAL, "%s: nul in a json string",
							in->what);
				if (!put_utf8(cp, out, &n, cap))
					return wal_fail(e, WAL_EINVAL, "%s: json string too long",
							in->what);
				continue;
			}
			default:
				return wal_fail(e, WAL_EINVAL, "%s: bad escape in json", in->what);
			}
		}
		if (n + 1 >= cap)
			return wal_fail(e, WAL_EINVAL, "%s: json string too long", in->what);
		out[n++] = ch;
	}
	if (in->p >= in->end)
		return wal_fail(e, WAL_EINVAL, "%s: unterminated json string", in->what);
	in->p++;
	out[n] = '\0';
	return WAL_OK;
}

wal_err wal_s3_json_parse(const char *text, size_t len, const char *what, wal_s3_json_fn fn,
			  void *arg, wal_error *e)
{
	json_in in = { text, text + len, what };
	char *name = NULL, *value = NULL;
	wal_err rc = WAL_OK;

	name = malloc(256);
	value = malloc(16384);
	if (!name || !value) {
		rc = wal_fail(e, WAL_ENOMEM, "%s: out of memory", what);
		goto out;
	}
	json_space(&in);
	if (in.p >= in.end || *in.p != '{') {
		rc = wal_fail(e, WAL_EINVAL, "%s: not a json object", what);
		goto out;
	}
	in.p++;
	json_space(&in);
	if (in.p < in.end && *in.p == '}') {
		in.p++;
	} else {
		for (;;) {
			json_space(&in);
			if ((rc = json_string(&in, name, 256, e)) != WAL_OK)
				goto out;
			json_space(&in);
			if (in.p >= in.end || *in.p != ':') {
				rc = wal_fail(e, WAL_EINVAL, "%s: malformed json", what);
				goto out;
			}
			in.p++;
			json_space(&in);
			if (in.p < in.end && *in.p != '"') {
				rc = wal_fail(e, WAL_EINVAL,
					      "%s: json member \"%s\" is not a string", what, name);
				goto out;
			}
			if ((rc = json_string(&in, value, 16384, e)) != WAL_OK ||
			    (rc = fn(arg, name, value, e)) != WAL_OK)
				goto out;
			json_space(&in);
			if (in.p < in.end && *in.p == ',') {
				in.p++;
				continue;
			}
			if (in.p < in.end && *in.p == '}') {
				in.p++;
				break;
			}
			rc = wal_fail(e, WAL_EINVAL, "%s: malformed json", what);
			goto out;
		}
	}
	json_space(&in);
	if (in.p != in.end)
		rc = wal_fail(e, WAL_EINVAL, "%s: text after the json object", what);
out:
	if (value) {
		memset(value, 0, 16384);
		free(value);
	}
	free(name);
	return rc;
}

time_t wal_s3_parse_expiration(const char *text)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof tm);
	end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return 0;
	if (*end == '.')
		for (end++; isdigit((unsigned char)*end); end++)
			;
	if (*end == 'Z')
		end++;
	else if (strcmp(end, "+00:00") == 0)
		end += 6;
	if (*end)
		return 0;
	return timegm(&tm);
}

/* ---- the credentials in a JSON or STS answer ---- */

typedef struct cred_fields {
	wal_s3_creds *c;
	char code[64];
	char expiration[64];
	char error_code[128];
	char error_message[256];
	int seen_access, seen_secret, seen_token;
} cred_fields;

static int set_field(char *slot, size_t cap, const char *value)
{
	return snprintf(slot, cap, "%s", value) < (int)cap;
}

static wal_err json_field(void *arg, const char *name, const char *value, wal_error *e)
{
	cred_fields *f = arg;
	int fits = 1;

	(void)e;
	if (strcmp(name, "AccessKeyId") == 0)
		fits = f->seen_access = set_field(f->c->access_key, sizeof f->c->access_key, value);
	else if (strcmp(name, "SecretAccessKey") == 0)
		fits = f->seen_secret = set_field(f->c->secret_key, sizeof f->c->secret_key, value);
	else if (strcmp(name, "Token") == 0)
		fits = f->seen_token = set_field(f->c->token, sizeof f->c->token, value);
	else if (strcmp(name, "Expiration") == 0)
		snprintf(f->expiration, sizeof f->expiration, "%s", value);
	else if (strcmp(name, "Code") == 0)
		snprintf(f->code, sizeof f->code, "%s", value);
	else if (strcmp(name, "Message") == 0)
		snprintf(f->error_message, sizeof f->error_message, "%s", value);
	if (!fits)
		return wal_fail(e, WAL_EINVAL, "credentials: %s too long", name);
	return WAL_OK;
}

/* The keys and their expiry, checked once the answer is read. */
static wal_err fields_complete(cred_fields *f, const char *what, int need_token, wal_error *e)
{
	if (!f->seen_access || !f->seen_secret || !f->c->access_key[0] || !f->c->secret_key[0])
		return wal_fail(e, WAL_ENET, "%s: answer without AccessKeyId and SecretAccessKey",
				what);
	if (need_token && (!f->seen_token || !f->c->token[0]))
		return wal_fail(e, WAL_ENET, "%s: answer without a session token", what);
	f->c->expiration = 0;
	if (f->expiration[0]) {
		f->c->expiration = wal_s3_parse_expiration(f->expiration);
		if (!f->c->expiration)
			return wal_fail(e, WAL_ENET, "%s: unparseable Expiration \"%s\"", what,
					f->expiration);
	} else if (need_token) {
		return wal_fail(e, WAL_ENET, "%s: temporary credentials without an Expiration",
				what);
	}
	return WAL_OK;
}

wal_err wal_s3_creds_from_json(const char *text, size_t len, const char *what, wal_s3_creds *c,
			       wal_error *e)
{
	cred_fields f;
	wal_err rc;

	memset(&f, 0, sizeof f);
	f.c = c;
	c->access_key[0] = c->secret_key[0] = c->token[0] = '\0';
	rc = wal_s3_json_parse(text, len, what, json_field, &f, e);
	if (rc == WAL_EINVAL)
		rc = wal_error_recode(e, WAL_ENET);
	if (rc != WAL_OK)
		return rc;
	if (f.code[0] && strcmp(f.code, "Success") != 0)
		return wal_fail(e, WAL_EAUTH, "%s: %s%s%s", what, f.code,
				f.error_message[0] ? ": " : "", f.error_message);
	/* a container answer may carry long-term keys without a token */
	return fields_complete(&f, what, 0, e);
}

static wal_err sts_field(void *arg, const char *path, const char *text, wal_error *e)
{
	static const char creds[] =
		"AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/Credentials/";
	cred_fields *f = arg;

	if (strncmp(path, creds, sizeof creds - 1) == 0) {
		const char *leaf = path + sizeof creds - 1;

		if (strcmp(leaf, "SessionToken") == 0)
			leaf = "Token";
		return json_field(f, leaf, text, e);
	}
	if (strcmp(path, "ErrorResponse/Error/Code") == 0)
		snprintf(f->error_code, sizeof f->error_code, "%s", text);
	else if (strcmp(path, "ErrorResponse/Error/Message") == 0)
		snprintf(f->error_message, sizeof f->error_message, "%s", text);
	return WAL_OK;
}

wal_err wal_s3_creds_from_sts(const char *xml, size_t len, const char *what, long status,
			      wal_s3_creds *c, wal_error *e)
{
	cred_fields f;
	wal_err rc;

	memset(&f, 0, sizeof f);
	f.c = c;
	c->access_key[0] = c->secret_key[0] = c->token[0] = '\0';
	rc = xml && len ? wal_xml_parse(xml, len, what, sts_field, &f, e)
			: wal_fail(e, WAL_ENET, "%s: empty answer", what);
	if (f.error_code[0]) {
		/* the refusals a resend does not cure are the caller's to fix */
		int auth = strstr(f.error_code, "AccessDenied") || strstr(f.error_code, "Token") ||
			   strstr(f.error_code, "Idp") || strstr(f.error_code, "Expired") ||
			   strstr(f.error_code, "Malformed") ||
			   strstr(f.error_code, "InvalidParameter") ||
			   strstr(f.error_code, "RegionDisabled");

		return wal_fail(e, auth ? WAL_EAUTH : WAL_ENET, "%s: %s%s%s", what, f.error_code,
				f.error_message[0] ? ": " : "", f.error_message);
	}
	if (rc != WAL_OK)
		return rc;
	if (status < 200 || status >= 300)
		return wal_fail(e, status == 403 || status == 400 ? WAL_EAUTH : WAL_ENET,
				"%s: answered %ld", what, status);
	return fields_complete(&f, what, 1, e);
}
