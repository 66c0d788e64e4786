/*
 * Zstandard frame streams: compression as a rewindable source, decompression
 * as a verifying sink.  libzstd computes and checks the frame's XXH64
 * content checksum itself; the sink reads the frame header first and
 * refuses a frame that does not carry one, before any byte goes on, and
 * checks the size restored against the size the header gives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>
#include "io/zstd.h"

/* Inputs at least this large are worth compressing on several threads. */
#define PARALLEL_MIN (1024 * 1024)

/* RFC 8878: the magic number, then the frame header descriptor. */
#define ZSTD_FRAME_MAGIC 0xFD2FB528u
#define FHD_CHECKSUM 0x04
#define FRAME_HEADER_MAX 18 /* magic, descriptor, window, dictionary id, size */

struct wal_zstd_source {
	wal_source base;
	wal_source *inner;
	ZSTD_CCtx *cctx;
	int64_t content_size;
	unsigned char *in;
	size_t in_len;
	size_t in_pos;
	unsigned char *out;
	size_t out_cap;
	size_t out_len;
	size_t out_pos;
	int64_t produced;
	int input_done; /* inner reached its end */
	int ended;	/* the frame is complete */
	int level;
	int workers; /* compression threads, 0: in the caller's */
};

/*
 * Starts a frame on a new context.  A new one each time: resetting a context
 * whose worker threads are still on jobs of an unfinished frame (a rewind
 * in the middle of an upload) crashed a worker of libzstd 1.5.4, while
 * freeing a context waits for them.
 */
static wal_err zstd_source_start(wal_zstd_source *src, wal_error *e)
{
	ZSTD_freeCCtx(src->cctx);
	if (!(src->cctx = ZSTD_createCCtx()))
		return wal_fail(e, WAL_ENOMEM, "out of memory for zstd compression");
	size_t r = ZSTD_CCtx_setParameter(src->cctx, ZSTD_c_compressionLevel, src->level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(src->cctx, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(src->cctx, ZSTD_c_contentSizeFlag, 1);
	if (ZSTD_isError(r))
		return wal_fail(e, WAL_EINVAL, "zstd level %d: %s", src->level,
				ZSTD_getErrorName(r));
	/* refused by a libzstd built without threads: one thread then; one job
	 * per thread, whatever the level's own job size (32 MiB at level 9,
	 * which would leave a segment on one thread) */
	if (src->workers > 1 &&
	    !ZSTD_isError(ZSTD_CCtx_setParameter(src->cctx, ZSTD_c_nbWorkers, src->workers)))
		(void)ZSTD_CCtx_setParameter(src->cctx, ZSTD_c_jobSize,
					     (int)((src->content_size + src->workers - 1) /
						   src->workers));
	if (src->content_size >= 0)
		r = ZSTD_CCtx_setPledgedSrcSize(src->cctx, (unsigned long long)src->content_size);
	if (ZSTD_isError(r))
		return wal_fail(e, WAL_EIO, "zstd: %s", ZSTD_getErrorName(r));
	src->in_len = src->in_pos = 0;
	src->out_len = src->out_pos = 0;
	src->produced = 0;
	src->input_done = src->ended = 0;
	return WAL_OK;
}

/* Produces the next piece of the frame into src->out. */
static wal_err zstd_source_fill(wal_zstd_source *src, wal_error *e)
{
	src->out_len = src->out_pos = 0;
	while (src->out_len == 0 && !src->ended) {
		if (src->in_pos == src->in_len && !src->input_done) {
			size_t got = 0;
			wal_err rc = src->inner->read(src->inner, src->in, WAL_IO_CHUNK, &got, e);
			if (rc != WAL_OK)
				return rc;
			src->in_len = got;
			src->in_pos = 0;
			src->input_done = got == 0;
		}
		ZSTD_inBuffer in = { src->in, src->in_len, src->in_pos };
		ZSTD_outBuffer out = { src->out, src->out_cap, 0 };
		size_t r = ZSTD_compressStream2(src->cctx, &out, &in,
						src->input_done ? ZSTD_e_end : ZSTD_e_continue);
		if (ZSTD_isError(r))
			return wal_fail(e, WAL_EIO, "zstd: %s", ZSTD_getErrorName(r));
		src->in_pos = in.pos;
		src->out_len = out.pos;
		if (src->input_done && r == 0)
			src->ended = 1;
	}
	return WAL_OK;
}

static wal_err zstd_source_read(wal_source *base, void *buf, size_t cap, size_t *got, wal_error *e)
{
	wal_zstd_source *src = (wal_zstd_source *)base;
	size_t done = 0;
	while (done < cap) {
		if (src->out_pos == src->out_len) {
			if (src->ended) {
				src->base.size = src->produced;
				break;
			}
			wal_err rc = zstd_source_fill(src, e);
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

static wal_err zstd_source_rewind(wal_source *base, wal_error *e)
{
	wal_zstd_source *src = (wal_zstd_source *)base;
	wal_err rc = src->inner->rewind(src->inner, e);
	return rc == WAL_OK ? zstd_source_start(src, e) : rc;
}

wal_err wal_zstd_source_new(wal_zstd_source **out, wal_source *inner, int64_t content_size,
			    int level, wal_error *e)
{
	wal_zstd_source *src = calloc(1, sizeof(*src));
	if (!src)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	src->base.read = zstd_source_read;
	src->base.rewind = zstd_source_rewind;
	src->base.size = -1;
	src->inner = inner;
	src->content_size = content_size;
	src->out_cap = ZSTD_CStreamOutSize();
	src->in = malloc(WAL_IO_CHUNK);
	src->out = malloc(src->out_cap);
	src->level = level;
	if (!src->in || !src->out) {
		wal_zstd_source_free(src);
		return wal_fail(e, WAL_ENOMEM, "out of memory for zstd compression");
	}
	if (content_size >= PARALLEL_MIN) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		src->workers = cpus > 1 ? (int)(cpus < 64 ? cpus : 64) : 0;
	}
	wal_err rc = zstd_source_start(src, e);
	if (rc != WAL_OK) {
		wal_zstd_source_free(src);
		return rc;
	}
	*out = src;
	return WAL_OK;
}

wal_source *wal_zstd_source_base(wal_zstd_source *src)
{
	return &src->base;
}

void wal_zstd_source_free(wal_zstd_source *src)
{
	if (!src)
		return;
	ZSTD_freeCCtx(src->cctx);
	free(src->in);
	free(src->out);
	free(src);
}

/* ---- decompression -------------------------------------------------------- */

struct wal_zstd_sink {
	wal_sink base;
	wal_sink *inner;
	ZSTD_DCtx *dctx;
	unsigned char *out;
	size_t out_cap;
	uint64_t out_bytes;
	unsigned char head[FRAME_HEADER_MAX]; /* the frame header, held until checked */
	size_t head_len;
	size_t head_need; /* its size, once its descriptor is in */
	int head_ok;
	unsigned long long content_size; /* from the header, or ZSTD_CONTENTSIZE_UNKNOWN */
	int frame_done;
	char what[256];
};

/* The size of a frame header from its descriptor (RFC 8878, 3.1.1.1). */
static size_t frame_header_size(unsigned char fhd)
{
	static const size_t did[4] = { 0, 1, 2, 4 }, fcs[4] = { 0, 2, 4, 8 };
	int single = (fhd >> 5) & 1;
	size_t fcs_size = fcs[fhd >> 6];
	if ((fhd >> 6) == 0 && single)
		fcs_size = 1;
	return 5 + (single ? 0 : 1) + did[fhd & 3] + fcs_size;
}

/* Decompresses len bytes of the frame (after its header was checked). */
static wal_err zstd_sink_feed(wal_zstd_sink *sink, const void *buf, size_t len, wal_error *e)
{
	ZSTD_inBuffer in = { buf, len, 0 };
	int more = len > 0;
	while (more) {
		if (sink->frame_done)
			return wal_fail(e, WAL_ECORRUPT, "%s: data after the end of the zstd frame",
					sink->what);
		ZSTD_outBuffer out = { sink->out, sink->out_cap, 0 };
		size_t r = ZSTD_decompressStream(sink->dctx, &out, &in);
		if (ZSTD_isError(r))
			return wal_fail(e, WAL_ECORRUPT, "%s: corrupt zstd data (%s)", sink->what,
					ZSTD_getErrorName(r));
		if (r == 0) {
			sink->frame_done = 1; /* and its checksum matched */
			/* libzstd, fed the header apart from the blocks, lets a frame end
			 * short of the size its header gives: the checksum then covers only
			 * the bytes there are */
			if (sink->content_size != ZSTD_CONTENTSIZE_UNKNOWN &&
			    sink->out_bytes + out.pos != sink->content_size)
				return wal_fail(
					e, WAL_ECORRUPT,
					"%s: corrupt zstd data (%llu bytes, the frame header says "
					"%llu)",
					sink->what, (unsigned long long)(sink->out_bytes + out.pos),
					sink->content_size);
		}
		if (out.pos > 0) {
			wal_err rc = sink->inner->write(sink->inner, sink->out, out.pos, e);
			if (rc != WAL_OK)
				return rc;
			sink->out_bytes += out.pos;
		}
		/* a full output buffer may leave more to flush from the same input */
		more = in.pos < in.size || (out.pos == out.size && !sink->frame_done);
	}
	return WAL_OK;
}

static wal_err zstd_sink_write(wal_sink *base, const void *buf, size_t len, wal_error *e)
{
	wal_zstd_sink *sink = (wal_zstd_sink *)base;
	const unsigned char *p = buf;
	while (!sink->head_ok && len > 0) {
		/* the magic and the descriptor first: they say how long the header is */
		size_t want = sink->head_need ? sink->head_need : 5;
		size_t n = want - sink->head_len;
		if (n > len)
			n = len;
		memcpy(sink->head + sink->head_len, p, n);
		sink->head_len += n;
		p += n;
		len -= n;
		if (sink->head_len < want)
			return WAL_OK;
		if (!sink->head_need) {
			uint32_t magic = (uint32_t)sink->head[0] | (uint32_t)sink->head[1] << 8 |
					 (uint32_t)sink->head[2] << 16 |
					 (uint32_t)sink->head[3] << 24;
			if (magic != ZSTD_FRAME_MAGIC)
				return wal_fail(e, WAL_ECORRUPT, "%s: not a zstd frame",
						sink->what);
			/* an unchecked frame could restore damaged WAL unnoticed */
			if (!(sink->head[4] & FHD_CHECKSUM))
				return wal_fail(e, WAL_ECORRUPT,
						"%s: zstd frame without a content checksum (made "
						"without --check?); refused",
						sink->what);
			sink->head_need = frame_header_size(sink->head[4]);
			continue;
		}
		sink->content_size = ZSTD_getFrameContentSize(sink->head, sink->head_len);
		if (sink->content_size == ZSTD_CONTENTSIZE_ERROR)
			return wal_fail(e, WAL_ECORRUPT, "%s: corrupt zstd frame header",
					sink->what);
		sink->head_ok = 1;
		wal_err rc = zstd_sink_feed(sink, sink->head, sink->head_len, e);
		if (rc != WAL_OK)
			return rc;
	}
	return len ? zstd_sink_feed(sink, p, len, e) : WAL_OK;
}

static wal_err zstd_sink_reset(wal_sink *base, wal_error *e)
{
	wal_zstd_sink *sink = (wal_zstd_sink *)base;
	ZSTD_DCtx_reset(sink->dctx, ZSTD_reset_session_only);
	sink->frame_done = 0;
	sink->out_bytes = 0;
	sink->head_len = 0;
	sink->head_need = 0;
	sink->head_ok = 0;
	return sink->inner->reset(sink->inner, e);
}

wal_err wal_zstd_sink_new(wal_zstd_sink **out, wal_sink *inner, const char *what, wal_error *e)
{
	wal_zstd_sink *sink = calloc(1, sizeof(*sink));
	if (!sink)
		return wal_fail(e, WAL_ENOMEM, "out of memory");
	sink->base.write = zstd_sink_write;
	sink->base.reset = zstd_sink_reset;
	sink->inner = inner;
	snprintf(sink->what, sizeof(sink->what), "%s", what);
	sink->out_cap = WAL_IO_CHUNK;
	sink->out = malloc(sink->out_cap);
	sink->dctx = ZSTD_createDCtx();
	if (!sink->out || !sink->dctx) {
		wal_zstd_sink_free(sink);
		return wal_fail(e, WAL_ENOMEM, "out of memory for zstd decompression");
	}
	*out = sink;
	return WAL_OK;
}

wal_sink *wal_zstd_sink_base(wal_zstd_sink *sink)
{
	return &sink->base;
}

wal_err wal_zstd_sink_finish(wal_zstd_sink *sink, wal_error *e)
{
	if (!sink->head_ok)
		return wal_fail(e, WAL_ECORRUPT, "%s: %s", sink->what,
				sink->head_len ? "truncated zstd frame" : "empty object");
	if (!sink->frame_done)
		return wal_fail(e, WAL_ECORRUPT, "%s: truncated zstd frame", sink->what);
	return WAL_OK;
}

uint64_t wal_zstd_sink_out_bytes(const wal_zstd_sink *sink)
{
	return sink->out_bytes;
}

void wal_zstd_sink_free(wal_zstd_sink *sink)
{
	if (!sink)
		return;
	ZSTD_freeDCtx(sink->dctx);
	free(sink->out);
	free(sink);
}
