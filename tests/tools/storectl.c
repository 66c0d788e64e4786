/*
 * storectl: one store operation through the driver that a configuration's
 * archive URL picks, for tests/integration/35-store-contract.sh, which holds
 * every driver to the contract of store/store.h.  Built and installed only
 * with WALARCHIVE_TESTS; the drivers are linked in, as in the unit tests.
 *
 *   storectl CONFIG put [--fail-after N] PATH < data
 *   storectl CONFIG get PATH > data
 *   storectl CONFIG stat PATH          prints the size in bytes
 *   storectl CONFIG list DIR           one entry a line, "/" after a directory
 *   storectl CONFIG remove PATH
 *
 * --fail-after N: the source fails with WAL_EIO once N bytes have been read
 * (an upload broken in the middle).  Exits with the wal_err number of
 * base/error.h (0 WAL_OK, 1 WAL_ENOENT, 2 WAL_EEXIST, ...), 64 on bad usage;
 * the error's detail goes to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/config.h"
#include "base/log.h"
#include "io/stream.h"
#include "store/store.h"

/* A memory source that fails after a number of bytes. */
typedef struct failing_source {
	wal_source base;
	wal_mem_source inner;
	size_t fail_after;
} failing_source;

static wal_err failing_read(wal_source *src, void *buf, size_t cap, size_t *got, wal_error *e)
{
	failing_source *f = (failing_source *)src;
	if (f->inner.pos >= f->fail_after)
		return wal_fail(e, WAL_EIO, "source broken after %zu bytes (--fail-after)",
				f->fail_after);
	if (cap > f->fail_after - f->inner.pos)
		cap = f->fail_after - f->inner.pos;
	return f->inner.base.read(&f->inner.base, buf, cap, got, e);
}

static wal_err failing_rewind(wal_source *src, wal_error *e)
{
	failing_source *f = (failing_source *)src;
	return f->inner.base.rewind(&f->inner.base, e);
}

/* Reads all of stdin into *buf. */
static int read_stdin(unsigned char **buf, size_t *len)
{
	size_t cap = 1 << 16;
	*len = 0;
	*buf = malloc(cap);
	for (;;) {
		if (!*buf)
			return -1;
		ssize_t n = read(0, *buf + *len, cap - *len);
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		*len += (size_t)n;
		if (*len == cap)
			*buf = realloc(*buf, cap *= 2);
	}
}

static wal_err put(wal_store *s, const char *path, long fail_after, wal_error *e)
{
	unsigned char *data;
	size_t len;
	if (read_stdin(&data, &len) != 0) {
		free(data);
		return wal_fail(e, WAL_EIO, "cannot read stdin");
	}
	failing_source f;
	wal_mem_source_init(&f.inner, data, len);
	f.base.read = failing_read;
	f.base.rewind = failing_rewind;
	f.base.size = (int64_t)len;
	f.fail_after = fail_after < 0 ? len : (size_t)fail_after;
	wal_err rc = wal_store_put(s, path, fail_after < 0 ? &f.inner.base : &f.base, e);
	free(data);
	return rc;
}

static wal_err stdout_write(wal_sink *sink, const void *buf, size_t len, wal_error *e)
{
	(void)sink;
	if (fwrite(buf, 1, len, stdout) != len)
		return wal_fail(e, WAL_EIO, "cannot write stdout");
	return WAL_OK;
}

static wal_err stdout_reset(wal_sink *sink, wal_error *e)
{
	(void)sink;
	return wal_fail(e, WAL_EIO, "cannot take back what went to stdout");
}

static wal_err print_entry(void *arg, const char *name, const wal_stat *st, wal_error *e)
{
	(void)arg;
	(void)e;
	printf("%s%s\n", name, st->is_dir ? "/" : "");
	return WAL_OK;
}

static int usage(void)
{
	fprintf(stderr, "usage: storectl CONFIG put [--fail-after N] PATH < data\n"
			"       storectl CONFIG get|stat|list|remove PATH\n");
	return 64;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return usage();
	const char *op = argv[2], *path = argv[argc - 1];
	long fail_after = -1;
	if (strcmp(op, "put") == 0 && argc == 6 && strcmp(argv[3], "--fail-after") == 0)
		fail_after = atol(argv[4]);
	else if (argc != 4)
		return usage();

	wal_log_init("storectl");
	wal_config cfg;
	wal_error e = { WAL_OK, "" };
	wal_store *s = NULL;
	wal_config_init(&cfg);
	wal_err rc = wal_config_load(&cfg, argv[1], &e);
	if (rc == WAL_OK)
		rc = wal_store_open(&s, &cfg, &e);
	if (rc == WAL_OK) {
		wal_sink out = { stdout_write, stdout_reset };
		wal_stat st;
		if (strcmp(op, "put") == 0)
			rc = put(s, path, fail_after, &e);
		else if (strcmp(op, "get") == 0)
			rc = wal_store_get(s, path, &out, &e);
		else if (strcmp(op, "stat") == 0) {
			rc = wal_store_stat(s, path, &st, &e);
			if (rc == WAL_OK)
				printf("%lld\n", (long long)st.size);
		} else if (strcmp(op, "list") == 0)
			rc = wal_store_list(s, strcmp(path, ".") == 0 ? "" : path, print_entry,
					    NULL, &e);
		else if (strcmp(op, "remove") == 0)
			rc = wal_store_remove(s, path, &e);
		else
			rc = wal_fail(&e, WAL_EINVAL, "unknown operation %s", op);
	}
	wal_store_close(s);
	wal_config_free(&cfg);
	if (fflush(stdout) != 0 && rc == WAL_OK)
		rc = wal_fail(&e, WAL_EIO, "cannot write stdout");
	if (rc != WAL_OK)
		fprintf(stderr, "storectl: %s: %s\n", wal_err_name(rc), e.msg);
	return (int)rc;
}
