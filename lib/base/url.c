/*
 * Parsing the `archive` setting into scheme, user, host, port and path.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/url.h"

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decodes n bytes of s; NULL on a bad escape or an encoded NUL. */
static char *decode(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t o = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < n + 1 ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = hi >= 0 ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else
			out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/* Drops trailing slashes (keeping a lone "/"). */
static void trim_slashes(char *path)
{
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
}

void wal_url_free(wal_url *url)
{
	free(url->user);
	free(url->host);
	free(url->path);
	memset(url, 0, sizeof(*url));
}

void wal_url_redact(const char *text, char *out, size_t cap)
{
	if (!cap)
		return;
	if (!text)
		text = "";
	/* without a scheme, a host may come first ("u:pw@host:9000"); a path never does */
	const char *sep = strstr(text, "://");
	const char *rest = sep ? sep + 3 : text[0] != '/' ? text : NULL;
	const char *at = rest ? strrchr(rest, '@') : NULL;
	const char *colon = at ? memchr(rest, ':', (size_t)(at - rest)) : NULL;
	if (colon)
		snprintf(out, cap, "%.*s:***%s", (int)(colon - text), text, at);
	else
		snprintf(out, cap, "%s", text);
}

/* The scheme of text (before sep, "://"), lowercased into url; 0 if unknown. */
static int parse_scheme(const char *text, const char *sep, wal_url *url)
{
	size_t scheme_len = (size_t)(sep - text);
	if (scheme_len >= sizeof(url->scheme))
		return 0;
	for (size_t i = 0; i < scheme_len; i++)
		url->scheme[i] = (char)tolower((unsigned char)text[i]);
	return !strcmp(url->scheme, "file") || !strcmp(url->scheme, "sftp") ||
	       !strcmp(url->scheme, "http") || !strcmp(url->scheme, "https") ||
	       !strcmp(url->scheme, "s3") || !strcmp(url->scheme, "azure");
}

/*
 * The authority [user@]host[:port], from rest to auth_end, into url.
 * WAL_EINVAL (without a message) when it is malformed; a message for the
 * rest, showing the URL as shown.
 */
static wal_err parse_authority(const char *rest, const char *auth_end, wal_url *url,
			       const char *shown, wal_error *e)
{
	const char *at = memchr(rest, '@', (size_t)(auth_end - rest));
	const char *host = rest, *host_end, *port = NULL;
	if (at) {
		if (memchr(rest, ':', (size_t)(at - rest)))
			return wal_fail(e, WAL_ECONFIG,
					"archive \"%s\": a password does not belong in the URL; "
					"use the configuration file",
					shown);
		url->user = decode(rest, (size_t)(at - rest));
		if (!url->user || !*url->user)
			return WAL_EINVAL;
		host = at + 1;
	}
	if (*host == '[') {
		host_end = memchr(host, ']', (size_t)(auth_end - host));
		if (!host_end)
			return WAL_EINVAL;
		url->host = strndup(host + 1, (size_t)(host_end - host - 1));
		if (host_end + 1 < auth_end) {
			if (host_end[1] != ':')
				return WAL_EINVAL;
			port = host_end + 2;
		}
	} else {
		host_end = memchr(host, ':', (size_t)(auth_end - host));
		if (host_end)
			port = host_end + 1;
		else
			host_end = auth_end;
		url->host = strndup(host, (size_t)(host_end - host));
	}
	if (!url->host || !*url->host)
		return wal_fail(e, WAL_ECONFIG, "archive \"%s\": no host", shown);
	if (port) {
		char *end;
		long p = strtol(port, &end, 10);
		if (end != auth_end || p < 1 || p > 65535)
			return wal_fail(e, WAL_ECONFIG, "archive \"%s\": invalid port", shown);
		url->port = (int)p;
	}
	return WAL_OK;
}

/* The path of a URL with an authority (from slash, or "/"), into url. */
static wal_err parse_path(const char *slash, wal_url *url, const char *shown, wal_error *e)
{
	int azure = strcmp(url->scheme, "azure") == 0;

	if (strcmp(url->scheme, "s3") == 0 || azure) {
		if (url->user || url->port)
			return wal_fail(
				e, WAL_ECONFIG,
				azure ? "archive \"%s\": want azure://account/container/prefix "
					"(the endpoint is azure_endpoint)"
				      : "archive \"%s\": want s3://bucket/prefix (the endpoint "
					"is s3_endpoint)",
				shown);
		/* the prefix: no leading slash, may be empty */
		const char *prefix = slash ? slash + 1 : "";
		url->path = decode(prefix, strlen(prefix));
		if (!url->path)
			return WAL_EINVAL;
		trim_slashes(url->path);
		if (strcmp(url->path, "/") == 0)
			url->path[0] = '\0';
		return WAL_OK;
	}
	url->path = decode(slash ? slash : "/", strlen(slash ? slash : "/"));
	if (!url->path)
		return WAL_EINVAL;
	trim_slashes(url->path);
	return WAL_OK;
}

static wal_err parse(const char *text, wal_url *url, wal_error *e)
{
	/* every message shows the text, but never a password written into it */
	char shown[512];
	wal_url_redact(text, shown, sizeof(shown));
	memset(url, 0, sizeof(*url));
	wal_err rc = WAL_OK;
	if (!text || !*text)
		return wal_fail(e, WAL_ECONFIG, "archive is not set");

	const char *sep = strstr(text, "://");
	if (text[0] == '/') {
		strcpy(url->scheme, "file");
		url->path = strdup(text);
		if (!url->path)
			goto bad_url;
		trim_slashes(url->path);
	} else if (!sep) {
		return wal_fail(e, WAL_ECONFIG,
				"archive \"%s\": want an absolute path or a URL "
				"(file://, sftp://, http://, https://, s3://, azure://)",
				shown);
	} else if (!parse_scheme(text, sep, url)) {
		return wal_fail(e, WAL_ECONFIG,
				"archive \"%s\": unknown scheme (want file, sftp, http, https, s3 "
				"or azure)",
				shown);
	} else {
		const char *rest = sep + 3;
		const char *slash = strchr(rest, '/');
		const char *auth_end = slash ? slash : rest + strlen(rest);
		if (strcmp(url->scheme, "file") == 0) {
			if (auth_end != rest &&
			    strncmp(rest, "localhost", (size_t)(auth_end - rest)) != 0)
				return wal_fail(e, WAL_ECONFIG,
						"archive \"%s\": file URLs name a local path "
						"(file:///path)",
						shown);
			if (!slash)
				return wal_fail(e, WAL_ECONFIG, "archive \"%s\": no path", shown);
			url->path = decode(slash, strlen(slash));
			if (!url->path)
				goto bad_url;
			trim_slashes(url->path);
		} else if ((rc = parse_authority(rest, auth_end, url, shown, e)) != WAL_OK ||
			   (rc = parse_path(slash, url, shown, e)) != WAL_OK) {
			if (rc == WAL_EINVAL)
				goto bad_url;
			return rc;
		}
	}
	if (strstr(url->path, "/../") || strncmp(url->path, "../", 3) == 0 ||
	    (strlen(url->path) >= 3 && strcmp(url->path + strlen(url->path) - 3, "/..") == 0))
		return wal_fail(e, WAL_ECONFIG, "archive \"%s\": path must not contain \"..\"",
				shown);
	return WAL_OK;

bad_url:
	wal_url_free(url);
	return wal_fail(e, WAL_ECONFIG, "archive \"%s\": malformed URL", shown);
}

wal_err wal_url_parse(const char *text, wal_url *url, wal_error *e)
{
	wal_err rc = parse(text, url, e);
	if (rc != WAL_OK)
		wal_url_free(url);
	return rc;
}
