/*
 * Unit tests for zstd.h: zstd frames made by the source round-trip through
 * the sink, carry the content checksum and size and are readable by the
 * zstd command-line tool; frames made by `zstd --check` are read; a frame
 * without checksum, a truncated or corrupted one, bytes after the frame and
 * a frame that expands beyond what the sink behind takes are refused.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/stream.h"
#include "io/zstd.h"

static char dir[256];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/walarchive-unit-zstd.XXXXXX");
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

static unsigned char *compress_buf(const unsigned char *data, size_t len, int64_t content_size,
				   int level, size_t step, size_t *frame_len)
{
	wal_mem_source in;
	wal_zstd_source *zs;
	wal_error e;
	size_t cap = len + 1024, used = 0;
	unsigned char *out = malloc(cap);
	wal_mem_source_init(&in, data, len);
	cr_assert_eq(wal_zstd_source_new(&zs, &in.base, content_size, level, &e), WAL_OK, "%s",
		     e.msg);
	wal_source *src = wal_zstd_source_base(zs);
	for (;;) {
		size_t got = 0;
		if (used + step > cap) {
			cap = (used + step) * 2;
			out = realloc(out, cap);
		}
		cr_assert_eq(src->read(src, out + used, step, &got, &e), WAL_OK, "%s", e.msg);
		if (got == 0)
			break;
		used += got;
	}
	cr_assert_eq(src->size, (int64_t)used, "size known after the full read");
	wal_zstd_source_free(zs);
	*frame_len = used;
	return out;
}

/* Feeds frame into a decompressing sink in pieces of step bytes. */
static wal_err decompress_buf(const unsigned char *frame, size_t frame_len, size_t step,
			      size_t limit, wal_mem_sink *out, wal_error *e)
{
	wal_zstd_sink *zs;
	wal_err rc = WAL_OK;
	wal_mem_sink_init(out, limit);
	cr_assert_eq(wal_zstd_sink_new(&zs, &out->base, "test object", e), WAL_OK);
	wal_sink *sink = wal_zstd_sink_base(zs);
	for (size_t off = 0; off < frame_len && rc == WAL_OK; off += step)
		rc = sink->write(sink, frame + off, frame_len - off < step ? frame_len - off : step,
				 e);
	if (rc == WAL_OK)
		rc = wal_zstd_sink_finish(zs, e);
	if (rc == WAL_OK)
		cr_assert_eq(wal_zstd_sink_out_bytes(zs), out->len);
	wal_zstd_sink_free(zs);
	return rc;
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
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *buf = malloc(*len + 1);
	cr_assert_eq(fread(buf, 1, *len, f), *len);
	fclose(f);
	return buf;
}

static void roundtrip(size_t len, int64_t content_size, int level, size_t rstep, size_t wstep)
{
	unsigned char *data = make_data(len, (uint32_t)len);
	size_t frame_len;
	unsigned char *frame = compress_buf(data, len, content_size, level, rstep, &frame_len);
	wal_mem_sink out;
	wal_error e;
	cr_assert_geq(frame_len, 9);
	cr_assert_eq(frame[0], 0x28);
	cr_assert_eq(frame[1], 0xB5);
	cr_assert_eq(frame[2], 0x2F);
	cr_assert_eq(frame[3], 0xFD);
	cr_assert(frame[4] & 0x04, "content checksum flag not set (FHD 0x%02X)", frame[4]);
	if (content_size >= 0)
		/* Frame_Content_Size_flag, or Single_Segment_flag (the size then follows) */
		cr_assert(frame[4] & 0xE0, "content size not in the header (FHD 0x%02X)", frame[4]);
	cr_assert_eq(decompress_buf(frame, frame_len, wstep, 0, &out, &e), WAL_OK, "%zu: %s", len,
		     e.msg);
	cr_assert_eq(out.len, len);
	cr_assert(len == 0 || memcmp(out.buf, data, len) == 0);
	free(out.buf);
	free(frame);
	free(data);
}

Test(zstd, roundtrip_sizes_levels_and_steps)
{
	size_t sizes[] = { 0, 1, 100, 4096, WAL_IO_CHUNK - 1, WAL_IO_CHUNK + 1, 3 * WAL_IO_CHUNK };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		roundtrip(sizes[i], (int64_t)sizes[i], 3, WAL_IO_CHUNK, 4096);
		roundtrip(sizes[i], -1, 1, 777, 1);
	}
	roundtrip(100000, 100000, WAL_ZSTD_LEVEL_MAX, 13, 100000);
}

/* A 16 MiB segment: compressed on several threads, one frame, rewindable. */
Test(zstd, segment_parallel_and_rewind)
{
	size_t len = 16u << 20, a_len, b_len;
	unsigned char *data = make_data(len, 5);
	unsigned char *a = compress_buf(data, len, (int64_t)len, 3, WAL_IO_CHUNK, &a_len);
	wal_mem_source in;
	wal_zstd_source *zs;
	wal_error e;
	wal_mem_source_init(&in, data, len);
	cr_assert_eq(wal_zstd_source_new(&zs, &in.base, (int64_t)len, 3, &e), WAL_OK);
	wal_source *src = wal_zstd_source_base(zs);
	unsigned char *b = malloc(a_len + 1024);
	size_t got = 0;
	/* read part, start over, then read it all: the same frame as a fresh source's */
	cr_assert_eq(src->read(src, b, 1000, &got, &e), WAL_OK);
	cr_assert_eq(src->rewind(src, &e), WAL_OK, "%s", e.msg);
	b_len = 0;
	do {
		cr_assert_eq(src->read(src, b + b_len, a_len + 1024 - b_len, &got, &e), WAL_OK);
		b_len += got;
	} while (got);
	cr_assert_eq(b_len, a_len);
	wal_mem_sink out;
	cr_assert_eq(decompress_buf(b, b_len, 65536, 0, &out, &e), WAL_OK, "%s", e.msg);
	cr_assert(out.len == len && memcmp(out.buf, data, len) == 0);
	free(out.buf);
	wal_zstd_source_free(zs);
	free(a);
	free(b);
	free(data);
}

/* A source that yields a different size than the one pledged fails. */
Test(zstd, content_size_mismatch_fails)
{
	unsigned char *data = make_data(5000, 2);
	wal_mem_source in;
	wal_zstd_source *zs;
	wal_error e;
	unsigned char buf[8192];
	size_t got;
	wal_err rc;
	wal_mem_source_init(&in, data, 5000);
	cr_assert_eq(wal_zstd_source_new(&zs, &in.base, 6000, 3, &e), WAL_OK);
	wal_source *src = wal_zstd_source_base(zs);
	do
		rc = src->read(src, buf, sizeof(buf), &got, &e);
	while (rc == WAL_OK && got);
	cr_assert_neq(rc, WAL_OK, "a short input made a frame");
	wal_zstd_source_free(zs);
	free(data);
}

Test(zstd, frames_readable_by_zstd_cli, .init = setup, .fini = teardown)
{
	size_t len = 3 * WAL_IO_CHUNK + 5, frame_len, back_len;
	unsigned char *data = make_data(len, 7);
	unsigned char *frame = compress_buf(data, len, (int64_t)len, 3, WAL_IO_CHUNK, &frame_len);
	char obj[300], out[300], cmd[800];
	snprintf(obj, sizeof(obj), "%s/obj.zst", dir);
	snprintf(out, sizeof(out), "%s/obj", dir);
	write_file(obj, frame, frame_len);
	snprintf(cmd, sizeof(cmd), "zstd -q -d -f '%s' -o '%s'", obj, out);
	cr_assert_eq(system(cmd), 0);
	unsigned char *back = read_file(out, &back_len);
	cr_assert(back_len == len && memcmp(back, data, len) == 0);
	/* and the tool says the frame has a checksum and the size */
	snprintf(cmd, sizeof(cmd), "zstd -lv '%s' | grep -q 'Check: XXH64'", obj);
	cr_assert_eq(system(cmd), 0, "zstd -lv does not show an XXH64 check");
	free(back);
	free(frame);
	free(data);
}

/* `zstd --check` (the tool's default) makes frames the sink reads; --no-check ones it refuses. */
Test(zstd, sink_reads_zstd_cli_frames_and_refuses_unchecked, .init = setup, .fini = teardown)
{
	size_t len = 2 * WAL_IO_CHUNK + 9, frame_len;
	unsigned char *data = make_data(len, 8);
	char in[300], obj[300], cmd[800];
	wal_mem_sink out;
	wal_error e;
	snprintf(in, sizeof(in), "%s/plain", dir);
	snprintf(obj, sizeof(obj), "%s/plain.zst", dir);
	write_file(in, data, len);
	snprintf(cmd, sizeof(cmd), "zstd -q -f --check -19 '%s' -o '%s'", in, obj);
	cr_assert_eq(system(cmd), 0);
	unsigned char *frame = read_file(obj, &frame_len);
	cr_assert_eq(decompress_buf(frame, frame_len, 1000, 0, &out, &e), WAL_OK, "%s", e.msg);
	cr_assert(out.len == len && memcmp(out.buf, data, len) == 0);
	free(out.buf);
	free(frame);

	snprintf(cmd, sizeof(cmd), "zstd -q -f --no-check '%s' -o '%s'", in, obj);
	cr_assert_eq(system(cmd), 0);
	frame = read_file(obj, &frame_len);
	cr_assert_eq(decompress_buf(frame, frame_len, 1000, 0, &out, &e), WAL_ECORRUPT);
	cr_assert_not_null(strstr(e.msg, "test object: zstd frame without a content checksum"),
			   "message: %s", e.msg);
	cr_assert_eq(out.len, 0, "bytes of an unchecked frame were passed on");
	free(out.buf);
	free(frame);
	free(data);
}

/* Any single changed byte is refused, or decodes to exactly the original. */
Test(zstd, corruption_of_any_byte_detected)
{
	size_t len = 3 * 4096 * 3, frame_len, detected = 0, tried = 0;
	unsigned char *data = make_data(len, 11);
	unsigned char *frame = compress_buf(data, len, (int64_t)len, 3, WAL_IO_CHUNK, &frame_len);
	unsigned char masks[] = { 0x01, 0x80, 0xFF };
	for (size_t pos = 0; pos < frame_len; pos++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			wal_mem_sink out;
			wal_error e;
			frame[pos] ^= masks[m];
			wal_err rc = decompress_buf(frame, frame_len, 4096, 0, &out, &e);
			frame[pos] ^= masks[m];
			tried++;
			if (rc == WAL_OK) {
				cr_assert(out.len == len && memcmp(out.buf, data, len) == 0,
					  "byte %zu xor 0x%02X: wrong content accepted", pos,
					  masks[m]);
				cr_assert(pos >= 5 && pos < frame_len - 4,
					  "byte %zu (header/checksum) xor 0x%02X accepted", pos,
					  masks[m]);
			} else {
				detected++;
				cr_assert_eq(rc, WAL_ECORRUPT, "byte %zu: %s (%s)", pos,
					     wal_err_name(rc), e.msg);
			}
			free(out.buf);
		}
	}
	cr_assert_gt(detected, tried * 9 / 10, "only %zu of %zu changes detected", detected, tried);
	free(frame);
	free(data);
}

Test(zstd, truncated_frame_detected)
{
	size_t len = 100000, frame_len;
	unsigned char *data = make_data(len, 12);
	unsigned char *frame = compress_buf(data, len, (int64_t)len, 3, WAL_IO_CHUNK, &frame_len);
	size_t cuts[] = { 0, 3, 5, 9, frame_len / 2, frame_len - 4, frame_len - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		wal_mem_sink out;
		wal_error e;
		wal_err rc = decompress_buf(frame, cuts[i], 4096, 0, &out, &e);
		cr_assert_eq(rc, WAL_ECORRUPT, "cut at %zu of %zu: %s", cuts[i], frame_len,
			     wal_err_name(rc));
		cr_assert_not_null(strstr(e.msg, "test object"), "message: %s", e.msg);
		free(out.buf);
	}
	free(frame);
	free(data);
}

Test(zstd, trailing_data_detected)
{
	size_t len = 50000, frame_len;
	unsigned char *data = make_data(len, 13);
	unsigned char *frame = compress_buf(data, len, (int64_t)len, 3, WAL_IO_CHUNK, &frame_len);
	unsigned char *two = malloc(2 * frame_len);
	memcpy(two, frame, frame_len);
	memcpy(two + frame_len, frame, frame_len);
	size_t extra[] = { 1, frame_len }; /* one byte, or a second whole frame */
	for (size_t i = 0; i < 2; i++) {
		wal_mem_sink out;
		wal_error e;
		for (size_t step = 7; step <= frame_len * 2; step *= 1000) {
			wal_err rc = decompress_buf(two, frame_len + extra[i], step, 0, &out, &e);
			cr_assert_eq(rc, WAL_ECORRUPT, "%zu extra bytes accepted", extra[i]);
			cr_assert_not_null(strstr(e.msg, "data after the end of the zstd frame"),
					   "message: %s", e.msg);
			free(out.buf);
		}
	}
	free(two);
	free(frame);
	free(data);
}

Test(zstd, not_a_frame)
{
	wal_mem_sink out;
	wal_error e;
	cr_assert_eq(decompress_buf((const unsigned char *)"\x04\x22\x4d\x18\x64\x40", 6, 6, 0,
				    &out, &e),
		     WAL_ECORRUPT);
	cr_assert_not_null(strstr(e.msg, "not a zstd frame"), "message: %s", e.msg);
	free(out.buf);
	/* a skippable frame is not a frame of content either */
	cr_assert_eq(decompress_buf((const unsigned char *)"\x50\x2a\x4d\x18\x00\x00\x00\x00", 8, 8,
				    0, &out, &e),
		     WAL_ECORRUPT);
	free(out.buf);
}

/*
 * A frame whose header gives 38 bytes and whose only block is empty, with
 * the checksum of nothing: libzstd accepts it when the header comes apart
 * from the blocks; the sink refuses it however it is fed (found by fuzz_zstd).
 */
Test(zstd, content_size_short_of_the_header)
{
	static const unsigned char frame[] = { 0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x26, 0x01,
					       0x00, 0x00, 0x99, 0xe9, 0xd8, 0x51 };
	size_t steps[] = { 1, 5, 6, sizeof(frame) };
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		wal_mem_sink out;
		wal_error e;
		cr_assert_eq(decompress_buf(frame, sizeof(frame), steps[i], 0, &out, &e),
			     WAL_ECORRUPT, "step %zu: accepted", steps[i]);
		free(out.buf);
	}
	/* and a frame that gives its size, cut into every piece size: still read */
	size_t len = 5000, frame_len;
	unsigned char *data = make_data(len, 21);
	unsigned char *good = compress_buf(data, len, (int64_t)len, 3, WAL_IO_CHUNK, &frame_len);
	for (size_t step = 1; step <= 20; step++) {
		wal_mem_sink out;
		wal_error e;
		cr_assert_eq(decompress_buf(good, frame_len, step, 0, &out, &e), WAL_OK,
			     "step %zu: %s", step, e.msg);
		cr_assert(out.len == len && memcmp(out.buf, data, len) == 0);
		free(out.buf);
	}
	free(good);
	free(data);
}

/*
 * A bomb: 256 MiB of zeros in a few KiB.  The sink behind takes 16 MiB (a
 * segment): the error stops decompression, nothing beyond is written.
 */
Test(zstd, bomb_stops_at_the_bound)
{
	size_t len = 256u << 20, frame_len;
	unsigned char *zeros = calloc(1, len);
	unsigned char *frame = compress_buf(zeros, len, (int64_t)len, 1, WAL_IO_CHUNK, &frame_len);
	wal_mem_sink out;
	wal_error e;
	free(zeros);
	cr_assert_lt(frame_len, 64 * 1024, "not a bomb: %zu bytes", frame_len);
	wal_err rc = decompress_buf(frame, frame_len, 4096, 16u << 20, &out, &e);
	cr_assert_eq(rc, WAL_ENOMEM, "the bound did not stop it: %s", wal_err_name(rc));
	cr_assert_leq(out.len, 16u << 20, "%zu bytes written past the bound", out.len);
	free(out.buf);
	free(frame);
}

Test(zstd, sink_reset_starts_over)
{
	size_t len = 70000, frame_len;
	unsigned char *data = make_data(len, 14);
	unsigned char *frame = compress_buf(data, len, (int64_t)len, 3, WAL_IO_CHUNK, &frame_len);
	wal_mem_sink out;
	wal_zstd_sink *zs;
	wal_error e;
	wal_mem_sink_init(&out, 0);
	cr_assert_eq(wal_zstd_sink_new(&zs, &out.base, "retry", &e), WAL_OK);
	wal_sink *sink = wal_zstd_sink_base(zs);
	cr_assert_eq(sink->write(sink, frame, frame_len / 2, &e), WAL_OK);
	cr_assert_eq(sink->reset(sink, &e), WAL_OK);
	cr_assert_eq(sink->write(sink, frame, frame_len, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(wal_zstd_sink_finish(zs, &e), WAL_OK, "%s", e.msg);
	cr_assert(out.len == len && memcmp(out.buf, data, len) == 0);
	wal_zstd_sink_free(zs);
	free(out.buf);
	free(frame);
	free(data);
}
