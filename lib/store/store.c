/*
 * The store front: the scheme table that picks a driver, path checks, and
 * the helpers that every driver shares (retry pacing, temporary names).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "sys/fileio.h"
#include "sys/module.h"
#include "store/store.h"

/*
 * The local driver is always linked.  The network drivers live in loadable
 * modules (walarchive_sftp.so, walarchive_http.so) so that a local archive
 * never pays for libcurl, libssh2 and libcrypto; a binary that links a
 * driver in (the unit tests) uses it directly.
 */
extern const wal_store_ops wal_store_sftp_ops __attribute__((weak));
extern const wal_store_ops wal_store_webdav_ops __attribute__((weak));
extern const wal_store_ops wal_store_s3_ops __attribute__((weak));
extern const wal_store_ops wal_store_azure_ops __attribute__((weak));

static const struct {
	const char *scheme;
	const wal_store_ops *linked;
	const char *module;
	const char *symbol;
} schemes[] = {
	{ "file", &wal_store_posix_ops, NULL, NULL },
	{ "sftp", &wal_store_sftp_ops, "walarchive_sftp.so", "wal_store_sftp_ops" },
	{ "http", &wal_store_webdav_ops, "walarchive_http.so", "wal_store_webdav_ops" },
	{ "https", &wal_store_webdav_ops, "walarchive_http.so", "wal_store_webdav_ops" },
	{ "s3", &wal_store_s3_ops, "walarchive_http.so", "wal_store_s3_ops" },
	{ "azure", &wal_store_azure_ops, "walarchive_http.so", "wal_store_azure_ops" },
};

wal_err wal_store_open(wal_store **out, const wal_config *cfg, wal_error *e)
{
	wal_url url;
	char shown[512];
	*out = NULL;
	wal_err rc = wal_url_parse(cfg->archive, &url, e);
	if (rc != WAL_OK)
		return wal_config_blame(cfg, "archive", e);
	size_t i = 0;
	while (i < sizeof(schemes) / sizeof(schemes[0]) && strcmp(url.scheme, schemes[i].scheme))
		i++;
	if (i == sizeof(schemes) / sizeof(schemes[0])) {
		wal_url_redact(cfg->archive, shown, sizeof(shown));
		wal_fail(e, WAL_ECONFIG, "archive \"%s\": unknown scheme", shown);
		rc = wal_config_blame(cfg, "archive", e);
	} else {
		const wal_store_ops *ops = schemes[i].linked;
		if (!ops)
			ops = wal_module_load("transport module", schemes[i].module,
					      schemes[i].symbol, e);
		rc = ops ? ops->open(out, &url, cfg, e) : WAL_EUNSUPPORTED;
		/* the network drivers name the setting behind each of their
		 * configuration errors; the local one has only archive to check */
		if (rc == WAL_ECONFIG && ops == &wal_store_posix_ops)
			rc = wal_config_blame(cfg, "archive", e);
	}
	wal_url_free(&url);
	return rc;
}

wal_err wal_store_path_valid(const char *path, wal_error *e)
{
	size_t len = strlen(path);
	if (len == 0 || len > 1024)
		return wal_fail(e, WAL_EINVAL, "invalid archive path (empty or too long)");
	if (path[0] == '/')
		return wal_fail(e, WAL_EINVAL, "%s: archive paths are relative to the archive root",
				path);
	const char *part = path;
	for (;;) {
		const char *slash = strchr(part, '/');
		size_t n = slash ? (size_t)(slash - part) : strlen(part);
		if (n == 0 || (n == 1 && part[0] == '.') ||
		    (n == 2 && part[0] == '.' && part[1] == '.'))
			return wal_fail(e, WAL_EINVAL,
					"%s: invalid archive path (empty, . or .. component)",
					path);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)part[i] < 0x20 || part[i] == '\\' || part[i] == 0x7f)
				return wal_fail(e, WAL_EINVAL,
						"invalid archive path (control character)");
		if (!slash)
			break;
		part = slash + 1;
	}
	return WAL_OK;
}

#define CHECK_PATH(p)                                                                              \
	do {                                                                                       \
		wal_err v_ = wal_store_path_valid(p, e);                                           \
		if (v_)                                                                            \
			return v_;                                                                 \
	} while (0)

wal_err wal_store_put(wal_store *s, const char *path, wal_source *src, wal_error *e)
{
	CHECK_PATH(path);
	return s->ops->put(s, path, src, e);
}

wal_err wal_store_get(wal_store *s, const char *path, wal_sink *sink, wal_error *e)
{
	CHECK_PATH(path);
	return s->ops->get(s, path, sink, e);
}

wal_err wal_store_stat(wal_store *s, const char *path, wal_stat *st, wal_error *e)
{
	CHECK_PATH(path);
	return s->ops->stat(s, path, st, e);
}

wal_err wal_store_list(wal_store *s, const char *dir, wal_list_fn fn, void *arg, wal_error *e)
{
	if (*dir)
		CHECK_PATH(dir);
	return s->ops->list(s, dir, fn, arg, e);
}

wal_err wal_store_remove(wal_store *s, const char *path, wal_error *e)
{
	CHECK_PATH(path);
	return s->ops->remove(s, path, e);
}

wal_err wal_store_sync(wal_store *s, const char *path, wal_error *e)
{
	CHECK_PATH(path);
	return s->ops->sync ? s->ops->sync(s, path, e) : WAL_OK;
}

void wal_store_close(wal_store *s)
{
	if (s)
		s->ops->close(s);
}

void wal_retry_backoff(int attempt)
{
	/* 0.5 s, 1 s, 2 s, ... capped at 8 s, with up to 25% jitter */
	long ms = 500L << (attempt > 5 ? 4 : attempt - 1 < 0 ? 0 : attempt - 1);
	if (ms > 8000)
		ms = 8000;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms += (long)((unsigned long)now.tv_nsec % (unsigned long)(ms / 4 + 1));
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

void wal_store_tmp_name(const char *path, char *out, size_t cap)
{
	wal_tmp_name(path, out, cap);
}

const char *wal_store_auth(wal_store *s)
{
	return s && s->ops->auth ? s->ops->auth(s) : NULL;
}
