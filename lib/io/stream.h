/*
 * Concrete byte streams over the interface of base/stream.h: memory and
 * file sources, and the hashing source and sink (XXH64) that push-ahead
 * and fetch-ahead use.
 */
#ifndef WAL_IO_STREAM_H
#define WAL_IO_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include "base/error.h"
#include "base/stream.h"

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
	size_t limit; /* fail with WAL_ENOMEM beyond this many bytes; 0 = none */
} wal_mem_sink;
void wal_mem_sink_init(wal_mem_sink *sink, size_t limit);

/* A source over an open file descriptor (not closed by the source). */
typedef struct wal_fd_source {
	wal_source base;
	int fd;
	const char *path; /* for messages */
	int64_t offset;	  /* bytes read since the last rewind */
} wal_fd_source;
void wal_fd_source_init(wal_fd_source *src, int fd, const char *path, int64_t size);

/*
 * Reads src to the end once, then rewinds it: sets src->size and, when
 * sha256_hex is not NULL, the lowercase hex SHA-256 of the bytes (65 bytes).
 * Part of the HTTP transports' module (libcrypto), for S3's payload hash.
 */
wal_err wal_source_measure(wal_source *src, char *sha256_hex, wal_error *e);

/*
 * A source that passes inner's bytes through and hashes them (XXH64): once
 * inner ends, hex holds the digest.  A rewind starts the hash over.
 */
typedef struct wal_hash_source {
	wal_source base;
	wal_source *inner;
	void *state; /* wal_xxh64 */
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
	void *state; /* wal_xxh64 */
	uint64_t bytes;
} wal_hash_sink;
wal_err wal_hash_sink_init(wal_hash_sink *sink, wal_sink *inner, wal_error *e);
void wal_hash_sink_digest(const wal_hash_sink *sink, char hex[17]);
void wal_hash_sink_free(wal_hash_sink *sink);

#endif
