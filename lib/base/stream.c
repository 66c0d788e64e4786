/*
 * What every stream shares: copying a source into a sink.
 */
#include <stdlib.h>
#include "base/stream.h"

wal_err wal_source_pump(wal_source *src, wal_sink *sink, wal_error *e)
{
	wal_err rc = WAL_OK;
	unsigned char *buf = malloc(WAL_IO_CHUNK);
	if (!buf)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	for (;;) {
		size_t got = 0;
		rc = src->read(src, buf, WAL_IO_CHUNK, &got, e);
		if (rc != WAL_OK || got == 0)
			break;
		rc = sink->write(sink, buf, got, e);
		if (rc != WAL_OK)
			break;
	}
	free(buf);
	return rc;
}
