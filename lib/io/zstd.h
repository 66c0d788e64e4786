/*
 * Zstandard frame compression as streams, beside io/compress.h's LZ4: a
 * source that compresses another source, and a sink that decompresses into
 * another sink.  Frames carry the content size and the content checksum
 * (XXH64), so `zstd -d` reads them and the sink detects any corruption
 * before its final byte is accepted; a frame without the checksum is
 * refused.
 */
#ifndef WAL_ZSTD_H
#define WAL_ZSTD_H

#include <stdint.h>
#include "base/error.h"
#include "base/stream.h"

#define WAL_ZSTD_SUFFIX ".zst"
#define WAL_ZSTD_LEVEL_MAX 19
/* compress_level unset with compress = zstd (README, "Performance") */
#define WAL_ZSTD_LEVEL_DEFAULT 3

typedef struct wal_zstd_source wal_zstd_source;
typedef struct wal_zstd_sink wal_zstd_sink;

/*
 * Creates a source producing the zstd frame of inner's bytes at level
 * (1..WAL_ZSTD_LEVEL_MAX), with the content checksum, and content_size in
 * the frame header when >= 0 (the frame then fails if inner disagrees).
 * Inputs of a segment's size are compressed on every core.
 */
wal_err wal_zstd_source_new(wal_zstd_source **out, wal_source *inner, int64_t content_size,
			    int level, wal_error *e);
wal_source *wal_zstd_source_base(wal_zstd_source *src);
void wal_zstd_source_free(wal_zstd_source *src);

/*
 * Creates a sink that decompresses one zstd frame into inner.  what names
 * the object in messages.  Anything but one frame with a content checksum
 * that matches (no checksum, corrupt or truncated data, bytes after the
 * frame) is WAL_ECORRUPT.
 */
wal_err wal_zstd_sink_new(wal_zstd_sink **out, wal_sink *inner, const char *what, wal_error *e);
wal_sink *wal_zstd_sink_base(wal_zstd_sink *sink);

/* Checks that the frame ended exactly, with its checksum verified. */
wal_err wal_zstd_sink_finish(wal_zstd_sink *sink, wal_error *e);

/* Bytes written to inner so far. */
uint64_t wal_zstd_sink_out_bytes(const wal_zstd_sink *sink);
void wal_zstd_sink_free(wal_zstd_sink *sink);

#endif
