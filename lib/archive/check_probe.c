/*
 * walcheck's reachability probe: a small object written, read back,
 * compared and removed, each step timed, under a temporary name that no
 * program reads as WAL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "archive/check.h"
#include "io/stream.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

wal_err wal_check_probe(wal_store *store, const char *dir, wal_probe_result *res, wal_error *e)
{
	char host[64] = "", content[256];
	wal_mem_source src;
	wal_mem_sink sink;
	wal_error rm_err;
	double t0;

	memset(res, 0, sizeof(*res));
	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		snprintf(host, sizeof(host), "localhost");
	for (char *p = host; *p; p++) /* a name the store accepts everywhere */
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			*p = '_';
	snprintf(res->path, sizeof(res->path), "%s%s.walcheck-probe-%s-%ld.tmp", dir,
		 dir[0] ? "/" : "", host, (long)getpid());
	int len = snprintf(content, sizeof(content), "walcheck probe from %s, pid %ld, at %ld\n",
			   host, (long)getpid(), (long)time(NULL));

	wal_mem_source_init(&src, content, (size_t)len);
	t0 = now_ms();
	wal_err rc = wal_store_put(store, res->path, &src.base, e);
	res->put_ms = now_ms() - t0;
	if (rc == WAL_EEXIST) {
		/* left by a walcheck of the same pid that died: take its place */
		wal_store_remove(store, res->path, NULL);
		wal_mem_source_init(&src, content, (size_t)len);
		rc = wal_store_put(store, res->path, &src.base, e);
	}
	if (rc != WAL_OK)
		return rc;
	res->put_ok = 1;

	wal_mem_sink_init(&sink, 64 * 1024);
	t0 = now_ms();
	rc = wal_store_get(store, res->path, &sink.base, e);
	res->get_ms = now_ms() - t0;
	if (rc == WAL_OK &&
	    (sink.len != (size_t)len || memcmp(sink.buf, content, (size_t)len) != 0))
		rc = wal_fail(e, WAL_ECORRUPT,
			      "%s: the probe read back differs from what was written "
			      "(%zu bytes instead of %d)",
			      res->path, sink.len, len);
	free(sink.buf);
	res->get_ok = rc == WAL_OK;

	t0 = now_ms();
	wal_err rm = wal_store_remove(store, res->path, &rm_err);
	res->remove_ms = now_ms() - t0;
	res->remove_ok = rm == WAL_OK;
	if (rc == WAL_OK && rm != WAL_OK) {
		if (e)
			*e = rm_err;
		rc = rm;
	}
	return rc;
}
