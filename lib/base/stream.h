/*
 * Byte streams between files, compression and archive transports.  A source
 * produces bytes and can start over (a network driver retries an upload, or
 * reads once to learn length and hash before it sends); a sink consumes bytes
 * and can discard what it got (a download retried from the first byte).
 * Concrete streams embed these structs as their first member (io/stream.h,
 * io/compress.h, the atomic file of sys/fileio.h).
 */
#ifndef WAL_BASE_STREAM_H
#define WAL_BASE_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

typedef struct wal_source wal_source;
struct wal_source {
	/* Fills buf with up to cap bytes; *got == 0 means the end. */
	wal_err (*read)(wal_source *src, void *buf, size_t cap, size_t *got, wal_error *e);
	/* Starts again at the first byte; the bytes produced are the same. */
	wal_err (*rewind)(wal_source *src, wal_error *e);
	/* Total length in bytes, or -1 until one full read has been done. */
	int64_t size;
};

typedef struct wal_sink wal_sink;
struct wal_sink {
	/* Consumes len bytes. */
	wal_err (*write)(wal_sink *sink, const void *buf, size_t len, wal_error *e);
	/* Forgets everything written so far: the next write is the first byte. */
	wal_err (*reset)(wal_sink *sink, wal_error *e);
};

/* Size of the buffers that streams move data in. */
#define WAL_IO_CHUNK (256 * 1024)

/* Copies src into sink until the end of src. */
wal_err wal_source_pump(wal_source *src, wal_sink *sink, wal_error *e);

#endif
