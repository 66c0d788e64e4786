/*
 * Unit tests for stream.h: memory and file sources that start over with the
 * same bytes, memory sinks with a limit and reset, measuring (size and
 * SHA-256), pumping, and hashing (XXH64) on the way in and out.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/stream.h"

static void fill(unsigned char *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 7;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
}

/* Reads src to the end in reads of at most step bytes into a new buffer. */
static unsigned char *drain(wal_source *src, size_t step, size_t *len)
{
	size_t cap = 1024, used = 0;
	unsigned char *out = malloc(cap);
	wal_error e;

	for (;;) {
		size_t got = 0;
		if (used + step > cap) {
			while (used + step > cap)
				cap *= 2;
			out = realloc(out, cap);
		}
		cr_assert_eq(src->read(src, out + used, step, &got, &e), WAL_OK, "%s", e.msg);
		cr_assert_leq(got, step);
		if (got == 0)
			break;
		used += got;
	}
	*len = used;
	return out;
}

Test(stream, mem_source_reads_and_rewinds)
{
	size_t len = 3 * WAL_IO_CHUNK + 5;
	unsigned char *data = malloc(len);
	wal_mem_source src;
	wal_error e;
	size_t got_len;

	fill(data, len, 1);
	wal_mem_source_init(&src, data, len);
	unsigned char *a = drain(&src.base, 1000, &got_len);
	cr_assert_eq(got_len, len);
	cr_assert_eq(memcmp(a, data, len), 0);
	cr_assert_eq(src.base.size, (int64_t)len);
	cr_assert_eq(src.base.rewind(&src.base, &e), WAL_OK);
	unsigned char *b = drain(&src.base, WAL_IO_CHUNK, &got_len);
	cr_assert_eq(got_len, len);
	cr_assert_eq(memcmp(b, data, len), 0);
	free(a);
	free(b);
	free(data);
}

Test(stream, mem_source_empty)
{
	wal_mem_source src;
	size_t got_len;

	wal_mem_source_init(&src, "", 0);
	unsigned char *a = drain(&src.base, 10, &got_len);
	cr_assert_eq(got_len, 0);
	free(a);
}

Test(stream, mem_sink_grows_resets_and_limits)
{
	wal_mem_sink sink;
	wal_error e;
	unsigned char data[5000];

	fill(data, sizeof(data), 2);
	wal_mem_sink_init(&sink, 0);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(sink.base.write(&sink.base, data, sizeof(data), &e), WAL_OK);
	cr_assert_eq(sink.len, 100 * sizeof(data));
	cr_assert_eq(memcmp(sink.buf + 99 * sizeof(data), data, sizeof(data)), 0);
	cr_assert_eq(sink.base.reset(&sink.base, &e), WAL_OK);
	cr_assert_eq(sink.len, 0);
	cr_assert_eq(sink.base.write(&sink.base, "xy", 2, &e), WAL_OK);
	cr_assert_eq(sink.len, 2);
	cr_assert_eq(memcmp(sink.buf, "xy", 2), 0);
	free(sink.buf);

	wal_mem_sink_init(&sink, 6000);
	cr_assert_eq(sink.base.write(&sink.base, data, 5000, &e), WAL_OK);
	cr_assert_eq(sink.base.write(&sink.base, data, 1000, &e), WAL_OK, "exactly the limit");
	cr_assert_eq(sink.base.write(&sink.base, data, 1, &e), WAL_ENOMEM, "beyond the limit");
	cr_assert(e.msg[0]);
	free(sink.buf);
}

Test(stream, fd_source)
{
	char path[] = "/tmp/walarchive-unit-stream.XXXXXX";
	size_t len = 2 * WAL_IO_CHUNK + 77;
	unsigned char *data = malloc(len);
	int fd = mkstemp(path);
	wal_fd_source src;
	wal_error e;
	size_t got_len;

	cr_assert_geq(fd, 0);
	unlink(path);
	fill(data, len, 3);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	lseek(fd, 0, SEEK_SET);

	wal_fd_source_init(&src, fd, path, (int64_t)len);
	cr_assert_eq(src.base.size, (int64_t)len);
	unsigned char *a = drain(&src.base, 4096, &got_len);
	cr_assert_eq(got_len, len);
	cr_assert_eq(memcmp(a, data, len), 0);
	cr_assert_eq(src.base.rewind(&src.base, &e), WAL_OK, "%s", e.msg);
	unsigned char *b = drain(&src.base, WAL_IO_CHUNK, &got_len);
	cr_assert_eq(got_len, len);
	cr_assert_eq(memcmp(b, data, len), 0);

	close(fd);
	free(a);
	free(b);
	free(data);
}

/* stream.h: size is "-1 until one full read has been done". */
Test(stream, fd_source_learns_size_after_full_read)
{
	char path[] = "/tmp/walarchive-unit-stream.XXXXXX";
	size_t len = WAL_IO_CHUNK + 77;
	unsigned char *data = malloc(len);
	int fd = mkstemp(path);
	wal_fd_source src;
	size_t got_len;

	cr_assert_geq(fd, 0);
	unlink(path);
	fill(data, len, 3);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	lseek(fd, 0, SEEK_SET);
	wal_fd_source_init(&src, fd, path, -1);
	cr_assert_eq(src.base.size, -1);
	unsigned char *a = drain(&src.base, 100000, &got_len);
	cr_assert_eq(got_len, len);
	cr_assert_eq(src.base.size, (int64_t)len, "size still %lld after a full read",
		     (long long)src.base.size);
	close(fd);
	free(a);
	free(data);
}

Test(stream, fd_source_read_error)
{
	int fd = open("/dev/null", O_WRONLY);
	wal_fd_source src;
	wal_error e;
	unsigned char buf[16];
	size_t got = 0;

	cr_assert_geq(fd, 0);
	wal_fd_source_init(&src, fd, "/dev/null", -1);
	wal_error_clear(&e);
	cr_assert_neq(src.base.read(&src.base, buf, sizeof(buf), &got, &e), WAL_OK);
	cr_assert_neq(strstr(e.msg, "/dev/null"), NULL, "message names the file: %s", e.msg);
	close(fd);
}

Test(stream, measure_sha256)
{
	wal_mem_source src;
	wal_error e;
	char hex[65];
	size_t got_len;

	wal_mem_source_init(&src, "abc", 3);
	cr_assert_eq(wal_source_measure(&src.base, hex, &e), WAL_OK, "%s", e.msg);
	cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	cr_assert_eq(src.base.size, 3);
	/* rewound: the next read starts at the first byte */
	unsigned char *a = drain(&src.base, 10, &got_len);
	cr_assert_eq(got_len, 3);
	cr_assert_eq(memcmp(a, "abc", 3), 0);
	free(a);

	wal_mem_source_init(&src, "", 0);
	cr_assert_eq(wal_source_measure(&src.base, hex, &e), WAL_OK, "%s", e.msg);
	cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	cr_assert_eq(src.base.size, 0);

	wal_mem_source_init(&src, "abc", 3);
	cr_assert_eq(wal_source_measure(&src.base, NULL, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(src.base.size, 3);
}

Test(stream, measure_large_fd_source)
{
	char path[] = "/tmp/walarchive-unit-stream.XXXXXX";
	int fd = mkstemp(path);
	size_t len = 3 * WAL_IO_CHUNK + 1;
	unsigned char *data = calloc(1, len);
	wal_fd_source src;
	wal_error e;
	char hex[65], cmd[256], expect[65];
	FILE *p;

	cr_assert_geq(fd, 0);
	fill(data, len, 4);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	lseek(fd, 0, SEEK_SET);
	wal_fd_source_init(&src, fd, path, -1);
	cr_assert_eq(wal_source_measure(&src.base, hex, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(src.base.size, (int64_t)len);
	snprintf(cmd, sizeof(cmd), "sha256sum %s", path);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_eq(fscanf(p, "%64s", expect), 1);
	pclose(p);
	cr_assert_str_eq(hex, expect);
	close(fd);
	unlink(path);
	free(data);
}

Test(stream, pump)
{
	size_t len = 4 * WAL_IO_CHUNK + 3;
	unsigned char *data = malloc(len);
	wal_mem_source src;
	wal_mem_sink sink;
	wal_error e;

	fill(data, len, 5);
	wal_mem_source_init(&src, data, len);
	wal_mem_sink_init(&sink, 0);
	cr_assert_eq(wal_source_pump(&src.base, &sink.base, &e), WAL_OK, "%s", e.msg);
	cr_assert_eq(sink.len, len);
	cr_assert_eq(memcmp(sink.buf, data, len), 0);
	free(sink.buf);

	/* the sink's error is passed through */
	wal_mem_source_init(&src, data, len);
	wal_mem_sink_init(&sink, len / 2);
	cr_assert_eq(wal_source_pump(&src.base, &sink.base, &e), WAL_ENOMEM);
	free(sink.buf);
	free(data);
}

/* The hashing sink passes every byte on, and its digest is the XXH64 of
 * what the sink below now holds: after a reset, of what came after it. */
Test(stream, hash_sink_passes_on_and_hashes)
{
	size_t len = 3 * WAL_IO_CHUNK + 17;
	unsigned char *data = malloc(len);
	wal_mem_sink mem;
	wal_hash_sink hs;
	wal_hash_source ref;
	wal_mem_source src;
	wal_error e;
	char hex[17];

	fill(data, len, 11);
	wal_mem_sink_init(&mem, 0);
	cr_assert_eq(wal_hash_sink_init(&hs, &mem.base, &e), WAL_OK, "%s", e.msg);
	/* a false start, then the reset a retried download does */
	cr_assert_eq(hs.base.write(&hs.base, "garbage", 7, &e), WAL_OK);
	cr_assert_eq(hs.base.reset(&hs.base, &e), WAL_OK);
	for (size_t off = 0; off < len; off += 1000)
		cr_assert_eq(hs.base.write(&hs.base, data + off,
					   len - off < 1000 ? len - off : 1000, &e),
			     WAL_OK, "%s", e.msg);
	wal_hash_sink_digest(&hs, hex);
	cr_assert_eq(hs.bytes, len);
	cr_assert_eq(mem.len, len);
	cr_assert_eq(memcmp(mem.buf, data, len), 0, "the bytes are passed on unchanged");

	/* the same digest as the hashing source gives for the same bytes */
	wal_mem_source_init(&src, data, len);
	cr_assert_eq(wal_hash_source_init(&ref, &src.base, &e), WAL_OK);
	size_t got_len;
	free(drain(&ref.base, 4096, &got_len));
	cr_assert_eq(got_len, len);
	cr_assert_str_eq(hex, ref.hex);

	/* an error below is passed up, and those bytes are not counted */
	wal_mem_sink limited;
	wal_hash_sink hl;
	wal_mem_sink_init(&limited, 10);
	cr_assert_eq(wal_hash_sink_init(&hl, &limited.base, &e), WAL_OK);
	cr_assert_eq(hl.base.write(&hl.base, data, 100, &e), WAL_ENOMEM);
	cr_assert_eq(hl.bytes, 0);

	wal_hash_source_free(&ref);
	wal_hash_sink_free(&hs);
	wal_hash_sink_free(&hl);
	free(limited.buf);
	free(mem.buf);
	free(data);
}
