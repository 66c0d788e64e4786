/*
 * libFuzzer target: the zstd frame reader (wal_zstd_sink) over arbitrary
 * bytes, fed in chunks whose sizes come from the input.  It must never crash
 * and must end in WAL_OK or WAL_ECORRUPT (or WAL_ENOMEM from the bounded
 * output sink); when it succeeds, the frame must carry a content checksum
 * and the output must be exactly what libzstd's own decoder makes of it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include "io/stream.h"
#include "io/zstd.h"

#define OUT_LIMIT (64u << 20)

/*
 * libzstd's reference decoding of exactly one frame; returns 0 on success.
 * The input goes in one byte at a time, as a stream does: given the whole
 * frame at once, ZSTD_decompressStream takes a one-pass path that refuses a
 * compressed block of size 0, which its streaming path (the one walfetch
 * uses, fed the header apart) reads as an empty block.  The content and its
 * checksum are the same either way; "zstd -d" refuses such a frame, which
 * walpush never writes.
 */
static int reference(const uint8_t *data, size_t size, wal_mem_sink *out)
{
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	unsigned char buf[65536];
	size_t ret = 1, pos = 0;
	int bad = 0;
	if (!dctx)
		abort();
	while (ret != 0 && pos < size) {
		ZSTD_inBuffer in = { data + pos, 1, 0 };
		do {
			ZSTD_outBuffer o = { buf, sizeof buf, 0 };
			ret = ZSTD_decompressStream(dctx, &o, &in);
			if (ZSTD_isError(ret) ||
			    (o.pos && out->base.write(&out->base, buf, o.pos, NULL) != WAL_OK)) {
				bad = 1;
				break;
			}
			if (o.pos < o.size)
				break; /* the output is flushed */
		} while (ret != 0);
		if (bad)
			break;
		pos += in.pos;
		if (in.pos == 0)
			break; /* took nothing: cannot go on */
	}
	ZSTD_freeDCtx(dctx);
	return bad || ret != 0 || pos != size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wal_mem_sink out, ref;
	wal_zstd_sink *zs;
	wal_error e;
	wal_err rc = WAL_OK;
	size_t chunk = 1, pos = 0;

	if (size > 0) {
		/* the first byte picks the chunk size: 1..255 bytes or whole */
		chunk = data[0] ? data[0] : size;
		data++;
		size--;
	}
	wal_mem_sink_init(&out, OUT_LIMIT);
	if (wal_zstd_sink_new(&zs, &out.base, "fuzz", &e) != WAL_OK)
		abort();
	while (pos < size && rc == WAL_OK) {
		size_t n = size - pos < chunk ? size - pos : chunk;
		/* an exact-size copy so ASan sees any overread */
		uint8_t *piece = malloc(n);
		memcpy(piece, data + pos, n);
		rc = wal_zstd_sink_base(zs)->write(wal_zstd_sink_base(zs), piece, n, &e);
		free(piece);
		pos += n;
	}
	if (rc == WAL_OK)
		rc = wal_zstd_sink_finish(zs, &e);
	if (rc != WAL_OK && rc != WAL_ECORRUPT && rc != WAL_ENOMEM)
		abort();
	if (rc == WAL_OK) {
		/* accepted: a checked frame (Content_Checksum_flag) that libzstd agrees on */
		if (size < 5 || !(data[4] & 0x04) || wal_zstd_sink_out_bytes(zs) != out.len)
			abort();
		wal_mem_sink_init(&ref, OUT_LIMIT);
		if (reference(data, size, &ref) != 0 || ref.len != out.len ||
		    (out.len && memcmp(ref.buf, out.buf, out.len) != 0))
			abort();
		free(ref.buf);
	}
	wal_zstd_sink_free(zs);
	free(out.buf);
	return 0;
}
