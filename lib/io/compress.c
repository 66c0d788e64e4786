/*
 * LZ4 frame streams: compression as a rewindable source, decompression as
 * a verifying sink.  Frames carry the content size and the content
 * checksum.  An input of known size (a WAL segment) is compressed in
 * independent 256 KiB blocks by worker threads (lz4_blocks.c); others go
 * through LZ4F with linked blocks.  Memory stays near 2 MiB either way.
 */
#include <lz4frame.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "io/compress.h"
#include "io/xxhash.h"
#include "io/lz4_blocks.h"

/* Inputs at least this large are worth compressing on several threads. */
#define PARALLEL_MIN (1024 * 1024)

struct wal_lz4_source {
	wal_source base;
	wal_source *inner;
	LZ4F_cctx *cctx;
	LZ4F_preferences_t prefs;
	unsigned char *in;
	unsigned char *out;
	size_t out_cap;
	size_t out_len;
	size_t out_pos;
	int64_t produced; /* frame bytes handed out so far */
	int begun;
	int ended;
	wal_lz4_blocks *blocks; /* the parallel encoder, when it is used */
};

static wal_err lz4_source_fill(wal_lz4_source *src, wal_error *e)
{
	size_t n;
	src->out_len = src->out_pos = 0;
	if (!src->begun) {
		n = LZ4F_compressBegin(src->cctx, src->out, src->out_cap, &src->prefs);
		if (LZ4F_isError(n))
			return wal_fail(e, WAL_EIO, "lz4: %s", LZ4F_getErrorName(n));
		src->begun = 1;
		src->out_len = n;
		return WAL_OK;
	}
	size_t got = 0;
	wal_err rc = src->inner->read(src->inner, src->in, WAL_IO_CHUNK, &got, e);
	if (rc != WAL_OK)
		return rc;
	if (got == 0) {
		n = LZ4F_compressEnd(src->cctx, src->out, src->out_cap, NULL);
		src->ended = 1;
	} else
		n = LZ4F_compressUpdate(src->cctx, src->out, src->out_cap, src->in, got, NULL);
	if (LZ4F_isError(n))
		return wal_fail(e, WAL_EIO, "lz4: %s", LZ4F_getErrorName(n));
	src->out_len = n;
	return WAL_OK;
}

static wal_err lz4_source_read(wal_source *base, void *buf, size_t cap, size_t *got, wal_error *e)
{
	wal_lz4_source *src = (wal_lz4_source *)base;
	size_t done = 0;
	while (done < cap) {
		if (src->out_pos == src->out_len) {
			if (src->ended) {
				src->base.size = src->produced;
				break;
			}
			wal_err rc = lz4_source_fill(src, e);
			if (rc != WAL_OK)
				return rc;
			continue;
		}
		size_t n = src->out_len - src->out_pos;
		if (n > cap - done)
			n = cap - done;
		memcpy((char *)buf + done, src->out + src->out_pos, n);
		src->out_pos += n;
		src->produced += (int64_t)n;
		done += n;
	}
	*got = done;
	return WAL_OK;
}

static wal_err lz4_source_rewind(wal_source *base, wal_error *e)
{
	wal_lz4_source *src = (wal_lz4_source *)base;
	wal_err rc = src->inner->rewind(src->inner, e);
	if (rc != WAL_OK)
		return rc;
	/* LZ4F_compressBegin starts a fresh frame on the same context */
	src->begun = src->ended = 0;
	src->out_len = src->out_pos = 0;
	src->produced = 0;
	return WAL_OK;
}

wal_err wal_lz4_source_new(wal_lz4_source **out, wal_source *inner, int64_t content_size, int level,
			   wal_error *e)
{
	wal_lz4_source *src = calloc(1, sizeof(*src));
	if (!src)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	if (content_size >= PARALLEL_MIN || (level == WAL_LZ4_STORED && content_size >= 0)) {
		/* storing is a copy: one thread does it as fast as the reads come */
		long cpus = level == WAL_LZ4_STORED ? 1 : sysconf(_SC_NPROCESSORS_ONLN);
		wal_err rc = wal_lz4_blocks_new(&src->blocks, inner, (uint64_t)content_size, level,
						cpus > 1 ? (int)cpus : 1, e);
		if (rc != WAL_OK) {
			free(src);
			return rc;
		}
		*out = src;
		return WAL_OK;
	}
	src->base.read = lz4_source_read;
	src->base.rewind = lz4_source_rewind;
	src->base.size = -1;
	src->inner = inner;
	src->prefs.frameInfo.blockSizeID = LZ4F_max256KB;
	src->prefs.frameInfo.blockMode = LZ4F_blockLinked;
	src->prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
	src->prefs.frameInfo.contentSize = content_size > 0 ? (unsigned long long)content_size : 0;
	src->prefs.compressionLevel = level;
	src->out_cap = LZ4F_compressBound(WAL_IO_CHUNK, &src->prefs);
	if (src->out_cap < LZ4F_HEADER_SIZE_MAX)
		src->out_cap = LZ4F_HEADER_SIZE_MAX;
	src->in = malloc(WAL_IO_CHUNK);
	src->out = malloc(src->out_cap);
	size_t rc = LZ4F_createCompressionContext(&src->cctx, LZ4F_VERSION);
	if (!src->in || !src->out || LZ4F_isError(rc)) {
		wal_lz4_source_free(src);
		return wal_fail(e, WAL_ENOMEM, "out of memory for lz4 compression");
	}
	*out = src;
	return WAL_OK;
}

wal_source *wal_lz4_source_base(wal_lz4_source *src)
{
	return src->blocks ? wal_lz4_blocks_base(src->blocks) : &src->base;
}

void wal_lz4_source_free(wal_lz4_source *src)
{
	if (!src)
		return;
	wal_lz4_blocks_free(src->blocks);
	LZ4F_freeCompressionContext(src->cctx);
	free(src->in);
	free(src->out);
	free(src);
}

/*
 * The content checksum is checked here, with libxxhash's XXH32 (about five
 * times as fast as LZ4F's own on these machines, a third of walfetch's CPU
 * per segment), over the bytes handed on: LZ4F is told to skip it.  The
 * frame's flags (its 5th byte) must say that it has one (a frame without is
 * refused), and then its last 4 bytes are that checksum.
 */
struct wal_lz4_sink {
	wal_sink base;
	wal_sink *inner;
	LZ4F_dctx *dctx;
	unsigned char *out;
	uint64_t out_bytes;
	int frame_done;
	uint64_t in_bytes;
	unsigned char flags;   /* the frame descriptor's FLG byte */
	unsigned char tail[4]; /* the last 4 bytes of the frame seen so far */
	wal_xxh32 content;
	char what[256];
};

/* Remembers the FLG byte and the last 4 bytes of the frame's input. */
static void note_input(wal_lz4_sink *sink, const unsigned char *in, size_t len)
{
	for (size_t i = 0; i < len && sink->in_bytes + i <= 4; i++)
		if (sink->in_bytes + i == 4)
			sink->flags = in[i];
	if (len >= 4) {
		memcpy(sink->tail, in + len - 4, 4);
	} else {
		memmove(sink->tail, sink->tail + len, 4 - len);
		memcpy(sink->tail + 4 - len, in, len);
	}
	sink->in_bytes += len;
}

static wal_err lz4_sink_write(wal_sink *base, const void *buf, size_t len, wal_error *e)
{
	wal_lz4_sink *sink = (wal_lz4_sink *)base;
	const unsigned char *in = buf;
	while (len > 0) {
		if (sink->frame_done)
			return wal_fail(e, WAL_ECORRUPT, "%s: data after the end of the lz4 frame",
					sink->what);
		size_t out_len = WAL_IO_CHUNK;
		size_t in_len = len;
		LZ4F_decompressOptions_t opts = { .skipChecksums = 1 };
		size_t hint = LZ4F_decompress(sink->dctx, sink->out, &out_len, in, &in_len, &opts);
		if (LZ4F_isError(hint))
			return wal_fail(e, WAL_ECORRUPT, "%s: corrupt lz4 data (%s)", sink->what,
					LZ4F_getErrorName(hint));
		note_input(sink, in, in_len);
		/* an unchecked frame could restore damaged WAL unnoticed: refused
		 * as soon as its flags are known, before a byte is handed on */
		if (sink->in_bytes > 4 && !(sink->flags & 0x04))
			return wal_fail(e, WAL_ECORRUPT,
					"%s: lz4 frame without a content checksum (made with "
					"--no-frame-crc?); refused",
					sink->what);
		if (hint == 0)
			sink->frame_done = 1;
		if (out_len > 0) {
			wal_xxh32_update(&sink->content, sink->out, out_len);
			wal_err rc = sink->inner->write(sink->inner, sink->out, out_len, e);
			if (rc != WAL_OK)
				return rc;
			sink->out_bytes += out_len;
		}
		in += in_len;
		len -= in_len;
	}
	return WAL_OK;
}

static wal_err lz4_sink_reset(wal_sink *base, wal_error *e)
{
	wal_lz4_sink *sink = (wal_lz4_sink *)base;
	LZ4F_resetDecompressionContext(sink->dctx);
	sink->frame_done = 0;
	sink->out_bytes = 0;
	sink->in_bytes = 0;
	sink->flags = 0;
	wal_xxh32_init(&sink->content, 0);
	return sink->inner->reset(sink->inner, e);
}

wal_err wal_lz4_sink_new(wal_lz4_sink **out, wal_sink *inner, const char *what, wal_error *e)
{
	wal_lz4_sink *sink = calloc(1, sizeof(*sink));
	if (!sink)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	sink->base.write = lz4_sink_write;
	sink->base.reset = lz4_sink_reset;
	sink->inner = inner;
	wal_xxh32_init(&sink->content, 0);
	snprintf(sink->what, sizeof(sink->what), "%s", what);
	sink->out = malloc(WAL_IO_CHUNK);
	size_t rc = LZ4F_createDecompressionContext(&sink->dctx, LZ4F_VERSION);
	if (!sink->out || LZ4F_isError(rc)) {
		wal_lz4_sink_free(sink);
		return wal_fail(e, WAL_ENOMEM, "out of memory for lz4 decompression");
	}
	*out = sink;
	return WAL_OK;
}

wal_sink *wal_lz4_sink_base(wal_lz4_sink *sink)
{
	return &sink->base;
}

wal_err wal_lz4_sink_finish(wal_lz4_sink *sink, wal_error *e)
{
	if (!sink->frame_done)
		return wal_fail(e, WAL_ECORRUPT, "%s: truncated lz4 frame", sink->what);
	if (sink->flags & 0x04) { /* FLG.ContentChecksum */
		uint32_t want = (uint32_t)sink->tail[0] | (uint32_t)sink->tail[1] << 8 |
				(uint32_t)sink->tail[2] << 16 | (uint32_t)sink->tail[3] << 24;
		uint32_t have = wal_xxh32_digest(&sink->content);
		if (have != want)
			return wal_fail(
				e, WAL_ECORRUPT,
				"%s: corrupt lz4 data (content checksum %08x, the frame says %08x)",
				sink->what, have, want);
	}
	return WAL_OK;
}

uint64_t wal_lz4_sink_out_bytes(const wal_lz4_sink *sink)
{
	return sink->out_bytes;
}

void wal_lz4_sink_free(wal_lz4_sink *sink)
{
	if (!sink)
		return;
	LZ4F_freeDecompressionContext(sink->dctx);
	free(sink->out);
	free(sink);
}
