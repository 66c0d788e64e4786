/*
 * Byte streams between files, compression and archive transports.  A source
 * produces bytes and can start over (a network driver retries an upload, or
 * reads once to learn length and hash before it sends); a sink consumes bytes
 * and can discard what it got (a download retried from the first byte).
 * Concrete streams embed these structs as their first member.
 */
#ifndef WAL_STREAM_H
#define WAL_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include "error.h"

typedef struct wal_source wal_source;
struct wal_source {
	/* Fills buf with up to cap bytes; *got == 0 means the end. */
	wal_err (*read)(wal_source *src, void *buf, size_t cap, size_t *got, wal_error *e);
	/* Starts again at the first byte; the bytes produced are the same. */
	wal_err (*rewind)(wal_source *src, wal_error *e);
	/* Total length in bytes, or -1 until one full read has been done. */
	int64_t size;
};

typedef struct wal_sink wal_sink;
struct wal_sink {
	/* Consumes len bytes. */
	wal_err (*write)(wal_sink *sink, const void *buf, size_t len, wal_error *e);
	/* Forgets everything written so far: the next write is the first byte. */
	wal_err (*reset)(wal_sink *sink, wal_error *e);
};

/* Size of the buffers that streams move data in. */
#define WAL_IO_CHUNK (256 * 1024)

/* A source over a memory buffer (not copied; must outlive the source). */
typedef struct wal_mem_source {
	wal_source base;
	const unsigned char *data;
	size_t len;
	size_t pos;
} wal_mem_source;
void wal_mem_source_init(wal_mem_source *src, const void *data, size_t len);

/* A sink into a growing heap buffer; free buf with free(). */
typedef struct wal_mem_sink {
	wal_sink base;
	unsigned char *buf;
	size_t len;
	size_t cap;
	size_t limit;          /* fail with WAL_ENOMEM beyond this many bytes; 0 = none */
} wal_mem_sink;
void wal_mem_sink_init(wal_mem_sink *sink, size_t limit);

/* A source over an open file descriptor (not closed by the source). */
typedef struct wal_fd_source {
	wal_source base;
	int fd;
	const char *path;      /* for messages */
	int64_t offset;        /* bytes read since the last rewind */
} wal_fd_source;
void wal_fd_source_init(wal_fd_source *src, int fd, const char *path, int64_t size);

/*
 * Reads src to the end once, then rewinds it: sets src->size and, when
 * sha256_hex is not NULL, the lowercase hex SHA-256 of the bytes (65 bytes).
 * Part of the HTTP transports' module (libcrypto), for S3's payload hash.
 */
wal_err wal_source_measure(wal_source *src, char *sha256_hex, wal_error *e);

/* Copies src into sink until the end of src. */
wal_err wal_source_pump(wal_source *src, wal_sink *sink, wal_error *e);

/*
 * A source that passes inner's bytes through and hashes them (XXH64): once
 * inner ends, hex holds the digest.  A rewind starts the hash over.
 */
typedef struct wal_hash_source {
	wal_source base;
	wal_source *inner;
	void *state;           /* wal_xxh64 */
	char hex[17];
	uint64_t bytes;
} wal_hash_source;
wal_err wal_hash_source_init(wal_hash_source *src, wal_source *inner, wal_error *e);
void wal_hash_source_free(wal_hash_source *src);

/*
 * A sink that passes what it is given on to inner and hashes it (XXH64); a
 * reset starts the hash over.  wal_hash_sink_digest gives the hash so far.
 */
typedef struct wal_hash_sink {
	wal_sink base;
	wal_sink *inner;
	void *state;           /* wal_xxh64 */
	uint64_t bytes;
} wal_hash_sink;
wal_err wal_hash_sink_init(wal_hash_sink *sink, wal_sink *inner, wal_error *e);
void wal_hash_sink_digest(const wal_hash_sink *sink, char hex[17]);
void wal_hash_sink_free(wal_hash_sink *sink);

#endif
