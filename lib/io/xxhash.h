/*
 * xxHash, streaming: XXH32, the checksum LZ4 frames carry, and XXH64, which
 * push-ahead records and spool names use to tell that a WAL file is still
 * the one pushed (about 1 ms for a 16 MiB segment).  Thin wrappers over
 * libxxhash; the digests are xxHash's, bit for bit those of the
 * implementation walarchive carried before (tests/unit/test_xxhash.c), so
 * records and spool names written by earlier releases stay valid.
 */
#ifndef WAL_XXHASH_H
#define WAL_XXHASH_H

#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

/* A streaming state, held by value: room for libxxhash's XXH32_state_t
 * (48 bytes in 0.8), which xxhash.c checks when it is built.  Not valid
 * until wal_xxh32_init; copying one copies the hash so far. */
typedef struct wal_xxh32 {
	_Alignas(8) unsigned char state[64];
} wal_xxh32;

/* Starts a hash with seed (0 for LZ4 frames and records). */
void wal_xxh32_init(wal_xxh32 *h, uint32_t seed);
/* Adds len bytes (data may be NULL when len is 0). */
void wal_xxh32_update(wal_xxh32 *h, const void *data, size_t len);
/* The hash of everything added so far; h can take more afterwards. */
uint32_t wal_xxh32_digest(const wal_xxh32 *h);
/* XXH32 of len bytes at once. */
uint32_t wal_xxh32_oneshot(const void *data, size_t len, uint32_t seed);

/* As wal_xxh32, for XXH64 (XXH64_state_t: 88 bytes in 0.8). */
typedef struct wal_xxh64 {
	_Alignas(8) unsigned char state[128];
} wal_xxh64;

void wal_xxh64_init(wal_xxh64 *h, uint64_t seed);
void wal_xxh64_update(wal_xxh64 *h, const void *data, size_t len);
uint64_t wal_xxh64_digest(const wal_xxh64 *h);
uint64_t wal_xxh64_oneshot(const void *data, size_t len, uint64_t seed);

/*
 * XXH64 of everything read from fd from offset 0 (pread: the file offset
 * does not move), as 16 lowercase hex digits; *size gets the length.
 */
wal_err wal_xxh64_fd(int fd, const char *path, uint64_t *size, char hex[17], wal_error *e);

#endif
