/*
 * Memory and file-descriptor streams, and the generic pump and measure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sys/fileio.h"
#include "io/stream.h"
#include "io/xxhash.h"

static wal_err mem_read(wal_source *base, void *buf, size_t cap, size_t *got, wal_error *e)
{
	(void)e;
	wal_mem_source *src = (wal_mem_source *)base;
	size_t n = src->len - src->pos;
	if (n > cap)
		n = cap;
	memcpy(buf, src->data + src->pos, n);
	src->pos += n;
	*got = n;
	return WAL_OK;
}

static wal_err mem_rewind(wal_source *base, wal_error *e)
{
	(void)e;
	((wal_mem_source *)base)->pos = 0;
	return WAL_OK;
}

void wal_mem_source_init(wal_mem_source *src, const void *data, size_t len)
{
	src->base.read = mem_read;
	src->base.rewind = mem_rewind;
	src->base.size = (int64_t)len;
	src->data = data;
	src->len = len;
	src->pos = 0;
}

static wal_err memsink_write(wal_sink *base, const void *buf, size_t len, wal_error *e)
{
	wal_mem_sink *sink = (wal_mem_sink *)base;
	if (sink->limit && sink->len + len > sink->limit)
		return wal_fail(e, WAL_ENOMEM, "object larger than %zu bytes", sink->limit);
	if (sink->len + len > sink->cap) {
		size_t cap = sink->cap ? sink->cap : 4096;
		while (cap < sink->len + len)
			cap *= 2;
		unsigned char *grown = realloc(sink->buf, cap);
		if (!grown)
			return wal_fail(e, WAL_ENOMEM, "out of memory");
		sink->buf = grown;
		sink->cap = cap;
	}
	memcpy(sink->buf + sink->len, buf, len);
	sink->len += len;
	return WAL_OK;
}

static wal_err memsink_reset(wal_sink *base, wal_error *e)
{
	(void)e;
	((wal_mem_sink *)base)->len = 0;
	return WAL_OK;
}

void wal_mem_sink_init(wal_mem_sink *sink, size_t limit)
{
	sink->base.write = memsink_write;
	sink->base.reset = memsink_reset;
	sink->buf = NULL;
	sink->len = 0;
	sink->cap = 0;
	sink->limit = limit;
}

static wal_err fd_read(wal_source *base, void *buf, size_t cap, size_t *got, wal_error *e)
{
	wal_fd_source *src = (wal_fd_source *)base;
	ssize_t n = wal_sys_read_full(src->fd, buf, cap);
	if (n < 0)
		return wal_fail_errno(e, WAL_EIO, errno, "%s: cannot read", src->path);
	src->offset += n;
	if (n == 0 && cap > 0)
		src->base.size = src->offset;
	*got = (size_t)n;
	return WAL_OK;
}

static wal_err fd_rewind(wal_source *base, wal_error *e)
{
	wal_fd_source *src = (wal_fd_source *)base;
	if (lseek(src->fd, 0, SEEK_SET) < 0)
		return wal_fail_errno(e, WAL_EIO, errno, "%s: cannot seek", src->path);
	src->offset = 0;
	return WAL_OK;
}

void wal_fd_source_init(wal_fd_source *src, int fd, const char *path, int64_t size)
{
	src->base.read = fd_read;
	src->base.rewind = fd_rewind;
	src->base.size = size;
	src->fd = fd;
	src->path = path;
	src->offset = 0;
}

static wal_err hash_read(wal_source *base, void *buf, size_t cap, size_t *got, wal_error *e)
{
	wal_hash_source *src = (wal_hash_source *)base;
	wal_err rc = src->inner->read(src->inner, buf, cap, got, e);
	if (rc != WAL_OK)
		return rc;
	if (*got > 0) {
		wal_xxh64_update(src->state, buf, *got);
		src->bytes += *got;
	} else if (!src->hex[0]) {
		snprintf(src->hex, sizeof(src->hex), "%016llx",
			 (unsigned long long)wal_xxh64_digest(src->state));
		src->base.size = (int64_t)src->bytes;
	}
	return WAL_OK;
}

static wal_err hash_rewind(wal_source *base, wal_error *e)
{
	wal_hash_source *src = (wal_hash_source *)base;
	wal_err rc = src->inner->rewind(src->inner, e);
	if (rc != WAL_OK)
		return rc;
	src->hex[0] = '\0';
	src->bytes = 0;
	wal_xxh64_init(src->state, 0);
	return WAL_OK;
}

/* A fresh XXH64 state on the heap (stream.h keeps xxhash.h private), or NULL. */
static void *hash_state_new(void)
{
	wal_xxh64 *h = malloc(sizeof(*h));
	if (h)
		wal_xxh64_init(h, 0);
	return h;
}

wal_err wal_hash_source_init(wal_hash_source *src, wal_source *inner, wal_error *e)
{
	memset(src, 0, sizeof(*src));
	src->base.read = hash_read;
	src->base.rewind = hash_rewind;
	src->base.size = inner->size;
	src->inner = inner;
	src->state = hash_state_new();
	return src->state ? WAL_OK : wal_fail(e, WAL_ENOMEM, "out of memory");
}

void wal_hash_source_free(wal_hash_source *src)
{
	free(src->state);
	src->state = NULL;
}

static wal_err hash_write(wal_sink *base, const void *buf, size_t len, wal_error *e)
{
	wal_hash_sink *sink = (wal_hash_sink *)base;
	wal_err rc = sink->inner->write(sink->inner, buf, len, e);
	if (rc == WAL_OK) {
		wal_xxh64_update(sink->state, buf, len);
		sink->bytes += len;
	}
	return rc;
}

static wal_err hash_reset(wal_sink *base, wal_error *e)
{
	wal_hash_sink *sink = (wal_hash_sink *)base;
	wal_err rc = sink->inner->reset(sink->inner, e);
	if (rc == WAL_OK) {
		sink->bytes = 0;
		wal_xxh64_init(sink->state, 0);
	}
	return rc;
}

wal_err wal_hash_sink_init(wal_hash_sink *sink, wal_sink *inner, wal_error *e)
{
	memset(sink, 0, sizeof(*sink));
	sink->base.write = hash_write;
	sink->base.reset = hash_reset;
	sink->inner = inner;
	sink->state = hash_state_new();
	return sink->state ? WAL_OK : wal_fail(e, WAL_ENOMEM, "out of memory");
}

void wal_hash_sink_digest(const wal_hash_sink *sink, char hex[17])
{
	snprintf(hex, 17, "%016llx", (unsigned long long)wal_xxh64_digest(sink->state));
}

void wal_hash_sink_free(wal_hash_sink *sink)
{
	free(sink->state);
	sink->state = NULL;
}
