/*
 * LZ4 frame compression as streams: a source that compresses another source,
 * and a sink that decompresses into another sink.  Frames carry the content
 * size and the content checksum, so `lz4 -d` reads them and the sink detects
 * any corruption before its final byte is accepted.
 */
#ifndef WAL_COMPRESS_H
#define WAL_COMPRESS_H

#include <stdint.h>
#include "base/error.h"
#include "base/stream.h"
#include "io/lz4_blocks.h"

#define WAL_LZ4_SUFFIX ".lz4"

typedef struct wal_lz4_source wal_lz4_source;
typedef struct wal_lz4_sink wal_lz4_sink;

/*
 * Creates a source producing the LZ4 frame of inner's bytes (content_size
 * is written into the frame header when >= 0).  level as lz4's -1..-12,
 * or WAL_LZ4_STORED (content_size must then be known).
 */
wal_err wal_lz4_source_new(wal_lz4_source **out, wal_source *inner, int64_t content_size, int level,
			   wal_error *e);
wal_source *wal_lz4_source_base(wal_lz4_source *src);
void wal_lz4_source_free(wal_lz4_source *src);

/*
 * Creates a sink that decompresses an LZ4 frame into inner.  what names the
 * object in messages.  Corrupt input, a frame without a content checksum, a
 * checksum mismatch or a size that disagrees with the frame header is
 * WAL_ECORRUPT.
 */
wal_err wal_lz4_sink_new(wal_lz4_sink **out, wal_sink *inner, const char *what, wal_error *e);
wal_sink *wal_lz4_sink_base(wal_lz4_sink *sink);

/* Checks that the frame ended exactly, with its checksum verified. */
wal_err wal_lz4_sink_finish(wal_lz4_sink *sink, wal_error *e);

/* Bytes written to inner so far. */
uint64_t wal_lz4_sink_out_bytes(const wal_lz4_sink *sink);
void wal_lz4_sink_free(wal_lz4_sink *sink);

#endif
