/*
 * xxHash, streaming: XXH32, the checksum LZ4 frames carry, and XXH64, which
 * push-ahead records use to tell that a WAL file is still the one pushed
 * (fast enough to hash a 16 MiB segment in a few milliseconds).
 */
#ifndef WAL_XXHASH_H
#define WAL_XXHASH_H

#include <stddef.h>
#include <stdint.h>
#include "base/error.h"

typedef struct wal_xxh32 {
	uint32_t v[4];
	uint32_t seed;
	uint64_t total;
	unsigned char mem[16];
	uint32_t mem_len;
} wal_xxh32;

void wal_xxh32_init(wal_xxh32 *h, uint32_t seed);
void wal_xxh32_update(wal_xxh32 *h, const void *data, size_t len);
uint32_t wal_xxh32_digest(const wal_xxh32 *h);

typedef struct wal_xxh64 {
	uint64_t v[4];
	uint64_t seed;
	uint64_t total;
	unsigned char mem[32];
	uint32_t mem_len;
} wal_xxh64;

void wal_xxh64_init(wal_xxh64 *h, uint64_t seed);
void wal_xxh64_update(wal_xxh64 *h, const void *data, size_t len);
uint64_t wal_xxh64_digest(const wal_xxh64 *h);

/*
 * XXH64 of everything read from fd from offset 0 (pread: the file offset
 * does not move), as 16 lowercase hex digits; *size gets the length.
 */
wal_err wal_xxh64_fd(int fd, const char *path, uint64_t *size, char hex[17], wal_error *e);

#endif
