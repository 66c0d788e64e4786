/*
 * The parallel LZ4 frame encoder behind wal_lz4_source for inputs of known
 * size.
 */
#ifndef WAL_LZ4_BLOCKS_H
#define WAL_LZ4_BLOCKS_H

#include <stddef.h>
#include <stdint.h>
#include "base/error.h"
#include "base/stream.h"

/*
 * The level of a frame whose blocks are stored uncompressed (compress =
 * none): still a standard LZ4 frame, so the content checksum and the
 * content size travel with the bytes, and `lz4 -d` reads it.
 */
#define WAL_LZ4_STORED 0

typedef struct wal_lz4_blocks wal_lz4_blocks;

/*
 * A source producing one LZ4 frame of inner's content_size bytes, with
 * independent 256 KiB blocks compressed by up to threads worker threads
 * (1: in the calling thread); level WAL_LZ4_STORED stores every block
 * uncompressed, so the frame only adds its checksum to the bytes.  Reading fails with WAL_EIO if inner does
 * not produce exactly content_size bytes.
 */
wal_err wal_lz4_blocks_new(wal_lz4_blocks **out, wal_source *inner, uint64_t content_size,
			   int level, int threads, wal_error *e);
wal_source *wal_lz4_blocks_base(wal_lz4_blocks *b);
void wal_lz4_blocks_free(wal_lz4_blocks *b);

#endif
