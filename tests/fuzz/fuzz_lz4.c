/*
 * libFuzzer target: the LZ4 frame reader (wal_lz4_sink) over arbitrary
 * bytes, fed in chunks whose sizes come from the input.  It must never crash
 * and must end in WAL_OK or WAL_ECORRUPT (or WAL_ENOMEM from the bounded
 * output sink); when it succeeds, the output must be exactly what liblz4's
 * own decoder makes of the same frame.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <lz4frame.h>
#include "io/compress.h"
#include "io/stream.h"

#define OUT_LIMIT (64u << 20)

/* liblz4's reference decoding; returns 0 on success. */
static int reference(const uint8_t *data, size_t size, wal_mem_sink *out)
{
	LZ4F_dctx *dctx;
	unsigned char buf[65536];
	size_t pos = 0, ret = 1;
	int bad = 0;

	if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
		abort();
	while (pos < size && ret != 0) {
		size_t in = size - pos, outn = sizeof buf;
		ret = LZ4F_decompress(dctx, buf, &outn, data + pos, &in, NULL);
		if (LZ4F_isError(ret)) {
			bad = 1;
			break;
		}
		pos += in;
		if (outn && out->base.write(&out->base, buf, outn, NULL) != WAL_OK) {
			bad = 1;
			break;
		}
	}
	LZ4F_freeDecompressionContext(dctx);
	return bad || ret != 0 || pos != size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wal_mem_sink out, ref;
	wal_lz4_sink *lz;
	wal_error e;
	wal_err rc;
	size_t chunk = 1, pos = 0;

	if (size > 0) {
		/* the first byte picks the chunk size: 1..256 bytes or whole */
		chunk = data[0] ? data[0] : size;
		data++;
		size--;
	}
	wal_mem_sink_init(&out, OUT_LIMIT);
	if (wal_lz4_sink_new(&lz, &out.base, "fuzz", &e) != WAL_OK)
		abort();
	rc = WAL_OK;
	while (pos < size && rc == WAL_OK) {
		size_t n = size - pos < chunk ? size - pos : chunk;
		/* an exact-size copy so ASan sees any overread */
		uint8_t *piece = malloc(n);
		memcpy(piece, data + pos, n);
		rc = wal_lz4_sink_base(lz)->write(wal_lz4_sink_base(lz), piece, n, &e);
		free(piece);
		pos += n;
	}
	if (rc == WAL_OK)
		rc = wal_lz4_sink_finish(lz, &e);
	if (rc != WAL_OK && rc != WAL_ECORRUPT && rc != WAL_ENOMEM)
		abort();
	if (rc == WAL_OK) {
		if (wal_lz4_sink_out_bytes(lz) != out.len)
			abort();
		wal_mem_sink_init(&ref, OUT_LIMIT);
		/* a frame the sink accepts, liblz4 must decode to the same bytes */
		if (reference(data, size, &ref) != 0 || ref.len != out.len ||
		    (out.len && memcmp(ref.buf, out.buf, out.len) != 0))
			abort();
		free(ref.buf);
	}
	wal_lz4_sink_free(lz);
	free(out.buf);
	return 0;
}
