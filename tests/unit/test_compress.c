/*
 * Unit tests for compress.h: LZ4 frames made by the source round-trip
 * through the sink, are readable by the lz4 command-line tool (the way to
 * restore by hand), and any corruption or truncation is WAL_ECORRUPT.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/compress.h"
#include "io/stream.h"

static char dir[256];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/walarchive-unit-compress.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* WAL-like data: runs of zeros, repeated records and some noise. */
static unsigned char *make_data(size_t len, uint32_t seed)
{
	unsigned char *buf = malloc(len ? len : 1);
	uint32_t x = seed * 2654435761u + 3;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		if ((i / 4096) % 3 == 0)
			buf[i] = 0;
		else if ((i / 4096) % 3 == 1)
			buf[i] = (unsigned char)("pgbench_accounts "[i % 17]);
		else
			buf[i] = (unsigned char)x;
	}
	return buf;
}

/* Compresses data into a new buffer (the whole frame). */
static unsigned char *compress_buf(const unsigned char *data, size_t len, int64_t content_size,
				   int level, size_t step, size_t *frame_len)
{
	wal_mem_source in;
	wal_lz4_source *lz;
	wal_error e;
	size_t cap = len + 1024, used = 0;
	unsigned char *out = malloc(cap);

	wal_mem_source_init(&in, data, len);
	cr_assert_eq(wal_lz4_source_new(&lz, &in.base, content_size, level, &e), WAL_OK, "%s",
		     e.msg);
	wal_source *src = wal_lz4_source_base(lz);
	for (;;) {
		size_t got = 0;
		if (used + step > cap) {
			cap = (used + step) * 2;
			out = realloc(out, cap);
		}
		cr_assert_eq(src->read(src, out + used, step, &got, &e), WAL_OK, "%s", e.msg);
		cr_assert_leq(got, step);
		if (got == 0)
			break;
		used += got;
	}
	wal_lz4_source_free(lz);
	*frame_len = used;
	return out;
}

/* Feeds frame into a decompressing sink in pieces of step bytes. */
static wal_err decompress_buf(const unsigned char *frame, size_t frame_len, size_t step,
			      wal_mem_sink *out, wal_error *e)
{
	wal_lz4_sink *lz;
	wal_err rc;

	wal_mem_sink_init(out, 0);
	rc = wal_lz4_sink_new(&lz, &out->base, "test object", e);
	cr_assert_eq(rc, WAL_OK, "%s", e->msg);
	wal_sink *sink = wal_lz4_sink_base(lz);
	for (size_t off = 0; off < frame_len; off += step) {
		size_t n = frame_len - off < step ? frame_len - off : step;
		rc = sink->write(sink, frame + off, n, e);
		if (rc != WAL_OK)
			goto out;
	}
	rc = wal_lz4_sink_finish(lz, e);
	if (rc == WAL_OK)
		cr_assert_eq(wal_lz4_sink_out_bytes(lz), out->len);
out:
	wal_lz4_sink_free(lz);
	return rc;
}

static void roundtrip(size_t len, int64_t content_size, int level, size_t read_step,
		      size_t write_step)
{
	unsigned char *data = make_data(len, (uint32_t)len);
	size_t frame_len;
	unsigned char *frame = compress_buf(data, len, content_size, level, read_step, &frame_len);
	wal_mem_sink out;
	wal_error e;

	cr_assert_geq(frame_len, 7 + 4, "too short for an LZ4 frame");
	cr_assert_eq(frame[0], 0x04);
	cr_assert_eq(frame[1], 0x22);
	cr_assert_eq(frame[2], 0x4D);
	cr_assert_eq(frame[3], 0x18);
	cr_assert(frame[4] & 0x04, "content checksum flag not set (FLG 0x%02X)", frame[4]);
	if (content_size > 0) /* LZ4F cannot record a size of 0 (0 means unknown) */
		cr_assert(frame[4] & 0x08, "content size flag not set (FLG 0x%02X)", frame[4]);
	cr_assert_eq(decompress_buf(frame, frame_len, write_step, &out, &e), WAL_OK,
		     "%zu bytes: %s", len, e.msg);
	cr_assert_eq(out.len, len, "%zu bytes came back as %zu", len, out.len);
	cr_assert(len == 0 || memcmp(out.buf, data, len) == 0, "%zu bytes: content differs", len);
	free(out.buf);
	free(frame);
	free(data);
}

Test(compress, roundtrip_sizes)
{
	size_t sizes[] = { 0,
			   1,
			   2,
			   100,
			   4096,
			   WAL_IO_CHUNK - 1,
			   WAL_IO_CHUNK,
			   WAL_IO_CHUNK + 1,
			   3 * WAL_IO_CHUNK + 17,
			   (16u << 20) };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		roundtrip(sizes[i], (int64_t)sizes[i], 1, WAL_IO_CHUNK, WAL_IO_CHUNK);
		roundtrip(sizes[i], -1, 1, WAL_IO_CHUNK, 65536);
	}
}

Test(compress, roundtrip_odd_steps_and_levels)
{
	size_t len = 2 * WAL_IO_CHUNK + 999;
	roundtrip(len, (int64_t)len, 1, 1000, 1); /* byte by byte into the sink */
	roundtrip(len, (int64_t)len, 1, 7, 13);	  /* tiny reads from the source */
	roundtrip(len, (int64_t)len, 9, WAL_IO_CHUNK, 4093);
	roundtrip(len, -1, 12, 65536, WAL_IO_CHUNK + 5);
	roundtrip(5, 5, 1, 1, 1);
}

Test(compress, wal_like_data_shrinks)
{
	size_t len = 16u << 20, frame_len;
	unsigned char *data = make_data(len, 1);
	unsigned char *frame = compress_buf(data, len, (int64_t)len, 1, WAL_IO_CHUNK, &frame_len);
	cr_assert_lt(frame_len, len / 2, "16 MiB of compressible data gave %zu bytes", frame_len);
	free(frame);
	free(data);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s missing", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* An administrator without walarchive restores with `lz4 -d`. */
Test(compress, frames_readable_by_lz4_cli, .init = setup, .fini = teardown)
{
	size_t sizes[] = { 0, 1, WAL_IO_CHUNK + 1, (16u << 20) };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = sizes[i], frame_len, back_len;
		unsigned char *data = make_data(len, 7);
		unsigned char *frame =
			compress_buf(data, len, (int64_t)len, 1, WAL_IO_CHUNK, &frame_len);
		char in[300], out[300], cmd[700];

		snprintf(in, sizeof(in), "%s/obj%zu.lz4", dir, i);
		snprintf(out, sizeof(out), "%s/obj%zu", dir, i);
		write_file(in, frame, frame_len);
		snprintf(cmd, sizeof(cmd), "lz4 -d -q -f '%s' '%s'", in, out);
		cr_assert_eq(system(cmd), 0, "lz4 -d failed on a %zu-byte frame", len);
		unsigned char *back = read_file(out, &back_len);
		cr_assert_eq(back_len, len);
		cr_assert(len == 0 || memcmp(back, data, len) == 0);
		snprintf(cmd, sizeof(cmd), "lz4 -t -q '%s'", in);
		cr_assert_eq(system(cmd), 0, "lz4 -t failed");
		free(back);
		free(frame);
		free(data);
	}
}

/* Frames made by the lz4 tool (with its content checksum) are accepted. */
Test(compress, sink_reads_lz4_cli_frames, .init = setup, .fini = teardown)
{
	size_t len = 3 * WAL_IO_CHUNK + 5, frame_len;
	unsigned char *data = make_data(len, 8);
	char in[300], out[300], cmd[700];
	wal_mem_sink sink;
	wal_error e;

	snprintf(in, sizeof(in), "%s/plain", dir);
	snprintf(out, sizeof(out), "%s/plain.lz4", dir);
	write_file(in, data, len);
	snprintf(cmd, sizeof(cmd), "lz4 -q -f --content-size '%s' '%s'", in, out);
	cr_assert_eq(system(cmd), 0);
	unsigned char *frame = read_file(out, &frame_len);
	cr_assert_eq(decompress_buf(frame, frame_len, 10000, &sink, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(sink.len, len);
	cr_assert_eq(memcmp(sink.buf, data, len), 0);
	free(sink.buf);
	free(frame);
	free(data);
}

/*
 * A frame made without its content checksum (lz4 --no-frame-crc) carries no
 * check of its bytes: refused, whole or fed a byte at a time, before any of
 * its content is handed on.
 */
Test(compress, sink_refuses_frames_without_checksum, .init = setup, .fini = teardown)
{
	size_t len = 3 * WAL_IO_CHUNK + 5, frame_len;
	unsigned char *data = make_data(len, 9);
	char in[300], out[300], cmd[700];
	size_t steps[] = { 1, 5, 4096, 1u << 30 };
	wal_mem_sink sink;
	wal_error e;

	snprintf(in, sizeof(in), "%s/plain", dir);
	snprintf(out, sizeof(out), "%s/plain.lz4", dir);
	write_file(in, data, len);
	snprintf(cmd, sizeof(cmd), "lz4 -q -f --content-size --no-frame-crc '%s' '%s'", in, out);
	cr_assert_eq(system(cmd), 0);
	unsigned char *frame = read_file(out, &frame_len);
	cr_assert_eq(frame[4] & 0x04, 0, "lz4 --no-frame-crc set the checksum flag");
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		wal_error_clear(&e);
		cr_assert_eq(decompress_buf(frame, frame_len, steps[i], &sink, &e), WAL_ECORRUPT,
			     "step %zu: %s", steps[i], e.msg);
		cr_assert_not_null(strstr(e.msg, "without a content checksum"), "%s", e.msg);
		cr_assert_eq(sink.len, 0, "step %zu: %zu bytes handed on", steps[i], sink.len);
		free(sink.buf);
	}
	free(frame);
	free(data);
}

/*
 * A change to any single byte of a frame is WAL_ECORRUPT, or (only where
 * LZ4 itself cannot tell, e.g. a match offset changed inside a run of
 * zeros) decodes to exactly the original bytes: wrong content is never
 * accepted.  Header, end mark and checksum bytes are always refused.
 */
static void corrupt_every_byte(size_t len, uint32_t seed)
{
	unsigned char *data = make_data(len, seed);
	size_t frame_len;
	unsigned char *frame = compress_buf(data, len, (int64_t)len, 1, WAL_IO_CHUNK, &frame_len);
	unsigned char masks[] = { 0x01, 0x80, 0xFF };
	size_t header_len = 7 + ((frame[4] & 0x08) ? 8 : 0), detected = 0, tried = 0;

	for (size_t pos = 0; pos < frame_len; pos++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			wal_mem_sink out;
			wal_error e;

			frame[pos] ^= masks[m];
			wal_error_clear(&e);
			wal_err rc = decompress_buf(frame, frame_len, 4096, &out, &e);
			frame[pos] ^= masks[m];
			tried++;
			if (rc == WAL_OK) {
				cr_assert(
					pos >= header_len && pos < frame_len - 8,
					"byte %zu of %zu (header/end/checksum) xor 0x%02X accepted",
					pos, frame_len, masks[m]);
				cr_assert(out.len == len && memcmp(out.buf, data, len) == 0,
					  "byte %zu of %zu xor 0x%02X: wrong content accepted", pos,
					  frame_len, masks[m]);
			} else {
				detected++;
				cr_assert_eq(rc, WAL_ECORRUPT,
					     "byte %zu of %zu xor 0x%02X: got %s (%s)", pos,
					     frame_len, masks[m], wal_err_name(rc), e.msg);
				cr_assert(e.msg[0]);
			}
			free(out.buf);
		}
	}
	cr_assert_gt(detected, tried * 9 / 10, "only %zu of %zu changes detected", detected, tried);
	free(frame);
	free(data);
}

Test(compress, corruption_of_any_byte_detected)
{
	/* compressible and incompressible parts, so both block kinds appear */
	corrupt_every_byte(3 * 4096 * 3, 11);
	corrupt_every_byte(300, 12);
	corrupt_every_byte(1, 13);
}

Test(compress, corruption_message_names_object)
{
	size_t len = 10000, frame_len;
	unsigned char *data = make_data(len, 12);
	unsigned char *frame = compress_buf(data, len, (int64_t)len, 1, WAL_IO_CHUNK, &frame_len);
	wal_mem_sink out;
	wal_error e;

	frame[frame_len - 2] ^= 0x10; /* content checksum */
	cr_assert_eq(decompress_buf(frame, frame_len, 4096, &out, &e), WAL_ECORRUPT);
	cr_assert_not_null(strstr(e.msg, "test object"), "message: %s", e.msg);
	free(out.buf);
	free(frame);
	free(data);
}

Test(compress, truncated_frame_detected)
{
	size_t len = 3 * WAL_IO_CHUNK + 100, frame_len;
	unsigned char *data = make_data(len, 13);
	unsigned char *frame = compress_buf(data, len, (int64_t)len, 1, WAL_IO_CHUNK, &frame_len);
	size_t cuts[] = { 0,
			  1,
			  4,
			  6,
			  7,
			  11,
			  frame_len / 3,
			  frame_len / 2,
			  frame_len - 8,
			  frame_len - 5,
			  frame_len - 4,
			  frame_len - 1 };

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		wal_mem_sink out;
		wal_error e;
		wal_err rc = decompress_buf(frame, cuts[i], 4096, &out, &e);
		cr_assert_eq(rc, WAL_ECORRUPT, "frame cut at %zu of %zu: %s", cuts[i], frame_len,
			     wal_err_name(rc));
		free(out.buf);
	}
	free(frame);
	free(data);
}

Test(compress, trailing_garbage_detected)
{
	size_t len = 5000, frame_len;
	unsigned char *data = make_data(len, 14);
	unsigned char *frame = compress_buf(data, len, (int64_t)len, 1, WAL_IO_CHUNK, &frame_len);
	wal_mem_sink out;
	wal_error e;

	frame = realloc(frame, frame_len + 3);
	memcpy(frame + frame_len, "xyz", 3);
	cr_assert_eq(decompress_buf(frame, frame_len + 3, 4096, &out, &e), WAL_ECORRUPT,
		     "bytes after the end of the frame accepted");
	free(out.buf);
	free(frame);
	free(data);
}

Test(compress, not_a_frame)
{
	const char *text = "000000010000000000000001 is not lz4";
	wal_mem_sink out;
	wal_error e;

	cr_assert_eq(decompress_buf((const unsigned char *)text, strlen(text), 4096, &out, &e),
		     WAL_ECORRUPT);
	free(out.buf);
}

/* A wrong content size never yields a frame that decompresses cleanly. */
Test(compress, content_size_mismatch)
{
	size_t len = 70000;
	unsigned char *data = make_data(len, 15);
	wal_mem_source in;
	wal_lz4_source *lz;
	wal_error e;
	wal_mem_sink frame;

	wal_mem_source_init(&in, data, len);
	cr_assert_eq(wal_lz4_source_new(&lz, &in.base, (int64_t)len + 1, 1, &e), WAL_OK, "%s",
		     e.msg);
	wal_mem_sink_init(&frame, 0);
	wal_err rc = wal_source_pump(wal_lz4_source_base(lz), &frame.base, &e);
	wal_lz4_source_free(lz);
	if (rc == WAL_OK) {
		wal_mem_sink out;
		rc = decompress_buf(frame.buf, frame.len, 4096, &out, &e);
		cr_assert_eq(rc, WAL_ECORRUPT, "frame with a wrong content size accepted");
		free(out.buf);
	}
	free(frame.buf);
	free(data);
}

/* A network retry rewinds the source: it must produce the same frame. */
Test(compress, rewind_gives_same_bytes)
{
	size_t len = 3 * WAL_IO_CHUNK + 321;
	unsigned char *data = make_data(len, 16);
	wal_mem_source in;
	wal_lz4_source *lz;
	wal_error e;
	wal_mem_sink first, second;
	unsigned char buf[5000];
	size_t got;

	wal_mem_source_init(&in, data, len);
	cr_assert_eq(wal_lz4_source_new(&lz, &in.base, (int64_t)len, 1, &e), WAL_OK, "%s", e.msg);
	wal_source *src = wal_lz4_source_base(lz);

	wal_mem_sink_init(&first, 0);
	cr_assert_eq(wal_source_pump(src, &first.base, &e), WAL_OK, "%s", e.msg);

	cr_assert_eq(src->rewind(src, &e), WAL_OK, "%s", e.msg);
	wal_mem_sink_init(&second, 0);
	cr_assert_eq(wal_source_pump(src, &second.base, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(second.len, first.len);
	cr_assert_eq(memcmp(first.buf, second.buf, first.len), 0, "rewound frame differs");

	/* rewind in the middle of a read */
	cr_assert_eq(src->rewind(src, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(src->read(src, buf, sizeof(buf), &got, &e), WAL_OK);
	cr_assert_eq(src->rewind(src, &e), WAL_OK, "%s", e.msg);
	free(second.buf);
	wal_mem_sink_init(&second, 0);
	cr_assert_eq(wal_source_pump(src, &second.base, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(second.len, first.len);
	cr_assert_eq(memcmp(first.buf, second.buf, first.len), 0, "frame after mid-read rewind");

	wal_lz4_source_free(lz);
	free(first.buf);
	free(second.buf);
	free(data);
}

/* stream.h: a source's size is "-1 until one full read has been done". */
Test(compress, source_size_known_after_full_read)
{
	size_t len = 100000;
	unsigned char *data = make_data(len, 19);
	wal_mem_source in;
	wal_lz4_source *lz;
	wal_error e;
	wal_mem_sink frame;

	wal_mem_source_init(&in, data, len);
	cr_assert_eq(wal_lz4_source_new(&lz, &in.base, (int64_t)len, 1, &e), WAL_OK, "%s", e.msg);
	wal_source *src = wal_lz4_source_base(lz);
	wal_mem_sink_init(&frame, 0);
	cr_assert_eq(wal_source_pump(src, &frame.base, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(src->size, (int64_t)frame.len, "size %lld after a full read of %zu bytes",
		     (long long)src->size, frame.len);
	wal_lz4_source_free(lz);
	free(frame.buf);
	free(data);
}

/* A download retried from the first byte: the sink forgets what it had. */
Test(compress, sink_reset_starts_over)
{
	size_t len = 2 * WAL_IO_CHUNK + 10, frame_len;
	unsigned char *data = make_data(len, 17);
	unsigned char *frame = compress_buf(data, len, (int64_t)len, 1, WAL_IO_CHUNK, &frame_len);
	wal_mem_sink out;
	wal_lz4_sink *lz;
	wal_error e;

	wal_mem_sink_init(&out, 0);
	cr_assert_eq(wal_lz4_sink_new(&lz, &out.base, "retry", &e), WAL_OK);
	wal_sink *sink = wal_lz4_sink_base(lz);
	cr_assert_eq(sink->write(sink, frame, frame_len / 2, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(sink->reset(sink, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(sink->write(sink, frame, frame_len, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_lz4_sink_finish(lz, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(out.len, len, "got %zu bytes, expected %zu", out.len, len);
	cr_assert_eq(memcmp(out.buf, data, len), 0);
	cr_assert_eq(wal_lz4_sink_out_bytes(lz), len);
	wal_lz4_sink_free(lz);
	free(out.buf);
	free(frame);
	free(data);
}

/* Errors of the inner streams come through unchanged. */
Test(compress, inner_errors_pass_through)
{
	size_t len = 3 * WAL_IO_CHUNK, frame_len;
	unsigned char *data = make_data(len, 18);
	unsigned char *frame = compress_buf(data, len, (int64_t)len, 1, WAL_IO_CHUNK, &frame_len);
	wal_mem_sink out;
	wal_lz4_sink *lz;
	wal_error e;
	wal_err rc = WAL_OK;

	wal_mem_sink_init(&out, len / 2);
	cr_assert_eq(wal_lz4_sink_new(&lz, &out.base, "limited", &e), WAL_OK);
	wal_sink *sink = wal_lz4_sink_base(lz);
	for (size_t off = 0; off < frame_len && rc == WAL_OK; off += 4096)
		rc = sink->write(sink, frame + off, frame_len - off < 4096 ? frame_len - off : 4096,
				 &e);
	if (rc == WAL_OK)
		rc = wal_lz4_sink_finish(lz, &e);
	cr_assert_eq(rc, WAL_ENOMEM, "inner sink error: got %s", wal_err_name(rc));
	wal_lz4_sink_free(lz);
	free(out.buf);
	free(frame);
	free(data);
}

/* ---- the parallel encoder (inputs of known size >= 1 MiB) ----------------- */

#include "io/lz4_blocks.h"
#include "io/xxhash.h"

/* Reference values of XXH32, the checksum LZ4 frames carry, and XXH64. */
Test(compress, xxh32_reference_values)
{
	wal_xxh32 h;
	wal_xxh32_init(&h, 0);
	cr_assert_eq(wal_xxh32_digest(&h), 0x02CC5D05u, "XXH32 of nothing");
	wal_xxh64 h64;
	wal_xxh64_init(&h64, 0);
	cr_assert_eq(wal_xxh64_digest(&h64), 0xEF46DB3751D8E999ull, "XXH64 of nothing");
	unsigned char *big = make_data(100003, 9);
	wal_xxh64 one64, many64;
	wal_xxh64_init(&one64, 0);
	wal_xxh64_update(&one64, big, 100003);
	wal_xxh64_init(&many64, 0);
	for (size_t off = 0; off < 100003; off += 13)
		wal_xxh64_update(&many64, big + off, 100003 - off < 13 ? 100003 - off : 13);
	cr_assert_eq(wal_xxh64_digest(&one64), wal_xxh64_digest(&many64));
	free(big);
	/* the same bytes in one piece or many give the same digest */
	unsigned char *data = make_data(100003, 7);
	wal_xxh32 one, many;
	wal_xxh32_init(&one, 0);
	wal_xxh32_update(&one, data, 100003);
	wal_xxh32_init(&many, 0);
	for (size_t off = 0; off < 100003; off += 7)
		wal_xxh32_update(&many, data + off, 100003 - off < 7 ? 100003 - off : 7);
	cr_assert_eq(wal_xxh32_digest(&one), wal_xxh32_digest(&many));
	free(data);
}

/* Long inputs against values from the reference implementation (xxhsum):
 * both algorithms' main loops, at every alignment of the pieces. */
Test(compress, xxh_reference_long_inputs)
{
	size_t len = 100003;
	unsigned char *buf = malloc(len + 8);
	cr_assert_not_null(buf);
	for (size_t shift = 0; shift < 8; shift++) {
		unsigned char *p = buf + shift;
		for (uint64_t i = 0; i < len; i++)
			p[i] = (unsigned char)((i * 2654435761u) >> 13);
		wal_xxh64 h64;
		wal_xxh32 h32;
		wal_xxh64_init(&h64, 0);
		wal_xxh32_init(&h32, 0);
		for (size_t off = 0; off < len; off += 4096 + shift) {
			size_t n = len - off < 4096 + shift ? len - off : 4096 + shift;
			wal_xxh64_update(&h64, p + off, n);
			wal_xxh32_update(&h32, p + off, n);
		}
		cr_assert_eq(wal_xxh64_digest(&h64), 0x3b98e4b47391ed90ull, "XXH64, offset %zu",
			     shift);
		cr_assert_eq(wal_xxh32_digest(&h32), 0x21f23bc5u, "XXH32, offset %zu", shift);
	}
	free(buf);
	wal_xxh64 abc;
	wal_xxh64_init(&abc, 0);
	wal_xxh64_update(&abc, "abc", 3);
	cr_assert_eq(wal_xxh64_digest(&abc), 0x44bc2cf5ad770999ull, "XXH64 of \"abc\"");
}

/* A parallel frame is read back by the lz4 tool and by our sink, and a
 * rewind in the middle of it produces the very same frame again. */
Test(compress, parallel_frame_lz4_tool_and_rewind, .init = setup, .fini = teardown)
{
	size_t len = 5 * (1u << 20) + 12345;
	unsigned char *data = make_data(len, 21);
	/* a stretch of noise that does not compress: stored blocks */
	for (size_t i = 2u << 20; i < (2u << 20) + 300000; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	wal_mem_source in;
	wal_lz4_source *lz;
	wal_error e;
	wal_mem_sink first, second;
	unsigned char buf[70000];
	size_t got;

	wal_mem_source_init(&in, data, len);
	cr_assert_eq(wal_lz4_source_new(&lz, &in.base, (int64_t)len, 1, &e), WAL_OK, "%s", e.msg);
	wal_source *src = wal_lz4_source_base(lz);
	wal_mem_sink_init(&first, 0);
	cr_assert_eq(wal_source_pump(src, &first.base, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(src->size, (int64_t)first.len, "size known after the whole frame");
	cr_assert(first.buf[4] & 0x20, "independent blocks expected");

	cr_assert_eq(src->read(src, buf, sizeof(buf), &got, &e), WAL_OK);
	cr_assert_eq(got, 0, "reads after the end give nothing");
	cr_assert_eq(src->rewind(src, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(src->read(src, buf, sizeof(buf), &got, &e), WAL_OK);
	cr_assert_eq(src->rewind(src, &e), WAL_OK, "%s", e.msg);
	wal_mem_sink_init(&second, 0);
	cr_assert_eq(wal_source_pump(src, &second.base, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(second.len, first.len);
	cr_assert_eq(memcmp(first.buf, second.buf, first.len), 0, "rewound frame differs");
	wal_lz4_source_free(lz);

	wal_mem_sink out;
	cr_assert_eq(decompress_buf(first.buf, first.len, 65536, &out, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(out.len, len);
	cr_assert_eq(memcmp(out.buf, data, len), 0);
	free(out.buf);

	char frame_path[400], plain_path[400], cmd[1000];
	snprintf(frame_path, sizeof(frame_path), "%s/frame.lz4", dir);
	snprintf(plain_path, sizeof(plain_path), "%s/plain", dir);
	FILE *f = fopen(frame_path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(first.buf, 1, first.len, f), first.len);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "lz4 -d -q -f %s %s", frame_path, plain_path);
	cr_assert_eq(system(cmd), 0, "lz4 -d refused the frame");
	f = fopen(plain_path, "r");
	cr_assert_not_null(f);
	unsigned char *back = malloc(len + 1);
	cr_assert_eq(fread(back, 1, len + 1, f), len, "lz4 -d gave a different length");
	fclose(f);
	cr_assert_eq(memcmp(back, data, len), 0, "lz4 -d gave different bytes");
	free(back);
	free(first.buf);
	free(second.buf);
	free(data);
}

/* A file that is not the size announced fails the read, never a frame. */
Test(compress, parallel_size_mismatch_fails)
{
	size_t len = 2u << 20;
	unsigned char *data = make_data(len, 22);
	wal_mem_source in;
	wal_lz4_source *lz;
	wal_error e;
	wal_mem_sink frame;

	wal_mem_source_init(&in, data, len);
	cr_assert_eq(wal_lz4_source_new(&lz, &in.base, (int64_t)len + 4096, 1, &e), WAL_OK);
	wal_mem_sink_init(&frame, 0);
	cr_assert_eq(wal_source_pump(wal_lz4_source_base(lz), &frame.base, &e), WAL_EIO,
		     "a short input made a frame");
	cr_assert(strstr(e.msg, "announced"), "%s", e.msg);
	wal_lz4_source_free(lz);
	free(frame.buf);
	free(data);
}
